//! Timing errors judged as `tests/accuracy.rs` judges them: per request, ours against the
//! simulated server's record, within the machine's floor (measured in the same run by
//! `floor::run`) plus 1 ms at p50 and p90, 2.5 ms at p99.
//!
//! A timed run on a shared 2-core VM is hit at random by the host (16 % steal time seen on an
//! idle VM, with the raw-socket floor's own TTFT error p99 at 10–25 ms): a p90 or p99 of a few
//! dozen requests is then one unlucky request on either side. So a timed test runs its whole
//! measurement again when its timing judgment fails, up to [`ATTEMPTS`] times, and prints each
//! failed attempt (`tests/run.sh` lists them at the end of the suite); an error the generator adds systematically fails every attempt. Exact
//! judgments (counts, outcomes, ids) are assertions and fail at once.

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

/// How many times a timed measurement may run before its timing judgment fails the test: a
/// noisy minute of the host failed accuracy.rs twice in a row in a full suite (TTFT error p90
/// 7.66 and 5.22 ms against floors of 4.36 and 4.19 + 1 ms), then passed.
pub const ATTEMPTS: usize = 5;

/// Runs `measure` (a whole timed run: server, benchmark, floor and judgments, holding the
/// machine) until its timing judgments hold, at most [`ATTEMPTS`] times; panics with every
/// attempt's failure when none held.
pub fn timed<T>(name: &str, mut measure: impl FnMut() -> Result<T, String>) -> T {
    let _one = one_timed_run();
    let mut failures = Vec::new();
    for attempt in 1..=ATTEMPTS {
        match measure() {
            Ok(value) => return value,
            Err(e) => {
                let line = format!("{name}: timed attempt {attempt} of {ATTEMPTS} failed: {e}");
                eprintln!("{line}");
                super::append_to_log("IB_RETRY_LOG", &line);
                failures.push(e);
            }
        }
    }
    panic!(
        "{name}: the timing judgment failed in all {ATTEMPTS} attempts:\n{}",
        failures.join("\n")
    );
}

/// What the generator may add to a request's timing error beyond the machine's floor at p50 and
/// p90 (the 1 ms). The floor client writes raw bytes on a socket and reads them back;
/// ours also goes through the HTTP client, the SSE decoder and an event loop shared with other
/// requests: 0.3–0.6 ms above the floor on the 2-core VMs CI runs on.
pub const ALLOWANCE_MS: f64 = 1.0;
/// At p99 (one or two of a step's 60 requests) a single late wake-up of the VM decides it.
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

/// `errors` (ours − server's, ms) within the floor's plus the allowances, else what exceeded.
pub fn within_floor(name: &str, mut errors: Vec<f64>, floor: &[f64]) -> Result<(), String> {
    assert!(!errors.is_empty(), "{name}: no request measured");
    errors.sort_by(f64::total_cmp);
    for (q, allowance) in [
        (0.5, ALLOWANCE_MS),
        (0.9, ALLOWANCE_MS),
        (0.99, ALLOWANCE_P99_MS),
    ] {
        let got = percentile(&errors, q);
        let machine = percentile(floor, q).max(0.0);
        if got.abs() > machine + allowance {
            return Err(format!(
                "{name} p{}: ours {got:.3} ms, the machine's floor {machine:.3} ms (+{allowance} ms allowed)",
                q * 100.0
            ));
        }
    }
    Ok(())
}
