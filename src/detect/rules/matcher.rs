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
//!   (aho-corasick: Teddy searchers for groups of up to 256 patterns, a
//!   DFA beyond) name the rules to check;
//! - other rules are grouped per protocol class by destination port, else
//!   by source port, else "any port": a table of 65536 entries gives a
//!   port's group.
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
use std::sync::Arc;

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

impl<'a> PacketView<'a> {
    pub fn new(ip: &Ip, t: &Transport<'a>) -> PacketView<'a> {
        let mut v = PacketView {
            proto: ip.proto,
            src: ip.src,
            dst: ip.dst,
            sport: 0,
            dport: 0,
            ttl: ip.ttl,
            tcp: None,
            icmp: None,
            payload: &[],
            flow: None,
        };
        match *t {
            Transport::Tcp(s) => {
                v.sport = s.sport;
                v.dport = s.dport;
                v.payload = s.payload;
                v.tcp = Some(TcpFields {
                    flags: s.flags,
                    seq: s.seq,
                    ack: s.ack,
                    window: s.window,
                });
            }
            Transport::Udp {
                sport,
                dport,
                payload,
            } => {
                v.sport = sport;
                v.dport = dport;
                v.payload = payload;
            }
            Transport::Icmp {
                type_,
                code,
                payload,
            } => {
                v.icmp = Some((type_, code));
                v.payload = payload;
            }
            Transport::Sctp { sport, dport } => {
                v.sport = sport;
                v.dport = dport;
            }
            Transport::Other | Transport::None => {}
        }
        v
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
            first_in_direction: flow.pkts.get(dir).is_some_and(|n| *n <= 1),
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

/// The prefilter pattern of a rule's contents: the `fast_pattern` one, else
/// the longest non-negated one.
pub(super) fn fast_pattern(contents: &[Content]) -> Option<(Vec<u8>, bool)> {
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
    Some((bytes, chosen.nocase))
}

/// A rule ready to match.
pub(super) struct CRule {
    pub meta: Arc<RuleMeta>,
    pub action: Action,
    pub proto: Protocol,
    pub flow: Option<FlowOpt>,
    pub checks: Vec<Check>,
    pub contents: Vec<CContent>,
    pub fast: Option<(Vec<u8>, bool)>,
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

/// Port → group of variants, for all 65536 ports.
struct PortIndex {
    map: Vec<u32>,
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
        Some(PortIndex { map, groups })
    }

    fn get(&self, port: u16) -> &[u32] {
        let g = self.map.get(usize::from(port)).copied().unwrap_or(0);
        self.groups.get(g as usize).map_or(&[], |b| b)
    }
}

/// Fast patterns shorter than this are no use as a prefilter (a byte or
/// two of binary occurs everywhere): their rules are grouped by port and
/// checked in full instead.
const MIN_FAST_PATTERN: usize = 3;
/// Patterns per Teddy searcher, and searchers per group before a single
/// automaton is cheaper.
const TEDDY_PATTERNS: usize = 32;
const TEDDY_MAX_SEARCHERS: usize = 8;

/// One Teddy searcher: its patterns' ids, and for each the ids of the
/// group's patterns that are its prefixes.
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
    /// afterwards). Small groups (up to 256 patterns) use aho-corasick's
    /// packed Teddy searchers, several times faster per byte than an
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
            let searcher = aho_corasick::packed::Config::new()
                .match_kind(aho_corasick::packed::MatchKind::LeftmostLongest)
                .builder()
                .extend(chunk)
                .build()?;
            let base = g * TEDDY_PATTERNS;
            let ids: Vec<u32> = (base..base + chunk.len())
                .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
                .collect();
            let prefixes = chunk
                .iter()
                .map(|p| {
                    chunk
                        .iter()
                        .enumerate()
                        .filter(|(_, q)| q.len() < p.len() && p.starts_with(q))
                        .map(|(j, _)| u32::try_from(base + j).unwrap_or(u32::MAX))
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

/// The payload rules of one bucket, split by port as the other rules are:
/// those with destination ports, else source ports, get a scanner per port
/// group; the rest one scanner for any port.
#[derive(Default)]
struct PatternGroups {
    any: Option<Automaton>,
    by_dport: Option<PortScanners>,
    by_sport: Option<PortScanners>,
}

/// Port → group, and each group's scanner.
struct PortScanners {
    index: PortIndex,
    scanners: Vec<Option<Automaton>>,
}

impl PortScanners {
    /// `items`: (ports, variant, lower-cased pattern).
    fn build(items: &[(PortSet, u32, Vec<u8>)]) -> Option<PortScanners> {
        let keyed: Vec<(PortSet, u32)> = items
            .iter()
            .enumerate()
            .map(|(i, (ports, _, _))| (ports.clone(), u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        let index = PortIndex::build(&keyed)?;
        let scanners = index
            .groups
            .iter()
            .map(|group| {
                let mut m: HashMap<Vec<u8>, Vec<u32>> = HashMap::new();
                for &i in group.iter() {
                    if let Some((_, vid, pat)) = items.get(i as usize) {
                        m.entry(pat.clone()).or_default().push(*vid);
                    }
                }
                Automaton::build(m)
            })
            .collect();
        Some(PortScanners { index, scanners })
    }

    fn get(&self, port: u16) -> Option<&Automaton> {
        let g = self.index.map.get(usize::from(port)).copied().unwrap_or(0);
        self.scanners.get(g as usize).and_then(Option::as_ref)
    }
}

/// What a bucket's rules are collected in while building.
#[derive(Default)]
struct BucketItems {
    any: HashMap<Vec<u8>, Vec<u32>>,
    dport: Vec<(PortSet, u32, Vec<u8>)>,
    sport: Vec<(PortSet, u32, Vec<u8>)>,
}

#[derive(Default)]
struct ClassIndex {
    any: Vec<u32>,
    by_dport: Option<PortIndex>,
    by_sport: Option<PortIndex>,
    patterns: [PatternGroups; BUCKETS],
}

/// Per-thread scratch space (no allocation per packet).
#[derive(Default)]
struct Scratch {
    cands: Vec<u32>,
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
                if let Some((pat, _)) = r.fast.as_ref().filter(|(p, _)| p.len() >= MIN_FAST_PATTERN)
                {
                    let dirs: &[bool] = match r.flow.and_then(|f| f.to_server) {
                        Some(true) => &[true],
                        Some(false) => &[false],
                        None => &[true, false],
                    };
                    let srcs = home_states(&v.sides.src, &home);
                    let dsts = home_states(&v.sides.dst, &home);
                    let lower = pat.to_ascii_lowercase();
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
                                if c != CLASS_OTHER && !s.dport.is_any() {
                                    items.dport.push((s.dport.clone(), vid, lower.clone()));
                                } else if c != CLASS_OTHER && !s.sport.is_any() {
                                    items.sport.push((s.sport.clone(), vid, lower.clone()));
                                } else {
                                    items.any.entry(lower.clone()).or_default().push(vid);
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
        for (c, ci) in classes.iter_mut().enumerate() {
            ci.by_dport = by_dport.get(c).and_then(|l| PortIndex::build(l));
            ci.by_sport = by_sport.get(c).and_then(|l| PortIndex::build(l));
            if let Some(buckets) = patterns.get_mut(c) {
                for (slot, items) in ci.patterns.iter_mut().zip(buckets.iter_mut()) {
                    *slot = PatternGroups {
                        any: Automaton::build(std::mem::take(&mut items.any)),
                        by_dport: PortScanners::build(&items.dport),
                        by_sport: PortScanners::build(&items.sport),
                    };
                }
            }
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

    /// Runs every candidate rule on `p`; calls `on_match` for each rule
    /// that matched (once per rule), in evaluation order, after applying
    /// its flowbit actions. Returns early when a `pass` rule matched.
    pub fn run(
        &self,
        p: &PacketView<'_>,
        mut bits: Option<&mut FlowBits>,
        refused_bits: &mut u64,
        on_match: &mut dyn FnMut(Hit<'_>) -> bool,
    ) {
        if self.rules.is_empty() {
            return;
        }
        SCRATCH.with(|s| {
            let Ok(mut s) = s.try_borrow_mut() else {
                return;
            };
            let Scratch {
                cands,
                lower,
                seen_patterns,
                touched,
            } = &mut *s;
            cands.clear();
            let mut lowered = false;
            let first = p.flow.is_none_or(|f| f.first_in_direction);
            if first && self.ip_only > 0 {
                cands.extend_from_slice(self.src_table.lookup(&p.src));
                cands.extend_from_slice(self.dst_table.lookup(&p.dst));
            }
            let class = self.classes.get(class_of(p.proto));
            if let Some(ci) = class {
                cands.extend_from_slice(&ci.any);
                if let Some(ix) = &ci.by_dport {
                    cands.extend_from_slice(ix.get(p.dport));
                }
                if let Some(ix) = &ci.by_sport {
                    cands.extend_from_slice(ix.get(p.sport));
                }
                if !p.payload.is_empty() {
                    // A packet without a flow has no direction: the
                    // to_server bucket holds every rule without one.
                    let b = bucket(
                        p.flow.is_none_or(|f| f.to_server),
                        self.home.contains(&p.src),
                        self.home.contains(&p.dst),
                    );
                    if let Some(g) = ci.patterns.get(b) {
                        let scanners = [
                            g.any.as_ref(),
                            g.by_dport.as_ref().and_then(|x| x.get(p.dport)),
                            g.by_sport.as_ref().and_then(|x| x.get(p.sport)),
                        ];
                        for a in scanners.into_iter().flatten() {
                            if !lowered {
                                lower_into(lower, p.payload);
                                lowered = true;
                            }
                            prefilter(a, lower, cands, seen_patterns, touched);
                        }
                    }
                }
            }
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
