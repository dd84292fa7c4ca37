//! Benchmark results: one run's figures, their JSON line form, and the
//! side-by-side table with ratios that `rtmp-bench report` prints.

use std::fmt::{self, Write};
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Value, json};

/// How the load client runs its players.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientMode {
    /// Many players on a few threads, with non-blocking sockets and a
    /// poller: what remote players cost a server.
    #[default]
    Mux,
    /// One blocking thread per player (each message the server writes
    /// wakes one, and loopback charges that to the server).
    Threads,
}

impl ClientMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientMode::Mux => "mux",
            ClientMode::Threads => "threads",
        }
    }
}

impl fmt::Display for ClientMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientMode {
    type Err = String;

    fn from_str(s: &str) -> Result<ClientMode, String> {
        match s {
            "mux" => Ok(ClientMode::Mux),
            "threads" => Ok(ClientMode::Threads),
            other => Err(format!(
                "unknown client mode {other:?}: want mux or threads"
            )),
        }
    }
}

/// Raw measurements of one run.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub label: String,
    pub players: usize,
    pub client_mode: ClientMode,
    /// Threads the players ran on.
    pub client_threads: usize,
    pub window: Duration,
    pub server_cpu_seconds: f64,
    pub client_cpu_seconds: f64,
    pub baseline_rss_bytes: u64,
    pub peak_rss_bytes: u64,
    /// The server's open files before the players joined, and at most
    /// during the window.
    pub baseline_fds: u64,
    pub peak_fds: u64,
    pub expected_bytes_per_player: u64,
    pub delivered_bytes: Vec<u64>,
    pub players_with_gaps: usize,
    pub first_frame_ms: Vec<f64>,
    pub delays_ms: Vec<f64>,
    pub errors: Vec<String>,
}

/// The `q` quantile (0..=1) of `values`, nearest rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The figures a run is judged by.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub label: String,
    pub players: usize,
    /// `mux` or `threads` (runs from before the modes were threads).
    pub client: String,
    pub client_threads: usize,
    /// Server CPU seconds per second of stream.
    pub cpu_per_second: f64,
    /// Server CPU seconds per second per delivered Mbit/s.
    pub cpu_per_mbps: f64,
    pub peak_rss_mib: f64,
    pub rss_per_player_kib: f64,
    /// The server's open files per player.
    pub fds_per_player: f64,
    /// Lowest delivered share of the expected bytes of any player, in %.
    pub delivered_min_pct: f64,
    pub players_with_gaps: usize,
    pub first_frame_p50_ms: f64,
    pub first_frame_p99_ms: f64,
    pub delay_p50_ms: f64,
    pub delay_p99_ms: f64,
    pub client_cpu_per_second: f64,
    pub errors: usize,
}

impl RunResult {
    pub fn new(label: &str, players: usize, window: Duration) -> RunResult {
        RunResult {
            label: label.to_owned(),
            players,
            window,
            ..RunResult::default()
        }
    }

    pub fn summary(&self) -> Summary {
        let seconds = self.window.as_secs_f64().max(1e-9);
        let delivered: u64 = self.delivered_bytes.iter().sum();
        let delivered_mbps = delivered as f64 * 8.0 / seconds / 1e6;
        let cpu_per_second = self.server_cpu_seconds / seconds;
        let expected = self.expected_bytes_per_player.max(1) as f64;
        Summary {
            label: self.label.clone(),
            players: self.players,
            client: self.client_mode.to_string(),
            client_threads: self.client_threads,
            cpu_per_second,
            cpu_per_mbps: if delivered_mbps > 0.0 {
                cpu_per_second / delivered_mbps
            } else {
                f64::NAN
            },
            peak_rss_mib: self.peak_rss_bytes as f64 / (1 << 20) as f64,
            rss_per_player_kib: self.peak_rss_bytes.saturating_sub(self.baseline_rss_bytes) as f64
                / 1024.0
                / self.players.max(1) as f64,
            fds_per_player: self.peak_fds.saturating_sub(self.baseline_fds) as f64
                / self.players.max(1) as f64,
            delivered_min_pct: self
                .delivered_bytes
                .iter()
                .map(|&b| b as f64 * 100.0 / expected)
                .fold(f64::INFINITY, f64::min)
                .min(if self.delivered_bytes.len() < self.players {
                    0.0
                } else {
                    f64::INFINITY
                }),
            players_with_gaps: self.players_with_gaps,
            first_frame_p50_ms: quantile(&self.first_frame_ms, 0.5),
            first_frame_p99_ms: quantile(&self.first_frame_ms, 0.99),
            delay_p50_ms: quantile(&self.delays_ms, 0.5),
            delay_p99_ms: quantile(&self.delays_ms, 0.99),
            client_cpu_per_second: self.client_cpu_seconds / seconds,
            errors: self.errors.len(),
        }
    }
}

impl Summary {
    pub fn to_json(&self) -> Value {
        json!({
            "kind": "play",
            "label": self.label,
            "players": self.players,
            "client": self.client,
            "client_threads": self.client_threads,
            "cpu_per_second": self.cpu_per_second,
            "cpu_per_mbps": self.cpu_per_mbps,
            "peak_rss_mib": self.peak_rss_mib,
            "rss_per_player_kib": self.rss_per_player_kib,
            "fds_per_player": self.fds_per_player,
            "delivered_min_pct": self.delivered_min_pct,
            "players_with_gaps": self.players_with_gaps,
            "first_frame_p50_ms": self.first_frame_p50_ms,
            "first_frame_p99_ms": self.first_frame_p99_ms,
            "delay_p50_ms": self.delay_p50_ms,
            "delay_p99_ms": self.delay_p99_ms,
            "client_cpu_per_second": self.client_cpu_per_second,
            "errors": self.errors,
        })
    }

    pub fn from_json(value: &Value) -> Option<Summary> {
        if value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k != "play")
        {
            return None;
        }
        let number = |key: &str| value.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN);
        let players = value.get("players")?.as_u64()? as usize;
        Some(Summary {
            label: value.get("label")?.as_str()?.to_owned(),
            players,
            client: value
                .get("client")
                .and_then(Value::as_str)
                .unwrap_or(ClientMode::Threads.as_str())
                .to_owned(),
            client_threads: value
                .get("client_threads")
                .and_then(Value::as_u64)
                .map_or(players, |n| n as usize),
            cpu_per_second: number("cpu_per_second"),
            cpu_per_mbps: number("cpu_per_mbps"),
            peak_rss_mib: number("peak_rss_mib"),
            rss_per_player_kib: number("rss_per_player_kib"),
            fds_per_player: number("fds_per_player"),
            delivered_min_pct: number("delivered_min_pct"),
            players_with_gaps: value.get("players_with_gaps")?.as_u64()? as usize,
            first_frame_p50_ms: number("first_frame_p50_ms"),
            first_frame_p99_ms: number("first_frame_p99_ms"),
            delay_p50_ms: number("delay_p50_ms"),
            delay_p99_ms: number("delay_p99_ms"),
            client_cpu_per_second: number("client_cpu_per_second"),
            errors: value.get("errors")?.as_u64()? as usize,
        })
    }
}

fn row(s: &Summary) -> String {
    format!(
        "| {} | {} | {} | {:.3} | {:.5} | {:.1} | {:.1} | {:.2} | {:.1} | {} | {:.0} / {:.0} | {:.1} / {:.1} | {:.2} | {} |",
        s.label,
        s.client,
        s.players,
        s.cpu_per_second,
        s.cpu_per_mbps,
        s.peak_rss_mib,
        s.rss_per_player_kib,
        s.fds_per_player,
        s.delivered_min_pct,
        s.players_with_gaps,
        s.first_frame_p50_ms,
        s.first_frame_p99_ms,
        s.delay_p50_ms,
        s.delay_p99_ms,
        s.client_cpu_per_second,
        s.errors,
    )
}

/// A Markdown table of every run, then, for each client mode, ratios of
/// `ours` to `peer` for each player count both were run with (their last
/// runs).
pub fn table(summaries: &[Summary], ours: &str, peer: &str) -> String {
    let mut out = String::new();
    out.push_str("| server | client | players | CPU s/s | CPU s/s per Mbps | peak RSS MiB | RSS/player KiB | fds/player | delivered min % | players with gaps | first frame p50/p99 ms | delay p50/p99 ms | client CPU s/s | errors |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in summaries {
        out.push_str(&row(s));
        out.push('\n');
    }
    let mut modes: Vec<&str> = Vec::new();
    for s in summaries {
        if !modes.contains(&s.client.as_str()) {
            modes.push(&s.client);
        }
    }
    let mut counts: Vec<usize> = summaries.iter().map(|s| s.players).collect();
    counts.sort_unstable();
    counts.dedup();
    for mode in modes {
        let find = |label: &str, n: usize| {
            summaries
                .iter()
                .rev()
                .find(|s| s.label == label && s.players == n && s.client == mode)
        };
        let pairs: Vec<(usize, &Summary, &Summary)> = counts
            .iter()
            .filter_map(|&n| Some((n, find(ours, n)?, find(peer, n)?)))
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "\nRatios {ours}/{peer}, {mode} clients (lower is better except delivery):\n\n"
        );
        out.push_str("| players | CPU per Mbps | RSS/player | fds/player | first frame p99 | delay p99 | delivered min |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for (n, a, b) in pairs {
            let _ = writeln!(
                out,
                "| {n} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                a.cpu_per_mbps / b.cpu_per_mbps,
                a.rss_per_player_kib / b.rss_per_player_kib,
                a.fds_per_player / b.fds_per_player,
                a.first_frame_p99_ms / b.first_frame_p99_ms,
                a.delay_p99_ms / b.delay_p99_ms,
                a.delivered_min_pct / b.delivered_min_pct,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&[3.0], 0.99), 3.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    fn run(label: &str, mode: ClientMode, cpu: f64) -> Summary {
        let mut run = RunResult::new(label, 2, Duration::from_secs(10));
        run.client_mode = mode;
        run.client_threads = 1;
        run.server_cpu_seconds = cpu;
        run.expected_bytes_per_player = 1000;
        run.delivered_bytes = vec![1000, 900];
        run.peak_rss_bytes = 3 << 20;
        run.baseline_rss_bytes = 1 << 20;
        run.baseline_fds = 10;
        run.peak_fds = 14;
        run.first_frame_ms = vec![10.0, 20.0];
        run.delays_ms = vec![1.0, 2.0];
        run.summary()
    }

    #[test]
    fn summary_round_trips_through_json_and_tabulates() {
        let s = run("ours", ClientMode::Mux, 1.0);
        assert_eq!(s.delivered_min_pct, 90.0);
        assert_eq!(s.rss_per_player_kib, 1024.0);
        assert_eq!(s.fds_per_player, 2.0);
        assert_eq!(s.client, "mux");
        assert_eq!(s.to_json()["kind"], "play");
        assert_eq!(Summary::from_json(&s.to_json()), Some(s.clone()));
        let mut peer = s.clone();
        peer.label = "nginx".into();
        let text = table(&[s, peer], "ours", "nginx");
        assert!(text.contains("| ours | mux | 2 | 0.100 |"), "{text}");
        assert!(text.contains("Ratios ours/nginx, mux clients"));
        assert!(text.contains("| 2 | 1.00 | 1.00 | 1.00 |"));
    }

    #[test]
    fn ratios_pair_runs_of_the_same_client_mode() {
        let runs = [
            run("ours", ClientMode::Mux, 1.0),
            run("nginx", ClientMode::Mux, 2.0),
            run("ours", ClientMode::Threads, 3.0),
            run("nginx", ClientMode::Threads, 1.0),
            // A mode only one server ran gets no ratios.
            Summary {
                client: "other".into(),
                ..run("ours", ClientMode::Mux, 1.0)
            },
        ];
        let text = table(&runs, "ours", "nginx");
        let mux = text.find("mux clients").unwrap();
        let threads = text.find("threads clients").unwrap();
        assert!(mux < threads);
        assert!(text[mux..threads].contains("| 2 | 0.50 |"), "{text}");
        assert!(text[threads..].contains("| 2 | 3.00 |"), "{text}");
        assert!(!text.contains("other clients"));
    }

    #[test]
    fn old_lines_were_thread_runs_and_idle_lines_are_not_runs() {
        let old = json!({"label": "ours", "players": 10, "players_with_gaps": 0, "errors": 0});
        let s = Summary::from_json(&old).unwrap();
        assert_eq!((s.client.as_str(), s.client_threads), ("threads", 10));
        assert!(s.fds_per_player.is_nan());
        let idle = json!({"kind": "idle", "label": "ours", "players": 10, "players_with_gaps": 0, "errors": 0});
        assert_eq!(Summary::from_json(&idle), None);
    }

    #[test]
    fn client_modes_parse() {
        assert_eq!("mux".parse(), Ok(ClientMode::Mux));
        assert_eq!("threads".parse(), Ok(ClientMode::Threads));
        assert!("thread".parse::<ClientMode>().is_err());
        assert_eq!(ClientMode::default(), ClientMode::Mux);
    }
}
