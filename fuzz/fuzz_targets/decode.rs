//! The frame decoder on any bytes, for every link type it knows.
//!
//! Input: a selector byte (low three bits: link type, see `LINKS`; top bit:
//! snap-truncated), then the frame. Besides not panicking, the decoder must
//! keep its documented promises: no truncation event for a snap-truncated
//! frame, payload views inside the frame, at most two VLAN ids kept.
#![no_main]

use backflow::decode::{self, FlowHasher, Transport};
use backflow_fuzz::select;
use libfuzzer_sys::fuzz_target;

fn inside(part: &[u8], whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    part.is_empty() || (p >= w && p + part.len() <= w + whole.len())
}

fuzz_target!(|input: &[u8]| {
    let Some((&sel, data)) = input.split_first() else {
        return;
    };
    let (linktype, snap) = select(sel);
    let d = decode::decode(linktype, data, snap);
    if snap && let Some(e) = d.event {
        assert!(
            !e.is_truncation(),
            "{e:?} reported for a snap-truncated frame"
        );
    }
    assert!(usize::from(d.vlan_count.min(2)) <= d.vlan.len());
    if let Some(ip) = d.ip {
        match d.transport {
            Transport::Tcp(t) => assert!(inside(t.payload, data)),
            Transport::Udp { payload, .. } => assert!(inside(payload, data)),
            Transport::Icmp { payload, .. } => {
                assert!(inside(payload, data));
                // ICMP errors quote a packet; the worker reads its tuple.
                let _ = decode::quoted_tuple(payload, ip.v6);
            }
            _ => {}
        }
    } else {
        assert!(!matches!(
            d.transport,
            Transport::Tcp(_) | Transport::Udp { .. } | Transport::Icmp { .. }
        ));
    }
    // The source hashes every frame to pick its worker.
    let _ = decode::pair_hash(&FlowHasher::new(0x5eed), linktype, data);
});
