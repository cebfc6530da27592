//! A spoofed-source SYN flood made by `backflow gen-pcap`: every SYN is
//! counted, the flood is reported once, and it does not turn into one flow
//! (and one flow record) per spoofed source.

mod common;

use std::process::Command;

#[test]
fn spoofed_flood_is_counted_reported_and_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("flood.pcap");
    let n = 200_000u64;
    let st = Command::new(common::bin())
        .args([
            "gen-pcap",
            "--kind",
            "synflood",
            "--packets",
            &n.to_string(),
            "--seed",
            "7",
            "-o",
        ])
        .arg(&pcap)
        .status()
        .expect("gen-pcap");
    assert!(st.success());
    for workers in ["1", "2"] {
        let run = common::read(std::slice::from_ref(&pcap), &["--workers", workers]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        let alerts = run.of_type("alert");
        assert_eq!(alerts.len(), 1, "one incident, one alert");
        assert_eq!(alerts[0]["alert"]["metadata"]["detector"][0], "syn_flood");
        assert_eq!(alerts[0]["alert"]["target"]["port"], 80);
        let stats = common::parse_lines(&run.stats_file);
        let last = stats.last().expect("stats.json");
        let c = &last["backflow"]["counters"];
        assert_eq!(c["tcp_syn"].as_u64(), Some(n), "every SYN counted");
        let untracked = c["flood_syns_untracked"].as_u64().unwrap_or(0);
        let flows = last["stats"]["flow"]["total"].as_u64().unwrap_or(0);
        assert_eq!(
            untracked + flows,
            n,
            "each SYN either made a flow or was counted as untracked"
        );
        assert!(
            flows < 1000,
            "{flows} flows: the flood must not become one flow per source"
        );
        assert!(run.of_type("flow").len() < 1000);
    }
}
