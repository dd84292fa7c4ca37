//! Helpers shared by the integration tests: an in-process server on a
//! loopback port, synthetic H.264/AAC payloads, and message readers.
#![allow(dead_code)]

pub mod browser;
pub mod probe;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtmp_server::config::Config;
use rtmp_server::hub::registry::Registry;
use rtmp_server::protocol::amf0::{self, Value};
use rtmp_server::protocol::message::{Message, RawMessage, UserControl, type_id};
use rtmp_server::protocol::url::RtmpUrl;
use rtmp_server::rtmp::client::{Client, ClientError, ClientOptions};
use rtmp_server::server::{Server, ServerHandle};

pub struct TestServer {
    pub addr: SocketAddr,
    /// The HTTP endpoint, when started with [`TestServer::with_http`].
    pub http: Option<SocketAddr>,
    /// The RTMPS listener, when the config has one.
    pub tls: Option<SocketAddr>,
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
        let tls = server.tls_addr();
        let handle = server.handle();
        let thread = std::thread::spawn(move || server.run().unwrap());
        TestServer {
            addr,
            http: None,
            tls,
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
            rtmp_server::http::ApiAccess {
                token: token.map(rtmp_server::config::ApiToken::new),
                guard_reads: false,
            },
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

/// What the tests connect with: the simple handshake and 128-byte chunks
/// unless a test asks otherwise.
pub fn test_options() -> ClientOptions {
    ClientOptions {
        digest_handshake: false,
        chunk_size: None,
        ..ClientOptions::default()
    }
}

/// Connects the library's client to `rtmp://addr/app`.
pub fn connect(addr: SocketAddr, app: &str) -> Result<Client, ClientError> {
    connect_with(addr, app, test_options())
}

pub fn connect_with(
    addr: SocketAddr,
    app: &str,
    options: ClientOptions,
) -> Result<Client, ClientError> {
    let url = RtmpUrl::parse(&format!("rtmp://{addr}/{app}")).unwrap();
    Client::connect(&url, &options)
}

pub fn publisher(addr: SocketAddr, name: &str) -> Client {
    let mut client = connect(addr, "live").unwrap();
    client.publish(name).unwrap();
    client
}

pub fn player(addr: SocketAddr, name: &str) -> Client {
    let mut client = connect(addr, "live").unwrap();
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

pub const BIN: &str = env!("CARGO_BIN_EXE_rtmp-server");

/// The real binary, run as a child process with its log collected.
pub struct ServerProcess {
    pub child: Child,
    pub lines: Receiver<String>,
    pub log: Vec<String>,
}

impl ServerProcess {
    pub fn start(args: &[&str]) -> ServerProcess {
        ServerProcess::start_with_env(args, None)
    }

    /// Starts the binary with one more environment variable.
    pub fn start_with_env(args: &[&str], env: Option<(&str, &str)>) -> ServerProcess {
        let mut command = Command::new(BIN);
        command.env_remove("RTMP_API_TOKEN").stdout(Stdio::null());
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        ServerProcess::spawn(command, args)
    }

    /// Starts the binary under another program, such as `prlimit ...`.
    pub fn start_under(wrapper: &[&str], args: &[&str]) -> ServerProcess {
        let (program, wrapper_args) = wrapper.split_first().unwrap();
        let mut command = Command::new(program);
        command
            .env_remove("RTMP_API_TOKEN")
            .stdout(Stdio::null())
            .args(wrapper_args)
            .arg(BIN);
        ServerProcess::spawn(command, args)
    }

    /// Starts the binary on loopback ports, its HTTP endpoint too, with
    /// `args` after; returns it with its RTMP and HTTP addresses.
    pub fn start_with_http(args: &[&str]) -> (ServerProcess, SocketAddr, SocketAddr) {
        let mut all = vec!["-listen", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut server = ServerProcess::start(&all);
        let rtmp = server.listen_addr();
        let http = server.metrics_addr();
        (server, rtmp, http)
    }

    /// Starts the binary with its standard output's lines sent to the
    /// receiver returned.
    pub fn start_with_stdout(args: &[&str]) -> (ServerProcess, Receiver<String>) {
        let mut command = Command::new(BIN);
        command.env_remove("RTMP_API_TOKEN").stdout(Stdio::piped());
        let mut server = ServerProcess::spawn(command, args);
        let stdout = server.child.stdout.take().unwrap();
        (server, line_reader(stdout))
    }

    fn spawn(mut command: Command, args: &[&str]) -> ServerProcess {
        let mut child = command
            .args(args)
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = line_reader(child.stderr.take().unwrap());
        ServerProcess {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.log.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
        panic!("no log line with {needle:?}; saw {:?}", self.log);
    }

    /// The first log line containing `needle`, among those seen so far or
    /// the next ones.
    pub fn find_line(&mut self, needle: &str) -> String {
        let seen = self.log.iter().find(|l| l.contains(needle)).cloned();
        seen.unwrap_or_else(|| self.wait_line(needle))
    }

    /// Collects the log lines written so far.
    pub fn drain_log(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        &self.log
    }

    /// The HTTP endpoint's address, from its log line.
    pub fn metrics_addr(&mut self) -> SocketAddr {
        let line = self.find_line("metrics and status on http://");
        line.rsplit('/').next().unwrap().parse().unwrap()
    }

    pub fn listen_addr(&mut self) -> SocketAddr {
        let line = self.wait_line("RTMP server listening on ");
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    fn status_field(&self, name: &str) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Resident memory of the server process, in bytes.
    pub fn rss(&self) -> usize {
        self.status_field("VmRSS:") * 1024
    }

    /// The most resident memory the server process has had (VmHWM).
    pub fn peak_rss(&self) -> usize {
        self.status_field("VmHWM:") * 1024
    }

    pub fn threads(&self) -> usize {
        self.status_field("Threads:")
    }

    pub fn is_alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends SIGTERM; returns the exit code and how long exiting took.
    pub fn terminate(&mut self) -> (Option<i32>, Duration) {
        let started = Instant::now();
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.log.push(line);
                }
                return (status.code(), started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                return (None, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A thread sending each line `input` gives to the receiver returned.
fn line_reader(input: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(input).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `tool` runs. When it does not, `RTMP_SERVER_E2E=require` (set by
/// `scripts/test.sh`) makes that a failure; otherwise the caller skips.
pub fn tool_available(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("RTMP_SERVER_E2E").as_deref() != Ok("require"),
            "{tool} is required but not installed"
        );
        eprintln!("{tool} not installed: using the in-repo client instead");
    }
    found
}

/// A normal publish and play on `key`: ffmpeg when installed (a 2 s
/// H.264 + AAC test stream, played by a second ffmpeg), else the in-repo
/// client. Panics unless the player receives video and audio.
pub fn round_trip(addr: SocketAddr, key: &str) {
    let url = format!("rtmp://{addr}/live/{key}");
    if !tool_available("ffmpeg") {
        let mut player = player(addr, key);
        let mut publisher = publisher(addr, key);
        publisher.send_video(0, &avc_sequence_header()).unwrap();
        publisher.send_audio(0, &aac_sequence_header()).unwrap();
        publisher
            .send_video(0, &video_frame(0, true, 1000))
            .unwrap();
        read_media(&mut player, 3).unwrap();
        return;
    }
    let mut play = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            &url,
            "-c",
            "copy",
            "-f",
            "null",
            "-",
        ])
        .args(["-progress", "pipe:1", "-nostats"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The player waits for the publisher, so it sees the whole stream.
    std::thread::sleep(Duration::from_millis(300));
    let publish = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=sample_rate=44100", "-t", "2"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-f", "flv", &url])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        publish.status.success(),
        "publish to {key} failed: {}",
        String::from_utf8_lossy(&publish.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while play.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "player of {key} did not finish");
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = play.wait_with_output().unwrap();
    let progress = String::from_utf8_lossy(&output.stdout);
    let frames: u64 = progress
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("frame="))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        output.status.success() && frames >= 40,
        "player of {key} got {frames} frames"
    );
}

/// A local nginx with the RTMP module on a free loopback port, `application
/// live { live on; }`, plus `rtmp_extra` in its `server` block.
pub struct NginxRtmp {
    pub port: u16,
    child: Child,
    dir: std::path::PathBuf,
}

impl NginxRtmp {
    pub const MODULE: &'static str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

    /// Whether nginx and its RTMP module are installed; a failure when
    /// `RTMP_SERVER_E2E=require`.
    pub fn available() -> bool {
        tool_available("nginx") && {
            let found = std::path::Path::new(Self::MODULE).exists();
            assert!(
                found || std::env::var("RTMP_SERVER_E2E").as_deref() != Ok("require"),
                "libnginx-mod-rtmp is required but not installed"
            );
            found
        }
    }

    pub fn start(rtmp_extra: &str) -> NginxRtmp {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let dir = std::env::temp_dir().join(format!("rtmp-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = format!(
            "load_module {module};\n\
             daemon off;\nmaster_process off;\nworker_processes 1;\n\
             error_log {dir}/error.log info;\npid {dir}/nginx.pid;\n\
             events {{ worker_connections 256; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096; {rtmp_extra}\n\
             application live {{ live on; }} }} }}\n",
            module = Self::MODULE,
            dir = dir.display(),
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        assert!(
            wait_for(Duration::from_secs(10), || std::net::TcpStream::connect(
                addr
            )
            .is_ok()),
            "nginx did not listen: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        NginxRtmp { port, child, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        format!("127.0.0.1:{}", self.port).parse().unwrap()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for NginxRtmp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Publishes numbered video frames of `len` bytes every 40 ms (a keyframe
/// every 25) and audio between them, until `stop`; records when each
/// frame was sent.
pub fn publish_paced(
    mut publisher: Client,
    len: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sent: std::sync::Arc<parking_lot::Mutex<Vec<Instant>>>,
) -> std::thread::JoinHandle<Client> {
    std::thread::spawn(move || {
        publisher.send_video(0, &avc_sequence_header()).unwrap();
        publisher.send_audio(0, &aac_sequence_header()).unwrap();
        let started = Instant::now();
        let mut n = 0u32;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let due = started + Duration::from_millis(n as u64 * 40);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            sent.lock().push(Instant::now());
            publisher
                .send_video(n * 40, &video_frame(n, n.is_multiple_of(25), len))
                .unwrap();
            publisher.send_audio(n * 40, &aac_frame(n)).unwrap();
            n += 1;
        }
        publisher
    })
}

/// Plays a bare server session on `socket`: the handshake, then each
/// event the client's bytes raise goes to `on_event` (which may accept a
/// request on the session), and the session's replies are sent. Ends when
/// the client closes (a reset too) or `on_event` returns false, after the
/// replies to what came with that event are sent.
pub fn serve_bare_session(
    socket: &std::net::TcpStream,
    mut on_event: impl FnMut(
        rtmp_server::protocol::session::server::ServerEvent,
        &mut rtmp_server::protocol::session::server::ServerSession,
    ) -> bool,
) {
    use rtmp_server::protocol::chunk_encoder::ChunkEncoder;
    use rtmp_server::protocol::handshake::ServerHandshake;
    use rtmp_server::protocol::session::server::{ServerConfig, ServerSession};
    use std::io::{Read, Write};
    let mut socket = socket;
    let mut handshake = ServerHandshake::new(0);
    let mut session = ServerSession::new(ServerConfig::default());
    let mut encoder = ChunkEncoder::new(128);
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match socket.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut used = 0;
        while used < n && !handshake.is_done() {
            used += handshake.feed(&buf[used..n]).unwrap();
            socket.write_all(&handshake.take_output()).unwrap();
        }
        session.feed(&buf[used..n]);
        let mut go_on = true;
        while let Ok(Some(event)) = session.poll() {
            go_on &= on_event(event, &mut session);
        }
        let mut out = Vec::new();
        for o in session.take_outgoing() {
            encoder.write_message(o.csid, &o.message, &mut out);
        }
        if socket.write_all(&out).is_err() || !go_on {
            return;
        }
    }
}

/// Waits up to `limit` for `child` to exit; its output. Panics (killing
/// it) if it does not.
pub fn finish(mut child: Child, limit: Duration, what: &str) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    panic!(
        "{what} did not finish within {limit:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// ffmpeg publishing `seconds` of 25 fps H.264 test video and AAC audio
/// to `url`, paced in real time.
pub fn ffmpeg_publish(url: &str, seconds: u32) -> Child {
    ffmpeg_publish_with(seconds, 25, &["-f", "flv", url])
}

/// ffmpeg publishing `seconds` of 25 fps H.264 test video (a keyframe
/// every `gop` frames) and 44.1 kHz AAC sine audio, paced in real time,
/// to what `output` names (`-f flv URL`, a tee...).
pub fn ffmpeg_publish_with(seconds: u32, gop: u32, output: &[&str]) -> Child {
    ffmpeg_encoder("320x240", 440, seconds, gop, output)
}

/// ffmpeg publishing `seconds` of a 25 fps H.264 test picture of `size`
/// (a keyframe every `gop` frames) and a `tone` Hz AAC sine, paced.
pub fn ffmpeg_encoder(size: &str, tone: u32, seconds: u32, gop: u32, output: &[&str]) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=25"),
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency={tone}:sample_rate=44100"),
        ])
        .args(["-t", &seconds.to_string(), "-map", "0:v", "-map", "1:a"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-g", &gop.to_string(), "-c:a", "aac", "-b:a", "64k"])
        .args(output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffmpeg publisher")
}

/// Modern ffmpeg's video encoder options for HEVC, AV1 and VP9: fast,
/// quiet.
pub const HEVC_OPTIONS: &[&str] = &[
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-pix_fmt",
    "yuv420p",
    "-x265-params",
    "log-level=error",
];
pub const AV1_OPTIONS: &[&str] = &[
    "-c:v",
    "libsvtav1",
    "-preset",
    "12",
    "-svtav1-params",
    "log-level=0",
];
pub const VP9_OPTIONS: &[&str] = &[
    "-c:v",
    "libvpx-vp9",
    "-deadline",
    "realtime",
    "-cpu-used",
    "8",
];

/// A modern ffmpeg (see [`modern_ffmpeg`]) set to publish `seconds` of
/// paced 320x240 test video at 25 fps (`video`: its codec options, a
/// keyframe a second) and 48 kHz sine audio (`audio`: its codec options)
/// to what `output` names (`-f flv URL`, a tee...).
pub fn modern_encoder(seconds: u32, video: &[&str], audio: &[&str], output: &[&str]) -> Command {
    let mut command = Command::new(modern_ffmpeg());
    command
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string(), "-map", "0:v", "-map", "1:a"])
        .args(["-g", "25"])
        .args(video)
        .args(audio)
        .args(output)
        .stdin(Stdio::null());
    command
}

/// ffmpeg playing `url` into the FLV file `out` (giving up after 10 s
/// without data).
pub fn ffmpeg_play(url: &str, out: &std::path::Path) -> Child {
    ffmpeg_play_with(&["-rw_timeout", "10000000"], url, out)
}

/// An ffmpeg player copying what it gets from `url` to the FLV file `out`,
/// with `input_options` before its input.
pub fn ffmpeg_play_with(input_options: &[&str], url: &str, out: &std::path::Path) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(input_options)
        .args(["-i", url, "-c", "copy", "-f", "flv"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffmpeg player")
}

/// A GET to the HTTP endpoint at `addr`, with a bearer token if given:
/// the status and body.
pub fn http_get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    http_request("GET", addr, path, token)
}

/// A POST (with no body) to the HTTP endpoint at `addr`, with a bearer
/// token if given: the status and body.
pub fn http_post(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    http_request("POST", addr, path, token)
}

fn http_request(method: &str, addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("http://{addr}{path}");
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut response = if method == "POST" {
        let mut request = agent.post(&url);
        if let Some(bearer) = &bearer {
            request = request.header("Authorization", bearer);
        }
        request.send_empty()
    } else {
        let mut request = agent.get(&url);
        if let Some(bearer) = &bearer {
            request = request.header("Authorization", bearer);
        }
        request.call()
    }
    .unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// The JSON document at `path` of the HTTP endpoint at `addr`.
pub fn http_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = http_get(addr, path, None);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The value of the Prometheus series `name` (without labels) at `http`.
pub fn prometheus_value(http: SocketAddr, name: &str) -> u64 {
    let (_, text) = http_get(http, "/metrics", None);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// A fresh directory for a test's files.
pub fn test_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rtmp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A modern ffmpeg (6.1+: Enhanced RTMP, HEVC/AV1/VP9/Opus in FLV):
/// `RTMP_SERVER_MODERN_FFMPEG` (set by `scripts/test.sh`), else the one
/// `scripts/modern-ffmpeg.sh` installs.
pub fn modern_ffmpeg() -> String {
    if let Ok(path) = std::env::var("RTMP_SERVER_MODERN_FFMPEG") {
        return path;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/modern-ffmpeg.sh");
    let output = Command::new(script).output().expect("run modern-ffmpeg.sh");
    assert!(
        output.status.success(),
        "no modern ffmpeg: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Packets per stream index in `file`, as a modern ffmpeg reads it
/// (Enhanced RTMP FLV included).
pub fn modern_packet_counts(file: &std::path::Path) -> Vec<usize> {
    let output = Command::new(modern_ffmpeg())
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0", "-c", "copy", "-f", "framecrc", "-"])
        .output()
        .unwrap();
    let mut counts = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(Ok(index)) = line.split(',').next().map(|i| i.trim().parse::<usize>()) else {
            continue;
        };
        if counts.len() <= index {
            counts.resize(index + 1, 0);
        }
        counts[index] += 1;
    }
    counts
}
