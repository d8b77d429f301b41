//! The HTML report of recorded runs, opened in headless Chromium through chromedriver
//! (WebDriver over loopback HTTP): no console errors, every chart drawn, a screenshot saved
//! under the test's output folder. Also: a run writes the report, the Markdown summary and the
//! CSV beside its results; the server panels (the simulated server's vLLM `/metrics`) and the
//! slice panels (`--slice-duration`) are drawn for a run that has them, and absent for a run
//! without (`--no-server-metrics`).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The flags the environment asks for; `--user-data-dir` is added fresh per test.
const CHROMIUM_FLAGS: [&str; 7] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Charts the report must contain (ids of its `<svg class="chart">` elements).
const CHARTS: [&str; 8] = [
    "throughput-vs-rate",
    "ttft-vs-rate",
    "itl-vs-rate",
    "e2e-vs-rate",
    "latency-throughput",
    "ttft-cdf",
    "itl-cdf",
    "e2e-cdf",
];

/// Server panels a run against the simulated server always has (its `/metrics` has the queue,
/// the KV cache and the TTFT histogram); the prefix-cache panel may come between the last two.
const SERVER_CHARTS: [&str; 3] = [
    "server-requests-vs-rate",
    "server-kv-cache-vs-rate",
    "server-ttft-vs-rate",
];

/// Panels of a run with `--slice-duration` (the last two: the server's metrics per slice).
const SLICE_CHARTS: [&str; 5] = [
    "slices-ttft",
    "slices-itl",
    "slices-throughput",
    "slices-server-queue",
    "slices-server-kv-cache",
];

fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// The browser and its driver, or None after [`common::missing`].
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = find("chromium").or_else(|| find("chromium-browser"));
    let driver = find("chromedriver");
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            common::missing(
                "report_in_chromium",
                "chromium and chromedriver are not installed (Debian packages chromium, chromium-driver)",
            );
            None
        }
    }
}

/// A demo run with `--csv` (and `extra`): the results and everything written beside them.
fn recorded_run(dir: &Path, run_id: &str, extra: &[&str]) -> PathBuf {
    let run = common::binary()
        .args(extra)
        .args([
            "--demo",
            "-w",
            "1s",
            "-d",
            "2s",
            "--num-rates",
            "2",
            "--csv",
            "--run-id",
            run_id,
            "--output-dir",
        ])
        .arg(dir)
        .output()
        .expect("the binary runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    common::results_file(dir)
}

// --- a minimal HTTP/1.1 client for chromedriver on 127.0.0.1 ---

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("chromedriver listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let raw = read_response(&mut stream);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
}

/// Reads one response: chromedriver keeps the connection open, so stop at Content-Length (or
/// the last chunk) instead of waiting for the peer to close.
fn read_response(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = stream.read(&mut buf).expect("a response from chromedriver");
        if n == 0 {
            return raw;
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let head = head.to_ascii_lowercase();
        let length = head.lines().find_map(|l| {
            l.strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
        match length {
            Some(len) if body.len() >= len => return raw,
            None if body.ends_with("0\r\n\r\n") => return raw,
            _ => {}
        }
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(path: &Path) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    driver
}

/// Loads `html` in Chromium: (console messages of level SEVERE, per-chart drawn element counts
/// and sizes); saves a screenshot to `screenshot`.
fn load_in_chromium(html: &Path, screenshot: &Path, profile: &Path) -> (Vec<String>, Value) {
    let Some((chromium, chromedriver)) = browser() else {
        return (Vec::new(), Value::Null);
    };
    let driver = start_driver(&chromedriver);
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push("--window-size=1400,5000".into());
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": chromium, "args": args},
        "goog:loggingPrefs": {"browser": "ALL"}
    }}});
    let session = http(driver.port, "POST", "/session", Some(&caps));
    let id = session["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {session}"))
        .to_string();
    let url = format!("file://{}", html.canonicalize().unwrap().display());
    http(
        driver.port,
        "POST",
        &format!("/session/{id}/url"),
        Some(&json!({ "url": url })),
    );
    // `legend_cut`: legend labels that run past the chart's right edge or into another label.
    let script = "return Array.from(document.querySelectorAll('svg.chart')).map(s => {\
        const b = s.getBoundingClientRect();\
        const w = s.viewBox.baseVal.width;\
        const ls = Array.from(s.querySelectorAll('text.legend')).map(t => t.getBBox());\
        const meet = (p, q) => p.x < q.x + q.width && q.x < p.x + p.width && p.y < q.y + q.height && q.y < p.y + p.height;\
        const cut = ls.filter((p, i) => p.x + p.width > w || ls.some((q, j) => j !== i && meet(p, q))).length;\
        return {id: s.id, lines: s.querySelectorAll('path.series').length,\
                dots: s.querySelectorAll('circle').length, width: b.width, height: b.height,\
                legend_cut: cut,\
                drawn: Array.from(s.querySelectorAll('path.series')).filter(p => p.getTotalLength() > 0).length};\
      })";
    let charts = http(
        driver.port,
        "POST",
        &format!("/session/{id}/execute/sync"),
        Some(&json!({"script": script, "args": []})),
    )["value"]
        .clone();
    let logs = http(
        driver.port,
        "POST",
        &format!("/session/{id}/se/log"),
        Some(&json!({"type": "browser"})),
    );
    let errors = logs["value"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["level"] == "SEVERE")
                .map(|e| e["message"].to_string())
                .collect()
        })
        .unwrap_or_else(|| vec![format!("cannot read the console: {logs}")]);
    let shot = http(
        driver.port,
        "GET",
        &format!("/session/{id}/screenshot"),
        None,
    );
    let png = base64_decode(shot["value"].as_str().expect("a screenshot"));
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(screenshot, png).unwrap();
    http(driver.port, "DELETE", &format!("/session/{id}"), None);
    (errors, charts)
}

/// The test's output folder: kept after the test, for people to look at.
fn output_folder() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn report_renders_in_chromium_with_every_chart() {
    let dir = tempfile::tempdir().unwrap();
    // The first with server metrics (the default: the sim serves vLLM's /metrics) and slices,
    // the second without either.
    let first = recorded_run(&dir.path().join("a"), "first", &["--slice-duration", "1s"]);
    let second = recorded_run(&dir.path().join("b"), "second", &["--no-server-metrics"]);
    let has_metrics = |p: &Path| {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        let steps = doc["results"].as_array().unwrap().clone();
        (
            steps.iter().all(|s| s["server_metrics"].is_object()),
            steps.iter().all(|s| s["server_metrics"].is_null()),
            doc["slices"].as_array().map_or(0, Vec::len),
        )
    };
    let (all, _, slices) = has_metrics(&first);
    assert!(
        all && slices > 0,
        "the first run has server metrics and slices"
    );
    let (_, none, slices) = has_metrics(&second);
    assert!(none && slices == 0, "the second has neither");

    // The run wrote its outputs beside the results.
    for ext in ["html", "md", "csv"] {
        assert!(
            first.with_extension(ext).is_file(),
            "{ext} beside {}",
            first.display()
        );
    }
    let md = std::fs::read_to_string(first.with_extension("md")).unwrap();
    assert!(
        md.contains("| Benchmark") && md.contains("throughput"),
        "{md}"
    );
    let csv = std::fs::read_to_string(first.with_extension("csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 3, "header + one row per step: {csv}");
    assert!(lines[0].contains("time_to_first_token_ms.p99"));
    assert!(lines[0].starts_with("step,id,kind,"), "{}", lines[0]);
    assert!(!lines[0].contains("histograms"));

    // Two runs overlaid by the report command.
    let out = output_folder();
    let html = out.join("report.html");
    let run = common::binary()
        .arg("report")
        .arg(&first)
        .arg(&second)
        .arg("-o")
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&html).unwrap();
    for needle in ["<script src", "<link ", "@import", "url("] {
        assert!(!text.contains(needle), "self-contained: found {needle}");
    }
    for chart in CHARTS.iter().chain(&SERVER_CHARTS).chain(&SLICE_CHARTS) {
        assert!(text.contains(&format!("id=\"{chart}\"")), "{chart}");
    }
    assert!(
        text.contains("id=\"server-ttft-note\""),
        "the TTFT rule is stated"
    );
    // The second run's own report, written at its end: as before server metrics existed.
    let plain = second.with_extension("html");
    let plain_text = std::fs::read_to_string(&plain).unwrap();
    for absent in ["id=\"server-", "id=\"slices-", "Server metrics"] {
        assert!(
            !plain_text.contains(absent),
            "{absent} without server metrics"
        );
    }

    let profile = tempfile::tempdir().unwrap();
    let shot = out.join("report.png");
    let (errors, charts) = load_in_chromium(&html, &shot, profile.path());
    if charts.is_null() {
        return; // skipped: no browser
    }
    assert_eq!(errors, Vec::<String>::new(), "console errors");
    let charts = charts.as_array().expect("chart list");
    let ids: Vec<&str> = charts.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids[..CHARTS.len()], CHARTS, "every chart, in order");
    let extra: Vec<&str> = ids[CHARTS.len()..]
        .iter()
        .copied()
        .filter(|id| *id != "server-prefix-cache-vs-rate")
        .collect();
    let expected: Vec<&str> = SERVER_CHARTS.iter().chain(&SLICE_CHARTS).copied().collect();
    assert_eq!(extra, expected, "the server and slice panels, in order");
    for c in charts {
        assert_eq!(
            c["legend_cut"], 0,
            "every legend label whole and apart: {c}"
        );
        assert!(c["width"].as_f64().unwrap() > 100.0, "{c}");
        assert!(c["height"].as_f64().unwrap() > 100.0, "{c}");
        let id = c["id"].as_str().unwrap();
        // The server and slice panels: only the first run has their data.
        let runs = if CHARTS.contains(&id) { 2 } else { 1 };
        assert!(
            c["drawn"].as_u64().unwrap() >= runs,
            "{runs} run(s) drawn: {c}"
        );
    }
    eprintln!("screenshot: {}", shot.display());

    // Without server metrics: the report's charts are exactly the ones it always had.
    let profile = tempfile::tempdir().unwrap();
    let (errors, charts) = load_in_chromium(&plain, &out.join("report-plain.png"), profile.path());
    assert_eq!(errors, Vec::<String>::new(), "console errors");
    let ids: Vec<&str> = charts
        .as_array()
        .expect("chart list")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, CHARTS, "no server panel without server metrics");
}
