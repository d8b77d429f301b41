//! Summaries that show every loss, when the run ends.

mod common;

use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, Instant};

use inference_benchmarker::sim::{SimConfig, SimServer};

fn fast_sim() -> SimServer {
    SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(2.0),
            fixed_itl_ms: Some(2.0),
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts")
}

/// With `--prometheus-listen`, the summary table, the results and the files beside them come
/// when the run ends; then `/metrics` lingers for the last scrape (before: everything waited for
/// the 30 s linger, or a Ctrl-C).
#[test]
fn the_summary_comes_before_the_prometheus_linger() {
    let sim = fast_sim();
    let out = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = common::benchmark()
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
        .args(["--decode-options", "num_tokens=4,min_tokens=4,max_tokens=4"])
        .args(["--prometheus-listen", &format!("127.0.0.1:{port}")])
        .args(["--prometheus-linger", "10m", "-n", "--output-dir"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let printed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("results: ") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    // Whatever happened, end the linger.
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    sim.stop();
    assert!(printed, "no summary while /metrics lingers: {seen:?}");
    assert!(
        seen.iter().any(|l| l.contains("Benchmark")),
        "the table: {seen:?}"
    );
    assert_eq!(status.code(), Some(0), "Ctrl-C only ended the linger");
    let results = common::results_file(out.path());
    assert_eq!(common::validated(&results)["status"], "completed");
    assert!(results.with_extension("md").exists());
}

/// A short open-loop step at an offered 20 req/s whose requests take about a second: the
/// original's `request_rate` is diluted by the drain tail (here about 16 req/s with no error);
/// the steady figure is the offered rate, and the sweep would scale from it.
#[test]
fn a_short_step_reports_its_steady_throughput() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(50.0),
            fixed_itl_ms: Some(10.0),
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = inference_benchmarker::config::BenchmarkKind::Rate;
    cfg.rates = Some(vec![20.0]);
    cfg.duration = Duration::from_secs(5);
    cfg.max_vus = 100;
    cfg.decode_options = Some(inference_benchmarker::workload::options::TokenizeOptions::fixed(96));
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    sim.stop();
    let step = &summary.steps[0];
    assert_eq!(step.failed_requests, 0);
    assert!(step.request_rate < 17.5, "diluted: {}", step.request_rate);
    let steady = step.steady_state.expect("a steady part");
    assert!(
        (steady.request_rate - 20.0).abs() <= 1.5,
        "steady at the offered rate: {steady:?}"
    );
    assert!(
        (steady.token_throughput_secs - 20.0 * 96.0).abs() <= 150.0,
        "{steady:?}"
    );
    assert!(
        (900..1_300).contains(&steady.start_ms),
        "from the first request's end: {steady:?}"
    );
    assert!((steady.request_rate - step.sustained_request_rate()).abs() < 1e-12);
    let doc = common::validated(&summary.results_path);
    assert!(doc["results"][0]["steady_state"]["request_rate"].is_number());
}

/// A closed loop's steady throughput is its users' cycle: within 1 % of the server's true
/// completion rate. Fixed timing keeps the 8 users in crisp waves (the hardest case), and the
/// truth is read off the server's record: 8 requests per wave period.
#[test]
fn a_closed_loop_step_is_steady_at_the_servers_completion_rate() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(20.0),
            fixed_itl_ms: Some(10.0),
            record: true,
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = inference_benchmarker::config::BenchmarkKind::Throughput;
    cfg.max_vus = 8;
    cfg.duration = Duration::from_secs(5);
    cfg.decode_options = Some(inference_benchmarker::workload::options::TokenizeOptions::fixed(40));
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let mut received: Vec<f64> = sim
        .records()
        .iter()
        .filter(|r| r.request_id.is_some())
        .map(|r| r.received_at_unix_nanos as f64 / 1e9)
        .collect();
    sim.stop();
    received.sort_by(f64::total_cmp);
    // Waves: requests received within 30 ms of the previous one belong to its wave (a request
    // takes 410 ms at the server: about 12 waves in 5 s, so a window that counted the first
    // wave or the time after the last one would be several % off).
    let starts: Vec<f64> = received
        .iter()
        .enumerate()
        .filter(|(i, t)| *i == 0 || **t - received[i - 1] > 0.03)
        .map(|(_, t)| *t)
        .collect();
    assert!(starts.len() > 8, "{} waves", starts.len());
    let period = (starts[starts.len() - 1] - starts[0]) / (starts.len() - 1) as f64;
    let truth = 8.0 / period;
    let steady = summary.steps[0].steady_state.expect("a steady part");
    assert!(
        (steady.request_rate / truth - 1.0).abs() < 0.01,
        "steady {:.2} req/s vs the server's {truth:.2}",
        steady.request_rate
    );
}

/// `--slice-duration`: a step's slices tile its window and add up to it.
#[test]
fn slices_of_a_step_add_up_to_the_step() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(20.0),
            fixed_itl_ms: Some(5.0),
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = inference_benchmarker::config::BenchmarkKind::Rate;
    cfg.rates = Some(vec![20.0, 40.0]);
    cfg.duration = Duration::from_secs(4);
    cfg.slice_duration = Some(Duration::from_secs(1));
    // The sim's /metrics, scraped 5 times a slice.
    cfg.server_metrics_interval = Duration::from_millis(200);
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    sim.stop();
    let doc = common::validated(&summary.results_path);
    let slices = doc["slices"].as_array().expect("a slices list");
    for (i, step) in doc["results"].as_array().unwrap().iter().enumerate() {
        let index = step["step"].as_u64().unwrap();
        let mine: Vec<&serde_json::Value> = slices
            .iter()
            .filter(|s| s["step"].as_u64() == Some(index))
            .collect();
        assert_eq!(mine.len(), 4, "step {i}: 4 s in 1 s slices");
        let sum = |k: &str| mine.iter().map(|s| s[k].as_u64().unwrap()).sum::<u64>();
        assert_eq!(
            sum("total_requests"),
            step["total_requests"].as_u64().unwrap()
        );
        assert_eq!(sum("output_tokens"), step["total_tokens"].as_u64().unwrap());
        let start = step["start_ms"].as_f64().unwrap();
        assert!(
            (mine[0]["start_ms"].as_f64().unwrap() - start).abs() < 1.0,
            "{start}"
        );
        for pair in mine.windows(2) {
            assert_eq!(
                pair[0]["end_ms"], pair[1]["start_ms"],
                "slices tile the step"
            );
        }
        let rate = step["offered_rate"].as_f64().unwrap();
        let middle = mine[1]["request_rate"].as_f64().unwrap();
        assert!(
            (middle - rate).abs() <= rate * 0.15,
            "{middle} req/s at {rate}"
        );
        assert!(mine[1]["time_to_first_token_ms"]["p50"].as_f64().unwrap() >= 20.0);
        // The server's metrics per slice: its counters' increases add up to the step's, which
        // is every token the step received.
        let generated = |m: &serde_json::Value| {
            m["server_metrics"]["series"]["generation_tokens"]["increase"]
                .as_f64()
                .unwrap_or_else(|| panic!("{m}"))
        };
        let by_slices: f64 = mine.iter().map(|s| generated(s)).sum();
        assert_eq!(by_slices, generated(step), "step {i}");
        assert_eq!(by_slices, step["total_tokens"].as_f64().unwrap());
        for s in &mine {
            let running = &s["server_metrics"]["series"]["requests_running"];
            assert!(running["samples"].as_u64().unwrap() >= 3, "{s}");
            assert!(running["mean"].as_f64().unwrap() > 0.0, "{s}");
        }
    }
}

/// A constant-rate step reads its offered rate as achieved (issue 23, item 14): 11.85 req/s for
/// 2 s sends ⌈23.7⌉ = 24 requests, once read as 24 / 2 s = 12.00 req/s.
#[test]
fn a_constant_rate_step_achieves_its_offered_rate() {
    let sim = fast_sim();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = inference_benchmarker::config::BenchmarkKind::Rate;
    cfg.rates = Some(vec![11.85]);
    cfg.duration = Duration::from_secs(2);
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    sim.stop();
    let step = &summary.steps[0];
    eprintln!("achieved {} req/s at an offered 11.85", step.achieved_rate);
    assert_eq!(step.total_requests, 24);
    assert!(
        (step.achieved_rate - 11.85).abs() < 0.06,
        "achieved {} req/s at an offered 11.85",
        step.achieved_rate
    );
}
