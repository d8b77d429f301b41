//! A live sink's bounded buffer: its capacity, what happens when it is full, and what it counted.
//! Pure but for the atomics the Recorder and the sink's arbiter share.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// Events a live sink may hold unprocessed unless it asks for another size: a few seconds of
/// requests at a high rate, a few MB at most (events share their request behind an `Arc`).
pub const DEFAULT_CAPACITY: usize = 4096;

/// What the Recorder does with an event when a sink's buffer is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferPolicy {
    /// Wait for room: nothing is lost, and a sink that cannot keep up slows the Recorder (and,
    /// once the handover queue fills, the load). For sinks that must be exact and are cheap.
    Block,
    /// Drop the event that does not fit, and count it: the run never waits for this sink.
    DropNewest,
}

impl BufferPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            BufferPolicy::Block => "block",
            BufferPolicy::DropNewest => "drop_newest",
        }
    }
}

/// A sink's buffer: how many events it holds, and what a full one does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferConfig {
    pub capacity: usize,
    pub policy: BufferPolicy,
}

impl BufferConfig {
    pub fn block() -> Self {
        BufferConfig {
            capacity: DEFAULT_CAPACITY,
            policy: BufferPolicy::Block,
        }
    }

    pub fn drop_newest() -> Self {
        BufferConfig {
            capacity: DEFAULT_CAPACITY,
            policy: BufferPolicy::DropNewest,
        }
    }

    pub fn with_capacity(self, capacity: usize) -> Self {
        // tokio's bounded channel needs room for at least one item.
        BufferConfig {
            capacity: capacity.max(1),
            ..self
        }
    }
}

/// What one sink's buffer saw. Written by the Recorder (offered, dropped, blocked) and by the
/// sink's arbiter (delivered); read at the final flush.
#[derive(Debug, Default)]
pub struct BufferStats {
    /// Events the Recorder gave this sink.
    pub offered: AtomicU64,
    /// Events the sink's `on_event` handled.
    pub delivered: AtomicU64,
    /// Events lost: the buffer was full (`DropNewest`) or the sink had stopped.
    pub dropped: AtomicU64,
    /// Events the Recorder had to wait for room for (`Block`).
    pub blocked: AtomicU64,
    /// The longest single `on_event`, in µs: a sink that blocks shows here.
    pub slowest_event_us: AtomicU64,
}

impl BufferStats {
    pub fn note_event_time(&self, d: std::time::Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.slowest_event_us.fetch_max(us, Relaxed);
    }

    /// The buffer's part of the sink's report in the results (`sinks.<name>`): scalars only.
    pub fn report(&self, cfg: BufferConfig) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("buffer_policy".into(), cfg.policy.as_str().into());
        m.insert("buffer_capacity".into(), (cfg.capacity as u64).into());
        m.insert(
            "events_delivered".into(),
            self.delivered.load(Relaxed).into(),
        );
        m.insert("dropped_events".into(), self.dropped.load(Relaxed).into());
        m.insert("blocked_events".into(), self.blocked.load(Relaxed).into());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn report_is_flat_and_names_the_policy() {
        let s = BufferStats::default();
        s.offered.fetch_add(5, Relaxed);
        s.delivered.fetch_add(3, Relaxed);
        s.dropped.fetch_add(2, Relaxed);
        s.note_event_time(Duration::from_micros(7));
        s.note_event_time(Duration::from_micros(3));
        assert_eq!(s.slowest_event_us.load(Relaxed), 7);
        let r = s.report(BufferConfig::drop_newest().with_capacity(8));
        assert_eq!(
            serde_json::Value::Object(r),
            serde_json::json!({
                "buffer_policy": "drop_newest",
                "buffer_capacity": 8,
                "events_delivered": 3,
                "dropped_events": 2,
                "blocked_events": 0,
            })
        );
    }

    #[test]
    fn capacity_is_at_least_one() {
        assert_eq!(BufferConfig::block().with_capacity(0).capacity, 1);
    }
}
