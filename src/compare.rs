//! `compare base.json new.json`: each step's key figures side by side, with the relative change
//! and the regressions beyond a tolerance marked (for CI gates).
//!
//! Steps are paired by position (the n-th measured step of each run): a sweep's rates come from
//! the measured maximum throughput and differ a little from run to run, while the plan (throughput
//! step, then rates in order) is the same. Both ids are shown when they differ.

use std::fmt::Write as _;
use std::path::Path;

use sinks::json::{ResultsDocument, StepResult};

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
    let changes = FIGURES
        .iter()
        .map(|f| {
            let (b, n) = ((f.read)(base), (f.read)(new));
            let both = b.zip(n);
            Change {
                figure: f.name,
                unit: f.unit,
                base: b,
                new: n,
                relative: both.filter(|(b, _)| *b != 0.0).map(|(b, n)| (n - b) / b),
                regression: both.is_some_and(|(b, n)| is_regression(f, b, n, tolerance)),
            }
        })
        .collect();
    StepComparison {
        base_id: base.id.clone(),
        new_id: new.id.clone(),
        changes,
    }
}

/// Pairs the measured steps of two runs by position and compares each pair.
pub fn compare(base: &ResultsDocument, new: &ResultsDocument, tolerance: f64) -> Comparison {
    let steps = base
        .results
        .iter()
        .zip(&new.results)
        .map(|(b, n)| compare_step(b, n, tolerance))
        .collect();
    let paired = base.results.len().min(new.results.len());
    let unmatched = base.results[paired..]
        .iter()
        .map(|r| format!("{} (base only)", r.id))
        .chain(
            new.results[paired..]
                .iter()
                .map(|r| format!("{} (new only)", r.id)),
        )
        .collect();
    Comparison {
        tolerance,
        steps,
        unmatched,
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
        return crate::table::MISSING.into();
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
        "{} regression(s) beyond {:.1}% tolerance",
        n,
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
        use crate::test_fixtures::step;
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
        });
        for line in text
            .lines()
            .filter(|l| l.contains("TTFT") || l.contains("E2E"))
        {
            assert!(line.contains("no data") && !line.contains("-100"), "{text}");
        }
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
