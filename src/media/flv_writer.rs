//! Writing FLV: the file header, tag headers and trailers around payloads
//! written as they are (never copied here), and an `onMetaData` tag built
//! from the publisher's metadata and what the stream's headers tell,
//! whose `duration` and `filesize` are patched in place when the file
//! closes. Plain bytes: the recorder puts them in files.

use crate::media::codec::Codec;
use crate::protocol::amf0::{self, Value};
#[cfg(test)]
use crate::protocol::message::type_id;

/// The file header and the first (zero) previous-tag size.
pub const FILE_HEADER_LEN: usize = 13;
pub const TAG_HEADER_LEN: usize = 11;
pub const TAG_TRAILER_LEN: usize = 4;
/// The longest tag body FLV can state (24 bits).
pub const MAX_BODY_LEN: usize = 0xff_ffff;

// FLV tag types are RTMP's message type ids: `type_id::AUDIO`,
// `type_id::VIDEO` and `type_id::DATA_AMF0` (script data).

/// `FLV`, version 1, which tracks the file has, and the zero previous-tag
/// size before the first tag.
pub fn file_header(has_audio: bool, has_video: bool) -> [u8; FILE_HEADER_LEN] {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// The 11-byte header of a tag whose body is `body_len` bytes; `None` if
/// FLV cannot state that length.
pub fn tag_header(tag_type: u8, timestamp: u32, body_len: usize) -> Option<[u8; TAG_HEADER_LEN]> {
    if body_len > MAX_BODY_LEN {
        return None;
    }
    let len = (body_len as u32).to_be_bytes();
    let ts = timestamp.to_be_bytes();
    Some([
        tag_type, len[1], len[2], len[3], ts[1], ts[2], ts[3], ts[0], 0, 0, 0,
    ])
}

/// The previous-tag size that follows a tag's body.
pub fn tag_trailer(body_len: usize) -> [u8; TAG_TRAILER_LEN] {
    ((TAG_HEADER_LEN + body_len) as u32).to_be_bytes()
}

/// What the recorder knows of a stream, for `onMetaData`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataFacts {
    pub width: Option<f64>,
    pub height: Option<f64>,
    pub frame_rate: Option<f64>,
    pub video: Option<Codec>,
    pub audio: Option<Codec>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u8>,
    /// The recorded stream (`app/name`) and when the file started (RFC
    /// 3339), for listing recordings.
    pub stream: Option<String>,
    pub started_at: Option<String>,
}

/// An `onMetaData` tag body, with where its `duration` and `filesize`
/// numbers (8-byte big-endian doubles) are.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataTag {
    pub body: Vec<u8>,
    pub duration_at: usize,
    pub filesize_at: usize,
}

/// The FLV codec id of `codec`: the legacy number, or an Enhanced RTMP
/// FourCC as a number.
fn codec_id(codec: Codec) -> f64 {
    match codec {
        Codec::LegacyVideo(id) | Codec::LegacyAudio(id) => f64::from(id),
        Codec::FourCc(cc) => f64::from(u32::from_be_bytes(cc)),
    }
}

/// `metadatacreator` of the files this server writes: how retention tells
/// its own recordings from others'.
pub const CREATOR: &str = "rtmp-server";

/// Properties the recorder sets; the publisher's own are dropped.
const OURS: &[&str] = &[
    "metadatacreator",
    "recordedstream",
    "recordedat",
    "duration",
    "filesize",
    "width",
    "height",
    "framerate",
    "videocodecid",
    "audiocodecid",
    "audiosamplerate",
    "audiochannels",
    "stereo",
];

/// Builds `onMetaData`: `duration` and `filesize` first (zero, to be
/// patched), what `facts` tell, then the publisher's other properties
/// (`publisher` is its metadata tag body: `onMetaData` and an object or
/// ECMA array; anything else is ignored).
pub fn metadata_tag(publisher: Option<&[u8]>, facts: &MetadataFacts) -> MetadataTag {
    let mut props: Vec<(String, Value)> = vec![
        ("duration".into(), Value::Number(0.0)),
        ("filesize".into(), Value::Number(0.0)),
    ];
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            props.push((name.into(), value));
        }
    };
    put("width", facts.width.map(Value::Number));
    put("height", facts.height.map(Value::Number));
    put("framerate", facts.frame_rate.map(Value::Number));
    put(
        "videocodecid",
        facts.video.map(|c| Value::Number(codec_id(c))),
    );
    put(
        "audiocodecid",
        facts.audio.map(|c| Value::Number(codec_id(c))),
    );
    put(
        "audiosamplerate",
        facts.sample_rate.map(|r| Value::Number(r.into())),
    );
    put(
        "audiochannels",
        facts.channels.map(|c| Value::Number(c.into())),
    );
    put("stereo", facts.channels.map(|c| Value::Boolean(c == 2)));
    put("metadatacreator", Some(Value::String(CREATOR.into())));
    put("recordedstream", facts.stream.clone().map(Value::String));
    put("recordedat", facts.started_at.clone().map(Value::String));
    let theirs = publisher
        .and_then(|body| amf0::decode_all(body).ok())
        .and_then(|values| values.into_iter().nth(1))
        .and_then(|value| match value {
            Value::Object(p) | Value::EcmaArray(p) => Some(p),
            _ => None,
        })
        .unwrap_or_default();
    props.extend(
        theirs
            .into_iter()
            .filter(|(name, _)| !OURS.contains(&name.as_str())),
    );
    let mut body = Vec::new();
    amf0::encode(&Value::String("onMetaData".into()), &mut body);
    // ECMA array marker and count, then `duration`'s name and marker.
    let duration_at = body.len() + 1 + 4 + 2 + "duration".len() + 1;
    let filesize_at = duration_at + 8 + 2 + "filesize".len() + 1;
    amf0::encode(&Value::EcmaArray(props), &mut body);
    MetadataTag {
        body,
        duration_at,
        filesize_at,
    }
}

/// A number as `onMetaData` stores it, for patching.
pub fn number(value: f64) -> [u8; 8] {
    value.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::flv;
    use bytes::Bytes;

    #[test]
    fn header_tags_and_trailers_byte_for_byte() {
        assert_eq!(
            file_header(true, true),
            *b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
        );
        assert_eq!(file_header(true, false)[4], 4);
        assert_eq!(file_header(false, true)[4], 1);
        assert_eq!(
            tag_header(type_id::VIDEO, 0x0123_4567, 0x0a0b0c).unwrap(),
            [9, 0x0a, 0x0b, 0x0c, 0x23, 0x45, 0x67, 0x01, 0, 0, 0]
        );
        assert_eq!(tag_header(type_id::AUDIO, 0, MAX_BODY_LEN + 1), None);
        assert_eq!(tag_trailer(5), [0, 0, 0, 16]);
    }

    #[test]
    fn written_tags_parse_back() {
        let mut file = file_header(true, true).to_vec();
        for (kind, ts, body) in [(9u8, 0u32, &b"\x17\x00abc"[..]), (8, 40, b"\xaf\x01x")] {
            file.extend_from_slice(&tag_header(kind, ts, body.len()).unwrap());
            file.extend_from_slice(body);
            file.extend_from_slice(&tag_trailer(body.len()));
        }
        let tags = flv::parse(&Bytes::from(file)).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!((tags[1].type_id, tags[1].timestamp), (8, 40));
        assert_eq!(&tags[0].payload[..], b"\x17\x00abc");
    }

    #[test]
    fn metadata_merges_the_publisher_s_and_patches_in_place() {
        let publisher = amf0::encode_all(&[
            Value::String("onMetaData".into()),
            Value::EcmaArray(vec![
                ("duration".into(), Value::Number(99.0)),
                ("width".into(), Value::Number(1.0)),
                ("encoder".into(), Value::String("obs-output module".into())),
            ]),
        ]);
        let facts = MetadataFacts {
            width: Some(1280.0),
            height: Some(720.0),
            frame_rate: Some(30.0),
            video: Some(Codec::LegacyVideo(7)),
            audio: Some(Codec::FourCc(*b"Opus")),
            sample_rate: Some(48_000),
            channels: Some(2),
            ..MetadataFacts::default()
        };
        let mut tag = metadata_tag(Some(&publisher), &facts);
        tag.body[tag.duration_at..tag.duration_at + 8].copy_from_slice(&number(12.5));
        tag.body[tag.filesize_at..tag.filesize_at + 8].copy_from_slice(&number(4096.0));
        let values = amf0::decode_all(&tag.body).unwrap();
        assert_eq!(values[0], Value::String("onMetaData".into()));
        let Value::EcmaArray(props) = &values[1] else {
            panic!("{values:?}");
        };
        let get = |name: &str| {
            props
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("duration"), Some(Value::Number(12.5)));
        assert_eq!(get("filesize"), Some(Value::Number(4096.0)));
        assert_eq!(get("width"), Some(Value::Number(1280.0)));
        assert_eq!(get("videocodecid"), Some(Value::Number(7.0)));
        assert_eq!(
            get("audiocodecid"),
            Some(Value::Number(f64::from(u32::from_be_bytes(*b"Opus"))))
        );
        assert_eq!(get("stereo"), Some(Value::Boolean(true)));
        assert_eq!(
            get("encoder"),
            Some(Value::String("obs-output module".into()))
        );
        assert_eq!(props.iter().filter(|(n, _)| n == "duration").count(), 1);
    }

    #[test]
    fn metadata_without_a_publisher_s_or_with_garbage() {
        for publisher in [None, Some(&b"\xff\x00garbage"[..])] {
            let tag = metadata_tag(publisher, &MetadataFacts::default());
            let values = amf0::decode_all(&tag.body).unwrap();
            let Value::EcmaArray(props) = &values[1] else {
                panic!();
            };
            assert_eq!(props.len(), 3, "duration, filesize, creator");
            assert_eq!(props[2].1, Value::String(CREATOR.into()));
            assert_eq!(
                &tag.body[tag.duration_at..tag.duration_at + 8],
                &number(0.0)
            );
        }
    }
}
