//! One streamed chunk as parsed: borrowed strings, `choices` folded while read, the error forms
//! servers send. Only what `StreamState` reads is deserialized.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, value::MapAccessDeserializer, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A JSON string, borrowed from the event's data unless it has escapes.
/// (`#[serde(borrow)]` on `Option<Cow<str>>` would always copy; on this
/// newtype it borrows.)
#[derive(Deserialize)]
#[serde(transparent)]
pub(super) struct Str<'a>(#[serde(borrow)] pub(super) Cow<'a, str>);

/// One streamed chunk; every other field is skipped unread.
#[derive(Deserialize)]
pub(super) struct Chunk<'a> {
    #[serde(borrow)]
    pub(super) model: Option<Str<'a>>,
    #[serde(borrow)]
    pub(super) choices: Option<Choices<'a>>,
    pub(super) usage: Option<WireUsage>,
    /// llama.cpp's timings, for its prompt-cache count.
    pub(super) timings: Option<Timings>,
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
    pub(super) fn server_error(&self) -> Option<Option<Cow<'a, str>>> {
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
pub(super) struct WireUsage {
    pub(super) prompt_tokens: Option<u64>,
    pub(super) completion_tokens: Option<u64>,
    pub(super) prompt_tokens_details: Option<PromptTokensDetails>,
    pub(super) completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Deserialize)]
pub(super) struct CompletionTokensDetails {
    pub(super) reasoning_tokens: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct PromptTokensDetails {
    pub(super) cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct Timings {
    pub(super) cache_n: Option<u64>,
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
    /// A streamed tool call's pieces; read only when present (no allocation otherwise).
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

/// One `delta.tool_calls[]` entry: the call's position, and its id and name (first piece) or
/// a piece of its arguments.
#[derive(Deserialize)]
pub(super) struct ToolCallDelta<'a> {
    pub(super) index: Option<usize>,
    #[serde(borrow)]
    pub(super) id: Option<Str<'a>>,
    #[serde(borrow)]
    pub(super) function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
pub(super) struct FunctionDelta<'a> {
    #[serde(borrow)]
    pub(super) name: Option<Str<'a>>,
    #[serde(borrow)]
    pub(super) arguments: Option<Str<'a>>,
}

/// A chunk's `choices`, folded while parsed: the answer text and the reasoning text of all
/// choices (we ask for one choice; more are tolerated), apart, and the last finish reason.
#[derive(Default)]
pub(super) struct Choices<'a> {
    /// Answer text: a chat delta's `content`, a completion's `text`.
    pub(super) text: Option<Cow<'a, str>>,
    /// Reasoning text: `reasoning_content` or `reasoning`, whichever the server uses.
    pub(super) reasoning: Option<Cow<'a, str>>,
    pub(super) finish_reason: Option<Cow<'a, str>>,
    /// Tool-call pieces of all choices (empty, unallocated, in a plain text stream).
    pub(super) tool_calls: Vec<ToolCallDelta<'a>>,
}

impl<'a> Choices<'a> {
    fn absorb(&mut self, choice: Choice<'a>) {
        if let Some(reason) = choice.finish_reason {
            self.finish_reason = Some(reason.0);
        }
        let (reasoning, content) = choice.delta.map_or(([None, None], None), |d| {
            if let Some(calls) = d.tool_calls {
                self.tool_calls.extend(calls);
            }
            ([d.reasoning_content, d.reasoning], d.content)
        });
        for piece in reasoning.into_iter().flatten() {
            push_piece(&mut self.reasoning, piece.0);
        }
        for piece in [content, choice.text].into_iter().flatten() {
            push_piece(&mut self.text, piece.0);
        }
    }
}

/// Keeps a single piece borrowed; only joins (and so allocates) when a chunk carries several
/// of the same kind.
fn push_piece<'a>(slot: &mut Option<Cow<'a, str>>, piece: Cow<'a, str>) {
    if piece.is_empty() {
        return;
    }
    match slot {
        None => *slot = Some(piece),
        Some(text) => text.to_mut().push_str(&piece),
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
