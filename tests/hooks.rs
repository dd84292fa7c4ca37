//! Hooks with the real binary: a script, a webhook receiver and standard
//! output all get every event of a refused publish, a publish, a play and
//! their ends, in order and with the documented fields; a hanging script
//! is killed at the timeout; a flood of events is dropped and counted
//! while media keeps flowing.

mod common;

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;

use common::{
    ServerProcess, connect, ffmpeg_play, ffmpeg_publish, finish, frame_number, prometheus_value,
    publish_paced, read_media, test_dir, tool_available, wait_for,
};
use rtmp_server::protocol::message::type_id;

const SECRET: &str = "h00k-s3cret";

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A webhook receiver: answers 204 and keeps each JSON body, in order.
fn webhook_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", server.server_addr().to_ip().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            request.as_reader().read_to_string(&mut body).unwrap();
            let is_json = request
                .headers()
                .iter()
                .any(|h| h.field.equiv("Content-Type") && h.value == "application/json");
            assert!(is_json, "webhooks send JSON");
            sink.lock().push(serde_json::from_str(&body).unwrap());
            let _ = request.respond(tiny_http::Response::empty(204));
        }
    });
    (url, got)
}

fn types_of(events: &[Value], conn: u64) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["conn_id"] == conn)
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

fn conn_of(events: &[Value], event_type: &str) -> u64 {
    events
        .iter()
        .find(|e| e["type"] == event_type)
        .and_then(|e| e["conn_id"].as_u64())
        .unwrap_or_else(|| panic!("no {event_type} in {events:#?}"))
}

/// The events of the scenario, checked for order and fields.
fn check_scenario(events: &[Value]) {
    let refused = conn_of(events, "auth_failed");
    let publisher = conn_of(events, "publish_start");
    let player = conn_of(events, "play_start");
    assert_eq!(
        types_of(events, refused),
        ["connection_accept", "auth_failed", "connection_close"]
    );
    assert_eq!(
        types_of(events, publisher),
        [
            "connection_accept",
            "publish_start",
            "publish_stop",
            "connection_close"
        ]
    );
    assert_eq!(
        types_of(events, player),
        [
            "connection_accept",
            "play_start",
            "play_stop",
            "connection_close"
        ]
    );
    let counts: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "subscriber_count")
        .map(|e| e["data"]["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 0]);
    let codecs = events
        .iter()
        .rfind(|e| e["type"] == "codec_detected")
        .expect("codec_detected");
    assert_eq!(codecs["data"]["video_codec"], "H264");
    assert_eq!(codecs["data"]["audio_codec"], "AAC");
    let failed = events.iter().find(|e| e["type"] == "auth_failed").unwrap();
    assert_eq!(failed["data"]["action"], "publish");
    assert_eq!(failed["data"]["error"], "wrong_token");
    let stop = events.iter().find(|e| e["type"] == "publish_stop").unwrap();
    assert_eq!(stop["data"]["reason"], "publisher_closed");
    assert!(stop["data"]["bytes_in"].as_u64().unwrap() > 10_000);
    assert!(stop["data"]["duration_sec"].as_f64().unwrap() > 1.0);
    let play_stop = events.iter().find(|e| e["type"] == "play_stop").unwrap();
    assert!(play_stop["data"]["bytes_sent"].as_u64().unwrap() > 10_000);
    let mut last = String::new();
    for event in events {
        let fields: Vec<&String> = event.as_object().unwrap().keys().collect();
        assert_eq!(
            fields,
            [
                "conn_id",
                "data",
                "remote_addr",
                "stream_key",
                "timestamp",
                "type"
            ]
        );
        let at = event["timestamp"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(at).is_ok(), "{at}");
        assert!(at >= last.as_str(), "timestamps in order");
        last = at.to_owned();
        if let Some(key) = event["stream_key"].as_str() {
            assert_eq!(key, "live/cam");
        }
        if let Some(addr) = event["remote_addr"].as_str() {
            assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        }
    }
}

fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_script_a_webhook_and_stdout_get_every_event_in_order() {
    assert!(tool_available("ffmpeg") && tool_available("ffprobe"));
    let dir = test_dir("hooks-scenario");
    let recorder = script(
        &dir,
        "record.sh",
        &format!(
            "printf '%s|%s|%s\\n' \"$RTMP_EVENT_TYPE\" \"$RTMP_STREAM_KEY\" \"$RTMP_COUNT\" >> {}\ncat >> {}",
            dir.join("env.log").display(),
            dir.join("json.log").display()
        ),
    );
    let (url, received) = webhook_receiver();
    let entry = format!("live/cam={SECRET}");
    let script_hook = format!("*={}", recorder.display());
    let webhook = format!("*={url}");
    let (mut server, stdout) = ServerProcess::start_with_stdout(&[
        "-listen",
        "127.0.0.1:0",
        "-auth-mode",
        "token",
        "-auth-token",
        &entry,
        "-auth-play",
        "false",
        "-hook-script",
        &script_hook,
        "-hook-webhook",
        &webhook,
        "-hook-stdio-format",
        "json",
    ]);
    let rtmp = server.listen_addr();
    let mut guesser = connect(rtmp, "live").unwrap();
    assert!(guesser.publish("cam?token=guess").is_err());
    drop(guesser);
    let publisher = ffmpeg_publish(&format!("rtmp://{rtmp}/live/cam?token={SECRET}"), 4);
    server.wait_line("publishing live/cam");
    let player = ffmpeg_play(&format!("rtmp://{rtmp}/live/cam"), &dir.join("played.flv"));
    assert!(
        finish(publisher, Duration::from_secs(30), "publisher")
            .status
            .success()
    );
    finish(player, Duration::from_secs(20), "player");
    let closes = |events: &[Value]| {
        events
            .iter()
            .filter(|e| e["type"] == "connection_close")
            .count()
    };
    assert!(
        wait_for(Duration::from_secs(20), || closes(&received.lock()) == 3),
        "the webhook got {:#?}",
        received.lock()
    );
    let webhook_events = received.lock().clone();
    check_scenario(&webhook_events);
    let json_log = dir.join("json.log");
    assert!(wait_for(Duration::from_secs(20), || {
        parse_lines(&std::fs::read_to_string(&json_log).unwrap_or_default()).len()
            == webhook_events.len()
    }));
    let script_events = parse_lines(&std::fs::read_to_string(&json_log).unwrap());
    assert_eq!(script_events, webhook_events, "the script saw the same");
    let env_log = std::fs::read_to_string(dir.join("env.log")).unwrap();
    let env_lines: Vec<&str> = env_log.lines().collect();
    assert_eq!(env_lines.len(), webhook_events.len());
    assert!(
        env_lines.contains(&"subscriber_count|live/cam|1"),
        "{env_log}"
    );
    assert!(env_lines.contains(&"publish_start|live/cam|"), "{env_log}");
    let mut printed = Vec::new();
    assert!(wait_for(Duration::from_secs(20), || {
        printed.extend(stdout.try_iter());
        printed.len() == webhook_events.len()
    }));
    let stdout_events = parse_lines(&printed.join("\n"));
    assert_eq!(stdout_events, webhook_events, "stdout saw the same");
    let everything = format!("{printed:?}{env_log}{:?}", server.drain_log());
    assert!(
        !everything.contains(SECRET),
        "a hook output shows the token"
    );
    assert!(!everything.contains("guess"), "or the guessed one");
}

#[test]
fn a_hanging_script_is_killed_at_the_timeout() {
    let dir = test_dir("hooks-hang");
    let pid_file = dir.join("pid");
    let hang = script(
        &dir,
        "hang.sh",
        &format!("echo $$ > {}\nsleep 1000", pid_file.display()),
    );
    let hook = format!("publish_start={}", hang.display());
    let (mut server, rtmp, http) =
        ServerProcess::start_with_http(&["-hook-script", &hook, "-hook-timeout", "1s"]);
    let mut publisher = connect(rtmp, "live").unwrap();
    publisher.publish("cam").unwrap();
    server.wait_line("stopped for publish_start: still running at -hook-timeout 1s");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    let gone = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z ")
    };
    assert!(
        wait_for(Duration::from_secs(5), gone),
        "the script still runs"
    );
    assert_eq!(prometheus_value(http, "rtmp_hooks_timed_out_total"), 1);
    assert_eq!(prometheus_value(http, "rtmp_hooks_fired_total"), 1);
}

#[test]
fn a_flood_of_events_is_dropped_and_counted_while_media_flows() {
    let dir = test_dir("hooks-flood");
    let slow = script(&dir, "slow.sh", "sleep 1");
    let hook = format!("*={}", slow.display());
    let (mut server, rtmp, http) =
        ServerProcess::start_with_http(&["-hook-script", &hook, "-hook-concurrency", "1"]);
    let mut publisher = connect(rtmp, "live").unwrap();
    publisher.publish("cam").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sending = publish_paced(publisher, 2000, Arc::clone(&stop), Arc::default());
    let mut player = connect(rtmp, "live").unwrap();
    player.play("cam").unwrap();
    // 600 connections opened and closed: 1200 events for one slow hook.
    for _ in 0..600 {
        drop(TcpStream::connect(rtmp).unwrap());
    }
    assert!(wait_for(Duration::from_secs(10), || prometheus_value(
        http,
        "rtmp_hooks_dropped_total"
    ) > 500));
    // Media kept flowing: the player gets consecutive frames.
    let media = read_media(&mut player, 100).unwrap();
    let frames: Vec<u32> = media
        .iter()
        // Coded frames, not the sequence header.
        .filter(|m| m.type_id == type_id::VIDEO && m.payload.get(1) == Some(&1))
        .filter_map(|m| frame_number(&m.payload))
        .collect();
    assert!(frames.len() >= 40, "{}", frames.len());
    assert!(frames.windows(2).all(|w| w[1] == w[0] + 1), "{frames:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sending.join().unwrap();
    assert!(server.is_alive());
}

#[test]
fn the_last_events_reach_hooks_at_shutdown() {
    let (url, received) = webhook_receiver();
    let hook = format!("*={url}");
    let mut server = ServerProcess::start(&["-listen", "127.0.0.1:0", "-hook-webhook", &hook]);
    let rtmp = server.listen_addr();
    let mut publisher = connect(rtmp, "live").unwrap();
    publisher.publish("cam").unwrap();
    server.wait_line("publishing live/cam");
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
    let events = received.lock().clone();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "connection_accept",
            "publish_start",
            "publish_stop",
            "connection_close"
        ]
    );
    assert_eq!(events[2]["data"]["reason"], "shutdown");
}

#[test]
fn relay_state_changes_reach_hooks() {
    let (url, received) = webhook_receiver();
    let hook = format!("relay_state={url}");
    // Nothing listens on port 1: the relay connects, fails, backs off.
    let mut server = ServerProcess::start(&[
        "-listen",
        "127.0.0.1:0",
        "-relay-to",
        "rtmp://127.0.0.1:1/edge",
        "-hook-webhook",
        &hook,
    ]);
    let rtmp = server.listen_addr();
    let mut publisher = connect(rtmp, "live").unwrap();
    publisher.publish("cam").unwrap();
    let states = || -> Vec<String> {
        received
            .lock()
            .iter()
            .map(|e| e["data"]["state"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(10), || states().len() >= 2),
        "{:?}",
        states()
    );
    assert_eq!(states()[..2], ["connecting", "backoff"]);
    let first = received.lock()[0].clone();
    assert_eq!(first["type"], "relay_state");
    assert_eq!(first["stream_key"], "live/cam");
    assert!(
        first["data"]["destination"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1")
    );
}
