//! The pure logic against static expositions in each engine's format.

use super::parse::{parse, Value};
use super::window::{histogram_quantile, nearest_rank, MetricsWindow, RESERVOIR};
use super::*;

const VLLM_A: &str = include_str!("fixtures/vllm_a.prom");
const VLLM_B: &str = include_str!("fixtures/vllm_b.prom");

fn sglang(running: u32, tokens: u32) -> String {
    format!(
        "# HELP sglang:num_running_reqs The number of running requests.\n\
         # TYPE sglang:num_running_reqs gauge\n\
         sglang:num_running_reqs{{model_name=\"qwen\",tp_rank=\"0\"}} {running}.0\n\
         sglang:num_running_reqs{{model_name=\"qwen\",tp_rank=\"1\"}} {running}.0\n\
         # HELP sglang:token_usage The token usage.\n\
         # TYPE sglang:token_usage gauge\n\
         sglang:token_usage{{model_name=\"qwen\",tp_rank=\"0\"}} 0.2\n\
         sglang:token_usage{{model_name=\"qwen\",tp_rank=\"1\"}} 0.4\n\
         # HELP sglang:generation_tokens_total Number of generation tokens processed.\n\
         # TYPE sglang:generation_tokens_total counter\n\
         sglang:generation_tokens_total{{model_name=\"qwen\"}} {tokens}.0\n\
         # HELP sglang:time_to_first_token_seconds Histogram of time to first token in seconds.\n\
         # TYPE sglang:time_to_first_token_seconds histogram\n\
         sglang:time_to_first_token_seconds_bucket{{le=\"0.1\",model_name=\"qwen\"}} {running}.0\n\
         sglang:time_to_first_token_seconds_bucket{{le=\"+Inf\",model_name=\"qwen\"}} {running}.0\n\
         sglang:time_to_first_token_seconds_sum{{model_name=\"qwen\"}} 0.05\n\
         sglang:time_to_first_token_seconds_count{{model_name=\"qwen\"}} {running}.0\n"
    )
}

/// llama-server's `/metrics` (no labels, colon names): prompt tokens computed, and reused from
/// the cache.
fn llamacpp(prompt: u32, cached: u32, predicted: u32, processing: u32) -> String {
    format!(
        "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens\n\
         # TYPE llamacpp:prompt_tokens_total counter\n\
         llamacpp:prompt_tokens_total {prompt}\n\
         # HELP llamacpp:prompt_tokens_cached_total Number of prompt tokens reused from the cache\n\
         # TYPE llamacpp:prompt_tokens_cached_total counter\n\
         llamacpp:prompt_tokens_cached_total {cached}\n\
         # HELP llamacpp:tokens_predicted_total Number of generation tokens processed.\n\
         # TYPE llamacpp:tokens_predicted_total counter\n\
         llamacpp:tokens_predicted_total {predicted}\n\
         # HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 means 100 percent usage.\n\
         # TYPE llamacpp:kv_cache_usage_ratio gauge\n\
         llamacpp:kv_cache_usage_ratio 0.5\n\
         # HELP llamacpp:requests_processing Number of requests processing.\n\
         # TYPE llamacpp:requests_processing gauge\n\
         llamacpp:requests_processing {processing}\n\
         # HELP llamacpp:requests_deferred Number of requests deferred.\n\
         # TYPE llamacpp:requests_deferred gauge\n\
         llamacpp:requests_deferred 1\n"
    )
}

/// dcgm-exporter, two GPUs whose label sets differ (a driver label on one only).
fn dcgm(util: (u32, u32), energy_mj: (u64, u64)) -> String {
    let gpu = |i: u32, extra: &str| {
        format!("gpu=\"{i}\",UUID=\"GPU-{i}\",device=\"nvidia{i}\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"node-1\"{extra}")
    };
    let (g0, g1) = (gpu(0, ",DCGM_FI_DRIVER_VERSION=\"550.54.15\""), gpu(1, ""));
    format!(
        "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n\
         # TYPE DCGM_FI_DEV_GPU_UTIL gauge\n\
         DCGM_FI_DEV_GPU_UTIL{{{g0}}} {}\n\
         DCGM_FI_DEV_GPU_UTIL{{{g1}}} {}\n\
         # HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).\n\
         # TYPE DCGM_FI_DEV_FB_USED gauge\n\
         DCGM_FI_DEV_FB_USED{{{g0}}} 70000\n\
         DCGM_FI_DEV_FB_USED{{{g1}}} 60000\n\
         # HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).\n\
         # TYPE DCGM_FI_DEV_POWER_USAGE gauge\n\
         DCGM_FI_DEV_POWER_USAGE{{{g0}}} 500.5\n\
         DCGM_FI_DEV_POWER_USAGE{{{g1}}} 300.5\n\
         # HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).\n\
         # TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter\n\
         DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{g0}}} {}\n\
         DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{g1}}} {}\n",
        util.0, util.1, energy_mj.0, energy_mj.1
    )
}

fn window(endpoints: usize, filter: Option<&str>) -> MetricsWindow {
    MetricsWindow::new(
        (0..endpoints)
            .map(|i| format!("http://e{i}/metrics"))
            .collect(),
        filter.map(|f| regex::Regex::new(f).unwrap()),
    )
}

fn run(w: &mut MetricsWindow, rounds: &[(f64, &str)]) {
    for (t, text) in rounds {
        let s = parse(text).unwrap();
        w.observe(*t, &[(0, Some(&s))]);
    }
}

fn get<'a>(m: &'a ServerMetrics, key: &str) -> &'a SeriesSummary {
    m.series
        .get(key)
        .unwrap_or_else(|| panic!("{key} in {m:#?}"))
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn parses_vllm_families_histograms_and_labels() {
    let s = parse(VLLM_A).unwrap();
    let ttft = s.family("vllm:time_to_first_token_seconds").unwrap();
    assert_eq!(ttft.kind, aliases::Kind::Histogram);
    let Value::Histogram {
        buckets,
        count,
        sum,
    } = &ttft.series[0].value
    else {
        panic!("{ttft:?}")
    };
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, 10.0));
    assert_eq!((*count, *sum), (10.0, 0.9));
    assert_eq!(
        ttft.series[0].labels,
        r#"engine="0",model_name="meta-llama/Llama-3.1-8B""#
    );
    assert_eq!(
        s.family("vllm:generation_tokens_total").unwrap().kind,
        aliases::Kind::Counter
    );
}

#[test]
fn a_non_prometheus_answer_is_an_error() {
    assert!(parse("<html><body>Not Found</body></html>").is_err());
    assert!(parse("{\"detail\":\"Not Found\"}").is_err());
    assert!(parse("").is_err());
}

#[test]
fn vllm_step_window() {
    let mut w = window(1, None);
    run(&mut w, &[(0.0, VLLM_A), (10.0, VLLM_B)]);
    let m = w.finish(1000);
    assert_eq!(m.engine.as_deref(), Some("vllm"));
    assert_eq!((m.scrapes, m.failed_scrapes), (2, 0));
    let SeriesSummary::Gauge {
        mean,
        max,
        samples,
        source,
        unit,
        ..
    } = get(&m, "requests_running")
    else {
        panic!()
    };
    assert_eq!((*mean, *max, *samples), (Some(6.0), Some(8.0), 2));
    assert_eq!(
        (source.as_str(), unit.as_str()),
        ("vllm:num_requests_running", "requests")
    );
    assert!(close(get(&m, "kv_cache_usage").mean(), 0.5));
    let SeriesSummary::Counter {
        increase,
        rate_per_s,
        ..
    } = get(&m, "generation_tokens")
    else {
        panic!()
    };
    assert_eq!((*increase, *rate_per_s), (1000.0, Some(100.0)));
    assert_eq!(get(&m, "prompt_tokens").increase(), Some(2000.0));
    assert_eq!(get(&m, "preemptions").increase(), Some(0.0));
    // The `stop` series was born in the window: its 5 count from 0.
    assert_eq!(get(&m, "requests_finished").increase(), Some(5.0));
    assert!(close(m.prefix_cache_hit_rate, 0.5));
    assert_eq!(m.joules_per_output_token, None);
    let SeriesSummary::Histogram {
        count,
        sum,
        p50,
        p99,
        buckets,
        ..
    } = get(&m, "ttft_seconds")
    else {
        panic!()
    };
    assert_eq!(*count, 20.0);
    assert!((sum - 9.0).abs() < 1e-9);
    assert!(close(*p50, 0.1), "{p50:?}");
    assert!(close(*p99, 1.0), "in +Inf: the highest finite bound");
    let json = serde_json::to_value(buckets).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"0.01": 0.0, "0.1": 10.0, "1": 16.0, "+Inf": 20.0})
    );
    assert!(m.other.is_empty(), "no filter: nothing unknown kept");
}

#[test]
fn the_filter_keeps_unknown_series_by_name() {
    let mut w = window(1, Some("^python_gc|cache_config"));
    run(&mut w, &[(0.0, VLLM_A), (1.0, VLLM_A)]);
    let m = w.finish(0);
    assert_eq!(
        m.other.keys().collect::<Vec<_>>(),
        [
            "python_gc_objects_collected_total",
            "vllm:cache_config_info"
        ]
    );
    assert_eq!(
        m.other["python_gc_objects_collected_total"].increase(),
        Some(0.0)
    );
}

#[test]
fn a_counter_reset_adds_the_new_value() {
    let mut w = window(1, None);
    run(
        &mut w,
        &[
            (0.0, &llamacpp(100, 10, 1000, 1)),
            (1.0, &llamacpp(150, 20, 1200, 1)),
            // The server restarted: 30 prompt tokens computed, 5 cached and 40 generated since.
            (2.0, &llamacpp(30, 5, 40, 3)),
            (3.0, &llamacpp(50, 5, 90, 4)),
        ],
    );
    let m = w.finish(0);
    assert_eq!(m.engine.as_deref(), Some("llamacpp"));
    // Computed and cached prompt tokens add up, each followed through its own reset.
    let prompt = (50.0 + 30.0 + 20.0) + (10.0 + 5.0);
    assert_eq!(get(&m, "prompt_tokens").increase(), Some(prompt));
    let SeriesSummary::Counter { source, .. } = get(&m, "prompt_tokens") else {
        panic!("{m:#?}")
    };
    assert_eq!(
        source,
        "llamacpp:prompt_tokens_total + llamacpp:prompt_tokens_cached_total"
    );
    assert_eq!(get(&m, "prefix_cache_hits").increase(), Some(15.0));
    assert_eq!(m.prefix_cache_hit_rate, Some(15.0 / prompt));
    assert_eq!(
        get(&m, "generation_tokens").increase(),
        Some(200.0 + 40.0 + 50.0)
    );
    assert!(close(get(&m, "requests_running").mean(), 9.0 / 4.0));
    assert!(close(get(&m, "requests_waiting").mean(), 1.0));
    assert!(close(get(&m, "kv_cache_usage").mean(), 0.5));
}

#[test]
fn a_histogram_reset_starts_from_zero() {
    let mut w = window(1, None);
    run(
        &mut w,
        &[
            (0.0, &sglang(5, 0)),
            (1.0, &sglang(8, 0)),
            (2.0, &sglang(2, 0)),
        ],
    );
    let m = w.finish(0);
    let SeriesSummary::Histogram { count, .. } = get(&m, "ttft_seconds") else {
        panic!()
    };
    assert_eq!(*count, 3.0 + 2.0);
}

#[test]
fn sglang_label_sets_combine_sum_or_mean() {
    let mut w = window(1, None);
    run(&mut w, &[(0.0, &sglang(3, 10)), (2.0, &sglang(5, 110))]);
    let m = w.finish(0);
    assert_eq!(m.engine.as_deref(), Some("sglang"));
    // Two TP ranks each: running adds up, token usage is their mean.
    assert!(close(get(&m, "requests_running").mean(), 8.0 + 0.0));
    assert!(close(get(&m, "kv_cache_usage").mean(), 0.3));
    let SeriesSummary::Counter { rate_per_s, .. } = get(&m, "generation_tokens") else {
        panic!()
    };
    assert_eq!(*rate_per_s, Some(50.0));
}

#[test]
fn dcgm_gpus_and_joules_per_output_token() {
    let mut w = window(2, None);
    let (a, b) = (parse(VLLM_A).unwrap(), parse(VLLM_B).unwrap());
    let d0 = parse(&dcgm((80, 90), (1_000_000, 2_000_000))).unwrap();
    let d1 = parse(&dcgm((60, 70), (1_600_000, 2_400_000))).unwrap();
    w.observe(0.0, &[(0, Some(&a)), (1, Some(&d0))]);
    w.observe(10.0, &[(0, Some(&b)), (1, Some(&d1))]);
    let m = w.finish(1000);
    assert_eq!(m.endpoints, "http://e0/metrics, http://e1/metrics");
    assert_eq!(m.engine.as_deref(), Some("vllm"), "DCGM is not an engine");
    assert_eq!(m.scrapes, 4);
    let SeriesSummary::Gauge { mean, max, .. } = get(&m, "gpu_utilization") else {
        panic!()
    };
    assert_eq!((*mean, *max), (Some(75.0), Some(85.0)));
    assert!(close(get(&m, "gpu_memory_used").mean(), 130_000.0));
    assert!(close(get(&m, "gpu_power").mean(), 801.0));
    assert_eq!(get(&m, "gpu_energy").increase(), Some(1_000_000.0));
    // 1000 J over the step's 1000 output tokens.
    assert!(close(m.joules_per_output_token, 1.0));
}

#[test]
fn failed_scrapes_are_counted_and_the_next_answer_is_the_baseline() {
    let mut w = window(1, None);
    let (a, b) = (parse(VLLM_A).unwrap(), parse(VLLM_B).unwrap());
    w.observe(0.0, &[(0, None)]);
    w.observe(1.0, &[(0, Some(&a))]);
    w.observe(2.0, &[(0, Some(&b))]);
    let m = w.finish(0);
    assert_eq!((m.scrapes, m.failed_scrapes), (2, 1));
    assert_eq!(get(&m, "generation_tokens").increase(), Some(1000.0));
}

#[test]
fn gauges_stop_at_the_end_of_sending_and_the_baseline_is_no_sample() {
    let mut w = window(1, None);
    let (a, b) = (parse(VLLM_A).unwrap(), parse(VLLM_B).unwrap());
    w.observe_baseline(0.0, &[(0, Some(&b))]);
    w.observe(0.5, &[(0, Some(&a))]);
    w.close_gauges();
    w.observe(1.0, &[(0, Some(&b))]);
    let m = w.finish(0);
    assert!(close(get(&m, "requests_running").mean(), 4.0));
    // b → a → b: the counter went down and up again (a restart).
    assert_eq!(
        get(&m, "generation_tokens").increase(),
        Some(8000.0 + 1000.0)
    );
}

#[test]
fn an_old_and_a_new_name_are_not_counted_twice() {
    let both = VLLM_A.to_string()
        + "# TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc{engine=\"0\"} 0.9\n";
    let mut w = window(1, None);
    run(&mut w, &[(0.0, &both)]);
    let m = w.finish(0);
    assert!(close(get(&m, "kv_cache_usage").mean(), 0.25));
    let old = "# TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc 0.9\n";
    let mut w = window(1, None);
    run(&mut w, &[(0.0, old)]);
    assert!(close(get(&w.finish(0), "kv_cache_usage").mean(), 0.9));
}

#[test]
fn gauge_memory_is_bounded_and_quantiles_stay_fair() {
    let text = |v: usize| {
        format!("# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running {v}\n")
    };
    let mut w = window(1, None);
    let n = RESERVOIR * 4;
    for i in 0..n {
        let s = parse(&text(i % 100)).unwrap();
        w.observe(i as f64, &[(0, Some(&s))]);
    }
    let m = w.finish(0);
    let SeriesSummary::Gauge {
        samples, p50, p99, ..
    } = get(&m, "requests_running")
    else {
        panic!()
    };
    assert_eq!(*samples, n as u64);
    assert!((40.0..=60.0).contains(&p50.unwrap()), "{p50:?}");
    assert!(p99.unwrap() >= 95.0, "{p99:?}");
}

#[test]
fn quantile_helpers() {
    assert_eq!(nearest_rank(&[], 0.5), None);
    assert_eq!(nearest_rank(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.0));
    assert_eq!(nearest_rank(&[1.0, 2.0, 3.0, 4.0], 0.99), Some(4.0));
    let b = [(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
    assert!(close(histogram_quantile(&b, 0.25), 0.5));
    assert!(close(histogram_quantile(&b, 0.75), 1.5));
    assert_eq!(
        histogram_quantile(&[(1.0, 0.0), (f64::INFINITY, 0.0)], 0.5),
        None
    );
}

#[test]
fn the_result_has_no_list_and_round_trips() {
    let mut w = window(1, Some("python_gc"));
    run(&mut w, &[(0.0, VLLM_A), (10.0, VLLM_B)]);
    let m = w.finish(10);
    let json = serde_json::to_value(&m).unwrap();
    fn no_array(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Array(_) => false,
            serde_json::Value::Object(o) => o.values().all(no_array),
            _ => true,
        }
    }
    assert!(no_array(&json), "{json:#}");
    assert_eq!(json["series"]["requests_running"]["kind"], "gauge");
    assert_eq!(json["series"]["ttft_seconds"]["buckets"]["+Inf"], 20.0);
    let back: ServerMetrics = serde_json::from_value(json).unwrap();
    assert_eq!(back, m);
}
