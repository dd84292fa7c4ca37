//! Where a connection's bytes go on their way out: straight into the
//! socket, or through TLS (RTMPS) and then into the socket. Either way a
//! write that must not wait writes what the socket takes now, and one that
//! may wait waits up to the socket's write timeout. Through TLS, what is
//! "taken" is what rustls accepted (up to its buffer limit); while
//! ciphertext from earlier waits in rustls for room in the socket, nothing
//! more is taken, so a full socket still fills the connection's backlog
//! and its player's queue, as without TLS.

use std::io::{self, IoSlice, Write};
use std::net::TcpStream;

use super::backlog::{send_all, send_now};

/// Most ciphertext kept in rustls for the socket (and plaintext taken
/// before the handshake is done).
pub const TLS_BUFFER_LIMIT: usize = 64 * 1024;

/// A connection's way out, for one write.
pub struct Wire<'a> {
    socket: &'a TcpStream,
    tls: Option<&'a mut rustls::Connection>,
}

/// The socket as a writer that never waits: a full socket is `WouldBlock`.
struct NoWait<'a>(&'a TcpStream);

impl Write for NoWait<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        send_now(self.0, &mut [IoSlice::new(buf)]).and_then(|n| {
            if n == 0 && !buf.is_empty() {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(n)
            }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> Wire<'a> {
    pub fn plain(socket: &'a TcpStream) -> Wire<'a> {
        Wire { socket, tls: None }
    }

    pub fn new(socket: &'a TcpStream, tls: Option<&'a mut rustls::Connection>) -> Wire<'a> {
        Wire { socket, tls }
    }

    /// Whether TLS holds ciphertext the socket has not taken yet.
    pub fn has_pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// Writes the ciphertext TLS holds: all of it when `wait`, else what
    /// the socket takes now. True when none is left.
    pub fn flush_pending(&mut self, wait: bool) -> io::Result<bool> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return Ok(true);
        };
        while tls.wants_write() {
            let written = if wait {
                tls.write_tls(&mut self.socket)
            } else {
                match tls.write_tls(&mut NoWait(self.socket)) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    other => other,
                }
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Writes as much of `slices` as goes now, without waiting; how many
    /// bytes that was.
    pub fn send_now(&mut self, slices: &mut [IoSlice<'_>]) -> io::Result<usize> {
        if self.tls.is_none() {
            return send_now(self.socket, slices);
        }
        if !self.flush_pending(false)? {
            return Ok(0);
        }
        let taken = match self.tls.as_deref_mut() {
            Some(tls) => tls.writer().write_vectored(slices)?,
            None => 0,
        };
        self.flush_pending(false)?;
        Ok(taken)
    }

    /// Writes all of `slices`, waiting for room.
    pub fn send_all(&mut self, slices: &mut [IoSlice<'_>]) -> io::Result<()> {
        if self.tls.is_none() {
            return send_all(self.socket, slices);
        }
        let mut slices = slices;
        IoSlice::advance_slices(&mut slices, 0);
        while !slices.is_empty() {
            self.flush_pending(true)?;
            let taken = match self.tls.as_deref_mut() {
                Some(tls) => tls.writer().write_vectored(slices)?,
                None => 0,
            };
            IoSlice::advance_slices(&mut slices, taken);
        }
        self.flush_pending(true).map(drop)
    }
}
