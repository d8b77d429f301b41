//! Open loop: at each scheduled arrival, the `RateTicker` actor starts a `Request` actor on a
//! worker arbiter, until its schedule ends or its supervisor tells it to `Stop`. An arrival
//! that finds `max_vus` requests in flight is counted as dropped (k6's `dropped_iterations`), or,
//! with `--queue-when-saturated`, waits for a free slot in arrival order: its wait then counts
//! into its from-schedule latencies (it keeps its scheduled time). Nothing is skipped silently.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use actix::prelude::*;
use futures_util::FutureExt;
use sinks::event::{ArrivalDropped, ArrivalQueued, Nanos};
use sinks::recorder::{RecordDropped, RecordQueued};
use tokio::sync::watch;

use super::flag::Flag;
use super::in_flight::panic_message;
use super::schedule::Schedule;
use super::supervisor::{Child, ChildEnded, How, Pause, Resume, SetRate, Stop};
use super::StepContext;
use crate::load::request_actor::Request;
use crate::runtime::shutdown::Level;
use crate::runtime::workers::Workers;

/// The in-flight cap and what happens to an arrival that finds it full.
#[derive(Clone, Copy, Debug)]
pub struct Saturation {
    pub max_in_flight: u64,
    /// Queue the arrival (true) or drop it (false).
    pub queue: bool,
}

pub struct RateTicker {
    ctx: Arc<StepContext>,
    schedule: Option<Schedule>,
    plan: Saturation,
    workers: Arc<Workers>,
    /// Raised by `Stop`; the ticking task ends at once.
    stop: Arc<Flag>,
    /// Live control's pause and rate, read by the ticking task.
    pace: watch::Sender<Pace>,
    how: How,
}

/// What live control set: paused, and the rate arrivals come at (None: the schedule's own).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pace {
    pub paused: bool,
    pub rate: Option<f64>,
}

impl RateTicker {
    pub fn new(
        ctx: Arc<StepContext>,
        schedule: Schedule,
        plan: Saturation,
        workers: Arc<Workers>,
    ) -> Self {
        RateTicker {
            ctx,
            schedule: Some(schedule),
            plan,
            workers,
            stop: Arc::default(),
            pace: watch::channel(Pace::default()).0,
            how: How::Normal,
        }
    }
}

impl Actor for RateTicker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let step = self.ctx.clone();
        let Some(schedule) = self.schedule.take() else {
            ctx.stop();
            return;
        };
        let plan = self.plan;
        let (workers, told_to_stop) = (self.workers.clone(), self.stop.clone());
        let pace = self.pace.subscribe();
        // A panic ends the ticking (not the scheduler arbiter) and is reported as such.
        let fut = AssertUnwindSafe(async move {
            let control = Control {
                stop: &told_to_stop,
                pace,
            };
            tick(&step, schedule, plan, &workers, control).await
        })
        .catch_unwind();
        ctx.spawn(fut.into_actor(self).map(|ended, ticker, ctx| {
            if let Err(p) = ended {
                log::error!("the rate ticker panicked: {}", panic_message(p.as_ref()));
                ticker.how = How::Panicked;
            }
            ctx.stop()
        }));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.ctx.supervisor.do_send(ChildEnded {
            child: Child::Ticker,
            how: self.how,
        });
    }
}

impl Handler<Stop> for RateTicker {
    type Result = ();

    fn handle(&mut self, _: Stop, _: &mut Context<Self>) {
        self.stop.raise();
    }
}

impl Handler<Pause> for RateTicker {
    type Result = ();

    fn handle(&mut self, _: Pause, _: &mut Context<Self>) {
        self.pace.send_modify(|p| p.paused = true);
    }
}

impl Handler<Resume> for RateTicker {
    type Result = ();

    fn handle(&mut self, _: Resume, _: &mut Context<Self>) {
        self.pace.send_modify(|p| p.paused = false);
    }
}

impl Handler<SetRate> for RateTicker {
    type Result = ();

    fn handle(&mut self, SetRate(rate): SetRate, _: &mut Context<Self>) {
        self.pace.send_modify(|p| p.rate = Some(rate));
    }
}

/// What tells the ticking task to stop or change pace.
struct Control<'a> {
    stop: &'a Flag,
    pace: watch::Receiver<Pace>,
}

async fn tick(
    step: &Arc<StepContext>,
    mut schedule: Schedule,
    plan: Saturation,
    workers: &Workers,
    mut control: Control<'_>,
) {
    let clock = step.shared.clock;
    let tracker = &step.tracker;
    let stop = step.shared.shutdown.reached(Level::Stop);
    tokio::pin!(stop);
    let step_stop = control.stop.raised();
    tokio::pin!(step_stop);
    // A paused schedule's end still ends the ticking: nothing else would.
    let schedule_end = tokio::time::sleep_until(clock.instant(schedule.end()).into());
    tokio::pin!(schedule_end);
    let mut pace = Pace::default();
    // Where the schedule stood when it was paused (operational time).
    let mut paused_at_op = 0.0;
    let mut pace_open = true;
    // Arrivals that came due while the cap was full (queue mode), oldest first, with their
    // number in the step.
    let mut backlog: VecDeque<(Nanos, usize)> = VecDeque::new();
    let mut next = schedule.next_arrival();
    let mut seq = 0usize;
    loop {
        // Registered before the cap is checked, so a request ending in between still wakes us.
        let freed = tracker.ended();
        tokio::pin!(freed);
        freed.as_mut().enable();
        while tracker.in_flight() < plan.max_in_flight {
            let Some((at, k)) = backlog.pop_front() else {
                break;
            };
            start(step, workers, at, k, true);
        }
        tracker.set_waiting(backlog.len() as u64);
        if next.is_none() && backlog.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = &mut step_stop => break,
            _ = &mut schedule_end, if pace.paused => break,
            changed = control.pace.changed(), if pace_open => {
                if changed.is_err() {
                    pace_open = false;
                    continue;
                }
                let now = clock.now();
                let asked = *control.pace.borrow_and_update();
                if asked.paused && !pace.paused {
                    paused_at_op = schedule.op_at(now);
                } else if !asked.paused {
                    let op = if pace.paused { paused_at_op } else { schedule.op_at(now) };
                    let rate = asked.rate.unwrap_or(schedule.rate());
                    next = next.and(schedule.continue_at(now, op, rate));
                }
                pace = asked;
            }
            _ = &mut freed, if !backlog.is_empty() => {}
            _ = tokio::time::sleep_until(clock.instant(coarse_deadline(next)).into()), if next.is_some() && !pace.paused => {
                let at = next.take().unwrap_or(0);
                wait_precisely(&clock, at);
                let k = seq;
                seq += 1;
                next = schedule.next_arrival();
                if backlog.is_empty() && tracker.in_flight() < plan.max_in_flight {
                    start(step, workers, at, k, false);
                } else if plan.queue {
                    backlog.push_back((at, k));
                } else {
                    drop_arrival(step, at);
                }
            }
        }
    }
    // Stopped with arrivals still waiting: they were never sent.
    for (at, _) in backlog {
        drop_arrival(step, at);
    }
    tracker.set_waiting(0);
}

/// tokio's timer fires at the first whole millisecond after a deadline (and epoll waits whole
/// milliseconds), which would send every arrival ~1 ms late: the ticker wakes this much early
/// and sleeps the rest precisely.
const EARLY_WAKE_NS: Nanos = 2_000_000;

fn coarse_deadline(next: Option<Nanos>) -> Nanos {
    next.unwrap_or(0).saturating_sub(EARLY_WAKE_NS)
}

/// Blocks until `at` with the OS's high-resolution sleep. At most `EARLY_WAKE_NS`, on the
/// scheduler arbiter, whose thread runs only the rate tickers: no request waits on it.
fn wait_precisely(clock: &crate::runtime::clock::Clock, at: Nanos) {
    let now = clock.now();
    if at > now {
        std::thread::sleep(std::time::Duration::from_nanos(at - now));
    }
}

fn start(step: &Arc<StepContext>, workers: &Workers, at: Nanos, k: usize, queued: bool) {
    if queued {
        step.recorder.do_send(RecordQueued(ArrivalQueued {
            step: step.step,
            scheduled_at: at,
        }));
    }
    let job = step.arrival_job(at, k);
    let ctx = step.clone();
    Request::start_in_arbiter(&workers.next(), move |_| Request::new(job, ctx));
}

fn drop_arrival(step: &StepContext, at: Nanos) {
    step.tracker.dropped();
    step.recorder.do_send(RecordDropped(ArrivalDropped {
        step: step.step,
        scheduled_at: at,
    }));
}
