//! `--csv`: one row per measured step with every figure of the results document (nested keys
//! flattened with `.`, e.g. `time_to_first_token_ms.p99`), histograms left out (they are
//! binary). Columns are the union over the steps, in first-seen order, so an error class seen
//! in one step only still gets its column (empty elsewhere).

use serde_json::Value;
use sinks::json::StepResult;

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Null => out.push((prefix.to_string(), String::new())),
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// Columns that come first, in this order; the rest follow alphabetically.
const LEADING: [&str; 10] = [
    "step",
    "id",
    "kind",
    "executor_type",
    "offered_rate",
    "achieved_rate",
    "request_rate",
    "token_throughput_secs",
    "successful_requests",
    "failed_requests",
];

/// RFC 4180 quoting: only when needed.
fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV text, header first.
pub fn render(steps: &[StepResult]) -> String {
    let rows: Vec<Vec<(String, String)>> = steps
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.remove("histograms");
                o.remove("reasoning_histograms");
            }
            let mut cells = Vec::new();
            flatten("", &v, &mut cells);
            cells
        })
        .collect();
    let mut columns: Vec<&str> = Vec::new();
    for row in &rows {
        for (k, _) in row {
            if !columns.contains(&k.as_str()) {
                columns.push(k);
            }
        }
    }
    // serde_json orders keys alphabetically: put the step's identity and headline figures first.
    let mut lead: Vec<&str> = LEADING
        .iter()
        .copied()
        .filter(|c| columns.contains(c))
        .collect();
    columns.retain(|c| !LEADING.contains(c));
    lead.append(&mut columns);
    let columns = lead;
    let mut out = columns
        .iter()
        .map(|c| cell(c))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for row in &rows {
        let line: Vec<String> = columns
            .iter()
            .map(|c| {
                row.iter()
                    .find(|(k, _)| k == c)
                    .map(|(_, v)| cell(v))
                    .unwrap_or_default()
            })
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_and_quoting() {
        let v = serde_json::json!({"a": {"b": 1.5, "c": null}, "d": "x,\"y\""});
        let mut out = Vec::new();
        flatten("", &v, &mut out);
        assert_eq!(
            out,
            vec![
                ("a.b".to_string(), "1.5".to_string()),
                ("a.c".to_string(), String::new()),
                ("d".to_string(), "x,\"y\"".to_string())
            ]
        );
        assert_eq!(cell("x,\"y\""), "\"x,\"\"y\"\"\"");
        assert_eq!(cell("plain"), "plain");
    }
}
