//! A spoofed-source SYN flood made by `backflow gen-pcap`: every SYN is
//! counted, the flood is reported once, and it does not turn into one flow
//! (and one flow record) per spoofed source.

mod common;

use std::process::Command;

#[test]
fn spoofed_flood_is_counted_reported_and_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 200_000u64;
    let pcap = flood_pcap(dir.path(), n, 7);
    for workers in ["1", "2"] {
        let run = common::read(std::slice::from_ref(&pcap), &["--workers", workers]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        let alerts = run.of_type("alert");
        assert_eq!(alerts.len(), 1, "one incident, one alert");
        assert_eq!(alerts[0]["alert"]["metadata"]["detector"][0], "syn_flood");
        assert_eq!(alerts[0]["alert"]["target"]["port"], 80);
        let last = run.last_stats();
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

/// Generates a spoofed-source SYN flood of `n` 60-byte frames from `seed`.
fn flood_pcap(dir: &std::path::Path, n: u64, seed: u64) -> std::path::PathBuf {
    let pcap = dir.join("flood.pcap");
    let st = Command::new(common::bin())
        .args([
            "gen-pcap",
            "--kind",
            "synflood",
            "--packets",
            &n.to_string(),
            "--seed",
            &seed.to_string(),
            "-o",
        ])
        .arg(&pcap)
        .status()
        .expect("gen-pcap");
    assert!(st.success());
    pcap
}

/// Peak resident memory of the run (the kernel's VmHWM, as backflow
/// reports it), checked against `memory_cap` plus the documented fixed
/// overhead for the worker count.
fn assert_within_budget(stats: &serde_json::Value, cap: u64, workers: usize) {
    let peak = stats["backflow"]["process"]["peak_rss_bytes"]
        .as_u64()
        .expect("peak RSS reported");
    let bound = cap + backflow::memory::fixed_overhead(workers);
    assert!(
        peak > 0 && peak <= bound,
        "peak RSS {peak} > {bound} (cap {cap})"
    );
}

#[test]
fn a_2m_spoofed_flood_under_a_64mib_cap_is_reported_counted_and_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 2_000_000u64;
    let pcap = flood_pcap(dir.path(), n, 11);
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(&cfg, "memory_cap = \"64MiB\"\n").expect("cfg");
    let run = common::read(
        &[pcap],
        &["--workers", "2", "-c", cfg.to_str().unwrap_or("")],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let alerts = run.of_type("alert");
    assert_eq!(alerts.len(), 1, "the flood is reported, once");
    assert_eq!(alerts[0]["alert"]["metadata"]["detector"][0], "syn_flood");
    let s = run.last_stats();
    assert_eq!(
        s["backflow"]["counters"]["tcp_syn"].as_u64(),
        Some(n),
        "every SYN counted"
    );
    assert_eq!(s["stats"]["decoder"]["pkts"].as_u64(), Some(n));
    assert_within_budget(&s, 64 << 20, 2);
}

/// With flood detection off, every spoofed SYN makes a flow: the flow
/// table fills up to its share of a 64 MiB cap, sheds the oldest flows
/// (each record flagged), and memory stays within the budget.
#[test]
fn flows_of_a_spoofed_flood_are_shed_at_the_cap_and_flagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 1_000_000u64;
    let pcap = flood_pcap(dir.path(), n, 11);
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(
        &cfg,
        "memory_cap = \"64MiB\"\n[detect.syn_flood]\nenabled = false\n",
    )
    .expect("cfg");
    let run = common::read(
        &[pcap],
        &["--workers", "2", "-c", cfg.to_str().unwrap_or("")],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let s = run.last_stats();
    assert_eq!(s["backflow"]["counters"]["tcp_syn"].as_u64(), Some(n));
    assert_eq!(s["stats"]["flow"]["total"].as_u64(), Some(n));
    let evicted = s["stats"]["flow"]["mgr"]["flows_evicted"]
        .as_u64()
        .unwrap_or(0);
    let budget_flows = backflow::config::Config::parse("memory_cap = \"64MiB\"\n", "x")
        .map(|c| c.flow.max_flows as u64)
        .unwrap_or(0);
    assert!(
        evicted >= n - budget_flows,
        "{evicted} evicted, cap {budget_flows} flows"
    );
    let flagged = run
        .of_type("flow")
        .iter()
        .filter(|f| f["flow"]["emergency"] == true && f["flow"]["reason"] == "forced")
        .count() as u64;
    assert_eq!(flagged, evicted, "each shed flow's record says so");
    // The scan tracker (one entry per spoofed source) is at its cap too:
    // each source is tracked, dropped early for a newer one, or refused.
    // The sources are random: one drawn again while its entry is still
    // tracked (the tracker holds a few thousand) is no new key, about one
    // in a million SYNs here.
    let scan = &s["backflow"]["trackers"]["scan"];
    let count = |k: &str| scan[k].as_u64().unwrap_or(0);
    assert!(count("evicted") > 0, "{scan}");
    let keys = count("entries") + count("evicted") + count("shed");
    assert!(keys <= n && keys + 100 >= n, "{keys} keys: {scan}");
    assert_within_budget(&s, 64 << 20, 2);
}
