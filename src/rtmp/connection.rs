//! One RTMP connection on its own thread: the blocking handshake, then the
//! read loop that feeds the connection's session state machine, acts on its
//! events (see `requests`) and sends what it queues. A publisher's media
//! goes to its stream from this thread. A player's media is written by a
//! writer-pool thread (see `player`); this thread keeps blocking in reads,
//! so what the player sends is handled at once.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use super::connection_error::ConnectionError;
use super::player::{PlayerEnd, PlayerLink};
use super::transport::Transport;
use super::writer::{Frame, SendMode};
use super::writer_pool::Assignment;
use crate::hub::history::EndReason;
use crate::hub::input::Input;
use crate::hub::output::OutputShared;
use crate::hub::stream::Stream;
use crate::hub::stream_key::StreamKey;
use crate::metrics::{self, GaugeGuard};
use crate::protocol::handshake::ServerHandshake;
use crate::protocol::session::server::{ServerConfig, ServerSession};
use crate::server::Shared;

/// Read buffer of a connection, and of a publisher (which reads much more).
const READ_BUFFER_SIZE: usize = 1024;
pub(super) const PUBLISHER_READ_BUFFER_SIZE: usize = 64 * 1024;
/// Replies a player's connection may leave unsent (its socket full) before
/// it stops reading the player's input until they are sent.
const MAX_REPLY_BACKLOG: usize = 128 * 1024;
/// How often a connection waiting for its replies to be sent looks.
const REPLY_BACKLOG_POLL: Duration = Duration::from_millis(10);

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
        output: Arc<OutputShared>,
        link: Arc<PlayerLink>,
        writer: Assignment,
        _active: GaugeGuard,
    },
}

pub(super) struct Connection {
    pub(super) id: u64,
    pub(super) peer: SocketAddr,
    pub(super) shared: Arc<Shared>,
    /// The socket, read by this thread, written by it and a player's
    /// writer thread.
    pub(super) transport: Arc<Transport>,
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
    transport: Arc<Transport>,
    id: u64,
    peer: SocketAddr,
    kicked: Arc<AtomicBool>,
) {
    let mut connection = match Connection::new(Arc::clone(&shared), transport, id, peer, kicked) {
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
    // Dropping the connection shuts the socket down (a player's writer
    // thread lets go of it at its next tick).
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
            | ConnectionError::WriteTimeout
            | ConnectionError::SlowPlayer
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
        transport: Arc<Transport>,
        id: u64,
        peer: SocketAddr,
        kicked: Arc<AtomicBool>,
    ) -> Result<Connection, ConnectionError> {
        transport.set_write_timeout(Some(shared.config.write_timeout))?;
        let config = ServerConfig {
            chunk_size: shared.config.chunk_size as u32,
            max_message_size: shared.config.max_message_size,
            ..ServerConfig::default()
        };
        Ok(Connection {
            id,
            peer,
            transport,
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
        // A player is active while its writer sends it media.
        let mut bytes_sent = 0;
        loop {
            self.process()?;
            if self.shared.shutting_down.load(Ordering::Relaxed)
                && !matches!(self.role, Role::Player { .. })
            {
                // A player leaves once told its stream ended (its writer
                // then closes it), or when the server closes its socket.
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
                Role::Player { output, .. } => {
                    let sent = output.stats().bytes_sent;
                    if sent != bytes_sent {
                        bytes_sent = sent;
                        last_activity = now;
                    }
                    (last_activity + config.idle_timeout, config.idle_timeout)
                }
                Role::Idle => (last_activity + config.idle_timeout, config.idle_timeout),
            };
            if now >= deadline {
                return Err(self.idle_error());
            }
            let wait = Some(wait.max(Duration::from_millis(1)));
            if wait != read_timeout {
                self.transport.set_read_timeout(wait)?;
                read_timeout = wait;
            }
            let n = match self.transport.read(&mut self.read_buffer) {
                Ok(0) => return Err(self.read_end(ConnectionError::Closed)),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => continue,
                Err(e) => return Err(self.read_end(e.into())),
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

    /// Why reading ended with `error`: a player's writer may have closed
    /// the socket, and said why.
    fn read_end(&self, error: ConnectionError) -> ConnectionError {
        let end = match &self.role {
            Role::Player { link, .. } => link.end(),
            _ => None,
        };
        match end {
            _ if self.shared.shutting_down.load(Ordering::Relaxed) => ConnectionError::ShuttingDown,
            Some(PlayerEnd::SlowPlayer) => ConnectionError::SlowPlayer,
            Some(PlayerEnd::WriteTimeout) => ConnectionError::WriteTimeout,
            Some(PlayerEnd::WriteFailed(kind)) => io::Error::from(kind).into(),
            Some(PlayerEnd::Shutdown) => ConnectionError::ShuttingDown,
            None => error,
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

    /// Sends what the session queued. A player's replies never wait for
    /// room (its writer thread writes to the same socket): what its socket
    /// does not take now is left to the writer, and when too much is left
    /// this thread waits for it to go before reading more.
    pub(super) fn flush(&mut self) -> Result<(), ConnectionError> {
        self.queue_replies()?;
        self.wait_for_replies()
    }

    /// Sends what the session queued; a player's replies that its socket
    /// does not take now wait in the backlog, for its writer.
    pub(super) fn queue_replies(&mut self) -> Result<(), ConnectionError> {
        if !self.session.has_outgoing() {
            return Ok(());
        }
        let frames = self.session.take_outgoing().map(Frame::from);
        let mode = match self.role {
            Role::Player { .. } => SendMode::Backlog,
            _ => SendMode::Wait,
        };
        self.transport
            .send(frames, mode)
            .map_err(|e| self.read_end(e.into()))
    }

    /// Waits while a player's backlog is over its bound (its writer
    /// writes it): a peer that does not read its answers gets its input
    /// decoded no further. Ends the player when its socket takes nothing
    /// for `-write-timeout`, or when its writer ended it.
    pub(super) fn wait_for_replies(&self) -> Result<(), ConnectionError> {
        let Role::Player { writer, link, .. } = &self.role else {
            return Ok(());
        };
        loop {
            let left = self.transport.backlog_len();
            if left == 0 {
                return Ok(());
            }
            writer.wake();
            if left <= MAX_REPLY_BACKLOG {
                return Ok(());
            }
            let stalled = self.transport.stalled_since();
            if link.end().is_some()
                || stalled.is_some_and(|since| since.elapsed() >= self.shared.config.write_timeout)
            {
                return Err(self.read_end(ConnectionError::WriteTimeout));
            }
            std::thread::sleep(REPLY_BACKLOG_POLL);
        }
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
        while !handshake.is_done() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ConnectionError::HandshakeTimeout);
            }
            self.transport.set_read_timeout(Some(left))?;
            let n = match self.transport.read(&mut self.read_buffer) {
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
                    self.transport.write_handshake(&output)?;
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
        self.transport.shutdown();
        self.leave_role(EndReason::ProtocolError);
    }
}
