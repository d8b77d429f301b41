//! The command line: the original tool's flags (same names, short forms, env vars, defaults)
//! plus ours, turned into a `RunConfig`. Parse errors are messages with exit code 2, never panics.
//!
//! - `commands.rs`: the top-level parser and the subcommands' arguments
//! - `run_args.rs`: the run command's flags
//! - `values.rs`: parsers for single values (durations, addresses, shares, `key=value`, …)
//! - `into_config.rs`: flags → `RunConfig`, and its checks (`validate`)
//! - `presets.rs`: `--profile` and `--demo` values under the explicit flags
//! - `dispatch.rs`: `main`: parse, run or dispatch to a subcommand, exit code

mod commands;
mod dispatch;
mod into_config;
mod presets;
mod run_args;
mod values;

pub use commands::{Cli, Command, CompareArgs, MergeArgs, ReportArgs, SimArgs};
pub use dispatch::main;
pub use into_config::validate;
pub use run_args::RunArgs;
pub use values::parse_key_values;

/// The run command's flags (after the program name) parsed as `main` does, into a `RunConfig`.
#[cfg(test)]
fn parse(args: &[&str]) -> Result<crate::config::RunConfig, String> {
    use clap::{CommandFactory, FromArgMatches};
    let mut full = vec!["inference-benchmarker"];
    full.extend_from_slice(args);
    let m = Cli::command()
        .try_get_matches_from(full)
        .map_err(|e| e.to_string())?;
    let cli = Cli::from_arg_matches(&m).map_err(|e| e.to_string())?;
    cli.run.into_config(&m)
}
