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

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use super::writer::{ChunkWriter, Frame, SendMode};

pub struct Transport {
    socket: TcpStream,
    sending: Mutex<ChunkWriter>,
}

impl Transport {
    pub fn new(socket: TcpStream) -> Transport {
        Transport {
            socket,
            sending: Mutex::new(ChunkWriter::default()),
        }
    }

    /// Reads what the peer sent, waiting up to the read timeout.
    pub fn read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        (&self.socket).read(buffer)
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
        (&self.socket).write_all(bytes)
    }

    /// Sends one-off messages of the connection as `mode` says.
    pub fn send<'a>(
        &self,
        frames: impl IntoIterator<Item = Frame<'a>>,
        mode: SendMode,
    ) -> io::Result<()> {
        self.sending
            .lock()
            .write_frames(&self.socket, frames, 0, mode)
    }

    /// Bytes accepted for sending and not yet written.
    pub fn backlog_len(&self) -> usize {
        self.sending.lock().backlog_len()
    }

    /// Since when the socket has taken nothing of the backlog, if any waits.
    pub fn stalled_since(&self) -> Option<Instant> {
        self.sending.lock().stalled_since()
    }

    /// The sending half, unless another thread holds it now.
    pub fn try_sending(&self) -> Option<(&TcpStream, MutexGuard<'_, ChunkWriter>)> {
        Some((&self.socket, self.sending.try_lock()?))
    }

    /// Closes both directions, waking a thread blocked on the socket.
    pub fn shutdown(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}
