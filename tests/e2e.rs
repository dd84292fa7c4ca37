//! End-to-end tests with real clients: ffmpeg publishes a synthetic
//! H.264 + AAC `lavfi` stream (and records what it sent), ffmpeg and
//! rtmpdump play it, and ffprobe compares what came out with what went in.
//!
//! `scripts/test.sh` installs the tools and sets `RTMP_SERVER_E2E=require`,
//! so a missing tool fails the run there; plain `cargo test` skips instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use common::probe::{decode_errors, first_video_frame_is_key, probe};
use common::{TestServer, finish, tool_available, wait_for};

fn work_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// ffmpeg publishing `seconds` of 25 fps test video and 44.1 kHz sine
/// audio to `url`, also recording exactly what it sent to `record`.
fn spawn_publisher(url: &str, record: &Path, seconds: u32, gop: u32) -> Child {
    let tee = format!("[f=flv]{url}|[f=flv]{}", record.display());
    common::ffmpeg_publish_with(seconds, gop, &["-f", "tee", &tee])
}

fn spawn_ffmpeg_player(url: &str, out: &Path) -> Child {
    spawn_ffmpeg_player_with(&[], url, out)
}

fn spawn_ffmpeg_player_with(input_options: &[&str], url: &str, out: &Path) -> Child {
    common::ffmpeg_play_with(input_options, url, out)
}

fn spawn_rtmpdump(url: &str, out: &Path) -> Child {
    Command::new("rtmpdump")
        .args(["-q", "--live", "-m", "3", "-r", url, "-o"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rtmpdump")
}

fn assert_clean_copy(file: &Path) {
    assert!(
        first_video_frame_is_key(file),
        "{}: first video frame is not a keyframe",
        file.display()
    );
    let errors = decode_errors(file);
    assert!(
        errors.is_empty(),
        "{} decodes with errors: {errors}",
        file.display()
    );
}

#[test]
fn ffmpeg_and_rtmpdump_players_receive_exactly_what_ffmpeg_published() {
    if !tool_available("ffmpeg") || !tool_available("ffprobe") || !tool_available("rtmpdump") {
        return;
    }
    let dir = work_dir("exact");
    let server = TestServer::start();
    let url = format!("rtmp://{}/live/e2e", server.addr);
    // Both players wait for the publisher: they must get every frame.
    let ffmpeg_player = spawn_ffmpeg_player(&url, &dir.join("ffmpeg.flv"));
    let rtmpdump = spawn_rtmpdump(&url, &dir.join("rtmpdump.flv"));
    assert!(wait_for(Duration::from_secs(10), || {
        server
            .registry()
            .get("live/e2e")
            .is_some_and(|s| s.player_count() == 2)
    }));
    let publisher = spawn_publisher(&url, &dir.join("sent.flv"), 4, 25);
    let published = finish(publisher, Duration::from_secs(30), "publisher");
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    // UnpublishNotify ends the ffmpeg player on its own.
    let played = finish(ffmpeg_player, Duration::from_secs(10), "ffmpeg player");
    assert!(
        played.status.success(),
        "{}",
        String::from_utf8_lossy(&played.stderr)
    );
    finish(rtmpdump, Duration::from_secs(15), "rtmpdump");

    let sent = probe(&dir.join("sent.flv"));
    assert_eq!(sent.codecs, vec!["aac", "h264"]);
    assert_eq!(sent.video_frames, 100);
    for name in ["ffmpeg.flv", "rtmpdump.flv"] {
        let file = dir.join(name);
        assert_eq!(probe(&file), sent, "{name} differs from what was published");
        assert_clean_copy(&file);
    }
}

#[test]
fn late_ffmpeg_player_starts_on_the_cached_keyframe() {
    if !tool_available("ffmpeg") || !tool_available("ffprobe") {
        return;
    }
    let dir = work_dir("late");
    let server = TestServer::start();
    let url = format!("rtmp://{}/live/late", server.addr);
    // 6 s at 25 fps with a keyframe every 2 s.
    let publisher = spawn_publisher(&url, &dir.join("sent.flv"), 6, 50);
    assert!(wait_for(Duration::from_secs(10), || {
        server
            .registry()
            .get("live/late")
            .is_some_and(|s| s.input_id().is_some())
    }));
    thread::sleep(Duration::from_millis(2500));
    let player = spawn_ffmpeg_player(&url, &dir.join("late.flv"));
    finish(publisher, Duration::from_secs(30), "publisher");
    let played = finish(player, Duration::from_secs(10), "late player");
    assert!(
        played.status.success(),
        "{}",
        String::from_utf8_lossy(&played.stderr)
    );

    let sent = probe(&dir.join("sent.flv"));
    let got = probe(&dir.join("late.flv"));
    assert_eq!(got.codecs, vec!["aac", "h264"]);
    // Joined mid-GOP 2.5 s into 6 s: the GOP cache starts it at the
    // keyframe of 2 s (4 s on a very slow machine) and it then gets every
    // frame to the end, so it holds whole GOPs of 50 frames.
    assert_eq!(sent.video_frames, 150);
    assert!(
        got.video_frames == 100 || got.video_frames == 50,
        "{got:?} of {sent:?}"
    );
    assert_clean_copy(&dir.join("late.flv"));
}

#[test]
fn a_stream_published_here_reaches_nginx_rtmp_through_a_relay() {
    if !tool_available("ffmpeg") || !tool_available("ffprobe") || !common::NginxRtmp::available() {
        return;
    }
    let dir = work_dir("relay-nginx");
    let nginx = common::NginxRtmp::start("");
    let origin = origin_relaying_to(nginx.addr());
    let url = format!("rtmp://{}/live/relayed", origin.addr);
    let far = format!("rtmp://{}/live/relayed", nginx.addr());
    // The player waits at nginx-rtmp for the relay to publish; it gives
    // up 5 s after the last data (nginx-rtmp keeps it waiting for a new
    // publisher after the end), its file complete either way.
    let player = spawn_ffmpeg_player_with(&["-rw_timeout", "5000000"], &far, &dir.join("far.flv"));
    assert!(
        wait_for(Duration::from_secs(10), || nginx
            .error_log()
            .contains("play: name='relayed'")),
        "the player did not reach nginx-rtmp"
    );
    let publisher = spawn_publisher(&url, &dir.join("sent.flv"), 4, 25);
    let published = finish(publisher, Duration::from_secs(30), "publisher");
    assert!(published.status.success());
    assert!(metrics_sent(&origin) > 0, "nothing was relayed");
    finish(player, Duration::from_secs(20), "player at nginx-rtmp");
    assert_relayed_copy(&dir);
}

fn metrics_sent(server: &TestServer) -> u64 {
    rtmp_server::metrics::get(&server.handle().metrics().relay_messages_sent)
}

/// Our server relaying every stream to `rtmp://{addr}/live`.
fn origin_relaying_to(addr: std::net::SocketAddr) -> TestServer {
    let to = vec![format!("rtmp://{addr}/live")];
    TestServer::with(|c| {
        c.relays = rtmp_server::relay::target::RelayTargets::parse(&to, &[]).unwrap()
    })
}

/// What a player at a relay's destination recorded (`far.flv`) against
/// what ffmpeg published (`sent.flv`): the same codecs, every frame or at
/// most a GOP (25 frames) short (the relay starts from the origin's cached
/// GOP, all of it when it joins within the first 1 s GOP), keyframe
/// first, decoding cleanly.
fn assert_relayed_copy(dir: &Path) {
    let sent = probe(&dir.join("sent.flv"));
    let got = probe(&dir.join("far.flv"));
    assert_eq!(got.codecs, sent.codecs, "{got:?}");
    assert!(
        got.video_frames + 25 >= sent.video_frames && got.video_frames <= sent.video_frames,
        "{got:?} of {sent:?}"
    );
    assert_clean_copy(&dir.join("far.flv"));
}

#[test]
fn a_stream_published_here_reaches_a_second_instance_through_a_relay() {
    if !tool_available("ffmpeg") || !tool_available("ffprobe") {
        return;
    }
    let dir = work_dir("relay-edge");
    let edge = TestServer::start();
    let origin = origin_relaying_to(edge.addr);
    let far = format!("rtmp://{}/live/edge", edge.addr);
    // Waits at the edge for the relay; ends when the relay unpublishes.
    let player = spawn_ffmpeg_player(&far, &dir.join("far.flv"));
    assert!(wait_for(Duration::from_secs(10), || {
        edge.registry()
            .get("live/edge")
            .is_some_and(|s| s.player_count() == 1)
    }));
    let url = format!("rtmp://{}/live/edge", origin.addr);
    let publisher = spawn_publisher(&url, &dir.join("sent.flv"), 4, 25);
    let published = finish(publisher, Duration::from_secs(30), "publisher");
    assert!(published.status.success());
    let played = finish(player, Duration::from_secs(15), "player at the edge");
    assert!(
        played.status.success(),
        "{}",
        String::from_utf8_lossy(&played.stderr)
    );
    assert_relayed_copy(&dir);
}
