//! `--cache-salt`: what makes a run's synthetic prompts and images new to a server's caches
//! (see `workload/salt.rs`).

use std::str::FromStr;

use serde::{Serialize, Serializer};

/// The cache salt of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CacheSalt {
    /// A random salt drawn for the run (the default): no two runs share a cache.
    #[default]
    Fresh,
    /// `none`: no salt; prompts and images depend on `--seed` alone (the same seed sends the
    /// same prompts, which a server's prefix cache then serves).
    Off,
    /// A fixed text: runs with the same text and seed send the same prompts (to share a cache
    /// on purpose, or to replay a run: its results' `config.cache_salt`).
    Text(String),
}

impl CacheSalt {
    /// A fresh salt drawn now; the others as they are.
    pub fn resolved(self) -> Self {
        match self {
            CacheSalt::Fresh => CacheSalt::Text(format!("{:016x}", rand::random::<u64>())),
            other => other,
        }
    }

    /// The salt's text (`None` when off, or not yet drawn).
    pub fn text(&self) -> Option<&str> {
        match self {
            CacheSalt::Text(t) => Some(t),
            CacheSalt::Fresh | CacheSalt::Off => None,
        }
    }
}

impl FromStr for CacheSalt {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" => Err("--cache-salt: give a text, or none to turn it off".into()),
            "none" => Ok(CacheSalt::Off),
            text => Ok(CacheSalt::Text(text.to_string())),
        }
    }
}

/// The text, `null` when off (the run resolves a fresh salt before its results are written).
impl Serialize for CacheSalt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CacheSalt::Fresh => s.serialize_str("fresh"),
            CacheSalt::Off => s.serialize_none(),
            CacheSalt::Text(t) => s.serialize_str(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_none_text_and_draws_fresh_ones() {
        assert_eq!("none".parse(), Ok(CacheSalt::Off));
        assert_eq!("ab c".parse(), Ok(CacheSalt::Text("ab c".into())));
        assert!("".parse::<CacheSalt>().is_err());
        let (a, b) = (CacheSalt::Fresh.resolved(), CacheSalt::Fresh.resolved());
        assert_ne!(a, b);
        assert_eq!(a.text().map(str::len), Some(16));
        assert_eq!(CacheSalt::Off.resolved(), CacheSalt::Off);
        assert_eq!(serde_json::to_value(&a).unwrap(), a.text().unwrap());
        assert_eq!(
            serde_json::to_value(CacheSalt::Off).unwrap(),
            serde_json::Value::Null
        );
    }
}
