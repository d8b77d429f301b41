//! `inference-benchmarker merge`: the shards' results files → one results file (the pure merge
//! is `sinks::json::merge`).

use std::path::{Path, PathBuf};

use sinks::json::write_atomically;

/// Reads `inputs`, merges them and writes `output`; returns a one-line account for the user.
/// Refuses to write over one of its inputs, and (see `sinks::json::merge`) the same results twice
/// or — unless `force` — files that are not shards of one run.
pub fn merge_files(inputs: &[PathBuf], output: &Path, force: bool) -> Result<String, String> {
    let out = canonical(output);
    if let Some(clash) = inputs.iter().find(|p| canonical(p) == out) {
        return Err(format!(
            "-o {} is one of the inputs ({}): name another file",
            output.display(),
            clash.display()
        ));
    }
    let docs = inputs
        .iter()
        .map(|p| crate::offline::compare::load(p).map(|d| (p.display().to_string(), d)))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = sinks::json::merge::merge(&docs, force)?;
    let mut bytes = serde_json::to_vec_pretty(&merged).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    write_atomically(output, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    let requests: u64 = merged.results.iter().map(|s| s.total_requests).sum();
    let count = crate::runtime::text::count;
    Ok(format!(
        "merged {}: {}, {} → {}",
        count(docs.len() as u64, "file", "files"),
        count(merged.results.len() as u64, "step", "steps"),
        count(requests, "request", "requests"),
        output.display()
    ))
}

/// The path as the filesystem resolves it, so `./a.json` and `a.json` compare equal; a file
/// that does not exist yet resolves through its folder.
fn canonical(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dir.canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| p.to_path_buf())
        }
        _ => p.to_path_buf(),
    }
}
