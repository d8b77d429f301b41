//! When to end a step early (pure): the server is saturated, or failing.
//!
//! The coordinator samples the step's counters a few times a second and asks `Monitor::observe`.
//! Rules, checked only after a warm-in: 20 % of the step (at least 2 s) and 1.5 × the time the
//! first request took — the pipeline of a fresh step fills for about one end-to-end latency, and
//! that growth of in-flight requests must not look like saturation:
//!
//! - rejection (always, from the first requests): the first `MIN_REJECTED` or more finished
//!   requests all failed with the same status that says the request itself is wrong
//!   (400/401/403/404/422): every further request would fail the same way;
//! - error rate: more than `max_error_rate` of the step's finished requests failed
//!   (at least `MIN_FINISHED` finished);
//! - dropped arrivals (open loop): more than 1 % of the arrivals found `--max-vus` requests in
//!   flight;
//! - achieved rate (open loop): requests finished over the window below 90 % of the offered rate
//!   while requests in flight grew;
//! - a trend test (open loop): requests in flight (plus arrivals queued for a slot with
//!   `--queue-when-saturated`) — the server's queue plus what it serves —
//!   grow steadily (least-squares slope with a t-statistic ≥ 4, and a growth that matters:
//!   at least 3 requests and half the mean over the window). A stable server keeps in-flight
//!   requests around rate × latency (Little's law); a saturated one lets them grow without bound.

use std::collections::VecDeque;

use crate::load::tracker::Progress;

/// Finished requests needed before an error rate means anything.
pub const MIN_FINISHED: u64 = 20;
/// Identical rejections, and nothing else, that end a step (and the run: nothing succeeded).
pub const MIN_REJECTED: u64 = 10;
/// Achieved below this share of the offered rate is saturation.
pub const ACHIEVED_SHARE: f64 = 0.9;
/// Share of arrivals dropped at the in-flight cap that is saturation.
pub const DROPPED_SHARE: f64 = 0.01;
/// Shortest observation window after the warm-in, in seconds.
pub const MIN_WINDOW_SECS: f64 = 2.0;
/// Samples kept (at 4 Hz: the last five minutes); bounded however long the step.
const MAX_SAMPLES: usize = 1200;
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
    warm_in: f64,
    limits: Limits,
    samples: VecDeque<(f64, Progress)>,
    /// When the first request of the step finished: about one end-to-end latency.
    first_finished: Option<f64>,
}

impl Monitor {
    /// `offered`: the open-loop rate (None: closed loop). The warm-in is 20 % of the step, at
    /// least 2 s, at most half the step.
    pub fn new(offered: Option<f64>, duration_secs: f64, limits: Limits) -> Self {
        Monitor {
            offered,
            duration: duration_secs,
            warm_in: (0.2 * duration_secs).max(2.0).min(duration_secs / 2.0),
            limits,
            samples: VecDeque::new(),
            first_finished: None,
        }
    }

    /// Judges nothing before `secs` into the step (e.g. while the rate still ramps up).
    pub fn not_before(mut self, secs: f64) -> Self {
        self.warm_in = self.warm_in.max(secs);
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
        if p.ended_ok + p.ended_failed > 0 && self.first_finished.is_none() {
            self.first_finished = Some(t);
        }
        let filled = self.first_finished.map(|f| 1.5 * f)?;
        if t < self.warm_in.max(filled) {
            return None;
        }
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((t, p));
        let rate = self.offered.filter(|_| self.limits.stop_when_saturated)?;
        let (t0, first) = *self.samples.front()?;
        let window = t - t0;
        if window < MIN_WINDOW_SECS {
            return None;
        }
        self.dropped(p, rate)
            .or_else(|| achieved(first, p, window, rate))
            .or_else(|| self.trend(window))
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

    fn trend(&self, window: f64) -> Option<String> {
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
        (slope > 0.0 && t_stat >= TREND_T && growth >= 3.0_f64.max(0.5 * mean_y)).then(|| {
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

fn achieved(first: Progress, p: Progress, window: f64, rate: f64) -> Option<String> {
    let finished = (p.ended_ok + p.ended_failed) - (first.ended_ok + first.ended_failed);
    let achieved = finished as f64 / window;
    let (from, to) = (backlog(&first), backlog(&p));
    (achieved < ACHIEVED_SHARE * rate && to > from).then(|| {
        format!(
            "saturated: achieved {achieved:.2} req/s, below {:.0}% of the offered {rate:.2} req/s, while requests in flight grew from {from} to {to}",
            ACHIEVED_SHARE * 100.0,
        )
    })
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

    /// Feeds a step at `rate` req/s where requests take `latency` s and the server completes at
    /// most `capacity` req/s; samples at 4 Hz. Returns the first reason and when it came.
    fn simulate(rate: f64, capacity: f64, latency: f64, secs: f64) -> Option<(f64, String)> {
        let mut m = Monitor::new(Some(rate), secs, ON);
        let served = rate.min(capacity);
        let mut t = 0.0;
        while t <= secs {
            let started = (rate * t) as u64;
            let done = (served * (t - latency).max(0.0)) as u64;
            let p = Progress {
                started,
                in_flight: started - done.min(started),
                ended_ok: done.min(started),
                ..Progress::default()
            };
            if let Some(r) = m.observe(t, p) {
                return Some((t, r));
            }
            t += 0.25;
        }
        None
    }

    #[test]
    fn a_stable_server_is_not_saturated() {
        for (rate, latency) in [(10.0, 0.5), (40.0, 0.1), (100.0, 3.0), (2.0, 8.0)] {
            assert_eq!(
                simulate(rate, rate * 1.1, latency, 30.0),
                None,
                "{rate} {latency}"
            );
        }
    }

    #[test]
    fn a_saturated_server_is_found_within_seconds() {
        let (t, why) = simulate(48.0, 40.0, 0.1, 10.0).expect("saturated");
        assert!(t <= 5.0, "found at {t} s");
        assert!(why.starts_with("saturated"), "{why}");
        let (_, why) = simulate(30.0, 15.0, 1.0, 20.0).expect("saturated");
        assert!(why.contains("achieved") || why.contains("grow"), "{why}");
    }

    #[test]
    fn nothing_is_judged_during_the_warm_in() {
        let mut m = Monitor::new(Some(10.0), 30.0, ON);
        let p = Progress {
            started: 100,
            in_flight: 100,
            ..Progress::default()
        };
        assert_eq!(m.observe(1.0, p), None);
        assert_eq!(m.observe(5.9, p), None, "warm-in is 20 % of 30 s");
        let done = Progress { ended_ok: 1, ..p };
        assert_eq!(
            m.observe(7.0, done),
            None,
            "first finished at 7 s: nothing judged before 10.5 s"
        );
        assert_eq!(m.observe(10.0, done), None);
        assert!(m.samples.is_empty());
        assert_eq!(m.observe(10.5, done), None);
        assert_eq!(m.samples.len(), 1);
    }

    #[test]
    fn drops_at_the_cap_are_saturation() {
        let mut m = Monitor::new(Some(10.0), 10.0, ON);
        let at = |_t: f64, dropped| Progress {
            started: 100,
            in_flight: 16,
            ended_ok: 5,
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
        let p = |t: f64, dropped| Progress {
            started: (10.0 * t) as u64,
            in_flight: 2,
            ended_ok: ((10.0 * t) as u64).saturating_sub(2),
            dropped,
            ..Progress::default()
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
