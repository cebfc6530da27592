//! Labelled capture sets (`pcaps/lab`, `pcaps/holdout`): their
//! `ground-truth.tsv`, a replay of every file with the set's `policy.toml`,
//! and the score of the alerts against the labels.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{pcap, read};

/// One line of a `ground-truth.tsv`.
#[derive(Clone, Debug)]
pub struct Truth {
    pub file: String,
    pub kind: String,
    pub source: String,
    pub target: String,
    pub notes: String,
}

impl Truth {
    /// A consequence of the primary finding in the same file, which may be
    /// reported separately or folded into it.
    pub fn secondary(&self) -> bool {
        self.notes.starts_with("secondary:")
    }

    /// `technique=...` from the notes, if given.
    pub fn technique(&self) -> Option<&str> {
        let rest = self.notes.split("technique=").nth(1)?;
        rest.split([';', ' ', '(']).next().filter(|t| !t.is_empty())
    }
}

/// `pcaps/<set>/ground-truth.tsv`.
pub fn load(set: &str) -> Vec<Truth> {
    let path = pcap(&format!("{set}/ground-truth.tsv"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(f.len() >= 4, "{}: bad line {l:?}", path.display());
            Truth {
                file: f[0].to_string(),
                kind: f[1].to_string(),
                source: f[2].to_string(),
                target: f[3].to_string(),
                notes: f.get(4).unwrap_or(&"").to_string(),
            }
        })
        .collect()
}

/// `ip`, `ip:port`, `[v6]:port`, `*:port` or `*` → (ip, port).
pub fn endpoint(s: &str) -> (Option<String>, Option<u64>) {
    if s == "*" {
        return (None, None);
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:").expect("[v6]:port");
        return (Some(ip.to_string()), port.parse().ok());
    }
    match s.rsplit_once(':') {
        Some((ip, port)) if !ip.contains(':') => (
            if ip == "*" {
                None
            } else {
                Some(ip.to_string())
            },
            port.parse().ok(),
        ),
        _ => (Some(s.to_string()), None),
    }
}

/// Whether the alert's `source`/`target` is the labelled endpoint (a label
/// without a port matches any port).
pub fn names(alert: &Value, side: &str, want: &(Option<String>, Option<u64>)) -> bool {
    let e = &alert["alert"][side];
    let ip = e["ip"].as_str().map(str::to_string);
    let port = e["port"].as_u64();
    ip == want.0 && (want.1.is_none() || port == want.1)
}

pub fn kind(alert: &Value) -> &str {
    alert["alert"]["metadata"]["detector"][0]
        .as_str()
        .unwrap_or("")
}

/// Alerts of one file of a set, replayed with the set's policy.
pub fn alerts_of(set: &str, file: &str) -> Vec<Value> {
    let policy = pcap(&format!("{set}/policy.toml"));
    let run = read(
        &[pcap(&format!("{set}/{file}"))],
        &["--workers", "1", "-c", policy.to_str().unwrap_or("")],
    );
    assert_eq!(run.status, 0, "{set}/{file}: {}", run.stderr);
    run.of_type("alert").into_iter().cloned().collect()
}

pub fn describe(alerts: &[Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| {
            let al = &a["alert"];
            format!("{} {} -> {}", kind(a), al["source"], al["target"])
        })
        .collect()
}

/// One labelled incident and whether an alert found it.
#[derive(Debug)]
pub struct Outcome {
    pub truth: Truth,
    pub found: bool,
    /// The matching alert's `technique` evidence, when it has one.
    pub technique: Option<String>,
}

/// The alerts of a whole set against its labels.
pub struct Score {
    pub incidents: Vec<Outcome>,
    /// Alerts on benign traffic, described.
    pub false_alerts: Vec<String>,
    pub alerts: BTreeMap<String, Vec<Value>>,
}

impl Score {
    /// Replays every file named in `set`'s ground truth once.
    pub fn of(set: &str) -> Score {
        let truth = load(set);
        let mut alerts: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for t in &truth {
            if !alerts.contains_key(&t.file) {
                alerts.insert(t.file.clone(), alerts_of(set, &t.file));
            }
        }
        let mut incidents = Vec::new();
        let mut false_alerts = Vec::new();
        for t in &truth {
            let file_alerts = &alerts[&t.file];
            let (src, dst) = (endpoint(&t.source), endpoint(&t.target));
            if t.kind == "benign" {
                let all_benign = truth
                    .iter()
                    .filter(|o| o.file == t.file)
                    .all(|o| o.kind == "benign");
                for a in file_alerts {
                    // A benign capture raises nothing at all; a benign
                    // session inside an attack capture is not alerted on.
                    let on_it = (names(a, "source", &src) && names(a, "target", &dst))
                        || (names(a, "source", &(dst.0.clone(), None))
                            && names(a, "target", &(src.0.clone(), None)));
                    if all_benign || on_it {
                        let d = format!("{}: {}", t.file, describe(std::slice::from_ref(a))[0]);
                        if !false_alerts.contains(&d) {
                            false_alerts.push(d);
                        }
                    }
                }
                continue;
            }
            let hit = file_alerts.iter().find(|a| {
                kind(a) == t.kind && names(a, "source", &src) && names(a, "target", &dst)
            });
            incidents.push(Outcome {
                truth: t.clone(),
                found: hit.is_some(),
                technique: hit
                    .and_then(|a| a["alert"]["metadata"]["technique"][0].as_str())
                    .map(str::to_string),
            });
        }
        Score {
            incidents,
            false_alerts,
            alerts,
        }
    }

    /// (found, labelled) over primary incidents (secondary lines excluded).
    pub fn recall(&self) -> (usize, usize) {
        let primary = self.incidents.iter().filter(|o| !o.truth.secondary());
        let (mut found, mut total) = (0, 0);
        for o in primary {
            total += 1;
            found += usize::from(o.found);
        }
        (found, total)
    }

    pub fn missed(&self, with_secondary: bool) -> Vec<String> {
        self.incidents
            .iter()
            .filter(|o| !o.found && (with_secondary || !o.truth.secondary()))
            .map(|o| {
                format!(
                    "{} {} {} -> {}; alerts: {:?}",
                    o.truth.file,
                    o.truth.kind,
                    o.truth.source,
                    o.truth.target,
                    describe(&self.alerts[&o.truth.file])
                )
            })
            .collect()
    }

    /// The recall table per kind, as printed by the tests.
    pub fn table(&self, set: &str) -> String {
        let mut per: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
        for o in &self.incidents {
            let e = per.entry(o.truth.kind.as_str()).or_default();
            if o.truth.secondary() {
                e.3 += 1;
                e.2 += usize::from(o.found);
            } else {
                e.1 += 1;
                e.0 += usize::from(o.found);
            }
        }
        let mut s = format!(
            "{set}: recall per kind (primary incidents; secondary found/labelled)\n{:<20} {:>6} {:>8} {:>8} {:>10}\n",
            "kind", "found", "labelled", "recall", "secondary"
        );
        for (k, (f, n, sf, sn)) in &per {
            let r = if *n == 0 {
                "-".to_string()
            } else {
                format!("{:.1}%", 100.0 * *f as f64 / *n as f64)
            };
            s += &format!(
                "{k:<20} {f:>6} {n:>8} {r:>8} {:>10}\n",
                format!("{sf}/{sn}")
            );
        }
        let (f, n) = self.recall();
        s += &format!(
            "{:<20} {f:>6} {n:>8} {:>7.1}%\nfalse alerts on benign traffic: {}\n",
            "all",
            100.0 * f as f64 / n.max(1) as f64,
            self.false_alerts.len()
        );
        s
    }
}
