//! The routes: each request is decided (served, rejected, or an injected fault), planned and
//! answered, streaming or not; `/v1/models`, `/health`, `/metrics`, `/dcgm/metrics`, 404.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use rand::Rng;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::engine::{Emission, LengthRequest};
use crate::fault::{self, Fault};
use crate::metrics::{RequestTracker, CONTENT_TYPE as METRICS_CONTENT_TYPE};
use crate::openai::{
    parse_request, received_messages, resolve_max_tokens, token_text, ApiError, Endpoint, Prompt,
    ResponseFormat, Usage,
};
use crate::prefix_cache::prompt_block_hashes;
use crate::reasoning;
use crate::record::{unix_nanos_now, InFlight, RecordBuilder, Recorder};

use super::pacing::start_generation;
use super::token_stream::stream_response;
use super::{
    Disposition, Plan, Shared, MODEL_OWNER, TRACEPARENT, X_PROBE, X_REQUEST_ID, X_SIM_FAULT,
    X_SIM_REASONING_TOKENS,
};

/// The one place where per-request behaviour is decided. Fault injection (error statuses,
/// 429s, dropped connections, stalls, malformed events — chosen by flags or per-request headers,
/// both visible here) belongs here as new `Disposition` variants.
fn decide(shared: &Shared, endpoint: Endpoint, headers: &HeaderMap, body: &[u8]) -> Disposition {
    let header = headers.get(&X_SIM_FAULT).and_then(|v| v.to_str().ok());
    let chosen = if headers.contains_key(&X_PROBE) {
        let n = shared
            .probes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n < shared.cfg.fail_probes {
            return Disposition::Injected(503);
        }
        fault::for_probe(&shared.faults, header)
    } else {
        fault::choose(&shared.faults, header, || shared.rng.lock().random())
    };
    let fault = match chosen {
        Ok(f) => f,
        Err(e) => return Disposition::Reject(ApiError::bad_request(format!("x-sim-fault: {e}"))),
    };
    match (plan(shared, endpoint, body), fault) {
        (Err(err), _) => Disposition::Reject(err),
        (Ok(_), Some(Fault::Status(code))) => Disposition::Injected(code),
        (Ok(mut plan), fault) => {
            plan.fault = fault;
            if let Err(e) = think(shared, endpoint, headers, &mut plan) {
                return Disposition::Reject(ApiError::bad_request(e));
            }
            Disposition::Serve(plan)
        }
    }
}

/// A reasoning model thinks first (streaming chat and Responses: their streams have a place for
/// reasoning).
fn think(
    shared: &Shared,
    endpoint: Endpoint,
    headers: &HeaderMap,
    plan: &mut Plan,
) -> Result<(), String> {
    let header = headers
        .get(&X_SIM_REASONING_TOKENS)
        .map(|v| v.to_str().unwrap_or("?"));
    let n = reasoning::reasoning_tokens(shared.cfg.reasoning_tokens, header)
        .map_err(|e| format!("x-sim-reasoning-tokens: {e}"))?;
    let streams_reasoning = matches!(endpoint, Endpoint::Chat | Endpoint::Responses);
    if streams_reasoning && plan.request.stream && n > 0 {
        plan.reasoning_tokens = n;
        reasoning::think_first(&mut plan.length, n);
    }
    Ok(())
}

/// `decide`, on the blocking pool when a tokenizer will count the prompt: tokenizing a long
/// prompt on the worker would stall every other stream it serves.
async fn decide_off_loop(
    shared: &web::Data<Shared>,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: &Bytes,
) -> Disposition {
    if shared.tokenizer.is_none() {
        return decide(shared, endpoint, headers, body);
    }
    let (shared, headers, body) = (shared.clone(), headers.clone(), body.clone());
    web::block(move || decide(&shared, endpoint, &headers, &body))
        .await
        .unwrap_or_else(|_| Disposition::Reject(ApiError::internal("the tokenizer task failed")))
}

/// Parses and validates a request, and counts its prompt.
fn plan(shared: &Shared, endpoint: Endpoint, body: &[u8]) -> Result<Plan, ApiError> {
    let request = parse_request(endpoint, body)?;
    if let Some(model) = request.model.as_deref() {
        if model != shared.cfg.model_name {
            return Err(ApiError::model_not_found(model));
        }
    }
    // Image tokens are prompt tokens: in usage and in the prefill.
    let (mut prompt_tokens, mut cache_key) = match &request.prompt {
        Prompt::Texts { parts, cache_key } => (
            parts.iter().map(|p| shared.count_tokens(p)).sum::<u64>() + request.extras.image_tokens,
            cache_key.clone(),
        ),
        // Token ids: 4 bytes each, so bytes/4 ≈ tokens as for text.
        Prompt::TokenIds(ids) => (
            ids.len() as u64,
            ids.iter().flat_map(|id| id.to_le_bytes()).collect(),
        ),
    };
    // The Responses API continues a stored conversation: served as its history plus the input.
    let conversation = match (endpoint, &request.previous_response_id) {
        (Endpoint::Responses, Some(id)) => {
            let stored = shared
                .responses
                .get(id)
                .ok_or_else(|| crate::responses::unknown_previous(id))?;
            prompt_tokens += stored.tokens;
            cache_key = [stored.key, cache_key].concat();
            Some(cache_key.clone())
        }
        (Endpoint::Responses, None) => Some(cache_key.clone()),
        _ => None,
    }
    .map(|key| crate::responses::Conversation {
        key,
        tokens: prompt_tokens,
    });
    let max_tokens = resolve_max_tokens(
        request.max_tokens,
        request.min_tokens,
        prompt_tokens,
        shared.cfg.default_max_tokens,
        shared.cfg.max_model_len,
    )?;
    let length = LengthRequest {
        max_tokens,
        min_tokens: request.min_tokens,
        ignore_eos: request.ignore_eos,
    };
    Ok(Plan {
        prompt_blocks: prompt_block_hashes(&cache_key, shared.cfg.block_size_bytes),
        prompt_bytes: cache_key.len(),
        prompt_tokens,
        length,
        request,
        fault: None,
        reasoning_tokens: 0,
        conversation,
    })
}

pub(super) fn header_string(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub(super) fn error_response(err: &ApiError) -> HttpResponse {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type("application/json")
        .body(err.to_json())
}

async fn chat_completions(
    req: HttpRequest,
    body: Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    generate(Endpoint::Chat, req, body, shared).await
}

async fn completions(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    generate(Endpoint::Completions, req, body, shared).await
}

async fn responses(req: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    generate(Endpoint::Responses, req, body, shared).await
}

/// Every generation route.
async fn generate(
    endpoint: Endpoint,
    req: HttpRequest,
    body: Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let received = Instant::now();
    let headers = req.headers();
    let builder = RecordBuilder::new(
        received,
        unix_nanos_now(),
        endpoint.path(),
        header_string(headers, &X_REQUEST_ID),
        header_string(headers, &TRACEPARENT),
        shared.recorder.enabled(),
    );
    // The benchmarker's own pre-flight probes are served like any request but are no part of a
    // run: not recorded, not counted, and only faults that strike every request strike them.
    let probe = headers.contains_key(&X_PROBE);
    let recorder = if probe {
        Arc::new(Recorder::new(false, 0))
    } else {
        shared.recorder.clone()
    };
    let mut log = InFlight::new(recorder, builder);
    let mut response = match decide_off_loop(&shared, endpoint, headers, &body).await {
        Disposition::Reject(err) => reject(log, &err),
        Disposition::Injected(code) => {
            if let Some(record) = log.record() {
                record.set_fault(&Fault::Status(code));
            }
            let mut response = reject(log, &ApiError::injected(code));
            if code == 429 {
                response.headers_mut().insert(
                    HeaderName::from_static("retry-after"),
                    HeaderValue::from_static("1"),
                );
            }
            response
        }
        Disposition::Serve(plan) => {
            if let Some(record) = log.record() {
                record.set_stream(plan.request.stream);
                record.set_prompt_tokens(plan.prompt_tokens);
                record.set_extras(&plan.request.extras);
                if let Some(f) = &plan.fault {
                    record.set_fault(f);
                }
                if shared.recorder.enabled() && endpoint == Endpoint::Chat {
                    record.set_messages(received_messages(&body));
                }
                record.set_previous_response_id(plan.request.previous_response_id.clone());
            }
            match plan.fault {
                Some(Fault::EmptyBody) => {
                    log.finish(Some(Instant::now()), true);
                    HttpResponse::Ok()
                        .insert_header((
                            CONTENT_TYPE,
                            HeaderValue::from_static("text/event-stream"),
                        ))
                        .finish()
                }
                Some(Fault::Drop) => {
                    log.finish(Some(Instant::now()), false);
                    let abort = futures_util::stream::once(async {
                        Err::<Bytes, _>(io::Error::other("injected fault: connection dropped"))
                    });
                    HttpResponse::Ok()
                        .insert_header((
                            CONTENT_TYPE,
                            HeaderValue::from_static("text/event-stream"),
                        ))
                        .streaming(abort)
                }
                _ => match start_generation(&shared, &plan, received) {
                    Err(err) => reject(log, &err),
                    Ok(rx) => {
                        let format = response_format(&shared, &plan, endpoint, log.record());
                        let tracker = shared.metrics.track(received);
                        // wrong-content-type: the JSON body of a non-streaming answer.
                        let stream =
                            plan.request.stream && plan.fault != Some(Fault::WrongContentType);
                        if stream {
                            stream_response(rx, format, &plan, &shared, (log, tracker))
                        } else {
                            let sent = (&mut log, tracker);
                            collect_response(rx, format, &plan, &shared, sent).await
                        }
                    }
                },
            }
        }
    };
    // Echo x-request-id, as vLLM does with --enable-request-id-headers.
    if let Some(value) = headers.get(&X_REQUEST_ID) {
        response
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), value.clone());
    }
    response
}

fn reject(mut log: InFlight, err: &ApiError) -> HttpResponse {
    if let Some(record) = log.record() {
        record.set_status(err.status);
    }
    log.finish(Some(Instant::now()), true);
    error_response(err)
}

/// Ids like vLLM: derived from x-request-id when given, random otherwise.
fn response_format(
    shared: &Shared,
    plan: &Plan,
    endpoint: Endpoint,
    record: Option<&mut RecordBuilder>,
) -> ResponseFormat {
    let request_id = record
        .and_then(|r| r.request_id().map(str::to_owned))
        .unwrap_or_else(|| format!("{:032x}", shared.rng.lock().random::<u128>()));
    let format = ResponseFormat::new(
        endpoint,
        &request_id,
        unix_secs_now(),
        &shared.cfg.model_name,
    );
    match &plan.conversation {
        Some(c) => format.with_responses(crate::responses::ResponsesEvents::new(
            shared.responses.clone(),
            c.clone(),
            plan.request.previous_response_id.clone(),
        )),
        None => format,
    }
}

pub(super) fn unix_secs_now() -> u64 {
    u64::try_from(unix_nanos_now() / 1_000_000_000).unwrap_or(u64::MAX)
}

pub(super) fn text_salt(shared: &Shared) -> u64 {
    shared.rng.lock().random()
}

/// Non-streaming: waits for every token, then answers one JSON body.
async fn collect_response(
    mut rx: UnboundedReceiver<Emission>,
    format: ResponseFormat,
    plan: &Plan,
    shared: &Shared,
    (log, mut tracker): (&mut InFlight, RequestTracker),
) -> HttpResponse {
    let salt = text_salt(shared);
    let mut text = String::new();
    let mut usage = Usage {
        prompt_tokens: plan.prompt_tokens,
        ..Usage::default()
    };
    let finish = loop {
        let Some(emission) = rx.recv().await else {
            let err = ApiError::engine_stopped();
            if let Some(record) = log.record() {
                record.set_status(err.status);
            }
            log.finish(Some(Instant::now()), false);
            return error_response(&err);
        };
        let piece = token_text(salt, emission.index);
        text.push_str(piece);
        if let Some(record) = log.record() {
            record.text_sent(piece);
        }
        usage.completion_tokens += 1;
        usage.cached_tokens = emission.cached_tokens;
        if let Some(finish) = emission.finish {
            break finish;
        }
    };
    let body = format.full_body(&text, finish, usage);
    let now = Instant::now();
    log.tokens_sent(usage.completion_tokens, now);
    tracker.tokens_sent(usage.completion_tokens, now);
    tracker.finished(finish, now);
    log.finish(Some(now), true);
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

async fn models(shared: web::Data<Shared>) -> HttpResponse {
    let name = &shared.cfg.model_name;
    let created = unix_secs_now();
    HttpResponse::Ok().json(serde_json::json!({
        "object": "list",
        "data": [{
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": MODEL_OWNER,
            "root": name,
            "parent": null,
            "max_model_len": shared.cfg.max_model_len,
        }],
    }))
}

/// vLLM's Prometheus series (always on).
async fn metrics(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(METRICS_CONTENT_TYPE)
        .body(shared.vllm_metrics())
}

/// The DCGM-exporter-like GPU (`--gpu-metrics`; 404 otherwise).
async fn dcgm_metrics(shared: web::Data<Shared>) -> HttpResponse {
    if !shared.cfg.gpu_metrics {
        return not_found().await;
    }
    let kv_tokens = shared.gauges().kv_tokens;
    HttpResponse::Ok()
        .content_type(METRICS_CONTENT_TYPE)
        .body(shared.metrics.render_dcgm(&shared.hostname, kv_tokens))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn not_found() -> HttpResponse {
    error_response(&ApiError::not_found())
}

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/chat/completions", web::post().to(chat_completions))
        .route("/v1/completions", web::post().to(completions))
        .route("/v1/responses", web::post().to(responses))
        .configure(super::pooling::routes)
        .route("/v1/models", web::get().to(models))
        .route("/health", web::get().to(health))
        .route("/metrics", web::get().to(metrics))
        .route("/dcgm/metrics", web::get().to(dcgm_metrics))
        .default_service(web::to(not_found));
}
