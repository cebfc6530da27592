//! Signature rules end to end: Emerging Threats Open through the loader and
//! `backflow rules check`, and rules matched by `backflow read` on the lab
//! captures and on crafted packet sequences.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use backflow::config::Config;
use backflow::detect::rules::RuleSet;
use common::{pcap, shared_or_skip};

/// Active (non-comment) rules in a rule file, counted without the parser.
fn active_rules(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .expect("rule file")
        .lines()
        .map(str::trim_start)
        .filter(|l| {
            ["alert ", "drop ", "pass ", "reject "]
                .iter()
                .any(|a| l.starts_with(a))
        })
        .count()
}

fn rules_check(args: &[&str]) -> (i32, String) {
    let out = Command::new(common::bin())
        .args(["rules", "check"])
        .args(args)
        .output()
        .expect("run backflow rules check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `path: N of M rules loaded (P%)` lines of `rules check`.
fn file_shares(stdout: &str) -> BTreeMap<String, (usize, usize)> {
    stdout
        .lines()
        .filter_map(|l| {
            let (path, rest) = l.trim().rsplit_once(": ")?;
            let mut w = rest.split_whitespace();
            let loaded = w.next()?.parse().ok()?;
            let _of = w.next().filter(|x| *x == "of")?;
            let total = w.next()?.parse().ok()?;
            let name = Path::new(path).file_name()?.to_str()?.to_string();
            Some((name, (loaded, total)))
        })
        .collect()
}

#[test]
fn et_open_loads_or_is_rejected_with_a_reason() {
    let Some(shared) = shared_or_skip("ET Open") else {
        return;
    };
    let dir = shared.join("rules/et-open");
    let set = RuleSet::load_with(
        &Config::default().rules,
        Some(std::slice::from_ref(&dir)),
        &Config::default().policy.home_nets,
        100_000,
    );
    let r = set.report();
    let mut expected_total = 0;
    for f in &r.files {
        let n = active_rules(Path::new(&f.path));
        assert_eq!(f.rules, n, "{}: every active rule is seen", f.path);
        expected_total += n;
    }
    assert!(
        expected_total > 20_000,
        "ET Open has {expected_total} active rules"
    );
    assert_eq!(r.rules(), expected_total);
    assert_eq!(r.loaded + r.detector_rules + r.rejected(), r.rules());
    for e in &r.errors {
        assert!(!e.keyword.is_empty() && e.line > 0 && e.column > 0, "{e}");
        assert!(!e.reason.to_string().is_empty(), "{e}");
    }
    assert!(r.other_errors.is_empty(), "{:?}", r.other_errors);
    eprintln!(
        "ET Open: {} of {} rules loaded ({} IP-only)",
        r.loaded,
        r.rules(),
        r.ip_only
    );
}

#[test]
fn every_ip_list_rule_of_et_open_loads() {
    let Some(shared) = shared_or_skip("ET Open IP lists") else {
        return;
    };
    let dir = shared.join("rules/et-open");
    let names = [
        "drop.rules",
        "compromised.rules",
        "ciarmy.rules",
        "tor.rules",
        "dshield.rules",
        "botcc.rules",
        "3coresec.rules",
    ];
    let paths: Vec<String> = names
        .iter()
        .map(|n| dir.join(n).to_string_lossy().into_owned())
        .collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let (code, out) = rules_check(&args);
    assert_eq!(code, 0, "{out}");
    let shares = file_shares(&out);
    for n in names {
        let want = active_rules(&dir.join(n));
        assert!(want > 0, "{n}");
        assert_eq!(shares.get(n), Some(&(want, want)), "{n}: {out}");
    }
}

#[test]
fn rules_check_reports_the_scan_and_dos_shares() {
    let Some(shared) = shared_or_skip("ET Open scan and dos shares") else {
        return;
    };
    let dir = shared.join("rules/et-open");
    let scan = dir.join("emerging-scan.rules");
    let dos = dir.join("emerging-dos.rules");
    let (code, out) = rules_check(&[scan.to_str().unwrap_or(""), dos.to_str().unwrap_or("")]);
    assert_eq!(code, 1, "not every rule of these files is supported");
    let shares = file_shares(&out);
    for (name, path) in [("emerging-scan.rules", &scan), ("emerging-dos.rules", &dos)] {
        let (loaded, total) = shares[name];
        assert_eq!(total, active_rules(path), "{name}");
        assert!(loaded > 0 && loaded < total, "{name}: {loaded} of {total}");
        // Every rejected rule is listed with file:line:column: keyword: reason.
        let listed = out
            .lines()
            .filter(|l| l.starts_with(&path.display().to_string()) && l.matches(':').count() >= 4)
            .count();
        assert_eq!(listed, total - loaded, "{name}");
        eprintln!(
            "{name}: {loaded} of {total} loaded ({:.1}%)",
            loaded as f64 * 100.0 / total as f64
        );
    }
    assert!(out.contains("rejected by reason:"), "{out}");
}

#[test]
fn the_shipped_rules_all_load() {
    let (code, out) = rules_check(&[]);
    assert_eq!(code, 0, "{out}");
    let shares = file_shares(&out);
    let det = active_rules(&common::repo().join("rules/backflow-detectors.rules"));
    let local = active_rules(&common::repo().join("rules/backflow-local.rules"));
    assert_eq!(shares.get("backflow-detectors.rules"), Some(&(det, det)));
    assert_eq!(shares.get("backflow-local.rules"), Some(&(local, local)));
    // A broken rule is reported with its position and fails the check.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.rules");
    std::fs::write(
        &bad,
        "alert tcp any any -> any 80 (msg:\"ok\"; sid:1;)\n\n# comment\nalert tcp any any -> any 80 (msg:\"x\"; byte_test:1,>,2,0; sid:2;)\n",
    )
    .expect("write");
    let (code, out) = rules_check(&[bad.to_str().unwrap_or("")]);
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!(
            "{}:4:39: byte_test: keyword is not supported",
            bad.display()
        )),
        "{out}"
    );
    assert!(
        out.contains("      1  unsupported keyword `byte_test`"),
        "{out}"
    );
}

/// A config in a temporary directory, with rule files beside it.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn setup(rules: &str, extra_config: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("test.rules"), rules).expect("rules");
    let config = dir.path().join("backflow.toml");
    std::fs::write(
        &config,
        format!(
            "home_nets = [\"10.0.0.0/8\", \"fd00::/8\"]\n[rules]\nfiles = [\"test.rules\"]\n{extra_config}"
        ),
    )
    .expect("config");
    Setup { dir, config }
}

fn read_with(s: &Setup, files: &[PathBuf]) -> common::Run {
    let run = common::read(
        files,
        &["--workers", "1", "-c", s.config.to_str().unwrap_or("")],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    run
}

fn alerts_by_sid(run: &common::Run) -> BTreeMap<u64, Vec<Value>> {
    let mut m: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for a in run.of_type("alert") {
        let sid = a["alert"]["signature_id"].as_u64().unwrap_or(0);
        m.entry(sid).or_default().push(a.clone());
    }
    m
}

/// TCP segments in a capture with exactly these flags, from `src`
/// (read with etherparse, independently of backflow's decoder).
fn count_segments(file: &Path, src: [u8; 4], flags: u8) -> (usize, f64) {
    use pcap_parser::traits::PcapReaderIterator;
    let data = std::fs::read(file).expect("pcap");
    let mut reader = pcap_parser::LegacyPcapReader::new(65536, &data[..]).expect("pcap header");
    let (mut n, mut first, mut last) = (0, None, 0.0);
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                if let pcap_parser::PcapBlockOwned::Legacy(b) = block {
                    let t = f64::from(b.ts_sec) + f64::from(b.ts_usec) / 1e6;
                    first.get_or_insert(t);
                    last = t;
                    if let Ok(p) = etherparse::SlicedPacket::from_ethernet(b.data)
                        && let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net
                        && ip.header().source() == src
                        && let Some(etherparse::TransportSlice::Tcp(t)) = &p.transport
                        && [
                            t.fin(),
                            t.syn(),
                            t.rst(),
                            t.psh(),
                            t.ack(),
                            t.urg(),
                            t.ece(),
                            t.cwr(),
                        ]
                        .iter()
                        .enumerate()
                        .fold(0u8, |f, (i, on)| f | (u8::from(*on) << i))
                            == flags
                    {
                        n += 1;
                    }
                }
                reader.consume(offset);
            }
            Err(pcap_parser::PcapError::Eof) => break,
            Err(pcap_parser::PcapError::Incomplete(_)) => {
                reader.refill().expect("refill");
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    (n, last - first.unwrap_or(last))
}

#[test]
fn thresholds_on_a_lab_scan_fire_the_documented_number_of_times() {
    let scan = pcap("lab/inbound-scan-syn.pcap");
    let (syns, span) = count_segments(&scan, [203, 0, 113, 50], 0x02);
    assert!(syns >= 1000, "{syns} SYNs");
    assert!(span < 60.0, "the counts below assume one window: {span} s");
    let s = setup(
        "alert tcp 203.0.113.50 any -> $HOME_NET any (msg:\"limit\"; flags:S; threshold: type limit, track by_src, count 5, seconds 60; sid:1000001;)\n\
         alert tcp 203.0.113.50 any -> $HOME_NET any (msg:\"threshold\"; flags:S; threshold: type threshold, track by_src, count 100, seconds 60; sid:1000002;)\n\
         alert tcp 203.0.113.50 any -> $HOME_NET any (msg:\"both\"; flags:S; threshold: type both, track by_dst, count 10, seconds 60; sid:1000003;)\n\
         alert tcp 203.0.113.50 any -> $HOME_NET any (msg:\"detection filter\"; flags:S; detection_filter: track by_rule, count 990, seconds 60; sid:1000004;)\n\
         alert tcp 203.0.113.50 any -> $HOME_NET any (msg:\"every syn\"; flags:S; sid:1000005;)\n",
        "",
    );
    let run = read_with(&s, &[scan]);
    let by_sid = alerts_by_sid(&run);
    let n = |sid: u64| by_sid.get(&sid).map_or(0, Vec::len);
    assert_eq!(n(1_000_001), 5);
    assert_eq!(n(1_000_002), syns / 100);
    assert_eq!(n(1_000_003), 1);
    assert_eq!(n(1_000_004), syns - 990);
    assert_eq!(n(1_000_005), syns);
    // stats.json accounts for every match: raised or held back.
    let stats = run.last_stats();
    let r = &stats["backflow"]["rules"];
    let raised: usize = (1_000_001..=1_000_005).map(n).sum();
    assert_eq!(r["loaded"], 5, "{r}");
    assert_eq!(r["matches"], 5 * syns as u64, "{r}");
    assert_eq!(r["alerts"], raised as u64, "{r}");
    assert_eq!(r["thresholded"], (5 * syns - raised) as u64, "{r}");
    assert_eq!(r["suppressed"], 0, "{r}");
}

#[test]
fn curated_rules_fire_once_per_source_and_service_on_a_lab_scan() {
    // nmap scanned ports 1-1000 of 10.20.1.20 from 203.0.113.50: of the
    // curated inbound rules, SSH (22), Telnet (23), MS-RPC (135) and SMB
    // (139, 445) cover ports in that range; each alerts once (limit 1 per
    // source per hour).
    let local = common::repo().join("rules/backflow-local.rules");
    let s = setup("", "");
    std::fs::write(
        &s.config,
        format!(
            "home_nets = [\"10.0.0.0/8\", \"fd00::/8\"]\n[rules]\nfiles = [\"{}\"]\n",
            local.display()
        ),
    )
    .expect("config");
    let run = read_with(&s, &[pcap("lab/inbound-scan-syn.pcap")]);
    let mut by_sid = alerts_by_sid(&run);
    // The port_scan detector reports the scan too; only the rules matter here.
    by_sid.retain(|sid, _| (9_200_000..9_201_000).contains(sid));
    let got: Vec<(u64, usize)> = by_sid.iter().map(|(k, v)| (*k, v.len())).collect();
    assert_eq!(
        got,
        vec![
            (9_200_001, 1),
            (9_200_002, 1),
            (9_200_006, 1),
            (9_200_007, 1)
        ],
        "{}",
        run.stderr
    );
    for a in by_sid.values().flatten() {
        assert_eq!(a["src_ip"], "203.0.113.50");
        assert_eq!(a["dest_ip"], "10.20.1.20");
        assert!(
            a["alert"]["category"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        );
    }
}

#[test]
fn an_ip_list_rule_hits_every_flow_from_a_listed_address() {
    // IP-only rules are looked at on the first packet of each direction of
    // a flow: one alert per flow from the listed source.
    let s = setup(
        "alert ip [192.0.2.0/24,203.0.113.50,2001:db8:ff::50] any -> $HOME_NET any (msg:\"listed\"; sid:1000010;)\n\
         alert ip [203.0.113.50] any -> $HOME_NET any (msg:\"listed, limited\"; threshold: type limit, track by_src, count 1, seconds 3600; sid:1000011;)\n",
        "",
    );
    let files = [
        pcap("lab/inbound-scan-syn.pcap"),
        pcap("lab/ipv6-scan-syn.pcap"),
    ];
    let run = read_with(&s, &files);
    // Flows in which the address sent packets to a home address (as the
    // client, or as the server answering a home client).
    let is_home = |v: &Value| {
        v.as_str()
            .is_some_and(|d| d.starts_with("10.") || d.starts_with("fd"))
    };
    let flows_from = |ip: &str| {
        run.of_type("flow")
            .iter()
            .filter(|f| {
                let n = |k: &str| f["flow"][k].as_u64().unwrap_or(0);
                (f["src_ip"] == ip && is_home(&f["dest_ip"]) && n("pkts_toserver") > 0)
                    || (f["dest_ip"] == ip && is_home(&f["src_ip"]) && n("pkts_toclient") > 0)
            })
            .count()
    };
    let by_sid = alerts_by_sid(&run);
    let from = |sid: u64, ip: &str| {
        by_sid.get(&sid).map_or(0, |v| {
            v.iter()
                .filter(|a| a["src_ip"] == ip || a["dest_ip"] == ip)
                .count()
        })
    };
    assert!(flows_from("203.0.113.50") >= 1000);
    assert_eq!(from(1_000_010, "203.0.113.50"), flows_from("203.0.113.50"));
    assert!(flows_from("2001:db8:ff::50") >= 200);
    assert_eq!(
        from(1_000_010, "2001:db8:ff::50"),
        flows_from("2001:db8:ff::50")
    );
    assert_eq!(by_sid.get(&1_000_011).map_or(0, Vec::len), 1);
    // Every alerted flow says so.
    let alerted = run
        .of_type("flow")
        .iter()
        .filter(|f| {
            (f["src_ip"] == "203.0.113.50" || f["dest_ip"] == "203.0.113.50")
                && f["flow"]["alerted"] == true
        })
        .count();
    assert_eq!(alerted, flows_from("203.0.113.50"));
}

#[test]
fn rule_alerts_validate_with_eve_check() {
    let Some(shared) = shared_or_skip("eve-check on rule alerts") else {
        return;
    };
    let s = setup(
        "alert tcp $EXTERNAL_NET any -> $HOME_NET 22 (msg:\"ssh\"; flow:to_server; flags:S; target:dest_ip; classtype:attempted-recon; reference:url,example.com/x; metadata:created_at 2024_01_01, tag Lab; sid:1000020; rev:2;)\n\
         alert ip any any -> any any (msg:\"any udp or icmp\"; ip_proto:!6; threshold: type limit, track by_rule, count 20, seconds 60; sid:1000021;)\n",
        "",
    );
    let run = read_with(
        &s,
        &[
            pcap("lab/inbound-scan-syn.pcap"),
            pcap("lab/inbound-scan-udp.pcap"),
        ],
    );
    let by_sid = alerts_by_sid(&run);
    assert!(by_sid.contains_key(&1_000_020) && by_sid.contains_key(&1_000_021));
    let a = &by_sid[&1_000_020][0]["alert"];
    assert_eq!(a["rev"], 2);
    assert_eq!(a["metadata"]["tag"], serde_json::json!(["Lab"]));
    assert_eq!(a["references"], serde_json::json!(["url,example.com/x"]));
    assert_eq!(a["target"]["port"], 22);
    let (ok, text) = common::eve_check(&shared, &run.eve_path()).expect("eve-check runs");
    assert!(ok, "{text}");
}

/// Crafted Ethernet/IPv4/TCP frames in a classic pcap.
fn write_pcap(path: &Path, frames: &[(u32, Vec<u8>)]) {
    let mut out = common::pcap_header();
    for (ts, f) in frames {
        out.extend(common::pcap_record(1_700_000_000 + ts, f));
    }
    std::fs::write(path, out).expect("pcap");
}

fn segment(from_client: bool, seq: u32, ack: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sp, dp) = if from_client {
        ([10, 0, 0, 5], [192, 0, 2, 80], 40000, 21)
    } else {
        ([192, 0, 2, 80], [10, 0, 0, 5], 21, 40000)
    };
    let mut b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src, dst, 64)
        .tcp(sp, dp, seq, 65535);
    for c in flags.chars() {
        b = match c {
            'S' => b.syn(),
            'A' => b.ack(ack),
            'P' => b.psh(),
            'F' => b.fin(),
            _ => b,
        };
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("frame");
    v
}

#[test]
fn flowbits_carry_state_across_the_packets_of_a_flow() {
    // An FTP session: the login sets a flowbit (no alert), later commands
    // alert only on the flow that logged in as root.
    let s = setup(
        "alert tcp $HOME_NET any -> any 21 (msg:\"root login\"; flow:established,to_server; content:\"USER root\"; startswith; flowbits:set,ftp.root; flowbits:noalert; sid:1000030;)\n\
         alert tcp $HOME_NET any -> any 21 (msg:\"STOR as root\"; flow:established,to_server; content:\"STOR \"; depth:5; flowbits:isset,ftp.root; sid:1000031;)\n\
         alert tcp $HOME_NET any -> any 21 (msg:\"STOR\"; flow:established,to_server; content:\"STOR \"; depth:5; flowbits:isnotset,ftp.root; sid:1000032;)\n",
        "",
    );
    let frames = vec![
        (0, segment(true, 100, 0, "S", b"")),
        (0, segment(false, 500, 101, "SA", b"")),
        (0, segment(true, 101, 501, "A", b"")),
        (1, segment(true, 101, 501, "PA", b"STOR before.txt\r\n")),
        (2, segment(true, 118, 501, "PA", b"USER root\r\n")),
        (3, segment(true, 129, 501, "PA", b"STOR a.txt\r\n")),
        (4, segment(true, 141, 501, "PA", b"STOR b.txt\r\n")),
        (5, segment(false, 501, 153, "PA", b"STOR c.txt\r\n")),
    ];
    let file = s.dir.path().join("ftp.pcap");
    write_pcap(&file, &frames);
    let run = read_with(&s, &[file]);
    let by_sid = alerts_by_sid(&run);
    let n = |sid: u64| by_sid.get(&sid).map_or(0, Vec::len);
    assert_eq!(
        (n(1_000_030), n(1_000_031), n(1_000_032)),
        (0, 2, 1),
        "{}",
        run.stderr
    );
    let pcap_cnts: Vec<u64> = by_sid[&1_000_031]
        .iter()
        .filter_map(|a| a["pcap_cnt"].as_u64())
        .collect();
    assert_eq!(pcap_cnts, vec![6, 7]);
}
