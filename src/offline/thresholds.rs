//! Pass/fail gates over the results (pure), k6-style: `--threshold 'p99(ttft)<800ms'`,
//! `--threshold 'error_rate<1%'`. Every measured step must pass every threshold; a failure makes
//! the process exit with its own code after the results are written, so a benchmark can gate CI
//! and deployments.
//!
//! Grammar: `[AGG(]METRIC[)] OP VALUE[UNIT]`
//! - latency metrics (AGG one of p50 p60 p70 p80 p90 p95 p99 p99.9 avg min max stddev; default
//!   avg): `ttft`, `itl`, `e2e`, `icl` (inter-chunk), `queue_delay`, `ttft_from_schedule`,
//!   `e2e_from_schedule`; values in `ms` (default), `s` or `us`;
//! - step figures (no AGG): `error_rate` (failed / total, `%` or a share), `request_rate`
//!   (req/s), `token_throughput` (tokens/s), `achieved_rate`, `dropped_arrivals`,
//!   `dropped_rate` (dropped / arrivals), `successful_requests`, `failed_requests`, `goodput`
//!   (requests/s meeting every `--slo` objective; 0 without `--slo`);
//! - OP: `<`, `<=`, `>`, `>=`, `==`.

use std::fmt;

use sinks::json::StepResult;
use sinks::stats::Summary;

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
                Figure::ErrorRate | Figure::DroppedRate => Unit::Share,
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
            "step {}: {} failed (actual {actual})",
            self.step, self.threshold,
        )
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
        "itl" => Some(Latency::Itl),
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
        "goodput" => Figure::Goodput,
        _ => {
            return Err(format!(
                "unknown metric '{name}' (latencies: ttft itl e2e icl queue_delay ttft_from_schedule \
                 e2e_from_schedule; figures: error_rate request_rate token_throughput achieved_rate \
                 dropped_arrivals dropped_rate successful_requests failed_requests goodput)"
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
    let share = matches!(
        metric,
        Metric::Figure(Figure::ErrorRate | Figure::DroppedRate)
    );
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
            Metric::Figure(f) => Some(figure(r, f)),
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
        })
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

fn figure(r: &StepResult, f: Figure) -> f64 {
    let share = |num: u64, den: u64| {
        if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    };
    match f {
        Figure::ErrorRate => share(r.failed_requests, r.total_requests),
        Figure::RequestRate => r.request_rate,
        Figure::TokenThroughput => r.token_throughput_secs,
        Figure::AchievedRate => r.achieved_rate,
        Figure::DroppedArrivals => r.dropped_arrivals as f64,
        Figure::DroppedRate => share(r.dropped_arrivals, r.total_requests + r.dropped_arrivals),
        Figure::SuccessfulRequests => r.successful_requests as f64,
        Figure::FailedRequests => r.failed_requests as f64,
        Figure::Goodput => r.goodput.as_ref().map_or(0.0, |g| g.request_rate),
    }
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
        assert_eq!(
            f.to_string(),
            "step constant@10.00req/s: error_rate<1% failed (actual 2%)"
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
