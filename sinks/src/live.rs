//! Live sinks: everything besides the results file (Prometheus, OTLP, a console) subscribes to
//! the Recorder's event stream.
//!
//! The Recorder is the single entry point of the request path (one `send` per finished request,
//! with backpressure). After it has completed an event (e.g. counted a pending output with the
//! tokenizer) it forwards the event, behind an `Arc`, to every subscriber with `do_send` — on the
//! sink arbiter, never on a request arbiter. Each live sink bounds its own work: a best-effort
//! sink (traces) drops and counts what it cannot queue; an exact one (metrics) keeps up because
//! its per-event work is a few counter updates.
//!
//! At the end of a run the coordinator sends `SinkFlush { last: true }` to every live sink and
//! waits for each reply before the process exits.

use actix::prelude::*;

use crate::event::Event;

/// One event, as the Recorder forwards it.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct SinkEvent(pub Event);

/// Push out everything buffered; `last`: the run is over, release resources. Reply when done.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "Result<(), String>")]
pub struct SinkFlush {
    pub last: bool,
}

/// A sink's own account of the run (e.g. spans exported and dropped), read after its final
/// flush and written into the results under `sinks.<name>`.
pub type SinkReport = std::sync::Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// A running live sink: where its events go, and how to flush it.
#[derive(Clone)]
pub struct LiveSink {
    /// For messages ("prometheus", "otlp").
    pub name: &'static str,
    pub events: Recipient<SinkEvent>,
    pub flush: Recipient<SinkFlush>,
    /// What the sink reports in the results, if anything.
    pub report: Option<SinkReport>,
}

impl LiveSink {
    /// The usual case: one actor handles both messages.
    pub fn of<A>(name: &'static str, addr: &Addr<A>) -> LiveSink
    where
        A: Actor<Context = Context<A>> + Handler<SinkEvent> + Handler<SinkFlush>,
    {
        LiveSink {
            name,
            events: addr.clone().recipient(),
            flush: addr.clone().recipient(),
            report: None,
        }
    }

    /// Adds the sink's report to the results.
    pub fn with_report(mut self, report: SinkReport) -> Self {
        self.report = Some(report);
        self
    }
}
