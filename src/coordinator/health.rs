//! Before the first request: is the server there, and which model does it serve?

use std::time::Duration;

use serde::Deserialize;

use crate::request::openai::{error_message, models_url};
use crate::runtime::exit::RunError;

/// How long the pre-flight check waits for the server.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct ModelList {
    #[serde(default)]
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

/// Asks `/v1/models`. Returns the model to request: the one given, else the first the server
/// lists. A server that cannot be reached, refuses our credentials (401/403), answers 5xx (after
/// the pre-flight's retries) or has no such route when no model is given stops the run before
/// it starts (exit code 3).
pub async fn check(
    client: &awc::Client,
    base_url: &str,
    authorization: Option<&str>,
    model: Option<&str>,
) -> Result<String, RunError> {
    let url = models_url(base_url).map_err(RunError::Config)?;
    let mut retry = 0;
    let (status, body) = loop {
        let mut req = client.get(&url).timeout(HEALTH_TIMEOUT);
        if let Some(auth) = authorization {
            req = req.insert_header(("authorization", auth));
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| RunError::Unreachable(format!("cannot reach {url}: {e}")))?;
        let status = resp.status().as_u16();
        let body = resp.body().limit(4 << 20).await.unwrap_or_default();
        retry += 1;
        if !(200..=299).contains(&status)
            && super::preflight::wait_to_retry("model listing", &url, status, retry).await
        {
            continue;
        }
        break (status, body);
    };
    let listed = match status {
        200..=299 => serde_json::from_slice::<ModelList>(&body)
            .map(|l| l.data.into_iter().map(|m| m.id).collect::<Vec<_>>())
            .unwrap_or_default(),
        401 | 403 => {
            return Err(RunError::Refused(super::preflight::refusal(
                &url,
                status,
                &error_message(status, &body),
            )))
        }
        500..=599 => {
            return Err(RunError::Unreachable(format!(
                "{url} is unhealthy (HTTP {status}: {})",
                error_message(status, &body)
            )))
        }
        // Some servers have no /v1/models; they can still be benchmarked with --model-name.
        _ => Vec::new(),
    };
    match model {
        Some(m) => {
            if !listed.is_empty() && !listed.iter().any(|l| l == m) {
                log::warn!(
                    "the server lists models {listed:?}, not {m:?}; requesting {m:?} anyway"
                );
            }
            Ok(m.to_string())
        }
        // The server answered, with an error: a wrong --url (404) is the server refusing, as
        // the exit-code table says (3), not a bad argument.
        None if !(200..=299).contains(&status) => Err(RunError::Refused(format!(
            "{}; or give the model with --model-name if the server has no /v1/models",
            super::preflight::refusal(&url, status, &error_message(status, &body))
        ))),
        None => listed.into_iter().next().ok_or_else(|| {
            RunError::Config(format!("{url} lists no model; give one with --model-name"))
        }),
    }
}
