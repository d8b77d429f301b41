//! The sink contract as a test every live sink's tests call: [`check_sink_contract`].

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::{
    ArrivalDropped, ControlAction, ControlEvent, Event, Outcome, RequestFinished, RunStarted,
    StepInfo, StepKind, StepWindow, TokenSource,
};
use crate::json::report::RunStatus;
use crate::live::{BufferConfig, Sink, SinkRegistry};

/// The longest an `on_event` may take: it must not wait on anything.
pub const ON_EVENT_BOUND: Duration = Duration::from_millis(20);
/// Requests in the run the helper feeds.
pub const REQUESTS: usize = 200;

/// What the sink answered, for the caller's own checks.
#[derive(Debug)]
pub struct ContractOutcome {
    pub flush: Result<(), String>,
    pub report: serde_json::Map<String, serde_json::Value>,
}

/// Runs a sink through a whole run and checks the contract; panics naming the broken rule.
///
/// Call it inside an actix System (`#[actix_rt::test]`). The sink gets an arbiter and a
/// `DropNewest` buffer of its own, big enough that a sink that keeps up drops nothing. Checked:
/// the events are offered without ever waiting; every one reaches `on_event` (in order: the
/// flush, which travels behind them, finds them all delivered); no `on_event` takes longer than
/// [`ON_EVENT_BOUND`]; the flush answers; the report is an object of scalars that carries what
/// the buffer counted.
pub async fn check_sink_contract<S: Sink>(
    make: impl FnOnce() -> S + Send + 'static,
) -> ContractOutcome {
    let mut registry = SinkRegistry::new();
    let sink = registry.start(BufferConfig::drop_newest(), make);
    let (set, threads) = registry.into_parts();
    let events = sample_run();
    let n = events.len() as u64;
    let t = Instant::now();
    for e in events {
        assert!(
            sink.offer(e).is_none(),
            "{}: a DropNewest buffer never makes the Recorder wait",
            S::NAME
        );
    }
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{}: offering {n} events took {:?}",
        S::NAME,
        t.elapsed()
    );
    let reply = sink.flush(RunStatus::Completed).await;
    let stats = sink.stats();
    assert_eq!(
        stats.dropped.load(Relaxed),
        0,
        "{}: events dropped",
        S::NAME
    );
    assert_eq!(
        stats.delivered.load(Relaxed),
        n,
        "{}: the flush answered before every event reached on_event",
        S::NAME
    );
    let slowest = Duration::from_micros(stats.slowest_event_us.load(Relaxed));
    assert!(
        slowest <= ON_EVENT_BOUND,
        "{}: on_event blocked for {slowest:?}",
        S::NAME
    );
    check_report_shape(S::NAME, &reply.report);
    assert_eq!(set.iter().count(), 1);
    drop(set);
    threads.stop();
    ContractOutcome {
        flush: reply.result,
        report: reply.report,
    }
}

/// `sinks.<name>`: flat (nothing in a results entry may be a list), with the buffer's counts.
pub fn check_report_shape(name: &str, report: &serde_json::Map<String, serde_json::Value>) {
    for (k, v) in report {
        assert!(
            !(v.is_array() || v.is_object()),
            "{name}: report field {k} is not a scalar: {v}"
        );
    }
    for k in ["dropped_events", "buffer_policy", "buffer_capacity"] {
        assert!(report.contains_key(k), "{name}: report without {k}");
    }
}

/// A small run as the Recorder forwards it: identity, a warmup and a measured step, requests of
/// every outcome, a dropped arrival, the steps' ends.
pub fn sample_run() -> Vec<Event> {
    const MS: u64 = 1_000_000;
    let mut events = vec![Event::RunStarted(Arc::new(RunStarted {
        run_id: "contract".into(),
        anchor_unix_nanos: 1_700_000_000_000_000_000,
    }))];
    for (step, kind) in [(0, StepKind::Warmup), (1, StepKind::Rate)] {
        events.push(Event::StepStarted(Arc::new(StepInfo {
            index: step,
            id: format!("step-{step}"),
            kind,
            max_vus: 8,
            rate: (kind == StepKind::Rate).then_some(10.0),
            duration_secs: 1.0,
        })));
        let start = u64::from(step) * 2_000 * MS;
        let count = if step == 0 { 5 } else { REQUESTS };
        for i in 0..count {
            let outcome = Outcome::ALL[i % Outcome::ALL.len()];
            events.push(Event::Request(Arc::new(request(step, i, start, outcome))));
        }
        events.push(Event::Dropped(ArrivalDropped {
            step,
            scheduled_at: start + 5 * MS,
        }));
        // Live control in the measured step: a pause, the resume, a new rate.
        if step == 1 {
            for (k, (action, value)) in [
                (ControlAction::Pause, None),
                (ControlAction::Resume, None),
                (ControlAction::SetRate, Some(12.5)),
            ]
            .into_iter()
            .enumerate()
            {
                events.push(Event::Control(ControlEvent {
                    at: start + (300 + 100 * k as u64) * MS,
                    step,
                    action,
                    value,
                    source: "http".into(),
                }));
            }
        }
        events.push(Event::StepFinished {
            step,
            window: StepWindow {
                start,
                send_end: start + 1_000 * MS,
                end: start + 1_200 * MS,
            },
        });
    }
    events
}

fn request(step: u32, i: usize, start: u64, outcome: Outcome) -> RequestFinished {
    const MS: u64 = 1_000_000;
    let at = start + i as u64 * 5 * MS;
    let ok = outcome.is_ok();
    RequestFinished {
        id: format!("contract-{step}-{i}"),
        step,
        scheduled_at: at,
        sent_at: at + MS,
        first_token_at: ok.then_some(at + 20 * MS),
        end_at: at + 60 * MS,
        chunk_offsets_us: if ok {
            vec![19_000, 29_000, 39_000]
        } else {
            vec![]
        },
        prompt_tokens: 50,
        requested_output_tokens: Some(3),
        output_tokens: if ok { 3 } else { 0 },
        output_tokens_source: TokenSource::Server,
        server_prompt_tokens: Some(50),
        server_completion_tokens: ok.then_some(3),
        server_cached_tokens: None,
        outcome,
        http_status: Some(if ok { 200 } else { 503 }),
        error: (!ok).then(|| "simulated".to_string()),
        finish_reason: ok.then(|| "length".to_string()),
        response_model: Some("m".into()),
        output_text: None,
        reasoning: Default::default(),
        images_tools: Default::default(),
        trace: None,
    }
}
