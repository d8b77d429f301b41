//! The OTLP trace sink against a real trace store: Arize Phoenix (`phoenix serve`, loopback, a
//! fresh working folder), directly over HTTP/protobuf and through the rotel collector (gRPC in,
//! gRPC out to Phoenix). Phoenix's REST API must then hold one span per request with the right
//! attributes and ids, next to the step and run spans.
//!
//! Phoenix and rotel come from PyPI into `~/.cache/inference-benchmarker/otel-venv` (see
//! `tests/run.sh`); `OTEL_TEST_VENV` names another virtualenv. Missing: a failure naming it.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use inference_benchmarker::sim::{SimConfig, SimServer};
use serde_json::Value;
use sinks::otlp::parse_traceparent;

const TEST: &str = "otlp_phoenix";

fn venv() -> PathBuf {
    std::env::var_os("OTEL_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::cache_dir().join("otel-venv"))
}

/// rotel's PyPI package ships its collector binary inside the Python package.
fn rotel_agent(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/rotel/rotel-agent"))
        .find(|p| p.is_file())
}

/// The tools, or None after [`common::missing`].
fn tools() -> Option<(PathBuf, PathBuf)> {
    let v = venv();
    let phoenix = v.join("bin/phoenix");
    let found = (phoenix.is_file().then_some(phoenix), rotel_agent(&v));
    match found {
        (Some(p), Some(r)) => Some((p, r)),
        _ => {
            common::missing(
                TEST,
                &format!(
                    "arize-phoenix and rotel are not installed in {}",
                    v.display()
                ),
            );
            None
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills and reaps a child process when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A GET on loopback; returns (status, body). Enough HTTP/1.1 for Phoenix's JSON answers.
fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no status")?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(body) } else { body.into() }))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

struct Phoenix {
    _proc: Guard,
    http: u16,
    grpc: u16,
    _dir: tempfile::TempDir,
}

fn start_phoenix(bin: &Path) -> Phoenix {
    let dir = tempfile::tempdir().unwrap();
    let (http, grpc) = (free_port(), free_port());
    let log = std::fs::File::create(dir.path().join("phoenix.log")).unwrap();
    let child = Command::new(bin)
        .arg("serve")
        .current_dir(dir.path())
        .env("PHOENIX_WORKING_DIR", dir.path())
        .env("PHOENIX_HOST", "127.0.0.1")
        .env("PHOENIX_PORT", http.to_string())
        .env("PHOENIX_GRPC_PORT", grpc.to_string())
        .env("PHOENIX_TELEMETRY_ENABLED", "false")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("phoenix starts");
    let phoenix = Phoenix {
        _proc: Guard(child),
        http,
        grpc,
        _dir: dir,
    };
    // First start creates its SQLite database (migrations): tens of seconds on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok((200, _)) = get(http, "/v1/projects") {
            return phoenix;
        }
        assert!(
            Instant::now() < deadline,
            "phoenix did not answer on :{http}; log: {}",
            std::fs::read_to_string(phoenix._dir.path().join("phoenix.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every span of a Phoenix project (paged).
fn project_spans(port: u16, project: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/projects/{project}/spans?limit=1000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let Ok((200, body)) = get(port, &path) else {
            return out; // the project does not exist yet
        };
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        out.extend(v["data"].as_array().cloned().unwrap_or_default());
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// Runs the binary against `sim` with traces to `endpoint`, into Phoenix project `project`.
/// Returns (results document, the ids in the requests log).
fn run(sim: &SimServer, endpoint: &str, protocol: &str, project: &str) -> (Value, HashSet<String>) {
    let out = tempfile::tempdir().unwrap();
    let run = common::benchmark()
        .args(["-u", &sim.url(), "-w", "0s", "-d", "2s", "--max-vus", "4"])
        .args([
            "--benchmark-kind",
            "throughput",
            "--no-console",
            "--no-report",
        ])
        .args(["--run-id", project, "--save-requests"])
        .args([
            "--prompt-options",
            "num_tokens=50,max_tokens=50,min_tokens=50,variance=0",
        ])
        .args([
            "--decode-options",
            "num_tokens=16,max_tokens=16,min_tokens=16,variance=0",
        ])
        .args(["--otlp-endpoint", endpoint, "--otlp-protocol", protocol])
        .arg("--output-dir")
        .arg(out.path())
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            format!("openinference.project.name={project}"),
        )
        .env_remove("OTEL_SERVICE_NAME")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains(" 0 dropped") && stderr.contains(" 0 failed"),
        "{stderr}"
    );
    let results = common::results_file(out.path());
    let doc = common::validated(&results);
    let log = std::fs::read_to_string(results.with_extension("requests.jsonl")).unwrap();
    let ids = log
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    (doc, ids)
}

/// Waits until Phoenix holds `want` spans in `project` (collector batches arrive late).
fn wait_for_spans(port: u16, project: &str, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let spans = project_spans(port, project);
        if spans.len() >= want || Instant::now() > deadline {
            return spans;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn check(phoenix: &Phoenix, sim: &SimServer, project: &str, doc: &Value, ids: &HashSet<String>) {
    let total = doc["results"][0]["total_requests"].as_u64().unwrap() as usize;
    assert!(total > 0);
    // Requests, one step, the run.
    let spans = wait_for_spans(phoenix.http, project, total + 2);
    let requests: Vec<&Value> = spans
        .iter()
        .filter(|s| s["attributes"]["gen_ai.operation.name"] == "chat")
        .collect();
    assert_eq!(requests.len(), total, "one span per request in {project}");
    assert_eq!(spans.len(), total + 2, "plus the step and run spans");
    let mut by_trace = HashMap::new();
    for s in &requests {
        let a = &s["attributes"];
        let model = a["gen_ai.request.model"].as_str().unwrap();
        assert_eq!(s["name"], format!("chat {model}"));
        assert_eq!(a["gen_ai.usage.output_tokens"], 16);
        assert_eq!(a["gen_ai.request.max_tokens"], 16);
        assert_eq!(a["http.response.status_code"], 200);
        assert_eq!(a["inference_benchmarker.run_id"], project);
        assert!(a["inference_benchmarker.ttft_ms"].as_f64().unwrap() > 0.0);
        assert!(s["parent_id"].is_null());
        assert_eq!(s["status_code"], "UNSET");
        let id = a["inference_benchmarker.request_id"].as_str().unwrap();
        assert!(ids.contains(id), "{id} is in --save-requests output");
        by_trace.insert(
            s["context"]["trace_id"].as_str().unwrap().to_string(),
            (
                s["context"]["span_id"].as_str().unwrap().to_string(),
                id.to_string(),
            ),
        );
    }
    let records: Vec<_> = sim
        .records()
        .into_iter()
        .filter(|r| r.endpoint.ends_with("/chat/completions"))
        .filter(|r| {
            r.traceparent
                .as_deref()
                .and_then(parse_traceparent)
                .is_some_and(|c| by_trace.contains_key(&sinks::otlp::context::hex(&c.trace_id)))
        })
        .collect();
    assert_eq!(
        records.len(),
        total,
        "the server saw every exported trace id"
    );
    for r in records {
        let ctx = parse_traceparent(r.traceparent.as_deref().unwrap()).unwrap();
        let (span, id) = &by_trace[&sinks::otlp::context::hex(&ctx.trace_id)];
        assert_eq!(span, &sinks::otlp::context::hex(&ctx.span_id));
        assert_eq!(r.request_id.as_deref(), Some(id.as_str()));
    }
}

#[test]
fn phoenix_stores_one_span_per_request_directly_and_through_rotel() {
    let Some((phoenix_bin, rotel_bin)) = tools() else {
        return;
    };
    let phoenix = start_phoenix(&phoenix_bin);
    let sim = SimServer::start(
        SimConfig {
            record: true,
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts");

    // Directly, HTTP/protobuf.
    let (doc, ids) = run(
        &sim,
        &format!("http://127.0.0.1:{}", phoenix.http),
        "http",
        "ib-direct",
    );
    check(&phoenix, &sim, "ib-direct", &doc, &ids);

    // Through rotel: gRPC in, OTLP/gRPC out to Phoenix.
    let rotel_grpc = free_port();
    let rotel = Guard(
        Command::new(&rotel_bin)
            .args(["start", "--otlp-grpc-endpoint"])
            .arg(format!("127.0.0.1:{rotel_grpc}"))
            .arg("--otlp-http-endpoint")
            .arg(format!("127.0.0.1:{}", free_port()))
            .args(["--exporter", "otlp", "--otlp-exporter-endpoint"])
            .arg(format!("http://127.0.0.1:{}", phoenix.grpc))
            .args(["--batch-timeout", "200ms"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rotel starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", rotel_grpc)).is_err() {
        assert!(Instant::now() < deadline, "rotel did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (doc, ids) = run(
        &sim,
        &format!("http://127.0.0.1:{rotel_grpc}"),
        "grpc",
        "ib-rotel",
    );
    check(&phoenix, &sim, "ib-rotel", &doc, &ids);
    drop(rotel);
    sim.stop();
}
