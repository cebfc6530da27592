//! Packet sources.
//!
//! A source turns an input (a pcap or pcapng file, standard input, or with the
//! `live` feature a network interface) into [`Frame`]s: a timestamp, the link
//! type that says how to decode the bytes, and the bytes themselves. Sources
//! never decode beyond the capture format; a damaged capture is reported with
//! the file and byte offset where reading stopped, after every complete record
//! before it has been delivered.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod file;
#[cfg(feature = "live")]
pub mod live;
mod map;

use crate::time::Timestamp;

/// The link-layer header type of a frame (tcpdump.org's LINKTYPE_* values),
/// reduced to the ones the decoder understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// LINKTYPE_LINUX_SLL (113), Linux "cooked" capture v1.
    Sll,
    /// LINKTYPE_LINUX_SLL2 (276).
    Sll2,
    /// LINKTYPE_RAW (101; DLT_RAW 12 and 14 on some systems): IPv4 or IPv6.
    Raw,
    /// LINKTYPE_IPV4 (228).
    Ipv4,
    /// LINKTYPE_IPV6 (229).
    Ipv6,
    /// LINKTYPE_NULL (0): 4-byte address family in the capturing host's order.
    Null,
    /// LINKTYPE_LOOP (108): 4-byte address family, network order.
    Loop,
    /// Anything else: counted and reported, never decoded.
    Other(u32),
}

impl LinkType {
    /// Every link type the decoder understands.
    pub const DECODED: [LinkType; 8] = [
        LinkType::Ethernet,
        LinkType::Sll,
        LinkType::Sll2,
        LinkType::Raw,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::Null,
        LinkType::Loop,
    ];

    pub fn from_number(n: u32) -> LinkType {
        // The upper bits of the pcap header's field carry FCS information.
        match n & 0x0fff_ffff {
            1 => LinkType::Ethernet,
            113 => LinkType::Sll,
            276 => LinkType::Sll2,
            101 | 12 | 14 => LinkType::Raw,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            0 => LinkType::Null,
            108 => LinkType::Loop,
            other => LinkType::Other(other),
        }
    }

    pub fn number(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::Sll => 113,
            LinkType::Sll2 => 276,
            LinkType::Raw => 101,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::Null => 0,
            LinkType::Loop => 108,
            LinkType::Other(n) => n,
        }
    }

    pub fn is_supported(self) -> bool {
        !matches!(self, LinkType::Other(_))
    }
}

/// One captured frame, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts: Timestamp,
    pub linktype: LinkType,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// The frame's length on the wire; larger than `data.len()` when the
    /// capture truncated it.
    pub orig_len: u32,
    /// Interface index within the file (pcapng), 0 otherwise.
    pub iface: u32,
}
