//! The poller path of the multiplexed players against a scripted server
//! on loopback: what the blocking set-up read carries over, media is
//! recorded, acknowledgements and ping responses go back, a close is an
//! error.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use super::{Player, run_poller};
use crate::load::{Logs, PlayerLog};
use rtmp_server::protocol::chunk_decoder::{ChunkDecoder, DEFAULT_MAX_MESSAGE_SIZE};
use rtmp_server::protocol::chunk_encoder::ChunkEncoder;
use rtmp_server::protocol::message::{Message, RawMessage, UserControl, type_id};
use rtmp_server::protocol::session::client::{ClientEvent, ClientSession, Incoming};
use rtmp_server::rtmp::client::ClientParts;

fn media(type_id: u8, timestamp: u32, first: u8, len: usize) -> RawMessage {
    let mut payload = vec![1u8; len];
    payload[0] = first;
    RawMessage {
        type_id,
        timestamp,
        stream_id: 1,
        payload: Bytes::from(payload),
    }
}

fn control(message: Message) -> RawMessage {
    message.encode(0, 0)
}

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// Stops the poller thread when the test ends, even by a panic (the
/// scope would wait for it forever).
struct StopOnDrop<'a>(&'a AtomicBool, &'a polling::Poller);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        let _ = self.1.notify();
    }
}

/// Reads what the player sent until `want` has been seen.
fn read_until(server: &mut TcpStream, want: &[Message]) -> Vec<Message> {
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut decoder = ChunkDecoder::new(DEFAULT_MAX_MESSAGE_SIZE);
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while !want.iter().all(|m| seen.contains(m)) {
        let n = server.read(&mut buffer).unwrap();
        assert!(n > 0, "the player closed");
        decoder.feed(&buffer[..n]);
        while let Some(raw) = decoder.decode().unwrap() {
            seen.push(Message::decode(&raw).unwrap());
        }
    }
    seen
}

#[test]
fn carries_over_the_set_up_state_records_media_answers_and_notes_a_close() {
    let (client, mut server) = pair();
    // The server announced a chunk size and a window during the set-up,
    // and the set-up read half of a message past the play response.
    let mut encoder = ChunkEncoder::new(128);
    let mut wire = Vec::new();
    encoder.write_message(2, &control(Message::SetChunkSize(4096)), &mut wire);
    encoder.write_message(2, &control(Message::WindowAckSize(10_000)), &mut wire);
    let announced = wire.len();
    encoder.write_message(6, &media(type_id::VIDEO, 0, 0x27, 3000), &mut wire);
    encoder.write_message(6, &media(type_id::VIDEO, 40, 0x17, 20_000), &mut wire);
    let ping = UserControl::PingRequest(7);
    encoder.write_message(2, &control(Message::UserControl(ping)), &mut wire);
    let split = announced + 1500;
    let mut session = ClientSession::passive(DEFAULT_MAX_MESSAGE_SIZE);
    session.feed(&wire[..split]);
    let pending = VecDeque::from([Incoming {
        message: media(type_id::AUDIO, 0, 0xaf, 300),
        event: ClientEvent::Media,
    }]);
    let parts = ClientParts {
        socket: Arc::new(client),
        session: Some(session),
        pending,
        tls: None,
    };
    let log = PlayerLog {
        connect_started: Some(Instant::now()),
        ..PlayerLog::default()
    };
    let Ok(mut player) = Player::new(0, parts, log) else {
        panic!("no player");
    };
    player.decode(Instant::now()).unwrap();

    let poller = polling::Poller::new().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let logs: Logs = Arc::new(vec![Mutex::default()]);
    let done = AtomicBool::new(false);
    thread::scope(|scope| {
        scope.spawn(|| run_poller(&poller, &rx, &logs, || done.load(Ordering::Relaxed)));
        let _stop = StopOnDrop(&done, &poller);
        tx.send(player).unwrap_or_else(|_| panic!("poller gone"));
        poller.notify().unwrap();
        server.write_all(&wire[split..]).unwrap();
        let seen = read_until(
            &mut server,
            &[Message::UserControl(UserControl::PingResponse(7))],
        );
        // One acknowledgement per read that completes a window.
        let acked = seen.iter().find_map(|m| match m {
            Message::Acknowledgement { sequence } => Some(*sequence),
            _ => None,
        });
        assert!(acked.is_some_and(|s| s >= 10_000), "{seen:?}");
        let mut more = Vec::new();
        encoder.write_message(4, &media(type_id::AUDIO, 80, 0xaf, 300), &mut more);
        server.write_all(&more).unwrap();
        drop(server);
        let deadline = Instant::now() + Duration::from_secs(5);
        while logs[0].lock().error.is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    });
    let log = logs[0].lock();
    let keys: Vec<(u8, u32)> = log.received.iter().map(|r| r.key).collect();
    assert_eq!(keys, [(8, 0), (9, 0), (9, 40), (8, 80)]);
    assert_eq!(log.received[2].bytes, 20_000);
    assert!(log.first_frame.is_some_and(|at| at == log.received[2].at));
    assert!(log.connect_started.is_some());
    assert_eq!(
        log.error.as_deref(),
        Some("connection closed by the server")
    );
}
