//! The read path end to end, on the captures shipped in `pcaps/`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use std::sync::atomic::AtomicBool;

use backflow::capture::Frame;
use backflow::capture::file::{FrameBytes, Input, MAX_INTERFACES, MAX_RECORD, read_frames};
use backflow::time::Timestamp;
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

/// Runs `backflow read -` with one worker on a fixture fed to its standard
/// input.
fn read_stdin(fixture: &str) -> common::Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = std::fs::File::open(pcap(fixture)).expect("fixture");
    let out = Command::new(common::bin())
        .args(["read", "-", "-q", "--workers", "1", "-o"])
        .arg(dir.path())
        .stdin(Stdio::from(input))
        .output()
        .expect("run");
    common::finish(out, dir)
}

#[test]
fn truncated_input_on_standard_input_names_the_same_offset() {
    let run = read_stdin("engine/truncated-record.pcap");
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("-: file ends inside a record at byte offset 450"),
        "{}",
        run.stderr
    );
    assert_eq!(final_stats(&run)["decoder"]["pkts"], 5);
}

/// A file cut inside its own header is said to be so, not a record.
#[test]
fn a_file_cut_inside_its_header_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cut-header.pcap");
    std::fs::write(&path, &common::pcap_header()[..20]).expect("write");
    let run = read(&[path], &["--workers", "1"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "cut-header.pcap: file ends inside its header at byte offset 0 (4 more bytes expected)"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("record"), "{}", run.stderr);
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
                // Inputs broken on purpose (cut short, a corrupt length).
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let broken = name.starts_with("truncated-") || name.starts_with("bad-");
                if ok && !broken {
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
    let run = read_stdin("engine/multi-iface.pcapng");
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

/// The summary says whether signatures were matched: the shipped rules
/// from the repository, none from a directory without `rules/`.
#[test]
fn the_summary_says_when_no_rules_were_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (cwd, shipped) in [(common::repo(), true), (dir.path().to_path_buf(), false)] {
        let out = Command::new(common::bin())
            .current_dir(&cwd)
            .args(["read", "-o"])
            .arg(dir.path().join("out"))
            .arg(pcap("lab/inbound-scan-syn.pcap"))
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0));
        let err = String::from_utf8_lossy(&out.stderr);
        let loaded = err
            .split("backflow: rules ")
            .nth(1)
            .and_then(|l| l.split(' ').next())
            .unwrap_or("");
        if shipped {
            assert!(loaded.parse().is_ok_and(|n: u32| n > 0), "{err}");
        } else {
            assert_eq!(loaded, "none", "{err}");
        }
    }
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

// Capture files that are odd but readable, or broken on purpose
// (pcaps/README.md; made by scripts/make-engine-pcaps.py, or below when too
// large to ship).

fn final_stats(run: &common::Run) -> serde_json::Value {
    run.of_type("stats")
        .last()
        .map(|s| s["stats"].clone())
        .unwrap_or_else(|| panic!("no stats record: {}", run.stderr))
}

/// backflow's own counters of the source, from the last line of stats.json.
fn source_counters(run: &common::Run) -> serde_json::Value {
    common::parse_lines(&run.stats_file)
        .last()
        .map(|l| l["backflow"]["source"].clone())
        .expect("stats.json")
}

/// The frames of the reference capture: (time, Ethernet frame).
fn reference_frames() -> Vec<(Timestamp, Vec<u8>)> {
    let input = Input::open(&pcap("engine/basic-eth.pcap")).expect("fixture");
    let mut v = Vec::new();
    let (_, err) = read_frames(
        input,
        &mut |f: &Frame<'_>, _: FrameBytes<'_>| v.push((f.ts, f.data.to_vec())),
        &AtomicBool::new(false),
    );
    assert!(err.is_none(), "{err:?}");
    v
}

/// Captures read one after another, each with its own time (the second
/// earlier than the first, the third days later): `uptime` is the packet
/// time of all three, 1 + 2 + 3 s, however their clocks relate.
#[test]
fn uptime_counts_the_time_of_each_capture() {
    let frame = reference_frames().remove(0).1;
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<PathBuf> = [(1_000_000, 1), (999_000, 2), (2_000_000, 3)]
        .iter()
        .enumerate()
        .map(|(i, &(start, secs))| {
            let mut f = common::pcap_header();
            f.extend(common::pcap_record(start, &frame));
            f.extend(common::pcap_record(start + secs, &frame));
            let path = dir.path().join(format!("{i}.pcap"));
            std::fs::write(&path, f).expect("write");
            path
        })
        .collect();
    for workers in ["1", "2"] {
        let run = read(&files, &["--workers", workers]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        assert_eq!(final_stats(&run)["uptime"], 6, "{workers} workers");
    }
}

fn reference_flows() -> Vec<FlowLine> {
    let run = read(&[pcap("engine/basic-eth.pcap")], &["--workers", "1"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    flow_lines(&run)
}

#[test]
fn zero_packet_captures_are_a_clean_empty_run() {
    for f in ["engine/zero-packets.pcap", "engine/zero-packets.pcapng"] {
        let run = read(&[pcap(f)], &["--workers", "2"]);
        assert_eq!(run.status, 0, "{f}: {}", run.stderr);
        assert!(run.stderr.trim().is_empty(), "{f}: {}", run.stderr);
        let types: Vec<&str> = run
            .records
            .iter()
            .map(|r| r["event_type"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(types, vec!["stats"], "{f}");
        assert_eq!(final_stats(&run)["decoder"]["pkts"], 0, "{f}");
        assert_eq!(source_counters(&run)["files_failed"], 0, "{f}");
    }
}

#[test]
fn huge_snap_length_is_accepted() {
    let run = read(&[pcap("engine/huge-snaplen.pcap")], &["--workers", "1"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(flow_lines(&run), reference_flows());
}

#[test]
fn a_record_beyond_the_length_limit_stops_the_file_at_its_offset() {
    let run = read(
        &[pcap("engine/bad-record-length.pcap")],
        &["--workers", "1"],
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    // Two good records, then the bad record header.
    let offset: usize = 24
        + reference_frames()[..2]
            .iter()
            .map(|(_, d)| 16 + d.len())
            .sum::<usize>();
    let want = format!(
        "bad-record-length.pcap: record length {} exceeds the {MAX_RECORD}-byte limit (corrupt record header) at byte offset {offset}",
        MAX_RECORD + 1
    );
    assert!(run.stderr.contains(&want), "{}", run.stderr);
    assert_eq!(final_stats(&run)["decoder"]["pkts"], 2);
}

#[test]
fn records_longer_than_the_snap_length_are_read_and_counted() {
    let run = read(
        &[pcap("engine/caplen-over-snaplen.pcap")],
        &["--workers", "1"],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(flow_lines(&run), reference_flows());
    // The header says 64 bytes.
    let over = reference_frames()
        .iter()
        .filter(|(_, d)| d.len() > 64)
        .count();
    assert!(over > 0);
    assert_eq!(source_counters(&run)["caplen_over_snaplen"], over);
    assert!(
        run.stderr.contains(&format!(
            "caplen-over-snaplen.pcap: {over} records longer than the snap length"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn pcapng_sections_of_both_byte_orders_and_odd_blocks() {
    let run = read(&[pcap("engine/odd-sections.pcapng")], &["--workers", "1"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    // Section 2's raw IP interface (if_tsresol 2^-20, if_tsoffset) keeps
    // every packet at its instant; byte counts differ (no Ethernet header).
    assert_eq!(shape(&flow_lines(&run)), shape(&reference_flows()));
    // Two packet blocks for undeclared interfaces: counted, skipped, said.
    assert_eq!(source_counters(&run)["pcapng_unknown_interface"], 2);
    assert!(
        run.stderr.contains(
            "odd-sections.pcapng: 2 packet blocks name an interface their section does not describe"
        ),
        "{}",
        run.stderr
    );
    // The conversation plus the simple packet block's ARP request.
    let stats = final_stats(&run);
    assert_eq!(stats["decoder"]["pkts"], reference_frames().len() + 1);
    assert_eq!(source_counters(&run)["time_backwards"], 0);
}

#[test]
fn truncated_pcapng_names_the_offset_of_the_cut_block() {
    let bytes = std::fs::read(pcap("engine/truncated-block.pcapng")).expect("fixture");
    // Walk the complete blocks (all little-endian): the cut is after them.
    let (mut pos, mut packets) = (0usize, 0);
    while let Some(len) = bytes
        .get(pos + 4..pos + 8)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .filter(|len| pos + len <= bytes.len())
    {
        packets += usize::from(bytes[pos..pos + 4] == [6, 0, 0, 0]);
        pos += len;
    }
    assert!(pos < bytes.len() && packets > 0);
    let run = read(
        &[pcap("engine/truncated-block.pcapng")],
        &["--workers", "1"],
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "truncated-block.pcapng: file ends inside a record at byte offset {pos}"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(final_stats(&run)["decoder"]["pkts"], packets);
}

/// A little-endian pcapng with `interfaces` interface description blocks
/// (Ethernet), then the reference conversation spread over them, from the
/// last interface down.
fn many_interfaces_pcapng(interfaces: usize) -> Vec<u8> {
    fn block(v: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let len = 12 + body.len().next_multiple_of(4);
        v.extend(kind.to_le_bytes());
        v.extend((len as u32).to_le_bytes());
        v.extend_from_slice(body);
        v.resize(v.len() + body.len().next_multiple_of(4) - body.len(), 0);
        v.extend((len as u32).to_le_bytes());
    }
    let mut v = Vec::new();
    let mut shb = vec![0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
    shb.extend([0xff; 8]);
    block(&mut v, 0x0a0d_0d0a, &shb);
    for _ in 0..interfaces {
        block(&mut v, 1, &[1, 0, 0, 0, 0, 0, 0, 0]);
    }
    for (i, (ts, data)) in reference_frames().iter().enumerate() {
        let iface = (interfaces - 1 - i * 997 % interfaces) as u32;
        let mut epb = Vec::new();
        for x in [
            iface,
            (ts.0 >> 32) as u32,
            ts.0 as u32,
            data.len() as u32,
            data.len() as u32,
        ] {
            epb.extend(x.to_le_bytes());
        }
        epb.extend_from_slice(data);
        block(&mut v, 6, &epb);
    }
    v
}

#[test]
fn pcapng_with_ten_thousand_interfaces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("10000-interfaces.pcapng");
    std::fs::write(&path, many_interfaces_pcapng(10_000)).expect("write");
    let run = read(&[path], &["--workers", "2"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(flow_lines(&run), reference_flows());
    assert_eq!(source_counters(&run)["pcapng_unknown_interface"], 0);
}

#[test]
fn pcapng_beyond_the_interface_limit_is_rejected_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("too-many-interfaces.pcapng");
    std::fs::write(&path, many_interfaces_pcapng(MAX_INTERFACES + 1)).expect("write");
    let run = read(&[path], &["--workers", "1"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    // Section header (28 bytes), then the interface over the limit.
    let offset = 28 + MAX_INTERFACES * 20;
    assert!(
        run.stderr.contains(&format!(
            "too-many-interfaces.pcapng: more than {MAX_INTERFACES} interfaces in one pcapng section at byte offset {offset}"
        )),
        "{}",
        run.stderr
    );
}

/// A worker tracking more flows than fit its cache reads the flow table a
/// few frames ahead of the packets; that only moves memory into the cache.
/// The threaded run (batches, read-ahead on: tens of thousands of flows on
/// one worker) and the frame-by-frame engine (no read-ahead) must write the
/// same flow and alert records.
#[test]
fn reading_the_flow_table_ahead_changes_no_record() {
    use backflow::capture::LinkType;
    use backflow::pipeline::Engine;
    use backflow::traffic::{GenOptions, Kind, generate};

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("many-flows.pcap");
    let opts = GenOptions {
        kind: Kind::Mixed,
        packets: 150_000,
        concurrent: 30_000,
        seed: 7,
    };
    let file = std::fs::File::create(&path).expect("create");
    generate(std::io::BufWriter::new(file), &opts).expect("generate");

    let threaded = read(std::slice::from_ref(&path), &["--workers", "1"]);
    assert_eq!(threaded.status, 0, "{}", threaded.stderr);
    // 30,000 connections open at once: far beyond the read-ahead's
    // threshold on the one worker.
    let total = final_stats(&threaded)["flow"]["total"]
        .as_u64()
        .unwrap_or(0);
    assert!(total > 30_000, "flows: {total}");

    let mut engine = Engine::new(&backflow::config::Config::default());
    let input = Input::open(&path).expect("capture");
    let (_, err) = read_frames(
        input,
        &mut |f: &Frame<'_>, _: FrameBytes<'_>| {
            assert_eq!(f.linktype, LinkType::Ethernet);
            engine.process(f);
        },
        &AtomicBool::new(false),
    );
    assert!(err.is_none(), "{err:?}");
    let (_, records) = engine.finish();
    let records = common::parse_lines(&records.buf);
    let of_type = |v: &[serde_json::Value], t: &str| -> Vec<String> {
        let mut lines: Vec<String> = v
            .iter()
            .filter(|r| r["event_type"] == t)
            .map(|r| {
                let mut r = r.clone();
                // Where the record was written, not what it says.
                if let Some(o) = r.as_object_mut() {
                    o.remove("pcap_cnt");
                }
                r.to_string()
            })
            .collect();
        lines.sort();
        lines
    };
    for t in ["flow", "alert"] {
        let (a, b) = (of_type(&threaded.records, t), of_type(&records, t));
        assert!(!a.is_empty(), "{t}: none");
        assert!(t == "alert" || a.len() as u64 == total, "{t}: {}", a.len());
        assert!(a == b, "{t} records differ: {} vs {}", a.len(), b.len());
    }
}
