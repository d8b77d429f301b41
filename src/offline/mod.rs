//! The offline tools: pure work over finished results, no server. The `report`, `compare` and
//! `merge` commands, and what the end of a run shares with them: the `--threshold` gates
//! (`thresholds`) and the summary table (`table`). Nothing here drives a run; the only part of
//! the run it knows is its outcome type (`runtime::exit`).

pub mod compare;
pub mod merge;
pub mod report;
pub mod table;
#[cfg(test)]
pub(crate) mod test_fixtures;
pub mod thresholds;
