//! `egress_violation` (a home host connects out to a service its role does
//! not allow) and `outbound_smtp` (a home host that is not a mail server
//! connects to an external tcp/25). A TCP connection counts once its
//! handshake completes: a scanner's unanswered SYN to port 25 is a probe,
//! not mail.

use std::sync::Arc;

use serde_json::json;

use super::bounded::{BoundedMap, Expiring, Usage};
use super::related::FtpSessions;
use super::{Alert, Endpoint, Kind, Reported, ts};
use crate::config::WindowedConfig;
use crate::decode::{Addr, PROTO_TCP, PROTO_UDP};
use crate::policy::{Direction, Policy};
use crate::time::Timestamp;

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

pub struct EgressDetector {
    egress: BoundedMap<(Addr, Addr, u8, u16), Incident>,
    smtp: BoundedMap<Addr, Incident>,
    eg: WindowedConfig,
    sm: WindowedConfig,
    ftp: Option<Arc<FtpSessions>>,
}

fn proto_name(p: u8) -> &'static str {
    if p == PROTO_UDP { "udp" } else { "tcp" }
}

impl EgressDetector {
    pub fn new(cfg: &crate::config::DetectConfig) -> Self {
        EgressDetector {
            egress: BoundedMap::tracker(cfg, cfg.egress_violation.window.0),
            smtp: BoundedMap::tracker(cfg, cfg.outbound_smtp.window.0),
            eg: cfg.egress_violation.clone(),
            sm: cfg.outbound_smtp.clone(),
            ftp: None,
        }
    }

    /// Shares the FTP control sessions: the data connections of an allowed
    /// control connection are allowed too.
    pub fn with_ftp(mut self, ftp: Arc<FtpSessions>) -> Self {
        self.ftp = Some(ftp);
        self
    }

    pub fn sweep(&self, now: Timestamp) {
        self.egress.sweep(now);
        self.smtp.sweep(now);
    }

    pub fn usage(&self) -> Usage {
        self.egress.usage() + self.smtp.usage()
    }

    /// `client` opened a connection (TCP handshake, or a UDP flow) to `server:port`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_open(
        &self,
        policy: &Policy,
        client: Addr,
        server: Addr,
        proto: u8,
        port: u16,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) {
        if !self.eg.enabled || policy.direction(&client, &server) != Direction::Outbound {
            return;
        }
        // SMTP out of a non-mail host has its own, more specific alert.
        if proto == PROTO_TCP && port == 25 && self.sm.enabled && !policy.sends_mail(&client) {
            return;
        }
        if policy.egress_allowed(&client, proto, port) != Some(false) {
            return;
        }
        // FTP data between the pair, on a port their control session
        // negotiated: the host may use FTP (passive mode: its data
        // connections go out to the server), or it is an FTP server
        // (active mode: it connects to the port its client named).
        let ftp = super::related::FTP_CONTROL;
        let ftp_data = proto == PROTO_TCP
            && (policy.egress_allowed(&client, PROTO_TCP, ftp) == Some(true)
                || policy.publishes(&client, PROTO_TCP, ftp))
            && self
                .ftp
                .as_ref()
                .is_some_and(|f| f.negotiated(client, server, port));
        if ftp_data {
            return;
        }
        self.egress.update(
            &(client, server, proto, port),
            now,
            || Incident::new(now),
            |s| {
                s.last_seen = now;
                s.count += 1;
                if s.reported.due(now, self.eg.window.0, s.count) {
                    s.reported.mark(now, s.count);
                    let role = policy.role(&client).unwrap_or("");
                    let nothing_allowed = policy
                        .roles
                        .get(role)
                        .is_some_and(|r| !r.egress.any && r.egress.ranges.is_empty());
                    out.push(
                        Alert::new(
                            Kind::EgressViolation,
                            if nothing_allowed { 1 } else { 2 },
                            Endpoint::host(client),
                            Endpoint::service(server, port),
                        )
                        .with("direction", json!(["outbound"]))
                        .with("role", json!([role]))
                        .with("service", json!([format!("{}/{port}", proto_name(proto))]))
                        .with("connections", s.count)
                        .with("first_seen", ts(s.first)),
                    );
                }
            },
        );
    }

    /// A completed handshake from `client` to `server:25`.
    pub fn on_smtp(
        &self,
        policy: &Policy,
        client: Addr,
        server: Addr,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) {
        if !self.sm.enabled
            || policy.direction(&client, &server) != Direction::Outbound
            || policy.sends_mail(&client)
        {
            return;
        }
        self.smtp.update(
            &client,
            now,
            || Incident::new(now),
            |s| {
                s.last_seen = now;
                s.count += 1;
                if s.last_peer != Some(server) {
                    s.peers += 1;
                    s.last_peer = Some(server);
                }
                if s.reported.due(now, self.sm.window.0, s.count) {
                    s.reported.mark(now, s.count);
                    out.push(
                        Alert::new(
                            Kind::OutboundSmtp,
                            if s.peers > 10 { 1 } else { 2 },
                            Endpoint::host(client),
                            Endpoint::service(server, 25),
                        )
                        .with("direction", json!(["outbound"]))
                        .with("role", json!([policy.role(&client).unwrap_or("")]))
                        .with("attempts", s.count)
                        .with("destinations", s.peers)
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
    use crate::config::Config;
    use crate::decode::a;
    use crate::detect::related::FtpSessions;

    fn config() -> Config {
        Config::parse(
            r#"
            [[hosts]]
            addr = ["10.0.0.30", "fd00::30"]
            role = "db"
            [[hosts]]
            addr = "10.0.1.0/24"
            role = "workstation"
            [roles.db]
            egress = []
            [roles.workstation]
            egress = ["web", "dns"]
            "#,
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn roles_decide_what_may_leave() {
        let c = config();
        let d = EgressDetector::new(&c.detect);
        let mut out = Vec::new();
        d.on_open(
            &c.policy,
            a("10.0.0.30"),
            a("198.51.100.1"),
            PROTO_TCP,
            443,
            Timestamp(0),
            &mut out,
        );
        d.on_open(
            &c.policy,
            a("10.0.0.30"),
            a("198.51.100.1"),
            PROTO_TCP,
            443,
            Timestamp(1),
            &mut out,
        );
        assert_eq!(
            out.len(),
            1,
            "once per (host, destination, service) per window"
        );
        assert_eq!(out[0].severity, 1, "a role with no egress at all");
        d.on_open(
            &c.policy,
            a("fd00::30"),
            a("2001:db8::1"),
            PROTO_UDP,
            53,
            Timestamp(2),
            &mut out,
        );
        assert_eq!(out.len(), 2, "IPv6 and UDP");
        // Allowed services, internal destinations and hosts without a role pass.
        d.on_open(
            &c.policy,
            a("10.0.1.7"),
            a("198.51.100.1"),
            PROTO_TCP,
            443,
            Timestamp(3),
            &mut out,
        );
        d.on_open(
            &c.policy,
            a("10.0.0.30"),
            a("10.0.0.31"),
            PROTO_TCP,
            5432,
            Timestamp(3),
            &mut out,
        );
        d.on_open(
            &c.policy,
            a("10.9.9.9"),
            a("198.51.100.1"),
            PROTO_TCP,
            6667,
            Timestamp(3),
            &mut out,
        );
        assert_eq!(out.len(), 2);
        d.on_open(
            &c.policy,
            a("10.0.1.7"),
            a("198.51.100.1"),
            PROTO_TCP,
            6667,
            Timestamp(4),
            &mut out,
        );
        assert_eq!((out.len(), out[2].severity), (3, 2));
    }

    #[test]
    fn smtp_from_anything_but_a_mail_server() {
        let c = config();
        let d = EgressDetector::new(&c.detect);
        let mut out = Vec::new();
        // Port 25 from a workstation is outbound_smtp, not also an egress violation.
        d.on_open(
            &c.policy,
            a("10.0.1.7"),
            a("198.51.100.25"),
            PROTO_TCP,
            25,
            Timestamp(0),
            &mut out,
        );
        assert!(out.is_empty());
        for i in 0..12u8 {
            d.on_smtp(
                &c.policy,
                a("10.9.9.9"),
                Addr::from([198, 51, 100, i]),
                Timestamp(u64::from(i)),
                &mut out,
            );
        }
        assert_eq!(
            out.len(),
            1,
            "hosts without a [[hosts]] entry too; one incident"
        );
        assert_eq!(out[0].kind(), Some(Kind::OutboundSmtp));
    }

    /// A role whose egress names tcp/25 sends mail: no outbound_smtp for it,
    /// and its port 25 is judged by its egress like any other service. A
    /// role with "any" is unrestricted, not a mail server.
    #[test]
    fn roles_allowed_smtp_are_mail_senders() {
        let c = Config::parse(
            r#"
            [[hosts]]
            addr = "10.0.0.40"
            role = "relay"
            [[hosts]]
            addr = "fd00::41"
            role = "ops"
            [roles.relay]
            egress = ["smtp"]
            [roles.ops]
            egress = ["any"]
            "#,
            "t.toml",
        )
        .unwrap();
        let d = EgressDetector::new(&c.detect);
        let mut out = Vec::new();
        d.on_smtp(
            &c.policy,
            a("10.0.0.40"),
            a("198.51.100.25"),
            Timestamp(0),
            &mut out,
        );
        d.on_open(
            &c.policy,
            a("10.0.0.40"),
            a("198.51.100.25"),
            PROTO_TCP,
            25,
            Timestamp(0),
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        d.on_smtp(
            &c.policy,
            a("fd00::41"),
            a("2001:db8::25"),
            Timestamp(1),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind(), Some(Kind::OutboundSmtp));
    }

    /// The data connections of an allowed FTP control connection are allowed.
    #[test]
    fn ftp_data_follows_an_allowed_control_connection() {
        let c = Config::parse(
            r#"
            [service_groups]
            ftp = ["tcp/21"]
            [[hosts]]
            addr = "10.77.8.0/24"
            role = "workstation"
            [[hosts]]
            addr = "10.77.9.30"
            role = "db"
            [roles.workstation]
            egress = ["web", "ftp"]
            [roles.db]
            egress = []
            "#,
            "t.toml",
        )
        .unwrap();
        let ftp = FtpSessions::for_tests();
        let d = EgressDetector::new(&c.detect).with_ftp(ftp.clone());
        let mut out = Vec::new();
        let (ws, db, srv) = (a("10.77.8.15"), a("10.77.9.30"), a("198.51.100.153"));
        ftp.on_handshake(ws, srv, 21, Timestamp(0));
        let pasv = b"227 Entering Passive Mode (198,51,100,153,234,97)\r\n";
        ftp.on_control(ws, srv, false, pasv, pasv.len() as u32, Timestamp(0));
        d.on_open(&c.policy, ws, srv, PROTO_TCP, 21, Timestamp(0), &mut out);
        d.on_open(&c.policy, ws, srv, PROTO_TCP, 60001, Timestamp(1), &mut out);
        assert!(out.is_empty(), "{out:?}");
        // A high port the session did not negotiate is no data connection.
        d.on_open(&c.policy, ws, srv, PROTO_TCP, 6667, Timestamp(1), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        out.clear();
        // Another server, or a role that may not use ftp at all, still alerts.
        d.on_open(
            &c.policy,
            ws,
            a("198.51.100.154"),
            PROTO_TCP,
            60001,
            Timestamp(2),
            &mut out,
        );
        ftp.on_handshake(db, srv, 21, Timestamp(3));
        let pasv = b"227 Entering Passive Mode (198,51,100,153,234,98)\r\n";
        ftp.on_control(db, srv, false, pasv, pasv.len() as u32, Timestamp(0));
        d.on_open(&c.policy, db, srv, PROTO_TCP, 60002, Timestamp(4), &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
    }

    /// An FTP server in active mode connects out to the port its client
    /// named (PORT, EPRT), whatever its role may open otherwise.
    #[test]
    fn active_ftp_data_of_a_published_ftp_server() {
        let c = Config::parse(
            r#"
            [[hosts]]
            addr = ["10.77.9.21", "fd00:77::21"]
            role = "ftpserver"
            services = ["tcp/21"]
            [[hosts]]
            addr = "10.77.9.30"
            role = "db"
            [roles.ftpserver]
            egress = ["udp/53"]
            [roles.db]
            egress = ["udp/53"]
            "#,
            "t.toml",
        )
        .unwrap();
        let ftp = FtpSessions::for_tests();
        let d = EgressDetector::new(&c.detect).with_ftp(ftp.clone());
        let mut out = Vec::new();
        let (srv, srv6, db) = (a("10.77.9.21"), a("fd00:77::21"), a("10.77.9.30"));
        let (cl, cl6) = (a("198.51.100.9"), a("2001:db8::9"));
        for (server, client, cmd) in [
            (srv, cl, &b"PORT 198,51,100,9,195,80\r\n"[..]),
            (srv6, cl6, &b"EPRT |2|2001:db8::9|50000|\r\n"[..]),
            (db, cl, &b"PORT 198,51,100,9,195,80\r\n"[..]),
        ] {
            ftp.on_handshake(client, server, 21, Timestamp(0));
            ftp.on_control(client, server, true, cmd, cmd.len() as u32, Timestamp(0));
        }
        d.on_open(&c.policy, srv, cl, PROTO_TCP, 50000, Timestamp(1), &mut out);
        d.on_open(
            &c.policy,
            srv6,
            cl6,
            PROTO_TCP,
            50000,
            Timestamp(1),
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        // A port the client did not name; a host that publishes no FTP.
        d.on_open(&c.policy, srv, cl, PROTO_TCP, 50001, Timestamp(2), &mut out);
        d.on_open(&c.policy, db, cl, PROTO_TCP, 50000, Timestamp(2), &mut out);
        assert_eq!(out.len(), 2, "{out:?}");
    }
}
