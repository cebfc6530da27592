//! IP reputation: every new flow's external endpoints looked up in the
//! feeds' prefix table; a listed one raises one `reputation` alert for the
//! flow, with the feed, category and score in `alert.metadata`.
//!
//! The table is immutable and built off the hot path by the feed
//! [`manager`], which swaps a new one in atomically (an `ArcSwap`: workers
//! read the current table without a lock, a reload never blocks them). A
//! lookup is one binary search of a [`PrefixTable`] (well under a
//! microsecond with millions of entries).
//!
//! Time: entries expire TTL after they were last seen in their feed. That
//! is judged by the manager with the wall clock when it builds a table
//! (reputation is about what is known now, also when a capture is
//! replayed); the engine only looks up. See [`manager`].
//!
//! Memory: the table keeps a 6-byte listing per entry (feed, category as
//! an index into the table's names, score) beside its [`PrefixTable`]
//! (16 bytes per IPv4 entry of a list of disjoint addresses): 22 bytes; the
//! manager keeps 12 more for the ages. A reload builds the new table
//! beside the one in use, so the peak is [`BYTES_PER_ENTRY`] (80) per
//! IPv4 entry. All feeds together hold at most
//! [`Reputation::max_entries`], derived from half of the rules' share of
//! `memory_cap` (`crate::memory::reputation_entries`: 671,088 entries for
//! the default 1 GiB); beyond it new entries are dropped and counted
//! (logged per feed, and in [`Reputation::dropped`]), known ones still age.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod feed;
pub mod manager;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use serde_json::json;

use super::prefix::{MAX_ID, PrefixTable, PrefixTableBuilder, V4_BASE, V4_END};
use super::{Alert, Endpoint, Kind};
use crate::decode::Addr;
use crate::flow::Flow;
use crate::policy::Policy;

/// Bytes one IPv4 reputation entry takes at the peak of a reload, as
/// budgeted: the manager's state (12 bytes), the table in use (22: two
/// 8-byte intervals and a 6-byte listing) and the new table being built
/// beside it (38: 16 bytes of range ends, then the new intervals and
/// listings), plus allocator slack. Measured with lists of 1M to 1.5M
/// addresses: 73 to 76 bytes resident per entry at the peak of a reload,
/// 34 after the first load. An IPv6 entry takes about twice as much (24 +
/// 46 + 94 bytes) and counts as two against [`Reputation::max_entries`].
pub const BYTES_PER_ENTRY: usize = 80;

/// One listing of a network by a feed, as [`Table::build`] takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub feed: u16,
    pub category: Arc<str>,
    pub score: u8,
}

/// A listing as the table stores it (6 bytes): the category is an index
/// into the table's category names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Listing {
    feed: u16,
    category: u16,
    score: u8,
}

/// A listing covering a looked-up address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit<'a> {
    pub feed: u16,
    pub category: &'a str,
    pub score: u8,
}

/// A feed as alerts name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedInfo {
    pub name: String,
    pub severity: u8,
}

/// An immutable reputation table.
#[derive(Debug, Default)]
pub struct Table {
    prefixes: PrefixTable,
    entries: Vec<Listing>,
    categories: Vec<Arc<str>>,
    feeds: Vec<FeedInfo>,
}

/// Collects listings, then builds a [`Table`]; ids go in the order the
/// listings are added (a lookup returns them in that order).
#[derive(Debug)]
pub struct TableBuilder {
    prefixes: PrefixTableBuilder,
    entries: Vec<Listing>,
    categories: Vec<Arc<str>>,
    feeds: Vec<FeedInfo>,
}

impl TableBuilder {
    /// A builder for listings of `feeds` whose categories index `categories`.
    pub fn new(feeds: Vec<FeedInfo>, categories: Vec<Arc<str>>) -> Self {
        TableBuilder {
            prefixes: PrefixTableBuilder::new(),
            entries: Vec::new(),
            categories,
            feeds,
        }
    }

    /// Room for `v4` more IPv4 listings and `v6` IPv6 ones.
    pub fn reserve(&mut self, v4: usize, v6: usize) {
        self.entries.reserve_exact(v4.saturating_add(v6));
        self.prefixes.reserve(v4, v6);
    }

    /// Adds a listing of `base/prefix` (128-bit form); false when the
    /// category is not one of the builder's, or the table is full (2^31
    /// listings).
    pub fn add(&mut self, base: u128, prefix: u8, feed: u16, category: u16, score: u8) -> bool {
        let Some(id) = u32::try_from(self.entries.len())
            .ok()
            .filter(|&id| id <= MAX_ID)
        else {
            return false;
        };
        if usize::from(category) >= self.categories.len() {
            return false;
        }
        self.prefixes.add_prefix(base, prefix, id);
        self.entries.push(Listing {
            feed,
            category,
            score,
        });
        true
    }

    pub fn build(self) -> Table {
        let mut entries = self.entries;
        entries.shrink_to_fit();
        Table {
            prefixes: self.prefixes.build(),
            entries,
            categories: self.categories,
            feeds: self.feeds,
        }
    }
}

impl Table {
    /// Builds a table from (base, prefix, entry) listings.
    pub fn build(feeds: Vec<FeedInfo>, listings: Vec<(u128, u8, Entry)>) -> Table {
        let mut names: Vec<Arc<str>> = Vec::new();
        let mut ids: HashMap<Arc<str>, u16> = HashMap::new();
        let mut cats = Vec::with_capacity(listings.len());
        for (_, _, e) in &listings {
            let id = match ids.get(&e.category) {
                Some(&id) => Some(id),
                None => u16::try_from(names.len()).ok().inspect(|&id| {
                    names.push(e.category.clone());
                    ids.insert(e.category.clone(), id);
                }),
            };
            cats.push(id);
        }
        let mut b = TableBuilder::new(feeds, names);
        let v4 = listings
            .iter()
            .filter(|(base, ..)| (V4_BASE..=V4_END).contains(base))
            .count();
        b.reserve(v4, listings.len() - v4);
        for ((base, prefix, e), cat) in listings.into_iter().zip(cats) {
            if let Some(cat) = cat {
                b.add(base, prefix, e.feed, cat, e.score);
            }
        }
        b.build()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every listing covering `a`.
    pub fn lookup<'a>(&'a self, a: &Addr) -> impl Iterator<Item = Hit<'a>> + 'a {
        self.prefixes.lookup(a).iter().filter_map(|&i| {
            let e = self.entries.get(i as usize)?;
            Some(Hit {
                feed: e.feed,
                category: self.categories.get(usize::from(e.category))?,
                score: e.score,
            })
        })
    }

    pub fn feed(&self, i: u16) -> Option<&FeedInfo> {
        self.feeds.get(usize::from(i))
    }

    /// Approximate heap bytes of the table.
    pub fn memory(&self) -> usize {
        self.prefixes.memory()
            + self.entries.capacity() * std::mem::size_of::<Listing>()
            + self.categories.iter().map(|c| c.len() + 32).sum::<usize>()
    }
}

/// The current table, shared by the workers and the manager.
#[derive(Debug)]
pub struct Reputation {
    table: ArcSwap<Table>,
    /// IPv4 entries all feeds together may hold, an IPv6 one counting as
    /// two (see [`BYTES_PER_ENTRY`]).
    max_entries: usize,
    pub lookups: AtomicU64,
    pub hits: AtomicU64,
    /// New entries dropped because the feeds were at `max_entries`.
    pub dropped: AtomicU64,
}

impl Default for Reputation {
    fn default() -> Self {
        Self::new()
    }
}

impl Reputation {
    /// Without a cap on the entries.
    pub fn new() -> Self {
        Self::with_max_entries(usize::MAX)
    }

    /// At most `max_entries` entries in all feeds together: new entries
    /// beyond it are dropped and counted (`dropped`), known ones still age.
    pub fn with_max_entries(max_entries: usize) -> Self {
        Reputation {
            table: ArcSwap::from_pointee(Table::default()),
            max_entries,
            lookups: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Entries the feeds may hold together.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// The entries a share of `bytes` holds (see [`BYTES_PER_ENTRY`]).
    pub fn entries_for(bytes: usize) -> usize {
        bytes / BYTES_PER_ENTRY
    }

    /// Replaces the table; lookups in progress finish on the old one.
    pub fn swap(&self, t: Table) {
        self.table.store(Arc::new(t));
    }

    pub fn table(&self) -> Arc<Table> {
        self.table.load_full()
    }

    /// Looks up the external endpoints of a new flow (both when neither is
    /// home); appends one alert when any is listed.
    pub fn on_new_flow(&self, policy: &Policy, flow: &Flow, out: &mut Vec<Alert>) {
        let t = self.table.load();
        if t.is_empty() {
            return;
        }
        let (client, server) = (flow.client(), flow.server());
        let mut hits: Vec<(Hit<'_>, (Addr, u16), bool)> = Vec::new();
        for (ep, is_client) in [(client, true), (server, false)] {
            if policy.is_home(&ep.0) {
                continue;
            }
            self.lookups.fetch_add(1, Ordering::Relaxed);
            hits.extend(t.lookup(&ep.0).map(|e| (e, ep, is_client)));
        }
        let Some(&(_, listed, listed_is_client)) = hits.first() else {
            return;
        };
        self.hits.fetch_add(1, Ordering::Relaxed);
        let other = if listed_is_client { server } else { client };
        let ports = matches!(
            flow.key.proto,
            crate::decode::PROTO_TCP | crate::decode::PROTO_UDP | crate::decode::PROTO_SCTP
        );
        let ep = |(ip, port): (Addr, u16)| Endpoint {
            ip: Some(ip),
            port: ports.then_some(port),
        };
        let severity = hits
            .iter()
            .filter_map(|(e, ..)| t.feed(e.feed).map(|f| f.severity))
            .min()
            .unwrap_or(2);
        let mut feeds = Vec::new();
        let mut categories = Vec::new();
        let mut scores = Vec::new();
        let mut listed_ips = Vec::new();
        let mut sides = Vec::new();
        for (e, (ip, _), is_client) in &hits {
            feeds.push(t.feed(e.feed).map_or("", |f| f.name.as_str()).to_string());
            categories.push(e.category);
            scores.push(e.score);
            let ip = ip.to_string();
            if !listed_ips.contains(&ip) {
                listed_ips.push(ip);
                sides.push(if *is_client { "client" } else { "server" });
            }
        }
        out.push(
            Alert::new(Kind::Reputation, severity, ep(listed), ep(other))
                .with("feed", json!(feeds))
                .with("category", json!(categories))
                .with("score", json!(scores))
                .with("listed", json!(listed_ips))
                .with("listed_side", json!(sides)),
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::decode::a;
    use crate::flow::{FlowKey, Initiator};
    use crate::time::Timestamp;

    fn flow(client: &str, server: &str) -> Flow {
        let (key, lo) = FlowKey::new(a(client), 40000, a(server), 443, 6, [0; 2]);
        Flow::new(key, Timestamp(0), lo, Initiator::Syn)
    }

    #[test]
    fn one_alert_per_flow_naming_the_listed_side() {
        let r = Reputation::new();
        let c = crate::policy::Cidr::parse("198.51.100.0/24").unwrap();
        r.swap(Table::build(
            vec![
                FeedInfo {
                    name: "bad".into(),
                    severity: 2,
                },
                FeedInfo {
                    name: "worse".into(),
                    severity: 1,
                },
            ],
            vec![
                (
                    crate::detect::prefix::addr_u128(&c.addr),
                    c.prefix,
                    Entry {
                        feed: 0,
                        category: "scanner".into(),
                        score: 50,
                    },
                ),
                (
                    crate::detect::prefix::addr_u128(&a("198.51.100.7")),
                    128,
                    Entry {
                        feed: 1,
                        category: "c2".into(),
                        score: 127,
                    },
                ),
            ],
        ));
        let policy = Policy::default();
        let mut out = Vec::new();
        r.on_new_flow(&policy, &flow("10.0.0.5", "198.51.100.7"), &mut out);
        assert_eq!(out.len(), 1);
        let eve = out[0].to_eve();
        assert_eq!(eve["signature_id"], 9_100_010);
        assert_eq!(eve["severity"], 1);
        assert_eq!(eve["source"]["ip"], "198.51.100.7");
        assert_eq!(eve["target"]["ip"], "10.0.0.5");
        assert_eq!(eve["metadata"]["feed"], json!(["bad", "worse"]));
        assert_eq!(eve["metadata"]["category"], json!(["scanner", "c2"]));
        assert_eq!(eve["metadata"]["score"], json!([50, 127]));
        assert_eq!(eve["metadata"]["listed_side"], json!(["server"]));
        // A home address is never looked up, an unlisted one does not hit.
        out.clear();
        r.on_new_flow(&policy, &flow("198.51.99.1", "10.0.0.5"), &mut out);
        assert!(out.is_empty());
    }
}
