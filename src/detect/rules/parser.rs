//! The rule language's lexer and parser: rule files into [`Rule`]s, or
//! errors naming the line, column and keyword at fault.
//!
//! A rule is `action protocol src sport direction dst dport (options)`:
//! whitespace separates the header fields (not inside `[...]` lists), and
//! options are `keyword;` or `keyword:value;`, a value ending at the first
//! `;` not escaped with `\`. A line ending in `\` continues on the next. A
//! line starting with `#` is a comment (commented-out rules included).
//!
//! Parsing is pure syntax: variables stay names and classtypes stay
//! strings until the rule set resolves them. A parsed rule printed with
//! `Display` parses back to the same rule.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fmt;

use super::addr::{AddrExpr, PortExpr};
use super::options::{Opt, parse_option};

/// Why a rule was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    #[error("{0}")]
    Syntax(String),
    #[error("keyword is not supported")]
    UnsupportedKeyword,
    /// A known keyword or protocol in a form that is not supported.
    #[error("{what} is not supported: {why}")]
    Unsupported { what: String, why: String },
    #[error("{0}")]
    BadValue(String),
    #[error("{0}")]
    Variable(String),
    #[error("unknown classtype `{0}` (not in the classification file)")]
    UnknownClasstype(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the rule has no sid")]
    MissingSid,
    #[error("gid {gid} sid {sid} is already used at {first}")]
    DuplicateSid { gid: u32, sid: u32, first: String },
    #[error("{0}")]
    Limit(String),
}

impl Reason {
    /// The group a rejection is counted in: the unsupported thing by name,
    /// else the kind of error and the keyword.
    pub fn label(&self, keyword: &str) -> String {
        match self {
            Reason::UnsupportedKeyword => format!("unsupported keyword `{keyword}`"),
            Reason::Unsupported { what, .. } => format!("unsupported {what}"),
            Reason::Syntax(_) => format!("syntax error ({keyword})"),
            Reason::BadValue(_) => format!("bad value ({keyword})"),
            Reason::Variable(_) => format!("unknown or bad variable ({keyword})"),
            Reason::UnknownClasstype(c) => format!("unknown classtype `{c}`"),
            Reason::Conflict(_) => format!("conflicting options ({keyword})"),
            Reason::MissingSid => "no sid".into(),
            Reason::DuplicateSid { .. } => "duplicate sid".into(),
            Reason::Limit(_) => format!("limit reached ({keyword})"),
        }
    }
}

/// A parse error inside one rule's text: byte offset, keyword, reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub keyword: String,
    pub reason: Reason,
}

impl ParseError {
    fn new(offset: usize, keyword: &str, reason: Reason) -> Self {
        ParseError {
            offset,
            keyword: keyword.to_string(),
            reason,
        }
    }
}

/// A rejected rule, located in its file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {keyword}: {reason}")]
pub struct RuleError {
    pub file: String,
    pub line: usize,
    /// 1-based byte column.
    pub column: usize,
    pub keyword: String,
    pub reason: Reason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Alert,
    Drop,
    Reject,
    Pass,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "alert" => Action::Alert,
            "drop" => Action::Drop,
            "reject" | "rejectsrc" | "rejectdst" | "rejectboth" => Action::Reject,
            "pass" => Action::Pass,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Alert => "alert",
            Action::Drop => "drop",
            Action::Reject => "reject",
            Action::Pass => "pass",
        }
    }
}

/// Header protocols. Application-layer protocols (`http`, `dns`, `tls`...)
/// need parsers backflow does not have and are rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Ip,
    Tcp,
    /// `tcp-pkt`: TCP, packets only (which is all backflow inspects).
    TcpPkt,
    Udp,
    /// ICMPv4 and ICMPv6, as Suricata's `icmp`.
    Icmp,
    Icmpv4,
    Icmpv6,
    Sctp,
}

impl Protocol {
    fn parse(s: &str) -> Result<Protocol, Reason> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "ip" | "pkthdr" => Protocol::Ip,
            "tcp" => Protocol::Tcp,
            "tcp-pkt" => Protocol::TcpPkt,
            "udp" => Protocol::Udp,
            "icmp" => Protocol::Icmp,
            "icmpv4" => Protocol::Icmpv4,
            "icmpv6" => Protocol::Icmpv6,
            "sctp" => Protocol::Sctp,
            "tcp-stream" => {
                return Err(Reason::Unsupported {
                    what: "protocol `tcp-stream`".into(),
                    why: "streams are not reassembled".into(),
                });
            }
            p if p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
            {
                return Err(Reason::Unsupported {
                    what: format!("protocol `{p}`"),
                    why: "application-layer protocols are not parsed (ip, tcp, udp, icmp, icmpv6, sctp only)".into(),
                });
            }
            p => return Err(Reason::BadValue(format!("`{p}` is not a protocol"))),
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Ip => "ip",
            Protocol::Tcp => "tcp",
            Protocol::TcpPkt => "tcp-pkt",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
            Protocol::Icmpv4 => "icmpv4",
            Protocol::Icmpv6 => "icmpv6",
            Protocol::Sctp => "sctp",
        }
    }
    /// Whether the header's ports mean anything for the protocol.
    pub fn has_ports(self) -> bool {
        matches!(
            self,
            Protocol::Tcp | Protocol::TcpPkt | Protocol::Udp | Protocol::Sctp
        )
    }
}

/// A parsed rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub action: Action,
    pub proto: Protocol,
    pub src: AddrExpr,
    pub sport: PortExpr,
    /// `<>`: either direction.
    pub bidirectional: bool,
    pub dst: AddrExpr,
    pub dport: PortExpr,
    pub options: Vec<Opt>,
}

impl Rule {
    pub fn sid(&self) -> Option<u32> {
        self.options.iter().find_map(|o| match o {
            Opt::Sid(s) => Some(*s),
            _ => None,
        })
    }
    pub fn gid(&self) -> u32 {
        self.options
            .iter()
            .find_map(|o| match o {
                Opt::Gid(g) => Some(*g),
                _ => None,
            })
            .unwrap_or(1)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} {} (",
            self.action.as_str(),
            self.proto.as_str(),
            self.src,
            self.sport,
            if self.bidirectional { "<>" } else { "->" },
            self.dst,
            self.dport
        )?;
        for (i, o) in self.options.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{o}")?;
        }
        f.write_str(")")
    }
}

/// One rule's text from a file, with where each part came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleText {
    pub text: String,
    /// (offset in `text`, line number, byte offset in that line) of each
    /// physical line the rule spans.
    segments: Vec<(usize, usize, usize)>,
}

impl RuleText {
    pub fn line(&self) -> usize {
        self.segments.first().map_or(0, |s| s.1)
    }

    /// 1-based line and column of a byte offset into `text`.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.0 <= offset)
            .or(self.segments.first());
        match seg {
            Some(&(start, line, col0)) => (line, col0 + offset.saturating_sub(start) + 1),
            None => (0, offset + 1),
        }
    }
}

/// Splits a rule file into rule texts: skips blank lines and comments,
/// joins lines ending in `\`.
pub fn split_rules(text: &str) -> Vec<RuleText> {
    let mut out = Vec::new();
    let mut cur: Option<RuleText> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let lead = raw.len() - raw.trim_start().len();
        let body = raw.trim_end();
        let (body, cont) = match body.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (body, false),
        };
        match cur.as_mut() {
            Some(r) => {
                r.segments.push((r.text.len(), line_no, 0));
                r.text.push_str(body);
            }
            None => {
                let t = body.trim_start();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                cur = Some(RuleText {
                    text: t.to_string(),
                    segments: vec![(0, line_no, lead)],
                });
            }
        }
        if !cont && let Some(r) = cur.take() {
            out.push(r);
        }
    }
    if let Some(r) = cur.take() {
        out.push(r);
    }
    out
}

const HEADER_FIELDS: [&str; 7] = [
    "action",
    "protocol",
    "source",
    "source port",
    "direction",
    "destination",
    "destination port",
];

/// Where the parts of a parsed rule are in its text (byte offsets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spans {
    /// The seven header fields.
    pub header: [usize; 7],
    /// The keyword of each entry of [`Rule::options`].
    pub options: Vec<usize>,
}

/// Parses one rule's text; errors carry a byte offset into `s`.
pub fn parse_rule(s: &str) -> Result<Rule, ParseError> {
    parse_rule_spanned(s).map(|(r, _)| r)
}

/// [`parse_rule`], also returning where each part is.
pub fn parse_rule_spanned(s: &str) -> Result<(Rule, Spans), ParseError> {
    let b = s.as_bytes();
    let mut pos = 0;
    let mut fields: Vec<(usize, &str)> = Vec::with_capacity(7);
    // Header: seven fields, brackets may hold whitespace.
    while fields.len() < 7 {
        while b.get(pos).is_some_and(|c| c.is_ascii_whitespace()) {
            pos += 1;
        }
        let start = pos;
        let mut depth = 0i32;
        while let Some(&c) = b.get(pos) {
            match c {
                b'[' => depth += 1,
                b']' => depth -= 1,
                b'(' if depth <= 0 => break,
                c if c.is_ascii_whitespace() && depth <= 0 => break,
                _ => {}
            }
            pos += 1;
        }
        if pos == start {
            let name = HEADER_FIELDS.get(fields.len()).copied().unwrap_or("header");
            return Err(ParseError::new(
                pos,
                name,
                Reason::Syntax(format!("missing {name}")),
            ));
        }
        fields.push((start, s.get(start..pos).unwrap_or("")));
    }
    let field = |i: usize| fields.get(i).copied().unwrap_or((0, ""));
    let (at, a) = field(0);
    let action = Action::parse(a).ok_or_else(|| {
        ParseError::new(
            at,
            "action",
            Reason::BadValue(format!(
                "`{a}` is not an action (alert, drop, reject, pass)"
            )),
        )
    })?;
    let (at, p) = field(1);
    let proto = Protocol::parse(p).map_err(|r| ParseError::new(at, "protocol", r))?;
    let addr = |i: usize, name: &str| {
        let (at, t) = field(i);
        AddrExpr::parse(t)
            .map_err(|e| ParseError::new(at + e.offset, name, Reason::BadValue(e.reason)))
    };
    let port = |i: usize, name: &str| {
        let (at, t) = field(i);
        PortExpr::parse(t)
            .map_err(|e| ParseError::new(at + e.offset, name, Reason::BadValue(e.reason)))
    };
    let src = addr(2, "source")?;
    let sport = port(3, "source port")?;
    let (at, d) = field(4);
    let bidirectional = match d {
        "->" => false,
        "<>" => true,
        "<-" => {
            return Err(ParseError::new(
                at,
                "direction",
                Reason::Unsupported {
                    what: "direction `<-`".into(),
                    why: "write the rule with `->` and the sides swapped".into(),
                },
            ));
        }
        other => {
            return Err(ParseError::new(
                at,
                "direction",
                Reason::Syntax(format!("`{other}` is not a direction (-> or <>)")),
            ));
        }
    };
    let dst = addr(5, "destination")?;
    let dport = port(6, "destination port")?;

    while b.get(pos).is_some_and(|c| c.is_ascii_whitespace()) {
        pos += 1;
    }
    if b.get(pos) != Some(&b'(') {
        return Err(ParseError::new(
            pos,
            "options",
            Reason::Syntax("expected `(` and the options after the header".into()),
        ));
    }
    let open = pos;
    let close = s.trim_end().len().saturating_sub(1);
    if close <= open || b.get(close) != Some(&b')') {
        return Err(ParseError::new(
            open,
            "options",
            Reason::Syntax("the options are not closed with `)` at the end of the rule".into()),
        ));
    }
    let mut spans = Spans::default();
    for (slot, (at, _)) in spans.header.iter_mut().zip(&fields) {
        *slot = *at;
    }
    let options = parse_options(s, open + 1, close, &mut spans.options)?;
    // Ports need a protocol that has them (`ip` rules with ports see TCP,
    // UDP and SCTP packets).
    let proto_ports = proto.has_ports() || proto == Protocol::Ip;
    if !proto_ports && (sport != PortExpr::Any || dport != PortExpr::Any) {
        let (at, _) = if sport != PortExpr::Any {
            field(3)
        } else {
            field(6)
        };
        return Err(ParseError::new(
            at,
            "port",
            Reason::Conflict(format!("protocol `{}` has no ports", proto.as_str())),
        ));
    }
    Ok((
        Rule {
            action,
            proto,
            src,
            sport,
            bidirectional,
            dst,
            dport,
            options,
        },
        spans,
    ))
}

/// Parses `keyword[:value];` options between `start` and `end` (exclusive).
fn parse_options(
    s: &str,
    start: usize,
    end: usize,
    spans: &mut Vec<usize>,
) -> Result<Vec<Opt>, ParseError> {
    let b = s.as_bytes();
    let mut opts = Vec::new();
    let mut pos = start;
    loop {
        while pos < end && b.get(pos).is_some_and(|c| c.is_ascii_whitespace()) {
            pos += 1;
        }
        if pos >= end {
            break;
        }
        let kw_start = pos;
        while pos < end && !matches!(b.get(pos), Some(b':' | b';')) {
            pos += 1;
        }
        let keyword = s.get(kw_start..pos).unwrap_or("").trim();
        if keyword.is_empty() {
            return Err(ParseError::new(
                kw_start,
                "options",
                Reason::Syntax("empty option".into()),
            ));
        }
        if !keyword
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        {
            return Err(ParseError::new(
                kw_start,
                keyword,
                Reason::Syntax("not a keyword (a `;` missing before it?)".into()),
            ));
        }
        let mut value: Option<(usize, &str)> = None;
        if b.get(pos) == Some(&b':') {
            pos += 1;
            let v_start = pos;
            while pos < end {
                match b.get(pos) {
                    Some(b'\\') => pos += 2,
                    Some(b';') => break,
                    _ => pos += 1,
                }
            }
            let v_end = pos.min(end);
            value = Some((v_start, s.get(v_start..v_end).unwrap_or("")));
        }
        if pos >= end || b.get(pos) != Some(&b';') {
            return Err(ParseError::new(
                kw_start,
                keyword,
                Reason::Syntax("option not terminated by `;`".into()),
            ));
        }
        pos += 1;
        parse_option(keyword, value.map(|v| v.1), &mut opts).map_err(|(at, reason)| {
            let offset = match (at, value) {
                (Some(rel), Some((v_start, _))) => v_start + rel,
                _ => kw_start,
            };
            ParseError::new(offset, keyword, reason)
        })?;
        // Modifiers change an earlier option; new options get a span.
        while spans.len() < opts.len() {
            spans.push(kw_start);
        }
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn err(s: &str) -> (usize, String, Reason) {
        let e = parse_rule(s).unwrap_err();
        (e.offset + 1, e.keyword, e.reason)
    }

    #[test]
    fn parses_a_full_rule() {
        let r = parse_rule(
            "alert tcp $EXTERNAL_NET any -> [$HOME_NET, !10.0.0.1] [22, 2222] (msg:\"x\"; flow:to_server; flags:S,12; sid:1; rev:2;)",
        )
        .unwrap();
        assert_eq!(r.action, Action::Alert);
        assert_eq!(r.proto, Protocol::Tcp);
        assert_eq!(r.src, AddrExpr::Var("EXTERNAL_NET".into()));
        assert!(matches!(r.dst, AddrExpr::List(ref v) if v.len() == 2));
        assert_eq!(r.sid(), Some(1));
        assert_eq!(r.gid(), 1);
        assert_eq!(r.options.len(), 5);
        let r = parse_rule("pass ip any any <> any any (sid:5;)").unwrap();
        assert!(r.bidirectional && r.action == Action::Pass);
        assert_eq!(
            parse_rule("drop tcp-pkt any any -> any 80 (sid:6;)")
                .unwrap()
                .proto,
            Protocol::TcpPkt
        );
    }

    #[test]
    fn header_errors_point_at_the_field() {
        assert_eq!(err("alrt tcp any any -> any any (sid:1;)").0, 1);
        let (col, kw, r) = err("alert http any any -> any any (sid:1;)");
        assert_eq!((col, kw.as_str()), (7, "protocol"));
        assert_eq!(r.label(&kw), "unsupported protocol `http`");
        let (col, kw, _) = err("alert tcp any any => any any (sid:1;)");
        assert_eq!((col, kw.as_str()), (19, "direction"));
        let (col, kw, _) = err("alert tcp [1.1.1.1, 2.2.2.x] any -> any any (sid:1;)");
        assert_eq!((col, kw.as_str()), (21, "source"));
        let (col, kw, _) = err("alert tcp any any -> any 99999 (sid:1;)");
        assert_eq!((col, kw.as_str()), (26, "destination port"));
        let (col, kw, _) = err("alert tcp any any -> any");
        assert_eq!((col, kw.as_str()), (25, "destination port"));
        assert!(parse_rule("alert ip any 80 -> any any (sid:1;)").is_ok());
        let (col, kw, _) = err("alert icmp any 80 -> any any (sid:1;)");
        assert_eq!((col, kw.as_str()), (16, "port"));
        let (col, kw, _) = err("alert tcp any any -> any any sid:1;");
        assert_eq!((col, kw.as_str()), (30, "options"));
        let (col, kw, _) = err("alert tcp any any -> any any (sid:1;");
        assert_eq!((col, kw.as_str()), (30, "options"));
    }

    #[test]
    fn option_errors_point_at_keyword_or_value() {
        let (col, kw, r) = err("alert tcp any any -> any any (msg:\"a\"; pcre:\"/x/\"; sid:1;)");
        assert_eq!(
            (col, kw.as_str(), r),
            (40, "pcre", Reason::UnsupportedKeyword)
        );
        let (col, kw, _) = err("alert tcp any any -> any any (sid: abc;)");
        assert_eq!((col, kw.as_str()), (36, "sid"));
        let (col, kw, _) = err("alert tcp any any -> any any (content:\"a|4|\"; sid:1;)");
        assert_eq!((col, kw.as_str()), (43, "content"));
        let (col, kw, r) = err("alert tcp any any -> any any (sid:1; rev:1)");
        assert_eq!((col, kw.as_str()), (38, "rev"));
        assert!(matches!(r, Reason::Syntax(_)));
        let (col, kw, r) = err("alert tcp any any -> any any (sid:1 rev:1;)");
        assert_eq!((col, kw.as_str()), (35, "sid"));
        assert!(matches!(r, Reason::BadValue(_)));
        let (col, _, r) = err("alert tcp any any -> any any (http.uri; content:\"a\"; sid:1;)");
        assert_eq!(col, 31);
        assert_eq!(r.label("http.uri"), "unsupported keyword `http.uri`");
        let (col, kw, _) = err("alert tcp any any -> any any (sid:1; ; )");
        assert_eq!((col, kw.as_str()), (38, "options"));
    }

    #[test]
    fn escaped_semicolons_stay_in_values() {
        let r = parse_rule(r#"alert tcp any any -> any any (msg:"a\;b"; content:"x\;y"; sid:1;)"#)
            .unwrap();
        assert_eq!(r.options[0], Opt::Msg("a;b".into()));
        assert!(matches!(&r.options[1], Opt::Content(c) if c.pattern == b"x;y"));
    }

    #[test]
    fn files_split_into_rules_with_positions() {
        let text = "# comment\n\n  alert ip any any -> any any (sid:1;)\n#alert ip any any -> any any (sid:2;)\nalert ip any any -> \\\n  any any (sid:3;)\n";
        let rules = split_rules(text);
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].line(), 3);
        assert_eq!(rules[0].position(0), (3, 3));
        assert_eq!(rules[1].line(), 5);
        let off = rules[1].text.find("(sid").unwrap();
        assert_eq!(rules[1].position(off), (6, 11));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "alert tcp $EXTERNAL_NET any -> $HOME_NET 21 (msg:\"ET SCAN x\"; flow:established,to_server; content:\"USER \"; nocase; depth:5; content:\"root\"; nocase; within:15; threshold: type threshold, track by_src, count 5, seconds 60; classtype:attempted-recon; sid:2010642; rev:3; metadata:created_at 2010_07_30, updated_at 2019_07_26;)",
            "alert udp any any <> [10.0.0.0/8,!10.1.1.1] [1024:,!8080] (msg:\"q\\\"\\;\"; content:!\"|00 01|ab|7C 3B 3A|\"; offset:3; dsize:9<>18; ttl:>=3; itype:!8; icode:<2; ip_proto:!6; target:src_ip; gid:3; sid:9; priority:2; reference:url,example.com/a;)",
            "pass tcp any any -> any any (flags:!R,CE; window:!1024; ack:0; seq:7; flowbits:set,a.b; flowbits:noalert; detection_filter:track by_rule, count 3, seconds 1; sid:4;)",
            "alert ip any any -> any any (msg:\"d\"; detector:port_scan; classtype:network-scan; sid:9100003; rev:1;)",
            "alert tcp any any -> any any (content:\"abcdef\"; fast_pattern:1,3; content:\"zz\"; distance:-2; within:10; fast_pattern:only; sid:8;)",
            "alert ip any [80,443] -> any any (content:\"GET\"; startswith; content:\"x\"; endswith; nocase; sid:9;)",
        ] {
            assert_prints_back(s);
        }
    }

    /// `s` parses, prints, and parses again to the same rule.
    fn assert_prints_back(s: &str) {
        let r = parse_rule(s).unwrap();
        let printed = r.to_string();
        let again = parse_rule(&printed).unwrap_or_else(|e| panic!("{printed}: {e:?}"));
        assert_eq!(again, r, "{printed}");
    }

    /// A free-text value ending in a backslash (`packe\ ;`: the space
    /// is trimmed) printed as `packe\;`, whose `\;` escapes the end of
    /// the option.
    #[test]
    fn fuzz_rules_value_ending_in_a_backslash_prints_back() {
        for s in [
            "alert tcp any any -> any 23 (msg:\"m\"; metadata:created_at 2010_09_23, from the packe\\ ;)",
            "alert tcp any any -> any 23 (reference:url,example.com/a\\ ; sid:1;)",
        ] {
            assert_prints_back(s);
        }
    }

    const SAMPLE: &str = "alert tcp [1.1.1.1,!$HOME_NET] any -> any [80,8000:] (msg:\"x\\;y\"; content:!\"a|41 42|\"; depth:4; flags:S+,12; flow:established,to_server; threshold: type limit, track by_src, count 1, seconds 1; flowbits:set,a.b; sid:1;)";

    proptest::proptest! {
        #[test]
        fn no_input_panics_the_parser(s in "\\PC{0,300}") {
            let _ = parse_rule(&s);
            for rt in split_rules(&s) {
                let _ = parse_rule(&rt.text);
                let _ = rt.position(rt.text.len() + 5);
            }
        }

        #[test]
        fn mutated_rules_never_panic(at in 0usize..400, c in proptest::prelude::any::<char>(), cut in 0usize..400, dup in 0usize..400) {
            let mut s: Vec<char> = SAMPLE.chars().collect();
            let at = at.min(s.len());
            s.insert(at, c);
            let d = dup.min(s.len());
            let copy: Vec<char> = s[d..].to_vec();
            s.extend(copy);
            s.truncate(cut.max(1).min(s.len()));
            let text: String = s.into_iter().collect();
            if let Ok(r) = parse_rule(&text) {
                // What parses prints and parses back the same.
                let again = parse_rule(&r.to_string());
                proptest::prop_assert_eq!(again, Ok(r));
            }
        }
    }
}
