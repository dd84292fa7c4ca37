//! Relay push: streams published to one server sent on to another
//! (`-relay-to`), reconnecting when the destination is not there yet.

mod common;

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rtmp_server::protocol::message::type_id;
use rtmp_server::relay::target::RelayTargets;
use rtmp_server::rtmp::client::Client;

fn relaying_to(addr: std::net::SocketAddr) -> TestServer {
    let to = vec![format!("rtmp://{addr}/live")];
    TestServer::with(|c| c.relays = RelayTargets::parse(&to, &[]).unwrap())
}

fn is_video_frame(m: &rtmp_server::protocol::message::RawMessage) -> bool {
    m.type_id == type_id::VIDEO && m.payload.get(1) == Some(&1)
}

/// Publishes numbered video frames every 40 ms (a keyframe every 25)
/// until `stop`.
fn publish_paced(mut publisher: Client, stop: Arc<AtomicBool>) -> thread::JoinHandle<Client> {
    thread::spawn(move || {
        publisher.send_video(0, &avc_sequence_header()).unwrap();
        let started = Instant::now();
        let mut n = 0u32;
        while !stop.load(Ordering::Relaxed) {
            let due = started + Duration::from_millis(n as u64 * 40);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            publisher
                .send_video(n * 40, &video_frame(n, n.is_multiple_of(25), 2000))
                .unwrap();
            n += 1;
        }
        publisher
    })
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
    let publishing = publish_paced(publisher(origin.addr, "late"), Arc::clone(&stop));
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
