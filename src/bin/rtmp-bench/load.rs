//! The load benchmark behind `rtmp-bench run`: one process publishes a
//! pre-encoded FLV file in real time and plays it with N players, then
//! reports the server's CPU, memory and open files, delivery, gaps, time
//! to first frame and delivery delay. Players are multiplexed over a few
//! threads ([`crate::mux`]) or each on its own blocking thread.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::idle::open_fds;
use crate::mux;
use crate::report::{ClientMode, RunResult};
use rtmp_server::media::codec;
use rtmp_server::media::flv;
use rtmp_server::proc_stats::{self, ProcessFigures};
use rtmp_server::protocol::message::{RawMessage, type_id};
use rtmp_server::protocol::url::RtmpUrl;
use rtmp_server::rtmp::client::{Client, ClientError, ClientOptions};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub label: String,
    /// The server's application URL (`rtmp://host:port/app`).
    pub url: RtmpUrl,
    pub name: String,
    pub flv: Vec<u8>,
    pub players: usize,
    /// How the players are run.
    pub client_mode: ClientMode,
    /// Threads that multiplex the players (mux mode).
    pub client_threads: usize,
    /// Publishing before the players join (so they join mid-GOP).
    pub lead_in: Duration,
    /// From the last player joining to the start of the window.
    pub warmup: Duration,
    pub window: Duration,
    /// Processes whose CPU and memory are the server's.
    pub server_pids: Vec<u32>,
}

/// One message the publisher sent.
#[derive(Debug, Clone, Copy)]
struct Sent {
    at: Instant,
    bytes: usize,
}

/// One media message a player received.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub key: (u8, u32),
    pub at: Instant,
    pub bytes: usize,
}

/// What one player saw.
#[derive(Debug, Default)]
pub struct PlayerLog {
    pub connect_started: Option<Instant>,
    pub first_frame: Option<Instant>,
    pub received: Vec<Received>,
    pub error: Option<String>,
}

impl PlayerLog {
    /// Notes `message` if it is media, received `at`; the first video
    /// keyframe is the first frame.
    pub fn record(&mut self, message: &RawMessage, at: Instant) {
        if !is_media(message) {
            return;
        }
        if self.first_frame.is_none()
            && message.type_id == type_id::VIDEO
            && codec::inspect_video(&message.payload).is_some_and(|v| v.keyframe)
        {
            self.first_frame = Some(at);
        }
        self.received.push(Received {
            key: (message.type_id, message.timestamp),
            at,
            bytes: message.payload.len(),
        });
    }
}

/// Every player's log, shared with whatever runs the players.
pub type Logs = Arc<Vec<Mutex<PlayerLog>>>;

type SentLog = Arc<Mutex<HashMap<(u8, u32), Sent>>>;

fn is_media(m: &RawMessage) -> bool {
    matches!(m.type_id, type_id::AUDIO | type_id::VIDEO)
}

/// The options players connect with: the simple handshake, as the
/// measurements in the README were made; over `rtmps://` any certificate
/// (the benchmark's is self-signed).
pub fn player_options(read_timeout: Duration) -> ClientOptions {
    ClientOptions {
        digest_handshake: false,
        read_timeout,
        verify_tls: false,
        ..ClientOptions::default()
    }
}

/// Publishes `tags` paced by their timestamps, looping the file, until
/// `stop`; records when each media message was sent.
fn publish(
    spec: &RunSpec,
    tags: &[RawMessage],
    sent: &SentLog,
    stop: &AtomicBool,
) -> Result<(), ClientError> {
    let options = ClientOptions {
        digest_handshake: false,
        verify_tls: false,
        ..ClientOptions::default()
    };
    let mut client = Client::connect(&spec.url, &options)?;
    let stream_id = client.publish(&spec.name)?;
    let duration = tags.iter().map(|t| t.timestamp).max().unwrap_or(0) + 40;
    let start = Instant::now();
    for round in 0u32.. {
        for tag in tags {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let is_header = tag.type_id == type_id::DATA_AMF0
                || codec::inspect_video(&tag.payload).is_some_and(|v| v.sequence_header)
                    && tag.type_id == type_id::VIDEO
                || codec::inspect_audio(&tag.payload).is_some_and(|a| a.sequence_header)
                    && tag.type_id == type_id::AUDIO;
            if round > 0 && is_header {
                continue;
            }
            let timestamp = tag.timestamp + round * duration;
            let due = start + Duration::from_millis(timestamp as u64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            let message = RawMessage {
                timestamp,
                stream_id,
                ..tag.clone()
            };
            let csid = match tag.type_id {
                type_id::AUDIO => 4,
                type_id::VIDEO => 6,
                _ => 5,
            };
            client.send(csid, &message)?;
            if is_media(tag) {
                let record = Sent {
                    at: Instant::now(),
                    bytes: tag.payload.len(),
                };
                sent.lock().insert((tag.type_id, timestamp), record);
            }
        }
    }
    Ok(())
}

/// One player on its own blocking thread (`--client-mode threads`).
fn play(spec: &RunSpec, log: &Mutex<PlayerLog>, stop: &AtomicBool) -> Result<(), ClientError> {
    log.lock().connect_started = Some(Instant::now());
    let mut client = Client::connect(&spec.url, &player_options(Duration::from_millis(500)))?;
    client.play(&spec.name)?;
    let mut mine = PlayerLog::default();
    mine.received.reserve(4096);
    while !stop.load(Ordering::Relaxed) {
        let message = match client.read_message() {
            Ok(m) => m,
            Err(e) if e.is_timeout() => continue,
            Err(e) => return Err(e),
        };
        mine.record(&message, Instant::now());
    }
    let mut log = log.lock();
    log.first_frame = mine.first_frame;
    log.received = mine.received;
    Ok(())
}

/// The players of a run, however they are run.
enum Players {
    Threads(Vec<thread::JoinHandle<()>>),
    Mux(mux::Mux),
}

impl Players {
    fn start(spec: &Arc<RunSpec>, logs: &Logs, stop: &Arc<AtomicBool>) -> Result<Players, String> {
        if spec.client_mode == ClientMode::Mux {
            let setup = mux::Setup {
                url: spec.url.clone(),
                name: spec.name.clone(),
                players: spec.players,
                threads: spec.client_threads,
            };
            return mux::Mux::start(setup, Arc::clone(logs), Arc::clone(stop)).map(Players::Mux);
        }
        let mut handles = Vec::new();
        for index in 0..spec.players {
            let (spec, logs, stop) = (Arc::clone(spec), Arc::clone(logs), Arc::clone(stop));
            let handle = thread::Builder::new()
                .stack_size(128 * 1024)
                .spawn(move || {
                    if let Some(log) = logs.get(index)
                        && let Err(e) = play(&spec, log, &stop)
                    {
                        log.lock().error = Some(e.to_string());
                    }
                })
                .map_err(|e| e.to_string())?;
            handles.push(handle);
        }
        Ok(Players::Threads(handles))
    }

    /// Waits for every player to stop (after `stop` is set).
    fn join(self) {
        match self {
            Players::Threads(handles) => {
                for handle in handles {
                    let _ = handle.join();
                }
            }
            Players::Mux(mux) => mux.join(),
        }
    }
}

/// Runs one load test and measures it.
pub fn run(spec: RunSpec) -> Result<RunResult, String> {
    let tags = flv::parse(&Bytes::from(spec.flv.clone())).map_err(|e| e.to_string())?;
    let spec = Arc::new(spec);
    let sent: SentLog = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (spec, sent, stop) = (Arc::clone(&spec), Arc::clone(&sent), Arc::clone(&stop));
        thread::spawn(move || publish(&spec, &tags, &sent, &stop).map_err(|e| e.to_string()))
    };
    thread::sleep(spec.lead_in);
    let baseline_rss = proc_stats::total_rss(&spec.server_pids);
    let baseline_fds = open_fds(&spec.server_pids);
    let logs: Logs = Arc::new((0..spec.players).map(|_| Mutex::default()).collect());
    let players = match Players::start(&spec, &logs, &stop) {
        Ok(players) => players,
        Err(e) => {
            stop.store(true, Ordering::Relaxed);
            return Err(e);
        }
    };
    thread::sleep(spec.warmup);

    let window_start = Instant::now();
    let server_cpu_start = proc_stats::total_cpu(&spec.server_pids);
    let client_cpu_start = ProcessFigures::read().cpu_time();
    let (mut peak_rss, mut peak_fds) = (0, 0);
    while window_start.elapsed() < spec.window {
        peak_rss = peak_rss.max(proc_stats::total_rss(&spec.server_pids));
        peak_fds = peak_fds.max(open_fds(&spec.server_pids));
        thread::sleep(Duration::from_millis(250));
    }
    let window = window_start.elapsed();
    let window_end = Instant::now();
    let server_cpu = proc_stats::total_cpu(&spec.server_pids).saturating_sub(server_cpu_start);
    let client_cpu = ProcessFigures::read()
        .cpu_time()
        .saturating_sub(client_cpu_start);
    // Let the last messages of the window arrive before stopping.
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    players.join();
    publisher
        .join()
        .map_err(|_| "publisher thread panicked".to_string())??;

    let sent = sent.lock();
    let in_window: HashMap<(u8, u32), Sent> = sent
        .iter()
        .filter(|(_, s)| s.at >= window_start && s.at < window_end)
        .map(|(k, s)| (*k, *s))
        .collect();
    let expected_bytes: usize = in_window.values().map(|s| s.bytes).sum();
    let mut result = RunResult::new(&spec.label, spec.players, window);
    result.client_mode = spec.client_mode;
    result.client_threads = match spec.client_mode {
        ClientMode::Mux => spec.client_threads,
        ClientMode::Threads => spec.players,
    };
    result.server_cpu_seconds = server_cpu.as_secs_f64();
    result.client_cpu_seconds = client_cpu.as_secs_f64();
    result.baseline_rss_bytes = baseline_rss;
    result.peak_rss_bytes = peak_rss;
    result.baseline_fds = baseline_fds;
    result.peak_fds = peak_fds;
    result.expected_bytes_per_player = expected_bytes as u64;
    for log in logs.iter() {
        let log = log.lock();
        if let Some(e) = &log.error {
            result.errors.push(e.clone());
        }
        let mut delivered = 0;
        let mut seen = 0;
        for r in &log.received {
            if let Some(s) = in_window.get(&r.key) {
                delivered += r.bytes;
                seen += 1;
                result
                    .delays_ms
                    .push(r.at.saturating_duration_since(s.at).as_secs_f64() * 1000.0);
            }
        }
        result.delivered_bytes.push(delivered as u64);
        if seen < in_window.len() {
            result.players_with_gaps += 1;
        }
        if let (Some(start), Some(first)) = (log.connect_started, log.first_frame) {
            result
                .first_frame_ms
                .push(first.saturating_duration_since(start).as_secs_f64() * 1000.0);
        }
    }
    Ok(result)
}
