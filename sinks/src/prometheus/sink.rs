//! The Prometheus sink actor, on the sink arbiter: updates the metrics from the Recorder's
//! events, pushes to the Pushgateway every `push_interval` and once more at the final flush.
//! A failing gateway is logged and counted, never fatal.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_rt::ArbiterHandle;
use tokio::sync::OwnedMutexGuard;

use super::config::PrometheusConfig;
use super::gauges::LiveGauges;
use super::metrics::Metrics;
use super::server::MetricsServer;
use crate::live::{LiveSink, SinkEvent, SinkFlush};

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
/// has run yet) and starts the actor on `arbiter`.
pub fn start(
    cfg: PrometheusConfig,
    gauges: Arc<LiveGauges>,
    arbiter: &ArbiterHandle,
) -> Result<Started, String> {
    let metrics = Arc::new(
        Metrics::new(cfg.const_labels(), gauges).map_err(|e| format!("prometheus metrics: {e}"))?,
    );
    let server = match cfg.listen {
        Some(addr) => Some(MetricsServer::start(addr, metrics.clone())?),
        None => None,
    };
    let listening = server.as_ref().map(MetricsServer::addr);
    if let Some(server) = server {
        // `/metrics` lives as long as the sink arbiter, not the actor: the actor stops once the
        // coordinator drops its address, but the last scrapes (the linger) come after that.
        // Stopping the arbiter drops this task, and with it the server.
        arbiter.spawn(async move {
            let _server = server;
            std::future::pending::<()>().await;
        });
    }
    let push_url = cfg.push_url();
    let push_interval = cfg.push_interval.max(Duration::from_millis(100));
    let addr = PrometheusSink::start_in_arbiter(arbiter, move |_| PrometheusSink {
        metrics,
        push_url,
        push_interval,
        client: None,
        gate: Arc::new(tokio::sync::Mutex::new(())),
        ticker: None,
    });
    Ok(Started {
        sink: LiveSink::of("prometheus", &addr),
        listening,
    })
}

impl Actor for PrometheusSink {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
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

impl Handler<SinkEvent> for PrometheusSink {
    type Result = ();

    fn handle(&mut self, msg: SinkEvent, _: &mut Context<Self>) {
        self.metrics.observe(&msg.0);
    }
}

impl Handler<SinkFlush> for PrometheusSink {
    type Result = ResponseActFuture<Self, Result<(), String>>;

    /// Pushes the values as they are now (the final ones when `last`). `/metrics` keeps serving
    /// until the sink arbiter stops, so a scrape after the run still sees the final values.
    fn handle(&mut self, msg: SinkFlush, ctx: &mut Context<Self>) -> Self::Result {
        if msg.last {
            if let Some(t) = self.ticker.take() {
                ctx.cancel_future(t);
            }
        }
        let push = self.push(self.gate.clone().lock_owned());
        Box::pin(push.into_actor(self).map(|result, act, _| {
            if result.is_err() {
                act.metrics.push_failed();
            }
            result
        }))
    }
}
