//! `/metrics` in the Prometheus text exposition format (version 0.0.4):
//! HELP and TYPE lines, counters ending in `_total`, units in names, and
//! per-stream series labelled `stream="app/name"`, per-relay series also
//! labelled `destination`.

use std::fmt::Write;

use super::snapshot::{Kind, METRICS, Snapshot};
use crate::relay::status::{RelayState, RelayStatus};
use crate::source::health::InputStatus;

fn header(out: &mut String, name: &str, kind: Kind, help: &str) {
    let kind = match kind {
        Kind::Gauge => "gauge",
        Kind::Counter => "counter",
    };
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value: backslash, double quote and newline.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(snapshot: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    for (def, value) in METRICS.iter().zip(&snapshot.values) {
        header(&mut out, def.prometheus, def.kind, def.help);
        let _ = writeln!(out, "{} {value}", def.prometheus);
    }
    let single = [
        (
            "rtmp_streams_active",
            Kind::Gauge,
            "Streams with a live publisher.",
            snapshot.streams_active as f64,
        ),
        (
            "rtmp_uptime_seconds",
            Kind::Gauge,
            "Seconds since the server started.",
            snapshot.uptime.as_secs_f64(),
        ),
        (
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
            snapshot.process.rss_bytes as f64,
        ),
        (
            "process_threads",
            Kind::Gauge,
            "Operating system threads.",
            snapshot.process.threads as f64,
        ),
        (
            "process_cpu_seconds_total",
            Kind::Counter,
            "User and system CPU time in seconds.",
            snapshot.process.cpu_seconds,
        ),
    ];
    for (name, kind, help, value) in single {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    header(
        &mut out,
        "rtmp_server_info",
        Kind::Gauge,
        "Server version and build.",
    );
    let _ = writeln!(
        out,
        "rtmp_server_info{{version=\"{}\",rustc=\"{}\"}} 1",
        label(snapshot.info.version),
        label(snapshot.info.rustc)
    );
    type Series = (
        &'static str,
        Kind,
        &'static str,
        fn(&crate::hub::stream_status::StreamStatus) -> f64,
    );
    let per_stream: [Series; 5] = [
        (
            "rtmp_stream_subscribers",
            Kind::Gauge,
            "Players of the stream.",
            |s| s.players.len() as f64,
        ),
        (
            "rtmp_stream_ingress_kbps",
            Kind::Gauge,
            "Ingress bitrate over the last 5 s, in kbit/s.",
            |s| s.bitrate_in_kbps,
        ),
        (
            "rtmp_stream_egress_kbps",
            Kind::Gauge,
            "Egress bitrate over the last 5 s, in kbit/s.",
            |s| s.bitrate_out_kbps,
        ),
        (
            "rtmp_stream_dropped_messages_total",
            Kind::Counter,
            "Messages not delivered to the stream's players.",
            |s| s.counts.dropped_messages as f64,
        ),
        (
            "rtmp_stream_ingested_bytes_total",
            Kind::Counter,
            "Media payload bytes from the stream's publisher.",
            |s| s.counts.bytes_in as f64,
        ),
    ];
    for (name, kind, help, read) in per_stream {
        header(&mut out, name, kind, help);
        for stream in snapshot.live_streams() {
            let _ = writeln!(
                out,
                "{name}{{stream=\"{}\"}} {}",
                label(&stream.key),
                read(stream)
            );
        }
    }
    relays(&mut out, snapshot);
    inputs(&mut out, snapshot);
    out
}

/// Per `-source` input: 1 for the status it is in, 0 for the others,
/// labelled with its stream, priority and source (no query).
fn inputs(out: &mut String, snapshot: &Snapshot) {
    header(
        out,
        "rtmp_input_status",
        Kind::Gauge,
        "1 for the status each -source input is in (idle, active, standby, degraded).",
    );
    for (key, view) in &snapshot.sources {
        for (priority, input) in view.inputs.iter().enumerate() {
            for status in InputStatus::ALL {
                let _ = writeln!(
                    out,
                    "rtmp_input_status{{stream=\"{}\",input=\"{priority}\",source=\"{}\",status=\"{}\"}} {}",
                    label(key),
                    label(&input.source),
                    status.as_str(),
                    u64::from(input.status == status)
                );
            }
        }
    }
}

/// Per relay, labelled with its stream and its destination as logs show
/// it (no query, the stream name cut short).
fn relays(out: &mut String, snapshot: &Snapshot) {
    type Series = (&'static str, Kind, &'static str, fn(&RelayStatus) -> u64);
    let per_relay: [Series; 5] = [
        (
            "rtmp_relay_up",
            Kind::Gauge,
            "1 while the relay publishes to its destination.",
            |r| u64::from(r.state == RelayState::Publishing),
        ),
        (
            "rtmp_relay_destination_sent_messages_total",
            Kind::Counter,
            "Media messages the relay sent.",
            |r| r.messages_sent,
        ),
        (
            "rtmp_relay_destination_sent_bytes_total",
            Kind::Counter,
            "Media payload bytes the relay sent.",
            |r| r.bytes_sent,
        ),
        (
            "rtmp_relay_destination_dropped_messages_total",
            Kind::Counter,
            "Media messages the relay skipped (its destination fell behind).",
            |r| r.messages_dropped,
        ),
        (
            "rtmp_relay_destination_reconnects_total",
            Kind::Counter,
            "Connection attempts after the relay's first.",
            |r| r.reconnects,
        ),
    ];
    for (name, kind, help, read) in per_relay {
        header(out, name, kind, help);
        for relay in &snapshot.relays {
            let _ = writeln!(
                out,
                "{name}{{stream=\"{}\",destination=\"{}\"}} {}",
                label(&relay.key),
                label(&relay.destination),
                read(relay)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label(r#"live/a"b\c"#), r#"live/a\"b\\c"#);
        assert_eq!(label("a\nb"), "a\\nb");
    }
}
