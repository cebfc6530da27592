//! `egress_violation` (a home host connects out to a service its role does
//! not allow) and `outbound_smtp` (a home host that is not a mail server
//! connects to an external tcp/25). A TCP connection counts once its
//! handshake completes: a scanner's unanswered SYN to port 25 is a probe,
//! not mail.

use serde_json::json;

use super::bounded::{BoundedMap, Expiring};
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
}

fn proto_name(p: u8) -> &'static str {
    if p == PROTO_UDP { "udp" } else { "tcp" }
}

impl EgressDetector {
    pub fn new(cfg: &crate::config::DetectConfig) -> Self {
        EgressDetector {
            egress: BoundedMap::new(cfg.max_tracked, cfg.egress_violation.window.0),
            smtp: BoundedMap::new(cfg.max_tracked, cfg.outbound_smtp.window.0),
            eg: cfg.egress_violation.clone(),
            sm: cfg.outbound_smtp.clone(),
        }
    }

    pub fn sweep(&self, now: Timestamp) {
        self.egress.sweep(now);
        self.smtp.sweep(now);
    }

    pub fn shed(&self) -> u64 {
        self.egress.shed() + self.smtp.shed()
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
        if proto == PROTO_TCP
            && port == 25
            && self.sm.enabled
            && policy.role(&client) != Some("mail")
        {
            return;
        }
        if policy.egress_allowed(&client, proto, port) != Some(false) {
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
            || policy.role(&client) == Some("mail")
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
