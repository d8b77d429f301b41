//! The `Recorder` actor: the lossless sink behind the results. It owns the
//! step aggregators, the results document and the requests log, and runs on a
//! sink arbiter of the caller's choosing, never on a request arbiter (it
//! tokenizes pending outputs and writes files).
//!
//! Protocol: `StartStep` → `HandOver` (a request's record, through
//! [`RecorderHandle`](crate::handover::RecorderHandle): bounded, lossless, the request waits for
//! room only) / `RecordRequest` / `RecordDropped` → `FinishStep` (replies with
//! the step's result once it is on disk) → … → `Flush` (final write, replies with
//! the results path). Step 0 is the warmup: it feeds the `warmup` counts and its
//! `FinishStep` reply, never the results.

use crate::aggregate::StepAggregator;
use crate::event::{
    ArrivalDropped, ArrivalQueued, Event, Nanos, RequestFinished, RunStarted, StepInfo, StepWindow,
    TokenSource,
};
use crate::generator::GeneratorStats;
use crate::json::report::{ResultsDocument, RunStatus, SystemInfo};
use crate::json::requests_log::{requests_log_path, RequestsLog};
use crate::json::results::StepResult;
use crate::json::results_file_name;
use crate::live::{LiveSink, SinkSet};
use crate::slices::{SliceRecord, SliceServerMetrics, Slicer};
use crate::slo::Slo;
use actix::prelude::*;
use std::collections::BTreeMap;
use std::{fs, io, path::Path, path::PathBuf, sync::Arc, time::SystemTime};

/// The warmup's step index: its events never enter the results.
pub const WARMUP_STEP: u32 = 0;

/// Counts output tokens of a whole generated text (the client tokenizer).
pub trait TokenCounter: Send + Sync {
    fn count(&self, text: &str) -> u64;
}

/// What the Recorder needs to know before the run starts.
#[derive(Clone, Debug)]
pub struct RecorderConfig {
    /// Folder of the results (created if missing).
    pub output_dir: PathBuf,
    /// Tokenizer label, for the file name (sanitized).
    pub file_label: String,
    pub run_id: String,
    /// The run configuration as it goes into the document's `config` (no secrets).
    pub config_json: serde_json::Value,
    /// Also write `<results stem>.requests.jsonl`.
    pub save_requests: bool,
    /// Wall-clock time (ns since the Unix epoch) of the run's monotonic anchor.
    pub anchor_unix_nanos: u128,
    /// Version of the benchmarker, written in the document.
    pub version: String,
}

/// A finished request. Reply once it is counted.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RecordRequest(pub RequestFinished);

/// A finished request, handed over by a request that does not wait for the reply: `slot` is
/// its place in the handover's bounded queue, freed once the record is counted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct HandOver {
    pub record: RequestFinished,
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// An arrival the scheduler could not start.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RecordDropped(pub ArrivalDropped);

/// The generator's own measurements over a step; sent before its `FinishStep`.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RecordGenerator {
    pub step: u32,
    pub stats: GeneratorStats,
}

/// The server's metrics over a step (`--server-metrics`); sent before its `FinishStep`.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RecordServerMetrics {
    pub step: u32,
    pub window: crate::server_metrics::MetricsWindow,
    /// The step's slices (`--slice-duration`), by slice number.
    pub slices: Vec<(u64, crate::server_metrics::ServerMetrics)>,
}

/// A failed attempt that was retried (`--retries`): counted apart from requests.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RecordRetried {
    pub step: u32,
    pub outcome: crate::event::Outcome,
}

/// Live sinks' reports after their final flush: added to the results, which are rewritten.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), String>")]
pub struct RecordSinkReports(pub serde_json::Map<String, serde_json::Value>);

/// An arrival that waited for a free slot before it was sent.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RecordQueued(pub ArrivalQueued);

/// A step is about to start.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct StartStep(pub StepInfo, pub Nanos);

/// A step is over (all its requests recorded): aggregate, write, reply.
/// Replies `None` for a step that was never started; the warmup's result is
/// returned but not written.
#[derive(Message, Debug)]
#[rtype(result = "Option<StepResult>")]
pub struct FinishStep {
    pub step: u32,
    pub window: StepWindow,
    pub ended_early: Option<String>,
}

/// The run is over: final write with `status`. Replies with the results path,
/// or every I/O error that cost data.
#[derive(Message, Debug)]
#[rtype(result = "Result<PathBuf, String>")]
pub struct Flush {
    pub status: RunStatus,
}

/// See the module docs.
pub struct Recorder {
    counter: Arc<dyn TokenCounter>,
    results_path: PathBuf,
    doc: ResultsDocument,
    steps: BTreeMap<u32, StepAggregator>,
    requests_log: Option<RequestsLog>,
    /// First requests-log failure: lines after it may be missing.
    log_error: Option<String>,
    /// Events for a step that was not open (never started or already finished).
    unrouted: u64,
    /// Live sinks: every event goes on to their buffers once the Recorder has completed it.
    subscribers: Vec<LiveSink>,
    run_started: Arc<RunStarted>,
    /// Objectives every step's goodput is measured against (`--slo`).
    slo: Option<Slo>,
    /// `--batch-size` of an embeddings or rerank run.
    batch_size: Option<u64>,
    /// `--slice-duration` (ns), and each running step's slices (and their server metrics).
    slice_width: Option<Nanos>,
    slicers: BTreeMap<u32, Slicer>,
    slices_capped: bool,
    slice_server: SliceServerMetrics,
}

pub use crate::slices::MAX_SLICES;

impl Recorder {
    /// Creates the output folder, picks the results file name and writes the
    /// initial document there, so an unwritable destination fails before the run.
    pub fn new(cfg: RecorderConfig, counter: Arc<dyn TokenCounter>) -> io::Result<Recorder> {
        fs::create_dir_all(&cfg.output_dir)?;
        let unix_secs = u64::try_from(cfg.anchor_unix_nanos / 1_000_000_000).unwrap_or(u64::MAX);
        let results_path = free_results_path(&cfg.output_dir, &cfg.file_label, unix_secs);
        let run_started = Arc::new(RunStarted {
            run_id: cfg.run_id.clone(),
            anchor_unix_nanos: cfg.anchor_unix_nanos,
        });
        let mut doc = ResultsDocument::new(
            cfg.config_json,
            cfg.run_id,
            cfg.version,
            cfg.anchor_unix_nanos,
            SystemInfo::collect(),
        );
        doc.write_to(&results_path, SystemTime::now())?;
        let requests_log = if cfg.save_requests {
            Some(RequestsLog::create(requests_log_path(&results_path))?)
        } else {
            None
        };
        Ok(Recorder {
            counter,
            results_path,
            doc,
            steps: BTreeMap::new(),
            requests_log,
            log_error: None,
            unrouted: 0,
            subscribers: Vec::new(),
            run_started,
            slo: None,
            batch_size: None,
            slice_width: None,
            slicers: BTreeMap::new(),
            slices_capped: false,
            slice_server: SliceServerMetrics::default(),
        })
    }

    /// Measures every step's goodput against these objectives.
    pub fn set_slo(&mut self, slo: Option<Slo>) {
        self.slo = slo;
    }

    /// Embeddings and rerank: every step also counts inputs, `batch_size` per request.
    pub fn set_batch_size(&mut self, batch_size: Option<u64>) {
        self.batch_size = batch_size;
    }

    /// Summarize every measured step per slice of `width` too (`--slice-duration`).
    pub fn set_slice_duration(&mut self, width: Option<std::time::Duration>) {
        self.slice_width = width.map(|w| w.as_nanos().min(u128::from(u64::MAX)) as Nanos);
    }

    /// Slices complete now go into the document (bounded: see [`MAX_SLICES`]).
    fn keep_slices(&mut self, slices: Vec<SliceRecord>) {
        for mut s in slices {
            self.slice_server.attach(&mut s);
            if self.doc.slices.len() < MAX_SLICES {
                self.doc.slices.push(s);
            } else if !self.slices_capped {
                self.slices_capped = true;
                log::warn!(
                    "more than {MAX_SLICES} slices: later ones are left out of the results \
                     (a longer --slice-duration keeps them all)"
                );
            }
        }
    }

    /// Adds the live sinks; each first receives `Event::RunStarted`, then every event in order.
    pub fn subscribe(&mut self, sinks: &SinkSet) {
        self.subscribers.extend(sinks.iter().cloned());
    }

    /// Offers the event to every live sink's buffer. A full `Block` buffer suspends the Recorder
    /// (`ctx.wait`) until there is room, so no later event overtakes it.
    fn forward(&self, ctx: &mut Context<Self>, event: impl FnOnce() -> Event) {
        if self.subscribers.is_empty() {
            return;
        }
        let event = event();
        for s in &self.subscribers {
            if let Some(room) = s.offer(event.clone()) {
                ctx.wait(actix::fut::wrap_future(room));
            }
        }
    }

    /// Where the results are written; known before the run starts.
    pub fn results_path(&self) -> &Path {
        &self.results_path
    }

    /// Where the requests log is written, when `save_requests` is on.
    pub fn requests_log_path(&self) -> Option<&Path> {
        self.requests_log.as_ref().map(RequestsLog::path)
    }

    /// Starts the actor on `arbiter` (a sink arbiter, not a request arbiter).
    pub fn start_in_arbiter(self, arbiter: &ArbiterHandle) -> Addr<Recorder> {
        <Recorder as Actor>::start_in_arbiter(arbiter, move |_| self)
    }

    /// Counts a pending output (and a pending reasoning) with the client tokenizer, then drops
    /// the text. The answer's text comes apart from the reasoning's: output = both.
    fn complete_output_count(&self, r: &mut RequestFinished) {
        r.reasoning.complete(|text| self.counter.count(text));
        if let Some(text) = r.output_text.take() {
            r.output_tokens = self
                .counter
                .count(&text)
                .saturating_add(r.reasoning_tokens());
            r.output_tokens_source = TokenSource::Client;
        }
    }

    fn record_request(&mut self, ctx: &mut Context<Self>, mut r: RequestFinished) {
        if r.step == WARMUP_STEP {
            // Counting warmup output would only cost tokenizer time.
            r.output_text = None;
            r.reasoning.text = None;
            self.doc.warmup.requests += 1;
            if r.outcome.is_ok() {
                self.doc.warmup.successful += 1;
            }
        } else {
            self.complete_output_count(&mut r);
            self.log_request(&r);
        }
        match self.steps.get_mut(&r.step) {
            Some(agg) => agg.record(&r),
            None => self.unrouted(r.step, "request"),
        }
        if let Some(slicer) = self.slicers.get_mut(&r.step) {
            let done = slicer.record(&r);
            self.keep_slices(done);
        }
        self.forward(ctx, || Event::Request(Arc::new(r)));
    }

    fn log_request(&mut self, r: &RequestFinished) {
        let Some(log) = self.requests_log.as_mut() else {
            return;
        };
        if let Err(e) = log.append(r) {
            self.note_log_error(&e);
        }
    }

    fn flush_log(&mut self) {
        if let Some(Err(e)) = self.requests_log.as_mut().map(RequestsLog::flush) {
            self.note_log_error(&e);
        }
    }

    fn note_log_error(&mut self, e: &io::Error) {
        if self.log_error.is_none() {
            let path = self.requests_log_path().map(Path::display);
            let msg = format!(
                "requests log {}: {e}",
                path.map(|p| p.to_string()).unwrap_or_default()
            );
            log::error!("{msg}; later lines may be missing");
            self.log_error = Some(msg);
        }
    }

    fn unrouted(&mut self, step: u32, what: &str) {
        self.unrouted += 1;
        if self.unrouted == 1 {
            log::warn!("{what} for step {step}, which is not running: left out of the results");
        }
    }

    fn finish_step(&mut self, msg: FinishStep) -> Option<StepResult> {
        let Some(agg) = self.steps.remove(&msg.step) else {
            log::warn!("FinishStep for step {}, which was never started", msg.step);
            return None;
        };
        let result = agg.finish(msg.window, msg.ended_early);
        if let Some(mut slicer) = self.slicers.remove(&msg.step) {
            let rest = slicer.finish(msg.window.end);
            self.keep_slices(rest);
        }
        self.slice_server.forget(msg.step);
        if msg.step == WARMUP_STEP {
            // The warmup's figures go back to the coordinator (a warmup where every request
            // failed stops the run) but never into the results.
            self.flush_log();
            return Some(result);
        }
        self.doc.results.push(result.clone());
        // A failed write is logged; the next write (next step or Flush) retries
        // with everything, so only the final one decides the reply of Flush.
        if let Err(e) = self.write() {
            log::error!("writing {}: {e}", self.results_path.display());
        }
        self.flush_log();
        Some(result)
    }

    /// Closes steps that never got their `FinishStep` (e.g. an aborted run),
    /// over the window their own events span, so nothing recorded is lost.
    fn close_open_steps(&mut self, status: RunStatus) {
        for (step, agg) in std::mem::take(&mut self.steps) {
            let Some(window) = agg.observed_window() else {
                log::info!("step {step} was started but saw no event; left out of the results");
                continue;
            };
            log::warn!("step {step} was not finished before the flush; closing it");
            let reason = match status {
                RunStatus::Aborted => {
                    "aborted by a second signal: requests still in flight are not counted"
                }
                _ => "not finished when the run ended",
            }
            .to_string();
            self.doc.results.push(agg.finish(window, Some(reason)));
            if let Some(mut slicer) = self.slicers.remove(&step) {
                let rest = slicer.finish(window.end);
                self.keep_slices(rest);
            }
        }
    }

    fn flush(&mut self, status: RunStatus) -> Result<PathBuf, String> {
        self.close_open_steps(status);
        self.doc.status = status;
        self.flush_log();
        if self.unrouted > 0 {
            log::warn!(
                "{} events arrived for steps that were not running and are not in the results",
                self.unrouted
            );
        }
        let mut errors = Vec::new();
        if let Err(e) = self.write() {
            errors.push(format!("writing {}: {e}", self.results_path.display()));
        }
        errors.extend(self.log_error.clone());
        if errors.is_empty() {
            Ok(self.results_path.clone())
        } else {
            let msg = errors.join("; ");
            log::error!("{msg}");
            Err(msg)
        }
    }

    fn write(&mut self) -> io::Result<()> {
        self.doc.write_to(&self.results_path, SystemTime::now())
    }
}

/// `<dir>/<label>_<date>.json`, or `<label>_<date>-2.json`, … if a run
/// started in the same second already wrote there (never overwrite results).
fn free_results_path(dir: &Path, label: &str, unix_secs: u64) -> PathBuf {
    let base = dir.join(results_file_name(label, unix_secs));
    if !base.exists() {
        return base;
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    (2..)
        .map(|n| dir.join(format!("{stem}-{n}.json")))
        .find(|p| !p.exists())
        .unwrap_or(base)
}

impl Actor for Recorder {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let run = self.run_started.clone();
        self.forward(ctx, || Event::RunStarted(run));
    }
}

impl Handler<RecordRequest> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: RecordRequest, ctx: &mut Context<Self>) {
        self.record_request(ctx, msg.0);
    }
}

impl Handler<HandOver> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: HandOver, ctx: &mut Context<Self>) {
        self.record_request(ctx, msg.record);
        drop(msg.slot);
    }
}

/// A live-control change: into the document's `control` list, then to the live sinks.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RecordControl(pub crate::event::ControlEvent);

/// Control changes a document keeps: each is one manual action, so this is never reached by
/// people; a script hammering the endpoint cannot grow the document without bound.
pub const MAX_CONTROL_RECORDS: usize = 10_000;

impl Handler<RecordControl> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: RecordControl, ctx: &mut Context<Self>) {
        if self.doc.control.len() < MAX_CONTROL_RECORDS {
            self.doc.control.push((&msg.0).into());
        }
        if let Some(agg) = self.steps.get_mut(&msg.0.step) {
            agg.control(&msg.0); // a pause leaves the step's rates
        }
        self.forward(ctx, || Event::Control(msg.0));
    }
}

impl Handler<RecordDropped> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: RecordDropped, ctx: &mut Context<Self>) {
        let d = msg.0;
        if d.step != WARMUP_STEP {
            match self.steps.get_mut(&d.step) {
                Some(agg) => agg.dropped(&d),
                None => self.unrouted(d.step, "dropped arrival"),
            }
        }
        self.forward(ctx, || Event::Dropped(d));
    }
}

impl Handler<RecordGenerator> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: RecordGenerator, _: &mut Context<Self>) {
        if let Some(agg) = self.steps.get_mut(&msg.step) {
            agg.generator(msg.stats);
        }
    }
}

impl Handler<RecordServerMetrics> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: RecordServerMetrics, _: &mut Context<Self>) {
        if let Some(agg) = self.steps.get_mut(&msg.step) {
            agg.server_metrics(msg.window);
        }
        self.slice_server
            .add(msg.step, msg.slices, &mut self.doc.slices);
    }
}

impl Handler<RecordRetried> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: RecordRetried, _: &mut Context<Self>) {
        if let Some(agg) = self.steps.get_mut(&msg.step) {
            agg.retried(msg.outcome);
        }
    }
}

impl Handler<RecordSinkReports> for Recorder {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: RecordSinkReports, _: &mut Context<Self>) -> Result<(), String> {
        self.doc.sinks.extend(msg.0);
        self.write()
            .map_err(|e| format!("writing {}: {e}", self.results_path.display()))
    }
}

impl Handler<RecordQueued> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: RecordQueued, _: &mut Context<Self>) {
        if let Some(agg) = self.steps.get_mut(&msg.0.step) {
            agg.queued();
        }
    }
}

impl Handler<StartStep> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: StartStep, ctx: &mut Context<Self>) {
        let (info, start) = (msg.0, msg.1);
        if self.steps.contains_key(&info.index) {
            log::warn!(
                "step {} started twice; keeping what it recorded",
                info.index
            );
            return;
        }
        self.forward(ctx, || Event::StepStarted(Arc::new(info.clone())));
        if let (Some(width), true) = (self.slice_width, info.index != WARMUP_STEP) {
            let planned = (info.duration_secs * 1e9) as Nanos;
            self.slicers
                .insert(info.index, Slicer::new(info.index, start, width, planned));
        }
        self.steps.insert(
            info.index,
            StepAggregator::new(info)
                .with_slo(self.slo)
                .with_inputs(self.batch_size),
        );
    }
}

impl Handler<FinishStep> for Recorder {
    type Result = Option<StepResult>;

    fn handle(&mut self, msg: FinishStep, ctx: &mut Context<Self>) -> Option<StepResult> {
        let (step, window) = (msg.step, msg.window);
        let result = self.finish_step(msg);
        self.forward(ctx, || Event::StepFinished { step, window });
        result
    }
}

impl Handler<Flush> for Recorder {
    type Result = Result<PathBuf, String>;

    fn handle(&mut self, msg: Flush, _: &mut Context<Self>) -> Result<PathBuf, String> {
        self.flush(msg.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Outcome, StepKind};
    use crate::json::RESULTS_SCHEMA;

    const MS: u64 = 1_000_000;

    /// Counts whitespace-separated words: a stand-in tokenizer.
    struct Words;

    impl TokenCounter for Words {
        fn count(&self, text: &str) -> u64 {
            text.split_whitespace().count() as u64
        }
    }

    fn config(dir: &Path, save_requests: bool) -> RecorderConfig {
        RecorderConfig {
            output_dir: dir.join("out"),
            file_label: "org/tiny-model".into(),
            run_id: "run-1".into(),
            config_json: crate::json::example_config(
                serde_json::json!({"url": "http://127.0.0.1:1", "profile": null}),
            ),
            save_requests,
            anchor_unix_nanos: 1_714_566_896_000_000_000,
            version: "0.1.0".into(),
        }
    }

    fn step(index: u32, kind: StepKind) -> StepInfo {
        StepInfo {
            index,
            id: if kind == StepKind::Warmup {
                "warmup"
            } else {
                "throughput"
            }
            .into(),
            kind,
            max_vus: 2,
            rate: None,
            duration_secs: 1.0,
        }
    }

    fn request(id: &str, step: u32, at: u64) -> RequestFinished {
        RequestFinished {
            id: id.into(),
            step,
            scheduled_at: at,
            sent_at: at + MS,
            first_token_at: Some(at + 51 * MS),
            end_at: at + 101 * MS,
            chunk_offsets_us: vec![50_000, 70_000, 90_000],
            prompt_tokens: 10,
            requested_output_tokens: Some(3),
            output_tokens: 3,
            output_tokens_source: TokenSource::Server,
            server_prompt_tokens: Some(10),
            server_completion_tokens: Some(3),
            server_cached_tokens: None,
            outcome: Outcome::Ok,
            http_status: Some(200),
            error: None,
            finish_reason: Some("length".into()),
            response_model: Some("tiny".into()),
            output_text: None,
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: None,
        }
    }

    fn validate(doc: &serde_json::Value) {
        let schema: serde_json::Value = serde_json::from_str(RESULTS_SCHEMA).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
    }

    #[actix_rt::test]
    async fn records_a_step_and_writes_a_valid_file() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::new(config(dir.path(), true), Arc::new(Words)).unwrap();
        let path = recorder.results_path().to_path_buf();
        assert_eq!(
            path,
            dir.path()
                .join("out/org_tiny-model_2024-05-01-12-34-56.json")
        );
        assert!(path.exists(), "initial document written before the run");

        let arbiter = Arbiter::new();
        let addr = recorder.start_in_arbiter(&arbiter.handle());

        addr.send(StartStep(step(0, StepKind::Warmup), 0))
            .await
            .unwrap();
        addr.send(RecordRequest(request("w", 0, 0))).await.unwrap();
        let warmup = addr
            .send(FinishStep {
                step: 0,
                window: StepWindow {
                    start: 0,
                    send_end: 0,
                    end: 0,
                },
                ended_early: None,
            })
            .await
            .unwrap()
            .expect("the warmup's figures come back");
        assert_eq!((warmup.total_requests, warmup.step), (1, 0));

        addr.send(StartStep(step(1, StepKind::Throughput), 0))
            .await
            .unwrap();
        addr.send(RecordRequest(request("a", 1, 1_000 * MS)))
            .await
            .unwrap();
        let mut pending = request("b", 1, 1_100 * MS);
        pending.output_tokens = 0;
        pending.output_tokens_source = TokenSource::Server;
        pending.server_completion_tokens = None;
        pending.output_text = Some("one two three four five".into());
        // The reasoning apart from the answer: counted too, and part of the output.
        pending.reasoning.chunks = 2;
        pending.reasoning.pending("hmm let me see".into());
        addr.send(RecordRequest(pending)).await.unwrap();
        let mut failed = request("c", 1, 1_200 * MS);
        failed.outcome = Outcome::Http5xx;
        failed.http_status = Some(503);
        addr.send(RecordRequest(failed)).await.unwrap();

        let result = addr
            .send(FinishStep {
                step: 1,
                window: StepWindow {
                    start: 1_000 * MS,
                    send_end: 2_000 * MS,
                    end: 2_000 * MS,
                },
                ended_early: None,
            })
            .await
            .unwrap()
            .expect("a measured step has a result");
        assert_eq!(result.total_requests, 3);
        assert_eq!(result.successful_requests, 2);
        assert_eq!(
            result.total_tokens,
            3 + 5 + 4,
            "pending text (answer and reasoning) counted by the client"
        );
        assert_eq!(result.output_tokens.client_counted_requests, 1);
        assert_eq!(result.output_tokens.server_reported_requests, 1);
        assert!((result.time_to_first_token_ms.p50 - 50.0).abs() <= 0.05);
        assert_eq!(result.errors.get("http_5xx"), Some(&1));

        // The file already holds the step, before the final flush.
        let on_disk: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(on_disk["status"], "running");
        assert_eq!(on_disk["results"].as_array().unwrap().len(), 1);
        validate(&on_disk);

        let flushed = addr
            .send(Flush {
                status: RunStatus::Completed,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(flushed, path);
        let doc: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        validate(&doc);
        assert_eq!(doc["status"], "completed");
        assert_eq!(doc["warmup"]["requests"], 1);
        assert_eq!(doc["warmup"]["successful"], 1);
        assert_eq!(doc["run_id"], "run-1");
        assert_eq!(doc["results"][0]["total_tokens"], 12);
        assert_eq!(doc["results"][0]["reasoning_requests"], 1);
        assert_eq!(doc["results"][0]["no_answer_requests"], 1);

        let log = fs::read_to_string(
            dir.path()
                .join("out/org_tiny-model_2024-05-01-12-34-56.requests.jsonl"),
        )
        .unwrap();
        let ids: Vec<String> = log
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect();
        assert_eq!(ids, ["\"a\"", "\"b\"", "\"c\""], "warmup is not logged");
        assert!(log.contains("\"output_tokens\":9"), "{log}");
        assert!(log.contains(
            "\"reasoning_tokens\":4,\"reasoning_tokens_source\":\"client\",\"answer_tokens\":5"
        ));
        assert!(!log.contains("one two three"));
        assert!(!log.contains("let me see"));
        arbiter.stop();
    }

    #[actix_rt::test]
    async fn flush_closes_an_unfinished_step_and_keeps_its_requests() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::new(config(dir.path(), false), Arc::new(Words)).unwrap();
        assert!(recorder.requests_log_path().is_none());
        let addr = recorder.start();
        addr.send(StartStep(step(1, StepKind::Throughput), 0))
            .await
            .unwrap();
        addr.send(RecordRequest(request("a", 1, 10 * MS)))
            .await
            .unwrap();
        // An event for a step never started is not counted anywhere, but no panic.
        addr.send(RecordRequest(request("x", 9, 0))).await.unwrap();
        addr.send(RecordDropped(ArrivalDropped {
            step: 9,
            scheduled_at: 0,
        }))
        .await
        .unwrap();
        let path = addr
            .send(Flush {
                status: RunStatus::Interrupted,
            })
            .await
            .unwrap()
            .unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        validate(&doc);
        assert_eq!(doc["status"], "interrupted");
        let steps = doc["results"].as_array().unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0]["total_requests"], 1);
        assert_eq!(steps[0]["ended_early"], "not finished when the run ended");
        assert_eq!(steps[0]["duration_ms"], 101);
    }

    #[test]
    fn same_second_runs_do_not_overwrite_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let first = Recorder::new(config(dir.path(), false), Arc::new(Words)).unwrap();
        let second = Recorder::new(config(dir.path(), false), Arc::new(Words)).unwrap();
        assert_ne!(first.results_path(), second.results_path());
        assert!(second
            .results_path()
            .to_string_lossy()
            .ends_with("_2024-05-01-12-34-56-2.json"));
    }

    #[test]
    fn unwritable_destination_fails_early() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        fs::write(&file, b"x").unwrap();
        let mut cfg = config(dir.path(), false);
        cfg.output_dir = file.join("sub");
        assert!(Recorder::new(cfg, Arc::new(Words)).is_err());
    }

    /// Collects what a live sink receives.
    struct Collector(std::sync::Arc<parking_lot::Mutex<Vec<String>>>);

    impl crate::live::Sink for Collector {
        const NAME: &'static str = "collector";

        fn on_event(&mut self, event: &Event, _: &mut crate::live::SinkContext<Self>) {
            let name = match event {
                Event::RunStarted(r) => format!("run {}", r.run_id),
                Event::StepStarted(s) => format!("start {}", s.index),
                Event::Request(r) => format!("request {} {}", r.id, r.output_tokens),
                Event::Dropped(d) => format!("dropped {}", d.step),
                Event::StepFinished { step, .. } => format!("finish {step}"),
                Event::Control(c) => format!("control {c}"),
            };
            self.0.lock().push(name);
        }

        fn flush(
            &mut self,
            _: RunStatus,
            _: &mut crate::live::SinkContext<Self>,
        ) -> crate::live::FlushFuture<Self> {
            crate::live::flushed(Ok(()))
        }
    }

    #[actix_rt::test]
    async fn live_sinks_receive_completed_events_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut recorder = Recorder::new(config(dir.path(), false), Arc::new(Words)).unwrap();
        let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let mut registry = crate::live::SinkRegistry::new();
        let s = seen.clone();
        registry.start(crate::live::BufferConfig::block(), move || Collector(s));
        let (live, threads) = registry.into_parts();
        recorder.subscribe(&live);
        let arbiter = Arbiter::new();
        let addr = recorder.start_in_arbiter(&arbiter.handle());
        addr.send(StartStep(step(1, StepKind::Rate), 0))
            .await
            .unwrap();
        let mut pending = request("a", 1, 0);
        pending.output_text = Some("three words here".into());
        addr.send(RecordRequest(pending)).await.unwrap();
        addr.send(RecordDropped(ArrivalDropped {
            step: 1,
            scheduled_at: 5,
        }))
        .await
        .unwrap();
        let window = StepWindow {
            start: 0,
            send_end: 10,
            end: 20,
        };
        addr.send(FinishStep {
            step: 1,
            window,
            ended_early: None,
        })
        .await
        .unwrap();
        // The flush comes through the sink's buffer after every event it was given.
        let reports = live.flush_all(RunStatus::Completed).await;
        assert_eq!(reports["collector"]["events_delivered"], 5);
        assert_eq!(reports["collector"]["dropped_events"], 0);
        assert_eq!(
            *seen.lock(),
            vec![
                "run run-1",
                "start 1",
                "request a 3",
                "dropped 1",
                "finish 1"
            ],
            "the output count is completed before the event goes on"
        );
        arbiter.stop();
        threads.stop();
    }
}
