//! Long captures and bad clocks: memory that does not grow over days of
//! packet time, and timestamps that jump.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Two million short connections over four days of packet time
/// (`gen-pcap --kind churn`), piped straight into `backflow read -`: the
/// resident memory backflow reports at each hour of packet time is, at the
/// end, within 10 % of what it was a quarter of the way.
#[test]
fn churn_over_days_does_not_grow_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(&cfg, "[eve]\nstats_interval = \"1h\"\n").expect("cfg");
    let mut gen_child = Command::new(common::bin())
        .args([
            "gen-pcap",
            "--kind",
            "churn",
            "--packets",
            "8M",
            "--concurrent",
            "20000",
            "-o",
            "-",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gen-pcap");
    let pipe = gen_child.stdout.take().expect("pipe");
    let out = Command::new(common::bin())
        .args(["read", "-", "-q", "--workers", "2", "-c"])
        .arg(&cfg)
        .arg("-o")
        .arg(dir.path())
        .stdin(Stdio::from(pipe))
        .output()
        .expect("backflow");
    assert!(gen_child.wait().expect("gen-pcap").success());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats =
        common::parse_lines(&std::fs::read(dir.path().join("stats.json")).unwrap_or_default());
    // One record per hour of packet time, and the final one.
    assert!(stats.len() >= 96, "{} stats records", stats.len());
    let last = stats.last().expect("final stats");
    assert_eq!(last["stats"]["flow"]["total"].as_u64(), Some(2_000_000));
    // Resident memory less the input read ahead: that pool fills (to a
    // fixed bound) as the workers happen to fall behind the reader, not as
    // packet time goes by.
    let rss = |r: &Value| {
        let p = &r["backflow"]["process"];
        let held = p["input_buffer_bytes"]
            .as_u64()
            .expect("input_buffer_bytes");
        p["rss_bytes"].as_u64().unwrap_or(0).saturating_sub(held)
    };
    let quarter = rss(&stats[stats.len() / 4]);
    // The last record written while the flows of the capture were live
    // (the final one comes after the end-of-input drain).
    let end = rss(&stats[stats.len() - 2]);
    assert!(quarter > 0);
    assert!(
        end as f64 <= quarter as f64 * 1.10,
        "RSS grew from {quarter} at a quarter to {end} at the end"
    );
}

/// A pcap writer for hand-made timelines.
struct Pcap(Vec<u8>);

impl Pcap {
    fn new() -> Pcap {
        Pcap(common::pcap_header())
    }

    /// A UDP datagram from 192.0.2.1:`sport` to 198.51.100.1:53 at `secs`.
    fn udp(&mut self, secs: u32, sport: u16) {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend([
            0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1,
        ]);
        f.extend(sport.to_be_bytes());
        f.extend([0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
        self.0.extend(common::pcap_record(secs, &f));
    }
}

/// A timeline with one timestamp from the year 2100, one from the past, and
/// a real gap of a day: the bad timestamps are counted and change nothing;
/// flows time out as documented (UDP 30 s idle) and the real gap, once
/// confirmed by four packets, ends the flows that were waiting.
#[test]
fn timestamps_that_jump_are_counted_and_handled() {
    let t0: u32 = 1_700_000_000;
    let mut p = Pcap::new();
    p.udp(t0, 1000); // flow A
    p.udp(t0 + 10, 2000); // flow B
    p.udp(4_102_444_800, 3000); // 2100-01-01: a bogus clock (flow C)
    p.udp(t0 + 11, 2000); // B again: time is still t0 + 11
    p.udp(t0 + 5, 1000); // backwards: taken as "now" (t0 + 11)
    p.udp(t0 + 20, 4000); // flow D
    // A day later, confirmed by four packets in a row.
    for i in 0..4u16 {
        p.udp(t0 + 86_400 + u32::from(i), 5000 + i);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("jumps.pcap");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&p.0))
        .expect("write");
    let run = common::read(&[path], &["--workers", "1"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let stats = run.last_stats();
    let src = &stats["backflow"]["source"];
    assert_eq!(
        src["time_jumps"], 2,
        "the bogus one and the real day: {src}"
    );
    assert_eq!(src["time_backwards"], 1, "{src}");
    let flows = run.of_type("flow");
    let by_port =
        |p: u64| -> Vec<&&Value> { flows.iter().filter(|f| f["src_port"] == p).collect() };
    // A, B and D timed out when the day was confirmed, not before.
    for (port, end) in [
        (1000, "2023-11-14T22:13:31"),
        (2000, "2023-11-14T22:13:31"),
        (4000, "2023-11-14T22:13:40"),
    ] {
        let f = by_port(port);
        assert_eq!(f.len(), 1, "port {port}: one flow record");
        assert_eq!(f[0]["flow"]["reason"], "timeout", "port {port}: {}", f[0]);
        assert!(
            f[0]["flow"]["end"].as_str().unwrap_or("").starts_with(end),
            "port {port}: {}",
            f[0]
        );
    }
    // B's second datagram counted in B (time did not jump with the bogus one).
    assert_eq!(by_port(2000)[0]["flow"]["pkts_toserver"], 2);
    // The bogus packet's flow lives in packet time as it was ("now"), and
    // ends with the rest of the first day.
    let c = by_port(3000);
    assert_eq!(c.len(), 1);
    assert!(
        c[0]["flow"]["start"]
            .as_str()
            .unwrap_or("")
            .starts_with("2023-11-14T22:13:30"),
        "{}",
        c[0]
    );
    // After the gap: the three packets before the confirmation were held at
    // the old time (their flows begin there and end when the day is
    // applied); the confirming packet's flow is still open at the end.
    for i in 0..3u64 {
        let f = by_port(5000 + i);
        assert_eq!(f[0]["flow"]["reason"], "timeout", "{}", f[0]);
        assert!(
            f[0]["flow"]["start"]
                .as_str()
                .unwrap_or("")
                .starts_with("2023-11-14T22:13:40"),
            "{}",
            f[0]
        );
    }
    let confirmed = by_port(5003);
    assert_eq!(confirmed[0]["flow"]["reason"], "shutdown");
    assert!(
        confirmed[0]["flow"]["start"]
            .as_str()
            .unwrap_or("")
            .starts_with("2023-11-15T22:13:23"),
        "{}",
        confirmed[0]
    );
}
