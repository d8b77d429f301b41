//! How a finished request's record reaches the Recorder: handed over, not written.
//!
//! A request leaves the in-flight count once its record is in the Recorder's mailbox, not once
//! the Recorder has tokenized, aggregated and logged it, so the Recorder's work never delays the
//! load. The mailbox is the same ordered queue as the coordinator's messages: a `FinishStep` sent
//! after the step's last request ended is handled after every record of the step.
//!
//! Bounded and lossless: at most `capacity` records wait in the mailbox. When they all do, the
//! next request waits for room (only for room, never for the Recorder's work on its record) and
//! the wait is counted (`sinks.results.handover_waits`): a run whose count is 0 was never slowed
//! by its recorder.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::Semaphore;

use crate::event::RequestFinished;
use crate::recorder::{HandOver, Recorder};

/// Records that may wait in the Recorder's mailbox: far above any run's requests in flight, a
/// few MB at most.
pub const HANDOVER_CAPACITY: usize = 4096;

/// The Recorder's address plus the handover's slots. Derefs to the address for every other
/// message (those are the coordinator's and the scheduler's, off the request path).
#[derive(Clone)]
pub struct RecorderHandle {
    addr: Addr<Recorder>,
    slots: Arc<Semaphore>,
    capacity: usize,
    waits: Arc<AtomicU64>,
}

impl RecorderHandle {
    pub fn new(addr: Addr<Recorder>, capacity: usize) -> Self {
        RecorderHandle {
            addr,
            slots: Arc::new(Semaphore::new(capacity.max(1))),
            capacity: capacity.max(1),
            waits: Arc::default(),
        }
    }

    pub fn addr(&self) -> &Addr<Recorder> {
        &self.addr
    }

    /// Puts `record` in the Recorder's queue; waits only if `capacity` records already wait.
    pub async fn hand_over(&self, record: RequestFinished) {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => {
                self.waits.fetch_add(1, Relaxed);
                // Never closed: an error cannot happen, but would only mean "no bound".
                self.slots.clone().acquire_owned().await.ok()
            }
        };
        if !self.addr.connected() {
            log::error!("the recorder is gone; a request record was lost");
            return;
        }
        self.addr.do_send(HandOver { record, slot });
    }

    /// Records waiting in the Recorder's queue now.
    pub fn queued(&self) -> usize {
        self.capacity - self.slots.available_permits()
    }

    /// `sinks.results` in the results document.
    pub fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "handover_capacity": self.capacity as u64,
            "handover_waits": self.waits.load(Relaxed),
        })
    }
}

impl Deref for RecorderHandle {
    type Target = Addr<Recorder>;

    fn deref(&self) -> &Addr<Recorder> {
        &self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Outcome, StepInfo, StepKind, StepWindow, TokenSource};
    use crate::recorder::{FinishStep, RecorderConfig, StartStep, TokenCounter};
    use std::time::{Duration, Instant};

    /// A tokenizer that takes its time, as a big one does on long outputs.
    struct Slow;

    impl TokenCounter for Slow {
        fn count(&self, text: &str) -> u64 {
            std::thread::sleep(Duration::from_millis(50));
            text.split_whitespace().count() as u64
        }
    }

    fn pending(i: u64) -> RequestFinished {
        RequestFinished {
            id: format!("r{i}"),
            step: 1,
            scheduled_at: i,
            sent_at: i,
            first_token_at: Some(i + 10),
            end_at: i + 20,
            chunk_offsets_us: vec![0],
            prompt_tokens: 1,
            requested_output_tokens: None,
            output_tokens: 0,
            output_tokens_source: TokenSource::Server,
            server_prompt_tokens: None,
            server_completion_tokens: None,
            server_cached_tokens: None,
            outcome: Outcome::Ok,
            http_status: Some(200),
            error: None,
            finish_reason: None,
            response_model: None,
            output_text: Some("two words".into()),
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: None,
        }
    }

    /// Handing over does not wait for the Recorder's work; a full queue waits for room only
    /// (and is counted); the step's end, sent after the records, sees every one of them.
    #[actix_rt::test]
    async fn hands_over_without_waiting_for_the_work_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = RecorderConfig {
            output_dir: dir.path().to_path_buf(),
            file_label: "m".into(),
            run_id: "h".into(),
            config_json: crate::json::example_config(serde_json::json!({})),
            save_requests: false,
            anchor_unix_nanos: 0,
            version: "0".into(),
        };
        let arbiter = actix_rt::Arbiter::new();
        let recorder = Recorder::new(cfg, Arc::new(Slow)).unwrap();
        let handle = RecorderHandle::new(recorder.start_in_arbiter(&arbiter.handle()), 4);
        handle
            .send(StartStep(
                StepInfo {
                    index: 1,
                    id: "s".into(),
                    kind: StepKind::Rate,
                    max_vus: 1,
                    rate: Some(1.0),
                    duration_secs: 1.0,
                },
                0,
            ))
            .await
            .unwrap();
        let t = Instant::now();
        for i in 0..4 {
            handle.hand_over(pending(i)).await;
        }
        assert!(t.elapsed() < Duration::from_millis(40), "{:?}", t.elapsed());
        assert_eq!(handle.report()["handover_waits"], 0);
        for i in 4..6 {
            handle.hand_over(pending(i)).await;
        }
        assert_eq!(handle.report()["handover_waits"], 2, "the queue was full");
        let window = StepWindow {
            start: 0,
            send_end: 10,
            end: 30,
        };
        let result = handle
            .send(FinishStep {
                step: 1,
                window,
                ended_early: None,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(result.total_requests, 6);
        assert_eq!(result.total_tokens, 12, "every record was completed");
        assert_eq!(handle.queued(), 0);
        arbiter.stop();
    }
}
