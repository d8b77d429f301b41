//! A step's scrapes cut at its time slices (`--slice-duration`), so each slice of a soak
//! carries the server's view of it (pure).
//!
//! A round belongs to the slice its time falls in (from the step's start; the last slice takes
//! the drain, as the request slices do). The first round of a new slice is also the last of
//! the one before for counters and histograms (not for gauges): a counter's increases over the
//! slices add up to the step's. Only the slice being scraped is held as a window; the ones
//! before are already summaries.

use std::time::Duration;

use regex::Regex;

use super::parse::Scrape;
use super::{MetricsWindow, ServerMetrics};

pub struct SliceWindows {
    endpoints: Vec<String>,
    filter: Option<Regex>,
    width: f64,
    /// The last slice's number: later rounds count in it.
    last: u64,
    /// The step's start, in the rounds' seconds; until it is known, rounds go to slice 0.
    origin: Option<f64>,
    current: (u64, MetricsWindow),
    done: Vec<(u64, ServerMetrics)>,
}

impl SliceWindows {
    /// Slices of `width` over a step planned to send for `planned`.
    pub fn new(
        endpoints: Vec<String>,
        filter: Option<Regex>,
        width: Duration,
        planned: Duration,
    ) -> Self {
        let width = width.as_secs_f64().max(1e-9);
        let last = ((planned.as_secs_f64() / width).ceil() as u64).max(1) - 1;
        SliceWindows {
            current: (0, MetricsWindow::new(endpoints.clone(), filter.clone())),
            endpoints,
            filter,
            width,
            last,
            origin: None,
            done: Vec::new(),
        }
    }

    /// The step started at `t` seconds.
    pub fn set_origin(&mut self, t: f64) {
        self.origin = Some(t);
    }

    fn slice_of(&self, t: f64) -> u64 {
        let Some(origin) = self.origin else {
            return 0;
        };
        (((t - origin) / self.width).floor().max(0.0) as u64).min(self.last)
    }

    /// The step's baseline round (before its first request).
    pub fn observe_baseline(&mut self, t: f64, round: &[(usize, Option<&Scrape>)]) {
        self.current.1.observe_baseline(t, round);
    }

    pub fn observe(&mut self, t: f64, round: &[(usize, Option<&Scrape>)]) {
        let k = self.slice_of(t);
        if k > self.current.0 {
            let fresh = MetricsWindow::new(self.endpoints.clone(), self.filter.clone());
            let (before, mut window) = std::mem::replace(&mut self.current, (k, fresh));
            window.close_gauges();
            window.observe(t, round);
            self.done.push((before, window.finish(0)));
        }
        self.current.1.observe(t, round);
    }

    /// The step stopped sending: gauges are no longer sampled.
    pub fn close_gauges(&mut self) {
        self.current.1.close_gauges();
    }

    /// Every slice's summary, by slice number (joules per token still to be derived from the
    /// slice's own output tokens: [`ServerMetrics::derive`]).
    pub fn finish(mut self) -> Vec<(u64, ServerMetrics)> {
        let (k, window) = self.current;
        self.done.push((k, window.finish(0)));
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_metrics::parse::parse;

    fn page(running: u32, tokens: u32) -> String {
        format!(
            "# TYPE vllm:num_requests_running gauge\n\
             vllm:num_requests_running{{model_name=\"m\"}} {running}\n\
             # TYPE vllm:generation_tokens_total counter\n\
             vllm:generation_tokens_total{{model_name=\"m\"}} {tokens}\n"
        )
    }

    #[test]
    fn slices_cut_the_step_and_their_counters_add_up() {
        // A 3 s step in 1 s slices, scraped every 0.5 s from its start at t = 10.
        let mut s = SliceWindows::new(
            vec!["e".into()],
            None,
            Duration::from_secs(1),
            Duration::from_secs(3),
        );
        let baseline = parse(&page(0, 100)).unwrap();
        s.observe_baseline(9.99, &[(0, Some(&baseline))]);
        s.set_origin(10.0);
        for i in 1..=8u32 {
            // Running: the slice number + 1; tokens: 10 a round.
            let t = 10.0 + f64::from(i) * 0.5;
            let running = (f64::from(i) * 0.5).floor().min(2.0) as u32 + 1;
            let p = parse(&page(running, 100 + 10 * i)).unwrap();
            if i == 7 {
                s.close_gauges(); // the end of sending, at 13.5 (the drain counts in slice 2)
            }
            s.observe(t, &[(0, Some(&p))]);
        }
        let slices = s.finish();
        let numbers: Vec<u64> = slices.iter().map(|(k, _)| *k).collect();
        assert_eq!(numbers, [0, 1, 2]);
        let inc = |k: usize| slices[k].1.series["generation_tokens"].increase().unwrap();
        // Slice 0: from the baseline to the round at 11 (its first of slice 1); and so on.
        assert_eq!((inc(0), inc(1), inc(2)), (20.0, 20.0, 40.0));
        assert_eq!(inc(0) + inc(1) + inc(2), 80.0, "the step's increase");
        let mean = |k: usize| slices[k].1.series["requests_running"].mean().unwrap();
        // Gauges: each slice's own rounds only (slice 0: 10.5; slice 2: 12, 12.5, 13).
        assert_eq!((mean(0), mean(1), mean(2)), (1.0, 2.0, 3.0));
    }
}
