//! What a run leaves beside its results JSON for people: the HTML report (`html.rs`, charts in
//! `svg.rs`), the summary table as Markdown, and — with `--csv` — one CSV row per step.
//!
//! Everything here reads finished results documents (pure functions over `ResultsDocument`; the server panels in `server.rs`),
//! so the same code serves the end of a run and `inference-benchmarker report`.

pub mod csv;
pub mod html;
pub mod images_tools;
mod reasoning;
pub mod server;
pub mod svg;

use std::path::{Path, PathBuf};

use sinks::json::ResultsDocument;

/// Reads results files for a report; the label of each is its file stem.
pub fn load_runs(paths: &[PathBuf]) -> Result<Vec<html::Run>, String> {
    if paths.is_empty() {
        return Err("give at least one results file".into());
    }
    paths
        .iter()
        .map(|p| {
            Ok(html::Run {
                label: p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.display().to_string()),
                doc: crate::offline::compare::load(p)?,
            })
        })
        .collect()
}

/// `inference-benchmarker report a.json [b.json …] -o report.html`.
pub fn write_report(paths: &[PathBuf], out: &Path) -> Result<(), String> {
    let runs = load_runs(paths)?;
    write_file(out, html::render(&runs).as_bytes())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    sinks::json::write_atomically(path, bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `results/x.json` → `results/x.<ext>`.
pub fn beside(results: &Path, ext: &str) -> PathBuf {
    results.with_extension(ext)
}

/// The summary table as a Markdown document.
pub fn markdown(doc: &ResultsDocument) -> String {
    format!(
        "# Run {} ({})\n\nStarted {}, ended {}, status {}.\n\n{}\n",
        doc.run_id,
        doc.config
            .get("model_name")
            .and_then(|m| m.as_str())
            .unwrap_or("unknown model"),
        doc.start_time,
        doc.end_time,
        format!("{:?}", doc.status).to_lowercase(),
        crate::offline::table::render(&doc.results)
    )
}

/// Which files to write beside the results at the end of a run.
#[derive(Clone, Copy, Debug)]
pub struct RunOutputs {
    pub html: bool,
    pub csv: bool,
}

/// Writes the Markdown summary (always), the HTML report and the CSV (as asked) beside the
/// results file; returns the paths written. Reads the file back, so what the report shows is
/// exactly what was saved.
pub fn write_run_outputs(results: &Path, what: RunOutputs) -> Result<Vec<PathBuf>, String> {
    let doc = crate::offline::compare::load(results)?;
    let mut written = Vec::new();
    let md = beside(results, "md");
    write_file(&md, markdown(&doc).as_bytes())?;
    written.push(md);
    if what.csv {
        let path = beside(results, "csv");
        write_file(&path, csv::render(&doc.results).as_bytes())?;
        written.push(path);
    }
    if what.html {
        let path = beside(results, "html");
        let label = results
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        write_file(&path, html::render(&[html::Run { label, doc }]).as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

/// At the end of a run, whichever way it ended: writes the files beside whatever results were
/// saved. A failure here is a warning — the results themselves are already safe on disk.
pub fn after_run(what: RunOutputs, outcome: &Result<crate::RunSummary, crate::RunError>) {
    use crate::RunError;
    let results = match outcome {
        Ok(summary) => Some(summary.results_path.as_path()),
        Err(RunError::ThresholdsFailed { summary, .. }) => Some(summary.results_path.as_path()),
        Err(
            RunError::Interrupted { results }
            | RunError::AllFailed { results, .. }
            | RunError::ErrorRate { results, .. },
        ) => results.as_deref(),
        Err(_) => None,
    };
    let Some(results) = results else { return };
    match write_run_outputs(results, what) {
        Ok(paths) => {
            for p in paths {
                eprintln!("wrote {}", p.display());
            }
        }
        Err(e) => eprintln!("warning: {e}"),
    }
}
