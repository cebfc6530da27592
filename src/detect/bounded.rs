//! Bounded shared state: a capped, expiring `DashMap`, and a small
//! HyperLogLog for counting distinct sources in fixed memory.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use crate::time::{Micros, Timestamp};

/// A small map inside a tracker entry: ahash with fixed seeds (fast, and
/// the same iteration order every run, unlike std's randomly seeded SipHash).
pub type FastMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

pub fn fast_map<K, V>() -> FastMap<K, V> {
    FastMap::with_hasher(ahash::RandomState::with_seeds(5, 6, 7, 8))
}

/// State that knows when it was last touched.
pub trait Expiring {
    fn last_seen(&self) -> Timestamp;
}

/// A `DashMap` with a cap on entries and an idle timeout. At the cap, idle
/// entries are dropped first; if none is idle the new key is not tracked and
/// the refusal is counted (`shed`): existing incidents keep being tracked,
/// which is what keeps a flood of new keys from evicting the incident that
/// causes it.
pub struct BoundedMap<K, V> {
    map: DashMap<K, V, ahash::RandomState>,
    cap: usize,
    idle: Micros,
    shed: AtomicU64,
    last_sweep: AtomicU64,
}

impl<K: Eq + Hash + Clone, V: Expiring> BoundedMap<K, V> {
    pub fn new(cap: usize, idle: Micros) -> Self {
        BoundedMap {
            map: DashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4)),
            cap: cap.max(1),
            idle,
            shed: AtomicU64::new(0),
            last_sweep: AtomicU64::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Runs `f` on the entry for `key`, creating it with `make` when absent
    /// and there is room. None when the key could not be tracked.
    pub fn update<R>(
        &self,
        key: &K,
        now: Timestamp,
        make: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R> {
        if let Some(mut e) = self.map.get_mut(key) {
            return Some(f(&mut e));
        }
        if self.map.len() >= self.cap {
            self.sweep(now);
            if self.map.len() >= self.cap {
                self.shed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        let mut e = self.map.entry(key.clone()).or_insert_with(make);
        Some(f(&mut e))
    }

    /// Runs `f` on an existing entry only.
    pub fn with_existing<R>(&self, key: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        self.map.get_mut(key).map(|mut e| f(&mut e))
    }

    /// Drops entries idle since before `now - idle`, at most once per
    /// second of packet time whoever calls (a full map refuses new keys in
    /// between rather than scanning itself on every insert).
    pub fn sweep(&self, now: Timestamp) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.0 < last.saturating_add(1_000_000) && last != 0 {
            return;
        }
        self.last_sweep.store(now.0, Ordering::Relaxed);
        let idle = self.idle;
        self.map
            .retain(|_, v| v.last_seen().saturating_add(idle) > now);
    }
}

/// HyperLogLog with 256 registers (about 6.5% standard error) in 256 bytes.
#[derive(Clone)]
pub struct Hll {
    regs: [u8; 256],
}

impl Default for Hll {
    fn default() -> Self {
        Hll { regs: [0; 256] }
    }
}

impl std::fmt::Debug for Hll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hll(~{})", self.estimate())
    }
}

impl Hll {
    /// Adds a 64-bit hash of an item.
    pub fn add(&mut self, hash: u64) {
        let idx = (hash >> 56) as usize;
        let rank = ((hash << 8) | 0x80).leading_zeros() as u8 + 1;
        if let Some(r) = self.regs.get_mut(idx)
            && rank > *r
        {
            *r = rank;
        }
    }

    pub fn estimate(&self) -> u64 {
        let m = self.regs.len() as f64;
        let sum: f64 = self.regs.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let zeros = self.regs.iter().filter(|&&r| r == 0).count();
        if raw <= 2.5 * m && zeros > 0 {
            // Linear counting for small cardinalities.
            (m * (m / zeros as f64).ln()).round() as u64
        } else {
            raw.round() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(Timestamp);
    impl Expiring for E {
        fn last_seen(&self) -> Timestamp {
            self.0
        }
    }

    #[test]
    fn cap_sheds_new_keys_and_keeps_old_ones() {
        let m: BoundedMap<u32, E> = BoundedMap::new(10, Micros::from_secs(60));
        for k in 0..20 {
            m.update(&k, Timestamp(1), || E(Timestamp(1)), |_| ());
        }
        assert_eq!(m.len(), 10);
        assert_eq!(m.shed(), 10);
        assert!(m.with_existing(&3, |_| ()).is_some());
        // Once idle, old entries make room.
        assert!(
            m.update(
                &99,
                Timestamp(100_000_000),
                || E(Timestamp(100_000_000)),
                |_| ()
            )
            .is_some()
        );
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn hll_estimates_within_its_error() {
        let h = crate::decode::FlowHasher::new(5);
        for n in [10u64, 1000, 50_000] {
            let mut hll = Hll::default();
            for i in 0..n {
                hll.add(h.hash(&i));
            }
            let e = hll.estimate() as f64;
            let err = (e - n as f64).abs() / n as f64;
            assert!(err < 0.2, "n={n} estimate={e}");
        }
    }
}
