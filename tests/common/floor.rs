//! The machine's own timing floor, measured in the same run as the generator: a minimal client
//! (one blocking thread per request, a raw loopback socket, no HTTP library) that sends the same
//! kind of request to the same server and stamps when it starts writing and when each text chunk
//! arrives (a unary request: when its whole answer has). Its error against the server's record is what this machine allows; the
//! generator's error is judged relative to it, so a slow machine neither fails a correct build
//! nor passes a broken one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One request of the floor client: its id (sent as `x-request-id`) and the arrival of each text
/// chunk, in ms after the request started to be written (the generator's `chunk_offsets_ms`).
#[derive(Debug, Clone)]
pub struct FloorRequest {
    pub id: String,
    pub chunk_offsets_ms: Vec<f64>,
}

/// Sends `count` chat requests for `max_tokens` tokens to `addr`, one every `every`, each on its
/// own connection and thread, and returns them once all have ended (bounded by `timeout` each).
pub fn run(
    addr: SocketAddr,
    prefix: &str,
    count: usize,
    every: Duration,
    max_tokens: u32,
    timeout: Duration,
) -> Vec<FloorRequest> {
    let body = serde_json::json!({
        "model": "simulated",
        "messages": [{"role": "user", "content": "the machine floor of this run"}],
        "max_tokens": max_tokens,
        "ignore_eos": true,
        "stream": true,
    });
    paced(prefix, count, every, move |id, due| {
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let socket = connect(addr, timeout)?;
        let (mut socket, sent) = send(socket, addr, "/v1/chat/completions", &id, &body)?;
        let chunk_offsets_ms = stream(&mut socket, sent)?;
        Ok(FloorRequest {
            id,
            chunk_offsets_ms,
        })
    })
}

/// One request of the floor client to a unary endpoint (embeddings, rerank): its id and when
/// its whole answer had arrived, in ms after the request started to be written (the
/// generator's `e2e_ms`).
#[derive(Debug, Clone)]
pub struct FloorUnary {
    pub id: String,
    pub latency_ms: f64,
}

/// Sends `count` POSTs of `body` to `path` on `addr`, one every `every`, as [`run`] does, and
/// returns when each one's answer (status 200) had been read whole.
pub fn run_unary(
    addr: SocketAddr,
    prefix: &str,
    count: usize,
    every: Duration,
    path: &'static str,
    body: serde_json::Value,
    timeout: Duration,
) -> Vec<FloorUnary> {
    paced(prefix, count, every, move |id, due| {
        // Connected ahead, as the generator's pooled connections are: the server's accepting a
        // new connection is not part of the exchange measured.
        let socket = connect(addr, timeout)?;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let (mut socket, sent) = send(socket, addr, path, &id, &body)?;
        let latency_ms = whole_answer(&mut socket, sent)?;
        Ok(FloorUnary { id, latency_ms })
    })
}

/// `one(id, due)` for ids `{prefix}-{k}`, k < `count`, the k-th due at k × `every`, each on its
/// own thread; every result once all have ended (a failed request fails the test).
fn paced<T: Send + 'static>(
    prefix: &str,
    count: usize,
    every: Duration,
    one: impl Fn(String, Instant) -> std::io::Result<T> + Send + Sync + Clone + 'static,
) -> Vec<T> {
    let start = Instant::now();
    let handles: Vec<_> = (0..count)
        .map(|k| {
            let due = start + every * k as u32;
            let id = format!("{prefix}-{k}");
            let one = one.clone();
            std::thread::spawn(move || {
                one(id.clone(), due).unwrap_or_else(|e| panic!("floor request {id}: {e}"))
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("floor thread"))
        .collect()
}

fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let socket = TcpStream::connect(addr)?;
    socket.set_nodelay(true)?;
    socket.set_read_timeout(Some(timeout))?;
    Ok(socket)
}

/// Writes the POST; the socket and when writing started.
fn send(
    mut socket: TcpStream,
    addr: SocketAddr,
    path: &str,
    id: &str,
    body: &serde_json::Value,
) -> std::io::Result<(TcpStream, Instant)> {
    let body = body.to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         x-request-id: {id}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let sent = Instant::now();
    socket.write_all(request.as_bytes())?;
    Ok((socket, sent))
}

/// Reads an SSE answer to its `[DONE]`: the arrival of each text chunk, in ms after `sent`.
fn stream(socket: &mut TcpStream, sent: Instant) -> std::io::Result<Vec<f64>> {
    let mut chunk_offsets_ms = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = socket.read(&mut buf)?;
        let at = sent.elapsed().as_secs_f64() * 1000.0;
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        // Complete lines only; HTTP chunk-size lines are not `data:` lines and are passed over.
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let Some(data) = line.strip_prefix(b"data: ") else {
                continue;
            };
            if data.starts_with(b"[DONE]") {
                return Ok(chunk_offsets_ms);
            }
            let event: serde_json::Value = serde_json::from_slice(data)
                .map_err(|e| std::io::Error::other(format!("bad event: {e}")))?;
            let text = event["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or_default();
            if !text.is_empty() {
                chunk_offsets_ms.push(at);
            }
        }
    }
    Err(std::io::Error::other("the stream ended without [DONE]"))
}

/// Reads a 200 answer until its body is whole (by `Content-Length`, or the last chunk of a
/// chunked body): when that was, in ms after `sent`.
fn whole_answer(socket: &mut TcpStream, sent: Instant) -> std::io::Result<f64> {
    let mut got: Vec<u8> = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = socket.read(&mut buf)?;
        let at = sent.elapsed().as_secs_f64() * 1000.0;
        if n == 0 {
            return Err(std::io::Error::other(
                "the connection closed before the answer was whole",
            ));
        }
        got.extend_from_slice(&buf[..n]);
        let Some(head_end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") {
            return Err(std::io::Error::other(format!("answered {head}")));
        }
        let body = &got[head_end + 4..];
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        let whole = match length {
            Some(length) => body.len() >= length,
            None => body.ends_with(b"0\r\n\r\n"),
        };
        if whole {
            return Ok(at);
        }
    }
}
