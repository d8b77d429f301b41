//! The OTLP trace sink against an in-process OTLP receiver (`mock-collector`, HTTP/protobuf and
//! gRPC): one CLIENT span per request with the GenAI attributes, step spans under the run span,
//! request spans linking to their step, error status on failures; the `traceparent` every
//! request carried (recorded by the simulated server) names exactly the exported span; a dead
//! collector changes nothing but the span count.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use inference_benchmarker::config::{BenchmarkKind, RunConfig};
use inference_benchmarker::sim::{SimConfig, SimServer};
use mock_collector::{MockServer, Protocol, ServerHandle};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Av;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use sinks::otlp::parse_traceparent;

const CLIENT: i32 = 3; // SpanKind::Client in OTLP
const INTERNAL: i32 = 1;
const STATUS_ERROR: i32 = 2;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn collector(rt: &tokio::runtime::Runtime, protocol: Protocol) -> ServerHandle {
    rt.block_on(MockServer::builder().protocol(protocol).port(0).start())
        .expect("mock collector starts")
}

fn spans(rt: &tokio::runtime::Runtime, server: &ServerHandle) -> Vec<(Vec<KeyValue>, Span)> {
    rt.block_on(server.with_collector(|c| {
        c.spans()
            .iter()
            .map(|s| (s.resource_attrs().to_vec(), s.span().clone()))
            .collect()
    }))
}

fn attr<'a>(s: &'a [KeyValue], key: &str) -> Option<&'a Av> {
    s.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn str_attr(s: &[KeyValue], key: &str) -> String {
    match attr(s, key) {
        Some(Av::StringValue(v)) => v.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

fn int_attr(s: &[KeyValue], key: &str) -> i64 {
    match attr(s, key) {
        Some(Av::IntValue(v)) => *v,
        other => panic!("{key}: {other:?}"),
    }
}

/// A simulated server that records what it received.
fn sim_with(cfg: SimConfig) -> SimServer {
    SimServer::start(
        SimConfig {
            record: true,
            ..cfg
        },
        None,
    )
    .expect("simulated server starts")
}

/// The completion requests the server received (not the pre-flight `/v1/models`).
fn chat_records(sim: &SimServer) -> Vec<inference_benchmarker::sim::SimRecord> {
    sim.records()
        .into_iter()
        .filter(|r| r.endpoint.ends_with("/chat/completions"))
        .collect()
}

fn traced_config(sim: &SimServer, out: &Path, endpoint: String) -> RunConfig {
    let mut cfg = common::config(&sim.url(), out);
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    cfg.max_vus = 4;
    cfg.duration = Duration::from_secs(1);
    cfg.save_requests = true;
    cfg.no_report = true;
    cfg.otlp_endpoint = Some(endpoint);
    cfg.api_key = Some("sk-never-exported".into());
    cfg
}

fn request_ids_in_log(results: &Path) -> HashSet<String> {
    let log = results.with_extension("requests.jsonl");
    std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Checks the whole trace structure of one run; returns (ok spans, error spans).
fn check_run(
    got: &[(Vec<KeyValue>, Span)],
    sim: &SimServer,
    results: &Path,
    total_requests: u64,
) -> (usize, usize) {
    let requests: Vec<&Span> = got
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.kind == CLIENT)
        .collect();
    assert_eq!(
        requests.len() as u64,
        total_requests,
        "one span per request"
    );
    for (resource, _) in got {
        assert_eq!(str_attr(resource, "service.name"), "inference-benchmarker");
        assert_eq!(str_attr(resource, "inference_benchmarker.run_id"), "t");
    }
    // Run span: the only root among the internal spans; steps are its children.
    let internal: Vec<&Span> = got
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.kind == INTERNAL)
        .collect();
    let runs: Vec<&&Span> = internal
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(runs.len(), 1, "one run span");
    let run = runs[0];
    assert!(run.name.starts_with("benchmark "), "{}", run.name);
    let steps: HashMap<Vec<u8>, &Span> = internal
        .iter()
        .filter(|s| !s.parent_span_id.is_empty())
        .map(|s| (s.span_id.clone(), *s))
        .collect();
    assert_eq!(steps.len(), 1, "one step span (no warmup)");
    for step in steps.values() {
        assert_eq!(step.parent_span_id, run.span_id);
        assert_eq!(step.trace_id, run.trace_id);
        assert!(step.name.starts_with("step "), "{}", step.name);
    }

    let logged = request_ids_in_log(results);
    let mut by_trace = HashMap::new();
    let (mut ok, mut failed) = (0, 0);
    for s in &requests {
        let a = &s.attributes;
        let model = str_attr(a, "gen_ai.request.model");
        assert_eq!(s.name, format!("chat {model}"));
        assert_eq!(str_attr(a, "gen_ai.operation.name"), "chat");
        assert_eq!(str_attr(a, "gen_ai.provider.name"), "openai");
        assert_eq!(str_attr(a, "server.address"), "127.0.0.1");
        assert_eq!(int_attr(a, "server.port"), i64::from(sim.addr().port()));
        assert_eq!(int_attr(a, "gen_ai.request.max_tokens"), 16);
        // Ours (50) and the server's count, which includes the chat template's tokens.
        assert_eq!(int_attr(a, "inference_benchmarker.prompt_tokens"), 50);
        assert!(int_attr(a, "gen_ai.usage.input_tokens") >= 50);
        assert_eq!(str_attr(a, "inference_benchmarker.run_id"), "t");
        assert_eq!(int_attr(a, "inference_benchmarker.step"), 1);
        assert!(matches!(
            attr(a, "inference_benchmarker.queue_delay_ms"),
            Some(Av::DoubleValue(_))
        ));
        assert!(s.parent_span_id.is_empty(), "request spans are roots");
        assert_eq!(s.links.len(), 1, "a link to the step span");
        assert!(steps.contains_key(&s.links[0].span_id));
        assert_eq!(s.links[0].trace_id, run.trace_id);
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
        let id = str_attr(a, "inference_benchmarker.request_id");
        assert!(logged.contains(&id), "{id} is in --save-requests output");
        for kv in a {
            let text = format!("{kv:?}");
            assert!(!text.contains("sk-never-exported"), "no API key: {text}");
        }
        let status = int_attr(a, "http.response.status_code");
        if status == 200 {
            ok += 1;
            assert_eq!(int_attr(a, "gen_ai.usage.output_tokens"), 16);
            assert!(!str_attr(a, "gen_ai.response.model").is_empty());
            match attr(a, "gen_ai.response.finish_reasons") {
                Some(Av::ArrayValue(v)) => assert_eq!(v.values.len(), 1),
                other => panic!("finish_reasons: {other:?}"),
            }
            assert!(matches!(
                attr(a, "inference_benchmarker.ttft_ms"),
                Some(Av::DoubleValue(_))
            ));
            assert!(matches!(
                attr(a, "inference_benchmarker.itl_ms"),
                Some(Av::DoubleValue(_))
            ));
            assert!(attr(a, "error.type").is_none());
            assert_eq!(s.events.len(), 1);
            assert_eq!(s.events[0].name, "gen_ai.first_token");
            assert!(s.events[0].time_unix_nano >= s.start_time_unix_nano);
        } else {
            failed += 1;
            assert_eq!(str_attr(a, "error.type"), status.to_string());
            assert_eq!(s.status.as_ref().map(|st| st.code), Some(STATUS_ERROR));
        }
        by_trace.insert(s.trace_id.clone(), (s.span_id.clone(), id));
    }

    // The server saw exactly these ids in traceparent, and the same x-request-id.
    let records = chat_records(sim);
    assert_eq!(records.len() as u64, total_requests);
    for r in records {
        let tp = r
            .traceparent
            .as_deref()
            .expect("every request carries traceparent");
        let ctx = parse_traceparent(tp).expect("a valid traceparent");
        assert!(ctx.sampled);
        let (span_id, id) = by_trace
            .get(ctx.trace_id.as_slice())
            .unwrap_or_else(|| panic!("no exported span for {tp}"));
        assert_eq!(span_id.as_slice(), ctx.span_id.as_slice());
        assert_eq!(r.request_id.as_deref(), Some(id.as_str()));
    }
    (ok, failed)
}

#[test]
fn http_one_span_per_request_joined_with_the_server_by_traceparent() {
    let rt = runtime();
    let server = collector(&rt, Protocol::HttpBinary);
    let sim = sim_with(SimConfig::default());
    let out = tempfile::tempdir().unwrap();
    let cfg = traced_config(&sim, out.path(), format!("http://{}", server.addr()));
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let total: u64 = summary.steps.iter().map(|s| s.total_requests).sum();
    assert!(total > 0);
    let got = spans(&rt, &server);
    let (ok, failed) = check_run(&got, &sim, &summary.results_path, total);
    sim.stop();
    assert_eq!(failed, 0);
    assert_eq!(ok as u64, total);
}

#[test]
fn grpc_failed_requests_have_error_status() {
    let rt = runtime();
    let server = collector(&rt, Protocol::Grpc);
    // One slot and a queue of one: most of 8 concurrent users get 503.
    let sim = sim_with(SimConfig {
        slots: 1,
        max_queue: 1,
        ..SimConfig::default()
    });
    let out = tempfile::tempdir().unwrap();
    let mut cfg = traced_config(&sim, out.path(), format!("http://{}", server.addr()));
    cfg.otlp_protocol = sinks::otlp::OtlpProtocol::Grpc;
    cfg.max_vus = 8;
    // Most requests fail on purpose: no --max-error-rate.
    cfg.max_error_rate = None;
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let total: u64 = summary.steps.iter().map(|s| s.total_requests).sum();
    let failed_in_results: u64 = summary.steps.iter().map(|s| s.failed_requests).sum();
    let got = spans(&rt, &server);
    let (ok, failed) = check_run(&got, &sim, &summary.results_path, total);
    sim.stop();
    assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
    assert_eq!(failed as u64, failed_in_results);
}

#[test]
fn sampling_exports_only_sampled_requests_and_says_so_in_traceparent() {
    let rt = runtime();
    let server = collector(&rt, Protocol::HttpBinary);
    let sim = sim_with(SimConfig::default());
    let out = tempfile::tempdir().unwrap();
    let mut cfg = traced_config(&sim, out.path(), format!("http://{}", server.addr()));
    cfg.trace_sample_ratio = 0.5;
    cfg.max_vus = 8;
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let total: u64 = summary.steps.iter().map(|s| s.total_requests).sum();
    let got = spans(&rt, &server);
    let exported: HashSet<Vec<u8>> = got
        .iter()
        .filter(|(_, s)| s.kind == CLIENT)
        .map(|(_, s)| s.trace_id.clone())
        .collect();
    let records = chat_records(&sim);
    sim.stop();
    assert_eq!(records.len() as u64, total);
    let mut sampled = 0;
    for r in &records {
        let ctx = parse_traceparent(r.traceparent.as_deref().unwrap()).unwrap();
        assert_eq!(
            ctx.sampled,
            sinks::otlp::context::is_sampled(&ctx.trace_id, 0.5)
        );
        assert_eq!(exported.contains(ctx.trace_id.as_slice()), ctx.sampled);
        sampled += usize::from(ctx.sampled);
    }
    assert_eq!(exported.len(), sampled);
    assert!(
        sampled > 0 && (sampled as u64) < total,
        "{sampled} of {total}"
    );
}

/// The binary's stderr line with the span counts.
fn otlp_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.contains("OTLP traces:") && l.contains("exported"))
        .unwrap_or_else(|| panic!("no OTLP summary line in:\n{stderr}"))
        .to_string()
}

fn run_binary(
    sim: &SimServer,
    out: &Path,
    extra: &[&str],
) -> (Duration, String, serde_json::Value) {
    let started = Instant::now();
    let run = common::benchmark()
        .args(["-u", &sim.url(), "-w", "0s", "-d", "2s", "--max-vus", "4"])
        .args([
            "--benchmark-kind",
            "throughput",
            "--no-console",
            "--no-report",
        ])
        .args([
            "--prompt-options",
            "num_tokens=50,max_tokens=50,min_tokens=50,variance=0",
        ])
        .args([
            "--decode-options",
            "num_tokens=16,max_tokens=16,min_tokens=16,variance=0",
        ])
        .arg("--output-dir")
        .arg(out)
        .args(extra)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .output()
        .expect("the binary runs");
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&run.stderr).to_string();
    assert!(run.status.success(), "{stderr}");
    let doc = common::validated(&common::results_file(out));
    (took, stderr, doc)
}

#[test]
fn a_dead_collector_costs_nothing_but_the_spans() {
    let sim = SimServer::start(SimConfig::default(), None).expect("simulated server starts");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    let plain_out = tempfile::tempdir().unwrap();
    let (plain, _, plain_doc) = run_binary(&sim, plain_out.path(), &[]);
    let dead_out = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let (dead, stderr, dead_doc) =
        run_binary(&sim, dead_out.path(), &["--otlp-endpoint", &endpoint]);
    sim.stop();
    let line = otlp_line(&stderr);
    eprintln!("without tracing {plain:?}, dead collector {dead:?}; {line}");
    assert!(line.contains(" 0 spans exported"), "{line}");
    let requests = dead_doc["results"][0]["total_requests"].as_u64().unwrap();
    assert!(requests > 0);
    assert_eq!(
        dead_doc["results"][0]["failed_requests"].as_u64(),
        Some(0),
        "requests are unaffected"
    );
    assert_eq!(plain_doc["results"][0]["failed_requests"].as_u64(), Some(0));
    // Spans of every request, the step and the run were lost, and counted.
    let counts = line.split("OTLP traces:").nth(1).unwrap();
    let lost: u64 = counts
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u64>().ok())
        .skip(1)
        .sum();
    assert_eq!(lost, requests + 2, "{line}");
    // ... and the results say so too.
    let report = &dead_doc["sinks"]["otlp"];
    let in_results =
        report["spans_dropped"].as_u64().unwrap() + report["spans_failed"].as_u64().unwrap();
    assert_eq!(in_results, requests + 2, "{report}");
    assert_eq!(report["spans_exported"], 0);
    // Same fixed duration: the dead collector adds no more than its one retry and scheduling
    // noise (with the exporter's default three backoffs it added 1.7 s).
    assert!(
        dead < plain + Duration::from_millis(800),
        "without tracing {plain:?}, dead collector {dead:?}"
    );
}
