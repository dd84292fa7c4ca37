//! One connection's TLS state, either side: rustls's connection and the
//! plaintext decrypted but not yet read. Ciphertext read from the socket
//! goes in ([`TlsStream::feed`]: decrypted, and what the handshake answers
//! sent), plaintext comes out ([`TlsStream::take`]). Reading the socket is
//! the caller's, so that the server's transport can do it without its lock.

use std::io::{self, Read};
use std::net::TcpStream;

use super::wire::{TLS_BUFFER_LIMIT, Wire};

/// Ciphertext read from the socket at a time (a TLS record at most).
pub const TLS_READ_SIZE: usize = 16 * 1024 + 256;

/// Why TLS failed: what rustls said (a peer speaking plain RTMP to the
/// RTMPS port gets "received corrupt message").
#[derive(Debug)]
pub struct TlsFailure(pub rustls::Error);

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS: {}", self.0)
    }
}

impl std::error::Error for TlsFailure {}

pub struct TlsStream {
    connection: rustls::Connection,
    /// Plaintext decrypted and not yet taken.
    plaintext: Vec<u8>,
    taken: usize,
    /// The peer ended TLS (`close_notify`).
    closed: bool,
}

impl TlsStream {
    pub fn new(connection: impl Into<rustls::Connection>) -> TlsStream {
        let mut connection = connection.into();
        connection.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        TlsStream {
            connection,
            plaintext: Vec::new(),
            taken: 0,
            closed: false,
        }
    }

    pub fn connection(&mut self) -> &mut rustls::Connection {
        &mut self.connection
    }

    /// Plaintext already decrypted, up to `buffer`'s length; `Some(0)` once
    /// the peer closed TLS, `None` if nothing waits.
    pub fn take(&mut self, buffer: &mut [u8]) -> Option<usize> {
        let waiting = self.plaintext.get(self.taken..).unwrap_or_default();
        if waiting.is_empty() {
            return self.closed.then_some(0);
        }
        let n = waiting.len().min(buffer.len());
        buffer[..n].copy_from_slice(&waiting[..n]);
        self.taken += n;
        Some(n)
    }

    /// Decrypts `ciphertext` read from `socket`, then sends what the TLS
    /// handshake (or an alert) answers: waiting for room when `wait`, else
    /// what the socket takes now (the rest goes with the next write).
    pub fn feed(
        &mut self,
        mut ciphertext: &[u8],
        socket: &TcpStream,
        wait: bool,
    ) -> io::Result<()> {
        while !ciphertext.is_empty() {
            self.connection.read_tls(&mut ciphertext)?;
            let state = self
                .connection
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, TlsFailure(e)))?;
            let mut more = vec![0u8; state.plaintext_bytes_to_read()];
            self.connection.reader().read_exact(&mut more)?;
            if self.taken == self.plaintext.len() {
                self.plaintext.clear();
                self.taken = 0;
            }
            self.plaintext.extend_from_slice(&more);
            self.closed |= state.peer_has_closed();
        }
        Wire::new(socket, Some(&mut self.connection))
            .flush_pending(wait)
            .map(drop)
    }
}
