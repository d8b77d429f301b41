//! Steady-state throughput (pure).
//!
//! A step's `request_rate` and `token_throughput_secs` divide by its whole duration, the drain
//! tail included, as the original tool does: after the sending window closes, load only falls,
//! and before the first request ends the server has not yet reached its load (an open loop's
//! in-flight count is still rising, a closed loop's first wave is still in prefill). A short
//! step then reports 16 req/s at an offered 20 with no error. The steady figures cover only the
//! part in between: from the end of the step's first request (a closed loop's first wave of
//! users) to the last request (a closed loop's last whole wave) that ended before its sending
//! window closed, so that a closed loop's rate is its users' cycle, exactly (see `finish`). Requests count there when they ended inside it, output tokens when they
//! arrived inside it (each text chunk carries its share of the request's tokens).
//!
//! Memory is bounded: counts go into time buckets whose width grows with the planned duration
//! (at most about [`MAX_BUCKETS`] over the sending window). The window is shrunk to whole
//! buckets, so what is counted and what it is divided by cover exactly the same time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{Nanos, RequestFinished, StepWindow};
use crate::paused::Pauses;

/// Buckets over the planned sending window; the drain tail adds a few more.
pub const MAX_BUCKETS: u64 = 2048;
/// The finest bucket: finer than this gains nothing against per-read timestamps.
const MIN_BUCKET_NS: u64 = 10_000_000;

/// What a step reports of its steady part.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SteadyState {
    /// Where the steady part starts, in whole milliseconds after the step's start.
    pub start_ms: u64,
    /// Its length, in whole milliseconds (the rates divide by the exact length).
    pub duration_ms: u64,
    /// Successful requests that ended in it, per second.
    pub request_rate: f64,
    /// Output tokens of successful requests that arrived in it, per second.
    pub token_throughput_secs: f64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// Successful requests that ended in it, and their tokens that arrived in it.
    requests: u64,
    tokens: u64,
    /// Requests that ended in it, whatever their outcome: where the waves are.
    ended: u64,
}

/// Counts a step's successful requests and their tokens over time.
#[derive(Clone, Debug)]
pub struct SteadyCounter {
    bucket_ns: u64,
    /// By `time / bucket_ns`.
    buckets: BTreeMap<u64, Bucket>,
    /// Completions in one wave: a closed loop's users, 1 for an open loop.
    wave: u64,
}

impl SteadyCounter {
    /// `planned_secs`: the step's planned sending window.
    pub fn new(planned_secs: f64) -> Self {
        let planned_ns = (planned_secs.max(0.0) * 1e9) as u64;
        SteadyCounter {
            bucket_ns: (planned_ns / MAX_BUCKETS).max(MIN_BUCKET_NS),
            buckets: BTreeMap::new(),
            wave: 1,
        }
    }

    /// A closed loop of `users`: its completions come in waves of that many.
    pub fn closed_loop(mut self, users: u64) -> Self {
        self.wave = users.max(1);
        self
    }

    /// Any finished request; only successful ones are counted.
    pub fn record(&mut self, r: &RequestFinished) {
        self.bucket(r.end_at).ended += 1;
        if !r.outcome.is_ok() {
            return;
        }
        self.bucket(r.end_at).requests += 1;
        let chunks = r.chunk_offsets_us.len() as u64;
        if chunks == 0 {
            self.bucket(r.end_at).tokens += r.output_tokens;
            return;
        }
        // Chunk i carries floor((i+1)·T/C) − floor(i·T/C) tokens: they sum to T exactly.
        let total = r.output_tokens;
        for (i, offset_us) in r.chunk_offsets_us.iter().enumerate() {
            let i = i as u64;
            let share = (i + 1) * total / chunks - i * total / chunks;
            if share > 0 {
                let at = r.sent_at + u64::from(*offset_us) * 1_000;
                self.bucket(at).tokens += share;
            }
        }
    }

    fn bucket(&mut self, at: Nanos) -> &mut Bucket {
        self.buckets.entry(at / self.bucket_ns).or_default()
    }

    /// The steady part of `window`, between two completions that end a wave: from the bucket
    /// of the `wave`-th completion (exclusive) to that of the last whole multiple of `wave`
    /// completions before sending stopped (inclusive). A closed loop's users all finish a first
    /// request before its window opens, and its window closes on a whole number of their
    /// cycles: its first wave is left out and the time after its last wave (all users in their
    /// next request) is not divided by, either of which would read low or high. An open loop
    /// (waves of 1) runs from its first completion to its last before sending stopped. `None`
    /// with fewer than two waves before sending stopped (requests longer than the step, or a
    /// closed loop's users that finished one request each). The buckets a pause touched are
    /// neither counted nor divided by.
    pub fn finish(&self, window: StepWindow, pauses: &Pauses) -> Option<SteadyState> {
        let sending = window.send_end / self.bucket_ns;
        let start = window.start / self.bucket_ns;
        if sending <= start {
            return None;
        }
        let ended: Vec<(u64, u64)> = self
            .buckets
            .range(start..sending)
            .filter(|(_, b)| b.ended > 0)
            .scan(0, |total, (k, b)| {
                *total += b.ended;
                Some((*k, *total))
            })
            .collect();
        let total = ended.last()?.1;
        // A closed loop's users need two whole waves: one to leave out, one to measure. Within
        // the first alone, completions come in a burst that no rate describes.
        if total < 2 * self.wave {
            return None;
        }
        let wave = self.wave;
        let last = total / wave * wave;
        let bucket_of = |n: u64| ended.iter().find(|(_, c)| *c >= n).map(|(k, _)| *k);
        let from = bucket_of(wave)? + 1;
        let to = bucket_of(last)? + 1;
        if to <= from {
            return None;
        }
        // Bucket ranges a pause touched, clipped to the steady part (pauses are in time order):
        // from the pause to the first request that ended after the resume, as the steady part
        // itself starts at the first end (the requests sent after it are still in flight).
        let paused: Vec<(u64, u64)> = pauses
            .spans(window.send_end)
            .map(|(a, b)| {
                let resumed = b.div_ceil(self.bucket_ns);
                let refilled = self
                    .buckets
                    .range(resumed..)
                    .find(|(_, bucket)| bucket.requests > 0)
                    .map_or(to, |(k, _)| *k);
                ((a / self.bucket_ns).max(from), refilled.min(to))
            })
            .filter(|(a, b)| a < b)
            .collect();
        let is_paused = |k: u64| paused.iter().any(|(a, b)| (*a..*b).contains(&k));
        let (requests, tokens) = self
            .buckets
            .range(from..to)
            .filter(|(k, _)| !is_paused(**k))
            .fold((0, 0), |(r, t), (_, b)| (r + b.requests, t + b.tokens));
        let mut paused_buckets = 0;
        let mut counted_to = from;
        for (a, b) in paused {
            let a = a.max(counted_to);
            paused_buckets += b.saturating_sub(a);
            counted_to = counted_to.max(b);
        }
        let buckets = to - from - paused_buckets;
        if buckets == 0 {
            return None;
        }
        let duration_ns = buckets * self.bucket_ns;
        let seconds = duration_ns as f64 / 1e9;
        Some(SteadyState {
            start_ms: (from * self.bucket_ns).saturating_sub(window.start) / 1_000_000,
            duration_ms: duration_ns / 1_000_000,
            request_rate: requests as f64 / seconds,
            token_throughput_secs: tokens as f64 / seconds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Outcome;

    const MS: u64 = 1_000_000;
    const NONE: Pauses = Pauses::none();

    /// A successful request sent at `sent_ms`, one token every 10 ms after a 100 ms TTFT.
    fn request(sent_ms: u64, tokens: u32) -> RequestFinished {
        let offsets: Vec<u32> = (0..tokens).map(|i| 100_000 + i * 10_000).collect();
        let mut r = crate::aggregate::tests::ok_request("r", 0);
        r.scheduled_at = sent_ms * MS;
        r.sent_at = sent_ms * MS;
        r.first_token_at = (tokens > 0).then_some(sent_ms * MS + 100 * MS);
        r.end_at = sent_ms * MS + u64::from(*offsets.last().unwrap_or(&0)) * 1_000;
        r.output_tokens = u64::from(tokens);
        r.chunk_offsets_us = offsets;
        r
    }

    fn window(start_ms: u64, send_end_ms: u64, end_ms: u64) -> StepWindow {
        StepWindow {
            start: start_ms * MS,
            send_end: send_end_ms * MS,
            end: end_ms * MS,
        }
    }

    /// An open loop at exactly 20 req/s for 10 s, each request 1 s long: the whole-step rate is
    /// diluted by the drain tail, the steady one is the offered rate.
    #[test]
    fn an_open_loop_at_its_offered_rate_is_steady_at_that_rate() {
        let mut c = SteadyCounter::new(10.0);
        for i in 0..200 {
            c.record(&request(1_000 + i * 50, 91));
        }
        // The step: 1 s .. 11 s sending, the last request ends at 12 s.
        let s = c.finish(window(1_000, 11_000, 12_000), &NONE).unwrap();
        assert_eq!(
            s.start_ms, 1_010,
            "from the bucket after the first request's end"
        );
        // The last request ending before 11 s ends at 10.95 s, in the bucket to 10.96 s.
        assert_eq!(s.duration_ms, 8_950);
        assert!((s.request_rate - 179.0 / 8.95).abs() < 1e-9, "{s:?}");
        assert!((s.request_rate - 20.0).abs() < 0.05, "{s:?}");
        assert!(
            (s.token_throughput_secs - 20.0 * 91.0).abs() < 0.01 * 20.0 * 91.0,
            "{s:?}"
        );
    }

    /// The same loop paused from 5 s to 7 s: nothing sent then, the requests in flight ended in
    /// the pause, the first sent after it ended a second later. The steady rate leaves out the
    /// pause and the refill after it: still the offered rate.
    #[test]
    fn a_paused_open_loop_is_steady_at_its_rate_over_its_unpaused_time() {
        let mut c = SteadyCounter::new(10.0);
        let sends = (0..200u64).map(|i| 1_000 + i * 50);
        for sent in sends.filter(|t| !(5_000..7_000).contains(t)) {
            c.record(&request(sent, 91));
        }
        let mut pauses = Pauses::default();
        for c in crate::paused::pause_and_resume(5_000, 7_000) {
            pauses.record(&c);
        }
        let s = c.finish(window(1_000, 11_000, 12_000), &pauses).unwrap();
        // From the bucket after the first end (1.01 s) to the last end before 11 s (10.95 s,
        // its bucket to 10.96 s), less 5 s .. 8 s (the first end after the resume).
        assert_eq!(s.duration_ms, 5_950);
        assert!((s.request_rate - 20.0).abs() < 0.1, "{s:?}");
        let unpaused = c.finish(window(1_000, 11_000, 12_000), &NONE).unwrap();
        // Without the pause: 139 requests over 8.95 s, 15.5 req/s.
        assert!(
            (unpaused.request_rate - 139.0 / 8.95).abs() < 0.1,
            "{unpaused:?}"
        );
    }

    #[test]
    fn tokens_count_when_they_arrived_and_sum_exactly() {
        let mut c = SteadyCounter::new(1.0);
        let mut r = request(0, 3);
        r.output_tokens = 7; // 3 chunks carrying 7 tokens: 2, 2, 3
        c.record(&r);
        let total: u64 = c.buckets.values().map(|b| b.tokens).sum();
        assert_eq!(total, 7);
        assert_eq!(c.buckets[&10].tokens, 2, "the first chunk, at 100 ms");
        assert_eq!(c.buckets[&12].tokens, 3, "the last chunk, at 120 ms");
    }

    #[test]
    fn failed_requests_mark_the_start_but_are_not_counted() {
        let mut c = SteadyCounter::new(10.0);
        let mut failed = request(0, 5);
        failed.outcome = Outcome::Http5xx;
        failed.end_at = 30 * MS;
        c.record(&failed);
        c.record(&request(100, 5));
        let s = c.finish(window(0, 1_000, 1_200), &NONE).unwrap();
        assert_eq!(
            s.start_ms, 40,
            "the bucket after the failure's end at 30 ms"
        );
        // The success ends at 240 ms: the window is 40..250 ms.
        assert!((s.request_rate - 1.0 / 0.21).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn no_steady_part_when_nothing_ended_before_sending_stopped() {
        let mut c = SteadyCounter::new(1.0);
        c.record(&request(0, 200)); // ends at 2.09 s, sending stopped at 1 s
        assert_eq!(c.finish(window(0, 1_000, 2_090), &NONE), None);
        assert_eq!(
            SteadyCounter::new(1.0).finish(window(0, 1_000, 1_000), &NONE),
            None
        );
    }

    /// A closed loop: 16 users whose requests take 250 ms ± 5 ms, over 10 s of sending. The
    /// users' cycle gives 64 req/s; the steady rate is within 1 % of it whatever the phase of
    /// the last wave against the window's end.
    #[test]
    fn a_closed_loop_is_steady_at_its_users_cycle() {
        for end_ms in [10_000, 10_060, 10_130, 10_199] {
            let mut c = SteadyCounter::new(10.0).closed_loop(16);
            for user in 0..16u64 {
                let mut t = 0;
                while t < end_ms {
                    let took = 245 + (user * 7 + t / 250) % 11;
                    let mut r = request(t, 10);
                    r.end_at = (t + took) * MS;
                    c.record(&r);
                    t += took;
                }
            }
            let s = c.finish(window(0, end_ms, end_ms + 300), &NONE).unwrap();
            let truth = 16.0 / 0.250;
            assert!(
                (s.request_rate / truth - 1.0).abs() < 0.01,
                "{end_ms}: {} vs {truth}",
                s.request_rate
            );
        }
    }

    /// 64 users whose first requests all end within 230 ms of each other, before a 2 s step's
    /// sending stops: one wave is no rate (it read 134 req/s against 18 for the step).
    #[test]
    fn a_closed_loop_with_one_wave_has_no_steady_part() {
        let mut c = SteadyCounter::new(2.0).closed_loop(64);
        for user in 0..64u64 {
            let mut r = request(0, 10);
            r.end_at = (1_000 + user * 230 / 64) * MS;
            c.record(&r);
        }
        assert_eq!(c.finish(window(0, 2_000, 2_500), &NONE), None);
    }

    #[test]
    fn buckets_are_bounded_by_the_planned_duration() {
        let c = SteadyCounter::new(86_400.0);
        assert!(c.bucket_ns >= 86_400 * 1_000_000_000 / MAX_BUCKETS);
        assert_eq!(SteadyCounter::new(5.0).bucket_ns, MIN_BUCKET_NS);
    }
}
