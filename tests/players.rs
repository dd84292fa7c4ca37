//! Players on the writer pool: a reader thread per connection that handles
//! what a player sends at once, writer threads that never wait for a slow
//! player, and few file descriptors per connection.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use rtmp_server::protocol::amf0::Value;
use rtmp_server::protocol::command::request;
use rtmp_server::protocol::message::{Message, RawMessage, UserControl, type_id};
use rtmp_server::rtmp::client::Client;
use socket2::SockRef;

/// How long a player waits for the server to answer a Ping Request it
/// sends, reading (and dropping) the media that flows meanwhile.
fn ping(player: &mut Client, n: u32) -> Duration {
    let started = Instant::now();
    let request = Message::UserControl(UserControl::PingRequest(n)).encode(0, 0);
    player.send(2, &request).unwrap();
    read_until(player, |m| {
        matches!(
            Message::decode(m),
            Ok(Message::UserControl(UserControl::PingResponse(got))) if got == n
        )
    })
    .unwrap();
    started.elapsed()
}

fn command(player: &mut Client, name: &str, args: Vec<Value>) {
    let stream_id = player.stream_id();
    player
        .command(stream_id, request::call(name, 0.0, args))
        .unwrap();
}

#[test]
fn what_a_player_sends_is_handled_at_once_while_media_flows() {
    let server = TestServer::start();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::default();
    let publishing = publish_paced(
        publisher(server.addr, "input"),
        20_000,
        Arc::clone(&stop),
        sent,
    );
    let mut player = player(server.addr, "input");
    read_media(&mut player, 10).unwrap();
    // Answered by the player's reader thread, which blocks in reads (it
    // used to look every 500 ms).
    for n in 0..5 {
        let took = ping(&mut player, n);
        assert!(took < Duration::from_millis(100), "ping {n}: {took:?}");
    }
    // receiveVideo false, then a ping: commands are handled in order, so
    // the answer comes after the switch was made.
    command(&mut player, "receiveVideo", vec![Value::Boolean(false)]);
    let took = ping(&mut player, 99);
    assert!(took < Duration::from_millis(100), "{took:?}");
    // What follows is audio only (one batch already written may be video).
    let after: Vec<RawMessage> = read_media(&mut player, 40).unwrap();
    let last_video = after.iter().rposition(|m| m.type_id == type_id::VIDEO);
    assert!(last_video.is_none_or(|i| i < 10), "video kept coming");
    let started = Instant::now();
    command(
        &mut player,
        "pause",
        vec![Value::Boolean(true), Value::Number(0.0)],
    );
    let got = read_until(&mut player, |m| status_code(m).is_some()).unwrap();
    let took = started.elapsed();
    assert_eq!(
        status_code(got.last().unwrap()).as_deref(),
        Some("NetStream.Pause.Notify")
    );
    assert!(took < Duration::from_millis(100), "pause: {took:?}");
    stop.store(true, Ordering::Relaxed);
    publishing.join().unwrap();
}

#[test]
fn a_stuck_player_does_not_delay_the_others_of_its_writer_thread() {
    let write_timeout = Duration::from_secs(2);
    let server = TestServer::with(|c| {
        // Every player on one writer thread.
        c.writer_threads = 1;
        c.write_timeout = write_timeout;
    });
    let stop = Arc::new(AtomicBool::new(false));
    let sent: Arc<Mutex<Vec<Instant>>> = Arc::default();
    // 25 frames/s of 60 KB: 12 Mbit/s.
    let publishing = publish_paced(
        publisher(server.addr, "stuck"),
        60_000,
        Arc::clone(&stop),
        Arc::clone(&sent),
    );
    // Plays, then never reads: with a small receive buffer its socket is
    // soon full.
    let stuck = player(server.addr, "stuck");
    SockRef::from(stuck.socket())
        .set_recv_buffer_size(16 * 1024)
        .unwrap();
    let stream = server.registry().get("live/stuck").unwrap();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let mut player = player(server.addr, "stuck");
            // Frames sent before it joined come from the GOP cache: their
            // age is not a delivery delay.
            let joined = sent.lock().len() as u32;
            thread::spawn(move || {
                let mut arrivals = Vec::new();
                while let Ok(m) = player.read_message() {
                    if m.type_id == type_id::VIDEO && m.payload[1] == 1 {
                        arrivals.push((frame_number(&m.payload).unwrap(), Instant::now()));
                    }
                    if arrivals.len() == 200 {
                        break;
                    }
                }
                (joined, arrivals)
            })
        })
        .collect();
    // The stuck player is closed once its socket took nothing for
    // -write-timeout; the others play on.
    let started = Instant::now();
    assert!(
        wait_for(Duration::from_secs(30), || stream.player_stats().len() == 3),
        "the stuck player was not closed"
    );
    assert!(started.elapsed() >= write_timeout);
    let mut delays = Vec::new();
    for reader in readers {
        let (joined, arrivals) = reader.join().unwrap();
        assert_eq!(arrivals.len(), 200, "a reading player missed frames");
        let sent = sent.lock();
        for (n, at) in arrivals.into_iter().filter(|(n, _)| *n > joined) {
            let sent_at = sent[n as usize];
            delays.push(at.saturating_duration_since(sent_at));
        }
    }
    stop.store(true, Ordering::Relaxed);
    publishing.join().unwrap();
    delays.sort();
    let p50 = delays[delays.len() / 2];
    let max = *delays.last().unwrap();
    eprintln!("reading players' delivery delay: p50 {p50:?}, max {max:?}");
    // A write that waited for the stuck socket would hold every player of
    // the thread for up to -write-timeout; they stay near one tick (40 ms),
    // with room for a loaded test machine.
    assert!(max < Duration::from_secs(1), "max delay {max:?}");
}

/// Open file descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[test]
fn a_thousand_and_more_connections_fit_a_1024_open_files_soft_limit() {
    assert!(
        tool_available("prlimit"),
        "prlimit (util-linux) is needed to set the open files limit"
    );
    // This process needs a thousand sockets too.
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let mut server = ServerProcess::start_under(
        &["prlimit", "--nofile=1024:2200", "--"],
        &[
            "-listen",
            "127.0.0.1:0",
            "-max-connections",
            "1200",
            "-log-level",
            "info",
        ],
    );
    let addr = server.listen_addr();
    let pid = server.child.id();
    let before = open_fds(pid);
    // More than a soft limit of 1024 allows: the server raised it.
    let connections = 1100;
    let clients: Vec<Client> = (0..connections)
        .map(|n| connect(addr, "live").unwrap_or_else(|e| panic!("connection {n}: {e}")))
        .collect();
    assert!(
        wait_for(Duration::from_secs(10), || {
            server.drain_log();
            open_fds(pid) >= before + connections
        }),
        "the server holds {} descriptors",
        open_fds(pid)
    );
    let per_connection = (open_fds(pid) - before) as f64 / connections as f64;
    eprintln!("descriptors per connection: {per_connection}");
    assert!(per_connection < 1.1, "{per_connection} fds per connection");
    // A normal publish and play works meanwhile.
    round_trip(addr, "meanwhile");
    assert!(server.is_alive());
    let log = server.drain_log().join("\n");
    assert!(!log.contains("refused"), "{log}");
    drop(clients);
}

#[test]
fn playing_again_on_the_same_connection_starts_with_play_start() {
    let server = TestServer::start();
    let mut first = publisher(server.addr, "first");
    let mut second = publisher(server.addr, "second");
    for publisher in [&mut first, &mut second] {
        publisher.send_video(0, &avc_sequence_header()).unwrap();
    }
    // Large keyframes in the GOP caches: catch-ups that fill the socket.
    first
        .send_video(0, &video_frame(1000, true, 3_000_000))
        .unwrap();
    second
        .send_video(0, &video_frame(2000, true, 3_000_000))
        .unwrap();
    let mut player = player(server.addr, "first");
    let stream_id = player.stream_id();
    // Stops before reading the catch-up, and plays the other stream at
    // once on the same NetStream.
    command(&mut player, "closeStream", vec![]);
    player
        .command(
            stream_id,
            request::call("play", 0.0, vec![Value::string("second")]),
        )
        .unwrap();
    let mut play_starts = 0;
    let mut second_frames = 0;
    while second_frames == 0 {
        let m = player.read_message().unwrap();
        if status_code(&m).as_deref() == Some("NetStream.Play.Start") {
            play_starts += 1;
        }
        if m.type_id == type_id::VIDEO && frame_number(&m.payload) == Some(2000) {
            assert!(
                play_starts >= 1,
                "media of the second play before its Play.Start"
            );
            second_frames += 1;
        }
    }
}
