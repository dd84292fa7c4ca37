//! A client's side of one RTMP connection, as encoders and players speak
//! it: `connect`; to publish, `releaseStream`, `FCPublish`, `createStream`
//! and `publish(name, "live")`; to play, `createStream`, `play` and a
//! buffer length. It answers pings and acknowledges each window's worth of
//! bytes by itself, and reports every message it receives, classified: the
//! steps of the request (connected, publishing, playing), statuses, media.
//! An `_error` or an error-level status is an error: the request failed.

use super::{Link, Outgoing, SessionError};
use crate::protocol::amf0::Value;
use crate::protocol::command::{Command, request, status};
use crate::protocol::message::{Message, RawMessage, UserControl, type_id};

/// Buffer the client asks the server to keep for it when playing.
const PLAY_BUFFER_MS: u32 = 3000;

/// How the client introduces itself.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The application, with its `?query` if the URL had one there.
    pub app: String,
    /// The URL without the stream name (what servers expect as tcUrl).
    pub tc_url: String,
    /// What encoders send: servers log it, some look at it.
    pub flash_ver: String,
    /// Longest message accepted from the server.
    pub max_message_size: usize,
    /// Enhanced RTMP v2 `capsEx` to declare in `connect`, if any.
    pub caps_ex: Option<u32>,
}

impl std::fmt::Debug for ClientConfig {
    /// Without the queries of `app` and `tc_url` (tokens).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unqueried = |s: &str| s.split('?').next().unwrap_or_default().to_owned();
        f.debug_struct("ClientConfig")
            .field("app", &unqueried(&self.app))
            .field("tc_url", &unqueried(&self.tc_url))
            .field("flash_ver", &self.flash_ver)
            .field("max_message_size", &self.max_message_size)
            .finish()
    }
}

/// What a received message meant.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The server accepted `connect`.
    Connected,
    /// `NetStream.Publish.Start`: media may be sent on `stream_id`.
    Publishing { stream_id: u32 },
    /// `NetStream.Play.Start`: media follows.
    Playing { stream_id: u32 },
    /// Another `onStatus` (Play.Reset, Play.PublishNotify,
    /// Play.UnpublishNotify...).
    Status { code: String, description: String },
    /// Audio, video, data or aggregate.
    Media,
    /// Anything else (control messages, user control events, other
    /// commands); pings and acknowledgements are already answered.
    Other,
}

/// One received message and what it meant.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub message: RawMessage,
    pub event: ClientEvent,
}

/// What the client wants of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Intent {
    Publish(String),
    Play(String),
}

/// A request waiting for its `_result`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Connect,
    CreateStream(Intent),
}

pub struct ClientSession {
    link: Link,
    pending: Vec<(f64, Pending)>,
    last_transaction: f64,
    connected: bool,
    /// A publish or play asked for before `connect` was answered.
    deferred: Option<Intent>,
    stream_id: u32,
    stream_name: Option<String>,
    /// Sends nothing of its own and treats no reply as a failure: for a
    /// connection whose requests the caller writes itself.
    passive: bool,
}

impl ClientSession {
    /// A session that starts by sending `connect`.
    pub fn new(config: &ClientConfig) -> ClientSession {
        let mut session = ClientSession::passive(config.max_message_size);
        session.passive = false;
        let tx = session.next_transaction();
        let mut connect = request::connect(tx, &config.app, &config.tc_url);
        if let Some(Value::Object(props)) = connect.get_mut(2) {
            for (key, value) in props.iter_mut() {
                if key == "flashVer" {
                    *value = Value::string(config.flash_ver.as_str());
                }
            }
            if let Some(caps) = config.caps_ex {
                props.push(("capsEx".into(), Value::Number(f64::from(caps))));
            }
        }
        session.call(0, connect, Pending::Connect);
        session
    }

    /// A session that only reads: it decodes and classifies what the
    /// server sends, answers pings and acknowledges, and sends nothing
    /// else (tests write their own requests).
    pub fn passive(max_message_size: usize) -> ClientSession {
        ClientSession {
            link: Link::new(max_message_size),
            pending: Vec::new(),
            last_transaction: 0.0,
            connected: false,
            deferred: None,
            stream_id: 0,
            stream_name: None,
            passive: true,
        }
    }

    fn next_transaction(&mut self) -> f64 {
        self.last_transaction += 1.0;
        self.last_transaction
    }

    fn call(&mut self, stream_id: u32, values: Vec<Value>, pending: Pending) {
        let tx = values.get(1).and_then(Value::as_number).unwrap_or(0.0);
        self.pending.push((tx, pending));
        self.link.send(Outgoing::command(stream_id, values));
    }

    fn send(&mut self, stream_id: u32, name: &str, args: Vec<Value>) {
        let tx = self.next_transaction();
        self.link
            .send(Outgoing::command(stream_id, request::call(name, tx, args)));
    }

    /// Asks to publish `name` (with its `?query`, if any): the encoder's
    /// sequence, sent once `connect` is answered.
    pub fn publish(&mut self, name: &str) {
        self.start(Intent::Publish(name.to_owned()));
    }

    /// Asks to play `name`, once `connect` is answered.
    pub fn play(&mut self, name: &str) {
        self.start(Intent::Play(name.to_owned()));
    }

    fn start(&mut self, intent: Intent) {
        if !self.connected {
            self.deferred = Some(intent);
            return;
        }
        if let Intent::Publish(name) = &intent {
            for call in ["releaseStream", "FCPublish"] {
                self.send(0, call, vec![Value::string(name.as_str())]);
            }
        }
        let tx = self.next_transaction();
        self.call(
            0,
            request::call("createStream", tx, vec![]),
            Pending::CreateStream(intent),
        );
    }

    /// Ends publishing as encoders do: `FCUnpublish`, `deleteStream`.
    pub fn unpublish(&mut self) {
        let name = self.stream_name.clone().unwrap_or_default();
        self.send(0, "FCUnpublish", vec![Value::string(name)]);
        let stream_id = self.stream_id;
        self.link.send(Outgoing::command(
            0,
            request::call("deleteStream", 0.0, vec![Value::Number(stream_id as f64)]),
        ));
    }

    /// Announces a new outbound chunk size (the writer switches to it as
    /// it writes the message).
    pub fn set_chunk_size(&mut self, size: u32) {
        self.link
            .send(Outgoing::control(Message::SetChunkSize(size)));
    }

    /// The NetStream the client publishes or plays on (0 before).
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// Takes bytes read from the server.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.link.feed(bytes);
    }

    /// Messages to send, in order.
    pub fn take_outgoing(&mut self) -> impl Iterator<Item = Outgoing> + '_ {
        self.link.outgoing.drain(..)
    }

    pub fn has_outgoing(&self) -> bool {
        !self.link.outgoing.is_empty()
    }

    /// The next received message. `None` when more bytes are needed, or
    /// when [`MAX_OUTGOING`] messages wait to be sent: send them, then
    /// poll again until `None` comes with nothing to send.
    ///
    /// [`MAX_OUTGOING`]: super::MAX_OUTGOING
    pub fn poll(&mut self) -> Result<Option<Incoming>, SessionError> {
        if self.link.outgoing_full() {
            return Ok(None);
        }
        let Some(message) = self.link.decoder.decode()? else {
            return Ok(None);
        };
        let event = self.handle(&message)?;
        Ok(Some(Incoming { message, event }))
    }

    fn handle(&mut self, message: &RawMessage) -> Result<ClientEvent, SessionError> {
        match message.type_id {
            type_id::AUDIO
            | type_id::VIDEO
            | type_id::DATA_AMF0
            | type_id::DATA_AMF3
            | type_id::AGGREGATE => return Ok(ClientEvent::Media),
            // Only control and command messages are decoded.
            type_id::USER_CONTROL
            | type_id::WINDOW_ACK_SIZE
            | type_id::COMMAND_AMF0
            | type_id::COMMAND_AMF3 => {}
            _ => return Ok(ClientEvent::Other),
        }
        let decoded = Message::decode(message)?;
        if let Message::Command(values) = &decoded {
            return self.on_command(values);
        }
        self.link.on_control(&decoded);
        Ok(ClientEvent::Other)
    }

    fn on_command(&mut self, values: &[Value]) -> Result<ClientEvent, SessionError> {
        let Command::Response {
            name,
            transaction_id,
            args,
        } = Command::parse(values)?
        else {
            return Ok(ClientEvent::Other);
        };
        // args: command object, then the information or result value.
        let info = args.get(1);
        let field = |key: &str| {
            info.and_then(|i| i.get(key))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let ours = self.pending.iter().any(|(tx, _)| *tx == transaction_id);
        match name.as_str() {
            "_error" if ours => Err(SessionError::Refused {
                code: field("code"),
                description: field("description"),
            }),
            "_result" => Ok(self.on_result(transaction_id, info)),
            "onStatus" => {
                let (code, description) = (field("code"), field("description"));
                if field("level") == "error" && !self.passive {
                    return Err(SessionError::Refused { code, description });
                }
                Ok(match code.as_str() {
                    status::PUBLISH_START => ClientEvent::Publishing {
                        stream_id: self.stream_id,
                    },
                    status::PLAY_START => ClientEvent::Playing {
                        stream_id: self.stream_id,
                    },
                    _ => ClientEvent::Status { code, description },
                })
            }
            _ => Ok(ClientEvent::Other),
        }
    }

    fn on_result(&mut self, transaction_id: f64, value: Option<&Value>) -> ClientEvent {
        let Some(at) = self
            .pending
            .iter()
            .position(|(tx, _)| *tx == transaction_id)
        else {
            return ClientEvent::Other;
        };
        match self.pending.swap_remove(at).1 {
            Pending::Connect => {
                self.connected = true;
                if let Some(intent) = self.deferred.take() {
                    self.start(intent);
                }
                ClientEvent::Connected
            }
            Pending::CreateStream(intent) => {
                let stream_id = value.and_then(Value::as_number).unwrap_or(1.0) as u32;
                self.stream_id = stream_id;
                match intent {
                    Intent::Publish(name) => {
                        self.send(
                            stream_id,
                            "publish",
                            vec![Value::string(name.as_str()), Value::string("live")],
                        );
                        self.stream_name = Some(name);
                    }
                    Intent::Play(name) => {
                        // Start -2: live if there is one, as librtmp asks.
                        self.send(
                            stream_id,
                            "play",
                            vec![Value::string(name.as_str()), Value::Number(-2000.0)],
                        );
                        self.link.send(Outgoing::control(Message::UserControl(
                            UserControl::SetBufferLength {
                                stream_id,
                                buffer_ms: PLAY_BUFFER_MS,
                            },
                        )));
                        self.stream_name = Some(name);
                    }
                }
                ClientEvent::Other
            }
        }
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
