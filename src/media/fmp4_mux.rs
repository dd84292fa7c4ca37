//! FLV tags into fragmented MP4, sans-IO: the muxer learns each track's
//! configuration from the sequence headers, turns audio and video tags
//! into samples (composition offsets from the AVC/HEVC tag), and cuts a
//! fragment at every video keyframe (every second for audio only). A
//! sample's duration is the distance to the next one of its track, so
//! each track holds its newest sample back until the next comes (or the
//! end). Times are milliseconds in, 90 kHz (video) or the sample rate
//! (audio) out, as 64-bit decode times.

use bytes::Bytes;

use super::codec;
use super::codec_string::codec_string;
use super::fmp4::{self, Fragment, Sample, Track, TrackCodec, TrackRun};

/// Video timescale.
const VIDEO_TIMESCALE: u32 = 90_000;
/// Longest fragment of a stream without keyframes to cut at, in ms.
const AUDIO_FRAGMENT_MS: u64 = 1000;
/// A video fragment is cut without a keyframe past these (a stream with
/// keyframes far apart, or none).
const MAX_FRAGMENT_MS: u64 = 10_000;
const MAX_FRAGMENT_BYTES: usize = 16 * 1024 * 1024;
/// A track being muxed.
#[derive(Debug)]
struct TrackState {
    track: Track,
    /// Samples complete (their duration known) since the last fragment.
    ready: Vec<Sample>,
    /// The decode time of the first of them.
    ready_start: Option<u64>,
    /// The newest sample, waiting for the next to know its duration, with
    /// its decode time.
    pending: Option<(u64, Sample)>,
    last_duration: u32,
    /// Payload bytes waiting for the next fragment.
    ready_bytes: usize,
}

impl TrackState {
    fn new(track: Track, default_duration: u32) -> TrackState {
        TrackState {
            track,
            ready: Vec::new(),
            ready_start: None,
            pending: None,
            last_duration: default_duration,
            ready_bytes: 0,
        }
    }

    /// Completes the pending sample: the next one is at `dts`.
    fn settle(&mut self, dts: u64) {
        if let Some((at, mut previous)) = self.pending.take() {
            let duration = u32::try_from(dts.saturating_sub(at)).unwrap_or(u32::MAX);
            previous.duration = duration;
            self.last_duration = duration.max(1);
            self.ready_start.get_or_insert(at);
            self.ready.push(previous);
        }
    }

    /// Adds a sample at `dts`; the one before it is complete now.
    fn push(&mut self, dts: u64, sample: Sample) {
        // Decode times never go back within a track.
        let dts = self.pending.as_ref().map_or(dts, |(at, _)| dts.max(*at));
        self.settle(dts);
        self.ready_bytes += sample.data.len();
        self.pending = Some((dts, sample));
    }

    /// Completes the pending sample with the last duration (at the end).
    fn complete(&mut self) {
        if let Some((at, mut sample)) = self.pending.take() {
            sample.duration = self.last_duration;
            self.ready_start.get_or_insert(at);
            self.ready.push(sample);
        }
    }
}

/// What the muxer gives back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// `ftyp` and `moov`, once, before any fragment.
    Init(Vec<u8>),
    Fragment(Fragment),
}

/// An FLV-to-fMP4 muxer for one file or one viewer.
#[derive(Debug)]
pub struct Fmp4Muxer {
    expect_video: bool,
    expect_audio: bool,
    width: u16,
    height: u16,
    video: Option<TrackState>,
    audio: Option<TrackState>,
    started: bool,
    sequence: u32,
    /// The ms time the current fragment started (audio-only cuts).
    fragment_start_ms: Option<u64>,
}

/// An AVC or HEVC video tag, legacy or Enhanced RTMP: its configuration
/// (for a sequence header) or its coded frame.
enum VideoTag {
    Config(TrackCodec),
    Frame { cto: i32, data: Bytes },
    Other,
}

fn video_tag(payload: &Bytes) -> VideoTag {
    let Some(&first) = payload.first() else {
        return VideoTag::Other;
    };
    if first & 0x80 != 0 {
        // Enhanced RTMP: packet type in the low bits, then the FourCC.
        let packet_type = first & 0x0f;
        let Some(fourcc) = payload.get(1..5) else {
            return VideoTag::Other;
        };
        let config = match fourcc {
            b"avc1" => TrackCodec::Avc,
            b"hvc1" => TrackCodec::Hevc,
            b"av01" => TrackCodec::Av1,
            b"vp09" => TrackCodec::Vp9,
            _ => return VideoTag::Other,
        };
        // Only AVC and HEVC frames carry a composition offset.
        let with_offset = matches!(fourcc, b"avc1" | b"hvc1");
        return match packet_type {
            0 => VideoTag::Config(config(payload.slice(5..))),
            1 if with_offset && payload.len() >= 8 => VideoTag::Frame {
                cto: signed24(&payload[5..8]),
                data: payload.slice(8..),
            },
            1 if !with_offset => VideoTag::Frame {
                cto: 0,
                data: payload.slice(5..),
            },
            // CodedFramesX: no offset.
            3 => VideoTag::Frame {
                cto: 0,
                data: payload.slice(5..),
            },
            _ => VideoTag::Other,
        };
    }
    let codec = first & 0x0f;
    if (codec != 7 && codec != 12) || payload.len() < 5 {
        return VideoTag::Other;
    }
    let body = payload.slice(5..);
    match payload[1] {
        0 if codec == 7 => VideoTag::Config(TrackCodec::Avc(body)),
        0 => VideoTag::Config(TrackCodec::Hevc(body)),
        1 => VideoTag::Frame {
            cto: signed24(&payload[2..5]),
            data: body,
        },
        _ => VideoTag::Other,
    }
}

/// An audio tag: a configuration or a coded frame.
enum AudioTag {
    Config(TrackCodec),
    Frame(Bytes),
}

fn audio_tag(payload: &Bytes) -> Option<AudioTag> {
    let first = *payload.first()?;
    match first >> 4 {
        // Legacy AAC: a packet type byte.
        10 => match *payload.get(1)? {
            0 => Some(AudioTag::Config(TrackCodec::Aac(payload.slice(2..)))),
            1 => Some(AudioTag::Frame(payload.slice(2..))),
            _ => None,
        },
        // Enhanced RTMP: packet type in the low bits, then the FourCC.
        9 => {
            let fourcc = payload.get(1..5)?;
            let body = payload.slice(5..);
            match (first & 0x0f, fourcc) {
                (0, b"mp4a") => Some(AudioTag::Config(TrackCodec::Aac(body))),
                (0, b"Opus") => Some(AudioTag::Config(TrackCodec::Opus(body))),
                (1, b"mp4a" | b"Opus") => Some(AudioTag::Frame(body)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The audio track for `codec`, with its rate and channels.
fn audio_track(codec: TrackCodec) -> TrackState {
    let (rate, channels, frame) = match &codec {
        TrackCodec::Aac(config) => {
            let (rate, channels) = codec::aac_config(config).unwrap_or((44_100, 2));
            (rate, u16::from(channels), 1024)
        }
        // Opus is timed at 48 kHz whatever it was made from.
        TrackCodec::Opus(head) => (48_000, u16::from(head.get(9).copied().unwrap_or(2)), 960),
        _ => (44_100, 2, 1024),
    };
    let track = Track {
        id: 2,
        codec,
        timescale: rate,
        width: 0,
        height: 0,
        channels,
        sample_rate: rate,
    };
    TrackState::new(track, frame)
}

fn signed24(b: &[u8]) -> i32 {
    let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    ((v << 8) as i32) >> 8
}

/// Whether a video sequence header configures a track the muxer carries.
pub fn carries_video(header: &Bytes) -> bool {
    matches!(video_tag(header), VideoTag::Config(_))
}

/// Whether an audio sequence header configures a track the muxer carries.
pub fn carries_audio(header: &Bytes) -> bool {
    matches!(audio_tag(header), Some(AudioTag::Config(_)))
}

impl Fmp4Muxer {
    /// A muxer for a stream with video and/or audio; `width` and
    /// `height` (from metadata) go in the track header.
    pub fn new(expect_video: bool, expect_audio: bool, width: u16, height: u16) -> Fmp4Muxer {
        Fmp4Muxer {
            expect_video,
            expect_audio,
            width,
            height,
            video: None,
            audio: None,
            started: false,
            sequence: 0,
            fragment_start_ms: None,
        }
    }

    /// Whether every expected track's configuration is known.
    fn configured(&self) -> bool {
        (!self.expect_video || self.video.is_some()) && (!self.expect_audio || self.audio.is_some())
    }

    /// Takes one FLV tag (`timestamp` in ms from the start); returns what
    /// is ready to be written.
    pub fn push_video(&mut self, timestamp: u64, keyframe: bool, payload: &Bytes) -> Vec<Output> {
        let mut out = Vec::new();
        match video_tag(payload) {
            VideoTag::Config(codec) => {
                // Tracks are fixed by the init segment: one configured
                // after it is not in the file.
                if self.video.is_none() && !self.started {
                    let track = Track {
                        id: 1,
                        codec,
                        timescale: VIDEO_TIMESCALE,
                        width: self.width,
                        height: self.height,
                        channels: 0,
                        sample_rate: 0,
                    };
                    self.video = Some(TrackState::new(track, VIDEO_TIMESCALE / 30));
                }
            }
            VideoTag::Frame { cto, data } => {
                if !self.configured() || (!self.started && !keyframe) {
                    return out;
                }
                // A keyframe starts a fragment; so does a fragment grown
                // too big or long without one (memory stays bounded).
                let overgrown = self
                    .video
                    .as_ref()
                    .is_some_and(|v| v.ready_bytes > MAX_FRAGMENT_BYTES)
                    || self
                        .fragment_start_ms
                        .is_some_and(|start| timestamp.saturating_sub(start) >= MAX_FRAGMENT_MS);
                if keyframe || overgrown {
                    // The frame before it ends the fragment.
                    if let Some(video) = &mut self.video {
                        video.settle(timestamp * 90);
                    }
                    self.cut(&mut out);
                }
                self.start(&mut out, timestamp);
                if let Some(video) = &mut self.video {
                    let sample = Sample {
                        duration: 0,
                        cto: cto.saturating_mul(90),
                        keyframe,
                        data,
                    };
                    video.push(timestamp * 90, sample);
                }
            }
            VideoTag::Other => {}
        }
        out
    }

    /// Takes one FLV audio tag (AAC, legacy or Enhanced RTMP; Opus).
    pub fn push_audio(&mut self, timestamp: u64, payload: &Bytes) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(tag) = audio_tag(payload) else {
            return out;
        };
        let data = match tag {
            AudioTag::Config(codec) => {
                if self.audio.is_none() && !self.started {
                    self.audio = Some(audio_track(codec));
                }
                return out;
            }
            AudioTag::Frame(data) => data,
        };
        if !self.configured() || (!self.started && self.expect_video) {
            return out;
        }
        if !self.expect_video
            && self
                .fragment_start_ms
                .is_some_and(|start| timestamp.saturating_sub(start) >= AUDIO_FRAGMENT_MS)
        {
            self.cut(&mut out);
        }
        self.start(&mut out, timestamp);
        if let Some(audio) = &mut self.audio {
            let rate = u64::from(audio.track.timescale);
            let sample = Sample {
                duration: 0,
                cto: 0,
                keyframe: true,
                data,
            };
            audio.push((timestamp * rate + 500) / 1000, sample);
        }
        out
    }

    /// Gives the init segment before the first sample.
    fn start(&mut self, out: &mut Vec<Output>, timestamp: u64) {
        if !self.started {
            self.started = true;
            let tracks: Vec<Track> = [&self.video, &self.audio]
                .into_iter()
                .flatten()
                .map(|t| t.track.clone())
                .collect();
            out.push(Output::Init(fmp4::init_segment(&tracks)));
        }
        self.fragment_start_ms.get_or_insert(timestamp);
    }

    /// Ends the current fragment, if it has samples.
    fn cut(&mut self, out: &mut Vec<Output>) {
        let runs: Vec<TrackRun<'_>> = [&self.video, &self.audio]
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some(TrackRun {
                    track_id: t.track.id,
                    base_decode_time: t.ready_start?,
                    samples: &t.ready,
                })
            })
            .filter(|r| !r.samples.is_empty())
            .collect();
        if runs.is_empty() {
            return;
        }
        self.sequence += 1;
        out.push(Output::Fragment(fmp4::fragment(self.sequence, &runs)));
        for track in [&mut self.video, &mut self.audio].into_iter().flatten() {
            track.ready.clear();
            track.ready_start = None;
            track.ready_bytes = track.pending.as_ref().map_or(0, |(_, s)| s.data.len());
        }
        self.fragment_start_ms = None;
    }

    /// Cuts a fragment of the samples complete now, for a live viewer
    /// that should not wait for the next keyframe (the next fragment then
    /// starts without one, which a decoder already playing takes).
    pub fn flush(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.started {
            self.cut(&mut out);
        }
        out
    }

    /// The RFC 6381 codecs of the configured tracks, video first.
    pub fn codecs(&self) -> Vec<String> {
        [&self.video, &self.audio]
            .into_iter()
            .flatten()
            .filter_map(|t| codec_string(&t.track.codec))
            .collect()
    }

    /// Ends the stream: the last fragment, with every sample.
    pub fn finish(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        for track in [&mut self.video, &mut self.audio].into_iter().flatten() {
            track.complete();
        }
        self.cut(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avc_header() -> Bytes {
        Bytes::from_static(b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f\xff\xe1\x00\x00")
    }

    fn frame(key: bool, len: usize) -> Bytes {
        let mut v = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        v.resize(5 + len, 0xab);
        Bytes::from(v)
    }

    fn fragments(out: &[Output]) -> usize {
        out.iter()
            .filter(|o| matches!(o, Output::Fragment(_)))
            .count()
    }

    #[test]
    fn tracks_are_fixed_by_the_init_segment() {
        let mut muxer = Fmp4Muxer::new(true, false, 0, 0);
        assert!(muxer.push_video(0, false, &avc_header()).is_empty());
        let out = muxer.push_video(0, true, &frame(true, 10));
        assert!(matches!(out[0], Output::Init(_)));
        // An audio configuration after the start is not in the file.
        assert!(
            muxer
                .push_audio(20, &Bytes::from_static(b"\xaf\x00\x12\x10"))
                .is_empty()
        );
        assert!(muxer.audio.is_none());
        assert!(
            muxer
                .push_audio(40, &Bytes::from_static(b"\xaf\x01data"))
                .is_empty()
        );
    }

    #[test]
    fn a_stream_without_keyframes_is_cut_all_the_same() {
        let mut muxer = Fmp4Muxer::new(true, false, 0, 0);
        muxer.push_video(0, false, &avc_header());
        let mut cut = fragments(&muxer.push_video(0, true, &frame(true, 10)));
        for n in 1..400u64 {
            cut += fragments(&muxer.push_video(n * 40, false, &frame(false, 10)));
        }
        // 16 s of frames without a keyframe: cut at 10 s.
        assert_eq!(cut, 1);
        let mut muxer = Fmp4Muxer::new(true, false, 0, 0);
        muxer.push_video(0, false, &avc_header());
        muxer.push_video(0, true, &frame(true, 10));
        let big = 1 << 20;
        let mut cut = 0;
        for n in 1..40u64 {
            cut += fragments(&muxer.push_video(n * 40, false, &frame(false, big)));
        }
        assert!(cut >= 2, "cut by size: {cut}");
    }

    #[test]
    fn a_flush_cuts_what_is_complete_without_waiting_for_a_keyframe() {
        let mut muxer = Fmp4Muxer::new(true, false, 0, 0);
        assert!(muxer.flush().is_empty(), "nothing before the start");
        muxer.push_video(0, false, &avc_header());
        assert_eq!(muxer.codecs(), ["avc1.64001f"]);
        muxer.push_video(0, true, &frame(true, 10));
        muxer.push_video(40, false, &frame(false, 10));
        // The keyframe is complete; the newest frame waits for the next.
        let out = muxer.flush();
        assert_eq!(fragments(&out), 1);
        assert!(muxer.flush().is_empty(), "nothing new is complete");
        muxer.push_video(80, false, &frame(false, 10));
        assert_eq!(fragments(&muxer.flush()), 1);
    }

    #[test]
    fn decode_times_never_go_back() {
        let mut track = TrackState::new(
            Track {
                id: 1,
                codec: TrackCodec::Avc(Bytes::new()),
                timescale: 1000,
                width: 0,
                height: 0,
                channels: 0,
                sample_rate: 0,
            },
            33,
        );
        let sample = || Sample {
            duration: 0,
            cto: 0,
            keyframe: false,
            data: Bytes::from_static(b"x"),
        };
        track.push(1000, sample());
        track.push(900, sample());
        track.push(1040, sample());
        track.complete();
        let durations: Vec<u32> = track.ready.iter().map(|s| s.duration).collect();
        assert_eq!(durations, [0, 40, 40], "the last as long as the one before");
        assert_eq!(track.ready_start, Some(1000));
    }
}
