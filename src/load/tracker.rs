//! Counts a step's requests in flight and its active schedulers, so the coordinator knows when
//! every request of the step has ended and been recorded (nothing is left behind at a boundary).

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

#[derive(Default)]
pub struct StepTracker {
    in_flight: AtomicU64,
    started: AtomicU64,
    /// Virtual users or rate tickers still running.
    sources: AtomicU64,
    idle: Notify,
}

impl StepTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// A request starts; returns its sequence number within the step.
    pub fn begin(&self) -> u64 {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.started.fetch_add(1, Ordering::Relaxed)
    }

    /// A request ended and its record was accepted by the recorder.
    pub fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.idle.notify_waiters();
    }

    pub fn source_started(&self) {
        self.sources.fetch_add(1, Ordering::AcqRel);
    }

    pub fn source_ended(&self) {
        self.sources.fetch_sub(1, Ordering::AcqRel);
        self.idle.notify_waiters();
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
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
        t.end();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one request is still in flight");
        t.end();
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("idle after the last request")
            .unwrap();
        assert_eq!(t.started(), 2);
    }
}
