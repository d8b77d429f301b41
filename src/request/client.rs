//! One streamed request, start to end: send, read the SSE stream, stamp every text chunk.
//!
//! This is the hot path. Stamps are taken once per network read (every event in a read arrived
//! at the same moment); nothing here blocks: no tokenization (the sink arbiter does it when the
//! server reports no usage), no I/O besides the socket.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use awc::error::{ConnectError, SendRequestError};
use bytes::Bytes;
use futures_util::StreamExt;
use sinks::event::{ImagesTools, Nanos, Outcome, RequestFinished, TokenSource};

use crate::config::Endpoint;
use crate::request::openai::{error_message, DataKind, EventParser, ToolCall};
use crate::request::sse::{SseDecoder, SseError};
use crate::runtime::clock::Clock;
use crate::runtime::shutdown::{Level, Shutdown};
use sinks::recorder::RecordRetried;

/// How long the body may stay open after `[DONE]` (its end normally comes in the same read).
const DRAIN_AFTER_DONE: Duration = Duration::from_millis(50);

/// Bytes of a non-2xx body kept for the error message.
pub(super) const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// What every request of a run shares.
pub struct RequestShared {
    pub url: String,
    /// What `url` serves: how answers are read (chunks, Responses events, one JSON body).
    pub endpoint: Endpoint,
    /// `Authorization` header value; never logged or recorded.
    pub authorization: Option<String>,
    pub timeout: Duration,
    pub clock: Clock,
    pub shutdown: Shutdown,
    /// When OTLP tracing is on: each request gets a trace context (its `traceparent` header,
    /// its span's ids in the record).
    pub tracing: Option<sinks::otlp::TraceSampler>,
    /// False when the server closes the connection after every streamed response (found by the
    /// pre-flight probe): each request then opens its own connection instead of racing the
    /// server's close on a pooled one.
    pub keep_alive: bool,
    /// `--retries`: none unless asked.
    pub retry: super::retry::RetryPolicy,
}

/// A prompt ready to send: its body was serialized once at startup.
pub struct PreparedBody {
    pub body: Bytes,
    pub prompt_tokens: u64,
    pub max_tokens: Option<u64>,
    /// Its images and offered tools, for the record (what the answer does is added to it).
    pub images_tools: ImagesTools,
    /// Inputs the body carries: 1 for generation; embeddings and rerank: the batch, whose
    /// answer must hold as many results.
    pub inputs: u64,
}

/// What a multi-turn conversation keeps of an answer: its text (sent back as `assistant`), its
/// tool calls and, with the Responses API, its id (sent as `previous_response_id`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub response_id: Option<String>,
}

/// One request to make.
pub struct Job {
    pub id: String,
    pub step: u32,
    pub scheduled_at: Nanos,
    pub prepared: Arc<PreparedBody>,
}

pub(super) struct Failure {
    pub(super) outcome: Outcome,
    pub(super) message: String,
}

/// An answer without a response id (chat, completions).
impl From<&str> for Answer {
    fn from(text: &str) -> Self {
        Answer {
            text: text.to_string(),
            ..Answer::default()
        }
    }
}

pub(super) fn failure(outcome: Outcome, message: impl Into<String>) -> Failure {
    Failure {
        outcome,
        message: message.into(),
    }
}

/// Runs one request to its end and returns its record. Never panics on server input; every
/// way of ending maps to one `Outcome`.
pub async fn execute(client: &awc::Client, shared: &RequestShared, job: Job) -> RequestFinished {
    execute_inner(client, shared, job, false).await.0
}

/// As [`execute`], also returning the answer's whole streamed text and tool calls: multi-turn
/// chat sends them back as the next turn's `assistant` message. Only conversations pay for
/// that copy.
pub async fn execute_turn(
    client: &awc::Client,
    shared: &RequestShared,
    job: Job,
) -> (RequestFinished, Answer) {
    execute_inner(client, shared, job, true).await
}

/// Runs the job, retrying as `--retries` allows: a failed attempt worth retrying is reported to
/// the recorder as a retried attempt (counted apart from requests) and the job goes again under
/// `<id>-r<n>`, keeping its scheduled time — so the wait shows in its from-schedule latencies.
async fn execute_inner(
    client: &awc::Client,
    shared: &RequestShared,
    job: Job,
    keep_answer: bool,
) -> (RequestFinished, Answer) {
    let mut attempt = 0;
    loop {
        let id = match attempt {
            0 => job.id.clone(),
            n => format!("{}-r{n}", job.id),
        };
        let (rec, answer) = attempt_once(client, shared, &job, id, keep_answer).await;
        let Some(delay) = shared.retry.next_delay(attempt, &rec, &shared.shutdown) else {
            return (rec, answer);
        };
        if let Some(to) = &shared.retry.report {
            to.do_send(RecordRetried {
                step: rec.step,
                outcome: rec.outcome,
            });
        }
        attempt += 1;
        let cancel = shared.shutdown.reached(Level::Stop);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            // Stopping: no more retries; this last failure is the request's outcome.
            _ = cancel => return (rec, answer),
        }
    }
}

async fn attempt_once(
    client: &awc::Client,
    shared: &RequestShared,
    job: &Job,
    id: String,
    keep_answer: bool,
) -> (RequestFinished, Answer) {
    let prepared = job.prepared.clone();
    let mut rec = new_record(shared, job, id);
    if shared.endpoint.is_pooling() {
        let result = super::unary::send(client, shared, &prepared, &mut rec).await;
        if let Err(f) = result {
            rec.outcome = f.outcome;
            rec.error = Some(f.message);
        }
        return (rec, Answer::default());
    }
    let mut state = EventParser::new(shared.endpoint == Endpoint::Responses, true);
    let result = stream(client, shared, &prepared.body, &mut rec, &mut state).await;
    if rec.end_at == 0 {
        rec.end_at = shared.clock.now();
    }
    let answer = settle_tokens(&mut rec, &mut state, keep_answer);
    if let Err(f) = result {
        rec.outcome = f.outcome;
        rec.error = Some(f.message);
    }
    (rec, answer)
}

/// The record of an attempt about to be sent.
fn new_record(shared: &RequestShared, job: &Job, id: String) -> RequestFinished {
    let prepared = &job.prepared;
    RequestFinished {
        id,
        step: job.step,
        scheduled_at: job.scheduled_at,
        sent_at: 0,
        first_token_at: None,
        end_at: 0,
        chunk_offsets_us: Vec::with_capacity(prepared.max_tokens.unwrap_or(64) as usize + 2),
        prompt_tokens: prepared.prompt_tokens,
        requested_output_tokens: prepared.max_tokens,
        output_tokens: 0,
        output_tokens_source: TokenSource::Server,
        server_prompt_tokens: None,
        server_completion_tokens: None,
        server_cached_tokens: None,
        outcome: Outcome::Ok,
        http_status: None,
        error: None,
        finish_reason: None,
        response_model: None,
        output_text: None,
        reasoning: Default::default(),
        images_tools: prepared.images_tools,
        trace: shared.tracing.map(|s| s.next_context()),
    }
}

/// Output tokens: the server's count when it reported usage, else ours over the answer's and the
/// reasoning's texts (counted later, on the sink arbiter). Returns the answer (its text without
/// the reasoning: a conversation sends back the answer only; its tool calls; its response id)
/// when `keep_answer`, else an empty one.
fn settle_tokens(rec: &mut RequestFinished, state: &mut EventParser, keep_answer: bool) -> Answer {
    if let Some(u) = state.usage() {
        rec.server_prompt_tokens = u.prompt_tokens;
        rec.server_completion_tokens = u.completion_tokens;
        rec.server_cached_tokens = u.cached_tokens;
    }
    rec.finish_reason = state.finish_reason().map(str::to_owned);
    rec.response_model = state.model().map(str::to_owned);
    settle_reasoning(rec, state);
    rec.images_tools.tool_calls = u32::try_from(state.tool_calls().len()).unwrap_or(u32::MAX);
    match rec.server_completion_tokens {
        Some(n) => rec.output_tokens = n,
        None => {
            rec.output_tokens = state.text_chunks();
            rec.output_tokens_source = TokenSource::Client;
            rec.output_text = Some(state.take_text());
        }
    }
    // Exact with per-chunk usage; else a share of bytes, which needs no final count.
    rec.reasoning.first_chunk_share = state.first_chunk().share(rec.output_tokens);
    if !keep_answer {
        return Answer::default();
    }
    let text = match &rec.output_text {
        Some(text) => text.clone(),
        None => state.take_text(),
    };
    Answer {
        text,
        tool_calls: state.take_tool_calls(),
        response_id: state.response_id().map(str::to_owned),
    }
}

/// Reasoning tokens: the server's `completion_tokens_details.reasoning_tokens`, else ours over
/// the reasoning text (counted later, like the output).
fn settle_reasoning(rec: &mut RequestFinished, state: &mut EventParser) {
    rec.reasoning.chunks = state.reasoning_chunks();
    // A server may report 0 reasoning tokens whatever it streamed: then the text is counted.
    match state.usage().and_then(|u| u.reasoning_tokens) {
        Some(n) if n > 0 || state.reasoning_chunks() == 0 => {
            rec.reasoning.tokens = Some(n);
            rec.reasoning.tokens_source = Some(TokenSource::Server);
        }
        _ if state.reasoning_chunks() > 0 => rec.reasoning.pending(state.take_reasoning()),
        _ => {}
    }
}

/// The POST of a request's body: JSON, its id, credentials, trace context, and a connection of
/// its own when the server closes them after every response.
pub(super) fn post(
    client: &awc::Client,
    shared: &RequestShared,
    rec: &RequestFinished,
) -> awc::ClientRequest {
    let mut req = client
        .post(&shared.url)
        .insert_header(("content-type", "application/json"))
        .insert_header(("x-request-id", rec.id.as_str()));
    if let Some(auth) = &shared.authorization {
        req = req.insert_header(("authorization", auth.as_str()));
    }
    if let Some(trace) = &rec.trace {
        req = req.insert_header(("traceparent", sinks::otlp::traceparent(trace)));
    }
    if !shared.keep_alive {
        req = req.force_close();
    }
    req
}

async fn stream(
    client: &awc::Client,
    shared: &RequestShared,
    body: &Bytes,
    rec: &mut RequestFinished,
    state: &mut EventParser,
) -> Result<(), Failure> {
    let clock = shared.clock;
    let cancel = shared.shutdown.reached(Level::Cancel);
    tokio::pin!(cancel);

    let req = post(client, shared, rec);
    rec.sent_at = clock.now();
    let deadline = tokio::time::sleep(shared.timeout);
    tokio::pin!(deadline);

    let mut resp = tokio::select! {
        biased;
        _ = &mut cancel => return Err(failure(Outcome::Cancelled, "cancelled before the response")),
        _ = &mut deadline => return Err(timeout(rec, shared.timeout)),
        r = req.send_body(body.clone()) => r.map_err(classify_send_error)?,
    };
    let status = resp.status();
    rec.http_status = Some(status.as_u16());
    if !status.is_success() {
        let body = tokio::select! {
            biased;
            _ = &mut cancel => Bytes::new(),
            _ = &mut deadline => Bytes::new(),
            b = resp.body().limit(ERROR_BODY_LIMIT) => b.unwrap_or_default(),
        };
        return Err(failure(
            status_outcome(status.as_u16()),
            error_message(status.as_u16(), &body),
        ));
    }
    check_content_type(&resp)?;

    let mut sse = SseDecoder::new();
    let mut done = false;
    // Armed at `[DONE]`; its timer is registered only if it is ever polled.
    let drain = tokio::time::sleep(DRAIN_AFTER_DONE);
    tokio::pin!(drain);
    loop {
        let item = tokio::select! {
            biased;
            _ = &mut cancel, if !done => return Err(failure(Outcome::Cancelled, "cancelled mid-stream")),
            _ = &mut deadline, if !done => return Err(timeout(rec, shared.timeout)),
            // The request has succeeded; a body left open (a proxy, a buggy server) is dropped
            // with its connection rather than failing the request or holding its user.
            _ = &mut drain, if done => return Ok(()),
            item = resp.next() => item,
        };
        match item {
            Some(Ok(bytes)) => {
                if done {
                    continue; // draining the transfer terminator so the connection is reused
                }
                let now = clock.now();
                done = on_bytes(&mut sse, state, rec, &bytes, now)?;
                if done {
                    rec.end_at = now;
                    drain
                        .as_mut()
                        .reset(tokio::time::Instant::now() + DRAIN_AFTER_DONE);
                }
            }
            Some(Err(e)) => {
                if done {
                    return Ok(());
                }
                return Err(failure(
                    Outcome::StreamBroken,
                    format!("stream broken: {e}"),
                ));
            }
            None => break,
        }
    }
    if done {
        return Ok(());
    }
    let now = clock.now();
    let mut pending = Ok(false);
    let end = sse.finish(&mut |data| on_data(state, rec, data, now, &mut pending));
    // Whether the callback stopped the decoder is already in `pending`.
    let _ = end.map_err(|e| match e {
        // The connection closed inside a line: broken, not malformed.
        SseError::Truncated { .. } => failure(Outcome::StreamBroken, e.to_string()),
        _ => failure(Outcome::ProtocolError, e.to_string()),
    })?;
    pending?;
    rec.end_at = now;
    if state.saw_done() || state.finish_reason().is_some() {
        Ok(())
    } else {
        Err(failure(
            Outcome::StreamBroken,
            "the stream ended before [DONE] and without a finish_reason",
        ))
    }
}

/// Feeds one network read; returns whether `[DONE]` was seen.
fn on_bytes(
    sse: &mut SseDecoder,
    state: &mut EventParser,
    rec: &mut RequestFinished,
    bytes: &[u8],
    now: Nanos,
) -> Result<bool, Failure> {
    let mut outcome = Ok(false);
    let _ = sse
        .feed(bytes, &mut |data| {
            on_data(state, rec, data, now, &mut outcome)
        })
        .map_err(|e| failure(Outcome::ProtocolError, e.to_string()))?;
    outcome
}

/// One SSE event's data. Stops the decoder on `[DONE]` or on an error.
fn on_data(
    state: &mut EventParser,
    rec: &mut RequestFinished,
    data: &str,
    now: Nanos,
    outcome: &mut Result<bool, Failure>,
) -> ControlFlow<()> {
    match state.on_data(data) {
        Ok(kind @ (DataKind::Text | DataKind::Reasoning | DataKind::ToolCall)) => {
            if kind == DataKind::ToolCall {
                rec.images_tools.first_tool_call_at.get_or_insert(now);
            }
            rec.first_token_at.get_or_insert(now);
            // A tool call answers too: a model that reasoned, then called, did not run dry.
            if kind != DataKind::Reasoning {
                rec.reasoning.first_answer_at.get_or_insert(now);
            }
            let offset_us = (now.saturating_sub(rec.sent_at) / 1_000).min(u32::MAX as u64) as u32;
            rec.chunk_offsets_us.push(offset_us);
            ControlFlow::Continue(())
        }
        Ok(DataKind::NoText) => ControlFlow::Continue(()),
        Ok(DataKind::Done) => {
            *outcome = Ok(true);
            ControlFlow::Break(())
        }
        Err(e) => {
            *outcome = Err(failure(Outcome::ProtocolError, e.to_string()));
            ControlFlow::Break(())
        }
    }
}

pub(super) fn timeout(rec: &RequestFinished, limit: Duration) -> Failure {
    let limit = humantime::format_duration(limit);
    if rec.first_token_at.is_some() {
        failure(
            Outcome::TimeoutMidStream,
            format!("the stream did not end within the request timeout ({limit})"),
        )
    } else {
        failure(
            Outcome::TimeoutBeforeFirstToken,
            format!("no first token within the request timeout ({limit})"),
        )
    }
}

pub fn status_outcome(status: u16) -> Outcome {
    match status {
        429 => Outcome::RateLimited,
        400..=499 => Outcome::Http4xx,
        500..=599 => Outcome::Http5xx,
        _ => Outcome::ProtocolError,
    }
}

pub(super) fn classify_send_error(e: SendRequestError) -> Failure {
    let outcome = match &e {
        // awc's `Disconnected` is an EOF after the request was written, before the response
        // head: the server (or a proxy) closed the connection — it was reached.
        SendRequestError::Connect(ConnectError::Disconnected) => {
            return failure(
                Outcome::StreamBroken,
                "the server closed the connection before answering",
            )
        }
        SendRequestError::Connect(_) => Outcome::ConnectError,
        SendRequestError::Timeout => Outcome::TimeoutBeforeFirstToken,
        SendRequestError::Response(_) => Outcome::ProtocolError,
        _ => Outcome::StreamBroken,
    };
    failure(outcome, e.to_string())
}

/// A 2xx answer that is not an event stream (e.g. a server that ignored `stream: true`) is a
/// protocol error: there are no token times to measure.
fn check_content_type<S>(resp: &awc::ClientResponse<S>) -> Result<(), Failure> {
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.is_empty() || ct.starts_with("text/event-stream") {
        Ok(())
    } else {
        Err(failure(
            Outcome::ProtocolError,
            format!("expected content-type text/event-stream, got {ct}"),
        ))
    }
}
