//! `--threshold` gates: a failing gate exits with code 5 after the results are written; passing
//! gates exit 0.

mod common;

use inference_benchmarker::sim::{SimConfig, SimServer};

fn run_with(sim: &SimServer, out: &std::path::Path, gates: &[&str]) -> std::process::Output {
    let mut cmd = common::benchmark();
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
    assert!(stderr.contains("1 threshold check failed"), "{stderr}");
    assert!(
        stderr.contains("p99(ttft)<5ms failed (actual 2") && stderr.contains(" ms; 95 % interval"),
        "the actual value with its unit: {stderr}"
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

#[test]
fn goodput_counts_requests_within_every_objective() {
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
    let run = |slo: &str| {
        let mut cfg = common::config(&sim.url(), out.path());
        cfg.benchmark_kind = inference_benchmarker::config::BenchmarkKind::Rate;
        cfg.rates = Some(vec![10.0]);
        cfg.duration = std::time::Duration::from_secs(1);
        cfg.slo = Some(slo.parse().unwrap());
        cfg.thresholds = vec!["goodput>=0".into()];
        let summary = inference_benchmarker::run(cfg).expect("the run completes");
        common::validated(&summary.results_path);
        summary.steps[0].clone()
    };
    // 16 tokens: TTFT ≈ 20 ms, ITL ≈ 5 ms, E2E ≈ 95 ms.
    let easy = run("ttft=500ms,itl=50ms,e2e=2s");
    let g = easy.goodput.as_ref().unwrap();
    assert_eq!(g.good_requests, easy.successful_requests);
    assert_eq!(g.good_tokens, easy.total_tokens);
    assert!((g.request_rate - easy.request_rate).abs() < 1e-9);
    let strict = run("ttft=500ms,e2e=50ms");
    assert_eq!(
        strict.goodput.as_ref().unwrap().good_requests,
        0,
        "E2E ≈ 95 ms > 50 ms"
    );
    sim.stop();
}

/// A gate on a figure the run does not compute is a usage error before any request (issue 23,
/// item 12): `goodput` without `--slo` once passed silently as 0.
#[test]
fn a_gate_on_a_figure_the_run_does_not_compute_is_a_usage_error() {
    let sim = SimServer::start(
        SimConfig {
            record: true,
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = run_with(&sim, out.path(), &["goodput<1000"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("'goodput<1000'") && stderr.contains("--slo"),
        "names the gate and the flag it needs: {stderr}"
    );
    assert!(sim.records().is_empty(), "refused before any request");
    sim.stop();
}

/// A reasoning model whose reasoning uses max_tokens up answers nothing (issue 23, item 4): the
/// step line warns, the table says so, and `no_answer_rate` gates it.
#[test]
fn a_run_whose_requests_never_answered_warns_and_fails_its_no_answer_gate() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(10.0),
            fixed_itl_ms: Some(2.0),
            reasoning_tokens: 30,
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    // 4 tokens asked for, 30 of reasoning first: no request answers.
    let run = run_with(&sim, out.path(), &["no_answer_rate<1%"]);
    sim.stop();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("(100.0 %) reasoned until max_tokens")
            && stderr.contains("raise max_tokens"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no_answer_rate<1% failed (actual 100%)"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("no answer)"), "{stdout}");
}
