//! RTMP messages: the raw form the chunk layer carries, and the typed form
//! of protocol control, user control, command and data messages.

use std::fmt;

use byteorder::{BigEndian, ByteOrder};
use bytes::Bytes;

use super::amf0::{self, Amf0Error, Value};

/// Message type ids from the RTMP specification.
pub mod type_id {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// A complete message as reassembled from (or split into) chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub type_id: u8,
    /// Absolute timestamp in milliseconds, wrapping at 2^32.
    pub timestamp: u32,
    pub stream_id: u32,
    pub payload: Bytes,
}

/// User control event types.
pub mod event {
    pub const STREAM_BEGIN: u16 = 0;
    pub const STREAM_EOF: u16 = 1;
    pub const STREAM_DRY: u16 = 2;
    pub const SET_BUFFER_LENGTH: u16 = 3;
    pub const STREAM_IS_RECORDED: u16 = 4;
    pub const PING_REQUEST: u16 = 6;
    pub const PING_RESPONSE: u16 = 7;
}

/// A user control message (type 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserControl {
    StreamBegin(u32),
    StreamEof(u32),
    StreamDry(u32),
    SetBufferLength {
        stream_id: u32,
        buffer_ms: u32,
    },
    StreamIsRecorded(u32),
    PingRequest(u32),
    PingResponse(u32),
    /// An event type this server has no use for.
    Other(u16),
}

/// How the peer should treat a Set Peer Bandwidth limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BandwidthLimit {
    Hard = 0,
    Soft = 1,
    Dynamic = 2,
}

/// A message in typed form.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    SetChunkSize(u32),
    Abort {
        chunk_stream_id: u32,
    },
    Acknowledgement {
        sequence: u32,
    },
    UserControl(UserControl),
    WindowAckSize(u32),
    SetPeerBandwidth {
        size: u32,
        limit: BandwidthLimit,
    },
    Audio(Bytes),
    Video(Bytes),
    /// A data message (types 18 and 15) as AMF0 values.
    Data(Vec<Value>),
    /// A command message (types 20 and 17) as AMF0 values.
    Command(Vec<Value>),
    Aggregate(Bytes),
    /// Shared object messages and unknown types: accepted and ignored.
    Ignored(u8),
}

/// Why a message could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// A fixed-size control message was shorter than its type requires.
    Truncated { type_id: u8, len: usize },
    /// The AMF body of a command or data message is malformed.
    Amf(Amf0Error),
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Truncated { type_id, len } => {
                write!(f, "message type {type_id} too short ({len} bytes)")
            }
            MessageError::Amf(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MessageError {}

impl From<Amf0Error> for MessageError {
    fn from(e: Amf0Error) -> Self {
        MessageError::Amf(e)
    }
}

fn be32(raw: &RawMessage, at: usize) -> Result<u32, MessageError> {
    raw.payload
        .get(at..at + 4)
        .map(BigEndian::read_u32)
        .ok_or(MessageError::Truncated {
            type_id: raw.type_id,
            len: raw.payload.len(),
        })
}

/// Strips the AMF3 format byte of type 15/17 messages (it is 0 when the
/// rest is AMF0, which is what clients send in practice).
fn amf_body(raw: &RawMessage) -> &[u8] {
    match raw.type_id {
        type_id::DATA_AMF3 | type_id::COMMAND_AMF3 => raw.payload.get(1..).unwrap_or(&[]),
        _ => &raw.payload,
    }
}

impl Message {
    pub fn decode(raw: &RawMessage) -> Result<Message, MessageError> {
        Ok(match raw.type_id {
            type_id::SET_CHUNK_SIZE => Message::SetChunkSize(be32(raw, 0)? & 0x7fff_ffff),
            type_id::ABORT => Message::Abort {
                chunk_stream_id: be32(raw, 0)?,
            },
            type_id::ACKNOWLEDGEMENT => Message::Acknowledgement {
                sequence: be32(raw, 0)?,
            },
            type_id::USER_CONTROL => Message::UserControl(decode_user_control(raw)?),
            type_id::WINDOW_ACK_SIZE => Message::WindowAckSize(be32(raw, 0)?),
            type_id::SET_PEER_BANDWIDTH => {
                let size = be32(raw, 0)?;
                let limit = match raw.payload.get(4) {
                    Some(0) => BandwidthLimit::Hard,
                    Some(1) => BandwidthLimit::Soft,
                    _ => BandwidthLimit::Dynamic,
                };
                Message::SetPeerBandwidth { size, limit }
            }
            type_id::AUDIO => Message::Audio(raw.payload.clone()),
            type_id::VIDEO => Message::Video(raw.payload.clone()),
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => {
                Message::Data(amf0::decode_all(amf_body(raw))?)
            }
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                Message::Command(amf0::decode_all(amf_body(raw))?)
            }
            type_id::AGGREGATE => Message::Aggregate(raw.payload.clone()),
            other => Message::Ignored(other),
        })
    }

    /// The wire form of this message. Commands and data are written as AMF0
    /// (types 20 and 18).
    pub fn encode(&self, timestamp: u32, stream_id: u32) -> RawMessage {
        let (type_id, payload): (u8, Vec<u8>) = match self {
            Message::SetChunkSize(size) => (type_id::SET_CHUNK_SIZE, size.to_be_bytes().to_vec()),
            Message::Abort { chunk_stream_id } => {
                (type_id::ABORT, chunk_stream_id.to_be_bytes().to_vec())
            }
            Message::Acknowledgement { sequence } => {
                (type_id::ACKNOWLEDGEMENT, sequence.to_be_bytes().to_vec())
            }
            Message::UserControl(event) => (type_id::USER_CONTROL, encode_user_control(event)),
            Message::WindowAckSize(size) => (type_id::WINDOW_ACK_SIZE, size.to_be_bytes().to_vec()),
            Message::SetPeerBandwidth { size, limit } => {
                let mut p = size.to_be_bytes().to_vec();
                p.push(*limit as u8);
                (type_id::SET_PEER_BANDWIDTH, p)
            }
            Message::Audio(p) => (type_id::AUDIO, p.to_vec()),
            Message::Video(p) => (type_id::VIDEO, p.to_vec()),
            Message::Data(values) => (type_id::DATA_AMF0, amf0::encode_all(values)),
            Message::Command(values) => (type_id::COMMAND_AMF0, amf0::encode_all(values)),
            Message::Aggregate(p) => (type_id::AGGREGATE, p.to_vec()),
            Message::Ignored(t) => (*t, Vec::new()),
        };
        RawMessage {
            type_id,
            timestamp,
            stream_id,
            payload: Bytes::from(payload),
        }
    }
}

fn decode_user_control(raw: &RawMessage) -> Result<UserControl, MessageError> {
    let p = &raw.payload;
    let kind = p
        .get(..2)
        .map(BigEndian::read_u16)
        .ok_or(MessageError::Truncated {
            type_id: raw.type_id,
            len: p.len(),
        })?;
    let arg = || be32(raw, 2);
    Ok(match kind {
        event::STREAM_BEGIN => UserControl::StreamBegin(arg()?),
        event::STREAM_EOF => UserControl::StreamEof(arg()?),
        event::STREAM_DRY => UserControl::StreamDry(arg()?),
        event::SET_BUFFER_LENGTH => UserControl::SetBufferLength {
            stream_id: arg()?,
            buffer_ms: be32(raw, 6)?,
        },
        event::STREAM_IS_RECORDED => UserControl::StreamIsRecorded(arg()?),
        event::PING_REQUEST => UserControl::PingRequest(arg()?),
        event::PING_RESPONSE => UserControl::PingResponse(arg()?),
        other => UserControl::Other(other),
    })
}

fn encode_user_control(event: &UserControl) -> Vec<u8> {
    let (kind, args): (u16, Vec<u32>) = match *event {
        UserControl::StreamBegin(id) => (event::STREAM_BEGIN, vec![id]),
        UserControl::StreamEof(id) => (event::STREAM_EOF, vec![id]),
        UserControl::StreamDry(id) => (event::STREAM_DRY, vec![id]),
        UserControl::SetBufferLength {
            stream_id,
            buffer_ms,
        } => (event::SET_BUFFER_LENGTH, vec![stream_id, buffer_ms]),
        UserControl::StreamIsRecorded(id) => (event::STREAM_IS_RECORDED, vec![id]),
        UserControl::PingRequest(ts) => (event::PING_REQUEST, vec![ts]),
        UserControl::PingResponse(ts) => (event::PING_RESPONSE, vec![ts]),
        UserControl::Other(kind) => (kind, vec![]),
    };
    let mut out = kind.to_be_bytes().to_vec();
    for arg in args {
        out.extend_from_slice(&arg.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(type_id: u8, payload: &[u8]) -> RawMessage {
        RawMessage {
            type_id,
            timestamp: 0,
            stream_id: 0,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    #[test]
    fn control_messages_round_trip() {
        let messages = [
            Message::SetChunkSize(4096),
            Message::Abort { chunk_stream_id: 7 },
            Message::Acknowledgement {
                sequence: 0xffff_fff0,
            },
            Message::WindowAckSize(5_000_000),
            Message::SetPeerBandwidth {
                size: 5_000_000,
                limit: BandwidthLimit::Dynamic,
            },
            Message::UserControl(UserControl::StreamBegin(1)),
            Message::UserControl(UserControl::StreamEof(1)),
            Message::UserControl(UserControl::StreamDry(1)),
            Message::UserControl(UserControl::SetBufferLength {
                stream_id: 1,
                buffer_ms: 3000,
            }),
            Message::UserControl(UserControl::StreamIsRecorded(1)),
            Message::UserControl(UserControl::PingRequest(99)),
            Message::UserControl(UserControl::PingResponse(99)),
            Message::Command(vec![Value::string("play"), Value::Number(0.0), Value::Null]),
            Message::Data(vec![Value::string("onMetaData"), Value::Null]),
        ];
        for m in messages {
            assert_eq!(Message::decode(&m.encode(5, 1)).unwrap(), m);
        }
    }

    #[test]
    fn every_truncation_of_a_control_message_is_an_error() {
        for type_id in [1u8, 2, 3, 5, 6] {
            for len in 0..4 {
                assert!(Message::decode(&raw(type_id, &vec![0; len])).is_err());
            }
        }
        assert!(Message::decode(&raw(4, &[0])).is_err());
        assert!(Message::decode(&raw(4, &[0, 6, 0, 0])).is_err());
        assert!(Message::decode(&raw(4, &[0, 3, 0, 0, 0, 1, 0])).is_err());
    }

    #[test]
    fn set_chunk_size_ignores_the_reserved_top_bit() {
        assert_eq!(
            Message::decode(&raw(1, &[0xff, 0xff, 0xff, 0xff])).unwrap(),
            Message::SetChunkSize(0x7fff_ffff)
        );
    }

    #[test]
    fn amf3_messages_skip_the_format_byte() {
        let mut payload = vec![0u8];
        payload.extend(amf0::encode_all(&[Value::string("publish")]));
        assert_eq!(
            Message::decode(&raw(type_id::COMMAND_AMF3, &payload)).unwrap(),
            Message::Command(vec![Value::string("publish")])
        );
        assert_eq!(
            Message::decode(&raw(type_id::DATA_AMF3, &payload)).unwrap(),
            Message::Data(vec![Value::string("publish")])
        );
        assert_eq!(
            Message::decode(&raw(type_id::COMMAND_AMF3, &[])).unwrap(),
            Message::Command(vec![])
        );
    }

    #[test]
    fn unknown_user_control_and_message_types_are_tolerated() {
        assert_eq!(
            Message::decode(&raw(4, &[0, 31, 1, 2])).unwrap(),
            Message::UserControl(UserControl::Other(31))
        );
        assert_eq!(
            Message::decode(&raw(19, &[1, 2, 3])).unwrap(),
            Message::Ignored(19)
        );
    }
}
