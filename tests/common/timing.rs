//! Timing errors judged as `tests/accuracy.rs` judges them: per request, ours against the
//! simulated server's record, within the machine's floor (measured in the same run by
//! `floor::run`) plus 1 ms at p50 and p90; at p99, few enough outliers beyond the floor's p90
//! plus 2.5 ms.
//!
//! A timed run on a shared 2-core VM is hit at random by the host (16 % steal time seen on an
//! idle VM, with the raw-socket floor's own TTFT error p99 at 10–25 ms): a p90 of a few dozen
//! requests is then one unlucky request on either side, and their p99 is their worst. So a
//! timed test runs its whole measurement several times and passes when most attempts pass
//! ([`judge`]), printing each failed attempt (`tests/run.sh` lists them at the end of the suite,
//! and fails it when one test failed several). An error the generator adds systematically fails
//! every attempt; one it adds now and then fails enough of them. Exact judgments (counts,
//! outcomes, ids) are assertions and fail at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use inference_benchmarker::sim::SimRecord;

use super::floor::{self, FloorRequest};
use super::percentile;

/// The runs of one test binary whose timing is judged, one at a time: cargo runs a binary's
/// tests in parallel, and two loaded runs on a 2-core machine measure each other.
static ONE_TIMED_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the machine for one timed run (a test that failed still lets the next go).
pub fn one_timed_run() -> std::sync::MutexGuard<'static, ()> {
    ONE_TIMED_RUN.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many times a timed measurement may run, and how many of them must pass: a majority
/// ([`MAJORITY`] of [`ATTEMPTS`]), stopping as soon as that many passed or failed. A noisy
/// minute of the host failed accuracy.rs twice in a row in a full suite (TTFT error p90 7.66 and
/// 5.22 ms against floors of 4.36 and 4.19 + 1 ms), so one attempt is not the verdict; but a
/// rule of "any one of 5" let a defect that fails 60 % of attempts pass 92 % of runs. With the
/// majority it passes 32 %, and `tests/run.sh` fails the suite when a test passed with
/// [`SUSPECT_FAILURES`] failed attempts: then such a defect is green in 18 % of runs (one that
/// fails 80 %: 3 %), while a correct build on a VM whose attempts fail 5 % of the time (1 in 20,
/// a host hiccup) is red in 1.4 % of its timed tests.
pub const ATTEMPTS: usize = 5;
pub const MAJORITY: usize = ATTEMPTS / 2 + 1;
/// Failed attempts in one passing test that `tests/run.sh` counts as a failure of the suite
/// (it reads them in `IB_RETRY_LOG`; keep the two in step).
pub const SUSPECT_FAILURES: usize = 2;

/// What [`judge`] decided: the last passing attempt's value when a majority passed, and every
/// failed attempt's reason (in order) either way.
pub struct Verdict<T> {
    pub passed: Option<T>,
    pub failures: Vec<String>,
}

/// Runs `measure` (a whole timed run: server, benchmark, floor and judgments) until
/// [`MAJORITY`] attempts passed or [`MAJORITY`] failed, calling `on_failure(attempt, reason)`
/// after each failed one. Pure but for what `measure` does: the caller holds the machine.
pub fn judge<T>(
    mut measure: impl FnMut() -> Result<T, String>,
    mut on_failure: impl FnMut(usize, &str),
) -> Verdict<T> {
    let (mut passes, mut last, mut failures) = (0, None, Vec::new());
    for attempt in 1..=ATTEMPTS {
        match measure() {
            Ok(value) => {
                passes += 1;
                last = Some(value);
            }
            Err(e) => {
                on_failure(attempt, &e);
                failures.push(e);
            }
        }
        if passes == MAJORITY || failures.len() == MAJORITY {
            break;
        }
    }
    Verdict {
        passed: (passes >= MAJORITY).then_some(last).flatten(),
        failures,
    }
}

/// Runs a timed measurement by the majority rule ([`judge`]), holding the machine; prints each
/// failed attempt and appends it to `$IB_RETRY_LOG` (`tests/run.sh` counts them per test), and
/// panics with every failure when a majority failed.
pub fn timed<T>(name: &str, measure: impl FnMut() -> Result<T, String>) -> T {
    let _one = one_timed_run();
    let verdict = judge(measure, |attempt, e| {
        let line = format!("{name}: timed attempt {attempt} of {ATTEMPTS} failed: {e}");
        eprintln!("{line}");
        super::append_to_log("IB_RETRY_LOG", &line);
    });
    match verdict.passed {
        Some(value) => value,
        None => panic!(
            "{name}: the timing judgment failed in {} attempts (a majority of {ATTEMPTS}):\n{}",
            verdict.failures.len(),
            verdict.failures.join("\n")
        ),
    }
}

/// What the generator may add to a request's timing error beyond the machine's floor at p50 and
/// p90 (the 1 ms). The floor client writes raw bytes on a socket and reads them back;
/// ours also goes through the HTTP client, the SSE decoder and an event loop shared with other
/// requests: 0.3–0.6 ms above the floor on the 2-core VMs CI runs on.
pub const ALLOWANCE_MS: f64 = 1.0;
/// Beyond the floor's p90, where a request's error counts as an outlier of the p99 judgment: a
/// single late wake-up of the VM is worth several milliseconds.
pub const ALLOWANCE_P99_MS: f64 = 2.5;

/// Starts the floor client beside a run: `count` plain text requests of `tokens` tokens, one
/// every 100 ms.
pub fn start_floor(addr: SocketAddr, count: usize, tokens: u32) -> JoinHandle<Vec<FloorRequest>> {
    std::thread::spawn(move || {
        floor::run(
            addr,
            "floor",
            count,
            Duration::from_millis(100),
            tokens,
            Duration::from_secs(30),
        )
    })
}

/// The floor's TTFT errors (its first chunk against the server's first token), sorted.
pub fn floor_errors(floor: &[FloorRequest], by_id: &HashMap<&str, &SimRecord>) -> Vec<f64> {
    let mut errors: Vec<f64> = floor
        .iter()
        .map(|f| f.chunk_offsets_ms[0] - by_id[f.id.as_str()].token_offsets_us[0] as f64 / 1e3)
        .collect();
    errors.sort_by(f64::total_cmp);
    errors
}

/// The share of requests expected beyond the p99 judgment's threshold on a quiet machine (the
/// requests beyond a p99 are 1 %).
pub const OUTLIER_SHARE: f64 = 0.01;

/// How many of `n` requests may lie beyond a threshold that each one crosses with probability
/// `p`, by chance alone: the binomial mean plus two standard deviations, rounded down (60
/// requests at 1 %: 2).
pub fn outliers_allowed(n: usize, p: f64) -> usize {
    let mean = n as f64 * p;
    (mean + 2.0 * (mean * (1.0 - p)).sqrt()).floor() as usize
}

/// `errors` (ours − server's, ms) within the floor's plus the allowances, else what exceeded.
///
/// At p50 and p90, percentile against percentile. At p99 — of a few dozen requests, their worst
/// one — by count: the requests whose error passes the floor's p90 plus [`ALLOWANCE_P99_MS`]
/// may be as many as chance puts there ([`outliers_allowed`]) at the larger of
/// [`OUTLIER_SHARE`] and the floor's own share beyond that threshold (a host that woke the floor
/// late as often wakes us late as often); the worst request against the floor's worst judged
/// one hiccup against another, and let a defect that delays a few requests by a lot pass.
pub fn within_floor(name: &str, mut errors: Vec<f64>, floor: &[f64]) -> Result<(), String> {
    assert!(!errors.is_empty(), "{name}: no request measured");
    assert!(!floor.is_empty(), "{name}: no floor request measured");
    errors.sort_by(f64::total_cmp);
    for q in [0.5, 0.9] {
        let got = percentile(&errors, q);
        let machine = percentile(floor, q).max(0.0);
        if got.abs() > machine + ALLOWANCE_MS {
            return Err(format!(
                "{name} p{}: ours {got:.3} ms, the machine's floor {machine:.3} ms (+{ALLOWANCE_MS} ms allowed)",
                q * 100.0
            ));
        }
    }
    let threshold = percentile(floor, 0.9).max(0.0) + ALLOWANCE_P99_MS;
    let beyond = |v: &[f64]| v.iter().filter(|e| e.abs() > threshold).count();
    let floor_share = beyond(floor) as f64 / floor.len() as f64;
    let allowed = outliers_allowed(errors.len(), floor_share.max(OUTLIER_SHARE));
    let outliers = beyond(&errors);
    if outliers > allowed {
        let worst: Vec<String> = errors
            .iter()
            .rev()
            .take(outliers.min(5))
            .map(|e| format!("{e:.3}"))
            .collect();
        return Err(format!(
            "{name} p99: {outliers} of our {} requests beyond the floor's p90 + {ALLOWANCE_P99_MS} ms \
             ({threshold:.3} ms; the floor's {:.1} % beyond it), {allowed} allowed; worst {} ms",
            errors.len(),
            floor_share * 100.0,
            worst.join(", ")
        ));
    }
    Ok(())
}
