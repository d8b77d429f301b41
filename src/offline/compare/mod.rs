//! `compare base.json new.json`: each step's key figures side by side, with the relative change
//! and the regressions beyond a tolerance marked (for CI gates).
//!
//! Steps are paired by what they are (`pairing.rs`): the same kind and arrival process at the
//! same offered load within 5 %, or, when both runs are sweeps, the k-th rate with the k-th
//! with a note on how much the rates differ. Both ids are shown when they differ; a step with no
//! counterpart is listed as such. Settings that make two runs' figures incomparable (benchmark
//! kind, model, endpoint, arrival process, prompt and output lengths, profile, dataset) are
//! compared first and every difference is warned about, and so are prefix-cache hit rates that
//! differ by more than [`CACHE_HIT_POINTS`] between paired steps.

use std::fmt::Write as _;
use std::path::Path;

use sinks::json::{ResultsDocument, StepResult};

use super::report;
use workloads::{
    multi_token_chunks, CHUNK_FIGURES, IMAGES_TOOLS_FIGURES, INPUT_FIGURES, REASONING_FIGURES,
};

mod pairing;
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
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    pub tolerance: f64,
    pub steps: Vec<StepComparison>,
    /// Steps only one run has (ids), e.g. a run that stopped early.
    pub unmatched: Vec<String>,
    /// Settings that differ between the runs: `key: base → new`.
    pub warnings: Vec<String>,
    /// Whole lines about the pairing and the steps' conditions (rank pairing, prefix cache).
    pub notes: Vec<String>,
}

/// The configuration keys whose difference makes the runs' figures incomparable.
const SETTINGS: [&str; 10] = [
    "benchmark_kind",
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
    let pairing::Pairing { pairs, mut notes } = pairing::pair_steps(base, new);
    let steps = pairs
        .iter()
        .map(|&(i, j)| compare_step(&base.results[i], &new.results[j], tolerance))
        .collect();
    notes.extend(
        pairs
            .iter()
            .flat_map(|&(i, j)| cache_hit_warnings(&base.results[i], &new.results[j])),
    );
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
        notes,
    }
}

/// Prefix-cache hit rates (percentage points) of two paired steps further apart than this make
/// their latencies incomparable: cached prompt tokens skip prefill.
pub const CACHE_HIT_POINTS: f64 = 5.0;

/// A warning per prefix-cache hit rate (the client's `cached_tokens`, the server's counters)
/// both steps have and that differs by more than [`CACHE_HIT_POINTS`].
fn cache_hit_warnings(base: &StepResult, new: &StepResult) -> Vec<String> {
    let server = |r: &StepResult| {
        r.server_metrics
            .as_ref()
            .and_then(report::server::prefix_hit_rate)
    };
    let rates = [
        (
            "prefix-cache hit rate (cached prompt tokens, as the responses reported them)",
            base.client_prefix_cache_hit_rate
                .zip(new.client_prefix_cache_hit_rate),
        ),
        (
            "server prefix-cache hit rate",
            server(base).zip(server(new)),
        ),
    ];
    rates
        .into_iter()
        .filter_map(|(name, rates)| {
            let (b, n) = rates?;
            let (b, n) = (b * 100.0, n * 100.0);
            ((n - b).abs() > CACHE_HIT_POINTS).then(|| {
                let title = if base.id == new.id {
                    base.id.clone()
                } else {
                    format!("{} → {}", base.id, new.id)
                };
                format!(
                    "warning: {title}: {name} {b:.1} % → {n:.1} %, more than {CACHE_HIT_POINTS:.0} points apart: one run's prompts were served from the prefix cache more than the other's, so their latencies are not comparable (a rerun with the same prompts against a warm server? see --cache-salt)"
                )
            })
        })
        .collect()
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
    for n in &cmp.notes {
        let _ = writeln!(out, "{n}");
    }
    if !cmp.notes.is_empty() {
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
    if !cmp.unmatched.is_empty() {
        let _ = writeln!(
            out,
            "(steps pair when they are the same kind and arrival process at the same offered load, within {:.0} %: the rate of an open-loop step, the users of a closed-loop one)",
            pairing::LOAD_TOLERANCE * 100.0
        );
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
            ..Default::default()
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
            ..Default::default()
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

    /// A step's TTFT (all its percentiles) times `factor`.
    fn slower(mut s: StepResult, factor: f64) -> StepResult {
        let t = &mut s.time_to_first_token_ms;
        for v in [&mut t.p50, &mut t.p90, &mut t.p99, &mut t.avg] {
            *v *= factor;
        }
        s
    }

    #[test]
    fn steps_at_different_loads_are_not_paired() {
        use sinks::event::StepKind::{Rate, Throughput};
        // A rate run at 5 and 10 req/s against a sweep at 5.40 and 10.81 with 14 % slower
        // first tokens: 8 % apart is another load, no regression can be read off it.
        let base = doc(
            vec![
                named(Rate, "constant", Some(5.0)),
                named(Rate, "constant", Some(10.0)),
            ],
            serde_json::json!({"benchmark_kind": "Rate"}),
        );
        let new = doc(
            vec![
                named(Throughput, "", None),
                slower(named(Rate, "constant", Some(5.40)), 1.14),
                slower(named(Rate, "constant", Some(10.81)), 1.14),
            ],
            serde_json::json!({"benchmark_kind": "Sweep"}),
        );
        let cmp = compare(&base, &new, 0.1);
        assert!(cmp.steps.is_empty(), "{cmp:?}");
        assert_eq!(cmp.unmatched.len(), 5);
        let text = render(&cmp);
        assert!(!text.contains("REGRESSION"), "{text}");
        assert!(
            text.contains("benchmark_kind: \"Rate\" → \"Sweep\"")
                && text.contains("not compared: constant@5.40req/s (new only)")
                && text.contains("at the same offered load, within 5 %"),
            "{text}"
        );
        // Within 5 %, the same load: paired and judged.
        let near = doc(
            vec![slower(named(Rate, "constant", Some(5.2)), 1.14)],
            serde_json::json!({"benchmark_kind": "Rate"}),
        );
        let cmp = compare(&base, &near, 0.1);
        assert_eq!(cmp.steps.len(), 1);
        assert_eq!(cmp.steps[0].base_id, "constant@5.00req/s");
        assert_eq!(cmp.regressions(), 2, "TTFT p50 and p99");
        // A closed loop pairs with a closed loop of as many users, not with an open loop.
        let closed = |users: u64| {
            let mut s = named(Throughput, "", None);
            s.config.max_vus = users;
            doc(vec![s], serde_json::json!({}))
        };
        assert_eq!(compare(&closed(64), &closed(64), 0.1).steps.len(), 1);
        assert!(compare(&closed(64), &closed(32), 0.1).steps.is_empty());
        assert!(compare(&closed(64), &base, 0.1).steps.is_empty());
    }

    #[test]
    fn two_sweeps_pair_by_rank_and_say_how_far_apart_their_rates_are() {
        use sinks::event::StepKind::{Rate, Throughput};
        let sweep = |max: f64| {
            doc(
                vec![
                    named(Throughput, "", None),
                    named(Rate, "constant", Some(0.6 * max)),
                    named(Rate, "constant", Some(1.2 * max)),
                ],
                serde_json::json!({"benchmark_kind": "Sweep"}),
            )
        };
        let cmp = compare(&sweep(9.0), &sweep(9.9), 0.1);
        let pairs: Vec<(&str, &str)> = cmp
            .steps
            .iter()
            .map(|s| (s.base_id.as_str(), s.new_id.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("throughput", "throughput"),
                ("constant@5.40req/s", "constant@5.94req/s"),
                ("constant@10.80req/s", "constant@11.88req/s")
            ]
        );
        assert!(cmp.unmatched.is_empty());
        let text = render(&cmp);
        assert!(
            text.contains("both runs are sweeps: their rate steps pair by rank")
                && text.contains("differ from the base's by +10.0 %"),
            "{text}"
        );
        // The same rates: nothing to say.
        assert!(compare(&sweep(9.0), &sweep(9.0), 0.1).notes.is_empty());
    }

    #[test]
    fn differing_prefix_cache_hit_rates_are_warned_about() {
        use crate::offline::test_fixtures::server_metrics;
        let cfg = serde_json::json!({});
        let with = |client: Option<f64>, server: f64| {
            let mut s = crate::offline::test_fixtures::step(5, 0, 0);
            s.client_prefix_cache_hit_rate = client;
            s.server_metrics = Some(server_metrics(2.0, 0.4, server, 0.08));
            doc(vec![s], cfg.clone())
        };
        let base = with(Some(0.02), 0.03);
        // 4 points apart: within the stated 5.
        assert!(compare(&base, &with(Some(0.06), 0.07), 0.1)
            .notes
            .is_empty());
        // A rerun served from the first run's cache: both rates far apart, both warned about.
        let cmp = compare(&base, &with(Some(0.40), 0.41), 0.1);
        assert_eq!(cmp.notes.len(), 2, "{:?}", cmp.notes);
        let text = render(&cmp);
        assert!(
            text.contains("constant@12.00req/s: prefix-cache hit rate (cached prompt tokens")
                && text.contains("2.0 % → 40.0 %, more than 5 points apart")
                && text.contains("server prefix-cache hit rate 3.0 % → 41.0 %"),
            "{text}"
        );
        // Only one side knows its rate: nothing to compare.
        assert!(compare(&with(None, 0.03), &with(Some(0.40), 0.03), 0.1)
            .notes
            .is_empty());
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
