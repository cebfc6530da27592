//! `syn_flood`: SYNs piling up unanswered on one (address, port).
//!
//! Counted per victim at packet level, before and independently of flow
//! tracking, so a flood that fills the flow table is still seen. Distinct
//! sources are estimated with a HyperLogLog (256 bytes per victim, not a set
//! of every spoofed source); the heaviest source is tracked with a
//! one-counter Misra-Gries summary to name a single attacker when there is one.
//!
//! While a victim's flood is reported, the worker creates no flow for a bare
//! SYN to it that matches no existing flow (counted as
//! `flood_syns_untracked`): spoofed sources must not be able to fill the
//! flow table and the output with one record per SYN.

use serde_json::json;

use super::bounded::{BoundedMap, Expiring, Hll, Usage};
use super::{Alert, Endpoint, Kind, Reported, ts};
use crate::config::SynFloodConfig;
use crate::decode::{Addr, FlowHasher};
use crate::time::Timestamp;

#[derive(Debug)]
struct FloodState {
    window_start: Timestamp,
    last_seen: Timestamp,
    syns: u64,
    completed: u64,
    total_syns: u64,
    sources: Hll,
    heavy: Option<Addr>,
    heavy_count: i64,
    heavy_syns: u64,
    reported: Reported,
}

/// SYNs in its window below which a victim not reported may make room
/// for a new one in a full tracker (one target of a SYN sweep, a quiet
/// service); a flood has more within its first second.
const DISPOSABLE_SYNS: u64 = 16;

impl Expiring for FloodState {
    fn last_seen(&self) -> Timestamp {
        self.last_seen
    }

    /// Ranked by the SYNs seen (1, 2-3, 4-7, 8-15).
    fn disposable(&self) -> Option<u8> {
        (self.syns < DISPOSABLE_SYNS && self.reported.at.is_none())
            .then(|| self.syns.max(1).ilog2() as u8)
    }
}

pub struct FloodDetector {
    map: BoundedMap<(Addr, u16), FloodState>,
    cfg: SynFloodConfig,
    hasher: FlowHasher,
}

impl FloodDetector {
    pub fn new(cfg: &crate::config::DetectConfig) -> Self {
        FloodDetector {
            map: BoundedMap::tracker(
                cfg,
                cfg.syn_flood
                    .window
                    .0
                    .saturating_add(cfg.syn_flood.window.0),
            ),
            cfg: cfg.syn_flood.clone(),
            hasher: FlowHasher::new(0x5f1d),
        }
    }

    pub fn sweep(&self, now: Timestamp) {
        self.map.sweep(now);
    }

    pub fn usage(&self) -> Usage {
        self.map.usage()
    }

    /// A SYN (without ACK) from `src` to `dst:dport`. Returns whether the
    /// victim is under a flood reported in the current window: new flows
    /// for its SYNs are then not worth tracking one by one.
    pub fn on_syn(
        &self,
        src: Addr,
        dst: Addr,
        dport: u16,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) -> bool {
        if !self.cfg.enabled {
            return false;
        }
        let h = self.hasher.hash(&src);
        self.map
            .update(
                &(dst, dport),
                now,
                || FloodState {
                    window_start: now,
                    last_seen: now,
                    syns: 0,
                    completed: 0,
                    total_syns: 0,
                    sources: Hll::default(),
                    heavy: None,
                    heavy_count: 0,
                    heavy_syns: 0,
                    reported: Reported::default(),
                },
                |s| {
                    if now.since(s.window_start) >= self.cfg.window.0 {
                        s.window_start = now;
                        s.syns = 0;
                        s.completed = 0;
                        s.sources = Hll::default();
                        s.heavy = None;
                        s.heavy_count = 0;
                        s.heavy_syns = 0;
                        s.reported.count = 0;
                    }
                    s.last_seen = now;
                    s.syns += 1;
                    s.total_syns += 1;
                    s.sources.add(h);
                    match s.heavy {
                        Some(a) if a == src => {
                            s.heavy_count += 1;
                            s.heavy_syns += 1;
                        }
                        _ if s.heavy_count == 0 => {
                            s.heavy = Some(src);
                            s.heavy_count = 1;
                            s.heavy_syns = 1;
                        }
                        _ => s.heavy_count -= 1,
                    }
                    let ratio = s.completed as f64 / s.syns.max(1) as f64;
                    if s.syns >= self.cfg.min_syns
                        && ratio <= self.cfg.max_completion_ratio
                        && s.reported.due(now, self.cfg.window.0, s.syns)
                    {
                        s.reported.mark(now, s.syns);
                        let secs = now.since(s.window_start).0 as f64 / 1e6;
                        // One source behind most SYNs is the attacker; otherwise
                        // the sources are spoofed or many, and none is named.
                        let single = s.heavy.filter(|_| s.heavy_syns * 2 > s.syns);
                        let source = Endpoint {
                            ip: single,
                            port: None,
                        };
                        let mut a =
                            Alert::new(Kind::SynFlood, 1, source, Endpoint::service(dst, dport))
                                .with("syns", s.syns)
                                .with("half_open", s.syns.saturating_sub(s.completed))
                                .with("completed", s.completed)
                                .with("completion_ratio", (ratio * 1000.0).round() / 1000.0)
                                .with("distinct_sources", s.sources.estimate())
                                .with("total_syns", s.total_syns)
                                .with("window_start", ts(s.window_start))
                                .with("window_end", ts(now));
                        if secs > 0.0 {
                            a = a.with("syns_per_second", (s.syns as f64 / secs).round());
                        }
                        if let Some(h) = single {
                            a = a.with("top_source", json!([h.to_string()]));
                        }
                        out.push(a);
                    }
                    s.reported.at.is_some_and(|at| at >= s.window_start)
                },
            )
            .unwrap_or(false)
    }

    /// A handshake to `dst:dport` completed.
    pub fn on_completed(&self, dst: Addr, dport: u16) {
        self.map.with_existing(&(dst, dport), |s| s.completed += 1);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::DetectConfig;
    use crate::decode::a;

    #[test]
    fn spoofed_flood_with_one_syn_per_source() {
        let d = FloodDetector::new(&DetectConfig::default());
        let mut out = Vec::new();
        for i in 0..5000u32 {
            let src = Addr::from([100, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            d.on_syn(
                src,
                a("10.0.0.1"),
                80,
                Timestamp(u64::from(i) * 100),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1, "one incident in one window");
        let al = &out[0];
        assert_eq!(al.source.ip, None, "spoofed: no single attacker");
        assert_eq!(al.target, Endpoint::service(a("10.0.0.1"), 80));
        let distinct = al.evidence["distinct_sources"].as_u64().unwrap();
        assert!(
            (120..=180).contains(&distinct),
            "{distinct} at the threshold of 150"
        );
    }

    /// A SYN sweep (400,000 hosts, one SYN each, 100,000 a second)
    /// through a tracker of 1,000 victims (turned over every 10 ms), and a
    /// flood of one service meanwhile, spoofed: 20 SYNs at once (or only
    /// two), then one every 20 ms. The sweep's targets make room for each
    /// other and for the victim, which outranks them from its second SYN
    /// and once past a handful of SYNs is kept however slow its flood, and
    /// reported.
    #[test]
    fn a_flood_is_seen_through_a_syn_sweep() {
        let base = BoundedMap::<(Addr, u16), FloodState>::base_bytes();
        let cfg = DetectConfig {
            tracker_bytes: 1000 * base,
            ..DetectConfig::default()
        };
        for burst in [20, 2] {
            let d = FloodDetector::new(&cfg);
            let victim = a("10.0.0.80");
            let mut out = Vec::new();
            for i in 0..400_000u32 {
                let t = Timestamp(u64::from(i) * 10);
                let swept = Addr::from([10, 1, (i >> 8) as u8, i as u8]);
                let port = 22 + (i >> 16) as u16;
                d.on_syn(a("203.0.113.7"), swept, port, t, &mut out);
                let syns = match i {
                    0 => burst,
                    i if i % 2000 == 0 => 1,
                    _ => 0,
                };
                for k in 0..syns {
                    let src = Addr::from([100, 64, (i >> 8) as u8, k]);
                    d.on_syn(src, victim, 443, t, &mut out);
                }
            }
            assert_eq!(out.len(), 1, "burst {burst}: {out:?}");
            assert_eq!(out[0].target, Endpoint::service(victim, 443));
            assert!(d.usage().evicted > 390_000, "{:?}", d.usage());
        }
    }

    #[test]
    fn one_source_flood_names_it() {
        let d = FloodDetector::new(&DetectConfig::default());
        let mut out = Vec::new();
        for i in 0..200u64 {
            d.on_syn(
                a("192.0.2.10"),
                a("198.51.100.5"),
                443,
                Timestamp(i * 1000),
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].source.ip, Some(a("192.0.2.10")));
    }

    #[test]
    fn busy_server_with_completed_handshakes_is_not_a_flood() {
        let d = FloodDetector::new(&DetectConfig::default());
        let mut out = Vec::new();
        for i in 0..2000u32 {
            let src = Addr::from([203, 0, (i >> 8) as u8, i as u8]);
            d.on_syn(
                src,
                a("10.0.0.1"),
                443,
                Timestamp(u64::from(i) * 10),
                &mut out,
            );
            d.on_completed(a("10.0.0.1"), 443);
        }
        assert!(out.is_empty());
    }

    #[test]
    fn window_edge_and_re_report() {
        let cfg = DetectConfig::default();
        let d = FloodDetector::new(&cfg);
        let w = cfg.syn_flood.window.0.0;
        let mut out = Vec::new();
        // 100 SYNs per window: never enough in any one window.
        for i in 0..300u64 {
            d.on_syn(
                a("192.0.2.1"),
                a("10.0.0.2"),
                80,
                Timestamp(i * (w / 100)),
                &mut out,
            );
        }
        assert!(out.is_empty());
        // A flood lasting three windows: reported once per window.
        for i in 0..3000u64 {
            d.on_syn(
                a("192.0.2.1"),
                a("10.0.0.3"),
                80,
                Timestamp(i * (w / 1000)),
                &mut out,
            );
        }
        assert_eq!(out.len(), 3);
    }
}
