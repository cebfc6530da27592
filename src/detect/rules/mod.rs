//! Signature rules in the Suricata rule language.
//!
//! A [`RuleSet`] is loaded once from rule files (`rules/*.rules` by
//! default), a `classification.config` and an optional `threshold.config`.
//! Every rule is loaded or rejected with its file, line, column, keyword
//! and reason ([`RuleError`]); a rejected rule never stops the load. The
//! subset supported is packet rules: header (action, protocol, addresses
//! and ports with variables, lists, ranges, negation, `->` and `<>`) and
//! the options listed in [`options`]. Rules using application-layer
//! protocols, sticky buffers, `pcre`, `byte_test` and the like are rejected
//! with the keyword named.
//!
//! The stages, one file each: [`parser`] (lexer and parser), [`addr`]
//! (address and port expressions, variables), [`options`] (option values),
//! [`matcher`] (grouping and matching), [`threshold`] (thresholds,
//! suppression: the one alert filter for rules and detectors), [`flowbits`].
//!
//! backflow's own `rules/backflow-detectors.rules` uses a private keyword,
//! `detector:<kind>;`: such a rule is not matched on packets; it gives a
//! built-in detector its sid, message, classtype and priority, so users can
//! re-prioritise it and suppress it by sid like any rule.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod addr;
pub mod flowbits;
pub mod matcher;
pub mod options;
pub mod parser;
pub mod threshold;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use flowbits::FlowBits;
pub use matcher::{FlowFacts, PacketView, TcpFields};
pub use parser::{Action, Reason, Rule, RuleError, parse_rule};
pub use threshold::AlertFilter;

use crate::config::RulesConfig;
use crate::decode::{Addr, Transport};
use crate::detect::{Alert, Endpoint, Kind, Origin};
use crate::policy::Cidr;
use crate::time::Timestamp;
use addr::{Resolver, Vars};
use matcher::{CContent, CRule, Check, MatcherBuilder, Sides};
use options::{Flowbit, Opt, Target};
use parser::{ParseError, RuleText, Spans};

/// The classification file shipped in `rules/`, used when none is found.
pub const BUILTIN_CLASSIFICATION: &str = include_str!("../../../rules/classification.config");

/// Rule alerts one packet can raise (Suricata's `packet-alert-max`);
/// further matches are counted.
pub const MAX_ALERTS_PER_PACKET: usize = 15;

/// What an alert of a rule says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleMeta {
    pub gid: u32,
    pub sid: u32,
    pub rev: u32,
    pub msg: String,
    pub classtype: Option<String>,
    /// The classtype's description ("" without a classtype).
    pub category: String,
    /// `priority`, else the classtype's, else 3.
    pub severity: u8,
    /// Whether `priority` was given (it then overrides a detector's own
    /// severity).
    pub priority_set: bool,
    /// `metadata` entries as (key, value).
    pub metadata: Vec<(String, String)>,
    /// `reference` entries as `type,value`.
    pub references: Vec<String>,
    pub target: Option<Target>,
    pub action: Action,
    /// Where the rule is (`file:line`).
    pub location: String,
}

/// `classification.config`: classtype → (description, priority).
#[derive(Clone, Debug, Default)]
pub struct Classifications {
    map: HashMap<String, (String, u8)>,
}

impl Classifications {
    /// Parses `config classification: name,description,priority` lines;
    /// returns the bad ones as `file:line: reason`.
    pub fn parse(text: &str, file: &str) -> (Classifications, Vec<String>) {
        let mut c = Classifications::default();
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parsed = line
                .strip_prefix("config classification:")
                .and_then(|rest| {
                    let (name, rest) = rest.split_once(',')?;
                    let (desc, prio) = rest.rsplit_once(',')?;
                    let prio: u8 = prio.trim().parse().ok().filter(|p| *p > 0)?;
                    Some((name.trim().to_string(), desc.trim().to_string(), prio))
                });
            match parsed {
                Some((name, desc, prio)) if !name.is_empty() => {
                    c.map.insert(name, (desc, prio));
                }
                _ => errors.push(format!(
                    "{file}:{}: expected `config classification: name,description,priority`",
                    i + 1
                )),
            }
        }
        (c, errors)
    }

    pub fn get(&self, name: &str) -> Option<&(String, u8)> {
        self.map.get(name)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// How one rule file loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileReport {
    pub path: String,
    /// Rules in the file (non-comment, non-blank lines, continuations joined).
    pub rules: usize,
    pub loaded: usize,
}

/// How a rule set loaded.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    pub files: Vec<FileReport>,
    /// Every rejected rule.
    pub errors: Vec<RuleError>,
    /// Problems outside rules: missing files, bad classification or
    /// threshold.config lines.
    pub other_errors: Vec<String>,
    /// Rules loaded for matching.
    pub loaded: usize,
    /// `detector:` rules loaded.
    pub detector_rules: usize,
    /// IP-only rules (prefix tables) among the loaded.
    pub ip_only: usize,
}

impl LoadReport {
    pub fn rules(&self) -> usize {
        self.files.iter().map(|f| f.rules).sum()
    }

    pub fn rejected(&self) -> usize {
        self.errors.len()
    }

    /// Rejections grouped by reason, most frequent first.
    pub fn by_reason(&self) -> Vec<(String, usize)> {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for e in &self.errors {
            *m.entry(e.reason.label(&e.keyword)).or_default() += 1;
        }
        let mut v: Vec<(String, usize)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// Whether every rule loaded and nothing else went wrong.
    pub fn all_loaded(&self) -> bool {
        self.errors.is_empty() && self.other_errors.is_empty()
    }
}

/// Counters of the rule engine (shared by the workers; only bumped on
/// matches, never per packet).
#[derive(Debug, Default)]
pub struct RuleCounters {
    pub matches: AtomicU64,
    pub alerts: AtomicU64,
    /// Matches of a `pass` rule.
    pub passed: AtomicU64,
    /// Rule alerts beyond [`MAX_ALERTS_PER_PACKET`] on one packet.
    pub alert_overflow: AtomicU64,
    /// Flowbits not set because the flow held the most it can.
    pub flowbits_refused: AtomicU64,
}

/// Loaded rules, the detectors' rule entries, and the alert filter.
pub struct RuleSet {
    matcher: matcher::Matcher,
    filter: AlertFilter,
    detectors: HashMap<&'static str, Arc<RuleMeta>>,
    flowbit_names: flowbits::Names,
    report: LoadReport,
    pub counters: RuleCounters,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.matcher.rules())
            .field("detector_rules", &self.detectors.len())
            .finish()
    }
}

/// Where relative paths point: the config file's directory, else the
/// current directory.
fn resolve(base: Option<&Path>, p: &str) -> PathBuf {
    let path = Path::new(p);
    match base {
        Some(b) if path.is_relative() => b.join(path),
        _ => path.to_path_buf(),
    }
}

/// `*` and `?` in a file name.
fn wildcard(pat: &[u8], name: &[u8]) -> bool {
    match (pat.split_first(), name.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            wildcard(rest, name) || name.split_first().is_some_and(|(_, n)| wildcard(pat, n))
        }
        (Some((b'?', rest)), Some((_, n))) => wildcard(rest, n),
        (Some((p, rest)), Some((c, n))) if p == c => wildcard(rest, n),
        _ => false,
    }
}

/// The files a pattern names: a file, a directory (its `*.rules`), or a
/// file name with `*`/`?` wildcards. Sorted.
pub fn expand(path: &Path) -> Result<Vec<PathBuf>, String> {
    let shown = path.display();
    if path.is_dir() {
        return expand(&path.join("*.rules"));
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return if path.is_file() {
            Ok(vec![path.to_path_buf()])
        } else {
            Err(format!("{shown}: no such file"))
        };
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| wildcard(name.as_bytes(), n.as_bytes()))
        })
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(format!("{shown}: no file matches"));
    }
    Ok(out)
}

/// Default locations (relative to the config file's directory, else the
/// current directory); a missing default is not an error.
pub const DEFAULT_RULE_FILES: &str = "rules/*.rules";
pub const DEFAULT_CLASSIFICATION: &str = "rules/classification.config";
pub const DEFAULT_THRESHOLD: &str = "rules/threshold.config";

/// Text sources of a rule set.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// (name shown in errors, text) of each rule file, in load order.
    pub rule_files: Vec<(String, String)>,
    /// (name, text) of the classification file; None: the built-in one.
    pub classification: Option<(String, String)>,
    pub threshold: Option<(String, String)>,
}

impl Sources {
    /// Reads what `cfg` names; `files` replaces the configured rule files
    /// (`rules check`). Problems go to `errors`.
    pub fn read(cfg: &RulesConfig, files: Option<&[PathBuf]>, errors: &mut Vec<String>) -> Sources {
        let base = cfg.base_dir.as_deref();
        let mut s = Sources::default();
        let mut paths: Vec<PathBuf> = Vec::new();
        match files {
            Some(list) => {
                for p in list {
                    match expand(p) {
                        Ok(v) => paths.extend(v),
                        Err(e) => errors.push(e),
                    }
                }
            }
            None => {
                for pat in &cfg.files {
                    let p = resolve(base, pat);
                    match expand(&p) {
                        Ok(v) => paths.extend(v),
                        Err(_) if cfg.default_files => {
                            tracing::info!(
                                "no rule files at {} (the default): signature matching is off",
                                p.display()
                            );
                        }
                        Err(e) => errors.push(format!("rules.files: {e}")),
                    }
                }
            }
        }
        for p in paths {
            match std::fs::read(&p) {
                Ok(b) => s.rule_files.push((
                    p.display().to_string(),
                    String::from_utf8_lossy(&b).into_owned(),
                )),
                Err(e) => errors.push(format!("{}: {e}", p.display())),
            }
        }
        let optional =
            |name: &Option<String>, default: &str, key: &str, errors: &mut Vec<String>| {
                let p = resolve(base, name.as_deref().unwrap_or(default));
                match std::fs::read(&p) {
                    Ok(b) => Some((
                        p.display().to_string(),
                        String::from_utf8_lossy(&b).into_owned(),
                    )),
                    Err(_) if name.is_none() => None,
                    Err(e) => {
                        errors.push(format!("{key}: {}: {e}", p.display()));
                        None
                    }
                }
            };
        s.classification = optional(
            &cfg.classification_file,
            DEFAULT_CLASSIFICATION,
            "rules.classification_file",
            errors,
        );
        s.threshold = optional(
            &cfg.threshold_file,
            DEFAULT_THRESHOLD,
            "rules.threshold_file",
            errors,
        );
        s
    }
}

/// The kind names `detector:` accepts.
fn detector_kind(name: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.name() == name)
}

/// State while rules are compiled.
struct Loader<'a> {
    classes: Classifications,
    resolver: Resolver<'a>,
    seen: HashMap<(u32, u32), String>,
    filter: AlertFilter,
    detectors: HashMap<&'static str, Arc<RuleMeta>>,
    names: flowbits::Names,
    builder: MatcherBuilder,
}

fn err_at(rt: &RuleText, file: &str, offset: usize, keyword: &str, reason: Reason) -> RuleError {
    let (line, column) = rt.position(offset);
    RuleError {
        file: file.to_string(),
        line,
        column,
        keyword: keyword.to_string(),
        reason,
    }
}

impl Loader<'_> {
    /// Compiles one parsed rule; Ok(true) for a detector rule.
    fn add(&mut self, rule: &Rule, spans: &Spans, location: String) -> Result<bool, ParseError> {
        let opt_at = |i: usize| spans.options.get(i).copied().unwrap_or(0);
        let find = |kw: &str| rule.options.iter().position(|o| o.keyword() == kw);
        let pe = |offset: usize, kw: &str, reason: Reason| ParseError {
            offset,
            keyword: kw.to_string(),
            reason,
        };
        let sid = rule
            .sid()
            .ok_or_else(|| pe(spans.header[0], "sid", Reason::MissingSid))?;
        let gid = rule.gid();
        if let Some(first) = self.seen.get(&(gid, sid)) {
            return Err(pe(
                find("sid").map_or(0, opt_at),
                "sid",
                Reason::DuplicateSid {
                    gid,
                    sid,
                    first: first.clone(),
                },
            ));
        }
        let mut meta = RuleMeta {
            gid,
            sid,
            rev: 1,
            msg: String::new(),
            classtype: None,
            category: String::new(),
            severity: 3,
            priority_set: false,
            metadata: Vec::new(),
            references: Vec::new(),
            target: None,
            action: rule.action,
            location: location.clone(),
        };
        let mut detector = None;
        let mut checks = Vec::new();
        let mut contents = Vec::new();
        let mut flow = None;
        let mut bit_tests = Vec::new();
        let mut bit_actions = Vec::new();
        let mut noalert = false;
        let mut threshold = None;
        for (i, o) in rule.options.iter().enumerate() {
            match o {
                Opt::Msg(m) => meta.msg = m.clone(),
                Opt::Sid(_) | Opt::Gid(_) => {}
                Opt::Rev(r) => meta.rev = *r,
                Opt::Classtype(c) => {
                    let (desc, prio) = self.classes.get(c).ok_or_else(|| {
                        pe(opt_at(i), "classtype", Reason::UnknownClasstype(c.clone()))
                    })?;
                    meta.classtype = Some(c.clone());
                    meta.category = desc.clone();
                    if !meta.priority_set {
                        meta.severity = *prio;
                    }
                }
                Opt::Priority(p) => {
                    meta.severity = *p;
                    meta.priority_set = true;
                }
                Opt::Metadata(entries) => {
                    for e in entries {
                        let (k, v) = e.split_once(' ').unwrap_or((e.as_str(), ""));
                        meta.metadata.push((k.to_string(), v.trim().to_string()));
                    }
                }
                Opt::Reference(k, v) => meta.references.push(format!("{k},{v}")),
                Opt::Target(t) => meta.target = Some(*t),
                Opt::Flags(f) => checks.push(Check::Flags(*f)),
                Opt::Flow(f) => flow = Some(*f),
                Opt::Dsize(c) => checks.push(Check::Dsize(*c)),
                Opt::Ttl(c) => checks.push(Check::Ttl(*c)),
                Opt::IpProto(c) => checks.push(Check::IpProto(*c)),
                Opt::Itype(c) => checks.push(Check::Itype(*c)),
                Opt::Icode(c) => checks.push(Check::Icode(*c)),
                Opt::Ack(n) => checks.push(Check::Ack(*n)),
                Opt::Seq(n) => checks.push(Check::Seq(*n)),
                Opt::Window { negated, size } => checks.push(Check::Window(*negated, *size)),
                Opt::Threshold(t) | Opt::DetectionFilter(t) => threshold = Some(*t),
                Opt::Content(c) => contents.push(c.clone()),
                Opt::Flowbits(fb) => {
                    let mut intern = |n: &str| {
                        self.names.intern(n).ok_or_else(|| {
                            pe(
                                opt_at(i),
                                "flowbits",
                                Reason::Limit("more than 65536 flowbit names".into()),
                            )
                        })
                    };
                    match fb {
                        Flowbit::Set(n) => bit_actions.push((intern(n)?, true)),
                        Flowbit::Unset(n) => bit_actions.push((intern(n)?, false)),
                        Flowbit::IsSet(n) => bit_tests.push((intern(n)?, true)),
                        Flowbit::IsNotSet(n) => bit_tests.push((intern(n)?, false)),
                        Flowbit::NoAlert => noalert = true,
                    }
                }
                Opt::Detector(k) => {
                    let kind = detector_kind(k).ok_or_else(|| {
                        pe(
                            opt_at(i),
                            "detector",
                            Reason::BadValue(format!(
                                "`{k}` is not a detector ({})",
                                Kind::ALL.map(Kind::name).join(", ")
                            )),
                        )
                    })?;
                    if let Some(prev) = self.detectors.get(kind.name()) {
                        return Err(pe(
                            opt_at(i),
                            "detector",
                            Reason::Conflict(format!(
                                "detector `{k}` is already described at {}",
                                prev.location
                            )),
                        ));
                    }
                    detector = Some(kind);
                }
            }
        }
        if detector.is_some() && (!contents.is_empty() || !checks.is_empty() || flow.is_some()) {
            return Err(pe(
                spans.header[0],
                "detector",
                Reason::Conflict(
                    "a `detector` rule describes a detector and matches nothing itself".into(),
                ),
            ));
        }
        // Addresses and ports (a detector rule's header is not used).
        let header_err = |i: usize, e: addr::ResolveError| {
            let name = ["source", "source port", "destination", "destination port"]
                .get(i)
                .copied()
                .unwrap_or("header");
            let at = [2, 3, 5, 6]
                .get(i)
                .and_then(|h| spans.header.get(*h))
                .copied()
                .unwrap_or(0);
            pe(at, name, Reason::Variable(e.to_string()))
        };
        let sides = Sides {
            src: self
                .resolver
                .addrs(&rule.src)
                .map_err(|e| header_err(0, e))?,
            sport: self
                .resolver
                .ports(&rule.sport)
                .map_err(|e| header_err(1, e))?,
            dst: self
                .resolver
                .addrs(&rule.dst)
                .map_err(|e| header_err(2, e))?,
            dport: self
                .resolver
                .ports(&rule.dport)
                .map_err(|e| header_err(3, e))?,
        };
        self.seen.insert((gid, sid), location);
        if let Some(t) = threshold {
            self.filter.set_rule_threshold(gid, sid, t);
        }
        let meta = Arc::new(meta);
        if let Some(kind) = detector {
            if rule.action == Action::Pass {
                self.filter.pass_signature(gid, sid);
            }
            self.detectors.insert(kind.name(), meta);
            return Ok(true);
        }
        let fast = matcher::fast_pattern(&contents);
        let c = CRule {
            meta,
            action: rule.action,
            proto: rule.proto,
            flow,
            checks,
            contents: contents.iter().map(CContent::new).collect(),
            fast,
            bit_tests,
            bit_actions,
            noalert,
        };
        self.builder.add(c, sides, rule.bidirectional);
        Ok(false)
    }
}

impl RuleSet {
    /// An empty set: no rules, no detector entries, nothing filtered.
    pub fn empty() -> RuleSet {
        RuleSet::build(
            &Sources {
                classification: Some(("built-in".into(), String::new())),
                ..Sources::default()
            },
            &Vars::new(&[], &BTreeMap::new()),
            1,
        )
    }

    /// Loads what the config names (rule files, classification and
    /// threshold files, variables). Never fails: problems are in
    /// [`RuleSet::report`].
    pub fn load(cfg: &RulesConfig, home_nets: &[Cidr], max_tracked: usize) -> RuleSet {
        Self::load_with(cfg, None, home_nets, max_tracked)
    }

    /// [`RuleSet::load`] with other rule files than the config's.
    pub fn load_with(
        cfg: &RulesConfig,
        files: Option<&[PathBuf]>,
        home_nets: &[Cidr],
        max_tracked: usize,
    ) -> RuleSet {
        let mut errors = Vec::new();
        let sources = Sources::read(cfg, files, &mut errors);
        let vars = Vars::new(home_nets, &cfg.vars);
        let mut set = RuleSet::build(&sources, &vars, max_tracked);
        errors.append(&mut set.report.other_errors);
        set.report.other_errors = errors;
        set
    }

    /// Builds a rule set from texts.
    pub fn build(sources: &Sources, vars: &Vars, max_tracked: usize) -> RuleSet {
        let mut report = LoadReport::default();
        let (classes, class_errors) = match &sources.classification {
            Some((name, text)) => Classifications::parse(text, name),
            None => {
                Classifications::parse(BUILTIN_CLASSIFICATION, "built-in classification.config")
            }
        };
        report.other_errors.extend(class_errors);
        let mut l = Loader {
            classes,
            resolver: Resolver::new(vars),
            seen: HashMap::new(),
            filter: AlertFilter::new(max_tracked),
            detectors: HashMap::new(),
            names: flowbits::Names::default(),
            builder: MatcherBuilder::new(vars.home().clone()),
        };
        for (file, text) in &sources.rule_files {
            let mut fr = FileReport {
                path: file.clone(),
                ..FileReport::default()
            };
            for rt in parser::split_rules(text) {
                fr.rules += 1;
                let result = parser::parse_rule_spanned(&rt.text).and_then(|(rule, spans)| {
                    l.add(&rule, &spans, format!("{file}:{}", rt.line()))
                });
                match result {
                    Ok(detector) => {
                        fr.loaded += 1;
                        if detector {
                            report.detector_rules += 1;
                        } else {
                            report.loaded += 1;
                        }
                    }
                    Err(e) => report
                        .errors
                        .push(err_at(&rt, file, e.offset, &e.keyword, e.reason)),
                }
            }
            report.files.push(fr);
        }
        if let Some((name, text)) = &sources.threshold {
            let errs = l.filter.load_config(text, name, &mut l.resolver);
            report
                .other_errors
                .extend(errs.into_iter().map(|e| e.to_string()));
        }
        let matcher = l.builder.build();
        report.ip_only = matcher.ip_only();
        RuleSet {
            matcher,
            filter: l.filter,
            detectors: l.detectors,
            flowbit_names: l.names,
            report,
            counters: RuleCounters::default(),
        }
    }

    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Rules loaded for matching.
    pub fn len(&self) -> usize {
        self.matcher.rules()
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.rules() == 0
    }

    pub fn flowbit_names(&self) -> usize {
        self.flowbit_names.len()
    }

    /// The entry of a built-in detector (by kind name: `port_scan`), from
    /// the detectors' rule file.
    pub fn detector_rule(&self, kind_name: &str) -> Option<&RuleMeta> {
        self.detectors.get(kind_name).map(|m| &**m)
    }

    pub fn filter(&self) -> &AlertFilter {
        &self.filter
    }

    /// Caps the alert filter's threshold state at `bytes`
    /// ([`AlertFilter::limit_state_bytes`]).
    pub fn limit_state_bytes(&mut self, bytes: usize) {
        self.filter.limit_state_bytes(bytes);
    }

    /// Whether [`RuleSet::match_packet`] could match anything for a packet
    /// of `proto` over transport `t`, the `first` of its flow in its
    /// direction: a check cheaper than building the packet's view, which
    /// most packets need not have (and all of them when no rule is loaded).
    #[inline]
    pub fn may_match(&self, proto: u8, t: &Transport<'_>, first: bool) -> bool {
        if self.is_empty() {
            return false;
        }
        let (sport, dport, payload) = matcher::ports_and_payload(t);
        self.matcher.may_match(proto, sport, dport, payload, first)
    }

    /// Matches one packet; alerts (after thresholds and suppression) are
    /// appended to `out`. `bits` are the packet's flow's flowbits.
    /// The packet path calls it only for a packet [`RuleSet::may_match`]
    /// let through.
    pub fn match_packet(
        &self,
        p: &PacketView<'_>,
        bits: Option<&mut FlowBits>,
        now: Timestamp,
        out: &mut Vec<Alert>,
    ) {
        let mut raised = 0usize;
        let mut refused = 0u64;
        let mut matched = 0u64;
        let mut overflow = 0u64;
        let mut passed = false;
        self.matcher.run(p, bits, &mut refused, &mut |hit| {
            matched += 1;
            let r = hit.rule;
            if r.action == Action::Pass {
                passed = true;
                return false;
            }
            if r.noalert
                || !self
                    .filter
                    .allow(r.meta.gid, r.meta.sid, Some(p.src), Some(p.dst), now)
            {
                return true;
            }
            if raised >= MAX_ALERTS_PER_PACKET {
                overflow += 1;
                return true;
            }
            raised += 1;
            out.push(rule_alert(&r.meta, p));
            true
        });
        if matched > 0 {
            let c = &self.counters;
            c.matches.fetch_add(matched, Ordering::Relaxed);
            c.alerts.fetch_add(raised as u64, Ordering::Relaxed);
            c.passed.fetch_add(u64::from(passed), Ordering::Relaxed);
            c.alert_overflow.fetch_add(overflow, Ordering::Relaxed);
            c.flowbits_refused.fetch_add(refused, Ordering::Relaxed);
        }
    }

    /// Applies the filter and the detectors' rule entries to detector
    /// alerts (rule alerts were filtered when they matched). `endpoints`
    /// (source, destination) stand in for an alert's unknown sides.
    pub fn finish(&self, alerts: &mut Vec<Alert>, endpoints: Option<(Addr, Addr)>, now: Timestamp) {
        alerts.retain_mut(|a| {
            let Origin::Detector(kind) = a.origin else {
                return true;
            };
            let meta = self.detectors.get(kind.name());
            let (gid, sid) = meta.map_or((1, kind.sid()), |m| (m.gid, m.sid));
            if !self.filter.is_empty() {
                let src = a.source.ip.or(endpoints.map(|e| e.0));
                let dst = a.target.ip.or(endpoints.map(|e| e.1));
                if !self.filter.allow(gid, sid, src, dst, now) {
                    return false;
                }
            }
            if let Some(m) = meta {
                if m.priority_set {
                    a.severity = m.severity;
                }
                a.rule = Some(m.clone());
            }
            true
        });
    }

    /// Drops threshold windows that ended.
    pub fn sweep(&self, now: Timestamp) {
        self.filter.sweep(now);
    }
}

fn rule_alert(meta: &Arc<RuleMeta>, p: &PacketView<'_>) -> Alert {
    let has_ports = matches!(
        p.proto,
        crate::decode::PROTO_TCP | crate::decode::PROTO_UDP | crate::decode::PROTO_SCTP
    );
    let ep = |ip: Addr, port: u16| Endpoint {
        ip: Some(ip),
        port: has_ports.then_some(port),
    };
    let none = Endpoint {
        ip: None,
        port: None,
    };
    let (source, target) = match meta.target {
        Some(Target::DestIp) => (ep(p.src, p.sport), ep(p.dst, p.dport)),
        Some(Target::SrcIp) => (ep(p.dst, p.dport), ep(p.src, p.sport)),
        None => (none, none),
    };
    let mut a = Alert::signature(meta.clone(), source, target);
    a.on_flow = p.flow.is_some();
    a
}

#[cfg(test)]
mod tests;
