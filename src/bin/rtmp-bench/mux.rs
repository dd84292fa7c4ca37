//! Multiplexed players (`--client-mode mux`, the default): N players on a
//! few poller threads, so that a message the server writes costs it what a
//! remote player would, not the wake-up of one client thread per player.
//!
//! A small pool of set-up threads connects each player with the library's
//! blocking [`Client`] (handshake, connect, createStream, play), takes it
//! apart ([`Client::into_parts`]) so that nothing it already read or
//! decoded is lost, and hands the socket, non-blocking, with its session to
//! a poller thread. That thread reads whatever is there on each readiness
//! (level-triggered epoll), lets the session decode it, records each media
//! message, and sends what the session wants sent (acknowledgements, ping
//! responses), keeping what a full socket would not take for later.

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use polling::{Event, Events, PollMode, Poller};

use crate::load::{Logs, PlayerLog, player_options};
use rtmp_server::protocol::session::client::ClientSession;
use rtmp_server::protocol::url::RtmpUrl;
use rtmp_server::rtmp::client::{Client, ClientParts};
use rtmp_server::rtmp::tls_stream::TlsStream;
use rtmp_server::rtmp::wire::Wire;
use rtmp_server::rtmp::writer::{ChunkWriter, Frame, SendMode};

/// Threads that set players up at once.
const SETUP_THREADS: usize = 32;
/// Time allowed for each step of a player's set-up.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a poller thread looks at the stop flag.
const TICK: Duration = Duration::from_millis(100);
/// A poller thread's read buffer, shared by its players.
const READ_BUFFER: usize = 256 * 1024;
/// Most bytes read from one player per readiness (the rest is read on the
/// next turn: the poller is level-triggered).
const MAX_READ_PER_EVENT: usize = 1024 * 1024;
/// Most bytes a player may have waiting to be sent: a server that reads
/// none of its acknowledgements is an error.
const MAX_UNSENT: usize = 1024 * 1024;

/// Which players to set up, and on how many poller threads.
#[derive(Debug, Clone)]
pub struct Setup {
    pub url: RtmpUrl,
    pub name: String,
    pub players: usize,
    pub threads: usize,
}

/// A poller thread and the way to hand it players.
struct Lane {
    poller: Arc<Poller>,
    players: Sender<Player>,
}

/// The running players.
pub struct Mux {
    setups: Vec<thread::JoinHandle<()>>,
    pollers: Vec<thread::JoinHandle<()>>,
}

impl Mux {
    /// Starts the poller threads and sets the players up; each player's
    /// log (in `logs`, by index) is filled in when it stops.
    pub fn start(setup: Setup, logs: Logs, stop: Arc<AtomicBool>) -> Result<Mux, String> {
        let setup_threads = SETUP_THREADS.min(setup.players);
        // Pollers run until `stop` and every set-up has ended, so that no
        // player handed over is left unlogged.
        let setups_left = Arc::new(AtomicUsize::new(setup_threads));
        let mut lanes = Vec::new();
        let mut pollers = Vec::new();
        for i in 0..setup.threads.max(1) {
            let poller = Arc::new(Poller::new().map_err(|e| format!("poller: {e}"))?);
            let (tx, rx) = crossbeam_channel::unbounded();
            let (thread_poller, logs, stop, left) = (
                Arc::clone(&poller),
                Arc::clone(&logs),
                Arc::clone(&stop),
                Arc::clone(&setups_left),
            );
            let done = move || stop.load(Ordering::Relaxed) && left.load(Ordering::Relaxed) == 0;
            let spawned = thread::Builder::new()
                .name(format!("mux-{i}"))
                .spawn(move || run_poller(&thread_poller, &rx, &logs, done));
            match spawned {
                Ok(handle) => pollers.push(handle),
                Err(e) => {
                    // No set-up will run: the pollers end with `stop`.
                    setups_left.store(0, Ordering::Relaxed);
                    return Err(e.to_string());
                }
            }
            lanes.push(Lane {
                poller,
                players: tx,
            });
        }
        let lanes = Arc::new(lanes);
        let setup = Arc::new(setup);
        let next = Arc::new(AtomicUsize::new(0));
        let mut setups = Vec::new();
        for _ in 0..setup_threads {
            let (lanes, setup, next, logs, stop, left) = (
                Arc::clone(&lanes),
                Arc::clone(&setup),
                Arc::clone(&next),
                Arc::clone(&logs),
                Arc::clone(&stop),
                Arc::clone(&setups_left),
            );
            let spawned = thread::Builder::new()
                .name("mux-setup".into())
                .spawn(move || {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= setup.players || stop.load(Ordering::Relaxed) {
                            left.fetch_sub(1, Ordering::Relaxed);
                            return;
                        }
                        set_up(index, &setup, &lanes, &logs);
                    }
                });
            match spawned {
                Ok(handle) => setups.push(handle),
                Err(e) => {
                    setups_left.fetch_sub(setup_threads - setups.len(), Ordering::Relaxed);
                    return Err(e.to_string());
                }
            }
        }
        Ok(Mux { setups, pollers })
    }

    /// Waits for the set-ups, then for the pollers to stop (after `stop`).
    pub fn join(self) {
        for handle in self.setups.into_iter().chain(self.pollers) {
            let _ = handle.join();
        }
    }
}

/// Connects player `index`, has it play, and hands it to its lane.
fn set_up(index: usize, setup: &Setup, lanes: &[Lane], logs: &Logs) {
    let log = PlayerLog {
        connect_started: Some(Instant::now()),
        ..PlayerLog::default()
    };
    let played = Client::connect(&setup.url, &player_options(SETUP_TIMEOUT)).and_then(|mut c| {
        c.play(&setup.name)?;
        Ok(c)
    });
    let client = match played {
        Ok(client) => client,
        Err(e) => return store(logs, index, log, Some(e.to_string())),
    };
    let mut player = match Player::new(index, client.into_parts(), log) {
        Ok(player) => player,
        Err((log, e)) => return store(logs, index, log, Some(e)),
    };
    if let Err(e) = player.decode(Instant::now()) {
        return player.finish(logs, Some(e));
    }
    let Some(lane) = lanes.get(index % lanes.len().max(1)) else {
        return player.finish(logs, Some("no poller thread".into()));
    };
    if let Err(returned) = lane.players.send(player) {
        // The poller already stopped.
        return returned.into_inner().finish(logs, None);
    }
    let _ = lane.poller.notify();
}

fn store(logs: &Logs, index: usize, mut log: PlayerLog, error: Option<String>) {
    if log.error.is_none() {
        log.error = error;
    }
    if let Some(slot) = logs.get(index) {
        *slot.lock() = log;
    }
}

/// A player's way out: its socket, through TLS if it has it.
fn wire<'a>(socket: &'a TcpStream, tls: &'a mut Option<TlsStream>) -> Wire<'a> {
    Wire::new(socket, tls.as_mut().map(TlsStream::connection))
}

/// One playing connection, driven without blocking.
struct Player {
    index: usize,
    socket: Arc<TcpStream>,
    /// `rtmps://`: the TLS its bytes go through.
    tls: Option<TlsStream>,
    session: ClientSession,
    /// Encodes what the session sends (a fresh encoder starts each chunk
    /// stream with a full header, which any server decodes) and keeps what
    /// a full socket did not take yet.
    writer: ChunkWriter,
    /// Whether the poller watches for room to write.
    wants_write: bool,
    log: PlayerLog,
}

impl Player {
    /// The player of a client that plays: the messages it kept count as
    /// received now.
    fn new(
        index: usize,
        parts: ClientParts,
        mut log: PlayerLog,
    ) -> Result<Player, (PlayerLog, String)> {
        let Some(session) = parts.session else {
            return Err((log, "not connected".into()));
        };
        let now = Instant::now();
        for incoming in &parts.pending {
            log.record(&incoming.message, now);
        }
        if let Err(e) = parts.socket.set_nonblocking(true) {
            return Err((log, e.to_string()));
        }
        Ok(Player {
            index,
            socket: parts.socket,
            tls: parts.tls,
            session,
            writer: ChunkWriter::default(),
            wants_write: false,
            log,
        })
    }

    /// Stores the log, with `error` if there was one.
    fn finish(self, logs: &Logs, error: Option<String>) {
        store(logs, self.index, self.log, error);
    }

    /// Decodes what the session holds, recording media as received `at`,
    /// and queues what it wants to send.
    fn decode(&mut self, at: Instant) -> Result<(), String> {
        loop {
            match self.session.poll().map_err(|e| e.to_string())? {
                Some(incoming) => self.log.record(&incoming.message, at),
                // It stopped to have its answers sent.
                None if self.session.has_outgoing() => self.queue_outgoing()?,
                None => return self.queue_outgoing(),
            }
        }
    }

    /// Sends what the session queued, as far as the socket takes it now;
    /// the rest waits in the writer's backlog.
    fn queue_outgoing(&mut self) -> Result<(), String> {
        let frames = self.session.take_outgoing().map(Frame::from);
        self.writer
            .write_frames(
                &mut wire(&self.socket, &mut self.tls),
                frames,
                0,
                SendMode::Backlog,
            )
            .map_err(|e| e.to_string())?;
        if self.writer.backlog_len() > MAX_UNSENT {
            return Err("the server reads nothing we send".into());
        }
        Ok(())
    }

    /// One read without waiting: plaintext (decrypted, through TLS);
    /// `Interrupted` when TLS yielded none yet.
    fn read_some(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else {
            return (&*self.socket).read(buffer);
        };
        if let Some(n) = tls.take(buffer) {
            return Ok(n);
        }
        let n = (&*self.socket).read(buffer)?;
        if n == 0 {
            return Ok(0);
        }
        tls.feed(buffer.get(..n).unwrap_or_default(), &self.socket, false)?;
        tls.take(buffer)
            .ok_or_else(|| io::ErrorKind::Interrupted.into())
    }

    /// Reads what is there (up to a bound), decoding as it goes.
    fn read(&mut self, buffer: &mut [u8]) -> Result<(), String> {
        let mut total = 0;
        while total < MAX_READ_PER_EVENT {
            match self.read_some(buffer) {
                Ok(0) => return Err("connection closed by the server".into()),
                Ok(n) => {
                    let at = Instant::now();
                    self.session.feed(buffer.get(..n).unwrap_or_default());
                    self.decode(at)?;
                    total += n;
                    if n < buffer.len() {
                        // Drained: the next byte makes it readable again.
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    }

    /// Writes what is waiting, as much as the socket takes.
    fn write(&mut self) -> Result<(), String> {
        self.writer
            .flush_backlog(&mut wire(&self.socket, &mut self.tls), SendMode::UntilFull)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Watches for room to write while bytes wait, and only then.
    fn update_interest(&mut self, poller: &Poller, key: usize) -> Result<(), String> {
        let tls_waits = self
            .tls
            .as_mut()
            .is_some_and(|t| t.connection().wants_write());
        let wants_write = self.writer.has_backlog() || tls_waits;
        if wants_write != self.wants_write {
            poller
                .modify_with_mode(
                    &*self.socket,
                    Event::new(key, true, wants_write),
                    PollMode::Level,
                )
                .map_err(|e| e.to_string())?;
            self.wants_write = wants_write;
        }
        Ok(())
    }

    /// Handles one readiness of the player registered as `key`.
    fn on_event(
        &mut self,
        poller: &Poller,
        key: usize,
        event: Event,
        buffer: &mut [u8],
    ) -> Result<(), String> {
        if event.readable {
            self.read(buffer)?;
        }
        self.write()?;
        self.update_interest(poller, key)
    }
}

/// The players of one poller thread, by key.
struct Slots {
    players: Vec<Option<Player>>,
}

impl Slots {
    /// Registers `player` and sends what it has queued; if that fails,
    /// stores its log with the error.
    fn add(&mut self, poller: &Poller, mut player: Player, logs: &Logs) {
        let key = match self.players.iter().position(Option::is_none) {
            Some(key) => key,
            None => {
                self.players.push(None);
                self.players.len() - 1
            }
        };
        // SAFETY: the socket is removed from the poller (`remove`,
        // `drain`) before it is dropped.
        let added =
            unsafe { poller.add_with_mode(&*player.socket, Event::readable(key), PollMode::Level) };
        if let Err(e) = added {
            return player.finish(logs, Some(e.to_string()));
        }
        let sent = player
            .write()
            .and_then(|()| player.update_interest(poller, key));
        if let Err(e) = sent {
            let _ = poller.delete(&*player.socket);
            return player.finish(logs, Some(e));
        }
        if let Some(slot) = self.players.get_mut(key) {
            *slot = Some(player);
        }
    }

    /// Unregisters the player of `key`.
    fn remove(&mut self, poller: &Poller, key: usize) -> Option<Player> {
        let player = self.players.get_mut(key)?.take()?;
        let _ = poller.delete(&*player.socket);
        Some(player)
    }

    /// Unregisters every player.
    fn drain(&mut self, poller: &Poller) -> Vec<Player> {
        (0..self.players.len())
            .filter_map(|key| self.remove(poller, key))
            .collect()
    }
}

/// One poller thread: takes players from `incoming` and runs them until
/// `done`, then stores their logs.
fn run_poller(poller: &Poller, incoming: &Receiver<Player>, logs: &Logs, done: impl Fn() -> bool) {
    let mut slots = Slots {
        players: Vec::new(),
    };
    let mut events = Events::new();
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut failure = None;
    while !done() {
        events.clear();
        if let Err(e) = poller.wait(&mut events, Some(TICK))
            && e.kind() != io::ErrorKind::Interrupted
        {
            failure = Some(format!("poller: {e}"));
            break;
        }
        for player in incoming.try_iter() {
            slots.add(poller, player, logs);
        }
        for event in events.iter() {
            let key = event.key;
            let Some(Some(player)) = slots.players.get_mut(key) else {
                continue;
            };
            if let Err(e) = player.on_event(poller, key, event, &mut buffer)
                && let Some(player) = slots.remove(poller, key)
            {
                player.finish(logs, Some(e));
            }
        }
    }
    for player in slots.drain(poller) {
        player.finish(logs, failure.clone());
    }
    for player in incoming.try_iter() {
        player.finish(logs, failure.clone());
    }
}

#[cfg(test)]
#[path = "mux_tests.rs"]
mod tests;
