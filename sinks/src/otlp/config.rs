//! The OTLP trace sink's settings (pure).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Spans waiting for export at most; past this, new spans are dropped and counted.
pub const DEFAULT_QUEUE_CAPACITY: usize = 8192;
/// Spans per export request.
pub const DEFAULT_BATCH_SIZE: usize = 512;
/// A partial batch is exported after this long.
pub const DEFAULT_EXPORT_INTERVAL: Duration = Duration::from_secs(1);
/// One export request's deadline (connect + send + answer).
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Service name when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` sets one.
pub const DEFAULT_SERVICE_NAME: &str = "inference-benchmarker";
/// The instrumentation scope of every span.
pub const SCOPE_NAME: &str = "inference-benchmarker";

/// OTLP transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    /// HTTP/protobuf (`POST <endpoint>/v1/traces`), port 4318 by convention.
    #[default]
    Http,
    /// gRPC (`TraceService/Export`), port 4317 by convention.
    Grpc,
}

/// What the sink exports and where.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OtlpConfig {
    /// Base URL of the collector (like `OTEL_EXPORTER_OTLP_ENDPOINT`: for HTTP, `/v1/traces` is
    /// appended unless the URL already ends with it). `None`: the exporter reads
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: Option<String>,
    pub protocol: OtlpProtocol,
    /// Share of requests exported (decided by trace id); the step and run spans are always.
    pub sample_ratio: f64,
    /// One span event per streamed chunk (`gen_ai.chunk`), besides `gen_ai.first_token`.
    pub token_events: bool,
    /// `inference_benchmarker.run_id` on every span.
    pub run_id: String,
    /// The model the requests ask for (`gen_ai.request.model`, the span name).
    pub model: String,
    /// `chat` or `text_completion` (`gen_ai.operation.name`).
    pub operation: String,
    /// The target's host and port (`server.address`, `server.port`).
    pub server_address: String,
    pub server_port: Option<u16>,
    pub queue_capacity: usize,
    pub batch_size: usize,
    pub export_interval: Duration,
    pub export_timeout: Duration,
}

impl OtlpConfig {
    /// The defaults for everything but the run's identity and target.
    pub fn new(run_id: &str, model: &str, operation: &str, target_url: &str) -> OtlpConfig {
        let (server_address, server_port) = host_port(target_url);
        OtlpConfig {
            endpoint: None,
            protocol: OtlpProtocol::Http,
            sample_ratio: 1.0,
            token_events: false,
            run_id: run_id.to_string(),
            model: model.to_string(),
            operation: operation.to_string(),
            server_address,
            server_port,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            batch_size: DEFAULT_BATCH_SIZE,
            export_interval: DEFAULT_EXPORT_INTERVAL,
            export_timeout: DEFAULT_EXPORT_TIMEOUT,
        }
    }

    /// The URL the exporter is given, when one was configured (see `endpoint`).
    pub fn exporter_endpoint(&self) -> Option<String> {
        let base = self.endpoint.as_deref()?.trim();
        Some(match self.protocol {
            OtlpProtocol::Grpc => base.to_string(),
            OtlpProtocol::Http if base.trim_end_matches('/').ends_with("/v1/traces") => {
                base.to_string()
            }
            OtlpProtocol::Http => format!("{}/v1/traces", base.trim_end_matches('/')),
        })
    }
}

/// Host and explicit-or-default port of a URL, without parsing crates: `scheme://host[:port]/...`.
pub fn host_port(url: &str) -> (String, Option<u16>) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let default_port = match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    // [v6]:port
    if let Some(v6) = authority.strip_prefix('[') {
        if let Some((host, after)) = v6.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (host.to_string(), port.or(default_port));
        }
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => match port.parse() {
            Ok(p) => (host.to_string(), Some(p)),
            Err(_) => (authority.to_string(), default_port),
        },
        None => (authority.to_string(), default_port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_endpoint_gets_the_traces_path_once() {
        let mut c = OtlpConfig::new("r", "m", "chat", "http://127.0.0.1:8000/v1");
        assert_eq!(c.exporter_endpoint(), None);
        c.endpoint = Some("http://127.0.0.1:4318".into());
        assert_eq!(
            c.exporter_endpoint().unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        c.endpoint = Some("http://127.0.0.1:4318/".into());
        assert_eq!(
            c.exporter_endpoint().unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        c.endpoint = Some("http://h:4318/v1/traces".into());
        assert_eq!(c.exporter_endpoint().unwrap(), "http://h:4318/v1/traces");
        c.protocol = OtlpProtocol::Grpc;
        c.endpoint = Some("http://h:4317".into());
        assert_eq!(c.exporter_endpoint().unwrap(), "http://h:4317");
    }

    #[test]
    fn host_and_port_of_targets() {
        assert_eq!(
            host_port("http://127.0.0.1:8000/v1/chat"),
            ("127.0.0.1".into(), Some(8000))
        );
        assert_eq!(
            host_port("https://api.example.com"),
            ("api.example.com".into(), Some(443))
        );
        assert_eq!(host_port("http://[::1]:9/x"), ("::1".into(), Some(9)));
        assert_eq!(host_port("http://u:p@h:7"), ("h".into(), Some(7)));
        assert_eq!(host_port("h"), ("h".into(), Some(80)));
    }
}
