//! Server metrics against the simulated server's vLLM-format `/metrics`: each step's window
//! matches what the step received, exactly for counters; scraping off, or an endpoint that does
//! not answer, leaves `server_metrics` null and the run whole.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use inference_benchmarker::config::{BenchmarkKind, RunConfig};
use inference_benchmarker::sim::{SimConfig, SimServer};
use sinks::server_metrics::{SeriesSummary, ServerMetrics};

const SLOTS: usize = 4;
const USERS: u64 = 8;

fn engine_sim() -> SimServer {
    SimServer::start(
        SimConfig {
            slots: SLOTS,
            // Slow enough that the moments a request spends between the engine and the socket
            // (entering the queue, writing [DONE]), which the gauges cannot see, stay a small
            // part of its time at the server on a busy test machine.
            decode_step_ms: 25.0,
            record: true,
            gpu_metrics: true,
            ..SimConfig::default()
        },
        None,
    )
    .unwrap()
}

fn closed_loop(url: &str, out: &std::path::Path) -> RunConfig {
    let mut cfg = common::config(url, out);
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    // No warmup: nothing but the step (and the pre-flight requests before its first scrape)
    // reaches the server.
    cfg.warmup = Duration::ZERO;
    cfg.max_vus = USERS;
    cfg.duration = Duration::from_secs(3);
    cfg.server_metrics_interval = Duration::from_millis(100);
    cfg
}

/// The tests whose whole runs load the sim: one at a time, so that 100 ms scrapes (80 ms
/// timeouts) do not fail on a busy 2-core machine.
static ONE_LOADED_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The time-weighted mean of the engine's batch over [from, to) (unix ns): its log is a
/// piecewise-constant function, 0 before its first change.
fn mean_batch(log: &[inference_benchmarker::sim::BatchChange], from: f64, to: f64) -> f64 {
    let mut area = 0.0;
    for (i, change) in log.iter().enumerate() {
        let start = (change.at_unix_nanos as f64).max(from);
        let end = log
            .get(i + 1)
            .map_or(to, |next| next.at_unix_nanos as f64)
            .min(to);
        if end > start {
            area += f64::from(change.batch) * (end - start);
        }
    }
    area / (to - from)
}

fn series<'a>(m: &'a ServerMetrics, key: &str) -> &'a SeriesSummary {
    m.series.get(key).unwrap_or_else(|| panic!("{key}: {m:#?}"))
}

#[test]
fn a_closed_loop_step_matches_the_servers_own_counts() {
    let _one = ONE_LOADED_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let sim = engine_sim();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = closed_loop(&sim.url(), out.path());
    // The sim's dcgm-exporter page: a second endpoint.
    cfg.server_metrics = vec![format!("{}/dcgm/metrics", sim.url())];
    let summary = inference_benchmarker::run(cfg).unwrap();
    let records = sim.records();
    let batch_log = sim.batch_log();
    // What a scrape costs us beyond the GET: parsing the sim's page and aggregating it (a
    // debug build: an upper bound).
    let text = sim.metrics_text();
    let mut w = sinks::server_metrics::MetricsWindow::new(vec!["m".into()], None);
    let t = std::time::Instant::now();
    for i in 0..100 {
        let s = sinks::server_metrics::parse::parse(&text).unwrap();
        w.observe(f64::from(i), &[(0, Some(&s))]);
    }
    eprintln!(
        "one scrape of {} bytes: {:?} to parse and aggregate",
        text.len(),
        t.elapsed() / 100
    );
    let url = sim.url();
    sim.stop();
    let doc = common::validated(&summary.results_path);
    let step = &summary.steps[0];
    let m = step.server_metrics.as_ref().expect("scraped");
    assert_eq!(m.engine.as_deref(), Some("vllm"), "DCGM is no engine");
    assert_eq!(m.endpoints.matches("metrics").count(), 2, "{}", m.endpoints);
    // The GPU: busy (the batch is full), its power between idle and full, its energy per token.
    let util = series(m, "gpu_utilization").mean().unwrap();
    assert!(util > 50.0 && util <= 100.0, "{util} %");
    let power = series(m, "gpu_power").mean().unwrap();
    let (idle, max) = (
        SimConfig::default().gpu_idle_watts,
        SimConfig::default().gpu_max_watts,
    );
    assert!(idle < power && power <= max, "{power} W");
    let joules = series(m, "gpu_energy").increase().unwrap() / 1000.0;
    assert_eq!(
        m.joules_per_output_token,
        Some(joules / step.total_tokens as f64)
    );
    assert_eq!(m.failed_scrapes, 0, "{m:#?}");
    assert!(m.scrapes >= 20, "every 100 ms over 3 s: {}", m.scrapes);
    assert!(step.total_requests > 0 && step.failed_requests == 0);

    // Counters: exactly what the step received.
    assert_eq!(
        series(m, "generation_tokens").increase(),
        Some(step.total_tokens as f64),
        "{m:#?}"
    );
    assert_eq!(
        series(m, "prompt_tokens").increase(),
        Some(step.output_tokens.server_prompt_tokens as f64)
    );
    assert_eq!(
        series(m, "requests_finished").increase(),
        Some(step.successful_requests as f64)
    );
    // The prefix cache: what the server reported request by request (`cached_tokens`).
    let cached = step.output_tokens.server_cached_tokens as f64;
    assert_eq!(series(m, "prefix_cache_hits").increase(), Some(cached));
    let queries = series(m, "prefix_cache_queries").increase().unwrap();
    assert_eq!(queries, step.output_tokens.server_prompt_tokens as f64);
    assert_eq!(m.prefix_cache_hit_rate, Some(cached / queries));
    // ... and the same rate from the requests' `usage`.
    assert_eq!(step.client_prefix_cache_hit_rate, m.prefix_cache_hit_rate);
    let SeriesSummary::Histogram { count, buckets, .. } = series(m, "ttft_seconds") else {
        panic!("{m:#?}")
    };
    assert_eq!(*count, step.successful_requests as f64);
    assert_eq!(buckets.0.last().map(|b| b.1), Some(*count));

    // Gauges over the sending window: the sim's requests in flight, from its own record of
    // each request's arrival and end.
    let start_time = doc["start_time"].as_str().unwrap();
    let anchor = humantime::parse_rfc3339(start_time)
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as f64;
    let from = anchor + step.start_ms.unwrap() as f64 * 1e6;
    let to = from + step.send_duration_ms as f64 * 1e6;
    // (arrival, end) of each request of the step, by the sim's record.
    let spans: Vec<(f64, f64)> = records
        .iter()
        .filter(|r| {
            r.request_id
                .as_deref()
                .is_some_and(|id| !id.contains("preflight"))
        })
        .map(|r| {
            let a = r.received_at_unix_nanos as f64;
            let us = |o: Option<u32>| o.map_or(f64::INFINITY, |us| a + f64::from(us) * 1e3);
            (a, us(r.end_us))
        })
        .collect();
    // Every millisecond of the window: the requests at the server.
    let (mut at_server, mut n) = (0.0, 0.0);
    let mut t = from;
    while t < to {
        at_server += spans.iter().filter(|(a, e)| *a <= t && t < *e).count() as f64;
        n += 1.0;
        t += 1e6;
    }
    let in_flight = at_server / n;
    let running = series(m, "requests_running").mean().unwrap();
    let waiting = series(m, "requests_waiting").mean().unwrap();
    // The true mean concurrency: the engine's batch over the window, by its own step log.
    let concurrency = mean_batch(&batch_log, from, to);
    eprintln!(
        "gauges: running {running} + waiting {waiting}; true concurrency {concurrency}, \
         at the server {in_flight}"
    );
    assert!(
        (running / concurrency - 1.0).abs() < 0.05,
        "running {running} vs the engine's true mean concurrency {concurrency}"
    );
    assert!(
        ((running + waiting) / in_flight - 1.0).abs() < 0.05,
        "running {running} + waiting {waiting} vs {in_flight} in flight at the server"
    );
    assert!(waiting > 0.0, "{USERS} users queue for {SLOTS} slots");

    // The raw samples: a line per scrape of each endpoint, in order, from which the step's
    // counter increase is the last value minus the first.
    let path = sinks::server_metrics::timeseries::timeseries_path(&summary.results_path);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    eprintln!(
        "timeseries: {} lines, {} bytes ({} bytes a line)",
        lines.len(),
        text.len(),
        text.len() / lines.len().max(1)
    );
    assert_eq!(lines.len() as u64, m.scrapes + m.failed_scrapes);
    let times: Vec<f64> = lines
        .iter()
        .map(|l| l["time_ms"].as_f64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let (start, end) = (
        step.start_ms.unwrap() as f64,
        (step.start_ms.unwrap() + step.duration_ms) as f64,
    );
    assert!(
        times[0] <= start + 1.0 && start - 1000.0 < times[0],
        "{} vs {start}",
        times[0]
    );
    assert!(*times.last().unwrap() >= end - 1.0, "{times:?} vs {end}");
    let vllm: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["endpoint"] == format!("{url}/metrics"))
        .collect();
    assert_eq!(
        vllm.len() * 2,
        lines.len(),
        "two endpoints, each every round"
    );
    let vllm_bytes: usize = text
        .lines()
        .filter(|l| l.contains(&format!("\"{url}/metrics\"")))
        .map(|l| l.len() + 1)
        .sum();
    eprintln!(
        "timeseries: the vLLM page's lines {} bytes each",
        vllm_bytes / vllm.len()
    );
    let tokens = |l: &serde_json::Value| l["series"]["generation_tokens"].as_f64().unwrap();
    assert_eq!(
        tokens(vllm.last().unwrap()) - tokens(vllm[0]),
        step.total_tokens as f64
    );
    assert!(vllm.iter().all(|l| l["error"].is_null()
        && l["series"]["requests_running"].is_number()
        && l["series"]["ttft_seconds_count"].is_number()));
    assert!(lines.iter().any(|l| l["series"]["gpu_power"].is_number()));
}

/// Prompts that repeat hit the sim's prefix cache: the hit rate from the requests' `usage`
/// (`client_prefix_cache_hit_rate`) and from its metrics agree, and are not 0.
#[test]
fn the_client_and_server_prefix_cache_hit_rates_agree() {
    let _one = ONE_LOADED_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let sim = engine_sim();
    let out = tempfile::tempdir().unwrap();
    let dataset = out.path().join("repeat.jsonl");
    let line = |n: u32| {
        let text = format!(
            "Context {n}: {}",
            "You are a careful assistant. ".repeat(40)
        );
        serde_json::json!({"conversations": [{"from": "human", "value": text}]}).to_string()
    };
    std::fs::write(&dataset, format!("{}\n{}\n", line(1), line(2))).unwrap();
    let mut cfg = closed_loop(&sim.url(), out.path());
    cfg.duration = Duration::from_secs(2);
    cfg.dataset = None;
    cfg.dataset_file = Some(dataset);
    cfg.prompt_options = None;
    let summary = inference_benchmarker::run(cfg).unwrap();
    sim.stop();
    let doc = common::validated(&summary.results_path);
    let step = &summary.steps[0];
    let m = step.server_metrics.as_ref().expect("scraped");
    let (client, server) = (step.client_prefix_cache_hit_rate, m.prefix_cache_hit_rate);
    eprintln!(
        "prefix-cache hit rate: ours {client:?}, the server's {server:?} ({} of {} prompt tokens cached, {} requests)",
        step.output_tokens.server_cached_tokens,
        step.output_tokens.server_prompt_tokens,
        step.successful_requests
    );
    let client = client.expect("the sim reports cached_tokens");
    assert!(client > 0.5 && client < 1.0, "{client}");
    assert_eq!(Some(client), server);
    assert_eq!(doc["results"][0]["client_prefix_cache_hit_rate"], client);
}

#[test]
fn no_server_metrics_writes_null() {
    let sim = engine_sim();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = closed_loop(&sim.url(), out.path());
    cfg.duration = Duration::from_secs(1);
    cfg.no_server_metrics = true;
    let summary = inference_benchmarker::run(cfg).unwrap();
    sim.stop();
    let doc = common::validated(&summary.results_path);
    assert!(doc["results"][0]["server_metrics"].is_null(), "{doc:#}");
    let timeseries = sinks::server_metrics::timeseries::timeseries_path(&summary.results_path);
    assert!(
        !timeseries.exists(),
        "nothing scraped, no {}",
        timeseries.display()
    );
    assert!(doc["results"][0]
        .as_object()
        .unwrap()
        .contains_key("server_metrics"));
}

/// A gauge of the simulated server's own `/metrics` page, as it is now.
fn sim_gauge(sim: &SimServer, name: &str) -> f64 {
    let page = sim.metrics_text();
    page.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not on the page:\n{page}"))
}

/// Each round's requests waiting and KV-cache usage reach the live gauges the console reads: 0
/// and 0 on an idle server; with its slots full and requests queued, the server's own numbers at
/// the moment of the scrape (the queue exactly, the KV cache between the server's usage just
/// before and just after the round, as it grows with every decoded token).
#[test]
fn the_scraper_publishes_the_queue_and_the_kv_cache_for_the_console() {
    const SLOTS: usize = 2;
    const REQUESTS: usize = 5;
    let _one = ONE_LOADED_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let sim = SimServer::start(
        SimConfig {
            slots: SLOTS,
            // 40 tokens 50 ms apart: the first two requests hold the slots for 2 s.
            decode_step_ms: 50.0,
            // Small, so that the running requests' tokens (at most 2 × 47) are a visible share.
            kv_cache_tokens: 256,
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let (waiting, kv) = ("vllm:num_requests_waiting", "vllm:kv_cache_usage_perc");
    actix_rt::System::new().block_on(async {
        let client = awc::Client::default();
        let live = std::sync::Arc::new(sinks::prometheus::LiveGauges::new(1));
        assert_eq!(live.server_kv_cache(), None, "unknown before a scrape");
        let cfg = RunConfig::new(sim.url());
        let scraper =
            inference_benchmarker::outputs::server_metrics::start(&cfg, &client, live.clone())
                .await
                .expect("the sim serves /metrics");
        scraper
            .addr
            .send(sinks::server_metrics::scraper::BeginStep::default())
            .await
            .unwrap();
        // The sim is idle: nothing waits, nothing is cached, and both are known.
        assert_eq!(live.server_waiting(), Some(0.0));
        assert_eq!(live.server_kv_cache(), Some(0.0));

        // Loaded: two requests decoding, three queued behind them.
        let addr = sim.addr();
        let load = std::thread::spawn(move || {
            common::floor::run(
                addr,
                "load",
                REQUESTS,
                Duration::ZERO,
                40,
                Duration::from_secs(30),
            )
        });
        let queued = (REQUESTS - SLOTS) as f64;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sim_gauge(&sim, waiting) != queued
            || sim_gauge(&sim, "vllm:num_requests_running") != SLOTS as f64
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the sim never queued {queued}:\n{}",
                sim.metrics_text()
            );
            actix_rt::time::sleep(Duration::from_millis(5)).await;
        }
        for round in 0..3 {
            // A decode step between rounds: each sees the cache grown.
            actix_rt::time::sleep(Duration::from_millis(60)).await;
            let before = (sim_gauge(&sim, waiting), sim_gauge(&sim, kv));
            scraper
                .addr
                .send(sinks::server_metrics::scraper::EndSending)
                .await
                .unwrap();
            let after = (sim_gauge(&sim, waiting), sim_gauge(&sim, kv));
            let shown = (live.server_waiting(), live.server_kv_cache());
            eprintln!(
                "round {round}: the sim's (waiting, KV cache) {before:?} before, {after:?} after; \
                 the console's {shown:?}"
            );
            assert_eq!((before.0, after.0), (queued, queued), "still queued");
            assert_eq!(shown.0, Some(queued));
            let kv_shown = shown.1.expect("the KV cache is known");
            assert!(
                before.1 > 0.0 && before.1 <= kv_shown && kv_shown <= after.1,
                "KV cache: the console's {kv_shown}, the sim's {} before and {} after",
                before.1,
                after.1
            );
        }
        scraper.stop();
        let load = load.join().expect("the load's requests end");
        assert_eq!(load.len(), REQUESTS);
    });
    sim.stop();
}

/// The default endpoint answers 404, or nothing: off before the run, whose steps say null.
#[test]
fn an_endpoint_that_does_not_answer_turns_scraping_off() {
    let sim = engine_sim();
    actix_rt::System::new().block_on(async {
        let client = awc::Client::default();
        let live = std::sync::Arc::new(sinks::prometheus::LiveGauges::new(1));
        let mut cfg = RunConfig::new(format!("{}/nothing-here", sim.url()));
        let started =
            inference_benchmarker::outputs::server_metrics::start(&cfg, &client, live.clone())
                .await;
        assert!(started.is_none(), "404: off");
        cfg.url = "http://127.0.0.1:9".into();
        let started =
            inference_benchmarker::outputs::server_metrics::start(&cfg, &client, live.clone())
                .await;
        assert!(started.is_none(), "refused: off");
        // Given explicitly, an endpoint that does not answer yet is kept (warned about).
        cfg.server_metrics = vec!["http://127.0.0.1:9/metrics".into()];
        let started =
            inference_benchmarker::outputs::server_metrics::start(&cfg, &client, live.clone())
                .await;
        assert!(started.is_some(), "explicit: kept");
        started.unwrap().stop();
    });
    // A whole run whose only extra endpoint fails: counted per step, never fatal.
    let out = tempfile::tempdir().unwrap();
    let mut cfg = closed_loop(&sim.url(), out.path());
    cfg.duration = Duration::from_secs(1);
    cfg.server_metrics = vec!["http://127.0.0.1:9/metrics".into()];
    let summary = inference_benchmarker::run(cfg).unwrap();
    let url = sim.url();
    sim.stop();
    common::validated(&summary.results_path);
    let m = summary.steps[0].server_metrics.as_ref().unwrap();
    assert!(m.failed_scrapes >= 3, "{m:#?}");
    assert!(m.scrapes >= 3, "{m:#?}");
    assert_eq!(
        m.endpoints,
        format!("{url}/metrics, http://127.0.0.1:9/metrics")
    );
}
