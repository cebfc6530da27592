//! Decode events: one stable name per kind of malformation.
//!
//! Names are Suricata's (`decoder.<layer>.<event>`), restricted to the ones
//! its EVE `stats.decoder.event` schema knows, so a `stats` record carrying
//! backflow's counters validates where Suricata's does.

macro_rules! decode_events {
    ($($variant:ident => $layer:literal . $event:literal, $trunc:literal;)*) => {
        /// A malformation found while decoding a frame.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DecodeEvent { $($variant),* }

        impl DecodeEvent {
            pub const ALL: &'static [DecodeEvent] = &[$(DecodeEvent::$variant),*];
            pub const COUNT: usize = Self::ALL.len();

            /// Full dotted name, e.g. `decoder.ipv4.trunc_pkt`.
            pub const fn name(self) -> &'static str {
                match self { $(DecodeEvent::$variant => concat!("decoder.", $layer, ".", $event)),* }
            }
            /// Layer key under `stats.decoder.event`.
            pub const fn layer(self) -> &'static str {
                match self { $(DecodeEvent::$variant => $layer),* }
            }
            /// Event key under `stats.decoder.event.<layer>`.
            pub const fn event(self) -> &'static str {
                match self { $(DecodeEvent::$variant => $event),* }
            }
            /// Whether the event only says bytes are missing (which a
            /// capture's snap length explains).
            pub const fn is_truncation(self) -> bool {
                match self { $(DecodeEvent::$variant => $trunc),* }
            }
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

decode_events! {
    EthernetPktTooSmall => "ethernet"."pkt_too_small", true;
    VlanHeaderTooSmall => "vlan"."header_too_small", true;
    VlanTooManyLayers => "vlan"."too_many_layers", false;
    SllPktTooSmall => "sll"."pkt_too_small", true;
    Sll2PktTooSmall => "sll2"."pkt_too_small", true;
    NullPktTooSmall => "ltnull"."pkt_too_small", true;
    NullUnsupportedType => "ltnull"."unsupported_type", false;
    IpRawInvalidIpVersion => "ipraw"."invalid_ip_version", false;
    Ipv4PktTooSmall => "ipv4"."pkt_too_small", true;
    Ipv4HlenTooSmall => "ipv4"."hlen_too_small", false;
    Ipv4IplenSmallerThanHlen => "ipv4"."iplen_smaller_than_hlen", false;
    Ipv4TruncPkt => "ipv4"."trunc_pkt", true;
    Ipv4WrongIpVersion => "ipv4"."wrong_ip_version", false;
    Ipv6PktTooSmall => "ipv6"."pkt_too_small", true;
    Ipv6TruncPkt => "ipv6"."trunc_pkt", true;
    Ipv6TruncExthdr => "ipv6"."trunc_exthdr", true;
    Ipv6WrongIpVersion => "ipv6"."wrong_ip_version", false;
    Ipv6ExthdrDuplHh => "ipv6"."exthdr_dupl_hh", false;
    TcpPktTooSmall => "tcp"."pkt_too_small", true;
    TcpHlenTooSmall => "tcp"."hlen_too_small", false;
    TcpInvalidOptlen => "tcp"."invalid_optlen", true;
    UdpPktTooSmall => "udp"."pkt_too_small", true;
    UdpHlenInvalid => "udp"."hlen_invalid", false;
    Icmpv4PktTooSmall => "icmpv4"."pkt_too_small", true;
    Icmpv6PktTooSmall => "icmpv6"."pkt_too_small", true;
}
