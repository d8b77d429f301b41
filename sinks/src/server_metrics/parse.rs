//! One scrape's text exposition → families of series (pure).

use prom_text_format_parser::{Type, ValueType};

use super::aliases::Kind;

/// A series' value in one scrape.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(f64),
    /// Cumulative bucket counts by upper bound (`le`, ascending, `+Inf` last), count and sum.
    Histogram {
        buckets: Vec<(f64, f64)>,
        count: f64,
        sum: f64,
    },
}

/// One series: its labels (sorted, `le` left out, `k="v"` joined with `,`) and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: String,
    pub value: Value,
}

/// A metric family: its name (a histogram's without `_bucket`), kind and series.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: Kind,
    pub series: Vec<Series>,
}

/// What one endpoint answered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    pub families: Vec<Family>,
}

impl Scrape {
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }
}

fn number(s: &str) -> Option<f64> {
    // Go's and Python's spellings: `+Inf`, `-Inf`, `NaN`; Rust parses them case-insensitively.
    s.trim().parse::<f64>().ok()
}

/// Parses a Prometheus text exposition. A text that does not parse, or holds no metric at all
/// (an HTML page, an error text, JSON), is not Prometheus: an error. A family whose lines do not
/// assemble (e.g. a `_count` without its histogram) is left out; the others are kept.
pub fn parse(text: &str) -> Result<Scrape, String> {
    let (metrics, error) = prom_text_format_parser::parse_scrape(text);
    let mut families = Vec::with_capacity(metrics.len());
    for m in metrics {
        let kind = match m.kind {
            Type::Counter => Kind::Counter,
            Type::Histogram => Kind::Histogram,
            // Summaries' quantiles are the server's own window: only their rows as gauges.
            Type::Gauge | Type::Untyped | Type::Summary => Kind::Gauge,
        };
        let mut series: Vec<Series> = Vec::new();
        for s in &m.samples {
            let Some(v) = number(&s.value.value) else {
                continue;
            };
            let mut le = None;
            let mut labels: Vec<(&str, &str)> = Vec::with_capacity(s.labels.len());
            for l in s.labels.iter() {
                if kind == Kind::Histogram && l.key == "le" {
                    le = number(&l.value);
                } else if !(m.kind == Type::Summary && l.key == "quantile") {
                    labels.push((&l.key, &l.value));
                }
            }
            if m.kind == Type::Summary && s.value.value_type != ValueType::Sample {
                continue;
            }
            labels.sort_unstable();
            let labels = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect::<Vec<_>>()
                .join(",");
            if kind != Kind::Histogram {
                series.push(Series {
                    labels,
                    value: Value::Scalar(v),
                });
                continue;
            }
            let idx = match series.iter().position(|x| x.labels == labels) {
                Some(i) => i,
                None => {
                    series.push(Series {
                        labels,
                        value: Value::Histogram {
                            buckets: Vec::new(),
                            count: 0.0,
                            sum: 0.0,
                        },
                    });
                    series.len() - 1
                }
            };
            if let Value::Histogram {
                buckets,
                count,
                sum,
            } = &mut series[idx].value
            {
                match (s.value.value_type, le) {
                    (ValueType::Sample, Some(le)) => buckets.push((le, v)),
                    (ValueType::Count, _) => *count = v,
                    (ValueType::Sum, _) => *sum = v,
                    _ => {}
                }
            }
        }
        for s in &mut series {
            if let Value::Histogram { buckets, .. } = &mut s.value {
                buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
        families.push(Family {
            name: m.name,
            kind,
            series,
        });
    }
    if families.is_empty() {
        return Err(match error {
            Some(e) => format!("not a Prometheus exposition: {e:?}"),
            None => "not a Prometheus exposition: no metric in it".into(),
        });
    }
    Ok(Scrape { families })
}
