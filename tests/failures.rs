//! Regression tests for the original tool's known failures: usage-only `choices: []` chunks,
//! a server that is down, a step where every request fails, Ctrl-C mid-run.

mod common;

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::sim::{SimConfig, SimServer};
use inference_benchmarker::RunError;

fn sim() -> SimServer {
    SimServer::start(SimConfig::default(), None).expect("simulated server starts")
}

/// The simulated server ends every stream as vLLM does: a usage chunk with `"choices": []`
/// before `[DONE]`. The original tool panicked on it and hung.
#[test]
fn usage_only_chunks_are_counted_not_fatal() {
    let sim = sim();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    cfg.max_vus = 4;
    cfg.duration = Duration::from_secs(1);
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    sim.stop();
    let step = &summary.steps[0];
    assert!(step.successful_requests > 0);
    assert_eq!(step.failed_requests, 0);
    assert_eq!(
        step.output_tokens.server_reported_requests, step.successful_requests,
        "every request's usage chunk was read"
    );
    assert_eq!(step.total_tokens, 16 * step.successful_requests);
}

#[test]
fn a_server_that_is_down_fails_fast_with_exit_code_3() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = common::benchmark()
        .args([
            "-u",
            &format!("http://127.0.0.1:{port}"),
            "-w",
            "0s",
            "-d",
            "1s",
            "-n",
            "--output-dir",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("unreachable") && stderr.contains(&port.to_string()),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

/// A model the server does not serve: the pre-flight request is refused, the run stops before
/// it starts with exit code 3 and the server's reason.
#[test]
fn a_wrong_model_is_refused_before_the_run() {
    let sim = sim();
    let out = tempfile::tempdir().unwrap();
    let run = common::benchmark()
        .args([
            "-u",
            &sim.url(),
            "--model-name",
            "no-such-model",
            "-w",
            "0s",
        ])
        .args([
            "-d",
            "1s",
            "-m",
            "4",
            "-b",
            "throughput",
            "-n",
            "--output-dir",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let received = sim.stats().received;
    sim.stop();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("HTTP 404") && stderr.contains("no-such-model"),
        "the server's reason is shown: {stderr}"
    );
    assert_eq!(received, 0, "no measured request was sent");
}

/// A server that fails every measured request (503: measured, not a refusal): the step's
/// results are kept, the run fails with exit code 4.
#[test]
fn a_step_where_every_request_fails_exits_4_and_keeps_the_results() {
    let sim = failing_sim();
    let out = tempfile::tempdir().unwrap();
    let run = common::benchmark()
        .args([
            "-u",
            &sim.url(),
            "-w",
            "0s",
            "-d",
            "1s",
            "--max-error-rate",
            "1",
        ])
        .args(["-m", "4", "-b", "throughput", "-n", "--output-dir"])
        .arg(out.path())
        .output()
        .unwrap();
    sim.stop();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("every request of step throughput failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("503"),
        "the server's reason is shown: {stderr}"
    );

    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "failed");
    let step = &doc["results"][0];
    assert_eq!(step["successful_requests"], 0);
    assert!(step["failed_requests"].as_u64().unwrap() > 0);
    assert_eq!(step["failed_requests"], step["errors"]["http_5xx"]);
    assert!(step["first_error"].as_str().unwrap().contains("503"));
    let ttft = &step["time_to_first_token_ms"];
    assert!(
        ttft["p50"].is_null() && ttft["avg"].is_null() && ttft["count"] == 0,
        "missing, not zero: {ttft}"
    );
}

/// Every measured request gets 503; the pre-flight request passes (partial fault shares are
/// never drawn for it).
fn failing_sim() -> SimServer {
    SimServer::start(
        SimConfig {
            faults: vec!["status=503@0.99999".into()],
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts")
}

#[test]
fn the_library_reports_all_failed_with_its_exit_code() {
    let sim = failing_sim();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    cfg.duration = Duration::from_secs(1);
    cfg.max_error_rate = None;
    let err = inference_benchmarker::run(cfg).unwrap_err();
    sim.stop();
    assert!(
        matches!(
            err,
            RunError::AllFailed {
                results: Some(_),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.exit_code(), 4);
}

/// Ctrl-C in the second step: the first step is in the JSON, the interrupted one is kept and
/// marked, in-flight requests finish within the grace period, exit code 130.
#[test]
fn ctrl_c_mid_run_writes_what_was_measured() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(20.0),
            fixed_itl_ms: Some(20.0),
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let child = common::benchmark()
        .args([
            "-u",
            &sim.url(),
            "-w",
            "0s",
            "-d",
            "3s",
            "-b",
            "rate",
            "-r",
            "10,10,10",
        ])
        .args([
            "--decode-options",
            "num_tokens=20,min_tokens=20,max_tokens=20,variance=0",
        ])
        .args(["-n", "--output-dir"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt one second into step 2: once the results file holds step 1.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "step 1 never finished");
        let steps = std::fs::read_dir(out.path())
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map(|d| d["results"].as_array().map_or(0, Vec::len))
            .max();
        if steps == Some(1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let signalled = Instant::now();
    let run = child.wait_with_output().unwrap();
    sim.stop();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(130), "{stderr}");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "drained within the grace period"
    );

    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "interrupted");
    let steps = doc["results"].as_array().unwrap();
    assert_eq!(
        steps.len(),
        2,
        "the finished step and the interrupted one: {stderr}"
    );
    assert_eq!(steps[0]["total_requests"], 30);
    assert_eq!(steps[0]["ended_early"], serde_json::Value::Null);
    assert_eq!(steps[1]["ended_early"], "interrupted by signal");
    let partial = steps[1]["total_requests"].as_u64().unwrap();
    assert!(partial > 0 && partial < 30, "{partial}");
    assert_eq!(
        steps[1]["successful_requests"], partial,
        "in-flight requests finished"
    );
}

/// SIGTERM (Kubernetes): in-flight requests get `--shutdown-grace`, then end as `cancelled` —
/// counted, not lost — and the results are written; exit code 130.
#[test]
fn sigterm_cancels_what_outlives_the_grace_period() {
    // Each request streams for ~10 s: none can finish within a 1 s grace.
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(20.0),
            fixed_itl_ms: Some(500.0),
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let child = common::benchmark()
        .args([
            "-u",
            &sim.url(),
            "-w",
            "0s",
            "-d",
            "60s",
            "-b",
            "rate",
            "-r",
            "5",
            "-n",
        ])
        .args([
            "--decode-options",
            "num_tokens=20,min_tokens=20,max_tokens=20,variance=0",
        ])
        .args(["--shutdown-grace", "1s", "--output-dir"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.stats().received < 10 {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let signalled = Instant::now();
    let run = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    sim.stop();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(130), "{stderr}");
    assert!(
        took < Duration::from_secs(5),
        "1 s grace, then cancel and write: {took:?}"
    );

    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "interrupted");
    let step = &doc["results"][0];
    let total = step["total_requests"].as_u64().unwrap();
    assert!(total >= 10, "{total}");
    assert_eq!(
        step["errors"]["cancelled"].as_u64(),
        Some(total),
        "all were in flight: {step}"
    );
    assert_eq!(step["ended_early"], "interrupted by signal");
}

/// A second Ctrl-C exits at once but leaves an honest file: status `aborted` with what was
/// measured so far (the unfinished step closed over what it recorded), and the message says the
/// file is incomplete (before: the file stayed `status: "running"` with no step).
#[test]
fn a_second_ctrl_c_leaves_an_honest_file() {
    // Each request streams for about a second: some finish, some are in flight at the signal.
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(20.0),
            fixed_itl_ms: Some(50.0),
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let child = common::benchmark()
        .args([
            "-u",
            &sim.url(),
            "-w",
            "0s",
            "-d",
            "60s",
            "-b",
            "rate",
            "-r",
            "10",
            "-n",
        ])
        .args([
            "--decode-options",
            "num_tokens=20,min_tokens=20,max_tokens=20",
        ])
        .args(["--shutdown-grace", "30s", "--output-dir"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.stats().completed < 15 {
        assert!(Instant::now() < deadline, "the step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let signal = || {
        let kill = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
    };
    signal();
    std::thread::sleep(Duration::from_millis(300));
    signal();
    let signalled = Instant::now();
    let run = child.wait_with_output().unwrap();
    sim.stop();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(130), "{stderr}");
    assert!(signalled.elapsed() < Duration::from_secs(5), "at once");
    assert!(stderr.contains("incomplete"), "{stderr}");

    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "aborted");
    let steps = doc["results"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "the unfinished step, closed: {stderr}");
    assert!(steps[0]["successful_requests"].as_u64().unwrap() >= 15);
}

/// A step that ended early on its error rate does not wait for every request in flight (up to
/// `--request-timeout`): after `--shutdown-grace` it cancels them, counts them cancelled, and
/// says how the drain goes meanwhile.
#[test]
fn a_step_ended_by_errors_cancels_its_stuck_requests_after_the_grace() {
    // 70 % fail at once; the rest stall a minute before their first token. Probes are spared
    // (shares below 1).
    let sim = SimServer::start(
        SimConfig {
            faults: vec!["status=503@0.7".into(), "stall=0:60000@0.99999".into()],
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = common::benchmark()
        .args(["-u", &sim.url(), "-w", "0s", "-d", "30s", "-m", "20"])
        .args([
            "-b",
            "throughput",
            "--shutdown-grace",
            "6s",
            "-n",
            "--output-dir",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let took = started.elapsed();
    sim.stop();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "{stderr}");
    assert!(took < Duration::from_secs(25), "took {took:?}: {stderr}");
    assert!(
        stderr.contains("draining for 5 s")
            && stderr.contains("in flight, the oldest sent")
            && stderr.contains("cancelled after --shutdown-grace 6s"),
        "a progress line while draining: {stderr}"
    );
    let doc = common::validated(&common::results_file(out.path()));
    let step = &doc["results"][0];
    let cancelled = step["errors"]["cancelled"].as_u64().unwrap_or(0);
    assert!(cancelled > 0, "the stuck requests were cancelled: {step}");
    assert_eq!(
        step["total_requests"].as_u64(),
        Some(
            step["failed_requests"].as_u64().unwrap()
                + step["successful_requests"].as_u64().unwrap()
        ),
        "every request accounted for"
    );
}
