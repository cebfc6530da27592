//! Thresholds and suppression, with Suricata's semantics, shared by rule
//! alerts and the behavioural detectors' alerts.
//!
//! Per signature (gid, sid) and tracked key (source, destination, the pair,
//! or the rule as a whole), within a window of `seconds` of packet time that
//! starts at the first match:
//! - `limit`: the first `count` matches alert;
//! - `threshold`: every `count`-th match alerts (the count restarts after
//!   each alert);
//! - `both`: one alert, at the `count`-th match;
//! - `detection_filter`: every match after the `count`-th alerts.
//!
//! When the window has passed, the next match starts a new one. The
//! window before is kept with the current one: a match of it that a
//! worker processes after another worker's match started the next window
//! counts where it belongs. A
//! `threshold.config` file adds `suppress` lines (drop the alerts of a sid,
//! or only those from/to given addresses) and `threshold`/`event_filter`
//! lines (which replace a rule's own `threshold`); `rate_filter` is
//! rejected, since a passive sensor has no action to change.
//!
//! State is a [`BoundedMap`]: an entry lives until its window ends; at the
//! cap, expired entries go first, then a new key is not tracked (counted in
//! `shed`) and its match is treated as the first of a new window.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::addr::{AddrExpr, AddrSet, Resolver};
use super::parser::Reason;
use crate::decode::Addr;
use crate::detect::bounded::{BoundedMap, Expiring};
use crate::time::{Micros, Timestamp};

/// Which alerts of a signature are counted together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Track {
    BySrc,
    ByDst,
    ByBoth,
    ByRule,
}

impl Track {
    fn parse(s: &str) -> Result<Track, Reason> {
        Ok(match s {
            "by_src" => Track::BySrc,
            "by_dst" => Track::ByDst,
            "by_both" => Track::ByBoth,
            "by_rule" => Track::ByRule,
            other => {
                return Err(Reason::BadValue(format!(
                    "track `{other}`: expected by_src, by_dst, by_both or by_rule"
                )));
            }
        })
    }
    fn as_str(self) -> &'static str {
        match self {
            Track::BySrc => "by_src",
            Track::ByDst => "by_dst",
            Track::ByBoth => "by_both",
            Track::ByRule => "by_rule",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThresholdKind {
    Limit,
    Threshold,
    Both,
    /// `detection_filter`.
    Detection,
}

/// A `threshold` or `detection_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ThresholdSpec {
    pub kind: ThresholdKind,
    pub track: Track,
    pub count: u32,
    pub seconds: u32,
}

impl ThresholdSpec {
    /// Parses `type T, track X, count N, seconds S` (in any order; no
    /// `type` for a detection filter).
    pub fn parse_option(s: &str, detection: bool) -> Result<ThresholdSpec, Reason> {
        let mut kind = detection.then_some(ThresholdKind::Detection);
        let (mut track, mut count, mut seconds) = (None, None, None);
        for part in s.split(',').map(str::trim) {
            let (k, v) = part
                .split_once(char::is_whitespace)
                .map(|(k, v)| (k, v.trim()))
                .ok_or_else(|| Reason::BadValue(format!("`{part}`: expected `name value`")))?;
            let dup = || Reason::Conflict(format!("`{k}` given twice"));
            match k {
                "type" if !detection => {
                    if kind.is_some() {
                        return Err(dup());
                    }
                    kind = Some(match v {
                        "limit" => ThresholdKind::Limit,
                        "threshold" => ThresholdKind::Threshold,
                        "both" => ThresholdKind::Both,
                        other => {
                            return Err(Reason::BadValue(format!(
                                "type `{other}`: expected limit, threshold or both"
                            )));
                        }
                    });
                }
                "track" => {
                    if track.replace(Track::parse(v)?).is_some() {
                        return Err(dup());
                    }
                }
                "count" => {
                    let n: u32 = v
                        .parse()
                        .map_err(|_| Reason::BadValue(format!("count `{v}` is not a number")))?;
                    if count.replace(n).is_some() {
                        return Err(dup());
                    }
                }
                "seconds" => {
                    let n: u32 = v
                        .parse()
                        .map_err(|_| Reason::BadValue(format!("seconds `{v}` is not a number")))?;
                    if seconds.replace(n).is_some() {
                        return Err(dup());
                    }
                }
                "unique_on" => {
                    return Err(Reason::Unsupported {
                        what: "detection_filter `unique_on`".into(),
                        why: "distinct-value counting is not implemented".into(),
                    });
                }
                other => return Err(Reason::BadValue(format!("unknown setting `{other}`"))),
            }
        }
        let missing = |what: &str| Reason::BadValue(format!("missing `{what}`"));
        let spec = ThresholdSpec {
            kind: kind.ok_or_else(|| missing("type"))?,
            track: track.ok_or_else(|| missing("track"))?,
            count: count.ok_or_else(|| missing("count"))?,
            seconds: seconds.ok_or_else(|| missing("seconds"))?,
        };
        if spec.count == 0 && spec.kind != ThresholdKind::Detection {
            return Err(Reason::BadValue("count must be at least 1".into()));
        }
        Ok(spec)
    }

    fn window(&self) -> Micros {
        Micros::from_secs(u64::from(self.seconds))
    }
}

impl fmt::Display for ThresholdSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ThresholdKind::Limit => Some("limit"),
            ThresholdKind::Threshold => Some("threshold"),
            ThresholdKind::Both => Some("both"),
            ThresholdKind::Detection => None,
        };
        if let Some(k) = kind {
            write!(f, "type {k}, ")?;
        }
        write!(
            f,
            "track {}, count {}, seconds {}",
            self.track.as_str(),
            self.count,
            self.seconds
        )
    }
}

/// A `suppress` line.
#[derive(Clone, Debug)]
struct Suppress {
    /// None: every alert of the signature.
    track: Option<(SuppressTrack, AddrSet)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SuppressTrack {
    Src,
    Dst,
    Either,
}

/// Error in a threshold.config line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct ThresholdFileError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// Counter state of one tracked key; lives until its window ends.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: Timestamp,
    count: u32,
    ends: Timestamp,
    /// The window before (start, count), for matches of it that workers
    /// running in parallel process after this one started.
    prev: Option<(Timestamp, u32)>,
}

impl Expiring for Window {
    /// The map drops an entry once this time plus its idle time (zero) has
    /// passed: the end of the window, after which the entry means nothing.
    fn last_seen(&self) -> Timestamp {
        self.ends
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum TrackKey {
    Src(Addr),
    Dst(Addr),
    Both(Addr, Addr),
    Rule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct StateKey {
    gid: u32,
    sid: u32,
    key: TrackKey,
    detection: bool,
}

/// The alert filter: suppressions, thresholds, detection filters.
pub struct AlertFilter {
    suppress: HashMap<(u32, u32), Vec<Suppress>>,
    thresholds: HashMap<(u32, u32), ThresholdSpec>,
    detection: HashMap<(u32, u32), ThresholdSpec>,
    /// `pass` detector rules: every alert of the signature is dropped.
    passed: HashMap<(u32, u32), ()>,
    state: BoundedMap<StateKey, Window>,
    suppressed: AtomicU64,
    thresholded: AtomicU64,
}

impl AlertFilter {
    pub fn new(cap: usize) -> Self {
        AlertFilter {
            suppress: HashMap::new(),
            thresholds: HashMap::new(),
            detection: HashMap::new(),
            passed: HashMap::new(),
            state: BoundedMap::new(cap, usize::MAX, Micros(0)),
            suppressed: AtomicU64::new(0),
            thresholded: AtomicU64::new(0),
        }
    }

    /// Caps the threshold and detection-filter state at `bytes` (as well as
    /// at its entries); at the cap, idle windows go first, then new ones are
    /// not tracked (counted as shed). Call before any alert is filtered: the
    /// state starts over.
    pub fn limit_state_bytes(&mut self, bytes: usize) {
        self.state = BoundedMap::new(self.state.cap(), bytes, Micros(0));
    }

    /// A rule's own `threshold` or `detection_filter` (a threshold.config
    /// `threshold` for the same signature replaces it).
    pub fn set_rule_threshold(&mut self, gid: u32, sid: u32, spec: ThresholdSpec) {
        if spec.kind == ThresholdKind::Detection {
            self.detection.insert((gid, sid), spec);
        } else {
            self.thresholds.entry((gid, sid)).or_insert(spec);
        }
    }

    /// Drops every alert of a signature (a detector rule with action `pass`).
    pub fn pass_signature(&mut self, gid: u32, sid: u32) {
        self.passed.insert((gid, sid), ());
    }

    /// Whether anything could ever drop an alert (else `allow` is skipped).
    pub fn is_empty(&self) -> bool {
        self.suppress.is_empty()
            && self.thresholds.is_empty()
            && self.detection.is_empty()
            && self.passed.is_empty()
    }

    /// Reads a threshold.config text; bad lines are returned and skipped.
    pub fn load_config(
        &mut self,
        text: &str,
        file: &str,
        resolver: &mut Resolver<'_>,
    ) -> Vec<ThresholdFileError> {
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Err(reason) = self.config_line(line, resolver) {
                errors.push(ThresholdFileError {
                    file: file.to_string(),
                    line: i + 1,
                    reason,
                });
            }
        }
        errors
    }

    fn config_line(&mut self, line: &str, resolver: &mut Resolver<'_>) -> Result<(), String> {
        let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let mut fields: Vec<(String, String)> = Vec::new();
        // `ip` may hold a bracketed list with commas.
        let mut depth = 0usize;
        let mut cur = String::new();
        for c in rest.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    fields.push(split_field(&cur)?);
                    cur.clear();
                    continue;
                }
                _ => {}
            }
            cur.push(c);
        }
        if !cur.trim().is_empty() {
            fields.push(split_field(&cur)?);
        }
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let known: &[&str] = match cmd {
            "suppress" => &["gen_id", "sig_id", "track", "ip"],
            "threshold" | "event_filter" => {
                &["gen_id", "sig_id", "type", "track", "count", "seconds"]
            }
            "rate_filter" => {
                return Err(
                    "rate_filter is not supported: it changes a rule's action, and a passive sensor only alerts"
                        .into(),
                );
            }
            other => {
                return Err(format!(
                    "unknown command `{other}` (suppress, threshold, event_filter)"
                ));
            }
        };
        if let Some((k, _)) = fields.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(format!("`{k}` is not a setting of `{cmd}`"));
        }
        let num = |k: &str| -> Result<u32, String> {
            get(k)
                .ok_or_else(|| format!("missing `{k}`"))?
                .parse()
                .map_err(|_| format!("`{k}` is not a number"))
        };
        let gid = num("gen_id")?;
        let sid = num("sig_id")?;
        if cmd == "suppress" {
            let track = match (get("track"), get("ip")) {
                (None, None) => None,
                (Some(t), Some(ip)) => {
                    let t = match t {
                        "by_src" => SuppressTrack::Src,
                        "by_dst" => SuppressTrack::Dst,
                        "by_either" => SuppressTrack::Either,
                        o => {
                            return Err(format!(
                                "track `{o}`: expected by_src, by_dst or by_either"
                            ));
                        }
                    };
                    let e = AddrExpr::parse(ip).map_err(|e| format!("ip `{ip}`: {}", e.reason))?;
                    let set = resolver.addrs(&e).map_err(|e| format!("ip `{ip}`: {e}"))?;
                    Some((t, set))
                }
                _ => return Err("`track` and `ip` go together".into()),
            };
            self.suppress
                .entry((gid, sid))
                .or_default()
                .push(Suppress { track });
            return Ok(());
        }
        let body = fields
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "gen_id" | "sig_id"))
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let spec = ThresholdSpec::parse_option(&body, false).map_err(|r| r.to_string())?;
        self.thresholds.insert((gid, sid), spec);
        Ok(())
    }

    fn suppressed_by(&self, key: (u32, u32), src: Option<Addr>, dst: Option<Addr>) -> bool {
        let Some(list) = self.suppress.get(&key) else {
            return false;
        };
        list.iter().any(|s| match &s.track {
            None => true,
            Some((t, set)) => {
                let s_in = src.is_some_and(|a| set.contains(&a));
                let d_in = dst.is_some_and(|a| set.contains(&a));
                match t {
                    SuppressTrack::Src => s_in,
                    SuppressTrack::Dst => d_in,
                    SuppressTrack::Either => s_in || d_in,
                }
            }
        })
    }

    /// Whether an alert of signature (gid, sid) from `src` to `dst` at
    /// packet time `now` is written. Counts toward its threshold.
    pub fn allow(
        &self,
        gid: u32,
        sid: u32,
        src: Option<Addr>,
        dst: Option<Addr>,
        now: Timestamp,
    ) -> bool {
        if self.passed.contains_key(&(gid, sid))
            || self.suppressed_by((gid, sid), src, dst)
            || self.suppressed_by((gid, 0), src, dst)
            || self.suppressed_by((0, 0), src, dst)
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if let Some(df) = self.detection.get(&(gid, sid))
            && !self.count(gid, sid, df, src, dst, now)
        {
            self.thresholded.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let spec = self
            .thresholds
            .get(&(gid, sid))
            .or_else(|| self.thresholds.get(&(gid, 0)))
            .or_else(|| self.thresholds.get(&(0, 0)));
        if let Some(t) = spec
            && !self.count(gid, sid, t, src, dst, now)
        {
            self.thresholded.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn count(
        &self,
        gid: u32,
        sid: u32,
        spec: &ThresholdSpec,
        src: Option<Addr>,
        dst: Option<Addr>,
        now: Timestamp,
    ) -> bool {
        // A side that is unknown (a detector alert naming no single host)
        // is tracked with the rule.
        let key = match (spec.track, src, dst) {
            (Track::BySrc, Some(s), _) => TrackKey::Src(s),
            (Track::ByDst, _, Some(d)) => TrackKey::Dst(d),
            // An address pair, either way round (Suricata's ippair).
            (Track::ByBoth, Some(s), Some(d)) => TrackKey::Both(s.min(d), s.max(d)),
            _ => TrackKey::Rule,
        };
        let key = StateKey {
            gid,
            sid,
            key,
            detection: spec.kind == ThresholdKind::Detection,
        };
        let window = spec.window();
        let fresh = || Window {
            start: now,
            count: 0,
            ends: now.saturating_add(window),
            prev: None,
        };
        // Counts the match in a window holding `count` matches.
        let decide = |count: &mut u32| -> bool {
            *count = count.saturating_add(1);
            match spec.kind {
                ThresholdKind::Limit => *count <= spec.count,
                ThresholdKind::Threshold => {
                    if *count >= spec.count {
                        *count = 0;
                        true
                    } else {
                        false
                    }
                }
                ThresholdKind::Both => *count == spec.count,
                ThresholdKind::Detection => *count > spec.count,
            }
        };
        let step = |w: &mut Window| -> bool {
            if now >= w.start {
                if now.since(w.start) >= window {
                    *w = Window {
                        prev: Some((w.start, w.count)),
                        ..fresh()
                    };
                }
                return decide(&mut w.count);
            }
            // Workers process packets in parallel, so a match can arrive
            // after a later one of the same key. One of the window before
            // counts there; one just before the window kept (and after the
            // one before) belongs to it, which starts at the earliest match;
            // an older one is the first of a window of its own, and leaves
            // the windows kept as they are.
            if let Some((start, count)) = &mut w.prev
                && now >= *start
                && now.since(*start) < window
            {
                return decide(count);
            }
            let after_prev = w.prev.is_none_or(|(start, _)| now.since(start) >= window);
            if w.start.since(now) < window && after_prev {
                w.start = now;
                w.ends = now.saturating_add(window);
                return decide(&mut w.count);
            }
            decide(&mut 0)
        };
        match self.state.update(&key, now, fresh, step) {
            Some(r) => r,
            // Not tracked (the table is full): the first match of a window.
            None => decide(&mut 0),
        }
    }

    /// Drops windows that ended (called about once per second of packet time).
    pub fn sweep(&self, now: Timestamp) {
        self.state.sweep(now);
    }

    /// Keys not tracked because the table was full.
    pub fn shed(&self) -> u64 {
        self.state.shed()
    }

    /// The threshold windows held (entries, bytes, keys refused at the cap).
    pub fn usage(&self) -> crate::detect::Usage {
        self.state.usage()
    }

    pub fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }

    pub fn thresholded(&self) -> u64 {
        self.thresholded.load(Ordering::Relaxed)
    }
}

fn split_field(s: &str) -> Result<(String, String), String> {
    let t = s.trim();
    let (k, v) = t
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("`{t}`: expected `name value`"))?;
    Ok((k.to_string(), v.trim().to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::decode::a;
    use crate::detect::rules::addr::Vars;
    use std::collections::BTreeMap;

    fn spec(s: &str) -> ThresholdSpec {
        ThresholdSpec::parse_option(s, false).unwrap()
    }

    /// Alerts out of `n` matches one second apart.
    fn run(f: &AlertFilter, sid: u32, n: u64, src: &str) -> Vec<u64> {
        (0..n)
            .filter(|i| {
                f.allow(
                    1,
                    sid,
                    Some(a(src)),
                    Some(a("10.0.0.1")),
                    Timestamp(i * 1_000_000),
                )
            })
            .collect()
    }

    #[test]
    fn suricata_threshold_types() {
        let mut f = AlertFilter::new(1000);
        f.set_rule_threshold(1, 1, spec("type limit, track by_src, count 2, seconds 10"));
        f.set_rule_threshold(
            1,
            2,
            spec("type threshold, track by_src, count 3, seconds 10"),
        );
        f.set_rule_threshold(1, 3, spec("type both, track by_src, count 3, seconds 10"));
        f.set_rule_threshold(
            1,
            4,
            ThresholdSpec::parse_option("track by_src, count 3, seconds 10", true).unwrap(),
        );
        // 25 matches 1 s apart: windows start at 0, 10, 20.
        assert_eq!(run(&f, 1, 25, "1.1.1.1"), vec![0, 1, 10, 11, 20, 21]);
        assert_eq!(run(&f, 2, 25, "1.1.1.1"), vec![2, 5, 8, 12, 15, 18, 22]);
        assert_eq!(run(&f, 3, 25, "1.1.1.1"), vec![2, 12, 22]);
        assert_eq!(
            run(&f, 4, 25, "1.1.1.1"),
            vec![3, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 18, 19, 23, 24]
        );
        // Another source has its own count.
        assert_eq!(run(&f, 1, 3, "2.2.2.2"), vec![0, 1]);
        // No threshold: everything.
        assert_eq!(run(&f, 9, 3, "1.1.1.1"), vec![0, 1, 2]);
    }

    /// Two workers: a match processed after a later one (both within the
    /// window) counts in that window, rather than starting a new one.
    #[test]
    fn a_match_out_of_order_counts_in_its_window() {
        let mut f = AlertFilter::new(1000);
        f.set_rule_threshold(
            1,
            1,
            spec("type limit, track by_src, count 1, seconds 3600"),
        );
        let at = |secs: u64| f.allow(1, 1, Some(a("1.1.1.1")), None, Timestamp(secs * 1_000_000));
        assert!(at(100));
        assert!(!at(99), "an earlier match of the same window");
        assert!(!at(3698), "within an hour of the earliest match");
        assert!(at(3699), "an hour after the earliest match: a new window");
        // A match more than a window before the one kept starts anew.
        assert!(at(10));
    }

    /// Two workers, at a window's edge: a match of the window before,
    /// processed after the next window started, counts in the window
    /// before and leaves the next one as it was; so does one older than
    /// both. Processed in order (one worker) the same matches give the
    /// same answers.
    #[test]
    fn a_late_match_of_the_window_before_counts_there() {
        let mut f = AlertFilter::new(1000);
        f.set_rule_threshold(1, 1, spec("type limit, track by_src, count 1, seconds 60"));
        f.set_rule_threshold(
            1,
            2,
            spec("type threshold, track by_src, count 2, seconds 60"),
        );
        let at = |sid: u32, secs: u64| {
            f.allow(
                1,
                sid,
                Some(a("1.1.1.1")),
                None,
                Timestamp(secs * 1_000_000),
            )
        };
        assert!(at(1, 0));
        assert!(at(1, 61), "a new window, [61, 121)");
        assert!(!at(1, 59), "late, the second match of [0, 60)");
        assert!(!at(1, 120), "the second match of [61, 121)");
        assert!(at(1, 200), "a new window, [200, 260)");
        assert!(!at(1, 100), "late, the third match of [61, 121)");
        assert!(at(1, 10), "late, older than both: a window of its own");
        assert!(!at(1, 210), "[200, 260) is as it was");

        // Every second match: 0 and 30 alert at 30; 61 starts a window;
        // 59 late is the third of [0, 60), 100 the second of [61, 121).
        assert!(!at(2, 0));
        assert!(at(2, 30));
        assert!(!at(2, 61));
        assert!(!at(2, 59));
        assert!(at(2, 100));
    }

    #[test]
    fn tracking_keys() {
        let mut f = AlertFilter::new(1000);
        f.set_rule_threshold(1, 1, spec("type limit, track by_rule, count 1, seconds 60"));
        f.set_rule_threshold(1, 2, spec("type limit, track by_dst, count 1, seconds 60"));
        f.set_rule_threshold(1, 3, spec("type limit, track by_both, count 1, seconds 60"));
        let t = Timestamp(0);
        assert!(f.allow(1, 1, Some(a("1.1.1.1")), Some(a("9.9.9.9")), t));
        assert!(!f.allow(1, 1, Some(a("2.2.2.2")), Some(a("8.8.8.8")), t));
        assert!(f.allow(1, 2, Some(a("1.1.1.1")), Some(a("9.9.9.9")), t));
        assert!(!f.allow(1, 2, Some(a("2.2.2.2")), Some(a("9.9.9.9")), t));
        assert!(f.allow(1, 3, Some(a("1.1.1.1")), Some(a("9.9.9.9")), t));
        assert!(
            !f.allow(1, 3, Some(a("9.9.9.9")), Some(a("1.1.1.1")), t),
            "a pair, either way"
        );
        assert!(f.allow(1, 3, Some(a("9.9.9.9")), Some(a("1.1.1.2")), t));
    }

    #[test]
    fn threshold_config_lines() {
        let home = vec![crate::policy::Cidr::parse("10.0.0.0/8").unwrap()];
        let vars = Vars::new(&home, &BTreeMap::new());
        let mut r = Resolver::new(&vars);
        let mut f = AlertFilter::new(1000);
        f.set_rule_threshold(1, 7, spec("type limit, track by_src, count 5, seconds 60"));
        let text = "# comment\n\
            suppress gen_id 1, sig_id 100\n\
            suppress gen_id 1, sig_id 101, track by_src, ip [192.0.2.0/24, 198.51.100.7]\n\
            suppress gen_id 1, sig_id 102, track by_either, ip $HOME_NET\n\
            threshold gen_id 1, sig_id 7, type limit, track by_src, count 1, seconds 60\n\
            event_filter gen_id 1, sig_id 8, type both, track by_dst, count 2, seconds 60\n\
            rate_filter gen_id 1, sig_id 9, track by_rule, count 1, seconds 1, new_action drop, timeout 5\n\
            suppress gen_id 1\n\
            supress gen_id 1, sig_id 1\n\
            suppress gen_id 1, sig_id 5, track by_src\n";
        let errs = f.load_config(text, "t.config", &mut r);
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![7, 8, 9, 10], "{errs:?}");
        assert!(errs[0].reason.contains("rate_filter is not supported"));
        assert!(errs[0].to_string().starts_with("t.config:7: "));
        let t = Timestamp(0);
        let (x, y) = (Some(a("192.0.2.9")), Some(a("203.0.113.1")));
        assert!(!f.allow(1, 100, x, y, t));
        assert!(!f.allow(1, 101, x, y, t));
        assert!(f.allow(1, 101, y, x, t), "suppress by_src only");
        assert!(!f.allow(1, 102, y, Some(a("10.1.1.1")), t));
        assert!(f.allow(1, 102, x, y, t));
        // The config's threshold replaced the rule's (count 1, not 5).
        assert!(f.allow(1, 7, x, y, t));
        assert!(!f.allow(1, 7, x, y, t));
        assert!(!f.allow(1, 8, x, y, t));
        assert!(f.allow(1, 8, x, y, t));
        assert_eq!(f.suppressed(), 3);
    }

    #[test]
    fn state_is_bounded_and_expires() {
        let mut f = AlertFilter::new(10);
        f.set_rule_threshold(1, 1, spec("type limit, track by_src, count 1, seconds 5"));
        for i in 0..10u8 {
            assert!(f.allow(1, 1, Some(Addr::from([1, 1, 1, i])), None, Timestamp(0)));
        }
        // Full: a new source is not tracked, and counts as a first match.
        assert!(f.allow(1, 1, Some(Addr::from([2, 2, 2, 2])), None, Timestamp(1)));
        assert!(f.allow(1, 1, Some(Addr::from([2, 2, 2, 2])), None, Timestamp(2)));
        assert_eq!(f.shed(), 2);
        // Tracked ones still limit.
        assert!(!f.allow(1, 1, Some(Addr::from([1, 1, 1, 3])), None, Timestamp(3)));
        // After the windows end, the entries go and room is made.
        f.sweep(Timestamp(6_000_000));
        assert!(f.allow(
            1,
            1,
            Some(Addr::from([2, 2, 2, 2])),
            None,
            Timestamp(6_000_001)
        ));
        assert!(!f.allow(
            1,
            1,
            Some(Addr::from([2, 2, 2, 2])),
            None,
            Timestamp(6_000_002)
        ));
    }

    #[test]
    fn state_is_bounded_in_bytes() {
        let mut f = AlertFilter::new(1000);
        f.limit_state_bytes(4 * BoundedMap::<StateKey, Window>::base_bytes());
        f.set_rule_threshold(1, 1, spec("type limit, track by_src, count 1, seconds 5"));
        for i in 0..4u8 {
            assert!(f.allow(1, 1, Some(Addr::from([1, 1, 1, i])), None, Timestamp(0)));
        }
        // The bytes hold four sources: a fifth is not tracked.
        let new = Some(Addr::from([2, 2, 2, 2]));
        assert!(f.allow(1, 1, new, None, Timestamp(1)));
        assert!(f.allow(1, 1, new, None, Timestamp(2)));
        assert_eq!(f.shed(), 2);
        assert!(!f.allow(1, 1, Some(Addr::from([1, 1, 1, 3])), None, Timestamp(3)));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "type limit, track by_src, count 1, seconds 60",
            "type threshold, track by_rule, count 10, seconds 1",
            "type both, track by_both, count 2, seconds 3600",
        ] {
            assert_eq!(spec(s).to_string(), s);
        }
    }
}
