//! Pass/fail gates over the results (pure), k6-style: `--threshold 'p99(ttft)<800ms'`,
//! `--threshold 'error_rate<1%'`. Every measured step must pass every threshold; a failure makes
//! the process exit with its own code after the results are written, so a benchmark can gate CI
//! and deployments.
//!
//! Grammar: `[AGG(]METRIC[)] OP VALUE[UNIT]`
//! - latency metrics (AGG one of p50 p60 p70 p80 p90 p95 p99 p99.9 avg min max stddev; default
//!   avg): `ttft`, `itl` (or `tpot`: `inter_token_latency_ms`), `per_token_itl`, `e2e`, `icl`
//!   (inter-chunk), `queue_delay`, `ttft_from_schedule`, `e2e_from_schedule`; values in `ms`
//!   (default), `s` or `us`;
//! - step figures (no AGG): `error_rate` ((failed + dropped) / arrivals, `%` or a share, as the
//!   summary table shows it), `request_rate` (req/s), `token_throughput` (tokens/s),
//!   `achieved_rate`, `dropped_arrivals`, `dropped_rate` (dropped / arrivals),
//!   `successful_requests`, `failed_requests`, `no_answer_rate` (no-answer / successful requests),
//!   `goodput` (requests/s meeting every `--slo` objective);
//! - a gate on a figure the run does not compute (`goodput` without `--slo`, a token latency
//!   with an endpoint that streams none) is a usage error, before any request ([`check_computed`]);
//! - OP: `<`, `<=`, `>`, `>=`, `==`.

use std::fmt;

use sinks::confidence::{wilson, Interval, Verdict};
use sinks::json::StepResult;
use sinks::stats::{LatencyHistogram, Summary};

/// The confidence of the interval a missed gate shows beside its figure.
pub const CONFIDENCE: f64 = 0.95;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Eq => (left - right).abs() <= 1e-9 * right.abs().max(1.0),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Latency {
    Ttft,
    Itl,
    PerTokenItl,
    E2e,
    Icl,
    QueueDelay,
    TtftFromSchedule,
    E2eFromSchedule,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Figure {
    ErrorRate,
    RequestRate,
    TokenThroughput,
    AchievedRate,
    DroppedArrivals,
    DroppedRate,
    SuccessfulRequests,
    FailedRequests,
    NoAnswerRate,
    Goodput,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Metric {
    Latency(Latency, Agg),
    Figure(Figure),
}

/// Which figure of a latency summary.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Agg {
    Percentile(&'static str),
    Avg,
    Min,
    Max,
    Stddev,
}

/// One parsed `--threshold`.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    text: String,
    metric: Metric,
    op: Op,
    /// In the metric's unit: ms for latencies, a share for rates of requests, else as reported.
    value: f64,
}

/// A step that missed a threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub step: String,
    pub threshold: String,
    /// `None`: the step has no such figure (e.g. no latency when no request succeeded), so the
    /// gate cannot be passed.
    pub actual: Option<f64>,
    /// How `actual` is shown: its unit (shares as percentages).
    pub unit: Unit,
    /// Where one is defined (a latency percentile, a share of requests), the figure's
    /// [`CONFIDENCE`] interval and whether all of it misses the gate.
    pub interval: Option<(Interval, Verdict)>,
}

/// The unit a metric's value is in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    Ms,
    /// A share (0..1), shown as a percentage.
    Share,
    RequestsPerSecond,
    TokensPerSecond,
    Requests,
    Arrivals,
}

impl Unit {
    fn show(self, v: f64) -> String {
        match self {
            Unit::Ms => format!("{} ms", trim(v)),
            Unit::Share => format!("{}%", trim(v * 100.0)),
            Unit::RequestsPerSecond => format!("{} req/s", trim(v)),
            Unit::TokensPerSecond => format!("{} tokens/s", trim(v)),
            Unit::Requests => crate::runtime::text::count(v as u64, "request", "requests"),
            Unit::Arrivals => crate::runtime::text::count(v as u64, "arrival", "arrivals"),
        }
    }
}

impl Metric {
    fn unit(self) -> Unit {
        match self {
            Metric::Latency(..) => Unit::Ms,
            Metric::Figure(f) => match f {
                Figure::ErrorRate | Figure::DroppedRate | Figure::NoAnswerRate => Unit::Share,
                Figure::RequestRate | Figure::AchievedRate | Figure::Goodput => {
                    Unit::RequestsPerSecond
                }
                Figure::TokenThroughput => Unit::TokensPerSecond,
                Figure::SuccessfulRequests | Figure::FailedRequests => Unit::Requests,
                Figure::DroppedArrivals => Unit::Arrivals,
            },
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let actual = self
            .actual
            .map_or_else(|| "no data".into(), |v| self.unit.show(v));
        write!(
            f,
            "step {}: {} failed (actual {actual}",
            self.step, self.threshold,
        )?;
        if let Some((i, verdict)) = self.interval {
            let high = i
                .high
                .map_or_else(|| "unbounded".into(), |h| self.unit.show(h));
            write!(
                f,
                "; {:.0} % interval {} – {high}",
                CONFIDENCE * 100.0,
                self.unit.show(i.low)
            )?;
            if verdict != Verdict::Fail {
                write!(f, ": within noise of the limit, more requests would tell")?;
            }
        }
        write!(f, ")")
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl std::str::FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let (lhs, op, rhs) = split_op(&compact)
            .ok_or_else(|| format!("threshold '{text}' has no comparison (<, <=, >, >=, ==)"))?;
        let metric = parse_metric(lhs).map_err(|e| format!("threshold '{text}': {e}"))?;
        let value = parse_value(metric, rhs).map_err(|e| format!("threshold '{text}': {e}"))?;
        Ok(Threshold {
            text: text.trim().to_string(),
            metric,
            op,
            value,
        })
    }
}

fn split_op(s: &str) -> Option<(&str, Op, &str)> {
    // Two-character operators first, so "<=" is not read as "<".
    for (sym, op) in [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ] {
        if let Some(i) = s.find(sym) {
            return Some((&s[..i], op, &s[i + sym.len()..]));
        }
    }
    None
}

fn parse_metric(lhs: &str) -> Result<Metric, String> {
    let (agg, name) = match lhs.split_once('(') {
        Some((agg, rest)) => {
            let name = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("'{lhs}' is missing its closing parenthesis"))?;
            (Some(parse_agg(agg)?), name)
        }
        None => (None, lhs),
    };
    let latency = match name {
        "ttft" => Some(Latency::Ttft),
        "itl" | "tpot" => Some(Latency::Itl),
        "per_token_itl" => Some(Latency::PerTokenItl),
        "e2e" => Some(Latency::E2e),
        "icl" => Some(Latency::Icl),
        "queue_delay" => Some(Latency::QueueDelay),
        "ttft_from_schedule" => Some(Latency::TtftFromSchedule),
        "e2e_from_schedule" => Some(Latency::E2eFromSchedule),
        _ => None,
    };
    if let Some(l) = latency {
        return Ok(Metric::Latency(l, agg.unwrap_or(Agg::Avg)));
    }
    let figure = match name {
        "error_rate" => Figure::ErrorRate,
        "request_rate" => Figure::RequestRate,
        "token_throughput" => Figure::TokenThroughput,
        "achieved_rate" => Figure::AchievedRate,
        "dropped_arrivals" => Figure::DroppedArrivals,
        "dropped_rate" => Figure::DroppedRate,
        "successful_requests" => Figure::SuccessfulRequests,
        "failed_requests" => Figure::FailedRequests,
        "no_answer_rate" => Figure::NoAnswerRate,
        "goodput" => Figure::Goodput,
        _ => {
            return Err(format!(
            "unknown metric '{name}' (latencies: ttft itl tpot per_token_itl e2e icl queue_delay \
                 ttft_from_schedule e2e_from_schedule; figures: error_rate request_rate \
                 token_throughput achieved_rate dropped_arrivals dropped_rate successful_requests \
                 failed_requests no_answer_rate goodput)"
        ))
        }
    };
    if agg.is_some() {
        return Err(format!("'{name}' is a single figure: no aggregation"));
    }
    Ok(Metric::Figure(figure))
}

fn parse_agg(agg: &str) -> Result<Agg, String> {
    Ok(match agg {
        "avg" | "mean" => Agg::Avg,
        "min" => Agg::Min,
        "max" => Agg::Max,
        "stddev" => Agg::Stddev,
        "p50" | "med" => Agg::Percentile("p50"),
        "p60" => Agg::Percentile("p60"),
        "p70" => Agg::Percentile("p70"),
        "p80" => Agg::Percentile("p80"),
        "p90" => Agg::Percentile("p90"),
        "p95" => Agg::Percentile("p95"),
        "p99" => Agg::Percentile("p99"),
        "p99.9" | "p999" | "p99_9" => Agg::Percentile("p99.9"),
        _ => {
            return Err(format!(
                "unknown aggregation '{agg}' (p50 p60 p70 p80 p90 p95 p99 p99.9 avg min max stddev)"
            ))
        }
    })
}

fn parse_value(metric: Metric, rhs: &str) -> Result<f64, String> {
    let split = rhs
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(rhs.len());
    let (number, unit) = rhs.split_at(split);
    let v: f64 = number
        .parse()
        .map_err(|_| format!("'{rhs}' does not start with a number"))?;
    if !v.is_finite() {
        return Err(format!("'{rhs}' is not a finite number"));
    }
    let share = metric.unit() == Unit::Share;
    match (metric, unit) {
        (Metric::Latency(..), "" | "ms") => Ok(v),
        (Metric::Latency(..), "s") => Ok(v * 1000.0),
        (Metric::Latency(..), "us" | "µs") => Ok(v / 1000.0),
        (Metric::Figure(_), "%") if share => Ok(v / 100.0),
        (Metric::Figure(_), "") => Ok(v),
        _ => Err(format!("unit '{unit}' does not fit this metric")),
    }
}

impl Threshold {
    /// The step's value of this threshold's metric; `None` when it was not measured.
    fn actual(&self, r: &StepResult) -> Option<f64> {
        match self.metric {
            Metric::Latency(l, agg) => {
                let s = latency(r, l);
                s.known(pick(s, agg))
            }
            Metric::Figure(f) => figure(r, f),
        }
    }

    pub fn check(&self, r: &StepResult) -> Option<Failure> {
        let actual = self.actual(r);
        let holds = actual.is_some_and(|a| self.op.holds(a, self.value));
        (!holds).then(|| Failure {
            step: r.id.clone(),
            threshold: self.text.clone(),
            actual,
            unit: self.metric.unit(),
            interval: self.interval(r).map(|i| {
                let below = matches!(self.op, Op::Lt | Op::Le);
                (i, i.verdict(below, self.value))
            }),
        })
    }

    /// The figure's [`CONFIDENCE`] interval, where one is defined: a latency percentile's from
    /// the order statistics of its histogram, the error rate's (Wilson) over the offered load.
    fn interval(&self, r: &StepResult) -> Option<Interval> {
        if self.op == Op::Eq {
            return None;
        }
        match self.metric {
            Metric::Latency(l, Agg::Percentile(p)) => {
                let q = p.strip_prefix('p')?.parse::<f64>().ok()? / 100.0;
                let h = &r.histograms;
                let encoded = match l {
                    Latency::Ttft => &h.ttft,
                    Latency::Itl => &h.itl,
                    Latency::PerTokenItl => &r.reasoning.reasoning_histograms.per_token_itl,
                    Latency::E2e => &h.e2e,
                    Latency::Icl => &h.inter_chunk,
                    Latency::QueueDelay => &h.queue_delay,
                    Latency::TtftFromSchedule => &h.ttft_from_schedule,
                    Latency::E2eFromSchedule => &h.e2e_from_schedule,
                };
                LatencyHistogram::from_base64(encoded)
                    .ok()?
                    .quantile_interval_ms(q, CONFIDENCE)
            }
            Metric::Figure(Figure::ErrorRate) => {
                let arrivals = r.total_requests + r.dropped_arrivals;
                wilson(r.failed_requests + r.dropped_arrivals, arrivals, CONFIDENCE)
            }
            _ => None,
        }
    }

    /// e.g. `p99(ttft) < 800 ms`, for messages.
    pub fn text(&self) -> &str {
        &self.text
    }
}

fn latency(r: &StepResult, l: Latency) -> &Summary {
    match l {
        Latency::Ttft => &r.time_to_first_token_ms,
        Latency::Itl => &r.inter_token_latency_ms,
        Latency::PerTokenItl => &r.reasoning.per_token_itl_ms,
        Latency::E2e => &r.e2e_latency_ms,
        Latency::Icl => &r.inter_chunk_latency_ms,
        Latency::QueueDelay => &r.queue_delay_ms,
        Latency::TtftFromSchedule => &r.time_to_first_token_from_schedule_ms,
        Latency::E2eFromSchedule => &r.e2e_latency_from_schedule_ms,
    }
}

fn pick(s: &Summary, agg: Agg) -> f64 {
    match agg {
        Agg::Avg => s.avg,
        Agg::Min => s.min,
        Agg::Max => s.max,
        Agg::Stddev => s.stddev,
        Agg::Percentile(p) => match p {
            "p50" => s.p50,
            "p60" => s.p60,
            "p70" => s.p70,
            "p80" => s.p80,
            "p90" => s.p90,
            "p95" => s.p95,
            "p99" => s.p99,
            _ => s.p99_9,
        },
    }
}

fn figure(r: &StepResult, f: Figure) -> Option<f64> {
    Some(match f {
        // What the summary table shows: a dropped arrival is load the server never served.
        Figure::ErrorRate => error_rate(r),
        Figure::RequestRate => r.request_rate,
        Figure::TokenThroughput => r.token_throughput_secs,
        Figure::AchievedRate => r.achieved_rate,
        Figure::DroppedArrivals => r.dropped_arrivals as f64,
        Figure::DroppedRate => share(r.dropped_arrivals, r.total_requests + r.dropped_arrivals),
        Figure::SuccessfulRequests => r.successful_requests as f64,
        Figure::FailedRequests => r.failed_requests as f64,
        Figure::NoAnswerRate => no_answer_rate(r),
        // Refused at startup without `--slo` (`check_computed`); a merged file may lack it.
        Figure::Goodput => r.goodput.as_ref()?.request_rate,
    })
}

fn share(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// (failed + dropped) / arrivals: the share of the offered load that was not served. The summary
/// table's Error Rate and the `error_rate` gate both read it.
pub fn error_rate(r: &StepResult) -> f64 {
    share(
        r.failed_requests + r.dropped_arrivals,
        r.total_requests + r.dropped_arrivals,
    )
}

/// No-answer requests (reasoning used up `max_tokens`) over the successful requests.
pub fn no_answer_rate(r: &StepResult) -> f64 {
    share(r.reasoning.no_answer_requests, r.successful_requests)
}

/// What a run computes, for [`check_computed`].
#[derive(Clone, Copy, Debug)]
pub struct Computed {
    /// `--slo` was given: goodput is measured.
    pub goodput: bool,
    /// The endpoint streams tokens (not embeddings or rerank): TTFT, ITL, inter-chunk.
    pub tokens: bool,
}

/// A gate on a figure the run never computes would pass or fail for nothing: refused before any
/// request, naming the flag it needs.
pub fn check_computed(gates: &[Threshold], run: Computed) -> Result<(), String> {
    for g in gates {
        let needs = match g.metric {
            Metric::Figure(Figure::Goodput) if !run.goodput => {
                "goodput is measured only with --slo (e.g. --slo ttft=500ms,itl=50ms)"
            }
            Metric::Latency(
                Latency::Ttft
                | Latency::Itl
                | Latency::PerTokenItl
                | Latency::Icl
                | Latency::TtftFromSchedule,
                _,
            ) if !run.tokens => {
                "embeddings and rerank stream no tokens: token latencies need --endpoint chat, \
                 completions or responses (gate their latency with e2e)"
            }
            _ => continue,
        };
        return Err(format!("--threshold '{}': {needs}", g.text));
    }
    Ok(())
}

/// Every failure of every step against every threshold.
pub fn evaluate(thresholds: &[Threshold], steps: &[StepResult]) -> Vec<Failure> {
    steps
        .iter()
        .flat_map(|s| thresholds.iter().filter_map(move |t| t.check(s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> StepResult {
        let json = serde_json::json!({
            "id": "constant@10.00req/s", "executor_type": "ConstantArrivalRate",
            "config": {"max_vus": 8, "duration_secs": 10, "rate": 10.0},
            "total_requests": 100, "total_tokens": 1000, "token_throughput_secs": 95.0,
            "duration_ms": 10500, "failed_requests": 2, "successful_requests": 98,
            "request_rate": 9.3, "total_tokens_sent": 4900, "prompt_tokens_sent": 5000, "step": 1, "kind": "rate",
            "offered_rate": 10.0, "achieved_rate": 10.0, "send_duration_ms": 10000,
            "dropped_arrivals": 0, "errors": {"http_5xx": 2}, "http_statuses": {"200": 98, "500": 2},
            "output_tokens": {"requested": 1000, "server_reported_requests": 98,
              "server_prompt_tokens": 5000, "server_completion_tokens": 1000,
              "server_cached_tokens": 0, "client_counted_requests": 0},
            "ended_early": null, "first_error": null,
            "histograms": {"ttft": "", "itl": "", "e2e": "", "inter_chunk": "", "queue_delay": "",
              "ttft_from_schedule": "", "e2e_from_schedule": ""},
            "time_to_first_token_ms": summary(120.0, 800.0),
            "inter_token_latency_ms": summary(20.0, 45.0),
            "e2e_latency_ms": summary(900.0, 2500.0),
            "inter_chunk_latency_ms": summary(20.0, 60.0),
            "queue_delay_ms": summary(0.5, 1.5),
            "time_to_first_token_from_schedule_ms": summary(121.0, 801.0),
            "e2e_latency_from_schedule_ms": summary(901.0, 2501.0),
        });
        serde_json::from_value(json).expect("a StepResult")
    }

    fn summary(avg: f64, p99: f64) -> serde_json::Value {
        serde_json::json!({"p50": avg, "p60": avg, "p70": avg, "p80": avg, "p90": avg, "p95": avg,
            "p99": p99, "avg": avg, "p99_9": p99, "min": 1.0, "max": p99, "stddev": 3.0, "count": 98})
    }

    fn t(s: &str) -> Threshold {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// A missed percentile gate shows the figure's interval from its histogram, and says when
    /// the miss is within noise; an error-rate gate its Wilson interval.
    #[test]
    fn a_missed_gate_shows_how_sure_its_figure_is() {
        let mut r = step();
        let mut h = LatencyHistogram::new();
        for ms in 1..=100 {
            h.record_us(ms * 1000);
        }
        r.histograms.ttft = h.to_base64().unwrap();
        r.time_to_first_token_ms = h.summary();
        // The median is 50 ms, its 95 % interval 40 – 61 ms.
        let close = t("p50(ttft)<45ms").check(&r).unwrap().to_string();
        assert!(
            close.contains("95 % interval 40 ms – 61") && close.contains("within noise"),
            "{close}"
        );
        let clear = t("p50(ttft)<30ms").check(&r).unwrap().to_string();
        assert!(
            clear.contains("interval") && !clear.contains("noise"),
            "{clear}"
        );
        // A p99 of 100 requests has no upper bound at 95 %: above its lower bound (97 ms) the
        // miss is certain, below it within noise.
        let certain = t("p99(ttft)<50ms").check(&r).unwrap().to_string();
        assert!(certain.ends_with("– unbounded)"), "{certain}");
        let unbounded = t("p99(ttft)<98ms").check(&r).unwrap().to_string();
        assert!(
            unbounded.contains("– unbounded: within noise"),
            "{unbounded}"
        );
        // 2 failed of 100: 0.55 % – 7 %.
        let errors = t("error_rate<1%").check(&r).unwrap().to_string();
        assert!(
            errors.contains("interval 0.5") && errors.contains("within noise"),
            "{errors}"
        );
        assert!(t("avg(ttft)<1ms").check(&r).unwrap().interval.is_none());
    }

    #[test]
    fn latency_thresholds_with_units() {
        let r = step();
        assert!(t("p99(ttft)<800ms").check(&r).is_some(), "800 is not < 800");
        assert!(t("p99(ttft)<=800ms").check(&r).is_none());
        assert!(t("p99(ttft) < 0.9s").check(&r).is_none());
        assert!(t("avg(itl)<20500us").check(&r).is_none());
        assert!(
            t("itl<25").check(&r).is_none(),
            "avg by default, ms by default"
        );
        assert!(t("max(e2e)>=2500").check(&r).is_none());
        assert!(t("p99.9(e2e_from_schedule)<2s").check(&r).is_some());
        assert_eq!(t("p99 ( ttft ) <= 1 s").op, Op::Le);
    }

    #[test]
    fn step_figures() {
        let r = step();
        assert!(t("error_rate<1%").check(&r).is_some(), "2 % failed");
        assert!(t("error_rate<0.05").check(&r).is_none());
        assert!(t("request_rate>9").check(&r).is_none());
        assert!(t("token_throughput>=100").check(&r).is_some());
        assert!(t("dropped_arrivals==0").check(&r).is_none());
        let f = t("error_rate<1%").check(&r).unwrap();
        assert!(
            f.to_string().starts_with(
                "step constant@10.00req/s: error_rate<1% failed (actual 2%; 95 % interval"
            ),
            "{f}"
        );
        let actual = |gate: &str| t(gate).check(&r).unwrap().to_string();
        assert!(actual("p99(ttft)<800ms").ends_with("(actual 800 ms)"));
        assert!(actual("token_throughput>=100").ends_with("(actual 95 tokens/s)"));
        assert!(actual("request_rate>10").ends_with("(actual 9.3 req/s)"));
        assert!(actual("failed_requests<1").ends_with("(actual 2 requests)"));
        assert_eq!(
            evaluate(&[t("error_rate<1%"), t("itl<25")], &[r.clone(), r]).len(),
            2
        );
    }

    #[test]
    fn the_error_rate_counts_dropped_arrivals_as_the_table_does() {
        // 160 arrivals at 20 req/s, 100 dropped at the in-flight cap, 60 served without error.
        let mut r = step();
        (r.total_requests, r.successful_requests, r.failed_requests) = (60, 60, 0);
        r.dropped_arrivals = 100;
        let f = t("error_rate<1%")
            .check(&r)
            .expect("100 of 160 arrivals were not served");
        assert!(
            f.to_string().contains("(actual 62.5%; 95 % interval 54."),
            "{f}"
        );
        let table = crate::offline::table::render(std::slice::from_ref(&r));
        assert!(table.contains("62.50%"), "{table}");
        r.failed_requests = 2;
        assert!((error_rate(&r) - 102.0 / 160.0).abs() < 1e-12);
    }

    #[test]
    fn no_answer_rate_is_a_share_of_the_successful_requests() {
        let mut r = step();
        assert!(t("no_answer_rate<1%").check(&r).is_none());
        r.reasoning.no_answer_requests = 49;
        let f = t("no_answer_rate<1%")
            .check(&r)
            .expect("half had no answer");
        assert!(f.to_string().ends_with("(actual 50%)"), "{f}");
        assert!(t("no_answer_rate<=0.5").check(&r).is_none());
    }

    #[test]
    fn per_token_itl_and_tpot_are_gated_on_their_own_figures() {
        let mut r = step();
        r.reasoning.per_token_itl_ms = serde_json::from_value(summary(24.0, 50.0)).unwrap();
        assert!(t("tpot<22").check(&r).is_none(), "tpot is itl: 20 ms");
        assert!(t("itl<22").check(&r).is_none());
        assert!(t("per_token_itl<22").check(&r).is_some(), "24 ms a token");
        assert!(t("p99(per_token_itl)<=50").check(&r).is_none());
    }

    #[test]
    fn a_gate_on_a_figure_the_run_does_not_compute_is_refused() {
        let all = Computed {
            goodput: true,
            tokens: true,
        };
        let gates = [t("goodput<1000"), t("p99(ttft)<1s"), t("e2e<2s")];
        assert_eq!(check_computed(&gates, all), Ok(()));
        let e = check_computed(
            &gates,
            Computed {
                goodput: false,
                ..all
            },
        )
        .unwrap_err();
        assert!(e.contains("'goodput<1000'") && e.contains("--slo"), "{e}");
        let e = check_computed(
            &gates[1..],
            Computed {
                tokens: false,
                ..all
            },
        )
        .unwrap_err();
        assert!(
            e.contains("'p99(ttft)<1s'") && e.contains("--endpoint"),
            "{e}"
        );
        assert_eq!(
            check_computed(
                &gates[2..],
                Computed {
                    goodput: false,
                    tokens: false
                }
            ),
            Ok(())
        );
        // A step without goodput (a merged file may lack it) has no data, not 0.
        let f = t("goodput<1000").check(&step()).unwrap();
        assert!(f.to_string().contains("no data"), "{f}");
    }

    #[test]
    fn a_gate_on_a_missing_figure_fails_as_no_data() {
        let mut r = step();
        r.time_to_first_token_ms = Summary::default();
        let f = t("p99(ttft)<800ms")
            .check(&r)
            .expect("nothing to pass with");
        assert!(f.to_string().contains("no data"), "{f}");
    }

    #[test]
    fn bad_thresholds_are_messages() {
        for (s, needle) in [
            ("p99(ttft)", "no comparison"),
            ("p97(ttft)<1", "unknown aggregation"),
            ("p99(tft)<1", "unknown metric"),
            ("p99(error_rate)<1", "single figure"),
            ("p99(ttft<1", "closing parenthesis"),
            ("ttft<fast", "number"),
            ("ttft<1%", "unit"),
            ("request_rate>5ms", "unit"),
        ] {
            let e = s.parse::<Threshold>().unwrap_err();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }
}
