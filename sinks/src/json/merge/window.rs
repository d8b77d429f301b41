//! The window of a merged step, and its rates over it.
//!
//! Shards run side by side but never exactly together: each starts its steps a little earlier
//! or later. A merged step spans from the earliest shard's step start to the latest one's end,
//! on the wall clock, and every rate is the merged count over that span — so the merged entry
//! is self-consistent (`request_rate == successful_requests / duration_ms`), which summing the
//! shards' rates (each over its own window) is not.

use super::super::results::StepResult;
use crate::aggregate::per_second;

/// A merged step's span, in whole milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Window {
    /// After the merged document's `start_time`; `None` when an input step lacks `start_ms`.
    pub start_ms: Option<u64>,
    pub duration_ms: u64,
    pub send_duration_ms: u64,
    /// The time every shard was paused by live control (each was controlled on its own): at
    /// most the least of theirs. Rates leave it out, as a run's do.
    pub paused_ms: u64,
}

impl Window {
    /// `parts`: each input's step with its document's `start_time` in Unix ms. `anchor_ms`:
    /// the merged document's `start_time`, in Unix ms (no later than any input's).
    pub fn of<'a>(parts: impl Iterator<Item = (u64, &'a StepResult)>, anchor_ms: u64) -> Window {
        let parts: Vec<(u64, &StepResult)> = parts.collect();
        let starts: Option<Vec<u64>> = parts
            .iter()
            .map(|(doc_start, s)| s.start_ms.map(|at| doc_start + at))
            .collect();
        // Results written before steps had a start: take the steps as started together.
        let starts = starts.unwrap_or_else(|| vec![anchor_ms; parts.len()]);
        let start = starts.iter().copied().min().unwrap_or(anchor_ms);
        let span = |len: fn(&StepResult) -> u64| {
            let end = parts.iter().zip(&starts).map(|((_, s), at)| at + len(s));
            end.max().unwrap_or(start) - start
        };
        Window {
            start_ms: parts
                .iter()
                .all(|(_, s)| s.start_ms.is_some())
                .then(|| start.saturating_sub(anchor_ms)),
            duration_ms: span(|s| s.duration_ms),
            send_duration_ms: span(|s| s.send_duration_ms),
            paused_ms: parts.iter().map(|(_, s)| s.paused_ms).min().unwrap_or(0),
        }
    }

    /// `n` per second of the step's duration, paused time left out.
    pub fn rate(&self, n: u64) -> f64 {
        per_second(n, self.active_s())
    }

    /// The step's duration less its paused time, seconds: what its rates divide by.
    pub fn active_s(&self) -> f64 {
        self.duration_ms.saturating_sub(self.paused_ms) as f64 / 1e3
    }
}

/// Unix milliseconds of an RFC 3339 time (as the results write `start_time`).
pub(super) fn unix_ms(rfc3339: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339(rfc3339).ok()?;
    let since = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}
