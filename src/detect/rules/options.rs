//! Rule options: one typed value per supported keyword, parsed from the
//! text between `keyword:` and `;`, and printed back the same way.
//!
//! Supported: `msg`, `sid`, `rev`, `gid`, `classtype`, `priority`,
//! `metadata`, `reference`, `target`, `flags`, `flow`, `dsize`, `ttl`,
//! `ip_proto`, `itype`, `icode`, `ack`, `seq`, `window`, `threshold`,
//! `detection_filter`, `content` with `nocase`, `depth`, `offset`,
//! `distance`, `within` and `fast_pattern`, `flowbits`, and backflow's own
//! `detector`. Anything else is [`Reason::UnsupportedKeyword`].

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fmt;

use super::parser::Reason;
use super::threshold::ThresholdSpec;

/// A numeric comparison (`dsize`, `ttl`, `itype`, `icode`, `ip_proto`), in
/// Suricata's unsigned-integer syntax: `N`, `=N`, `!N`, `<N`, `<=N`, `>N`,
/// `>=N`, and the exclusive ranges `A<>B` and `A-B`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp<T> {
    Eq(T),
    Ne(T),
    Lt(T),
    Le(T),
    Gt(T),
    Ge(T),
    /// Strictly between the two.
    Range(T, T),
}

impl<T: Copy + Ord> Cmp<T> {
    pub fn matches(&self, v: T) -> bool {
        match *self {
            Cmp::Eq(x) => v == x,
            Cmp::Ne(x) => v != x,
            Cmp::Lt(x) => v < x,
            Cmp::Le(x) => v <= x,
            Cmp::Gt(x) => v > x,
            Cmp::Ge(x) => v >= x,
            Cmp::Range(a, b) => a < v && v < b,
        }
    }
}

impl<T: fmt::Display> fmt::Display for Cmp<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cmp::Eq(x) => write!(f, "{x}"),
            Cmp::Ne(x) => write!(f, "!{x}"),
            Cmp::Lt(x) => write!(f, "<{x}"),
            Cmp::Le(x) => write!(f, "<={x}"),
            Cmp::Gt(x) => write!(f, ">{x}"),
            Cmp::Ge(x) => write!(f, ">={x}"),
            Cmp::Range(a, b) => write!(f, "{a}<>{b}"),
        }
    }
}

fn parse_num<T: std::str::FromStr>(s: &str) -> Result<T, Reason> {
    s.trim()
        .parse::<T>()
        .map_err(|_| Reason::BadValue(format!("`{}` is not a number in range", s.trim())))
}

pub fn parse_cmp<T: std::str::FromStr + Copy + Ord>(s: &str) -> Result<Cmp<T>, Reason> {
    let s = s.trim();
    for sep in ["<>", "-"] {
        if let Some((a, b)) = s.split_once(sep)
            && !a.trim().is_empty()
        {
            let (a, b): (T, T) = (parse_num(a)?, parse_num(b)?);
            if a >= b {
                return Err(Reason::BadValue(format!(
                    "`{s}`: the range is empty (both ends are excluded)"
                )));
            }
            return Ok(Cmp::Range(a, b));
        }
    }
    let (ctor, rest): (fn(T) -> Cmp<T>, &str) = if let Some(r) = s.strip_prefix("<=") {
        (Cmp::Le, r)
    } else if let Some(r) = s.strip_prefix(">=") {
        (Cmp::Ge, r)
    } else if let Some(r) = s.strip_prefix('<') {
        (Cmp::Lt, r)
    } else if let Some(r) = s.strip_prefix('>') {
        (Cmp::Gt, r)
    } else if let Some(r) = s.strip_prefix('!') {
        (Cmp::Ne, r)
    } else if let Some(r) = s.strip_prefix('=') {
        (Cmp::Eq, r)
    } else {
        (Cmp::Eq, s)
    };
    Ok(ctor(parse_num(rest)?))
}

/// `flags`: which TCP flags, how they are compared, and which to ignore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags {
    pub mode: FlagMode,
    pub set: u8,
    pub ignore: u8,
}

/// `flags` modifiers: none (exactly these), `+` (these and maybe others),
/// `*` (any of these), `!` (none of these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagMode {
    Exact,
    All,
    Any,
    Not,
}

const FLAG_LETTERS: [(char, u8); 8] = [
    ('F', 0x01),
    ('S', 0x02),
    ('R', 0x04),
    ('P', 0x08),
    ('A', 0x10),
    ('U', 0x20),
    ('C', 0x80),
    ('E', 0x40),
];

fn flag_bits(s: &str) -> Result<u8, Reason> {
    let mut bits = 0u8;
    for c in s.chars() {
        bits |= match c.to_ascii_uppercase() {
            '0' => 0,
            // Snort's names for the two bits that became CWR and ECE.
            '1' => 0x80,
            '2' => 0x40,
            u => FLAG_LETTERS
                .iter()
                .find(|(l, _)| *l == u)
                .map(|(_, b)| *b)
                .ok_or_else(|| {
                    Reason::BadValue(format!("`{c}` is not a TCP flag (FSRPAUCE, 0, 1, 2)"))
                })?,
        };
    }
    Ok(bits)
}

fn flag_letters(bits: u8) -> String {
    FLAG_LETTERS
        .iter()
        .filter(|(_, b)| bits & b != 0)
        .map(|(l, _)| *l)
        .collect()
}

impl Flags {
    pub fn parse(s: &str) -> Result<Flags, Reason> {
        let (main, ignore) = match s.split_once(',') {
            Some((m, i)) => (m.trim(), Some(i.trim())),
            None => (s.trim(), None),
        };
        let mut mode = FlagMode::Exact;
        let mut letters = String::new();
        for c in main.chars() {
            let m = match c {
                '+' => FlagMode::All,
                '*' => FlagMode::Any,
                '!' => FlagMode::Not,
                _ => {
                    letters.push(c);
                    continue;
                }
            };
            if mode != FlagMode::Exact {
                return Err(Reason::BadValue("more than one modifier".into()));
            }
            mode = m;
        }
        if letters.is_empty() {
            return Err(Reason::BadValue("no flags given".into()));
        }
        if letters.contains('0') && letters.len() > 1 {
            return Err(Reason::BadValue("`0` (no flags) cannot be combined".into()));
        }
        Ok(Flags {
            mode,
            set: flag_bits(&letters)?,
            ignore: match ignore {
                Some(i) if !i.is_empty() => flag_bits(i)?,
                Some(_) => return Err(Reason::BadValue("empty mask".into())),
                None => 0,
            },
        })
    }

    pub fn matches(&self, flags: u8) -> bool {
        let f = flags & !self.ignore;
        match self.mode {
            FlagMode::Exact => f == self.set,
            FlagMode::All => f & self.set == self.set,
            FlagMode::Any => f & self.set != 0,
            FlagMode::Not => f & self.set == 0,
        }
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = match self.mode {
            FlagMode::Exact => "",
            FlagMode::All => "+",
            FlagMode::Any => "*",
            FlagMode::Not => "!",
        };
        let set = if self.set == 0 {
            "0".to_string()
        } else {
            flag_letters(self.set)
        };
        write!(f, "{m}{set}")?;
        if self.ignore != 0 {
            write!(f, ",{}", flag_letters(self.ignore))?;
        }
        Ok(())
    }
}

/// `flow`: direction and connection state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowOpt {
    /// Some(true): to_server/from_client; Some(false): to_client/from_server.
    pub to_server: Option<bool>,
    pub state: Option<FlowState>,
    /// `no_stream`: always true here, as only packets are inspected.
    pub no_stream: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowState {
    Established,
    NotEstablished,
    Stateless,
}

impl FlowOpt {
    pub fn parse(s: &str) -> Result<FlowOpt, Reason> {
        let mut o = FlowOpt::default();
        for part in s.split(',').map(str::trim) {
            let (dir, state) = match part {
                "to_server" | "from_client" => (Some(true), None),
                "to_client" | "from_server" => (Some(false), None),
                "established" => (None, Some(FlowState::Established)),
                "not_established" => (None, Some(FlowState::NotEstablished)),
                "stateless" => (None, Some(FlowState::Stateless)),
                "no_stream" => {
                    o.no_stream = true;
                    continue;
                }
                "only_stream" | "only_frag" | "no_frag" => {
                    return Err(Reason::Unsupported {
                        what: format!("flow `{part}`"),
                        why: "stream reassembly and fragment tracking are not done".into(),
                    });
                }
                "" => return Err(Reason::BadValue("empty flow option".into())),
                other => return Err(Reason::BadValue(format!("unknown flow option `{other}`"))),
            };
            if dir.is_some() {
                if o.to_server.is_some() {
                    return Err(Reason::Conflict("two directions".into()));
                }
                o.to_server = dir;
            }
            if state.is_some() {
                if o.state.is_some() {
                    return Err(Reason::Conflict("two connection states".into()));
                }
                o.state = state;
            }
        }
        Ok(o)
    }
}

impl fmt::Display for FlowOpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<&str> = Vec::new();
        match self.state {
            Some(FlowState::Established) => parts.push("established"),
            Some(FlowState::NotEstablished) => parts.push("not_established"),
            Some(FlowState::Stateless) => parts.push("stateless"),
            None => {}
        }
        match self.to_server {
            Some(true) => parts.push("to_server"),
            Some(false) => parts.push("to_client"),
            None => {}
        }
        if self.no_stream {
            parts.push("no_stream");
        }
        f.write_str(&parts.join(","))
    }
}

/// `fast_pattern` forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastPattern {
    Yes,
    Only,
    /// Use `len` bytes from `offset` of the content as the prefilter pattern.
    Chop(u16, u16),
}

/// One `content` with its modifiers.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Content {
    pub pattern: Vec<u8>,
    pub negated: bool,
    pub nocase: bool,
    pub offset: Option<u32>,
    pub depth: Option<u32>,
    pub distance: Option<i32>,
    pub within: Option<u32>,
    pub fast_pattern: Option<FastPattern>,
    /// `startswith`: at the start of the payload.
    pub startswith: bool,
    /// `endswith`: at the end of the payload.
    pub endswith: bool,
}

impl Content {
    pub fn is_relative(&self) -> bool {
        self.distance.is_some() || self.within.is_some()
    }

    fn has_window(&self) -> bool {
        self.offset.is_some() || self.depth.is_some() || self.is_relative()
    }

    /// Parses `"text|41 42|more"` or `!"..."`; errors carry the byte offset
    /// into `s`.
    pub fn parse(s: &str) -> Result<Content, (usize, Reason)> {
        let lead = s.len() - s.trim_start().len();
        let t = s.trim();
        let (negated, body_at) = match t.strip_prefix('!') {
            Some(rest) => (true, lead + 1 + (rest.len() - rest.trim_start().len())),
            None => (false, lead),
        };
        let body = s.get(body_at..).unwrap_or("").trim_end();
        let inner = body
            .strip_prefix('"')
            .and_then(|b| b.strip_suffix('"'))
            .filter(|_| body.len() >= 2)
            .ok_or((
                body_at,
                Reason::BadValue("content must be in double quotes".into()),
            ))?;
        let base = body_at + 1;
        let mut out = Vec::with_capacity(inner.len());
        let bytes = inner.as_bytes();
        let mut i = 0;
        let mut hex = false;
        let mut hex_start = 0;
        let mut nibble: Option<u8> = None;
        while let Some(&c) = bytes.get(i) {
            if hex {
                match c {
                    b'|' => {
                        if nibble.is_some() {
                            return Err((
                                base + i,
                                Reason::BadValue("odd number of hex digits".into()),
                            ));
                        }
                        hex = false;
                    }
                    b' ' | b'\t' => {
                        if nibble.is_some() {
                            return Err((
                                base + i,
                                Reason::BadValue("hex byte split by a space".into()),
                            ));
                        }
                    }
                    _ => {
                        let d = (c as char).to_digit(16).ok_or((
                            base + i,
                            Reason::BadValue(format!("`{}` is not a hex digit", c as char)),
                        ))? as u8;
                        match nibble.take() {
                            Some(h) => out.push(h << 4 | d),
                            None => nibble = Some(d),
                        }
                    }
                }
                i += 1;
                continue;
            }
            match c {
                b'|' => {
                    hex = true;
                    hex_start = i;
                }
                b'\\' => {
                    i += 1;
                    match bytes.get(i) {
                        Some(&e) => out.push(e),
                        None => {
                            return Err((base + i - 1, Reason::BadValue("dangling `\\`".into())));
                        }
                    }
                }
                b'"' => {
                    return Err((
                        base + i,
                        Reason::BadValue("unescaped `\"` inside content".into()),
                    ));
                }
                _ => out.push(c),
            }
            i += 1;
        }
        if hex {
            return Err((
                base + hex_start,
                Reason::BadValue("`|` hex block is never closed".into()),
            ));
        }
        if out.is_empty() {
            return Err((body_at, Reason::BadValue("empty content".into())));
        }
        Ok(Content {
            pattern: out,
            negated,
            ..Content::default()
        })
    }
}

/// Writes bytes as a quoted content string: printable text as is, the rest
/// (and the characters with a meaning inside content) as `|hex|`.
pub fn write_content_bytes(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    f.write_str("\"")?;
    let mut in_hex = false;
    for &c in b {
        let plain = (0x20..0x7f).contains(&c) && !matches!(c, b'"' | b';' | b'\\' | b'|' | b':');
        if plain {
            if in_hex {
                f.write_str("|")?;
                in_hex = false;
            }
            write!(f, "{}", c as char)?;
        } else {
            if in_hex {
                write!(f, " {c:02X}")?;
            } else {
                write!(f, "|{c:02X}")?;
                in_hex = true;
            }
        }
    }
    if in_hex {
        f.write_str("|")?;
    }
    f.write_str("\"")
}

impl fmt::Display for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("content:")?;
        if self.negated {
            f.write_str("!")?;
        }
        write_content_bytes(f, &self.pattern)?;
        f.write_str(";")?;
        if self.nocase {
            f.write_str(" nocase;")?;
        }
        if let Some(o) = self.offset {
            write!(f, " offset:{o};")?;
        }
        if let Some(d) = self.depth {
            write!(f, " depth:{d};")?;
        }
        if let Some(d) = self.distance {
            write!(f, " distance:{d};")?;
        }
        if let Some(w) = self.within {
            write!(f, " within:{w};")?;
        }
        if self.startswith {
            f.write_str(" startswith;")?;
        }
        if self.endswith {
            f.write_str(" endswith;")?;
        }
        match self.fast_pattern {
            Some(FastPattern::Yes) => f.write_str(" fast_pattern;")?,
            Some(FastPattern::Only) => f.write_str(" fast_pattern:only;")?,
            Some(FastPattern::Chop(o, l)) => write!(f, " fast_pattern:{o},{l};")?,
            None => {}
        }
        Ok(())
    }
}

/// `flowbits` operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flowbit {
    Set(String),
    Unset(String),
    IsSet(String),
    IsNotSet(String),
    NoAlert,
}

impl Flowbit {
    pub fn parse(s: &str) -> Result<Flowbit, Reason> {
        let (cmd, name) = match s.split_once(',') {
            Some((c, n)) => (c.trim(), Some(n.trim())),
            None => (s.trim(), None),
        };
        let need = |n: Option<&str>| -> Result<String, Reason> {
            let n = n
                .filter(|n| !n.is_empty())
                .ok_or_else(|| Reason::BadValue(format!("`{cmd}` needs a flowbit name")))?;
            if n.contains(['|', '&']) {
                return Err(Reason::Unsupported {
                    what: "flowbits groups".into(),
                    why: "`|` and `&` between names are not supported".into(),
                });
            }
            if !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(Reason::BadValue(format!("`{n}` is not a flowbit name")));
            }
            Ok(n.to_string())
        };
        Ok(match cmd {
            "set" => Flowbit::Set(need(name)?),
            "unset" => Flowbit::Unset(need(name)?),
            "isset" => Flowbit::IsSet(need(name)?),
            "isnotset" => Flowbit::IsNotSet(need(name)?),
            "noalert" if name.is_none() => Flowbit::NoAlert,
            "noalert" => return Err(Reason::BadValue("`noalert` takes no name".into())),
            "toggle" => {
                return Err(Reason::Unsupported {
                    what: "flowbits `toggle`".into(),
                    why: "use set and unset".into(),
                });
            }
            other => {
                return Err(Reason::BadValue(format!(
                    "unknown flowbits command `{other}` (set, unset, isset, isnotset, noalert)"
                )));
            }
        })
    }
}

impl fmt::Display for Flowbit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flowbit::Set(n) => write!(f, "set,{n}"),
            Flowbit::Unset(n) => write!(f, "unset,{n}"),
            Flowbit::IsSet(n) => write!(f, "isset,{n}"),
            Flowbit::IsNotSet(n) => write!(f, "isnotset,{n}"),
            Flowbit::NoAlert => f.write_str("noalert"),
        }
    }
}

/// `target`: which side of the packet the rule's victim is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    SrcIp,
    DestIp,
}

/// One option of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opt {
    Msg(String),
    Sid(u32),
    Rev(u32),
    Gid(u32),
    Classtype(String),
    Priority(u8),
    /// `key value` entries.
    Metadata(Vec<String>),
    Reference(String, String),
    Target(Target),
    Flags(Flags),
    Flow(FlowOpt),
    Dsize(Cmp<u16>),
    Ttl(Cmp<u8>),
    IpProto(Cmp<u8>),
    Itype(Cmp<u8>),
    Icode(Cmp<u8>),
    Ack(u32),
    Seq(u32),
    Window {
        negated: bool,
        size: u16,
    },
    Threshold(ThresholdSpec),
    DetectionFilter(ThresholdSpec),
    Content(Content),
    Flowbits(Flowbit),
    /// backflow's own: this rule describes a built-in detector.
    Detector(String),
}

impl Opt {
    pub fn keyword(&self) -> &'static str {
        match self {
            Opt::Msg(_) => "msg",
            Opt::Sid(_) => "sid",
            Opt::Rev(_) => "rev",
            Opt::Gid(_) => "gid",
            Opt::Classtype(_) => "classtype",
            Opt::Priority(_) => "priority",
            Opt::Metadata(_) => "metadata",
            Opt::Reference(..) => "reference",
            Opt::Target(_) => "target",
            Opt::Flags(_) => "flags",
            Opt::Flow(_) => "flow",
            Opt::Dsize(_) => "dsize",
            Opt::Ttl(_) => "ttl",
            Opt::IpProto(_) => "ip_proto",
            Opt::Itype(_) => "itype",
            Opt::Icode(_) => "icode",
            Opt::Ack(_) => "ack",
            Opt::Seq(_) => "seq",
            Opt::Window { .. } => "window",
            Opt::Threshold(_) => "threshold",
            Opt::DetectionFilter(_) => "detection_filter",
            Opt::Content(_) => "content",
            Opt::Flowbits(_) => "flowbits",
            Opt::Detector(_) => "detector",
        }
    }
}

/// Writes a quoted `msg`-style string, escaping `"`, `;` and `\`.
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if matches!(c, '"' | ';' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

impl fmt::Display for Opt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Opt::Content(c) = self {
            return write!(f, "{c}");
        }
        let body = OptBody(self).to_string();
        // A value ending in a backslash (free text: metadata, reference)
        // would escape the terminating `;`; values are trimmed when parsed,
        // so a space keeps the text as it was.
        let pad = if body.ends_with('\\') { " " } else { "" };
        write!(f, "{body}{pad};")
    }
}

/// An option as `keyword:value`, without the terminating `;`.
struct OptBody<'a>(&'a Opt);

impl fmt::Display for OptBody<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Opt::Content(c) => write!(f, "{c}")?,
            Opt::Msg(m) => {
                f.write_str("msg:")?;
                write_quoted(f, m)?;
            }
            Opt::Sid(n) | Opt::Rev(n) | Opt::Gid(n) | Opt::Ack(n) | Opt::Seq(n) => {
                write!(f, "{}:{n}", self.0.keyword())?
            }
            Opt::Classtype(c) => write!(f, "classtype:{c}")?,
            Opt::Priority(p) => write!(f, "priority:{p}")?,
            Opt::Metadata(v) => write!(f, "metadata:{}", v.join(", "))?,
            Opt::Reference(k, v) => write!(f, "reference:{k},{v}")?,
            Opt::Target(t) => write!(
                f,
                "target:{}",
                match t {
                    Target::SrcIp => "src_ip",
                    Target::DestIp => "dest_ip",
                }
            )?,
            Opt::Flags(x) => write!(f, "flags:{x}")?,
            Opt::Flow(x) => write!(f, "flow:{x}")?,
            Opt::Dsize(c) => write!(f, "dsize:{c}")?,
            Opt::Ttl(c) | Opt::IpProto(c) | Opt::Itype(c) | Opt::Icode(c) => {
                write!(f, "{}:{c}", self.0.keyword())?
            }
            Opt::Window { negated, size } => {
                write!(f, "window:{}{size}", if *negated { "!" } else { "" })?
            }
            Opt::Threshold(t) => write!(f, "threshold:{t}")?,
            Opt::DetectionFilter(t) => write!(f, "detection_filter:{t}")?,
            Opt::Flowbits(b) => write!(f, "flowbits:{b}")?,
            Opt::Detector(k) => write!(f, "detector:{k}")?,
        }
        Ok(())
    }
}

/// IP protocol names `ip_proto` accepts besides numbers.
const PROTO_NAMES: &[(&str, u8)] = &[
    ("icmp", 1),
    ("igmp", 2),
    ("ipip", 4),
    ("tcp", 6),
    ("egp", 8),
    ("igp", 9),
    ("udp", 17),
    ("ipv6", 41),
    ("ipv6-route", 43),
    ("ipv6-frag", 44),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("eigrp", 88),
    ("ospf", 89),
    ("pim", 103),
    ("vrrp", 112),
    ("l2tp", 115),
    ("sctp", 132),
];

fn parse_ip_proto(s: &str) -> Result<Cmp<u8>, Reason> {
    let t = s.trim();
    let (prefix, name) = match t.find(|c: char| c.is_ascii_alphanumeric()) {
        Some(i) => t.split_at(i),
        None => return Err(Reason::BadValue("missing protocol".into())),
    };
    let num = match PROTO_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
    {
        Some((_, p)) => p.to_string(),
        None => name.to_string(),
    };
    if !matches!(prefix, "" | "!" | "<" | ">") {
        return Err(Reason::BadValue(format!("`{prefix}`: use !, < or >")));
    }
    parse_cmp::<u8>(&format!("{prefix}{num}"))
}

/// Strips the quotes of a `msg`-style value and resolves `\` escapes.
fn unquote(s: &str) -> Result<String, Reason> {
    let t = s.trim();
    let inner = t
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .filter(|_| t.len() >= 2)
        .ok_or_else(|| Reason::BadValue("must be in double quotes".into()))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e) => out.push(e),
                None => return Err(Reason::BadValue("dangling `\\`".into())),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn no_value(value: Option<&str>) -> Result<(), Reason> {
    match value {
        Some(v) if !v.trim().is_empty() => Err(Reason::BadValue("takes no value".into())),
        _ => Ok(()),
    }
}

fn value(v: Option<&str>) -> Result<&str, Reason> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Reason::BadValue("needs a value".into()))
}

/// The last content of the rule so far, for a modifier.
fn last_content<'a>(opts: &'a mut [Opt], kw: &str) -> Result<&'a mut Content, Reason> {
    opts.iter_mut()
        .rev()
        .find_map(|o| match o {
            Opt::Content(c) => Some(c),
            _ => None,
        })
        .ok_or_else(|| Reason::Syntax(format!("`{kw}` needs a preceding content")))
}

/// Keywords of Suricata that name a sticky buffer or an application-layer
/// inspection: reported as unsupported like any other, with the reason that
/// only packet payloads are inspected.
fn is_buffer_keyword(kw: &str) -> bool {
    kw.contains('.')
        || kw.starts_with("http_")
        || kw.starts_with("dns_")
        || kw.starts_with("tls_")
        || matches!(kw, "file_data" | "pkt_data" | "base64_data" | "raw_data")
}

/// Parses one option and appends it to `opts` (content modifiers change the
/// content before them). Errors carry a byte offset into `value` when the
/// value is at fault, else None (the keyword).
pub fn parse_option(
    keyword: &str,
    raw: Option<&str>,
    opts: &mut Vec<Opt>,
) -> Result<(), (Option<usize>, Reason)> {
    let at_value = |r: Reason| {
        let lead = raw.map_or(0, |v| v.len() - v.trim_start().len());
        (Some(lead), r)
    };
    let o = match keyword {
        "msg" => Opt::Msg(unquote(value(raw).map_err(at_value)?).map_err(at_value)?),
        "sid" | "rev" | "gid" => {
            let n: u32 = parse_num(value(raw).map_err(at_value)?).map_err(at_value)?;
            if keyword == "sid" && n == 0 {
                return Err(at_value(Reason::BadValue("sid 0 is not allowed".into())));
            }
            match keyword {
                "sid" => Opt::Sid(n),
                "rev" => Opt::Rev(n),
                _ => Opt::Gid(n),
            }
        }
        "classtype" => {
            let c = value(raw).map_err(at_value)?;
            if !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            {
                return Err(at_value(Reason::BadValue(format!(
                    "`{c}` is not a classtype name"
                ))));
            }
            Opt::Classtype(c.to_string())
        }
        "priority" => {
            let p: u8 = parse_num(value(raw).map_err(at_value)?).map_err(at_value)?;
            if p == 0 {
                return Err(at_value(Reason::BadValue("priority starts at 1".into())));
            }
            Opt::Priority(p)
        }
        "metadata" => Opt::Metadata(
            value(raw)
                .map_err(at_value)?
                .split(',')
                .map(|e| e.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|e| !e.is_empty())
                .collect(),
        ),
        "reference" => {
            let v = value(raw).map_err(at_value)?;
            let (k, r) = v
                .split_once(',')
                .ok_or_else(|| at_value(Reason::BadValue("expected `type,reference`".into())))?;
            Opt::Reference(k.trim().to_string(), r.trim().to_string())
        }
        "target" => Opt::Target(match value(raw).map_err(at_value)? {
            "src_ip" => Target::SrcIp,
            "dest_ip" => Target::DestIp,
            other => {
                return Err(at_value(Reason::BadValue(format!(
                    "`{other}`: expected src_ip or dest_ip"
                ))));
            }
        }),
        "flags" => Opt::Flags(Flags::parse(value(raw).map_err(at_value)?).map_err(at_value)?),
        "flow" => Opt::Flow(FlowOpt::parse(value(raw).map_err(at_value)?).map_err(at_value)?),
        "dsize" => Opt::Dsize(parse_cmp(value(raw).map_err(at_value)?).map_err(at_value)?),
        "ttl" => Opt::Ttl(parse_cmp(value(raw).map_err(at_value)?).map_err(at_value)?),
        "itype" => Opt::Itype(parse_cmp(value(raw).map_err(at_value)?).map_err(at_value)?),
        "icode" => Opt::Icode(parse_cmp(value(raw).map_err(at_value)?).map_err(at_value)?),
        "ip_proto" => {
            Opt::IpProto(parse_ip_proto(value(raw).map_err(at_value)?).map_err(at_value)?)
        }
        "ack" => Opt::Ack(parse_num(value(raw).map_err(at_value)?).map_err(at_value)?),
        "seq" => Opt::Seq(parse_num(value(raw).map_err(at_value)?).map_err(at_value)?),
        "window" => {
            let v = value(raw).map_err(at_value)?;
            let (negated, n) = match v.strip_prefix('!') {
                Some(n) => (true, n),
                None => (false, v),
            };
            Opt::Window {
                negated,
                size: parse_num(n).map_err(at_value)?,
            }
        }
        "threshold" => Opt::Threshold(
            ThresholdSpec::parse_option(value(raw).map_err(at_value)?, false).map_err(at_value)?,
        ),
        "detection_filter" => Opt::DetectionFilter(
            ThresholdSpec::parse_option(value(raw).map_err(at_value)?, true).map_err(at_value)?,
        ),
        "content" => {
            let v = raw.unwrap_or("");
            Opt::Content(Content::parse(v).map_err(|(at, r)| (Some(at), r))?)
        }
        "nocase" | "startswith" | "endswith" => {
            no_value(raw).map_err(at_value)?;
            let c = last_content(opts, keyword).map_err(|r| (None, r))?;
            let slot = match keyword {
                "nocase" => &mut c.nocase,
                "startswith" => {
                    if c.has_window() {
                        return Err((
                            None,
                            Reason::Conflict(
                                "`startswith` cannot be mixed with offset, depth, distance or within"
                                    .into(),
                            ),
                        ));
                    }
                    &mut c.startswith
                }
                _ => &mut c.endswith,
            };
            if std::mem::replace(slot, true) {
                return Err((None, Reason::Conflict(format!("`{keyword}` given twice"))));
            }
            return Ok(());
        }
        "depth" | "offset" | "within" | "distance" => {
            // `distance` may be negative (back from the previous match).
            let n: i64 = value(raw).map_err(at_value).and_then(|v| {
                let n = parse_num::<i64>(v).ok().filter(|n| match keyword {
                    "distance" => i32::try_from(*n).is_ok(),
                    _ => u32::try_from(*n).is_ok(),
                });
                n.ok_or_else(|| {
                    at_value(Reason::BadValue(format!(
                        "`{}` is not a number (variables from byte_extract are not supported)",
                        v.trim()
                    )))
                })
            })?;
            let c = last_content(opts, keyword).map_err(|r| (None, r))?;
            if c.startswith {
                return Err((
                    None,
                    Reason::Conflict(format!("`{keyword}` cannot follow `startswith`")),
                ));
            }
            let given = match keyword {
                "depth" => c.depth.is_some(),
                "offset" => c.offset.is_some(),
                "within" => c.within.is_some(),
                _ => c.distance.is_some(),
            };
            let mixed = if matches!(keyword, "within" | "distance") {
                c.depth.is_some() || c.offset.is_some()
            } else {
                c.distance.is_some() || c.within.is_some()
            };
            if given {
                return Err((None, Reason::Conflict(format!("`{keyword}` given twice"))));
            }
            if mixed {
                return Err((
                    None,
                    Reason::Conflict(
                        "a content cannot mix absolute (offset, depth) and relative (distance, within) modifiers".into(),
                    ),
                ));
            }
            // In range for each: checked above.
            match keyword {
                "depth" => c.depth = u32::try_from(n).ok(),
                "offset" => c.offset = u32::try_from(n).ok(),
                "within" => c.within = u32::try_from(n).ok(),
                _ => c.distance = i32::try_from(n).ok(),
            }
            let len = i64::try_from(c.pattern.len()).unwrap_or(i64::MAX);
            if matches!(keyword, "depth" | "within") && n < len {
                return Err(at_value(Reason::BadValue(format!(
                    "{keyword} {n} is shorter than the content ({len} bytes)"
                ))));
            }
            return Ok(());
        }
        "fast_pattern" => {
            let fp = match raw.map(str::trim) {
                None | Some("") => FastPattern::Yes,
                Some("only") => FastPattern::Only,
                Some(v) => {
                    let (a, b) = v.split_once(',').ok_or_else(|| {
                        at_value(Reason::BadValue(
                            "expected `only` or `offset,length`".into(),
                        ))
                    })?;
                    FastPattern::Chop(
                        parse_num(a).map_err(at_value)?,
                        parse_num(b).map_err(at_value)?,
                    )
                }
            };
            let c = last_content(opts, keyword).map_err(|r| (None, r))?;
            if let FastPattern::Chop(o, l) = fp
                && (l == 0 || usize::from(o) + usize::from(l) > c.pattern.len())
            {
                return Err(at_value(Reason::BadValue(
                    "the chop is outside the content".into(),
                )));
            }
            if c.negated && fp == FastPattern::Only {
                return Err((
                    None,
                    Reason::Conflict("a negated content cannot be `fast_pattern:only`".into()),
                ));
            }
            c.fast_pattern = Some(fp);
            return Ok(());
        }
        "flowbits" => {
            Opt::Flowbits(Flowbit::parse(value(raw).map_err(at_value)?).map_err(at_value)?)
        }
        "detector" => {
            let v = value(raw).map_err(at_value)?;
            Opt::Detector(v.to_string())
        }
        kw if is_buffer_keyword(kw) => {
            return Err((
                None,
                Reason::Unsupported {
                    what: format!("keyword `{kw}`"),
                    why: "application-layer buffers are not inspected (packet payload only)".into(),
                },
            ));
        }
        _ => return Err((None, Reason::UnsupportedKeyword)),
    };
    // Options that may appear once.
    let single = !matches!(
        o,
        Opt::Metadata(_) | Opt::Reference(..) | Opt::Content(_) | Opt::Flowbits(_)
    );
    if single && opts.iter().any(|p| p.keyword() == o.keyword()) {
        return Err((
            None,
            Reason::Conflict(format!("`{}` given twice", o.keyword())),
        ));
    }
    if matches!(o, Opt::Threshold(_) | Opt::DetectionFilter(_))
        && opts
            .iter()
            .any(|p| matches!(p, Opt::Threshold(_) | Opt::DetectionFilter(_)))
    {
        return Err((
            None,
            Reason::Conflict("only one `threshold` or `detection_filter` per rule".into()),
        ));
    }
    opts.push(o);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::detect::rules::threshold::{ThresholdKind, Track};

    fn one(kw: &str, v: Option<&str>) -> Result<Opt, (Option<usize>, Reason)> {
        let mut opts = Vec::new();
        parse_option(kw, v, &mut opts)?;
        Ok(opts.pop().unwrap())
    }

    #[test]
    fn every_keyword_parses() {
        assert_eq!(
            one("msg", Some(r#""a \"b\"\; c""#)).unwrap(),
            Opt::Msg("a \"b\"; c".into())
        );
        assert_eq!(one("sid", Some("12")).unwrap(), Opt::Sid(12));
        assert_eq!(one("rev", Some(" 3 ")).unwrap(), Opt::Rev(3));
        assert_eq!(one("gid", Some("1")).unwrap(), Opt::Gid(1));
        assert_eq!(
            one("classtype", Some("bad-unknown")).unwrap(),
            Opt::Classtype("bad-unknown".into())
        );
        assert_eq!(one("priority", Some("2")).unwrap(), Opt::Priority(2));
        assert_eq!(
            one(
                "metadata",
                Some("created_at 2010_07_30,  updated_at 2019_07_26")
            )
            .unwrap(),
            Opt::Metadata(vec![
                "created_at 2010_07_30".into(),
                "updated_at 2019_07_26".into()
            ])
        );
        assert_eq!(
            one("reference", Some("url,www.example.com/a,b")).unwrap(),
            Opt::Reference("url".into(), "www.example.com/a,b".into())
        );
        assert_eq!(
            one("target", Some("dest_ip")).unwrap(),
            Opt::Target(Target::DestIp)
        );
        assert_eq!(
            one("flags", Some("S,12")).unwrap(),
            Opt::Flags(Flags {
                mode: FlagMode::Exact,
                set: 0x02,
                ignore: 0xc0
            })
        );
        assert_eq!(
            one("flow", Some("established, to_server")).unwrap(),
            Opt::Flow(FlowOpt {
                to_server: Some(true),
                state: Some(FlowState::Established),
                no_stream: false
            })
        );
        assert_eq!(
            one("dsize", Some(">1000")).unwrap(),
            Opt::Dsize(Cmp::Gt(1000))
        );
        assert_eq!(
            one("dsize", Some("9<>18")).unwrap(),
            Opt::Dsize(Cmp::Range(9, 18))
        );
        assert_eq!(one("ttl", Some("<=64")).unwrap(), Opt::Ttl(Cmp::Le(64)));
        assert_eq!(one("itype", Some("8")).unwrap(), Opt::Itype(Cmp::Eq(8)));
        assert_eq!(one("icode", Some(">0")).unwrap(), Opt::Icode(Cmp::Gt(0)));
        assert_eq!(
            one("ip_proto", Some("igmp")).unwrap(),
            Opt::IpProto(Cmp::Eq(2))
        );
        assert_eq!(
            one("ip_proto", Some("!tcp")).unwrap(),
            Opt::IpProto(Cmp::Ne(6))
        );
        assert_eq!(one("ack", Some("0")).unwrap(), Opt::Ack(0));
        assert_eq!(one("seq", Some("4294967295")).unwrap(), Opt::Seq(u32::MAX));
        assert_eq!(
            one("window", Some("!2048")).unwrap(),
            Opt::Window {
                negated: true,
                size: 2048
            }
        );
        assert_eq!(
            one(
                "threshold",
                Some("type both, track by_src, count 1, seconds 600")
            )
            .unwrap(),
            Opt::Threshold(ThresholdSpec {
                kind: ThresholdKind::Both,
                track: Track::BySrc,
                count: 1,
                seconds: 600
            })
        );
        assert_eq!(
            one(
                "detection_filter",
                Some("track by_dst, count 10, seconds 60")
            )
            .unwrap(),
            Opt::DetectionFilter(ThresholdSpec {
                kind: ThresholdKind::Detection,
                track: Track::ByDst,
                count: 10,
                seconds: 60
            })
        );
        assert_eq!(
            one("flowbits", Some("set,ET.Evil")).unwrap(),
            Opt::Flowbits(Flowbit::Set("ET.Evil".into()))
        );
        assert_eq!(
            one("flowbits", Some("isnotset, a_b")).unwrap(),
            Opt::Flowbits(Flowbit::IsNotSet("a_b".into()))
        );
        assert_eq!(
            one("flowbits", Some("noalert")).unwrap(),
            Opt::Flowbits(Flowbit::NoAlert)
        );
        assert_eq!(
            one("detector", Some("port_scan")).unwrap(),
            Opt::Detector("port_scan".into())
        );
        let Opt::Content(c) = one("content", Some(r#"!"GET |20 2f|\"x\;""#)).unwrap() else {
            panic!()
        };
        assert!(c.negated);
        assert_eq!(c.pattern, b"GET  /\"x;");
    }

    #[test]
    fn content_modifiers_attach_to_the_last_content() {
        let mut opts = Vec::new();
        for (k, v) in [
            ("content", Some("\"abc\"")),
            ("nocase", None),
            ("offset", Some("2")),
            ("depth", Some("10")),
            ("content", Some("\"|00 01|\"")),
            ("distance", Some("-2")),
            ("within", Some("5")),
            ("fast_pattern", None),
        ] {
            parse_option(k, v, &mut opts).unwrap();
        }
        let [Opt::Content(a), Opt::Content(b)] = opts.as_slice() else {
            panic!("{opts:?}")
        };
        assert!(a.nocase && a.offset == Some(2) && a.depth == Some(10) && a.fast_pattern.is_none());
        assert_eq!(b.pattern, vec![0, 1]);
        assert_eq!(
            (b.distance, b.within, b.fast_pattern),
            (Some(-2), Some(5), Some(FastPattern::Yes))
        );
        let mut opts = Vec::new();
        parse_option("content", Some("\"abc\""), &mut opts).unwrap();
        parse_option("startswith", None, &mut opts).unwrap();
        parse_option("endswith", None, &mut opts).unwrap();
        assert!(matches!(&opts[0], Opt::Content(c) if c.startswith && c.endswith));
        assert!(matches!(
            parse_option("depth", Some("3"), &mut opts),
            Err((None, Reason::Conflict(_)))
        ));
        let mut opts = Vec::new();
        parse_option("content", Some("\"abcdef\""), &mut opts).unwrap();
        parse_option("fast_pattern", Some("only"), &mut opts).unwrap();
        let mut opts = Vec::new();
        parse_option("content", Some("\"abcdef\""), &mut opts).unwrap();
        parse_option("fast_pattern", Some("1,3"), &mut opts).unwrap();
        assert!(
            matches!(&opts[0], Opt::Content(c) if c.fast_pattern == Some(FastPattern::Chop(1, 3)))
        );
    }

    #[test]
    fn errors_name_the_problem_and_where() {
        let e = |kw: &str, v: Option<&str>, prior: &[(&str, Option<&str>)]| {
            let mut opts = Vec::new();
            for (k, pv) in prior {
                parse_option(k, *pv, &mut opts).unwrap();
            }
            parse_option(kw, v, &mut opts).unwrap_err()
        };
        // Errors whose text is not pinned here: the offset and the kind of
        // error are checked, the message is whatever the parser says.
        const SYNTAX: Reason = Reason::Syntax(String::new());
        const BAD: Reason = Reason::BadValue(String::new());
        const CONFLICT: Reason = Reason::Conflict(String::new());
        const UNSUPPORTED: Reason = Reason::Unsupported {
            what: String::new(),
            why: String::new(),
        };
        // (keyword, value, options before it, offset, kind of error)
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            &'a [(&'a str, Option<&'a str>)],
            Option<usize>,
            Reason,
        );
        let kinds: &[Case] = &[
            ("http.uri", None, &[], None, UNSUPPORTED),
            ("nocase", None, &[], None, SYNTAX),
            ("sid", Some("x"), &[], Some(0), BAD),
            ("sid", Some("  0"), &[], Some(2), BAD),
            ("msg", Some("no quotes"), &[], Some(0), BAD),
            ("flags", Some("SZ"), &[], Some(0), BAD),
            ("flow", Some("only_stream"), &[], Some(0), UNSUPPORTED),
            ("flow", Some("to_server,to_client"), &[], Some(0), CONFLICT),
            ("dsize", Some("10<>5"), &[], Some(0), BAD),
            ("ttl", Some("300"), &[], Some(0), BAD),
            ("flowbits", Some("toggle,x"), &[], Some(0), UNSUPPORTED),
            ("flowbits", Some("isset,a|b"), &[], Some(0), UNSUPPORTED),
            ("threshold", Some("type limit, count 1"), &[], Some(0), BAD),
            (
                "depth",
                Some("2"),
                &[("content", Some("\"abc\""))],
                Some(0),
                BAD,
            ),
            (
                "within",
                Some("5"),
                &[("content", Some("\"a\"")), ("depth", Some("3"))],
                None,
                CONFLICT,
            ),
            (
                "distance",
                Some("var"),
                &[("content", Some("\"a\""))],
                Some(0),
                BAD,
            ),
            ("sid", Some("2"), &[("sid", Some("1"))], None, CONFLICT),
            (
                "detection_filter",
                Some("track by_src, count 1, seconds 1"),
                &[(
                    "threshold",
                    Some("type limit, track by_src, count 1, seconds 1"),
                )],
                None,
                CONFLICT,
            ),
        ];
        for (kw, v, prior, at, kind) in kinds {
            let (got_at, got) = e(kw, *v, prior);
            assert_eq!(got_at, *at, "{kw} {v:?}: {got:?}");
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(kind),
                "{kw} {v:?}: {got:?}"
            );
        }
        // Errors pinned to the letter; content errors point into the value.
        let bad = |at: usize, why: &str| (Some(at), Reason::BadValue(why.into()));
        let exact = [
            ("pcre", "\"/a/\"", (None, Reason::UnsupportedKeyword)),
            ("byte_test", "1,>,2,0", (None, Reason::UnsupportedKeyword)),
            ("content", " \"ab|4|\"", bad(6, "odd number of hex digits")),
            (
                "content",
                "\"ab|41\"",
                bad(3, "`|` hex block is never closed"),
            ),
            ("content", "\"a|zz|\"", bad(3, "`z` is not a hex digit")),
            ("content", "abc", bad(0, "content must be in double quotes")),
            ("content", "\"\"", bad(0, "empty content")),
        ];
        for (kw, v, want) in exact {
            assert_eq!(e(kw, Some(v), &[]), want, "{kw} {v:?}");
        }
    }

    #[test]
    fn flags_semantics() {
        let f = |s: &str| Flags::parse(s).unwrap();
        let (syn, synack, fin) = (0x02, 0x12, 0x01);
        assert!(f("S").matches(syn) && !f("S").matches(synack));
        assert!(f("S,12").matches(syn | 0xc0));
        assert!(f("S+").matches(synack) && f("+S").matches(synack) && !f("S+").matches(fin));
        assert!(f("*SF").matches(fin) && !f("*SF").matches(0x10));
        assert!(f("!R").matches(syn) && !f("!R").matches(0x04));
        assert!(f("0").matches(0) && !f("0").matches(syn));
        assert_eq!(f("AS,CE").to_string(), "SA,CE");
    }

    #[test]
    fn cmp_semantics() {
        let c = parse_cmp::<u16>("9<>18").unwrap();
        assert!(!c.matches(9) && c.matches(10) && c.matches(17) && !c.matches(18));
        assert!(parse_cmp::<u16>("5-7").unwrap().matches(6));
        assert!(parse_cmp::<u16>(">=3").unwrap().matches(3));
        assert!(parse_cmp::<u16>("!3").unwrap().matches(4));
    }
}
