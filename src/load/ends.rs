//! Requests' ends reach their step's supervisor in batches: one `RequestsEnded` message per
//! worker thread every [`BATCH_WINDOW`], not one per request. A message per request woke the
//! supervisor's thread for every request: at the generator's ceiling (benches/generator.py,
//! ~4,000 requests/s on one core) that was 1.8 more context switches per request and +16 % CPU
//! per token. Batched, the supervisor still hears of every end, at most `BATCH_WINDOW` late (the
//! drain of a step waits that much longer at most).

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::supervisor::How;
use super::StepContext;

/// How long a worker thread gathers ends before telling the supervisor.
pub const BATCH_WINDOW: Duration = Duration::from_millis(5);

/// Requests of a step that ended, by how.
#[derive(Message, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct RequestsEnded {
    pub ok: u64,
    pub failed: u64,
    /// Panicked, or their task was dropped (`internal_error`).
    pub died: u64,
    /// Abandoned after the cancel.
    pub cancelled: u64,
}

impl RequestsEnded {
    pub fn one(how: How) -> Self {
        let mut e = RequestsEnded::default();
        e.add(how);
        e
    }

    pub fn add(&mut self, how: How) {
        match how {
            How::Normal => self.ok += 1,
            How::Failed => self.failed += 1,
            How::Panicked | How::Dropped => self.died += 1,
            How::Cancelled => self.cancelled += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.ok + self.failed + self.died + self.cancelled
    }
}

thread_local! {
    /// This thread's ends not yet reported, per step.
    static PENDING: RefCell<Vec<(Arc<StepContext>, RequestsEnded)>> = const { RefCell::new(Vec::new()) };
}

/// Notes that a request of `step` ended `how`; the first end of a batch schedules its report.
pub fn report(step: &Arc<StepContext>, how: How) {
    let first = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let first = p.is_empty();
        match p.iter_mut().find(|(s, _)| Arc::ptr_eq(s, step)) {
            Some((_, ends)) => ends.add(how),
            None => p.push((step.clone(), RequestsEnded::one(how))),
        }
        first
    });
    if !first {
        return;
    }
    match actix_rt::Arbiter::try_current() {
        Some(arbiter) => {
            arbiter.spawn(async {
                actix_rt::time::sleep(BATCH_WINDOW).await;
                flush();
            });
        }
        // Not on an arbiter (nothing would run the timer): at once.
        None => flush(),
    }
}

/// Reports this thread's pending ends now.
pub fn flush() {
    let batches = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    for (step, ends) in batches {
        step.supervisor.do_send(ends);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_add_up_by_how() {
        let mut e = RequestsEnded::one(How::Normal);
        for how in [
            How::Failed,
            How::Panicked,
            How::Dropped,
            How::Cancelled,
            How::Normal,
        ] {
            e.add(how);
        }
        assert_eq!(
            e,
            RequestsEnded {
                ok: 2,
                failed: 1,
                died: 2,
                cancelled: 1
            }
        );
        assert_eq!(e.total(), 6);
    }
}
