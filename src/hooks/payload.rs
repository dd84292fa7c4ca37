//! What a hook is told: a lifecycle event as JSON `{type, timestamp,
//! conn_id, stream_key, remote_addr, data}`, as `RTMP_*` environment
//! variables for scripts, and as one `KEY=value` line for
//! `-hook-stdio-format env`. Stream keys are `app/name`, never a query.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};

use crate::hub::FIRST_INTERNAL_ID;
use crate::hub::events::Event;
use crate::media::codec::Codec;

/// The events hooks can be set for, as the command line names them.
pub const HOOK_EVENTS: &[&str] = &[
    "connection_accept",
    "connection_close",
    "publish_start",
    "publish_stop",
    "play_start",
    "play_stop",
    "subscriber_count",
    "auth_failed",
    "codec_detected",
    "relay_state",
    "recording_done",
    "input_switched",
    "stream_exhausted",
    "stream_restored",
];

/// One event, as hooks get it.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub event_type: &'static str,
    pub timestamp: SystemTime,
    pub conn_id: Option<u64>,
    pub stream_key: Option<String>,
    pub remote_addr: Option<SocketAddr>,
    pub data: Map<String, Value>,
}

fn seconds(d: Duration) -> Value {
    json!((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

fn codec(c: Option<Codec>) -> Value {
    c.map_or(Value::Null, |c| Value::String(c.name()))
}

impl Payload {
    /// The payload of `event`; `None` for the events hooks do not get
    /// (internal ones such as inputs attaching).
    pub fn from_event(event: &Event, timestamp: SystemTime) -> Option<Payload> {
        let mut data = Map::new();
        let mut put = |k: &str, v: Value| {
            data.insert(k.to_owned(), v);
        };
        let (conn_id, key, addr) = match event {
            Event::ConnectionAccepted { id, remote_addr } => (Some(*id), None, Some(*remote_addr)),
            Event::ConnectionClosed {
                id,
                remote_addr,
                duration,
            } => {
                put("duration_sec", seconds(*duration));
                (Some(*id), None, Some(*remote_addr))
            }
            Event::PublishStarted {
                key,
                input_id,
                remote_addr,
            } => (Some(*input_id), Some(key), *remote_addr),
            Event::PublishStopped(summary) => {
                let r = &summary.record;
                put("reason", json!(r.reason.as_str()));
                put(
                    "duration_sec",
                    seconds(Duration::from_millis(r.duration_ms)),
                );
                put("bytes_in", json!(r.bytes_in));
                put("bytes_out", json!(r.bytes_out));
                put("peak_subscribers", json!(r.peak_subscribers));
                put("total_subscribers", json!(r.total_subscribers));
                put("dropped_messages", json!(r.dropped_messages));
                put("video_codec", codec(summary.video));
                put("audio_codec", codec(summary.audio));
                (summary.input_id, Some(&r.key), summary.remote_addr)
            }
            Event::PlayStarted {
                key,
                id,
                remote_addr,
            } => (Some(*id), Some(key), *remote_addr),
            Event::PlayStopped {
                key,
                id,
                remote_addr,
                duration,
                bytes_sent,
            } => {
                put("duration_sec", seconds(*duration));
                put("bytes_sent", json!(bytes_sent));
                (Some(*id), Some(key), *remote_addr)
            }
            Event::SubscriberCount { key, count } => {
                put("count", json!(count));
                (None, Some(key), None)
            }
            Event::AuthFailed {
                key,
                id,
                remote_addr,
                action,
                error,
            } => {
                put("action", json!(action));
                put("error", json!(error));
                (Some(*id), Some(key), Some(*remote_addr))
            }
            Event::CodecDetected { key, video, audio } => {
                put("video_codec", codec(*video));
                put("audio_codec", codec(*audio));
                (None, Some(key), None)
            }
            Event::RelayStateChanged {
                key,
                destination,
                state,
            } => {
                put("destination", json!(destination));
                put("state", json!(state));
                (None, Some(key), None)
            }
            Event::RecordingDone {
                key,
                file,
                bytes,
                duration,
                format,
            } => {
                put("file", json!(file));
                put("bytes", json!(bytes));
                put("duration_sec", seconds(*duration));
                put("format", json!(format));
                (None, Some(key), None)
            }
            Event::InputSwitched {
                key,
                from,
                to,
                reason,
            } => {
                put("from_input", json!(from.as_ref().map(|f| f.0)));
                put("from_source", json!(from.as_ref().map(|f| &f.1)));
                put("to_input", json!(to.0));
                put("to_source", json!(to.1));
                put("reason", json!(reason));
                (None, Some(key), None)
            }
            Event::StreamExhausted { key } => (None, Some(key), None),
            Event::StreamRestored { key, input } => {
                put("input", json!(input.0));
                put("source", json!(input.1));
                (None, Some(key), None)
            }
            Event::InputAttached { .. }
            | Event::InputDetached { .. }
            | Event::FirstPlayerJoined { .. }
            | Event::LastPlayerLeft { .. } => return None,
        };
        Some(Payload {
            event_type: event.name(),
            // A clock set before 1970 cannot be written in RFC 3339.
            timestamp: timestamp.max(SystemTime::UNIX_EPOCH),
            // A pull feeding a -source stream is no connection.
            conn_id: conn_id.filter(|id| *id < FIRST_INTERNAL_ID),
            stream_key: key.cloned(),
            remote_addr: addr,
            data,
        })
    }

    /// RFC 3339 in UTC with milliseconds.
    fn timestamp(&self) -> String {
        humantime::format_rfc3339_millis(self.timestamp).to_string()
    }

    pub fn to_json(&self) -> String {
        json!({
            "type": self.event_type,
            "timestamp": self.timestamp(),
            "conn_id": self.conn_id,
            "stream_key": self.stream_key,
            "remote_addr": self.remote_addr.map(|a| a.to_string()),
            "data": self.data,
        })
        .to_string()
    }

    /// The `RTMP_*` variables a script gets: the fixed fields, then each
    /// data field upper-cased (`RTMP_DURATION_SEC`). Absent fields are not
    /// set.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("RTMP_EVENT_TYPE".to_owned(), self.event_type.to_owned()),
            ("RTMP_TIMESTAMP".to_owned(), self.timestamp()),
        ];
        if let Some(id) = self.conn_id {
            vars.push(("RTMP_CONN_ID".into(), id.to_string()));
        }
        if let Some(key) = &self.stream_key {
            vars.push(("RTMP_STREAM_KEY".into(), key.clone()));
        }
        if let Some(addr) = self.remote_addr {
            vars.push(("RTMP_REMOTE_ADDR".into(), addr.to_string()));
        }
        for (name, value) in &self.data {
            let value = match value {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            vars.push((format!("RTMP_{}", name.to_ascii_uppercase()), value));
        }
        vars
    }

    /// One line of `KEY=value` pairs; values a shell would split are
    /// single-quoted, control characters (a stream name may hold any)
    /// shown as `?` so the event stays on one line.
    pub fn env_line(&self) -> String {
        let pairs: Vec<String> = self
            .env_vars()
            .into_iter()
            .map(|(name, value)| format!("{name}={}", shell_quote(&value)))
            .collect();
        pairs.join(" ")
    }
}

fn shell_quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:@+,".contains(c);
    let value: String = value
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if !value.is_empty() && value.chars().all(plain) {
        value
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::events::PublishSummary;
    use crate::hub::history::{EndReason, SessionRecord};

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250)
    }

    fn addr() -> SocketAddr {
        "192.0.2.1:5000".parse().unwrap()
    }

    #[test]
    fn a_payload_has_the_documented_shape() {
        let event = Event::PlayStopped {
            key: "live/cam".into(),
            id: 7,
            remote_addr: Some(addr()),
            duration: Duration::from_millis(1500),
            bytes_sent: 42,
        };
        let payload = Payload::from_event(&event, at()).unwrap();
        let value: Value = serde_json::from_str(&payload.to_json()).unwrap();
        assert_eq!(
            value,
            json!({
                "type": "play_stop",
                "timestamp": "2023-11-14T22:13:20.250Z",
                "conn_id": 7,
                "stream_key": "live/cam",
                "remote_addr": "192.0.2.1:5000",
                "data": {"duration_sec": 1.5, "bytes_sent": 42},
            })
        );
    }

    #[test]
    fn every_hook_event_has_a_payload_and_internal_ones_none() {
        let key = || "live/cam".to_string();
        let record = SessionRecord {
            key: key(),
            opened_at: at(),
            closed_at: at(),
            duration_ms: 2000,
            reason: EndReason::PublisherClosed,
            peak_subscribers: 1,
            total_subscribers: 2,
            bytes_in: 3,
            bytes_out: 4,
            dropped_messages: 0,
            switches: Vec::new(),
            switch_count: 0,
        };
        let events = [
            Event::ConnectionAccepted {
                id: 1,
                remote_addr: addr(),
            },
            Event::ConnectionClosed {
                id: 1,
                remote_addr: addr(),
                duration: Duration::from_secs(3),
            },
            Event::PublishStarted {
                key: key(),
                input_id: 1,
                remote_addr: Some(addr()),
            },
            Event::PublishStopped(Box::new(PublishSummary {
                record,
                input_id: Some(1),
                remote_addr: Some(addr()),
                video: Some(Codec::LegacyVideo(7)),
                audio: None,
            })),
            Event::PlayStarted {
                key: key(),
                id: 2,
                remote_addr: None,
            },
            Event::PlayStopped {
                key: key(),
                id: 2,
                remote_addr: None,
                duration: Duration::ZERO,
                bytes_sent: 0,
            },
            Event::SubscriberCount {
                key: key(),
                count: 3,
            },
            Event::AuthFailed {
                key: key(),
                id: 3,
                remote_addr: addr(),
                action: "publish",
                error: "wrong_token",
            },
            Event::CodecDetected {
                key: key(),
                video: None,
                audio: None,
            },
            Event::RelayStateChanged {
                key: key(),
                destination: "rtmp://x/live".into(),
                state: "publishing",
            },
            Event::RecordingDone {
                key: key(),
                file: "recordings/live_cam_20261123_120000.flv".into(),
                bytes: 1000,
                duration: Duration::from_secs(2),
                format: "flv",
            },
            Event::InputSwitched {
                key: key(),
                from: Some((0, "live/cam.main".into())),
                to: (1, "rtmp://10.0.0.2/live/cam".into()),
                reason: "failover",
            },
            Event::StreamExhausted { key: key() },
            Event::StreamRestored {
                key: key(),
                input: (0, "live/cam.main".into()),
            },
        ];
        let names: Vec<&str> = events
            .iter()
            .map(|e| Payload::from_event(e, at()).unwrap().event_type)
            .collect();
        assert_eq!(names, HOOK_EVENTS);
        let stop = Payload::from_event(&events[3], at()).unwrap();
        assert_eq!(stop.data["video_codec"], json!("H264"));
        assert_eq!(stop.data["reason"], json!("publisher_closed"));
        assert_eq!(stop.conn_id, Some(1));
        let internal = Event::LastPlayerLeft { key: key() };
        assert_eq!(Payload::from_event(&internal, at()), None);
    }

    #[test]
    fn scripts_get_rtmp_variables_and_stdio_one_quoted_line() {
        let event = Event::AuthFailed {
            key: "live/it's\nme".into(),
            id: 9,
            remote_addr: addr(),
            action: "play",
            error: "missing_token",
        };
        let payload = Payload::from_event(&event, at()).unwrap();
        let vars = payload.env_vars();
        assert!(vars.contains(&("RTMP_EVENT_TYPE".into(), "auth_failed".into())));
        assert!(vars.contains(&("RTMP_CONN_ID".into(), "9".into())));
        assert!(vars.contains(&("RTMP_ACTION".into(), "play".into())));
        assert!(vars.contains(&("RTMP_REMOTE_ADDR".into(), "192.0.2.1:5000".into())));
        let line = payload.env_line();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains(r"RTMP_STREAM_KEY='live/it'\''s?me'"),
            "{line}"
        );
        assert!(line.starts_with("RTMP_EVENT_TYPE=auth_failed RTMP_TIMESTAMP="));
    }
}
