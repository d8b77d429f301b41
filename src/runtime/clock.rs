//! The run's clock: one monotonic anchor and its wall-clock twin.
//! Every stamp is nanoseconds since the anchor, so stamps taken on any thread compare directly
//! and sinks turn them into wall-clock time without reading a clock of their own.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sinks::event::Nanos;

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    anchor: Instant,
    anchor_unix_nanos: u128,
}

impl Clock {
    pub fn start() -> Self {
        let anchor = Instant::now();
        let anchor_unix_nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Clock {
            anchor,
            anchor_unix_nanos,
        }
    }

    #[inline]
    pub fn now(&self) -> Nanos {
        self.at(Instant::now())
    }

    #[inline]
    pub fn at(&self, t: Instant) -> Nanos {
        t.saturating_duration_since(self.anchor).as_nanos() as Nanos
    }

    pub fn instant(&self, t: Nanos) -> Instant {
        self.anchor + Duration::from_nanos(t)
    }

    pub fn anchor_unix_nanos(&self) -> u128 {
        self.anchor_unix_nanos
    }
}
