//! The SSE body of a streaming response: engine emissions become events, stamped as they are
//! handed to actix (the record's "sent" time); mid-stream faults strike here.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use actix_web::HttpResponse;
use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::chat_extras::SimToolCall;
use crate::engine::Emission;
use crate::fault::{Fault, HUGE_LINE_BYTES};
use crate::metrics::RequestTracker;
use crate::openai::{token_text, Endpoint, ResponseFormat, Usage};
use crate::reasoning::{chunk_event, ReasoningField};
use crate::record::InFlight;

use super::handlers::text_salt;
use super::{Plan, Shared, DRIP_PAUSE};

pub(super) fn stream_response(
    rx: UnboundedReceiver<Emission>,
    format: ResponseFormat,
    plan: &Plan,
    shared: &Shared,
    (mut log, tracker): (InFlight, RequestTracker),
) -> HttpResponse {
    let salt = text_salt(shared);
    let tool_call = plan.request.extras.call_tool.clone().map(|name| {
        let call = SimToolCall::new(name, salt);
        if let Some(record) = log.record() {
            record.set_tool_call(call.clone());
        }
        call
    });
    let endpoint = format.endpoint();
    let stream = TokenStream {
        tracker,
        tool_call,
        // Chat's role event; the Responses API's opening events.
        role_pending: endpoint != Endpoint::Completions,
        rx,
        format,
        // The Responses API always ends with its usage.
        include_usage: plan.request.include_usage || endpoint == Endpoint::Responses,
        salt,
        stashed: None,
        phase: Phase::Tokens,
        usage: Usage {
            prompt_tokens: plan.prompt_tokens,
            ..Usage::default()
        },
        log,
        fault: plan.fault,
        tokens: 0,
        queued: std::collections::VecDeque::new(),
        pause: None,
        strip_data: false,
        chunk: Vec::with_capacity(shared.cfg.tokens_per_chunk as usize),
        per_chunk: shared.cfg.tokens_per_chunk.max(1) as usize,
        reasoning: plan.reasoning_tokens,
        reasoning_field: ReasoningField::from_flag(&shared.cfg.reasoning_field),
    };
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("text/event-stream")))
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .streaming(stream)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Tokens,
    Usage,
    Done,
    End,
}

/// The SSE body of a streaming response.
struct TokenStream {
    rx: UnboundedReceiver<Emission>,
    format: ResponseFormat,
    include_usage: bool,
    /// Chat: the role-only event goes out with the first token, as in vLLM.
    role_pending: bool,
    /// The first token, held while the role event is yielded.
    stashed: Option<Emission>,
    salt: u64,
    phase: Phase,
    usage: Usage,
    /// Dropped with the stream: a client that goes away is still accounted for.
    log: InFlight,
    /// The `/metrics` account of the tokens sent.
    tracker: RequestTracker,
    /// A fault still to strike (mid-stream faults fire once, after their token count).
    fault: Option<Fault>,
    tokens: u32,
    /// Event pieces still to send (injected events, slow-drip pieces).
    queued: std::collections::VecDeque<Bytes>,
    /// A pause before the next item (stall, slow drip).
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The next token event goes out without its `data:` field name (missing-data).
    strip_data: bool,
    /// Tokens due but not yet sent: a chunk fills up to `per_chunk` (`--tokens-per-chunk`).
    chunk: Vec<Emission>,
    per_chunk: usize,
    /// The first `reasoning` tokens are reasoning (`--reasoning-tokens`).
    reasoning: u32,
    reasoning_field: ReasoningField,
    /// The answer is this tool call: each token is a piece of its arguments.
    tool_call: Option<SimToolCall>,
}

impl TokenStream {
    fn next_token(&mut self, cx: &mut Context<'_>) -> Poll<Option<Emission>> {
        match self.stashed.take() {
            Some(emission) => Poll::Ready(Some(emission)),
            None => self.rx.poll_recv(cx),
        }
    }

    /// Adds a due token to the chunk; the chunk's event once it is full or the sequence ended.
    fn chunk_event(&mut self, emission: Emission) -> Option<Bytes> {
        self.chunk.push(emission);
        if self.chunk.len() < self.per_chunk && emission.finish.is_none() {
            return None;
        }
        let chunk = std::mem::take(&mut self.chunk);
        let event = self.token_event(&chunk);
        self.chunk = chunk;
        self.chunk.clear();
        Some(event)
    }

    fn token_event(&mut self, chunk: &[Emission]) -> Bytes {
        // Stamped as it is handed to actix: the "actually sent" time of the record.
        let now = Instant::now();
        let (count, last) = (chunk.len() as u32, chunk[chunk.len() - 1]);
        // A tool call does not reason (the sim answers tools with a call at once).
        let thinking = match self.tool_call {
            Some(_) => 0,
            None => chunk.iter().filter(|e| e.index < self.reasoning).count() as u32,
        };
        self.log.tokens_sent(count.into(), now);
        self.tracker.tokens_sent(count.into(), now);
        if let Some(reason) = last.finish {
            self.tracker.finished(reason, now);
        }
        self.tokens += count;
        self.usage.completion_tokens += u64::from(count);
        self.usage.cached_tokens = last.cached_tokens;
        if self.reasoning > 0 {
            let reasoning = self.usage.reasoning_tokens.unwrap_or(0) + u64::from(thinking);
            self.usage.reasoning_tokens = Some(reasoning);
        }
        if last.finish.is_some() {
            self.phase = if self.include_usage {
                Phase::Usage
            } else {
                Phase::Done
            };
        }
        let event = if let Some(call) = &self.tool_call {
            // A tool call: each token is a piece of its arguments, a chunk's pieces joined.
            let piece: String = chunk
                .iter()
                .map(|e| {
                    let text = token_text(self.salt, e.index);
                    SimToolCall::piece(text, e.index == 0, e.finish.is_some())
                })
                .collect();
            let (first, end) = (chunk[0].index == 0, last.finish.is_some());
            if let Some(record) = self.log.record() {
                record.tool_arguments_sent(&piece);
                record.chunk_sent(count, 0);
            }
            self.format.event(call.choices(&piece, first, end), None)
        } else if self.reasoning == 0 && count == 1 {
            let text = token_text(self.salt, last.index);
            if let Some(record) = self.log.record() {
                record.text_sent(text);
                record.chunk_sent(1, 0);
            }
            self.format.token_event(text, last.finish)
        } else {
            self.texts_event(chunk, thinking)
        };
        if std::mem::take(&mut self.strip_data) {
            // An unknown SSE field to a client: the token is silently skipped.
            return Bytes::from(event.replacen("data: ", "", 1));
        }
        Bytes::from(event)
    }

    /// A chunk of several tokens, or with reasoning: its texts joined (the answer's recorded).
    fn texts_event(&mut self, chunk: &[Emission], thinking: u32) -> String {
        let text = |e: &Emission| token_text(self.salt, e.index);
        let (reasoning, answer) = chunk.split_at(thinking as usize);
        let reasoning: String = reasoning.iter().map(text).collect();
        let answer: String = answer.iter().map(text).collect();
        if let Some(record) = self.log.record() {
            record.text_sent(&answer);
            record.chunk_sent(chunk.len() as u32, thinking);
        }
        let finish = chunk[chunk.len() - 1].finish;
        if self.reasoning == 0 {
            return self.format.token_event(&answer, finish);
        }
        chunk_event(
            &self.format,
            self.reasoning_field,
            &reasoning,
            &answer,
            finish,
        )
    }

    /// A mid-stream fault whose time has come. `Err`: abort the connection now.
    fn strike(&mut self) -> Result<(), io::Error> {
        // At or past its count: with several tokens a chunk, the count may fall inside a chunk.
        let due = |f: &Fault| f.after().is_some_and(|n| self.tokens >= n);
        let Some(fault) = self.fault.filter(due) else {
            return Ok(());
        };
        self.fault = None;
        match fault {
            Fault::DropMidStream(_) => {
                self.log.finish(Some(Instant::now()), false);
                return Err(io::Error::other("injected fault: connection dropped mid-stream"));
            }
            Fault::Stall { ms, .. } => {
                self.pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(ms))));
            }
            Fault::BadJson(_) => self
                .queued
                .push_back(Bytes::from_static(b"data: {\"choices\": [{\"delta\": {\"content\": \n\n")),
            Fault::NonUtf8(_) => self
                .queued
                .push_back(Bytes::from_static(b"data: {\"choices\": \xff\xfe\xfd}\n\n")),
            Fault::HugeLine(_) => {
                let mut line = Vec::with_capacity(HUGE_LINE_BYTES + 8);
                line.extend_from_slice(b"data: ");
                line.resize(HUGE_LINE_BYTES, b'a');
                line.extend_from_slice(b"\n\n");
                self.queued.push_back(Bytes::from(line));
            }
            Fault::ErrorEvent(_) => self.queued.push_back(Bytes::from_static(
                b"data: {\"error\": {\"message\": \"injected fault: the engine failed mid-stream\", \"type\": \"InternalServerError\", \"code\": 500}}\n\n",
            )),
            Fault::MissingData(_) => self.strip_data = true,
            _ => {}
        }
        Ok(())
    }

    /// The next event of the normal stream.
    fn next_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let event = match self.phase {
            Phase::Tokens => match self.next_token(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    // The engine stopped (server shutting down): end the body without [DONE].
                    self.phase = Phase::End;
                    self.log.finish(Some(Instant::now()), false);
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(emission)) if self.role_pending => {
                    self.role_pending = false;
                    self.stashed = Some(emission);
                    Bytes::from(self.format.role_event())
                }
                Poll::Ready(Some(emission)) => match self.chunk_event(emission) {
                    Some(event) => event,
                    // The chunk is not full: wait for its next token.
                    None => return self.next_event(cx),
                },
            },
            Phase::Usage => {
                self.phase = Phase::Done;
                Bytes::from(self.format.usage_event(self.usage))
            }
            Phase::Done => {
                self.phase = Phase::End;
                self.log.finish(Some(Instant::now()), true);
                match self.format.done_event() {
                    Some(done) => Bytes::from_static(done.as_bytes()),
                    None => return self.next_event(cx),
                }
            }
            // The body stays open until the client lets go.
            Phase::End if self.fault == Some(Fault::OpenAfterDone) => return Poll::Pending,
            Phase::End => return Poll::Ready(None),
        };
        Poll::Ready(Some(event))
    }
}

impl Stream for TokenStream {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(pause) = this.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.pause = None;
        }
        if let Some(piece) = this.queued.pop_front() {
            if this.fault == Some(Fault::SlowDrip) && !this.queued.is_empty() {
                this.pause = Some(Box::pin(tokio::time::sleep(DRIP_PAUSE)));
            }
            return Poll::Ready(Some(Ok(piece)));
        }
        if let Err(e) = this.strike() {
            this.phase = Phase::End;
            return Poll::Ready(Some(Err(e)));
        }
        if this.pause.is_some() || !this.queued.is_empty() {
            // A stall or an injected event came first.
            return Pin::new(this).poll_next(cx);
        }
        match this.next_event(cx) {
            Poll::Ready(Some(event)) if this.fault == Some(Fault::SlowDrip) => {
                // Three pieces, cut inside the event, 2 ms apart.
                let third = (event.len() / 3).max(1);
                let mut rest = event;
                while rest.len() > third {
                    this.queued.push_back(rest.split_to(third));
                }
                this.queued.push_back(rest);
                Pin::new(this).poll_next(cx)
            }
            other => other.map(|e| e.map(Ok)),
        }
    }
}
