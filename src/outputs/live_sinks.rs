//! The sink registry of a run: the results (the Recorder, which also writes the requests log)
//! and every live sink the configuration asks for — metrics, traces, the console — each started
//! on an arbiter of its own behind its buffer, and subscribed to the Recorder.
//!
//! Adding a live sink: implement `sinks::live::Sink`, then start it here from `RunConfig` with
//! `registry.start(buffer, make)` (see `sinks/README.md`).

use std::sync::Arc;
use std::time::Duration;

use sinks::live::{SinkRegistry, SinkSet, SinkThreads};
use sinks::prometheus::{LiveGauges, PrometheusConfig};
use sinks::recorder::Recorder;

use crate::config::RunConfig;
use crate::runtime::exit::RunError;
use crate::runtime::shutdown::{Level, Shutdown};

/// What the sinks may need beyond the configuration, known once the run is about to start.
pub struct RunContext<'a> {
    /// The model the requests name (given, or resolved from `/v1/models`).
    pub model: &'a str,
    /// Live values no event carries (requests in flight, users, phase, event-loop lag).
    pub gauges: &'a Arc<LiveGauges>,
    /// The run's stop signal (the console's `q` raises it).
    pub shutdown: &'a Shutdown,
    /// The Coordinator, for the console's live-control keys.
    pub control: actix::Recipient<crate::control::Control>,
}

/// A run's sinks, started: the Recorder (not yet started: the caller puts it on its arbiter),
/// subscribed to the live sinks, and the live sinks' threads.
pub struct Sinks {
    pub recorder: Recorder,
    pub live: SinkSet,
    pub threads: SinkThreads,
}

/// Builds every sink `cfg` turns on. A sink that cannot start (e.g. a port in use) is a
/// configuration error: the run has not begun, nothing is lost.
pub fn start_sinks(
    cfg: &RunConfig,
    run: &RunContext<'_>,
    mut recorder: Recorder,
) -> Result<Sinks, RunError> {
    recorder.set_slo(cfg.slo);
    recorder.set_batch_size(cfg.endpoint.is_pooling().then_some(cfg.batch_size));
    recorder.set_slice_duration(cfg.slice_duration);
    let mut registry = SinkRegistry::new();
    let started = start_live_sinks(cfg, run, &mut registry);
    let (live, threads) = registry.into_parts();
    if let Err(e) = started {
        threads.stop();
        return Err(e);
    }
    recorder.subscribe(&live);
    Ok(Sinks {
        recorder,
        live,
        threads,
    })
}

fn start_live_sinks(
    cfg: &RunConfig,
    run: &RunContext<'_>,
    registry: &mut SinkRegistry,
) -> Result<(), RunError> {
    if let Some(prom) = prometheus_config(cfg, run.model) {
        let started = sinks::prometheus::start(prom, run.gauges.clone(), registry)
            .map_err(RunError::Config)?;
        if let Some(addr) = started.listening {
            eprintln!(
                "[{}] Prometheus metrics on http://{addr}/metrics",
                cfg.run_id
            );
        }
    }
    if let Some(otlp) = otlp_config(cfg, run.model) {
        let where_ = otlp
            .exporter_endpoint()
            .unwrap_or_else(|| "the OTEL_EXPORTER_OTLP_* endpoint".into());
        let started = sinks::otlp::start(otlp, registry).map_err(RunError::Config)?;
        eprintln!("[{}] OTLP traces to {where_}", cfg.run_id);
        run.gauges.attach_traces(started.stats.clone());
    }
    for start in &cfg.extra_sinks.0 {
        start(registry);
    }
    // Last, so the lines above are printed before the console captures stderr.
    if crate::console::wanted(cfg) {
        let title = format!("inference-benchmarker → {}", run.model);
        let console = crate::console::start(
            title,
            run.gauges.clone(),
            run.shutdown.clone(),
            Some(run.control.clone()),
        );
        match console {
            Ok(make) => {
                registry.start(sinks::live::BufferConfig::drop_newest(), make);
            }
            Err(e) => eprintln!(
                "[{}] no live console ({e}): plain progress lines",
                cfg.run_id
            ),
        }
    }
    Ok(())
}

/// Whether traces are on: `--otlp-endpoint`, or the standard endpoint variables.
pub fn tracing_enabled(cfg: &RunConfig) -> bool {
    cfg.otlp_endpoint.is_some()
        || [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// The request path's trace sampler, when traces are on.
pub fn trace_sampler(cfg: &RunConfig) -> Option<sinks::otlp::TraceSampler> {
    if !tracing_enabled(cfg) {
        return None;
    }
    sinks::otlp::TraceSampler::new(cfg.trace_sample_ratio).ok()
}

/// The OTLP trace sink's settings, when traces are on.
pub fn otlp_config(cfg: &RunConfig, model: &str) -> Option<sinks::otlp::OtlpConfig> {
    if !tracing_enabled(cfg) {
        return None;
    }
    let operation = match cfg.endpoint {
        crate::config::Endpoint::Chat => "chat",
        crate::config::Endpoint::Completions => "text_completion",
        // OpenTelemetry GenAI operation names.
        crate::config::Endpoint::Responses => "chat",
        crate::config::Endpoint::Embeddings => "embeddings",
        crate::config::Endpoint::Rerank => "rerank",
    };
    let mut c = sinks::otlp::OtlpConfig::new(&cfg.run_id, model, operation, &cfg.url);
    c.endpoint = cfg.otlp_endpoint.clone();
    c.protocol = cfg.otlp_protocol;
    c.sample_ratio = cfg.trace_sample_ratio;
    c.token_events = cfg.trace_token_events;
    Some(c)
}

/// The Prometheus sink's settings, when `--prometheus-listen` or `--prometheus-pushgateway` is set.
pub fn prometheus_config(cfg: &RunConfig, model: &str) -> Option<PrometheusConfig> {
    if cfg.prometheus_listen.is_none() && cfg.prometheus_pushgateway.is_none() {
        return None;
    }
    let kind = serde_json::to_value(cfg.benchmark_kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    Some(PrometheusConfig {
        listen: cfg.prometheus_listen,
        pushgateway: cfg.prometheus_pushgateway.clone(),
        push_interval: cfg.prometheus_push_interval,
        run_id: cfg.run_id.clone(),
        model: model.to_string(),
        profile: cfg.profile.clone().unwrap_or_else(|| "none".into()),
        benchmark_kind: kind,
        extra_meta: cfg.extra_meta.clone(),
        shard: cfg.shard.map(|s| s.index),
    })
}

/// Keeps `/metrics` up after the run (`--prometheus-linger`), so the last scrape sees the final
/// values. A stop signal ends the wait at once; a run already stopped by one does not wait.
pub struct Linger {
    duration: Option<Duration>,
    shutdown: Shutdown,
}

impl Linger {
    pub fn new(cfg: &RunConfig, shutdown: &Shutdown) -> Linger {
        Linger {
            duration: cfg
                .prometheus_listen
                .map(|_| cfg.prometheus_linger)
                .filter(|d| !d.is_zero()),
            shutdown: shutdown.clone(),
        }
    }

    pub async fn wait(self) {
        let Some(d) = self.duration else { return };
        if self.shutdown.is_stopping() {
            return;
        }
        eprintln!(
            "serving the final metrics for {} more (Ctrl-C ends this)",
            humantime::format_duration(d)
        );
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = self.shutdown.reached(Level::Stop) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_only_when_asked() {
        let mut cfg = RunConfig::new("http://127.0.0.1:1");
        assert!(prometheus_config(&cfg, "m").is_none());
        cfg.prometheus_pushgateway = Some("http://127.0.0.1:9091".into());
        cfg.profile = Some("chat".into());
        let p = prometheus_config(&cfg, "m").unwrap();
        assert_eq!(p.benchmark_kind, "sweep");
        assert_eq!(p.profile, "chat");
        assert_eq!(p.model, "m");
        assert_eq!(p.listen, None);
    }

    #[test]
    fn linger_only_with_a_listener() {
        let shutdown = Shutdown::new();
        let mut cfg = RunConfig::new("http://127.0.0.1:1");
        assert!(Linger::new(&cfg, &shutdown).duration.is_none());
        cfg.prometheus_listen = Some("127.0.0.1:0".parse().unwrap());
        assert_eq!(
            Linger::new(&cfg, &shutdown).duration,
            Some(Duration::from_secs(30))
        );
    }
}
