//! Cutting text to an exact number of tokens.
//!
//! Encode once, cut at the end of token `n - 1`, and verify by re-encoding the prefix: the cut
//! is exact whenever it falls on a pre-tokenizer boundary (tokens never cross those). When the
//! cut falls inside a word, the partial word may re-tokenize into a different number of
//! tokens; then nearby token boundaries are tried, nearest first, until one gives exactly `n`.

use tokenizers::{Encoding, Tokenizer};

use super::tokenizer::count_tokens;

/// Token positions tried on each side of the first guess when it is off.
const FIXUP_RADIUS: usize = 8;

/// A prefix of a text: its length in bytes and its true token count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cut {
    pub len: usize,
    pub tokens: u64,
}

/// Cuts `texts[i]` to `targets[i]` tokens. `None` for texts shorter than their target; a cut
/// whose `tokens` differs from the target when no nearby boundary is exact (pathological).
///
/// `adjust(i, pos)` may move a candidate cut position of text `i` (e.g. off a message
/// separator; the result is floored to a char boundary); counts are always taken after
/// adjusting, so results stay truthful.
///
/// Two batched (parallel) encodings, of heads barely longer than the targets, do all the work
/// in the common case; only off-target first guesses are fixed up one by one.
pub(crate) fn cut_batch(
    tok: &Tokenizer,
    texts: &[&str],
    targets: &[u64],
    adjust: impl Fn(usize, usize) -> usize,
) -> Result<Vec<Option<Cut>>, String> {
    let encodings = head_encodings(tok, texts, targets)?;
    let mut out: Vec<Option<Cut>> = vec![None; texts.len()];
    // (text index, guessed cut position) for texts longer than their target.
    let mut pending: Vec<(usize, usize)> = Vec::new();
    for (i, enc) in encodings.iter().enumerate() {
        let n = usize::try_from(targets[i]).unwrap_or(usize::MAX);
        if n == 0 {
            out[i] = Some(Cut { len: 0, tokens: 0 });
        } else if enc.len() == n {
            out[i] = Some(Cut {
                len: texts[i].len(),
                tokens: targets[i],
            });
        } else if enc.len() > n {
            let end = enc.get_offsets()[n - 1].1;
            let guess =
                floor_char_boundary(texts[i], adjust(i, floor_char_boundary(texts[i], end)));
            pending.push((i, guess));
        }
    }
    let prefixes: Vec<&str> = pending.iter().map(|&(i, pos)| &texts[i][..pos]).collect();
    let counts = tok
        .encode_batch_fast(prefixes, false)
        .map_err(|e| format!("tokenizing failed: {e}"))?;
    for (&(i, pos), enc) in pending.iter().zip(&counts) {
        let first = Cut {
            len: pos,
            tokens: enc.len() as u64,
        };
        out[i] = Some(if first.tokens == targets[i] {
            first
        } else {
            fix_up(tok, texts[i], &encodings[i], targets[i], first, |p| {
                adjust(i, p)
            })
        });
    }
    Ok(out)
}

/// Bytes of text encoded per target token at first (English runs at 4–5 bytes per token);
/// texts whose head turns out too short are encoded again with 4× more.
const HEAD_BYTES_PER_TOKEN: usize = 8;
/// Tokens wanted beyond the target in a head's encoding: the last pre-token of a cut text may
/// tokenize differently, and `fix_up` looks `FIXUP_RADIUS` tokens around the target.
const HEAD_MARGIN: usize = FIXUP_RADIUS + 2;

/// Encodings (with offsets) of each text's head, long enough to hold its target plus a margin,
/// or of the whole text. A 50-token prompt cut from a 3,000-token conversation encodes about
/// 60 tokens, not 3,000: the offsets of tokens well before the end of a head are those of the
/// whole text, and every cut is verified by re-encoding anyway.
fn head_encodings(
    tok: &Tokenizer,
    texts: &[&str],
    targets: &[u64],
) -> Result<Vec<Encoding>, String> {
    let want = |i: usize| {
        usize::try_from(targets[i])
            .unwrap_or(usize::MAX)
            .saturating_add(HEAD_MARGIN)
    };
    let mut heads: Vec<usize> = (0..texts.len())
        .map(|i| floor_char_boundary(texts[i], want(i).saturating_mul(HEAD_BYTES_PER_TOKEN)))
        .collect();
    let mut encodings: Vec<Option<Encoding>> = vec![None; texts.len()];
    let mut todo: Vec<usize> = (0..texts.len()).collect();
    while !todo.is_empty() {
        let batch: Vec<&str> = todo.iter().map(|&i| &texts[i][..heads[i]]).collect();
        let encoded = tok
            .encode_batch(batch, false)
            .map_err(|e| format!("tokenizing failed: {e}"))?;
        let mut again = Vec::new();
        for (i, enc) in todo.into_iter().zip(encoded) {
            if heads[i] == texts[i].len() || enc.len() >= want(i) {
                encodings[i] = Some(enc);
            } else {
                heads[i] = floor_char_boundary(texts[i], heads[i].saturating_mul(4));
                again.push(i);
            }
        }
        todo = again;
    }
    Ok(encodings.into_iter().flatten().collect())
}

/// Tries the token boundaries around token `n` (nearest first) for an exact cut; otherwise
/// the closest one seen (ties: the shorter), starting from `first`.
fn fix_up(
    tok: &Tokenizer,
    text: &str,
    enc: &Encoding,
    n: u64,
    first: Cut,
    adjust: impl Fn(usize) -> usize,
) -> Cut {
    let mut best = first;
    for pos in candidates(text, enc.get_offsets(), n as usize) {
        let len = floor_char_boundary(text, adjust(pos));
        let cut = Cut {
            len,
            tokens: count_tokens(tok, &text[..len]),
        };
        if cut.tokens == n {
            return cut;
        }
        if closer(cut, best, n) {
            best = cut;
        }
    }
    best
}

fn closer(a: Cut, b: Cut, n: u64) -> bool {
    let (da, db) = (a.tokens.abs_diff(n), b.tokens.abs_diff(n));
    da < db || (da == db && a.tokens < b.tokens)
}

/// Byte positions where a prefix of about `n` tokens may end: the ends and starts of the
/// tokens around index `n - 1`, nearest first, on char boundaries, without repeats.
fn candidates(text: &str, offsets: &[(usize, usize)], n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let last = n.saturating_sub(1);
    for d in 0..=FIXUP_RADIUS {
        for idx in [last.checked_sub(d), last.checked_add(d)]
            .into_iter()
            .flatten()
        {
            let Some(&(start, end)) = offsets.get(idx) else {
                continue;
            };
            for pos in [end, start] {
                let pos = floor_char_boundary(text, pos);
                if !out.contains(&pos) {
                    out.push(pos);
                }
            }
        }
    }
    out
}

/// The largest char boundary ≤ `pos` (offsets from byte-level tokens can fall inside a
/// multi-byte character).
pub(crate) fn floor_char_boundary(text: &str, pos: usize) -> usize {
    let mut pos = pos.min(text.len());
    while !text.is_char_boundary(pos) {
        pos -= 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::tokenizer::builtin;

    #[test]
    fn char_boundaries() {
        let s = "aé€b";
        assert_eq!(floor_char_boundary(s, 2), 1);
        assert_eq!(floor_char_boundary(s, 5), 3);
        assert_eq!(floor_char_boundary(s, 6), 6);
        assert_eq!(floor_char_boundary(s, 99), s.len());
    }

    #[test]
    fn candidates_are_nearest_first_and_unique() {
        let text = "ab cd ef gh";
        let offsets = [(0, 2), (2, 5), (5, 8), (8, 11)];
        let c = candidates(text, &offsets, 2);
        assert_eq!(c[..2], [5, 2]);
        assert!(c.contains(&0) && c.contains(&8) && c.contains(&11));
        let mut sorted = c.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), c.len());
    }

    #[test]
    fn cuts_are_exact_and_truthful() {
        let tok = builtin();
        let texts = [
            "The quick brown fox jumped over the lazy dog, and then it slept.",
            "Short.",
            "Unbelievably incomprehensible antidisestablishmentarianism, naturally.",
            "Ünïcödé téxt wïth àccents — and “quotes” — 日本語のテキスト.",
        ];
        let targets = [5, 50, 7, 9];
        let cuts = cut_batch(tok, &texts, &targets, |_, p| p).unwrap();
        assert_eq!(cuts[1], None, "too short");
        for i in [0, 2, 3] {
            let c = cuts[i].unwrap();
            let prefix = &texts[i][..c.len];
            assert_eq!(count_tokens(tok, prefix), c.tokens);
            assert_eq!(c.tokens, targets[i], "{prefix:?}");
        }
    }

    #[test]
    fn every_length_of_a_hard_text() {
        // Multi-byte characters split across byte-level tokens: the end offset of a token
        // holding half a character covers the whole character, so first guesses overshoot and
        // the fix-up runs; some lengths (inside a character) cannot be exact at all.
        let tok = builtin();
        let text = "Photosynthesis electroencephalography, bookkeeper's rhythms; Ünïcödé téxt wïth àccents 日本語のテキスト 12345678 3.14159 http://example.com/p?q=1&r=2 {json: true}";
        let len = tok.encode(text, false).unwrap().len() as u64;
        let targets: Vec<u64> = (1..len).collect();
        let texts = vec![text; targets.len()];
        let cuts = cut_batch(tok, &texts, &targets, |_, p| p).unwrap();
        let mut exact = 0;
        for (c, &n) in cuts.iter().zip(&targets) {
            let c = c.unwrap();
            assert_eq!(count_tokens(tok, &text[..c.len]), c.tokens, "truthful");
            assert!(c.tokens.abs_diff(n) <= 1, "n {n}: {c:?}");
            exact += usize::from(c.tokens == n);
        }
        assert!(
            exact * 10 >= targets.len() * 8,
            "{exact} of {} exact",
            targets.len()
        );
    }

    #[test]
    fn whole_text_and_zero() {
        let tok = builtin();
        let text = "Hello there.";
        let n = count_tokens(tok, text);
        let cuts = cut_batch(tok, &[text, text], &[n, 0], |_, p| p).unwrap();
        assert_eq!(
            cuts[0],
            Some(Cut {
                len: text.len(),
                tokens: n
            })
        );
        assert_eq!(cuts[1], Some(Cut { len: 0, tokens: 0 }));
    }

    #[test]
    fn adjust_is_applied_and_counted() {
        let tok = builtin();
        let text = "one two three four five six seven";
        // Forbid cuts after byte 7: every candidate collapses to "one two".
        let cuts = cut_batch(tok, &[text], &[5], |_, p| p.min(7)).unwrap();
        let c = cuts[0].unwrap();
        assert_eq!(c.len, 7);
        assert_eq!(c.tokens, count_tokens(tok, "one two"));
    }
}
