//! Closed loop: a virtual user sends a request, streams it to the end, and sends the next one
//! until the step's sending window closes.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::conversation;
use super::StepContext;

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

impl Actor for VirtualUser {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let step = self.ctx.clone();
        let send_until = self.send_until;
        let fut = async move {
            while Instant::now() < send_until
                && !step.shared.shutdown.is_stopping()
                && !step.tracker.sending_stopped()
            {
                // Closed loop: the user is ready now, so it is scheduled now (a multi-turn
                // conversation is walked to its end here).
                conversation::send_next(&step, send_until).await;
            }
            step.tracker.source_ended();
        };
        ctx.spawn(fut.into_actor(self).map(|_, _, ctx| ctx.stop()));
    }
}
