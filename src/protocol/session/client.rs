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
mod tests {
    use super::*;
    use crate::protocol::chunk_encoder::ChunkEncoder;
    use crate::protocol::session::server::{ServerConfig, ServerEvent, ServerSession};

    fn config() -> ClientConfig {
        ClientConfig {
            app: "live".into(),
            tc_url: "rtmp://127.0.0.1:1935/live".into(),
            flash_ver: "FMLE/3.0 (compatible; test)".into(),
            max_message_size: 1 << 20,
        }
    }

    /// Moves what one side queued to the other, through chunk encoders.
    fn wire(out: impl Iterator<Item = Outgoing>, encoder: &mut ChunkEncoder) -> Vec<u8> {
        let mut bytes = Vec::new();
        for o in out {
            encoder.write_message(o.csid, &o.message, &mut bytes);
        }
        bytes
    }

    struct Pair {
        client: ClientSession,
        server: ServerSession,
        to_server: ChunkEncoder,
        to_client: ChunkEncoder,
    }

    impl Pair {
        fn new() -> Pair {
            Pair {
                client: ClientSession::new(&config()),
                server: ServerSession::new(ServerConfig::default()),
                to_server: ChunkEncoder::new(128),
                to_client: ChunkEncoder::new(128),
            }
        }

        /// Runs the server side, accepting every request, and returns the
        /// client's events until nothing moves.
        fn run(&mut self) -> Result<Vec<ClientEvent>, SessionError> {
            let mut events = Vec::new();
            loop {
                let bytes = wire(self.client.take_outgoing(), &mut self.to_server);
                self.server.feed(&bytes);
                while let Some(event) = self.server.poll().unwrap() {
                    match event {
                        ServerEvent::PublishRequested { stream_id, .. } => {
                            self.server.accept_publish(stream_id)
                        }
                        ServerEvent::PlayRequested { stream_id, .. } => {
                            self.server.accept_play(stream_id)
                        }
                        _ => {}
                    }
                }
                let back = wire(self.server.take_outgoing(), &mut self.to_client);
                if bytes.is_empty() && back.is_empty() {
                    return Ok(events);
                }
                self.client.feed(&back);
                while let Some(incoming) = self.client.poll()? {
                    events.push(incoming.event);
                }
            }
        }
    }

    #[test]
    fn publishes_against_the_server_session() {
        let mut pair = Pair::new();
        pair.client.publish("cam?key=1");
        let events = pair.run().unwrap();
        assert!(events.contains(&ClientEvent::Connected));
        assert!(events.contains(&ClientEvent::Publishing { stream_id: 1 }));
        assert_eq!(
            pair.server.role(),
            Some(crate::protocol::session::server::StreamRole::Publishing(1))
        );
    }

    #[test]
    fn plays_against_the_server_session() {
        let mut pair = Pair::new();
        pair.run().unwrap();
        pair.client.play("cam");
        let events = pair.run().unwrap();
        assert!(events.contains(&ClientEvent::Playing { stream_id: 1 }));
        assert!(events.contains(&ClientEvent::Status {
            code: status::PLAY_RESET.into(),
            description: "Playing and resetting.".into()
        }));
        assert!(events.contains(&ClientEvent::Media), "|RtmpSampleAccess");
    }

    #[test]
    fn an_error_status_is_an_error() {
        let mut pair = Pair::new();
        pair.client.play("cam");
        pair.run().unwrap();
        pair.server
            .reject(1, status::PLAY_FAILED, "No such stream.");
        let bytes = wire(pair.server.take_outgoing(), &mut pair.to_client);
        pair.client.feed(&bytes);
        assert_eq!(
            pair.client.poll(),
            Err(SessionError::Refused {
                code: status::PLAY_FAILED.into(),
                description: "No such stream.".into()
            })
        );
    }

    #[test]
    fn a_ping_flood_queues_no_more_answers_than_the_bound() {
        let mut client = ClientSession::new(&config());
        client.take_outgoing().count();
        let mut encoder = ChunkEncoder::new(128);
        let mut bytes = Vec::new();
        for n in 0..5000u32 {
            let ping = Message::UserControl(UserControl::PingRequest(n));
            encoder.write_message(2, &ping.encode(0, 0), &mut bytes);
        }
        client.feed(&bytes);
        let mut answered = 0;
        loop {
            while client.poll().unwrap().is_some() {}
            let sent = client.take_outgoing().count();
            assert!(sent <= crate::protocol::session::MAX_OUTGOING);
            if sent == 0 {
                break;
            }
            answered += sent;
        }
        assert_eq!(answered, 5000);
    }

    #[test]
    fn pings_are_answered_and_windows_acknowledged() {
        let mut client = ClientSession::new(&config());
        client.take_outgoing().count();
        let mut encoder = ChunkEncoder::new(128);
        let mut bytes = Vec::new();
        for m in [
            Message::WindowAckSize(100),
            Message::UserControl(UserControl::PingRequest(77)),
        ] {
            encoder.write_message(2, &m.encode(0, 0), &mut bytes);
        }
        client.feed(&bytes);
        while client.poll().unwrap().is_some() {}
        let out: Vec<Message> = client
            .take_outgoing()
            .map(|o| Message::decode(&o.message).unwrap())
            .collect();
        assert!(out.contains(&Message::UserControl(UserControl::PingResponse(77))));
    }
}
