//! Counts a step's requests in flight and its active schedulers, so the coordinator knows when
//! every request of the step has ended and been recorded (nothing is left behind at a boundary),
//! and lets it end the step's sending early (saturation, error rate) without stopping the run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sinks::prometheus::LiveGauges;

use tokio::sync::Notify;

#[derive(Default)]
pub struct StepTracker {
    in_flight: AtomicU64,
    started: AtomicU64,
    ended_ok: AtomicU64,
    ended_failed: AtomicU64,
    dropped: AtomicU64,
    /// Arrivals due but waiting for a free slot (`--queue-when-saturated`).
    waiting: AtomicU64,
    /// Virtual users or rate tickers still running.
    sources: AtomicU64,
    idle: Notify,
    stop_sending: AtomicBool,
    stopped: Notify,
    /// The run's live gauges (metrics), and whether this step's sources are virtual users.
    live: Option<(Arc<LiveGauges>, bool)>,
}

/// The step's counters at one moment (for the coordinator's saturation checks).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Progress {
    pub started: u64,
    pub in_flight: u64,
    pub ended_ok: u64,
    pub ended_failed: u64,
    pub dropped: u64,
    pub waiting: u64,
}

impl StepTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also counts requests in flight (and, for a closed loop, `sources` as virtual users) into
    /// the run's live gauges: one relaxed atomic add per change.
    pub fn with_gauges(gauges: Arc<LiveGauges>, closed_loop: bool) -> Self {
        StepTracker {
            live: Some((gauges, closed_loop)),
            ..Self::default()
        }
    }

    /// A request starts; returns its sequence number within the step.
    pub fn begin(&self) -> u64 {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if let Some((g, _)) = &self.live {
            g.request_started();
        }
        self.started.fetch_add(1, Ordering::Relaxed)
    }

    /// A request ended and its record was accepted by the recorder.
    pub fn end(&self, ok: bool) {
        let counter = if ok {
            &self.ended_ok
        } else {
            &self.ended_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some((g, _)) = &self.live {
            g.request_ended();
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.idle.notify_waiters();
    }

    /// An arrival could not start (the in-flight cap was reached).
    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn progress(&self) -> Progress {
        Progress {
            started: self.started.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Acquire),
            ended_ok: self.ended_ok.load(Ordering::Relaxed),
            ended_failed: self.ended_failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    pub fn set_waiting(&self, n: u64) {
        self.waiting.store(n, Ordering::Relaxed);
    }

    /// Resolves at the next request end (or source end); enable it before checking a condition.
    pub fn ended(&self) -> tokio::sync::futures::Notified<'_> {
        self.idle.notified()
    }

    /// Ends the step's sending window now; in-flight requests still run to their end.
    pub fn stop_sending(&self) {
        self.stop_sending.store(true, Ordering::Release);
        self.stopped.notify_waiters();
    }

    pub fn sending_stopped(&self) -> bool {
        self.stop_sending.load(Ordering::Acquire)
    }

    /// Resolves once `stop_sending` was called.
    pub async fn sending_stop(&self) {
        loop {
            let notified = self.stopped.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.sending_stopped() {
                return;
            }
            notified.await;
        }
    }

    pub fn source_started(&self) {
        if let Some((g, true)) = &self.live {
            g.user_started();
        }
        self.sources.fetch_add(1, Ordering::AcqRel);
    }

    pub fn source_ended(&self) {
        if let Some((g, true)) = &self.live {
            g.user_ended();
        }
        self.sources.fetch_sub(1, Ordering::AcqRel);
        self.idle.notify_waiters();
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }

    fn is_idle(&self) -> bool {
        self.sources.load(Ordering::Acquire) == 0 && self.in_flight() == 0
    }

    /// Resolves once no source runs and no request is in flight.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a wake-up between check and await is not lost.
            notified.as_mut().enable();
            if self.is_idle() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[actix_rt::test]
    async fn waits_for_sources_and_requests() {
        let t = Arc::new(StepTracker::new());
        t.source_started();
        assert_eq!(t.begin(), 0);
        assert_eq!(t.begin(), 1);
        let t2 = t.clone();
        let waiter = actix_rt::spawn(async move { t2.wait_idle().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        t.source_ended();
        t.end(true);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one request is still in flight");
        t.end(false);
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("idle after the last request")
            .unwrap();
        let p = t.progress();
        assert_eq!(
            (p.started, p.in_flight, p.ended_ok, p.ended_failed),
            (2, 0, 1, 1)
        );
    }

    #[actix_rt::test]
    async fn stop_sending_wakes_the_waiters() {
        let t = Arc::new(StepTracker::new());
        let t2 = t.clone();
        let waiter = actix_rt::spawn(async move { t2.sending_stop().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished() && !t.sending_stopped());
        t.stop_sending();
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert!(t.sending_stopped());
    }
}
