//! One RTMP connection's transport: the one owner of its socket (one file
//! descriptor, never duplicated) and of its sending half (chunk encoder
//! and backlog, behind a lock). Its reader thread blocks in reads without
//! the lock. Writers take the lock: the reader thread for its replies, a
//! writer-pool thread for a player's media. Only the reader thread of a
//! connection that is not a player ever waits for room while holding it;
//! a player's writes never wait (`MSG_DONTWAIT`). Shutting the transport
//! down wakes its reader.
//!
//! RTMPS will put a rustls connection here, behind the same lock. The
//! reader thread blocks reading ciphertext from the socket without the
//! lock, then takes it to hand the bytes to rustls (`read_tls`,
//! `process_new_packets`) and take the plaintext out; a writer takes it to
//! encrypt into rustls's buffer and send what the socket takes now
//! (`write_tls` without waiting, the rest kept there like the backlog).
//! The lock is never held across a blocking read, so neither side waits
//! for the other's peer.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use super::tls_stream::{TLS_READ_SIZE, TlsStream};
use super::wire::Wire;
use super::writer::{ChunkWriter, Frame, SendMode};

pub struct Transport {
    socket: TcpStream,
    /// RTMPS: its bytes go through TLS.
    tls: bool,
    sending: Mutex<Sending>,
}

/// The sending half, and TLS (both directions) for an RTMPS connection.
pub struct Sending {
    writer: ChunkWriter,
    tls: Option<TlsStream>,
}

/// The sending half of a transport, held.
pub struct SendingGuard<'a> {
    socket: &'a TcpStream,
    guard: MutexGuard<'a, Sending>,
}

impl SendingGuard<'_> {
    /// The chunk writer and the way out it writes to.
    pub fn parts(&mut self) -> (&mut ChunkWriter, Wire<'_>) {
        let Sending { writer, tls } = &mut *self.guard;
        let wire = Wire::new(self.socket, tls.as_mut().map(TlsStream::connection));
        (writer, wire)
    }
}

impl Transport {
    pub fn new(socket: TcpStream) -> Transport {
        Transport {
            socket,
            tls: false,
            sending: Mutex::new(Sending {
                writer: ChunkWriter::default(),
                tls: None,
            }),
        }
    }

    /// A transport whose bytes go through TLS (RTMPS): `connection`'s
    /// handshake runs as the first bytes are read.
    pub fn with_tls(socket: TcpStream, connection: impl Into<rustls::Connection>) -> Transport {
        Transport {
            socket,
            tls: true,
            sending: Mutex::new(Sending {
                writer: ChunkWriter::default(),
                tls: Some(TlsStream::new(connection)),
            }),
        }
    }

    /// Whether its bytes go through TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Reads what the peer sent, waiting up to the read timeout. Through
    /// TLS, one read of the socket that yields no plaintext (handshake
    /// records, a record not yet whole) is `Interrupted`: the caller looks
    /// at its deadline and reads again.
    pub fn read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        if !self.tls {
            return (&self.socket).read(buffer);
        }
        if let Some(n) = self.take_plaintext(buffer) {
            return Ok(n);
        }
        let mut ciphertext = [0u8; TLS_READ_SIZE];
        let n = (&self.socket).read(&mut ciphertext)?;
        if n == 0 {
            return Ok(0);
        }
        let mut sending = self.sending.lock();
        let Some(tls) = sending.tls.as_mut() else {
            return Ok(0);
        };
        tls.feed(&ciphertext[..n], &self.socket, true)?;
        drop(sending);
        match self.take_plaintext(buffer) {
            Some(n) => Ok(n),
            None => Err(io::ErrorKind::Interrupted.into()),
        }
    }

    /// Plaintext already decrypted, if this is TLS and there is some:
    /// `Some(0)` once the peer closed TLS (`close_notify`).
    fn take_plaintext(&self, buffer: &mut [u8]) -> Option<usize> {
        self.sending.lock().tls.as_mut()?.take(buffer)
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }

    /// How long a write that waits for room may wait.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket.set_write_timeout(timeout)
    }

    /// Writes handshake bytes (before any chunk is sent), waiting for room.
    pub fn write_handshake(&self, bytes: &[u8]) -> io::Result<()> {
        let mut guard = self.sending();
        let (_, mut wire) = guard.parts();
        wire.send_all(&mut [io::IoSlice::new(bytes)])
    }

    /// Sends one-off messages of the connection as `mode` says.
    pub fn send<'a>(
        &self,
        frames: impl IntoIterator<Item = Frame<'a>>,
        mode: SendMode,
    ) -> io::Result<()> {
        let mut guard = self.sending();
        let (writer, mut wire) = guard.parts();
        writer.write_frames(&mut wire, frames, 0, mode)
    }

    fn sending(&self) -> SendingGuard<'_> {
        SendingGuard {
            socket: &self.socket,
            guard: self.sending.lock(),
        }
    }

    /// Bytes accepted for sending and not yet written.
    pub fn backlog_len(&self) -> usize {
        self.sending.lock().writer.backlog_len()
    }

    /// Since when the socket has taken nothing of the backlog, if any waits.
    pub fn stalled_since(&self) -> Option<Instant> {
        self.sending.lock().writer.stalled_since()
    }

    /// The sending half, unless another thread holds it now.
    pub fn try_sending(&self) -> Option<SendingGuard<'_>> {
        Some(SendingGuard {
            socket: &self.socket,
            guard: self.sending.try_lock()?,
        })
    }

    /// Closes both directions, waking a thread blocked on the socket.
    pub fn shutdown(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}
