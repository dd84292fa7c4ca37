//! FLV files: the header and the tag stream, parsed from byte slices. The
//! benchmark client publishes pre-encoded FLV files with it.

use std::fmt;

use byteorder::{BigEndian, ByteOrder};
use bytes::Bytes;

use crate::protocol::message::RawMessage;

const HEADER_LEN: usize = 9;
const TAG_HEADER_LEN: usize = 11;
const PREVIOUS_TAG_SIZE_LEN: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlvError {
    /// The data does not start with an `FLV` header.
    NotFlv,
    /// A tag runs past the end of the data.
    Truncated { offset: usize },
}

impl fmt::Display for FlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlvError::NotFlv => write!(f, "not an FLV file"),
            FlvError::Truncated { offset } => write!(f, "FLV tag truncated at byte {offset}"),
        }
    }
}

impl std::error::Error for FlvError {}

/// Parses a whole FLV file into messages (audio, video, script data), with
/// the tags' timestamps. Bodies are slices of `file`: nothing is copied.
pub fn parse(file: &Bytes) -> Result<Vec<RawMessage>, FlvError> {
    if file.get(..3) != Some(b"FLV") || file.len() < HEADER_LEN {
        return Err(FlvError::NotFlv);
    }
    let header_len = BigEndian::read_u32(&file[5..9]) as usize;
    let mut offset = header_len.max(HEADER_LEN) + PREVIOUS_TAG_SIZE_LEN;
    let mut messages = Vec::new();
    while offset < file.len() {
        let header = file
            .get(offset..offset + TAG_HEADER_LEN)
            .ok_or(FlvError::Truncated { offset })?;
        let size = BigEndian::read_u24(&header[1..4]) as usize;
        let timestamp = BigEndian::read_u24(&header[4..7]) | (header[7] as u32) << 24;
        let body = offset + TAG_HEADER_LEN;
        if body + size > file.len() {
            return Err(FlvError::Truncated { offset });
        }
        messages.push(RawMessage {
            // The low 5 bits; the others flag filtering (encryption).
            type_id: header[0] & 0x1f,
            timestamp,
            stream_id: 0,
            payload: file.slice(body..body + size),
        });
        offset = body + size + PREVIOUS_TAG_SIZE_LEN;
    }
    Ok(messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flv(tags: &[(u8, u32, &[u8])]) -> Bytes {
        let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        for (kind, ts, body) in tags {
            out.push(*kind);
            out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
            out.extend_from_slice(&(ts & 0xff_ffff).to_be_bytes()[1..]);
            out.push((ts >> 24) as u8);
            out.extend_from_slice(&[0, 0, 0]);
            out.extend_from_slice(body);
            out.extend_from_slice(&((body.len() + 11) as u32).to_be_bytes());
        }
        Bytes::from(out)
    }

    #[test]
    fn parses_tags() {
        let file = flv(&[
            (18, 0, b"meta"),
            (9, 0, b"\x17\x00"),
            (8, 0x0100_0023, b"\xaf\x01"),
        ]);
        let tags = parse(&file).unwrap();
        assert_eq!(tags.len(), 3);
        assert_eq!(tags[0].type_id, 18);
        assert_eq!(&tags[1].payload[..], b"\x17\x00");
        assert_eq!(tags[2].timestamp, 0x0100_0023);
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert_eq!(parse(&Bytes::from_static(b"GIF89a")), Err(FlvError::NotFlv));
        let file = flv(&[(9, 0, b"\x17\x01abc")]);
        for cut in 14..file.len() - 4 {
            assert!(parse(&file.slice(..cut)).is_err(), "cut {cut}");
        }
    }
}
