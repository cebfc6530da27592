//! TCP flag combinations no stack sends in normal operation, and LAND
//! (source equals destination), reported as EVE `anomaly` records with
//! counters. Scans made of them are still `port_scan`.

use crate::decode::{Addr, tcp_flags as F};

/// The anomaly of a TCP segment's flags, if any (stable dotted names).
pub fn check(flags: u8, src: &Addr, sport: u16, dst: &Addr, dport: u16) -> Option<&'static str> {
    let f = flags;
    if src == dst && sport == dport {
        Some("decoder.tcp.land")
    } else if f & F::SYN != 0 && f & F::FIN != 0 {
        Some("decoder.tcp.flags_syn_fin")
    } else if f & F::SYN != 0 && f & F::RST != 0 {
        Some("decoder.tcp.flags_syn_rst")
    } else if f & (F::FIN | F::PSH | F::URG) == F::FIN | F::PSH | F::URG && f & F::ACK == 0 {
        Some("decoder.tcp.flags_xmas")
    } else if f & 0x3f == 0 {
        Some("decoder.tcp.flags_null")
    } else if f & F::FIN != 0 && f & F::ACK == 0 {
        Some("decoder.tcp.flags_fin_no_ack")
    } else {
        None
    }
}

/// Every name [`check`] can return, for counters.
pub const NAMES: [&str; 6] = [
    "decoder.tcp.land",
    "decoder.tcp.flags_syn_fin",
    "decoder.tcp.flags_syn_rst",
    "decoder.tcp.flags_xmas",
    "decoder.tcp.flags_null",
    "decoder.tcp.flags_fin_no_ack",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations() {
        let (a, b) = (Addr::from([10, 0, 0, 1]), Addr::from([10, 0, 0, 2]));
        assert_eq!(check(F::SYN, &a, 1, &b, 2), None);
        assert_eq!(check(F::SYN | F::ACK, &a, 1, &b, 2), None);
        assert_eq!(check(F::FIN | F::ACK, &a, 1, &b, 2), None);
        assert_eq!(
            check(F::SYN | F::FIN, &a, 1, &b, 2),
            Some("decoder.tcp.flags_syn_fin")
        );
        assert_eq!(
            check(F::SYN | F::RST, &a, 1, &b, 2),
            Some("decoder.tcp.flags_syn_rst")
        );
        assert_eq!(
            check(F::FIN | F::PSH | F::URG, &a, 1, &b, 2),
            Some("decoder.tcp.flags_xmas")
        );
        assert_eq!(check(0, &a, 1, &b, 2), Some("decoder.tcp.flags_null"));
        assert_eq!(
            check(F::ECE | F::CWR, &a, 1, &b, 2),
            Some("decoder.tcp.flags_null")
        );
        assert_eq!(
            check(F::FIN, &a, 1, &b, 2),
            Some("decoder.tcp.flags_fin_no_ack")
        );
        assert_eq!(check(F::SYN, &a, 80, &a, 80), Some("decoder.tcp.land"));
        assert!(NAMES.iter().all(|n| n.starts_with("decoder.tcp.")));
    }
}
