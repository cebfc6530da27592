//! Detectors on the public captures in `../shared/pcaps` (skipped where
//! absent), against the ground truth in its MANIFEST.tsv.

mod common;

use std::path::Path;

use serde_json::Value;

use common::{read, shared_or_skip};

fn alerts(file: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--workers", "1"];
    args.extend_from_slice(extra);
    let run = read(&[file.to_path_buf()], &args);
    assert_eq!(run.status, 0, "{}: {}", file.display(), run.stderr);
    run.of_type("alert").into_iter().cloned().collect()
}

fn has(
    alerts: &[Value],
    kind: &str,
    src: Option<&str>,
    dst: Option<&str>,
    port: Option<u64>,
) -> bool {
    alerts.iter().any(|a| {
        let al = &a["alert"];
        al["metadata"]["detector"][0] == kind
            && src.is_none_or(|s| al["source"]["ip"] == s)
            && dst.is_none_or(|d| al["target"]["ip"] == d)
            && port.is_none_or(|p| al["target"]["port"] == p)
    })
}

fn summary(alerts: &[Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| {
            format!(
                "{} {} -> {}",
                a["alert"]["metadata"]["detector"][0], a["alert"]["source"], a["alert"]["target"]
            )
        })
        .collect()
}

/// (file, kind, source, target ip, target port).
type Expected = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<u64>,
);

/// Per MANIFEST.tsv's ground truth.
const EXPECTED: &[Expected] = &[
    (
        "scans/nmap_syn_scan.pcap",
        "port_scan",
        Some("192.168.1.10"),
        Some("192.168.1.25"),
        None,
    ),
    (
        "scans/nmap_connect_scan.pcap",
        "port_scan",
        Some("192.168.1.10"),
        Some("192.168.1.25"),
        None,
    ),
    (
        "scans/nmap_fin_scan.pcap",
        "port_scan",
        Some("192.168.1.10"),
        Some("192.168.1.25"),
        None,
    ),
    (
        "scans/nmap_xmas_scan.pcap",
        "port_scan",
        Some("192.168.1.10"),
        Some("192.168.1.25"),
        None,
    ),
    (
        "scans/nmap_null_scan.pcap",
        "port_scan",
        Some("192.168.1.10"),
        Some("192.168.1.25"),
        None,
    ),
    (
        "scans/nmap_ack_scan.pcap",
        "port_scan",
        Some("192.168.1.10"),
        Some("192.168.1.25"),
        None,
    ),
    (
        "scans/nmap_window_scan.pcap",
        "port_scan",
        Some("192.168.1.10"),
        Some("192.168.1.25"),
        None,
    ),
    (
        "scans/nmap_udp_scan.pcap",
        "port_scan",
        Some("192.168.1.10"),
        Some("192.168.1.25"),
        None,
    ),
    (
        "scans/nmap_rpc_scan.pcap",
        "port_scan",
        Some("192.168.1.10"),
        Some("192.168.1.25"),
        None,
    ),
    (
        "scans/nmap_version_scan.pcap",
        "port_scan",
        Some("192.168.1.10"),
        Some("192.168.1.25"),
        None,
    ),
    (
        "scans/nmap_ftp_bounce_scan.pcap",
        "port_scan",
        Some("192.168.1.25"),
        Some("192.168.1.15"),
        None,
    ),
    (
        "scans/xscan_vuln_scan.pcap",
        "port_scan",
        Some("192.168.1.125"),
        Some("192.168.1.120"),
        None,
    ),
    (
        "scans/xprobe_tcp_scan.pcap",
        "port_scan",
        Some("192.168.1.20"),
        Some("192.168.1.25"),
        None,
    ),
    (
        "scans/xprobe_udp_scan.pcap",
        "port_scan",
        Some("192.168.1.20"),
        Some("192.168.1.25"),
        None,
    ),
    (
        "scans/sanders_synscan.pcapng",
        "port_scan",
        Some("172.16.0.8"),
        Some("64.13.134.52"),
        None,
    ),
    (
        "scans/ppa_portscan.pcap",
        "port_scan",
        Some("10.100.25.14"),
        Some("10.100.18.12"),
        None,
    ),
    (
        "scans/masscan_tcp_0_1000.pcap",
        "port_scan",
        Some("172.31.15.102"),
        Some("198.124.152.15"),
        None,
    ),
    (
        "scans/masscan_udp_0_1000.pcap",
        "port_scan",
        Some("172.31.15.102"),
        Some("198.124.152.15"),
        None,
    ),
    (
        "scans/sgr_portscan_1_10000.pcapng",
        "port_scan",
        Some("192.168.1.7"),
        Some("192.168.1.1"),
        None,
    ),
    (
        "scans/sgr_tcp_syn_ping_sweep.pcapng",
        "port_sweep",
        Some("10.0.0.128"),
        None,
        None,
    ),
    (
        "scans/sgr_tcp_ack_ping_sweep.pcapng",
        "port_sweep",
        Some("10.0.0.128"),
        None,
        None,
    ),
    (
        "scans/sgr_udp_sweep.pcap",
        "port_sweep",
        Some("246.237.45.150"),
        None,
        None,
    ),
    // 512 ICMP echo requests to 256 hosts of 10.0.0.0/24, none answered.
    (
        "scans/sgr_icmp_ping_sweep.pcap",
        "port_sweep",
        Some("10.0.0.128"),
        None,
        None,
    ),
    (
        "scans/netforensics_puzzle4_mrx_scan.pcap",
        "port_scan",
        Some("10.42.42.253"),
        Some("10.42.42.25"),
        None,
    ),
    (
        "scans/netforensics_puzzle4_mrx_scan.pcap",
        "port_scan",
        Some("10.42.42.253"),
        Some("10.42.42.50"),
        None,
    ),
    (
        "scans/netforensics_puzzle4_mrx_scan.pcap",
        "port_scan",
        Some("10.42.42.253"),
        Some("10.42.42.56"),
        None,
    ),
    (
        "scans/nmap_ipproto_scan.pcap",
        "protocol_scan",
        Some("192.168.1.10"),
        Some("192.168.1.25"),
        None,
    ),
    // The target's protocol unreachables only: the scanner is the host
    // they go to.
    (
        "scans/sgr_ipproto_scan_replies.pcapng",
        "protocol_scan",
        Some("10.0.0.128"),
        Some("10.0.0.2"),
        None,
    ),
    (
        "scans/zeek_ssh_password_guessing.pcap",
        "brute_force",
        Some("192.168.56.1"),
        Some("192.168.56.103"),
        Some(22),
    ),
    (
        "floods/stopddos_synflood_spoofed.pcap",
        "syn_flood",
        None,
        Some("10.10.10.10"),
        Some(25565),
    ),
    (
        "floods/stopddos_syn_ecn_cwr_flood.pcapng",
        "syn_flood",
        None,
        Some("10.10.10.10"),
        Some(30120),
    ),
    (
        "floods/sv_syn_flood_single_source.pcap",
        "syn_flood",
        Some("192.0.2.10"),
        Some("198.51.100.5"),
        Some(443),
    ),
];

#[test]
fn scans_and_floods_are_found_as_their_ground_truth_says() {
    let Some(shared) = shared_or_skip("scans and floods") else {
        return;
    };
    let mut missed = Vec::new();
    for (file, kind, src, dst, port) in EXPECTED {
        let a = alerts(&shared.join("pcaps").join(file), &[]);
        if !has(&a, kind, *src, *dst, *port) {
            missed.push(format!(
                "{file}: {kind} {src:?} -> {dst:?}:{port:?}; got {:?}",
                summary(&a)
            ));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}

#[test]
fn negative_cases_stay_quiet() {
    let Some(shared) = shared_or_skip("negative cases") else {
        return;
    };
    let p = |f: &str| shared.join("pcaps").join(f);
    // A single-port nmap run (three SYNs to port 80, or OS and version probes
    // on port 80) is not a port scan.
    for f in [
        "scans/esnet_nmap_80_vanilla.pcap",
        "scans/esnet_nmap_80_A.pcap",
        "scans/esnet_nmap_80_sV.pcap",
    ] {
        let a = alerts(&p(f), &[]);
        assert!(
            !has(&a, "port_scan", None, None, None) && !has(&a, "port_sweep", None, None, None),
            "{f}: {:?}",
            summary(&a)
        );
    }
    // SSH password guessing is brute force, not a scan.
    let a = alerts(&p("scans/zeek_ssh_password_guessing.pcap"), &[]);
    assert!(!has(&a, "port_scan", None, None, None), "{:?}", summary(&a));
    // 100 SYNs to 100 random victims: no victim is flooded.
    let a = alerts(&p("floods/ppa_random_syn.pcap"), &[]);
    assert!(!has(&a, "syn_flood", None, None, None), "{:?}", summary(&a));
    // Reflection/backscatter and UDP amplification are not SYN floods.
    for f in [
        "floods/stopddos_synack_reflection.pcap",
        "floods/stopddos_udp_isakmp_amp.pcap",
        "floods/stopddos_udp_snmp_amp.pcapng",
        "floods/stopddos_udp_bacnet_amp.pcapng",
        "floods/zeek_dhcp_flood.pcap",
    ] {
        let a = alerts(&p(f), &[]);
        assert!(
            !has(&a, "syn_flood", None, None, None),
            "{f}: {:?}",
            summary(&a)
        );
    }
}

/// Under the default policy (home = RFC 1918 + fc00::/7, no hosts declared,
/// the shipped rules) exactly two alerts remain on normal/, and each is what
/// that policy means:
/// - ppa_bittorrent.pcap: 192.168.0.193 sends a NetBIOS name service packet
///   (udp/137) to an external address: the shipped rule 9200024 (outbound
///   NetBIOS), once.
/// - zeek_smtp.pcap: 10.10.1.4 sends mail straight to an external port 25 and
///   is not declared a mail server: outbound_smtp.
///
/// honeynet_fc2_windows_lan.pcap's Windows XP client 10.0.3.15 connecting
/// from its ephemeral port 1080 (XP's range is 1025-5000) to a web server
/// port is a client, not a reversed role: a well-known port of 1024 and up
/// is only evidence when the destination is not a server port too.
#[test]
fn normal_traffic_under_the_default_policy() {
    let Some(shared) = shared_or_skip("normal traffic, default policy") else {
        return;
    };
    let mut remaining = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(shared.join("pcaps/normal"))
        .expect("normal")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in &files {
        for a in alerts(f, &[]) {
            let al = &a["alert"];
            // A detector's kind and attacker, or a rule's sid and source.
            let (what, who) = match al["metadata"]["detector"][0].as_str() {
                Some(kind) => (kind.to_string(), al["source"]["ip"].as_str().unwrap_or("")),
                None => (
                    format!("sid:{}", al["signature_id"]),
                    a["src_ip"].as_str().unwrap_or(""),
                ),
            };
            remaining.push(format!(
                "{} {what} {who}",
                f.file_name().and_then(|n| n.to_str()).unwrap_or(""),
            ));
        }
    }
    assert_eq!(
        remaining,
        vec![
            "ppa_bittorrent.pcap sid:9200024 192.168.0.193".to_string(),
            "zeek_smtp.pcap outbound_smtp 10.10.1.4".to_string(),
        ]
    );
}

#[test]
fn normal_traffic_under_a_policy_that_describes_it_raises_nothing() {
    let Some(shared) = shared_or_skip("normal traffic, matching policy") else {
        return;
    };
    let policy = common::repo().join("tests/data/normal-policy.toml");
    for e in std::fs::read_dir(shared.join("pcaps/normal"))
        .expect("normal")
        .flatten()
    {
        let a = alerts(&e.path(), &["-c", policy.to_str().unwrap_or("")]);
        assert!(a.is_empty(), "{}: {:?}", e.path().display(), summary(&a));
    }
}

/// The alerts of the Honeynet attack trace with its victim's network home.
fn attack_trace_alerts(shared: &Path, workers: usize) -> Vec<Value> {
    let policy = common::repo().join("tests/data/attack-trace-policy.toml");
    let file = shared.join("pcaps/scans/honeynet_attack_trace.pcap");
    let workers = workers.to_string();
    let run = read(
        &[file],
        &["--workers", &workers, "-c", policy.to_str().unwrap_or("")],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    run.of_type("alert").into_iter().cloned().collect()
}

const ATTACK_TRACE_ALERTS: [&str; 4] = [
    "callback 192.150.11.111 -> 98.114.205.102:8884 severity 1",
    "unexpected_inbound 98.114.205.102 -> 192.150.11.111:1080 severity 2",
    "unexpected_inbound 98.114.205.102 -> 192.150.11.111:1957 severity 2",
    "unexpected_inbound 98.114.205.102 -> 192.150.11.111:445 severity 1",
];

fn attack_trace_summary(a: &[Value]) -> Vec<String> {
    let mut got: Vec<String> = a
        .iter()
        .map(|x| {
            let al = &x["alert"];
            format!(
                "{} {} -> {}:{} severity {}",
                al["metadata"]["detector"][0].as_str().unwrap_or(""),
                al["source"]["ip"].as_str().unwrap_or(""),
                al["target"]["ip"].as_str().unwrap_or(""),
                al["target"]["port"],
                al["severity"]
            )
        })
        .collect();
    got.sort();
    got
}

/// The Honeynet attack trace: an attacker's sessions to the victim's 445
/// (the exploit), 1957 (a shell) and 1080, and in between the victim's own
/// connection from an ephemeral port back to the attacker's 8884 (the
/// payload download). With the victim's network declared home: three
/// unexpected inbound sessions and one callback, both severity 1 where the
/// compromise is, and nothing else (the connection out is from port 36296,
/// so it is not a reversed role).
#[test]
fn an_exploited_server_calls_its_attacker_back() {
    let Some(shared) = shared_or_skip("attack trace callback") else {
        return;
    };
    let a = attack_trace_alerts(&shared, 1);
    assert_eq!(attack_trace_summary(&a), ATTACK_TRACE_ALERTS);
    let cb = a
        .iter()
        .find(|x| x["alert"]["metadata"]["detector"][0] == "callback")
        .expect("callback");
    // The session it follows is the shell on 1957, 2.9 s before.
    assert_eq!(cb["alert"]["metadata"]["served_port"], 1957);
    assert_eq!(cb["src_port"], 36296);
    assert!(
        cb["flow_id"].is_u64() && cb["community_id"].is_string(),
        "{cb}"
    );
}

/// The callback of the attack trace is judged when its flow ends, at the
/// end of the input (the trace ends seconds later): with several workers,
/// after every worker has handled the packets before, whichever handled
/// the inbound session it follows. The same alerts every time.
#[test]
fn the_callback_is_reported_whatever_the_number_of_workers() {
    let Some(shared) = shared_or_skip("attack trace callback, several workers") else {
        return;
    };
    for workers in [2, 4] {
        for run in 0..6 {
            let a = attack_trace_alerts(&shared, workers);
            assert_eq!(
                attack_trace_summary(&a),
                ATTACK_TRACE_ALERTS,
                "{workers} workers, run {run}"
            );
        }
    }
}

/// nmap -sO probes 256 IP protocols of one host; the target refuses most
/// with ICMP protocol unreachable. One alert, naming both, and no port scan
/// from the few probes that carry ports (TCP, UDP, SCTP) or from the
/// unreachables; no other capture of the corpus raises a protocol scan.
#[test]
fn an_ip_protocol_scan_is_one_protocol_scan() {
    let Some(shared) = shared_or_skip("IP protocol scan") else {
        return;
    };
    let a = alerts(&shared.join("pcaps/scans/nmap_ipproto_scan.pcap"), &[]);
    assert_eq!(
        summary(&a),
        [r#""protocol_scan" {"ip":"192.168.1.10"} -> {"ip":"192.168.1.25"}"#],
    );
    let m = &a[0]["alert"]["metadata"];
    assert_eq!(m["technique"], serde_json::json!(["ip_protocol"]));
    assert!(m["distinct_protocols"].as_u64() >= Some(8), "{m}");
    assert_eq!(a[0]["alert"]["signature_id"], 9100012);
    for dir in ["normal", "scans", "floods", "tcp-state"] {
        let Ok(entries) = std::fs::read_dir(shared.join("pcaps").join(dir)) else {
            continue;
        };
        for f in entries.flatten().map(|e| e.path()) {
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.contains(".pcap") || name.contains("ipproto_scan") {
                continue;
            }
            let a = alerts(&f, &[]);
            assert!(
                !has(&a, "protocol_scan", None, None, None),
                "{}: {:?}",
                f.display(),
                summary(&a)
            );
        }
    }
}

#[test]
fn alerts_on_the_corpus_validate_with_eve_check() {
    let Some(shared) = shared_or_skip("eve-check on alerts") else {
        return;
    };
    let files: Vec<_> = EXPECTED
        .iter()
        .map(|(f, ..)| shared.join("pcaps").join(f))
        .collect();
    let run = read(&files, &["--workers", "2"]);
    assert!(run.of_type("alert").len() >= EXPECTED.len() - 2);
    let (ok, text) = common::eve_check(&shared, &run.eve_path()).expect("eve-check runs");
    assert!(ok, "{text}");
}
