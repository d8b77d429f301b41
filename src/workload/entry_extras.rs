//! A dataset entry's images and tools onto its prepared request, before the run: image files
//! read and encoded, tool results tokenized, each result's answer given its `max_tokens`.

use std::path::Path;
use std::sync::Arc;

use rand::rngs::StdRng;
use tokenizers::Tokenizer;

use super::dataset::Dataset;
use super::requests::sample;
use super::{images, PreparedRequest, ToolScript, UserTurn, WorkloadConfig};

/// What is sent back for a tool call when the entry has no `tool` turn of its own.
pub const DEFAULT_TOOL_RESULT: &str = "{\"result\": \"ok\"}";

/// Adds to `requests[k]` the images and tools of dataset prompt `entry_of[k]`.
pub(super) fn attach(
    tok: &Tokenizer,
    ds: &Dataset,
    entry_of: &[usize],
    requests: &mut [PreparedRequest],
    cfg: &WorkloadConfig,
    rng: &mut StdRng,
) -> Result<(), String> {
    let dir = ds.path.parent().unwrap_or(Path::new("."));
    for (r, &i) in requests.iter_mut().zip(entry_of) {
        let prompt = &ds.prompts[i];
        let what = || {
            let id = prompt.id.clone().unwrap_or_else(|| format!("#{}", i + 1));
            format!("dataset '{}', prompt {id}", ds.path.display())
        };
        let extras = &prompt.extras;
        let inputs = extras
            .images
            .iter()
            .map(|item| images::from_dataset(item, dir))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", what()))?;
        images::attach(&mut r.messages, inputs);
        let Some(definitions) = &extras.tools else {
            continue;
        };
        if !definitions.is_array() {
            return Err(format!(
                "{}: `tools` must be a list of OpenAI tool definitions",
                what()
            ));
        }
        let texts: Vec<&str> = match extras.tool_results.is_empty() {
            true => vec![DEFAULT_TOOL_RESULT],
            false => extras.tool_results.iter().map(String::as_str).collect(),
        };
        let results = texts
            .into_iter()
            .map(|content| {
                let tokens = tok
                    .encode_fast(content, false)
                    .map_err(|e| format!("{}: tokenizing a tool result failed: {e}", what()))?;
                Ok(UserTurn {
                    content: content.to_string(),
                    tokens: tokens.len() as u64,
                    max_tokens: sample(cfg.decode_options.as_ref(), rng),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        r.tools = Some(Arc::new(ToolScript {
            definitions: definitions.clone(),
            results,
        }));
    }
    Ok(())
}
