//! The outbound RTMP client: connects to `rtmp://` URLs (IPv4, IPv6, DNS
//! names) with connect, read and write timeouts, handshakes, and drives the
//! client session to publish or play. It sends shared packets the way
//! players get them (payload pieces borrowed into vectored writes, never
//! copied) and, while publishing, still reads: it answers pings,
//! acknowledges the server's window, follows its chunk size, and reports
//! an error status. [`Client::publish_output`] publishes a stream's output
//! queue (bounded, like every output's) until the stream ends.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::socket::{READ_AVAILABLE_LIMIT, read_available};
use super::tls_stream::{TLS_READ_SIZE, TlsStream};
use super::wire::Wire;
use super::writer::{ChunkWriter, Frame, SendMode};
use crate::protocol::chunk_decoder::DEFAULT_MAX_MESSAGE_SIZE;
use crate::protocol::handshake::ClientHandshake;
use crate::protocol::message::RawMessage;
use crate::protocol::session::SessionError;
use crate::protocol::session::client::{ClientConfig, ClientEvent, ClientSession, Incoming};
use crate::protocol::url::RtmpUrl;

/// How often a publishing client reads what the server sent.
const INPUT_POLL: Duration = Duration::from_millis(100);
/// Received messages, and their payload bytes, kept while waiting for a
/// reply; more fail the request (a server flooding instead of answering).
const MAX_PENDING: usize = 1024;
const MAX_PENDING_BYTES: usize = 1024 * 1024;
/// Most queued packets written in one batch by [`Client::publish_output`].
const MAX_BATCH: usize = 128;

/// How the client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Sign C1 with a digest (the "complex" handshake encoders use).
    pub digest_handshake: bool,
    /// Chunk size to announce once publishing starts (128 if `None`).
    pub chunk_size: Option<u32>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub flash_ver: String,
    /// Longest message accepted from the server.
    pub max_message_size: usize,
    /// Enhanced RTMP v2 `capsEx` to declare in `connect` (`Some(1)`: it
    /// reconnects when asked to); `None` declares nothing.
    pub caps_ex: Option<u32>,
    /// `rtmps://`: check the server's certificate against the system's
    /// roots (`false`: `-tls-insecure-upstream`).
    pub verify_tls: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            digest_handshake: true,
            chunk_size: Some(4096),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            flash_ver: format!(
                "FMLE/3.0 (compatible; rtmp-server/{})",
                env!("CARGO_PKG_VERSION")
            ),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            caps_ex: None,
            verify_tls: true,
        }
    }
}

/// Why [`Client::publish_output`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishEnd {
    /// The stream's session ended.
    StreamEnded,
    /// The stream let go of the output.
    Released,
    /// Asked to stop.
    Stopped,
}

mod error;
pub mod retry;
mod send;
mod tls;

pub use error::ClientError;

/// A client taken apart by [`Client::into_parts`].
pub struct ClientParts {
    pub socket: Arc<TcpStream>,
    /// Holds the bytes read and not yet decoded, and the decoder's state
    /// (the server's chunk size, the last headers); `None` before
    /// `connect`.
    pub session: Option<ClientSession>,
    /// Messages received while waiting for a reply and not read yet, in
    /// order (they were read before anything the session still holds).
    pub pending: VecDeque<Incoming>,
    /// `rtmps://`: the TLS the connection's bytes go through.
    pub tls: Option<TlsStream>,
}

pub struct Client {
    socket: Arc<TcpStream>,
    writer: ChunkWriter,
    /// `rtmps://`: the TLS both directions go through.
    tls: Option<TlsStream>,
    session: Option<ClientSession>,
    options: ClientOptions,
    read_buffer: Vec<u8>,
    /// Bytes read during the handshake that follow it.
    early: Vec<u8>,
    /// Messages received while waiting for a reply, in order, and their
    /// payload bytes.
    pending: VecDeque<Incoming>,
    pending_bytes: usize,
    /// The socket's read timeout now.
    read_timeout: Option<Duration>,
}

/// The time a request step (handshake, connect, publish, play) must be
/// done by, however the server trickles its bytes.
#[derive(Debug, Clone, Copy)]
struct Deadline(Instant);

impl Deadline {
    fn after(timeout: Duration) -> Deadline {
        Deadline(Instant::now() + timeout)
    }

    /// Time left, or a timeout error.
    fn left(&self) -> Result<Duration, ClientError> {
        let left = self.0.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ClientError::Io(io::ErrorKind::TimedOut.into()));
        }
        Ok(left)
    }
}

/// A client's way out: the socket, through TLS if it has it.
fn wire<'a>(socket: &'a TcpStream, tls: &'a mut Option<TlsStream>) -> Wire<'a> {
    Wire::new(socket, tls.as_mut().map(TlsStream::connection))
}

/// One read of plaintext from the server; through TLS, `Interrupted` when
/// what was read decrypts to none yet (the caller reads again).
fn read_some(
    socket: &TcpStream,
    tls: &mut Option<TlsStream>,
    buffer: &mut [u8],
) -> io::Result<usize> {
    let Some(tls) = tls else {
        return (&*socket).read(buffer);
    };
    if let Some(n) = tls.take(buffer) {
        return Ok(n);
    }
    let mut ciphertext = vec![0u8; TLS_READ_SIZE];
    let n = (&*socket).read(&mut ciphertext)?;
    if n == 0 {
        return Ok(0);
    }
    tls.feed(ciphertext.get(..n).unwrap_or_default(), socket, true)?;
    tls.take(buffer)
        .ok_or_else(|| io::ErrorKind::Interrupted.into())
}

/// The addresses of `host`, resolved within `timeout` (a DNS lookup that
/// hangs is left behind on its own thread).
fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, ClientError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    let name = host.to_owned();
    thread::Builder::new()
        .name("resolve".into())
        .spawn(move || {
            let found = (name.as_str(), port)
                .to_socket_addrs()
                .map(|addrs| addrs.collect::<Vec<_>>());
            let _ = tx.send(found);
        })?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(_) => Err(ClientError::Resolve(host.to_owned())),
        Err(_) => Err(ClientError::Io(io::ErrorKind::TimedOut.into())),
    }
}

impl Client {
    /// Connects to `url`'s server, handshakes and sends `connect` for its
    /// application; returns once the server accepted it.
    pub fn connect(url: &RtmpUrl, options: &ClientOptions) -> Result<Client, ClientError> {
        let mut client = Client::handshake_url(url, options)?;
        let config = ClientConfig {
            app: url.connect_app(),
            tc_url: url.tc_url(),
            flash_ver: options.flash_ver.clone(),
            max_message_size: options.max_message_size,
            caps_ex: options.caps_ex,
        };
        let mut session = ClientSession::new(&config);
        session.feed(&std::mem::take(&mut client.early));
        client.session = Some(session);
        client.flush()?;
        client.wait_for(|e| matches!(e, ClientEvent::Connected))?;
        Ok(client)
    }

    /// Connects and handshakes only: for tests that then write their own
    /// requests. What the server sends is read and classified, pings
    /// answered; no reply counts as a failure.
    pub fn handshake(addr: SocketAddr, options: &ClientOptions) -> Result<Client, ClientError> {
        let socket = TcpStream::connect_timeout(&addr, options.connect_timeout)?;
        let mut client = Client::handshake_on(socket, None, options)?;
        let mut session = ClientSession::passive(options.max_message_size);
        session.feed(&std::mem::take(&mut client.early));
        client.session = Some(session);
        Ok(client)
    }

    /// Resolves and connects within `connect_timeout` in all (trying each
    /// address in turn), then handshakes.
    fn handshake_url(url: &RtmpUrl, options: &ClientOptions) -> Result<Client, ClientError> {
        let deadline = Deadline::after(options.connect_timeout);
        let mut last_error = None;
        for addr in resolve(&url.host, url.port, options.connect_timeout)? {
            match TcpStream::connect_timeout(&addr, deadline.left()?) {
                Ok(socket) => {
                    let tls = match url.tls {
                        true => Some(TlsStream::new(tls::connection(
                            &url.host,
                            options.verify_tls,
                        )?)),
                        false => None,
                    };
                    return Client::handshake_on(socket, tls, options);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(match last_error {
            Some(e) => ClientError::Io(e),
            None => ClientError::Resolve(url.host.clone()),
        })
    }

    /// The handshake, done within `read_timeout` in all.
    fn handshake_on(
        socket: TcpStream,
        mut tls: Option<TlsStream>,
        options: &ClientOptions,
    ) -> Result<Client, ClientError> {
        let deadline = Deadline::after(options.read_timeout);
        socket.set_write_timeout(Some(options.write_timeout))?;
        socket.set_nodelay(true)?;
        let mut handshake = ClientHandshake::new(options.digest_handshake);
        wire(&socket, &mut tls).send_all(&mut [IoSlice::new(&handshake.take_output())])?;
        let mut buffer = vec![0u8; 64 * 1024];
        let mut early = Vec::new();
        while !handshake.is_done() {
            socket.set_read_timeout(Some(deadline.left()?))?;
            let n = match read_some(&socket, &mut tls, &mut buffer) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                read => read?,
            };
            let read = buffer.get(..n).unwrap_or_default();
            if read.is_empty() {
                return Err(ClientError::Closed);
            }
            let used = handshake.feed(read)?;
            early.extend_from_slice(read.get(used..).unwrap_or_default());
        }
        wire(&socket, &mut tls).send_all(&mut [IoSlice::new(&handshake.take_output())])?;
        socket.set_read_timeout(Some(options.read_timeout))?;
        let socket = Arc::new(socket);
        Ok(Client {
            writer: ChunkWriter::default(),
            tls,
            socket,
            session: None,
            options: options.clone(),
            read_buffer: buffer,
            early,
            pending: VecDeque::new(),
            pending_bytes: 0,
            read_timeout: Some(options.read_timeout),
        })
    }

    fn session(&mut self) -> Result<&mut ClientSession, ClientError> {
        self.session
            .as_mut()
            .ok_or(ClientError::Session(SessionError::Protocol(
                "not connected",
            )))
    }

    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// The socket, shared: another thread may shut it down to stop what
    /// this client is doing (a blocked write returns).
    pub fn socket_handle(&self) -> Arc<TcpStream> {
        Arc::clone(&self.socket)
    }

    /// Takes the client apart, for a caller that drives the connection
    /// itself (without blocking, say): nothing read is lost.
    pub fn into_parts(self) -> ClientParts {
        ClientParts {
            socket: self.socket,
            session: self.session,
            pending: self.pending,
            tls: self.tls,
        }
    }

    /// How long a read may wait from now on (a playing client that looks
    /// between reads whether it should stop).
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.options.read_timeout = timeout;
    }

    /// The NetStream of the last `publish` or `play`.
    pub fn stream_id(&self) -> u32 {
        self.session.as_ref().map_or(0, ClientSession::stream_id)
    }

    /// Sends what the session queued.
    fn flush(&mut self) -> Result<(), ClientError> {
        let Some(session) = self.session.as_mut() else {
            return Ok(());
        };
        let frames: Vec<Frame<'static>> = session.take_outgoing().map(Frame::from).collect();
        if !frames.is_empty() {
            self.writer.write_frames(
                &mut wire(&self.socket, &mut self.tls),
                frames,
                0,
                SendMode::Wait,
            )?;
        }
        Ok(())
    }

    /// Publishes `name` (with its `?query`) as encoders do; returns the
    /// NetStream id once `NetStream.Publish.Start` arrives, then announces
    /// the chunk size.
    pub fn publish(&mut self, name: &str) -> Result<u32, ClientError> {
        self.session()?.publish(name);
        self.flush()?;
        let stream_id = self.wait_for(|e| matches!(e, ClientEvent::Publishing { .. }))?;
        if let Some(size) = self.options.chunk_size {
            self.session()?.set_chunk_size(size);
            self.flush()?;
        }
        Ok(stream_id)
    }

    /// Plays `name`; returns once `NetStream.Play.Start` arrives.
    pub fn play(&mut self, name: &str) -> Result<u32, ClientError> {
        self.session()?.play(name);
        self.flush()?;
        self.wait_for(|e| matches!(e, ClientEvent::Playing { .. }))
    }

    /// Reads until an event `done` accepts, within `read_timeout`;
    /// returns the NetStream id. Statuses on the way (`Play.Reset`) are
    /// part of the reply and dropped; other messages are kept for
    /// [`Client::read_message`], within bounds.
    fn wait_for(&mut self, done: impl Fn(&ClientEvent) -> bool) -> Result<u32, ClientError> {
        let deadline = Deadline::after(self.options.read_timeout);
        loop {
            let incoming = self.read_wire(Some(deadline))?;
            if done(&incoming.event) {
                return Ok(self.stream_id());
            }
            if matches!(incoming.event, ClientEvent::Status { .. }) {
                continue;
            }
            self.pending_bytes += incoming.message.payload.len();
            if self.pending.len() >= MAX_PENDING || self.pending_bytes > MAX_PENDING_BYTES {
                return Err(ClientError::Session(SessionError::Protocol(
                    "too much sent before the reply",
                )));
            }
            self.pending.push_back(incoming);
        }
    }

    /// Ends publishing as encoders do (`FCUnpublish`, `deleteStream`).
    pub fn delete_stream(&mut self) -> Result<(), ClientError> {
        self.session()?.unpublish();
        self.flush()
    }

    /// The next message from the server (pings are answered, windows
    /// acknowledged along the way).
    pub fn read_message(&mut self) -> Result<RawMessage, ClientError> {
        Ok(self.read_incoming()?.message)
    }

    /// The next message and what it meant.
    pub fn read_incoming(&mut self) -> Result<Incoming, ClientError> {
        match self.pending.pop_front() {
            Some(incoming) => {
                self.pending_bytes -= incoming.message.payload.len();
                Ok(incoming)
            }
            None => self.read_wire(None),
        }
    }

    /// The next message from the socket, answering what needs answers; by
    /// `deadline` if given, else within `read_timeout` of each read.
    fn read_wire(&mut self, deadline: Option<Deadline>) -> Result<Incoming, ClientError> {
        loop {
            let polled = self.session()?.poll()?;
            let had_outgoing = self.session()?.has_outgoing();
            self.flush()?;
            if let Some(incoming) = polled {
                return Ok(incoming);
            }
            if had_outgoing {
                // The session stopped to have its answers sent: go on.
                continue;
            }
            let timeout = match deadline {
                Some(deadline) => Some(deadline.left()?),
                None => Some(self.options.read_timeout),
            };
            if timeout != self.read_timeout {
                self.socket.set_read_timeout(timeout)?;
                self.read_timeout = timeout;
            }
            let n = match read_some(&self.socket, &mut self.tls, &mut self.read_buffer) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                read => read?,
            };
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.feed_read(n);
        }
    }

    /// Feeds the first `n` bytes of the read buffer to the session.
    fn feed_read(&mut self, n: usize) {
        if let (Some(session), Some(bytes)) = (self.session.as_mut(), self.read_buffer.get(..n)) {
            session.feed(bytes);
        }
    }

    /// Reads what the server sent without waiting (a bounded amount):
    /// answers pings and acknowledges; an error status is an error. What
    /// else arrived is dropped (a publishing client needs none of it).
    pub fn poll_input(&mut self) -> Result<(), ClientError> {
        let Client {
            socket,
            session,
            read_buffer,
            tls,
            ..
        } = self;
        let Some(session) = session.as_mut() else {
            return Ok(());
        };
        let read = |buffer: &mut [u8]| read_some(socket, tls, buffer);
        read_available(socket, read_buffer, READ_AVAILABLE_LIMIT, read, |bytes| {
            session.feed(bytes)
        })
        .map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => ClientError::Closed,
            _ => ClientError::Io(e),
        })?;
        loop {
            while self.session()?.poll()?.is_some() {}
            if !self.session()?.has_outgoing() {
                return Ok(());
            }
            self.flush()?;
        }
    }
}
