//! The OpenAI wire format as vLLM speaks it: request parsing and validation, response chunks,
//! errors. Pure functions; the HTTP layer is in `server.rs`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chat_extras::{ChatExtras, ImageUrl, WireTool, WireToolCall};
use super::engine::FinishReason;
pub use crate::api_error::ApiError;

/// The generation routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    /// OpenAI's Responses API (`crate::responses`).
    Responses,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
            Endpoint::Responses => "/v1/responses",
        }
    }

    fn id_prefix(self) -> &'static str {
        match self {
            Endpoint::Chat => "chatcmpl-",
            Endpoint::Completions => "cmpl-",
            Endpoint::Responses => "resp_",
        }
    }

    fn chunk_object(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat.completion.chunk",
            Endpoint::Completions | Endpoint::Responses => "text_completion",
        }
    }

    fn full_object(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat.completion",
            Endpoint::Completions | Endpoint::Responses => "text_completion",
        }
    }
}

/// The prompt as the simulator needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Text pieces whose tokens are counted and summed (chat: message contents).
    Texts {
        parts: Vec<String>,
        /// What the prefix cache hashes: role-tagged messages (chat) or the prompt.
        cache_key: Vec<u8>,
    },
    /// Token ids given by the client (completions).
    TokenIds(Vec<u32>),
}

/// A validated generation request (max_tokens still to be defaulted against the prompt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerationRequest {
    pub model: Option<String>,
    pub prompt: Prompt,
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: Option<u32>,
    pub min_tokens: u32,
    pub ignore_eos: bool,
    /// Images, tools and tool turns (chat).
    pub extras: Box<ChatExtras>,
    /// Responses API: the stored response this one continues.
    pub previous_response_id: Option<String>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// Fields every route shares (vLLM's sampling extensions included).
#[derive(Deserialize)]
pub(crate) struct Common {
    model: Option<String>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<u32>,
    /// The Responses API calls it `max_output_tokens`.
    #[serde(alias = "max_output_tokens")]
    max_completion_tokens: Option<u32>,
    min_tokens: Option<u32>,
    ignore_eos: Option<bool>,
    n: Option<u32>,
}

#[derive(Deserialize)]
struct ChatBody {
    messages: Vec<Message>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<Value>,
    #[serde(flatten)]
    common: Common,
}

#[derive(Deserialize)]
pub(crate) struct Message {
    pub(crate) role: String,
    pub(crate) content: Option<Content>,
    pub(crate) tool_call_id: Option<String>,
    pub(crate) tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Deserialize)]
pub(crate) struct ContentPart {
    text: Option<String>,
    pub(crate) image_url: Option<ImageUrl>,
}

#[derive(Deserialize)]
struct CompletionBody {
    prompt: Value,
    #[serde(flatten)]
    common: Common,
}

/// A chat body's messages as (role, content), for records; empty when it does not parse.
pub fn received_messages(body: &[u8]) -> Vec<(String, String)> {
    #[derive(Deserialize)]
    struct Only {
        messages: Vec<Message>,
    }
    let Ok(only) = serde_json::from_slice::<Only>(body) else {
        return Vec::new();
    };
    only.messages
        .into_iter()
        .map(|m| (m.role, text_of(m.content)))
        .collect()
}

/// A message's text (its text parts joined).
fn text_of(content: Option<Content>) -> String {
    match content {
        None => String::new(),
        Some(Content::Text(text)) => text,
        Some(Content::Parts(pieces)) => pieces.into_iter().filter_map(|p| p.text).collect(),
    }
}

/// Parses and validates a request body for `endpoint`.
pub fn parse_request(endpoint: Endpoint, body: &[u8]) -> Result<GenerationRequest, ApiError> {
    let (prompt, common) = match endpoint {
        Endpoint::Chat => {
            let body: ChatBody = from_json(body)?;
            let extras = body.messages.iter().map(Message::extras);
            let extras =
                ChatExtras::read(extras, body.tools.as_deref(), body.tool_choice.as_ref())?;
            let mut request = build_request(chat_prompt(body.messages)?, body.common)?;
            request.extras = Box::new(extras);
            return Ok(request);
        }
        Endpoint::Completions => {
            let body: CompletionBody = from_json(body)?;
            (completion_prompt(body.prompt)?, body.common)
        }
        Endpoint::Responses => {
            let body: crate::responses::ResponsesBody = from_json(body)?;
            let messages = body.messages()?;
            let extras = ChatExtras::read(messages.iter().map(Message::extras), None, None)?;
            let mut request = build_request(chat_prompt(messages)?, body.common)?;
            request.extras = Box::new(extras);
            request.previous_response_id = body.previous_response_id;
            return Ok(request);
        }
    };
    build_request(prompt, common)
}

fn from_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Invalid request: {e}")))
}

pub(crate) fn chat_prompt(messages: Vec<Message>) -> Result<Prompt, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::bad_request("`messages` must not be empty"));
    }
    let mut parts = Vec::with_capacity(messages.len());
    let mut cache_key = Vec::new();
    for message in messages {
        // An image is part of the prefix: the same text with another image is not cached.
        for url in message.extras().image_urls {
            cache_key.extend_from_slice(url.as_bytes());
        }
        let text = text_of(message.content);
        // Role-tagged so that the same text under another role is another prefix.
        cache_key.extend_from_slice(message.role.as_bytes());
        cache_key.push(b'\n');
        cache_key.extend_from_slice(text.as_bytes());
        cache_key.push(b'\n');
        parts.push(text);
    }
    Ok(Prompt::Texts { parts, cache_key })
}

fn completion_prompt(prompt: Value) -> Result<Prompt, ApiError> {
    const BATCH: &str = "batched prompts are not supported by the simulated server";
    match prompt {
        Value::String(text) => Ok(text_prompt(text)),
        Value::Array(items) if items.is_empty() => Err(ApiError::bad_request("`prompt` is empty")),
        Value::Array(items) => match &items[0] {
            Value::String(_) | Value::Array(_) if items.len() > 1 => {
                Err(ApiError::bad_request(BATCH))
            }
            Value::String(text) => Ok(text_prompt(text.clone())),
            Value::Array(ids) => token_ids(ids),
            _ => token_ids(&items),
        },
        _ => Err(ApiError::bad_request(
            "`prompt` must be a string, a list of token ids, or a one-element list of either",
        )),
    }
}

fn text_prompt(text: String) -> Prompt {
    let cache_key = text.as_bytes().to_vec();
    Prompt::Texts {
        parts: vec![text],
        cache_key,
    }
}

fn token_ids(items: &[Value]) -> Result<Prompt, ApiError> {
    items
        .iter()
        .map(|v| v.as_u64().and_then(|id| u32::try_from(id).ok()))
        .collect::<Option<Vec<u32>>>()
        .map(Prompt::TokenIds)
        .ok_or_else(|| ApiError::bad_request("`prompt` token ids must be non-negative integers"))
}

fn build_request(prompt: Prompt, common: Common) -> Result<GenerationRequest, ApiError> {
    if common.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_request(
            "`n` other than 1 is not supported by the simulated server",
        ));
    }
    // max_completion_tokens is the newer OpenAI name; it wins when both are given.
    let max_tokens = common.max_completion_tokens.or(common.max_tokens);
    if max_tokens == Some(0) {
        return Err(ApiError::bad_request("`max_tokens` must be at least 1"));
    }
    let min_tokens = common.min_tokens.unwrap_or(0);
    if let Some(max) = max_tokens.filter(|&max| min_tokens > max) {
        return Err(ApiError::bad_request(format!(
            "`min_tokens` ({min_tokens}) must be less than or equal to `max_tokens` ({max})"
        )));
    }
    let stream = common.stream.unwrap_or(false);
    let include_usage = common
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    Ok(GenerationRequest {
        model: common.model,
        prompt,
        stream,
        include_usage,
        max_tokens,
        min_tokens,
        ignore_eos: common.ignore_eos.unwrap_or(false),
        extras: Box::default(),
        previous_response_id: None,
    })
}

/// Resolves `max_tokens` against the context length, as vLLM does: absent → the server default
/// capped by the room left; prompt + max_tokens beyond the context → 400.
pub fn resolve_max_tokens(
    requested: Option<u32>,
    min_tokens: u32,
    prompt_tokens: u64,
    default_max_tokens: u32,
    max_model_len: u64,
) -> Result<u32, ApiError> {
    let room = max_model_len.saturating_sub(prompt_tokens);
    let max = match requested {
        Some(max) => max,
        None => u32::try_from(room.min(u64::from(default_max_tokens))).unwrap_or(u32::MAX),
    };
    if max == 0 || u64::from(max) > room {
        return Err(ApiError::bad_request(format!(
            "This model's maximum context length is {max_model_len} tokens. However, you \
             requested {} tokens ({prompt_tokens} in the messages, {max} in the completion). \
             Please reduce the length of the messages or completion.",
            prompt_tokens.saturating_add(u64::from(max)),
        )));
    }
    if min_tokens > max {
        return Err(ApiError::bad_request(format!(
            "`min_tokens` ({min_tokens}) must be less than or equal to `max_tokens` ({max})"
        )));
    }
    Ok(max)
}

/// Word pieces the simulated model "generates": one common BPE token each, so a client that
/// re-tokenizes the text gets about one token per chunk.
const WORDS: &[&str] = &[
    " the", " model", " of", " and", " to", " a", " in", " is", " that", " for", " it", " with",
    " as", " on", " was", " this", " be", " by", " are", " at", " from", " or", " an", " we",
    " can", " not", " more", " time", " data", " one", " new", " which",
];

/// The text of token `index` of a request (`salt` varies the text between requests).
pub fn token_text(salt: u64, index: u32) -> &'static str {
    let i = salt.wrapping_add(u64::from(index)) % WORDS.len() as u64;
    WORDS[i as usize]
}

/// Token accounting reported in `usage`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    /// Of `completion_tokens`, reasoning (`--reasoning-tokens`); reported when set.
    pub reasoning_tokens: Option<u64>,
}

// Wire structs: derived Serialize keeps vLLM's key order (serde_json's Value would sort keys).

#[derive(Serialize)]
struct UsageJson {
    prompt_tokens: u64,
    total_tokens: u64,
    completion_tokens: u64,
    prompt_tokens_details: PromptTokensDetails,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Serialize)]
struct CompletionTokensDetails {
    reasoning_tokens: u64,
}

#[derive(Serialize)]
struct PromptTokensDetails {
    cached_tokens: u64,
}

impl From<Usage> for UsageJson {
    fn from(u: Usage) -> Self {
        UsageJson {
            prompt_tokens: u.prompt_tokens,
            total_tokens: u.prompt_tokens.saturating_add(u.completion_tokens),
            completion_tokens: u.completion_tokens,
            prompt_tokens_details: PromptTokensDetails {
                cached_tokens: u.cached_tokens,
            },
            completion_tokens_details: u
                .reasoning_tokens
                .map(|reasoning_tokens| CompletionTokensDetails { reasoning_tokens }),
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a, C> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: C,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageJson>,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    content: &'a str,
}

#[derive(Serialize)]
struct ResponseMessage<'a> {
    role: &'static str,
    content: &'a str,
    tool_calls: [(); 0],
}

/// One choice; exactly one of `delta`, `message`, `text` is set, depending on the response.
#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<Delta<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<ResponseMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    logprobs: (),
    finish_reason: Option<&'static str>,
    /// vLLM sets it (to null for EOS / length) only once the sequence has finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_reason: Option<()>,
}

impl<'a> Choice<'a> {
    fn new(finish: Option<FinishReason>) -> Self {
        Choice {
            index: 0,
            delta: None,
            message: None,
            text: None,
            logprobs: (),
            finish_reason: finish.map(FinishReason::as_str),
            stop_reason: finish.map(|_| ()),
        }
    }
}

/// Formats the events and bodies of one response (same id, created and model throughout).
#[derive(Clone, Debug)]
pub struct ResponseFormat {
    endpoint: Endpoint,
    id: String,
    created: u64,
    model: String,
    /// The Responses API's events (sequence numbers, stored conversation).
    responses: Option<Box<crate::responses::ResponsesEvents>>,
}

/// The stream terminator.
pub const DONE_EVENT: &str = "data: [DONE]\n\n";

impl ResponseFormat {
    /// `request_id`: the id vLLM derives the response id from (x-request-id, or random).
    pub fn new(endpoint: Endpoint, request_id: &str, created: u64, model: &str) -> Self {
        ResponseFormat {
            endpoint,
            id: format!("{}{request_id}", endpoint.id_prefix()),
            created,
            model: model.to_string(),
            responses: None,
        }
    }

    /// A Responses API answer (its events and store).
    pub fn with_responses(mut self, events: crate::responses::ResponsesEvents) -> Self {
        self.responses = Some(Box::new(events));
        self
    }

    fn head(&self) -> crate::responses::Head<'_> {
        crate::responses::Head {
            id: &self.id,
            created: self.created,
            model: &self.model,
        }
    }

    /// The terminator, if the stream has one (the Responses API's ends with its last event).
    pub fn done_event(&self) -> Option<&'static str> {
        self.responses.is_none().then_some(DONE_EVENT)
    }

    pub fn endpoint(&self) -> Endpoint {
        self.endpoint
    }

    fn to_json<C: Serialize>(
        &self,
        object: &'static str,
        choices: C,
        usage: Option<Usage>,
    ) -> String {
        let envelope = Envelope {
            id: &self.id,
            object,
            created: self.created,
            model: &self.model,
            choices,
            usage: usage.map(UsageJson::from),
        };
        // Plain structs of strings and integers: serialization cannot fail.
        serde_json::to_string(&envelope).unwrap_or_default()
    }

    pub(crate) fn event<C: Serialize>(&self, choices: C, usage: Option<Usage>) -> String {
        let json = self.to_json(self.endpoint.chunk_object(), choices, usage);
        format!("data: {json}\n\n")
    }

    /// The first chat event: role only, empty content (chat only).
    pub fn role_event(&self) -> String {
        if let Some(r) = &self.responses {
            return r.opening(&self.head());
        }
        let choice = Choice {
            delta: Some(Delta {
                role: Some("assistant"),
                content: "",
            }),
            ..Choice::new(None)
        };
        self.event([choice], None)
    }

    /// One token; the last one carries the finish reason, as in vLLM.
    pub fn token_event(&self, text: &str, finish: Option<FinishReason>) -> String {
        if let Some(r) = &self.responses {
            return r.delta(&self.head(), text, finish);
        }
        let mut choice = Choice::new(finish);
        match self.endpoint {
            Endpoint::Chat => {
                choice.delta = Some(Delta {
                    role: None,
                    content: text,
                })
            }
            Endpoint::Completions | Endpoint::Responses => choice.text = Some(text),
        }
        self.event([choice], None)
    }

    /// A Responses API chunk with reasoning: its reasoning delta, then its answer's (each when
    /// not empty); `None` for chat and completions.
    pub fn responses_reasoning_event(
        &self,
        reasoning: &str,
        answer: &str,
        finish: Option<FinishReason>,
    ) -> Option<String> {
        let r = self.responses.as_ref()?;
        let head = self.head();
        let mut event = String::new();
        if !reasoning.is_empty() {
            let ends_here = if answer.is_empty() { finish } else { None };
            event.push_str(&r.reasoning_delta(&head, reasoning, ends_here));
        }
        if !answer.is_empty() {
            event.push_str(&r.delta(&head, answer, finish));
        }
        Some(event)
    }

    /// The usage event (`stream_options.include_usage`): no choices.
    pub fn usage_event(&self, usage: Usage) -> String {
        if let Some(r) = &self.responses {
            return r.closing(&self.head(), usage);
        }
        self.event([(); 0], Some(usage))
    }

    /// The non-streaming response body.
    pub fn full_body(&self, text: &str, finish: FinishReason, usage: Usage) -> String {
        if let Some(r) = &self.responses {
            return r.body(&self.head(), text, finish, usage);
        }
        let mut choice = Choice::new(Some(finish));
        match self.endpoint {
            Endpoint::Chat => {
                choice.message = Some(ResponseMessage {
                    role: "assistant",
                    content: text,
                    tool_calls: [],
                })
            }
            Endpoint::Completions | Endpoint::Responses => choice.text = Some(text),
        }
        self.to_json(self.endpoint.full_object(), [choice], Some(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_event(event: &str) -> Value {
        let payload = event
            .strip_prefix("data: ")
            .and_then(|e| e.strip_suffix("\n\n"))
            .expect("SSE framing");
        serde_json::from_str(payload).expect("JSON payload")
    }

    #[test]
    fn parses_chat_with_vllm_extensions() {
        let body = br#"{"model":"m","messages":[{"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":" there"}]}],
            "stream":true,"stream_options":{"include_usage":true},"max_tokens":12,
            "min_tokens":3,"ignore_eos":true,"temperature":0.5}"#;
        let req = parse_request(Endpoint::Chat, body).unwrap();
        assert_eq!(req.model.as_deref(), Some("m"));
        assert!(req.stream && req.include_usage && req.ignore_eos);
        assert_eq!((req.max_tokens, req.min_tokens), (Some(12), 3));
        let Prompt::Texts { parts, cache_key } = req.prompt else {
            panic!("text prompt expected")
        };
        assert_eq!(parts, vec!["be brief".to_string(), "hi there".to_string()]);
        assert_eq!(cache_key, b"system\nbe brief\nuser\nhi there\n");
    }

    #[test]
    fn defaults_and_aliases() {
        let req = parse_request(
            Endpoint::Chat,
            br#"{"messages":[{"role":"user","content":"x"}],"stream":null,"max_tokens":5,"max_completion_tokens":7}"#,
        )
        .unwrap();
        assert!(!req.stream && !req.include_usage && !req.ignore_eos);
        assert_eq!(req.max_tokens, Some(7));
        assert_eq!(req.model, None);
    }

    #[test]
    fn parses_completion_prompts() {
        let text = parse_request(Endpoint::Completions, br#"{"prompt":"abc"}"#).unwrap();
        assert!(matches!(text.prompt, Prompt::Texts { .. }));
        let one = parse_request(Endpoint::Completions, br#"{"prompt":["abc"]}"#).unwrap();
        assert_eq!(one.prompt, text.prompt);
        let ids = parse_request(Endpoint::Completions, br#"{"prompt":[1,2,3]}"#).unwrap();
        assert_eq!(ids.prompt, Prompt::TokenIds(vec![1, 2, 3]));
        let nested = parse_request(Endpoint::Completions, br#"{"prompt":[[4,5]]}"#).unwrap();
        assert_eq!(nested.prompt, Prompt::TokenIds(vec![4, 5]));
    }

    #[test]
    fn rejects_bad_requests() {
        let bad: &[(Endpoint, &[u8])] = &[
            (Endpoint::Chat, b"{not json"),
            (Endpoint::Chat, br#"{"messages":[]}"#),
            (Endpoint::Chat, br#"{"model":"m"}"#),
            (
                Endpoint::Chat,
                br#"{"messages":[{"role":"user","content":"x"}],"max_tokens":-1}"#,
            ),
            (
                Endpoint::Chat,
                br#"{"messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
            ),
            (
                Endpoint::Chat,
                br#"{"messages":[{"role":"user","content":"x"}],"n":2}"#,
            ),
            (
                Endpoint::Chat,
                br#"{"messages":[{"role":"user","content":"x"}],"max_tokens":2,"min_tokens":3}"#,
            ),
            (Endpoint::Completions, br#"{"prompt":["a","b"]}"#),
            (Endpoint::Completions, br#"{"prompt":[1,-2]}"#),
            (Endpoint::Completions, br#"{"prompt":5}"#),
            (Endpoint::Completions, br#"{"prompt":[]}"#),
            (Endpoint::Completions, b"[]"),
        ];
        for (endpoint, body) in bad {
            let err = parse_request(*endpoint, body).expect_err(&String::from_utf8_lossy(body));
            assert_eq!(err.status, 400);
            let json: Value = serde_json::from_str(&err.to_json()).unwrap();
            assert_eq!(json["error"]["code"], 400);
            assert_eq!(json["error"]["type"], "BadRequestError");
        }
    }

    #[test]
    fn max_tokens_against_context() {
        assert_eq!(resolve_max_tokens(None, 0, 100, 256, 1000), Ok(256));
        assert_eq!(resolve_max_tokens(None, 0, 900, 256, 1000), Ok(100));
        assert_eq!(resolve_max_tokens(Some(50), 0, 900, 256, 1000), Ok(50));
        assert!(resolve_max_tokens(Some(101), 0, 900, 256, 1000).is_err());
        assert!(resolve_max_tokens(None, 0, 1000, 256, 1000).is_err());
        assert!(resolve_max_tokens(None, 200, 900, 256, 1000).is_err());
    }

    #[test]
    fn chat_events_like_vllm() {
        let f = ResponseFormat::new(Endpoint::Chat, "abc", 1700000000, "sim");
        let role = parse_event(&f.role_event());
        assert_eq!(role["id"], "chatcmpl-abc");
        assert_eq!(role["object"], "chat.completion.chunk");
        assert_eq!(role["created"], 1700000000);
        assert_eq!(role["model"], "sim");
        assert_eq!(
            role["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        // Byte for byte as vLLM writes it (key order included).
        assert_eq!(
            f.token_event(" the", None),
            "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\
             \"created\":1700000000,\"model\":\"sim\",\"choices\":[{\"index\":0,\
             \"delta\":{\"content\":\" the\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        );
        let token = parse_event(&f.token_event(" the", None));
        assert_eq!(token["choices"][0]["delta"], json!({"content": " the"}));
        assert_eq!(token["choices"][0]["finish_reason"], Value::Null);
        let last = parse_event(&f.token_event(" end", Some(FinishReason::Length)));
        assert_eq!(last["choices"][0]["finish_reason"], "length");
        let usage = parse_event(&f.usage_event(Usage {
            prompt_tokens: 10,
            completion_tokens: 4,
            cached_tokens: 2,
            reasoning_tokens: None,
        }));
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(
            usage["usage"],
            json!({"prompt_tokens": 10, "total_tokens": 14, "completion_tokens": 4,
                   "prompt_tokens_details": {"cached_tokens": 2}})
        );
    }

    #[test]
    fn completion_events_and_bodies() {
        let f = ResponseFormat::new(Endpoint::Completions, "x\"y", 1, "sim");
        let token = parse_event(&f.token_event(" a", Some(FinishReason::Stop)));
        assert_eq!(token["id"], "cmpl-x\"y");
        assert_eq!(token["object"], "text_completion");
        assert_eq!(token["choices"][0]["text"], " a");
        assert_eq!(token["choices"][0]["finish_reason"], "stop");
        let body: Value =
            serde_json::from_str(&f.full_body(" a b", FinishReason::Stop, Usage::default()))
                .unwrap();
        assert_eq!(body["choices"][0]["text"], " a b");
        assert_eq!(body["usage"]["total_tokens"], 0);

        let chat = ResponseFormat::new(Endpoint::Chat, "1", 1, "sim");
        let body: Value =
            serde_json::from_str(&chat.full_body("hi", FinishReason::Length, Usage::default()))
                .unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["choices"][0]["message"]["content"], "hi");
        assert_eq!(body["choices"][0]["finish_reason"], "length");
    }

    #[test]
    fn token_texts_are_short_word_pieces() {
        for i in 0..100 {
            let t = token_text(12345, i);
            assert!(t.starts_with(' ') && t.len() <= 7);
        }
        assert_ne!(token_text(0, 0), token_text(0, 1));
    }
}
