//! The machine's own timing floor, measured in the same run as the generator: a minimal client
//! (one blocking thread per request, a raw loopback socket, no HTTP library) that sends the same
//! kind of streaming request to the same server and stamps when it starts writing and when each
//! text chunk arrives. Its error against the server's record is what this machine allows; the
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
    let start = Instant::now();
    let handles: Vec<_> = (0..count)
        .map(|k| {
            let due = start + every * k as u32;
            let id = format!("{prefix}-{k}");
            std::thread::spawn(move || {
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                one(addr, &id, max_tokens, timeout)
                    .unwrap_or_else(|e| panic!("floor request {id}: {e}"))
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("floor thread"))
        .collect()
}

fn one(
    addr: SocketAddr,
    id: &str,
    max_tokens: u32,
    timeout: Duration,
) -> std::io::Result<FloorRequest> {
    let body = serde_json::json!({
        "model": "simulated",
        "messages": [{"role": "user", "content": "the machine floor of this run"}],
        "max_tokens": max_tokens,
        "ignore_eos": true,
        "stream": true,
    })
    .to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         x-request-id: {id}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut socket = TcpStream::connect(addr)?;
    socket.set_nodelay(true)?;
    socket.set_read_timeout(Some(timeout))?;
    let sent = Instant::now();
    socket.write_all(request.as_bytes())?;
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
                return Ok(FloorRequest {
                    id: id.to_string(),
                    chunk_offsets_ms,
                });
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
