//! The memory budget: one number (`memory_cap`) split across the tables
//! that grow with the traffic, so that nothing an attacker sends can make
//! backflow use more than the operator configured.
//!
//! | share | what | bound |
//! | --- | --- | --- |
//! | 60 % | flow tables (all workers) | `flow.max_flows` = share / bytes per flow, unless set lower |
//! | 25 % | detector trackers (scanners, flood victims, sessions, ...) | split evenly, each capped in bytes and in `detect.max_tracked` entries |
//! | 10 % | signature-rule state and reputation tables | a quarter for the alert filter's threshold state ([`threshold_bytes`]), a half for reputation entries ([`reputation_entries`]: 80 bytes each at the peak of a reload, 671,088 IPv4 entries for 1 GiB) |
//! | 5 % | slack for estimates | |
//!
//! Outside the budget is a fixed overhead that does not grow with the
//! traffic: the input held (at most [`INPUT_BYTES`]), record
//! batches queued for the output thread (about 1 MiB each, six per
//! worker), thread stacks, the binary and its libraries; see
//! [`fixed_overhead`].

use crate::flow::FlowTable;

/// The default `memory_cap`.
pub const DEFAULT_CAP: u64 = 1 << 30;
/// The smallest `memory_cap` accepted.
pub const MIN_CAP: u64 = 16 << 20;

/// Trackers that share the detectors' part of the budget: scanners, flood
/// victims, brute-force sources, the role detector's four (learned server
/// ports, reversed roles, inbound sessions, served clients), egress and
/// SMTP incidents, open proxies, FTP pairs.
pub const DETECT_TRACKERS: u64 = 11;

/// Input read ahead and shared with the workers at most (chunks in flight,
/// or pages of a mapped file).
pub const INPUT_BYTES: u64 = crate::capture::file::INPUT_HELD as u64;

/// The split of a `memory_cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub total: u64,
    pub flows: u64,
    pub detect: u64,
    pub rules: u64,
}

impl Budget {
    pub fn split(total: u64) -> Budget {
        Budget {
            total,
            flows: total / 100 * 60,
            detect: total / 100 * 25,
            rules: total / 100 * 10,
        }
    }

    /// Flows the flows' share holds (all workers together).
    pub fn max_flows(&self) -> usize {
        usize::try_from(self.flows / bytes_per_flow()).unwrap_or(usize::MAX)
    }

    /// Bytes for each detector tracker.
    pub fn tracker_bytes(&self) -> usize {
        usize::try_from(self.detect / DETECT_TRACKERS).unwrap_or(usize::MAX)
    }

    /// Bytes for signature-rule state and reputation tables.
    pub fn rules_bytes(&self) -> usize {
        usize::try_from(self.rules).unwrap_or(usize::MAX)
    }
}

/// The alert filter's threshold and detection-filter state: a quarter of
/// the rules' share `rules` (bytes).
pub fn threshold_bytes(rules: usize) -> usize {
    rules / 4
}

/// Reputation entries all feeds together hold: half of the rules' share
/// `rules` (bytes), at [`BYTES_PER_ENTRY`](crate::detect::reputation::BYTES_PER_ENTRY)
/// each.
pub fn reputation_entries(rules: usize) -> usize {
    crate::detect::reputation::Reputation::entries_for(rules / 2)
}

/// Bytes a tracked flow takes, as budgeted: its slot and index entry, plus
/// the index's power-of-two rounding and the free list (measured: 220 to
/// 246 bytes resident per flow).
pub fn bytes_per_flow() -> u64 {
    FlowTable::bytes_per_flow() as u64 + 32
}

/// Memory outside the budget for a run with `workers` workers.
pub fn fixed_overhead(workers: usize) -> u64 {
    let w = workers as u64;
    // Input chunks; record batches (four queued and two spares per worker,
    // about 1 MiB each, plus the one being filled); stacks; the binary,
    // its libraries and the allocator's own slack.
    INPUT_BYTES + w * 7 * (1 << 20) + w * (2 << 20) + (24 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_adds_up_within_the_cap() {
        let b = Budget::split(64 << 20);
        assert!(b.flows + b.detect + b.rules <= b.total);
        assert!(b.max_flows() > 100_000 && b.max_flows() < 200_000);
        assert_eq!(b.tracker_bytes() as u64 * DETECT_TRACKERS, b.detect);
        // Threshold state and reputation entries fit in the rules' share.
        let rules = b.rules_bytes();
        let rep = reputation_entries(rules) * crate::detect::reputation::BYTES_PER_ENTRY;
        assert!(threshold_bytes(rules) + rep <= rules);
        assert!(rep > rules / 3, "{rep} of {rules}");
        // The default cap holds 671,088 IPv4 entries, as documented.
        assert_eq!(
            reputation_entries(Budget::split(DEFAULT_CAP).rules_bytes()),
            671_088
        );
    }
}
