//! The chunk decoder with byte vectors: every prefix, one byte at a time,
//! header formats, extended timestamps, chunk sizes, aborts and bounds.

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
