//! The binary's whole life: parse the command line, run the benchmark or a subcommand (the
//! simulated server, the offline tools), map the outcome to the process exit code.

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use super::commands::{Cli, Command, CompareArgs, MergeArgs, ReportArgs, SimArgs};
use super::run_args::RunArgs;
use crate::runtime::exit::RunError;
use crate::runtime::shutdown::Shutdown;
use crate::sim::{SimConfig, SimServer};

/// The binary's whole life: parse, run, report. Returns the process exit code.
pub fn main() -> i32 {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return 2;
        }
    };
    init_logging();
    match cli.command {
        Some(Command::Sim(args)) => run_sim(*args),
        Some(Command::Report(args)) => run_report(args),
        Some(Command::Compare(args)) => run_compare(args),
        Some(Command::Merge(args)) => run_merge(args),
        None => run_benchmark(cli.run, &matches),
    }
}

fn init_logging() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_millis()
        .try_init();
}

fn run_sim(args: SimArgs) -> i32 {
    let tokenizer = match crate::workload::tokenizer::load(args.tokenizer.as_deref()) {
        Ok(t) => t.tokenizer,
        Err(e) => return fail(&RunError::Config(e)),
    };
    match crate::sim::run_cli(args.config, Some(tokenizer)) {
        Ok(()) => 0,
        Err(e) if crate::sim::is_config_error(&e) => fail(&RunError::Config(e.to_string())),
        Err(e) => fail(&RunError::Internal(format!("simulated server: {e}"))),
    }
}

fn run_report(args: ReportArgs) -> i32 {
    match crate::offline::report::write_report(&args.results, &args.output) {
        Ok(()) => {
            println!("report: {}", args.output.display());
            0
        }
        Err(e) => fail(&RunError::Config(e)),
    }
}

/// Exit code of `compare --fail-on-regression` when a figure regressed: the same as a failed
/// `--threshold` gate.
const REGRESSION_EXIT: i32 = 5;

fn run_compare(args: CompareArgs) -> i32 {
    let docs = crate::offline::compare::load(&args.base)
        .and_then(|b| crate::offline::compare::load(&args.new).map(|n| (b, n)));
    let (base, new) = match docs {
        Ok(d) => d,
        Err(e) => return fail(&RunError::Config(e)),
    };
    let cmp = crate::offline::compare::compare(&base, &new, args.tolerance);
    print!("{}", crate::offline::compare::render(&cmp));
    if args.fail_on_regression && cmp.regressions() > 0 {
        REGRESSION_EXIT
    } else {
        0
    }
}

fn run_merge(args: MergeArgs) -> i32 {
    match crate::offline::merge::merge_files(&args.results, &args.output, args.force) {
        Ok(summary) => {
            println!("{summary}");
            0
        }
        Err(e) => fail(&RunError::Config(e)),
    }
}

fn run_benchmark(args: RunArgs, matches: &ArgMatches) -> i32 {
    let demo = args.demo;
    let mut cfg = match args.into_config(matches) {
        Ok(c) => c,
        Err(e) => return fail(&RunError::Config(e)),
    };
    let sim = if demo {
        match start_demo_server() {
            Ok(s) => {
                cfg.url = s.url();
                eprintln!("demo: simulated server on {}", cfg.url);
                // The whole picture offline: the engine's /metrics (scraped by default) and a
                // simulated GPU's, for energy per token.
                if !cfg.no_server_metrics {
                    cfg.server_metrics.push(format!("{}/dcgm/metrics", cfg.url));
                }
                Some(s)
            }
            Err(e) => return fail(&e),
        }
    } else {
        None
    };
    let result = crate::run_with(cfg, Shutdown::new(), true);
    if let Some(s) = sim {
        s.stop();
    }
    // The summary table was printed when the run ended (before any Prometheus linger).
    match result {
        Ok(_) => 0,
        Err(e) => fail(&e),
    }
}

fn start_demo_server() -> Result<SimServer, RunError> {
    let tokenizer = crate::workload::tokenizer::load(None).map_err(RunError::Config)?;
    let sim = SimConfig {
        gpu_metrics: true,
        ..SimConfig::default()
    };
    SimServer::start(sim, Some(tokenizer.tokenizer))
        .map_err(|e| RunError::Internal(format!("cannot start the simulated server: {e}")))
}

fn fail(e: &RunError) -> i32 {
    eprintln!("error: {e}");
    e.exit_code()
}
