//! The Responses API's events, as OpenAI and vLLM stream them.

use super::{DataKind, ProtocolErrorKind, ResponsesState};

const CREATED: &str = r#"{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","model":"m","output":[]}}"#;

fn delta(kind: &str, text: &str) -> String {
    format!(
        r#"{{"type":"{kind}","sequence_number":3,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"{text}"}}"#
    )
}

#[test]
fn a_stream_gives_text_usage_id_and_finish() {
    let mut s = ResponsesState::new(true);
    assert_eq!(s.on_data(CREATED), Ok(DataKind::NoText));
    assert_eq!(s.response_id(), Some("resp_1"));
    assert_eq!(s.model(), Some("m"));
    let added = r#"{"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_1","type":"message","role":"assistant","content":[]}}"#;
    assert_eq!(s.on_data(added), Ok(DataKind::NoText));
    for t in [" the", " model"] {
        assert_eq!(
            s.on_data(&delta("response.output_text.delta", t)),
            Ok(DataKind::Text)
        );
    }
    assert_eq!(
        s.on_data(&delta("response.output_text.delta", "")),
        Ok(DataKind::NoText)
    );
    let done = r#"{"type":"response.output_text.done","sequence_number":5,"text":" the model"}"#;
    assert_eq!(s.on_data(done), Ok(DataKind::NoText));
    let completed = r#"{"type":"response.completed","sequence_number":6,"response":{"id":"resp_1","status":"completed","model":"m","output":[{"type":"message","content":[{"type":"output_text","text":" the model"}]}],"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":2,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":14}}}"#;
    assert_eq!(s.on_data(completed), Ok(DataKind::Done));
    assert!(s.saw_done());
    assert_eq!(s.finish_reason(), Some("stop"));
    let u = s.usage().unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.cached_tokens),
        (Some(12), Some(2), Some(4))
    );
    assert_eq!(s.reasoning_tokens(), Some(0));
    assert_eq!(s.text_chunks(), 2);
    assert_eq!(s.take_text(), " the model");
}

#[test]
fn reasoning_is_text_but_not_answer() {
    let mut s = ResponsesState::new(true);
    for kind in [
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
    ] {
        assert_eq!(s.on_data(&delta(kind, "hmm")), Ok(DataKind::Reasoning));
    }
    assert_eq!(
        s.on_data(&delta("response.output_text.delta", "ok")),
        Ok(DataKind::Text)
    );
    assert_eq!((s.text_chunks(), s.reasoning_chunks()), (3, 2));
    assert_eq!(s.take_text(), "ok");
    assert_eq!(s.take_reasoning(), "hmmhmm");
}

#[test]
fn max_output_tokens_is_a_length_finish() {
    let mut s = ResponsesState::new(false);
    let incomplete = r#"{"type":"response.incomplete","sequence_number":9,"response":{"id":"resp_2","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"usage":{"input_tokens":3,"output_tokens":8}}}"#;
    assert_eq!(s.on_data(incomplete), Ok(DataKind::Done));
    assert_eq!(s.finish_reason(), Some("length"));
    assert_eq!(s.usage().unwrap().completion_tokens, Some(8));
    assert_eq!(s.response_id(), Some("resp_2"));
}

#[test]
fn failures_and_errors_end_the_stream() {
    let mut s = ResponsesState::new(false);
    let failed = r#"{"type":"response.failed","sequence_number":4,"response":{"id":"resp_3","status":"failed","error":{"code":"server_error","message":"The engine died."}}}"#;
    let e = s.on_data(failed).unwrap_err();
    assert_eq!(e.kind, ProtocolErrorKind::ServerError);
    assert_eq!(e.message, "The engine died.");
    let error = r#"{"type":"error","sequence_number":1,"code":"rate_limit_exceeded","message":"Slow down.","param":null}"#;
    assert_eq!(s.on_data(error).unwrap_err().message, "Slow down.");
    let chat_style = r#"{"error": {"message": "boom", "code": 500}}"#;
    assert_eq!(s.on_data(chat_style).unwrap_err().message, "boom");
    assert_eq!(
        s.on_data(r#"{"type": 5}"#).unwrap_err().kind,
        ProtocolErrorKind::UnexpectedShape
    );
    assert_eq!(
        s.on_data("{not json").unwrap_err().kind,
        ProtocolErrorKind::InvalidJson
    );
    assert_eq!(s.on_data(" "), Ok(DataKind::NoText));
    assert_eq!(s.on_data("[DONE]"), Ok(DataKind::Done));
}
