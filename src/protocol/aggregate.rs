//! Splits Aggregate messages (type 22) into their sub-messages.
//!
//! Each sub-message is laid out like an FLV tag: type (1), size (3),
//! timestamp (3 + 1 extension byte), stream id (3), body, back pointer (4).
//! Sub-message timestamps are offsets from the first one, applied to the
//! aggregate's own timestamp. Bodies are slices of the aggregate's payload:
//! nothing is copied.

use std::fmt;

use byteorder::{BigEndian, ByteOrder};
use bytes::Bytes;

use super::message::RawMessage;

const TAG_HEADER_LEN: usize = 11;
const BACK_POINTER_LEN: usize = 4;

/// An aggregate whose sub-messages do not fit its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateError {
    pub offset: usize,
}

impl fmt::Display for AggregateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "aggregate message truncated at byte {}", self.offset)
    }
}

impl std::error::Error for AggregateError {}

/// Splits an aggregate message into sub-messages carrying the aggregate's
/// message stream id.
pub fn split(aggregate: &RawMessage) -> Result<Vec<RawMessage>, AggregateError> {
    let payload = &aggregate.payload;
    let mut messages = Vec::new();
    let mut offset = 0;
    let mut first_timestamp = None;
    while offset < payload.len() {
        let header = payload
            .get(offset..offset + TAG_HEADER_LEN)
            .ok_or(AggregateError { offset })?;
        let size = BigEndian::read_u24(&header[1..4]) as usize;
        let timestamp = BigEndian::read_u24(&header[4..7]) | (header[7] as u32) << 24;
        let body_start = offset + TAG_HEADER_LEN;
        let body_end = body_start + size;
        if body_end > payload.len() {
            return Err(AggregateError { offset });
        }
        let base = *first_timestamp.get_or_insert(timestamp);
        messages.push(RawMessage {
            type_id: header[0],
            timestamp: aggregate
                .timestamp
                .wrapping_add(timestamp.wrapping_sub(base)),
            stream_id: aggregate.stream_id,
            payload: payload.slice(body_start..body_end),
        });
        // The back pointer may be missing after the last sub-message.
        offset = (body_end + BACK_POINTER_LEN).min(payload.len());
    }
    Ok(messages)
}

/// Builds an aggregate payload from sub-messages (used by tests and tools).
pub fn join(messages: &[RawMessage]) -> Bytes {
    let mut out = Vec::new();
    for m in messages {
        out.push(m.type_id);
        out.extend_from_slice(&(m.payload.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&(m.timestamp & 0xff_ffff).to_be_bytes()[1..]);
        out.push((m.timestamp >> 24) as u8);
        out.extend_from_slice(&m.stream_id.to_be_bytes()[1..]);
        out.extend_from_slice(&m.payload);
        out.extend_from_slice(&((m.payload.len() + TAG_HEADER_LEN) as u32).to_be_bytes());
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(type_id: u8, timestamp: u32, body: &[u8]) -> RawMessage {
        RawMessage {
            type_id,
            timestamp,
            stream_id: 0,
            payload: Bytes::copy_from_slice(body),
        }
    }

    #[test]
    fn splits_with_offset_timestamps() {
        let subs = [
            sub(9, 5000, b"\x17\x01key"),
            sub(8, 5020, b"\xaf\x01a"),
            sub(9, 5040, b"\x27\x01p"),
        ];
        let aggregate = RawMessage {
            type_id: 22,
            timestamp: 100,
            stream_id: 1,
            payload: join(&subs),
        };
        let got = split(&aggregate).unwrap();
        let stamps: Vec<_> = got.iter().map(|m| m.timestamp).collect();
        assert_eq!(stamps, vec![100, 120, 140]);
        assert!(got.iter().all(|m| m.stream_id == 1));
        assert_eq!(&got[1].payload[..], b"\xaf\x01a");
        assert_eq!(got[0].type_id, 9);
    }

    #[test]
    fn extended_timestamp_byte_and_wrap() {
        let subs = [sub(9, 0x01ff_fff0, b"a"), sub(9, 0x0200_0010, b"b")];
        let aggregate = RawMessage {
            type_id: 22,
            timestamp: 0xffff_fff0,
            stream_id: 1,
            payload: join(&subs),
        };
        let got = split(&aggregate).unwrap();
        assert_eq!(got[1].timestamp, 0x10);
    }

    #[test]
    fn every_truncation_is_an_error_or_a_prefix() {
        let subs = [sub(9, 0, b"abcdef"), sub(8, 10, b"xyz")];
        let full = join(&subs);
        for cut in 0..full.len() {
            let aggregate = RawMessage {
                type_id: 22,
                timestamp: 0,
                stream_id: 1,
                payload: full.slice(..cut),
            };
            if let Ok(got) = split(&aggregate) {
                assert!(got.len() <= 2);
            }
        }
        let aggregate = RawMessage {
            type_id: 22,
            timestamp: 0,
            stream_id: 1,
            payload: full.slice(..5),
        };
        assert_eq!(split(&aggregate), Err(AggregateError { offset: 0 }));
    }
}
