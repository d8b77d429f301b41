//! When live control paused a step (pure): its rates are over the time it was not paused.
//!
//! A pause stops the sending, not the requests in flight; the time it lasted is taken out of the
//! windows the step's rates divide by, so a step paused for half its window does not read half
//! its rate.

use crate::event::{ControlAction, ControlEvent, Nanos};

/// Pauses kept a step at most: each is a manual action, so this is never reached by people;
/// beyond it, the last pause stretches to cover the next (never undercounting paused time).
const MAX_PAUSES: usize = 1_000;

/// A step's pauses, in time order.
#[derive(Clone, Debug, Default)]
pub struct Pauses {
    closed: Vec<(Nanos, Nanos)>,
    /// A pause not resumed yet: it lasts to the end of the window asked about.
    open: Option<Nanos>,
}

impl Pauses {
    /// No pause.
    pub const fn none() -> Self {
        Pauses {
            closed: Vec::new(),
            open: None,
        }
    }

    /// A live-control change of the step; only pause and resume matter here.
    pub fn record(&mut self, c: &ControlEvent) {
        match c.action {
            ControlAction::Pause => {
                self.open.get_or_insert(c.at);
            }
            ControlAction::Resume => {
                let Some(from) = self.open.take() else { return };
                let full = self.closed.len() >= MAX_PAUSES;
                match self.closed.last_mut() {
                    Some(last) if full => last.1 = c.at.max(last.1),
                    _ => self.closed.push((from, c.at.max(from))),
                }
            }
            _ => {}
        }
    }

    /// Paused time within `[from, to)`, nanoseconds.
    pub fn within(&self, from: Nanos, to: Nanos) -> Nanos {
        self.spans(to)
            .map(|(a, b)| b.min(to).saturating_sub(a.max(from)))
            .sum()
    }

    /// Every pause, an open one ending at `end`.
    pub fn spans(&self, end: Nanos) -> impl Iterator<Item = (Nanos, Nanos)> + '_ {
        self.closed
            .iter()
            .copied()
            .chain(self.open.map(|from| (from, end.max(from))))
    }

    pub fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.open.is_none()
    }
}

/// A live-control event of step 1 at `at` (tests).
#[cfg(test)]
pub(crate) fn event(action: ControlAction, at: Nanos) -> ControlEvent {
    ControlEvent {
        at,
        step: 1,
        action,
        value: None,
        source: "http".into(),
    }
}

/// A pause at `from_ms` and its resume at `to_ms` (tests).
#[cfg(test)]
pub(crate) fn pause_and_resume(from_ms: u64, to_ms: u64) -> [ControlEvent; 2] {
    [
        event(ControlAction::Pause, from_ms * 1_000_000),
        event(ControlAction::Resume, to_ms * 1_000_000),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    #[test]
    fn paused_time_within_a_window() {
        let mut p = Pauses::default();
        assert!(p.is_empty());
        p.record(&event(ControlAction::Pause, 2 * S));
        p.record(&event(ControlAction::Pause, 3 * S)); // already paused: nothing new
        p.record(&event(ControlAction::SetRate, 3 * S));
        p.record(&event(ControlAction::Resume, 4 * S));
        p.record(&event(ControlAction::Resume, 5 * S)); // not paused: nothing
        assert_eq!(p.within(0, 10 * S), 2 * S);
        assert_eq!(p.within(3 * S, 10 * S), S, "clipped to the window");
        assert_eq!(p.within(5 * S, 10 * S), 0);
        // Paused again and never resumed: to the end of the window asked about.
        p.record(&event(ControlAction::Pause, 8 * S));
        assert_eq!(p.within(0, 10 * S), 4 * S);
        assert_eq!(p.within(0, 9 * S), 3 * S);
    }
}
