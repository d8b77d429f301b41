//! The Prometheus sink against a real Prometheus (and Pushgateway): what Prometheus stores
//! after a run equals the run's JSON totals exactly; the exposition passes `promtool check
//! metrics`; every dashboard panel's PromQL returns series; every dashboard validates against
//! the JSON Schema of Grafana's dashboard model.
//!
//! Warmup requests are not counted by the metrics (as in the results file), so the runs here
//! have a warmup and the comparison is with the measured steps only.

mod common;
mod prometheus_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inference_benchmarker::config::{BenchmarkKind, RunConfig};
use inference_benchmarker::runtime::shutdown::{Level, Shutdown};
use inference_benchmarker::sim::{SimConfig, SimServer};
use prometheus_support as ps;
use serde_json::Value;

/// The totals of a results file's measured steps that the metrics must equal.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    requests: f64,
    output_tokens: f64,
    input_tokens: f64,
    dropped: f64,
    ttft_count: f64,
    itl_count: f64,
    e2e_count: f64,
    queue_delay_count: f64,
}

fn json_totals(doc: &Value) -> Totals {
    let mut t = Totals::default();
    for s in doc["results"].as_array().expect("results") {
        let n = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k} in {s}"));
        let count = |k: &str| {
            s[k]["count"]
                .as_f64()
                .unwrap_or_else(|| panic!("{k}.count"))
        };
        t.requests += n("total_requests");
        t.output_tokens += n("total_tokens");
        // Every sent request's prompt (the original's total_tokens_sent counts successful ones).
        t.input_tokens += n("prompt_tokens_sent");
        t.dropped += n("dropped_arrivals");
        t.ttft_count += count("time_to_first_token_ms");
        t.itl_count += count("inter_token_latency_ms");
        t.e2e_count += count("e2e_latency_ms");
        t.queue_delay_count += count("queue_delay_ms");
    }
    t
}

/// The same totals from Prometheus. `wrap` turns a selector into the expression to sum (e.g.
/// `max_over_time(..[10m])`, which ignores the staleness markers written once the target is gone).
fn prometheus_totals(
    prom: &ps::Prometheus,
    run_id: &str,
    wrap: &dyn Fn(String) -> String,
) -> Result<Totals, String> {
    let q = |name: &str| {
        prom.scalar(&format!(
            "sum({})",
            wrap(format!(
                "inference_benchmarker_{name}{{run_id=\"{run_id}\"}}"
            ))
        ))
    };
    Ok(Totals {
        requests: q("requests_total")?,
        output_tokens: q("output_tokens_total")?,
        input_tokens: q("input_tokens_total")?,
        dropped: q("dropped_arrivals_total")?,
        ttft_count: q("time_to_first_token_seconds_count")?,
        itl_count: q("inter_token_latency_seconds_count")?,
        e2e_count: q("e2e_latency_seconds_count")?,
        queue_delay_count: q("queue_delay_seconds_count")?,
    })
}

/// A short sweep (throughput step, then two rates) with a warmup.
fn sweep(sim: &SimServer, out: &Path, run_id: &str) -> RunConfig {
    let mut cfg = common::config(&sim.url(), out);
    cfg.benchmark_kind = BenchmarkKind::Sweep;
    // Two scrapes long at least, so the warmup phase is seen.
    cfg.warmup = Duration::from_secs(2);
    cfg.duration = Duration::from_secs(2);
    cfg.num_rates = 2;
    cfg.max_vus = 8;
    cfg.run_id = run_id.into();
    cfg.extra_meta.insert("gpu.type".into(), "sim".into());
    cfg
}

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grafana")
}

fn dashboards() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "dashboards in {}", dir.display());
    files
}

/// Every PromQL expression of a dashboard (panel targets, rows' panels, annotations).
fn expressions(dashboard: &Value) -> Vec<(String, String)> {
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_string()));
                }
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for a in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(e) = a["expr"].as_str() {
            out.push((format!("annotation {}", a["name"]), e.to_string()));
        }
    }
    out
}

/// Grafana's variables as Grafana would substitute them for a 1 s scrape interval.
fn substitute(expr: &str, run_id: &str) -> String {
    expr.replace("$__rate_interval", "4s")
        .replace("$__interval", "1s")
        .replace("$__range", "5m")
        .replace("${run_id}", run_id)
        .replace("$run_id", run_id)
}

/// Polls `/metrics` while the run goes; returns the last exposition served (the final values,
/// served during the linger).
fn poll_metrics(
    addr: SocketAddr,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Option<String>> {
    std::thread::spawn(move || {
        let mut last = None;
        while !done.load(Ordering::Relaxed) {
            if let Ok((200, body)) = ps::http_get(addr, "/metrics") {
                last = Some(body);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        last
    })
}

/// Waits for the run's results file to say `completed`; its totals.
fn completed_results(dir: &Path) -> Totals {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "no completed results in {}",
            dir.display()
        );
        let done = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
            .find(|d| d["status"] == "completed");
        if let Some(doc) = done {
            return json_totals(&doc);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The totals of a text exposition (summed over every series of each metric).
fn exposition_totals(text: &str, run_id: &str) -> Totals {
    let sum = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("inference_benchmarker_{name}{{")))
            .filter(|l| l.contains(&format!("run_id=\"{run_id}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Totals {
        requests: sum("requests_total"),
        output_tokens: sum("output_tokens_total"),
        input_tokens: sum("input_tokens_total"),
        dropped: sum("dropped_arrivals_total"),
        ttft_count: sum("time_to_first_token_seconds_count"),
        itl_count: sum("inter_token_latency_seconds_count"),
        e2e_count: sum("e2e_latency_seconds_count"),
        queue_delay_count: sum("queue_delay_seconds_count"),
    }
}

/// Waits until `/metrics` serves `want` (the sink has taken every event); that exposition.
fn exposition_with(addr: SocketAddr, run_id: &str, want: &Totals) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Totals::default();
    while Instant::now() < deadline {
        if let Ok((200, body)) = ps::http_get(addr, "/metrics") {
            last = exposition_totals(&body, run_id);
            if &last == want {
                return body;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("/metrics never served the results' totals: {last:?} vs {want:?}");
}

#[test]
fn scraped_metrics_equal_the_results_and_feed_every_dashboard_panel() {
    const TEST: &str = "scraped_metrics_equal_the_results_and_feed_every_dashboard_panel";
    let (Some(prometheus), Some(promtool)) =
        (ps::tool(TEST, "prometheus"), ps::tool(TEST, "promtool"))
    else {
        return;
    };
    // One request in ten stalls 2 s mid-stream: a step almost always ends with one in flight,
    // so its drain (until its last request ends) outlasts Prometheus's 1 s scrape interval and
    // the drain phase is seen (the other requests take ~0.15 s, so the steps still measure).
    let sim = SimServer::start(
        SimConfig {
            faults: vec!["stall=8:2000@0.1".into()],
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", ps::free_port()).parse().unwrap();
    let vllm = ps::serve_static(include_str!("prometheus_support/fixtures/vllm.prom"));
    let llamacpp = ps::serve_static(include_str!("prometheus_support/fixtures/llamacpp.prom"));
    let prom = ps::Prometheus::start(
        &prometheus,
        &[
            ("benchmarker", metrics_addr, false),
            ("vllm", vllm, false),
            ("llamacpp", llamacpp, false),
        ],
    );
    let out = tempfile::tempdir().unwrap();
    let mut cfg = sweep(&sim, out.path(), "scrape-1");
    cfg.prometheus_listen = Some(metrics_addr);
    // Longer than any scrape could take: the test ends the linger itself (as Ctrl-C would) once
    // Prometheus has scraped the final values.
    cfg.prometheus_linger = Duration::from_secs(120);
    let started = ps::now_unix();
    let shutdown = Shutdown::new();
    let run = {
        let shutdown = shutdown.clone();
        std::thread::spawn(move || inference_benchmarker::run_with(cfg, shutdown, false))
    };
    // The results file is complete first; then /metrics serves the same totals.
    let want = completed_results(out.path());
    assert!(want.requests > 0.0 && want.ttft_count > 0.0, "{want:?}");
    let exposition = exposition_with(metrics_addr, "scrape-1", &want);
    prom.wait_for_scrape_after(ps::now_unix());
    shutdown.raise(Level::Stop);
    let summary = run.join().unwrap().expect("the run completes");
    let ended = ps::now_unix();
    sim.stop();
    assert_eq!(json_totals(&common::validated(&summary.results_path)), want);

    let got =
        prometheus_totals(&prom, "scrape-1", &|s| format!("max_over_time({s}[10m])")).unwrap();
    if got != want {
        let now = ps::now_unix();
        eprintln!("diagnostic: started {started} ended {ended} now {now}");
        eprintln!(
            "DEBUG up: {:?}",
            prom.query_range("up{job=\"benchmarker\"}", started, now, 1.0)
        );
        eprintln!(
            "DEBUG req: {:?}",
            prom.query_range(
                "sum(inference_benchmarker_requests_total)",
                started,
                now,
                1.0
            )
        );
        eprintln!(
            "DEBUG expo: {}",
            exposition
                .lines()
                .filter(|l| l.contains("requests_total"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    assert_eq!(got, want, "Prometheus (left) vs the results file (right)");

    // The live gauges moved during the run: 8 users in the throughput step, requests in flight,
    // the sweep's rates offered, every phase visited, one lag series per worker.
    let max = |e: &str| {
        prom.scalar(&format!(
            "max(max_over_time({e}{{run_id=\"scrape-1\"}}[10m]))"
        ))
    };
    assert_eq!(max("inference_benchmarker_virtual_users").unwrap(), 8.0);
    assert!(max("inference_benchmarker_in_flight_requests").unwrap() >= 1.0);
    assert!(max("inference_benchmarker_offered_rate_requests_per_second").unwrap() > 0.0);
    for phase in ["warmup", "step", "drain", "idle"] {
        let e = format!("inference_benchmarker_phase{{phase=\"{phase}\",run_id=\"scrape-1\"}}");
        let seen = prom
            .scalar(&format!("max(max_over_time({e}[10m]))"))
            .unwrap();
        assert_eq!(seen, 1.0, "phase {phase} never seen");
    }
    let lag = prom
        .query("inference_benchmarker_event_loop_lag_seconds{run_id=\"scrape-1\"}[10m]")
        .unwrap();
    assert_eq!(lag.len(), 2, "one series per worker: {lag:?}");
    let steps = prom
        .query("count(count_over_time(inference_benchmarker_step_info{run_id=\"scrape-1\"}[10m]))")
        .unwrap();
    assert_eq!(
        steps[0]["value"][1], "4",
        "warmup + throughput + 2 rates: {steps:?}"
    );

    // The exposition: lint-clean, constant labels on everything, sanitized extra meta.
    let findings = ps::promtool_findings(&promtool, &exposition);
    assert!(findings.is_empty(), "promtool check metrics: {findings}");
    for line in exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        for label in [
            "run_id=\"scrape-1\"",
            "model=\"",
            "profile=\"none\"",
            "benchmark_kind=\"sweep\"",
            "gpu_type=\"sim\"",
        ] {
            assert!(line.contains(label), "{label} missing in {line}");
        }
    }
    assert!(
        exposition.contains("process_resident_memory_bytes"),
        "process collector"
    );

    // Every panel of every dashboard returns series over the run.
    let mut empty = Vec::new();
    for file in dashboards() {
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let exprs = expressions(&d);
        assert!(
            exprs.len() > 10,
            "{}: {} expressions",
            file.display(),
            exprs.len()
        );
        for (panel, expr) in exprs {
            let q = substitute(&expr, "scrape-1");
            match prom.query_range(&q, started, ended + 3.0, 1.0) {
                Ok(series) if !series.is_empty() => {}
                Ok(_) => empty.push(format!("{}: {panel}: no series: {q}", file.display())),
                Err(e) => empty.push(format!("{}: {panel}: {e}: {q}", file.display())),
            }
        }
    }
    assert!(
        empty.is_empty(),
        "panel expressions without data:\n{}",
        empty.join("\n")
    );
}

#[test]
fn pushed_metrics_equal_the_results() {
    const TEST: &str = "pushed_metrics_equal_the_results";
    let (Some(prometheus), Some(gateway)) = (
        ps::tool(TEST, "prometheus"),
        ps::tool(TEST, "prometheus-pushgateway"),
    ) else {
        return;
    };
    let gw = ps::Pushgateway::start(&gateway);
    let prom = ps::Prometheus::start(&prometheus, &[("pushgateway", gw.addr, true)]);
    let sim = SimServer::start(SimConfig::default(), None).expect("simulated server starts");
    let out = tempfile::tempdir().unwrap();
    let mut cfg = sweep(&sim, out.path(), "push-1");
    cfg.prometheus_pushgateway = Some(format!("http://{}", gw.addr));
    cfg.prometheus_push_interval = Duration::from_secs(1);
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    sim.stop();
    let pushed_at = ps::now_unix();
    let want = json_totals(&common::validated(&summary.results_path));
    assert!(want.requests > 0.0, "{want:?}");

    // The final push happened before run() returned; wait for a scrape of the gateway after it.
    prom.wait_for_scrape_after(pushed_at);
    let got = prometheus_totals(&prom, "push-1", &|s| s).unwrap();
    assert_eq!(
        got, want,
        "Prometheus via the Pushgateway (left) vs the results file (right)"
    );
    // Grouping key: job and run id.
    let r = prom
        .query("inference_benchmarker_requests_total{job=\"inference-benchmarker\",run_id=\"push-1\",outcome=\"ok\"}")
        .unwrap();
    assert_eq!(r.len(), 1, "{r:?}");
    let failures = prom
        .scalar("sum(inference_benchmarker_pushgateway_failures_total{run_id=\"push-1\"})")
        .unwrap();
    assert_eq!(failures, 0.0);
}

/// A gateway that does not answer is logged and counted, never fatal.
#[test]
fn a_missing_pushgateway_is_counted_not_fatal() {
    let sim = SimServer::start(SimConfig::default(), None).expect("simulated server starts");
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    cfg.duration = Duration::from_secs(1);
    cfg.prometheus_pushgateway = Some(format!("http://127.0.0.1:{}", ps::free_port()));
    cfg.prometheus_push_interval = Duration::from_millis(200);
    let addr: SocketAddr = format!("127.0.0.1:{}", ps::free_port()).parse().unwrap();
    cfg.prometheus_listen = Some(addr);
    cfg.prometheus_linger = Duration::from_secs(1);
    let done = Arc::new(AtomicBool::new(false));
    let poller = poll_metrics(addr, done.clone());
    let started = Instant::now();
    let summary = inference_benchmarker::run(cfg).expect("the run completes without its gateway");
    done.store(true, Ordering::Relaxed);
    sim.stop();
    assert!(summary.steps[0].successful_requests > 0);
    assert!(started.elapsed() < Duration::from_secs(20));
    let body = poller.join().unwrap().expect("/metrics was served");
    let failures: f64 = body
        .lines()
        .find(|l| l.starts_with("inference_benchmarker_pushgateway_failures_total{"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("the failure counter");
    // Periodic pushes every 200 ms over a run of more than a second, and the final one.
    assert!(failures >= 3.0, "{failures} failed pushes counted");
}

/// Every dashboard validates against the JSON Schema generated from `@grafana/schema`.
#[test]
fn dashboards_validate_against_grafanas_schema() {
    const TEST: &str = "dashboards_validate_against_grafanas_schema";
    let ready = node_dir().join("node_modules/@grafana/schema").is_dir();
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !(ready && node) {
        common::missing(TEST, "node and `npm ci` in tests/grafana are needed");
        return;
    }
    let out = std::process::Command::new("node")
        .current_dir(node_dir())
        .arg("validate.mjs")
        .args(dashboards())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dashboard schema findings:\n{text}");
    // The check has teeth: an unknown key and a wrong type are findings.
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        bad.path(),
        r#"{"schemaVersion": "39", "panels": [], "bogus": true}"#,
    )
    .unwrap();
    let out = std::process::Command::new("node")
        .current_dir(node_dir())
        .arg("validate.mjs")
        .arg(bad.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("bogus") && text.contains("schemaVersion"),
        "{text}"
    );
}

/// After the run, `/metrics` keeps serving the final values for `--prometheus-linger`; Ctrl-C
/// ends that wait at once, and the run still counts as completed.
#[test]
fn linger_serves_final_values_and_ctrl_c_ends_it() {
    use std::io::BufRead;
    let sim = SimServer::start(SimConfig::default(), None).expect("simulated server starts");
    let out = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", ps::free_port()).parse().unwrap();
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
            "4",
        ])
        .args([
            "--run-id",
            "linger-1",
            "-n",
            "--no-report",
            "--prometheus-linger",
            "10m",
        ])
        .args([
            "--decode-options",
            "num_tokens=16,min_tokens=16,max_tokens=16",
        ])
        .args(["--prometheus-listen", &addr.to_string(), "--output-dir"])
        .arg(out.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while !seen
        .last()
        .is_some_and(|l: &String| l.contains("serving the final metrics"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("the run never lingered: {seen:#?}"),
        }
    }
    let doc = common::validated(&common::results_file(out.path()));
    let want = json_totals(&doc).requests;
    let (status, body) = ps::http_get(addr, "/metrics").expect("/metrics during the linger");
    assert_eq!(status, 200);
    let got: f64 = body
        .lines()
        .filter(|l| l.starts_with("inference_benchmarker_requests_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(got, want, "the final values are served");
    assert!(body.contains("inference_benchmarker_phase{") && body.contains("phase=\"idle\""));

    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let signalled = Instant::now();
    let status = child.wait().unwrap();
    sim.stop();
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "Ctrl-C ended the linger in {:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(0), "the run had completed");
    assert!(ps::http_get(addr, "/metrics").is_err(), "/metrics is gone");
}
