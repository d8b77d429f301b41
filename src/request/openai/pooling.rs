//! Embeddings and rerank: their request bodies and what their one JSON answer says.
//!
//! vLLM (and OpenAI for embeddings): `POST /v1/embeddings {model, input: [..]}` → `{data:
//! [{embedding}], usage: {prompt_tokens}}`; `POST /v1/rerank {model, query, documents: [..]}` →
//! `{results: [{index, relevance_score}], usage}`. Hugging Face TEI answers `/embed {inputs}`
//! with a bare array of vectors and `/rerank {query, texts}` with a bare array of `{index,
//! score}`: both answer shapes are read, so a proxy that maps the routes works too.

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct EmbeddingsBody<'a> {
    model: &'a str,
    input: &'a [&'a str],
}

#[derive(Serialize)]
struct RerankBody<'a> {
    model: &'a str,
    query: &'a str,
    documents: &'a [&'a str],
}

/// `POST /v1/embeddings`: one request embeds every input.
pub fn embeddings_body(model: &str, inputs: &[&str]) -> Bytes {
    let body = EmbeddingsBody {
        model,
        input: inputs,
    };
    Bytes::from(serde_json::to_vec(&body).expect("a request body always serializes"))
}

/// `POST /v1/rerank`: the documents scored against the query.
pub fn rerank_body(model: &str, query: &str, documents: &[&str]) -> Bytes {
    let body = RerankBody {
        model,
        query,
        documents,
    };
    Bytes::from(serde_json::to_vec(&body).expect("a request body always serializes"))
}

/// What a successful answer said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolingAnswer {
    /// Embeddings or scores returned.
    pub results: u64,
    /// `usage.prompt_tokens` (else `usage.total_tokens`), when reported.
    pub prompt_tokens: Option<u64>,
    pub model: Option<String>,
}

#[derive(Deserialize)]
struct PoolingUsage {
    prompt_tokens: Option<u64>,
    total_tokens: Option<u64>,
}

/// The vLLM/OpenAI object, or TEI's bare array. Vectors and scores are skipped unread.
#[derive(Deserialize)]
#[serde(untagged)]
enum Wire {
    Object {
        data: Option<Vec<IgnoredAny>>,
        results: Option<Vec<IgnoredAny>>,
        usage: Option<PoolingUsage>,
        model: Option<String>,
    },
    Bare(Vec<IgnoredAny>),
}

/// Reads an answer that should hold `expected` results: fewer or more is an error (the
/// request did not do the work it is counted for).
pub fn parse_answer(body: &[u8], expected: u64) -> Result<PoolingAnswer, String> {
    let quote = || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    let wire: Wire = serde_json::from_slice(body)
        .map_err(|e| format!("unexpected answer ({e}): {}", quote()))?;
    let answer = match wire {
        Wire::Object {
            data,
            results,
            usage,
            model,
        } => {
            let Some(items) = data.or(results) else {
                return Err(format!("no `data` or `results` in the answer: {}", quote()));
            };
            PoolingAnswer {
                results: items.len() as u64,
                prompt_tokens: usage.and_then(|u| u.prompt_tokens.or(u.total_tokens)),
                model,
            }
        }
        Wire::Bare(items) => PoolingAnswer {
            results: items.len() as u64,
            prompt_tokens: None,
            model: None,
        },
    };
    if answer.results != expected {
        return Err(format!(
            "the answer holds {} results for {expected} inputs",
            answer.results
        ));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn bodies_have_vllm_shapes() {
        let e: Value = serde_json::from_slice(&embeddings_body("m", &["a", "b"])).unwrap();
        assert_eq!(e, json!({"model": "m", "input": ["a", "b"]}));
        let r: Value = serde_json::from_slice(&rerank_body("m", "q", &["d1"])).unwrap();
        assert_eq!(r, json!({"model": "m", "query": "q", "documents": ["d1"]}));
    }

    #[test]
    fn answers_of_vllm_and_tei_are_read() {
        let vllm = br#"{"id":"e","object":"list","model":"m","data":[{"index":0,"embedding":[0.1,0.2]},{"index":1,"embedding":[0.3,0.4]}],"usage":{"prompt_tokens":7,"total_tokens":7}}"#;
        assert_eq!(
            parse_answer(vllm, 2),
            Ok(PoolingAnswer {
                results: 2,
                prompt_tokens: Some(7),
                model: Some("m".into())
            })
        );
        let rerank =
            br#"{"results":[{"index":1,"relevance_score":0.9}],"usage":{"total_tokens":12}}"#;
        assert_eq!(parse_answer(rerank, 1).unwrap().prompt_tokens, Some(12));
        let tei = br#"[[0.1,0.2],[0.3,0.4],[0.5,0.6]]"#;
        assert_eq!(parse_answer(tei, 3).unwrap().results, 3);
        let tei_rerank = br#"[{"index":0,"score":0.5}]"#;
        assert_eq!(parse_answer(tei_rerank, 1).unwrap().prompt_tokens, None);
    }

    #[test]
    fn wrong_answers_are_errors() {
        assert!(parse_answer(br#"{"data":[]}"#, 1)
            .unwrap_err()
            .contains("0 results for 1 inputs"));
        assert!(parse_answer(br#"{"object":"list"}"#, 1)
            .unwrap_err()
            .contains("no `data`"));
        assert!(parse_answer(b"not json", 1)
            .unwrap_err()
            .contains("unexpected answer"));
    }
}
