//! Embeddings and rerank bodies: the prepared prompts taken `--batch-size` at a time (pure).
//!
//! Embeddings: each body embeds `batch` consecutive prompts. Rerank: each body scores `batch`
//! consecutive prompts (the documents) against the prompt before them (the query). Prompts are
//! taken in order, wrapping around when the workload has fewer than one body needs, so every
//! body carries exactly `batch` inputs.

use std::sync::Arc;

use crate::request::client::PreparedBody;
use crate::request::openai::pooling::{embeddings_body, rerank_body};
use crate::workload::PreparedRequest;

/// The bodies of a run of `rerank` (else embeddings) requests over `requests`.
pub fn pooling_bodies(
    model: &str,
    requests: &[Arc<PreparedRequest>],
    batch: u64,
    rerank: bool,
) -> Vec<Arc<PreparedBody>> {
    let batch = batch.max(1) as usize;
    // Each body takes the query too when reranking.
    let per_body = batch + usize::from(rerank);
    if requests.is_empty() {
        return Vec::new();
    }
    let bodies = (requests.len() / per_body).max(1);
    (0..bodies)
        .map(|b| {
            let take: Vec<&PreparedRequest> = (0..per_body)
                .map(|i| requests[(b * per_body + i) % requests.len()].as_ref())
                .collect();
            let texts: Vec<&str> = take.iter().map(|r| r.prompt.as_str()).collect();
            let body = if rerank {
                rerank_body(model, texts[0], &texts[1..])
            } else {
                embeddings_body(model, &texts)
            };
            Arc::new(PreparedBody {
                body,
                prompt_tokens: take.iter().map(|r| r.prompt_tokens).sum(),
                max_tokens: None,
                images_tools: Default::default(),
                inputs: batch as u64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn request(prompt: &str, tokens: u64) -> Arc<PreparedRequest> {
        Arc::new(PreparedRequest {
            messages: Vec::new(),
            prompt: prompt.into(),
            prompt_tokens: tokens,
            max_tokens: Some(10),
            later_turns: Vec::new(),
            tools: None,
        })
    }

    fn json(body: &PreparedBody) -> Value {
        serde_json::from_slice(&body.body).unwrap()
    }

    #[test]
    fn embeddings_take_prompts_batch_by_batch() {
        let reqs: Vec<_> = (0..5).map(|i| request(&format!("p{i}"), i + 1)).collect();
        let bodies = pooling_bodies("m", &reqs, 2, false);
        assert_eq!(bodies.len(), 2);
        assert_eq!(json(&bodies[1])["input"], serde_json::json!(["p2", "p3"]));
        assert_eq!((bodies[1].prompt_tokens, bodies[1].inputs), (3 + 4, 2));
        assert_eq!(bodies[1].max_tokens, None);
    }

    #[test]
    fn rerank_scores_documents_against_the_prompt_before_them() {
        let reqs: Vec<_> = (0..2).map(|i| request(&format!("p{i}"), 10)).collect();
        // Fewer prompts than a body needs: they wrap around.
        let bodies = pooling_bodies("m", &reqs, 3, true);
        assert_eq!(bodies.len(), 1);
        let b = json(&bodies[0]);
        assert_eq!(b["query"], "p0");
        assert_eq!(b["documents"], serde_json::json!(["p1", "p0", "p1"]));
        assert_eq!((bodies[0].prompt_tokens, bodies[0].inputs), (40, 3));
        assert!(pooling_bodies("m", &[], 3, true).is_empty());
    }
}
