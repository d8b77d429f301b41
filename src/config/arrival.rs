//! How the open loop spaces its arrivals (`--arrival`, `--burstiness`): configuration, read by
//! the schedule (`load/schedule.rs`).

use serde::Serialize;

/// How arrivals are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Arrival {
    /// Exactly `1/rate` apart (the original tool's `rate` executor; the default).
    Constant,
    /// Exponential gaps: a Poisson process.
    Poisson,
    /// Gamma-distributed gaps with shape `burstiness` and mean `1/rate`, as vLLM's
    /// `--burstiness`: 1 is Poisson, below 1 burstier, above 1 more regular.
    Gamma { burstiness: f64 },
}

impl Arrival {
    /// The process's name, as step ids carry it (`poisson@2.00req/s`).
    pub fn name(&self) -> &'static str {
        match self {
            Arrival::Constant => "constant",
            Arrival::Poisson => "poisson",
            Arrival::Gamma { .. } => "gamma",
        }
    }

    /// `constant`, `poisson` or `gamma` (with its burstiness).
    pub fn parse(kind: &str, burstiness: f64) -> Result<Arrival, String> {
        if !(burstiness.is_finite() && burstiness > 0.0) {
            return Err(format!(
                "--burstiness must be a positive number, got {burstiness}"
            ));
        }
        match kind {
            "constant" => Ok(Arrival::Constant),
            "poisson" => Ok(Arrival::Poisson),
            "gamma" => Ok(Arrival::Gamma { burstiness }),
            _ => Err(format!(
                "unknown --arrival '{kind}': use constant, poisson or gamma"
            )),
        }
    }
}
