//! Live capture from network interfaces through libpcap (feature `live`).
//!
//! One [`LiveCapture`] per interface, read by its own thread. Timestamps
//! are the capture's (the kernel's, in microseconds). The kernel's counters
//! (packets seen, dropped for want of buffer space, dropped by the
//! interface) are kept across reopens: when an interface goes down or
//! disappears the handle is reopened and the new handle's counters, which
//! start from zero, are added to what the old one had counted.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use super::{Frame, LinkType};
use crate::time::Timestamp;

/// How to open an interface.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Bytes kept of each frame.
    pub snaplen: i32,
    /// Kernel capture buffer in bytes (0: libpcap's default).
    pub buffer_size: i32,
    pub promisc: bool,
    /// BPF filter expression (tcpdump syntax).
    pub bpf: Option<String>,
    /// libpcap's read timeout (ms): with TPACKET_V3 the kernel hands over a
    /// partly filled block at most this long after its first packet.
    pub timeout_ms: i32,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            snaplen: 262_144,
            buffer_size: 64 << 20,
            promisc: true,
            bpf: None,
            timeout_ms: 20,
        }
    }
}

/// Why an interface could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("interface {iface}: cannot capture: {msg}")]
    Open { iface: String, msg: String },
    #[error("interface {iface}: bad BPF filter `{filter}`: {msg}")]
    Filter {
        iface: String,
        filter: String,
        msg: String,
    },
}

/// The kernel's counters for an interface, summed over every handle opened
/// on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    pub packets: u64,
    pub drops: u64,
    pub ifdrops: u64,
}

/// What a read returned.
pub enum Next<'a> {
    Frame(Frame<'a>),
    /// Nothing is waiting: call [`LiveCapture::wait`].
    Idle,
    /// The capture failed (interface down or gone): reopen it.
    Failed(String),
}

/// An open interface.
pub struct LiveCapture {
    pub iface: String,
    /// Index of the interface in the run (EVE `in_iface` lookup).
    pub index: u32,
    pub linktype: LinkType,
    opts: LiveOptions,
    cap: pcap::Capture<pcap::Active>,
    /// Counters of handles closed before this one.
    base: KernelStats,
    last: KernelStats,
}

fn open_handle(
    iface: &str,
    opts: &LiveOptions,
) -> Result<(pcap::Capture<pcap::Active>, LinkType), LiveError> {
    let err = |e: pcap::Error| LiveError::Open {
        iface: iface.to_string(),
        msg: e.to_string(),
    };
    let mut inactive = pcap::Capture::from_device(iface)
        .map_err(err)?
        .snaplen(opts.snaplen)
        .promisc(opts.promisc)
        .timeout(opts.timeout_ms);
    if opts.buffer_size > 0 {
        inactive = inactive.buffer_size(opts.buffer_size);
    }
    // Non-blocking: with TPACKET_V3 a blocking read on a quiet interface
    // would wait for the next packet forever (the kernel's block timer does
    // not retire an empty block), and a stop request would go unnoticed.
    // [`LiveCapture::wait`] polls the descriptor with a timeout instead.
    let mut cap = inactive.open().map_err(err)?.setnonblock().map_err(err)?;
    if let Some(f) = &opts.bpf {
        cap.filter(f, true).map_err(|e| LiveError::Filter {
            iface: iface.to_string(),
            filter: f.clone(),
            msg: e.to_string(),
        })?;
    }
    let lt = u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX);
    Ok((cap, LinkType::from_number(lt)))
}

impl LiveCapture {
    pub fn open(iface: &str, index: u32, opts: &LiveOptions) -> Result<LiveCapture, LiveError> {
        let (cap, linktype) = open_handle(iface, opts)?;
        Ok(LiveCapture {
            iface: iface.to_string(),
            index,
            linktype,
            opts: opts.clone(),
            cap,
            base: KernelStats::default(),
            last: KernelStats::default(),
        })
    }

    /// Reads the next frame, waiting at most the read timeout.
    pub fn read(&mut self) -> Next<'_> {
        match self.cap.next_packet() {
            Ok(p) => {
                let secs = u64::try_from(p.header.ts.tv_sec).unwrap_or(0);
                let usecs = u64::try_from(p.header.ts.tv_usec).unwrap_or(0);
                Next::Frame(Frame {
                    ts: Timestamp::from_parts(secs, usecs, 1_000_000),
                    linktype: self.linktype,
                    data: p.data,
                    orig_len: p.header.len,
                    iface: self.index,
                })
            }
            Err(pcap::Error::TimeoutExpired) => Next::Idle,
            Err(e) => Next::Failed(e.to_string()),
        }
    }

    /// Waits up to `timeout` for frames to read.
    pub fn wait(&self, timeout: std::time::Duration) {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let mut fds = [PollFd::new(self.cap.as_fd(), PollFlags::POLLIN)];
        let t = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        // EINTR (a signal) just ends the wait early.
        let _ = poll(&mut fds, t);
    }

    /// The kernel's counters so far (all handles of this interface).
    pub fn stats(&mut self) -> KernelStats {
        if let Ok(s) = self.cap.stats() {
            self.last = KernelStats {
                packets: u64::from(s.received),
                drops: u64::from(s.dropped),
                ifdrops: u64::from(s.if_dropped),
            };
        }
        KernelStats {
            packets: self.base.packets + self.last.packets,
            drops: self.base.drops + self.last.drops,
            ifdrops: self.base.ifdrops + self.last.ifdrops,
        }
    }

    /// Opens a new handle on the interface (after a failure). On error the
    /// old handle stays in place, to be retried.
    pub fn reopen(&mut self) -> Result<(), LiveError> {
        let (cap, linktype) = open_handle(&self.iface, &self.opts)?;
        let total = self.stats();
        self.base = total;
        self.last = KernelStats::default();
        self.cap = cap;
        self.linktype = linktype;
        Ok(())
    }
}
