//! The SSE decoder on arbitrary bytes: never panics, stays within its limits, and decodes the
//! same events whatever the network cuts the bytes into (the first byte picks the piece size).
#![no_main]

use std::ops::ControlFlow;

use inference_benchmarker::request::sse::{SseDecoder, SseError};
use libfuzzer_sys::fuzz_target;

/// Small limits, so the oversize paths are reached too.
const MAX_LINE: usize = 64;
const MAX_EVENT: usize = 256;

fn decode(pieces: &[&[u8]]) -> (Vec<String>, Option<SseError>) {
    let mut decoder = SseDecoder::with_limits(MAX_LINE, MAX_EVENT);
    let mut events = Vec::new();
    for piece in pieces {
        let result = decoder.feed(piece, &mut |data| {
            assert!(data.len() <= MAX_EVENT, "an event beyond its limit");
            events.push(data.to_string());
            ControlFlow::Continue(())
        });
        if let Err(e) = result {
            return (events, Some(e));
        }
    }
    let end = decoder.finish(&mut |data| {
        events.push(data.to_string());
        ControlFlow::Continue(())
    });
    (events, end.err())
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let whole = decode(&[bytes]);
    let pieces: Vec<&[u8]> = bytes.chunks(usize::from(first % 17) + 1).collect();
    assert_eq!(decode(&pieces), whole, "the cut changed what was decoded");
});
