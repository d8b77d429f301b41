//! When to end a step early (pure): the server is saturated, or failing.
//!
//! The coordinator samples the step's counters a few times a second and asks `Monitor::observe`.
//! Failing, judged from the first requests on:
//!
//! - rejection: the first `MIN_REJECTED` or more finished requests all failed with the same
//!   status that says the request itself is wrong (400/401/403/404/422): every further request
//!   would fail the same way;
//! - error rate: more than `max_error_rate` of the step's finished requests failed (at least
//!   `MIN_FINISHED` finished).
//!
//! Saturated (open loop) is offered work beyond what the server serves, which shows as a queue
//! that grows. A fresh step's requests in flight grow too while its pipeline fills (and a
//! batching server's latency with its batch): for about one end-to-end latency, Little's law
//! (in flight ≈ rate × latency) is reached from below. So nothing is judged before the pipeline
//! has filled — twice the mean E2E latency of the step's requests so far, after its first
//! completion, and live control's changes and `--ramp-up` — and then over a window of at least
//! `MIN_WINDOW_SECS` of samples taken after it:
//!
//! - dropped arrivals: more than 1 % of the arrivals found `--max-vus` requests in flight;
//! - a queue that grows: the time to first token (E2E without a stream) of the requests that
//!   finished in the window's second half is significantly above the first half's (Welch's t ≥
//!   3 and at least 10 % + 20 ms more: waiting requests wait longer and longer), *and* requests
//!   in flight grow steadily (least-squares slope with t ≥ 4) by more than arrivals alone can
//!   vary (5 requests or a tenth of the mean, plus 3 standard deviations of the arrivals' count over
//!   the window: 0 for constant spacing, √(rate × window) for Poisson): in flight is arrivals
//!   less completions, and a server with room to spare serves a burst at its full rate, so only
//!   completions that stay below the offered rate make it grow beyond that. A server whose
//!   latency is random but bounded, or whose batch is still filling, keeps its first token on
//!   time.

use std::collections::VecDeque;

use crate::load::tracker::Progress;

/// Finished requests needed before an error rate means anything.
pub const MIN_FINISHED: u64 = 20;
/// Identical rejections, and nothing else, that end a step (and the run: nothing succeeded).
pub const MIN_REJECTED: u64 = 10;
/// The time to first token of a growing queue: its second half's mean over its first's...
const TTFT_GROWTH: f64 = 1.1;
/// ...plus this (ms), so that a few ms of jitter on a fast server is not a queue.
const TTFT_GROWTH_MS: f64 = 20.0;
/// Significance of that growth (Welch's t), and the requests each half needs to judge it.
const TTFT_T: f64 = 3.0;
const TTFT_MIN_REQUESTS: u64 = 5;
/// Standard deviations of the arrivals' count over the window that a growing queue must add.
const NOISE_SIGMAS: f64 = 3.0;
/// Share of arrivals dropped at the in-flight cap that is saturation.
pub const DROPPED_SHARE: f64 = 0.01;
/// Shortest observation window after the warm-in, in seconds.
pub const MIN_WINDOW_SECS: f64 = 2.0;
/// Samples kept (at 4 Hz: the last five minutes); bounded however long the step.
const MAX_SAMPLES: usize = 1200;
/// Requests in flight a growing queue adds over the window, at least.
const MIN_GROWTH: f64 = 5.0;
/// Significance of the in-flight trend.
const TREND_T: f64 = 4.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// End a step when more than this share of its finished requests failed (0..1).
    pub max_error_rate: Option<f64>,
    /// End an open-loop step when the server is saturated.
    pub stop_when_saturated: bool,
}

pub struct Monitor {
    offered: Option<f64>,
    /// The sending window: a check at or after its end ends nothing early.
    duration: f64,
    /// Nothing is judged before this (live control's last change, the ramp).
    not_before: f64,
    limits: Limits,
    /// Samples taken since the pipeline filled.
    samples: VecDeque<(f64, Progress)>,
    /// The squared coefficient of variation of the gaps between arrivals (constant 0, Poisson
    /// 1, gamma 1/shape): how much in-flight requests may grow by chance alone.
    arrival_cv2: f64,
}

impl Monitor {
    /// `offered`: the open-loop rate (None: closed loop).
    pub fn new(offered: Option<f64>, duration_secs: f64, limits: Limits) -> Self {
        Monitor {
            offered,
            duration: duration_secs,
            not_before: 0.0,
            limits,
            samples: VecDeque::new(),
            arrival_cv2: 1.0,
        }
    }

    /// The arrival process's squared coefficient of variation of its gaps (default 1: Poisson).
    pub fn arrival_cv2(mut self, cv2: f64) -> Self {
        self.arrival_cv2 = cv2.max(0.0);
        self
    }

    /// Judges no saturation before `secs` into the step (e.g. while the rate still ramps up).
    pub fn not_before(mut self, secs: f64) -> Self {
        self.not_before = self.not_before.max(secs);
        self
    }

    /// Takes one sample at `t` seconds into the step; returns why the step should end, if so.
    pub fn observe(&mut self, t: f64, p: Progress) -> Option<String> {
        if t >= self.duration {
            // The step ran its whole sending window (the step's end judges its error rate).
            return None;
        }
        if let Some(reason) = rejected(p).or_else(|| self.error_rate(p)) {
            return Some(reason);
        }
        let rate = self.offered.filter(|_| self.limits.stop_when_saturated)?;
        let filled = fill_time(&p)?.max(self.not_before);
        if t < filled {
            return None;
        }
        while self.samples.front().is_some_and(|(s, _)| *s < filled)
            || self.samples.len() >= MAX_SAMPLES
        {
            self.samples.pop_front();
        }
        self.samples.push_back((t, p));
        let (t0, _) = *self.samples.front()?;
        let window = t - t0;
        if window < MIN_WINDOW_SECS {
            return None;
        }
        if let Some(reason) = self.dropped(p, rate) {
            return Some(reason);
        }
        let waits = self.first_token_grows()?;
        self.trend(window, rate)
            .map(|why| format!("{why}, and the time to first token with them ({waits})"))
    }

    /// The mean time to first token of the window's first and second half, if the second is
    /// significantly longer (see the module docs).
    fn first_token_grows(&self) -> Option<String> {
        let (t0, first) = *self.samples.front()?;
        let (t1, last) = *self.samples.back()?;
        let middle = t0 + (t1 - t0) / 2.0;
        let (_, mid) = *self.samples.iter().find(|(t, _)| *t >= middle)?;
        let a = Waits::between(&first, &mid)?;
        let b = Waits::between(&mid, &last)?;
        let t = (b.mean - a.mean) / (a.var / a.n + b.var / b.n).sqrt().max(1e-9);
        (b.mean > TTFT_GROWTH * a.mean + TTFT_GROWTH_MS && t >= TTFT_T)
            .then(|| format!("{:.0} ms → {:.0} ms", a.mean, b.mean))
    }

    fn error_rate(&self, p: Progress) -> Option<String> {
        let finished = p.ended_ok + p.ended_failed;
        if finished < MIN_FINISHED {
            return None;
        }
        over_error_rate(
            p.ended_failed,
            finished,
            self.limits.max_error_rate,
            ErrorWindow::Running,
        )
    }

    fn dropped(&self, p: Progress, rate: f64) -> Option<String> {
        let arrivals = p.started + p.dropped;
        let share = p.dropped as f64 / arrivals.max(1) as f64;
        (p.dropped >= 5 && share > DROPPED_SHARE).then(|| {
            format!(
                "saturated: {} of {arrivals} arrivals ({:.1}%) found the in-flight cap full and were dropped at {rate:.2} req/s",
                p.dropped,
                share * 100.0
            )
        })
    }

    fn trend(&self, window: f64, rate: f64) -> Option<String> {
        let n = self.samples.len() as f64;
        if n < 8.0 {
            return None;
        }
        let xs = self.samples.iter().map(|(t, _)| *t);
        let ys = self.samples.iter().map(|(_, p)| backlog(p) as f64);
        let (mean_x, mean_y) = (xs.clone().sum::<f64>() / n, ys.clone().sum::<f64>() / n);
        let sxx: f64 = xs.clone().map(|x| (x - mean_x).powi(2)).sum();
        let sxy: f64 = xs
            .clone()
            .zip(ys.clone())
            .map(|(x, y)| (x - mean_x) * (y - mean_y))
            .sum();
        if sxx <= 0.0 {
            return None;
        }
        let slope = sxy / sxx;
        let intercept = mean_y - slope * mean_x;
        let residual: f64 = xs
            .zip(ys)
            .map(|(x, y)| (y - intercept - slope * x).powi(2))
            .sum();
        let stderr = (residual / (n - 2.0) / sxx).sqrt();
        let t_stat = if stderr > 0.0 {
            slope / stderr
        } else {
            f64::INFINITY
        };
        let growth = slope * window;
        let first = backlog(&self.samples.front()?.1);
        let last = backlog(&self.samples.back()?.1);
        // Arrivals alone vary by this much over the window (a renewal process's count); a
        // server with room to spare serves a burst at its full rate, so only a queue adds more.
        let chance = NOISE_SIGMAS * (self.arrival_cv2 * rate * window).sqrt();
        let matters = MIN_GROWTH.max(0.1 * mean_y) + chance;
        (slope > 0.0 && t_stat >= TREND_T && growth >= matters).then(|| {
            format!(
                "saturated: requests in flight grow without bound ({first} → {last} over {window:.1} s, +{slope:.1}/s): the server's queue keeps growing"
            )
        })
    }
}

/// Which requests an error rate is over: the same run says both, so each says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorWindow {
    /// While the step runs: the requests finished so far.
    Running,
    /// Once the step has ended: all its requests (those cancelled at its end included).
    Step,
}

/// Why `failed` of `of` requests (in `window`) is too many for `max` (a share; `None` or 1: no
/// limit).
pub fn over_error_rate(
    failed: u64,
    of: u64,
    max: Option<f64>,
    window: ErrorWindow,
) -> Option<String> {
    let max = max?;
    let share = failed as f64 / of.max(1) as f64;
    let which = match window {
        ErrorWindow::Running => {
            format!("while running ({failed} of the {of} requests finished so far failed)")
        }
        ErrorWindow::Step => format!("over the whole step ({failed} of all {of} requests failed)"),
    };
    (share > max).then(|| {
        format!(
            "error rate {:.1}% {which} is over --max-error-rate {:.1}%",
            share * 100.0,
            max * 100.0
        )
    })
}

/// Every finished request was refused the same way (see `Ending::rejected`).
fn rejected(p: Progress) -> Option<String> {
    (p.ended_ok == 0 && p.rejected >= MIN_REJECTED && p.rejected == p.ended_failed).then(|| {
        format!(
            "the server rejected all {} requests with HTTP {}: the configuration is wrong",
            p.rejected, p.rejected_status
        )
    })
}

/// When the step's pipeline is full: twice the mean E2E latency of its successful requests so
/// far (None before the first).
fn fill_time(p: &Progress) -> Option<f64> {
    (p.ttft_n > 0).then(|| 2.0 * p.e2e_sum_us as f64 / 1e6 / p.ttft_n as f64)
}

/// The first-token waits of the requests that succeeded between two samples (ms).
struct Waits {
    mean: f64,
    var: f64,
    n: f64,
}

impl Waits {
    fn between(from: &Progress, to: &Progress) -> Option<Waits> {
        let n = to.ttft_n.checked_sub(from.ttft_n)?;
        if n < TTFT_MIN_REQUESTS {
            return None;
        }
        let n = n as f64;
        let mean = to.ttft_sum_us.saturating_sub(from.ttft_sum_us) as f64 / 1000.0 / n;
        let sq = to.ttft_sq_ms.saturating_sub(from.ttft_sq_ms) as f64 / n;
        Some(Waits {
            mean,
            var: (sq - mean * mean).max(1.0),
            n,
        })
    }
}

/// Requests the server has not finished: in flight, plus arrivals queued for a slot.
fn backlog(p: &Progress) -> u64 {
    p.in_flight + p.waiting
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: Limits = Limits {
        max_error_rate: Some(0.5),
        stop_when_saturated: true,
    };

    /// One request of a simulated step: when it was sent, when its first token came, when it
    /// ended (s).
    type Request = (f64, f64, f64);

    /// Counters of `requests` at `t`, as the tracker would have them.
    fn progress_at(requests: &[Request], t: f64) -> Progress {
        let mut p = Progress::default();
        for &(sent, first, end) in requests.iter().filter(|r| r.0 <= t) {
            p.started += 1;
            if end <= t {
                p.ended_ok += 1;
                let ttft = first - sent;
                p.ttft_sum_us += (ttft * 1e6) as u64;
                p.ttft_sq_ms += ((ttft * 1e3) as u64).pow(2);
                p.ttft_n += 1;
                p.e2e_sum_us += ((end - sent) * 1e6) as u64;
            } else {
                p.in_flight += 1;
            }
        }
        p
    }

    /// Samples `requests` (arrivals whose gaps have the squared coefficient of variation
    /// `cv2`) at 4 Hz over `secs`; returns the first reason and when it came.
    fn watch(requests: &[Request], rate: f64, secs: f64, cv2: f64) -> Option<(f64, String)> {
        let mut m = Monitor::new(Some(rate), secs, ON).arrival_cv2(cv2);
        let mut t = 0.0;
        while t <= secs {
            if let Some(r) = m.observe(t, progress_at(requests, t)) {
                return Some((t, r));
            }
            t += 0.25;
        }
        None
    }

    /// A step at `rate` req/s against a server that serves at most `capacity` req/s, first come
    /// first served, each request `latency` s long once served (a first token 20 ms after it
    /// starts being served): a queue forms when the rate is over the capacity.
    fn queueing(rate: f64, capacity: f64, latency: f64, secs: f64) -> Vec<Request> {
        let mut free = 0.0_f64;
        (0..(rate * secs) as usize)
            .map(|k| {
                let sent = k as f64 / rate;
                let start = sent.max(free);
                free = start + 1.0 / capacity;
                (sent, start + 0.02, start + latency)
            })
            .collect()
    }

    #[test]
    fn a_stable_server_is_not_saturated() {
        for (rate, latency) in [(10.0, 0.5), (40.0, 0.1), (100.0, 3.0), (2.0, 8.0)] {
            let step = queueing(rate, rate * 1.1, latency, 30.0);
            assert_eq!(watch(&step, rate, 30.0, 0.0), None, "{rate} {latency}");
        }
    }

    #[test]
    fn a_saturated_server_is_found_within_seconds() {
        let (t, why) = watch(&queueing(48.0, 40.0, 0.1, 10.0), 48.0, 10.0, 0.0).expect("saturated");
        assert!(t <= 5.0, "found at {t} s");
        assert!(
            why.starts_with("saturated") && why.contains("first token"),
            "{why}"
        );
        let (_, why) = watch(&queueing(30.0, 15.0, 1.0, 20.0), 30.0, 20.0, 0.0).expect("saturated");
        assert!(why.contains("queue keeps growing"), "{why}");
    }

    /// A batching server below its capacity: each request's decode slows while the batch fills
    /// (its latency grows from 0.6 s to 1.2 s over the first 3 s), so requests in flight grow
    /// and completions lag the offer for a while — but nobody waits for a first token. The old
    /// rules (a warm-in of 2 s, completions under 90 % while in flight grew) stopped this step.
    #[test]
    fn a_batch_that_fills_is_not_a_queue() {
        let rate = 10.81;
        let step: Vec<Request> = (0..(rate * 10.0) as usize)
            .map(|k| {
                let sent = k as f64 / rate;
                let latency = 0.6 + 0.6 * (sent / 3.0).min(1.0);
                (sent, sent + 0.03, sent + latency)
            })
            .collect();
        assert_eq!(watch(&step, rate, 10.0, 0.0), None);
    }

    /// A server of unlimited capacity with a random first token (exponential, mean 100 ms) at
    /// low rates: in flight goes 1 → 2 and back by chance; that is no queue.
    #[test]
    fn random_latency_without_a_queue_is_not_saturation() {
        use rand::{Rng, SeedableRng};
        for seed in 0..50 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            for rate in [5.0, 10.0, 20.0] {
                let mut sent = 0.0;
                let mut step = Vec::new();
                while sent < 8.0 {
                    sent += -(1.0 - rng.random::<f64>()).ln() / rate;
                    let ttft = -(1.0 - rng.random::<f64>()).ln() * 0.1;
                    step.push((sent, sent + ttft, sent + ttft + 0.2));
                }
                assert_eq!(
                    watch(&step, rate, 8.0, 1.0),
                    None,
                    "seed {seed} at {rate} req/s"
                );
            }
        }
    }

    #[test]
    fn nothing_is_judged_before_the_pipeline_filled() {
        let mut m = Monitor::new(Some(10.0), 30.0, ON);
        let p = Progress {
            started: 100,
            in_flight: 100,
            ..Progress::default()
        };
        assert_eq!(m.observe(1.0, p), None);
        assert_eq!(m.observe(5.9, p), None, "no request finished yet");
        assert!(m.samples.is_empty());
        // One finished after 3 s: the pipeline is full at 6 s.
        let done = Progress {
            ended_ok: 1,
            ttft_n: 1,
            ttft_sum_us: 100_000,
            e2e_sum_us: 3_000_000,
            ..p
        };
        assert_eq!(m.observe(5.9, done), None);
        assert!(m.samples.is_empty());
        assert_eq!(m.observe(6.0, done), None);
        assert_eq!(m.samples.len(), 1);
        let mut later = Monitor::new(Some(10.0), 30.0, ON).not_before(8.0);
        assert_eq!(later.observe(7.0, done), None);
        assert!(
            later.samples.is_empty(),
            "live control's change: judged from 8 s"
        );
    }

    #[test]
    fn drops_at_the_cap_are_saturation() {
        let mut m = Monitor::new(Some(10.0), 10.0, ON);
        let at = |_t: f64, dropped| Progress {
            started: 100,
            in_flight: 16,
            ended_ok: 5,
            ttft_n: 5,
            e2e_sum_us: 500_000,
            dropped,
            ..Progress::default()
        };
        assert_eq!(m.observe(2.0, at(2.0, 0)), None);
        assert_eq!(m.observe(3.0, at(3.0, 0)), None);
        let why = m.observe(5.5, at(5.5, 10)).expect("dropped");
        assert!(why.contains("10 of 110 arrivals"), "{why}");
    }

    #[test]
    fn error_rate_ends_any_step_once_enough_finished() {
        let mut m = Monitor::new(None, 60.0, ON);
        let p = |ok, failed| Progress {
            ended_ok: ok,
            ended_failed: failed,
            ..Progress::default()
        };
        assert_eq!(m.observe(0.5, p(2, 10)), None, "too few finished");
        assert_eq!(m.observe(1.0, p(15, 15)), None, "50 % is not over 50 %");
        let why = m.observe(1.5, p(15, 20)).expect("over the limit");
        assert!(
            why.contains("57.1%") && why.contains("--max-error-rate 50.0%"),
            "{why}"
        );
    }

    #[test]
    fn each_error_rate_says_which_requests_it_is_over() {
        // The same run: 21 of 21 finished while running, 21 of 23 once the step ended.
        let running = over_error_rate(21, 21, Some(0.5), ErrorWindow::Running).unwrap();
        assert!(
            running.starts_with(
                "error rate 100.0% while running (21 of the 21 requests finished so far failed)"
            ),
            "{running}"
        );
        let step = over_error_rate(21, 23, Some(0.5), ErrorWindow::Step).unwrap();
        assert!(
            step.starts_with("error rate 91.3% over the whole step (21 of all 23 requests failed)"),
            "{step}"
        );
    }

    #[test]
    fn a_step_whose_window_is_over_did_not_end_early() {
        // A stable 10 s step at 10 req/s, sampled at 4 Hz...
        let mut m = Monitor::new(Some(10.0), 10.0, ON);
        let p = |t: f64, dropped| {
            let ended = ((10.0 * t) as u64).saturating_sub(2);
            Progress {
                started: (10.0 * t) as u64,
                in_flight: 2,
                ended_ok: ended,
                ttft_n: ended,
                e2e_sum_us: ended * 200_000,
                dropped,
                ..Progress::default()
            }
        };
        let mut t = 0.0;
        while t < 10.0 {
            assert_eq!(m.observe(t, p(t, 0)), None, "{t}");
            t += 0.25;
        }
        // ...whose check comes at or after the end of its sending window (the checks run on
        // their own timer): the step ran its whole window, it did not end early.
        assert_eq!(m.observe(10.0, p(10.0, 50)), None);
        assert_eq!(m.observe(10.1, p(10.1, 50)), None);
        // The same sample inside the window ends the step.
        let mut inside = Monitor::new(Some(10.0), 20.0, ON);
        let mut t = 0.0;
        while t < 10.0 {
            let _ = inside.observe(t, p(t, 0));
            t += 0.25;
        }
        assert!(inside.observe(10.0, p(10.0, 50)).is_some());
    }

    #[test]
    fn identical_rejections_end_any_step_at_once() {
        let off = Limits {
            max_error_rate: None,
            stop_when_saturated: false,
        };
        let mut m = Monitor::new(None, 60.0, off);
        let p = |failed, rejected| Progress {
            ended_failed: failed,
            rejected,
            rejected_status: 404,
            ..Progress::default()
        };
        assert_eq!(m.observe(0.1, p(9, 9)), None, "too few to tell");
        assert_eq!(m.observe(0.2, p(12, 11)), None, "one failed otherwise");
        let why = m.observe(0.3, p(10, 10)).expect("rejected");
        assert!(why.contains("all 10 requests with HTTP 404"), "{why}");
        let served = Progress {
            ended_ok: 1,
            ..p(10, 10)
        };
        assert_eq!(Monitor::new(None, 60.0, off).observe(0.3, served), None);
    }

    #[test]
    fn closed_loop_and_disabled_limits_never_stop() {
        let off = Limits {
            max_error_rate: None,
            stop_when_saturated: false,
        };
        let mut m = Monitor::new(Some(10.0), 10.0, off);
        let mut closed = Monitor::new(None, 10.0, ON);
        for i in 0..80 {
            let p = Progress {
                started: i * 10,
                in_flight: i * 3,
                dropped: i,
                ended_failed: i,
                ..Progress::default()
            };
            assert_eq!(m.observe(i as f64 * 0.25, p), None);
            let q = Progress {
                ended_failed: 0,
                ..p
            };
            assert_eq!(closed.observe(i as f64 * 0.25, q), None);
        }
    }
}
