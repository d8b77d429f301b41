//! inference-benchmarker: a load generator for OpenAI-compatible LLM inference servers.
//!
//! `run(config)` is the whole benchmark, callable in-process (tests do); `main.rs` only parses
//! the command line and maps errors to exit codes.

pub mod cli;
pub mod config;
pub mod console;
pub mod control;
pub mod coordinator;
pub mod load;
pub mod offline;
pub mod outputs;
pub mod request;
pub mod runtime;
/// The simulated server, its own crate (`sim/`); re-exported so `inference_benchmarker::sim::…`
/// paths keep working.
pub mod sim {
    pub use ::sim::*;
}
pub mod workload;

use std::sync::Arc;

use actix::prelude::*;
use actix_rt::Arbiter;
use sinks::handover::{RecorderHandle, HANDOVER_CAPACITY};
use sinks::recorder::{Recorder, RecorderConfig};
use tokio::sync::oneshot;

use crate::config::{Endpoint, RunConfig};
use crate::coordinator::{signals, Coordinator, Engine};
use crate::offline::{report, table, thresholds};
use crate::outputs::results_file;
use crate::request::client::{PreparedBody, RequestShared};
use crate::request::openai::{
    chat_body_with_tools, completions_body, endpoint_url, responses_body, sent_figures,
};
use crate::runtime::clock::Clock;
pub use crate::runtime::exit::RunError;
pub use crate::runtime::exit::RunSummary;
use crate::runtime::shutdown::{Level, Shutdown};
use crate::runtime::workers::{ClientSettings, Workers};
use crate::runtime::{limits, tls, workers};
use crate::workload::Workload;

/// Runs a benchmark to its end. Blocks the calling thread (it runs its own actix System).
pub fn run(cfg: RunConfig) -> Result<RunSummary, RunError> {
    run_with(cfg, Shutdown::new(), false)
}

/// As `run`, with a stop handle the caller controls, and — for the binary (`binary`) —
/// SIGINT/SIGTERM handling (the first signal stops the run cleanly: drain, then cancel after
/// the grace period, results written; a second one exits at once) and the summary table on
/// stdout as soon as the run ends, before `/metrics` lingers for its last scrape.
pub fn run_with(
    mut cfg: RunConfig,
    shutdown: Shutdown,
    binary: bool,
) -> Result<RunSummary, RunError> {
    cfg.check_endpoint_options().map_err(RunError::Config)?;
    let (base, note) =
        request::base_url::normalize(&cfg.url, cfg.endpoint).map_err(RunError::Config)?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    cfg.url = base;
    let url = endpoint_url(&cfg.url, cfg.endpoint).map_err(RunError::Config)?;
    cfg.max_vus = limits::prepare(cfg.max_vus);
    let gates = cfg
        .thresholds
        .iter()
        .map(|t| t.parse::<thresholds::Threshold>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(RunError::Config)?;
    let computed = thresholds::Computed {
        goodput: cfg.slo.is_some(),
        tokens: !cfg.endpoint.is_pooling(),
    };
    thresholds::check_computed(&gates, computed).map_err(RunError::Config)?;
    // Drawn once, so that the results record the salt the prompts were made with.
    cfg.cache_salt = std::mem::take(&mut cfg.cache_salt).resolved();
    let workload = workload::prepare(&workload::WorkloadConfig::from_run_config(&cfg))
        .map_err(RunError::Config)?;
    limits::release_free_memory();
    let outputs = report::RunOutputs {
        html: !cfg.no_report,
        csv: cfg.csv,
    };
    let system = actix_rt::System::new();
    let abort = signals::AbortTarget::default();
    system.block_on(async move {
        if binary {
            actix_rt::spawn(signals::watch(shutdown.clone(), abort.clone()));
        }
        let (summary, lingering) = match start(cfg, url, workload, shutdown, abort).await {
            Ok((summary, lingering)) => (summary, Some(lingering)),
            Err(e) => (Err(e), None),
        };
        // The Markdown summary, the HTML report and the CSV, beside whatever results were saved.
        report::after_run(outputs, &summary);
        let outcome = summary.and_then(|s| gate(&gates, s));
        if binary {
            table::print_outcome(&outcome);
        }
        // Only then does /metrics keep serving the final values for the last scrape.
        if let Some(l) = lingering {
            l.linger_and_stop().await;
        }
        outcome
    })
}

/// The run's `--threshold` gates over its steps.
fn gate(gates: &[thresholds::Threshold], summary: RunSummary) -> Result<RunSummary, RunError> {
    let failures = thresholds::evaluate(gates, &summary.steps);
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(RunError::ThresholdsFailed {
            failures: failures.iter().map(ToString::to_string).collect(),
            summary: Box::new(summary),
        })
    }
}

async fn start(
    cfg: RunConfig,
    url: String,
    workload: Workload,
    shutdown: Shutdown,
    abort: signals::AbortTarget,
) -> Result<(Result<RunSummary, RunError>, Lingering), RunError> {
    let authorization = cfg.api_key.as_ref().map(|k| format!("Bearer {k}"));
    let settings = ClientSettings {
        max_connections: cfg.max_vus as usize + 1,
        tls: tls::client_config(cfg.ca_cert.as_deref(), cfg.insecure).map_err(RunError::Config)?,
    };
    let probe = workers::build_client(&settings);
    let model = tokio::select! {
        m = coordinator::health::check(&probe, &cfg.url, authorization.as_deref(), cfg.model_name.as_deref()) => m?,
        _ = shutdown.reached(Level::Stop) => return Err(RunError::Interrupted { results: None }),
    };
    let bodies = prepare_bodies(&cfg, &model, &workload);
    let preflight_id = format!("{}-preflight", cfg.request_id_prefix());
    let tiny = one_token_body(&bodies[0], cfg.endpoint);
    tokio::select! {
        checked = coordinator::preflight::check_request(&probe, &url, authorization.as_deref(), &preflight_id, tiny.clone()) => checked?,
        _ = shutdown.reached(Level::Stop) => return Err(RunError::Interrupted { results: None }),
    }
    // Live values no event carries (in flight, users, phase, event-loop lag, the server's queue
    // and KV cache at the latest scrape), for the metrics and the console.
    let gauges = Arc::new(sinks::prometheus::LiveGauges::new(cfg.workers.max(1)));
    let server_metrics = outputs::server_metrics::start(&cfg, &probe, gauges.clone()).await;
    drop(probe);
    // The probe reads a streamed answer; an embeddings or rerank answer is not one.
    let keep_alive = cfg.endpoint.is_pooling()
        || probe_keep_alive(&url, authorization.as_deref(), &preflight_id, &tiny).await;
    let mut pool = load::conversation::pool(&cfg, &model, &workload, bodies);
    if workload.arrivals.is_some() {
        pool = pool.in_arrival_order();
    }
    let pool = Arc::new(pool);
    let clock = Clock::start();
    let config_json = results_file::config(
        &cfg,
        results_file::Resolved {
            model: &model,
            tokenizer: &workload.tokenizer_label,
            keep_alive,
            source: &workload.source,
            workload: workload.describe(),
        },
    );
    let counter = Arc::new(workload::tokenizer::TokenizerCounter::new(
        workload.tokenizer.clone(),
    ));
    let recorder_cfg = RecorderConfig {
        output_dir: cfg.output_dir.clone(),
        file_label: results_file::file_label(&cfg, &model),
        run_id: cfg.run_id.clone(),
        config_json,
        save_requests: cfg.save_requests,
        anchor_unix_nanos: clock.anchor_unix_nanos(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let recorder = Recorder::new(recorder_cfg, counter).map_err(|e| {
        RunError::Config(format!(
            "cannot write results to {}: {e}",
            cfg.output_dir.display()
        ))
    })?;
    if let Some(scraper) = &server_metrics {
        outputs::server_metrics::open_timeseries(scraper, recorder.results_path(), &clock)?;
    }
    // The Recorder runs on an arbiter of its own and each live sink on another, never on the
    // request arbiters.
    let sink_arbiter = Arbiter::new();
    // The Coordinator's address exists before the Coordinator: the console's keys and the
    // control endpoint send to it from the start.
    let coordinator = Context::<Coordinator>::new();
    let controls = control::Controls::default();
    let control_server = match cfg.control_listen {
        Some(addr) => Some(
            control::server::ControlServer::start(
                addr,
                coordinator.address().recipient(),
                controls.clone(),
            )
            .map_err(RunError::Config)?,
        ),
        None => None,
    };
    let run_ctx = outputs::live_sinks::RunContext {
        model: &model,
        gauges: &gauges,
        shutdown: &shutdown,
        control: coordinator.address().recipient(),
    };
    let started = outputs::live_sinks::start_sinks(&cfg, &run_ctx, recorder)?;
    let linger = outputs::live_sinks::Linger::new(&cfg, &shutdown);
    let recorder = RecorderHandle::new(
        started.recorder.start_in_arbiter(&sink_arbiter.handle()),
        HANDOVER_CAPACITY,
    );
    abort.set(Some(recorder.addr().clone()));

    let shared = Arc::new(RequestShared {
        url,
        endpoint: cfg.endpoint,
        authorization,
        timeout: cfg.request_timeout,
        clock,
        shutdown: shutdown.clone(),
        tracing: outputs::live_sinks::trace_sampler(&cfg),
        keep_alive,
        retry: request::retry::RetryPolicy {
            max: cfg.retries,
            report: Some(recorder.addr().clone().recipient()),
        },
    });
    let workers = Arc::new(Workers::start(cfg.workers, settings.clone()));
    workers.start_lag_probes(&gauges);
    let engine = Engine {
        clock,
        shutdown,
        shared,
        pool: pool.clone(),
        workers,
        scheduler: Arbiter::new(),
        recorder,
        live_sinks: started.live,
        gauges,
        settings,
        arrivals: workload.arrivals.clone(),
        controls,
        server_metrics,
        cfg,
    };
    let (tx, rx) = oneshot::channel();
    coordinator.run(Coordinator::new(engine, tx));
    let result = rx.await.unwrap_or_else(|_| {
        Err(RunError::Internal(
            "the coordinator stopped without a result".into(),
        ))
    });
    if let Some(server) = control_server {
        server.stop().await;
    }
    // The results are final: a second signal from now on only exits.
    abort.set(None);
    if let Some(note) = pool.chat().and_then(|c| c.summary()) {
        eprintln!("{note}");
    }
    Ok((
        result,
        Lingering {
            linger,
            sink_arbiter,
            sink_threads: started.threads,
        },
    ))
}

/// What a run that got under way leaves up after its outcome: the sinks' arbiter, so that
/// `/metrics` can keep serving the final values (`--prometheus-linger`) after the summary.
struct Lingering {
    linger: outputs::live_sinks::Linger,
    sink_arbiter: Arbiter,
    sink_threads: sinks::live::SinkThreads,
}

impl Lingering {
    async fn linger_and_stop(self) {
        self.linger.wait().await;
        self.sink_threads.stop();
        self.sink_arbiter.stop();
        let _ = self.sink_arbiter.join();
    }
}

/// Whether pooled connections may be reused: a server that closes the connection after each
/// streamed response gets a connection per request (see `coordinator::keep_alive`).
async fn probe_keep_alive(
    url: &str,
    authorization: Option<&str>,
    request_id: &str,
    body: &[u8],
) -> bool {
    match coordinator::keep_alive::probe(url, authorization, request_id, body).await {
        Some(false) => {
            eprintln!(
                "pre-flight: the server closes the connection after every streamed response \
                 (llama.cpp does); each request opens its own connection"
            );
            false
        }
        _ => true,
    }
}

/// The pre-flight requests' body: the run's first prompt, one output token (embeddings and
/// rerank: the run's first body as it is).
fn one_token_body(first: &PreparedBody, endpoint: Endpoint) -> Vec<u8> {
    let mut body: serde_json::Value = serde_json::from_slice(&first.body).unwrap_or_default();
    let length_key = match endpoint {
        Endpoint::Chat | Endpoint::Completions => Some("max_tokens"),
        Endpoint::Responses => Some("max_output_tokens"),
        Endpoint::Embeddings | Endpoint::Rerank => None,
    };
    if let (Some(obj), Some(key)) = (body.as_object_mut(), length_key) {
        obj.insert(key.into(), 1.into());
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Request bodies are serialized once, here, so the hot path only clones `Bytes`.
fn prepare_bodies(cfg: &RunConfig, model: &str, workload: &Workload) -> Vec<Arc<PreparedBody>> {
    if cfg.endpoint.is_pooling() {
        let rerank = cfg.endpoint == Endpoint::Rerank;
        return load::batches::pooling_bodies(model, &workload.requests, cfg.batch_size, rerank);
    }
    workload
        .requests
        .iter()
        .map(|r| {
            let tools = r.tools.as_ref().map(|t| &t.definitions);
            let body = match cfg.endpoint {
                Endpoint::Chat => chat_body_with_tools(
                    model,
                    &r.messages,
                    tools,
                    r.max_tokens,
                    cfg.ignore_eos,
                    cfg.reasoning_effort.as_deref(),
                ),
                Endpoint::Completions => {
                    completions_body(model, &r.prompt, r.max_tokens, cfg.ignore_eos)
                }
                Endpoint::Responses => responses_body(
                    model,
                    &r.messages,
                    None,
                    r.max_tokens,
                    cfg.ignore_eos,
                    cfg.reasoning_effort.as_deref(),
                ),
                Endpoint::Embeddings | Endpoint::Rerank => unreachable!("pooling bodies above"),
            };
            Arc::new(PreparedBody {
                body,
                prompt_tokens: r.prompt_tokens,
                max_tokens: r.max_tokens,
                images_tools: sent_figures(cfg.endpoint, &r.messages, tools),
                inputs: 1,
            })
        })
        .collect()
}

/// mimalloc instead of glibc's malloc: tokenizing a dataset allocates per token from several
/// threads (glibc spent ~45 % of startup in malloc/free), and a streamed chunk allocates too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
