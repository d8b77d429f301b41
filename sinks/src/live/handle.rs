//! The Recorder's side of a live sink: its bounded buffer's sending end.

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::buffer::{BufferConfig, BufferPolicy, BufferStats};
use super::runtime::{FlushReply, Item};
use crate::event::Event;
use crate::json::report::RunStatus;

/// A flush that has not answered by then is reported as failed: a sink must not hold the run's
/// exit (sinks bound their own flushes far below this, e.g. OTLP at two export timeouts).
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(60);

/// A running live sink, as the Recorder and the coordinator see it.
#[derive(Clone)]
pub struct LiveSink {
    name: &'static str,
    buffer: BufferConfig,
    tx: mpsc::Sender<Item>,
    stats: Arc<BufferStats>,
}

impl LiveSink {
    pub(crate) fn new(
        name: &'static str,
        buffer: BufferConfig,
        tx: mpsc::Sender<Item>,
        stats: Arc<BufferStats>,
    ) -> Self {
        LiveSink {
            name,
            buffer,
            tx,
            stats,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn buffer(&self) -> BufferConfig {
        self.buffer
    }

    pub fn stats(&self) -> &Arc<BufferStats> {
        &self.stats
    }

    /// Puts `event` in the sink's buffer without waiting. When the buffer is full, a
    /// `DropNewest` sink drops it (counted); a `Block` sink returns the wait for room, which the
    /// caller must finish before it offers anything else to keep the sink's order.
    #[must_use = "a Block sink's full buffer returns a wait that must be awaited"]
    pub fn offer(&self, event: Event) -> Option<impl Future<Output = ()> + 'static> {
        self.stats.offered.fetch_add(1, Relaxed);
        match self.tx.try_send(Item::Event(event)) {
            Ok(()) => None,
            Err(TrySendError::Full(item)) if self.buffer.policy == BufferPolicy::Block => {
                self.stats.blocked.fetch_add(1, Relaxed);
                let (tx, stats) = (self.tx.clone(), self.stats.clone());
                Some(async move {
                    if tx.send(item).await.is_err() {
                        stats.dropped.fetch_add(1, Relaxed);
                    }
                })
            }
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                self.stats.dropped.fetch_add(1, Relaxed);
                None
            }
        }
    }

    /// The final flush, behind every event already offered (it waits for room: a flush is never
    /// dropped). Always answers, within [`FLUSH_DEADLINE`].
    pub async fn flush(&self, status: RunStatus) -> FlushReply {
        let (tx, rx) = oneshot::channel();
        let asked = async {
            self.tx.send(Item::Flush(status, tx)).await.ok()?;
            rx.await.ok()
        };
        let failed = |why: String| FlushReply {
            result: Err(why),
            report: self.stats.report(self.buffer),
        };
        match tokio::time::timeout(FLUSH_DEADLINE, asked).await {
            Ok(Some(reply)) => reply,
            Ok(None) => failed("stopped before its final flush".into()),
            Err(_) => failed(format!("no flush reply within {FLUSH_DEADLINE:?}")),
        }
    }
}
