//! The metrics themselves: a registry the sink owns, updated from events and refreshed from
//! the live gauges before every exposition. No actix here, so it is tested directly.
//!
//! Warmup requests (step 0) are not counted: like the results file, the metrics describe the
//! measured steps only (the phase gauge shows when the warmup runs). Output tokens count
//! successful requests only, and latency histograms observe successful requests only, again as
//! the results file does; queue delay observes every sent request.

use std::sync::Arc;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use super::gauges::{LiveGauges, Phase};
use super::read_counters::ReadCounter;
use crate::event::{
    ControlAction, ControlEvent, Event, Outcome, RequestFinished, StepInfo, StepKind,
};

/// Every name starts with this.
pub const PREFIX: &str = "inference_benchmarker";

/// TTFT and end-to-end latency: 10 ms to 10 minutes (long prompts, long generations).
pub const LATENCY_BUCKETS: [f64; 17] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
    600.0,
];
/// Inter-token latency: from 1 ms (fast decoders) to a few seconds (stalls).
pub const ITL_BUCKETS: [f64; 16] = [
    0.001, 0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0,
    2.5,
];
/// Queue delay: 100 µs (a healthy generator) to a minute (an overloaded one).
pub const QUEUE_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 10.0, 60.0,
];

/// All metric handles, registered in `registry`.
pub struct Metrics {
    registry: Registry,
    gauges: Arc<LiveGauges>,
    requests: IntCounterVec,
    dropped: IntCounter,
    input_tokens: IntCounter,
    output_tokens: IntCounter,
    ttft: Histogram,
    ttfa: Histogram,
    reasoning_tokens: IntCounter,
    no_answer: IntCounter,
    tool_calls: IntCounter,
    images_sent: IntCounter,
    itl: Histogram,
    e2e: Histogram,
    queue_delay: Histogram,
    in_flight: IntGauge,
    virtual_users: IntGauge,
    offered_rate: Gauge,
    step_info: IntGaugeVec,
    phase: IntGaugeVec,
    lag: GaugeVec,
    push_failures: IntCounter,
    control_paused: IntGauge,
    control_changes: IntCounterVec,
    current_step: parking_lot::Mutex<Option<(String, String)>>,
}

/// `trace_spans_total` results, in `LiveGauges::trace_spans` order.
const TRACE_RESULTS: [&str; 3] = ["exported", "dropped", "failed"];

fn name(suffix: &str) -> String {
    format!("{PREFIX}_{suffix}")
}

fn histogram(suffix: &str, help: &str, buckets: &[f64]) -> prometheus::Result<Histogram> {
    Histogram::with_opts(HistogramOpts::new(name(suffix), help).buckets(buckets.to_vec()))
}

impl Metrics {
    /// A registry with `const_labels` on every series (ours and `process_*`).
    pub fn new(
        const_labels: std::collections::HashMap<String, String>,
        gauges: Arc<LiveGauges>,
    ) -> prometheus::Result<Metrics> {
        let registry = Registry::new_custom(None, Some(const_labels))?;
        let m = Metrics {
            requests: IntCounterVec::new(
                Opts::new(
                    name("requests_total"),
                    "Finished requests of the measured steps, by outcome (ok or an error class).",
                ),
                &["outcome"],
            )?,
            dropped: IntCounter::new(
                name("dropped_arrivals_total"),
                "Open-loop arrivals not sent because the cap on requests in flight was reached.",
            )?,
            input_tokens: IntCounter::new(
                name("input_tokens_total"),
                "Prompt tokens sent (our tokenizer), every finished request of the measured steps.",
            )?,
            output_tokens: IntCounter::new(
                name("output_tokens_total"),
                "Output tokens of successful requests (the server's usage count, else our tokenizer's).",
            )?,
            ttft: histogram(
                "time_to_first_token_seconds",
                "Time to first token of successful requests: first text chunk minus send time.",
                &LATENCY_BUCKETS,
            )?,
            ttfa: histogram(
                "time_to_first_answer_token_seconds",
                "Time to first answer token of successful requests that answered: first answer chunk (after any reasoning) minus send time.",
                &LATENCY_BUCKETS,
            )?,
            reasoning_tokens: IntCounter::new(
                name("reasoning_tokens_total"),
                "Reasoning tokens of successful requests (part of output_tokens_total).",
            )?,
            no_answer: IntCounter::new(
                name("no_answer_requests_total"),
                "Successful requests that reasoned and never answered (reasoning used up max_tokens).",
            )?,
            tool_calls: IntCounter::new(
                name("tool_calls_total"),
                "Tool calls streamed in the answers of successful requests.",
            )?,
            images_sent: IntCounter::new(
                name("images_sent_total"),
                "Images sent, every finished request of the measured steps.",
            )?,
            itl: histogram(
                "inter_token_latency_seconds",
                "Per-request inter-token latency of successful requests: (last token - first token) / (output tokens - 1).",
                &ITL_BUCKETS,
            )?,
            e2e: histogram(
                "e2e_latency_seconds",
                "End-to-end latency of successful requests: end of stream minus send time.",
                &LATENCY_BUCKETS,
            )?,
            queue_delay: histogram(
                "queue_delay_seconds",
                "Delay between the scheduled and the actual send time, every sent request.",
                &QUEUE_BUCKETS,
            )?,
            in_flight: IntGauge::new(name("in_flight_requests"), "Requests being executed now.")?,
            virtual_users: IntGauge::new(
                name("virtual_users"),
                "Closed-loop virtual users running now.",
            )?,
            offered_rate: Gauge::new(
                name("offered_rate_requests_per_second"),
                "Arrival rate the current open-loop step offers; 0 in closed-loop steps.",
            )?,
            step_info: IntGaugeVec::new(
                Opts::new(
                    name("step_info"),
                    "1 for the step running now, 0 for the steps before it.",
                ),
                &["step", "kind"],
            )?,
            phase: IntGaugeVec::new(
                Opts::new(
                    name("phase"),
                    "1 for the current phase of the run (idle, warmup, step, drain), 0 for the others.",
                ),
                &["phase"],
            )?,
            lag: GaugeVec::new(
                Opts::new(
                    name("event_loop_lag_seconds"),
                    "How late a periodic timer fired on each worker arbiter, latest probe.",
                ),
                &["worker"],
            )?,
            push_failures: IntCounter::new(
                name("pushgateway_failures_total"),
                "Pushes to the Pushgateway that failed.",
            )?,
            control_paused: IntGauge::new(
                name("control_paused"),
                "1 while sending is paused by hand (live control), else 0.",
            )?,
            control_changes: IntCounterVec::new(
                Opts::new(
                    name("control_changes_total"),
                    "Manual changes to the running load (live control), by action: a step in their increase is a change made by someone, not by the server.",
                ),
                &["action"],
            )?,
            current_step: parking_lot::Mutex::new(None),
            registry,
            gauges,
        };
        m.register_all()?;
        m.precreate();
        Ok(m)
    }

    fn register_all(&self) -> prometheus::Result<()> {
        let r = &self.registry;
        r.register(Box::new(self.requests.clone()))?;
        r.register(Box::new(self.dropped.clone()))?;
        r.register(Box::new(self.input_tokens.clone()))?;
        r.register(Box::new(self.output_tokens.clone()))?;
        r.register(Box::new(self.ttft.clone()))?;
        r.register(Box::new(self.ttfa.clone()))?;
        r.register(Box::new(self.reasoning_tokens.clone()))?;
        r.register(Box::new(self.no_answer.clone()))?;
        r.register(Box::new(self.tool_calls.clone()))?;
        r.register(Box::new(self.images_sent.clone()))?;
        r.register(Box::new(self.itl.clone()))?;
        r.register(Box::new(self.e2e.clone()))?;
        r.register(Box::new(self.queue_delay.clone()))?;
        r.register(Box::new(self.in_flight.clone()))?;
        r.register(Box::new(self.virtual_users.clone()))?;
        r.register(Box::new(self.offered_rate.clone()))?;
        r.register(Box::new(self.step_info.clone()))?;
        r.register(Box::new(self.phase.clone()))?;
        r.register(Box::new(self.lag.clone()))?;
        r.register(Box::new(self.push_failures.clone()))?;
        r.register(Box::new(self.control_paused.clone()))?;
        r.register(Box::new(self.control_changes.clone()))?;
        let gauges = self.gauges.clone();
        r.register(Box::new(ReadCounter::new(
            &name("trace_spans_total"),
            "Request, step and run spans by what became of them: exported, dropped (the trace queue was full) or failed (the collector refused or timed out).",
            Some("result"),
            Box::new(move || {
                TRACE_RESULTS
                    .iter()
                    .zip(gauges.trace_spans())
                    .map(|(result, n)| (result.to_string(), n as f64))
                    .collect()
            }),
        )?))?;
        #[cfg(target_os = "linux")]
        r.register(Box::new(super::read_counters::Process::new()?))?;
        Ok(())
    }

    /// Every series that can exist is there from the start (all outcomes, phases, workers), so
    /// the series count does not grow during a run and `rate()` sees the first increment.
    fn precreate(&self) {
        for o in Outcome::ALL {
            self.requests.with_label_values(&[o.as_str()]);
        }
        for p in Phase::ALL {
            self.phase.with_label_values(&[p.as_str()]);
        }
        for a in ControlAction::ALL {
            self.control_changes.with_label_values(&[a.as_str()]);
        }
        for w in 0..self.gauges.workers() {
            self.lag.with_label_values(&[&w.to_string()]);
        }
    }

    /// Updates the metrics from one event.
    pub fn observe(&self, event: &Event) {
        match event {
            Event::RunStarted(_) => {}
            Event::StepFinished { .. } => self.control_paused.set(0),
            Event::StepStarted(info) => self.step_started(info),
            Event::Request(r) if r.step != 0 => self.request(r),
            Event::Request(_) => {}
            Event::Dropped(d) if d.step != 0 => self.dropped.inc(),
            Event::Dropped(_) => {}
            Event::Control(c) => self.control(c),
        }
    }

    /// The offered-rate gauge follows a rate set by hand; the users gauge follows the users
    /// themselves (LiveGauges).
    fn control(&self, c: &ControlEvent) {
        self.control_changes
            .with_label_values(&[c.action.as_str()])
            .inc();
        match c.action {
            ControlAction::Pause => self.control_paused.set(1),
            ControlAction::Resume => self.control_paused.set(0),
            ControlAction::SetRate => self.offered_rate.set(c.value.unwrap_or(0.0)),
            ControlAction::SetUsers | ControlAction::EndStep => {}
        }
    }

    fn step_started(&self, info: &StepInfo) {
        // Every step starts sending, whatever the one before was left at.
        self.control_paused.set(0);
        self.offered_rate.set(match info.kind {
            StepKind::Rate => info.rate.unwrap_or(0.0),
            StepKind::Warmup | StepKind::Throughput => 0.0,
        });
        let labels = (info.index.to_string(), info.kind.as_str().to_string());
        let mut current = self.current_step.lock();
        if let Some((step, kind)) = current.take() {
            self.step_info.with_label_values(&[&step, &kind]).set(0);
        }
        self.step_info
            .with_label_values(&[&labels.0, &labels.1])
            .set(1);
        *current = Some(labels);
    }

    fn request(&self, r: &RequestFinished) {
        self.requests.with_label_values(&[r.outcome.as_str()]).inc();
        self.input_tokens.inc_by(r.prompt_tokens);
        self.queue_delay.observe(seconds(r.queue_delay_ns()));
        self.images_sent
            .inc_by(u64::from(r.images_tools.image_count));
        if !r.outcome.is_ok() {
            return;
        }
        self.output_tokens.inc_by(r.output_tokens);
        self.reasoning_tokens.inc_by(r.reasoning_tokens());
        self.no_answer.inc_by(u64::from(r.no_answer()));
        self.tool_calls.inc_by(u64::from(r.images_tools.tool_calls));
        if let Some(ttft) = r.ttft_ns() {
            self.ttft.observe(seconds(ttft));
        }
        if let Some(ttfa) = r.ttfa_ns() {
            self.ttfa.observe(seconds(ttfa));
        }
        if let Some(itl) = r.itl_ns() {
            self.itl.observe(seconds(itl));
        }
        self.e2e.observe(seconds(r.e2e_ns()));
    }

    /// Counts a failed push (shown on the generator-health panel).
    pub fn push_failed(&self) {
        self.push_failures.inc();
    }

    /// Copies the live gauges into their metrics.
    fn refresh(&self) {
        let g = &self.gauges;
        self.in_flight.set(g.in_flight() as i64);
        self.virtual_users.set(g.virtual_users() as i64);
        let now = g.phase();
        for p in Phase::ALL {
            self.phase
                .with_label_values(&[p.as_str()])
                .set(i64::from(p == now));
        }
        for w in 0..g.workers() {
            self.lag
                .with_label_values(&[&w.to_string()])
                .set(g.lag_seconds(w));
        }
    }

    /// The text exposition format (what `/metrics` serves and pushes send).
    pub fn encode(&self) -> Result<String, String> {
        self.refresh();
        let families = self.registry.gather();
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut buf)
            .map_err(|e| format!("encoding the metrics: {e}"))?;
        String::from_utf8(buf).map_err(|e| format!("encoding the metrics: {e}"))
    }
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ArrivalDropped, TokenSource};
    use std::collections::HashMap;

    fn metrics() -> Metrics {
        let labels = HashMap::from([("run_id".to_string(), "r1".to_string())]);
        Metrics::new(labels, Arc::new(LiveGauges::new(2))).unwrap()
    }

    fn request(step: u32, outcome: Outcome) -> RequestFinished {
        RequestFinished {
            id: "x".into(),
            step,
            scheduled_at: 1_000_000,
            sent_at: 3_000_000,
            first_token_at: Some(53_000_000),
            end_at: 1_003_000_000,
            chunk_offsets_us: vec![50_000, 60_000, 70_000],
            prompt_tokens: 100,
            requested_output_tokens: Some(3),
            output_tokens: 3,
            output_tokens_source: TokenSource::Server,
            server_prompt_tokens: None,
            server_completion_tokens: None,
            server_cached_tokens: None,
            outcome,
            http_status: Some(200),
            error: None,
            finish_reason: None,
            response_model: None,
            output_text: None,
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: None,
        }
    }

    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("{series} not in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The value of the one series whose line contains every one of `parts`.
    fn series_value(text: &str, parts: &[&str]) -> f64 {
        let line = text
            .lines()
            .find(|l| !l.starts_with('#') && parts.iter().all(|p| l.contains(p)))
            .unwrap_or_else(|| panic!("{parts:?} not in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn control_changes_show_as_a_gauge_and_a_counter() {
        let m = metrics();
        let control = |action, value| {
            Event::Control(ControlEvent {
                at: 1,
                step: 1,
                action,
                value,
                source: "http".into(),
            })
        };
        m.observe(&control(ControlAction::Pause, None));
        let text = m.encode().unwrap();
        let paused = r#"inference_benchmarker_control_paused{run_id="r1"}"#;
        assert_eq!(value(&text, paused), 1.0);
        m.observe(&control(ControlAction::Resume, None));
        m.observe(&control(ControlAction::SetRate, Some(12.5)));
        let text = m.encode().unwrap();
        assert_eq!(value(&text, paused), 0.0);
        assert_eq!(
            value(
                &text,
                r#"inference_benchmarker_offered_rate_requests_per_second{run_id="r1"}"#
            ),
            12.5
        );
        let changes = |a: &str| {
            value(
                &text,
                &format!(
                    r#"inference_benchmarker_control_changes_total{{action="{a}",run_id="r1"}}"#
                ),
            )
        };
        assert_eq!(changes("pause"), 1.0);
        assert_eq!(changes("set_rate"), 1.0);
        assert_eq!(
            changes("end_step"),
            0.0,
            "every action's series exists from the start"
        );
    }

    #[test]
    fn trace_spans_are_never_counted_twice_by_concurrent_expositions() {
        let gauges = Arc::new(LiveGauges::new(1));
        let stats = Arc::new(crate::otlp::OtlpStats::default());
        gauges.attach_traces(stats.clone());
        let labels = HashMap::from([("run_id".to_string(), "r1".to_string())]);
        let m = Arc::new(Metrics::new(labels, gauges).unwrap());
        // A scrape of /metrics and a Pushgateway push refresh at the same moment: rounds in
        // which the trace sink counts, then several expositions start together.
        // (With the counter copied by "add what changed", 20,000 such rounds counted 1,000 spans
        // twice; reading at gather time cannot.)
        const ROUNDS: u64 = 300;
        let readers = 4;
        let barrier = Arc::new(std::sync::Barrier::new(readers + 1));
        let threads: Vec<_> = (0..readers)
            .map(|_| {
                let (m, barrier) = (m.clone(), barrier.clone());
                std::thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        barrier.wait();
                        m.encode().unwrap();
                        barrier.wait();
                    }
                })
            })
            .collect();
        let exported = |m: &Metrics| {
            let text = m.encode().unwrap();
            series_value(&text, &["trace_spans_total{", "result=\"exported\""]) as u64
        };
        let mut worst = 0;
        for round in 1..=ROUNDS {
            stats
                .exported
                .fetch_add(1000, std::sync::atomic::Ordering::Relaxed);
            barrier.wait();
            barrier.wait();
            worst = worst.max(exported(&m).saturating_sub(round * 1000));
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(worst, 0, "spans counted twice");
        assert_eq!(exported(&m), ROUNDS * 1000);
    }

    /// User + system CPU seconds of this process by getrusage (microseconds), not by the
    /// function under test.
    fn rusage_cpu_seconds() -> f64 {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
        let usage = unsafe {
            assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
            usage.assume_init()
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(usage.ru_utime) + secs(usage.ru_stime)
    }

    #[test]
    fn process_cpu_seconds_have_sub_second_resolution() {
        // Busy until the process has used 60 ms more CPU and its total is at least 0.1 s from a
        // whole second (so whole seconds, as the prometheus crate exposes, could not pass).
        let start = rusage_cpu_seconds();
        let mut x = 0u64;
        loop {
            for _ in 0..10_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            let now = rusage_cpu_seconds();
            if now - start >= 0.06 && (0.1..0.9).contains(&now.fract()) {
                break;
            }
        }
        std::hint::black_box(x);
        let m = metrics();
        // The kernel's account before and after the exposition was read (other tests of this
        // binary run on other threads meanwhile). The exposed figure counts clock ticks of 1/100
        // s, user and system apart, each rounded down: at most 0.02 s under the account.
        let before = rusage_cpu_seconds();
        let exposed = series_value(&m.encode().unwrap(), &["process_cpu_seconds_total"]);
        let after = rusage_cpu_seconds();
        assert!(
            before - 0.02 <= exposed && exposed <= after + 1e-9,
            "exposed {exposed} s; getrusage says {before} s before and {after} s after"
        );
    }

    #[test]
    fn counts_like_the_results_file() {
        let m = metrics();
        let ok = Arc::new(request(1, Outcome::Ok));
        m.observe(&Event::Request(ok.clone()));
        m.observe(&Event::Request(ok));
        m.observe(&Event::Request(Arc::new(request(1, Outcome::Http5xx))));
        // Warmup: not counted.
        m.observe(&Event::Request(Arc::new(request(0, Outcome::Ok))));
        m.observe(&Event::Dropped(ArrivalDropped {
            step: 1,
            scheduled_at: 0,
        }));
        let t = m.encode().unwrap();
        let l = r#"{benchmark_kind="#;
        assert!(!t.contains(l), "only the labels we gave");
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_requests_total{outcome="ok",run_id="r1"}"#
            ),
            2.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_requests_total{outcome="http_5xx",run_id="r1"}"#
            ),
            1.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_requests_total{outcome="cancelled",run_id="r1"}"#
            ),
            0.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_input_tokens_total{run_id="r1"}"#
            ),
            300.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_output_tokens_total{run_id="r1"}"#
            ),
            6.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_dropped_arrivals_total{run_id="r1"}"#
            ),
            1.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_queue_delay_seconds_count{run_id="r1"}"#
            ),
            3.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_time_to_first_token_seconds_count{run_id="r1"}"#
            ),
            2.0
        );
        // TTFT 50 ms: in the 50 ms bucket, not the 25 ms one.
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_time_to_first_token_seconds_bucket{run_id="r1",le="0.05"}"#
            ),
            2.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_time_to_first_token_seconds_bucket{run_id="r1",le="0.025"}"#
            ),
            0.0
        );
        // ITL (70 ms - 50 ms) / 2 = 10 ms.
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_inter_token_latency_seconds_sum{run_id="r1"}"#
            ),
            0.02
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_e2e_latency_seconds_sum{run_id="r1"}"#
            ),
            2.0
        );
    }

    #[test]
    fn reasoning_tool_calls_and_images_count_like_the_results_file() {
        let m = metrics();
        // Reasoned 2 of 3 tokens, answered at 60 ms after the 3 ms send, called a tool, sent
        // two images.
        let mut answered = request(1, Outcome::Ok);
        answered.reasoning.chunks = 2;
        answered.reasoning.tokens = Some(2);
        answered.reasoning.first_answer_at = Some(63_000_000);
        answered.images_tools.tool_calls = 1;
        answered.images_tools.image_count = 2;
        // Reasoned all 3 tokens and never answered: a success without an answer.
        let mut no_answer = request(1, Outcome::Ok);
        no_answer.reasoning.chunks = 3;
        no_answer.reasoning.tokens = Some(3);
        // Failed: its images were sent, nothing else of it counts.
        let mut failed = request(1, Outcome::Http5xx);
        failed.images_tools.image_count = 1;
        failed.images_tools.tool_calls = 4;
        for r in [answered, no_answer, failed] {
            m.observe(&Event::Request(Arc::new(r)));
        }
        let t = m.encode().unwrap();
        let v = |metric: &str| {
            value(
                &t,
                &format!("inference_benchmarker_{metric}{{run_id=\"r1\"}}"),
            )
        };
        assert_eq!(v("reasoning_tokens_total"), 5.0);
        assert_eq!(v("no_answer_requests_total"), 1.0);
        assert_eq!(v("tool_calls_total"), 1.0);
        assert_eq!(v("images_sent_total"), 3.0);
        assert_eq!(v("time_to_first_answer_token_seconds_count"), 1.0);
        assert_eq!(v("time_to_first_answer_token_seconds_sum"), 0.06);
    }

    #[test]
    fn trace_span_counts_follow_the_trace_sink() {
        let gauges = Arc::new(LiveGauges::new(1));
        let m = Metrics::new(HashMap::new(), gauges.clone()).unwrap();
        let t = m.encode().unwrap();
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_trace_spans_total{result="dropped"}"#
            ),
            0.0
        );
        let stats = Arc::new(crate::otlp::OtlpStats::default());
        gauges.attach_traces(stats.clone());
        stats
            .exported
            .store(7, std::sync::atomic::Ordering::Relaxed);
        stats.dropped.store(3, std::sync::atomic::Ordering::Relaxed);
        let t = m.encode().unwrap();
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_trace_spans_total{result="exported"}"#
            ),
            7.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_trace_spans_total{result="dropped"}"#
            ),
            3.0
        );
        stats.dropped.store(5, std::sync::atomic::Ordering::Relaxed);
        let t = m.encode().unwrap();
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_trace_spans_total{result="dropped"}"#
            ),
            5.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_trace_spans_total{result="failed"}"#
            ),
            0.0
        );
    }

    #[test]
    fn live_values_and_steps() {
        let gauges = Arc::new(LiveGauges::new(1));
        let m = Metrics::new(HashMap::new(), gauges.clone()).unwrap();
        gauges.request_started();
        gauges.set_phase(Phase::Drain);
        gauges.set_lag(0, std::time::Duration::from_millis(2));
        let step = |index, kind, rate| StepInfo {
            index,
            id: "s".into(),
            kind,
            max_vus: 4,
            rate,
            duration_secs: 1.0,
        };
        m.observe(&Event::StepStarted(Arc::new(step(
            1,
            StepKind::Rate,
            Some(2.5),
        ))));
        let t = m.encode().unwrap();
        assert_eq!(
            value(&t, "inference_benchmarker_offered_rate_requests_per_second"),
            2.5
        );
        m.observe(&Event::StepStarted(Arc::new(step(
            2,
            StepKind::Throughput,
            None,
        ))));
        let t = m.encode().unwrap();
        assert_eq!(
            value(&t, "inference_benchmarker_offered_rate_requests_per_second"),
            0.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_step_info{kind="rate",step="1"}"#
            ),
            0.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_step_info{kind="throughput",step="2"}"#
            ),
            1.0
        );
        assert_eq!(value(&t, "inference_benchmarker_in_flight_requests"), 1.0);
        assert_eq!(
            value(&t, r#"inference_benchmarker_phase{phase="drain"}"#),
            1.0
        );
        assert_eq!(
            value(&t, r#"inference_benchmarker_phase{phase="step"}"#),
            0.0
        );
        assert_eq!(
            value(
                &t,
                r#"inference_benchmarker_event_loop_lag_seconds{worker="0"}"#
            ),
            0.002
        );
        assert!(t.contains("# HELP inference_benchmarker_requests_total "));
    }
}
