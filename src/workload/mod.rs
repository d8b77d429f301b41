//! What is sent: tokenizer, prompts (dataset or synthetic), prompt/decode lengths.
//!
//! [`prepare`] builds the whole workload before the run: every prompt is tokenized once, in
//! parallel (`encode_batch`), so nothing is tokenized while requests are timed.
//!
//! - `tokenizer`: loading (`None` → the project's built-in byte-level BPE), token counting.
//!   The built-in tokenizer is regenerated reproducibly with
//!   `cargo test -p inference-benchmarker --lib -- --ignored regenerate_builtin_tokenizer`.
//! - `synthetic`: seeded English-like text and prompts of an exact token length.
//! - `dataset`: conversation datasets (the original tool's JSON or ShareGPT) from a local file or
//!   the hub; without `--dataset`, the original tool's default hub dataset.
//! - `options`: `--prompt-options` / `--decode-options` parsing and sampling.
//! - `profiles`: `fixed-length`, `chat`, `code-generation`, `classification`.

mod cut;
pub mod dataset;
pub mod hub;
pub mod options;
pub mod profiles;
pub mod synthetic;
pub mod tokenizer;
pub mod trace;
mod words;

use std::path::PathBuf;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokenizers::Tokenizer;

use crate::config::RunConfig;
use dataset::DatasetPrompt;
use options::TokenizeOptions;

/// Synthetic prompts made when no dataset is given.
pub const DEFAULT_SYNTHETIC_PROMPTS: usize = 1000;
/// Length of synthetic prompts without `--prompt-options`.
pub const DEFAULT_PROMPT_TOKENS: u64 = 200;

/// The chat message type the requests send (one type for the whole crate).
pub use crate::request::openai::Message;

/// A request ready to send: nothing about it is computed during the run.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedRequest {
    pub messages: Vec<Message>,
    /// The messages' contents joined with "\n", for /v1/completions.
    pub prompt: String,
    /// Our tokenizer over `prompt` (the contents joined with "\n"), no special tokens, no chat
    /// template: what the server counts will differ by its template.
    pub prompt_tokens: u64,
    pub max_tokens: Option<u64>,
    /// Multi-turn chat: the conversation's later user turns, sent one after the other, each
    /// after the model's answer to the previous one (see `load::conversation`). Empty for a
    /// single-turn request.
    pub later_turns: Vec<UserTurn>,
}

/// A later user turn of a conversation, tokenized before the run.
#[derive(Clone, Debug, PartialEq)]
pub struct UserTurn {
    pub content: String,
    /// Our tokenizer over `content`, no special tokens.
    pub tokens: u64,
    pub max_tokens: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadConfig {
    pub tokenizer_name: Option<String>,
    pub dataset: Option<String>,
    pub dataset_file: Option<PathBuf>,
    pub prompt_options: Option<TokenizeOptions>,
    pub decode_options: Option<TokenizeOptions>,
    /// Draw each prompt's length from `prompt_options` instead of exactly `num_tokens`.
    pub draw_prompt_lengths: bool,
    pub seed: u64,
    /// How many prompts to make when there is no dataset.
    pub synthetic_prompts: usize,
    /// Where the Hugging Face hub is, its cache and token.
    pub hub: hub::HubEnv,
    /// `--profile`, for error messages that say how to run it without network.
    pub profile: Option<String>,
    /// `--trace`: the requests (lengths, shared prefixes) and their arrival times come from it.
    pub trace: Option<TraceSource>,
}

/// A trace to replay, and this process's part of it.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceSource {
    pub path: PathBuf,
    /// `--trace-speedup`: arrivals come this many times faster than recorded.
    pub speedup: f64,
    /// A shard replays every `count`-th request of the trace, from its `index`.
    pub shard: Option<crate::shard::Shard>,
}

impl WorkloadConfig {
    /// The workload part of a run's configuration, with [`DEFAULT_SYNTHETIC_PROMPTS`].
    pub fn from_run_config(cfg: &RunConfig) -> Self {
        WorkloadConfig {
            tokenizer_name: cfg.tokenizer_name.clone(),
            dataset: cfg.dataset.clone(),
            dataset_file: cfg.dataset_file.clone(),
            prompt_options: cfg.prompt_options.clone(),
            decode_options: cfg.decode_options.clone(),
            draw_prompt_lengths: cfg.draw_prompt_lengths,
            seed: cfg.seed,
            synthetic_prompts: DEFAULT_SYNTHETIC_PROMPTS,
            hub: hub::HubEnv::from_env(),
            profile: cfg.profile.clone(),
            trace: cfg.trace.as_ref().map(|path| TraceSource {
                path: path.clone(),
                speedup: cfg.trace_speedup,
                shard: cfg.shard,
            }),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Workload {
    pub tokenizer: Arc<Tokenizer>,
    pub tokenizer_label: String,
    /// "synthetic" or the dataset path.
    pub source: String,
    pub requests: Vec<Arc<PreparedRequest>>,
    /// Trace replay: request `k` is sent at `arrivals[k]` from the step's start (`requests` in
    /// the same order).
    pub arrivals: Option<Arc<[sinks::event::Nanos]>>,
    /// Wall time of [`prepare`]: loading, downloading, tokenizing.
    pub prepare_seconds: f64,
}

impl Workload {
    /// For the results' configuration: what was sent, and what preparing it cost.
    pub fn describe(&self) -> serde_json::Value {
        let conversations = self
            .requests
            .iter()
            .filter(|r| !r.later_turns.is_empty())
            .count();
        serde_json::json!({
            "tokenizer": self.tokenizer_label,
            "tokenizer_builtin": self.tokenizer_label == tokenizer::BUILTIN_LABEL,
            "source": self.source,
            "prompts": self.requests.len(),
            "multi_turn_conversations": conversations,
            "prepare_seconds": self.prepare_seconds,
        })
    }
}

/// Runs one phase of preparing the workload, logging its wall time (`RUST_LOG=debug`): where
/// startup goes.
fn timed<T>(phase: &str, f: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let out = f();
    log::debug!(
        "workload: {phase} took {:.3} s",
        started.elapsed().as_secs_f64()
    );
    out
}

/// Loads the tokenizer and builds every request (see the module docs). Deterministic for a
/// given seed, tokenizer and dataset.
pub fn prepare(cfg: &WorkloadConfig) -> Result<Workload, String> {
    let started = std::time::Instant::now();
    let loaded = timed("loading the tokenizer", || {
        tokenizer::load_with(cfg.tokenizer_name.as_deref(), &cfg.hub)
    })?;
    let tok = &loaded.tokenizer;
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    if let Some(trace) = &cfg.trace {
        let (requests, arrivals) = trace_requests(tok, trace, cfg.seed, &mut rng)?;
        return Ok(Workload {
            tokenizer: Arc::clone(&loaded.tokenizer),
            tokenizer_label: loaded.label,
            source: trace.path.display().to_string(),
            requests: requests.into_iter().map(Arc::new).collect(),
            arrivals: Some(arrivals.into()),
            prepare_seconds: started.elapsed().as_secs_f64(),
        });
    }
    let resolved = dataset::resolve(
        cfg.dataset.as_deref(),
        cfg.dataset_file.as_deref(),
        &cfg.hub,
    )
    .map_err(|e| with_offline_hint(e, cfg))?;
    let (source, requests) = match resolved {
        Some(path) => {
            let ds = timed("parsing the dataset", || dataset::load(&path))?;
            let requests = from_dataset(tok, &ds, cfg, &mut rng)?;
            (path.display().to_string(), requests)
        }
        None => (
            "synthetic".to_string(),
            synthetic_requests(tok, cfg, &mut rng)?,
        ),
    };
    Ok(Workload {
        tokenizer: Arc::clone(&loaded.tokenizer),
        tokenizer_label: loaded.label,
        source,
        requests: requests.into_iter().map(Arc::new).collect(),
        arrivals: None,
        prepare_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The trace's requests (this shard's part) with prompts of their exact input lengths and
/// `max_tokens` of their output lengths, and their arrival offsets.
fn trace_requests(
    tok: &Tokenizer,
    source: &TraceSource,
    seed: u64,
    rng: &mut StdRng,
) -> Result<(Vec<PreparedRequest>, Vec<sinks::event::Nanos>), String> {
    let mut entries = trace::load(&source.path)?;
    if let Some(s) = source.shard {
        let (count, index) = (s.count as usize, s.index as usize);
        entries = entries
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % count == index)
            .map(|(_, e)| e)
            .collect();
        if entries.is_empty() {
            return Err(format!(
                "--trace {}: no request left for shard {index} of {count}",
                source.path.display()
            ));
        }
    }
    let mut texts = trace::texts(&entries, seed);
    let targets: Vec<u64> = entries.iter().map(|e| e.input_tokens).collect();
    let prompts = synthetic::prompts_with_counts(tok, &mut texts, &targets, rng)?;
    let requests = prompts
        .into_iter()
        .zip(&entries)
        .map(|((prompt, prompt_tokens), e)| PreparedRequest {
            messages: vec![Message {
                role: "user".into(),
                content: prompt.clone(),
            }],
            prompt,
            prompt_tokens,
            max_tokens: Some(e.output_tokens),
            later_turns: Vec::new(),
        })
        .collect();
    Ok((requests, trace::arrivals(&entries, source.speedup)))
}

/// A profile's dataset, or the default one, that cannot be had: say how to run anyway, never
/// silently on other prompts.
fn with_offline_hint(err: String, cfg: &WorkloadConfig) -> String {
    let (what, file) = match (&cfg.profile, &cfg.dataset, &cfg.dataset_file) {
        (Some(profile), _, Some(file)) => {
            (format!("profile '{profile}'"), file.display().to_string())
        }
        (None, None, file) => (
            "with no --dataset given, the benchmark".to_string(),
            file.as_ref()
                .map_or(dataset::DEFAULT_FILE.to_string(), |f| {
                    f.display().to_string()
                }),
        ),
        _ => return err,
    };
    format!(
        "{err}\n{what} runs on '{file}' of the hub dataset '{}' (as the original tool): without network, copy that file here and give --dataset-file /path/to/{file}, or give --dataset synthetic to run on the built-in synthetic prompts (a different workload)",
        dataset::DEFAULT_DATASET
    )
}

fn sample(options: Option<&TokenizeOptions>, rng: &mut StdRng) -> Option<u64> {
    options.and_then(|o| o.sample(rng))
}

/// A synthetic prompt's length: the prompt options' (exact, or drawn), else the default length
/// (within the options' bounds when they give only bounds).
fn synthetic_length(cfg: &WorkloadConfig, rng: &mut StdRng) -> u64 {
    let Some(options) = &cfg.prompt_options else {
        return DEFAULT_PROMPT_TOKENS;
    };
    options
        .prompt_length(cfg.draw_prompt_lengths, rng)
        .unwrap_or_else(|| {
            DEFAULT_PROMPT_TOKENS.clamp(options.min_tokens.max(1), options.max_tokens.max(1))
        })
}

/// `synthetic_prompts` single-turn user prompts of exact lengths.
fn synthetic_requests(
    tok: &Tokenizer,
    cfg: &WorkloadConfig,
    rng: &mut StdRng,
) -> Result<Vec<PreparedRequest>, String> {
    if cfg.synthetic_prompts == 0 {
        return Err("the number of synthetic prompts must be at least 1".into());
    }
    let mut targets = Vec::with_capacity(cfg.synthetic_prompts);
    let mut max_tokens = Vec::with_capacity(cfg.synthetic_prompts);
    for _ in 0..cfg.synthetic_prompts {
        targets.push(synthetic_length(cfg, rng));
        max_tokens.push(sample(cfg.decode_options.as_ref(), rng));
    }
    let mut texts: Vec<String> = targets
        .iter()
        .map(|&t| synthetic::text(rng, synthetic::words_for(t)))
        .collect();
    let prompts = synthetic::prompts_with_counts(tok, &mut texts, &targets, rng)?;
    let off_target = prompts
        .iter()
        .zip(&targets)
        .filter(|((_, n), t)| n != *t)
        .count();
    if off_target > 0 {
        log::warn!("{off_target} synthetic prompts could not be cut to their exact length with this tokenizer; their true lengths are recorded");
    }
    Ok(prompts
        .into_iter()
        .zip(max_tokens)
        .map(|((prompt, prompt_tokens), max_tokens)| PreparedRequest {
            messages: vec![Message {
                role: "user".into(),
                content: prompt.clone(),
            }],
            prompt,
            prompt_tokens,
            max_tokens,
            later_turns: Vec::new(),
        })
        .collect())
}

/// One request per usable dataset entry, in file order. With prompt options giving
/// `num_tokens`, each prompt is cut to its length (exactly `num_tokens`, or drawn); entries
/// shorter than that, or whose cut would drop the user turn (a long system prompt), are
/// skipped. Options with bounds only keep the whole prompts within them, as the original tool.
fn from_dataset(
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
    Ok(requests)
}

/// Prompts per parallel batch: large enough to keep every core busy, small enough for the
/// progress bar to move.
const PROGRESS_BATCH: usize = 2048;

/// Token counts of `texts`, in parallel batches, with a progress bar on a terminal (hidden
/// otherwise).
fn count_with_progress(tok: &Tokenizer, texts: &[String]) -> tokenizers::Result<Vec<u64>> {
    let bar = progress_bar(texts.len());
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
    let bar = progress_bar(texts.len());
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

/// Drawn on stderr only when it is a terminal.
fn progress_bar(len: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "tokenizing {bar:40} {pos}/{len} prompts {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
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
    Ok(requests)
}

fn join_contents(messages: &[Message]) -> String {
    messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Byte offset of each message's content in the joined prompt.
fn message_starts(messages: &[Message]) -> Vec<usize> {
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
fn off_separator(starts: &[usize], mut pos: usize) -> usize {
    while pos > 0 && starts.iter().skip(1).any(|&s| s == pos) {
        pos -= 1;
    }
    pos
}

/// The messages whose content starts before `len` (the last one cut at `len`); `None` when the
/// final user turn would be lost.
fn truncate_messages(p: &DatasetPrompt, starts: &[usize], len: usize) -> Option<Vec<Message>> {
    let kept: Vec<Message> = p
        .messages
        .iter()
        .zip(starts)
        .filter(|&(_, &start)| start < len)
        .map(|(m, &start)| Message {
            role: m.role.clone(),
            content: m.content[..m.content.len().min(len - start)].to_string(),
        })
        .collect();
    let keeps_user =
        kept.len() == p.messages.len() && kept.last().is_some_and(|m| !m.content.is_empty());
    keeps_user.then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::tokenizer::count_tokens;
    use super::*;
    use std::path::Path;

    fn cfg() -> WorkloadConfig {
        WorkloadConfig {
            tokenizer_name: None,
            dataset: Some(dataset::SYNTHETIC.into()),
            dataset_file: None,
            prompt_options: None,
            decode_options: None,
            draw_prompt_lengths: false,
            seed: 1,
            synthetic_prompts: 20,
            hub: hub::HubEnv::offline_at(PathBuf::from("/nonexistent/hub-cache")),
            profile: None,
            trace: None,
        }
    }

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    fn write_dataset(dir: &Path, json: &str) -> PathBuf {
        let file = dir.join("ds.json");
        std::fs::write(&file, json).unwrap();
        file
    }

    #[test]
    fn synthetic_default_lengths() {
        let w = prepare(&cfg()).unwrap();
        assert_eq!(w.source, "synthetic");
        assert_eq!(w.tokenizer_label, "builtin");
        assert_eq!(w.requests.len(), 20);
        for r in &w.requests {
            assert_eq!(r.prompt_tokens, DEFAULT_PROMPT_TOKENS);
            assert_eq!(count_tokens(&w.tokenizer, &r.prompt), DEFAULT_PROMPT_TOKENS);
            assert_eq!(r.messages, vec![msg("user", &r.prompt)]);
            assert_eq!(r.max_tokens, None);
        }
    }

    #[test]
    fn synthetic_sampled_lengths_and_max_tokens() {
        let mut c = cfg();
        c.prompt_options = Some(
            "num_tokens=50,min_tokens=30,max_tokens=70,variance=100"
                .parse()
                .unwrap(),
        );
        c.decode_options = Some(
            "num_tokens=20,min_tokens=10,max_tokens=30,variance=25"
                .parse()
                .unwrap(),
        );
        // As the original tool: every prompt exactly num_tokens.
        let w = prepare(&c).unwrap();
        assert!(w.requests.iter().all(|r| r.prompt_tokens == 50));
        // Drawn when asked for.
        c.draw_prompt_lengths = true;
        let w = prepare(&c).unwrap();
        let lengths: Vec<u64> = w.requests.iter().map(|r| r.prompt_tokens).collect();
        assert!(lengths.iter().all(|l| (30..=70).contains(l)));
        assert!(
            lengths.iter().any(|&l| l != 50),
            "variance must vary lengths"
        );
        for r in &w.requests {
            assert_eq!(count_tokens(&w.tokenizer, &r.prompt), r.prompt_tokens);
            assert!((10..=30).contains(&r.max_tokens.unwrap()));
        }
    }

    #[test]
    fn prepare_is_deterministic_per_seed() {
        let a = prepare(&cfg()).unwrap();
        let b = prepare(&cfg()).unwrap();
        let mut c = cfg();
        c.seed = 2;
        let c = prepare(&c).unwrap();
        assert_eq!(a.requests, b.requests);
        assert_ne!(a.requests, c.requests);
        // Prompts differ from each other.
        assert_ne!(a.requests[0].prompt, a.requests[1].prompt);
    }

    #[test]
    fn zero_synthetic_prompts_is_an_error() {
        let mut c = cfg();
        c.synthetic_prompts = 0;
        assert!(prepare(&c).unwrap_err().contains("at least 1"));
    }

    #[test]
    fn errors_from_tokenizer_and_dataset_resolution() {
        let mut c = cfg();
        c.tokenizer_name = Some("org/model".into());
        let err = prepare(&c).unwrap_err();
        assert!(
            err.contains("'org/model'") && err.contains("HF_HUB_OFFLINE=1"),
            "{err}"
        );
        let mut c = cfg();
        c.dataset = Some("a b".into());
        let err = prepare(&c).unwrap_err();
        assert!(err.contains("neither a local file"), "{err}");
        // No dataset given and no network: the original tool's default dataset cannot be had;
        // both ways out are offered.
        let mut c = cfg();
        c.dataset = None;
        let err = prepare(&c).unwrap_err();
        assert!(
            err.contains("HF_HUB_OFFLINE=1")
                && err.contains("with no --dataset given, the benchmark runs on 'share_gpt_filtered_small.json'")
                && err.contains("--dataset-file /path/to/share_gpt_filtered_small.json")
                && err.contains("--dataset synthetic"),
            "{err}"
        );
        // A profile's file without network: how to run it anyway.
        let mut c = cfg();
        c.profile = Some("chat".into());
        c.dataset = Some(profiles::PROFILE_DATASET.into());
        c.dataset_file = Some("share_gpt_turns.json".into());
        let err = prepare(&c).unwrap_err();
        assert!(
            err.contains("HF_HUB_OFFLINE=1")
                && err.contains("--dataset-file /path/to/share_gpt_turns.json")
                && err.contains("--dataset synthetic"),
            "{err}"
        );
        c.dataset = Some("synthetic".into());
        assert_eq!(prepare(&c).unwrap().source, "synthetic");
    }

    #[test]
    fn dataset_whole_prompts() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_dataset(
            dir.path(),
            r#"[{"conversations":[{"role":"system","content":"Be nice."},{"role":"user","content":"What is a cat?"},{"role":"assistant","content":"An animal."}]},
                {"conversations":[{"role":"user","content":"Hello there"}]}]"#,
        );
        let mut c = cfg();
        c.dataset = None;
        c.dataset_file = Some(file.clone());
        c.decode_options = Some(TokenizeOptions::fixed(64));
        let w = prepare(&c).unwrap();
        assert_eq!(w.source, file.display().to_string());
        assert_eq!(w.requests.len(), 2);
        let r = &w.requests[0];
        assert_eq!(
            r.messages,
            vec![msg("system", "Be nice."), msg("user", "What is a cat?")]
        );
        assert_eq!(r.prompt, "Be nice.\nWhat is a cat?");
        assert_eq!(r.prompt_tokens, count_tokens(&w.tokenizer, &r.prompt));
        assert_eq!(r.max_tokens, Some(64));
    }

    #[test]
    fn dataset_prompts_cut_to_sampled_length() {
        let dir = tempfile::tempdir().unwrap();
        let long = synthetic::text(&mut StdRng::seed_from_u64(4), 200);
        let json = serde_json::json!([
            {"conversations": [{"role": "system", "content": "You answer questions."}, {"role": "user", "content": long}]},
            {"conversations": [{"role": "user", "content": "Too short."}]},
            {"conversations": [{"role": "system", "content": long}, {"role": "user", "content": "Loses its user turn."}]},
        ]);
        let file = write_dataset(dir.path(), &json.to_string());
        let mut c = cfg();
        c.dataset = None;
        c.dataset_file = Some(file);
        c.prompt_options = Some(TokenizeOptions::fixed(40));
        let w = prepare(&c).unwrap();
        assert_eq!(w.requests.len(), 1);
        let r = &w.requests[0];
        assert_eq!(r.prompt_tokens, 40);
        assert_eq!(count_tokens(&w.tokenizer, &r.prompt), 40);
        assert_eq!(r.messages.len(), 2);
        assert_eq!(r.messages[0], msg("system", "You answer questions."));
        assert_eq!(r.messages[1].role, "user");
        assert!(long.starts_with(&r.messages[1].content));
        assert_eq!(r.prompt, join_contents(&r.messages));
    }

    #[test]
    fn later_turns_are_tokenized_with_their_own_max_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let long = synthetic::text(&mut StdRng::seed_from_u64(4), 200);
        let json = serde_json::json!([
            {"conversations": [{"role": "user", "content": long}, {"role": "assistant", "content": "x"},
                               {"role": "user", "content": "Second question?"}, {"role": "user", "content": "Third."}]},
            {"conversations": [{"role": "user", "content": "Single."}]},
        ]);
        let file = write_dataset(dir.path(), &json.to_string());
        for prompt_options in [None, Some(TokenizeOptions::fixed(40))] {
            let mut c = cfg();
            c.dataset = None;
            c.dataset_file = Some(file.clone());
            c.prompt_options = prompt_options.clone();
            c.decode_options = Some(
                "num_tokens=20,min_tokens=10,max_tokens=30,variance=25"
                    .parse()
                    .unwrap(),
            );
            let w = prepare(&c).unwrap();
            let r = &w.requests[0];
            assert_eq!(r.later_turns.len(), 2, "{prompt_options:?}");
            for t in &r.later_turns {
                assert_eq!(t.tokens, count_tokens(&w.tokenizer, &t.content));
                assert!((10..=30).contains(&t.max_tokens.unwrap()));
            }
            assert_eq!(r.later_turns[1].content, "Third.");
            assert_eq!(w.describe()["multi_turn_conversations"], 1);
        }
    }

    #[test]
    fn cuts_are_exact_across_progress_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(5);
        let n = PROGRESS_BATCH + 100;
        let entries: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                let text = synthetic::text(&mut rng, 40);
                serde_json::json!({"id": i, "conversations": [{"role": "system", "content": "Sys."}, {"role": "user", "content": text}]})
            })
            .collect();
        let file = write_dataset(dir.path(), &serde_json::Value::Array(entries).to_string());
        let mut c = cfg();
        c.dataset = None;
        c.dataset_file = Some(file);
        c.prompt_options = Some(TokenizeOptions::fixed(20));
        let w = prepare(&c).unwrap();
        assert_eq!(w.requests.len(), n);
        for r in &w.requests {
            assert_eq!(r.prompt_tokens, 20);
            assert_eq!(count_tokens(&w.tokenizer, &r.prompt), 20);
            assert_eq!(r.messages[0], msg("system", "Sys."));
        }
    }

    #[test]
    fn dataset_none_long_enough_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = write_dataset(
            dir.path(),
            r#"[{"conversations":[{"role":"user","content":"Short."}]}]"#,
        );
        let mut c = cfg();
        c.dataset = None;
        c.dataset_file = Some(file);
        c.prompt_options = Some(TokenizeOptions::fixed(500));
        let err = prepare(&c).unwrap_err();
        assert!(
            err.contains("no prompt is long enough") && err.contains("1 shorter"),
            "{err}"
        );
    }

    #[test]
    fn separators_and_truncation() {
        let p = DatasetPrompt {
            id: None,
            messages: vec![msg("system", "abc"), msg("system", ""), msg("user", "defg")],
            later_turns: Vec::new(),
        };
        let starts = message_starts(&p.messages);
        assert_eq!(starts, vec![0, 4, 5]);
        assert_eq!(join_contents(&p.messages), "abc\n\ndefg");
        // Just after a separator → back before it (through the empty message too).
        assert_eq!(off_separator(&starts, 5), 3);
        assert_eq!(off_separator(&starts, 4), 3);
        assert_eq!(off_separator(&starts, 7), 7);
        assert_eq!(off_separator(&starts, 0), 0);
        let kept = truncate_messages(&p, &starts, 7).unwrap();
        assert_eq!(
            kept,
            vec![msg("system", "abc"), msg("system", ""), msg("user", "de")]
        );
        assert_eq!(join_contents(&kept), "abc\n\nde");
        assert_eq!(truncate_messages(&p, &starts, 3), None);
        assert_eq!(truncate_messages(&p, &starts, 10).unwrap(), p.messages);
    }
}
