//! Seeded English-like text from the project's own word lists, and prompts of an exact token
//! length.
//!
//! The text is made by a tiny grammar (subject, verb phrase with agreement and tense, objects,
//! prepositional phrases, openers, conjunctions, questions, quotes, numbers) so that a real
//! tokenizer splits it roughly as it would split English: prompt lengths in tokens then mean
//! about the same amount of text as with real prompts.

use rand::seq::IndexedRandom;
use rand::Rng;
use tokenizers::Tokenizer;

use super::cut;
use super::words::{
    ADJECTIVES, ADVERBS, CONJUNCTIONS, MODALS, NOUNS, OPENERS, PLURAL_DETERMINERS, PREPOSITIONS,
    SINGULAR_DETERMINERS, VERBS,
};

/// Words generated beyond the target token count: every word is at least one token for
/// tokenizers that split on whitespace, so this margin usually makes one encoding enough.
const EXTRA_WORDS: usize = 16;

/// Attempts with fresh text before settling for the closest length (never reached with sane
/// tokenizers; bounds the work for pathological ones).
const MAX_ATTEMPTS: usize = 4;

/// English-like text of at least `min_words` words: paragraphs of 3–7 sentences separated by a
/// blank line.
pub fn text(rng: &mut impl Rng, min_words: usize) -> String {
    let mut out = String::new();
    let mut words = 0;
    while words < min_words.max(1) {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        let sentences = rng.random_range(3..=7);
        for i in 0..sentences {
            let s = sentence(rng);
            words += s.split_whitespace().count();
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&s);
            if words >= min_words {
                break;
            }
        }
    }
    out
}

/// `words` words drawn uniformly from the nouns and adjectives, capitalized, unpunctuated: more
/// varied from its first word on than a sentence (see `salt.rs`).
pub(crate) fn phrase(rng: &mut impl Rng, words: usize) -> String {
    let picked: Vec<&str> = (0..words)
        .map(|_| {
            let k = rng.random_range(0..NOUNS.len() + ADJECTIVES.len());
            NOUNS
                .get(k)
                .map_or_else(|| ADJECTIVES[k - NOUNS.len()], |n| singular_of(n))
        })
        .collect();
    capitalize(&picked.join(" "))
}

/// One sentence, capitalized and punctuated.
pub fn sentence(rng: &mut impl Rng) -> String {
    let body = match rng.random_range(0..100) {
        0..=39 => format!("{}.", clause(rng)),
        40..=51 => format!(
            "{}, {}.",
            OPENERS.choose(rng).unwrap_or(&"Then"),
            clause(rng)
        ),
        52..=66 => format!(
            "{}, {} {}.",
            clause(rng),
            CONJUNCTIONS.choose(rng).unwrap_or(&"and"),
            clause(rng)
        ),
        67..=76 => question(rng),
        77..=81 => format!("{}!", clause(rng)),
        82..=89 => numbered(rng),
        _ => quoted(rng),
    };
    capitalize(&body)
}

/// Grammatical person, for verb agreement.
#[derive(Clone, Copy, PartialEq)]
enum Person {
    First,
    ThirdSingular,
    Other,
}

fn clause(rng: &mut impl Rng) -> String {
    let (subject, person) = subject(rng);
    let mut parts = vec![subject, verb_phrase(rng, person)];
    if rng.random_bool(0.6) {
        parts.push(object(rng));
    }
    if rng.random_bool(0.5) {
        parts.push(prepositional_phrase(rng));
    }
    if rng.random_bool(0.2) {
        parts.push(pick(rng, ADVERBS).to_string());
    }
    parts.join(" ")
}

fn subject(rng: &mut impl Rng) -> (String, Person) {
    match rng.random_range(0..10) {
        0 => ("I".into(), Person::First),
        1 => (pick(rng, &["you", "we", "they"]).into(), Person::Other),
        2 => (
            pick(rng, &["he", "she", "it"]).into(),
            Person::ThirdSingular,
        ),
        3..=6 => (noun_phrase(rng, false), Person::ThirdSingular),
        _ => (noun_phrase(rng, true), Person::Other),
    }
}

fn noun_phrase(rng: &mut impl Rng, plural: bool) -> String {
    let noun = pick(rng, NOUNS);
    let (det, noun) = if plural {
        (pick(rng, PLURAL_DETERMINERS), plural_of(noun))
    } else {
        (
            pick(rng, SINGULAR_DETERMINERS),
            singular_of(noun).to_string(),
        )
    };
    let adjective = if rng.random_bool(0.4) {
        format!("{} ", pick(rng, ADJECTIVES))
    } else {
        String::new()
    };
    // "a" before a vowel sound: approximate with the first letter, enough for English-like text.
    let det = match (det, adjective.as_str()) {
        ("a", "") => article_for(&noun),
        ("a", adj) => article_for(adj),
        (d, _) => d,
    };
    format!("{det} {adjective}{noun}")
}

fn article_for(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn verb_phrase(rng: &mut impl Rng, person: Person) -> String {
    let verb = Verb::parse(pick(rng, VERBS));
    match rng.random_range(0..4) {
        0 => match person {
            Person::ThirdSingular => verb.third_person(),
            _ => verb.base.to_string(),
        },
        1 => verb.past(),
        2 => format!("{} {}", pick(rng, MODALS), verb.base),
        _ => {
            let be = match (person, rng.random_bool(0.5)) {
                (Person::First, true) => "am",
                (Person::ThirdSingular, true) => "is",
                (Person::Other, true) => "are",
                (Person::Other, false) => "were",
                (_, false) => "was",
            };
            format!("{be} {}", verb.gerund())
        }
    }
}

fn object(rng: &mut impl Rng) -> String {
    match rng.random_range(0..5) {
        0 => pick(rng, &["me", "you", "him", "her", "it", "us", "them"]).into(),
        1 | 2 => noun_phrase(rng, false),
        _ => noun_phrase(rng, true),
    }
}

fn prepositional_phrase(rng: &mut impl Rng) -> String {
    let plural = rng.random_bool(0.3);
    format!("{} {}", pick(rng, PREPOSITIONS), noun_phrase(rng, plural))
}

fn question(rng: &mut impl Rng) -> String {
    let (subject, person) = subject(rng);
    let aux = match (person, rng.random_bool(0.6)) {
        (_, false) => "did",
        (Person::ThirdSingular, true) => "does",
        _ => "do",
    };
    let verb = Verb::parse(pick(rng, VERBS));
    let wh = pick(rng, &["", "why ", "how ", "when ", "where "]);
    let tail = if rng.random_bool(0.5) {
        format!(" {}", object(rng))
    } else {
        String::new()
    };
    format!("{wh}{aux} {subject} {}{tail}?", verb.base)
}

fn numbered(rng: &mut impl Rng) -> String {
    match rng.random_range(0..3) {
        0 => format!("in {}, {}.", rng.random_range(1800..2030), clause(rng)),
        1 => {
            let noun = plural_of(pick(rng, NOUNS));
            format!(
                "about {} {noun} {}.",
                rng.random_range(2..1000),
                verb_phrase(rng, Person::Other)
            )
        }
        _ => format!(
            "{}, which took {} {}.",
            clause(rng),
            rng.random_range(2..60),
            pick(rng, &["minutes", "hours", "days", "weeks", "years"])
        ),
    }
}

fn quoted(rng: &mut impl Rng) -> String {
    let (speaker, _) = subject(rng);
    let said = pick(rng, &["said", "asked", "whispered", "shouted", "wrote"]);
    format!("{speaker} {said}, \"{}.\"", capitalize(&clause(rng)))
}

fn pick<'a>(rng: &mut impl Rng, list: &[&'a str]) -> &'a str {
    list.choose(rng).copied().unwrap_or("thing")
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn singular_of(entry: &str) -> &str {
    entry.split(':').next().unwrap_or(entry)
}

fn plural_of(entry: &str) -> String {
    if let Some((_, plural)) = entry.split_once(':') {
        return plural.to_string();
    }
    if entry.ends_with(['s', 'x']) || entry.ends_with("ch") || entry.ends_with("sh") {
        format!("{entry}es")
    } else if let Some(stem) = consonant_y_stem(entry) {
        format!("{stem}ies")
    } else {
        format!("{entry}s")
    }
}

/// `stem` of a word ending in consonant + "y" ("city" → "cit"), for "-ies"/"-ied".
fn consonant_y_stem(word: &str) -> Option<&str> {
    let stem = word.strip_suffix('y')?;
    let before = stem.chars().last()?;
    (!"aeiou".contains(before)).then_some(stem)
}

/// A verb entry `base[:past[:gerund]]` with regular inflection rules for what is not given.
struct Verb<'a> {
    base: &'a str,
    past: Option<&'a str>,
    gerund: Option<&'a str>,
}

impl<'a> Verb<'a> {
    fn parse(entry: &'a str) -> Self {
        let mut parts = entry.split(':');
        Verb {
            base: parts.next().unwrap_or(entry),
            past: parts.next(),
            gerund: parts.next(),
        }
    }

    fn third_person(&self) -> String {
        let b = self.base;
        match b {
            "go" | "do" => format!("{b}es"),
            "have" => "has".into(),
            _ => plural_of(b),
        }
    }

    fn past(&self) -> String {
        if let Some(p) = self.past {
            return p.to_string();
        }
        let b = self.base;
        if b.ends_with('e') {
            format!("{b}d")
        } else if let Some(stem) = consonant_y_stem(b) {
            format!("{stem}ied")
        } else {
            format!("{b}ed")
        }
    }

    fn gerund(&self) -> String {
        if let Some(g) = self.gerund {
            return g.to_string();
        }
        let b = self.base;
        match b.strip_suffix('e') {
            Some(stem) if !b.ends_with("ee") && b != "be" => format!("{stem}ing"),
            _ => format!("{b}ing"),
        }
    }
}

/// A prompt whose token count with [`super::tokenizer::count_tokens`] is exactly `target`.
///
/// Generates a little more text than needed, encodes it once, cuts at the end of token
/// `target - 1`, verifies, and fixes up the rare case where the cut falls inside a word that
/// re-tokenizes differently (see `cut.rs`). For a pathological tokenizer where no nearby cut
/// is exact even after [`MAX_ATTEMPTS`] fresh texts, the closest prompt found is returned;
/// [`prompt_with_count`] reports its true count.
///
/// A tokenizer that fails to encode (never the case for byte-level BPE) gives an empty
/// prompt and a logged warning; [`prompt_with_count`] returns the error instead.
pub fn prompt_of_exact_length(tok: &Tokenizer, target: u64, rng: &mut impl Rng) -> String {
    match prompt_with_count(tok, target, rng) {
        Ok((prompt, _)) => prompt,
        Err(e) => {
            log::warn!("synthetic prompt of {target} tokens: {e}");
            String::new()
        }
    }
}

/// [`prompt_of_exact_length`] with the prompt's true token count (== `target` in all but
/// pathological cases).
pub fn prompt_with_count(
    tok: &Tokenizer,
    target: u64,
    rng: &mut impl Rng,
) -> Result<(String, u64), String> {
    let mut texts = vec![text(rng, words_for(target))];
    let mut found = prompts_with_counts(tok, &mut texts, &[target], None, rng)?;
    Ok(found.pop().unwrap_or_default())
}

/// Word count to generate for `target` tokens.
pub(crate) fn words_for(target: u64) -> usize {
    usize::try_from(target)
        .unwrap_or(usize::MAX / 2)
        .saturating_add(EXTRA_WORDS)
}

/// Cuts `texts[i]` to `targets[i]` tokens for every i, with two batched (parallel) encodings
/// for the common case. Texts that turn out too short are regenerated longer; prompts that
/// stay off-target are retried with fresh text a few times. Returns (prompt, true count).
///
/// With `heads`, prompt i is `heads[i]`, a space, then its text, cut as a whole (so its length
/// stays exact): the cache salt's first tokens (`salt.rs`).
pub(crate) fn prompts_with_counts(
    tok: &Tokenizer,
    texts: &mut [String],
    targets: &[u64],
    heads: Option<&[String]>,
    rng: &mut impl Rng,
) -> Result<Vec<(String, u64)>, String> {
    let headed = |i: usize, text: String| match heads {
        Some(h) => format!("{} {text}", h[i]),
        None => text,
    };
    for (i, t) in texts.iter_mut().enumerate() {
        *t = headed(i, std::mem::take(t));
    }
    let mut results: Vec<Option<(String, u64)>> = vec![None; texts.len()];
    for attempt in 0..MAX_ATTEMPTS {
        let todo: Vec<usize> = (0..texts.len())
            .filter(|&i| results[i].as_ref().is_none_or(|(_, n)| *n != targets[i]))
            .collect();
        if todo.is_empty() {
            break;
        }
        if attempt > 0 {
            // Fresh, longer text for what is still missing or off-target.
            for &i in &todo {
                let words = words_for(targets[i]).saturating_mul(1 << attempt);
                texts[i] = headed(i, text(rng, words));
            }
        }
        let batch: Vec<&str> = todo.iter().map(|&i| texts[i].as_str()).collect();
        let batch_targets: Vec<u64> = todo.iter().map(|&i| targets[i]).collect();
        let cuts = cut::cut_batch(tok, &batch, &batch_targets, |_, pos| pos)?;
        for (&i, c) in todo.iter().zip(cuts) {
            if let Some(c) = c {
                let better = results[i]
                    .as_ref()
                    .is_none_or(|(_, n)| n.abs_diff(targets[i]) > c.tokens.abs_diff(targets[i]));
                if better {
                    results[i] = Some((texts[i][..c.len].to_string(), c.tokens));
                }
            }
        }
    }
    Ok(results.into_iter().map(|r| r.unwrap_or_default()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::tokenizer::tests::llama3_shaped;
    use crate::workload::tokenizer::{builtin, count_tokens};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn text_is_seeded_and_long_enough() {
        let a = text(&mut StdRng::seed_from_u64(1), 300);
        let b = text(&mut StdRng::seed_from_u64(1), 300);
        let c = text(&mut StdRng::seed_from_u64(2), 300);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.split_whitespace().count() >= 300);
    }

    #[test]
    fn text_looks_like_english() {
        let t = text(&mut StdRng::seed_from_u64(9), 2000);
        assert!(t.is_ascii());
        assert!(t.contains(". ") && t.contains(", ") && t.contains('?'));
        assert!(t.contains("\n\n"));
        assert!(t.chars().next().is_some_and(|c| c.is_ascii_uppercase()));
        assert!(t.ends_with(['.', '?', '!', '"']));
        // Sentences start with a capital letter.
        for s in t.split(". ").skip(1) {
            let first = s.trim_start_matches('"').chars().next().unwrap();
            assert!(first.is_uppercase() || first.is_ascii_digit(), "{s:?}");
        }
    }

    #[test]
    fn inflections() {
        assert_eq!(plural_of("city"), "cities");
        assert_eq!(plural_of("day"), "days");
        assert_eq!(plural_of("box"), "boxes");
        assert_eq!(plural_of("child:children"), "children");
        assert_eq!(singular_of("child:children"), "child");
        let v = Verb::parse("carry");
        assert_eq!(
            (v.third_person(), v.past(), v.gerund()),
            ("carries".into(), "carried".into(), "carrying".into())
        );
        let v = Verb::parse("make:made");
        assert_eq!(
            (v.third_person(), v.past(), v.gerund()),
            ("makes".into(), "made".into(), "making".into())
        );
        let v = Verb::parse("stop:stopped:stopping");
        assert_eq!(v.gerund(), "stopping");
        assert_eq!(Verb::parse("go:went").third_person(), "goes");
        assert_eq!(Verb::parse("agree").gerund(), "agreeing");
    }

    fn assert_exact(tok: &Tokenizer, label: &str) {
        let mut rng = StdRng::seed_from_u64(42);
        for target in [1u64, 10, 200, 4096] {
            let p = prompt_of_exact_length(tok, target, &mut rng);
            assert_eq!(
                count_tokens(tok, &p),
                target,
                "{label}: target {target}: {p:?}"
            );
        }
    }

    #[test]
    fn exact_lengths_with_builtin_tokenizer() {
        assert_exact(builtin(), "builtin");
    }

    #[test]
    fn exact_lengths_with_llama3_shaped_tokenizer() {
        assert_exact(&llama3_shaped(), "llama3-shaped");
    }

    /// Every length from 1 to 300 in one batch: exercises the fix-up path (cuts inside words).
    fn assert_batch_exact(tok: &Tokenizer, label: &str) {
        let mut rng = StdRng::seed_from_u64(5);
        let targets: Vec<u64> = (1..=300).collect();
        let mut texts: Vec<String> = targets
            .iter()
            .map(|&t| text(&mut rng, words_for(t)))
            .collect();
        let got = prompts_with_counts(tok, &mut texts, &targets, None, &mut rng).unwrap();
        for ((p, n), t) in got.iter().zip(&targets) {
            assert_eq!(n, t, "{label}");
            assert_eq!(count_tokens(tok, p), *t, "{label}: {p:?}");
        }
    }

    #[test]
    fn many_exact_lengths_in_one_batch() {
        assert_batch_exact(builtin(), "builtin");
        assert_batch_exact(&llama3_shaped(), "llama3-shaped");
    }

    #[test]
    fn zero_target_is_empty() {
        let p = prompt_of_exact_length(builtin(), 0, &mut StdRng::seed_from_u64(1));
        assert_eq!(p, "");
    }
}
