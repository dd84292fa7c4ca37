//! NetConnection and NetStream sessions, sans IO: a session takes the bytes
//! read after the handshake, answers what it can by itself (connect,
//! createStream, pings, acknowledgements...), raises what the application
//! must decide or handle as events (publish and play requests, media), and
//! queues the messages to send. [`server::ServerSession`] is a server's side
//! of a connection; [`client::ClientSession`] a client's.

pub mod client;
pub mod server;

use std::collections::VecDeque;
use std::fmt;

use super::chunk_decoder::{ChunkDecoder, ChunkError};
use super::chunk_encoder::csid;
use super::command::{self, CommandError, Level};
use super::message::{Message, MessageError, RawMessage, UserControl};

/// A message to send, with the chunk stream it goes on.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub csid: u32,
    pub message: RawMessage,
}

impl Outgoing {
    /// A protocol or user control message.
    pub fn control(message: Message) -> Outgoing {
        Outgoing {
            csid: csid::CONTROL,
            message: message.encode(0, 0),
        }
    }

    /// A command: on the command chunk stream for the NetConnection
    /// (stream 0), on the stream chunk stream for a NetStream.
    pub fn command(stream_id: u32, values: Vec<super::amf0::Value>) -> Outgoing {
        Outgoing {
            csid: if stream_id == 0 {
                csid::COMMAND
            } else {
                csid::STREAM
            },
            message: Message::Command(values).encode(0, stream_id),
        }
    }

    /// `onStatus` on NetStream `stream_id`.
    pub fn status(stream_id: u32, level: Level, code: &str, description: &str) -> Outgoing {
        Outgoing::command(stream_id, command::on_status(level, code, description))
    }

    /// A data message (e.g. `|RtmpSampleAccess`) on NetStream `stream_id`.
    pub fn data(stream_id: u32, values: Vec<super::amf0::Value>) -> Outgoing {
        Outgoing {
            csid: csid::STREAM,
            message: Message::Data(values).encode(0, stream_id),
        }
    }
}

/// Why a session cannot go on.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionError {
    Chunk(ChunkError),
    Message(MessageError),
    Command(CommandError),
    /// A request out of order, e.g. `publish` before `connect`.
    Protocol(&'static str),
    /// A request refused; the peer was told why (flush before closing).
    Rejected(String),
    /// The peer answered a request of ours with an error.
    Refused {
        code: String,
        description: String,
    },
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Chunk(e) => write!(f, "bad chunk stream: {e}"),
            SessionError::Message(e) => write!(f, "bad message: {e}"),
            SessionError::Command(e) => write!(f, "bad command: {e}"),
            SessionError::Protocol(what) => write!(f, "protocol violation: {what}"),
            SessionError::Rejected(why) => write!(f, "rejected: {why}"),
            SessionError::Refused { code, description } if description.is_empty() => {
                write!(f, "refused: {code}")
            }
            SessionError::Refused { code, description } => {
                write!(f, "refused: {code} ({description})")
            }
        }
    }
}

impl std::error::Error for SessionError {}

impl From<ChunkError> for SessionError {
    fn from(e: ChunkError) -> Self {
        SessionError::Chunk(e)
    }
}

impl From<MessageError> for SessionError {
    fn from(e: MessageError) -> Self {
        SessionError::Message(e)
    }
}

impl From<CommandError> for SessionError {
    fn from(e: CommandError) -> Self {
        SessionError::Command(e)
    }
}

/// Messages a session queues before it stops decoding until they are
/// sent: a peer flooding pings cannot make it queue answers without bound.
pub const MAX_OUTGOING: usize = 64;

/// What both sides of a connection share: the chunk decoder, the
/// acknowledgement of each window's worth of bytes, answers to pings, and
/// the queue of messages to send.
#[derive(Debug)]
struct Link {
    decoder: ChunkDecoder,
    acks: Acknowledger,
    outgoing: VecDeque<Outgoing>,
}

impl Link {
    fn new(max_message_size: usize) -> Link {
        Link {
            decoder: ChunkDecoder::new(max_message_size),
            acks: Acknowledger::default(),
            outgoing: VecDeque::new(),
        }
    }

    /// Takes bytes read from the peer, acknowledging each window's worth.
    fn feed(&mut self, bytes: &[u8]) {
        if let Some(ack) = self.acks.received(bytes.len()) {
            self.outgoing.push_back(ack);
        }
        self.decoder.feed(bytes);
    }

    fn send(&mut self, outgoing: Outgoing) {
        self.outgoing.push_back(outgoing);
    }

    /// Enough is queued: decoding waits until it is sent.
    fn outgoing_full(&self) -> bool {
        self.outgoing.len() >= MAX_OUTGOING
    }

    /// Handles the peer's Window Acknowledgement Size and Ping Request;
    /// false for any other message.
    fn on_control(&mut self, message: &Message) -> bool {
        match message {
            Message::WindowAckSize(size) => self.acks.window = *size,
            Message::UserControl(UserControl::PingRequest(timestamp)) => self.send(
                Outgoing::control(Message::UserControl(UserControl::PingResponse(*timestamp))),
            ),
            _ => return false,
        }
        true
    }
}

/// Acknowledgements: after each window's worth of bytes received, the
/// total so far, mod 2^32 (not the bytes since the last one).
#[derive(Debug, Default)]
struct Acknowledger {
    received: u64,
    acknowledged: u64,
    /// The peer's Window Acknowledgement Size; 0 until it sends one.
    window: u32,
}

impl Acknowledger {
    /// Counts `n` received bytes; the acknowledgement to send, if due.
    fn received(&mut self, n: usize) -> Option<Outgoing> {
        self.received += n as u64;
        if self.window > 0 && self.received - self.acknowledged >= self.window as u64 {
            self.acknowledged = self.received;
            return Some(Outgoing::control(Message::Acknowledgement {
                sequence: self.received as u32,
            }));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_carry_the_total_mod_2_32_once_per_window() {
        let mut acks = Acknowledger::default();
        assert_eq!(acks.received(10_000), None, "no window yet");
        acks.window = 2_500_000;
        assert_eq!(acks.received(2_489_999), None);
        let ack = acks.received(1).unwrap();
        assert_eq!(
            Message::decode(&ack.message).unwrap(),
            Message::Acknowledgement {
                sequence: 2_500_000
            }
        );
        acks.received = u32::MAX as u64 - 10;
        acks.acknowledged = acks.received;
        let wrapped = acks.received(2_500_000).unwrap();
        assert_eq!(
            Message::decode(&wrapped.message).unwrap(),
            Message::Acknowledgement {
                sequence: 2_499_989
            }
        );
    }
}
