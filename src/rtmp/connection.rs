//! One RTMP connection, on its own thread: the blocking handshake, then the
//! chunk read loop that dispatches control messages, commands, metadata and
//! media. A publisher's media goes straight to its stream from this thread;
//! a player's thread becomes its writer: it drains the player's queue (see
//! `subscriber`) and reads the player's commands and acknowledgements
//! between writes.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::writer::ConnWriter;
use crate::hub::history::EndReason;
use crate::hub::packet::{Packet, PacketKind, csid};
use crate::hub::stream::Stream;
use crate::hub::stream_key::StreamKey;
use crate::hub::subscriber::{self, Drained, PlayerQueue, SubscriberShared};
use crate::metrics::{self, GaugeGuard, Metrics};
use crate::protocol::aggregate::{self, AggregateError};
use crate::protocol::amf0::{self, Value};
use crate::protocol::chunk_decoder::{ChunkDecoder, ChunkError};
use crate::protocol::command::{self, Command, CommandError, Level, status};
use crate::protocol::data;
use crate::protocol::handshake::{HandshakeError, ServerHandshake};
use crate::protocol::message::{
    BandwidthLimit, Message, MessageError, RawMessage, UserControl, type_id,
};
use crate::server::Shared;

/// Window Acknowledgement Size and peer bandwidth the server announces.
const WINDOW_ACK_SIZE: u32 = 5_000_000;
/// Read buffer of a connection, and of a publisher (which reads much more).
const READ_BUFFER_SIZE: usize = 1024;
const PUBLISHER_READ_BUFFER_SIZE: usize = 64 * 1024;
/// How often a player's input is read while its media is written.
const INPUT_POLL: Duration = Duration::from_millis(500);
/// Longest command name repeated in a log line.
const MAX_LOGGED_NAME: usize = 64;
/// Unknown commands logged at info level per connection; more go to debug.
const MAX_LOGGED_UNKNOWN: u32 = 10;

/// Why a connection ended.
#[derive(Debug)]
pub enum SessionError {
    Io(io::Error),
    /// The peer closed the connection.
    Closed,
    HandshakeTimeout,
    Handshake(HandshakeError),
    /// Quiet for too long: no `connect` in time, or nothing to or from it
    /// for `-idle-timeout`.
    Idle(&'static str),
    /// A publisher that sent nothing for `-publisher-timeout`.
    PublisherTimeout,
    Chunk(ChunkError),
    Message(MessageError),
    Command(CommandError),
    Aggregate(AggregateError),
    /// A request out of order, e.g. `publish` before `connect`.
    Protocol(&'static str),
    /// A request the server refused (and told the client why).
    Rejected(String),
    ShuttingDown,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Io(e) => write!(f, "socket error: {e}"),
            SessionError::Closed => write!(f, "closed by peer"),
            SessionError::HandshakeTimeout => write!(f, "handshake timed out"),
            SessionError::Handshake(e) => write!(f, "handshake failed: {e}"),
            SessionError::Idle(why) => write!(f, "{why}"),
            SessionError::PublisherTimeout => write!(f, "publisher sent nothing in time"),
            SessionError::Chunk(e) => write!(f, "bad chunk stream: {e}"),
            SessionError::Message(e) => write!(f, "bad message: {e}"),
            SessionError::Command(e) => write!(f, "bad command: {e}"),
            SessionError::Aggregate(e) => write!(f, "bad aggregate: {e}"),
            SessionError::Protocol(what) => write!(f, "protocol violation: {what}"),
            SessionError::Rejected(why) => write!(f, "rejected: {why}"),
            SessionError::ShuttingDown => write!(f, "server shutting down"),
        }
    }
}

impl std::error::Error for SessionError {}

macro_rules! from_error {
    ($($source:ty => $variant:ident),*) => {
        $(impl From<$source> for SessionError {
            fn from(e: $source) -> Self {
                SessionError::$variant(e)
            }
        })*
    };
}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::UnexpectedEof => SessionError::Closed,
            _ => SessionError::Io(e),
        }
    }
}

from_error!(HandshakeError => Handshake, ChunkError => Chunk,
    MessageError => Message, CommandError => Command, AggregateError => Aggregate);

enum Role {
    /// Connected (or not yet): neither publishing nor playing.
    Idle,
    Publisher {
        stream: Arc<Stream>,
        key: StreamKey,
        stream_id: u32,
        _active: GaugeGuard,
    },
    Player {
        stream: Arc<Stream>,
        key: StreamKey,
        queue: PlayerQueue,
        stream_id: u32,
        _active: GaugeGuard,
    },
}

struct Session {
    id: u64,
    peer: SocketAddr,
    shared: Arc<Shared>,
    socket: TcpStream,
    writer: Arc<ConnWriter>,
    decoder: ChunkDecoder,
    read_buffer: Vec<u8>,
    app: Option<String>,
    next_stream_id: u32,
    role: Role,
    bytes_received: u64,
    bytes_acknowledged: u64,
    peer_window: u32,
    warned_stray_media: bool,
    unknown_commands: u32,
    /// Set when the HTTP API kicks this connection.
    kicked: Arc<AtomicBool>,
    /// Held from the end of the handshake: the connection counts as active.
    active: Option<GaugeGuard>,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl SessionError {
    /// How a publish session that ended with this error is recorded.
    fn end_reason(&self) -> EndReason {
        match self {
            SessionError::PublisherTimeout | SessionError::Idle(_) => EndReason::PublisherTimeout,
            SessionError::ShuttingDown => EndReason::Shutdown,
            SessionError::Chunk(_)
            | SessionError::Message(_)
            | SessionError::Command(_)
            | SessionError::Aggregate(_)
            | SessionError::Protocol(_) => EndReason::ProtocolError,
            _ => EndReason::PublisherClosed,
        }
    }

    /// The counter, if any, this way of ending bumps.
    fn counter(&self) -> Option<fn(&Metrics) -> &AtomicU64> {
        match self {
            SessionError::HandshakeTimeout | SessionError::Handshake(_) => {
                Some(|m| &m.handshake_failures)
            }
            SessionError::Idle(_) | SessionError::PublisherTimeout => {
                Some(|m| &m.zombie_connections)
            }
            SessionError::Chunk(_)
            | SessionError::Message(_)
            | SessionError::Command(_)
            | SessionError::Aggregate(_)
            | SessionError::Protocol(_) => Some(|m| &m.protocol_errors),
            _ => None,
        }
    }
}

/// Serves one accepted connection until it ends, then logs why.
pub fn serve(
    shared: Arc<Shared>,
    socket: TcpStream,
    id: u64,
    peer: SocketAddr,
    kicked: Arc<AtomicBool>,
) {
    let mut session = match Session::new(Arc::clone(&shared), socket, id, peer, kicked) {
        Ok(session) => session,
        Err(e) => {
            log::info!("conn#{id} {peer} closed: {e}");
            return;
        }
    };
    let result = session.run();
    let handshaken = session.active.is_some();
    let reason = match &result {
        _ if session.kicked.load(Ordering::SeqCst) => EndReason::Kicked,
        Err(e) => e.end_reason(),
        Ok(()) => EndReason::PublisherClosed,
    };
    session.leave_role(reason);
    // Dropping the session closes the socket.
    drop(session);
    if let Err(e) = &result
        && let Some(counter) = e.counter()
    {
        metrics::add(counter(&shared.metrics), 1);
    }
    if !handshaken && matches!(result, Err(SessionError::Closed)) {
        // A peer that went away mid-handshake failed it too.
        metrics::add(&shared.metrics.handshake_failures, 1);
    }
    match result {
        _ if reason == EndReason::Kicked => {
            log::info!("conn#{id} {peer} closed: kicked through the API")
        }
        Err(SessionError::Closed) => log::info!("conn#{id} {peer} closed by peer"),
        Err(SessionError::ShuttingDown) => log::debug!("conn#{id} {peer} closed for shutdown"),
        Err(
            e @ (SessionError::Io(_)
            | SessionError::Rejected(_)
            | SessionError::PublisherTimeout
            | SessionError::Idle(_)),
        ) => {
            log::info!("conn#{id} {peer} closed: {e}")
        }
        Err(e) => log::warn!("conn#{id} {peer} closed: {e}"),
        Ok(()) => log::info!("conn#{id} {peer} closed"),
    }
}

impl Session {
    fn new(
        shared: Arc<Shared>,
        socket: TcpStream,
        id: u64,
        peer: SocketAddr,
        kicked: Arc<AtomicBool>,
    ) -> Result<Session, SessionError> {
        socket.set_write_timeout(Some(shared.config.write_timeout))?;
        let writer = Arc::new(ConnWriter::new(socket.try_clone()?)?);
        Ok(Session {
            id,
            peer,
            decoder: ChunkDecoder::new(shared.config.max_message_size),
            read_buffer: vec![0; READ_BUFFER_SIZE],
            shared,
            socket,
            writer,
            app: None,
            next_stream_id: 1,
            role: Role::Idle,
            bytes_received: 0,
            bytes_acknowledged: 0,
            peer_window: 0,
            warned_stray_media: false,
            unknown_commands: 0,
            kicked,
            active: None,
        })
    }

    fn run(&mut self) -> Result<(), SessionError> {
        self.handshake()?;
        self.active = Some(GaugeGuard::raise(
            &self.shared.metrics,
            |m| &m.connections_active,
            Some(|m| &m.connections_total),
        ));
        let handshake_done = Instant::now();
        let mut last_activity = handshake_done;
        let mut read_timeout = None;
        loop {
            while let Some(message) = self.decoder.decode()? {
                self.handle(message, true)?;
            }
            if self.shared.shutting_down.load(Ordering::Relaxed) {
                return Err(SessionError::ShuttingDown);
            }
            if matches!(self.role, Role::Player { .. }) {
                // Returns when the player stops playing but stays connected.
                self.serve_player().map_err(|e| {
                    if self.shared.shutting_down.load(Ordering::Relaxed) {
                        SessionError::ShuttingDown
                    } else {
                        e
                    }
                })?;
                last_activity = Instant::now();
                read_timeout = None;
                continue;
            }
            let config = &self.shared.config;
            // When this connection has been quiet too long, and how long a
            // read may block before that is checked again. Reads block for
            // a fixed time in each role, so the socket option is set only
            // when the role changes.
            let now = Instant::now();
            let (deadline, wait) = match &self.role {
                Role::Idle if self.app.is_none() => {
                    let deadline = handshake_done + config.handshake_timeout;
                    (deadline, deadline.saturating_duration_since(now))
                }
                Role::Publisher { .. } => (
                    last_activity + config.publisher_timeout,
                    config.publisher_timeout,
                ),
                _ => (last_activity + config.idle_timeout, config.idle_timeout),
            };
            if now >= deadline {
                return Err(self.idle_error());
            }
            let wait = Some(wait.max(Duration::from_millis(1)));
            if wait != read_timeout {
                self.socket.set_read_timeout(wait)?;
                read_timeout = wait;
            }
            let n = match self.socket.read(&mut self.read_buffer) {
                Ok(0) => return Err(SessionError::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => continue,
                Err(e) => return Err(e.into()),
            };
            last_activity = Instant::now();
            self.count_received(n)?;
            self.decoder.feed(&self.read_buffer[..n]);
        }
    }

    /// The player's loop: drains its queue to the socket (this thread is
    /// its writer) and, every `INPUT_POLL`, reads whatever the player sent
    /// without blocking: acknowledgements, pause, deleteStream. Returns
    /// when the connection stops playing.
    fn serve_player(&mut self) -> Result<(), SessionError> {
        let coalesce = self.shared.config.write_coalesce;
        let idle_timeout = self.shared.config.idle_timeout;
        let mut last_poll = Instant::now();
        let mut last_activity = last_poll;
        let mut bytes_seen = 0;
        loop {
            // At shutdown a player keeps writing (the end-of-stream notice
            // among the rest) until the server closes its socket.
            let Role::Player {
                queue, stream_id, ..
            } = &mut self.role
            else {
                return Ok(());
            };
            let wait = INPUT_POLL.saturating_sub(last_poll.elapsed());
            if queue.drain(&self.writer, *stream_id, wait, coalesce)? == Drained::Released {
                return Err(SessionError::Rejected("dropped as a slow player".into()));
            }
            if last_poll.elapsed() < INPUT_POLL {
                continue;
            }
            let sent = queue.shared().stats().bytes_sent;
            let now = Instant::now();
            last_poll = now;
            if sent != bytes_seen {
                bytes_seen = sent;
                last_activity = now;
            }
            if self.poll_input()? > 0 {
                last_activity = now;
            }
            while let Some(message) = self.decoder.decode()? {
                self.handle(message, true)?;
            }
            if now.duration_since(last_activity) >= idle_timeout {
                return Err(SessionError::Idle("idle for -idle-timeout"));
            }
        }
    }

    /// Reads what the peer has sent without waiting for more; returns how
    /// many bytes that was.
    fn poll_input(&mut self) -> Result<usize, SessionError> {
        self.socket.set_nonblocking(true)?;
        let mut total = 0;
        let result = loop {
            match self.socket.read(&mut self.read_buffer) {
                Ok(0) => break Err(SessionError::Closed),
                Ok(n) => {
                    total += n;
                    self.decoder.feed(&self.read_buffer[..n]);
                    if n < self.read_buffer.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e.into()),
            }
        };
        // Blocking again before anything is written (acknowledgements).
        self.socket.set_nonblocking(false)?;
        result?;
        self.count_received(total)?;
        Ok(total)
    }

    /// The error for a connection that stayed quiet past its deadline.
    fn idle_error(&self) -> SessionError {
        match (&self.role, &self.app) {
            (Role::Publisher { .. }, _) => SessionError::PublisherTimeout,
            (Role::Idle, None) => SessionError::Idle("no connect in time"),
            _ => SessionError::Idle("idle for -idle-timeout"),
        }
    }

    fn handshake(&mut self) -> Result<(), SessionError> {
        let deadline = Instant::now() + self.shared.config.handshake_timeout;
        let uptime_ms = self.shared.started.elapsed().as_millis() as u32;
        let mut handshake = ServerHandshake::new(uptime_ms);
        while !handshake.is_done() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SessionError::HandshakeTimeout);
            }
            self.socket.set_read_timeout(Some(left))?;
            let n = match self.socket.read(&mut self.read_buffer) {
                Ok(0) => return Err(SessionError::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(SessionError::HandshakeTimeout),
                Err(e) => return Err(e.into()),
            };
            let mut used = 0;
            while used < n && !handshake.is_done() {
                used += handshake.feed(&self.read_buffer[used..n])?;
                let output = handshake.take_output();
                if !output.is_empty() {
                    (&self.socket).write_all(&output)?;
                }
            }
            if handshake.is_done() {
                self.decoder.feed(&self.read_buffer[used..n]);
                self.count_received(n - used)?;
            }
        }
        log::debug!(
            "conn#{} {} handshake done ({:?})",
            self.id,
            self.peer,
            handshake.kind()
        );
        Ok(())
    }

    /// Counts received chunk bytes and acknowledges each window's worth
    /// with the total so far, mod 2^32.
    fn count_received(&mut self, n: usize) -> Result<(), SessionError> {
        self.bytes_received += n as u64;
        if self.peer_window > 0
            && self.bytes_received - self.bytes_acknowledged >= self.peer_window as u64
        {
            self.bytes_acknowledged = self.bytes_received;
            let ack = Message::Acknowledgement {
                sequence: self.bytes_received as u32,
            };
            self.send_control(ack)?;
        }
        Ok(())
    }

    fn send_control(&self, message: Message) -> io::Result<()> {
        self.writer.send(csid::CONTROL, message.encode(0, 0))
    }

    fn send_command(&self, stream_id: u32, values: Vec<Value>) -> io::Result<()> {
        let chunk_stream = if stream_id == 0 {
            csid::COMMAND
        } else {
            csid::STREAM
        };
        self.writer
            .send(chunk_stream, Message::Command(values).encode(0, stream_id))
    }

    fn send_status(
        &self,
        stream_id: u32,
        level: Level,
        code: &str,
        description: &str,
    ) -> io::Result<()> {
        self.send_command(stream_id, command::on_status(level, code, description))
    }

    fn handle(&mut self, raw: RawMessage, top_level: bool) -> Result<(), SessionError> {
        match Message::decode(&raw)? {
            Message::SetChunkSize(size) => {
                log::debug!("conn#{} peer chunk size {size}", self.id)
            }
            Message::WindowAckSize(size) => self.peer_window = size,
            Message::UserControl(UserControl::PingRequest(timestamp)) => {
                self.send_control(Message::UserControl(UserControl::PingResponse(timestamp)))?
            }
            Message::Audio(payload) => self.on_media(PacketKind::Audio, raw.timestamp, payload),
            Message::Video(payload) => self.on_media(PacketKind::Video, raw.timestamp, payload),
            Message::Data(values) => self.on_data(raw.timestamp, values),
            Message::Command(values) => self.on_command(raw.stream_id, &values)?,
            Message::Aggregate(_) if top_level => {
                for sub in aggregate::split(&raw)? {
                    if matches!(
                        sub.type_id,
                        type_id::AUDIO | type_id::VIDEO | type_id::DATA_AMF0
                    ) {
                        self.handle(sub, false)?;
                    }
                }
            }
            // Acknowledgements, bandwidth, abort (applied by the decoder),
            // other user control events, shared objects, nested aggregates.
            _ => {}
        }
        Ok(())
    }

    fn on_media(&mut self, kind: PacketKind, timestamp: u32, payload: bytes::Bytes) {
        match &self.role {
            Role::Publisher { stream, .. } => {
                if !payload.is_empty() {
                    stream.publish(Packet::new(kind, timestamp, payload));
                }
            }
            _ => {
                if !self.warned_stray_media {
                    self.warned_stray_media = true;
                    log::warn!(
                        "conn#{} {} sent media without publishing; dropped",
                        self.id,
                        self.peer
                    );
                }
            }
        }
    }

    fn on_data(&mut self, timestamp: u32, values: Vec<Value>) {
        let Role::Publisher { stream, .. } = &self.role else {
            return;
        };
        let (player_form, is_metadata) = match data::metadata_for_players(&values) {
            Some(metadata) => (metadata, true),
            None => (values, false),
        };
        let packet = Packet::new(
            PacketKind::Data,
            timestamp,
            amf0::encode_all(&player_form).into(),
        );
        if is_metadata {
            stream.set_metadata(packet);
        } else {
            stream.publish(packet);
        }
    }

    fn on_command(&mut self, stream_id: u32, values: &[Value]) -> Result<(), SessionError> {
        match Command::parse(values)? {
            Command::Connect {
                transaction_id,
                app,
                object_encoding,
                ..
            } => self.on_connect(transaction_id, app, object_encoding)?,
            Command::CreateStream { transaction_id } => {
                self.require_connected("createStream before connect")?;
                let id = self.next_stream_id;
                self.next_stream_id = self.next_stream_id.saturating_add(1);
                self.send_command(0, command::result(transaction_id, Value::Number(id as f64)))?;
            }
            Command::ReleaseStream { transaction_id, .. }
            | Command::FcUnpublish { transaction_id, .. } => {
                self.send_command(0, command::result(transaction_id, Value::Undefined))?;
            }
            Command::FcPublish {
                transaction_id,
                name,
            } => {
                self.send_command(0, command::result(transaction_id, Value::Undefined))?;
                self.send_command(0, command::on_fc_publish(&name))?;
            }
            Command::FcSubscribe {
                transaction_id,
                name,
            } => {
                if transaction_id != 0.0 {
                    self.send_command(0, command::result(transaction_id, Value::Undefined))?;
                }
                self.send_command(0, command::on_fc_subscribe(&name))?;
            }
            Command::FcUnsubscribe { transaction_id } => {
                if transaction_id != 0.0 {
                    self.send_command(0, command::result(transaction_id, Value::Undefined))?;
                }
            }
            Command::Publish { name, .. } => {
                self.on_publish(stream_id, name.unwrap_or_default())?
            }
            Command::Play { name, .. } => self.on_play(stream_id, name.unwrap_or_default())?,
            Command::DeleteStream { stream_id: id, .. } => self.on_close_stream(id)?,
            Command::CloseStream { .. } => self.on_close_stream(stream_id)?,
            Command::GetStreamLength { transaction_id, .. } => {
                self.send_command(0, command::result(transaction_id, Value::Number(0.0)))?;
            }
            Command::ReceiveAudio(on) => self.set_player_flag(|s| &s.receive_audio, on),
            Command::ReceiveVideo(on) => self.set_player_flag(|s| &s.receive_video, on),
            Command::Pause { paused, .. } => self.on_pause(stream_id, paused)?,
            Command::Response { name, .. } => log::debug!("conn#{} peer sent {name}", self.id),
            Command::Unknown {
                name,
                transaction_id,
            } => {
                let shown: String = name.chars().take(MAX_LOGGED_NAME).collect();
                self.unknown_commands += 1;
                // A flood of them must not flood the log.
                let level = if self.unknown_commands <= MAX_LOGGED_UNKNOWN {
                    log::Level::Info
                } else {
                    log::Level::Debug
                };
                log::log!(
                    level,
                    "conn#{} {} unknown command {shown:?}",
                    self.id,
                    self.peer
                );
                if transaction_id != 0.0 {
                    let reply = command::error(
                        transaction_id,
                        "NetConnection.Call.Failed",
                        "Unknown command.",
                    );
                    self.send_command(stream_id, reply)?;
                }
            }
        }
        Ok(())
    }

    fn require_connected(&self, what: &'static str) -> Result<&str, SessionError> {
        self.app.as_deref().ok_or(SessionError::Protocol(what))
    }

    fn on_connect(
        &mut self,
        transaction_id: f64,
        app: Option<String>,
        object_encoding: Option<f64>,
    ) -> Result<(), SessionError> {
        if self.app.is_some() {
            return Err(SessionError::Protocol("second connect"));
        }
        let Some(app) = app.filter(|a| !a.trim_matches('/').is_empty()) else {
            self.send_command(
                0,
                command::connect_rejected(transaction_id, "No application name given."),
            )?;
            return Err(SessionError::Rejected("connect without an app".into()));
        };
        self.send_control(Message::WindowAckSize(WINDOW_ACK_SIZE))?;
        self.send_control(Message::SetPeerBandwidth {
            size: WINDOW_ACK_SIZE,
            limit: BandwidthLimit::Dynamic,
        })?;
        self.writer.set_chunk_size(self.shared.config.chunk_size)?;
        self.send_command(
            0,
            command::connect_result(transaction_id, object_encoding.unwrap_or(0.0)),
        )?;
        self.app = Some(app);
        Ok(())
    }

    fn stream_key(
        &self,
        name: &str,
        stream_id: u32,
        code: &str,
        what: &'static str,
    ) -> Result<StreamKey, SessionError> {
        let app = self.require_connected(what)?;
        if !matches!(self.role, Role::Idle) {
            self.send_status(
                stream_id,
                Level::Error,
                code,
                "This connection already publishes or plays.",
            )?;
            return Err(SessionError::Rejected(
                "second publish or play on one connection".into(),
            ));
        }
        StreamKey::new(app, name).map_err(|e| {
            let _ = self.send_status(stream_id, Level::Error, code, "Invalid stream name.");
            SessionError::Rejected(e.to_string())
        })
    }

    fn on_publish(&mut self, stream_id: u32, name: String) -> Result<(), SessionError> {
        let key = self.stream_key(
            &name,
            stream_id,
            status::PUBLISH_BAD_NAME,
            "publish before connect",
        )?;
        let Ok(stream) = self.shared.registry.publish(&key, self.id, self.peer) else {
            self.send_status(
                stream_id,
                Level::Error,
                status::PUBLISH_BAD_NAME,
                "Stream already publishing.",
            )?;
            return Err(SessionError::Rejected(format!(
                "{key} already has a publisher"
            )));
        };
        self.role = Role::Publisher {
            stream,
            key,
            stream_id,
            _active: GaugeGuard::raise(
                &self.shared.metrics,
                |m| &m.publishers_active,
                Some(|m| &m.publishers_total),
            ),
        };
        self.read_buffer.resize(PUBLISHER_READ_BUFFER_SIZE, 0);
        self.send_control(Message::UserControl(UserControl::StreamBegin(stream_id)))?;
        self.send_status(
            stream_id,
            Level::Status,
            status::PUBLISH_START,
            "Publishing.",
        )?;
        if let Role::Publisher { key, .. } = &self.role {
            log::info!("conn#{} {} publishing {key}", self.id, self.peer);
        }
        Ok(())
    }

    fn on_play(&mut self, stream_id: u32, name: String) -> Result<(), SessionError> {
        let key = self.stream_key(&name, stream_id, status::PLAY_FAILED, "play before connect")?;
        let (stream, subscription) =
            self.shared
                .registry
                .subscribe(&key, self.id, self.peer, Arc::clone(&self.writer));
        // Recorded before anything can fail, so leaving always unsubscribes.
        self.role = Role::Player {
            stream: Arc::clone(&stream),
            key,
            queue: PlayerQueue::new(subscription.shared, subscription.rx),
            stream_id,
            _active: GaugeGuard::raise(
                &self.shared.metrics,
                |m| &m.subscribers_active,
                Some(|m| &m.subscribers_total),
            ),
        };
        let announce = [
            subscriber::control_message(UserControl::StreamBegin(stream_id)),
            subscriber::status_message(
                Level::Status,
                status::PLAY_RESET,
                "Playing and resetting.",
                stream_id,
            ),
            subscriber::status_message(
                Level::Status,
                status::PLAY_START,
                "Started playing.",
                stream_id,
            ),
            subscriber::data_message(data::sample_access(), stream_id),
        ];
        self.writer.write_frames(announce, stream_id)?;
        if let Role::Player { queue, .. } = &self.role {
            queue.write_catch_up(&subscription.catch_up, &self.writer, stream_id)?;
        }
        if let Role::Player { key, .. } = &self.role {
            let waiting = if stream.has_publisher() {
                ""
            } else {
                " (waiting for a publisher)"
            };
            log::info!("conn#{} {} playing {key}{waiting}", self.id, self.peer);
        }
        Ok(())
    }

    fn on_close_stream(&mut self, stream_id: u32) -> Result<(), SessionError> {
        let (ours, was_publishing) = match self.role {
            Role::Idle => (false, false),
            Role::Publisher { stream_id: id, .. } => (id == stream_id, true),
            Role::Player { stream_id: id, .. } => (id == stream_id, false),
        };
        if !ours {
            return Ok(());
        }
        self.leave_role(EndReason::PublisherClosed);
        if was_publishing {
            self.send_status(
                stream_id,
                Level::Status,
                status::UNPUBLISH_SUCCESS,
                "Stopped publishing.",
            )?;
        }
        Ok(())
    }

    fn set_player_flag(
        &self,
        flag: impl Fn(&SubscriberShared) -> &std::sync::atomic::AtomicBool,
        on: bool,
    ) {
        if let Role::Player { queue, .. } = &self.role {
            let subscriber = queue.shared();
            let was = flag(subscriber).swap(on, Ordering::Relaxed);
            if on && !was {
                subscriber.wants_keyframe.store(true, Ordering::Relaxed);
            }
        }
    }

    fn on_pause(&mut self, stream_id: u32, paused: bool) -> Result<(), SessionError> {
        let Role::Player { queue, .. } = &self.role else {
            return Ok(());
        };
        let subscriber = queue.shared();
        subscriber.paused.store(paused, Ordering::Relaxed);
        let code = if paused {
            status::PAUSE_NOTIFY
        } else {
            subscriber.wants_keyframe.store(true, Ordering::Relaxed);
            status::UNPAUSE_NOTIFY
        };
        self.send_status(
            stream_id,
            Level::Status,
            code,
            if paused { "Paused." } else { "Unpaused." },
        )?;
        Ok(())
    }

    /// Stops publishing or playing: a publisher's players are told it left;
    /// a player's queue is released (what is still in it is not written).
    fn leave_role(&mut self, reason: EndReason) {
        match std::mem::replace(&mut self.role, Role::Idle) {
            Role::Idle => {}
            Role::Publisher { stream, key, .. } => {
                self.shared.registry.unpublish(&stream, self.id, reason);
                log::info!("conn#{} {} stopped publishing {key}", self.id, self.peer);
            }
            Role::Player {
                stream, key, queue, ..
            } => {
                self.shared.registry.unsubscribe(&stream, queue.shared().id);
                log::debug!("conn#{} {} stopped playing {key}", self.id, self.peer);
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Also runs while unwinding from a panic: nothing is left claimed.
        self.writer.shutdown();
        self.leave_role(EndReason::ProtocolError);
    }
}
