//! Live control (pure): the commands, and what each does to the step running now.
//!
//! A command is checked against the step's state before anything changes, so a refused one
//! changes nothing and says why; an accepted one becomes one `ControlEvent`.

use sinks::event::ControlAction;

/// What someone asked of the running benchmark.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Command {
    Pause,
    Resume,
    /// Pause when sending, resume when paused (the console's key).
    TogglePause,
    /// Closed loop: this many virtual users.
    SetUsers(u64),
    /// Open loop: this many arrivals per second.
    SetRate(f64),
    /// A quarter more (`up`) or less of the current users or rate (the console's keys).
    Scale {
        up: bool,
    },
    /// End the step's sending now; the sweep goes on with its next step.
    EndStep,
}

/// What the step sends with, as far as control is concerned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Virtual users, at most `max`.
    Closed { users: u64, max: u64 },
    /// Arrivals at `rate` per second.
    Open { rate: f64 },
    /// A trace's own arrival times: nothing to set, nothing to pause.
    Replay,
}

/// Upper bound of a rate set by hand: beyond it a typo, not a benchmark.
pub const MAX_RATE: f64 = 1_000_000.0;

/// The running step's state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepControl {
    pub step: u32,
    pub mode: Mode,
    pub paused: bool,
    pub ending: bool,
}

/// An accepted command: the action and its value, for the event.
pub type Applied = (ControlAction, Option<f64>);

impl StepControl {
    pub fn new(step: u32, mode: Mode) -> Self {
        StepControl {
            step,
            mode,
            paused: false,
            ending: false,
        }
    }

    /// Applies `cmd` to the state, or says why it cannot be (the state is then unchanged).
    pub fn apply(&mut self, cmd: Command) -> Result<Applied, String> {
        if self.ending {
            return Err(format!("step {} is already ending", self.step));
        }
        match cmd {
            Command::TogglePause if self.paused => self.apply(Command::Resume),
            Command::TogglePause => self.apply(Command::Pause),
            Command::Pause => {
                self.no_replay("paused")?;
                if self.paused {
                    return Err(format!("step {} is already paused", self.step));
                }
                self.paused = true;
                Ok((ControlAction::Pause, None))
            }
            Command::Resume => {
                if !self.paused {
                    return Err(format!("step {} is not paused", self.step));
                }
                self.paused = false;
                Ok((ControlAction::Resume, None))
            }
            Command::SetUsers(n) => self.set_users(n),
            Command::SetRate(r) => self.set_rate(r),
            Command::Scale { up } => match self.mode {
                Mode::Closed { users, .. } => {
                    let step = (users / 4).max(1);
                    self.set_users(if up {
                        users + step
                    } else {
                        users - step.min(users - 1)
                    })
                }
                Mode::Open { rate } => self.set_rate(if up { rate * 1.25 } else { rate * 0.8 }),
                Mode::Replay => Err(self.replay_refusal("scaled")),
            },
            Command::EndStep => {
                self.ending = true;
                Ok((ControlAction::EndStep, None))
            }
        }
    }

    fn no_replay(&self, what: &str) -> Result<(), String> {
        match self.mode {
            Mode::Replay => Err(self.replay_refusal(what)),
            _ => Ok(()),
        }
    }

    fn replay_refusal(&self, what: &str) -> String {
        format!(
            "step {} replays a trace at its own times: it cannot be {what}",
            self.step
        )
    }

    fn set_users(&mut self, n: u64) -> Result<Applied, String> {
        let Mode::Closed { users, max } = &mut self.mode else {
            return Err(format!(
                "step {} is open loop: set its rate, not its users",
                self.step
            ));
        };
        if n == 0 {
            return Err("users must be at least 1 (to stop sending, pause)".into());
        }
        if n > *max {
            return Err(format!(
                "{n} users is above --max-vus {max} (the connection pool's size): start the run with a higher --max-vus"
            ));
        }
        *users = n;
        Ok((ControlAction::SetUsers, Some(n as f64)))
    }

    fn set_rate(&mut self, r: f64) -> Result<Applied, String> {
        let Mode::Open { rate } = &mut self.mode else {
            self.no_replay("given a rate")?;
            return Err(format!(
                "step {} is closed loop: set its users, not a rate",
                self.step
            ));
        };
        if !(r.is_finite() && r > 0.0 && r <= MAX_RATE) {
            return Err(format!(
                "the rate must be above 0 and at most {MAX_RATE} requests per second, got {r}"
            ));
        }
        // Two decimals, as step ids show rates.
        *rate = (r * 100.0).round() / 100.0;
        Ok((ControlAction::SetRate, Some(*rate)))
    }
}

/// A command from an HTTP request: `POST /pause`, `/resume`, `/end-step`, `/users` and `/rate`
/// (the value as the body, `32` or `{"value": 32}`, or as `?value=32`).
pub fn parse(path: &str, query: &str, body: &str) -> Result<Command, String> {
    let value = || value_of(query, body);
    match path.trim_end_matches('/') {
        "/pause" => Ok(Command::Pause),
        "/resume" => Ok(Command::Resume),
        "/end-step" => Ok(Command::EndStep),
        "/users" => {
            let v = value()?;
            if v.fract() != 0.0 || v < 0.0 {
                return Err(format!("users must be a whole number, got {v}"));
            }
            Ok(Command::SetUsers(v as u64))
        }
        "/rate" => Ok(Command::SetRate(value()?)),
        other => Err(format!(
            "unknown control '{other}': use /pause, /resume, /users, /rate or /end-step"
        )),
    }
}

fn value_of(query: &str, body: &str) -> Result<f64, String> {
    let from_query = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("value="))
        .map(str::to_string);
    let body = body.trim();
    let text = match from_query {
        Some(q) => q,
        None if body.starts_with('{') => {
            let v: serde_json::Value =
                serde_json::from_str(body).map_err(|e| format!("bad JSON body: {e}"))?;
            match v.get("value") {
                Some(n) => n.to_string(),
                None => return Err(r#"the JSON body needs a "value""#.into()),
            }
        }
        None => body.to_string(),
    };
    if text.is_empty() {
        return Err("a value is needed: as the body (32) or ?value=32".into());
    }
    text.parse::<f64>()
        .map_err(|_| format!("'{text}' is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(users: u64) -> StepControl {
        StepControl::new(1, Mode::Closed { users, max: 32 })
    }

    #[test]
    fn pause_and_resume_alternate() {
        let mut c = closed(8);
        assert_eq!(c.apply(Command::Pause), Ok((ControlAction::Pause, None)));
        assert!(c
            .apply(Command::Pause)
            .unwrap_err()
            .contains("already paused"));
        assert_eq!(
            c.apply(Command::TogglePause),
            Ok((ControlAction::Resume, None))
        );
        assert!(c.apply(Command::Resume).unwrap_err().contains("not paused"));
        assert_eq!(
            c.apply(Command::TogglePause),
            Ok((ControlAction::Pause, None))
        );
    }

    #[test]
    fn users_are_bounded_by_max_vus_and_belong_to_closed_loops() {
        let mut c = closed(8);
        assert_eq!(
            c.apply(Command::SetUsers(32)),
            Ok((ControlAction::SetUsers, Some(32.0)))
        );
        let before = c;
        assert!(c
            .apply(Command::SetUsers(33))
            .unwrap_err()
            .contains("--max-vus 32"));
        assert!(c.apply(Command::SetUsers(0)).is_err());
        assert!(c
            .apply(Command::SetRate(3.0))
            .unwrap_err()
            .contains("closed loop"));
        assert_eq!(c, before, "a refused command changes nothing");
        let mut o = StepControl::new(2, Mode::Open { rate: 10.0 });
        assert!(o
            .apply(Command::SetUsers(3))
            .unwrap_err()
            .contains("open loop"));
        assert_eq!(
            o.apply(Command::SetRate(12.345)),
            Ok((ControlAction::SetRate, Some(12.35)))
        );
        assert!(o.apply(Command::SetRate(0.0)).is_err());
        assert!(o.apply(Command::SetRate(f64::NAN)).is_err());
    }

    #[test]
    fn scaling_moves_a_quarter_and_keeps_one_user() {
        let mut c = closed(8);
        assert_eq!(
            c.apply(Command::Scale { up: true }),
            Ok((ControlAction::SetUsers, Some(10.0)))
        );
        let mut one = closed(1);
        assert!(one.apply(Command::Scale { up: false }).is_ok());
        assert_eq!(one.mode, Mode::Closed { users: 1, max: 32 });
        let mut o = StepControl::new(2, Mode::Open { rate: 10.0 });
        assert_eq!(
            o.apply(Command::Scale { up: false }),
            Ok((ControlAction::SetRate, Some(8.0)))
        );
    }

    #[test]
    fn a_replay_cannot_be_paused_or_given_a_rate() {
        let mut r = StepControl::new(1, Mode::Replay);
        assert!(r.apply(Command::Pause).unwrap_err().contains("trace"));
        assert!(r
            .apply(Command::SetRate(2.0))
            .unwrap_err()
            .contains("trace"));
        assert!(r
            .apply(Command::Scale { up: true })
            .unwrap_err()
            .contains("trace"));
        assert_eq!(
            r.apply(Command::EndStep),
            Ok((ControlAction::EndStep, None))
        );
        assert!(r
            .apply(Command::EndStep)
            .unwrap_err()
            .contains("already ending"));
    }

    #[test]
    fn http_paths_and_values() {
        assert_eq!(parse("/pause", "", ""), Ok(Command::Pause));
        assert_eq!(parse("/end-step/", "", ""), Ok(Command::EndStep));
        assert_eq!(parse("/users", "", "32\n"), Ok(Command::SetUsers(32)));
        assert_eq!(parse("/users", "value=16", ""), Ok(Command::SetUsers(16)));
        assert_eq!(
            parse("/rate", "", r#"{"value": 2.5}"#),
            Ok(Command::SetRate(2.5))
        );
        assert!(parse("/users", "", "3.5").unwrap_err().contains("whole"));
        assert!(parse("/users", "", "")
            .unwrap_err()
            .contains("value is needed"));
        assert!(parse("/rate", "", "fast")
            .unwrap_err()
            .contains("not a number"));
        assert!(parse("/stop", "", "")
            .unwrap_err()
            .contains("unknown control"));
    }
}
