//! Sinks: where EVE lines go, and what happens when they cannot.
//!
//! Files and standard output are written by the output thread itself.
//! A file sink buffers whole lines and writes them itself, so a failed write
//! (a full disk) is rolled back to the last complete line and the lines that
//! did not make it are known exactly: dropped and counted (`drop`), or
//! retried until the write succeeds, holding up the pipeline (`block`). The
//! error is logged once per episode, and writing resumes when space returns.
//! Files rotate by size or time (N files kept) and reopen on request
//! (SIGHUP, for logrotate).
//!
//! Network sinks (see [`super::net`]) run on their own thread behind a
//! queue bounded in events, reconnecting with backoff.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::eve::EventType;

/// What a sink does when it cannot deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Wait (and hold up the pipeline) until the sink takes the events.
    Block,
    /// Drop the events and count them.
    Drop,
}

/// Counters of one sink, shared with its thread when it has one.
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub write_errors: AtomicU64,
    pub reopens: AtomicU64,
    pub rotations: AtomicU64,
    pub reconnects: AtomicU64,
    pub connect_failures: AtomicU64,
    /// Events still undelivered when the sink had to give up at exit.
    pub lost_at_exit: AtomicU64,
}

/// A plain copy of [`SinkCounters`] for reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkReport {
    pub name: String,
    pub written: u64,
    pub dropped: u64,
    pub write_errors: u64,
    pub reopens: u64,
    pub rotations: u64,
    pub reconnects: u64,
    pub connect_failures: u64,
    pub lost_at_exit: u64,
}

impl SinkCounters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    pub fn report(&self, name: &str) -> SinkReport {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SinkReport {
            name: name.to_string(),
            written: g(&self.written),
            dropped: g(&self.dropped),
            write_errors: g(&self.write_errors),
            reopens: g(&self.reopens),
            rotations: g(&self.rotations),
            reconnects: g(&self.reconnects),
            connect_failures: g(&self.connect_failures),
            lost_at_exit: g(&self.lost_at_exit),
        }
    }
}

/// Which event types a sink takes (empty: all).
#[derive(Clone, Debug, Default)]
pub struct Filter(pub Vec<EventType>);

impl Filter {
    pub fn accepts(&self, t: EventType) -> bool {
        self.0.is_empty() || self.0.contains(&t)
    }
}

/// Rotation settings of a file sink.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rotation {
    pub size: Option<u64>,
    pub interval: Option<Duration>,
    /// Rotated files kept (`eve.json.1` ... `eve.json.N`).
    pub keep: usize,
}

fn open_append(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o640);
    }
    o.open(path)
}

const FLUSH_AT: usize = 1 << 16;
const BLOCK_RETRY: Duration = Duration::from_millis(100);

/// Where a line-buffered writer writes.
enum Target {
    File {
        path: PathBuf,
        file: Option<File>,
        len: u64,
        opened: Instant,
        rotation: Rotation,
    },
    Stdout(io::Stdout),
}

/// A file or standard output, written by the output thread.
pub struct LineSink {
    pub name: String,
    pub filter: Filter,
    pub policy: Policy,
    pub counters: SinkCounters,
    target: Target,
    buf: Vec<u8>,
    buf_lines: u64,
    failing: bool,
    /// Stop blocking retries (shutdown).
    pub give_up: bool,
}

impl LineSink {
    pub fn file(
        path: &Path,
        filter: Filter,
        policy: Policy,
        rotation: Rotation,
    ) -> io::Result<LineSink> {
        let file = open_append(path)?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LineSink {
            name: format!("file:{}", path.display()),
            filter,
            policy,
            counters: SinkCounters::default(),
            target: Target::File {
                path: path.to_owned(),
                file: Some(file),
                len,
                opened: Instant::now(),
                rotation,
            },
            buf: Vec::with_capacity(FLUSH_AT * 2),
            buf_lines: 0,
            failing: false,
            give_up: false,
        })
    }

    pub fn stdout(filter: Filter) -> LineSink {
        LineSink {
            name: "stdout".into(),
            filter,
            policy: Policy::Drop,
            counters: SinkCounters::default(),
            target: Target::Stdout(io::stdout()),
            buf: Vec::with_capacity(FLUSH_AT * 2),
            buf_lines: 0,
            failing: false,
            give_up: false,
        }
    }

    /// Queues one line (with its newline); writes when the buffer is full.
    pub fn write(&mut self, line: &[u8]) {
        self.buf.extend_from_slice(line);
        self.buf_lines += 1;
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Writes what is buffered, per the sink's policy on failure.
    pub fn flush(&mut self) {
        loop {
            match self.write_buf() {
                Ok(()) => {
                    SinkCounters::add(&self.counters.written, self.buf_lines);
                    self.buf.clear();
                    self.buf_lines = 0;
                    if self.failing {
                        self.failing = false;
                        tracing::warn!(sink = %self.name, "output recovered; writing again");
                    }
                    break;
                }
                Err(e) => {
                    SinkCounters::add(&self.counters.write_errors, 1);
                    if !self.failing {
                        self.failing = true;
                        tracing::warn!(sink = %self.name, error = %e, policy = ?self.policy, "output write failed");
                    }
                    if self.policy == Policy::Drop || self.give_up {
                        SinkCounters::add(&self.counters.dropped, self.buf_lines);
                        self.buf.clear();
                        self.buf_lines = 0;
                        break;
                    }
                    std::thread::sleep(BLOCK_RETRY);
                }
            }
        }
        self.maybe_rotate();
    }

    /// Writes the buffer; on error the written part (whole lines only: a
    /// partial line is cut off the file) leaves the buffer.
    fn write_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut pos = 0;
        let result = match &mut self.target {
            Target::Stdout(out) => {
                let mut lock = out.lock();
                let r = lock.write_all(&self.buf).and_then(|()| lock.flush());
                if r.is_ok() {
                    pos = self.buf.len();
                }
                r
            }
            Target::File {
                path, file, len, ..
            } => {
                if file.is_none() {
                    *file = Some(open_append(path)?);
                    *len = file
                        .as_ref()
                        .and_then(|f| f.metadata().ok())
                        .map_or(0, |m| m.len());
                }
                let f = file
                    .as_mut()
                    .ok_or_else(|| io::Error::other("file not open"))?;
                let mut r = Ok(());
                while pos < self.buf.len() {
                    match f.write(self.buf.get(pos..).unwrap_or(&[])) {
                        Ok(0) => {
                            r = Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing"));
                            break;
                        }
                        Ok(n) => pos += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            r = Err(e);
                            break;
                        }
                    }
                }
                // Keep only whole lines in the file.
                let whole = self
                    .buf
                    .get(..pos)
                    .and_then(|b| b.iter().rposition(|c| *c == b'\n'))
                    .map_or(0, |i| i + 1);
                if whole < pos {
                    let _ = f.set_len(*len + whole as u64);
                }
                *len += whole as u64;
                pos = whole;
                r
            }
        };
        if result.is_err() {
            let done = self
                .buf
                .get(..pos)
                .map_or(0, |b| b.iter().filter(|c| **c == b'\n').count() as u64);
            SinkCounters::add(&self.counters.written, done);
            self.buf.drain(..pos);
            self.buf_lines -= done.min(self.buf_lines);
        }
        result
    }

    fn maybe_rotate(&mut self) {
        let Target::File {
            path,
            file,
            len,
            opened,
            rotation,
        } = &mut self.target
        else {
            return;
        };
        let due = rotation.size.is_some_and(|s| *len >= s)
            || rotation.interval.is_some_and(|i| opened.elapsed() >= i);
        if !due {
            return;
        }
        *file = None;
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", path.display()));
        let keep = rotation.keep.max(1);
        let _ = std::fs::remove_file(numbered(keep));
        for n in (1..keep).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        if let Err(e) = std::fs::rename(&*path, numbered(1)) {
            tracing::warn!(sink = %self.name, error = %e, "rotation failed");
        }
        *len = 0;
        *opened = Instant::now();
        SinkCounters::add(&self.counters.rotations, 1);
        // The next write opens a new file.
    }

    /// Reopens the file (after an external rename, e.g. logrotate).
    pub fn reopen(&mut self) {
        self.flush();
        if let Target::File { file, .. } = &mut self.target {
            *file = None;
            SinkCounters::add(&self.counters.reopens, 1);
        }
    }
}
