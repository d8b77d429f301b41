//! A conversation as the Responses API's `input` items: messages (their images as
//! `input_image` parts), an assistant's tool calls as `function_call` items and tool results as
//! `function_call_output` items, as OpenAI's API takes them (tested with chat's shape in
//! `extras.rs`).

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

use super::body::Message;
use super::extras::{Parts, PartsShape};

/// `input`: every message as its items.
pub struct ResponsesInput<'a>(pub &'a [Message]);

impl Serialize for ResponsesInput<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for m in self.0 {
            let Some(extras) = m.extras.as_deref() else {
                seq.serialize_element(&Item::Text(m))?;
                continue;
            };
            if let Some(call_id) = &extras.tool_call_id {
                seq.serialize_element(&Item::CallOutput(call_id, &m.content))?;
                continue;
            }
            if !m.content.is_empty() || extras.tool_calls.is_empty() {
                seq.serialize_element(&Item::Message(m))?;
            }
            for call in &extras.tool_calls {
                seq.serialize_element(&Item::Call(call))?;
            }
        }
        seq.end()
    }
}

enum Item<'a> {
    /// A message without extras: `{"role", "content": text}`.
    Text(&'a Message),
    /// A message with images: its content as parts.
    Message(&'a Message),
    Call(&'a super::extras::ToolCall),
    /// (call id, output).
    CallOutput(&'a str, &'a str),
}

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match *self {
            Item::Text(m) => {
                map.serialize_entry("role", &m.role)?;
                map.serialize_entry("content", &m.content)?;
            }
            Item::Message(m) => {
                let images = m.extras.as_deref().map_or(&[][..], |e| &e.images[..]);
                map.serialize_entry("role", &m.role)?;
                if images.is_empty() {
                    map.serialize_entry("content", &m.content)?;
                } else {
                    let parts = Parts(&m.content, images, PartsShape::Responses);
                    map.serialize_entry("content", &parts)?;
                }
            }
            Item::Call(call) => {
                map.serialize_entry("type", "function_call")?;
                map.serialize_entry("call_id", &call.id)?;
                map.serialize_entry("name", &call.name)?;
                map.serialize_entry("arguments", &call.arguments)?;
            }
            Item::CallOutput(call_id, output) => {
                map.serialize_entry("type", "function_call_output")?;
                map.serialize_entry("call_id", call_id)?;
                map.serialize_entry("output", output)?;
            }
        }
        map.end()
    }
}
