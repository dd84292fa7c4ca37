//! Splits outgoing messages into chunks with header compression.
//!
//! Header choice per chunk stream: format 0 for the first message, a new
//! message stream id, a timestamp that goes backwards, or any timestamp at
//! or past 0xFFFFFF (so the extended field is always absolute and the same
//! on every continuation chunk); otherwise format 1 when length or type
//! change, format 3 when the delta repeats that of the previous format 1/2
//! header, and format 2 else.
//!
//! Continuation chunks depend only on the chunk stream id and timestamp,
//! so a writer can send a shared payload without copying it: its own
//! first-chunk header ([`ChunkEncoder::write_header`]), then the payload's
//! pieces of [`ChunkEncoder::chunk_size`] bytes, each after the first one
//! behind the same small [`Continuation`] header.
//!
//! Writing a Set Chunk Size message switches the encoder to that size for
//! the messages after it, as the decoder does on reading one.

use byteorder::{BigEndian, ByteOrder};

use super::message::{RawMessage, type_id};

const EXTENDED: u32 = 0xff_ffff;

/// Chunk stream ids this implementation sends on.
pub mod csid {
    /// Protocol control and user control messages.
    pub const CONTROL: u32 = 2;
    /// NetConnection commands and their answers.
    pub const COMMAND: u32 = 3;
    /// NetStream commands, status and data messages.
    pub const STREAM: u32 = 5;
    pub const AUDIO: u32 = 6;
    pub const VIDEO: u32 = 7;
}

/// The header fields of one outgoing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    pub csid: u32,
    pub timestamp: u32,
    pub length: u32,
    pub type_id: u8,
    pub stream_id: u32,
}

#[derive(Debug, Clone, Copy)]
struct LastHeader {
    timestamp: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The delta of the last format 1/2 header; `None` after format 0,
    /// whose field a receiver would take as the delta (it is absolute).
    delta: Option<u32>,
}

/// The sans-IO chunk encoder of one connection.
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: usize,
    /// The last header sent on each chunk stream: a few, chosen by the
    /// sender, so a short list (searched faster than a hash map, and
    /// smaller, per connection).
    streams: Vec<(u32, LastHeader)>,
}

fn put_basic_header(fmt: u8, csid: u32, out: &mut Vec<u8>) {
    let fmt = fmt << 6;
    match csid {
        0..=63 => out.push(fmt | csid as u8),
        64..=319 => out.extend_from_slice(&[fmt, (csid - 64) as u8]),
        _ => {
            let id = csid.min(65599) - 64;
            out.extend_from_slice(&[fmt | 1, id as u8, (id >> 8) as u8]);
        }
    }
}

fn put_u24(value: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&value.to_be_bytes()[1..]);
}

/// The type-3 header before each continuation chunk of a message on one
/// chunk stream: the basic header, and the extended timestamp when the
/// message's timestamp needs it. At most 7 bytes, kept inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuation {
    bytes: [u8; 7],
    len: u8,
}

impl Continuation {
    pub fn new(csid: u32, timestamp: u32) -> Continuation {
        let mut bytes = [0u8; 7];
        let basic = match csid {
            0..=63 => {
                bytes[0] = 0xc0 | csid as u8;
                1
            }
            64..=319 => {
                bytes[..2].copy_from_slice(&[0xc0, (csid - 64) as u8]);
                2
            }
            _ => {
                let id = csid.min(65599) - 64;
                bytes[..3].copy_from_slice(&[0xc1, id as u8, (id >> 8) as u8]);
                3
            }
        };
        let len = if timestamp >= EXTENDED {
            BigEndian::write_u32(&mut bytes[basic..basic + 4], timestamp);
            basic + 4
        } else {
            basic
        };
        Continuation {
            bytes,
            len: len as u8,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl ChunkEncoder {
    pub fn new(chunk_size: usize) -> Self {
        ChunkEncoder {
            chunk_size: chunk_size.max(1),
            streams: Vec::new(),
        }
    }

    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Changes the chunk size for the following messages, as writing a Set
    /// Chunk Size message does (the peer must be told).
    pub fn set_chunk_size(&mut self, chunk_size: usize) {
        self.chunk_size = chunk_size.max(1);
    }

    /// Writes the header of a message's first chunk, choosing the most
    /// compact format that the receiver can decode unambiguously.
    pub fn write_header(&mut self, header: &MessageHeader, out: &mut Vec<u8>) {
        let slot = self
            .streams
            .iter()
            .position(|(csid, _)| *csid == header.csid);
        let previous = slot
            .and_then(|i| self.streams.get(i))
            .map(|(_, last)| *last);
        let mut delta = None;
        let fmt = match previous {
            Some(p)
                if p.stream_id == header.stream_id
                    && header.timestamp < EXTENDED
                    && header.timestamp >= p.timestamp =>
            {
                let d = header.timestamp - p.timestamp;
                delta = Some(d);
                if p.length != header.length || p.type_id != header.type_id {
                    1
                } else if p.delta == Some(d) {
                    3
                } else {
                    2
                }
            }
            _ => 0,
        };
        put_basic_header(fmt, header.csid, out);
        match fmt {
            0 => {
                put_u24(header.timestamp.min(EXTENDED), out);
                put_u24(header.length, out);
                out.push(header.type_id);
                out.extend_from_slice(&header.stream_id.to_le_bytes());
                if header.timestamp >= EXTENDED {
                    out.extend_from_slice(&header.timestamp.to_be_bytes());
                }
            }
            1 => {
                put_u24(delta.unwrap_or(0), out);
                put_u24(header.length, out);
                out.push(header.type_id);
            }
            2 => put_u24(delta.unwrap_or(0), out),
            _ => {}
        }
        let last = LastHeader {
            timestamp: header.timestamp,
            length: header.length,
            type_id: header.type_id,
            stream_id: header.stream_id,
            delta,
        };
        match slot.and_then(|i| self.streams.get_mut(i)) {
            Some((_, slot)) => *slot = last,
            None => self.streams.push((header.csid, last)),
        }
    }

    /// Writes a whole message (header and chunked payload) on `csid`.
    pub fn write_message(&mut self, csid: u32, message: &RawMessage, out: &mut Vec<u8>) {
        let header = MessageHeader {
            csid,
            timestamp: message.timestamp,
            length: message.payload.len() as u32,
            type_id: message.type_id,
            stream_id: message.stream_id,
        };
        self.write_header(&header, out);
        let continuation = Continuation::new(csid, message.timestamp);
        for (i, piece) in message.payload.chunks(self.chunk_size).enumerate() {
            if i > 0 {
                out.extend_from_slice(continuation.as_bytes());
            }
            out.extend_from_slice(piece);
        }
        if message.type_id == type_id::SET_CHUNK_SIZE
            && let Some(size) = message.payload.get(..4).map(BigEndian::read_u32)
        {
            self.set_chunk_size((size & 0x7fff_ffff) as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::chunk_decoder::ChunkDecoder;
    use bytes::Bytes;

    fn msg(timestamp: u32, len: usize, type_id: u8) -> RawMessage {
        RawMessage {
            type_id,
            timestamp,
            stream_id: 1,
            payload: Bytes::from(vec![0x5a; len]),
        }
    }

    fn header_formats(messages: &[RawMessage], chunk_size: usize) -> (Vec<u8>, Vec<u8>) {
        let mut enc = ChunkEncoder::new(chunk_size);
        let mut all = Vec::new();
        let mut formats = Vec::new();
        for m in messages {
            let mut out = Vec::new();
            enc.write_message(6, m, &mut out);
            formats.push(out[0] >> 6);
            all.extend(out);
        }
        (formats, all)
    }

    #[test]
    fn compresses_headers_fmt0_to_fmt3() {
        let messages = [
            msg(0, 10, 9),
            msg(40, 10, 9),  // delta 40: fmt 2
            msg(80, 10, 9),  // delta 40 again: fmt 3
            msg(120, 12, 9), // new length: fmt 1
            msg(160, 12, 9), // delta repeats the fmt 1 delta: fmt 3
            msg(150, 12, 9), // backwards: fmt 0
        ];
        let (formats, wire) = header_formats(&messages, 128);
        assert_eq!(formats, vec![0, 2, 3, 1, 3, 0]);
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&wire);
        for m in &messages {
            assert_eq!(d.decode().unwrap().as_ref(), Some(m));
        }
    }

    #[test]
    fn no_fmt3_new_message_directly_after_fmt0() {
        let (formats, _) = header_formats(&[msg(0, 10, 9), msg(0, 10, 9)], 128);
        assert_eq!(formats, vec![0, 2]);
    }

    #[test]
    fn extended_timestamps_use_fmt0_and_repeat_on_continuations() {
        let messages = [
            msg(0xff_fffe, 300, 9),
            msg(0xff_ffff, 300, 9),
            msg(0x1_0000_0000u64 as u32 + 5, 300, 9),
        ];
        let (formats, wire) = header_formats(&messages, 128);
        assert_eq!(formats, vec![0, 0, 0]);
        // Second message: fmt0 header 12 bytes + 4 extended, 128 payload,
        // then 0xC6 and the same 4-byte extended field.
        let second = 12 + 300 + 2;
        assert_eq!(&wire[second + 12..second + 16], &[0, 0xff, 0xff, 0xff]);
        let cont = second + 16 + 128;
        assert_eq!(&wire[cont..cont + 5], &[0xc6, 0, 0xff, 0xff, 0xff]);
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&wire);
        for m in &messages {
            assert_eq!(d.decode().unwrap().as_ref(), Some(m));
        }
    }

    #[test]
    fn round_trips_across_the_32_bit_wrap() {
        let stamps = [0xffff_ff00u32, 0xffff_ffd8, 0x10, 0x38, 0x60];
        let messages: Vec<_> = stamps.iter().map(|&t| msg(t, 200, 9)).collect();
        let (formats, wire) = header_formats(&messages, 128);
        assert_eq!(formats, vec![0, 0, 0, 2, 3]);
        let mut d = ChunkDecoder::new(1 << 20);
        d.feed(&wire);
        for m in &messages {
            assert_eq!(d.decode().unwrap().as_ref(), Some(m));
        }
    }

    #[test]
    fn continuation_headers_carry_the_extended_timestamp() {
        assert_eq!(Continuation::new(6, 0).as_bytes(), &[0xc6]);
        assert_eq!(
            Continuation::new(70, 0x0100_0000).as_bytes(),
            &[0xc0, 6, 1, 0, 0, 0]
        );
        assert_eq!(
            Continuation::new(400, 0xff_ffff).as_bytes(),
            &[0xc1, 0x50, 0x01, 0, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn writing_set_chunk_size_switches_the_encoder() {
        let mut enc = ChunkEncoder::new(128);
        let mut out = Vec::new();
        enc.write_message(
            2,
            &crate::protocol::message::Message::SetChunkSize(4096).encode(0, 0),
            &mut out,
        );
        assert_eq!(enc.chunk_size(), 4096);
        let mut d = ChunkDecoder::new(1 << 20);
        enc.write_message(6, &msg(0, 3000, 9), &mut out);
        d.feed(&out);
        d.decode().unwrap().unwrap();
        assert_eq!(d.decode().unwrap().unwrap().payload.len(), 3000);
        assert_eq!(
            out.len(),
            16 + 12 + 3000,
            "one chunk: no continuation headers"
        );
    }

    #[test]
    fn a_new_stream_id_forces_fmt0() {
        let mut enc = ChunkEncoder::new(128);
        let mut out = Vec::new();
        enc.write_message(6, &msg(0, 3, 9), &mut out);
        let mut other = msg(10, 3, 9);
        other.stream_id = 2;
        let start = out.len();
        enc.write_message(6, &other, &mut out);
        assert_eq!(out[start] >> 6, 0);
    }
}
