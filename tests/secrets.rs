//! A planted API key and HF token appear in no output: results, requests log, reports, logs at
//! trace level, console output, metrics exposition.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use inference_benchmarker::sim::{SimConfig, SimServer};

const API_KEY: &str = "sk-planted-SECRET-4242";
const HF_TOKEN: &str = "hf_planted_TOKEN_4343";

/// A loopback OTLP/HTTP receiver that keeps every exported body (protobuf keeps strings as
/// they are, so a leaked secret would show in the raw bytes).
fn otlp_receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let keep = keep.clone();
            std::thread::spawn(move || {
                let reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                while let Some(body) = read_request(&mut conn) {
                    keep.lock().unwrap().extend_from_slice(&body);
                    if conn.write_all(reply).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, got)
}

/// One HTTP/1.1 request with a content-length body; its raw bytes.
fn read_request(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).ok()?;
    buf.extend_from_slice(&body);
    Some(buf)
}

fn scrape(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("/metrics is served");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

#[test]
fn secrets_appear_in_no_output() {
    let sim = SimServer::start(SimConfig::default(), None).unwrap();
    let out = tempfile::tempdir().unwrap();
    let metrics_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (otlp_port, spans) = otlp_receiver();
    let mut child = common::benchmark()
        .args([
            "-u",
            &sim.url(),
            "-w",
            "1s",
            "-d",
            "1s",
            "-b",
            "rate",
            "-r",
            "5",
            "-n",
        ])
        .args([
            "--api-key",
            API_KEY,
            "--save-requests",
            "--extra-meta",
            "team=bench",
        ])
        .args([
            "--decode-options",
            "num_tokens=16,min_tokens=16,max_tokens=16",
        ])
        .args(["--prometheus-listen", &format!("127.0.0.1:{metrics_port}")])
        .args(["--otlp-endpoint", &format!("http://127.0.0.1:{otlp_port}")])
        .args(["--prometheus-linger", "4s", "--output-dir"])
        .arg(out.path())
        .env("HF_TOKEN", HF_TOKEN)
        // Everything at trace level, our crates and the HTTP stack included; only the
        // tokenizer's per-character normalizer traces are off (millions of lines of prompt text).
        .env("RUST_LOG", "trace,tokenizers=off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes while the run goes on: trace-level logs would fill them and block it.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = r.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    // Scrape once the results are complete (the process lingers for the last scrape).
    let deadline = Instant::now() + Duration::from_secs(60);
    let exposition = loop {
        assert!(Instant::now() < deadline, "the run never completed");
        let done = std::fs::read_dir(out.path())
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
            .any(|t| {
                t.contains("\"status\":\"completed\"") || t.contains("\"status\": \"completed\"")
            });
        if done {
            break scrape(metrics_port);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = child.wait().unwrap();
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    sim.stop();
    assert!(status.success(), "{stderr}");
    assert!(
        exposition.contains("inference_benchmarker_requests_total"),
        "{exposition}"
    );
    assert!(stderr.len() > 1000, "trace-level logs were produced");

    let exported = String::from_utf8_lossy(&spans.lock().unwrap()).into_owned();
    assert!(
        exported.contains("gen_ai.usage.output_tokens"),
        "spans were exported"
    );
    let mut outputs = vec![
        ("exported spans".to_string(), exported),
        ("stdout".to_string(), stdout),
        ("stderr".to_string(), stderr),
        ("metrics".to_string(), exposition),
    ];
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        outputs.push((
            path.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    assert!(outputs.iter().any(|(p, _)| p.ends_with(".requests.jsonl")));
    for (name, text) in &outputs {
        for secret in [API_KEY, HF_TOKEN, "planted"] {
            assert!(!text.contains(secret), "{secret} leaked into {name}");
        }
    }
}
