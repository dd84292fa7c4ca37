//! The server layer: a `TcpListener` accept loop handing each connection to
//! its own thread (which does the handshake, never the accept loop), the
//! stream registry, and graceful shutdown.

mod conn_writer;
mod connection;
mod gop_cache;
pub mod packet;
pub mod registry;
pub mod stream;
pub mod stream_key;
pub mod subscriber;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::config::Config;
use registry::Registry;

const CONNECTION_STACK_SIZE: usize = 256 * 1024;
/// How long shutdown waits for connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);
/// How long players get to receive the end-of-stream notice at shutdown.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(200);

/// State shared by the accept loop and every connection thread.
pub(crate) struct Shared {
    pub config: Arc<Config>,
    pub registry: Registry,
    pub started: Instant,
    pub shutting_down: AtomicBool,
    /// A handle on each open connection's socket, to close it at shutdown.
    connections: Mutex<HashMap<u64, TcpStream>>,
    all_closed: Condvar,
    next_id: AtomicU64,
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

/// Observes and stops a running server from other threads.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    wake_addr: SocketAddr,
}

impl ServerHandle {
    /// Stops accepting, tells players their streams ended, closes every
    /// connection; [`Server::run`] then returns.
    pub fn shutdown(&self) {
        if !self.shared.shutting_down.swap(true, Ordering::SeqCst) {
            // Wake the accept loop.
            let _ = TcpStream::connect_timeout(&self.wake_addr, Duration::from_secs(1));
        }
    }

    /// The live streams.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }
}

impl Server {
    pub fn bind(config: Config) -> io::Result<Server> {
        let listener = TcpListener::bind(config.listen)?;
        let local_addr = listener.local_addr()?;
        Ok(Server {
            listener,
            local_addr,
            shared: Arc::new(Shared {
                registry: Registry::new(Arc::new(config.clone())),
                config: Arc::new(config),
                started: Instant::now(),
                shutting_down: AtomicBool::new(false),
                connections: Mutex::new(HashMap::new()),
                all_closed: Condvar::new(),
                next_id: AtomicU64::new(1),
            }),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn handle(&self) -> ServerHandle {
        let mut wake_addr = self.local_addr;
        if wake_addr.ip().is_unspecified() {
            wake_addr.set_ip(match wake_addr {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        ServerHandle {
            shared: Arc::clone(&self.shared),
            wake_addr,
        }
    }

    /// Accepts connections until shut down, then closes them all.
    pub fn run(self) -> io::Result<()> {
        log::info!("RTMP server listening on {}", self.local_addr);
        for incoming in self.listener.incoming() {
            if self.shared.shutting_down.load(Ordering::SeqCst) {
                break;
            }
            match incoming {
                Ok(socket) => self.spawn_connection(socket),
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    // Out of descriptors and the like: do not spin.
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
        self.close_all();
        Ok(())
    }

    fn spawn_connection(&self, socket: TcpStream) {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let Ok(peer) = socket.peer_addr() else {
            return;
        };
        let _ = socket.set_nodelay(true);
        let closer = match socket.try_clone() {
            Ok(closer) => closer,
            Err(e) => {
                log::warn!("conn#{id} {peer} dropped: {e}");
                return;
            }
        };
        self.shared.connections.lock().insert(id, closer);
        log::debug!("conn#{id} {peer} accepted");
        let shared = Arc::clone(&self.shared);
        let spawned = thread::Builder::new()
            .name(format!("conn-{id}"))
            .stack_size(CONNECTION_STACK_SIZE)
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    connection::serve(Arc::clone(&shared), socket, id, peer)
                }));
                if result.is_err() {
                    log::error!("conn#{id} {peer} closed after an internal error (panic)");
                }
                let mut connections = shared.connections.lock();
                connections.remove(&id);
                if connections.is_empty() {
                    shared.all_closed.notify_all();
                }
            });
        if let Err(e) = spawned {
            log::warn!("conn#{id} {peer} dropped: cannot start a thread: {e}");
            if let Some(closer) = self.shared.connections.lock().remove(&id) {
                let _ = closer.shutdown(Shutdown::Both);
            }
        }
    }

    fn close_all(&self) {
        log::info!("shutting down");
        let streams = self.shared.registry.streams();
        for stream in &streams {
            stream.end_for_shutdown();
        }
        if streams.iter().any(|s| s.subscriber_count() > 0) {
            thread::sleep(SHUTDOWN_FLUSH);
        }
        let mut connections = self.shared.connections.lock();
        for socket in connections.values() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !connections.is_empty() {
            if self
                .shared
                .all_closed
                .wait_until(&mut connections, deadline)
                .timed_out()
            {
                log::warn!("{} connections still open at exit", connections.len());
                break;
            }
        }
    }
}
