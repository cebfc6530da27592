//! Address and port expressions of a rule header, and the variables they
//! name (`$HOME_NET`, `$HTTP_PORTS`).
//!
//! Syntax (Suricata's): `any`; an address, a CIDR or a range `a-b`; a port,
//! a range `lo:hi`, `lo:` or `:hi`; `$VAR`; a list `[x, y, ...]`; negation
//! `!x`. A list is its positive members minus its negated ones, and a list
//! of only negated members starts from everything, so `!$HOME_NET` and
//! `[!10.0.0.0/8]` both mean "everything but". As in Suricata, negating a
//! set of IPv4 networks leaves every IPv6 address in.
//!
//! Expressions are parsed once into trees (kept for printing rules back) and
//! resolved against the variables into sorted, disjoint ranges
//! ([`AddrSet`], [`PortSet`]) that answer membership by binary search.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;

use crate::decode::Addr;
use crate::detect::prefix::{V4_BASE, addr_u128, prefix_range};
use crate::policy::Cidr;

/// Nesting of lists and negations accepted (deeper is an error, not a
/// stack overflow).
const MAX_DEPTH: usize = 16;
/// Variables referring to variables: deeper is taken for a cycle.
const MAX_VAR_DEPTH: usize = 16;

/// An address or port expression as written: the grammar both share
/// around a literal of each kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr<L> {
    Any,
    Var(String),
    Lit(L),
    List(Vec<Expr<L>>),
    Not(Box<Expr<L>>),
}

/// An address expression as written.
pub type AddrExpr = Expr<AddrLit>;
/// A port expression as written.
pub type PortExpr = Expr<PortLit>;

/// An address literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrLit {
    /// A network (a single address has the full prefix); `prefix` counts
    /// bits of its own family.
    Net { ip: IpAddr, prefix: u8 },
    /// An inclusive range `a-b`.
    Range(IpAddr, IpAddr),
}

/// A port literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortLit {
    Port(u16),
    /// `lo:hi`, `lo:` or `:hi`.
    Range(Option<u16>, Option<u16>),
}

/// A parse error: byte offset in the expression and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    pub offset: usize,
    pub reason: String,
}

impl ExprError {
    fn new(offset: usize, reason: impl Into<String>) -> Self {
        ExprError {
            offset,
            reason: reason.into(),
        }
    }
}

/// What differs between the two grammars: the literal and its name.
trait Literal: Sized {
    const WHAT: &'static str;
    fn literal(s: &str) -> Result<Self, String>;
}

impl Literal for AddrLit {
    const WHAT: &'static str = "address";
    fn literal(s: &str) -> Result<Self, String> {
        if let Some((a, b)) = s.split_once('-') {
            let (Ok(a), Ok(b)) = (a.parse::<IpAddr>(), b.parse::<IpAddr>()) else {
                return Err(format!("`{s}` is not an address range"));
            };
            if a.is_ipv4() != b.is_ipv4() || Addr::from(a) > Addr::from(b) {
                return Err(format!(
                    "`{s}`: range ends are out of order or of two families"
                ));
            }
            return Ok(AddrLit::Range(a, b));
        }
        let c = Cidr::parse(s)
            .map_err(|_| format!("`{s}` is not an address, CIDR, range, variable or `any`"))?;
        let ip = c.addr.to_ip();
        let prefix = if ip.is_ipv4() {
            c.prefix.saturating_sub(96)
        } else {
            c.prefix
        };
        Ok(AddrLit::Net { ip, prefix })
    }
}

impl Literal for PortLit {
    const WHAT: &'static str = "port";
    fn literal(s: &str) -> Result<Self, String> {
        let num = |t: &str| -> Result<u16, String> {
            t.parse::<u16>()
                .map_err(|_| format!("`{s}` is not a port, range, variable or `any`"))
        };
        match s.split_once(':') {
            Some((a, b)) => {
                let lo = if a.is_empty() { None } else { Some(num(a)?) };
                let hi = if b.is_empty() { None } else { Some(num(b)?) };
                if lo.is_none() && hi.is_none() {
                    return Err(format!("`{s}` is not a port range"));
                }
                if let (Some(l), Some(h)) = (lo, hi)
                    && l > h
                {
                    return Err(format!("`{s}`: range is backwards"));
                }
                Ok(PortLit::Range(lo, hi))
            }
            None => Ok(PortLit::Port(num(s)?)),
        }
    }
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }
}

fn parse_expr<L: Literal>(c: &mut Cursor<'_>, depth: usize) -> Result<Expr<L>, ExprError> {
    if depth > MAX_DEPTH {
        return Err(ExprError::new(c.pos, "nested too deeply"));
    }
    c.skip_ws();
    match c.peek() {
        None => Err(ExprError::new(c.pos, format!("missing {}", L::WHAT))),
        Some(b'!') => {
            c.pos += 1;
            let at = c.pos;
            let inner = parse_expr::<L>(c, depth + 1)?;
            if matches!(inner, Expr::Any) {
                return Err(ExprError::new(at, "`!any` matches nothing"));
            }
            Ok(Expr::Not(Box::new(inner)))
        }
        Some(b'[') => {
            let open = c.pos;
            c.pos += 1;
            let mut items = Vec::new();
            loop {
                c.skip_ws();
                if c.peek() == Some(b']') && items.is_empty() {
                    return Err(ExprError::new(c.pos, "empty list"));
                }
                items.push(parse_expr::<L>(c, depth + 1)?);
                c.skip_ws();
                match c.peek() {
                    Some(b',') => c.pos += 1,
                    Some(b']') => {
                        c.pos += 1;
                        return Ok(Expr::List(items));
                    }
                    None => return Err(ExprError::new(open, "`[` is never closed")),
                    Some(_) => return Err(ExprError::new(c.pos, "expected `,` or `]`")),
                }
            }
        }
        Some(_) => {
            let start = c.pos;
            while c.peek().is_some_and(|b| {
                !matches!(b, b',' | b']' | b'[' | b'!') && !b.is_ascii_whitespace()
            }) {
                c.pos += 1;
            }
            let tok = c.s.get(start..c.pos).unwrap_or("");
            if tok.is_empty() {
                return Err(ExprError::new(start, format!("missing {}", L::WHAT)));
            }
            if tok.eq_ignore_ascii_case("any") {
                return Ok(Expr::Any);
            }
            if let Some(name) = tok.strip_prefix('$') {
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(ExprError::new(
                        start,
                        format!("`{tok}` is not a variable name"),
                    ));
                }
                return Ok(Expr::Var(name.to_string()));
            }
            L::literal(tok)
                .map(Expr::Lit)
                .map_err(|r| ExprError::new(start, r))
        }
    }
}

fn parse_whole<L: Literal>(s: &str) -> Result<Expr<L>, ExprError> {
    let mut c = Cursor { s, pos: 0 };
    let e = parse_expr::<L>(&mut c, 0)?;
    c.skip_ws();
    if c.pos < s.len() {
        return Err(ExprError::new(
            c.pos,
            "unexpected text after the expression",
        ));
    }
    Ok(e)
}

impl AddrExpr {
    pub fn parse(s: &str) -> Result<AddrExpr, ExprError> {
        parse_whole::<AddrLit>(s)
    }
}

impl PortExpr {
    pub fn parse(s: &str) -> Result<PortExpr, ExprError> {
        parse_whole::<PortLit>(s)
    }
}

impl<L: fmt::Display> fmt::Display for Expr<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Any => f.write_str("any"),
            Expr::Var(n) => write!(f, "${n}"),
            Expr::Lit(l) => write!(f, "{l}"),
            Expr::List(v) => {
                f.write_str("[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
            Expr::Not(x) => write!(f, "!{x}"),
        }
    }
}

impl fmt::Display for AddrLit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrLit::Net { ip, prefix } => {
                let full = if ip.is_ipv4() { 32 } else { 128 };
                if *prefix == full {
                    write!(f, "{ip}")
                } else {
                    write!(f, "{ip}/{prefix}")
                }
            }
            AddrLit::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

impl fmt::Display for PortLit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortLit::Port(p) => write!(f, "{p}"),
            PortLit::Range(lo, hi) => {
                if let Some(l) = lo {
                    write!(f, "{l}")?;
                }
                f.write_str(":")?;
                if let Some(h) = hi {
                    write!(f, "{h}")?;
                }
                Ok(())
            }
        }
    }
}

/// Sorted, disjoint, non-adjacent inclusive ranges.
fn normalize<T: Copy + Ord + Into<u128>>(mut v: Vec<(T, T)>) -> Vec<(T, T)> {
    v.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        if let Some(last) = out.last_mut() {
            let last_hi: u128 = last.1.into();
            if lo.into() <= last_hi.saturating_add(1) {
                if hi > last.1 {
                    last.1 = hi;
                }
                continue;
            }
        }
        out.push((lo, hi));
    }
    out
}

/// A resolved set of addresses (IPv4 in its mapped form).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AddrSet {
    ranges: Vec<(u128, u128)>,
}

impl AddrSet {
    pub fn any() -> Self {
        AddrSet {
            ranges: vec![(0, u128::MAX)],
        }
    }

    pub fn from_ranges(v: Vec<(u128, u128)>) -> Self {
        AddrSet {
            ranges: normalize(v),
        }
    }

    pub fn from_cidrs(cidrs: &[Cidr]) -> Self {
        Self::from_ranges(
            cidrs
                .iter()
                .map(|c| prefix_range(addr_u128(&c.addr), c.prefix))
                .collect(),
        )
    }

    pub fn is_any(&self) -> bool {
        self.ranges == [(0, u128::MAX)]
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn ranges(&self) -> &[(u128, u128)] {
        &self.ranges
    }

    pub fn contains(&self, a: &Addr) -> bool {
        let x = addr_u128(a);
        let i = self.ranges.partition_point(|r| r.0 <= x);
        i > 0 && self.ranges.get(i - 1).is_some_and(|r| x <= r.1)
    }

    /// Number of addresses covered (saturating), to pick the smaller side
    /// of a rule for indexing.
    pub fn size(&self) -> u128 {
        self.ranges.iter().fold(0u128, |n, (lo, hi)| {
            n.saturating_add(hi - lo).saturating_add(1)
        })
    }

    /// Whether the two sets share an address.
    pub fn intersects(&self, o: &AddrSet) -> bool {
        let (mut i, mut j) = (0, 0);
        while let (Some(a), Some(b)) = (self.ranges.get(i), o.ranges.get(j)) {
            if a.0.max(b.0) <= a.1.min(b.1) {
                return true;
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }

    /// Whether every address of `self` is in `o`.
    pub fn is_subset(&self, o: &AddrSet) -> bool {
        self.minus(o).is_empty()
    }

    fn complement(&self) -> AddrSet {
        let mut out = Vec::new();
        let mut next: Option<u128> = Some(0);
        for &(lo, hi) in &self.ranges {
            if let Some(n) = next
                && lo > n
            {
                out.push((n, lo - 1));
            }
            next = hi.checked_add(1);
        }
        if let Some(n) = next {
            out.push((n, u128::MAX));
        }
        AddrSet { ranges: out }
    }
}

/// A resolved set of ports.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PortSet {
    ranges: Vec<(u16, u16)>,
}

impl PortSet {
    pub fn any() -> Self {
        PortSet {
            ranges: vec![(0, u16::MAX)],
        }
    }

    pub fn from_ranges(v: Vec<(u16, u16)>) -> Self {
        PortSet {
            ranges: normalize(v),
        }
    }

    pub fn is_any(&self) -> bool {
        self.ranges == [(0, u16::MAX)]
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.ranges
    }

    pub fn contains(&self, p: u16) -> bool {
        let i = self.ranges.partition_point(|r| r.0 <= p);
        i > 0 && self.ranges.get(i - 1).is_some_and(|r| p <= r.1)
    }
}

/// The set operations resolution needs, for both kinds of set.
trait RangeSet: Clone + Default {
    fn any() -> Self;
    fn union(&self, o: &Self) -> Self;
    fn minus(&self, o: &Self) -> Self;
}

impl RangeSet for AddrSet {
    fn any() -> Self {
        AddrSet::any()
    }
    fn union(&self, o: &AddrSet) -> AddrSet {
        let mut v = self.ranges.clone();
        v.extend_from_slice(&o.ranges);
        AddrSet::from_ranges(v)
    }
    fn minus(&self, o: &AddrSet) -> AddrSet {
        let c = o.complement();
        let mut out = Vec::new();
        let (mut i, mut j) = (0, 0);
        while let (Some(a), Some(b)) = (self.ranges.get(i), c.ranges.get(j)) {
            let lo = a.0.max(b.0);
            let hi = a.1.min(b.1);
            if lo <= hi {
                out.push((lo, hi));
            }
            if a.1 < b.1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        AddrSet { ranges: out }
    }
}

impl RangeSet for PortSet {
    fn any() -> Self {
        PortSet::any()
    }
    fn union(&self, o: &PortSet) -> PortSet {
        let mut v = self.ranges.clone();
        v.extend_from_slice(&o.ranges);
        PortSet {
            ranges: normalize(v),
        }
    }
    fn minus(&self, o: &PortSet) -> PortSet {
        let mut out = Vec::new();
        for &(lo, hi) in &self.ranges {
            let mut cur = Some(lo);
            for &(olo, ohi) in &o.ranges {
                let Some(c) = cur else { break };
                if ohi < c || olo > hi {
                    continue;
                }
                if olo > c {
                    out.push((c, olo - 1));
                }
                cur = ohi.checked_add(1).filter(|n| *n <= hi);
            }
            if let Some(c) = cur {
                out.push((c, hi));
            }
        }
        PortSet { ranges: out }
    }
}

/// Rule variables: `$HOME_NET` from the policy's home networks, the
/// Suricata defaults, and what the config sets under `[rules.vars]`.
#[derive(Clone, Debug)]
pub struct Vars {
    home: AddrSet,
    defs: BTreeMap<String, String>,
}

/// Suricata's default address and port groups (suricata.yaml `vars`).
pub const DEFAULT_VARS: &[(&str, &str)] = &[
    ("EXTERNAL_NET", "!$HOME_NET"),
    ("HTTP_SERVERS", "$HOME_NET"),
    ("SMTP_SERVERS", "$HOME_NET"),
    ("SQL_SERVERS", "$HOME_NET"),
    ("DNS_SERVERS", "$HOME_NET"),
    ("TELNET_SERVERS", "$HOME_NET"),
    ("AIM_SERVERS", "$EXTERNAL_NET"),
    ("DC_SERVERS", "$HOME_NET"),
    ("DNP3_SERVER", "$HOME_NET"),
    ("DNP3_CLIENT", "$HOME_NET"),
    ("MODBUS_CLIENT", "$HOME_NET"),
    ("MODBUS_SERVER", "$HOME_NET"),
    ("ENIP_CLIENT", "$HOME_NET"),
    ("ENIP_SERVER", "$HOME_NET"),
    ("HTTP_PORTS", "80"),
    ("SHELLCODE_PORTS", "!80"),
    ("ORACLE_PORTS", "1521"),
    ("SSH_PORTS", "22"),
    ("DNP3_PORTS", "20000"),
    ("MODBUS_PORTS", "502"),
    ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
    ("FTP_PORTS", "21"),
    ("GENEVE_PORTS", "6081"),
    ("VXLAN_PORTS", "4789"),
    ("TEREDO_PORTS", "3544"),
    ("SIP_PORTS", "[5060,5061]"),
];

impl Vars {
    /// The defaults with `overrides` on top (`HOME_NET` is not a variable
    /// here: it is the policy's `home_nets`).
    pub fn new(home_nets: &[Cidr], overrides: &BTreeMap<String, String>) -> Vars {
        let mut defs: BTreeMap<String, String> = DEFAULT_VARS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in overrides {
            defs.insert(k.clone(), v.clone());
        }
        Vars {
            home: AddrSet::from_cidrs(home_nets),
            defs,
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.defs.get(name).map(String::as_str)
    }

    /// `$HOME_NET`.
    pub fn home(&self) -> &AddrSet {
        &self.home
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.defs.keys().map(String::as_str)
    }
}

/// Why an expression could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    UnknownVar(String),
    /// The variable's value is not an expression of this kind.
    BadVar(String, String),
    Cycle(String),
    Empty,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::UnknownVar(n) => write!(f, "unknown variable `${n}`"),
            ResolveError::BadVar(n, why) => write!(f, "variable `${n}`: {why}"),
            ResolveError::Cycle(n) => write!(f, "variable `${n}` refers to itself"),
            ResolveError::Empty => f.write_str("the expression matches nothing"),
        }
    }
}

/// Resolves expressions against [`Vars`], caching each variable's set.
pub struct Resolver<'v> {
    vars: &'v Vars,
    addr_cache: HashMap<String, AddrSet>,
    port_cache: HashMap<String, PortSet>,
}

impl<'v> Resolver<'v> {
    pub fn new(vars: &'v Vars) -> Self {
        Resolver {
            vars,
            addr_cache: HashMap::new(),
            port_cache: HashMap::new(),
        }
    }

    pub fn addrs(&mut self, e: &AddrExpr) -> Result<AddrSet, ResolveError> {
        let s = self.resolve_at(e, 0)?;
        if s.is_empty() {
            return Err(ResolveError::Empty);
        }
        Ok(s)
    }

    pub fn ports(&mut self, e: &PortExpr) -> Result<PortSet, ResolveError> {
        let s = self.resolve_at(e, 0)?;
        if s.is_empty() {
            return Err(ResolveError::Empty);
        }
        Ok(s)
    }

    fn var_at<L: Kind>(&mut self, name: &str, depth: usize) -> Result<L::Set, ResolveError> {
        if let Some(s) = L::builtin(self.vars, name) {
            return Ok(s);
        }
        if let Some(s) = L::cache(self).get(name) {
            return Ok(s.clone());
        }
        if depth > MAX_VAR_DEPTH {
            return Err(ResolveError::Cycle(name.to_string()));
        }
        let text = self
            .vars
            .get(name)
            .ok_or_else(|| ResolveError::UnknownVar(name.to_string()))?;
        let e =
            parse_whole::<L>(text).map_err(|e| ResolveError::BadVar(name.to_string(), e.reason))?;
        let s = self.resolve_at(&e, depth + 1)?;
        L::cache(self).insert(name.to_string(), s.clone());
        Ok(s)
    }

    /// A list is its positive members minus its negated ones; with no
    /// positive member it starts from everything.
    fn resolve_at<L: Kind>(&mut self, e: &Expr<L>, depth: usize) -> Result<L::Set, ResolveError> {
        Ok(match e {
            Expr::Any => L::Set::any(),
            Expr::Var(n) => self.var_at::<L>(n, depth)?,
            Expr::Lit(l) => l.set(),
            Expr::Not(inner) => L::Set::any().minus(&self.resolve_at(inner, depth)?),
            Expr::List(items) => {
                let (mut pos, mut neg) = (L::Set::default(), L::Set::default());
                let mut any_pos = false;
                for it in items {
                    match it {
                        Expr::Not(inner) => neg = neg.union(&self.resolve_at(inner, depth)?),
                        _ => {
                            any_pos = true;
                            pos = pos.union(&self.resolve_at(it, depth)?);
                        }
                    }
                }
                if !any_pos {
                    pos = L::Set::any();
                }
                pos.minus(&neg)
            }
        })
    }
}

/// How a literal of each kind resolves: its set, the variables that are
/// not in [`Vars`] and where resolved variables are cached.
trait Kind: Literal {
    type Set: RangeSet;
    fn set(&self) -> Self::Set;
    fn builtin(vars: &Vars, name: &str) -> Option<Self::Set>;
    fn cache<'r>(r: &'r mut Resolver<'_>) -> &'r mut HashMap<String, Self::Set>;
}

impl Kind for AddrLit {
    type Set = AddrSet;
    fn set(&self) -> AddrSet {
        let range = match self {
            AddrLit::Net { ip, prefix } => {
                let a = Addr::from(*ip);
                let bits = if ip.is_ipv4() {
                    prefix.saturating_add(96)
                } else {
                    *prefix
                };
                prefix_range(addr_u128(&a), bits)
            }
            AddrLit::Range(a, b) => (addr_u128(&Addr::from(*a)), addr_u128(&Addr::from(*b))),
        };
        AddrSet {
            ranges: vec![range],
        }
    }
    /// `$HOME_NET` is the policy's home networks.
    fn builtin(vars: &Vars, name: &str) -> Option<AddrSet> {
        (name == "HOME_NET").then(|| vars.home.clone())
    }
    fn cache<'r>(r: &'r mut Resolver<'_>) -> &'r mut HashMap<String, AddrSet> {
        &mut r.addr_cache
    }
}

impl Kind for PortLit {
    type Set = PortSet;
    fn set(&self) -> PortSet {
        let range = match self {
            PortLit::Port(p) => (*p, *p),
            PortLit::Range(lo, hi) => (lo.unwrap_or(0), hi.unwrap_or(u16::MAX)),
        };
        PortSet {
            ranges: vec![range],
        }
    }
    fn builtin(_: &Vars, _: &str) -> Option<PortSet> {
        None
    }
    fn cache<'r>(r: &'r mut Resolver<'_>) -> &'r mut HashMap<String, PortSet> {
        &mut r.port_cache
    }
}

/// Whether a set is all of IPv4 and nothing else ("any" restricted to a family).
pub fn is_v4_everything(s: &AddrSet) -> bool {
    s.ranges() == [(V4_BASE, V4_BASE + 0xffff_ffff)]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::decode::a;

    fn vars() -> Vars {
        let home: Vec<Cidr> = ["10.0.0.0/8", "fd00::/8"]
            .iter()
            .map(|s| Cidr::parse(s).unwrap())
            .collect();
        let mut o = BTreeMap::new();
        o.insert("WEB".to_string(), "[10.1.1.1,10.1.1.2]".to_string());
        o.insert("LOOP".to_string(), "[$LOOP,1.1.1.1]".to_string());
        o.insert(
            "WEB_PORTS".to_string(),
            "[$HTTP_PORTS,8080:8090]".to_string(),
        );
        Vars::new(&home, &o)
    }

    fn addrs(s: &str) -> Result<AddrSet, ResolveError> {
        let v = vars();
        Resolver::new(&v).addrs(&AddrExpr::parse(s).unwrap())
    }

    fn ports(s: &str) -> Result<PortSet, ResolveError> {
        let v = vars();
        Resolver::new(&v).ports(&PortExpr::parse(s).unwrap())
    }

    #[test]
    fn address_expressions() {
        let s = addrs("$EXTERNAL_NET").unwrap();
        assert!(!s.contains(&a("10.2.3.4")));
        assert!(s.contains(&a("8.8.8.8")));
        assert!(s.contains(&a("2001:db8::1")), "IPv6 outside HOME_NET");
        assert!(!s.contains(&a("fd00::1")));
        let s = addrs("[192.168.0.0/16, !192.168.1.0/24, 1.2.3.4-1.2.3.6]").unwrap();
        assert!(s.contains(&a("192.168.2.1")));
        assert!(!s.contains(&a("192.168.1.7")));
        assert!(s.contains(&a("1.2.3.5")));
        assert!(!s.contains(&a("1.2.3.7")));
        let s = addrs("[!$HOME_NET, !8.8.8.8]").unwrap();
        assert!(s.contains(&a("8.8.4.4")) && !s.contains(&a("8.8.8.8")));
        let s = addrs("![$WEB]").unwrap();
        assert!(!s.contains(&a("10.1.1.2")) && s.contains(&a("10.1.1.3")));
        assert!(addrs("any").unwrap().is_any());
        let home = addrs("$HOME_NET").unwrap();
        assert!(addrs("10.1.0.0/16").unwrap().is_subset(&home));
        assert!(!addrs("[10.1.0.0/16,8.8.8.8]").unwrap().is_subset(&home));
        assert!(addrs("[10.1.0.0/16,8.8.8.8]").unwrap().intersects(&home));
        assert!(!addrs("$EXTERNAL_NET").unwrap().intersects(&home));
        assert_eq!(addrs("$NOPE"), Err(ResolveError::UnknownVar("NOPE".into())));
        assert_eq!(addrs("$LOOP"), Err(ResolveError::Cycle("LOOP".into())));
        assert_eq!(addrs("[1.1.1.1,!1.1.1.1]"), Err(ResolveError::Empty));
        assert!(matches!(
            addrs("$HTTP_PORTS"),
            Err(ResolveError::BadVar(..))
        ));
    }

    #[test]
    fn port_expressions() {
        let s = ports("$WEB_PORTS").unwrap();
        assert!(s.contains(80) && s.contains(8085) && !s.contains(8091));
        let s = ports("!$SHELLCODE_PORTS").unwrap();
        assert_eq!(s.ranges(), &[(80, 80)]);
        let s = ports("[1024:, !8080]").unwrap();
        assert!(s.contains(1024) && s.contains(65535) && !s.contains(8080) && !s.contains(80));
        let s = ports(":1023").unwrap();
        assert!(s.contains(0) && s.contains(1023) && !s.contains(1024));
        assert!(ports("[any]").unwrap().is_any());
        assert!(matches!(
            ports("$HOME_NET"),
            Err(ResolveError::BadVar(..) | ResolveError::UnknownVar(_))
        ));
    }

    #[test]
    fn syntax_errors_have_offsets() {
        let e = AddrExpr::parse("[1.1.1.1, 2.2.2]").unwrap_err();
        assert_eq!(e.offset, 10);
        let e = AddrExpr::parse("[1.1.1.1").unwrap_err();
        assert_eq!((e.offset, e.reason.as_str()), (0, "`[` is never closed"));
        let e = AddrExpr::parse("[1.1.1.1,!any]").unwrap_err();
        assert_eq!(
            (e.offset, e.reason.as_str()),
            (10, "`!any` matches nothing")
        );
        let e = PortExpr::parse("[80,90:70]").unwrap_err();
        assert_eq!(e.offset, 4);
        let e = PortExpr::parse("[]").unwrap_err();
        assert_eq!((e.offset, e.reason.as_str()), (1, "empty list"));
        let e = PortExpr::parse("80 81").unwrap_err();
        assert_eq!(e.offset, 3);
        let deep = "[".repeat(100);
        assert!(AddrExpr::parse(&deep).is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "any",
            "$HOME_NET",
            "!$HOME_NET",
            "[10.0.0.0/8,!10.1.0.0/16,1.2.3.4,2001:db8::/32,1.1.1.1-1.1.1.9]",
            "![1.1.1.1,[2.2.2.2,$X]]",
        ] {
            let e = AddrExpr::parse(s).unwrap();
            assert_eq!(e.to_string(), s);
            assert_eq!(AddrExpr::parse(&e.to_string()).unwrap(), e);
        }
        for s in [
            "any",
            "80",
            "1024:",
            ":1023",
            "[80,443,8000:8100,!8080]",
            "!$HTTP_PORTS",
        ] {
            let e = PortExpr::parse(s).unwrap();
            assert_eq!(e.to_string(), s);
        }
        // Host bits are dropped, as Suricata does.
        assert_eq!(
            AddrExpr::parse("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
    }
}
