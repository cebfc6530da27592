//! The feed manager: reads reputation feeds, keeps when each entry was last
//! seen in its feed, drops expired entries, and swaps new tables in.
//!
//! This is the one place that reads the wall clock, on purpose: whether an
//! entry is still valid is a question about now, not about the packets
//! being read (a replayed capture from last year is judged with today's
//! lists). The workers never see time here; they only look up the table
//! they are given.
//!
//! Ages. A feed is *observed* when a new version of its file is read (its
//! modification time, size or SHA-1 changed since the last observation):
//! every entry in it is then last seen at that moment (wall time of the
//! load). An entry absent from later versions keeps its last-seen time and
//! expires `ttl` after it; so does every entry of a feed that stops being
//! updated. Reading an unchanged file (a restart, SIGHUP with no change) is
//! not an observation.
//!
//! State. Per feed, the ages and the identity of the last observed version
//! go to a small text state file (default `<feed>.state`; written to a
//! temporary file and renamed, so readers never see half a file). On load
//! the state is read and merged (latest time wins), so a restarted sensor,
//! or another sensor pointed at the same state file, keeps the ages.
//!
//! Reloads: each feed's file is checked every `check_interval` (its
//! modification time and size), and every feed is re-read on SIGHUP; a
//! changed feed, or an entry expiring, builds a new table off the hot path
//! and swaps it in atomically.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha1::{Digest, Sha1};

use super::feed::{self, Format};
use super::{Entry, FeedInfo, Reputation, Table};
use crate::config::{FeedConfig, FeedFormatConfig};
use crate::detect::prefix::{V4_BASE, V4_END};
use crate::policy::Cidr;

/// Entries one feed may hold (about 1.5 GB of table and state at most);
/// new entries beyond it are dropped and counted, known ones still age.
pub const MAX_FEED_ENTRIES: usize = 16 * 1024 * 1024;

/// A feed file version: modification time (ns), size, SHA-1.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Identity {
    mtime_ns: u128,
    len: u64,
    sha1: String,
}

/// (base, prefix, category).
type Key = (u128, u8, Arc<str>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    /// Unix seconds, wall time.
    last_seen: u64,
    score: u8,
}

struct FeedState {
    cfg: FeedConfig,
    /// (mtime, size) at the last check.
    stat: Option<(u128, u64)>,
    identity: Option<Identity>,
    entries: HashMap<Key, Seen>,
    next_check: u64,
    /// Earliest expiry among the entries.
    next_expiry: u64,
    warned: bool,
    loaded_once: bool,
}

/// What a refresh did, per feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedReport {
    pub name: String,
    pub entries: usize,
    /// A new version of the file was read.
    pub observed: bool,
    pub expired: usize,
    pub bad_lines: u64,
}

/// Reads feeds and swaps tables into a [`Reputation`].
pub struct Manager {
    feeds: Vec<FeedState>,
    store: Arc<Reputation>,
    categories: HashMap<String, Arc<str>>,
}

fn stat(path: &Path) -> Option<(u128, u64)> {
    let m = std::fs::metadata(path).ok()?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Some((mtime, m.len()))
}

/// Wall time in Unix seconds.
pub fn wall_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn ttl_secs(cfg: &FeedConfig) -> u64 {
    cfg.ttl.as_secs().max(1)
}

/// Writes a prefix back as text (IPv4 in its own form).
fn cidr_text(base: u128, prefix: u8) -> String {
    let addr = crate::decode::Addr(base.to_be_bytes());
    if (V4_BASE..=V4_END).contains(&base) && prefix >= 96 {
        format!("{addr}/{}", prefix - 96)
    } else {
        format!("{addr}/{prefix}")
    }
}

impl Manager {
    pub fn new(cfgs: &[FeedConfig], store: Arc<Reputation>) -> Manager {
        Manager {
            feeds: cfgs
                .iter()
                .map(|c| FeedState {
                    cfg: c.clone(),
                    stat: None,
                    identity: None,
                    entries: HashMap::new(),
                    next_check: 0,
                    next_expiry: u64::MAX,
                    warned: false,
                    loaded_once: false,
                })
                .collect(),
            store,
            categories: HashMap::new(),
        }
    }

    fn category(&mut self, name: &str) -> Arc<str> {
        if let Some(c) = self.categories.get(name) {
            return c.clone();
        }
        let c: Arc<str> = Arc::from(name);
        self.categories.insert(name.to_string(), c.clone());
        c
    }

    /// Checks the feeds at wall time `now` (Unix seconds): re-reads those
    /// whose file changed (all of them when `force`, on SIGHUP), drops
    /// expired entries, and swaps in a new table when anything changed.
    pub fn refresh(&mut self, now: u64, force: bool) -> Vec<FeedReport> {
        let mut reports = Vec::new();
        let mut rebuild = false;
        for i in 0..self.feeds.len() {
            let (report, changed) = self.refresh_feed(i, now, force);
            rebuild |= changed;
            reports.extend(report);
        }
        if rebuild
            || self.store.table().is_empty() && self.feeds.iter().any(|f| !f.entries.is_empty())
        {
            self.swap();
        }
        reports
    }

    fn refresh_feed(&mut self, i: usize, now: u64, force: bool) -> (Option<FeedReport>, bool) {
        let Some(f) = self.feeds.get(i) else {
            return (None, false);
        };
        let cfg = f.cfg.clone();
        let interval = cfg.check_interval.as_secs();
        let due = !f.loaded_once || force || (interval > 0 && now >= f.next_check);
        let mut report = FeedReport {
            name: cfg.name.clone(),
            ..FeedReport::default()
        };
        let mut changed = false;
        if due {
            let st = stat(&cfg.path);
            let first = !f.loaded_once;
            let file_changed = first || force || st != f.stat;
            if let Some(f) = self.feeds.get_mut(i) {
                f.stat = st;
                f.next_check = now.saturating_add(interval.max(1));
                f.loaded_once = true;
            }
            if file_changed {
                changed |= self.merge_state(i);
                let (observed, bad) = self.read_feed(i, now);
                report.observed = observed;
                report.bad_lines = bad;
                changed |= observed;
            }
        }
        let expired = self.expire(i, now);
        report.expired = expired;
        changed |= expired > 0;
        if (report.observed || expired > 0)
            && let Some(f) = self.feeds.get(i)
        {
            write_state(f);
        }
        report.entries = self.feeds.get(i).map_or(0, |f| f.entries.len());
        let show = due && (report.observed || report.bad_lines > 0) || expired > 0;
        (show.then_some(report), changed)
    }

    /// Reads the feed file; returns (new observation, bad lines).
    fn read_feed(&mut self, i: usize, now: u64) -> (bool, u64) {
        let Some(f) = self.feeds.get(i) else {
            return (false, 0);
        };
        let cfg = f.cfg.clone();
        let bytes = match std::fs::read(&cfg.path) {
            Ok(b) => b,
            Err(e) => {
                if let Some(f) = self.feeds.get_mut(i)
                    && !f.warned
                {
                    f.warned = true;
                    tracing::warn!(
                        "reputation feed `{}`: {}: {e}; its entries age until it is back",
                        cfg.name,
                        cfg.path.display()
                    );
                }
                return (false, 0);
            }
        };
        let (mtime_ns, len) = stat(&cfg.path).unwrap_or((0, 0));
        let id = Identity {
            mtime_ns,
            len,
            sha1: Sha1::digest(&bytes).iter().fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            }),
        };
        if f.identity.as_ref() == Some(&id) {
            return (false, 0);
        }
        let format = match &cfg.format {
            FeedFormatConfig::List => Format::List,
            FeedFormatConfig::Csv {
                column,
                delimiter,
                header,
            } => Format::Csv {
                column: column.clone(),
                delimiter: *delimiter,
                header: *header,
            },
            FeedFormatConfig::Iprep { categories_file } => {
                let text = std::fs::read_to_string(categories_file)
                    .map_err(|e| format!("{}: {e}", categories_file.display()));
                match text.and_then(|t| {
                    feed::parse_categories(&t, &categories_file.display().to_string())
                }) {
                    Ok(c) => Format::Iprep { categories: c },
                    Err(e) => {
                        tracing::warn!("reputation feed `{}`: {e}", cfg.name);
                        return (false, 0);
                    }
                }
            }
        };
        let parsed = feed::parse(&bytes, &format, &cfg.path.display().to_string());
        for e in &parsed.errors {
            tracing::warn!("reputation feed `{}`: {e}", cfg.name);
        }
        let default_cat = self.category(&cfg.category);
        let mut listed = Vec::with_capacity(parsed.entries.len());
        for e in parsed.entries {
            let cat = match &e.category {
                Some(c) => self.category(c),
                None => default_cat.clone(),
            };
            listed.push((
                (e.base, e.prefix, cat),
                Seen {
                    last_seen: now,
                    score: e.score.unwrap_or(cfg.score),
                },
            ));
        }
        let ttl = ttl_secs(&cfg);
        let mut over = 0u64;
        if let Some(f) = self.feeds.get_mut(i) {
            for (k, s) in listed {
                if f.entries.len() >= MAX_FEED_ENTRIES && !f.entries.contains_key(&k) {
                    over += 1;
                    continue;
                }
                f.entries.insert(k, s);
            }
            f.identity = Some(id);
            f.warned = false;
            f.next_expiry = f.next_expiry.min(now.saturating_add(ttl));
        }
        if over > 0 {
            tracing::warn!(
                "reputation feed `{}`: {over} entries beyond the cap of {MAX_FEED_ENTRIES} dropped",
                cfg.name
            );
        }
        (true, parsed.bad_lines)
    }

    /// Drops entries last seen `ttl` or more ago; returns how many.
    fn expire(&mut self, i: usize, now: u64) -> usize {
        let Some(f) = self.feeds.get_mut(i) else {
            return 0;
        };
        if now < f.next_expiry {
            return 0;
        }
        let ttl = ttl_secs(&f.cfg);
        let before = f.entries.len();
        f.entries
            .retain(|_, s| s.last_seen.saturating_add(ttl) > now);
        f.next_expiry = f
            .entries
            .values()
            .map(|s| s.last_seen.saturating_add(ttl))
            .min()
            .unwrap_or(u64::MAX);
        before - f.entries.len()
    }

    /// Reads the feed's state file and merges it (latest time wins);
    /// returns whether anything changed.
    fn merge_state(&mut self, i: usize) -> bool {
        let Some(path) = self.feeds.get(i).and_then(|f| f.cfg.state_file.clone()) else {
            return false;
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            return false;
        };
        let mut identity = None;
        let mut rows = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# source ") {
                let p: Vec<&str> = rest.split_whitespace().collect();
                if let [m, l, h] = p.as_slice()
                    && let (Ok(m), Ok(l)) = (m.parse(), l.parse())
                {
                    identity = Some(Identity {
                        mtime_ns: m,
                        len: l,
                        sha1: (*h).to_string(),
                    });
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            let [net, cat, score, seen] = f.as_slice() else {
                continue;
            };
            let (Ok(c), Ok(score), Ok(seen)) =
                (Cidr::parse(net), score.parse::<u8>(), seen.parse::<u64>())
            else {
                continue;
            };
            rows.push((c, cat.to_string(), score, seen));
        }
        let mut changed = false;
        let cats: Vec<Arc<str>> = rows.iter().map(|r| self.category(&r.1)).collect();
        let Some(f) = self.feeds.get_mut(i) else {
            return false;
        };
        if f.identity.is_none() {
            f.identity = identity;
        }
        let ttl = ttl_secs(&f.cfg);
        for ((c, _, score, seen), cat) in rows.into_iter().zip(cats) {
            let key = (crate::detect::prefix::addr_u128(&c.addr), c.prefix, cat);
            if f.entries.len() >= MAX_FEED_ENTRIES && !f.entries.contains_key(&key) {
                continue;
            }
            let e = f.entries.entry(key).or_insert(Seen {
                last_seen: 0,
                score,
            });
            if seen > e.last_seen {
                *e = Seen {
                    last_seen: seen,
                    score,
                };
                changed = true;
                f.next_expiry = f.next_expiry.min(seen.saturating_add(ttl));
            }
        }
        changed
    }

    /// Builds a table from every feed's entries and swaps it in.
    fn swap(&mut self) {
        let infos: Vec<FeedInfo> = self
            .feeds
            .iter()
            .map(|f| FeedInfo {
                name: f.cfg.name.clone(),
                severity: f.cfg.severity,
            })
            .collect();
        let mut listings = Vec::new();
        for (fi, f) in self.feeds.iter().enumerate() {
            let feed = u16::try_from(fi).unwrap_or(u16::MAX);
            let mut keys: Vec<(&Key, &Seen)> = f.entries.iter().collect();
            keys.sort_by(|a, b| (a.0.0, a.0.1, &*a.0.2).cmp(&(b.0.0, b.0.1, &*b.0.2)));
            for ((base, prefix, cat), s) in keys {
                listings.push((
                    *base,
                    *prefix,
                    Entry {
                        feed,
                        category: cat.clone(),
                        score: s.score,
                    },
                ));
            }
        }
        let table = Table::build(infos, listings);
        tracing::info!("reputation: table of {} entries swapped in", table.len());
        self.store.swap(table);
    }

    /// Loads the feeds now, then keeps them fresh on a thread until the
    /// handle is dropped. `reload` is set by SIGHUP. None without feeds.
    pub fn start(
        cfgs: &[FeedConfig],
        store: Arc<Reputation>,
        reload: Arc<AtomicBool>,
    ) -> Option<ManagerHandle> {
        if cfgs.is_empty() {
            return None;
        }
        let mut m = Manager::new(cfgs, store);
        for r in m.refresh(wall_now(), false) {
            log(&r);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("reputation".into())
            .spawn(move || {
                let mut last = std::time::Instant::now();
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let hup = reload.swap(false, Ordering::Relaxed);
                    if hup || last.elapsed() >= Duration::from_secs(1) {
                        last = std::time::Instant::now();
                        if hup {
                            tracing::info!("SIGHUP: re-reading reputation feeds");
                        }
                        for r in m.refresh(wall_now(), hup) {
                            log(&r);
                        }
                    }
                }
            })
            .ok()?;
        Some(ManagerHandle {
            stop,
            thread: Some(thread),
        })
    }
}

fn log(r: &FeedReport) {
    tracing::info!(
        "reputation feed `{}`: {} entries{}, {} expired, {} bad lines",
        r.name,
        r.entries,
        if r.observed {
            " (new version read)"
        } else {
            ""
        },
        r.expired,
        r.bad_lines
    );
}

fn write_state(f: &FeedState) {
    let Some(path) = &f.cfg.state_file else {
        return;
    };
    let mut text = String::with_capacity(f.entries.len() * 48 + 200);
    text.push_str("# backflow reputation state v1\n");
    let _ = writeln!(text, "# feed {}", f.cfg.name);
    if let Some(id) = &f.identity {
        let _ = writeln!(text, "# source {} {} {}", id.mtime_ns, id.len, id.sha1);
    }
    text.push_str("# network\tcategory\tscore\tlast_seen_unix\n");
    let mut rows: Vec<(&Key, &Seen)> = f.entries.iter().collect();
    rows.sort_by(|a, b| (a.0.0, a.0.1, &*a.0.2).cmp(&(b.0.0, b.0.1, &*b.0.2)));
    for ((base, prefix, cat), s) in rows {
        let _ = writeln!(
            text,
            "{}\t{cat}\t{}\t{}",
            cidr_text(*base, *prefix),
            s.score,
            s.last_seen
        );
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(
            "reputation feed `{}`: cannot write state {}: {e} (ages are kept in memory only)",
            f.cfg.name,
            path.display()
        );
    }
}

/// Stops the manager's thread when dropped.
pub struct ManagerHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ManagerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::decode::Addr;
    use crate::time::Micros;

    const DAY: u64 = 86_400;

    fn a(s: &str) -> Addr {
        Addr::from(s.parse::<std::net::IpAddr>().unwrap())
    }

    fn cfg(dir: &Path, name: &str) -> FeedConfig {
        FeedConfig {
            name: name.into(),
            category: "bad".into(),
            severity: 2,
            ttl: Micros::from_secs(7 * DAY),
            path: dir.join(format!("{name}.txt")),
            format: FeedFormatConfig::List,
            score: 127,
            state_file: Some(dir.join(format!("{name}.state"))),
            check_interval: Micros::from_secs(1),
        }
    }

    fn hits(r: &Reputation, ip: &str) -> usize {
        r.table().lookup(&a(ip)).count()
    }

    #[test]
    fn entries_expire_ttl_after_they_were_last_seen() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), "f");
        std::fs::write(&c.path, "192.0.2.1\n192.0.2.2\n").unwrap();
        let store = Arc::new(Reputation::new());
        let mut m = Manager::new(std::slice::from_ref(&c), store.clone());
        let t0 = 1_700_000_000;
        m.refresh(t0, false);
        assert_eq!(
            (hits(&store, "192.0.2.1"), hits(&store, "192.0.2.2")),
            (1, 1)
        );
        // Day 3: the feed drops .2 and keeps .1.
        std::fs::write(&c.path, "192.0.2.1\n").unwrap();
        m.refresh(t0 + 3 * DAY, true);
        assert_eq!(
            hits(&store, "192.0.2.2"),
            1,
            "last seen on day 0, ttl 7 days"
        );
        // Day 7: .2 expired (last seen day 0); .1 was seen on day 3.
        m.refresh(t0 + 7 * DAY, false);
        assert_eq!(
            (hits(&store, "192.0.2.1"), hits(&store, "192.0.2.2")),
            (1, 0)
        );
        // Day 10, unchanged file: not a new observation, .1 expires.
        m.refresh(t0 + 10 * DAY, true);
        assert_eq!(hits(&store, "192.0.2.1"), 0);
        assert!(store.table().is_empty());
    }

    #[test]
    fn a_restart_or_another_sensor_keeps_the_ages() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), "g");
        std::fs::write(&c.path, "198.51.100.0/24\n2001:db8::1\n").unwrap();
        let t0 = 1_700_000_000;
        let first = Arc::new(Reputation::new());
        Manager::new(std::slice::from_ref(&c), first.clone()).refresh(t0, false);
        assert_eq!(hits(&first, "198.51.100.9"), 1);
        assert_eq!(hits(&first, "2001:db8::1"), 1);
        let state = std::fs::read_to_string(c.state_file.as_ref().unwrap()).unwrap();
        assert!(
            state.contains(&format!("198.51.100.0/24\tbad\t127\t{t0}")),
            "{state}"
        );
        // Six days later, a new manager (a restart, or a second sensor) on
        // the same unchanged feed and state: the entries are six days old.
        let second = Arc::new(Reputation::new());
        let mut m = Manager::new(std::slice::from_ref(&c), second.clone());
        m.refresh(t0 + 6 * DAY, false);
        assert_eq!(hits(&second, "198.51.100.9"), 1);
        m.refresh(t0 + 7 * DAY + 1, false);
        assert_eq!(hits(&second, "198.51.100.9"), 0, "expired: seen 7 days ago");
        // Without the state, the same restart would have taken the file as new.
        std::fs::remove_file(c.state_file.as_ref().unwrap()).unwrap();
        let third = Arc::new(Reputation::new());
        Manager::new(std::slice::from_ref(&c), third.clone()).refresh(t0 + 8 * DAY, false);
        assert_eq!(hits(&third, "198.51.100.9"), 1);
    }

    #[test]
    fn a_changed_file_is_picked_up_when_checked() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), "h");
        std::fs::write(&c.path, "192.0.2.1\n").unwrap();
        let store = Arc::new(Reputation::new());
        let mut m = Manager::new(std::slice::from_ref(&c), store.clone());
        let t0 = 1_700_000_000;
        m.refresh(t0, false);
        std::fs::write(&c.path, "192.0.2.1\n192.0.2.77\n").unwrap();
        // Not due yet: the next check is a second later.
        m.refresh(t0, false);
        assert_eq!(hits(&store, "192.0.2.77"), 0);
        m.refresh(t0 + 1, false);
        assert_eq!(hits(&store, "192.0.2.77"), 1);
        // A missing file keeps the entries until they expire.
        std::fs::remove_file(&c.path).unwrap();
        m.refresh(t0 + 2, true);
        assert_eq!(hits(&store, "192.0.2.77"), 1);
    }
}
