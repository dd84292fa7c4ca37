//! Reading a connection's socket without waiting, a bounded amount at a
//! time (through `read`, which may decrypt TLS): what a peer has sent is
//! taken in pieces of at most
//! [`READ_AVAILABLE_LIMIT`] bytes, decoded and answered, before more is
//! read, so a peer flooding a connection cannot make us hold its flood.

use std::io;
use std::net::TcpStream;

/// Most bytes one call to [`read_available`] takes.
pub const READ_AVAILABLE_LIMIT: usize = 64 * 1024;

/// Reads what `socket` has now, at most `limit` bytes, into `buffer` a
/// piece at a time, handing each piece to `take`; returns how many bytes
/// were read. A socket the peer closed is an `UnexpectedEof` error.
pub fn read_available(
    socket: &TcpStream,
    buffer: &mut [u8],
    limit: usize,
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize>,
    mut take: impl FnMut(&[u8]),
) -> io::Result<usize> {
    socket.set_nonblocking(true)?;
    let mut total = 0;
    let result = loop {
        let room = buffer.len().min(limit.saturating_sub(total));
        if room == 0 {
            break Ok(());
        }
        let Some(piece) = buffer.get_mut(..room) else {
            break Ok(());
        };
        match read(piece) {
            Ok(0) => break Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                total += n;
                take(piece.get(..n).unwrap_or_default());
                if n < room {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    // Blocking again before anything else uses the socket.
    socket.set_nonblocking(false)?;
    result.map(|()| total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn takes_what_is_there_up_to_the_limit_without_waiting() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (socket, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 1000];
        let mut taken = Vec::new();
        assert_eq!(
            read_available(
                &socket,
                &mut buffer,
                10_000,
                |b| (&socket).read(b),
                |b| taken.extend_from_slice(b)
            )
            .unwrap(),
            0
        );
        peer.write_all(&[7; 25_000]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let n = read_available(
            &socket,
            &mut buffer,
            10_000,
            |b| (&socket).read(b),
            |b| taken.extend_from_slice(b),
        )
        .unwrap();
        assert_eq!((n, taken.len()), (10_000, 10_000));
        let rest =
            read_available(&socket, &mut buffer, 100_000, |b| (&socket).read(b), |_| {}).unwrap();
        assert_eq!(rest, 15_000);
        drop(peer);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let closed =
            read_available(&socket, &mut buffer, 10, |b| (&socket).read(b), |_| {}).unwrap_err();
        assert_eq!(closed.kind(), io::ErrorKind::UnexpectedEof);
    }
}
