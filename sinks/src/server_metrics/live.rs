//! The latest round's few figures the live console shows (pure): a well-known gauge's value
//! now, combined as a step's window combines it.

use super::aliases::{self, Combine, Kind};
use super::parse::{Scrape, Value};

/// The value of the well-known gauge `key` in one round (`None` for an endpoint that failed):
/// each endpoint's first exposed source, its label sets and the endpoints combined as the alias
/// says. None when no endpoint had it.
pub fn latest_gauge(round: &[Option<&Scrape>], key: &str) -> Option<f64> {
    let alias = aliases::ALIASES.iter().find(|a| a.key == key)?;
    if alias.kind != Kind::Gauge {
        return None;
    }
    let mut values = Vec::new();
    for scrape in round.iter().flatten() {
        let Some(family) = alias.sources.iter().find_map(|s| scrape.family(s)) else {
            continue;
        };
        if family.kind != Kind::Gauge {
            continue;
        }
        values.extend(family.series.iter().filter_map(|s| match s.value {
            Value::Scalar(v) if v.is_finite() => Some(v),
            _ => None,
        }));
    }
    if values.is_empty() {
        return None;
    }
    let total: f64 = values.iter().sum();
    Some(match alias.combine {
        Combine::Sum => total,
        Combine::Mean => total / values.len() as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    #[test]
    fn waiting_adds_up_and_the_kv_cache_averages_across_endpoints() {
        let a = parse(
            "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model=\"m\"} 3\n\
             # TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{model=\"m\"} 0.5\n\
             # TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc{model=\"m\"} 0.9\n",
        )
        .unwrap();
        let b = parse(
            "# TYPE sglang:num_queue_reqs gauge\nsglang:num_queue_reqs 2\n\
             # TYPE sglang:token_usage gauge\nsglang:token_usage 0.25\n",
        )
        .unwrap();
        let round = [Some(&a), None, Some(&b)];
        assert_eq!(latest_gauge(&round, "requests_waiting"), Some(5.0));
        // The newer vLLM name only (not its older one too), then SGLang's.
        assert_eq!(latest_gauge(&round, "kv_cache_usage"), Some(0.375));
        assert_eq!(latest_gauge(&[None], "kv_cache_usage"), None);
        assert_eq!(
            latest_gauge(&round, "generation_tokens"),
            None,
            "not a gauge"
        );
    }
}
