//! A pure model of a continuous-batching inference engine (no clock, no sockets).
//!
//! - `slots` sequences run together; the rest wait in a FIFO queue (optionally bounded).
//! - A step first admits waiting sequences into free slots, then lasts
//!   `decode_base + decode_per_seq × running + prefill_per_token × uncached prompt tokens of the
//!   sequences admitted in this step`, and gives one token to every running sequence (so a newly
//!   admitted sequence gets its first token at the end of its prefill step, as in vLLM).
//! - The prefix cache is looked up at admission: the cached part of the prompt costs nothing.
//!   At least one prompt token is always computed, as in vLLM.
//! - Output length: `ignore_eos` gives exactly `max_tokens`; otherwise EOS comes after a
//!   geometric number of tokens (mean `mean_output_tokens`) once `min_tokens` are out, capped by
//!   `max_tokens`.
//!
//! The caller owns time: it calls [`Engine::step`] at a step start, waits `duration`, then
//! delivers the step's emissions.

use std::collections::VecDeque;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Geometric};

use super::config::{self, SimConfig};
use super::prefix_cache::PrefixCache;

/// Identifies a sequence inside the engine.
pub type SeqId = u64;

/// Why a sequence stopped, in OpenAI's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// `max_tokens` reached.
    Length,
    /// The model produced EOS.
    Stop,
}

impl FinishReason {
    /// The `finish_reason` string of the OpenAI API.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Length => "length",
            FinishReason::Stop => "stop",
        }
    }
}

/// The length-related parameters of a request (validated: `1 ≤ max_tokens`, `min ≤ max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthRequest {
    pub max_tokens: u32,
    pub min_tokens: u32,
    pub ignore_eos: bool,
}

/// How many tokens a sequence produces and why it stops.
pub fn sample_output_len(
    req: LengthRequest,
    mean_output_tokens: f64,
    rng: &mut StdRng,
) -> (u32, FinishReason) {
    let max = req.max_tokens.max(1);
    if req.ignore_eos {
        return (max, FinishReason::Length);
    }
    // 1 + Geometric(1/mean) has mean `mean`; EOS is suppressed until min_tokens are out.
    let p = (1.0 / mean_output_tokens).clamp(f64::MIN_POSITIVE, 1.0);
    let extra = Geometric::new(p).map(|g| g.sample(rng)).unwrap_or(0);
    let until_eos = u64::from(req.min_tokens)
        .saturating_add(1)
        .saturating_add(extra);
    if until_eos >= u64::from(max) {
        (max, FinishReason::Length)
    } else {
        // until_eos < max ≤ u32::MAX
        (until_eos as u32, FinishReason::Stop)
    }
}

/// Timing and capacity parameters of the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineParams {
    pub slots: usize,
    pub prefill_per_token: Duration,
    pub decode_base: Duration,
    pub decode_per_seq: Duration,
    /// Waiting-queue bound (None: unbounded).
    pub queue_bound: Option<usize>,
    pub cache_blocks: usize,
    pub block_size_bytes: usize,
    pub mean_output_tokens: f64,
}

impl EngineParams {
    /// From a validated configuration.
    pub fn from_config(cfg: &SimConfig) -> Self {
        EngineParams {
            slots: cfg.slots.max(1),
            prefill_per_token: config::us(cfg.prefill_us_per_token),
            decode_base: config::ms(cfg.decode_step_ms),
            decode_per_seq: config::us(cfg.decode_us_per_seq),
            queue_bound: cfg.queue_bound(),
            cache_blocks: cfg.prefix_cache_blocks,
            block_size_bytes: cfg.block_size_bytes.max(1),
            mean_output_tokens: cfg.mean_output_tokens,
        }
    }

    /// Duration of a step with `batch` running sequences and `prefill_tokens` to compute.
    pub fn step_time(&self, batch: usize, prefill_tokens: u64) -> Duration {
        let secs = self.decode_base.as_secs_f64()
            + self.decode_per_seq.as_secs_f64() * batch as f64
            + self.prefill_per_token.as_secs_f64() * prefill_tokens as f64;
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }
}

/// A request as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqRequest {
    pub prompt_tokens: u64,
    /// Length of the prompt text the blocks were cut from.
    pub prompt_bytes: usize,
    /// Chained block hashes (see `prefix_cache::prompt_block_hashes`).
    pub prompt_blocks: Vec<u64>,
    pub length: LengthRequest,
}

/// The waiting queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueFull;

/// One token for one sequence, due at the end of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emission {
    pub id: SeqId,
    /// 0-based index of the token in the output.
    pub index: u32,
    /// Prompt tokens served from the prefix cache (known since admission).
    pub cached_tokens: u64,
    /// Some on the sequence's last token.
    pub finish: Option<FinishReason>,
}

/// The outcome of one engine step.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub duration: Duration,
    /// Running sequences in this step (including newly admitted ones).
    pub batch: usize,
    /// Sequences admitted in this step.
    pub admitted: usize,
    /// Uncached prompt tokens prefilled in this step.
    pub prefill_tokens: u64,
    /// Prompt tokens of the sequences admitted in this step (cached or not).
    pub admitted_prompt_tokens: u64,
    /// Prompt tokens looked up in the prefix cache in this step (0 when the cache is disabled).
    pub cache_queried_tokens: u64,
    /// Of those, tokens found in the cache (served without prefill).
    pub cache_hit_tokens: u64,
    pub emissions: Vec<Emission>,
}

/// What the admissions of one step did.
#[derive(Clone, Copy, Debug, Default)]
struct Admission {
    count: usize,
    prefill_tokens: u64,
    prompt_tokens: u64,
    cache_queried_tokens: u64,
    cache_hit_tokens: u64,
}

#[derive(Debug)]
struct Seq {
    id: SeqId,
    req: SeqRequest,
    target: u32,
    finish: FinishReason,
    emitted: u32,
    cached_tokens: u64,
}

/// The engine state: running batch, waiting queue, prefix cache, RNG for output lengths.
#[derive(Debug)]
pub struct Engine {
    params: EngineParams,
    waiting: VecDeque<Seq>,
    running: Vec<Seq>,
    /// Sequences the step in progress computes: `running` plus those it finishes (they left
    /// `running` when it started, but their last token is computed until it ends).
    in_step: usize,
    cache: PrefixCache,
    rng: StdRng,
    next_id: SeqId,
}

impl Engine {
    pub fn new(params: EngineParams, seed: u64) -> Self {
        Engine {
            cache: PrefixCache::new(params.cache_blocks),
            params,
            waiting: VecDeque::new(),
            running: Vec::new(),
            in_step: 0,
            rng: StdRng::seed_from_u64(seed),
            next_id: 0,
        }
    }

    #[cfg(test)]
    pub fn params(&self) -> &EngineParams {
        &self.params
    }

    /// Sequences in the batch (admitted, not finished).
    #[cfg(test)]
    pub fn running_len(&self) -> usize {
        self.running.len()
    }

    /// Sequences the step in progress computes, those finishing in it included: the true
    /// concurrency, which `/metrics` reports as running (0 once idle).
    pub fn batch_in_progress(&self) -> usize {
        self.in_step
    }

    /// Sequences waiting for a slot.
    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// Tokens held in the KV cache by the running sequences: prompt + tokens generated so far.
    pub fn kv_tokens(&self) -> u64 {
        self.running
            .iter()
            .map(|s| s.req.prompt_tokens + u64::from(s.emitted))
            .sum()
    }

    /// True when there is nothing to step.
    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    /// Queues a request; its output length is decided now (reproducible in arrival order).
    pub fn submit(&mut self, req: SeqRequest) -> Result<SeqId, QueueFull> {
        if self
            .params
            .queue_bound
            .is_some_and(|bound| self.waiting.len() >= bound)
        {
            return Err(QueueFull);
        }
        let (target, finish) =
            sample_output_len(req.length, self.params.mean_output_tokens, &mut self.rng);
        let id = self.next_id;
        self.next_id += 1;
        self.waiting.push_back(Seq {
            id,
            req,
            target,
            finish,
            emitted: 0,
            cached_tokens: 0,
        });
        Ok(id)
    }

    /// Removes a sequence (client gone). Returns whether it was there.
    pub fn abort(&mut self, id: SeqId) -> bool {
        if let Some(pos) = self.running.iter().position(|s| s.id == id) {
            self.running.swap_remove(pos);
            return true;
        }
        if let Some(pos) = self.waiting.iter().position(|s| s.id == id) {
            self.waiting.remove(pos);
            return true;
        }
        false
    }

    /// Runs one step: admits, computes its duration, and produces one token per running
    /// sequence (finished sequences leave their slot). None when idle.
    pub fn step(&mut self) -> Option<Step> {
        if self.is_idle() {
            self.in_step = 0;
            return None;
        }
        let admission = self.admit();
        let batch = self.running.len();
        self.in_step = batch;
        let duration = self.params.step_time(batch, admission.prefill_tokens);
        let emissions = self.running.iter_mut().map(emit_one).collect();
        self.running.retain(|s| s.emitted < s.target);
        Some(Step {
            duration,
            batch,
            admitted: admission.count,
            prefill_tokens: admission.prefill_tokens,
            admitted_prompt_tokens: admission.prompt_tokens,
            cache_queried_tokens: admission.cache_queried_tokens,
            cache_hit_tokens: admission.cache_hit_tokens,
            emissions,
        })
    }

    /// Moves waiting sequences into free slots (FIFO), looking their prompts up in the cache.
    fn admit(&mut self) -> Admission {
        let mut admission = Admission::default();
        let cache_on = self.params.cache_blocks > 0;
        while self.running.len() < self.params.slots {
            let Some(mut seq) = self.waiting.pop_front() else {
                break;
            };
            let hit_blocks = self.cache.lookup_and_insert(&seq.req.prompt_blocks);
            seq.cached_tokens = cached_tokens(&seq.req, hit_blocks, self.params.block_size_bytes);
            admission.count += 1;
            admission.prefill_tokens += seq.req.prompt_tokens - seq.cached_tokens;
            admission.prompt_tokens += seq.req.prompt_tokens;
            if cache_on {
                admission.cache_queried_tokens += seq.req.prompt_tokens;
                admission.cache_hit_tokens += seq.cached_tokens;
            }
            self.running.push(seq);
        }
        admission
    }
}

fn emit_one(seq: &mut Seq) -> Emission {
    let index = seq.emitted;
    seq.emitted += 1;
    Emission {
        id: seq.id,
        index,
        cached_tokens: seq.cached_tokens,
        finish: (seq.emitted >= seq.target).then_some(seq.finish),
    }
}

/// Prompt tokens covered by `hit_blocks` cached blocks, in proportion of the prompt's bytes;
/// at least one token is left to compute.
fn cached_tokens(req: &SeqRequest, hit_blocks: usize, block_size: usize) -> u64 {
    if req.prompt_bytes == 0 || req.prompt_tokens == 0 {
        return 0;
    }
    let cached_bytes = (hit_blocks as u128 * block_size as u128).min(req.prompt_bytes as u128);
    let tokens = u128::from(req.prompt_tokens) * cached_bytes / req.prompt_bytes as u128;
    (tokens as u64).min(req.prompt_tokens - 1)
}

#[cfg(test)]
mod tests {
    use super::super::prefix_cache::prompt_block_hashes;
    use super::*;

    fn params(slots: usize) -> EngineParams {
        EngineParams {
            slots,
            prefill_per_token: Duration::from_micros(10),
            decode_base: Duration::from_millis(5),
            decode_per_seq: Duration::from_micros(500),
            queue_bound: None,
            cache_blocks: 1000,
            block_size_bytes: 16,
            mean_output_tokens: 20.0,
        }
    }

    fn exact(prompt: &str, tokens: u32) -> SeqRequest {
        SeqRequest {
            prompt_tokens: (prompt.len() as u64).div_ceil(4),
            prompt_bytes: prompt.len(),
            prompt_blocks: prompt_block_hashes(prompt.as_bytes(), 16),
            length: LengthRequest {
                max_tokens: tokens,
                min_tokens: 0,
                ignore_eos: true,
            },
        }
    }

    #[test]
    fn step_time_grows_with_batch() {
        let p = params(64);
        assert_eq!(p.step_time(0, 0), Duration::from_millis(5));
        assert_eq!(p.step_time(10, 0), Duration::from_millis(10));
        assert_eq!(p.step_time(10, 100), Duration::from_millis(11));

        // Through the engine: a step with 8 sequences decoding is slower than with 1.
        let mut one = Engine::new(p.clone(), 1);
        let mut eight = Engine::new(p, 1);
        one.submit(exact("", 10)).unwrap();
        for _ in 0..8 {
            eight.submit(exact("", 10)).unwrap();
        }
        let (a, b) = (one.step().unwrap(), eight.step().unwrap());
        assert_eq!((a.batch, b.batch), (1, 8));
        assert!(b.duration > a.duration);
    }

    #[test]
    fn sequences_beyond_slots_wait_in_fifo_order() {
        let mut engine = Engine::new(params(2), 1);
        let ids: Vec<_> = (0..5)
            .map(|_| engine.submit(exact("", 2)).unwrap())
            .collect();
        let step = engine.step().unwrap();
        assert_eq!(step.admitted, 2);
        assert_eq!((engine.running_len(), engine.waiting_len()), (2, 3));
        let served: Vec<_> = step.emissions.iter().map(|e| e.id).collect();
        assert_eq!(served, ids[..2]);

        // Second step finishes the first two (2 tokens each) and frees their slots.
        let step = engine.step().unwrap();
        assert!(step
            .emissions
            .iter()
            .all(|e| e.finish == Some(FinishReason::Length)));
        assert_eq!(engine.running_len(), 0);
        // ... but the step computing their last tokens still runs both.
        assert_eq!(engine.batch_in_progress(), 2);
        // Third step admits the next in arrival order.
        let step = engine.step().unwrap();
        let served: Vec<_> = step.emissions.iter().map(|e| e.id).collect();
        assert_eq!(served, ids[2..4]);
    }

    #[test]
    fn bounded_queue_rejects() {
        let mut engine = Engine::new(
            EngineParams {
                queue_bound: Some(2),
                ..params(1)
            },
            1,
        );
        assert!(engine.submit(exact("", 1)).is_ok());
        assert!(engine.submit(exact("", 1)).is_ok());
        assert_eq!(engine.submit(exact("", 1)), Err(QueueFull));
        engine.step(); // admits one: room again
        assert!(engine.submit(exact("", 1)).is_ok());
    }

    #[test]
    fn prefix_cache_hit_cuts_prefill() {
        let mut engine = Engine::new(params(4), 1);
        let prompt = "You are a helpful assistant. Answer briefly and precisely: what is 2+2?";
        engine.submit(exact(prompt, 1)).unwrap();
        let cold = engine.step().unwrap();
        engine.submit(exact(prompt, 1)).unwrap();
        let warm = engine.step().unwrap();
        let tokens = (prompt.len() as u64).div_ceil(4);
        assert_eq!(cold.prefill_tokens, tokens);
        assert!(warm.prefill_tokens >= 1 && warm.prefill_tokens < tokens / 2);
        assert!(warm.duration < cold.duration);
        assert_eq!(
            warm.emissions[0].cached_tokens,
            tokens - warm.prefill_tokens
        );
        assert_eq!(cold.emissions[0].cached_tokens, 0);
        // The step's counts: every prompt token queried, the cached ones hit.
        assert_eq!(
            (cold.admitted_prompt_tokens, cold.cache_queried_tokens),
            (tokens, tokens)
        );
        assert_eq!(cold.cache_hit_tokens, 0);
        assert_eq!(warm.cache_queried_tokens, tokens);
        assert_eq!(warm.cache_hit_tokens, tokens - warm.prefill_tokens);

        // Cache disabled: nothing queried.
        let mut off = Engine::new(
            EngineParams {
                cache_blocks: 0,
                ..params(4)
            },
            1,
        );
        off.submit(exact(prompt, 1)).unwrap();
        let step = off.step().unwrap();
        assert_eq!(
            (step.admitted_prompt_tokens, step.cache_queried_tokens),
            (tokens, 0)
        );
    }

    #[test]
    fn kv_tokens_are_prompt_plus_generated_of_running() {
        let mut engine = Engine::new(params(1), 1);
        engine.submit(exact("abcdefgh", 3)).unwrap(); // 2 prompt tokens
        engine.submit(exact("abcd", 3)).unwrap(); // waits: holds nothing
        assert_eq!(engine.kv_tokens(), 0);
        engine.step();
        assert_eq!(engine.kv_tokens(), 2 + 1);
        engine.step();
        assert_eq!(engine.kv_tokens(), 2 + 2);
        engine.step(); // the first finishes and leaves; the second waits for the next step
        assert_eq!(engine.kv_tokens(), 0);
        engine.step();
        assert_eq!(engine.kv_tokens(), 1 + 1);
    }

    #[test]
    fn new_sequence_gets_its_first_token_in_its_prefill_step() {
        let mut engine = Engine::new(params(4), 1);
        let id = engine.submit(exact("abcd", 3)).unwrap();
        let step = engine.step().unwrap();
        assert_eq!(
            step.emissions,
            vec![Emission {
                id,
                index: 0,
                cached_tokens: 0,
                finish: None
            }]
        );
        assert_eq!(step.duration, engine.params().step_time(1, 1));
    }

    #[test]
    fn abort_frees_slot_and_queue() {
        let mut engine = Engine::new(params(1), 1);
        let a = engine.submit(exact("", 5)).unwrap();
        let b = engine.submit(exact("", 5)).unwrap();
        engine.step();
        assert!(engine.abort(a));
        assert!(!engine.abort(a));
        let step = engine.step().unwrap();
        assert_eq!(step.emissions[0].id, b);
        assert!(engine.abort(b));
        assert!(engine.is_idle());
        assert!(engine.step().is_none());
    }

    #[test]
    fn output_lengths() {
        let mut rng = StdRng::seed_from_u64(3);
        let ignore = LengthRequest {
            max_tokens: 40,
            min_tokens: 0,
            ignore_eos: true,
        };
        assert_eq!(
            sample_output_len(ignore, 5.0, &mut rng),
            (40, FinishReason::Length)
        );

        let eos = LengthRequest {
            ignore_eos: false,
            max_tokens: 10_000,
            ..ignore
        };
        let n = 4000;
        let lens: Vec<u32> = (0..n)
            .map(|_| sample_output_len(eos, 50.0, &mut rng).0)
            .collect();
        let mean = lens.iter().map(|&l| f64::from(l)).sum::<f64>() / f64::from(n);
        assert!((45.0..55.0).contains(&mean), "mean {mean}");
        assert!(lens.iter().all(|&l| l >= 1));

        // Capped by max_tokens, reported as "length".
        let capped = LengthRequest {
            max_tokens: 3,
            ..eos
        };
        let results: Vec<_> = (0..200)
            .map(|_| sample_output_len(capped, 50.0, &mut rng))
            .collect();
        assert!(results.iter().all(|&(l, _)| l <= 3));
        assert!(results.contains(&(3, FinishReason::Length)));

        // min_tokens: EOS never comes before.
        let min = LengthRequest {
            min_tokens: 30,
            max_tokens: 10_000,
            ..eos
        };
        assert!((0..200).all(|_| sample_output_len(min, 2.0, &mut rng).0 > 30));

        // Mean 1: EOS right after the first token.
        assert_eq!(
            sample_output_len(eos, 1.0, &mut rng),
            (1, FinishReason::Stop)
        );
    }

    /// The defaults promise a knee at a few tens of requests/s for ~150-token prompts and
    /// 48 output tokens: saturate the engine in virtual time and measure.
    #[test]
    fn default_capacity_is_a_few_tens_of_requests_per_second() {
        let params = EngineParams::from_config(&SimConfig::default());
        let mut engine = Engine::new(params, 1);
        let request = |i: usize| {
            let prompt = format!("{i:>600}"); // 600 distinct bytes: 150 tokens, no cache hit
            SeqRequest {
                length: LengthRequest {
                    max_tokens: 48,
                    ..exact("", 48).length
                },
                ..exact(&prompt, 48)
            }
        };
        for i in 0..128 {
            engine.submit(request(i)).unwrap();
        }
        let (mut elapsed, mut done, mut next) = (Duration::ZERO, 0u32, 128);
        while elapsed < Duration::from_secs(20) {
            let step = engine.step().unwrap();
            elapsed += step.duration;
            let finished = step.emissions.iter().filter(|e| e.finish.is_some()).count();
            done += finished as u32;
            for _ in 0..finished {
                engine.submit(request(next)).unwrap(); // closed loop: keep the queue full
                next += 1;
            }
        }
        let per_second = f64::from(done) / elapsed.as_secs_f64();
        assert!((15.0..40.0).contains(&per_second), "{per_second} req/s");
    }

    #[test]
    fn engine_lengths_follow_request() {
        let mut engine = Engine::new(params(8), 9);
        let mut req = exact("", 7);
        engine.submit(req.clone()).unwrap();
        req.length.ignore_eos = false;
        req.length.max_tokens = 1000;
        engine.submit(req).unwrap();
        let mut counts = [0u32; 2];
        let mut reasons = [None; 2];
        while let Some(step) = engine.step() {
            for e in step.emissions {
                counts[e.id as usize] += 1;
                assert_eq!(e.index + 1, counts[e.id as usize]);
                if e.finish.is_some() {
                    reasons[e.id as usize] = e.finish;
                }
            }
        }
        assert_eq!(counts[0], 7);
        assert_eq!(reasons[0], Some(FinishReason::Length));
        assert!(reasons[1].is_some());
        assert!(counts[1] >= 1);
    }
}
