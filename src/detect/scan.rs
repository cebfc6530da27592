//! `port_scan` (one source, many ports of one host) and `port_sweep` (one
//! source, one port on many hosts), TCP and UDP, IPv4 and IPv6.
//!
//! A probe is the first packet of a new flow from its client: a SYN, or a
//! FIN, NULL, Xmas, ACK or FIN+ACK segment with no connection behind it, or
//! a UDP datagram. Each probe is answered (SYN-ACK, a UDP reply), rejected
//! (RST, ICMP unreachable) or unanswered. An incident needs `min_ports`
//! distinct ports of one host (or `min_hosts` hosts on one port) within the
//! window, of which at most `max_success_ratio` were answered: a client
//! talking to many ports or hosts that answer is at work, not scanning.

use std::collections::HashMap;

use serde_json::json;

use super::bounded::{BoundedMap, Expiring};
use super::{Alert, Endpoint, Kind, Reported, ts};
use crate::config::PortScanConfig;
use crate::decode::{Addr, PROTO_TCP, PROTO_UDP, tcp_flags as F};
use crate::policy::{Direction, Policy};
use crate::time::Timestamp;

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
}

impl Technique {
    const ALL: [Technique; 8] = [
        Technique::Syn,
        Technique::Connect,
        Technique::Fin,
        Technique::Null,
        Technique::Xmas,
        Technique::Ack,
        Technique::Maimon,
        Technique::Udp,
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
        }
    }

    /// The technique of a flow's first packet, if it is a probe.
    pub fn of_tcp_flags(flags: u8) -> Option<Technique> {
        let f = flags & (F::SYN | F::ACK | F::FIN | F::RST | F::PSH | F::URG);
        match f {
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

/// What came back for a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Rejected,
}

/// Ports and hosts kept per scanner and per target (beyond this only counts grow).
const MAX_TARGETS: usize = 512;
const MAX_PER_TARGET: usize = 8192;

#[derive(Debug, Default)]
struct HostProbes {
    /// Port → probes sent to it.
    ports: HashMap<u16, u32>,
    /// Ports beyond `MAX_PER_TARGET` (counted, not kept).
    overflow: u32,
    answered: u32,
    rejected: u32,
    probes: u32,
    proto: u8,
    reported: Reported,
}

impl HostProbes {
    fn distinct(&self) -> u64 {
        self.ports.len() as u64 + u64::from(self.overflow)
    }
}

#[derive(Debug, Default)]
struct PortProbes {
    hosts: HashMap<Addr, ()>,
    overflow: u32,
    answered: u32,
    rejected: u32,
    probes: u32,
    reported: Reported,
}

impl PortProbes {
    fn distinct(&self) -> u64 {
        self.hosts.len() as u64 + u64::from(self.overflow)
    }
}

#[derive(Debug)]
struct ScanState {
    window_start: Timestamp,
    last_seen: Timestamp,
    hosts: HashMap<Addr, HostProbes>,
    ports: HashMap<(u8, u16), PortProbes>,
    techniques: [u32; 8],
}

impl Expiring for ScanState {
    fn last_seen(&self) -> Timestamp {
        self.last_seen
    }
}

impl ScanState {
    fn new(now: Timestamp) -> Self {
        ScanState {
            window_start: now,
            last_seen: now,
            hosts: HashMap::new(),
            ports: HashMap::new(),
            techniques: [0; 8],
        }
    }

    fn technique(&self) -> &'static str {
        let t = &self.techniques;
        // A SYN scan whose open ports got full handshakes is a connect scan.
        if t.get(Technique::Connect as usize).copied().unwrap_or(0) > 0 {
            return Technique::Connect.name();
        }
        Technique::ALL
            .iter()
            .max_by_key(|x| t.get(**x as usize).copied().unwrap_or(0))
            .map_or("unknown", |x| x.name())
    }
}

pub struct ScanDetector {
    map: BoundedMap<Addr, ScanState>,
    cfg: PortScanConfig,
}

fn top_ports(ports: &HashMap<u16, u32>) -> Vec<u16> {
    let mut v: Vec<(u16, u32)> = ports.iter().map(|(p, n)| (*p, *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter().take(10).map(|(p, _)| p).collect()
}

fn severity(d: Direction) -> u8 {
    match d {
        Direction::Outbound => 1,
        Direction::Internal | Direction::Inbound => 2,
        Direction::External => 3,
    }
}

impl ScanDetector {
    pub fn new(cfg: &crate::config::DetectConfig) -> Self {
        ScanDetector {
            map: BoundedMap::new(
                cfg.max_tracked,
                cfg.port_scan
                    .window
                    .0
                    .saturating_add(cfg.port_scan.window.0),
            ),
            cfg: cfg.port_scan.clone(),
        }
    }

    pub fn sweep(&self, now: Timestamp) {
        self.map.sweep(now);
    }

    pub fn shed(&self) -> u64 {
        self.map.shed()
    }

    fn roll(&self, s: &mut ScanState, now: Timestamp) {
        if now.since(s.window_start) >= self.cfg.window.0 {
            s.window_start = now;
            s.techniques = [0; 8];
            // Counts restart; when each incident was last reported is kept.
            for h in s.hosts.values_mut() {
                let r = h.reported;
                *h = HostProbes {
                    reported: Reported { at: r.at, count: 0 },
                    ..HostProbes::default()
                };
            }
            for p in s.ports.values_mut() {
                let r = p.reported;
                *p = PortProbes {
                    reported: Reported { at: r.at, count: 0 },
                    ..PortProbes::default()
                };
            }
        }
    }

    /// A new probe from `src` to `dst:dport`.
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
        if !self.cfg.enabled || !matches!(proto, PROTO_TCP | PROTO_UDP) {
            return;
        }
        self.map.update(
            &src,
            now,
            || ScanState::new(now),
            |s| {
                self.roll(s, now);
                s.last_seen = now;
                if let Some(n) = s.techniques.get_mut(tech as usize) {
                    *n += 1;
                }
                if s.hosts.len() < MAX_TARGETS || s.hosts.contains_key(&dst) {
                    let h = s.hosts.entry(dst).or_default();
                    h.proto = proto;
                    h.probes += 1;
                    let room = h.ports.len() < MAX_PER_TARGET;
                    match h.ports.get_mut(&dport) {
                        Some(n) => *n += 1,
                        None if room => {
                            h.ports.insert(dport, 1);
                        }
                        None => h.overflow += 1,
                    }
                }
                if s.ports.len() < MAX_TARGETS || s.ports.contains_key(&(proto, dport)) {
                    let p = s.ports.entry((proto, dport)).or_default();
                    p.probes += 1;
                    if !p.hosts.contains_key(&dst) {
                        if p.hosts.len() < MAX_PER_TARGET {
                            p.hosts.insert(dst, ());
                        } else {
                            p.overflow += 1;
                        }
                    }
                }
                self.evaluate(policy, s, src, dst, proto, dport, now, out);
            },
        );
    }

    /// Whether `src` sent at least `n` probes in its current window.
    pub fn is_probing(&self, src: &Addr, n: u32) -> bool {
        self.map
            .with_existing(src, |s| s.techniques.iter().sum::<u32>() >= n)
            .unwrap_or(false)
    }

    /// The target answered or rejected a probe; `connect` when the scanner
    /// completed the handshake.
    pub fn on_outcome(
        &self,
        src: Addr,
        dst: Addr,
        proto: u8,
        dport: u16,
        outcome: Outcome,
        connect: bool,
    ) {
        self.map.with_existing(&src, |s| {
            if connect {
                if let Some(n) = s.techniques.get_mut(Technique::Connect as usize) {
                    *n += 1;
                }
                return;
            }
            if let Some(h) = s.hosts.get_mut(&dst) {
                match outcome {
                    Outcome::Answered => h.answered += 1,
                    Outcome::Rejected => h.rejected += 1,
                }
            }
            if let Some(p) = s.ports.get_mut(&(proto, dport)) {
                match outcome {
                    Outcome::Answered => p.answered += 1,
                    Outcome::Rejected => p.rejected += 1,
                }
            }
        });
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
        let technique = s.technique();
        let window_start = s.window_start;
        let ratio = self.cfg.max_success_ratio;
        if let Some(h) = s.hosts.get_mut(&dst) {
            let distinct = h.distinct();
            if distinct >= u64::from(self.cfg.min_ports)
                && f64::from(h.answered) <= ratio * distinct as f64
                && h.reported.due(now, self.cfg.window.0, distinct)
            {
                h.reported.mark(now, distinct);
                let dir = policy.direction(&src, &dst);
                let unanswered = h.probes.saturating_sub(h.answered + h.rejected);
                out.push(
                    Alert::new(
                        Kind::PortScan,
                        severity(dir),
                        Endpoint::host(src),
                        Endpoint::host(dst),
                    )
                    .with("direction", json!([dir.as_str()]))
                    .with("technique", json!([technique]))
                    .with(
                        "protocol",
                        json!([if h.proto == PROTO_UDP { "udp" } else { "tcp" }]),
                    )
                    .with("distinct_ports", distinct)
                    .with("probes", h.probes)
                    .with("answered", h.answered)
                    .with("rejected", h.rejected)
                    .with("unanswered", unanswered)
                    .with("top_ports", json!(top_ports(&h.ports)))
                    .with("window_start", ts(window_start))
                    .with("window_end", ts(now)),
                );
            }
        }
        if let Some(p) = s.ports.get_mut(&(proto, dport)) {
            let distinct = p.distinct();
            if distinct >= u64::from(self.cfg.min_hosts)
                && f64::from(p.answered) <= ratio * distinct as f64
                && p.reported.due(now, self.cfg.window.0, distinct)
            {
                p.reported.mark(now, distinct);
                let dir = policy.direction(&src, &dst);
                let mut sample: Vec<String> = p.hosts.keys().map(|a| a.to_string()).collect();
                sample.sort();
                sample.truncate(10);
                let mut a = Alert::new(
                    Kind::PortSweep,
                    severity(dir),
                    Endpoint::host(src),
                    Endpoint {
                        ip: None,
                        port: Some(dport),
                    },
                )
                .with("direction", json!([dir.as_str()]))
                .with("technique", json!([technique]))
                .with(
                    "protocol",
                    json!([if proto == PROTO_UDP { "udp" } else { "tcp" }]),
                )
                .with("distinct_hosts", distinct)
                .with("probes", p.probes)
                .with("answered", p.answered)
                .with("rejected", p.rejected)
                .with("hosts_sample", json!(sample))
                .with("window_start", ts(window_start))
                .with("window_end", ts(now));
                a.on_flow = true;
                out.push(a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::DetectConfig;

    fn a(s: &str) -> Addr {
        Addr::from(s.parse::<std::net::IpAddr>().unwrap())
    }

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
                a("10.0.0.5"),
                a("10.0.0.6"),
                PROTO_TCP,
                port,
                Outcome::Answered,
                false,
            );
        }
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn window_edges() {
        let cfg = DetectConfig::default();
        let d = ScanDetector::new(&cfg);
        let w = cfg.port_scan.window.0.0;
        // 10 ports at the start of the window, 10 more just after it ends: no incident.
        let mut out = run(&d, "203.0.113.7", "10.0.0.9", 1..=10, 0, 1);
        out.extend(run(&d, "203.0.113.7", "10.0.0.9", 11..=20, w + 1, 1));
        assert!(out.is_empty());
        // 20 ports within the window: one.
        let out = run(&d, "203.0.113.8", "10.0.0.9", 1..=20, 0, w / 20 - 1);
        assert_eq!(out.len(), 1);
        // The scan goes on in the next window: not reported again until a
        // full window after the first report...
        let out = run(&d, "203.0.113.8", "10.0.0.9", 21..=60, w + 10, 1);
        assert!(out.is_empty());
        // ...then once, with the new counts.
        let out = run(&d, "203.0.113.8", "10.0.0.9", 61..=100, 2 * w + 10, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence["distinct_ports"], 20);
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
}
