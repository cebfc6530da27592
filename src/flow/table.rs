//! The per-worker flow table: a slab of flows, a hash index over it, and
//! one LRU list per timeout class (protocol × flow state).
//!
//! The index holds only slot numbers (4 bytes a flow; the key lives once,
//! in the slot) and grows with the flows; the slab is reserved up front for
//! the cap: it becomes resident page by page as flows arrive and never
//! reallocates, so memory per flow is the slot plus a few bytes of index.
//! Callers hash a key once per packet ([`FlowTable::hash`]) and pass the
//! hash to lookup and insert.
//!
//! Within a class every flow has the same timeout, and a list is in the
//! order its flows were last moved to its tail: expiry costs O(expired) per
//! call, never a scan. A packet moves its flow only when the packet time
//! enters a new granule (a power of two of microseconds, at most about a
//! second and at most a sixteenth of the class's shortest timeout): moving
//! unlinks the slot from two others, two cache misses a packet in a table
//! larger than the cache, while most packets of a flow follow the previous
//! one within a granule. A flow is never moved before it was last seen, nor
//! seen a granule after, so the head is within a granule of the next flow
//! to expire, and an idle flow's record is written at most a granule late
//! (a packet of a flow that has timed out still finds it ended, exactly:
//! see [`FlowTable::is_expired`]).
//! The table is capped at `max_flows`. At the cap it enters emergency mode
//! (as Suricata does): shorter timeouts apply, and if nothing has timed out
//! the least recently seen flow of any class (to within a granule) is
//! evicted (`reason: forced`), each eviction counted and the flow's record
//! flagged `emergency`. It leaves emergency mode once occupancy falls below
//! the recovery level.

use hashbrown::HashTable;

use super::{EndReason, Flow, FlowKey, FlowState};
use crate::decode::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::time::{Micros, Timestamp};

const NIL: u32 = u32::MAX;
/// Protocol groups × flow states.
const CLASSES: usize = 12;

/// Timeouts per protocol group (tcp, udp, icmp, other) and flow state
/// (new, established, closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts(pub [[Micros; 3]; 4]);

impl Timeouts {
    /// Suricata's defaults (suricata.yaml: flow-timeouts).
    pub fn suricata_default() -> Self {
        let s = Micros::from_secs;
        Timeouts([
            [s(60), s(600), s(60)],
            [s(30), s(300), s(30)],
            [s(30), s(300), s(30)],
            [s(30), s(300), s(30)],
        ])
    }
    /// Suricata's emergency defaults.
    pub fn suricata_emergency() -> Self {
        let s = Micros::from_secs;
        Timeouts([
            [s(5), s(100), s(10)],
            [s(10), s(100), s(10)],
            [s(10), s(100), s(10)],
            [s(10), s(100), s(10)],
        ])
    }
    fn get(&self, class: usize) -> Micros {
        self.0
            .get(class / 3)
            .and_then(|g| g.get(class % 3))
            .copied()
            .unwrap_or(Micros(0))
    }
}

#[derive(Clone, Debug)]
pub struct TableConfig {
    pub max_flows: usize,
    pub timeouts: Timeouts,
    pub emergency_timeouts: Timeouts,
    /// Emergency mode ends when occupancy falls to this share of the cap.
    pub recovery_percent: u8,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            max_flows: 1_000_000,
            timeouts: Timeouts::suricata_default(),
            emergency_timeouts: Timeouts::suricata_emergency(),
            recovery_percent: 70,
        }
    }
}

/// Counters a table keeps (merged across workers into `stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableCounters {
    /// Flows created, per protocol group (tcp, udp, icmp, other).
    pub created: [u64; 4],
    pub ended_timeout: u64,
    pub ended_forced: u64,
    pub ended_shutdown: u64,
    pub ended_tcp_reuse: u64,
    pub emergency_entered: u64,
    pub emergency_over: u64,
    pub max_active: u64,
}

#[derive(Clone, Debug)]
struct Slot {
    flow: Flow,
    prev: u32,
    next: u32,
}

#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
}

/// Marks a flow as out of the table (and, when the table is in emergency
/// mode and the run is not ending, as ended by it), then hands it to
/// `on_end`: what ending a flow means, one at a time or all at once.
fn hand_over(
    flow: &mut Flow,
    reason: EndReason,
    emergency: bool,
    on_end: &mut dyn FnMut(&Flow, EndReason),
) {
    flow.set_in_table(false);
    if emergency && reason != EndReason::Shutdown {
        flow.set_emergency(true);
    }
    on_end(flow, reason);
}

pub struct FlowTable {
    /// Slot numbers, by the hash of their flow's key.
    index: HashTable<u32>,
    hasher: ahash::RandomState,
    live: usize,
    slots: Vec<Slot>,
    free: Vec<u32>,
    lists: [List; CLASSES],
    cfg: TableConfig,
    emergency: bool,
    /// Per class, log2 of its granule in microseconds (see the module).
    granule: [u32; CLASSES],
    pub counters: TableCounters,
}

/// log2 of the granule of a class whose shortest timeout is `t`.
fn granule_shift(t: Micros) -> u32 {
    (t.0 / 16).clamp(1, 1 << 20).ilog2()
}

fn group(proto: u8) -> usize {
    match proto {
        PROTO_TCP => 0,
        PROTO_UDP => 1,
        PROTO_ICMP | PROTO_ICMPV6 => 2,
        _ => 3,
    }
}

fn class_of(flow: &Flow) -> usize {
    let state = match flow.state() {
        FlowState::New => 0,
        FlowState::Established => 1,
        FlowState::Closed => 2,
    };
    group(flow.key.proto) * 3 + state
}

/// The hash of a flow key in the table's index.
fn hash_key(hasher: &ahash::RandomState, key: &FlowKey) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = hasher.build_hasher();
    for w in key.words() {
        h.write_u64(w);
    }
    h.finish()
}

impl FlowTable {
    pub fn new(cfg: TableConfig, seed: u64) -> Self {
        let hasher = ahash::RandomState::with_seeds(
            seed,
            !seed,
            seed.rotate_left(29),
            0x5851_f42d_4c95_7f2d,
        );
        // The slab is reserved, not touched: its pages become resident as
        // slots are used, and it never moves. The index grows with the
        // flows instead: reserved for the cap it would spread a few flows
        // over megabytes, and every lookup of a new key (a flood's) would
        // miss the cache.
        let cap = cfg.max_flows.clamp(1, 1 << 24);
        let granule = std::array::from_fn(|class| {
            granule_shift(
                cfg.timeouts
                    .get(class)
                    .min(cfg.emergency_timeouts.get(class)),
            )
        });
        FlowTable {
            index: HashTable::new(),
            hasher,
            live: 0,
            slots: Vec::with_capacity(cap),
            free: Vec::new(),
            lists: [List::EMPTY; CLASSES],
            cfg,
            emergency: false,
            granule,
            counters: TableCounters::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The hash of `key` that [`FlowTable::lookup_hashed`] and
    /// [`FlowTable::insert_hashed`] take.
    pub fn hash(&self, key: &FlowKey) -> u64 {
        hash_key(&self.hasher, key)
    }

    pub fn in_emergency(&self) -> bool {
        self.emergency
    }

    pub fn lookup(&self, key: &FlowKey) -> Option<u32> {
        self.lookup_hashed(key, self.hash(key))
    }

    /// [`FlowTable::lookup`] with the key's hash already computed.
    pub fn lookup_hashed(&self, key: &FlowKey, hash: u64) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(hash, |&i| {
                slots.get(i as usize).is_some_and(|s| {
                    // A packet reads most of its flow's slot: ask for all
                    // of its lines at once rather than one after another
                    // as its fields are first read.
                    crate::cache::prefetch_all(s);
                    s.flow.in_table() && s.flow.key == *key
                })
            })
            .copied()
    }

    /// Starts loading the slots of the flows whose index entries match
    /// `hash` (the index itself is read now), so that a lookup of that
    /// key a few packets later finds them in the cache.
    pub fn prefetch(&self, hash: u64) {
        let slots = &self.slots;
        let _ = self.index.find(hash, |&i| {
            if let Some(s) = slots.get(i as usize) {
                crate::cache::prefetch_all(s);
            }
            false
        });
    }

    pub fn get(&self, idx: u32) -> Option<&Flow> {
        self.slots
            .get(idx as usize)
            .filter(|s| s.flow.in_table())
            .map(|s| &s.flow)
    }

    pub fn get_mut(&mut self, idx: u32) -> Option<&mut Flow> {
        self.slots
            .get_mut(idx as usize)
            .filter(|s| s.flow.in_table())
            .map(|s| &mut s.flow)
    }

    fn timeout(&self, class: usize) -> Micros {
        if self.emergency {
            self.cfg.emergency_timeouts.get(class)
        } else {
            self.cfg.timeouts.get(class)
        }
    }

    /// Whether the flow in `idx` has timed out at `now`.
    pub fn is_expired(&self, idx: u32, now: Timestamp) -> bool {
        self.slots.get(idx as usize).is_some_and(|s| {
            s.flow.in_table()
                && s.flow
                    .last
                    .saturating_add(self.timeout(usize::from(s.flow.table_class)))
                    <= now
        })
    }

    fn unlink(&mut self, idx: u32) {
        let Some(slot) = self.slots.get(idx as usize) else {
            return;
        };
        let (prev, next, class) = (slot.prev, slot.next, usize::from(slot.flow.table_class));
        match self.slots.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => {
                if let Some(l) = self.lists.get_mut(class) {
                    l.head = next;
                }
            }
        }
        match self.slots.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => {
                if let Some(l) = self.lists.get_mut(class) {
                    l.tail = prev;
                }
            }
        }
    }

    fn push_tail(&mut self, idx: u32, class: usize) {
        let Some(list) = self.lists.get(class).copied() else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(idx as usize) {
            slot.prev = list.tail;
            slot.next = NIL;
            slot.flow.table_class = class as u8;
        }
        match self.slots.get_mut(list.tail as usize) {
            Some(t) => t.next = idx,
            None => {
                if let Some(l) = self.lists.get_mut(class) {
                    l.head = idx;
                }
            }
        }
        if let Some(l) = self.lists.get_mut(class) {
            l.tail = idx;
        }
    }

    /// Moves a flow to the tail of its (possibly new) class after an update
    /// that saw it at `flow.last`, `before` the time it was seen until then:
    /// only if its class changed or the update entered a new granule (see
    /// the module).
    pub fn touch(&mut self, idx: u32, before: Timestamp) {
        let Some(slot) = self.slots.get(idx as usize) else {
            return;
        };
        if !slot.flow.in_table() {
            return;
        }
        let class = class_of(&slot.flow);
        if usize::from(slot.flow.table_class) == class {
            let shift = self.granule.get(class).copied().unwrap_or(0);
            if slot.next == NIL || before.0 >> shift == slot.flow.last.0 >> shift {
                return;
            }
        }
        self.unlink(idx);
        self.push_tail(idx, class);
    }

    /// Ends the flow in `idx`, handing it to `on_end` first.
    pub fn remove(
        &mut self,
        idx: u32,
        reason: EndReason,
        on_end: &mut dyn FnMut(&Flow, EndReason),
    ) {
        let emergency = self.emergency;
        let Some(slot) = self.slots.get_mut(idx as usize) else {
            return;
        };
        if !slot.flow.in_table() {
            return;
        }
        hand_over(&mut slot.flow, reason, emergency, on_end);
        let hash = hash_key(&self.hasher, &slot.flow.key);
        self.unlink(idx);
        if let Ok(e) = self.index.find_entry(hash, |&i| i == idx) {
            e.remove();
        }
        self.live = self.live.saturating_sub(1);
        self.free.push(idx);
        self.count_ended(reason, 1);
    }

    fn count_ended(&mut self, reason: EndReason, n: u64) {
        let c = &mut self.counters;
        let counter = match reason {
            EndReason::Timeout => &mut c.ended_timeout,
            EndReason::Forced => &mut c.ended_forced,
            EndReason::Shutdown => &mut c.ended_shutdown,
            EndReason::TcpReuse => &mut c.ended_tcp_reuse,
        };
        *counter += n;
    }

    /// Ends every flow that has timed out at `now`.
    pub fn expire(&mut self, now: Timestamp, on_end: &mut dyn FnMut(&Flow, EndReason)) {
        for class in 0..CLASSES {
            let timeout = self.timeout(class);
            loop {
                let head = self.lists.get(class).map_or(NIL, |l| l.head);
                let Some(slot) = self.slots.get(head as usize) else {
                    break;
                };
                if slot.flow.last.saturating_add(timeout) > now {
                    break;
                }
                self.remove(head, EndReason::Timeout, on_end);
            }
        }
        self.check_recovery();
    }

    fn check_recovery(&mut self) {
        let level = self
            .cfg
            .max_flows
            .saturating_mul(usize::from(self.cfg.recovery_percent))
            / 100;
        if self.emergency && self.live <= level {
            self.emergency = false;
            self.counters.emergency_over += 1;
        }
    }

    /// Inserts a new flow, making room first if the table is full.
    pub fn insert(
        &mut self,
        flow: Flow,
        now: Timestamp,
        on_end: &mut dyn FnMut(&Flow, EndReason),
    ) -> u32 {
        let hash = self.hash(&flow.key);
        self.insert_hashed(flow, hash, now, on_end)
    }

    /// [`FlowTable::insert`] with the key's hash already computed.
    pub fn insert_hashed(
        &mut self,
        flow: Flow,
        hash: u64,
        now: Timestamp,
        on_end: &mut dyn FnMut(&Flow, EndReason),
    ) -> u32 {
        if self.live >= self.cfg.max_flows.max(1) {
            if !self.emergency {
                self.emergency = true;
                self.counters.emergency_entered += 1;
            }
            self.expire(now, on_end);
            if self.live >= self.cfg.max_flows.max(1) {
                self.evict_oldest(on_end);
            }
        }
        let class = class_of(&flow);
        if let Some(n) = self.counters.created.get_mut(group(flow.key.proto)) {
            *n += 1;
        }
        let mut flow = flow;
        flow.set_in_table(true);
        flow.table_class = class as u8;
        let slot = Slot {
            flow,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    *s = slot;
                }
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.push_tail(idx, class);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.index.insert_unique(hash, idx, |&i| {
            slots
                .get(i as usize)
                .map_or(0, |s| hash_key(hasher, &s.flow.key))
        });
        self.live += 1;
        self.counters.max_active = self.counters.max_active.max(self.live as u64);
        idx
    }

    /// Evicts the least recently seen flow of any class (to within a granule:
    /// the oldest of the lists' heads).
    fn evict_oldest(&mut self, on_end: &mut dyn FnMut(&Flow, EndReason)) {
        let oldest = self
            .lists
            .iter()
            .filter_map(|l| {
                self.slots
                    .get(l.head as usize)
                    .map(|s| (s.flow.last, l.head))
            })
            .min();
        if let Some((_, idx)) = oldest {
            self.remove(idx, EndReason::Forced, on_end);
        }
    }

    /// Ends every flow (end of input, shutdown, a new capture), oldest
    /// first per class, and empties the table.
    ///
    /// Each flow is handed to `on_end` as [`FlowTable::remove`] would, but
    /// nothing is unlinked or unindexed one flow at a time: the lists are
    /// walked and then the index, the slab and the lists are reset at once
    /// (per-flow index removal was a third of the time of ending a million
    /// flows: each one a cache miss in an index of megabytes).
    pub fn drain(&mut self, reason: EndReason, on_end: &mut dyn FnMut(&Flow, EndReason)) {
        let emergency = self.emergency;
        let mut ended = 0u64;
        for class in 0..CLASSES {
            let mut i = self.lists.get(class).map_or(NIL, |l| l.head);
            while let Some(slot) = self.slots.get_mut(i as usize) {
                i = slot.next;
                hand_over(&mut slot.flow, reason, emergency, on_end);
                ended += 1;
            }
        }
        self.index.clear();
        self.slots.clear();
        self.free.clear();
        self.lists = [List::EMPTY; CLASSES];
        self.live = 0;
        self.count_ended(reason, ended);
    }

    /// Heap bytes per tracked flow: its slot, and its index entry (a slot
    /// number and a control byte, at hashbrown's maximum load of 7/8).
    pub const fn bytes_per_flow() -> usize {
        std::mem::size_of::<Slot>() + (std::mem::size_of::<u32>() + 1) * 8 / 7
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::decode::Addr;
    use crate::flow::Initiator;

    fn flow(n: u16, proto: u8, ts: u64) -> Flow {
        let (key, lo) = FlowKey::new(
            Addr::from([10, 0, 0, 1]),
            n,
            Addr::from([10, 0, 0, 2]),
            80,
            proto,
            [0; 2],
        );
        Flow::new(key, Timestamp(ts), lo, Initiator::FirstPacket)
    }

    #[test]
    fn expiry_follows_per_class_timeouts() {
        let mut t = FlowTable::new(TableConfig::default(), 1);
        let ended = std::cell::RefCell::new(Vec::new());
        let mut on_end = |f: &Flow, r| ended.borrow_mut().push((f.key.proto, r));
        // UDP new: 30 s; TCP new: 60 s.
        t.insert(flow(1000, PROTO_UDP, 0), Timestamp(0), &mut on_end);
        t.insert(flow(1001, PROTO_TCP, 0), Timestamp(0), &mut on_end);
        t.expire(Timestamp(29_999_999), &mut on_end);
        assert!(ended.borrow().is_empty());
        t.expire(Timestamp(30_000_000), &mut on_end);
        assert_eq!(*ended.borrow(), vec![(PROTO_UDP, EndReason::Timeout)]);
        t.expire(Timestamp(60_000_000), &mut on_end);
        assert_eq!(ended.borrow().len(), 2);
        assert!(t.is_empty());
    }

    #[test]
    fn touch_keeps_recent_flows_alive() {
        let mut t = FlowTable::new(TableConfig::default(), 1);
        let mut n = 0;
        let mut on_end = |_: &Flow, _| n += 1;
        let a = t.insert(flow(1, PROTO_UDP, 0), Timestamp(0), &mut on_end);
        t.insert(flow(2, PROTO_UDP, 0), Timestamp(0), &mut on_end);
        t.get_mut(a).unwrap().last = Timestamp(20_000_000);
        t.touch(a, Timestamp(0));
        t.expire(Timestamp(40_000_000), &mut on_end);
        assert_eq!(t.len(), 1);
        assert!(t.get(a).is_some());
        assert_eq!(n, 1);
    }

    #[test]
    fn touch_within_a_granule_keeps_the_order_and_expiry_is_at_most_a_granule_late() {
        // UDP, new: timeouts 30 s and 10 s in emergency, so a granule of
        // 2^19 us (10 s / 16 = 625 ms, rounded down to a power of two).
        let mut t = FlowTable::new(TableConfig::default(), 1);
        assert_eq!(t.granule[3], 19);
        let mut ended = Vec::new();
        let a = t.insert(flow(1, PROTO_UDP, 0), Timestamp(0), &mut |_, _| {});
        let b = t.insert(flow(2, PROTO_UDP, 100), Timestamp(100), &mut |_, _| {});
        // A packet of `a` in the same granule: `a` stays ahead of `b`.
        t.get_mut(a).unwrap().last = Timestamp(400_000);
        t.touch(a, Timestamp(0));
        let b_due = Timestamp(30_000_100);
        // `b` has timed out (its next packet would find it ended)...
        assert!(t.is_expired(b, b_due));
        assert!(!t.is_expired(a, b_due));
        // ...but its record waits for `a`, which is ahead of it in the list.
        t.expire(b_due, &mut |f, _| ended.push(f.key.lo_port));
        assert!(ended.is_empty());
        let a_due = Timestamp(30_400_000);
        assert!(a_due.0 - b_due.0 < 1 << 19);
        t.expire(a_due, &mut |f, _| ended.push(f.key.lo_port));
        assert_eq!(ended, vec![1, 2]);

        // A packet in the next granule moves the flow behind the others.
        let mut t = FlowTable::new(TableConfig::default(), 1);
        let mut ended = Vec::new();
        let a = t.insert(flow(1, PROTO_UDP, 0), Timestamp(0), &mut |_, _| {});
        t.insert(flow(2, PROTO_UDP, 100), Timestamp(100), &mut |_, _| {});
        t.get_mut(a).unwrap().last = Timestamp(1 << 19);
        t.touch(a, Timestamp(0));
        t.expire(Timestamp(30_000_100), &mut |f, _| ended.push(f.key.lo_port));
        assert_eq!(ended, vec![2]);
    }

    #[test]
    fn cap_holds_and_evicts_oldest_in_emergency() {
        let cfg = TableConfig {
            max_flows: 100,
            ..TableConfig::default()
        };
        let mut t = FlowTable::new(cfg, 1);
        let mut ended: Vec<(u64, EndReason, bool)> = Vec::new();
        let mut on_end = |f: &Flow, r| ended.push((u64::from(f.key.lo_port), r, f.emergency()));
        for i in 0..1000u16 {
            // All within one second: nothing can time out, even in emergency.
            t.insert(
                flow(i, PROTO_TCP, u64::from(i)),
                Timestamp(u64::from(i)),
                &mut on_end,
            );
            assert!(t.len() <= 100);
        }
        assert_eq!(ended.len(), 900);
        // Oldest first, every one flagged.
        assert!(
            ended
                .iter()
                .enumerate()
                .all(|(i, &(id, r, em))| id == i as u64 && r == EndReason::Forced && em)
        );
        assert_eq!(t.counters.ended_forced, 900);
        assert_eq!(t.counters.emergency_entered, 1);
        assert!(t.in_emergency());
        // Emergency timeouts (TCP new: 5 s) then clear the table, and the mode ends.
        let mut on_end = |_: &Flow, _| {};
        t.expire(Timestamp(10_000_000), &mut on_end);
        assert!(t.is_empty());
        assert!(!t.in_emergency());
        assert_eq!(t.counters.emergency_over, 1);
    }

    #[test]
    fn drain_ends_everything() {
        let mut t = FlowTable::new(TableConfig::default(), 1);
        let mut n = 0;
        let mut on_end = |_: &Flow, r| {
            assert_eq!(r, EndReason::Shutdown);
            n += 1;
        };
        for i in 0..50 {
            t.insert(
                flow(i, if i % 2 == 0 { PROTO_TCP } else { PROTO_UDP }, 0),
                Timestamp(0),
                &mut on_end,
            );
        }
        t.drain(EndReason::Shutdown, &mut on_end);
        assert_eq!(n, 50);
        assert!(t.is_empty());
    }

    /// Draining hands out flows in the order ending them one by one from
    /// each class's list head would, counts them, and leaves a table whose
    /// index holds nothing stale: the same keys come back as new flows.
    #[test]
    fn drain_keeps_the_order_and_leaves_a_working_table() {
        let build = || {
            let mut t = FlowTable::new(TableConfig::default(), 7);
            let mut idx = Vec::new();
            for i in 0..300u16 {
                let proto = match i % 3 {
                    0 => PROTO_TCP,
                    1 => PROTO_UDP,
                    _ => PROTO_ICMP,
                };
                idx.push(t.insert(
                    flow(i, proto, u64::from(i)),
                    Timestamp(1000),
                    &mut |_, _| {},
                ));
            }
            // Reorder within the classes.
            for &i in idx.iter().step_by(7) {
                let f = t.get_mut(i).unwrap();
                let before = f.last;
                f.last = Timestamp(5_000_000);
                t.touch(i, before);
            }
            t
        };
        let mut one_by_one = Vec::new();
        let mut t = build();
        for class in 0..CLASSES {
            while let Some(head) = t.lists.get(class).map(|l| l.head).filter(|&h| h != NIL) {
                t.remove(head, EndReason::Shutdown, &mut |f, _| {
                    one_by_one.push(f.key)
                });
            }
        }
        let mut drained = Vec::new();
        let mut t = build();
        t.drain(EndReason::Shutdown, &mut |f, r| {
            assert!(!f.in_table());
            assert_eq!(r, EndReason::Shutdown);
            drained.push(f.key);
        });
        assert_eq!(drained.len(), 300);
        assert_eq!(drained, one_by_one);
        assert_eq!(t.counters.ended_shutdown, 300);
        assert!(t.is_empty());
        assert_eq!(t.index.len(), 0);
        assert!(t.slots.is_empty() && t.free.is_empty());
        for key in &drained {
            assert_eq!(t.lookup(key), None);
        }
        // The table works as new: keys are inserted and found again.
        for (n, key) in drained.iter().enumerate() {
            let f = Flow::new(*key, Timestamp(2000), true, Initiator::FirstPacket);
            let i = t.insert(f, Timestamp(2000), &mut |_, _| panic!("nothing ends"));
            assert_eq!(t.lookup(key), Some(i));
            assert_eq!(t.len(), n + 1);
        }
        // And their lists: every one of them times out.
        let mut ended = 0;
        t.expire(Timestamp(u64::MAX / 2), &mut |_, r| {
            assert_eq!(r, EndReason::Timeout);
            ended += 1;
        });
        assert_eq!(ended, 300);
        assert!(t.is_empty());
    }
}
