//! Frame decoding: link layer → IPv4/IPv6 → TCP/UDP/ICMP, as borrowed views.
//!
//! Built on `etherparse`'s lax slicing (it keeps every layer that decoded and
//! the error where decoding stopped). This module adds the link layers
//! etherparse leaves to the caller (SLL2, BSD NULL/LOOP), first IPv4/IPv6
//! fragments (ports are read from the fragment that carries them), and the
//! mapping of every failure to one stable decode event named as Suricata names
//! it (`decoder.ipv4.trunc_pkt`), so counters line up with Suricata's `stats`.
//!
//! Guarantees: no panic on any input; at most one decode event per frame (the
//! outermost layer that failed); a frame cut short by the capture's snap
//! length (`orig_len > caplen`) is not reported as malformed.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

mod addr;
#[cfg(test)]
pub(crate) use addr::a;
pub mod events;
mod hash;

pub use addr::Addr;
pub use events::DecodeEvent;
pub use hash::{FlowHasher, pair_hash};

use etherparse::err::{Layer, packet::SliceError};
use etherparse::{
    EtherType, IpNumber, LaxIpPayloadSlice, LaxLinkExtSlice, LaxNetSlice, LaxSlicedPacket,
    TcpSlice, TransportSlice, UdpSlice,
};

use crate::capture::LinkType;

/// TCP flag bits as they appear in the header's flags byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;
pub const PROTO_SCTP: u8 = 132;

/// Where a packet sits in an IP fragment series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    None,
    /// First fragment (offset 0, more fragments): carries the ports.
    First,
    /// A later fragment: no transport header.
    Later,
}

/// The network layer of a decoded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip {
    pub src: Addr,
    pub dst: Addr,
    /// IP protocol number of the payload (after IPv6 extension headers).
    pub proto: u8,
    pub ttl: u8,
    pub v6: bool,
    pub fragment: Fragment,
}

/// A decoded TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// The payload captured.
    pub payload: &'a [u8],
    /// Payload bytes on the wire, by the IP header's length: more than
    /// `payload` holds when the capture cut the frame short (a snap
    /// length), so that TCP state counts data that was sent but not kept.
    pub len: u32,
}

/// The transport layer of a decoded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    None,
    Tcp(Tcp<'a>),
    Udp {
        sport: u16,
        dport: u16,
        payload: &'a [u8],
    },
    Icmp {
        type_: u8,
        code: u8,
        payload: &'a [u8],
    },
    /// SCTP: only the common header's ports are read.
    Sctp {
        sport: u16,
        dport: u16,
    },
    /// Another IP protocol (or a later fragment): no ports.
    Other,
}

/// Everything the flow and detection stages need from one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Outer VLAN id first; 0 where absent.
    pub vlan: [u16; 2],
    pub vlan_count: u8,
    pub ip: Option<Ip>,
    pub transport: Transport<'a>,
    /// The one decode event of this frame, if it was malformed.
    pub event: Option<DecodeEvent>,
}

impl Decoded<'_> {
    fn empty() -> Self {
        Decoded {
            vlan: [0; 2],
            vlan_count: 0,
            ip: None,
            transport: Transport::None,
            event: None,
        }
    }
}

pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The eight bytes of `b` from `at` as a word, for hashing (0 past the
/// end).
pub(crate) fn word_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Decodes one frame. `snap_truncated` says the capture kept fewer bytes
/// than were on the wire, so missing bytes are not a malformation.
///
/// Most frames are plain Ethernet / IPv4 or IPv6 / TCP or UDP with every
/// length consistent: [`fast_path`] decodes those from etherparse's header
/// slices alone. Anything else (VLANs, options it cannot vouch for,
/// fragments, extension headers, any inconsistency) goes the full way
/// through `LaxSlicedPacket`, which also names what is wrong. Both give
/// the same [`Decoded`] for every frame the fast path takes (tested on
/// every capture and on mutated frames).
pub fn decode(linktype: LinkType, data: &[u8], snap_truncated: bool) -> Decoded<'_> {
    if linktype == LinkType::Ethernet
        && let Some(d) = fast_path(data)
    {
        return d;
    }
    decode_lax(linktype, data, snap_truncated)
}

/// The common case, or None for the full decoder to take. Never returns a
/// frame with a decode event: those are the full decoder's to name.
fn fast_path(data: &[u8]) -> Option<Decoded<'_>> {
    use etherparse::{Ethernet2HeaderSlice, Ipv4HeaderSlice, Ipv6HeaderSlice, TcpHeaderSlice};
    let eth = Ethernet2HeaderSlice::from_slice(data).ok()?;
    let rest = data.get(eth.slice().len()..)?;
    let (ip, l4) = match eth.ether_type() {
        EtherType::IPV4 => {
            let h = Ipv4HeaderSlice::from_slice(rest).ok()?;
            let (hlen, total) = (h.slice().len(), usize::from(h.total_len()));
            // Fragments, and lengths the full decoder would complain about
            // or cut differently, take the full path.
            if h.more_fragments() || h.fragments_offset().value() != 0 || total < hlen {
                return None;
            }
            let ip = Ip {
                src: Addr::from(h.source()),
                dst: Addr::from(h.destination()),
                proto: h.protocol().0,
                ttl: h.ttl(),
                v6: false,
                fragment: Fragment::None,
            };
            (ip, rest.get(hlen..total)?)
        }
        EtherType::IPV6 => {
            let h = Ipv6HeaderSlice::from_slice(rest).ok()?;
            let len = usize::from(h.payload_length());
            let ip = Ip {
                src: Addr::from(h.source()),
                dst: Addr::from(h.destination()),
                proto: h.next_header().0,
                ttl: h.hop_limit(),
                v6: true,
                fragment: Fragment::None,
            };
            // A zero payload length is a jumbogram (hop-by-hop option).
            if len == 0 {
                return None;
            }
            (ip, rest.get(40..40 + len)?)
        }
        _ => return None,
    };
    let transport = match ip.proto {
        PROTO_TCP => {
            let t = TcpHeaderSlice::from_slice(l4).ok()?;
            let hdr = t.slice();
            let payload = l4.get(hdr.len()..)?;
            Transport::Tcp(Tcp {
                sport: t.source_port(),
                dport: t.destination_port(),
                seq: t.sequence_number(),
                ack: t.acknowledgment_number(),
                flags: *hdr.get(13)?,
                window: t.window_size(),
                payload,
                len: u32::try_from(payload.len()).ok()?,
            })
        }
        PROTO_UDP => {
            let len = usize::from(be16(l4, 4)?);
            if len < 8 {
                return None;
            }
            Transport::Udp {
                sport: be16(l4, 0)?,
                dport: be16(l4, 2)?,
                payload: l4.get(8..len)?,
            }
        }
        _ => return None,
    };
    Some(Decoded {
        vlan: [0; 2],
        vlan_count: 0,
        ip: Some(ip),
        transport,
        event: None,
    })
}

/// The full decoder (every link type, every layer etherparse knows).
pub(crate) fn decode_lax(linktype: LinkType, data: &[u8], snap_truncated: bool) -> Decoded<'_> {
    use DecodeEvent as E;
    let mut out = Decoded::empty();
    let sliced = match linktype {
        LinkType::Ethernet => match LaxSlicedPacket::from_ethernet(data) {
            Ok(p) => p,
            Err(_) => return with_event(out, E::EthernetPktTooSmall, snap_truncated),
        },
        LinkType::Sll => {
            // Linux cooked v1: 16 bytes, protocol type last (an ether type
            // for the packet types backflow decodes).
            let (Some(proto), Some(rest)) = (be16(data, 14), data.get(16..)) else {
                return with_event(out, E::SllPktTooSmall, snap_truncated);
            };
            LaxSlicedPacket::from_ether_type(EtherType(proto), rest)
        }
        LinkType::Sll2 => {
            // Linux cooked v2: 20 bytes, protocol type first.
            let (Some(proto), Some(rest)) = (be16(data, 0), data.get(20..)) else {
                return with_event(out, E::Sll2PktTooSmall, snap_truncated);
            };
            LaxSlicedPacket::from_ether_type(EtherType(proto), rest)
        }
        LinkType::Null | LinkType::Loop => {
            let (Some(family), Some(rest)) = (data.get(..4), data.get(4..)) else {
                return with_event(out, E::NullPktTooSmall, snap_truncated);
            };
            let family: [u8; 4] = family.try_into().unwrap_or([0; 4]);
            // NULL is in the capturing host's byte order: accept both.
            let f = if linktype == LinkType::Loop {
                u32::from_be_bytes(family)
            } else {
                let le = u32::from_le_bytes(family);
                if le <= 0xffff {
                    le
                } else {
                    u32::from_be_bytes(family)
                }
            };
            match f {
                // AF_INET; AF_INET6 on Linux, BSDs, Darwin.
                2 => LaxSlicedPacket::from_ether_type(EtherType::IPV4, rest),
                10 | 24 | 28 | 30 => LaxSlicedPacket::from_ether_type(EtherType::IPV6, rest),
                _ => return with_event(out, E::NullUnsupportedType, snap_truncated),
            }
        }
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => {
            let ether_type = match data.first().map(|b| b >> 4) {
                Some(4) => EtherType::IPV4,
                Some(6) => EtherType::IPV6,
                _ => return with_event(out, E::IpRawInvalidIpVersion, snap_truncated),
            };
            LaxSlicedPacket::from_ether_type(ether_type, data)
        }
        LinkType::Other(_) => return out,
    };
    fill(&mut out, &sliced, snap_truncated);
    out
}

fn with_event(mut d: Decoded<'_>, e: DecodeEvent, snap_truncated: bool) -> Decoded<'_> {
    if !(snap_truncated && e.is_truncation()) {
        d.event = Some(e);
    }
    d
}

fn fill<'a>(out: &mut Decoded<'a>, p: &LaxSlicedPacket<'a>, snap_truncated: bool) {
    use DecodeEvent as E;
    for ext in &p.link_exts {
        if let LaxLinkExtSlice::Vlan(v) = ext {
            if let Some(slot) = out.vlan.get_mut(usize::from(out.vlan_count)) {
                *slot = v.vlan_identifier().value();
            }
            out.vlan_count = out.vlan_count.saturating_add(1);
        }
    }
    let mut event = None;
    if out.vlan_count > 2 {
        event = Some(E::VlanTooManyLayers);
    }

    let mut payload: Option<&LaxIpPayloadSlice<'a>> = None;
    // Where the IP header says the packet ends (an address in `data`, or
    // past it when the capture cut the frame short).
    let mut ip_end = None;
    match &p.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let frag = if !h.is_fragmenting_payload() {
                Fragment::None
            } else if h.fragments_offset().value() == 0 {
                Fragment::First
            } else {
                Fragment::Later
            };
            out.ip = Some(Ip {
                src: Addr::from(h.source()),
                dst: Addr::from(h.destination()),
                proto: v4.payload().ip_number.0,
                ttl: h.ttl(),
                v6: false,
                fragment: frag,
            });
            ip_end = (h.slice().as_ptr() as usize).checked_add(usize::from(h.total_len()));
            if usize::from(h.total_len()) < h.slice().len() {
                event = event.or(Some(E::Ipv4IplenSmallerThanHlen));
            } else if v4.payload().incomplete {
                event = event.or(Some(E::Ipv4TruncPkt));
            }
            payload = Some(v4.payload());
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let frag = if !v6.is_payload_fragmented() {
                Fragment::None
            } else {
                let first = v6.extensions().clone().into_iter().find_map(|e| match e {
                    etherparse::Ipv6ExtensionSlice::Fragment(f) => {
                        Some(f.fragment_offset().value() == 0)
                    }
                    _ => None,
                });
                if first == Some(true) {
                    Fragment::First
                } else {
                    Fragment::Later
                }
            };
            out.ip = Some(Ip {
                src: Addr::from(h.source()),
                dst: Addr::from(h.destination()),
                proto: v6.payload().ip_number.0,
                ttl: h.hop_limit(),
                v6: true,
                fragment: frag,
            });
            // A zero payload length is a jumbogram's (its length is in an option).
            if h.payload_length() != 0 {
                ip_end =
                    (h.slice().as_ptr() as usize).checked_add(40 + usize::from(h.payload_length()));
            }
            if v6.payload().incomplete {
                event = event.or(Some(E::Ipv6TruncPkt));
            }
            payload = Some(v6.payload());
        }
        Some(LaxNetSlice::Arp(_)) | None => {}
    }

    if let Some((err, layer)) = &p.stop_err {
        event = event.or(Some(stop_event(err, *layer, p)));
    }

    // Only a frame the capture cut has bytes on the wire beyond those
    // captured; an IP length beyond a whole frame's is a malformation
    // (counted), not data.
    let ip_end = ip_end.filter(|_| snap_truncated);
    out.transport = match &p.transport {
        Some(TransportSlice::Tcp(t)) => Transport::Tcp(tcp_view(t, ip_end)),
        Some(TransportSlice::Udp(u)) => {
            let len = u.length();
            if len < 8 {
                event = event.or(Some(E::UdpHlenInvalid));
            }
            Transport::Udp {
                sport: u.source_port(),
                dport: u.destination_port(),
                payload: u.payload(),
            }
        }
        Some(TransportSlice::Icmpv4(i)) => Transport::Icmp {
            type_: i.type_u8(),
            code: i.code_u8(),
            payload: i.payload(),
        },
        Some(TransportSlice::Icmpv6(i)) => Transport::Icmp {
            type_: i.type_u8(),
            code: i.code_u8(),
            payload: i.payload(),
        },
        Some(TransportSlice::Igmp(_)) => Transport::Other,
        None => match (out.ip, payload) {
            // etherparse leaves fragments unsliced; the first one carries the ports.
            (Some(ip), Some(pl)) if ip.fragment == Fragment::First => first_fragment(pl, ip_end),
            (Some(ip), Some(pl)) if ip.proto == PROTO_SCTP && ip.fragment == Fragment::None => {
                match (be16(pl.payload, 0), be16(pl.payload, 2)) {
                    (Some(sport), Some(dport)) => Transport::Sctp { sport, dport },
                    _ => Transport::Other,
                }
            }
            (Some(_), _) if p.stop_err.is_none() => Transport::Other,
            _ => Transport::None,
        },
    };
    if let Some(e) = event
        && !(snap_truncated && e.is_truncation())
    {
        out.event = Some(e);
    }
}

/// Bytes on the wire from the start of `from` to `ip_end` (0 without it).
fn wire_len(from: &[u8], ip_end: Option<usize>) -> usize {
    ip_end.map_or(0, |end| end.saturating_sub(from.as_ptr() as usize))
}

/// The view of a TCP segment whose IP packet ends at `ip_end` (see
/// [`Tcp::len`]).
fn tcp_view<'a>(t: &TcpSlice<'a>, ip_end: Option<usize>) -> Tcp<'a> {
    let hdr = t.header_slice();
    let payload = t.payload();
    let wire = wire_len(payload, ip_end);
    Tcp {
        sport: t.source_port(),
        dport: t.destination_port(),
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        flags: hdr.get(13).copied().unwrap_or(0),
        window: t.window_size(),
        payload,
        len: u32::try_from(wire.max(payload.len())).unwrap_or(u32::MAX),
    }
}

/// The transport of a first fragment: etherparse leaves fragments
/// unsliced, and the first one carries the ports (ICMP: type and code).
/// Its transport header may itself be cut by the fragmentation (a TCP
/// header's options in the next fragment): its fields up to the window are
/// enough for the flow and its state. Fewer bytes than those (UDP, ICMP:
/// their 8-byte header) make no flow (`None`), rather than one keyed on
/// ports 0.
fn first_fragment<'a>(pl: &LaxIpPayloadSlice<'a>, ip_end: Option<usize>) -> Transport<'a> {
    let b = pl.payload;
    match pl.ip_number {
        IpNumber::TCP => match TcpSlice::from_slice(b) {
            Ok(t) => Transport::Tcp(tcp_view(&t, ip_end)),
            Err(_) => {
                let (Some(sport), Some(dport), Some(seq), Some(ack), Some(&flags), Some(window)) = (
                    be16(b, 0),
                    be16(b, 2),
                    be32(b, 4),
                    be32(b, 8),
                    b.get(13),
                    be16(b, 14),
                ) else {
                    return Transport::None;
                };
                let header = usize::from(b.get(12).map_or(0, |o| o >> 4)) * 4;
                if header < 20 {
                    // No TCP header is that short.
                    return Transport::None;
                }
                let wire = wire_len(b, ip_end);
                Transport::Tcp(Tcp {
                    sport,
                    dport,
                    seq,
                    ack,
                    flags,
                    window,
                    payload: b.get(header..).unwrap_or(&[]),
                    len: u32::try_from(wire.saturating_sub(header)).unwrap_or(u32::MAX),
                })
            }
        },
        IpNumber::UDP => match UdpSlice::from_slice_lax(b) {
            Ok(u) => Transport::Udp {
                sport: u.source_port(),
                dport: u.destination_port(),
                payload: u.payload(),
            },
            Err(_) => Transport::None,
        },
        IpNumber::ICMP | IpNumber::IPV6_ICMP => match (b.first(), b.get(1), b.get(8..)) {
            (Some(&type_), Some(&code), Some(payload)) => Transport::Icmp {
                type_,
                code,
                payload,
            },
            _ => Transport::None,
        },
        _ => Transport::Other,
    }
}

fn stop_event(err: &SliceError, layer: Layer, p: &LaxSlicedPacket<'_>) -> DecodeEvent {
    use DecodeEvent as E;
    use etherparse::err::{ip, ipv4, ipv6, tcp};
    // Which IP version the link layer announced (for wrong-version events).
    let announced = p
        .link_exts
        .iter()
        .rev()
        .find_map(|e| match e {
            LaxLinkExtSlice::Vlan(v) => Some(v.ether_type()),
            LaxLinkExtSlice::Macsec(_) => None,
        })
        .or_else(|| {
            p.link
                .as_ref()
                .and_then(|l| l.ether_payload())
                .map(|e| e.ether_type)
        });
    let v6 = matches!(p.net, Some(LaxNetSlice::Ipv6(_))) || announced == Some(EtherType::IPV6);
    match err {
        SliceError::Len(len) => match layer {
            Layer::Ethernet2Header | Layer::EtherPayload => E::EthernetPktTooSmall,
            Layer::VlanHeader => E::VlanHeaderTooSmall,
            Layer::LinuxSllHeader => E::SllPktTooSmall,
            Layer::Ipv6Header => E::Ipv6PktTooSmall,
            Layer::IpHeader | Layer::Ipv4Header => E::Ipv4PktTooSmall,
            Layer::Ipv4Packet => E::Ipv4TruncPkt,
            Layer::Ipv6Packet => E::Ipv6TruncPkt,
            Layer::IpAuthHeader if !v6 => E::Ipv4TruncPkt,
            Layer::IpAuthHeader
            | Layer::Ipv6ExtHeader
            | Layer::Ipv6HopByHopHeader
            | Layer::Ipv6DestOptionsHeader
            | Layer::Ipv6RouteHeader
            | Layer::Ipv6FragHeader => E::Ipv6TruncExthdr,
            Layer::TcpHeader if len.required_len <= 20 => E::TcpPktTooSmall,
            Layer::TcpHeader => E::TcpInvalidOptlen,
            Layer::UdpHeader | Layer::UdpPayload => E::UdpPktTooSmall,
            Layer::Icmpv4 | Layer::Icmpv4Timestamp | Layer::Icmpv4TimestampReply => {
                E::Icmpv4PktTooSmall
            }
            Layer::Icmpv6 => E::Icmpv6PktTooSmall,
            Layer::MacsecHeader | Layer::MacsecPacket | Layer::Igmp | Layer::Arp => {
                E::EthernetPktTooSmall
            }
        },
        SliceError::Ip(ip::HeaderError::UnsupportedIpVersion { .. }) => {
            if v6 {
                E::Ipv6WrongIpVersion
            } else {
                E::Ipv4WrongIpVersion
            }
        }
        SliceError::Ip(ip::HeaderError::Ipv4HeaderLengthSmallerThanHeader { .. }) => {
            E::Ipv4HlenTooSmall
        }
        SliceError::Ipv4(ipv4::HeaderError::UnexpectedVersion { .. }) => E::Ipv4WrongIpVersion,
        SliceError::Ipv4(ipv4::HeaderError::HeaderLengthSmallerThanHeader { .. }) => {
            E::Ipv4HlenTooSmall
        }
        SliceError::Ipv6(ipv6::HeaderError::UnexpectedVersion { .. }) => E::Ipv6WrongIpVersion,
        SliceError::Ipv6Exts(_) => E::Ipv6ExthdrDuplHh,
        SliceError::Ipv4Exts(_) => E::Ipv4TruncPkt,
        SliceError::Tcp(tcp::HeaderError::DataOffsetTooSmall { .. }) => E::TcpHlenTooSmall,
        SliceError::LinuxSll(_) => E::SllPktTooSmall,
        SliceError::Macsec(_) => E::EthernetPktTooSmall,
    }
}

#[cfg(test)]
mod tests;

/// The protocol of the packet quoted in an ICMP error (the IPv4 header's
/// protocol, the IPv6 header's next header): all that a protocol probe's
/// refusal quotes when the probe carried no payload.
pub fn quoted_protocol(payload: &[u8], v6: bool) -> Option<u8> {
    let version = *payload.first()? >> 4;
    match (v6, version) {
        (true, 6) => payload.get(6).copied(),
        (false, 4) if payload.len() >= 20 => payload.get(9).copied(),
        _ => None,
    }
}

/// The packet quoted in an ICMP error (RFC 792, RFC 4443): its source,
/// destination, protocol and ports. `payload` is the ICMP message after its
/// 8-byte header.
pub fn quoted_tuple(payload: &[u8], v6: bool) -> Option<(Addr, Addr, u8, u16, u16)> {
    if v6 {
        let src: [u8; 16] = payload.get(8..24)?.try_into().ok()?;
        let dst: [u8; 16] = payload.get(24..40)?.try_into().ok()?;
        let proto = *payload.get(6)?;
        let l4 = payload.get(40..)?;
        Some((
            Addr::from(src),
            Addr::from(dst),
            proto,
            be16(l4, 0)?,
            be16(l4, 2)?,
        ))
    } else {
        let ihl = usize::from(*payload.first()? & 0x0f) * 4;
        if *payload.first()? >> 4 != 4 || ihl < 20 {
            return None;
        }
        let src: [u8; 4] = payload.get(12..16)?.try_into().ok()?;
        let dst: [u8; 4] = payload.get(16..20)?.try_into().ok()?;
        let proto = *payload.get(9)?;
        let l4 = payload.get(ihl..)?;
        Some((
            Addr::from(src),
            Addr::from(dst),
            proto,
            be16(l4, 0)?,
            be16(l4, 2)?,
        ))
    }
}
