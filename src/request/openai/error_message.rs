//! The message of a non-2xx response, bounded and on one line.

/// Longest error message kept from a server (a line in a log or a result file,
/// not a whole HTML page or traceback).
pub const MAX_ERROR_MESSAGE_BYTES: usize = 512;

/// The message of a non-2xx response: `error.message`, `error` (a string),
/// `message` or `detail` (FastAPI, vLLM) from a JSON body, else the body
/// text; whitespace collapsed, at most [`MAX_ERROR_MESSAGE_BYTES`], never
/// empty (the status line when nothing else is known).
pub fn error_message(status: u16, body: &[u8]) -> String {
    let message = json_error_message(body)
        .unwrap_or_else(|| collapse_whitespace(&String::from_utf8_lossy(body)));
    if message.is_empty() {
        return status_line(status);
    }
    truncate(message, MAX_ERROR_MESSAGE_BYTES)
}

fn json_error_message(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = json.get("error");
    let candidates = [
        error.and_then(|e| e.get("message")),
        error,
        json.get("message"),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .map(collapse_whitespace)
        .find(|m| !m.is_empty());
    found.or_else(|| json.get("detail").and_then(detail_message))
}

/// FastAPI's `detail`: a string, or a list of validation errors
/// (`{"loc": ["body", "model"], "msg": "Field required", ...}`).
fn detail_message(detail: &serde_json::Value) -> Option<String> {
    let message = match detail {
        serde_json::Value::String(s) => collapse_whitespace(s),
        serde_json::Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(validation_error).collect();
            parts.join("; ")
        }
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    (!message.is_empty()).then_some(message)
}

fn validation_error(item: &serde_json::Value) -> Option<String> {
    let msg = collapse_whitespace(item.get("msg")?.as_str()?);
    let loc: Vec<String> = item
        .get("loc")
        .and_then(serde_json::Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Some(if loc.is_empty() {
        msg
    } else {
        format!("{}: {msg}", loc.join("."))
    })
}

fn status_line(status: u16) -> String {
    let reason = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        424 => "Failed Dependency",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    };
    if reason.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} {reason}")
    }
}

/// One line for logs: tracebacks and HTML pages span many.
pub(super) fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(4 * MAX_ERROR_MESSAGE_BYTES));
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// At most `max` bytes, cut on a character boundary and marked with `…`.
pub(super) fn truncate(mut s: String, max: usize) -> String {
    const MARK: &str = "…";
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub(MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(MARK);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_from_known_servers() {
        let cases: [(u16, &str, &str); 8] = [
            // OpenAI
            (
                401,
                r#"{"error":{"message":"Incorrect API key provided: sk-abc***xyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
                "Incorrect API key provided: sk-abc***xyz.",
            ),
            // llama.cpp (captured)
            (
                400,
                r#"{"error":{"code":400,"message":"Expected 'messages' to be an array","type":"invalid_request_error"}}"#,
                "Expected 'messages' to be an array",
            ),
            // TGI
            (
                422,
                r#"{"error":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`","error_type":"validation"}"#,
                "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`",
            ),
            (429, r#"{"error":"Model is overloaded","error_type":"overloaded"}"#, "Model is overloaded"),
            // vLLM, unwrapped
            (
                400,
                r#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.","type":"BadRequestError","param":null,"code":400}"#,
                "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
            ),
            // FastAPI
            (404, r#"{"detail":"Not Found"}"#, "Not Found"),
            (
                422,
                r#"{"detail":[{"type":"missing","loc":["body","model"],"msg":"Field required","input":{}},{"type":"int_parsing","loc":["body","max_tokens"],"msg":"Input should be a valid integer","input":"x"}]}"#,
                "body.model: Field required; body.max_tokens: Input should be a valid integer",
            ),
            (
                422,
                r#"{"detail":[{"loc":["body",0],"msg":"bad"}]}"#,
                "body.0: bad",
            ),
        ];
        for (status, body, want) in cases {
            assert_eq!(error_message(status, body.as_bytes()), want, "{body}");
        }
    }

    #[test]
    fn error_message_falls_back_to_body_then_status() {
        let html = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n</body>\n</html>\n";
        assert_eq!(
            error_message(502, html),
            "<html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad Gateway</h1></center> </body> </html>"
        );
        assert_eq!(error_message(500, b"Internal error\n"), "Internal error");
        assert_eq!(error_message(503, b""), "HTTP 503 Service Unavailable");
        assert_eq!(error_message(429, b" \n\t "), "HTTP 429 Too Many Requests");
        assert_eq!(error_message(599, b""), "HTTP 599");
        // JSON without a usable message: the JSON itself.
        assert_eq!(
            error_message(500, br#"{"error":{"message":""},"code":1}"#),
            r#"{"error":{"message":""},"code":1}"#
        );
        assert_eq!(error_message(500, b"[1,2]"), "[1,2]");
        assert_eq!(error_message(500, b"\xFF\xFEoops"), "\u{FFFD}\u{FFFD}oops");
    }

    #[test]
    fn error_message_is_bounded() {
        let long = "日本語 ".repeat(400);
        for body in [long.clone(), format!(r#"{{"error":"{long}"}}"#)] {
            let message = error_message(500, body.as_bytes());
            assert!(
                message.len() <= MAX_ERROR_MESSAGE_BYTES,
                "{}",
                message.len()
            );
            assert!(message.len() > MAX_ERROR_MESSAGE_BYTES - 8);
            assert!(message.starts_with("日本語 日本語"));
            assert!(message.ends_with('…'));
        }
    }
}
