//! What a chat message carries beyond its text: images (sent as OpenAI content parts with
//! base64 data URIs, encoded once before the run), an assistant's tool calls, a tool result's
//! `tool_call_id`; and the tool calls a streamed answer made.

use std::sync::Arc;

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use sinks::images_tools::ImagesTools;

use super::body::Message;
use crate::config::Endpoint;

/// One image input, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInput {
    /// `data:image/png;base64,...`.
    pub data_uri: Arc<str>,
    /// Bytes of the image file (before base64).
    pub bytes: u64,
}

/// A tool call: one an answer streamed, or one sent back as the assistant's turn.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments' JSON text, as streamed.
    pub arguments: String,
}

/// A message's extras; a message without any has none (`Message::extras` is `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageExtras {
    pub images: Vec<ImageInput>,
    /// An assistant turn's tool calls (its content is then usually empty).
    pub tool_calls: Vec<ToolCall>,
    /// A `tool` message: the id of the call it answers.
    pub tool_call_id: Option<String>,
}

/// What a generation body for `endpoint` sends of these messages' images and offered tools,
/// for its record: a completions prompt has no place for either, a Responses body offers no
/// tools (its function-tool events are not read).
pub fn sent_figures(
    endpoint: Endpoint,
    messages: &[Message],
    tools: Option<&serde_json::Value>,
) -> ImagesTools {
    match endpoint {
        Endpoint::Chat => input_figures(messages, tools),
        Endpoint::Responses => input_figures(messages, None),
        Endpoint::Completions | Endpoint::Embeddings | Endpoint::Rerank => ImagesTools::default(),
    }
}

/// The image inputs and offered tools of a request's messages.
pub fn input_figures(messages: &[Message], tools: Option<&serde_json::Value>) -> ImagesTools {
    let images = messages
        .iter()
        .filter_map(|m| m.extras.as_deref())
        .flat_map(|e| &e.images);
    let (count, bytes) = images.fold((0u32, 0u64), |(n, b), i| (n + 1, b + i.bytes));
    ImagesTools {
        image_count: count,
        image_bytes: bytes,
        tool_definitions: tools
            .and_then(|t| t.as_array())
            .map_or(0, |t| u32::try_from(t.len()).unwrap_or(u32::MAX)),
        ..ImagesTools::default()
    }
}

/// Which API's content parts [`Parts`] writes.
#[derive(Clone, Copy)]
pub(super) enum PartsShape {
    /// `{"type": "text", "text"}` and `{"type": "image_url", "image_url": {"url"}}`.
    Chat,
    /// `{"type": "input_text", "text"}` and `{"type": "input_image", "image_url"}`.
    Responses,
}

/// A message's text and images as content parts.
pub(super) struct Parts<'a>(pub &'a str, pub &'a [ImageInput], pub PartsShape);

impl Serialize for Parts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Url<'a> {
            url: &'a str,
        }
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Part<'a> {
            Text { text: &'a str },
            ImageUrl { image_url: Url<'a> },
            InputText { text: &'a str },
            InputImage { image_url: &'a str },
        }
        let Parts(text, images, shape) = *self;
        let mut seq = s.serialize_seq(None)?;
        if !text.is_empty() {
            seq.serialize_element(&match shape {
                PartsShape::Chat => Part::Text { text },
                PartsShape::Responses => Part::InputText { text },
            })?;
        }
        for image in images {
            let url = &*image.data_uri;
            seq.serialize_element(&match shape {
                PartsShape::Chat => Part::ImageUrl {
                    image_url: Url { url },
                },
                PartsShape::Responses => Part::InputImage { image_url: url },
            })?;
        }
        seq.end()
    }
}

impl Serialize for ToolCall {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Function<'a> {
            name: &'a str,
            arguments: &'a str,
        }
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("type", "function")?;
        let function = Function {
            name: &self.name,
            arguments: &self.arguments,
        };
        map.serialize_entry("function", &function)?;
        map.end()
    }
}

/// `{"role", "content"}`; with images the content is a list of parts, with tool calls and no
/// text it is null (as OpenAI sends it), and `tool_calls` / `tool_call_id` follow.
impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("role", &self.role)?;
        let Some(extras) = self.extras.as_deref() else {
            map.serialize_entry("content", &self.content)?;
            return map.end();
        };
        if !extras.images.is_empty() {
            let parts = Parts(&self.content, &extras.images, PartsShape::Chat);
            map.serialize_entry("content", &parts)?;
        } else if self.content.is_empty() && !extras.tool_calls.is_empty() {
            map.serialize_entry("content", &None::<&str>)?;
        } else {
            map.serialize_entry("content", &self.content)?;
        }
        if !extras.tool_calls.is_empty() {
            map.serialize_entry("tool_calls", &extras.tool_calls)?;
        }
        if let Some(id) = &extras.tool_call_id {
            map.serialize_entry("tool_call_id", id)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::openai::responses_input::ResponsesInput;
    use serde_json::json;

    fn with(role: &str, content: &str, extras: MessageExtras) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            extras: Some(Arc::new(extras)),
        }
    }

    /// A system prompt, a user turn with two images, the assistant's tool call, its result.
    fn conversation() -> [Message; 4] {
        let image = ImageInput {
            data_uri: "data:image/png;base64,AAAA".into(),
            bytes: 3,
        };
        let call = ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: "{\"city\": \"Paris\"}".into(),
        };
        [
            Message {
                role: "system".into(),
                content: "Be brief.".into(),
                extras: None,
            },
            with(
                "user",
                "What is this?",
                MessageExtras {
                    images: vec![image.clone(), image],
                    ..MessageExtras::default()
                },
            ),
            with(
                "assistant",
                "",
                MessageExtras {
                    tool_calls: vec![call],
                    ..MessageExtras::default()
                },
            ),
            with(
                "tool",
                "21 C",
                MessageExtras {
                    tool_call_id: Some("call_1".into()),
                    ..MessageExtras::default()
                },
            ),
        ]
    }

    #[test]
    fn chat_messages_carry_image_parts_tool_calls_and_ids() {
        let messages = conversation();
        assert_eq!(
            serde_json::to_value(&messages).unwrap(),
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                    "type": "function", "function": {"name": "get_weather",
                    "arguments": "{\"city\": \"Paris\"}"}}]},
                {"role": "tool", "content": "21 C", "tool_call_id": "call_1"},
            ])
        );
        let figures = input_figures(&messages, Some(&json!([{"type": "function"}])));
        assert_eq!(
            (
                figures.image_count,
                figures.image_bytes,
                figures.tool_definitions
            ),
            (2, 6, 1)
        );
    }

    #[test]
    fn responses_input_has_image_parts_and_function_items() {
        assert_eq!(
            serde_json::to_value(ResponsesInput(&conversation())).unwrap(),
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ]},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather",
                 "arguments": "{\"city\": \"Paris\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "21 C"},
            ])
        );
    }
}
