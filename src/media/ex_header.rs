//! Enhanced RTMP (v2) audio and video tag headers, sans-IO: ModEx
//! modifiers (such as the nanosecond timestamp offset) stepped over, and
//! multitrack headers read (one track, many tracks of one codec, many
//! tracks of many codecs), so that what a message is (its packet type,
//! tracks and their codecs, where the first track's data starts) is known
//! however it is wrapped. Payloads are only read: ModEx data and every
//! track go on to players as they came.

/// Tracks of one message read at most (the rest are forwarded unread).
pub const MAX_TRACKS_READ: usize = 16;

const PACKET_TYPE_MODEX: u8 = 7;
const VIDEO_PACKET_TYPE_MULTITRACK: u8 = 6;
const AUDIO_PACKET_TYPE_MULTITRACK: u8 = 5;
const VIDEO_PACKET_TYPE_METADATA: u8 = 4;
const VIDEO_FRAME_TYPE_COMMAND: u8 = 5;

/// Which kind of tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    Video,
    Audio,
}

/// How a multitrack message carries its tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Multitrack {
    OneTrack,
    ManyTracks,
    ManyTracksManyCodecs,
}

/// One track a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackRef {
    /// Its id (0 for a message that is not multitrack).
    pub id: u8,
    pub fourcc: [u8; 4],
}

/// What an Enhanced RTMP tag header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExHeader {
    /// The packet type once ModEx and multitrack are unwrapped
    /// (`0` SequenceStart, `1` CodedFrames...).
    pub packet_type: u8,
    /// Multitrack, and how; `None` for a single-track message.
    pub multitrack: Option<Multitrack>,
    /// The tracks it carries, up to [`MAX_TRACKS_READ`] (none for a
    /// video command frame).
    pub tracks: Vec<TrackRef>,
    /// Where the first track's data starts in the payload.
    pub body_at: usize,
}

/// Reads the header of an Enhanced RTMP tag (`payload` starts with its
/// first byte); `None` if it is cut short or malformed.
pub fn parse(payload: &[u8], kind: TagKind) -> Option<ExHeader> {
    let first = *payload.first()?;
    let mut packet_type = first & 0x0f;
    let mut at = 1;
    // ModEx: a size (1..=256, or a 16-bit one past that), the data, then
    // the modifier's type and the next packet type in one byte.
    while packet_type == PACKET_TYPE_MODEX {
        let mut size = usize::from(*payload.get(at)?) + 1;
        at += 1;
        if size == 256 {
            let wide = payload.get(at..at + 2)?;
            size = usize::from(u16::from_be_bytes([wide[0], wide[1]])) + 1;
            at += 2;
        }
        at += size;
        packet_type = *payload.get(at)? & 0x0f;
        at += 1;
    }
    let frame_type = (first >> 4) & 0x07;
    if kind == TagKind::Video
        && frame_type == VIDEO_FRAME_TYPE_COMMAND
        && packet_type != VIDEO_PACKET_TYPE_METADATA
    {
        return Some(ExHeader {
            packet_type,
            multitrack: None,
            tracks: Vec::new(),
            body_at: at,
        });
    }
    let multitrack_type = match kind {
        TagKind::Video => VIDEO_PACKET_TYPE_MULTITRACK,
        TagKind::Audio => AUDIO_PACKET_TYPE_MULTITRACK,
    };
    if packet_type != multitrack_type {
        let fourcc = fourcc_at(payload, at)?;
        return Some(ExHeader {
            packet_type,
            multitrack: None,
            tracks: vec![TrackRef { id: 0, fourcc }],
            body_at: at + 4,
        });
    }
    let byte = *payload.get(at)?;
    at += 1;
    let how = match byte >> 4 {
        0 => Multitrack::OneTrack,
        1 => Multitrack::ManyTracks,
        2 => Multitrack::ManyTracksManyCodecs,
        _ => return None,
    };
    let packet_type = byte & 0x0f;
    if packet_type == multitrack_type || packet_type == PACKET_TYPE_MODEX {
        return None;
    }
    let shared = if how == Multitrack::ManyTracksManyCodecs {
        None
    } else {
        let fourcc = fourcc_at(payload, at)?;
        at += 4;
        Some(fourcc)
    };
    let mut tracks = Vec::new();
    let mut body_at = None;
    while at < payload.len() && tracks.len() < MAX_TRACKS_READ {
        let fourcc = match shared {
            Some(fourcc) => fourcc,
            None => {
                let fourcc = fourcc_at(payload, at)?;
                at += 4;
                fourcc
            }
        };
        let id = *payload.get(at)?;
        at += 1;
        let size = if how == Multitrack::OneTrack {
            payload.len() - at
        } else {
            let s = payload.get(at..at + 3)?;
            at += 3;
            (usize::from(s[0]) << 16) | (usize::from(s[1]) << 8) | usize::from(s[2])
        };
        body_at.get_or_insert(at);
        tracks.push(TrackRef { id, fourcc });
        if how == Multitrack::OneTrack {
            break;
        }
        at = at.checked_add(size)?;
    }
    Some(ExHeader {
        packet_type,
        multitrack: Some(how),
        body_at: body_at?,
        tracks,
    })
}

fn fourcc_at(payload: &[u8], at: usize) -> Option<[u8; 4]> {
    let b = payload.get(at..at + 4)?;
    Some([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_enhanced_tag_is_one_track_with_its_fourcc() {
        // Keyframe, CodedFrames, hvc1, composition time, data.
        let tag = b"\x91hvc1\x00\x00\x00data";
        let header = parse(tag, TagKind::Video).unwrap();
        assert_eq!(header.packet_type, 1);
        assert_eq!(header.multitrack, None);
        assert_eq!(
            header.tracks,
            [TrackRef {
                id: 0,
                fourcc: *b"hvc1"
            }]
        );
        assert_eq!(header.body_at, 5);
        let audio = parse(b"\x90Opus\x01\x02", TagKind::Audio).unwrap();
        assert_eq!((audio.packet_type, audio.body_at), (0, 5));
    }

    #[test]
    fn modex_is_stepped_over() {
        // ModEx of 3 bytes (a nanosecond offset), then type 0 | CodedFrames.
        let tag = b"\x97\x02\x01\x02\x03\x01av01data";
        let header = parse(tag, TagKind::Video).unwrap();
        assert_eq!(header.packet_type, 1);
        assert_eq!(header.tracks[0].fourcc, *b"av01");
        assert_eq!(&tag[header.body_at..], b"data");
        // A 16-bit size: 0xff, then 0x0100 + 1 = 257 bytes of data.
        let mut long = vec![0x97, 0xff, 0x01, 0x00];
        long.extend_from_slice(&[0xaa; 257]);
        long.extend_from_slice(b"\x00vp09x");
        let header = parse(&long, TagKind::Video).unwrap();
        assert_eq!((header.packet_type, header.tracks[0].fourcc), (0, *b"vp09"));
        assert_eq!(parse(b"\x97\x05\x01", TagKind::Video), None, "cut short");
    }

    #[test]
    fn one_track_of_a_multitrack_message() {
        // Keyframe, Multitrack; OneTrack | SequenceStart; avc1; track 1.
        let tag = b"\x96\x00avc1\x01config";
        let header = parse(tag, TagKind::Video).unwrap();
        assert_eq!(header.packet_type, 0);
        assert_eq!(header.multitrack, Some(Multitrack::OneTrack));
        assert_eq!(
            header.tracks,
            [TrackRef {
                id: 1,
                fourcc: *b"avc1"
            }]
        );
        assert_eq!(&tag[header.body_at..], b"config");
    }

    #[test]
    fn many_tracks_of_one_codec_and_of_many() {
        // ManyTracks | CodedFrames, hvc1: track 0 (2 bytes), track 2 (1 byte).
        let tag = b"\x96\x11hvc1\x00\x00\x00\x02ab\x02\x00\x00\x01c";
        let header = parse(tag, TagKind::Video).unwrap();
        assert_eq!(header.multitrack, Some(Multitrack::ManyTracks));
        let ids: Vec<u8> = header.tracks.iter().map(|t| t.id).collect();
        assert_eq!(ids, [0, 2]);
        assert_eq!(&tag[header.body_at..header.body_at + 2], b"ab");
        // Audio, ManyTracksManyCodecs | SequenceStart: Opus track 0, mp4a track 1.
        let tag = b"\x95\x20Opus\x00\x00\x00\x01xmp4a\x01\x00\x00\x02yz";
        let header = parse(tag, TagKind::Audio).unwrap();
        assert_eq!(header.packet_type, 0);
        assert_eq!(
            header.tracks,
            [
                TrackRef {
                    id: 0,
                    fourcc: *b"Opus"
                },
                TrackRef {
                    id: 1,
                    fourcc: *b"mp4a"
                }
            ]
        );
    }

    #[test]
    fn malformed_multitrack_headers_are_refused() {
        assert_eq!(parse(b"\x96\x30avc1\x00", TagKind::Video), None, "type 3");
        assert_eq!(parse(b"\x96\x06avc1\x00", TagKind::Video), None, "nested");
        assert_eq!(
            parse(b"\x96\x11hvc1\x00\x00", TagKind::Video),
            None,
            "size cut"
        );
        assert_eq!(parse(b"\x96\x10hvc1", TagKind::Video), None, "no track");
        // A size past the end: the tracks read so far stand.
        let header = parse(b"\x96\x11hvc1\x00\xff\xff\xffab", TagKind::Video).unwrap();
        assert_eq!(header.tracks.len(), 1);
    }

    #[test]
    fn a_video_command_frame_has_no_track() {
        // Command frame, CodedFrames: the command byte follows.
        let header = parse(b"\xd1\x00", TagKind::Video).unwrap();
        assert!(header.tracks.is_empty());
    }

    #[test]
    fn track_lists_are_bounded() {
        let mut tag = b"\x96\x11hvc1".to_vec();
        for id in 0..100u8 {
            tag.extend_from_slice(&[id, 0, 0, 1, 0xee]);
        }
        assert_eq!(
            parse(&tag, TagKind::Video).unwrap().tracks.len(),
            MAX_TRACKS_READ
        );
    }
}
