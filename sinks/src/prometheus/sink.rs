//! The Prometheus sink, on its arbiter: updates the metrics from the Recorder's events, pushes to
//! the Pushgateway every `push_interval` and once more at the final flush. A failing gateway is
//! logged and counted, never fatal.
//!
//! Exact: its buffer blocks (`BufferPolicy::Block`) rather than drop, so its counters equal the
//! results; its work per event is a few counter updates, so the buffer never fills in practice.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::OwnedMutexGuard;

use super::config::PrometheusConfig;
use super::gauges::LiveGauges;
use super::metrics::Metrics;
use super::server::MetricsServer;
use crate::event::Event;
use crate::json::report::RunStatus;
use crate::live::{BufferConfig, FlushFuture, LiveSink, Sink, SinkContext, SinkRegistry};

/// A push that takes longer than this has failed (the next one starts from scratch).
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PrometheusSink {
    metrics: Arc<Metrics>,
    push_url: Option<String>,
    push_interval: Duration,
    /// Built on the sink arbiter (`awc::Client` is not `Send`).
    client: Option<awc::Client>,
    /// Held by the push under way: pushes never overlap, so an older exposition can never land
    /// on the gateway after a newer one (the final push waits for a periodic one to end).
    gate: Arc<tokio::sync::Mutex<()>>,
    ticker: Option<SpawnHandle>,
}

/// The running sink, and where `/metrics` is served (the real port when 0 was asked for).
pub struct Started {
    pub sink: LiveSink,
    pub listening: Option<std::net::SocketAddr>,
}

/// Builds the metrics, binds `/metrics` if asked (errors here are configuration errors: nothing
/// has run yet) and starts the sink in `registry`.
pub fn start(
    cfg: PrometheusConfig,
    gauges: Arc<LiveGauges>,
    registry: &mut SinkRegistry,
) -> Result<Started, String> {
    let metrics = Arc::new(
        Metrics::new(cfg.const_labels(), gauges).map_err(|e| format!("prometheus metrics: {e}"))?,
    );
    let server = match cfg.listen {
        Some(addr) => Some(MetricsServer::start(addr, metrics.clone())?),
        None => None,
    };
    let listening = server.as_ref().map(MetricsServer::addr);
    let push_url = cfg.push_url();
    let push_interval = cfg.push_interval;
    let sink = registry.start(BufferConfig::block(), move || {
        if let Some(server) = server {
            // `/metrics` lives as long as the sink's arbiter, not the sink: the last scrapes
            // (the linger) come after the final flush. Stopping the arbiter drops this task, and
            // with it the server.
            actix_rt::spawn(async move {
                let _server = server;
                std::future::pending::<()>().await;
            });
        }
        PrometheusSink::new(metrics, push_url, push_interval)
    });
    Ok(Started { sink, listening })
}

impl PrometheusSink {
    /// Call on the sink's arbiter (see [`SinkRegistry::start`]).
    pub fn new(metrics: Arc<Metrics>, push_url: Option<String>, push_interval: Duration) -> Self {
        PrometheusSink {
            metrics,
            push_url,
            push_interval: push_interval.max(Duration::from_millis(100)),
            client: None,
            gate: Arc::new(tokio::sync::Mutex::new(())),
            ticker: None,
        }
    }
}

impl PrometheusSink {
    /// One PUT of the whole exposition (replacing the run's group on the gateway), once `gate`
    /// gives the turn; the values are read then, so they are never older than a previous push's.
    fn push<G>(&self, gate: G) -> impl Future<Output = Result<(), String>> + 'static
    where
        G: Future<Output = OwnedMutexGuard<()>> + 'static,
    {
        let request = match (&self.client, &self.push_url) {
            (Some(c), Some(url)) => Some((c.put(url.as_str()), url.clone())),
            _ => None,
        };
        let metrics = self.metrics.clone();
        async move {
            let _turn = gate.await;
            let Some((request, url)) = request else {
                return Ok(());
            };
            let body = metrics.encode()?;
            let response = request
                .insert_header(("content-type", "text/plain; version=0.0.4"))
                .send_body(body)
                .await
                .map_err(|e| format!("push to {url}: {e}"))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("push to {url}: HTTP {}", response.status()))
            }
        }
    }

    fn note(&self, result: Result<(), String>) {
        if let Err(e) = result {
            log::warn!("prometheus: {e}");
            self.metrics.push_failed();
        }
    }
}

impl Sink for PrometheusSink {
    const NAME: &'static str = "prometheus";

    fn start(&mut self, ctx: &mut SinkContext<Self>) {
        if self.push_url.is_some() {
            self.client = Some(awc::Client::builder().timeout(PUSH_TIMEOUT).finish());
            let handle = ctx.run_interval(self.push_interval, |act, ctx| {
                // One push at a time: a slow gateway must not pile requests up.
                let Ok(guard) = act.gate.clone().try_lock_owned() else {
                    return;
                };
                let push = act.push(std::future::ready(guard));
                ctx.spawn(push.into_actor(act).map(|result, act, _| act.note(result)));
            });
            self.ticker = Some(handle);
        }
    }

    fn on_event(&mut self, event: &Event, _: &mut SinkContext<Self>) {
        self.metrics.observe(event);
    }

    /// Pushes the final values. `/metrics` keeps serving until the sink's arbiter stops, so a
    /// scrape after the run still sees them.
    fn flush(&mut self, _: RunStatus, ctx: &mut SinkContext<Self>) -> FlushFuture<Self> {
        if let Some(t) = self.ticker.take() {
            ctx.cancel_future(t);
        }
        let push = self.push(self.gate.clone().lock_owned());
        Box::pin(
            actix::fut::wrap_future::<_, crate::live::Running<Self>>(push).map(|result, act, _| {
                if result.is_err() {
                    act.metrics.push_failed();
                }
                result
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Outcome, RequestFinished, TokenSource};
    use std::collections::BTreeMap;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn request(outcome: Outcome) -> RequestFinished {
        RequestFinished {
            id: "r".into(),
            step: 1,
            scheduled_at: 0,
            sent_at: 1_000,
            first_token_at: Some(2_000_000),
            end_at: 9_000_000,
            chunk_offsets_us: vec![2_000, 5_000],
            prompt_tokens: 7,
            requested_output_tokens: None,
            output_tokens: 2,
            output_tokens_source: TokenSource::Server,
            server_prompt_tokens: None,
            server_completion_tokens: None,
            server_cached_tokens: None,
            outcome,
            http_status: None,
            error: None,
            finish_reason: None,
            response_model: None,
            output_text: None,
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: None,
        }
    }

    /// Accepts one HTTP request, answers 200, hands back the request's text.
    fn fake_gateway() -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            // Headers, then the body by its Content-Length.
            loop {
                let n = conn.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len || n == 0 {
                        break;
                    }
                }
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&got).to_string()
        });
        (url, handle)
    }

    /// The value of the `requests_total` sample carrying every label of `labels` (in any order).
    fn sample(text: &str, labels: &[&str]) -> Option<f64> {
        text.lines()
            .filter(|l| l.starts_with("inference_benchmarker_requests_total{"))
            .find(|l| labels.iter().all(|p| l.contains(p)))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    fn get(addr: std::net::SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_events_and_pushes_them_at_the_final_flush() {
        let (gateway, received) = fake_gateway();
        let system = actix_rt::System::new();
        let (scraped, flushed) = system.block_on(async move {
            let cfg = PrometheusConfig {
                listen: Some("127.0.0.1:0".parse().unwrap()),
                pushgateway: Some(gateway),
                // Only the final flush pushes within this test.
                push_interval: Duration::from_secs(3600),
                run_id: "unit".into(),
                model: "m".into(),
                profile: "none".into(),
                benchmark_kind: "rate".into(),
                extra_meta: BTreeMap::new(),
                shard: None,
            };
            let mut registry = SinkRegistry::new();
            let started = start(cfg, Arc::new(LiveGauges::new(1)), &mut registry).unwrap();
            for o in [Outcome::Ok, Outcome::Ok, Outcome::Http5xx] {
                let e = Event::Request(Arc::new(request(o)));
                assert!(started.sink.offer(e).is_none());
            }
            let flushed = started.sink.flush(RunStatus::Completed).await.result;
            let addr = started.listening.unwrap();
            let scraped = actix_rt::task::spawn_blocking(move || get(addr))
                .await
                .unwrap();
            registry_threads(registry);
            (scraped, flushed)
        });
        assert_eq!(flushed, Ok(()));
        assert!(scraped.starts_with("HTTP/1.0 200"), "{scraped}");
        assert!(scraped.contains("text/plain; version=0.0.4"), "{scraped}");
        let ok = [
            "outcome=\"ok\"",
            "run_id=\"unit\"",
            "model=\"m\"",
            "profile=\"none\"",
        ];
        assert_eq!(sample(&scraped, &ok), Some(2.0), "{scraped}");
        let pushed = received.join().unwrap();
        assert!(
            pushed.starts_with(
                "PUT /metrics/job/inference-benchmarker/run_id@base64/dW5pdA HTTP/1.1"
            ),
            "{pushed}"
        );
        assert_eq!(sample(&pushed, &ok), Some(2.0), "{pushed}");
        assert_eq!(sample(&pushed, &["outcome=\"http_5xx\""]), Some(1.0));
    }

    fn registry_threads(registry: SinkRegistry) {
        registry.into_parts().1.stop();
    }

    /// The contract, with the counters checked against what was fed: exact, nothing dropped.
    #[actix_rt::test]
    async fn keeps_the_sink_contract() {
        let gauges = Arc::new(LiveGauges::new(1));
        let metrics = Arc::new(Metrics::new(Default::default(), gauges).unwrap());
        let m = metrics.clone();
        let outcome = crate::testing::check_sink_contract(move || {
            PrometheusSink::new(m, None, Duration::from_secs(3600))
        })
        .await;
        assert_eq!(outcome.flush, Ok(()));
        assert_eq!(outcome.report["dropped_events"], 0);
        let text = metrics.encode().unwrap();
        let total: f64 = text
            .lines()
            .filter(|l| l.starts_with("inference_benchmarker_requests_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(total, crate::testing::REQUESTS as f64, "warmup not counted");
    }
}
