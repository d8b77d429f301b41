//! `--save-requests`: one JSON line per request, streamed to
//! `<results file stem>.requests.jsonl` beside the results. Lines go straight
//! to a `BufWriter` (nothing is accumulated), flushed at every step end and at
//! the final flush.

use crate::event::{Nanos, Outcome, RequestFinished, TokenSource};
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// `results/x_2024-05-01-12-34-56.json` → `results/x_2024-05-01-12-34-56.requests.jsonl`.
pub fn requests_log_path(results_path: &Path) -> PathBuf {
    beside_results(results_path, ".requests.jsonl")
}

/// A file next to the results, named by their stem and `suffix` (`.requests.jsonl`, ...).
pub fn beside_results(results_path: &Path, suffix: &str) -> PathBuf {
    let mut name = results_path.file_stem().unwrap_or_default().to_os_string();
    name.push(suffix);
    results_path.with_file_name(name)
}

/// One line of the requests log. Times are milliseconds since the run's anchor
/// (`start_time` of the results), durations in milliseconds.
#[derive(Debug, Serialize)]
pub struct RequestLogLine<'a> {
    pub id: &'a str,
    pub step: u32,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub error: Option<&'a str>,
    pub scheduled_ms: f64,
    pub sent_ms: f64,
    pub first_token_ms: Option<f64>,
    pub end_ms: f64,
    pub queue_delay_ms: f64,
    pub ttft_ms: Option<f64>,
    pub e2e_ms: f64,
    /// Per-request inter-token latency (the original's, vLLM's TPOT); null with fewer than two
    /// tokens.
    pub itl_ms: Option<f64>,
    /// Per-token ITL: the first chunk's tokens out of the divisor; null without a later chunk.
    pub per_token_itl_ms: Option<f64>,
    /// Output tokens the first chunk held (estimated from its share of the text's bytes unless
    /// the server reported usage in it); null without a chunk.
    pub first_chunk_tokens: Option<u64>,
    pub prompt_tokens: u64,
    pub requested_output_tokens: Option<u64>,
    pub output_tokens: u64,
    pub output_tokens_source: TokenSource,
    pub server_prompt_tokens: Option<u64>,
    pub server_completion_tokens: Option<u64>,
    pub server_cached_tokens: Option<u64>,
    pub finish_reason: Option<&'a str>,
    pub response_model: Option<&'a str>,
    /// Chunks that carried text.
    pub chunks: usize,
    /// Arrival of each chunk that carried text, in milliseconds after `sent_ms` (the same
    /// reference as `ttft_ms`; µs resolution): per-gap timing, to compare with a server's own
    /// per-token times (`benches/timing.py` against the simulated server's `--record-file`).
    pub chunk_offsets_ms: Vec<f64>,
    /// Time to the first answer token (content, after any reasoning); null without an answer.
    pub ttfa_ms: Option<f64>,
    /// Reasoning tokens (part of `output_tokens`); null when the request did not reason.
    pub reasoning_tokens: Option<u64>,
    pub reasoning_tokens_source: Option<TokenSource>,
    /// Output tokens less the reasoning's.
    pub answer_tokens: u64,
    /// Chunks that carried reasoning text.
    pub reasoning_chunks: u64,
    /// A success that reasoned and never answered (it stays `outcome: ok`).
    pub no_answer: bool,
    /// `output_tokens / chunks`; null without a chunk.
    pub tokens_per_chunk: Option<f64>,
    /// Images sent (and their file bytes), tools offered, tool calls streamed.
    pub image_count: u32,
    pub image_bytes: u64,
    pub tool_definitions: u32,
    pub tool_calls: u32,
    /// Time to first tool-call token (`sent_ms` to the first chunk carrying a tool call).
    pub time_to_first_tool_call_ms: Option<f64>,
}

fn ms(ns: Nanos) -> f64 {
    ns as f64 / 1e6
}

impl<'a> RequestLogLine<'a> {
    pub fn from_request(r: &'a RequestFinished) -> Self {
        RequestLogLine {
            id: &r.id,
            step: r.step,
            outcome: r.outcome,
            http_status: r.http_status,
            error: r.error.as_deref(),
            scheduled_ms: ms(r.scheduled_at),
            sent_ms: ms(r.sent_at),
            first_token_ms: r.first_token_at.map(ms),
            end_ms: ms(r.end_at),
            queue_delay_ms: ms(r.queue_delay_ns()),
            ttft_ms: r.ttft_ns().map(ms),
            e2e_ms: ms(r.e2e_ns()),
            itl_ms: r.itl_ns().map(ms),
            per_token_itl_ms: r.per_token_itl_ns().map(ms),
            first_chunk_tokens: (!r.chunk_offsets_us.is_empty()).then(|| r.first_chunk_tokens()),
            prompt_tokens: r.prompt_tokens,
            requested_output_tokens: r.requested_output_tokens,
            output_tokens: r.output_tokens,
            output_tokens_source: r.output_tokens_source,
            server_prompt_tokens: r.server_prompt_tokens,
            server_completion_tokens: r.server_completion_tokens,
            server_cached_tokens: r.server_cached_tokens,
            finish_reason: r.finish_reason.as_deref(),
            response_model: r.response_model.as_deref(),
            chunks: r.chunk_offsets_us.len(),
            chunk_offsets_ms: r
                .chunk_offsets_us
                .iter()
                .map(|&us| f64::from(us) / 1e3)
                .collect(),
            ttfa_ms: r.ttfa_ns().map(ms),
            reasoning_tokens: r.reasoned().then(|| r.reasoning_tokens()),
            reasoning_tokens_source: r.reasoning.tokens_source.filter(|_| r.reasoned()),
            answer_tokens: r.answer_tokens(),
            reasoning_chunks: r.reasoning.chunks,
            no_answer: r.no_answer(),
            tokens_per_chunk: r.tokens_per_chunk(),
            image_count: r.images_tools.image_count,
            image_bytes: r.images_tools.image_bytes,
            tool_definitions: r.images_tools.tool_definitions,
            tool_calls: r.images_tools.tool_calls,
            time_to_first_tool_call_ms: r.time_to_first_tool_call_ns().map(ms),
        }
    }
}

/// The open requests log.
#[derive(Debug)]
pub struct RequestsLog {
    path: PathBuf,
    out: BufWriter<File>,
    lines: u64,
}

impl RequestsLog {
    /// Creates (or truncates) the file.
    pub fn create(path: PathBuf) -> io::Result<Self> {
        let file = File::create(&path)?;
        Ok(RequestsLog {
            path,
            out: BufWriter::new(file),
            lines: 0,
        })
    }

    /// Appends one line (buffered).
    pub fn append(&mut self, r: &RequestFinished) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, &RequestLogLine::from_request(r))?;
        self.out.write_all(b"\n")?;
        self.lines += 1;
        Ok(())
    }

    /// Pushes buffered lines to the file and to the disk.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines appended so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RequestFinished {
        RequestFinished {
            id: "r-1".into(),
            step: 2,
            scheduled_at: 1_000_000,
            sent_at: 1_500_000,
            first_token_at: Some(101_500_000),
            end_at: 201_500_000,
            chunk_offsets_us: vec![100_000, 150_000, 200_000],
            prompt_tokens: 12,
            requested_output_tokens: Some(3),
            output_tokens: 3,
            output_tokens_source: TokenSource::Client,
            server_prompt_tokens: None,
            server_completion_tokens: None,
            server_cached_tokens: None,
            outcome: Outcome::Ok,
            http_status: Some(200),
            error: None,
            finish_reason: Some("stop".into()),
            response_model: Some("tiny".into()),
            output_text: Some("never written".into()),
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: None,
        }
    }

    #[test]
    fn outcome_serializes_like_its_class_name() {
        // The log (serde) and the results' `errors` keys (`as_str`) must agree.
        for outcome in Outcome::ALL {
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                serde_json::Value::from(outcome.as_str())
            );
        }
    }

    #[test]
    fn path_sits_beside_the_results() {
        assert_eq!(
            requests_log_path(Path::new("out/m_2024-01-01-00-00-00.json")),
            Path::new("out/m_2024-01-01-00-00-00.requests.jsonl")
        );
    }

    #[test]
    fn one_json_line_per_request_with_ms_figures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.requests.jsonl");
        let mut log = RequestsLog::create(path.clone()).unwrap();
        log.append(&request()).unwrap();
        let mut failed = request();
        failed.id = "r-2".into();
        failed.outcome = Outcome::Http5xx;
        failed.http_status = Some(503);
        failed.error = Some("overloaded".into());
        failed.first_token_at = None;
        failed.chunk_offsets_us.clear();
        failed.output_tokens = 0;
        log.append(&failed).unwrap();
        log.flush().unwrap();
        assert_eq!(log.lines(), 2);
        assert_eq!(log.path(), path);

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        let a = &lines[0];
        assert_eq!(a["id"], "r-1");
        assert_eq!(a["step"], 2);
        assert_eq!(a["outcome"], "ok");
        assert_eq!(a["scheduled_ms"], 1.0);
        assert_eq!(a["sent_ms"], 1.5);
        assert_eq!(a["first_token_ms"], 101.5);
        assert_eq!(a["end_ms"], 201.5);
        assert_eq!(a["queue_delay_ms"], 0.5);
        assert_eq!(a["ttft_ms"], 100.0);
        assert_eq!(a["e2e_ms"], 200.0);
        assert_eq!(a["itl_ms"], 50.0);
        assert_eq!(a["output_tokens_source"], "client");
        assert_eq!(a["chunks"], 3);
        // From sent_at, like ttft_ms (first token at sent 1.5 ms + 100 ms = 101.5 ms).
        assert_eq!(
            a["chunk_offsets_ms"],
            serde_json::json!([100.0, 150.0, 200.0])
        );
        assert_eq!(
            a["chunk_offsets_ms"][0].as_f64().unwrap(),
            a["first_token_ms"].as_f64().unwrap() - a["sent_ms"].as_f64().unwrap()
        );
        assert!(a.get("output_text").is_none());
        assert!(!text.contains("never written"));

        let b = &lines[1];
        assert_eq!(b["outcome"], "http_5xx");
        assert_eq!(b["http_status"], 503);
        assert_eq!(b["error"], "overloaded");
        assert!(b["ttft_ms"].is_null());
        assert!(b["itl_ms"].is_null());
        assert_eq!(b["chunk_offsets_ms"], serde_json::json!([]));
    }
}
