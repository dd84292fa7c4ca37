//! The server: the RTMP listener's accept loop handing each connection to
//! its own reader thread (which does the handshake, never the accept
//! loop), the writer threads of players, the hub's registry and event
//! channel, admission of connections to their table (see `connections`),
//! and graceful shutdown.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::auth::{self, Authenticator, Denial};
use crate::config::Config;
use crate::connections::{Closer, ConnectionTable};
use crate::hooks::{self, HookDrain};
use crate::hub::events::{Event, Events};
use crate::hub::history::EndReason;
use crate::hub::registry::Registry;
use crate::hub::stream_key;
use crate::listener;
use crate::metrics::{self, Metrics};
use crate::record::{self, RecorderBoard};
use crate::relay;
use crate::relay::status::{RelayBoard, RelayStatus};
use crate::rtmp::writer_pool::{PoolSettings, WriterPool};
use crate::source::board::{SourceView, SwitchError};
use crate::source::{self, SourceBoard};
use crate::tls::TlsAcceptor;

/// Stack of a connection's reader thread (only the pages it touches are
/// resident).
const CONNECTION_STACK_SIZE: usize = 256 * 1024;
/// How long shutdown waits for connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How long outputs get to write the end-of-stream notice at shutdown
/// (they leave as soon as they have).
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(1);
/// Longest wait at shutdown for recordings to be finished.
const RECORDERS_AT_SHUTDOWN: Duration = Duration::from_secs(3);
/// Longest wait at shutdown for hooks still running or queued.
const HOOKS_AT_SHUTDOWN: Duration = Duration::from_secs(2);

/// State shared by the accept loop and every connection thread.
pub(crate) struct Shared {
    pub config: Arc<Config>,
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
    pub events: Arc<Events>,
    /// The writer threads of RTMP players.
    pub writers: WriterPool,
    /// The relays that run.
    pub relays: RelayBoard,
    /// Who may publish and play.
    pub auth: Authenticator,
    /// The recorders that run.
    pub recorders: RecorderBoard,
    /// The `-source` streams.
    pub sources: SourceBoard,
    pub started: Instant,
    pub started_at: SystemTime,
    pub listen_addr: SocketAddr,
    pub shutting_down: AtomicBool,
    /// Every open connection.
    pub connections: ConnectionTable,
    /// RTMPS certificates, with `-tls-listen`.
    pub tls: Option<TlsAcceptor>,
}

impl Shared {
    /// Takes a new connection into the table, with a new id and its
    /// kicked flag; `None` (nothing taken) past `-max-connections`.
    pub(crate) fn admit(
        &self,
        peer: SocketAddr,
        close: Closer,
        tls: bool,
    ) -> Option<(u64, Arc<AtomicBool>)> {
        let (id, kicked) = self.connections.admit(close, tls)?;
        log::debug!("conn#{id} {peer} accepted");
        self.events.emit(|| Event::ConnectionAccepted {
            id,
            remote_addr: peer,
        });
        Some((id, kicked))
    }

    /// Asks the server's authentication whether connection `id` may go
    /// ahead with `request`; counts the answer, and tells hooks of a
    /// refusal.
    pub(crate) fn authorize(&self, id: u64, request: &auth::Request<'_>) -> Result<(), Denial> {
        match self.auth.check(request) {
            Ok(()) => {
                metrics::add(&self.metrics.auth_successes, 1);
                Ok(())
            }
            Err(denial) => {
                metrics::add(&self.metrics.auth_failures, 1);
                self.events.emit(|| Event::AuthFailed {
                    key: request.key.as_path(),
                    id,
                    remote_addr: request.remote_addr,
                    action: request.action.as_str(),
                    error: denial.code(),
                });
                Err(denial)
            }
        }
    }

    /// Runs the work of admitted connection `id` on a thread of its own,
    /// under [`Shared::contain`]; false (and the connection forgotten) if
    /// no thread could be started.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        id: u64,
        peer: SocketAddr,
        work: impl FnOnce() + Send + 'static,
    ) -> bool {
        let accepted = Instant::now();
        let shared = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name(format!("conn-{id}"))
            .stack_size(CONNECTION_STACK_SIZE)
            .spawn(move || shared.contain(id, peer, accepted, work));
        if let Err(e) = &spawned {
            log::warn!("conn#{id} {peer} dropped: cannot start a thread: {e}");
            self.connections.forget(id);
            self.events.emit(|| Event::ConnectionClosed {
                id,
                remote_addr: peer,
                duration: Duration::ZERO,
            });
        }
        spawned.is_ok()
    }

    /// Runs connection `id`'s work on its thread. A panic in it (there
    /// should be none) is contained to that connection: logged, counted,
    /// and the connection forgotten like any other that ended.
    fn contain(&self, id: u64, peer: SocketAddr, accepted: Instant, work: impl FnOnce()) {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).is_err() {
            metrics::add(&self.metrics.connection_panics, 1);
            log::error!("conn#{id} {peer} closed after an internal error (panic)");
        }
        // Told before the connection is forgotten, so that at shutdown,
        // once every connection is, every close is with the hooks.
        self.events.emit(|| Event::ConnectionClosed {
            id,
            remote_addr: peer,
            duration: accepted.elapsed(),
        });
        self.connections.forget(id);
    }
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    /// The RTMPS listener (until `run` starts its loop) and its address.
    tls_listener: Option<(TcpListener, SocketAddr)>,
    tls_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    /// For the last events' hooks at shutdown.
    hooks: Option<HookDrain>,
}

/// Observes and stops a running server from other threads.
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
    wake_addrs: Vec<SocketAddr>,
}

impl ServerHandle {
    /// Stops accepting, tells players their streams ended, closes every
    /// connection; [`Server::run`] then returns.
    pub fn shutdown(&self) {
        if !self.shared.shutting_down.swap(true, Ordering::SeqCst) {
            // Wake the accept loops.
            for addr in &self.wake_addrs {
                let _ = TcpStream::connect_timeout(addr, Duration::from_secs(1));
            }
        }
    }

    /// The ids of the connections over TLS (RTMPS).
    pub fn tls_connections(&self) -> std::collections::HashSet<u64> {
        self.shared.connections.tls_ids()
    }

    /// What every part of the running server shares.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The live streams.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// What the recorder of stream `path` is writing, if anything.
    pub fn recording(&self, path: &str) -> Option<record::RecordingStatus> {
        self.shared.recorders.status(path)
    }

    /// This server's finished recordings, newest first, with their paths
    /// under the record directory (none when nothing is recorded).
    pub fn recordings(&self) -> Vec<(String, record::catalog::Recorded)> {
        let settings = &self.shared.config.record;
        if !settings.is_enabled() {
            return Vec::new();
        }
        let open = self.shared.recorders.open_files();
        let mut found = record::catalog::scan(&settings.dir, |path, _| !open.contains(path));
        found.reverse();
        found
            .into_iter()
            .map(|r| {
                let name = r.path.strip_prefix(&settings.dir).unwrap_or(&r.path);
                (name.display().to_string(), r)
            })
            .collect()
    }

    /// Each `-source` stream (`app/name`) and what feeds it.
    pub fn sources(&self) -> Vec<(String, SourceView)> {
        self.shared
            .sources
            .entries()
            .iter()
            .map(|e| (e.spec.key.as_path(), e.view()))
            .collect()
    }

    /// What feeds stream `path`, if a `-source` does.
    pub fn source(&self, path: &str) -> Option<SourceView> {
        self.shared.sources.get(path).map(|e| e.view())
    }

    /// Forces input `input` of the `-source` stream `path` (`None`: by
    /// priority again).
    pub fn switch_input(&self, path: &str, input: Option<usize>) -> Result<(), SwitchError> {
        self.shared.sources.switch(path, input)
    }

    /// What each running relay is doing.
    pub fn relays(&self) -> Vec<RelayStatus> {
        self.shared.relays.statuses()
    }

    /// The lifecycle events: subscribe to get them.
    pub fn events(&self) -> &Arc<Events> {
        &self.shared.events
    }

    /// Closes connection `id` (a publisher or a player); false if no such
    /// connection is open.
    pub fn kick(&self, id: u64) -> bool {
        self.shared.connections.kick(id)
    }

    /// Asks every Enhanced RTMP client that accepts it to reconnect, to
    /// `-reconnect-url` if set (before a maintenance restart); how many
    /// were asked.
    pub fn request_reconnect(&self) -> usize {
        let url = self.shared.config.reconnect_url.as_deref();
        let asked = self.shared.connections.request_reconnect(url);
        // The URL without its query (a token, perhaps).
        let to = url.map_or("where they are", |u| {
            u.split('?').next().unwrap_or_default()
        });
        log::info!("asked {asked} client(s) to reconnect, to {to}");
        asked
    }

    pub fn uptime(&self) -> Duration {
        self.shared.started.elapsed()
    }

    pub fn started_at(&self) -> SystemTime {
        self.shared.started_at
    }

    /// The RTMP listener's address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.shared.listen_addr
    }

    /// Rereads what can change without a restart (SIGHUP): the token
    /// file. A file that cannot be used keeps the old tokens; the log says
    /// why.
    pub fn reload(&self) {
        match self.shared.auth.reload() {
            Ok(Some(count)) => log::info!("auth file reloaded: {count} stream patterns"),
            Ok(None) => {}
            Err(e) => log::warn!("auth file not reloaded, the old tokens stay: {e}"),
        }
        if let Some(tls) = &self.shared.tls {
            match tls.reload() {
                Ok(()) => log::info!("TLS certificate and key reloaded"),
                Err(e) => log::warn!("TLS certificate not reloaded, the old one stays: {e}"),
            }
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::SeqCst)
    }
}

impl Server {
    pub fn bind(config: Config) -> io::Result<Server> {
        stream_key::set_log_redaction(config.log_redact_keys);
        let listener = listener::bind(config.listen)?;
        let local_addr = listener.local_addr()?;
        let (tls, tls_listener) = match &config.tls {
            Some(settings) => {
                let acceptor =
                    TlsAcceptor::new(settings.files.clone()).map_err(io::Error::other)?;
                let bound = listener::bind(settings.listen)?;
                let addr = bound.local_addr()?;
                (Some(acceptor), Some((bound, addr)))
            }
            None => (None, None),
        };
        let tls_addr = tls_listener.as_ref().map(|(_, addr)| *addr);
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::default());
        let events = Arc::new(Events::new(Arc::clone(&metrics)));
        let writers = WriterPool::start(PoolSettings {
            threads: config.writer_threads(),
            coalesce: config.write_coalesce,
            write_timeout: config.write_timeout,
        })?;
        let shared = Arc::new(Shared {
            registry: Registry::new(&config, Arc::clone(&metrics), Arc::clone(&events)),
            metrics,
            events,
            writers,
            relays: RelayBoard::default(),
            auth: Authenticator::new(config.auth.clone()),
            recorders: RecorderBoard::default(),
            sources: SourceBoard::new(&config.sources),
            started: Instant::now(),
            started_at: SystemTime::now(),
            listen_addr: local_addr,
            shutting_down: AtomicBool::new(false),
            connections: ConnectionTable::new(config.max_connections),
            tls,
            config,
        });
        relay::start(&shared)?;
        source::start(&shared)?;
        shared.recorders.start_retention(&shared)?;
        let hooks = hooks::start(
            &shared.events,
            Arc::clone(&shared.metrics),
            &shared.config.hooks,
        )?;
        log::info!("{}", shared.auth.describe());
        Ok(Server {
            listener,
            local_addr,
            tls_listener,
            tls_addr,
            shared,
            hooks,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The RTMPS listener's address, with `-tls-listen`.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    pub fn handle(&self) -> ServerHandle {
        let listening = std::iter::once(self.local_addr).chain(self.tls_addr);
        ServerHandle {
            shared: Arc::clone(&self.shared),
            wake_addrs: listening.map(listener::wake_addr).collect(),
        }
    }

    /// Accepts connections until shut down, then closes them all.
    pub fn run(mut self) -> io::Result<()> {
        log::info!("RTMP server listening on {}", self.local_addr);
        let tls_loop = match self.tls_listener.take() {
            Some((listener, addr)) => {
                log::info!("RTMPS listening on {addr}");
                let shared = Arc::clone(&self.shared);
                Some(
                    thread::Builder::new()
                        .name("accept-tls".into())
                        .spawn(move || listener::accept_loop(&shared, &listener, true))?,
                )
            }
            None => None,
        };
        listener::accept_loop(&self.shared, &self.listener, false);
        if let Some(tls_loop) = tls_loop {
            let _ = tls_loop.join();
        }
        self.close_all();
        // Every recording is finished (each recorder does when its
        // stream ends), its recording_done event out.
        self.shared.recorders.wait_idle(RECORDERS_AT_SHUTDOWN);
        if let Some(hooks) = &self.hooks {
            // The streams' and connections' ends reach hooks too.
            hooks.wait_idle(self.shared.config.hooks.timeout.min(HOOKS_AT_SHUTDOWN));
        }
        Ok(())
    }

    fn close_all(&self) {
        log::info!("shutting down");
        let registry = &self.shared.registry;
        // Players told their stream ended are closed from now on.
        self.shared.writers.begin_shutdown();
        registry.close_all(EndReason::Shutdown);
        // Outputs write the end-of-stream notice, then leave.
        let flushed = Instant::now() + SHUTDOWN_FLUSH;
        while registry.streams().iter().any(|s| s.output_count() > 0) && Instant::now() < flushed {
            thread::sleep(Duration::from_millis(10));
        }
        let left = self.shared.connections.close_all(SHUTDOWN_GRACE);
        if left > 0 {
            log::warn!("{left} connections still open at exit");
        }
    }
}

impl Drop for Server {
    /// A server dropped without running stops what `bind` started (the
    /// relay manager looks at this flag).
    fn drop(&mut self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtmp::transport::Transport;

    #[test]
    fn a_panic_is_contained_to_its_connection() {
        let config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        };
        let server = Server::bind(config).unwrap();
        let shared = Arc::clone(&server.shared);
        let peer_side = TcpStream::connect(server.local_addr()).unwrap();
        let (socket, peer) = server.listener.accept().unwrap();
        let transport = Arc::new(Transport::new(socket));
        let (id, _) = shared
            .connections
            .admit(Box::new(move || transport.shutdown()), false)
            .unwrap();
        let worker = Arc::clone(&shared);
        let result = thread::spawn(move || {
            worker.contain(id, peer, Instant::now(), || panic!("bug in a handler"))
        })
        .join();
        assert!(
            result.is_ok(),
            "the panic did not escape the connection's thread"
        );
        assert_eq!(metrics::get(&shared.metrics.connection_panics), 1);
        assert!(shared.connections.is_empty(), "the connection is forgotten");
        let mut buf = [0u8; 1];
        let closed = std::io::Read::read(&mut &peer_side, &mut buf);
        assert!(
            matches!(closed, Ok(0) | Err(_)),
            "the peer sees the connection closed"
        );
        // And the server still accepts.
        let _another = TcpStream::connect(server.local_addr()).unwrap();
    }
}
