//! A small blocking RTMP client over the same protocol core: handshake
//! (simple or digest), connect, publish, play, and raw message IO. Used by
//! the integration tests and tools; not meant as a general-purpose client.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;

use crate::protocol::amf0::Value;
use crate::protocol::chunk_decoder::{ChunkDecoder, ChunkError};
use crate::protocol::chunk_encoder::ChunkEncoder;
use crate::protocol::command::{Command, request};
use crate::protocol::handshake::{ClientHandshake, HandshakeError};
use crate::protocol::message::{Message, MessageError, RawMessage, UserControl, type_id};

const COMMAND_CSID: u32 = 3;
const AUDIO_CSID: u32 = 4;
const VIDEO_CSID: u32 = 6;
const DATA_CSID: u32 = 5;

#[derive(Debug)]
pub enum ClientError {
    Io(io::Error),
    Handshake(HandshakeError),
    Chunk(ChunkError),
    Message(MessageError),
    /// The server answered with an error status or `_error`.
    Refused {
        code: String,
    },
    /// The server closed the connection.
    Closed,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Handshake(e) => write!(f, "{e}"),
            ClientError::Chunk(e) => write!(f, "{e}"),
            ClientError::Message(e) => write!(f, "{e}"),
            ClientError::Refused { code } => write!(f, "refused: {code}"),
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
impl From<ChunkError> for ClientError {
    fn from(e: ChunkError) -> Self {
        ClientError::Chunk(e)
    }
}
impl From<MessageError> for ClientError {
    fn from(e: MessageError) -> Self {
        ClientError::Message(e)
    }
}

/// How the client connects.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Sign C1 with a digest (the "complex" handshake).
    pub digest_handshake: bool,
    /// Chunk size to announce and use for sending, if not 128.
    pub chunk_size: Option<usize>,
    pub read_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            digest_handshake: false,
            chunk_size: None,
            read_timeout: Duration::from_secs(10),
        }
    }
}

pub struct Client {
    socket: TcpStream,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    transaction_id: f64,
    read_buffer: Vec<u8>,
    /// Messages read while waiting for a response, kept in order.
    pending: std::collections::VecDeque<RawMessage>,
    stream_id: u32,
}

impl Client {
    /// Connects, handshakes and sends `connect` for `app`.
    pub fn connect(addr: SocketAddr, app: &str) -> Result<Client, ClientError> {
        Client::connect_with(addr, app, ClientOptions::default())
    }

    pub fn connect_with(
        addr: SocketAddr,
        app: &str,
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        let mut client = Client::handshake(addr, &options)?;
        if let Some(size) = options.chunk_size {
            client.set_chunk_size(size)?;
        }
        let tc_url = format!("rtmp://{addr}/{app}");
        client.call_and_wait(request::connect(1.0, app, &tc_url))?;
        Ok(client)
    }

    /// Only the handshake: for tests that then send raw bytes.
    pub fn handshake(addr: SocketAddr, options: &ClientOptions) -> Result<Client, ClientError> {
        let mut socket = TcpStream::connect(addr)?;
        socket.set_read_timeout(Some(options.read_timeout))?;
        socket.set_nodelay(true)?;
        let mut handshake = ClientHandshake::new(options.digest_handshake);
        socket.write_all(&handshake.take_output())?;
        let mut buffer = [0u8; 4096];
        let mut decoder = ChunkDecoder::new(64 * 1024 * 1024);
        while !handshake.is_done() {
            let n = socket.read(&mut buffer)?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            let used = handshake.feed(&buffer[..n])?;
            decoder.feed(&buffer[used..n]);
        }
        socket.write_all(&handshake.take_output())?;
        Ok(Client {
            socket,
            decoder,
            encoder: ChunkEncoder::new(128),
            transaction_id: 1.0,
            read_buffer: vec![0; 64 * 1024],
            pending: Default::default(),
            stream_id: 0,
        })
    }

    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// The message stream id of the last `publish` or `play`.
    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// Writes raw bytes (for protocol tests).
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.socket.write_all(bytes)
    }

    pub fn send(&mut self, csid: u32, message: &RawMessage) -> io::Result<()> {
        let mut out = Vec::with_capacity(message.payload.len() + 64);
        self.encoder.write_message(csid, message, &mut out);
        self.socket.write_all(&out)
    }

    pub fn set_chunk_size(&mut self, size: usize) -> io::Result<()> {
        self.send(2, &Message::SetChunkSize(size as u32).encode(0, 0))?;
        self.encoder.set_chunk_size(size);
        Ok(())
    }

    /// Sends a command on message stream `stream_id`.
    pub fn command(&mut self, stream_id: u32, values: Vec<Value>) -> io::Result<()> {
        self.send(COMMAND_CSID, &Message::Command(values).encode(0, stream_id))
    }

    fn next_transaction(&mut self) -> f64 {
        self.transaction_id += 1.0;
        self.transaction_id
    }

    /// Sends a command and waits for the `_result`/`_error` with its
    /// transaction id.
    fn call_and_wait(&mut self, values: Vec<Value>) -> Result<Vec<Value>, ClientError> {
        let transaction_id = values.get(1).and_then(Value::as_number).unwrap_or(0.0);
        self.command(0, values)?;
        loop {
            let message = self.read_wire()?;
            if let Ok(Message::Command(values)) = Message::decode(&message)
                && let Ok(Command::Response {
                    name,
                    transaction_id: id,
                    args,
                }) = Command::parse(&values)
                && id == transaction_id
            {
                if name == "_error" {
                    return Err(ClientError::Refused {
                        code: status_code(args.get(1)),
                    });
                }
                return Ok(args);
            }
            self.pending.push_back(message);
        }
    }

    /// Waits for an `onStatus` on the current stream; error level fails.
    fn wait_status(&mut self) -> Result<String, ClientError> {
        loop {
            let message = self.read_wire()?;
            if let Ok(Message::Command(values)) = Message::decode(&message)
                && values.first().and_then(Value::as_str) == Some("onStatus")
            {
                let info = values.get(3);
                let code = status_code(info);
                if info.and_then(|i| i.get("level")).and_then(Value::as_str) == Some("error") {
                    return Err(ClientError::Refused { code });
                }
                return Ok(code);
            }
            self.pending.push_back(message);
        }
    }

    fn create_stream(&mut self) -> Result<u32, ClientError> {
        let tx = self.next_transaction();
        let args = self.call_and_wait(request::call("createStream", tx, vec![]))?;
        Ok(args.get(1).and_then(Value::as_number).unwrap_or(1.0) as u32)
    }

    /// The OBS sequence: releaseStream, FCPublish, createStream, publish;
    /// returns once `NetStream.Publish.Start` arrives.
    pub fn publish(&mut self, name: &str) -> Result<u32, ClientError> {
        for call in ["releaseStream", "FCPublish"] {
            let tx = self.next_transaction();
            self.command(0, request::call(call, tx, vec![Value::string(name)]))?;
        }
        let stream_id = self.create_stream()?;
        self.stream_id = stream_id;
        let tx = self.next_transaction();
        self.command(
            stream_id,
            request::call(
                "publish",
                tx,
                vec![Value::string(name), Value::string("live")],
            ),
        )?;
        self.wait_status()?;
        Ok(stream_id)
    }

    /// createStream and play; returns once `NetStream.Play.Start` arrives.
    pub fn play(&mut self, name: &str) -> Result<u32, ClientError> {
        let stream_id = self.create_stream()?;
        self.stream_id = stream_id;
        let tx = self.next_transaction();
        self.command(
            stream_id,
            request::call("play", tx, vec![Value::string(name)]),
        )?;
        loop {
            let code = self.wait_status()?;
            if code == "NetStream.Play.Start" {
                return Ok(stream_id);
            }
        }
    }

    pub fn send_video(&mut self, timestamp: u32, payload: &[u8]) -> io::Result<()> {
        let message =
            Message::Video(Bytes::copy_from_slice(payload)).encode(timestamp, self.stream_id);
        self.send(VIDEO_CSID, &message)
    }

    pub fn send_audio(&mut self, timestamp: u32, payload: &[u8]) -> io::Result<()> {
        let message =
            Message::Audio(Bytes::copy_from_slice(payload)).encode(timestamp, self.stream_id);
        self.send(AUDIO_CSID, &message)
    }

    /// Sends `@setDataFrame onMetaData {properties}` as encoders do.
    pub fn send_metadata(&mut self, properties: Vec<(String, Value)>) -> io::Result<()> {
        let values = vec![
            Value::string("@setDataFrame"),
            Value::string("onMetaData"),
            Value::EcmaArray(properties),
        ];
        self.send(DATA_CSID, &Message::Data(values).encode(0, self.stream_id))
    }

    /// `deleteStream` for the current stream, as encoders do when they stop.
    pub fn delete_stream(&mut self) -> io::Result<()> {
        let stream_id = self.stream_id;
        let tx = self.next_transaction();
        self.command(0, request::call("FCUnpublish", tx, vec![]))?;
        self.command(
            0,
            request::call("deleteStream", 0.0, vec![Value::Number(stream_id as f64)]),
        )
    }

    /// Reads the next message; answers pings along the way.
    pub fn read_message(&mut self) -> Result<RawMessage, ClientError> {
        match self.pending.pop_front() {
            Some(message) => Ok(message),
            None => self.read_wire(),
        }
    }

    /// Reads the next message from the connection, bypassing the messages
    /// set aside while waiting for a response.
    fn read_wire(&mut self) -> Result<RawMessage, ClientError> {
        loop {
            if let Some(message) = self.decoder.decode()? {
                // Only user control messages can be pings: media is not
                // decoded here (the benchmark's players read a lot of it).
                if message.type_id == type_id::USER_CONTROL
                    && let Ok(Message::UserControl(UserControl::PingRequest(ts))) =
                        Message::decode(&message)
                {
                    self.send(
                        2,
                        &Message::UserControl(UserControl::PingResponse(ts)).encode(0, 0),
                    )?;
                }
                return Ok(message);
            }
            let n = self.socket.read(&mut self.read_buffer)?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.decoder.feed(&self.read_buffer[..n]);
        }
    }
}

fn status_code(info: Option<&Value>) -> String {
    info.and_then(|i| i.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}
