//! The symmetric, seeded hash that routes each frame to the worker that
//! owns its flow: the hash of its address pair ([`pair_hash`]).
//!
//! It runs on the source thread for every frame, so it reads only the few
//! bytes it needs, by hand, with bounds checks (no full decode). Both
//! directions hash alike: the addresses are ordered before hashing. Frames
//! it cannot place (non-IP, truncated before the addresses) hash to 0.

use std::hash::Hash;

use super::{be16, word_at};
use crate::capture::LinkType;

/// A per-run seeded hasher (`ahash`), so an attacker cannot aim crafted
/// tuples at one worker without knowing the seed.
#[derive(Clone)]
pub struct FlowHasher(ahash::RandomState);

impl FlowHasher {
    pub fn new(seed: u64) -> Self {
        FlowHasher(ahash::RandomState::with_seeds(
            seed,
            seed ^ 0x243f_6a88_85a3_08d3,
            seed.rotate_left(17) ^ 0x1319_8a2e_0370_7344,
            0xa409_3822_299f_31d0,
        ))
    }

    pub fn hash<T: Hash>(&self, v: &T) -> u64 {
        self.0.hash_one(v)
    }
}

/// Symmetric hash of the frame's two IP addresses (0 when it has none).
///
/// The addresses and not the 5-tuple: every connection between two hosts
/// goes to one worker, in packet order, so what one connection says about
/// another between the same pair (an FTP control session's negotiated data
/// port, the session a connection back follows) is known when the other is
/// judged, with any number of workers; so are an IP datagram's fragments,
/// which carry no ports after the first. The cost: the traffic of one pair
/// cannot spread over several workers.
///
/// Each address is folded into one word (an IPv6 address's halves
/// combined) and the two words ordered, so both directions hash alike.
pub fn pair_hash(hasher: &FlowHasher, linktype: LinkType, data: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    addresses(linktype, data).map_or(0, |(a, b)| {
        let (a, b) = (address_word(a), address_word(b));
        let mut h = hasher.0.build_hasher();
        h.write_u64(a.min(b));
        h.write_u64(a.max(b));
        h.finish()
    })
}

/// An IPv4 or IPv6 address as one word.
fn address_word(addr: &[u8]) -> u64 {
    match addr.len() {
        4 => addr
            .try_into()
            .map_or(0, |b: [u8; 4]| u64::from(u32::from_le_bytes(b))),
        _ => word_at(addr, 0) ^ word_at(addr, 8).rotate_left(29),
    }
}

/// The source and destination addresses of an IPv4 or IPv6 frame.
fn addresses(linktype: LinkType, data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (mut ether_type, mut at) = match linktype {
        LinkType::Ethernet => (be16(data, 12)?, 14),
        LinkType::Sll => (be16(data, 14)?, 16),
        LinkType::Sll2 => (be16(data, 0)?, 20),
        LinkType::Null | LinkType::Loop => {
            let v = *data.get(4)? >> 4;
            (if v == 6 { 0x86dd } else { 0x0800 }, 4)
        }
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => (
            if *data.first()? >> 4 == 6 {
                0x86dd
            } else {
                0x0800
            },
            0,
        ),
        LinkType::Other(_) => return None,
    };
    for _ in 0..3 {
        if matches!(ether_type, 0x8100 | 0x88a8 | 0x9100) {
            ether_type = be16(data, at + 2)?;
            at += 4;
        }
    }
    let ip = data.get(at..)?;
    match ether_type {
        0x0800 => Some((ip.get(12..16)?, ip.get(16..20)?)),
        0x86dd => Some((ip.get(8..24)?, ip.get(24..40)?)),
        _ => None,
    }
}
