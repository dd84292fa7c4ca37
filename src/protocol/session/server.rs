//! A server's side of one RTMP connection. It answers `connect`,
//! `createStream`, `releaseStream`, `FCPublish`, `FCSubscribe`,
//! `getStreamLength`, pings and acknowledgements by itself; a `publish` or
//! `play` becomes an event that the application accepts or rejects (so
//! authentication is a decision there); media from the publishing peer and
//! the player's switches (pause, receiveAudio, receiveVideo) become events.
//! Messages are decoded one at a time, as events are taken, so a decision
//! applies to everything after the request.

use super::{Link, Outgoing, SessionError};
use crate::protocol::amf0::Value;
use crate::protocol::chunk_decoder::DEFAULT_MAX_MESSAGE_SIZE;
use crate::protocol::command::{self, Command, Level, status};
use crate::protocol::data;
use crate::protocol::message::{BandwidthLimit, Message, RawMessage, UserControl, type_id};

/// Longest command name repeated in an event.
const MAX_REPORTED_NAME: usize = 64;

/// What the server announces at connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Outbound chunk size, announced with Set Chunk Size.
    pub chunk_size: u32,
    /// Window Acknowledgement Size and peer bandwidth.
    pub window_ack_size: u32,
    /// Longest message accepted from the peer.
    pub max_message_size: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            chunk_size: 4096,
            window_ack_size: 5_000_000,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// What the connection's one NetStream does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRole {
    Publishing(u32),
    Playing(u32),
}

/// Something the application must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// `connect` was accepted and answered.
    Connected {
        app: String,
    },
    /// The peer asks to publish `name` (possibly with a `?query`) on
    /// NetStream `stream_id`: answer with [`ServerSession::accept_publish`]
    /// or [`ServerSession::reject`].
    PublishRequested {
        stream_id: u32,
        name: String,
    },
    /// The peer asks to play `name`: answer with
    /// [`ServerSession::accept_play`] or [`ServerSession::reject`].
    PlayRequested {
        stream_id: u32,
        name: String,
    },
    /// Audio, video, data or aggregate from the publishing peer, in order.
    Media(RawMessage),
    /// Media from a peer that does not publish: dropped (reported once).
    StrayMedia,
    /// The peer ended its publishing or playing (deleteStream,
    /// closeStream); answered.
    Stopped(StreamRole),
    /// The player paused or resumed (answered).
    Paused(bool),
    ReceiveAudio(bool),
    ReceiveVideo(bool),
    /// A command this server does not know (answered with `_error` when
    /// the peer asked for an answer); `count` of them so far.
    UnknownCommand {
        name: String,
        count: u32,
    },
}

pub struct ServerSession {
    config: ServerConfig,
    link: Link,
    app: Option<String>,
    /// The query of `connect`'s `tcUrl` (`rtmp://host/live?token=..`):
    /// credentials, never logged.
    connect_query: Option<String>,
    /// The client's `capsEx` says it reconnects when asked to.
    accepts_reconnect: bool,
    next_stream_id: u32,
    role: Option<StreamRole>,
    warned_stray_media: bool,
    unknown_commands: u32,
}

impl ServerSession {
    pub fn new(config: ServerConfig) -> ServerSession {
        ServerSession {
            link: Link::new(config.max_message_size),
            config,
            app: None,
            connect_query: None,
            accepts_reconnect: false,
            next_stream_id: 1,
            role: None,
            warned_stray_media: false,
            unknown_commands: 0,
        }
    }

    /// Takes bytes read from the peer (acknowledging each window's worth).
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

    /// The `app` of `connect`, once connected.
    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// The query of `connect`'s `tcUrl`, if it had one.
    pub fn connect_query(&self) -> Option<&str> {
        self.connect_query.as_deref()
    }

    /// Whether the client said in `connect` that it reconnects when asked
    /// to (Enhanced RTMP v2 `capsEx`).
    pub fn accepts_reconnect(&self) -> bool {
        self.accepts_reconnect
    }

    pub fn role(&self) -> Option<StreamRole> {
        self.role
    }

    /// Handles received messages until one makes an event. `None` when
    /// more bytes are needed, or when [`MAX_OUTGOING`] messages wait to be
    /// sent: send them, then poll again until `None` comes with nothing
    /// to send. After an error, send what is queued (a rejection's status)
    /// and close.
    ///
    /// [`MAX_OUTGOING`]: super::MAX_OUTGOING
    pub fn poll(&mut self) -> Result<Option<ServerEvent>, SessionError> {
        while !self.link.outgoing_full()
            && let Some(raw) = self.link.decoder.decode()?
        {
            if let Some(event) = self.handle(raw)? {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    /// Takes on `role`, and tells the peer its stream begins.
    fn begin(&mut self, role: StreamRole) {
        self.role = Some(role);
        let (StreamRole::Publishing(stream_id) | StreamRole::Playing(stream_id)) = role;
        self.link.send(Outgoing::control(Message::UserControl(
            UserControl::StreamBegin(stream_id),
        )));
    }

    /// Accepts a `publish`: the peer is told it may send.
    pub fn accept_publish(&mut self, stream_id: u32) {
        self.begin(StreamRole::Publishing(stream_id));
        self.status(
            stream_id,
            Level::Status,
            status::PUBLISH_START,
            "Publishing.",
        );
    }

    /// Accepts a `play`: the player is told it starts; the application
    /// then sends the stream's catch-up and media on `stream_id`.
    pub fn accept_play(&mut self, stream_id: u32) {
        self.begin(StreamRole::Playing(stream_id));
        self.status(
            stream_id,
            Level::Status,
            status::PLAY_RESET,
            "Playing and resetting.",
        );
        self.status(
            stream_id,
            Level::Status,
            status::PLAY_START,
            "Started playing.",
        );
        self.link
            .send(Outgoing::data(stream_id, data::sample_access()));
    }

    /// Refuses a publish or play request with an error status (`code`
    /// such as `NetStream.Publish.BadName`); send it, then close.
    pub fn reject(&mut self, stream_id: u32, code: &str, description: &str) {
        self.status(stream_id, Level::Error, code, description);
    }

    /// Ends the role the application ended (the peer is not told here).
    pub fn clear_role(&mut self) {
        self.role = None;
    }

    fn status(&mut self, stream_id: u32, level: Level, code: &str, description: &str) {
        self.link
            .send(Outgoing::status(stream_id, level, code, description));
    }

    fn command(&mut self, stream_id: u32, values: Vec<Value>) {
        self.link.send(Outgoing::command(stream_id, values));
    }

    fn handle(&mut self, raw: RawMessage) -> Result<Option<ServerEvent>, SessionError> {
        match raw.type_id {
            type_id::AUDIO
            | type_id::VIDEO
            | type_id::DATA_AMF0
            | type_id::DATA_AMF3
            | type_id::AGGREGATE => return Ok(self.media(raw)),
            _ => {}
        }
        let message = Message::decode(&raw)?;
        if let Message::Command(values) = &message {
            return self.on_command(raw.stream_id, values);
        }
        // Set Chunk Size and Abort are applied by the decoder;
        // acknowledgements, bandwidth, other user control events and
        // shared objects need nothing.
        self.link.on_control(&message);
        Ok(None)
    }

    fn media(&mut self, raw: RawMessage) -> Option<ServerEvent> {
        if matches!(self.role, Some(StreamRole::Publishing(_))) {
            return Some(ServerEvent::Media(raw));
        }
        if self.warned_stray_media {
            return None;
        }
        self.warned_stray_media = true;
        Some(ServerEvent::StrayMedia)
    }

    fn require_connected(&self, what: &'static str) -> Result<(), SessionError> {
        match self.app {
            Some(_) => Ok(()),
            None => Err(SessionError::Protocol(what)),
        }
    }

    fn on_command(
        &mut self,
        stream_id: u32,
        values: &[Value],
    ) -> Result<Option<ServerEvent>, SessionError> {
        let answer = |tx: f64| command::result(tx, Value::Undefined);
        match Command::parse(values)? {
            Command::Connect {
                transaction_id,
                app,
                object_encoding,
                tc_url,
                enhanced,
                reconnect,
            } => {
                self.accepts_reconnect = reconnect;
                self.connect_query = tc_url
                    .as_deref()
                    .and_then(|url| url.split_once('?'))
                    .map(|(_, query)| query.to_owned());
                return self
                    .on_connect(transaction_id, app, object_encoding, enhanced)
                    .map(Some);
            }
            Command::CreateStream { transaction_id } => {
                self.require_connected("createStream before connect")?;
                let id = self.next_stream_id;
                self.next_stream_id = self.next_stream_id.saturating_add(1);
                self.command(0, command::result(transaction_id, Value::Number(id as f64)));
            }
            Command::ReleaseStream { transaction_id, .. }
            | Command::FcUnpublish { transaction_id, .. } => {
                self.command(0, answer(transaction_id))
            }
            Command::FcPublish {
                transaction_id,
                name,
            } => {
                self.command(0, answer(transaction_id));
                self.command(0, command::on_fc_publish(&name));
            }
            Command::FcSubscribe {
                transaction_id,
                name,
            } => {
                if transaction_id != 0.0 {
                    self.command(0, answer(transaction_id));
                }
                self.command(0, command::on_fc_subscribe(&name));
            }
            Command::FcUnsubscribe { transaction_id } if transaction_id != 0.0 => {
                self.command(0, answer(transaction_id))
            }
            Command::FcUnsubscribe { .. } => {}
            Command::Publish { name, .. } => {
                self.require_connected("publish before connect")?;
                self.require_no_role(stream_id, status::PUBLISH_BAD_NAME)?;
                return Ok(Some(ServerEvent::PublishRequested {
                    stream_id,
                    name: name.unwrap_or_default(),
                }));
            }
            Command::Play { name, .. } => {
                self.require_connected("play before connect")?;
                self.require_no_role(stream_id, status::PLAY_FAILED)?;
                return Ok(Some(ServerEvent::PlayRequested {
                    stream_id,
                    name: name.unwrap_or_default(),
                }));
            }
            Command::DeleteStream { stream_id: id, .. } => return Ok(self.on_close_stream(id)),
            Command::CloseStream { .. } => return Ok(self.on_close_stream(stream_id)),
            Command::GetStreamLength { transaction_id, .. } => {
                self.command(0, command::result(transaction_id, Value::Number(0.0)));
            }
            Command::ReceiveAudio(on) => return Ok(self.if_playing(ServerEvent::ReceiveAudio(on))),
            Command::ReceiveVideo(on) => return Ok(self.if_playing(ServerEvent::ReceiveVideo(on))),
            Command::Pause { paused, .. } => return Ok(self.on_pause(paused)),
            Command::Response { .. } => {}
            Command::Unknown {
                name,
                transaction_id,
            } => {
                self.unknown_commands = self.unknown_commands.saturating_add(1);
                if transaction_id != 0.0 {
                    let reply = command::error(
                        transaction_id,
                        "NetConnection.Call.Failed",
                        "Unknown command.",
                    );
                    self.command(stream_id, reply);
                }
                return Ok(Some(ServerEvent::UnknownCommand {
                    name: name.chars().take(MAX_REPORTED_NAME).collect(),
                    count: self.unknown_commands,
                }));
            }
        }
        Ok(None)
    }

    fn on_connect(
        &mut self,
        transaction_id: f64,
        app: Option<String>,
        object_encoding: Option<f64>,
        enhanced: bool,
    ) -> Result<ServerEvent, SessionError> {
        if self.app.is_some() {
            return Err(SessionError::Protocol("second connect"));
        }
        let Some(app) = app.filter(|a| !a.trim_matches('/').is_empty()) else {
            self.command(
                0,
                command::connect_rejected(transaction_id, "No application name given."),
            );
            return Err(SessionError::Rejected("connect without an app".into()));
        };
        let window = self.config.window_ack_size;
        for control in [
            Message::WindowAckSize(window),
            Message::SetPeerBandwidth {
                size: window,
                limit: BandwidthLimit::Dynamic,
            },
            Message::SetChunkSize(self.config.chunk_size),
        ] {
            self.link.send(Outgoing::control(control));
        }
        self.command(
            0,
            command::connect_result(transaction_id, object_encoding.unwrap_or(0.0), enhanced),
        );
        self.app = Some(app.clone());
        Ok(ServerEvent::Connected { app })
    }

    /// One connection publishes or plays one stream at a time.
    fn require_no_role(&mut self, stream_id: u32, code: &str) -> Result<(), SessionError> {
        if self.role.is_none() {
            return Ok(());
        }
        self.reject(
            stream_id,
            code,
            "This connection already publishes or plays.",
        );
        Err(SessionError::Rejected(
            "second publish or play on one connection".into(),
        ))
    }

    fn on_close_stream(&mut self, stream_id: u32) -> Option<ServerEvent> {
        let role = self.role?;
        let (StreamRole::Publishing(id) | StreamRole::Playing(id)) = role;
        if id != stream_id {
            return None;
        }
        self.role = None;
        if matches!(role, StreamRole::Publishing(_)) {
            self.status(
                stream_id,
                Level::Status,
                status::UNPUBLISH_SUCCESS,
                "Stopped publishing.",
            );
        }
        Some(ServerEvent::Stopped(role))
    }

    fn if_playing(&self, event: ServerEvent) -> Option<ServerEvent> {
        matches!(self.role, Some(StreamRole::Playing(_))).then_some(event)
    }

    fn on_pause(&mut self, paused: bool) -> Option<ServerEvent> {
        let Some(StreamRole::Playing(stream_id)) = self.role else {
            return None;
        };
        let (code, description) = if paused {
            (status::PAUSE_NOTIFY, "Paused.")
        } else {
            (status::UNPAUSE_NOTIFY, "Unpaused.")
        };
        self.status(stream_id, Level::Status, code, description);
        Some(ServerEvent::Paused(paused))
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
