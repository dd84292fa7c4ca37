use super::*;
use crate::media::flv;

fn packet(kind: PacketKind, timestamp: u32, payload: &'static [u8]) -> Arc<Packet> {
    Arc::new(Packet::new(kind, timestamp, Bytes::from_static(payload)))
}

fn metadata() -> Arc<Packet> {
    let body = b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09";
    Arc::new(Packet::new(PacketKind::Data, 0, Bytes::from_static(body)).into_metadata())
}

const AVC_HEADER: &[u8] = b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f\xff\xe1\x00\x00";
const AAC_HEADER: &[u8] = b"\xaf\x00\x12\x10";
const KEYFRAME: &[u8] = b"\x17\x01\x00\x00\x00key";
const INTER: &[u8] = b"\x27\x01\x00\x00\x00inter";
const AAC_FRAME: &[u8] = b"\xaf\x01aac";

fn video_and_audio() -> StreamFacts {
    StreamFacts {
        has_video: true,
        has_audio: true,
        width: 1280,
        height: 720,
    }
}

/// Pushes every packet; returns the bytes the feed gave, joined.
fn run(feed: &mut LiveFeed, packets: &[Arc<Packet>]) -> Vec<Bytes> {
    packets
        .iter()
        .flat_map(|p| feed.push(p, video_and_audio))
        .collect()
}

fn joined(pieces: &[Bytes]) -> Bytes {
    Bytes::from(pieces.concat())
}

#[test]
fn flv_starts_at_the_keyframe_with_headers_and_times_from_zero() {
    let mut feed = LiveFeed::new(LiveFormat::Flv);
    let early = run(
        &mut feed,
        &[
            metadata(),
            packet(PacketKind::Video, 1000, AVC_HEADER),
            packet(PacketKind::Audio, 1000, AAC_HEADER),
            packet(PacketKind::Audio, 700, AAC_FRAME),
            packet(PacketKind::Audio, 990, AAC_FRAME),
            packet(PacketKind::Video, 995, INTER),
        ],
    );
    assert!(early.is_empty(), "nothing before a keyframe");
    assert_eq!(feed.content_type(), None);
    let key = packet(PacketKind::Video, 1000, KEYFRAME);
    run(&mut feed, &[packet(PacketKind::Audio, 1000, AAC_FRAME)]);
    let mut pieces = run(
        &mut feed,
        &[
            Arc::clone(&key),
            packet(PacketKind::Audio, 998, AAC_FRAME),
            packet(PacketKind::Audio, 1010, AAC_FRAME),
            packet(PacketKind::Video, 1040, INTER),
        ],
    );
    assert_eq!(feed.content_type(), Some("video/x-flv"));
    assert!(
        pieces.iter().any(|p| p.as_ptr() == key.payload.as_ptr()),
        "the payload is shared, not copied"
    );
    // A new sequence header mid-stream is passed on.
    pieces.extend(run(
        &mut feed,
        &[packet(
            PacketKind::Video,
            1080,
            b"\x17\x00\x00\x00\x00\x01\x4d\x00\x1f",
        )],
    ));
    let file = joined(&pieces);
    assert_eq!(file[4], 5, "audio and video flags");
    let tags: Vec<(u8, u32)> = flv::parse(&file)
        .unwrap()
        .iter()
        .map(|m| (m.type_id, m.timestamp))
        .collect();
    assert_eq!(
        tags,
        [
            (18, 0),
            (9, 0),
            (8, 0),
            (8, 0),
            (8, 10),
            (9, 10),
            (8, 8),
            (8, 20),
            (9, 50),
            (9, 90)
        ],
        "metadata, headers, the audio just ahead of the keyframe, the keyframe; \
         audio from long before left out"
    );
}

#[test]
fn flv_of_an_audio_only_stream_starts_at_its_first_frame() {
    let mut feed = LiveFeed::new(LiveFormat::Flv);
    let audio_only = || StreamFacts {
        has_audio: true,
        ..StreamFacts::default()
    };
    let mut pieces = feed.push(&packet(PacketKind::Audio, 500, AAC_HEADER), audio_only);
    pieces.extend(feed.push(&packet(PacketKind::Audio, 500, AAC_FRAME), audio_only));
    pieces.extend(feed.push(&packet(PacketKind::Audio, 523, AAC_FRAME), audio_only));
    let file = joined(&pieces);
    assert_eq!(file[4], 4, "audio only");
    let times: Vec<u32> = flv::parse(&file)
        .unwrap()
        .iter()
        .map(|m| m.timestamp)
        .collect();
    assert_eq!(times, [0, 0, 23]);
}

/// The top-level box types in `bytes`.
fn boxes(bytes: &[u8]) -> Vec<String> {
    let mut at = 0;
    let mut kinds = Vec::new();
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        kinds.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        at += size.max(8);
    }
    kinds
}

#[test]
fn mp4_names_its_codecs_and_sends_each_frame_when_flushed() {
    let mut feed = LiveFeed::new(LiveFormat::Mp4);
    let mut pieces = run(
        &mut feed,
        &[
            packet(PacketKind::Video, 0, AVC_HEADER),
            packet(PacketKind::Audio, 0, AAC_HEADER),
            packet(PacketKind::Video, 40, KEYFRAME),
            packet(PacketKind::Audio, 45, AAC_FRAME),
            packet(PacketKind::Video, 80, INTER),
            packet(PacketKind::Audio, 68, AAC_FRAME),
        ],
    );
    assert_eq!(
        feed.content_type(),
        Some("video/mp4; codecs=\"avc1.64001f,mp4a.40.2\"")
    );
    pieces.extend(feed.flush());
    assert_eq!(boxes(&joined(&pieces)), ["ftyp", "moov", "moof", "mdat"]);
    assert!(feed.flush().is_empty(), "nothing more is complete");
    // A new configuration: what is left goes out, then a new init segment
    // with the next keyframe.
    let mut pieces = run(
        &mut feed,
        &[
            packet(
                PacketKind::Video,
                120,
                b"\x17\x00\x00\x00\x00\x01\x4d\x00\x1f\xff\xe1\x00\x00",
            ),
            packet(PacketKind::Video, 120, KEYFRAME),
            packet(PacketKind::Video, 160, INTER),
        ],
    );
    pieces.extend(feed.flush());
    assert_eq!(
        boxes(&joined(&pieces)),
        ["moof", "mdat", "ftyp", "moov", "moof", "mdat"]
    );
}

#[test]
fn mp4_of_codecs_it_cannot_carry_says_so() {
    let mut feed = LiveFeed::new(LiveFormat::Mp4);
    let mp3 = || StreamFacts {
        has_audio: true,
        ..StreamFacts::default()
    };
    assert!(
        feed.push(&packet(PacketKind::Audio, 0, b"\x2f\xff\xfb"), mp3)
            .is_empty()
    );
    assert!(feed.is_unplayable());
    // FLV carries anything.
    let mut feed = LiveFeed::new(LiveFormat::Flv);
    assert!(
        !feed
            .push(&packet(PacketKind::Audio, 0, b"\x2f\xff\xfb"), mp3)
            .is_empty()
    );
}
