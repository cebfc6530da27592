//! Input formats shared by the fuzz targets and the seed builder
//! (`examples/seed.rs`).
//!
//! `decode`: one selector byte, then the frame. `packet_path`: one config
//! byte, then frames, each `selector, time op, time value, length (u16, big
//! endian), bytes`. A selector's low three bits pick the link type from
//! [`LINKS`]; [`SNAP`] says the frame was longer on the wire (the capture's
//! snap length cut it).

use backflow::capture::{Frame, LinkType};
use backflow::time::Timestamp;

/// The link types the decoder understands, in selector order.
pub const LINKS: [LinkType; 8] = LinkType::DECODED;

/// Selector bit: the frame is snap-truncated.
pub const SNAP: u8 = 0x80;

/// Link type and snap flag of a selector byte.
pub fn select(sel: u8) -> (LinkType, bool) {
    (LINKS[usize::from(sel & 7)], sel & SNAP != 0)
}

/// The selector byte of a link type (None: not one the decoder knows).
pub fn selector(linktype: LinkType, snap: bool) -> Option<u8> {
    let i = LINKS.iter().position(|l| *l == linktype)?;
    Some(i as u8 | if snap { SNAP } else { 0 })
}

/// Packet time of the first frame of a `packet_path` input (2023-11-14).
pub const START: Timestamp = Timestamp(1_700_000_000_000_000);

const MS: u64 = 1_000;
const SEC: u64 = 1_000_000;

/// Applies a time step: `op & 7` picks the unit of `value`.
pub fn step_time(ts: Timestamp, op: u8, value: u8) -> Timestamp {
    let v = u64::from(value);
    let t = ts.0;
    Timestamp(match op & 7 {
        0 => t.saturating_add(v * MS),
        1 => t.saturating_add(v * SEC),
        2 => t.saturating_add(v * 60 * SEC),
        3 => t.saturating_add(v * 3_600 * SEC),
        4 => t.saturating_sub(v * SEC),
        5 => t.saturating_add(v * 86_400 * SEC),
        6 => t.saturating_add(v * 365 * 86_400 * SEC),
        _ => v * SEC,
    })
}

/// The time step that goes from `from` to about `to`.
pub fn time_op(from: Timestamp, to: Timestamp) -> (u8, u8) {
    if to < from {
        let s = (from.0 - to.0).div_ceil(SEC);
        return (4, s.min(255) as u8);
    }
    let d = to.0 - from.0;
    for (op, unit) in [
        (0u8, MS),
        (1, SEC),
        (2, 60 * SEC),
        (3, 3_600 * SEC),
        (5, 86_400 * SEC),
    ] {
        if d / unit < 256 {
            return (op, (d / unit) as u8);
        }
    }
    (6, (d / (365 * 86_400 * SEC)).min(255) as u8)
}

/// An owned frame of a `packet_path` input.
#[derive(Clone, Debug)]
pub struct OwnedFrame {
    pub ts: Timestamp,
    pub linktype: LinkType,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

impl OwnedFrame {
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            ts: self.ts,
            linktype: self.linktype,
            data: &self.data,
            orig_len: self.orig_len,
            iface: 0,
        }
    }
}

/// Bytes a snap-truncated frame had on the wire beyond its captured ones.
pub const SNAP_MISSING: u32 = 100;

/// Splits a `packet_path` input (after its config byte) into frames.
pub fn frames(mut input: &[u8]) -> Vec<OwnedFrame> {
    let mut out = Vec::new();
    let mut ts = START;
    while let [sel, op, value, hi, lo, rest @ ..] = input {
        let (linktype, snap) = select(*sel);
        ts = step_time(ts, *op, *value);
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (data, tail) = rest.split_at(len);
        let caplen = len as u32;
        out.push(OwnedFrame {
            ts,
            linktype,
            data: data.to_vec(),
            orig_len: if snap { caplen + SNAP_MISSING } else { caplen },
        });
        input = tail;
    }
    out
}

/// Writes frames in the `packet_path` format (frames of link types the
/// decoder does not know are left out; data beyond 65535 bytes is cut).
pub fn encode_frames(config: u8, frames: &[Frame<'_>]) -> Vec<u8> {
    let mut out = vec![config];
    let mut ts = START;
    let mut first = None;
    for f in frames {
        let Some(sel) = selector(f.linktype, f.orig_len as usize > f.data.len()) else {
            continue;
        };
        // Keep the capture's relative time, starting at START.
        let base = *first.get_or_insert(f.ts);
        let want = Timestamp(START.0.saturating_add(f.ts.0.saturating_sub(base.0)));
        let (op, value) = time_op(ts, want);
        ts = step_time(ts, op, value);
        let data = &f.data[..f.data.len().min(usize::from(u16::MAX))];
        out.extend([sel, op, value]);
        out.extend((data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    }
    out
}
