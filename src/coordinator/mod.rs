//! The `Coordinator` actor runs a benchmark: warmup, then its steps, then drain and flush.
//!
//! Each step's sources run under a `StepSupervisor` (load/supervisor.rs): the coordinator tells
//! it when sending ends and asks it when every child has ended. The actor itself handles live
//! control (`Control`): it checks a command against the step sending now, has the step's
//! supervisor carry it out, and records the change as an event.
//!
//! Shutdown order (end of run or signal): stop the schedulers → drain in-flight requests up to
//! the grace period, then cancel the rest (they report themselves `cancelled`) → requests that
//! ignore the cancel for a second are abandoned (dropped, each counted `cancelled` by its guard)
//! → a second more and the step closes whatever is left (`drain.rs`) → final flush of the
//! recorder, waiting for its reply → stop the arbiters.

pub mod drain;
pub mod generator;
pub mod health;
pub mod keep_alive;
pub mod plan;
pub mod preflight;
pub mod saturation;
pub mod signals;
pub mod step_line;

/// How often a running step's counters are checked for saturation.
const MONITOR_PERIOD: std::time::Duration = std::time::Duration::from_millis(250);
/// `ended_early` of a step stopped by SIGINT/SIGTERM.
const INTERRUPTED: &str = "interrupted by signal";
/// `ended_early` of a step ended by live control (not saturation: the sweep goes on).
pub const ENDED_BY_CONTROL: &str = "ended by hand (end_step)";

use std::sync::Arc;

use actix::prelude::*;
use actix_rt::Arbiter;
use sinks::event::{ControlEvent, StepKind, StepWindow};
use sinks::generator::GeneratorStats;
use sinks::handover::RecorderHandle;
use sinks::json::report::RunStatus;
use sinks::json::StepResult;
use sinks::live::SinkSet;
use sinks::prometheus::Phase;
use sinks::recorder::{
    FinishStep, Flush, RecordControl, RecordGenerator, RecordServerMetrics, RecordSinkReports,
    Recorder, StartStep,
};
use sinks::server_metrics::scraper::{
    BeginStep, EndSending, EndStep, FlushTimeseries, ScraperHandle, StepStarted,
};
use tokio::sync::{oneshot, watch};

use crate::config::{BenchmarkKind, RunConfig};
use crate::control::command::{Mode, StepControl};
use crate::control::{Control, Controls, LiveStep};
use crate::load::rate_ticker::Saturation;
use crate::load::schedule::Schedule;
use crate::load::supervisor::{Close, Sources, StepSupervisor, Stop};
use crate::load::tracker::StepTracker;
use crate::load::{RequestPool, StepContext};
use crate::request::client::RequestShared;
use crate::runtime::clock::Clock;
use crate::runtime::exit::RunError;
use crate::runtime::exit::RunSummary;
use crate::runtime::shutdown::{Level, Shutdown};
use crate::runtime::workers::{ClientSettings, Workers};
use generator::GeneratorProbe;
use plan::{rate_step, sweep_rates, StepPlan};
use saturation::{Limits, Monitor};

/// Everything the coordinator drives. Built by `lib::run` inside the actix System.
pub struct Engine {
    pub cfg: RunConfig,
    pub clock: Clock,
    pub shutdown: Shutdown,
    pub shared: Arc<RequestShared>,
    pub pool: Arc<RequestPool>,
    pub workers: Arc<Workers>,
    /// Runs the rate tickers, away from the request arbiters so arrivals are not delayed by
    /// stream handling.
    pub scheduler: Arbiter,
    /// The recorder's address and the requests' handover queue into it.
    pub recorder: RecorderHandle,
    /// Subscribed to the recorder; flushed after it, each waited for.
    pub live_sinks: SinkSet,
    /// Live values for the metrics (phase, in flight, users); the trackers write them.
    pub gauges: Arc<sinks::prometheus::LiveGauges>,
    pub settings: ClientSettings,
    /// Trace replay: arrival offsets of the workload's requests, in their order.
    pub arrivals: Option<Arc<[sinks::event::Nanos]>>,
    /// The step live control acts on, opened and closed by `run_step`.
    pub controls: Controls,
    /// Scrapes the server's metrics (none when off); marks each step's window.
    pub server_metrics: Option<ScraperHandle>,
}

pub struct Coordinator {
    engine: Option<Engine>,
    reply: Option<oneshot::Sender<Result<RunSummary, RunError>>>,
    controls: Controls,
    clock: Clock,
    recorder: Addr<Recorder>,
}

impl Coordinator {
    pub fn new(engine: Engine, reply: oneshot::Sender<Result<RunSummary, RunError>>) -> Self {
        Coordinator {
            controls: engine.controls.clone(),
            clock: engine.clock,
            recorder: engine.recorder.addr().clone(),
            engine: Some(engine),
            reply: Some(reply),
        }
    }
}

impl Actor for Coordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(engine) = self.engine.take() else {
            return;
        };
        let fut = async move { engine.run().await };
        // Spawned, not waited for: the actor handles `Control` while the run goes on.
        ctx.spawn(fut.into_actor(self).map(|result, act, ctx| {
            if let Some(reply) = act.reply.take() {
                let _ = reply.send(result);
            }
            ctx.stop();
        }));
    }
}

impl Handler<Control> for Coordinator {
    type Result = Result<ControlEvent, String>;

    fn handle(&mut self, msg: Control, _: &mut Context<Self>) -> Self::Result {
        let (step, (action, value)) = self.controls.apply(msg.command)?;
        let event = ControlEvent {
            at: self.clock.now(),
            step,
            action,
            value,
            source: msg.source.to_string(),
        };
        // Printed (the console shows it in its log) and recorded: a manual change is never
        // mistaken for the server's behaviour.
        eprintln!("control: step {step}: {event}");
        self.recorder.do_send(RecordControl(event.clone()));
        Ok(event)
    }
}

impl Engine {
    async fn run(self) -> Result<RunSummary, RunError> {
        let outcome = self.run_steps().await;
        let status = match &outcome {
            Ok(_) => RunStatus::Completed,
            Err(RunError::Interrupted { .. }) => RunStatus::Interrupted,
            Err(_) => RunStatus::Failed,
        };
        let flushed = self.recorder.send(Flush { status }).await;
        let path = match flushed {
            Ok(Ok(p)) => Some(p),
            Ok(Err(e)) => {
                log::error!("writing the results failed: {e}");
                None
            }
            Err(e) => {
                log::error!("the recorder is gone: {e}");
                None
            }
        };
        self.flush_live_sinks(status).await;
        self.scheduler.stop();
        self.mark(FlushTimeseries).await;
        if let Some(s) = &self.server_metrics {
            s.stop();
        }
        let workers = Arc::try_unwrap(self.workers).ok();
        if let Some(w) = workers {
            w.stop();
        }
        match outcome {
            Ok(steps) => match path {
                Some(results_path) => Ok(RunSummary {
                    results_path,
                    steps,
                }),
                None => Err(RunError::Internal(
                    "the results could not be written".into(),
                )),
            },
            Err(RunError::Interrupted { .. }) => Err(RunError::Interrupted { results: path }),
            Err(RunError::AllFailed { step, reason, .. }) => Err(RunError::AllFailed {
                step,
                reason,
                results: path,
            }),
            Err(RunError::ErrorRate { step, reason, .. }) => Err(RunError::ErrorRate {
                step,
                reason,
                results: path,
            }),
            Err(RunError::NothingMeasured { step, reason, .. }) => Err(RunError::NothingMeasured {
                step,
                reason,
                results: path,
            }),
            Err(e) => Err(e),
        }
    }

    async fn run_steps(&self) -> Result<Vec<StepResult>, RunError> {
        let mut queue: std::collections::VecDeque<StepPlan> =
            plan::initial_steps(&self.cfg, self.arrivals.as_ref())
                .map_err(RunError::Config)?
                .into();
        let mut results = Vec::new();
        let mut index = 0u32;
        while let Some(step) = queue.pop_front() {
            // The warmup is step 0; measured steps count from 1 whether or not there is a warmup.
            if step.kind != StepKind::Warmup && index == 0 {
                index = 1;
            }
            let result = self.run_step(index, &step).await?;
            index += 1;
            if let Some(r) = &result {
                report_step(r);
            }
            if self.shutdown.is_stopping() {
                return Err(RunError::Interrupted { results: None });
            }
            let Some(result) = result else { continue };
            if step.kind != StepKind::Warmup && result.total_requests == 0 {
                return Err(RunError::NothingMeasured {
                    step: result.id.clone(),
                    reason: nothing_measured(&result, step.duration),
                    results: None,
                });
            }
            if result.total_requests > 0 && result.successful_requests == 0 {
                return Err(RunError::AllFailed {
                    step: result.id.clone(),
                    reason: crate::coordinator::step_line::failure_summary(&result),
                    results: None,
                });
            }
            let over = saturation::over_error_rate(
                result.failed_requests,
                result.total_requests,
                self.cfg.max_error_rate,
                saturation::ErrorWindow::Step,
            );
            if let Some(why) = over {
                return Err(RunError::ErrorRate {
                    step: result.id.clone(),
                    reason: format!(
                        "{why}; {}",
                        crate::coordinator::step_line::failure_summary(&result)
                    ),
                    results: None,
                });
            }
            if step.kind == StepKind::Warmup {
                continue;
            }
            let saturated = result
                .ended_early
                .as_deref()
                .is_some_and(|why| why != ENDED_BY_CONTROL);
            if let (Some(rate), true) = (step.rate, saturated) {
                // Saturated (or failing) at this rate: higher rates would only grind on.
                let skipped = queue
                    .iter()
                    .filter(|s| s.rate.is_some_and(|r| r >= rate))
                    .count();
                queue.retain(|s| s.rate.is_none_or(|r| r < rate));
                if skipped > 0 {
                    eprintln!(
                        "  {} skipped: the server is saturated",
                        crate::runtime::text::count(
                            skipped as u64,
                            "higher rate step",
                            "higher rate steps"
                        )
                    );
                }
            }
            if step.kind == StepKind::Throughput && self.cfg.benchmark_kind == BenchmarkKind::Sweep
            {
                let rates = sweep_rates(result.sustained_request_rate(), self.cfg.num_rates);
                queue.extend(rates.into_iter().map(|r| rate_step(&self.cfg, r)));
            }
            results.push(result);
        }
        Ok(results)
    }

    async fn run_step(&self, index: u32, step: &StepPlan) -> Result<Option<StepResult>, RunError> {
        let info = step.info(index);
        log::info!("step {} ({}) starts", info.id, info.index);
        eprintln!(
            "[{}] step {} starts: {}",
            self.cfg.run_id,
            index,
            crate::coordinator::step_line::starting(step)
        );
        // The counters' baseline, before the step's first request; measured steps are also
        // cut in slices, as the recorder cuts their requests.
        let slices = self
            .cfg
            .slice_duration
            .filter(|_| step.kind != StepKind::Warmup)
            .map(|width| (width, step.duration));
        self.mark(BeginStep { slices }).await;
        // The step's start: its window, its arrivals and its slices count from here.
        let start = self.clock.now();
        if let Some(scraper) = &self.server_metrics {
            scraper.addr.do_send(StepStarted(self.clock.instant(start)));
        }
        send(&self.recorder, StartStep(info, start)).await?;
        self.gauges.set_phase(match step.kind {
            StepKind::Warmup => Phase::Warmup,
            StepKind::Throughput | StepKind::Rate => Phase::Step,
        });
        let tracker = Arc::new(StepTracker::with_gauges(
            self.gauges.clone(),
            step.rate.is_none(),
        ));
        let send_until = start + step.duration.as_nanos() as u64;
        let sources = match step.rate {
            None => Sources::Users {
                count: step.vus,
                send_until: self.clock.instant(send_until),
                workers: self.workers.clone(),
            },
            Some(rate) => {
                // Each step its own reproducible stream of arrivals.
                let seed = self.cfg.seed ^ (u64::from(index) << 32);
                let schedule = match &step.replay {
                    Some(offsets) => Schedule::replay(start, send_until, offsets.clone()),
                    None => Schedule::new(self.cfg.arrival, start, send_until, rate, seed)
                        .with_ramp(self.cfg.ramp_up),
                };
                Sources::Ticker {
                    schedule: Box::new(schedule),
                    plan: Saturation {
                        max_in_flight: step.vus,
                        queue: self.cfg.queue_when_saturated,
                    },
                    workers: self.workers.clone(),
                    arbiter: self.scheduler.handle(),
                }
            }
        };
        let supervisor = StepSupervisor::create(|sup| {
            let ctx = Arc::new(StepContext {
                step: index,
                run_id: self.cfg.request_id_prefix().into(),
                shared: self.shared.clone(),
                pool: self.pool.clone(),
                tracker: tracker.clone(),
                recorder: self.recorder.clone(),
                settings: self.settings.clone(),
                supervisor: sup.address(),
                hooks: self.cfg.test_hooks,
            });
            StepSupervisor::new(ctx, sources)
        });
        let mode = match (step.rate, &step.replay) {
            (None, _) => Mode::Closed {
                users: step.vus,
                max: self.cfg.max_vus,
            },
            (Some(_), Some(_)) => Mode::Replay,
            (Some(rate), None) => Mode::Open { rate },
        };
        let (live, control) = LiveStep::new(StepControl::new(index, mode), supervisor.clone());
        self.controls.open(live);
        let mut probe = GeneratorProbe::start(&self.gauges);
        let stopped_early = self
            .watch_sending(step, (start, send_until), &tracker, &mut probe, control)
            .await;
        self.controls.close();
        let send_end = self.clock.now().min(send_until);
        // At the window's natural end the sources stop on their own (a queued backlog is still
        // served); told to stop, they end now.
        if stopped_early.is_some() || self.shutdown.is_stopping() {
            supervisor.do_send(Stop);
        }
        // The gauges' last sample: they describe the sending window.
        self.mark(EndSending).await;
        self.gauges.set_phase(Phase::Drain);
        let ended_early_by_server = stopped_early
            .as_deref()
            .is_some_and(|why| why != ENDED_BY_CONTROL);
        let end = self
            .drain(index, &supervisor, &tracker, ended_early_by_server)
            .await;
        supervisor.do_send(Close);
        self.gauges.set_phase(Phase::Idle);
        let window = StepWindow {
            start,
            send_end,
            end: self.clock.now(),
        };
        let ended_early = match stopped_early {
            Some(reason) => Some(reason),
            None if self.shutdown.is_stopping() => Some(INTERRUPTED.to_string()),
            None => None,
        };
        let wall = window.end.saturating_sub(window.start) as f64 / 1e9;
        let stats = GeneratorStats {
            restarted_users: end.restarted_users,
            ..probe.finish(wall)
        };
        send(&self.recorder, RecordGenerator { step: index, stats }).await?;
        // The counters' last value: every request of the step has ended.
        if let Some(windows) = self.mark(EndStep).await.flatten() {
            send(
                &self.recorder,
                RecordServerMetrics {
                    step: index,
                    window: windows.step,
                    slices: windows.slices,
                },
            )
            .await?;
        }
        send(
            &self.recorder,
            FinishStep {
                step: index,
                window,
                ended_early,
            },
        )
        .await
    }

    /// Waits for the end of the step's sending window, checking a few times a second whether
    /// the step should end early (saturated or failing server). Returns the reason if it did.
    /// Live control ends the step (`end_step`), or changes it: the server is then judged afresh
    /// from the change, and not at all while paused.
    async fn watch_sending(
        &self,
        step: &StepPlan,
        (start, send_until): (u64, u64),
        tracker: &StepTracker,
        probe: &mut GeneratorProbe,
        mut control: watch::Receiver<StepControl>,
    ) -> Option<String> {
        let duration = step.duration.as_secs_f64();
        let cv2 = arrival_cv2(self.cfg.arrival, step.replay.is_some());
        let mut monitor = Monitor::new(step.rate, duration, self.limits())
            .arrival_cv2(cv2)
            .not_before(self.cfg.ramp_up.as_secs_f64());
        let mut paused = false;
        let window_end = tokio::time::sleep_until(self.clock.instant(send_until).into());
        tokio::pin!(window_end);
        let stop = self.shutdown.reached(Level::Stop);
        tokio::pin!(stop);
        let mut ticks = tokio::time::interval(MONITOR_PERIOD);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                // The window's end first: a check due at the same moment ends nothing early.
                biased;
                _ = &mut window_end => return None,
                _ = &mut stop => return None,
                Ok(()) = control.changed() => {
                    let now = *control.borrow_and_update();
                    if now.ending {
                        return Some(ENDED_BY_CONTROL.to_string());
                    }
                    paused = now.paused;
                    let offered = match now.mode {
                        Mode::Open { rate } => Some(rate),
                        Mode::Closed { .. } | Mode::Replay => None,
                    };
                    let t = self.clock.now().saturating_sub(start) as f64 / 1e9;
                    monitor = Monitor::new(offered, duration, self.limits())
                        .arrival_cv2(cv2)
                        .not_before(t + saturation::MIN_WINDOW_SECS);
                }
                _ = ticks.tick() => {
                    probe.sample(&self.gauges);
                    let t = self.clock.now().saturating_sub(start) as f64 / 1e9;
                    if paused {
                        continue;
                    }
                    if let Some(reason) = monitor.observe(t, tracker.progress()) {
                        log::warn!("step {} ends early: {reason}", step.id());
                        return Some(reason);
                    }
                }
            }
        }
    }

    /// A scrape of the server's metrics now, waited for (the scraper bounds it by its timeout);
    /// None when scraping is off or the scraper is gone.
    async fn mark<M>(&self, msg: M) -> Option<M::Result>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        sinks::server_metrics::scraper::Scraper: Handler<M>,
    {
        let scraper = self.server_metrics.as_ref()?;
        scraper.addr.send(msg).await.ok()
    }

    fn limits(&self) -> Limits {
        Limits {
            max_error_rate: self.cfg.max_error_rate,
            stop_when_saturated: self.cfg.stop_when_saturated,
        }
    }

    /// Every live sink pushes out what it holds (a failing sink is reported, never fatal: the
    /// results file is already written); then their reports, and the handover's, known only
    /// now, go into the results, which are rewritten.
    async fn flush_live_sinks(&self, status: RunStatus) {
        let mut reports = self.live_sinks.flush_all(status).await;
        reports.insert("results".into(), self.recorder.report());
        match self.recorder.send(RecordSinkReports(reports)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::error!("sink reports not written: {e}"),
            Err(e) => log::error!("the recorder is gone: {e}"),
        }
    }
}

/// The squared coefficient of variation of the gaps between a step's arrivals (a trace's are
/// taken as Poisson).
fn arrival_cv2(arrival: crate::config::arrival::Arrival, replay: bool) -> f64 {
    use crate::config::arrival::Arrival;
    match arrival {
        _ if replay => 1.0,
        Arrival::Constant => 0.0,
        Arrival::Poisson => 1.0,
        Arrival::Gamma { burstiness } => 1.0 / burstiness.max(1e-3),
    }
}

/// Why a step sent no request (pure).
fn nothing_measured(r: &StepResult, window: std::time::Duration) -> String {
    if r.dropped_arrivals > 0 {
        format!(
            "all {} of its arrivals were dropped (--max-vus requests were already in flight)",
            r.dropped_arrivals
        )
    } else {
        format!(
            "no request was sent in its {} sending window; give a longer --duration",
            humantime::format_duration(window)
        )
    }
}

async fn send<M>(recorder: &Addr<Recorder>, msg: M) -> Result<M::Result, RunError>
where
    M: Message + Send + 'static,
    M::Result: Send,
    Recorder: Handler<M>,
{
    recorder
        .send(msg)
        .await
        .map_err(|e| RunError::Internal(format!("the recorder stopped: {e}")))
}

fn report_step(r: &StepResult) {
    for line in crate::coordinator::step_line::lines(r) {
        eprintln!("{line}");
    }
}
