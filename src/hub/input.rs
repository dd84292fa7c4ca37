//! An input of a stream: where its media comes from (an RTMP publisher
//! today; a pulled URL later). [`Input::ingest`] turns the messages any
//! input receives into the stream's packets: audio and video (codecs,
//! keyframes and sequence headers read once), data (`@setDataFrame
//! onMetaData` stored as metadata without the prefix), and aggregates
//! split into their parts.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use super::packet::{Packet, PacketKind};
use super::stream::Stream;
use crate::protocol::aggregate::{self, AggregateError};
use crate::protocol::amf0;
use crate::protocol::chunk_decoder::MAX_COMMAND_MESSAGE;
use crate::protocol::data;
use crate::protocol::message::{Message, MessageError, RawMessage, type_id};

/// A message an input cannot take: the input should be closed.
#[derive(Debug)]
pub enum IngestError {
    Aggregate(AggregateError),
    /// A data part of an aggregate longer than a data message may be.
    PartTooLarge {
        type_id: u8,
        length: usize,
    },
    Message(MessageError),
    /// The stream took another input: this one was let go.
    Detached,
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IngestError::Aggregate(e) => write!(f, "bad aggregate: {e}"),
            IngestError::PartTooLarge { type_id, length } => write!(
                f,
                "aggregate part of type {type_id} and {length} bytes exceeds {MAX_COMMAND_MESSAGE}"
            ),
            IngestError::Message(e) => write!(f, "bad data message: {e}"),
            IngestError::Detached => write!(f, "no longer the stream's input"),
        }
    }
}

impl std::error::Error for IngestError {}

/// A stream's input, as its feeder holds it.
pub struct Input {
    stream: Arc<Stream>,
    id: u64,
}

impl Input {
    /// The input `id` that [`Stream::attach_input`] accepted.
    pub fn new(stream: Arc<Stream>, id: u64) -> Input {
        Input { stream, id }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Takes one message the input received; types other than audio,
    /// video, data and aggregate are not media and are ignored.
    pub fn ingest(&self, message: &RawMessage) -> Result<(), IngestError> {
        match message.type_id {
            type_id::AGGREGATE => {
                let parts = aggregate::split(message).map_err(IngestError::Aggregate)?;
                for part in parts.iter().filter(|p| p.type_id != type_id::AGGREGATE) {
                    // Parts are held to the limits of messages of their type.
                    let media = matches!(part.type_id, type_id::AUDIO | type_id::VIDEO);
                    if !media && part.payload.len() > MAX_COMMAND_MESSAGE {
                        return Err(IngestError::PartTooLarge {
                            type_id: part.type_id,
                            length: part.payload.len(),
                        });
                    }
                    self.ingest(part)?;
                }
                Ok(())
            }
            type_id::AUDIO => self.media(PacketKind::Audio, message),
            type_id::VIDEO => self.media(PacketKind::Video, message),
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => {
                let Message::Data(values) =
                    Message::decode(message).map_err(IngestError::Message)?
                else {
                    return Ok(());
                };
                self.data(message.timestamp, values)
            }
            _ => Ok(()),
        }
    }

    fn media(&self, kind: PacketKind, message: &RawMessage) -> Result<(), IngestError> {
        if message.payload.is_empty() {
            return Ok(());
        }
        let packet = Packet::new(kind, message.timestamp, message.payload.clone());
        self.accepted(self.stream.publish(self.id, packet))
    }

    fn data(&self, timestamp: u32, values: Vec<amf0::Value>) -> Result<(), IngestError> {
        if values.is_empty() {
            // Nothing to forward (a zero-length message costs a peer one
            // byte: it must not cost every output a packet).
            return Ok(());
        }
        let (values, is_metadata) = match data::metadata_for_players(&values) {
            Some(metadata) => (metadata, true),
            None => (values, false),
        };
        let packet = Packet::new(
            PacketKind::Data,
            timestamp,
            Bytes::from(amf0::encode_all(&values)),
        );
        self.accepted(if is_metadata {
            self.stream.set_metadata(self.id, packet)
        } else {
            self.stream.publish(self.id, packet)
        })
    }

    fn accepted(&self, taken: bool) -> Result<(), IngestError> {
        if taken {
            Ok(())
        } else {
            Err(IngestError::Detached)
        }
    }
}
