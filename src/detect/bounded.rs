//! Bounded shared state: a capped, expiring `DashMap`, and a small
//! HyperLogLog for counting distinct sources in fixed memory.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;

use crate::time::{Micros, Timestamp};

/// A small map inside a tracker entry: ahash with fixed seeds (fast, and
/// the same iteration order every run, unlike std's randomly seeded SipHash).
pub type FastMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;

pub fn fast_map<K, V>() -> FastMap<K, V> {
    FastMap::with_hasher(ahash::RandomState::with_seeds(5, 6, 7, 8))
}

/// State that knows when it was last touched, and what it holds on the
/// heap beyond its own size.
pub trait Expiring {
    fn last_seen(&self) -> Timestamp;

    /// Heap bytes the value owns (maps, vectors); must be O(1).
    fn heap_bytes(&self) -> usize {
        0
    }

    /// Whether the entry holds nothing an incident needs yet (a source
    /// with a few targets, a port with a few SYNs), so that a full map may
    /// drop it before it is idle to make room for a new key: `None` for an
    /// entry to keep, else its rank below [`RANKS`]. A full map drops rank
    /// 0 first (one packet of a spoofed flood), oldest first, then rank 1,
    /// and so on: an entry that has seen more is dropped later.
    fn disposable(&self) -> Option<u8> {
        None
    }
}

/// What a tracker holds and what it refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub entries: u64,
    pub bytes: u64,
    /// Keys refused at a cap.
    pub shed: u64,
    /// Disposable entries dropped at a cap before their idle time.
    pub evicted: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            entries: self.entries + o.entries,
            bytes: self.bytes + o.bytes,
            shed: self.shed + o.shed,
            evicted: self.evicted + o.evicted,
        }
    }
}

/// Ranks of disposable entries (see [`Expiring::disposable`]); higher
/// ranks count as the highest.
pub const RANKS: usize = 4;

/// Bookkeeping bytes per map entry beyond the key and value (hash table
/// control byte, load-factor slack, shard overhead), a fixed estimate.
const ENTRY_OVERHEAD: usize = 16;

/// The last `N` events of one kind, by their packet time, newest first:
/// what a judgement made out of processing order (two host pairs' flows,
/// or a live capture's interfaces) looks back in for the one that came
/// before a given time, when the last one noted may be a later one.
#[derive(Clone, Copy, Debug)]
pub struct Recent<T: Copy, const N: usize>([Option<(Timestamp, T)>; N]);

impl<T: Copy, const N: usize> Default for Recent<T, N> {
    fn default() -> Self {
        Recent([None; N])
    }
}

impl<T: Copy, const N: usize> Recent<T, N> {
    /// Notes an event at `at` in its place by time; the oldest falls off.
    pub fn note(&mut self, at: Timestamp, v: T) {
        if let Some(i) = self.0.iter().position(|e| e.is_none_or(|e| e.0 <= at))
            && let Some(tail) = self.0.get_mut(i..)
        {
            tail.rotate_right(1);
            if let Some(first) = tail.first_mut() {
                *first = Some((at, v));
            }
        }
    }

    /// The last event at or before `t`.
    pub fn before(&self, t: Timestamp) -> Option<(Timestamp, T)> {
        self.0.iter().flatten().find(|e| e.0 <= t).copied()
    }
}

/// A `DashMap` capped in entries and in bytes, each entry expiring after an
/// idle time. At a cap, idle entries are dropped first, then disposable
/// ones, lowest rank and oldest first (see [`Expiring::disposable`]), until
/// a quarter of the map is free, in a pass at most once per quarter of the
/// map's size in new keys; if that frees nothing the new key is not tracked and the
/// refusal is counted (`shed`): entries that hold an incident keep being
/// tracked, which is what keeps a flood of new keys from evicting the
/// incident that causes it, while the flood's own keys make room for the
/// next ones. Values that grow (a scanner's
/// targets) are told whether there is room ([`BoundedMap::update_room`]) and
/// count what does not fit instead of storing it.
pub struct BoundedMap<K, V> {
    map: DashMap<K, V, ahash::RandomState>,
    cap: usize,
    max_bytes: usize,
    idle: Micros,
    entries: AtomicUsize,
    bytes: AtomicUsize,
    shed: AtomicU64,
    /// Disposable entries dropped before their idle time.
    evicted: AtomicU64,
    /// Keys not in the map asked for, and at how many the next pass to
    /// drop disposable entries may run.
    new_keys: AtomicU64,
    next_eviction: AtomicU64,
    last_sweep: AtomicU64,
}

impl<K: Eq + Hash + Clone, V: Expiring> BoundedMap<K, V> {
    /// At most `cap` entries and `max_bytes` bytes (keys, values, their heap
    /// and bookkeeping); entries idle for `idle` are dropped.
    pub fn new(cap: usize, max_bytes: usize, idle: Micros) -> Self {
        Self::with_limits(cap, max_bytes, idle)
    }

    /// A detector's tracker: `detect.max_tracked` entries within the
    /// tracker's share of the memory budget.
    pub fn tracker(cfg: &crate::config::DetectConfig, idle: Micros) -> Self {
        Self::with_limits(cfg.max_tracked, cfg.tracker_bytes, idle)
    }

    fn with_limits(cap: usize, max_bytes: usize, idle: Micros) -> Self {
        let base = Self::base_bytes();
        let cap = cap.min(max_bytes / base).max(1);
        // Not sized for the cap up front: a sweep visits every bucket, so
        // the table is kept as large as its entries need.
        let map = DashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4));
        BoundedMap {
            map,
            cap,
            max_bytes,
            idle,
            entries: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            shed: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            new_keys: AtomicU64::new(0),
            next_eviction: AtomicU64::new(0),
            last_sweep: AtomicU64::new(0),
        }
    }

    /// Bytes of an entry without heap.
    pub fn base_bytes() -> usize {
        std::mem::size_of::<K>() + std::mem::size_of::<V>() + ENTRY_OVERHEAD
    }

    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries at most.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Bytes held now (estimate).
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    pub fn usage(&self) -> Usage {
        Usage {
            entries: self.len() as u64,
            bytes: self.bytes() as u64,
            shed: self.shed(),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    fn has_room_for(&self, bytes: usize) -> bool {
        self.len() < self.cap && self.bytes().saturating_add(bytes) <= self.max_bytes
    }

    fn grew(&self, before: usize, after: usize) {
        if after >= before {
            self.bytes.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.bytes.fetch_sub(before - after, Ordering::Relaxed);
        }
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
        self.update_room(key, now, make, |v, _| f(v))
    }

    /// As [`BoundedMap::update`]; `f` is also told how many bytes the map
    /// has left for the value to grow by.
    pub fn update_room<R>(
        &self,
        key: &K,
        now: Timestamp,
        make: impl FnOnce() -> V,
        f: impl FnOnce(&mut V, usize) -> R,
    ) -> Option<R> {
        let room = self.max_bytes.saturating_sub(self.bytes());
        if let Some(mut e) = self.map.get_mut(key) {
            let before = e.heap_bytes();
            let r = f(&mut e, room);
            self.grew(before, e.heap_bytes());
            return Some(r);
        }
        let base = Self::base_bytes();
        let new_keys = self.new_keys.fetch_add(1, Ordering::Relaxed);
        if !self.has_room_for(base) {
            self.sweep_every(now, 1_000_000);
            // A pass over the map for every quarter of its size in new keys
            // at most, whether it frees anything or not.
            // (one worker's, when several find the map full at once).
            let due = self.next_eviction.load(Ordering::Relaxed);
            if !self.has_room_for(base)
                && new_keys >= due
                && self
                    .next_eviction
                    .compare_exchange(
                        due,
                        new_keys + (self.cap / 4) as u64,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                self.evict_disposable(now);
            }
            if !self.has_room_for(base) {
                self.shed.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        let mut e = self.map.entry(key.clone()).or_insert_with(|| {
            self.entries.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(base, Ordering::Relaxed);
            make()
        });
        let before = e.heap_bytes();
        let r = f(&mut e, room);
        self.grew(before, e.heap_bytes());
        Some(r)
    }

    /// Runs `f` on an existing entry only.
    pub fn with_existing<R>(&self, key: &K, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        self.map.get_mut(key).map(|mut e| {
            let before = e.heap_bytes();
            let r = f(&mut e);
            self.grew(before, e.heap_bytes());
            r
        })
    }

    /// Drops entries idle since before `now - idle`. A sweep visits every
    /// entry, so it runs at most every 32nd of the idle time (and at least
    /// a second apart), whoever calls; a full map sweeps sooner (see
    /// [`BoundedMap::update`]), and refuses new keys in between rather than
    /// scanning itself on every insert.
    pub fn sweep(&self, now: Timestamp) {
        self.sweep_every(now, (self.idle.0 / 32).max(1_000_000));
    }

    fn sweep_every(&self, now: Timestamp, every: u64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.0 < last.saturating_add(every) && last != 0 {
            return;
        }
        self.last_sweep.store(now.0, Ordering::Relaxed);
        let idle = self.idle;
        let base = Self::base_bytes();
        self.map.retain(|_, v| {
            let keep = v.last_seen().saturating_add(idle) > now;
            if !keep {
                self.entries.fetch_sub(1, Ordering::Relaxed);
                self.bytes
                    .fetch_sub(base + v.heap_bytes(), Ordering::Relaxed);
            }
            keep
        });
    }

    /// Drops disposable entries, lowest rank and oldest first, until a
    /// quarter of the map (in entries and in bytes) is free or none is
    /// left. Ages are binned by powers of two (one pass to count each bin,
    /// one to drop the first bins), so within the last rank dropped the
    /// entries are at most twice as young as needed.
    fn evict_disposable(&self, now: Timestamp) {
        const AGES: usize = 65;
        // Bins in the order they are dropped: by rank, then oldest first.
        let bin = |v: &V| {
            let age = (u64::BITS - now.since(v.last_seen()).0.leading_zeros()) as usize;
            let rank = usize::from(v.disposable()?).min(RANKS - 1);
            Some(rank * AGES + (AGES - 1 - age))
        };
        let base = Self::base_bytes();
        let (mut count, mut bytes) = ([0usize; RANKS * AGES], [0usize; RANKS * AGES]);
        for e in self.map.iter() {
            if let Some(i) = bin(&e)
                && let (Some(c), Some(b)) = (count.get_mut(i), bytes.get_mut(i))
            {
                *c += 1;
                *b += base + e.heap_bytes();
            }
        }
        // A quarter of the map, and room for one entry at least (a map
        // capped below four entries, or with less than four entries' bytes).
        let need_entries = self.len().saturating_sub(self.cap - (self.cap / 4).max(1));
        let need_bytes = self.bytes().saturating_sub(
            self.max_bytes
                .saturating_sub((self.max_bytes / 4).max(base)),
        );
        let (mut freed_entries, mut freed_bytes, mut upto) = (0, 0, 0);
        while upto < RANKS * AGES && (freed_entries < need_entries || freed_bytes < need_bytes) {
            freed_entries += count.get(upto).copied().unwrap_or(0);
            freed_bytes += bytes.get(upto).copied().unwrap_or(0);
            upto += 1;
        }
        if freed_entries == 0 {
            return;
        }
        self.map.retain(|_, v| {
            let keep = bin(v).is_none_or(|i| i >= upto);
            if !keep {
                self.entries.fetch_sub(1, Ordering::Relaxed);
                self.bytes
                    .fetch_sub(base + v.heap_bytes(), Ordering::Relaxed);
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
            keep
        });
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

/// Keys seen lately, in fixed memory: two generations of a Bloom filter
/// of [`Recall::BITS_PER_KEY`] bits a key, each holding the keys noted
/// while it was the current one, up to `keys` of them, the older one
/// emptied and made current when the current one is full. A key is
/// recalled for between one and two generations after it was last noted
/// (longer, by chance, at a false-positive rate of about 0.24 % a
/// generation); shared by the workers, lock-free.
///
/// A tracker that turns its entries over faster than a slow client comes
/// back (a spoofed-source flood filling it) forgets that client between
/// its packets; the filter remembers it in two bytes a key a generation
/// (a tracker's entry takes hundreds).
pub struct Recall {
    gens: [Box<[AtomicU64]>; 2],
    /// Bits of a generation.
    bits: u64,
    /// Keys a generation holds before the next one starts.
    keys: u64,
    /// Keys added to the current generation since the first; its index is
    /// `added / keys`.
    added: AtomicU64,
    hasher: ahash::RandomState,
}

impl Recall {
    pub const BITS_PER_KEY: usize = 16;
    /// Bits set (and tested) a key: with 16 bits a key, a false positive
    /// rate of about 0.24 % in a full generation.
    const PROBES: u64 = 4;

    /// Generations of `keys` keys each (one at least).
    pub fn new(keys: usize) -> Self {
        let keys = keys.max(1);
        let words = keys.saturating_mul(Self::BITS_PER_KEY).div_ceil(64);
        let generation = || (0..words).map(|_| AtomicU64::new(0)).collect();
        Recall {
            gens: [generation(), generation()],
            bits: words as u64 * 64,
            keys: keys as u64,
            added: AtomicU64::new(0),
            hasher: ahash::RandomState::with_seeds(9, 10, 11, 12),
        }
    }

    /// Bytes a filter for generations of `keys` keys holds.
    pub fn bytes_for(keys: usize) -> usize {
        2 * keys.max(1).saturating_mul(Self::BITS_PER_KEY).div_ceil(64) * 8
    }

    pub fn bytes(&self) -> usize {
        self.gens.iter().map(|g| g.len() * 8).sum()
    }

    /// The bit positions of a key's hash `h` (double hashing, mapped onto
    /// the generation's bits by multiply-shift): word and mask.
    fn positions(&self, h: u64) -> impl Iterator<Item = (usize, u64)> + use<> {
        let (h2, bits) = (h.rotate_left(32) | 1, self.bits);
        (0..Self::PROBES).map(move |i| {
            let at = u128::from(h.wrapping_add(i.wrapping_mul(h2)));
            let bit = ((at * u128::from(bits)) >> 64) as u64;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    fn holds(&self, generation: usize, h: u64) -> bool {
        let Some(g) = self.gens.get(generation) else {
            return false;
        };
        self.positions(h)
            .all(|(w, m)| g.get(w).is_some_and(|x| x.load(Ordering::Relaxed) & m != 0))
    }

    /// Notes `key`; whether it had been noted in this generation or the
    /// one before.
    pub fn note(&self, key: &impl Hash) -> bool {
        let h = self.hasher.hash_one(key);
        let current = (self.added.load(Ordering::Relaxed) / self.keys % 2) as usize;
        if self.holds(current, h) {
            return true;
        }
        let before = self.holds(1 - current, h);
        if let Some(g) = self.gens.get(current) {
            for (w, m) in self.positions(h) {
                if let Some(x) = g.get(w) {
                    x.fetch_or(m, Ordering::Relaxed);
                }
            }
        }
        let added = self.added.fetch_add(1, Ordering::Relaxed) + 1;
        if added.is_multiple_of(self.keys) {
            // The current generation is full: the older one, emptied, takes
            // the keys from now on. (A key noted into it by another worker
            // while it is emptied may be lost: it is noted again when it
            // comes back.)
            let next = (added / self.keys % 2) as usize;
            if let Some(g) = self.gens.get(next) {
                for x in g.iter() {
                    x.store(0, Ordering::Relaxed);
                }
            }
        }
        before
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
        let m: BoundedMap<u32, E> = BoundedMap::new(10, usize::MAX, Micros::from_secs(60));
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

    /// A value that owns `.1` heap bytes, disposable at rank `.2`.
    #[derive(Debug)]
    struct Big(Timestamp, usize, Option<u8>);
    impl Expiring for Big {
        fn last_seen(&self) -> Timestamp {
            self.0
        }
        fn heap_bytes(&self) -> usize {
            self.1
        }
        fn disposable(&self) -> Option<u8> {
            self.2
        }
    }

    #[test]
    fn byte_cap_limits_entries() {
        let base = BoundedMap::<u32, Big>::base_bytes();
        let m: BoundedMap<u32, Big> = BoundedMap::new(1000, 10 * base, Micros::from_secs(60));
        assert_eq!(m.cap(), 10, "the byte cap makes the entry cap");
        for k in 0..20 {
            m.update(&k, Timestamp(1), || Big(Timestamp(1), 0, None), |_| ());
        }
        assert_eq!((m.len(), m.shed(), m.bytes()), (10, 10, 10 * base));
        // Idle entries give their bytes back.
        m.sweep(Timestamp(120_000_000));
        assert_eq!((m.len(), m.bytes()), (0, 0));
    }

    #[test]
    fn growth_is_allowed_while_there_is_room() {
        let base = BoundedMap::<u32, Big>::base_bytes();
        assert!(base < 100);
        let m: BoundedMap<u32, Big> = BoundedMap::new(1000, 3 * base + 500, Micros::from_secs(60));
        let mut rooms = Vec::new();
        for _ in 0..4 {
            m.update_room(
                &1,
                Timestamp(1),
                || Big(Timestamp(1), 0, None),
                |v, left| {
                    rooms.push(left >= 200);
                    if left >= 200 {
                        v.1 += 200;
                    }
                },
            );
        }
        // Room for 200 more until fewer than 200 bytes are left.
        let grown = (2 * base + 500) / 200;
        assert_eq!(rooms.iter().filter(|r| **r).count(), grown.min(4));
        assert_eq!(m.bytes(), base + 200 * grown.min(4));
        assert!(m.bytes() <= 3 * base + 500);
        m.sweep(Timestamp(120_000_000));
        assert_eq!((m.len(), m.bytes()), (0, 0));
    }

    /// A value that holds an incident (`.1` None) or not (its rank).
    #[derive(Debug)]
    struct D(Timestamp, Option<u8>);
    impl Expiring for D {
        fn last_seen(&self) -> Timestamp {
            self.0
        }
        fn disposable(&self) -> Option<u8> {
            self.1
        }
    }

    #[test]
    fn a_full_map_drops_its_oldest_disposable_entries() {
        let m: BoundedMap<u32, D> = BoundedMap::new(100, usize::MAX, Micros::from_secs(600));
        // 20 entries that hold incidents, then 80 disposable ones, a
        // millisecond apart.
        for k in 0..100u32 {
            let t = Timestamp(1_000 * u64::from(k) + 1);
            m.update(&k, t, || D(t, (k >= 20).then_some(0)), |_| ());
        }
        assert_eq!((m.len(), m.shed()), (100, 0));
        // A new key: the oldest disposable entries make room for a quarter
        // of the map (ages binned by powers of two: up to twice as many).
        let t = Timestamp(101_000);
        assert!(m.update(&1000, t, || D(t, Some(0)), |_| ()).is_some());
        let u = m.usage();
        assert_eq!(u.shed, 0);
        assert!((25..=50).contains(&u.evicted), "{u:?}");
        assert_eq!(u.entries, 101 - u.evicted);
        for k in (0..20).chain(70..100).chain([1000]) {
            assert!(m.with_existing(&k, |_| ()).is_some(), "{k}");
        }
        assert!(m.with_existing(&20, |_| ()).is_none());

        // Full of incidents: new keys are refused, and the map is looked
        // through again only after a quarter of its size in new keys.
        let m: BoundedMap<u32, D> = BoundedMap::new(100, usize::MAX, Micros::from_secs(600));
        for k in 0..100u32 {
            m.update(&k, Timestamp(1), || D(Timestamp(1), None), |_| ());
        }
        for k in 100..200u32 {
            assert!(
                m.update(&k, Timestamp(2), || D(Timestamp(2), Some(0)), |_| ())
                    .is_none()
            );
        }
        assert_eq!((m.len(), m.shed(), m.usage().evicted), (100, 100, 0));
        assert_eq!(m.next_eviction.load(Ordering::Relaxed), 200);
    }

    /// Disposable entries of a lower rank go first, however young; ranks
    /// above the last count as the last.
    #[test]
    fn a_full_map_drops_lower_ranks_first() {
        let m: BoundedMap<u32, D> = BoundedMap::new(100, usize::MAX, Micros::from_secs(600));
        for k in 0..100u32 {
            let t = Timestamp(1_000 * u64::from(k) + 1);
            let rank = match k {
                0..20 => 200,
                20..50 => 1,
                _ => 0,
            };
            m.update(&k, t, || D(t, Some(rank)), |_| ());
        }
        let kept = |k: u32| m.with_existing(&k, |_| ()).is_some();
        let t = Timestamp(101_000);
        assert!(m.update(&1000, t, || D(t, Some(0)), |_| ()).is_some());
        let u = m.usage();
        assert!((25..=50).contains(&u.evicted), "{u:?}");
        assert!((0..50).all(kept));
        assert!(!kept(50));
        // Entries that hold incidents come in: rank 1 goes before the
        // older entries of rank 200, which go last but go.
        let mut k = 2000;
        while kept(20) && k < 2200 {
            assert!(m.update(&k, t, || D(t, None), |_| ()).is_some());
            k += 1;
        }
        assert!(!kept(20) && (0..20).all(kept), "after {k}");
        while kept(0) && k < 2200 {
            m.update(&k, t, || D(t, None), |_| ());
            k += 1;
        }
        assert!(!kept(0), "after {k}");
        assert_eq!(m.usage().shed, 0);
    }

    /// A map of fewer than four entries still makes room for one.
    #[test]
    fn a_tiny_map_drops_a_disposable_entry() {
        let m: BoundedMap<u32, D> = BoundedMap::new(2, usize::MAX, Micros::from_secs(600));
        for k in 0..3u32 {
            let t = Timestamp(1_000 * u64::from(k) + 1);
            assert!(m.update(&k, t, || D(t, Some(0)), |_| ()).is_some(), "{k}");
        }
        let u = m.usage();
        assert_eq!((u.entries, u.evicted, u.shed), (2, 1, 0));
        assert!(m.with_existing(&0, |_| ()).is_none());

        // Full in bytes below its cap in entries: one entry of two, grown.
        let base = BoundedMap::<u32, Big>::base_bytes();
        let m: BoundedMap<u32, Big> = BoundedMap::new(1000, 2 * base, Micros::from_secs(600));
        let t = Timestamp(1);
        m.update(&0, t, || Big(t, 0, Some(0)), |h| h.1 = base / 2);
        assert_eq!((m.len(), m.cap()), (1, 2));
        let t = Timestamp(2);
        assert!(m.update(&1, t, || Big(t, 0, Some(0)), |_| ()).is_some());
        let u = m.usage();
        assert_eq!((u.entries, u.evicted, u.shed), (1, 1, 0));
    }

    #[test]
    fn recall_remembers_a_generation_or_two_and_rarely_invents() {
        let r = Recall::new(1000);
        assert_eq!(r.bytes(), Recall::bytes_for(1000));
        assert_eq!(r.bytes(), 2 * 1000 * Recall::BITS_PER_KEY / 8);
        assert!(!r.note(&"scanner"), "new");
        assert!(r.note(&"scanner"), "noted in this generation");
        // 1,500 other keys: the generation it was noted in is now the
        // older one, still recalled; noting it again keeps it current.
        for k in 0..1500u32 {
            r.note(&k);
        }
        assert!(r.note(&"scanner"), "noted in the generation before");
        // Two full generations without it: forgotten.
        for k in 1500..3600u32 {
            r.note(&k);
        }
        assert!(!r.note(&"scanner"), "forgotten after two generations");
        // Keys never noted, through full generations: about 0.24 % of a
        // full generation's bits match by chance, less of a filling one.
        let recalled = (0..100_000u64).filter(|k| r.note(&(k + (1 << 40)))).count();
        assert!(recalled < 500, "{recalled} of 100,000 new keys recalled");
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
