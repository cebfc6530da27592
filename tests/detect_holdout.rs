//! Detectors against the holdout captures (`pcaps/holdout`, made by
//! `scripts/captures/generate-holdout.sh`): a second labelled set with other
//! addresses, roles, tools' options and timings than `pcaps/lab`, replayed
//! with its own policy. At least 95% of its labelled incidents must be found
//! with the right kind, source and target, and benign traffic must raise
//! nothing.

mod common;

use common::truth::{Score, kind};
use common::{pcap, read};

#[test]
fn holdout_recall_and_no_alert_on_benign_traffic() {
    let score = Score::of("holdout");
    eprintln!("{}", score.table("pcaps/holdout"));
    let (found, total) = score.recall();
    assert!(total >= 40, "holdout has {total} primary incidents");
    let missed = score.missed(false);
    for m in &missed {
        eprintln!("missed: {m}");
    }
    assert!(
        found * 100 >= total * 95,
        "recall {found}/{total} is below 95%; missed:\n{}",
        missed.join("\n")
    );
    assert!(
        score.false_alerts.is_empty(),
        "alerts on benign traffic:\n{}",
        score.false_alerts.join("\n")
    );
}

/// Scans and sweeps name the technique the ground truth gives
/// (`technique=` in its notes).
#[test]
fn holdout_scans_name_their_technique() {
    let score = Score::of("holdout");
    let mut wrong = Vec::new();
    let mut checked = 0;
    for o in &score.incidents {
        let (Some(want), true) = (o.truth.technique(), o.found) else {
            continue;
        };
        if !matches!(o.truth.kind.as_str(), "port_scan" | "port_sweep") {
            continue;
        }
        checked += 1;
        if o.technique.as_deref() != Some(want) {
            wrong.push(format!(
                "{} {} -> {}: want {want}, got {:?}",
                o.truth.file, o.truth.source, o.truth.target, o.technique
            ));
        }
    }
    assert!(checked >= 20, "{checked} scans checked");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// One incident is one alert: no scan, sweep, flood or brute force is
/// reported twice for the same source and target within a capture.
#[test]
fn holdout_incidents_are_reported_once() {
    let score = Score::of("holdout");
    let mut dup = Vec::new();
    for (file, alerts) in &score.alerts {
        let mut seen = std::collections::BTreeMap::new();
        for a in alerts {
            let k = kind(a);
            if !matches!(k, "port_scan" | "port_sweep" | "syn_flood" | "brute_force") {
                continue;
            }
            let key = (
                k.to_string(),
                a["alert"]["source"].to_string(),
                a["alert"]["target"].to_string(),
            );
            *seen.entry(key).or_insert(0) += 1;
        }
        for ((k, s, t), n) in seen {
            if n > 1 {
                dup.push(format!("{file}: {k} {s} -> {t} x{n}"));
            }
        }
    }
    assert!(dup.is_empty(), "{}", dup.join("\n"));
}

#[test]
fn holdout_alerts_validate_with_eve_check() {
    let Some(shared) = common::shared_or_skip("holdout eve-check") else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(common::repo().join("pcaps/holdout"))
        .expect("holdout")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    files.sort();
    let run = read(
        &files,
        &[
            "--workers",
            "2",
            "-c",
            pcap("holdout/policy.toml").to_str().unwrap_or(""),
        ],
    );
    assert!(run.of_type("alert").len() > 40);
    let (ok, text) = common::eve_check(&shared, &run.eve_path())
        .expect("eve-check runs (pip install jsonschema communityid)");
    assert!(ok, "{text}");
}
