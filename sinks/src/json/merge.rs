//! Merging the results of a sharded run (or of any runs that applied load at the same time)
//! into one document. Pure logic.
//!
//! Steps are matched by their number. Exact where it can be: latency summaries come from the
//! union of the shards' HDR histograms (never from averaging percentiles), counts add up, and
//! every rate is the merged count over the merged step's window (see `window`).

mod window;

use self::window::{unix_ms, Window};
use super::report::{MergedInput, ResultsDocument, RunStatus, WarmupSummary};
use super::results::{OutputTokens, StepConfig, StepResult};
use crate::aggregate::Histograms;
use crate::generator::{GeneratorHealth, REASON_SEPARATOR};
use crate::slo::Goodput;
use crate::steady::SteadyState;
use std::collections::BTreeMap;

/// The configuration keys every shard of one run shares (the load's part, the seed and the
/// shard itself differ by design).
const SHARED_SETTINGS: [&str; 15] = [
    "url",
    "model_name",
    "endpoint",
    "benchmark_kind",
    "duration",
    "warmup",
    "num_rates",
    "arrival",
    "prompt_options",
    "decode_options",
    "profile",
    "dataset",
    "dataset_file",
    "tokenizer_name",
    "trace_speedup",
];

/// `(file name, document)` pairs → one document. Errors name the file at fault. The same
/// results twice are always refused (their counts would double); files that are not shards of
/// one run (another run id, other settings, sharded beside unsharded) only with `force` — for
/// runs that really applied load to one server at the same time.
pub fn merge(inputs: &[(String, ResultsDocument)], force: bool) -> Result<ResultsDocument, String> {
    let Some((_, first)) = inputs.first() else {
        return Err("nothing to merge: give at least one results file".into());
    };
    check_duplicates(inputs)?;
    if !force {
        check_one_run(inputs)?;
    }
    check_shards(inputs)?;
    let docs: Vec<&ResultsDocument> = inputs.iter().map(|(_, d)| d).collect();
    let starts = start_times(inputs)?;
    // The merged document starts with its earliest input; merged steps are placed after it.
    let (earliest, anchor_ms) = starts
        .iter()
        .copied()
        .enumerate()
        .min_by_key(|(_, at)| *at)
        .unwrap_or_default();
    let mut step_numbers: Vec<u32> = docs
        .iter()
        .flat_map(|d| d.results.iter().map(|s| s.step))
        .collect();
    step_numbers.sort_unstable();
    step_numbers.dedup();
    let mut results = Vec::with_capacity(step_numbers.len());
    for number in step_numbers {
        let parts: Vec<(usize, &StepResult)> = docs
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.results.iter().find(|s| s.step == number).map(|s| (i, s)))
            .collect();
        let window = Window::of(parts.iter().map(|(i, s)| (starts[*i], *s)), anchor_ms);
        results.push(merge_step(inputs, &parts, window)?);
    }

    let mut merged = first.clone();
    merged.results = results;
    merged.run_id = joined(docs.iter().map(|d| d.run_id.as_str()));
    merged.config = merged_config(&docs, &merged.run_id);
    merged.start_time = docs[earliest].start_time.clone();
    merged.end_time = docs
        .iter()
        .map(|d| d.end_time.clone())
        .max()
        .unwrap_or_default();
    merged.status = docs
        .iter()
        .map(|d| d.status)
        .max_by_key(|s| severity(*s))
        .unwrap_or(first.status);
    merged.warmup = docs
        .iter()
        .fold(WarmupSummary::default(), |w, d| WarmupSummary {
            requests: w.requests + d.warmup.requests,
            successful: w.successful + d.warmup.successful,
        });
    merged.sinks = inputs
        .iter()
        .filter(|(_, d)| !d.sinks.is_empty())
        .map(|(file, d)| (file.clone(), serde_json::Value::Object(d.sinks.clone())))
        .collect();
    merged.merged_from = inputs
        .iter()
        .map(|(file, d)| MergedInput {
            file: file.clone(),
            run_id: d.run_id.clone(),
            shard: shard_of(d).map(|(index, _)| index),
            status: d.status,
            hostname: d.system.hostname.clone(),
            steps: d.results.len(),
        })
        .collect();
    Ok(merged)
}

/// Each input's `start_time` in Unix ms: what its steps' `start_ms` count from.
fn start_times(inputs: &[(String, ResultsDocument)]) -> Result<Vec<u64>, String> {
    inputs
        .iter()
        .map(|(file, d)| {
            unix_ms(&d.start_time).ok_or_else(|| {
                format!(
                    "{file}: start_time '{}' is not an RFC 3339 time",
                    d.start_time
                )
            })
        })
        .collect()
}

/// `config.shard` as `(index, count)`.
fn shard_of(doc: &ResultsDocument) -> Option<(u64, u64)> {
    let shard = doc.config.get("shard")?;
    Some((shard.get("index")?.as_u64()?, shard.get("count")?.as_u64()?))
}

/// Two inputs of the same run, the same shard and the same start are the same results.
fn check_duplicates(inputs: &[(String, ResultsDocument)]) -> Result<(), String> {
    let identity = |d: &ResultsDocument| (d.run_id.clone(), shard_of(d), d.start_time.clone());
    for (i, (file, doc)) in inputs.iter().enumerate() {
        if let Some((other, _)) = inputs[..i]
            .iter()
            .find(|(_, d)| identity(d) == identity(doc))
        {
            return Err(format!(
                "{other} and {file} are the same results (run {}, {}, started {}): merging them \
                 would count every request twice",
                doc.run_id,
                shard_of(doc).map_or("unsharded".into(), |(i, n)| format!("shard {i} of {n}")),
                doc.start_time
            ));
        }
    }
    Ok(())
}

/// Every input must be a shard of the first one's run: same run id, same shared settings.
fn check_one_run(inputs: &[(String, ResultsDocument)]) -> Result<(), String> {
    let (first_file, first) = &inputs[0];
    let hint = "(--force merges results of runs that loaded one server at the same time)";
    for (file, doc) in &inputs[1..] {
        if doc.run_id != first.run_id {
            return Err(format!(
                "{file} is run {}, {first_file} is run {}: not shards of one run {hint}",
                doc.run_id, first.run_id
            ));
        }
        if shard_of(doc).is_some() != shard_of(first).is_some() {
            return Err(format!(
                "{file} and {first_file}: one is a shard, the other an unsharded run {hint}"
            ));
        }
        for key in SHARED_SETTINGS {
            let (a, b) = (first.config.get(key), doc.config.get(key));
            if a != b {
                let show =
                    |v: Option<&serde_json::Value>| v.map_or("none".into(), |v| v.to_string());
                return Err(format!(
                    "{file} and {first_file} differ in {key} ({} vs {}): not shards of one run {hint}",
                    show(b),
                    show(a)
                ));
            }
        }
    }
    Ok(())
}

/// Shards of one run must agree on the count and not repeat an index; a missing shard is
/// allowed (its load is simply not in the result) but said.
fn check_shards(inputs: &[(String, ResultsDocument)]) -> Result<(), String> {
    let mut seen: BTreeMap<u64, &str> = BTreeMap::new();
    let mut count = None;
    for (file, doc) in inputs {
        let Some((index, n)) = shard_of(doc) else {
            continue;
        };
        if *count.get_or_insert(n) != n {
            return Err(format!(
                "{file} is shard {index} of {n}, the files before it are of {} shards",
                count.unwrap_or(n)
            ));
        }
        if let Some(other) = seen.insert(index, file) {
            return Err(format!("{file} and {other} are both shard {index}"));
        }
    }
    if let Some(n) = count {
        let missing: Vec<String> = (0..n)
            .filter(|i| !seen.contains_key(i))
            .map(|i| i.to_string())
            .collect();
        if !missing.is_empty() {
            log::warn!(
                "merging {} of {n} shards: shard(s) {} missing",
                seen.len(),
                missing.join(", ")
            );
        }
    }
    Ok(())
}

/// The first input's configuration for the whole run: without its shard, with the run id the
/// merged document carries (the original tool's dashboard groups rows by `config.run_id`), and
/// the original tool's load keys added up over the inputs (users, and each rate).
fn merged_config(docs: &[&ResultsDocument], run_id: &str) -> serde_json::Value {
    use serde_json::Value;
    let mut config = docs[0].config.clone();
    let Some(obj) = config.as_object_mut() else {
        return config;
    };
    obj.remove("shard");
    obj.insert("merged_inputs".into(), docs.len().into());
    obj.insert("run_id".into(), run_id.into());
    let max_vus: Option<u64> = docs
        .iter()
        .map(|d| d.config.get("max_vus").and_then(Value::as_u64))
        .sum();
    if let Some(v) = max_vus {
        obj.insert("max_vus".into(), v.into());
    }
    let rates: Option<Vec<Vec<f64>>> = docs
        .iter()
        .map(|d| {
            let r = d.config.get("rates")?.as_array()?;
            r.iter().map(Value::as_f64).collect()
        })
        .collect();
    if let Some(rates) = rates.filter(|r| r.iter().all(|x| x.len() == r[0].len())) {
        let sums: Vec<f64> = (0..rates[0].len())
            .map(|k| rates.iter().map(|r| r[k]).sum())
            .collect();
        obj.insert("rates".into(), sums.into());
    }
    config
}

/// The shards loaded the server at the same time, each steady over its own part: their steady
/// rates add up, over the part all of them share (latest start, shortest length). Null if any
/// shard had none.
fn merge_steady(steps: &[&StepResult]) -> Option<SteadyState> {
    let parts: Vec<SteadyState> = steps
        .iter()
        .map(|s| s.steady_state)
        .collect::<Option<_>>()?;
    Some(SteadyState {
        start_ms: parts.iter().map(|p| p.start_ms).max()?,
        duration_ms: parts.iter().map(|p| p.duration_ms).min()?,
        request_rate: parts.iter().map(|p| p.request_rate).sum(),
        token_throughput_secs: parts.iter().map(|p| p.token_throughput_secs).sum(),
    })
}

fn severity(s: RunStatus) -> u8 {
    match s {
        RunStatus::Completed => 0,
        RunStatus::Running => 1,
        RunStatus::Interrupted => 2,
        RunStatus::Failed => 3,
        RunStatus::Aborted => 4,
    }
}

fn joined<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = items.collect();
    v.dedup();
    v.join("+")
}

fn merge_step(
    inputs: &[(String, ResultsDocument)],
    parts: &[(usize, &StepResult)],
    window: Window,
) -> Result<StepResult, String> {
    let (_, first) = parts[0];
    if let Some((i, other)) = parts.iter().find(|(_, s)| s.kind != first.kind) {
        return Err(format!(
            "step {} is {:?} in {} but {:?} in {}",
            first.step, other.kind, inputs[*i].0, first.kind, inputs[parts[0].0].0
        ));
    }
    let steps: Vec<&StepResult> = parts.iter().map(|(_, s)| *s).collect();
    let sum = |f: fn(&StepResult) -> u64| steps.iter().map(|s| f(s)).sum::<u64>();
    let hist = merge_histograms(inputs, parts)?;
    let offered_rate = steps.iter().map(|s| s.offered_rate).sum::<Option<f64>>();
    let label = |i: usize| shard_label(inputs, i);
    let (total_requests, total_tokens, successful_requests) = (
        sum(|s| s.total_requests),
        sum(|s| s.total_tokens),
        sum(|s| s.successful_requests),
    );
    Ok(StepResult {
        id: match (first.id.split_once('@'), offered_rate) {
            // As the run names its rate steps (`constant@10.00req/s`), with the whole run's rate.
            (Some((arrival, _)), Some(rate)) => crate::event::rate_step_id(arrival, rate),
            _ => first.id.clone(),
        },
        executor_type: first.executor_type.clone(),
        config: StepConfig {
            max_vus: sum(|s| s.config.max_vus),
            duration_secs: first.config.duration_secs,
            rate: steps.iter().map(|s| s.config.rate).sum(),
        },
        total_requests,
        total_tokens,
        token_throughput_secs: window.rate(total_tokens),
        inputs: crate::inputs::InputThroughput::merge(
            steps.iter().map(|s| s.inputs.as_ref()),
            window.active_s(),
        ),
        duration_ms: window.duration_ms,
        time_to_first_token_ms: hist.ttft.summary(),
        inter_token_latency_ms: hist.itl.summary(),
        e2e_latency_ms: hist.e2e.summary(),
        failed_requests: sum(|s| s.failed_requests),
        successful_requests,
        request_rate: window.rate(successful_requests),
        steady_state: merge_steady(&steps),
        total_tokens_sent: sum(|s| s.total_tokens_sent),
        prompt_tokens_sent: sum(|s| s.prompt_tokens_sent),
        step: first.step,
        start_ms: window.start_ms,
        kind: first.kind,
        inter_chunk_latency_ms: hist.inter_chunk.summary(),
        queue_delay_ms: hist.queue_delay.summary(),
        time_to_first_token_from_schedule_ms: hist.ttft_from_schedule.summary(),
        e2e_latency_from_schedule_ms: hist.e2e_from_schedule.summary(),
        offered_rate,
        arrival: first.arrival.clone(),
        // The shards sent at the same time: their rates add up (each over its own sends, as the
        // run measured it), as the steady rates do.
        achieved_rate: steps.iter().map(|s| s.achieved_rate).sum(),
        send_duration_ms: window.send_duration_ms,
        paused_ms: window.paused_ms,
        dropped_arrivals: sum(|s| s.dropped_arrivals),
        queued_arrivals: sum(|s| s.queued_arrivals),
        retried_attempts: add_maps(steps.iter().map(|s| &s.retried_attempts)),
        errors: add_maps(steps.iter().map(|s| &s.errors)),
        http_statuses: add_maps(steps.iter().map(|s| &s.http_statuses)),
        output_tokens: merge_tokens(&steps),
        // Over the merged sums, when a shard's server reported `cached_tokens`.
        client_prefix_cache_hit_rate: steps
            .iter()
            .any(|s| s.client_prefix_cache_hit_rate.is_some())
            .then(|| merge_tokens(&steps).cached_ratio())
            .flatten(),
        ended_early: joined_notes(
            parts
                .iter()
                .map(|(i, s)| (label(*i), s.ended_early.as_deref())),
        ),
        first_error: steps.iter().find_map(|s| s.first_error.clone()),
        goodput: merge_goodput(&steps, window),
        generator: merge_generator(parts.iter().map(|(i, s)| (label(*i), s.generator.as_ref()))),
        // Every shard scraped the same server over (nearly) the same window: its view is the
        // whole server's, not a shard's, so the first shard's stands (not a sum), and only the
        // energy per token is taken again over the merged step's tokens.
        server_metrics: steps
            .iter()
            .find_map(|s| s.server_metrics.clone())
            .map(|mut m| {
                m.derive(total_tokens);
                m
            }),
        histograms: hist.encode(),
        reasoning: crate::reasoning_step::ReasoningAggregator::merged(
            steps.iter().map(|s| &s.reasoning),
        )
        .map_err(|e| format!("step {}: {e}", first.step))?,
        images_and_tools: merge_images_tools(&steps, window)?,
        shards: Some(
            parts
                .iter()
                .map(|(i, _)| label(*i))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    })
}

/// The shards' images and tool calls, summed, their time to first tool call from the union of
/// their histograms; absent when no shard had any.
fn merge_images_tools(
    steps: &[&StepResult],
    window: Window,
) -> Result<Option<crate::images_tools::ImagesToolsStep>, String> {
    let parts: Vec<_> = steps
        .iter()
        .filter_map(|s| s.images_and_tools.as_ref())
        .collect();
    if parts.is_empty() {
        return Ok(None);
    }
    crate::images_tools::ImagesToolsCounter::merge(&parts, window.active_s()).map(Some)
}

/// How a merged step names an input: its shard index, or its position among the inputs.
fn shard_label(inputs: &[(String, ResultsDocument)], i: usize) -> String {
    match shard_of(&inputs[i].1) {
        Some((index, _)) => format!("shard {index}"),
        None => inputs[i].0.clone(),
    }
}

fn add_maps<'a>(maps: impl Iterator<Item = &'a BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for map in maps {
        for (k, v) in map {
            *out.entry(k.clone()).or_default() += v;
        }
    }
    out
}

/// `shard 1: reason; shard 2: reason`, or `None` when no input gave one.
fn joined_notes<'a>(notes: impl Iterator<Item = (String, Option<&'a str>)>) -> Option<String> {
    let notes: Vec<String> = notes
        .filter_map(|(who, note)| note.map(|n| format!("{who}: {n}")))
        .collect();
    (!notes.is_empty()).then(|| notes.join("; "))
}

fn merge_tokens(steps: &[&StepResult]) -> OutputTokens {
    let sum = |f: fn(&OutputTokens) -> u64| steps.iter().map(|s| f(&s.output_tokens)).sum::<u64>();
    // The overhead is a mean over requests that reported usage: weight each shard by those.
    let (weighted, weight) = steps
        .iter()
        .filter_map(|s| {
            let t = &s.output_tokens;
            t.prompt_overhead_per_request.map(|o| {
                (
                    o * t.server_reported_requests as f64,
                    t.server_reported_requests,
                )
            })
        })
        .fold((0.0, 0u64), |(a, n), (x, w)| (a + x, n + w));
    OutputTokens {
        requested: sum(|t| t.requested),
        server_reported_requests: sum(|t| t.server_reported_requests),
        server_prompt_tokens: sum(|t| t.server_prompt_tokens),
        server_completion_tokens: sum(|t| t.server_completion_tokens),
        server_cached_tokens: sum(|t| t.server_cached_tokens),
        client_counted_requests: sum(|t| t.client_counted_requests),
        prompt_overhead_per_request: (weight > 0).then(|| weighted / weight as f64),
    }
}

fn merge_goodput(steps: &[&StepResult], window: Window) -> Option<Goodput> {
    let all: Vec<&Goodput> = steps.iter().filter_map(|s| s.goodput.as_ref()).collect();
    let first = all.first()?;
    let good_requests = all.iter().map(|g| g.good_requests).sum();
    let good_tokens = all.iter().map(|g| g.good_tokens).sum();
    Some(Goodput {
        slo: first.slo,
        good_requests,
        good_tokens,
        request_rate: window.rate(good_requests),
        token_rate: window.rate(good_tokens),
    })
}

/// Each shard had its own generator: CPU adds up, the worst lag, lateness and utilization
/// stand, and the merged step is generator-bound when any shard was.
fn merge_generator<'a>(
    parts: impl Iterator<Item = (String, Option<&'a GeneratorHealth>)>,
) -> Option<GeneratorHealth> {
    let mut out: Option<GeneratorHealth> = None;
    let mut reasons = Vec::new();
    for (who, g) in parts {
        let Some(g) = g else { continue };
        let own = g
            .reasons
            .as_deref()
            .into_iter()
            .flat_map(|r| r.split(REASON_SEPARATOR));
        reasons.extend(own.map(|r| format!("{who}: {r}")));
        let Some(o) = out.as_mut() else {
            out = Some(g.clone());
            continue;
        };
        o.cpu_seconds += g.cpu_seconds;
        o.cpu_utilization = o.cpu_utilization.max(g.cpu_utilization);
        o.event_loop_lag_ms_p99 = o.event_loop_lag_ms_p99.max(g.event_loop_lag_ms_p99);
        o.event_loop_lag_ms_max = o.event_loop_lag_ms_max.max(g.event_loop_lag_ms_max);
        o.schedule_lateness_ms_p99 = match (o.schedule_lateness_ms_p99, g.schedule_lateness_ms_p99)
        {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        o.bound |= g.bound;
        o.restarted_users += g.restarted_users;
    }
    if let Some(o) = out.as_mut() {
        o.reasons = (!reasons.is_empty()).then(|| reasons.join(REASON_SEPARATOR));
    }
    out
}

/// The union of the inputs' histograms for one step.
fn merge_histograms(
    inputs: &[(String, ResultsDocument)],
    parts: &[(usize, &StepResult)],
) -> Result<Histograms, String> {
    let mut merged = Histograms::default();
    for (i, step) in parts {
        let h = Histograms::decode(&step.histograms)
            .map_err(|e| format!("{}: step {}: {e}", inputs[*i].0, step.step))?;
        merged.merge(&h);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::StepAggregator;
    use crate::event::{Outcome, RequestFinished, StepInfo, StepKind, StepWindow, TokenSource};
    use crate::json::{SystemInfo, RESULTS_SCHEMA};

    const MS: u64 = 1_000_000;

    /// Request `i`: latencies spread over two orders of magnitude, every 9th one failed.
    fn request(i: u64) -> RequestFinished {
        let ok = i % 9 != 4;
        let at = i * 10 * MS;
        let ttft = (20 + (i * 37) % 900) * MS / 3;
        let tokens = 2 + i % 7;
        let gap_us = 5_000 + (i * 131) % 20_000;
        let offsets: Vec<u32> = (0..tokens)
            .map(|k| (ttft / 1000 + k * gap_us) as u32)
            .collect();
        RequestFinished {
            id: format!("r{i}"),
            step: 1,
            scheduled_at: at,
            sent_at: at + (i % 5) * MS,
            first_token_at: ok.then(|| at + (i % 5) * MS + ttft),
            end_at: at + (i % 5) * MS + u64::from(*offsets.last().unwrap()) * 1000 + MS,
            chunk_offsets_us: if ok { offsets } else { vec![] },
            prompt_tokens: 100 + i % 3,
            requested_output_tokens: Some(tokens),
            output_tokens: if ok { tokens } else { 0 },
            output_tokens_source: TokenSource::Server,
            server_prompt_tokens: Some(105 + i % 3),
            server_completion_tokens: Some(tokens),
            server_cached_tokens: Some(0),
            outcome: if ok { Outcome::Ok } else { Outcome::Http5xx },
            http_status: Some(if ok { 200 } else { 503 }),
            error: (!ok).then(|| "overloaded".into()),
            finish_reason: Some("length".into()),
            response_model: Some("m".into()),
            output_text: None,
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: None,
        }
    }

    fn info(rate: f64) -> StepInfo {
        StepInfo {
            index: 1,
            id: format!("constant@{rate:.2}req/s"),
            kind: StepKind::Rate,
            max_vus: 8,
            rate: Some(rate),
            duration_secs: 10.0,
        }
    }

    /// A one-step document of `requests`, shard `shard` of `count` (or unsharded).
    fn doc(requests: &[RequestFinished], rate: f64, shard: Option<(u32, u32)>) -> ResultsDocument {
        let window = StepWindow {
            start: 0,
            send_end: 10_000 * MS,
            end: 10_500 * MS,
        };
        doc_at(requests, rate, shard, 0, window)
    }

    /// [`doc`] of a run started at `anchor_ms` (Unix), its step over `window`, with an SLO.
    fn doc_at(
        requests: &[RequestFinished],
        rate: f64,
        shard: Option<(u32, u32)>,
        anchor_ms: u64,
        window: StepWindow,
    ) -> ResultsDocument {
        let config = crate::json::example_config(match shard {
            Some((index, count)) => serde_json::json!({"shard": {"index": index, "count": count}}),
            None => serde_json::json!({}),
        });
        let anchor = u128::from(anchor_ms) * 1_000_000;
        let mut d = ResultsDocument::new(
            config,
            "run".into(),
            "0".into(),
            anchor,
            SystemInfo::collect(),
        );
        let slo = "ttft=200ms".parse().ok();
        let mut agg = StepAggregator::new(info(rate)).with_slo(slo);
        for r in requests {
            agg.record(r);
        }
        d.results.push(agg.finish(window, None));
        d.status = RunStatus::Completed;
        d
    }

    /// Shard `s` of 3: every third request.
    fn third(all: &[RequestFinished], s: u32) -> Vec<RequestFinished> {
        let mine = |r: &&RequestFinished| r.scheduled_at / (10 * MS) % 3 == u64::from(s);
        all.iter().filter(mine).cloned().collect()
    }

    /// Every rate of a merged step is its count over its duration, to the bit.
    fn assert_rates_are_counts_over_the_window(m: &StepResult) {
        let over = |n: u64, ms: u64| n as f64 / (ms as f64 / 1e3);
        assert_eq!(m.token_throughput_secs, over(m.total_tokens, m.duration_ms));
        assert_eq!(m.request_rate, over(m.successful_requests, m.duration_ms));
        let g = m.goodput.as_ref().expect("the shards had an SLO");
        assert_eq!(g.request_rate, over(g.good_requests, m.duration_ms));
        assert_eq!(g.token_rate, over(g.good_tokens, m.duration_ms));
    }

    #[test]
    fn a_merged_step_s_rates_are_its_totals_over_its_duration() {
        // Shards of unequal length: adding their rates (each over its own window) overstates
        // the whole beside the longest duration.
        let all: Vec<RequestFinished> = (0..900).map(request).collect();
        let shards: Vec<(String, ResultsDocument)> = (0..3u32)
            .map(|s| {
                let end = u64::from(10_500 + 1_000 * s) * MS;
                let window = StepWindow {
                    start: 0,
                    send_end: 10_000 * MS,
                    end,
                };
                let d = doc_at(&third(&all, s), 10.0, Some((s, 3)), 0, window);
                (format!("s{s}.json"), d)
            })
            .collect();
        let merged = merge(&shards, false).unwrap();
        let m = &merged.results[0];
        assert_eq!(m.duration_ms, 12_500);
        assert_rates_are_counts_over_the_window(m);
        // The shards sent side by side: the merged step sent at the sum of their rates.
        let sent: f64 = shards.iter().map(|(_, d)| d.results[0].achieved_rate).sum();
        assert!(
            (m.achieved_rate - sent).abs() < 1e-9,
            "{} vs {sent}",
            m.achieved_rate
        );
    }

    #[test]
    fn the_first_shard_s_server_metrics_stand_with_energy_over_the_merged_tokens() {
        use crate::server_metrics::{SeriesSummary, ServerMetrics};
        let all: Vec<RequestFinished> = (0..90).map(request).collect();
        let metrics = |energy_mj: f64| ServerMetrics {
            endpoints: "http://h/metrics".into(),
            engine: Some("vllm".into()),
            scrapes: 3,
            failed_scrapes: 0,
            series: [(
                "gpu_energy".to_string(),
                SeriesSummary::Counter {
                    source: "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION".into(),
                    unit: "mJ".into(),
                    increase: energy_mj,
                    rate_per_s: None,
                },
            )]
            .into(),
            prefix_cache_hit_rate: None,
            joules_per_output_token: None,
            other: Default::default(),
        };
        let shards: Vec<(String, ResultsDocument)> = (0..3u32)
            .map(|s| {
                let mut d = doc(&third(&all, s), 10.0, Some((s, 3)));
                // Shard 0 scraped nothing (off); shards 1 and 2 saw the same server.
                if s > 0 {
                    d.results[0].server_metrics = Some(metrics(1000.0 * f64::from(s)));
                }
                (format!("s{s}.json"), d)
            })
            .collect();
        let merged = merge(&shards, false).unwrap();
        let m = merged.results[0].server_metrics.as_ref().expect("kept");
        assert_eq!(
            m.series["gpu_energy"].increase(),
            Some(1000.0),
            "not summed"
        );
        let tokens = merged.results[0].total_tokens as f64;
        assert_eq!(m.joules_per_output_token, Some(1.0 / tokens));
    }

    #[test]
    fn three_shards_with_offset_windows_merge_over_their_joint_window() {
        const T0: u64 = 1_700_000_000_000;
        let all: Vec<RequestFinished> = (0..900).map(request).collect();
        // (run start after T0, step start, end of sending, step end), ms: each shard started
        // its run and its step at its own time, all on the wall clock.
        let placement = [
            (0, 2_000, 12_000, 12_500),
            (300, 2_100, 12_100, 12_600),
            (50, 1_800, 11_800, 12_400),
        ];
        let shards: Vec<(String, ResultsDocument)> = (0..3u32)
            .map(|s| {
                let (run, start, send_end, end) = placement[s as usize];
                let window = StepWindow {
                    start: start * MS,
                    send_end: send_end * MS,
                    end: end * MS,
                };
                let d = doc_at(&third(&all, s), 10.0, Some((s, 3)), T0 + run, window);
                (format!("s{s}.json"), d)
            })
            .collect();
        let merged = merge(&shards, false).unwrap();
        let m = &merged.results[0];
        // Placed after T0: shard 2 starts the step first (50 + 1 800), shard 1 ends it last
        // (300 + 12 600) and stops sending last (300 + 12 100).
        assert_eq!(merged.start_time, shards[0].1.start_time);
        assert_eq!(m.start_ms, Some(1_850));
        assert_eq!(m.duration_ms, 12_900 - 1_850);
        assert_eq!(m.send_duration_ms, 12_400 - 1_850);
        let total = |f: fn(&StepResult) -> u64| -> u64 {
            shards.iter().map(|(_, d)| f(&d.results[0])).sum()
        };
        assert_eq!(m.total_tokens, total(|s| s.total_tokens));
        assert_eq!(m.successful_requests, total(|s| s.successful_requests));
        assert_eq!(
            m.token_throughput_secs,
            total(|s| s.total_tokens) as f64 / 11.05
        );
        assert_rates_are_counts_over_the_window(m);

        // The merged document is a valid results document, with the step placed.
        let schema: serde_json::Value = serde_json::from_str(RESULTS_SCHEMA).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let value = serde_json::to_value(&merged).unwrap();
        assert!(validator.is_valid(&value));
        assert_eq!(value["results"][0]["start_ms"], 1_850);
    }

    #[test]
    fn steps_without_a_start_merge_as_started_together() {
        // Results written before steps carried `start_ms`.
        let all: Vec<RequestFinished> = (0..90).map(request).collect();
        let shards: Vec<(String, ResultsDocument)> = (0..2u32)
            .map(|s| {
                let mut d = doc(&third(&all, s), 10.0, Some((s, 2)));
                d.results[0].start_ms = None;
                d.results[0].duration_ms += u64::from(s) * 700;
                (format!("s{s}.json"), d)
            })
            .collect();
        let m = &merge(&shards, false).unwrap().results[0];
        assert_eq!(m.start_ms, None);
        assert_eq!(m.duration_ms, 11_200);
        assert_eq!(m.send_duration_ms, 10_000);
        assert_rates_are_counts_over_the_window(m);
    }

    #[test]
    fn three_shards_merge_into_exactly_the_whole() {
        let all: Vec<RequestFinished> = (0..900).map(request).collect();
        let whole = doc(&all, 30.0, None);
        let shards: Vec<(String, ResultsDocument)> = (0..3u32)
            .map(|s| {
                (
                    format!("s{s}.json"),
                    doc(&third(&all, s), 10.0, Some((s, 3))),
                )
            })
            .collect();
        let merged = merge(&shards, false).unwrap();
        let (m, w) = (&merged.results[0], &whole.results[0]);
        // The union of the histograms is the histogram of the union: every figure is identical.
        assert_eq!(m.time_to_first_token_ms, w.time_to_first_token_ms);
        assert_eq!(m.inter_token_latency_ms, w.inter_token_latency_ms);
        assert_eq!(m.e2e_latency_ms, w.e2e_latency_ms);
        assert_eq!(m.inter_chunk_latency_ms, w.inter_chunk_latency_ms);
        assert_eq!(m.queue_delay_ms, w.queue_delay_ms);
        assert_eq!(m.histograms, w.histograms);
        assert_eq!(m.reasoning, w.reasoning);
        for (a, b) in [
            (m.total_requests, w.total_requests),
            (m.successful_requests, w.successful_requests),
            (m.failed_requests, w.failed_requests),
            (m.total_tokens, w.total_tokens),
            (m.total_tokens_sent, w.total_tokens_sent),
            (m.prompt_tokens_sent, w.prompt_tokens_sent),
        ] {
            assert_eq!(a, b);
        }
        assert_eq!(m.errors, w.errors);
        assert_eq!(m.http_statuses, w.http_statuses);
        assert_eq!(m.output_tokens, w.output_tokens);
        assert!((m.token_throughput_secs - w.token_throughput_secs).abs() < 1e-9);
        assert!((m.request_rate - w.request_rate).abs() < 1e-9);
        assert_eq!(m.offered_rate, Some(30.0));
        assert_eq!(m.id, "constant@30.00req/s");
        assert_eq!(m.config.max_vus, 24);
        assert_eq!(m.shards.as_deref(), Some("shard 0, shard 1, shard 2"));
        assert_eq!(merged.merged_from.len(), 3);
        assert_eq!(merged.merged_from[2].shard, Some(2));
        assert!(merged.config.get("shard").is_none());
        // The whole run's load, under the original tool's keys.
        assert_eq!(merged.config["max_vus"], 48);
        assert_eq!(merged.config["rates"], serde_json::json!([4.5, 9.0]));
        assert_eq!(merged.config["run_id"], "run");

        // The merged document is a valid results document.
        let schema: serde_json::Value = serde_json::from_str(RESULTS_SCHEMA).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let value = serde_json::to_value(&merged).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errors, Vec::<String>::new());
    }

    #[test]
    fn inconsistent_inputs_are_refused_with_the_file_named() {
        let part: Vec<_> = (0..10).map(request).collect();
        let a = ("a.json".to_string(), doc(&part, 1.0, Some((0, 3))));
        // Shard 0 run again (another start): not the same results, but the same shard.
        let mut again = doc(&part, 1.0, Some((0, 3)));
        again.start_time = "2024-01-01T00:00:00.000Z".into();
        let dup = ("b.json".to_string(), again);
        assert!(merge(&[a.clone(), dup], false)
            .unwrap_err()
            .contains("both shard 0"));
        let other = ("c.json".to_string(), doc(&part, 1.0, Some((1, 2))));
        assert!(merge(&[a.clone(), other], false)
            .unwrap_err()
            .contains("c.json"));
        let mut broken = doc(&part, 1.0, Some((1, 3)));
        broken.results[0].histograms.ttft = "not base64!".into();
        let err = merge(&[a.clone(), ("d.json".into(), broken)], false).unwrap_err();
        assert!(err.contains("d.json") && err.contains("ttft"), "{err}");
        let mut closed = doc(&part, 1.0, Some((2, 3)));
        closed.results[0].kind = StepKind::Throughput;
        assert!(merge(&[a, ("e.json".into(), closed)], false)
            .unwrap_err()
            .contains("step 1"));
        assert!(merge(&[], false).is_err());
    }

    #[test]
    fn the_same_results_twice_are_refused_even_forced() {
        let part: Vec<_> = (0..10).map(request).collect();
        let a = doc(&part, 1.0, None);
        for force in [false, true] {
            let err = merge(
                &[("a.json".into(), a.clone()), ("./a.json".into(), a.clone())],
                force,
            )
            .unwrap_err();
            assert!(
                err.contains("a.json") && err.contains("same results"),
                "{err}"
            );
        }
    }

    #[test]
    fn files_of_other_runs_or_settings_are_refused_unless_forced() {
        let part: Vec<_> = (0..10).map(request).collect();
        let a = doc(&part, 1.0, Some((0, 2)));
        let mut other_run = doc(&part, 1.0, Some((1, 2)));
        other_run.run_id = "other".into();
        let err = merge(
            &[("a".into(), a.clone()), ("b".into(), other_run.clone())],
            false,
        )
        .unwrap_err();
        assert!(
            err.contains("run other") && err.contains("--force"),
            "{err}"
        );
        assert!(merge(&[("a".into(), a.clone()), ("b".into(), other_run)], true).is_ok());

        let mut other_settings = doc(&part, 1.0, Some((1, 2)));
        other_settings.config["decode_options"] = serde_json::json!({"num_tokens": 64});
        let err = merge(
            &[("a".into(), a.clone()), ("b".into(), other_settings)],
            false,
        )
        .unwrap_err();
        assert!(err.contains("decode_options"), "{err}");
        let unsharded = doc(&part, 1.0, None);
        assert!(merge(&[("a".into(), a), ("c".into(), unsharded)], false).is_err());
    }

    #[test]
    fn a_step_missing_from_a_shard_merges_what_there_is() {
        let part: Vec<_> = (0..30).map(request).collect();
        let a = doc(&part, 1.0, Some((0, 2)));
        let mut b = doc(&part, 1.0, Some((1, 2)));
        b.results.clear();
        b.status = RunStatus::Interrupted;
        let merged = merge(&[("a".into(), a.clone()), ("b".into(), b)], false).unwrap();
        assert_eq!(merged.results.len(), 1);
        assert_eq!(
            merged.results[0].total_requests,
            a.results[0].total_requests
        );
        assert_eq!(merged.results[0].shards.as_deref(), Some("shard 0"));
        assert_eq!(merged.status, RunStatus::Interrupted);
    }
}
