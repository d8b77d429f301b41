//! The actor that runs one live sink on its arbiter: it takes events and the final flush from
//! the sink's bounded buffer, in order, and calls the sink's methods.

use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::buffer::{BufferConfig, BufferStats};
use super::Sink;
use crate::event::Event;
use crate::json::report::RunStatus;

/// What travels through a sink's buffer. The flush goes the same way as the events, so it comes
/// after every event the sink was given.
pub(crate) enum Item {
    Event(Event),
    Flush(RunStatus, oneshot::Sender<FlushReply>),
}

/// A sink's answer to the final flush.
#[derive(Debug)]
pub struct FlushReply {
    pub result: Result<(), String>,
    /// `sinks.<name>` in the results: the sink's report and its buffer's counts.
    pub report: serde_json::Map<String, serde_json::Value>,
}

/// A sink on its arbiter (derefs to the sink, for callbacks of its timers and futures).
pub struct Running<S: Sink> {
    sink: S,
    buffer: BufferConfig,
    stats: Arc<BufferStats>,
    /// The final flush has been asked for: no event reaches the sink after it.
    flushed: bool,
}

impl<S: Sink> Deref for Running<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.sink
    }
}

impl<S: Sink> DerefMut for Running<S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.sink
    }
}

/// Starts the sink `make` builds, on `arbiter` (where it is built: its clients belong to that
/// runtime), reading `feed`.
pub(crate) fn start<S: Sink>(
    arbiter: &ArbiterHandle,
    buffer: BufferConfig,
    stats: Arc<BufferStats>,
    feed: mpsc::Receiver<Item>,
    make: impl FnOnce() -> S + Send + 'static,
) {
    Running::<S>::start_in_arbiter(arbiter, move |ctx| {
        ctx.add_stream(Feed(feed));
        Running {
            sink: make(),
            buffer,
            stats,
            flushed: false,
        }
    });
}

impl<S: Sink> Actor for Running<S> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.sink.start(ctx);
    }
}

impl<S: Sink> StreamHandler<Item> for Running<S> {
    fn handle(&mut self, item: Item, ctx: &mut Context<Self>) {
        match item {
            Item::Event(_) if self.flushed => {
                // Nothing follows the final flush: an event offered after it is counted, unseen.
                self.stats.dropped.fetch_add(1, Relaxed);
            }
            Item::Event(event) => {
                let t = Instant::now();
                self.sink.on_event(&event, ctx);
                self.stats.note_event_time(t.elapsed());
                self.stats.delivered.fetch_add(1, Relaxed);
            }
            Item::Flush(_, reply) if self.flushed => {
                let _ = reply.send(FlushReply {
                    result: Err("flushed twice".into()),
                    report: self.stats.report(self.buffer),
                });
            }
            Item::Flush(status, reply) => {
                self.flushed = true;
                let flush = self.sink.flush(status, ctx);
                // `spawn`, not `wait`: while a `wait` is pending actix polls nothing else the
                // actor spawned, and a flush that waits for the sink's own background work (an
                // export or a push under way, holding a lock) would wait forever.
                ctx.spawn(flush.map(move |result, act, _| {
                    let mut report = act.sink.report();
                    report.extend(act.stats.report(act.buffer));
                    let _ = reply.send(FlushReply { result, report });
                }));
            }
        }
    }
}

/// The receiving end of a sink's buffer, as a stream the actor consumes.
struct Feed(mpsc::Receiver<Item>);

impl Stream for Feed {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Option<Item>> {
        self.0.poll_recv(cx)
    }
}
