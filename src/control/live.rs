//! The step live control acts on: opened by the coordinator's engine when a step's sources
//! start, closed when its sending ends, and changed by the Coordinator actor's `Control`
//! handler. The engine watches the state (a `watch` channel) to end the step or to judge the
//! server afresh after a change.

use std::sync::Arc;

use actix::prelude::*;
use parking_lot::Mutex;
use sinks::event::{ControlAction, ControlEvent};
use tokio::sync::watch;

use super::command::{Applied, Command, StepControl};
use crate::load::supervisor::{Pause, Resume, SetRate, SetUsers, StepSupervisor};

/// A command for the running benchmark, from `source` (`http`, `console`); answered with the
/// change it made, or why it made none.
#[derive(Message, Debug)]
#[rtype(result = "Result<ControlEvent, String>")]
pub struct Control {
    pub command: Command,
    pub source: &'static str,
}

/// The step sending now.
pub struct LiveStep {
    state: watch::Sender<StepControl>,
    supervisor: Addr<StepSupervisor>,
}

impl LiveStep {
    /// Opens `control` on `supervisor`'s step; the receiver follows every accepted change.
    pub fn new(
        control: StepControl,
        supervisor: Addr<StepSupervisor>,
    ) -> (Self, watch::Receiver<StepControl>) {
        let (state, rx) = watch::channel(control);
        (LiveStep { state, supervisor }, rx)
    }
}

/// Where the running step is, for whoever applies commands.
#[derive(Clone, Default)]
pub struct Controls(Arc<Mutex<Option<LiveStep>>>);

impl Controls {
    pub fn open(&self, step: LiveStep) {
        *self.0.lock() = Some(step);
    }

    /// The step's sending ended: commands are refused until the next one starts.
    pub fn close(&self) {
        *self.0.lock() = None;
    }

    /// The running step's state, if a step is sending.
    pub fn status(&self) -> Option<StepControl> {
        self.0.lock().as_ref().map(|l| *l.state.borrow())
    }

    /// Checks `command` against the running step and, if it is accepted, has the step's
    /// supervisor carry it out. Returns the step and what changed.
    pub fn apply(&self, command: Command) -> Result<(u32, Applied), String> {
        let guard = self.0.lock();
        let Some(live) = guard.as_ref() else {
            return Err("no step is sending now (the run is between steps or ending)".into());
        };
        let mut state = *live.state.borrow();
        let applied = state.apply(command)?;
        match applied {
            (ControlAction::Pause, _) => live.supervisor.do_send(Pause),
            (ControlAction::Resume, _) => live.supervisor.do_send(Resume),
            (ControlAction::SetUsers, Some(n)) => live.supervisor.do_send(SetUsers(n as u64)),
            (ControlAction::SetRate, Some(r)) => live.supervisor.do_send(SetRate(r)),
            // The engine, watching the state, ends the step.
            _ => {}
        }
        live.state.send_replace(state);
        Ok((state.step, applied))
    }
}
