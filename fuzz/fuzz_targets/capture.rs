//! The pcap/pcapng reader on any bytes.
//!
//! `CaptureParser` is a state machine over a byte window; the reader hands
//! it chunks of the input, carrying an incomplete record into the next.
//! Whatever the windows, it must produce the same frames and stop at the
//! same offset for the same reason, and every step must consume bytes of
//! its window. `read_frames` must agree with it whether reads return the
//! whole input or a few bytes at a time.
#![no_main]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use backflow::capture::file::{
    CaptureParser, FileCounters, FrameBytes, Input, ParseFailure, Step, read_frames,
};
use backflow::capture::{Frame, LinkType};
use backflow::time::Timestamp;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq, Eq)]
struct Rec {
    ts: Timestamp,
    linktype: LinkType,
    data: Vec<u8>,
    orig_len: u32,
    iface: u32,
}

impl Rec {
    fn of(f: &Frame<'_>) -> Rec {
        Rec {
            ts: f.ts,
            linktype: f.linktype,
            data: f.data.to_vec(),
            orig_len: f.orig_len,
            iface: f.iface,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Stop {
    End,
    Truncated {
        offset: usize,
        missing: usize,
    },
    Failed {
        offset: usize,
        failure: ParseFailure,
    },
}

/// Feeds `bytes` in windows that grow by what the parser asks for, or by
/// `grow()` when that is more, as a stream reader does.
fn windowed(bytes: &[u8], mut grow: impl FnMut() -> usize) -> (Vec<Rec>, Stop, FileCounters) {
    let mut p = CaptureParser::new();
    let (mut pos, mut avail) = (0usize, grow().min(bytes.len()));
    let mut out = Vec::new();
    let stop = loop {
        let at_eof = avail == bytes.len();
        let window = &bytes[pos..avail];
        match p.step(window, at_eof) {
            Ok(Step::Frame(f, used)) => {
                assert!(
                    used > 0 && used <= window.len(),
                    "frame took {used} of {}",
                    window.len()
                );
                out.push(Rec::of(&f));
                assert!(f.orig_len as usize >= f.data.len());
                pos += used;
            }
            Ok(Step::Skip(used)) => {
                assert!(
                    used > 0 && used <= window.len(),
                    "skip of {used} of {}",
                    window.len()
                );
                pos += used;
            }
            Ok(Step::End) => {
                assert!(
                    at_eof && window.is_empty(),
                    "end with {} bytes left",
                    window.len()
                );
                break Stop::End;
            }
            Ok(Step::NeedMore(missing)) => {
                assert!(missing > 0);
                if at_eof {
                    break Stop::Truncated {
                        offset: pos,
                        missing,
                    };
                }
                avail = (avail + missing.max(grow())).min(bytes.len());
            }
            Err(failure) => {
                break Stop::Failed {
                    offset: pos,
                    failure,
                };
            }
        }
    };
    (out, stop, p.counters)
}

type Read = (Vec<Rec>, Option<(u64, String)>, u64, u64, FileCounters);

/// A reader that returns at most `max` bytes per call (a slow pipe), so the
/// reader's chunks end anywhere.
struct Trickle {
    bytes: Vec<u8>,
    pos: usize,
    max: usize,
}

impl std::io::Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
        let n = buf.len().min(self.max).min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

fn read_path(reader: Box<dyn std::io::Read + Send>) -> Read {
    read_input(Input::from_reader(&path(), reader))
}

fn read_input(input: Input) -> Read {
    let mut out = Vec::new();
    let (summary, err) = read_frames(
        input,
        &mut |f: &Frame<'_>, bytes: FrameBytes<'_>| {
            if let FrameBytes::Shared { chunk, offset } = bytes {
                // Workers read frames back from the chunk by offset.
                assert_eq!(
                    chunk.bytes().get(offset..offset + f.data.len()),
                    Some(f.data)
                );
            }
            out.push(Rec::of(f));
        },
        &AtomicBool::new(false),
    );
    let err = err.map(|e| (e.offset().unwrap_or(0), e.to_string()));
    (
        out,
        err,
        summary.frames,
        summary.bytes_read,
        summary.counters,
    )
}

fn path() -> PathBuf {
    PathBuf::from("fuzz.pcap")
}

fuzz_target!(|bytes: &[u8]| {
    // The reference: everything at once.
    let (frames, stop, counters) = windowed(bytes, || usize::MAX);
    // Exactly what the parser asks for, byte-sized steps where it asks for less.
    let one = windowed(bytes, || 1);
    assert_eq!((&one.0, &one.1, &one.2), (&frames, &stop, &counters));
    // Irregular steps, from a seed the input decides.
    let mut x = bytes.len() as u32 ^ 0x9e37_79b9;
    let mut irregular = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        1 + (x % 700) as usize
    };
    let chunked = windowed(bytes, &mut irregular);
    assert_eq!(
        (&chunked.0, &chunked.1, &chunked.2),
        (&frames, &stop, &counters)
    );

    // The reader itself: a file read in large chunks, and a slow pipe whose
    // reads return a few bytes each (every chunk ends inside a record).
    let whole = read_path(Box::new(std::io::Cursor::new(bytes.to_vec())));
    assert_eq!(whole.0, frames);
    assert_eq!(whole.2, frames.len() as u64);
    assert_eq!(whole.4, counters);
    match (&stop, &whole.1) {
        (Stop::End, None) => assert_eq!(whole.3, bytes.len() as u64),
        (Stop::Truncated { offset, .. }, Some((at, msg))) => {
            assert_eq!(*at, *offset as u64);
            assert!(msg.contains("ends inside a record"), "{msg}");
        }
        (Stop::Failed { offset, .. }, Some((at, msg))) => {
            assert_eq!(*at, *offset as u64);
            assert!(msg.starts_with("fuzz.pcap: "), "{msg}");
        }
        (s, e) => panic!("parser stopped with {s:?}, the reader with {e:?}"),
    }
    let slow = read_path(Box::new(Trickle {
        bytes: bytes.to_vec(),
        pos: 0,
        max: 1 + irregular() % 61,
    }));
    assert_eq!(slow, whole);

    // A file on disk: mapped (the window's frames held until the file is
    // known to still hold them), not read.
    let file = mapped_path();
    std::fs::write(&file, bytes).expect("write the input to a file");
    let input = match Input::open(&file) {
        Ok(input) => input,
        // An empty file is refused when opened, naming it.
        Err(e) => {
            assert!(bytes.is_empty(), "{e}");
            assert!(e.to_string().contains(&file.display().to_string()), "{e}");
            return;
        }
    };
    let mut mapped = read_input(input);
    let shown = file.display().to_string();
    if let Some((_, msg)) = &mut mapped.1 {
        *msg = msg.replace(&shown, "fuzz.pcap");
    }
    assert_eq!(mapped, whole);
});

/// A file of this process's own for the mapped reader.
fn mapped_path() -> PathBuf {
    std::env::temp_dir().join(format!("backflow-fuzz-capture-{}.pcap", std::process::id()))
}
