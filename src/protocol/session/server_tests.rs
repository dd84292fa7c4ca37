//! The server session driven with byte vectors, as a client would send them.

use super::*;
use crate::protocol::chunk_encoder::ChunkEncoder;
use crate::protocol::command::request;
use bytes::Bytes;

/// What a client sends: commands on csid 3, media on 6.
struct Peer {
    encoder: ChunkEncoder,
}

impl Peer {
    fn new() -> Peer {
        Peer {
            encoder: ChunkEncoder::new(128),
        }
    }

    fn bytes(&mut self, csid: u32, message: Message, stream_id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        self.encoder
            .write_message(csid, &message.encode(0, stream_id), &mut out);
        out
    }

    fn call(&mut self, name: &str, tx: f64, args: Vec<Value>, stream_id: u32) -> Vec<u8> {
        self.bytes(
            3,
            Message::Command(request::call(name, tx, args)),
            stream_id,
        )
    }

    fn connect(&mut self, app: &str) -> Vec<u8> {
        self.bytes(
            3,
            Message::Command(request::connect(1.0, app, "rtmp://host/live")),
            0,
        )
    }
}

fn sent(session: &mut ServerSession) -> Vec<Message> {
    session
        .take_outgoing()
        .map(|o| Message::decode(&o.message).unwrap())
        .collect()
}

fn command_name(message: &Message) -> Option<&str> {
    match message {
        Message::Command(values) => values.first().and_then(Value::as_str),
        _ => None,
    }
}

fn status_code(message: &Message) -> Option<&str> {
    match message {
        Message::Command(values) if command_name(message) == Some("onStatus") => {
            values.get(3)?.get("code")?.as_str()
        }
        _ => None,
    }
}

fn connected() -> (ServerSession, Peer) {
    let mut session = ServerSession::new(ServerConfig::default());
    let mut peer = Peer::new();
    session.feed(&peer.connect("live"));
    assert_eq!(
        session.poll().unwrap(),
        Some(ServerEvent::Connected { app: "live".into() })
    );
    sent(&mut session);
    (session, peer)
}

#[test]
fn connect_is_answered_with_window_bandwidth_chunk_size_and_result() {
    let mut session = ServerSession::new(ServerConfig::default());
    session.feed(&Peer::new().connect("live"));
    assert!(matches!(
        session.poll().unwrap(),
        Some(ServerEvent::Connected { .. })
    ));
    let out = sent(&mut session);
    assert_eq!(out[0], Message::WindowAckSize(5_000_000));
    assert_eq!(
        out[1],
        Message::SetPeerBandwidth {
            size: 5_000_000,
            limit: BandwidthLimit::Dynamic
        }
    );
    assert_eq!(out[2], Message::SetChunkSize(4096));
    assert_eq!(command_name(&out[3]), Some("_result"));
    assert_eq!(session.app(), Some("live"));
}

#[test]
fn an_enhanced_rtmp_client_is_told_every_codec_is_forwarded() {
    let result = |connect: Value| {
        let mut session = ServerSession::new(ServerConfig::default());
        let values = vec![Value::string("connect"), Value::Number(1.0), connect];
        session.feed(&Peer::new().bytes(3, Message::Command(values), 0));
        assert!(session.poll().unwrap().is_some());
        let out = sent(&mut session);
        let Some(Message::Command(values)) = out.get(3).cloned() else {
            panic!("{out:?}");
        };
        values.get(2).cloned().unwrap()
    };
    // ffmpeg 6.1+ declares its codecs in fourCcList.
    let enhanced = result(Value::object([
        ("app", Value::string("live")),
        (
            "fourCcList",
            Value::StrictArray(vec![Value::string("hvc1"), Value::string("av01")]),
        ),
    ]));
    let video = enhanced.get("videoFourCcInfoMap").and_then(|m| m.get("*"));
    assert_eq!(video, Some(&Value::Number(4.0)), "CanForward");
    assert!(enhanced.get("fourCcList").is_some());
    let legacy = result(Value::object([("app", Value::string("live"))]));
    assert!(legacy.get("fmsVer").is_some());
    assert!(
        legacy.get("videoFourCcInfoMap").is_none(),
        "legacy unchanged"
    );
}

#[test]
fn the_obs_sequence_raises_one_publish_request_then_media() {
    let (mut session, mut peer) = connected();
    let mut bytes = peer.call("releaseStream", 2.0, vec![Value::string("key")], 0);
    bytes.extend(peer.call("FCPublish", 3.0, vec![Value::string("key")], 0));
    bytes.extend(peer.call("createStream", 4.0, vec![], 0));
    bytes.extend(peer.call(
        "publish",
        5.0,
        vec![Value::string("key?token=t"), Value::string("live")],
        1,
    ));
    // Media in the same read: decided on only after the request.
    bytes.extend(peer.bytes(6, Message::Video(Bytes::from_static(b"\x17\x01")), 1));
    session.feed(&bytes);
    assert_eq!(
        session.poll().unwrap(),
        Some(ServerEvent::PublishRequested {
            stream_id: 1,
            name: "key?token=t".into()
        })
    );
    let answers = sent(&mut session);
    let names: Vec<_> = answers.iter().filter_map(command_name).collect();
    assert_eq!(names, ["_result", "_result", "onFCPublish", "_result"]);
    session.accept_publish(1);
    let accepted = sent(&mut session);
    assert_eq!(
        accepted[0],
        Message::UserControl(UserControl::StreamBegin(1))
    );
    assert_eq!(status_code(&accepted[1]), Some(status::PUBLISH_START));
    let Some(ServerEvent::Media(media)) = session.poll().unwrap() else {
        panic!("media after the accepted publish");
    };
    assert_eq!(&media.payload[..], b"\x17\x01");
    assert_eq!(session.poll().unwrap(), None);
    // deleteStream ends it and is answered.
    session.feed(&peer.call("deleteStream", 0.0, vec![Value::Number(1.0)], 0));
    assert_eq!(
        session.poll().unwrap(),
        Some(ServerEvent::Stopped(StreamRole::Publishing(1)))
    );
    assert_eq!(
        status_code(&sent(&mut session)[0]),
        Some(status::UNPUBLISH_SUCCESS)
    );
    assert_eq!(session.role(), None);
}

#[test]
fn requests_before_connect_and_a_second_role_are_refused() {
    for verb in ["publish", "play", "createStream"] {
        let mut session = ServerSession::new(ServerConfig::default());
        session.feed(&Peer::new().call(verb, 1.0, vec![Value::string("x")], 1));
        assert!(matches!(session.poll(), Err(SessionError::Protocol(_))));
    }
    let (mut session, mut peer) = connected();
    session.feed(&peer.call("play", 0.0, vec![Value::string("a")], 1));
    assert!(matches!(
        session.poll().unwrap(),
        Some(ServerEvent::PlayRequested { .. })
    ));
    session.accept_play(1);
    sent(&mut session);
    session.feed(&peer.call("publish", 0.0, vec![Value::string("b")], 1));
    assert!(matches!(session.poll(), Err(SessionError::Rejected(_))));
    assert_eq!(
        status_code(&sent(&mut session)[0]),
        Some(status::PUBLISH_BAD_NAME)
    );
}

#[test]
fn connect_without_an_app_is_rejected_with_an_error_result() {
    let mut session = ServerSession::new(ServerConfig::default());
    session.feed(&Peer::new().connect(""));
    assert!(matches!(session.poll(), Err(SessionError::Rejected(_))));
    assert_eq!(command_name(&sent(&mut session)[0]), Some("_error"));
}

#[test]
fn play_is_announced_and_pause_and_receive_switches_become_events() {
    let (mut session, mut peer) = connected();
    session.feed(&peer.call("play", 0.0, vec![Value::string("cam")], 1));
    assert_eq!(
        session.poll().unwrap(),
        Some(ServerEvent::PlayRequested {
            stream_id: 1,
            name: "cam".into()
        })
    );
    session.accept_play(1);
    let announce = sent(&mut session);
    assert_eq!(
        announce[0],
        Message::UserControl(UserControl::StreamBegin(1))
    );
    assert_eq!(status_code(&announce[1]), Some(status::PLAY_RESET));
    assert_eq!(status_code(&announce[2]), Some(status::PLAY_START));
    assert!(matches!(&announce[3], Message::Data(v) if v[0].as_str() == Some("|RtmpSampleAccess")));
    session.feed(&peer.call("pause", 0.0, vec![Value::Boolean(true)], 1));
    assert_eq!(session.poll().unwrap(), Some(ServerEvent::Paused(true)));
    assert_eq!(
        status_code(&sent(&mut session)[0]),
        Some(status::PAUSE_NOTIFY)
    );
    session.feed(&peer.call("receiveVideo", 0.0, vec![Value::Boolean(false)], 1));
    assert_eq!(
        session.poll().unwrap(),
        Some(ServerEvent::ReceiveVideo(false))
    );
    session.feed(&peer.call("closeStream", 0.0, vec![], 1));
    assert_eq!(
        session.poll().unwrap(),
        Some(ServerEvent::Stopped(StreamRole::Playing(1)))
    );
}

#[test]
fn media_from_a_peer_that_does_not_publish_is_reported_once() {
    let (mut session, mut peer) = connected();
    for _ in 0..3 {
        session.feed(&peer.bytes(6, Message::Audio(Bytes::from_static(b"\xaf\x01")), 1));
    }
    assert_eq!(session.poll().unwrap(), Some(ServerEvent::StrayMedia));
    assert_eq!(session.poll().unwrap(), None);
}

#[test]
fn unknown_commands_are_counted_and_answered_when_asked() {
    let (mut session, mut peer) = connected();
    session.feed(&peer.call("launchRockets", 7.0, vec![], 0));
    session.feed(&peer.call("fireAndForget", 0.0, vec![], 0));
    assert_eq!(
        session.poll().unwrap(),
        Some(ServerEvent::UnknownCommand {
            name: "launchRockets".into(),
            count: 1
        })
    );
    assert_eq!(command_name(&sent(&mut session)[0]), Some("_error"));
    assert_eq!(
        session.poll().unwrap(),
        Some(ServerEvent::UnknownCommand {
            name: "fireAndForget".into(),
            count: 2
        })
    );
    assert!(
        sent(&mut session).is_empty(),
        "no answer without a transaction"
    );
}

#[test]
fn fc_subscribe_get_stream_length_and_pings_are_answered() {
    let (mut session, mut peer) = connected();
    session.feed(&peer.call("FCSubscribe", 0.0, vec![Value::string("cam")], 0));
    session.feed(&peer.call("getStreamLength", 9.0, vec![Value::string("cam")], 0));
    session.feed(&peer.bytes(2, Message::UserControl(UserControl::PingRequest(1234)), 0));
    assert_eq!(session.poll().unwrap(), None);
    let out = sent(&mut session);
    assert_eq!(command_name(&out[0]), Some("onFCSubscribe"));
    assert_eq!(command_name(&out[1]), Some("_result"));
    assert_eq!(
        out[2],
        Message::UserControl(UserControl::PingResponse(1234))
    );
}

#[test]
fn acknowledges_each_window_of_bytes_received() {
    let (mut session, mut peer) = connected();
    session.feed(&peer.bytes(2, Message::WindowAckSize(1000), 0));
    assert_eq!(session.poll().unwrap(), None);
    let noise = peer.call(
        "fireAndForget",
        0.0,
        vec![Value::string("x".repeat(600))],
        0,
    );
    session.feed(&noise);
    session.feed(&noise);
    let acks: Vec<_> = sent(&mut session)
        .into_iter()
        .filter(|m| matches!(m, Message::Acknowledgement { .. }))
        .collect();
    assert_eq!(acks.len(), 1);
}

#[test]
fn a_ping_flood_queues_no_more_answers_than_the_bound() {
    let (mut session, mut peer) = connected();
    let mut flood = Vec::new();
    for n in 0..10_000u32 {
        flood.extend(peer.bytes(2, Message::UserControl(UserControl::PingRequest(n)), 0));
    }
    session.feed(&flood);
    let mut answered = 0;
    loop {
        assert_eq!(session.poll().unwrap(), None);
        let sent = session.take_outgoing().count();
        assert!(sent <= super::super::MAX_OUTGOING, "{sent} queued at once");
        if sent == 0 {
            break;
        }
        answered += sent;
    }
    assert_eq!(
        answered, 10_000,
        "every ping answered, a bounded batch at a time"
    );
}
