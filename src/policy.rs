//! The network policy the detectors enforce: which networks are home, which
//! home hosts publish which services, and where each role may connect.
//!
//! A home host without a `[[hosts]]` entry publishes nothing and has
//! unrestricted egress. A role named by a host but not defined under
//! `[roles]` has unrestricted egress too (the name still matters: `mail`
//! hosts may send SMTP).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;

use crate::decode::{Addr, PROTO_TCP, PROTO_UDP};

/// An address prefix, IPv4 or IPv6 (IPv4 stored IPv4-mapped, prefix + 96).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = match p {
            Some(p) => p
                .trim()
                .parse()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("`{s}`: prefix length must be 0-{max}"))?,
            None => max,
        };
        let prefix = if ip.is_ipv4() { prefix + 96 } else { prefix };
        let mut addr = Addr::from(ip);
        // Keep only the network bits.
        for (i, b) in addr.0.iter_mut().enumerate() {
            let bits = (i as u32) * 8;
            let keep = u32::from(prefix).saturating_sub(bits).min(8);
            *b &= if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
        }
        Ok(Cidr { addr, prefix })
    }

    pub fn contains(&self, a: &Addr) -> bool {
        let full = usize::from(self.prefix / 8);
        let rest = self.prefix % 8;
        if a.0.get(..full) != self.addr.0.get(..full) {
            return false;
        }
        if rest == 0 {
            return true;
        }
        let mask = 0xffu8 << (8 - rest);
        match (a.0.get(full), self.addr.0.get(full)) {
            (Some(x), Some(y)) => x & mask == *y,
            _ => true,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = if self.addr.is_v4() {
            self.prefix - 96
        } else {
            self.prefix
        };
        write!(f, "{}/{}", self.addr, p)
    }
}

/// A protocol and port range (`tcp/80`, `udp/10000-20000`, `any/53`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// IP protocol number; None for both TCP and UDP.
    pub proto: Option<u8>,
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn parse(s: &str) -> Result<PortRange, String> {
        let bad =
            || format!("`{s}` is not a service such as \"tcp/443\", \"udp/500-510\" or \"any/53\"");
        let (proto, ports) = s.split_once('/').ok_or_else(bad)?;
        let proto = match proto.trim().to_ascii_lowercase().as_str() {
            "tcp" => Some(PROTO_TCP),
            "udp" => Some(PROTO_UDP),
            "any" => None,
            _ => return Err(bad()),
        };
        let (lo, hi) = match ports.split_once('-') {
            Some((a, b)) => (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            ),
            None => {
                let p = ports.trim().parse().map_err(|_| bad())?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(format!("`{s}`: range is backwards"));
        }
        Ok(PortRange { proto, lo, hi })
    }

    pub fn matches(&self, proto: u8, port: u16) -> bool {
        self.proto.is_none_or(|p| p == proto) && (self.lo..=self.hi).contains(&port)
    }
}

/// A set of services: ranges, or everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceSet {
    pub any: bool,
    pub ranges: Vec<PortRange>,
}

impl ServiceSet {
    pub fn contains(&self, proto: u8, port: u16) -> bool {
        self.any || self.ranges.iter().any(|r| r.matches(proto, port))
    }
}

/// Built-in service groups (redefinable under `[service_groups]`).
pub fn builtin_groups() -> BTreeMap<String, Vec<String>> {
    let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    BTreeMap::from([
        ("web".into(), g(&["tcp/80", "tcp/443", "udp/443"])),
        ("dns".into(), g(&["udp/53", "tcp/53", "tcp/853"])),
        ("ntp".into(), g(&["udp/123"])),
        (
            "mail-client".into(),
            g(&[
                "tcp/465", "tcp/587", "tcp/993", "tcp/995", "tcp/143", "tcp/110",
            ]),
        ),
        ("smtp".into(), g(&["tcp/25"])),
        (
            "vpn".into(),
            g(&[
                "udp/500",
                "udp/4500",
                "udp/1194",
                "tcp/1194",
                "udp/51820",
                "tcp/1723",
            ]),
        ),
        (
            "voip".into(),
            g(&[
                "udp/5060",
                "tcp/5060",
                "tcp/5061",
                "udp/3478",
                "udp/10000-20000",
            ]),
        ),
        ("ssh".into(), g(&["tcp/22"])),
        (
            "remote-admin".into(),
            g(&[
                "tcp/22", "tcp/23", "tcp/3389", "tcp/5900", "tcp/5985", "tcp/5986",
            ]),
        ),
    ])
}

/// A `[[hosts]]` entry.
#[derive(Clone, Debug)]
pub struct Host {
    pub addrs: Vec<Cidr>,
    pub role: Option<String>,
    pub services: ServiceSet,
}

/// What a role may do.
#[derive(Clone, Debug)]
pub struct Role {
    pub egress: ServiceSet,
}

/// The validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    pub home_nets: Vec<Cidr>,
    /// Most specific prefix first.
    hosts: Vec<(Cidr, usize)>,
    pub host_list: Vec<Host>,
    pub roles: BTreeMap<String, Role>,
}

/// How two endpoints relate to the home networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// External source, home target.
    Inbound,
    /// Home source, external target.
    Outbound,
    /// Both home.
    Internal,
    /// Neither home.
    External,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
            Direction::External => "external",
        }
    }
}

/// Raw `[[hosts]]` entry from the config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub addr: OneOrMany,
    pub role: Option<String>,
    #[serde(default)]
    pub services: Vec<String>,
}

/// `"x"` or `["x", "y"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    #[serde(default)]
    pub egress: Vec<String>,
}

/// Default home networks: RFC 1918 and unique-local IPv6.
pub const DEFAULT_HOME_NETS: [&str; 4] =
    ["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12", "fc00::/7"];

impl Policy {
    /// Builds the policy; errors name the key (`hosts[2].services[0]`).
    pub fn build(
        home_nets: Option<&[String]>,
        hosts: &[RawHost],
        roles: &BTreeMap<String, RawRole>,
        group_overrides: &BTreeMap<String, Vec<String>>,
    ) -> Result<Policy, (String, String)> {
        let home_nets = match home_nets {
            Some(v) => v
                .iter()
                .enumerate()
                .map(|(i, s)| Cidr::parse(s).map_err(|e| (format!("home_nets[{i}]"), e)))
                .collect::<Result<Vec<_>, _>>()?,
            None => DEFAULT_HOME_NETS
                .iter()
                .filter_map(|s| Cidr::parse(s).ok())
                .collect(),
        };
        let mut groups = builtin_groups();
        for (k, v) in group_overrides {
            groups.insert(k.clone(), v.clone());
        }
        let set = |items: &[String], key: &str| -> Result<ServiceSet, (String, String)> {
            let mut s = ServiceSet::default();
            for (i, item) in items.iter().enumerate() {
                let item = item.trim();
                if item == "any" {
                    s.any = true;
                } else if let Some(members) = groups.get(item) {
                    for (j, m) in members.iter().enumerate() {
                        let r = PortRange::parse(m)
                            .map_err(|e| (format!("service_groups.{item}[{j}]"), e))?;
                        s.ranges.push(r);
                    }
                } else if item.contains('/') {
                    s.ranges
                        .push(PortRange::parse(item).map_err(|e| (format!("{key}[{i}]"), e))?);
                } else {
                    return Err((
                        format!("{key}[{i}]"),
                        format!(
                            "`{item}` is neither a service group ({}) nor \"proto/port\"",
                            groups.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
            Ok(s)
        };
        let mut host_list = Vec::new();
        let mut index = Vec::new();
        for (i, h) in hosts.iter().enumerate() {
            let mut addrs = Vec::new();
            for (j, a) in h.addr.items().iter().enumerate() {
                let key = if matches!(h.addr, OneOrMany::One(_)) {
                    format!("hosts[{i}].addr")
                } else {
                    format!("hosts[{i}].addr[{j}]")
                };
                let c = Cidr::parse(a).map_err(|e| (key, e))?;
                addrs.push(c);
                index.push((c, i));
            }
            if addrs.is_empty() {
                return Err((
                    format!("hosts[{i}].addr"),
                    "needs at least one address".into(),
                ));
            }
            host_list.push(Host {
                addrs,
                role: h.role.clone(),
                services: set(&h.services, &format!("hosts[{i}].services"))?,
            });
        }
        index.sort_by_key(|(c, _)| std::cmp::Reverse(c.prefix));
        let mut built_roles = BTreeMap::new();
        for (name, r) in roles {
            built_roles.insert(
                name.clone(),
                Role {
                    egress: set(&r.egress, &format!("roles.{name}.egress"))?,
                },
            );
        }
        Ok(Policy {
            home_nets,
            hosts: index,
            host_list,
            roles: built_roles,
        })
    }

    pub fn is_home(&self, a: &Addr) -> bool {
        self.home_nets.iter().any(|c| c.contains(a))
    }

    pub fn host(&self, a: &Addr) -> Option<&Host> {
        self.hosts
            .iter()
            .find(|(c, _)| c.contains(a))
            .and_then(|(_, i)| self.host_list.get(*i))
    }

    pub fn direction(&self, src: &Addr, dst: &Addr) -> Direction {
        match (self.is_home(src), self.is_home(dst)) {
            (false, true) => Direction::Inbound,
            (true, false) => Direction::Outbound,
            (true, true) => Direction::Internal,
            (false, false) => Direction::External,
        }
    }

    /// Whether home host `a` publishes `proto/port` (hosts without an entry publish nothing).
    pub fn publishes(&self, a: &Addr, proto: u8, port: u16) -> bool {
        self.host(a)
            .is_some_and(|h| h.services.contains(proto, port))
    }

    pub fn role(&self, a: &Addr) -> Option<&str> {
        self.host(a).and_then(|h| h.role.as_deref())
    }

    /// Whether `a` is a mail server: its role is `mail`, or its role's
    /// egress names tcp/25 (a group or range holding it; `"any"` does not
    /// count: an unrestricted host is not thereby a mail server).
    pub fn sends_mail(&self, a: &Addr) -> bool {
        let Some(role) = self.role(a) else {
            return false;
        };
        role == "mail"
            || self
                .roles
                .get(role)
                .is_some_and(|r| r.egress.ranges.iter().any(|p| p.matches(PROTO_TCP, 25)))
    }

    /// Whether `a` may connect out to `proto/port`: None when unrestricted.
    pub fn egress_allowed(&self, a: &Addr, proto: u8, port: u16) -> Option<bool> {
        let role = self.role(a)?;
        let r = self.roles.get(role)?;
        Some(r.egress.contains(proto, port))
    }
}

impl Default for Policy {
    fn default() -> Self {
        match Policy::build(None, &[], &BTreeMap::new(), &BTreeMap::new()) {
            Ok(p) => p,
            Err(_) => unreachable!("the built-in policy is valid"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::decode::a;

    #[test]
    fn cidrs_match_both_families() {
        let c = Cidr::parse("10.20.0.0/16").unwrap();
        assert!(c.contains(&a("10.20.1.10")));
        assert!(!c.contains(&a("10.21.1.10")));
        assert!(!c.contains(&a("fd00::1")));
        let c6 = Cidr::parse("fc00::/7").unwrap();
        assert!(c6.contains(&a("fd00:20::1")));
        assert!(!c6.contains(&a("2001:db8::1")));
        assert!(Cidr::parse("10.0.0.1/33").is_err());
        assert_eq!(Cidr::parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(&a("8.8.8.8")));
        assert!(
            Cidr::parse("172.16.0.0/12")
                .unwrap()
                .contains(&a("172.31.255.1"))
        );
        assert!(
            !Cidr::parse("172.16.0.0/12")
                .unwrap()
                .contains(&a("172.32.0.1"))
        );
    }

    #[test]
    fn roles_and_services() {
        let hosts = vec![
            RawHost {
                addr: OneOrMany::Many(vec!["10.20.1.10".into(), "fd00:20::10".into()]),
                role: Some("web".into()),
                services: vec!["tcp/80".into(), "tcp/443".into()],
            },
            RawHost {
                addr: OneOrMany::One("10.20.1.30".into()),
                role: Some("db".into()),
                services: vec![],
            },
            RawHost {
                addr: OneOrMany::One("10.30.0.0/16".into()),
                role: Some("workstation".into()),
                services: vec![],
            },
        ];
        let roles = BTreeMap::from([
            ("db".to_string(), RawRole { egress: vec![] }),
            (
                "workstation".to_string(),
                RawRole {
                    egress: vec!["web".into(), "dns".into(), "udp/5000-5010".into()],
                },
            ),
        ]);
        let p = Policy::build(None, &hosts, &roles, &BTreeMap::new()).unwrap();
        assert!(p.publishes(&a("fd00:20::10"), PROTO_TCP, 443));
        assert!(!p.publishes(&a("10.20.1.10"), PROTO_TCP, 22));
        assert!(
            !p.publishes(&a("10.99.0.1"), PROTO_TCP, 80),
            "no entry: publishes nothing"
        );
        assert_eq!(
            p.egress_allowed(&a("10.20.1.30"), PROTO_TCP, 443),
            Some(false)
        );
        assert_eq!(
            p.egress_allowed(&a("10.30.4.4"), PROTO_TCP, 443),
            Some(true)
        );
        assert_eq!(
            p.egress_allowed(&a("10.30.4.4"), PROTO_UDP, 5005),
            Some(true)
        );
        assert_eq!(
            p.egress_allowed(&a("10.30.4.4"), PROTO_TCP, 25),
            Some(false)
        );
        assert_eq!(
            p.egress_allowed(&a("10.20.1.10"), PROTO_TCP, 25),
            None,
            "role without [roles] entry"
        );
        assert_eq!(p.egress_allowed(&a("10.99.0.1"), PROTO_TCP, 25), None);
        assert_eq!(
            p.direction(&a("203.0.113.5"), &a("10.20.1.10")),
            Direction::Inbound
        );
    }

    #[test]
    fn errors_name_the_key() {
        let hosts = vec![RawHost {
            addr: OneOrMany::One("10.0.0.1".into()),
            role: None,
            services: vec!["tcp/80".into(), "webz".into()],
        }];
        let e = Policy::build(None, &hosts, &BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        assert_eq!(e.0, "hosts[0].services[1]");
        let e = Policy::build(
            Some(&["10.0.0.0/99".to_string()]),
            &[],
            &BTreeMap::new(),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(e.0, "home_nets[0]");
        assert!(PortRange::parse("tcp/90-80").is_err());
        assert!(PortRange::parse("icmp/8").is_err());
    }
}
