//! A step's progress counters (cheap atomics the saturation monitor and the rate ticker's
//! in-flight cap read) and its two one-way flags: sending stopped early (saturation, error rate)
//! and requests abandoned (still running after the cancel). When the step's requests have
//! *ended* is learned by messages (`supervisor.rs`), not from these counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use sinks::event::Nanos;
use sinks::prometheus::LiveGauges;

use tokio::sync::Notify;

use super::flag::Flag;

#[derive(Default)]
pub struct StepTracker {
    in_flight: AtomicU64,
    started: AtomicU64,
    ended_ok: AtomicU64,
    ended_failed: AtomicU64,
    /// The HTTP status of the step's first rejection (see [`Ending::rejected`]); 0: none yet.
    rejected_status: AtomicU64,
    /// Failures with exactly that status.
    rejected: AtomicU64,
    dropped: AtomicU64,
    /// Successful requests' time to first token (E2E when there is no stream): sum in µs, sum
    /// of squares in ms², count — the saturation check's view of a queue that grows.
    ttft_sum_us: AtomicU64,
    ttft_sq_ms: AtomicU64,
    ttft_n: AtomicU64,
    /// Successful requests' E2E latency sum in µs: how long the pipeline takes to fill.
    e2e_sum_us: AtomicU64,
    /// Arrivals due but waiting for a free slot (`--queue-when-saturated`).
    waiting: AtomicU64,
    /// Woken at each request end: a queued arrival may take the freed slot.
    freed: Notify,
    stop_sending: Flag,
    /// Raised when the drain gives up on requests that outlived the cancel, or when a step that
    /// ended early stops waiting for them: each still running is dropped and counts itself
    /// cancelled (`in_flight.rs`), with the reason in `abandon_reason`.
    abandon: Flag,
    abandon_reason: AtomicU8,
    /// When each request in flight began (ms since the run's anchor → how many): the drain's
    /// progress line names the oldest. Two uncontended lock operations per request.
    begun: Mutex<BTreeMap<u64, u32>>,
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
    /// Failures rejected with `rejected_status`, the status of the step's first rejection.
    pub rejected: u64,
    pub rejected_status: u16,
    /// Successful requests' time to first token (E2E without a stream): sum (µs), sum of
    /// squares (ms²), count; and their E2E sum (µs).
    pub ttft_sum_us: u64,
    pub ttft_sq_ms: u64,
    pub ttft_n: u64,
    pub e2e_sum_us: u64,
}

/// Why a step dropped the requests it still had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbandonReason {
    /// They outlived the cancel the drain sent them.
    AfterCancel,
    /// The step ended early (failing or saturated server) and they were still running after the
    /// grace period: waiting for them could take up to the request timeout.
    StepEndedEarly,
}

/// How a request ended, as far as the step's counters care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ending {
    pub ok: bool,
    pub http_status: Option<u16>,
    /// From send to end: a failure far faster than any real answer was refused at once.
    pub e2e_ns: u64,
    /// From send to the first token, if one came.
    pub ttft_ns: Option<u64>,
}

impl Ending {
    pub fn of(r: &sinks::event::RequestFinished) -> Ending {
        Ending {
            ok: r.outcome.is_ok(),
            http_status: r.http_status,
            e2e_ns: r.e2e_ns(),
            ttft_ns: r.ttft_ns(),
        }
    }

    /// The status of a failure that says the request itself is wrong (bad request, credentials,
    /// route or model, unprocessable body): another attempt fails the same way. 429 and 5xx are
    /// the server's state, not ours, and are measured.
    pub fn rejected(&self) -> Option<u16> {
        self.http_status
            .filter(|s| !self.ok && matches!(s, 400 | 401 | 403 | 404 | 422))
    }
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

    /// A request starts at `at`; returns its sequence number within the step.
    pub fn begin(&self, at: Nanos) -> u64 {
        *self.begun.lock().entry(at / 1_000_000).or_default() += 1;
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if let Some((g, _)) = &self.live {
            g.request_started();
        }
        self.started.fetch_add(1, Ordering::Relaxed)
    }

    /// A request begun at `begun_at` ended and its record was handed to the recorder (called by
    /// its `InFlight` guard only, so exactly once per request).
    pub(super) fn end(&self, ending: Ending, begun_at: Nanos) {
        {
            let mut begun = self.begun.lock();
            let key = begun_at / 1_000_000;
            if let Some(n) = begun.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    begun.remove(&key);
                }
            }
        }
        let counter = if ending.ok {
            &self.ended_ok
        } else {
            &self.ended_failed
        };
        if ending.ok {
            let first = ending.ttft_ns.unwrap_or(ending.e2e_ns);
            let ms = first / 1_000_000;
            self.ttft_sum_us.fetch_add(first / 1000, Ordering::Relaxed);
            self.ttft_sq_ms.fetch_add(ms * ms, Ordering::Relaxed);
            self.ttft_n.fetch_add(1, Ordering::Relaxed);
            self.e2e_sum_us
                .fetch_add(ending.e2e_ns / 1000, Ordering::Relaxed);
        }
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(status) = ending.rejected() {
            let first = match self.rejected_status.compare_exchange(
                0,
                u64::from(status),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => u64::from(status),
                Err(first) => first,
            };
            if first == u64::from(status) {
                self.rejected.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some((g, _)) = &self.live {
            g.request_ended();
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.freed.notify_waiters();
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
            rejected: self.rejected.load(Ordering::Relaxed),
            rejected_status: self.rejected_status.load(Ordering::Acquire) as u16,
            ttft_sum_us: self.ttft_sum_us.load(Ordering::Relaxed),
            ttft_sq_ms: self.ttft_sq_ms.load(Ordering::Relaxed),
            ttft_n: self.ttft_n.load(Ordering::Relaxed),
            e2e_sum_us: self.e2e_sum_us.load(Ordering::Relaxed),
        }
    }

    pub fn set_waiting(&self, n: u64) {
        self.waiting.store(n, Ordering::Relaxed);
    }

    /// Resolves at the next request end; enable it before checking a condition.
    pub fn ended(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    /// Ends the step's sending window now; in-flight requests still run to their end. Only the
    /// step's supervisor calls it (it also tells each source by message).
    pub(super) fn stop_sending(&self) {
        self.stop_sending.raise();
    }

    pub fn sending_stopped(&self) -> bool {
        self.stop_sending.is_raised()
    }

    /// Drops every request still running; each counts itself cancelled, for `why`.
    pub(super) fn abandon(&self, why: AbandonReason) {
        self.abandon_reason.store(why as u8, Ordering::Release);
        self.abandon.raise();
    }

    pub fn abandon_reason(&self) -> AbandonReason {
        match self.abandon_reason.load(Ordering::Acquire) {
            x if x == AbandonReason::StepEndedEarly as u8 => AbandonReason::StepEndedEarly,
            _ => AbandonReason::AfterCancel,
        }
    }

    /// When the oldest request still in flight began (ns since the run's anchor, to the ms).
    pub fn oldest_begun(&self) -> Option<Nanos> {
        self.begun.lock().keys().next().map(|ms| ms * 1_000_000)
    }

    pub fn abandoned(&self) -> bool {
        self.abandon.is_raised()
    }

    /// Resolves once the step's requests are abandoned.
    pub async fn abandoning(&self) {
        self.abandon.raised().await
    }

    /// The live gauge of virtual users (the supervisor counts its users itself).
    pub fn user_started(&self) {
        if let Some((g, true)) = &self.live {
            g.user_started();
        }
    }

    pub fn user_ended(&self) {
        if let Some((g, true)) = &self.live {
            g.user_ended();
        }
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Requests begun so far in the step.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_begun_and_ended_requests() {
        let t = StepTracker::new();
        assert_eq!(t.begin(5_000_000), 0);
        assert_eq!(t.begin(7_000_000), 1);
        assert_eq!(t.oldest_begun(), Some(5_000_000));
        t.end(ending(true, Some(200)), 5_000_000);
        let p = t.progress();
        assert_eq!((p.started, p.in_flight, p.ended_ok), (2, 1, 1));
        assert_eq!(t.oldest_begun(), Some(7_000_000), "the oldest left");
        t.end(ending(false, Some(503)), 7_000_000);
        let p = t.progress();
        assert_eq!((p.in_flight, p.ended_failed), (0, 1));
        assert_eq!(t.oldest_begun(), None);
    }

    fn ending(ok: bool, http_status: Option<u16>) -> Ending {
        Ending {
            ok,
            http_status,
            e2e_ns: 1_000_000,
            ttft_ns: None,
        }
    }

    #[test]
    fn rejections_of_one_status_are_counted() {
        let t = StepTracker::new();
        for status in [Some(404), Some(503), Some(404), Some(401), None] {
            t.begin(0);
            t.end(ending(false, status), 0);
        }
        t.begin(0);
        t.end(ending(true, Some(200)), 0);
        let p = t.progress();
        assert_eq!((p.rejected, p.rejected_status), (2, 404));
        assert_eq!((p.ended_failed, p.ended_ok), (5, 1));
        assert_eq!(
            ending(false, Some(429)).rejected(),
            None,
            "overload is measured"
        );
        assert_eq!(ending(false, Some(422)).rejected(), Some(422));
    }
}
