use super::*;
use crate::protocol::chunk_encoder::ChunkEncoder;
use crate::protocol::session::server::{ServerConfig, ServerEvent, ServerSession};

fn config() -> ClientConfig {
    ClientConfig {
        app: "live".into(),
        tc_url: "rtmp://127.0.0.1:1935/live".into(),
        flash_ver: "FMLE/3.0 (compatible; test)".into(),
        max_message_size: 1 << 20,
        caps_ex: None,
    }
}

/// Moves what one side queued to the other, through chunk encoders.
fn wire(out: impl Iterator<Item = Outgoing>, encoder: &mut ChunkEncoder) -> Vec<u8> {
    let mut bytes = Vec::new();
    for o in out {
        encoder.write_message(o.csid, &o.message, &mut bytes);
    }
    bytes
}

struct Pair {
    client: ClientSession,
    server: ServerSession,
    to_server: ChunkEncoder,
    to_client: ChunkEncoder,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            client: ClientSession::new(&config()),
            server: ServerSession::new(ServerConfig::default()),
            to_server: ChunkEncoder::new(128),
            to_client: ChunkEncoder::new(128),
        }
    }

    /// Runs the server side, accepting every request, and returns the
    /// client's events until nothing moves.
    fn run(&mut self) -> Result<Vec<ClientEvent>, SessionError> {
        let mut events = Vec::new();
        loop {
            let bytes = wire(self.client.take_outgoing(), &mut self.to_server);
            self.server.feed(&bytes);
            while let Some(event) = self.server.poll().unwrap() {
                match event {
                    ServerEvent::PublishRequested { stream_id, .. } => {
                        self.server.accept_publish(stream_id)
                    }
                    ServerEvent::PlayRequested { stream_id, .. } => {
                        self.server.accept_play(stream_id)
                    }
                    _ => {}
                }
            }
            let back = wire(self.server.take_outgoing(), &mut self.to_client);
            if bytes.is_empty() && back.is_empty() {
                return Ok(events);
            }
            self.client.feed(&back);
            while let Some(incoming) = self.client.poll()? {
                events.push(incoming.event);
            }
        }
    }
}

#[test]
fn publishes_against_the_server_session() {
    let mut pair = Pair::new();
    pair.client.publish("cam?key=1");
    let events = pair.run().unwrap();
    assert!(events.contains(&ClientEvent::Connected));
    assert!(events.contains(&ClientEvent::Publishing { stream_id: 1 }));
    assert_eq!(
        pair.server.role(),
        Some(crate::protocol::session::server::StreamRole::Publishing(1))
    );
}

#[test]
fn plays_against_the_server_session() {
    let mut pair = Pair::new();
    pair.run().unwrap();
    pair.client.play("cam");
    let events = pair.run().unwrap();
    assert!(events.contains(&ClientEvent::Playing { stream_id: 1 }));
    assert!(events.contains(&ClientEvent::Status {
        code: status::PLAY_RESET.into(),
        description: "Playing and resetting.".into()
    }));
    assert!(events.contains(&ClientEvent::Media), "|RtmpSampleAccess");
}

#[test]
fn an_error_status_is_an_error() {
    let mut pair = Pair::new();
    pair.client.play("cam");
    pair.run().unwrap();
    pair.server
        .reject(1, status::PLAY_FAILED, "No such stream.");
    let bytes = wire(pair.server.take_outgoing(), &mut pair.to_client);
    pair.client.feed(&bytes);
    assert_eq!(
        pair.client.poll(),
        Err(SessionError::Refused {
            code: status::PLAY_FAILED.into(),
            description: "No such stream.".into()
        })
    );
}

#[test]
fn a_ping_flood_queues_no_more_answers_than_the_bound() {
    let mut client = ClientSession::new(&config());
    client.take_outgoing().count();
    let mut encoder = ChunkEncoder::new(128);
    let mut bytes = Vec::new();
    for n in 0..5000u32 {
        let ping = Message::UserControl(UserControl::PingRequest(n));
        encoder.write_message(2, &ping.encode(0, 0), &mut bytes);
    }
    client.feed(&bytes);
    let mut answered = 0;
    loop {
        while client.poll().unwrap().is_some() {}
        let sent = client.take_outgoing().count();
        assert!(sent <= crate::protocol::session::MAX_OUTGOING);
        if sent == 0 {
            break;
        }
        answered += sent;
    }
    assert_eq!(answered, 5000);
}

#[test]
fn pings_are_answered_and_windows_acknowledged() {
    let mut client = ClientSession::new(&config());
    client.take_outgoing().count();
    let mut encoder = ChunkEncoder::new(128);
    let mut bytes = Vec::new();
    for m in [
        Message::WindowAckSize(100),
        Message::UserControl(UserControl::PingRequest(77)),
    ] {
        encoder.write_message(2, &m.encode(0, 0), &mut bytes);
    }
    client.feed(&bytes);
    while client.poll().unwrap().is_some() {}
    let out: Vec<Message> = client
        .take_outgoing()
        .map(|o| Message::decode(&o.message).unwrap())
        .collect();
    assert!(out.contains(&Message::UserControl(UserControl::PingResponse(77))));
}
