//! The init segment's and fragments' box layout, byte offsets and sizes.

use super::*;

/// The boxes at the top of `data`: (type, body).
fn boxes(data: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned();
        assert!(
            size >= 8 && at + size <= data.len(),
            "{kind} of {size} at {at}"
        );
        out.push((kind, &data[at + 8..at + size]));
        at += size;
    }
    assert_eq!(at, data.len(), "boxes fill the data");
    out
}

fn names(list: &[(String, &[u8])]) -> Vec<String> {
    list.iter().map(|(k, _)| k.clone()).collect()
}

fn child<'a>(list: &[(String, &'a [u8])], kind: &str) -> &'a [u8] {
    list.iter()
        .find(|(k, _)| k == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
        .1
}

fn tracks() -> Vec<Track> {
    vec![
        Track {
            id: 1,
            codec: TrackCodec::Avc(Bytes::from_static(b"\x01\x64\x00\x1f\xff\xe1\x00\x00")),
            timescale: 90_000,
            width: 1280,
            height: 720,
            channels: 0,
            sample_rate: 0,
        },
        Track {
            id: 2,
            codec: TrackCodec::Aac(Bytes::from_static(b"\x12\x10")),
            timescale: 44_100,
            width: 0,
            height: 0,
            channels: 2,
            sample_rate: 44_100,
        },
    ]
}

#[test]
fn the_init_segment_nests_as_iso_bmff_wants() {
    let init = init_segment(&tracks());
    let top = boxes(&init);
    assert_eq!(names(&top), ["ftyp", "moov"]);
    assert_eq!(&child(&top, "ftyp")[..4], b"isom");
    let moov = boxes(child(&top, "moov"));
    assert_eq!(names(&moov), ["mvhd", "trak", "trak", "mvex"]);
    let trak = boxes(moov[1].1);
    assert_eq!(names(&trak), ["tkhd", "mdia"]);
    let tkhd = child(&trak, "tkhd");
    assert_eq!(&tkhd[76..80], &(1280u32 << 16).to_be_bytes(), "width");
    let mdia = boxes(child(&trak, "mdia"));
    assert_eq!(names(&mdia), ["mdhd", "hdlr", "minf"]);
    assert_eq!(
        &child(&mdia, "mdhd")[12..16],
        &90_000u32.to_be_bytes(),
        "timescale"
    );
    let minf = boxes(child(&mdia, "minf"));
    assert_eq!(names(&minf), ["vmhd", "dinf", "stbl"]);
    let stbl = boxes(child(&minf, "stbl"));
    assert_eq!(names(&stbl), ["stsd", "stts", "stsc", "stsz", "stco"]);
    let entries = boxes(&child(&stbl, "stsd")[8..]);
    assert_eq!(names(&entries), ["avc1"]);
    let avc1 = boxes(&entries[0].1[78..]);
    assert_eq!(
        avc1[0],
        ("avcC".to_string(), &b"\x01\x64\x00\x1f\xff\xe1\x00\x00"[..])
    );
    // The audio track: mp4a with its esds holding the config.
    let audio = boxes(moov[2].1);
    let mdia = boxes(child(&audio, "mdia"));
    let minf = boxes(child(&mdia, "minf"));
    assert_eq!(names(&minf), ["smhd", "dinf", "stbl"]);
    let stbl = boxes(child(&minf, "stbl"));
    let entries = boxes(&child(&stbl, "stsd")[8..]);
    assert_eq!(names(&entries), ["mp4a"]);
    let mp4a = entries[0].1;
    assert_eq!(&mp4a[16..18], &2u16.to_be_bytes(), "channels");
    assert_eq!(&mp4a[24..28], &(44_100u32 << 16).to_be_bytes(), "rate");
    let esds = boxes(&mp4a[28..]);
    assert_eq!(names(&esds), ["esds"]);
    assert!(
        esds[0]
            .1
            .ends_with(b"\x05\x80\x80\x80\x02\x12\x10\x06\x80\x80\x80\x01\x02")
    );
    let mvex = boxes(child(&moov, "mvex"));
    assert_eq!(names(&mvex), ["trex", "trex"]);
}

#[test]
fn a_fragment_points_each_run_at_its_bytes() {
    let video = [
        Sample {
            duration: 3000,
            cto: 6000,
            keyframe: true,
            data: Bytes::from_static(b"KEYFRAME"),
        },
        Sample {
            duration: 3000,
            cto: -3000,
            keyframe: false,
            data: Bytes::from_static(b"delta"),
        },
    ];
    let audio = [Sample {
        duration: 1024,
        cto: 0,
        keyframe: true,
        data: Bytes::from_static(b"aac!"),
    }];
    let runs = [
        TrackRun {
            track_id: 1,
            base_decode_time: 5_000_000_000,
            samples: &video,
        },
        TrackRun {
            track_id: 2,
            base_decode_time: 7,
            samples: &audio,
        },
    ];
    let fragment = fragment(9, &runs);
    let mut file = fragment.header.clone();
    for d in &fragment.data {
        file.extend_from_slice(d);
    }
    assert_eq!(fragment.len(), file.len());
    let top = boxes(&file);
    assert_eq!(names(&top), ["moof", "mdat"]);
    assert_eq!(child(&top, "mdat"), b"KEYFRAMEdeltaaac!");
    let moof = boxes(child(&top, "moof"));
    assert_eq!(names(&moof), ["mfhd", "traf", "traf"]);
    assert_eq!(&child(&moof, "mfhd")[4..], &9u32.to_be_bytes());
    let mut starts = Vec::new();
    for (n, (_, traf)) in moof.iter().skip(1).enumerate() {
        let traf = boxes(traf);
        assert_eq!(names(&traf), ["tfhd", "tfdt", "trun"]);
        let tfdt = child(&traf, "tfdt");
        assert_eq!(tfdt[0], 1, "64-bit decode time");
        let base = u64::from_be_bytes(tfdt[4..12].try_into().unwrap());
        assert_eq!(base, runs[n].base_decode_time);
        let trun = child(&traf, "trun");
        let count = u32::from_be_bytes(trun[4..8].try_into().unwrap());
        assert_eq!(count as usize, runs[n].samples.len());
        starts.push(u32::from_be_bytes(trun[8..12].try_into().unwrap()) as usize);
        let first_cto = i32::from_be_bytes(trun[24..28].try_into().unwrap());
        assert_eq!(first_cto, runs[n].samples[0].cto);
    }
    assert_eq!(&file[starts[0]..starts[0] + 8], b"KEYFRAME");
    assert_eq!(&file[starts[1]..starts[1] + 4], b"aac!");
}

#[test]
fn opus_head_becomes_dops_and_new_codecs_get_their_entries() {
    // OpusHead: version 1, 2 channels, pre-skip 312, 48 kHz, gain 0, family 0.
    let head = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00";
    assert_eq!(
        dops(head).unwrap(),
        [0, 2, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0]
    );
    assert_eq!(dops(b"NotOpus!"), None);
    assert_eq!(dops(b"OpusHead\x01"), None, "truncated");
    let tracks = [
        Track {
            id: 1,
            codec: TrackCodec::Av1(Bytes::from_static(b"\x81\x00\x0c\x00")),
            timescale: 90_000,
            width: 320,
            height: 240,
            channels: 0,
            sample_rate: 0,
        },
        Track {
            id: 2,
            codec: TrackCodec::Opus(Bytes::from_static(head)),
            timescale: 48_000,
            width: 0,
            height: 0,
            channels: 2,
            sample_rate: 48_000,
        },
    ];
    let init = init_segment(&tracks);
    let find = |needle: &[u8]| init.windows(needle.len()).any(|w| w == needle);
    assert!(find(b"av01") && find(b"av1C\x81\x00\x0c\x00"));
    assert!(find(b"Opus") && find(b"dOps\x00\x02\x01\x38"));
    let vp9 = Track {
        codec: TrackCodec::Vp9(Bytes::from_static(
            b"\x01\x00\x00\x00\x00\x14\x82\x02\x02\x02\x00\x00",
        )),
        ..tracks[0].clone()
    };
    let init = init_segment(&[vp9]);
    assert!(init.windows(8).any(|w| w == b"vpcC\x01\x00\x00\x00"));
}
