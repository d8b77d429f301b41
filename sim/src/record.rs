//! What the simulated server remembers: always-on counters, and (with `--record`) one record per
//! completion request holding when each token was actually handed to the response body — the
//! ground truth the load generator's measurements are checked against. With `--record-file` the
//! records are written as JSON Lines when the server stops ([`write_records_jsonl`]), for tools
//! outside the process (`benches/timing.py`).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use crate::chat_extras::{ChatExtras, SimToolCall};

/// One completion request as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimRecord {
    /// The `x-request-id` header.
    pub request_id: Option<String>,
    /// The W3C `traceparent` header.
    pub traceparent: Option<String>,
    /// Route path, e.g. "/v1/chat/completions".
    pub endpoint: String,
    pub stream: bool,
    /// Wall clock at handler entry.
    pub received_at_unix_nanos: u128,
    pub prompt_tokens: u64,
    /// Tokens actually sent (fewer than generated if the client went away).
    pub completion_tokens: u64,
    /// Of `completion_tokens`, reasoning (`--reasoning-tokens`): streamed first, as reasoning
    /// deltas.
    pub reasoning_tokens: u64,
    /// Tokens of each streamed chunk, in order (`--tokens-per-chunk`); chunk k was handed to the
    /// body at the `token_offsets_us` of its last token. Empty for a non-streaming response.
    pub chunk_tokens: Vec<u32>,
    pub status: u16,
    /// Offset of the first token (None: no token sent).
    pub ttft_us: Option<u32>,
    /// Microseconds from handler entry to each token chunk being yielded to the response body
    /// (non-streaming: every token at the moment the whole body was produced).
    pub token_offsets_us: Vec<u32>,
    /// Offset of the end of the response (`[DONE]` yielded, or the body produced);
    /// None when the client went away first.
    pub end_us: Option<u32>,
    /// Chat: the `messages` received, as (role, content), when their contents total at most
    /// [`RECORD_TEXT_LIMIT`] bytes (empty otherwise and for completions).
    pub messages: Vec<(String, String)>,
    /// The text streamed (or returned), up to [`RECORD_TEXT_LIMIT`] bytes.
    pub output_text: String,
    /// The fault injected into this request (`--fault` or `x-sim-fault`), as its spec.
    pub fault: Option<String>,
    /// Chat: images, tools offered, tool turns received.
    #[serde(flatten)]
    pub extras: ChatExtras,
    /// The tool call the answer streamed, if it was one.
    pub tool_call: Option<SimToolCall>,
    /// Responses API: the `previous_response_id` the request continued.
    pub previous_response_id: Option<String>,
    /// Embeddings and rerank: the inputs (texts embedded, documents scored) of the request.
    pub inputs: u64,
}

/// The engine's batch from one moment on (with `--record`): the step log the true mean
/// concurrency is computed from, as a piecewise-constant function of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BatchChange {
    pub at_unix_nanos: u128,
    /// Sequences the step starting then computes (0: the engine went idle).
    pub batch: u32,
}

/// Batch changes kept (16 bytes each): hours of 25 ms steps.
const BATCH_LOG_CAP: usize = 1 << 20;

/// Bytes of request messages and of output text a record keeps: records stay small.
pub const RECORD_TEXT_LIMIT: usize = 64 * 1024;

/// Counters kept whether or not records are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SimStats {
    /// Completion requests that entered a handler.
    pub received: u64,
    /// Completion requests whose response was sent in full with a 2xx status.
    pub completed: u64,
    /// Finished completion requests by status (a stream cut by the client counts under 200 but
    /// not in `completed`). `received − Σ by_status` are in flight.
    pub by_status: BTreeMap<u16, u64>,
    /// Token chunks handed to response bodies.
    pub tokens_sent: u64,
    /// Records not kept because the cap was reached.
    pub records_dropped: u64,
}

/// Microseconds since `since`, saturating at u32::MAX (~71 minutes).
pub fn offset_us(since: Instant, at: Instant) -> u32 {
    let micros = at.saturating_duration_since(since).as_micros();
    u32::try_from(micros).unwrap_or(u32::MAX)
}

/// Shared by all workers: counters and the bounded record list.
#[derive(Debug)]
pub struct Recorder {
    enabled: bool,
    cap: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    stats: SimStats,
    records: Vec<SimRecord>,
    batch_log: Vec<BatchChange>,
}

impl Recorder {
    /// `enabled`: keep records (at most `cap`); counters are always kept.
    pub fn new(enabled: bool, cap: usize) -> Self {
        Recorder {
            enabled,
            cap,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Whether per-request records are kept (callers skip collecting offsets and texts otherwise).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn on_received(&self) {
        self.inner.lock().stats.received += 1;
    }

    pub fn on_tokens_sent(&self, count: u64) {
        self.inner.lock().stats.tokens_sent += count;
    }

    /// Accounts for a finished request; `complete`: the whole response went out.
    pub fn finish(&self, record: SimRecord, complete: bool) {
        let mut inner = self.inner.lock();
        let stats = &mut inner.stats;
        *stats.by_status.entry(record.status).or_default() += 1;
        if complete && (200..300).contains(&record.status) {
            stats.completed += 1;
        }
        if !self.enabled {
            return;
        }
        if inner.records.len() < self.cap {
            inner.records.push(record);
        } else {
            inner.stats.records_dropped += 1;
        }
    }

    pub fn stats(&self) -> SimStats {
        self.inner.lock().stats.clone()
    }

    pub fn records(&self) -> Vec<SimRecord> {
        self.inner.lock().records.clone()
    }

    /// An engine step starts with `batch` sequences (0: idle); kept only when changed.
    pub fn on_batch(&self, batch: usize) {
        if !self.enabled {
            return;
        }
        let batch = u32::try_from(batch).unwrap_or(u32::MAX);
        let mut inner = self.inner.lock();
        let log = &mut inner.batch_log;
        if log.last().is_some_and(|c| c.batch == batch) || log.len() >= BATCH_LOG_CAP {
            return;
        }
        log.push(BatchChange {
            at_unix_nanos: unix_nanos_now(),
            batch,
        });
    }

    /// The engine's batch over time (empty unless recording, or in a timing mode).
    pub fn batch_log(&self) -> Vec<BatchChange> {
        self.inner.lock().batch_log.clone()
    }
}

/// Builds a `SimRecord` as a request progresses.
#[derive(Debug)]
pub struct RecordBuilder {
    received: Instant,
    keep_offsets: bool,
    record: SimRecord,
}

impl RecordBuilder {
    pub fn new(
        received: Instant,
        received_at_unix_nanos: u128,
        endpoint: &str,
        request_id: Option<String>,
        traceparent: Option<String>,
        keep_offsets: bool,
    ) -> Self {
        RecordBuilder {
            received,
            keep_offsets,
            record: SimRecord {
                request_id,
                traceparent,
                endpoint: endpoint.to_string(),
                stream: false,
                received_at_unix_nanos,
                prompt_tokens: 0,
                completion_tokens: 0,
                reasoning_tokens: 0,
                chunk_tokens: Vec::new(),
                status: 200,
                ttft_us: None,
                token_offsets_us: Vec::new(),
                end_us: None,
                messages: Vec::new(),
                output_text: String::new(),
                fault: None,
                extras: ChatExtras::default(),
                tool_call: None,
                previous_response_id: None,
                inputs: 0,
            },
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        self.record.request_id.as_deref()
    }

    pub fn set_stream(&mut self, stream: bool) {
        self.record.stream = stream;
    }

    pub fn set_prompt_tokens(&mut self, tokens: u64) {
        self.record.prompt_tokens = tokens;
    }

    pub fn set_status(&mut self, status: u16) {
        self.record.status = status;
    }

    pub fn set_previous_response_id(&mut self, id: Option<String>) {
        self.record.previous_response_id = id;
    }

    pub fn set_inputs(&mut self, inputs: u64) {
        self.record.inputs = inputs;
    }

    pub fn set_fault(&mut self, fault: &super::fault::Fault) {
        self.record.fault = Some(fault.to_string());
    }

    pub fn set_extras(&mut self, extras: &ChatExtras) {
        self.record.extras = extras.clone();
    }

    /// The answer is this tool call (its arguments are added as they are sent).
    pub fn set_tool_call(&mut self, call: SimToolCall) {
        self.record.tool_call = Some(call);
    }

    /// Arguments of the tool call handed to the response body.
    pub fn tool_arguments_sent(&mut self, piece: &str) {
        if let Some(call) = self.record.tool_call.as_mut() {
            call.arguments.push_str(piece);
        }
    }

    /// A token was handed to the response body at `at`.
    pub fn token_sent(&mut self, at: Instant) {
        let offset = offset_us(self.received, at);
        self.record.completion_tokens += 1;
        self.record.ttft_us.get_or_insert(offset);
        if self.keep_offsets {
            self.record.token_offsets_us.push(offset);
        }
    }

    /// A streamed chunk of `tokens` tokens went out, `reasoning` of them reasoning (after its
    /// tokens were counted by `token_sent`).
    pub fn chunk_sent(&mut self, tokens: u32, reasoning: u32) {
        self.record.reasoning_tokens += u64::from(reasoning);
        if self.keep_offsets {
            self.record.chunk_tokens.push(tokens);
        }
    }

    /// The chat messages received (kept only with records on and within the limit).
    pub fn set_messages(&mut self, messages: Vec<(String, String)>) {
        let bytes: usize = messages.iter().map(|(_, c)| c.len()).sum();
        if self.keep_offsets && bytes <= RECORD_TEXT_LIMIT {
            self.record.messages = messages;
        }
    }

    /// Text handed to the response body (kept only with records on, up to the limit).
    pub fn text_sent(&mut self, text: &str) {
        if self.keep_offsets && self.record.output_text.len() + text.len() <= RECORD_TEXT_LIMIT {
            self.record.output_text.push_str(text);
        }
    }

    /// The response ended at `at`.
    pub fn ended(&mut self, at: Instant) {
        self.record.end_us = Some(offset_us(self.received, at));
    }

    pub fn build(self) -> SimRecord {
        self.record
    }
}

/// A request being served: its record under construction. Dropping it (client gone, handler
/// cancelled) accounts for the request as not complete, so nothing is ever lost from the counts.
#[derive(Debug)]
pub struct InFlight {
    recorder: Arc<Recorder>,
    builder: Option<RecordBuilder>,
}

impl InFlight {
    /// Counts the request as received.
    pub fn new(recorder: Arc<Recorder>, builder: RecordBuilder) -> Self {
        recorder.on_received();
        InFlight {
            recorder,
            builder: Some(builder),
        }
    }

    /// The record under construction (None only after `finish`).
    pub fn record(&mut self) -> Option<&mut RecordBuilder> {
        self.builder.as_mut()
    }

    /// `count` tokens handed to the response body at `at`.
    pub fn tokens_sent(&mut self, count: u64, at: Instant) {
        self.recorder.on_tokens_sent(count);
        if let Some(builder) = self.builder.as_mut() {
            for _ in 0..count {
                builder.token_sent(at);
            }
        }
    }

    /// The response ended at `at`; `complete`: sent in full.
    pub fn finish(&mut self, at: Option<Instant>, complete: bool) {
        if let Some(mut builder) = self.builder.take() {
            if let Some(at) = at {
                builder.ended(at);
            }
            self.recorder.finish(builder.build(), complete);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.finish(None, false);
    }
}

/// Writes `records` to `path` as JSON Lines (one `SimRecord` a line), atomically (the results'
/// own `write_atomically`: a reader sees either the previous file or the whole new one).
pub fn write_records_jsonl(path: &Path, records: &[SimRecord]) -> io::Result<()> {
    let mut bytes = Vec::new();
    for record in records {
        serde_json::to_writer(&mut bytes, record)?;
        bytes.push(b'\n');
    }
    sinks::json::write_atomically(path, &bytes)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Wall-clock nanoseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_nanos_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(at: Instant) -> RecordBuilder {
        RecordBuilder::new(at, 1, "/v1/completions", Some("r1".into()), None, true)
    }

    #[test]
    fn builder_tracks_offsets_and_ttft() {
        let t0 = Instant::now();
        let mut b = builder(t0);
        b.set_stream(true);
        b.token_sent(t0 + Duration::from_micros(1500));
        b.token_sent(t0 + Duration::from_micros(2500));
        b.ended(t0 + Duration::from_micros(3000));
        let r = b.build();
        assert_eq!(r.ttft_us, Some(1500));
        assert_eq!(r.token_offsets_us, vec![1500, 2500]);
        assert_eq!(r.completion_tokens, 2);
        assert_eq!(r.end_us, Some(3000));
        assert_eq!(r.request_id.as_deref(), Some("r1"));
    }

    #[test]
    fn records_are_capped_and_counted() {
        let rec = Recorder::new(true, 2);
        for status in [200, 200, 400] {
            rec.on_received();
            let mut b = builder(Instant::now());
            b.set_status(status);
            rec.finish(b.build(), true);
        }
        let stats = rec.stats();
        assert_eq!(rec.records().len(), 2);
        assert_eq!(stats.records_dropped, 1);
        assert_eq!(stats.received, 3);
        assert_eq!(stats.completed, 2);
        assert_eq!(stats.by_status.get(&200), Some(&2));
        assert_eq!(stats.by_status.get(&400), Some(&1));
    }

    #[test]
    fn disabled_recorder_keeps_counters_only() {
        let rec = Recorder::new(false, 10);
        rec.finish(builder(Instant::now()).build(), false);
        rec.on_tokens_sent(1);
        assert!(rec.records().is_empty());
        let stats = rec.stats();
        assert_eq!(stats.completed, 0);
        assert_eq!(stats.tokens_sent, 1);
        assert_eq!(stats.records_dropped, 0);
    }

    #[test]
    fn in_flight_dropped_counts_as_incomplete() {
        let rec = Arc::new(Recorder::new(true, 10));
        let t0 = Instant::now();
        {
            let mut req = InFlight::new(rec.clone(), builder(t0));
            req.tokens_sent(3, t0 + Duration::from_millis(1));
            assert_eq!(rec.stats().received, 1);
            assert!(rec.stats().by_status.is_empty(), "still in flight");
        }
        let stats = rec.stats();
        assert_eq!((stats.completed, stats.tokens_sent), (0, 3));
        assert_eq!(stats.by_status.get(&200), Some(&1));
        let records = rec.records();
        assert_eq!(records[0].token_offsets_us, vec![1000; 3]);
        assert_eq!(records[0].end_us, None);

        let mut req = InFlight::new(rec.clone(), builder(t0));
        req.finish(Some(t0 + Duration::from_millis(2)), true);
        drop(req); // already finished: not counted twice
        assert_eq!(rec.stats().completed, 1);
        assert_eq!(rec.stats().by_status.get(&200), Some(&2));
        assert_eq!(rec.records()[1].end_us, Some(2000));
    }

    #[test]
    fn records_are_written_as_json_lines_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.jsonl");
        std::fs::write(&path, "old content\n").unwrap();
        let t0 = Instant::now();
        let mut a = builder(t0);
        a.set_stream(true);
        a.token_sent(t0 + Duration::from_micros(1500));
        a.token_sent(t0 + Duration::from_micros(2600));
        a.ended(t0 + Duration::from_micros(3000));
        let mut b = RecordBuilder::new(t0, 7, "/v1/chat/completions", None, None, true);
        b.set_status(503);
        let records = vec![a.build(), b.build()];
        write_records_jsonl(&path, &records).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(text.ends_with('\n'));
        assert_eq!(lines[0]["request_id"], "r1");
        assert_eq!(lines[0]["received_at_unix_nanos"], 1);
        assert_eq!(lines[0]["ttft_us"], 1500);
        assert_eq!(
            lines[0]["token_offsets_us"],
            serde_json::json!([1500, 2600])
        );
        assert_eq!(lines[0]["end_us"], 3000);
        assert!(lines[1]["request_id"].is_null());
        assert_eq!(lines[1]["status"], 503);
        assert_eq!(lines[1]["token_offsets_us"], serde_json::json!([]));
        assert!(
            !dir.path().join("records.jsonl.tmp").exists(),
            "the temporary file was renamed"
        );

        // Nothing to write: an empty file, not a missing one.
        write_records_jsonl(&path, &[]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");

        // An unwritable place: an error naming the path.
        let missing = dir.path().join("no-such-dir").join("records.jsonl");
        let err = write_records_jsonl(&missing, &records).unwrap_err();
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }

    #[test]
    fn offsets_saturate() {
        let t0 = Instant::now();
        assert_eq!(offset_us(t0, t0 + Duration::from_secs(10_000)), u32::MAX);
        assert_eq!(offset_us(t0 + Duration::from_secs(1), t0), 0);
    }
}
