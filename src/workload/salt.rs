//! The cache salt (`--cache-salt`): synthetic prompts depend only on `--seed`, so two runs
//! against one server would send the same prompts and the second would be served from the
//! first one's prefix cache. Each prompt starts instead with a few words drawn from the run's
//! salt, which makes its first tokens new to the server while its length stays exact (the salt
//! is part of the text that is cut to the target) and the rest of it stays the seed's.

use rand::rngs::StdRng;
use rand::SeedableRng;
use tokenizers::Tokenizer;

use super::{cut, synthetic};

/// Tokens of a prompt's salt: enough words (~8 bits each) that two salts do not meet, too few
/// to fill one prefix-cache block (vLLM's are 16 tokens), so prompts that share a salt on
/// purpose (a trace's shared prefix) gain no hit from it alone.
pub const SALT_TOKENS: u64 = 8;

/// Words drawn for a salt before it is cut to [`SALT_TOKENS`] (every word is a token or more).
const SALT_WORDS: usize = 12;

/// A stable 64-bit hash of the salt's text (FNV-1a), for seeding.
pub fn hash(salt: &str) -> u64 {
    salt.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SplitMix64's finalizer: a well-mixed seed from structured input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The salts of prompts `keys` (prompts with the same key get the same salt): a phrase of
/// exactly [`SALT_TOKENS`] tokens each, drawn from the run's `salt`, the `seed` and the key.
pub fn heads(tok: &Tokenizer, salt: &str, seed: u64, keys: &[u64]) -> Result<Vec<String>, String> {
    let base = mix(hash(salt) ^ mix(seed));
    let phrases: Vec<String> = keys
        .iter()
        .map(|&k| synthetic::phrase(&mut StdRng::seed_from_u64(mix(base ^ k)), SALT_WORDS))
        .collect();
    let texts: Vec<&str> = phrases.iter().map(String::as_str).collect();
    let targets = vec![SALT_TOKENS; keys.len()];
    let cuts = cut::cut_batch(tok, &texts, &targets, |_, pos| pos)?;
    Ok(phrases
        .iter()
        .zip(cuts)
        .map(|(p, c)| match c {
            Some(c) => p[..c.len].to_string(),
            // Shorter than the target (not with word-level tokenizers): the whole phrase.
            None => p.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::tokenizer::tests::llama3_shaped;
    use crate::workload::tokenizer::{builtin, count_tokens};

    #[test]
    fn salts_are_exact_seeded_and_distinct() {
        for tok in [builtin(), &llama3_shaped()] {
            let keys: Vec<u64> = (0..200).collect();
            let a = heads(tok, "run-a", 1, &keys).unwrap();
            assert!(
                a.iter().all(|h| count_tokens(tok, h) == SALT_TOKENS),
                "{a:?}"
            );
            assert_eq!(a, heads(tok, "run-a", 1, &keys).unwrap());
            let distinct: std::collections::HashSet<_> = a.iter().collect();
            assert_eq!(distinct.len(), a.len(), "one salt per key");
            let b = heads(tok, "run-b", 1, &keys).unwrap();
            let c = heads(tok, "run-a", 2, &keys).unwrap();
            for i in 0..keys.len() {
                assert_ne!(a[i], b[i], "another salt");
                assert_ne!(a[i], c[i], "another seed");
            }
            assert_eq!(heads(tok, "run-a", 1, &[5, 5]).unwrap()[0], a[5]);
        }
    }
}
