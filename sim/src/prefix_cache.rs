//! The prefix cache: hashed prompt blocks kept in a bounded LRU.
//!
//! Like vLLM's automatic prefix caching, a block's hash covers the whole prefix up to and
//! including that block (each hash chains the previous one), so a hit on block i implies the
//! prompt matches on blocks 0..=i. Only full blocks are cached. Blocks are byte ranges of the
//! prompt text because the server does not always have a tokenizer.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

/// Chained hashes of the full `block_size`-byte blocks of `prompt`.
pub fn prompt_block_hashes(prompt: &[u8], block_size: usize) -> Vec<u64> {
    if block_size == 0 {
        return Vec::new();
    }
    let mut previous = 0u64;
    prompt
        .chunks_exact(block_size)
        .map(|block| {
            // DefaultHasher::new() uses fixed keys: hashes are stable within the process.
            let mut hasher = DefaultHasher::new();
            previous.hash(&mut hasher);
            block.hash(&mut hasher);
            previous = hasher.finish();
            previous
        })
        .collect()
}

/// A bounded LRU set of block hashes.
#[derive(Debug, Default)]
pub struct PrefixCache {
    capacity: usize,
    /// hash → last-use tick.
    last_use: HashMap<u64, u64>,
    /// last-use tick → hash, oldest first: the eviction order.
    by_age: BTreeMap<u64, u64>,
    tick: u64,
}

impl PrefixCache {
    /// A cache holding at most `capacity` blocks (0: caching disabled).
    pub fn new(capacity: usize) -> Self {
        PrefixCache {
            capacity,
            ..Default::default()
        }
    }

    #[cfg(test)]
    /// Number of blocks held.
    pub fn len(&self) -> usize {
        self.last_use.len()
    }

    #[cfg(test)]
    /// True when no block is held.
    pub fn is_empty(&self) -> bool {
        self.last_use.is_empty()
    }

    /// Counts the leading blocks already cached (the reusable prefix), then stores/refreshes
    /// every block of the prompt, as an engine does once the prompt has been prefilled.
    pub fn lookup_and_insert(&mut self, blocks: &[u64]) -> usize {
        if self.capacity == 0 {
            return 0;
        }
        let hits = blocks
            .iter()
            .take_while(|hash| self.last_use.contains_key(hash))
            .count();
        for &hash in blocks {
            self.touch(hash);
        }
        hits
    }

    fn touch(&mut self, hash: u64) {
        self.tick += 1;
        if let Some(old) = self.last_use.insert(hash, self.tick) {
            self.by_age.remove(&old);
        }
        self.by_age.insert(self.tick, hash);
        while self.last_use.len() > self.capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.last_use.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_cover_full_blocks_and_chain() {
        let a = prompt_block_hashes(b"aaaabbbbcc", 4);
        assert_eq!(a.len(), 2);
        // Same second block after a different first block: different hash (chained).
        let b = prompt_block_hashes(b"xxxxbbbb", 4);
        assert_ne!(a[1], b[1]);
        // Same prefix: same hashes.
        assert_eq!(prompt_block_hashes(b"aaaabbbbzzzz", 4)[..2], a[..]);
        assert!(prompt_block_hashes(b"abc", 0).is_empty());
    }

    #[test]
    fn leading_hits_only() {
        let mut cache = PrefixCache::new(100);
        let first = prompt_block_hashes(b"system--prompt--user-one", 8);
        assert_eq!(cache.lookup_and_insert(&first), 0);
        assert_eq!(cache.lookup_and_insert(&first), 3);
        let other = prompt_block_hashes(b"system--prompt--user-two", 8);
        assert_eq!(cache.lookup_and_insert(&other), 2);
    }

    #[test]
    fn lru_eviction_is_bounded() {
        let mut cache = PrefixCache::new(2);
        cache.lookup_and_insert(&[1]);
        cache.lookup_and_insert(&[2]);
        cache.lookup_and_insert(&[1]); // 1 is now the most recent
        cache.lookup_and_insert(&[3]); // evicts 2
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.lookup_and_insert(&[1]), 1);
        assert_eq!(cache.lookup_and_insert(&[2]), 0);
    }

    #[test]
    fn zero_capacity_disables() {
        let mut cache = PrefixCache::new(0);
        assert_eq!(cache.lookup_and_insert(&[1, 2]), 0);
        assert_eq!(cache.lookup_and_insert(&[1, 2]), 0);
        assert!(cache.is_empty());
    }
}
