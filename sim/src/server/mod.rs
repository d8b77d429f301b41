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
//!
//! `/metrics` (and `/dcgm/metrics`) are rendered by `crate::metrics` from counters updated where
//! things happen (the engine loop at each step start, the bodies as they send tokens) and gauges
//! read from the engine under its lock at scrape time.
//!
//! Here: the shared state, `SimServer` (its thread, TLS, stop) and `run_cli`; the routes and
//! what each request gets are in `handlers.rs`, when tokens are due in `pacing.rs`, the SSE body
//! in `token_stream.rs`.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::header::HeaderName;
use actix_web::{web, App, HttpServer};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokenizers::Tokenizer;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;

use crate::config::{FixedTiming, RandomTiming, SimConfig};
use crate::engine::{Emission, Engine, EngineParams, LengthRequest, SeqId};
use crate::fault::{Fault, FaultRule};
use crate::metrics::Metrics;
use crate::openai::{ApiError, GenerationRequest};
use crate::record::{write_records_jsonl, BatchChange, Recorder, SimRecord, SimStats};

mod handlers;
mod pacing;
mod pooling;
mod token_stream;

use handlers::routes;
use pacing::engine_loop;
#[cfg(test)]
pub(crate) use pacing::TokenSchedule;

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
/// A request's own reasoning length (`--reasoning-tokens` for one request).
static X_SIM_REASONING_TOKENS: HeaderName = HeaderName::from_static("x-sim-reasoning-tokens");
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
    /// `/metrics` and `/dcgm/metrics`.
    metrics: Arc<Metrics>,
    /// The `Hostname` label of `/dcgm/metrics`.
    hostname: String,
    /// Finished Responses API answers, for `previous_response_id`.
    responses: Arc<crate::responses::ResponseStore>,
    /// Pre-flight probes answered so far (`--fail-probes` fails the first ones).
    probes: std::sync::atomic::AtomicU32,
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
        let metrics = Metrics::new(
            &cfg.model_name,
            cfg.kv_cache_tokens,
            cfg.slots,
            cfg.power_model(),
        );
        Shared {
            metrics: Arc::new(metrics),
            hostname: crate::metrics::hostname(),
            responses: Arc::default(),
            probes: Default::default(),
            recorder: Arc::new(Recorder::new(cfg.keeps_records(), cfg.record_cap)),
            // A different stream from the engine's so ids do not shift output lengths.
            rng: Mutex::new(StdRng::seed_from_u64(cfg.seed ^ 0x005e_ed1d)),
            tokenizer,
            mode,
            faults: cfg.fault_rules().unwrap_or_default(),
            cfg,
        }
    }

    /// The `/metrics` page, gauges read now.
    fn vllm_metrics(&self) -> String {
        self.metrics.render_vllm(self.gauges())
    }

    /// The gauges: the engine's state, or the timing modes' producers.
    fn gauges(&self) -> crate::metrics::Gauges {
        match &self.mode {
            Mode::Engine(handle) => {
                let state = handle.state.lock();
                crate::metrics::Gauges {
                    running: state.engine.batch_in_progress() as u64,
                    waiting: state.engine.waiting_len() as u64,
                    kv_tokens: state.engine.kv_tokens(),
                }
            }
            Mode::Fixed(_) | Mode::Random(..) => self.metrics.producing_gauges(),
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

/// A request the server will serve.
struct Plan {
    request: GenerationRequest,
    prompt_tokens: u64,
    prompt_bytes: usize,
    prompt_blocks: Vec<u64>,
    length: LengthRequest,
    /// Injected into this request's response.
    fault: Option<Fault>,
    /// Of its tokens, the first ones are reasoning (streaming chat only).
    reasoning_tokens: u32,
    /// Responses API: the conversation this answer continues (history + input).
    conversation: Option<crate::responses::Conversation>,
}

/// What happens to one request.
enum Disposition {
    Serve(Plan),
    Reject(ApiError),
    /// An injected error status (`status=CODE`).
    Injected(u16),
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

    /// The `/metrics` page now (as a scrape would get it).
    pub fn metrics_text(&self) -> String {
        self.shared.vllm_metrics()
    }

    /// Copies of the kept records (empty unless recording).
    pub fn records(&self) -> Vec<SimRecord> {
        self.shared.recorder.records()
    }

    pub fn stats(&self) -> SimStats {
        self.shared.recorder.stats()
    }

    /// The engine's batch over time (with `record`; empty in the timing modes).
    pub fn batch_log(&self) -> Vec<BatchChange> {
        self.shared.recorder.batch_log()
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
            actix_rt::spawn(engine_loop(
                handle.clone(),
                shared.metrics.clone(),
                shared.recorder.clone(),
            ));
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
