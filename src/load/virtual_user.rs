//! Closed loop: a virtual user sends a request, streams it to the end, and sends the next one
//! until the step's sending window closes.
//!
//! A user whose request failed in under [`FAST_FAILURE`] pauses [`FAST_FAILURE_PAUSE`] before
//! its next one: a failure that fast is a refusal (a closed port, an error status sent before
//! any work; 10 ms, not 1, so a loaded client machine still recognises one), and without a pause one user would turn into thousands of requests a
//! second against a server that is already failing. The next request keeps the time the user
//! became ready as its scheduled time, so the pause shows in its queue delay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::conversation;
use super::tracker::Ending;
use super::StepContext;
use crate::shutdown::Level;

/// A failure faster than this was refused, not served.
pub const FAST_FAILURE: Duration = Duration::from_millis(10);
/// How long a user waits after such a failure: at most 10 refused requests a second per user.
pub const FAST_FAILURE_PAUSE: Duration = Duration::from_millis(100);

pub struct VirtualUser {
    ctx: Arc<StepContext>,
    /// No request starts at or after this instant.
    send_until: Instant,
}

impl VirtualUser {
    /// The caller counts the user in with `tracker.source_started()` before starting it.
    pub fn new(ctx: Arc<StepContext>, send_until: Instant) -> Self {
        VirtualUser { ctx, send_until }
    }
}

/// The pause before the next request, after `last` ended.
pub fn pause_after(last: &Ending) -> Option<Duration> {
    let fast = Duration::from_nanos(last.e2e_ns) < FAST_FAILURE;
    (!last.ok && fast).then_some(FAST_FAILURE_PAUSE)
}

impl Actor for VirtualUser {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let step = self.ctx.clone();
        let send_until = self.send_until;
        let sending = move |step: &StepContext| {
            Instant::now() < send_until
                && !step.shared.shutdown.is_stopping()
                && !step.tracker.sending_stopped()
        };
        let fut = async move {
            let mut pause = None;
            while sending(&step) {
                // Closed loop: the user is ready now, so it is scheduled now (a multi-turn
                // conversation is walked to its end here).
                let ready_at = step.shared.clock.now();
                if let Some(p) = pause {
                    tokio::select! {
                        _ = tokio::time::sleep(p) => {}
                        _ = step.shared.shutdown.reached(Level::Stop) => {}
                        _ = step.tracker.sending_stop() => {}
                    }
                    if !sending(&step) {
                        break;
                    }
                }
                let last = conversation::send_next(&step, send_until, ready_at).await;
                pause = pause_after(&last);
            }
            step.tracker.source_ended();
        };
        ctx.spawn(fut.into_actor(self).map(|_, _, ctx| ctx.stop()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fast_failures_pause() {
        let ending = |ok, e2e_ns| Ending {
            ok,
            http_status: None,
            e2e_ns,
        };
        assert_eq!(
            pause_after(&ending(false, 200_000)),
            Some(FAST_FAILURE_PAUSE)
        );
        assert_eq!(
            pause_after(&ending(false, 15_000_000)),
            None,
            "a served failure"
        );
        assert_eq!(pause_after(&ending(true, 200_000)), None);
    }
}
