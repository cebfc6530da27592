//! Capture files: classic pcap (microsecond and nanosecond, either byte
//! order, and the "modified" Kuznetzov variant) and pcapng (any number of
//! sections and interfaces, each interface with its own link type and time
//! resolution), read in pure Rust with `pcap-parser`.
//!
//! A regular file is memory-mapped ([`super::map`]) and handed on in windows
//! that the frames point into; standard input, pipes and a file that cannot
//! be mapped are read in large chunks instead (shared with the workers,
//! recycled when they are done), with the incomplete record at a chunk's end
//! carried into the next.
//! [`CaptureParser`] is a pure state machine over a byte window, so every
//! check holds whatever the chunk boundaries:
//! - a record whose header is cut off by the end of the input is reported with
//!   its byte offset after all complete records before it were delivered;
//! - a record length beyond [`MAX_RECORD`] (no capture format allows more)
//!   stops the file with an error instead of a giant allocation or a skip
//!   into garbage;
//! - link types the decoder does not know are delivered as
//!   [`LinkType::Other`] so the caller can count and report them once.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};

use pcap_parser::nom;
use pcap_parser::pcapng::{
    Block, OptionCode, PcapNGOption, parse_block_be, parse_block_le, parse_sectionheaderblock,
};
use pcap_parser::{PcapError, parse_pcap_header};

use super::map::MappedFile;
use super::{Frame, LinkType};
use crate::time::Timestamp;

/// Largest record accepted (pcapng allows 2^32, libpcap's own limit is
/// 256 KiB; jumbo frames and TSO captures stay far below this).
pub const MAX_RECORD: usize = 16 * 1024 * 1024;
/// Most interfaces accepted in one pcapng section.
pub const MAX_INTERFACES: usize = 65_536;

/// Why a capture could not be read (further).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a pcap or pcapng file (magic {magic:#010x} at offset 0)")]
    NotACapture { path: PathBuf, magic: u32 },
    #[error("{path}: empty file, no capture header")]
    Empty { path: PathBuf },
    #[error("{path}: {what} at byte offset {offset}")]
    Malformed {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error(
        "{path}: the file was cut short while being read, or its bytes could not be read, at byte offset {offset}; every record before it was read"
    )]
    Unreadable { path: PathBuf, offset: u64 },
    #[error(
        "{path}: file ends inside {} at byte offset {offset} ({missing} more bytes expected){}",
        if *.offset == 0 { "its header" } else { "a record" },
        if *.offset == 0 { "" } else { "; every complete record before it was read" }
    )]
    Truncated {
        path: PathBuf,
        offset: u64,
        missing: usize,
    },
}

impl CaptureError {
    /// Byte offset the error refers to, when it has one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            CaptureError::Malformed { offset, .. }
            | CaptureError::Truncated { offset, .. }
            | CaptureError::Unreadable { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

/// What a parse step produced.
#[derive(Debug)]
pub enum Step<'a> {
    /// A frame, and how many bytes of the window it took.
    Frame(Frame<'a>, usize),
    /// A block that carries no packet (header, interface, statistics...).
    Skip(usize),
    /// The window ends inside a record: supply at least this many bytes more.
    NeedMore(usize),
    /// Clean end of input.
    End,
}

/// Parse failure, relative to the start of the current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseFailure {
    NotACapture(u32),
    Malformed(String),
}

#[derive(Clone, Debug)]
struct Interface {
    linktype: LinkType,
    units_per_sec: u64,
    ts_offset_secs: i64,
    snaplen: u32,
}

#[derive(Debug)]
enum Format {
    Unknown,
    Pcap {
        big_endian: bool,
        units_per_sec: u64,
        modified: bool,
        linktype: LinkType,
        snaplen: u32,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

/// Counters a reader keeps about the file itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileCounters {
    /// Records whose captured length exceeds the header's snap length.
    pub caplen_over_snaplen: u64,
    /// pcapng packet blocks naming an interface that was never described.
    pub unknown_interface: u64,
    /// Non-packet pcapng blocks skipped.
    pub blocks_skipped: u64,
}

/// Incremental parser over a byte window. Feed it the unread part of the
/// input; it never reads past the window and never panics on its content.
#[derive(Debug)]
pub struct CaptureParser {
    format: Format,
    /// Time of the last frame, given to pcapng simple packet blocks (which
    /// carry none).
    last_ts: Timestamp,
    pub counters: FileCounters,
}

impl Default for CaptureParser {
    fn default() -> Self {
        Self::new()
    }
}

fn be_or_le_u32(b: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(s)
    } else {
        u32::from_le_bytes(s)
    })
}

impl CaptureParser {
    pub fn new() -> Self {
        CaptureParser {
            format: Format::Unknown,
            last_ts: Timestamp(0),
            counters: FileCounters::default(),
        }
    }

    /// Parses the next item from `buf`. `at_eof` says whether more bytes
    /// can follow `buf`.
    pub fn step<'a>(&mut self, buf: &'a [u8], at_eof: bool) -> Result<Step<'a>, ParseFailure> {
        let step = match self.format {
            Format::Unknown => self.header(buf, at_eof),
            Format::Pcap { .. } => self.pcap_record(buf, at_eof),
            Format::PcapNg { .. } => self.pcapng_block(buf, at_eof),
        };
        if let Ok(Step::Frame(f, _)) = &step {
            self.last_ts = f.ts;
        }
        step
    }

    fn header<'a>(&mut self, buf: &'a [u8], at_eof: bool) -> Result<Step<'a>, ParseFailure> {
        let Some(magic) = be_or_le_u32(buf, 0, false) else {
            return if at_eof && buf.is_empty() {
                Ok(Step::End)
            } else {
                Ok(Step::NeedMore(4 - buf.len()))
            };
        };
        if magic == 0x0a0d_0d0a {
            // pcapng: the section header block is parsed as the first block.
            self.format = Format::PcapNg {
                big_endian: false,
                interfaces: Vec::new(),
            };
            return self.pcapng_block(buf, at_eof);
        }
        match parse_pcap_header(buf) {
            Ok((_, h)) => {
                // libpcap accepts versions 2.0 to 2.4 only.
                if h.version_major != 2 || h.version_minor > 4 {
                    return Err(ParseFailure::Malformed(format!(
                        "unsupported pcap version {}.{} in the file header",
                        h.version_major, h.version_minor
                    )));
                }
                let raw_linktype = u32::from_ne_bytes(h.network.0.to_ne_bytes());
                // Bits 16-25 of the link type field are reserved and must be zero.
                if raw_linktype & 0x03ff_0000 != 0 {
                    return Err(ParseFailure::Malformed(format!(
                        "link type field {raw_linktype:#010x} has reserved bits set in the file header"
                    )));
                }
                let linktype = LinkType::from_number(raw_linktype);
                self.format = Format::Pcap {
                    big_endian: h.is_bigendian(),
                    units_per_sec: if h.is_nanosecond_precision() {
                        1_000_000_000
                    } else {
                        1_000_000
                    },
                    modified: h.is_modified_format(),
                    linktype,
                    snaplen: h.snaplen,
                };
                Ok(Step::Skip(24))
            }
            Err(nom::Err::Incomplete(_)) => {
                Ok(Step::NeedMore(24usize.saturating_sub(buf.len()).max(1)))
            }
            Err(_) => Err(ParseFailure::NotACapture(magic)),
        }
    }

    fn pcap_record<'a>(&mut self, buf: &'a [u8], at_eof: bool) -> Result<Step<'a>, ParseFailure> {
        let Format::Pcap {
            big_endian,
            units_per_sec,
            modified,
            linktype,
            snaplen,
        } = self.format
        else {
            return Err(ParseFailure::Malformed("parser state".into()));
        };
        if buf.is_empty() && at_eof {
            return Ok(Step::End);
        }
        let hdr_len = if modified { 24 } else { 16 };
        if buf.len() < hdr_len {
            return Ok(Step::NeedMore(hdr_len - buf.len()));
        }
        let field = |i: usize| be_or_le_u32(buf, i * 4, big_endian).unwrap_or(0);
        let (secs, frac, caplen, origlen) = (field(0), field(1), field(2), field(3));
        let caplen = caplen as usize;
        if caplen > MAX_RECORD {
            return Err(ParseFailure::Malformed(format!(
                "record length {caplen} exceeds the {MAX_RECORD}-byte limit (corrupt record header)"
            )));
        }
        let Some(data) = buf.get(hdr_len..hdr_len + caplen) else {
            return Ok(Step::NeedMore(hdr_len + caplen - buf.len()));
        };
        // Counted once the record is complete: a record across the end of a
        // read chunk is asked for again with a longer window.
        if snaplen != 0 && caplen > snaplen as usize {
            self.counters.caplen_over_snaplen += 1;
        }
        let ts = Timestamp::from_parts(u64::from(secs), u64::from(frac), units_per_sec);
        let frame = Frame {
            ts,
            linktype,
            data,
            orig_len: origlen.max(u32::try_from(caplen).unwrap_or(u32::MAX)),
            iface: 0,
        };
        Ok(Step::Frame(frame, hdr_len + caplen))
    }

    fn pcapng_block<'a>(&mut self, buf: &'a [u8], at_eof: bool) -> Result<Step<'a>, ParseFailure> {
        let Format::PcapNg {
            big_endian,
            ref mut interfaces,
        } = self.format
        else {
            return Err(ParseFailure::Malformed("parser state".into()));
        };
        if buf.is_empty() && at_eof {
            return Ok(Step::End);
        }
        if buf.len() < 12 {
            return Ok(Step::NeedMore(12 - buf.len()));
        }
        // The section header's type reads the same in both byte orders.
        let is_shb = be_or_le_u32(buf, 0, false) == Some(0x0a0d_0d0a);
        // A section header carries its own byte order (its byte-order magic).
        let be = if is_shb {
            match be_or_le_u32(buf, 8, false) {
                Some(0x1a2b_3c4d) => false,
                Some(0x4d3c_2b1a) => true,
                _ => {
                    return Err(ParseFailure::Malformed(
                        "pcapng section header with an invalid byte-order magic".into(),
                    ));
                }
            }
        } else {
            big_endian
        };
        let block_type = be_or_le_u32(buf, 0, be).unwrap_or(0);
        let block_len = be_or_le_u32(buf, 4, be).unwrap_or(0) as usize;
        if block_len < 12 || !block_len.is_multiple_of(4) {
            return Err(ParseFailure::Malformed(format!(
                "pcapng block of invalid length {block_len}"
            )));
        }
        if block_len > MAX_RECORD {
            return Err(ParseFailure::Malformed(format!(
                "pcapng block length {block_len} exceeds the {MAX_RECORD}-byte limit"
            )));
        }
        if buf.len() < block_len {
            return Ok(Step::NeedMore(block_len - buf.len()));
        }
        let Some(block_bytes) = buf.get(..block_len) else {
            return Ok(Step::NeedMore(block_len));
        };
        let parsed = if is_shb {
            parse_sectionheaderblock(block_bytes).map(|(r, b)| (r, Block::SectionHeader(b)))
        } else if be {
            parse_block_be(block_bytes)
        } else {
            parse_block_le(block_bytes)
        };
        let block = match parsed {
            Ok((_, b)) => b,
            Err(nom::Err::Incomplete(_)) if !at_eof && buf.len() < block_len => {
                return Ok(Step::NeedMore(block_len - buf.len()));
            }
            Err(e) => {
                let what = match e {
                    nom::Err::Error(PcapError::HeaderNotRecognized)
                    | nom::Err::Failure(PcapError::HeaderNotRecognized) => {
                        "unrecognised pcapng block header".to_string()
                    }
                    _ => format!("malformed pcapng block of type {block_type:#010x}"),
                };
                return Err(ParseFailure::Malformed(what));
            }
        };
        match block {
            Block::SectionHeader(shb) => {
                // pcapng 1.0; libpcap also reads 1.2 (written by old tools).
                if shb.major_version != 1 || !matches!(shb.minor_version, 0 | 2) {
                    return Err(ParseFailure::Malformed(format!(
                        "unsupported pcapng version {}.{} in the section header",
                        shb.major_version, shb.minor_version
                    )));
                }
                *interfaces = Vec::new();
                self.format = Format::PcapNg {
                    big_endian: shb.big_endian(),
                    interfaces: Vec::new(),
                };
                Ok(Step::Skip(block_len))
            }
            Block::InterfaceDescription(idb) => {
                if interfaces.len() >= MAX_INTERFACES {
                    return Err(ParseFailure::Malformed(format!(
                        "more than {MAX_INTERFACES} interfaces in one pcapng section"
                    )));
                }
                let linktype = LinkType::from_number(u32::from(idb.linktype.0 as u16));
                let (units_per_sec, ts_offset_secs) = interface_time(&idb.options, big_endian);
                interfaces.push(Interface {
                    linktype,
                    units_per_sec,
                    ts_offset_secs,
                    snaplen: idb.snaplen,
                });
                Ok(Step::Skip(block_len))
            }
            Block::EnhancedPacket(epb) => {
                let Some(iface) = interfaces.get(epb.if_id as usize) else {
                    self.counters.unknown_interface += 1;
                    return Ok(Step::Skip(block_len));
                };
                let caplen = epb.caplen as usize;
                let data = epb.data.get(..caplen).unwrap_or(epb.data);
                if iface.snaplen != 0 && caplen > iface.snaplen as usize {
                    self.counters.caplen_over_snaplen += 1;
                }
                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let units = iface.units_per_sec.max(1);
                let secs = (raw / units).saturating_add_signed(iface.ts_offset_secs);
                let ts = Timestamp::from_parts(secs, raw % units, units);
                let frame = Frame {
                    ts,
                    linktype: iface.linktype,
                    data,
                    orig_len: epb.origlen.max(epb.caplen),
                    iface: epb.if_id,
                };
                Ok(Step::Frame(frame, block_len))
            }
            Block::SimplePacket(spb) => {
                let Some(iface) = interfaces.first() else {
                    self.counters.unknown_interface += 1;
                    return Ok(Step::Skip(block_len));
                };
                // A simple packet block holds min(origlen, snaplen) bytes and
                // no timestamp: it takes the time of the frame before it.
                let mut len = spb.data.len().min(spb.origlen as usize);
                if iface.snaplen != 0 {
                    len = len.min(iface.snaplen as usize);
                }
                let frame = Frame {
                    ts: self.last_ts,
                    linktype: iface.linktype,
                    data: spb.data.get(..len).unwrap_or(spb.data),
                    orig_len: spb.origlen,
                    iface: 0,
                };
                Ok(Step::Frame(frame, block_len))
            }
            _ => {
                self.counters.blocks_skipped += 1;
                Ok(Step::Skip(block_len))
            }
        }
    }
}

/// Time resolution (units per second) and offset (seconds) of a pcapng
/// interface: its `if_tsresol` and `if_tsoffset` options (pcapng
/// specification, section 4.2), read in the section's byte order.
/// pcap-parser's own fields are not used: they treat every binary
/// resolution (2^-n) as invalid and read the offset little-endian in
/// big-endian sections. An invalid resolution (10^20 or 2^64 and beyond)
/// leaves the default, microseconds.
fn interface_time(options: &[PcapNGOption<'_>], big_endian: bool) -> (u64, i64) {
    let (mut units, mut offset) = (1_000_000u64, 0i64);
    for opt in options {
        let Ok(value) = opt.as_bytes() else { continue };
        match opt.code {
            OptionCode::IfTsresol => {
                if let Some(&r) = value.first() {
                    let n = u32::from(r & 0x7f);
                    let u = if r & 0x80 == 0 {
                        10u64.checked_pow(n)
                    } else {
                        1u64.checked_shl(n)
                    };
                    units = u.unwrap_or(units);
                }
            }
            OptionCode::IfTsoffset => {
                if let Some(b) = value.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                    offset = if big_endian {
                        i64::from_be_bytes(b)
                    } else {
                        i64::from_le_bytes(b)
                    };
                }
            }
            _ => {}
        }
    }
    (units, offset)
}

/// An opened input: a capture file, or standard input.
pub struct Input {
    pub path: PathBuf,
    source: Source,
    size: Option<u64>,
}

enum Source {
    /// A regular file: memory-mapped when it can be.
    File(File),
    /// Anything else (standard input, a pipe, a buffer in tests): read.
    Reader(Box<dyn Read + Send>),
}

impl Input {
    /// Opens `path`; `-` is standard input.
    pub fn open(path: &Path) -> Result<Input, CaptureError> {
        if path == Path::new("-") {
            return Ok(Input::from_reader(path, Box::new(io::stdin())));
        }
        let io_err = |source| CaptureError::Io {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            // A named pipe or a device: read as it comes.
            return Ok(Input::from_reader(path, Box::new(file)));
        }
        if meta.len() == 0 {
            return Err(CaptureError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Input {
            path: path.to_owned(),
            source: Source::File(file),
            size: Some(meta.len()),
        })
    }

    /// An input read from any reader (a pipe, a buffer in tests).
    pub fn from_reader(path: &Path, reader: Box<dyn Read + Send>) -> Input {
        Input {
            path: path.to_owned(),
            source: Source::Reader(reader),
            size: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size in bytes when known (for progress display).
    pub fn size(&self) -> Option<u64> {
        self.size
    }
}

/// Bytes of input buffers held by the process now (chunks in flight and
/// the readers' pools, windows of mapped files in flight): a gauge for
/// `stats.json`, since the pools fill lazily (up to [`POOL`] chunks per
/// reader) as the workers fall behind.
static INPUT_BUFFER_BYTES: AtomicU64 = AtomicU64::new(0);

/// Bytes of input buffers held by the process now.
pub fn input_buffer_bytes() -> u64 {
    INPUT_BUFFER_BYTES.load(AtomicOrdering::Relaxed)
}

/// An input buffer, counted in [`INPUT_BUFFER_BYTES`] while it lives.
#[derive(Default)]
struct InputBuf(Vec<u8>);

impl InputBuf {
    /// Makes the buffer at least `len` bytes long (zeroed when it grows).
    fn ensure_len(&mut self, len: usize) {
        if self.0.len() < len {
            let before = self.0.capacity();
            self.0.resize(len, 0);
            let grown = self.0.capacity().saturating_sub(before) as u64;
            INPUT_BUFFER_BYTES.fetch_add(grown, AtomicOrdering::Relaxed);
        }
    }
}

impl Drop for InputBuf {
    fn drop(&mut self) {
        INPUT_BUFFER_BYTES.fetch_sub(self.0.capacity() as u64, AtomicOrdering::Relaxed);
    }
}

/// A block of input that frames point into, shared with the workers until
/// the last of them is done with it; then a read buffer goes back to the
/// pool it came from for the next read.
pub struct Chunk {
    data: ChunkData,
    /// Bytes of the chunk.
    len: usize,
    /// Where a buffer goes back to (a mapped chunk sends an empty one: the
    /// reader waits on the pool for either).
    pool: Option<crossbeam_channel::Sender<InputBuf>>,
    /// Chunks of this reader in flight.
    live: Option<Arc<AtomicUsize>>,
}

enum ChunkData {
    /// Read into a buffer, initialized once to its full length and reused
    /// as it is: a read overwrites it, so it is never zeroed again.
    Read(InputBuf),
    /// A window of a mapped file, from this offset.
    Mapped(Arc<MappedFile>, usize),
}

impl Chunk {
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            ChunkData::Read(buf) => buf.0.get(..self.len),
            ChunkData::Mapped(map, start) => {
                map.bytes().get(*start..).and_then(|b| b.get(..self.len))
            }
        }
        .unwrap_or(&[])
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(live) = &self.live {
            live.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        let Some(pool) = &self.pool else { return };
        match &mut self.data {
            // Chunks made larger for one big record are freed, not kept.
            ChunkData::Read(buf) if buf.0.len() == CHUNK => {
                let _ = pool.try_send(std::mem::take(buf));
            }
            ChunkData::Read(_) => {}
            ChunkData::Mapped(map, start) => {
                map.done(*start, *start + self.len);
                INPUT_BUFFER_BYTES.fetch_sub(self.len as u64, AtomicOrdering::Relaxed);
                let _ = pool.try_send(InputBuf::default());
            }
        }
    }
}

/// A buffer for the next chunk: a returned one, a new one while fewer than
/// [`POOL`] are in flight, or else the next one returned. None when a stop
/// was requested while waiting.
fn next_buffer(
    pool: &crossbeam_channel::Receiver<InputBuf>,
    live: &AtomicUsize,
    stop: &std::sync::atomic::AtomicBool,
) -> Option<InputBuf> {
    use std::sync::atomic::Ordering;
    loop {
        if let Ok(b) = pool.try_recv() {
            return Some(b);
        }
        if live.load(Ordering::Relaxed) < POOL {
            return Some(InputBuf::default());
        }
        if let Ok(b) = pool.recv_timeout(std::time::Duration::from_millis(100)) {
            return Some(b);
        }
        if stop.load(Ordering::Relaxed) {
            return None;
        }
    }
}

/// Where a delivered frame's bytes live.
pub enum FrameBytes<'a> {
    /// Inside a shared input chunk, at this offset: can be handed on without
    /// copying.
    Shared {
        chunk: &'a Arc<Chunk>,
        offset: usize,
    },
    /// In a transient buffer: copy before the callback returns.
    Transient,
}

/// Summary of one input once read.
#[derive(Debug, Default, Clone)]
pub struct ReadSummary {
    pub frames: u64,
    pub bytes_read: u64,
    pub counters: FileCounters,
}

/// Bytes of a chunk: what one read asks for, or the window of a mapped
/// file handed on at a time. Large sequential reads (as `cat` does) keep
/// the kernel's copy at memory bandwidth, and parsing then finds the records
/// in cache.
pub const CHUNK: usize = 1 << 20;
/// Chunks in flight at most (read, or held by batches not yet processed):
/// the reader waits for one to come back rather than allocate more, which
/// bounds the input held in memory to `CHUNK * POOL` (records larger than
/// a chunk get a chunk of their own size, freed after use).
///
/// The bound is kept short so that what the workers read is still in
/// cache: with 32 chunks the reader ran 32 MiB ahead of a busy worker, past
/// the last-level cache, so each payload the rules scanned came from
/// memory and each buffer the reader refilled was first fetched back from
/// the worker's cache. Four cost a one-worker run with all of ET Open 15 %
/// less CPU and one without rules 10 % less, with two workers no more
/// wall time (`scripts/bench-rules.sh`, `scripts/bench.sh`). A mapped file
/// keeps the same bound for the same reason.
pub const POOL: usize = 4;

/// Input the process holds at most while it reads a file: the chunks in
/// flight, or for a mapped file the pages of its windows in flight, of the
/// window last done with, and of the two partial release granules at
/// either end (see [`MappedFile::done`]).
pub const INPUT_HELD: usize = CHUNK * (POOL + 1) + 2 * super::map::RELEASE_GRANULE;

/// How far ahead of the record it parses the reader of a mapped file asks
/// for the file's bytes to be loaded. Each record header says where the
/// next one is, so walking a capture is a chain of cache misses the
/// hardware cannot run ahead of; loading every line a few KiB ahead turns
/// it into a sequential read (a 1M-record, 945 MB capture walked in 0.08 s
/// instead of 0.17 s, where `cat` takes 0.11 s).
const READ_AHEAD: usize = 4096;

/// Receives what [`read_frames`] reads.
pub trait FrameSink {
    /// A frame, in file order.
    fn frame(&mut self, frame: &Frame<'_>, bytes: FrameBytes<'_>);
    /// Bytes of the input consumed so far (about once per chunk).
    fn progress(&mut self, _pos: u64) {}
    /// The reader is about to wait for a slow input (a pipe): deliver what
    /// is pending rather than hold it until more arrives.
    fn idle(&mut self) {}
}

/// A closure taking each frame is a sink (no progress, nothing pending).
impl<F: FnMut(&Frame<'_>, FrameBytes<'_>)> FrameSink for F {
    fn frame(&mut self, frame: &Frame<'_>, bytes: FrameBytes<'_>) {
        self(frame, bytes)
    }
}

/// Reads a byte of every page `data` spans, its last byte included.
fn touch_pages(data: &[u8]) {
    const PAGE: usize = 4096;
    let mut at = 0;
    while at < data.len() {
        std::hint::black_box(data.get(at).copied());
        at += PAGE;
    }
    std::hint::black_box(data.last().copied());
}

/// A record of a mapped window held until the window is checked: where it
/// starts and ends in the chunk, and its frame, if it carries one (its
/// data given by offset and length in the chunk).
struct Held {
    from: usize,
    to: usize,
    frame: Option<(Timestamp, LinkType, u32, u32, usize, usize)>,
}

/// How parsing a chunk ended.
enum ChunkEnd {
    /// Every complete record was delivered; the one at `pos` needs
    /// `missing` bytes more than the chunk has.
    More { pos: usize, missing: usize },
    /// Reading is over at `pos`: the end of the capture, or a stop request.
    Over { pos: usize },
    /// The input ends inside the record at `pos`.
    Truncated { pos: usize, missing: usize },
    /// The record at `pos` is malformed.
    Failed { pos: usize, failure: ParseFailure },
    /// A mapped file was cut short, or its bytes could not be read: the
    /// record at `pos` and those after it were not delivered.
    Unreadable { pos: usize },
}

/// How reading a mapped file ended.
enum Mapped {
    /// For good, with the error that stopped it, if any.
    Done(Option<CaptureError>),
    /// At the end of the map, the file having grown since it was mapped.
    Grew,
}

/// The state of reading one input, whichever way its bytes arrive.
struct Reading<'s, S: FrameSink> {
    parser: CaptureParser,
    summary: ReadSummary,
    path: PathBuf,
    sink: &'s mut S,
    stop: &'s std::sync::atomic::AtomicBool,
    pool_tx: crossbeam_channel::Sender<InputBuf>,
    pool_rx: crossbeam_channel::Receiver<InputBuf>,
    live: Arc<AtomicUsize>,
    /// Absolute offset of the first byte of the current chunk.
    base: u64,
    /// The records of the mapped window being parsed (kept between windows
    /// for its allocation).
    held: Vec<Held>,
}

/// Reads every frame of `input` into `sink` in file order, until the end or
/// until `stop` is set. Returns the summary, plus the error that stopped
/// reading early, if any (every complete record before it has been
/// delivered).
///
/// A regular file is memory-mapped and handed on in windows of [`CHUNK`]
/// bytes, with no copy; other inputs (or a file that cannot be mapped) are
/// read in chunks, each parsed as far as its complete records go, the
/// incomplete record at its end starting the next. A read returns what the
/// input has now, so a slow pipe is processed as it arrives.
pub fn read_frames(
    input: Input,
    sink: &mut impl FrameSink,
    stop: &std::sync::atomic::AtomicBool,
) -> (ReadSummary, Option<CaptureError>) {
    let mut reading = Reading::new(input.path, sink, stop);
    let err = match input.source {
        Source::File(file) => {
            let map = MappedFile::new(&file);
            reading.file(file, map)
        }
        Source::Reader(mut reader) => reading.read(&mut reader),
    };
    (reading.summary(), err)
}

impl<'s, S: FrameSink> Reading<'s, S> {
    fn new(path: PathBuf, sink: &'s mut S, stop: &'s std::sync::atomic::AtomicBool) -> Self {
        let (pool_tx, pool_rx) = crossbeam_channel::bounded::<InputBuf>(POOL);
        Reading {
            parser: CaptureParser::new(),
            summary: ReadSummary::default(),
            path,
            sink,
            stop,
            pool_tx,
            pool_rx,
            live: Arc::new(AtomicUsize::new(0)),
            base: 0,
            held: Vec::new(),
        }
    }

    fn summary(self) -> ReadSummary {
        ReadSummary {
            bytes_read: self.base,
            counters: self.parser.counters,
            ..self.summary
        }
    }

    /// Reads a regular file through `map`, its map, or without one.
    fn file(&mut self, mut file: File, map: Option<MappedFile>) -> Option<CaptureError> {
        let Some(map) = map else {
            return self.read(&mut file);
        };
        match self.mapped(Arc::new(map), &file) {
            Mapped::Done(err) => err,
            // Read on from the first byte not read (a record boundary).
            Mapped::Grew => match file.seek(io::SeekFrom::Start(self.base)) {
                Ok(_) => self.read(&mut file),
                Err(source) => Some(CaptureError::Io {
                    path: self.path.clone(),
                    source,
                }),
            },
        }
    }
}

impl<S: FrameSink> Reading<'_, S> {
    fn stopping(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Shares a chunk of `len` bytes with the sink.
    fn chunk(&self, data: ChunkData, len: usize) -> Arc<Chunk> {
        self.live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let ChunkData::Mapped(map, start) = &data {
            map.hold(*start);
            // Mapped bytes in flight are held as a read buffer is.
            INPUT_BUFFER_BYTES.fetch_add(len as u64, AtomicOrdering::Relaxed);
        }
        Arc::new(Chunk {
            data,
            len,
            pool: Some(self.pool_tx.clone()),
            live: Some(Arc::clone(&self.live)),
        })
    }

    fn failure(&self, offset: u64, f: ParseFailure) -> CaptureError {
        let path = self.path.clone();
        match f {
            ParseFailure::NotACapture(magic) if offset == 0 => {
                CaptureError::NotACapture { path, magic }
            }
            ParseFailure::NotACapture(magic) => CaptureError::Malformed {
                path,
                offset,
                what: format!("bad magic {magic:#010x}"),
            },
            ParseFailure::Malformed(what) => CaptureError::Malformed { path, offset, what },
        }
    }

    /// The error for an input ending inside a record at `offset`.
    fn truncated(&self, offset: u64, missing: usize) -> CaptureError {
        CaptureError::Truncated {
            path: self.path.clone(),
            offset,
            missing,
        }
    }

    /// Delivers the records of `chunk`; `eof` says no bytes follow it.
    ///
    /// A window of a mapped file (`mapped`: the map and its file) has its
    /// bytes asked for [`READ_AHEAD`] bytes ahead of the parser, and its
    /// frames are held until the whole window is parsed: they go on only if
    /// the file still holds all of their bytes then and none of its pages
    /// faulted. A file cut short under the map reads as zeros up to the end
    /// of the page the cut falls in (then it faults); without the check
    /// those zeros would parse as records.
    fn parse(
        &mut self,
        chunk: &Arc<Chunk>,
        eof: bool,
        mapped: Option<(&MappedFile, &File)>,
    ) -> ChunkEnd {
        let bytes = chunk.bytes();
        let mut pos = 0usize;
        // Bytes of the chunk asked for so far.
        let mut ahead = 0usize;
        let mut held = match mapped {
            Some(_) => std::mem::take(&mut self.held),
            None => Vec::new(),
        };
        held.clear();
        let end = loop {
            if self.stopping() {
                break ChunkEnd::Over { pos };
            }
            if mapped.is_some() {
                // Four lines at a time (one check per 256 bytes, the loop
                // being most of the reader's instructions otherwise); past
                // the chunk's end is still the map, or nothing a prefetch
                // can fault on.
                let to = (pos + READ_AHEAD).min(bytes.len());
                while ahead < to {
                    let at = bytes.as_ptr().wrapping_add(ahead);
                    for line in 0..4 {
                        crate::cache::prefetch(at.wrapping_add(line * 64));
                    }
                    ahead += 256;
                }
            }
            let window = bytes.get(pos..).unwrap_or(&[]);
            let step = self.parser.step(window, eof);
            if let Some((map, _)) = mapped {
                if let Ok(Step::Frame(frame, _)) = &step {
                    // Every page of the frame is read here, so that one that
                    // cannot be read is found before the frame goes on.
                    touch_pages(frame.data);
                }
                std::sync::atomic::compiler_fence(AtomicOrdering::SeqCst);
                if map.fault().is_some() {
                    break ChunkEnd::Unreadable { pos };
                }
            }
            match step {
                Ok(Step::Frame(frame, used)) => {
                    // The frame's data is a slice of the chunk: its offset.
                    let offset = (frame.data.as_ptr() as usize)
                        .wrapping_sub(bytes.as_ptr() as usize)
                        .min(bytes.len());
                    if mapped.is_some() {
                        held.push(Held {
                            from: pos,
                            to: pos + used,
                            frame: Some((
                                frame.ts,
                                frame.linktype,
                                frame.orig_len,
                                frame.iface,
                                offset,
                                frame.data.len(),
                            )),
                        });
                    } else {
                        self.summary.frames += 1;
                        self.sink
                            .frame(&frame, FrameBytes::Shared { chunk, offset });
                    }
                    pos += used;
                }
                Ok(Step::Skip(used)) => {
                    if mapped.is_some() {
                        held.push(Held {
                            from: pos,
                            to: pos + used,
                            frame: None,
                        });
                    }
                    pos += used;
                }
                Ok(Step::End) => break ChunkEnd::Over { pos },
                Ok(Step::NeedMore(missing)) if eof => break ChunkEnd::Truncated { pos, missing },
                Ok(Step::NeedMore(missing)) => break ChunkEnd::More { pos, missing },
                Err(failure) => break ChunkEnd::Failed { pos, failure },
            }
        };
        let Some((map, file)) = mapped else {
            return end;
        };
        // What of the window can be trusted: the bytes the file still holds,
        // before the first that faulted.
        std::sync::atomic::compiler_fence(AtomicOrdering::SeqCst);
        let start = (bytes.as_ptr() as usize).wrapping_sub(map.bytes().as_ptr() as usize);
        let size = file
            .metadata()
            .map_or(0, |m| usize::try_from(m.len()).unwrap_or(usize::MAX));
        let limit = size
            .min(map.fault().unwrap_or(usize::MAX))
            .saturating_sub(start);
        let mut cut = None;
        for h in &held {
            if h.to > limit {
                cut = Some(h.from);
                break;
            }
            let Some((ts, linktype, orig_len, iface, offset, len)) = h.frame else {
                continue;
            };
            let frame = Frame {
                ts,
                linktype,
                data: bytes.get(offset..offset + len).unwrap_or(&[]),
                orig_len,
                iface,
            };
            self.summary.frames += 1;
            self.sink
                .frame(&frame, FrameBytes::Shared { chunk, offset });
        }
        // The buffer is kept for the next window.
        self.held = held;
        if let Some(pos) = cut {
            return ChunkEnd::Unreadable { pos };
        }
        if limit < bytes.len() {
            // Cut short or faulted inside the window, after the last record
            // parsed: whatever the parser made of the rest, reading stops
            // there.
            let (ChunkEnd::More { pos, .. }
            | ChunkEnd::Over { pos }
            | ChunkEnd::Truncated { pos, .. }
            | ChunkEnd::Failed { pos, .. }
            | ChunkEnd::Unreadable { pos }) = end;
            return ChunkEnd::Unreadable { pos };
        }
        end
    }

    /// Ends reading at the end of a chunk that is not `More`; None for
    /// `More`, which goes on.
    fn finish(&mut self, end: &ChunkEnd) -> Option<Option<CaptureError>> {
        match *end {
            ChunkEnd::More { .. } => None,
            ChunkEnd::Over { pos } => {
                self.base += pos as u64;
                Some(None)
            }
            ChunkEnd::Truncated { pos, missing } => {
                self.base += pos as u64;
                Some(Some(self.truncated(self.base, missing)))
            }
            ChunkEnd::Failed { pos, ref failure } => {
                self.base += pos as u64;
                Some(Some(self.failure(self.base, failure.clone())))
            }
            ChunkEnd::Unreadable { pos } => {
                self.base += pos as u64;
                Some(Some(CaptureError::Unreadable {
                    path: self.path.clone(),
                    offset: self.base,
                }))
            }
        }
    }

    /// Reads a mapped file in windows of [`CHUNK`] bytes (or of the record
    /// that does not fit one). A file cut short while it is read stops at
    /// its new end with an error (see [`Reading::parse`]). One that grew
    /// past the map (still being written) is read on from the map's end.
    fn mapped(&mut self, map: Arc<MappedFile>, file: &File) -> Mapped {
        let total = map.bytes().len();
        let mut want = 1usize;
        loop {
            if self.stopping() {
                return Mapped::Done(None);
            }
            if self.next_buffer().is_none() {
                return Mapped::Done(None);
            }
            let start = usize::try_from(self.base).unwrap_or(usize::MAX).min(total);
            let len = CHUNK.max(want).min(MAX_RECORD * 2).min(total - start);
            let eof = start + len == total;
            let chunk = self.chunk(ChunkData::Mapped(Arc::clone(&map), start), len);
            let end = self.parse(&chunk, eof, Some((&map, file)));
            if let ChunkEnd::Over { pos } | ChunkEnd::Truncated { pos, .. } = end
                && eof
                && !self.stopping()
                && file.metadata().is_ok_and(|m| m.len() > total as u64)
            {
                self.base += pos as u64;
                return Mapped::Grew;
            }
            if let Some(err) = self.finish(&end) {
                return Mapped::Done(err);
            }
            if let ChunkEnd::More { pos, missing } = end {
                want = len - pos + missing;
                self.base += pos as u64;
                self.sink.progress(self.base);
            }
        }
    }

    /// Waits for room for one more chunk in flight; None on a stop request.
    fn next_buffer(&mut self) -> Option<InputBuf> {
        next_buffer(&self.pool_rx, &self.live, self.stop)
    }

    /// Reads `reader` in chunks, carrying the incomplete record at a chunk's
    /// end into the next.
    fn read(&mut self, reader: &mut dyn Read) -> Option<CaptureError> {
        // Bytes of an incomplete record carried into the next chunk.
        let mut carry: Vec<u8> = Vec::new();
        let mut eof = false;
        // The parser asked for this many bytes at the start of the next chunk.
        let mut want = 1usize;
        let mut short_read = false;
        loop {
            if self.stopping() {
                return None;
            }
            // Fill a chunk: the carried bytes, then reads until it is full,
            // the input ends, or (a slow input) a read comes back short once
            // the parser has what it asked for.
            let cap = CHUNK.max(want).min(MAX_RECORD * 2);
            let mut buf = self.next_buffer()?;
            buf.ensure_len(cap);
            let buf_bytes = &mut buf.0;
            let mut len = carry.len();
            if let Some(dst) = buf_bytes.get_mut(..len) {
                dst.copy_from_slice(&carry);
            }
            carry.clear();
            while !eof && len < cap && !(short_read && len >= want) {
                if short_read {
                    self.sink.idle();
                }
                match reader.read(buf_bytes.get_mut(len..cap).unwrap_or(&mut [])) {
                    Ok(0) => eof = true,
                    Ok(n) => {
                        short_read = len + n < cap;
                        len += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Some(CaptureError::Io {
                            path: self.path.clone(),
                            source: e,
                        });
                    }
                }
            }
            let chunk = self.chunk(ChunkData::Read(buf), len);
            let end = self.parse(&chunk, eof, None);
            if let Some(err) = self.finish(&end) {
                return err;
            }
            if let ChunkEnd::More { pos, missing } = end {
                let rest = chunk.bytes().get(pos..).unwrap_or(&[]);
                want = rest.len() + missing;
                carry.extend_from_slice(rest);
                self.base += pos as u64;
                self.sink.progress(self.base);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// Classic pcap header: magic, v2.4, zone 0, sigfigs 0, snaplen, linktype.
    fn pcap_header(magic: u32, be: bool, linktype: u32) -> Vec<u8> {
        let mut v = Vec::new();
        let put32 =
            |v: &mut Vec<u8>, x: u32| v.extend(if be { x.to_be_bytes() } else { x.to_le_bytes() });
        let put16 =
            |v: &mut Vec<u8>, x: u16| v.extend(if be { x.to_be_bytes() } else { x.to_le_bytes() });
        put32(&mut v, magic);
        put16(&mut v, 2);
        put16(&mut v, 4);
        put32(&mut v, 0);
        put32(&mut v, 0);
        put32(&mut v, 65535);
        put32(&mut v, linktype);
        v
    }

    fn record(v: &mut Vec<u8>, be: bool, secs: u32, frac: u32, data: &[u8]) {
        for x in [secs, frac, data.len() as u32, data.len() as u32] {
            v.extend(if be { x.to_be_bytes() } else { x.to_le_bytes() });
        }
        v.extend_from_slice(data);
    }

    type Parsed = (
        Vec<(Timestamp, LinkType, Vec<u8>)>,
        Option<ParseFailure>,
        bool,
    );

    fn parse_all(bytes: &[u8]) -> Parsed {
        let mut p = CaptureParser::new();
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            match p.step(&bytes[pos..], true) {
                Ok(Step::Frame(f, used)) => {
                    out.push((f.ts, f.linktype, f.data.to_vec()));
                    pos += used;
                }
                Ok(Step::Skip(used)) => pos += used,
                Ok(Step::End) => return (out, None, false),
                Ok(Step::NeedMore(_)) => return (out, None, true),
                Err(e) => return (out, Some(e), false),
            }
        }
    }

    #[test]
    fn classic_pcap_all_magics() {
        for (magic, be, units) in [
            (0xa1b2_c3d4u32, false, 1_000_000u32),
            (0xa1b2_c3d4, true, 1_000_000),
            (0xa1b2_3c4d, false, 1_000_000_000),
            (0xa1b2_3c4d, true, 1_000_000_000),
        ] {
            let mut f = pcap_header(magic, be, 101);
            record(&mut f, be, 10, units / 2, &[0x45, 0, 0, 20]);
            record(&mut f, be, 11, 0, &[0x60]);
            let (frames, err, trunc) = parse_all(&f);
            assert_eq!(err, None);
            assert!(!trunc);
            assert_eq!(frames.len(), 2, "magic {magic:#x} be {be}");
            assert_eq!(frames[0].0, Timestamp(10_500_000));
            assert_eq!(frames[0].1, LinkType::Raw);
            assert_eq!(frames[1].2, vec![0x60]);
        }
    }

    #[test]
    fn every_truncation_of_a_pcap_stops_cleanly() {
        let mut f = pcap_header(0xa1b2_c3d4, false, 1);
        record(&mut f, false, 1, 0, &[1; 60]);
        record(&mut f, false, 2, 0, &[2; 60]);
        for cut in 0..f.len() {
            let (frames, err, trunc) = parse_all(&f[..cut]);
            assert_eq!(err, None, "cut {cut}");
            let complete = if cut >= 24 + 76 * 2 {
                2
            } else if cut >= 24 + 76 {
                1
            } else {
                0
            };
            assert_eq!(frames.len(), complete, "cut {cut}");
            // Zero bytes is a clean (empty) end; anything else short is truncated.
            assert_eq!(trunc, cut != 0 && cut != 24 && cut != 100, "cut {cut}");
        }
    }

    #[test]
    fn absurd_record_length_is_an_error_not_an_allocation() {
        let mut f = pcap_header(0xa1b2_c3d4, false, 1);
        f.extend([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let (_, err, _) = parse_all(&f);
        assert!(matches!(err, Some(ParseFailure::Malformed(m)) if m.contains("exceeds")));
    }

    #[test]
    fn invalid_headers_are_rejected() {
        let mut f = pcap_header(0xa1b2_c3d4, false, 1);
        f[4] = 1; // version 1.4
        assert!(
            matches!(parse_all(&f).1, Some(ParseFailure::Malformed(m)) if m.contains("version 1.4"))
        );
        let f = pcap_header(0xa1b2_c3d4, false, 0x0030_0001);
        assert!(
            matches!(parse_all(&f).1, Some(ParseFailure::Malformed(m)) if m.contains("reserved"))
        );
        let mut f = pcapng(false);
        f[12] = 2; // major version 2
        assert!(
            matches!(parse_all(&f).1, Some(ParseFailure::Malformed(m)) if m.contains("pcapng version 2.0"))
        );
    }

    #[test]
    fn not_a_capture() {
        let (_, err, _) = parse_all(b"GET / HTTP/1.1\r\n\r\n........");
        assert_eq!(
            err,
            Some(ParseFailure::NotACapture(u32::from_le_bytes(*b"GET ")))
        );
    }

    fn ng_block(v: &mut Vec<u8>, be: bool, kind: u32, body: &[u8]) {
        let len = 12 + body.len().div_ceil(4) * 4;
        let put =
            |v: &mut Vec<u8>, x: u32| v.extend(if be { x.to_be_bytes() } else { x.to_le_bytes() });
        put(v, kind);
        put(v, len as u32);
        v.extend_from_slice(body);
        v.resize(v.len() + (len - 12 - body.len()), 0);
        put(v, len as u32);
    }

    fn pcapng(be: bool) -> Vec<u8> {
        let put32 = |x: u32| if be { x.to_be_bytes() } else { x.to_le_bytes() };
        let put16 = |x: u16| if be { x.to_be_bytes() } else { x.to_le_bytes() };
        let mut v = Vec::new();
        // Section header: BOM, version 1.0, section length -1.
        let mut shb = Vec::new();
        shb.extend(put32(0x1a2b_3c4d));
        shb.extend(put16(1));
        shb.extend(put16(0));
        shb.extend([0xff; 8]);
        ng_block(&mut v, be, 0x0a0d_0d0a, &shb);
        // Interface 0: Ethernet, default microseconds.
        let mut idb = Vec::new();
        idb.extend(put16(1));
        idb.extend(put16(0));
        idb.extend(put32(0));
        ng_block(&mut v, be, 1, &idb);
        // Interface 1: raw IP, nanosecond resolution (option if_tsresol = 9).
        let mut idb = Vec::new();
        idb.extend(put16(101));
        idb.extend(put16(0));
        idb.extend(put32(0));
        idb.extend(put16(9));
        idb.extend(put16(1));
        idb.extend([9, 0, 0, 0]);
        idb.extend([0, 0, 0, 0]); // opt_endofopt
        ng_block(&mut v, be, 1, &idb);
        for (iface, ts) in [(0u32, 1_500_000u64), (1, 2_250_000_000)] {
            let mut epb = Vec::new();
            epb.extend(put32(iface));
            epb.extend(put32((ts >> 32) as u32));
            epb.extend(put32(ts as u32));
            epb.extend(put32(5));
            epb.extend(put32(5));
            epb.extend([0xaa; 5]);
            ng_block(&mut v, be, 6, &epb);
        }
        v
    }

    #[test]
    fn pcapng_interfaces_keep_their_linktype_and_resolution() {
        for be in [false, true] {
            let (frames, err, trunc) = parse_all(&pcapng(be));
            assert_eq!(err, None, "be {be}");
            assert!(!trunc);
            assert_eq!(frames.len(), 2);
            assert_eq!(
                (frames[0].0, frames[0].1),
                (Timestamp(1_500_000), LinkType::Ethernet)
            );
            assert_eq!(
                (frames[1].0, frames[1].1),
                (Timestamp(2_250_000), LinkType::Raw)
            );
            assert_eq!(frames[1].2, vec![0xaa; 5]);
        }
    }

    #[test]
    fn every_truncation_of_a_pcapng_stops_cleanly() {
        let f = pcapng(false);
        for cut in 1..f.len() {
            let (frames, err, _) = parse_all(&f[..cut]);
            assert!(
                err.is_none() || matches!(err, Some(ParseFailure::Malformed(_))),
                "cut {cut}"
            );
            assert!(frames.len() <= 2);
        }
    }

    /// A reader that hands out at most `step` bytes per read.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl std::io::Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn collect(input: Input) -> (Vec<(Timestamp, Vec<u8>)>, u64, bool) {
        let mut v = Vec::new();
        let (s, e) = read_frames(
            input,
            &mut |f: &Frame<'_>, b: FrameBytes<'_>| {
                // Shared bytes are the frame's bytes.
                if let FrameBytes::Shared { chunk, offset } = b {
                    assert_eq!(&chunk.bytes()[offset..offset + f.data.len()], f.data);
                }
                v.push((f.ts, f.data.to_vec()))
            },
            &Default::default(),
        );
        (v, s.frames, e.is_none())
    }

    /// A file, and the same bytes trickling in through a pipe in pieces of
    /// every size from 1 to 7 bytes, give the same frames.
    #[test]
    fn file_and_trickle_agree() {
        let bytes = pcapng(false);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pcapng");
        std::fs::write(&path, &bytes).unwrap();
        let file = collect(Input::open(&path).unwrap());
        assert_eq!(file.1, 2);
        for step in 1..8 {
            let piped = collect(Input::from_reader(
                &path,
                Box::new(Trickle {
                    data: bytes.clone(),
                    pos: 0,
                    step,
                }),
            ));
            assert_eq!(file, piped, "step {step}");
        }
    }

    /// Records straddling the chunk boundaries are carried over whole:
    /// a capture of several chunks reads back every record in order.
    #[test]
    fn records_across_chunk_boundaries() {
        let mut v = pcap_header(0xa1b2_c3d4, false, 1);
        let mut want = Vec::new();
        let mut i: u32 = 0;
        while v.len() < 3 * CHUNK + 12_345 {
            let data: Vec<u8> = (0..(60 + i % 1400)).map(|b| (b ^ i) as u8).collect();
            record(&mut v, false, i, 0, &data);
            want.push((Timestamp(u64::from(i) * 1_000_000), data));
            i += 1;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pcap");
        std::fs::write(&path, &v).unwrap();
        // Mapped, and read through a pipe-like reader.
        let mapped = Input::open(&path).unwrap();
        assert!(matches!(mapped.source, Source::File(_)));
        let piped = Input::from_reader(&path, Box::new(std::io::Cursor::new(v.clone())));
        for input in [mapped, piped] {
            let (got, n, ok) = collect(input);
            assert!(ok);
            assert_eq!(n, u64::from(i));
            assert!(got == want, "every record, in order, intact");
        }
    }

    /// A capture of `n`-byte records filling about three chunks, and where
    /// each record ends.
    fn three_chunks(n: usize) -> (Vec<u8>, Vec<usize>) {
        let mut v = pcap_header(0xa1b2_c3d4, false, 1);
        let mut ends = Vec::new();
        let mut i: u32 = 0;
        while v.len() < 3 * CHUNK {
            record(&mut v, false, i, 0, &vec![i as u8; n]);
            ends.push(v.len());
            i += 1;
        }
        (v, ends)
    }

    /// Writes `bytes` to `path` and maps the file, then lets `change` change
    /// the file under the map (through a handle of its own).
    fn map_then_change(
        path: &Path,
        bytes: &[u8],
        change: impl FnOnce(&mut File),
    ) -> (File, MappedFile) {
        std::fs::write(path, bytes).unwrap();
        let file = File::open(path).unwrap();
        let map = MappedFile::new(&file).unwrap();
        change(&mut std::fs::OpenOptions::new().append(true).open(path).unwrap());
        (file, map)
    }

    /// A file mapped at one length and cut short before its windows are
    /// read, anywhere (inside the first window, mid-record, on a record's
    /// end, on a page boundary, in a later window): the map still spans
    /// the old length and the bytes past the cut read as zeros up to the
    /// page's end, then fault. Every record wholly before the cut goes on,
    /// no made-up one after it, and the error names the first byte not
    /// read.
    #[test]
    fn mapped_file_cut_anywhere_delivers_no_made_up_records() {
        let (v, ends) = three_chunks(1000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.pcap");
        for cut in [
            100_000,
            ends[500],
            40 * 4096,
            CHUNK + 100_000,
            2 * CHUNK + 7,
        ] {
            let (file, map) = map_then_change(&path, &v, |f| f.set_len(cut as u64).unwrap());
            let mut frames: Vec<Vec<u8>> = Vec::new();
            let mut sink = |f: &Frame<'_>, _: FrameBytes<'_>| frames.push(f.data.to_vec());
            let stop = Default::default();
            let mut reading = Reading::new(path.clone(), &mut sink, &stop);
            let err = reading.file(file, Some(map));
            let summary = reading.summary();
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(frames.len(), whole, "cut {cut}");
            for (n, f) in frames.iter().enumerate() {
                assert_eq!(f, &vec![n as u8; 1000], "cut {cut}: frame {n} intact");
            }
            let Some(CaptureError::Unreadable { offset, .. }) = err else {
                panic!("cut {cut}: expected an unreadable-bytes error, got {err:?}");
            };
            assert_eq!(offset, ends[whole - 1] as u64, "cut {cut}");
            assert_eq!(summary.bytes_read, offset);
            assert_eq!(summary.frames, whole as u64);
        }
    }

    /// A capture still being written when it is read: what was added after
    /// it was mapped is read too, as a read would have.
    #[test]
    fn mapped_file_that_grows_is_read_to_its_new_end() {
        let (v, ends) = three_chunks(700);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.pcap");
        // Mapped with half of the records, the last of them cut in two.
        let first = ends[ends.len() / 2] - 300;
        let (file, map) = map_then_change(&path, &v[..first], |f| {
            std::io::Write::write_all(f, &v[first..]).unwrap()
        });
        let mut n = 0u32;
        let mut sink = |f: &Frame<'_>, _: FrameBytes<'_>| {
            assert_eq!(f.data, &vec![n as u8; 700][..], "frame {n}");
            n += 1;
        };
        let stop = Default::default();
        let mut reading = Reading::new(path.clone(), &mut sink, &stop);
        let err = reading.file(file, Some(map));
        let summary = reading.summary();
        assert!(err.is_none(), "{err:?}");
        assert_eq!(summary.frames, ends.len() as u64);
        assert_eq!(summary.bytes_read, v.len() as u64);
    }

    /// A capture cut short by another process while it is read (mapped):
    /// reading stops with an error at the first byte that could not be
    /// read, every frame before it delivered intact, and nothing after.
    #[test]
    fn file_cut_short_while_read_is_an_error_not_a_crash() {
        let (v, ends) = three_chunks(1000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shrinking.pcap");
        std::fs::write(&path, &v).unwrap();
        let cut = CHUNK + 100_000;
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut frames: Vec<Vec<u8>> = Vec::new();
        let (summary, err) = read_frames(
            Input::open(&path).unwrap(),
            &mut |f: &Frame<'_>, _: FrameBytes<'_>| {
                if frames.is_empty() {
                    file.set_len(cut as u64).unwrap();
                }
                frames.push(f.data.to_vec());
            },
            &Default::default(),
        );
        let Some(CaptureError::Unreadable { offset, .. }) = err else {
            panic!("expected an unreadable-bytes error, got {err:?}");
        };
        // Every record wholly before the cut, and nothing else.
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(frames.len(), whole);
        for (n, f) in frames.iter().enumerate() {
            assert_eq!(f, &vec![n as u8; 1000], "frame {n} intact");
        }
        assert_eq!(offset, ends[whole - 1] as u64);
        assert_eq!(summary.bytes_read, offset);
        assert_eq!(summary.frames, frames.len() as u64);
        assert!(err.unwrap().to_string().contains("shrinking.pcap"));
    }

    /// Feeds `bytes` as a stream reader does: a window that grows by what
    /// the parser asks for, or by `grow` bytes when that is more. Returns
    /// the frames, whether the input ended inside a record, and the counters.
    fn parse_windowed(bytes: &[u8], grow: usize) -> (usize, bool, FileCounters) {
        let mut p = CaptureParser::new();
        let (mut pos, mut avail, mut frames) = (0, grow.min(bytes.len()), 0);
        loop {
            let at_eof = avail == bytes.len();
            match p.step(&bytes[pos..avail], at_eof) {
                Ok(Step::Frame(_, used)) => {
                    frames += 1;
                    pos += used;
                }
                Ok(Step::Skip(used)) => pos += used,
                Ok(Step::End) => return (frames, false, p.counters),
                Ok(Step::NeedMore(_)) if at_eof => return (frames, true, p.counters),
                Ok(Step::NeedMore(n)) => avail = avail.saturating_add(n.max(grow)).min(bytes.len()),
                Err(e) => panic!("{e:?}"),
            }
        }
    }

    /// Fuzz finding (capture): a record longer than the snap length was
    /// counted again each time the reader retried it with a longer window,
    /// so the count depended on where read chunks happened to end.
    #[test]
    fn fuzz_capture_caplen_over_snaplen_counted_once_per_record() {
        let bytes: &[u8] = &[
            0xd4, 0xc3, 0xb2, 0xa1, // magic: little-endian, microseconds
            0x02, 0x00, 0x04, 0x00, // version 2.4
            0x00, 0x00, 0x00, 0x00, // zone
            0x00, 0x00, 0x00, 0x00, // sigfigs
            0x01, 0x00, 0x00, 0x00, // snaplen 1
            0x01, 0x00, 0x00, 0x00, // link type 1, Ethernet
            0x96, 0x9c, 0xb1, 0x53, // record: seconds
            0x17, 0xf8, 0x0e, 0x00, // microseconds
            0x08, 0x00, 0x00, 0x00, // caplen 8, beyond the snap length
            0x4e, 0x00, 0x00, 0x00, // origlen 78
            0x00, 0x26, 0x88, 0xe7, 0x8d, 0x81, 0xa8, 0x20, // 8 bytes of frame
        ];
        for grow in [1, 7, 16, 30, usize::MAX] {
            let (frames, truncated, counters) = parse_windowed(bytes, grow);
            assert_eq!((frames, truncated), (1, false), "growing by {grow}");
            assert_eq!(counters.caplen_over_snaplen, 1, "growing by {grow}");
        }
    }

    /// An interface description block: link type, snap length and options
    /// (code, value), in the section's byte order.
    fn idb(v: &mut Vec<u8>, be: bool, linktype: u16, snaplen: u32, opts: &[(u16, &[u8])]) {
        let put16 = |x: u16| if be { x.to_be_bytes() } else { x.to_le_bytes() };
        let mut body = Vec::new();
        body.extend(put16(linktype));
        body.extend(put16(0));
        body.extend(if be {
            snaplen.to_be_bytes()
        } else {
            snaplen.to_le_bytes()
        });
        for (code, value) in opts {
            body.extend(put16(*code));
            body.extend(put16(value.len() as u16));
            body.extend_from_slice(value);
            body.resize(body.len().next_multiple_of(4), 0);
        }
        body.extend([0; 4]); // opt_endofopt
        ng_block(v, be, 1, &body);
    }

    fn epb(v: &mut Vec<u8>, be: bool, iface: u32, ts: u64, data: &[u8]) {
        let put = |x: u32| if be { x.to_be_bytes() } else { x.to_le_bytes() };
        let mut body = Vec::new();
        for x in [
            iface,
            (ts >> 32) as u32,
            ts as u32,
            data.len() as u32,
            data.len() as u32,
        ] {
            body.extend(put(x));
        }
        body.extend_from_slice(data);
        ng_block(v, be, 6, &body);
    }

    fn shb(v: &mut Vec<u8>, be: bool) {
        let mut body = Vec::new();
        body.extend(if be {
            [0x1a, 0x2b, 0x3c, 0x4d]
        } else {
            [0x4d, 0x3c, 0x2b, 0x1a]
        });
        body.extend(if be { [0, 1, 0, 0] } else { [1, 0, 0, 0] });
        body.extend([0xff; 8]);
        ng_block(v, be, 0x0a0d_0d0a, &body);
    }

    /// if_tsresol (decimal and binary) and if_tsoffset, in sections of
    /// either byte order: every frame lands on the same instant.
    #[test]
    fn pcapng_interface_time_options_in_either_byte_order() {
        let t0 = 1_700_000_000u64;
        let want = Timestamp(t0 * 1_000_000 + 250_000); // t0 + 0.25 s
        for be in [false, true] {
            let off = |x: u64| if be { x.to_be_bytes() } else { x.to_le_bytes() };
            let mut f = Vec::new();
            shb(&mut f, be);
            idb(&mut f, be, 1, 0, &[]); // microseconds
            idb(&mut f, be, 101, 0, &[(9, &[4]), (14, &off(t0))]); // 10^-4 s, offset t0
            idb(&mut f, be, 101, 0, &[(9, &[0x80 | 20])]); // 2^-20 s
            idb(&mut f, be, 101, 0, &[(9, &[0x80 | 10]), (14, &off(t0))]); // 2^-10 s, offset t0
            idb(&mut f, be, 101, 0, &[(9, &[0x80 | 64])]); // invalid: microseconds
            epb(&mut f, be, 0, t0 * 1_000_000 + 250_000, &[0x45]);
            epb(&mut f, be, 1, 2_500, &[0x45]);
            epb(&mut f, be, 2, (t0 << 20) + (1 << 18), &[0x45]);
            epb(&mut f, be, 3, 256, &[0x45]);
            epb(&mut f, be, 4, t0 * 1_000_000 + 250_000, &[0x45]);
            let (frames, err, trunc) = parse_all(&f);
            assert_eq!((err, trunc), (None, false), "be {be}");
            let times: Vec<Timestamp> = frames.iter().map(|f| f.0).collect();
            assert_eq!(times, vec![want; 5], "be {be}");
        }
    }

    /// Sections of both byte orders in one file, each with its own
    /// interfaces; blocks of unknown type skipped; a packet block naming an
    /// interface its section did not declare counted and skipped; a simple
    /// packet block takes the time of the frame before it.
    #[test]
    fn pcapng_sections_unknown_blocks_and_undeclared_interfaces() {
        let mut f = Vec::new();
        shb(&mut f, false);
        idb(&mut f, false, 1, 0, &[]);
        ng_block(&mut f, false, 0x7000_0bad, &[1, 2, 3, 4]); // a block type nobody defined
        epb(&mut f, false, 0, 5_000_000, &[0xe0]);
        epb(&mut f, false, 3, 6_000_000, &[0xe3]); // interface 3 was never declared
        // Simple packet block: origlen 1, then the byte (padded to 4).
        ng_block(&mut f, false, 3, &[1, 0, 0, 0, 0xe4]);
        shb(&mut f, true);
        epb(&mut f, true, 0, 7_000_000, &[0xe5]); // new section: no interface yet
        idb(&mut f, true, 101, 0, &[]);
        ng_block(&mut f, true, 0x7000_0bad, &[9; 8]);
        epb(&mut f, true, 0, 8_000_000, &[0x45]);
        let (frames, err, trunc) = parse_all(&f);
        assert_eq!((err, trunc), (None, false));
        let got: Vec<(Timestamp, LinkType, Vec<u8>)> = frames;
        assert_eq!(
            got,
            vec![
                (Timestamp(5_000_000), LinkType::Ethernet, vec![0xe0]),
                (Timestamp(5_000_000), LinkType::Ethernet, vec![0xe4]),
                (Timestamp(8_000_000), LinkType::Raw, vec![0x45]),
            ]
        );
        let mut p = CaptureParser::new();
        let mut pos = 0;
        while let Ok(Step::Frame(_, n) | Step::Skip(n)) = p.step(&f[pos..], true) {
            pos += n;
        }
        assert_eq!(p.counters.unknown_interface, 2);
        assert_eq!(p.counters.blocks_skipped, 2);
    }

    /// Fuzz finding (capture): `bytes_read` was the start of the chunk in
    /// which reading stopped, so a file that failed inside its first chunk
    /// reported 0 bytes read, and the same file through a slow pipe (whose
    /// chunks end elsewhere) another count. It is where reading stopped.
    #[test]
    fn fuzz_capture_bytes_read_ends_where_reading_stopped() {
        let corrupt: &[u8] = &[
            0xd4, 0xc3, 0xb2, 0xa1, // magic: little-endian, microseconds
            0x02, 0x00, 0x00, 0x00, // version 2.0
            0x00, 0x00, 0x00, 0x00, // zone
            0x00, 0x00, 0x00, 0x00, // sigfigs
            0x2d, 0x00, 0x00, 0x00, // snaplen 45
            0xe5, 0x00, 0x00, 0x30, // link type 229 (IPv6), FCS bits set
            0x9d, 0xcf, 0x30, 0x30, // record at offset 24: seconds
            0x29, 0x30, 0x30, 0x30, // microseconds
            0x30, 0x30, 0x30, 0x30, // caplen 808464432: beyond MAX_RECORD
            0x30, 0x30, 0x30, 0x00, // origlen
        ];
        // A good record, then one cut short: reading stops at its header.
        let mut cut = pcap_header(0xa1b2_c3d4, false, 1);
        record(&mut cut, false, 1, 0, &[7; 60]);
        let cut_at = cut.len() as u64;
        record(&mut cut, false, 2, 0, &[8; 60]);
        cut.truncate(cut.len() - 30);
        let mut clean = pcap_header(0xa1b2_c3d4, false, 1);
        record(&mut clean, false, 1, 0, &[7; 60]);
        for (bytes, want) in [
            (corrupt.to_vec(), 24),
            (cut.clone(), cut_at),
            (clean.clone(), clean.len() as u64),
        ] {
            for step in [usize::MAX, 1, 5, 24, 25, 100] {
                let input = Input::from_reader(
                    Path::new("x.pcap"),
                    Box::new(Trickle {
                        data: bytes.clone(),
                        pos: 0,
                        step,
                    }),
                );
                let (summary, err) = read_frames(
                    input,
                    &mut |_: &Frame<'_>, _: FrameBytes<'_>| {},
                    &Default::default(),
                );
                assert_eq!(summary.bytes_read, want, "reads of {step} bytes");
                if let Some(e) = err {
                    assert_eq!(e.offset(), Some(want), "reads of {step} bytes");
                }
            }
        }
    }
}
