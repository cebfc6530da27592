//! Detectors against captures of real tools (`pcaps/lab`, made by
//! `scripts/captures/generate.sh`), with the lab's policy and ground truth.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

use common::{pcap, read};

/// One line of `pcaps/lab/ground-truth.tsv`.
#[derive(Debug)]
struct Truth {
    file: String,
    kind: String,
    source: String,
    target: String,
}

fn ground_truth() -> Vec<Truth> {
    let text = std::fs::read_to_string(pcap("lab/ground-truth.tsv")).expect("ground truth");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Truth {
                file: f[0].to_string(),
                kind: f[1].to_string(),
                source: f[2].to_string(),
                target: f[3].to_string(),
            }
        })
        .collect()
}

/// `ip`, `ip:port`, `[v6]:port`, `*:port` or `*` → (ip, port).
fn endpoint(s: &str) -> (Option<String>, Option<u64>) {
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

fn names(alert: &Value, side: &str, want: &(Option<String>, Option<u64>)) -> bool {
    let e = &alert["alert"][side];
    let ip = e["ip"].as_str().map(str::to_string);
    let port = e["port"].as_u64();
    ip == want.0 && (want.1.is_none() || port == want.1)
}

fn alerts_of(file: &str) -> Vec<Value> {
    let run = read(
        &[pcap(&format!("lab/{file}"))],
        &[
            "--workers",
            "1",
            "-c",
            pcap("lab/policy.toml").to_str().unwrap_or(""),
        ],
    );
    assert_eq!(run.status, 0, "{file}: {}", run.stderr);
    run.of_type("alert").into_iter().cloned().collect()
}

fn describe(alerts: &[Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| {
            let al = &a["alert"];
            format!(
                "{} {} -> {}",
                al["metadata"]["detector"][0], al["source"], al["target"]
            )
        })
        .collect()
}

#[test]
fn every_labelled_incident_is_found_with_its_kind_source_and_target() {
    let truth = ground_truth();
    assert!(truth.len() >= 40, "ground truth has {} lines", truth.len());
    let mut by_file: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut missed = Vec::new();
    let mut found = 0;
    for t in truth.iter().filter(|t| t.kind != "benign") {
        let alerts = by_file.entry(&t.file).or_insert_with(|| alerts_of(&t.file));
        let (src, dst) = (endpoint(&t.source), endpoint(&t.target));
        let hit = alerts.iter().any(|a| {
            a["alert"]["metadata"]["detector"][0] == t.kind.as_str()
                && names(a, "source", &src)
                && names(a, "target", &dst)
        });
        if hit {
            found += 1;
        } else {
            missed.push(format!("{t:?}; alerts: {:?}", describe(alerts)));
        }
    }
    assert!(
        missed.is_empty(),
        "found {found}, missed:\n{}",
        missed.join("\n")
    );
}

#[test]
fn benign_traffic_raises_no_alert() {
    let alerts = alerts_of("benign-mixed.pcap");
    assert!(alerts.is_empty(), "{:?}", describe(&alerts));
    // The benign sessions inside attack captures are not alerted on either.
    for t in ground_truth()
        .iter()
        .filter(|t| t.kind == "benign" && t.file != "benign-mixed.pcap")
    {
        let (src, dst) = (endpoint(&t.source), endpoint(&t.target));
        for a in alerts_of(&t.file) {
            assert!(
                !(names(&a, "source", &src) && names(&a, "target", &dst)),
                "{t:?}: {a}"
            );
        }
    }
}

#[test]
fn scans_name_their_technique_and_direction() {
    for (file, technique, direction, severity) in [
        ("inbound-scan-syn.pcap", "syn", "inbound", 2),
        ("inbound-scan-connect.pcap", "connect", "inbound", 2),
        ("inbound-scan-fin.pcap", "fin", "inbound", 2),
        ("inbound-scan-xmas.pcap", "xmas", "inbound", 2),
        ("inbound-scan-null.pcap", "null", "inbound", 2),
        ("inbound-scan-udp.pcap", "udp", "inbound", 2),
        ("outbound-scan-syn.pcap", "syn", "outbound", 1),
        ("ipv6-scan-syn.pcap", "syn", "inbound", 2),
    ] {
        let alerts = alerts_of(file);
        let scan = alerts
            .iter()
            .find(|a| a["alert"]["metadata"]["detector"][0] == "port_scan")
            .unwrap_or_else(|| panic!("{file}: no port_scan in {:?}", describe(&alerts)));
        let m = &scan["alert"]["metadata"];
        assert_eq!(m["technique"][0], technique, "{file}");
        assert_eq!(m["direction"][0], direction, "{file}");
        assert_eq!(scan["alert"]["severity"], severity, "{file}");
        assert!(m["distinct_ports"].as_u64().unwrap_or(0) >= 20, "{file}");
        assert!(
            m["top_ports"].as_array().is_some_and(|p| !p.is_empty()),
            "{file}"
        );
        // One incident, one alert.
        let n = alerts
            .iter()
            .filter(|a| a["alert"]["metadata"]["detector"][0] == "port_scan")
            .count();
        assert_eq!(n, 1, "{file}");
    }
}

#[test]
fn floods_count_their_syns_and_sources() {
    let alerts = alerts_of("syn-flood-distributed.pcap");
    let f = alerts
        .iter()
        .find(|a| a["alert"]["metadata"]["detector"][0] == "syn_flood")
        .expect("flood");
    let m = &f["alert"]["metadata"];
    assert!(
        f["alert"]["source"].get("ip").is_none(),
        "spoofed sources: no single attacker"
    );
    // The generator sends 5 SYNs per spoofed source in turn, so at the
    // 150th SYN (the threshold) about 30 sources have been seen.
    let distinct = m["distinct_sources"].as_u64().unwrap_or(0);
    assert!((20..=45).contains(&distinct), "distinct sources {distinct}");
    assert!(m["syns"].as_u64().unwrap_or(0) >= 150);
    assert!(m["completion_ratio"].as_f64().unwrap_or(1.0) <= 0.2);

    let alerts = alerts_of("syn-flood-single-source.pcap");
    let f = alerts
        .iter()
        .find(|a| a["alert"]["metadata"]["detector"][0] == "syn_flood")
        .expect("flood");
    assert_eq!(f["alert"]["source"]["ip"], "203.0.113.66");
    assert_eq!(f["alert"]["metadata"]["top_source"][0], "203.0.113.66");
    assert_eq!(f["alert"]["metadata"]["distinct_sources"], 1);
}

#[test]
fn every_alert_validates_with_eve_check() {
    let Some(shared) = common::shared_or_skip("lab eve-check") else {
        return;
    };
    let files: Vec<_> = std::fs::read_dir(common::repo().join("pcaps/lab"))
        .expect("lab")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    let run = read(
        &files,
        &[
            "--workers",
            "2",
            "-c",
            pcap("lab/policy.toml").to_str().unwrap_or(""),
        ],
    );
    assert!(run.of_type("alert").len() > 20);
    let (ok, text) = common::eve_check(&shared, &run.eve_path())
        .expect("eve-check runs (pip install jsonschema communityid)");
    assert!(ok, "{text}");
}
