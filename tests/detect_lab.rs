//! Detectors against captures of real tools (`pcaps/lab`, made by
//! `scripts/captures/generate.sh`), with the lab's policy and ground truth.

mod common;

use common::truth::{Score, describe, load};
use common::{pcap, read};

fn alerts_of(file: &str) -> Vec<serde_json::Value> {
    common::truth::alerts_of("lab", file)
}

#[test]
fn every_labelled_incident_is_found_with_its_kind_source_and_target() {
    let score = Score::of("lab");
    eprintln!("{}", score.table("pcaps/lab"));
    assert!(
        score.incidents.len() >= 25,
        "ground truth has {} incidents",
        score.incidents.len()
    );
    // Here every line counts, the secondary ones too.
    let missed = score.missed(true);
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
}

#[test]
fn benign_traffic_raises_no_alert() {
    let alerts = alerts_of("benign-mixed.pcap");
    assert!(alerts.is_empty(), "{:?}", describe(&alerts));
    // The benign sessions inside attack captures are not alerted on either.
    assert!(
        load("lab")
            .iter()
            .any(|t| t.kind == "benign" && t.file != "benign-mixed.pcap")
    );
    let score = Score::of("lab");
    assert!(score.false_alerts.is_empty(), "{:?}", score.false_alerts);
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
        // The default thresholds: 20 distinct ports, or 10 refused ones,
        // at most half of them answered.
        let distinct = m["distinct_ports"].as_u64().unwrap_or(0);
        let refused = m["rejected"].as_u64().unwrap_or(0);
        assert!(distinct >= 20 || refused >= 10, "{file}: {m}");
        assert!(
            m["answered"].as_u64().unwrap_or(u64::MAX) * 2 <= distinct,
            "{file}: {m}"
        );
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
