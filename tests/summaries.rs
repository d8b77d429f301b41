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
