//! `StreamState` against captured streams of llama.cpp, vLLM, TGI and OpenAI, and odd chunks.

use std::borrow::Cow;

use super::chunk::{Chunk, Str};
use super::*;

/// Feeds every event's data; returns the kinds, or the first error.
fn run(state: &mut StreamState, events: &[&str]) -> Result<Vec<DataKind>, ProtocolError> {
    events.iter().map(|d| state.on_data(d)).collect()
}

use DataKind::{Done, NoText, Reasoning, Text};

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
            reasoning_tokens: None,
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
            reasoning_tokens: None,
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
            reasoning_tokens: None,
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
    let first =
        r#"{"choices":[],"usage":{"prompt_tokens":7,"prompt_tokens_details":{"cached_tokens":4}}}"#;
    let second = r#"{"choices":[],"usage":{"completion_tokens":9,"prompt_tokens_details":null}}"#;
    assert_eq!(run(&mut state, &[first, second]), Ok(vec![NoText, NoText]));
    assert_eq!(
        state.usage(),
        Some(&Usage {
            prompt_tokens: Some(7),
            completion_tokens: Some(9),
            cached_tokens: Some(4),
            reasoning_tokens: None,
        })
    );
}

#[test]
fn reasoning_is_text_apart_from_the_answer() {
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
        Ok(vec![NoText, Reasoning, Reasoning, Text, NoText])
    );
    assert_eq!(state.text_chunks(), 3);
    assert_eq!(state.reasoning_chunks(), 2);
    assert_eq!(state.take_text(), " 42");
    assert_eq!(state.take_reasoning(), "Let me think. Hmm.");
    assert!(!state.saw_done());
}

#[test]
fn one_chunk_may_carry_reasoning_and_answer_and_reasoning_tokens() {
    let events = [
        r#"{"choices":[{"index":0,"delta":{"reasoning":" a b","content":" c"},"finish_reason":"length"}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":3,"completion_tokens_details":{"reasoning_tokens":2}}}"#,
    ];
    let mut state = StreamState::new(true);
    assert_eq!(run(&mut state, &events), Ok(vec![Text, NoText]));
    assert_eq!((state.text_chunks(), state.reasoning_chunks()), (1, 1));
    assert_eq!(state.usage().unwrap().reasoning_tokens, Some(2));
    assert_eq!(state.take_reasoning(), " a b");
    assert_eq!(state.take_text(), " c");
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
            reasoning_tokens: Some(0),
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
    let data =
        r#"{"error":null,"object":"chat.completion.chunk","choices":[{"delta":{"content":"x"}}]}"#;
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

/// The first chunk's share of the output: its bytes of the streamed text, or exact when the
/// server reported usage in it (vLLM's `continuous_usage_stats`).
#[test]
fn the_first_chunk_s_share_is_of_bytes_or_exact_from_its_usage() {
    let mut state = StreamState::new(true);
    run(&mut state, &LLAMA_CPP_CHAT).unwrap();
    // "\"></" (4 bytes) of "\"></ spaceIm" (12).
    assert_eq!(state.first_chunk().share(3), 333_333);
    let mut exact = StreamState::new(true);
    run(
        &mut exact,
        &[
            r#"{"choices":[{"index":0,"delta":{"content":"a b c d"}}],"usage":{"completion_tokens":4,"prompt_tokens":3}}"#,
            r#"{"choices":[{"index":0,"delta":{"content":" e"}}],"usage":{"completion_tokens":5,"prompt_tokens":3}}"#,
        ],
    )
    .unwrap();
    assert_eq!(
        exact.first_chunk().share(5),
        800_000,
        "4 of 5 tokens, exactly"
    );
    assert_eq!(StreamState::new(true).first_chunk().share(5), 0, "no chunk");
}
