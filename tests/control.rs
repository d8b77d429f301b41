//! Live control end to end: a 30 s closed-loop step started with 8 users, scaled to 32 at 10 s
//! and paused from 20 s to 25 s over `--control-listen`. The change must show in the server's
//! own record of request arrivals, in the results' `control` list and in the Prometheus gauges.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::sim::{SimConfig, SimServer};
use inference_benchmarker::RunError;
use serde_json::Value;

/// A loopback port free now (the run binds it a moment later).
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One HTTP/1.1 request; (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn unix_nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// The value of the first sample of `name` in a Prometheus exposition.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

fn wait_until(t: Instant) {
    if let Some(d) = t.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

#[test]
fn a_running_step_is_scaled_paused_and_resumed_by_hand() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(50.0),
            fixed_itl_ms: Some(5.0),
            record: true,
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    cfg.duration = Duration::from_secs(30);
    cfg.max_vus = 32;
    cfg.vus = Some(8);
    cfg.decode_options = Some(inference_benchmarker::workload::options::TokenizeOptions::fixed(20));
    let (control, metrics) = (free_port(), free_port());
    cfg.control_listen = Some(control);
    cfg.prometheus_listen = Some(metrics);
    cfg.prometheus_linger = Duration::ZERO;
    let run = std::thread::spawn(move || inference_benchmarker::run(cfg));

    // The step has started once /status names it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let start = loop {
        assert!(Instant::now() < deadline, "the step never started");
        if let Ok(s) = TcpStream::connect(control) {
            drop(s);
            let (_, body) = http(control, "GET", "/status", "");
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            if v["step"].is_u64() {
                assert_eq!(v["users"], 8, "{v}");
                break Instant::now();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };

    // Refused commands change nothing and say why.
    let (code, body) = http(control, "POST", "/rate", "5");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("closed loop"), "{body}");
    let (code, body) = http(control, "POST", "/users", "33");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("--max-vus 32"), "{body}");
    let (code, body) = http(control, "POST", "/users", "many");
    assert_eq!(code, 400, "{body}");

    let (mut at, mut answered, mut replies) = (Vec::new(), Vec::new(), Vec::new());
    // Each command's time is taken as it is sent (requests a resume lets go reach the server
    // before its answer reaches us) and as its answer is read: the change took effect between.
    let mut command = |secs: u64, path: &str, body: &str| {
        wait_until(start + Duration::from_secs(secs));
        at.push(unix_nanos(SystemTime::now()));
        let (code, reply) = http(control, "POST", path, body);
        answered.push(unix_nanos(SystemTime::now()));
        assert_eq!(code, 200, "{path}: {reply}");
        let reply: Value = serde_json::from_str(&reply).unwrap();
        replies.push(reply["time_ms"].as_f64().unwrap());
    };
    command(10, "/users", "32");
    let (_, status) = http(control, "GET", "/status", "");
    assert!(status.contains(r#""users":32"#), "{status}");
    command(20, "/pause", "");
    wait_until(start + Duration::from_secs(22));
    let (_, scrape) = http(metrics, "GET", "/metrics", "");
    assert_eq!(sample(&scrape, "inference_benchmarker_control_paused"), 1.0);
    command(25, "/resume", "");
    wait_until(start + Duration::from_secs(27));
    let (_, scrape) = http(metrics, "GET", "/metrics", "");
    assert_eq!(sample(&scrape, "inference_benchmarker_control_paused"), 0.0);
    assert_eq!(
        sample(
            &scrape,
            "inference_benchmarker_control_changes_total{action=\"set_users\""
        ),
        1.0
    );

    let summary = run.join().unwrap().expect("the run completes");
    let doc = common::validated(&summary.results_path);
    let step = &doc["results"][0];
    assert_eq!(step["failed_requests"], 0, "{step}");

    // The results name every change, in order, at the times it was made.
    let control: Vec<(String, Value)> = doc["control"]
        .as_array()
        .expect("a control list")
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_string(),
                c["value"].clone(),
            )
        })
        .collect();
    assert_eq!(
        control,
        vec![
            ("set_users".to_string(), Value::from(32.0)),
            ("pause".to_string(), Value::Null),
            ("resume".to_string(), Value::Null),
        ]
    );
    // Each change's time (ms since the run's start, whose wall-clock time is `start_time` to the
    // millisecond) is when it took effect: after the command was sent, before its answer was
    // read, and within 50 ms of the sending.
    let run_start_ms = humantime::parse_rfc3339(doc["start_time"].as_str().unwrap())
        .map(|t| unix_nanos(t) as f64 / 1e6)
        .expect("an RFC 3339 start_time");
    let times: Vec<f64> = doc["control"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["time_ms"].as_f64().unwrap())
        .collect();
    assert_eq!(times, replies, "the results say what the answers said");
    for (i, t) in times.iter().enumerate() {
        let took_effect = run_start_ms + t;
        let (sent, read) = (at[i] as f64 / 1e6, answered[i] as f64 / 1e6);
        let after_sending = took_effect - sent;
        eprintln!(
            "{}: took effect {after_sending:.1} ms after it was sent, {:.1} ms before the answer was read",
            control[i].0,
            read - took_effect
        );
        // 1 ms: `start_time` is truncated to the millisecond.
        assert!(
            (-1.0..=50.0).contains(&after_sending) && took_effect <= read + 1.0,
            "{}: took effect at {took_effect:.1} (unix ms), sent at {sent:.1}, answer read at {read:.1}",
            control[i].0
        );
    }

    // The server saw it: arrivals per second, from its own record.
    let arrivals: Vec<u128> = sim
        .records()
        .into_iter()
        .filter(|r| !r.request_id.as_deref().unwrap_or("").ends_with("preflight"))
        .map(|r| r.received_at_unix_nanos)
        .collect();
    let first = *arrivals.iter().min().unwrap();
    let last = *arrivals.iter().max().unwrap();
    let secs = |s: f64| (s * 1e9) as u128;
    let rate = |from: u128, to: u128| {
        let n = arrivals.iter().filter(|&&a| a >= from && a < to).count();
        n as f64 / ((to - from) as f64 / 1e9)
    };
    let (users, pause, resume) = (at[0], at[1], at[2]);
    let eight = rate(first + secs(2.0), users);
    let thirty_two = rate(users + secs(2.0), pause);
    // The pause reaches every user through two mailboxes: a loaded machine may take a while.
    let paused = rate(pause + secs(1.0), resume);
    let resumed = rate(resume + secs(1.0), last);
    eprintln!(
        "arrivals/s: 8 users {eight:.1}, 32 users {thirty_two:.1}, paused {paused}, resumed {resumed:.1}"
    );
    assert!(eight > 10.0, "8 users sent {eight:.1} req/s");
    let ratio = thirty_two / eight;
    assert!(
        (3.0..5.0).contains(&ratio),
        "32 users sent {thirty_two:.1} req/s, 8 users {eight:.1}: ratio {ratio:.2}"
    );
    let late: Vec<f64> = arrivals
        .iter()
        .filter(|&&a| a >= pause + secs(1.0) && a < resume)
        .map(|&a| (a - pause) as f64 / 1e6)
        .collect();
    assert_eq!(
        paused, 0.0,
        "requests arrived while paused, ms after the pause: {late:?}"
    );
    assert!(
        resumed / eight > 3.0,
        "after the resume {resumed:.1} req/s, 8 users {eight:.1}"
    );
    sim.stop();
}

/// A rate step paused by hand (issue 23, item 7): its rates are over the time it was not paused,
/// and it says how long that was.
#[test]
fn a_paused_rate_step_reads_its_rate_over_its_unpaused_time() {
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(20.0),
            fixed_itl_ms: Some(2.0),
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![10.0]);
    cfg.duration = Duration::from_secs(6);
    let control = free_port();
    cfg.control_listen = Some(control);
    let run = std::thread::spawn(move || inference_benchmarker::run(cfg));
    let deadline = Instant::now() + Duration::from_secs(30);
    let start = loop {
        assert!(Instant::now() < deadline, "the step never started");
        if TcpStream::connect(control).is_ok() {
            let (_, body) = http(control, "GET", "/status", "");
            let v: Value = serde_json::from_str(&body).unwrap_or_default();
            if v["step"].is_u64() {
                break Instant::now();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    wait_until(start + Duration::from_millis(1_500));
    assert_eq!(http(control, "POST", "/pause", "").0, 200);
    wait_until(start + Duration::from_millis(3_500));
    assert_eq!(http(control, "POST", "/resume", "").0, 200);
    let summary = run.join().unwrap().expect("the run completes");
    sim.stop();
    let doc = common::validated(&summary.results_path);
    let step = &doc["results"][0];
    let at = |i: usize| doc["control"][i]["time_ms"].as_f64().unwrap();
    let paused = step["paused_ms"].as_f64().expect("paused_ms");
    assert!(
        (paused - (at(1) - at(0))).abs() <= 1.0,
        "{paused} ms: {}",
        doc["control"]
    );
    assert!((1_800.0..2_500.0).contains(&paused), "paused {paused} ms");
    // About 40 requests sent in 4 s of sending: 10 req/s, not 40 over the 6 s window.
    let achieved = step["achieved_rate"].as_f64().unwrap();
    assert!((achieved - 10.0).abs() < 0.5, "achieved {achieved} req/s");
    let active_s = (step["duration_ms"].as_f64().unwrap() - paused) / 1e3;
    let ok = step["successful_requests"].as_f64().unwrap();
    let rate = step["request_rate"].as_f64().unwrap();
    assert!(
        (rate - ok / active_s).abs() < 0.05,
        "request rate {rate}: {ok} over {active_s} s"
    );
    let steady = step["steady_state"]["request_rate"].as_f64().unwrap();
    assert!((steady - 10.0).abs() < 1.0, "steady {steady} req/s");
}

#[test]
fn the_control_endpoint_listens_on_loopback_only() {
    let sim = SimServer::start(SimConfig::default(), None).expect("simulated server starts");
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.control_listen = Some("0.0.0.0:0".parse().unwrap());
    match inference_benchmarker::run(cfg) {
        Err(RunError::Config(e)) => assert!(e.contains("loopback"), "{e}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    sim.stop();
}
