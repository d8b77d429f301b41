//! Counters whose values live elsewhere — the trace sink's atomics, the kernel's account of our
//! CPU time — are read when the registry is gathered, never copied into a counter of our own: a
//! copy is updated by "add what changed since the last read", and two gatherers at once (a
//! scrape of `/metrics` and a Pushgateway push) would both add the same change.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, LabelPair, Metric, MetricFamily, MetricType};

/// Reads the current values: `(label value, value)` for each series (the label value is
/// ignored when the counter has no label).
type Read = Box<dyn Fn() -> Vec<(String, f64)> + Send + Sync>;

/// A counter (or counter family with one label) read at gather time.
pub struct ReadCounter {
    desc: Desc,
    label: Option<&'static str>,
    read: Read,
}

impl ReadCounter {
    pub fn new(
        name: &str,
        help: &str,
        label: Option<&'static str>,
        read: Read,
    ) -> prometheus::Result<ReadCounter> {
        let labels = label.iter().map(|l| l.to_string()).collect();
        let desc = Desc::new(name.into(), help.into(), labels, Default::default())?;
        Ok(ReadCounter { desc, label, read })
    }

    pub fn name(&self) -> &str {
        &self.desc.fq_name
    }

    fn family(&self) -> MetricFamily {
        let metrics = (self.read)()
            .into_iter()
            .map(|(label_value, value)| {
                let mut m = Metric::default();
                if let Some(name) = self.label {
                    let mut pair = LabelPair::default();
                    pair.set_name(name.into());
                    pair.set_value(label_value);
                    m.set_label(vec![pair]);
                }
                let mut c = Counter::default();
                c.set_value(value);
                m.set_counter(c);
                m
            })
            .collect();
        let mut family = MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(MetricType::COUNTER);
        family.set_metric(metrics);
        family
    }
}

impl Collector for ReadCounter {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        vec![self.family()]
    }
}

/// The `process_*` collector, with `process_cpu_seconds_total` read at 1/100 s resolution
/// instead of the prometheus crate's whole seconds (a short run's CPU would read 0 or 1).
#[cfg(target_os = "linux")]
pub struct Process {
    inner: prometheus::process_collector::ProcessCollector,
    cpu: ReadCounter,
}

#[cfg(target_os = "linux")]
impl Process {
    pub fn new() -> prometheus::Result<Process> {
        Ok(Process {
            inner: prometheus::process_collector::ProcessCollector::for_self(),
            // The name and help the crate's collector registers, so its descriptor stands.
            cpu: ReadCounter::new(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                None,
                Box::new(|| vec![(String::new(), crate::generator::process_cpu_seconds())]),
            )?,
        })
    }
}

#[cfg(target_os = "linux")]
impl Collector for Process {
    fn desc(&self) -> Vec<&Desc> {
        self.inner.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families: Vec<MetricFamily> = self
            .inner
            .collect()
            .into_iter()
            .filter(|f| f.name() != self.cpu.name())
            .collect();
        families.push(self.cpu.family());
        families
    }
}
