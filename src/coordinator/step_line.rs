//! The plain progress lines printed when a step ends (`-n`, or no terminal): what was sent,
//! what failed, what was never sent, and why the step ended early (pure).

use sinks::json::StepResult;
use sinks::Summary;

use crate::coordinator::plan::StepPlan;
use crate::runtime::text::count;

/// What a step is about to do, for its `step N starts: …` line.
pub fn starting(step: &StepPlan) -> String {
    let d = humantime::format_duration(step.duration);
    match step.rate {
        Some(r) => format!(
            "{} at {} req/s (max {} in flight) for {d}",
            step.id(),
            sinks::event::rate_digits(r),
            step.vus
        ),
        None => format!(
            "{} with {} for {d}",
            step.id(),
            count(step.vus, "user", "users")
        ),
    }
}

/// The step's account in one line, and its notes (early end, generator-bound) below it.
pub fn lines(r: &StepResult) -> Vec<String> {
    let arrivals = match r.dropped_arrivals {
        0 => String::new(),
        d => format!(
            "{} arrivals, {d} dropped (in-flight cap full), ",
            r.total_requests + d
        ),
    };
    let mut out = vec![format!(
        "  {}: {arrivals}{} requests ({} ok, {} failed), {:.2} req/s, {}",
        r.id,
        r.total_requests,
        r.successful_requests,
        r.failed_requests,
        r.request_rate,
        figures(r),
    )];
    if let Some(why) = &r.ended_early {
        out.push(format!("    ended early: {why}"));
    }
    out.extend(no_answer_warning(r));
    if r.paused_ms > 0 {
        out.push(format!(
            "    paused {:.1} s by live control: its rates are over the time it was not",
            r.paused_ms as f64 / 1e3
        ));
    }
    if let Some(g) = r.generator.as_ref().filter(|g| g.bound) {
        out.push(format!(
            "    GENERATOR-BOUND: the benchmarker limited this step ({})",
            g.reasons.as_deref().unwrap_or_default()
        ));
    }
    out
}

/// Above this share of its successful requests without an answer, a step's line warns.
pub const NO_ANSWER_WARNING_SHARE: f64 = 0.05;

/// A reasoning model that used `max_tokens` up before answering: a success on the wire that
/// measured no answer, so the step's figures are not what its users would see.
fn no_answer_warning(r: &StepResult) -> Option<String> {
    let share = crate::offline::thresholds::no_answer_rate(r);
    (share > NO_ANSWER_WARNING_SHARE).then(|| {
        format!(
            "    WARNING: {} of {} successful requests ({:.1} %) reasoned until max_tokens and \
             never answered: raise max_tokens (--decode-options num_tokens=…)",
            r.reasoning.no_answer_requests,
            r.successful_requests,
            share * 100.0
        )
    })
}

/// Throughput and latencies: of tokens for generation, of inputs for embeddings and rerank
/// (which have no tokens out, no first token and no ITL).
fn figures(r: &StepResult) -> String {
    if let Some(inputs) = &r.inputs {
        return format!(
            "{:.1} inputs/s ({:.1} input tokens/s), latency p50 {}",
            inputs.inputs_per_second,
            inputs.input_tokens_per_second,
            p50(&r.e2e_latency_ms, 1)
        );
    }
    // Requests count in the steady window when they end in it, tokens when they arrive: requests
    // longer than the window stream tokens in it without ending there.
    let steady = r.steady_state.map_or_else(String::new, |s| {
        if s.request_rate > 0.0 {
            format!(
                " (steady {:.2} req/s, {:.1} tokens/s)",
                s.request_rate, s.token_throughput_secs
            )
        } else if s.token_throughput_secs > 0.0 {
            format!(
                " (steady: no request ended in the steady window, {:.1} tokens/s arrived in it)",
                s.token_throughput_secs
            )
        } else {
            " (steady: no request ended in the steady window)".into()
        }
    });
    // A reasoning model's users wait for the answer: its first token's time beside the TTFT.
    let ttfa = match r.reasoning.reasoning_requests {
        0 => String::new(),
        _ => format!(
            ", TTFA p50 {}",
            p50(&r.reasoning.time_to_first_answer_token_ms, 1)
        ),
    };
    // Several tokens in first chunks: the per-token ITL beside the original's (vLLM's TPOT).
    let (tpot, per_token) = (&r.inter_token_latency_ms, &r.reasoning.per_token_itl_ms);
    let per_token = crate::offline::table::per_token_differs(
        tpot.known(tpot.p50),
        per_token.known(per_token.p50),
    )
    .map_or_else(String::new, |v| format!(", per-token ITL p50 {v:.2} ms"));
    format!(
        "{:.1} tokens/s{steady}, TTFT p50 {}{ttfa}, ITL p50 {}{per_token}",
        r.token_throughput_secs,
        p50(&r.time_to_first_token_ms, 1),
        p50(&r.inter_token_latency_ms, 2),
    )
}

fn p50(s: &Summary, digits: usize) -> String {
    s.known(s.p50).map_or_else(
        || crate::offline::table::MISSING.into(),
        |v| format!("{v:.digits$} ms"),
    )
}

/// Failures by class, most frequent first, and the first error's message.
pub fn failure_summary(r: &StepResult) -> String {
    let mut classes: Vec<_> = r.errors.iter().collect();
    classes.sort_by(|a, b| b.1.cmp(a.1));
    let classes = classes
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    match &r.first_error {
        Some(e) => format!("{classes}; first error: {e}"),
        None => classes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offline::test_fixtures::step;

    #[test]
    fn dropped_arrivals_are_in_the_line() {
        let line = &lines(&step(81, 0, 39))[0];
        assert!(
            line.contains("120 arrivals, 39 dropped")
                && line.contains("81 requests (81 ok, 0 failed)"),
            "{line}"
        );
        let plain = &lines(&step(81, 0, 0))[0];
        assert!(!plain.contains("dropped"), "{plain}");
    }

    #[test]
    fn one_user_is_one_user() {
        let mut cfg = crate::config::RunConfig::new("http://x");
        cfg.warmup = std::time::Duration::from_secs(30);
        let warmup = &crate::coordinator::plan::initial_steps(&cfg, None).unwrap()[0];
        assert_eq!(starting(warmup), "warmup with 1 user for 30s");
    }

    #[test]
    fn embeddings_steps_show_inputs_and_latency_not_tokens() {
        let mut r = step(8, 0, 0);
        r.inputs = Some(sinks::inputs::InputThroughput {
            batch_size: 4,
            inputs: 32,
            inputs_per_second: 3.2,
            input_tokens: 640,
            input_tokens_per_second: 64.0,
            server_input_tokens: 640,
            server_input_tokens_per_second: 64.0,
        });
        let line = &lines(&r)[0];
        assert!(
            line.contains("3.2 inputs/s (64.0 input tokens/s), latency p50 200.")
                && !line.contains("tokens/s (steady")
                && !line.contains("TTFT"),
            "{line}"
        );
        let table = crate::offline::table::render(&[r]);
        assert!(table.contains("3.20 inputs/sec"), "{table}");
    }

    #[test]
    fn a_reasoning_step_shows_its_time_to_first_answer_token() {
        let plain = &lines(&step(8, 0, 0))[0];
        assert!(!plain.contains("TTFA"), "{plain}");
        let mut r = step(8, 0, 0);
        r.reasoning.reasoning_requests = 8;
        r.reasoning.time_to_first_answer_token_ms = r.e2e_latency_ms;
        let line = &lines(&r)[0];
        assert!(
            line.contains(", TTFA p50 200.") && line.contains("TTFT p50 100."),
            "{line}"
        );
    }

    #[test]
    fn a_steady_window_where_no_request_ended_does_not_read_0_req_s() {
        let mut r = step(8, 0, 0);
        let steady = |rate| sinks::steady::SteadyState {
            start_ms: 200,
            duration_ms: 800,
            request_rate: rate,
            token_throughput_secs: 75.0,
        };
        r.steady_state = Some(steady(0.0));
        let line = &lines(&r)[0];
        assert!(
            !line.contains("0.00 req/s")
                && line.contains(
                    "(steady: no request ended in the steady window, 75.0 tokens/s arrived in it)"
                ),
            "{line}"
        );
        r.steady_state = Some(sinks::steady::SteadyState {
            token_throughput_secs: 0.0,
            ..steady(0.0)
        });
        let line = &lines(&r)[0];
        assert!(
            line.contains(" (steady: no request ended in the steady window), TTFT"),
            "{line}"
        );
        r.steady_state = Some(steady(2.5));
        let line = &lines(&r)[0];
        assert!(
            line.contains("(steady 2.50 req/s, 75.0 tokens/s)"),
            "{line}"
        );
    }

    #[test]
    fn a_step_whose_requests_did_not_answer_warns() {
        let mut r = step(100, 0, 0);
        r.reasoning.reasoning_requests = 100;
        r.reasoning.no_answer_requests = 5;
        assert_eq!(lines(&r).len(), 1, "5 % is not above the threshold");
        r.reasoning.no_answer_requests = 100;
        let out = lines(&r);
        assert!(
            out[1].contains("WARNING: 100 of 100 successful requests (100.0 %)")
                && out[1].contains("raise max_tokens"),
            "{out:?}"
        );
    }

    #[test]
    fn missing_latencies_are_a_dash_not_zero() {
        let line = &lines(&step(0, 5, 0))[0];
        assert!(line.ends_with("TTFT p50 –, ITL p50 –"), "{line}");
    }
}
