//! The outbound client against real servers: nginx-rtmp (which pings its
//! clients and drops those that never answer), a second instance of ours
//! (a stream's output published onward, as a relay will), and a bare
//! server session over TCP to see exactly what the client sends.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rtmp_server::hub::output::{OutputKind, OutputOptions, OutputSpec};
use rtmp_server::hub::stream_key::StreamKey;
use rtmp_server::protocol::amf0::{self, Value};
use rtmp_server::protocol::chunk_decoder::ChunkDecoder;
use rtmp_server::protocol::chunk_encoder::ChunkEncoder;
use rtmp_server::protocol::handshake::ServerHandshake;
use rtmp_server::protocol::message::{Message, UserControl, type_id};
use rtmp_server::protocol::session::Outgoing;
use rtmp_server::protocol::session::server::{ServerConfig, ServerEvent, ServerSession};
use rtmp_server::protocol::url::RtmpUrl;
use rtmp_server::rtmp::client::{Client, ClientError, ClientOptions, PublishEnd};

fn url(addr: std::net::SocketAddr, path: &str) -> RtmpUrl {
    RtmpUrl::parse(&format!("rtmp://{addr}/{path}")).unwrap()
}

#[test]
fn publishes_to_and_plays_from_nginx_rtmp() {
    if !NginxRtmp::available() {
        return;
    }
    // nginx pings connections idle for a second.
    let nginx = NginxRtmp::start("ping 1s; ping_timeout 1s;");
    let options = ClientOptions::default();
    let mut publisher = Client::connect(&url(nginx.addr(), "live"), &options).unwrap();
    publisher.publish("cam?key=1").unwrap();
    let mut player = Client::connect(&url(nginx.addr(), "live"), &options).unwrap();
    player.play("cam").unwrap();
    let reader = thread::spawn(move || {
        let mut video = Vec::new();
        while video.len() < 60 {
            let message = player.read_message()?;
            if message.type_id == type_id::VIDEO {
                video.push(message);
            }
        }
        Ok::<_, ClientError>(video)
    });
    publisher
        .send_metadata(vec![("width".into(), Value::Number(320.0))])
        .unwrap();
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    for n in 0..59u32 {
        if n == 30 {
            // Both connections idle for 2.5 s: nginx pings them, they
            // answer and stay.
            let idle = Instant::now();
            while idle.elapsed() < Duration::from_millis(2500) {
                thread::sleep(Duration::from_millis(100));
                publisher.poll_input().unwrap();
            }
        }
        publisher
            .send_video(n * 40, &video_frame(n, n % 30 == 0, 2000))
            .unwrap();
    }
    let video = reader.join().unwrap().unwrap_or_else(|e| {
        panic!("player dropped: {e}\n{}", nginx.error_log());
    });
    assert_eq!(&video[0].payload[..], &avc_sequence_header()[..]);
    let numbers: Vec<_> = video[1..]
        .iter()
        .map(|m| frame_number(&m.payload).unwrap())
        .collect();
    assert_eq!(numbers, (0..59).collect::<Vec<_>>());
    publisher.delete_stream().unwrap();
}

/// A bare server over TCP: the handshake and a server session accepting
/// every request; a played stream gets 20 data messages of 500 bytes. It
/// sends a ping every 100 ms and records every message the client sends,
/// until the client closes.
fn recording_server(window: u32) -> (std::net::SocketAddr, thread::JoinHandle<Vec<Message>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut socket = &socket;
        let mut handshake = ServerHandshake::new(0);
        let config = ServerConfig {
            window_ack_size: window,
            ..ServerConfig::default()
        };
        let mut session = ServerSession::new(config);
        let mut observer = ChunkDecoder::new(1 << 20);
        let mut encoder = ChunkEncoder::new(128);
        let mut buf = vec![0u8; 65536];
        let mut seen = Vec::new();
        let started = Instant::now();
        let mut last_ping = Instant::now();
        loop {
            let n = match socket.read(&mut buf) {
                Ok(0) => return seen,
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => 0,
                Err(_) => return seen,
            };
            let mut used = 0;
            while used < n && !handshake.is_done() {
                used += handshake.feed(&buf[used..n]).unwrap();
                socket.write_all(&handshake.take_output()).unwrap();
            }
            if !handshake.is_done() {
                continue;
            }
            session.feed(&buf[used..n]);
            observer.feed(&buf[used..n]);
            while let Some(raw) = observer.decode().unwrap() {
                seen.push(Message::decode(&raw).unwrap());
            }
            let mut media = Vec::new();
            while let Some(event) = session.poll().unwrap() {
                match event {
                    ServerEvent::PublishRequested { stream_id, .. } => {
                        session.accept_publish(stream_id)
                    }
                    ServerEvent::PlayRequested { stream_id, .. } => {
                        session.accept_play(stream_id);
                        for _ in 0..20 {
                            let data = vec![Value::string("x".repeat(500))];
                            media.push(Outgoing::data(stream_id, data));
                        }
                    }
                    _ => {}
                }
            }
            let mut out = Vec::new();
            for o in session.take_outgoing().chain(media) {
                encoder.write_message(o.csid, &o.message, &mut out);
            }
            if last_ping.elapsed() >= Duration::from_millis(100) {
                last_ping = Instant::now();
                let ping = Outgoing::control(Message::UserControl(UserControl::PingRequest(
                    started.elapsed().as_millis() as u32,
                )));
                encoder.write_message(ping.csid, &ping.message, &mut out);
            }
            if socket.write_all(&out).is_err() {
                return seen;
            }
        }
    });
    (addr, server)
}

fn pongs(seen: &[Message]) -> usize {
    seen.iter()
        .filter(|m| matches!(m, Message::UserControl(UserControl::PingResponse(_))))
        .count()
}

#[test]
fn answers_pings_while_publishing_and_acknowledges_while_playing() {
    let (addr, server) = recording_server(5_000_000);
    let mut client = Client::connect(&url(addr, "live"), &ClientOptions::default()).unwrap();
    client.publish("cam").unwrap();
    for n in 0..25u32 {
        thread::sleep(Duration::from_millis(40));
        client
            .send_video(n * 40, &video_frame(n, n == 0, 1000))
            .unwrap();
        client.poll_input().unwrap();
    }
    drop(client);
    let seen = server.join().unwrap();
    assert!(
        pongs(&seen) >= 5,
        "pings answered while publishing: {}",
        pongs(&seen)
    );

    let (addr, server) = recording_server(1000);
    let mut client = Client::connect(&url(addr, "live"), &ClientOptions::default()).unwrap();
    client.play("cam").unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(800) {
        client.read_message().unwrap();
    }
    drop(client);
    let seen = server.join().unwrap();
    let acks: Vec<u32> = seen
        .iter()
        .filter_map(|m| match m {
            Message::Acknowledgement { sequence } => Some(*sequence),
            _ => None,
        })
        .collect();
    assert!(!acks.is_empty(), "the 1000-byte window acknowledged");
    assert!(
        acks.windows(2).all(|w| w[0] < w[1]),
        "totals, growing: {acks:?}"
    );
    assert!(pongs(&seen) >= 3);
}

#[test]
fn publishes_a_streams_output_to_another_server() {
    let origin = TestServer::start();
    let edge = TestServer::start();
    let mut source = publisher(origin.addr, "show");
    source
        .send_metadata(vec![("width".into(), Value::Number(640.0))])
        .unwrap();
    source.send_video(0, &avc_sequence_header()).unwrap();
    source.send_audio(0, &aac_sequence_header()).unwrap();
    for n in 0..10 {
        source
            .send_video(n * 40, &video_frame(n, n == 0, 5000 + n as usize))
            .unwrap();
    }
    assert!(wait_for(Duration::from_secs(5), || origin
        .registry()
        .get("live/show")
        .is_some_and(|s| s.status().gop_cache_video_frames == 10)));

    // An output of the origin's stream (not a player), published onward.
    let key = StreamKey::new("live", "show").unwrap();
    let (stream, subscription) = origin.registry().subscribe(
        &key,
        OutputSpec {
            id: 10_000,
            remote_addr: None,
            options: OutputOptions {
                kind: OutputKind::Relay,
                counts_as_player: false,
                ..OutputOptions::rtmp_player(&Default::default())
            },
            on_drop: None,
            doorbell: None,
        },
    );
    assert_eq!(stream.player_count(), 0, "a relay is not a player");
    let mut edge_player = player(edge.addr, "show");
    let edge_url = url(edge.addr, "live");
    let relay = thread::spawn(move || {
        let mut client = Client::connect(&edge_url, &ClientOptions::default())?;
        client.publish("show")?;
        let stop = AtomicBool::new(false);
        client.publish_output(&subscription.catch_up, &subscription.queue, &stop)
    });
    // Metadata, both headers and the cached GOP arrive at the edge's player.
    let got = read_media(&mut edge_player, 13).unwrap();
    assert_eq!(data_name(&got[0]).as_deref(), Some("onMetaData"));
    let meta = amf0::decode_all(&got[0].payload).unwrap();
    assert_eq!(meta[1].get("width").and_then(Value::as_number), Some(640.0));
    assert_eq!(&got[1].payload[..], &avc_sequence_header()[..]);
    assert_eq!(&got[2].payload[..], &aac_sequence_header()[..]);
    for (n, m) in got[3..].iter().enumerate() {
        assert_eq!(&m.payload[..], &video_frame(n as u32, n == 0, 5000 + n)[..]);
    }
    // Live media follows, then the end of the origin's stream ends it.
    source
        .send_video(400, &video_frame(10, false, 100))
        .unwrap();
    let next = read_media(&mut edge_player, 1).unwrap();
    assert_eq!(frame_number(&next[0].payload), Some(10));
    drop(source);
    assert_eq!(relay.join().unwrap().unwrap(), PublishEnd::StreamEnded);
}

#[test]
fn sends_the_encoder_sequence_and_metadata_with_set_data_frame() {
    // A bare server session over TCP records what the client sends.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let mut commands = Vec::new();
        serve_bare_session(&socket, |event, session| {
            match event {
                ServerEvent::PublishRequested { stream_id, name } => {
                    commands.push(format!("publish {name}"));
                    session.accept_publish(stream_id);
                }
                ServerEvent::Media(m) if m.type_id == type_id::DATA_AMF0 => {
                    let values = amf0::decode_all(&m.payload).unwrap();
                    let names: Vec<_> = values.iter().filter_map(Value::as_str).collect();
                    commands.push(names.join(" "));
                }
                ServerEvent::Connected { app } => commands.push(format!("connect {app}")),
                _ => {}
            }
            true
        });
        commands
    });
    let target = RtmpUrl::parse(&format!("rtmp://{addr}/app?auth=1")).unwrap();
    let mut client = Client::connect(&target, &ClientOptions::default()).unwrap();
    client.publish("key?secret=2").unwrap();
    client
        .send_metadata(vec![("width".into(), Value::Number(1.0))])
        .unwrap();
    client.delete_stream().unwrap();
    drop(client);
    let commands = server.join().unwrap();
    assert_eq!(
        commands,
        [
            "connect app?auth=1",
            "publish key?secret=2",
            "@setDataFrame onMetaData"
        ]
    );
}

#[test]
fn connects_by_host_name_and_times_out_on_a_silent_server() {
    let server = TestServer::start();
    let by_name = RtmpUrl::parse(&format!("rtmp://localhost:{}/live", server.addr.port())).unwrap();
    let mut client = Client::connect(&by_name, &ClientOptions::default()).unwrap();
    client.play("named").unwrap();

    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let options = ClientOptions {
        read_timeout: Duration::from_millis(300),
        ..ClientOptions::default()
    };
    let started = Instant::now();
    let result = Client::connect(&url(silent.local_addr().unwrap(), "live"), &options);
    assert!(
        result.as_ref().is_err_and(ClientError::is_timeout),
        "{:?}",
        result.err()
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    let refused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    assert!(matches!(
        Client::connect(&url(refused, "live"), &options),
        Err(ClientError::Io(_))
    ));
}

#[test]
fn a_trickling_server_cannot_hold_a_request_past_its_timeout() {
    // Handshakes, then sends a status every 200 ms and never answers
    // `connect`: each read succeeds, the request must still time out.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        let mut socket = &socket;
        let mut handshake = ServerHandshake::new(0);
        let mut buf = [0u8; 4096];
        while !handshake.is_done() {
            let n = socket.read(&mut buf).unwrap();
            handshake.feed(&buf[..n]).unwrap();
            socket.write_all(&handshake.take_output()).unwrap();
        }
        let mut encoder = ChunkEncoder::new(128);
        for _ in 0..100 {
            let status = Outgoing::status(
                0,
                rtmp_server::protocol::command::Level::Status,
                "NetStream.Play.Reset",
                "",
            );
            let mut out = Vec::new();
            encoder.write_message(status.csid, &status.message, &mut out);
            if socket.write_all(&out).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
    });
    let options = ClientOptions {
        read_timeout: Duration::from_secs(1),
        ..ClientOptions::default()
    };
    let started = Instant::now();
    let result = Client::connect(&url(addr, "live"), &options);
    assert!(
        result.as_ref().is_err_and(ClientError::is_timeout),
        "{:?}",
        result.err()
    );
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "{:?}",
        started.elapsed()
    );
}
