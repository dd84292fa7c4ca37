//! The load benchmark behind `rtmp-bench`: one process publishes a
//! pre-encoded FLV file in real time and plays it with N players, then
//! reports the server's CPU and memory, delivery, gaps, time to first
//! frame and delivery delay.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::report::RunResult;
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
struct Received {
    key: (u8, u32),
    at: Instant,
    bytes: usize,
}

#[derive(Debug, Default)]
struct PlayerLog {
    connect_started: Option<Instant>,
    first_frame: Option<Instant>,
    received: Vec<Received>,
    error: Option<String>,
}

type SentLog = Arc<Mutex<HashMap<(u8, u32), Sent>>>;

fn is_media(m: &RawMessage) -> bool {
    matches!(m.type_id, type_id::AUDIO | type_id::VIDEO)
}

/// Publishes `tags` paced by their timestamps, looping the file, until
/// `stop`; records when each media message was sent.
fn publish(
    spec: &RunSpec,
    tags: &[RawMessage],
    sent: &SentLog,
    stop: &AtomicBool,
) -> Result<(), ClientError> {
    // The simple handshake, as the measurements in the README were made.
    let options = ClientOptions {
        digest_handshake: false,
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

fn play(spec: &RunSpec, log: &Mutex<PlayerLog>, stop: &AtomicBool) -> Result<(), ClientError> {
    log.lock().connect_started = Some(Instant::now());
    let options = ClientOptions {
        digest_handshake: false,
        read_timeout: Duration::from_millis(500),
        ..ClientOptions::default()
    };
    let mut client = Client::connect(&spec.url, &options)?;
    client.play(&spec.name)?;
    let mut received = Vec::with_capacity(4096);
    let mut first_frame = None;
    while !stop.load(Ordering::Relaxed) {
        let message = match client.read_message() {
            Ok(m) => m,
            Err(e) if e.is_timeout() => continue,
            Err(e) => return Err(e),
        };
        if !is_media(&message) {
            continue;
        }
        let at = Instant::now();
        if first_frame.is_none()
            && message.type_id == type_id::VIDEO
            && codec::inspect_video(&message.payload).is_some_and(|v| v.keyframe)
        {
            first_frame = Some(at);
        }
        received.push(Received {
            key: (message.type_id, message.timestamp),
            at,
            bytes: message.payload.len(),
        });
    }
    let mut log = log.lock();
    log.first_frame = first_frame;
    log.received = received;
    Ok(())
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
    let logs: Vec<Arc<Mutex<PlayerLog>>> = (0..spec.players).map(|_| Arc::default()).collect();
    let mut players = Vec::new();
    for log in &logs {
        let (spec, log, stop) = (Arc::clone(&spec), Arc::clone(log), Arc::clone(&stop));
        let handle = thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                if let Err(e) = play(&spec, &log, &stop) {
                    log.lock().error = Some(e.to_string());
                }
            })
            .map_err(|e| e.to_string())?;
        players.push(handle);
    }
    thread::sleep(spec.warmup);

    let window_start = Instant::now();
    let server_cpu_start = proc_stats::total_cpu(&spec.server_pids);
    let client_cpu_start = ProcessFigures::read().cpu_time();
    let mut peak_rss = 0;
    while window_start.elapsed() < spec.window {
        peak_rss = peak_rss.max(proc_stats::total_rss(&spec.server_pids));
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
    for player in players {
        let _ = player.join();
    }
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
    result.server_cpu_seconds = server_cpu.as_secs_f64();
    result.client_cpu_seconds = client_cpu.as_secs_f64();
    result.baseline_rss_bytes = baseline_rss;
    result.peak_rss_bytes = peak_rss;
    result.expected_bytes_per_player = expected_bytes as u64;
    for log in &logs {
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
