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
    pub fn start() -> Self {
        GeneratorProbe {
            cpu_start: process_cpu_seconds(),
            lag: LatencyHistogram::new(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        }
    }

    /// Records the worst worker's current event-loop lag.
    pub fn sample(&mut self, gauges: &LiveGauges) {
        let worst = (0..gauges.workers())
            .map(|w| gauges.lag_seconds(w))
            .fold(0.0, f64::max);
        self.lag.record_ns((worst * 1e9) as u64);
    }

    pub fn finish(&self, wall_seconds: f64) -> GeneratorStats {
        let lag = self.lag.summary();
        GeneratorStats {
            cpu_seconds: (process_cpu_seconds() - self.cpu_start).max(0.0),
            wall_seconds,
            cores: self.cores,
            lag_ms_p99: lag.p99,
            lag_ms_max: lag.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
