//! Community ID v1 (corelight/community-id-spec): a hash of a flow's
//! endpoints that is the same for both directions and across tools, so an
//! analyst can pivot from a backflow alert to Zeek or Suricata logs.
//!
//! `"1:" + base64(sha1(seed(2) . saddr . daddr . proto(1) . 0(1) . sport(2) . dport(2)))`,
//! big-endian fields, endpoints ordered so the smaller (address, port) comes
//! first. ICMP types map to port pairs as in the spec (requests and replies
//! share one ID; other types are one-way and keep their order).

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::decode::{Addr, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP};

const ICMP4_PAIRS: [(u8, u8); 10] = [
    (8, 0),
    (0, 8),
    (13, 14),
    (14, 13),
    (15, 16),
    (16, 15),
    (10, 9),
    (9, 10),
    (17, 18),
    (18, 17),
];
const ICMP6_PAIRS: [(u8, u8); 12] = [
    (128, 129),
    (129, 128),
    (130, 131),
    (131, 130),
    (133, 134),
    (134, 133),
    (135, 136),
    (136, 135),
    (139, 140),
    (140, 139),
    (144, 145),
    (145, 144),
];

/// The Community ID of a flow. `sport`/`dport` are ICMP type/code for ICMP,
/// ignored for protocols without ports.
pub fn community_id(seed: u16, proto: u8, src: Addr, sport: u16, dst: Addr, dport: u16) -> String {
    let (mut sport, mut dport, mut one_way) = (sport, dport, false);
    let has_ports = matches!(
        proto,
        PROTO_TCP | PROTO_UDP | PROTO_ICMP | PROTO_ICMPV6 | PROTO_SCTP
    );
    if matches!(proto, PROTO_ICMP | PROTO_ICMPV6) {
        let pairs: &[(u8, u8)] = if proto == PROTO_ICMP {
            &ICMP4_PAIRS
        } else {
            &ICMP6_PAIRS
        };
        let t = sport as u8;
        match pairs.iter().find(|(a, _)| *a == t) {
            Some(&(a, b)) => (sport, dport) = (u16::from(a), u16::from(b)),
            None => one_way = true,
        }
    }
    let (s, d) = (src.wire_bytes(), dst.wire_bytes());
    let ordered = one_way || s < d || (s == d && sport < dport);
    let (s, d, sport, dport) = if ordered {
        (s, d, sport, dport)
    } else {
        (d, s, dport, sport)
    };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(s);
    h.update(d);
    h.update([proto, 0]);
    if has_ports {
        h.update(sport.to_be_bytes());
        h.update(dport.to_be_bytes());
    }
    let digest = h.finalize();
    let mut out = String::with_capacity(30);
    out.push_str("1:");
    base64::engine::general_purpose::STANDARD.encode_string(digest, &mut out);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::decode::a;

    /// The spec's baseline (baseline/README.md and baseline_deflt.json, seed 0).
    #[test]
    fn published_test_vectors() {
        let cases: &[(u8, &str, u16, &str, u16, &str)] = &[
            (
                6,
                "1.2.3.4",
                1122,
                "5.6.7.8",
                3344,
                "1:wCb3OG7yAFWelaUydu0D+125CLM=",
            ),
            (
                17,
                "1.2.3.4",
                1122,
                "5.6.7.8",
                3344,
                "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=",
            ),
            (
                132,
                "1.2.3.4",
                1122,
                "5.6.7.8",
                3344,
                "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=",
            ),
            (
                1,
                "1.2.3.4",
                8,
                "5.6.7.8",
                0,
                "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=",
            ),
            (
                1,
                "5.6.7.8",
                0,
                "1.2.3.4",
                0,
                "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=",
            ),
            (
                58,
                "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
                128,
                "fe80:1011:1213:1415:1617:1819:1A1B:1C1D",
                0,
                "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=",
            ),
            (
                58,
                "fe80:1011:1213:1415:1617:1819:1A1B:1C1D",
                129,
                "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
                0,
                "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=",
            ),
            (
                58,
                "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
                146,
                "fe80:1011:1213:1415:1617:1819:1A1B:1C1D",
                0,
                "1:fYC8+pz24E+EhANP1EZhpX0Dw10=",
            ),
            (
                6,
                "128.232.110.120",
                34855,
                "66.35.250.204",
                80,
                "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            ),
            (
                6,
                "66.35.250.204",
                80,
                "128.232.110.120",
                34855,
                "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            ),
            (
                17,
                "192.168.1.52",
                54585,
                "8.8.8.8",
                53,
                "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
            ),
            (
                1,
                "10.0.0.1",
                11,
                "10.0.0.2",
                0,
                "1:YHxtAirCG//0OzkcVAukqKQN9xM=",
            ),
            (
                6,
                "2001:470:e5bf:dead:4957:2174:e82c:4887",
                63943,
                "2607:f8b0:400c:c03::1a",
                25,
                "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            ),
            (
                46,
                "10.1.12.1",
                0,
                "10.1.12.2",
                0,
                "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=",
            ),
        ];
        for &(proto, s, sp, d, dp, want) in cases {
            assert_eq!(
                community_id(0, proto, a(s), sp, a(d), dp),
                want,
                "{proto} {s}:{sp} -> {d}:{dp}"
            );
        }
    }
}
