//! One consistent reading of everything the server reports: counters,
//! streams, process figures and server facts. Every endpoint renders from a
//! snapshot, so `/debug/vars`, `/metrics` and the API agree.

use crate::record::RecordingStatus;
use crate::relay::status::RelayStatus;
use crate::source::board::SourceView;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use crate::hub::history::SessionRecord;
use crate::hub::stream_status::StreamStatus;
use crate::metrics::{self, Metrics};
use crate::proc_stats::ProcessFigures;
use crate::server::ServerHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// A server-wide figure under its expvar and Prometheus names.
pub struct MetricDef {
    pub expvar: &'static str,
    pub prometheus: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub read: fn(&Metrics) -> &AtomicU64,
}

macro_rules! metric {
    ($expvar:literal, $prometheus:literal, $kind:ident, $field:ident, $help:literal) => {
        MetricDef {
            expvar: $expvar,
            prometheus: $prometheus,
            kind: Kind::$kind,
            help: $help,
            read: |m| &m.$field,
        }
    };
}

/// Every atomic figure, in the order the endpoints list them.
pub const METRICS: &[MetricDef] = &[
    metric!(
        "rtmp_connections_active",
        "rtmp_connections_active",
        Gauge,
        connections_active,
        "Handshaken RTMP connections open now."
    ),
    metric!(
        "rtmp_publishers_active",
        "rtmp_publishers_active",
        Gauge,
        publishers_active,
        "Connections publishing now."
    ),
    metric!(
        "rtmp_subscribers_active",
        "rtmp_subscribers_active",
        Gauge,
        subscribers_active,
        "Connections playing now."
    ),
    metric!(
        "rtmp_recordings_active",
        "rtmp_recordings_active",
        Gauge,
        recordings_active,
        "Recordings being written now."
    ),
    metric!(
        "rtmp_pulls_active",
        "rtmp_pulls_active",
        Gauge,
        pulls_active,
        "Upstream connections of -source pulls open now."
    ),
    metric!(
        "rtmp_connections_total",
        "rtmp_connections_total",
        Counter,
        connections_total,
        "Connections that completed the handshake."
    ),
    metric!(
        "rtmp_publishers_total",
        "rtmp_publishers_total",
        Counter,
        publishers_total,
        "Publish sessions started."
    ),
    metric!(
        "rtmp_subscribers_total",
        "rtmp_subscribers_total",
        Counter,
        subscribers_total,
        "Play sessions started."
    ),
    metric!(
        "rtmp_messages_audio",
        "rtmp_audio_messages_total",
        Counter,
        messages_audio,
        "Audio messages received from publishers."
    ),
    metric!(
        "rtmp_messages_video",
        "rtmp_video_messages_total",
        Counter,
        messages_video,
        "Video messages received from publishers."
    ),
    metric!(
        "rtmp_bytes_ingested",
        "rtmp_ingested_bytes_total",
        Counter,
        bytes_ingested,
        "Media payload bytes received from publishers."
    ),
    metric!(
        "rtmp_bytes_egress",
        "rtmp_egress_bytes_total",
        Counter,
        bytes_egress,
        "Media payload bytes written to players."
    ),
    metric!(
        "rtmp_subscriber_drops_total",
        "rtmp_subscriber_drops_total",
        Counter,
        subscriber_drops,
        "Media messages not delivered to a player."
    ),
    metric!(
        "rtmp_slow_skips_total",
        "rtmp_slow_skips_total",
        Counter,
        slow_skips,
        "Times a slow player was skipped to the next keyframe."
    ),
    metric!(
        "rtmp_handshake_failures_total",
        "rtmp_handshake_failures_total",
        Counter,
        handshake_failures,
        "Connections that failed the handshake."
    ),
    metric!(
        "rtmp_protocol_errors_total",
        "rtmp_protocol_errors_total",
        Counter,
        protocol_errors,
        "Connections closed for a protocol error."
    ),
    metric!(
        "rtmp_auth_successes_total",
        "rtmp_auth_successes_total",
        Counter,
        auth_successes,
        "Accepted stream authentications."
    ),
    metric!(
        "rtmp_auth_failures_total",
        "rtmp_auth_failures_total",
        Counter,
        auth_failures,
        "Refused stream authentications."
    ),
    metric!(
        "rtmp_recording_errors_total",
        "rtmp_recording_errors_total",
        Counter,
        recording_errors,
        "Recording write failures."
    ),
    metric!(
        "rtmp_zombie_connections_total",
        "rtmp_zombie_connections_total",
        Counter,
        zombie_connections,
        "Connections closed for idleness."
    ),
    metric!(
        "rtmp_relay_messages_sent",
        "rtmp_relay_messages_sent_total",
        Counter,
        relay_messages_sent,
        "Messages relayed to other servers."
    ),
    metric!(
        "rtmp_relay_messages_dropped",
        "rtmp_relay_messages_dropped_total",
        Counter,
        relay_messages_dropped,
        "Messages a relay could not send."
    ),
    metric!(
        "rtmp_relay_bytes_sent",
        "rtmp_relay_sent_bytes_total",
        Counter,
        relay_bytes_sent,
        "Bytes relayed to other servers."
    ),
    metric!(
        "rtmp_connections_rejected_total",
        "rtmp_connections_rejected_total",
        Counter,
        connections_rejected,
        "Connections refused at accept over -max-connections."
    ),
    metric!(
        "rtmp_events_dropped_total",
        "rtmp_events_dropped_total",
        Counter,
        events_dropped,
        "Lifecycle events dropped because a consumer fell behind."
    ),
    metric!(
        "rtmp_hooks_fired_total",
        "rtmp_hooks_fired_total",
        Counter,
        hooks_fired,
        "Hook runs started (scripts, webhooks, stdio lines)."
    ),
    metric!(
        "rtmp_hooks_failed_total",
        "rtmp_hooks_failed_total",
        Counter,
        hooks_failed,
        "Hook runs that failed."
    ),
    metric!(
        "rtmp_hooks_dropped_total",
        "rtmp_hooks_dropped_total",
        Counter,
        hooks_dropped,
        "Hook runs dropped because their queue was full."
    ),
    metric!(
        "rtmp_hooks_timed_out_total",
        "rtmp_hooks_timed_out_total",
        Counter,
        hooks_timed_out,
        "Hook runs stopped at -hook-timeout."
    ),
    metric!(
        "rtmp_connection_panics_total",
        "rtmp_connection_panics_total",
        Counter,
        connection_panics,
        "Internal errors contained to one connection."
    ),
    metric!(
        "rtmp_input_switches",
        "rtmp_input_switches_total",
        Counter,
        input_switches,
        "Times a -source stream changed the input players get."
    ),
    metric!(
        "rtmp_pull_reconnects",
        "rtmp_pull_reconnects_total",
        Counter,
        pull_reconnects,
        "Connection attempts of -source pulls after their first (each failed, stalled or dropped)."
    ),
];

/// Facts about this server that do not change while it runs.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: &'static str,
    pub rustc: &'static str,
    pub listen: Vec<SocketAddr>,
    pub pid: u32,
    pub started_at: SystemTime,
}

pub struct Snapshot {
    /// One value per entry of [`METRICS`].
    pub values: Vec<u64>,
    /// Streams with a live publisher.
    pub streams_active: u64,
    pub uptime: Duration,
    pub info: ServerInfo,
    pub process: ProcessFigures,
    /// Every stream entry (live, or with players waiting).
    pub streams: Vec<StreamStatus>,
    /// Every running relay.
    pub relays: Vec<RelayStatus>,
    /// The file each stream being recorded is written to, by key.
    pub recordings: Vec<(String, RecordingStatus)>,
    /// Each `-source` stream's inputs and choice, by key.
    pub sources: Vec<(String, SourceView)>,
    /// The connections over TLS (RTMPS).
    pub tls: HashSet<u64>,
}

impl Snapshot {
    /// What feeds stream `key`, if a `-source` does.
    pub fn source(&self, key: &str) -> Option<&SourceView> {
        self.sources.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// What stream `key` is being recorded to, if it is.
    pub fn recording(&self, key: &str) -> Option<RecordingStatus> {
        self.recordings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, r)| r.clone())
    }

    pub fn take(server: &ServerHandle, listen: Vec<SocketAddr>) -> Snapshot {
        let metrics = server.metrics();
        let values = METRICS
            .iter()
            .map(|def| metrics::get((def.read)(metrics)))
            .collect();
        let mut streams: Vec<StreamStatus> = server
            .registry()
            .streams()
            .iter()
            .map(|s| s.status())
            .collect();
        streams.sort_by(|a, b| a.key.cmp(&b.key));
        Snapshot {
            values,
            streams_active: streams.iter().filter(|s| s.input.is_some()).count() as u64,
            uptime: server.uptime(),
            info: ServerInfo {
                version: env!("CARGO_PKG_VERSION"),
                rustc: env!("RTMP_SERVER_RUSTC_VERSION"),
                listen,
                pid: std::process::id(),
                started_at: server.started_at(),
            },
            process: ProcessFigures::read(),
            recordings: streams
                .iter()
                .filter_map(|s| server.recording(&s.key).map(|r| (s.key.clone(), r)))
                .collect(),
            streams,
            relays: server.relays(),
            tls: server.tls_connections(),
            sources: server.sources(),
        }
    }

    /// The value of a figure by its expvar name.
    pub fn value(&self, expvar: &str) -> Option<u64> {
        METRICS
            .iter()
            .position(|def| def.expvar == expvar)
            .and_then(|i| self.values.get(i).copied())
    }

    pub fn live_streams(&self) -> impl Iterator<Item = &StreamStatus> {
        self.streams.iter().filter(|s| s.input.is_some())
    }
}

/// History entries are read separately: they are not part of a snapshot's
/// figures, only listed.
pub fn history(server: &ServerHandle) -> Vec<SessionRecord> {
    server.registry().history().newest_first()
}
