//! Before the first measured request: does the server accept the run's requests at all?
//!
//! One real request (the run's first prompt, one output token) goes to the endpoint the run will
//! use. A non-2xx answer stops the run before it starts (exit code 3) with the server's own
//! message: a wrong URL, model, API key or body field would otherwise make every request of the
//! run fail the same way, as fast as the server can answer. A 429 or 5xx is the server's state,
//! not a wrong request: it is retried [`PREFLIGHT_RETRIES`] times with a backoff first.

use std::time::Duration;

use crate::request::openai::error_message;
use crate::runtime::exit::RunError;

/// How long the pre-flight request waits for the response head. A cold server may take long
/// over its first request; no answer within this time is a warning, not a refusal.
pub const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(60);
/// Sent with every pre-flight request, so a server (ours included) can tell it from the run's.
pub const PROBE_HEADER: &str = "x-inference-benchmarker-probe";

/// Bytes of an error body kept for the message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Retries of the pre-flight request (and of the model listing) answered 429 or 5xx: a busy
/// server or a flaky replica behind a balancer is measured by the run, not a wrong request.
pub const PREFLIGHT_RETRIES: u32 = 5;

/// Whether an answer with `status` is worth asking again (overload, a failing replica).
pub fn retryable(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// The wait before retry `n` (1-based): 0.5 s doubling, at most 4 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis(500u64 << n.saturating_sub(1).min(3))
}

/// Says that `url` answered `status` and waits before retry `n`, if one is left: true if so.
pub async fn wait_to_retry(what: &str, url: &str, status: u16, n: u32) -> bool {
    if !retryable(status) || n > PREFLIGHT_RETRIES {
        return false;
    }
    let wait = backoff(n);
    eprintln!(
        "{what}: {url} answered HTTP {status}; retry {n} of {PREFLIGHT_RETRIES} in {}",
        humantime::format_duration(wait)
    );
    tokio::time::sleep(wait).await;
    true
}

/// Sends `body` to `url` and checks the answer's status; the body of a 2xx answer is not read.
pub async fn check_request(
    client: &awc::Client,
    url: &str,
    authorization: Option<&str>,
    request_id: &str,
    body: Vec<u8>,
) -> Result<(), RunError> {
    let body = bytes::Bytes::from(body);
    let mut retry = 0;
    loop {
        let mut req = client
            .post(url)
            .timeout(PREFLIGHT_TIMEOUT)
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-request-id", request_id))
            .insert_header((PROBE_HEADER, "pre-flight"));
        if let Some(auth) = authorization {
            req = req.insert_header(("authorization", auth));
        }
        let mut resp = match req.send_body(body.clone()).await {
            Ok(r) => r,
            Err(awc::error::SendRequestError::Timeout) => {
                log::warn!(
                    "pre-flight: no answer from {url} within {}; starting anyway",
                    humantime::format_duration(PREFLIGHT_TIMEOUT)
                );
                return Ok(());
            }
            Err(e) => {
                return Err(RunError::Unreachable(format!(
                    "pre-flight request to {url} failed: {e}"
                )))
            }
        };
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(());
        }
        let answer =
            tokio::time::timeout(Duration::from_secs(5), resp.body().limit(ERROR_BODY_LIMIT))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
        retry += 1;
        if wait_to_retry("pre-flight", url, status, retry).await {
            continue;
        }
        return Err(RunError::Refused(refusal(
            url,
            status,
            &error_message(status, &answer),
        )));
    }
}

/// The message of a refused pre-flight request: the server's words and what to check.
pub fn refusal(url: &str, status: u16, message: &str) -> String {
    let hint = match status {
        401 | 403 => "; check --api-key (or API_KEY)",
        404 => "; check --url (the server's base URL, e.g. http://host:8000) and --model-name",
        400 | 422 => {
            "; the server rejects the request: check --model-name, --endpoint, and \
             --no-ignore-eos for servers that refuse unknown fields"
        }
        429 => "; the server is rate-limiting before the run starts",
        500..=599 => "; the server is unhealthy",
        _ => "",
    };
    format!("{url} answered HTTP {status}: {message}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_to_check() {
        let m = refusal("http://h/v1/chat/completions", 401, "Invalid API key");
        assert!(
            m.contains("HTTP 401: Invalid API key") && m.contains("--api-key"),
            "{m}"
        );
        let m = refusal("http://h/v1/chat/completions", 404, "model not found");
        assert!(m.contains("--url") && m.contains("--model-name"), "{m}");
        let m = refusal("http://h/v1/chat/completions", 422, "extra fields");
        assert!(m.contains("--no-ignore-eos"), "{m}");
    }

    #[test]
    fn overload_and_server_errors_are_retried_with_a_growing_backoff() {
        assert!(retryable(429) && retryable(500) && retryable(503));
        assert!(!retryable(400) && !retryable(404) && !retryable(422) && !retryable(401));
        let waits: Vec<_> = (1..=PREFLIGHT_RETRIES).map(backoff).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 4000].map(Duration::from_millis),
            "0.5 s doubling, at most 4 s"
        );
    }
}
