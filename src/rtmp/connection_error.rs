//! Why an RTMP connection ended, and what that means: the end reason of
//! a publish session it carried, and the counter it adds to (handshake
//! failures, zombies, protocol errors).

use std::fmt;
use std::io;
use std::sync::atomic::AtomicU64;

use super::tls_stream::TlsFailure;
use crate::hub::history::EndReason;
use crate::hub::input::IngestError;
use crate::metrics::Metrics;
use crate::protocol::handshake::HandshakeError;
use crate::protocol::session::SessionError;

/// Why a connection ended.
#[derive(Debug)]
pub enum ConnectionError {
    Io(io::Error),
    /// The peer closed the connection.
    Closed,
    HandshakeTimeout,
    Handshake(HandshakeError),
    /// TLS failed (RTMPS): at the handshake, most often.
    Tls(String),
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
    /// A player's socket took nothing for `-write-timeout`.
    WriteTimeout,
    /// The stream dropped a player too slow for it (`-slow-subscriber
    /// disconnect`).
    SlowPlayer,
    ShuttingDown,
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Io(e) => write!(f, "socket error: {e}"),
            ConnectionError::Closed => write!(f, "closed by peer"),
            ConnectionError::HandshakeTimeout => write!(f, "handshake timed out"),
            ConnectionError::Handshake(e) => write!(f, "handshake failed: {e}"),
            ConnectionError::Tls(e) => write!(f, "TLS failed: {e}"),
            ConnectionError::Idle(why) => write!(f, "{why}"),
            ConnectionError::PublisherTimeout => write!(f, "publisher sent nothing in time"),
            ConnectionError::Session(e) => write!(f, "{e}"),
            ConnectionError::Ingest(e) => write!(f, "{e}"),
            ConnectionError::Rejected(why) => write!(f, "rejected: {why}"),
            ConnectionError::WriteTimeout => write!(f, "player took nothing for -write-timeout"),
            ConnectionError::SlowPlayer => write!(f, "dropped as a slow player"),
            ConnectionError::ShuttingDown => write!(f, "server shutting down"),
        }
    }
}

impl std::error::Error for ConnectionError {}

impl From<io::Error> for ConnectionError {
    fn from(e: io::Error) -> Self {
        if let Some(TlsFailure(tls)) = e.get_ref().and_then(|e| e.downcast_ref::<TlsFailure>()) {
            let hint = match tls {
                rustls::Error::InvalidMessage(_) => " (plain RTMP on the RTMPS port?)",
                _ => "",
            };
            return ConnectionError::Tls(format!("{tls}{hint}"));
        }
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
    pub(super) fn is_protocol_error(&self) -> bool {
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
    pub(super) fn end_reason(&self) -> EndReason {
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
    pub(super) fn counter(&self) -> Option<fn(&Metrics) -> &AtomicU64> {
        match self {
            ConnectionError::HandshakeTimeout
            | ConnectionError::Handshake(_)
            | ConnectionError::Tls(_) => Some(|m| &m.handshake_failures),
            ConnectionError::Idle(_) | ConnectionError::PublisherTimeout => {
                Some(|m| &m.zombie_connections)
            }
            e if e.is_protocol_error() => Some(|m| &m.protocol_errors),
            _ => None,
        }
    }
}
