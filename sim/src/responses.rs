//! The Responses API (`POST /v1/responses`) as OpenAI streams it: the request's `input` (a string
//! or messages), `max_output_tokens`, `previous_response_id`; the events `response.created`,
//! `response.in_progress`, `response.output_item.added`, `response.content_part.added`, one
//! `response.output_text.delta` per token, then the `.done` events and `response.completed`
//! (`response.incomplete` when `max_output_tokens` ended it), each with its `sequence_number`.
//!
//! Conversation state: a finished response is stored by id (its whole conversation, as the
//! prefix-cache key and a token count) in a bounded store, oldest evicted first; a request naming
//! it in `previous_response_id` is served as that conversation plus its new input. An unknown id
//! is a 400, as OpenAI answers. Pure, but for the store's lock.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::engine::FinishReason;
use crate::openai::{ApiError, Common, Message, Usage};

/// Responses kept for `previous_response_id`; the oldest are forgotten beyond it.
pub const STORE_CAPACITY: usize = 4096;

/// A `/v1/responses` body.
#[derive(Deserialize)]
pub(crate) struct ResponsesBody {
    input: Value,
    pub(crate) previous_response_id: Option<String>,
    instructions: Option<String>,
    #[serde(flatten)]
    pub(crate) common: Common,
}

impl ResponsesBody {
    /// The new input's messages, in chat's shape (the stored conversation is added by the
    /// server).
    pub(crate) fn messages(&self) -> Result<Vec<Message>, ApiError> {
        let mut messages: Vec<Message> = match &self.input {
            Value::String(text) => vec![message("user", text)?],
            Value::Array(items) => {
                let chat: Vec<Value> = items.iter().map(chat_message).collect();
                serde_json::from_value(Value::Array(chat))
                    .map_err(|e| ApiError::bad_request(format!("Invalid `input`: {e}")))?
            }
            _ => return Err(ApiError::bad_request("`input` must be a string or a list")),
        };
        if let Some(instructions) = &self.instructions {
            messages.insert(0, message("system", instructions)?);
        }
        Ok(messages)
    }
}

/// An input item as the chat message it stands for: a message's `input_text`/`output_text` and
/// `input_image` parts become `text` and `image_url` parts, a `function_call` an assistant turn
/// with that tool call, a `function_call_output` a `tool` message. Anything else is left as it
/// is (and refused by the message parser if it is no message).
fn chat_message(item: &Value) -> Value {
    match item["type"].as_str() {
        Some("function_call") => json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": item["call_id"], "type": "function",
             "function": {"name": item["name"], "arguments": item["arguments"]}}]}),
        Some("function_call_output") => {
            json!({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
        }
        _ => match item["content"].as_array() {
            Some(parts) => {
                let parts: Vec<Value> = parts.iter().map(chat_part).collect();
                json!({"role": item["role"], "content": parts})
            }
            None => item.clone(),
        },
    }
}

fn chat_part(part: &Value) -> Value {
    match part["type"].as_str() {
        Some("input_text" | "output_text") => json!({"type": "text", "text": part["text"]}),
        Some("input_image") => {
            json!({"type": "image_url", "image_url": {"url": part["image_url"]}})
        }
        _ => part.clone(),
    }
}

fn message(role: &str, text: &str) -> Result<Message, ApiError> {
    serde_json::from_value(json!({"role": role, "content": text}))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// OpenAI's answer to an unknown `previous_response_id`.
pub fn unknown_previous(id: &str) -> ApiError {
    ApiError::bad_request(format!("Previous response with id '{id}' not found."))
}

/// A stored response: its whole conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversation {
    /// Role-tagged text, as the prefix cache hashes prompts.
    pub key: Vec<u8>,
    /// Its tokens: every input and output so far.
    pub tokens: u64,
}

/// Responses by id, at most [`STORE_CAPACITY`], the oldest evicted first.
#[derive(Debug, Default)]
pub struct ResponseStore {
    inner: Mutex<(HashMap<String, Conversation>, VecDeque<String>)>,
}

impl ResponseStore {
    pub fn get(&self, id: &str) -> Option<Conversation> {
        self.inner.lock().0.get(id).cloned()
    }

    pub fn put(&self, id: String, conversation: Conversation) {
        let mut inner = self.inner.lock();
        let (map, order) = &mut *inner;
        if map.insert(id.clone(), conversation).is_none() {
            order.push_back(id);
        }
        while order.len() > STORE_CAPACITY {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().0.len()
    }
}

/// One response's events: the sequence numbers, the text so far, and where the finished
/// conversation is stored.
#[derive(Clone, Debug)]
pub struct ResponsesEvents {
    store: Arc<ResponseStore>,
    /// The conversation this response answers (stored history + new input).
    conversation: Conversation,
    previous_response_id: Option<String>,
    progress: RefCell<Progress>,
}

#[derive(Clone, Debug, Default)]
struct Progress {
    sequence: u64,
    text: String,
    finish: Option<FinishReason>,
}

impl ResponsesEvents {
    pub fn new(
        store: Arc<ResponseStore>,
        conversation: Conversation,
        previous_response_id: Option<String>,
    ) -> Self {
        ResponsesEvents {
            store,
            conversation,
            previous_response_id,
            progress: RefCell::new(Progress::default()),
        }
    }

    fn event(&self, kind: &str, mut data: Value) -> String {
        let mut p = self.progress.borrow_mut();
        data["type"] = json!(kind);
        data["sequence_number"] = json!(p.sequence);
        p.sequence += 1;
        format!("event: {kind}\ndata: {data}\n\n")
    }

    fn response(&self, head: &Head<'_>, status: &str, usage: Option<Usage>) -> Value {
        let p = self.progress.borrow();
        let output = if status == "in_progress" {
            json!([])
        } else {
            json!([item(head.id, "completed", &p.text)])
        };
        let incomplete = (status == "incomplete").then(|| json!({"reason": "max_output_tokens"}));
        json!({
            "id": head.id,
            "object": "response",
            "created_at": head.created,
            "status": status,
            "model": head.model,
            "output": output,
            "previous_response_id": self.previous_response_id,
            "incomplete_details": incomplete,
            "usage": usage.map(usage_json),
        })
    }

    /// Everything before the first token.
    pub fn opening(&self, head: &Head<'_>) -> String {
        let response = self.response(head, "in_progress", None);
        let item_id = item_id(head.id);
        [
            self.event("response.created", json!({"response": response})),
            self.event("response.in_progress", json!({"response": response})),
            self.event(
                "response.output_item.added",
                json!({"output_index": 0, "item": item(head.id, "in_progress", "")}),
            ),
            self.event(
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0,
                       "part": part("")}),
            ),
        ]
        .concat()
    }

    /// One token's delta.
    pub fn delta(&self, head: &Head<'_>, text: &str, finish: Option<FinishReason>) -> String {
        {
            let mut p = self.progress.borrow_mut();
            p.text.push_str(text);
            p.finish = finish.or(p.finish);
        }
        self.event(
            "response.output_text.delta",
            json!({"item_id": item_id(head.id), "output_index": 0, "content_index": 0,
                   "delta": text}),
        )
    }

    /// One chunk's reasoning (`response.reasoning_text.delta`, in a reasoning item of its own);
    /// `finish` when the sequence ends inside the reasoning (no answer).
    pub fn reasoning_delta(
        &self,
        head: &Head<'_>,
        text: &str,
        finish: Option<FinishReason>,
    ) -> String {
        {
            let mut p = self.progress.borrow_mut();
            p.finish = finish.or(p.finish);
        }
        let item_id = format!("rs_{}", head.id.trim_start_matches("resp_"));
        self.event(
            "response.reasoning_text.delta",
            json!({"item_id": item_id, "output_index": 0, "content_index": 0, "delta": text}),
        )
    }

    /// The `.done` events and the final one with `usage`; the response is stored.
    pub fn closing(&self, head: &Head<'_>, usage: Usage) -> String {
        let (status, kind) = self.finished(head.id, usage);
        let text = self.progress.borrow().text.clone();
        let item_id = item_id(head.id);
        [
            self.event(
                "response.output_text.done",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0, "text": text}),
            ),
            self.event(
                "response.content_part.done",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0,
                       "part": part(&text)}),
            ),
            self.event(
                "response.output_item.done",
                json!({"output_index": 0, "item": item(head.id, "completed", &text)}),
            ),
            self.event(
                kind,
                json!({"response": self.response(head, status, Some(usage))}),
            ),
        ]
        .concat()
    }

    /// The non-streaming body; the response is stored.
    pub fn body(&self, head: &Head<'_>, text: &str, finish: FinishReason, usage: Usage) -> String {
        {
            let mut p = self.progress.borrow_mut();
            p.text = text.to_string();
            p.finish = Some(finish);
        }
        let (status, _) = self.finished(head.id, usage);
        self.response(head, status, Some(usage)).to_string()
    }

    /// Stores the finished conversation; its status and final event.
    fn finished(&self, id: &str, usage: Usage) -> (&'static str, &'static str) {
        let p = self.progress.borrow();
        let mut key = self.conversation.key.clone();
        key.extend_from_slice(b"assistant\n");
        key.extend_from_slice(p.text.as_bytes());
        key.push(b'\n');
        let tokens = self.conversation.tokens + usage.completion_tokens;
        self.store.put(id.to_string(), Conversation { key, tokens });
        match p.finish {
            Some(FinishReason::Length) => ("incomplete", "response.incomplete"),
            _ => ("completed", "response.completed"),
        }
    }
}

/// What every event of a response repeats.
pub struct Head<'a> {
    pub id: &'a str,
    pub created: u64,
    pub model: &'a str,
}

fn item_id(response_id: &str) -> String {
    format!("msg_{}", response_id.trim_start_matches("resp_"))
}

fn part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

fn item(response_id: &str, status: &str, text: &str) -> Value {
    let content = if status == "in_progress" {
        json!([])
    } else {
        json!([part(text)])
    };
    json!({"id": item_id(response_id), "type": "message", "status": status,
           "role": "assistant", "content": content})
}

fn usage_json(u: Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens.unwrap_or(0)},
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(text: &str) -> Vec<Value> {
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let (head, data) = e.split_once("\ndata: ").unwrap();
                let v: Value = serde_json::from_str(data).unwrap();
                assert_eq!(head.strip_prefix("event: "), v["type"].as_str());
                v
            })
            .collect()
    }

    #[test]
    fn a_stream_numbers_its_events_and_stores_the_conversation() {
        let store = Arc::new(ResponseStore::default());
        let conversation = Conversation {
            key: b"user\nhi\n".to_vec(),
            tokens: 5,
        };
        let ev = ResponsesEvents::new(store.clone(), conversation, Some("resp_0".into()));
        let head = Head {
            id: "resp_1",
            created: 7,
            model: "m",
        };
        let mut all = events(&ev.opening(&head));
        all.extend(events(&ev.delta(&head, " a", None)));
        all.extend(events(&ev.delta(&head, " b", Some(FinishReason::Length))));
        let usage = Usage {
            prompt_tokens: 5,
            completion_tokens: 2,
            cached_tokens: 1,
            reasoning_tokens: None,
        };
        all.extend(events(&ev.closing(&head, usage)));
        let seq: Vec<u64> = all
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(seq, (0..all.len() as u64).collect::<Vec<_>>());
        assert_eq!(all[0]["type"], "response.created");
        assert_eq!(all[0]["response"]["previous_response_id"], "resp_0");
        assert_eq!(all[4]["delta"], " a");
        let last = all.last().unwrap();
        assert_eq!(last["type"], "response.incomplete");
        assert_eq!(last["response"]["usage"]["input_tokens"], 5);
        assert_eq!(last["response"]["usage"]["output_tokens"], 2);
        assert_eq!(last["response"]["output"][0]["content"][0]["text"], " a b");
        let stored = store.get("resp_1").unwrap();
        assert_eq!(stored.tokens, 7);
        assert_eq!(stored.key, b"user\nhi\nassistant\n a b\n".to_vec());
    }

    #[test]
    fn the_store_forgets_the_oldest() {
        let store = ResponseStore::default();
        for i in 0..STORE_CAPACITY + 2 {
            store.put(
                format!("r{i}"),
                Conversation {
                    key: Vec::new(),
                    tokens: i as u64,
                },
            );
        }
        assert_eq!(store.len(), STORE_CAPACITY);
        assert!(store.get("r0").is_none() && store.get("r1").is_none());
        assert_eq!(store.get("r2").unwrap().tokens, 2);
    }

    #[test]
    fn input_is_a_string_or_messages() {
        use crate::openai::{chat_prompt, Prompt};
        let body: ResponsesBody =
            serde_json::from_str(r#"{"input": "hello", "instructions": "be brief"}"#).unwrap();
        let Prompt::Texts { parts, cache_key } = chat_prompt(body.messages().unwrap()).unwrap()
        else {
            panic!("texts")
        };
        assert_eq!(parts, vec!["be brief".to_string(), "hello".to_string()]);
        assert_eq!(cache_key, b"system\nbe brief\nuser\nhello\n".to_vec());
        let body: ResponsesBody = serde_json::from_str(
            r#"{"input": [{"role": "user", "content": [{"type": "input_text", "text": "x"}]}],
                "previous_response_id": "resp_9", "max_output_tokens": 4}"#,
        )
        .unwrap();
        assert_eq!(body.previous_response_id.as_deref(), Some("resp_9"));
        assert!(chat_prompt(body.messages().unwrap()).is_ok());
        let bad: ResponsesBody = serde_json::from_str(r#"{"input": 3}"#).unwrap();
        assert_eq!(bad.messages().err().map(|e| e.status), Some(400));
        assert_eq!(unknown_previous("resp_x").status, 400);
    }

    #[test]
    fn images_and_function_items_read_as_chat_messages() {
        let body: ResponsesBody = serde_json::from_str(
            r#"{"input": [
                {"role": "user", "content": [{"type": "input_text", "text": "what is it?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "42"}]}"#,
        )
        .unwrap();
        let messages = body.messages().unwrap();
        let extras: Vec<_> = messages.iter().map(Message::extras).collect();
        assert_eq!(extras[0].role, "user");
        assert_eq!(extras[0].image_urls, vec!["data:image/png;base64,AAAA"]);
        assert_eq!(
            (extras[1].role, extras[1].tool_calls.len()),
            ("assistant", 1)
        );
        assert_eq!(
            (extras[2].role, extras[2].tool_call_id),
            ("tool", Some("call_1"))
        );
    }
}
