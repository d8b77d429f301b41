//! The OTLP trace sink (issue 4): one span per request, correlated with the server's own traces
//! through the `traceparent` header the request carried.
//!
//! - [`context`]: trace ids, sampling by trace id, `traceparent` (pure; the request path uses it).
//! - [`config`]: what to export and where (pure).
//! - [`span`]: request, step and run spans from the events (pure).
//! - [`sink`]: the actor on the sink arbiter: bounded queue, batched export, dropped-span count.

pub mod config;
pub mod context;
pub mod sink;
pub mod span;

pub use config::{OtlpConfig, OtlpProtocol};
pub use context::{parse_traceparent, traceparent, TraceSampler};
pub use sink::{start, OtlpStats, Started};
