//! Closed loop: a virtual user actor sends a request, streams it to the end, and sends the next
//! one until the step's sending window closes or its supervisor tells it to `Stop`.
//!
//! A user whose request failed in under [`FAST_FAILURE`] pauses [`FAST_FAILURE_PAUSE`] before
//! its next one: a failure that fast is a refusal (a closed port, an error status sent before
//! any work; 10 ms, not 1, so a loaded client machine still recognises one), and without a pause one user would turn into thousands of requests a
//! second against a server that is already failing. The next request keeps the time the user
//! became ready as its scheduled time, so the pause shows in its queue delay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use sinks::event::Nanos;

use super::conversation;
use super::in_flight::supervise;
use super::supervisor::{Child, ChildEnded, How, Pause, Resume, Stop};
use super::tracker::Ending;
use super::StepContext;

/// A failure faster than this was refused, not served.
pub const FAST_FAILURE: Duration = Duration::from_millis(10);
/// How long a user waits after such a failure: at most 10 refused requests a second per user.
pub const FAST_FAILURE_PAUSE: Duration = Duration::from_millis(100);

/// A user sends its units of work (a request, or a whole conversation) one after the other, each
/// a supervised task; between two it handles its supervisor's `Stop`.
pub struct VirtualUser {
    ctx: Arc<StepContext>,
    /// No request starts at or after this instant.
    send_until: Instant,
    /// Told to stop: ends once its current unit of work ended.
    stop: bool,
    busy: bool,
    /// Paused by live control: sends nothing until resumed.
    paused: bool,
    /// Waiting for a resume, ready to send.
    parked: bool,
    /// How it ended, reported to the supervisor when it stops.
    how: How,
}

impl VirtualUser {
    pub fn new(ctx: Arc<StepContext>, send_until: Instant) -> Self {
        VirtualUser {
            ctx,
            send_until,
            stop: false,
            busy: false,
            paused: false,
            parked: false,
            how: How::Normal,
        }
    }

    /// Starts paused (a user added while its step is paused).
    pub fn paused(mut self, paused: bool) -> Self {
        self.paused = paused;
        self
    }

    /// Waits for a resume; stops at the window's end if none comes (nothing else would wake
    /// it: the window's natural end sends no `Stop`).
    fn park(&mut self, ctx: &mut Context<Self>) {
        self.parked = true;
        let left = self.send_until.saturating_duration_since(Instant::now());
        ctx.run_later(left, |user, ctx| {
            if user.parked {
                ctx.stop();
            }
        });
    }

    fn sending(&self) -> bool {
        let step = &self.ctx;
        !self.stop
            && Instant::now() < self.send_until
            && !step.shared.shutdown.is_stopping()
            && !step.tracker.sending_stopped()
    }

    /// The next unit of work, after `pause` if the last one was refused at once. The user is
    /// ready now: that is the next request's scheduled time, so a pause shows in its queue delay.
    fn next(&mut self, ctx: &mut Context<Self>, pause: Option<Duration>) {
        if !self.sending() {
            ctx.stop();
            return;
        }
        let ready_at = self.ctx.shared.clock.now();
        match pause {
            Some(p) => {
                ctx.run_later(p, move |user, ctx| user.send(ctx, ready_at));
            }
            None => self.send(ctx, ready_at),
        }
    }

    fn send(&mut self, ctx: &mut Context<Self>, ready_at: Nanos) {
        if !self.sending() {
            ctx.stop();
            return;
        }
        if self.paused {
            self.park(ctx);
            return;
        }
        self.busy = true;
        let (step, until) = (self.ctx.clone(), self.send_until);
        let unit =
            async move { supervise(&step, conversation::send_next(&step, until, ready_at)).await };
        ctx.spawn(unit.into_actor(self).map(|ended, user, ctx| {
            user.busy = false;
            match ended {
                Ok(last) => user.next(ctx, pause_after(&last)),
                // Its requests counted themselves; the supervisor decides whether to restart it.
                Err(died) => {
                    user.how = died.how();
                    ctx.stop();
                }
            }
        }));
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
        self.ctx.tracker.user_started();
        self.next(ctx, None);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.ctx.tracker.user_ended();
        self.ctx.supervisor.do_send(ChildEnded {
            child: Child::User,
            how: self.how,
        });
    }
}

impl Handler<Stop> for VirtualUser {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        self.stop = true;
        // A unit of work in flight runs to its end (stopping now would drop it); a pause ends.
        if !self.busy {
            ctx.stop();
        }
    }
}

impl Handler<Pause> for VirtualUser {
    type Result = ();

    /// Its request in flight runs to its end; the next one waits for `Resume`.
    fn handle(&mut self, _: Pause, _: &mut Context<Self>) {
        self.paused = true;
    }
}

impl Handler<Resume> for VirtualUser {
    type Result = ();

    /// Sends at once if it was waiting; ready now, so the pause is not its queue delay.
    fn handle(&mut self, _: Resume, ctx: &mut Context<Self>) {
        self.paused = false;
        if std::mem::take(&mut self.parked) {
            let now = self.ctx.shared.clock.now();
            self.send(ctx, now);
        }
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
            ttft_ns: None,
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
