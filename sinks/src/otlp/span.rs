//! Finished spans from the events (pure): one per request (kind CLIENT, OpenTelemetry GenAI
//! names), one per step and one for the run.
//!
//! Trace shape: the run span is the root of a trace of its own and every step span is its
//! child; each request span is the root of its own trace (the trace its `traceparent` started,
//! which the server's spans continue) and links to its step's span. A viewer lists a step's
//! requests through the links without one giant trace holding the whole run.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use crate::event::{
    ControlEvent, Nanos, Outcome, RequestFinished, StepInfo, StepWindow, TraceContext,
};
use crate::otlp::config::{OtlpConfig, SCOPE_NAME};

/// Our attributes' namespace.
pub const NS: &str = "inference_benchmarker.";
/// The GenAI provider: the API we speak (OpenAI-compatible), whatever engine serves it.
pub const PROVIDER: &str = "openai";
/// Longest error description kept in a span status.
const MAX_ERROR_LEN: usize = 512;

/// Wall-clock time of a run-clock stamp.
pub fn wall(anchor_unix_nanos: u128, at: Nanos) -> SystemTime {
    let ns = anchor_unix_nanos.saturating_add(u128::from(at));
    let secs = u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX);
    SystemTime::UNIX_EPOCH + Duration::new(secs, (ns % 1_000_000_000) as u32)
}

/// A span context of ours (always sampled: only sampled spans are built).
pub fn span_context(trace_id: [u8; 16], span_id: [u8; 8]) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(trace_id),
        SpanId::from_bytes(span_id),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

fn ns_key(name: &str) -> String {
    format!("{NS}{name}")
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `error.type`: the HTTP status for HTTP failures (the semantic conventions' choice), else our
/// outcome class.
pub fn error_type(req: &RequestFinished) -> Option<String> {
    match req.outcome {
        Outcome::Ok => None,
        Outcome::RateLimited | Outcome::Http4xx | Outcome::Http5xx => Some(
            req.http_status
                .map(|s| s.to_string())
                .unwrap_or_else(|| req.outcome.as_str().to_string()),
        ),
        other => Some(other.as_str().to_string()),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The request's attributes, in the GenAI vocabulary plus ours. Never prompt or output text.
pub fn request_attributes(cfg: &OtlpConfig, req: &RequestFinished) -> Vec<KeyValue> {
    let mut a = vec![
        KeyValue::new("gen_ai.operation.name", cfg.operation.clone()),
        KeyValue::new("gen_ai.provider.name", PROVIDER),
        KeyValue::new("gen_ai.request.model", cfg.model.clone()),
        KeyValue::new("server.address", cfg.server_address.clone()),
        KeyValue::new(
            "gen_ai.usage.input_tokens",
            i64_of(req.server_prompt_tokens.unwrap_or(req.prompt_tokens)),
        ),
        KeyValue::new("gen_ai.usage.output_tokens", i64_of(req.output_tokens)),
        KeyValue::new(ns_key("run_id"), cfg.run_id.clone()),
        KeyValue::new(ns_key("step"), i64::from(req.step)),
        KeyValue::new(ns_key("request_id"), req.id.clone()),
        KeyValue::new(ns_key("outcome"), req.outcome.as_str()),
        KeyValue::new(ns_key("scheduled_at_ms"), ms(req.scheduled_at)),
        KeyValue::new(ns_key("queue_delay_ms"), ms(req.queue_delay_ns())),
        KeyValue::new(ns_key("prompt_tokens"), i64_of(req.prompt_tokens)),
    ];
    if let Some(port) = cfg.server_port {
        a.push(KeyValue::new("server.port", i64::from(port)));
    }
    if let Some(model) = &req.response_model {
        a.push(KeyValue::new("gen_ai.response.model", model.clone()));
    }
    if let Some(max) = req.requested_output_tokens {
        a.push(KeyValue::new("gen_ai.request.max_tokens", i64_of(max)));
    }
    if let Some(reason) = &req.finish_reason {
        a.push(KeyValue::new(
            "gen_ai.response.finish_reasons",
            Value::Array(Array::String(vec![StringValue::from(reason.clone())])),
        ));
    }
    if let Some(status) = req.http_status {
        a.push(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
    }
    if let Some(kind) = error_type(req) {
        a.push(KeyValue::new("error.type", kind));
    }
    if let Some(ttft) = req.ttft_ns() {
        a.push(KeyValue::new(ns_key("ttft_ms"), ms(ttft)));
    }
    if let Some(itl) = req.itl_ns() {
        a.push(KeyValue::new(ns_key("itl_ms"), ms(itl)));
    }
    if let Some(cached) = req.server_cached_tokens {
        a.push(KeyValue::new(ns_key("cached_tokens"), i64_of(cached)));
    }
    workload_attributes(req, &mut a);
    a
}

/// What a reasoning, tool-calling or image request adds (only when it did).
fn workload_attributes(req: &RequestFinished, a: &mut Vec<KeyValue>) {
    if req.reasoned() {
        a.push(KeyValue::new(
            ns_key("reasoning_tokens"),
            i64_of(req.reasoning_tokens()),
        ));
        if let Some(ttfa) = req.ttfa_ns() {
            a.push(KeyValue::new(ns_key("ttfa_ms"), ms(ttfa)));
        }
        if req.no_answer() {
            a.push(KeyValue::new(ns_key("no_answer"), true));
        }
    }
    let f = &req.images_tools;
    if f.tool_calls > 0 {
        a.push(KeyValue::new(ns_key("tool_calls"), i64::from(f.tool_calls)));
    }
    if let Some(ttftc) = req.time_to_first_tool_call_ns() {
        a.push(KeyValue::new(
            ns_key("time_to_first_tool_call_ms"),
            ms(ttftc),
        ));
    }
    if f.image_count > 0 {
        a.push(KeyValue::new(
            ns_key("image_count"),
            i64::from(f.image_count),
        ));
        a.push(KeyValue::new(ns_key("image_bytes"), i64_of(f.image_bytes)));
    }
}

// Both are non-exhaustive: filled through their public fields.
fn span_events(events: Vec<Event>) -> SpanEvents {
    let mut e = SpanEvents::default();
    e.events = events;
    e
}

fn span_links(links: Vec<Link>) -> SpanLinks {
    let mut l = SpanLinks::default();
    l.links = links;
    l
}

/// The request's span, when it carries a sampled trace context.
pub fn request_span(
    cfg: &OtlpConfig,
    anchor_unix_nanos: u128,
    req: &RequestFinished,
    step: Option<SpanContext>,
) -> Option<SpanData> {
    let TraceContext {
        trace_id,
        span_id,
        sampled: true,
    } = req.trace?
    else {
        return None;
    };
    let at = |ns: Nanos| wall(anchor_unix_nanos, ns);
    let mut events = Vec::new();
    if let Some(first) = req.first_token_at {
        events.push(Event::new("gen_ai.first_token", at(first), Vec::new(), 0));
    }
    if cfg.token_events {
        for (i, off) in req.chunk_offsets_us.iter().enumerate() {
            let t = req.sent_at.saturating_add(u64::from(*off) * 1000);
            events.push(Event::new(
                "gen_ai.chunk",
                at(t),
                vec![KeyValue::new("index", i64_of(i as u64))],
                0,
            ));
        }
    }
    let status = match &req.outcome {
        Outcome::Ok => Status::Unset,
        o => Status::Error {
            description: Cow::Owned(truncate(
                req.error.as_deref().unwrap_or(o.as_str()),
                MAX_ERROR_LEN,
            )),
        },
    };
    Some(SpanData {
        span_context: span_context(trace_id, span_id),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Client,
        name: Cow::Owned(format!("{} {}", cfg.operation, cfg.model)),
        start_time: at(req.sent_at),
        end_time: at(req.end_at.max(req.sent_at)),
        attributes: request_attributes(cfg, req),
        dropped_attributes_count: 0,
        events: span_events(events),
        links: span_links(
            step.map(|s| vec![Link::with_context(s)])
                .unwrap_or_default(),
        ),
        status,
        instrumentation_scope: scope(),
    })
}

/// One step's span, a child of the run span.
pub fn step_span(
    cfg: &OtlpConfig,
    anchor_unix_nanos: u128,
    run: &SpanContext,
    own: &SpanContext,
    (step, control): (&StepInfo, &[ControlEvent]),
    window: StepWindow,
) -> SpanData {
    let mut attributes = vec![
        KeyValue::new(ns_key("run_id"), cfg.run_id.clone()),
        KeyValue::new(ns_key("step"), i64::from(step.index)),
        KeyValue::new(ns_key("step_id"), step.id.clone()),
        KeyValue::new(ns_key("step_kind"), step.kind.as_str()),
        KeyValue::new(ns_key("max_vus"), i64_of(step.max_vus)),
        KeyValue::new(ns_key("duration_s"), step.duration_secs),
        KeyValue::new("gen_ai.request.model", cfg.model.clone()),
    ];
    if let Some(rate) = step.rate {
        attributes.push(KeyValue::new(ns_key("rate"), rate));
    }
    SpanData {
        span_context: own.clone(),
        parent_span_id: run.span_id(),
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Owned(format!("step {}", step.id)),
        start_time: wall(anchor_unix_nanos, window.start),
        end_time: wall(anchor_unix_nanos, window.end.max(window.start)),
        attributes,
        dropped_attributes_count: 0,
        events: span_events(control_events(anchor_unix_nanos, control)),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope(),
    }
}

/// Live-control changes made during a step, as events of its span (name `control`), so a trace
/// viewer shows a manual change where it happened.
fn control_events(anchor_unix_nanos: u128, control: &[ControlEvent]) -> Vec<Event> {
    control
        .iter()
        .map(|c| {
            let mut attributes = vec![
                KeyValue::new(ns_key("control.action"), c.action.as_str()),
                KeyValue::new(ns_key("control.source"), c.source.clone()),
            ];
            if let Some(v) = c.value {
                attributes.push(KeyValue::new(ns_key("control.value"), v));
            }
            Event::new("control", wall(anchor_unix_nanos, c.at), attributes, 0)
        })
        .collect()
}

/// The run's span: the root of the run's trace.
pub fn run_span(
    cfg: &OtlpConfig,
    anchor_unix_nanos: u128,
    own: &SpanContext,
    end: Nanos,
) -> SpanData {
    SpanData {
        span_context: own.clone(),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Internal,
        name: Cow::Owned(format!("benchmark {}", cfg.model)),
        start_time: wall(anchor_unix_nanos, 0),
        end_time: wall(anchor_unix_nanos, end),
        attributes: vec![
            KeyValue::new(ns_key("run_id"), cfg.run_id.clone()),
            KeyValue::new("gen_ai.request.model", cfg.model.clone()),
            KeyValue::new("server.address", cfg.server_address.clone()),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{StepKind, TokenSource};

    fn cfg() -> OtlpConfig {
        OtlpConfig::new("run-1", "tiny", "chat", "http://127.0.0.1:8000/v1")
    }

    pub(crate) fn request(outcome: Outcome, sampled: bool) -> RequestFinished {
        RequestFinished {
            id: "req-7".into(),
            step: 1,
            scheduled_at: 1_000_000,
            sent_at: 3_000_000,
            first_token_at: Some(13_000_000),
            end_at: 53_000_000,
            chunk_offsets_us: vec![10_000, 20_000, 50_000],
            prompt_tokens: 100,
            requested_output_tokens: Some(3),
            output_tokens: 3,
            output_tokens_source: TokenSource::Server,
            server_prompt_tokens: Some(101),
            server_completion_tokens: Some(3),
            server_cached_tokens: None,
            outcome,
            http_status: Some(if outcome.is_ok() { 200 } else { 503 }),
            error: (!outcome.is_ok()).then(|| "overloaded".into()),
            finish_reason: outcome.is_ok().then(|| "length".into()),
            response_model: Some("tiny-v2".into()),
            output_text: Some("secret answer".into()),
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: Some(TraceContext {
                trace_id: [7; 16],
                span_id: [9; 8],
                sampled,
            }),
        }
    }

    fn attr<'a>(s: &'a SpanData, key: &str) -> Option<&'a Value> {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn wall_clock_from_the_anchor() {
        let t = wall(1_700_000_000_123_456_789, 1_000_000_001);
        let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(d.as_nanos(), 1_700_000_001_123_456_790);
    }

    #[test]
    fn an_ok_request_becomes_a_client_span_with_genai_attributes() {
        let anchor = 1_000_000_000_000_000_000u128;
        let step = span_context([1; 16], [2; 8]);
        let s = request_span(
            &cfg(),
            anchor,
            &request(Outcome::Ok, true),
            Some(step.clone()),
        )
        .unwrap();
        assert_eq!(s.name, "chat tiny");
        assert_eq!(s.span_kind, SpanKind::Client);
        assert_eq!(s.span_context.trace_id(), TraceId::from_bytes([7; 16]));
        assert_eq!(s.span_context.span_id(), SpanId::from_bytes([9; 8]));
        assert_eq!(s.parent_span_id, SpanId::INVALID);
        assert_eq!(s.start_time, wall(anchor, 3_000_000));
        assert_eq!(s.end_time, wall(anchor, 53_000_000));
        assert_eq!(s.status, Status::Unset);
        assert_eq!(s.links.links.len(), 1);
        assert_eq!(s.links.links[0].span_context, step);
        assert_eq!(s.events.events.len(), 1);
        assert_eq!(s.events.events[0].name, "gen_ai.first_token");
        assert_eq!(s.events.events[0].timestamp, wall(anchor, 13_000_000));
        let expect: [(&str, Value); 15] = [
            ("gen_ai.operation.name", "chat".into()),
            ("gen_ai.provider.name", "openai".into()),
            ("gen_ai.request.model", "tiny".into()),
            ("gen_ai.response.model", "tiny-v2".into()),
            ("gen_ai.request.max_tokens", 3i64.into()),
            ("gen_ai.usage.input_tokens", 101i64.into()),
            ("gen_ai.usage.output_tokens", 3i64.into()),
            ("server.address", "127.0.0.1".into()),
            ("server.port", 8000i64.into()),
            ("http.response.status_code", 200i64.into()),
            ("inference_benchmarker.run_id", "run-1".into()),
            ("inference_benchmarker.step", 1i64.into()),
            ("inference_benchmarker.queue_delay_ms", 2.0.into()),
            ("inference_benchmarker.ttft_ms", 10.0.into()),
            ("inference_benchmarker.itl_ms", 20.0.into()),
        ];
        for (k, v) in expect {
            assert_eq!(attr(&s, k), Some(&v), "{k}");
        }
        assert_eq!(
            attr(&s, "gen_ai.response.finish_reasons"),
            Some(&Value::Array(Array::String(vec!["length".into()])))
        );
        assert_eq!(
            attr(&s, "inference_benchmarker.scheduled_at_ms"),
            Some(&1.0.into())
        );
        assert!(attr(&s, "error.type").is_none());
        // No text ever.
        for kv in &s.attributes {
            assert!(!kv.value.as_str().contains("secret"), "{kv:?}");
        }
    }

    #[test]
    fn reasoning_tool_calls_and_images_are_attributes_only_when_present() {
        let plain = request_span(&cfg(), 0, &request(Outcome::Ok, true), None).unwrap();
        for key in [
            "reasoning_tokens",
            "ttfa_ms",
            "no_answer",
            "tool_calls",
            "image_count",
        ] {
            assert!(attr(&plain, &ns_key(key)).is_none(), "{key}");
        }
        let mut r = request(Outcome::Ok, true);
        r.reasoning.chunks = 2;
        r.reasoning.tokens = Some(2);
        r.reasoning.first_answer_at = Some(33_000_000);
        r.images_tools.tool_calls = 1;
        r.images_tools.first_tool_call_at = Some(33_000_000);
        r.images_tools.image_count = 2;
        r.images_tools.image_bytes = 900;
        let s = request_span(&cfg(), 0, &r, None).unwrap();
        let expect: [(&str, Value); 6] = [
            ("reasoning_tokens", 2i64.into()),
            ("ttfa_ms", 30.0.into()),
            ("tool_calls", 1i64.into()),
            ("time_to_first_tool_call_ms", 30.0.into()),
            ("image_count", 2i64.into()),
            ("image_bytes", 900i64.into()),
        ];
        for (k, v) in expect {
            assert_eq!(attr(&s, &ns_key(k)), Some(&v), "{k}");
        }
        assert!(attr(&s, &ns_key("no_answer")).is_none());
        r.reasoning.first_answer_at = None;
        let s = request_span(&cfg(), 0, &r, None).unwrap();
        assert_eq!(attr(&s, &ns_key("no_answer")), Some(&true.into()));
    }

    #[test]
    fn a_failed_request_has_error_status_and_type() {
        let s = request_span(&cfg(), 0, &request(Outcome::Http5xx, true), None).unwrap();
        assert_eq!(
            s.status,
            Status::Error {
                description: "overloaded".into()
            }
        );
        assert_eq!(attr(&s, "error.type"), Some(&"503".into()));
        assert!(s.links.links.is_empty());
        let mut r = request(Outcome::StreamBroken, true);
        r.http_status = Some(200);
        let s = request_span(&cfg(), 0, &r, None).unwrap();
        assert_eq!(attr(&s, "error.type"), Some(&"stream_broken".into()));
    }

    #[test]
    fn unsampled_or_untraced_requests_make_no_span() {
        assert!(request_span(&cfg(), 0, &request(Outcome::Ok, false), None).is_none());
        let mut r = request(Outcome::Ok, true);
        r.trace = None;
        assert!(request_span(&cfg(), 0, &r, None).is_none());
    }

    #[test]
    fn token_events_when_asked() {
        let mut c = cfg();
        c.token_events = true;
        let s = request_span(&c, 0, &request(Outcome::Ok, true), None).unwrap();
        let names: Vec<_> = s.events.events.iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "gen_ai.first_token",
                "gen_ai.chunk",
                "gen_ai.chunk",
                "gen_ai.chunk"
            ]
        );
        assert_eq!(s.events.events[3].timestamp, wall(0, 53_000_000));
    }

    #[test]
    fn step_spans_are_children_of_the_run_span() {
        let run = span_context([3; 16], [4; 8]);
        let own = span_context([3; 16], [5; 8]);
        let info = StepInfo {
            index: 2,
            id: "constant@2.00req/s".into(),
            kind: StepKind::Rate,
            max_vus: 10,
            rate: Some(2.0),
            duration_secs: 5.0,
        };
        let w = StepWindow {
            start: 10,
            send_end: 20,
            end: 30,
        };
        let pause = ControlEvent {
            at: 15,
            step: info.index,
            action: crate::event::ControlAction::Pause,
            value: None,
            source: "console".into(),
        };
        let s = step_span(&cfg(), 0, &run, &own, (&info, &[pause]), w);
        let events = &s.events.events;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].name, "control");
        assert!(events[0].attributes.iter().any(|kv| kv.key.as_str()
            == "inference_benchmarker.control.action"
            && kv.value.as_str() == "pause"));
        assert_eq!(s.parent_span_id, run.span_id());
        assert_eq!(s.span_context.trace_id(), run.trace_id());
        assert_eq!(s.name, "step constant@2.00req/s");
        assert_eq!(attr(&s, "inference_benchmarker.rate"), Some(&2.0.into()));
        let r = run_span(&cfg(), 0, &run, 40);
        assert_eq!(r.parent_span_id, SpanId::INVALID);
        assert_eq!(r.end_time, wall(0, 40));
    }
}
