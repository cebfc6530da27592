//! Live capture on a real (virtual) network: two network namespaces joined
//! by a veth pair, real traffic from curl, nmap and hping3, backflow
//! capturing on one end, stopped with SIGTERM.
//!
//! The namespaces are created by each test under its own names, hold only
//! documentation addresses (192.0.2.0/24), have no route anywhere else, and
//! are deleted by name when the test ends. Every generator is bounded
//! (`timeout`, packet counts). Needs root, `ip`, `nmap`, `hping3`, `curl`
//! and python3 (`.ci/run` installs them); elsewhere the tests say why they
//! are skipped.

#![cfg(feature = "live")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether this machine can run the live tests; says why not when it cannot.
fn can_run(test: &str, tools: &[&str]) -> bool {
    let mut missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if !have("ip") {
        missing.push("ip (iproute2)");
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if root && missing.is_empty() {
        return true;
    }
    let why = if root {
        format!("missing {}", missing.join(", "))
    } else {
        "network namespaces need root".to_string()
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: the live tests must run in CI: {why}"
    );
    eprintln!("{test}: skipped: {why}");
    false
}

fn sh(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn ok(args: &[&str]) {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Two namespaces, `a` (192.0.2.1, the outside) and `b` (192.0.2.2, where
/// backflow captures), joined by one veth pair.
struct Lab {
    a: String,
    b: String,
    veth_a: String,
    veth_b: String,
    children: Vec<Child>,
}

impl Lab {
    fn new() -> Lab {
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let lab = Lab {
            a: format!("bflt{id}a"),
            b: format!("bflt{id}b"),
            veth_a: format!("bfa{id}"),
            veth_b: format!("bfb{id}"),
            children: Vec::new(),
        };
        ok(&["ip", "netns", "add", &lab.a]);
        ok(&["ip", "netns", "add", &lab.b]);
        lab.link_up();
        lab
    }

    /// (Re)creates the veth pair and its addresses.
    fn link_up(&self) {
        ok(&[
            "ip",
            "link",
            "add",
            &self.veth_a,
            "netns",
            &self.a,
            "type",
            "veth",
            "peer",
            "name",
            &self.veth_b,
            "netns",
            &self.b,
        ]);
        for (ns, dev, addr) in [
            (&self.a, &self.veth_a, "192.0.2.1/24"),
            (&self.b, &self.veth_b, "192.0.2.2/24"),
        ] {
            ok(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
            ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
            ok(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            // No IPv6 chatter (router solicitations, DAD) in the counts.
            let _ = sh(&[
                "ip",
                "netns",
                "exec",
                ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{dev}.disable_ipv6=1"),
            ]);
        }
    }

    fn link_del(&self) {
        ok(&["ip", "-n", &self.a, "link", "del", &self.veth_a]);
    }

    /// Runs a bounded command in a namespace and waits for it.
    fn run(&self, ns: &str, args: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", ns, "timeout", "60"];
        full.extend_from_slice(args);
        sh(&full)
    }

    /// An nmap SYN scan from 192.0.2.1 of 192.0.2.2 with `args`; must
    /// succeed.
    fn syn_scan(&self, args: &[&str]) {
        let mut full = vec![
            "nmap",
            "-n",
            "-Pn",
            "-sS",
            "-S",
            "192.0.2.1",
            "-e",
            &self.veth_a,
        ];
        full.extend_from_slice(args);
        full.push("192.0.2.2");
        let o = self.run(&self.a, &full);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// Starts a bounded background process in a namespace.
    fn spawn(&mut self, ns: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "timeout", "120"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        self.children.push(child);
    }

    fn http_server(&mut self) {
        let b = self.b.clone();
        self.spawn(
            &b,
            &["python3", "-m", "http.server", "80", "--bind", "192.0.2.2"],
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let o = self.run(
                &self.a,
                &["curl", "-s", "-o", "/dev/null", "http://192.0.2.2/"],
            );
            if o.status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the HTTP server did not come up");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = sh(&["ip", "netns", "del", &self.a]);
        let _ = sh(&["ip", "netns", "del", &self.b]);
    }
}

/// `backflow live` running in a namespace.
struct Backflow {
    child: Child,
    out: tempfile::TempDir,
}

impl Backflow {
    fn start(ns: &str, iface: &str, config: &str, extra: &[&str]) -> Backflow {
        let out = tempfile::tempdir().expect("tempdir");
        let cfg = out.path().join("cfg.toml");
        std::fs::write(&cfg, config).expect("config");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(common::bin())
            .args(["live", "-i", iface, "--workers", "2", "-c"])
            .arg(&cfg)
            .arg("-o")
            .arg(out.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn backflow live");
        // The captures are open (and buffering) before the output files
        // are created.
        let eve = out.path().join("eve.json");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !eve.exists() {
            assert!(Instant::now() < deadline, "backflow live did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Backflow { child, out }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn eve(&self) -> PathBuf {
        self.out.path().join("eve.json")
    }

    fn signal(&self, sig: &str) {
        ok(&["kill", sig, &self.pid().to_string()]);
    }

    /// SIGTERM, then waits; returns (exit code, stderr, records).
    fn stop(mut self) -> (Option<i32>, String, Vec<Value>, tempfile::TempDir) {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("backflow did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = self.child.wait_with_output().expect("wait");
        let eve = std::fs::read(self.out.path().join("eve.json")).unwrap_or_default();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            common::parse_lines(&eve),
            self.out,
        )
    }
}

fn alerts_by_kind(records: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut m: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in records.iter().filter(|r| r["event_type"] == "alert") {
        let kind = r["alert"]["metadata"]["detector"][0]
            .as_str()
            .unwrap_or("")
            .to_string();
        m.entry(kind).or_default().push(r);
    }
    m
}

/// Runs `cmd` in the lab's first namespace while `backflow live` captures
/// on the second's veth, and returns the one alert it raised, checking it
/// is the only one and of `kind`.
fn only_alert(lab: &Lab, cmd: &[&str], kind: &str) -> Value {
    let bf = Backflow::start(&lab.b, &lab.veth_b, "", &[]);
    let o = lab.run(&lab.a, cmd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::thread::sleep(Duration::from_millis(500));
    let (code, stderr, records, _dir) = bf.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let alerts = alerts_by_kind(&records);
    let kinds: Vec<&String> = alerts.keys().collect();
    assert_eq!(kinds, [kind], "{alerts:?}");
    assert_eq!(alerts[kind].len(), 1, "{alerts:?}");
    alerts[kind][0]["alert"].clone()
}

fn last_stats(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("stats.json")).unwrap_or_default();
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or(Value::Null)
}

#[test]
fn curl_nmap_and_hping3_traffic_is_tracked_and_detected() {
    if !can_run("live traffic", &["nmap", "hping3", "curl", "python3"]) {
        return;
    }
    let mut lab = Lab::new();
    lab.http_server();
    let bf = Backflow::start(&lab.b, &lab.veth_b, "[eve]\nstats_interval = \"1s\"\n", &[]);
    for _ in 0..3 {
        let o = lab.run(
            &lab.a,
            &["curl", "-s", "-o", "/dev/null", "http://192.0.2.2/"],
        );
        assert!(o.status.success());
    }
    lab.syn_scan(&["-p", "1-300", "--max-retries", "1", "-T4"]);
    let o = lab.run(
        &lab.a,
        &[
            "hping3",
            "-q",
            "-S",
            "-p",
            "80",
            "-c",
            "600",
            "-i",
            "u1000",
            "192.0.2.2",
        ],
    );
    // hping3 exits 1 when it counts lost replies; only a crash matters.
    assert!(o.status.code().is_some());
    std::thread::sleep(Duration::from_millis(500));
    let (code, stderr, records, dir) = bf.stop();
    assert_eq!(code, Some(0), "{stderr}");

    let flows: Vec<&Value> = records
        .iter()
        .filter(|r| r["event_type"] == "flow")
        .collect();
    // The three curl sessions: complete, named on the capture interface.
    let http: Vec<&&Value> = flows
        .iter()
        .filter(|f| {
            f["dest_port"] == 80
                && f["metadata"]["flowvars"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|x| x["conn_state"] == "SF"))
        })
        .collect();
    assert!(http.len() >= 3, "{} complete HTTP flows", http.len());
    for f in &http {
        assert_eq!(f["in_iface"], lab.veth_b.as_str());
        assert_eq!(f["src_ip"], "192.0.2.1");
        assert!(f["flow"]["bytes_toclient"].as_u64().unwrap_or(0) > 500);
    }
    // Every active flow was logged at shutdown.
    assert!(flows.iter().any(|f| f["flow"]["reason"] == "shutdown"));

    let alerts = alerts_by_kind(&records);
    let scan = alerts
        .get("port_scan")
        .unwrap_or_else(|| panic!("no port_scan alert: {:?}", alerts.keys()));
    assert!(
        scan.iter()
            .any(|a| a["alert"]["source"]["ip"] == "192.0.2.1"
                && a["alert"]["target"]["ip"] == "192.0.2.2"
                && a["alert"]["metadata"]["technique"][0] == "syn"),
        "{scan:?}"
    );
    let flood = alerts
        .get("syn_flood")
        .unwrap_or_else(|| panic!("no syn_flood alert: {:?}", alerts.keys()));
    assert!(
        flood.iter().any(
            |a| a["alert"]["target"]["ip"] == "192.0.2.2" && a["alert"]["target"]["port"] == 80
        )
    );

    // Counters: the interface saw everything, nothing was dropped.
    let stats = last_stats(dir.path());
    let ifaces = &stats["backflow"]["source"]["interfaces"];
    assert_eq!(ifaces[0]["name"], lab.veth_b.as_str(), "{stats}");
    let pkts = ifaces[0]["packets"].as_u64().unwrap_or(0);
    assert!(pkts > 1500, "{pkts} packets");
    assert_eq!(ifaces[0]["kernel_drops"], 0);
    assert_eq!(ifaces[0]["queue_drops"], 0);
    assert_eq!(stats["stats"]["capture"]["kernel_packets"], pkts);
    let lat = &stats["backflow"]["counters"]["latency"];
    assert!(lat["capture"]["count"].as_u64().unwrap_or(0) >= pkts);
    assert!(lat["worker"]["p99_us"].as_u64().is_some());
    // EVE stats records came every second.
    let n_stats = records
        .iter()
        .filter(|r| r["event_type"] == "stats")
        .count();
    assert!(n_stats >= 2, "{n_stats} stats records");
    drop(lab);
}

/// The outside (192.0.2.1) fetches a page from the home web server
/// (192.0.2.2:80, published), then the web server fetches from the outside
/// client's port 4444 (curl against a python HTTP server there: a payload
/// download after an exploit): a `callback` naming both, severity 1 (4444
/// is no service's port); the session in raises nothing.
#[test]
fn a_server_fetching_from_its_client_is_a_callback() {
    if !can_run("live callback", &["curl", "python3"]) {
        return;
    }
    let mut lab = Lab::new();
    lab.http_server();
    let a = lab.a.clone();
    lab.spawn(
        &a,
        &[
            "python3",
            "-m",
            "http.server",
            "4444",
            "--bind",
            "192.0.2.1",
        ],
    );
    let bf = Backflow::start(
        &lab.b,
        &lab.veth_b,
        "home_nets = [\"192.0.2.2/32\"]\n[[hosts]]\naddr = \"192.0.2.2\"\nservices = [\"tcp/80\"]\n",
        &[],
    );
    let o = lab.run(
        &lab.a,
        &["curl", "-s", "-o", "/dev/null", "http://192.0.2.2/"],
    );
    assert!(o.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = lab.run(
            &lab.b,
            &["curl", "-s", "-o", "/dev/null", "http://192.0.2.1:4444/"],
        );
        if o.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the listener on 4444 did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (code, stderr, records, _dir) = bf.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let alerts = alerts_by_kind(&records);
    let kinds: Vec<&String> = alerts.keys().collect();
    assert_eq!(kinds, ["callback"], "{alerts:?}");
    let cb = alerts["callback"][0];
    let al = &cb["alert"];
    assert_eq!(al["source"]["ip"], "192.0.2.2", "{cb}");
    assert_eq!(al["target"]["ip"], "192.0.2.1", "{cb}");
    assert_eq!(al["target"]["port"], 4444, "{cb}");
    assert_eq!(al["severity"], 1, "{cb}");
    assert_eq!(al["metadata"]["served_port"], 80, "{cb}");
    assert_eq!(cb["in_iface"], lab.veth_b.as_str());
    drop(lab);
}

/// nmap -sO over 60 IP protocols: one protocol scan from the scanner's
/// namespace to the target, whatever the kernel's rate limit on protocol
/// unreachables lets through.
#[test]
fn nmap_ip_protocol_scan_is_a_protocol_scan() {
    if !can_run("live IP protocol scan", &["nmap"]) {
        return;
    }
    let lab = Lab::new();
    let al = &only_alert(
        &lab,
        &[
            "nmap",
            "-n",
            "-Pn",
            "-sO",
            "-p",
            "1-60",
            "-T4",
            "--max-retries",
            "0",
            "192.0.2.2",
        ],
        "protocol_scan",
    );
    assert_eq!(al["source"]["ip"], "192.0.2.1", "{al}");
    assert_eq!(al["target"]["ip"], "192.0.2.2", "{al}");
    assert!(
        al["metadata"]["distinct_protocols"].as_u64() >= Some(8),
        "{al}"
    );
    drop(lab);
}

/// A ping sweep of 30 addresses that do not answer (assigned to the
/// target's veth, whose namespace ignores echo requests): one sweep of
/// their echo from the pinging namespace.
#[test]
fn a_ping_sweep_of_silent_hosts_is_a_sweep() {
    if !can_run("live ping sweep", &["nmap"]) {
        return;
    }
    let lab = Lab::new();
    for i in 100..130 {
        let addr = format!("192.0.2.{i}/32");
        ok(&["ip", "-n", &lab.b, "addr", "add", &addr, "dev", &lab.veth_b]);
    }
    let o = lab.run(
        &lab.b,
        &["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let al = &only_alert(
        &lab,
        &[
            "nmap",
            "-n",
            "-sn",
            "-PE",
            "--disable-arp-ping",
            "--max-retries",
            "0",
            "192.0.2.100-129",
        ],
        "port_sweep",
    );
    assert_eq!(al["source"]["ip"], "192.0.2.1", "{al}");
    assert_eq!(al["metadata"]["protocol"][0], "icmp", "{al}");
    assert_eq!(al["metadata"]["technique"][0], "echo", "{al}");
    assert_eq!(al["metadata"]["answered"], 0, "{al}");
    drop(lab);
}

/// A slow SYN scan (nmap, one port every 100 ms) behind a stream of UDP
/// datagrams from 200 addresses in turn, each from a new socket (a new
/// flow, so a new probe), about 300 a second, through a scan tracker of 8
/// entries: the 30 or so new sources between two probes turn the tracker
/// over, and each is one source with one target, as the scanner is after
/// its first probe. The scanner comes back within its tracker's recall
/// (64 sources a generation) and the stream's sources do not (200 apart),
/// so the scanner is kept over them and reported; none of them is.
#[test]
fn a_slow_scan_behind_a_stream_of_new_sources_is_reported() {
    if !can_run("live slow scan behind new sources", &["nmap", "python3"]) {
        return;
    }
    let mut lab = Lab::new();
    for i in 10..210 {
        let addr = format!("192.0.2.{i}/32");
        ok(&["ip", "-n", &lab.a, "addr", "add", &addr, "dev", &lab.veth_a]);
    }
    let bf = Backflow::start(&lab.b, &lab.veth_b, "[detect]\nmax_tracked = 8\n", &[]);
    let a = lab.a.clone();
    lab.spawn(
        &a,
        &[
            "python3",
            "-c",
            "import socket, time\n\
             for n in range(1500):\n\
             \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             \x20   s.bind(('192.0.2.%d' % (10 + n % 200), 0))\n\
             \x20   s.sendto(b'x', ('192.0.2.2', 9))\n\
             \x20   s.close()\n\
             \x20   time.sleep(1 / 300)\n",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    lab.syn_scan(&["--scan-delay", "100ms", "--max-retries", "0", "-p", "1-30"]);
    for c in &mut lab.children {
        let _ = c.wait();
    }
    std::thread::sleep(Duration::from_millis(500));
    let (code, stderr, records, dir) = bf.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let alerts = alerts_by_kind(&records);
    let scans: Vec<&&Value> = ["port_scan", "port_sweep"]
        .iter()
        .flat_map(|k| alerts.get(*k).into_iter().flatten())
        .collect();
    assert_eq!(scans.len(), 1, "{alerts:?}");
    let al = &scans[0]["alert"];
    assert_eq!(al["metadata"]["detector"][0], "port_scan", "{al}");
    assert_eq!(al["source"]["ip"], "192.0.2.1", "{al}");
    assert_eq!(al["target"]["ip"], "192.0.2.2", "{al}");
    // The stream did turn the tracker over.
    let scan = &last_stats(dir.path())["backflow"]["trackers"]["scan"];
    assert!(scan["evicted"].as_u64() > Some(100), "{scan}");
    drop(lab);
}

#[test]
fn a_vanished_interface_is_reopened_and_the_others_keep_running() {
    if !can_run("interface removal", &["curl", "python3"]) {
        return;
    }
    let mut lab = Lab::new();
    lab.http_server();
    let bf = Backflow::start(&lab.b, &lab.veth_b, "", &["-i", "lo"]);
    lab.run(
        &lab.a,
        &["curl", "-s", "-o", "/dev/null", "http://192.0.2.2/"],
    );
    // Let the kernel hand over the capture block holding that session (a
    // block not yet retired when its interface vanishes is gone with it).
    std::thread::sleep(Duration::from_millis(300));
    let removed = eve_now();
    lab.link_del();
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        matches!(
            sh(&["kill", "-0", &bf.pid().to_string()]).status.code(),
            Some(0)
        ),
        "backflow keeps running after its interface vanished"
    );
    // Meanwhile the other interface (the namespace's loopback) still captures.
    let b = lab.b.clone();
    lab.spawn(
        &b,
        &[
            "python3",
            "-m",
            "http.server",
            "8080",
            "--bind",
            "127.0.0.1",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lab
        .run(
            &b,
            &["curl", "-s", "-o", "/dev/null", "http://127.0.0.1:8080/"],
        )
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "loopback HTTP server");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The interface comes back under the same name: capture resumes.
    lab.link_up();
    lab.http_server();
    std::thread::sleep(Duration::from_secs(6));
    let resumed = eve_now();
    lab.run(
        &lab.a,
        &["curl", "-s", "-o", "/dev/null", "http://192.0.2.2/"],
    );
    std::thread::sleep(Duration::from_millis(300));
    let (code, stderr, records, dir) = bf.stop();
    assert_eq!(code, Some(0), "clean shutdown: {stderr}");
    assert!(
        stderr.contains("capture failed; reopening with backoff"),
        "{stderr}"
    );
    assert!(stderr.contains("capture reopened"), "{stderr}");
    let stats = last_stats(dir.path());
    let ifaces = stats["backflow"]["source"]["interfaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let veth = ifaces
        .iter()
        .find(|i| i["name"] == lab.veth_b.as_str())
        .expect("veth counters");
    assert!(veth["errors"].as_u64().unwrap_or(0) >= 1, "{veth}");
    assert!(veth["reopens"].as_u64().unwrap_or(0) >= 1, "{veth}");
    assert!(
        records.iter().any(|r| {
            r["event_type"] == "flow"
                && r["in_iface"] == "lo"
                && r["dest_port"] == 8080
                && r["metadata"]["flowvars"][0]["conn_state"] == "SF"
        }),
        "loopback kept capturing: {:?}",
        records
            .iter()
            .filter(|r| r["in_iface"] == "lo")
            .collect::<Vec<_>>()
    );
    let veth_http: Vec<&str> = records
        .iter()
        .filter(|r| {
            r["event_type"] == "flow"
                && r["in_iface"] == lab.veth_b.as_str()
                && r["dest_port"] == 80
                && r["src_ip"] == "192.0.2.1"
        })
        .filter_map(|r| r["timestamp"].as_str())
        .collect();
    // EVE timestamps compare as strings (same format, UTC).
    assert!(
        veth_http.iter().any(|t| *t < removed.as_str()),
        "the session before the removal: {veth_http:?}"
    );
    assert!(
        veth_http.iter().any(|t| *t >= resumed.as_str()),
        "the session after the reopen ({resumed}): {veth_http:?}"
    );
}

/// The wall clock formatted as EVE timestamps are.
fn eve_now() -> String {
    backflow::time::Timestamp::wall_now().to_string()
}

#[test]
fn sighup_while_writing_keeps_every_event_exactly_once() {
    if !can_run("live SIGHUP", &["hping3"]) {
        return;
    }
    let lab = Lab::new();
    // Every UDP flow times out a second after its datagram, so flow
    // records are written all through the run.
    let bf = Backflow::start(
        &lab.b,
        &lab.veth_b,
        "[eve]\nstats_interval = \"1s\"\n[flow.timeouts.udp]\nnew = \"1s\"\n",
        &[],
    );
    let sent = 1500u32;
    let a = lab.a.clone();
    let generator = std::thread::spawn(move || {
        sh(&[
            "ip",
            "netns",
            "exec",
            &a,
            "timeout",
            "60",
            "hping3",
            "-q",
            "--udp",
            "-p",
            "9",
            "-s",
            "20000",
            "-c",
            &sent.to_string(),
            "-i",
            "u3000",
            "192.0.2.2",
        ])
    });
    std::thread::sleep(Duration::from_millis(2500));
    let eve = bf.eve();
    let rotated = eve.with_extension("json.1");
    std::fs::rename(&eve, &rotated).expect("rename");
    bf.signal("-HUP");
    let o = generator.join().expect("generator");
    assert!(o.status.code().is_some());
    std::thread::sleep(Duration::from_millis(2500));
    let (code, stderr, _, dir) = bf.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let read = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let (old, new) = (
        read(&dir.path().join("eve.json.1")),
        read(&dir.path().join("eve.json")),
    );
    assert!(
        !old.is_empty() && !new.is_empty(),
        "{} + {}",
        old.len(),
        new.len()
    );
    let mut all: Vec<String> = old.into_iter().chain(new).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "no event twice");
    // hping3 counts its source port up from 20000: one flow per datagram.
    let mut ports = std::collections::BTreeSet::new();
    for l in &all {
        let v: Value = serde_json::from_str(l).expect("whole lines in both files");
        if v["event_type"] == "flow" && v["proto"] == "UDP" && v["dest_port"] == 9 {
            assert!(ports.insert(v["src_port"].as_u64().unwrap_or(0)), "{l}");
        }
    }
    let stats = last_stats(dir.path());
    let udp = stats["stats"]["decoder"]["udp"].as_u64().unwrap_or(0);
    assert!(
        udp >= u64::from(sent) * 9 / 10,
        "{udp} of {sent} datagrams seen"
    );
    assert_eq!(
        ports.len() as u64,
        udp,
        "every datagram's flow once, in one of the two files"
    );
}

#[test]
fn user_option_drops_root_after_opening() {
    if !can_run("privilege drop", &[]) {
        return;
    }
    let lab = Lab::new();
    let bf = Backflow::start(&lab.b, &lab.veth_b, "", &["--user", "nobody"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", bf.pid())).expect("status");
    let field = |name: &str| -> Vec<String> {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().skip(1).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let nobody = String::from_utf8_lossy(&sh(&["id", "-u", "nobody"]).stdout)
        .trim()
        .to_string();
    assert_eq!(field("Uid:"), vec![nobody.clone(); 4], "{status}");
    assert!(
        field("Groups:").is_empty(),
        "supplementary groups cleared: {status}"
    );
    assert_ne!(field("Gid:").first().map(String::as_str), Some("0"));
    let (code, stderr, _, _) = bf.stop();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_missing_interface_is_a_clear_error() {
    if !can_run("missing interface", &[]) {
        return;
    }
    let o = Command::new(common::bin())
        .args(["live", "-i", "bf-no-such0", "-o"])
        .arg(std::env::temp_dir())
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("interface bf-no-such0: cannot capture"),
        "{err}"
    );
}
