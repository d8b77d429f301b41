//! `<results stem>.timeseries.jsonl`: the raw scraped samples, one JSON line per scrape of an
//! endpoint, written by the scraper as they come through a buffered file (flushed at each
//! step's end and at the end of the run); nothing is held beyond the buffer.
//!
//! A line: `{"time_ms": 1523.4, "endpoint": "http://h:8000/metrics", "error": null,
//! "series": {"requests_running": 3, "generation_tokens": 10234, "ttft_seconds_count": 80,
//! "ttft_seconds_sum": 9.3}}`. `time_ms`: when the scrape was sent, milliseconds after the
//! results' `start_time`. `series`: the well-known series by key, their label sets combined as
//! in the step's summary (summed, or averaged for ratios), a counter's raw cumulative value, a
//! histogram as `<key>_count` and `<key>_sum`; the series kept by `--server-metrics-filter`
//! under their own names (label sets summed). A failed scrape: `error` says why, `series` is
//! empty.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Serialize;

use super::aliases::{self, Combine};
use super::parse::{Family, Scrape, Value};

/// `results/x.json` → `results/x.timeseries.jsonl`.
pub fn timeseries_path(results_path: &Path) -> PathBuf {
    crate::json::requests_log::beside_results(results_path, ".timeseries.jsonl")
}

#[derive(Serialize)]
struct Line<'a> {
    time_ms: f64,
    endpoint: &'a str,
    error: Option<&'a str>,
    series: BTreeMap<String, f64>,
}

/// Adds one family's series into `out` under `key`, label sets combined by `combine`.
fn add(out: &mut BTreeMap<String, f64>, key: &str, family: &Family, combine: Combine) {
    let (mut total, mut n, mut count, mut sum, mut hist) = (0.0, 0usize, 0.0, 0.0, false);
    for s in &family.series {
        match &s.value {
            Value::Scalar(v) if v.is_finite() => {
                total += v;
                n += 1;
            }
            Value::Histogram {
                count: c, sum: s, ..
            } => {
                hist = true;
                count += c;
                sum += s;
            }
            Value::Scalar(_) => {}
        }
    }
    if hist {
        *out.entry(format!("{key}_count")).or_default() += count;
        *out.entry(format!("{key}_sum")).or_default() += sum;
    } else if n > 0 {
        *out.entry(key.to_string()).or_default() += match combine {
            Combine::Sum => total,
            Combine::Mean => total / n as f64,
        };
    }
}

/// One scrape's values: the well-known series (each from the source the step's summary reads),
/// and the unknown ones `filter` keeps.
pub fn flat_values(scrape: &Scrape, filter: Option<&Regex>) -> BTreeMap<String, f64> {
    let by_name: HashMap<&str, &Family> = scrape
        .families
        .iter()
        .map(|f| (f.name.as_str(), f))
        .collect();
    let mut out = BTreeMap::new();
    for a in aliases::ALIASES {
        if let Some((_, families)) = a.pick(&by_name) {
            for f in families {
                add(&mut out, a.key, f, a.combine);
            }
        }
    }
    if let Some(filter) = filter {
        for f in &scrape.families {
            if aliases::alias_of(&f.name).is_none() && filter.is_match(&f.name) {
                add(&mut out, &f.name, f, Combine::Sum);
            }
        }
    }
    out
}

/// The open file: lines go to its buffer as each scrape answers.
pub struct TimeseriesWriter {
    out: BufWriter<File>,
    path: PathBuf,
    /// The first write error, reported once; later lines are dropped.
    failed: bool,
}

impl TimeseriesWriter {
    pub fn create(path: PathBuf) -> io::Result<Self> {
        Ok(TimeseriesWriter {
            out: BufWriter::with_capacity(64 * 1024, File::create(&path)?),
            path,
            failed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One scrape of `endpoint` (written without credentials) at `time_ms`.
    pub fn write(
        &mut self,
        time_ms: f64,
        endpoint: &str,
        scrape: Result<&Scrape, &str>,
        filter: Option<&Regex>,
    ) {
        if self.failed {
            return;
        }
        let line = Line {
            time_ms: (time_ms * 10.0).round() / 10.0,
            endpoint,
            error: scrape.err(),
            series: scrape.map_or_else(|_| BTreeMap::new(), |s| flat_values(s, filter)),
        };
        let written = serde_json::to_writer(&mut self.out, &line)
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        self.check(written);
    }

    pub fn flush(&mut self) {
        if !self.failed {
            let flushed = self.out.flush();
            self.check(flushed);
        }
    }

    fn check(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            self.failed = true;
            log::error!(
                "server metrics: writing {}: {e}; no further samples written",
                self.path.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server_metrics::parse::parse;

    const TEXT: &str = "# TYPE vllm:num_requests_running gauge\n\
        vllm:num_requests_running{model_name=\"a\"} 2\n\
        vllm:num_requests_running{model_name=\"b\"} 3\n\
        # TYPE vllm:kv_cache_usage_perc gauge\n\
        vllm:kv_cache_usage_perc{model_name=\"a\"} 0.2\n\
        vllm:kv_cache_usage_perc{model_name=\"b\"} 0.4\n\
        # TYPE vllm:generation_tokens_total counter\n\
        vllm:generation_tokens_total{model_name=\"a\"} 100\n\
        # TYPE vllm:time_to_first_token_seconds histogram\n\
        vllm:time_to_first_token_seconds_bucket{le=\"0.1\"} 1\n\
        vllm:time_to_first_token_seconds_bucket{le=\"+Inf\"} 4\n\
        vllm:time_to_first_token_seconds_sum 0.9\n\
        vllm:time_to_first_token_seconds_count 4\n\
        # TYPE vllm:cache_config_info gauge\n\
        vllm:cache_config_info{block_size=\"16\"} 1\n";

    #[test]
    fn values_are_flat_combined_and_filtered() {
        let s = parse(TEXT).unwrap();
        let v = flat_values(&s, None);
        assert_eq!(v["requests_running"], 5.0);
        assert!((v["kv_cache_usage"] - 0.3).abs() < 1e-12);
        assert_eq!(v["generation_tokens"], 100.0);
        assert_eq!(v["ttft_seconds_count"], 4.0);
        assert_eq!(v["ttft_seconds_sum"], 0.9);
        assert_eq!(v.len(), 5, "{v:?}");
        let filter = Regex::new("cache_config").unwrap();
        assert_eq!(
            flat_values(&s, Some(&filter))["vllm:cache_config_info"],
            1.0
        );
    }

    #[test]
    fn one_line_per_scrape_and_a_failure_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = timeseries_path(&dir.path().join("run_1.json"));
        assert!(path.ends_with("run_1.timeseries.jsonl"));
        let mut w = TimeseriesWriter::create(path.clone()).unwrap();
        let s = parse(TEXT).unwrap();
        w.write(12.34, "http://h/metrics", Ok(&s), None);
        w.write(1012.0, "http://h/metrics", Err("timeout after 800ms"), None);
        w.flush();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["time_ms"], 12.3);
        assert_eq!(lines[0]["error"], serde_json::Value::Null);
        assert_eq!(lines[0]["series"]["requests_running"], 5.0);
        assert_eq!(lines[1]["error"], "timeout after 800ms");
        assert_eq!(lines[1]["series"], serde_json::json!({}));
    }
}
