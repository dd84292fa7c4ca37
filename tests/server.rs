//! Integration tests: the server in-process, driven by the in-repo client.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use rtmp_server::config::SlowSubscriberPolicy;
use rtmp_server::protocol::aggregate;
use rtmp_server::protocol::amf0::Value;
use rtmp_server::protocol::command::request;
use rtmp_server::protocol::message::{Message, RawMessage, UserControl, type_id};
use rtmp_server::rtmp::client::{Client, ClientError, ClientOptions};

fn send_gop(publisher: &mut Client, start: u32, frames: u32, frame_len: usize) {
    for i in 0..frames {
        let n = start + i;
        publisher
            .send_video(n * 40, &video_frame(n, i == 0, frame_len))
            .unwrap();
    }
}

#[test]
fn publish_play_delivers_payloads_byte_exact_in_order() {
    let server = TestServer::start();
    let mut player = player(server.addr, "exact");
    let mut publisher = publisher(server.addr, "exact");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    publisher.send_audio(0, &aac_sequence_header()).unwrap();
    let mut sent = Vec::new();
    for n in 0..60u32 {
        // Sizes across the chunk size (4096 out, 128 in) boundaries.
        let video = video_frame(
            n,
            n % 30 == 0,
            [10, 127, 128, 129, 4095, 4096, 4097, 20000][n as usize % 8],
        );
        publisher.send_video(n * 40, &video).unwrap();
        let audio = aac_frame(n);
        publisher.send_audio(n * 40 + 5, &audio).unwrap();
        sent.push((type_id::VIDEO, n * 40, video));
        sent.push((type_id::AUDIO, n * 40 + 5, audio));
    }
    let got = read_media(&mut player, 2 + sent.len()).unwrap();
    assert_eq!(&got[0].payload[..], &avc_sequence_header()[..]);
    assert_eq!(&got[1].payload[..], &aac_sequence_header()[..]);
    for (m, (kind, ts, payload)) in got[2..].iter().zip(&sent) {
        assert_eq!(m.type_id, *kind);
        assert_eq!(m.timestamp, *ts);
        assert_eq!(&m.payload[..], &payload[..]);
        assert_eq!(m.stream_id, player.stream_id());
    }
}

#[test]
fn fifty_players_on_one_stream_all_receive_everything() {
    let server = TestServer::start();
    let mut players: Vec<Client> = (0..50).map(|_| player(server.addr, "fifty")).collect();
    let mut publisher = publisher(server.addr, "fifty");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    send_gop(&mut publisher, 0, 100, 3000);
    let readers: Vec<_> = players
        .drain(..)
        .map(|mut p| thread::spawn(move || read_media(&mut p, 101).unwrap()))
        .collect();
    for reader in readers {
        let got = reader.join().unwrap();
        let numbers: Vec<_> = got[1..]
            .iter()
            .map(|m| frame_number(&m.payload).unwrap())
            .collect();
        assert_eq!(numbers, (0..100).collect::<Vec<_>>());
    }
}

#[test]
fn late_joiner_gets_metadata_headers_then_the_cached_gop() {
    let server = TestServer::start();
    let mut publisher = publisher(server.addr, "late");
    publisher
        .send_metadata(vec![("width".into(), Value::Number(320.0))])
        .unwrap();
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    publisher.send_audio(0, &aac_sequence_header()).unwrap();
    send_gop(&mut publisher, 0, 30, 500); // GOP 1: frames 0..30
    publisher.send_audio(1195, &aac_frame(1)).unwrap();
    send_gop(&mut publisher, 30, 10, 500); // GOP 2: frames 30..40, keyframe 30
    publisher.send_audio(1590, &aac_frame(2)).unwrap();
    // Replaced metadata is what late joiners get.
    publisher
        .send_metadata(vec![("width".into(), Value::Number(640.0))])
        .unwrap();
    wait_for(Duration::from_secs(2), || {
        server
            .registry()
            .get("live/late")
            .is_some_and(|s| s.input_id().is_some())
    });
    thread::sleep(Duration::from_millis(200));

    let mut player = player(server.addr, "late");
    let got = read_media(&mut player, 14).unwrap();
    assert_eq!(data_name(&got[0]).as_deref(), Some("onMetaData"));
    let meta = rtmp_server::protocol::amf0::decode_all(&got[0].payload).unwrap();
    assert_eq!(meta[1].get("width").and_then(Value::as_number), Some(640.0));
    assert_eq!(&got[1].payload[..], &avc_sequence_header()[..]);
    assert_eq!(&got[2].payload[..], &aac_sequence_header()[..]);
    assert_eq!(got[3].type_id, type_id::VIDEO);
    assert_eq!(got[3].payload[0], 0x17, "GOP starts with the keyframe");
    assert_eq!(frame_number(&got[3].payload), Some(30));
    let video: Vec<_> = got[3..]
        .iter()
        .filter(|m| m.type_id == type_id::VIDEO)
        .map(|m| frame_number(&m.payload).unwrap())
        .collect();
    assert_eq!(video, (30..40).collect::<Vec<_>>());
    // Timestamps never go backwards on any chunk stream the player sees.
    for kind in [type_id::VIDEO, type_id::AUDIO] {
        let stamps: Vec<_> = got
            .iter()
            .filter(|m| m.type_id == kind)
            .map(|m| m.timestamp)
            .collect();
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "{kind}: {stamps:?}"
        );
    }
    // Then live media continues seamlessly.
    publisher
        .send_video(1600, &video_frame(40, false, 100))
        .unwrap();
    let next = read_media(&mut player, 1).unwrap();
    assert_eq!(frame_number(&next[0].payload), Some(40));
}

#[test]
fn without_gop_cache_a_late_joiner_starts_at_the_next_keyframe() {
    let server = TestServer::with(|c| c.gop_cache = false);
    let mut publisher = publisher(server.addr, "nocache");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    send_gop(&mut publisher, 0, 10, 200);
    thread::sleep(Duration::from_millis(200));
    let mut player = player(server.addr, "nocache");
    publisher
        .send_video(400, &video_frame(10, false, 200))
        .unwrap();
    publisher
        .send_video(440, &video_frame(11, true, 200))
        .unwrap();
    let got = read_media(&mut player, 2).unwrap();
    assert_eq!(&got[0].payload[..], &avc_sequence_header()[..]);
    assert_eq!(frame_number(&got[1].payload), Some(11));
}

#[test]
fn second_publisher_gets_bad_name_and_is_closed() {
    let server = TestServer::start();
    let _first = publisher(server.addr, "dup");
    let mut second = connect(server.addr, "live").unwrap();
    match second.publish("dup") {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "NetStream.Publish.BadName"),
        other => panic!("expected BadName, got {:?}", other.map(|_| ())),
    }
    // And the server closes the connection.
    loop {
        match second.read_message() {
            Ok(_) => continue,
            Err(ClientError::Closed) | Err(ClientError::Io(_)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // A different key is fine.
    let _other = publisher(server.addr, "dup2");
}

#[test]
fn play_before_publish_waits_then_starts() {
    let server = TestServer::start();
    let mut player = player(server.addr, "early");
    thread::sleep(Duration::from_millis(100));
    let mut publisher = publisher(server.addr, "early");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    send_gop(&mut publisher, 0, 5, 100);
    let got = read_until(&mut player, |m| {
        m.type_id == type_id::VIDEO && m.payload[1] == 1
    })
    .unwrap();
    let codes: Vec<_> = got.iter().filter_map(status_code).collect();
    assert!(
        codes.contains(&"NetStream.Play.PublishNotify".to_string()),
        "{codes:?}"
    );
    let first_video = got.iter().find(|m| m.type_id == type_id::VIDEO).unwrap();
    assert_eq!(&first_video.payload[..], &avc_sequence_header()[..]);
}

#[test]
fn players_are_told_when_the_publisher_leaves_and_the_key_is_freed() {
    let server = TestServer::start();
    let mut publisher = publisher(server.addr, "leave");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    let mut players: Vec<_> = (0..3).map(|_| player(server.addr, "leave")).collect();
    publisher.delete_stream().unwrap();
    drop(publisher);
    for player in &mut players {
        let got = read_until(player, is_stream_eof).unwrap();
        let codes: Vec<_> = got.iter().filter_map(status_code).collect();
        assert!(
            codes.contains(&"NetStream.Play.UnpublishNotify".to_string()),
            "{codes:?}"
        );
    }
    // The key can be published again at once.
    let _again = common::publisher(server.addr, "leave");
}

#[test]
fn a_player_that_never_reads_does_not_hold_back_others() {
    let server = TestServer::with(|c| {
        c.queue_max_bytes = 1 << 20;
        c.queue_max_messages = 256;
        // The publisher below sends 1.5 MB bursts, far faster than real
        // time: the reading player must drain as they come.
        c.write_coalesce = Duration::ZERO;
    });
    let mut publisher = publisher(server.addr, "stuck");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    // Plays, then never reads again.
    let _stuck = player(server.addr, "stuck");
    let mut reader = player(server.addr, "stuck");
    let frames = 600u32;
    let (progress_tx, progress) = std::sync::mpsc::channel();
    let reading = thread::spawn(move || {
        let mut numbers = Vec::new();
        while numbers.len() < frames as usize {
            let m = reader.read_message().unwrap();
            if m.type_id == type_id::VIDEO && m.payload[1] == 1 {
                numbers.push(frame_number(&m.payload).unwrap());
                let _ = progress_tx.send(numbers.len());
            }
        }
        numbers
    });
    let started = Instant::now();
    // 600 x 50 KB = 30 MB: far more than the stuck player's socket buffers
    // and queue can hold. The publisher moves on as soon as the reading
    // player has every 5 frames (250 KB, well inside its 1 MiB queue, so a
    // slow test machine cannot make that player fall behind); it never
    // waits for the stuck one.
    for n in 0..frames {
        publisher
            .send_video(n * 40, &video_frame(n, n % 30 == 0, 50_000))
            .unwrap();
        if (n + 1) % 5 == 0 {
            let want = n as usize + 1;
            while progress
                .recv_timeout(Duration::from_secs(10))
                .expect("reader stalled")
                < want
            {}
        }
    }
    let publish_time = started.elapsed();
    let numbers = reading.join().unwrap();
    assert_eq!(
        numbers,
        (0..frames).collect::<Vec<_>>(),
        "the reading player got everything"
    );
    let stream = server.registry().get("live/stuck").unwrap();
    let stats = stream.player_stats();
    let stuck_stats = stats.iter().max_by_key(|s| s.dropped_messages).unwrap();
    assert!(stuck_stats.dropped_messages > 0, "{stats:?}");
    assert!(stuck_stats.skip_events > 0);
    assert!(stuck_stats.queued_bytes <= (1 << 20) + 50_100, "{stats:?}");
    assert!(publish_time < Duration::from_secs(60), "{publish_time:?}");
}

#[test]
fn a_skipping_player_resumes_at_a_keyframe() {
    let server = TestServer::with(|c| {
        c.queue_max_bytes = 256 * 1024;
        c.queue_max_messages = 64;
    });
    let mut publisher = publisher(server.addr, "resume");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    let mut slow = player(server.addr, "resume");
    // Fill the slow player's socket and queue while it does not read.
    for gop in 0..20 {
        send_gop(&mut publisher, gop * 30, 30, 20_000);
    }
    // Now read everything: after the first frames, any frame following a
    // gap must be a keyframe.
    let stream = server.registry().get("live/resume").unwrap();
    assert!(stream.player_stats()[0].skip_events > 0);
    let reader = thread::spawn(move || {
        read_until(&mut slow, |m| {
            frame_number(&m.payload).is_some_and(|n| (600..10_000).contains(&n))
        })
        .unwrap()
    });
    for gop in 20..60 {
        if reader.is_finished() {
            break;
        }
        send_gop(&mut publisher, gop * 30, 30, 100);
        thread::sleep(Duration::from_millis(50));
    }
    let got = reader.join().unwrap();
    let mut previous: Option<u32> = None;
    for m in got
        .iter()
        .filter(|m| m.type_id == type_id::VIDEO && m.payload[1] == 1)
    {
        let n = frame_number(&m.payload).unwrap();
        if let Some(p) = previous
            && n != p + 1
        {
            assert_eq!(
                m.payload[0], 0x17,
                "frame {n} after gap from {p} is not a keyframe"
            );
        }
        previous = Some(n);
    }
    assert!(previous.is_some_and(|n| n >= 600));
}

#[test]
fn slow_subscriber_disconnect_policy_closes_the_player() {
    let server = TestServer::with(|c| {
        c.slow_subscriber = SlowSubscriberPolicy::Disconnect;
        c.queue_max_bytes = 256 * 1024;
        c.queue_max_messages = 64;
    });
    let mut publisher = publisher(server.addr, "kick");
    let _slow = player(server.addr, "kick");
    for gop in 0..20 {
        send_gop(&mut publisher, gop * 30, 30, 20_000);
    }
    let stream = server.registry().get("live/kick").unwrap();
    assert!(wait_for(Duration::from_secs(5), || stream.player_count() == 0));
}

#[test]
fn obs_style_publish_with_chunk_size_4096_and_set_data_frame() {
    let server = TestServer::start();
    let options = ClientOptions {
        chunk_size: Some(4096),
        ..ClientOptions::default()
    };
    let mut obs = connect_with(server.addr, "live", options).unwrap();
    obs.publish("obs?key=secret").unwrap();
    obs.send_metadata(vec![
        ("encoder".into(), Value::string("obs-output module")),
        ("width".into(), Value::Number(1280.0)),
    ])
    .unwrap();
    obs.send_video(0, &avc_sequence_header()).unwrap();
    obs.send_video(0, &video_frame(0, true, 10_000)).unwrap();
    let mut player = player(server.addr, "obs");
    let got = read_media(&mut player, 3).unwrap();
    let meta = rtmp_server::protocol::amf0::decode_all(&got[0].payload).unwrap();
    assert_eq!(
        meta[0].as_str(),
        Some("onMetaData"),
        "no @setDataFrame prefix"
    );
    assert_eq!(
        meta[1].get("width").and_then(Value::as_number),
        Some(1280.0)
    );
    assert_eq!(got[2].payload.len(), 10_000);
}

#[test]
fn digest_handshake_client_connects_and_plays() {
    let server = TestServer::start();
    let options = ClientOptions {
        digest_handshake: true,
        ..ClientOptions::default()
    };
    let mut client = connect_with(server.addr, "live", options).unwrap();
    client.play("digest").unwrap();
}

#[test]
fn connect_reply_announces_window_bandwidth_and_chunk_size() {
    let server = TestServer::with(|c| c.chunk_size = 8192);
    let mut client = Client::handshake(server.addr, &ClientOptions::default()).unwrap();
    client
        .command(0, request::connect(1.0, "live", "rtmp://x/live"))
        .unwrap();
    let got = read_until(&mut client, |m| m.type_id == type_id::COMMAND_AMF0).unwrap();
    let decoded: Vec<_> = got.iter().map(|m| Message::decode(m).unwrap()).collect();
    assert_eq!(decoded[0], Message::WindowAckSize(5_000_000));
    assert!(matches!(
        decoded[1],
        Message::SetPeerBandwidth {
            size: 5_000_000,
            ..
        }
    ));
    assert_eq!(decoded[2], Message::SetChunkSize(8192));
    let Message::Command(values) = &decoded[3] else {
        panic!()
    };
    assert_eq!(values[0].as_str(), Some("_result"));
    assert_eq!(
        values[3].get("code").and_then(Value::as_str),
        Some("NetConnection.Connect.Success")
    );
}

#[test]
fn connect_without_app_is_rejected() {
    let server = TestServer::start();
    let mut client = Client::handshake(server.addr, &ClientOptions::default()).unwrap();
    client
        .command(
            0,
            vec![
                Value::string("connect"),
                Value::Number(1.0),
                Value::object([]),
            ],
        )
        .unwrap();
    let got = read_until(&mut client, |m| m.type_id == type_id::COMMAND_AMF0).unwrap();
    let last = got.last().unwrap();
    let Ok(Message::Command(values)) = Message::decode(last) else {
        panic!()
    };
    assert_eq!(values[0].as_str(), Some("_error"));
    assert_eq!(
        values[3].get("code").and_then(Value::as_str),
        Some("NetConnection.Connect.Rejected")
    );
}

#[test]
fn unknown_commands_get_error_and_the_session_lives_on() {
    let server = TestServer::start();
    let mut client = connect(server.addr, "live").unwrap();
    client
        .command(0, request::call("launchRockets", 42.0, vec![]))
        .unwrap();
    client
        .command(0, request::call("fireAndForget", 0.0, vec![]))
        .unwrap();
    let got = read_until(&mut client, |m| m.type_id == type_id::COMMAND_AMF0).unwrap();
    let Ok(Message::Command(values)) = Message::decode(got.last().unwrap()) else {
        panic!()
    };
    assert_eq!(values[0].as_str(), Some("_error"));
    assert_eq!(values[1].as_number(), Some(42.0));
    client.play("still-alive").unwrap();
}

#[test]
fn fc_subscribe_is_answered_like_other_servers_do() {
    // rtmpdump sends FCSubscribe (transaction 0) before play.
    let server = TestServer::start();
    let mut client = connect(server.addr, "live").unwrap();
    client
        .command(
            0,
            request::call("FCSubscribe", 0.0, vec![Value::string("cam")]),
        )
        .unwrap();
    let got = read_until(&mut client, |m| m.type_id == type_id::COMMAND_AMF0).unwrap();
    let Ok(Message::Command(values)) = Message::decode(got.last().unwrap()) else {
        panic!()
    };
    assert_eq!(values[0].as_str(), Some("onFCSubscribe"));
    assert_eq!(
        values[3].get("code").and_then(Value::as_str),
        Some("NetStream.Play.Start")
    );
    client.play("cam").unwrap();
}

#[test]
fn amf3_command_messages_are_understood() {
    let server = TestServer::start();
    let mut client = Client::handshake(server.addr, &ClientOptions::default()).unwrap();
    let body =
        rtmp_server::protocol::amf0::encode_all(&request::connect(1.0, "live", "rtmp://x/live"));
    let mut payload = vec![0u8];
    payload.extend(body);
    let raw = RawMessage {
        type_id: type_id::COMMAND_AMF3,
        timestamp: 0,
        stream_id: 0,
        payload: Bytes::from(payload),
    };
    client.send(3, &raw).unwrap();
    let got = read_until(&mut client, |m| m.type_id == type_id::COMMAND_AMF0).unwrap();
    let Ok(Message::Command(values)) = Message::decode(got.last().unwrap()) else {
        panic!()
    };
    assert_eq!(values[0].as_str(), Some("_result"));
}

#[test]
fn aggregate_messages_are_split_with_timestamps() {
    let server = TestServer::start();
    let mut publisher = publisher(server.addr, "agg");
    let mut player = player(server.addr, "agg");
    let subs: Vec<RawMessage> = (0..3u32)
        .map(|n| RawMessage {
            type_id: type_id::VIDEO,
            timestamp: 9000 + n * 40,
            stream_id: 0,
            payload: Bytes::from(video_frame(n, n == 0, 50)),
        })
        .collect();
    let aggregate = RawMessage {
        type_id: type_id::AGGREGATE,
        timestamp: 1000,
        stream_id: publisher.stream_id(),
        payload: aggregate::join(&subs),
    };
    publisher.send(6, &aggregate).unwrap();
    let got = read_media(&mut player, 3).unwrap();
    let stamps: Vec<_> = got.iter().map(|m| m.timestamp).collect();
    assert_eq!(stamps, vec![1000, 1040, 1080]);
    assert_eq!(frame_number(&got[2].payload), Some(2));
}

#[test]
fn acknowledgements_follow_the_peer_window() {
    let server = TestServer::start();
    let mut publisher = publisher(server.addr, "ack");
    publisher
        .send(2, &Message::WindowAckSize(10_000).encode(0, 0))
        .unwrap();
    // 200 KB: at least three windows whatever sizes the server's reads have.
    for n in 0..40 {
        publisher
            .send_video(n * 40, &video_frame(n, n == 0, 5_000))
            .unwrap();
    }
    let mut acks = Vec::new();
    while acks.len() < 3 {
        let m = publisher.read_message().unwrap();
        if let Ok(Message::Acknowledgement { sequence }) = Message::decode(&m) {
            acks.push(sequence);
        }
    }
    assert!(acks.windows(2).all(|w| w[1] > w[0]), "cumulative: {acks:?}");
    assert!(acks[0] >= 10_000, "{acks:?}");
}

#[test]
fn ping_request_is_answered() {
    let server = TestServer::start();
    let mut client = connect(server.addr, "live").unwrap();
    client
        .send(
            2,
            &Message::UserControl(UserControl::PingRequest(1234)).encode(0, 0),
        )
        .unwrap();
    let got = read_until(&mut client, |m| {
        matches!(
            Message::decode(m),
            Ok(Message::UserControl(UserControl::PingResponse(1234)))
        )
    });
    assert!(got.is_ok());
}

#[test]
fn silent_publisher_is_dropped_and_its_key_freed() {
    let server = TestServer::with(|c| c.publisher_timeout = Duration::from_millis(300));
    let mut silent = publisher(server.addr, "silent");
    let mut player = player(server.addr, "silent");
    let got = read_until(&mut player, is_stream_eof).unwrap();
    assert!(
        got.iter()
            .filter_map(status_code)
            .any(|c| c == "NetStream.Play.UnpublishNotify")
    );
    let _next = publisher(server.addr, "silent");
    assert!(
        (0..100).any(|_| silent.read_message().is_err()),
        "silent publisher closed"
    );
}

#[test]
fn publish_or_play_before_connect_closes_the_connection() {
    let server = TestServer::start();
    for command in ["publish", "play", "createStream"] {
        let mut client = Client::handshake(server.addr, &ClientOptions::default()).unwrap();
        client
            .command(1, request::call(command, 1.0, vec![Value::string("x")]))
            .unwrap();
        assert!(client.read_message().is_err(), "{command}");
    }
}

#[test]
fn media_from_a_player_is_dropped() {
    let server = TestServer::start();
    let mut publisher = publisher(server.addr, "noisy");
    let mut noisy = player(server.addr, "noisy");
    let mut listener = player(server.addr, "noisy");
    noisy.send_video(0, &video_frame(999, true, 100)).unwrap();
    publisher.send_video(0, &video_frame(1, true, 100)).unwrap();
    let got = read_media(&mut listener, 1).unwrap();
    assert_eq!(frame_number(&got[0].payload), Some(1));
}

#[test]
fn receive_video_false_stops_video_only() {
    let server = TestServer::start();
    let mut publisher = publisher(server.addr, "novideo");
    let mut player = player(server.addr, "novideo");
    let stream_id = player.stream_id();
    player
        .command(
            stream_id,
            request::call("receiveVideo", 0.0, vec![Value::Boolean(false)]),
        )
        .unwrap();
    // Commands are handled in order: once a ping sent after it is
    // answered, the switch was made.
    player
        .send(
            2,
            &Message::UserControl(UserControl::PingRequest(5)).encode(0, 0),
        )
        .unwrap();
    read_until(&mut player, |m| {
        matches!(
            Message::decode(m),
            Ok(Message::UserControl(UserControl::PingResponse(5)))
        )
    })
    .unwrap();
    publisher.send_video(0, &video_frame(1, true, 100)).unwrap();
    publisher.send_audio(0, &aac_frame(7)).unwrap();
    let got = read_media(&mut player, 1).unwrap();
    assert_eq!(got[0].type_id, type_id::AUDIO);
}

#[test]
fn extended_timestamps_from_the_publisher_reach_players() {
    let server = TestServer::start();
    let mut publisher = publisher(server.addr, "longrun");
    let mut player = player(server.addr, "longrun");
    let base = 0x00ff_fff0u32;
    let stamps: Vec<u32> = (0..6)
        .map(|i| base + i * 40)
        .chain([0xffff_ffd0, 0xffff_fff8, 0x20])
        .collect();
    for (i, &ts) in stamps.iter().enumerate() {
        publisher
            .send_video(ts, &video_frame(i as u32, i == 0, 9000))
            .unwrap();
    }
    let got = read_media(&mut player, stamps.len()).unwrap();
    let received: Vec<_> = got.iter().map(|m| m.timestamp).collect();
    assert_eq!(received, stamps);
    assert!(got.iter().all(|m| m.payload.len() == 9000));
}

#[test]
fn enhanced_rtmp_hevc_keyframes_start_the_gop() {
    let server = TestServer::start();
    let mut publisher = publisher(server.addr, "hevc");
    let ex = |frame_type: u8, packet_type: u8, n: u32| {
        let mut v = vec![0x80 | (frame_type << 4) | packet_type];
        v.extend_from_slice(b"hvc1");
        v.extend_from_slice(&n.to_be_bytes());
        v
    };
    publisher.send_video(0, &ex(1, 0, 0)).unwrap(); // SequenceStart
    for n in 1..=5 {
        publisher
            .send_video(n * 40, &ex(if n == 3 { 1 } else { 2 }, 1, n))
            .unwrap();
    }
    thread::sleep(Duration::from_millis(200));
    let mut player = player(server.addr, "hevc");
    let got = read_media(&mut player, 4).unwrap();
    assert_eq!(&got[0].payload[..], &ex(1, 0, 0)[..]);
    assert_eq!(&got[1].payload[..], &ex(1, 1, 3)[..]);
    assert_eq!(&got[3].payload[..], &ex(2, 1, 5)[..]);
}

#[test]
fn stream_entries_are_removed_when_everyone_leaves() {
    let server = TestServer::start();
    {
        let _publisher = publisher(server.addr, "gone");
        let _player = player(server.addr, "gone");
        assert!(wait_for(Duration::from_secs(2), || server.registry().len() == 1));
    }
    assert!(wait_for(Duration::from_secs(2), || server
        .registry()
        .is_empty()));
}

#[test]
fn shutdown_tells_players_and_returns_quickly() {
    let mut server = TestServer::start();
    let mut publisher = publisher(server.addr, "bye");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    let mut player = player(server.addr, "bye");
    read_media(&mut player, 1).unwrap();
    let reader = thread::spawn(move || read_until(&mut player, is_stream_eof).is_ok());
    let took = server.shutdown();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(reader.join().unwrap(), "player was told the stream ended");
    assert!(TcpStream::connect(server.addr).is_err(), "listener closed");
}

#[test]
fn shutdown_tells_players_waiting_for_a_publisher_too() {
    let mut server = TestServer::start();
    let mut waiting = player(server.addr, "nobody-yet");
    let reader = thread::spawn(move || read_until(&mut waiting, is_stream_eof).is_ok());
    assert!(wait_for(Duration::from_secs(5), || server
        .registry()
        .get("live/nobody-yet")
        .is_some()));
    let took = server.shutdown();
    assert!(reader.join().unwrap(), "the waiting player was told");
    assert!(took < Duration::from_secs(2), "{took:?}: it left once told");
}

#[test]
fn random_bytes_instead_of_a_handshake_close_the_connection_only() {
    let server = TestServer::start();
    let mut garbage = TcpStream::connect(server.addr).unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 16];
    garbage
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = std::io::Read::read(&mut garbage, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "server closed the connection");
    let _still_serving = publisher(server.addr, "after-garbage");
}

#[test]
fn a_player_whose_socket_accepts_nothing_is_closed_after_the_write_timeout() {
    let server = TestServer::with(|c| c.write_timeout = Duration::from_millis(500));
    let mut publisher = publisher(server.addr, "deaf");
    let _deaf = player(server.addr, "deaf");
    let stream = server.registry().get("live/deaf").unwrap();
    // Keep sending until the server gives up on the player: its socket
    // buffers fill, then a write makes no progress for 500 ms.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    while stream.player_count() > 0 && Instant::now() < deadline {
        send_gop(&mut publisher, n * 30, 30, 20_000);
        n += 1;
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stream.player_count(), 0, "deaf player still subscribed");
}

#[test]
fn pause_stops_media_and_unpause_resumes_at_a_keyframe() {
    let server = TestServer::start();
    let mut publisher = publisher(server.addr, "pause");
    let mut player = player(server.addr, "pause");
    let stream_id = player.stream_id();
    let pause = |player: &mut Client, on: bool| {
        let args = vec![Value::Boolean(on), Value::Number(0.0)];
        player
            .command(stream_id, request::call("pause", 0.0, args))
            .unwrap();
    };
    pause(&mut player, true);
    let got = read_until(&mut player, |m| status_code(m).is_some()).unwrap();
    assert_eq!(
        status_code(got.last().unwrap()).as_deref(),
        Some("NetStream.Pause.Notify")
    );
    send_gop(&mut publisher, 0, 5, 100); // not delivered: paused
    thread::sleep(Duration::from_millis(200));
    pause(&mut player, false);
    let got = read_until(&mut player, |m| status_code(m).is_some()).unwrap();
    assert_eq!(
        status_code(got.last().unwrap()).as_deref(),
        Some("NetStream.Unpause.Notify")
    );
    thread::sleep(Duration::from_millis(100));
    publisher
        .send_video(200, &video_frame(5, false, 100))
        .unwrap(); // skipped
    send_gop(&mut publisher, 6, 2, 100); // keyframe 6, then 7
    let media = read_media(&mut player, 2).unwrap();
    let numbers: Vec<_> = media
        .iter()
        .filter_map(|m| frame_number(&m.payload))
        .collect();
    assert_eq!(numbers, vec![6, 7]);
}

#[test]
fn delete_stream_answers_unpublish_success_and_frees_the_key() {
    let server = TestServer::start();
    let mut publisher = publisher(server.addr, "del");
    let stream_id = publisher.stream_id();
    publisher
        .command(
            0,
            request::call("deleteStream", 0.0, vec![Value::Number(stream_id as f64)]),
        )
        .unwrap();
    let got = read_until(&mut publisher, |m| status_code(m).is_some()).unwrap();
    let last = got.last().unwrap();
    assert_eq!(
        status_code(last).as_deref(),
        Some("NetStream.Unpublish.Success")
    );
    assert_eq!(last.stream_id, stream_id, "onStatus on the NetStream's id");
    assert!(wait_for(Duration::from_secs(2), || server
        .registry()
        .is_empty()));
    // The same connection may publish again.
    publisher.publish("del").unwrap();
}

#[test]
fn get_stream_length_and_release_stream_are_answered() {
    let server = TestServer::start();
    let mut client = connect(server.addr, "live").unwrap();
    client
        .command(
            0,
            request::call("getStreamLength", 7.0, vec![Value::string("x")]),
        )
        .unwrap();
    let got = read_until(&mut client, |m| m.type_id == type_id::COMMAND_AMF0).unwrap();
    let Ok(Message::Command(values)) = Message::decode(got.last().unwrap()) else {
        panic!()
    };
    assert_eq!(values[0].as_str(), Some("_result"));
    assert_eq!(values[1].as_number(), Some(7.0));
}

#[test]
fn an_incomplete_handshake_is_closed_after_the_timeout() {
    let server = TestServer::with(|c| c.handshake_timeout = Duration::from_millis(300));
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(&[3, 0, 0]).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = std::io::Read::read(&mut slow, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn onstatus_for_play_uses_the_players_stream_id_and_status_level() {
    let server = TestServer::start();
    let mut client = connect(server.addr, "live").unwrap();
    client
        .command(0, request::call("createStream", 2.0, vec![]))
        .unwrap();
    read_until(&mut client, |m| m.type_id == type_id::COMMAND_AMF0).unwrap();
    client
        .command(1, request::call("play", 0.0, vec![Value::string("ids")]))
        .unwrap();
    let got = read_until(&mut client, |m| {
        status_code(m).as_deref() == Some("NetStream.Play.Start")
    })
    .unwrap();
    let statuses: Vec<_> = got.iter().filter(|m| status_code(m).is_some()).collect();
    assert_eq!(
        status_code(statuses[0]).as_deref(),
        Some("NetStream.Play.Reset")
    );
    for m in &statuses {
        assert_eq!(m.stream_id, 1);
        assert_eq!(status_level(m).as_deref(), Some("status"));
    }
    let begin = got.iter().find(|m| {
        matches!(
            Message::decode(m),
            Ok(Message::UserControl(UserControl::StreamBegin(1)))
        )
    });
    assert!(begin.is_some(), "StreamBegin(1) before Play.Start");
}

#[test]
fn lifecycle_events_of_real_connections_reach_a_consumer_in_order() {
    let server = TestServer::start();
    let events = server.handle().events().subscribe("test", 256);
    let mut publisher = publisher(server.addr, "evented?token=secret");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    let mut player = player(server.addr, "evented");
    read_media(&mut player, 1).unwrap();
    drop(player);
    drop(publisher);
    let mut names = Vec::new();
    let done = wait_for(Duration::from_secs(5), || {
        names.extend(events.try_iter().map(|e| (e.name(), format!("{e:?}"))));
        names
            .iter()
            .filter(|(n, _)| *n == "connection_close")
            .count()
            == 2
    });
    assert!(done, "{names:?}");
    let order: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
    for pair in [
        ["connection_accept", "publish_start"],
        ["publish_start", "input_attached"],
        ["input_attached", "codec_detected"],
        ["play_start", "first_player_joined"],
        ["first_player_joined", "play_stop"],
        ["play_stop", "last_player_left"],
        ["input_detached", "publish_stop"],
    ] {
        let at = |name| {
            order
                .iter()
                .position(|n| *n == name)
                .unwrap_or_else(|| panic!("{name} missing: {order:?}"))
        };
        assert!(at(pair[0]) < at(pair[1]), "{pair:?} in {order:?}");
    }
    assert_eq!(
        order.iter().filter(|n| **n == "connection_accept").count(),
        2
    );
    for (_, shown) in &names {
        assert!(!shown.contains("secret"), "a query in an event: {shown}");
    }
}

#[test]
fn players_beyond_max_subscribers_are_told_the_stream_is_full() {
    let server = TestServer::with(|c| c.max_subscribers = 2);
    let mut publisher = publisher(server.addr, "crowded");
    publisher.send_video(0, &avc_sequence_header()).unwrap();
    let first = player(server.addr, "crowded");
    let _second = player(server.addr, "crowded");
    let mut third = connect(server.addr, "live").unwrap();
    match third.play("crowded") {
        Err(ClientError::Refused { code, description }) => {
            assert_eq!(code, "NetStream.Play.Failed");
            assert_eq!(description, "Stream is full.");
        }
        other => panic!("the third player: {other:?}"),
    }
    // Room again once one leaves.
    drop(first);
    assert!(wait_for(Duration::from_secs(5), || {
        server
            .registry()
            .get("live/crowded")
            .is_some_and(|s| s.player_count() == 1)
    }));
    let mut fourth = connect(server.addr, "live").unwrap();
    fourth.play("crowded").unwrap();
}
