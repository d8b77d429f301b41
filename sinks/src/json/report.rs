//! The results document: the original tool's top level (`config`, `results`,
//! `start_time`, `end_time`, `system`) plus ours, rewritten atomically after
//! every step so a killed run keeps its finished steps.

use super::results::StepResult;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the run stands when the document was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Steps are still running: the document holds the steps finished so far.
    Running,
    /// Every planned step ran.
    Completed,
    /// Stopped by a signal or an early stop; finished steps are complete.
    Interrupted,
    /// Stopped by an error.
    Failed,
    /// Stopped at once by a second signal: the finished steps are complete, the step that was
    /// running holds what it had recorded (requests still in flight are not counted).
    Aborted,
}

/// Requests of the warmup, which never enter `results`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmupSummary {
    pub requests: u64,
    pub successful: u64,
}

/// The machine that ran the benchmark, in the original tool's form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// One entry per logical CPU: `"<model> cpu<N>@<MHz>MHz"`.
    pub cpu: Vec<String>,
    /// Total memory, e.g. `"23.43 GB"` (GiB, like the original tool).
    pub memory: String,
    pub os_name: String,
    pub os_version: String,
    pub kernel: String,
    pub hostname: String,
}

const NOT_AVAILABLE: &str = "N/A";

impl SystemInfo {
    /// Reads /proc and /etc/os-release; anything missing becomes "N/A".
    pub fn collect() -> Self {
        let read = |p: &str| fs::read_to_string(p).ok();
        SystemInfo::from_sources(&SystemSources {
            cpuinfo: read("/proc/cpuinfo"),
            meminfo: read("/proc/meminfo"),
            os_release: read("/etc/os-release").or_else(|| read("/usr/lib/os-release")),
            kernel: read("/proc/sys/kernel/osrelease"),
            hostname: read("/proc/sys/kernel/hostname").or_else(|| read("/etc/hostname")),
        })
    }

    /// Builds the info from file contents (pure, for tests).
    pub fn from_sources(src: &SystemSources) -> Self {
        let os = src.os_release.as_deref().unwrap_or("");
        SystemInfo {
            cpu: src
                .cpuinfo
                .as_deref()
                .map(parse_cpuinfo)
                .unwrap_or_default(),
            memory: src
                .meminfo
                .as_deref()
                .and_then(parse_mem_total_kib)
                .map(|kib| format!("{:.2} GB", kib as f64 / 1024.0 / 1024.0))
                .unwrap_or_else(|| NOT_AVAILABLE.into()),
            os_name: os_release_value(os, "NAME").unwrap_or_else(|| NOT_AVAILABLE.into()),
            os_version: os_release_value(os, "VERSION_ID")
                .or_else(|| os_release_value(os, "VERSION"))
                .unwrap_or_else(|| NOT_AVAILABLE.into()),
            kernel: trimmed_or_na(src.kernel.as_deref()),
            hostname: trimmed_or_na(src.hostname.as_deref()),
        }
    }
}

/// Raw contents of the files [`SystemInfo`] is read from.
#[derive(Clone, Debug, Default)]
pub struct SystemSources {
    pub cpuinfo: Option<String>,
    pub meminfo: Option<String>,
    pub os_release: Option<String>,
    pub kernel: Option<String>,
    pub hostname: Option<String>,
}

fn trimmed_or_na(text: Option<&str>) -> String {
    match text.map(str::trim) {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => NOT_AVAILABLE.into(),
    }
}

/// One string per `processor` block of /proc/cpuinfo.
fn parse_cpuinfo(text: &str) -> Vec<String> {
    let mut cpus = Vec::new();
    for block in text.split("\n\n").filter(|b| b.contains("processor")) {
        let field = |key: &str| {
            block.lines().find_map(|line| {
                let (k, v) = line.split_once(':')?;
                (k.trim() == key).then(|| v.trim().to_string())
            })
        };
        let index = field("processor").unwrap_or_else(|| cpus.len().to_string());
        // x86 has "model name"; some ARM kernels only give "CPU part" or "Hardware".
        let model = field("model name")
            .or_else(|| field("Hardware"))
            .or_else(|| field("CPU part"))
            .unwrap_or_else(|| NOT_AVAILABLE.into());
        let mhz = field("cpu MHz")
            .and_then(|m| m.parse::<f64>().ok())
            .map(|m| format!("{m:.0}"))
            .unwrap_or_else(|| NOT_AVAILABLE.into());
        cpus.push(format!("{model} cpu{index}@{mhz}MHz"));
    }
    cpus
}

fn parse_mem_total_kib(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `KEY=value` or `KEY="value"` from os-release.
fn os_release_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        if k.trim() != key {
            return None;
        }
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// The whole results file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultsDocument {
    // --- the original tool's keys ---
    /// The run configuration as the caller serialized it (secrets removed by the caller).
    pub config: serde_json::Value,
    pub results: Vec<StepResult>,
    /// RFC 3339 (UTC) wall-clock time of the run's anchor.
    pub start_time: String,
    /// RFC 3339 (UTC) time of the last write of this document.
    pub end_time: String,
    pub system: SystemInfo,
    // --- ours ---
    pub run_id: String,
    /// Version of the benchmarker that wrote the document.
    pub version: String,
    pub status: RunStatus,
    pub warmup: WarmupSummary,
    /// After the live sinks' final flush, by sink: each one's buffer counts and own account (e.g.
    /// `otlp`: spans exported, dropped, failed), and `results` (the handover's waits).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub sinks: serde_json::Map<String, serde_json::Value>,
    /// A merged document (`merge`): the results files it was made from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedInput>,
    /// Manual changes to the load during the run (live control), in order. At the top level,
    /// not in the steps: a step entry holds no list (the original tool's dashboard reads each
    /// one as a single table row).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub control: Vec<ControlRecord>,
    /// `--slice-duration`: each measured step summarized per slice, in order (top level, as
    /// `control`: a step entry holds no list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slices: Vec<crate::slices::SliceRecord>,
}

/// One live-control change, as the results document records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlRecord {
    /// Milliseconds since the run's start (as the requests log's times).
    pub time_ms: f64,
    /// The step it changed (its `index`).
    pub step: u32,
    pub action: crate::event::ControlAction,
    /// Virtual users (`set_users`) or requests per second (`set_rate`); null otherwise.
    pub value: Option<f64>,
    pub source: String,
}

impl From<&crate::event::ControlEvent> for ControlRecord {
    fn from(e: &crate::event::ControlEvent) -> Self {
        ControlRecord {
            time_ms: e.at as f64 / 1e6,
            step: e.step,
            action: e.action,
            value: e.value,
            source: e.source.clone(),
        }
    }
}

impl ResultsDocument {
    /// A document with no results yet, status `running`.
    pub fn new(
        config: serde_json::Value,
        run_id: String,
        version: String,
        anchor_unix_nanos: u128,
        system: SystemInfo,
    ) -> Self {
        let start_time = rfc3339(unix_nanos_to_system_time(anchor_unix_nanos));
        ResultsDocument {
            config,
            results: Vec::new(),
            end_time: start_time.clone(),
            start_time,
            system,
            run_id,
            version,
            status: RunStatus::Running,
            warmup: WarmupSummary::default(),
            sinks: serde_json::Map::new(),
            merged_from: Vec::new(),
            control: Vec::new(),
            slices: Vec::new(),
        }
    }

    /// Stamps `end_time` with `now` and rewrites `path` atomically.
    pub fn write_to(&mut self, path: &Path, now: SystemTime) -> io::Result<()> {
        self.end_time = rfc3339(now);
        let mut bytes = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write_atomically(path, &bytes)
    }
}

/// One input of a merged document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MergedInput {
    /// The file as named on the command line.
    pub file: String,
    pub run_id: String,
    /// `config.shard.index` of a shard's results; null for an unsharded run.
    pub shard: Option<u64>,
    pub status: RunStatus,
    pub hostname: String,
    pub steps: usize,
}

/// Writes `<name>.tmp` beside `path`, fsyncs it, renames it over `path`, and
/// fsyncs the folder: readers see the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        // Best effort: a stale temporary file is harmless, the error is what matters.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable; some filesystems refuse to fsync a folder.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// RFC 3339, UTC, millisecond precision. Times outside 1970..9999 are clamped
/// (humantime cannot format them).
pub fn rfc3339(t: SystemTime) -> String {
    let t = clamp_formattable(t);
    humantime::format_rfc3339_millis(t).to_string()
}

/// Last second humantime can format (9999-12-31T23:59:59Z).
const MAX_FORMATTABLE_SECS: u64 = 253_402_300_799;

fn clamp_formattable(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) if d.as_secs() <= MAX_FORMATTABLE_SECS => t,
        Ok(_) => UNIX_EPOCH + Duration::from_secs(MAX_FORMATTABLE_SECS),
        Err(_) => UNIX_EPOCH,
    }
}

fn unix_nanos_to_system_time(nanos: u128) -> SystemTime {
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let sub = (nanos % 1_000_000_000) as u32;
    let secs = secs.min(MAX_FORMATTABLE_SECS);
    UNIX_EPOCH + Duration::new(secs, sub)
}

/// Keeps `[A-Za-z0-9_-]`, replaces anything else with `_` (an empty label
/// becomes `results`).
pub fn sanitize_label(label: &str) -> String {
    if label.is_empty() {
        return "results".into();
    }
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The original tool's file name: `<label>_<YYYY-MM-DD-HH-MM-SS>.json`, UTC.
pub fn results_file_name(label: &str, unix_secs: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix_secs.min(MAX_FORMATTABLE_SECS));
    // "2024-05-01T12:34:56Z" → "2024-05-01-12-34-56"
    let stamp: String = humantime::format_rfc3339_seconds(t)
        .to_string()
        .trim_end_matches('Z')
        .chars()
        .map(|c| if c == 'T' || c == ':' { '-' } else { c })
        .collect();
    format!("{}_{stamp}.json", sanitize_label(label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_matches_the_original_tool() {
        // 2024-05-01T12:34:56Z
        assert_eq!(
            results_file_name("meta-llama/Llama-3.1-8B-Instruct", 1_714_566_896),
            "meta-llama_Llama-3_1-8B-Instruct_2024-05-01-12-34-56.json"
        );
        assert_eq!(results_file_name("", 0), "results_1970-01-01-00-00-00.json");
        assert_eq!(
            results_file_name("../x y", u64::MAX),
            "___x_y_9999-12-31-23-59-59.json"
        );
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_714_566_896_123)),
            "2024-05-01T12:34:56.123Z"
        );
        assert!(rfc3339(unix_nanos_to_system_time(u128::MAX)).starts_with("9999-12-31T23:59:59."));
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn system_info_from_proc_files() {
        let src = SystemSources {
            cpuinfo: Some(
                "processor\t: 0\nmodel name\t: Fancy CPU\ncpu MHz\t\t: 2999.6\n\n\
                 processor\t: 1\nmodel name\t: Fancy CPU\ncpu MHz\t\t: 3000.0\n\n"
                    .into(),
            ),
            meminfo: Some("MemTotal:       24576000 kB\nMemFree: 1 kB\n".into()),
            os_release: Some("NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n".into()),
            kernel: Some("6.1.0-18-amd64\n".into()),
            hostname: Some("bench-1\n".into()),
        };
        let info = SystemInfo::from_sources(&src);
        assert_eq!(
            info.cpu,
            ["Fancy CPU cpu0@3000MHz", "Fancy CPU cpu1@3000MHz"]
        );
        assert_eq!(info.memory, "23.44 GB");
        assert_eq!(info.os_name, "Debian GNU/Linux");
        assert_eq!(info.os_version, "12");
        assert_eq!(info.kernel, "6.1.0-18-amd64");
        assert_eq!(info.hostname, "bench-1");
    }

    #[test]
    fn missing_system_sources_are_na() {
        let info = SystemInfo::from_sources(&SystemSources::default());
        assert!(info.cpu.is_empty());
        for v in [
            &info.memory,
            &info.os_name,
            &info.os_version,
            &info.kernel,
            &info.hostname,
        ] {
            assert_eq!(v, "N/A");
        }
        // The real machine: whatever it has, no panic, and a kernel on Linux.
        let real = SystemInfo::collect();
        assert!(!real.kernel.is_empty());
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert!(!dir.path().join("r.json.tmp").exists());
        let missing = dir.path().join("no/such/dir/r.json");
        assert!(write_atomically(&missing, b"x").is_err());
    }
}
