//! Embeddings and rerank, served in vLLM's shapes (`POST /v1/embeddings {model, input}`, `POST
//! /v1/rerank` and `/rerank {model, query, documents}`) and Hugging Face TEI's (`POST /embed
//! {inputs}` → a bare array of vectors, `POST /rerank {query, texts}` → a bare array of `{index,
//! score}`).
//!
//! A request costs `--pooling-us-per-token` × its input tokens (rerank: each document is scored
//! with the query, so the query counts once per document, as vLLM tokenizes the pairs), slept on
//! the worker; requests do not batch with each other or with generation. Each is recorded: its
//! inputs, input tokens, status and when its answer was produced (`end_us`: the service time).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::openai::ApiError;
use crate::record::{unix_nanos_now, InFlight, RecordBuilder, Recorder};

use super::handlers::{error_response, header_string, unix_secs_now};
use super::{Shared, TRACEPARENT, X_PROBE, X_REQUEST_ID};

/// Components of the deterministic vectors returned.
const EMBEDDING_DIMENSIONS: usize = 8;

/// One text or several, as both APIs accept.
#[derive(Deserialize)]
#[serde(untagged)]
enum Texts {
    One(String),
    Many(Vec<String>),
}

impl Texts {
    fn into_vec(self) -> Vec<String> {
        match self {
            Texts::One(t) => vec![t],
            Texts::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
struct EmbedBody {
    model: Option<String>,
    /// vLLM / OpenAI.
    input: Option<Texts>,
    /// TEI.
    inputs: Option<Texts>,
}

#[derive(Deserialize)]
struct RerankBody {
    model: Option<String>,
    query: String,
    /// vLLM (Jina/Cohere shape).
    documents: Option<Vec<String>>,
    /// TEI.
    texts: Option<Vec<String>>,
}

/// What one request asks for.
struct Work {
    model: Option<String>,
    /// Rerank: the query scored against every input.
    query: Option<String>,
    inputs: Vec<String>,
    /// TEI's bare-array answer.
    tei: bool,
}

fn parse(rerank: bool, body: &[u8]) -> Result<Work, ApiError> {
    let bad = |e: serde_json::Error| ApiError::bad_request(format!("Invalid request: {e}"));
    let work = if rerank {
        let b: RerankBody = serde_json::from_slice(body).map_err(bad)?;
        let tei = b.texts.is_some();
        Work {
            model: b.model,
            query: Some(b.query),
            inputs: b.documents.or(b.texts).unwrap_or_default(),
            tei,
        }
    } else {
        let b: EmbedBody = serde_json::from_slice(body).map_err(bad)?;
        let tei = b.inputs.is_some();
        Work {
            model: b.model,
            query: None,
            inputs: b
                .input
                .or(b.inputs)
                .map(Texts::into_vec)
                .unwrap_or_default(),
            tei,
        }
    };
    if work.inputs.is_empty() {
        return Err(ApiError::bad_request("no inputs to embed or score"));
    }
    Ok(work)
}

/// The input tokens the request costs.
fn input_tokens(shared: &Shared, work: &Work) -> u64 {
    let query = work.query.as_deref().map_or(0, |q| shared.count_tokens(q));
    work.inputs
        .iter()
        .map(|t| shared.count_tokens(t) + query)
        .sum()
}

/// A deterministic score in [0, 1) per document.
fn score(index: usize, text: &str) -> f64 {
    let h = text.bytes().fold(index as u64 + 1, |h, b| {
        h.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    (h % 1000) as f64 / 1000.0
}

fn answer(shared: &Shared, work: &Work, tokens: u64) -> Value {
    let usage = json!({"prompt_tokens": tokens, "total_tokens": tokens});
    let model = &shared.cfg.model_name;
    if work.query.is_some() {
        let mut scored: Vec<(usize, f64)> = work
            .inputs
            .iter()
            .enumerate()
            .map(|(i, t)| (i, score(i, t)))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        if work.tei {
            return json!(scored
                .iter()
                .map(|(i, s)| json!({"index": i, "score": s}))
                .collect::<Vec<_>>());
        }
        let results: Vec<Value> = scored
            .iter()
            .map(|(i, s)| json!({"index": i, "document": {"text": work.inputs[*i]}, "relevance_score": s}))
            .collect();
        return json!({"id": "rerank-sim", "model": model, "usage": usage, "results": results});
    }
    let vectors: Vec<Vec<f64>> = work
        .inputs
        .iter()
        .enumerate()
        .map(|(i, t)| (0..EMBEDDING_DIMENSIONS).map(|d| score(i + d, t)).collect())
        .collect();
    if work.tei {
        return json!(vectors);
    }
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| json!({"index": i, "object": "embedding", "embedding": v}))
        .collect();
    json!({"id": "embd-sim", "object": "list", "created": unix_secs_now(), "model": model,
           "data": data, "usage": usage})
}

async fn serve(
    rerank: bool,
    route: &str,
    req: HttpRequest,
    body: Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let received = Instant::now();
    let headers = req.headers();
    let builder = RecordBuilder::new(
        received,
        unix_nanos_now(),
        route,
        header_string(headers, &X_REQUEST_ID),
        header_string(headers, &TRACEPARENT),
        shared.recorder.enabled(),
    );
    let recorder = if headers.contains_key(&X_PROBE) {
        Arc::new(Recorder::new(false, 0))
    } else {
        shared.recorder.clone()
    };
    let mut log = InFlight::new(recorder, builder);
    let work = parse(rerank, &body).and_then(|w| match &w.model {
        Some(m) if *m != shared.cfg.model_name => Err(ApiError::model_not_found(m)),
        _ => Ok(w),
    });
    let work = match work {
        Ok(w) => w,
        Err(err) => {
            if let Some(r) = log.record() {
                r.set_status(err.status);
            }
            log.finish(Some(Instant::now()), true);
            return error_response(&err);
        }
    };
    let tokens = input_tokens(&shared, &work);
    if let Some(r) = log.record() {
        r.set_prompt_tokens(tokens);
        r.set_inputs(work.inputs.len() as u64);
    }
    let cost = Duration::from_secs_f64(shared.cfg.pooling_us_per_token * tokens as f64 / 1e6);
    tokio::time::sleep_until((received + cost).into()).await;
    let body = answer(&shared, &work, tokens).to_string();
    log.finish(Some(Instant::now()), true);
    let mut response = HttpResponse::Ok()
        .content_type("application/json")
        .body(body);
    if let Some(value) = headers.get(&X_REQUEST_ID) {
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), value.clone());
    }
    response
}

async fn embeddings(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let route = req.path().to_string();
    serve(false, &route, req, body, shared).await
}

async fn rerank(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let route = req.path().to_string();
    serve(true, &route, req, body, shared).await
}

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/embeddings", web::post().to(embeddings))
        .route("/embed", web::post().to(embeddings))
        .route("/v1/rerank", web::post().to(rerank))
        .route("/v2/rerank", web::post().to(rerank))
        .route("/rerank", web::post().to(rerank));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_parse() {
        let w = parse(false, br#"{"model":"m","input":["a","b"]}"#).unwrap();
        assert_eq!((w.inputs.len(), w.tei), (2, false));
        let w = parse(false, br#"{"inputs":"a"}"#).unwrap();
        assert_eq!((w.inputs.len(), w.tei), (1, true));
        let w = parse(true, br#"{"query":"q","documents":["a","b","c"]}"#).unwrap();
        assert_eq!((w.inputs.len(), w.query.as_deref()), (3, Some("q")));
        assert!(parse(true, br#"{"query":"q","texts":["a"]}"#).unwrap().tei);
        assert_eq!(parse(false, br#"{"input":[]}"#).err().unwrap().status, 400);
        assert_eq!(
            parse(true, br#"{"documents":["a"]}"#).err().unwrap().status,
            400
        );
    }
}
