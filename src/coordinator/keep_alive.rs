//! Does the server keep a connection open after a streamed response?
//!
//! Some servers advertise keep-alive but close the connection right after each streamed
//! response (llama.cpp's `llama-server` does). A client that reuses the connection at once — a
//! closed-loop user sends its next request immediately — then races the server's FIN and loses
//! requests that never reached the server. The pre-flight sends one tiny streaming request on
//! a raw connection, reads it to the end and watches whether the server closes the connection;
//! if it does, every request of the run opens its own connection.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long after a response the server gets to close the connection.
const CLOSE_WAIT: Duration = Duration::from_millis(200);
/// The whole probe's limit.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The end of a chunked body.
const CHUNKED_END: &[u8] = b"\r\n0\r\n\r\n";

/// `Some(false)`: the server closed the connection after a complete streamed response;
/// `Some(true)`: it kept it open; `None`: no answer (https, an error status, a timeout) — keep
/// the default.
/// `request_id` goes out as `x-request-id`, so the probe is recognisable in server logs.
pub async fn probe(
    url: &str,
    authorization: Option<&str>,
    request_id: &str,
    body: &[u8],
) -> Option<bool> {
    let target = url.strip_prefix("http://")?;
    let (authority, path) = match target.find('/') {
        Some(i) => (&target[..i], &target[i..]),
        None => (target, "/"),
    };
    let exchange = exchange(authority, path, authorization, request_id, body);
    tokio::time::timeout(PROBE_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
}

async fn exchange(
    authority: &str,
    path: &str,
    auth: Option<&str>,
    request_id: &str,
    body: &[u8],
) -> Option<bool> {
    let mut stream = TcpStream::connect(authority).await.ok()?;
    let auth = auth
        .map(|a| format!("authorization: {a}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nx-request-id: {request_id}\r\n\
         x-inference-benchmarker-probe: keep-alive\r\n{auth}connection: keep-alive\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.ok()?;
    stream.write_all(body).await.ok()?;
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    while !complete(&response) {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            // Closed before the end of the response: not the case this probe is about.
            return None;
        }
        response.extend_from_slice(&buf[..n]);
        if response.len() > 1 << 20 {
            return None;
        }
    }
    if !response.starts_with(b"HTTP/1.1 2") {
        return None;
    }
    match tokio::time::timeout(CLOSE_WAIT, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Some(false),
        _ => Some(true),
    }
}

/// A full response: headers, then a chunked body's end or a body of its `content-length`.
fn complete(response: &[u8]) -> bool {
    let Some(end) = find(response, b"\r\n\r\n") else {
        return false;
    };
    let headers = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
    let body = &response[end + 4..];
    if let Some(len) = headers
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body.len() >= len;
    }
    body.ends_with(CHUNKED_END) || body == b"0\r\n\r\n"
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_complete_at_their_end() {
        let chunked =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert!(complete(chunked));
        assert!(!complete(&chunked[..chunked.len() - 2]));
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert!(complete(sized));
        assert!(!complete(&sized[..sized.len() - 1]));
        assert!(!complete(b"HTTP/1.1 200 OK\r\n"));
    }

    #[actix_rt::test]
    async fn a_server_that_closes_after_each_response_is_found() {
        for keep in [false, true] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = actix_rt::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = "data: [DONE]\n\n";
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                    body.len()
                );
                s.write_all(reply.as_bytes()).await.unwrap();
                if keep {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            });
            let got = probe(
                &format!("http://{addr}/v1/chat/completions"),
                None,
                "r",
                b"{}",
            )
            .await;
            assert_eq!(got, Some(keep));
            server.await.unwrap();
        }
        assert_eq!(
            probe("https://example.invalid/v1", None, "r", b"{}").await,
            None
        );
    }
}
