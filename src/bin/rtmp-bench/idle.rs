//! Idle connections (`rtmp-bench idle`): opens N connections that complete
//! the handshake and `connect`, then sit there; measures what they cost
//! the server in resident memory and open file descriptors, and tabulates
//! the figures of two servers side by side.

use std::fmt::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::load::player_options;
use rtmp_server::proc_stats;
use rtmp_server::protocol::url::RtmpUrl;
use rtmp_server::rtmp::client::Client;

/// Threads that open connections at once.
const SETUP_THREADS: usize = 32;
/// Time allowed for each step of a connection's set-up.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the server's open files are counted while they settle.
const SAMPLE: Duration = Duration::from_millis(200);
/// Samples in a row with the same count that make it stable.
const STABLE_SAMPLES: usize = 5;

/// Open file descriptors of a set of processes (entries of
/// `/proc/PID/fd`; 0 for a process that cannot be read).
pub fn open_fds(pids: &[u32]) -> u64 {
    pids.iter()
        .map(|pid| std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64))
        .sum()
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct IdleSpec {
    pub label: String,
    /// The application URL (a stream name, if any, is not used).
    pub url: RtmpUrl,
    pub connections: usize,
    pub server_pids: Vec<u32>,
    /// Longest wait for the server's open files to settle.
    pub settle: Duration,
}

/// What the connections cost.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleSummary {
    pub label: String,
    /// Connections asked for.
    pub connections: usize,
    /// Connections still open at the measurement.
    pub open: usize,
    pub baseline_rss_bytes: u64,
    pub rss_bytes: u64,
    pub baseline_fds: u64,
    pub fds: u64,
    /// From the first connection started to the last set up.
    pub setup_seconds: f64,
    /// Connections that failed or that the server closed.
    pub errors: usize,
}

impl IdleSummary {
    pub fn kib_per_connection(&self) -> f64 {
        per(
            self.rss_bytes.saturating_sub(self.baseline_rss_bytes) as f64 / 1024.0,
            self.open,
        )
    }

    pub fn fds_per_connection(&self) -> f64 {
        per(self.fds.saturating_sub(self.baseline_fds) as f64, self.open)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "kind": "idle",
            "label": self.label,
            "connections": self.connections,
            "open": self.open,
            "memory_per_idle_connection_kib": self.kib_per_connection(),
            "fds_per_connection": self.fds_per_connection(),
            "baseline_rss_bytes": self.baseline_rss_bytes,
            "rss_bytes": self.rss_bytes,
            "baseline_fds": self.baseline_fds,
            "fds": self.fds,
            "setup_seconds": self.setup_seconds,
            "errors": self.errors,
        })
    }

    pub fn from_json(value: &Value) -> Option<IdleSummary> {
        if value.get("kind")?.as_str()? != "idle" {
            return None;
        }
        let count = |key: &str| value.get(key).and_then(Value::as_u64);
        Some(IdleSummary {
            label: value.get("label")?.as_str()?.to_owned(),
            connections: count("connections")? as usize,
            open: count("open")? as usize,
            baseline_rss_bytes: count("baseline_rss_bytes")?,
            rss_bytes: count("rss_bytes")?,
            baseline_fds: count("baseline_fds")?,
            fds: count("fds")?,
            setup_seconds: value
                .get("setup_seconds")
                .and_then(Value::as_f64)
                .unwrap_or(f64::NAN),
            errors: count("errors")? as usize,
        })
    }
}

fn per(total: f64, n: usize) -> f64 {
    if n == 0 { f64::NAN } else { total / n as f64 }
}

/// Opens the connections, waits for the server to settle, measures.
pub fn run(spec: &IdleSpec) -> Result<IdleSummary, String> {
    let baseline_rss_bytes = proc_stats::total_rss(&spec.server_pids);
    let baseline_fds = open_fds(&spec.server_pids);
    let started = Instant::now();
    let sockets: Mutex<Vec<Arc<TcpStream>>> = Mutex::new(Vec::with_capacity(spec.connections));
    let errors = AtomicUsize::new(0);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let next = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..SETUP_THREADS.min(spec.connections) {
            scope.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < spec.connections {
                    match Client::connect(&spec.url, &player_options(SETUP_TIMEOUT)) {
                        Ok(client) => sockets.lock().push(client.into_parts().socket),
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error.lock().get_or_insert(e.to_string());
                        }
                    }
                }
            });
        }
    });
    let setup_seconds = started.elapsed().as_secs_f64();
    // The server may still be taking the last ones in.
    let settle_until = Instant::now() + spec.settle;
    let (mut last, mut same) = (open_fds(&spec.server_pids), 0);
    while same + 1 < STABLE_SAMPLES && Instant::now() < settle_until {
        thread::sleep(SAMPLE);
        let fds = open_fds(&spec.server_pids);
        same = if fds == last { same + 1 } else { 0 };
        last = fds;
    }
    let rss_bytes = proc_stats::total_rss(&spec.server_pids);
    let fds = open_fds(&spec.server_pids);
    let sockets = sockets.into_inner();
    let open = sockets.iter().filter(|s| still_open(s)).count();
    let closed = sockets.len() - open;
    let first_error = first_error.into_inner();
    if open == 0 {
        let why = first_error.unwrap_or_else(|| "the server closed them all".into());
        return Err(format!("no idle connection stayed open: {why}"));
    }
    if let Some(e) = first_error {
        eprintln!("rtmp-bench: idle connection error: {e}");
    }
    if closed > 0 {
        eprintln!("rtmp-bench: the server closed {closed} idle connections");
    }
    Ok(IdleSummary {
        label: spec.label.clone(),
        connections: spec.connections,
        open,
        baseline_rss_bytes,
        rss_bytes,
        baseline_fds,
        fds,
        setup_seconds,
        errors: errors.into_inner() + closed,
    })
}

/// Whether the server has not closed `socket` (what it sent is left
/// unread).
fn still_open(socket: &TcpStream) -> bool {
    if socket.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    match socket.peek(&mut byte) {
        Ok(n) => n > 0,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

/// A Markdown table of idle measurements, then the ratios of `ours` to
/// `peer` (their last measurements) if both are there.
pub fn table(summaries: &[IdleSummary], ours: &str, peer: &str) -> String {
    let mut out = String::new();
    out.push_str("| server | connections | open | memory per idle connection KiB | fds per connection | set-up s | errors |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for s in summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.2} | {:.2} | {} |",
            s.label,
            s.connections,
            s.open,
            s.kib_per_connection(),
            s.fds_per_connection(),
            s.setup_seconds,
            s.errors,
        );
    }
    let last = |label: &str| summaries.iter().rev().find(|s| s.label == label);
    if let (Some(a), Some(b)) = (last(ours), last(peer)) {
        let _ = write!(
            out,
            "\nIdle ratios {ours}/{peer} (lower is better):\n\n\
             | memory per idle connection | fds per connection |\n|---|---|\n\
             | {:.2} | {:.2} |\n",
            a.kib_per_connection() / b.kib_per_connection(),
            a.fds_per_connection() / b.fds_per_connection(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(label: &str, kib: u64, fds: u64) -> IdleSummary {
        IdleSummary {
            label: label.into(),
            connections: 100,
            open: 100,
            baseline_rss_bytes: 1 << 20,
            rss_bytes: (1 << 20) + kib * 1024 * 100,
            baseline_fds: 5,
            fds: 5 + fds * 100,
            setup_seconds: 0.5,
            errors: 0,
        }
    }

    #[test]
    fn per_connection_figures() {
        let s = summary("ours", 40, 1);
        assert_eq!(s.kib_per_connection(), 40.0);
        assert_eq!(s.fds_per_connection(), 1.0);
        let none = IdleSummary { open: 0, ..s };
        assert!(none.kib_per_connection().is_nan());
    }

    #[test]
    fn round_trips_through_json_and_only_idle_lines_parse() {
        let s = summary("ours", 40, 1);
        let v = s.to_json();
        assert_eq!(v["memory_per_idle_connection_kib"], 40.0);
        assert_eq!(IdleSummary::from_json(&v), Some(s));
        let play = json!({"kind": "play", "label": "ours", "players": 10});
        assert_eq!(IdleSummary::from_json(&play), None);
        assert_eq!(IdleSummary::from_json(&json!({"label": "ours"})), None);
    }

    #[test]
    fn table_has_ratios_only_with_both_servers() {
        let ours = summary("ours", 40, 1);
        let peer = summary("nginx-rtmp", 20, 2);
        let alone = table(std::slice::from_ref(&ours), "ours", "nginx-rtmp");
        assert!(alone.contains("| ours | 100 | 100 | 40.0 | 1.00 | 0.50 | 0 |"));
        assert!(!alone.contains("ratios"));
        let both = table(&[ours, peer], "ours", "nginx-rtmp");
        assert!(both.contains("Idle ratios ours/nginx-rtmp"));
        assert!(both.contains("| 2.00 | 0.50 |"));
    }
}
