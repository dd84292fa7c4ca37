//! Fuzzes the server handshake with arbitrary client bytes, fed in reads
//! whose size the first byte picks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtmp_server::protocol::handshake::ServerHandshake;

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let mut handshake = ServerHandshake::new(0);
    for part in input.chunks(split as usize * 16 + 1) {
        let mut rest = part;
        while !rest.is_empty() && !handshake.is_done() {
            match handshake.feed(rest) {
                Ok(used) => rest = &rest[used..],
                Err(_) => return,
            }
            let out = handshake.take_output();
            assert!(out.is_empty() || out.len() == 1 + 2 * 1536);
        }
    }
});
