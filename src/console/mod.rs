//! The live console: on a terminal, a full-screen view of the run (steps, progress, live
//! throughput, TTFT/ITL percentiles, in-flight requests, dropped arrivals, errors by class, a
//! throughput-vs-rate chart, the log). With `--no-console`, without a terminal, or with `CI`
//! set, the run prints its plain progress lines instead (what it always prints to stderr).
//!
//! The sink is best-effort and cheap: the Recorder forwards each completed event to it on the
//! sink arbiter, and it only updates counters and two histograms (`state.rs`). The terminal is
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

use actix::prelude::*;
use parking_lot::Mutex;
use sinks::live::{LiveSink, SinkEvent, SinkFlush};
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

impl Actor for ConsoleSink {
    type Context = Context<Self>;
}

impl Handler<SinkEvent> for ConsoleSink {
    type Result = ();

    fn handle(&mut self, msg: SinkEvent, _: &mut Context<Self>) {
        self.state.lock().apply(&msg.0, Instant::now());
    }
}

impl Handler<SinkFlush> for ConsoleSink {
    type Result = Result<(), String>;

    /// At the end of the run the terminal is given back before the summary is printed.
    fn handle(&mut self, msg: SinkFlush, _: &mut Context<Self>) -> Self::Result {
        if msg.last {
            if let Some(mut ui) = self.ui.take() {
                ui.finish();
            }
        }
        Ok(())
    }
}

/// Takes over the terminal and starts the sink on `arbiter`. An error (e.g. the terminal
/// refuses raw mode) leaves the run on plain progress lines.
pub fn start(
    title: String,
    gauges: Arc<LiveGauges>,
    shutdown: Shutdown,
    arbiter: &actix_rt::ArbiterHandle,
) -> std::io::Result<LiveSink> {
    let state = Arc::new(Mutex::new(LiveState::new()));
    let ui = Ui::start(UiContext {
        state: state.clone(),
        gauges,
        shutdown,
        title,
    })?;
    let sink = ConsoleSink {
        state,
        ui: Some(ui),
    };
    let addr = ConsoleSink::start_in_arbiter(arbiter, move |_| sink);
    Ok(LiveSink::of("console", &addr))
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
}
