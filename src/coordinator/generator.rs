//! What the coordinator measures of the generator itself during a step: process CPU time and the
//! worker arbiters' event-loop lag (sampled with the saturation checks).

use sinks::generator::GeneratorStats;
use sinks::prometheus::LiveGauges;
use sinks::stats::LatencyHistogram;

pub use sinks::generator::process_cpu_seconds;

/// One step's measurements of the generator.
pub struct GeneratorProbe {
    cpu_start: f64,
    lag: LatencyHistogram,
    cores: u32,
}

impl GeneratorProbe {
    /// Starts the step's first lag window now: what the workers lagged before is not the step's.
    pub fn start(gauges: &LiveGauges) -> Self {
        gauges.take_worst_lag();
        GeneratorProbe {
            cpu_start: process_cpu_seconds(),
            lag: LatencyHistogram::new(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        }
    }

    /// Records the worst event-loop lag any worker had since the previous sample.
    pub fn sample(&mut self, gauges: &LiveGauges) {
        self.lag.record_ns((gauges.take_worst_lag() * 1e9) as u64);
    }

    pub fn finish(&self, wall_seconds: f64) -> GeneratorStats {
        let lag = self.lag.summary();
        GeneratorStats {
            cpu_seconds: (process_cpu_seconds() - self.cpu_start).max(0.0),
            wall_seconds,
            cores: self.cores,
            lag_ms_p99: lag.p99,
            lag_ms_max: lag.max,
            restarted_users: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lag_spike_between_samples_is_seen() {
        let gauges = LiveGauges::new(2);
        gauges.set_lag(0, std::time::Duration::from_secs(1)); // before the step
        let mut probe = GeneratorProbe::start(&gauges);
        gauges.set_lag(1, std::time::Duration::from_millis(120));
        gauges.set_lag(1, std::time::Duration::from_micros(200));
        probe.sample(&gauges);
        probe.sample(&gauges);
        let stats = probe.finish(1.0);
        assert!(
            (119.0..130.0).contains(&stats.lag_ms_max),
            "the spike, not what came before the step: {stats:?}"
        );
    }

    #[test]
    fn this_process_uses_cpu() {
        let start = process_cpu_seconds();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(60) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(
            process_cpu_seconds() - start >= 0.02,
            "60 ms of busy loop shows as CPU time"
        );
    }
}
