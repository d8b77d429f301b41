//! Never hurt the server by mistake: a server that rejects everything is not flooded, a URL that
//! already holds the route is understood, outputs are bounded by default.

mod common;

use std::time::{Duration, Instant};

use inference_benchmarker::sim::{SimConfig, SimServer};

fn sim_with(faults: &[&str]) -> SimServer {
    SimServer::start(
        SimConfig {
            faults: faults.iter().map(|f| f.to_string()).collect(),
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts")
}

/// `sim --fault status=401` and a plain throughput run: the pre-flight request is refused, the
/// run stops with exit code 3 and the server's message, and no measured request is sent (before:
/// 45,106 requests in the 30 s warmup, all failed).
#[test]
fn a_server_that_rejects_everything_is_not_flooded() {
    let sim = sim_with(&["status=401"]);
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = common::benchmark()
        .args(["-u", &sim.url(), "-w", "2s", "-d", "2s", "-b", "throughput"])
        .args(["-m", "4", "-n", "--output-dir"])
        .arg(out.path())
        .output()
        .unwrap();
    let received = sim.stats().received;
    sim.stop();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("HTTP 401") && stderr.contains("--api-key"),
        "the server's answer and what to check: {stderr}"
    );
    assert_eq!(received, 0, "no measured request reached the server");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// A server that answers 404 to every measured request (the pre-flight request passed): the
/// step ends after the first identical rejections, the run stops with exit code 4 and the
/// server's message (before: the whole 20 s step, thousands of 404s).
#[test]
fn identical_rejections_stop_the_run_early() {
    // Partial shares are never drawn for the pre-flight request: it passes.
    let sim = sim_with(&["status=404@0.99999"]);
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = common::benchmark()
        .args([
            "-u",
            &sim.url(),
            "-w",
            "0s",
            "-d",
            "20s",
            "-b",
            "throughput",
        ])
        .args(["-m", "4", "-n", "--max-error-rate", "1", "--output-dir"])
        .arg(out.path())
        .output()
        .unwrap();
    let received = sim.stats().received;
    sim.stop();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("rejected all") && stderr.contains("HTTP 404"),
        "{stderr}"
    );
    assert!(received < 100, "{received} requests reached the server");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "failed");
    let step = &doc["results"][0];
    assert!(
        step["duration_ms"].as_u64().unwrap() < 5_000,
        "ended early: {}",
        step["duration_ms"]
    );
    assert!(step["ended_early"]
        .as_str()
        .unwrap()
        .contains("rejected all"));
}

/// A closed-loop user whose requests fail at once (503 in well under a millisecond) pauses
/// before the next one, and the pause is in that request's queue delay (before: one user sent
/// thousands of requests a second).
#[test]
fn a_user_whose_requests_fail_at_once_waits_before_the_next() {
    let sim = sim_with(&["status=503@0.99999"]);
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = inference_benchmarker::config::BenchmarkKind::Throughput;
    cfg.max_vus = 1;
    cfg.duration = Duration::from_secs(2);
    cfg.max_error_rate = None;
    let err = inference_benchmarker::run(cfg).unwrap_err();
    sim.stop();
    assert_eq!(err.exit_code(), 4, "{err}");
    let doc = common::validated(&common::results_file(out.path()));
    let step = &doc["results"][0];
    let sent = step["total_requests"].as_u64().unwrap();
    assert!(
        (5..=100).contains(&sent),
        "{sent} requests from one user in 2 s"
    );
    let waited = step["queue_delay_ms"]["p50"].as_f64().unwrap();
    assert!(
        waited >= 90.0,
        "the pause is in the queue delay: {waited} ms"
    );
}

/// The server dies mid-step: by default (`--max-error-rate 50%`) the run ends non-zero and its
/// results say `failed` (before: `status: completed`, 99.94 % errors, exit code 0).
#[test]
fn a_run_that_mostly_failed_ends_non_zero() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(5.0),
            fixed_itl_ms: Some(5.0),
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut child = common::benchmark()
        .args([
            "-u",
            &sim.url(),
            "-w",
            "0s",
            "-d",
            "8s",
            "-b",
            "throughput",
            "-m",
            "4",
        ])
        .args(["--decode-options", "num_tokens=8,min_tokens=8,max_tokens=8"])
        .args(["-n", "--output-dir"])
        .arg(out.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.stats().completed < 40 {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    sim.stop();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("--max-error-rate 50.0%"), "{stderr}");
    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "failed");
}

/// `-u http://h:8000/v1/chat/completions` is taken as the base URL, with one line saying so
/// (before: "lists no model (HTTP 404); give one with --model-name", and following that advice
/// sent requests to .../v1/chat/completions/v1/chat/completions).
#[test]
fn a_url_that_holds_the_route_is_understood() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(1.0),
            fixed_itl_ms: Some(1.0),
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let full = format!("{}/v1/chat/completions", sim.url());
    let run = common::benchmark()
        .args([
            "-u",
            &full,
            "-w",
            "0s",
            "-d",
            "1s",
            "-b",
            "throughput",
            "-m",
            "2",
        ])
        .args(["--decode-options", "num_tokens=4,min_tokens=4,max_tokens=4"])
        .args(["-n", "--output-dir"])
        .arg(out.path())
        .output()
        .unwrap();
    sim.stop();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("taken as the base URL").count(),
        1,
        "one info line: {stderr}"
    );
    let doc = common::validated(&common::results_file(out.path()));
    assert!(doc["results"][0]["successful_requests"].as_u64().unwrap() > 0);
}

/// Without `--decode-options` every request asks for exactly 800 tokens (before: no
/// `max_tokens` but `ignore_eos: true`, so vLLM generated to the context limit), as `--help`
/// says.
#[test]
fn outputs_are_bounded_by_default() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(1.0),
            fixed_itl_ms: Some(0.1),
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = common::benchmark()
        .args([
            "-u",
            &sim.url(),
            "-w",
            "0s",
            "-d",
            "1s",
            "-b",
            "throughput",
            "-m",
            "2",
        ])
        .args(["-n", "--output-dir"])
        .arg(out.path())
        .output()
        .unwrap();
    sim.stop();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let doc = common::validated(&common::results_file(out.path()));
    let step = &doc["results"][0];
    let ok = step["successful_requests"].as_u64().unwrap();
    assert!(ok > 0);
    assert_eq!(step["output_tokens"]["requested"].as_u64(), Some(800 * ok));
    assert_eq!(step["total_tokens"].as_u64(), Some(800 * ok));
    let help = common::binary().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("exactly 800 tokens"), "{help}");
    assert!(help.contains("exactly 200"), "{help}");
}
