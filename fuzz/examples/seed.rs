//! Builds the seed corpora of the fuzz targets from capture files, as
//! backflow's own reader sees them (see `seed.sh`).
//!
//!     seed OUT_DIR CAPTURE_OR_DIR...
//!
//! Writes `OUT_DIR/capture/` (each file, cut to its first 64 KiB),
//! `OUT_DIR/decode/` (distinct frames, a selector byte first) and
//! `OUT_DIR/packet_path/` (each file's first frames as one sequence).
//! Names are content hashes, so running it twice adds nothing.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use backflow::capture::Frame;
use backflow::capture::file::{FrameBytes, Input, read_frames};
use backflow_fuzz::{encode_frames, selector};

/// Longest capture seed: larger inputs slow every execution.
const CAPTURE_MAX: usize = 64 * 1024;
/// Frames per file for `decode`, and in each `packet_path` sequence.
const DECODE_PER_FILE: usize = 32;
const SEQUENCE_FRAMES: usize = 200;
const SEQUENCE_MAX: usize = 32 * 1024;

fn name(bytes: &[u8]) -> String {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    format!("{:016x}", h.finish())
}

fn write(dir: &Path, bytes: &[u8]) -> bool {
    let p = dir.join(name(bytes));
    if p.exists() {
        return false;
    }
    std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    true
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.sort();
        for e in entries {
            collect(&e, out);
        }
    } else if p
        .extension()
        .is_some_and(|x| x == "pcap" || x == "pcapng" || x == "cap")
    {
        out.push(p.to_owned());
    }
}

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let Some((out, inputs)) = args.split_first() else {
        eprintln!("usage: seed OUT_DIR CAPTURE_OR_DIR...");
        std::process::exit(1);
    };
    let dirs = ["capture", "decode", "packet_path"].map(|d| out.join(d));
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    }
    let mut files = Vec::new();
    for i in inputs {
        collect(i, &mut files);
    }
    let mut added = [0usize; 3];
    let mut seen = HashSet::new();
    for f in &files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        added[0] += usize::from(write(&dirs[0], &bytes[..bytes.len().min(CAPTURE_MAX)]));
        let Ok(input) = Input::open(f) else { continue };
        // Owned copies of the first frames (the reader's buffer is transient).
        let mut frames = Vec::new();
        let mut decode_seeds = 0;
        let _ = read_frames(
            input,
            &mut |fr: &Frame<'_>, _: FrameBytes<'_>| {
                if decode_seeds < DECODE_PER_FILE
                    && let Some(sel) = selector(fr.linktype, fr.orig_len as usize > fr.data.len())
                {
                    let mut seed = vec![sel];
                    seed.extend_from_slice(fr.data);
                    if seen.insert(name(&seed)) {
                        decode_seeds += 1;
                        added[1] += usize::from(write(&dirs[1], &seed));
                    }
                }
                if frames.len() < SEQUENCE_FRAMES {
                    frames.push((fr.ts, fr.linktype, fr.data.to_vec(), fr.orig_len));
                }
            },
            &AtomicBool::new(false),
        );
        let views: Vec<Frame<'_>> = frames
            .iter()
            .map(|(ts, linktype, data, orig_len)| Frame {
                ts: *ts,
                linktype: *linktype,
                data,
                orig_len: *orig_len,
                iface: 0,
            })
            .collect();
        // Keep sequences small: fewer frames from files of big frames.
        let mut n = views.len();
        let mut seq = encode_frames(1, &views);
        while seq.len() > SEQUENCE_MAX && n > 1 {
            n /= 2;
            seq = encode_frames(1, &views[..n]);
        }
        if seq.len() > 1 {
            added[2] += usize::from(write(&dirs[2], &seq));
        }
    }
    eprintln!(
        "seed: {} capture files: {} capture, {} decode, {} packet_path seeds added",
        files.len(),
        added[0],
        added[1],
        added[2]
    );
}
