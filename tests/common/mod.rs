//! Helpers shared by the integration tests: run the real binary, parse its
//! EVE output, find the public capture corpus beside the repository.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub mod capture;
pub mod truth;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_backflow"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn pcap(name: &str) -> PathBuf {
    repo().join("pcaps").join(name)
}

/// The folders of `pcaps/` (captures we made), sorted.
pub fn own_capture_dirs() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo().join("pcaps"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `../shared` when it is there (CI always has it).
pub fn shared() -> Option<PathBuf> {
    let p = repo().join("..").join("shared");
    p.join("pcaps").is_dir().then_some(p)
}

/// Returns `../shared`, or prints why the test is skipped and returns None.
pub fn shared_or_skip(test: &str) -> Option<PathBuf> {
    let s = shared();
    if s.is_none() {
        eprintln!(
            "{test}: skipped: ../shared (the public capture corpus) is not present beside the repository"
        );
    }
    s
}

/// The header of a classic little-endian pcap: microsecond timestamps,
/// snap length 65535, Ethernet.
pub fn pcap_header() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(0xa1b2_c3d4u32.to_le_bytes());
    v.extend(2u16.to_le_bytes());
    v.extend(4u16.to_le_bytes());
    v.extend([0u8; 8]);
    v.extend(65535u32.to_le_bytes());
    v.extend(1u32.to_le_bytes());
    v
}

/// One classic pcap record: the whole of `frame`, captured at `secs`
/// seconds (and no microseconds).
pub fn pcap_record(secs: u32, frame: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [secs, 0, frame.len() as u32, frame.len() as u32] {
        v.extend(x.to_le_bytes());
    }
    v.extend(frame);
    v
}

/// The frames of a classic little-endian microsecond pcap (the lab's):
/// seconds, microseconds, bytes.
pub fn pcap_frames(path: &Path) -> Vec<(u32, u32, Vec<u8>)> {
    let bytes = std::fs::read(path).expect("read capture");
    assert_eq!(
        bytes.get(..4),
        Some(&[0xd4, 0xc3, 0xb2, 0xa1][..]),
        "{path:?}"
    );
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = word(at + 8) as usize;
        out.push((
            word(at),
            word(at + 4),
            bytes[at + 16..at + 16 + len].to_vec(),
        ));
        at += 16 + len;
    }
    out
}

/// Writes `frames` (seconds, microseconds, bytes) as a classic pcap.
pub fn write_pcap(path: &Path, frames: &[(u32, u32, Vec<u8>)]) {
    let mut out = pcap_header();
    for (secs, us, f) in frames {
        for x in [*secs, *us, f.len() as u32, f.len() as u32] {
            out.extend(x.to_le_bytes());
        }
        out.extend(f);
    }
    std::fs::write(path, out).expect("write capture");
}

/// Starts `backflow read -` with one worker, the config `cfg`, output to
/// `out` and the `extra` flags (stderr piped), and writes the pcap header to
/// its standard input; records follow with [`pcap_record`].
pub fn start_stdin_read(extra: &[&str], cfg: &Path, out: &Path) -> Child {
    let mut child = Command::new(bin())
        .args(["read", "-", "--workers", "1"])
        .args(extra)
        .arg("-c")
        .arg(cfg)
        .arg("-o")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn backflow");
    child
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(&pcap_header())
        .expect("header");
    child
}

pub struct Run {
    pub status: i32,
    pub stderr: String,
    pub eve: Vec<u8>,
    pub records: Vec<Value>,
    pub stats_file: Vec<u8>,
    pub dir: tempfile::TempDir,
}

impl Run {
    pub fn of_type(&self, t: &str) -> Vec<&Value> {
        self.records
            .iter()
            .filter(|r| r["event_type"] == t)
            .collect()
    }
    pub fn eve_path(&self) -> PathBuf {
        self.dir.path().join("eve.json")
    }
    /// The last `stats.json` record (the end of the run).
    pub fn last_stats(&self) -> Value {
        parse_lines(&self.stats_file).pop().expect("stats.json")
    }
}

/// Runs `backflow read` with `extra` args over `files` into a fresh directory.
pub fn read(files: &[PathBuf], extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin())
        .arg("read")
        .args(files)
        .arg("-o")
        .arg(dir.path())
        .arg("-q")
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run backflow");
    finish(out, dir)
}

pub fn finish(out: std::process::Output, dir: tempfile::TempDir) -> Run {
    let eve = std::fs::read(dir.path().join("eve.json")).unwrap_or_default();
    let stats_file = std::fs::read(dir.path().join("stats.json")).unwrap_or_default();
    let records = parse_lines(&eve);
    Run {
        status: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        eve,
        records,
        stats_file,
        dir,
    }
}

pub fn parse_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}")))
        .collect()
}

/// A flow record reduced to what identifies and counts it, comparable
/// across runs and worker counts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowLine {
    pub start: String,
    pub proto: String,
    pub src: String,
    pub dst: String,
    pub vlan: String,
    pub pkts: (u64, u64),
    pub bytes: (u64, u64),
    pub state: String,
    pub reason: String,
    pub conn_state: String,
    pub history: String,
}

fn flowvar(r: &Value, key: &str) -> String {
    r["metadata"]["flowvars"]
        .as_array()
        .and_then(|a| a.iter().find_map(|v| v.get(key)))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

pub fn flow_line(r: &Value) -> FlowLine {
    let ep = |ip: &Value, port: &Value| format!("{}:{}", ip.as_str().unwrap_or(""), port);
    let f = &r["flow"];
    FlowLine {
        start: f["start"].as_str().unwrap_or("").to_string(),
        proto: r["proto"].as_str().unwrap_or("").to_string(),
        src: ep(&r["src_ip"], &r["src_port"]),
        dst: ep(&r["dest_ip"], &r["dest_port"]),
        vlan: r["vlan"].to_string(),
        pkts: (
            f["pkts_toserver"].as_u64().unwrap_or(0),
            f["pkts_toclient"].as_u64().unwrap_or(0),
        ),
        bytes: (
            f["bytes_toserver"].as_u64().unwrap_or(0),
            f["bytes_toclient"].as_u64().unwrap_or(0),
        ),
        state: f["state"].as_str().unwrap_or("").to_string(),
        reason: f["reason"].as_str().unwrap_or("").to_string(),
        conn_state: flowvar(r, "conn_state"),
        history: flowvar(r, "history"),
    }
}

pub fn flow_lines(run: &Run) -> Vec<FlowLine> {
    let mut v: Vec<FlowLine> = run.of_type("flow").into_iter().map(flow_line).collect();
    v.sort();
    v
}

/// Runs `../shared/tools/eve-check` on a file; None when it cannot run here.
pub fn eve_check(shared: &Path, eve: &Path) -> Option<(bool, String)> {
    let out = Command::new("python3")
        .arg(shared.join("tools/eve-check"))
        .arg(eve)
        .arg("--quiet")
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if text.contains("needs the python package") {
        eprintln!("eve-check cannot run: {text}");
        return None;
    }
    Some((out.status.success(), text))
}
