//! One embeddings or rerank request: a JSON body sent, one JSON answer read whole. There is no
//! stream, so no first token and no token times: the record's `first_token_at` stays `None` and
//! its TTFT and ITL are null, never 0. Its latency is E2E: from sending to the answer's last
//! byte.

use sinks::event::{Outcome, RequestFinished};

use super::client::{
    classify_send_error, failure, status_outcome, timeout, Failure, PreparedBody, RequestShared,
    ERROR_BODY_LIMIT,
};
use super::openai::{error_message, pooling};
use crate::runtime::shutdown::Level;

/// Largest answer read: a batch of large embeddings as JSON numbers.
const ANSWER_LIMIT: usize = 256 * 1024 * 1024;

/// Sends the body and reads the answer into `rec` (stamps, usage, status).
pub(super) async fn send(
    client: &awc::Client,
    shared: &RequestShared,
    prepared: &PreparedBody,
    rec: &mut RequestFinished,
) -> Result<(), Failure> {
    let clock = shared.clock;
    let cancel = shared.shutdown.reached(Level::Cancel);
    tokio::pin!(cancel);
    let req = super::client::post(client, shared, rec);
    rec.requested_output_tokens = None;
    rec.sent_at = clock.now();
    let deadline = tokio::time::sleep(shared.timeout);
    tokio::pin!(deadline);
    let mut resp = tokio::select! {
        biased;
        _ = &mut cancel => return Err(failure(Outcome::Cancelled, "cancelled before the answer")),
        _ = &mut deadline => return Err(timeout(rec, shared.timeout)),
        r = req.send_body(prepared.body.clone()) => r.map_err(classify_send_error)?,
    };
    let status = resp.status().as_u16();
    rec.http_status = Some(status);
    let limit = if resp.status().is_success() {
        ANSWER_LIMIT
    } else {
        ERROR_BODY_LIMIT
    };
    let body = tokio::select! {
        biased;
        _ = &mut cancel => return Err(failure(Outcome::Cancelled, "cancelled mid-answer")),
        _ = &mut deadline => return Err(timeout(rec, shared.timeout)),
        b = resp.body().limit(limit) => b,
    };
    rec.end_at = clock.now();
    let body = match body {
        Ok(b) => b,
        Err(e) if resp.status().is_success() => {
            return Err(failure(
                Outcome::StreamBroken,
                format!("answer broken: {e}"),
            ))
        }
        Err(_) => bytes::Bytes::new(),
    };
    if !resp.status().is_success() {
        return Err(failure(
            status_outcome(status),
            error_message(status, &body),
        ));
    }
    let answer = pooling::parse_answer(&body, prepared.inputs)
        .map_err(|e| failure(Outcome::ProtocolError, e))?;
    rec.server_prompt_tokens = answer.prompt_tokens;
    rec.response_model = answer.model;
    Ok(())
}
