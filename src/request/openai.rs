//! The OpenAI wire format: endpoint URLs, request bodies, and the data of
//! each streamed event (chat and completions), as vLLM, TGI, SGLang, llama.cpp
//! and OpenAI itself send them.
//!
//! Pure: no I/O, no actix. [`StreamState::on_data`] runs for every streamed
//! chunk, so chunks are parsed into borrowed structs (strings stay slices of
//! the event's data unless they carry JSON escapes) and `choices` is folded
//! while it is read instead of being collected into a `Vec`.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::config::Endpoint;

/// Longest error message kept from a server (a line in a log or a result file,
/// not a whole HTML page or traceback).
pub const MAX_ERROR_MESSAGE_BYTES: usize = 512;

/// How much of an unparseable event is quoted in its error.
const MAX_QUOTED_DATA_BYTES: usize = 200;

// ---------------------------------------------------------------------------
// URLs

/// The URL of `endpoint` under the server's base URL, keeping any base path
/// (`http://h/proxy` → `http://h/proxy/v1/chat/completions`) and not doubling
/// a base path that already ends in `/v1`.
pub fn endpoint_url(base: &str, endpoint: Endpoint) -> Result<String, String> {
    let path = match endpoint {
        Endpoint::Chat => "chat/completions",
        Endpoint::Completions => "completions",
    };
    api_url(base, path)
}

/// The URL of `/v1/models` under the server's base URL (see [`endpoint_url`]).
pub fn models_url(base: &str) -> Result<String, String> {
    api_url(base, "models")
}

fn api_url(base: &str, path: &str) -> Result<String, String> {
    let base = base.trim();
    let invalid = |why: &str| format!("invalid server URL {base:?}: {why}");
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| invalid("expected http://host[:port][/path] or https://..."))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(invalid(&format!(
            "unsupported scheme {scheme:?}, only http and https are supported"
        )));
    }
    if rest.contains(['?', '#']) {
        return Err(invalid("a base URL cannot have a query or a fragment"));
    }
    if rest.contains(char::is_whitespace) {
        return Err(invalid("it contains whitespace"));
    }
    let (authority, base_path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(invalid("no host"));
    }
    let base_path = base_path.trim_end_matches('/');
    let version = if base_path.ends_with("/v1") {
        ""
    } else {
        "/v1"
    };
    Ok(format!("{scheme}://{authority}{base_path}{version}/{path}"))
}

// ---------------------------------------------------------------------------
// Request bodies

/// One chat message, as sent in `messages`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// Both endpoints' streaming request, in one shape: exactly one of
/// `messages` / `prompt` is set.
#[derive(Serialize)]
struct RequestBody<'a> {
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<&'a [Message]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    stream: bool,
    /// Asks for the final usage chunk: the server's token counts are exact,
    /// ours are an estimate.
    stream_options: StreamOptions,
    /// vLLM, TGI and llama.cpp extension; only sent when asked for, since
    /// strict servers (OpenAI) reject unknown fields, and only with a `max_tokens`: without
    /// one, a server that honours it generates to the model's context limit.
    #[serde(skip_serializing_if = "is_false")]
    ignore_eos: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl RequestBody<'_> {
    fn to_bytes(&self) -> Bytes {
        // Strings, numbers and booleans only: serializing cannot fail.
        let json = serde_json::to_vec(self).expect("a request body always serializes");
        Bytes::from(json)
    }
}

/// A streaming `/v1/chat/completions` body. Built once per prepared prompt,
/// so sending only clones the `Bytes`.
pub fn chat_body(
    model: &str,
    messages: &[Message],
    max_tokens: Option<u64>,
    ignore_eos: bool,
) -> Bytes {
    RequestBody {
        model,
        messages: Some(messages),
        prompt: None,
        max_tokens,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        ignore_eos: ignore_eos && max_tokens.is_some(),
    }
    .to_bytes()
}

/// A streaming `/v1/completions` body (see [`chat_body`]).
pub fn completions_body(
    model: &str,
    prompt: &str,
    max_tokens: Option<u64>,
    ignore_eos: bool,
) -> Bytes {
    RequestBody {
        model,
        messages: None,
        prompt: Some(prompt),
        max_tokens,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        ignore_eos: ignore_eos && max_tokens.is_some(),
    }
    .to_bytes()
}

// ---------------------------------------------------------------------------
// Stream chunks

/// What one event's data was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    /// The chunk carried generated text (content or reasoning): a token time.
    Text,
    /// A well-formed chunk without text (role-only first chunk, finish
    /// reason, usage, keep-alive).
    NoText,
    /// `[DONE]`.
    Done,
}

/// Token counts reported by the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// `usage.prompt_tokens_details.cached_tokens`, or llama.cpp's
    /// `timings.cache_n` when the former is absent.
    pub cached_tokens: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolErrorKind {
    /// The data was neither JSON nor `[DONE]`.
    InvalidJson,
    /// The server reported an error inside the stream (`{"error": ...}`).
    ServerError,
    /// JSON, but not shaped like a chunk (e.g. `content` is a number).
    UnexpectedShape,
}

impl ProtocolErrorKind {
    /// Stable snake_case name, e.g. for logs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolErrorKind::InvalidJson => "invalid_json",
            ProtocolErrorKind::ServerError => "server_error",
            ProtocolErrorKind::UnexpectedShape => "unexpected_shape",
        }
    }
}

/// A streamed event that ends the request as a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    pub kind: ProtocolErrorKind,
    /// At most [`MAX_ERROR_MESSAGE_BYTES`].
    pub message: String,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ProtocolErrorKind::InvalidJson => "invalid JSON in stream",
            ProtocolErrorKind::ServerError => "server error in stream",
            ProtocolErrorKind::UnexpectedShape => "unexpected chunk in stream",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for ProtocolError {}

/// What a request learnt from its stream so far.
#[derive(Debug)]
pub struct StreamState {
    keep_text: bool,
    text: String,
    text_chunks: u64,
    usage: Option<Usage>,
    finish_reason: Option<String>,
    model: Option<String>,
    saw_done: bool,
}

impl StreamState {
    /// `keep_text`: accumulate the generated text (for client-side token
    /// counting or multi-turn chat); otherwise only count text chunks.
    pub fn new(keep_text: bool) -> Self {
        StreamState {
            keep_text,
            text: String::new(),
            text_chunks: 0,
            usage: None,
            finish_reason: None,
            model: None,
            saw_done: false,
        }
    }

    /// Consumes one SSE event's data.
    pub fn on_data(&mut self, data: &str) -> Result<DataKind, ProtocolError> {
        let trimmed = data.trim_ascii();
        if trimmed == "[DONE]" {
            self.saw_done = true;
            return Ok(DataKind::Done);
        }
        // An empty event is a keep-alive some proxies send, not a broken chunk.
        if trimmed.is_empty() {
            return Ok(DataKind::NoText);
        }
        let chunk: Chunk<'_> = serde_json::from_str(data).map_err(|e| parse_error(&e, data))?;
        if let Some(message) = chunk.server_error() {
            return Err(server_error(message, data));
        }
        if self.model.is_none() {
            if let Some(model) = chunk.model.filter(|m| !m.0.is_empty()) {
                self.model = Some(model.0.into_owned());
            }
        }
        if let Some(wire) = &chunk.usage {
            self.merge_usage(wire, chunk.timings.as_ref());
        }
        let Some(choices) = chunk.choices else {
            return Ok(DataKind::NoText);
        };
        if let Some(reason) = choices.finish_reason {
            set_string(&mut self.finish_reason, &reason);
        }
        match choices.text {
            Some(text) if !text.is_empty() => {
                self.text_chunks += 1;
                if self.keep_text {
                    self.text.push_str(&text);
                }
                Ok(DataKind::Text)
            }
            _ => Ok(DataKind::NoText),
        }
    }

    /// The server's token counts, from any chunk that carried `usage`.
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    /// The last `finish_reason` seen (`stop`, `length`, ...).
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    /// The model name the server answered with.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// How many chunks carried text.
    pub fn text_chunks(&self) -> u64 {
        self.text_chunks
    }

    /// The generated text so far, reasoning included (servers count reasoning
    /// in `completion_tokens`), leaving it empty. Always empty without `keep_text`.
    pub fn take_text(&mut self) -> String {
        std::mem::take(&mut self.text)
    }

    pub fn saw_done(&self) -> bool {
        self.saw_done
    }

    /// Later chunks win field by field, so a partial usage (some servers report
    /// counts on every chunk) never erases a count seen before.
    fn merge_usage(&mut self, wire: &WireUsage, timings: Option<&Timings>) {
        let old = self.usage.unwrap_or_default();
        let cached = wire
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or_else(|| timings.and_then(|t| t.cache_n));
        self.usage = Some(Usage {
            prompt_tokens: wire.prompt_tokens.or(old.prompt_tokens),
            completion_tokens: wire.completion_tokens.or(old.completion_tokens),
            cached_tokens: cached.or(old.cached_tokens),
        });
    }
}

/// Overwrites in place: the finish reason usually comes once, but reusing the
/// allocation costs nothing when a server repeats it.
fn set_string(slot: &mut Option<String>, value: &str) {
    match slot {
        Some(s) => {
            s.clear();
            s.push_str(value);
        }
        None => *slot = Some(value.to_owned()),
    }
}

fn parse_error(err: &serde_json::Error, data: &str) -> ProtocolError {
    let kind = match err.classify() {
        serde_json::error::Category::Data => ProtocolErrorKind::UnexpectedShape,
        _ => ProtocolErrorKind::InvalidJson,
    };
    let quoted = truncate(data.to_owned(), MAX_QUOTED_DATA_BYTES);
    ProtocolError {
        kind,
        message: truncate(format!("{err}; data: {quoted}"), MAX_ERROR_MESSAGE_BYTES),
    }
}

fn server_error(message: Option<Cow<'_, str>>, data: &str) -> ProtocolError {
    let message = match message {
        Some(m) if !m.trim().is_empty() => collapse_whitespace(&m),
        // No usable message: the event itself says the most.
        _ => collapse_whitespace(data),
    };
    ProtocolError {
        kind: ProtocolErrorKind::ServerError,
        message: truncate(message, MAX_ERROR_MESSAGE_BYTES),
    }
}

/// A JSON string, borrowed from the event's data unless it has escapes.
/// (`#[serde(borrow)]` on `Option<Cow<str>>` would always copy; on this
/// newtype it borrows.)
#[derive(Deserialize)]
#[serde(transparent)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

/// One streamed chunk; every other field is skipped unread.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    model: Option<Str<'a>>,
    #[serde(borrow)]
    choices: Option<Choices<'a>>,
    usage: Option<WireUsage>,
    /// llama.cpp's timings, for its prompt-cache count.
    timings: Option<Timings>,
    #[serde(borrow)]
    error: Option<WireError<'a>>,
    /// vLLM's unwrapped error response: `{"object": "error", "message": ...}`.
    #[serde(borrow)]
    object: Option<Str<'a>>,
    #[serde(borrow)]
    message: Option<Str<'a>>,
}

impl<'a> Chunk<'a> {
    /// `Some(message)` when the chunk is an error report (the message itself may be absent).
    fn server_error(&self) -> Option<Option<Cow<'a, str>>> {
        if let Some(err) = &self.error {
            return Some(err.message.clone());
        }
        if self.object.as_ref().is_some_and(|o| o.0 == "error") {
            return Some(self.message.as_ref().map(|m| m.0.clone()));
        }
        None
    }
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Deserialize)]
struct PromptTokensDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Timings {
    cache_n: Option<u64>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    /// Completions.
    #[serde(borrow)]
    text: Option<Str<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Str<'a>>,
    /// vLLM, SGLang, DeepSeek.
    #[serde(borrow)]
    reasoning_content: Option<Str<'a>>,
    /// Newer vLLM, OpenRouter-style servers.
    #[serde(borrow)]
    reasoning: Option<Str<'a>>,
}

/// A chunk's `choices`, folded while parsed: all the text of all choices (we
/// ask for one choice; more are tolerated) and the last finish reason.
#[derive(Default)]
struct Choices<'a> {
    text: Option<Cow<'a, str>>,
    finish_reason: Option<Cow<'a, str>>,
}

impl<'a> Choices<'a> {
    fn absorb(&mut self, choice: Choice<'a>) {
        if let Some(reason) = choice.finish_reason {
            self.finish_reason = Some(reason.0);
        }
        let delta = choice.delta.map_or([None, None, None], |d| {
            [d.reasoning_content, d.reasoning, d.content]
        });
        for piece in delta.into_iter().chain([choice.text]).flatten() {
            self.push_text(piece.0);
        }
    }

    /// Keeps a single piece borrowed; only joins (and so allocates) when a
    /// chunk carries several.
    fn push_text(&mut self, piece: Cow<'a, str>) {
        if piece.is_empty() {
            return;
        }
        match &mut self.text {
            None => self.text = Some(piece),
            Some(text) => text.to_mut().push_str(&piece),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Choices<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(ChoicesVisitor(PhantomData))
    }
}

struct ChoicesVisitor<'a>(PhantomData<Choices<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for ChoicesVisitor<'a> {
    type Value = Choices<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of choices")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut choices = Choices::default();
        while let Some(choice) = seq.next_element::<Choice<'a>>()? {
            choices.absorb(choice);
        }
        Ok(choices)
    }
}

/// `"error"` in a chunk: an object with a `message` (OpenAI, vLLM, llama.cpp)
/// or a bare string (TGI).
struct WireError<'a> {
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireErrorObject<'a> {
    #[serde(borrow)]
    message: Option<Str<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for WireError<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WireErrorVisitor(PhantomData))
    }
}

struct WireErrorVisitor<'a>(PhantomData<WireError<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for WireErrorVisitor<'a> {
    type Value = WireError<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an error message or an error object")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(WireError {
            message: Some(Cow::Borrowed(v)),
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(WireError {
            message: Some(Cow::Owned(v.to_owned())),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let object = WireErrorObject::deserialize(MapAccessDeserializer::new(map))?;
        Ok(WireError {
            message: object.message.map(|m| m.0),
        })
    }
}

// ---------------------------------------------------------------------------
// Error responses

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
fn collapse_whitespace(s: &str) -> String {
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
fn truncate(mut s: String, max: usize) -> String {
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
    use serde_json::{json, Value};

    // -- URLs ---------------------------------------------------------------

    #[test]
    fn endpoint_url_appends_v1_after_any_base_path() {
        let chat = |base| endpoint_url(base, Endpoint::Chat);
        let cases = [
            (
                "http://localhost:8000",
                "http://localhost:8000/v1/chat/completions",
            ),
            (
                "http://localhost:8000/",
                "http://localhost:8000/v1/chat/completions",
            ),
            ("http://h/proxy", "http://h/proxy/v1/chat/completions"),
            ("http://h/proxy//", "http://h/proxy/v1/chat/completions"),
            ("http://h/openai/v1", "http://h/openai/v1/chat/completions"),
            ("http://h/v1/", "http://h/v1/chat/completions"),
            (
                "https://api.example.com",
                "https://api.example.com/v1/chat/completions",
            ),
            (
                "HTTPS://Example.com:8443",
                "https://Example.com:8443/v1/chat/completions",
            ),
            (
                "  http://[::1]:8000  ",
                "http://[::1]:8000/v1/chat/completions",
            ),
            // A host called v1 or a path merely ending in "v1..." is not a version.
            ("http://v1", "http://v1/v1/chat/completions"),
            ("http://h/v10", "http://h/v10/v1/chat/completions"),
            ("http://h/apiv1", "http://h/apiv1/v1/chat/completions"),
        ];
        for (base, want) in cases {
            assert_eq!(chat(base).as_deref(), Ok(want), "base {base:?}");
        }
        assert_eq!(
            endpoint_url("http://h/proxy/", Endpoint::Completions).as_deref(),
            Ok("http://h/proxy/v1/completions")
        );
        assert_eq!(
            models_url("http://h:8080/v1").as_deref(),
            Ok("http://h:8080/v1/models")
        );
        assert_eq!(models_url("http://h").as_deref(), Ok("http://h/v1/models"));
    }

    #[test]
    fn endpoint_url_rejects_what_it_cannot_use() {
        let cases = [
            ("ftp://h", "unsupported scheme \"ftp\""),
            ("unix:///run/vllm.sock", "unsupported scheme \"unix\""),
            ("localhost:8000", "expected http://"),
            ("", "expected http://"),
            ("http://", "no host"),
            ("http:///v1", "no host"),
            ("http://h/v1?api-version=2", "query or a fragment"),
            ("http://h/#x", "query or a fragment"),
            ("http://h /v1", "whitespace"),
        ];
        for (base, why) in cases {
            let err = endpoint_url(base, Endpoint::Chat).unwrap_err();
            assert!(err.contains(why), "{base:?}: {err}");
            assert!(err.contains(&format!("{:?}", base.trim())), "{err}");
            assert!(models_url(base).is_err());
        }
    }

    // -- Request bodies -----------------------------------------------------

    fn parse(body: &Bytes) -> Value {
        serde_json::from_slice(body).expect("valid JSON body")
    }

    fn messages() -> Vec<Message> {
        vec![
            Message {
                role: "system".into(),
                content: "Be brief.".into(),
            },
            Message {
                role: "user".into(),
                content: "Say \"hi\"\nin 2 languages: é, 日本".into(),
            },
        ]
    }

    #[test]
    fn chat_body_with_every_option() {
        let body = chat_body(
            "meta-llama/Llama-3.1-8B-Instruct",
            &messages(),
            Some(128),
            true,
        );
        assert_eq!(
            parse(&body),
            json!({
                "model": "meta-llama/Llama-3.1-8B-Instruct",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Say \"hi\"\nin 2 languages: é, 日本"},
                ],
                "max_tokens": 128,
                "stream": true,
                "stream_options": {"include_usage": true},
                "ignore_eos": true,
            })
        );
        // Compact, in a stable key order.
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.starts_with(
            r#"{"model":"meta-llama/Llama-3.1-8B-Instruct","messages":[{"role":"system""#
        ));
        assert!(text.ends_with(r#""max_tokens":128,"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true}"#));
    }

    #[test]
    fn chat_body_omits_unset_options() {
        let body = chat_body("m", &messages()[..1], None, false);
        assert_eq!(
            parse(&body),
            json!({
                "model": "m",
                "messages": [{"role": "system", "content": "Be brief."}],
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
        let empty = chat_body("m", &[], Some(0), false);
        assert_eq!(parse(&empty)["messages"], json!([]));
        assert_eq!(parse(&empty)["max_tokens"], json!(0));
    }

    #[test]
    fn completions_body_uses_prompt() {
        assert_eq!(
            parse(&completions_body(
                "tiny",
                "Once upon a time",
                Some(16),
                true
            )),
            json!({
                "model": "tiny",
                "prompt": "Once upon a time",
                "max_tokens": 16,
                "stream": true,
                "stream_options": {"include_usage": true},
                "ignore_eos": true,
            })
        );
        let unbounded = parse(&completions_body("tiny", "x", None, true));
        assert!(
            unbounded.get("ignore_eos").is_none(),
            "ignore_eos without max_tokens would generate to the context limit"
        );
        let bare = parse(&completions_body("tiny", "", None, false));
        assert_eq!(bare["prompt"], json!(""));
        assert!(bare.get("max_tokens").is_none() && bare.get("ignore_eos").is_none());
        assert!(bare.get("messages").is_none());
    }

    #[test]
    fn message_round_trips() {
        let m = messages();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Vec<Message>>(&json).unwrap(), m);
    }

    // -- Stream chunks ------------------------------------------------------

    /// Feeds every event's data; returns the kinds, or the first error.
    fn run(state: &mut StreamState, events: &[&str]) -> Result<Vec<DataKind>, ProtocolError> {
        events.iter().map(|d| state.on_data(d)).collect()
    }

    use DataKind::{Done, NoText, Text};

    /// Captured from llama.cpp's llama-server (`/v1/chat/completions`,
    /// `stream_options.include_usage`, 3 tokens).
    const LLAMA_CPP_CHAT: [&str; 7] = [
        r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"created":1795861414,"id":"chatcmpl-FXckEbgnCv6iMbD2HAxV22Lr4IDTVOaJ","model":"tiny","system_fingerprint":"b0-unknown","object":"chat.completion.chunk"}"#,
        r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"\"></"}}],"created":1795861414,"id":"chatcmpl-FXckEbgnCv6iMbD2HAxV22Lr4IDTVOaJ","model":"tiny","system_fingerprint":"b0-unknown","object":"chat.completion.chunk"}"#,
        r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"content":" space"}}],"created":1795861414,"id":"chatcmpl-FXckEbgnCv6iMbD2HAxV22Lr4IDTVOaJ","model":"tiny","system_fingerprint":"b0-unknown","object":"chat.completion.chunk"}"#,
        r#"{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Im"}}],"created":1795861414,"id":"chatcmpl-FXckEbgnCv6iMbD2HAxV22Lr4IDTVOaJ","model":"tiny","system_fingerprint":"b0-unknown","object":"chat.completion.chunk"}"#,
        r#"{"choices":[{"finish_reason":"length","index":0,"delta":{}}],"created":1795861414,"id":"chatcmpl-FXckEbgnCv6iMbD2HAxV22Lr4IDTVOaJ","model":"tiny","system_fingerprint":"b0-unknown","object":"chat.completion.chunk"}"#,
        r#"{"choices":[],"created":1795861414,"id":"chatcmpl-FXckEbgnCv6iMbD2HAxV22Lr4IDTVOaJ","model":"tiny","system_fingerprint":"b0-unknown","object":"chat.completion.chunk","usage":{"completion_tokens":3,"prompt_tokens":12,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":11}},"timings":{"cache_n":11,"prompt_n":1,"prompt_ms":2.934,"prompt_per_token_ms":2.934,"prompt_per_second":340.83162917518746,"predicted_n":3,"predicted_ms":5.192,"predicted_per_token_ms":2.596,"predicted_per_second":385.2080123266564}}"#,
        "[DONE]",
    ];

    #[test]
    fn llama_cpp_chat_stream() {
        let mut state = StreamState::new(true);
        assert_eq!(
            run(&mut state, &LLAMA_CPP_CHAT),
            Ok(vec![NoText, Text, Text, Text, NoText, NoText, Done])
        );
        assert_eq!(state.text_chunks(), 3);
        assert_eq!(state.take_text(), "\"></ spaceIm");
        assert_eq!(state.take_text(), "");
        assert_eq!(state.finish_reason(), Some("length"));
        assert_eq!(state.model(), Some("tiny"));
        assert!(state.saw_done());
        assert_eq!(
            state.usage(),
            Some(&Usage {
                prompt_tokens: Some(12),
                completion_tokens: Some(3),
                cached_tokens: Some(11),
            })
        );
    }

    #[test]
    fn llama_cpp_completions_stream() {
        // Captured from llama-server's `/v1/completions`: usage and timings
        // ride on the last text chunk, whose text is empty.
        let events = [
            r#"{"choices":[{"text":"CORE","index":0,"logprobs":null,"finish_reason":null}],"created":1795861414,"model":"tiny","system_fingerprint":"b0-unknown","object":"text_completion","id":"chatcmpl-N24WrpeHh9tUjoZIrWt5UHvcChQKNGvG"}"#,
            r#"{"choices":[{"text":" husus","index":0,"logprobs":null,"finish_reason":null}],"created":1795861414,"model":"tiny","system_fingerprint":"b0-unknown","object":"text_completion","id":"chatcmpl-N24WrpeHh9tUjoZIrWt5UHvcChQKNGvG"}"#,
            r#"{"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}],"created":1795861414,"model":"tiny","system_fingerprint":"b0-unknown","object":"text_completion","usage":{"completion_tokens":2,"prompt_tokens":3,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":1}},"id":"chatcmpl-N24WrpeHh9tUjoZIrWt5UHvcChQKNGvG","timings":{"cache_n":1,"prompt_n":2,"prompt_ms":2.954,"prompt_per_token_ms":1.477,"prompt_per_second":677.0480704129993,"predicted_n":2,"predicted_ms":2.776,"predicted_per_token_ms":2.776,"predicted_per_second":360.2305475504323}}"#,
            "[DONE]",
        ];
        let mut state = StreamState::new(true);
        assert_eq!(run(&mut state, &events), Ok(vec![Text, Text, NoText, Done]));
        assert_eq!(state.take_text(), "CORE husus");
        assert_eq!(state.finish_reason(), Some("length"));
        assert_eq!(
            state.usage(),
            Some(&Usage {
                prompt_tokens: Some(3),
                completion_tokens: Some(2),
                cached_tokens: Some(1),
            })
        );
    }

    #[test]
    fn llama_cpp_cache_count_from_timings() {
        // Older llama.cpp builds report the prompt cache only in `timings`.
        let last = r#"{"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"created":1732000000,"id":"chatcmpl-x","model":"gpt-3.5-turbo","object":"chat.completion.chunk","usage":{"completion_tokens":9,"prompt_tokens":20,"total_tokens":29},"timings":{"cache_n":16,"prompt_n":4,"prompt_ms":1.2,"predicted_n":9,"predicted_ms":30.5}}"#;
        let mut state = StreamState::new(false);
        assert_eq!(state.on_data(last), Ok(NoText));
        assert_eq!(state.usage().unwrap().cached_tokens, Some(16));
        assert_eq!(state.finish_reason(), Some("stop"));
    }

    #[test]
    fn vllm_chat_stream_with_final_usage_chunk() {
        let events = [
            r#"{"id":"chatcmpl-5d2c","object":"chat.completion.chunk","created":1732000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-5d2c","object":"chat.completion.chunk","created":1732000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-5d2c","object":"chat.completion.chunk","created":1732000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":"!\n\u00e9"},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-5d2c","object":"chat.completion.chunk","created":1732000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop","stop_reason":null}]}"#,
            r#"{"id":"chatcmpl-5d2c","object":"chat.completion.chunk","created":1732000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[],"usage":{"prompt_tokens":42,"total_tokens":45,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":32}}}"#,
            "[DONE]",
        ];
        let mut state = StreamState::new(true);
        assert_eq!(
            run(&mut state, &events),
            Ok(vec![NoText, Text, Text, NoText, NoText, Done])
        );
        assert_eq!(state.take_text(), "Hello!\né");
        assert_eq!(state.finish_reason(), Some("stop"));
        assert_eq!(state.model(), Some("meta-llama/Llama-3.1-8B-Instruct"));
        assert_eq!(
            state.usage(),
            Some(&Usage {
                prompt_tokens: Some(42),
                completion_tokens: Some(3),
                cached_tokens: Some(32),
            })
        );
    }

    #[test]
    fn vllm_completions_and_continuous_usage() {
        // `continuous_usage_stats`: usage on every chunk; the latest wins.
        let events = [
            r#"{"id":"cmpl-9","object":"text_completion","created":1732000000,"model":"Qwen/Qwen2.5-0.5B","choices":[{"index":0,"text":" the","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":{"prompt_tokens":5,"total_tokens":6,"completion_tokens":1}}"#,
            r#"{"id":"cmpl-9","object":"text_completion","created":1732000000,"model":"Qwen/Qwen2.5-0.5B","choices":[{"index":0,"text":" end","logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":{"prompt_tokens":5,"total_tokens":7,"completion_tokens":2}}"#,
            r#"{"id":"cmpl-9","object":"text_completion","created":1732000000,"model":"Qwen/Qwen2.5-0.5B","choices":[],"usage":{"prompt_tokens":5,"total_tokens":7,"completion_tokens":2}}"#,
            "[DONE]",
        ];
        let mut state = StreamState::new(true);
        assert_eq!(run(&mut state, &events), Ok(vec![Text, Text, NoText, Done]));
        assert_eq!(state.take_text(), " the end");
        let usage = state.usage().unwrap();
        assert_eq!(
            (usage.prompt_tokens, usage.completion_tokens),
            (Some(5), Some(2))
        );
        assert_eq!(usage.cached_tokens, None);
    }

    #[test]
    fn partial_usage_never_erases_earlier_counts() {
        let mut state = StreamState::new(false);
        let first = r#"{"choices":[],"usage":{"prompt_tokens":7,"prompt_tokens_details":{"cached_tokens":4}}}"#;
        let second =
            r#"{"choices":[],"usage":{"completion_tokens":9,"prompt_tokens_details":null}}"#;
        assert_eq!(run(&mut state, &[first, second]), Ok(vec![NoText, NoText]));
        assert_eq!(
            state.usage(),
            Some(&Usage {
                prompt_tokens: Some(7),
                completion_tokens: Some(9),
                cached_tokens: Some(4),
            })
        );
    }

    #[test]
    fn reasoning_counts_as_text() {
        let events = [
            r#"{"id":"chatcmpl-r","object":"chat.completion.chunk","created":1,"model":"deepseek-ai/DeepSeek-R1-Distill-Qwen-7B","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-r","object":"chat.completion.chunk","created":1,"model":"deepseek-ai/DeepSeek-R1-Distill-Qwen-7B","choices":[{"index":0,"delta":{"reasoning_content":"Let me think."},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-r","object":"chat.completion.chunk","created":1,"model":"deepseek-ai/DeepSeek-R1-Distill-Qwen-7B","choices":[{"index":0,"delta":{"reasoning":" Hmm.","content":null},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-r","object":"chat.completion.chunk","created":1,"model":"deepseek-ai/DeepSeek-R1-Distill-Qwen-7B","choices":[{"index":0,"delta":{"reasoning_content":null,"content":" 42"},"finish_reason":null}]}"#,
            r#"{"id":"chatcmpl-r","object":"chat.completion.chunk","created":1,"model":"deepseek-ai/DeepSeek-R1-Distill-Qwen-7B","choices":[{"index":0,"delta":{"reasoning_content":null,"content":null},"finish_reason":"stop"}]}"#,
        ];
        let mut state = StreamState::new(true);
        assert_eq!(
            run(&mut state, &events),
            Ok(vec![NoText, Text, Text, Text, NoText])
        );
        assert_eq!(state.text_chunks(), 3);
        assert_eq!(state.take_text(), "Let me think. Hmm. 42");
        assert!(!state.saw_done());
    }

    #[test]
    fn openai_stream_with_null_usage_and_extra_fields() {
        let events = [
            r#"{"id":"chatcmpl-AbC","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"pX9"}"#,
            r#"{"id":"chatcmpl-AbC","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"q"}"#,
            r#"{"id":"chatcmpl-AbC","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":"Zk"}"#,
            r#"{"id":"chatcmpl-AbC","object":"chat.completion.chunk","created":1732000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0ba0d124f1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"obfuscation":"a"}"#,
            "[DONE]",
        ];
        let mut state = StreamState::new(true);
        assert_eq!(
            run(&mut state, &events),
            Ok(vec![NoText, Text, NoText, NoText, Done])
        );
        assert_eq!(state.take_text(), "Hi");
        assert_eq!(state.model(), Some("gpt-4o-mini-2024-07-18"));
        assert_eq!(
            state.usage(),
            Some(&Usage {
                prompt_tokens: Some(9),
                completion_tokens: Some(1),
                cached_tokens: Some(0),
            })
        );
    }

    #[test]
    fn tgi_stream_with_role_on_every_delta() {
        let events = [
            r#"{"object":"chat.completion.chunk","id":"","created":1732000000,"model":"meta-llama/Llama-3.1-8B-Instruct","system_fingerprint":"3.0.1-sha-bb9095a","choices":[{"index":0,"delta":{"role":"assistant","content":"The"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            r#"{"object":"chat.completion.chunk","id":"","created":1732000000,"model":"meta-llama/Llama-3.1-8B-Instruct","system_fingerprint":"3.0.1-sha-bb9095a","choices":[{"index":0,"delta":{"role":"assistant","content":" sky"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            r#"{"object":"chat.completion.chunk","id":"","created":1732000000,"model":"meta-llama/Llama-3.1-8B-Instruct","system_fingerprint":"3.0.1-sha-bb9095a","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":14,"completion_tokens":2,"total_tokens":16}}"#,
            "[DONE]",
        ];
        let mut state = StreamState::new(true);
        assert_eq!(run(&mut state, &events), Ok(vec![Text, Text, NoText, Done]));
        assert_eq!(state.take_text(), "The sky");
        assert_eq!(state.usage().unwrap().completion_tokens, Some(2));
        assert_eq!(state.finish_reason(), Some("length"));
    }

    #[test]
    fn server_errors_mid_stream() {
        let cases = [
            // TGI
            (
                r#"{"error":"Request failed during generation: Server error: CUDA out of memory.","error_type":"generation"}"#,
                "Request failed during generation: Server error: CUDA out of memory.",
            ),
            // vLLM
            (
                r#"{"error":{"object":"error","message":"The engine\nis dead","type":"InternalServerError","param":null,"code":500}}"#,
                "The engine is dead",
            ),
            // OpenAI
            (
                r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#,
                "The server had an error while processing your request.",
            ),
            // vLLM's bare error response
            (
                r#"{"object":"error","message":"Overloaded","type":"ServiceUnavailableError","code":503}"#,
                "Overloaded",
            ),
            // No message: the event itself is quoted.
            (r#"{"error":{"code":500}}"#, r#"{"error":{"code":500}}"#),
            (r#"{"error":""}"#, r#"{"error":""}"#),
        ];
        for (data, want) in cases {
            let mut state = StreamState::new(true);
            assert_eq!(
                state.on_data(r#"{"choices":[{"delta":{"content":"a"}}]}"#),
                Ok(Text)
            );
            let err = state.on_data(data).unwrap_err();
            assert_eq!(err.kind, ProtocolErrorKind::ServerError, "{data}");
            assert_eq!(err.message, want);
            assert_eq!(err.to_string(), format!("server error in stream: {want}"));
        }
    }

    #[test]
    fn null_error_is_not_an_error() {
        let mut state = StreamState::new(true);
        let data = r#"{"error":null,"object":"chat.completion.chunk","choices":[{"delta":{"content":"x"}}]}"#;
        assert_eq!(state.on_data(data), Ok(Text));
    }

    #[test]
    fn long_server_error_is_truncated() {
        let long = "é".repeat(1000);
        let data = format!(r#"{{"error":{{"message":"{long}"}}}}"#);
        let err = StreamState::new(false).on_data(&data).unwrap_err();
        assert!(err.message.len() <= MAX_ERROR_MESSAGE_BYTES);
        assert!(err.message.ends_with('…'));
        assert!(err.message.starts_with("éé"));
    }

    #[test]
    fn invalid_json_and_unexpected_shapes() {
        let invalid = ["{\"choices\": [", "not json", "{\"a\":1}}", "data: {}"];
        for data in invalid {
            let err = StreamState::new(true).on_data(data).unwrap_err();
            assert_eq!(err.kind, ProtocolErrorKind::InvalidJson, "{data}");
            assert!(err.message.contains(data), "{}", err.message);
        }
        let shapes = [
            "42",
            r#""text""#,
            r#"{"choices":{}}"#,
            r#"{"choices":[{"delta":{"content":5}}]}"#,
            r#"{"choices":[{"text":["a"]}]}"#,
            r#"{"usage":{"completion_tokens":-1}}"#,
            r#"{"error":true}"#,
        ];
        for data in shapes {
            let err = StreamState::new(true).on_data(data).unwrap_err();
            assert_eq!(err.kind, ProtocolErrorKind::UnexpectedShape, "{data}");
        }
        // A huge bad event is quoted only in part.
        let huge = format!("{{\"x\":\"{}", "a".repeat(100_000));
        let err = StreamState::new(true).on_data(&huge).unwrap_err();
        assert!(err.message.len() <= MAX_ERROR_MESSAGE_BYTES);
    }

    #[test]
    fn done_empty_and_odd_chunks() {
        let mut state = StreamState::new(true);
        assert_eq!(state.on_data(" [DONE] "), Ok(Done));
        assert!(state.saw_done());
        assert_eq!(state.on_data(""), Ok(NoText));
        assert_eq!(state.on_data(" \n"), Ok(NoText));
        assert_eq!(state.on_data("{}"), Ok(NoText));
        assert_eq!(
            state.on_data(r#"{"choices":null,"usage":null}"#),
            Ok(NoText)
        );
        assert_eq!(state.on_data(r#"{"choices":[{"delta":null}]}"#), Ok(NoText));
        assert_eq!(state.usage(), None);
        assert_eq!(state.model(), None);
        assert_eq!(state.text_chunks(), 0);
    }

    #[test]
    fn several_choices_in_one_chunk() {
        let mut state = StreamState::new(true);
        let data = r#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"},"finish_reason":"stop"}]}"#;
        assert_eq!(state.on_data(data), Ok(Text));
        assert_eq!(state.text_chunks(), 1);
        assert_eq!(state.take_text(), "ab");
        assert_eq!(state.finish_reason(), Some("stop"));
    }

    #[test]
    fn without_keep_text_only_counts() {
        let mut state = StreamState::new(false);
        assert_eq!(
            run(&mut state, &LLAMA_CPP_CHAT[..4]),
            Ok(vec![NoText, Text, Text, Text])
        );
        assert_eq!(state.text_chunks(), 3);
        assert_eq!(state.take_text(), "");
    }

    #[test]
    fn model_is_the_first_non_empty_one() {
        let mut state = StreamState::new(false);
        let events = [
            r#"{"model":"","choices":[]}"#,
            r#"{"model":"a","choices":[]}"#,
            r#"{"model":"b","choices":[]}"#,
        ];
        assert_eq!(run(&mut state, &events), Ok(vec![NoText; 3]));
        assert_eq!(state.model(), Some("a"));
    }

    #[test]
    fn chunk_strings_are_borrowed_unless_escaped() {
        let data = r#"{"model":"m","choices":[{"delta":{"content":"plain"}}]}"#;
        let chunk: Chunk<'_> = serde_json::from_str(data).unwrap();
        assert!(matches!(chunk.model, Some(Str(Cow::Borrowed("m")))));
        assert!(matches!(
            chunk.choices.unwrap().text,
            Some(Cow::Borrowed("plain"))
        ));

        let escaped = r#"{"choices":[{"delta":{"content":"a\nb"}}]}"#;
        let chunk: Chunk<'_> = serde_json::from_str(escaped).unwrap();
        assert_eq!(chunk.choices.unwrap().text.as_deref(), Some("a\nb"));
    }

    // -- Error responses ----------------------------------------------------

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
