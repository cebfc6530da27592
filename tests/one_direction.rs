//! Captures holding one direction of the traffic (an asymmetric route, a
//! tap on one direction of a link): healthy clients are neither scanners
//! nor a flood, and the lab's real scans, floods and sessions, their
//! answers removed, are still found.

mod common;

use std::path::{Path, PathBuf};

use common::{pcap, pcap_frames as frames, read, write_pcap as write};
use etherparse::PacketBuilder;
use serde_json::Value;

/// An Ethernet IPv4 frame's addresses.
fn addresses(frame: &[u8]) -> Option<([u8; 4], [u8; 4])> {
    (frame.get(12..14)? == [8, 0]).then(|| {
        let src = frame[26..30].try_into().expect("4 bytes");
        let dst = frame[30..34].try_into().expect("4 bytes");
        (src, dst)
    })
}

fn alerts(file: &Path) -> Vec<Value> {
    let policy = pcap("lab/policy.toml");
    let run = read(
        &[file.to_path_buf()],
        &["--workers", "1", "-c", policy.to_str().expect("path")],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    run.of_type("alert").into_iter().cloned().collect()
}

fn detector(a: &Value) -> &str {
    a["alert"]["metadata"]["detector"][0].as_str().unwrap_or("")
}

/// A lab capture with only the frames `keep` accepts.
fn one_way(dir: &Path, file: &str, keep: impl Fn([u8; 4], [u8; 4]) -> bool) -> PathBuf {
    let all = frames(&pcap(&format!("lab/{file}")));
    let kept: Vec<_> = all
        .iter()
        .filter(|(_, _, f)| addresses(f).is_some_and(|(s, d)| keep(s, d)))
        .cloned()
        .collect();
    assert!(
        !kept.is_empty() && kept.len() < all.len(),
        "{file}: {} of {} frames kept",
        kept.len(),
        all.len()
    );
    let path = dir.join(file);
    write(&path, &kept);
    path
}

#[test]
fn real_scans_and_floods_without_their_answers_are_still_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (file, kind, from) in [
        ("inbound-scan-syn.pcap", "port_scan", [203, 0, 113, 50]),
        ("inbound-scan-connect.pcap", "port_scan", [203, 0, 113, 50]),
        ("outbound-scan-syn.pcap", "port_scan", [10, 20, 1, 30]),
        ("inbound-sweep-tcp22.pcap", "port_sweep", [203, 0, 113, 51]),
    ] {
        let path = one_way(dir.path(), file, |s, _| s == from);
        let found = alerts(&path);
        let scan = found
            .iter()
            .find(|a| detector(a) == kind)
            .unwrap_or_else(|| panic!("{file}: no {kind} in {found:?}"));
        let ip = std::net::Ipv4Addr::from(from).to_string();
        assert_eq!(scan["alert"]["source"]["ip"], ip.as_str(), "{file}");
    }
    let victim = [10, 20, 1, 10];
    let path = one_way(dir.path(), "syn-flood-distributed.pcap", |_, d| d == victim);
    let found = alerts(&path);
    let flood = found
        .iter()
        .find(|a| detector(a) == "syn_flood")
        .unwrap_or_else(|| panic!("no syn_flood in {found:?}"));
    assert_eq!(flood["alert"]["target"]["ip"], "10.20.1.10");
}

/// The detectors that judge a completed handshake (a session in, a
/// connection out of a host's policy, SMTP out) judge it from its client's
/// side alone: the same alerts as from both directions.
#[test]
fn real_sessions_without_their_answers_are_still_judged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let judged = |alerts: &[Value], kind: &str| -> Vec<(String, String)> {
        let mut v: Vec<_> = alerts
            .iter()
            .filter(|a| detector(a) == kind)
            .map(|a| {
                let a = &a["alert"];
                (a["source"].to_string(), a["target"].to_string())
            })
            .collect();
        v.sort();
        v
    };
    for (file, kind, client) in [
        (
            "unexpected-inbound.pcap",
            "unexpected_inbound",
            [203, 0, 113, 40],
        ),
        (
            "egress-violation-db.pcap",
            "egress_violation",
            [10, 20, 1, 30],
        ),
        ("outbound-smtp.pcap", "outbound_smtp", [10, 20, 1, 20]),
    ] {
        let both = judged(&alerts(&pcap(&format!("lab/{file}"))), kind);
        assert!(!both.is_empty(), "{file}: no {kind}");
        let path = one_way(dir.path(), file, |s, _| s == client);
        assert_eq!(judged(&alerts(&path), kind), both, "{file}");
    }
}

/// `n` clients' connections to `server(i)`, as the clients sent them:
/// a SYN, then (when `answered`) the ACK of the SYN-ACK the capture does
/// not hold, a request and a FIN.
fn clients(
    n: u8,
    client: impl Fn(u8) -> ([u8; 4], u16),
    server: impl Fn(u8) -> ([u8; 4], u16),
    answered: bool,
) -> Vec<(u32, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut us = 0u32;
    for i in 0..n {
        let ((c, cp), (s, sp)) = (client(i), server(i));
        let seq = 1000 + u32::from(i);
        let b = || PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(c, s, 64);
        let mut push = |frame: Vec<u8>| {
            us += 20_000;
            out.push((1_700_000_000 + us / 1_000_000, us % 1_000_000, frame));
        };
        let mut f = Vec::new();
        b().tcp(cp, sp, seq, 64240)
            .syn()
            .write(&mut f, &[])
            .expect("syn");
        push(f);
        if !answered {
            continue;
        }
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for (flags, payload, at) in [
            ("ack", &b""[..], seq + 1),
            ("psh", &request[..], seq + 1),
            ("fin", &b""[..], seq + 1 + request.len() as u32),
        ] {
            let tcp = b().tcp(cp, sp, at, 64240).ack(90_001);
            let tcp = match flags {
                "psh" => tcp.psh(),
                "fin" => tcp.fin(),
                _ => tcp,
            };
            let mut f = Vec::new();
            tcp.write(&mut f, payload).expect("segment");
            push(f);
        }
    }
    out
}

#[test]
fn answered_clients_seen_one_way_are_not_scans_or_floods() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A workstation browsing 40 sites; 250 outside clients of the
    // published web server within a few seconds.
    let browsing = |answered| {
        clients(
            40,
            |i| ([10, 20, 1, 20], 50_000 + u16::from(i)),
            |i| ([198, 51, 100, 100 + i], 443),
            answered,
        )
    };
    let busy = |answered| {
        clients(
            250,
            |i| ([203, 0, 113, i], 40_000 + u16::from(i)),
            |_| ([10, 20, 1, 10], 80),
            answered,
        )
    };
    for (name, answered, want) in [
        ("browsing", true, None),
        ("busy", true, None),
        // The same SYNs unanswered: a sweep, a flood.
        ("browsing", false, Some("port_sweep")),
        ("busy", false, Some("syn_flood")),
    ] {
        let path = dir.path().join(format!("{name}-{answered}.pcap"));
        let capture = if name == "busy" {
            busy(answered)
        } else {
            browsing(answered)
        };
        write(&path, &capture);
        let found = alerts(&path);
        let kinds: Vec<_> = found.iter().map(detector).collect();
        match want {
            None => assert!(kinds.is_empty(), "{name}: {kinds:?}"),
            Some(k) => assert!(kinds.contains(&k), "{name} unanswered: {kinds:?}"),
        }
    }
    // An ACK sweep (nmap -sA, -PA): its probes are bare ACKs, no SYN
    // before them to be answered.
    let sweep: Vec<_> = (0..40u8)
        .map(|i| {
            let mut f = Vec::new();
            PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv4([203, 0, 113, 7], [10, 20, 2, i], 64)
                .tcp(41_000, 80, 7, 1024)
                .ack(0)
                .write(&mut f, &[])
                .expect("ack");
            (1_700_000_000, u32::from(i) * 1000, f)
        })
        .collect();
    let path = dir.path().join("ack-sweep.pcap");
    write(&path, &sweep);
    let found = alerts(&path);
    let sweep = found
        .iter()
        .find(|a| detector(a) == "port_sweep")
        .unwrap_or_else(|| panic!("ack sweep: {found:?}"));
    assert_eq!(sweep["alert"]["metadata"]["technique"][0], "ack");
}

/// A SYN flood while 30 real clients connect through a tap that delivers
/// each client's ACK just before the server's SYN-ACK: each handshake
/// counts as completed once (counted twice, 30 clients looked like 60
/// and the flood's completion ratio hid it).
#[test]
fn a_reordered_handshake_counts_once_against_a_flood() {
    let server = [10, 20, 1, 10];
    let mut frames = Vec::new();
    let mut us = 0u32;
    let mut push = |f: Vec<u8>| {
        us += 1000;
        frames.push((1_700_000_000 + us / 1_000_000, us % 1_000_000, f));
    };
    let segment = |from: [u8; 4], to: [u8; 4], ports: (u16, u16), seq: u32, flags: &str| {
        let tcp = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(from, to, 64)
            .tcp(ports.0, ports.1, seq, 64240);
        let tcp = match flags {
            "S" => tcp.syn(),
            "SA" => tcp.syn().ack(1001),
            _ => tcp.ack(5001),
        };
        let mut f = Vec::new();
        tcp.write(&mut f, &[]).expect("segment");
        f
    };
    for i in 0..180u16 {
        let spoofed = [198, 51, 100 + (i / 250) as u8, 1 + (i % 250) as u8];
        push(segment(spoofed, server, (10_000 + i, 80), 1, "S"));
        if i % 6 == 0 {
            let client = [192, 0, 2, 1 + (i / 6) as u8];
            let ports = (40_000 + i, 80);
            push(segment(client, server, ports, 1000, "S"));
            push(segment(client, server, ports, 1001, "A"));
            push(segment(server, client, (80, ports.0), 5000, "SA"));
            push(segment(client, server, ports, 1001, "A"));
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("reordered.pcap");
    write(&path, &frames);
    let found = alerts(&path);
    let flood = found
        .iter()
        .find(|a| detector(a) == "syn_flood")
        .unwrap_or_else(|| panic!("no syn_flood in {found:?}"));
    let completed = flood["alert"]["metadata"]["completed"]
        .as_u64()
        .unwrap_or(0);
    assert!(completed <= 30, "completed {completed}");
}
