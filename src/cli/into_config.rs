//! From the run command's flags to the run's `RunConfig`: every value checked (`validate`), a
//! profile and the demo's defaults applied under the flags given explicitly, the shard's part
//! of the load taken.

use clap::parser::ValueSource;
use clap::ArgMatches;

use super::presets::{apply_demo_defaults, apply_profile_keeping_flags};
use super::run_args::RunArgs;
use super::values::{parse_endpoint, parse_key_values, parse_kind, parse_length, read_secret};
use crate::config::{BenchmarkKind, Endpoint, RunConfig};
use crate::load::schedule::Arrival;
use crate::workload::options::TokenizeOptions;

fn random_run_id() -> String {
    format!("{:07x}", rand::random::<u32>() & 0x0fff_ffff)
}

pub(super) fn is_default(m: &ArgMatches, id: &str) -> bool {
    !matches!(
        m.value_source(id),
        Some(ValueSource::CommandLine) | Some(ValueSource::EnvVariable)
    )
}

impl RunArgs {
    /// Checks every value and builds the run's configuration.
    pub fn into_config(self, m: &ArgMatches) -> Result<RunConfig, String> {
        let mut cfg = RunConfig {
            url: self.url,
            api_key: match &self.api_key_file {
                Some(path) => Some(read_secret(path)?),
                None => self.api_key.filter(|k| !k.is_empty()),
            },
            tokenizer_name: self.tokenizer_name,
            model_name: self.model_name,
            max_vus: self.max_vus,
            vus: self.vus,
            duration: self.duration,
            rates: self.rates,
            num_rates: self.num_rates,
            profile: None,
            benchmark_kind: parse_kind(&self.benchmark_kind)?,
            warmup: self.warmup,
            prompt_options: parse_length("prompt-options", self.prompt_options.as_deref())?,
            decode_options: parse_length("decode-options", self.decode_options.as_deref())?
                .or_else(|| Some(TokenizeOptions::fixed(crate::config::DEFAULT_OUTPUT_TOKENS))),
            draw_prompt_lengths: self.draw_prompt_lengths,
            image_options: self
                .image_options
                .as_deref()
                .map(|s| s.parse().map_err(|e| format!("--image-options: {e}")))
                .transpose()?,
            dataset: self.dataset,
            dataset_file: self.dataset_file,
            extra_meta: self
                .extra_meta
                .as_deref()
                .map(parse_key_values)
                .transpose()?
                .unwrap_or_default(),
            run_id_names_file: self.run_id.is_some(),
            run_id: self.run_id.unwrap_or_else(random_run_id),
            endpoint: parse_endpoint(&self.endpoint)?,
            batch_size: self.batch_size,
            ignore_eos: !self.no_ignore_eos,
            reasoning_effort: self.reasoning_effort,
            workers: self
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
            request_timeout: self.request_timeout,
            shutdown_grace: self.shutdown_grace,
            output_dir: self.output_dir,
            save_requests: self.save_requests,
            no_console: self.no_console,
            no_report: self.no_report,
            csv: self.csv,
            seed: self.seed,
            cache_salt: self
                .cache_salt
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or_default(),
            max_context_tokens: self.max_context_tokens,
            arrival: Arrival::parse(&self.arrival, self.burstiness)?,
            max_error_rate: (self.max_error_rate < 1.0).then_some(self.max_error_rate),
            stop_when_saturated: !self.no_saturation_stop,
            prometheus_listen: self.prometheus_listen,
            control_listen: self.control_listen,
            prometheus_linger: self.prometheus_linger,
            prometheus_pushgateway: self.prometheus_pushgateway,
            prometheus_push_interval: self.prometheus_push_interval,
            server_metrics: self.server_metrics,
            no_server_metrics: self.no_server_metrics,
            server_metrics_interval: self.server_metrics_interval,
            server_metrics_filter: match self.server_metrics_filter {
                Some(f) => {
                    sinks::server_metrics::compile_filter(&f)
                        .map_err(|e| format!("--server-metrics-filter: {e}"))?;
                    Some(f)
                }
                None => None,
            },
            thresholds: self.thresholds,
            slo: self.slo.as_deref().map(str::parse).transpose()?,
            queue_when_saturated: self.queue_when_saturated,
            ramp_up: self.ramp_up,
            slice_duration: self.slice_duration,
            ca_cert: self.ca_cert,
            insecure: self.insecure,
            retries: self.retries,
            otlp_endpoint: self.otlp_endpoint,
            otlp_protocol: match self.otlp_protocol.as_str() {
                "grpc" => sinks::otlp::OtlpProtocol::Grpc,
                _ => sinks::otlp::OtlpProtocol::Http,
            },
            trace_sample_ratio: sinks::otlp::TraceSampler::new(self.trace_sample_ratio)
                .map_err(|e| format!("--trace-sample-ratio: {e}"))?
                .ratio(),
            trace_token_events: self.trace_token_events,
            shard: None,
            trace: self.trace,
            trace_speedup: self.trace_speedup,
            extra_sinks: Default::default(),
            test_hooks: Default::default(),
        };
        if let Some(profile) = self.profile {
            apply_profile_keeping_flags(&profile, &mut cfg, m)?;
        }
        // The original tool's users give `-r 2,4` without `-b rate`: the rates they give run.
        if cfg.rates.is_some() && is_default(m, "benchmark_kind") {
            cfg.benchmark_kind = BenchmarkKind::Rate;
        }
        if self.demo {
            apply_demo_defaults(&mut cfg, m)?;
        }
        if let Some(shard) = crate::config::shard::Shard::new(self.shards, self.shard_index)? {
            shard.apply(&mut cfg)?;
        }
        validate(&cfg)?;
        Ok(cfg)
    }
}

pub fn validate(cfg: &RunConfig) -> Result<(), String> {
    if cfg.max_vus == 0 {
        return Err("--max-vus must be at least 1".into());
    }
    if let Some(addr) = cfg.control_listen {
        crate::control::server::loopback_only(addr)?;
    }
    if cfg.duration.is_zero() {
        return Err("--duration must be more than 0s".into());
    }
    if cfg.num_rates == 0 && cfg.benchmark_kind == BenchmarkKind::Sweep {
        return Err("--num-rates must be at least 1 for a sweep".into());
    }
    if let Some(r) = cfg
        .rates
        .iter()
        .flatten()
        .find(|r| !(r.is_finite() && **r > 0.0))
    {
        return Err(format!("--rates must be positive numbers, got {r}"));
    }
    if cfg.benchmark_kind == BenchmarkKind::Rate && cfg.rates.as_ref().is_none_or(|r| r.is_empty())
    {
        return Err("--benchmark-kind rate needs --rates (e.g. --rates 1,5,10)".into());
    }
    if cfg.rates.is_some() && cfg.benchmark_kind != BenchmarkKind::Rate {
        return Err(format!(
            "--rates runs rate steps, but --benchmark-kind is {}: give -b rate, or leave -b out",
            crate::outputs::results_file::original_kind(cfg.benchmark_kind).to_ascii_lowercase()
        ));
    }
    if cfg.image_options.is_some() && cfg.endpoint == crate::config::Endpoint::Completions {
        return Err(
            "--image-options sends images as chat content parts: it needs --endpoint chat".into(),
        );
    }
    if cfg.insecure {
        eprintln!("warning: --insecure: the server's TLS certificate is not verified");
    }
    if !cfg.ramp_up.is_zero() && cfg.ramp_up >= cfg.duration {
        return Err("--ramp-up must be shorter than --duration".into());
    }
    for t in &cfg.thresholds {
        t.parse::<crate::offline::thresholds::Threshold>()?;
    }
    if cfg.workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    if !(cfg.trace_speedup.is_finite() && cfg.trace_speedup > 0.0) {
        return Err(format!(
            "--trace-speedup must be a positive number, got {}",
            cfg.trace_speedup
        ));
    }
    if cfg.request_timeout.is_zero() {
        return Err("--request-timeout must be more than 0s".into());
    }
    if cfg.reasoning_effort.is_some()
        && !matches!(cfg.endpoint, Endpoint::Chat | Endpoint::Responses)
    {
        return Err(
            "--reasoning-effort is sent in chat and responses bodies only: give --endpoint chat or responses"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::parse;

    #[test]
    fn defaults_are_the_original_tools() {
        let c = parse(&[]).unwrap();
        let lib = RunConfig::new("http://localhost:8000");
        assert_eq!(
            serde_json::to_value(RunConfig {
                run_id: lib.run_id.clone(),
                ..c.clone()
            })
            .unwrap(),
            serde_json::to_value(&lib).unwrap(),
            "the command line's defaults are RunConfig::new's"
        );
        assert_eq!(c.max_vus, 128);
        assert_eq!(c.duration, Duration::from_secs(120));
        assert_eq!(c.warmup, Duration::from_secs(30));
        assert_eq!(c.num_rates, 10);
        assert_eq!(c.benchmark_kind, BenchmarkKind::Sweep);
        assert_eq!(c.url, "http://localhost:8000");
        assert!(c.ignore_eos);
        assert_eq!(
            c.decode_options,
            Some(TokenizeOptions::fixed(800)),
            "bounded outputs"
        );
        assert_eq!(c.max_error_rate, Some(0.5));
        assert_eq!(
            parse(&["--max-error-rate", "1"]).unwrap().max_error_rate,
            None
        );
        assert_eq!(c.request_timeout, crate::config::DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(c.shutdown_grace, crate::config::DEFAULT_SHUTDOWN_GRACE);
        assert_eq!(c.run_id.len(), 7);
    }

    #[test]
    fn reasoning_effort_is_a_chat_and_responses_setting() {
        assert_eq!(parse(&[]).unwrap().reasoning_effort, None);
        let c = parse(&["--reasoning-effort", "high"]).unwrap();
        assert_eq!(c.reasoning_effort.as_deref(), Some("high"));
        assert!(parse(&["--reasoning-effort", "extreme"]).is_err());
        let err = parse(&["--reasoning-effort", "low", "--endpoint", "completions"]).unwrap_err();
        assert!(err.contains("--endpoint chat"), "{err}");
        assert!(parse(&["--reasoning-effort", "low", "--endpoint", "responses"]).is_ok());
    }

    #[test]
    fn server_metrics_flags() {
        let c = parse(&[]).unwrap();
        assert!(c.server_metrics.is_empty() && !c.no_server_metrics);
        assert_eq!(c.server_metrics_interval, Duration::from_secs(1));
        assert_eq!(c.server_metrics_filter, None);
        let c = parse(&[
            "--server-metrics",
            "http://decode:8000/metrics",
            "--server-metrics",
            "http://gpu:9400/metrics",
            "--server-metrics-interval",
            "250ms",
            "--server-metrics-filter",
            "^node_",
            "--no-server-metrics",
        ])
        .unwrap();
        assert_eq!(c.server_metrics.len(), 2);
        assert!(c.no_server_metrics);
        assert_eq!(c.server_metrics_interval, Duration::from_millis(250));
        assert_eq!(c.server_metrics_filter.as_deref(), Some("^node_"));
        assert!(parse(&["--server-metrics-interval", "0s"]).is_err());
        let bad = parse(&["--server-metrics-filter", "("]).unwrap_err();
        assert!(bad.contains("--server-metrics-filter"), "{bad}");
    }

    #[test]
    fn short_forms_and_rates() {
        let c = parse(&[
            "-m",
            "8",
            "-d",
            "5s",
            "-b",
            "rate",
            "-r",
            "1,2.5",
            "-r",
            "4",
            "-w",
            "0s",
            "-u",
            "http://h:1/p",
            "-n",
        ])
        .unwrap();
        assert_eq!(c.max_vus, 8);
        assert_eq!(c.duration, Duration::from_secs(5));
        assert_eq!(c.rates, Some(vec![1.0, 2.5, 4.0]));
        assert_eq!(c.benchmark_kind, BenchmarkKind::Rate);
        assert!(c.warmup.is_zero());
        assert!(c.no_console);
        assert_eq!(c.url, "http://h:1/p");
    }

    #[test]
    fn bad_values_are_messages() {
        for (args, needle) in [
            (vec!["-b", "optimum"], "benchmark-kind"),
            (vec!["-d", "soon"], "not a duration"),
            (vec!["-m", "0"], "max-vus"),
            (vec!["-b", "rate"], "needs --rates"),
            (vec!["-b", "rate", "-r", "-1"], "positive"),
            (vec!["--extra-meta", "novalue"], "key=value"),
            (vec!["--decode-options", "num_tokens=x"], "decode-options"),
            (
                vec!["-b", "sweep", "-r", "2,4"],
                "give -b rate, or leave -b out",
            ),
            (
                vec!["-b", "throughput", "-r", "2"],
                "--benchmark-kind is throughput",
            ),
            (vec!["--arrival", "uniform"], "--arrival"),
            (vec!["--max-error-rate", "150%"], "between 0 and 1"),
            (vec!["--threshold", "p97(ttft)<1"], "unknown aggregation"),
            (vec!["--slo", "tbt=5ms"], "--slo: unknown objective"),
            (vec!["-d", "10s", "--ramp-up", "10s"], "--ramp-up"),
            (
                vec!["--arrival", "gamma", "--burstiness", "0"],
                "--burstiness",
            ),
        ] {
            let err = parse(&args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn rates_alone_run_as_the_rate_benchmark() {
        let c = parse(&["-r", "2,4"]).unwrap();
        assert_eq!(c.benchmark_kind, BenchmarkKind::Rate);
        assert_eq!(c.rates, Some(vec![2.0, 4.0]));
        // The original tool's spelling is accepted too, in any case.
        let c = parse(&["-b", "Rate", "-r", "1"]).unwrap();
        assert_eq!(c.benchmark_kind, BenchmarkKind::Rate);
        // With a profile (its sweep is the default kind, not an explicit one).
        let c = parse(&["--profile", "chat", "-r", "3"]).unwrap();
        assert_eq!(c.benchmark_kind, BenchmarkKind::Rate);
    }

    #[test]
    fn run_id_is_any_text_and_names_the_file_when_given() {
        let c = parse(&["--run-id", "llama 8B / tp=2"]).unwrap();
        assert_eq!(c.run_id, "llama 8B / tp=2");
        assert!(c.run_id_names_file);
        assert_eq!(c.request_id_prefix(), "llama_8B___tp_2");
        assert!(!parse(&[]).unwrap().run_id_names_file);
    }
}
