//! The symmetric, seeded flow hash that routes each frame to the worker
//! that owns its flow.
//!
//! It runs on the source thread for every frame, so it reads only the few
//! bytes it needs, by hand, with bounds checks (no full decode). Both
//! directions of a flow hash alike: the endpoints are ordered before hashing.
//! Frames it cannot place (non-IP, truncated before the addresses) hash to 0;
//! later IP fragments hash on their addresses only.

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

/// Symmetric hash of the frame's 5-tuple (0 when there is none).
///
/// Each endpoint is folded into one word (an IPv6 address's halves
/// combined) and the two words ordered, so both directions hash the same
/// three words: hashing the tuple itself (two slices, two ports, the
/// protocol) cost the source thread about 200 instructions a frame, as
/// much as reading the capture.
pub fn flow_hash(hasher: &FlowHasher, linktype: LinkType, data: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    tuple(linktype, data).map_or(0, |(a, b, proto)| {
        let (a, b) = (endpoint_word(a), endpoint_word(b));
        let mut h = hasher.0.build_hasher();
        h.write_u64(a.min(b));
        h.write_u64(a.max(b));
        h.write_u8(proto);
        h.finish()
    })
}

/// An endpoint (an IPv4 or IPv6 address and a port) as one word.
fn endpoint_word((addr, port): End<'_>) -> u64 {
    let folded = match addr.len() {
        4 => addr
            .try_into()
            .map_or(0, |b: [u8; 4]| u64::from(u32::from_le_bytes(b))),
        _ => word_at(addr, 0) ^ word_at(addr, 8).rotate_left(29),
    };
    folded.rotate_left(16) ^ u64::from(port)
}

type End<'a> = (&'a [u8], u16);

fn tuple(linktype: LinkType, data: &[u8]) -> Option<(End<'_>, End<'_>, u8)> {
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
        0x0800 => {
            let ihl = usize::from(*ip.first()? & 0x0f) * 4;
            let proto = *ip.get(9)?;
            let (src, dst) = (ip.get(12..16)?, ip.get(16..20)?);
            let frag_offset = be16(ip, 6)? & 0x1fff;
            Some(ports(
                src,
                dst,
                proto,
                if frag_offset == 0 {
                    ip.get(ihl..)
                } else {
                    None
                },
            ))
        }
        0x86dd => {
            let (src, dst) = (ip.get(8..24)?, ip.get(24..40)?);
            let mut next = *ip.get(6)?;
            let mut off = 40;
            for _ in 0..8 {
                match next {
                    0 | 43 | 60 => {
                        next = *ip.get(off)?;
                        off += (usize::from(*ip.get(off + 1)?) + 1) * 8;
                    }
                    51 => {
                        next = *ip.get(off)?;
                        off += (usize::from(*ip.get(off + 1)?) + 2) * 4;
                    }
                    44 => {
                        let frag_offset = be16(ip, off + 2)? >> 3;
                        next = *ip.get(off)?;
                        off += 8;
                        if frag_offset != 0 {
                            return Some(ports(src, dst, next, None));
                        }
                    }
                    _ => break,
                }
            }
            Some(ports(src, dst, next, ip.get(off..)))
        }
        _ => None,
    }
}

fn ports<'a>(src: &'a [u8], dst: &'a [u8], proto: u8, l4: Option<&[u8]>) -> (End<'a>, End<'a>, u8) {
    let (sp, dp) = match (proto, l4) {
        (6 | 17 | 132, Some(l4)) => (be16(l4, 0).unwrap_or(0), be16(l4, 2).unwrap_or(0)),
        _ => (0, 0),
    };
    ((src, sp), (dst, dp), proto)
}
