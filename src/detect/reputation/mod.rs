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

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod feed;
pub mod manager;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use serde_json::json;

use super::prefix::{PrefixTable, PrefixTableBuilder};
use super::{Alert, Endpoint, Kind};
use crate::decode::Addr;
use crate::flow::Flow;
use crate::policy::Policy;

/// One listing of a network by a feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub feed: u16,
    pub category: Arc<str>,
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
    entries: Vec<Entry>,
    feeds: Vec<FeedInfo>,
}

impl Table {
    /// Builds a table from (base, prefix, entry) listings.
    pub fn build(feeds: Vec<FeedInfo>, listings: Vec<(u128, u8, Entry)>) -> Table {
        let mut b = PrefixTableBuilder::new();
        let mut entries = Vec::with_capacity(listings.len());
        for (base, prefix, e) in listings {
            let Ok(id) = u32::try_from(entries.len()) else {
                break;
            };
            b.add_prefix(base, prefix, id);
            entries.push(e);
        }
        Table {
            prefixes: b.build(),
            entries,
            feeds,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every listing covering `a`.
    pub fn lookup<'a>(&'a self, a: &Addr) -> impl Iterator<Item = &'a Entry> + 'a {
        self.prefixes
            .lookup(a)
            .iter()
            .filter_map(|&i| self.entries.get(i as usize))
    }

    pub fn feed(&self, i: u16) -> Option<&FeedInfo> {
        self.feeds.get(usize::from(i))
    }

    /// Approximate heap bytes of the prefix table.
    pub fn memory(&self) -> usize {
        self.prefixes.memory() + self.entries.len() * std::mem::size_of::<Entry>()
    }
}

/// The current table, shared by the workers and the manager.
#[derive(Debug)]
pub struct Reputation {
    table: ArcSwap<Table>,
    pub lookups: AtomicU64,
    pub hits: AtomicU64,
}

impl Default for Reputation {
    fn default() -> Self {
        Self::new()
    }
}

impl Reputation {
    pub fn new() -> Self {
        Reputation {
            table: ArcSwap::from_pointee(Table::default()),
            lookups: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
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
        let mut hits: Vec<(&Entry, (Addr, u16), bool)> = Vec::new();
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
            categories.push(e.category.to_string());
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
    use crate::flow::{FlowKey, Initiator};
    use crate::time::Timestamp;

    fn a(s: &str) -> Addr {
        Addr::from(s.parse::<std::net::IpAddr>().unwrap())
    }

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
