//! What a chat request carries beyond text: image inputs (content parts holding data URIs),
//! tool definitions, and the tool calls and tool results sent back in later turns. Read beside
//! the prompt, decided once (answer with a tool call or with text), kept in the request's record.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::image::{inspect, ImageInfo};
use crate::openai::{ApiError, Content, Message};

/// `{"type": "image_url", "image_url": {"url": "data:..."}}`'s inner object.
#[derive(Deserialize)]
pub(crate) struct ImageUrl {
    pub(crate) url: String,
}

/// An assistant message's `tool_calls[]` entry: only its id is read.
#[derive(Deserialize)]
pub(crate) struct WireToolCall {
    pub(crate) id: Option<String>,
}

/// A `tools[]` entry: `{"type": "function", "function": {"name", ...}}`.
#[derive(Deserialize)]
pub(crate) struct WireTool {
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
}

/// One message's extras, as parsed.
pub(crate) struct MessageExtras<'a> {
    pub(crate) role: &'a str,
    pub(crate) image_urls: Vec<&'a str>,
    pub(crate) tool_call_id: Option<&'a str>,
    pub(crate) tool_calls: &'a [WireToolCall],
}

impl Message {
    /// What the message carries beyond its text.
    pub(crate) fn extras(&self) -> MessageExtras<'_> {
        let parts = match &self.content {
            Some(Content::Parts(parts)) => parts.as_slice(),
            _ => &[],
        };
        MessageExtras {
            role: &self.role,
            image_urls: parts
                .iter()
                .filter_map(|p| Some(p.image_url.as_ref()?.url.as_str()))
                .collect(),
            tool_call_id: self.tool_call_id.as_deref(),
            tool_calls: self.tool_calls.as_deref().unwrap_or_default(),
        }
    }
}

/// A request's extras, and what the server keeps of them in its record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChatExtras {
    pub image_count: u32,
    /// Bytes of the decoded image files.
    pub image_bytes: u64,
    /// Counted in `usage.prompt_tokens` and in the prefill ([`crate::image::image_tokens`]).
    pub image_tokens: u64,
    /// Tools the request offered (`tools`).
    pub tools: u32,
    /// `tool_call_id` of every `tool` message received, in order.
    pub tool_result_ids: Vec<String>,
    /// Ids of the `tool_calls` of every `assistant` message received, in order.
    pub assistant_tool_call_ids: Vec<String>,
    /// The tool the answer calls (set when the request is answered with a tool call).
    #[serde(skip)]
    pub call_tool: Option<String>,
}

impl ChatExtras {
    /// Reads every message's images (a malformed one is a 400) and tool turns, and decides the
    /// answer: a call of the first tool when tools are offered, `tool_choice` is not `"none"` and
    /// the last message is not a tool result; text otherwise.
    pub(crate) fn read<'a>(
        messages: impl Iterator<Item = MessageExtras<'a>>,
        tools: Option<&[WireTool]>,
        tool_choice: Option<&Value>,
    ) -> Result<ChatExtras, ApiError> {
        let mut extras = ChatExtras::default();
        let mut last_role = "";
        for m in messages {
            for url in m.image_urls {
                let ImageInfo { bytes, tokens, .. } = inspect(url)?;
                extras.image_count += 1;
                extras.image_bytes += bytes;
                extras.image_tokens += tokens;
            }
            if let Some(id) = m.tool_call_id {
                extras.tool_result_ids.push(id.to_string());
            }
            extras
                .assistant_tool_call_ids
                .extend(m.tool_calls.iter().filter_map(|c| c.id.clone()));
            last_role = m.role;
        }
        let tools = tools.unwrap_or_default();
        extras.tools = u32::try_from(tools.len()).unwrap_or(u32::MAX);
        let allowed = !matches!(tool_choice, Some(Value::String(s)) if s == "none");
        if allowed && last_role != "tool" {
            extras.call_tool = tools
                .iter()
                .find_map(|t| t.function.as_ref().map(|f| f.name.clone()));
        }
        Ok(extras)
    }
}

/// The tool call an answer streams: its arguments are the generated tokens, one a chunk, so
/// that together they form a JSON object (`{"query": "w1 w2 ..."}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SimToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as streamed, joined.
    pub arguments: String,
}

impl SimToolCall {
    /// `call_<16 hex digits>`, from the response's text salt.
    pub fn new(name: String, salt: u64) -> Self {
        SimToolCall {
            id: format!("call_{salt:016x}"),
            name,
            arguments: String::new(),
        }
    }

    /// The arguments piece of token `word` (`first`/`last` open and close the JSON object).
    pub fn piece(word: &str, first: bool, last: bool) -> String {
        let word = if first { word.trim_start() } else { word };
        let open = if first { "{\"query\": \"" } else { "" };
        let close = if last { "\"}" } else { "" };
        format!("{open}{word}{close}")
    }

    /// The `choices` of one streamed tool-call chunk, as vLLM sends them: the first carries the
    /// call's id, type and name; the last the finish reason `tool_calls`.
    pub fn choices(&self, piece: &str, first: bool, last: bool) -> Value {
        let call = if first {
            serde_json::json!({"index": 0, "id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": piece}})
        } else {
            serde_json::json!({"index": 0, "function": {"arguments": piece}})
        };
        serde_json::json!([{
            "index": 0,
            "delta": {"tool_calls": [call]},
            "logprobs": null,
            "finish_reason": if last { Some("tool_calls") } else { None },
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(names: &[&str]) -> Vec<WireTool> {
        names
            .iter()
            .map(|n| WireTool {
                function: Some(WireFunction {
                    name: n.to_string(),
                }),
            })
            .collect()
    }

    fn message<'a>(role: &'a str, tool_call_id: Option<&'a str>) -> MessageExtras<'a> {
        MessageExtras {
            role,
            image_urls: Vec::new(),
            tool_call_id,
            tool_calls: &[],
        }
    }

    #[test]
    fn calls_the_first_tool_until_a_result_comes_back() {
        let t = tools(&["get_weather", "other"]);
        let first = ChatExtras::read([message("user", None)].into_iter(), Some(&t), None).unwrap();
        assert_eq!(first.call_tool.as_deref(), Some("get_weather"));
        assert_eq!(first.tools, 2);
        let after = [message("user", None), message("tool", Some("call_1"))];
        let answer = ChatExtras::read(after.into_iter(), Some(&t), None).unwrap();
        assert_eq!(answer.call_tool, None);
        assert_eq!(answer.tool_result_ids, ["call_1"]);
        let none = Value::String("none".into());
        let text = ChatExtras::read([message("user", None)].into_iter(), Some(&t), Some(&none));
        assert_eq!(text.unwrap().call_tool, None);
        let plain = ChatExtras::read([message("user", None)].into_iter(), None, None).unwrap();
        assert_eq!(plain, ChatExtras::default());
    }

    #[test]
    fn arguments_pieces_form_a_json_object() {
        let words = [" the", " model", " of"];
        let joined: String = words
            .iter()
            .enumerate()
            .map(|(i, w)| SimToolCall::piece(w, i == 0, i + 1 == words.len()))
            .collect();
        let v: Value = serde_json::from_str(&joined).unwrap();
        assert_eq!(v["query"], "the model of");
        assert_eq!(SimToolCall::piece(" a", true, true), "{\"query\": \"a\"}");
        let call = SimToolCall::new("f".into(), 255);
        assert_eq!(call.id, "call_00000000000000ff");
        let c = call.choices("{", true, false);
        assert_eq!(c[0]["delta"]["tool_calls"][0]["function"]["name"], "f");
        assert_eq!(c[0]["finish_reason"], Value::Null);
        assert_eq!(
            call.choices("}", false, true)[0]["finish_reason"],
            "tool_calls"
        );
    }
}
