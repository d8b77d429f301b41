//! Trace replay (`--trace FILE.jsonl`): per-request arrival times and input/output lengths
//! from a recorded trace, such as Mooncake's (`{"timestamp": ms, "input_length": n,
//! "output_length": n, "hash_ids": [..]}` a line). Parsing and prompt text are pure.
//!
//! Prefix sharing: Mooncake's `hash_ids` name the trace's 512-token blocks; two requests whose
//! prompts start with the same ids started with the same tokens. Each id here stands for one
//! seeded block of synthetic text, so requests that shared a prefix in the trace share it again
//! (and a server's prefix cache sees the same hits); the rest of a prompt is its own text.

use std::collections::HashMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Deserialize;
use sinks::event::Nanos;

use super::synthetic;

/// Words of synthetic text that stand for one trace block (Mooncake's blocks are 512 tokens;
/// English-like text runs about 1.3 tokens a word, so a block's text is at least that long).
const BLOCK_WORDS: usize = 512;

/// One request of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEntry {
    /// From the trace's first request.
    pub offset_ns: Nanos,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub hash_ids: Vec<u64>,
}

/// A line as written: Mooncake's keys, or the more explicit ones.
#[derive(Deserialize)]
struct Line {
    /// Milliseconds (Mooncake); `timestamp_ms` is the same.
    #[serde(alias = "timestamp_ms")]
    timestamp: f64,
    #[serde(alias = "input_tokens")]
    input_length: u64,
    #[serde(alias = "output_tokens")]
    output_length: u64,
    #[serde(default)]
    hash_ids: Vec<u64>,
}

/// Reads a JSON Lines trace; requests come out in time order, offsets from the first one.
pub fn load(path: &Path) -> Result<Vec<TraceEntry>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--trace {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("--trace {}: {e}", path.display()))
}

/// [`load`] on the file's text.
pub fn parse(text: &str) -> Result<Vec<TraceEntry>, String> {
    let mut lines = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw).map_err(|e| {
            format!(
                "line {}: {e} (expected {{\"timestamp\": ms, \"input_length\": n, \"output_length\": n}})",
                n + 1
            )
        })?;
        if !(line.timestamp.is_finite() && line.timestamp >= 0.0) {
            return Err(format!(
                "line {}: timestamp must be a non-negative number of milliseconds",
                n + 1
            ));
        }
        if line.input_length == 0 || line.output_length == 0 {
            return Err(format!(
                "line {}: input_length and output_length must be at least 1",
                n + 1
            ));
        }
        lines.push(line);
    }
    if lines.is_empty() {
        return Err("the trace has no requests".into());
    }
    // Traces are recorded in time order; a merged one may not be. Stable: ties keep file order.
    lines.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
    let first = lines[0].timestamp;
    Ok(lines
        .into_iter()
        .map(|l| TraceEntry {
            offset_ns: ((l.timestamp - first) * 1e6).round() as Nanos,
            input_tokens: l.input_length,
            output_tokens: l.output_length,
            hash_ids: l.hash_ids,
        })
        .collect())
}

/// Arrival offsets replayed `speedup` times faster.
pub fn arrivals(entries: &[TraceEntry], speedup: f64) -> Vec<Nanos> {
    entries
        .iter()
        .map(|e| (e.offset_ns as f64 / speedup).round() as Nanos)
        .collect()
}

/// Text long enough for every entry's prompt: its blocks' shared text, then text of its own.
/// Cutting it to `input_tokens` (a prefix) keeps the shared blocks intact.
pub fn texts(entries: &[TraceEntry], seed: u64) -> Vec<String> {
    let mut blocks: HashMap<u64, String> = HashMap::new();
    let mut rng = StdRng::seed_from_u64(seed);
    entries
        .iter()
        .map(|e| {
            let mut text = String::new();
            for id in &e.hash_ids {
                let block = blocks.entry(*id).or_insert_with(|| {
                    let mut block_rng = StdRng::seed_from_u64(seed ^ id.rotate_left(17));
                    synthetic::text(&mut block_rng, BLOCK_WORDS)
                });
                text.push_str(block);
                text.push('\n');
            }
            text.push_str(&synthetic::text(
                &mut rng,
                synthetic::words_for(e.input_tokens),
            ));
            text
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOONCAKE: &str = r#"{"timestamp": 0, "input_length": 6755, "output_length": 500, "hash_ids": [0, 1, 2]}
{"timestamp": 27482, "input_length": 7319, "output_length": 490, "hash_ids": [0, 1, 3]}

{"timestamp_ms": 3000.5, "input_tokens": 10, "output_tokens": 2}
"#;

    #[test]
    fn parses_mooncake_lines_in_time_order() {
        let t = parse(MOONCAKE).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].offset_ns, 0);
        assert_eq!(t[1].offset_ns, 3_000_500_000);
        assert_eq!(t[1].input_tokens, 10);
        assert!(t[1].hash_ids.is_empty());
        assert_eq!(t[2].offset_ns, 27_482_000_000);
        assert_eq!(t[2].hash_ids, [0, 1, 3]);
        assert_eq!(arrivals(&t, 2.0), [0, 1_500_250_000, 13_741_000_000]);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let err = parse("{\"timestamp\": 1, \"input_length\": 5, \"output_length\": 1}\nnope\n")
            .unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err =
            parse("{\"timestamp\": 1, \"input_length\": 0, \"output_length\": 1}").unwrap_err();
        assert!(err.contains("at least 1"), "{err}");
        let err =
            parse("{\"timestamp\": -1, \"input_length\": 3, \"output_length\": 1}").unwrap_err();
        assert!(err.contains("non-negative"), "{err}");
        assert!(parse("\n\n").unwrap_err().contains("no requests"));
    }

    #[test]
    fn shared_hash_ids_give_shared_prefixes() {
        let t = parse(MOONCAKE).unwrap();
        let x = texts(&t, 7);
        // Entries 0 and 2 share blocks 0 and 1: their texts start alike, then differ.
        let two_blocks = x[0].split('\n').count().min(x[2].split('\n').count());
        assert!(two_blocks > 2);
        let common = x[0]
            .bytes()
            .zip(x[2].bytes())
            .take_while(|(a, b)| a == b)
            .count();
        assert!(common > 2 * BLOCK_WORDS, "shared prefix of {common} bytes");
        assert!(common < x[0].len().min(x[2].len()));
        // The entry without blocks shares nothing with them, and texts are seeded.
        assert_ne!(x[1].get(..20), x[0].get(..20));
        assert_eq!(texts(&t, 7), x);
    }
}
