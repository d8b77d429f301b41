//! Timing errors judged as `tests/accuracy.rs` judges them: per request, ours against the
//! simulated server's record, within the machine's floor (measured in the same run by
//! `floor::run`) plus 1 ms at p50 and p90, 2.5 ms at p99.

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

pub const ALLOWANCE_MS: f64 = 1.0;
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

/// `errors` (ours − server's, ms) within the floor's plus the allowances.
pub fn assert_within_floor(name: &str, mut errors: Vec<f64>, floor: &[f64]) {
    assert!(!errors.is_empty(), "{name}: no request measured");
    errors.sort_by(f64::total_cmp);
    for (q, allowance) in [
        (0.5, ALLOWANCE_MS),
        (0.9, ALLOWANCE_MS),
        (0.99, ALLOWANCE_P99_MS),
    ] {
        let got = percentile(&errors, q);
        let machine = percentile(floor, q).max(0.0);
        assert!(
            got.abs() <= machine + allowance,
            "{name} p{}: ours {got:.3} ms, the machine's floor {machine:.3} ms (+{allowance} ms allowed)",
            q * 100.0
        );
    }
}
