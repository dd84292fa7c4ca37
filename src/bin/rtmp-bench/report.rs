//! Benchmark results: one run's figures, their JSON line form, and the
//! side-by-side table with ratios that `rtmp-bench report` prints.

use std::fmt::Write;
use std::time::Duration;

use serde_json::{Value, json};

/// Raw measurements of one run.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    pub label: String,
    pub players: usize,
    pub window: Duration,
    pub server_cpu_seconds: f64,
    pub client_cpu_seconds: f64,
    pub baseline_rss_bytes: u64,
    pub peak_rss_bytes: u64,
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
    /// Server CPU seconds per second of stream.
    pub cpu_per_second: f64,
    /// Server CPU seconds per second per delivered Mbit/s.
    pub cpu_per_mbps: f64,
    pub peak_rss_mib: f64,
    pub rss_per_player_kib: f64,
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
            "label": self.label,
            "players": self.players,
            "cpu_per_second": self.cpu_per_second,
            "cpu_per_mbps": self.cpu_per_mbps,
            "peak_rss_mib": self.peak_rss_mib,
            "rss_per_player_kib": self.rss_per_player_kib,
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
        let number = |key: &str| value.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN);
        Some(Summary {
            label: value.get("label")?.as_str()?.to_owned(),
            players: value.get("players")?.as_u64()? as usize,
            cpu_per_second: number("cpu_per_second"),
            cpu_per_mbps: number("cpu_per_mbps"),
            peak_rss_mib: number("peak_rss_mib"),
            rss_per_player_kib: number("rss_per_player_kib"),
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
        "| {} | {} | {:.3} | {:.5} | {:.1} | {:.1} | {:.1} | {} | {:.0} / {:.0} | {:.1} / {:.1} | {:.2} | {} |",
        s.label,
        s.players,
        s.cpu_per_second,
        s.cpu_per_mbps,
        s.peak_rss_mib,
        s.rss_per_player_kib,
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

/// A Markdown table of every run, then ratios of `ours` to `peer` for each
/// player count both were run with.
pub fn table(summaries: &[Summary], ours: &str, peer: &str) -> String {
    let mut out = String::new();
    out.push_str("| server | players | CPU s/s | CPU s/s per Mbps | peak RSS MiB | RSS/player KiB | delivered min % | players with gaps | first frame p50/p99 ms | delay p50/p99 ms | client CPU s/s | errors |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for s in summaries {
        out.push_str(&row(s));
        out.push('\n');
    }
    out.push_str(&format!(
        "\nRatios {ours}/{peer} (lower is better except delivery):\n\n"
    ));
    out.push_str(
        "| players | CPU per Mbps | RSS/player | first frame p99 | delay p99 | delivered min |\n",
    );
    out.push_str("|---|---|---|---|---|---|\n");
    let mut counts: Vec<usize> = summaries.iter().map(|s| s.players).collect();
    counts.sort_unstable();
    counts.dedup();
    for n in counts {
        let find = |label: &str| {
            summaries
                .iter()
                .rev()
                .find(|s| s.label == label && s.players == n)
        };
        if let (Some(a), Some(b)) = (find(ours), find(peer)) {
            let _ = writeln!(
                out,
                "| {n} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                a.cpu_per_mbps / b.cpu_per_mbps,
                a.rss_per_player_kib / b.rss_per_player_kib,
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

    #[test]
    fn summary_round_trips_through_json_and_tabulates() {
        let mut run = RunResult::new("ours", 2, Duration::from_secs(10));
        run.server_cpu_seconds = 1.0;
        run.expected_bytes_per_player = 1000;
        run.delivered_bytes = vec![1000, 900];
        run.peak_rss_bytes = 3 << 20;
        run.baseline_rss_bytes = 1 << 20;
        run.first_frame_ms = vec![10.0, 20.0];
        run.delays_ms = vec![1.0, 2.0];
        let s = run.summary();
        assert_eq!(s.delivered_min_pct, 90.0);
        assert_eq!(s.rss_per_player_kib, 1024.0);
        assert_eq!(Summary::from_json(&s.to_json()), Some(s.clone()));
        let mut peer = s.clone();
        peer.label = "nginx".into();
        let text = table(&[s, peer], "ours", "nginx");
        assert!(text.contains("| 2 | 1.00 | 1.00 |"));
    }
}
