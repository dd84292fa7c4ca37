//! The outbound RTMP client: connects to `rtmp://` URLs (IPv4, IPv6, DNS
//! names) with connect, read and write timeouts, handshakes, and drives the
//! client session to publish or play. It sends shared packets the way
//! players get them (payload pieces borrowed into vectored writes, never
//! copied) and, while publishing, still reads: it answers pings,
//! acknowledges the server's window, follows its chunk size, and reports
//! an error status. [`Client::publish_output`] publishes a stream's output
//! queue (bounded, like every output's) until the stream ends.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::writer::{ChunkWriter, Frame};
use crate::hub::output::{Outbound, OutputQueue};
use crate::hub::packet::{Packet, PacketKind};
use crate::protocol::amf0::{self, Value};
use crate::protocol::chunk_encoder::csid;
use crate::protocol::data;
use crate::protocol::handshake::{ClientHandshake, HandshakeError};
use crate::protocol::message::{Message, RawMessage, type_id};
use crate::protocol::session::client::{ClientConfig, ClientEvent, ClientSession, Incoming};
use crate::protocol::session::{Outgoing, SessionError};
use crate::protocol::url::{RtmpUrl, UrlError};

/// How long a publishing client waits on its queue before reading what the
/// server sent.
const INPUT_POLL: Duration = Duration::from_millis(100);
/// Received messages kept while waiting for a reply; more close the
/// connection (a server flooding a client that only publishes).
const MAX_PENDING: usize = 1024;

#[derive(Debug)]
pub enum ClientError {
    Url(UrlError),
    /// The host did not resolve to any address.
    Resolve(String),
    Io(io::Error),
    Handshake(HandshakeError),
    /// The server broke the protocol.
    Session(SessionError),
    /// The server answered with an error status or `_error`.
    Refused {
        code: String,
        description: String,
    },
    /// The server closed the connection.
    Closed,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Url(e) => write!(f, "{e}"),
            ClientError::Resolve(host) => write!(f, "cannot resolve {host}"),
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Handshake(e) => write!(f, "handshake failed: {e}"),
            ClientError::Session(e) => write!(f, "{e}"),
            ClientError::Refused { code, description } if description.is_empty() => {
                write!(f, "refused: {code}")
            }
            ClientError::Refused { code, description } => {
                write!(f, "refused: {code} ({description})")
            }
            ClientError::Closed => write!(f, "connection closed"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<HandshakeError> for ClientError {
    fn from(e: HandshakeError) -> Self {
        ClientError::Handshake(e)
    }
}

impl From<UrlError> for ClientError {
    fn from(e: UrlError) -> Self {
        ClientError::Url(e)
    }
}

impl From<SessionError> for ClientError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Refused { code, description } => {
                ClientError::Refused { code, description }
            }
            e => ClientError::Session(e),
        }
    }
}

impl ClientError {
    /// A read that timed out (the connection may go on).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}

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
            max_message_size: 4 * 1024 * 1024,
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

pub struct Client {
    socket: Arc<TcpStream>,
    writer: ChunkWriter,
    session: Option<ClientSession>,
    options: ClientOptions,
    read_buffer: Vec<u8>,
    /// Bytes read during the handshake that follow it.
    early: Vec<u8>,
    /// Messages received while waiting for a reply, in order.
    pending: VecDeque<Incoming>,
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
        let mut client = Client::handshake_on(socket, options)?;
        let mut session = ClientSession::passive(options.max_message_size);
        session.feed(&std::mem::take(&mut client.early));
        client.session = Some(session);
        Ok(client)
    }

    fn handshake_url(url: &RtmpUrl, options: &ClientOptions) -> Result<Client, ClientError> {
        let addrs = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(|_| ClientError::Resolve(url.host.clone()))?;
        let mut last_error = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, options.connect_timeout) {
                Ok(socket) => return Client::handshake_on(socket, options),
                Err(e) => last_error = Some(e),
            }
        }
        Err(match last_error {
            Some(e) => ClientError::Io(e),
            None => ClientError::Resolve(url.host.clone()),
        })
    }

    fn handshake_on(socket: TcpStream, options: &ClientOptions) -> Result<Client, ClientError> {
        socket.set_read_timeout(Some(options.read_timeout))?;
        socket.set_write_timeout(Some(options.write_timeout))?;
        socket.set_nodelay(true)?;
        let mut handshake = ClientHandshake::new(options.digest_handshake);
        (&socket).write_all(&handshake.take_output())?;
        let mut buffer = vec![0u8; 64 * 1024];
        let mut early = Vec::new();
        while !handshake.is_done() {
            let n = (&socket).read(&mut buffer)?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            let used = handshake.feed(&buffer[..n])?;
            early.extend_from_slice(&buffer[used..n]);
        }
        (&socket).write_all(&handshake.take_output())?;
        let socket = Arc::new(socket);
        Ok(Client {
            writer: ChunkWriter::new(Arc::clone(&socket)),
            socket,
            session: None,
            options: options.clone(),
            read_buffer: buffer,
            early,
            pending: VecDeque::new(),
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
            self.writer.write_frames(frames, 0)?;
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

    /// Reads until an event `done` accepts; returns the NetStream id.
    /// Statuses on the way (`Play.Reset`) are part of the reply and
    /// dropped; other messages are kept for [`Client::read_message`].
    fn wait_for(&mut self, done: impl Fn(&ClientEvent) -> bool) -> Result<u32, ClientError> {
        loop {
            let incoming = self.read_wire()?;
            if done(&incoming.event) {
                return Ok(self.stream_id());
            }
            if matches!(incoming.event, ClientEvent::Status { .. }) {
                continue;
            }
            if self.pending.len() >= MAX_PENDING {
                return Err(ClientError::Session(SessionError::Protocol(
                    "too many messages before the reply",
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
            Some(incoming) => Ok(incoming),
            None => self.read_wire(),
        }
    }

    fn read_wire(&mut self) -> Result<Incoming, ClientError> {
        loop {
            let polled = self.session()?.poll();
            self.flush()?;
            if let Some(incoming) = polled? {
                return Ok(incoming);
            }
            let n = (&*self.socket).read(&mut self.read_buffer)?;
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

    /// Reads what the server sent without waiting: answers pings and
    /// acknowledges; an error status is an error. What else arrived is
    /// dropped (a publishing client needs none of it).
    pub fn poll_input(&mut self) -> Result<(), ClientError> {
        self.socket.set_nonblocking(true)?;
        let read = loop {
            match (&*self.socket).read(&mut self.read_buffer) {
                Ok(0) => break Err(ClientError::Closed),
                Ok(n) => self.feed_read(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e.into()),
            }
        };
        self.socket.set_nonblocking(false)?;
        read?;
        while self.session()?.poll()?.is_some() {}
        self.flush()
    }

    /// Sends a shared packet on the current NetStream, its payload not
    /// copied. Metadata gets its `@setDataFrame` back, as encoders send it.
    pub fn send_packet(&mut self, packet: &Packet) -> Result<(), ClientError> {
        let stream_id = self.stream_id();
        if packet.kind == PacketKind::Data && packet.sequence_header {
            let mut payload = amf0::encode_all(&data::metadata_for_publishing(&[]));
            payload.extend_from_slice(&packet.payload);
            let message = RawMessage {
                type_id: type_id::DATA_AMF0,
                timestamp: packet.timestamp,
                stream_id,
                payload: Bytes::from(payload),
            };
            return Ok(self.writer.send(csid::STREAM, message)?);
        }
        Ok(self
            .writer
            .write_frames([Frame::Packet(packet)], stream_id)?)
    }

    /// Publishes a stream's output until the stream ends, the stream lets
    /// go of it, `stop` is set or something fails: `catch_up` (metadata,
    /// headers, cached GOP) first, then the queue's media as it comes,
    /// reading what the server sends between writes.
    pub fn publish_output(
        &mut self,
        catch_up: &[Arc<Packet>],
        queue: &OutputQueue,
        stop: &AtomicBool,
    ) -> Result<PublishEnd, ClientError> {
        for packet in catch_up {
            self.send_packet(packet)?;
        }
        queue.record_sent(
            catch_up.iter().map(|p| p.payload.len()).sum(),
            catch_up.last().map(|p| p.timestamp),
        );
        while !stop.load(Ordering::Relaxed) {
            let item = match queue.recv_timeout(INPUT_POLL) {
                Ok(item) => item,
                Err(_) => return Ok(PublishEnd::Released),
            };
            match item {
                Some(Outbound::Media(packet)) => {
                    self.send_packet(&packet)?;
                    queue.release_queued(packet.payload.len());
                    queue.record_sent(packet.payload.len(), Some(packet.timestamp));
                }
                Some(Outbound::PublishEnded) => return Ok(PublishEnd::StreamEnded),
                Some(Outbound::PublishStarted) | None => {}
            }
            self.poll_input()?;
        }
        Ok(PublishEnd::Stopped)
    }

    /// Writes raw bytes (for protocol tests).
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        (&*self.socket).write_all(bytes)
    }

    /// Sends any message on chunk stream `csid` (a Set Chunk Size switches
    /// this client's chunk size).
    pub fn send(&mut self, csid: u32, message: &RawMessage) -> io::Result<()> {
        self.writer.send(csid, message.clone())
    }

    pub fn set_chunk_size(&mut self, size: u32) -> io::Result<()> {
        let message = Outgoing::control(Message::SetChunkSize(size));
        self.writer.send(message.csid, message.message)
    }

    /// Sends a command on NetStream `stream_id` (0: the connection).
    pub fn command(&mut self, stream_id: u32, values: Vec<Value>) -> io::Result<()> {
        let message = Outgoing::command(stream_id, values);
        self.writer.send(message.csid, message.message)
    }

    /// Sends a video payload (copied into a packet: for tests and tools).
    pub fn send_video(&mut self, timestamp: u32, payload: &[u8]) -> Result<(), ClientError> {
        let packet = Packet::new(
            PacketKind::Video,
            timestamp,
            Bytes::copy_from_slice(payload),
        );
        self.send_packet(&packet)
    }

    /// Sends an audio payload (copied into a packet: for tests and tools).
    pub fn send_audio(&mut self, timestamp: u32, payload: &[u8]) -> Result<(), ClientError> {
        let packet = Packet::new(
            PacketKind::Audio,
            timestamp,
            Bytes::copy_from_slice(payload),
        );
        self.send_packet(&packet)
    }

    /// Sends `@setDataFrame onMetaData {properties}` as encoders do.
    pub fn send_metadata(&mut self, properties: Vec<(String, Value)>) -> Result<(), ClientError> {
        let values = [Value::string("onMetaData"), Value::EcmaArray(properties)];
        let packet = Packet::new(PacketKind::Data, 0, Bytes::from(amf0::encode_all(&values)));
        self.send_packet(&packet.into_metadata())
    }
}
