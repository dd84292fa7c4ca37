//! Micro-benchmark of the sans-IO core: chunk encoding and decoding
//! throughput in MB/s on typical media messages.

use std::time::{Duration, Instant};

use bytes::Bytes;

use rtmp_server::protocol::chunk_decoder::ChunkDecoder;
use rtmp_server::protocol::chunk_encoder::{ChunkEncoder, Continuation, MessageHeader};
use rtmp_server::protocol::message::{Message, RawMessage};

/// Throughput of one operation.
#[derive(Debug, Clone)]
pub struct Throughput {
    pub name: &'static str,
    pub megabytes_per_second: f64,
}

fn messages() -> Vec<RawMessage> {
    // A GOP-like mix: one 60 KB keyframe, 29 inter frames of 8 KB, audio.
    let mut out = Vec::new();
    for i in 0..30u32 {
        let size = if i == 0 { 60_000 } else { 8_000 };
        out.push(RawMessage {
            type_id: 9,
            timestamp: i * 33,
            stream_id: 1,
            payload: Bytes::from(vec![if i == 0 { 0x17 } else { 0x27 }; size]),
        });
        out.push(RawMessage {
            type_id: 8,
            timestamp: i * 33 + 5,
            stream_id: 1,
            payload: Bytes::from(vec![0xaf; 400]),
        });
    }
    out
}

fn measure(
    name: &'static str,
    bytes_per_round: usize,
    budget: Duration,
    mut round: impl FnMut(),
) -> Throughput {
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < budget {
        round();
        rounds += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    Throughput {
        name,
        megabytes_per_second: rounds as f64 * bytes_per_round as f64 / seconds / 1e6,
    }
}

/// Runs each measurement for `budget`.
pub fn run(budget: Duration) -> Vec<Throughput> {
    let messages = messages();
    let payload_bytes: usize = messages.iter().map(|m| m.payload.len()).sum();
    let mut wire = Vec::new();
    let mut encoder = ChunkEncoder::new(128);
    // Writing Set Chunk Size switches the encoder too.
    encoder.write_message(2, &Message::SetChunkSize(4096).encode(0, 0), &mut wire);
    for m in &messages {
        encoder.write_message(6, m, &mut wire);
    }
    let wire = wire;
    let mut results = Vec::new();
    results.push(measure(
        "chunk encode (whole messages)",
        payload_bytes,
        budget,
        || {
            let mut encoder = ChunkEncoder::new(4096);
            let mut out = Vec::with_capacity(payload_bytes + 4096);
            for m in &messages {
                encoder.write_message(6, m, &mut out);
            }
            std::hint::black_box(&out);
        },
    ));
    // What a player's writer does per message: its own header, then the
    // shared payload's pieces between continuation headers, borrowed for
    // a vectored write (nothing copied).
    results.push(measure(
        "per-player framing (payload borrowed)",
        payload_bytes,
        budget,
        || {
            let mut encoder = ChunkEncoder::new(4096);
            let mut headers = Vec::with_capacity(512);
            let mut slices = 0usize;
            for m in &messages {
                let header = MessageHeader {
                    csid: 6,
                    timestamp: m.timestamp,
                    length: m.payload.len() as u32,
                    type_id: m.type_id,
                    stream_id: 1,
                };
                encoder.write_header(&header, &mut headers);
                let continuation = Continuation::new(6, m.timestamp);
                for (i, piece) in m.payload.chunks(4096).enumerate() {
                    if i > 0 {
                        std::hint::black_box(continuation.as_bytes());
                    }
                    std::hint::black_box(piece);
                    slices += 2;
                }
                headers.clear();
            }
            std::hint::black_box(slices);
        },
    ));
    results.push(measure("chunk decode", payload_bytes, budget, || {
        let mut decoder = ChunkDecoder::new(1 << 20);
        for piece in wire.chunks(16 * 1024) {
            decoder.feed(piece);
            while let Ok(Some(m)) = decoder.decode() {
                std::hint::black_box(&m);
            }
        }
    }));
    results
}
