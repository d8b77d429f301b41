//! `compare base.json new.json`: each step's key figures side by side, with the relative change
//! and the regressions beyond a tolerance marked (for CI gates).
//!
//! Steps are paired by what they are: the same kind and arrival process, and the same offered
//! rate; a sweep's rates come from each run's measured maximum and differ a little from run to
//! run, so rate steps of one kind left without an exact match pair in rate order (the k-th with
//! the k-th). Both ids are shown when they differ; a step with no counterpart is listed as such.
//! Settings that make two runs' figures incomparable (model, endpoint, arrival process, prompt and
//! output lengths, profile, dataset) are compared first and every difference is warned about.

use std::fmt::Write as _;
use std::path::Path;

use sinks::json::{ResultsDocument, StepResult};

use super::report;
use workloads::{
    multi_token_chunks, CHUNK_FIGURES, IMAGES_TOOLS_FIGURES, INPUT_FIGURES, REASONING_FIGURES,
};

mod workloads;

/// Default `--tolerance`: changes smaller than this share are noise, not regressions.
pub const DEFAULT_TOLERANCE: f64 = 0.10;

/// Which way is better for a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
}

/// A compared figure: name, unit, direction, and how to read it from a step.
struct Figure {
    name: &'static str,
    unit: &'static str,
    better: Better,
    /// `None`: not measured in that step (e.g. no latency when no request succeeded).
    read: fn(&StepResult) -> Option<f64>,
}

fn error_share(r: &StepResult) -> Option<f64> {
    (r.total_requests > 0).then(|| 100.0 * r.failed_requests as f64 / r.total_requests as f64)
}

const FIGURES: &[Figure] = &[
    Figure {
        name: "TTFT p50",
        unit: "ms",
        better: Better::Lower,
        read: |r| r.time_to_first_token_ms.known(r.time_to_first_token_ms.p50),
    },
    Figure {
        name: "TTFT p99",
        unit: "ms",
        better: Better::Lower,
        read: |r| r.time_to_first_token_ms.known(r.time_to_first_token_ms.p99),
    },
    Figure {
        name: "ITL p50",
        unit: "ms",
        better: Better::Lower,
        read: |r| r.inter_token_latency_ms.known(r.inter_token_latency_ms.p50),
    },
    Figure {
        name: "ITL p99",
        unit: "ms",
        better: Better::Lower,
        read: |r| r.inter_token_latency_ms.known(r.inter_token_latency_ms.p99),
    },
    Figure {
        name: "E2E p50",
        unit: "ms",
        better: Better::Lower,
        read: |r| r.e2e_latency_ms.known(r.e2e_latency_ms.p50),
    },
    Figure {
        name: "E2E p99",
        unit: "ms",
        better: Better::Lower,
        read: |r| r.e2e_latency_ms.known(r.e2e_latency_ms.p99),
    },
    Figure {
        name: "Throughput",
        unit: "tok/s",
        better: Better::Higher,
        read: |r| Some(r.token_throughput_secs),
    },
    Figure {
        name: "Request rate",
        unit: "req/s",
        better: Better::Higher,
        read: |r| Some(r.request_rate),
    },
    Figure {
        name: "Error rate",
        unit: "%",
        better: Better::Lower,
        read: error_share,
    },
];

/// The server's own view (`server_metrics`), compared when both steps have it: shown with its
/// relative change, never marked as a regression (more waiting or a fuller KV cache at the same
/// load is a clue to read beside our figures, not a verdict on its own).
const SERVER_FIGURES: &[Figure] = &[
    Figure {
        name: "Server waiting (mean)",
        unit: "req",
        better: Better::Lower,
        read: |r| server(r, |m| m.series.get("requests_waiting")?.mean()),
    },
    Figure {
        name: "Server KV cache (mean)",
        unit: "%",
        better: Better::Lower,
        read: |r| server(r, |m| Some(m.series.get("kv_cache_usage")?.mean()? * 100.0)),
    },
    Figure {
        name: "Server prefix-cache hits",
        unit: "%",
        better: Better::Higher,
        read: |r| server(r, |m| Some(report::server::prefix_hit_rate(m)? * 100.0)),
    },
    Figure {
        name: "Server TTFT p50",
        unit: "ms",
        better: Better::Lower,
        read: |r| {
            server(r, |m| {
                report::server::histogram_ms(m, "ttft_seconds", report::server::Quantile::P50)
            })
        },
    },
];

fn server(
    r: &StepResult,
    read: impl Fn(&sinks::server_metrics::ServerMetrics) -> Option<f64>,
) -> Option<f64> {
    r.server_metrics.as_ref().and_then(read)
}

/// Error rates are compared in percentage points: below this many points of increase, a
/// change (e.g. 0 → 0.1 %) is not a regression however large its ratio.
const ERROR_RATE_POINTS: f64 = 1.0;

/// One figure of one step pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub figure: &'static str,
    pub unit: &'static str,
    /// `None`: not measured in that step.
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// (new − base) / base; `None` when base is 0 or either is missing.
    pub relative: Option<f64>,
    pub regression: bool,
}

/// One pair of steps.
#[derive(Clone, Debug, PartialEq)]
pub struct StepComparison {
    pub base_id: String,
    pub new_id: String,
    pub changes: Vec<Change>,
}

/// The whole comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub tolerance: f64,
    pub steps: Vec<StepComparison>,
    /// Steps only one run has (ids), e.g. a run that stopped early.
    pub unmatched: Vec<String>,
    /// Settings that differ between the runs: `key: base → new`.
    pub warnings: Vec<String>,
}

/// The configuration keys whose difference makes the runs' figures incomparable.
const SETTINGS: [&str; 9] = [
    "model_name",
    "endpoint",
    "batch_size",
    "arrival",
    "prompt_options",
    "decode_options",
    "image_options",
    "profile",
    "dataset_file",
];

/// `key: base → new` for each setting both runs record and that differs.
pub fn setting_differences(base: &ResultsDocument, new: &ResultsDocument) -> Vec<String> {
    SETTINGS
        .iter()
        .filter_map(|key| {
            let (b, n) = (base.config.get(*key)?, new.config.get(*key)?);
            (b != n).then(|| format!("{key}: {b} → {n}"))
        })
        .collect()
}

/// What a step is, for pairing: its kind and, in the open loop, its arrival process (files
/// written before `arrival` existed name it in the id).
fn what(r: &StepResult) -> (sinks::event::StepKind, Option<&str>) {
    let arrival = r
        .offered_rate
        .and(r.arrival.as_deref().or_else(|| r.id.split('@').next()));
    (r.kind, arrival)
}

/// Offered rates that name the same step (ids show two decimals).
fn same_rate(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() < 0.005,
        (None, None) => true,
        _ => false,
    }
}

/// Index pairs (base, new) of the steps that are the same thing, in base order.
fn pair_steps(base: &[StepResult], new: &[StepResult]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    let mut taken = vec![false; new.len()];
    // Exact: same kind, arrival and rate.
    for (i, b) in base.iter().enumerate() {
        let found = (0..new.len()).find(|&j| {
            !taken[j] && what(&new[j]) == what(b) && same_rate(new[j].offered_rate, b.offered_rate)
        });
        if let Some(j) = found {
            taken[j] = true;
            pairs.push((i, j));
        }
    }
    // The rest of each kind in rate order (a sweep's k-th rate with the other's k-th).
    let by_rate = |steps: &[StepResult], idx: &mut Vec<usize>| {
        idx.sort_by(|&x, &y| {
            let rate = |k: usize| steps[k].offered_rate.unwrap_or(0.0);
            rate(x).total_cmp(&rate(y))
        })
    };
    let paired_base: Vec<usize> = pairs.iter().map(|p| p.0).collect();
    let mut left_base: Vec<usize> = (0..base.len())
        .filter(|i| !paired_base.contains(i))
        .collect();
    by_rate(base, &mut left_base);
    let mut left_new: Vec<usize> = (0..new.len()).filter(|&j| !taken[j]).collect();
    by_rate(new, &mut left_new);
    for i in left_base {
        if let Some(pos) = left_new
            .iter()
            .position(|&j| what(&new[j]) == what(&base[i]))
        {
            pairs.push((i, left_new.remove(pos)));
        }
    }
    pairs.sort_unstable();
    pairs
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.steps
            .iter()
            .flat_map(|s| &s.changes)
            .filter(|c| c.regression)
            .count()
    }
}

/// Whether `new` is worse than `base` by more than `tolerance` (a share) for this figure.
fn is_regression(f: &Figure, base: f64, new: f64, tolerance: f64) -> bool {
    if f.name == "Error rate" {
        return new - base > ERROR_RATE_POINTS && new > base * (1.0 + tolerance);
    }
    if base <= 0.0 {
        // Nothing to compare against (e.g. no successful request in the base step).
        return false;
    }
    match f.better {
        Better::Lower => new > base * (1.0 + tolerance),
        Better::Higher => new < base * (1.0 - tolerance),
    }
}

fn compare_step(base: &StepResult, new: &StepResult, tolerance: f64) -> StepComparison {
    let change = |f: &Figure, judged: bool| {
        let (b, n) = ((f.read)(base), (f.read)(new));
        let both = b.zip(n);
        Change {
            figure: f.name,
            unit: f.unit,
            base: b,
            new: n,
            relative: both.filter(|(b, _)| *b != 0.0).map(|(b, n)| (n - b) / b),
            regression: judged && both.is_some_and(|(b, n)| is_regression(f, b, n, tolerance)),
        }
    };
    let mut changes: Vec<Change> = FIGURES.iter().map(|f| change(f, true)).collect();
    if base.reasoning.reasoning_requests > 0 || new.reasoning.reasoning_requests > 0 {
        changes.extend(
            REASONING_FIGURES
                .iter()
                .map(|f| change(f, f.name.starts_with("Time to first answer"))),
        );
    }
    if multi_token_chunks(base) || multi_token_chunks(new) {
        changes.extend(CHUNK_FIGURES.iter().map(|f| change(f, false)));
    }
    changes.extend(
        IMAGES_TOOLS_FIGURES
            .iter()
            .filter(|f| (f.read)(base).is_some() || (f.read)(new).is_some())
            .map(|f| change(f, true)),
    );
    if base.inputs.is_some() || new.inputs.is_some() {
        changes.extend(INPUT_FIGURES.iter().map(|f| change(f, true)));
    }
    // The server's figures when both steps were scraped; each one either step lacks (e.g. no
    // prefix cache on that engine) is left out rather than shown as "no data".
    if base.server_metrics.is_some() && new.server_metrics.is_some() {
        changes.extend(
            SERVER_FIGURES
                .iter()
                .filter(|f| (f.read)(base).is_some() || (f.read)(new).is_some())
                .map(|f| change(f, false)),
        );
    }
    StepComparison {
        base_id: base.id.clone(),
        new_id: new.id.clone(),
        changes,
    }
}

/// Pairs the measured steps of two runs by what they are (module docs) and compares each pair.
pub fn compare(base: &ResultsDocument, new: &ResultsDocument, tolerance: f64) -> Comparison {
    let pairs = pair_steps(&base.results, &new.results);
    let steps = pairs
        .iter()
        .map(|&(i, j)| compare_step(&base.results[i], &new.results[j], tolerance))
        .collect();
    let unmatched = base
        .results
        .iter()
        .enumerate()
        .filter(|(i, _)| !pairs.iter().any(|p| p.0 == *i))
        .map(|(_, r)| format!("{} (base only)", r.id))
        .chain(
            new.results
                .iter()
                .enumerate()
                .filter(|(j, _)| !pairs.iter().any(|p| p.1 == *j))
                .map(|(_, r)| format!("{} (new only)", r.id)),
        )
        .collect();
    Comparison {
        tolerance,
        steps,
        unmatched,
        warnings: setting_differences(base, new),
    }
}

/// Reads a results document, with the file name in the error.
pub fn load(path: &Path) -> Result<ResultsDocument, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a results file: {e}", path.display()))
}

fn format_value(v: Option<f64>, unit: &str) -> String {
    let Some(v) = v else {
        return crate::offline::table::MISSING.into();
    };
    let digits = if v.abs() >= 100.0 { 1 } else { 2 };
    format!("{v:.digits$} {unit}")
}

fn format_relative(c: &Change) -> String {
    match (c.relative, c.new) {
        (Some(r), _) => format!("{:+.1}%", r * 100.0),
        _ if c.base.is_none() || c.new.is_none() => "no data".into(),
        (None, Some(0.0)) => "=".into(),
        _ => "new".into(),
    }
}

/// A Markdown table per step pair; regressions marked `REGRESSION`.
pub fn render(cmp: &Comparison) -> String {
    let mut out = String::new();
    if !cmp.warnings.is_empty() {
        let _ = writeln!(
            out,
            "warning: the runs' settings differ, their figures may not be comparable:"
        );
        for w in &cmp.warnings {
            let _ = writeln!(out, "  {w}");
        }
        out.push('\n');
    }
    for s in &cmp.steps {
        let title = if s.base_id == s.new_id {
            s.base_id.clone()
        } else {
            format!("{} → {}", s.base_id, s.new_id)
        };
        let _ = writeln!(out, "## {title}\n");
        let rows: Vec<[String; 5]> = s
            .changes
            .iter()
            .map(|c| {
                [
                    c.figure.to_string(),
                    format_value(c.base, c.unit),
                    format_value(c.new, c.unit),
                    format_relative(c),
                    if c.regression {
                        "REGRESSION".into()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect();
        out.push_str(&markdown_table(
            &["Figure", "Base", "New", "Change", ""],
            &rows,
        ));
        out.push('\n');
    }
    for u in &cmp.unmatched {
        let _ = writeln!(out, "not compared: {u}");
    }
    let n = cmp.regressions();
    let _ = writeln!(
        out,
        "{} beyond {:.1}% tolerance",
        crate::runtime::text::count(n as u64, "regression", "regressions"),
        cmp.tolerance * 100.0
    );
    out
}

/// A padded Markdown table (readable in a terminal, pasteable in a document).
pub fn markdown_table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = headers.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let cells: Vec<String> = cells
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!(" {c:<w$} "))
            .collect();
        format!("|{}|\n", cells.join("|"))
    };
    let mut out = line(headers.to_vec());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str) -> &'static Figure {
        FIGURES.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn direction_and_tolerance() {
        assert!(is_regression(f("TTFT p50"), 100.0, 120.0, 0.1));
        assert!(!is_regression(f("TTFT p50"), 100.0, 109.0, 0.1));
        assert!(!is_regression(f("TTFT p50"), 100.0, 50.0, 0.1));
        assert!(is_regression(f("Throughput"), 100.0, 80.0, 0.1));
        assert!(!is_regression(f("Throughput"), 100.0, 150.0, 0.1));
        assert!(!is_regression(f("TTFT p50"), 0.0, 10.0, 0.1));
    }

    #[test]
    fn error_rate_needs_points_and_ratio() {
        assert!(!is_regression(f("Error rate"), 0.0, 0.5, 0.1));
        assert!(is_regression(f("Error rate"), 0.0, 5.0, 0.1));
        assert!(!is_regression(f("Error rate"), 50.0, 51.5, 0.1));
    }

    #[test]
    fn a_missing_figure_is_no_data_not_minus_100_percent() {
        use crate::offline::test_fixtures::step;
        let pair = compare_step(&step(5, 0, 0), &step(0, 5, 0), 0.1);
        let ttft = pair
            .changes
            .iter()
            .find(|c| c.figure == "TTFT p50")
            .unwrap();
        assert_eq!(format_relative(ttft), "no data");
        assert!(!ttft.regression, "nothing to compare");
        let errors = pair
            .changes
            .iter()
            .find(|c| c.figure == "Error rate")
            .unwrap();
        assert!(errors.regression, "the loss shows in the error rate");
        let text = render(&Comparison {
            tolerance: 0.1,
            steps: vec![pair],
            unmatched: Vec::new(),
            warnings: Vec::new(),
        });
        for line in text
            .lines()
            .filter(|l| l.contains("TTFT") || l.contains("E2E"))
        {
            assert!(line.contains("no data") && !line.contains("-100"), "{text}");
        }
    }

    #[test]
    fn the_servers_own_figures_are_compared_when_both_steps_have_them() {
        use crate::offline::test_fixtures::{server_metrics, step};
        let (mut base, mut new) = (step(5, 0, 0), step(5, 0, 0));
        let figures = |p: &StepComparison| -> Vec<&str> {
            p.changes
                .iter()
                .map(|c| c.figure)
                .filter(|f| f.starts_with("Server"))
                .collect()
        };
        // Only one side scraped: nothing of the server's.
        base.server_metrics = Some(server_metrics(2.0, 0.40, 0.50, 0.080));
        assert!(figures(&compare_step(&base, &new, 0.1)).is_empty());
        // Twice the queue, a fuller cache, fewer prefix hits, a slower server TTFT.
        new.server_metrics = Some(server_metrics(4.0, 0.60, 0.25, 0.120));
        let pair = compare_step(&base, &new, 0.1);
        assert_eq!(
            figures(&pair),
            [
                "Server waiting (mean)",
                "Server KV cache (mean)",
                "Server prefix-cache hits",
                "Server TTFT p50"
            ]
        );
        let get = |name: &str| pair.changes.iter().find(|c| c.figure == name).unwrap();
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        assert!(close(get("Server waiting (mean)").relative, 1.0));
        assert!(close(get("Server KV cache (mean)").new, 60.0));
        assert!(close(get("Server prefix-cache hits").relative, -0.5));
        assert!(close(get("Server TTFT p50").base, 80.0));
        assert!(close(get("Server TTFT p50").relative, 0.5));
        assert!(
            pair.changes
                .iter()
                .filter(|c| c.figure.starts_with("Server"))
                .all(|c| !c.regression),
            "shown, not judged"
        );
        let text = render(&Comparison {
            tolerance: 0.1,
            steps: vec![pair],
            unmatched: Vec::new(),
            warnings: Vec::new(),
        });
        let row = text
            .lines()
            .find(|l| l.contains("Server waiting"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            row.contains("2.00 req") && row.contains("4.00 req") && row.contains("+100.0%"),
            "{row}"
        );
        assert!(text.contains("0 regressions"), "{text}");
    }

    #[test]
    fn reasoning_and_chunk_rows_only_when_a_step_has_them() {
        let plain = crate::offline::test_fixtures::step(5, 0, 0);
        let names = |c: &StepComparison| c.changes.iter().map(|c| c.figure).collect::<Vec<_>>();
        let none = compare_step(&plain, &plain, 0.1);
        assert!(!names(&none)
            .iter()
            .any(|n| n.contains("answer") || n.contains("chunk")));

        let mut base = plain.clone();
        let mut agg = sinks::reasoning_step::ReasoningAggregator::default();
        let mut r = crate::offline::test_fixtures::request(true, 0);
        r.reasoning.chunks = 2;
        r.reasoning.tokens = Some(2);
        r.reasoning.first_answer_at = Some(r.sent_at + 100_000_000);
        agg.record(&r);
        base.reasoning = agg.finish();
        let mut new = base.clone();
        let mut agg = sinks::reasoning_step::ReasoningAggregator::default();
        r.reasoning.first_answer_at = Some(r.sent_at + 200_000_000);
        r.chunk_offsets_us.truncate(2);
        agg.record(&r);
        new.reasoning = agg.finish();
        let pair = compare_step(&base, &new, 0.1);
        let get = |name: &str| pair.changes.iter().find(|c| c.figure == name).unwrap();
        assert!(
            get("Time to first answer p50").regression,
            "judged like TTFT"
        );
        assert!(
            !get("Reasoning tokens (mean)").regression,
            "shown, not judged"
        );
        let per_chunk = get("Tokens per chunk (mean)");
        assert!((per_chunk.new.unwrap() - r.output_tokens as f64 / 2.0).abs() < 0.01);
        assert!(!per_chunk.regression);
    }

    /// A step of `kind` at `rate` (open loop) named for `arrival`.
    fn named(kind: sinks::event::StepKind, arrival: &str, rate: Option<f64>) -> StepResult {
        let mut s = crate::offline::test_fixtures::step(5, 0, 0);
        s.kind = kind;
        s.offered_rate = rate;
        s.arrival = rate.map(|_| arrival.to_string());
        s.id = match rate {
            Some(r) => format!("{arrival}@{r:.2}req/s"),
            None => "throughput".into(),
        };
        s
    }

    fn doc(steps: Vec<StepResult>, config: serde_json::Value) -> ResultsDocument {
        let mut d = ResultsDocument::new(
            config,
            "r".into(),
            "0".into(),
            0,
            sinks::json::SystemInfo::from_sources(&Default::default()),
        );
        d.results = steps;
        d
    }

    #[test]
    fn steps_are_paired_by_what_they_are_not_by_position() {
        use sinks::event::StepKind::{Rate, Throughput};
        let cfg = serde_json::json!({});
        // A sweep (throughput, then rates) against a rate run: no throughput step to pair,
        // and a Poisson step is not a constant one.
        let base = doc(
            vec![
                named(Throughput, "", None),
                named(Rate, "constant", Some(2.0)),
                named(Rate, "constant", Some(4.0)),
            ],
            cfg.clone(),
        );
        let new = doc(
            vec![
                named(Rate, "constant", Some(4.0)),
                named(Rate, "constant", Some(2.0)),
                named(Rate, "poisson", Some(4.0)),
            ],
            cfg,
        );
        let cmp = compare(&base, &new, 0.1);
        let pairs: Vec<(&str, &str)> = cmp
            .steps
            .iter()
            .map(|s| (s.base_id.as_str(), s.new_id.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("constant@2.00req/s", "constant@2.00req/s"),
                ("constant@4.00req/s", "constant@4.00req/s")
            ]
        );
        assert_eq!(
            cmp.unmatched,
            ["throughput (base only)", "poisson@4.00req/s (new only)"]
        );
        // A sweep's rates come from each run's measured maximum: the k-th rate of the same
        // kind pairs with the k-th.
        let a = doc(
            vec![named(Rate, "constant", Some(10.2))],
            serde_json::json!({}),
        );
        let b = doc(
            vec![named(Rate, "constant", Some(10.5))],
            serde_json::json!({}),
        );
        assert_eq!(compare(&a, &b, 0.1).steps.len(), 1);
    }

    #[test]
    fn differing_settings_are_warned_about() {
        let cfg = |model: &str, decode: u64, arrival: &str| {
            serde_json::json!({
                "model_name": model, "endpoint": "chat", "arrival": {"kind": arrival},
                "prompt_options": {"num_tokens": 200}, "decode_options": {"num_tokens": decode},
            })
        };
        let base = doc(Vec::new(), cfg("m", 800, "constant"));
        assert!(compare(&base, &base, 0.1).warnings.is_empty());
        let new = doc(Vec::new(), cfg("other", 64, "poisson"));
        let text = render(&compare(&base, &new, 0.1));
        for needle in ["model_name", "decode_options", "arrival", "warning"] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        assert!(!text.contains("prompt_options"), "{text}");
    }

    #[test]
    fn relative_is_formatted_with_sign() {
        let c = Change {
            figure: "x",
            unit: "ms",
            base: Some(100.0),
            new: Some(120.0),
            relative: Some(0.2),
            regression: true,
        };
        assert_eq!(format_relative(&c), "+20.0%");
    }
}
