//! The figures of today's workloads (issue 18), compared only when a step has them: reasoning
//! models, multi-token chunks, embeddings and rerank inputs, image inputs and tool calls.

use sinks::json::StepResult;

use super::{Better, Figure};

/// Reasoning models (issue 18), compared when either step reasoned: the time to the first answer
/// token is judged like TTFT; how long the model thought and how often it never answered are
/// shown, not judged (they follow the prompts and `--reasoning-effort` more than the server).
pub(super) const REASONING_FIGURES: &[Figure] = &[
    Figure {
        name: "Time to first answer p50",
        unit: "ms",
        better: Better::Lower,
        read: |r| ttfa(r, r.reasoning.time_to_first_answer_token_ms.p50),
    },
    Figure {
        name: "Time to first answer p99",
        unit: "ms",
        better: Better::Lower,
        read: |r| ttfa(r, r.reasoning.time_to_first_answer_token_ms.p99),
    },
    Figure {
        name: "Reasoning tokens (mean)",
        unit: "tok",
        better: Better::Lower,
        read: |r| {
            r.reasoning
                .reasoning_tokens
                .known(r.reasoning.reasoning_tokens.avg)
        },
    },
    Figure {
        name: "Answer tokens (mean)",
        unit: "tok",
        better: Better::Higher,
        read: |r| {
            r.reasoning
                .answer_tokens
                .known(r.reasoning.answer_tokens.avg)
        },
    },
    Figure {
        name: "No answer",
        unit: "%",
        better: Better::Lower,
        read: |r| {
            (r.successful_requests > 0).then(|| {
                100.0 * r.reasoning.no_answer_requests as f64 / r.successful_requests as f64
            })
        },
    },
];

fn ttfa(r: &StepResult, figure: f64) -> Option<f64> {
    r.reasoning.time_to_first_answer_token_ms.known(figure)
}

/// Tokens per chunk, shown when either step streamed several tokens a chunk: ITL stays per token,
/// inter-chunk latency grows with it.
pub(super) const CHUNK_FIGURES: &[Figure] = &[
    Figure {
        name: "Tokens per chunk (mean)",
        unit: "tok",
        better: Better::Higher,
        read: |r| {
            r.reasoning
                .tokens_per_chunk
                .known(r.reasoning.tokens_per_chunk.avg)
        },
    },
    Figure {
        name: "Tokens per chunk p99",
        unit: "tok",
        better: Better::Higher,
        read: |r| {
            r.reasoning
                .tokens_per_chunk
                .known(r.reasoning.tokens_per_chunk.p99)
        },
    },
];

/// Whether a step streamed several tokens in some chunk (beyond HDR's 0.1 %).
pub(super) fn multi_token_chunks(r: &StepResult) -> bool {
    r.reasoning
        .tokens_per_chunk
        .known(r.reasoning.tokens_per_chunk.max)
        .is_some_and(|m| m > 1.01)
}

/// Embeddings and rerank steps' (`inputs`), compared when either step has them.
pub(super) const INPUT_FIGURES: &[Figure] = &[
    Figure {
        name: "Input rate",
        unit: "inputs/s",
        better: Better::Higher,
        read: |r| r.inputs.map(|i| i.inputs_per_second),
    },
    Figure {
        name: "Input token rate",
        unit: "tok/s",
        better: Better::Higher,
        read: |r| r.inputs.map(|i| i.input_tokens_per_second),
    },
];

/// Image inputs and tool calls (`images_and_tools`), compared and judged when either step has
/// them (a step without is "no data").
pub(super) const IMAGES_TOOLS_FIGURES: &[Figure] = &[
    Figure {
        name: "Time to first tool call p50",
        unit: "ms",
        better: Better::Lower,
        read: |r| {
            images_tools(r, |f| {
                f.time_to_first_tool_call_ms
                    .known(f.time_to_first_tool_call_ms.p50)
            })
        },
    },
    Figure {
        name: "Time to first tool call p99",
        unit: "ms",
        better: Better::Lower,
        read: |r| {
            images_tools(r, |f| {
                f.time_to_first_tool_call_ms
                    .known(f.time_to_first_tool_call_ms.p99)
            })
        },
    },
    Figure {
        name: "Image throughput",
        unit: "img/s",
        better: Better::Higher,
        read: |r| images_tools(r, |f| (f.images > 0).then_some(f.image_throughput)),
    },
];

fn images_tools(
    r: &StepResult,
    read: impl Fn(&sinks::images_tools::ImagesToolsStep) -> Option<f64>,
) -> Option<f64> {
    r.images_and_tools.as_ref().and_then(read)
}
