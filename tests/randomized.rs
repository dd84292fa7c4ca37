//! Randomized robustness of the sans-IO core: arbitrary bytes and mutated
//! valid chunk streams go through the chunk decoder, message, command,
//! aggregate, media and handshake code. Nothing may panic, and the
//! decoder's memory stays within its bounds whatever it is fed.

use bytes::Bytes;
use proptest::prelude::*;
use rtmp_server::media::codec;
use rtmp_server::protocol::aggregate;
use rtmp_server::protocol::amf0;
use rtmp_server::protocol::chunk_decoder::ChunkDecoder;
use rtmp_server::protocol::chunk_encoder::ChunkEncoder;
use rtmp_server::protocol::command::Command;
use rtmp_server::protocol::handshake::ServerHandshake;
use rtmp_server::protocol::message::{Message, RawMessage};

const MAX_MESSAGE: usize = 64 * 1024;

/// Feeds `input` in pieces of `piece` bytes and runs every decoded message
/// through the rest of the core. Returns how many messages decoded.
fn drive(input: &[u8], piece: usize) -> usize {
    let mut decoder = ChunkDecoder::new(MAX_MESSAGE);
    let mut decoded = 0;
    for part in input.chunks(piece.max(1)) {
        decoder.feed(part);
        loop {
            match decoder.decode() {
                Ok(Some(raw)) => {
                    decoded += 1;
                    inspect(&raw);
                }
                Ok(None) => break,
                Err(_) => return decoded,
            }
            assert!(decoder.partial_bytes() <= 2 * MAX_MESSAGE);
        }
        // Unparsed input never exceeds what was fed plus one header.
        assert!(decoder.buffered() <= input.len());
    }
    decoded
}

fn inspect(raw: &RawMessage) {
    assert!(raw.payload.len() <= MAX_MESSAGE);
    match Message::decode(raw) {
        Ok(Message::Command(values)) | Ok(Message::Data(values)) => {
            let _ = Command::parse(&values);
        }
        Ok(Message::Aggregate(_)) => {
            if let Ok(subs) = aggregate::split(raw) {
                subs.iter().for_each(inspect_media);
            }
        }
        _ => inspect_media(raw),
    }
}

fn inspect_media(raw: &RawMessage) {
    let _ = codec::inspect_video(&raw.payload);
    let _ = codec::inspect_audio(&raw.payload);
    let _ = codec::video_profile_level(&raw.payload);
    let _ = codec::audio_format(&raw.payload);
}

prop_compose! {
    fn message()(type_id in prop::sample::select(vec![1u8, 2, 3, 4, 5, 6, 8, 9, 15, 17, 18, 20, 22]),
                 timestamp in any::<u32>(),
                 stream_id in 0u32..4,
                 payload in prop::collection::vec(any::<u8>(), 0..3000)) -> RawMessage {
        RawMessage { type_id, timestamp, stream_id, payload: Bytes::from(payload) }
    }
}

/// A valid chunk stream of random messages on random chunk streams.
fn valid_stream(messages: &[RawMessage], csids: &[u32]) -> Vec<u8> {
    let mut encoder = ChunkEncoder::new(128);
    let mut out = Vec::new();
    for (m, csid) in messages.iter().zip(csids.iter().cycle()) {
        if m.type_id == 1 {
            continue; // a Set Chunk Size would need the encoder to follow it
        }
        encoder.write_message(*csid, m, &mut out);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..20_000), piece in 1usize..5000) {
        drive(&input, piece);
        let _ = amf0::decode_all(&input);
        let mut handshake = ServerHandshake::new(0);
        let _ = handshake.feed(&input);
    }

    #[test]
    fn valid_streams_decode_completely(messages in prop::collection::vec(message(), 1..20),
                                       csids in prop::collection::vec(2u32..400, 1..5),
                                       piece in 1usize..5000) {
        let wire = valid_stream(&messages, &csids);
        let expected = messages.iter().filter(|m| m.type_id != 1).count();
        // Abort messages (type 2) may name a chunk stream and drop what is
        // in flight there; everything else must come out.
        let aborts = messages.iter().filter(|m| m.type_id == 2).count();
        let decoded = drive(&wire, piece);
        prop_assert!(decoded + aborts >= expected, "{decoded} of {expected}");
    }

    #[test]
    fn mutated_valid_streams_never_panic(messages in prop::collection::vec(message(), 1..20),
                                         csids in prop::collection::vec(2u32..70_000, 1..5),
                                         flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..20),
                                         cut in any::<prop::sample::Index>(),
                                         piece in 1usize..5000) {
        let mut wire = valid_stream(&messages, &csids);
        if wire.is_empty() {
            return Ok(());
        }
        for (at, byte) in flips {
            let i = at.index(wire.len());
            wire[i] = byte;
        }
        wire.truncate(cut.index(wire.len()) + 1);
        drive(&wire, piece);
    }
}
