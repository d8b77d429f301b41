//! The end of a step: waiting for its requests, with a progress line while it lasts, and
//! cancelling what is left when a stop or an early end says so (see [`Engine::drain`]).

use actix::prelude::*;

use super::Engine;
use crate::load::supervisor::{Abandon, AllEnded, StepEnd, StepSupervisor};
use crate::load::tracker::{AbandonReason, StepTracker};
use crate::runtime::clock::Clock;
use crate::runtime::shutdown::Level;

/// How long requests get to end after the cancel before they are abandoned.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// How often a drain that lasts says how it goes.
const DRAIN_PROGRESS: std::time::Duration = std::time::Duration::from_secs(5);
/// How long abandoned requests get to report their end before the step closes without them.
const ABANDON_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl Engine {
    /// Waits until the supervisor says every child of the step has ended, printing a progress
    /// line every [`DRAIN_PROGRESS`] (in flight, oldest age). Once a stop was asked for, waits
    /// at most the grace period, then cancels what is left (each cancelled request still
    /// reports); requests that ignore the cancel are abandoned after [`CANCEL_WAIT`] (each
    /// counted once, `cancelled`, by its guard), and the step closes after [`ABANDON_WAIT`] more
    /// whatever is left: the drain is bounded. A step that ended early (failing or saturated
    /// server) does not wait for a stop: its requests get the grace period, then the step drops
    /// them (counted cancelled) — waiting for every one could take up to the request timeout.
    pub(super) async fn drain(
        &self,
        step: u32,
        supervisor: &Addr<StepSupervisor>,
        tracker: &StepTracker,
        ended_early: bool,
    ) -> StepEnd {
        let all = supervisor.send(AllEnded);
        tokio::pin!(all);
        let mut progress = DrainProgress::new(step, self.clock);
        let grace = humantime::format_duration(self.cfg.shutdown_grace).to_string();
        if !ended_early {
            let next = format!(
                "waiting for them to end (up to --request-timeout {})",
                humantime::format_duration(self.cfg.request_timeout)
            );
            let stop = self.shutdown.reached(Level::Stop);
            if let Some(r) = progress.wait(&mut all, stop, tracker, &next).await {
                return r;
            }
        }
        let next = format!("cancelled after --shutdown-grace {grace}");
        let grace_over = tokio::time::sleep(self.cfg.shutdown_grace);
        if let Some(r) = progress.wait(&mut all, grace_over, tracker, &next).await {
            return r;
        }
        if ended_early && !self.shutdown.is_stopping() {
            // Only this step's requests: the run may go on (a sweep's lower rates are done).
            eprintln!(
                "  step {step}: {} still in flight after --shutdown-grace {grace}: cancelled",
                crate::runtime::text::count(tracker.in_flight(), "request", "requests")
            );
            supervisor.do_send(Abandon(AbandonReason::StepEndedEarly));
        } else {
            log::warn!(
                "{} requests still in flight after the {grace} grace period: cancelling them",
                tracker.in_flight(),
            );
            self.shutdown.raise(Level::Cancel);
            let next = "abandoned if they ignore the cancel";
            let cancel_wait = tokio::time::sleep(CANCEL_WAIT);
            if let Some(r) = progress.wait(&mut all, cancel_wait, tracker, next).await {
                return r;
            }
            log::warn!(
                "{} requests ignored the cancel for {}: abandoning them (counted cancelled)",
                tracker.in_flight(),
                humantime::format_duration(CANCEL_WAIT)
            );
            supervisor.do_send(Abandon(AbandonReason::AfterCancel));
        }
        let abandon_wait = tokio::time::sleep(ABANDON_WAIT);
        if let Some(r) = progress.wait(&mut all, abandon_wait, tracker, "").await {
            return r;
        }
        log::error!(
            "{} requests never reported their end: the step closes without them",
            tracker.in_flight()
        );
        StepEnd::default()
    }
}

/// The drain's progress lines: one every [`DRAIN_PROGRESS`] once it has lasted that long.
struct DrainProgress {
    step: u32,
    clock: Clock,
    started: tokio::time::Instant,
    next_line: tokio::time::Instant,
}

impl DrainProgress {
    fn new(step: u32, clock: Clock) -> Self {
        let started = tokio::time::Instant::now();
        DrainProgress {
            step,
            clock,
            started,
            next_line: started + DRAIN_PROGRESS,
        }
    }

    /// Waits for every child's end (`Some`, with the step's end) or for `until` (`None`),
    /// printing progress lines meanwhile; `next` says what happens to the requests after.
    async fn wait(
        &mut self,
        all: &mut std::pin::Pin<&mut actix::dev::Request<StepSupervisor, AllEnded>>,
        until: impl std::future::Future<Output = ()>,
        tracker: &StepTracker,
        next: &str,
    ) -> Option<StepEnd> {
        tokio::pin!(until);
        loop {
            tokio::select! {
                r = all.as_mut() => return Some(r.unwrap_or_else(|e| {
                    log::error!("step {}: its supervisor is gone ({e}): the step closes", self.step);
                    StepEnd::default()
                })),
                _ = &mut until => return None,
                _ = tokio::time::sleep_until(self.next_line) => {
                    let oldest = tracker
                        .oldest_begun()
                        .map(|t| self.clock.now().saturating_sub(t) as f64 / 1e9);
                    eprintln!(
                        "{}",
                        drain_line(self.step, self.started.elapsed().as_secs_f64(), tracker.in_flight(), oldest, next)
                    );
                    self.next_line += DRAIN_PROGRESS;
                }
            }
        }
    }
}

/// A drain's progress line (pure).
fn drain_line(
    step: u32,
    draining_s: f64,
    in_flight: u64,
    oldest_s: Option<f64>,
    next: &str,
) -> String {
    let mut line = format!(
        "  step {step} draining for {draining_s:.0} s: {} in flight",
        crate::runtime::text::count(in_flight, "request", "requests")
    );
    if let Some(age) = oldest_s {
        line.push_str(&format!(", the oldest sent {age:.1} s ago"));
    }
    if !next.is_empty() {
        line.push_str("; ");
        line.push_str(next);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_lines_say_how_many_how_old_and_what_next() {
        let line = drain_line(
            3,
            10.2,
            8630,
            Some(12.44),
            "cancelled after --shutdown-grace 10s",
        );
        assert_eq!(
            line,
            "  step 3 draining for 10 s: 8630 requests in flight, the oldest sent 12.4 s ago; \
             cancelled after --shutdown-grace 10s"
        );
        assert_eq!(
            drain_line(1, 5.0, 1, None, ""),
            "  step 1 draining for 5 s: 1 request in flight"
        );
    }
}
