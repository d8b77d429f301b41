//! `--retries N`: which failures are worth another attempt, and when (pure but for the
//! recipient). None unless asked: a benchmark that retries silently hides the failures it is
//! meant to measure, so every retried attempt is counted apart (`retried_attempts`).

use std::time::Duration;

use actix::Recipient;
use sinks::event::{Outcome, RequestFinished};
use sinks::recorder::RecordRetried;

use crate::runtime::shutdown::Shutdown;

/// First backoff; it doubles with each attempt.
const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// Longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Clone, Default)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: none).
    pub max: u32,
    /// Where failed attempts are reported.
    pub report: Option<Recipient<RecordRetried>>,
}

/// A failure that happened before any output reached us, and that another attempt may not
/// meet: the connection, a rate limit, a server error. Never a 4xx (the request is wrong), a
/// protocol error (the server is), a timeout (it already took the whole budget), a failure
/// after tokens were streamed (retrying would generate twice), or a cancellation.
pub fn worth_retrying(r: &RequestFinished) -> bool {
    let before_output = r.first_token_at.is_none();
    match r.outcome {
        Outcome::ConnectError | Outcome::RateLimited | Outcome::Http5xx => true,
        Outcome::StreamBroken => before_output,
        _ => false,
    }
}

/// `BASE_BACKOFF × 2^attempt`, at most `MAX_BACKOFF`.
pub fn backoff(attempt: u32) -> Duration {
    BASE_BACKOFF
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF)
}

impl RetryPolicy {
    /// How long to wait before the next attempt, or `None`: this attempt's outcome stands.
    pub fn next_delay(
        &self,
        attempt: u32,
        r: &RequestFinished,
        shutdown: &Shutdown,
    ) -> Option<Duration> {
        (attempt < self.max && worth_retrying(r) && !shutdown.is_stopping())
            .then(|| backoff(attempt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
