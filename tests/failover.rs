//! `-source` with real clients: two ffmpeg encoders at different
//! resolutions on `live/show.main` and `live/show.backup`, an ffmpeg
//! player on `live/show` writing FLV while the main encoder is killed and
//! restarted (a failover and a failback), ffplay playing along; and a
//! pull from nginx-rtmp.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::probe::*;
use common::*;
use serde_json::Value;

/// ffmpeg publishing a `size` test picture at 25 fps (a keyframe a
/// second) and a `tone` Hz sine for `seconds`, paced, to `url`.
fn camera(url: &str, size: &str, tone: u32, seconds: u32) -> Child {
    ffmpeg_encoder(size, tone, seconds, 25, &["-f", "flv", url])
}

fn stream(http: SocketAddr, key: &str) -> Value {
    let (status, body) = http_get(http, &format!("/api/streams/{key}"), None);
    if status != 200 {
        return Value::Null;
    }
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

fn wait_stream(http: SocketAddr, key: &str, what: &str, cond: impl Fn(&Value) -> bool) {
    let mut last = Value::Null;
    let met = wait_for(Duration::from_secs(15), || {
        last = stream(http, key);
        cond(&last)
    });
    assert!(met, "{key} never {what}: {last:#}");
}

/// Bytes the first player of `key` has been sent.
fn sent(http: SocketAddr, key: &str) -> u64 {
    stream(http, key)["subscribers"][0]["bytes_sent"]
        .as_u64()
        .unwrap_or(0)
}

/// Waits until the player of `key` has been sent `bytes` more.
fn wait_sent(http: SocketAddr, key: &str, bytes: u64) {
    let from = sent(http, key);
    assert!(
        wait_for(Duration::from_secs(15), || sent(http, key) >= from + bytes),
        "the player of {key} got no more media"
    );
}

/// The sizes of the frames a decoder gets from `file`, in order, each
/// once per run of frames.
fn picture_sizes(file: &Path) -> Vec<String> {
    let lines = ffprobe(
        file,
        &[
            "-select_streams",
            "v",
            "-show_entries",
            "frame=width,height",
        ],
    );
    let mut sizes: Vec<String> = Vec::new();
    for line in lines {
        // A frame with side data gets an empty field more.
        let line = line.trim_end_matches(',').to_owned();
        if sizes.last() != Some(&line) {
            sizes.push(line);
        }
    }
    sizes
}

/// Packet timestamps (ms) of the stream `kind` (`v` or `a`) of `file`.
fn timestamps(file: &Path, kind: &str) -> Vec<i64> {
    ffprobe(
        file,
        &["-select_streams", kind, "-show_entries", "packet=pts"],
    )
    .iter()
    .filter_map(|l| l.trim().parse().ok())
    .collect()
}

#[test]
fn a_player_keeps_playing_through_a_failover_and_a_failback() {
    assert!(tool_available("ffmpeg") && tool_available("ffprobe") && tool_available("ffplay"));
    let dir = test_dir("failover");
    let (mut server, hook_lines) = ServerProcess::start_with_stdout(&[
        "-listen",
        "127.0.0.1:0",
        "-metrics-addr",
        "127.0.0.1:0",
        "-source",
        "live/show=live/show.main,live/show.backup",
        "-input-timeout",
        "1s",
        "-failback-delay",
        "2s",
        "-hook-stdio-format",
        "json",
        "-record",
        "live/show",
        "-record-dir",
        dir.join("rec").to_str().unwrap(),
    ]);
    let rtmp = server.listen_addr();
    let http = server.metrics_addr();
    let url = |name: &str| format!("rtmp://{rtmp}/live/{name}");
    let mut main = camera(&url("show.main"), "1280x720", 440, 60);
    let mut backup = camera(&url("show.backup"), "640x360", 880, 60);
    wait_stream(http, "live/show", "fed by main", |s| s["active_input"] == 0);
    let out = dir.join("show.flv");
    let player = ffmpeg_play_with(&["-rw_timeout", "10000000", "-t", "12"], &url("show"), &out);
    // And ffplay, decoding as it plays (no window, no sound card): it
    // must say nothing at its error level.
    let ffplay = Command::new("ffplay")
        .args(["-hide_banner", "-loglevel", "error", "-nodisp", "-autoexit"])
        .arg(url("show"))
        .env("SDL_VIDEODRIVER", "dummy")
        .env("SDL_AUDIODRIVER", "dummy")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffplay");
    wait_stream(http, "live/show", "played", |s| {
        s["subscribers"][0]["bytes_sent"].as_u64() > Some(100_000)
            && s["subscribers"][1]["bytes_sent"].as_u64() > Some(100_000)
    });

    main.kill().unwrap();
    main.wait().unwrap();
    wait_stream(http, "live/show", "failed over", |s| {
        s["active_input"] == 1 && s["inputs"][0]["status"] == "idle"
    });
    wait_sent(http, "live/show", 100_000);
    let mut main = camera(&url("show.main"), "1280x720", 440, 60);
    wait_stream(http, "live/show", "failed back", |s| s["active_input"] == 0);
    let played = finish(player, Duration::from_secs(30), "the player");
    assert!(
        played.status.success(),
        "{}",
        String::from_utf8_lossy(&played.stderr)
    );
    // (ffplay's -t never ends a live stream: it is stopped here.)
    let mut ffplay = ffplay;
    assert!(ffplay.try_wait().unwrap().is_none(), "ffplay still plays");
    ffplay.kill().unwrap();
    let watched = ffplay.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&watched.stderr);
    assert!(said.trim().is_empty(), "ffplay: {said}");

    // Both pictures, in order, decoding cleanly, timestamps continuous.
    assert!(first_video_frame_is_key(&out));
    assert_eq!(decode_errors(&out), "", "decodes without errors");
    assert_eq!(
        picture_sizes(&out),
        ["1280,720", "640,360", "1280,720"],
        "main, backup, main"
    );
    for kind in ["v", "a"] {
        let ts = timestamps(&out, kind);
        assert!(ts.len() > 100, "{kind}: {} packets", ts.len());
        let worst = ts.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        let backwards = ts.windows(2).filter(|w| w[1] <= w[0]).count();
        assert_eq!(backwards, 0, "{kind}: timestamps go back");
        assert!(worst <= 150, "{kind}: a gap of {worst} ms");
    }

    // The switches are in the session's history once it ends.
    main.kill().unwrap();
    backup.kill().unwrap();
    let _ = (main.wait(), backup.wait());
    // (The inputs' own sessions are there too.)
    let mut session = Value::Null;
    assert!(wait_for(Duration::from_secs(10), || {
        let history = http_json(http, "/api/history");
        let sessions = history["sessions"].as_array().cloned().unwrap_or_default();
        match sessions.into_iter().find(|s| s["key"] == "live/show") {
            Some(found) => {
                session = found;
                true
            }
            None => false,
        }
    }));
    assert_eq!(session["reason"], "source_idle");
    let switches: Vec<(i64, i64, &str)> = session["switches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["from"].as_i64().unwrap(),
                s["to"].as_i64().unwrap(),
                s["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(switches, [(0, 1, "failover"), (1, 0, "failback")]);
    assert_eq!(prometheus_value(http, "rtmp_input_switches_total"), 2);
    // The recording followed: one FLV file with all three parts.
    let recordings: Vec<_> = std::fs::read_dir(dir.join("rec"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(recordings.len(), 1, "{recordings:?}");
    let recorded = &recordings[0];
    assert!(recorded.to_string_lossy().contains("live_show_"));
    assert_eq!(decode_errors(recorded), "");
    assert_eq!(picture_sizes(recorded), ["1280,720", "640,360", "1280,720"]);
    // Hooks were told, in order.
    server.terminate();
    let events: Vec<Value> = hook_lines
        .try_iter()
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .filter(|e| e["stream_key"] == "live/show")
        .collect();
    // The session started with the main encoder's connection.
    let start = events
        .iter()
        .find(|e| e["type"] == "publish_start")
        .unwrap();
    assert!(
        start["conn_id"].as_u64().is_some_and(|id| id < 100),
        "{start}"
    );
    assert!(
        start["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let told: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "input_switched")
        .collect();
    assert_eq!(told.len(), 2, "{told:?}");
    assert_eq!(told[0]["stream_key"], "live/show");
    assert_eq!(told[0]["data"]["reason"], "failover");
    assert_eq!(told[0]["data"]["to_source"], "live/show.backup");
    assert_eq!(told[1]["data"]["reason"], "failback");
}

#[test]
fn a_stream_pulled_from_nginx_rtmp_plays_cleanly() {
    assert!(tool_available("ffmpeg") && NginxRtmp::available());
    let nginx = NginxRtmp::start("");
    let upstream = format!("rtmp://{}/live/cam", nginx.addr());
    let camera = ffmpeg_publish(&upstream, 30);
    let source = format!("live/cam={upstream}");
    let (_server, rtmp, _http) = ServerProcess::start_with_http(&["-source", &source]);
    let dir = test_dir("pull-nginx");
    let out = dir.join("cam.flv");
    // Waits for nginx to have the stream: the pull retries until it does.
    let player = ffmpeg_play_with(
        &["-rw_timeout", "20000000", "-t", "4"],
        &format!("rtmp://{rtmp}/live/cam"),
        &out,
    );
    let played = finish(player, Duration::from_secs(40), "the player");
    assert!(
        played.status.success(),
        "{}",
        String::from_utf8_lossy(&played.stderr)
    );
    let got = probe(&out);
    assert_eq!(got.codecs, ["aac", "h264"]);
    assert!(got.video_frames >= 80, "{got:?}");
    assert!(first_video_frame_is_key(&out));
    assert_eq!(decode_errors(&out), "");
    let mut camera = camera;
    let _ = camera.kill();
    let _ = camera.wait();
}
