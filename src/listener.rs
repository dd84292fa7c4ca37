//! The RTMP listeners: the plain one, and the RTMPS one with
//! `-tls-listen`. Each accept loop hands every connection to a thread of
//! its own (where the TLS and RTMP handshakes run, under the handshake
//! deadline) and never handshakes itself: a slow client cannot hold up
//! others.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::metrics;
use crate::rtmp::connection;
use crate::rtmp::transport::Transport;
use crate::server::Shared;

/// Pending connections the kernel may queue before `accept` (as nginx; std's
/// 128 makes a burst of players wait a second for a SYN retransmission).
const LISTEN_BACKLOG: i32 = 1024;

/// Binds a listener with a deep accept queue.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Where to connect to wake the accept loop of a listener on `addr`.
pub(crate) fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let mut wake = addr;
    if wake.ip().is_unspecified() {
        wake.set_ip(match wake {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    wake
}

/// Refusals past `-max-connections`, logged at most once a second.
#[derive(Default)]
struct Refusals {
    last_log: Option<Instant>,
    unlogged: u64,
}

impl Refusals {
    fn refuse(&mut self, shared: &Shared, peer: SocketAddr) {
        metrics::add(&shared.metrics.connections_rejected, 1);
        self.unlogged += 1;
        if self
            .last_log
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            log::warn!(
                "{} connection(s) refused, last from {peer}: -max-connections {} reached",
                self.unlogged,
                shared.config.max_connections
            );
            self.last_log = Some(Instant::now());
            self.unlogged = 0;
        }
    }
}

/// Accepts connections until the server shuts down; `tls`: they are
/// RTMPS.
pub(crate) fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, tls: bool) {
    let mut refusals = Refusals::default();
    for incoming in listener.incoming() {
        if shared.shutting_down.load(Ordering::SeqCst) {
            break;
        }
        match incoming {
            Ok(socket) => spawn_connection(shared, socket, tls, &mut refusals),
            Err(e) => {
                log::warn!("accept failed: {e}");
                // Out of descriptors and the like: do not spin.
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, socket: TcpStream, tls: bool, refusals: &mut Refusals) {
    let Ok(peer) = socket.peer_addr() else {
        return;
    };
    let _ = socket.set_nodelay(true);
    let transport = if tls {
        let Some(acceptor) = &shared.tls else {
            return;
        };
        match acceptor.accept() {
            Ok(connection) => Transport::with_tls(socket, connection),
            Err(e) => {
                log::warn!("{peer} dropped: cannot start TLS: {e}");
                return;
            }
        }
    } else {
        Transport::new(socket)
    };
    let transport = Arc::new(transport);
    let closing = Arc::clone(&transport);
    let Some((id, kicked)) = shared.admit(peer, Box::new(move || closing.shutdown()), tls) else {
        // Dropping the socket closes it.
        refusals.refuse(shared, peer);
        return;
    };
    let for_thread = Arc::clone(shared);
    shared.spawn(id, peer, move || {
        connection::serve(for_thread, transport, id, peer, kicked)
    });
}
