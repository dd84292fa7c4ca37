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
mod tests {
    use super::*;
    use crate::protocol::chunk_encoder::ChunkEncoder;
    use crate::protocol::message::Message;

    fn decode_all(decoder: &mut ChunkDecoder) -> Vec<RawMessage> {
        let mut out = Vec::new();
        while let Some(m) = decoder.decode().unwrap() {
            out.push(m);
        }
        out
    }

    fn message(type_id: u8, timestamp: u32, stream_id: u32, len: usize) -> RawMessage {
        RawMessage {
            type_id,
            timestamp,
            stream_id,
            payload: Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>()),
        }
    }

    /// fmt 0 header on csid 4: timestamp 1000, length 5, type 9, stream 1.
    const FMT0: [u8; 12] = [
        0x04, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x05, 0x09, 0x01, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn decodes_a_single_chunk_message_with_a_little_endian_stream_id() {
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&FMT0);
        d.feed(b"hello");
        let m = d.decode().unwrap().unwrap();
        assert_eq!(m.type_id, 9);
        assert_eq!(m.timestamp, 1000);
        assert_eq!(m.stream_id, 1);
        assert_eq!(&m.payload[..], b"hello");
        assert_eq!(d.decode().unwrap(), None);
    }

    #[test]
    fn every_prefix_of_input_waits_for_more_then_decodes() {
        let mut enc = ChunkEncoder::new(128);
        let mut wire = Vec::new();
        let messages = [
            message(9, 0x0100_0000, 1, 300),
            message(9, 0x0100_0040, 1, 300),
            message(8, 5, 1, 10),
            message(20, 0, 0, 0),
        ];
        for (i, m) in messages.iter().enumerate() {
            enc.write_message(3 + (i as u32 % 2) * 400, m, &mut wire);
        }
        for cut in 0..wire.len() {
            let mut d = ChunkDecoder::new(1 << 20);
            d.feed(&wire[..cut]);
            let first = decode_all(&mut d);
            d.feed(&wire[cut..]);
            let rest = decode_all(&mut d);
            let all: Vec<_> = first.into_iter().chain(rest).collect();
            assert_eq!(all, messages, "split at {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let mut enc = ChunkEncoder::new(64);
        let mut wire = Vec::new();
        let m = message(9, 0xffff_fff0, 1, 1000);
        enc.write_message(6, &m, &mut wire);
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 64]);
        assert_eq!(d.decode().unwrap().unwrap().type_id, 1);
        let mut got = Vec::new();
        for b in &wire {
            d.feed(std::slice::from_ref(b));
            got.extend(decode_all(&mut d));
        }
        assert_eq!(got, vec![m]);
    }

    #[test]
    fn two_and_three_byte_basic_headers() {
        for csid in [64u32, 319, 320, 65599] {
            let mut enc = ChunkEncoder::new(128);
            let mut wire = Vec::new();
            let m = message(9, 1, 1, 200);
            enc.write_message(csid, &m, &mut wire);
            let expected_first = if csid < 320 { 0 } else { 1 };
            assert_eq!(wire[0] & 0x3f, expected_first);
            let mut d = ChunkDecoder::new(1 << 20);
            d.feed(&wire);
            assert_eq!(decode_all(&mut d), vec![m], "csid {csid}");
        }
    }

    #[test]
    fn fmt1_fmt2_fmt3_apply_deltas() {
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&FMT0);
        d.feed(b"hello");
        // fmt 1: delta 40, length 2, type 8.
        d.feed(&[0x44, 0, 0, 40, 0, 0, 2, 8, b'a', b'b']);
        // fmt 2: delta 20.
        d.feed(&[0x84, 0, 0, 20, b'c', b'd']);
        // fmt 3 new message: delta 20 again.
        d.feed(&[0xc4, b'e', b'f']);
        let got = decode_all(&mut d);
        let stamps: Vec<_> = got
            .iter()
            .map(|m| (m.timestamp, m.type_id, m.stream_id))
            .collect();
        assert_eq!(
            stamps,
            vec![(1000, 9, 1), (1040, 8, 1), (1060, 8, 1), (1080, 8, 1)]
        );
        assert_eq!(&got[3].payload[..], b"ef");
    }

    #[test]
    fn extended_timestamp_on_fmt0_and_type3_continuations() {
        // fmt 0 with ts 0x01000000 (> 0xFFFFFF), length 200, chunk size 128:
        // the continuation chunk repeats the extended field.
        let mut wire = vec![0x06, 0xff, 0xff, 0xff, 0, 0, 200, 9, 1, 0, 0, 0, 1, 0, 0, 0];
        wire.extend(std::iter::repeat_n(0xAA, 128));
        wire.extend([0xc6, 1, 0, 0, 0]);
        wire.extend(std::iter::repeat_n(0xBB, 72));
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&wire);
        let m = d.decode().unwrap().unwrap();
        assert_eq!(m.timestamp, 0x0100_0000);
        assert_eq!(m.payload.len(), 200);
        assert!(m.payload[128..].iter().all(|&b| b == 0xBB));
    }

    #[test]
    fn continuation_without_the_repeated_extended_field_is_tolerated() {
        let mut wire = vec![0x06, 0xff, 0xff, 0xff, 0, 0, 200, 9, 1, 0, 0, 0, 1, 0, 0, 0];
        wire.extend(std::iter::repeat_n(0xAA, 128));
        wire.push(0xc6);
        wire.extend(std::iter::repeat_n(0xBB, 72));
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&wire);
        let m = d.decode().unwrap().unwrap();
        assert_eq!(m.payload.len(), 200);
        assert!(m.payload[128..].iter().all(|&b| b == 0xBB));
    }

    #[test]
    fn extended_delta_on_fmt1_fmt2_and_new_message_type3() {
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&FMT0); // ts 1000
        d.feed(b"hello");
        // fmt 2 with extended delta 0x01000000.
        d.feed(&[0x84, 0xff, 0xff, 0xff, 1, 0, 0, 0]);
        d.feed(b"HELLO");
        // fmt 3 new message: the delta repeats, and so does the field.
        d.feed(&[0xc4, 1, 0, 0, 0]);
        d.feed(b"world");
        // fmt 1 with extended delta crossing the 32-bit wrap.
        d.feed(&[
            0x44, 0xff, 0xff, 0xff, 0, 0, 1, 9, 0xff, 0x00, 0x00, 0x00, b'!',
        ]);
        let got = decode_all(&mut d);
        let stamps: Vec<_> = got.iter().map(|m| m.timestamp).collect();
        let t1 = 1000 + 0x0100_0000;
        let t2 = t1 + 0x0100_0000;
        let t3 = (t2 as u64 + 0xff00_0000) as u32;
        assert_eq!(stamps, vec![1000, t1, t2, t3]);
        assert!(t3 < t2, "wrapped past 2^32");
        assert_eq!(&got[2].payload[..], b"world");
    }

    #[test]
    fn set_chunk_size_applies_to_the_next_chunk_in_the_same_buffer() {
        let mut wire = vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0x10, 0];
        // A 300-byte message in one chunk, legal only at the new size.
        wire.extend([0x04, 0, 0, 0, 0, 0x01, 0x2c, 9, 1, 0, 0, 0]);
        wire.extend(std::iter::repeat_n(7, 300));
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&wire);
        let got = decode_all(&mut d);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].payload.len(), 300);
        assert_eq!(d.chunk_size(), 4096);
    }

    #[test]
    fn chunk_size_changes_mid_stream_between_messages() {
        let mut enc = ChunkEncoder::new(128);
        let mut wire = Vec::new();
        let a = message(9, 0, 1, 1000);
        enc.write_message(6, &a, &mut wire);
        let scs = crate::protocol::message::Message::SetChunkSize(60000).encode(0, 0);
        enc.write_message(2, &scs, &mut wire);
        enc.set_chunk_size(60000);
        let b = message(9, 40, 1, 50000);
        enc.write_message(6, &b, &mut wire);
        enc.set_chunk_size(1);
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&wire);
        assert_eq!(decode_all(&mut d), vec![a, scs, b]);
    }

    #[test]
    fn chunk_size_one_and_huge_are_accepted() {
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&[
            0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff,
        ]);
        decode_all(&mut d);
        assert_eq!(d.chunk_size(), 0x7fff_ffff);
        d.feed(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        decode_all(&mut d);
        assert_eq!(d.chunk_size(), 1);
        let mut enc = ChunkEncoder::new(1);
        let mut wire = Vec::new();
        let m = message(9, 3, 1, 10);
        enc.write_message(6, &m, &mut wire);
        d.feed(&wire);
        assert_eq!(decode_all(&mut d), vec![m]);
    }

    #[test]
    fn set_chunk_size_zero_is_an_error() {
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x80, 0, 0, 0]);
        assert_eq!(d.decode(), Err(ChunkError::InvalidChunkSize(0x8000_0000)));
    }

    #[test]
    fn abort_drops_the_partial_message() {
        let mut wire = vec![0x04, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0];
        wire.extend(std::iter::repeat_n(1, 128));
        // Abort csid 4.
        wire.extend([0x02, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 4]);
        // A fresh fmt 0 message on csid 4.
        wire.extend([0x04, 0, 0, 5, 0, 0, 2, 9, 1, 0, 0, 0, 9, 9]);
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&wire);
        let got = decode_all(&mut d);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].type_id, 2);
        assert_eq!(&got[1].payload[..], &[9, 9]);
        assert_eq!(d.stats().aborted, 1);
    }

    #[test]
    fn a_new_header_mid_message_abandons_the_partial() {
        // SRS #2523: a fmt 1 header (new length) arrives while a message is
        // incomplete. The partial is dropped and the new message decoded.
        let mut wire = vec![0x04, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0];
        wire.extend(std::iter::repeat_n(1, 128));
        wire.extend([0x44, 0, 0, 10, 0, 0, 3, 9, 5, 6, 7]);
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&wire);
        let got = decode_all(&mut d);
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].payload[..], &[5, 6, 7]);
        assert_eq!(got[0].timestamp, 10);
        assert_eq!(d.stats().abandoned_partials, 1);
    }

    #[test]
    fn type3_without_previous_header_is_an_error() {
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&[0xc5, 1, 2, 3]);
        assert_eq!(
            d.decode(),
            Err(ChunkError::NoPreviousHeader { csid: 5, fmt: 3 })
        );
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&[0x45, 0, 0, 0, 0, 0, 1, 9]);
        assert_eq!(
            d.decode(),
            Err(ChunkError::NoPreviousHeader { csid: 5, fmt: 1 })
        );
    }

    #[test]
    fn oversized_message_is_refused_at_its_header() {
        let mut d = ChunkDecoder::new(4 << 20);
        d.feed(&[0x04, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0]);
        assert_eq!(
            d.decode(),
            Err(ChunkError::MessageTooLarge {
                length: 0xff_ffff,
                type_id: 9,
                max: 4 << 20
            })
        );
    }

    #[test]
    fn command_and_data_messages_have_a_lower_limit() {
        let header = |len: u32, type_id: u8| {
            let l = len.to_be_bytes();
            [0x03, 0, 0, 0, l[1], l[2], l[3], type_id, 0, 0, 0, 0]
        };
        for type_id in [
            type_id::COMMAND_AMF0,
            type_id::DATA_AMF0,
            type_id::COMMAND_AMF3,
            1,
            4,
        ] {
            let mut d = ChunkDecoder::new(4 << 20);
            d.feed(&header(MAX_COMMAND_MESSAGE as u32 + 1, type_id));
            assert_eq!(
                d.decode(),
                Err(ChunkError::MessageTooLarge {
                    length: MAX_COMMAND_MESSAGE as u32 + 1,
                    type_id,
                    max: MAX_COMMAND_MESSAGE
                })
            );
            let mut d = ChunkDecoder::new(4 << 20);
            d.feed(&header(MAX_COMMAND_MESSAGE as u32, type_id));
            assert_eq!(
                d.decode(),
                Ok(None),
                "type {type_id} at the limit waits for bytes"
            );
        }
        for type_id in [type_id::AUDIO, type_id::VIDEO, type_id::AGGREGATE] {
            let mut d = ChunkDecoder::new(4 << 20);
            d.feed(&header(2 << 20, type_id));
            assert_eq!(d.decode(), Ok(None), "media of type {type_id} may be large");
        }
    }

    #[test]
    fn chunk_stream_ids_per_connection_are_bounded() {
        let mut d = ChunkDecoder::new(1 << 20);
        let mut enc = ChunkEncoder::new(128);
        let mut wire = Vec::new();
        for csid in 3..3 + MAX_CHUNK_STREAMS as u32 {
            enc.write_message(csid, &message(9, 0, 1, 1), &mut wire);
        }
        d.feed(&wire);
        assert_eq!(decode_all(&mut d).len(), MAX_CHUNK_STREAMS);
        assert_eq!(d.chunk_streams(), MAX_CHUNK_STREAMS);
        // Known ids go on working; one more new id is refused.
        wire.clear();
        enc.write_message(3, &message(9, 40, 1, 1), &mut wire);
        d.feed(&wire);
        assert!(d.decode().unwrap().is_some());
        wire.clear();
        enc.write_message(60_000, &message(9, 0, 1, 1), &mut wire);
        d.feed(&wire);
        assert_eq!(d.decode(), Err(ChunkError::TooManyChunkStreams));
    }

    #[test]
    fn completed_payloads_hold_only_their_bytes() {
        let mut d = ChunkDecoder::new(4 << 20);
        let mut enc = ChunkEncoder::new(4096);
        let mut wire = Message::SetChunkSize(4096).encode(0, 0);
        let mut bytes = Vec::new();
        enc.write_message(2, &wire, &mut bytes);
        wire = message(9, 0, 1, 300_000);
        enc.write_message(6, &wire, &mut bytes);
        d.feed(&bytes);
        let payload = decode_all(&mut d).swap_remove(1).payload;
        assert_eq!(payload.len(), 300_000);
        // Shrunk to its length: a Vec whose capacity is its length becomes
        // Bytes that can turn back into a Vec without copying.
        let vec = Vec::from(payload);
        assert_eq!(vec.capacity(), 300_000);
    }

    #[test]
    fn partial_messages_are_bounded() {
        let mut d = ChunkDecoder::new(1 << 20);
        for csid in 0..MAX_PARTIAL_MESSAGES as u32 {
            let id = csid + 64;
            d.feed(&[0x01, (id - 64) as u8, ((id - 64) >> 8) as u8]);
            // 200-byte message, first 128-byte chunk only.
            d.feed(&[0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0]);
            d.feed(&[1; 128]);
            assert_eq!(d.decode(), Ok(None));
        }
        d.feed(&[0x03, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0]);
        assert_eq!(d.decode(), Err(ChunkError::TooManyPartialMessages));
    }

    #[test]
    fn bytes_held_by_partial_messages_are_bounded() {
        // Max message 1000: partials may hold at most 2000 bytes together.
        let mut d = ChunkDecoder::new(1000);
        for csid in 3..6u8 {
            d.feed(&[csid, 0, 0, 0, 0, 0x03, 0xe8, 9, 1, 0, 0, 0]);
            d.feed(&[1; 128]);
        }
        // Five more chunks each: 3 x 768 bytes, none complete, 2304 held.
        for _ in 0..5 {
            for csid in 3..6u8 {
                d.feed(&[0xc0 | csid]);
                d.feed(&[1; 128]);
            }
        }
        let result = loop {
            match d.decode() {
                Ok(Some(_)) => continue,
                other => break other,
            }
        };
        assert_eq!(result, Err(ChunkError::TooMuchBuffered { limit: 2000 }));
    }

    #[test]
    fn zero_length_messages_complete_at_once() {
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&[0x03, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0]);
        let m = d.decode().unwrap().unwrap();
        assert!(m.payload.is_empty());
    }
}
