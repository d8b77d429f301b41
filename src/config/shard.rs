//! Scale-out: one benchmark spread over N generator processes (`--shards N --shard-index I`, the
//! index defaulting to Kubernetes' `JOB_COMPLETION_INDEX`). Each shard applies 1/N of the load
//! with a seed of its own, labels what it exports, and writes its own results file; `merge`
//! joins the files into one exact result. Pure logic; `Shard::apply`, which gives a `RunConfig` its
//! part, is in `config/mod.rs` (the configuration depends on this type, not the other way).

use serde::Serialize;

/// Which part of a sharded run this process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Shard {
    /// 0-based, below `count`.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `None` for an unsharded run (`count` 1, whatever the index: a lone Job's
    /// `JOB_COMPLETION_INDEX` is harmless).
    pub fn new(count: u32, index: u32) -> Result<Option<Shard>, String> {
        if count == 0 {
            return Err("--shards must be at least 1".into());
        }
        if count > 1 && index >= count {
            return Err(format!(
                "--shard-index {index} is out of range for --shards {count} (0..={})",
                count - 1
            ));
        }
        Ok((count > 1).then_some(Shard { index, count }))
    }

    /// This shard's part of `total` indivisible units (virtual users): the first
    /// `total % count` shards take one more, so the parts add up to `total`.
    pub fn part(self, total: u64) -> u64 {
        let (count, index) = (u64::from(self.count), u64::from(self.index));
        total / count + u64::from(index < total % count)
    }

    /// The name its results file carries: `shard-2-of-3` for index 2 (0-based, as Kubernetes'
    /// `JOB_COMPLETION_INDEX` and Slurm's `SLURM_PROCID` count).
    pub fn label(self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_to_the_whole() {
        for total in [3u64, 10, 128, 1000] {
            let sum: u64 = (0..3)
                .map(|i| Shard { index: i, count: 3 }.part(total))
                .sum();
            assert_eq!(sum, total);
        }
        assert_eq!(Shard { index: 0, count: 3 }.part(10), 4);
        assert_eq!(Shard { index: 2, count: 3 }.part(10), 3);
    }

    #[test]
    fn bad_shards_are_errors() {
        assert!(Shard::new(0, 0).is_err());
        assert!(Shard::new(3, 3).unwrap_err().contains("out of range"));
        assert_eq!(Shard::new(1, 0), Ok(None));
        assert_eq!(Shard::new(1, 4), Ok(None));
        assert_eq!(Shard::new(3, 1), Ok(Some(Shard { index: 1, count: 3 })));
    }
}
