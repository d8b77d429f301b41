//! OpenAI stream chunk parsing on arbitrary event data: an error or a classification, never a
//! panic, whatever the server sends.
#![no_main]

use inference_benchmarker::request::openai::StreamState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut state = StreamState::new(true);
    // Several events per input: the state carries usage, finish reason and text across them.
    for event in text.split('\u{0}') {
        let _ = state.on_data(event);
    }
    let _ = state.usage();
    let _ = state.finish_reason();
    let _ = state.take_text();
});
