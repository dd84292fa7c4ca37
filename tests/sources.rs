//! `-source` streams with the in-repo client: a manual switch (with and
//! without the API token), choosing by priority again, an exhausted
//! stream restored without its players reconnecting and then ended, a
//! degraded input refused; on-demand pulls from a second instance shared
//! by many players, closed when idle, bounded by `-max-pulls`, and
//! upstreams that stall or send hostile input.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use rtmp_server::config::Config;
use rtmp_server::hub::events::Event;
use rtmp_server::protocol::message::{RawMessage, type_id};
use rtmp_server::rtmp::client::{Client, ClientError};
use rtmp_server::source::{SourceSettings, SourceSpec};
use serde_json::Value;

const TOKEN: &str = "s3cret-token";

fn sources(config: &mut Config, specs: &[String]) {
    config.sources = SourceSettings {
        sources: specs
            .iter()
            .map(|s| SourceSpec::parse(s).unwrap())
            .collect(),
        input_timeout: Duration::from_millis(500),
        failback_delay: Duration::from_secs(1),
        exhausted_timeout: Duration::from_secs(2),
        pull_idle_timeout: Duration::from_secs(1),
        max_pulls: 1,
    };
}

/// A paced publisher (numbered frames of `len` bytes every 40 ms, a
/// keyframe a second) and the flag that stops it.
struct Paced {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Client>>,
}

impl Paced {
    fn start(addr: SocketAddr, name: &str, len: usize) -> Paced {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = publish_paced(
            publisher(addr, name),
            len,
            Arc::clone(&stop),
            Arc::new(Mutex::new(Vec::new())),
        );
        Paced {
            stop,
            thread: Some(thread),
        }
    }

    /// Like [`Paced::start`], with the headers at 0 and the frames from
    /// `first` ms on (a stream that has run a while, as servers send it).
    fn start_late(addr: SocketAddr, name: &str, len: usize, first: u32) -> Paced {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let mut publisher = publisher(addr, name);
        let thread = thread::spawn(move || {
            publisher.send_video(0, &avc_sequence_header()).unwrap();
            publisher.send_audio(0, &aac_sequence_header()).unwrap();
            let started = Instant::now();
            let mut n = 0u32;
            while !flag.load(Ordering::Relaxed) {
                let due = started + Duration::from_millis(u64::from(n) * 40);
                thread::sleep(due.saturating_duration_since(Instant::now()));
                let at = first + n * 40;
                let frame = video_frame(n, n.is_multiple_of(25), len);
                publisher.send_video(at, &frame).unwrap();
                publisher.send_audio(at, &aac_frame(n)).unwrap();
                n += 1;
            }
            publisher
        });
        Paced {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and closes the connection.
    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            drop(thread.join().unwrap());
        }
    }
}

/// What a player got: each video frame's timestamp and payload length (the
/// publishers' lengths tell the inputs apart), and statuses.
#[derive(Default)]
struct Seen {
    video: Vec<(u32, usize, bool)>,
    statuses: Vec<String>,
}

/// A player of `name` reading in a thread until its connection ends or
/// `stop` is set.
fn watch(addr: SocketAddr, name: &str, stop: Arc<AtomicBool>) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut client = player(addr, name);
    client.set_read_timeout(Duration::from_millis(200));
    let out = Arc::clone(&seen);
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match client.read_message() {
                Ok(m) => note(&out, &m),
                Err(e) if e.is_timeout() => {}
                Err(_) => return,
            }
        }
    });
    seen
}

fn note(seen: &Mutex<Seen>, m: &RawMessage) {
    let mut seen = seen.lock();
    if m.type_id == type_id::VIDEO && m.payload.get(1) == Some(&1) {
        let key = m.payload.first() == Some(&0x17);
        seen.video.push((m.timestamp, m.payload.len(), key));
    } else if let Some(code) = status_code(m) {
        seen.statuses.push(code);
    }
}

/// Video frames of input length `len` the player has, after `from`.
fn frames_of(seen: &Mutex<Seen>, len: usize, from: usize) -> usize {
    seen.lock()
        .video
        .iter()
        .skip(from)
        .filter(|v| v.1 == len)
        .count()
}

/// Waits for `count` more video frames of input length `len` than the
/// player has now.
fn wait_more(seen: &Mutex<Seen>, len: usize, count: usize) {
    let at = seen.lock().video.len();
    assert!(
        wait_for(Duration::from_secs(5), || frames_of(seen, len, at) >= count),
        "no {count} more frames of length {len}"
    );
}

fn stream(http: SocketAddr, key: &str) -> Value {
    http_json(http, &format!("/api/streams/{key}"))
}

fn wait_json(http: SocketAddr, key: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let found = wait_for(Duration::from_secs(10), || {
        let (status, body) = http_get(http, &format!("/api/streams/{key}"), None);
        last = serde_json::from_str(&body).unwrap_or(Value::Null);
        status == 200 && cond(&last)
    });
    assert!(found, "{key}: never {what}: {last:#}");
    last
}

/// Timestamps only go forwards, by at most `max_step` ms, and a switch
/// (a change of input) starts on a keyframe.
fn check_continuity(seen: &Seen, max_step: u32) {
    for pair in seen.video.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(
            b.0 > a.0 && b.0 - a.0 <= max_step,
            "timestamps {} -> {} across {:?}",
            a.0,
            b.0,
            (a.1, b.1)
        );
        if a.1 != b.1 {
            assert!(b.2, "the switch at {} is not on a keyframe", b.0);
        }
    }
}

#[test]
fn a_manual_switch_an_exhausted_stream_and_its_return() {
    let server = TestServer::with_http(Some(TOKEN), |c| {
        sources(c, &["live/show=live/show.a,live/show.b".into()])
    });
    let (addr, http) = (server.addr, server.http.unwrap());
    let events = server.handle().events().subscribe("test", 1024);
    let a = Paced::start(addr, "show.a", 100);
    let b = Paced::start(addr, "show.b", 200);
    wait_json(http, "live/show", "active on a", |s| s["active_input"] == 0);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = watch(addr, "show", Arc::clone(&stop));
    wait_more(&seen, 100, 10);

    // Refused: no token, a wrong one, no such input, no choice, no source.
    let switch = "/api/streams/live/show/switch";
    for (path, token, status, says) in [
        (format!("{switch}?input=1"), None, 401, "Bearer"),
        (format!("{switch}?input=1"), Some("wrong"), 403, "wrong"),
        (
            format!("{switch}?input=2"),
            Some(TOKEN),
            400,
            "inputs 0 to 1",
        ),
        (format!("{switch}?input=x"), Some(TOKEN), 400, "input=auto"),
        (
            "/api/streams/live/show.a/switch?input=0".into(),
            Some(TOKEN),
            404,
            "no -source",
        ),
    ] {
        let (got, body) = http_post(http, &path, token);
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
    }
    let (got, body) = http_post(http, &format!("{switch}?input=1"), Some(TOKEN));
    assert_eq!(got, 200, "{body}");
    wait_more(&seen, 200, 10);
    let shown = stream(http, "live/show");
    assert_eq!(
        (&shown["active_input"], &shown["override_input"]),
        (&Value::from(1), &Value::from(1))
    );
    assert_eq!(shown["inputs"][0]["status"], "standby");
    assert_eq!(shown["inputs"][1]["status"], "active");
    assert_eq!(shown["inputs"][0]["source"], "live/show.a");
    assert!(shown["inputs"][1]["bitrate_kbps"].as_u64().unwrap() > 0);

    // Back to choosing by priority: a is healthy, so it comes back.
    let (got, _) = http_post(http, &format!("{switch}?input=auto"), Some(TOKEN));
    assert_eq!(got, 200);
    wait_more(&seen, 100, 10);
    assert_eq!(stream(http, "live/show")["switch_count"], 2);

    // Every input gone: players wait, and an input's return restores it.
    a.stop();
    b.stop();
    wait_json(http, "live/show", "exhausted", |s| s["exhausted"] == true);
    let b = Paced::start(addr, "show.b", 200);
    wait_more(&seen, 200, 10);
    wait_json(http, "live/show", "restored", |s| {
        s["exhausted"] == false && s["active_input"] == 1
    });
    assert!(
        !seen.lock().statuses.iter().any(|s| s.contains("Unpublish")),
        "the player was not told the stream ended"
    );

    // Gone for longer than -exhausted-timeout: the stream ends.
    b.stop();
    assert!(
        wait_for(Duration::from_secs(5), || seen
            .lock()
            .statuses
            .iter()
            .any(|s| s == "NetStream.Play.UnpublishNotify")),
        "{:?}",
        seen.lock().statuses
    );
    stop.store(true, Ordering::Relaxed);
    check_continuity(&seen.lock(), 100);
    let history = http_json(http, "/api/history");
    let session = &history["sessions"][0];
    assert_eq!(session["key"], "live/show");
    assert_eq!(session["reason"], "source_exhausted");
    assert_eq!(session["switch_count"], 3, "{session:#}");
    let reasons: Vec<&str> = session["switches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["manual", "failback", "failover"]);
    assert_eq!(session["switches"][2]["from"], 0);
    assert_eq!(session["switches"][2]["to"], 1);

    let mut told = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event {
            Event::InputSwitched { reason, to, .. } => told.push(format!("{reason} {}", to.0)),
            Event::StreamExhausted { .. } => told.push("exhausted".into()),
            Event::StreamRestored { input, .. } => told.push(format!("restored {}", input.0)),
            _ => {}
        }
    }
    assert_eq!(
        told,
        [
            "manual 1",
            "failback 0",
            "exhausted",
            "failover 1",
            "restored 1",
            "exhausted"
        ]
    );
}

#[test]
fn a_silent_input_is_degraded_and_cannot_be_switched_to() {
    let server = TestServer::with_http(Some(TOKEN), |c| {
        sources(c, &["live/quiet=live/quiet.a,live/quiet.b".into()])
    });
    let (addr, http) = (server.addr, server.http.unwrap());
    let _silent = publisher(addr, "quiet.a");
    let b = Paced::start(addr, "quiet.b", 200);
    let shown = wait_json(http, "live/quiet", "degraded", |s| {
        s["inputs"][0]["status"] == "degraded" && s["active_input"] == 1
    });
    let error = shown["inputs"][0]["last_error"].as_str().unwrap();
    assert!(error.contains("no media"), "{error}");
    assert!(shown["inputs"][0]["last_error_at"].is_string());
    let (got, body) = http_post(http, "/api/streams/live/quiet/switch?input=0", Some(TOKEN));
    assert_eq!(got, 409, "{body}");
    assert!(body.contains("degraded"), "{body}");
    // A publisher cannot take the source's stream.
    let mut direct = connect(addr, "live").unwrap();
    match direct.publish("quiet") {
        Err(ClientError::Refused { code, description }) => {
            assert_eq!(code, "NetStream.Publish.BadName");
            assert!(description.contains("-source"), "{description}");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let text = http_get(http, "/metrics", None).1;
    for line in [
        "rtmp_input_status{stream=\"live/quiet\",input=\"0\",source=\"live/quiet.a\",status=\"degraded\"} 1",
        "rtmp_input_status{stream=\"live/quiet\",input=\"1\",source=\"live/quiet.b\",status=\"active\"} 1",
        "rtmp_input_status{stream=\"live/quiet\",input=\"1\",source=\"live/quiet.b\",status=\"idle\"} 0",
    ] {
        assert!(text.contains(line), "no {line} in\n{text}");
    }
    b.stop();
}

/// The number of players the server at `http` shows for `key`.
fn players(http: SocketAddr, key: &str) -> usize {
    let (status, body) = http_get(http, &format!("/api/streams/{key}"), None);
    if status != 200 {
        return 0;
    }
    let shown: Value = serde_json::from_str(&body).unwrap();
    shown["subscribers"].as_array().map_or(0, Vec::len)
}

#[test]
fn many_players_share_one_pull_closed_when_idle_and_bounded() {
    let upstream = TestServer::with_http(None, |_| {});
    let up_http = upstream.http.unwrap();
    // Its frames far from its headers' 0, as a stream that has run for
    // an hour reaches a new player: no timestamp jump.
    let camera = Paced::start_late(upstream.addr, "cam", 300, 3_600_000);
    let up = upstream.addr;
    let edge = TestServer::with_http(None, |c| {
        sources(
            c,
            &[
                format!("live/cam=rtmp://{up}/live/cam"),
                format!("live/other=rtmp://{up}/live/other"),
            ],
        )
    });
    let (addr, http) = (edge.addr, edge.http.unwrap());
    assert_eq!(prometheus_value(http, "rtmp_pulls_active"), 0, "on demand");
    let asked = Instant::now();
    let mut first = player(addr, "cam");
    let frame = read_until(&mut first, |m| m.type_id == type_id::VIDEO).unwrap();
    eprintln!(
        "first frame of an on-demand pull after {:?}",
        asked.elapsed()
    );
    assert_eq!(
        frame.last().unwrap().payload.first(),
        Some(&0x17),
        "keyframe first"
    );
    let mut others: Vec<Client> = (0..2).map(|_| player(addr, "cam")).collect();
    for p in &mut others {
        assert!(
            read_media(p, 20)
                .unwrap()
                .iter()
                .any(|m| m.payload.len() == 300)
        );
    }
    assert_eq!(players(http, "live/cam"), 3);
    assert_eq!(players(up_http, "live/cam"), 1, "one upstream connection");
    assert_eq!(prometheus_value(http, "rtmp_pulls_active"), 1);
    let shown = stream(http, "live/cam");
    assert_eq!(shown["inputs"][0]["status"], "active");
    assert_eq!(shown["inputs"][0]["reconnects"], 0, "{shown:#}");

    // -max-pulls 1: a player that needs a second pull is refused.
    match connect(addr, "live").unwrap().play("other") {
        Err(ClientError::Refused { code, description }) => {
            assert_eq!(code, "NetStream.Play.Failed");
            assert!(description.contains("-max-pulls 1"), "{description}");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }

    // The players leave: the pull closes after -pull-idle-timeout.
    drop(first);
    drop(others);
    let left = Instant::now();
    assert!(wait_for(Duration::from_secs(5), || players(
        up_http, "live/cam"
    ) == 0));
    assert!(
        left.elapsed() >= Duration::from_millis(900),
        "{:?}",
        left.elapsed()
    );
    assert_eq!(prometheus_value(http, "rtmp_pulls_active"), 0);
    let history = http_json(http, "/api/history");
    assert_eq!(history["sessions"][0]["reason"], "source_idle");
    // And opens again for the next player.
    let mut again = player(addr, "cam");
    assert!(
        read_media(&mut again, 20)
            .unwrap()
            .iter()
            .any(|m| m.payload.len() == 300)
    );
    camera.stop();
}

/// A fake upstream on its own port: every connection is played, then
/// `after_play` gets the socket (with a 4096-byte chunk size announced).
fn fake_upstream(after_play: impl Fn(&std::net::TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let after_play = Arc::new(after_play);
    thread::spawn(move || {
        for socket in listener.incoming().map_while(Result::ok) {
            let after_play = Arc::clone(&after_play);
            thread::spawn(move || {
                let mut playing = false;
                serve_bare_session(&socket, |event, session| {
                    use rtmp_server::protocol::session::server::ServerEvent;
                    if let ServerEvent::PlayRequested { stream_id, .. } = event {
                        session.accept_play(stream_id);
                        playing = true;
                        return false;
                    }
                    true
                });
                if playing {
                    after_play(&socket);
                }
            });
        }
    });
    addr
}

fn media(type_id: u8, timestamp: u32, payload: Vec<u8>) -> Vec<u8> {
    use rtmp_server::protocol::chunk_encoder::ChunkEncoder;
    let message = RawMessage {
        type_id,
        timestamp,
        stream_id: 1,
        payload: payload.into(),
    };
    let mut out = Vec::new();
    ChunkEncoder::new(4096).write_message(6, &message, &mut out);
    out
}

#[test]
fn a_stalled_upstream_is_reconnected_and_a_hostile_one_dropped() {
    use std::io::Write;
    // Plays, then sends nothing.
    let stalled = fake_upstream(|socket| {
        let mut buf = [0u8; 1024];
        while std::io::Read::read(&mut &*socket, &mut buf).is_ok_and(|n| n > 0) {}
    });
    // Plays, then, connection after connection: a keyframe and one four
    // billion milliseconds later; a message longer than any allowed; a
    // command that is not AMF.
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hostile = fake_upstream(move |mut socket| {
        match connections.fetch_add(1, Ordering::Relaxed) % 3 {
            0 => {
                let _ = socket.write_all(&media(9, 0, avc_sequence_header()));
                let _ = socket.write_all(&media(9, 0, video_frame(0, true, 64)));
                let _ = socket.write_all(&media(9, 4_000_000_000, video_frame(1, false, 64)));
            }
            1 => {
                let mut endless = vec![0x06, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0];
                endless.resize(64 * 1024, 0x5a);
                let _ = socket.write_all(&endless);
            }
            _ => {
                let _ = socket.write_all(&media(20, 0, vec![0x02, 0xff, 0xff, 0x41]));
            }
        }
        let _ = socket.flush();
        thread::sleep(Duration::from_secs(2));
    });
    let edge = TestServer::with_http(None, |c| {
        sources(
            c,
            &[
                format!("live/stall=rtmp://{stalled}/live/x"),
                format!("live/bad=rtmp://{hostile}/live/x,live/bad.backup"),
            ],
        );
        c.sources.max_pulls = 4;
    });
    let (addr, http) = (edge.addr, edge.http.unwrap());

    let _waiting = player(addr, "stall");
    let shown = wait_json(http, "live/stall", "reconnected", |s| {
        s["inputs"][0]["reconnects"].as_u64() >= Some(1)
    });
    let error = shown["inputs"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("stalled"), "{shown:#}");
    assert!(prometheus_value(http, "rtmp_pull_reconnects_total") >= 1);

    // The hostile upstream is dropped again and again; the backup feeds
    // the players, unaffected.
    let backup = Paced::start(addr, "bad.backup", 200);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = watch(addr, "bad", Arc::clone(&stop));
    for (n, says) in ["timestamp jump", "exceeds", "AMF"].iter().enumerate() {
        let shown = wait_json(http, "live/bad", says, |s| {
            let error = s["inputs"][0]["last_error"].as_str().unwrap_or_default();
            error.contains(says)
        });
        assert_eq!(shown["active_input"], 1, "the backup plays meanwhile");
        assert!(shown["inputs"][0]["reconnects"].as_u64() >= Some(n as u64));
    }
    wait_more(&seen, 200, 50);
    stop.store(true, Ordering::Relaxed);
    let seen = seen.lock();
    assert!(
        seen.video.iter().all(|v| v.1 == 200),
        "only the backup's frames"
    );
    check_continuity(&seen, 100);
    drop(seen);
    backup.stop();
}

#[test]
fn an_active_pull_stays_until_the_failback_to_a_local_input() {
    let upstream = TestServer::start();
    let camera = Paced::start(upstream.addr, "cam", 300);
    let up = upstream.addr;
    let server = TestServer::with_http(None, |c| {
        sources(c, &[format!("live/p=live/p.local,rtmp://{up}/live/cam")]);
        // Not needed once the local input is healthy: closed at once,
        // but not before the stream has switched to it.
        c.sources.pull_idle_timeout = Duration::ZERO;
    });
    let (addr, http) = (server.addr, server.http.unwrap());
    let events = server.handle().events().subscribe("test", 1024);
    let stop = Arc::new(AtomicBool::new(false));
    let seen = watch(addr, "p", Arc::clone(&stop));
    wait_more(&seen, 300, 10);
    let local = Paced::start(addr, "p.local", 100);
    wait_more(&seen, 100, 10);
    wait_json(http, "live/p", "the pull closed", |s| {
        s["inputs"][1]["status"] == "idle" && s["active_input"] == 0
    });
    stop.store(true, Ordering::Relaxed);
    check_continuity(&seen.lock(), 100);
    let reasons: Vec<&str> = events
        .try_iter()
        .filter_map(|e| match e {
            Event::InputSwitched { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, ["failback"], "no failover on the way");
    local.stop();
    camera.stop();
}
