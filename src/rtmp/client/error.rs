//! Why an outbound RTMP request failed.

use std::fmt;
use std::io;

use crate::protocol::handshake::HandshakeError;
use crate::protocol::session::SessionError;
use crate::protocol::url::UrlError;
use crate::rtmp::tls_stream::TlsFailure;

#[derive(Debug)]
pub enum ClientError {
    Url(UrlError),
    /// The host did not resolve to any address.
    Resolve(String),
    Io(io::Error),
    Handshake(HandshakeError),
    /// The server broke the protocol.
    Session(SessionError),
    /// The server answered with an error status or `_error`.
    Refused {
        code: String,
        description: String,
    },
    /// The server closed the connection.
    Closed,
    /// TLS could not be set up or failed (`rtmps://`): a certificate not
    /// trusted, say.
    Tls(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Url(e) => write!(f, "{e}"),
            ClientError::Resolve(host) => write!(f, "cannot resolve {host}"),
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Handshake(e) => write!(f, "handshake failed: {e}"),
            ClientError::Session(e) => write!(f, "{e}"),
            ClientError::Refused { code, description } if description.is_empty() => {
                write!(f, "refused: {code}")
            }
            ClientError::Refused { code, description } => {
                write!(f, "refused: {code} ({description})")
            }
            ClientError::Closed => write!(f, "connection closed"),
            ClientError::Tls(why) => write!(f, "TLS: {why}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        match e.get_ref().and_then(|e| e.downcast_ref::<TlsFailure>()) {
            Some(TlsFailure(tls)) => ClientError::Tls(tls.to_string()),
            None => ClientError::Io(e),
        }
    }
}

impl From<HandshakeError> for ClientError {
    fn from(e: HandshakeError) -> Self {
        ClientError::Handshake(e)
    }
}

impl From<UrlError> for ClientError {
    fn from(e: UrlError) -> Self {
        ClientError::Url(e)
    }
}

impl From<SessionError> for ClientError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Refused { code, description } => {
                ClientError::Refused { code, description }
            }
            e => ClientError::Session(e),
        }
    }
}

impl ClientError {
    /// A read that timed out (the connection may go on).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}
