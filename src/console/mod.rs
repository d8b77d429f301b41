//! The live console: on a terminal, a full-screen view of the run (steps, progress, live
//! throughput, TTFT/ITL percentiles, in-flight requests, dropped arrivals, errors by class, the
//! server's requests waiting and KV-cache usage when server metrics are scraped (the scraper
//! stores them in `LiveGauges`), a throughput-vs-rate chart, the log). With `--no-console`, without a terminal, or with `CI`
//! set, the run prints its plain progress lines instead (what it always prints to stderr).
//!
//! The sink is best-effort and cheap: the Recorder offers each completed event to its buffer
//! (`DropNewest`: a view never slows the run), and on its own arbiter it only updates counters
//! and two histograms (`state.rs`). The terminal is
//! drawn by its own thread (`ui.rs`) from a snapshot taken twice a second; no per-request data is
//! ever copied. A frame (`view.rs`) fits any terminal size without cutting a figure (`fit.rs`).

pub mod capture;
mod fit;
pub mod state;
pub mod ui;
pub mod view;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use sinks::event::Event;
use sinks::json::report::RunStatus;
use sinks::live::{flushed, FlushFuture, Sink, SinkContext};
use sinks::prometheus::LiveGauges;

use crate::config::RunConfig;
use crate::runtime::shutdown::Shutdown;
use state::LiveState;
use ui::{Ui, UiContext};

/// Whether the run gets the full-screen console: asked for, on a terminal, and not in CI.
pub fn wanted(cfg: &RunConfig) -> bool {
    decide(
        cfg.no_console,
        std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
        std::env::var_os("CI").is_some_and(|v| !v.is_empty()),
    )
}

/// Pure form of [`wanted`].
pub fn decide(no_console: bool, terminal: bool, ci: bool) -> bool {
    !no_console && terminal && !ci
}

/// The console's live sink: folds events into the shared state the UI thread draws.
pub struct ConsoleSink {
    state: Arc<Mutex<LiveState>>,
    ui: Option<Ui>,
}

impl Sink for ConsoleSink {
    const NAME: &'static str = "console";

    fn on_event(&mut self, event: &Event, _: &mut SinkContext<Self>) {
        self.state.lock().apply(event, Instant::now());
    }

    /// The terminal is given back before the summary is printed.
    fn flush(&mut self, _: RunStatus, _: &mut SinkContext<Self>) -> FlushFuture<Self> {
        if let Some(mut ui) = self.ui.take() {
            ui.finish();
        }
        flushed(Ok(()))
    }
}

/// Takes over the terminal; returns the sink for the registry to start. An error (e.g. the
/// terminal refuses raw mode) leaves the run on plain progress lines.
pub fn start(
    title: String,
    gauges: Arc<LiveGauges>,
    shutdown: Shutdown,
    control: Option<actix::Recipient<crate::control::Control>>,
) -> std::io::Result<impl FnOnce() -> ConsoleSink + Send + 'static> {
    let state = Arc::new(Mutex::new(LiveState::new()));
    let ui = Ui::start(UiContext {
        state: state.clone(),
        gauges,
        shutdown,
        title,
        control,
    })?;
    let sink = ConsoleSink {
        state,
        ui: Some(ui),
    };
    Ok(move || sink)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_unless_a_terminal_outside_ci() {
        assert!(decide(false, true, false));
        assert!(!decide(true, true, false), "--no-console");
        assert!(!decide(false, false, false), "no terminal");
        assert!(!decide(false, true, true), "CI set");
    }

    /// Without a terminal: the sink's state only (the UI thread is not started).
    #[actix_rt::test]
    async fn keeps_the_sink_contract() {
        let state = Arc::new(Mutex::new(LiveState::new()));
        let s = state.clone();
        let outcome =
            sinks::testing::check_sink_contract(move || ConsoleSink { state: s, ui: None }).await;
        assert_eq!(outcome.flush, Ok(()));
        assert_eq!(outcome.report["dropped_events"], 0);
    }
}
