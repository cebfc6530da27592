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

/// A ping sweep of 24 addresses behind a router that answers each with
/// host unreachable (ICMP type 3 code 1, ICMPv6 type 1 code 3), quoting
/// the echo request (crafted frames: the lab's sweep hosts are silent).
/// The refusals count against the hosts' echo: the sweep is reported at
/// its tenth refusal (`min_refused`), before the 20 hosts a sweep of silent
/// hosts needs, and says they refused.
#[test]
fn refused_pings_are_counted_in_their_sweep() {
    use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder, icmpv4, icmpv6};
    let dir = tempfile::tempdir().expect("tempdir");
    for v6 in [false, true] {
        let mut pcap_bytes = common::pcap_header();
        for i in 1..=24u8 {
            let mut echo = Vec::new();
            let mut refusal = Vec::new();
            let b = PacketBuilder::ethernet2([2; 6], [4; 6]);
            let r = PacketBuilder::ethernet2([4; 6], [2; 6]);
            let quoted = if v6 {
                let (src, dst) = (ip6(0x10, 7), ip6(0x20, u16::from(i)));
                b.ipv6(src, dst, 64)
                    .icmpv6_echo_request(7, u16::from(i))
                    .write(&mut echo, b"ping")
                    .expect("frame");
                let quoted = echo.get(14..14 + 40 + 8).expect("quoted").to_vec();
                r.ipv6(ip6(0x20, 0xfffe), src, 64)
                    .icmpv6(Icmpv6Type::DestinationUnreachable(
                        icmpv6::DestUnreachableCode::Address,
                    ))
                    .write(&mut refusal, &quoted)
                    .expect("frame");
                quoted
            } else {
                let (src, dst) = ([198, 51, 100, 7], [203, 0, 113, i]);
                b.ipv4(src, dst, 64)
                    .icmpv4_echo_request(7, u16::from(i))
                    .write(&mut echo, b"ping")
                    .expect("frame");
                let quoted = echo.get(14..14 + 20 + 8).expect("quoted").to_vec();
                r.ipv4([203, 0, 113, 254], src, 64)
                    .icmpv4(Icmpv4Type::DestinationUnreachable(
                        icmpv4::DestUnreachableHeader::Host,
                    ))
                    .write(&mut refusal, &quoted)
                    .expect("frame");
                quoted
            };
            assert!(!quoted.is_empty());
            let secs = 1_700_000_000 + u32::from(i);
            pcap_bytes.extend(common::pcap_record(secs, &echo));
            pcap_bytes.extend(common::pcap_record(secs, &refusal));
        }
        let file = dir.path().join(format!("sweep-v6-{v6}.pcap"));
        std::fs::write(&file, pcap_bytes).expect("pcap");
        let run = read(&[file], &["--workers", "1"]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        let alerts = run.of_type("alert");
        let sweeps: Vec<_> = alerts
            .iter()
            .filter(|a| a["alert"]["metadata"]["detector"][0] == "port_sweep")
            .collect();
        assert_eq!(sweeps.len(), 1, "v6 {v6}: {alerts:?}");
        let m = &sweeps[0]["alert"]["metadata"];
        assert_eq!(m["technique"][0], "echo", "{m}");
        assert_eq!(m["rejected"], 10, "v6 {v6}: {m}");
        assert_eq!(m["distinct_hosts"], 10, "v6 {v6}: {m}");
        assert_eq!(m["answered"], 0, "{m}");
    }
}

/// 2001:db8:`net`::`host`.
fn ip6(net: u16, host: u16) -> [u8; 16] {
    std::net::Ipv6Addr::new(0x2001, 0xdb8, net, 0, 0, 0, 0, host).octets()
}
