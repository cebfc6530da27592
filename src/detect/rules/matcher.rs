//! Matching rules against packets at a cost that does not grow with the
//! number of rules.
//!
//! Rules are sorted, once, into places a packet looks up directly (as
//! Suricata's port groups, signature groups and IP-only engine do):
//! - IP-only rules (no ports, no payload, no packet options: block lists
//!   such as ET's `drop.rules` or `tor.rules`) go into two prefix tables,
//!   by source and by destination, on their smaller side; they are
//!   evaluated on the first packet of each direction of a flow;
//! - payload rules are found through their fast pattern (the content marked
//!   `fast_pattern`, else the longest non-negated one, at least three
//!   bytes): per protocol class (TCP, UDP, other), flow direction and
//!   whether source and destination are in `$HOME_NET`, and then by port
//!   like the other rules, multi-pattern scans of the lower-cased payload
//!   name the rules to check: one scanner per pair of destination and
//!   source port groups, built on first use (aho-corasick: Teddy searchers
//!   of up to 64 patterns each for sets of up to 256, a DFA beyond), plus
//!   one over only the first bytes for patterns anchored there (`depth`);
//! - other rules are grouped per protocol class by destination port, else
//!   by source port, else "any port": a two-level table over the 65536
//!   ports gives a port's group.
//!
//! A packet's candidates are then checked in full: protocol, addresses,
//! ports, `flow`, packet options, contents (with backtracking over
//! relative matches, bounded), flowbits. `pass` rules are checked first; a
//! matching one stops the packet's rule alerts. Rules that test flowbits
//! come after those that set them, so a bit set by one packet's match is
//! seen by the next rule on the same packet.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use memchr::memmem;

use super::RuleMeta;
use super::addr::{AddrSet, PortSet};
use super::flowbits::FlowBits;
use super::options::{Cmp, Content, FastPattern, Flags, FlowOpt, FlowState};
use super::parser::{Action, Protocol};
use crate::decode::{
    Addr, Ip, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, Transport,
};
use crate::detect::prefix::{PrefixTable, PrefixTableBuilder};
use crate::flow::{Flow, TO_SERVER};

/// Steps of content search per rule and packet (Suricata bounds its
/// content inspection recursion the same way).
const CONTENT_BUDGET: u32 = 3000;

/// TCP header fields rules can test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpFields {
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
}

/// What the rules need to know about a packet's flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowFacts {
    /// Sent by the flow's client.
    pub to_server: bool,
    pub established: bool,
    /// The first packet of its direction (IP-only rules look only then).
    pub first_in_direction: bool,
}

/// One packet as the rules see it.
#[derive(Clone, Copy, Debug)]
pub struct PacketView<'a> {
    pub proto: u8,
    pub src: Addr,
    pub dst: Addr,
    pub sport: u16,
    pub dport: u16,
    pub ttl: u8,
    pub tcp: Option<TcpFields>,
    /// ICMP type and code.
    pub icmp: Option<(u8, u8)>,
    pub payload: &'a [u8],
    /// None when the packet belongs to no flow (a later fragment).
    pub flow: Option<FlowFacts>,
}

/// A packet's ports and payload as rules see them (no ports for ICMP and
/// other protocols, no payload for SCTP: its chunks are not decoded).
pub(super) fn ports_and_payload<'a>(t: &Transport<'a>) -> (u16, u16, &'a [u8]) {
    match *t {
        Transport::Tcp(s) => (s.sport, s.dport, s.payload),
        Transport::Udp {
            sport,
            dport,
            payload,
        } => (sport, dport, payload),
        Transport::Icmp { payload, .. } => (0, 0, payload),
        Transport::Sctp { sport, dport } => (sport, dport, &[]),
        Transport::Other | Transport::None => (0, 0, &[]),
    }
}

impl<'a> PacketView<'a> {
    pub fn new(ip: &Ip, t: &Transport<'a>) -> PacketView<'a> {
        let (sport, dport, payload) = ports_and_payload(t);
        let (tcp, icmp) = match *t {
            Transport::Tcp(s) => (
                Some(TcpFields {
                    flags: s.flags,
                    seq: s.seq,
                    ack: s.ack,
                    window: s.window,
                }),
                None,
            ),
            Transport::Icmp { type_, code, .. } => (None, Some((type_, code))),
            _ => (None, None),
        };
        PacketView {
            proto: ip.proto,
            src: ip.src,
            dst: ip.dst,
            sport,
            dport,
            ttl: ip.ttl,
            tcp,
            icmp,
            payload,
            flow: None,
        }
    }

    /// Adds the flow facts; `dir` is the packet's direction in `flow`.
    pub fn with_flow(mut self, flow: &Flow, dir: usize) -> PacketView<'a> {
        let established = if flow.key.proto == PROTO_TCP {
            flow.tcp.is_established() && !flow.tcp.reset
        } else {
            flow.pkts.iter().all(|n| *n > 0)
        };
        self.flow = Some(FlowFacts {
            to_server: dir == TO_SERVER,
            established,
            first_in_direction: flow.first_in_direction(dir),
        });
        self
    }
}

/// A packet option check.
#[derive(Clone, Debug)]
pub(super) enum Check {
    Flags(Flags),
    Dsize(Cmp<u16>),
    Ttl(Cmp<u8>),
    IpProto(Cmp<u8>),
    Itype(Cmp<u8>),
    Icode(Cmp<u8>),
    Ack(u32),
    Seq(u32),
    Window(bool, u16),
}

impl Check {
    fn matches(&self, p: &PacketView<'_>) -> bool {
        match self {
            Check::Flags(f) => p.tcp.is_some_and(|t| f.matches(t.flags)),
            Check::Dsize(c) => c.matches(u16::try_from(p.payload.len()).unwrap_or(u16::MAX)),
            Check::Ttl(c) => c.matches(p.ttl),
            Check::IpProto(c) => c.matches(p.proto),
            Check::Itype(c) => p.icmp.is_some_and(|(t, _)| c.matches(t)),
            Check::Icode(c) => p.icmp.is_some_and(|(_, k)| c.matches(k)),
            Check::Ack(a) => p.tcp.is_some_and(|t| t.ack == *a),
            Check::Seq(s) => p.tcp.is_some_and(|t| t.seq == *s),
            Check::Window(neg, w) => p.tcp.is_some_and(|t| (t.window == *w) != *neg),
        }
    }
}

/// A content ready to search.
pub(super) struct CContent {
    /// Lower-cased when `nocase`.
    pattern: Vec<u8>,
    finder: memmem::Finder<'static>,
    nocase: bool,
    negated: bool,
    offset: Option<u32>,
    depth: Option<u32>,
    distance: Option<i32>,
    within: Option<u32>,
    startswith: bool,
    endswith: bool,
}

impl CContent {
    pub(super) fn new(c: &Content) -> CContent {
        let pattern = if c.nocase {
            c.pattern.to_ascii_lowercase()
        } else {
            c.pattern.clone()
        };
        CContent {
            finder: memmem::Finder::new(&pattern).into_owned(),
            pattern,
            nocase: c.nocase,
            negated: c.negated,
            offset: c.offset,
            depth: c.depth,
            distance: c.distance,
            within: c.within,
            startswith: c.startswith,
            endswith: c.endswith,
        }
    }

    fn relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }

    /// The window `[lo, hi)` the content must lie in.
    fn window(&self, prev_end: usize, len: usize) -> (usize, usize) {
        if self.relative() {
            let d = i64::from(self.distance.unwrap_or(0));
            let base = i64::try_from(prev_end).unwrap_or(i64::MAX);
            let lo = usize::try_from((base + d).max(0)).unwrap_or(usize::MAX);
            let hi = match self.within {
                Some(w) => usize::try_from((base + d + i64::from(w)).max(0)).unwrap_or(usize::MAX),
                None => len,
            };
            (lo, hi.min(len))
        } else if self.startswith {
            (0, self.pattern.len().min(len))
        } else {
            let lo = self.offset.map_or(0, |o| o as usize);
            let hi = self
                .depth
                .map_or(len, |d| lo.saturating_add(d as usize))
                .min(len);
            (lo, hi)
        }
    }

    /// The first occurrence starting at or after `from` and ending by `hi`.
    fn find(&self, hay: &[u8], from: usize, hi: usize) -> Option<usize> {
        let end = hi.min(hay.len());
        if from >= end || end - from < self.pattern.len() {
            return None;
        }
        if self.endswith {
            // Only one place fits: the end of the payload.
            let at = hay.len() - self.pattern.len();
            return (at >= from
                && end == hay.len()
                && hay.get(at..) == Some(self.pattern.as_slice()))
            .then_some(at);
        }
        let slice = hay.get(from..end)?;
        self.finder.find(slice).map(|i| from + i)
    }
}

/// A rule's prefilter pattern.
#[derive(Clone, Debug)]
pub(super) struct Fast {
    pub bytes: Vec<u8>,
    /// The payload offset it must end by, when its content is anchored
    /// there (`depth`, `startswith`): a scan beyond finds nothing new.
    pub end: Option<u32>,
}

/// The prefilter pattern of a rule's contents: the `fast_pattern` one, else
/// the longest non-negated one.
pub(super) fn fast_pattern(contents: &[Content]) -> Option<Fast> {
    let chosen = contents
        .iter()
        .find(|c| c.fast_pattern.is_some() && !c.negated)
        .or_else(|| {
            contents
                .iter()
                .filter(|c| !c.negated)
                .rev()
                .max_by_key(|c| c.pattern.len())
        })?;
    let bytes = match chosen.fast_pattern {
        Some(FastPattern::Chop(o, l)) => chosen
            .pattern
            .get(usize::from(o)..usize::from(o) + usize::from(l))
            .map(<[u8]>::to_vec)
            .unwrap_or_else(|| chosen.pattern.clone()),
        _ => chosen.pattern.clone(),
    };
    let end = if chosen.is_relative() {
        None
    } else if chosen.startswith {
        u32::try_from(chosen.pattern.len()).ok()
    } else {
        chosen
            .depth
            .map(|d| chosen.offset.unwrap_or(0).saturating_add(d))
    };
    Some(Fast { bytes, end })
}

/// A rule ready to match.
pub(super) struct CRule {
    pub meta: Arc<RuleMeta>,
    pub action: Action,
    pub proto: Protocol,
    pub flow: Option<FlowOpt>,
    pub checks: Vec<Check>,
    pub contents: Vec<CContent>,
    pub fast: Option<Fast>,
    /// (bit, must be set).
    pub bit_tests: Vec<(u16, bool)>,
    /// (bit, set or unset), applied in order on a match.
    pub bit_actions: Vec<(u16, bool)>,
    pub noalert: bool,
}

impl CRule {
    fn proto_matches(&self, p: u8) -> bool {
        match self.proto {
            Protocol::Ip => true,
            Protocol::Tcp | Protocol::TcpPkt => p == PROTO_TCP,
            Protocol::Udp => p == PROTO_UDP,
            Protocol::Icmp => p == PROTO_ICMP || p == PROTO_ICMPV6,
            Protocol::Icmpv4 => p == PROTO_ICMP,
            Protocol::Icmpv6 => p == PROTO_ICMPV6,
            Protocol::Sctp => p == PROTO_SCTP,
        }
    }

    fn classes(&self) -> &'static [usize] {
        match self.proto {
            Protocol::Ip => &[CLASS_TCP, CLASS_UDP, CLASS_OTHER],
            Protocol::Tcp | Protocol::TcpPkt => &[CLASS_TCP],
            Protocol::Udp => &[CLASS_UDP],
            _ => &[CLASS_OTHER],
        }
    }

    fn is_ip_only(&self, s: &Sides) -> bool {
        s.sport.is_any()
            && s.dport.is_any()
            && self.checks.is_empty()
            && self.contents.is_empty()
            && self.flow.is_none()
            && self.bit_tests.is_empty()
    }
}

/// The header sides of one direction of a rule.
#[derive(Clone, Debug)]
pub(super) struct Sides {
    pub src: AddrSet,
    pub dst: AddrSet,
    pub sport: PortSet,
    pub dport: PortSet,
}

impl Sides {
    fn swapped(&self) -> Sides {
        Sides {
            src: self.dst.clone(),
            dst: self.src.clone(),
            sport: self.dport.clone(),
            dport: self.sport.clone(),
        }
    }
}

/// One direction of a rule (a `<>` rule has two).
struct Variant {
    rule: u32,
    sides: Sides,
}

const CLASS_TCP: usize = 0;
const CLASS_UDP: usize = 1;
const CLASS_OTHER: usize = 2;

fn class_of(proto: u8) -> usize {
    match proto {
        PROTO_TCP => CLASS_TCP,
        PROTO_UDP => CLASS_UDP,
        _ => CLASS_OTHER,
    }
}

/// Port → group number, in two levels: 256 blocks of 256 ports, where a
/// block whose ports all share one group holds it directly. (A flat table
/// is 256 KB; a rule set has dozens of them, and looked up with random
/// client ports they missed the cache on nearly every packet.)
struct PortMap {
    /// A group, or `PortMap::TABLE` plus the index of the block's table.
    blocks: Box<[u32]>,
    tables: Vec<Box<[u32]>>,
}

impl PortMap {
    const TABLE: u32 = 1 << 31;

    /// From a group for each of the 65536 ports (at most 2^31 groups).
    fn new(flat: &[u32]) -> PortMap {
        let mut blocks = Vec::with_capacity(256);
        let mut tables: Vec<Box<[u32]>> = Vec::new();
        for block in flat.chunks(256) {
            let first = block.first().copied().unwrap_or(0);
            if block.iter().all(|g| *g == first) {
                blocks.push(first);
            } else {
                blocks.push(Self::TABLE | u32::try_from(tables.len()).unwrap_or(0));
                tables.push(block.into());
            }
        }
        PortMap {
            blocks: blocks.into_boxed_slice(),
            tables,
        }
    }

    fn get(&self, port: u16) -> u32 {
        let b = self
            .blocks
            .get(usize::from(port >> 8))
            .copied()
            .unwrap_or(0);
        if b & Self::TABLE == 0 {
            return b;
        }
        self.tables
            .get((b & !Self::TABLE) as usize)
            .and_then(|t| t.get(usize::from(port & 0xff)))
            .copied()
            .unwrap_or(0)
    }
}

/// Port → group of items (rule variants, or patterns), for all 65536
/// ports; group 0 is the empty one.
struct PortIndex {
    map: PortMap,
    groups: Vec<Box<[u32]>>,
}

impl PortIndex {
    fn build(items: &[(PortSet, u32)]) -> Option<PortIndex> {
        if items.is_empty() {
            return None;
        }
        let mut events: Vec<(u32, bool, u32)> = Vec::new();
        for (set, v) in items {
            for &(lo, hi) in set.ranges() {
                events.push((u32::from(lo), true, *v));
                events.push((u32::from(hi) + 1, false, *v));
            }
        }
        events.sort_unstable();
        let mut map = vec![0u32; 65536];
        let mut groups: Vec<Box<[u32]>> = vec![Box::new([])];
        let mut interned: HashMap<Vec<u32>, u32> = HashMap::new();
        interned.insert(Vec::new(), 0);
        let mut active: Vec<u32> = Vec::new();
        let mut i = 0;
        while let Some(&(pos, _, _)) = events.get(i) {
            while let Some(&(p, start, v)) = events.get(i) {
                if p != pos {
                    break;
                }
                if start {
                    if let Err(j) = active.binary_search(&v) {
                        active.insert(j, v);
                    }
                } else if let Ok(j) = active.binary_search(&v) {
                    active.remove(j);
                }
                i += 1;
            }
            let next = events.get(i).map_or(65536, |e| e.0).min(65536);
            let gid = match interned.get(&active) {
                Some(&g) => g,
                None => {
                    let g = u32::try_from(groups.len()).unwrap_or(0);
                    groups.push(active.clone().into_boxed_slice());
                    interned.insert(active.clone(), g);
                    g
                }
            };
            if let Some(slots) = map.get_mut(pos as usize..next as usize) {
                slots.fill(gid);
            }
        }
        Some(PortIndex {
            map: PortMap::new(&map),
            groups,
        })
    }

    fn group(&self, port: u16) -> u32 {
        self.map.get(port)
    }

    fn get(&self, port: u16) -> &[u32] {
        self.groups
            .get(self.group(port) as usize)
            .map_or(&[], |b| b)
    }
}

/// Fast patterns shorter than this are no use as a prefilter (a byte or
/// two of binary occurs everywhere): their rules are grouped by port and
/// checked in full instead.
const MIN_FAST_PATTERN: usize = 3;
/// Patterns per Teddy searcher (one pass of "fat" Teddy over 64 costs
/// less than two of "slim" Teddy over 32 each), and searchers per set
/// before a single automaton is cheaper.
const TEDDY_PATTERNS: usize = 64;
/// Up to this many patterns, aho-corasick builds "slim" Teddy (8 buckets,
/// 32 bytes a step); above, "fat" Teddy (16 buckets, 16 bytes a step).
const TEDDY_SLIM: usize = 32;
const TEDDY_MAX_SEARCHERS: usize = 4;

/// The order to give a Teddy searcher `chunk`'s patterns in (indices into
/// `chunk`). Teddy puts the pattern added `p`-th into bucket `B - 1 - p % B`
/// (B = 16 above 32 patterns with AVX2, else 8), and reports a bucket's
/// candidates where each of the payload's next few bytes has a low and a
/// high nibble among those its patterns have at that place. Every
/// candidate costs a verification, so the patterns are dealt out to keep
/// the expected candidates per payload byte low ([`Nibbles::accept_rate`]):
/// the most frequent patterns first, each to the bucket it adds fewest
/// candidates to, then pairs of patterns swapped between buckets while a
/// swap lowers the total. Dealt out round-robin from sorted order, as they
/// once were, every bucket held most nibbles and a bucket of letter
/// patterns fired at most places of a text.
fn bucket_order(chunk: &[&Vec<u8>]) -> Vec<usize> {
    let mut b = Buckets::deal(chunk);
    for _ in 0..SWAP_PASSES {
        if !b.swap_pass() {
            break;
        }
    }
    b.order()
}

/// Patterns dealt out to Teddy's buckets, with each bucket's expected
/// candidates.
struct Buckets {
    width: usize,
    masks: Vec<Nibbles>,
    runs: Vec<Vec<usize>>,
    rates: Vec<f64>,
}

impl Buckets {
    /// The most frequent patterns first, each to the bucket it adds fewest
    /// candidates to.
    fn deal(chunk: &[&Vec<u8>]) -> Buckets {
        let n = chunk.len();
        let buckets = if n > TEDDY_SLIM { 16 } else { 8 };
        let width = chunk.iter().map(|p| p.len()).min().unwrap_or(0).min(4);
        let masks: Vec<Nibbles> = chunk.iter().map(|p| Nibbles::of(p, width)).collect();
        let mut b = Buckets {
            width,
            masks,
            runs: vec![Vec::new(); buckets],
            rates: vec![0.0; buckets],
        };
        // Bucket j takes the positions p with B - 1 - p % B == j.
        let cap = |j: usize| (n + j + 1).saturating_sub(buckets).div_ceil(buckets);
        let mut by_rate: Vec<(f64, usize)> =
            (0..n).map(|i| (b.mask(i).accept_rate(width), i)).collect();
        by_rate.sort_by(|x, y| {
            y.0.total_cmp(&x.0)
                .then(chunk.get(x.1).cmp(&chunk.get(y.1)))
        });
        for (_, i) in by_rate {
            // Of equals, the fullest bucket: patterns differing in a nibble
            // or two share one. (added, members, bucket, its new rate)
            let mut best: Option<(f64, usize, usize, f64)> = None;
            for (j, run) in b.runs.iter().enumerate() {
                if run.len() >= cap(j) {
                    continue;
                }
                let rate = b.union(run.iter().copied().chain([i])).accept_rate(width);
                let added = rate - b.rates.get(j).copied().unwrap_or(0.0);
                let better = best.is_none_or(|(a, len, _, _)| {
                    added < a * (1.0 - 1e-9) || (added <= a * (1.0 + 1e-9) && run.len() > len)
                });
                if better {
                    best = Some((added, run.len(), j, rate));
                }
            }
            let Some((_, _, j, rate)) = best else {
                continue;
            };
            if let (Some(run), Some(r)) = (b.runs.get_mut(j), b.rates.get_mut(j)) {
                run.push(i);
                *r = rate;
            }
        }
        b
    }

    fn mask(&self, i: usize) -> Nibbles {
        self.masks.get(i).copied().unwrap_or_default()
    }

    fn union(&self, members: impl Iterator<Item = usize>) -> Nibbles {
        members.fold(Nibbles::default(), |acc, i| acc.union(&self.mask(i)))
    }

    /// Per member of bucket `j`: the union of the others.
    fn others(&self, j: usize) -> Vec<Nibbles> {
        let run = self.runs.get(j).map_or(&[][..], |r| r);
        (0..run.len())
            .map(|skip| {
                self.union(
                    run.iter()
                        .enumerate()
                        .filter(|(k, _)| *k != skip)
                        .map(|(_, &i)| i),
                )
            })
            .collect()
    }

    /// For every pair of buckets, the swap of two of their patterns that
    /// lowers their expected candidates most, if any. Whether one was made.
    fn swap_pass(&mut self) -> bool {
        let width = self.width;
        let mut rest: Vec<Vec<Nibbles>> = (0..self.runs.len()).map(|j| self.others(j)).collect();
        let mut improved = false;
        for x in 0..self.runs.len() {
            for y in x + 1..self.runs.len() {
                let (Some(rx), Some(ry), Some(ox), Some(oy)) =
                    (self.runs.get(x), self.runs.get(y), rest.get(x), rest.get(y))
                else {
                    continue;
                };
                let before = self.rates.get(x).copied().unwrap_or(0.0)
                    + self.rates.get(y).copied().unwrap_or(0.0);
                let mut best: Option<(f64, f64, usize, usize)> = None;
                for (a, (&pa, oa)) in rx.iter().zip(ox).enumerate() {
                    for (b, (&pb, ob)) in ry.iter().zip(oy).enumerate() {
                        let nx = oa.union(&self.mask(pb)).accept_rate(width);
                        let ny = ob.union(&self.mask(pa)).accept_rate(width);
                        if nx + ny < best.map_or(before * (1.0 - 1e-9), |b| b.0 + b.1) {
                            best = Some((nx, ny, a, b));
                        }
                    }
                }
                let Some((nx, ny, a, b)) = best else {
                    continue;
                };
                let (Some(pa), Some(pb)) = (
                    self.runs.get(x).and_then(|r| r.get(a)).copied(),
                    self.runs.get(y).and_then(|r| r.get(b)).copied(),
                ) else {
                    continue;
                };
                for (j, slot, new, rate) in [(x, a, pb, nx), (y, b, pa, ny)] {
                    if let Some(p) = self.runs.get_mut(j).and_then(|r| r.get_mut(slot)) {
                        *p = new;
                    }
                    if let Some(r) = self.rates.get_mut(j) {
                        *r = rate;
                    }
                    let o = self.others(j);
                    if let Some(slot) = rest.get_mut(j) {
                        *slot = o;
                    }
                }
                improved = true;
            }
        }
        improved
    }

    /// Expected candidates per payload place, all buckets together.
    #[cfg(test)]
    fn total(&self) -> f64 {
        self.rates.iter().sum()
    }

    /// The order that puts each pattern in its bucket.
    fn order(self) -> Vec<usize> {
        let buckets = self.runs.len();
        let n = self.masks.len();
        let mut runs: Vec<std::collections::VecDeque<usize>> =
            self.runs.into_iter().map(Into::into).collect();
        (0..n)
            .filter_map(|p| runs.get_mut(buckets - 1 - p % buckets)?.pop_front())
            .collect()
    }
}

/// Passes of swaps [`bucket_order`] makes at most: each pass tries every
/// pair of patterns in different buckets (about 0.08 ms for 64 patterns);
/// a third and fourth pass lowered the model's total by another 10 % at
/// no measurable gain in scan time.
const SWAP_PASSES: usize = 2;

/// Per place of a Teddy fingerprint (up to 4 bytes): the set of low
/// nibbles, then the set of high ones.
#[derive(Clone, Copy, Default)]
struct Nibbles([u16; 8]);

impl Nibbles {
    fn of(p: &[u8], width: usize) -> Nibbles {
        let mut m = [0u16; 8];
        for (i, b) in p.iter().take(width).enumerate() {
            if let Some(slot) = m.get_mut(i) {
                *slot = 1 << (b & 0x0f);
            }
            if let Some(slot) = m.get_mut(4 + i) {
                *slot = 1 << (b >> 4);
            }
        }
        Nibbles(m)
    }

    fn union(&self, other: &Nibbles) -> Nibbles {
        let mut u = self.0;
        for (x, y) in u.iter_mut().zip(other.0) {
            *x |= y;
        }
        Nibbles(u)
    }

    /// The share of payload places where a bucket with these nibble sets
    /// reports a candidate, taking payload bytes as independent and
    /// distributed as [`ByteModel`] says.
    fn accept_rate(&self, width: usize) -> f64 {
        let model = ByteModel::get();
        let mut rate = 1.0;
        for i in 0..width {
            let (lo, mut hi) = (
                self.0.get(i).copied().unwrap_or(0),
                self.0.get(4 + i).copied().unwrap_or(0),
            );
            let mut place = 0.0;
            while hi != 0 {
                place += model.share(hi.trailing_zeros() as usize, lo);
                hi &= hi - 1;
            }
            rate *= place;
        }
        rate
    }
}

/// How often byte values occur in a lower-cased payload, as a model: half
/// of the bytes binary (any value alike), half text (letters most, then
/// spaces, digits and punctuation). Kept as the summed share of each high
/// nibble with each set of low nibbles, a byte of the set at a time.
struct ByteModel {
    /// [high nibble][which byte of the low-nibble set][its value].
    sums: [[[f64; 256]; 2]; 16],
}

impl ByteModel {
    fn get() -> &'static ByteModel {
        static MODEL: OnceLock<Box<ByteModel>> = OnceLock::new();
        MODEL.get_or_init(|| {
            let weight = |b: u8| -> f64 {
                match b {
                    b'a'..=b'z' => 4.0,
                    b' ' => 12.0,
                    b'0'..=b'9' => 2.0,
                    b'\r' | b'\n' | b'\t' => 1.0,
                    _ if b.is_ascii_punctuation() => 1.0,
                    _ => 0.0,
                }
            };
            let text: f64 = (0..=255u8).map(weight).sum();
            let share = |b: u8| 0.5 / 256.0 + 0.5 * weight(b) / text;
            let mut m = Box::new(ByteModel {
                sums: [[[0.0; 256]; 2]; 16],
            });
            for (hi, halves) in m.sums.iter_mut().enumerate() {
                for (half, sums) in halves.iter_mut().enumerate() {
                    for (set, sum) in sums.iter_mut().enumerate() {
                        *sum = (0..8u8)
                            .filter(|l| set & (1 << l) != 0)
                            .map(|l| share(((hi as u8) << 4) | (l + 8 * half as u8)))
                            .sum();
                    }
                }
            }
            m
        })
    }

    /// The share of the bytes with this high nibble and a low nibble in
    /// `lo` (a set).
    fn share(&self, hi: usize, lo: u16) -> f64 {
        self.sums.get(hi).map_or(0.0, |h| {
            h[0].get(usize::from(lo & 0xff)).copied().unwrap_or(0.0)
                + h[1].get(usize::from(lo >> 8)).copied().unwrap_or(0.0)
        })
    }
}

/// One Teddy searcher: its patterns' ids (in the order given to it), and
/// for each the ids of the group's patterns that are its prefixes.
struct TeddyGroup {
    searcher: aho_corasick::packed::Searcher,
    ids: Vec<u32>,
    prefixes: Vec<Vec<u32>>,
}

enum Scanner {
    /// SIMD searchers (aho-corasick's packed Teddy) for small groups.
    Teddy(Vec<TeddyGroup>),
    /// One DFA over the whole group.
    Dfa(AhoCorasick),
}

/// The multi-pattern prefilter of one group of rules: the patterns (lower
/// case), and the rule variants behind each.
struct Automaton {
    scanner: Scanner,
    variants: Vec<Vec<u32>>,
}

impl Automaton {
    /// One scanner over every fast pattern of the group, lower-cased, run
    /// on the lower-cased payload: a single pass finds case-sensitive and
    /// `nocase` patterns alike (contents are verified with their case
    /// afterwards). Sets of up to 256 patterns use aho-corasick's packed
    /// Teddy searchers, several times faster per byte than an
    /// automaton; larger ones one Aho-Corasick DFA (one table lookup per
    /// byte), else the library's choice.
    fn build(patterns: HashMap<Vec<u8>, Vec<u32>>) -> Option<Automaton> {
        if patterns.is_empty() {
            return None;
        }
        let mut list: Vec<(Vec<u8>, Vec<u32>)> = patterns.into_iter().collect();
        list.sort();
        let pats: Vec<&Vec<u8>> = list.iter().map(|(p, _)| p).collect();
        let scanner = match Self::teddy(&pats) {
            Some(groups) => Scanner::Teddy(groups),
            None => {
                let build = |kind: Option<AhoCorasickKind>| {
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::Standard)
                        .kind(kind)
                        .build(&pats)
                };
                Scanner::Dfa(
                    build(Some(AhoCorasickKind::DFA))
                        .or_else(|_| build(None))
                        .ok()?,
                )
            }
        };
        Some(Automaton {
            scanner,
            variants: list.into_iter().map(|(_, v)| v).collect(),
        })
    }

    /// Teddy searchers for the patterns, when few enough and the CPU has
    /// the instructions (else None).
    fn teddy(pats: &[&Vec<u8>]) -> Option<Vec<TeddyGroup>> {
        if pats.len() > TEDDY_PATTERNS * TEDDY_MAX_SEARCHERS {
            return None;
        }
        let mut groups = Vec::new();
        for (g, chunk) in pats.chunks(TEDDY_PATTERNS).enumerate() {
            let base = g * TEDDY_PATTERNS;
            let order = bucket_order(chunk);
            let searcher = aho_corasick::packed::Config::new()
                .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
                .builder()
                .extend(order.iter().filter_map(|&i| chunk.get(i)))
                .build()?;
            let id = |i: usize| u32::try_from(base + i).unwrap_or(u32::MAX);
            let ids: Vec<u32> = order.iter().map(|&i| id(i)).collect();
            let prefixes = order
                .iter()
                .filter_map(|&i| chunk.get(i))
                .map(|p| {
                    chunk
                        .iter()
                        .enumerate()
                        .filter(|(_, q)| q.len() < p.len() && p.starts_with(q))
                        .map(|(j, _)| id(j))
                        .collect()
                })
                .collect();
            groups.push(TeddyGroup {
                searcher,
                ids,
                prefixes,
            });
        }
        Some(groups)
    }

    /// Calls `found` with the id of every pattern that occurs in `hay`
    /// (possibly more than once).
    fn scan(&self, hay: &[u8], found: &mut impl FnMut(usize)) {
        match &self.scanner {
            Scanner::Dfa(ac) => {
                for m in ac.find_overlapping_iter(hay) {
                    found(m.pattern().as_usize());
                }
            }
            Scanner::Teddy(groups) => {
                // Leftmost-longest from each match start + 1 visits every
                // position where a pattern starts; the patterns also starting
                // there are prefixes of the longest one.
                for g in groups {
                    let mut pos = 0;
                    while pos < hay.len() {
                        let Some(m) = g
                            .searcher
                            .find_in(hay, aho_corasick::Span::from(pos..hay.len()))
                        else {
                            break;
                        };
                        let local = m.pattern().as_usize();
                        if let Some(&id) = g.ids.get(local) {
                            found(id as usize);
                        }
                        for &p in g.prefixes.get(local).map_or(&[][..], |v| v) {
                            found(p as usize);
                        }
                        pos = m.start() + 1;
                    }
                }
            }
        }
    }
}

/// Pattern automata per (packet direction, source at home, destination at
/// home): a rule's patterns go only where its `flow` direction and
/// addresses allow, so a packet scans the patterns of the rules that could
/// match it (as Suricata's signature groups do by address).
const BUCKETS: usize = 8;

fn bucket(to_server: bool, src_home: bool, dst_home: bool) -> usize {
    usize::from(!to_server) * 4 + usize::from(src_home) * 2 + usize::from(dst_home)
}

/// Which home states a rule side can be in: (at home, outside).
fn home_states(side: &AddrSet, home: &AddrSet) -> Vec<bool> {
    let mut v = Vec::with_capacity(2);
    if side.intersects(home) {
        v.push(true);
    }
    if !side.is_subset(home) {
        v.push(false);
    }
    v
}

/// Most pairs of port groups one bucket builds scanners for.
const MAX_PAIRS: usize = 1024;
/// Pattern copies the paired scanners of a whole rule set may hold (ET
/// Open's needs about 133,000; each costs a few hundred bytes once its
/// scanner is built); buckets past it scan their groups one by one.
const PAIRED_PATTERNS: usize = 262_144;
/// Any-port patterns beyond this many scan on their own rather than being
/// copied into the scanner of every pair of port groups.
const MAX_SHARED_ANY: usize = 128;
/// No scanner.
const NO_SCANNER: u32 = u32::MAX;

/// The payload rules of one bucket. A rule names destination ports, else
/// source ports, else none, and a packet needs the patterns of its
/// destination port's group, of its source port's group and of the
/// any-port rules. Each pair of a destination and a source port group gets
/// one scanner over all three: a Teddy pass over a few dozen patterns costs
/// little more than one over a few, and three scanners cost three passes
/// over the payload. Rule sets that would need too many pairs, or pairs
/// past Teddy's size, scan each group on its own.
#[derive(Default)]
struct PatternGroups {
    dport: Option<PortMap>,
    sport: Option<PortMap>,
    /// Whether `pairs` has a column per source port group (else one, and
    /// the source port groups scan on their own).
    paired: bool,
    columns: usize,
    /// Scanner per (destination port group, column).
    pairs: Vec<u32>,
    /// Scanner per source port group, when not paired.
    by_sport: Vec<u32>,
    /// The any-port patterns' scanner, when they scan on their own.
    any: u32,
    entries: Vec<Entry>,
    /// Each set's parts (head, rest), in `parts`.
    sets: Vec<[u32; 2]>,
    parts: Vec<Part>,
    /// Each part's scanner, built on first use: only the pairs of port
    /// groups that traffic meets cost build time and memory.
    scanners: Box<[OnceLock<Option<Automaton>>]>,
}

/// Entries scanned over the first `end` bytes of a payload.
struct Part {
    entries: Box<[u32]>,
    end: usize,
}

impl PatternGroups {
    /// `budget`: pattern copies left for paired scanners.
    fn build(items: BucketItems, budget: &mut usize) -> PatternGroups {
        let BucketItems {
            entries,
            any,
            dport,
            sport,
        } = items;
        let dix = PortIndex::build(&dport);
        let six = PortIndex::build(&sport);
        let none: Vec<Box<[u32]>> = vec![Box::new([])];
        let dgroups = dix.as_ref().map_or(&none, |x| &x.groups);
        let sgroups = six.as_ref().map_or(&none, |x| &x.groups);
        let largest = |gs: &[Box<[u32]>]| gs.iter().map(|g| g.len()).max().unwrap_or(0);
        let shared_any = if any.len() <= MAX_SHARED_ANY {
            any.len()
        } else {
            0
        };
        let total = |gs: &[Box<[u32]>]| gs.iter().map(|g| g.len()).sum::<usize>();
        let pairs = dgroups.len().saturating_mul(sgroups.len());
        let copies = sgroups
            .len()
            .saturating_mul(total(dgroups))
            .saturating_add(dgroups.len().saturating_mul(total(sgroups)))
            .saturating_add(pairs.saturating_mul(shared_any));
        let paired = pairs <= MAX_PAIRS
            && copies <= *budget
            && shared_any + largest(dgroups) + largest(sgroups)
                <= TEDDY_PATTERNS * TEDDY_MAX_SEARCHERS;
        if paired {
            *budget -= copies;
        }

        let mut b = ScannerSets::default();
        let mut g = PatternGroups {
            paired,
            columns: if paired { sgroups.len() } else { 1 },
            any: NO_SCANNER,
            ..PatternGroups::default()
        };
        if paired {
            let shared: &[u32] = if shared_any > 0 { &any } else { &[] };
            for d in dgroups {
                for s in sgroups {
                    let ids: Vec<u32> = shared
                        .iter()
                        .chain(d.iter())
                        .chain(s.iter())
                        .copied()
                        .collect();
                    g.pairs.push(b.intern(ids));
                }
            }
            if shared_any == 0 {
                g.any = b.intern(any);
            }
        } else {
            g.pairs = dgroups.iter().map(|d| b.intern(d.to_vec())).collect();
            g.by_sport = sgroups.iter().map(|s| b.intern(s.to_vec())).collect();
            g.any = b.intern(any);
        }
        let (sets, parts) = b.split(&entries);
        g.scanners = parts.iter().map(|_| OnceLock::new()).collect();
        g.sets = sets;
        g.parts = parts;
        g.entries = entries;
        g.dport = dix.map(|x| x.map);
        g.sport = six.map(|x| x.map);
        g
    }

    /// Part `i`'s scanner (built on first use) and how far it scans.
    fn part(&self, i: u32) -> Option<(&Automaton, usize)> {
        let cell = self.scanners.get(i as usize)?;
        let part = self.parts.get(i as usize)?;
        let a = cell.get_or_init(|| {
            let mut patterns: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
            for &e in part.entries.iter() {
                if let Some(e) = self.entries.get(e as usize) {
                    patterns
                        .entry(e.pattern.clone())
                        .or_default()
                        .push(e.variant);
                }
            }
            Automaton::build(patterns)
        });
        a.as_ref().map(|a| (a, part.end))
    }

    /// The scanners for a packet between these ports, each with how far
    /// into the payload it scans.
    fn scanners(&self, sport: u16, dport: u16) -> [Option<(&Automaton, usize)>; 6] {
        let dg = self.dport.as_ref().map_or(0, |m| m.get(dport)) as usize;
        let sg = self.sport.as_ref().map_or(0, |m| m.get(sport)) as usize;
        let col = if self.paired { sg } else { 0 };
        let [a, b, c] = [
            self.pairs.get(dg * self.columns + col),
            self.by_sport.get(sg),
            Some(&self.any),
        ]
        .map(|set| {
            set.and_then(|&i| self.sets.get(i as usize))
                .copied()
                .unwrap_or([NO_SCANNER; 2])
        });
        [a[0], a[1], b[0], b[1], c[0], c[1]].map(|i| self.part(i))
    }
}

/// The distinct sets of a bucket's pattern entries, each one scanner.
#[derive(Default)]
struct ScannerSets {
    sets: Vec<Box<[u32]>>,
    interned: HashMap<Vec<u32>, u32>,
}

impl ScannerSets {
    /// The scanner over these entries (`NO_SCANNER` for none).
    fn intern(&mut self, mut ids: Vec<u32>) -> u32 {
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return NO_SCANNER;
        }
        if let Some(&i) = self.interned.get(&ids) {
            return i;
        }
        let i = u32::try_from(self.sets.len()).unwrap_or(NO_SCANNER);
        self.sets.push(ids.clone().into_boxed_slice());
        self.interned.insert(ids, i);
        i
    }

    /// Each set as (head, rest) parts: the patterns anchored within the
    /// first `HEAD` bytes are scanned only that far (a packet of 1,400
    /// bytes scans them over a few dozen), the rest over the whole payload.
    fn split(&self, entries: &[Entry]) -> (Vec<[u32; 2]>, Vec<Part>) {
        let mut parts: Vec<Part> = Vec::new();
        let mut add = |ids: Vec<u32>, end: usize| {
            if ids.is_empty() {
                return NO_SCANNER;
            }
            parts.push(Part {
                entries: ids.into_boxed_slice(),
                end,
            });
            u32::try_from(parts.len() - 1).unwrap_or(NO_SCANNER)
        };
        let mut sets = Vec::with_capacity(self.sets.len());
        for ids in &self.sets {
            let end_of = |i: &u32| {
                entries
                    .get(*i as usize)
                    .and_then(|e| e.end)
                    .map(|e| e as usize)
                    .filter(|e| *e <= HEAD)
            };
            let (head, rest): (Vec<u32>, Vec<u32>) = ids.iter().partition(|i| end_of(i).is_some());
            if !rest.is_empty() && scan_cost(rest.len() + head.len()) <= scan_cost(rest.len()) {
                // The whole set scans as fast as its rest: one pass.
                sets.push([NO_SCANNER, add(ids.to_vec(), usize::MAX)]);
                continue;
            }
            let end = head.iter().filter_map(end_of).max().unwrap_or(0);
            sets.push([add(head, end), add(rest, usize::MAX)]);
        }
        (sets, parts)
    }
}

/// Payload bytes a set's head part scans at most.
const HEAD: usize = 128;

/// The relative cost per byte of scanning for `n` patterns: Teddy
/// searchers of 64 ("fat", 5), the last one "slim" (3) when it has 32 or
/// fewer; a DFA beyond 256 patterns.
fn scan_cost(n: usize) -> usize {
    if n > TEDDY_PATTERNS * TEDDY_MAX_SEARCHERS {
        return 100;
    }
    let last = match n % TEDDY_PATTERNS {
        0 => 0,
        1..=TEDDY_SLIM => 3,
        _ => 5,
    };
    5 * (n / TEDDY_PATTERNS) + last
}

/// One rule variant's fast pattern in a bucket.
struct Entry {
    /// Lower-cased.
    pattern: Vec<u8>,
    variant: u32,
    end: Option<u32>,
}

/// What a bucket's rules are collected in while building.
#[derive(Default)]
struct BucketItems {
    entries: Vec<Entry>,
    /// Entries by the ports their rules name.
    any: Vec<u32>,
    dport: Vec<(PortSet, u32)>,
    sport: Vec<(PortSet, u32)>,
}

#[derive(Default)]
struct ClassIndex {
    any: Vec<u32>,
    by_dport: Option<PortIndex>,
    by_sport: Option<PortIndex>,
    patterns: [PatternGroups; BUCKETS],
    /// Whether any bucket of `patterns` has a pattern.
    has_patterns: bool,
    /// The ports whose `by_dport` / `by_sport` list has a rule.
    dports: PortBits,
    sports: PortBits,
}

/// One bit per port; no words when no port is set (a class without a
/// port list).
#[derive(Default)]
struct PortBits(Box<[u64]>);

impl PortBits {
    /// The ports `ix` lists a rule for.
    fn listed(ix: Option<&PortIndex>) -> PortBits {
        let Some(ix) = ix else {
            return PortBits::default();
        };
        let mut words = vec![0u64; 1024];
        for port in 0..=u16::MAX {
            if !ix.get(port).is_empty()
                && let Some(w) = words.get_mut(usize::from(port >> 6))
            {
                *w |= 1 << (port & 63);
            }
        }
        PortBits(words.into_boxed_slice())
    }

    fn has(&self, port: u16) -> bool {
        self.0
            .get(usize::from(port >> 6))
            .is_some_and(|w| (w >> (port & 63)) & 1 != 0)
    }
}

impl ClassIndex {
    /// Whether any of the class's candidate lists can name a rule for a
    /// packet between these ports with this payload: its any-port rules,
    /// the rules of either port, or a payload scanner. False for most
    /// packets under a rule set of a few port rules.
    #[inline]
    fn may_have_candidates(&self, sport: u16, dport: u16, payload: &[u8]) -> bool {
        !self.any.is_empty()
            || self.dports.has(dport)
            || self.sports.has(sport)
            || (self.has_patterns && !payload.is_empty())
    }
}

/// Per-thread scratch space (no allocation per packet).
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) cands: Vec<u32>,
    lower: Vec<u8>,
    seen_patterns: Vec<u64>,
    touched: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Collects compiled rules, then builds the [`Matcher`].
pub(super) struct MatcherBuilder {
    rules: Vec<CRule>,
    sides: Vec<(Sides, bool)>,
    home: AddrSet,
}

impl MatcherBuilder {
    /// `home` is `$HOME_NET`, by which payload rules are grouped.
    pub fn new(home: AddrSet) -> Self {
        MatcherBuilder {
            rules: Vec::new(),
            sides: Vec::new(),
            home,
        }
    }

    pub fn add(&mut self, rule: CRule, sides: Sides, bidirectional: bool) {
        self.rules.push(rule);
        self.sides.push((sides, bidirectional));
    }

    pub fn build(self) -> Matcher {
        let MatcherBuilder { rules, sides, home } = self;
        // Variants in evaluation order: pass rules, then rules that do not
        // test flowbits, then those that do.
        let mut variants: Vec<Variant> = Vec::new();
        for (i, (s, bidir)) in sides.into_iter().enumerate() {
            let rule = u32::try_from(i).unwrap_or(u32::MAX);
            if bidir {
                variants.push(Variant {
                    rule,
                    sides: s.swapped(),
                });
            }
            variants.push(Variant { rule, sides: s });
        }
        let rank = |v: &Variant| {
            rules.get(v.rule as usize).map_or(2, |r| {
                if r.action == Action::Pass {
                    0
                } else if r.bit_tests.is_empty() {
                    1
                } else {
                    2
                }
            })
        };
        variants.sort_by_key(|v| (rank(v), v.rule));

        let mut classes: [ClassIndex; 3] = Default::default();
        let mut by_dport: [Vec<(PortSet, u32)>; 3] = Default::default();
        let mut by_sport: [Vec<(PortSet, u32)>; 3] = Default::default();
        let mut patterns: Vec<Vec<BucketItems>> = (0..3)
            .map(|_| (0..BUCKETS).map(|_| BucketItems::default()).collect())
            .collect();
        let mut src_table = PrefixTableBuilder::new();
        let mut dst_table = PrefixTableBuilder::new();
        let mut ip_only = 0usize;
        for (vi, v) in variants.iter().enumerate() {
            let vid = u32::try_from(vi).unwrap_or(u32::MAX);
            let Some(r) = rules.get(v.rule as usize) else {
                continue;
            };
            if r.is_ip_only(&v.sides) {
                ip_only += 1;
                let (table, set) = if v.sides.src.size() <= v.sides.dst.size() {
                    (&mut src_table, &v.sides.src)
                } else {
                    (&mut dst_table, &v.sides.dst)
                };
                for &(lo, hi) in set.ranges() {
                    table.add_range(lo, hi, vid);
                }
                continue;
            }
            for &c in r.classes() {
                if let Some(fast) = r
                    .fast
                    .as_ref()
                    .filter(|f| f.bytes.len() >= MIN_FAST_PATTERN)
                {
                    let dirs: &[bool] = match r.flow.and_then(|f| f.to_server) {
                        Some(true) => &[true],
                        Some(false) => &[false],
                        None => &[true, false],
                    };
                    let srcs = home_states(&v.sides.src, &home);
                    let dsts = home_states(&v.sides.dst, &home);
                    let lower = fast.bytes.to_ascii_lowercase();
                    for &d in dirs {
                        for &sh in &srcs {
                            for &dh in &dsts {
                                let Some(items) = patterns
                                    .get_mut(c)
                                    .and_then(|b| b.get_mut(bucket(d, sh, dh)))
                                else {
                                    continue;
                                };
                                let s = &v.sides;
                                let e = u32::try_from(items.entries.len()).unwrap_or(u32::MAX);
                                items.entries.push(Entry {
                                    pattern: lower.clone(),
                                    variant: vid,
                                    end: fast.end,
                                });
                                if c != CLASS_OTHER && !s.dport.is_any() {
                                    items.dport.push((s.dport.clone(), e));
                                } else if c != CLASS_OTHER && !s.sport.is_any() {
                                    items.sport.push((s.sport.clone(), e));
                                } else {
                                    items.any.push(e);
                                }
                            }
                        }
                    }
                    continue;
                }
                let ported = c != CLASS_OTHER;
                if ported && !v.sides.dport.is_any() {
                    if let Some(l) = by_dport.get_mut(c) {
                        l.push((v.sides.dport.clone(), vid));
                    }
                } else if ported && !v.sides.sport.is_any() {
                    if let Some(l) = by_sport.get_mut(c) {
                        l.push((v.sides.sport.clone(), vid));
                    }
                } else if let Some(ci) = classes.get_mut(c) {
                    ci.any.push(vid);
                }
            }
        }
        let mut budget = PAIRED_PATTERNS;
        for (c, ci) in classes.iter_mut().enumerate() {
            ci.by_dport = by_dport.get(c).and_then(|l| PortIndex::build(l));
            ci.by_sport = by_sport.get(c).and_then(|l| PortIndex::build(l));
            if let Some(buckets) = patterns.get_mut(c) {
                for (slot, items) in ci.patterns.iter_mut().zip(buckets.iter_mut()) {
                    *slot = PatternGroups::build(std::mem::take(items), &mut budget);
                }
            }
            ci.has_patterns = ci.patterns.iter().any(|g| !g.entries.is_empty());
            ci.dports = PortBits::listed(ci.by_dport.as_ref());
            ci.sports = PortBits::listed(ci.by_sport.as_ref());
        }
        Matcher {
            rules,
            variants,
            classes,
            home,
            src_table: src_table.build(),
            dst_table: dst_table.build(),
            ip_only,
        }
    }
}

/// The compiled rules and their indexes.
pub(super) struct Matcher {
    rules: Vec<CRule>,
    variants: Vec<Variant>,
    classes: [ClassIndex; 3],
    home: AddrSet,
    src_table: PrefixTable,
    dst_table: PrefixTable,
    ip_only: usize,
}

/// A rule that matched a packet.
pub(super) struct Hit<'m> {
    pub rule: &'m CRule,
}

impl Matcher {
    pub fn rules(&self) -> usize {
        self.rules.len()
    }

    pub fn ip_only(&self) -> usize {
        self.ip_only
    }

    /// Whether any rule is listed for a packet of `proto` between these
    /// ports, with this payload, `first` in its direction (or of no flow).
    /// False means [`Matcher::run`] would match nothing, which it finds out
    /// here before it looks at anything else: under a rule set of a few
    /// port rules that is most packets.
    #[inline]
    pub fn may_match(
        &self,
        proto: u8,
        sport: u16,
        dport: u16,
        payload: &[u8],
        first: bool,
    ) -> bool {
        (first && self.ip_only > 0)
            || self
                .classes
                .get(class_of(proto))
                .is_some_and(|ci| ci.may_have_candidates(sport, dport, payload))
    }

    /// Collects into `s.cands` the variants that may match `p` (`first` in
    /// its direction): the ip-only rules of its addresses, its class's
    /// rules for any port and for its ports, and the rules whose fast
    /// pattern its payload holds. Returns whether `s.lower` now holds the
    /// lower-cased payload.
    pub(super) fn candidates(&self, p: &PacketView<'_>, first: bool, s: &mut Scratch) -> bool {
        let Scratch {
            cands,
            lower,
            seen_patterns,
            touched,
        } = s;
        cands.clear();
        let mut lowered = false;
        if first && self.ip_only > 0 {
            cands.extend_from_slice(self.src_table.lookup(&p.src));
            cands.extend_from_slice(self.dst_table.lookup(&p.dst));
        }
        let Some(ci) = self.classes.get(class_of(p.proto)) else {
            return lowered;
        };
        cands.extend_from_slice(&ci.any);
        if let Some(ix) = &ci.by_dport {
            cands.extend_from_slice(ix.get(p.dport));
        }
        if let Some(ix) = &ci.by_sport {
            cands.extend_from_slice(ix.get(p.sport));
        }
        if !p.payload.is_empty() {
            // A packet without a flow has no direction: the to_server
            // bucket holds every rule without one.
            let b = bucket(
                p.flow.is_none_or(|f| f.to_server),
                self.home.contains(&p.src),
                self.home.contains(&p.dst),
            );
            if let Some(g) = ci.patterns.get(b) {
                for (a, end) in g.scanners(p.sport, p.dport).into_iter().flatten() {
                    if !lowered {
                        lower_into(lower, p.payload);
                        lowered = true;
                    }
                    let hay = lower.get(..end.min(lower.len())).unwrap_or(lower);
                    prefilter(a, hay, cands, seen_patterns, touched);
                }
            }
        }
        lowered
    }

    /// Runs every candidate rule on `p`; calls `on_match` for each rule
    /// that matched (once per rule), in evaluation order, after applying
    /// its flowbit actions. Returns early when a `pass` rule matched. The
    /// packet path asks [`Matcher::may_match`] first (before it builds the
    /// view), so this does not ask again.
    pub fn run(
        &self,
        p: &PacketView<'_>,
        mut bits: Option<&mut FlowBits>,
        refused_bits: &mut u64,
        on_match: &mut dyn FnMut(Hit<'_>) -> bool,
    ) {
        let first = p.flow.is_none_or(|f| f.first_in_direction);
        SCRATCH.with(|s| {
            let Ok(mut s) = s.try_borrow_mut() else {
                return;
            };
            let mut lowered = self.candidates(p, first, &mut s);
            let Scratch { cands, lower, .. } = &mut *s;
            if cands.is_empty() {
                return;
            }
            cands.sort_unstable();
            cands.dedup();
            let mut last_rule = u32::MAX;
            for &vid in cands.iter() {
                let Some(v) = self.variants.get(vid as usize) else {
                    continue;
                };
                // Both directions of a `<>` rule are adjacent: one match each.
                if v.rule == last_rule {
                    continue;
                }
                let Some(r) = self.rules.get(v.rule as usize) else {
                    continue;
                };
                if !self.matches(r, v, p, bits.as_deref(), lower, &mut lowered) {
                    continue;
                }
                last_rule = v.rule;
                if let Some(b) = bits.as_deref_mut() {
                    for &(bit, set) in &r.bit_actions {
                        if set {
                            if !b.set(bit) {
                                *refused_bits += 1;
                            }
                        } else {
                            b.unset(bit);
                        }
                    }
                }
                if !on_match(Hit { rule: r }) {
                    return;
                }
            }
        });
    }

    fn matches(
        &self,
        r: &CRule,
        v: &Variant,
        p: &PacketView<'_>,
        bits: Option<&FlowBits>,
        lower: &mut Vec<u8>,
        lowered: &mut bool,
    ) -> bool {
        if !r.proto_matches(p.proto) {
            return false;
        }
        let s = &v.sides;
        if !(s.src.is_any() || s.src.contains(&p.src))
            || !(s.dst.is_any() || s.dst.contains(&p.dst))
        {
            return false;
        }
        // Ports only match packets that have them (an `ip` rule with ports
        // sees TCP, UDP and SCTP).
        let ports_ok = (s.sport.is_any() && s.dport.is_any())
            || (matches!(p.proto, PROTO_TCP | PROTO_UDP | PROTO_SCTP)
                && s.sport.contains(p.sport)
                && s.dport.contains(p.dport));
        if !ports_ok {
            return false;
        }
        if let Some(fo) = &r.flow
            && !flow_matches(fo, p)
        {
            return false;
        }
        if !r.checks.iter().all(|c| c.matches(p)) {
            return false;
        }
        if !r.contents.is_empty() {
            if r.contents.iter().any(|c| c.nocase) && !*lowered {
                lower_into(lower, p.payload);
                *lowered = true;
            }
            let mut budget = CONTENT_BUDGET;
            if !contents_match(&r.contents, 0, 0, p.payload, lower, &mut budget) {
                return false;
            }
        }
        r.bit_tests
            .iter()
            .all(|&(bit, want)| bits.is_some_and(|b| b.is_set(bit)) == want)
    }
}

/// `out` becomes the lower-cased `payload`, in one pass.
fn lower_into(out: &mut Vec<u8>, payload: &[u8]) {
    out.resize(payload.len(), 0);
    for (d, s) in out.iter_mut().zip(payload) {
        *d = s.to_ascii_lowercase();
    }
}

fn prefilter(
    a: &Automaton,
    payload: &[u8],
    cands: &mut Vec<u32>,
    seen: &mut Vec<u64>,
    touched: &mut Vec<u32>,
) {
    let words = a.variants.len().div_ceil(64);
    if seen.len() < words {
        seen.resize(words, 0);
    }
    touched.clear();
    a.scan(payload, &mut |pid| {
        let (w, bit) = (pid / 64, 1u64 << (pid % 64));
        let Some(word) = seen.get_mut(w) else {
            return;
        };
        if *word & bit != 0 {
            return;
        }
        *word |= bit;
        touched.push(u32::try_from(pid).unwrap_or(u32::MAX));
        if let Some(vs) = a.variants.get(pid) {
            cands.extend_from_slice(vs);
        }
    });
    for &pid in touched.iter() {
        if let Some(word) = seen.get_mut(pid as usize / 64) {
            *word = 0;
        }
    }
}

fn flow_matches(fo: &FlowOpt, p: &PacketView<'_>) -> bool {
    if let Some(want) = fo.to_server
        && p.flow.is_none_or(|f| f.to_server != want)
    {
        return false;
    }
    match fo.state {
        Some(FlowState::Established) => p.flow.is_some_and(|f| f.established),
        Some(FlowState::NotEstablished) => p.flow.is_none_or(|f| !f.established),
        Some(FlowState::Stateless) | None => true,
    }
}

/// Matches contents `i..` with the previous match ending at `prev_end`,
/// retrying earlier contents at later positions when a relative one fails.
fn contents_match(
    cs: &[CContent],
    i: usize,
    prev_end: usize,
    payload: &[u8],
    lower: &[u8],
    budget: &mut u32,
) -> bool {
    let Some(c) = cs.get(i) else {
        return true;
    };
    let hay = if c.nocase { lower } else { payload };
    let (lo, hi) = c.window(prev_end, hay.len());
    if c.negated {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        if c.find(hay, lo, hi).is_some() {
            return false;
        }
        return contents_match(cs, i + 1, prev_end, payload, lower, budget);
    }
    let next_relative = cs.get(i + 1).is_some_and(CContent::relative);
    let mut from = lo;
    while let Some(at) = c.find(hay, from, hi) {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        if contents_match(cs, i + 1, at + c.pattern.len(), payload, lower, budget) {
            return true;
        }
        // Only the next content depends on where this one matched.
        if !next_relative {
            return false;
        }
        from = at + 1;
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn contents(spec: &[(&str, &[(&str, &str)])]) -> Vec<CContent> {
        let mut opts = Vec::new();
        for (pat, mods) in spec {
            super::super::options::parse_option("content", Some(pat), &mut opts).unwrap();
            for (k, v) in *mods {
                let v = if v.is_empty() { None } else { Some(*v) };
                super::super::options::parse_option(k, v, &mut opts).unwrap();
            }
        }
        opts.iter()
            .filter_map(|o| match o {
                super::super::options::Opt::Content(c) => Some(CContent::new(c)),
                _ => None,
            })
            .collect()
    }

    fn m(cs: &[CContent], payload: &[u8]) -> bool {
        let lower = payload.to_ascii_lowercase();
        let mut budget = CONTENT_BUDGET;
        contents_match(cs, 0, 0, payload, &lower, &mut budget)
    }

    #[test]
    fn absolute_windows() {
        let c = contents(&[("\"USER \"", &[("depth", "5")])]);
        assert!(m(&c, b"USER root"));
        assert!(!m(&c, b" USER root"));
        let c = contents(&[("\"root\"", &[("offset", "5"), ("depth", "4")])]);
        assert!(m(&c, b"USER root"));
        assert!(!m(&c, b"USER  root"));
        let c = contents(&[("\"user\"", &[("nocase", "")])]);
        assert!(m(&c, b"xUsEr"));
    }

    #[test]
    fn relative_matches_backtrack() {
        // "a" then "b" within 2 bytes of it: the first "a" fails, a later one fits.
        let c = contents(&[("\"a\"", &[]), ("\"b\"", &[("within", "2")])]);
        assert!(m(&c, b"a....ab"));
        assert!(!m(&c, b"a....a..b"));
        let c = contents(&[("\"ab\"", &[]), ("\"cd\"", &[("distance", "2")])]);
        assert!(m(&c, b"ab..cd"));
        assert!(m(&c, b"ab...cd"));
        assert!(!m(&c, b"ab.cd"));
        // Negative distance: "cd" may start before the end of "ab".
        let c = contents(&[
            ("\"abc\"", &[]),
            ("\"bc\"", &[("distance", "-2"), ("within", "2")]),
        ]);
        assert!(m(&c, b"xabc"));
    }

    #[test]
    fn start_and_end_anchors() {
        let c = contents(&[
            ("\"GET \"", &[("startswith", "")]),
            ("\"HTTP/1.0\"", &[("endswith", "")]),
        ]);
        assert!(m(&c, b"GET / HTTP/1.0"));
        assert!(!m(&c, b" GET / HTTP/1.0"));
        assert!(!m(&c, b"GET / HTTP/1.0\r\n"));
        let c = contents(&[("\"ab\"", &[("endswith", "")])]);
        assert!(m(&c, b"abab") && !m(&c, b"aba") && !m(&c, b"b"));
    }

    #[test]
    fn negated_contents() {
        let c = contents(&[("\"GET\"", &[("depth", "3")]), ("!\"Host\"", &[])]);
        assert!(m(&c, b"GET / HTTP/1.0\r\n\r\n"));
        assert!(!m(&c, b"GET / HTTP/1.1\r\nHost: x\r\n"));
        let c = contents(&[("\"a\"", &[]), ("!\"b\"", &[("within", "1")])]);
        assert!(m(&c, b"ac"));
        assert!(!m(&c, b"ab"));
    }

    #[test]
    fn the_budget_bounds_backtracking() {
        // Many "a"s, the relative content never fits: stops at the budget.
        let c = contents(&[
            ("\"a\"", &[]),
            ("\"a\"", &[("distance", "0")]),
            ("\"z\"", &[("within", "1")]),
        ]);
        let payload = vec![b'a'; 5000];
        let lower = payload.clone();
        let mut budget = CONTENT_BUDGET;
        assert!(!contents_match(&c, 0, 0, &payload, &lower, &mut budget));
        assert_eq!(budget, 0);
    }

    /// Every pattern that occurs is found, by either scanner, also when
    /// patterns overlap or one is a prefix of another.
    #[test]
    fn scanners_find_every_pattern() {
        let pats: Vec<&[u8]> = vec![
            b"abc", b"abcdef", b"bcd", b"cde", b"xyz", b"zzz", b"defg", b"aaa",
        ];
        let mut many: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
        for (i, p) in pats.iter().enumerate() {
            many.insert(p.to_vec(), vec![i as u32]);
        }
        // Enough padding patterns to force the DFA too.
        let mut big = many.clone();
        for i in 0..400u32 {
            big.insert(format!("pad{i:04}").into_bytes(), vec![1000 + i]);
        }
        for (name, set) in [("teddy", many), ("dfa", big)] {
            let a = Automaton::build(set).unwrap();
            if name == "dfa" {
                assert!(matches!(a.scanner, Scanner::Dfa(_)));
            }
            for hay in [
                &b"xxabcdefgxx"[..],
                b"aaaaa",
                b"zzzzxyz",
                b"abc",
                b"nothing here",
            ] {
                let mut found = Vec::new();
                a.scan(hay, &mut |pid| {
                    found.extend(a.variants[pid].iter().copied())
                });
                found.sort();
                found.dedup();
                let want: Vec<u32> = pats
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| hay.windows(p.len()).any(|w| w == **p))
                    .map(|(i, _)| i as u32)
                    .collect();
                assert_eq!(found, want, "{name} on {:?}", String::from_utf8_lossy(hay));
            }
        }
    }

    /// The two-level port map gives every port the group a flat table
    /// would, with ranges that start and end inside blocks and across them.
    #[test]
    fn port_map_matches_a_flat_table() {
        let set = |r: &[(u16, u16)]| PortSet::from_ranges(r.to_vec());
        let items = [
            (set(&[(0, 0), (80, 80), (65535, 65535)]), 1),
            (set(&[(250, 770)]), 2),
            (set(&[(1024, 65535)]), 3),
            (set(&[(8000, 8080), (512, 767)]), 4),
        ];
        let ix = PortIndex::build(&items).unwrap();
        for port in 0..=u16::MAX {
            let want: Vec<u32> = items
                .iter()
                .filter(|(s, _)| s.contains(port))
                .map(|(_, v)| *v)
                .collect();
            assert_eq!(ix.get(port), &want[..], "port {port}");
        }
        // Uniform blocks hold their group directly: only the blocks where
        // a range starts or ends need a table.
        assert!(ix.map.tables.len() <= 8, "{} tables", ix.map.tables.len());
    }

    /// Rules with `n_dport` single destination ports, `n_sport` single
    /// source ports and two any-port patterns, some anchored at the start.
    fn bucket_items(n_dport: u16, n_sport: u16) -> BucketItems {
        let mut items = BucketItems::default();
        let mut add = |pattern: String, end: Option<u32>| {
            let e = u32::try_from(items.entries.len()).unwrap();
            items.entries.push(Entry {
                pattern: pattern.into_bytes(),
                variant: e,
                end,
            });
            e
        };
        let mut dport = Vec::new();
        for i in 0..n_dport {
            dport.push((
                PortSet::from_ranges(vec![(1000 + i, 1000 + i)]),
                add(format!("dst{i}x"), None),
            ));
        }
        dport.push((
            PortSet::from_ranges(vec![(1000, 1000 + n_dport)]),
            add("head-d".into(), Some(8)),
        ));
        let mut sport = Vec::new();
        for i in 0..n_sport {
            sport.push((
                PortSet::from_ranges(vec![(80 + i, 80 + i)]),
                add(format!("src{i}y"), None),
            ));
        }
        items.any = vec![add("anywhere".into(), None), add("first".into(), Some(5))];
        items.dport = dport;
        items.sport = sport;
        items
    }

    /// The variants a packet's scanners name; those they must name (the
    /// pattern occurs within its window: its `end` when anchored within the
    /// head, else anywhere); and those they may name (the pattern occurs).
    fn scanned(
        g: &PatternGroups,
        sport: u16,
        dport: u16,
        lower: &[u8],
    ) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
        let (mut cands, mut seen, mut touched) = (Vec::new(), Vec::new(), Vec::new());
        for (a, end) in g.scanners(sport, dport).into_iter().flatten() {
            let hay = lower.get(..end.min(lower.len())).unwrap_or(lower);
            prefilter(a, hay, &mut cands, &mut seen, &mut touched);
        }
        cands.sort_unstable();
        cands.dedup();
        let occurs = |within: bool| -> Vec<u32> {
            let n = u32::try_from(g.entries.len()).unwrap();
            (0..n)
                .filter(|&e| {
                    let entry = &g.entries[e as usize];
                    let pat = std::str::from_utf8(&entry.pattern).unwrap();
                    let num = || pat[3..pat.len() - 1].parse::<u16>().unwrap();
                    let ports = match &pat[..3] {
                        "dst" => dport == 1000 + num(),
                        "src" => sport == 80 + num(),
                        "hea" => (1000..2000).contains(&dport),
                        _ => true,
                    };
                    let hay = match entry.end {
                        Some(end) if within && end as usize <= HEAD => {
                            &lower[..lower.len().min(end as usize)]
                        }
                        _ => lower,
                    };
                    ports && hay.windows(pat.len()).any(|w| w == pat.as_bytes())
                })
                .collect()
        };
        (cands, occurs(true), occurs(false))
    }

    fn assert_between(got: &[u32], must: &[u32], may: &[u32], what: &str) {
        assert!(
            must.iter().all(|e| got.contains(e)),
            "{what}: missed: {got:?} lacks some of {must:?}"
        );
        assert!(
            got.iter().all(|e| may.contains(e)),
            "{what}: named a pattern that is absent: {got:?} vs {may:?}"
        );
    }

    /// Paired scanners, and the fallback to one scanner per group when the
    /// pairs would be too many or past the budget, both name every rule
    /// whose pattern occurs in its window and none whose pattern is absent,
    /// and the paired scanners need one pass where the groups alone need
    /// three.
    #[test]
    fn pattern_groups_find_what_their_ports_allow() {
        for (n_dport, n_sport, budget, paired) in [
            (5, 4, PAIRED_PATTERNS, true),
            (40, 30, PAIRED_PATTERNS, false),
            (5, 4, 20, false),
        ] {
            let mut left = budget;
            let g = PatternGroups::build(bucket_items(n_dport, n_sport), &mut left);
            assert_eq!(g.paired, paired);
            assert_eq!(left < budget, paired);
            let payload = "first dst3x src2y anywhere dst4x head-d src9y".to_string();
            let late = format!("{} first head-d", "-".repeat(200));
            for lower in [payload.as_bytes(), late.as_bytes(), b"nothing"] {
                for (sport, dport) in [(82, 1003), (89, 1004), (80, 999), (5000, 1000 + n_dport)] {
                    let (got, must, may) = scanned(&g, sport, dport, lower);
                    let what = format!(
                        "ports {sport}->{dport} on {:?}",
                        String::from_utf8_lossy(lower)
                    );
                    assert_between(&got, &must, &may, &what);
                }
            }
            let passes = g
                .scanners(82, 1003)
                .iter()
                .flatten()
                .filter(|(_, end)| *end == usize::MAX)
                .count();
            assert_eq!(passes, if paired { 1 } else { 3 });
        }
    }

    /// Anchored patterns that would make the whole-payload scan slower get
    /// a scan of their own over the first bytes only: found there, not
    /// after.
    #[test]
    fn anchored_patterns_scan_the_head_only() {
        let mut items = BucketItems::default();
        for i in 0..70u32 {
            let (pattern, end) = if i < 60 {
                (format!("rest{i:02}"), None)
            } else {
                (format!("anc{i:02}"), Some(10))
            };
            items.entries.push(Entry {
                pattern: pattern.into_bytes(),
                variant: i,
                end,
            });
            items.any.push(i);
        }
        let g = PatternGroups::build(items, &mut PAIRED_PATTERNS.clone());
        let ends: Vec<usize> = g
            .scanners(1, 2)
            .iter()
            .flatten()
            .map(|(_, end)| *end)
            .collect();
        assert_eq!(ends, [10, usize::MAX]);
        let (got, must, _) = scanned(&g, 1, 2, b"anc61 rest07 anc62");
        assert_eq!((&got, &must), (&vec![7, 61], &vec![7, 61]));
        // A set whose anchored patterns cost the whole scan nothing is one pass.
        let mut items = BucketItems::default();
        for i in 0..20u32 {
            items.entries.push(Entry {
                pattern: format!("pat{i:02}").into_bytes(),
                variant: i,
                end: (i >= 15).then_some(10),
            });
            items.any.push(i);
        }
        let g = PatternGroups::build(items, &mut PAIRED_PATTERNS.clone());
        assert_eq!(g.scanners(1, 2).iter().flatten().count(), 1);
    }

    /// The order handed to Teddy is a permutation, and fills each bucket
    /// with patterns that share their first bytes' nibbles where sorted
    /// order would not: sixteen families of four patterns that differ only
    /// in their first byte each end up in one bucket.
    #[test]
    fn bucket_order_groups_like_patterns() {
        for n in 1..=TEDDY_PATTERNS {
            let pats: Vec<Vec<u8>> = (0..n)
                .map(|i| format!("{:02}pat", (i * 37) % 101).into_bytes())
                .collect();
            let refs: Vec<&Vec<u8>> = pats.iter().collect();
            let mut seen = bucket_order(&refs);
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n = {n}");
        }
        let pats: Vec<Vec<u8>> = (0..64u8)
            .map(|i| vec![b'a' + i % 4, b'a' + i / 4, b'q', b'a' + i / 4, b'z'])
            .collect();
        let refs: Vec<&Vec<u8>> = pats.iter().collect();
        let order = bucket_order(&refs);
        for j in 0..16 {
            let families: std::collections::BTreeSet<u8> = (0..64)
                .filter(|p| 15 - p % 16 == j)
                .map(|p| pats[order[p]][1])
                .collect();
            assert_eq!(families.len(), 1, "bucket {j} mixes families {families:?}");
        }
    }

    /// The model's expected candidates per payload place of the buckets
    /// Teddy would build from patterns given in `order`.
    fn expected_candidates(pats: &[&Vec<u8>], order: &[usize]) -> f64 {
        let buckets = if pats.len() > TEDDY_SLIM { 16 } else { 8 };
        let width = pats.iter().map(|p| p.len()).min().unwrap_or(0).min(4);
        (0..buckets)
            .map(|j| {
                (0..order.len())
                    .filter(|p| buckets - 1 - p % buckets == j)
                    .map(|p| Nibbles::of(pats[order[p]], width))
                    .fold(Nibbles::default(), |a, m| a.union(&m))
                    .accept_rate(width)
            })
            .sum()
    }

    #[test]
    fn bucket_order_spreads_frequent_patterns() {
        let words = [
            "user",
            "pass",
            "admin",
            "login",
            "shell",
            "root",
            "select",
            "union",
            "script",
            "alert",
            "cmd.exe",
            "wget",
            "curl",
            "chmod",
            "passwd",
            "whoami",
            "powershell",
            "eval",
            "exec",
            "system",
            "upload",
            "session",
            "cookie",
            "token",
        ];
        let mut pats: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        for i in 0..24u8 {
            pats.push(vec![0x90 ^ i, 0xeb, i.wrapping_mul(37), 0xff, 0x00, i]);
        }
        for i in 0..16u8 {
            pats.push(format!("%u{:02x}{:02x}", 0x41 + i, 0x90 - i).into_bytes());
        }
        let refs: Vec<&Vec<u8>> = pats.iter().collect();
        let order = bucket_order(&refs);
        let mut seen = order.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..pats.len()).collect::<Vec<_>>());
        let ours = expected_candidates(&refs, &order);
        // Round-robin from sorted order, the way patterns were given before.
        let mut sorted: Vec<usize> = (0..pats.len()).collect();
        sorted.sort_by_key(|&i| &pats[i]);
        let round_robin = expected_candidates(&refs, &sorted);
        // Dealt out without the swaps.
        let mut b = Buckets::deal(&refs);
        let dealt = b.total();
        assert!(b.swap_pass(), "no swap lowered the total");
        assert!(b.total() < dealt);
        println!(
            "expected candidates per place: {ours:.3e}, dealt {dealt:.3e}, round-robin {round_robin:.3e}"
        );
        assert!(ours < dealt, "{ours:.3e} vs {dealt:.3e} dealt");
        assert!(ours * 4.0 < round_robin, "{ours:.3e} vs {round_robin:.3e}");
        // The most frequent patterns, the words, are not all in a few buckets.
        let with_words = (0..16)
            .filter(|j| (0..order.len()).any(|p| 15 - p % 16 == *j && order[p] < words.len()))
            .count();
        assert!(with_words >= 8, "words in {with_words} buckets");
    }

    #[test]
    fn port_index_groups() {
        let set = |r: &[(u16, u16)]| PortSet::from_ranges(r.to_vec());
        let ix = PortIndex::build(&[
            (set(&[(80, 80)]), 1),
            (set(&[(1, 1024)]), 2),
            (set(&[(8080, 8080), (80, 80)]), 3),
        ])
        .unwrap();
        assert_eq!(ix.get(80), &[1, 2, 3]);
        assert_eq!(ix.get(81), &[2]);
        assert_eq!(ix.get(8080), &[3]);
        assert_eq!(ix.get(0), &[] as &[u32]);
        assert_eq!(ix.get(65535), &[] as &[u32]);
        assert!(ix.groups.len() <= 5);
    }
}
