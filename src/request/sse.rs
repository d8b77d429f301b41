//! Server-Sent Events decoding, byte by byte as chunks come off the network
//! (WHATWG HTML "event stream interpretation"), with bounded memory.
//!
//! Pure: no I/O, no actix. Runs on the request hot path for every chunk, so the
//! common case — an event that arrives whole inside one network chunk — is handed
//! to the callback straight from the caller's bytes without being copied. Only a
//! line or event that spans chunks is buffered, in buffers reused for the whole
//! stream.

use std::fmt;
use std::ops::{ControlFlow, Range};

/// Longest line accepted by [`SseDecoder::new`], terminator excluded.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// Largest event data accepted by [`SseDecoder::new`] (data lines joined by `\n`).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why a stream could not be decoded. After any of these the decoder refuses
/// further input (the stream is broken; resynchronising would invent events).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SseError {
    /// A line grew beyond the line limit before its terminator arrived.
    LineTooLong { limit: usize },
    /// An event's data grew beyond the event limit before its blank line arrived.
    EventTooLarge { limit: usize },
    /// An event's data or name was not UTF-8.
    InvalidUtf8,
    /// Returned by [`SseDecoder::finish`]: the stream ended inside a line (no
    /// terminator after the last `bytes` bytes), so the event it belonged to was
    /// cut off and is not dispatched.
    Truncated { bytes: usize },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::LineTooLong { limit } => {
                write!(f, "SSE line longer than {limit} bytes")
            }
            SseError::EventTooLarge { limit } => {
                write!(f, "SSE event data larger than {limit} bytes")
            }
            SseError::InvalidUtf8 => f.write_str("SSE event is not valid UTF-8"),
            SseError::Truncated { bytes } => {
                write!(f, "SSE stream ended inside a line ({bytes} bytes cut off)")
            }
        }
    }
}

impl std::error::Error for SseError {}

/// One dispatched event. Borrowed: copy what you keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, or `"message"` when the event had none (as in browsers).
    pub event: &'a str,
    /// The `data:` lines joined with `\n`.
    pub data: &'a str,
}

/// Incremental SSE decoder. One per stream; [`finish`](Self::finish) resets it
/// for reuse, keeping its buffers.
#[derive(Debug)]
pub struct SseDecoder {
    max_line: usize,
    max_event: usize,
    /// Start of a line whose terminator has not arrived yet (at most `max_line` bytes).
    partial: Vec<u8>,
    /// Data of the event being built, once it had to outlive one `feed` call.
    data: Vec<u8>,
    /// A `data:` field was seen in the current event (its data may still be empty).
    has_data: bool,
    /// The current event's `event:` field; empty means "message".
    event: String,
    /// The last chunk ended on `\r`: a `\n` starting the next one belongs to it.
    skip_lf: bool,
    /// No line completed yet: a leading byte-order mark is still to be dropped.
    at_start: bool,
    /// Set by the first error; every later call returns it.
    failed: Option<SseError>,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Where the bytes of the line being processed live. Lines inside the current
/// input are referred to by range so an event's data can stay borrowed.
#[derive(Clone, Copy)]
enum LineSource {
    Input,
    Partial,
}

impl SseDecoder {
    /// A decoder with [`DEFAULT_MAX_LINE_BYTES`] and [`DEFAULT_MAX_EVENT_BYTES`].
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_EVENT_BYTES)
    }

    /// A decoder with explicit bounds on one line (terminator excluded) and on
    /// one event's joined data.
    pub fn with_limits(max_line_bytes: usize, max_event_bytes: usize) -> Self {
        SseDecoder {
            max_line: max_line_bytes,
            max_event: max_event_bytes,
            partial: Vec::new(),
            data: Vec::new(),
            has_data: false,
            event: String::new(),
            skip_lf: false,
            at_start: true,
            failed: None,
        }
    }

    /// Feeds bytes as they came off the network and calls `on_event` with the
    /// data of each complete event. When the callback returns `Break`, decoding
    /// stops at once, the rest of `bytes` is discarded and `Ok(Break)` returned.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        on_event: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SseError> {
        self.feed_events(bytes, &mut |ev: SseEvent<'_>| on_event(ev.data))
    }

    /// Like [`feed`](Self::feed), with the event name as well as its data.
    pub fn feed_events(
        &mut self,
        bytes: &[u8],
        on_event: &mut dyn FnMut(SseEvent<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SseError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let mut borrowed = None;
        let result = self.feed_lines(bytes, &mut borrowed, on_event);
        // Data still borrowed from `bytes` belongs to an event whose blank line
        // has not arrived: it must outlive this call.
        if let Some(range) = borrowed {
            self.data.clear();
            self.data.extend_from_slice(&bytes[range]);
        }
        if let Err(err) = result {
            self.failed = Some(err);
        }
        result
    }

    /// Ends the stream. A pending event whose lines were all complete is
    /// dispatched (servers that close without the final blank line). If the
    /// stream stopped inside a line, that line's event is incomplete: it is
    /// dropped and `Err(Truncated)` returned. The decoder is then reset for reuse.
    pub fn finish(
        &mut self,
        on_event: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SseError> {
        self.finish_events(&mut |ev: SseEvent<'_>| on_event(ev.data))
    }

    /// Like [`finish`](Self::finish), with the event name as well as its data.
    pub fn finish_events(
        &mut self,
        on_event: &mut dyn FnMut(SseEvent<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SseError> {
        let result = if let Some(err) = self.failed {
            Err(err)
        } else if !self.partial.is_empty() {
            Err(SseError::Truncated {
                bytes: self.partial.len(),
            })
        } else {
            self.dispatch(&[], &mut None, on_event)
        };
        self.reset();
        result
    }

    /// Forgets the current stream (and any error), keeping buffer capacity.
    pub fn reset(&mut self) {
        self.partial.clear();
        self.data.clear();
        self.has_data = false;
        self.event.clear();
        self.skip_lf = false;
        self.at_start = true;
        self.failed = None;
    }

    /// Splits `bytes` into lines and processes each complete one; keeps the
    /// unterminated tail in `partial`. `borrowed` is the current event's data
    /// while it still lies inside `bytes`.
    fn feed_lines(
        &mut self,
        bytes: &[u8],
        borrowed: &mut Option<Range<usize>>,
        on_event: &mut dyn FnMut(SseEvent<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SseError> {
        let mut pos = 0;
        if self.skip_lf && !bytes.is_empty() {
            self.skip_lf = false;
            if bytes[0] == b'\n' {
                pos = 1;
            }
        }
        while pos < bytes.len() {
            let rest = &bytes[pos..];
            let Some(len) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.push_partial(rest)?;
                return Ok(ControlFlow::Continue(()));
            };
            let end = pos + len;
            let mut next = end + 1;
            if bytes[end] == b'\r' {
                match bytes.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    // The `\n` of a `\r\n` may start the next chunk.
                    None => self.skip_lf = true,
                }
            }
            let flow = if self.partial.is_empty() {
                self.process_line(bytes, pos..end, LineSource::Input, borrowed, on_event)?
            } else {
                self.push_partial(&bytes[pos..end])?;
                // Taken out so the line can be read while `self` is mutated;
                // put back (cleared) to keep its capacity.
                let line = std::mem::take(&mut self.partial);
                let flow = self.process_line(
                    &line,
                    0..line.len(),
                    LineSource::Partial,
                    borrowed,
                    on_event,
                );
                self.partial = line;
                self.partial.clear();
                flow?
            };
            if flow.is_break() {
                return Ok(flow);
            }
            pos = next;
        }
        Ok(ControlFlow::Continue(()))
    }

    fn push_partial(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.partial.len() + bytes.len() > self.max_line {
            return Err(SseError::LineTooLong {
                limit: self.max_line,
            });
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    /// Interprets one complete line, `buf[range]`, terminator excluded.
    fn process_line(
        &mut self,
        buf: &[u8],
        mut range: Range<usize>,
        source: LineSource,
        borrowed: &mut Option<Range<usize>>,
        on_event: &mut dyn FnMut(SseEvent<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SseError> {
        if range.len() > self.max_line {
            return Err(SseError::LineTooLong {
                limit: self.max_line,
            });
        }
        if self.at_start {
            self.at_start = false;
            if buf[range.clone()].starts_with(BOM) {
                range.start += BOM.len();
            }
        }
        let line = &buf[range.clone()];
        if line.is_empty() {
            return self.dispatch(buf, borrowed, on_event);
        }
        // Comments (`: keep-alive`) carry nothing.
        if line[0] == b':' {
            return Ok(ControlFlow::Continue(()));
        }
        let (name_len, value_start) = match line.iter().position(|&b| b == b':') {
            Some(colon) if line.get(colon + 1) == Some(&b' ') => (colon, colon + 2),
            Some(colon) => (colon, colon + 1),
            // A line without a colon is a field name with an empty value.
            None => (line.len(), line.len()),
        };
        let value = range.start + value_start..range.end;
        match &line[..name_len] {
            b"data" => self.push_data(buf, value, source, borrowed)?,
            b"event" => {
                let name = std::str::from_utf8(&buf[value]).map_err(|_| SseError::InvalidUtf8)?;
                self.event.clear();
                self.event.push_str(name);
            }
            // `id` and `retry` only matter to reconnecting clients; we never
            // reconnect a benchmark request. Unknown fields are ignored by the spec.
            _ => {}
        }
        Ok(ControlFlow::Continue(()))
    }

    fn push_data(
        &mut self,
        buf: &[u8],
        value: Range<usize>,
        source: LineSource,
        borrowed: &mut Option<Range<usize>>,
    ) -> Result<(), SseError> {
        let joined = if self.has_data {
            borrowed.as_ref().map_or(self.data.len(), Range::len) + 1
        } else {
            0
        };
        if joined + value.len() > self.max_event {
            return Err(SseError::EventTooLarge {
                limit: self.max_event,
            });
        }
        // First data line, inside the caller's bytes: keep it borrowed.
        if !self.has_data && matches!(source, LineSource::Input) {
            self.has_data = true;
            *borrowed = Some(value);
            return Ok(());
        }
        // A second line (or a line that spanned chunks): join in the owned buffer.
        if let Some(first) = borrowed.take() {
            self.data.clear();
            self.data.extend_from_slice(&buf[first]);
        }
        if self.has_data {
            self.data.push(b'\n');
        }
        self.data.extend_from_slice(&buf[value]);
        self.has_data = true;
        Ok(())
    }

    /// Blank line (or end of stream): hands the event over unless it had no data.
    fn dispatch(
        &mut self,
        buf: &[u8],
        borrowed: &mut Option<Range<usize>>,
        on_event: &mut dyn FnMut(SseEvent<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, SseError> {
        let mut flow = ControlFlow::Continue(());
        if self.has_data {
            let data = match borrowed.take() {
                Some(range) => &buf[range],
                None => &self.data[..],
            };
            let data = std::str::from_utf8(data).map_err(|_| SseError::InvalidUtf8)?;
            let event = if self.event.is_empty() {
                "message"
            } else {
                &self.event
            };
            flow = on_event(SseEvent { event, data });
        }
        self.data.clear();
        self.has_data = false;
        self.event.clear();
        Ok(flow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a decoder produced for a stream, in order.
    #[derive(Debug, PartialEq, Eq)]
    enum Out {
        Event(String, String),
        Err(SseError),
    }

    fn decode_chunks(decoder: &mut SseDecoder, chunks: &[&[u8]]) -> Vec<Out> {
        let mut out = Vec::new();
        let mut push = |ev: SseEvent<'_>| {
            out.push(Out::Event(ev.event.to_owned(), ev.data.to_owned()));
            ControlFlow::Continue(())
        };
        for chunk in chunks {
            if let Err(e) = decoder.feed_events(chunk, &mut push) {
                out.push(Out::Err(e));
                return out;
            }
        }
        if let Err(e) = decoder.finish_events(&mut push) {
            out.push(Out::Err(e));
        }
        out
    }

    fn decode(chunks: &[&[u8]]) -> Vec<Out> {
        decode_chunks(&mut SseDecoder::new(), chunks)
    }

    fn data_events(items: &[&str]) -> Vec<Out> {
        items
            .iter()
            .map(|d| Out::Event("message".into(), d.to_string()))
            .collect()
    }

    /// A vLLM chat stream as it appears on the wire, with escapes, multi-byte
    /// UTF-8, a keep-alive comment and the final usage chunk.
    const VLLM_STREAM: &str = concat!(
        "data: {\"id\":\"chatcmpl-b1\",\"object\":\"chat.completion.chunk\",\"created\":1732000000,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-b1\",\"object\":\"chat.completion.chunk\",\"created\":1732000000,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Bonjour\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
        ": ping\n\n",
        "data: {\"id\":\"chatcmpl-b1\",\"object\":\"chat.completion.chunk\",\"created\":1732000000,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \u{e9}t\u{e9} \u{1F600}\\n\"},\"logprobs\":null,\"finish_reason\":\"length\",\"stop_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-b1\",\"object\":\"chat.completion.chunk\",\"created\":1732000000,\"model\":\"meta-llama/Llama-3.1-8B-Instruct\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"total_tokens\":14,\"completion_tokens\":2}}\n\n",
        "data: [DONE]\n\n",
    );

    fn vllm_expected() -> Vec<Out> {
        let want: Vec<Out> = VLLM_STREAM
            .split("\n\n")
            .filter_map(|block| block.strip_prefix("data: "))
            .map(|d| Out::Event("message".into(), d.to_owned()))
            .collect();
        assert_eq!(want.len(), 5);
        want
    }

    #[test]
    fn whole_stream_in_one_chunk() {
        assert_eq!(decode(&[VLLM_STREAM.as_bytes()]), vllm_expected());
    }

    #[test]
    fn split_at_every_byte_position() {
        let bytes = VLLM_STREAM.as_bytes();
        let want = vllm_expected();
        for split in 0..=bytes.len() {
            let (a, b) = bytes.split_at(split);
            assert_eq!(decode(&[a, b]), want, "split at {split}");
        }
    }

    #[test]
    fn split_in_three_at_many_positions() {
        let bytes = VLLM_STREAM.as_bytes();
        let want = vllm_expected();
        for first in (0..bytes.len()).step_by(7) {
            for second in (first..=bytes.len()).step_by(13) {
                let chunks = [&bytes[..first], &bytes[first..second], &bytes[second..]];
                assert_eq!(decode(&chunks), want, "splits {first}, {second}");
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let chunks: Vec<&[u8]> = VLLM_STREAM.as_bytes().chunks(1).collect();
        assert_eq!(decode(&chunks), vllm_expected());
    }

    /// Deterministic xorshift, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn random_streams_decode_the_same_however_chunked() {
        const LINES: [&str; 9] = [
            "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}",
            "data:y",
            "data",
            ": keep-alive",
            "event: update",
            "id: 12",
            "retry: 100",
            "",
            "\u{e9}\u{1F600}: odd field",
        ];
        const ENDS: [&str; 3] = ["\n", "\r\n", "\r"];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut events = 0;
        for _ in 0..300 {
            let mut stream = String::new();
            for _ in 0..rng.below(40) {
                stream.push_str(LINES[rng.below(LINES.len())]);
                stream.push_str(ENDS[rng.below(ENDS.len())]);
            }
            let bytes = stream.as_bytes();
            let whole = decode(&[bytes]);
            events += whole.len();
            let mut chunks = Vec::new();
            let mut rest = bytes;
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(rng.below(rest.len().min(9)) + 1);
                chunks.push(chunk);
                rest = tail;
            }
            assert_eq!(decode(&chunks), whole, "stream {stream:?} in {chunks:?}");
        }
        assert!(events > 300, "the generator makes real events: {events}");
    }

    #[test]
    fn crlf_and_cr_line_ends() {
        let crlf = VLLM_STREAM.replace('\n', "\r\n");
        let cr = VLLM_STREAM.replace('\n', "\r");
        for stream in [&crlf, &cr] {
            assert_eq!(decode(&[stream.as_bytes()]), vllm_expected());
            let chunks: Vec<&[u8]> = stream.as_bytes().chunks(1).collect();
            assert_eq!(decode(&chunks), vllm_expected());
        }
        // Mixed line ends within one stream.
        let mixed = b"data: a\r\n\rdata: b\n\r\ndata: c\r\r";
        assert_eq!(decode(&[mixed]), data_events(&["a", "b", "c"]));
    }

    #[test]
    fn cr_then_lf_across_chunks_is_one_line_end() {
        // Were `\r` | `\n` two line ends, the `\n` would be a blank line and
        // dispatch "a" alone before "b" arrived.
        assert_eq!(
            decode(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]),
            data_events(&["a\nb"])
        );
        // A `\r` at a chunk end followed by a chunk that does not start with `\n`.
        assert_eq!(
            decode(&[b"data: a\r", b"\r", b"data: b\r", b"", b"\r"]),
            data_events(&["a", "b"])
        );
    }

    #[test]
    fn comments_and_keep_alives_are_ignored() {
        let stream =
            b": keep-alive\n\n:\ndata: x\n: comment inside an event\ndata: y\n\n: ping\n\n";
        assert_eq!(decode(&[stream]), data_events(&["x\ny"]));
    }

    #[test]
    fn multi_line_data_joins_with_newline() {
        let stream = b"data: {\"a\":\ndata: 1}\ndata:\n\n";
        assert_eq!(decode(&[stream]), data_events(&["{\"a\":\n1}\n"]));
    }

    #[test]
    fn data_without_space_and_extra_spaces() {
        let stream = b"data:no-space\n\ndata:  two-spaces\n\ndata: \n\n";
        assert_eq!(
            decode(&[stream]),
            data_events(&["no-space", " two-spaces", ""])
        );
    }

    #[test]
    fn field_without_colon_has_empty_value() {
        // `data` alone is a data line with empty value: the event is dispatched.
        assert_eq!(decode(&[b"data\n\n"]), data_events(&[""]));
        assert_eq!(decode(&[b"data\ndata\n\n"]), data_events(&["\n"]));
        // `event` alone resets the name to the default.
        assert_eq!(decode(&[b"event\ndata: x\n\n"]), data_events(&["x"]));
    }

    #[test]
    fn event_name_id_retry_and_unknown_fields() {
        let stream = b"event: error\nid: 7\nretry: 1000\nfoo: bar\ndata: {\"error\":\"boom\"}\n\ndata: next\n\n";
        assert_eq!(
            decode(&[stream]),
            vec![
                Out::Event("error".into(), "{\"error\":\"boom\"}".into()),
                Out::Event("message".into(), "next".into()),
            ]
        );
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let stream = b"event: ping\n\nid: 3\n\nretry: 10\n\n\n\n\ndata: real\n\n";
        assert_eq!(decode(&[stream]), data_events(&["real"]));
    }

    #[test]
    fn leading_byte_order_mark_is_dropped() {
        let stream = b"\xEF\xBB\xBFdata: x\n\n";
        assert_eq!(decode(&[stream]), data_events(&["x"]));
        // Split inside the mark.
        assert_eq!(decode(&[&stream[..2], &stream[2..]]), data_events(&["x"]));
        // Only at the very start of the stream.
        let later = b"data: x\n\n\xEF\xBB\xBFdata: y\n\n";
        assert_eq!(decode(&[later]), data_events(&["x"]));
    }

    #[test]
    fn oversize_line_is_an_error_with_bounded_memory() {
        let mut decoder = SseDecoder::with_limits(16, 64);
        let mut events = 0;
        let mut count = |_: &str| {
            events += 1;
            ControlFlow::Continue(())
        };
        assert_eq!(
            decoder.feed(b"data: 0123456789", &mut count),
            Ok(ControlFlow::Continue(()))
        );
        // The line reaches 17 bytes before any terminator: refused at once,
        // without waiting for (and buffering) the rest of it.
        assert_eq!(
            decoder.feed(b"a", &mut count),
            Err(SseError::LineTooLong { limit: 16 })
        );
        assert!(decoder.partial.capacity() <= 64);
        // The decoder stays failed.
        assert_eq!(
            decoder.feed(b"\n\n", &mut count),
            Err(SseError::LineTooLong { limit: 16 })
        );
        assert_eq!(events, 0);

        // A complete oversize line inside one chunk.
        let out = decode_chunks(
            &mut SseDecoder::with_limits(16, 64),
            &[b"data: ok\n\ndata: 0123456789abcdef\n\n"],
        );
        assert_eq!(
            out,
            vec![
                Out::Event("message".into(), "ok".into()),
                Out::Err(SseError::LineTooLong { limit: 16 })
            ]
        );
        // Exactly at the limit is fine.
        let out = decode_chunks(
            &mut SseDecoder::with_limits(16, 64),
            &[b"data: 0123456789\n\n"],
        );
        assert_eq!(out, data_events(&["0123456789"]));
    }

    #[test]
    fn oversize_event_is_an_error_with_bounded_memory() {
        // 4 lines of 8 data bytes joined = 35 bytes > 32.
        let stream = b"data: 01234567\ndata: 01234567\ndata: 01234567\ndata: 01234567\n\n";
        let out = decode_chunks(&mut SseDecoder::with_limits(64, 32), &[stream]);
        assert_eq!(out, vec![Out::Err(SseError::EventTooLarge { limit: 32 })]);
        // Byte by byte too, and the buffer never exceeded the bound.
        let mut decoder = SseDecoder::with_limits(64, 32);
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        let out = decode_chunks(&mut decoder, &chunks);
        assert_eq!(out, vec![Out::Err(SseError::EventTooLarge { limit: 32 })]);
        assert!(decoder.data.len() <= 32);
        // Three lines (26 bytes) fit.
        let out = decode_chunks(
            &mut SseDecoder::with_limits(64, 32),
            &[&stream[..45], b"\n"],
        );
        assert_eq!(out, data_events(&["01234567\n01234567\n01234567"]));
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert_eq!(
            decode(&[b"data: ok\n\ndata: \xFF\xFEbad\n\n"]),
            vec![
                Out::Event("message".into(), "ok".into()),
                Out::Err(SseError::InvalidUtf8)
            ]
        );
        assert_eq!(
            decode(&[b"event: \xC3\n"]),
            vec![Out::Err(SseError::InvalidUtf8)]
        );
        // A multi-byte character split across chunks is fine.
        let text = "data: \u{1F600}\n\n".as_bytes();
        assert_eq!(
            decode(&[&text[..8], &text[8..]]),
            data_events(&["\u{1F600}"])
        );
        // Garbage in a comment is never looked at.
        assert_eq!(decode(&[b": \xFF\ndata: x\n\n"]), data_events(&["x"]));
    }

    #[test]
    fn eof_with_final_blank_line() {
        assert_eq!(
            decode(&[b"data: a\n\ndata: b\n\n"]),
            data_events(&["a", "b"])
        );
    }

    #[test]
    fn eof_without_final_blank_line_dispatches_complete_event() {
        assert_eq!(decode(&[b"data: a\n\ndata: b\n"]), data_events(&["a", "b"]));
        assert_eq!(decode(&[b"data: a\r"]), data_events(&["a"]));
        assert_eq!(
            decode(&[b"data: a\n", b"data: b\r\n"]),
            data_events(&["a\nb"])
        );
    }

    #[test]
    fn eof_inside_a_line_is_truncated() {
        assert_eq!(
            decode(&[b"data: a\n\ndata: {\"cho"]),
            vec![
                Out::Event("message".into(), "a".into()),
                Out::Err(SseError::Truncated { bytes: 11 })
            ]
        );
        // The complete data lines before the cut belong to the same event: dropped.
        assert_eq!(
            decode(&[b"data: a\ndata: b"]),
            vec![Out::Err(SseError::Truncated { bytes: 7 })]
        );
        // Empty stream: nothing at all.
        assert_eq!(decode(&[]), vec![]);
    }

    #[test]
    fn finish_resets_for_reuse() {
        let mut decoder = SseDecoder::new();
        assert_eq!(
            decode_chunks(&mut decoder, &[b"event: x\ndata: a\n\ndata: cut"]),
            vec![
                Out::Event("x".into(), "a".into()),
                Out::Err(SseError::Truncated { bytes: 9 })
            ]
        );
        assert_eq!(
            decode_chunks(&mut decoder, &[b"\xEF\xBB\xBFdata: b\n\n"]),
            data_events(&["b"])
        );
    }

    #[test]
    fn break_stops_decoding() {
        let mut decoder = SseDecoder::new();
        let mut seen = Vec::new();
        let mut stop_at_done = |data: &str| {
            seen.push(data.to_owned());
            if data == "[DONE]" {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let flow = decoder.feed(
            b"data: a\n\ndata: [DONE]\n\ndata: after\n\n",
            &mut stop_at_done,
        );
        // The rest of the chunk was discarded: nothing pending at the end.
        let end = decoder.finish(&mut stop_at_done);
        assert_eq!(flow, Ok(ControlFlow::Break(())));
        assert_eq!(end, Ok(ControlFlow::Continue(())));
        assert_eq!(seen, ["a", "[DONE]"]);
    }

    #[test]
    fn single_line_event_in_one_chunk_is_not_copied() {
        let mut decoder = SseDecoder::new();
        let input = b"data: hello\n\n";
        let mut ptr = std::ptr::null();
        let flow = decoder.feed(input, &mut |data: &str| {
            ptr = data.as_ptr();
            ControlFlow::Continue(())
        });
        assert_eq!(flow, Ok(ControlFlow::Continue(())));
        assert_eq!(ptr, input[6..].as_ptr());
        assert_eq!(decoder.data.capacity(), 0);
    }
}
