//! Loading the tokenizer, counting tokens, and the project's own built-in tokenizer.
//!
//! The built-in tokenizer is a byte-level BPE (vocabulary of about 4,000) trained by this
//! project with the `tokenizers` crate on its own synthetic corpus (`synthetic.rs`); no
//! third-party vocabulary is involved. It is stored in `builtin_tokenizer.json`, embedded in the
//! binary, and checked to be exactly what training gives (`builtin_tokenizer_is_reproducible`,
//! which also rewrites it with `IB_REGENERATE_TOKENIZER=1`).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use sinks::recorder::TokenCounter;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::Tokenizer;

use super::hub::{self, HubEnv, RepoType};

/// Label of the built-in tokenizer in file names and results.
pub const BUILTIN_LABEL: &str = "builtin";

const BUILTIN_JSON: &str = include_str!("builtin_tokenizer.json");

/// A loaded tokenizer and the label it is known by.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub tokenizer: Arc<Tokenizer>,
    /// For file names and results: "builtin" or the given name.
    pub label: String,
}

/// `None` → the built-in tokenizer; a file → that `tokenizer.json`; a folder →
/// `<folder>/tokenizer.json`; otherwise a Hugging Face hub model id whose `tokenizer.json` is
/// downloaded (or taken from the hub cache), with the hub settings of the environment.
pub fn load(name: Option<&str>) -> Result<Loaded, String> {
    load_with(name, &HubEnv::from_env())
}

/// As [`load`], with explicit hub settings.
pub fn load_with(name: Option<&str>, hub: &HubEnv) -> Result<Loaded, String> {
    let Some(name) = name else {
        return Ok(Loaded {
            tokenizer: builtin_arc(),
            label: BUILTIN_LABEL.into(),
        });
    };
    let path = Path::new(name);
    let file = if path.is_file() {
        path.to_path_buf()
    } else if path.is_dir() {
        let file = path.join("tokenizer.json");
        if !file.is_file() {
            return Err(format!(
                "tokenizer folder '{name}' has no tokenizer.json (looked for '{}')",
                file.display()
            ));
        }
        file
    } else if hub::is_repo_id(name) {
        hub::fetch(hub, RepoType::Model, name, hub::MAIN, "tokenizer.json").map_err(|e| {
            format!("tokenizer '{name}' is not a local file or folder, and from the Hugging Face hub: {e}")
        })?
    } else {
        return Err(format!(
            "tokenizer '{name}' not found: it is neither a local file or folder nor a Hugging Face hub model id (org/name); give a path to a tokenizer.json, a folder holding one, or a hub model id"
        ));
    };
    let tokenizer = Tokenizer::from_file(&file).map_err(|e| {
        format!(
            "tokenizer file '{}' could not be loaded: {e}",
            file.display()
        )
    })?;
    Ok(Loaded {
        tokenizer: Arc::new(tokenizer),
        label: name.to_string(),
    })
}

/// Tokens in `text`, without special tokens (no BOS/EOS, no chat template).
///
/// Encoding errors cannot happen with byte-level BPE; should a custom tokenizer fail, the
/// error is logged and the text counts as 0 tokens rather than aborting a run mid-way.
pub fn count_tokens(tok: &Tokenizer, text: &str) -> u64 {
    // encode_fast: no offsets are needed for a count.
    match tok.encode_fast(text, false) {
        Ok(enc) => enc.len() as u64,
        Err(e) => {
            log::warn!("tokenizing {} bytes failed: {e}", text.len());
            0
        }
    }
}

/// Counts tokens of generated text for the recorder (the client-side tokenizer).
#[derive(Clone, Debug)]
pub struct TokenizerCounter {
    tokenizer: Arc<Tokenizer>,
}

impl TokenizerCounter {
    pub fn new(tokenizer: Arc<Tokenizer>) -> Self {
        TokenizerCounter { tokenizer }
    }
}

impl TokenCounter for TokenizerCounter {
    fn count(&self, text: &str) -> u64 {
        count_tokens(&self.tokenizer, text)
    }
}

/// The built-in tokenizer, parsed once.
pub fn builtin() -> &'static Tokenizer {
    builtin_arc_ref()
}

fn builtin_arc() -> Arc<Tokenizer> {
    Arc::clone(builtin_arc_ref())
}

fn builtin_arc_ref() -> &'static Arc<Tokenizer> {
    static BUILTIN: OnceLock<Arc<Tokenizer>> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        // The embedded file is checked by a unit test; a broken build must not panic at run
        // time, so it degrades to an untrained byte-level tokenizer (one token per byte).
        let tok = BUILTIN_JSON.parse::<Tokenizer>().unwrap_or_else(|e| {
            log::error!("embedded built-in tokenizer is invalid ({e}); using one token per byte");
            untrained()
        });
        Arc::new(tok)
    })
}

/// A byte-level BPE with the 256 byte symbols and no merges (one token per byte): the shape
/// of the built-in tokenizer before training, and its fallback.
fn untrained() -> Tokenizer {
    let mut alphabet: Vec<char> = ByteLevel::alphabet().into_iter().collect();
    alphabet.sort_unstable();
    let vocab: Vocab = alphabet
        .into_iter()
        .zip(0u32..)
        .map(|(c, id)| (c.to_string(), id))
        .collect();
    // Cannot fail: no files, no dropout; an empty model is the (unreachable) fallback.
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, Vec::new())
        .build()
        .unwrap_or_default();
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(byte_level()));
    tok.with_decoder(Some(byte_level()));
    tok
}

/// GPT-2 style byte-level splitting; no prefix space, so a prefix of a text tokenizes as the
/// start of that text.
fn byte_level() -> ByteLevel {
    ByteLevel::new(false, false, true)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::workload::synthetic;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::path::PathBuf;
    use tokenizers::models::bpe::BpeTrainerBuilder;
    use tokenizers::models::TrainerWrapper;

    /// Training parameters of the built-in tokenizer: changing any of them changes the file.
    const BUILTIN_VOCAB_SIZE: usize = 4000;
    const BUILTIN_CORPUS_SEED: u64 = 0x001b_e4c4_2024;
    const BUILTIN_CORPUS_PARAGRAPHS: usize = 30_000;
    const BUILTIN_MIN_FREQUENCY: u64 = 2;

    /// Trains the built-in tokenizer from scratch on the synthetic corpus (deterministic).
    fn train_builtin() -> Result<Tokenizer, String> {
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(BUILTIN_VOCAB_SIZE)
            .min_frequency(BUILTIN_MIN_FREQUENCY)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        let mut tok = untrained();
        let mut rng = StdRng::seed_from_u64(BUILTIN_CORPUS_SEED);
        let corpus: Vec<String> = (0..BUILTIN_CORPUS_PARAGRAPHS)
            .map(|_| synthetic::text(&mut rng, 40))
            .collect();
        tok.train(&mut trainer, corpus.iter())
            .map_err(|e| format!("training the built-in tokenizer failed: {e}"))?;
        Ok(tok)
    }

    fn builtin_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/workload/builtin_tokenizer.json")
    }

    /// The committed file is exactly what training gives. To change the built-in tokenizer,
    /// change the training and rewrite the file with `IB_REGENERATE_TOKENIZER=1 cargo test -p
    /// inference-benchmarker --lib builtin_tokenizer_is_reproducible`.
    #[test]
    fn builtin_tokenizer_is_reproducible() {
        let json = train_builtin().unwrap().to_string(false).unwrap() + "\n";
        if std::env::var("IB_REGENERATE_TOKENIZER").is_ok_and(|v| v == "1") {
            std::fs::write(builtin_path(), &json).unwrap();
            return;
        }
        assert!(
            json == BUILTIN_JSON,
            "training no longer gives the committed builtin_tokenizer.json: rewrite it with \
             IB_REGENERATE_TOKENIZER=1 (see this test's comment)"
        );
    }

    #[test]
    fn embedded_builtin_loads_and_round_trips() {
        // Parse the embedded text directly: the OnceLock fallback would hide a broken file.
        let tok: Tokenizer = BUILTIN_JSON.parse().unwrap();
        let vocab = tok.get_vocab_size(true);
        assert!((3000..=4100).contains(&vocab), "vocab {vocab}");
        assert!(
            BUILTIN_JSON.len() < 400 * 1024,
            "{} bytes",
            BUILTIN_JSON.len()
        );
        for text in [
            "The quick brown fox jumps over the lazy dog.",
            "Ünïcödé, emoji 🎉, tabs\tand\nnewlines; code: fn main() { println!(\"hi\"); }",
            "  leading and trailing spaces  ",
            "",
        ] {
            let ids = tok.encode(text, false).unwrap().get_ids().to_vec();
            assert_eq!(tok.decode(&ids, false).unwrap(), text);
        }
    }

    #[test]
    fn builtin_is_efficient_on_english() {
        // Trained on English-like text: common words are single tokens.
        let tok = builtin();
        assert_eq!(count_tokens(tok, "The teacher walked to the market."), 7);
        let text = synthetic::text(&mut StdRng::seed_from_u64(3), 1000);
        let words = text.split_whitespace().count() as u64;
        let tokens = count_tokens(tok, &text);
        assert!(tokens < words * 3 / 2, "{tokens} tokens for {words} words");
    }

    #[test]
    fn untrained_fallback_is_one_token_per_byte() {
        let tok = untrained();
        let text = "Héllo, world!";
        assert_eq!(count_tokens(&tok, text), text.len() as u64);
        let ids = tok.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
    }

    #[test]
    fn load_none_is_builtin() {
        let l = load(None).unwrap();
        assert_eq!(l.label, "builtin");
        assert!(Arc::ptr_eq(&l.tokenizer, &load(None).unwrap().tokenizer));
    }

    #[test]
    fn load_file_and_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokenizer.json");
        std::fs::write(&file, BUILTIN_JSON).unwrap();
        let name = file.to_str().unwrap();
        let l = load(Some(name)).unwrap();
        assert_eq!(l.label, name);
        assert_eq!(
            count_tokens(&l.tokenizer, "hello world"),
            count_tokens(builtin(), "hello world")
        );
        let folder = dir.path().to_str().unwrap();
        assert_eq!(load(Some(folder)).unwrap().label, folder);
    }

    #[test]
    fn load_errors_name_what_was_tried() {
        let cache = tempfile::tempdir().unwrap();
        let offline = HubEnv::offline_at(cache.path().to_path_buf());
        let err = load_with(Some("org/model"), &offline).unwrap_err();
        assert!(
            err.starts_with("tokenizer 'org/model' is not a local file or folder, and from the Hugging Face hub: 'tokenizer.json' of the model repository 'org/model' is not in the hub cache"),
            "{err}"
        );
        let err = load_with(Some("no/such/path.json"), &offline).unwrap_err();
        assert!(
            err.contains("neither a local file or folder nor a Hugging Face hub model id"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = load(Some(dir.path().to_str().unwrap())).unwrap_err();
        assert!(
            err.contains("has no tokenizer.json") && err.contains("tokenizer.json'"),
            "{err}"
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{not json").unwrap();
        let err = load(Some(bad.to_str().unwrap())).unwrap_err();
        assert!(
            err.contains("could not be loaded") && err.contains("bad.json"),
            "{err}"
        );
    }

    #[test]
    fn counts_without_special_tokens() {
        let tok = llama3_shaped();
        // With special tokens the Llama-3 pipeline adds <|begin_of_text|>.
        let with_bos = tok.encode("Hello world", true).unwrap().len();
        let plain = count_tokens(&tok, "Hello world");
        assert_eq!(with_bos as u64, plain + 1);
        assert_eq!(plain, count_tokens(builtin(), "Hello world"));
        assert_eq!(count_tokens(&tok, ""), 0);
    }

    #[test]
    fn counter_counts() {
        // Used through the trait object, as the recorder holds it.
        let c: Arc<dyn TokenCounter> = Arc::new(TokenizerCounter::new(builtin_arc()));
        assert_eq!(
            c.count("hello world"),
            count_tokens(builtin(), "hello world")
        );
        assert_eq!(c.count(""), 0);
    }

    /// The Llama-3 tokenizer's pipeline over the built-in vocabulary, for tests where the
    /// pipeline matters and the vocabulary does not: Llama-3's split regex before a byte-level
    /// mapping without regex, whole pre-tokens looked up before merging (`ignore_merges`), and a
    /// `<|begin_of_text|>` special token added by the post-processor with special tokens.
    pub(crate) fn llama3_shaped() -> Tokenizer {
        let mut j: serde_json::Value = serde_json::from_str(BUILTIN_JSON).unwrap();
        let bos_id = j["model"]["vocab"].as_object().unwrap().len();
        let bos = "<|begin_of_text|>";
        j["added_tokens"] = serde_json::json!([{"id": bos_id, "content": bos, "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true}]);
        j["model"]["ignore_merges"] = true.into();
        j["pre_tokenizer"] = serde_json::json!({"type": "Sequence", "pretokenizers": [
            {"type": "Split", "behavior": "Isolated", "invert": false, "pattern": {"Regex":
                "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]});
        j["post_processor"] = serde_json::json!({"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": bos, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}});
        j.to_string().parse().unwrap()
    }
}
