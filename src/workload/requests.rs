//! [`prepare`](super::prepare): the run's requests from synthetic prompts, a trace or a dataset,
//! with the tokenizer loaded and every prompt counted before the run.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokenizers::Tokenizer;

use super::dataset;
use super::from_dataset::from_dataset;
use super::options::TokenizeOptions;
use super::{images, salt, synthetic, tokenizer, trace};
use super::{
    Message, PreparedRequest, TraceSource, Workload, WorkloadConfig, DEFAULT_PROMPT_TOKENS,
};

/// Runs one phase of preparing the workload, logging its wall time (`RUST_LOG=debug`): where
/// startup goes.
pub(super) fn timed<T>(phase: &str, f: impl FnOnce() -> T) -> T {
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
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut workload = prepare_texts(cfg, &loaded, &mut rng, started)?;
    if let Some(options) = cfg.image_options {
        // Their own seed: adding images leaves the prompts and lengths of a seed unchanged.
        let mut image_rng = StdRng::seed_from_u64(cfg.seed ^ IMAGE_SEED_SALT);
        let run_salt = cfg.cache_salt.as_deref().map_or(0, salt::hash);
        let images_started = std::time::Instant::now();
        let all = timed("making synthetic images", || {
            images::synthetic(options, workload.requests.len(), &mut image_rng, run_salt)
        })?;
        let made: usize = all.iter().map(Vec::len).sum();
        // Said on every console: on a large run this is where startup goes.
        eprintln!(
            "images: {made} synthetic {}×{} PNGs ({} bases, salted per image) in {:.1} s",
            options.width,
            options.height,
            made.min(images::BASES),
            images_started.elapsed().as_secs_f64()
        );
        for (r, inputs) in workload.requests.iter_mut().zip(all) {
            images::attach(&mut Arc::make_mut(r).messages, inputs);
        }
        workload.prepare_seconds = started.elapsed().as_secs_f64();
    }
    Ok(workload)
}

/// Mixed into `--seed` for the synthetic images' draws.
const IMAGE_SEED_SALT: u64 = 0x696d_6167_6573;

/// The workload's text: trace, dataset or synthetic prompts.
fn prepare_texts(
    cfg: &WorkloadConfig,
    loaded: &tokenizer::Loaded,
    rng: &mut StdRng,
    started: std::time::Instant,
) -> Result<Workload, String> {
    let tok = &loaded.tokenizer;
    if let Some(trace) = &cfg.trace {
        let (requests, arrivals) =
            trace_requests(tok, trace, cfg.seed, cfg.cache_salt.as_deref(), rng)?;
        return Ok(Workload {
            tokenizer: Arc::clone(&loaded.tokenizer),
            tokenizer_label: loaded.label.clone(),
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
            let requests = from_dataset(tok, &ds, cfg, rng)?;
            (path.display().to_string(), requests)
        }
        None => ("synthetic".to_string(), synthetic_requests(tok, cfg, rng)?),
    };
    Ok(Workload {
        tokenizer: Arc::clone(&loaded.tokenizer),
        tokenizer_label: loaded.label.clone(),
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
    cache_salt: Option<&str>,
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
    // Prompts that share their first block share their salt: the trace's prefixes stay shared.
    let keys: Vec<u64> = (0..entries.len() as u64)
        .zip(&entries)
        .map(|(i, e)| e.hash_ids.first().copied().unwrap_or(1 << 63 | i))
        .collect();
    let heads = salt_heads(tok, cache_salt, seed, &keys)?;
    let prompts = synthetic::prompts_with_counts(tok, &mut texts, &targets, heads.as_deref(), rng)?;
    let requests = prompts
        .into_iter()
        .zip(&entries)
        .map(|((prompt, prompt_tokens), e)| PreparedRequest {
            messages: vec![Message {
                role: "user".into(),
                content: prompt.clone(),
                extras: None,
            }],
            prompt,
            prompt_tokens,
            max_tokens: Some(e.output_tokens),
            later_turns: Vec::new(),
            tools: None,
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
        // A file the user named: most likely a wrong path, and said so first.
        (None, None, Some(file)) => {
            return format!(
                "{err}\ncheck the path given to --dataset-file: no local file '{f}' exists. (As the original tool, a name that is not a local file is looked for in the hub dataset '{}': if '{f}' is a file of it, without network copy it here and give --dataset-file /path/to/{f}.)",
                dataset::DEFAULT_DATASET,
                f = file.display()
            )
        }
        (None, None, None) => (
            "with no --dataset given, the benchmark".to_string(),
            dataset::DEFAULT_FILE.to_string(),
        ),
        _ => return err,
    };
    format!(
        "{err}\n{what} runs on '{file}' of the hub dataset '{}' (as the original tool): without network, copy that file here and give --dataset-file /path/to/{file}, or give --dataset synthetic to run on the built-in synthetic prompts (a different workload)",
        dataset::DEFAULT_DATASET
    )
}

pub(super) fn sample(options: Option<&TokenizeOptions>, rng: &mut StdRng) -> Option<u64> {
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

/// The first words of each synthetic prompt (`salt.rs`), by its key; none without a salt.
fn salt_heads(
    tok: &Tokenizer,
    cache_salt: Option<&str>,
    seed: u64,
    keys: &[u64],
) -> Result<Option<Vec<String>>, String> {
    cache_salt
        .map(|s| timed("salting prompts", || salt::heads(tok, s, seed, keys)))
        .transpose()
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
    let keys: Vec<u64> = (0..targets.len() as u64).collect();
    let heads = salt_heads(tok, cfg.cache_salt.as_deref(), cfg.seed, &keys)?;
    let prompts = synthetic::prompts_with_counts(tok, &mut texts, &targets, heads.as_deref(), rng)?;
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
                extras: None,
            }],
            prompt,
            prompt_tokens,
            max_tokens,
            later_turns: Vec::new(),
            tools: None,
        })
        .collect())
}
