//! The read path end to end, on the captures shipped in `pcaps/`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{FlowLine, flow_lines, pcap, read};

const FORMATS: [&str; 5] = [
    "engine/basic-eth.pcap",
    "engine/qinq-be-nano.pcap",
    "engine/multi-iface.pcapng",
    "engine/sll.pcap",
    "engine/null.pcap",
];

/// Flow lines without the byte counts (which include the link-layer header).
fn shape(lines: &[FlowLine]) -> Vec<FlowLine> {
    lines
        .iter()
        .map(|l| FlowLine {
            bytes: (0, 0),
            vlan: String::new(),
            ..l.clone()
        })
        .collect()
}

#[test]
fn every_capture_format_gives_the_same_flows() {
    let reference = read(&[pcap(FORMATS[0])], &["--workers", "1"]);
    assert_eq!(reference.status, 0, "{}", reference.stderr);
    let want = flow_lines(&reference);
    assert_eq!(want.len(), 4, "tcp, refused tcp, udp, icmp: {want:#?}");
    for f in &FORMATS[1..] {
        let run = read(&[pcap(f)], &["--workers", "1"]);
        assert_eq!(run.status, 0, "{f}: {}", run.stderr);
        assert_eq!(shape(&flow_lines(&run)), shape(&want), "{f}");
    }
    // QinQ ids are kept, outer first.
    let qinq = read(&[pcap("engine/qinq-be-nano.pcap")], &["--workers", "1"]);
    assert!(
        qinq.of_type("flow")
            .iter()
            .all(|r| r["vlan"] == serde_json::json!([100, 200]))
    );
}

/// Golden output of the reference capture (regenerate with BACKFLOW_BLESS=1).
#[test]
fn golden_flows_of_the_reference_capture() {
    let run = read(&[pcap("engine/basic-eth.pcap")], &["--workers", "1"]);
    let got: Vec<String> = flow_lines(&run).iter().map(|l| format!("{l:?}")).collect();
    let golden = common::repo().join("tests/golden/engine-basic-eth.flows");
    if std::env::var_os("BACKFLOW_BLESS").is_some() {
        std::fs::write(&golden, got.join("\n") + "\n").expect("write golden");
    }
    let want = std::fs::read_to_string(&golden).expect("golden file");
    assert_eq!(got.join("\n") + "\n", want);
}

#[test]
fn malformed_frames_give_their_exact_events() {
    let run = read(&[pcap("engine/malformed-frames.pcap")], &["--workers", "1"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let events: Vec<(u64, String)> = run
        .of_type("anomaly")
        .iter()
        .map(|r| {
            (
                r["pcap_cnt"].as_u64().unwrap_or(0),
                r["anomaly"]["event"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        vec![
            (1, "decoder.ipv4.trunc_pkt".to_string()),
            (2, "decoder.tcp.pkt_too_small".to_string()),
            (3, "decoder.ethernet.pkt_too_small".to_string()),
            (4, "decoder.udp.hlen_invalid".to_string()),
        ]
    );
    // The counters say the same, under Suricata's stats names.
    let stats = run.of_type("stats");
    let ev = &stats.last().expect("final stats")["stats"]["decoder"]["event"];
    assert_eq!(ev["ipv4"]["trunc_pkt"], 1);
    assert_eq!(ev["tcp"]["pkt_too_small"], 1);
    assert_eq!(ev["ethernet"]["pkt_too_small"], 1);
    assert_eq!(ev["udp"]["hlen_invalid"], 1);
}

#[test]
fn truncated_file_keeps_complete_records_and_names_the_offset() {
    let run = read(&[pcap("engine/truncated-record.pcap")], &["--workers", "1"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("truncated-record.pcap"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("byte offset 450"), "{}", run.stderr);
    let stats = run.of_type("stats");
    assert_eq!(
        stats.last().expect("final stats")["stats"]["decoder"]["pkts"],
        5
    );
}

#[test]
fn a_failed_input_does_not_stop_the_others() {
    let missing = PathBuf::from("/nonexistent/capture.pcap");
    let run = read(
        &[missing, pcap("engine/basic-eth.pcap")],
        &["--workers", "1"],
    );
    assert_eq!(run.status, 2);
    assert!(
        run.stderr.contains("/nonexistent/capture.pcap"),
        "{}",
        run.stderr
    );
    assert_eq!(flow_lines(&run).len(), 4);
}

fn all_own_captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in common::own_capture_dirs() {
        if let Ok(rd) = std::fs::read_dir(common::repo().join("pcaps").join(dir)) {
            for e in rd.flatten() {
                let p = e.path();
                let ok = p.extension().is_some_and(|x| x == "pcap" || x == "pcapng");
                if ok && !p.to_string_lossy().contains("truncated") {
                    v.push(p);
                }
            }
        }
    }
    v.sort();
    v
}

#[test]
fn one_worker_runs_are_identical() {
    let files = all_own_captures();
    let a = read(&files, &["--workers", "1"]);
    let b = read(&files, &["--workers", "1"]);
    assert_eq!(a.status, 0, "{}", a.stderr);
    assert!(!a.eve.is_empty());
    assert!(
        a.eve == b.eve,
        "eve.json differs between two --workers 1 runs"
    );
    // Delivery counters of the outputs depend on when buffers were flushed,
    // and stage latencies and resident memory are measured (all wall time);
    // everything else in stats.json is packet time.
    let engine_stats = |raw: &[u8]| {
        let mut v = common::parse_lines(raw);
        for r in &mut v {
            if let Some(b) = r.get_mut("backflow").and_then(|b| b.as_object_mut()) {
                b.remove("outputs");
                assert!(b.remove("process").is_some(), "memory is reported");
                if let Some(c) = b.get_mut("counters").and_then(|c| c.as_object_mut()) {
                    assert!(c.remove("latency").is_some(), "latency is reported");
                }
            }
        }
        v
    };
    assert!(!a.stats_file.is_empty());
    assert!(
        engine_stats(&a.stats_file) == engine_stats(&b.stats_file),
        "stats.json differs between two --workers 1 runs"
    );
}

/// The `ip:port` of every SYN-flood victim a run reported.
fn flood_victims(run: &common::Run) -> std::collections::BTreeSet<String> {
    run.of_type("alert")
        .into_iter()
        .filter(|a| a["alert"]["metadata"]["detector"][0] == "syn_flood")
        .map(|a| {
            let t = &a["alert"]["target"];
            format!("{}:{}", t["ip"].as_str().unwrap_or(""), t["port"])
        })
        .collect()
}

#[test]
fn four_workers_give_the_same_flow_records() {
    let files = all_own_captures();
    let one = read(&files, &["--workers", "1"]);
    let four = read(&files, &["--workers", "4"]);
    assert_eq!(four.status, 0, "{}", four.stderr);
    // While a SYN flood is reported, a bare SYN to its victim creates no
    // flow; when each worker learns of the flood depends on the others
    // (the flood counter is shared), so flows to a flood victim may differ.
    // Every other flow record must be the same.
    let victims = flood_victims(&one);
    assert!(!victims.is_empty(), "the captures include floods");
    assert_eq!(
        victims,
        flood_victims(&four),
        "the same floods are reported"
    );
    let not_to_victim = |v: Vec<FlowLine>| -> Vec<FlowLine> {
        v.into_iter()
            .filter(|l| !victims.contains(&l.dst))
            .collect()
    };
    let (a, b) = (
        not_to_victim(flow_lines(&one)),
        not_to_victim(flow_lines(&four)),
    );
    assert!(a.len() > 4);
    assert_eq!(a, b);
    // The merged counters agree too.
    let last = |r: &common::Run| r.of_type("stats").last().map(|s| s["stats"].clone());
    let (s1, s4) = (last(&one).expect("stats"), last(&four).expect("stats"));
    assert_eq!(s1["decoder"], s4["decoder"]);
    assert_eq!(s1["flow"]["total"], s4["flow"]["total"]);
}

#[test]
fn standard_input_reads_like_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = std::fs::File::open(pcap("engine/multi-iface.pcapng")).expect("fixture");
    let out = Command::new(common::bin())
        .args(["read", "-", "-q", "--workers", "1", "-o"])
        .arg(dir.path())
        .stdin(Stdio::from(input))
        .output()
        .expect("run");
    let run = common::finish(out, dir);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let file = read(&[pcap("engine/multi-iface.pcapng")], &["--workers", "1"]);
    assert_eq!(flow_lines(&run), flow_lines(&file));
}

#[test]
fn eve_to_stdout() {
    let out = Command::new(common::bin())
        .args(["read", "-q", "--workers", "1", "-o", "-"])
        .arg(pcap("engine/basic-eth.pcap"))
        .output()
        .expect("run");
    assert!(out.status.success());
    let recs = common::parse_lines(&out.stdout);
    assert_eq!(recs.iter().filter(|r| r["event_type"] == "flow").count(), 4);
}

#[test]
fn records_carry_suricata_fields() {
    let run = read(
        &[pcap("engine/basic-eth.pcap")],
        &["--workers", "1", "-c"]
            .into_iter()
            .chain([common::repo()
                .join("tests/data/sensor.toml")
                .to_str()
                .unwrap_or("")])
            .collect::<Vec<_>>(),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    for r in &run.records {
        assert_eq!(r["host"], "sensor-a", "{r}");
        let ts = r["timestamp"].as_str().expect("timestamp");
        assert!(ts.ends_with("+0000") && ts.len() == 31, "{ts}");
    }
    let flows = run.of_type("flow");
    let tcp = flows
        .iter()
        .find(|r| r["dest_port"] == 80)
        .expect("tcp flow");
    assert!(tcp["flow_id"].as_u64().expect("flow_id") < 1 << 51);
    assert_eq!(
        tcp["community_id"].as_str().map(|s| s.starts_with("1:")),
        Some(true)
    );
    assert_eq!(tcp["tcp"]["tcp_flags"], "1b");
    assert_eq!(tcp["tcp"]["tcp_flags_ts"], "1b");
    assert_eq!(tcp["tcp"]["tcp_flags_tc"], "1b");
    assert_eq!(tcp["flow"]["state"], "closed");
    assert_eq!(tcp["flow"]["reason"], "shutdown");
    let icmp = flows
        .iter()
        .find(|r| r["proto"] == "ICMP")
        .expect("icmp flow");
    assert_eq!(
        (
            icmp["icmp_type"].as_u64(),
            icmp["response_icmp_type"].as_u64()
        ),
        (Some(8), Some(0))
    );
}

#[test]
fn usage_and_config_errors_exit_1() {
    let out = Command::new(common::bin())
        .args(["read"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[flow]\nmax_flows = -3\n").expect("write");
    let out = Command::new(common::bin())
        .args(["read", "-q", "-o", "-", "-c"])
        .arg(&cfg)
        .arg(pcap("engine/basic-eth.pcap"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:2") && err.contains("flow.max_flows"),
        "{err}"
    );
}

#[cfg(not(feature = "live"))]
#[test]
fn live_without_the_feature_says_how_to_build_it() {
    let out = Command::new(common::bin())
        .args(["live", "-i", "eth0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--features live"));
}
