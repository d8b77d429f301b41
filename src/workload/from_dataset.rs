//! Requests from a dataset: whole prompts, or prompts cut to a token length on a message
//! boundary; later user turns for multi-turn chat; tokenized in parallel with a progress bar.

use rand::rngs::StdRng;
use tokenizers::Tokenizer;

use super::cut;
use super::dataset::{self, DatasetPrompt};
use super::entry_extras;
use super::options::TokenizeOptions;
use super::progress;
use super::requests::{sample, timed};
use super::{Message, PreparedRequest, UserTurn, WorkloadConfig, DEFAULT_PROMPT_TOKENS};

/// One request per usable dataset entry, in file order. With prompt options giving
/// `num_tokens`, each prompt is cut to its length (exactly `num_tokens`, or drawn); entries
/// shorter than that, or whose cut would drop the user turn (a long system prompt), are
/// skipped. Options with bounds only keep the whole prompts within them, as the original tool.
pub(super) fn from_dataset(
    tok: &Tokenizer,
    ds: &dataset::Dataset,
    cfg: &WorkloadConfig,
    rng: &mut StdRng,
) -> Result<Vec<PreparedRequest>, String> {
    let joined: Vec<String> = ds
        .prompts
        .iter()
        .map(|p| join_contents(&p.messages))
        .collect();
    match cfg.prompt_options.as_ref() {
        Some(options) if options.num_tokens.is_some() => {
            cut_prompts(tok, ds, joined, options, cfg, rng)
        }
        bounds => whole_prompts(tok, ds, joined, bounds, cfg, rng),
    }
}

/// The dataset's prompts as they are, counted in one parallel batch; with `bounds`, only those
/// whose length is within them.
fn whole_prompts(
    tok: &Tokenizer,
    ds: &dataset::Dataset,
    joined: Vec<String>,
    bounds: Option<&TokenizeOptions>,
    cfg: &WorkloadConfig,
    rng: &mut StdRng,
) -> Result<Vec<PreparedRequest>, String> {
    let counts = timed("counting prompts", || count_with_progress(tok, &joined))
        .map_err(|e| format!("tokenizing dataset '{}' failed: {e}", ds.path.display()))?;
    let mut requests = Vec::with_capacity(joined.len());
    let mut entry_of = Vec::with_capacity(joined.len());
    for (i, (prompt, prompt_tokens)) in joined.into_iter().zip(counts).enumerate() {
        if bounds.is_some_and(|b| !b.admits(prompt_tokens)) {
            continue;
        }
        requests.push(PreparedRequest {
            messages: ds.prompts[i].messages.clone(),
            prompt,
            prompt_tokens,
            max_tokens: sample(cfg.decode_options.as_ref(), rng),
            later_turns: Vec::new(),
            tools: None,
        });
        entry_of.push(i);
    }
    if let Some(b) = bounds {
        if requests.is_empty() {
            return Err(format!(
                "dataset '{}': no prompt has a length within the prompt options {b}",
                ds.path.display()
            ));
        }
        let skipped = ds.prompts.len() - requests.len();
        if skipped > 0 {
            log::info!(
                "dataset '{}': {skipped} prompts outside the prompt options {b} were skipped",
                ds.path.display()
            );
        }
    }
    add_later_turns(tok, ds, &entry_of, &mut requests, cfg, rng)?;
    entry_extras::attach(tok, ds, &entry_of, &mut requests, cfg, rng)?;
    Ok(requests)
}

/// Prompts per parallel batch: large enough to keep every core busy, small enough for the
/// progress bar to move.
pub(super) const PROGRESS_BATCH: usize = 2048;

/// Token counts of `texts`, in parallel batches, with a progress bar on a terminal (hidden
/// otherwise).
fn count_with_progress(tok: &Tokenizer, texts: &[String]) -> tokenizers::Result<Vec<u64>> {
    let bar = progress::bar(texts.len(), "tokenizing", "prompts");
    let mut counts = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(PROGRESS_BATCH) {
        let batch: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let encodings = tok.encode_batch_fast(batch, false)?;
        counts.extend(encodings.iter().map(|e| e.len() as u64));
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(counts)
}

/// Prompts cut to their targets (`cut::cut_batch`), in parallel batches, with a progress bar
/// on a terminal.
fn cut_with_progress(
    tok: &Tokenizer,
    texts: &[&str],
    targets: &[u64],
    starts: &[Vec<usize>],
) -> Result<Vec<Option<cut::Cut>>, String> {
    let bar = progress::bar(texts.len(), "tokenizing", "prompts");
    let mut cuts = Vec::with_capacity(texts.len());
    for (k, chunk) in texts.chunks(PROGRESS_BATCH).enumerate() {
        let first = k * PROGRESS_BATCH;
        let chunk_targets = &targets[first..first + chunk.len()];
        cuts.extend(cut::cut_batch(tok, chunk, chunk_targets, |i, pos| {
            off_separator(&starts[first + i], pos)
        })?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(cuts)
}

/// Fills `later_turns` of `requests[k]` from the dataset entry `entry_of[k]`: every later user
/// turn tokenized in one parallel batch, each with its own sampled `max_tokens`.
fn add_later_turns(
    tok: &Tokenizer,
    ds: &dataset::Dataset,
    entry_of: &[usize],
    requests: &mut [PreparedRequest],
    cfg: &WorkloadConfig,
    rng: &mut StdRng,
) -> Result<(), String> {
    let texts: Vec<&str> = entry_of
        .iter()
        .flat_map(|&i| ds.prompts[i].later_turns.iter().map(String::as_str))
        .collect();
    if texts.is_empty() {
        return Ok(());
    }
    let encodings = timed("counting later turns", || {
        tok.encode_batch_fast(texts, false)
    })
    .map_err(|e| format!("tokenizing dataset '{}' failed: {e}", ds.path.display()))?;
    let mut counts = encodings.iter().map(|e| e.len() as u64);
    for (r, &i) in requests.iter_mut().zip(entry_of) {
        r.later_turns = ds.prompts[i]
            .later_turns
            .iter()
            .map(|content| UserTurn {
                content: content.clone(),
                tokens: counts.next().unwrap_or(0),
                max_tokens: sample(cfg.decode_options.as_ref(), rng),
            })
            .collect();
    }
    Ok(())
}

/// The dataset's prompts cut to lengths sampled from `options` (see [`from_dataset`]).
fn cut_prompts(
    tok: &Tokenizer,
    ds: &dataset::Dataset,
    joined: Vec<String>,
    options: &TokenizeOptions,
    cfg: &WorkloadConfig,
    rng: &mut StdRng,
) -> Result<Vec<PreparedRequest>, String> {
    let shown = ds.path.display();
    let mut targets = Vec::with_capacity(joined.len());
    let mut max_tokens = Vec::with_capacity(joined.len());
    for _ in &joined {
        targets.push(
            options
                .prompt_length(cfg.draw_prompt_lengths, rng)
                .unwrap_or(DEFAULT_PROMPT_TOKENS),
        );
        max_tokens.push(sample(cfg.decode_options.as_ref(), rng));
    }
    let starts: Vec<Vec<usize>> = ds
        .prompts
        .iter()
        .map(|p| message_starts(&p.messages))
        .collect();
    let texts: Vec<&str> = joined.iter().map(String::as_str).collect();
    let cuts = timed("cutting prompts", || {
        cut_with_progress(tok, &texts, &targets, &starts)
    })
    .map_err(|e| format!("tokenizing dataset '{shown}' failed: {e}"))?;
    let mut requests = Vec::with_capacity(joined.len());
    let mut entry_of = Vec::with_capacity(joined.len());
    let (mut too_short, mut lost_user_turn) = (0usize, 0usize);
    for (i, c) in cuts.into_iter().enumerate() {
        let Some(c) = c else {
            too_short += 1;
            continue;
        };
        let Some(messages) = truncate_messages(&ds.prompts[i], &starts[i], c.len) else {
            lost_user_turn += 1;
            continue;
        };
        requests.push(PreparedRequest {
            messages,
            prompt: joined[i][..c.len].to_string(),
            prompt_tokens: c.tokens,
            max_tokens: max_tokens[i],
            later_turns: Vec::new(),
            tools: None,
        });
        entry_of.push(i);
    }
    if requests.is_empty() {
        return Err(format!(
            "dataset '{shown}': no prompt is long enough for the prompt options {options} ({too_short} shorter than their sampled length, {lost_user_turn} would lose their user turn)"
        ));
    }
    if too_short + lost_user_turn > 0 {
        log::info!("dataset '{shown}': {too_short} prompts shorter than their sampled length and {lost_user_turn} whose cut would drop the user turn were skipped");
    }
    add_later_turns(tok, ds, &entry_of, &mut requests, cfg, rng)?;
    entry_extras::attach(tok, ds, &entry_of, &mut requests, cfg, rng)?;
    Ok(requests)
}

pub(super) fn join_contents(messages: &[Message]) -> String {
    messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Byte offset of each message's content in the joined prompt.
pub(super) fn message_starts(messages: &[Message]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(messages.len());
    let mut at = 0;
    for m in messages {
        starts.push(at);
        at += m.content.len() + 1;
    }
    starts
}

/// Moves a cut that falls just after a "\n" separator to just before it, so the cut prompt
/// never ends with a separator and always equals its messages joined.
pub(super) fn off_separator(starts: &[usize], mut pos: usize) -> usize {
    while pos > 0 && starts.iter().skip(1).any(|&s| s == pos) {
        pos -= 1;
    }
    pos
}

/// The messages whose content starts before `len` (the last one cut at `len`); `None` when the
/// final user turn would be lost.
pub(super) fn truncate_messages(
    p: &DatasetPrompt,
    starts: &[usize],
    len: usize,
) -> Option<Vec<Message>> {
    let kept: Vec<Message> = p
        .messages
        .iter()
        .zip(starts)
        .filter(|&(_, &start)| start < len)
        .map(|(m, &start)| Message {
            role: m.role.clone(),
            content: m.content[..m.content.len().min(len - start)].to_string(),
            extras: m.extras.clone(),
        })
        .collect();
    let keeps_user =
        kept.len() == p.messages.len() && kept.last().is_some_and(|m| !m.content.is_empty());
    keeps_user.then_some(kept)
}
