//! The public capture corpus in `../shared/pcaps` (skipped where absent).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{read, shared_or_skip};

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// One row of `../shared/pcaps/MANIFEST.tsv`.
struct Entry {
    /// Path below `pcaps/`, e.g. `malformed/libpcap_pcap-invalid-version-1.pcap`.
    path: String,
    /// Packets as tcpdump/capinfos count them; None when the file is rejected.
    packets: Option<u64>,
    /// The description says libpcap rejects the whole file.
    rejected: bool,
}

fn manifest(shared: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(shared.join("pcaps/MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("MANIFEST.tsv has no column {name}"))
    };
    let (path, packets, description) = (col("path"), col("packets"), col("description"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let field = |i: usize| f.get(i).copied().unwrap_or("");
            Entry {
                path: field(path).to_string(),
                packets: field(packets)
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|_| !field(packets).contains("rejected")),
                rejected: field(packets).contains("file rejected")
                    || field(description).contains("libpcap reject"),
            }
        })
        .collect()
}

/// Every capture of the public corpus (all five folders, every link type):
/// no panic and no signal; each file is either read to its end (exit 0,
/// every packet counted, as many as tcpdump counts) or rejected with a
/// reason naming the file and byte offset (exit 2). The rejected ones are
/// exactly those whose header libpcap itself rejects (MANIFEST.tsv: five
/// marked "file rejected", and version 2.5, which tcpdump refuses and
/// Wireshark reads).
#[test]
fn every_public_capture_is_processed_or_rejected_with_a_reason() {
    let Some(shared) = shared_or_skip("public corpus") else {
        return;
    };
    let entries = manifest(&shared);
    let mut on_disk: Vec<PathBuf> = Vec::new();
    for dir in ["malformed", "scans", "floods", "normal", "tcp-state"] {
        on_disk.extend(files_in(&shared.join("pcaps").join(dir)));
    }
    assert!(
        on_disk.len() >= 305,
        "expected the 305 public captures, found {}",
        on_disk.len()
    );
    assert_eq!(
        on_disk.len(),
        entries.len(),
        "files on disk vs MANIFEST.tsv rows"
    );
    assert_eq!(
        entries.iter().filter(|e| e.packets.is_none()).count(),
        5,
        "MANIFEST.tsv marks five files \"file rejected\""
    );
    let mut rejected = Vec::new();
    for e in &entries {
        let file = shared.join("pcaps").join(&e.path);
        let run = read(std::slice::from_ref(&file), &["--workers", "2"]);
        let name = &e.path;
        assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
        match run.status {
            0 => {
                let stats = run.of_type("stats");
                let last = stats
                    .last()
                    .unwrap_or_else(|| panic!("{name}: no stats record"));
                assert_eq!(
                    last["stats"]["decoder"]["pkts"].as_u64(),
                    e.packets,
                    "{name}: packets read"
                );
            }
            2 => {
                let base = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
                assert!(
                    run.stderr.contains(base) && run.stderr.contains("byte offset"),
                    "{name}: the reason must name the file and offset: {}",
                    run.stderr
                );
                rejected.push(name.clone());
            }
            other => panic!(
                "{name}: exit status {other} (-1: killed by a signal): {}",
                run.stderr
            ),
        }
    }
    let want: Vec<String> = entries
        .iter()
        .filter(|e| e.rejected)
        .map(|e| e.path.clone())
        .collect();
    assert_eq!(rejected, want);
    assert_eq!(want.len(), 6);
}

/// Per unordered 5-tuple: (frames, bytes), as tshark counts them.
fn tshark_conversations(
    file: &Path,
    proto: &str,
) -> Option<BTreeMap<(String, String), (u64, u64)>> {
    let filter = format!(
        "({proto} && ip && !icmp && ip.flags.mf == 0 && ip.frag_offset == 0) || ({proto} && ipv6 && !icmpv6)"
    );
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-n", "-Y", &filter, "-T", "fields", "-E", "separator=,"])
        .args([
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            &format!("{proto}.srcport"),
        ])
        .args([
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
            "-e",
            &format!("{proto}.dstport"),
            "-e",
            "frame.len",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 7 {
            continue;
        }
        let a = format!("{}{}:{}", f[0], f[1], f[2]);
        let b = format!("{}{}:{}", f[3], f[4], f[5]);
        let key = if a <= b { (a, b) } else { (b, a) };
        let e = m.entry(key).or_insert((0, 0));
        e.0 += 1;
        e.1 += f[6].parse::<u64>().unwrap_or(0);
    }
    Some(m)
}

fn backflow_conversations(
    run: &common::Run,
    proto: &str,
) -> BTreeMap<(String, String), (u64, u64)> {
    let mut m = BTreeMap::new();
    for r in run.of_type("flow") {
        if r["proto"] != proto.to_uppercase() {
            continue;
        }
        let a = format!("{}:{}", r["src_ip"].as_str().unwrap_or(""), r["src_port"]);
        let b = format!("{}:{}", r["dest_ip"].as_str().unwrap_or(""), r["dest_port"]);
        let key = if a <= b { (a, b) } else { (b, a) };
        let f = &r["flow"];
        let e = m.entry(key).or_insert((0, 0));
        e.0 += f["pkts_toserver"].as_u64().unwrap_or(0) + f["pkts_toclient"].as_u64().unwrap_or(0);
        e.1 +=
            f["bytes_toserver"].as_u64().unwrap_or(0) + f["bytes_toclient"].as_u64().unwrap_or(0);
    }
    m
}

/// Flow, packet and byte counts per conversation agree with tshark's.
///
/// Both sides are summed per unordered 5-tuple: tshark's conversation is the
/// 5-tuple, while backflow ends a flow at a timeout or when a SYN reuses a
/// closed tuple (several records, same sums). tshark's filter leaves out ICMP
/// errors (whose quoted headers tshark also dissects as TCP/UDP) and IP
/// fragments (reassembled by tshark, attributed to the last fragment, while
/// backflow counts later fragments outside any flow); the captures below
/// have neither, so any difference is a counting error
/// (`normal/zeek_dns_edns.pcap` is left out: its DNS answers are fragmented).
#[test]
fn counts_agree_with_tshark() {
    let Some(shared) = shared_or_skip("tshark cross-check") else {
        return;
    };
    if Command::new("tshark").arg("-v").output().is_err() {
        panic!("tshark is needed for this test (apt-get install tshark)");
    }
    let captures = [
        "normal/zeek_ssh.pcap",
        "normal/zeek_http_1000_requests.pcap",
        "normal/netforensics_puzzle3_http.pcap",
        "normal/zeek_smb2.pcap",
        "normal/honeynet_fc2_windows_lan.pcap",
        "normal/honeynet_fc4_voip.pcap",
        "normal/zeek_quic_firefox.pcap",
        "normal/zeek_echo_connections.pcap",
        "tcp-state/zeek_rst_injection.pcap",
        "tcp-state/zeek_handshake_reorder.pcap",
        "tcp-state/sv_split_handshake_4whs.pcap",
        "tcp-state/netforensics_puzzle6_reverse_shell_port_reuse.pcap",
    ];
    let mut compared = 0;
    for c in captures {
        let file = shared.join("pcaps").join(c);
        let run = read(std::slice::from_ref(&file), &["--workers", "2"]);
        assert_eq!(run.status, 0, "{c}: {}", run.stderr);
        for proto in ["tcp", "udp"] {
            let want = tshark_conversations(&file, proto)
                .unwrap_or_else(|| panic!("tshark failed on {c}"));
            let got = backflow_conversations(&run, proto);
            assert_eq!(got.len(), want.len(), "{c} {proto}: conversation count");
            for (k, v) in &want {
                assert_eq!(got.get(k), Some(v), "{c} {proto} {k:?}: (frames, bytes)");
            }
            compared += want.len();
        }
    }
    assert!(compared > 100, "too few conversations compared: {compared}");
}

#[test]
fn eve_check_passes_on_own_and_normal_captures() {
    let Some(shared) = shared_or_skip("eve-check conformance") else {
        return;
    };
    let mut sets: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for d in common::own_capture_dirs() {
        let files: Vec<PathBuf> = files_in(&common::repo().join("pcaps").join(&d))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
            .collect();
        sets.push((format!("pcaps/{d}"), files));
    }
    for f in files_in(&shared.join("pcaps/normal")) {
        sets.push((f.display().to_string(), vec![f]));
    }
    for (name, files) in sets {
        if files.is_empty() {
            continue;
        }
        let run = read(&files, &["--workers", "2"]);
        let Some((ok, text)) = common::eve_check(&shared, &run.eve_path()) else {
            panic!(
                "eve-check needs python3 with jsonschema and communityid (pip install jsonschema communityid)"
            );
        };
        assert!(ok, "{name}: {text}");
    }
}
