//! RPC clients bind a reserved source port (512-1023) for every connection,
//! to rpcbind and then to the port rpcbind handed them (statd, mountd,
//! lockd: pinned or random, on no list). Those SYNs are a client's, not a
//! server port opening a connection; the same SYNs without rpcbind's
//! answers are still `reversed_role`.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{pcap, pcap_frames, read, write_pcap};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use serde_json::Value;

/// A frame's IPv4 source and the source and destination ports of its TCP
/// or UDP header, and whether it is a bare SYN.
fn ports(frame: &[u8]) -> Option<([u8; 4], u16, u16, bool)> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        return None;
    };
    let src = ip.header().source();
    match p.transport? {
        TransportSlice::Tcp(t) => Some((
            src,
            t.source_port(),
            t.destination_port(),
            t.syn() && !t.ack(),
        )),
        TransportSlice::Udp(u) => Some((src, u.source_port(), u.destination_port(), false)),
        _ => None,
    }
}

/// (source port, destination port) of each `reversed_role` alert.
fn reversed(file: &Path, workers: &str) -> BTreeSet<(u64, u64)> {
    let run = read(&[file.to_path_buf()], &["--workers", workers]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    run.of_type("alert")
        .into_iter()
        .filter(|a| a["alert"]["metadata"]["detector"][0] == "reversed_role")
        .map(|a: &Value| {
            let port = |side: &str| a["alert"][side]["port"].as_u64().unwrap_or(0);
            (port("source"), port("target"))
        })
        .collect()
}

const SERVER: [u8; 4] = [10, 30, 1, 21];

#[test]
fn rpcinfo_from_reserved_ports_is_a_client() {
    let file = pcap("rpc/rpcinfo.pcap");
    let frames = pcap_frames(&file);
    // The client's SYNs to the RPC program (not to rpcbind), from reserved
    // ports: one to statd pinned on 662, one to statd on a random port.
    let to_program: BTreeSet<(u64, u64)> = frames
        .iter()
        .filter_map(|(_, _, f)| ports(f))
        .filter(|&(src, sport, dport, syn)| {
            src != SERVER && syn && dport != 111 && (512..1024).contains(&sport)
        })
        .map(|(_, s, d, _)| (u64::from(s), u64::from(d)))
        .collect();
    assert_eq!(to_program.len(), 2, "{to_program:?}");
    assert!(to_program.iter().any(|&(_, d)| d == 662));
    assert!(to_program.iter().any(|&(_, d)| d >= 1024));

    for workers in ["1", "2"] {
        let got = reversed(&file, workers);
        assert!(got.is_empty(), "{workers} workers: {got:?}");
    }

    // Without the exchanges with rpcbind (port 111, both ways) nothing
    // says the client asked the server for a port: its SYNs to the program
    // from reserved ports are reversed roles again.
    let dir = tempfile::tempdir().expect("tempdir");
    let unasked = dir.path().join("unasked.pcap");
    let kept: Vec<_> = frames
        .iter()
        .filter(|(_, _, f)| {
            !ports(f).is_some_and(|(_, sport, dport, _)| sport == 111 || dport == 111)
        })
        .cloned()
        .collect();
    assert!(kept.len() < frames.len());
    write_pcap(&unasked, &kept);
    for workers in ["1", "2"] {
        assert_eq!(reversed(&unasked, workers), to_program, "{workers} workers");
    }
}
