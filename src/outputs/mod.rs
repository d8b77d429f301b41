//! What a run writes beyond the Recorder's results: which live sinks it starts and how they are
//! wired to the recorder (`live_sinks`: metrics, traces, the console), and what the results file
//! says about the run before any step (`results_file`: its name and its `config` object). The
//! sinks themselves live in the `sinks` crate (`sinks/src/`) and in `console/`.

pub mod live_sinks;
pub mod results_file;
pub mod server_metrics;
