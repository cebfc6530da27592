//! Outputs against real servers: redis-server, rsyslogd, a tmpfs that fills
//! up, and SIGHUP rotation while events are written.
//!
//! The servers are Debian packages that `.ci/run` installs; where one is
//! missing outside CI the test says so and is skipped. Events must flow
//! during the run, so backflow reads a capture fed through a pipe at a
//! controlled pace, one packet per second of packet time, with
//! `stats_interval = "1s"`: every packet yields a `stats` record.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn tool(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!("{name} is required in CI (.ci/run installs it)");
    }
    eprintln!("skipped: {name} is not installed (apt-get install {name})");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// How long a real server (redis-server, rsyslogd) and backflow get to
/// start, connect and deliver, on a CI machine that may be busy building.
const PATIENCE: Duration = Duration::from_secs(30);

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An Ethernet/IPv4/UDP frame from 192.0.2.1:(1000+i) to 198.51.100.1:53.
fn frame(i: u32) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend([
        0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1,
    ]);
    f.extend(((1000 + i) as u16).to_be_bytes());
    f.extend([0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
    f
}

/// A running `backflow read -` fed packet by packet.
struct Feeder {
    child: Child,
    dir: tempfile::TempDir,
    sent: u32,
}

impl Feeder {
    fn start(config: &str, outdir: Option<&Path>) -> Feeder {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("cfg.toml");
        std::fs::write(
            &cfg,
            format!("[eve]\nstats_interval = \"1s\"\nstats_file = \"\"\n{config}"),
        )
        .expect("config");
        let out = outdir.map_or_else(|| dir.path().to_path_buf(), Path::to_path_buf);
        let child = common::start_stdin_read(&[], &cfg, &out);
        Feeder {
            child,
            dir,
            sent: 0,
        }
    }

    /// Sends `n` packets, one second of packet time apart, `pace` apart in wall time.
    fn send(&mut self, n: u32, pace: Duration) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        for _ in 0..n {
            let rec = common::pcap_record(1_700_000_000 + self.sent, &frame(self.sent));
            stdin.write_all(&rec).expect("feed");
            stdin.flush().expect("flush");
            self.sent += 1;
            std::thread::sleep(pace);
        }
    }

    fn finish(mut self) -> (i32, String, tempfile::TempDir) {
        drop(self.child.stdin.take());
        let out = self.child.wait_with_output().expect("wait");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            self.dir,
        )
    }
}

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(bin: &Path, port: u16) -> Redis {
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        let r = Redis { child, port };
        wait_for("redis", PATIENCE, || r.client().is_some());
        r
    }
    fn client(&self) -> Option<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .ok()?
            .get_connection()
            .ok()
    }
    fn list(&self, key: &str) -> Vec<String> {
        let mut c = self.client().expect("redis connection");
        redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(&mut c)
            .expect("LRANGE")
    }
    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn eve_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn redis_receives_every_event_once() {
    let Some(bin) = tool("redis-server") else {
        return;
    };
    let redis = Redis::start(&bin, free_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[outputs]]\ntype = \"file\"\n[[outputs]]\ntype = \"redis\"\naddress = \"127.0.0.1:{}\"\nkey = \"eve\"\nmode = \"rpush\"\nbatch = 64\npolicy = \"block\"\n",
            redis.port
        ),
    )
    .expect("cfg");
    let files: Vec<PathBuf> = [
        "lab/inbound-scan-syn.pcap",
        "lab/reversed-role.pcap",
        "engine/malformed-frames.pcap",
    ]
    .iter()
    .map(|f| common::pcap(f))
    .collect();
    let run = common::read(
        &files,
        &["--workers", "2", "-c", cfg.to_str().unwrap_or("")],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let mut want: Vec<String> = String::from_utf8_lossy(&run.eve)
        .lines()
        .map(str::to_string)
        .collect();
    let mut got = redis.list("eve");
    assert!(want.len() > 1000, "{} events", want.len());
    want.sort();
    got.sort();
    assert_eq!(got.len(), want.len(), "every event once");
    assert!(got == want, "redis holds exactly the events of eve.json");
}

/// Redis goes away in the middle of a run and comes back.
fn redis_outage(policy: &str) -> (u64, u64, Vec<String>, String) {
    let bin = tool("redis-server").expect("checked by the caller");
    let port = free_port();
    let redis = Redis::start(&bin, port);
    let mut feed = Feeder::start(
        &format!(
            "[[outputs]]\ntype = \"file\"\n[[outputs]]\ntype = \"redis\"\naddress = \"127.0.0.1:{port}\"\nkey = \"eve\"\npolicy = \"{policy}\"\nbuffer = 20\nflush_timeout = \"10s\"\n"
        ),
        None,
    );
    feed.send(20, Duration::from_millis(30));
    wait_for("events in redis", PATIENCE, || {
        !redis.list("eve").is_empty()
    });
    let before = redis.list("eve");
    redis.stop();
    feed.send(40, Duration::from_millis(30));
    let redis = Redis::start(&bin, port);
    feed.send(20, Duration::from_millis(30));
    let (code, stderr, dir) = feed.finish();
    assert_eq!(code, 0, "{stderr}");
    let file = eve_lines(&dir.path().join("eve.json"));
    let mut got = before;
    got.extend(redis.list("eve"));
    let summary = stderr
        .lines()
        .find(|l| l.contains("output redis"))
        .unwrap_or_default()
        .to_string();
    let num = |label: &str| -> u64 {
        summary
            .split(", ")
            .find_map(|p| {
                p.strip_suffix(label)
                    .and_then(|n| n.trim().rsplit(' ').next())
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    };
    (file.len() as u64, num(" dropped"), got, stderr)
}

#[test]
fn redis_outage_with_drop_policy_counts_what_it_drops() {
    if tool("redis-server").is_none() {
        return;
    }
    let (total, dropped, got, stderr) = redis_outage("drop");
    assert!(
        stderr.contains("output unreachable") || stderr.contains("write failed"),
        "{stderr}"
    );
    assert!(stderr.contains("reconnected"), "{stderr}");
    assert!(
        dropped > 0,
        "the 20-event buffer overflowed during the outage: {stderr}"
    );
    // Each event was delivered once or counted as dropped.
    let unique: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "no event twice");
    assert_eq!(got.len() as u64 + dropped, total, "{stderr}");
}

#[test]
fn redis_outage_with_block_policy_loses_nothing() {
    if tool("redis-server").is_none() {
        return;
    }
    let (total, dropped, got, stderr) = redis_outage("block");
    assert!(stderr.contains("reconnected"), "{stderr}");
    assert_eq!(dropped, 0);
    let unique: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!(
        unique.len() as u64,
        total,
        "every event delivered once: {stderr}"
    );
}

/// Starts rsyslogd in the foreground with `config`, its state and pid
/// file in `dir`; the caller stops it.
fn start_rsyslog(bin: &Path, dir: &Path, config: &str) -> Child {
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!("global(workDirectory=\"{}\")\n{config}", dir.display()),
    )
    .expect("conf");
    Command::new(bin)
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslog.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rsyslogd")
}

#[test]
fn rsyslog_receives_eve_over_tcp_and_udp() {
    let Some(bin) = tool("rsyslogd") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let (tcp, udp) = (free_port(), free_port());
    let (out_tcp, out_udp) = (dir.path().join("tcp.log"), dir.path().join("udp.log"));
    let mut rsyslog = start_rsyslog(
        &bin,
        dir.path(),
        &format!(
            r#"module(load="imtcp")
module(load="imudp")
template(name="msgonly" type="string" string="%msg%\n")
ruleset(name="t") {{ action(type="omfile" file="{t}" template="msgonly") }}
ruleset(name="u") {{ action(type="omfile" file="{u}" template="msgonly") }}
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="t")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="u")
"#,
            t = out_tcp.display(),
            u = out_udp.display()
        ),
    );
    wait_for("rsyslog tcp", PATIENCE, || {
        std::net::TcpStream::connect(("127.0.0.1", tcp)).is_ok()
    });
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[outputs]]\ntype = \"file\"\n[[outputs]]\ntype = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{tcp}\"\n[[outputs]]\ntype = \"syslog\"\ntransport = \"udp\"\naddress = \"127.0.0.1:{udp}\"\ntypes = [\"alert\", \"flow\"]\n"
        ),
    )
    .expect("cfg");
    let run = common::read(
        &[common::pcap("lab/reversed-role.pcap")],
        &["--workers", "1", "-c", cfg.to_str().unwrap_or("")],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let want: Vec<Value> = run.records.clone();
    let want_alert_flow: Vec<Value> = want
        .iter()
        .filter(|r| r["event_type"] == "alert" || r["event_type"] == "flow")
        .cloned()
        .collect();
    let parsed = |p: &Path| -> Vec<Value> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l.trim()).ok())
            .collect()
    };
    wait_for("rsyslog files", PATIENCE, || {
        parsed(&out_tcp).len() >= want.len() && parsed(&out_udp).len() >= want_alert_flow.len()
    });
    let _ = rsyslog.kill();
    let _ = rsyslog.wait();
    let key = |v: &Value| v.to_string();
    let sorted = |v: &[Value]| {
        let mut k: Vec<String> = v.iter().map(key).collect();
        k.sort();
        k
    };
    assert_eq!(
        sorted(&parsed(&out_tcp)),
        sorted(&want),
        "TCP: the same EVE records"
    );
    assert_eq!(
        sorted(&parsed(&out_udp)),
        sorted(&want_alert_flow),
        "UDP: the alert and flow records"
    );
}

#[test]
fn sighup_rotation_keeps_every_event_exactly_once() {
    let mut feed = Feeder::start("", None);
    feed.send(15, Duration::from_millis(20));
    let eve = feed.dir.path().join("eve.json");
    wait_for("first events on disk", PATIENCE, || {
        !eve_lines(&eve).is_empty()
    });
    let rotated = feed.dir.path().join("eve.json.1");
    std::fs::rename(&eve, &rotated).expect("rename");
    let pid = feed.child.id();
    let st = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    feed.send(15, Duration::from_millis(20));
    let (code, stderr, dir) = feed.finish();
    assert_eq!(code, 0, "{stderr}");
    let (a, b) = (
        eve_lines(&dir.path().join("eve.json.1")),
        eve_lines(&dir.path().join("eve.json")),
    );
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both files have events: {} + {}",
        a.len(),
        b.len()
    );
    let mut all: Vec<String> = a.into_iter().chain(b).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "no event twice");
    // 30 packets one second apart: a stats record per second, the final
    // one, and the flow records of the 30 UDP flows.
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for l in &all {
        let v: Value = serde_json::from_str(l).expect("whole JSON lines");
        *kinds
            .entry(v["event_type"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    assert_eq!(kinds.get("flow"), Some(&30), "{kinds:?}");
    assert_eq!(kinds.get("stats"), Some(&30), "{kinds:?}");
}

#[test]
fn file_sink_on_a_full_disk_drops_counts_and_resumes() {
    // Needs root to mount a tmpfs.
    let mnt = tempfile::tempdir().expect("tempdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(mnt.path())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must mount the tmpfs"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.path().to_path_buf());
    // Leave about 8 KiB free.
    let filler = mnt.path().join("filler");
    std::fs::write(&filler, vec![0u8; 56 * 1024]).expect("filler");
    let mut feed = Feeder::start("", Some(mnt.path()));
    feed.send(40, Duration::from_millis(15));
    std::thread::sleep(Duration::from_millis(800));
    let eve = mnt.path().join("eve.json");
    let at_full = eve_lines(&eve).len();
    // Space returns.
    std::fs::remove_file(&filler).expect("free space");
    feed.send(10, Duration::from_millis(15));
    let (code, stderr, _dir) = feed.finish();
    assert_eq!(code, 0, "no crash: {stderr}");
    assert!(stderr.contains("output write failed"), "logged: {stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.contains("output file:"))
        .expect("the summary reports the sink");
    assert!(!summary.contains(" 0 dropped"), "{summary}");
    let lines = eve_lines(&eve);
    assert!(
        lines.len() > at_full,
        "writing resumed after space returned ({at_full} -> {})",
        lines.len()
    );
    for l in &lines {
        serde_json::from_str::<Value>(l)
            .unwrap_or_else(|e| panic!("a partial line was left in the file: {e}: {l}"));
    }
    // The last packets' events made it.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"event_type\":\"flow\"") && l.contains("\"src_port\":1049")),
        "{summary}"
    );
}

/// Writes a config with the given `[[outputs]]` text and runs `backflow read`
/// over `files` with one worker.
fn read_with_outputs(files: &[PathBuf], outputs: &str) -> common::Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(&cfg, outputs).expect("cfg");
    let run = common::read(files, &["--workers", "1", "-c", cfg.to_str().unwrap_or("")]);
    drop(dir);
    run
}

fn sorted(lines: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = lines
        .into_iter()
        .map(|l| l.trim_end().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn unix_datagram_and_stream_sockets_receive_every_event() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::{UnixDatagram, UnixListener};
    let dir = tempfile::tempdir().expect("tempdir");
    let (dgram_path, stream_path) = (dir.path().join("eve.dgram"), dir.path().join("eve.sock"));
    let dgram = UnixDatagram::bind(&dgram_path).expect("bind datagram socket");
    dgram
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let listener = UnixListener::bind(&stream_path).expect("bind stream socket");
    let dgram_reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = dgram.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got
    });
    let stream_reader = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept");
        BufReader::new(conn)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let run = read_with_outputs(
        &[common::pcap("lab/reversed-role.pcap")],
        &format!(
            "[[outputs]]\ntype = \"file\"\n\
             [[outputs]]\ntype = \"unix_dgram\"\npath = \"{}\"\ntypes = [\"alert\", \"flow\"]\npolicy = \"block\"\n\
             [[outputs]]\ntype = \"unix_stream\"\npath = \"{}\"\npolicy = \"block\"\n",
            dgram_path.display(),
            stream_path.display()
        ),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let all: Vec<String> = String::from_utf8_lossy(&run.eve)
        .lines()
        .map(str::to_string)
        .collect();
    let alert_flow: Vec<String> = run
        .records
        .iter()
        .zip(&all)
        .filter(|(r, _)| r["event_type"] == "alert" || r["event_type"] == "flow")
        .map(|(_, l)| l.clone())
        .collect();
    assert!(alert_flow.len() >= 3, "{}", all.len());
    assert_eq!(
        sorted(stream_reader.join().expect("stream reader")),
        sorted(all),
        "unix_stream: every event once"
    );
    assert_eq!(
        sorted(dgram_reader.join().expect("datagram reader")),
        sorted(alert_flow),
        "unix_dgram: the alert and flow events, once each"
    );
}

#[test]
fn redis_channel_subscribers_receive_the_alerts() {
    let Some(bin) = tool("redis-server") else {
        return;
    };
    let redis = Redis::start(&bin, free_port());
    let mut sub = redis.client().expect("subscriber");
    let (tx, rx) = std::sync::mpsc::channel();
    let subscribed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = subscribed.clone();
    let listener = std::thread::spawn(move || {
        let mut ps = sub.as_pubsub();
        ps.subscribe("alerts").expect("SUBSCRIBE");
        ps.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        while let Ok(msg) = ps.get_message() {
            let payload: String = msg.get_payload().expect("payload");
            if tx.send(payload).is_err() {
                break;
            }
        }
    });
    wait_for("subscription", PATIENCE, || {
        subscribed.load(std::sync::atomic::Ordering::SeqCst)
    });
    let run = read_with_outputs(
        &[common::pcap("lab/reversed-role.pcap")],
        &format!(
            "[[outputs]]\ntype = \"file\"\n\
             [[outputs]]\ntype = \"redis\"\naddress = \"127.0.0.1:{}\"\nmode = \"publish\"\nkey = \"alerts\"\ntypes = [\"alert\"]\npolicy = \"block\"\n",
            redis.port
        ),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    listener.join().expect("listener");
    let got: Vec<String> = rx.try_iter().collect();
    let want: Vec<String> = String::from_utf8_lossy(&run.eve)
        .lines()
        .filter(|l| l.contains("\"event_type\":\"alert\""))
        .map(str::to_string)
        .collect();
    assert!(!want.is_empty(), "the capture raises alerts");
    assert_eq!(sorted(got), sorted(want), "each alert published once");
}

#[test]
fn rsyslog_receives_eve_over_the_local_socket() {
    let Some(bin) = tool("rsyslogd") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("log.sock");
    let out = dir.path().join("local.log");
    let mut rsyslog = start_rsyslog(
        &bin,
        dir.path(),
        &format!(
            r#"module(load="imuxsock" SysSock.Use="off")
template(name="msgonly" type="string" string="%syslogfacility-text%.%syslogseverity-text% %app-name% %msg%\n")
ruleset(name="l") {{ action(type="omfile" file="{o}" template="msgonly") }}
input(type="imuxsock" Socket="{s}" Ruleset="l" UseSpecialParser="off" ParseHostname="on")
"#,
            o = out.display(),
            s = sock.display()
        ),
    );
    wait_for("rsyslog socket", PATIENCE, || sock.exists());
    let run = read_with_outputs(
        &[common::pcap("lab/reversed-role.pcap")],
        &format!(
            "[[outputs]]\ntype = \"file\"\n\
             [[outputs]]\ntype = \"syslog\"\ntransport = \"unix\"\naddress = \"{}\"\nfacility = \"local3\"\nseverity = \"warning\"\ntypes = [\"alert\"]\n",
            sock.display()
        ),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let want: Vec<&Value> = run.of_type("alert");
    assert!(!want.is_empty());
    let parsed = || -> Vec<(String, Value)> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (head, json) = l.split_once(" {")?;
                Some((
                    head.to_string(),
                    serde_json::from_str(&format!("{{{json}")).ok()?,
                ))
            })
            .collect()
    };
    wait_for("rsyslog file", PATIENCE, || parsed().len() >= want.len());
    let _ = rsyslog.kill();
    let _ = rsyslog.wait();
    let got = parsed();
    for (head, _) in &got {
        assert_eq!(
            head, "local3.warning backflow",
            "facility, severity and app name"
        );
    }
    let mut a: Vec<String> = got.iter().map(|(_, v)| v.to_string()).collect();
    let mut b: Vec<String> = want.iter().map(|v| v.to_string()).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "the same alert records");
}

#[test]
fn a_sink_that_cannot_flush_reports_what_it_lost() {
    // Nothing listens on this port: the sink never connects, holds what
    // its buffer takes (block policy), and gives up after flush_timeout.
    let port = free_port();
    let started = Instant::now();
    let run = read_with_outputs(
        &[common::pcap("lab/reversed-role.pcap")],
        &format!(
            "[[outputs]]\ntype = \"file\"\n\
             [[outputs]]\ntype = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{port}\"\npolicy = \"block\"\nflush_timeout = \"1s\"\n"
        ),
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the exit is bounded by the flush timeout"
    );
    let total = run.records.len();
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("could not deliver everything before exit"))
        .unwrap_or_else(|| panic!("the lost events are reported: {}", run.stderr));
    assert!(
        line.contains(&format!("sink=syslog:tcp://127.0.0.1:{port}")),
        "{line}"
    );
    assert!(
        line.contains(&format!("lost={total}")),
        "every one of the {total} events is reported lost: {line}"
    );
}

/// Reads the lab's inbound SYN scan with one worker into `DIR/out` through
/// a file output rotating at `size` and keeping `keep` files; returns the
/// output directory.
fn read_rotating(dir: &std::path::Path, size: &str, keep: u32) -> std::path::PathBuf {
    let cfg = dir.join("cfg.toml");
    std::fs::write(
        &cfg,
        format!("[[outputs]]\ntype = \"file\"\nrotate_size = \"{size}\"\nkeep = {keep}\n"),
    )
    .expect("cfg");
    let out = dir.join("out");
    let st = Command::new(common::bin())
        .arg("read")
        .arg(common::pcap("lab/inbound-scan-syn.pcap"))
        .args(["-q", "--workers", "1", "-c"])
        .arg(&cfg)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run");
    assert!(st.success());
    out
}

#[test]
fn size_rotation_keeps_every_event_in_the_kept_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = read_rotating(dir.path(), "64KiB", 100);
    let files = [common::pcap("lab/inbound-scan-syn.pcap")];
    // The same run without rotation, with a config beside the other (rules
    // are found relative to the config file).
    let plain_cfg = dir.path().join("plain.toml");
    std::fs::write(&plain_cfg, "").expect("cfg");
    let plain = common::read(
        &files,
        &["--workers", "1", "-c", plain_cfg.to_str().unwrap_or("")],
    );
    let mut parts = vec![out.join("eve.json")];
    let mut n = 1;
    while out.join(format!("eve.json.{n}")).exists() {
        parts.push(out.join(format!("eve.json.{n}")));
        n += 1;
    }
    assert!(
        parts.len() > 3,
        "the run rotated several times: {}",
        parts.len()
    );
    for p in &parts[1..] {
        let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(
            len >= 64 * 1024,
            "{} rotated at the size limit ({len})",
            p.display()
        );
    }
    let got: Vec<String> = parts.iter().flat_map(|p| eve_lines(p)).collect();
    let norm = |lines: Vec<String>| -> Vec<String> {
        // Stats records carry wall-clock-free packet time only; all lines
        // are comparable as they are.
        sorted(lines)
    };
    let want: Vec<String> = String::from_utf8_lossy(&plain.eve)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        norm(got),
        norm(want),
        "every event exactly once across the files"
    );
}

#[test]
fn size_rotation_keeps_at_most_keep_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = read_rotating(dir.path(), "16KiB", 2);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("out dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("eve.json"))
        .collect();
    names.sort();
    assert_eq!(names, ["eve.json", "eve.json.1", "eve.json.2"]);
}
