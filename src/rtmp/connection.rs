//! One RTMP connection on its own thread: the blocking handshake, then the
//! read loop that feeds the connection's session state machine, acts on its
//! events (see `requests`) and sends what it queues. A publisher's media
//! goes to its stream from this thread. A player's thread also drains the
//! player's output queue (see `player`), reading what the player sends
//! between writes.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::player::PlayerWriter;
use super::socket::{READ_AVAILABLE_LIMIT, read_available};
use super::writer::{ChunkWriter, Frame};
use crate::hub::history::EndReason;
use crate::hub::input::{IngestError, Input};
use crate::hub::stream::Stream;
use crate::hub::stream_key::StreamKey;
use crate::metrics::{self, GaugeGuard, Metrics};
use crate::protocol::handshake::{HandshakeError, ServerHandshake};
use crate::protocol::session::SessionError;
use crate::protocol::session::server::{ServerConfig, ServerSession};
use crate::server::Shared;

/// Read buffer of a connection, and of a publisher (which reads much more).
const READ_BUFFER_SIZE: usize = 1024;
pub(super) const PUBLISHER_READ_BUFFER_SIZE: usize = 64 * 1024;
/// How often a player's input is read while its media is written.
const INPUT_POLL: Duration = Duration::from_millis(500);

/// Why a connection ended.
#[derive(Debug)]
pub enum ConnectionError {
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
    /// The peer broke the protocol, or a request was refused.
    Session(SessionError),
    /// A publisher sent media its stream cannot take.
    Ingest(IngestError),
    /// A request the server refused (and told the client why).
    Rejected(String),
    ShuttingDown,
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Io(e) => write!(f, "socket error: {e}"),
            ConnectionError::Closed => write!(f, "closed by peer"),
            ConnectionError::HandshakeTimeout => write!(f, "handshake timed out"),
            ConnectionError::Handshake(e) => write!(f, "handshake failed: {e}"),
            ConnectionError::Idle(why) => write!(f, "{why}"),
            ConnectionError::PublisherTimeout => write!(f, "publisher sent nothing in time"),
            ConnectionError::Session(e) => write!(f, "{e}"),
            ConnectionError::Ingest(e) => write!(f, "{e}"),
            ConnectionError::Rejected(why) => write!(f, "rejected: {why}"),
            ConnectionError::ShuttingDown => write!(f, "server shutting down"),
        }
    }
}

impl std::error::Error for ConnectionError {}

impl From<io::Error> for ConnectionError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::UnexpectedEof => ConnectionError::Closed,
            _ => ConnectionError::Io(e),
        }
    }
}

impl From<HandshakeError> for ConnectionError {
    fn from(e: HandshakeError) -> Self {
        ConnectionError::Handshake(e)
    }
}

impl From<SessionError> for ConnectionError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Rejected(why) => ConnectionError::Rejected(why),
            e => ConnectionError::Session(e),
        }
    }
}

impl From<IngestError> for ConnectionError {
    fn from(e: IngestError) -> Self {
        ConnectionError::Ingest(e)
    }
}

impl ConnectionError {
    fn is_protocol_error(&self) -> bool {
        matches!(
            self,
            ConnectionError::Session(_)
                | ConnectionError::Ingest(
                    IngestError::Aggregate(_)
                        | IngestError::Message(_)
                        | IngestError::PartTooLarge { .. }
                )
        )
    }

    /// How a publish session that ended with this error is recorded.
    fn end_reason(&self) -> EndReason {
        match self {
            ConnectionError::PublisherTimeout | ConnectionError::Idle(_) => {
                EndReason::PublisherTimeout
            }
            ConnectionError::ShuttingDown => EndReason::Shutdown,
            e if e.is_protocol_error() => EndReason::ProtocolError,
            _ => EndReason::PublisherClosed,
        }
    }

    /// The counter, if any, this way of ending bumps.
    fn counter(&self) -> Option<fn(&Metrics) -> &AtomicU64> {
        match self {
            ConnectionError::HandshakeTimeout | ConnectionError::Handshake(_) => {
                Some(|m| &m.handshake_failures)
            }
            ConnectionError::Idle(_) | ConnectionError::PublisherTimeout => {
                Some(|m| &m.zombie_connections)
            }
            e if e.is_protocol_error() => Some(|m| &m.protocol_errors),
            _ => None,
        }
    }
}

/// What the connection does now.
pub(super) enum Role {
    /// Connected (or not yet): neither publishing nor playing.
    Idle,
    Publisher {
        input: Input,
        key: StreamKey,
        _active: GaugeGuard,
    },
    Player {
        stream: Arc<Stream>,
        key: StreamKey,
        writer: PlayerWriter,
        _active: GaugeGuard,
    },
}

pub(super) struct Connection {
    pub(super) id: u64,
    pub(super) peer: SocketAddr,
    pub(super) shared: Arc<Shared>,
    /// The one socket, shared by this thread's reads and the writer.
    pub(super) socket: Arc<TcpStream>,
    pub(super) writer: Arc<ChunkWriter>,
    pub(super) session: ServerSession,
    pub(super) read_buffer: Vec<u8>,
    pub(super) role: Role,
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

/// Serves one accepted connection until it ends, then logs why.
pub fn serve(
    shared: Arc<Shared>,
    socket: Arc<TcpStream>,
    id: u64,
    peer: SocketAddr,
    kicked: Arc<AtomicBool>,
) {
    let mut connection = match Connection::new(Arc::clone(&shared), socket, id, peer, kicked) {
        Ok(connection) => connection,
        Err(e) => {
            log::info!("conn#{id} {peer} closed: {e}");
            return;
        }
    };
    let result = connection.run();
    let handshaken = connection.active.is_some();
    let reason = match &result {
        _ if connection.kicked.load(Ordering::SeqCst) => EndReason::Kicked,
        Err(e) => e.end_reason(),
        Ok(()) => EndReason::PublisherClosed,
    };
    connection.leave_role(reason);
    // Dropping the connection closes the socket.
    drop(connection);
    if let Err(e) = &result
        && let Some(counter) = e.counter()
    {
        metrics::add(counter(&shared.metrics), 1);
    }
    if !handshaken && matches!(result, Err(ConnectionError::Closed)) {
        // A peer that went away mid-handshake failed it too.
        metrics::add(&shared.metrics.handshake_failures, 1);
    }
    match result {
        _ if reason == EndReason::Kicked => {
            log::info!("conn#{id} {peer} closed: kicked through the API")
        }
        Err(ConnectionError::Closed) => log::info!("conn#{id} {peer} closed by peer"),
        Err(ConnectionError::ShuttingDown) => {
            log::debug!("conn#{id} {peer} closed for shutdown")
        }
        Err(
            e @ (ConnectionError::Io(_)
            | ConnectionError::Rejected(_)
            | ConnectionError::PublisherTimeout
            | ConnectionError::Idle(_)),
        ) => {
            log::info!("conn#{id} {peer} closed: {e}")
        }
        Err(e) => log::warn!("conn#{id} {peer} closed: {e}"),
        Ok(()) => log::info!("conn#{id} {peer} closed"),
    }
}

impl Connection {
    fn new(
        shared: Arc<Shared>,
        socket: Arc<TcpStream>,
        id: u64,
        peer: SocketAddr,
        kicked: Arc<AtomicBool>,
    ) -> Result<Connection, ConnectionError> {
        socket.set_write_timeout(Some(shared.config.write_timeout))?;
        let config = ServerConfig {
            chunk_size: shared.config.chunk_size as u32,
            max_message_size: shared.config.max_message_size,
            ..ServerConfig::default()
        };
        Ok(Connection {
            id,
            peer,
            writer: Arc::new(ChunkWriter::new(Arc::clone(&socket))),
            socket,
            session: ServerSession::new(config),
            read_buffer: vec![0; READ_BUFFER_SIZE],
            shared,
            role: Role::Idle,
            kicked,
            active: None,
        })
    }

    fn run(&mut self) -> Result<(), ConnectionError> {
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
            self.process()?;
            if matches!(self.role, Role::Player { .. }) {
                // Returns when the player stops playing but stays
                // connected. At shutdown a player leaves from there, once
                // told the stream ended.
                self.serve_player().map_err(|e| {
                    if self.shared.shutting_down.load(Ordering::Relaxed) {
                        ConnectionError::ShuttingDown
                    } else {
                        e
                    }
                })?;
                last_activity = Instant::now();
                read_timeout = None;
                continue;
            }
            if self.shared.shutting_down.load(Ordering::Relaxed) {
                return Err(ConnectionError::ShuttingDown);
            }
            let config = &self.shared.config;
            // When this connection has been quiet too long, and how long a
            // read may block before that is checked again. Reads block for
            // a fixed time in each role, so the socket option is set only
            // when the role changes.
            let now = Instant::now();
            let (deadline, wait) = match &self.role {
                Role::Idle if self.session.app().is_none() => {
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
            let n = match (&*self.socket).read(&mut self.read_buffer) {
                Ok(0) => return Err(ConnectionError::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => continue,
                Err(e) => return Err(e.into()),
            };
            last_activity = Instant::now();
            let Connection {
                session,
                read_buffer,
                ..
            } = self;
            session.feed(&read_buffer[..n]);
        }
    }

    /// Acts on every event the session has for what it was fed, then
    /// sends what it queued. On an error what was queued (a refusal's
    /// status) is still sent, as far as the socket takes it.
    fn process(&mut self) -> Result<(), ConnectionError> {
        loop {
            let result = loop {
                match self.session.poll() {
                    Ok(Some(event)) => {
                        if let Err(e) = self.on_event(event) {
                            break Err(e);
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e.into()),
                }
            };
            // The session stops when enough waits to be sent: send it,
            // then go on decoding what was read.
            let more = result.is_ok() && self.session.has_outgoing();
            let flushed = self.flush();
            result?;
            flushed?;
            if !more {
                return Ok(());
            }
        }
    }

    /// Sends what the session queued.
    pub(super) fn flush(&mut self) -> Result<(), ConnectionError> {
        if self.session.has_outgoing() {
            let frames: Vec<Frame<'static>> =
                self.session.take_outgoing().map(Frame::from).collect();
            self.writer.write_frames(frames, 0)?;
        }
        Ok(())
    }

    /// The player's loop: drains its queue to the socket (this thread is
    /// its writer) and, every `INPUT_POLL`, reads whatever the player sent
    /// without blocking: acknowledgements, pause, deleteStream. At
    /// shutdown it keeps writing until it has written the end-of-stream
    /// notice (or the server closes its socket). Returns when the
    /// connection stops playing.
    fn serve_player(&mut self) -> Result<(), ConnectionError> {
        let coalesce = self.shared.config.write_coalesce;
        let idle_timeout = self.shared.config.idle_timeout;
        let mut last_poll = Instant::now();
        let mut last_activity = last_poll;
        let mut bytes_seen = 0;
        loop {
            let Role::Player { writer, .. } = &mut self.role else {
                return Ok(());
            };
            let wait = INPUT_POLL.saturating_sub(last_poll.elapsed());
            if writer.drain(&self.writer, wait, coalesce)?.is_err() {
                return Err(ConnectionError::Rejected("dropped as a slow player".into()));
            }
            if writer.told_ended() && self.shared.shutting_down.load(Ordering::Relaxed) {
                return Err(ConnectionError::ShuttingDown);
            }
            if last_poll.elapsed() < INPUT_POLL {
                continue;
            }
            let sent = writer.queue().shared().stats().bytes_sent;
            let now = Instant::now();
            last_poll = now;
            if sent != bytes_seen {
                bytes_seen = sent;
                last_activity = now;
            }
            if self.poll_input()? > 0 {
                last_activity = now;
            }
            self.process()?;
            if now.duration_since(last_activity) >= idle_timeout {
                return Err(ConnectionError::Idle("idle for -idle-timeout"));
            }
        }
    }

    /// Reads what the peer has sent without waiting for more (a bounded
    /// amount); returns how many bytes that was.
    fn poll_input(&mut self) -> Result<usize, ConnectionError> {
        let session = &mut self.session;
        Ok(read_available(
            &self.socket,
            &mut self.read_buffer,
            READ_AVAILABLE_LIMIT,
            |bytes| session.feed(bytes),
        )?)
    }

    /// The error for a connection that stayed quiet past its deadline.
    fn idle_error(&self) -> ConnectionError {
        match (&self.role, self.session.app()) {
            (Role::Publisher { .. }, _) => ConnectionError::PublisherTimeout,
            (Role::Idle, None) => ConnectionError::Idle("no connect in time"),
            _ => ConnectionError::Idle("idle for -idle-timeout"),
        }
    }

    fn handshake(&mut self) -> Result<(), ConnectionError> {
        let deadline = Instant::now() + self.shared.config.handshake_timeout;
        let uptime_ms = self.shared.started.elapsed().as_millis() as u32;
        let mut handshake = ServerHandshake::new(uptime_ms);
        let mut socket = &*self.socket;
        while !handshake.is_done() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ConnectionError::HandshakeTimeout);
            }
            socket.set_read_timeout(Some(left))?;
            let n = match socket.read(&mut self.read_buffer) {
                Ok(0) => return Err(ConnectionError::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => return Err(ConnectionError::HandshakeTimeout),
                Err(e) => return Err(e.into()),
            };
            let mut used = 0;
            while used < n && !handshake.is_done() {
                used += handshake.feed(&self.read_buffer[used..n])?;
                let output = handshake.take_output();
                if !output.is_empty() {
                    socket.write_all(&output)?;
                }
            }
            if handshake.is_done() {
                self.session.feed(&self.read_buffer[used..n]);
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
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Also runs while unwinding from a panic: nothing is left claimed.
        self.writer.shutdown();
        self.leave_role(EndReason::ProtocolError);
    }
}
