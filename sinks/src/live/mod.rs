//! Live sinks: everything besides the results file (Prometheus, OTLP, the console, ...) and the
//! contract they implement ([`Sink`]).
//!
//! The Recorder is the single entry point of the request path and the one lossless sink (the
//! results and the requests log). After it has completed an event (e.g. counted a pending output
//! with the tokenizer) it offers the event to every live sink's own bounded buffer
//! ([`LiveSink::offer`]); the buffer's policy ([`BufferPolicy`]) says whether a full buffer makes
//! the Recorder wait (`Block`) or drops the event and counts it (`DropNewest`). Each live sink
//! runs on an arbiter of its own ([`SinkRegistry`]), so a slow one delays nothing but itself.
//!
//! At the end of a run the coordinator flushes every live sink through its buffer (after every
//! event it was given) and waits for each reply, which carries the sink's report for the results
//! (`sinks.<name>`, with what its buffer dropped).

mod buffer;
mod handle;
mod registry;
mod runtime;

pub use buffer::{BufferConfig, BufferPolicy, BufferStats, DEFAULT_CAPACITY};
pub use handle::LiveSink;
pub use registry::{SinkRegistry, SinkSet, SinkThreads};
pub use runtime::{FlushReply, Running};

use actix::prelude::*;

use crate::event::Event;
use crate::json::report::RunStatus;

/// The actix context a sink's methods get: timers and background work run on the sink's own
/// arbiter (`ctx.run_interval`, `ctx.spawn`), and their callbacks reach the sink through
/// [`Running`], which derefs to it.
pub type SinkContext<S> = Context<Running<S>>;

/// What a flush resolves to: `Ok`, or what could not be written/exported.
pub type FlushFuture<S> = ResponseActFuture<Running<S>, Result<(), String>>;

/// What every live sink implements. See `sinks/README.md` (the sink contract).
///
/// Every method runs on the sink's own arbiter, one at a time: `start` first, then `on_event`
/// for every event in the Recorder's order (minus what its buffer dropped), then `flush` once,
/// then `report`.
pub trait Sink: Unpin + Sized + 'static {
    /// Its key in the results (`sinks.<name>`) and in messages: lowercase, stable.
    const NAME: &'static str;

    /// Before the first event: timers, clients bound to the arbiter's runtime.
    fn start(&mut self, _ctx: &mut SinkContext<Self>) {}

    /// One event. Must return at once (no I/O, no waiting): bounded work such as counters, or
    /// queue it for background work and count what the queue cannot take.
    fn on_event(&mut self, event: &Event, ctx: &mut SinkContext<Self>);

    /// The run is over with `status`: push out everything held, release what the sink holds
    /// (the terminal, timers), then resolve — bounded in time, never a panic. No event follows
    /// (one offered later is counted as dropped). While the returned future is pending, the
    /// sink's timers and spawned work keep running, so it may wait for an export under way.
    fn flush(&mut self, status: RunStatus, ctx: &mut SinkContext<Self>) -> FlushFuture<Self>;

    /// The sink's own account of the run (e.g. spans exported), read after its flush and written
    /// under `sinks.<name>` next to what its buffer counted. Scalars only.
    fn report(&self) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
}

/// A flush with nothing to wait for.
pub fn flushed<S: Sink>(result: Result<(), String>) -> FlushFuture<S> {
    Box::pin(actix::fut::ready(result))
}
