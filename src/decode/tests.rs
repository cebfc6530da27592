#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;
use proptest::prelude::*;

/// Ethernet / IPv4 / TCP SYN with a 4-byte MSS option and 2 bytes of data.
const ETH_IPV4_TCP: [u8; 60] = [
    // Ethernet: dst 00:11:22:33:44:55, src 66:77:88:99:aa:bb, type IPv4
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00,
    // IPv4: v4 ihl 5, total length 46, id 1, DF, ttl 64, proto TCP, csum 0
    0x45, 0x00, 0x00, 0x2e, 0x00, 0x01, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
    // src 192.0.2.1, dst 198.51.100.2
    0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x02,
    // TCP: sport 1234, dport 80, seq 1, ack 0, data offset 6, SYN, win 65535
    0x04, 0xd2, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xff, 0xff,
    0x00, 0x00, 0x00, 0x00, // option MSS 1460
    0x02, 0x04, 0x05, 0xb4, // payload "hi"
    0x68, 0x69,
];
const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;
const TCP_HDR_LEN: usize = 24;

/// Ethernet / IPv4 / UDP 53 → 53 with 4 bytes of data.
const ETH_IPV4_UDP: [u8; 46] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00,
    // IPv4: total length 32, proto UDP
    0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0x00, 0x02, 0x01,
    0xc6, 0x33, 0x64, 0x02, // UDP: sport 53, dport 53, length 12, csum 0
    0x00, 0x35, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef,
];

fn with_ip_total_len(frame: &[u8], len: usize) -> Vec<u8> {
    let mut f = frame.to_vec();
    let total = (len - ETH_LEN) as u16;
    f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&total.to_be_bytes());
    f
}

#[test]
fn valid_tcp_frame_decodes_fully() {
    let d = decode(LinkType::Ethernet, &ETH_IPV4_TCP, false);
    assert_eq!(d.event, None);
    let ip = d.ip.unwrap();
    assert_eq!(ip.src.to_string(), "192.0.2.1");
    assert_eq!(ip.dst.to_string(), "198.51.100.2");
    assert_eq!(
        (ip.proto, ip.ttl, ip.v6, ip.fragment),
        (PROTO_TCP, 64, false, Fragment::None)
    );
    let Transport::Tcp(t) = d.transport else {
        panic!("{:?}", d.transport)
    };
    assert_eq!(
        (t.sport, t.dport, t.seq, t.flags, t.window),
        (1234, 80, 1, tcp_flags::SYN, 65535)
    );
    assert_eq!(t.payload, b"hi");
}

#[test]
fn every_truncation_of_the_frame_gives_its_exact_event() {
    for len in 0..ETH_IPV4_TCP.len() {
        let d = decode(LinkType::Ethernet, &ETH_IPV4_TCP[..len], false);
        let want = if len < ETH_LEN {
            DecodeEvent::EthernetPktTooSmall
        } else if len < ETH_LEN + IP_LEN {
            DecodeEvent::Ipv4PktTooSmall
        } else {
            // The IPv4 header promises 46 bytes that are not there.
            DecodeEvent::Ipv4TruncPkt
        };
        assert_eq!(d.event, Some(want), "length {len}");
        // The same cut made by a snap length is not a malformation.
        assert_eq!(
            decode(LinkType::Ethernet, &ETH_IPV4_TCP[..len], true).event,
            None,
            "length {len}"
        );
    }
}

#[test]
fn every_truncation_of_the_tcp_header_gives_its_exact_event() {
    // The IP header is rewritten to match each cut, so the TCP layer is
    // the one that is short.
    for len in ETH_LEN + IP_LEN..ETH_IPV4_TCP.len() {
        let f = with_ip_total_len(&ETH_IPV4_TCP[..len], len);
        let tcp_bytes = len - ETH_LEN - IP_LEN;
        let want = if tcp_bytes < 20 {
            Some(DecodeEvent::TcpPktTooSmall)
        } else if tcp_bytes < TCP_HDR_LEN {
            Some(DecodeEvent::TcpInvalidOptlen)
        } else {
            None
        };
        let d = decode(LinkType::Ethernet, &f, false);
        assert_eq!(d.event, want, "length {len}");
        assert!(d.ip.is_some(), "length {len}: IP layer still decoded");
    }
}

#[test]
fn every_truncation_of_the_udp_header_gives_its_exact_event() {
    for len in ETH_LEN + IP_LEN..=ETH_IPV4_UDP.len() {
        let mut f = with_ip_total_len(&ETH_IPV4_UDP[..len], len);
        let udp_bytes = len - ETH_LEN - IP_LEN;
        if udp_bytes >= 6 {
            let l = udp_bytes as u16;
            f[ETH_LEN + IP_LEN + 4..ETH_LEN + IP_LEN + 6].copy_from_slice(&l.to_be_bytes());
        }
        let want = if udp_bytes < 8 {
            Some(DecodeEvent::UdpPktTooSmall)
        } else {
            None
        };
        assert_eq!(
            decode(LinkType::Ethernet, &f, false).event,
            want,
            "length {len}"
        );
    }
}

#[test]
fn header_field_malformations() {
    // IHL 4 (16 bytes) is below the minimum.
    let mut f = ETH_IPV4_TCP;
    f[ETH_LEN] = 0x44;
    assert_eq!(
        decode(LinkType::Ethernet, &f, false).event,
        Some(DecodeEvent::Ipv4HlenTooSmall)
    );
    // Version 5 behind an IPv4 ether type.
    let mut f = ETH_IPV4_TCP;
    f[ETH_LEN] = 0x55;
    assert_eq!(
        decode(LinkType::Ethernet, &f, false).event,
        Some(DecodeEvent::Ipv4WrongIpVersion)
    );
    // Total length 10 < header length 20.
    let mut f = ETH_IPV4_TCP;
    f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(
        decode(LinkType::Ethernet, &f, false).event,
        Some(DecodeEvent::Ipv4IplenSmallerThanHlen)
    );
    // TCP data offset 4 (16 bytes).
    let mut f = ETH_IPV4_TCP;
    f[ETH_LEN + IP_LEN + 12] = 0x40;
    assert_eq!(
        decode(LinkType::Ethernet, &f, false).event,
        Some(DecodeEvent::TcpHlenTooSmall)
    );
    // Raw IP with version 7.
    assert_eq!(
        decode(LinkType::Raw, &[0x70; 40], false).event,
        Some(DecodeEvent::IpRawInvalidIpVersion)
    );
}

#[test]
fn link_layers_reach_the_same_ip_packet() {
    let ip = &ETH_IPV4_TCP[ETH_LEN..];
    let mut sll = vec![
        0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00,
    ];
    sll.extend_from_slice(ip);
    // SLL2: protocol, reserved, ifindex, arphrd, pkttype, addr len, addr[8]
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0x00, 0x01, 0x00, 0x06, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    sll2.extend_from_slice(ip);
    let mut null_le = vec![2, 0, 0, 0];
    null_le.extend_from_slice(ip);
    let mut null_be = vec![0, 0, 0, 2];
    null_be.extend_from_slice(ip);
    let mut lo = vec![0, 0, 0, 2];
    lo.extend_from_slice(ip);
    let reference = decode(LinkType::Ethernet, &ETH_IPV4_TCP, false);
    for (lt, frame) in [
        (LinkType::Sll, &sll[..]),
        (LinkType::Sll2, &sll2[..]),
        (LinkType::Null, &null_le[..]),
        (LinkType::Null, &null_be[..]),
        (LinkType::Loop, &lo[..]),
        (LinkType::Raw, ip),
        (LinkType::Ipv4, ip),
    ] {
        let d = decode(lt, frame, false);
        assert_eq!(d.event, None, "{lt:?}");
        assert_eq!(
            (d.ip, d.transport),
            (reference.ip, reference.transport),
            "{lt:?}"
        );
    }
    assert_eq!(
        decode(LinkType::Sll2, &sll2[..10], false).event,
        Some(DecodeEvent::Sll2PktTooSmall)
    );
    assert_eq!(
        decode(LinkType::Null, &[7, 0, 0, 0, 0x45], false).event,
        Some(DecodeEvent::NullUnsupportedType)
    );
}

#[test]
fn qinq_vlan_ids_are_kept_outer_first() {
    let mut f = ETH_IPV4_UDP[..12].to_vec();
    // 802.1ad tag: vlan 100, then 802.1Q tag: vlan 200, then IPv4
    f.extend([0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0xc8, 0x08, 0x00]);
    f.extend_from_slice(&ETH_IPV4_UDP[ETH_LEN..]);
    let d = decode(LinkType::Ethernet, &f, false);
    assert_eq!(d.event, None);
    assert_eq!((d.vlan, d.vlan_count), ([100, 200], 2));
    assert!(matches!(
        d.transport,
        Transport::Udp {
            sport: 53,
            dport: 53,
            ..
        }
    ));
    // A truncated tag.
    assert_eq!(
        decode(LinkType::Ethernet, &f[..16], false).event,
        Some(DecodeEvent::VlanHeaderTooSmall)
    );
}

#[test]
fn first_fragment_keeps_its_ports_later_ones_do_not() {
    // MF set, offset 0.
    let mut first = ETH_IPV4_TCP;
    first[ETH_LEN + 6] = 0x20;
    let d = decode(LinkType::Ethernet, &first, false);
    assert_eq!(d.ip.unwrap().fragment, Fragment::First);
    assert!(matches!(
        d.transport,
        Transport::Tcp(Tcp {
            sport: 1234,
            dport: 80,
            ..
        })
    ));
    // Offset 185 (1480 bytes).
    let mut later = ETH_IPV4_TCP;
    later[ETH_LEN + 6..ETH_LEN + 8].copy_from_slice(&185u16.to_be_bytes());
    let d = decode(LinkType::Ethernet, &later, false);
    assert_eq!(d.ip.unwrap().fragment, Fragment::Later);
    assert_eq!(d.transport, Transport::Other);
    assert_eq!(d.event, None);
}

#[test]
fn a_first_fragment_cutting_the_tcp_header_keeps_its_fixed_part() {
    // MF set, offset 0, and the fragment ends 4 bytes into the TCP options
    // (24-byte header): the IP packet holds 20 + 22 bytes.
    let mut f = ETH_IPV4_TCP[..ETH_LEN + IP_LEN + 22].to_vec();
    f[ETH_LEN + 6] = 0x20;
    f[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&42u16.to_be_bytes());
    let d = decode(LinkType::Ethernet, &f, false);
    assert_eq!(d.ip.unwrap().fragment, Fragment::First);
    let Transport::Tcp(t) = d.transport else {
        panic!("{:?}", d.transport)
    };
    assert_eq!(
        (t.sport, t.dport, t.seq, t.flags, t.window, t.payload, t.len),
        (1234, 80, 1, tcp_flags::SYN, 65535, &[][..], 0)
    );
    // A data offset below the fixed header's own 20 bytes: no header.
    let mut short = f.clone();
    short[ETH_LEN + IP_LEN + 12] = 0x40;
    assert_eq!(
        decode(LinkType::Ethernet, &short, false).transport,
        Transport::None
    );
    // Not even the flags: no transport, so no flow on ports 0.
    let mut tiny = ETH_IPV4_TCP[..ETH_LEN + IP_LEN + 12].to_vec();
    tiny[ETH_LEN + 6] = 0x20;
    tiny[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&32u16.to_be_bytes());
    assert_eq!(
        decode(LinkType::Ethernet, &tiny, false).transport,
        Transport::None
    );
}

#[test]
fn a_first_fragment_of_an_icmp_echo_keeps_its_type() {
    // IPv4 / ICMP echo request id 1 seq 1, 4 bytes of data, MF set.
    let mut v4 = ETH_IPV4_TCP[..ETH_LEN + IP_LEN].to_vec();
    v4[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&32u16.to_be_bytes());
    v4[ETH_LEN + 6] = 0x20;
    v4[ETH_LEN + 9] = 1;
    v4.extend([8, 0, 0, 0, 0, 1, 0, 1, 1, 2, 3, 4]);
    let d = decode(LinkType::Ethernet, &v4, false);
    assert_eq!(d.ip.unwrap().fragment, Fragment::First);
    assert_eq!(
        d.transport,
        Transport::Icmp {
            type_: 8,
            code: 0,
            payload: &[1, 2, 3, 4]
        }
    );
    // IPv6 / fragment header (offset 0, M set) / ICMPv6 echo request.
    let mut v6 = ETH_IPV6_TCP[..ETH_LEN + 40].to_vec();
    v6[ETH_LEN + 4..ETH_LEN + 6].copy_from_slice(&20u16.to_be_bytes());
    v6[ETH_LEN + 6] = 44;
    v6.extend([58, 0, 0x00, 0x01, 0, 0, 0, 9]);
    v6.extend([128, 0, 0, 0, 0, 1, 0, 1, 1, 2, 3, 4]);
    let d = decode(LinkType::Ethernet, &v6, false);
    assert_eq!(d.ip.unwrap().fragment, Fragment::First);
    assert!(matches!(
        d.transport,
        Transport::Icmp {
            type_: 128,
            code: 0,
            ..
        }
    ));
}

#[test]
fn a_snap_length_keeps_the_segment_length_on_the_wire() {
    // Cut after the TCP header: the 2 bytes of data are not captured.
    let cut = &ETH_IPV4_TCP[..ETH_LEN + IP_LEN + TCP_HDR_LEN];
    let d = decode(LinkType::Ethernet, cut, true);
    assert_eq!(d.event, None);
    let Transport::Tcp(t) = d.transport else {
        panic!("{:?}", d.transport)
    };
    assert_eq!((t.payload, t.len), (&[][..], 2));
    // Whole: the same length, from the captured bytes.
    let Transport::Tcp(t) = decode(LinkType::Ethernet, &ETH_IPV4_TCP, false).transport else {
        panic!()
    };
    assert_eq!((t.payload, t.len), (&b"hi"[..], 2));
    // IPv6, cut inside the data.
    let cut = &ETH_IPV6_TCP[..ETH_IPV6_TCP.len() - 2];
    let Transport::Tcp(t) = decode(LinkType::Ethernet, cut, true).transport else {
        panic!()
    };
    assert_eq!((t.payload, t.len), (&b"a"[..], 3));
    // A whole frame whose IP length claims more: a malformation, not data
    // on the wire.
    let long = with_ip_total_len(&ETH_IPV4_TCP, 1514);
    let d = decode(LinkType::Ethernet, &long, false);
    assert_eq!(d.event, Some(DecodeEvent::Ipv4TruncPkt));
    let Transport::Tcp(t) = d.transport else {
        panic!("{:?}", d.transport)
    };
    assert_eq!((t.payload, t.len), (&b"hi"[..], 2));
}

#[test]
fn ipv6_with_extension_headers() {
    // IPv6, next header hop-by-hop → UDP.
    let mut f = vec![
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x86, 0xdd,
    ];
    // version 6, payload length 8 (HBH) + 12 (UDP), next header 0, hop limit 64
    f.extend([0x60, 0, 0, 0, 0x00, 0x14, 0x00, 0x40]);
    f.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]); // 2001:db8::1
    f.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]); // 2001:db8::2
    // Hop-by-hop: next UDP, length 0 (8 bytes), PadN
    f.extend([0x11, 0x00, 0x01, 0x04, 0, 0, 0, 0]);
    // UDP 5353 → 5353, length 12
    f.extend([0x14, 0xe9, 0x14, 0xe9, 0x00, 0x0c, 0x00, 0x00, 1, 2, 3, 4]);
    let d = decode(LinkType::Ethernet, &f, false);
    assert_eq!(d.event, None);
    let ip = d.ip.unwrap();
    assert!(ip.v6);
    assert_eq!(
        (ip.src.to_string().as_str(), ip.proto),
        ("2001:db8::1", PROTO_UDP)
    );
    assert!(matches!(
        d.transport,
        Transport::Udp {
            sport: 5353,
            dport: 5353,
            ..
        }
    ));
    // The extension header cut in half.
    let cut = &f[..ETH_LEN + 40 + 4];
    let mut cut = cut.to_vec();
    cut[ETH_LEN + 4..ETH_LEN + 6].copy_from_slice(&4u16.to_be_bytes());
    assert_eq!(
        decode(LinkType::Ethernet, &cut, false).event,
        Some(DecodeEvent::Ipv6TruncExthdr)
    );
    let h = FlowHasher::new(1);
    assert_ne!(pair_hash(&h, LinkType::Ethernet, &f), 0);
}

#[test]
fn pair_hash_is_symmetric_seeded_and_blind_to_ports() {
    let h = FlowHasher::new(7);
    let mut rev = ETH_IPV4_TCP;
    // swap addresses and ports
    rev[ETH_LEN + 12..ETH_LEN + 16].copy_from_slice(&ETH_IPV4_TCP[ETH_LEN + 16..ETH_LEN + 20]);
    rev[ETH_LEN + 16..ETH_LEN + 20].copy_from_slice(&ETH_IPV4_TCP[ETH_LEN + 12..ETH_LEN + 16]);
    rev[ETH_LEN + IP_LEN..ETH_LEN + IP_LEN + 2].copy_from_slice(&80u16.to_be_bytes());
    rev[ETH_LEN + IP_LEN + 2..ETH_LEN + IP_LEN + 4].copy_from_slice(&1234u16.to_be_bytes());
    let a = pair_hash(&h, LinkType::Ethernet, &ETH_IPV4_TCP);
    assert_ne!(a, 0);
    assert_eq!(a, pair_hash(&h, LinkType::Ethernet, &rev));
    assert_ne!(
        a,
        pair_hash(&FlowHasher::new(8), LinkType::Ethernet, &ETH_IPV4_TCP)
    );
    // Another connection between the two hosts (another port, another
    // protocol, a later fragment without ports) goes to the same worker.
    let mut other_port = ETH_IPV4_TCP;
    other_port[ETH_LEN + IP_LEN + 1] = 0xd3;
    assert_eq!(a, pair_hash(&h, LinkType::Ethernet, &other_port));
    let mut udp = ETH_IPV4_TCP;
    udp[ETH_LEN + 9] = 17;
    assert_eq!(a, pair_hash(&h, LinkType::Ethernet, &udp));
    let mut later_fragment = ETH_IPV4_TCP;
    later_fragment[ETH_LEN + 6..ETH_LEN + 8].copy_from_slice(&0x00b9u16.to_be_bytes());
    assert_eq!(a, pair_hash(&h, LinkType::Ethernet, &later_fragment));
    // Another host does not, and neither does a frame without addresses.
    let mut other_host = ETH_IPV4_TCP;
    other_host[ETH_LEN + 15] ^= 1;
    assert_ne!(a, pair_hash(&h, LinkType::Ethernet, &other_host));
    assert_eq!(
        pair_hash(&h, LinkType::Ethernet, &ETH_IPV4_TCP[..ETH_LEN + 19]),
        0
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), lt in 0usize..9, snap in any::<bool>()) {
        // The decoded link types and one that is not.
        let lt = LinkType::DECODED.get(lt).copied().unwrap_or(LinkType::Other(147));
        let d = decode(lt, &data, snap);
        if let Some(ip) = d.ip {
            prop_assert!(ip.v6 || ip.src.is_v4());
        }
        let _ = pair_hash(&FlowHasher::new(3), lt, &data);
    }

    #[test]
    fn mutated_valid_frames_never_panic(pos in 0usize..60, byte in any::<u8>(), cut in 0usize..=60) {
        let mut f = ETH_IPV4_TCP;
        f[pos] = byte;
        let d = decode(LinkType::Ethernet, &f[..cut], false);
        // A frame that lost bytes must say so or still decode to its end.
        if cut < ETH_LEN {
            prop_assert_eq!(d.event, Some(DecodeEvent::EthernetPktTooSmall));
        }
    }
}

/// Ethernet / IPv6 / TCP ACK with 3 bytes of data.
const ETH_IPV6_TCP: [u8; 77] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x86, 0xdd,
    // IPv6: version 6, payload length 23, next header TCP, hop limit 64
    0x60, 0x00, 0x00, 0x00, 0x00, 0x17, 0x06, 0x40, // src 2001:db8::1, dst 2001:db8::2
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 2,
    // TCP: sport 443, dport 50000, seq 7, ack 9, data offset 5, ACK|PSH
    0x01, 0xbb, 0xc3, 0x50, 0, 0, 0, 7, 0, 0, 0, 9, 0x50, 0x18, 0x01, 0x00, 0, 0, 0, 0,
    // payload "abc"
    0x61, 0x62, 0x63,
];

/// Whenever the fast path takes a frame, it decodes it exactly as the full
/// decoder does.
fn agrees(frame: &[u8]) -> bool {
    match fast_path(frame) {
        Some(fast) => {
            fast == decode_lax(LinkType::Ethernet, frame, false)
                && fast == decode_lax(LinkType::Ethernet, frame, true)
        }
        None => true,
    }
}

#[test]
fn fast_path_takes_the_common_frames() {
    for f in [&ETH_IPV4_TCP[..], &ETH_IPV4_UDP[..], &ETH_IPV6_TCP[..]] {
        assert!(fast_path(f).is_some());
        assert!(agrees(f));
    }
    // ...and leaves truncated ones to the full decoder, which names them.
    assert!(fast_path(&ETH_IPV4_TCP[..50]).is_none());
    assert!(fast_path(&ETH_IPV6_TCP[..70]).is_none());
}

/// Every Ethernet frame of every capture in `pcaps/` (and of the public
/// corpus when it is beside the repository).
#[test]
fn fast_path_agrees_with_the_full_decoder_on_real_captures() {
    use crate::capture::Frame;
    use crate::capture::file::{FrameBytes, Input, read_frames};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("pcaps")];
    dirs.push(root.join("../shared/pcaps"));
    let mut files = Vec::new();
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                files.push(p);
            }
        }
    }
    let (mut taken, mut total) = (0u64, 0u64);
    for f in &files {
        let Ok(input) = Input::open(f) else { continue };
        let _ = read_frames(
            input,
            &mut |fr: &Frame<'_>, _: FrameBytes<'_>| {
                if fr.linktype == LinkType::Ethernet {
                    total += 1;
                    if fast_path(fr.data).is_some() {
                        taken += 1;
                    }
                    assert!(agrees(fr.data), "{}: {:02x?}", f.display(), fr.data);
                }
            },
            &Default::default(),
        );
    }
    assert!(taken > 1000 && taken * 2 > total, "{taken} of {total}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn fast_path_agrees_on_mutated_frames(which in 0usize..3, pos in 0usize..77, byte in any::<u8>(), pos2 in 0usize..77, byte2 in any::<u8>(), cut in 0usize..=77) {
        let base: &[u8] = match which {
            0 => &ETH_IPV4_TCP,
            1 => &ETH_IPV4_UDP,
            _ => &ETH_IPV6_TCP,
        };
        let mut f = base.to_vec();
        let n = f.len();
        f[pos % n] = byte;
        f[pos2 % n] = byte2;
        f.truncate(cut.min(n));
        prop_assert!(agrees(&f), "{:02x?}", f);
    }
}

#[test]
fn quoted_protocol_of_an_icmp_error() {
    // An IPv4 header alone (a protocol probe without payload), protocol 241.
    let mut v4 = vec![0x45, 0, 0, 20, 0, 0, 0, 0, 64, 241, 0, 0];
    v4.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
    assert_eq!(quoted_protocol(&v4, false), Some(241));
    // Cut inside the header, another IP version, or the wrong family.
    assert_eq!(quoted_protocol(&v4[..19], false), None);
    assert_eq!(quoted_protocol(&v4, true), None);
    let mut v6 = vec![0x60, 0, 0, 0, 0, 0, 132, 64];
    v6.extend_from_slice(&[0; 32]);
    assert_eq!(quoted_protocol(&v6, true), Some(132));
    assert_eq!(quoted_protocol(&v6[..6], true), None);
    assert_eq!(quoted_protocol(&v6, false), None);
    assert_eq!(quoted_protocol(&[], false), None);
}
