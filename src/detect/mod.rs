//! Behavioural detectors.
//!
//! Detectors never parse bytes: the worker hands them decoded packets and
//! flow events (new flow, first reply, handshake, first payload, flow end),
//! and they return [`Alert`]s. State that spans flows (a scanner's probes
//! across many flows, a victim's half-open handshakes) lives in
//! [`BoundedMap`]s shared by all workers: each capped in entries, each entry
//! expiring, the shedding counted.
//!
//! Every alert has a stable signature id (`rules/backflow-detectors.rules`),
//! names attacker (`source`) and victim (`target`), and carries its evidence
//! in `alert.metadata`. One incident is one alert; a long-running one is
//! re-reported at most once per window with updated counts.
//!
//! Signature rules ([`rules`]) and reputation feeds ([`reputation`]) raise
//! [`Alert`]s on the same path; thresholds and suppression
//! ([`rules::AlertFilter`]) apply to all of them.

pub mod bounded;
pub mod brute;
pub mod egress;
pub mod flags;
pub mod flood;
pub mod prefix;
pub mod proxy;
pub mod related;
pub mod reputation;
pub mod role;
pub mod rules;
pub mod scan;

use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::config::DetectConfig;
use crate::decode::Addr;
use crate::policy::Policy;
use crate::time::Timestamp;
pub use bounded::{BoundedMap, Hll, Usage};

/// Detector bookkeeping bits in `Flow::detect_bits`.
pub mod bits {
    /// The flow's first packet was a scan probe.
    pub const PROBE: u8 = 1;
    /// The probe's outcome was reported.
    pub const RESOLVED: u8 = 2;
    /// The first client payload was inspected.
    pub const PAYLOAD_SEEN: u8 = 4;
    /// The (UDP) flow was handed to the egress detector as opened.
    pub const OPENED: u8 = 8;
    /// The flow's SYN was counted as a callback.
    pub const CALLBACK: u8 = 16;
    /// The flow's handshake was counted as completed (flood tracker).
    pub const COMPLETED: u8 = 32;
    /// The flow's SYN was counted as a proxy's relayed connection.
    pub const RELAYED: u8 = 64;
}

/// The detector kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    ReversedRole,
    UnexpectedInbound,
    PortScan,
    PortSweep,
    SynFlood,
    BruteForce,
    EgressViolation,
    OutboundSmtp,
    OpenProxy,
    /// A flow endpoint listed in a reputation feed.
    Reputation,
    /// A home host connects back to an outside client it just served.
    Callback,
    /// One source probing many IP protocols of one host (nmap -sO).
    ProtocolScan,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::ReversedRole,
        Kind::UnexpectedInbound,
        Kind::PortScan,
        Kind::PortSweep,
        Kind::SynFlood,
        Kind::BruteForce,
        Kind::EgressViolation,
        Kind::OutboundSmtp,
        Kind::OpenProxy,
        Kind::Reputation,
        Kind::Callback,
        Kind::ProtocolScan,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::ReversedRole => "reversed_role",
            Kind::UnexpectedInbound => "unexpected_inbound",
            Kind::PortScan => "port_scan",
            Kind::PortSweep => "port_sweep",
            Kind::SynFlood => "syn_flood",
            Kind::BruteForce => "brute_force",
            Kind::EgressViolation => "egress_violation",
            Kind::OutboundSmtp => "outbound_smtp",
            Kind::OpenProxy => "open_proxy",
            Kind::Reputation => "reputation",
            Kind::Callback => "callback",
            Kind::ProtocolScan => "protocol_scan",
        }
    }

    /// Signature id, in backflow's reserved range 9100001-9100099.
    pub fn sid(self) -> u32 {
        9_100_001 + self as u32
    }

    pub fn signature(self) -> &'static str {
        match self {
            Kind::ReversedRole => {
                "BACKFLOW reversed role: a server port initiated a TCP connection"
            }
            Kind::UnexpectedInbound => "BACKFLOW unexpected inbound session to an unpublished port",
            Kind::PortScan => "BACKFLOW port scan: one source probing many ports of one host",
            Kind::PortSweep => "BACKFLOW port sweep: one source probing one port on many hosts",
            Kind::SynFlood => "BACKFLOW SYN flood: half-open handshakes piling up on a server port",
            Kind::BruteForce => {
                "BACKFLOW brute force: many short sessions to an authentication service"
            }
            Kind::EgressViolation => {
                "BACKFLOW egress violation: connection to a service the host's role does not allow"
            }
            Kind::OutboundSmtp => "BACKFLOW outbound SMTP from a host that is not a mail server",
            Kind::OpenProxy => {
                "BACKFLOW open proxy: web server relaying requests for outside clients"
            }
            Kind::Reputation => {
                "BACKFLOW reputation: flow with an address listed in a reputation feed"
            }
            Kind::Callback => {
                "BACKFLOW callback: a host connected back to an outside client it had just served"
            }
            Kind::ProtocolScan => {
                "BACKFLOW protocol scan: one source probing many IP protocols of one host"
            }
        }
    }

    /// Suricata classification (classification.config) of the kind.
    pub fn category(self) -> &'static str {
        match self {
            Kind::ReversedRole => "Potentially Bad Traffic",
            Kind::UnexpectedInbound => "Potential Corporate Privacy Violation",
            Kind::PortScan | Kind::PortSweep | Kind::ProtocolScan => "Detection of a Network Scan",
            Kind::SynFlood => "Attempted Denial of Service",
            Kind::BruteForce => "Attempted User Privilege Gain",
            Kind::EgressViolation => "Potential Corporate Privacy Violation",
            Kind::OutboundSmtp => "Potentially Bad Traffic",
            Kind::OpenProxy => "Potentially Bad Traffic",
            Kind::Reputation => "Misc Attack",
            Kind::Callback => "Potentially Bad Traffic",
        }
    }
}

/// An endpoint named by an alert; either part may be unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Option<Addr>,
    pub port: Option<u16>,
}

impl Endpoint {
    pub fn host(ip: Addr) -> Self {
        Endpoint {
            ip: Some(ip),
            port: None,
        }
    }
    pub fn service(ip: Addr, port: u16) -> Self {
        Endpoint {
            ip: Some(ip),
            port: Some(port),
        }
    }
}

/// What raised an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A built-in detector (or a reputation feed).
    Detector(Kind),
    /// A signature rule.
    Rule,
}

/// One alert, before it is written.
#[derive(Clone, Debug)]
pub struct Alert {
    pub origin: Origin,
    /// The signature written: the rule's, or the detector's entry in the
    /// detectors' rule file; None: the built-in texts of the kind.
    pub rule: Option<Arc<rules::RuleMeta>>,
    pub severity: u8,
    pub source: Endpoint,
    pub target: Endpoint,
    /// Evidence; `detector` is added when written.
    pub evidence: Map<String, Value>,
    /// Whether the alert belongs to the flow of the packet that raised it.
    pub on_flow: bool,
}

impl Alert {
    pub fn new(kind: Kind, severity: u8, source: Endpoint, target: Endpoint) -> Self {
        Alert {
            origin: Origin::Detector(kind),
            rule: None,
            severity,
            source,
            target,
            evidence: Map::new(),
            on_flow: true,
        }
    }

    /// An alert of a signature rule.
    pub fn signature(rule: Arc<rules::RuleMeta>, source: Endpoint, target: Endpoint) -> Self {
        Alert {
            origin: Origin::Rule,
            severity: rule.severity,
            rule: Some(rule),
            source,
            target,
            evidence: Map::new(),
            on_flow: true,
        }
    }

    /// The detector kind, for detector alerts.
    pub fn kind(&self) -> Option<Kind> {
        match self.origin {
            Origin::Detector(k) => Some(k),
            Origin::Rule => None,
        }
    }

    /// What the alert is counted as: the detector kind, or `signature`.
    pub fn name(&self) -> &'static str {
        match self.origin {
            Origin::Detector(k) => k.name(),
            Origin::Rule => "signature",
        }
    }

    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.evidence.insert(key.to_string(), v.into());
        self
    }

    /// The EVE `alert` object, as a value (see [`Alert::eve`]).
    pub fn to_eve(&self) -> Value {
        serde_json::to_value(self.eve()).unwrap_or(Value::Null)
    }

    /// The EVE `alert` object, serialized straight from the alert (an alert
    /// is written once: no intermediate value is built and dropped). Keys
    /// in sorted order.
    pub fn eve(&self) -> EveAlert<'_> {
        EveAlert(self)
    }
}

/// An [`Alert`] as EVE writes it: Suricata's `alert` object, with the
/// evidence in `metadata` (a rule's `metadata` entries as lists of values,
/// the detector's name in `detector`; evidence wins over a rule entry of
/// the same name) and the alert's `source` and `target`.
pub struct EveAlert<'a>(&'a Alert);

/// One entry of an alert's `metadata`.
enum MetaValue<'a> {
    Detector(&'static str),
    Rule(Vec<&'a str>),
    Evidence(&'a Value),
}

impl serde::Serialize for MetaValue<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MetaValue::Detector(name) => [name].serialize(s),
            MetaValue::Rule(values) => values.serialize(s),
            MetaValue::Evidence(v) => v.serialize(s),
        }
    }
}

impl serde::Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        if let Some(ip) = &self.ip {
            m.serialize_entry("ip", ip)?;
        }
        if let Some(p) = self.port {
            m.serialize_entry("port", &p)?;
        }
        m.end()
    }
}

impl serde::Serialize for EveAlert<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let a = self.0;
        let rule = a.rule.as_deref();
        let mut meta: std::collections::BTreeMap<&str, MetaValue<'_>> = Default::default();
        if let Origin::Detector(k) = a.origin {
            meta.insert("detector", MetaValue::Detector(k.name()));
        }
        if let (Origin::Rule, Some(r)) = (a.origin, rule) {
            // Suricata's layout: each metadata key with a list of values.
            for (k, v) in &r.metadata {
                let e = meta
                    .entry(k.as_str())
                    .or_insert_with(|| MetaValue::Rule(Vec::new()));
                if let MetaValue::Rule(list) = e {
                    list.push(v);
                }
            }
        }
        for (k, v) in &a.evidence {
            meta.insert(k.as_str(), MetaValue::Evidence(v));
        }
        let (gid, sid, rev, signature, category) = match (rule, a.origin) {
            (Some(r), _) => (r.gid, r.sid, r.rev, r.msg.as_str(), r.category.as_str()),
            (None, Origin::Detector(k)) => (1, k.sid(), 1, k.signature(), k.category()),
            (None, Origin::Rule) => (1, 0, 0, "", ""),
        };
        // Detectors always name both sides (an empty object when unknown);
        // a rule names them only with `target`.
        let always = matches!(a.origin, Origin::Detector(_));
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("action", "allowed")?;
        m.serialize_entry("category", category)?;
        m.serialize_entry("gid", &gid)?;
        if !meta.is_empty() {
            m.serialize_entry("metadata", &meta)?;
        }
        if let (Origin::Rule, Some(r)) = (a.origin, rule)
            && !r.references.is_empty()
        {
            m.serialize_entry("references", &r.references)?;
        }
        m.serialize_entry("rev", &rev)?;
        m.serialize_entry("severity", &a.severity)?;
        m.serialize_entry("signature", signature)?;
        m.serialize_entry("signature_id", &sid)?;
        if always || a.source.ip.is_some() {
            m.serialize_entry("source", &a.source)?;
        }
        if always || a.target.ip.is_some() {
            m.serialize_entry("target", &a.target)?;
        }
        m.end()
    }
}

/// Time window bookkeeping shared by the incident trackers: an incident is
/// reported when it first qualifies, then at most once per window while its
/// counts grow.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reported {
    pub at: Option<Timestamp>,
    pub count: u64,
}

impl Reported {
    pub fn due(&self, now: Timestamp, window: crate::time::Micros, count: u64) -> bool {
        match self.at {
            None => true,
            Some(at) => now.since(at) >= window && count > self.count,
        }
    }
    pub fn mark(&mut self, now: Timestamp, count: u64) {
        self.at = Some(now);
        self.count = count;
    }
}

/// Timestamps as EVE writes them, for evidence.
pub fn ts(t: Timestamp) -> Value {
    json!(t.to_string())
}

/// All detectors, shared by the workers.
pub struct Detectors {
    /// Signature rules, the detectors' rule entries and the alert filter.
    pub rules: rules::RuleSet,
    /// The current reputation table (swapped in by the feed manager).
    pub reputation: Arc<reputation::Reputation>,
    pub policy: Policy,
    pub cfg: DetectConfig,
    pub scan: scan::ScanDetector,
    pub flood: flood::FloodDetector,
    pub role: role::RoleDetector,
    pub brute: brute::BruteDetector,
    pub egress: egress::EgressDetector,
    pub proxy: proxy::ProxyDetector,
    /// FTP control sessions (shared by `role` and `egress`).
    pub ftp: Arc<related::FtpSessions>,
}

impl Detectors {
    pub fn new(config: &crate::config::Config) -> Self {
        let cfg = config.detect.clone();
        let ftp = Arc::new(related::FtpSessions::new(
            cfg.max_tracked,
            cfg.tracker_bytes,
            crate::time::Micros::from_secs(3600),
        ));
        let mut rules =
            rules::RuleSet::load(&config.rules, &config.policy.home_nets, cfg.max_tracked);
        rules.limit_state_bytes(crate::memory::threshold_bytes(cfg.rules_bytes));
        let r = rules.report();
        for e in r.other_errors.iter().take(20) {
            tracing::warn!("rules: {e}");
        }
        if r.rejected() > 0 {
            tracing::warn!(
                "rules: {} of {} rules rejected (`backflow rules check` lists them); first: {}",
                r.rejected(),
                r.rules(),
                r.errors.first().map(|e| e.to_string()).unwrap_or_default()
            );
        }
        tracing::info!(
            "rules: {} loaded ({} IP-only), {} detector entries",
            r.loaded,
            r.ip_only,
            r.detector_rules
        );
        Detectors {
            rules,
            reputation: Arc::new(reputation::Reputation::with_max_entries(
                crate::memory::reputation_entries(cfg.rules_bytes),
            )),
            scan: scan::ScanDetector::new(&cfg).with_ignored(config),
            flood: flood::FloodDetector::new(&cfg),
            role: role::RoleDetector::new(&cfg)
                .with_ports(config)
                .with_ftp(ftp.clone()),
            brute: brute::BruteDetector::new(&cfg),
            egress: egress::EgressDetector::new(&cfg).with_ftp(ftp.clone()),
            ftp,
            proxy: proxy::ProxyDetector::new(&cfg),
            policy: config.policy.clone(),
            cfg,
        }
    }

    /// Drops state idle for longer than its window (called about once per
    /// second of packet time).
    pub fn sweep(&self, now: Timestamp) {
        self.scan.sweep(now);
        self.flood.sweep(now);
        self.role.sweep(now);
        self.brute.sweep(now);
        self.egress.sweep(now);
        self.proxy.sweep(now);
        self.ftp.sweep(now);
        self.rules.sweep(now);
    }

    /// Applies thresholds, suppression and the detectors' rule entries to
    /// the alerts a packet raised; `endpoints` (source, destination) stand
    /// in for an alert's unknown sides.
    pub fn finish_alerts(
        &self,
        alerts: &mut Vec<Alert>,
        endpoints: Option<(Addr, Addr)>,
        now: Timestamp,
    ) {
        self.rules.finish(alerts, endpoints, now);
    }

    /// The rule engine's and reputation's counters now.
    pub fn rule_stats(&self) -> crate::stats::RuleStats {
        let c = &self.rules.counters;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let f = self.rules.filter();
        let r = self.rules.report();
        crate::stats::RuleStats {
            loaded: self.rules.len() as u64,
            rejected: r.rejected() as u64,
            matches: n(&c.matches),
            alerts: n(&c.alerts),
            passed: n(&c.passed),
            alert_overflow: n(&c.alert_overflow),
            flowbits_refused: n(&c.flowbits_refused),
            suppressed: f.suppressed(),
            thresholded: f.thresholded(),
            reputation_entries: self.reputation.table().len() as u64,
            reputation_lookups: n(&self.reputation.lookups),
            reputation_hits: n(&self.reputation.hits),
        }
    }

    /// Entries, bytes and keys shed at the caps, per tracker.
    pub fn usage(&self) -> Vec<(&'static str, Usage)> {
        vec![
            ("scan", self.scan.usage()),
            ("flood", self.flood.usage()),
            ("role", self.role.usage()),
            ("brute_force", self.brute.usage()),
            ("egress", self.egress.usage()),
            ("open_proxy", self.proxy.usage()),
            ("ftp", self.ftp.usage()),
            ("thresholds", self.rules.filter().usage()),
        ]
    }

    /// Keys the tracker behind `kind` could not take so far (its alerts
    /// may undercount while it is full).
    pub fn shed_for(&self, kind: Kind) -> u64 {
        match kind {
            Kind::PortScan | Kind::PortSweep | Kind::ProtocolScan => self.scan.usage().shed,
            Kind::SynFlood => self.flood.usage().shed,
            Kind::ReversedRole | Kind::UnexpectedInbound | Kind::Callback => self.role.usage().shed,
            Kind::BruteForce => self.brute.usage().shed,
            Kind::EgressViolation | Kind::OutboundSmtp => self.egress.usage().shed,
            Kind::OpenProxy => self.proxy.usage().shed,
            Kind::Reputation => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule file users suppress and re-prioritise by must agree with
    /// the engine: same sid, message and category for every detector.
    #[test]
    fn rule_file_matches_the_detectors() {
        let rules = include_str!("../../rules/backflow-detectors.rules");
        let classes = include_str!("../../rules/classification.config");
        for k in Kind::ALL {
            let line = rules
                .lines()
                .find(|l| l.contains(&format!("detector:{};", k.name())))
                .unwrap_or_else(|| panic!("no rule for {}", k.name()));
            assert!(line.contains(&format!("sid:{};", k.sid())), "{line}");
            assert!(
                line.contains(&format!("msg:\"{}\";", k.signature())),
                "{line}"
            );
            let class = line
                .split("classtype:")
                .nth(1)
                .and_then(|s| s.split(';').next())
                .unwrap_or("");
            let desc = classes
                .lines()
                .find_map(|l| l.strip_prefix(&format!("config classification: {class},")))
                .and_then(|r| r.rsplit_once(',').map(|(d, _)| d))
                .unwrap_or("");
            assert_eq!(desc, k.category(), "{}", k.name());
        }
    }

    /// The `alert` object is written straight from the alert: keys sorted,
    /// a rule's metadata grouped by key in rule order, evidence over a rule
    /// entry of the same name, both endpoints named by a detector even when
    /// unknown.
    #[test]
    fn alerts_are_written_as_eve_expects() {
        let scanner = Endpoint::host(Addr::from([192, 0, 2, 7]));
        let unknown = Endpoint {
            ip: None,
            port: None,
        };
        let a = Alert::new(Kind::PortScan, 2, scanner, unknown)
            .with("ports", 30)
            .with("first_seen", "2024-01-01T00:00:00.000000+0000");
        assert_eq!(
            serde_json::to_string(&a.eve()).unwrap(),
            concat!(
                r#"{"action":"allowed","category":"Detection of a Network Scan","gid":1,"#,
                r#""metadata":{"detector":["port_scan"],"first_seen":"2024-01-01T00:00:00.000000+0000","ports":30},"#,
                r#""rev":1,"severity":2,"signature":"BACKFLOW port scan: one source probing many ports of one host","#,
                r#""signature_id":9100003,"source":{"ip":"192.0.2.7"},"target":{}}"#
            )
        );
        let rule = rules::RuleMeta {
            gid: 1,
            sid: 70,
            rev: 3,
            msg: "ssh \"x\"".into(),
            classtype: None,
            category: String::new(),
            severity: 1,
            priority_set: true,
            metadata: vec![
                ("tag".into(), "SSH".into()),
                ("created_at".into(), "2024_01_01".into()),
                ("tag".into(), "Brute".into()),
                ("count".into(), "rule".into()),
            ],
            references: vec!["url,example.com/a".into()],
            target: None,
            action: rules::Action::Alert,
            location: "x.rules:1".into(),
        };
        let server = Endpoint::service(Addr::from([198, 51, 100, 1]), 22);
        let a = Alert::signature(Arc::new(rule), unknown, server).with("count", 4);
        assert_eq!(
            serde_json::to_string(&a.eve()).unwrap(),
            concat!(
                r#"{"action":"allowed","category":"","gid":1,"#,
                r#""metadata":{"count":4,"created_at":["2024_01_01"],"tag":["SSH","Brute"]},"#,
                r#""references":["url,example.com/a"],"rev":3,"severity":1,"#,
                r#""signature":"ssh \"x\"","signature_id":70,"target":{"ip":"198.51.100.1","port":22}}"#
            )
        );
        assert_eq!(a.to_eve()["metadata"]["tag"][1], "Brute");
    }
}
