//! `reversed_role` (a host's server port opens a connection) and
//! `unexpected_inbound` (the outside completes a handshake with a home host
//! on a port it does not publish).
//!
//! A port is a server port of a host when the policy says the host publishes
//! it, when the host was seen answering a SYN on it (SYN-ACK), or when it is
//! in `detect.server_ports` (well-known service ports) and the host is a
//! home host.

use std::sync::Arc;

use serde_json::json;

use super::bounded::{BoundedMap, Expiring, Usage};
use super::related::FtpSessions;
use super::{Alert, Endpoint, Kind, Reported, ts};
use crate::config::{Config, ReversedRoleConfig, UnexpectedInboundConfig};
use crate::decode::{Addr, PROTO_TCP};
use crate::policy::{Direction, Policy, ServiceSet};
use crate::time::Timestamp;

struct Seen(Timestamp);

impl Expiring for Seen {
    fn last_seen(&self) -> Timestamp {
        self.0
    }
}

#[derive(Debug)]
struct Incident {
    first: Timestamp,
    last_seen: Timestamp,
    count: u64,
    peers: u64,
    last_peer: Option<Addr>,
    reported: Reported,
}

impl Expiring for Incident {
    fn last_seen(&self) -> Timestamp {
        self.last_seen
    }
}

impl Incident {
    fn new(now: Timestamp) -> Self {
        Incident {
            first: now,
            last_seen: now,
            count: 0,
            peers: 0,
            last_peer: None,
            reported: Reported::default(),
        }
    }
}

pub struct RoleDetector {
    learned: BoundedMap<(Addr, u16), Seen>,
    reversed: BoundedMap<(Addr, u16), Incident>,
    inbound: BoundedMap<(Addr, Addr, u16), Incident>,
    rr: ReversedRoleConfig,
    ui: UnexpectedInboundConfig,
    server_ports: ServiceSet,
    exceptions: ServiceSet,
    ftp: Option<Arc<FtpSessions>>,
}

impl RoleDetector {
    pub fn new(cfg: &crate::config::DetectConfig) -> Self {
        RoleDetector {
            learned: BoundedMap::tracker(cfg, cfg.reversed_role.learned_ttl.0),
            reversed: BoundedMap::tracker(cfg, cfg.reversed_role.window.0),
            inbound: BoundedMap::tracker(cfg, cfg.unexpected_inbound.window.0),
            rr: cfg.reversed_role.clone(),
            ui: cfg.unexpected_inbound.clone(),
            server_ports: ServiceSet::default(),
            exceptions: ServiceSet::default(),
            ftp: None,
        }
    }

    /// Shares the FTP control sessions: their data connections are not
    /// unexpected inbound sessions.
    pub fn with_ftp(mut self, ftp: Arc<FtpSessions>) -> Self {
        self.ftp = Some(ftp);
        self
    }

    /// Takes the parsed port lists from the config.
    pub fn with_ports(mut self, config: &Config) -> Self {
        self.server_ports = config.server_ports.clone();
        self.exceptions = config.reversed_role_exceptions.clone();
        self
    }

    pub fn sweep(&self, now: Timestamp) {
        self.learned.sweep(now);
        self.reversed.sweep(now);
        self.inbound.sweep(now);
    }

    pub fn usage(&self) -> Usage {
        self.learned.usage() + self.reversed.usage() + self.inbound.usage()
    }

    /// `server` answered a SYN on `port`.
    pub fn on_synack(&self, server: Addr, port: u16, now: Timestamp) {
        if self.rr.enabled {
            self.learned
                .update(&(server, port), now, || Seen(now), |s| s.0 = now);
        }
    }

    /// Why `port` is a server port of `host`, if it is. `scanning`: the
    /// host is probing many ports or hosts, so its SYNs are probes.
    /// `dport`: the destination port of the SYN.
    fn server_port_reason(
        &self,
        policy: &Policy,
        host: &Addr,
        port: u16,
        dport: u16,
        scanning: bool,
    ) -> Option<&'static str> {
        if policy.publishes(host, PROTO_TCP, port) {
            Some("published_service")
        } else if self.learned.with_existing(&(*host, port), |_| ()).is_some() {
            Some("answered_syn_before")
        } else if self.server_ports.contains(PROTO_TCP, port)
            && policy.is_home(host)
            && !scanning
            && (port < 1024 || !self.server_ports.contains(PROTO_TCP, dport))
        {
            // Only for home hosts that are not scanning: outside tools
            // (hping3, nmap -g) and scanners cycling through source ports send
            // from any port, and that alone says nothing about the host.
            // A well-known port of 1024 and up is also an ephemeral port of
            // some systems (Windows XP took 1025-5000, which holds 1080,
            // 1433, 3306, 3389...): from it to another server port the host
            // is a client; only an unprivileged port the host neither
            // published nor answered on, talking to a client port, is
            // evidence.
            Some("well_known_server_port")
        } else {
            None
        }
    }

    /// A SYN without ACK from `src:sport` to `dst:dport`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_syn(
        &self,
        policy: &Policy,
        src: Addr,
        sport: u16,
        dst: Addr,
        dport: u16,
        scanning: bool,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) {
        if !self.rr.enabled || self.exceptions.contains(PROTO_TCP, sport) {
            return;
        }
        let Some(reason) = self.server_port_reason(policy, &src, sport, dport, scanning) else {
            return;
        };
        self.reversed.update(
            &(src, sport),
            now,
            || Incident::new(now),
            |s| {
                s.last_seen = now;
                s.count += 1;
                if s.last_peer != Some(dst) {
                    s.peers += 1;
                    s.last_peer = Some(dst);
                }
                if s.reported.due(now, self.rr.window.0, s.count) {
                    s.reported.mark(now, s.count);
                    let dir = policy.direction(&src, &dst);
                    let severity = if policy.is_home(&dst) { 2 } else { 1 };
                    out.push(
                        Alert::new(
                            Kind::ReversedRole,
                            severity,
                            Endpoint::service(src, sport),
                            Endpoint::service(dst, dport),
                        )
                        .with("direction", json!([dir.as_str()]))
                        .with("reason", json!([reason]))
                        .with("syns", s.count)
                        .with("destinations", s.peers)
                        .with("first_seen", ts(s.first))
                        .with("last_seen", ts(now)),
                    );
                }
            },
        );
    }

    /// A handshake completed from `client` to `server:port`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_handshake(
        &self,
        policy: &Policy,
        client: Addr,
        server: Addr,
        port: u16,
        bytes: (u64, u64),
        started: Timestamp,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) {
        if let Some(ftp) = &self.ftp {
            ftp.on_handshake(client, server, port, now);
        }
        if !self.ui.enabled
            || policy.direction(&client, &server) != Direction::Inbound
            || policy.publishes(&server, PROTO_TCP, port)
            || self
                .ftp
                .as_ref()
                .is_some_and(|f| f.is_data(client, server, port))
        {
            return;
        }
        self.inbound.update(
            &(client, server, port),
            now,
            || Incident::new(now),
            |s| {
                s.last_seen = now;
                s.count += 1;
                if s.reported.due(now, self.ui.window.0, s.count) {
                    s.reported.mark(now, s.count);
                    let severity = if self.ui.admin_ports.contains(&port) {
                        1
                    } else {
                        2
                    };
                    out.push(
                        Alert::new(
                            Kind::UnexpectedInbound,
                            severity,
                            Endpoint::host(client),
                            Endpoint::service(server, port),
                        )
                        .with("direction", json!(["inbound"]))
                        .with("sessions", s.count)
                        .with("bytes_toserver", bytes.0)
                        .with("bytes_toclient", bytes.1)
                        .with("handshake_seconds", now.since(started).0 as f64 / 1e6)
                        .with("first_seen", ts(s.first)),
                    );
                }
            },
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::decode::a;

    impl RoleDetector {
        #[allow(clippy::too_many_arguments)]
        fn on_syn_t(
            &self,
            p: &Policy,
            s: Addr,
            sp: u16,
            d: Addr,
            dp: u16,
            now: Timestamp,
            out: &mut Vec<Alert>,
        ) {
            self.on_syn(p, s, sp, d, dp, false, now, out);
        }
    }

    #[test]
    fn a_scanning_home_host_cycling_source_ports_is_not_reversed() {
        let (d, c) = detector();
        let mut out = Vec::new();
        d.on_syn(
            &c.policy,
            a("10.0.0.7"),
            3389,
            a("10.0.0.8"),
            1244,
            true,
            Timestamp(1),
            &mut out,
        );
        assert!(out.is_empty());
        // A published or learned port still counts while scanning.
        d.on_synack(a("10.0.0.7"), 4444, Timestamp(1));
        d.on_syn(
            &c.policy,
            a("10.0.0.7"),
            4444,
            a("10.0.0.8"),
            1245,
            true,
            Timestamp(2),
            &mut out,
        );
        assert_eq!(out.len(), 1);
    }

    fn detector() -> (RoleDetector, Config) {
        let c = Config::default();
        (RoleDetector::new(&c.detect).with_ports(&c), c)
    }

    #[test]
    fn syn_from_a_well_known_port_ipv4_and_ipv6() {
        let (d, c) = detector();
        let mut out = Vec::new();
        d.on_syn_t(
            &c.policy,
            a("10.0.0.80"),
            80,
            a("198.51.100.20"),
            8080,
            Timestamp(1),
            &mut out,
        );
        d.on_syn_t(
            &c.policy,
            a("10.0.0.80"),
            80,
            a("198.51.100.21"),
            8080,
            Timestamp(2),
            &mut out,
        );
        assert_eq!(out.len(), 1, "one incident");
        assert_eq!(out[0].severity, 1, "external destination");
        d.on_syn_t(
            &c.policy,
            a("fd00::10"),
            443,
            a("fd00::20"),
            9000,
            Timestamp(3),
            &mut out,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].severity, 2, "internal destination");
        // FTP active data from port 20 is the default exception; ephemeral ports are clients.
        d.on_syn_t(
            &c.policy,
            a("10.0.0.21"),
            20,
            a("198.51.100.20"),
            40000,
            Timestamp(4),
            &mut out,
        );
        d.on_syn_t(
            &c.policy,
            a("10.0.0.21"),
            41234,
            a("198.51.100.20"),
            80,
            Timestamp(4),
            &mut out,
        );
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn a_learned_server_port_counts() {
        let (d, c) = detector();
        let mut out = Vec::new();
        d.on_syn_t(
            &c.policy,
            a("10.0.0.9"),
            4444,
            a("198.51.100.1"),
            5555,
            Timestamp(1),
            &mut out,
        );
        assert!(out.is_empty(), "4444 is nobody's server port yet");
        d.on_synack(a("10.0.0.9"), 4444, Timestamp(2));
        d.on_syn_t(
            &c.policy,
            a("10.0.0.9"),
            4444,
            a("198.51.100.1"),
            5555,
            Timestamp(3),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].evidence["reason"], json!(["answered_syn_before"]));
    }

    #[test]
    fn inbound_to_unpublished_port() {
        let (d, c) = detector();
        let mut out = Vec::new();
        d.on_handshake(
            &c.policy,
            a("203.0.113.40"),
            a("10.0.0.20"),
            22,
            (100, 200),
            Timestamp(0),
            Timestamp(5),
            &mut out,
        );
        d.on_handshake(
            &c.policy,
            a("203.0.113.40"),
            a("10.0.0.20"),
            8000,
            (1, 1),
            Timestamp(0),
            Timestamp(5),
            &mut out,
        );
        d.on_handshake(
            &c.policy,
            a("10.0.0.5"),
            a("10.0.0.20"),
            22,
            (1, 1),
            Timestamp(0),
            Timestamp(5),
            &mut out,
        );
        assert_eq!(out.len(), 2, "internal sessions are not inbound");
        assert_eq!((out[0].severity, out[1].severity), (1, 2));
    }

    /// A client whose ephemeral port happens to be a well-known port of
    /// 1024 and up (Windows XP: 1025-5000) talking to a server port is a
    /// client; the same port to a client port, or a port below 1024, or a
    /// published or learned port, is a reversed role. IPv4 and IPv6.
    #[test]
    fn ephemeral_ports_that_look_like_server_ports() {
        let (d, c) = detector();
        let mut out = Vec::new();
        for (src, sport, dst, dport) in [
            ("10.77.8.60", 1433, "198.51.100.159", 80),
            ("10.77.8.60", 3389, "198.51.100.159", 443),
            ("fd00:77::60", 1080, "2001:db8::80", 8080),
        ] {
            d.on_syn_t(
                &c.policy,
                a(src),
                sport,
                a(dst),
                dport,
                Timestamp(1),
                &mut out,
            );
        }
        assert!(out.is_empty(), "{out:?}");
        d.on_syn_t(
            &c.policy,
            a("172.16.9.9"),
            1521,
            a("198.51.100.144"),
            6000,
            Timestamp(2),
            &mut out,
        );
        d.on_syn_t(
            &c.policy,
            a("fd00::53"),
            53,
            a("2001:db8::1"),
            443,
            Timestamp(3),
            &mut out,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].evidence["reason"], json!(["well_known_server_port"]));
        // Once the host was seen answering on 3306, a SYN from it to 443 is reversed.
        d.on_synack(a("10.77.8.61"), 3306, Timestamp(4));
        d.on_syn_t(
            &c.policy,
            a("10.77.8.61"),
            3306,
            a("198.51.100.1"),
            443,
            Timestamp(5),
            &mut out,
        );
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].evidence["reason"], json!(["answered_syn_before"]));
    }

    /// Passive FTP data connections to a published FTP server, and active
    /// ones back to an inside client, are not unexpected inbound sessions.
    #[test]
    fn ftp_data_connections_are_related_to_their_control_session() {
        let c = Config::parse(
            "[[hosts]]\naddr = \"172.16.5.21\"\nservices = [\"tcp/21\"]\n",
            "t.toml",
        )
        .unwrap();
        let ftp = Arc::new(FtpSessions::new(
            100,
            usize::MAX,
            crate::time::Micros::from_secs(3600),
        ));
        let d = RoleDetector::new(&c.detect).with_ports(&c).with_ftp(ftp);
        let mut out = Vec::new();
        let hs = |client: &str, server: &str, port: u16, t: u64, out: &mut Vec<Alert>| {
            d.on_handshake(
                &c.policy,
                a(client),
                a(server),
                port,
                (1, 1),
                Timestamp(t),
                Timestamp(t),
                out,
            );
        };
        // Before any control session a high port is unexpected.
        hs("192.0.2.97", "172.16.5.21", 50000, 1, &mut out);
        assert_eq!(out.len(), 1);
        hs("192.0.2.98", "172.16.5.21", 21, 2, &mut out);
        hs("192.0.2.98", "172.16.5.21", 50001, 3, &mut out);
        hs("192.0.2.98", "172.16.5.21", 50002, 4, &mut out);
        // Active mode: the outside server connects back to the inside client.
        hs("10.77.8.15", "198.51.100.153", 21, 5, &mut out);
        hs("198.51.100.153", "10.77.8.15", 40123, 6, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        // Not a data port: still unexpected.
        hs("192.0.2.98", "172.16.5.21", 22, 7, &mut out);
        assert_eq!(out.len(), 2);
    }
}
