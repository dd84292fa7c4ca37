//! Server-wide counters and gauges: plain atomics, bumped on the hot path
//! without any lock. Gauges move through RAII guards, so every increment is
//! matched by exactly one decrement, even when a thread unwinds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every server-wide figure. Counters only grow; gauges are current values.
#[derive(Debug, Default)]
pub struct Metrics {
    // Gauges.
    pub connections_active: AtomicU64,
    pub publishers_active: AtomicU64,
    pub subscribers_active: AtomicU64,
    pub recordings_active: AtomicU64,
    /// Upstream connections of `-source` pulls open now.
    pub pulls_active: AtomicU64,
    // Counters.
    pub connections_total: AtomicU64,
    pub publishers_total: AtomicU64,
    pub subscribers_total: AtomicU64,
    pub messages_audio: AtomicU64,
    pub messages_video: AtomicU64,
    /// Media payload bytes received from publishers.
    pub bytes_ingested: AtomicU64,
    /// Media payload bytes written to players' sockets.
    pub bytes_egress: AtomicU64,
    /// Media messages not delivered to a player.
    pub subscriber_drops: AtomicU64,
    /// Times a player started skipping to the next keyframe.
    pub slow_skips: AtomicU64,
    pub handshake_failures: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub auth_successes: AtomicU64,
    pub auth_failures: AtomicU64,
    pub recording_errors: AtomicU64,
    /// Connections closed for idleness (including silent publishers).
    pub zombie_connections: AtomicU64,
    pub relay_messages_sent: AtomicU64,
    pub relay_messages_dropped: AtomicU64,
    pub relay_bytes_sent: AtomicU64,
    /// Connections closed at accept because `-max-connections` was reached.
    pub connections_rejected: AtomicU64,
    /// Connection threads that panicked (and were contained).
    pub connection_panics: AtomicU64,
    /// Lifecycle events a consumer fell too far behind to receive.
    pub events_dropped: AtomicU64,
    /// Hook runs started (scripts, webhooks, stdio lines).
    pub hooks_fired: AtomicU64,
    /// Hook runs that failed: a script's non-zero exit, a webhook's
    /// non-2xx answer or connection failure after its retries.
    pub hooks_failed: AtomicU64,
    /// Hook runs not started because their queue was full.
    pub hooks_dropped: AtomicU64,
    /// Hook runs stopped at `-hook-timeout` (a script killed, a webhook
    /// abandoned).
    pub hooks_timed_out: AtomicU64,
    /// Times a `-source` stream changed the input players get.
    pub input_switches: AtomicU64,
    /// Connection attempts of `-source` pulls after their first.
    pub pull_reconnects: AtomicU64,
}

/// One stream's counters, shared by its publisher and its players' writer
/// threads. They only grow for as long as the stream entry lives; a publish
/// session's figures are differences from a baseline taken at its start.
#[derive(Debug, Default)]
pub struct StreamCounters {
    pub bytes_in: AtomicU64,
    pub messages_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub dropped_messages: AtomicU64,
    pub dropped_bytes: AtomicU64,
    pub skip_events: AtomicU64,
}

/// A reading of [`StreamCounters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamCounts {
    pub bytes_in: u64,
    pub messages_in: u64,
    pub bytes_out: u64,
    pub dropped_messages: u64,
    pub dropped_bytes: u64,
    pub skip_events: u64,
}

impl StreamCounters {
    pub fn read(&self) -> StreamCounts {
        StreamCounts {
            bytes_in: get(&self.bytes_in),
            messages_in: get(&self.messages_in),
            bytes_out: get(&self.bytes_out),
            dropped_messages: get(&self.dropped_messages),
            dropped_bytes: get(&self.dropped_bytes),
            skip_events: get(&self.skip_events),
        }
    }
}

impl StreamCounts {
    /// The counts accumulated since `baseline`.
    pub fn since(&self, baseline: &StreamCounts) -> StreamCounts {
        StreamCounts {
            bytes_in: self.bytes_in.saturating_sub(baseline.bytes_in),
            messages_in: self.messages_in.saturating_sub(baseline.messages_in),
            bytes_out: self.bytes_out.saturating_sub(baseline.bytes_out),
            dropped_messages: self
                .dropped_messages
                .saturating_sub(baseline.dropped_messages),
            dropped_bytes: self.dropped_bytes.saturating_sub(baseline.dropped_bytes),
            skip_events: self.skip_events.saturating_sub(baseline.skip_events),
        }
    }
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Reads a counter or gauge.
pub fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Holds a gauge one higher for as long as it lives.
pub struct GaugeGuard {
    metrics: Arc<Metrics>,
    gauge: fn(&Metrics) -> &AtomicU64,
}

impl GaugeGuard {
    /// Raises `gauge` and, when given, bumps the matching `total` counter.
    pub fn raise(
        metrics: &Arc<Metrics>,
        gauge: fn(&Metrics) -> &AtomicU64,
        total: Option<fn(&Metrics) -> &AtomicU64>,
    ) -> GaugeGuard {
        add(gauge(metrics), 1);
        if let Some(total) = total {
            add(total(metrics), 1);
        }
        GaugeGuard {
            metrics: Arc::clone(metrics),
            gauge,
        }
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        (self.gauge)(&self.metrics).fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for GaugeGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GaugeGuard")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauge_guards_return_to_zero_and_totals_stay() {
        let metrics = Arc::new(Metrics::default());
        let a = GaugeGuard::raise(
            &metrics,
            |m| &m.publishers_active,
            Some(|m| &m.publishers_total),
        );
        let b = GaugeGuard::raise(
            &metrics,
            |m| &m.publishers_active,
            Some(|m| &m.publishers_total),
        );
        assert_eq!(get(&metrics.publishers_active), 2);
        drop(a);
        let unwound = std::panic::catch_unwind(move || {
            let _b = b;
            panic!("connection thread dies");
        });
        assert!(unwound.is_err());
        assert_eq!(get(&metrics.publishers_active), 0);
        assert_eq!(get(&metrics.publishers_total), 2);
    }
}
