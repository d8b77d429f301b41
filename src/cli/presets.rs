//! Values set over the defaults: a `--profile`'s, and `--demo`'s short sweep on the simulated
//! server. Flags given explicitly on the command line still win.

use std::time::Duration;

use clap::ArgMatches;

use super::into_config::is_default;
use super::values::parse_length;
use crate::config::RunConfig;

/// The demo's settings where the command line left the defaults: a whole sweep well under
/// two minutes.
const DEMO_WARMUP: Duration = Duration::from_secs(3);
const DEMO_DURATION: Duration = Duration::from_secs(8);
const DEMO_NUM_RATES: u64 = 5;
const DEMO_MAX_VUS: u64 = 64;
const DEMO_PROMPT: &str = "num_tokens=200,min_tokens=200,max_tokens=200,variance=0";
const DEMO_DECODE: &str = "num_tokens=64,min_tokens=64,max_tokens=64,variance=0";

/// A profile sets its values; flags given explicitly on the command line still win.
pub(super) fn apply_profile_keeping_flags(
    profile: &str,
    cfg: &mut RunConfig,
    m: &ArgMatches,
) -> Result<(), String> {
    let explicit = cfg.clone();
    crate::workload::profiles::apply_profile(profile, cfg)?;
    cfg.profile = Some(profile.to_string());
    macro_rules! keep {
        ($($field:ident => $id:literal),*) => {
            $(if !is_default(m, $id) { cfg.$field = explicit.$field.clone(); })*
        };
    }
    keep!(max_vus => "max_vus", duration => "duration", rates => "rates", num_rates => "num_rates",
          benchmark_kind => "benchmark_kind", warmup => "warmup", prompt_options => "prompt_options",
          decode_options => "decode_options", dataset => "dataset", dataset_file => "dataset_file");
    Ok(())
}

pub(super) fn apply_demo_defaults(cfg: &mut RunConfig, m: &ArgMatches) -> Result<(), String> {
    if is_default(m, "warmup") {
        cfg.warmup = DEMO_WARMUP;
    }
    if is_default(m, "duration") {
        cfg.duration = DEMO_DURATION;
    }
    if is_default(m, "num_rates") {
        cfg.num_rates = DEMO_NUM_RATES;
    }
    if is_default(m, "max_vus") {
        cfg.max_vus = DEMO_MAX_VUS;
    }
    // Synthetic prompts unless a dataset is given: the demo needs no network and no files.
    if cfg.dataset.is_none() && cfg.dataset_file.is_none() {
        cfg.dataset = Some(crate::workload::dataset::SYNTHETIC.into());
        if cfg.prompt_options.is_none() {
            cfg.prompt_options = parse_length("prompt-options", Some(DEMO_PROMPT))?;
        }
    }
    if is_default(m, "decode_options") {
        cfg.decode_options = parse_length("decode-options", Some(DEMO_DECODE))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::cli::parse;

    #[test]
    fn no_dataset_is_the_original_default_and_the_demo_is_synthetic() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            (c.dataset.as_deref(), c.dataset_file.as_deref()),
            (None, None)
        );
        let c = parse(&["--demo"]).unwrap();
        assert_eq!(c.dataset.as_deref(), Some("synthetic"));
        let c = parse(&["--demo", "--dataset-file", "d.json"]).unwrap();
        assert_eq!(c.dataset, None);
        assert!(c.prompt_options.is_none());
    }

    #[test]
    fn profile_values_yield_to_explicit_flags() {
        let c = parse(&["--profile", "fixed-length", "-d", "7s"]).unwrap();
        assert_eq!(c.duration, Duration::from_secs(7));
        assert_eq!(
            c.prompt_options.as_ref().and_then(|p| p.num_tokens),
            Some(200)
        );
        assert_eq!(c.profile.as_deref(), Some("fixed-length"));
    }
}
