//! The event contract: what the load generator tells every sink.
//!
//! Times are nanoseconds on the run's monotonic clock, counted from the run's
//! anchor (`RunStarted::anchor_unix_nanos` is the wall-clock time of that same
//! instant), so sinks can turn any stamp into wall-clock time without reading a
//! clock of their own. See the glossary in the README for what each stamp means.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use crate::images_tools::ImagesTools;

/// Nanoseconds since the run's anchor, on a monotonic clock.
pub type Nanos = u64;

/// The closed set of ways a request can end. Every request ends in exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Streamed to the end (`[DONE]`, or EOF after at least a well-formed stream).
    Ok,
    /// TCP connect / DNS failure: the request never reached the server.
    ConnectError,
    /// No first token within the request timeout.
    TimeoutBeforeFirstToken,
    /// First token arrived, the stream did not end within the request timeout.
    TimeoutMidStream,
    /// HTTP 429.
    RateLimited,
    /// Any other 4xx status (the status itself is in `http_status`).
    // snake_case alone would give "http4xx"; keep serde in step with `as_str`.
    #[serde(rename = "http_4xx")]
    Http4xx,
    /// Any 5xx status (the status itself is in `http_status`).
    #[serde(rename = "http_5xx")]
    Http5xx,
    /// The connection broke while streaming (reset, EOF inside an event).
    StreamBroken,
    /// The server's bytes were not a valid OpenAI stream (bad JSON, oversize line,
    /// wrong content type, `{"error": ...}` event, ...).
    ProtocolError,
    /// Still in flight when the run was stopped (signal or shutdown deadline).
    Cancelled,
    /// Our own fault, not the server's: the request's task panicked or was dropped before it
    /// ended (the message says which). Counted so that no request is ever lost.
    InternalError,
}

impl Outcome {
    pub const ALL: [Outcome; 11] = [
        Outcome::Ok,
        Outcome::ConnectError,
        Outcome::TimeoutBeforeFirstToken,
        Outcome::TimeoutMidStream,
        Outcome::RateLimited,
        Outcome::Http4xx,
        Outcome::Http5xx,
        Outcome::StreamBroken,
        Outcome::ProtocolError,
        Outcome::Cancelled,
        Outcome::InternalError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ConnectError => "connect_error",
            Outcome::TimeoutBeforeFirstToken => "timeout_before_first_token",
            Outcome::TimeoutMidStream => "timeout_mid_stream",
            Outcome::RateLimited => "rate_limited",
            Outcome::Http4xx => "http_4xx",
            Outcome::Http5xx => "http_5xx",
            Outcome::StreamBroken => "stream_broken",
            Outcome::ProtocolError => "protocol_error",
            Outcome::Cancelled => "cancelled",
            Outcome::InternalError => "internal_error",
        }
    }

    pub fn is_ok(self) -> bool {
        self == Outcome::Ok
    }
}

/// Where a request's output token count came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// `usage.completion_tokens` reported by the server.
    Server,
    /// Our tokenizer over the whole generated text (the server reported no usage).
    Client,
}

/// What kind of load a step applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Never part of the results.
    Warmup,
    /// Closed loop: N virtual users, each sending its next request when the last ended.
    Throughput,
    /// Open loop at a fixed arrival rate.
    Rate,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Warmup => "warmup",
            StepKind::Throughput => "throughput",
            StepKind::Rate => "rate",
        }
    }

    /// The original tool's `executor_type` for this kind.
    pub fn executor_type(self) -> &'static str {
        match self {
            StepKind::Warmup | StepKind::Throughput => "ConstantVUs",
            StepKind::Rate => "ConstantArrivalRate",
        }
    }
}

/// One step of a run, as announced before it starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepInfo {
    /// Position in the run: 0 is the warmup, measured steps count from 1.
    pub index: u32,
    /// The original tool's step id: `warmup`, `throughput`, `constant@{rate}req/s` (or
    /// `poisson@…`, `gamma@…`, `trace@…`: the arrival process).
    pub id: String,
    pub kind: StepKind,
    /// Virtual users (closed loop) or the cap on concurrent requests (open loop).
    pub max_vus: u64,
    /// Offered arrival rate in requests per second (open loop only).
    pub rate: Option<f64>,
    /// Planned duration of the sending window.
    pub duration_secs: f64,
}

impl StepInfo {
    /// The arrival process of an open-loop step, as its id names it (`poisson@2.00req/s` →
    /// `poisson`); `None` for the closed loop.
    pub fn arrival(&self) -> Option<&str> {
        (self.kind == StepKind::Rate).then(|| self.id.split('@').next().unwrap_or(&self.id))
    }
}

/// The id of an open-loop step at `rate`: `{arrival}@{rate}req/s`. The rate has the original
/// tool's two decimals (`constant@10.00req/s`, byte for byte) from 0.1 req/s up; below, where
/// two decimals would name 0.001 and 0.004 req/s alike (`0.00`), it has two significant digits
/// (`constant@0.001req/s`, `constant@0.0015req/s`).
pub fn rate_step_id(arrival: &str, rate: f64) -> String {
    format!("{arrival}@{}req/s", rate_digits(rate))
}

/// A rate as step ids and step lines show it (see [`rate_step_id`]).
pub fn rate_digits(rate: f64) -> String {
    if !(rate.is_finite() && rate > 0.0 && rate < 0.1) {
        return format!("{rate:.2}");
    }
    // Two significant digits, trailing zeros dropped down to the original's two decimals.
    let decimals = (1 - rate.log10().floor() as i32).max(2) as usize;
    let text = format!("{rate:.decimals$}");
    let keep = text
        .trim_end_matches('0')
        .len()
        .max(text.find('.').map_or(0, |d| d + 3));
    text[..keep].to_string()
}

/// Sent by every request exactly once, when it has ended in any way.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RequestFinished {
    /// Unique within the run; sent as `x-request-id`.
    pub id: String,
    /// `StepInfo::index` of the step it belongs to.
    pub step: u32,
    /// When the load model meant to send it.
    pub scheduled_at: Nanos,
    /// When we started writing it.
    pub sent_at: Nanos,
    /// First chunk carrying generated text (content or reasoning); the first answer chunk is
    /// `reasoning.first_answer_at`.
    pub first_token_at: Option<Nanos>,
    /// End of stream, or when the failure was seen.
    pub end_at: Nanos,
    /// Arrival of every chunk carrying text, in microseconds after `sent_at`
    /// (the first entry is the first token). Compact: 4 bytes a chunk.
    pub chunk_offsets_us: Vec<u32>,
    /// Prompt tokens by our tokenizer.
    pub prompt_tokens: u64,
    /// `max_tokens` we asked for, when we asked for a length.
    pub requested_output_tokens: Option<u64>,
    /// Output tokens: the server's count when reported, else ours over the whole text.
    pub output_tokens: u64,
    pub output_tokens_source: TokenSource,
    /// `usage.prompt_tokens` as reported by the server.
    pub server_prompt_tokens: Option<u64>,
    /// `usage.completion_tokens` as reported by the server.
    pub server_completion_tokens: Option<u64>,
    /// `usage.prompt_tokens_details.cached_tokens`, when reported.
    pub server_cached_tokens: Option<u64>,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    /// The server's or the transport's message, for failures.
    pub error: Option<String>,
    pub finish_reason: Option<String>,
    /// The model name the server answered with.
    pub response_model: Option<String>,
    /// The whole generated text, set only when the server reported no usage and
    /// the output count is still pending: the Recorder counts it with the client
    /// tokenizer (off the request arbiters), fills `output_tokens` with
    /// `output_tokens_source = Client`, and drops the text. Never serialized.
    #[serde(skip)]
    pub output_text: Option<String>,
    /// The reasoning before the answer, and when the answer began (issue 18).
    #[serde(default)]
    pub reasoning: crate::reasoning::ReasoningRecord,
    /// The W3C trace context its `traceparent` header carried, when tracing is on (issue 4):
    /// the OTLP sink exports the request's span with exactly these ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceContext>,
    /// Images sent and tool calls streamed (all zero for a plain text request).
    #[serde(default, skip_serializing_if = "ImagesTools::is_empty")]
    pub images_tools: ImagesTools,
}

/// A request's W3C trace context: the ids of the span that stands for it, chosen before it
/// is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The sampling decision (the `traceparent` flag): only sampled requests are exported.
    pub sampled: bool,
}

impl RequestFinished {
    pub fn ttft_ns(&self) -> Option<u64> {
        self.first_token_at.map(|t| t.saturating_sub(self.sent_at))
    }

    pub fn e2e_ns(&self) -> u64 {
        self.end_at.saturating_sub(self.sent_at)
    }

    pub fn queue_delay_ns(&self) -> u64 {
        self.sent_at.saturating_sub(self.scheduled_at)
    }

    /// Per-request inter-token latency: (last token − first token) / (output tokens − 1).
    /// `None` when fewer than two tokens were generated.
    pub fn itl_ns(&self) -> Option<u64> {
        let first = *self.chunk_offsets_us.first()?;
        let last = *self.chunk_offsets_us.last()?;
        if self.output_tokens < 2 {
            return None;
        }
        // Saturating: offsets come from a monotonic clock, but a malformed event
        // must not panic the sink that reads it.
        Some(u64::from(last.saturating_sub(first)) * 1000 / (self.output_tokens - 1))
    }

    /// Every gap between consecutive text chunks, in microseconds.
    pub fn chunk_gaps_us(&self) -> impl Iterator<Item = u32> + '_ {
        self.chunk_offsets_us
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
    }
}

/// An arrival the open-loop scheduler could not start because `max_vus`
/// requests were already in flight.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArrivalDropped {
    pub step: u32,
    pub scheduled_at: Nanos,
}

/// An arrival that found `max_vus` requests in flight and waited for a free slot
/// (`--queue-when-saturated`); its request keeps `scheduled_at`, so the wait shows in its
/// queue delay and from-schedule latencies.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArrivalQueued {
    pub step: u32,
    pub scheduled_at: Nanos,
}

/// Everything a sink can receive. Requests travel behind an `Arc` so fan-out
/// to several sinks never copies token times.
#[derive(Clone, Debug)]
pub enum Event {
    RunStarted(Arc<RunStarted>),
    StepStarted(Arc<StepInfo>),
    Request(Arc<RequestFinished>),
    Dropped(ArrivalDropped),
    StepFinished {
        step: u32,
        window: StepWindow,
    },
    /// Someone changed the running load by hand (live control).
    Control(ControlEvent),
}

/// A manual change to the running load (`--control-listen`, the console's keys): published to
/// every sink so that no one mistakes it for the server's behaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlEvent {
    /// When it took effect (ns since the run's anchor).
    pub at: Nanos,
    pub step: u32,
    pub action: ControlAction,
    /// The new value: virtual users for `set_users`, requests per second for `set_rate`.
    pub value: Option<f64>,
    /// Who asked: `http` or `console`.
    pub source: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    Pause,
    Resume,
    SetUsers,
    SetRate,
    EndStep,
}

impl ControlAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlAction::Pause => "pause",
            ControlAction::Resume => "resume",
            ControlAction::SetUsers => "set_users",
            ControlAction::SetRate => "set_rate",
            ControlAction::EndStep => "end_step",
        }
    }

    pub const ALL: [ControlAction; 5] = [
        ControlAction::Pause,
        ControlAction::Resume,
        ControlAction::SetUsers,
        ControlAction::SetRate,
        ControlAction::EndStep,
    ];
}

impl std::fmt::Display for ControlEvent {
    /// `set_users 32 (http)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.action.as_str())?;
        if let Some(v) = self.value {
            write!(f, " {v}")?;
        }
        write!(f, " ({})", self.source)
    }
}

/// Identity of a run, given to every sink before anything else.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunStarted {
    pub run_id: String,
    /// Wall-clock time (ns since the Unix epoch) of the monotonic anchor.
    pub anchor_unix_nanos: u128,
}

/// The time a step took: from its start to the end of its last request.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct StepWindow {
    pub start: Nanos,
    /// When the scheduler stopped starting requests.
    pub send_end: Nanos,
    /// When the last request of the step ended.
    pub end: Nanos,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_ids_keep_the_original_form_and_tell_small_rates_apart() {
        // The original tool's ids, byte for byte.
        assert_eq!(rate_step_id("constant", 10.0), "constant@10.00req/s");
        assert_eq!(rate_step_id("constant", 2.5), "constant@2.50req/s");
        assert_eq!(rate_step_id("poisson", 0.25), "poisson@0.25req/s");
        assert_eq!(rate_step_id("constant", 0.1), "constant@0.10req/s");
        assert_eq!(rate_step_id("constant", 0.05), "constant@0.05req/s");
        // Below 0.1 req/s: two significant digits, not `0.00`.
        assert_eq!(rate_step_id("constant", 0.001), "constant@0.001req/s");
        assert_eq!(rate_step_id("constant", 0.004), "constant@0.004req/s");
        assert_eq!(rate_step_id("constant", 0.0015), "constant@0.0015req/s");
        assert_eq!(rate_step_id("constant", 0.055), "constant@0.055req/s");
        assert_eq!(rate_digits(0.000_123_4), "0.00012");
    }
}
