//! Socket tests: a real `SimServer` on 127.0.0.1 and a tiny blocking HTTP/1.1 client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{SimConfig, SimServer};

/// Every socket operation of a test gives up after this.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Timing-sensitive tests take this so that they do not load the CPU under each other.
static TIMING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }

    /// The SSE payloads (`data: X` → X), in order.
    fn events(&self) -> Vec<String> {
        self.body
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| e.strip_prefix("data: ").expect("data event").to_string())
            .collect()
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

fn send_request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
}

/// One request over a fresh connection, read to EOF.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut stream = connect(addr);
    send_request(&mut stream, method, path, headers, body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

fn post(addr: SocketAddr, path: &str, body: Value) -> Response {
    request(addr, "POST", path, &[], &body.to_string())
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status: status.parse().unwrap(),
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").expect("size");
        let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A fast engine so that tests finish quickly.
fn fast_engine() -> SimConfig {
    SimConfig {
        decode_step_ms: 1.0,
        decode_us_per_seq: 0.0,
        prefill_us_per_token: 0.0,
        record: true,
        ..SimConfig::default()
    }
}

fn chat_body(max_tokens: u32, stream: bool) -> Value {
    json!({
        "model": "simulated",
        "messages": [{"role": "user", "content": "Tell me about the weather today."}],
        "max_tokens": max_tokens,
        "ignore_eos": true,
        "stream": stream,
        "stream_options": {"include_usage": true},
    })
}

/// Polls `check` until it holds or the time is up.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + IO_TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn streaming_chat_like_vllm() {
    let server = SimServer::start(fast_engine(), None).unwrap();
    assert_eq!(server.url(), format!("http://{}", server.addr()));
    let body = chat_body(5, true).to_string();
    let headers = [("x-request-id", "req-42"), ("traceparent", "00-abc-def-01")];
    let resp = request(
        server.addr(),
        "POST",
        "/v1/chat/completions",
        &headers,
        &body,
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    assert_eq!(resp.header("x-request-id"), Some("req-42"));

    let events = resp.events();
    assert_eq!(events.len(), 1 + 5 + 1 + 1, "{events:?}");
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..7]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    for chunk in &chunks {
        assert_eq!(chunk["id"], "chatcmpl-req-42");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "simulated");
        assert_eq!(chunk["created"], chunks[0]["created"]);
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    for (i, chunk) in chunks[1..6].iter().enumerate() {
        let choice = &chunk["choices"][0];
        assert!(choice["delta"]["content"]
            .as_str()
            .unwrap()
            .starts_with(' '));
        let finish = if i == 4 { json!("length") } else { Value::Null };
        assert_eq!(choice["finish_reason"], finish);
    }
    assert_eq!(chunks[6]["choices"], json!([]));
    let usage = &chunks[6]["usage"];
    assert_eq!(usage["completion_tokens"], 5);
    assert_eq!(usage["prompt_tokens"], 8); // 32 bytes of content / 4
    assert_eq!(usage["total_tokens"], 13);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);

    let records = server.records();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.request_id.as_deref(), Some("req-42"));
    assert_eq!(r.traceparent.as_deref(), Some("00-abc-def-01"));
    assert_eq!(r.endpoint, "/v1/chat/completions");
    assert!(r.stream);
    assert_eq!(
        (r.status, r.prompt_tokens, r.completion_tokens),
        (200, 8, 5)
    );
    assert_eq!(r.token_offsets_us.len(), 5);
    assert!(r.token_offsets_us.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(r.ttft_us, Some(r.token_offsets_us[0]));
    assert!(r.end_us.unwrap() >= r.token_offsets_us[4]);
    let stats = server.stats();
    assert_eq!(
        (stats.received, stats.completed, stats.tokens_sent),
        (1, 1, 5)
    );
    server.stop();
}

#[test]
fn streaming_completions_without_usage() {
    let server = SimServer::start(fast_engine(), None).unwrap();
    let resp = post(
        server.addr(),
        "/v1/completions",
        json!({"prompt": "Once upon a time", "max_tokens": 3, "ignore_eos": true, "stream": true}),
    );
    assert_eq!(resp.status, 200);
    let events = resp.events();
    assert_eq!(events.len(), 4, "{events:?}");
    for event in &events[..3] {
        let chunk: Value = serde_json::from_str(event).unwrap();
        assert!(chunk["id"].as_str().unwrap().starts_with("cmpl-"));
        assert_eq!(chunk["object"], "text_completion");
        assert!(chunk["choices"][0]["text"].is_string());
    }
    assert_eq!(events[3], "[DONE]");
}

#[test]
fn non_streaming_responses() {
    let server = SimServer::start(fast_engine(), None).unwrap();
    let chat = post(server.addr(), "/v1/chat/completions", chat_body(4, false));
    assert_eq!(chat.status, 200);
    assert!(chat
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let body = chat.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 4);
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(text.matches(' ').count(), 4);

    let completion = post(
        server.addr(),
        "/v1/completions",
        json!({"prompt": [1, 2, 3, 4, 5, 6], "max_tokens": 2, "ignore_eos": true}),
    );
    let body = completion.json();
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["usage"]["prompt_tokens"], 6);
    assert_eq!(body["usage"]["completion_tokens"], 2);

    let records = server.records();
    assert_eq!(records.len(), 2);
    assert!(!records[0].stream);
    assert_eq!(records[0].token_offsets_us.len(), 4);
}

#[test]
fn fixed_timing_offsets_follow_ttft_and_itl() {
    let _serial = TIMING.lock();
    let cfg = SimConfig {
        fixed_ttft_ms: Some(30.0),
        fixed_itl_ms: Some(20.0),
        record: true,
        ..SimConfig::default()
    };
    let server = SimServer::start(cfg, None).unwrap();
    let resp = post(server.addr(), "/v1/chat/completions", chat_body(8, true));
    assert_eq!(resp.status, 200);
    let records = server.records();
    let offsets = &records[0].token_offsets_us;
    assert_eq!(offsets.len(), 8);
    assert_eq!(records[0].ttft_us, Some(offsets[0]));
    // Token k is due at TTFT + k·ITL (absolute): never early, and lateness does not add up.
    // Bounds leave room for tokio's 1 ms timer tick and a busy 2-core machine (8.6 ms late seen
    // while other builds ran).
    for (k, &offset) in offsets.iter().enumerate() {
        let due = 30_000 + 20_000 * k as u32;
        assert!(
            (due..due + 15_000).contains(&offset),
            "token {k} at {offset} µs, due {due} µs: {offsets:?}"
        );
    }
    let mut gaps: Vec<u32> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    assert!((18_000..=22_000).contains(&median), "gaps {gaps:?}");
}

/// Random timing on a real server: TTFT drawn per request, ITL per gap, within their ranges.
#[test]
fn random_timing_draws_ttft_per_request_and_itl_per_gap() {
    let _serial = TIMING.lock();
    let cfg = SimConfig {
        random_ttft_ms: Some(super::config::MsRange {
            min: 20.0,
            max: 60.0,
        }),
        random_itl_ms: Some(super::config::MsRange {
            min: 2.0,
            max: 12.0,
        }),
        record: true,
        ..SimConfig::default()
    };
    let server = SimServer::start(cfg, None).unwrap();
    for _ in 0..6 {
        let resp = post(server.addr(), "/v1/chat/completions", chat_body(10, true));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.events().len(), 1 + 10 + 1 + 1);
    }
    let records = server.records();
    server.stop();
    assert_eq!(records.len(), 6);
    // Bounds leave room for tokio's 1 ms timer tick and a busy 2-core machine (8.6 ms late seen
    // while other builds ran).(as above).
    let slack = 5_000;
    let mut ttfts = Vec::new();
    let mut gaps = Vec::new();
    for r in &records {
        let offsets = &r.token_offsets_us;
        assert_eq!(offsets.len(), 10);
        assert!(
            (20_000..60_000 + slack).contains(&offsets[0]),
            "TTFT {} µs",
            offsets[0]
        );
        // Due times are absolute: the last token is never later than TTFT + 9 gaps at most.
        assert!(offsets[9] < 60_000 + 9 * 12_000 + slack, "{offsets:?}");
        assert!(offsets[9] >= 20_000 + 9 * 2_000, "{offsets:?}");
        ttfts.push(offsets[0]);
        gaps.extend(offsets.windows(2).map(|w| w[1] - w[0]));
    }
    ttfts.sort_unstable();
    ttfts.dedup_by(|a, b| a.abs_diff(*b) < 500);
    assert!(ttfts.len() >= 3, "TTFT is drawn per request: {ttfts:?}");
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    assert!((3_000..=11_000).contains(&median), "gaps {gaps:?}");
    let (low, high) = (gaps[gaps.len() / 10], gaps[gaps.len() * 9 / 10]);
    assert!(high - low >= 4_000, "ITL is drawn per gap: {gaps:?}");
}

/// The schedule behind it: reproducible from the seed, absolute, each draw within its range.
#[test]
fn random_schedule_follows_the_seed() {
    use super::config::{DurationRange, FixedTiming, RandomTiming};
    use super::server::TokenSchedule;
    use rand::SeedableRng;

    let timing = RandomTiming {
        ttft: DurationRange {
            min: Duration::from_millis(20),
            max: Duration::from_millis(60),
        },
        itl: DurationRange {
            min: Duration::from_millis(2),
            max: Duration::from_millis(12),
        },
    };
    let t0 = Instant::now();
    let dues = |seed: u64| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..3)
            .map(|_| {
                let mut schedule = TokenSchedule::random(timing, &mut rng, t0);
                (0..50)
                    .map(|k| schedule.due(k).unwrap() - t0)
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let requests = dues(7);
    assert_eq!(requests, dues(7), "same seed, same schedule");
    assert_ne!(requests, dues(8));
    assert_ne!(requests[0], requests[1], "each request draws its own");
    for dues in &requests {
        assert!((timing.ttft.min..=timing.ttft.max).contains(&dues[0]));
        let gaps: Vec<Duration> = dues.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps
            .iter()
            .all(|g| (timing.itl.min..=timing.itl.max).contains(g)));
        assert!(gaps.iter().any(|&g| g != gaps[0]), "{gaps:?}");
    }

    // Fixed timing through the same schedule: first + k × ITL.
    let fixed = FixedTiming {
        ttft: Duration::from_millis(30),
        itl: Duration::from_millis(6),
    };
    let mut schedule = TokenSchedule::fixed(fixed, t0);
    assert_eq!(schedule.due(0), Some(t0 + Duration::from_millis(30)));
    assert_eq!(schedule.due(4), Some(t0 + Duration::from_millis(54)));
}

/// `--record-file`: records kept without `--record`, written as JSON Lines when the server
/// stops (stop, drop), atomically; a failure to write is an error of `close`.
#[test]
fn record_file_is_written_when_the_server_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.jsonl");
    let cfg = SimConfig {
        random_ttft_ms: Some(super::config::MsRange { min: 0.0, max: 1.0 }),
        random_itl_ms: Some(super::config::MsRange { min: 0.0, max: 1.0 }),
        record_file: Some(path.clone()),
        ..SimConfig::default()
    };
    let server = SimServer::start(cfg.clone(), None).unwrap();
    let body = chat_body(4, true).to_string();
    let resp = request(
        server.addr(),
        "POST",
        "/v1/chat/completions",
        &[("x-request-id", "run-1-0")],
        &body,
    );
    assert_eq!(resp.status, 200);
    let unknown = json!({"model": "other", "prompt": "x", "max_tokens": 1}).to_string();
    let resp = request(
        server.addr(),
        "POST",
        "/v1/completions",
        &[("x-request-id", "run-1-1")],
        &unknown,
    );
    assert_eq!(resp.status, 404);
    assert_eq!(server.records().len(), 2, "kept without --record");
    assert!(!path.exists(), "written only when the server stops");
    server.stop();

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    let ok = lines.iter().find(|l| l["request_id"] == "run-1-0").unwrap();
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["token_offsets_us"].as_array().unwrap().len(), 4);
    assert_eq!(ok["ttft_us"], ok["token_offsets_us"][0]);
    assert!(ok["received_at_unix_nanos"].as_u64().unwrap() > 1_600_000_000_000_000_000);
    let missing = lines.iter().find(|l| l["request_id"] == "run-1-1").unwrap();
    assert_eq!(missing["status"], 404);
    assert!(!dir.path().join("records.jsonl.tmp").exists());

    // Dropped without a request: the file is rewritten, empty.
    let server = SimServer::start(cfg.clone(), None).unwrap();
    drop(server);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");

    // A place that cannot be written: `close` says so.
    let unwritable = SimConfig {
        record_file: Some(dir.path().join("missing-dir").join("records.jsonl")),
        ..cfg
    };
    let server = SimServer::start(unwritable, None).unwrap();
    let err = server.close().unwrap_err();
    assert!(err.to_string().contains("missing-dir"), "{err}");
}

#[test]
fn models_health_and_unknown_routes() {
    let cfg = SimConfig {
        model_name: "org/tiny".into(),
        ..fast_engine()
    };
    let server = SimServer::start(cfg, None).unwrap();
    let models = request(server.addr(), "GET", "/v1/models", &[], "");
    assert_eq!(models.status, 200);
    let body = models.json();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "org/tiny");
    assert_eq!(body["data"][0]["object"], "model");

    assert_eq!(
        request(server.addr(), "GET", "/health", &[], "").status,
        200
    );
    let missing = request(server.addr(), "GET", "/nope", &[], "");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], 404);
    // Not a completion request: not counted.
    assert_eq!(server.stats().received, 0);
}

#[test]
fn errors_as_openai_json() {
    let server = SimServer::start(fast_engine(), None).unwrap();
    let headers = [("x-request-id", "bad-1")];
    let bad = request(
        server.addr(),
        "POST",
        "/v1/chat/completions",
        &headers,
        "{not json",
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.header("x-request-id"), Some("bad-1"));
    let error = &bad.json()["error"];
    assert_eq!(error["code"], 400);
    assert_eq!(error["type"], "BadRequestError");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("Invalid request"));

    let mut body = chat_body(4, true);
    body["model"] = json!("gpt-17");
    let wrong = post(server.addr(), "/v1/chat/completions", body);
    assert_eq!(wrong.status, 404);
    assert_eq!(wrong.json()["error"]["type"], "NotFoundError");

    let too_long = post(
        server.addr(),
        "/v1/completions",
        json!({"prompt": "x", "max_tokens": 1_000_000}),
    );
    assert_eq!(too_long.status, 400);

    let stats = server.stats();
    assert_eq!(stats.received, 3);
    assert_eq!(stats.completed, 0);
    assert_eq!(stats.by_status.get(&400), Some(&2));
    assert_eq!(stats.by_status.get(&404), Some(&1));
    let records = server.records();
    assert_eq!(records[0].status, 400);
    assert_eq!(records[0].request_id.as_deref(), Some("bad-1"));
}

#[test]
fn requests_beyond_slots_queue() {
    let _serial = TIMING.lock();
    let cfg = SimConfig {
        slots: 8,
        decode_step_ms: 5.0,
        decode_us_per_seq: 0.0,
        prefill_us_per_token: 0.0,
        record: true,
        ..SimConfig::default()
    };
    let server = SimServer::start(cfg, None).unwrap();
    let addr = server.addr();
    let start = Arc::new(Barrier::new(40));
    let clients: Vec<_> = (0..40)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                post(addr, "/v1/chat/completions", chat_body(10, true)).status
            })
        })
        .collect();
    for client in clients {
        assert_eq!(client.join().unwrap(), 200);
    }
    let mut records = server.records();
    assert_eq!(records.len(), 40);
    records.sort_by_key(|r| r.ttft_us);
    let ttfts: Vec<u32> = records.iter().map(|r| r.ttft_us.unwrap()).collect();
    // Five waves of 8: each wave waits for the previous one's 10 steps of 5 ms.
    assert!(ttfts[7] < 40_000, "{ttfts:?}");
    assert!(ttfts[39] > 150_000, "{ttfts:?}");
    let first_wave = ttfts[..8].iter().sum::<u32>() / 8;
    let last_wave = ttfts[32..].iter().sum::<u32>() / 8;
    assert!(last_wave > first_wave + 100_000, "{ttfts:?}");
    assert_eq!(server.stats().completed, 40);
}

#[test]
fn full_queue_answers_503() {
    let cfg = SimConfig {
        slots: 1,
        max_queue: 1,
        decode_step_ms: 5.0,
        ..fast_engine()
    };
    let server = SimServer::start(cfg, None).unwrap();
    let addr = server.addr();
    // One running (2 s of tokens), one waiting: the queue is full.
    let mut running = connect(addr);
    send_request(
        &mut running,
        "POST",
        "/v1/completions",
        &[],
        r#"{"prompt":"a","max_tokens":400,"ignore_eos":true,"stream":true}"#,
    );
    eventually("the first request running", || {
        server.stats().tokens_sent > 0
    });
    let mut waiting = connect(addr);
    send_request(
        &mut waiting,
        "POST",
        "/v1/completions",
        &[],
        r#"{"prompt":"b","max_tokens":1,"stream":true}"#,
    );
    eventually("the second request queued", || server.stats().received == 2);
    let rejected = post(
        addr,
        "/v1/completions",
        json!({"prompt": "c", "max_tokens": 1}),
    );
    assert_eq!(rejected.status, 503);
    assert_eq!(rejected.json()["error"]["code"], 503);
    drop((running, waiting));
}

#[test]
fn client_gone_mid_stream_is_accounted_and_frees_its_slot() {
    let cfg = SimConfig {
        slots: 1,
        decode_step_ms: 2.0,
        ..fast_engine()
    };
    let server = SimServer::start(cfg, None).unwrap();
    let mut stream = connect(server.addr());
    send_request(
        &mut stream,
        "POST",
        "/v1/completions",
        &[],
        r#"{"prompt":"a","max_tokens":30000,"ignore_eos":true,"stream":true}"#,
    );
    eventually("tokens flowing", || server.stats().tokens_sent >= 3);
    drop(stream);
    eventually("the request accounted", || {
        server.stats().by_status.get(&200) == Some(&1)
    });
    let stats = server.stats();
    assert_eq!(stats.completed, 0);
    let record = &server.records()[0];
    assert_eq!(record.end_us, None);
    assert!(record.completion_tokens >= 3);
    // The only slot is free again: a new request completes.
    let resp = post(server.addr(), "/v1/chat/completions", chat_body(2, false));
    assert_eq!(resp.status, 200);
}

#[test]
fn prefix_cache_shows_in_usage() {
    let server = SimServer::start(fast_engine(), None).unwrap();
    let prompt = "You are a careful assistant. ".repeat(20);
    let body = json!({"prompt": prompt, "max_tokens": 1, "stream": true,
                      "stream_options": {"include_usage": true}});
    let usage_of = |resp: Response| -> Value {
        let events = resp.events();
        let usage: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
        usage["usage"].clone()
    };
    let cold = usage_of(post(server.addr(), "/v1/completions", body.clone()));
    let warm = usage_of(post(server.addr(), "/v1/completions", body));
    assert_eq!(cold["prompt_tokens_details"]["cached_tokens"], 0);
    let cached = warm["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    let prompt_tokens = warm["prompt_tokens"].as_u64().unwrap();
    assert!(
        cached > prompt_tokens / 2 && cached < prompt_tokens,
        "{warm}"
    );
}

#[test]
fn tokenizer_counts_prompt_tokens() {
    use std::collections::HashMap;
    use tokenizers::models::wordlevel::WordLevel;
    use tokenizers::pre_tokenizers::whitespace::Whitespace;
    use tokenizers::Tokenizer;

    let vocab: HashMap<String, u32> = [("[UNK]", 0), ("hello", 1), ("world", 2)]
        .into_iter()
        .map(|(w, id)| (w.to_string(), id))
        .collect();
    let model = WordLevel::builder()
        .vocab(vocab.into_iter().collect())
        .unk_token("[UNK]".into())
        .build()
        .unwrap();
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(Whitespace {}));
    let server = SimServer::start(fast_engine(), Some(Arc::new(tokenizer))).unwrap();
    let resp = post(
        server.addr(),
        "/v1/chat/completions",
        json!({"messages": [{"role": "system", "content": "hello world"},
                            {"role": "user", "content": "hello hello unknown"}],
               "max_tokens": 1}),
    );
    assert_eq!(resp.json()["usage"]["prompt_tokens"], 5);
}

#[test]
fn stop_and_drop_are_clean() {
    let server = SimServer::start(fast_engine(), None).unwrap();
    let addr = server.addr();
    server.stop();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    let server = SimServer::start(fast_engine(), None).unwrap();
    drop(server);

    let invalid = SimConfig {
        slots: 0,
        ..SimConfig::default()
    };
    let err = SimServer::start(invalid, None).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

mod metrics;
mod reasoning;
