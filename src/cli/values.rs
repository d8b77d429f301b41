//! Parsers for single flag values: durations, listen addresses, shares, `key=value` lists,
//! benchmark kinds, endpoints, length options, secrets read from files. Each returns a message,
//! never panics.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{BenchmarkKind, Endpoint};
use crate::workload::options::TokenizeOptions;

/// A duration of 0 or more. The flags taking one accept a leading hyphen, so that `-d -5s`
/// reaches this message instead of being read as an unknown flag `-5`.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    if negative(s) {
        return Err(format!(
            "'{s}' is negative: a duration is 0s or more; e.g. 30s, 2m, 1h"
        ));
    }
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("'{s}' is not a duration ({e}); e.g. 30s, 2m, 1h"))
}

/// A duration above 0 (a step, a timeout, an interval).
pub(super) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = if negative(s) {
        Duration::ZERO
    } else {
        parse_duration(s)?
    };
    if d.is_zero() {
        return Err(format!(
            "'{s}': the duration must be positive; e.g. 30s, 2m, 1h"
        ));
    }
    Ok(d)
}

/// A duration with a minus sign, e.g. `-5s`.
fn negative(s: &str) -> bool {
    s.trim()
        .strip_prefix('-')
        .is_some_and(|m| humantime::parse_duration(m.trim()).is_ok())
}

/// `IP:PORT` or `HOST:PORT`, a host name resolved now (IPv4 first: what `localhost` scrapes
/// usually reach).
pub(super) fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let t = s.trim();
    if let Ok(addr) = t.parse() {
        return Ok(addr);
    }
    if t.rsplit_once(':')
        .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(format!(
            "'{s}' is not HOST:PORT or IP:PORT; e.g. 127.0.0.1:9464"
        ));
    }
    let addrs: Vec<std::net::SocketAddr> = t
        .to_socket_addrs()
        .map_err(|e| format!("'{s}': cannot resolve the host ({e})"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("'{s}': the host has no address"))
}

/// A secret from a file: trimmed, never echoed in an error.
pub(super) fn read_secret(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--api-key-file {}: {e}", path.display()))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(format!(
            "--api-key-file {}: the file is empty",
            path.display()
        ));
    }
    Ok(key.to_string())
}

/// A share: `0.25` or `25%`, between 0 and 1.
pub(super) fn parse_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("'{s}' is not a share (e.g. 0.5 or 50%)"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("'{s}' must be between 0 and 1 (or 0% and 100%)"))
    }
}

pub(super) fn parse_kind(s: &str) -> Result<BenchmarkKind, String> {
    match s.to_ascii_lowercase().as_str() {
        "throughput" => Ok(BenchmarkKind::Throughput),
        "rate" => Ok(BenchmarkKind::Rate),
        "sweep" => Ok(BenchmarkKind::Sweep),
        _ => Err(format!(
            "unknown --benchmark-kind '{s}': use throughput, rate or sweep"
        )),
    }
}

pub(super) fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    match s {
        "chat" => Ok(Endpoint::Chat),
        "completions" => Ok(Endpoint::Completions),
        "responses" => Ok(Endpoint::Responses),
        "embeddings" => Ok(Endpoint::Embeddings),
        "rerank" => Ok(Endpoint::Rerank),
        _ => Err(format!(
            "unknown --endpoint '{s}': use chat, completions, responses, embeddings or rerank"
        )),
    }
}

/// `key=value,key=value`; keys and values trimmed, empty keys refused.
pub fn parse_key_values(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for item in s.split(',').filter(|i| !i.trim().is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("'{item}' in --extra-meta is not key=value"))?;
        let k = k.trim();
        if k.is_empty() {
            return Err(format!("'{item}' in --extra-meta has an empty key"));
        }
        map.insert(k.to_string(), v.trim().to_string());
    }
    Ok(map)
}

pub(super) fn parse_length(flag: &str, s: Option<&str>) -> Result<Option<TokenizeOptions>, String> {
    s.map(|s| s.parse().map_err(|e| format!("--{flag}: {e}")))
        .transpose()
}
#[cfg(test)]
mod tests {
    use crate::cli::parse;

    #[test]
    fn durations_are_positive_where_zero_means_nothing() {
        for (args, needle) in [
            (vec!["-d", "-5s"], "the duration must be positive"),
            (vec!["-d", "0s"], "the duration must be positive"),
            (vec!["--request-timeout", "0s"], "must be positive"),
            (
                vec!["--prometheus-push-interval", "-1s"],
                "must be positive",
            ),
            (vec!["-w", "-1s"], "negative"),
            (vec!["--shutdown-grace", "-1s"], "negative"),
            (vec!["-d", "--rates"], "not a duration"),
        ] {
            let err = parse(&args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
        let c = parse(&[
            "-w",
            "0s",
            "--shutdown-grace",
            "0s",
            "--prometheus-linger",
            "0s",
        ]);
        let c = c.unwrap();
        assert!(c.warmup.is_zero() && c.shutdown_grace.is_zero());
    }

    #[test]
    fn listen_addresses_take_host_names() {
        let c = parse(&["--prometheus-listen", "localhost:9464"]).unwrap();
        let addr = c.prometheus_listen.unwrap();
        assert!(addr.ip().is_loopback() && addr.port() == 9464, "{addr}");
        let c = parse(&["--prometheus-listen", "[::1]:9464"]).unwrap();
        assert_eq!(c.prometheus_listen.unwrap().to_string(), "[::1]:9464");
        for bad in ["localhost", "9464", ":9464", "localhost:x"] {
            let err = parse(&["--prometheus-listen", bad]).unwrap_err();
            assert!(err.contains("HOST:PORT"), "{bad}: {err}");
        }
    }

    #[test]
    fn extra_meta_and_api_key() {
        let c = parse(&["--extra-meta", "gpu=h100, engine=vllm", "-a", "sk-x"]).unwrap();
        assert_eq!(c.extra_meta.get("engine").map(String::as_str), Some("vllm"));
        assert_eq!(c.api_key.as_deref(), Some("sk-x"));
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            !json.contains("sk-x"),
            "the API key must never be serialized"
        );
    }

    #[test]
    fn api_key_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "sk-from-file\n").unwrap();
        let p = path.to_str().unwrap();
        assert_eq!(
            parse(&["--api-key-file", p]).unwrap().api_key.as_deref(),
            Some("sk-from-file")
        );
        std::fs::write(&path, "  \n").unwrap();
        assert!(parse(&["--api-key-file", p]).unwrap_err().contains("empty"));
        let missing = dir.path().join("none");
        let err = parse(&["--api-key-file", missing.to_str().unwrap()]).unwrap_err();
        assert!(err.contains("--api-key-file"), "{err}");
        assert!(
            parse(&["--api-key-file", p, "-a", "x"]).is_err(),
            "one or the other"
        );
    }
}
