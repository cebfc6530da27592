//! Configuration: one TOML file, validated once into typed values.
//!
//! Every key has a built-in default, so a run needs no file. Unknown keys and
//! bad values are errors that name the key path (`flow.timeouts.tcp.new`),
//! the line and the reason. Durations take units (`"60s"`, `"5m"`), sizes
//! take units (`"64MiB"`). `backflow.example.toml` documents every key.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use std::collections::BTreeMap;

use crate::flow::table::{TableConfig, Timeouts};
use crate::policy::{Policy, PortRange, RawHost, RawRole, ServiceSet};
use crate::time::Micros;

/// A config error with the key path and, when known, the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}{line}: key `{key}`: {reason}")]
    Invalid {
        file: String,
        line: String,
        key: String,
        reason: String,
    },
}

/// A duration written with a unit (`"30s"`, `"10m"`, `"1h"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Micros);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim())
            .map(|d| Dur(Micros::from_duration(d)))
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{s}` is not a duration with a unit such as \"30s\" or \"5m\" ({e})"
                ))
            })
    }
}

/// A size written with a unit (`"512MiB"`, `"64KiB"`, `"1G"`), or a plain number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    pub fn parse(s: &str) -> Result<Size, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a size such as \"64MiB\""))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "K" | "KB" | "k" | "kB" => 1000,
            "KiB" => 1 << 10,
            "M" | "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "G" | "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            other => {
                return Err(format!(
                    "unknown size unit `{other}` in `{s}` (use B, KiB, MiB, GiB, KB, MB, GB)"
                ));
            }
        };
        n.checked_mul(mult)
            .map(Size)
            .ok_or_else(|| format!("`{s}` is too large"))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Size(n)),
            Raw::S(s) => Size::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    sensor_name: Option<String>,
    home_nets: Option<Vec<String>>,
    #[serde(default)]
    hosts: Vec<RawHost>,
    #[serde(default)]
    roles: BTreeMap<String, RawRole>,
    #[serde(default)]
    service_groups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    detect: DetectConfig,
    #[serde(default)]
    outputs: Vec<RawOutput>,
    workers: Option<usize>,
    hash_seed: Option<u64>,
    memory_cap: Option<Size>,
    #[serde(default)]
    flow: RawFlow,
    #[serde(default)]
    eve: RawEve,
    #[serde(default)]
    anomaly: RawAnomaly,
    #[serde(default)]
    rules: RawRules,
    #[serde(default)]
    reputation: Vec<RawFeed>,
}

/// `[rules]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    files: Option<Vec<String>>,
    classification_file: Option<String>,
    threshold_file: Option<String>,
    #[serde(default)]
    vars: BTreeMap<String, RawVar>,
}

/// A rule variable: an expression (`"[10.0.0.0/8, !10.1.0.0/16]"`,
/// `"[80,8080]"`) or a list of members.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawVar {
    Text(String),
    Port(u16),
    List(Vec<RawVarItem>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawVarItem {
    Text(String),
    Port(u16),
}

/// `[[reputation]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    name: String,
    category: Option<String>,
    severity: Option<u8>,
    ttl: Option<Dur>,
    path: String,
    #[serde(default)]
    format: RawFeedFormat,
    categories_file: Option<String>,
    column: Option<RawColumn>,
    delimiter: Option<String>,
    header: Option<bool>,
    score: Option<u8>,
    state_file: Option<String>,
    check_interval: Option<Dur>,
}

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawFeedFormat {
    #[default]
    List,
    Iprep,
    Csv,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawColumn {
    Index(usize),
    Name(String),
}

/// `[rules]`: where signature rules come from.
#[derive(Clone, Debug)]
pub struct RulesConfig {
    /// Rule files: paths, directories (their `*.rules`) or file-name
    /// wildcards, relative to `base_dir`.
    pub files: Vec<String>,
    /// `files` is the default: a missing default is not an error.
    pub default_files: bool,
    /// None: `rules/classification.config` if present, else the built-in copy.
    pub classification_file: Option<String>,
    /// None: `rules/threshold.config` if present.
    pub threshold_file: Option<String>,
    /// `[rules.vars]`: name → expression.
    pub vars: BTreeMap<String, String>,
    /// Where relative paths start: the config file's directory (None: the
    /// current directory).
    pub base_dir: Option<PathBuf>,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            files: vec![crate::detect::rules::DEFAULT_RULE_FILES.to_string()],
            default_files: true,
            classification_file: None,
            threshold_file: None,
            vars: BTreeMap::new(),
            base_dir: None,
        }
    }
}

/// How a reputation feed is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedFormatConfig {
    List,
    Iprep {
        categories_file: PathBuf,
    },
    Csv {
        column: crate::detect::reputation::feed::Column,
        delimiter: u8,
        header: bool,
    },
}

/// A validated `[[reputation]]` feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedConfig {
    pub name: String,
    /// Category of its entries (iprep lines carry their own).
    pub category: String,
    /// Alert severity of a hit (1 high - 3 low).
    pub severity: u8,
    /// Entries expire this long after they were last seen in the feed.
    pub ttl: Micros,
    pub path: PathBuf,
    pub format: FeedFormatConfig,
    /// Score of `list`/`csv` entries (iprep lines carry their own).
    pub score: u8,
    /// Where ages are kept; None: not kept across restarts.
    pub state_file: Option<PathBuf>,
    /// How often the file is checked for changes; zero: only on SIGHUP.
    pub check_interval: Micros,
}

impl RawFeed {
    fn validate(&self, i: usize, base: Option<&Path>) -> Result<FeedConfig, (String, String)> {
        let key = |k: &str| format!("reputation[{i}].{k}");
        let path_of = |p: &str| {
            let p = Path::new(p);
            match base {
                Some(b) if p.is_relative() => b.join(p),
                _ => p.to_path_buf(),
            }
        };
        if self.name.trim().is_empty() {
            return Err((key("name"), "must not be empty".into()));
        }
        let severity = self.severity.unwrap_or(2);
        if severity == 0 {
            return Err((key("severity"), "starts at 1 (highest)".into()));
        }
        let only = |k: &str, set: bool, fmt: &str| -> Result<(), (String, String)> {
            if set {
                Err((key(k), format!("only for format = \"{fmt}\"")))
            } else {
                Ok(())
            }
        };
        let format = match self.format {
            RawFeedFormat::List | RawFeedFormat::Iprep => {
                only("column", self.column.is_some(), "csv")?;
                only("delimiter", self.delimiter.is_some(), "csv")?;
                only("header", self.header.is_some(), "csv")?;
                if self.format == RawFeedFormat::List {
                    only("categories_file", self.categories_file.is_some(), "iprep")?;
                    FeedFormatConfig::List
                } else {
                    let c = self.categories_file.as_deref().ok_or_else(|| {
                        (
                            key("categories_file"),
                            "required for format = \"iprep\"".into(),
                        )
                    })?;
                    FeedFormatConfig::Iprep {
                        categories_file: path_of(c),
                    }
                }
            }
            RawFeedFormat::Csv => {
                only("categories_file", self.categories_file.is_some(), "iprep")?;
                use crate::detect::reputation::feed::Column;
                let column = match &self.column {
                    Some(RawColumn::Index(0)) => {
                        return Err((key("column"), "columns count from 1".into()));
                    }
                    Some(RawColumn::Index(n)) => Column::Index(*n),
                    Some(RawColumn::Name(n)) => Column::Name(n.clone()),
                    None => {
                        return Err((
                            key("column"),
                            "required for format = \"csv\" (a number from 1, or a header name)"
                                .into(),
                        ));
                    }
                };
                let delimiter = match self.delimiter.as_deref() {
                    None => b',',
                    Some(d) if d.len() == 1 && d.is_ascii() => {
                        d.as_bytes().first().copied().unwrap_or(b',')
                    }
                    Some("\\t") | Some("tab") => b'\t',
                    Some(d) => {
                        return Err((key("delimiter"), format!("`{d}`: one ASCII character")));
                    }
                };
                let header = self.header.unwrap_or(matches!(column, Column::Name(_)));
                if !header && matches!(column, Column::Name(_)) {
                    return Err((
                        key("header"),
                        "a column named by header needs header = true".into(),
                    ));
                }
                FeedFormatConfig::Csv {
                    column,
                    delimiter,
                    header,
                }
            }
        };
        let score = self.score.unwrap_or(127);
        if score > 127 {
            return Err((key("score"), "0-127 (Suricata's iprep range)".into()));
        }
        let path = path_of(&self.path);
        let state_file = match self.state_file.as_deref() {
            Some("") => None,
            Some(p) => Some(path_of(p)),
            None => {
                let mut s = path.clone().into_os_string();
                s.push(".state");
                Some(PathBuf::from(s))
            }
        };
        Ok(FeedConfig {
            name: self.name.clone(),
            category: self.category.clone().unwrap_or_else(|| self.name.clone()),
            severity,
            ttl: self.ttl.map_or(Micros::from_secs(7 * 86_400), |d| d.0),
            path,
            format,
            score,
            state_file,
            check_interval: self.check_interval.map_or(Micros::from_secs(5), |d| d.0),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    max_flows: Option<usize>,
    recovery_percent: Option<u8>,
    max_time_jump: Option<Dur>,
    #[serde(default)]
    timeouts: RawTimeouts,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    tcp: Option<RawProtoTimeouts>,
    udp: Option<RawProtoTimeouts>,
    icmp: Option<RawProtoTimeouts>,
    other: Option<RawProtoTimeouts>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtoTimeouts {
    new: Option<Dur>,
    established: Option<Dur>,
    closed: Option<Dur>,
    emergency_new: Option<Dur>,
    emergency_established: Option<Dur>,
    emergency_closed: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEve {
    filename: Option<String>,
    stats_file: Option<String>,
    stats_interval: Option<Dur>,
    community_id_seed: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnomaly {
    enabled: Option<bool>,
    rate_limit: Option<u32>,
    rate_window: Option<Dur>,
}

/// Validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub sensor_name: Option<String>,
    /// `memory_cap`, split across the tables.
    pub memory: crate::memory::Budget,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    pub hash_seed: u64,
    pub flow: TableConfig,
    /// Forward jumps of packet time beyond this are counted and not applied
    /// to timeouts (a bad timestamp would otherwise expire every flow).
    pub max_time_jump: Micros,
    pub eve_filename: String,
    /// Full counters (backflow's own format) beside the EVE file; empty: none.
    pub stats_file: String,
    pub stats_interval: Micros,
    pub community_id_seed: u16,
    pub anomaly_enabled: bool,
    /// Anomaly records per event name per window, per worker.
    pub anomaly_rate_limit: u32,
    pub anomaly_rate_window: Micros,
    pub policy: Policy,
    pub detect: DetectConfig,
    /// `detect.server_ports`, parsed.
    pub server_ports: ServiceSet,
    /// `detect.reversed_role.exceptions`, parsed.
    pub reversed_role_exceptions: ServiceSet,
    /// `detect.reversed_role.reserved_port_clients`, parsed.
    pub reserved_port_clients: ServiceSet,
    /// `detect.callback.exceptions`, parsed.
    pub callback_exceptions: ServiceSet,
    /// `detect.port_scan.ignore`, parsed.
    pub port_scan_ignore: ServiceSet,
    /// `[[outputs]]`; empty means the default (`eve.filename` in the output directory).
    pub outputs: Vec<OutputSpec>,
    /// `[rules]`.
    pub rules: RulesConfig,
    /// `[[reputation]]` feeds.
    pub reputation: Vec<FeedConfig>,
}

impl Default for Config {
    fn default() -> Self {
        // The defaults are those of an empty file.
        match Config::from_raw(RawConfig::default()) {
            Ok(c) => c,
            Err(_) => unreachable!("the built-in defaults are valid"),
        }
    }
}

impl Config {
    /// Parses a config file's text; `file` names it in errors. Relative
    /// paths are relative to the current directory.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        Config::parse_with_base(text, file, None)
    }

    fn parse_with_base(text: &str, file: &str, base: Option<&Path>) -> Result<Config, ConfigError> {
        let invalid = |key: String, reason: String, line: Option<usize>| ConfigError::Invalid {
            file: file.to_string(),
            line: line.map(|l| format!(":{l}")).unwrap_or_default(),
            key,
            reason,
        };
        let line_of = |span: Option<std::ops::Range<usize>>| {
            span.map(|s| {
                text.get(..s.start).map_or(1, |t| {
                    t.lines().count().max(1) + usize::from(t.ends_with('\n'))
                })
            })
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| invalid(String::new(), e.message().to_string(), line_of(e.span())))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            invalid(key, inner.message().to_string(), line_of(inner.span()))
        })?;
        Config::from_raw_in(raw, base).map_err(|(key, reason)| invalid(key, reason, None))
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        });
        Config::parse_in(&text, &path.display().to_string(), base.as_deref())
    }

    /// [`Config::parse`] with relative paths (rules, feeds) starting at `base`.
    pub fn parse_in(text: &str, file: &str, base: Option<&Path>) -> Result<Config, ConfigError> {
        let mut c = Config::parse_with_base(text, file, base)?;
        c.rules.base_dir = base.map(Path::to_path_buf);
        Ok(c)
    }

    fn from_raw(raw: RawConfig) -> Result<Config, (String, String)> {
        Config::from_raw_in(raw, None)
    }

    fn from_raw_in(raw: RawConfig, base: Option<&Path>) -> Result<Config, (String, String)> {
        let policy = Policy::build(
            raw.home_nets.as_deref(),
            &raw.hosts,
            &raw.roles,
            &raw.service_groups,
        )?;
        let ports = |list: &[String], key: &str| -> Result<ServiceSet, (String, String)> {
            let mut s = ServiceSet::default();
            for (i, p) in list.iter().enumerate() {
                s.ranges
                    .push(PortRange::parse(p).map_err(|e| (format!("{key}[{i}]"), e))?);
            }
            Ok(s)
        };
        let server_ports = ports(&raw.detect.server_ports, "detect.server_ports")?;
        let outputs = raw
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| o.validate(i, raw.sensor_name.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let reversed_role_exceptions = ports(
            &raw.detect.reversed_role.exceptions,
            "detect.reversed_role.exceptions",
        )?;
        let reserved_port_clients = ports(
            &raw.detect.reversed_role.reserved_port_clients,
            "detect.reversed_role.reserved_port_clients",
        )?;
        let callback_exceptions = ports(
            &raw.detect.callback.exceptions,
            "detect.callback.exceptions",
        )?;
        let port_scan_ignore = ports(&raw.detect.port_scan.ignore, "detect.port_scan.ignore")?;
        let d = &raw.detect;
        for (key, r) in [
            (
                "detect.port_scan.max_success_ratio",
                d.port_scan.max_success_ratio,
            ),
            (
                "detect.syn_flood.max_completion_ratio",
                d.syn_flood.max_completion_ratio,
            ),
        ] {
            if !(0.0..=1.0).contains(&r) {
                return Err((key.into(), "must be between 0 and 1".into()));
            }
        }
        if d.max_tracked == 0 {
            return Err(("detect.max_tracked".into(), "must be at least 1".into()));
        }
        let min_ok = [
            (
                "detect.port_scan.min_ports",
                u64::from(d.port_scan.min_ports),
            ),
            (
                "detect.port_scan.min_hosts",
                u64::from(d.port_scan.min_hosts),
            ),
            (
                "detect.port_scan.min_protocols",
                u64::from(d.port_scan.min_protocols),
            ),
            (
                "detect.port_scan.min_refused",
                u64::from(d.port_scan.min_refused),
            ),
            ("detect.syn_flood.min_syns", d.syn_flood.min_syns),
            (
                "detect.brute_force.min_sessions",
                d.brute_force.min_sessions,
            ),
        ];
        for (key, v) in min_ok {
            if v < 2 {
                return Err((key.into(), "must be at least 2".into()));
            }
        }
        let mut timeouts = Timeouts::suricata_default();
        let mut emergency = Timeouts::suricata_emergency();
        let t = &raw.flow.timeouts;
        for (i, (name, p)) in [
            ("tcp", &t.tcp),
            ("udp", &t.udp),
            ("icmp", &t.icmp),
            ("other", &t.other),
        ]
        .into_iter()
        .enumerate()
        {
            let Some(p) = p else { continue };
            let (Some(normal), Some(emerg)) = (timeouts.0.get_mut(i), emergency.0.get_mut(i))
            else {
                continue;
            };
            for (slot, v) in normal.iter_mut().zip([p.new, p.established, p.closed]) {
                if let Some(Dur(d)) = v {
                    *slot = d;
                }
            }
            for (slot, v) in
                emerg
                    .iter_mut()
                    .zip([p.emergency_new, p.emergency_established, p.emergency_closed])
            {
                if let Some(Dur(d)) = v {
                    *slot = d;
                }
            }
            if normal.iter().chain(emerg.iter()).any(|d| d.0 == 0) {
                let _ = name;
                return Err((
                    "flow.timeouts".into(),
                    format!("{name}: timeouts must be greater than zero"),
                ));
            }
        }
        let memory_cap = raw.memory_cap.map_or(crate::memory::DEFAULT_CAP, |s| s.0);
        if memory_cap < crate::memory::MIN_CAP {
            return Err((
                "memory_cap".into(),
                format!("at least {} MiB", crate::memory::MIN_CAP >> 20),
            ));
        }
        let memory = crate::memory::Budget::split(memory_cap);
        // The flows' share of the budget, or less when set lower.
        let max_flows = match raw.flow.max_flows {
            Some(0) => return Err(("flow.max_flows".into(), "must be at least 1".into())),
            Some(n) => n.min(memory.max_flows()),
            None => memory.max_flows(),
        };
        let mut detect = raw.detect.clone();
        detect.tracker_bytes = memory.tracker_bytes();
        detect.rules_bytes = memory.rules_bytes();
        let recovery_percent = raw.flow.recovery_percent.unwrap_or(70);
        if !(1..=99).contains(&recovery_percent) {
            return Err((
                "flow.recovery_percent".into(),
                "must be between 1 and 99".into(),
            ));
        }
        let stats_interval = raw
            .eve
            .stats_interval
            .map_or(Micros::from_secs(60), |d| d.0);
        if stats_interval.0 == 0 {
            return Err((
                "eve.stats_interval".into(),
                "must be greater than zero".into(),
            ));
        }
        let workers = raw.workers.unwrap_or(0);
        if workers > 1024 {
            return Err(("workers".into(), "at most 1024".into()));
        }
        let rules = raw.rules.validate()?;
        let mut reputation = Vec::new();
        for (i, f) in raw.reputation.iter().enumerate() {
            let f = f.validate(i, base)?;
            if reputation.iter().any(|o: &FeedConfig| o.name == f.name) {
                return Err((
                    format!("reputation[{i}].name"),
                    format!("`{}` is used twice", f.name),
                ));
            }
            reputation.push(f);
        }
        Ok(Config {
            sensor_name: raw.sensor_name.filter(|s| !s.is_empty()),
            memory,
            workers,
            hash_seed: raw.hash_seed.unwrap_or(0x6261_636b_666c_6f77),
            flow: TableConfig {
                max_flows,
                timeouts,
                emergency_timeouts: emergency,
                recovery_percent,
            },
            max_time_jump: raw
                .flow
                .max_time_jump
                .map_or(Micros::from_secs(3600), |d| d.0),
            eve_filename: raw.eve.filename.unwrap_or_else(|| "eve.json".into()),
            stats_file: raw.eve.stats_file.unwrap_or_else(|| "stats.json".into()),
            stats_interval,
            community_id_seed: raw.eve.community_id_seed.unwrap_or(0),
            anomaly_enabled: raw.anomaly.enabled.unwrap_or(true),
            anomaly_rate_limit: raw.anomaly.rate_limit.unwrap_or(10),
            anomaly_rate_window: raw
                .anomaly
                .rate_window
                .map_or(Micros::from_secs(60), |d| d.0),
            policy,
            detect,
            server_ports,
            reversed_role_exceptions,
            reserved_port_clients,
            callback_exceptions,
            port_scan_ignore,
            outputs,
            rules,
            reputation,
        })
    }
}

impl RawRules {
    fn validate(&self) -> Result<RulesConfig, (String, String)> {
        use crate::detect::rules::addr::{AddrExpr, PortExpr};
        let mut vars = BTreeMap::new();
        for (name, v) in &self.vars {
            let key = format!("rules.vars.{name}");
            if name == "HOME_NET" {
                return Err((
                    key,
                    "HOME_NET is the policy's `home_nets`; set that instead".into(),
                ));
            }
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err((key, "variable names are letters, digits and `_`".into()));
            }
            let item = |i: &RawVarItem| match i {
                RawVarItem::Text(t) => t.clone(),
                RawVarItem::Port(p) => p.to_string(),
            };
            let text = match v {
                RawVar::Text(t) => t.clone(),
                RawVar::Port(p) => p.to_string(),
                RawVar::List(items) if items.is_empty() => {
                    return Err((key, "an empty list matches nothing".into()));
                }
                RawVar::List(items) => {
                    format!("[{}]", items.iter().map(item).collect::<Vec<_>>().join(","))
                }
            };
            if let (Err(a), Err(p)) = (AddrExpr::parse(&text), PortExpr::parse(&text)) {
                return Err((
                    key,
                    format!(
                        "`{text}` is neither an address group ({}) nor a port group ({})",
                        a.reason, p.reason
                    ),
                ));
            }
            vars.insert(name.clone(), text);
        }
        let d = RulesConfig::default();
        Ok(RulesConfig {
            default_files: self.files.is_none(),
            files: self.files.clone().unwrap_or(d.files),
            classification_file: self.classification_file.clone(),
            threshold_file: self.threshold_file.clone(),
            vars,
            base_dir: None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let c = Config::parse("", "x.toml").unwrap();
        // The flows' share of the default 1 GiB memory cap.
        assert_eq!(c.memory.total, 1 << 30);
        assert_eq!(
            c.flow.max_flows as u64,
            (1u64 << 30) / 100 * 60 / crate::memory::bytes_per_flow()
        );
        assert_eq!(c.stats_interval, Micros::from_secs(60));
        assert_eq!(c.flow.timeouts, Timeouts::suricata_default());
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../backflow.example.toml");
        Config::parse(text, "backflow.example.toml").unwrap();
    }

    #[test]
    fn values_are_typed() {
        let c = Config::parse(
            "sensor_name = \"s1\"\n[flow]\nmax_flows = 10\n[flow.timeouts.tcp]\nnew = \"5s\"\nestablished = \"2m\"\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(c.sensor_name.as_deref(), Some("s1"));
        assert_eq!(c.flow.max_flows, 10);
        assert_eq!(c.flow.timeouts.0[0][0], Micros::from_secs(5));
        assert_eq!(c.flow.timeouts.0[0][1], Micros::from_secs(120));
    }

    #[test]
    fn errors_name_the_key_line_and_reason() {
        let e = Config::parse("[flow]\nmax_flow = 3\n", "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("bad.toml:2: key `flow"), "{e}");
        assert!(e.contains("unknown field `max_flow`"), "{e}");
        let e = Config::parse("[flow.timeouts.udp]\nnew = \"soon\"\n", "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key `flow.timeouts.udp.new`") && e.contains("`soon` is not a duration"),
            "{e}"
        );
        let e = Config::parse("[flow]\nmax_flows = 0\n", "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key `flow.max_flows`: must be at least 1"),
            "{e}"
        );
        let e = Config::parse("workers = \"two\"\n", "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `workers`"), "{e}");
        let e = Config::parse("[flow\n", "bad.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("bad.toml:1"), "{e}");
    }

    #[test]
    fn rules_and_reputation_keys() {
        let c = Config::parse_in(
            "[rules]\nfiles = [\"my.rules\"]\n[rules.vars]\nWEB = [\"10.0.0.5\", \"10.0.0.6\"]\nWEB_PORTS = [80, 8080]\nDNS_PORT = 53\n\
             [[reputation]]\nname = \"a\"\npath = \"a.txt\"\n\
             [[reputation]]\nname = \"b\"\npath = \"/abs/b.csv\"\nformat = \"csv\"\ncolumn = 2\ndelimiter = \";\"\nttl = \"36h\"\nstate_file = \"\"\n",
            "x.toml",
            Some(Path::new("/etc/backflow")),
        )
        .unwrap();
        assert_eq!(c.rules.files, vec!["my.rules".to_string()]);
        assert!(!c.rules.default_files);
        assert_eq!(
            c.rules.base_dir.as_deref(),
            Some(Path::new("/etc/backflow"))
        );
        assert_eq!(c.rules.vars["WEB"], "[10.0.0.5,10.0.0.6]");
        assert_eq!(c.rules.vars["WEB_PORTS"], "[80,8080]");
        assert_eq!(c.rules.vars["DNS_PORT"], "53");
        let (a, b) = (&c.reputation[0], &c.reputation[1]);
        assert_eq!(a.path, Path::new("/etc/backflow/a.txt"));
        assert_eq!(
            a.state_file.as_deref(),
            Some(Path::new("/etc/backflow/a.txt.state"))
        );
        assert_eq!(a.ttl, Micros::from_secs(7 * 86_400));
        assert_eq!((a.category.as_str(), a.severity, a.score), ("a", 2, 127));
        assert_eq!(a.format, FeedFormatConfig::List);
        assert_eq!(b.path, Path::new("/abs/b.csv"));
        assert_eq!(b.state_file, None);
        assert_eq!(b.ttl, Micros::from_secs(36 * 3600));
        assert!(matches!(
            b.format,
            FeedFormatConfig::Csv {
                delimiter: b';',
                header: false,
                ..
            }
        ));
        assert!(Config::default().rules.default_files);
    }

    #[test]
    fn rules_and_reputation_errors_name_the_key() {
        let err = |t: &str| Config::parse(t, "bad.toml").unwrap_err().to_string();
        let e = err("[rules.vars]\nHOME_NET = \"10.0.0.0/8\"\n");
        assert!(e.contains("key `rules.vars.HOME_NET`"), "{e}");
        let e = err("[rules.vars]\nX = \"[1.1.1.1,\"\n");
        assert!(e.contains("key `rules.vars.X`"), "{e}");
        let e = err("[rules]\nfile = []\n");
        assert!(e.starts_with("bad.toml:2: key `rules"), "{e}");
        let e = err("[[reputation]]\nname = \"a\"\npath = \"a\"\nformat = \"xml\"\n");
        assert!(
            e.starts_with("bad.toml:4: key `reputation[0].format`"),
            "{e}"
        );
        let e = err("[[reputation]]\nname = \"a\"\npath = \"a\"\nformat = \"csv\"\n");
        assert!(e.contains("key `reputation[0].column`"), "{e}");
        let e = err("[[reputation]]\nname = \"a\"\npath = \"a\"\nformat = \"iprep\"\n");
        assert!(e.contains("key `reputation[0].categories_file`"), "{e}");
        let e = err("[[reputation]]\nname = \"a\"\npath = \"a\"\ncolumn = 1\n");
        assert!(
            e.contains("key `reputation[0].column`: only for format = \"csv\""),
            "{e}"
        );
        let e = err("[[reputation]]\nname = \"a\"\npath = \"a\"\nttl = \"soon\"\n");
        assert!(e.contains("key `reputation[0].ttl`"), "{e}");
        let e = err(
            "[[reputation]]\nname = \"a\"\npath = \"a\"\n[[reputation]]\nname = \"a\"\npath = \"b\"\n",
        );
        assert!(e.contains("key `reputation[1].name`"), "{e}");
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(Size::parse("64MiB"), Ok(Size(64 << 20)));
        assert_eq!(Size::parse("1000"), Ok(Size(1000)));
        assert!(Size::parse("12 parsecs").is_err());
        assert!(Size::parse("99999999999999GiB").is_err());
    }
}

/// `[detect]`: detector switches, windows and thresholds.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Entries per shared tracker (scanners, victims, sessions...).
    pub max_tracked: usize,
    /// Bytes per shared tracker: the detectors' share of `memory_cap`
    /// (not a config key).
    #[serde(skip)]
    pub tracker_bytes: usize,
    /// Bytes for signature-rule state and reputation tables: the rules'
    /// share of `memory_cap` (not a config key).
    #[serde(skip)]
    pub rules_bytes: usize,
    /// Ports treated as server ports of any host (reversed role, direction
    /// guess): "proto/port" or "proto/lo-hi".
    pub server_ports: Vec<String>,
    pub reversed_role: ReversedRoleConfig,
    pub unexpected_inbound: UnexpectedInboundConfig,
    pub callback: CallbackConfig,
    pub port_scan: PortScanConfig,
    pub syn_flood: SynFloodConfig,
    pub brute_force: BruteForceConfig,
    pub egress_violation: WindowedConfig,
    pub outbound_smtp: WindowedConfig,
    pub open_proxy: OpenProxyConfig,
    pub tcp_flags: Switch,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            max_tracked: 100_000,
            tracker_bytes: usize::MAX,
            rules_bytes: usize::MAX,
            server_ports: [
                "tcp/1-1023",
                "tcp/1080",
                "tcp/1433",
                "tcp/1521",
                "tcp/2049",
                "tcp/3128",
                "tcp/3306",
                "tcp/3389",
                "tcp/5432",
                "tcp/5900",
                "tcp/5985-5986",
                "tcp/6379",
                "tcp/8080",
                "tcp/8443",
                "tcp/9200",
                "tcp/11211",
                "tcp/27017",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            reversed_role: ReversedRoleConfig::default(),
            unexpected_inbound: UnexpectedInboundConfig::default(),
            callback: CallbackConfig::default(),
            port_scan: PortScanConfig::default(),
            syn_flood: SynFloodConfig::default(),
            brute_force: BruteForceConfig::default(),
            egress_violation: WindowedConfig::default(),
            outbound_smtp: WindowedConfig::default(),
            open_proxy: OpenProxyConfig::default(),
            tcp_flags: Switch::default(),
        }
    }
}

fn secs(s: u64) -> Dur {
    Dur(Micros::from_secs(s))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Switch {
    pub enabled: bool,
}

impl Default for Switch {
    fn default() -> Self {
        Switch { enabled: true }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowedConfig {
    pub enabled: bool,
    /// An incident is re-reported at most once per window.
    pub window: Dur,
}

impl Default for WindowedConfig {
    fn default() -> Self {
        WindowedConfig {
            enabled: true,
            window: secs(3600),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReversedRoleConfig {
    pub enabled: bool,
    pub window: Dur,
    /// Source ports that may open connections (FTP active data by default).
    pub exceptions: Vec<String>,
    /// Services whose clients connect from a reserved port (512-1023): NFS,
    /// rsh, LPD... A SYN to one of them from such a port is a client's.
    pub reserved_port_clients: Vec<String>,
    /// How long a port stays a server port after the host answered a SYN on it.
    pub learned_ttl: Dur,
}

impl Default for ReversedRoleConfig {
    fn default() -> Self {
        ReversedRoleConfig {
            enabled: true,
            window: secs(3600),
            exceptions: vec!["tcp/20".into()],
            reserved_port_clients: [
                "tcp/111",
                "tcp/512-515",
                "tcp/543-544",
                "tcp/2049",
                "tcp/20048",
            ]
            .map(String::from)
            .to_vec(),
            learned_ttl: secs(86_400),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnexpectedInboundConfig {
    pub enabled: bool,
    pub window: Dur,
    /// Ports whose exposure is severity 1.
    pub admin_ports: Vec<u16>,
}

impl Default for UnexpectedInboundConfig {
    fn default() -> Self {
        UnexpectedInboundConfig {
            enabled: true,
            window: secs(3600),
            admin_ports: vec![22, 23, 3389, 5900, 5985, 5986, 445, 135, 139],
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackConfig {
    pub enabled: bool,
    /// How long after an inbound session a connection back to its client
    /// counts; also the re-report interval.
    pub window: Dur,
    /// Destination ports a server may connect back on (ident by default).
    pub exceptions: Vec<String>,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            enabled: true,
            window: secs(600),
            exceptions: vec!["tcp/113".into()],
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortScanConfig {
    pub enabled: bool,
    pub window: Dur,
    /// Distinct ports of one host (port_scan).
    pub min_ports: u32,
    /// Distinct hosts on one port (port_sweep).
    pub min_hosts: u32,
    /// Distinct IP protocols other than TCP and UDP of one host
    /// (protocol_scan).
    pub min_protocols: u32,
    /// Above this share of answered probes it is a client at work, not a scan.
    pub max_success_ratio: f64,
    /// Distinct ports (or hosts) that refused the source's probes (RST,
    /// ICMP unreachable): a scan even below `min_ports`/`min_hosts`.
    pub min_refused: u32,
    /// Probes to these services are not counted ("proto/port[-port]").
    pub ignore: Vec<String>,
}

impl Default for PortScanConfig {
    fn default() -> Self {
        PortScanConfig {
            enabled: true,
            window: secs(300),
            min_ports: 20,
            min_hosts: 20,
            min_protocols: 8,
            max_success_ratio: 0.5,
            min_refused: 10,
            // traceroute's UDP probes (one per port from 33434 up).
            ignore: vec!["udp/33434-33534".into()],
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynFloodConfig {
    pub enabled: bool,
    pub window: Dur,
    /// SYNs to one (address, port) within the window.
    pub min_syns: u64,
    /// Above this share of completed handshakes it is load, not a flood.
    pub max_completion_ratio: f64,
}

impl Default for SynFloodConfig {
    fn default() -> Self {
        SynFloodConfig {
            enabled: true,
            window: secs(10),
            min_syns: 150,
            max_completion_ratio: 0.2,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BruteForceConfig {
    pub enabled: bool,
    pub window: Dur,
    /// Short sessions from one source to one service within the window.
    pub min_sessions: u64,
    /// A session at most this long counts as short.
    pub short_session: Dur,
    /// A session at least this long after the burst raises severity.
    pub long_session: Dur,
    pub ports: Vec<u16>,
}

impl Default for BruteForceConfig {
    fn default() -> Self {
        BruteForceConfig {
            enabled: true,
            window: secs(300),
            min_sessions: 8,
            short_session: secs(30),
            long_session: secs(60),
            ports: vec![22, 23, 21, 3389, 110, 143, 389, 445, 1433, 3306, 5432, 5900],
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenProxyConfig {
    pub enabled: bool,
    pub window: Dur,
    /// An outbound web connection this soon after a proxy request is a relay.
    pub relay_window: Dur,
}

impl Default for OpenProxyConfig {
    fn default() -> Self {
        OpenProxyConfig {
            enabled: true,
            window: secs(3600),
            relay_window: secs(10),
        }
    }
}

/// One `[[outputs]]` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    types: Vec<String>,
    policy: Option<String>,
    buffer: Option<usize>,
    flush_timeout: Option<Dur>,
    path: Option<String>,
    rotate_size: Option<Size>,
    rotate_interval: Option<Dur>,
    keep: Option<usize>,
    transport: Option<String>,
    address: Option<String>,
    facility: Option<String>,
    severity: Option<String>,
    app_name: Option<String>,
    hostname: Option<String>,
    mode: Option<String>,
    key: Option<String>,
    batch: Option<usize>,
}

/// What an output is.
#[derive(Clone, Debug)]
pub enum OutputKind {
    /// A file, relative to the output directory unless absolute.
    File {
        path: String,
        rotation: crate::output::sink::Rotation,
    },
    Stdout,
    UnixDgram(String),
    UnixStream(String),
    Syslog(crate::output::net::SyslogSettings),
    Redis {
        url: String,
        mode: crate::output::net::RedisMode,
        key: String,
        batch: usize,
    },
}

/// A validated `[[outputs]]` entry.
#[derive(Clone, Debug)]
pub struct OutputSpec {
    pub kind: OutputKind,
    pub types: Vec<crate::output::eve::EventType>,
    pub policy: crate::output::sink::Policy,
    /// Events queued for a network sink.
    pub buffer: usize,
    pub flush_timeout: std::time::Duration,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".into())
}

impl RawOutput {
    fn validate(&self, i: usize, sensor: Option<&str>) -> Result<OutputSpec, (String, String)> {
        use crate::output::eve::EventType;
        use crate::output::net::{
            RedisMode, SyslogSettings, SyslogTransport, facility_code, severity_code,
        };
        use crate::output::sink::{Policy, Rotation};
        let key = |k: &str| format!("outputs[{i}].{k}");
        let kind = self.kind.as_str();
        // Which settings each type takes.
        let allowed: &[&str] = match kind {
            "file" => &["path", "rotate_size", "rotate_interval", "keep"],
            "stdout" => &[],
            "unix_dgram" | "unix_stream" => &["path", "buffer", "flush_timeout"],
            "syslog" => &[
                "transport",
                "address",
                "facility",
                "severity",
                "app_name",
                "hostname",
                "buffer",
                "flush_timeout",
            ],
            "redis" => &["address", "mode", "key", "batch", "buffer", "flush_timeout"],
            other => {
                return Err((
                    key("type"),
                    format!(
                        "unknown output type `{other}` (file, stdout, unix_dgram, unix_stream, syslog, redis)"
                    ),
                ));
            }
        };
        let set: [(&str, bool); 15] = [
            ("buffer", self.buffer.is_some()),
            ("flush_timeout", self.flush_timeout.is_some()),
            ("path", self.path.is_some()),
            ("rotate_size", self.rotate_size.is_some()),
            ("rotate_interval", self.rotate_interval.is_some()),
            ("keep", self.keep.is_some()),
            ("transport", self.transport.is_some()),
            ("address", self.address.is_some()),
            ("facility", self.facility.is_some()),
            ("severity", self.severity.is_some()),
            ("app_name", self.app_name.is_some()),
            ("hostname", self.hostname.is_some()),
            ("mode", self.mode.is_some()),
            ("key", self.key.is_some()),
            ("batch", self.batch.is_some()),
        ];
        for (name, present) in set {
            if present && !allowed.contains(&name) {
                return Err((key(name), format!("not a setting of output type `{kind}`")));
            }
        }
        let mut types = Vec::new();
        for (j, t) in self.types.iter().enumerate() {
            types.push(EventType::parse(t).ok_or_else(|| {
                (
                    format!("outputs[{i}].types[{j}]"),
                    format!("unknown event type `{t}` (alert, flow, anomaly, stats)"),
                )
            })?);
        }
        let policy = match self.policy.as_deref() {
            None | Some("drop") => Policy::Drop,
            Some("block") => Policy::Block,
            Some(o) => {
                return Err((
                    key("policy"),
                    format!("`{o}`: expected \"block\" or \"drop\""),
                ));
            }
        };
        let need = |v: &Option<String>, k: &str| {
            v.clone()
                .ok_or_else(|| (key(k), format!("required for output type `{kind}`")))
        };
        let kind = match kind {
            "file" => OutputKind::File {
                path: self.path.clone().unwrap_or_else(|| "eve.json".into()),
                rotation: Rotation {
                    size: self.rotate_size.map(|s| s.0),
                    interval: self
                        .rotate_interval
                        .map(|d| std::time::Duration::from_micros(d.0.0)),
                    keep: self.keep.unwrap_or(5),
                },
            },
            "stdout" => OutputKind::Stdout,
            "unix_dgram" => OutputKind::UnixDgram(need(&self.path, "path")?),
            "unix_stream" => OutputKind::UnixStream(need(&self.path, "path")?),
            "syslog" => {
                let transport = match self.transport.as_deref().unwrap_or("unix") {
                    "udp" => SyslogTransport::Udp(need(&self.address, "address")?),
                    "tcp" => SyslogTransport::Tcp(need(&self.address, "address")?),
                    "unix" => SyslogTransport::Unix(
                        self.address.clone().unwrap_or_else(|| "/dev/log".into()),
                    ),
                    o => {
                        return Err((
                            key("transport"),
                            format!("`{o}`: expected udp, tcp or unix"),
                        ));
                    }
                };
                let facility = self.facility.as_deref().unwrap_or("local5");
                let severity = self.severity.as_deref().unwrap_or("notice");
                OutputKind::Syslog(SyslogSettings {
                    transport,
                    facility: facility_code(facility).ok_or_else(|| {
                        (key("facility"), format!("unknown facility `{facility}`"))
                    })?,
                    severity: severity_code(severity).ok_or_else(|| {
                        (key("severity"), format!("unknown severity `{severity}`"))
                    })?,
                    app_name: self.app_name.clone().unwrap_or_else(|| "backflow".into()),
                    hostname: self
                        .hostname
                        .clone()
                        .or_else(|| sensor.map(str::to_string))
                        .unwrap_or_else(hostname),
                })
            }
            _ => {
                let address = self
                    .address
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1:6379".into());
                let url = if address.starts_with("redis://") || address.starts_with("unix://") {
                    address
                } else {
                    format!("redis://{address}/")
                };
                let mode = match self.mode.as_deref().unwrap_or("rpush") {
                    "rpush" | "list" => RedisMode::Rpush,
                    "lpush" => RedisMode::Lpush,
                    "publish" | "channel" => RedisMode::Publish,
                    o => {
                        return Err((
                            key("mode"),
                            format!("`{o}`: expected rpush, lpush or publish"),
                        ));
                    }
                };
                OutputKind::Redis {
                    url,
                    mode,
                    key: self.key.clone().unwrap_or_else(|| "backflow".into()),
                    batch: self.batch.unwrap_or(500),
                }
            }
        };
        Ok(OutputSpec {
            kind,
            types,
            policy,
            buffer: self.buffer.unwrap_or(100_000),
            flush_timeout: self
                .flush_timeout
                .map_or(std::time::Duration::from_secs(5), |d| {
                    std::time::Duration::from_micros(d.0.0)
                }),
        })
    }
}
