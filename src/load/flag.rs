//! A one-way flag that tasks can wait on: raised once, never lowered.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

#[derive(Default)]
pub struct Flag {
    up: AtomicBool,
    raised: Notify,
}

impl Flag {
    pub fn raise(&self) {
        self.up.store(true, Ordering::Release);
        self.raised.notify_waiters();
    }

    pub fn is_raised(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Resolves once the flag is raised.
    pub async fn raised(&self) {
        loop {
            let notified = self.raised.notified();
            tokio::pin!(notified);
            // Registered before the check, so a raise in between is not lost.
            notified.as_mut().enable();
            if self.is_raised() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[actix_rt::test]
    async fn raising_wakes_the_waiters() {
        let f = Arc::new(Flag::default());
        let f2 = f.clone();
        let waiter = actix_rt::spawn(async move { f2.raised().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished() && !f.is_raised());
        f.raise();
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert!(f.is_raised());
        f.raised().await; // already raised: at once
    }
}
