//! IP reputation end to end: feeds in each format hit on captures, entries
//! expire TTL after they were last seen (also across restarts), and a feed
//! changed on disk takes effect after SIGHUP without a restart.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{pcap, shared_or_skip};

fn config(dir: &Path, feeds: &str) -> PathBuf {
    let p = dir.join("backflow.toml");
    std::fs::write(
        &p,
        format!("home_nets = [\"10.0.0.0/8\", \"fd00::/8\"]\n[rules]\nfiles = []\n{feeds}"),
    )
    .expect("config");
    p
}

fn read(cfg: &Path, files: &[PathBuf]) -> common::Run {
    let run = common::read(files, &["--workers", "1", "-c", cfg.to_str().unwrap_or("")]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    run
}

fn reputation_alerts(run: &common::Run) -> Vec<Value> {
    run.of_type("alert")
        .into_iter()
        .filter(|a| a["alert"]["metadata"]["detector"][0] == "reputation")
        .cloned()
        .collect()
}

/// Flow records with `ip` as either endpoint.
fn flows_with(run: &common::Run, ip: &str) -> usize {
    run.of_type("flow")
        .iter()
        .filter(|f| f["src_ip"] == ip || f["dest_ip"] == ip)
        .count()
}

#[test]
fn each_feed_format_hits_once_per_flow_with_a_listed_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("list.txt"),
        "# scanners\n203.0.113.50 ; lab scanner\n192.0.2.0/24\n",
    )
    .expect("list");
    std::fs::write(
        d.join("cats.txt"),
        "1,CnC,Command and control\n2,Scanner,Scanners\n",
    )
    .expect("cats");
    std::fs::write(
        d.join("rep.iprep"),
        "2001:db8:ff::50,2,90\n198.51.100.1,1,127\n",
    )
    .expect("iprep");
    std::fs::write(
        d.join("feed.csv"),
        "first_seen;ip;note\n2026-01-01;\"203.0.113.51\";sweeper\n2026-01-02;not-an-ip;x\n",
    )
    .expect("csv");
    let cfg = config(
        d,
        "[[reputation]]\nname = \"lab-list\"\ncategory = \"scanner\"\nseverity = 3\npath = \"list.txt\"\n\
         [[reputation]]\nname = \"lab-iprep\"\nformat = \"iprep\"\ncategories_file = \"cats.txt\"\npath = \"rep.iprep\"\nseverity = 1\n\
         [[reputation]]\nname = \"lab-csv\"\nformat = \"csv\"\ncolumn = \"ip\"\ndelimiter = \";\"\npath = \"feed.csv\"\nscore = 60\n",
    );
    let files = [
        pcap("lab/inbound-scan-syn.pcap"),
        pcap("lab/ipv6-scan-syn.pcap"),
        pcap("lab/inbound-sweep-tcp22.pcap"),
    ];
    let run = read(&cfg, &files);
    let alerts = reputation_alerts(&run);
    for (ip, feed, category, score, severity) in [
        ("203.0.113.50", "lab-list", "scanner", 127, 3),
        ("2001:db8:ff::50", "lab-iprep", "Scanner", 90, 1),
        ("203.0.113.51", "lab-csv", "lab-csv", 60, 2),
    ] {
        let mine: Vec<&Value> = alerts
            .iter()
            .filter(|a| a["alert"]["source"]["ip"] == ip)
            .collect();
        assert!(flows_with(&run, ip) > 0, "{ip} is in the captures");
        assert_eq!(mine.len(), flows_with(&run, ip), "{ip}: one alert per flow");
        let m = &mine[0]["alert"]["metadata"];
        assert_eq!(m["feed"], serde_json::json!([feed]), "{ip}");
        assert_eq!(m["category"], serde_json::json!([category]), "{ip}");
        assert_eq!(m["score"], serde_json::json!([score]), "{ip}");
        assert_eq!(mine[0]["alert"]["severity"], severity, "{ip}");
        assert_eq!(mine[0]["alert"]["signature_id"], 9_100_010);
    }
    assert_eq!(
        alerts.len(),
        ["203.0.113.50", "2001:db8:ff::50", "203.0.113.51"]
            .iter()
            .map(|ip| flows_with(&run, ip))
            .sum::<usize>()
    );
    let stats = run.last_stats();
    let r = &stats["backflow"]["rules"];
    // Two list entries, two iprep, one good csv line.
    assert_eq!(r["reputation_entries"], 5, "{r}");
    assert_eq!(r["reputation_hits"], alerts.len() as u64, "{r}");
    assert!(
        r["reputation_lookups"].as_u64() >= Some(alerts.len() as u64),
        "{r}"
    );
    if let Some(shared) = shared_or_skip("eve-check on reputation alerts") {
        let (ok, text) = common::eve_check(&shared, &run.eve_path()).expect("eve-check runs");
        assert!(ok, "{text}");
    }
}

#[test]
fn an_expired_entry_no_longer_hits_even_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let feed = d.join("list.txt");
    std::fs::write(&feed, "203.0.113.50\n").expect("feed");
    let cfg = config(
        d,
        "[[reputation]]\nname = \"short\"\nttl = \"2s\"\npath = \"list.txt\"\n",
    );
    let capture = [pcap("lab/inbound-scan-syn.pcap")];
    // First run: the feed is new, its entry is seen now.
    let first = reputation_alerts(&read(&cfg, &capture));
    assert!(!first.is_empty());
    let state = std::fs::read_to_string(d.join("list.txt.state")).expect("state file");
    assert!(state.contains("203.0.113.50/32\tshort\t127\t"), "{state}");
    // Past the TTL, the same (unchanged) feed: a restart is not a new
    // sighting, the entry expired.
    std::thread::sleep(Duration::from_millis(3500));
    let second = reputation_alerts(&read(&cfg, &capture));
    assert!(second.is_empty(), "{} alerts after expiry", second.len());
    // The feed publishes it again (a new version of the file): it hits again.
    std::fs::write(&feed, "# refreshed\n203.0.113.50\n").expect("feed");
    let third = reputation_alerts(&read(&cfg, &capture));
    assert_eq!(third.len(), first.len());
}

/// Ethernet/IPv4/UDP frame with `len` bytes of payload.
fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut v, &vec![b'q'; len])
        .expect("frame");
    v
}

/// A running `backflow read -` fed frame by frame, its stderr collected.
struct Feeder {
    child: Child,
    sent: u32,
    stderr: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Feeder {
    fn start(cfg: &Path, out: &Path) -> Feeder {
        let mut child = common::start_stdin_read(&["--log", "info"], cfg, out);
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().expect("lock").push(l);
            }
        });
        Feeder {
            child,
            sent: 0,
            stderr,
            reader: Some(reader),
        }
    }

    /// Sends a frame one second of packet time after the previous one.
    fn send(&mut self, frame: &[u8]) {
        let rec = common::pcap_record(1_700_000_000 + self.sent, frame);
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(&rec).expect("feed");
        stdin.flush().expect("flush");
        self.sent += 1;
    }

    fn stderr_count(&self, needle: &str) -> usize {
        self.stderr
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn finish(mut self) -> (i32, String) {
        drop(self.child.stdin.take());
        let status = self.child.wait().expect("wait");
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let text = self.stderr.lock().expect("lock").join("\n");
        (status.code().unwrap_or(-1), text)
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_feed_changed_on_disk_takes_effect_after_sighup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let feed = d.join("list.txt");
    std::fs::write(&feed, "192.0.2.99\n").expect("feed");
    // check_interval 0: the file is only re-read on SIGHUP.
    let cfg = config(
        d,
        "[eve]\nstats_file = \"\"\n[[reputation]]\nname = \"hup\"\npath = \"list.txt\"\ncheck_interval = \"0s\"\n",
    );
    let out = d.join("out");
    std::fs::create_dir(&out).expect("out dir");
    let listed = [198, 51, 100, 7];
    let mut f = Feeder::start(&cfg, &out);
    wait_for("the first load", Duration::from_secs(20), || {
        f.stderr_count("reputation feed `hup`") > 0
    });
    // Before: ten flows to the address, then other traffic (one flow) until
    // they have ended and been written: packet time moves on, and the
    // reader and workers, which take input in batches, get to them.
    for i in 0..10 {
        f.send(&udp([10, 0, 0, 5], 40_000 + i, listed, 53, 5));
    }
    let eve = out.join("eve.json");
    let before_written = || {
        common::parse_lines(&std::fs::read(&eve).unwrap_or_default())
            .iter()
            .filter(|r| r["event_type"] == "flow" && r["dest_ip"] == "198.51.100.7")
            .count()
    };
    let filler = udp([10, 0, 0, 6], 50_000, [10, 0, 0, 7], 9, 1400);
    let start = Instant::now();
    while before_written() < 10 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the first ten flows never came out"
        );
        for _ in 0..200 {
            f.send(&filler);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(before_written(), 10);
    let cut = f.sent;
    // The feed now lists the address; nothing changes until SIGHUP.
    std::fs::write(&feed, "192.0.2.99\n198.51.100.7\n").expect("feed");
    let st = Command::new("kill")
        .args(["-HUP", &f.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    wait_for("the reload", Duration::from_secs(20), || {
        f.stderr_count("SIGHUP: re-reading reputation feeds") == 1
            && f.stderr_count("(new version read)") == 2
    });
    for i in 0..10 {
        f.send(&udp([10, 0, 0, 5], 41_000 + i, listed, 53, 5));
    }
    let (code, stderr) = f.finish();
    assert_eq!(code, 0, "{stderr}");
    let records = common::parse_lines(&std::fs::read(&eve).unwrap_or_default());
    let hits: Vec<&Value> = records
        .iter()
        .filter(|r| {
            r["event_type"] == "alert" && r["alert"]["metadata"]["detector"][0] == "reputation"
        })
        .collect();
    assert_eq!(hits.len(), 10, "{stderr}");
    for h in &hits {
        assert!(h["pcap_cnt"].as_u64().unwrap_or(0) > u64::from(cut), "{h}");
        assert_eq!(h["alert"]["source"]["ip"], "198.51.100.7");
        assert_eq!(h["alert"]["target"]["ip"], "10.0.0.5");
    }
}
