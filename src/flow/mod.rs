//! Flows: keys, per-flow state, and the per-worker flow table.
//!
//! A flow is keyed by (protocol, lower endpoint, upper endpoint, VLAN ids),
//! so both directions share one entry; each flow remembers which endpoint is
//! the client. The client is the sender of the SYN when it was seen (or the
//! receiver of a SYN-ACK), the sender of an ICMP request, and otherwise a
//! guess from the ports (Zeek's `likely_server_ports` rule), which the flow
//! record states. Everything here runs in packet time.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod table;
pub mod tcp;

pub use table::{FlowTable, TableConfig, TableCounters};

use crate::decode::{Addr, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
use crate::time::Timestamp;
use tcp::TcpTracker;

/// Direction-independent flow key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub lo: Addr,
    pub hi: Addr,
    /// Ports of `lo` and `hi`; for ICMP (request type, code), the same for
    /// both directions.
    pub lo_port: u16,
    pub hi_port: u16,
    pub proto: u8,
    pub vlan: [u16; 2],
}

impl FlowKey {
    /// The key as five words, for hashing: the derived `Hash` makes ten
    /// calls into the hasher (each address, port, the protocol, the vlan
    /// ids and their count), these one. Every packet hashes its flow's key.
    pub fn words(&self) -> [u64; 5] {
        let half = |a: &Addr, at: usize| crate::decode::word_at(&a.0, at);
        [
            half(&self.lo, 0) ^ u64::from(self.proto),
            half(&self.lo, 8),
            half(&self.hi, 0),
            half(&self.hi, 8),
            u64::from(self.lo_port)
                | u64::from(self.hi_port) << 16
                | u64::from(self.vlan[0]) << 32
                | u64::from(self.vlan[1]) << 48,
        ]
    }

    /// Builds the key of a packet from `src` to `dst`; the flag says whether
    /// `src` is the key's `lo` endpoint.
    pub fn new(
        src: Addr,
        sport: u16,
        dst: Addr,
        dport: u16,
        proto: u8,
        vlan: [u16; 2],
    ) -> (FlowKey, bool) {
        if matches!(proto, PROTO_ICMP | PROTO_ICMPV6) {
            let src_is_lo = src <= dst;
            let (lo, hi) = if src_is_lo { (src, dst) } else { (dst, src) };
            return (
                FlowKey {
                    lo,
                    hi,
                    lo_port: sport,
                    hi_port: dport,
                    proto,
                    vlan,
                },
                src_is_lo,
            );
        }
        if (src, sport) <= (dst, dport) {
            (
                FlowKey {
                    lo: src,
                    hi: dst,
                    lo_port: sport,
                    hi_port: dport,
                    proto,
                    vlan,
                },
                true,
            )
        } else {
            (
                FlowKey {
                    lo: dst,
                    hi: src,
                    lo_port: dport,
                    hi_port: sport,
                    proto,
                    vlan,
                },
                false,
            )
        }
    }
}

/// ICMP types that answer a request: (reply, request), ICMPv4 then ICMPv6.
const ICMP_REPLIES: [(u8, u8); 5] = [(0, 8), (14, 13), (16, 15), (18, 17), (9, 10)];
const ICMPV6_REPLIES: [(u8, u8); 6] = [
    (129, 128),
    (131, 130),
    (134, 133),
    (136, 135),
    (140, 139),
    (145, 144),
];

/// For ICMP: whether `type_` answers a request, and the request type that
/// names the flow.
pub fn icmp_request_type(v6: bool, type_: u8) -> (bool, u8) {
    let table: &[(u8, u8)] = if v6 { &ICMPV6_REPLIES } else { &ICMP_REPLIES };
    match table.iter().find(|(reply, _)| *reply == type_) {
        Some(&(_, request)) => (true, request),
        None => (false, type_),
    }
}

/// How the client of a flow was determined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    /// The client's SYN was seen.
    Syn,
    /// The server's SYN-ACK was seen first (the SYN was missed).
    SynAck,
    /// The sender of the first packet (UDP, ICMP request, other protocols).
    FirstPacket,
    /// Picked up mid-stream: guessed from the ports.
    PortGuess,
}

impl Initiator {
    pub fn as_str(self) -> &'static str {
        match self {
            Initiator::Syn => "syn",
            Initiator::SynAck => "syn_ack",
            Initiator::FirstPacket => "first_packet",
            Initiator::PortGuess => "port_guess",
        }
    }
}

/// Why a flow record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    Timeout,
    /// Evicted to stay under the flow cap.
    Forced,
    /// End of input or shutdown.
    Shutdown,
    /// A new SYN reused the 5-tuple of a closed connection.
    TcpReuse,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Timeout => "timeout",
            EndReason::Forced => "forced",
            EndReason::Shutdown => "shutdown",
            EndReason::TcpReuse => "tcp_reuse",
        }
    }
}

/// Suricata's flow state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FlowState {
    New,
    Established,
    Closed,
}

impl FlowState {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowState::New => "new",
            FlowState::Established => "established",
            FlowState::Closed => "closed",
        }
    }
}

/// Direction index: packets from the client travel `TO_SERVER`.
pub const TO_SERVER: usize = 0;
pub const TO_CLIENT: usize = 1;

/// Bits of [`Flow::flags`].
mod flag {
    pub const CLIENT_IS_LO: u8 = 1;
    pub const ALERTED: u8 = 2;
    pub const EMERGENCY: u8 = 4;
    pub const IN_TABLE: u8 = 8;
    /// `icmp[TO_SERVER]` / `icmp[TO_CLIENT]` hold a value.
    pub const ICMP_TS: u8 = 16;
    pub const ICMP_TC: u8 = 32;
    /// Two bits: the [`super::Initiator`].
    pub const INITIATOR_SHIFT: u8 = 6;
}

/// One tracked flow. A flow's slot is most of backflow's memory (a million
/// flows, a fifth of a gigabyte), so the small facts share one byte of
/// flags and are read through methods.
#[derive(Clone, Debug)]
pub struct Flow {
    pub key: FlowKey,
    pub start: Timestamp,
    pub last: Timestamp,
    /// Indexed by [`TO_SERVER`] / [`TO_CLIENT`].
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    /// TCP flags seen per direction.
    pub tcp_flags: [u8; 2],
    /// ICMP (type, code) first seen per direction (see [`Flow::icmp`]).
    icmp: [(u8, u8); 2],
    pub tcp: TcpTracker,
    flags: u8,
    /// Detector bookkeeping that belongs to the flow (bits owned by `detect`).
    pub detect_bits: u8,
    /// Capture interface of the flow's first packet (live capture).
    pub iface: u8,
    /// The table's bookkeeping: the timeout class the flow is listed under.
    pub(super) table_class: u8,
    /// Flowbits set by signature rules.
    pub flowbits: crate::detect::rules::FlowBits,
}

impl Flow {
    pub fn new(key: FlowKey, ts: Timestamp, client_is_lo: bool, initiator: Initiator) -> Flow {
        let mut flow = Flow {
            key,
            start: ts,
            last: ts,
            pkts: [0; 2],
            bytes: [0; 2],
            tcp_flags: [0; 2],
            icmp: [(0, 0); 2],
            tcp: TcpTracker::default(),
            flags: (initiator as u8) << flag::INITIATOR_SHIFT,
            detect_bits: 0,
            iface: 0,
            table_class: 0,
            flowbits: Default::default(),
        };
        flow.set_flag(flag::CLIENT_IS_LO, client_is_lo);
        flow
    }

    fn set_flag(&mut self, bit: u8, on: bool) {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
    }

    /// Whether the packet just counted in direction `dir` is the first
    /// one that way.
    pub fn first_in_direction(&self, dir: usize) -> bool {
        self.pkts.get(dir).is_some_and(|n| *n <= 1)
    }

    /// Whether the client is the key's `lo` endpoint.
    pub fn client_is_lo(&self) -> bool {
        self.flags & flag::CLIENT_IS_LO != 0
    }

    /// How the client was found.
    pub fn initiator(&self) -> Initiator {
        match self.flags >> flag::INITIATOR_SHIFT {
            0 => Initiator::Syn,
            1 => Initiator::SynAck,
            2 => Initiator::FirstPacket,
            _ => Initiator::PortGuess,
        }
    }

    /// An alert was written on this flow.
    pub fn alerted(&self) -> bool {
        self.flags & flag::ALERTED != 0
    }

    pub fn set_alerted(&mut self) {
        self.flags |= flag::ALERTED;
    }

    /// Ended while the table was in emergency mode.
    pub fn emergency(&self) -> bool {
        self.flags & flag::EMERGENCY != 0
    }

    pub fn set_emergency(&mut self, on: bool) {
        self.set_flag(flag::EMERGENCY, on);
    }

    /// Whether the table holds this flow in a live slot.
    pub(super) fn in_table(&self) -> bool {
        self.flags & flag::IN_TABLE != 0
    }

    pub(super) fn set_in_table(&mut self, on: bool) {
        self.set_flag(flag::IN_TABLE, on);
    }

    /// ICMP (type, code) first seen in direction `dir`.
    pub fn icmp(&self, dir: usize) -> Option<(u8, u8)> {
        let bit = if dir == TO_SERVER {
            flag::ICMP_TS
        } else {
            flag::ICMP_TC
        };
        (self.flags & bit != 0)
            .then(|| self.icmp.get(dir).copied())
            .flatten()
    }

    /// Records the ICMP (type, code) of direction `dir` if none is yet.
    pub fn note_icmp(&mut self, dir: usize, type_code: (u8, u8)) {
        let bit = if dir == TO_SERVER {
            flag::ICMP_TS
        } else {
            flag::ICMP_TC
        };
        if self.flags & bit == 0
            && let Some(slot) = self.icmp.get_mut(dir)
        {
            *slot = type_code;
            self.flags |= bit;
        }
    }

    /// EVE's `flow_id`: 51 bits of the seeded hash of the key and the start
    /// (the same on every record of the flow; computed when a record is
    /// written rather than kept in every flow).
    pub fn flow_id(&self, hasher: &crate::decode::FlowHasher) -> u64 {
        hasher.hash(&(self.key, self.start)) & ((1 << 51) - 1)
    }

    pub fn client(&self) -> (Addr, u16) {
        if self.client_is_lo() {
            (self.key.lo, self.key.lo_port)
        } else {
            (self.key.hi, self.key.hi_port)
        }
    }

    pub fn server(&self) -> (Addr, u16) {
        if self.client_is_lo() {
            (self.key.hi, self.key.hi_port)
        } else {
            (self.key.lo, self.key.lo_port)
        }
    }

    /// Direction of a packet whose source is the key's `lo` when `src_is_lo`.
    pub fn direction(&self, src_is_lo: bool) -> usize {
        if src_is_lo == self.client_is_lo() {
            TO_SERVER
        } else {
            TO_CLIENT
        }
    }

    pub fn state(&self) -> FlowState {
        match self.key.proto {
            PROTO_TCP if self.tcp.is_closed() => FlowState::Closed,
            PROTO_TCP if self.tcp.is_established() => FlowState::Established,
            PROTO_TCP => FlowState::New,
            _ if self.pkts[TO_SERVER] > 0 && self.pkts[TO_CLIENT] > 0 => FlowState::Established,
            _ => FlowState::New,
        }
    }

    /// Zeek's `conn_state` for TCP and UDP (`OTH` otherwise).
    pub fn conn_state(&self) -> &'static str {
        match self.key.proto {
            PROTO_TCP => self.tcp.conn_state(),
            PROTO_UDP => match (self.pkts[TO_SERVER] > 0, self.pkts[TO_CLIENT] > 0) {
                (true, true) => "SF",
                (true, false) => "S0",
                (false, true) => "SHR",
                (false, false) => "OTH",
            },
            _ => "OTH",
        }
    }
}

/// Zeek's rule for guessing the client of a TCP flow picked up mid-stream:
/// returns true when the packet's source is more likely the server. When
/// both ports are likely server ports, the lower one is.
pub fn source_looks_like_server(
    sport: u16,
    dport: u16,
    is_server_port: impl Fn(u16) -> bool,
) -> bool {
    match (is_server_port(sport), is_server_port(dport)) {
        (true, true) => sport < dport,
        (true, false) => true,
        _ => false,
    }
}

/// Zeek's rule for the first datagram of a UDP flow: its source is the
/// server only when its port is a likely server port and the destination's
/// is not (two likely server ports: the sender is the client).
pub fn udp_source_looks_like_server(
    sport: u16,
    dport: u16,
    is_server_port: impl Fn(u16) -> bool,
) -> bool {
    is_server_port(sport) && !is_server_port(dport)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::decode::a;

    /// Every field of a key reaches the words it is hashed by: keys that
    /// differ in one field only (a vlan id, the protocol, one byte of an
    /// IPv6 address) do not all land on one hash.
    #[test]
    fn every_field_of_a_key_is_in_its_words() {
        let (base, _) = FlowKey::new(
            a("2001:db8::1"),
            40000,
            a("2001:db8::2"),
            80,
            PROTO_TCP,
            [10, 20],
        );
        let mut variants = vec![
            FlowKey {
                proto: PROTO_UDP,
                ..base
            },
            FlowKey {
                lo_port: 40001,
                ..base
            },
            FlowKey {
                hi_port: 81,
                ..base
            },
            FlowKey {
                vlan: [11, 20],
                ..base
            },
            FlowKey {
                vlan: [10, 21],
                ..base
            },
        ];
        for i in 0..16 {
            for side in 0..2 {
                let mut k = base;
                let addr = if side == 0 { &mut k.lo } else { &mut k.hi };
                if let Some(b) = addr.0.get_mut(i) {
                    *b ^= 0x80;
                }
                variants.push(k);
            }
        }
        for k in variants {
            assert_ne!(k, base);
            assert_ne!(k.words(), base.words(), "{k:?}");
        }
    }

    #[test]
    fn key_is_the_same_both_ways() {
        let (k1, lo1) = FlowKey::new(a("10.0.0.2"), 40000, a("10.0.0.1"), 80, PROTO_TCP, [0; 2]);
        let (k2, lo2) = FlowKey::new(a("10.0.0.1"), 80, a("10.0.0.2"), 40000, PROTO_TCP, [0; 2]);
        assert_eq!(k1, k2);
        assert_ne!(lo1, lo2);
        let (k3, _) = FlowKey::new(a("10.0.0.1"), 80, a("10.0.0.2"), 40000, PROTO_TCP, [5, 0]);
        assert_ne!(k1, k3, "VLAN is part of the key");
    }

    #[test]
    fn icmp_replies_name_their_request() {
        assert_eq!(icmp_request_type(false, 0), (true, 8));
        assert_eq!(icmp_request_type(false, 8), (false, 8));
        assert_eq!(icmp_request_type(true, 129), (true, 128));
        assert_eq!(icmp_request_type(false, 3), (false, 3));
    }

    #[test]
    fn port_guess_follows_zeek() {
        let server = |p: u16| p < 1024 || p == 8080;
        assert!(source_looks_like_server(80, 40000, server));
        assert!(!source_looks_like_server(40000, 80, server));
        assert!(source_looks_like_server(22, 8080, server));
        assert!(!source_looks_like_server(8080, 22, server));
        assert!(!source_looks_like_server(50000, 40000, server));
        // UDP (UDPAnalyzer::WantConnection): no ordering of two server ports.
        assert!(udp_source_looks_like_server(53, 40000, server));
        assert!(!udp_source_looks_like_server(22, 8080, server));
        assert!(!udp_source_looks_like_server(8080, 22, server));
        assert!(!udp_source_looks_like_server(40000, 53, server));
    }
}
