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
    let mut child = common::binary()
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
        .args(["--prometheus-listen", &format!("127.0.0.1:{metrics_port}")])
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

    let mut outputs = vec![
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
