//! FTP data connections through the whole pipeline: related to their
//! control session by the ports it negotiated, with any number of workers.

mod common;

use std::path::PathBuf;

use common::capture::Capture;

const SERVER: [u8; 4] = [10, 0, 0, 21];

/// Two clients of a published FTP server: one whose passive-mode reply
/// comes whole, then uses the negotiated port and then opens a backdoor
/// port; one whose reply is split across two segments. Background pairs
/// (outside hosts, nothing to judge) spread the frames over the workers.
fn capture(dir: &std::path::Path) -> PathBuf {
    let (a, b) = ([192, 0, 2, 50], [192, 0, 2, 51]);
    let mut cap = Capture::new();
    let mut ctl_a = cap.open((a, 40000), (SERVER, 21));
    let mut ctl_b = cap.open((b, 40000), (SERVER, 21));
    cap.segment(&mut ctl_a, false, false, b"220 ready\r\n");
    cap.segment(&mut ctl_b, false, false, b"220 ready\r\n");
    for i in 0..32u8 {
        let mut bg = cap.open(([198, 51, 100, i], 50000), ([203, 0, 113, i], 80));
        cap.segment(&mut bg, true, false, b"GET / HTTP/1.1\r\n\r\n");
    }
    cap.segment(&mut ctl_a, true, false, b"PASV\r\n");
    cap.segment(
        &mut ctl_a,
        false,
        false,
        b"227 Entering Passive Mode (10,0,0,21,195,203).\r\n",
    );
    cap.segment(&mut ctl_b, true, false, b"PASV\r\n");
    cap.segment(
        &mut ctl_b,
        false,
        false,
        b"227 Entering Passive Mode (10,0,0",
    );
    cap.segment(&mut ctl_b, false, false, b",21,195,204).\r\n");
    let mut data_a = cap.open((a, 40001), (SERVER, 50123));
    cap.segment(&mut data_a, false, false, b"file");
    let mut data_b = cap.open((b, 40001), (SERVER, 50124));
    cap.segment(&mut data_b, false, false, b"file");
    let mut backdoor = cap.open((a, 40002), (SERVER, 6200));
    cap.segment(&mut backdoor, false, false, b"uid=0(root)\n");
    let path = dir.join("ftp.pcap");
    std::fs::write(&path, &cap.bytes).expect("write");
    path
}

#[test]
fn data_connections_are_judged_by_the_ports_their_session_negotiated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = capture(dir.path());
    let cfg = dir.path().join("ftp.toml");
    std::fs::write(
        &cfg,
        "home_nets = [\"10.0.0.0/8\"]\n\
         [[hosts]]\naddr = \"10.0.0.21\"\nservices = [\"tcp/21\"]\n\
",
    )
    .expect("config");
    for workers in ["1", "2", "4"] {
        for _ in 0..3 {
            let run = common::read(
                std::slice::from_ref(&pcap),
                &["--workers", workers, "-c", cfg.to_str().expect("path")],
            );
            assert_eq!(run.status, 0, "{}", run.stderr);
            assert_eq!(run.of_type("flow").len(), 2 + 32 + 3, "{workers} workers");
            let alerts: Vec<_> = run
                .of_type("alert")
                .iter()
                .map(|a| {
                    (
                        a["alert"]["metadata"]["detector"][0]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        a["src_ip"].as_str().unwrap_or("").to_string(),
                        a["dest_port"].as_u64().unwrap_or(0),
                    )
                })
                .collect();
            assert_eq!(
                alerts,
                [(
                    "unexpected_inbound".to_string(),
                    "192.0.2.50".to_string(),
                    6200
                )],
                "{workers} workers"
            );
        }
    }
}
