//! The fragmented-MP4 muxer against ffmpeg: an H.264 (with B-frames) +
//! AAC stream ffmpeg wrote as FLV, muxed to fMP4 tag by tag, reads back in
//! ffprobe with every frame, keyframe first, and decodes cleanly.

mod common;

use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use common::probe::{decode_errors, first_video_frame_is_key, probe, video_pts};
use common::{test_dir, tool_available};
use rtmp_server::media::flv;
use rtmp_server::media::fmp4_mux::{Fmp4Muxer, Output};

/// Muxes the FLV file `flv` to the fMP4 file `mp4`; the fragments' count.
fn remux(flv_path: &Path, mp4: &Path, video: bool) -> usize {
    let tags = flv::parse(&Bytes::from(std::fs::read(flv_path).unwrap())).unwrap();
    let mut muxer = Fmp4Muxer::new(video, true, 320, 240);
    let mut out = Vec::new();
    let mut fragments = 0;
    let mut write = |outputs: Vec<Output>| {
        for output in outputs {
            match output {
                Output::Init(init) => out.extend_from_slice(&init),
                Output::Fragment(fragment) => {
                    fragments += 1;
                    out.extend_from_slice(&fragment.header);
                    for data in &fragment.data {
                        out.extend_from_slice(data);
                    }
                }
            }
        }
    };
    for tag in &tags {
        let ts = u64::from(tag.timestamp);
        match tag.type_id {
            9 => write(muxer.push_video(ts, tag.payload[0] >> 4 == 1, &tag.payload)),
            8 => write(muxer.push_audio(ts, &tag.payload)),
            _ => {}
        }
    }
    write(muxer.finish());
    std::fs::write(mp4, out).unwrap();
    fragments
}

fn encode(out: &Path, args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn h264_with_b_frames_and_aac_read_back_frame_for_frame() {
    assert!(tool_available("ffmpeg") && tool_available("ffprobe"));
    let dir = test_dir("fmp4-avc");
    let flv_file = dir.join("in.flv");
    encode(
        &flv_file,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "4",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-bf",
            "2",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-f",
            "flv",
        ],
    );
    let mp4 = dir.join("out.mp4");
    let fragments = remux(&flv_file, &mp4, true);
    assert_eq!(fragments, 4, "a fragment per GOP");
    assert_eq!(probe(&mp4), probe(&flv_file), "codecs and every frame");
    assert!(first_video_frame_is_key(&mp4));
    assert_eq!(decode_errors(&mp4), "");
    // Presentation times as in the FLV (B-frames reordered right).
    assert_eq!(video_pts(&mp4), video_pts(&flv_file));
}

#[test]
fn audio_only_is_cut_every_second() {
    assert!(tool_available("ffmpeg") && tool_available("ffprobe"));
    let dir = test_dir("fmp4-aac");
    let flv_file = dir.join("in.flv");
    encode(
        &flv_file,
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "3",
            "-c:a",
            "aac",
            "-f",
            "flv",
        ],
    );
    let mp4 = dir.join("out.mp4");
    let fragments = remux(&flv_file, &mp4, false);
    assert!((3..=4).contains(&fragments), "{fragments}");
    assert_eq!(probe(&mp4), probe(&flv_file));
    assert_eq!(decode_errors(&mp4), "");
}
