//! The `StepSupervisor` actor: starts a step's sources (virtual users or the rate ticker), hears
//! every child's end by a message (`ChildEnded` from each user and the ticker, `RequestsEnded`
//! for the requests, batched per worker thread: `load/ends.rs`), restarts a
//! user whose task died while the step is still sending, tells its sources to stop by message,
//! and answers `AllEnded` once every child it started, and every request they began, ended.
//!
//! The counting is pure ([`Census`]); the actor only routes messages to it.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_rt::ArbiterHandle;
use tokio::sync::oneshot;

use super::ends::RequestsEnded;
use super::rate_ticker::{RateTicker, Saturation};
use super::schedule::Schedule;
use super::tracker::AbandonReason;
use super::virtual_user::VirtualUser;
use super::StepContext;
use crate::runtime::workers::Workers;

/// Which kind of child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    User,
    Ticker,
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// Its work is done (a request: it succeeded).
    Normal,
    /// A request that failed.
    Failed,
    Panicked,
    /// Its task was dropped before its end.
    Dropped,
    /// Cancelled or abandoned at shutdown.
    Cancelled,
}

#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct ChildEnded {
    pub child: Child,
    pub how: How,
}

/// End the step's sending now (window over, early end, signal): sent by the coordinator to the
/// supervisor, and by the supervisor to each source.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct Stop;

/// Live control: stop starting requests until `Resume` (requests in flight run to their end).
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct Pause;

/// Live control: send again after a `Pause`.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct Resume;

/// Live control, closed loop: run this many virtual users (the surplus finish their current
/// request and stop; new ones start now).
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct SetUsers(pub u64);

/// Live control, open loop: arrivals at this rate from now on.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct SetRate(pub f64);

/// Drop every request still running; each counts itself cancelled, for the reason given.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Abandon(pub AbandonReason);

/// Replies once every child ended.
#[derive(Message, Debug)]
#[rtype(result = "StepEnd")]
pub struct AllEnded;

/// The step is closed: the supervisor stops.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct Close;

/// What the supervisor reports at the end of its step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepEnd {
    pub restarted_users: u64,
    /// Requests that ended by a panic or a dropped task (`internal_error`).
    pub died_requests: u64,
}

/// The step's children, counted from their messages (pure).
#[derive(Debug, Default)]
pub struct Census {
    /// Sources (users, ticker) running.
    sources: u64,
    requests_ended: u64,
    end: StepEnd,
}

impl Census {
    pub fn source_started(&mut self) {
        self.sources += 1;
    }

    /// Counts `ended`; returns whether to start a new user in place of the one that ended
    /// (policy: a user whose task died is restarted while the step still sends).
    pub fn on_end(&mut self, ended: ChildEnded, still_sending: bool) -> bool {
        match ended.child {
            Child::Ticker => {
                self.sources = self.sources.saturating_sub(1);
                false
            }
            Child::User => {
                let died = matches!(ended.how, How::Panicked | How::Dropped);
                if died && still_sending {
                    self.end.restarted_users += 1;
                    return true;
                }
                self.sources = self.sources.saturating_sub(1);
                false
            }
        }
    }

    /// Requests that ended (reported in batches, see `load/ends.rs`).
    pub fn on_requests(&mut self, ends: RequestsEnded) {
        self.requests_ended += ends.total();
        self.end.died_requests += ends.died;
    }

    /// No source runs and every request begun (`started`, final once no source runs) ended.
    pub fn all_ended(&self, started: u64) -> bool {
        self.sources == 0 && self.requests_ended >= started
    }

    pub fn end(&self) -> StepEnd {
        self.end
    }
}

/// What a step sends with.
pub enum Sources {
    /// Closed loop: `count` virtual users until `send_until`.
    Users {
        count: u64,
        send_until: Instant,
        workers: Arc<Workers>,
    },
    /// Open loop: one rate ticker on `arbiter` starting requests on `workers`.
    Ticker {
        // Boxed: a schedule is far larger than the users' plan.
        schedule: Box<Schedule>,
        plan: Saturation,
        workers: Arc<Workers>,
        arbiter: ArbiterHandle,
    },
}

pub struct StepSupervisor {
    ctx: Arc<StepContext>,
    sources: Option<Sources>,
    /// To start a user again: its window's end and the arbiters.
    user_plan: Option<(Instant, Arc<Workers>)>,
    users: Vec<Addr<VirtualUser>>,
    ticker: Option<Addr<RateTicker>>,
    /// Paused by live control: users started meanwhile start paused.
    paused: bool,
    census: Census,
    waiting: Vec<oneshot::Sender<StepEnd>>,
}

impl StepSupervisor {
    pub fn new(ctx: Arc<StepContext>, sources: Sources) -> Self {
        StepSupervisor {
            ctx,
            sources: Some(sources),
            user_plan: None,
            users: Vec::new(),
            ticker: None,
            paused: false,
            census: Census::default(),
            waiting: Vec::new(),
        }
    }

    fn start_user(&mut self) {
        let Some((until, workers)) = &self.user_plan else {
            return;
        };
        let (c, until, paused) = (self.ctx.clone(), *until, self.paused);
        let addr = VirtualUser::start_in_arbiter(&workers.next(), move |_| {
            VirtualUser::new(c, until).paused(paused)
        });
        self.users.push(addr);
    }

    /// Users running and not told to stop.
    fn live_users(&mut self) -> &mut Vec<Addr<VirtualUser>> {
        self.users.retain(Addr::connected);
        &mut self.users
    }

    /// Tells every source `msg`.
    fn tell_sources<M>(&mut self, msg: M)
    where
        M: Message<Result = ()> + Send + Clone + 'static,
        VirtualUser: Handler<M>,
        RateTicker: Handler<M>,
    {
        for user in self.live_users() {
            user.do_send(msg.clone());
        }
        if let Some(t) = &self.ticker {
            t.do_send(msg);
        }
    }

    fn still_sending(&self) -> bool {
        let step = &self.ctx;
        let open = self
            .user_plan
            .as_ref()
            .is_some_and(|(u, _)| Instant::now() < *u);
        open && !step.tracker.sending_stopped() && !step.shared.shutdown.is_stopping()
    }

    fn reply_if_all_ended(&mut self) {
        if self.waiting.is_empty() || !self.census.all_ended(self.ctx.tracker.started()) {
            return;
        }
        for w in self.waiting.drain(..) {
            let _ = w.send(self.census.end());
        }
    }
}

impl Actor for StepSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        match self.sources.take() {
            Some(Sources::Users {
                count,
                send_until,
                workers,
            }) => {
                self.user_plan = Some((send_until, workers));
                for _ in 0..count {
                    self.census.source_started();
                    self.start_user();
                }
            }
            Some(Sources::Ticker {
                schedule,
                plan,
                workers,
                arbiter,
            }) => {
                self.census.source_started();
                let c = self.ctx.clone();
                self.ticker = Some(RateTicker::start_in_arbiter(&arbiter, move |_| {
                    RateTicker::new(c, *schedule, plan, workers)
                }));
            }
            None => {}
        }
    }
}

impl Handler<ChildEnded> for StepSupervisor {
    type Result = ();

    fn handle(&mut self, ended: ChildEnded, _: &mut Context<Self>) {
        log::debug!(
            "step {}: a {:?} ended ({:?})",
            self.ctx.step,
            ended.child,
            ended.how
        );
        let still_sending = self.still_sending();
        if self.census.on_end(ended, still_sending) {
            log::warn!(
                "step {}: a virtual user's task died ({:?}); starting it again",
                self.ctx.step,
                ended.how
            );
            self.start_user();
        }
        self.reply_if_all_ended();
    }
}

impl Handler<RequestsEnded> for StepSupervisor {
    type Result = ();

    fn handle(&mut self, ends: RequestsEnded, _: &mut Context<Self>) {
        self.census.on_requests(ends);
        self.reply_if_all_ended();
    }
}

impl Handler<Stop> for StepSupervisor {
    type Result = ();

    fn handle(&mut self, _: Stop, _: &mut Context<Self>) {
        self.ctx.tracker.stop_sending();
        self.tell_sources(Stop);
    }
}

impl Handler<Pause> for StepSupervisor {
    type Result = ();

    fn handle(&mut self, _: Pause, _: &mut Context<Self>) {
        self.paused = true;
        self.tell_sources(Pause);
    }
}

impl Handler<Resume> for StepSupervisor {
    type Result = ();

    fn handle(&mut self, _: Resume, _: &mut Context<Self>) {
        self.paused = false;
        self.tell_sources(Resume);
    }
}

impl Handler<SetUsers> for StepSupervisor {
    type Result = ();

    fn handle(&mut self, SetUsers(n): SetUsers, _: &mut Context<Self>) {
        let running = self.live_users().len() as u64;
        for _ in running..n {
            self.census.source_started();
            self.start_user();
        }
        // The newest users go first; each ends normally (not restarted) after its request.
        for _ in n..running {
            if let Some(user) = self.users.pop() {
                user.do_send(Stop);
            }
        }
    }
}

impl Handler<SetRate> for StepSupervisor {
    type Result = ();

    fn handle(&mut self, msg: SetRate, _: &mut Context<Self>) {
        if let Some(t) = &self.ticker {
            t.do_send(msg);
        }
    }
}

impl Handler<Abandon> for StepSupervisor {
    type Result = ();

    fn handle(&mut self, Abandon(why): Abandon, _: &mut Context<Self>) {
        self.ctx.tracker.abandon(why);
    }
}

impl Handler<AllEnded> for StepSupervisor {
    type Result = ResponseFuture<StepEnd>;

    fn handle(&mut self, _: AllEnded, _: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.waiting.push(tx);
        self.reply_if_all_ended();
        // A supervisor closed before every child ended replies with what it counted (nothing).
        Box::pin(async move { rx.await.unwrap_or_default() })
    }
}

impl Handler<Close> for StepSupervisor {
    type Result = ();

    fn handle(&mut self, _: Close, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(child: Child, how: How) -> ChildEnded {
        ChildEnded { child, how }
    }

    #[test]
    fn all_ended_needs_every_source_and_every_request() {
        let mut c = Census::default();
        c.source_started();
        assert!(!c.all_ended(0));
        c.on_requests(RequestsEnded::one(How::Normal));
        assert!(!c.on_end(ended(Child::Ticker, How::Normal), false));
        assert!(!c.all_ended(2), "one request still running");
        c.on_requests(RequestsEnded::one(How::Panicked));
        assert!(c.all_ended(2));
        assert_eq!(c.end().died_requests, 1);
    }

    #[test]
    fn a_dead_user_is_restarted_only_while_sending() {
        let mut c = Census::default();
        c.source_started();
        c.source_started();
        assert!(c.on_end(ended(Child::User, How::Panicked), true));
        assert!(c.on_end(ended(Child::User, How::Dropped), true));
        assert!(!c.on_end(ended(Child::User, How::Panicked), false));
        assert!(!c.on_end(ended(Child::User, How::Normal), true));
        assert!(c.all_ended(0));
        assert_eq!(c.end().restarted_users, 2);
    }
}
