//! What every part of a run shares, below the actors: the run's clock, its stop signal
//! (`shutdown`), the worker arbiters and their HTTP clients (`workers`, `tls`), process limits,
//! how a run ends (`exit`: its outcome and exit codes) and the wording of messages (`text`).
//! Nothing here imports the rest of the crate.

pub mod clock;
pub mod exit;
pub mod limits;
pub mod shutdown;
pub mod text;
pub mod tls;
pub mod workers;
