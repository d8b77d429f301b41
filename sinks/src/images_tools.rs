//! Image inputs and tool calls: a request's figures (carried by `RequestFinished`), and a
//! step's aggregate of them (`StepResult::images_and_tools`, null when no request of the step
//! sent an image or offered a tool). Pure.

use serde::{Deserialize, Serialize};

use crate::event::{Nanos, RequestFinished};
use crate::stats::{LatencyHistogram, Summary};

/// One request's images and tool calls; all zero for a plain text request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagesTools {
    /// Images the request sent (in all its messages).
    pub image_count: u32,
    /// Bytes of those image files (before base64).
    pub image_bytes: u64,
    /// Tools the request offered (`tools`).
    pub tool_definitions: u32,
    /// Tool calls the streamed answer made.
    pub tool_calls: u32,
    /// Arrival of the first chunk carrying a piece of a tool call (its name or arguments).
    pub first_tool_call_at: Option<Nanos>,
}

impl ImagesTools {
    pub fn is_empty(&self) -> bool {
        *self == ImagesTools::default()
    }
}

impl RequestFinished {
    /// Time to first tool-call token: `first_tool_call_at − sent_at`.
    pub fn time_to_first_tool_call_ns(&self) -> Option<u64> {
        let at = self.images_tools.first_tool_call_at?;
        Some(at.saturating_sub(self.sent_at))
    }
}

/// A step's images and tool calls (see the README glossary).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImagesToolsStep {
    /// Images in every sent request, failed ones included.
    pub images_sent: u64,
    /// Successful requests that sent at least one image.
    pub requests_with_images: u64,
    /// Images and their bytes in the successful requests.
    pub images: u64,
    pub image_bytes: u64,
    /// `images / requests_with_images` and `image_bytes / requests_with_images`; null without any.
    pub images_per_request: Option<f64>,
    pub image_bytes_per_request: Option<f64>,
    /// Images of successful requests per second of the step (as `request_rate`).
    pub image_throughput: f64,
    /// Successful requests that offered tools.
    pub requests_with_tools: u64,
    /// Successful requests whose answer was (or held) a tool call, and the calls made.
    pub requests_with_tool_calls: u64,
    pub tool_calls: u64,
    /// Time to first tool-call token over the successful requests that streamed a tool call.
    pub time_to_first_tool_call_ms: Summary,
    /// Its HDR histogram (base64), so that shards merge exactly.
    pub time_to_first_tool_call_histogram: String,
}

/// Accumulates a step's [`ImagesToolsStep`].
#[derive(Clone, Debug, Default)]
pub struct ImagesToolsCounter {
    seen: bool,
    step: ImagesToolsStep,
    ttftc: LatencyHistogram,
}

impl ImagesToolsCounter {
    pub fn record(&mut self, r: &RequestFinished) {
        let f = &r.images_tools;
        if f.is_empty() {
            return;
        }
        self.seen = true;
        let s = &mut self.step;
        s.images_sent += u64::from(f.image_count);
        if !r.outcome.is_ok() {
            return;
        }
        if f.image_count > 0 {
            s.requests_with_images += 1;
            s.images += u64::from(f.image_count);
            s.image_bytes = s.image_bytes.saturating_add(f.image_bytes);
        }
        s.requests_with_tools += u64::from(f.tool_definitions > 0);
        s.requests_with_tool_calls += u64::from(f.tool_calls > 0);
        s.tool_calls += u64::from(f.tool_calls);
        if let Some(ns) = r.time_to_first_tool_call_ns() {
            self.ttftc.record_ns(ns);
        }
    }

    /// The step's figures over `duration_s`; `None` when no request had images or tools.
    pub fn finish(&self, duration_s: f64) -> Option<ImagesToolsStep> {
        self.seen
            .then(|| finish(self.step.clone(), &self.ttftc, duration_s))
    }

    /// Several shards' figures of one step, over the merged step's duration.
    pub fn merge(parts: &[&ImagesToolsStep], duration_s: f64) -> Result<ImagesToolsStep, String> {
        let mut sum = ImagesToolsStep::default();
        let mut ttftc = LatencyHistogram::new();
        for p in parts {
            sum.images_sent += p.images_sent;
            sum.requests_with_images += p.requests_with_images;
            sum.images += p.images;
            sum.image_bytes = sum.image_bytes.saturating_add(p.image_bytes);
            sum.requests_with_tools += p.requests_with_tools;
            sum.requests_with_tool_calls += p.requests_with_tool_calls;
            sum.tool_calls += p.tool_calls;
            let h = LatencyHistogram::from_base64(&p.time_to_first_tool_call_histogram)
                .map_err(|e| format!("histogram time_to_first_tool_call: {e}"))?;
            ttftc.merge(&h);
        }
        Ok(finish(sum, &ttftc, duration_s))
    }
}

fn finish(mut s: ImagesToolsStep, ttftc: &LatencyHistogram, duration_s: f64) -> ImagesToolsStep {
    let with = s.requests_with_images;
    let per_request = |n: u64| (with > 0).then(|| n as f64 / with as f64);
    s.images_per_request = per_request(s.images);
    s.image_bytes_per_request = per_request(s.image_bytes);
    s.image_throughput = crate::aggregate::per_second(s.images, duration_s);
    s.time_to_first_tool_call_ms = ttftc.summary();
    s.time_to_first_tool_call_histogram = ttftc.to_base64().unwrap_or_else(|e| {
        log::error!("histogram time_to_first_tool_call left out of the results: {e}");
        String::new()
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::tests::ok_request;
    use crate::event::Outcome;

    fn with(mut r: RequestFinished, f: ImagesTools) -> RequestFinished {
        r.images_tools = f;
        r
    }

    #[test]
    fn counts_successful_requests_and_times_the_first_tool_call() {
        let mut c = ImagesToolsCounter::default();
        c.record(&ok_request("plain", 0));
        assert_eq!(c.finish(1.0), None, "no image, no tool: no figures");
        let image = ImagesTools {
            image_count: 2,
            image_bytes: 1000,
            ..ImagesTools::default()
        };
        c.record(&with(ok_request("a", 0), image));
        let mut failed = with(ok_request("b", 0), image);
        failed.outcome = Outcome::Http4xx;
        c.record(&failed);
        let sent = ok_request("c", 0).sent_at;
        let call = ImagesTools {
            tool_definitions: 1,
            tool_calls: 1,
            first_tool_call_at: Some(sent + 7_000_000),
            ..ImagesTools::default()
        };
        c.record(&with(ok_request("c", 0), call));
        let s = c.finish(2.0).unwrap();
        assert_eq!((s.images_sent, s.images, s.image_bytes), (4, 2, 1000));
        assert_eq!(s.requests_with_images, 1);
        assert_eq!(s.images_per_request, Some(2.0));
        assert_eq!(s.image_bytes_per_request, Some(1000.0));
        assert_eq!(s.image_throughput, 1.0);
        assert_eq!((s.requests_with_tools, s.requests_with_tool_calls), (1, 1));
        assert_eq!(s.time_to_first_tool_call_ms.count, 1);
        assert!((s.time_to_first_tool_call_ms.p50 - 7.0).abs() < 0.01);
        let merged = ImagesToolsCounter::merge(&[&s, &s], 4.0).unwrap();
        assert_eq!((merged.images, merged.tool_calls), (4, 2));
        assert_eq!(merged.image_throughput, 1.0);
        assert_eq!(merged.time_to_first_tool_call_ms.count, 2);
    }
}
