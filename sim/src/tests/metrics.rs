//! `/metrics` and `/dcgm/metrics` against what the clients saw: a load on a real `SimServer`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{connect, eventually, fast_engine, post, request, send_request, Response, TIMING};
use crate::metrics::tests::{parse_exposition, value, Sample};
use crate::{SimConfig, SimServer};

const MODEL: [(&str, &str); 1] = [("model_name", "simulated")];

/// One scrape of `path`, parsed strictly.
fn scrape(addr: SocketAddr, path: &str) -> Vec<Sample> {
    let resp = request(addr, "GET", path, &[], "");
    assert_eq!(resp.status, 200, "{path}: {}", resp.body);
    let content_type = resp.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    parse_exposition(&resp.body).unwrap_or_else(|e| panic!("{path}: {e}\n{}", resp.body))
}

fn vllm(samples: &[Sample], name: &str) -> f64 {
    value(samples, &format!("vllm:{name}"), &MODEL)
}

/// What one client got: (prompt tokens, token chunks received, finish_reason).
fn received(resp: &Response, stream: bool) -> (u64, u64, String) {
    assert_eq!(resp.status, 200, "{}", resp.body);
    if !stream {
        let body = resp.json();
        let usage = &body["usage"];
        let finish = body["choices"][0]["finish_reason"].as_str().unwrap();
        return (
            usage["prompt_tokens"].as_u64().unwrap(),
            usage["completion_tokens"].as_u64().unwrap(),
            finish.to_string(),
        );
    }
    let events = resp.events();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let tokens: Vec<&Value> = chunks
        .iter()
        .filter(|c| !c["choices"].as_array().unwrap().is_empty())
        .collect();
    let finish = tokens.last().unwrap()["choices"][0]["finish_reason"]
        .as_str()
        .unwrap()
        .to_string();
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        usage["completion_tokens"].as_u64(),
        Some(tokens.len() as u64)
    );
    (
        usage["prompt_tokens"].as_u64().unwrap(),
        tokens.len() as u64,
        finish,
    )
}

#[test]
fn metrics_count_what_the_clients_received() {
    let _serial = TIMING.lock();
    let slots = 4;
    let cfg = SimConfig {
        slots,
        decode_step_ms: 2.0,
        mean_output_tokens: 20.0,
        ..fast_engine()
    };
    let server = SimServer::start(cfg, None).unwrap();
    let addr = server.addr();
    // Before any request: every series there, at zero.
    let idle = scrape(addr, "/metrics");
    assert_eq!(vllm(&idle, "generation_tokens_total"), 0.0);
    assert_eq!(vllm(&idle, "e2e_request_latency_seconds_count"), 0.0);

    // A scraper watches the gauges during the load.
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let s = scrape(addr, "/metrics");
                let gauges = ["num_requests_running", "num_requests_waiting"];
                let [running, waiting] = gauges.map(|g| vllm(&s, g));
                seen.push((running, waiting, vllm(&s, "kv_cache_usage_perc")));
                std::thread::sleep(Duration::from_millis(3));
            }
            seen
        })
    };
    let clients = 16;
    let start = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let start = start.clone();
            std::thread::spawn(move || {
                // Streaming completions and non-streaming chats, some stopping at EOS.
                let stream = i % 4 != 0;
                let prompt = format!("Request {i}: tell me about the weather. {}", "x".repeat(i));
                let body = if stream {
                    json!({"prompt": prompt, "max_tokens": 30 + i, "ignore_eos": i % 2 == 0,
                           "stream": true, "stream_options": {"include_usage": true}})
                } else {
                    json!({"messages": [{"role": "user", "content": prompt}],
                           "max_tokens": 30 + i, "ignore_eos": i % 8 == 0})
                };
                let path = if stream {
                    "/v1/completions"
                } else {
                    "/v1/chat/completions"
                };
                start.wait();
                received(&post(addr, path, body), stream)
            })
        })
        .collect();
    let got: Vec<(u64, u64, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let seen = scraper.join().unwrap();

    // The gauges were plausible: never more running than slots, the excess waiting.
    let slots = slots as f64;
    assert!(
        seen.iter()
            .all(|&(r, w, kv)| r <= slots && r + w <= clients as f64 && (0.0..=1.0).contains(&kv)),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|&(r, w, _)| r == slots && w > 0.0),
        "never saw a full batch with a queue: {seen:?}"
    );
    assert!(seen.iter().any(|&(_, _, kv)| kv > 0.0), "{seen:?}");

    // Everything finished: the gauges are back to zero, the counters exact.
    let s = scrape(addr, "/metrics");
    for gauge in [
        "num_requests_running",
        "num_requests_waiting",
        "kv_cache_usage_perc",
    ] {
        assert_eq!(vllm(&s, gauge), 0.0, "{gauge}");
    }
    let prompt: u64 = got.iter().map(|g| g.0).sum();
    let tokens: u64 = got.iter().map(|g| g.1).sum();
    assert_eq!(vllm(&s, "generation_tokens_total"), tokens as f64);
    assert_eq!(vllm(&s, "prompt_tokens_total"), prompt as f64);
    assert_eq!(server.stats().tokens_sent, tokens);
    for reason in ["length", "stop"] {
        let want = got.iter().filter(|g| g.2 == reason).count() as f64;
        let labels = [MODEL[0], ("finished_reason", reason)];
        assert_eq!(value(&s, "vllm:request_success_total", &labels), want);
    }
    let n = clients as f64;
    assert_eq!(vllm(&s, "time_to_first_token_seconds_count"), n);
    assert_eq!(vllm(&s, "e2e_request_latency_seconds_count"), n);
    let multi = got.iter().filter(|g| g.1 >= 2).count() as f64;
    assert_eq!(vllm(&s, "time_per_output_token_seconds_count"), multi);
    assert_eq!(vllm(&s, "num_preemptions_total"), 0.0);
    // Queued requests waited: the mean TTFT is at least a few steps.
    let mean_ttft = vllm(&s, "time_to_first_token_seconds_sum") / n;
    assert!(mean_ttft > 0.004, "{mean_ttft}");
}

#[test]
fn prefix_cache_counters_match_the_cache() {
    let server = SimServer::start(fast_engine(), None).unwrap();
    let prompt = "You are a careful assistant. ".repeat(20);
    let body = json!({"prompt": prompt, "max_tokens": 1, "stream": true,
                      "stream_options": {"include_usage": true}});
    let usage = |resp: Response| -> Value {
        let events = resp.events();
        serde_json::from_str::<Value>(&events[events.len() - 2]).unwrap()["usage"].clone()
    };
    let cold = usage(post(server.addr(), "/v1/completions", body.clone()));
    let warm = usage(post(server.addr(), "/v1/completions", body));
    let cached = warm["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(cached > 0);
    let prompt_tokens = cold["prompt_tokens"].as_u64().unwrap();
    let s = scrape(server.addr(), "/metrics");
    assert_eq!(
        vllm(&s, "prefix_cache_queries_total"),
        2.0 * prompt_tokens as f64
    );
    assert_eq!(vllm(&s, "prefix_cache_hits_total"), cached as f64);
    assert_eq!(vllm(&s, "prompt_tokens_total"), 2.0 * prompt_tokens as f64);

    // Without a cache nothing is queried.
    let cfg = SimConfig {
        prefix_cache_blocks: 0,
        ..fast_engine()
    };
    let server = SimServer::start(cfg, None).unwrap();
    post(
        server.addr(),
        "/v1/completions",
        json!({"prompt": prompt, "max_tokens": 1}),
    );
    let s = scrape(server.addr(), "/metrics");
    assert_eq!(vllm(&s, "prefix_cache_queries_total"), 0.0);
    assert_eq!(vllm(&s, "prompt_tokens_total"), prompt_tokens as f64);
}

#[test]
fn timing_modes_count_the_requests_being_streamed() {
    let cfg = SimConfig {
        fixed_itl_ms: Some(5.0),
        ..fast_engine()
    };
    let server = SimServer::start(cfg, None).unwrap();
    let addr = server.addr();
    let streams: Vec<_> = (0..3)
        .map(|_| {
            let mut stream = connect(addr);
            send_request(
                &mut stream,
                "POST",
                "/v1/completions",
                &[],
                r#"{"prompt":"abcdefgh","max_tokens":30000,"ignore_eos":true,"stream":true}"#,
            );
            stream
        })
        .collect();
    eventually("three requests streaming", || {
        vllm(&scrape(addr, "/metrics"), "num_requests_running") == 3.0
    });
    let s = scrape(addr, "/metrics");
    assert_eq!(vllm(&s, "num_requests_waiting"), 0.0);
    assert_eq!(vllm(&s, "prompt_tokens_total"), 6.0);
    assert!(vllm(&s, "kv_cache_usage_perc") > 0.0);
    drop(streams);
    eventually("the streams ended", || {
        let s = scrape(addr, "/metrics");
        vllm(&s, "num_requests_running") == 0.0 && vllm(&s, "kv_cache_usage_perc") == 0.0
    });
    // The cut streams counted the tokens they sent, and no success.
    eventually("the requests accounted", || {
        server.stats().by_status.get(&200) == Some(&3)
    });
    let s = scrape(addr, "/metrics");
    assert_eq!(
        vllm(&s, "generation_tokens_total"),
        server.stats().tokens_sent as f64
    );
    assert_eq!(vllm(&s, "e2e_request_latency_seconds_count"), 0.0);
}

#[test]
fn dcgm_energy_is_the_integral_of_the_power_model() {
    let _serial = TIMING.lock();
    let gpu = [
        ("gpu", "0"),
        ("UUID", "GPU-sim-0"),
        ("modelName", "Simulated GPU"),
    ];
    // Off by default.
    let server = SimServer::start(fast_engine(), None).unwrap();
    assert_eq!(
        request(server.addr(), "GET", "/dcgm/metrics", &[], "").status,
        404
    );
    drop(server);

    let cfg = SimConfig {
        gpu_metrics: true,
        slots: 4,
        decode_step_ms: 5.0,
        ..fast_engine()
    };
    let server = SimServer::start(cfg, None).unwrap();
    let addr = server.addr();
    let idle = scrape(addr, "/dcgm/metrics");
    assert_eq!(value(&idle, "DCGM_FI_DEV_GPU_UTIL", &gpu), 0.0);
    assert_eq!(value(&idle, "DCGM_FI_DEV_POWER_USAGE", &gpu), 60.0);
    assert!(idle.iter().all(|s| s.labels.contains_key("Hostname")));

    // Two endless streams on four slots: utilization 50 %, 230 W, steadily.
    let streams: Vec<_> = (0..2)
        .map(|_| {
            let mut stream = connect(addr);
            send_request(
                &mut stream,
                "POST",
                "/v1/completions",
                &[],
                r#"{"prompt":"abcdefgh","max_tokens":30000,"ignore_eos":true,"stream":true}"#,
            );
            stream
        })
        .collect();
    eventually("two requests running", || {
        vllm(&scrape(addr, "/metrics"), "num_requests_running") == 2.0
    });
    let energy = |s: &[Sample]| value(s, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", &gpu);
    let t0 = Instant::now();
    let a = scrape(addr, "/dcgm/metrics");
    let t1 = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let t2 = Instant::now();
    let b = scrape(addr, "/dcgm/metrics");
    let t3 = Instant::now();
    for s in [&a, &b] {
        assert_eq!(value(s, "DCGM_FI_DEV_GPU_UTIL", &gpu), 50.0);
        assert_eq!(value(s, "DCGM_FI_DEV_POWER_USAGE", &gpu), 230.0);
        assert!(value(s, "DCGM_FI_DEV_FB_USED", &gpu) >= 16_384.0);
    }
    let joules = (energy(&b) - energy(&a)) / 1e3;
    // The server's scrape instants lie between t0..t1 and t2..t3.
    let (inner, outer) = ((t2 - t1).as_secs_f64(), (t3 - t0).as_secs_f64());
    assert!(
        230.0 * inner <= joules && joules <= 230.0 * outer,
        "{joules} J over {inner}..{outer} s"
    );
    let mean_watts = joules / ((inner + outer) / 2.0);
    let tolerance = 0.01 + (outer - inner) / inner;
    assert!(
        (mean_watts / 230.0 - 1.0).abs() <= tolerance,
        "{mean_watts} W"
    );
    drop(streams);
}
