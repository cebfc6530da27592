//! A home host's SYN from a well-known server port is a reversed role
//! however busy the host is as a client; only a host probing (its
//! connection attempts refused or unanswered) is let off, as scanners
//! cycle through source ports. Reserved ports (512-1023) that clients bind
//! are not server ports.

mod common;

use common::capture::Capture;
use common::read;

const HOST: [u8; 4] = [10, 0, 0, 20];
const OUTSIDE: [u8; 4] = [203, 0, 113, 9];

/// The reversed-role alerts of a run over `cap`.
fn reversed(cap: &Capture) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("host.pcap");
    std::fs::write(&path, &cap.bytes).expect("write");
    let run = read(&[path], &["--workers", "1"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    run.of_type("alert")
        .into_iter()
        .filter(|a| a["alert"]["metadata"]["detector"][0] == "reversed_role")
        .cloned()
        .collect()
}

/// The reversed-role alerts of a run over a capture where `HOST` first
/// makes eight connections to eight other hosts' port 5000-5007
/// (`answered`: completed, else refused), then sends a SYN from its port
/// 22 to an outside host.
fn reversed_after(answered: bool) -> Vec<serde_json::Value> {
    let mut cap = Capture::new();
    for i in 0..8u8 {
        let server = ([198, 51, 100, 10 + i], 5000 + u16::from(i));
        if answered {
            cap.open((HOST, 40000 + u16::from(i)), server);
        } else {
            cap.refused((HOST, 40000 + u16::from(i)), server);
        }
    }
    cap.open((HOST, 22), (OUTSIDE, 4444));
    reversed(&cap)
}

#[test]
fn a_busy_client_is_not_a_scanner() {
    let got = reversed_after(true);
    assert_eq!(got.len(), 1, "{got:?}");
    let a = &got[0]["alert"];
    assert_eq!(a["source"]["ip"], "10.0.0.20");
    assert_eq!(a["source"]["port"], 22);
    assert_eq!(a["metadata"]["reason"][0], "well_known_server_port");
    // The same host, its attempts refused: probing, its source port says
    // nothing.
    let got = reversed_after(false);
    assert!(got.is_empty(), "{got:?}");
}

/// rsh: the client connects from a reserved port to port 514 and names
/// another of its reserved ports, which the server connects to, from a
/// reserved port, for the command's stderr. Neither that connection nor
/// the client's next ones from the port it answered on (reserved ports are
/// handed out downwards and reused) are reversed roles.
#[test]
fn rsh_stderr_connections_and_reused_client_ports() {
    let (client, server) = ([10, 0, 0, 5], [10, 0, 0, 6]);
    let mut cap = Capture::new();
    let mut session = cap.open((client, 1023), (server, 514));
    cap.segment(&mut session, true, false, b"1022\0");
    cap.open((server, 1023), (client, 1022));
    cap.open((client, 1022), (server, 514));
    cap.open((client, 1022), (server, 2049));
    let got = reversed(&cap);
    assert!(got.is_empty(), "{got:?}");
    // The same connection back without the session: a server port (1023)
    // of the home host opens a connection.
    let mut cap = Capture::new();
    cap.open((server, 1023), (client, 1022));
    let got = reversed(&cap);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["alert"]["source"]["port"], 1023);
}
