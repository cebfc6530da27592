//! The feed manager: reads reputation feeds, keeps when each entry was last
//! seen in its feed, drops expired entries, and swaps new tables in.
//!
//! This is the one place that reads the wall clock, on purpose: whether an
//! entry is still valid is a question about now, not about the packets
//! being read (a replayed capture from last year is judged with today's
//! lists). The workers never see time here; they only look up the table
//! they are given.
//!
//! Ages. A feed is *observed* when a new version of its file is read (its
//! modification time, size or SHA-1 changed since the last observation):
//! every entry in it is then last seen at that moment (wall time of the
//! load). An entry absent from later versions keeps its last-seen time and
//! expires `ttl` after it; so does every entry of a feed that stops being
//! updated. Reading an unchanged file (a restart, SIGHUP with no change) is
//! not an observation.
//!
//! State. Per feed, the ages and the identity of the last observed version
//! go to a small text state file (default `<feed>.state`; written to a
//! temporary file and renamed, so readers never see half a file). On load
//! the state is read and merged (latest time wins), so a restarted sensor,
//! or another sensor pointed at the same state file, keeps the ages.
//!
//! Reloads: each feed's file is checked every `check_interval` (its
//! modification time and size), and every feed is re-read on SIGHUP; a
//! changed feed, or an entry expiring, builds a new table off the hot path
//! and swaps it in atomically.
//!
//! Memory. Files are read as streams: a feed once for its SHA-1 and once,
//! when new, to parse it; the state file line by line, and written through
//! a buffer. Each feed keeps its entries in two sorted vectors, 12 bytes
//! per IPv4 entry (base, prefix, category index, score, last seen in
//! seconds) and 24 per IPv6 one; a row for a known entry updates it in
//! place, new ones are collected, sorted in place and merged in. Category
//! names are kept once, entries carry a 16-bit index (a name beyond the
//! 65,536th is dropped as at the cap). All feeds together hold at most
//! [`Reputation::max_entries`] (an IPv6 entry counting as two): rows for
//! new entries beyond it are dropped, in file order, counted in the
//! [`FeedReport`], logged and added to [`Reputation::dropped`]; known
//! entries are still updated and expire, which makes room for later reads.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, BufWriter, Read, Write as _};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha1::{Digest, Sha1};

use super::feed::{self, Format};
use super::{FeedInfo, Reputation, TableBuilder};
use crate::config::{FeedConfig, FeedFormatConfig};
use crate::detect::prefix::{V4_BASE, V4_END, addr_u128};
use crate::policy::Cidr;

/// Read buffer for feed and state files.
const READ_BUF: usize = 64 << 10;

/// A feed file version: modification time (ns), size, SHA-1.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Identity {
    mtime_ns: u128,
    len: u64,
    sha1: String,
}

/// An IPv6 base as its two halves: ordered as the `u128`, but 8-byte
/// aligned, so that a record packs into 24 bytes.
type V6 = [u64; 2];

/// The base of a state record's network, IPv4 (`u32`) or IPv6 ([`V6`]).
trait Base: Copy + Ord + Default {
    /// What an entry counts against [`Reputation::max_entries`]: its
    /// memory in IPv4 entries.
    const WEIGHT: usize;

    /// The 128-bit base and prefix (IPv4 mapped) of `self/prefix`.
    fn wide(self, prefix: u8) -> (u128, u8);
}

impl Base for u32 {
    const WEIGHT: usize = 1;

    fn wide(self, prefix: u8) -> (u128, u8) {
        (V4_BASE + u128::from(self), prefix.saturating_add(96))
    }
}

impl Base for V6 {
    const WEIGHT: usize = 2;

    fn wide(self, prefix: u8) -> (u128, u8) {
        let [hi, lo] = self;
        ((u128::from(hi) << 64) | u128::from(lo), prefix)
    }
}

/// `::ffff:0.0.0.0` as a [`V6`]: IPv6 entries below it come before IPv4.
const V6_V4_BASE: V6 = [0, 0xffff_0000_0000];

/// What the manager keeps per entry: 12 bytes for IPv4 (`Rec<u32>`), 24
/// for IPv6. A feed's records are sorted by key, without duplicates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Rec<B> {
    base: B,
    /// Bits of the family's own form (an IPv4 /24 is 24).
    prefix: u8,
    /// Index into the manager's category names.
    cat: u16,
    score: u8,
    /// Unix seconds, wall time (saturating in 2106).
    last_seen: u32,
}

impl<B: Base> Rec<B> {
    /// `base/prefix` as a listing (category, score, last seen) has it.
    fn listed(base: B, prefix: u8, (cat, score, last_seen): (u16, u8, u32)) -> Rec<B> {
        Rec {
            base,
            prefix,
            cat,
            score,
            last_seen,
        }
    }

    fn key(&self) -> (B, u8, u16) {
        (self.base, self.prefix, self.cat)
    }

    fn expires(&self, ttl: u64) -> u64 {
        u64::from(self.last_seen).saturating_add(ttl)
    }
}

/// Unix seconds as a record keeps them.
fn secs(t: u64) -> u32 {
    u32::try_from(t).unwrap_or(u32::MAX)
}

/// A network in its family's form.
enum Net {
    V4(u32, u8),
    V6(V6, u8),
}

fn split_net(base: u128, prefix: u8) -> Net {
    if prefix >= 96 && (V4_BASE..=V4_END).contains(&base) {
        Net::V4(u32::try_from(base - V4_BASE).unwrap_or(0), prefix - 96)
    } else {
        Net::V6([(base >> 64) as u64, base as u64], prefix)
    }
}

/// How a row that was read meets an entry already known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Seen in a new version of the feed at `now`: the row replaces the
    /// entry (the last of repeated rows wins).
    Observe { now: u32 },
    /// Read from the state file: the later last-seen time wins (the first
    /// row on a tie).
    Merge,
}

impl Rule {
    /// Whether `new` replaces `old` (the same key).
    fn replaces<B>(self, old: &Rec<B>, new: &Rec<B>) -> bool {
        match self {
            Rule::Observe { .. } => true,
            Rule::Merge => new.last_seen > old.last_seen,
        }
    }
}

/// What became of an offered row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Offered {
    Updated,
    Unchanged,
    Added,
    Dropped,
}

/// New keys of one read, kept apart from the state until merged. Under
/// [`Rule::Observe`] a pending row's `last_seen` holds its row number
/// until the merge (so that sorting in place keeps the last row).
struct Pending<B> {
    recs: Vec<Rec<B>>,
    /// Repeated rows were folded once when the room ran out.
    folded: bool,
    /// The next row number.
    seq: u32,
}

impl<B: Base> Pending<B> {
    fn with_capacity(n: usize) -> Self {
        Pending {
            recs: Vec::with_capacity(n),
            folded: false,
            seq: 0,
        }
    }
}

/// Room for new entries left in one read (both families; in IPv4
/// entries, see [`Base::WEIGHT`]).
struct Room {
    left: usize,
    dropped: u64,
}

/// Sorts pending rows by key and folds each key's rows into one by `rule`.
fn fold<B: Base>(v: &mut Vec<Rec<B>>, rule: Rule) {
    // A state file (or a sorted feed) comes in order, each key once.
    if v.is_sorted_by(|a, b| a.key() < b.key()) {
        return;
    }
    match rule {
        // In place (no scratch the size of the feed): rows carry numbers.
        Rule::Observe { .. } => v.sort_unstable_by_key(|r| (r.key(), r.last_seen)),
        // A stable sort keeps the first of rows seen at the same time.
        Rule::Merge => v.sort_by_key(Rec::key),
    }
    v.dedup_by(|later, earlier| {
        if later.key() != earlier.key() {
            return false;
        }
        if rule.replaces(earlier, later) {
            *earlier = *later;
        }
        true
    });
}

/// Offers a row to a feed's sorted `state`: a known key is updated by
/// `rule`, a new one is kept in `pending` while there is room, else dropped.
fn offer<B: Base>(
    state: &mut [Rec<B>],
    pending: &mut Pending<B>,
    room: &mut Room,
    r: Rec<B>,
    rule: Rule,
) -> Offered {
    if let Ok(j) = state.binary_search_by(|e| e.key().cmp(&r.key())) {
        return match state.get_mut(j) {
            Some(e) if rule.replaces(e, &r) => {
                *e = r;
                Offered::Updated
            }
            _ => Offered::Unchanged,
        };
    }
    if room.left < B::WEIGHT && !pending.folded {
        // Rows repeated in the feed took room: count each key once.
        let before = pending.recs.len();
        fold(&mut pending.recs, rule);
        room.left += (before - pending.recs.len()) * B::WEIGHT;
        pending.folded = true;
    }
    if room.left < B::WEIGHT {
        room.dropped += 1;
        return Offered::Dropped;
    }
    room.left -= B::WEIGHT;
    let mut r = r;
    if let Rule::Observe { .. } = rule {
        r.last_seen = pending.seq;
        pending.seq = pending.seq.saturating_add(1);
    }
    pending.recs.push(r);
    Offered::Added
}

/// Merges the new keys of a read into the sorted state, in place (the
/// state grows by the new keys only).
fn merge_pending<B: Base>(state: &mut Vec<Rec<B>>, pending: Pending<B>, rule: Rule) {
    let mut new = pending.recs;
    if new.is_empty() {
        return;
    }
    fold(&mut new, rule);
    if let Rule::Observe { now } = rule {
        new.iter_mut().for_each(|r| r.last_seen = now);
    }
    if state.is_empty() {
        new.shrink_to_fit();
        *state = new;
        return;
    }
    // Merge from the back: the largest key goes last.
    let old = state.len();
    state.reserve_exact(new.len());
    state.resize(old + new.len(), Rec::default());
    let (mut i, mut k) = (old, state.len());
    while let Some(n) = new.pop() {
        while let Some(&s) = i.checked_sub(1).and_then(|p| state.get(p)) {
            if s.key() < n.key() {
                break;
            }
            i -= 1;
            k -= 1;
            if let Some(slot) = state.get_mut(k) {
                *slot = s;
            }
        }
        k -= 1;
        if let Some(slot) = state.get_mut(k) {
            *slot = n;
        }
    }
}

/// Drops records expired at `now`; returns the earliest expiry left.
fn expire_recs<B: Base>(v: &mut Vec<Rec<B>>, ttl: u64, now: u64) -> u64 {
    v.retain(|r| r.expires(ttl) > now);
    if v.capacity() > 2 * v.len() + 1024 {
        v.shrink_to_fit();
    }
    v.iter().map(|r| r.expires(ttl)).min().unwrap_or(u64::MAX)
}

/// Calls `f(base, prefix, category, score, last_seen)` (128-bit base and
/// prefix) for each record, those of one network in category name order.
fn each_in_order<B: Base>(
    recs: &[Rec<B>],
    ranks: &[u32],
    f: &mut impl FnMut(u128, u8, u16, u8, u32),
) {
    let rank = |c: u16| ranks.get(usize::from(c)).copied().unwrap_or(u32::MAX);
    let mut emit = |r: &Rec<B>| {
        let (base, prefix) = r.base.wide(r.prefix);
        f(base, prefix, r.cat, r.score, r.last_seen);
    };
    let mut group: Vec<Rec<B>> = Vec::new();
    let mut i = 0;
    while let Some(first) = recs.get(i) {
        let mut j = i + 1;
        while recs
            .get(j)
            .is_some_and(|r| r.base == first.base && r.prefix == first.prefix)
        {
            j += 1;
        }
        match recs.get(i..j) {
            Some([one]) => emit(one),
            Some(run) => {
                group.clear();
                group.extend_from_slice(run);
                group.sort_by_key(|r| rank(r.cat));
                group.iter().for_each(&mut emit);
            }
            None => {}
        }
        i = j;
    }
}

/// Category names, each kept once; entries carry a 16-bit index.
#[derive(Debug, Default)]
struct Categories {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u16>,
}

impl Categories {
    /// The index of `name`, added when new; None once 65,536 are known.
    fn id(&mut self, name: &str) -> Option<u16> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        let id = u16::try_from(self.names.len()).ok()?;
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        Some(id)
    }

    /// Each index's rank in name order.
    fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by(|&a, &b| self.names.get(a).cmp(&self.names.get(b)));
        let mut ranks = vec![0; self.names.len()];
        for (rank, i) in order.into_iter().enumerate() {
            if let Some(r) = ranks.get_mut(i) {
                *r = u32::try_from(rank).unwrap_or(u32::MAX);
            }
        }
        ranks
    }

    fn name(&self, id: u16) -> &str {
        self.names.get(usize::from(id)).map_or("", |n| n)
    }
}

struct FeedState {
    cfg: FeedConfig,
    /// (mtime, size) at the last check.
    stat: Option<(u128, u64)>,
    identity: Option<Identity>,
    /// IPv4 and IPv6 entries, each sorted by (base, prefix, category).
    v4: Vec<Rec<u32>>,
    v6: Vec<Rec<V6>>,
    next_check: u64,
    /// Earliest expiry among the entries.
    next_expiry: u64,
    warned: bool,
    loaded_once: bool,
}

impl FeedState {
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Calls `f(base, prefix, category, score, last_seen)` for every entry
    /// in (base, prefix, category name) order of the 128-bit form.
    fn each_in_order(&self, ranks: &[u32], mut f: impl FnMut(u128, u8, u16, u8, u32)) {
        let below = self.v6.partition_point(|r| r.base < V6_V4_BASE);
        let (low, high) = self.v6.split_at(below);
        each_in_order(low, ranks, &mut f);
        each_in_order(&self.v4, ranks, &mut f);
        each_in_order(high, ranks, &mut f);
    }
}

/// What a refresh did, per feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedReport {
    pub name: String,
    pub entries: usize,
    /// A new version of the file was read.
    pub observed: bool,
    pub expired: usize,
    pub bad_lines: u64,
    /// New entries dropped: the feeds held [`Reputation::max_entries`].
    pub dropped: u64,
}

/// Reads feeds and swaps tables into a [`Reputation`].
pub struct Manager {
    feeds: Vec<FeedState>,
    store: Arc<Reputation>,
    cats: Categories,
}

impl FeedState {
    /// Offers a listing (category, score, last seen) of `net` to the
    /// records of its family: the feed's state, or that family's pending
    /// records.
    fn offer(
        &mut self,
        net: Net,
        listing: (u16, u8, u32),
        (p4, p6): (&mut Pending<u32>, &mut Pending<V6>),
        room: &mut Room,
        rule: Rule,
    ) -> Offered {
        match net {
            Net::V4(base, prefix) => offer(
                &mut self.v4,
                p4,
                room,
                Rec::listed(base, prefix, listing),
                rule,
            ),
            Net::V6(base, prefix) => offer(
                &mut self.v6,
                p6,
                room,
                Rec::listed(base, prefix, listing),
                rule,
            ),
        }
    }
}

fn stat(path: &Path) -> Option<(u128, u64)> {
    let m = std::fs::metadata(path).ok()?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Some((mtime, m.len()))
}

/// SHA-1 (hex) of a file and an upper bound of its lines, read in pieces.
fn hash_file(path: &Path) -> std::io::Result<(String, usize)> {
    let mut file = std::fs::File::open(path)?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut lines = 1;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buf.get(..n).unwrap_or(&[]);
        h.update(chunk);
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    let hex = h.finalize().iter().fold(String::new(), |mut s, b| {
        let _ = fmt::Write::write_fmt(&mut s, format_args!("{b:02x}"));
        s
    });
    Ok((hex, lines))
}

/// Wall time in Unix seconds.
pub fn wall_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn ttl_secs(cfg: &FeedConfig) -> u64 {
    cfg.ttl.as_secs().max(1)
}

/// A prefix written back as text (IPv4 in its own form).
struct CidrText(u128, u8);

impl fmt::Display for CidrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let CidrText(base, prefix) = *self;
        let addr = crate::decode::Addr(base.to_be_bytes());
        if (V4_BASE..=V4_END).contains(&base) && prefix >= 96 {
            write!(f, "{addr}/{}", prefix - 96)
        } else {
            write!(f, "{addr}/{prefix}")
        }
    }
}

impl Manager {
    pub fn new(cfgs: &[FeedConfig], store: Arc<Reputation>) -> Manager {
        Manager {
            feeds: cfgs
                .iter()
                .map(|c| FeedState {
                    cfg: c.clone(),
                    stat: None,
                    identity: None,
                    v4: Vec::new(),
                    v6: Vec::new(),
                    next_check: 0,
                    next_expiry: u64::MAX,
                    warned: false,
                    loaded_once: false,
                })
                .collect(),
            store,
            cats: Categories::default(),
        }
    }

    /// Entries all feeds hold now.
    fn total(&self) -> usize {
        self.feeds.iter().map(FeedState::len).sum()
    }

    /// New entries the feeds still have room for, in IPv4 entries.
    fn room(&self) -> Room {
        let used: usize = self
            .feeds
            .iter()
            .map(|f| f.v4.len() + f.v6.len() * V6::WEIGHT)
            .sum();
        Room {
            left: self.store.max_entries().saturating_sub(used),
            dropped: 0,
        }
    }

    /// Checks the feeds at wall time `now` (Unix seconds): re-reads those
    /// whose file changed (all of them when `force`, on SIGHUP), drops
    /// expired entries, and swaps in a new table when anything changed.
    pub fn refresh(&mut self, now: u64, force: bool) -> Vec<FeedReport> {
        let mut reports = Vec::new();
        let mut rebuild = false;
        for i in 0..self.feeds.len() {
            let (report, changed) = self.refresh_feed(i, now, force);
            rebuild |= changed;
            reports.extend(report);
        }
        if rebuild || self.store.table().is_empty() && self.feeds.iter().any(|f| f.len() > 0) {
            self.swap();
        }
        reports
    }

    fn refresh_feed(&mut self, i: usize, now: u64, force: bool) -> (Option<FeedReport>, bool) {
        let Some(f) = self.feeds.get(i) else {
            return (None, false);
        };
        let cfg = f.cfg.clone();
        let interval = cfg.check_interval.as_secs();
        let due = !f.loaded_once || force || (interval > 0 && now >= f.next_check);
        let mut report = FeedReport {
            name: cfg.name.clone(),
            ..FeedReport::default()
        };
        let mut changed = false;
        if due {
            let st = stat(&cfg.path);
            let first = !f.loaded_once;
            let file_changed = first || force || st != f.stat;
            if let Some(f) = self.feeds.get_mut(i) {
                f.stat = st;
                f.next_check = now.saturating_add(interval.max(1));
                f.loaded_once = true;
            }
            if file_changed {
                let (merged, dropped) = self.merge_state(i);
                changed |= merged;
                report.dropped += dropped;
                let (observed, bad, dropped) = self.read_feed(i, now);
                report.observed = observed;
                report.bad_lines = bad;
                report.dropped += dropped;
                changed |= observed;
            }
        }
        let expired = self.expire(i, now);
        report.expired = expired;
        changed |= expired > 0;
        if (report.observed || expired > 0)
            && let Some(f) = self.feeds.get(i)
        {
            write_state(f, &self.cats);
        }
        if report.dropped > 0 {
            self.store
                .dropped
                .fetch_add(report.dropped, Ordering::Relaxed);
            tracing::warn!(
                "reputation feed `{}`: {} new entries dropped: the feeds hold {} entries at most \
                 (their share of memory_cap); known entries still age",
                cfg.name,
                report.dropped,
                self.store.max_entries()
            );
        }
        report.entries = self.feeds.get(i).map_or(0, FeedState::len);
        let show =
            due && (report.observed || report.bad_lines > 0 || report.dropped > 0) || expired > 0;
        (show.then_some(report), changed)
    }

    /// Reads the feed file; returns (new observation, bad lines, entries
    /// dropped at the cap). The file is read twice, as a stream: once for
    /// its identity, then, when that is new, to parse it.
    fn read_feed(&mut self, i: usize, now: u64) -> (bool, u64, u64) {
        let Some(f) = self.feeds.get(i) else {
            return (false, 0, 0);
        };
        let cfg = f.cfg.clone();
        let opened = hash_file(&cfg.path).and_then(|h| Ok((h, std::fs::File::open(&cfg.path)?)));
        let ((sha1, lines), file) = match opened {
            Ok(x) => x,
            Err(e) => {
                if let Some(f) = self.feeds.get_mut(i)
                    && !f.warned
                {
                    f.warned = true;
                    tracing::warn!(
                        "reputation feed `{}`: {}: {e}; its entries age until it is back",
                        cfg.name,
                        cfg.path.display()
                    );
                }
                return (false, 0, 0);
            }
        };
        let (mtime_ns, len) = stat(&cfg.path).unwrap_or((0, 0));
        let id = Identity {
            mtime_ns,
            len,
            sha1,
        };
        if f.identity.as_ref() == Some(&id) {
            return (false, 0, 0);
        }
        let format = match &cfg.format {
            FeedFormatConfig::List => Format::List,
            FeedFormatConfig::Csv {
                column,
                delimiter,
                header,
            } => Format::Csv {
                column: column.clone(),
                delimiter: *delimiter,
                header: *header,
            },
            FeedFormatConfig::Iprep { categories_file } => {
                let text = std::fs::read_to_string(categories_file)
                    .map_err(|e| format!("{}: {e}", categories_file.display()));
                match text.and_then(|t| {
                    feed::parse_categories(&t, &categories_file.display().to_string())
                }) {
                    Ok(c) => Format::Iprep { categories: c },
                    Err(e) => {
                        tracing::warn!("reputation feed `{}`: {e}", cfg.name);
                        return (false, 0, 0);
                    }
                }
            }
        };
        let mut room = self.room();
        let Manager { feeds, cats, .. } = self;
        let Some(f) = feeds.get_mut(i) else {
            return (false, 0, 0);
        };
        let default_cat = cats.id(&cfg.category);
        let last_seen = secs(now);
        let observe = Rule::Observe { now: last_seen };
        // Most feeds are IPv4: room for the lines that may be new.
        let expect_new = lines.saturating_sub(f.len()).max(lines / 16);
        let mut p4 = Pending::with_capacity(expect_new.min(room.left));
        let mut p6 = Pending::with_capacity(0);
        let summary = feed::parse_with(file, &format, &cfg.path.display().to_string(), |l| {
            let Some(cat) = l.category.map_or(default_cat, |c| cats.id(c)) else {
                room.dropped += 1;
                return;
            };
            let score = l.score.unwrap_or(cfg.score);
            let net = split_net(l.base, l.prefix);
            f.offer(
                net,
                (cat, score, last_seen),
                (&mut p4, &mut p6),
                &mut room,
                observe,
            );
        });
        for e in &summary.errors {
            tracing::warn!("reputation feed `{}`: {e}", cfg.name);
        }
        merge_pending(&mut f.v4, p4, observe);
        merge_pending(&mut f.v6, p6, observe);
        f.identity = Some(id);
        f.warned = false;
        f.next_expiry = f.next_expiry.min(now.saturating_add(ttl_secs(&cfg)));
        (true, summary.bad_lines, room.dropped)
    }

    /// Drops entries last seen `ttl` or more ago; returns how many.
    fn expire(&mut self, i: usize, now: u64) -> usize {
        let Some(f) = self.feeds.get_mut(i) else {
            return 0;
        };
        if now < f.next_expiry {
            return 0;
        }
        let ttl = ttl_secs(&f.cfg);
        let before = f.len();
        let next4 = expire_recs(&mut f.v4, ttl, now);
        let next6 = expire_recs(&mut f.v6, ttl, now);
        f.next_expiry = next4.min(next6);
        before - f.len()
    }

    /// Reads the feed's state file and merges it (latest time wins);
    /// returns whether anything changed, and the entries dropped at the cap.
    fn merge_state(&mut self, i: usize) -> (bool, u64) {
        let Some(path) = self.feeds.get(i).and_then(|f| f.cfg.state_file.clone()) else {
            return (false, 0);
        };
        let Ok(file) = std::fs::File::open(&path) else {
            return (false, 0);
        };
        let file_len = file.metadata().ok().map(|m| m.len());
        let mut r = BufReader::with_capacity(READ_BUF, file);
        let mut room = self.room();
        let Manager { feeds, cats, .. } = self;
        let Some(f) = feeds.get_mut(i) else {
            return (false, 0);
        };
        let ttl = ttl_secs(&f.cfg);
        let mut identity = None;
        let mut changed = false;
        // Rows not yet known, at most one per 20 bytes of state (untouched
        // until used; growing instead would leave copies behind).
        let rows = file_len.map_or(0, |n| usize::try_from(n / 20).unwrap_or(usize::MAX));
        let mut p4 = Pending::with_capacity(rows.saturating_sub(f.len()).min(room.left));
        let mut p6 = Pending::with_capacity(0);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let Ok(line) = std::str::from_utf8(&buf) else {
                continue;
            };
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(rest) = line.strip_prefix("# source ") {
                let mut p = rest.split_whitespace();
                if let (Some(m), Some(l), Some(h), None) = (p.next(), p.next(), p.next(), p.next())
                    && let (Ok(m), Ok(l)) = (m.parse(), l.parse())
                {
                    identity = Some(Identity {
                        mtime_ns: m,
                        len: l,
                        sha1: h.to_string(),
                    });
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut fields = line.split('\t');
            let (Some(net), Some(cat), Some(score), Some(seen), None) = (
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
            ) else {
                continue;
            };
            let (Ok(c), Ok(score), Ok(seen)) =
                (Cidr::parse(net), score.parse::<u8>(), seen.parse::<u64>())
            else {
                continue;
            };
            let Some(cat) = cats.id(cat) else {
                room.dropped += 1;
                continue;
            };
            let last_seen = secs(seen);
            let net = split_net(addr_u128(&c.addr), c.prefix);
            let listing = (cat, score, last_seen);
            let offered = f.offer(net, listing, (&mut p4, &mut p6), &mut room, Rule::Merge);
            let now_changed = match offered {
                Offered::Updated => true,
                Offered::Added => last_seen > 0,
                Offered::Unchanged | Offered::Dropped => false,
            };
            if now_changed {
                changed = true;
                f.next_expiry = f.next_expiry.min(u64::from(last_seen).saturating_add(ttl));
            }
        }
        merge_pending(&mut f.v4, p4, Rule::Merge);
        merge_pending(&mut f.v6, p6, Rule::Merge);
        if f.identity.is_none() {
            f.identity = identity;
        }
        (changed, room.dropped)
    }

    /// Builds a table from every feed's entries and swaps it in.
    fn swap(&mut self) {
        let infos: Vec<FeedInfo> = self
            .feeds
            .iter()
            .map(|f| FeedInfo {
                name: f.cfg.name.clone(),
                severity: f.cfg.severity,
            })
            .collect();
        let ranks = self.cats.ranks();
        let mut b = TableBuilder::new(infos, self.cats.names.clone());
        let v4 = self.feeds.iter().map(|f| f.v4.len()).sum();
        b.reserve(v4, self.total() - v4);
        for (fi, f) in self.feeds.iter().enumerate() {
            let feed = u16::try_from(fi).unwrap_or(u16::MAX);
            f.each_in_order(&ranks, |base, prefix, cat, score, _| {
                b.add(base, prefix, feed, cat, score);
            });
        }
        let table = b.build();
        tracing::info!("reputation: table of {} entries swapped in", table.len());
        self.store.swap(table);
    }

    /// Loads the feeds now, then keeps them fresh on a thread until the
    /// handle is dropped. `reload` is set by SIGHUP. None without feeds.
    pub fn start(
        cfgs: &[FeedConfig],
        store: Arc<Reputation>,
        reload: Arc<AtomicBool>,
    ) -> Option<ManagerHandle> {
        if cfgs.is_empty() {
            return None;
        }
        let mut m = Manager::new(cfgs, store);
        for r in m.refresh(wall_now(), false) {
            log(&r);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("reputation".into())
            .spawn(move || {
                let mut last = std::time::Instant::now();
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let hup = reload.swap(false, Ordering::Relaxed);
                    if hup || last.elapsed() >= Duration::from_secs(1) {
                        last = std::time::Instant::now();
                        if hup {
                            tracing::info!("SIGHUP: re-reading reputation feeds");
                        }
                        for r in m.refresh(wall_now(), hup) {
                            log(&r);
                        }
                    }
                }
            })
            .ok()?;
        Some(ManagerHandle {
            stop,
            thread: Some(thread),
        })
    }
}

fn log(r: &FeedReport) {
    tracing::info!(
        "reputation feed `{}`: {} entries{}, {} expired, {} bad lines, {} dropped at the cap",
        r.name,
        r.entries,
        if r.observed {
            " (new version read)"
        } else {
            ""
        },
        r.expired,
        r.bad_lines,
        r.dropped
    );
}

fn write_state(f: &FeedState, cats: &Categories) {
    let Some(path) = &f.cfg.state_file else {
        return;
    };
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut w = BufWriter::with_capacity(READ_BUF, std::fs::File::create(&tmp)?);
        w.write_all(b"# backflow reputation state v1\n")?;
        writeln!(w, "# feed {}", f.cfg.name)?;
        if let Some(id) = &f.identity {
            writeln!(w, "# source {} {} {}", id.mtime_ns, id.len, id.sha1)?;
        }
        w.write_all(b"# network\tcategory\tscore\tlast_seen_unix\n")?;
        let mut result = Ok(());
        f.each_in_order(&cats.ranks(), |base, prefix, cat, score, seen| {
            if result.is_ok() {
                result = writeln!(
                    w,
                    "{}\t{}\t{score}\t{seen}",
                    CidrText(base, prefix),
                    cats.name(cat)
                );
            }
        });
        result?;
        w.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    };
    let result = write().and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(
            "reputation feed `{}`: cannot write state {}: {e} (ages are kept in memory only)",
            f.cfg.name,
            path.display()
        );
    }
}

/// Stops the manager's thread when dropped.
pub struct ManagerHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ManagerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::decode::a;
    use crate::time::Micros;

    const DAY: u64 = 86_400;

    fn cfg(dir: &Path, name: &str) -> FeedConfig {
        FeedConfig {
            name: name.into(),
            category: "bad".into(),
            severity: 2,
            ttl: Micros::from_secs(7 * DAY),
            path: dir.join(format!("{name}.txt")),
            format: FeedFormatConfig::List,
            score: 127,
            state_file: Some(dir.join(format!("{name}.state"))),
            check_interval: Micros::from_secs(1),
        }
    }

    fn hits(r: &Reputation, ip: &str) -> usize {
        r.table().lookup(&a(ip)).count()
    }

    /// A feed `name` holding `text` in `dir`, and a manager of it alone
    /// filling `store`.
    fn one_feed(
        dir: &Path,
        name: &str,
        text: &str,
        store: &Arc<Reputation>,
    ) -> (FeedConfig, Manager) {
        let c = cfg(dir, name);
        std::fs::write(&c.path, text).unwrap();
        let m = Manager::new(std::slice::from_ref(&c), store.clone());
        (c, m)
    }

    #[test]
    fn entries_expire_ttl_after_they_were_last_seen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Reputation::new());
        let (c, mut m) = one_feed(dir.path(), "f", "192.0.2.1\n192.0.2.2\n", &store);
        let t0 = 1_700_000_000;
        m.refresh(t0, false);
        assert_eq!(
            (hits(&store, "192.0.2.1"), hits(&store, "192.0.2.2")),
            (1, 1)
        );
        // Day 3: the feed drops .2 and keeps .1.
        std::fs::write(&c.path, "192.0.2.1\n").unwrap();
        m.refresh(t0 + 3 * DAY, true);
        assert_eq!(
            hits(&store, "192.0.2.2"),
            1,
            "last seen on day 0, ttl 7 days"
        );
        // Day 7: .2 expired (last seen day 0); .1 was seen on day 3.
        m.refresh(t0 + 7 * DAY, false);
        assert_eq!(
            (hits(&store, "192.0.2.1"), hits(&store, "192.0.2.2")),
            (1, 0)
        );
        // Day 10, unchanged file: not a new observation, .1 expires.
        m.refresh(t0 + 10 * DAY, true);
        assert_eq!(hits(&store, "192.0.2.1"), 0);
        assert!(store.table().is_empty());
    }

    #[test]
    fn a_restart_or_another_sensor_keeps_the_ages() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), "g");
        std::fs::write(&c.path, "198.51.100.0/24\n2001:db8::1\n").unwrap();
        let t0 = 1_700_000_000;
        let first = Arc::new(Reputation::new());
        Manager::new(std::slice::from_ref(&c), first.clone()).refresh(t0, false);
        assert_eq!(hits(&first, "198.51.100.9"), 1);
        assert_eq!(hits(&first, "2001:db8::1"), 1);
        let state = std::fs::read_to_string(c.state_file.as_ref().unwrap()).unwrap();
        assert!(
            state.contains(&format!("198.51.100.0/24\tbad\t127\t{t0}")),
            "{state}"
        );
        // Six days later, a new manager (a restart, or a second sensor) on
        // the same unchanged feed and state: the entries are six days old.
        let second = Arc::new(Reputation::new());
        let mut m = Manager::new(std::slice::from_ref(&c), second.clone());
        m.refresh(t0 + 6 * DAY, false);
        assert_eq!(hits(&second, "198.51.100.9"), 1);
        m.refresh(t0 + 7 * DAY + 1, false);
        assert_eq!(hits(&second, "198.51.100.9"), 0, "expired: seen 7 days ago");
        // Without the state, the same restart would have taken the file as new.
        std::fs::remove_file(c.state_file.as_ref().unwrap()).unwrap();
        let third = Arc::new(Reputation::new());
        Manager::new(std::slice::from_ref(&c), third.clone()).refresh(t0 + 8 * DAY, false);
        assert_eq!(hits(&third, "198.51.100.9"), 1);
    }

    #[test]
    fn a_changed_file_is_picked_up_when_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Reputation::new());
        let (c, mut m) = one_feed(dir.path(), "h", "192.0.2.1\n", &store);
        let t0 = 1_700_000_000;
        m.refresh(t0, false);
        std::fs::write(&c.path, "192.0.2.1\n192.0.2.77\n").unwrap();
        // Not due yet: the next check is a second later.
        m.refresh(t0, false);
        assert_eq!(hits(&store, "192.0.2.77"), 0);
        m.refresh(t0 + 1, false);
        assert_eq!(hits(&store, "192.0.2.77"), 1);
        // A missing file keeps the entries until they expire.
        std::fs::remove_file(&c.path).unwrap();
        m.refresh(t0 + 2, true);
        assert_eq!(hits(&store, "192.0.2.77"), 1);
    }

    #[test]
    fn a_full_budget_drops_new_entries_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Reputation::with_max_entries(3));
        let five = "192.0.2.1\n192.0.2.2\n192.0.2.3\n192.0.2.4\n192.0.2.5\n";
        let (c, mut m) = one_feed(dir.path(), "cap", five, &store);
        let t0 = 1_700_000_000;
        let r = m.refresh(t0, false);
        assert_eq!((r[0].entries, r[0].dropped), (3, 2));
        assert_eq!(store.dropped.load(Ordering::Relaxed), 2);
        // The first three of the file are kept and found.
        let found: Vec<usize> = (1..=5)
            .map(|i| hits(&store, &format!("192.0.2.{i}")))
            .collect();
        assert_eq!(found, vec![1, 1, 1, 0, 0]);
        // Day 3: a known entry is seen again, a new one does not fit.
        std::fs::write(&c.path, "192.0.2.1\n192.0.2.6\n").unwrap();
        let r = m.refresh(t0 + 3 * DAY, true);
        assert_eq!((r[0].entries, r[0].dropped), (3, 1));
        assert_eq!(hits(&store, "192.0.2.6"), 0);
        // Day 7: .2 and .3 expire (seen on day 0), .1 was seen on day 3.
        m.refresh(t0 + 7 * DAY, false);
        assert_eq!(store.table().len(), 1);
        assert_eq!(hits(&store, "192.0.2.1"), 1);
        // Room again, for two of the three new entries.
        std::fs::write(
            &c.path,
            "192.0.2.1\n192.0.2.6\n192.0.2.6\n192.0.2.7\n192.0.2.8\n",
        )
        .unwrap();
        let r = m.refresh(t0 + 7 * DAY, true);
        assert_eq!((r[0].entries, r[0].dropped), (3, 1));
        assert_eq!(store.dropped.load(Ordering::Relaxed), 4);
        let found: Vec<usize> = [1, 6, 7, 8]
            .iter()
            .map(|i| hits(&store, &format!("192.0.2.{i}")))
            .collect();
        assert_eq!(found, vec![1, 1, 1, 0]);
        // The cap is shared by the feeds: a second feed finds it full.
        let d = cfg(dir.path(), "other");
        std::fs::write(&d.path, "198.51.100.1\n").unwrap();
        let store = Arc::new(Reputation::with_max_entries(3));
        let mut m = Manager::new(&[c.clone(), d], store.clone());
        let r = m.refresh(t0 + 7 * DAY, false);
        assert_eq!(r.iter().map(|r| r.dropped).sum::<u64>(), 1);
        assert_eq!(store.table().len(), 3);
        // An IPv6 entry counts as two.
        let e = cfg(dir.path(), "six");
        std::fs::write(&e.path, "2001:db8::1\n2001:db8::2\n192.0.2.9\n").unwrap();
        let store = Arc::new(Reputation::with_max_entries(3));
        let r = Manager::new(std::slice::from_ref(&e), store.clone()).refresh(t0, false);
        assert_eq!((r[0].entries, r[0].dropped), (2, 1));
        assert_eq!(
            (hits(&store, "2001:db8::1"), hits(&store, "2001:db8::2")),
            (1, 0)
        );
        assert_eq!(hits(&store, "192.0.2.9"), 1);
    }

    #[test]
    fn table_order_follows_the_addresses_and_category_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(dir.path(), "ip");
        let cats = dir.path().join("cats.txt");
        std::fs::write(&cats, "1,zeta,z\n2,alpha,a\n").unwrap();
        c.format = FeedFormatConfig::Iprep {
            categories_file: cats,
        };
        // An IPv6 /0 covers the IPv4-mapped space too.
        std::fs::write(
            &c.path,
            "192.0.2.1,1,10\n192.0.2.0/24,1,20\n192.0.2.1,2,30\n::/0,1,40\n",
        )
        .unwrap();
        let store = Arc::new(Reputation::new());
        Manager::new(std::slice::from_ref(&c), store.clone()).refresh(1_700_000_000, false);
        let t = store.table();
        let got: Vec<(&str, u8)> = t
            .lookup(&a("192.0.2.1"))
            .map(|h| (h.category, h.score))
            .collect();
        assert_eq!(
            got,
            vec![("zeta", 40), ("zeta", 20), ("alpha", 30), ("zeta", 10)]
        );
        let state = std::fs::read_to_string(c.state_file.as_ref().unwrap()).unwrap();
        let rows: Vec<&str> = state
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').next().unwrap())
            .collect();
        assert_eq!(
            rows,
            vec!["::/0", "192.0.2.0/24", "192.0.2.1/32", "192.0.2.1/32"]
        );
    }

    /// The state as a map, with the rules spelled out: a new version's row
    /// replaces an entry, a state file's row wins when it is later.
    #[test]
    fn state_matches_a_map_of_the_rows() {
        use std::collections::BTreeMap;
        let mut rng = crate::traffic::Rng::new(7);
        let mut state: Vec<Rec<u32>> = Vec::new();
        let mut model: BTreeMap<(u32, u8, u16), (u8, u32)> = BTreeMap::new();
        for round in 0..200u32 {
            let now = round;
            let rule = if rng.below(2) == 0 {
                Rule::Observe { now }
            } else {
                Rule::Merge
            };
            let mut pending = Pending::with_capacity(0);
            let mut room = Room {
                left: usize::MAX,
                dropped: 0,
            };
            for _ in 0..rng.below(40) {
                let seen = match rule {
                    Rule::Observe { now } => now,
                    Rule::Merge => rng.below(250) as u32,
                };
                let r = Rec {
                    base: rng.below(64) as u32,
                    prefix: 30 + rng.below(3) as u8,
                    cat: rng.below(3) as u16,
                    score: rng.below(128) as u8,
                    last_seen: seen,
                };
                offer(&mut state, &mut pending, &mut room, r, rule);
                let e = model.entry(r.key()).or_insert((r.score, 0));
                if matches!(rule, Rule::Observe { .. }) || r.last_seen > e.1 {
                    *e = (r.score, r.last_seen);
                }
            }
            merge_pending(&mut state, pending, rule);
            let got: Vec<_> = state
                .iter()
                .map(|r| (r.key(), (r.score, r.last_seen)))
                .collect();
            let want: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
            assert_eq!(got, want, "round {round}");
            if round % 50 == 49 {
                let now = u64::from(round);
                expire_recs(&mut state, 30, now);
                model.retain(|_, v| u64::from(v.1) + 30 > now);
            }
        }
    }
}
