//! Reads the first bytes of audio and video message payloads (FLV tag
//! bodies) to tell keyframes, sequence headers and codecs apart, for legacy
//! FLV codec ids and for Enhanced RTMP (v1/v2) FourCC headers.
//! Payloads are never modified; unknown codecs are simply reported as such.

use super::ex_header::{self, ExHeader, Multitrack, TagKind};

/// A codec as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Legacy FLV video codec id (7 = AVC, 12 = HEVC by convention).
    LegacyVideo(u8),
    /// Legacy FLV sound format (10 = AAC, 2 = MP3).
    LegacyAudio(u8),
    /// Enhanced RTMP FourCC such as `hvc1`, `av01`, `vp09`, `Opus`.
    FourCc([u8; 4]),
}

/// FourCCs and names of the codecs this server can tell apart.
const KNOWN_FOURCCS: &[(&[u8; 4], &str)] = &[
    (b"avc1", "H264"),
    (b"hvc1", "H265"),
    (b"av01", "AV1"),
    (b"vp09", "VP9"),
    (b"vp08", "VP8"),
    (b"vvc1", "H266"),
    (b"mp4a", "AAC"),
    (b"Opus", "Opus"),
    (b"fLaC", "FLAC"),
    (b"ac-3", "AC3"),
    (b"ec-3", "EAC3"),
    (b".mp3", "MP3"),
];

impl Codec {
    /// The Enhanced RTMP FourCC of this codec, when it has one.
    pub fn fourcc(&self) -> Option<[u8; 4]> {
        match *self {
            Codec::FourCc(cc) => Some(cc),
            Codec::LegacyVideo(VIDEO_CODEC_AVC) => Some(*b"avc1"),
            Codec::LegacyVideo(VIDEO_CODEC_HEVC) => Some(*b"hvc1"),
            Codec::LegacyVideo(VIDEO_CODEC_AV1_LEGACY) => Some(*b"av01"),
            Codec::LegacyAudio(AUDIO_FORMAT_AAC) => Some(*b"mp4a"),
            Codec::LegacyAudio(2) | Codec::LegacyAudio(14) => Some(*b".mp3"),
            _ => None,
        }
    }

    /// A short human-readable name.
    pub fn name(&self) -> String {
        let legacy = match *self {
            Codec::LegacyVideo(2) => Some("H263"),
            Codec::LegacyVideo(3) => Some("ScreenVideo"),
            Codec::LegacyVideo(4) | Codec::LegacyVideo(5) => Some("VP6"),
            Codec::LegacyAudio(0) | Codec::LegacyAudio(3) => Some("PCM"),
            Codec::LegacyAudio(1) => Some("ADPCM"),
            Codec::LegacyAudio(4..=6) => Some("Nellymoser"),
            Codec::LegacyAudio(7) => Some("G711A"),
            Codec::LegacyAudio(8) => Some("G711U"),
            Codec::LegacyAudio(11) => Some("Speex"),
            _ => None,
        };
        if let Some(name) = legacy {
            return name.into();
        }
        match self.fourcc() {
            Some(cc) => KNOWN_FOURCCS
                .iter()
                .find(|(known, _)| **known == cc)
                .map_or_else(
                    || String::from_utf8_lossy(&cc).into_owned(),
                    |(_, name)| (*name).into(),
                ),
            None => match self {
                Codec::LegacyAudio(id) => format!("audio-{id}"),
                Codec::LegacyVideo(id) | Codec::FourCc([id, ..]) => format!("video-{id}"),
            },
        }
    }
}

/// What a video payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoInfo {
    pub codec: Codec,
    /// A frame a decoder can start from (and not a sequence header).
    pub keyframe: bool,
    /// Decoder configuration (AVC/HEVC/AV1/VP9 sequence start).
    pub sequence_header: bool,
    /// The track of a one-track Enhanced RTMP multitrack message.
    pub track: Option<u8>,
}

/// What an audio payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioInfo {
    pub codec: Codec,
    /// Decoder configuration (AAC AudioSpecificConfig, enhanced
    /// sequence start).
    pub sequence_header: bool,
    /// The track of a one-track Enhanced RTMP multitrack message.
    pub track: Option<u8>,
}

const FRAME_TYPE_KEY: u8 = 1;
const VIDEO_CODEC_AVC: u8 = 7;
const VIDEO_CODEC_HEVC: u8 = 12;
const VIDEO_CODEC_AV1_LEGACY: u8 = 13;
const AUDIO_FORMAT_AAC: u8 = 10;
const AUDIO_FORMAT_EX_HEADER: u8 = 9;
const PACKET_TYPE_SEQUENCE_START: u8 = 0;
const PACKET_TYPE_MPEG2TS_SEQUENCE_START: u8 = 5;

/// Inspects a video payload; `None` if it is empty.
pub fn inspect_video(payload: &[u8]) -> Option<VideoInfo> {
    let &first = payload.first()?;
    if first & 0x80 != 0 {
        // Enhanced RTMP: [1 bit ex-header][3 bits frame type][4 bits
        // packet type], ModEx and multitrack headers, FourCCs.
        let frame_type = (first >> 4) & 0x07;
        let header = ex_header::parse(payload, TagKind::Video);
        let codec = first_codec(header.as_ref()).unwrap_or(Codec::LegacyVideo(0));
        let sequence_header = header.as_ref().is_some_and(|h| {
            matches!(
                h.packet_type,
                PACKET_TYPE_SEQUENCE_START | PACKET_TYPE_MPEG2TS_SEQUENCE_START
            )
        });
        return Some(VideoInfo {
            codec,
            keyframe: frame_type == FRAME_TYPE_KEY && !sequence_header,
            sequence_header,
            track: one_track(header.as_ref()),
        });
    }
    let frame_type = first >> 4;
    let codec_id = first & 0x0f;
    let sequence_header = matches!(
        codec_id,
        VIDEO_CODEC_AVC | VIDEO_CODEC_HEVC | VIDEO_CODEC_AV1_LEGACY
    ) && payload.get(1) == Some(&0);
    Some(VideoInfo {
        codec: Codec::LegacyVideo(codec_id),
        keyframe: frame_type == FRAME_TYPE_KEY && !sequence_header,
        sequence_header,
        track: None,
    })
}

/// The codec of the first track an Enhanced RTMP header names.
fn first_codec(header: Option<&ExHeader>) -> Option<Codec> {
    Some(Codec::FourCc(header?.tracks.first()?.fourcc))
}

/// The track of a one-track multitrack message.
fn one_track(header: Option<&ExHeader>) -> Option<u8> {
    let header = header?;
    match header.multitrack {
        Some(Multitrack::OneTrack) => header.tracks.first().map(|t| t.id),
        _ => None,
    }
}

/// Inspects an audio payload; `None` if it is empty.
pub fn inspect_audio(payload: &[u8]) -> Option<AudioInfo> {
    let &first = payload.first()?;
    let format = first >> 4;
    if format == AUDIO_FORMAT_EX_HEADER {
        let header = ex_header::parse(payload, TagKind::Audio);
        return Some(AudioInfo {
            codec: first_codec(header.as_ref()).unwrap_or(Codec::LegacyAudio(format)),
            sequence_header: header
                .as_ref()
                .is_some_and(|h| h.packet_type == PACKET_TYPE_SEQUENCE_START),
            track: one_track(header.as_ref()),
        });
    }
    Some(AudioInfo {
        codec: Codec::LegacyAudio(format),
        sequence_header: format == AUDIO_FORMAT_AAC && payload.get(1) == Some(&0),
        track: None,
    })
}

/// Profile and level read from a video sequence header, where the codec's
/// configuration record says them (AVC and HEVC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileLevel {
    pub profile: u8,
    pub level: u8,
}

/// Reads profile and level from an AVC or HEVC sequence header payload
/// (legacy or Enhanced RTMP framing).
pub fn video_profile_level(payload: &[u8]) -> Option<ProfileLevel> {
    let info = inspect_video(payload)?;
    if !info.sequence_header {
        return None;
    }
    // Legacy framing puts the configuration record at byte 5, after
    // frame/codec, packet type and composition time; enhanced, after its
    // header (ModEx, multitrack, FourCC: byte 5 when plain).
    let at = if payload.first()? & 0x80 != 0 {
        ex_header::parse(payload, TagKind::Video)?.body_at
    } else {
        5
    };
    let record = payload.get(at..)?;
    match info.codec {
        Codec::LegacyVideo(VIDEO_CODEC_AVC) | Codec::FourCc(AVC1) => Some(ProfileLevel {
            profile: *record.get(1)?,
            level: *record.get(3)?,
        }),
        Codec::LegacyVideo(VIDEO_CODEC_HEVC) | Codec::FourCc(HVC1) => Some(ProfileLevel {
            profile: *record.get(1)? & 0x1f,
            level: *record.get(12)?,
        }),
        _ => None,
    }
}

/// The names of a video profile and level, as encoders and players show
/// them: H.264 profile 100 level 31 is "High" "3.1", HEVC profile 1 level
/// 123 is "Main" "4.1". `None` for codecs without such numbers.
pub fn profile_level_names(codec: Codec, pl: ProfileLevel) -> Option<(&'static str, String)> {
    match codec {
        Codec::LegacyVideo(VIDEO_CODEC_AVC) | Codec::FourCc(AVC1) => {
            let profile = match pl.profile {
                66 => "Baseline",
                77 => "Main",
                88 => "Extended",
                100 => "High",
                110 => "High 10",
                122 => "High 4:2:2",
                244 => "High 4:4:4 Predictive",
                44 => "CAVLC 4:4:4 Intra",
                118 => "Multiview High",
                128 => "Stereo High",
                _ => "unknown",
            };
            let level = match pl.level {
                9 => "1b".to_owned(),
                idc => format!("{}.{}", idc / 10, idc % 10),
            };
            Some((profile, level))
        }
        Codec::LegacyVideo(VIDEO_CODEC_HEVC) | Codec::FourCc(HVC1) => {
            let profile = match pl.profile {
                1 => "Main",
                2 => "Main 10",
                3 => "Main Still Picture",
                4 => "Range Extensions",
                5 => "High Throughput",
                9 => "Screen Content",
                _ => "unknown",
            };
            // general_level_idc is 30 times the level.
            let level = format!("{}.{}", pl.level / 30, pl.level % 30 / 3);
            Some((profile, level))
        }
        _ => None,
    }
}

const AVC1: [u8; 4] = *b"avc1";
const HVC1: [u8; 4] = *b"hvc1";
const AAC_SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Sample rate and channel count an AAC AudioSpecificConfig states.
pub fn aac_config(config: &[u8]) -> Option<(u32, u8)> {
    let (b0, b1) = (*config.first()?, *config.get(1)?);
    let index = usize::from((b0 & 0x07) << 1 | b1 >> 7);
    Some((*AAC_SAMPLE_RATES.get(index)?, (b1 >> 3) & 0x0f))
}

/// Sample rate and channel count from an AAC sequence header
/// (AudioSpecificConfig), or from the legacy sound-format byte otherwise.
pub fn audio_format(payload: &[u8]) -> Option<(u32, u8)> {
    let &first = payload.first()?;
    if first >> 4 == AUDIO_FORMAT_AAC && payload.get(1) == Some(&0) {
        return aac_config(payload.get(2..)?);
    }
    if first >> 4 == AUDIO_FORMAT_EX_HEADER {
        return None;
    }
    let rate = [5512, 11025, 22050, 44100][((first >> 2) & 0x03) as usize];
    Some((rate, if first & 0x01 == 1 { 2 } else { 1 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_and_level_names() {
        let names = |codec, profile, level| {
            profile_level_names(codec, ProfileLevel { profile, level })
                .map(|(p, l)| (p.to_owned(), l))
        };
        let avc = Codec::LegacyVideo(7);
        assert_eq!(names(avc, 100, 31), Some(("High".into(), "3.1".into())));
        assert_eq!(names(avc, 66, 30), Some(("Baseline".into(), "3.0".into())));
        assert_eq!(names(avc, 77, 9), Some(("Main".into(), "1b".into())));
        let hevc = Codec::FourCc(*b"hvc1");
        assert_eq!(names(hevc, 1, 123), Some(("Main".into(), "4.1".into())));
        assert_eq!(names(hevc, 2, 150), Some(("Main 10".into(), "5.0".into())));
        assert_eq!(names(Codec::FourCc(*b"av01"), 0, 8), None);
    }

    #[test]
    fn legacy_avc() {
        let seq = inspect_video(&[0x17, 0x00, 0, 0, 0, 1]).unwrap();
        assert!(seq.sequence_header && !seq.keyframe);
        assert_eq!(seq.codec, Codec::LegacyVideo(7));
        let key = inspect_video(&[0x17, 0x01, 0, 0, 0]).unwrap();
        assert!(key.keyframe && !key.sequence_header);
        let inter = inspect_video(&[0x27, 0x01, 0, 0, 0]).unwrap();
        assert!(!inter.keyframe && !inter.sequence_header);
        assert_eq!(key.codec.name(), "H264");
    }

    #[test]
    fn legacy_hevc_codec_12() {
        assert!(inspect_video(&[0x1c, 0x00]).unwrap().sequence_header);
        assert!(inspect_video(&[0x1c, 0x01]).unwrap().keyframe);
    }

    #[test]
    fn multitrack_and_modex_messages_are_read_through() {
        // A one-track multitrack AVC sequence start for track 1.
        let header = b"\x96\x00avc1\x01\x01\x64\x00\x1f";
        let info = inspect_video(header).unwrap();
        assert!(info.sequence_header && !info.keyframe);
        assert_eq!(info.codec, Codec::FourCc(*b"avc1"));
        assert_eq!(info.track, Some(1));
        assert_eq!(
            video_profile_level(header),
            Some(ProfileLevel {
                profile: 100,
                level: 31
            })
        );
        // Many tracks' coded frames, a keyframe.
        let frames = b"\x96\x11hvc1\x00\x00\x00\x04\x00\x00\x00x\x01\x00\x00\x04\x00\x00\x00y";
        let info = inspect_video(frames).unwrap();
        assert!(info.keyframe && !info.sequence_header);
        assert_eq!((info.codec, info.track), (Codec::FourCc(*b"hvc1"), None));
        // A ModEx (nanosecond offset) before a sequence start.
        let info = inspect_video(b"\x97\x02\x00\x01\x02\x00av01\x81").unwrap();
        assert!(info.sequence_header);
        assert_eq!(info.codec, Codec::FourCc(*b"av01"));
        // Audio: a one-track Opus sequence start for track 2.
        let info = inspect_audio(b"\x95\x00Opus\x02OpusHead").unwrap();
        assert!(info.sequence_header);
        assert_eq!((info.codec, info.track), (Codec::FourCc(*b"Opus"), Some(2)));
    }

    #[test]
    fn enhanced_rtmp_fourcc_frames() {
        for cc in [b"hvc1", b"av01", b"vp09"] {
            // Key frame, SequenceStart.
            let mut seq = vec![0x80 | 0x10];
            seq.extend_from_slice(cc);
            let info = inspect_video(&seq).unwrap();
            assert!(info.sequence_header && !info.keyframe);
            assert_eq!(info.codec, Codec::FourCc(*cc));
            // Key frame, CodedFrames and CodedFramesX.
            for packet_type in [1, 3] {
                let mut key = vec![0x80 | 0x10 | packet_type];
                key.extend_from_slice(cc);
                key.extend_from_slice(&[0, 0, 0, 1]);
                assert!(inspect_video(&key).unwrap().keyframe);
            }
            // Inter frame.
            let mut inter = vec![0x80 | 0x20 | 1];
            inter.extend_from_slice(cc);
            assert!(!inspect_video(&inter).unwrap().keyframe);
        }
        assert_eq!(Codec::FourCc(*b"av01").name(), "AV1");
        assert_eq!(Codec::FourCc(*b"zzzz").name(), "zzzz");
        assert_eq!(Codec::LegacyVideo(7).fourcc(), Some(*b"avc1"));
        assert_eq!(Codec::LegacyAudio(10).name(), "AAC");
        assert_eq!(Codec::LegacyAudio(2).name(), "MP3");
        assert_eq!(Codec::LegacyVideo(2).name(), "H263");
    }

    #[test]
    fn unknown_codecs_and_short_payloads_do_not_panic() {
        assert_eq!(inspect_video(&[]), None);
        assert_eq!(inspect_audio(&[]), None);
        let info = inspect_video(&[0x80]).unwrap();
        assert_eq!(info.codec, Codec::LegacyVideo(0));
        let vp6 = inspect_video(&[0x14]).unwrap();
        assert!(vp6.keyframe && !vp6.sequence_header);
        assert!(!inspect_video(&[0x17]).unwrap().sequence_header);
    }

    #[test]
    fn avc_and_hevc_profile_level() {
        let avc = [0x17, 0, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f, 0xff];
        assert_eq!(
            video_profile_level(&avc),
            Some(ProfileLevel {
                profile: 100,
                level: 31
            })
        );
        let mut hevc = vec![0x1c, 0, 0, 0, 0, 0x01, 0x01];
        hevc.extend_from_slice(&[0; 10]);
        hevc.push(93);
        assert_eq!(
            video_profile_level(&hevc),
            Some(ProfileLevel {
                profile: 1,
                level: 93
            })
        );
        assert_eq!(video_profile_level(&[0x17, 1, 0, 0, 0, 1, 2, 3, 4]), None);
        for len in 0..avc.len() {
            let _ = video_profile_level(&avc[..len]);
        }
    }

    #[test]
    fn aac_config_and_legacy_audio_format() {
        // AAC LC, 44.1 kHz (index 4), stereo: 0x12 0x10.
        assert_eq!(audio_format(&[0xaf, 0x00, 0x12, 0x10]), Some((44100, 2)));
        // 48 kHz (index 3), mono: 0x11 0x88.
        assert_eq!(audio_format(&[0xaf, 0x00, 0x11, 0x88]), Some((48000, 1)));
        assert_eq!(audio_format(&[0xaf, 0x00, 0x12]), None);
        // MP3, 44 kHz, stereo.
        assert_eq!(audio_format(&[0x2f]), Some((44100, 2)));
        assert_eq!(audio_format(&[]), None);
    }

    #[test]
    fn audio_aac_and_enhanced() {
        assert!(
            inspect_audio(&[0xaf, 0x00, 0x12, 0x10])
                .unwrap()
                .sequence_header
        );
        assert!(!inspect_audio(&[0xaf, 0x01, 0x21]).unwrap().sequence_header);
        assert_eq!(
            inspect_audio(&[0x2f, 0xff]).unwrap().codec,
            Codec::LegacyAudio(2)
        );
        let opus = inspect_audio(&[0x90, b'O', b'p', b'u', b's']).unwrap();
        assert!(opus.sequence_header);
        assert_eq!(opus.codec, Codec::FourCc(*b"Opus"));
        assert!(
            !inspect_audio(&[0x91, b'O', b'p', b'u', b's', 1])
                .unwrap()
                .sequence_header
        );
    }
}
