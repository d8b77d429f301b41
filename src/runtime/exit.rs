//! How a run ends, and the process exit code for each way (documented in the README).

use std::fmt;
use std::path::PathBuf;

use sinks::json::StepResult;

/// What a finished run hands back to its caller.
#[derive(Debug)]
pub struct RunSummary {
    pub results_path: PathBuf,
    pub steps: Vec<StepResult>,
}

#[derive(Debug)]
pub enum RunError {
    /// Bad arguments or configuration (files, options, tokenizer, dataset).
    Config(String),
    /// The server could not be reached, or was unhealthy, before the first request.
    Unreachable(String),
    /// The server answered the pre-flight request with an error status: every request of the
    /// run would fail the same way.
    Refused(String),
    /// Every request of a measured step failed; the results written so far are at `results`.
    AllFailed {
        step: String,
        reason: String,
        results: Option<PathBuf>,
    },
    /// More than `--max-error-rate` of a step's requests failed; the run stopped there.
    ErrorRate {
        step: String,
        reason: String,
        results: Option<PathBuf>,
    },
    /// A measured step finished no request (its window too short to send one, or every arrival
    /// dropped): it measured nothing, so the run has no answer to give.
    NothingMeasured {
        step: String,
        reason: String,
        results: Option<PathBuf>,
    },
    /// The run completed but missed a `--threshold`; the results are at `results`.
    ThresholdsFailed {
        failures: Vec<String>,
        summary: Box<RunSummary>,
    },
    /// Stopped by SIGINT/SIGTERM; what was measured is at `results`.
    Interrupted { results: Option<PathBuf> },
    /// A failure of the generator itself (I/O, a crashed actor).
    Internal(String),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Internal(_) => 1,
            RunError::Config(_) => 2,
            RunError::Unreachable(_) | RunError::Refused(_) => 3,
            RunError::AllFailed { .. } | RunError::ErrorRate { .. } => 4,
            RunError::ThresholdsFailed { .. } => 5,
            RunError::NothingMeasured { .. } => 6,
            RunError::Interrupted { .. } => 130,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let written = |p: &Option<PathBuf>| match p {
            Some(p) => format!("; results written to {}", p.display()),
            None => String::new(),
        };
        match self {
            RunError::Config(m) => write!(f, "configuration error: {m}"),
            RunError::Unreachable(m) => write!(f, "server unreachable: {m}"),
            RunError::Refused(m) => write!(f, "the server refused the pre-flight request: {m}"),
            RunError::AllFailed {
                step,
                reason,
                results,
            } => write!(
                f,
                "every request of step {step} failed ({reason}){}",
                written(results)
            ),
            RunError::ErrorRate {
                step,
                reason,
                results,
            } => write!(f, "step {step} failed: {reason}{}", written(results)),
            RunError::NothingMeasured {
                step,
                reason,
                results,
            } => write!(
                f,
                "step {step} measured nothing: {reason}{}",
                written(results)
            ),
            RunError::ThresholdsFailed { failures, summary } => write!(
                f,
                "{} failed; results written to {}\n  {}",
                crate::runtime::text::count(
                    failures.len() as u64,
                    "threshold check",
                    "threshold checks"
                ),
                summary.results_path.display(),
                failures.join("\n  ")
            ),
            RunError::Interrupted { results } => {
                write!(f, "interrupted by signal{}", written(results))
            }
            RunError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for RunError {}
