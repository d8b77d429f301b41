//! Named workload profiles with the original tool's values.
//!
//! Every profile runs a sweep: 128 virtual users at most, 120 s per step, 10 rates, 30 s of
//! warmup, on its file of the hub dataset [`PROFILE_DATASET`] (as the original tool):
//!
//! | profile | dataset file | prompts | outputs |
//! |---|---|---|---|
//! | `fixed-length` | `share_gpt_0_turns.json` | cut to exactly 200 tokens | ~800 (50–800) |
//! | `chat` | `share_gpt_turns.json` | whole conversations, multi-turn | ~800 (50–800) |
//! | `code-generation` | `github_code.json` | cut to exactly 4096 tokens | ~50 (30–80) |
//! | `classification` | `classification.json` | cut to exactly 10000 tokens, long shared documents | ~50 (30–80) |
//!
//! The prompt options keep the original's min/max/variance (written in the results as it wrote
//! them), which played no part in its prompt lengths; `--draw-prompt-lengths` draws from them.
//!
//! `chat` is real multi-turn: virtual users send each conversation's user turns one after the
//! other with the model's own answers in between (`load::conversation`). A profile overwrites
//! the fields it sets: the caller applies explicit command-line flags afterwards if they should
//! win (`--dataset-file ./local.json` points a profile at a local copy; `--dataset synthetic`
//! runs it on the built-in synthetic prompts instead: a different workload, said so).

use std::time::Duration;

use crate::config::{BenchmarkKind, RunConfig};

use super::options::TokenizeOptions;

/// The hub dataset the profiles' files come from.
pub const PROFILE_DATASET: &str = super::dataset::DEFAULT_DATASET;

pub const PROFILES: [&str; 4] = ["fixed-length", "chat", "code-generation", "classification"];

/// The lengths a profile asks for.
#[derive(Clone, Debug, PartialEq)]
struct Lengths {
    /// The profile's file in [`PROFILE_DATASET`].
    file: &'static str,
    /// `None`: prompts as the dataset has them (or the synthetic default length).
    prompt: Option<TokenizeOptions>,
    decode: TokenizeOptions,
}

/// The original tool's options, with its meanings (see `options.rs`): prompts are cut to exactly
/// `num_tokens`, decode lengths drawn with standard deviation `variance`.
fn opts(num_tokens: u64, min_tokens: u64, max_tokens: u64, variance: u64) -> TokenizeOptions {
    TokenizeOptions {
        num_tokens: Some(num_tokens),
        min_tokens,
        max_tokens,
        variance,
    }
}

fn lengths(name: &str) -> Option<Lengths> {
    let long_decode = opts(800, 50, 800, 100);
    let short_decode = opts(50, 30, 80, 10);
    Some(match name {
        "fixed-length" => Lengths {
            file: "share_gpt_0_turns.json",
            prompt: Some(opts(200, 200, 200, 0)),
            decode: long_decode,
        },
        "chat" => Lengths {
            file: "share_gpt_turns.json",
            prompt: None,
            decode: long_decode,
        },
        "code-generation" => Lengths {
            file: "github_code.json",
            prompt: Some(opts(4096, 3000, 6000, 1000)),
            decode: short_decode,
        },
        "classification" => Lengths {
            file: "classification.json",
            prompt: Some(opts(10000, 8000, 12000, 5000)),
            decode: short_decode,
        },
        _ => return None,
    })
}

/// Sets the profile's sweep parameters and prompt/decode lengths on `cfg`.
pub fn apply_profile(name: &str, cfg: &mut RunConfig) -> Result<(), String> {
    let l = lengths(name).ok_or_else(|| {
        format!(
            "unknown profile '{name}' (known profiles: {})",
            PROFILES.join(", ")
        )
    })?;
    cfg.profile = Some(name.to_string());
    cfg.max_vus = 128;
    cfg.duration = Duration::from_secs(120);
    cfg.rates = None;
    cfg.num_rates = 10;
    cfg.benchmark_kind = BenchmarkKind::Sweep;
    cfg.warmup = Duration::from_secs(30);
    cfg.prompt_options = l.prompt;
    cfg.decode_options = Some(l.decode);
    cfg.dataset = Some(PROFILE_DATASET.to_string());
    cfg.dataset_file = Some(l.file.into());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration whose sweep fields differ from every profile's.
    fn base() -> RunConfig {
        let mut c = RunConfig::new("http://127.0.0.1:8000");
        c.max_vus = 1;
        c.duration = Duration::from_secs(5);
        c.rates = Some(vec![1.0]);
        c.num_rates = 1;
        c.benchmark_kind = BenchmarkKind::Rate;
        c.warmup = Duration::ZERO;
        c.prompt_options = Some(TokenizeOptions::fixed(7));
        c
    }

    #[test]
    fn sweep_parameters_for_every_profile() {
        for name in PROFILES {
            let mut c = base();
            apply_profile(name, &mut c).unwrap();
            assert_eq!(c.profile.as_deref(), Some(name));
            assert_eq!(c.max_vus, 128);
            assert_eq!(c.duration, Duration::from_secs(120));
            assert_eq!(c.rates, None);
            assert_eq!(c.num_rates, 10);
            assert_eq!(c.benchmark_kind, BenchmarkKind::Sweep);
            assert_eq!(c.warmup, Duration::from_secs(30));
            assert_eq!(c.dataset.as_deref(), Some(PROFILE_DATASET));
            let file = c
                .dataset_file
                .as_ref()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let expected = match name {
                "fixed-length" => "share_gpt_0_turns.json",
                "chat" => "share_gpt_turns.json",
                "code-generation" => "github_code.json",
                _ => "classification.json",
            };
            assert_eq!(file, expected);
            // The profile's lengths are valid options (they round-trip through the parser).
            for o in c.prompt_options.iter().chain(c.decode_options.iter()) {
                assert_eq!(&o.to_string().parse::<TokenizeOptions>().unwrap(), o);
            }
        }
    }

    #[test]
    fn lengths_match_the_original_tool() {
        let get = |name| {
            let mut c = base();
            apply_profile(name, &mut c).unwrap();
            (c.prompt_options, c.decode_options.unwrap())
        };
        assert_eq!(
            get("fixed-length"),
            (Some(opts(200, 200, 200, 0)), opts(800, 50, 800, 100))
        );
        assert_eq!(get("chat"), (None, opts(800, 50, 800, 100)));
        assert_eq!(
            get("code-generation"),
            (Some(opts(4096, 3000, 6000, 1000)), opts(50, 30, 80, 10))
        );
        assert_eq!(
            get("classification"),
            (Some(opts(10000, 8000, 12000, 5000)), opts(50, 30, 80, 10))
        );
    }

    #[test]
    fn unknown_profile_lists_the_known_ones() {
        let mut c = base();
        let err = apply_profile("nope", &mut c).unwrap_err();
        assert_eq!(
            err,
            "unknown profile 'nope' (known profiles: fixed-length, chat, code-generation, classification)"
        );
        // Nothing was changed.
        assert_eq!(c.max_vus, 1);
        assert_eq!(c.profile, None);
    }
}
