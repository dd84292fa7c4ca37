//! JSON documents: the Go-expvar-compatible `/debug/vars` object and the
//! `/api/...` documents, all rendered from a [`Snapshot`]. Times are
//! RFC 3339 UTC, durations `_ms`, bitrates kbps. Nothing secret appears:
//! no command line, no tokens, no query strings (stream keys never carry
//! them).

use std::collections::HashSet;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::snapshot::{METRICS, Snapshot};
use crate::hub::history::SessionRecord;
use crate::hub::packet::PacketKind;
use crate::hub::stream_status::{BITRATE_HISTORY_INTERVAL, StreamStatus};
use crate::media::codec::Codec;
use crate::record::RecordingStatus;
use crate::record::catalog::Recorded;
use crate::relay::status::RelayStatus;
use crate::source::board::SourceView;

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

fn codec(codec: Option<Codec>) -> Value {
    match codec {
        Some(c) => json!({
            "name": c.name(),
            "fourcc": c.fourcc().map(|cc| String::from_utf8_lossy(&cc).into_owned()),
        }),
        None => Value::Null,
    }
}

fn process(snapshot: &Snapshot) -> Value {
    json!({
        "rss_bytes": snapshot.process.rss_bytes,
        "threads": snapshot.process.threads,
        "cpu_seconds": snapshot.process.cpu_seconds,
    })
}

fn server_info(snapshot: &Snapshot) -> Value {
    let info = &snapshot.info;
    json!({
        "version": info.version,
        "rustc": info.rustc,
        "listen": info.listen.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "pid": info.pid,
        "started_at": rfc3339(info.started_at),
    })
}

/// `/debug/vars`: every figure under its expvar name.
pub fn expvar(snapshot: &Snapshot) -> Value {
    let mut vars = serde_json::Map::new();
    for (def, value) in METRICS.iter().zip(&snapshot.values) {
        vars.insert(def.expvar.into(), json!(value));
    }
    vars.insert("rtmp_streams_active".into(), json!(snapshot.streams_active));
    vars.insert(
        "rtmp_uptime_seconds".into(),
        json!(snapshot.uptime.as_secs_f64()),
    );
    vars.insert("rtmp_server_info".into(), server_info(snapshot));
    let streams: Vec<Value> = snapshot
        .live_streams()
        .map(|s| {
            json!({
                "key": s.key,
                "subscribers": s.players.len(),
                "codecs": {
                    "video": s.media.video_codec.map(|c| c.name()),
                    "audio": s.media.audio_codec.map(|c| c.name()),
                },
                "uptime_seconds": s.input.as_ref().map_or(0.0, |p| p.uptime.as_secs_f64()),
                "recording": snapshot.recording(&s.key).is_some(),
            })
        })
        .collect();
    vars.insert("rtmp_streams".into(), Value::Array(streams));
    let relays: Vec<Value> = snapshot.relays.iter().map(relay).collect();
    vars.insert("rtmp_relay_destinations".into(), Value::Array(relays));
    vars.insert("process".into(), process(snapshot));
    Value::Object(vars)
}

/// One stream as `/api/streams` shows it.
pub fn stream(
    s: &StreamStatus,
    relays: &[RelayStatus],
    recording: Option<RecordingStatus>,
    source: Option<&SourceView>,
    tls: &HashSet<u64>,
) -> Value {
    let media = &s.media;
    let relays: Vec<Value> = relays
        .iter()
        .filter(|r| r.key == s.key)
        .map(relay)
        .collect();
    let mut value = json!({
        "key": s.key,
        "publisher": s.input.as_ref().map(|p| json!({
            "id": p.id,
            "tls": tls.contains(&p.id),
            "remote_addr": p.remote_addr.map(|a| a.to_string()),
            "connected_at": rfc3339(p.connected_at),
            "uptime_ms": p.uptime.as_millis() as u64,
        })),
        "video": media.video_codec.map(|c| json!({
            "codec": codec(Some(c)),
            "width": media.width,
            "height": media.height,
            "fps": media.fps,
            "profile": media.profile,
            "level": media.level,
            "profile_name": media.profile_level_names().map(|(p, _)| p),
            "level_name": media.profile_level_names().map(|(_, l)| l),
        })),
        "audio": media.audio_codec.map(|c| json!({
            "codec": codec(Some(c)),
            "sample_rate": media.sample_rate,
            "channels": media.channels,
        })),
        "tracks": media.tracks.iter().map(|t| json!({
            "kind": match t.kind {
                PacketKind::Video => "video",
                PacketKind::Audio => "audio",
                PacketKind::Data => "data",
            },
            "id": t.id,
            "codec": codec(Some(t.codec)),
        })).collect::<Vec<_>>(),
        "bitrate_in_kbps": s.bitrate_in_kbps,
        "bitrate_out_kbps": s.bitrate_out_kbps,
        "bitrate_in_history": {
            "interval_s": BITRATE_HISTORY_INTERVAL.as_secs(),
            "kbps": s.bitrate_in_history,
        },
        "bytes_in": s.counts.bytes_in,
        "bytes_out": s.counts.bytes_out,
        "gop_cache": {
            "frames": s.gop_cache_video_frames,
            "messages": s.gop_cache_messages,
            "bytes": s.gop_cache_bytes,
        },
        "slow_subscribers": {
            "skip_events": s.counts.skip_events,
            "dropped_messages": s.counts.dropped_messages,
            "dropped_bytes": s.counts.dropped_bytes,
            "max_lag_ms": s.max_lag_ms,
        },
        "subscribers": s.players.iter().map(|sub| json!({
            "id": sub.stats.id,
            "protocol": sub.stats.kind.protocol(),
            "tls": tls.contains(&sub.stats.id),
            "remote_addr": sub.stats.remote_addr.map(|a| a.to_string()),
            "connected_at": rfc3339(sub.stats.connected_at),
            "bytes_sent": sub.stats.bytes_sent,
            "queue_depth": sub.stats.queue_depth,
            "dropped_messages": sub.stats.dropped_messages,
            "skip_events": sub.stats.skip_events,
            "lag_ms": sub.lag_ms,
        })).collect::<Vec<_>>(),
        "relays": relays,
        "recording": recording.map(|r| json!({
            "file": r.file,
            "bytes": r.bytes,
            "duration_ms": r.duration.as_millis() as u64,
        })),
    });
    if let (Some(view), Value::Object(map)) = (source, &mut value) {
        add_source(map, view);
    }
    value
}

/// A `-source` stream's inputs and choice, added to its stream's object.
fn add_source(map: &mut serde_json::Map<String, Value>, view: &SourceView) {
    let inputs: Vec<Value> = view
        .inputs
        .iter()
        .enumerate()
        .map(|(priority, i)| {
            json!({
                "priority": priority,
                "source": i.source,
                "pull": i.pull,
                "status": i.status.as_str(),
                "last_packet_at": i.last_packet_at.map(rfc3339),
                "bitrate_kbps": i.bitrate_kbps,
                "last_error": i.last_error.as_ref().map(|e| &e.0),
                "last_error_at": i.last_error.as_ref().map(|e| rfc3339(e.1)),
                "reconnects": i.reconnects,
            })
        })
        .collect();
    map.insert("inputs".into(), Value::Array(inputs));
    map.insert("active_input".into(), json!(view.active));
    map.insert("override_input".into(), json!(view.forced));
    map.insert("exhausted".into(), json!(view.exhausted));
    map.insert("switch_count".into(), json!(view.switch_count));
}

/// One finished recording: its path under the record directory, stream,
/// start, duration, size and format.
pub fn recording(r: &(String, Recorded)) -> Value {
    let (name, r) = r;
    json!({
        "name": name,
        "stream": r.stream,
        "start": r.started_at,
        "duration_ms": (r.duration * 1000.0).round() as u64,
        "bytes": r.bytes,
        "format": r.format,
    })
}

/// One relay: where to (no query, the name cut short), its state and
/// figures.
fn relay(r: &RelayStatus) -> Value {
    json!({
        "key": r.key,
        "destination": r.destination,
        "state": r.state.as_str(),
        "messages_sent": r.messages_sent,
        "bytes_sent": r.bytes_sent,
        "messages_dropped": r.messages_dropped,
        "reconnects": r.reconnects,
        "last_error": r.last_error,
        "last_error_at": r.last_error_at.map(rfc3339),
    })
}

/// A page of items: all of them unless `page` is given (1-based).
pub fn paged(items: Vec<Value>, page: Option<usize>, per_page: usize, name: &str) -> Value {
    let total = items.len();
    let mut document = serde_json::Map::new();
    let items = match page {
        Some(page) => {
            document.insert("page".into(), json!(page));
            document.insert("per_page".into(), json!(per_page));
            items
                .into_iter()
                .skip(page.saturating_sub(1).saturating_mul(per_page))
                .take(per_page)
                .collect()
        }
        None => items,
    };
    document.insert("total".into(), json!(total));
    document.insert(name.into(), Value::Array(items));
    Value::Object(document)
}

pub fn history_entry(r: &SessionRecord) -> Value {
    json!({
        "key": r.key,
        "opened_at": rfc3339(r.opened_at),
        "closed_at": rfc3339(r.closed_at),
        "duration_ms": r.duration_ms,
        "reason": r.reason.as_str(),
        "peak_subscribers": r.peak_subscribers,
        "total_subscribers": r.total_subscribers,
        "bytes_in": r.bytes_in,
        "bytes_out": r.bytes_out,
        "dropped_messages": r.dropped_messages,
        "switch_count": r.switch_count,
        "switches": r.switches.iter().map(|w| json!({
            "from": w.from,
            "to": w.to,
            "reason": w.reason,
            "at": rfc3339(w.at),
        })).collect::<Vec<_>>(),
    })
}

/// `/api/server`.
pub fn server(snapshot: &Snapshot) -> Value {
    let value = |name: &str| snapshot.value(name).unwrap_or(0);
    let mut info = server_info(snapshot);
    if let Value::Object(map) = &mut info {
        map.insert(
            "uptime_ms".into(),
            json!(snapshot.uptime.as_millis() as u64),
        );
        map.insert(
            "connections".into(),
            json!({
                "active": value("rtmp_connections_active"),
                "total": value("rtmp_connections_total"),
                "publishers": value("rtmp_publishers_active"),
                "subscribers": value("rtmp_subscribers_active"),
                "streams": snapshot.streams_active,
            }),
        );
        map.insert("process".into(), process(snapshot));
    }
    info
}

pub fn error(message: &str) -> Value {
    json!({ "error": message })
}
