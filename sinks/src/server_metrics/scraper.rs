//! The `Scraper` actor: scrapes every server-metrics endpoint every interval, on an arbiter of
//! its own (never a request arbiter), into the running step's [`MetricsWindow`].
//!
//! The coordinator marks the step: [`BeginStep`] (a scrape now: the counters' baseline),
//! [`EndSending`] (a scrape now: the gauges' last sample) and [`EndStep`] (a scrape now, after
//! the step's last request ended: the counters' last value; replies with the window). Each mark
//! waits for its scrape, which is bounded by the timeout. A round that started before a mark
//! but answered after it is dropped, so a counter never goes back in time.
//!
//! Each round applied is also written, a line per endpoint, to the run's timeseries file
//! ([`Timeseries`], `timeseries.rs`), flushed at each [`EndStep`] and at [`FlushTimeseries`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::join_all;

use super::parse::{parse, Scrape};
use super::slice_windows::SliceWindows;
use super::timeseries::TimeseriesWriter;
use super::MetricsWindow;
use crate::prometheus::LiveGauges;

/// Largest exposition read (vLLM's is ~50 KiB; a node exporter's a few hundred KiB).
const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// What the scraper is given.
#[derive(Clone, Debug)]
pub struct ScraperConfig {
    pub endpoints: Vec<String>,
    pub interval: Duration,
    pub filter: Option<regex::Regex>,
    /// Where each round's requests waiting and KV-cache usage are published for the live
    /// console (two atomic stores: the console never holds the scraper up).
    pub live: Option<Arc<LiveGauges>>,
}

impl ScraperConfig {
    /// Each scrape's bound: below the interval, so rounds never pile up.
    pub fn timeout(&self) -> Duration {
        timeout_for(self.interval)
    }
}

/// 80 % of the interval, at most 5 s.
pub fn timeout_for(interval: Duration) -> Duration {
    interval.mul_f64(0.8).min(Duration::from_secs(5))
}

/// One GET of an endpoint: the parsed exposition, or why not (`404`, `connection refused`,
/// `timeout`, `not Prometheus: ...`).
pub async fn scrape(client: &awc::Client, url: &str, timeout: Duration) -> Result<Scrape, String> {
    let get = async {
        let mut resp = client
            .get(url)
            .insert_header(("Accept", "text/plain;version=0.0.4"))
            .send()
            .await
            .map_err(|e| match e {
                awc::error::SendRequestError::Connect(c) => format!("connection failed: {c}"),
                e => e.to_string(),
            })?;
        if !resp.status().is_success() {
            return Err(resp.status().as_u16().to_string());
        }
        let body = resp
            .body()
            .limit(BODY_LIMIT)
            .await
            .map_err(|e| e.to_string())?;
        let text =
            std::str::from_utf8(&body).map_err(|_| "not Prometheus: not UTF-8".to_string())?;
        parse(text).map_err(|e| e.replace("not a Prometheus exposition", "not Prometheus"))
    };
    tokio::time::timeout(timeout, get)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "timeout after {}",
                humantime::format_duration(timeout)
            ))
        })
}

/// `url` without the `user:password@` part, as written in the results.
pub fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
#[test]
fn credentials_are_not_written() {
    assert_eq!(
        without_credentials("http://u:p@h:9400/metrics"),
        "http://h:9400/metrics"
    );
    assert_eq!(without_credentials("http://h/a@b"), "http://h/a@b");
    assert_eq!(without_credentials("h:1"), "h:1");
}

/// Opens a step's window with a scrape.
#[derive(Message, Default)]
#[rtype(result = "()")]
pub struct BeginStep {
    /// `--slice-duration` and the step's planned sending time: the window is also cut in
    /// slices, which [`StepStarted`] then places in time.
    pub slices: Option<(Duration, Duration)>,
}

/// The step's start (its slices count from here).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StepStarted(pub Instant);

/// What [`EndStep`] returns: the step's window, and its slices' summaries by slice number.
#[derive(Debug)]
pub struct StepWindows {
    pub step: MetricsWindow,
    pub slices: Vec<(u64, super::ServerMetrics)>,
}

/// The step's sending window is over: a scrape, then gauges are no longer sampled.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndSending;

/// The step's last request ended: a scrape, then the window, closed.
#[derive(Message)]
#[rtype(result = "Option<StepWindows>")]
pub struct EndStep;

/// From now on every scrape is also a line of this file; times count from `anchor` (the run's
/// start).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Timeseries {
    pub writer: TimeseriesWriter,
    pub anchor: Instant,
}

/// The run is over: the timeseries file's buffer is written out.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlushTimeseries;

pub struct Scraper {
    cfg: ScraperConfig,
    timeout: Duration,
    /// Built on the scraper's arbiter (`awc::Client` is not `Send`).
    client: awc::Client,
    anchor: Instant,
    window: Option<MetricsWindow>,
    slices: Option<SliceWindows>,
    /// Which window a round belongs to, and the rounds' order.
    window_id: u64,
    next_round: u64,
    applied_round: u64,
    /// An interval round is under way: the next tick skips.
    busy: bool,
    /// Endpoints already warned about (once each).
    warned: Vec<bool>,
    /// The endpoints as written (without credentials).
    shown: Vec<String>,
    timeseries: Option<TimeseriesWriter>,
}

type Round = Vec<(usize, Result<Scrape, String>)>;

impl Scraper {
    pub fn new(cfg: ScraperConfig) -> Self {
        let timeout = cfg.timeout();
        Scraper {
            warned: vec![false; cfg.endpoints.len()],
            shown: cfg
                .endpoints
                .iter()
                .map(|u| without_credentials(u))
                .collect(),
            timeseries: None,
            client: awc::Client::builder().timeout(timeout).finish(),
            timeout,
            cfg,
            anchor: Instant::now(),
            window: None,
            slices: None,
            window_id: 0,
            next_round: 0,
            applied_round: 0,
            busy: false,
        }
    }

    /// Starts a round now; the future resolves with its answers, its window and order.
    fn round(&mut self) -> impl Future<Output = (u64, u64, f64, Round)> + 'static {
        self.next_round += 1;
        let (id, seq) = (self.window_id, self.next_round);
        let t = self.anchor.elapsed().as_secs_f64();
        let client = self.client.clone();
        let (urls, timeout) = (self.cfg.endpoints.clone(), self.timeout);
        async move {
            let answers = join_all(urls.iter().map(|u| scrape(&client, u, timeout))).await;
            (id, seq, t, answers.into_iter().enumerate().collect())
        }
    }

    fn apply(&mut self, round: (u64, u64, f64, Round)) {
        self.apply_as(round, true);
    }

    /// `sample`: false for the step's baseline round (its gauges are not the step's).
    fn apply_as(&mut self, (id, seq, t, round): (u64, u64, f64, Round), sample: bool) {
        for (e, r) in &round {
            if let (Err(why), false) = (r, self.warned[*e]) {
                self.warned[*e] = true;
                log::warn!(
                    "server metrics: {} failed ({why}); later failures are counted in each step's server_metrics.failed_scrapes",
                    without_credentials(&self.cfg.endpoints[*e])
                );
            }
        }
        if id != self.window_id || seq <= self.applied_round {
            return;
        }
        self.applied_round = seq;
        if let Some(ts) = self.timeseries.as_mut() {
            for (e, r) in &round {
                let r = r.as_ref().map_err(String::as_str);
                ts.write(t * 1e3, &self.shown[*e], r, self.cfg.filter.as_ref());
            }
        }
        let view: Vec<(usize, Option<&Scrape>)> =
            round.iter().map(|(e, r)| (*e, r.as_ref().ok())).collect();
        if let Some(live) = &self.cfg.live {
            let answers: Vec<Option<&Scrape>> = view.iter().map(|(_, s)| *s).collect();
            live.set_server(
                super::live::latest_gauge(&answers, "requests_waiting"),
                super::live::latest_gauge(&answers, "kv_cache_usage"),
            );
        }
        if let Some(slices) = self.slices.as_mut() {
            if sample {
                slices.observe(t, &view);
            } else {
                slices.observe_baseline(t, &view);
            }
        }
        let Some(window) = self.window.as_mut() else {
            return;
        };
        if sample {
            window.observe(t, &view);
        } else {
            window.observe_baseline(t, &view);
        }
    }

    fn close_gauges(&mut self) {
        if let Some(w) = self.window.as_mut() {
            w.close_gauges();
        }
        if let Some(s) = self.slices.as_mut() {
            s.close_gauges();
        }
    }
}

impl Actor for Scraper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.cfg.interval, |act, ctx| {
            if act.window.is_none() || act.busy {
                return;
            }
            act.busy = true;
            ctx.spawn(act.round().into_actor(act).map(|r, act, _| {
                act.busy = false;
                act.apply(r);
            }));
        });
    }
}

impl Handler<BeginStep> for Scraper {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: BeginStep, _: &mut Context<Self>) -> Self::Result {
        self.window_id += 1;
        self.window = Some(MetricsWindow::new(
            self.shown.clone(),
            self.cfg.filter.clone(),
        ));
        self.slices = msg.slices.map(|(width, planned)| {
            SliceWindows::new(self.shown.clone(), self.cfg.filter.clone(), width, planned)
        });
        Box::pin(
            self.round()
                .into_actor(self)
                .map(|r, act, _| act.apply_as(r, false)),
        )
    }
}

impl Handler<EndSending> for Scraper {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: EndSending, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.round().into_actor(self).map(|r, act, _| {
            act.apply(r);
            act.close_gauges();
        }))
    }
}

impl Handler<StepStarted> for Scraper {
    type Result = ();

    fn handle(&mut self, msg: StepStarted, _: &mut Context<Self>) {
        let t = secs_between(self.anchor, msg.0);
        if let Some(s) = self.slices.as_mut() {
            s.set_origin(t);
        }
    }
}

/// `at − from` in seconds, negative when `at` is earlier.
fn secs_between(from: Instant, at: Instant) -> f64 {
    match at.checked_duration_since(from) {
        Some(d) => d.as_secs_f64(),
        None => -from.duration_since(at).as_secs_f64(),
    }
}

impl Handler<EndStep> for Scraper {
    type Result = ResponseActFuture<Self, Option<StepWindows>>;

    fn handle(&mut self, _: EndStep, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.round().into_actor(self).map(|r, act, _| {
            act.apply(r);
            act.window_id += 1;
            if let Some(ts) = act.timeseries.as_mut() {
                ts.flush();
            }
            let slices = act.slices.take().map(SliceWindows::finish);
            act.window.take().map(|step| StepWindows {
                step,
                slices: slices.unwrap_or_default(),
            })
        }))
    }
}

impl Handler<Timeseries> for Scraper {
    type Result = ();

    fn handle(&mut self, msg: Timeseries, _: &mut Context<Self>) {
        self.anchor = msg.anchor;
        self.timeseries = Some(msg.writer);
    }
}

impl Handler<FlushTimeseries> for Scraper {
    type Result = ();

    fn handle(&mut self, _: FlushTimeseries, _: &mut Context<Self>) {
        if let Some(ts) = self.timeseries.as_mut() {
            ts.flush();
        }
    }
}

/// The scraper on an arbiter of its own; stopped at the end of the run.
pub struct ScraperHandle {
    pub addr: Addr<Scraper>,
    arbiter: actix_rt::Arbiter,
}

impl ScraperHandle {
    pub fn start(cfg: ScraperConfig) -> Self {
        let arbiter = actix_rt::Arbiter::new();
        // Built on its arbiter: the HTTP client belongs to that arbiter's runtime.
        let addr = Scraper::start_in_arbiter(&arbiter.handle(), move |_| Scraper::new(cfg));
        ScraperHandle { addr, arbiter }
    }

    pub fn stop(&self) {
        self.arbiter.stop();
    }
}

/// A run that fails before its coordinator starts drops the handle: its thread ends too.
impl Drop for ScraperHandle {
    fn drop(&mut self) {
        self.arbiter.stop();
    }
}
