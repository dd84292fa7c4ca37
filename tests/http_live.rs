//! Live streams over HTTP: ffmpeg reads HTTP-FLV from the first keyframe
//! with every frame an RTMP player gets; viewers are counted, limited,
//! refused, kicked and waited for like RTMP players; a viewer that reads
//! nothing does not slow the stream's RTMP players.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::probe::{decode_errors, first_video_frame_is_key, probe};
use common::*;

/// An HTTP viewer over a plain socket: the request sent, the head read.
struct RawViewer {
    reader: BufReader<TcpStream>,
    status: u16,
    headers: Vec<(String, String)>,
}

impl RawViewer {
    fn get(http: SocketAddr, path: &str, version: &str) -> RawViewer {
        RawViewer::request(http, "GET", path, version)
    }

    fn request(http: SocketAddr, method: &str, path: &str, version: &str) -> RawViewer {
        let socket = TcpStream::connect(http).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (&socket)
            .write_all(format!("{method} {path} {version}\r\nHost: test\r\n\r\n").as_bytes())
            .unwrap();
        let mut reader = BufReader::new(socket);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let Some((name, value)) = line.trim_end().split_once(": ") else {
                break;
            };
            headers.push((name.to_ascii_lowercase(), value.to_owned()));
        }
        RawViewer {
            reader,
            status,
            headers,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next chunk of a chunked body; empty at the last.
    fn chunk(&mut self) -> Vec<u8> {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let len = usize::from_str_radix(line.trim_end(), 16)
            .unwrap_or_else(|_| panic!("a chunk size: {line:?}"));
        let mut chunk = vec![0; len + 2];
        self.reader.read_exact(&mut chunk).unwrap();
        assert_eq!(&chunk[len..], b"\r\n");
        chunk.truncate(len);
        chunk
    }
}

/// The stream's players as the API lists them: (id, protocol).
fn players(http: SocketAddr, key: &str) -> Vec<(u64, String)> {
    let (status, body) = http_get(http, &format!("/api/streams/{key}"), None);
    if status != 200 {
        return Vec::new();
    }
    let stream: serde_json::Value = serde_json::from_str(&body).unwrap();
    stream["subscribers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["id"].as_u64().unwrap_or(0),
                s["protocol"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn ffmpeg_reads_http_flv_from_the_first_keyframe_with_every_frame() {
    assert!(tool_available("ffmpeg"), "ffmpeg is needed");
    let dir = test_dir("http-flv");
    let (_server, rtmp, http) = ServerProcess::start_with_http(&[]);
    let (over_rtmp, over_http) = (dir.join("rtmp.flv"), dir.join("http.flv"));
    // An RTMP player and an HTTP-FLV reader both wait for the publisher.
    let rtmp_player = ffmpeg_play(&format!("rtmp://{rtmp}/live/cam"), &over_rtmp);
    assert!(wait_for(Duration::from_secs(10), || players(
        http, "live/cam"
    )
    .len()
        == 1));
    let http_player = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(format!("http://{http}/live/cam.flv"))
        .args(["-c", "copy", "-f", "flv"])
        .arg(&over_http)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(10), || players(
        http, "live/cam"
    )
    .len()
        == 2));
    let mut protocols: Vec<String> = players(http, "live/cam").into_iter().map(|p| p.1).collect();
    protocols.sort();
    assert_eq!(protocols, ["http-flv", "rtmp"]);
    assert_eq!(prometheus_value(http, "rtmp_subscribers_active"), 2);

    let publisher = ffmpeg_encoder(
        "320x240",
        440,
        4,
        25,
        &["-f", "flv", &format!("rtmp://{rtmp}/live/cam")],
    );
    let published = finish(publisher, Duration::from_secs(30), "the publisher");
    assert!(published.status.success());
    // The stream's end ends the HTTP response: ffmpeg finishes cleanly.
    let read = finish(http_player, Duration::from_secs(20), "the HTTP-FLV reader");
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    finish(rtmp_player, Duration::from_secs(20), "the RTMP player");

    let (got, reference) = (probe(&over_http), probe(&over_rtmp));
    assert_eq!(got.codecs, ["aac", "h264"]);
    assert_eq!(got.video_frames, 100, "every frame of 4 s at 25 fps");
    assert_eq!(got, reference, "the same as the RTMP player");
    assert!(first_video_frame_is_key(&over_http));
    assert_eq!(decode_errors(&over_http), "");
}

/// A stream that has been published and ended, so that the server knows
/// it.
fn publish_once(addr: SocketAddr, name: &str) {
    let mut publisher = publisher(addr, name);
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    publisher.send_video(0, &video_frame(0, true, 100)).unwrap();
}

#[test]
fn http_viewers_are_refused_waited_for_counted_limited_and_kicked() {
    let server = TestServer::with_http(Some("secret"), |c| {
        c.max_subscribers = 1;
        c.idle_timeout = Duration::from_secs(1);
    });
    let http = server.http.unwrap();
    // A stream the server never heard of: 404 at once.
    let asked = Instant::now();
    let unknown = RawViewer::get(http, "/live/nope.flv", "HTTP/1.1");
    assert_eq!(unknown.status, 404);
    assert!(asked.elapsed() < Duration::from_millis(500));
    assert_eq!(http_get(http, "/live/live/nope.mp4", None).0, 404);
    // A known stream waits for its publisher, up to -idle-timeout.
    publish_once(server.addr, "cam");
    assert!(wait_for(Duration::from_secs(5), || server
        .registry()
        .get("live/cam")
        .is_none()));
    let asked = Instant::now();
    let waited = RawViewer::get(http, "/live/cam.flv", "HTTP/1.1");
    assert_eq!(waited.status, 404);
    assert!(
        asked.elapsed() >= Duration::from_millis(900),
        "{:?}",
        asked.elapsed()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sender = publish_paced(
        publisher(server.addr, "cam"),
        1000,
        Arc::clone(&stop),
        Arc::default(),
    );
    let probed = RawViewer::request(http, "HEAD", "/live/live/cam.mp4", "HTTP/1.1");
    assert_eq!(probed.status, 200);
    assert_eq!(probed.header("content-type"), Some("video/mp4"));
    let mut viewer = RawViewer::get(http, "/live/cam.flv", "HTTP/1.1");
    assert_eq!(viewer.status, 200);
    assert_eq!(viewer.header("content-type"), Some("video/x-flv"));
    assert_eq!(viewer.header("transfer-encoding"), Some("chunked"));
    assert_eq!(viewer.header("access-control-allow-origin"), Some("*"));
    let first = viewer.chunk();
    assert_eq!(&first[..3], b"FLV", "the FLV header first");
    let listed = players(http, "live/cam");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1, "http-flv");
    assert_eq!(metric(&server, "rtmp_subscribers_active"), 1);
    // -max-subscribers counts HTTP viewers as players.
    let full = RawViewer::get(http, "/live/cam.flv", "HTTP/1.1");
    assert_eq!(full.status, 503);

    // A kick ends the response with its last chunk.
    let path = format!("/api/clients/{}", listed[0].0);
    assert_eq!(http_request_delete(http, &path, "secret"), 200);
    let ended = (0..10_000).any(|_| viewer.chunk().is_empty());
    assert!(ended, "the last chunk came");
    assert!(wait_for(Duration::from_secs(5), || players(
        http, "live/cam"
    )
    .is_empty()));

    // HTTP/1.0: the body runs until the connection closes.
    let mut old = RawViewer::get(http, "/live/cam.flv", "HTTP/1.0");
    assert_eq!(old.status, 200);
    assert_eq!(old.header("transfer-encoding"), None);
    let mut start = [0u8; 3];
    old.reader.read_exact(&mut start).unwrap();
    assert_eq!(&start, b"FLV");
    stop.store(true, Ordering::Relaxed);
    drop(sender.join().unwrap());
    let mut rest = Vec::new();
    old.reader.read_to_end(&mut rest).unwrap();
    assert!(!rest.is_empty());
}

/// The value of a server-wide counter of an in-process server.
fn metric(server: &TestServer, name: &str) -> u64 {
    prometheus_value(server.http.unwrap(), name)
}

fn http_request_delete(http: SocketAddr, path: &str, token: &str) -> u16 {
    let mut socket = TcpStream::connect(http).unwrap();
    write!(
        socket,
        "DELETE {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    socket.read_to_string(&mut reply).unwrap();
    reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_viewer_that_reads_nothing_does_not_slow_rtmp_players() {
    let server = TestServer::with_http(None, |c| {
        c.write_timeout = Duration::from_secs(2);
    });
    let http = server.http.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // 100 kB frames at 25 fps: 20 Mbps, enough to fill any socket buffer.
    let sender = publish_paced(
        publisher(server.addr, "cam"),
        100_000,
        Arc::clone(&stop),
        Arc::default(),
    );
    let mut rtmp_player = player(server.addr, "cam");
    read_media(&mut rtmp_player, 10).unwrap();
    // It asks, then never reads.
    let stuck = TcpStream::connect(http).unwrap();
    (&stuck)
        .write_all(b"GET /live/cam.flv HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    assert!(wait_for(Duration::from_secs(5), || players(
        http, "live/cam"
    )
    .len()
        == 2));
    // The RTMP player keeps getting the stream in real time meanwhile.
    let started = Instant::now();
    let frames = read_media(&mut rtmp_player, 2 * 125).unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(5600),
        "125 frames (5 s of stream) took {took:?}"
    );
    assert!(frames.iter().all(|m| m.payload.len() < 200_000));
    // The stuck viewer fell behind (its queue skipped) and its socket's
    // write timeout ended it.
    let gone = wait_for(Duration::from_secs(15), || {
        players(http, "live/cam").iter().all(|p| p.1 != "http-flv")
    });
    assert!(gone, "the stuck viewer was dropped");
    assert!(metric(&server, "rtmp_subscriber_drops_total") > 0);
    stop.store(true, Ordering::Relaxed);
    drop(sender.join().unwrap());
}

#[test]
fn http_viewers_count_as_connections_and_need_their_play_token() {
    use rtmp_server::auth::tokens::TokenMap;
    use rtmp_server::auth::{AuthMode, AuthSettings};
    let tokens = TokenMap::from_entries(&["live/*=letmein".to_owned()]).unwrap();
    let server = TestServer::with_http(None, |c| {
        c.max_connections = 2;
        c.auth = AuthSettings {
            mode: AuthMode::Token(tokens),
            play: true,
        };
    });
    let http = server.http.unwrap();
    let mut publisher = connect(server.addr, "live?token=letmein").unwrap();
    publisher.publish("cam").unwrap();
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    publisher.send_video(0, &video_frame(0, true, 100)).unwrap();
    assert_eq!(
        RawViewer::get(http, "/live/cam.flv", "HTTP/1.1").status,
        401
    );
    assert_eq!(
        RawViewer::get(http, "/live/cam.flv?token=wrong", "HTTP/1.1").status,
        403
    );
    let mut viewer = RawViewer::get(http, "/live/cam.flv?token=letmein", "HTTP/1.1");
    assert_eq!(viewer.status, 200);
    assert_eq!(&viewer.chunk()[..3], b"FLV");
    // The publisher and this viewer are the two -max-connections allows.
    let refused = RawViewer::get(http, "/live/cam.flv?token=letmein", "HTTP/1.1");
    assert_eq!(refused.status, 503);
    assert_eq!(metric(&server, "rtmp_connections_active"), 2);
}
