//! Reassembles RTMP messages from the chunk stream.
//!
//! Handles 1-, 2- and 3-byte basic headers, message header formats 0-3,
//! extended timestamps (on type-3 chunks too), timestamp deltas with 32-bit
//! wrapping, Set Chunk Size applied from the very next chunk and Abort
//! dropping a partial message. Memory is bounded: a message longer than the
//! configured maximum (or, for anything but audio, video and aggregates,
//! longer than [`MAX_COMMAND_MESSAGE`]) is refused when its header arrives,
//! payload memory grows only as bytes arrive and is trimmed to the message
//! when it completes, only a few chunk streams may hold a partial message at
//! once, and a connection may use at most [`MAX_CHUNK_STREAMS`] chunk
//! stream ids.

use std::collections::HashMap;
use std::fmt;

use byteorder::{BigEndian, ByteOrder, LittleEndian};
use bytes::Bytes;

use super::message::{RawMessage, type_id};

/// The chunk size every connection starts with.
pub const DEFAULT_CHUNK_SIZE: usize = 128;
/// Longest message accepted by default (a 4K keyframe fits).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
/// How many chunk streams may hold a partially received message at once.
pub const MAX_PARTIAL_MESSAGES: usize = 64;
/// How many chunk stream ids one connection may use. Clients use a handful
/// (nginx-rtmp refuses ids from 32 up by default); every id's state is
/// kept for the connection's life, so their number is bounded.
pub const MAX_CHUNK_STREAMS: usize = 256;
/// Longest command, data or control message: they are small (a `connect`
/// object, `onMetaData`), and decoding AMF costs far more memory than the
/// bytes it decodes, so they get a much lower limit than media.
pub const MAX_COMMAND_MESSAGE: usize = 256 * 1024;
/// Payload memory reserved up front for a new message; more is allocated
/// only as its bytes arrive.
const INITIAL_RESERVE: usize = 64 * 1024;
const EXTENDED: u32 = 0xff_ffff;
/// Capacity of the input buffer kept between bursts.
const RETAINED_BUFFER: usize = 64 * 1024;

/// Why the chunk stream cannot be decoded any further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// A format 1, 2 or 3 chunk on a chunk stream that has had no header.
    NoPreviousHeader { csid: u32, fmt: u8 },
    /// A message longer than the configured maximum for its type.
    MessageTooLarge {
        length: u32,
        type_id: u8,
        max: usize,
    },
    /// More chunk streams with partial messages than allowed.
    TooManyPartialMessages,
    /// More chunk stream ids than allowed.
    TooManyChunkStreams,
    /// Set Chunk Size of zero.
    InvalidChunkSize(u32),
    /// Partial messages together hold more bytes than allowed.
    TooMuchBuffered { limit: usize },
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::NoPreviousHeader { csid, fmt } => {
                write!(
                    f,
                    "format {fmt} chunk on chunk stream {csid} with no previous header"
                )
            }
            ChunkError::MessageTooLarge {
                length,
                type_id,
                max,
            } => {
                write!(
                    f,
                    "message of type {type_id} and {length} bytes exceeds the limit of {max}"
                )
            }
            ChunkError::TooManyPartialMessages => write!(
                f,
                "more than {MAX_PARTIAL_MESSAGES} chunk streams with partial messages"
            ),
            ChunkError::TooManyChunkStreams => {
                write!(f, "more than {MAX_CHUNK_STREAMS} chunk stream ids")
            }
            ChunkError::InvalidChunkSize(size) => write!(f, "invalid chunk size {size}"),
            ChunkError::TooMuchBuffered { limit } => {
                write!(f, "partial messages hold more than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for ChunkError {}

/// What the decoder remembers about one chunk stream.
#[derive(Debug, Default)]
struct ChunkStream {
    /// Absolute timestamp of the current (or last) message.
    timestamp: u32,
    /// The timestamp field of the last format 0/1/2 header: absolute for
    /// format 0, a delta for 1 and 2. A type-3 chunk that starts a new
    /// message adds it (as ffmpeg and SRS do).
    timestamp_field: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last format 0/1/2 header used the extended timestamp escape, so
    /// type-3 chunks carry the 4-byte field too.
    extended: bool,
    partial: Option<Vec<u8>>,
}

/// The chunk currently being read: its stream and payload bytes left.
#[derive(Debug, Clone, Copy)]
struct OpenChunk {
    csid: u32,
    remaining: usize,
}

/// A parsed chunk header, not yet applied to decoder state.
struct Header {
    fmt: u8,
    csid: u32,
    len: usize,
    timestamp_field: Option<u32>,
    length: Option<u32>,
    type_id: Option<u8>,
    stream_id: Option<u32>,
    extended: Option<bool>,
}

/// Counters a connection may log or export.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecoderStats {
    /// Partial messages abandoned because a new header began another
    /// message on the same chunk stream.
    pub abandoned_partials: u64,
    /// Partial messages dropped by an Abort message.
    pub aborted: u64,
}

/// The sans-IO chunk stream decoder. Feed it bytes, take messages out.
#[derive(Debug)]
pub struct ChunkDecoder {
    buffer: Vec<u8>,
    pos: usize,
    chunk_size: usize,
    max_message_size: usize,
    streams: HashMap<u32, ChunkStream>,
    partials: usize,
    /// Bytes held by partial messages, bounded by twice the message limit.
    partial_bytes: usize,
    open: Option<OpenChunk>,
    stats: DecoderStats,
}

impl ChunkDecoder {
    pub fn new(max_message_size: usize) -> Self {
        ChunkDecoder {
            buffer: Vec::new(),
            pos: 0,
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_message_size,
            streams: HashMap::new(),
            partials: 0,
            partial_bytes: 0,
            open: None,
            stats: DecoderStats::default(),
        }
    }

    /// Adds received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.buffer.drain(..self.pos);
            self.pos = 0;
            // What a burst needed is not kept for the connection's life.
            if self.buffer.capacity() > RETAINED_BUFFER && self.buffer.len() <= RETAINED_BUFFER {
                self.buffer.shrink_to(RETAINED_BUFFER);
            }
        }
        self.buffer.extend_from_slice(data);
    }

    /// Bytes fed but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.pos
    }

    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Payload bytes held in partial messages (at most twice the message
    /// size limit).
    pub fn partial_bytes(&self) -> usize {
        self.partial_bytes
    }

    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Chunk stream ids seen (at most [`MAX_CHUNK_STREAMS`]).
    pub fn chunk_streams(&self) -> usize {
        self.streams.len()
    }

    /// Returns the next complete message, or `None` when more bytes are
    /// needed. Set Chunk Size and Abort are applied here, before the next
    /// chunk is read, and also returned to the caller.
    pub fn decode(&mut self) -> Result<Option<RawMessage>, ChunkError> {
        loop {
            if let Some(open) = self.open {
                let available = self.buffer.len() - self.pos;
                if available == 0 && open.remaining > 0 {
                    return Ok(None);
                }
                let take = open.remaining.min(available);
                let limit = self.max_message_size.saturating_mul(2);
                if self.partial_bytes + take > limit {
                    return Err(ChunkError::TooMuchBuffered { limit });
                }
                self.partial_bytes += take;
                let stream = self.streams.entry(open.csid).or_default();
                let partial = stream.partial.get_or_insert_with(Vec::new);
                partial.extend_from_slice(&self.buffer[self.pos..self.pos + take]);
                self.pos += take;
                let remaining = open.remaining - take;
                if remaining > 0 {
                    self.open = Some(OpenChunk { remaining, ..open });
                    return Ok(None);
                }
                self.open = None;
                if partial.len() >= stream.length as usize {
                    let mut payload = stream.partial.take().unwrap_or_default();
                    // A large message grew by doubling: hold only its bytes.
                    payload.shrink_to_fit();
                    self.partials -= 1;
                    self.partial_bytes -= payload.len();
                    let message = RawMessage {
                        type_id: stream.type_id,
                        timestamp: stream.timestamp,
                        stream_id: stream.stream_id,
                        payload: Bytes::from(payload),
                    };
                    self.apply_control(&message)?;
                    return Ok(Some(message));
                }
                continue;
            }
            let Some(header) = self.parse_header()? else {
                return Ok(None);
            };
            self.pos += header.len;
            self.start_chunk(header)?;
        }
    }

    /// Parses the chunk header at the read position without changing any
    /// state; `None` if it is not complete yet.
    fn parse_header(&self) -> Result<Option<Header>, ChunkError> {
        let input = &self.buffer[self.pos..];
        let Some(&first) = input.first() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let (csid, mut pos) = match first & 0x3f {
            0 => match input.get(1) {
                Some(&b) => (64 + b as u32, 2),
                None => return Ok(None),
            },
            1 => match input.get(1..3) {
                Some(b) => (64 + b[0] as u32 + 256 * b[1] as u32, 3),
                None => return Ok(None),
            },
            id => (id as u32, 1),
        };
        let previous = self.streams.get(&csid);
        if fmt != 0 && previous.is_none() {
            return Err(ChunkError::NoPreviousHeader { csid, fmt });
        }
        let mut header = Header {
            fmt,
            csid,
            len: 0,
            timestamp_field: None,
            length: None,
            type_id: None,
            stream_id: None,
            extended: None,
        };
        let header_len = [11, 7, 3, 0][fmt as usize];
        let Some(fields) = input.get(pos..pos + header_len) else {
            return Ok(None);
        };
        pos += header_len;
        if fmt <= 2 {
            let field = BigEndian::read_u24(&fields[0..3]);
            let extended = field == EXTENDED;
            header.extended = Some(extended);
            header.timestamp_field = Some(field);
            if extended {
                let Some(ext) = input.get(pos..pos + 4) else {
                    return Ok(None);
                };
                header.timestamp_field = Some(BigEndian::read_u32(ext));
                pos += 4;
            }
        }
        if fmt <= 1 {
            let length = BigEndian::read_u24(&fields[3..6]);
            let type_id = fields[6];
            let max = match type_id {
                type_id::AUDIO | type_id::VIDEO | type_id::AGGREGATE => self.max_message_size,
                _ => self.max_message_size.min(MAX_COMMAND_MESSAGE),
            };
            if length as usize > max {
                return Err(ChunkError::MessageTooLarge {
                    length,
                    type_id,
                    max,
                });
            }
            header.length = Some(length);
            header.type_id = Some(fields[6]);
        }
        if fmt == 0 {
            header.stream_id = Some(LittleEndian::read_u32(&fields[7..11]));
        }
        if fmt == 3
            && let Some(stream) = previous
            && stream.extended
        {
            // The extended field repeats on type-3 chunks. Some old clients
            // omit it: like SRS, accept the 4 bytes only when they match.
            let Some(ext) = input.get(pos..pos + 4) else {
                return Ok(None);
            };
            if BigEndian::read_u32(ext) == stream.timestamp_field {
                pos += 4;
            }
        }
        header.len = pos;
        Ok(Some(header))
    }

    /// Applies a parsed header to the chunk stream's state and opens the
    /// chunk's payload for reading.
    fn start_chunk(&mut self, header: Header) -> Result<(), ChunkError> {
        let chunk_size = self.chunk_size;
        if self.streams.len() >= MAX_CHUNK_STREAMS && !self.streams.contains_key(&header.csid) {
            return Err(ChunkError::TooManyChunkStreams);
        }
        let stream = self.streams.entry(header.csid).or_default();
        let continuing = header.fmt == 3 && stream.partial.is_some();
        if !continuing {
            if let Some(abandoned) = stream.partial.take() {
                // A new header while a message was incomplete: the sender
                // gave up on it (or is broken). Keep the new message.
                self.partials -= 1;
                self.partial_bytes -= abandoned.len();
                self.stats.abandoned_partials += 1;
            }
            if let Some(field) = header.timestamp_field {
                stream.timestamp_field = field;
            }
            stream.timestamp = if header.fmt == 0 {
                stream.timestamp_field
            } else {
                stream.timestamp.wrapping_add(stream.timestamp_field)
            };
            if let Some(extended) = header.extended {
                stream.extended = extended;
            }
            if let Some(length) = header.length {
                stream.length = length;
            }
            if let Some(type_id) = header.type_id {
                stream.type_id = type_id;
            }
            if let Some(stream_id) = header.stream_id {
                stream.stream_id = stream_id;
            }
            if self.partials >= MAX_PARTIAL_MESSAGES {
                return Err(ChunkError::TooManyPartialMessages);
            }
            let length = stream.length as usize;
            stream.partial = Some(Vec::with_capacity(length.min(INITIAL_RESERVE)));
            self.partials += 1;
        }
        let received = stream.partial.as_ref().map_or(0, Vec::len);
        let remaining = (stream.length as usize)
            .saturating_sub(received)
            .min(chunk_size);
        self.open = Some(OpenChunk {
            csid: header.csid,
            remaining,
        });
        Ok(())
    }

    fn apply_control(&mut self, message: &RawMessage) -> Result<(), ChunkError> {
        let Some(value) = message.payload.get(..4).map(BigEndian::read_u32) else {
            return Ok(());
        };
        match message.type_id {
            type_id::SET_CHUNK_SIZE => {
                let size = value & 0x7fff_ffff;
                if size == 0 {
                    return Err(ChunkError::InvalidChunkSize(value));
                }
                self.chunk_size = size as usize;
            }
            type_id::ABORT => {
                if let Some(stream) = self.streams.get_mut(&value)
                    && let Some(aborted) = stream.partial.take()
                {
                    self.partials -= 1;
                    self.partial_bytes -= aborted.len();
                    self.stats.aborted += 1;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "chunk_decoder_tests.rs"]
mod tests;
