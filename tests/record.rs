//! Recording with the real binary: what ffmpeg publishes lands on disk
//! frame for frame and plays; audio-only streams too; nothing is ever
//! overwritten; SIGTERM finishes files and SIGKILL leaves them playable;
//! only the streams asked for are recorded; a full disk is counted while
//! players play on.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::probe::{decode_errors, first_video_frame_is_key, probe};
use common::{
    ServerProcess, avc_sequence_header, connect, ffmpeg_publish_with, finish, frame_number,
    http_get, prometheus_value, publish_paced, read_media, test_dir, tool_available, video_frame,
    wait_for,
};
use rtmp_server::media::flv;
use rtmp_server::protocol::amf0::{self, Value};
use rtmp_server::protocol::message::type_id;

fn recordings(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The `duration` the file's `onMetaData` says.
fn metadata_duration(file: &Path) -> f64 {
    let tags = flv::parse(&Bytes::from(std::fs::read(file).unwrap())).unwrap();
    let values = amf0::decode_all(&tags[0].payload).unwrap();
    let Some(Value::EcmaArray(props)) = values.get(1) else {
        panic!("no onMetaData first: {values:?}");
    };
    match props.iter().find(|(n, _)| n == "duration") {
        Some((_, Value::Number(d))) => *d,
        other => panic!("duration: {other:?}"),
    }
}

fn start(
    dir: &Path,
    extra: &[&str],
) -> (ServerProcess, std::net::SocketAddr, std::net::SocketAddr) {
    let record_dir = dir.join("rec");
    let mut args = vec!["-record-dir", record_dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (server, rtmp, http) = ServerProcess::start_with_http(&args);
    (server, rtmp, http)
}

#[test]
fn what_ffmpeg_publishes_is_recorded_frame_for_frame() {
    assert!(tool_available("ffmpeg") && tool_available("ffprobe"));
    let dir = test_dir("record-ffmpeg");
    let (mut server, rtmp, http) = start(&dir, &["-record-all"]);
    let sent = dir.join("sent.flv");
    let tee = format!("[f=flv]rtmp://{rtmp}/live/cam|[f=flv]{}", sent.display());
    let publisher = ffmpeg_publish_with(5, 25, &["-f", "tee", &tee]);
    let line = server.wait_line("recording live/cam to ");
    let file = file_in(&line);
    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    // live_cam_YYYYMMDD_HHMMSS.flv
    assert_eq!(name.len(), "live_cam_20261123_184500.flv".len(), "{name}");
    assert!(
        name.starts_with("live_cam_2") && name.ends_with(".flv"),
        "{name}"
    );
    // While it records, the API shows it.
    assert!(wait_for(Duration::from_secs(10), || {
        let (_, body) = http_get(http, "/api/streams/live/cam", None);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        json["recording"]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with(&name))
            && json["recording"]["bytes"].as_u64().unwrap_or(0) > 0
    }));
    assert_eq!(prometheus_value(http, "rtmp_recordings_active"), 1);
    assert!(
        finish(publisher, Duration::from_secs(30), "publisher")
            .status
            .success()
    );
    server.wait_line("recorded live/cam to ");
    assert!(wait_for(Duration::from_secs(5), || prometheus_value(
        http,
        "rtmp_recordings_active"
    ) == 0));
    assert_eq!(recordings(&dir.join("rec")), std::slice::from_ref(&file));
    let (recorded, published) = (probe(&file), probe(&sent));
    assert_eq!(recorded, published, "every frame of every track");
    assert!(first_video_frame_is_key(&file));
    assert_eq!(decode_errors(&file), "");
    let duration = metadata_duration(&file);
    assert!(
        (4.5..5.5).contains(&duration),
        "onMetaData duration {duration}"
    );
    // The finished file is listed.
    let (status, body) = http_get(http, "/api/recordings", None);
    assert_eq!(status, 200);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(listed["total"], 1, "{listed}");
    let entry = &listed["recordings"][0];
    assert_eq!(entry["name"], name.as_str());
    assert_eq!(entry["stream"], "live/cam");
    assert_eq!(entry["format"], "flv");
    assert_eq!(entry["bytes"], std::fs::metadata(&file).unwrap().len());
    let listed_ms = entry["duration_ms"].as_u64().unwrap();
    assert_eq!(listed_ms, (duration * 1000.0).round() as u64);
    assert!(humantime::parse_rfc3339(entry["start"].as_str().unwrap()).is_ok());
    assert_eq!(prometheus_value(http, "rtmp_recording_errors_total"), 0);
}

#[test]
fn an_audio_only_stream_is_recorded() {
    assert!(tool_available("ffmpeg") && tool_available("ffprobe"));
    let dir = test_dir("record-audio");
    let (mut server, rtmp, http) = start(&dir, &["-record-all"]);
    let sent = dir.join("sent.flv");
    let tee = format!("[f=flv]rtmp://{rtmp}/live/radio|[f=flv]{}", sent.display());
    let publisher = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", "4", "-map", "0:a", "-c:a", "aac", "-b:a", "64k"])
        .args(["-f", "tee", &tee])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Without keyframes, the file is written out every second all the same.
    let line = server.wait_line("recording live/radio to ");
    let file = file_in(&line);
    assert!(wait_for(Duration::from_secs(10), || {
        std::fs::metadata(&file).map_or(0, |m| m.len()) > 10_000
    }));
    let (_, body) = http_get(http, "/api/streams/live/radio", None);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        json["recording"]["duration_ms"].as_u64().unwrap() >= 1000,
        "{json}"
    );
    assert!(
        finish(publisher, Duration::from_secs(30), "publisher")
            .status
            .success()
    );
    server.wait_line("recorded live/radio to ");
    let files = recordings(&dir.join("rec"));
    assert_eq!(files, [file]);
    let recorded = probe(&files[0]);
    assert_eq!(recorded.codecs, ["aac"]);
    assert_eq!(recorded, probe(&sent));
    assert_eq!(decode_errors(&files[0]), "");
}

/// Publishes a header and two frames of `live/name` with the in-repo
/// client, and stops at once.
fn publish_briefly(rtmp: std::net::SocketAddr, name: &str) {
    let mut publisher = connect(rtmp, "live").unwrap();
    publisher.publish(name).unwrap();
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    publisher
        .send_video(0, &video_frame(0, true, 1000))
        .unwrap();
    publisher
        .send_video(40, &video_frame(1, false, 1000))
        .unwrap();
    publisher.delete_stream().unwrap();
}

#[test]
fn a_second_publish_makes_a_new_file_and_only_chosen_streams_are_kept() {
    let dir = test_dir("record-names");
    let (mut server, rtmp, _http) = start(&dir, &["-record", "live/cam,tv/*"]);
    // Republished at once, in the same second: two files, all of each.
    publish_briefly(rtmp, "cam");
    publish_briefly(rtmp, "cam");
    server.wait_line("recorded live/cam to ");
    server.wait_line("recorded live/cam to ");
    // A stream not chosen, live while a chosen one is recorded.
    let mut dog = connect(rtmp, "live").unwrap();
    dog.publish("dog").unwrap();
    dog.send_video(0, &avc_sequence_header()).unwrap();
    dog.send_video(0, &video_frame(0, true, 1000)).unwrap();
    let mut tv = connect(rtmp, "tv").unwrap();
    tv.publish("news").unwrap();
    tv.send_video(0, &avc_sequence_header()).unwrap();
    tv.send_video(0, &video_frame(0, true, 1000)).unwrap();
    server.wait_line("recording tv/news to ");
    drop(tv);
    server.wait_line("recorded tv/news to ");
    drop(dog);
    let files = recordings(&dir.join("rec"));
    assert_eq!(files.len(), 3, "{files:?}");
    for file in files
        .iter()
        .filter(|f| f.to_string_lossy().contains("live_cam"))
    {
        let tags = flv::parse(&Bytes::from(std::fs::read(file).unwrap())).unwrap();
        let kinds: Vec<u8> = tags.iter().map(|t| t.type_id).collect();
        assert_eq!(kinds, [18, 9, 9, 9], "metadata, header, two frames");
        assert_eq!(tags[3].timestamp, 40);
    }
    let log = server.drain_log().join("\n");
    assert!(!log.contains("recording live/dog"), "{log}");
}

#[test]
fn sigterm_finishes_the_file_and_sigkill_leaves_it_playable() {
    assert!(tool_available("ffmpeg") && tool_available("ffprobe"));
    for signal in ["TERM", "KILL"] {
        let dir = test_dir(&format!("record-{signal}"));
        let (mut server, rtmp, http) = start(&dir, &["-record-all"]);
        let publisher =
            ffmpeg_publish_with(30, 25, &["-f", "flv", &format!("rtmp://{rtmp}/live/cam")]);
        server.wait_line("recording live/cam to ");
        // Two seconds and more on disk.
        assert!(wait_for(Duration::from_secs(15), || {
            let (_, body) = http_get(http, "/api/streams/live/cam", None);
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            json["recording"]["duration_ms"].as_u64().unwrap_or(0) >= 2000
        }));
        Command::new("kill")
            .args([&format!("-{signal}"), &server.child.id().to_string()])
            .status()
            .unwrap();
        let status = server.child.wait().unwrap();
        let mut publisher = publisher;
        let _ = publisher.kill();
        let _ = publisher.wait();
        let files = recordings(&dir.join("rec"));
        assert_eq!(files.len(), 1, "{files:?}");
        let recorded = probe(&files[0]);
        assert!(recorded.video_frames >= 50, "{signal}: {recorded:?}");
        assert!(first_video_frame_is_key(&files[0]));
        if signal == "TERM" {
            assert_eq!(status.code(), Some(0));
            assert!(metadata_duration(&files[0]) >= 2.0, "finished");
            assert!(
                flv::parse(&Bytes::from(std::fs::read(&files[0]).unwrap())).is_ok(),
                "no partial tag"
            );
            assert_eq!(decode_errors(&files[0]), "");
        }
    }
}

#[test]
fn an_unusable_record_dir_is_a_startup_error() {
    let output = Command::new(common::BIN)
        .args([
            "-listen",
            "127.0.0.1:0",
            "-record-all",
            "-record-dir",
            "/proc/rtmp-rec",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("-record-dir"), "{stderr}");
}

/// A 1 MiB tmpfs mounted for the test, unmounted when dropped.
struct TinyDisk(PathBuf);

impl TinyDisk {
    fn mount(dir: &Path) -> TinyDisk {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs (needs root)");
        TinyDisk(dir.to_owned())
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_counted_while_players_play_on() {
    let dir = test_dir("record-full");
    let disk = TinyDisk::mount(&dir.join("rec"));
    let (mut server, rtmp, http) = start(&dir, &["-record-all"]);
    let mut publisher = connect(rtmp, "live").unwrap();
    publisher.publish("cam").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // 20 KiB frames at 25 fps: the disk is full within two seconds.
    let sending = publish_paced(publisher, 20_000, Arc::clone(&stop), Arc::default());
    let mut player = connect(rtmp, "live").unwrap();
    player.play("cam").unwrap();
    server.wait_line("recording of live/cam cannot write");
    assert!(prometheus_value(http, "rtmp_recording_errors_total") >= 1);
    // The player gets consecutive frames all along.
    let media = read_media(&mut player, 200).unwrap();
    let frames: Vec<u32> = media
        .iter()
        .filter(|m| m.type_id == type_id::VIDEO && m.payload.get(1) == Some(&1))
        .filter_map(|m| frame_number(&m.payload))
        .collect();
    assert!(frames.len() >= 90, "{}", frames.len());
    assert!(frames.windows(2).all(|w| w[1] == w[0] + 1), "{frames:?}");
    stop.store(true, Ordering::Relaxed);
    sending.join().unwrap();
    // What fit is kept: a file of frames up to the full disk, and no
    // empty files from the retries.
    let files = recordings(&disk.0);
    assert!((1..=2).contains(&files.len()), "{files:?}");
    let first = Bytes::from(std::fs::read(&files[0]).unwrap());
    let complete = match flv::parse(&first) {
        Ok(tags) => tags.len(),
        Err(flv::FlvError::Truncated { offset }) => {
            flv::parse(&first.slice(..offset)).unwrap().len()
        }
        Err(e) => panic!("{e}"),
    };
    assert!(complete > 20, "{complete} tags");
    let log = server.drain_log().join("\n");
    assert_eq!(
        log.matches("cannot write").count(),
        1,
        "logged once:\n{log}"
    );
    drop(disk);
}

#[test]
fn segments_split_at_keyframes_and_together_hold_the_stream() {
    assert!(tool_available("ffmpeg") && tool_available("ffprobe"));
    let dir = test_dir("record-segments");
    let (mut server, rtmp, _http) = start(
        &dir,
        &[
            "-record-all",
            "-segment-duration",
            "2s",
            "-segment-pattern",
            "%Y/%s_seg%02d",
        ],
    );
    let sent = dir.join("sent.flv");
    let tee = format!("[f=flv]rtmp://{rtmp}/live/cam|[f=flv]{}", sent.display());
    // A keyframe every second (25 frames).
    let publisher = ffmpeg_publish_with(7, 25, &["-f", "tee", &tee]);
    assert!(
        finish(publisher, Duration::from_secs(30), "publisher")
            .status
            .success()
    );
    // The last segment is finished when the session ends.
    assert!(wait_for(Duration::from_secs(10), || server
        .drain_log()
        .iter()
        .filter(|l| l.contains("recorded live/cam to "))
        .count()
        >= 3));
    let year = std::fs::read_dir(dir.join("rec"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(
        year.file_name().unwrap().len(),
        4,
        "a %Y directory: {year:?}"
    );
    let files = recordings(&year);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 3, "{names:?}");
    for (n, name) in names.iter().enumerate() {
        assert_eq!(*name, format!("live_cam_seg{:02}.flv", n + 1));
    }
    let (mut video, mut audio) = (0, 0);
    for (n, file) in files.iter().enumerate() {
        let probed = probe(file);
        video += probed.video_frames;
        audio += probed.audio_frames;
        assert!(first_video_frame_is_key(file), "{file:?}");
        assert_eq!(decode_errors(file), "", "{file:?} plays on its own");
        if n + 1 < files.len() {
            // At the first keyframe after 2 s: within one GOP of it.
            let length = common::probe::duration(file);
            assert!((1.9..3.1).contains(&length), "{file:?}: {length} s");
        }
    }
    let whole = probe(&sent);
    assert_eq!(
        (video, audio),
        (whole.video_frames, whole.audio_frames),
        "every frame, once"
    );
}

#[test]
fn retention_deletes_only_this_server_s_old_recordings() {
    let dir = test_dir("record-retention");
    // A recording made by this server...
    let (mut server, rtmp, _http) = start(&dir, &["-record-all"]);
    let mut publisher = connect(rtmp, "live").unwrap();
    publisher.publish("cam").unwrap();
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    publisher
        .send_video(0, &video_frame(0, true, 1000))
        .unwrap();
    publisher.delete_stream().unwrap();
    server.wait_line("recorded live/cam to ");
    drop(server);
    let ours = recordings(&dir.join("rec")).remove(0);
    // ... and an FLV that is not, both two days old, and a new one of ours.
    let foreign = dir.join("rec/foreign.flv");
    std::fs::write(&foreign, b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00").unwrap();
    let fresh = dir.join("rec/fresh.flv");
    std::fs::copy(&ours, &fresh).unwrap();
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 86_400);
    for file in [&ours, &foreign] {
        let handle = std::fs::File::options().write(true).open(file).unwrap();
        handle.set_modified(two_days_ago).unwrap();
    }
    let (mut server, _rtmp, _http) = start(&dir, &["-record-all", "-record-max-age", "1d"]);
    let line = server.find_line("deleted recording ");
    assert!(line.contains(ours.to_str().unwrap()), "{line}");
    assert!(line.contains("older than -record-max-age"), "{line}");
    assert!(!ours.exists());
    assert!(foreign.exists(), "not ours: kept");
    assert!(fresh.exists(), "not old: kept");
}

#[test]
fn mp4_recordings_hold_every_frame_and_survive_sigkill() {
    assert!(tool_available("ffmpeg") && tool_available("ffprobe"));
    let dir = test_dir("record-mp4");
    let (mut server, rtmp, http) = start(&dir, &["-record-all", "-record-format", "mp4"]);
    let sent = dir.join("sent.flv");
    let tee = format!("[f=flv]rtmp://{rtmp}/live/cam|[f=flv]{}", sent.display());
    let publisher = ffmpeg_publish_with(4, 25, &["-f", "tee", &tee]);
    let line = server.wait_line("recording live/cam to ");
    let file = file_in(&line);
    assert_eq!(file.extension().unwrap(), "mp4");
    assert!(
        finish(publisher, Duration::from_secs(30), "publisher")
            .status
            .success()
    );
    server.wait_line("recorded live/cam to ");
    let (recorded, published) = (probe(&file), probe(&sent));
    assert_eq!(recorded.codecs, ["aac", "h264"]);
    assert_eq!(
        recorded.video_frames, published.video_frames,
        "every video frame"
    );
    // Audio stamped before the first keyframe has no fragment to go in.
    assert!(
        published.audio_frames - recorded.audio_frames <= 2,
        "{recorded:?} {published:?}"
    );
    assert!(first_video_frame_is_key(&file));
    assert_eq!(decode_errors(&file), "");
    let (_, body) = http_get(http, "/api/recordings", None);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entry = &listed["recordings"][0];
    assert_eq!(entry["format"], "mp4", "{listed}");
    assert_eq!(entry["stream"], "live/cam");
    assert!(
        (3500..4500).contains(&entry["duration_ms"].as_u64().unwrap()),
        "{entry}"
    );
    drop(server);

    // Killed mid-stream, the file plays up to its last fragment.
    let dir = test_dir("record-mp4-kill");
    let (mut server, rtmp, http) = start(&dir, &["-record-all", "-record-format", "mp4"]);
    let publisher = ffmpeg_publish_with(30, 25, &["-f", "flv", &format!("rtmp://{rtmp}/live/cam")]);
    server.wait_line("recording live/cam to ");
    assert!(wait_for(Duration::from_secs(15), || {
        let (_, body) = http_get(http, "/api/streams/live/cam", None);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        json["recording"]["duration_ms"].as_u64().unwrap_or(0) >= 3000
    }));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let mut publisher = publisher;
    let _ = publisher.kill();
    let _ = publisher.wait();
    let files = recordings(&dir.join("rec"));
    let recorded = probe(&files[0]);
    assert!(recorded.video_frames >= 50, "{recorded:?}");
    assert!(first_video_frame_is_key(&files[0]));
}

#[test]
fn hevc_over_enhanced_rtmp_is_recorded_to_mp4_frame_for_frame() {
    assert!(tool_available("ffprobe"));
    let dir = test_dir("record-hevc");
    let (mut server, rtmp, _http) = start(&dir, &["-record-all"]);
    let sent = dir.join("sent.flv");
    publish_modern(
        rtmp,
        "hevc",
        &sent,
        4,
        common::HEVC_OPTIONS,
        &["-c:a", "aac"],
    );
    let line = server.wait_line("recorded live/hevc to ");
    let file = file_in(&line);
    // auto: HEVC over Enhanced RTMP goes to MP4.
    assert_eq!(file.extension().unwrap(), "mp4", "{line}");
    let recorded = probe(&file);
    assert_eq!(recorded.codecs, ["aac", "hevc"]);
    // The FLV's stream order is the demuxer's: compare the counts sorted.
    let mut sent_counts = common::modern_packet_counts(&sent);
    sent_counts.sort();
    let mut recorded_counts = vec![
        recorded.video_frames as usize,
        recorded.audio_frames as usize,
    ];
    recorded_counts.sort();
    assert_eq!(recorded_counts, sent_counts, "every frame ffmpeg sent");
    assert!(first_video_frame_is_key(&file));
    assert_eq!(decode_errors(&file), "");
}

/// The file a "recording/recorded KEY to PATH[: ...]" log line names.
fn file_in(line: &str) -> PathBuf {
    let after = line.split(" to ").nth(1).unwrap_or_default();
    PathBuf::from(after.split(": ").next().unwrap_or_default())
}

/// A modern ffmpeg publishing 25 fps test video (a keyframe a second,
/// `video` its codec options) and 48 kHz sine audio (`audio`) for
/// `seconds` to `live/NAME` at `rtmp`, and into the FLV file `sent`.
fn publish_modern(
    rtmp: std::net::SocketAddr,
    name: &str,
    sent: &Path,
    seconds: u32,
    video: &[&str],
    audio: &[&str],
) {
    let tee = format!("[f=flv]rtmp://{rtmp}/live/{name}|[f=flv]{}", sent.display());
    let output = common::modern_encoder(seconds, video, audio, &["-f", "tee", &tee])
        .output()
        .unwrap();
    assert!(output.status.success(), "{name}: {output:?}");
}

#[test]
fn av1_and_vp9_with_opus_are_recorded_to_mp4_frame_for_frame() {
    for (name, video) in [("av1", common::AV1_OPTIONS), ("vp9", common::VP9_OPTIONS)] {
        let dir = test_dir(&format!("record-{name}"));
        let (mut server, rtmp, _http) = start(&dir, &["-record-all"]);
        let sent = dir.join("sent.flv");
        publish_modern(rtmp, name, &sent, 3, video, &["-c:a", "libopus"]);
        let line = server.wait_line(&format!("recorded live/{name} to "));
        let file = file_in(&line);
        assert_eq!(file.extension().unwrap(), "mp4", "{line}");
        let mut sent_counts = common::modern_packet_counts(&sent);
        let mut recorded_counts = common::modern_packet_counts(&file);
        sent_counts.sort();
        recorded_counts.sort();
        assert_eq!(recorded_counts.len(), 2, "{name}: two tracks");
        // Opus stamped before the first keyframe has no fragment to go in.
        let (audio_sent, video_sent) = (
            sent_counts[1].max(sent_counts[0]),
            sent_counts[0].min(sent_counts[1]),
        );
        let video_recorded = recorded_counts[0].min(recorded_counts[1]);
        let audio_recorded = recorded_counts[0].max(recorded_counts[1]);
        assert_eq!(video_recorded, video_sent, "{name}: every video frame");
        assert!(
            audio_sent - audio_recorded <= 3,
            "{name}: {recorded_counts:?} of {sent_counts:?}"
        );
        assert_eq!(
            common::probe::decode_errors_with(&common::modern_ffmpeg(), &file),
            "",
            "{name}"
        );
    }
}

#[test]
fn a_publisher_killed_mid_stream_leaves_a_finished_file() {
    assert!(tool_available("ffmpeg") && tool_available("ffprobe"));
    let dir = test_dir("record-publisher-killed");
    let (mut server, rtmp, _http) = start(&dir, &["-record-all"]);
    let mut publisher =
        ffmpeg_publish_with(30, 25, &["-f", "flv", &format!("rtmp://{rtmp}/live/cam")]);
    server.wait_line("recording live/cam to ");
    // Some seconds in, the encoder dies without a word.
    assert!(wait_for(Duration::from_secs(15), || {
        recordings(&dir.join("rec"))
            .first()
            .and_then(|f| std::fs::metadata(f).ok())
            .is_some_and(|m| m.len() > 100_000)
    }));
    publisher.kill().unwrap();
    publisher.wait().unwrap();
    server.wait_line("recorded live/cam to ");
    let file = recordings(&dir.join("rec")).remove(0);
    assert!(metadata_duration(&file) > 1.0, "finished: duration patched");
    assert!(flv::parse(&Bytes::from(std::fs::read(&file).unwrap())).is_ok());
    assert_eq!(decode_errors(&file), "");
}
