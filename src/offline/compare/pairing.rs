//! Which steps of two runs are compared with each other (pure).
//!
//! Two steps pair only when they measured the same thing: the same kind (closed loop with closed
//! loop, open loop with open loop), the same arrival process, and the same offered load within
//! [`LOAD_TOLERANCE`]: the arrival rate of an open-loop step, the users of a closed-loop one. A
//! latency measured at an 8 % higher load is no regression. When both runs are sweeps, their
//! rates come from each run's measured maximum and always differ a little: their open-loop steps
//! pair by rank (the k-th rate with the k-th), and a note says by how much the offered rates
//! differ. Any other step is listed unpaired.

use sinks::event::StepKind;
use sinks::json::{ResultsDocument, StepResult};

/// Offered loads closer than this share (of the larger) are the same load.
pub const LOAD_TOLERANCE: f64 = 0.05;

/// The pairs (base index, new index), in base order, and what the reader must know about them.
#[derive(Debug, Default, PartialEq)]
pub struct Pairing {
    pub pairs: Vec<(usize, usize)>,
    pub notes: Vec<String>,
}

/// What a step is: its kind and, in the open loop, its arrival process (files written before
/// `arrival` existed name it in the id).
fn what(r: &StepResult) -> (StepKind, Option<&str>) {
    let arrival = r
        .offered_rate
        .and(r.arrival.as_deref().or_else(|| r.id.split('@').next()));
    (r.kind, arrival)
}

/// The offered load: requests per second in the open loop, users in the closed loop.
fn load(r: &StepResult) -> f64 {
    r.offered_rate.unwrap_or(r.config.max_vus as f64)
}

fn same_load(a: &StepResult, b: &StepResult) -> bool {
    let (a, b) = (load(a), load(b));
    a == b || (a - b).abs() <= LOAD_TOLERANCE * a.abs().max(b.abs())
}

/// Whether the run is a sweep (the original tool's `benchmark_kind`).
fn is_sweep(doc: &ResultsDocument) -> bool {
    doc.config.get("benchmark_kind").and_then(|k| k.as_str()) == Some("Sweep")
}

/// Open-loop steps of `steps` that are `kind`, in rate order.
fn ranked(steps: &[StepResult], kind: (StepKind, Option<&str>)) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..steps.len())
        .filter(|&i| steps[i].kind == StepKind::Rate && what(&steps[i]) == kind)
        .collect();
    idx.sort_by(|&x, &y| load(&steps[x]).total_cmp(&load(&steps[y])));
    idx
}

/// Pairs the steps of two runs (module docs).
pub fn pair_steps(base: &ResultsDocument, new: &ResultsDocument) -> Pairing {
    let (b, n) = (&base.results, &new.results);
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut by_rank = Vec::new();
    if is_sweep(base) && is_sweep(new) {
        let mut kinds = Vec::new();
        for kind in b.iter().filter(|r| r.kind == StepKind::Rate).map(what) {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        for kind in kinds {
            by_rank.extend(ranked(b, kind).into_iter().zip(ranked(n, kind)));
        }
    }
    pairs.extend(by_rank.iter().copied());
    for (i, s) in b.iter().enumerate() {
        if pairs.iter().any(|p| p.0 == i) {
            continue;
        }
        let distance = |j: usize| (load(&n[j]) - load(s)).abs();
        let found = (0..n.len())
            .filter(|&j| !pairs.iter().any(|p| p.1 == j))
            .filter(|&j| what(&n[j]) == what(s) && same_load(s, &n[j]))
            .min_by(|&x, &y| distance(x).total_cmp(&distance(y)));
        if let Some(j) = found {
            pairs.push((i, j));
        }
    }
    pairs.sort_unstable();
    let notes = rank_note(b, n, &by_rank).into_iter().collect();
    Pairing { pairs, notes }
}

/// How much the offered rates of steps paired by rank differ.
fn rank_note(b: &[StepResult], n: &[StepResult], by_rank: &[(usize, usize)]) -> Option<String> {
    let changes: Vec<f64> = by_rank
        .iter()
        .map(|&(i, j)| 100.0 * (load(&n[j]) - load(&b[i])) / load(&b[i]))
        .filter(|c| c.is_finite())
        .collect();
    let lo = changes.iter().copied().reduce(f64::min)?;
    let hi = changes.iter().copied().reduce(f64::max)?;
    if lo.abs() < 0.05 && hi.abs() < 0.05 {
        return None;
    }
    let by = if hi - lo < 0.05 {
        format!("by {lo:+.1} %")
    } else {
        format!("by {lo:+.1} % to {hi:+.1} %")
    };
    Some(format!(
        "note: both runs are sweeps: their rate steps pair by rank (the k-th rate with the k-th); the new run's offered rates differ from the base's {by}"
    ))
}
