//! The command line's grammar: the top-level parser, its subcommands and their arguments (the
//! run's own flags are `RunArgs`, in `run_args.rs`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::run_args::RunArgs;
use super::values::parse_share;
use crate::sim::SimConfig;

#[derive(Parser, Debug)]
#[command(
    name = "inference-benchmarker",
    version,
    about = "Benchmark an OpenAI-compatible inference server: maximum throughput, rate sweeps, exact TTFT / inter-token / end-to-end latencies.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the built-in simulated inference server (OpenAI-compatible) until SIGINT/SIGTERM.
    // Boxed: the simulated server's flags are many, the other variants small.
    Sim(Box<SimArgs>),
    /// Render results files as one self-contained HTML report (several files overlay).
    Report(ReportArgs),
    /// Compare two results files step by step; regressions beyond --tolerance are marked.
    Compare(CompareArgs),
    /// Merge the results files of a sharded run (--shards) into one: exact percentiles from the
    /// union of the histograms, counts added up, rates over the window the shards covered.
    Merge(MergeArgs),
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Results files (JSON) of the shards
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Where to write the merged results
    #[arg(short, long)]
    pub output: PathBuf,
    /// Also merge files that are not shards of one run (other run ids or settings): runs that
    /// loaded one server at the same time. The same results twice are refused even so
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Results files (JSON) written by runs
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Where to write the report
    #[arg(short, long, default_value = "report.html")]
    pub output: PathBuf,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The reference results file
    pub base: PathBuf,
    /// The results file to judge against it
    pub new: PathBuf,
    /// A figure worse than the base by more than this share is a regression (0.1 or 10%)
    #[arg(long, default_value = "10%", value_parser = parse_share)]
    pub tolerance: f64,
    /// Exit with code 5 when any figure regressed (for CI)
    #[arg(long)]
    pub fail_on_regression: bool,
}

#[derive(Args, Debug)]
pub struct SimArgs {
    #[command(flatten)]
    pub config: SimConfig,
    /// tokenizer.json (or a folder holding one) to count prompt tokens; default: the built-in one.
    #[arg(long)]
    pub tokenizer: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn help_says_what_the_tool_does() {
        let mut cmd = Cli::command();
        let help = cmd.render_long_help().to_string();
        for needle in [
            "Hugging Face hub model id",
            "Hugging Face hub dataset id",
            "JSON Lines",
            "ShareGPT",
            "[possible values: throughput, rate, sweep]",
            "[possible values: constant, poisson, gamma]",
            "[possible values: chat, completions, responses, embeddings, rerank]",
            "--batch-size",
            "--draw-prompt-lengths",
        ] {
            assert!(help.contains(needle), "--help lacks {needle:?}");
        }
        let sim = cmd
            .find_subcommand_mut("sim")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(sim.contains("drop-mid-stream=N") && sim.contains("empty-body"));
        for h in [help, sim] {
            assert!(!h.contains(".rs"), "help points into the source: {h}");
        }
    }
}
