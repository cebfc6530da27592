//! Sinks: where EVE lines go.
//!
//! A sink takes whole lines and an event-type filter. A failed write is
//! logged once per failure episode, counted, and the line dropped; the next
//! successful write ends the episode. The run goes on either way.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::eve::EventType;

/// Counters of one sink.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SinkCounters {
    pub written: u64,
    pub dropped: u64,
    pub write_errors: u64,
    pub reopens: u64,
}

pub trait Sink: Send {
    fn name(&self) -> &str;
    /// Writes one line (with its newline).
    fn write_line(&mut self, line: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
    /// Reopens the destination (after log rotation).
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A sink with its filter, counters and error state.
pub struct Output {
    pub sink: Box<dyn Sink>,
    pub types: Vec<EventType>,
    pub counters: SinkCounters,
    failing: bool,
}

impl Output {
    pub fn new(sink: Box<dyn Sink>, types: Vec<EventType>) -> Self {
        Output {
            sink,
            types,
            counters: SinkCounters::default(),
            failing: false,
        }
    }

    pub fn accepts(&self, t: EventType) -> bool {
        self.types.is_empty() || self.types.contains(&t)
    }

    pub fn write(&mut self, line: &[u8]) {
        match self.sink.write_line(line) {
            Ok(()) => {
                self.counters.written += 1;
                if self.failing {
                    self.failing = false;
                    tracing::warn!(sink = self.sink.name(), "output recovered; writing again");
                }
            }
            Err(e) => {
                self.counters.dropped += 1;
                self.counters.write_errors += 1;
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(sink = self.sink.name(), error = %e, "output write failed; dropping events until it recovers");
                }
            }
        }
    }

    pub fn flush(&mut self) {
        if let Err(e) = self.sink.flush() {
            self.counters.write_errors += 1;
            if !self.failing {
                self.failing = true;
                tracing::warn!(sink = self.sink.name(), error = %e, "output flush failed");
            }
        }
    }
}

/// Appends to a file (mode 0640), reopened on request.
pub struct FileSink {
    path: PathBuf,
    name: String,
    out: BufWriter<File>,
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

impl FileSink {
    pub fn open(path: &Path) -> io::Result<FileSink> {
        let out = BufWriter::with_capacity(1 << 16, open_append(path)?);
        Ok(FileSink {
            path: path.to_owned(),
            name: format!("file:{}", path.display()),
            out,
        })
    }
}

impl Sink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.out.write_all(line)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
    fn reopen(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out = BufWriter::with_capacity(1 << 16, open_append(&self.path)?);
        Ok(())
    }
}

/// Standard output.
pub struct StdoutSink {
    out: BufWriter<io::Stdout>,
}

impl StdoutSink {
    pub fn new() -> Self {
        StdoutSink {
            out: BufWriter::with_capacity(1 << 16, io::stdout()),
        }
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        "stdout"
    }
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.out.write_all(line)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
