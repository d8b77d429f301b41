//! `--threshold` gates: a failing gate exits with code 5 after the results are written; passing
//! gates exit 0.

mod common;

use inference_benchmarker::sim::{SimConfig, SimServer};

fn run_with(sim: &SimServer, out: &std::path::Path, gates: &[&str]) -> std::process::Output {
    let mut cmd = common::binary();
    cmd.args([
        "-u",
        &sim.url(),
        "-w",
        "0s",
        "-d",
        "1s",
        "-b",
        "rate",
        "-r",
        "10",
        "-n",
    ])
    .args([
        "--decode-options",
        "num_tokens=4,min_tokens=4,max_tokens=4,variance=0",
    ])
    .arg("--output-dir")
    .arg(out);
    for g in gates {
        cmd.args(["--threshold", g]);
    }
    cmd.output().unwrap()
}

#[test]
fn a_failing_threshold_exits_5_after_writing_results() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(20.0),
            fixed_itl_ms: Some(5.0),
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let failing = run_with(&sim, out.path(), &["p99(ttft)<5ms", "error_rate<1%"]);
    let stderr = String::from_utf8_lossy(&failing.stderr);
    assert_eq!(failing.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("1 threshold check(s) failed"), "{stderr}");
    assert!(
        stderr.contains("p99(ttft)<5ms failed (actual 2"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&failing.stdout).contains("| Benchmark"));
    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["config"]["thresholds"][0], "p99(ttft)<5ms");

    let out = tempfile::tempdir().unwrap();
    let passing = run_with(
        &sim,
        out.path(),
        &["p99(ttft)<500ms", "error_rate==0", "itl<50"],
    );
    sim.stop();
    assert_eq!(
        passing.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&passing.stderr)
    );
}
