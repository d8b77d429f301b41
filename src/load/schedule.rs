//! Arrival times of the open loop (pure). Each arrival is computed from the step's absolute
//! start, never by summing sleeps, so lateness never accumulates into drift.

use sinks::event::Nanos;

/// Constant spacing at `rate` requests per second (the original tool's `rate` executor).
#[derive(Clone, Copy, Debug)]
pub struct ConstantSchedule {
    start: Nanos,
    end: Nanos,
    rate: f64,
}

impl ConstantSchedule {
    /// Arrivals at `start + k / rate` for every k with that time before `end`.
    pub fn new(start: Nanos, end: Nanos, rate: f64) -> Self {
        ConstantSchedule { start, end, rate }
    }

    /// The k-th arrival, or `None` once past the end (or for a non-positive rate).
    pub fn arrival(&self, k: u64) -> Option<Nanos> {
        if !self.rate.is_finite() || self.rate <= 0.0 {
            return None;
        }
        let offset = (k as f64 * 1e9 / self.rate).round();
        if offset >= (self.end - self.start) as f64 {
            return None;
        }
        Some(self.start + offset as Nanos)
    }

    /// How many arrivals the schedule holds.
    pub fn len(&self) -> u64 {
        (0..).take_while(|k| self.arrival(*k).is_some()).count() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.arrival(0).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_exact_and_do_not_drift() {
        let s = ConstantSchedule::new(5_000, 5_000 + 3_600_000_000_000, 300.0);
        // After a million arrivals the k-th is still exactly k/rate after the start.
        let k = 1_000_000;
        assert_eq!(s.arrival(k), Some(5_000 + 3_333_333_333_333));
        assert_eq!(s.arrival(0), Some(5_000));
    }

    #[test]
    fn count_matches_rate_times_duration() {
        let s = ConstantSchedule::new(0, 10_000_000_000, 20.0);
        assert_eq!(s.len(), 200);
        assert_eq!(s.arrival(199), Some(9_950_000_000));
        assert_eq!(s.arrival(200), None);
    }

    #[test]
    fn zero_or_invalid_rate_has_no_arrivals() {
        assert!(ConstantSchedule::new(0, 1_000, 0.0).is_empty());
        assert!(ConstantSchedule::new(0, 1_000, f64::NAN).is_empty());
        assert!(ConstantSchedule::new(0, 1_000, -1.0).is_empty());
    }
}
