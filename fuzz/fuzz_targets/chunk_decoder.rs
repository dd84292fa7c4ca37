//! Fuzzes the chunk decoder and everything a decoded message goes through:
//! typed messages, commands, aggregates. The first byte picks how the input
//! is split into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmp_server::protocol::aggregate;
use rtmp_server::protocol::chunk_decoder::ChunkDecoder;
use rtmp_server::protocol::command::Command;
use rtmp_server::protocol::message::Message;

const MAX_MESSAGE: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let mut decoder = ChunkDecoder::new(MAX_MESSAGE);
    for part in input.chunks(split as usize + 1) {
        decoder.feed(part);
        loop {
            match decoder.decode() {
                Ok(Some(raw)) => {
                    assert!(raw.payload.len() <= MAX_MESSAGE);
                    match Message::decode(&raw) {
                        Ok(Message::Command(values)) | Ok(Message::Data(values)) => {
                            let _ = Command::parse(&values);
                        }
                        Ok(Message::Aggregate(_)) => {
                            let _ = aggregate::split(&raw);
                        }
                        _ => {}
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
            assert!(decoder.partial_bytes() <= 2 * MAX_MESSAGE);
        }
    }
});
