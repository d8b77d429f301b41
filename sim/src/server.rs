//! The HTTP side of the simulated server: actix-web routes, the engine loop task, and the
//! streaming bodies that turn engine emissions into SSE events.
//!
//! Threads: `SimServer::start` runs a dedicated OS thread with its own actix System. The engine
//! loop is one task on that System's arbiter; it wakes at each step deadline (absolute times) and
//! pushes each token into its request's channel. Handlers run on the HTTP worker threads; a
//! streaming body reads its channel and stamps when it hands each token to actix (the "sent" time
//! recorded in `SimRecord`). In fixed- and random-timing modes each request instead gets its own
//! producer task that sleeps until each token's absolute due time.
//!
//! With `--record-file` the records are written (JSON Lines, atomically) once the server has
//! stopped: by `SimServer::stop`/`close`/drop, hence also on SIGINT/SIGTERM in `run_cli`.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use futures_util::Stream;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::future::Future;
use tokenizers::Tokenizer;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;

use super::config::{DurationRange, FixedTiming, RandomTiming, SimConfig};
use super::engine::{
    sample_output_len, Emission, Engine, EngineParams, FinishReason, LengthRequest, SeqId,
    SeqRequest,
};
use super::fault::{self, Fault, FaultRule, HUGE_LINE_BYTES};
use super::openai::{
    parse_request, received_messages, resolve_max_tokens, token_text, ApiError, Endpoint,
    GenerationRequest, Prompt, ResponseFormat, Usage, DONE_EVENT,
};
use super::prefix_cache::prompt_block_hashes;
use super::record::{
    unix_nanos_now, write_records_jsonl, InFlight, RecordBuilder, Recorder, SimRecord, SimStats,
};

/// Largest request body accepted (long prompts; actix's default is 256 KiB).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Pending-connection backlog (a burst of new connections must not be refused).
const LISTEN_BACKLOG: u32 = 4096;
/// How long a graceful stop waits for in-flight responses.
const SHUTDOWN_GRACE_SECS: u64 = 3;
/// If the engine loop wakes later than this after a step deadline, the next step starts from
/// now instead of the missed deadline (no burst of compressed steps to catch up).
const MAX_STEP_LAG: Duration = Duration::from_millis(5);
/// Owner shown in `/v1/models`.
const MODEL_OWNER: &str = "inference-benchmarker";

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static X_SIM_FAULT: HeaderName = HeaderName::from_static("x-sim-fault");
/// Sent by the benchmarker's pre-flight probe (`coordinator::keep_alive`).
static X_PROBE: HeaderName = HeaderName::from_static("x-inference-benchmarker-probe");
/// Pause between the pieces of a `slow-drip` event.
const DRIP_PAUSE: Duration = Duration::from_millis(2);

/// The engine and the channel of every sequence it serves, under one lock.
struct EngineState {
    engine: Engine,
    senders: HashMap<SeqId, UnboundedSender<Emission>>,
}

impl EngineState {
    /// Aborts sequences whose client has gone away (their receiver was dropped).
    fn prune_disconnected(&mut self) {
        let engine = &mut self.engine;
        self.senders.retain(|&id, tx| {
            let open = !tx.is_closed();
            if !open {
                engine.abort(id);
            }
            open
        });
    }

    /// Hands a step's tokens to their requests.
    fn deliver(&mut self, emissions: Vec<Emission>) {
        for emission in emissions {
            let Some(tx) = self.senders.get(&emission.id) else {
                continue;
            };
            if tx.send(emission).is_err() {
                self.engine.abort(emission.id);
                self.senders.remove(&emission.id);
            } else if emission.finish.is_some() {
                self.senders.remove(&emission.id);
            }
        }
    }
}

struct EngineHandle {
    state: Mutex<EngineState>,
    wake: Notify,
}

enum Mode {
    Engine(Arc<EngineHandle>),
    Fixed(FixedTiming),
    /// Random timing, with the RNG every request's draws come from (seeded, arrival order).
    Random(RandomTiming, Box<Mutex<StdRng>>),
}

/// State shared by the workers and the engine loop.
struct Shared {
    cfg: SimConfig,
    tokenizer: Option<Arc<Tokenizer>>,
    recorder: Arc<Recorder>,
    mode: Mode,
    /// Response ids, token-text salts, fixed-mode output lengths, fault draws.
    rng: Mutex<StdRng>,
    /// `--fault` rules (validated by `SimConfig::validate` before the server starts).
    faults: Vec<FaultRule>,
}

impl Shared {
    fn new(cfg: SimConfig, tokenizer: Option<Arc<Tokenizer>>) -> Self {
        let mode = match (cfg.fixed_timing(), cfg.random_timing()) {
            (Some(timing), _) => Mode::Fixed(timing),
            (None, Some(timing)) => Mode::Random(
                timing,
                // Its own stream: timing draws do not shift ids, salts or output lengths.
                Box::new(Mutex::new(StdRng::seed_from_u64(
                    cfg.seed ^ 0x7131_0e5e_ed00,
                ))),
            ),
            (None, None) => Mode::Engine(Arc::new(EngineHandle {
                state: Mutex::new(EngineState {
                    engine: Engine::new(EngineParams::from_config(&cfg), cfg.seed),
                    senders: HashMap::new(),
                }),
                wake: Notify::new(),
            })),
        };
        Shared {
            recorder: Arc::new(Recorder::new(cfg.keeps_records(), cfg.record_cap)),
            // A different stream from the engine's so ids do not shift output lengths.
            rng: Mutex::new(StdRng::seed_from_u64(cfg.seed ^ 0x005e_ed1d)),
            tokenizer,
            mode,
            faults: cfg.fault_rules().unwrap_or_default(),
            cfg,
        }
    }

    fn count_tokens(&self, text: &str) -> u64 {
        let counted = self
            .tokenizer
            .as_ref()
            .and_then(|tok| tok.encode(text, false).ok())
            .map(|encoding| encoding.len() as u64);
        // Without a tokenizer (or if it fails): ~4 bytes per token.
        counted.unwrap_or_else(|| (text.len() as u64).div_ceil(4))
    }
}

/// The engine loop: one step at a time, on absolute deadlines.
async fn engine_loop(handle: Arc<EngineHandle>) {
    let mut next_start: Option<Instant> = None;
    loop {
        let step = {
            let mut state = handle.state.lock();
            state.prune_disconnected();
            state.engine.step()
        };
        let Some(step) = step else {
            next_start = None;
            handle.wake.notified().await;
            continue;
        };
        let now = Instant::now();
        let start = match next_start {
            Some(due) if now.saturating_duration_since(due) <= MAX_STEP_LAG => due,
            _ => now,
        };
        let deadline = start.checked_add(step.duration).unwrap_or(now);
        tokio::time::sleep_until(deadline.into()).await;
        handle.state.lock().deliver(step.emissions);
        next_start = Some(deadline);
    }
}

/// When each token of one request is due (fixed- and random-timing modes): absolute instants
/// from the request's receipt, so a late wake-up never shifts the tokens after it.
pub(super) enum TokenSchedule {
    /// Token k at first + k × ITL.
    Fixed {
        first: Option<Instant>,
        itl: Duration,
    },
    /// Token 0 at receipt + a drawn TTFT, token k at token k−1's due time + a drawn gap.
    Random {
        next: Option<Instant>,
        itl: DurationRange,
        rng: Box<StdRng>,
    },
}

impl TokenSchedule {
    pub(super) fn fixed(timing: FixedTiming, received: Instant) -> Self {
        TokenSchedule::Fixed {
            first: received.checked_add(timing.ttft),
            itl: timing.itl,
        }
    }

    /// Draws the TTFT now and a seed for the request's own gap draws (lazy, one per token).
    pub(super) fn random(timing: RandomTiming, rng: &mut StdRng, received: Instant) -> Self {
        let ttft = timing.ttft.sample(rng);
        TokenSchedule::Random {
            next: received.checked_add(ttft),
            itl: timing.itl,
            rng: Box::new(StdRng::seed_from_u64(rng.random())),
        }
    }

    /// Due time of token `index`; called for 0, 1, 2, … in order. None: beyond the clock.
    pub(super) fn due(&mut self, index: u32) -> Option<Instant> {
        match self {
            TokenSchedule::Fixed { first, itl } => (*first)?.checked_add(itl.checked_mul(index)?),
            TokenSchedule::Random { next, itl, rng } => {
                if index > 0 {
                    *next = (*next)?.checked_add(itl.sample(&mut **rng));
                }
                *next
            }
        }
    }
}

/// Fixed- and random-timing modes: each token is sent at its schedule's absolute due time
/// (never summed sleeps).
async fn timed_producer(
    tx: UnboundedSender<Emission>,
    mut schedule: TokenSchedule,
    (len, finish): (u32, FinishReason),
) {
    for index in 0..len {
        let Some(due) = schedule.due(index) else {
            return; // beyond the clock's range: the client will have given up long before
        };
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {}
            _ = tx.closed() => return,
        }
        let emission = Emission {
            id: 0,
            index,
            cached_tokens: 0,
            finish: (index + 1 == len).then_some(finish),
        };
        if tx.send(emission).is_err() {
            return;
        }
    }
}

/// A request the server will serve.
struct Plan {
    request: GenerationRequest,
    prompt_tokens: u64,
    prompt_bytes: usize,
    prompt_blocks: Vec<u64>,
    length: LengthRequest,
    /// Injected into this request's response.
    fault: Option<Fault>,
}

/// What happens to one request.
enum Disposition {
    Serve(Plan),
    Reject(ApiError),
    /// An injected error status (`status=CODE`).
    Injected(u16),
}

/// The one place where per-request behaviour is decided. Fault injection (error statuses,
/// 429s, dropped connections, stalls, malformed events — chosen by flags or per-request headers,
/// both visible here) belongs here as new `Disposition` variants.
fn decide(shared: &Shared, endpoint: Endpoint, headers: &HeaderMap, body: &[u8]) -> Disposition {
    let header = headers.get(&X_SIM_FAULT).and_then(|v| v.to_str().ok());
    let chosen = if headers.contains_key(&X_PROBE) {
        fault::for_probe(&shared.faults, header)
    } else {
        fault::choose(&shared.faults, header, || shared.rng.lock().random())
    };
    let fault = match chosen {
        Ok(f) => f,
        Err(e) => return Disposition::Reject(ApiError::bad_request(format!("x-sim-fault: {e}"))),
    };
    match (plan(shared, endpoint, body), fault) {
        (Err(err), _) => Disposition::Reject(err),
        (Ok(_), Some(Fault::Status(code))) => Disposition::Injected(code),
        (Ok(mut plan), fault) => {
            plan.fault = fault;
            Disposition::Serve(plan)
        }
    }
}

/// `decide`, on the blocking pool when a tokenizer will count the prompt: tokenizing a long
/// prompt on the worker would stall every other stream it serves.
async fn decide_off_loop(
    shared: &web::Data<Shared>,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &Bytes,
) -> Disposition {
    if shared.tokenizer.is_none() {
        return decide(shared, endpoint, headers, body);
    }
    let (shared, headers, body) = (shared.clone(), headers.clone(), body.clone());
    web::block(move || decide(&shared, endpoint, &headers, &body))
        .await
        .unwrap_or_else(|_| Disposition::Reject(ApiError::internal("the tokenizer task failed")))
}

/// Parses and validates a request, and counts its prompt.
fn plan(shared: &Shared, endpoint: Endpoint, body: &[u8]) -> Result<Plan, ApiError> {
    let request = parse_request(endpoint, body)?;
    if let Some(model) = request.model.as_deref() {
        if model != shared.cfg.model_name {
            return Err(ApiError::model_not_found(model));
        }
    }
    let (prompt_tokens, cache_key) = match &request.prompt {
        Prompt::Texts { parts, cache_key } => (
            parts.iter().map(|p| shared.count_tokens(p)).sum(),
            cache_key.clone(),
        ),
        // Token ids: 4 bytes each, so bytes/4 ≈ tokens as for text.
        Prompt::TokenIds(ids) => (
            ids.len() as u64,
            ids.iter().flat_map(|id| id.to_le_bytes()).collect(),
        ),
    };
    let max_tokens = resolve_max_tokens(
        request.max_tokens,
        request.min_tokens,
        prompt_tokens,
        shared.cfg.default_max_tokens,
        shared.cfg.max_model_len,
    )?;
    let length = LengthRequest {
        max_tokens,
        min_tokens: request.min_tokens,
        ignore_eos: request.ignore_eos,
    };
    Ok(Plan {
        prompt_blocks: prompt_block_hashes(&cache_key, shared.cfg.block_size_bytes),
        prompt_bytes: cache_key.len(),
        prompt_tokens,
        length,
        request,
        fault: None,
    })
}

/// Starts generating: queues the sequence in the engine, or spawns its timed producer.
fn start_generation(
    shared: &Shared,
    plan: &Plan,
    received: Instant,
) -> Result<UnboundedReceiver<Emission>, ApiError> {
    let (tx, rx) = unbounded_channel();
    match &shared.mode {
        Mode::Engine(handle) => {
            {
                let mut state = handle.state.lock();
                let id = state
                    .engine
                    .submit(SeqRequest {
                        prompt_tokens: plan.prompt_tokens,
                        prompt_bytes: plan.prompt_bytes,
                        prompt_blocks: plan.prompt_blocks.clone(),
                        length: plan.length,
                    })
                    .map_err(|_| ApiError::queue_full())?;
                state.senders.insert(id, tx);
            }
            handle.wake.notify_one();
        }
        Mode::Fixed(timing) => {
            spawn_timed(shared, plan, tx, TokenSchedule::fixed(*timing, received));
        }
        Mode::Random(timing, rng) => {
            let schedule = TokenSchedule::random(*timing, &mut rng.lock(), received);
            spawn_timed(shared, plan, tx, schedule);
        }
    }
    Ok(rx)
}

/// Fixed- and random-timing modes: draws the output length, then sends on `schedule`.
fn spawn_timed(
    shared: &Shared,
    plan: &Plan,
    tx: UnboundedSender<Emission>,
    schedule: TokenSchedule,
) {
    let len = sample_output_len(
        plan.length,
        shared.cfg.mean_output_tokens,
        &mut shared.rng.lock(),
    );
    actix_rt::spawn(timed_producer(tx, schedule, len));
}

fn header_string(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn error_response(err: &ApiError) -> HttpResponse {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type("application/json")
        .body(err.to_json())
}

async fn chat_completions(
    req: HttpRequest,
    body: Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    generate(Endpoint::Chat, req, body, shared).await
}

async fn completions(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    generate(Endpoint::Completions, req, body, shared).await
}

/// Both generation routes.
async fn generate(
    endpoint: Endpoint,
    req: HttpRequest,
    body: Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let received = Instant::now();
    let headers = req.headers();
    let builder = RecordBuilder::new(
        received,
        unix_nanos_now(),
        endpoint.path(),
        header_string(headers, &X_REQUEST_ID),
        header_string(headers, &TRACEPARENT),
        shared.recorder.enabled(),
    );
    // The benchmarker's own pre-flight probes are served like any request but are no part of a
    // run: not recorded, not counted, and only faults that strike every request strike them.
    let probe = headers.contains_key(&X_PROBE);
    let recorder = if probe {
        Arc::new(Recorder::new(false, 0))
    } else {
        shared.recorder.clone()
    };
    let mut log = InFlight::new(recorder, builder);
    let mut response = match decide_off_loop(&shared, endpoint, headers, &body).await {
        Disposition::Reject(err) => reject(log, &err),
        Disposition::Injected(code) => {
            if let Some(record) = log.record() {
                record.set_fault(&Fault::Status(code));
            }
            let mut response = reject(log, &ApiError::injected(code));
            if code == 429 {
                response.headers_mut().insert(
                    HeaderName::from_static("retry-after"),
                    HeaderValue::from_static("1"),
                );
            }
            response
        }
        Disposition::Serve(plan) => {
            if let Some(record) = log.record() {
                record.set_stream(plan.request.stream);
                record.set_prompt_tokens(plan.prompt_tokens);
                if let Some(f) = &plan.fault {
                    record.set_fault(f);
                }
                if shared.recorder.enabled() && endpoint == Endpoint::Chat {
                    record.set_messages(received_messages(&body));
                }
            }
            match plan.fault {
                Some(Fault::EmptyBody) => {
                    log.finish(Some(Instant::now()), true);
                    HttpResponse::Ok()
                        .insert_header((
                            CONTENT_TYPE,
                            HeaderValue::from_static("text/event-stream"),
                        ))
                        .finish()
                }
                Some(Fault::Drop) => {
                    log.finish(Some(Instant::now()), false);
                    let abort = futures_util::stream::once(async {
                        Err::<Bytes, _>(io::Error::other("injected fault: connection dropped"))
                    });
                    HttpResponse::Ok()
                        .insert_header((
                            CONTENT_TYPE,
                            HeaderValue::from_static("text/event-stream"),
                        ))
                        .streaming(abort)
                }
                _ => match start_generation(&shared, &plan, received) {
                    Err(err) => reject(log, &err),
                    Ok(rx) => {
                        let format = response_format(&shared, endpoint, log.record());
                        // wrong-content-type: the JSON body of a non-streaming answer.
                        let stream =
                            plan.request.stream && plan.fault != Some(Fault::WrongContentType);
                        if stream {
                            stream_response(rx, format, &plan, &shared, log)
                        } else {
                            collect_response(rx, format, &plan, &shared, &mut log).await
                        }
                    }
                },
            }
        }
    };
    // Echo x-request-id, as vLLM does with --enable-request-id-headers.
    if let Some(value) = headers.get(&X_REQUEST_ID) {
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), value.clone());
    }
    response
}

fn reject(mut log: InFlight, err: &ApiError) -> HttpResponse {
    if let Some(record) = log.record() {
        record.set_status(err.status);
    }
    log.finish(Some(Instant::now()), true);
    error_response(err)
}

/// Ids like vLLM: derived from x-request-id when given, random otherwise.
fn response_format(
    shared: &Shared,
    endpoint: Endpoint,
    record: Option<&mut RecordBuilder>,
) -> ResponseFormat {
    let request_id = record
        .and_then(|r| r.request_id().map(str::to_owned))
        .unwrap_or_else(|| format!("{:032x}", shared.rng.lock().random::<u128>()));
    ResponseFormat::new(
        endpoint,
        &request_id,
        unix_secs_now(),
        &shared.cfg.model_name,
    )
}

fn unix_secs_now() -> u64 {
    u64::try_from(unix_nanos_now() / 1_000_000_000).unwrap_or(u64::MAX)
}

fn text_salt(shared: &Shared) -> u64 {
    shared.rng.lock().random()
}

/// Non-streaming: waits for every token, then answers one JSON body.
async fn collect_response(
    mut rx: UnboundedReceiver<Emission>,
    format: ResponseFormat,
    plan: &Plan,
    shared: &Shared,
    log: &mut InFlight,
) -> HttpResponse {
    let salt = text_salt(shared);
    let mut text = String::new();
    let mut usage = Usage {
        prompt_tokens: plan.prompt_tokens,
        ..Usage::default()
    };
    let finish = loop {
        let Some(emission) = rx.recv().await else {
            let err = ApiError::engine_stopped();
            if let Some(record) = log.record() {
                record.set_status(err.status);
            }
            log.finish(Some(Instant::now()), false);
            return error_response(&err);
        };
        let piece = token_text(salt, emission.index);
        text.push_str(piece);
        if let Some(record) = log.record() {
            record.text_sent(piece);
        }
        usage.completion_tokens += 1;
        usage.cached_tokens = emission.cached_tokens;
        if let Some(finish) = emission.finish {
            break finish;
        }
    };
    let body = format.full_body(&text, finish, usage);
    let now = Instant::now();
    log.tokens_sent(usage.completion_tokens, now);
    log.finish(Some(now), true);
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

fn stream_response(
    rx: UnboundedReceiver<Emission>,
    format: ResponseFormat,
    plan: &Plan,
    shared: &Shared,
    log: InFlight,
) -> HttpResponse {
    let stream = TokenStream {
        role_pending: format.endpoint() == Endpoint::Chat,
        rx,
        format,
        include_usage: plan.request.include_usage,
        salt: text_salt(shared),
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
    /// A fault still to strike (mid-stream faults fire once, after their token count).
    fault: Option<Fault>,
    tokens: u32,
    /// Event pieces still to send (injected events, slow-drip pieces).
    queued: std::collections::VecDeque<Bytes>,
    /// A pause before the next item (stall, slow drip).
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The next token event goes out without its `data:` field name (missing-data).
    strip_data: bool,
}

impl TokenStream {
    fn next_token(&mut self, cx: &mut Context<'_>) -> Poll<Option<Emission>> {
        match self.stashed.take() {
            Some(emission) => Poll::Ready(Some(emission)),
            None => self.rx.poll_recv(cx),
        }
    }

    fn token_event(&mut self, emission: Emission) -> Bytes {
        // Stamped as it is handed to actix: the "actually sent" time of the record.
        self.log.tokens_sent(1, Instant::now());
        self.tokens += 1;
        self.usage.completion_tokens += 1;
        self.usage.cached_tokens = emission.cached_tokens;
        if emission.finish.is_some() {
            self.phase = if self.include_usage {
                Phase::Usage
            } else {
                Phase::Done
            };
        }
        let text = token_text(self.salt, emission.index);
        if let Some(record) = self.log.record() {
            record.text_sent(text);
        }
        let event = self.format.token_event(text, emission.finish);
        if std::mem::take(&mut self.strip_data) {
            // An unknown SSE field to a client: the token is silently skipped.
            return Bytes::from(event.replacen("data: ", "", 1));
        }
        Bytes::from(event)
    }

    /// A mid-stream fault whose time has come. `Err`: abort the connection now.
    fn strike(&mut self) -> Result<(), io::Error> {
        let Some(fault) = self.fault.filter(|f| f.after() == Some(self.tokens)) else {
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
                Poll::Ready(Some(emission)) => self.token_event(emission),
            },
            Phase::Usage => {
                self.phase = Phase::Done;
                Bytes::from(self.format.usage_event(self.usage))
            }
            Phase::Done => {
                self.phase = Phase::End;
                self.log.finish(Some(Instant::now()), true);
                Bytes::from_static(DONE_EVENT.as_bytes())
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

async fn models(shared: web::Data<Shared>) -> HttpResponse {
    let name = &shared.cfg.model_name;
    let created = unix_secs_now();
    HttpResponse::Ok().json(serde_json::json!({
        "object": "list",
        "data": [{
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": MODEL_OWNER,
            "root": name,
            "parent": null,
            "max_model_len": shared.cfg.max_model_len,
        }],
    }))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn not_found() -> HttpResponse {
    error_response(&ApiError::not_found())
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/chat/completions", web::post().to(chat_completions))
        .route("/v1/completions", web::post().to(completions))
        .route("/v1/models", web::get().to(models))
        .route("/health", web::get().to(health))
        .default_service(web::to(not_found));
}

/// The running simulated server (see `SimServer::start`).
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    handle: Option<ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimServer {
    /// Binds host:port (port 0 = a free port), serves on a dedicated OS thread running its own
    /// actix System (so it never shares an event loop with the load generator), and returns once
    /// the socket accepts connections. `tokenizer` counts prompt tokens (None: bytes/4).
    /// Bad flags, an address that cannot be listened on and unreadable TLS files are
    /// configuration errors ([`is_config_error`]).
    pub fn start(cfg: SimConfig, tokenizer: Option<Arc<Tokenizer>>) -> io::Result<SimServer> {
        cfg.validate().map_err(config_error)?;
        let shared = Arc::new(Shared::new(cfg, tokenizer));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("sim-server".into())
            .spawn(move || serve_thread(thread_shared, ready_tx))?;
        let ready = ready_rx.recv();
        match ready {
            Ok(Ok((addr, handle))) => Ok(SimServer {
                addr,
                shared,
                handle: Some(handle),
                thread: Some(thread),
            }),
            Ok(Err(err)) => {
                let _ = thread.join();
                Err(err)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other("the simulated server thread exited early"))
            }
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. "http://127.0.0.1:8000" (loopback when bound to every interface).
    pub fn url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let scheme = if self.shared.cfg.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{addr}")
    }

    /// Copies of the kept records (empty unless recording).
    pub fn records(&self) -> Vec<SimRecord> {
        self.shared.recorder.records()
    }

    pub fn stats(&self) -> SimStats {
        self.shared.recorder.stats()
    }

    /// Graceful stop (in-flight responses get a few seconds); joins the server thread, then
    /// writes `--record-file` (a failure to write it is logged: see `close`).
    pub fn stop(mut self) {
        if let Err(e) = self.shutdown() {
            log::error!("simulated server: {e}");
        }
    }

    /// `stop`, returning the error of writing `--record-file` instead of logging it.
    pub fn close(mut self) -> io::Result<()> {
        self.shutdown()
    }

    /// Stops serving (once), then writes the record file (once).
    fn shutdown(&mut self) -> io::Result<()> {
        if let Some(handle) = self.handle.take() {
            // The command is sent at once; the returned future only waits for completion,
            // which joining the thread does as well.
            drop(handle.stop(true));
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the simulated server thread panicked");
            }
            // The server has stopped (in-flight responses had their grace period): the
            // records are final.
            if let Some(path) = &self.shared.cfg.record_file {
                let records = self.shared.recorder.records();
                write_records_jsonl(path, &records)?;
                log::info!("{} records written to {}", records.len(), path.display());
            }
        }
        Ok(())
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            log::error!("simulated server: {e}");
        }
    }
}

type Ready = io::Result<(SocketAddr, ServerHandle)>;

/// Body of the server thread: its own System, the engine loop, the HTTP server.
fn serve_thread(shared: Arc<Shared>, ready: std::sync::mpsc::Sender<Ready>) {
    let system = actix_rt::System::new();
    system.block_on(async move {
        if let Mode::Engine(handle) = &shared.mode {
            actix_rt::spawn(engine_loop(handle.clone()));
        }
        let (host, port, workers) = (shared.cfg.host.clone(), shared.cfg.port, shared.cfg.workers);
        let tls = tls_config(&shared.cfg);
        let data = web::Data::from(shared);
        let bound = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .configure(routes)
        })
        .workers(workers)
        .backlog(LISTEN_BACKLOG)
        // Each token event must leave at once, as from vLLM (uvicorn disables Nagle too).
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE_SECS);
        let listen = |e: io::Error| config_error(format!("cannot listen on {host}:{port}: {e}"));
        let bound = match tls {
            Ok(Some(tls)) => bound
                .bind_rustls_0_23((host.as_str(), port), tls)
                .map_err(listen),
            Ok(None) => bound.bind((host.as_str(), port)).map_err(listen),
            Err(e) => Err(config_error(format!("--tls-cert/--tls-key: {e}"))),
        };
        let server = match bound {
            Ok(server) => server,
            Err(err) => {
                let _ = ready.send(Err(err));
                return;
            }
        };
        let Some(addr) = server.addrs().first().copied() else {
            let _ = ready.send(Err(io::Error::other("bound to no address")));
            return;
        };
        let server = server.run();
        if ready.send(Ok((addr, server.handle()))).is_err() {
            return; // start() gave up: nobody can stop us, so do not serve
        }
        if let Err(err) = server.await {
            log::error!("simulated server: {err}");
        }
    });
}

/// An error of the server's configuration (flags, an address that cannot be listened on, TLS
/// files), told apart from the machine's failures by its kind: see [`is_config_error`].
fn config_error(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// Whether an error of [`SimServer::start`] or [`run_cli`] is the configuration's (the `sim`
/// subcommand exits 2 for it, as the benchmark does) rather than the machine's.
pub fn is_config_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidInput
}

/// `--tls-cert` + `--tls-key` (PEM): serve HTTPS.
fn tls_config(cfg: &SimConfig) -> io::Result<Option<rustls::ServerConfig>> {
    let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) else {
        return Ok(None);
    };
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
    };
    let certs =
        rustls_pemfile::certs(&mut read(cert)?.as_slice()).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut read(key)?.as_slice())?
        .ok_or_else(|| io::Error::other(format!("{}: no private key", key.display())))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map(Some)
        .map_err(io::Error::other)
}

/// The `inference-benchmarker sim` subcommand: serve until SIGINT/SIGTERM, log the address.
pub fn run_cli(cfg: SimConfig, tokenizer: Option<Arc<Tokenizer>>) -> io::Result<()> {
    let mode = match (cfg.fixed_timing(), cfg.random_timing()) {
        (Some(t), _) => format!("fixed timing: TTFT {:?}, ITL {:?}", t.ttft, t.itl),
        (None, Some(t)) => format!(
            "random timing: TTFT {:?}..={:?}, ITL {:?}..={:?}, seed {}",
            t.ttft.min, t.ttft.max, t.itl.min, t.itl.max, cfg.seed
        ),
        (None, None) => format!(
            "engine: {} slots, step {} ms + {} µs/seq, prefill {} µs/token",
            cfg.slots, cfg.decode_step_ms, cfg.decode_us_per_seq, cfg.prefill_us_per_token
        ),
    };
    let model = cfg.model_name.clone();
    let server = SimServer::start(cfg, tokenizer)?;
    // stdout, so that a script using --port 0 can read the address.
    println!("simulated inference server listening on {}", server.url());
    log::info!("serving model {model:?} ({mode}); Ctrl-C to stop");
    wait_for_shutdown_signal()?;
    log::info!("stopping: {:?}", server.stats());
    server.close()
}

fn wait_for_shutdown_signal() -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let mut terminate = signal(SignalKind::terminate())?;
            tokio::select! {
                result = tokio::signal::ctrl_c() => result,
                _ = terminate.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await
        }
    })
}
