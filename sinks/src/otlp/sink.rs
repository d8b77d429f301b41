//! The OTLP trace sink: an actor on the sink arbiter that turns finished requests into spans and
//! exports them in batches. Best-effort by design: spans wait in a bounded queue; a span that
//! does not fit (the collector is slow or down) is dropped and counted, an export that fails
//! counts its spans as failed. Nothing here ever waits on a request, and no request waits on it:
//! its buffer drops rather than block (`BufferPolicy::DropNewest`, counted in
//! `sinks.otlp.dropped_events`), and its work per event is building one span.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use opentelemetry::trace::SpanContext;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{
    Protocol, RetryPolicy, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};
use opentelemetry_sdk::Resource;

use crate::event::{ControlEvent, Event, Nanos, StepInfo};
use crate::json::report::RunStatus;
use crate::live::{BufferConfig, FlushFuture, LiveSink, Running, Sink, SinkContext, SinkRegistry};
use crate::otlp::config::{OtlpConfig, OtlpProtocol, DEFAULT_SERVICE_NAME};
use crate::otlp::span::{request_span, run_span, span_context, step_span};

/// What became of the spans; readable while the run goes on and after it.
#[derive(Debug, Default)]
pub struct OtlpStats {
    /// Spans the collector accepted.
    pub exported: AtomicU64,
    /// Spans that did not fit in the queue (never sent).
    pub dropped: AtomicU64,
    /// Spans sent in an export that failed or timed out.
    pub failed: AtomicU64,
}

impl OtlpStats {
    /// Spans lost either way.
    pub fn lost(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }

    /// The line printed at the end of a run.
    pub fn summary(&self) -> String {
        format!(
            "OTLP traces: {} spans exported, {} dropped (queue full), {} failed to export",
            self.exported.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        )
    }
}

/// A started sink.
pub struct Started {
    pub sink: LiveSink,
    pub stats: Arc<OtlpStats>,
}

type Exporter = Arc<tokio::sync::Mutex<opentelemetry_otlp::SpanExporter>>;

/// The resource every span carries: `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` as the
/// SDK reads them, our service name when they set none, and the run id.
pub fn resource(run_id: &str) -> Resource {
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .map(|v| {
                v.split(',')
                    .any(|kv| kv.trim().starts_with("service.name="))
            })
            .unwrap_or(false);
    let mut b = Resource::builder();
    if !named {
        b = b.with_service_name(DEFAULT_SERVICE_NAME);
    }
    b.with_attributes([KeyValue::new(
        "inference_benchmarker.run_id",
        run_id.to_string(),
    )])
    .build()
}

/// One retry after 100 ms (+ up to 20 ms jitter): a collector's brief hiccup is ridden out,
/// while a dead one costs each batch 0.1 s instead of the default policy's three backoffs
/// (0.7–1.9 s), which held the end of a run with the collector down by 1.7 s.
fn retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_retries(1)
        .with_initial_delay(Duration::from_millis(100))
        .with_max_jitter(Duration::from_millis(20))
}

/// Builds the exporter. Must run inside a Tokio runtime (gRPC channels start there).
fn build_exporter(cfg: &OtlpConfig) -> Result<opentelemetry_otlp::SpanExporter, String> {
    let endpoint = cfg.exporter_endpoint();
    let built = match cfg.protocol {
        OtlpProtocol::Http => {
            // Explicit: another crate's `http-json` feature would otherwise make JSON the default.
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_timeout(cfg.export_timeout)
                .with_retry_policy(retry_policy());
            if let Some(e) = endpoint {
                b = b.with_endpoint(e);
            }
            b.build()
        }
        OtlpProtocol::Grpc => {
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_timeout(cfg.export_timeout)
                .with_retry_policy(retry_policy());
            if let Some(e) = endpoint {
                b = b.with_endpoint(e);
            }
            b.build()
        }
    };
    let mut exporter = built.map_err(|e| format!("OTLP exporter: {e}"))?;
    exporter.set_resource(&resource(&cfg.run_id));
    Ok(exporter)
}

/// Starts the sink in `registry`. The endpoint is checked here; the exporter is built on the
/// sink's arbiter (its runtime), and if that fails every span is counted as failed and the final
/// flush reports the error.
pub fn start(cfg: OtlpConfig, registry: &mut SinkRegistry) -> Result<Started, String> {
    if let Some(e) = &cfg.endpoint {
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            return Err(format!(
                "--otlp-endpoint must be an http:// or https:// URL, got {e:?}"
            ));
        }
    }
    crate::otlp::context::TraceSampler::new(cfg.sample_ratio)?;
    if cfg.batch_size == 0 || cfg.queue_capacity == 0 {
        return Err("OTLP batch size and queue capacity must be positive".into());
    }
    let stats = Arc::new(OtlpStats::default());
    let st = stats.clone();
    let sink = registry.start(BufferConfig::drop_newest(), move || OtlpSink::new(cfg, st));
    Ok(Started { sink, stats })
}

pub struct OtlpSink {
    cfg: OtlpConfig,
    exporter: Result<Exporter, String>,
    stats: Arc<OtlpStats>,
    anchor: u128,
    run: SpanContext,
    /// Each step's info, span context and the control changes made during it (its span's events).
    steps: HashMap<u32, (Arc<StepInfo>, SpanContext, Vec<ControlEvent>)>,
    queue: VecDeque<SpanData>,
    /// A background export is running: the timer does not start another.
    exporting: bool,
    /// The latest stamp seen: the run span's end.
    last_end: Nanos,
    last_error: Option<String>,
    run_exported: bool,
}

impl OtlpSink {
    /// Call on the sink's arbiter (gRPC channels start in its runtime).
    pub fn new(cfg: OtlpConfig, stats: Arc<OtlpStats>) -> OtlpSink {
        let exporter = build_exporter(&cfg).map(|e| Arc::new(tokio::sync::Mutex::new(e)));
        if let Err(e) = &exporter {
            log::error!("{e}: no spans will be exported");
        }
        let ids = crate::otlp::context::TraceSampler::new(1.0)
            .expect("1.0 is a valid ratio")
            .next_context();
        OtlpSink {
            cfg,
            exporter,
            stats,
            anchor: 0,
            run: span_context(ids.trace_id, ids.span_id),
            steps: HashMap::new(),
            queue: VecDeque::new(),
            exporting: false,
            last_end: 0,
            last_error: None,
            run_exported: false,
        }
    }

    fn enqueue(&mut self, span: SpanData) {
        if self.exporter.is_err() {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        } else if self.queue.len() >= self.cfg.queue_capacity {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            self.queue.push_back(span);
        }
    }

    fn step_context(&mut self, step: u32) -> Option<SpanContext> {
        self.steps.get(&step).map(|(_, c, _)| c.clone())
    }

    fn observe(&mut self, event: &Event) {
        match event {
            Event::RunStarted(run) => self.anchor = run.anchor_unix_nanos,
            Event::StepStarted(info) => {
                let ids = crate::otlp::context::TraceSampler::new(1.0)
                    .expect("1.0 is a valid ratio")
                    .next_context();
                let ctx = span_context(self.run.trace_id().to_bytes(), ids.span_id);
                self.steps
                    .insert(info.index, (info.clone(), ctx, Vec::new()));
            }
            Event::Request(req) => {
                self.last_end = self.last_end.max(req.end_at);
                let link = self.step_context(req.step);
                if let Some(span) = request_span(&self.cfg, self.anchor, req, link) {
                    self.enqueue(span);
                }
            }
            Event::StepFinished { step, window } => {
                self.last_end = self.last_end.max(window.end);
                if let Some((info, ctx, control)) = self.steps.get(step) {
                    let span = step_span(
                        &self.cfg,
                        self.anchor,
                        &self.run,
                        ctx,
                        (info, control),
                        *window,
                    );
                    self.enqueue(span);
                }
            }
            Event::Dropped(_) => {}
            Event::Control(c) => {
                if let Some(step) = self.steps.get_mut(&c.step) {
                    step.2.push(c.clone());
                }
            }
        }
    }

    fn take_batch(&mut self) -> Vec<SpanData> {
        let n = self.queue.len().min(self.cfg.batch_size);
        self.queue.drain(..n).collect()
    }

    /// Exports one batch in the background, unless one is already going.
    fn export_next(&mut self, ctx: &mut SinkContext<Self>) {
        if self.exporting || self.queue.is_empty() {
            return;
        }
        let Ok(exporter) = self.exporter.clone() else {
            return;
        };
        let batch = self.take_batch();
        self.exporting = true;
        let timeout = self.cfg.export_timeout;
        ctx.spawn(
            actix::fut::wrap_future::<_, Running<Self>>(export(exporter, batch, timeout)).map(
                |result, act, ctx| {
                    act.exporting = false;
                    act.count(result);
                    if act.queue.len() >= act.cfg.batch_size {
                        act.export_next(ctx);
                    }
                },
            ),
        );
    }

    fn count(&mut self, result: ExportResult) {
        self.stats
            .exported
            .fetch_add(result.exported, Ordering::Relaxed);
        self.stats
            .failed
            .fetch_add(result.failed, Ordering::Relaxed);
        if let Some(e) = result.error {
            log::debug!("OTLP export failed: {e}");
            self.last_error = Some(e);
        }
    }
}

struct ExportResult {
    exported: u64,
    failed: u64,
    error: Option<String>,
}

/// One export request, bounded in time.
async fn export(exporter: Exporter, batch: Vec<SpanData>, timeout: Duration) -> ExportResult {
    let n = batch.len() as u64;
    let exporter = exporter.lock().await;
    let error = match tokio::time::timeout(timeout, exporter.export(batch)).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!("export timed out after {timeout:?}")),
    };
    match error {
        None => ExportResult {
            exported: n,
            failed: 0,
            error: None,
        },
        Some(e) => ExportResult {
            exported: 0,
            failed: n,
            error: Some(e),
        },
    }
}

impl Sink for OtlpSink {
    const NAME: &'static str = "otlp";

    fn start(&mut self, ctx: &mut SinkContext<Self>) {
        ctx.run_interval(self.cfg.export_interval, |act, ctx| act.export_next(ctx));
    }

    fn on_event(&mut self, event: &Event, ctx: &mut SinkContext<Self>) {
        self.observe(event);
        if self.queue.len() >= self.cfg.batch_size {
            self.export_next(ctx);
        }
    }

    /// Exports everything queued and the run span, waiting for any export already running;
    /// gives up after two export timeouts in all, counting the rest as failed, so a dead
    /// collector cannot hold the run's exit.
    fn flush(&mut self, _: RunStatus, _: &mut SinkContext<Self>) -> FlushFuture<Self> {
        if !self.run_exported {
            self.run_exported = true;
            let span = run_span(&self.cfg, self.anchor, &self.run, self.last_end);
            self.enqueue(span);
        }
        let mut batches = Vec::new();
        while !self.queue.is_empty() {
            batches.push(self.take_batch());
        }
        let exporter = self.exporter.clone();
        let timeout = self.cfg.export_timeout;
        let deadline = Instant::now() + timeout * 2;
        let exports = async move {
            let mut results = Vec::new();
            let Ok(exporter) = exporter else {
                return results;
            };
            for batch in batches {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    results.push(ExportResult {
                        exported: 0,
                        failed: batch.len() as u64,
                        error: Some("flush deadline passed".into()),
                    });
                    continue;
                }
                results.push(export(exporter.clone(), batch, left.min(timeout)).await);
            }
            // Wait for a background export still running (it holds the exporter).
            drop(exporter.lock().await);
            results
        };
        Box::pin(
            actix::fut::wrap_future::<_, Running<Self>>(exports).map(|results, act, _| {
                for r in results {
                    act.count(r);
                }
                eprintln!("[{}] {}", act.cfg.run_id, act.stats.summary());
                if let Err(e) = &act.exporter {
                    return Err(e.clone());
                }
                match (act.stats.lost(), &act.last_error) {
                    (0, _) => Ok(()),
                    (n, Some(e)) => Err(format!("{n} spans lost; last export error: {e}")),
                    (n, None) => Err(format!("{n} spans lost (queue full)")),
                }
            }),
        )
    }

    fn report(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        let s = &self.stats;
        m.insert(
            "spans_exported".into(),
            s.exported.load(Ordering::Relaxed).into(),
        );
        m.insert(
            "spans_dropped".into(),
            s.dropped.load(Ordering::Relaxed).into(),
        );
        m.insert(
            "spans_failed".into(),
            s.failed.load(Ordering::Relaxed).into(),
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Outcome, RequestFinished, RunStarted, TokenSource, TraceContext};
    use std::net::TcpListener;

    fn request(i: u8) -> RequestFinished {
        RequestFinished {
            id: format!("r{i}"),
            step: 1,
            scheduled_at: 0,
            sent_at: 10,
            first_token_at: Some(20),
            end_at: 30,
            chunk_offsets_us: vec![0],
            prompt_tokens: 1,
            requested_output_tokens: None,
            output_tokens: 1,
            output_tokens_source: TokenSource::Server,
            server_prompt_tokens: None,
            server_completion_tokens: None,
            server_cached_tokens: None,
            outcome: Outcome::Ok,
            http_status: Some(200),
            error: None,
            finish_reason: None,
            response_model: None,
            output_text: None,
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: Some(TraceContext {
                trace_id: [i + 1; 16],
                span_id: [i + 1; 8],
                sampled: true,
            }),
        }
    }

    /// A full queue drops and counts; a dead collector fails and counts; the flush still
    /// answers, quickly, with the loss in its error.
    #[actix_rt::test]
    async fn full_queue_and_dead_collector_are_counted_not_waited_for() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        }; // closed again: nothing listens there
        let mut cfg = OtlpConfig::new("run", "m", "chat", "http://127.0.0.1:1");
        cfg.endpoint = Some(format!("http://127.0.0.1:{port}"));
        cfg.queue_capacity = 2;
        cfg.batch_size = 100;
        cfg.export_interval = Duration::from_secs(3600);
        let mut registry = SinkRegistry::new();
        let started = start(cfg, &mut registry).unwrap();
        let sink = &started.sink;
        let run = Event::RunStarted(Arc::new(RunStarted {
            run_id: "run".into(),
            anchor_unix_nanos: 1_700_000_000_000_000_000,
        }));
        assert!(sink.offer(run).is_none());
        for i in 0..5 {
            assert!(sink.offer(Event::Request(Arc::new(request(i)))).is_none());
        }
        let t = Instant::now();
        let reply = sink.flush(RunStatus::Completed).await.result;
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let err = reply.unwrap_err();
        assert!(err.contains("6 spans lost"), "{err}");
        let s = &started.stats;
        // 3 requests and the run span did not fit; the 2 queued ones failed to export.
        assert_eq!(s.dropped.load(Ordering::Relaxed), 4);
        assert_eq!(s.failed.load(Ordering::Relaxed), 2);
        assert_eq!(s.exported.load(Ordering::Relaxed), 0);
        assert_eq!(
            s.summary(),
            "OTLP traces: 0 spans exported, 4 dropped (queue full), 2 failed to export"
        );
        registry.into_parts().1.stop();
    }

    #[test]
    fn bad_endpoints_are_configuration_errors() {
        let arbiter = actix_rt::System::new();
        arbiter.block_on(async {
            let mut cfg = OtlpConfig::new("run", "m", "chat", "http://127.0.0.1:1");
            cfg.endpoint = Some("127.0.0.1:4318".into());
            let mut registry = SinkRegistry::new();
            assert!(start(cfg, &mut registry).is_err());
        });
    }

    /// The contract against a collector that is not there: every span is counted (as failed),
    /// the flush answers with the loss, and the report says so.
    #[actix_rt::test]
    async fn keeps_the_sink_contract() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut cfg = OtlpConfig::new("run", "m", "chat", "http://127.0.0.1:1");
        cfg.endpoint = Some(format!("http://127.0.0.1:{port}"));
        cfg.export_timeout = Duration::from_millis(500);
        let stats = Arc::new(OtlpStats::default());
        let st = stats.clone();
        let outcome = crate::testing::check_sink_contract(move || OtlpSink::new(cfg, st)).await;
        assert!(outcome.flush.is_err(), "{:?}", outcome.flush);
        assert_eq!(outcome.report["dropped_events"], 0);
        let spans = ["spans_exported", "spans_dropped", "spans_failed"]
            .iter()
            .map(|k| outcome.report[*k].as_u64().unwrap())
            .sum::<u64>();
        assert!(spans > 0, "{:?}", outcome.report);
        assert_eq!(spans, stats.exported.load(Ordering::Relaxed) + stats.lost());
    }
}
