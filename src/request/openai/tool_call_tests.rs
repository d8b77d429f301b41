//! Streamed tool calls: vLLM's shape (the first piece carries id, type and name, then pieces of
//! the arguments), several calls by index, and pieces that carry nothing.

use super::*;

use DataKind::{Done, NoText, Text, ToolCall as Call};

/// vLLM with a tool parser (`--enable-auto-tool-choice`), one call in three pieces.
const VLLM_TOOL_CALL: [&str; 6] = [
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"id":"chatcmpl-tool-abc","type":"function","index":0,"function":{"name":"get_weather"}}]},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]},"logprobs":null,"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"logprobs":null,"finish_reason":"tool_calls"}]}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":20,"total_tokens":28,"completion_tokens":8}}"#,
    "[DONE]",
];

#[test]
fn vllm_tool_call_pieces_are_token_times_and_one_call() {
    let mut state = StreamState::new(true);
    let kinds: Result<Vec<DataKind>, _> = VLLM_TOOL_CALL.iter().map(|d| state.on_data(d)).collect();
    assert_eq!(kinds, Ok(vec![NoText, Call, Call, Call, NoText, Done]));
    assert_eq!(state.text_chunks(), 3);
    assert_eq!(state.finish_reason(), Some("tool_calls"));
    assert_eq!(
        state.tool_calls(),
        [ToolCall {
            id: "chatcmpl-tool-abc".into(),
            name: "get_weather".into(),
            arguments: "{\"city\": \"Paris\"}".into(),
        }]
    );
    assert_eq!(state.take_text(), "");
    assert_eq!(state.take_tool_calls().len(), 1);
    assert!(state.tool_calls().is_empty());
}

#[test]
fn several_calls_by_index_and_empty_pieces() {
    let mut state = StreamState::new(true);
    let call = |index: usize, body: &str| {
        format!(
            r#"{{"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":{index},{body}}}]}}}}]}}"#
        )
    };
    let events = [
        call(0, r#""id":"a","function":{"name":"f","arguments":""}"#),
        call(1, r#""id":"b","function":{"name":"g"}"#),
        call(1, r#""function":{"arguments":"{}"}"#),
        // Nothing generated: an id alone, an empty piece.
        call(0, r#""id":"a""#),
        call(0, r#""function":{"arguments":""}"#),
        // A server's absurd index is ignored rather than allocated.
        call(1_000_000, r#""function":{"name":"h"}"#),
        r#"{"choices":[{"index":0,"delta":{"content":"done"}}]}"#.to_string(),
    ];
    let kinds: Vec<DataKind> = events.iter().map(|d| state.on_data(d).unwrap()).collect();
    assert_eq!(kinds, [Call, Call, Call, NoText, NoText, NoText, Text]);
    let calls = state.tool_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].id.as_str(), calls[0].name.as_str()), ("a", "f"));
    assert_eq!(
        (calls[1].name.as_str(), calls[1].arguments.as_str()),
        ("g", "{}")
    );
    assert_eq!(state.take_text(), "done");
}
