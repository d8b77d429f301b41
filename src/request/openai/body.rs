//! The streaming request bodies (chat, completions, responses), serialized once per prompt.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One chat message, as sent in `messages` (serialized in `extras.rs`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Message {
    pub role: String,
    pub content: String,
    /// Images, tool calls, a tool result's call id; `None` for a plain text message.
    #[serde(skip)]
    pub extras: Option<Arc<super::extras::MessageExtras>>,
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
    /// Chat: OpenAI function-tool definitions, as the dataset gave them.
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a serde_json::Value>,
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
    /// `--reasoning-effort` (chat; the Responses API's is `reasoning.effort`): `low`, `medium`
    /// or `high`; not sent unless asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
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
    reasoning_effort: Option<&str>,
) -> Bytes {
    chat_body_with_tools(
        model,
        messages,
        None,
        max_tokens,
        ignore_eos,
        reasoning_effort,
    )
}

/// A streaming chat body offering `tools` (see [`chat_body`]).
pub fn chat_body_with_tools(
    model: &str,
    messages: &[Message],
    tools: Option<&serde_json::Value>,
    max_tokens: Option<u64>,
    ignore_eos: bool,
    reasoning_effort: Option<&str>,
) -> Bytes {
    RequestBody {
        model,
        messages: Some(messages),
        tools,
        prompt: None,
        max_tokens,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        ignore_eos: ignore_eos && max_tokens.is_some(),
        reasoning_effort,
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
        tools: None,
        prompt: Some(prompt),
        max_tokens,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        ignore_eos: ignore_eos && max_tokens.is_some(),
        reasoning_effort: None,
    }
    .to_bytes()
}

/// The Responses API's streaming body: `input` as its items (messages, images as
/// `input_image` parts, tool calls and results as function items), the length as
/// `max_output_tokens`. A later turn of a conversation the server keeps sends only its new input
/// and the previous answer's id.
#[derive(Serialize)]
struct ResponsesBody<'a> {
    model: &'a str,
    input: super::responses_input::ResponsesInput<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_response_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u64>,
    stream: bool,
    #[serde(skip_serializing_if = "is_false")]
    ignore_eos: bool,
    /// `--reasoning-effort`, in the Responses API's shape; not sent unless asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<Reasoning<'a>>,
}

#[derive(Serialize)]
struct Reasoning<'a> {
    effort: &'a str,
}

/// A streaming `/v1/responses` body (see [`ResponsesBody`]; `ignore_eos` and `reasoning_effort`
/// as in [`chat_body`]).
pub fn responses_body(
    model: &str,
    input: &[Message],
    previous_response_id: Option<&str>,
    max_tokens: Option<u64>,
    ignore_eos: bool,
    reasoning_effort: Option<&str>,
) -> Bytes {
    let body = ResponsesBody {
        model,
        input: super::responses_input::ResponsesInput(input),
        previous_response_id,
        max_output_tokens: max_tokens,
        stream: true,
        ignore_eos: ignore_eos && max_tokens.is_some(),
        reasoning: reasoning_effort.map(|effort| Reasoning { effort }),
    };
    Bytes::from(serde_json::to_vec(&body).expect("a request body always serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(body: &Bytes) -> Value {
        serde_json::from_slice(body).expect("valid JSON body")
    }

    fn messages() -> Vec<Message> {
        vec![
            Message {
                role: "system".into(),
                content: "Be brief.".into(),
                extras: None,
            },
            Message {
                role: "user".into(),
                content: "Say \"hi\"\nin 2 languages: é, 日本".into(),
                extras: None,
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
            Some("low"),
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
                "reasoning_effort": "low",
            })
        );
        // Compact, in a stable key order.
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.starts_with(
            r#"{"model":"meta-llama/Llama-3.1-8B-Instruct","messages":[{"role":"system""#
        ));
        assert!(text.ends_with(r#""max_tokens":128,"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true,"reasoning_effort":"low"}"#));
    }

    #[test]
    fn chat_body_omits_unset_options() {
        let body = chat_body("m", &messages()[..1], None, false, None);
        assert_eq!(
            parse(&body),
            json!({
                "model": "m",
                "messages": [{"role": "system", "content": "Be brief."}],
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
        let empty = chat_body("m", &[], Some(0), false, None);
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
    fn responses_body_sends_input_and_the_previous_response() {
        let first = parse(&responses_body("m", &messages(), None, Some(8), true, None));
        assert_eq!(
            first,
            json!({
                "model": "m",
                "input": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Say \"hi\"\nin 2 languages: é, 日本"},
                ],
                "max_output_tokens": 8,
                "stream": true,
                "ignore_eos": true,
            })
        );
        let later = parse(&responses_body(
            "m",
            &messages()[1..],
            Some("resp_1"),
            None,
            true,
            Some("high"),
        ));
        assert_eq!(later["previous_response_id"], json!("resp_1"));
        assert_eq!(later["reasoning"], json!({"effort": "high"}));
        assert!(first.get("reasoning").is_none());
        assert_eq!(later["input"].as_array().unwrap().len(), 1);
        assert!(later.get("max_output_tokens").is_none() && later.get("ignore_eos").is_none());
    }

    #[test]
    fn message_round_trips() {
        let m = messages();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Vec<Message>>(&json).unwrap(), m);
    }
}
