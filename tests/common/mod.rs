//! Helpers shared by the integration tests: an in-process server on a
//! loopback port, synthetic H.264/AAC payloads, and message readers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtmp_server::client::{Client, ClientError};
use rtmp_server::config::Config;
use rtmp_server::protocol::amf0::{self, Value};
use rtmp_server::protocol::message::{Message, RawMessage, UserControl, type_id};
use rtmp_server::server::registry::Registry;
use rtmp_server::server::{Server, ServerHandle};

pub struct TestServer {
    pub addr: SocketAddr,
    /// The HTTP endpoint, when started with [`TestServer::with_http`].
    pub http: Option<SocketAddr>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::with(|_| {})
    }

    pub fn with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        adjust(&mut config);
        let server = Server::bind(config).unwrap();
        let addr = server.local_addr();
        let handle = server.handle();
        let thread = std::thread::spawn(move || server.run().unwrap());
        TestServer {
            addr,
            http: None,
            handle,
            thread: Some(thread),
        }
    }

    /// A server with its HTTP endpoint on a loopback port.
    pub fn with_http(token: Option<&str>, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let mut server = TestServer::with(adjust);
        let (addr, _thread) = rtmp_server::http::spawn(
            "127.0.0.1:0".parse().unwrap(),
            server.handle.clone(),
            token.map(rtmp_server::config::ApiToken::new),
        )
        .unwrap();
        server.http = Some(addr);
        server
    }

    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Stops the server and returns how long `run` took to return.
    pub fn shutdown(&mut self) -> Duration {
        let started = Instant::now();
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        started.elapsed()
    }

    pub fn registry(&self) -> &Registry {
        self.handle.registry()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub fn publisher(addr: SocketAddr, name: &str) -> Client {
    let mut client = Client::connect(addr, "live").unwrap();
    client.publish(name).unwrap();
    client
}

pub fn player(addr: SocketAddr, name: &str) -> Client {
    let mut client = Client::connect(addr, "live").unwrap();
    client.play(name).unwrap();
    client
}

/// AVC sequence header (contents need not be a valid record here).
pub fn avc_sequence_header() -> Vec<u8> {
    vec![
        0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f,
    ]
}

/// A video frame whose bytes encode `n`, so order can be checked.
pub fn video_frame(n: u32, keyframe: bool, len: usize) -> Vec<u8> {
    let mut v = vec![if keyframe { 0x17 } else { 0x27 }, 0x01, 0, 0, 0];
    v.extend_from_slice(&n.to_be_bytes());
    v.resize(len.max(9), (n % 251) as u8);
    v
}

pub fn aac_sequence_header() -> Vec<u8> {
    vec![0xaf, 0x00, 0x12, 0x10]
}

pub fn aac_frame(n: u32) -> Vec<u8> {
    let mut v = vec![0xaf, 0x01];
    v.extend_from_slice(&n.to_be_bytes());
    v
}

/// The frame number encoded by [`video_frame`] or [`aac_frame`].
pub fn frame_number(payload: &[u8]) -> Option<u32> {
    let at = if payload.first() == Some(&0xaf) { 2 } else { 5 };
    payload
        .get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Audio, video and stream data (not the `|RtmpSampleAccess` sent on play).
pub fn is_media(m: &RawMessage) -> bool {
    match m.type_id {
        type_id::AUDIO | type_id::VIDEO => true,
        type_id::DATA_AMF0 => data_name(m).as_deref() != Some("|RtmpSampleAccess"),
        _ => false,
    }
}

/// Reads until `n` media messages (audio, video, data) have arrived.
pub fn read_media(client: &mut Client, n: usize) -> Result<Vec<RawMessage>, ClientError> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = client.read_message()?;
        if is_media(&m) {
            out.push(m);
        }
    }
    Ok(out)
}

/// The `onStatus` code of a message, if it is one.
pub fn status_code(m: &RawMessage) -> Option<String> {
    match Message::decode(m).ok()? {
        Message::Command(values) if values.first().and_then(Value::as_str) == Some("onStatus") => {
            values
                .get(3)
                .and_then(|i| i.get("code"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        }
        _ => None,
    }
}

pub fn status_level(m: &RawMessage) -> Option<String> {
    match Message::decode(m).ok()? {
        Message::Command(values) => values
            .get(3)
            .and_then(|i| i.get("level"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

pub fn is_stream_eof(m: &RawMessage) -> bool {
    matches!(
        Message::decode(m),
        Ok(Message::UserControl(UserControl::StreamEof(_)))
    )
}

/// Reads messages until one satisfies `pred`; returns everything read.
pub fn read_until(
    client: &mut Client,
    mut pred: impl FnMut(&RawMessage) -> bool,
) -> Result<Vec<RawMessage>, ClientError> {
    let mut seen = Vec::new();
    loop {
        let m = client.read_message()?;
        let done = pred(&m);
        seen.push(m);
        if done {
            return Ok(seen);
        }
    }
}

/// The first AMF value of a data message, e.g. "onMetaData".
pub fn data_name(m: &RawMessage) -> Option<String> {
    amf0::decode_all(&m.payload)
        .ok()?
        .first()
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Polls `cond` for up to `timeout`.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Resident set size of this process in bytes.
pub fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = status
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
