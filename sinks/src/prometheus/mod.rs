//! The Prometheus sink: a registry of our own, updated from the Recorder's events and from the
//! live gauges, served on `/metrics` for scraping and/or pushed to a Pushgateway.
//!
//! - [`config`]: what to do (listen address, gateway, constant labels) — pure.
//! - [`gauges`]: `LiveGauges`, the atomics the request path and the coordinator write.
//! - [`metrics`]: the metrics and how events update them — pure.
//! - [`read_counters`]: counters read at gather time (trace spans, process CPU).
//! - [`server`]: `/metrics` on a thread of its own (its own actix System).
//! - [`sink`]: the actor on the sink arbiter (events, periodic pushes, final flush).

pub mod config;
pub mod gauges;
pub mod metrics;
pub mod read_counters;
pub mod server;
pub mod sink;

pub use config::PrometheusConfig;
pub use gauges::{LiveGauges, Phase};
pub use metrics::Metrics;
pub use sink::{start, Started};
