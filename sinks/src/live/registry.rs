//! Starting live sinks (each on an arbiter of its own, behind its buffer) and flushing them all.

use std::sync::Arc;

use actix_rt::Arbiter;
use tokio::sync::mpsc;

use super::buffer::{BufferConfig, BufferStats};
use super::handle::LiveSink;
use super::{runtime, Sink};
use crate::json::report::RunStatus;

/// Where a run's live sinks are started. Adding a sink is one [`start`](Self::start) call.
#[derive(Default)]
pub struct SinkRegistry {
    sinks: Vec<LiveSink>,
    threads: Vec<Arbiter>,
}

impl SinkRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts the sink `make` builds on an arbiter of its own, behind a buffer of `buffer`.
    /// `make` runs on that arbiter: clients and timers the sink builds belong to its runtime.
    pub fn start<S: Sink>(
        &mut self,
        buffer: BufferConfig,
        make: impl FnOnce() -> S + Send + 'static,
    ) -> LiveSink {
        let arbiter = Arbiter::new();
        let (tx, rx) = mpsc::channel(buffer.capacity.max(1));
        let stats = Arc::new(BufferStats::default());
        runtime::start(&arbiter.handle(), buffer, stats.clone(), rx, make);
        let sink = LiveSink::new(S::NAME, buffer, tx, stats);
        self.sinks.push(sink.clone());
        self.threads.push(arbiter);
        sink
    }

    /// The sinks (for the Recorder and the coordinator) and their threads (for whoever keeps
    /// them up until the end, e.g. `/metrics` through `--prometheus-linger`).
    pub fn into_parts(self) -> (SinkSet, SinkThreads) {
        (SinkSet(self.sinks), SinkThreads(self.threads))
    }
}

/// A run's live sinks.
#[derive(Clone, Default)]
pub struct SinkSet(Vec<LiveSink>);

impl SinkSet {
    pub fn iter(&self) -> impl Iterator<Item = &LiveSink> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Flushes every sink, one after the other, and returns their reports by name. A failing
    /// sink is logged, never fatal (the results are already written).
    pub async fn flush_all(&self, status: RunStatus) -> serde_json::Map<String, serde_json::Value> {
        let mut reports = serde_json::Map::new();
        for sink in &self.0 {
            let reply = sink.flush(status).await;
            if let Err(e) = &reply.result {
                log::error!("{} sink: final flush failed: {e}", sink.name());
            }
            reports.insert(sink.name().to_string(), reply.report.into());
        }
        reports
    }
}

/// The arbiters the live sinks run on.
#[derive(Default)]
pub struct SinkThreads(Vec<Arbiter>);

impl SinkThreads {
    /// Stops every sink's arbiter (and what it still serves) and waits for its thread.
    pub fn stop(self) {
        for a in &self.0 {
            a.stop();
        }
        for a in self.0 {
            let _ = a.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::live::{flushed, BufferPolicy, FlushFuture, SinkContext};
    use actix::AsyncContext;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::{Duration, Instant};

    /// Breaks the contract on purpose: sleeps on every event.
    struct Sleepy(Duration);

    impl Sink for Sleepy {
        const NAME: &'static str = "sleepy";

        fn on_event(&mut self, _: &Event, _: &mut SinkContext<Self>) {
            std::thread::sleep(self.0);
        }

        fn flush(&mut self, _: RunStatus, _: &mut SinkContext<Self>) -> FlushFuture<Self> {
            flushed(Ok(()))
        }
    }

    fn events(n: usize) -> Vec<Event> {
        crate::testing::sample_run().into_iter().take(n).collect()
    }

    /// Flushes by waiting for its own background work, as OTLP (an export under way) and
    /// Prometheus (a push under way) do: that work holds a lock the flush needs.
    struct Busy(Arc<tokio::sync::Mutex<()>>);

    impl Sink for Busy {
        const NAME: &'static str = "busy";

        fn on_event(&mut self, _: &Event, ctx: &mut SinkContext<Self>) {
            let lock = self.0.clone();
            ctx.spawn(actix::fut::wrap_future(async move {
                let _held = lock.lock().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }));
        }

        fn flush(&mut self, _: RunStatus, _: &mut SinkContext<Self>) -> FlushFuture<Self> {
            let lock = self.0.clone();
            Box::pin(actix::fut::wrap_future(async move {
                drop(lock.lock().await);
                Ok(())
            }))
        }
    }

    #[actix_rt::test]
    async fn a_flush_that_waits_for_the_sinks_background_work_answers() {
        let mut registry = SinkRegistry::new();
        let sink = registry.start(BufferConfig::drop_newest(), || {
            Busy(Arc::new(tokio::sync::Mutex::new(())))
        });
        for e in events(3) {
            assert!(sink.offer(e).is_none());
        }
        // Let the background work start and take the lock.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let t = Instant::now();
        let reply = tokio::time::timeout(Duration::from_secs(5), sink.flush(RunStatus::Completed))
            .await
            .expect("the flush answers");
        assert!(reply.result.is_ok(), "{:?}", reply.result);
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        // Nothing reaches the sink after its flush: counted instead.
        assert!(sink.offer(events(1).remove(0)).is_none());
        let again = sink.flush(RunStatus::Completed).await;
        assert!(again.result.is_err());
        assert_eq!(again.report["events_delivered"], 3);
        assert_eq!(again.report["dropped_events"], 1);
        registry.into_parts().1.stop();
    }

    #[actix_rt::test]
    async fn a_full_drop_newest_buffer_drops_and_counts_without_waiting() {
        let mut registry = SinkRegistry::new();
        let buffer = BufferConfig::drop_newest().with_capacity(2);
        let sink = registry.start(buffer, || Sleepy(Duration::from_millis(20)));
        let t = Instant::now();
        for e in events(50) {
            assert!(sink.offer(e).is_none());
        }
        assert!(t.elapsed() < Duration::from_millis(20), "{:?}", t.elapsed());
        let reply = sink.flush(RunStatus::Completed).await;
        let (delivered, dropped) = (
            reply.report["events_delivered"].as_u64().unwrap(),
            reply.report["dropped_events"].as_u64().unwrap(),
        );
        assert!(dropped >= 40, "{:?}", reply.report);
        assert_eq!(delivered + dropped, 50, "every event delivered or counted");
        registry.into_parts().1.stop();
    }

    #[actix_rt::test]
    async fn a_full_block_buffer_makes_the_caller_wait_and_loses_nothing() {
        let mut registry = SinkRegistry::new();
        let buffer = BufferConfig::block().with_capacity(2);
        assert_eq!(buffer.policy, BufferPolicy::Block);
        let sink = registry.start(buffer, || Sleepy(Duration::from_millis(2)));
        for e in events(30) {
            if let Some(room) = sink.offer(e) {
                room.await;
            }
        }
        let reply = sink.flush(RunStatus::Completed).await;
        assert_eq!(reply.report["events_delivered"], 30);
        assert_eq!(reply.report["dropped_events"], 0);
        assert!(sink.stats().blocked.load(Relaxed) > 0);
        registry.into_parts().1.stop();
    }
}
