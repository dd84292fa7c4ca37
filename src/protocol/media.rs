//! Reads the first bytes of audio and video message payloads (FLV tag
//! bodies) to tell keyframes, sequence headers and codecs apart, for legacy
//! FLV codec ids and for Enhanced RTMP (v1/v2) FourCC headers.
//! Payloads are never modified; unknown codecs are simply reported as such.

/// A codec as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Legacy FLV codec id (video: 7 = AVC, 12 = HEVC by convention;
    /// audio: sound format, 10 = AAC, 2 = MP3).
    Legacy(u8),
    /// Enhanced RTMP FourCC such as `hvc1`, `av01`, `vp09`, `Opus`.
    FourCc([u8; 4]),
}

impl Codec {
    /// A short human-readable name.
    pub fn name(&self) -> String {
        match self {
            Codec::Legacy(7) => "H264".into(),
            Codec::Legacy(12) => "H265".into(),
            Codec::Legacy(2) => "H263".into(),
            Codec::Legacy(id) => format!("codec-{id}"),
            Codec::FourCc(cc) => String::from_utf8_lossy(cc).into_owned(),
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
}

/// What an audio payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioInfo {
    pub codec: Codec,
    /// Decoder configuration (AAC AudioSpecificConfig, enhanced
    /// sequence start).
    pub sequence_header: bool,
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
        // Enhanced RTMP: [1 bit ex-header][3 bits frame type][4 bits packet type][FourCC].
        let frame_type = (first >> 4) & 0x07;
        let packet_type = first & 0x0f;
        let codec = payload
            .get(1..5)
            .map(|cc| Codec::FourCc([cc[0], cc[1], cc[2], cc[3]]))
            .unwrap_or(Codec::Legacy(0));
        let sequence_header = matches!(
            packet_type,
            PACKET_TYPE_SEQUENCE_START | PACKET_TYPE_MPEG2TS_SEQUENCE_START
        );
        return Some(VideoInfo {
            codec,
            keyframe: frame_type == FRAME_TYPE_KEY && !sequence_header,
            sequence_header,
        });
    }
    let frame_type = first >> 4;
    let codec_id = first & 0x0f;
    let sequence_header = matches!(
        codec_id,
        VIDEO_CODEC_AVC | VIDEO_CODEC_HEVC | VIDEO_CODEC_AV1_LEGACY
    ) && payload.get(1) == Some(&0);
    Some(VideoInfo {
        codec: Codec::Legacy(codec_id),
        keyframe: frame_type == FRAME_TYPE_KEY && !sequence_header,
        sequence_header,
    })
}

/// Inspects an audio payload; `None` if it is empty.
pub fn inspect_audio(payload: &[u8]) -> Option<AudioInfo> {
    let &first = payload.first()?;
    let format = first >> 4;
    if format == AUDIO_FORMAT_EX_HEADER {
        let packet_type = first & 0x0f;
        let codec = payload
            .get(1..5)
            .map(|cc| Codec::FourCc([cc[0], cc[1], cc[2], cc[3]]))
            .unwrap_or(Codec::Legacy(format));
        return Some(AudioInfo {
            codec,
            sequence_header: packet_type == PACKET_TYPE_SEQUENCE_START,
        });
    }
    Some(AudioInfo {
        codec: Codec::Legacy(format),
        sequence_header: format == AUDIO_FORMAT_AAC && payload.get(1) == Some(&0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc() {
        let seq = inspect_video(&[0x17, 0x00, 0, 0, 0, 1]).unwrap();
        assert!(seq.sequence_header && !seq.keyframe);
        assert_eq!(seq.codec, Codec::Legacy(7));
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
        assert_eq!(Codec::FourCc(*b"av01").name(), "av01");
    }

    #[test]
    fn unknown_codecs_and_short_payloads_do_not_panic() {
        assert_eq!(inspect_video(&[]), None);
        assert_eq!(inspect_audio(&[]), None);
        let info = inspect_video(&[0x80]).unwrap();
        assert_eq!(info.codec, Codec::Legacy(0));
        let vp6 = inspect_video(&[0x14]).unwrap();
        assert!(vp6.keyframe && !vp6.sequence_header);
        assert!(!inspect_video(&[0x17]).unwrap().sequence_header);
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
            Codec::Legacy(2)
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
