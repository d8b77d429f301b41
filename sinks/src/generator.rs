//! The generator's own health during a step (pure): its CPU use, the lag of its event loops and
//! how late it sent requests against their schedule. When it was the limiting factor, the step
//! is flagged `bound`, so a figure that measured the benchmarker rather than the server is never
//! taken at face value.

use serde::{Deserialize, Serialize};

/// Linux reports process times in clock ticks of 1/100 s (USER_HZ), whatever the kernel's HZ.
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds of this process, from `/proc/self/stat` (1/100 s resolution); 0
/// where unavailable.
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

/// Event-loop lag beyond this (p99 over the step's samples) means the workers were too busy to
/// stamp tokens on time.
pub const LAG_P99_LIMIT_MS: f64 = 10.0;
/// Open loop: sending later than this after the scheduled time (p99) means the generator could
/// not keep up with its own schedule.
pub const LATENESS_P99_LIMIT_MS: f64 = 5.0;
/// Process CPU above this share of the machine's cores.
pub const CPU_LIMIT: f64 = 0.9;

/// Between two reasons in [`GeneratorHealth::reasons`].
pub const REASON_SEPARATOR: &str = "; ";

/// What the coordinator measured of the generator during a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorStats {
    /// User + system CPU of the whole process over the step (it includes an in-process
    /// simulated server, as with `--demo`).
    pub cpu_seconds: f64,
    /// Wall time of the step.
    pub wall_seconds: f64,
    pub cores: u32,
    /// Event-loop lag of the worker arbiters: the worst of any worker in each sampling window.
    pub lag_ms_p99: f64,
    pub lag_ms_max: f64,
    /// Virtual users whose task died (a panic outside a request) and were started again.
    pub restarted_users: u64,
}

/// The generator's health in a step's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneratorHealth {
    pub cpu_seconds: f64,
    /// `cpu_seconds / (wall_seconds × cores)`.
    pub cpu_utilization: f64,
    pub event_loop_lag_ms_p99: f64,
    pub event_loop_lag_ms_max: f64,
    /// Open loop without queueing: p99 of `sent_at − scheduled_at`; null otherwise.
    pub schedule_lateness_ms_p99: Option<f64>,
    /// The generator limited this step; `reasons` says how.
    pub bound: bool,
    /// Which limits were exceeded, with the values, joined with "; "; null when none was. A
    /// string, not a list: a step entry holds no list, so that the original tool's dashboard
    /// (pandas, one row per step) reads it.
    pub reasons: Option<String>,
    /// Virtual users restarted after their task died (a bug of ours, never the server's); 0
    /// in files written before it was counted.
    #[serde(default)]
    pub restarted_users: u64,
}

impl GeneratorHealth {
    /// `lateness_ms_p99`: only when it measures the generator alone (open loop, no arrival
    /// waited for a slot).
    pub fn judge(stats: GeneratorStats, lateness_ms_p99: Option<f64>) -> GeneratorHealth {
        let capacity = stats.wall_seconds * f64::from(stats.cores.max(1));
        let cpu_utilization = if capacity > 0.0 {
            stats.cpu_seconds / capacity
        } else {
            0.0
        };
        let mut reasons = Vec::new();
        if stats.lag_ms_p99 > LAG_P99_LIMIT_MS {
            reasons.push(format!(
                "event-loop lag p99 {:.1} ms > {LAG_P99_LIMIT_MS} ms",
                stats.lag_ms_p99
            ));
        }
        if let Some(late) = lateness_ms_p99.filter(|l| *l > LATENESS_P99_LIMIT_MS) {
            reasons.push(format!(
                "requests sent {late:.1} ms late (p99) against the schedule > {LATENESS_P99_LIMIT_MS} ms"
            ));
        }
        if cpu_utilization > CPU_LIMIT {
            reasons.push(format!(
                "process CPU {:.0}% of {} cores > {:.0}%",
                cpu_utilization * 100.0,
                stats.cores,
                CPU_LIMIT * 100.0
            ));
        }
        GeneratorHealth {
            cpu_seconds: stats.cpu_seconds,
            cpu_utilization,
            event_loop_lag_ms_p99: stats.lag_ms_p99,
            event_loop_lag_ms_max: stats.lag_ms_max,
            schedule_lateness_ms_p99: lateness_ms_p99,
            bound: !reasons.is_empty(),
            reasons: (!reasons.is_empty()).then(|| reasons.join(REASON_SEPARATOR)),
            restarted_users: stats.restarted_users,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(cpu: f64, lag_p99: f64) -> GeneratorStats {
        GeneratorStats {
            cpu_seconds: cpu,
            wall_seconds: 10.0,
            cores: 2,
            lag_ms_p99: lag_p99,
            lag_ms_max: lag_p99 * 2.0,
            restarted_users: 0,
        }
    }

    #[test]
    fn a_healthy_generator_is_not_bound() {
        let h = GeneratorHealth::judge(stats(2.0, 1.0), Some(0.8));
        assert!(!h.bound, "{:?}", h.reasons);
        assert_eq!(h.reasons, None);
        assert!((h.cpu_utilization - 0.1).abs() < 1e-12);
    }

    #[test]
    fn each_limit_flags_the_step() {
        let reasons = |h: &GeneratorHealth| h.reasons.clone().unwrap_or_default();
        let lag = GeneratorHealth::judge(stats(1.0, 25.0), None);
        assert!(lag.bound && reasons(&lag).starts_with("event-loop lag"));
        let late = GeneratorHealth::judge(stats(1.0, 1.0), Some(40.0));
        assert!(late.bound && reasons(&late).contains("late"), "{late:?}");
        let cpu = GeneratorHealth::judge(stats(19.0, 1.0), None);
        assert!(cpu.bound && reasons(&cpu).starts_with("process CPU 95%"));
        let all = GeneratorHealth::judge(stats(19.0, 25.0), Some(40.0));
        assert_eq!(reasons(&all).split(REASON_SEPARATOR).count(), 3);
    }

    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert_eq!(parse_cpu_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn zero_wall_time_is_not_a_division_by_zero() {
        let h = GeneratorHealth::judge(GeneratorStats::default(), None);
        assert_eq!(h.cpu_utilization, 0.0);
        assert!(!h.bound);
    }
}
