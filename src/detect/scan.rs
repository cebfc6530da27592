//! `port_scan` (one source, many ports of one host), `port_sweep` (one
//! source, one port, or the echo of ICMP/ICMPv6, on many hosts) and
//! `protocol_scan` (one source, many IP protocols of one host), TCP, UDP
//! and ICMP, IPv4 and IPv6.
//!
//! A probe is the first packet of a new flow from its client: a SYN, or a
//! FIN, NULL, Xmas, ACK or FIN+ACK segment with no connection behind it, a
//! UDP datagram, or an echo request. Each probe is answered (SYN-ACK, a UDP
//! reply, an echo reply), rejected (RST, ICMP unreachable) or unanswered.
//! An incident needs `min_ports` distinct ports of one host (or `min_hosts`
//! hosts on one port) within the window, or `min_refused` of them refused,
//! and at most `max_success_ratio` of them answered: a client talking to
//! many ports or hosts that answer is at work, not scanning, while a client
//! refused on ten ports of one host is looking for what is open. The window
//! slides: each target counts while its last probe is younger than the
//! window. Probes to `ignore` (by default traceroute's UDP ports
//! 33434-33534) are not counted.

use super::bounded::{FastMap as HashMap, Usage, fast_map};

use serde_json::json;

use super::bounded::{BoundedMap, Expiring, Recall};
use super::{Alert, Endpoint, Kind, Reported, ts};
use crate::config::{Config, PortScanConfig};
use crate::decode::{Addr, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, tcp_flags as F};
use crate::policy::{Direction, Policy, ServiceSet};
use crate::time::{Micros, Timestamp};

/// How a probe was made (nmap's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Technique {
    Syn,
    Connect,
    Fin,
    Null,
    Xmas,
    Ack,
    Maimon,
    Udp,
    /// An ICMP or ICMPv6 echo request (a ping sweep).
    Echo,
}

impl Technique {
    const ALL: [Technique; 9] = [
        Technique::Syn,
        Technique::Connect,
        Technique::Fin,
        Technique::Null,
        Technique::Xmas,
        Technique::Ack,
        Technique::Maimon,
        Technique::Udp,
        Technique::Echo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Technique::Syn => "syn",
            Technique::Connect => "connect",
            Technique::Fin => "fin",
            Technique::Null => "null",
            Technique::Xmas => "xmas",
            Technique::Ack => "ack",
            Technique::Maimon => "maimon",
            Technique::Udp => "udp",
            Technique::Echo => "echo",
        }
    }

    /// The technique of a flow's first segment, if it is a probe. A SYN
    /// offering a window above [`RAW_SYN_MAX_WINDOW`] comes from an
    /// operating system's stack (connect(): Linux 64240, Windows 64240 or
    /// 65535) and makes a connect scan; raw-packet scanners offer small
    /// windows (nmap -sS 1024-4096, masscan 1024, hping3 512 or 64).
    pub fn of_tcp(flags: u8, window: u16) -> Option<Technique> {
        let f = flags & (F::SYN | F::ACK | F::FIN | F::RST | F::PSH | F::URG);
        match f {
            x if x == F::SYN && window > RAW_SYN_MAX_WINDOW => Some(Technique::Connect),
            x if x == F::SYN => Some(Technique::Syn),
            x if x == F::FIN => Some(Technique::Fin),
            0 => Some(Technique::Null),
            x if x == F::FIN | F::PSH | F::URG => Some(Technique::Xmas),
            x if x == F::ACK => Some(Technique::Ack),
            x if x == F::FIN | F::ACK => Some(Technique::Maimon),
            _ => None,
        }
    }
}

/// The largest window a raw-packet scanner's SYN offers (see [`Technique::of_tcp`]).
pub const RAW_SYN_MAX_WINDOW: u16 = 4096;

/// What came back for a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Rejected,
}

/// Ports and hosts kept per scanner and per target (beyond this only counts grow).
const MAX_TARGETS: usize = 512;
const MAX_PER_TARGET: usize = 8192;

/// One probed target (a port of a host, or a host on a port).
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    first: Timestamp,
    last: Timestamp,
    probes: u32,
    outcome: Option<Outcome>,
    /// The protocols its probes used ([`proto_bit`]).
    protos: u8,
}

impl Seen {
    /// One probe at `now`.
    fn new(now: Timestamp) -> Seen {
        Seen {
            first: now,
            last: now,
            probes: 1,
            outcome: None,
            protos: 0,
        }
    }
}

/// The targets one scanner probed on one host (ports) or one port (hosts),
/// over a sliding window: a target counts while its last probe is younger
/// than the window, so a slow scan that spans several windows is seen as
/// long as enough of it falls within any one window.
#[derive(Debug)]
struct Targets<K> {
    seen: HashMap<K, Seen>,
    /// Bytes `seen` has allocated (the most it has reported).
    alloc: usize,
    /// Targets that could not be kept (beyond `MAX_PER_TARGET`, or beyond
    /// the tracker's memory): counted in 16 slices of the window so that
    /// the count slides with it; `overflow` is their sum at the last prune.
    overflow: u32,
    /// Allocated with the first target not kept (most targets sets never
    /// overflow, and every scanner holds two of them per target).
    overflow_slices: Option<Box<[(u64, u32); 16]>>,
    /// Distinct targets that answered / refused (kept in step with `seen`).
    answered: u32,
    rejected: u32,
    /// Every probe ever sent (re-reports need the count to grow).
    total: u64,
    /// Entries older than the window are dropped at most every window/16.
    next_prune: Timestamp,
    /// The protocols the targets in the window were probed with
    /// ([`proto_bit`]): a host's ports are counted together whether TCP or
    /// UDP. Targets not kept add theirs until the set has none left.
    protos: u8,
    reported: Reported,
}

impl<K> Default for Targets<K> {
    fn default() -> Self {
        Targets {
            seen: fast_map(),
            // Charged up front: the overflow slices it may need once full.
            alloc: OVERFLOW_BOX,
            overflow: 0,
            overflow_slices: None,
            answered: 0,
            rejected: 0,
            total: 0,
            next_prune: Timestamp(0),
            protos: 0,
            reported: Reported::default(),
        }
    }
}

impl<K: Eq + std::hash::Hash + Copy> Targets<K> {
    fn distinct(&self) -> u64 {
        self.seen.len() as u64 + u64::from(self.overflow)
    }

    fn probes(&self) -> u64 {
        self.seen.values().map(|s| u64::from(s.probes)).sum::<u64>() + u64::from(self.overflow)
    }

    fn window_start(&self, now: Timestamp) -> Timestamp {
        self.seen.values().map(|s| s.first).min().unwrap_or(now)
    }

    fn prune(&mut self, now: Timestamp, window: Micros) {
        if now < self.next_prune {
            return;
        }
        self.next_prune = now.saturating_add(Micros(window.0 / 16));
        let (mut answered, mut rejected, mut protos) = (0, 0, 0);
        self.seen.retain(|_, s| {
            let keep = s.last.saturating_add(window) > now;
            if keep {
                protos |= s.protos;
                match s.outcome {
                    Some(Outcome::Answered) => answered += 1,
                    Some(Outcome::Rejected) => rejected += 1,
                    None => {}
                }
            }
            keep
        });
        let slice = slice_of(now, window);
        let mut overflow = 0u32;
        for (at, n) in self.overflow_slices.iter_mut().flat_map(|b| b.iter_mut()) {
            if *at + 16 <= slice {
                *n = 0;
            }
            overflow = overflow.saturating_add(*n);
        }
        self.overflow = overflow;
        if overflow == 0 {
            self.protos = protos;
        }
        (self.answered, self.rejected) = (answered, rejected);
    }

    /// Records probes of target `k`: one new probe, or a staged target's
    /// history (its probes, times and outcome), merged with what the
    /// target has (TCP and UDP probes of one port of a host are one target
    /// of the host). A new target is kept only when the map can take it
    /// within `left` bytes (the tracker's memory) and under
    /// [`MAX_PER_TARGET`]; otherwise it is only counted.
    fn record(&mut self, k: K, seen: Seen, now: Timestamp, window: Micros, left: usize) {
        self.prune(now, window);
        self.total += u64::from(seen.probes);
        let room = self.seen.len() < MAX_PER_TARGET && can_insert(&self.seen, left);
        let alloc = self.alloc;
        match self.seen.get_mut(&k) {
            Some(s) => {
                s.first = s.first.min(seen.first);
                s.last = s.last.max(seen.last);
                s.probes = s.probes.saturating_add(seen.probes);
                s.protos |= seen.protos;
            }
            None if room => {
                self.seen.insert(
                    k,
                    Seen {
                        outcome: None,
                        ..seen
                    },
                );
            }
            None => {
                // Not kept: counted in the current slice of the window.
                let slice = slice_of(now, window);
                let slices = self
                    .overflow_slices
                    .get_or_insert_with(|| Box::new([(0, 0); 16]));
                if let Some((at, c)) = slices.get_mut((slice % 16) as usize) {
                    if *at != slice {
                        (*at, *c) = (slice, 0);
                    }
                    *c = c.saturating_add(1);
                }
                self.overflow = self.overflow.saturating_add(1);
                return;
            }
        }
        if let Some(o) = seen.outcome {
            self.outcome(&k, o);
        }
        self.alloc = alloc.max(map_bytes(&self.seen) + OVERFLOW_BOX);
    }

    /// The evidence every scan alert gives of its target set.
    fn evidence(&self, alert: Alert, now: Timestamp) -> Alert {
        alert
            .with("probes", self.probes())
            .with("answered", self.answered)
            .with("rejected", self.rejected)
            .with("window_start", ts(self.window_start(now)))
            .with("window_end", ts(now))
    }

    /// Distinct targets that neither answered nor refused.
    fn unanswered(&self) -> u64 {
        self.distinct()
            .saturating_sub(u64::from(self.answered + self.rejected))
    }

    /// The target answered or refused; the first outcome of a target counts.
    fn outcome(&mut self, k: &K, o: Outcome) {
        if let Some(s) = self.seen.get_mut(k)
            && s.outcome.is_none()
        {
            s.outcome = Some(o);
            match o {
                Outcome::Answered => self.answered += 1,
                Outcome::Rejected => self.rejected += 1,
            }
        }
    }
}

/// Records probes of `target` (`seen`) in the targets of `key` (a host's
/// ports, or a port's hosts), creating them if `left` bytes allow; returns
/// the bytes the maps grew by.
#[allow(clippy::too_many_arguments)]
fn probe_in<K: Eq + std::hash::Hash + Copy, T: Eq + std::hash::Hash + Copy>(
    map: &mut HashMap<K, Targets<T>>,
    alloc: &mut usize,
    key: K,
    target: T,
    seen: Seen,
    proto: u8,
    now: Timestamp,
    window: Micros,
    left: usize,
) -> usize {
    let new = !map.contains_key(&key);
    if new
        && (map.len() >= MAX_TARGETS
            || left < OVERFLOW_BOX
            || !can_insert(map, left - OVERFLOW_BOX))
    {
        return 0;
    }
    map.entry(key).or_default();
    let mut grown_map = (*alloc).max(map_bytes(map)) - *alloc;
    *alloc += grown_map;
    if new {
        // The new target set's own charge (its overflow slices).
        grown_map += OVERFLOW_BOX;
    }
    let Some(t) = map.get_mut(&key) else {
        return grown_map;
    };
    let seen = Seen {
        protos: seen.protos | proto_bit(proto),
        ..seen
    };
    let before = t.alloc;
    t.record(target, seen, now, window, left.saturating_sub(grown_map));
    t.protos |= seen.protos;
    grown_map + (t.alloc - before)
}

/// Bytes of a target set's overflow slices, once it has them.
const OVERFLOW_BOX: usize = std::mem::size_of::<[(u64, u32); 16]>();

/// The slice of packet time (a 16th of the window) `now` falls in.
fn slice_of(now: Timestamp, window: Micros) -> u64 {
    now.0 / (window.0 / 16).max(1)
}

/// Heap bytes of a map's allocation (its buckets and control bytes, as
/// hashbrown sizes them for the capacity it reports). A map never shrinks,
/// so callers keep the largest value seen: deleted entries lower the
/// reported capacity, not the allocation.
fn map_bytes<K, V>(m: &HashMap<K, V>) -> usize {
    let cap = m.capacity();
    let buckets = match cap {
        0 => 0,
        c if c < 8 => (c + 1).next_power_of_two(),
        c => (c * 8 / 7).next_power_of_two(),
    };
    buckets * (std::mem::size_of::<(K, V)>() + 1)
}

/// Whether one more entry fits in `left` bytes: free while the map has
/// spare capacity, else it grows (doubles, or takes its first buckets).
fn can_insert<K, V>(m: &HashMap<K, V>, left: usize) -> bool {
    m.len() < m.capacity() || map_bytes(m).max(4 * (std::mem::size_of::<(K, V)>() + 1)) <= left
}

/// Distinct targets a scanner keeps inline before it needs its maps. Most
/// sources are clients with one or a few targets; staged, each costs a few
/// hundred bytes instead of the maps' few kilobytes, so a busy link's
/// clients do not fill the tracker a scanner needs.
const STAGED: usize = 4;

/// A target and its probes: a port of a host (TCP, UDP), the host's echo
/// (ICMP, ICMPv6: `port` the echo request's type, see [`echo_type`]), or an
/// IP protocol of the host (`port` 0).
#[derive(Clone, Copy, Debug, Default)]
struct Staged {
    dst: Addr,
    proto: u8,
    port: u16,
    seen: Seen,
}

impl Staged {
    /// A target probed once, at `now`.
    fn new(dst: Addr, proto: u8, port: u16, now: Timestamp) -> Staged {
        Staged {
            dst,
            proto,
            port,
            seen: Seen::new(now),
        }
    }

    fn is(&self, dst: &Addr, proto: u8, port: u16) -> bool {
        self.dst == *dst && self.proto == proto && self.port == port
    }
}

/// A scanner's targets once it has more than it stages.
#[derive(Debug)]
struct Maps {
    /// Bytes the `hosts`, `ports` and `protocols` maps have allocated.
    hosts_alloc: usize,
    ports_alloc: usize,
    protocols_alloc: usize,
    hosts: HashMap<Addr, Targets<u16>>,
    ports: HashMap<(u8, u16), Targets<Addr>>,
    /// IP protocols (other than TCP and UDP) probed per host.
    protocols: HashMap<Addr, Targets<u8>>,
}

impl Maps {
    fn new() -> Self {
        Maps {
            hosts_alloc: 0,
            ports_alloc: 0,
            protocols_alloc: 0,
            hosts: fast_map(),
            ports: fast_map(),
            protocols: fast_map(),
        }
    }

    /// Heap bytes: the box, the maps and every target's map.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Maps>()
            + self.hosts_alloc
            + self.ports_alloc
            + self.protocols_alloc
            + self.hosts.values().map(|t| t.alloc).sum::<usize>()
            + self.ports.values().map(|t| t.alloc).sum::<usize>()
            + self.protocols.values().map(|t| t.alloc).sum::<usize>()
    }

    /// Records probes of target `t` (a port of a host, its echo, or an IP
    /// protocol of it: see [`dim`]) within `left` bytes; returns the bytes
    /// grown.
    fn record(&mut self, t: &Staged, now: Timestamp, window: Micros, left: usize) -> usize {
        let d = dim(t.proto, t.port);
        if d == Dim::Protocol {
            return probe_in(
                &mut self.protocols,
                &mut self.protocols_alloc,
                t.dst,
                t.proto,
                t.seen,
                t.proto,
                now,
                window,
                left,
            );
        }
        // Each step may spend what is left after the one before it.
        let grown = if d == Dim::Port {
            probe_in(
                &mut self.hosts,
                &mut self.hosts_alloc,
                t.dst,
                t.port,
                t.seen,
                t.proto,
                now,
                window,
                left,
            )
        } else {
            0
        };
        grown
            + probe_in(
                &mut self.ports,
                &mut self.ports_alloc,
                (t.proto, t.port),
                t.dst,
                t.seen,
                t.proto,
                now,
                window,
                left.saturating_sub(grown),
            )
    }

    /// The target answered or refused.
    fn outcome(&mut self, dst: &Addr, proto: u8, port: u16, o: Outcome) {
        if dim(proto, port) == Dim::Protocol {
            if let Some(t) = self.protocols.get_mut(dst) {
                t.outcome(&proto, o);
            }
            return;
        }
        if dim(proto, port) == Dim::Port
            && let Some(h) = self.hosts.get_mut(dst)
        {
            h.outcome(&port, o);
        }
        if let Some(p) = self.ports.get_mut(&(proto, port)) {
            p.outcome(dst, o);
        }
    }

    /// Drops targets with no probe left in the window.
    fn gc(&mut self, now: Timestamp, window: Micros) {
        for h in self.hosts.values_mut() {
            h.prune(now, window);
        }
        self.hosts
            .retain(|_, h| !h.seen.is_empty() || h.overflow > 0);
        for p in self.ports.values_mut() {
            p.prune(now, window);
        }
        self.ports
            .retain(|_, p| !p.seen.is_empty() || p.overflow > 0);
        for p in self.protocols.values_mut() {
            p.prune(now, window);
        }
        self.protocols
            .retain(|_, p| !p.seen.is_empty() || p.overflow > 0);
    }
}

#[derive(Debug)]
struct ScanState {
    /// Heap bytes held (the maps, once made, and every target's map), kept
    /// current as they grow and recounted when targets are dropped.
    bytes: usize,
    last_seen: Timestamp,
    /// The targets while they are few (`n_staged` of them, no maps yet).
    staged: [Staged; STAGED],
    n_staged: u8,
    /// The source was noted by the tracker's [`Recall`] before this entry
    /// was made: it had an entry lately that was dropped.
    recalled: bool,
    maps: Option<Box<Maps>>,
    /// Probes per technique, halved every window.
    techniques: [u32; 9],
    /// Port probes answered (SYN-ACK, a reply), halved with `techniques`.
    answered: u32,
    techniques_since: Timestamp,
    /// Empty targets are dropped at most every window/16.
    next_gc: Timestamp,
}

impl Expiring for ScanState {
    fn last_seen(&self) -> Timestamp {
        self.last_seen
    }

    fn heap_bytes(&self) -> usize {
        self.bytes
    }

    /// A source with few targets (a client, or one packet of a spoofed
    /// flood) may make room for a new one, one with a single target first
    /// unless it is recalled (it comes back: a flood's spoofed sources
    /// do not); a scanner with maps stays.
    fn disposable(&self) -> Option<u8> {
        self.maps
            .is_none()
            .then(|| self.n_staged.saturating_sub(1).max(u8::from(self.recalled)))
    }
}

impl ScanState {
    fn new(now: Timestamp, recalled: bool) -> Self {
        ScanState {
            bytes: 0,
            last_seen: now,
            staged: [Staged::default(); STAGED],
            n_staged: 0,
            recalled,
            maps: None,
            techniques: [0; 9],
            answered: 0,
            techniques_since: now,
            next_gc: now,
        }
    }

    /// The technique of an incident on targets of kind `d`: a ping
    /// sweep's is echo; a port scan's or sweep's that of most of the
    /// scanner's port probes (a SYN scan followed by a few version probes
    /// through connect() stays a SYN scan).
    fn technique(&self, d: Dim) -> &'static str {
        if d == Dim::Echo {
            return Technique::Echo.name();
        }
        let t = &self.techniques;
        Technique::ALL
            .iter()
            .filter(|x| **x != Technique::Echo)
            .max_by_key(|x| t.get(**x as usize).copied().unwrap_or(0))
            .map_or("unknown", |x| x.name())
    }

    fn staged(&self) -> &[Staged] {
        self.staged.get(..usize::from(self.n_staged)).unwrap_or(&[])
    }

    fn staged_mut(&mut self, dst: &Addr, proto: u8, port: u16) -> Option<&mut Staged> {
        let n = usize::from(self.n_staged);
        self.staged
            .get_mut(..n)
            .and_then(|s| s.iter_mut().find(|t| t.is(dst, proto, port)))
    }

    /// Whether a probe of this target was counted (staged or kept).
    fn counted(&self, dst: &Addr, proto: u8, port: u16) -> bool {
        match &self.maps {
            None => self.staged().iter().any(|t| t.is(dst, proto, port)),
            Some(m) if dim(proto, port) == Dim::Port => {
                m.hosts.get(dst).is_some_and(|h| h.seen.contains_key(&port))
            }
            Some(m) if dim(proto, port) == Dim::Echo => m
                .ports
                .get(&(proto, port))
                .is_some_and(|p| p.seen.contains_key(dst)),
            Some(m) => m
                .protocols
                .get(dst)
                .is_some_and(|t| t.seen.contains_key(&proto)),
        }
    }

    /// Records a probe while the scanner has no maps and at most `cap`
    /// distinct targets in the window (dropping those older); false when
    /// it has maps or needs them for this target.
    fn stage(
        &mut self,
        dst: Addr,
        proto: u8,
        port: u16,
        now: Timestamp,
        window: Micros,
        cap: usize,
    ) -> bool {
        if self.maps.is_some() {
            return false;
        }
        let n = usize::from(self.n_staged);
        let mut kept = 0;
        for i in 0..n {
            if let Some(t) = self.staged.get(i).copied()
                && t.seen.last.saturating_add(window) > now
                && let Some(slot) = self.staged.get_mut(kept)
            {
                *slot = t;
                kept += 1;
            }
        }
        self.n_staged = kept as u8;
        if let Some(t) = self.staged_mut(&dst, proto, port) {
            t.seen.last = now;
            t.seen.probes = t.seen.probes.saturating_add(1);
            return true;
        }
        if kept >= cap.min(STAGED) {
            return false;
        }
        if let Some(slot) = self.staged.get_mut(kept) {
            *slot = Staged::new(dst, proto, port, now);
            self.n_staged += 1;
        }
        true
    }

    /// The target answered or refused; the first outcome counts.
    fn outcome(&mut self, dst: &Addr, proto: u8, port: u16, o: Outcome) {
        if let Some(m) = &mut self.maps {
            m.outcome(dst, proto, port, o);
            return;
        }
        let n = usize::from(self.n_staged);
        let staged = self.staged.get_mut(..n).unwrap_or_default();
        let Some(i) = staged.iter().position(|t| t.is(dst, proto, port)) else {
            return;
        };
        if let Some(t) = staged.get_mut(i)
            && t.seen.outcome.is_none()
        {
            t.seen.outcome = Some(o);
        } else {
            return;
        }
        // TCP and UDP probes of a port are one target of the host, whose
        // first outcome counts, and the maps take the staged targets in
        // order: this one goes before the other protocol's if that has
        // none yet.
        let sibling = |t: &Staged| {
            t.dst == *dst
                && t.port == port
                && t.proto != proto
                && dim(t.proto, t.port) == Dim::Port
                && t.seen.outcome.is_none()
        };
        if dim(proto, port) == Dim::Port
            && let Some(j) = staged.get(..i).and_then(|s| s.iter().position(sibling))
        {
            staged.swap(i, j);
        }
    }

    /// Records a probe in the maps, made from the staged targets first
    /// when the scanner has none yet, within `left` bytes; false when even
    /// the maps do not fit.
    fn probe(
        &mut self,
        dst: Addr,
        proto: u8,
        port: u16,
        now: Timestamp,
        window: Micros,
        left: usize,
    ) -> bool {
        let before = self.bytes;
        if self.maps(now, window, left).is_none() {
            return false;
        }
        let left = left.saturating_sub(self.bytes - before);
        let t = Staged::new(dst, proto, port, now);
        if let Some(m) = self.maps.as_deref_mut() {
            self.bytes += m.record(&t, now, window, left);
        }
        true
    }

    /// The maps, made from the staged targets when the scanner has none
    /// yet, within `left` bytes (None when even the maps do not fit).
    fn maps(&mut self, now: Timestamp, window: Micros, left: usize) -> Option<&mut Maps> {
        if self.maps.is_none() {
            let mut left = left.checked_sub(std::mem::size_of::<Maps>())?;
            let mut m = Box::new(Maps::new());
            self.bytes += std::mem::size_of::<Maps>();
            let (staged, n) = (self.staged, usize::from(self.n_staged));
            for t in staged.iter().take(n) {
                let grown = m.record(t, now, window, left);
                left = left.saturating_sub(grown);
                self.bytes += grown;
            }
            self.n_staged = 0;
            self.maps = Some(m);
        }
        self.maps.as_deref_mut()
    }

    /// Drops targets with no probe left in the window, so that a scanner
    /// moving on to new targets keeps being tracked.
    fn gc(&mut self, now: Timestamp, window: Micros) {
        if now < self.next_gc {
            return;
        }
        self.next_gc = now.saturating_add(Micros(window.0 / 16));
        if let Some(m) = &mut self.maps {
            m.gc(now, window);
            self.bytes = m.bytes();
        }
    }
}

pub struct ScanDetector {
    map: BoundedMap<Addr, ScanState>,
    /// Sources that had an entry lately, for [`RECALL_PER_ENTRY`] times as
    /// many sources as the map holds.
    recall: Recall,
    cfg: PortScanConfig,
    ignore: ServiceSet,
    /// Targets a scanner stages: fewer than any threshold needs, so that a
    /// staged scanner never has an incident to evaluate.
    stage_cap: usize,
}

fn top_ports(ports: &HashMap<u16, Seen>) -> Vec<u16> {
    let mut v: Vec<(u16, u32)> = ports.iter().map(|(p, s)| (*p, s.probes)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter().take(10).map(|(p, _)| p).collect()
}

/// A scan alert from `src` to `target`, with its direction and technique.
fn scan_alert(kind: Kind, dir: Direction, src: Addr, target: Endpoint, technique: &str) -> Alert {
    Alert::new(kind, severity(dir), Endpoint::host(src), target)
        .with("direction", json!([dir.as_str()]))
        .with("technique", json!([technique]))
}

/// Distinct targets below every threshold of `cfg`, at most [`STAGED`].
fn stage_cap(cfg: &PortScanConfig) -> usize {
    [
        cfg.min_ports,
        cfg.min_hosts,
        cfg.min_protocols,
        cfg.min_refused,
    ]
    .into_iter()
    .map(|n| n.saturating_sub(1) as usize)
    .fold(STAGED, usize::min)
}

fn severity(d: Direction) -> u8 {
    match d {
        Direction::Outbound => 1,
        Direction::Internal | Direction::Inbound => 2,
        Direction::External => 3,
    }
}

/// The protocols a target set's probes used, as [`proto_bit`]s.
const PROTOS: [u8; 4] = [PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6];

fn proto_bit(p: u8) -> u8 {
    let i = PROTOS.iter().position(|x| *x == p).unwrap_or(0);
    1 << i
}

fn proto_names(bits: u8) -> Vec<&'static str> {
    PROTOS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, p)| proto_name(*p))
        .collect()
}

fn proto_name(p: u8) -> &'static str {
    match p {
        PROTO_UDP => "udp",
        PROTO_ICMP => "icmp",
        PROTO_ICMPV6 => "ipv6-icmp",
        _ => "tcp",
    }
}

/// The echo request's type of an ICMP protocol (8, ICMPv6 128): an echo
/// probe is recorded as a probe of that "port" of its host, so that a ping
/// sweep is a sweep like a port's, apart from the host's protocol probe.
pub fn echo_type(proto: u8) -> Option<u16> {
    match proto {
        PROTO_ICMP => Some(8),
        PROTO_ICMPV6 => Some(128),
        _ => None,
    }
}

/// What a probe's target is, and so which target sets it counts in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dim {
    /// A port of a host (TCP, UDP): the host's ports and the port's hosts.
    Port,
    /// A host's echo (ICMP, ICMPv6): the hosts pinged.
    Echo,
    /// An IP protocol of a host: the host's protocols.
    Protocol,
}

fn dim(proto: u8, port: u16) -> Dim {
    match proto {
        PROTO_TCP | PROTO_UDP => Dim::Port,
        _ if port != 0 && echo_type(proto) == Some(port) => Dim::Echo,
        _ => Dim::Protocol,
    }
}

/// Sources the tracker's [`Recall`] remembers a generation, per entry of
/// the map: a source that comes back within eight turnovers of a full
/// tracker (up to sixteen, by when it was noted) is recalled. The filter
/// takes 32 bytes per entry from the tracker's memory (an entry is about
/// 320).
const RECALL_PER_ENTRY: usize = 8;

impl ScanDetector {
    pub fn new(cfg: &crate::config::DetectConfig) -> Self {
        let per_entry =
            BoundedMap::<Addr, ScanState>::base_bytes() + Recall::bytes_for(RECALL_PER_ENTRY);
        let cap = cfg.max_tracked.min(cfg.tracker_bytes / per_entry).max(1);
        let recall = Recall::new(cap.saturating_mul(RECALL_PER_ENTRY));
        ScanDetector {
            map: BoundedMap::new(
                cap,
                cfg.tracker_bytes.saturating_sub(recall.bytes()),
                cfg.port_scan
                    .window
                    .0
                    .saturating_add(cfg.port_scan.window.0),
            ),
            recall,
            cfg: cfg.port_scan.clone(),
            ignore: ServiceSet::default(),
            stage_cap: stage_cap(&cfg.port_scan),
        }
    }

    /// Takes the parsed `detect.port_scan.ignore` list from the config.
    pub fn with_ignored(mut self, config: &Config) -> Self {
        self.ignore = config.port_scan_ignore.clone();
        self
    }

    pub fn sweep(&self, now: Timestamp) {
        self.map.sweep(now);
    }

    /// The map's usage, its bytes with the recall filter's.
    pub fn usage(&self) -> Usage {
        let u = self.map.usage();
        Usage {
            bytes: u.bytes + self.recall.bytes() as u64,
            ..u
        }
    }

    /// A new probe from `src` to `dst:dport` (TCP, UDP), or to the echo of
    /// `dst` (`proto` ICMP or ICMPv6, `dport` its [`echo_type`]).
    #[allow(clippy::too_many_arguments)]
    pub fn on_probe(
        &self,
        policy: &Policy,
        src: Addr,
        dst: Addr,
        proto: u8,
        dport: u16,
        tech: Technique,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) {
        if !self.counts(proto, dport) {
            return;
        }
        let window = self.cfg.window.0;
        self.scanner(&src, now, |s, left| {
            if now.since(s.techniques_since) >= window {
                s.techniques_since = now;
                for n in &mut s.techniques {
                    *n /= 2;
                }
                s.answered /= 2;
            }
            if let Some(n) = s.techniques.get_mut(tech as usize) {
                *n += 1;
            }
            if s.stage(dst, proto, dport, now, window, self.stage_cap) {
                return;
            }
            // Stale targets go when the maps are full or memory is short.
            if s.maps
                .as_ref()
                .is_some_and(|m| m.hosts.len() >= MAX_TARGETS || m.ports.len() >= MAX_TARGETS)
                || left < 4096
            {
                s.gc(now, window);
            }
            if s.probe(dst, proto, dport, now, window, left) {
                self.evaluate(policy, s, src, dst, proto, dport, now, out);
            }
        });
    }

    /// Whether `src` sent at least `n` probes recently that were not
    /// answered (its technique counts less its answered probes, halved
    /// every window): refused, or no answer yet. A busy client's answered
    /// connections are no probing.
    pub fn is_probing(&self, src: &Addr, n: u32) -> bool {
        self.map
            .with_existing(src, |s| {
                s.techniques.iter().sum::<u32>().saturating_sub(s.answered) >= n
            })
            .unwrap_or(false)
    }

    /// Whether probes of `proto`/`port` and their outcomes count here: a
    /// port not in `ignore`, or an echo (IP protocol probes go through
    /// [`ScanDetector::on_protocol`]).
    fn counts(&self, proto: u8, port: u16) -> bool {
        self.cfg.enabled
            && match dim(proto, port) {
                Dim::Port => !self.ignore.contains(proto, port),
                Dim::Echo => true,
                Dim::Protocol => false,
            }
    }

    /// The target answered or refused a probe of a port or of its echo;
    /// `connect` when the scanner completed the handshake. A refusal can
    /// complete an incident (a UDP scan's ICMP unreachables arrive after
    /// its probes).
    #[allow(clippy::too_many_arguments)]
    pub fn on_outcome(
        &self,
        policy: &Policy,
        src: Addr,
        dst: Addr,
        proto: u8,
        dport: u16,
        outcome: Outcome,
        connect: bool,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) {
        if !self.counts(proto, dport) {
            return;
        }
        self.map.with_existing(&src, |s| {
            if connect {
                // The SYN-ACK before it already counted as the answer.
                return;
            }
            s.outcome(&dst, proto, dport, outcome);
            if outcome == Outcome::Answered {
                s.answered = s.answered.saturating_add(1);
            }
            if outcome == Outcome::Rejected {
                self.evaluate(policy, s, src, dst, proto, dport, now, out);
            }
        });
    }

    /// A probe of IP protocol `proto` (`outcome` `None`: the first packet
    /// of a new flow of a protocol other than TCP and UDP, whose probes
    /// have ports, from `src` to `dst`), or its outcome: `dst` answered (a
    /// reply in the probe's protocol) or refused it (an ICMP protocol
    /// unreachable, an ICMPv6 unrecognized next header). Many protocols of
    /// one host make an IP protocol scan (nmap -sO). A refusal counts as a
    /// probe too when the probe itself was not seen: a sensor that sees
    /// only the replies (one direction of an asymmetric route) still names
    /// the scanner.
    #[allow(clippy::too_many_arguments)]
    pub fn on_protocol(
        &self,
        policy: &Policy,
        src: Addr,
        dst: Addr,
        proto: u8,
        outcome: Option<Outcome>,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) {
        if !self.cfg.enabled || matches!(proto, PROTO_TCP | PROTO_UDP) {
            return;
        }
        if outcome == Some(Outcome::Answered) {
            self.map.with_existing(&src, |s| {
                s.outcome(&dst, proto, 0, Outcome::Answered);
            });
            return;
        }
        let window = self.cfg.window.0;
        self.scanner(&src, now, |s, left| {
            // A refusal of a probe already counted is no new probe.
            let counted = s.counted(&dst, proto, 0);
            if (outcome.is_none() || !counted)
                && !s.stage(dst, proto, 0, now, window, self.stage_cap)
            {
                if s.maps
                    .as_ref()
                    .is_some_and(|m| m.protocols.len() >= MAX_TARGETS)
                    || left < 4096
                {
                    s.gc(now, window);
                }
                s.probe(dst, proto, 0, now, window, left);
            }
            if let Some(o) = outcome {
                s.outcome(&dst, proto, 0, o);
            }
            self.evaluate_protocols(policy, s, src, dst, now, out);
        });
    }

    /// Runs `f` on the state of scanner `src` (created if memory allows),
    /// with the bytes the tracker may still grow by.
    fn scanner(&self, src: &Addr, now: Timestamp, f: impl FnOnce(&mut ScanState, usize)) {
        self.map.update_room(
            src,
            now,
            || ScanState::new(now, self.recall.note(src)),
            |s, left| {
                s.last_seen = now;
                f(s, left);
            },
        );
    }

    fn evaluate_protocols(
        &self,
        policy: &Policy,
        s: &mut ScanState,
        src: Addr,
        dst: Addr,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) {
        let Some(t) = s.maps.as_mut().and_then(|m| m.protocols.get_mut(&dst)) else {
            return;
        };
        if !self.to_report(t, self.cfg.min_protocols, now) {
            return;
        }
        let dir = policy.direction(&src, &dst);
        let mut protocols: Vec<u8> = t.seen.keys().copied().collect();
        protocols.sort_unstable();
        protocols.truncate(20);
        let alert = scan_alert(
            Kind::ProtocolScan,
            dir,
            src,
            Endpoint::host(dst),
            "ip_protocol",
        )
        .with("distinct_protocols", t.distinct())
        .with("unanswered", t.unanswered())
        .with("protocols", json!(protocols));
        out.push(t.evidence(alert, now));
    }

    /// Whether a target set is a scan: enough distinct targets (or enough
    /// of them refused), and not mostly answered.
    fn qualifies<K: Eq + std::hash::Hash + Copy>(&self, t: &Targets<K>, min: u32) -> bool {
        let distinct = t.distinct();
        f64::from(t.answered) <= self.cfg.max_success_ratio * distinct as f64
            && (distinct >= u64::from(min) || t.rejected >= self.cfg.min_refused)
    }

    /// Whether a target set is a scan to report now (at most once per
    /// window, with more probes than last time); marks it reported.
    fn to_report<K: Eq + std::hash::Hash + Copy>(
        &self,
        t: &mut Targets<K>,
        min: u32,
        now: Timestamp,
    ) -> bool {
        let window = self.cfg.window.0;
        t.prune(now, window);
        let mut report = self.qualifies(t, min) && t.reported.due(now, window, t.total);
        if report {
            // The periodic prune leaves targets up to a 16th of the window
            // past it: before a report, exactly the window counts.
            t.next_prune = Timestamp(0);
            t.prune(now, window);
            report = self.qualifies(t, min);
        }
        if report {
            t.reported.mark(now, t.total);
        }
        report
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &self,
        policy: &Policy,
        s: &mut ScanState,
        src: Addr,
        dst: Addr,
        proto: u8,
        dport: u16,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) {
        let d = dim(proto, dport);
        let technique = s.technique(d);
        let Some(m) = s.maps.as_deref_mut() else {
            // Staged: fewer targets than any incident needs.
            return;
        };
        if d == Dim::Port
            && let Some(h) = m.hosts.get_mut(&dst)
            && self.to_report(h, self.cfg.min_ports, now)
        {
            let dir = policy.direction(&src, &dst);
            let alert = scan_alert(Kind::PortScan, dir, src, Endpoint::host(dst), technique)
                .with("protocol", json!(proto_names(h.protos)))
                .with("distinct_ports", h.distinct())
                .with("unanswered", h.unanswered())
                .with("top_ports", json!(top_ports(&h.seen)));
            out.push(h.evidence(alert, now));
        }
        if let Some(p) = m.ports.get_mut(&(proto, dport))
            && self.to_report(p, self.cfg.min_hosts, now)
        {
            let dir = policy.direction(&src, &dst);
            let mut sample: Vec<String> = p.seen.keys().map(|a| a.to_string()).collect();
            sample.sort();
            sample.truncate(10);
            // A ping sweep's target is no port.
            let target = Endpoint {
                ip: None,
                port: (d == Dim::Port).then_some(dport),
            };
            let alert = scan_alert(Kind::PortSweep, dir, src, target, technique)
                .with("protocol", json!([proto_name(proto)]))
                .with("distinct_hosts", p.distinct())
                .with("hosts_sample", json!(sample));
            out.push(p.evidence(alert, now));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::{Config, DetectConfig, PortScanConfig};
    use crate::decode::a;
    use crate::decode::{PROTO_ICMP, PROTO_ICMPV6};

    fn run(
        d: &ScanDetector,
        src: &str,
        dst: &str,
        ports: impl Iterator<Item = u16>,
        t0: u64,
        step_us: u64,
    ) -> Vec<Alert> {
        let p = Policy::default();
        let mut out = Vec::new();
        for (i, port) in ports.enumerate() {
            d.on_probe(
                &p,
                a(src),
                a(dst),
                PROTO_TCP,
                port,
                Technique::Syn,
                Timestamp(t0 + i as u64 * step_us),
                &mut out,
            );
        }
        out
    }

    /// A scan of 60,000 ports over 400 s (the window is 300 s) with a
    /// tracker of 64 KiB: the ports beyond what fits are counted, not kept;
    /// the scan is reported, re-reported a window later with the count of
    /// its last window, and the tracker stays within its bytes throughout.
    #[test]
    fn a_huge_scan_stays_within_the_tracker_bytes() {
        let cfg = DetectConfig {
            tracker_bytes: 64 << 10,
            ..DetectConfig::default()
        };
        let d = ScanDetector::new(&cfg);
        let (src, dst, p) = (a("203.0.113.5"), a("10.1.1.1"), Policy::default());
        let mut out = Vec::new();
        for port in 1..=60_000u16 {
            let now = Timestamp(u64::from(port) * 6_666);
            d.on_probe(&p, src, dst, PROTO_TCP, port, Technique::Syn, now, &mut out);
            assert!(d.map.bytes() <= 64 << 10, "{} at {port}", d.map.bytes());
        }
        assert_eq!(out.len(), 2, "reported, then once more a window later");
        let again = out[1].evidence["distinct_ports"].as_u64().unwrap();
        assert!(again >= 40_000, "{:?}", out[1].evidence);
    }

    #[test]
    fn a_scan_fires_once_at_the_threshold() {
        let d = ScanDetector::new(&DetectConfig::default());
        let out = run(&d, "10.0.0.5", "198.51.100.9", 1..=1000, 0, 1000);
        assert_eq!(out.len(), 1);
        let al = &out[0];
        assert_eq!(al.kind(), Some(Kind::PortScan));
        assert_eq!(al.severity, 1, "outbound");
        assert_eq!(al.evidence["distinct_ports"], 20);
        assert_eq!(al.evidence["direction"], json!(["outbound"]));
    }

    /// A host's ports count together whatever their protocol; the alert
    /// names every protocol probed, not the last probe's.
    #[test]
    fn a_port_scan_names_every_protocol_it_used() {
        let d = ScanDetector::new(&DetectConfig::default());
        let p = Policy::default();
        let mut out = run(&d, "10.0.0.5", "198.51.100.9", 1..=19, 0, 1000);
        d.on_probe(
            &p,
            a("10.0.0.5"),
            a("198.51.100.9"),
            PROTO_UDP,
            161,
            Technique::Udp,
            Timestamp(30_000),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence["distinct_ports"], 20);
        assert_eq!(out[0].evidence["protocol"], json!(["tcp", "udp"]));
        assert_eq!(out[0].evidence["technique"], json!(["syn"]));
    }

    /// The protocols named are those of the targets in the window: a UDP
    /// scan, then a TCP scan of other ports once the UDP ones are older
    /// than the window, reports `tcp` alone.
    #[test]
    fn the_protocols_named_are_those_of_the_window() {
        let d = ScanDetector::new(&DetectConfig::default());
        let p = Policy::default();
        let mut out = Vec::new();
        for port in 1..=20u16 {
            d.on_probe(
                &p,
                a("10.0.0.5"),
                a("198.51.100.9"),
                PROTO_UDP,
                port,
                Technique::Udp,
                Timestamp(u64::from(port) * 1000),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence["protocol"], json!(["udp"]));
        let later = 400_000_000;
        let out = run(&d, "10.0.0.5", "198.51.100.9", 1001..=1020, later, 1000);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].evidence["protocol"], json!(["tcp"]));
        assert_eq!(
            out[0].evidence["distinct_ports"], 20,
            "the UDP ports left the window"
        );
    }

    /// 20 ports 16 s apart span 304 s: never 20 within the 300 s window,
    /// whenever the last prune was.
    #[test]
    fn ports_just_older_than_the_window_do_not_count() {
        let d = ScanDetector::new(&DetectConfig::default());
        let out = run(&d, "203.0.113.7", "10.0.0.9", 1..=20, 0, 16_000_000);
        assert!(out.is_empty(), "{:?}", out.first().map(|a| &a.evidence));
        let out = run(&d, "203.0.113.8", "10.0.0.9", 1..=20, 0, 15_000_000);
        assert_eq!(out.len(), 1, "285 s: within the window");
    }

    #[test]
    fn three_syns_to_port_80_stay_quiet() {
        let d = ScanDetector::new(&DetectConfig::default());
        assert!(
            run(
                &d,
                "203.0.113.1",
                "10.0.0.1",
                [80, 80, 80].into_iter(),
                0,
                1000
            )
            .is_empty()
        );
        assert!(
            run(&d, "203.0.113.2", "10.0.0.1", 1..=19, 0, 1000).is_empty(),
            "19 ports is below the threshold"
        );
    }

    #[test]
    fn answered_probes_are_a_client_not_a_scan() {
        let d = ScanDetector::new(&DetectConfig::default());
        let p = Policy::default();
        let mut out = Vec::new();
        for port in 1000..1100u16 {
            d.on_probe(
                &p,
                a("10.0.0.5"),
                a("10.0.0.6"),
                PROTO_TCP,
                port,
                Technique::Syn,
                Timestamp(u64::from(port)),
                &mut out,
            );
            d.on_outcome(
                &p,
                a("10.0.0.5"),
                a("10.0.0.6"),
                PROTO_TCP,
                port,
                Outcome::Answered,
                false,
                Timestamp(u64::from(port)),
                &mut out,
            );
        }
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn window_edges() {
        let cfg = DetectConfig::default();
        let d = ScanDetector::new(&cfg);
        let w = cfg.port_scan.window.0.0;
        // 10 ports, then 10 more just after the first ten left the window:
        // never 20 within one window, no incident.
        let mut out = run(&d, "203.0.113.7", "10.0.0.9", 1..=10, 0, 1);
        out.extend(run(&d, "203.0.113.7", "10.0.0.9", 11..=20, w + 10, 1));
        assert!(out.is_empty());
        // 20 ports spread evenly over just under one window: one.
        let out = run(&d, "203.0.113.8", "10.0.0.9", 1..=20, 0, w / 20 - 1);
        assert_eq!(out.len(), 1);
        // The scan goes on: not reported again until a full window after
        // the first report...
        let t1 = 19 * (w / 20 - 1);
        let out = run(&d, "203.0.113.8", "10.0.0.9", 21..=60, t1 + 10, 1);
        assert!(out.is_empty());
        // ...then once, with the counts of the sliding window.
        let out = run(&d, "203.0.113.8", "10.0.0.9", 61..=100, t1 + w + 10, 1);
        assert_eq!(out.len(), 1);
        // Reported on the first probe due: ports 22-60 (sent less than a
        // window ago) and 61.
        assert_eq!(out[0].evidence["distinct_ports"], 40);
    }

    /// A slow scan that starts late in one tumbling window and ends early
    /// in the next is still one scan: 12 ports before the boundary, 12
    /// after, one probe every 10 s.
    #[test]
    fn a_slow_scan_across_a_window_boundary() {
        let cfg = DetectConfig::default();
        let d = ScanDetector::new(&cfg);
        let w = cfg.port_scan.window.0.0;
        let p = Policy::default();
        let mut out = Vec::new();
        // An earlier connection starts the scanner's state long before.
        d.on_probe(
            &p,
            a("192.0.2.44"),
            a("10.1.1.1"),
            PROTO_TCP,
            443,
            Technique::Syn,
            Timestamp(1),
            &mut out,
        );
        let start = w - 120_000_000;
        let out = run(&d, "192.0.2.44", "10.1.1.2", 1000..1024, start, 10_000_000);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].evidence["distinct_ports"], 20);
        assert_eq!(out[0].evidence["technique"], json!(["syn"]));
    }

    #[test]
    fn a_few_refused_udp_ports_are_a_scan_and_traceroute_is_not() {
        let c = Config::default();
        let d = ScanDetector::new(&c.detect).with_ignored(&c);
        let p = Policy::default();
        let mut out = Vec::new();
        let udp = |src: &str, dst: &str, port: u16, t: u64, out: &mut Vec<Alert>| {
            d.on_probe(
                &p,
                a(src),
                a(dst),
                PROTO_UDP,
                port,
                Technique::Udp,
                Timestamp(t),
                out,
            );
        };
        let refuse = |src: &str, dst: &str, port: u16, t: u64, out: &mut Vec<Alert>| {
            d.on_outcome(
                &p,
                a(src),
                a(dst),
                PROTO_UDP,
                port,
                Outcome::Rejected,
                false,
                Timestamp(t),
                out,
            );
        };
        // nmap -sU on 12 ports: all probes first, the unreachables after.
        let ports = [53, 67, 69, 111, 123, 137, 138, 161, 162, 500, 514, 520];
        for (i, port) in ports.iter().enumerate() {
            udp("192.0.2.18", "fd00::53", *port, i as u64, &mut out);
        }
        assert!(out.is_empty(), "12 ports is below min_ports");
        for (i, port) in ports.iter().skip(1).enumerate() {
            refuse("192.0.2.18", "fd00::53", *port, 100 + i as u64, &mut out);
        }
        assert_eq!(out.len(), 1, "the 10th refusal completes it");
        assert_eq!(out[0].kind(), Some(Kind::PortScan));
        assert_eq!(out[0].evidence["rejected"], 10);
        assert_eq!(out[0].evidence["protocol"], json!(["udp"]));
        // Nine refused ports stay quiet.
        out.clear();
        for port in 1..=9u16 {
            udp("192.0.2.19", "10.0.0.53", port, u64::from(port), &mut out);
            refuse("192.0.2.19", "10.0.0.53", port, u64::from(port), &mut out);
        }
        assert!(out.is_empty());
        // A traceroute: 30 probes to 33434-33463, all refused.
        for port in 33434..33464u16 {
            udp("192.0.2.20", "10.0.0.10", port, u64::from(port), &mut out);
            refuse("192.0.2.20", "10.0.0.10", port, u64::from(port), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn raw_syns_are_a_syn_scan_and_stack_syns_a_connect_scan() {
        assert_eq!(Technique::of_tcp(F::SYN, 1024), Some(Technique::Syn));
        assert_eq!(Technique::of_tcp(F::SYN, 4096), Some(Technique::Syn));
        assert_eq!(Technique::of_tcp(F::SYN, 64240), Some(Technique::Connect));
        assert_eq!(
            Technique::of_tcp(F::SYN | F::ECE | F::CWR, 65535),
            Some(Technique::Connect)
        );
        assert_eq!(
            Technique::of_tcp(F::FIN | F::ACK, 1024),
            Some(Technique::Maimon)
        );
        assert_eq!(Technique::of_tcp(F::SYN | F::ACK, 1024), None);
        let d = ScanDetector::new(&DetectConfig::default());
        let p = Policy::default();
        let mut out = Vec::new();
        let (src, dst) = (a("2001:db8::9"), a("fd00::9"));
        // -sS -sV: 19 raw SYNs, then version probes through connect() to
        // ports already probed.
        for port in 1..=19u16 {
            d.on_probe(
                &p,
                src,
                dst,
                PROTO_TCP,
                port,
                Technique::Syn,
                Timestamp(u64::from(port)),
                &mut out,
            );
        }
        for port in [22, 21] {
            d.on_probe(
                &p,
                src,
                dst,
                PROTO_TCP,
                port,
                Technique::Connect,
                Timestamp(30),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence["technique"], json!(["syn"]));
        // -sT: every probe from the stack.
        out.clear();
        for port in 1..=20u16 {
            d.on_probe(
                &p,
                a("2001:db8::10"),
                dst,
                PROTO_TCP,
                port,
                Technique::Connect,
                Timestamp(100 + u64::from(port)),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence["technique"], json!(["connect"]));
    }

    #[test]
    fn sweeps_and_ipv6() {
        let d = ScanDetector::new(&DetectConfig::default());
        let p = Policy::default();
        let mut out = Vec::new();
        for i in 0..30u16 {
            let dst = a(&format!("fd00::{:x}", i + 1));
            d.on_probe(
                &p,
                a("2001:db8::66"),
                dst,
                PROTO_TCP,
                22,
                Technique::Syn,
                Timestamp(u64::from(i)),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind(), Some(Kind::PortSweep));
        assert_eq!(
            out[0].target,
            Endpoint {
                ip: None,
                port: Some(22)
            }
        );
        assert_eq!(out[0].evidence["direction"], json!(["inbound"]));
    }

    /// A UDP probe of `dst:port` at `t`, refused (ICMP port unreachable)
    /// when `refused`.
    fn udp_probe(
        d: &ScanDetector,
        src: Addr,
        dst: Addr,
        port: u16,
        t: Timestamp,
        refused: bool,
        out: &mut Vec<Alert>,
    ) {
        let p = Policy::default();
        d.on_probe(&p, src, dst, PROTO_UDP, port, Technique::Udp, t, out);
        if refused {
            let o = Outcome::Rejected;
            d.on_outcome(&p, src, dst, PROTO_UDP, port, o, false, t, out);
        }
    }

    /// Ten UDP ports of one host, each probed twice and refused: the first
    /// four are staged, and their probes, refusals and times carry over to
    /// the maps the fifth one makes.
    #[test]
    fn staged_targets_keep_their_history_in_the_maps() {
        let d = ScanDetector::new(&DetectConfig::default());
        let (src, dst) = (a("198.51.100.7"), a("10.0.0.53"));
        let mut out = Vec::new();
        for port in 1..=10u16 {
            let t = Timestamp(1_000_000 * u64::from(port));
            udp_probe(&d, src, dst, port, t, false, &mut out);
            udp_probe(&d, src, dst, port, t, true, &mut out);
        }
        assert_eq!(out.len(), 1, "{out:?}");
        let e = &out[0].evidence;
        assert_eq!(e["rejected"], 10);
        assert_eq!(e["probes"], 20);
        assert_eq!(e["distinct_ports"], 10);
        assert_eq!(e["window_start"], json!(ts(Timestamp(1_000_000))));
    }

    /// Thresholds at or below what a scanner stages: nothing is staged
    /// that an incident needs.
    #[test]
    fn low_thresholds_are_met_by_few_targets() {
        let cfg = DetectConfig {
            port_scan: PortScanConfig {
                min_ports: 3,
                min_refused: 2,
                ..PortScanConfig::default()
            },
            ..DetectConfig::default()
        };
        let d = ScanDetector::new(&cfg);
        assert_eq!(d.stage_cap, 1);
        let out = run(&d, "198.51.100.8", "10.0.0.9", 1..=3, 0, 1);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].evidence["distinct_ports"], 3);
        let (src, dst) = (a("198.51.100.9"), a("10.0.0.9"));
        let mut out = Vec::new();
        for port in [7u16, 9] {
            udp_probe(
                &d,
                src,
                dst,
                port,
                Timestamp(u64::from(port)),
                true,
                &mut out,
            );
        }
        assert_eq!(out.len(), 1, "two refused ports: {out:?}");
        assert_eq!(out[0].evidence["rejected"], 2);
    }

    /// A busy server's clients (60,000 sources in a minute, one connection
    /// each) in the default memory budget: every one is tracked, and a
    /// scanner arriving after them is too, and reported.
    #[test]
    fn busy_clients_leave_room_for_a_scanner() {
        let cfg = DetectConfig {
            tracker_bytes: crate::memory::Budget::split(crate::memory::DEFAULT_CAP).tracker_bytes(),
            ..DetectConfig::default()
        };
        let d = ScanDetector::new(&cfg);
        let p = Policy::default();
        let server = a("10.0.0.80");
        let mut out = Vec::new();
        for i in 0..60_000u32 {
            let [_, _, x, y] = i.to_be_bytes();
            let client = a(&format!("198.18.{x}.{y}"));
            let t = Timestamp(u64::from(i) * 1_000);
            d.on_probe(
                &p,
                client,
                server,
                PROTO_TCP,
                443,
                Technique::Connect,
                t,
                &mut out,
            );
            d.on_outcome(
                &p,
                client,
                server,
                PROTO_TCP,
                443,
                Outcome::Answered,
                false,
                t,
                &mut out,
            );
        }
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(d.usage().entries, 60_000);
        assert_eq!(d.usage().shed, 0);
        let out = run(&d, "203.0.113.9", "10.0.0.5", 1..=25, 61_000_000, 1_000);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].kind(), Some(Kind::PortScan));
        assert_eq!(d.usage().shed, 0);
    }

    /// A spoofed-source flood (200,000 sources, one SYN each, 100,000 a
    /// second, from 1 s on) through a tracker of 1 MiB (about 3,000
    /// sources, so the tracker turns over every 30 ms), and a scanner of
    /// another host: the ports in `before` spread over the second before
    /// the flood, then those `during(i)` gives at its `i`th packet. Returns the
    /// alerts and the tracker's usage.
    fn scan_through_flood(
        before: std::ops::Range<u16>,
        during: impl Fn(u32) -> std::ops::Range<u16>,
    ) -> (Vec<Alert>, Usage) {
        let cfg = DetectConfig {
            tracker_bytes: 1 << 20,
            ..DetectConfig::default()
        };
        let d = ScanDetector::new(&cfg);
        let p = Policy::default();
        let (victim, scanner, target) = (a("10.0.0.80"), a("203.0.113.66"), a("10.0.0.5"));
        let mut out = Vec::new();
        let probe = |src, dst, port, t, out: &mut Vec<Alert>| {
            d.on_probe(&p, src, dst, PROTO_TCP, port, Technique::Syn, t, out);
        };
        let n = before.len() as u64;
        for (k, port) in before.enumerate() {
            let t = Timestamp(1_000_000 - (n - k as u64) * 1_000_000 / n.max(1));
            probe(scanner, target, port, t, &mut out);
        }
        for i in 0..200_000u32 {
            let t = Timestamp(1_000_000 + u64::from(i) * 10);
            let spoofed = Addr::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(
                0x0b00_0000 + i,
            )));
            probe(spoofed, victim, 80, t, &mut out);
            for port in during(i) {
                probe(scanner, target, port, t, &mut out);
            }
            assert!(d.map.bytes() <= 1 << 20);
        }
        for a in &out {
            assert_eq!(a.kind(), Some(Kind::PortScan));
            assert_eq!(a.source, Endpoint::host(scanner));
        }
        (out, d.usage())
    }

    /// A scanner that starts with ten ports at once during the flood, then
    /// goes on at one every 50 ms: the flood's sources make room for each
    /// other and for the scanner, which once it has more targets than it
    /// stages is kept however slow, and reported.
    #[test]
    fn a_scanner_is_seen_through_a_spoofed_flood() {
        let (out, u) = scan_through_flood(0..0, |i| match i {
            500 => 1..11,
            i if i % 5000 == 500 => {
                let port = 10 + (i / 5000) as u16;
                port..port + 1
            }
            _ => 0..0,
        });
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(u.evicted > 150_000, "{u:?}");
    }

    /// A slow scanner, one port every 50 ms, that has probed two or three
    /// ports when the flood starts: its few staged targets outrank the
    /// flood's sources of one target each, so it is kept and reported.
    #[test]
    fn a_slow_scanner_with_a_few_targets_outlasts_a_spoofed_flood() {
        for before in [1..3, 1..4] {
            let first = before.end;
            let (out, u) = scan_through_flood(before, |i| {
                if i % 5000 == 0 {
                    let port = first + (i / 5000) as u16;
                    port..port + 1
                } else {
                    0..0
                }
            });
            assert_eq!(out.len(), 1, "{out:?}");
            assert_eq!(out[0].evidence["window_start"], json!(ts(Timestamp(0))));
            assert!(u.evicted > 150_000, "{u:?}");
        }
    }

    /// A slow scanner, one port every 50 ms, whose first probe comes
    /// during the flood: each of its probes is older than the tracker's
    /// turnover when the next one comes, so it would look like one more
    /// source of one target every time; the tracker recalls its address
    /// and keeps it over the flood's sources, and it is reported.
    #[test]
    fn a_slow_scanner_starting_during_a_spoofed_flood_is_recalled_and_reported() {
        let (out, u) = scan_through_flood(0..0, |i| {
            if i % 5000 == 2500 {
                let port = 1 + (i / 5000) as u16;
                port..port + 1
            } else {
                0..0
            }
        });
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(u.evicted > 150_000, "{u:?}");
    }

    /// Echo requests to 30 hosts: unanswered (dark addresses, nmap -sn
    /// or a worm looking for hosts), a sweep of their echo; answered
    /// (monitoring pinging live hosts), nothing. ICMPv6 too.
    #[test]
    fn a_ping_sweep_of_dark_addresses_is_a_sweep() {
        let d = ScanDetector::new(&DetectConfig::default());
        let p = Policy::default();
        let mut out = Vec::new();
        let ping =
            |src: &str, dst: String, proto: u8, answered: bool, i: u64, out: &mut Vec<Alert>| {
                let (src, dst, t) = (a(src), a(&dst), Timestamp(i * 1_000));
                let port = echo_type(proto).unwrap();
                d.on_probe(&p, src, dst, proto, port, Technique::Echo, t, out);
                if answered {
                    d.on_outcome(&p, src, dst, proto, port, Outcome::Answered, false, t, out);
                }
            };
        for i in 1..=30u64 {
            ping(
                "10.0.0.7",
                format!("10.0.1.{i}"),
                PROTO_ICMP,
                false,
                i,
                &mut out,
            );
        }
        assert_eq!(out.len(), 1, "{out:?}");
        let al = &out[0];
        assert_eq!(al.kind(), Some(Kind::PortSweep));
        assert_eq!(al.source, Endpoint::host(a("10.0.0.7")));
        assert_eq!(
            al.target,
            Endpoint {
                ip: None,
                port: None
            }
        );
        assert_eq!(al.evidence["protocol"], json!(["icmp"]));
        assert_eq!(al.evidence["technique"], json!(["echo"]));
        assert_eq!(al.evidence["distinct_hosts"], 20);
        assert_eq!(al.evidence["answered"], 0);
        out.clear();
        for i in 1..=30u64 {
            ping(
                "10.0.0.8",
                format!("10.0.1.{i}"),
                PROTO_ICMP,
                true,
                i,
                &mut out,
            );
        }
        assert!(out.is_empty(), "live hosts answer: {out:?}");
        for i in 1..=30u64 {
            ping(
                "fd00::7",
                format!("fd00:1::{i:x}"),
                PROTO_ICMPV6,
                false,
                i,
                &mut out,
            );
        }
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].evidence["protocol"], json!(["ipv6-icmp"]));
    }

    /// A host's echo is no port of it: 19 TCP ports (not 8, the echo's
    /// "port") and pings of one host are no port scan; the 20th port is,
    /// and its technique is the ports' (syn), not the more numerous pings'.
    /// An `ignore` entry for any protocol's ports leaves pings counted.
    #[test]
    fn an_echo_is_no_port_of_its_host() {
        let c =
            Config::parse("[detect.port_scan]\nignore = [\"any/1-99\"]\n", "test.toml").unwrap();
        let d = ScanDetector::new(&c.detect).with_ignored(&c);
        let p = Policy::default();
        let (src, dst) = (a("192.0.2.9"), a("10.0.0.9"));
        let mut out = Vec::new();
        for port in 100..=118u16 {
            let t = Timestamp(u64::from(port));
            d.on_probe(&p, src, dst, PROTO_TCP, port, Technique::Syn, t, &mut out);
            for _ in 0..2 {
                d.on_probe(&p, src, dst, PROTO_ICMP, 8, Technique::Echo, t, &mut out);
            }
        }
        assert!(out.is_empty(), "{out:?}");
        let t = Timestamp(200);
        d.on_probe(&p, src, dst, PROTO_TCP, 119, Technique::Syn, t, &mut out);
        assert_eq!(out.len(), 1, "the 20th port: {out:?}");
        assert_eq!(out[0].evidence["distinct_ports"], 20);
        assert_eq!(out[0].evidence["technique"], json!(["syn"]));
        // Pings of 20 hosts from a source that sent more SYNs: an echo
        // sweep all the same, in spite of the ignored ports.
        out.clear();
        for i in 1..=20u8 {
            let (dst, t) = (Addr::from([10, 0, 2, i]), Timestamp(300 + u64::from(i)));
            for port in 1..=3u16 {
                d.on_probe(&p, src, dst, PROTO_TCP, port, Technique::Syn, t, &mut out);
            }
            d.on_probe(&p, src, dst, PROTO_ICMP, 8, Technique::Echo, t, &mut out);
        }
        let kinds: Vec<_> = out
            .iter()
            .map(|a| (a.kind(), a.evidence["technique"].clone()))
            .collect();
        assert_eq!(kinds, [(Some(Kind::PortSweep), json!(["echo"]))], "{out:?}");
    }

    /// Refusals of IP protocol probes come from `on_protocol` (protocol
    /// unreachable); an ICMP error quoting one that reaches `on_outcome`
    /// (a host unreachable) leaves the protocols as they were.
    #[test]
    fn a_protocol_probe_is_refused_only_by_a_protocol_unreachable() {
        let d = ScanDetector::new(&DetectConfig::default());
        let p = Policy::default();
        let (src, dst) = (a("192.0.2.10"), a("10.0.0.10"));
        let mut out = Vec::new();
        for proto in 40..48u8 {
            let t = Timestamp(u64::from(proto));
            let host_unreachable = |out: &mut Vec<Alert>| {
                let o = Outcome::Rejected;
                d.on_outcome(&p, src, dst, proto, 0, o, false, t, out);
            };
            host_unreachable(&mut out);
            d.on_protocol(&p, src, dst, proto, None, t, &mut out);
            host_unreachable(&mut out);
        }
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].evidence["rejected"], 0, "{out:?}");
    }

    /// Staging changes nothing an alert says: a long pseudo-random mix of
    /// probes (TCP and UDP ports, the same port over both, pings, IP
    /// protocols) and outcomes from a few sources, within one window, gives
    /// the same alerts with staging and without it.
    #[test]
    fn staging_changes_no_alert() {
        let staged = ScanDetector::new(&DetectConfig::default());
        let mut unstaged = ScanDetector::new(&DetectConfig::default());
        unstaged.stage_cap = 0;
        let p = Policy::default();
        let (mut a_out, mut b_out) = (Vec::new(), Vec::new());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for i in 0..30_000u64 {
            // Many sources, so that many spill their staged targets.
            let src = Addr::from([192, 0, 2, 1 + next(200) as u8]);
            let dst = Addr::from([10, 0, 0, 1 + next(3) as u8]);
            let t = Timestamp(i * 5_000);
            let (proto, port) = match next(8) {
                0 => (PROTO_ICMP, 8),
                1 => (47 + next(3) as u8, 0),
                2 | 3 => (PROTO_UDP, [53, 443][next(2) as usize]),
                4 | 5 => (PROTO_TCP, [53, 443][next(2) as usize]),
                _ => (PROTO_TCP, 20 + next(40) as u16),
            };
            let outcome =
                [None, Some(Outcome::Answered), Some(Outcome::Rejected)][next(3) as usize];
            for (d, out) in [(&staged, &mut a_out), (&unstaged, &mut b_out)] {
                if port == 0 {
                    d.on_protocol(&p, src, dst, proto, None, t, out);
                    if outcome.is_some() {
                        d.on_protocol(&p, src, dst, proto, outcome, t, out);
                    }
                    continue;
                }
                let tech = if proto == PROTO_ICMP {
                    Technique::Echo
                } else {
                    Technique::Syn
                };
                d.on_probe(&p, src, dst, proto, port, tech, t, out);
                if let Some(o) = outcome {
                    d.on_outcome(&p, src, dst, proto, port, o, false, t, out);
                }
            }
        }
        assert!(a_out.len() > 10, "{}", a_out.len());
        let view = |v: &[Alert]| -> Vec<String> { v.iter().map(|a| format!("{a:?}")).collect() };
        assert_eq!(view(&a_out), view(&b_out));
    }

    /// A port probed over TCP three times and over UDP once, both staged:
    /// the two are one port of the host, and the maps made when the scan
    /// goes on keep all four probes and the first one's time.
    #[test]
    fn tcp_and_udp_probes_of_one_staged_port_are_one_target() {
        let staged = ScanDetector::new(&DetectConfig::default());
        let mut unstaged = ScanDetector::new(&DetectConfig::default());
        unstaged.stage_cap = 0;
        let (s, t) = ("198.51.100.7", "10.0.0.53");
        let (src, dst) = (a(s), a(t));
        let mut outs = Vec::new();
        for d in [&staged, &unstaged] {
            let mut out = Vec::new();
            out.extend(run(d, s, t, [53; 3].into_iter(), 0, 1_000));
            udp_probe(d, src, dst, 53, Timestamp(2_000_000), false, &mut out);
            out.extend(run(d, s, t, 1..=19, 3_000_000, 1_000));
            outs.push(out);
        }
        for out in &outs {
            assert_eq!(out.len(), 1, "{out:?}");
            let e = &out[0].evidence;
            assert_eq!(e["distinct_ports"], 20);
            assert_eq!(e["probes"], 23);
            assert_eq!(e["window_start"], json!(ts(Timestamp(0))));
        }
    }

    /// TCP and UDP probes of one port, both staged, answered over one and
    /// refused over the other: the port's first outcome is the host's,
    /// whichever probe was staged first.
    #[test]
    fn the_first_outcome_of_a_staged_port_counts() {
        let p = Policy::default();
        let (s, t) = ("198.51.100.7", "10.0.0.53");
        let (src, dst) = (a(s), a(t));
        for (first, then) in [(PROTO_UDP, PROTO_TCP), (PROTO_TCP, PROTO_UDP)] {
            let mut outs = Vec::new();
            for cap in [STAGED, 0] {
                let mut d = ScanDetector::new(&DetectConfig::default());
                d.stage_cap = cap;
                let mut out = Vec::new();
                d.on_probe(
                    &p,
                    src,
                    dst,
                    PROTO_TCP,
                    53,
                    Technique::Syn,
                    Timestamp(1),
                    &mut out,
                );
                d.on_probe(
                    &p,
                    src,
                    dst,
                    PROTO_UDP,
                    53,
                    Technique::Udp,
                    Timestamp(2),
                    &mut out,
                );
                for (proto, o, at) in [(first, Outcome::Rejected, 3), (then, Outcome::Answered, 4)]
                {
                    d.on_outcome(&p, src, dst, proto, 53, o, false, Timestamp(at), &mut out);
                }
                out.extend(run(&d, s, t, 1..=19, 1_000, 1_000));
                assert_eq!(out.len(), 1, "{out:?}");
                let e = &out[0].evidence;
                assert_eq!(
                    (e["rejected"].clone(), e["answered"].clone()),
                    (json!(1), json!(0))
                );
                outs.push(format!("{out:?}"));
            }
            assert_eq!(outs[0], outs[1]);
        }
    }

    /// nmap -sO: probes of many IP protocols to one host, most refused by
    /// ICMP protocol unreachable.
    #[test]
    fn many_ip_protocols_to_one_host_are_a_protocol_scan() {
        let d = ScanDetector::new(&DetectConfig::default());
        let p = Policy::default();
        let (scanner, target) = (a("198.51.100.7"), a("10.0.0.25"));
        let mut out = Vec::new();
        // TCP and UDP probes have ports: they are the port scan's.
        for (t, proto) in [(0, PROTO_TCP), (1, PROTO_UDP)] {
            d.on_protocol(&p, scanner, target, proto, None, Timestamp(t), &mut out);
        }
        for (i, proto) in [1u8, 2, 4, 41, 47, 50, 51].into_iter().enumerate() {
            d.on_protocol(
                &p,
                scanner,
                target,
                proto,
                None,
                Timestamp(10 + i as u64),
                &mut out,
            );
        }
        assert!(
            out.is_empty(),
            "7 protocols are below min_protocols: {out:?}"
        );
        // A second probe of a protocol already probed is no new protocol.
        d.on_protocol(&p, scanner, target, 47, None, Timestamp(20), &mut out);
        assert!(out.is_empty());
        // Refusals of probes already counted add no protocol either.
        for proto in [2u8, 41, 50] {
            d.on_protocol(
                &p,
                scanner,
                target,
                proto,
                Some(Outcome::Rejected),
                Timestamp(30),
                &mut out,
            );
        }
        assert!(out.is_empty());
        d.on_protocol(&p, scanner, target, 132, None, Timestamp(40), &mut out);
        assert_eq!(out.len(), 1, "the 8th protocol");
        let e = &out[0];
        assert_eq!(e.kind(), Some(Kind::ProtocolScan));
        assert_eq!((e.source.ip, e.target.ip), (Some(scanner), Some(target)));
        assert_eq!(e.evidence["distinct_protocols"], 8);
        assert_eq!(e.evidence["probes"], 9);
        assert_eq!(e.evidence["rejected"], 3);
        assert_eq!(e.evidence["unanswered"], 5);
        assert_eq!(
            e.evidence["protocols"],
            json!([1, 2, 4, 41, 47, 50, 51, 132])
        );
        assert_eq!(e.evidence["technique"], json!(["ip_protocol"]));
        // Once per window.
        out.clear();
        d.on_protocol(&p, scanner, target, 133, None, Timestamp(50), &mut out);
        assert!(out.is_empty());
    }

    /// A sensor that sees only the target's refusals (the probes took
    /// another path) still names the scanner.
    #[test]
    fn refusals_alone_make_a_protocol_scan() {
        let d = ScanDetector::new(&DetectConfig::default());
        let p = Policy::default();
        let (scanner, target) = (a("2001:db8::7"), a("2001:db8::25"));
        let mut out = Vec::new();
        for proto in 100u8..107 {
            let refuse = Outcome::Rejected;
            d.on_protocol(
                &p,
                scanner,
                target,
                proto,
                Some(refuse),
                Timestamp(1),
                &mut out,
            );
            d.on_protocol(
                &p,
                scanner,
                target,
                proto,
                Some(refuse),
                Timestamp(2),
                &mut out,
            );
        }
        assert!(out.is_empty(), "7 protocols, each refused twice");
        let refuse = Outcome::Rejected;
        d.on_protocol(
            &p,
            scanner,
            target,
            107,
            Some(refuse),
            Timestamp(3),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence["distinct_protocols"], 8);
        assert_eq!(out[0].evidence["rejected"], 8);
        assert_eq!(out[0].target.ip, Some(target));
    }

    /// Hosts that talk over several protocols and answer each other (a
    /// tunnel endpoint's GRE, ESP, AH, ICMP...) are no scan, and protocols
    /// probed on different hosts do not add up.
    #[test]
    fn answered_protocols_and_several_hosts_are_no_protocol_scan() {
        let d = ScanDetector::new(&DetectConfig::default());
        let p = Policy::default();
        let (a1, a2) = (a("192.0.2.1"), a("192.0.2.2"));
        let mut out = Vec::new();
        for (i, proto) in (40u8..52).enumerate() {
            let t = Timestamp(i as u64);
            d.on_protocol(&p, a1, a2, proto, None, t, &mut out);
            d.on_protocol(&p, a1, a2, proto, Some(Outcome::Answered), t, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        for (i, proto) in (60u8..72).enumerate() {
            let host = a(&format!("192.0.2.{}", 10 + i));
            d.on_protocol(&p, a1, host, proto, None, Timestamp(100), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        // Disabled: nothing.
        let mut cfg = DetectConfig::default();
        cfg.port_scan.enabled = false;
        let off = ScanDetector::new(&cfg);
        for proto in 0u8..=255 {
            let refuse = Outcome::Rejected;
            off.on_protocol(&p, a1, a2, proto, None, Timestamp(200), &mut out);
            off.on_protocol(&p, a1, a2, proto, Some(refuse), Timestamp(200), &mut out);
        }
        assert!(out.is_empty());
    }
}
