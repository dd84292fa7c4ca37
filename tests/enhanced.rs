//! Enhanced RTMP v2 multitrack streams through the server, with the
//! in-repo client: every message forwarded byte for byte, each track's
//! sequence header kept for players who join later, keyframes found
//! inside multitrack messages (the GOP cache starts at one), the tracks
//! listed by the API.

mod common;

use std::time::Duration;

use common::*;

/// A one-track multitrack AVC sequence start for `track`.
fn track_header(track: u8) -> Vec<u8> {
    let mut v = b"\x96\x00avc1".to_vec();
    v.push(track);
    v.extend_from_slice(&[0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x00, track]);
    v
}

/// A many-tracks message with frame `n` of tracks 0 and 1 (a keyframe
/// every 10).
fn frames(n: u32) -> Vec<u8> {
    let key = n.is_multiple_of(10);
    let mut v = vec![if key { 0x96 } else { 0xa6 }, 0x11];
    v.extend_from_slice(b"avc1");
    for track in [0u8, 1] {
        let body: Vec<u8> = [&[0u8, 0, 0][..], &n.to_be_bytes(), &[track; 40]].concat();
        v.push(track);
        v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        v.extend_from_slice(&body);
    }
    v
}

#[test]
fn a_two_track_stream_is_forwarded_intact_and_late_players_get_both_tracks() {
    let server = TestServer::with_http(None, |_| {});
    let http = server.http.unwrap();
    let mut early = player(server.addr, "multi");
    let mut publisher = publisher(server.addr, "multi");
    let mut sent = vec![track_header(0), track_header(1)];
    for header in &sent {
        publisher.send_video(0, header).unwrap();
    }
    for n in 0..25 {
        let message = frames(n);
        publisher.send_video(n * 40, &message).unwrap();
        sent.push(message);
    }
    let got = read_media(&mut early, sent.len()).unwrap();
    let got: Vec<&[u8]> = got.iter().map(|m| &m.payload[..]).collect();
    let sent_slices: Vec<&[u8]> = sent.iter().map(Vec::as_slice).collect();
    assert_eq!(got, sent_slices, "every message byte for byte, in order");

    // A late player: both tracks' headers, then the GOP from the last
    // keyframe (frame 20) on.
    let mut late = player(server.addr, "multi");
    let caught_up = read_media(&mut late, 2 + 5).unwrap();
    assert_eq!(&caught_up[0].payload[..], &track_header(0)[..]);
    assert_eq!(&caught_up[1].payload[..], &track_header(1)[..]);
    let numbers: Vec<Vec<u8>> = caught_up[2..]
        .iter()
        .map(|m| m.payload[..].to_vec())
        .collect();
    let expected: Vec<Vec<u8>> = (20..25).map(frames).collect();
    assert_eq!(numbers, expected, "the cached GOP starts at the keyframe");

    let stream = http_json(http, "/api/streams/live/multi");
    let tracks: Vec<(String, u64, String)> = stream["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["kind"].as_str().unwrap().to_owned(),
                t["id"].as_u64().unwrap(),
                t["codec"]["fourcc"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        tracks,
        [
            ("video".to_owned(), 0, "avc1".to_owned()),
            ("video".to_owned(), 1, "avc1".to_owned())
        ]
    );
    assert_eq!(stream["gop_cache"]["frames"], 5);
    drop(publisher);
    assert!(wait_for(Duration::from_secs(5), || server
        .registry()
        .get("live/multi")
        .is_none_or(|s| !s.is_live())));
}

/// The `tcUrl` of an `onStatus`'s info object, if it has one.
fn status_tc_url(m: &rtmp_server::protocol::message::RawMessage) -> Option<String> {
    use rtmp_server::protocol::amf0::{self, Value};
    let values = amf0::decode_all(&m.payload).ok()?;
    values
        .get(3)?
        .get("tcUrl")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[test]
fn clients_that_accept_it_are_asked_to_reconnect_and_others_are_not() {
    const RECONNECT: &str = "NetConnection.Connect.ReconnectRequest";
    let server = TestServer::with_http(Some("secret"), |c| {
        c.reconnect_url = Some("rtmp://backup.example:1936/live".into());
    });
    let http = server.http.unwrap();
    let options = rtmp_server::rtmp::client::ClientOptions {
        caps_ex: Some(1),
        ..test_options()
    };
    let mut v2 = connect_with(server.addr, "live", options).unwrap();
    v2.play("cam").unwrap();
    let mut legacy = player(server.addr, "cam");
    assert_eq!(http_post(http, "/api/reconnect", None).0, 401);
    let (status, body) = http_post(http, "/api/reconnect", Some("secret"));
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["asked"], 1, "only the client that accepts it");
    let seen = read_until(&mut v2, |m| status_code(m).as_deref() == Some(RECONNECT)).unwrap();
    let request = seen.last().unwrap();
    assert_eq!(request.stream_id, 0, "on the NetConnection");
    assert_eq!(status_level(request).as_deref(), Some("status"));
    assert_eq!(
        status_tc_url(request).as_deref(),
        Some("rtmp://backup.example:1936/live")
    );
    // The connection goes on until the client leaves: it still plays.
    let mut publisher = publisher(server.addr, "cam");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    publisher.send_video(0, &video_frame(0, true, 100)).unwrap();
    read_media(&mut v2, 2).unwrap();
    // The legacy player got everything up to the keyframe and no request.
    let seen = read_until(&mut legacy, |m| m.type_id == 9 && m.payload.len() >= 100).unwrap();
    assert!(
        seen.iter()
            .all(|m| status_code(m).as_deref() != Some(RECONNECT))
    );
    legacy.set_read_timeout(Duration::from_millis(300));
    while let Ok(m) = legacy.read_message() {
        assert_ne!(status_code(&m).as_deref(), Some(RECONNECT));
    }
}

#[test]
fn sigusr1_asks_clients_to_reconnect() {
    const RECONNECT: &str = "NetConnection.Connect.ReconnectRequest";
    let mut server = ServerProcess::start(&["-listen", "127.0.0.1:0"]);
    let addr = server.listen_addr();
    let options = rtmp_server::rtmp::client::ClientOptions {
        caps_ex: Some(1),
        ..test_options()
    };
    let mut v2 = connect_with(addr, "live", options).unwrap();
    v2.play("cam").unwrap();
    let pid = server.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-USR1", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let seen = read_until(&mut v2, |m| status_code(m).as_deref() == Some(RECONNECT)).unwrap();
    assert_eq!(status_tc_url(seen.last().unwrap()), None, "to where it is");
    server.wait_line("asked 1 client(s) to reconnect, to where they are");
    assert!(server.is_alive(), "SIGUSR1 does not stop the server");
}

/// Whether the first video frame (not a sequence header, nor a command
/// or metadata frame such as ffmpeg's `colorInfo`) of an FLV file is a
/// keyframe, read with the server's own FLV and codec parsers.
fn first_video_frame_is_key(file: &std::path::Path) -> bool {
    use rtmp_server::media::{codec, flv};
    let bytes = bytes::Bytes::from(std::fs::read(file).unwrap());
    flv::parse(&bytes)
        .unwrap()
        .iter()
        .filter(|m| m.type_id == 9)
        .filter(|m| m.payload.first().is_some_and(|b| (b >> 4) & 0x07 != 5))
        .filter_map(|m| codec::inspect_video(&m.payload))
        .find(|info| !info.sequence_header)
        .is_some_and(|info| info.keyframe)
}

#[test]
fn a_modern_ffmpeg_publishes_and_plays_hevc_av1_and_vp9_over_enhanced_rtmp() {
    let ffmpeg = modern_ffmpeg();
    let dir = test_dir("enhanced-play");
    for (name, video, audio, codecs) in [
        ("hevc", HEVC_OPTIONS, &["-c:a", "aac"][..], ("H265", "AAC")),
        (
            "av1",
            AV1_OPTIONS,
            &["-c:a", "libopus"][..],
            ("AV1", "Opus"),
        ),
        (
            "vp9",
            VP9_OPTIONS,
            &["-c:a", "libopus"][..],
            ("VP9", "Opus"),
        ),
    ] {
        let (mut server, rtmp, http) = ServerProcess::start_with_http(&[]);
        let out = dir.join(format!("{name}.flv"));
        let player = std::process::Command::new(&ffmpeg)
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-rw_timeout",
                "20000000",
                "-i",
            ])
            .arg(format!("rtmp://{rtmp}/live/{name}"))
            .args(["-c", "copy", "-f", "flv"])
            .arg(&out)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        server.wait_line(&format!("playing live/{name}"));
        let publisher = modern_encoder(
            3,
            video,
            audio,
            &["-f", "flv", &format!("rtmp://{rtmp}/live/{name}")],
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        let shown = wait_for(Duration::from_secs(20), || {
            let (_, body) = http_get(http, &format!("/api/streams/live/{name}"), None);
            let s: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            s["video"]["codec"]["name"] == codecs.0 && s["audio"]["codec"]["name"] == codecs.1
        });
        assert!(
            shown,
            "{name}: {}",
            http_get(http, &format!("/api/streams/live/{name}"), None).1
        );
        let published = finish(publisher, Duration::from_secs(60), "the publisher");
        assert!(
            published.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&published.stderr)
        );
        let played = finish(player, Duration::from_secs(30), "the player");
        assert!(
            played.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&played.stderr)
        );
        let mut counts = modern_packet_counts(&out);
        counts.sort();
        assert_eq!(counts.len(), 2, "{name}: video and audio played");
        assert_eq!(
            counts[0], 75,
            "{name}: every video frame of 3 s at 25 fps: {counts:?}"
        );
        assert!(first_video_frame_is_key(&out), "{name}: keyframe first");
        assert_eq!(
            common::probe::decode_errors_with(&ffmpeg, &out),
            "",
            "{name}"
        );
    }
}
