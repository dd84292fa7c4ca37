//! Relay push: streams published to one server sent on to others
//! (`-relay-to`, `-relay-map`), reconnecting, never holding anything up,
//! and shown in the API.

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rtmp_server::metrics;
use rtmp_server::protocol::message::type_id;
use rtmp_server::protocol::session::server::ServerEvent;
use rtmp_server::relay::target::RelayTargets;

fn relaying_to(addr: std::net::SocketAddr) -> TestServer {
    let to = vec![format!("rtmp://{addr}/live")];
    TestServer::with(|c| c.relays = RelayTargets::parse(&to, &[]).unwrap())
}

fn is_video_frame(m: &rtmp_server::protocol::message::RawMessage) -> bool {
    m.type_id == type_id::VIDEO && m.payload.get(1) == Some(&1)
}

#[test]
fn a_published_stream_reaches_another_instance_and_ends_there() {
    let edge = TestServer::start();
    let origin = relaying_to(edge.addr);
    // Waits at the edge for the relay to publish.
    let mut edge_player = player(edge.addr, "show");
    let mut publisher = publisher(origin.addr, "show");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    publisher.send_audio(0, &aac_sequence_header()).unwrap();
    for n in 0..30u32 {
        publisher
            .send_video(n * 40, &video_frame(n, n == 0, 3000 + n as usize))
            .unwrap();
    }
    let got = read_until(&mut edge_player, |m| {
        frame_number(&m.payload) == Some(29) && m.type_id == type_id::VIDEO
    })
    .unwrap();
    let media: Vec<_> = got.iter().filter(|m| is_media(m)).collect();
    assert_eq!(&media[0].payload[..], &avc_sequence_header()[..]);
    assert_eq!(&media[1].payload[..], &aac_sequence_header()[..]);
    let frames: Vec<_> = media[2..]
        .iter()
        .map(|m| {
            assert_eq!(
                m.payload.len(),
                3000 + frame_number(&m.payload).unwrap() as usize
            );
            frame_number(&m.payload).unwrap()
        })
        .collect();
    assert_eq!(frames, (0..30).collect::<Vec<_>>(), "every frame, in order");
    let origin_stream = origin.registry().get("live/show").unwrap();
    assert_eq!(origin_stream.player_count(), 0, "a relay is not a player");
    // Counted: 2 headers and 30 frames (what arrived counts at least).
    let m = origin.handle().metrics();
    assert!(metrics::get(&m.relay_messages_sent) >= 32);
    let frame_bytes: u64 = (0..30).map(|n| 3000 + n).sum();
    assert!(metrics::get(&m.relay_bytes_sent) >= frame_bytes);
    assert_eq!(metrics::get(&m.relay_messages_dropped), 0);
    // The origin's publisher leaves: the relay unpublishes at the edge.
    publisher.delete_stream().unwrap();
    let got = read_until(&mut edge_player, is_stream_eof).unwrap();
    assert!(
        got.iter()
            .filter_map(status_code)
            .any(|c| c == "NetStream.Play.UnpublishNotify")
    );
}

#[test]
fn a_destination_down_at_start_gets_the_stream_from_a_keyframe_once_up() {
    // A port with nothing on it yet.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let edge_addr = free.local_addr().unwrap();
    drop(free);
    let origin = relaying_to(edge_addr);
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = publish_paced(
        publisher(origin.addr, "late"),
        2000,
        Arc::clone(&stop),
        Arc::default(),
    );
    // The relay fails at least once (nothing listens), then backs off.
    thread::sleep(Duration::from_millis(500));
    let edge = TestServer::with(|c| c.listen = edge_addr);
    let mut edge_player = player(edge.addr, "late");
    let started = Instant::now();
    let got = read_until(&mut edge_player, is_video_frame).unwrap();
    let first = got.iter().find(|m| is_video_frame(m)).unwrap();
    assert_eq!(first.payload[0] >> 4, 1, "starts on a keyframe");
    // Within the backoff (1 s, then 2 s, with jitter) and a GOP.
    assert!(started.elapsed() < Duration::from_secs(10));
    // And keeps coming, in order.
    let next = read_until(&mut edge_player, is_video_frame).unwrap();
    let after = next.iter().rev().find(|m| is_video_frame(m)).unwrap();
    assert_eq!(
        frame_number(&after.payload),
        frame_number(&first.payload).map(|n| n + 1)
    );
    stop.store(true, Ordering::Relaxed);
    publishing.join().unwrap();
}

/// A destination that accepts a publish, says what name it was asked for,
/// and then reads nothing more (its socket's receive buffer is small).
fn deaf_destination(listener: TcpListener) -> std::sync::mpsc::Receiver<String> {
    let (tx, names) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        socket2::SockRef::from(&socket)
            .set_recv_buffer_size(16 * 1024)
            .unwrap();
        // Deaf once it accepted the publish; the relay gives up on its own.
        serve_bare_session(&socket, |event, session| match event {
            ServerEvent::PublishRequested { stream_id, name } => {
                session.accept_publish(stream_id);
                let _ = tx.send(name);
                false
            }
            _ => true,
        });
        thread::sleep(Duration::from_secs(60));
    });
    names
}

#[test]
fn a_destination_that_never_reads_holds_up_nothing_and_gets_its_query() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!(
        "live/firehose=rtmp://{}/in/target?key=s3cret",
        listener.local_addr().unwrap()
    );
    let names = deaf_destination(listener);
    let origin = TestServer::with(|c| c.relays = RelayTargets::parse(&[], &[target]).unwrap());
    let mut publisher = publisher(origin.addr, "firehose");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    let mut player = player(origin.addr, "firehose");
    let reader = thread::spawn(move || {
        let mut frames = Vec::new();
        while frames.len() < 100 {
            let m = player.read_message().unwrap();
            if is_video_frame(&m) {
                frames.push(frame_number(&m.payload).unwrap());
            }
        }
        frames
    });
    // The query string reaches the destination intact.
    let name = names.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(name, "target?key=s3cret");
    // 100 frames of 200 KB at 25 a second: 40 Mbit/s into a destination
    // that reads none of it.
    let started = Instant::now();
    for n in 0..100u32 {
        let due = started + Duration::from_millis(n as u64 * 40);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        publisher
            .send_video(n * 40, &video_frame(n, n.is_multiple_of(25), 200_000))
            .unwrap();
    }
    let late = started.elapsed().saturating_sub(Duration::from_secs(4));
    assert!(
        late < Duration::from_secs(3),
        "publisher slowed down by {late:?}"
    );
    assert_eq!(
        reader.join().unwrap(),
        (0..100).collect::<Vec<_>>(),
        "the player got every frame"
    );
    let m = origin.handle().metrics();
    assert!(
        wait_for(Duration::from_secs(10), || metrics::get(
            &m.relay_messages_dropped
        ) > 0),
        "the relay's drops are counted"
    );
    // The session ends: the relay, stuck writing to the deaf destination,
    // stops at once (its socket is shut down), well before the client's
    // 10 s write timeout.
    publisher.delete_stream().unwrap();
    let ended = Instant::now();
    assert!(
        wait_for(Duration::from_secs(10), || origin
            .handle()
            .relays()
            .is_empty()),
        "{:?}",
        origin.handle().relays()
    );
    assert!(
        ended.elapsed() < Duration::from_secs(3),
        "{:?}",
        ended.elapsed()
    );
}

fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    agent
        .get(&format!("http://{addr}{path}"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

#[test]
fn the_api_shows_each_relay_s_state_without_its_query() {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let edge_addr = free.local_addr().unwrap();
    drop(free);
    let map = vec![format!("live/api=rtmp://{edge_addr}/live/api?key=s3cret")];
    let origin =
        TestServer::with_http(None, |c| c.relays = RelayTargets::parse(&[], &map).unwrap());
    let http = origin.http.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = publish_paced(
        publisher(origin.addr, "api"),
        2000,
        Arc::clone(&stop),
        Arc::default(),
    );
    // Nothing listens there: the relay fails and waits.
    assert!(wait_for(Duration::from_secs(10), || {
        origin
            .handle()
            .relays()
            .first()
            .is_some_and(|r| r.last_error.is_some())
    }));
    let vars: serde_json::Value = serde_json::from_str(&http_get(http, "/debug/vars")).unwrap();
    let relay = &vars["rtmp_relay_destinations"][0];
    assert_eq!(relay["key"], "live/api");
    assert!(
        ["backoff", "connecting"].contains(&relay["state"].as_str().unwrap()),
        "{relay}"
    );
    assert!(relay["last_error_at"].is_string(), "{relay}");
    // The destination comes up: the relay publishes there.
    let edge = TestServer::with(|c| c.listen = edge_addr);
    assert!(wait_for(Duration::from_secs(15), || {
        origin
            .handle()
            .relays()
            .first()
            .is_some_and(|r| r.messages_sent > 0)
    }));
    let stream: serde_json::Value =
        serde_json::from_str(&http_get(http, "/api/streams/live/api")).unwrap();
    let relay = &stream["relays"][0];
    assert_eq!(relay["state"], "publishing", "{relay}");
    assert!(relay["reconnects"].as_u64().unwrap() >= 1, "{relay}");
    assert!(relay["bytes_sent"].as_u64().unwrap() > 0, "{relay}");
    assert!(edge.registry().get("live/api").is_some());
    let prometheus = http_get(http, "/metrics");
    let up = prometheus
        .lines()
        .find(|l| l.starts_with("rtmp_relay_up{stream=\"live/api\",destination=\"rtmp://"))
        .unwrap_or_else(|| panic!("no rtmp_relay_up series: {prometheus}"));
    assert!(up.ends_with(" 1"), "{up}");
    assert!(prometheus.contains("rtmp_relay_destination_sent_bytes_total{stream=\"live/api\""));
    for path in ["/debug/vars", "/api/streams", "/metrics"] {
        assert!(!http_get(http, path).contains("s3cret"), "{path}");
    }
    // The session ends: the relay leaves the list.
    stop.store(true, Ordering::Relaxed);
    let mut publisher = publishing.join().unwrap();
    publisher.delete_stream().unwrap();
    assert!(wait_for(Duration::from_secs(10), || origin
        .handle()
        .relays()
        .is_empty()));
}

#[test]
fn a_destination_restarted_mid_stream_gets_it_again_and_nothing_here_notices() {
    let mut edge = TestServer::start();
    let edge_addr = edge.addr;
    let origin = relaying_to(edge_addr);
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = publish_paced(
        publisher(origin.addr, "restart"),
        2000,
        Arc::clone(&stop),
        Arc::default(),
    );
    // A player here: every frame, in order, on time, whatever the relay does.
    let mut local = player(origin.addr, "restart");
    let local_stop = Arc::clone(&stop);
    let watching = thread::spawn(move || {
        let mut frames = Vec::new();
        let mut longest_gap = Duration::ZERO;
        let mut last = Instant::now();
        while !local_stop.load(Ordering::Relaxed) {
            let Ok(m) = local.read_message() else { break };
            if is_video_frame(&m) {
                longest_gap = longest_gap.max(last.elapsed());
                last = Instant::now();
                frames.push(frame_number(&m.payload).unwrap());
            }
        }
        (frames, longest_gap)
    });
    let mut far = player(edge_addr, "restart");
    read_until(&mut far, is_video_frame).unwrap();
    // The destination goes away mid-stream, and comes back.
    edge.shutdown();
    drop(edge);
    let reconnects = || origin.handle().relays().first().map_or(0, |r| r.reconnects);
    assert!(wait_for(Duration::from_secs(10), || reconnects() >= 1));
    let edge = TestServer::with(|c| c.listen = edge_addr);
    let back = Instant::now();
    let mut far = player(edge.addr, "restart");
    let got = read_until(&mut far, is_video_frame).unwrap();
    let first = got.iter().find(|m| is_video_frame(m)).unwrap();
    assert_eq!(first.payload[0] >> 4, 1, "resumes on a keyframe");
    eprintln!(
        "destination back to its first keyframe: {:?}",
        back.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    publishing.join().unwrap();
    let (frames, longest_gap) = watching.join().unwrap();
    let expected: Vec<u32> = (frames[0]..frames[0] + frames.len() as u32).collect();
    assert_eq!(
        frames, expected,
        "the local player got every frame in order"
    );
    eprintln!("local player's longest wait between frames: {longest_gap:?}");
    // Frames come every 40 ms; nothing the relay went through held them.
    assert!(longest_gap < Duration::from_millis(500), "{longest_gap:?}");
}

#[test]
fn enhanced_rtmp_hevc_is_relayed_as_it_came() {
    let edge = TestServer::start();
    let origin = relaying_to(edge.addr);
    let mut far = player(edge.addr, "hevc");
    let mut publisher = publisher(origin.addr, "hevc");
    let ex = |frame_type: u8, packet_type: u8, n: u32| {
        let mut v = vec![0x80 | (frame_type << 4) | packet_type];
        v.extend_from_slice(b"hvc1");
        v.extend_from_slice(&n.to_be_bytes());
        v.resize(600, n as u8);
        v
    };
    publisher.send_video(0, &ex(1, 0, 0)).unwrap(); // SequenceStart
    for n in 1..=5 {
        publisher
            .send_video(n * 40, &ex(if n == 1 { 1 } else { 2 }, 1, n))
            .unwrap();
    }
    let got = read_media(&mut far, 6).unwrap();
    for (n, m) in got.iter().enumerate() {
        let frame_type = if n < 2 { 1 } else { 2 };
        let packet_type = u8::from(n > 0);
        assert_eq!(&m.payload[..], &ex(frame_type, packet_type, n as u32)[..]);
        assert_eq!(m.timestamp, n as u32 * 40);
    }
}

#[test]
fn a_destination_that_refuses_the_stream_shows_failed_with_its_error() {
    let edge = TestServer::start();
    // The name is taken there: the relay's publish is refused.
    let _taken = publisher(edge.addr, "taken");
    let origin = relaying_to(edge.addr);
    let _publisher = publisher(origin.addr, "taken");
    assert!(
        wait_for(Duration::from_secs(10), || {
            origin.handle().relays().first().is_some_and(|r| {
                r.state == rtmp_server::relay::status::RelayState::Failed
                    && r.last_error
                        .as_deref()
                        .is_some_and(|e| e.contains("BadName"))
            })
        }),
        "{:?}",
        origin.handle().relays()
    );
}

#[test]
fn quick_republishes_leave_one_relay_per_destination() {
    let edge = TestServer::start();
    let to = vec![format!("rtmp://{}/live", edge.addr)];
    // Players are dropped when they lag; relays keep skipping instead.
    let origin = TestServer::with(|c| {
        c.relays = RelayTargets::parse(&to, &[]).unwrap();
        c.slow_subscriber = rtmp_server::config::SlowSubscriberPolicy::Disconnect;
    });
    for round in 0..3u32 {
        let mut publisher = publisher(origin.addr, "again");
        publisher.send_video(0, &avc_sequence_header()).unwrap();
        publisher
            .send_video(0, &video_frame(round * 100, true, 500))
            .unwrap();
        publisher.delete_stream().unwrap();
        // The next publish waits for this one to be over.
        assert!(wait_for(Duration::from_secs(5), || origin
            .registry()
            .get("live/again")
            .is_none_or(|s| !s.is_live())));
    }
    let mut publisher = publisher(origin.addr, "again");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    let mut far = player(edge.addr, "again");
    for n in 0..20u32 {
        publisher
            .send_video(n * 40, &video_frame(1000 + n, n.is_multiple_of(10), 500))
            .unwrap();
    }
    let got = read_until(&mut far, |m| frame_number(&m.payload) == Some(1019)).unwrap();
    assert!(got.iter().any(is_video_frame));
    assert!(
        wait_for(Duration::from_secs(10), || origin.handle().relays().len()
            == 1),
        "{:?}",
        origin.handle().relays()
    );
    assert_eq!(
        origin.handle().relays()[0].state,
        rtmp_server::relay::status::RelayState::Publishing
    );
}

#[test]
fn destinations_that_show_alike_are_told_apart() {
    // Two keys at one service, alike in their first characters; nothing
    // listens on port 1, so both relays wait and stay listed.
    let map = vec![
        "live/two=rtmp://127.0.0.1:1/app/live_aaaa".to_string(),
        "live/two=rtmp://127.0.0.1:1/app/live_bbbb".to_string(),
    ];
    let origin = TestServer::with(|c| c.relays = RelayTargets::parse(&[], &map).unwrap());
    let _publisher = publisher(origin.addr, "two");
    assert!(wait_for(Duration::from_secs(10), || origin
        .handle()
        .relays()
        .len()
        == 2));
    let mut labels: Vec<String> = origin
        .handle()
        .relays()
        .into_iter()
        .map(|r| r.destination)
        .collect();
    labels.sort();
    assert_eq!(
        labels,
        [
            "rtmp://127.0.0.1:1/app/liv*** #1",
            "rtmp://127.0.0.1:1/app/liv*** #2"
        ]
    );
}
