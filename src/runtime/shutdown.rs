//! Run-wide stop signal, shared by every arbiter.
//!
//! Two levels, because stopping must never lose a measurement: `stop` ends the schedulers (no new
//! requests) and lets in-flight requests finish; `cancel` ends in-flight requests, which then
//! report themselves as `cancelled` — they are never dropped silently.

use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Running,
    /// No new requests; in-flight ones run to their end.
    Stop,
    /// In-flight requests end now, as `cancelled`.
    Cancel,
}

#[derive(Clone)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<Level>>,
    rx: watch::Receiver<Level>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(Level::Running);
        Shutdown {
            tx: std::sync::Arc::new(tx),
            rx,
        }
    }

    /// Raises the level; never lowers it.
    pub fn raise(&self, level: Level) {
        self.tx.send_if_modified(|cur| {
            if level > *cur {
                *cur = level;
                true
            } else {
                false
            }
        });
    }

    pub fn level(&self) -> Level {
        *self.rx.borrow()
    }

    pub fn is_stopping(&self) -> bool {
        self.level() >= Level::Stop
    }

    /// Resolves once the level is at least `level`.
    pub async fn reached(&self, level: Level) {
        let mut rx = self.rx.clone();
        // The sender lives as long as any Shutdown clone, including self: never errors.
        let _ = rx.wait_for(|cur| *cur >= level).await;
    }
}
