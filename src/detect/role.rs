//! `reversed_role` (a host's server port opens a connection),
//! `unexpected_inbound` (the outside completes a handshake with a home host
//! on a port it does not publish) and `callback` (a home host opens a
//! connection to an outside client it has just served).
//!
//! A port is a server port of a host when the policy says the host publishes
//! it, when the host was seen answering a SYN on it (SYN-ACK), or when it is
//! in `detect.server_ports` (well-known service ports) and the host is a
//! home host.
//!
//! A callback is what an exploited server does next: the attacker's session
//! in, then the server's own connection out to the attacker (a reverse
//! shell, a payload download), from an ephemeral port, so that
//! `reversed_role` does not see it. Servers connecting back to their
//! clients for a living are the exceptions: ident (tcp/113,
//! `detect.callback.exceptions`), FTP active data (a related connection of
//! a control session), and peers that serve each other the same service
//! (mail servers, DNS, SIP: the connection back goes to the port the client
//! came in on).

use std::sync::Arc;

use serde_json::json;

use super::bounded::{BoundedMap, Expiring, Recent, Usage};
use super::related::FtpSessions;
use super::{Alert, Endpoint, Kind, Reported, ts};
use crate::config::{CallbackConfig, Config, ReversedRoleConfig, UnexpectedInboundConfig};
use crate::decode::{Addr, PROTO_TCP};
use crate::policy::{Direction, Policy, ServiceSet};

/// Source ports a client binds to prove it runs as root (`rresvport`:
/// 512-1023; Linux's NFS client 665-1023, LPD 721-731).
const RESERVED_CLIENT_PORTS: std::ops::RangeInclusive<u16> = 512..=1023;
/// rpcbind (portmapper): where an RPC client asks a server for the port of
/// a program (mountd, lockd, statd) before it connects to it.
pub const RPCBIND: u16 = 111;
/// rexec and rsh: their server connects back to a reserved port the
/// client names, from a reserved port, for the command's stderr.
const RSH_SERVICES: [u16; 2] = [512, 514];
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

/// A home host and an outside client it served: the last inbound sessions,
/// and the connections back to the client since.
#[derive(Debug)]
struct Served {
    /// The last sessions in, newest first (they may be reported slightly
    /// out of packet order: a live capture's interfaces each have their
    /// capture thread): a connection back whose SYN was processed before
    /// the session it follows is judged when it ends, by then maybe after
    /// later sessions.
    sessions: Recent<(u16, bool), SESSIONS_KEPT>,
    /// Connections back (SYNs) and the distinct ports they went to (as
    /// seen one after another).
    back: Option<Timestamp>,
    syns: u64,
    ports: u64,
    last_port: u16,
    last_seen: Timestamp,
    reported: Reported,
}

/// An inbound session's handshake: when it completed, the server port,
/// and whether the host publishes that port.
type Session = (Timestamp, u16, bool);

/// Sessions a [`Served`] keeps.
const SESSIONS_KEPT: usize = 4;

impl Served {
    fn new(now: Timestamp) -> Self {
        Served {
            sessions: Recent::default(),
            back: None,
            syns: 0,
            ports: 0,
            last_port: 0,
            last_seen: now,
            reported: Reported::default(),
        }
    }

    /// The last session that completed at or before `t`.
    fn before(&self, t: Timestamp) -> Option<Session> {
        self.sessions
            .before(t)
            .map(|(at, (port, published))| (at, port, published))
    }
}

impl Expiring for Served {
    fn last_seen(&self) -> Timestamp {
        self.last_seen
    }
}

pub struct RoleDetector {
    learned: BoundedMap<(Addr, u16), Seen>,
    reversed: BoundedMap<(Addr, u16), Incident>,
    inbound: BoundedMap<(Addr, Addr, u16), Incident>,
    /// (home host, outside client) of inbound sessions.
    served: BoundedMap<(Addr, Addr), Served>,
    /// (a, b): a's SYNs to b from a reserved port are a client's (kept
    /// `learned_ttl`). b's rpcbind answered a; or b has an rsh/rexec
    /// session to a, which a connects back to for its stderr.
    reserved_peers: BoundedMap<(Addr, Addr), Seen>,
    rr: ReversedRoleConfig,
    ui: UnexpectedInboundConfig,
    cb: CallbackConfig,
    server_ports: ServiceSet,
    exceptions: ServiceSet,
    reserved_port_clients: ServiceSet,
    cb_exceptions: ServiceSet,
    ftp: Option<Arc<FtpSessions>>,
}

impl RoleDetector {
    pub fn new(cfg: &crate::config::DetectConfig) -> Self {
        RoleDetector {
            learned: BoundedMap::tracker(cfg, cfg.reversed_role.learned_ttl.0),
            reversed: BoundedMap::tracker(cfg, cfg.reversed_role.window.0),
            inbound: BoundedMap::tracker(cfg, cfg.unexpected_inbound.window.0),
            served: BoundedMap::tracker(cfg, cfg.callback.window.0),
            reserved_peers: BoundedMap::tracker(cfg, cfg.reversed_role.learned_ttl.0),
            rr: cfg.reversed_role.clone(),
            ui: cfg.unexpected_inbound.clone(),
            cb: cfg.callback.clone(),
            server_ports: ServiceSet::default(),
            exceptions: ServiceSet::default(),
            reserved_port_clients: ServiceSet::default(),
            cb_exceptions: ServiceSet::default(),
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
        self.reserved_port_clients = config.reserved_port_clients.clone();
        self.cb_exceptions = config.callback_exceptions.clone();
        self
    }

    pub fn sweep(&self, now: Timestamp) {
        self.learned.sweep(now);
        self.reversed.sweep(now);
        self.inbound.sweep(now);
        self.served.sweep(now);
        self.reserved_peers.sweep(now);
    }

    pub fn usage(&self) -> Usage {
        self.learned.usage()
            + self.reversed.usage()
            + self.inbound.usage()
            + self.served.usage()
            + self.reserved_peers.usage()
    }

    /// `server:port` answered a SYN from `client`. A connection that may
    /// be FTP data of the pair is no service of the host's: its port is not
    /// learned (active FTP has a client answer on an ephemeral port that
    /// its own connections reuse later). Nor is the reserved port an rsh
    /// or rexec client answers its server's stderr connection on (the
    /// client's next connections, NFS or rsh, reuse it).
    pub fn on_synack(&self, server: Addr, port: u16, client: Addr, now: Timestamp) {
        if port == RPCBIND {
            self.on_rpcbind_answer(client, server, now);
        }
        if RSH_SERVICES.contains(&port) {
            // The server connects back for the session's stderr.
            self.note_reserved_peer(server, client, now);
        }
        if self.rr.enabled
            && !self
                .ftp
                .as_ref()
                .is_some_and(|f| f.is_data(client, server, port))
            && !(RESERVED_CLIENT_PORTS.contains(&port) && self.is_reserved_peer(&client, &server))
        {
            self.learned
                .update(&(server, port), now, || Seen(now), |s| s.0 = now);
        }
    }

    /// `server`'s rpcbind answered `client` (a SYN-ACK, or a UDP reply,
    /// from port 111). The client's connections to the ports it was handed
    /// (mountd, lockd, statd: pinned or random, on no list) come from a
    /// reserved port too, as an RPC client running as root binds one.
    pub fn on_rpcbind_answer(&self, client: Addr, server: Addr, now: Timestamp) {
        self.note_reserved_peer(client, server, now);
    }

    /// `from`'s connections to `to` from reserved ports are a client's.
    fn note_reserved_peer(&self, from: Addr, to: Addr, now: Timestamp) {
        if self.rr.enabled {
            self.reserved_peers
                .update(&(from, to), now, || Seen(now), |s| s.0 = now);
        }
    }

    fn is_reserved_peer(&self, from: &Addr, to: &Addr) -> bool {
        self.reserved_peers
            .with_existing(&(*from, *to), |_| ())
            .is_some()
    }

    /// Whether a SYN from `host`'s reserved `port` to `peer:dport` is a
    /// client's: to a service whose clients bind a reserved port, to a
    /// server whose rpcbind answered `host`, or to the client of an rsh or
    /// rexec session on `host`.
    fn reserved_port_client(&self, host: &Addr, port: u16, peer: &Addr, dport: u16) -> bool {
        RESERVED_CLIENT_PORTS.contains(&port)
            && (self.reserved_port_clients.contains(PROTO_TCP, dport)
                || self.is_reserved_peer(host, peer))
    }

    /// Why `port` is a server port of `host`, if it is. `scanning`: the
    /// host is probing many ports or hosts, so its SYNs are probes.
    /// `peer:dport`: the destination of the SYN.
    fn server_port_reason(
        &self,
        policy: &Policy,
        host: &Addr,
        port: u16,
        (peer, dport): (&Addr, u16),
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
            && !self.reserved_port_client(host, port, peer, dport)
        {
            // Only for home hosts that are not scanning: outside tools
            // (hping3, nmap -g) and scanners cycling through source ports send
            // from any port, and that alone says nothing about the host.
            // A well-known port of 1024 and up is also an ephemeral port of
            // some systems (Windows XP took 1025-5000, which holds 1080,
            // 1433, 3306, 3389...): from it to another server port the host
            // is a client; only an unprivileged port the host neither
            // published nor answered on, talking to a client port, is
            // evidence. Nor is a reserved port (BSD `rresvport`, the
            // kernel's NFS client, libtirpc as root) to a service whose
            // clients bind one, or to an RPC server the host asked for a
            // port.
            Some("well_known_server_port")
        } else {
            None
        }
    }

    /// A SYN without ACK from `src:sport` to `dst:dport`. Returns whether
    /// it was counted as a callback.
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
    ) -> bool {
        let called_back = self.on_connection_out(policy, src, dst, dport, now, now, out);
        if !self.rr.enabled || self.exceptions.contains(PROTO_TCP, sport) {
            return called_back;
        }
        let Some(reason) = self.server_port_reason(policy, &src, sport, (&dst, dport), scanning)
        else {
            return called_back;
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
        called_back
    }

    /// A connection attempt (a SYN at `at`, seen at `now`) from `src` to
    /// `dst:dport`: a callback when `src` is a home host that served `dst`
    /// (an outside client) within the window before it, on another port
    /// than the one `dst` came in on. Returns whether it was counted.
    ///
    /// Judged at the SYN ([`RoleDetector::on_syn`]), and again when a
    /// connection whose SYN was not counted ends: the session in may have
    /// been processed after the SYN (frames of one pair captured on two
    /// interfaces); packet times decide. An FTP data connection (a port the
    /// control session between the two negotiated) is none.
    #[allow(clippy::too_many_arguments)]
    pub fn on_connection_out(
        &self,
        policy: &Policy,
        src: Addr,
        dst: Addr,
        dport: u16,
        at: Timestamp,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) -> bool {
        // Cheapest first: most SYNs go out to hosts that never came in.
        if !self.cb.enabled
            || self.served.is_empty()
            || self.cb_exceptions.contains(PROTO_TCP, dport)
            || policy.direction(&src, &dst) != Direction::Outbound
        {
            return false;
        }
        let window = self.cb.window.0;
        self.served
            .with_existing(&(src, dst), |s| {
                let Some((served_at, served_port, published)) = s.before(at) else {
                    return false;
                };
                if served_port == dport
                    || at.since(served_at) > window
                    || self
                        .ftp
                        .as_ref()
                        .is_some_and(|f| f.negotiated(src, dst, dport))
                {
                    return false;
                }
                let first = *s.back.get_or_insert(at);
                s.syns += 1;
                if s.last_port != dport || s.ports == 0 {
                    s.ports += 1;
                    s.last_port = dport;
                }
                s.last_seen = s.last_seen.max(now);
                if !s.reported.due(now, window, s.syns) {
                    return true;
                }
                s.reported.mark(now, s.syns);
                // An unexpected session in, or a way out to a port no service
                // uses (a reverse shell's listener), is the compromise pattern;
                // a published server calling a client's web or mail port back
                // may be business (webhooks).
                let severity = if !published || !self.server_ports.contains(PROTO_TCP, dport) {
                    1
                } else {
                    2
                };
                out.push(
                    Alert::new(
                        Kind::Callback,
                        severity,
                        Endpoint::host(src),
                        Endpoint::service(dst, dport),
                    )
                    .with("direction", json!(["outbound"]))
                    .with("served_port", served_port)
                    .with("served_port_published", published)
                    .with("served_at", ts(served_at))
                    .with("seconds_after_session", at.since(served_at).0 as f64 / 1e6)
                    .with("syns", s.syns)
                    .with("ports", s.ports)
                    .with("first_seen", ts(first)),
                );
                true
            })
            .unwrap_or(false)
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
        if policy.direction(&client, &server) != Direction::Inbound {
            return;
        }
        let published = policy.publishes(&server, PROTO_TCP, port);
        if self.cb.enabled {
            let served = |s: &mut Served| {
                s.sessions.note(now, (port, published));
                s.last_seen = s.last_seen.max(now);
            };
            self.served
                .update(&(server, client), now, || Served::new(now), served);
        }
        if !self.ui.enabled
            || published
            || self
                .ftp
                .as_ref()
                .is_some_and(|f| f.negotiated(client, server, port))
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
        d.on_synack(a("10.0.0.7"), 4444, a("10.0.0.8"), Timestamp(1));
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

    /// A detector that knows FTP control sessions, with `addr` publishing
    /// tcp/21.
    fn ftp_server_detector(addr: &str) -> (RoleDetector, Config) {
        let c = Config::parse(
            &format!("[[hosts]]\naddr = \"{addr}\"\nservices = [\"tcp/21\"]\n"),
            "t.toml",
        )
        .unwrap();
        let d = RoleDetector::new(&c.detect)
            .with_ports(&c)
            .with_ftp(FtpSessions::for_tests());
        (d, c)
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
        d.on_synack(a("10.0.0.9"), 4444, a("10.0.0.8"), Timestamp(2));
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

    /// Clients that bind a reserved port (NFS, rsh, rlogin, LPD, mountd)
    /// are clients; a reserved port to another service, a port below 512,
    /// or a reserved port the host answered on, is still a reversed role.
    #[test]
    fn reserved_port_clients_of_the_services_that_want_them() {
        let (d, c) = detector();
        let mut out = Vec::new();
        let syn = |src: &str, sport: u16, dst: &str, dport: u16, out: &mut Vec<Alert>| {
            d.on_syn_t(&c.policy, a(src), sport, a(dst), dport, Timestamp(1), out);
        };
        for (src, sport, dst, dport) in [
            ("10.0.0.5", 1021, "10.0.0.9", 2049),
            ("10.0.0.5", 1022, "10.0.0.10", 514),
            ("10.0.0.5", 721, "10.0.0.11", 515),
            ("10.0.0.6", 1023, "198.51.100.20", 513),
            ("fd00::5", 665, "fd00::9", 20048),
            ("10.0.0.5", 900, "10.0.0.9", 111),
        ] {
            syn(src, sport, dst, dport, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        syn("10.0.0.7", 993, "198.51.100.20", 443, &mut out);
        syn("10.0.0.7", 443, "10.0.0.9", 2049, &mut out);
        syn("10.0.0.7", 511, "10.0.0.9", 2049, &mut out);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(
            out.iter()
                .all(|x| x.evidence["reason"] == json!(["well_known_server_port"]))
        );
        out.clear();
        d.on_synack(a("10.0.0.8"), 1021, a("10.0.0.99"), Timestamp(1));
        syn("10.0.0.8", 1021, "10.0.0.9", 2049, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].evidence["reason"], json!(["answered_syn_before"]));
    }

    /// A host that rpcbind answered connects from reserved ports to the
    /// ports it was handed (statd on 662, lockd on 32803): a client. Only
    /// to that server, only from a reserved port, and only once rpcbind
    /// answered (a SYN to port 111 alone says nothing).
    #[test]
    fn reserved_port_clients_of_the_rpc_server_that_answered() {
        let (d, c) = detector();
        let mut out = Vec::new();
        let syn = |sport: u16, dst: &str, dport: u16, out: &mut Vec<Alert>| {
            d.on_syn_t(
                &c.policy,
                a("10.0.0.5"),
                sport,
                a(dst),
                dport,
                Timestamp(2),
                out,
            );
        };
        // Its SYN to rpcbind, unanswered so far.
        syn(901, "10.0.0.9", RPCBIND, &mut out);
        syn(700, "10.0.0.9", 662, &mut out);
        assert_eq!(out.len(), 1, "before rpcbind answered: {out:?}");
        out.clear();
        d.on_synack(a("10.0.0.9"), RPCBIND, a("10.0.0.5"), Timestamp(1));
        d.on_rpcbind_answer(a("10.0.0.5"), a("fd00::9"), Timestamp(1));
        syn(701, "10.0.0.9", 662, &mut out);
        syn(702, "10.0.0.9", 32803, &mut out);
        syn(703, "fd00::9", 892, &mut out);
        assert!(out.is_empty(), "{out:?}");
        // Another server; a port below the reserved range.
        syn(704, "10.0.0.10", 662, &mut out);
        syn(443, "10.0.0.9", 32803, &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        // The answer is kept `learned_ttl`.
        out.clear();
        let later = Timestamp(1).saturating_add(c.detect.reversed_role.learned_ttl.0);
        d.sweep(later.saturating_add(crate::time::Micros(1)));
        d.on_syn_t(
            &c.policy,
            a("10.0.0.5"),
            705,
            a("10.0.0.9"),
            662,
            later.saturating_add(crate::time::Micros(2)),
            &mut out,
        );
        assert_eq!(out.len(), 1, "{out:?}");
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
        d.on_synack(a("10.77.8.61"), 3306, a("10.0.0.8"), Timestamp(4));
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

    /// An outside client's session in, then the home host's own connection
    /// out to that client: a callback, once per window, severity 1 when the
    /// session in was to an unpublished port or the way out goes to a port
    /// no service uses. Not: back to the port the client came in on
    /// (peers), ident, after the window, to another outside host, from a
    /// host that was never connected to, or inside the home network.
    #[test]
    fn connections_back_to_a_client_just_served() {
        let c = Config::parse(
            "[[hosts]]\naddr = [\"10.0.0.10\", \"fd00::10\"]\nservices = [\"tcp/443\", \"tcp/25\"]\n",
            "t.toml",
        )
        .unwrap();
        let d = RoleDetector::new(&c.detect).with_ports(&c);
        let mut out = Vec::new();
        let secs = |s: u64| Timestamp(s * 1_000_000);
        let hs = |client: &str, server: &str, port: u16, t: Timestamp, out: &mut Vec<Alert>| {
            d.on_handshake(&c.policy, a(client), a(server), port, (1, 1), t, t, out);
        };
        let syn = |src: &str, dst: &str, dport: u16, t: Timestamp, out: &mut Vec<Alert>| {
            d.on_syn(&c.policy, a(src), 40000, a(dst), dport, false, t, out);
        };
        // No session in yet: an ordinary client connection.
        syn("10.0.0.10", "203.0.113.9", 4444, secs(1), &mut out);
        assert!(out.is_empty(), "{out:?}");
        // The web server serves 203.0.113.9 on its published 443...
        hs("203.0.113.9", "10.0.0.10", 443, secs(10), &mut out);
        // ... and 30 s later calls it back on 4444, twice, then 8080.
        syn("10.0.0.10", "203.0.113.9", 4444, secs(40), &mut out);
        syn("10.0.0.10", "203.0.113.9", 4444, secs(41), &mut out);
        syn("10.0.0.10", "203.0.113.9", 8080, secs(42), &mut out);
        assert_eq!(out.len(), 1, "one incident per window: {out:?}");
        let cb = &out[0];
        assert_eq!(cb.kind(), Some(Kind::Callback));
        assert_eq!(cb.severity, 1, "4444 is no service's port");
        assert_eq!(cb.source, Endpoint::host(a("10.0.0.10")));
        assert_eq!(cb.target, Endpoint::service(a("203.0.113.9"), 4444));
        assert_eq!(cb.evidence["served_port"], json!(443));
        assert_eq!(cb.evidence["served_port_published"], json!(true));
        assert_eq!(cb.evidence["seconds_after_session"], json!(30.0));
        // Reported again one window (10 min) after the first report, with
        // the counts of every connection back since the session.
        hs("203.0.113.9", "10.0.0.10", 443, secs(500), &mut out);
        syn("10.0.0.10", "203.0.113.9", 4444, secs(641), &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[1].evidence["syns"], json!(4));
        assert_eq!(out[1].evidence["ports"], json!(3));

        // A published server calling a client's web port back: severity 2.
        hs("198.51.100.7", "10.0.0.10", 443, secs(1000), &mut out);
        syn("10.0.0.10", "198.51.100.7", 443, secs(1001), &mut out);
        assert_eq!(out.len(), 2, "back to the port the client came in on");
        syn("10.0.0.10", "198.51.100.7", 80, secs(1002), &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].severity, 2);

        // Not callbacks: ident; mail peers; another outside host; after
        // the window; internal clients; a home host that was never served.
        hs("198.51.100.8", "10.0.0.10", 443, secs(2000), &mut out);
        syn("10.0.0.10", "198.51.100.8", 113, secs(2001), &mut out);
        hs("198.51.100.25", "10.0.0.10", 25, secs(2000), &mut out);
        syn("10.0.0.10", "198.51.100.25", 25, secs(2002), &mut out);
        syn("10.0.0.10", "198.51.100.99", 4444, secs(2003), &mut out);
        syn(
            "10.0.0.10",
            "198.51.100.8",
            4444,
            secs(2000 + 601),
            &mut out,
        );
        hs("10.0.0.77", "10.0.0.10", 443, secs(3000), &mut out);
        syn("10.0.0.10", "10.0.0.77", 4444, secs(3001), &mut out);
        syn("10.0.0.11", "198.51.100.25", 4444, secs(3002), &mut out);
        assert_eq!(out.len(), 3, "{out:?}");

        // IPv6, and a session in to an unpublished port: severity 1 even
        // back to a web port.
        hs("2001:db8::9", "fd00::10", 8000, secs(4000), &mut out);
        assert_eq!(out.len(), 4, "the session in is itself unexpected");
        syn("fd00::10", "2001:db8::9", 443, secs(4005), &mut out);
        assert_eq!(out.len(), 5);
        assert_eq!(out[4].kind(), Some(Kind::Callback));
        assert_eq!(out[4].severity, 1);
        assert_eq!(out[4].evidence["served_port_published"], json!(false));
    }

    /// A SYN back can be processed before the session in that it follows
    /// (the two directions captured on two interfaces, each with its
    /// capture thread): nothing then, and the connection is judged by
    /// packet times when it ends.
    #[test]
    fn a_callback_processed_before_its_session_is_found_when_it_ends() {
        let (d, c) = detector();
        let mut out = Vec::new();
        let secs = |s: u64| Timestamp(s * 1_000_000);
        let (h, x) = (a("10.0.0.10"), a("203.0.113.9"));
        let counted = d.on_syn(&c.policy, h, 40000, x, 4444, false, secs(10), &mut out);
        assert!(!counted && out.is_empty());
        // The session in, 1 s before the SYN back (an unexpected one).
        d.on_handshake(&c.policy, x, h, 8080, (1, 1), secs(9), secs(9), &mut out);
        assert_eq!(out.len(), 1);
        // A connection that started before the session in is no callback.
        d.on_connection_out(&c.policy, h, x, 4444, secs(8), secs(20), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        d.on_connection_out(&c.policy, h, x, 4444, secs(10), secs(20), &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[1].kind(), Some(Kind::Callback));
        assert_eq!(out[1].evidence["seconds_after_session"], json!(1.0));
        assert_eq!(out[1].evidence["first_seen"], ts(secs(10)));
        // A SYN counted as it came is marked so (its flow's end skips it).
        assert!(d.on_syn(&c.policy, h, 40001, x, 4445, false, secs(11), &mut out));
        assert_eq!(out.len(), 2, "once per window");
    }

    /// A callback judged when it ends, after later sessions in from the
    /// same client (by then the last one): the session it follows is
    /// still known, and named.
    #[test]
    fn a_callback_judged_at_its_end_finds_its_session_before_later_ones() {
        let (d, c) = detector();
        let mut out = Vec::new();
        let secs = |s: u64| Timestamp(s * 1_000_000);
        let (h, x) = (a("10.0.0.10"), a("203.0.113.9"));
        for (port, at) in [(445, 5), (1957, 9), (1080, 30), (1081, 31)] {
            d.on_handshake(&c.policy, x, h, port, (1, 1), secs(at), secs(at), &mut out);
        }
        // The first session, processed last.
        d.on_handshake(&c.policy, x, h, 139, (1, 1), secs(2), secs(2), &mut out);
        out.clear();
        d.on_connection_out(&c.policy, h, x, 8884, secs(12), secs(40), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].kind(), Some(Kind::Callback));
        assert_eq!(out[0].evidence["served_port"], json!(1957));
        assert_eq!(out[0].evidence["seconds_after_session"], json!(3.0));
        // Before every session kept: none it follows.
        let (y, z) = (a("203.0.113.10"), a("10.0.0.11"));
        for at in [5, 6, 7, 8, 9] {
            d.on_handshake(
                &c.policy,
                y,
                z,
                8000 + at as u16,
                (1, 1),
                secs(at),
                secs(at),
                &mut out,
            );
        }
        out.clear();
        d.on_connection_out(&c.policy, z, y, 4444, secs(5), secs(40), &mut out);
        assert!(out.is_empty(), "{out:?}");
    }

    /// An active FTP data connection goes from the server back to its
    /// client: related to the control session, not a callback.
    #[test]
    fn active_ftp_data_is_not_a_callback() {
        let (d, c) = ftp_server_detector("10.0.0.21");
        let mut out = Vec::new();
        let (server, client) = (a("10.0.0.21"), a("192.0.2.50"));
        d.on_handshake(
            &c.policy,
            client,
            server,
            21,
            (1, 1),
            Timestamp(0),
            Timestamp(1),
            &mut out,
        );
        let port = b"PORT 192,0,2,50,156,187\r\n";
        let ftp = d.ftp.as_ref().unwrap();
        ftp.on_control(client, server, true, port, port.len() as u32, Timestamp(0));
        d.on_syn(
            &c.policy,
            server,
            20,
            client,
            40123,
            false,
            Timestamp(2),
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        d.on_connection_out(
            &c.policy,
            server,
            client,
            40123,
            Timestamp(2),
            Timestamp(9),
            &mut out,
        );
        assert!(out.is_empty(), "negotiated, at its end too: {out:?}");
        // A port the session did not negotiate (a reverse shell's) is a
        // callback at its SYN.
        let counted = d.on_syn(
            &c.policy,
            server,
            45000,
            client,
            4444,
            false,
            Timestamp(2),
            &mut out,
        );
        assert!(counted, "{out:?}");
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].kind(), Some(Kind::Callback));
        out.clear();
        // Without the control session on 21 the same SYN would be one.
        d.on_handshake(
            &c.policy,
            a("192.0.2.51"),
            server,
            22,
            (1, 1),
            Timestamp(0),
            Timestamp(3),
            &mut out,
        );
        d.on_syn(
            &c.policy,
            server,
            20,
            a("192.0.2.51"),
            40123,
            false,
            Timestamp(4),
            &mut out,
        );
        let kinds: Vec<_> = out.iter().map(|x| x.kind()).collect();
        assert_eq!(kinds, [Some(Kind::UnexpectedInbound), Some(Kind::Callback)]);
    }

    /// An inside FTP client in active mode answers the data connection on
    /// an ephemeral port; when the system reuses that port for a
    /// connection of its own, it is no reversed role.
    #[test]
    fn an_active_ftp_data_port_is_not_learned_as_a_service() {
        let (d, c) = ftp_server_detector("172.16.5.21");
        let mut out = Vec::new();
        let (ws, srv) = (a("10.0.0.8"), a("198.51.100.153"));
        d.on_handshake(
            &c.policy,
            ws,
            srv,
            21,
            (1, 1),
            Timestamp(0),
            Timestamp(1),
            &mut out,
        );
        let port = b"PORT 10,0,0,8,195,203\r\n";
        let ftp = d.ftp.as_ref().unwrap();
        ftp.on_control(ws, srv, true, port, port.len() as u32, Timestamp(0));
        d.on_synack(ws, 50123, srv, Timestamp(2));
        let later = Timestamp(1_200_000_000);
        d.on_syn_t(
            &c.policy,
            ws,
            50123,
            a("203.0.113.34"),
            443,
            later,
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        // A port it answered for a host it has no FTP session with is
        // learned.
        d.on_synack(ws, 50124, a("198.51.100.200"), Timestamp(3));
        d.on_syn_t(
            &c.policy,
            ws,
            50124,
            a("203.0.113.34"),
            443,
            later,
            &mut out,
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].evidence["reason"], json!(["answered_syn_before"]));
    }

    /// Passive FTP data connections to a published FTP server, and active
    /// ones back to an inside client, are not unexpected inbound sessions.
    #[test]
    fn ftp_data_connections_are_related_to_their_control_session() {
        let (d, c) = ftp_server_detector("172.16.5.21");
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
        let ftp = d.ftp.as_ref().unwrap();
        let control = |client: &str, server: &str, from_client: bool, text: &[u8]| {
            ftp.on_control(
                a(client),
                a(server),
                from_client,
                text,
                text.len() as u32,
                Timestamp(0),
            );
        };
        hs("192.0.2.98", "172.16.5.21", 21, 2, &mut out);
        control(
            "192.0.2.98",
            "172.16.5.21",
            false,
            b"227 Entering Passive Mode (172,16,5,21,195,81)\r\n",
        );
        hs("192.0.2.98", "172.16.5.21", 50001, 3, &mut out);
        control(
            "192.0.2.98",
            "172.16.5.21",
            false,
            b"229 Entering Extended Passive Mode (|||50002|)\r\n",
        );
        hs("192.0.2.98", "172.16.5.21", 50002, 4, &mut out);
        // Active mode: the outside server connects back to the inside client.
        hs("10.77.8.15", "198.51.100.153", 21, 5, &mut out);
        control(
            "10.77.8.15",
            "198.51.100.153",
            true,
            b"PORT 10,77,8,15,156,187\r\n",
        );
        hs("198.51.100.153", "10.77.8.15", 40123, 6, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        // Not a data port: still unexpected.
        hs("192.0.2.98", "172.16.5.21", 22, 7, &mut out);
        assert_eq!(out.len(), 2);
        // A high port the session did not negotiate: a backdoor opened
        // through the FTP server (vsftpd 2.3.4's on 6200).
        hs("192.0.2.98", "172.16.5.21", 6200, 8, &mut out);
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[2].kind(), Some(Kind::UnexpectedInbound));
    }
}
