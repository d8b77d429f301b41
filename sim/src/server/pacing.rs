//! When each token is due: the engine loop (continuous batching, absolute step deadlines) or, in
//! fixed- and random-timing modes, a producer task per request on its own schedule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::config::{DurationRange, FixedTiming, RandomTiming};
use crate::engine::{sample_output_len, Emission, FinishReason, SeqRequest};
use crate::metrics::{Metrics, Producing};
use crate::openai::ApiError;
use crate::record::Recorder;

use super::{EngineHandle, Mode, Plan, Shared, MAX_STEP_LAG};

/// The engine loop: one step at a time, on absolute deadlines.
/// Step starts and idleness go to `metrics` (admissions, the GPU's utilization) and the
/// recorder's batch log at once.
pub(super) async fn engine_loop(
    handle: Arc<EngineHandle>,
    metrics: Arc<Metrics>,
    recorder: Arc<Recorder>,
) {
    let mut next_start: Option<Instant> = None;
    loop {
        let step = {
            let mut state = handle.state.lock();
            state.prune_disconnected();
            let step = state.engine.step();
            // Under the lock: a scrape never sees the batch without its admissions' counts.
            match &step {
                Some(step) => metrics.on_step_start(step, Instant::now()),
                None => metrics.on_engine_idle(Instant::now()),
            }
            recorder.on_batch(step.as_ref().map_or(0, |s| s.batch));
            step
        };
        let Some(step) = step else {
            next_start = None;
            handle.wake.notified().await;
            continue;
        };
        let now = Instant::now();
        let start = match next_start {
            Some(due) if now.saturating_duration_since(due) <= MAX_STEP_LAG => due,
            _ => now,
        };
        let deadline = start.checked_add(step.duration).unwrap_or(now);
        tokio::time::sleep_until(deadline.into()).await;
        handle.state.lock().deliver(step.emissions);
        next_start = Some(deadline);
    }
}

/// When each token of one request is due (fixed- and random-timing modes): absolute instants
/// from the request's receipt, so a late wake-up never shifts the tokens after it.
pub(crate) enum TokenSchedule {
    /// Token k at first + k × ITL.
    Fixed {
        first: Option<Instant>,
        itl: Duration,
    },
    /// Token 0 at receipt + a drawn TTFT, token k at token k−1's due time + a drawn gap.
    Random {
        next: Option<Instant>,
        itl: DurationRange,
        rng: Box<StdRng>,
    },
}

impl TokenSchedule {
    pub(crate) fn fixed(timing: FixedTiming, received: Instant) -> Self {
        TokenSchedule::Fixed {
            first: received.checked_add(timing.ttft),
            itl: timing.itl,
        }
    }

    /// Draws the TTFT now and a seed for the request's own gap draws (lazy, one per token).
    pub(crate) fn random(timing: RandomTiming, rng: &mut StdRng, received: Instant) -> Self {
        let ttft = timing.ttft.sample(rng);
        TokenSchedule::Random {
            next: received.checked_add(ttft),
            itl: timing.itl,
            rng: Box::new(StdRng::seed_from_u64(rng.random())),
        }
    }

    /// Due time of token `index`; called for 0, 1, 2, … in order. None: beyond the clock.
    pub(crate) fn due(&mut self, index: u32) -> Option<Instant> {
        match self {
            TokenSchedule::Fixed { first, itl } => (*first)?.checked_add(itl.checked_mul(index)?),
            TokenSchedule::Random { next, itl, rng } => {
                if index > 0 {
                    *next = (*next)?.checked_add(itl.sample(&mut **rng));
                }
                *next
            }
        }
    }
}

/// Fixed- and random-timing modes: each token is sent at its schedule's absolute due time
/// (never summed sleeps).
async fn timed_producer(
    tx: UnboundedSender<Emission>,
    mut schedule: TokenSchedule,
    (len, finish): (u32, FinishReason),
    mut producing: Producing,
) {
    for index in 0..len {
        let Some(due) = schedule.due(index) else {
            return; // beyond the clock's range: the client will have given up long before
        };
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => {}
            _ = tx.closed() => return,
        }
        let emission = Emission {
            id: 0,
            index,
            cached_tokens: 0,
            finish: (index + 1 == len).then_some(finish),
        };
        if tx.send(emission).is_err() {
            return;
        }
        producing.token();
    }
}

/// Starts generating: queues the sequence in the engine, or spawns its timed producer.
pub(super) fn start_generation(
    shared: &Shared,
    plan: &Plan,
    received: Instant,
) -> Result<UnboundedReceiver<Emission>, ApiError> {
    let (tx, rx) = unbounded_channel();
    match &shared.mode {
        Mode::Engine(handle) => {
            {
                let mut state = handle.state.lock();
                let id = state
                    .engine
                    .submit(SeqRequest {
                        prompt_tokens: plan.prompt_tokens,
                        prompt_bytes: plan.prompt_bytes,
                        prompt_blocks: plan.prompt_blocks.clone(),
                        length: plan.length,
                    })
                    .map_err(|_| ApiError::queue_full())?;
                state.senders.insert(id, tx);
            }
            handle.wake.notify_one();
        }
        Mode::Fixed(timing) => {
            spawn_timed(shared, plan, tx, TokenSchedule::fixed(*timing, received));
        }
        Mode::Random(timing, rng) => {
            let schedule = TokenSchedule::random(*timing, &mut rng.lock(), received);
            spawn_timed(shared, plan, tx, schedule);
        }
    }
    Ok(rx)
}

/// Fixed- and random-timing modes: draws the output length, then sends on `schedule`.
fn spawn_timed(
    shared: &Shared,
    plan: &Plan,
    tx: UnboundedSender<Emission>,
    schedule: TokenSchedule,
) {
    let len = sample_output_len(
        plan.length,
        shared.cfg.mean_output_tokens,
        &mut shared.rng.lock(),
    );
    let producing = shared.metrics.start_producing(plan.prompt_tokens);
    actix_rt::spawn(timed_producer(tx, schedule, len, producing));
}
