//! W3C trace context for requests: ids chosen before a request is sent, the sampling decision,
//! and the `traceparent` header (pure).
//!
//! Ids are random (thread-local RNG), not derived from the run id and request id: run ids can
//! repeat (`--run-id` is user-given) and W3C asks for trace ids that are unique across every
//! trace a backend stores; the ids are recorded in the event (and in `--save-requests` output
//! through `x-request-id`), so nothing needs to recompute them. Sampling is nevertheless a pure
//! function of the trace id, like OpenTelemetry's `TraceIdRatioBased`, so anyone holding a
//! trace id can tell whether it was exported.

use rand::Rng;

use crate::event::TraceContext;

/// Whether a trace id is sampled at `ratio` (0..=1): its last 8 bytes, read as a big-endian
/// integer, fall below `ratio × 2^64`.
pub fn is_sampled(trace_id: &[u8; 16], ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio.is_nan() || ratio <= 0.0 {
        return false;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let x = u64::from_be_bytes(low);
    // 2^64 × ratio, computed in f64: exact enough for a sampling threshold.
    let bound = (ratio * 18_446_744_073_709_551_616.0) as u64;
    x < bound
}

/// Chooses each request's trace context. Cheap: two random draws and a comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceSampler {
    ratio: f64,
}

impl TraceSampler {
    /// `ratio` must be in 0..=1.
    pub fn new(ratio: f64) -> Result<TraceSampler, String> {
        if !(0.0..=1.0).contains(&ratio) {
            return Err(format!(
                "trace sample ratio must be within 0..1, got {ratio}"
            ));
        }
        Ok(TraceSampler { ratio })
    }

    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// A fresh context: random non-zero ids (all-zero ids are invalid in W3C), sampled by id.
    pub fn next_context(&self) -> TraceContext {
        let mut rng = rand::rng();
        let trace_id = loop {
            let id: [u8; 16] = rng.random();
            if id != [0; 16] {
                break id;
            }
        };
        let span_id = loop {
            let id: [u8; 8] = rng.random();
            if id != [0; 8] {
                break id;
            }
        };
        TraceContext {
            trace_id,
            span_id,
            sampled: is_sampled(&trace_id, self.ratio),
        }
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
}

/// Lower-case hex of any id.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// The `traceparent` header value: `00-<trace id>-<span id>-<01 sampled | 00>`.
pub fn traceparent(ctx: &TraceContext) -> String {
    let mut s = String::with_capacity(55);
    s.push_str("00-");
    push_hex(&mut s, &ctx.trace_id);
    s.push('-');
    push_hex(&mut s, &ctx.span_id);
    s.push_str(if ctx.sampled { "-01" } else { "-00" });
    s
}

fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

/// Reads a version-00 `traceparent` back (what a server would do; used by tests and tools).
pub fn parse_traceparent(value: &str) -> Option<TraceContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() {
        return None;
    }
    let trace_id = parse_hex::<16>(trace)?;
    let span_id = parse_hex::<8>(span)?;
    let flags = parse_hex::<1>(flags)?[0];
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(TraceContext {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let ctx = TraceContext {
            trace_id: [0xab; 16],
            span_id: [1, 2, 3, 4, 5, 6, 7, 8],
            sampled: true,
        };
        let h = traceparent(&ctx);
        assert_eq!(h, "00-abababababababababababababababab-0102030405060708-01");
        assert_eq!(parse_traceparent(&h), Some(ctx));
        let off = TraceContext {
            sampled: false,
            ..ctx
        };
        assert!(traceparent(&off).ends_with("-00"));
        assert_eq!(parse_traceparent(&traceparent(&off)), Some(off));
    }

    #[test]
    fn bad_traceparents_are_rejected() {
        for bad in [
            "",
            "01-abababababababababababababababab-0102030405060708-01",
            "00-00000000000000000000000000000000-0102030405060708-01",
            "00-abab-0102030405060708-01",
            "00-abababababababababababababababab-0102030405060708-01-x",
            "00-zzababababababababababababababab-0102030405060708-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn sampling_is_by_trace_id_and_near_the_ratio() {
        let mut id = [0u8; 16];
        assert!(is_sampled(&id, 0.5));
        id[8] = 0x80;
        assert!(!is_sampled(&id, 0.5));
        assert!(is_sampled(&id, 1.0));
        assert!(!is_sampled(&[0; 16], 0.0));

        let sampler = TraceSampler::new(0.25).unwrap();
        let n = 20_000;
        let sampled = (0..n).filter(|_| sampler.next_context().sampled).count();
        let share = sampled as f64 / n as f64;
        // Binomial sd at n = 20,000 is 0.003: 0.02 is far outside chance.
        assert!((share - 0.25).abs() < 0.02, "{share}");
        for _ in 0..100 {
            let c = sampler.next_context();
            assert_eq!(c.sampled, is_sampled(&c.trace_id, 0.25));
        }
    }

    #[test]
    fn ratio_is_checked() {
        assert!(TraceSampler::new(1.5).is_err());
        assert!(TraceSampler::new(-0.1).is_err());
        assert!(TraceSampler::new(f64::NAN).is_err());
        assert_eq!(TraceSampler::new(1.0).unwrap().ratio(), 1.0);
    }
}
