//! What a stream reports about itself: its input, which codecs and formats
//! (from sequence headers and metadata), its byte figures and its players.
//! Snapshot types, and [`Stream::status`] filling them under the stream's
//! lock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::output::OutputStats;
use super::packet::{Packet, PacketKind};
use super::stream::Stream;
use crate::media::codec::{self, Codec};
use crate::media::ex_header::{self, TagKind};
use crate::metrics::StreamCounts;
use crate::protocol::amf0::{self, Value};

/// Window over which bitrates are computed.
pub const BITRATE_WINDOW: Duration = Duration::from_secs(5);
/// How often the bitrate in is kept for the recent history, and how many
/// such readings are kept (five minutes).
pub const BITRATE_HISTORY_INTERVAL: Duration = Duration::from_secs(5);
const BITRATE_HISTORY_LEN: usize = 60;

/// Codec and format of the published video and audio.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaDescription {
    pub video_codec: Option<Codec>,
    pub width: Option<f64>,
    pub height: Option<f64>,
    pub fps: Option<f64>,
    pub profile: Option<u8>,
    pub level: Option<u8>,
    pub audio_codec: Option<Codec>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    /// The tracks of an Enhanced RTMP multitrack stream, as their
    /// sequence headers named them (none for a single-track stream).
    pub tracks: Vec<TrackDescription>,
}

/// One track of a multitrack stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackDescription {
    pub kind: PacketKind,
    pub id: u8,
    pub codec: Codec,
}

/// Tracks described per stream at most.
const MAX_TRACKS: usize = 32;

impl MediaDescription {
    /// Learns from a packet: codecs from any frame, profile, level and
    /// audio format from sequence headers, sizes and rates from metadata.
    pub fn learn(&mut self, packet: &Packet) {
        if packet.sequence_header {
            self.learn_tracks(packet);
        }
        match packet.kind {
            PacketKind::Video => {
                if let Some(codec) = packet.codec {
                    self.video_codec = Some(codec);
                }
                if let Some(pl) = codec::video_profile_level(&packet.payload) {
                    self.profile = Some(pl.profile);
                    self.level = Some(pl.level);
                }
            }
            PacketKind::Audio => {
                if let Some(codec) = packet.codec {
                    self.audio_codec = Some(codec);
                }
                if (packet.sequence_header || self.sample_rate.is_none())
                    && let Some((rate, channels)) = codec::audio_format(&packet.payload)
                {
                    self.sample_rate = Some(rate);
                    self.channels = Some(channels);
                }
            }
            PacketKind::Data if packet.sequence_header => self.learn_metadata(&packet.payload),
            PacketKind::Data => {}
        }
    }

    /// The tracks a multitrack sequence header names.
    fn learn_tracks(&mut self, packet: &Packet) {
        let kind = match packet.kind {
            PacketKind::Video if packet.payload.first().is_some_and(|b| b & 0x80 != 0) => {
                TagKind::Video
            }
            PacketKind::Audio if packet.payload.first().is_some_and(|b| b >> 4 == 9) => {
                TagKind::Audio
            }
            _ => return,
        };
        let Some(header) = ex_header::parse(&packet.payload, kind) else {
            return;
        };
        if header.multitrack.is_none() {
            return;
        }
        for track in header.tracks {
            let described = TrackDescription {
                kind: packet.kind,
                id: track.id,
                codec: Codec::FourCc(track.fourcc),
            };
            let same = |t: &&mut TrackDescription| t.kind == packet.kind && t.id == track.id;
            if let Some(known) = self.tracks.iter_mut().find(same) {
                *known = described;
            } else if self.tracks.len() < MAX_TRACKS {
                self.tracks.push(described);
            }
        }
    }

    /// Names of the video profile and level ("High", "3.1").
    pub fn profile_level_names(&self) -> Option<(&'static str, String)> {
        let pl = codec::ProfileLevel {
            profile: self.profile?,
            level: self.level?,
        };
        codec::profile_level_names(self.video_codec?, pl)
    }

    fn learn_metadata(&mut self, payload: &[u8]) {
        let Ok(values) = amf0::decode_all(payload) else {
            return;
        };
        let Some(meta) = values.get(1) else {
            return;
        };
        let number = |key: &str| {
            meta.get(key)
                .and_then(Value::as_number)
                .filter(|n| n.is_finite() && *n > 0.0)
        };
        self.width = number("width").or(self.width);
        self.height = number("height").or(self.height);
        self.fps = number("framerate")
            .or(number("videoframerate"))
            .or(self.fps);
        if self.sample_rate.is_none() {
            self.sample_rate = number("audiosamplerate").map(|r| r as u32);
        }
        if self.channels.is_none() {
            self.channels = number("audiochannels").map(|c| c as u8).or_else(|| {
                meta.get("stereo")
                    .and_then(Value::as_bool)
                    .map(|s| if s { 2 } else { 1 })
            });
        }
    }
}

/// The input of a stream (its publisher).
#[derive(Debug, Clone)]
pub struct InputStatus {
    pub id: u64,
    pub remote_addr: Option<SocketAddr>,
    pub connected_at: SystemTime,
    pub uptime: Duration,
}

/// Everything `/api/streams` shows about one stream.
#[derive(Debug, Clone)]
pub struct StreamStatus {
    pub key: String,
    pub input: Option<InputStatus>,
    pub media: MediaDescription,
    /// Figures of the current publish session.
    pub counts: StreamCounts,
    pub bitrate_in_kbps: f64,
    pub bitrate_out_kbps: f64,
    /// The bitrate in every [`BITRATE_HISTORY_INTERVAL`] of the last
    /// minutes, oldest first.
    pub bitrate_in_history: Vec<f64>,
    /// Audio and video messages in the GOP cache.
    pub gop_cache_messages: usize,
    /// Video frames among them.
    pub gop_cache_video_frames: usize,
    pub gop_cache_bytes: usize,
    /// Largest lag of any player behind the newest published timestamp.
    pub max_lag_ms: u64,
    pub players: Vec<OutputStatus>,
}

#[derive(Debug, Clone)]
pub struct OutputStatus {
    pub stats: OutputStats,
    pub lag_ms: u64,
}

impl Stream {
    /// Everything the status API shows about this stream.
    pub fn status(&self) -> StreamStatus {
        let state = self.state.lock();
        let counts = self.counters.read();
        let (bitrate_in_kbps, bitrate_out_kbps) = state.samples.kbps();
        let bitrate_in_history = state.samples.history.iter().copied().collect();
        let live = state.input.is_some();
        let players: Vec<OutputStatus> = state
            .players()
            .map(|slot| {
                let stats = slot.stats();
                let lag_ms = if live {
                    state
                        .last_timestamp
                        .wrapping_sub(stats.last_written_timestamp) as i32
                } else {
                    0
                };
                OutputStatus {
                    stats,
                    lag_ms: lag_ms.max(0) as u64,
                }
            })
            .collect();
        StreamStatus {
            key: self.path.clone(),
            input: state.input.as_ref().map(|i| InputStatus {
                id: i.id,
                remote_addr: i.remote_addr,
                connected_at: i.connected_at,
                uptime: i.started.elapsed(),
            }),
            media: state.media.clone(),
            counts: state
                .session
                .as_ref()
                .map_or(StreamCounts::default(), |s| counts.since(&s.baseline)),
            bitrate_in_kbps,
            bitrate_out_kbps,
            bitrate_in_history,
            gop_cache_messages: state.gop.packets().len(),
            gop_cache_video_frames: state.gop.video_frames(),
            gop_cache_bytes: state.gop.bytes(),
            max_lag_ms: players.iter().map(|s| s.lag_ms).max().unwrap_or(0),
            players,
        }
    }
}

/// Recent (time, bytes in, bytes out) readings for bitrates, and the
/// bitrate in of the last minutes.
#[derive(Debug, Default)]
pub struct BitrateSamples {
    samples: VecDeque<(Instant, u64, u64)>,
    history: VecDeque<f64>,
    history_at: Option<Instant>,
}

impl BitrateSamples {
    /// Forgets every reading: a new or ended session starts from zero.
    pub fn clear(&mut self) {
        self.samples.clear();
        self.history.clear();
        self.history_at = None;
    }

    /// Records a reading, keeping just over one window of them, and
    /// every [`BITRATE_HISTORY_INTERVAL`] the bitrate in for the history.
    pub fn record(&mut self, now: Instant, bytes_in: u64, bytes_out: u64) {
        self.samples.push_back((now, bytes_in, bytes_out));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _, _)| now.duration_since(*t) >= BITRATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let due = self
            .history_at
            .is_none_or(|at| now.duration_since(at) >= BITRATE_HISTORY_INTERVAL);
        if due && self.samples.len() > 1 {
            self.history_at = Some(now);
            if self.history.len() == BITRATE_HISTORY_LEN {
                self.history.pop_front();
            }
            self.history.push_back(self.kbps().0);
        }
    }

    /// Kilobits per second in and out between the oldest and newest readings.
    pub fn kbps(&self) -> (f64, f64) {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return (0.0, 0.0);
        };
        let seconds = last.0.duration_since(first.0).as_secs_f64();
        if seconds <= 0.0 {
            return (0.0, 0.0);
        }
        let rate = |a: u64, b: u64| {
            (b.saturating_sub(a) as f64 * 8.0 / 1000.0 / seconds * 10.0).round() / 10.0
        };
        (rate(first.1, last.1), rate(first.2, last.2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn learns_codecs_profile_and_metadata() {
        let mut d = MediaDescription::default();
        d.learn(&Packet::new(
            PacketKind::Video,
            0,
            Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x28]),
        ));
        d.learn(&Packet::new(
            PacketKind::Audio,
            0,
            Bytes::from_static(&[0xaf, 0, 0x12, 0x10]),
        ));
        let meta = amf0::encode_all(&[
            Value::string("onMetaData"),
            Value::EcmaArray(vec![
                ("width".into(), Value::Number(1280.0)),
                ("height".into(), Value::Number(720.0)),
                ("framerate".into(), Value::Number(30.0)),
            ]),
        ]);
        d.learn(&Packet::new(PacketKind::Data, 0, Bytes::from(meta)).into_metadata());
        assert_eq!(d.video_codec, Some(Codec::LegacyVideo(7)));
        assert_eq!((d.profile, d.level), (Some(100), Some(40)));
        assert_eq!(d.profile_level_names(), Some(("High", "4.0".into())));
        assert_eq!((d.sample_rate, d.channels), (Some(44100), Some(2)));
        assert_eq!(
            (d.width, d.height, d.fps),
            (Some(1280.0), Some(720.0), Some(30.0))
        );
    }

    #[test]
    fn bitrate_over_the_window() {
        let mut s = BitrateSamples::default();
        let t0 = Instant::now();
        for i in 0..10u64 {
            s.record(t0 + Duration::from_secs(i), i * 250_000, i * 500_000);
        }
        // 250 kB/s in = 2000 kbps; 500 kB/s out = 4000 kbps.
        assert_eq!(s.kbps(), (2000.0, 4000.0));
        assert!(s.samples.len() <= 7);
        // One history reading each 5 s from the second reading on.
        assert_eq!(s.history, [2000.0, 2000.0]);
        for i in 10..1000u64 {
            s.record(t0 + Duration::from_secs(i), i * 250_000, 0);
        }
        assert_eq!(s.history.len(), BITRATE_HISTORY_LEN, "bounded");
        assert_eq!(BitrateSamples::default().kbps(), (0.0, 0.0));
    }
}
