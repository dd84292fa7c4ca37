//! Bytes of one connection accepted for sending but not yet written: what
//! a non-blocking write left over when the peer's socket was full. Pieces
//! of shared media payloads stay shared (`Bytes` slices of the packet,
//! never copied); headers and one-off messages are small copies. Also the
//! socket writes themselves, waiting or not: a write that must not wait
//! uses `MSG_DONTWAIT`, so the socket stays blocking for its reader thread
//! and nothing toggles its file description's flags.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::net::TcpStream;
use std::time::Instant;

use bytes::{Buf, Bytes};
use socket2::SockRef;

use super::wire::Wire;

/// Slices per vectored write: a 40 ms tick of a 2 Mbps stream needs about
/// nine. Groups of them live on the writer's stack.
pub const MAX_SLICES: usize = 32;

/// Flags of a send that must not wait (nor raise SIGPIPE).
const NO_WAIT: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;

/// Writes as much of `slices` as the socket takes without waiting;
/// returns how many bytes that was.
pub fn send_now(socket: &TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<usize> {
    let socket = SockRef::from(socket);
    let mut written = 0;
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match socket.send_vectored_with_flags(slices, NO_WAIT) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                written += n;
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// Writes all of `slices`, waiting for room up to the socket's write
/// timeout.
pub fn send_all(mut socket: &TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match socket.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
pub struct Backlog {
    pieces: VecDeque<Bytes>,
    bytes: usize,
    /// While bytes wait: since when the socket has taken none.
    stalled_since: Option<Instant>,
}

impl Backlog {
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes
    }

    /// Since when the socket has taken nothing of what waits, if anything
    /// waits.
    pub fn stalled_since(&self) -> Option<Instant> {
        self.stalled_since
    }

    pub fn push(&mut self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        if self.pieces.is_empty() {
            self.stalled_since = Some(Instant::now());
        }
        self.bytes += piece.len();
        self.pieces.push_back(piece);
    }

    /// Writes what waits: all of it when `wait`, else what the socket takes
    /// now. True when nothing is left.
    pub fn write(&mut self, wire: &mut Wire<'_>, wait: bool) -> io::Result<bool> {
        while !self.pieces.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (slice, piece) in slices.iter_mut().zip(&self.pieces) {
                *slice = IoSlice::new(piece);
                count += 1;
            }
            let total: usize = self.pieces.iter().take(count).map(Bytes::len).sum();
            let slices = &mut slices[..count];
            let written = if wait {
                wire.send_all(slices)?;
                total
            } else {
                wire.send_now(slices)?
            };
            self.consume(written);
            if written < total {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Drops the first `n` bytes, which were written.
    fn consume(&mut self, mut n: usize) {
        if n == 0 {
            return;
        }
        self.bytes -= n.min(self.bytes);
        while n > 0 {
            let Some(front) = self.pieces.front_mut() else {
                break;
            };
            if front.len() > n {
                front.advance(n);
                break;
            }
            n -= front.len();
            self.pieces.pop_front();
        }
        self.stalled_since = (!self.pieces.is_empty()).then(Instant::now);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// Makes a socket fill up after a few hundred KiB the peer does not read.
    pub(crate) fn small_buffers(socket: &TcpStream, peer: &TcpStream) {
        SockRef::from(socket)
            .set_send_buffer_size(64 * 1024)
            .unwrap();
        SockRef::from(peer).set_recv_buffer_size(64 * 1024).unwrap();
    }

    #[test]
    fn keeps_what_a_full_socket_refuses_and_writes_it_in_order_later() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (socket, _) = listener.accept().unwrap();
        small_buffers(&socket, &peer);
        let payload = Bytes::from((0..=255u8).cycle().take(1 << 20).collect::<Vec<u8>>());
        let mut backlog = Backlog::default();
        for piece in payload.chunks(4096) {
            backlog.push(payload.slice_ref(piece));
        }
        assert_eq!(backlog.len(), 1 << 20);
        // The peer reads nothing yet: a megabyte does not fit.
        assert!(!backlog.write(&mut Wire::plain(&socket), false).unwrap());
        assert!(backlog.stalled_since().is_some());
        assert!(!backlog.is_empty() && backlog.len() < 1 << 20);
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).unwrap();
            got
        });
        assert!(backlog.write(&mut Wire::plain(&socket), true).unwrap());
        assert_eq!((backlog.len(), backlog.stalled_since()), (0, None));
        drop(socket);
        assert_eq!(reader.join().unwrap(), payload);
    }
}
