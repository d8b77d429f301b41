//! What the coordinator measures of the generator itself during a step: process CPU time and the
//! worker arbiters' event-loop lag (sampled with the saturation checks).

use sinks::generator::GeneratorStats;
use sinks::prometheus::LiveGauges;
use sinks::stats::LatencyHistogram;

/// Linux reports process times in clock ticks of 1/100 s (USER_HZ), whatever the kernel's HZ.
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds of this process, from `/proc/self/stat`; 0 where unavailable.
pub fn process_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| parse_cpu_ticks(&s))
        .map_or(0.0, |ticks| ticks as f64 / TICKS_PER_SECOND)
}

/// utime + stime (fields 14 and 15); the command name (field 2) may hold spaces and parentheses,
/// so fields are counted after its last ')'.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) is index 11 and stime (15) index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

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
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert_eq!(parse_cpu_ticks("1 (x) S 1 2"), None);
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
