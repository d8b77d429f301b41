//! What the live console shows, aggregated as events arrive (pure, no terminal).
//!
//! Per request the sink does a few counter updates and two histogram records: it reads the
//! event behind its `Arc` and keeps nothing of it. The view reads a `Snapshot` (a few numbers per
//! step) at a few Hz.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use sinks::event::{ControlAction, Event, StepKind};
use sinks::stats::LatencyHistogram;

/// Lines of captured log output kept for the view.
pub const LOG_LINES: usize = 200;

/// One step as the console follows it.
#[derive(Debug)]
struct StepState {
    index: u32,
    id: String,
    kind: StepKind,
    rate: Option<f64>,
    duration_secs: f64,
    started: Instant,
    /// Seconds the step took, once finished (its window).
    finished_secs: Option<f64>,
    ok: u64,
    failed: u64,
    dropped: u64,
    output_tokens: u64,
    errors: BTreeMap<&'static str, u64>,
    ttft: LatencyHistogram,
    itl: LatencyHistogram,
    /// Time to first answer token, and how many requests reasoned (the figure shows with them).
    ttfa: LatencyHistogram,
    reasoned: u64,
    /// A finished step no longer changes: its snapshot is computed once, so the view's
    /// refreshes cost the same with 2 steps or 20 (percentiles walk the histogram).
    done: Option<StepSnapshot>,
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub count: u64,
}

impl Percentiles {
    /// One of these percentiles with `digits` decimals, or "–" before the first value.
    pub fn show(&self, v: f64, digits: usize) -> String {
        if self.count == 0 {
            crate::offline::table::MISSING.into()
        } else {
            format!("{v:.digits$}")
        }
    }
}

fn percentiles(h: &LatencyHistogram) -> Percentiles {
    Percentiles {
        p50: h.quantile_ms(0.50),
        p90: h.quantile_ms(0.90),
        p99: h.quantile_ms(0.99),
        count: h.len(),
    }
}

/// A step's figures at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct StepSnapshot {
    pub index: u32,
    pub id: String,
    pub warmup: bool,
    pub offered_rate: Option<f64>,
    pub finished: bool,
    /// Share of the planned duration elapsed (1 once finished).
    pub progress: f64,
    pub elapsed_secs: f64,
    pub ok: u64,
    pub failed: u64,
    pub dropped: u64,
    /// Successful requests and output tokens per second so far.
    pub request_rate: f64,
    pub token_rate: f64,
    pub errors: Vec<(&'static str, u64)>,
    pub ttft: Percentiles,
    pub itl: Percentiles,
    /// Time to first answer token, once a request of the step reasoned (else it is the TTFT).
    pub ttfa: Option<Percentiles>,
}

/// Everything the view draws, copied out under the lock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub run_id: String,
    pub steps: Vec<StepSnapshot>,
    pub log: Vec<String>,
}

impl Snapshot {
    /// The step running now (or the last one).
    pub fn current(&self) -> Option<&StepSnapshot> {
        self.steps.last()
    }

    /// (rate, output tokens/s) of the measured steps, for the throughput-vs-rate chart: the
    /// offered rate for open-loop steps, the achieved request rate for the closed loop.
    pub fn throughput_points(&self) -> Vec<(f64, f64)> {
        let mut pts: Vec<(f64, f64)> = self
            .steps
            .iter()
            .filter(|s| !s.warmup && s.ok > 0)
            .map(|s| (s.offered_rate.unwrap_or(s.request_rate), s.token_rate))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        pts
    }
}

/// The console's aggregate of the run so far.
#[derive(Debug, Default)]
pub struct LiveState {
    run_id: String,
    steps: Vec<StepState>,
    log: VecDeque<String>,
}

impl LiveState {
    pub fn new() -> Self {
        Self::default()
    }

    fn step_mut(&mut self, index: u32) -> Option<&mut StepState> {
        self.steps.iter_mut().rev().find(|s| s.index == index)
    }

    /// Folds one event in; `now` dates the step starts (for progress only).
    pub fn apply(&mut self, event: &Event, now: Instant) {
        match event {
            Event::RunStarted(r) => self.run_id = r.run_id.clone(),
            Event::StepStarted(info) => self.steps.push(StepState {
                index: info.index,
                id: info.id.clone(),
                kind: info.kind,
                rate: info.rate,
                duration_secs: info.duration_secs,
                started: now,
                finished_secs: None,
                ok: 0,
                failed: 0,
                dropped: 0,
                output_tokens: 0,
                errors: BTreeMap::new(),
                ttft: LatencyHistogram::new(),
                itl: LatencyHistogram::new(),
                ttfa: LatencyHistogram::new(),
                reasoned: 0,
                done: None,
            }),
            Event::Request(r) => {
                let Some(s) = self.step_mut(r.step) else {
                    return;
                };
                // A late event (after the step's end) invalidates its final snapshot.
                s.done = None;
                if r.outcome.is_ok() {
                    s.ok += 1;
                    s.output_tokens += r.output_tokens;
                    if let Some(t) = r.ttft_ns() {
                        s.ttft.record_ns(t);
                    }
                    if let Some(t) = r.itl_ns() {
                        s.itl.record_ns(t);
                    }
                    if let Some(t) = r.ttfa_ns() {
                        s.ttfa.record_ns(t);
                    }
                    s.reasoned += u64::from(r.reasoned());
                } else {
                    s.failed += 1;
                    *s.errors.entry(r.outcome.as_str()).or_default() += 1;
                }
            }
            Event::Dropped(d) => {
                if let Some(s) = self.step_mut(d.step) {
                    s.dropped += 1;
                }
            }
            Event::StepFinished { step, window } => {
                if let Some(s) = self.step_mut(*step) {
                    s.finished_secs = Some(window.end.saturating_sub(window.start) as f64 / 1e9);
                    s.done = Some(step_snapshot(s, now));
                }
            }
            // The coordinator prints the change into the log; the step shows its new rate.
            Event::Control(c) => {
                if let (Some(s), ControlAction::SetRate) = (self.step_mut(c.step), c.action) {
                    s.rate = c.value;
                }
            }
        }
    }

    /// A line of log output for the view (bounded).
    pub fn push_log(&mut self, line: String) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    pub fn snapshot(&self, now: Instant) -> Snapshot {
        Snapshot {
            run_id: self.run_id.clone(),
            steps: self.steps.iter().map(|s| step_snapshot(s, now)).collect(),
            log: self.log.iter().cloned().collect(),
        }
    }
}

fn step_snapshot(s: &StepState, now: Instant) -> StepSnapshot {
    if let Some(done) = &s.done {
        return done.clone();
    }
    let running = now.saturating_duration_since(s.started).as_secs_f64();
    let elapsed = s.finished_secs.unwrap_or(running);
    let per_sec = |v: u64| {
        if elapsed > 0.0 {
            v as f64 / elapsed
        } else {
            0.0
        }
    };
    let progress = if s.finished_secs.is_some() {
        1.0
    } else if s.duration_secs > 0.0 {
        (running / s.duration_secs).min(1.0)
    } else {
        0.0
    };
    StepSnapshot {
        index: s.index,
        id: s.id.clone(),
        warmup: s.kind == StepKind::Warmup,
        offered_rate: s.rate,
        finished: s.finished_secs.is_some(),
        progress,
        elapsed_secs: elapsed,
        ok: s.ok,
        failed: s.failed,
        dropped: s.dropped,
        request_rate: per_sec(s.ok),
        token_rate: per_sec(s.output_tokens),
        errors: s.errors.iter().map(|(k, v)| (*k, *v)).collect(),
        ttft: percentiles(&s.ttft),
        itl: percentiles(&s.itl),
        ttfa: (s.reasoned > 0).then(|| percentiles(&s.ttfa)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinks::event::{
        ArrivalDropped, Outcome, RequestFinished, StepInfo, StepWindow, TokenSource,
    };
    use std::sync::Arc;
    use std::time::Duration;

    const MS: u64 = 1_000_000;

    fn request(step: u32, outcome: Outcome, ttft_ms: u64) -> Event {
        Event::Request(Arc::new(RequestFinished {
            id: "r".into(),
            step,
            scheduled_at: 0,
            sent_at: 0,
            first_token_at: outcome.is_ok().then_some(ttft_ms * MS),
            end_at: 100 * MS,
            chunk_offsets_us: vec![(ttft_ms * 1000) as u32, (ttft_ms * 1000 + 30_000) as u32],
            prompt_tokens: 10,
            requested_output_tokens: Some(4),
            output_tokens: if outcome.is_ok() { 4 } else { 0 },
            output_tokens_source: TokenSource::Server,
            server_prompt_tokens: None,
            server_completion_tokens: None,
            server_cached_tokens: None,
            outcome,
            http_status: None,
            error: None,
            finish_reason: None,
            response_model: None,
            output_text: None,
            // A plain answer's first answer token is its first token.
            reasoning: sinks::reasoning::ReasoningRecord {
                first_answer_at: outcome.is_ok().then_some(ttft_ms * MS),
                ..Default::default()
            },
            images_tools: Default::default(),
            trace: None,
        }))
    }

    fn started(index: u32, rate: Option<f64>) -> Event {
        Event::StepStarted(Arc::new(StepInfo {
            index,
            id: format!("step{index}"),
            kind: if rate.is_some() {
                StepKind::Rate
            } else {
                StepKind::Throughput
            },
            max_vus: 8,
            rate,
            duration_secs: 10.0,
        }))
    }

    #[test]
    fn counts_latencies_errors_and_drops_per_step() {
        let t0 = Instant::now();
        let mut st = LiveState::new();
        st.apply(&started(1, Some(2.0)), t0);
        for ttft in [10, 20, 30, 40] {
            st.apply(&request(1, Outcome::Ok, ttft), t0);
        }
        st.apply(&request(1, Outcome::Http5xx, 0), t0);
        st.apply(
            &Event::Dropped(ArrivalDropped {
                step: 1,
                scheduled_at: 0,
            }),
            t0,
        );
        let snap = st.snapshot(t0 + Duration::from_secs(5));
        let s = snap.current().unwrap();
        assert_eq!((s.ok, s.failed, s.dropped), (4, 1, 1));
        assert_eq!(s.errors, vec![("http_5xx", 1)]);
        assert!((s.ttft.p50 - 20.0).abs() < 0.1, "{:?}", s.ttft);
        assert!((s.ttft.p99 - 40.0).abs() < 0.1);
        assert!((s.itl.p50 - 10.0).abs() < 0.1, "30 ms over 3 gaps");
        assert!((s.progress - 0.5).abs() < 1e-9);
        assert!((s.token_rate - 16.0 / 5.0).abs() < 1e-9);
        assert!(!s.finished);

        st.apply(
            &Event::StepFinished {
                step: 1,
                window: StepWindow {
                    start: 0,
                    send_end: 2_000 * MS,
                    end: 2_000 * MS,
                },
            },
            t0,
        );
        let s = st.snapshot(t0 + Duration::from_secs(9)).steps[0].clone();
        assert!(s.finished);
        assert_eq!(s.progress, 1.0);
        assert!(
            (s.token_rate - 8.0).abs() < 1e-9,
            "16 tokens over the 2 s window"
        );
    }

    #[test]
    fn missing_percentiles_are_a_dash() {
        let t0 = Instant::now();
        let mut st = LiveState::new();
        st.apply(&started(1, None), t0);
        st.apply(&request(1, Outcome::Http5xx, 0), t0);
        let s = st.snapshot(t0).steps[0].clone();
        assert_eq!(s.ttft.show(s.ttft.p50, 1), "–");
        st.apply(&request(1, Outcome::Ok, 12), t0);
        let s = st.snapshot(t0).steps[0].clone();
        assert_eq!(s.ttft.show(s.ttft.p50, 1), "12.0");
    }

    #[test]
    fn the_time_to_first_answer_token_is_known_once_a_request_reasons() {
        let t0 = Instant::now();
        let mut st = LiveState::new();
        st.apply(&started(1, None), t0);
        st.apply(&request(1, Outcome::Ok, 10), t0);
        assert_eq!(
            st.snapshot(t0).steps[0].ttfa,
            None,
            "no reasoning: it is the TTFT"
        );
        let Event::Request(r) = request(1, Outcome::Ok, 10) else {
            unreachable!()
        };
        let mut reasoned = (*r).clone();
        reasoned.reasoning.chunks = 3;
        reasoned.reasoning.first_answer_at = Some(70 * MS);
        st.apply(&Event::Request(Arc::new(reasoned)), t0);
        let ttfa = st.snapshot(t0).steps[0].ttfa.expect("a request reasoned");
        assert_eq!(ttfa.count, 2, "every answer counts, as in the results");
        assert!((ttfa.p99 - 70.0).abs() < 0.1, "{ttfa:?}");
    }

    #[test]
    fn chart_points_skip_the_warmup_and_sort_by_rate() {
        let t0 = Instant::now();
        let mut st = LiveState::new();
        st.apply(&started(1, Some(5.0)), t0);
        st.apply(&request(1, Outcome::Ok, 10), t0);
        st.apply(&started(2, Some(1.0)), t0);
        st.apply(&request(2, Outcome::Ok, 10), t0);
        let pts = st.snapshot(t0 + Duration::from_secs(1)).throughput_points();
        assert_eq!(pts.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1.0, 5.0]);
    }

    #[test]
    fn the_log_is_bounded() {
        let mut st = LiveState::new();
        for i in 0..(LOG_LINES + 5) {
            st.push_log(format!("line {i}"));
        }
        let snap = st.snapshot(Instant::now());
        assert_eq!(snap.log.len(), LOG_LINES);
        assert_eq!(snap.log[0], "line 5");
    }
}
