//! Counters.
//!
//! Each worker owns a [`Counters`] (plain integers, no atomics on the hot
//! path) and sends a snapshot at every stats interval of packet time and at
//! the end; the output thread merges the snapshots of all workers and the
//! source into one [`Snapshot`], which becomes an EVE `stats` record (the
//! part Suricata's schema knows), a line of `stats.json` (everything), and
//! the end-of-run summary.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::decode::DecodeEvent;
use crate::flow::TableCounters;

/// Latency of one pipeline stage, in microseconds (an `hdrhistogram`
/// with 2 significant digits, 1 µs to 1 hour; longer waits are clamped).
/// Allocated on first use, so that counters without latencies (and their
/// copies at every stats interval) cost nothing.
#[derive(Clone, Debug, Default)]
pub struct StageLatency(Option<Box<hdrhistogram::Histogram<u64>>>);

impl StageLatency {
    fn hist(&mut self) -> &mut hdrhistogram::Histogram<u64> {
        self.0.get_or_insert_with(|| {
            Box::new(
                hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 2)
                    .expect("constant histogram bounds are valid"),
            )
        })
    }
    pub fn record(&mut self, micros: u64) {
        self.hist().saturating_record(micros.max(1));
    }
    pub fn record_n(&mut self, micros: u64, n: u64) {
        let h = self.hist();
        let _ = h.record_n(micros.clamp(1, h.high()), n);
    }
    pub fn merge(&mut self, o: &StageLatency) {
        if let Some(other) = &o.0 {
            let _ = self.hist().add(&**other);
        }
    }
    pub fn count(&self) -> u64 {
        self.0.as_ref().map_or(0, |h| h.len())
    }
    /// (p50, p99, p99.9, max) in microseconds; zeros when empty.
    pub fn percentiles(&self) -> (u64, u64, u64, u64) {
        match &self.0 {
            Some(h) if !h.is_empty() => (
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
            ),
            _ => (0, 0, 0, 0),
        }
    }
}

impl Serialize for StageLatency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (p50, p99, p999, max) = self.percentiles();
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("count", &self.count())?;
        m.serialize_entry("p50_us", &p50)?;
        m.serialize_entry("p99_us", &p99)?;
        m.serialize_entry("p99_9_us", &p999)?;
        m.serialize_entry("max_us", &max)?;
        m.end()
    }
}

/// Per-stage latency, measured on the wall clock (it is about the sensor,
/// not about the traffic: nothing the engine decides depends on it).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Live capture: from the packet's capture timestamp to the moment its
    /// worker starts on it (kernel buffer, capture thread, queue).
    pub capture: StageLatency,
    /// From a batch leaving the source to its worker taking it.
    pub queue: StageLatency,
    /// A worker's processing time per batch.
    pub worker: StageLatency,
    /// From a worker's records being ready to their being written.
    pub output: StageLatency,
}

impl Latency {
    pub fn merge(&mut self, o: &Latency) {
        self.capture.merge(&o.capture);
        self.queue.merge(&o.queue);
        self.worker.merge(&o.worker);
        self.output.merge(&o.output);
    }
}

/// Per-worker counters.
#[derive(Clone, Debug, Serialize)]
pub struct Counters {
    pub pkts: u64,
    pub bytes: u64,
    /// Frames with a decode event.
    pub invalid: u64,
    pub ethernet: u64,
    pub sll: u64,
    pub sll2: u64,
    pub raw: u64,
    pub null: u64,
    pub vlan: u64,
    pub vlan_qinq: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub tcp: u64,
    pub udp: u64,
    pub icmpv4: u64,
    pub icmpv6: u64,
    pub other_ip: u64,
    pub non_ip: u64,
    pub max_pkt_size: u64,
    pub frag_first: u64,
    pub frag_later: u64,
    /// Frames the capture cut short of their wire length (snap length).
    pub snap_truncated: u64,
    /// Frames of a link type the decoder does not know.
    pub unknown_linktype: u64,
    #[serde(skip)]
    pub events: [u64; DecodeEvent::COUNT],
    pub anomalies_logged: u64,
    pub anomalies_suppressed: u64,
    pub tcp_syn: u64,
    pub tcp_synack: u64,
    pub tcp_rst: u64,
    pub tcp_handshakes: u64,
    pub tcp_midstream: u64,
    /// SYNs to a victim under a reported flood that created no flow.
    pub flood_syns_untracked: u64,
    pub icmpv6_flows: u64,
    /// Flow records written, by final flow state (new, established, closed).
    pub ended_state: [u64; 3],
    pub active_flows: u64,
    #[serde(skip)]
    pub table: TableCounters,
    pub alerts: BTreeMap<&'static str, u64>,
    /// TCP flag anomalies by name.
    pub flag_anomalies: BTreeMap<&'static str, u64>,
    pub latency: Latency,
    /// Detector trackers' usage when this snapshot was cut (shared by the
    /// workers: merged by taking the largest).
    #[serde(skip)]
    pub trackers: BTreeMap<&'static str, crate::detect::Usage>,
    /// The rule engine's and reputation's counters when this snapshot was
    /// cut (shared by the workers: merged by taking the largest).
    #[serde(skip)]
    pub rules: RuleStats,
}

/// Signature rules and reputation: what is loaded and what it matched, as
/// `backflow.rules` in stats.json. Counters are totals since start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleStats {
    /// Rules loaded for matching (signature rules, not detector entries).
    pub loaded: u64,
    /// Rules rejected at load (`backflow rules check` lists them).
    pub rejected: u64,
    /// Rule matches, before thresholds and suppression.
    pub matches: u64,
    /// Alerts raised by rules.
    pub alerts: u64,
    /// Matches of `pass` rules.
    pub passed: u64,
    /// Rule alerts beyond the per-packet limit.
    pub alert_overflow: u64,
    /// Flowbits not set because the flow held the most it can.
    pub flowbits_refused: u64,
    /// Alerts (rules and detectors) dropped by `suppress`.
    pub suppressed: u64,
    /// Alerts (rules and detectors) held back by thresholds.
    pub thresholded: u64,
    /// Reputation entries in the current table.
    pub reputation_entries: u64,
    /// Flow endpoints looked up in the reputation table.
    pub reputation_lookups: u64,
    /// Flows that hit a reputation entry.
    pub reputation_hits: u64,
}

impl RuleStats {
    fn max(self, o: RuleStats) -> RuleStats {
        RuleStats {
            loaded: self.loaded.max(o.loaded),
            rejected: self.rejected.max(o.rejected),
            matches: self.matches.max(o.matches),
            alerts: self.alerts.max(o.alerts),
            passed: self.passed.max(o.passed),
            alert_overflow: self.alert_overflow.max(o.alert_overflow),
            flowbits_refused: self.flowbits_refused.max(o.flowbits_refused),
            suppressed: self.suppressed.max(o.suppressed),
            thresholded: self.thresholded.max(o.thresholded),
            reputation_entries: self.reputation_entries.max(o.reputation_entries),
            reputation_lookups: self.reputation_lookups.max(o.reputation_lookups),
            reputation_hits: self.reputation_hits.max(o.reputation_hits),
        }
    }
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            pkts: 0,
            bytes: 0,
            invalid: 0,
            ethernet: 0,
            sll: 0,
            sll2: 0,
            raw: 0,
            null: 0,
            vlan: 0,
            vlan_qinq: 0,
            ipv4: 0,
            ipv6: 0,
            tcp: 0,
            udp: 0,
            icmpv4: 0,
            icmpv6: 0,
            other_ip: 0,
            non_ip: 0,
            max_pkt_size: 0,
            frag_first: 0,
            frag_later: 0,
            snap_truncated: 0,
            unknown_linktype: 0,
            events: [0; DecodeEvent::COUNT],
            anomalies_logged: 0,
            anomalies_suppressed: 0,
            tcp_syn: 0,
            tcp_synack: 0,
            tcp_rst: 0,
            tcp_handshakes: 0,
            tcp_midstream: 0,
            flood_syns_untracked: 0,
            icmpv6_flows: 0,
            ended_state: [0; 3],
            active_flows: 0,
            table: TableCounters::default(),
            alerts: BTreeMap::new(),
            flag_anomalies: BTreeMap::new(),
            latency: Latency::default(),
            trackers: BTreeMap::new(),
            rules: RuleStats::default(),
        }
    }
}

fn add(a: &mut [u64], b: &[u64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

impl Counters {
    /// Adds `o` into `self` (maxima take the larger).
    pub fn merge(&mut self, o: &Counters) {
        let s = self;
        for (x, y) in [
            (&mut s.pkts, o.pkts),
            (&mut s.bytes, o.bytes),
            (&mut s.invalid, o.invalid),
            (&mut s.ethernet, o.ethernet),
            (&mut s.sll, o.sll),
            (&mut s.sll2, o.sll2),
            (&mut s.raw, o.raw),
            (&mut s.null, o.null),
            (&mut s.vlan, o.vlan),
            (&mut s.vlan_qinq, o.vlan_qinq),
            (&mut s.ipv4, o.ipv4),
            (&mut s.ipv6, o.ipv6),
            (&mut s.tcp, o.tcp),
            (&mut s.udp, o.udp),
            (&mut s.icmpv4, o.icmpv4),
            (&mut s.icmpv6, o.icmpv6),
            (&mut s.other_ip, o.other_ip),
            (&mut s.non_ip, o.non_ip),
            (&mut s.frag_first, o.frag_first),
            (&mut s.frag_later, o.frag_later),
            (&mut s.snap_truncated, o.snap_truncated),
            (&mut s.unknown_linktype, o.unknown_linktype),
            (&mut s.anomalies_logged, o.anomalies_logged),
            (&mut s.anomalies_suppressed, o.anomalies_suppressed),
            (&mut s.tcp_syn, o.tcp_syn),
            (&mut s.tcp_synack, o.tcp_synack),
            (&mut s.tcp_rst, o.tcp_rst),
            (&mut s.tcp_handshakes, o.tcp_handshakes),
            (&mut s.tcp_midstream, o.tcp_midstream),
            (&mut s.flood_syns_untracked, o.flood_syns_untracked),
            (&mut s.icmpv6_flows, o.icmpv6_flows),
            (&mut s.active_flows, o.active_flows),
            (&mut s.table.ended_timeout, o.table.ended_timeout),
            (&mut s.table.ended_forced, o.table.ended_forced),
            (&mut s.table.ended_shutdown, o.table.ended_shutdown),
            (&mut s.table.ended_tcp_reuse, o.table.ended_tcp_reuse),
            (&mut s.table.emergency_entered, o.table.emergency_entered),
            (&mut s.table.emergency_over, o.table.emergency_over),
            (&mut s.table.max_active, o.table.max_active),
        ] {
            *x += y;
        }
        s.max_pkt_size = s.max_pkt_size.max(o.max_pkt_size);
        add(&mut s.events, &o.events);
        add(&mut s.ended_state, &o.ended_state);
        add(&mut s.table.created, &o.table.created);
        for (k, v) in &o.alerts {
            *s.alerts.entry(k).or_default() += v;
        }
        for (k, v) in &o.flag_anomalies {
            *s.flag_anomalies.entry(k).or_default() += v;
        }
        s.latency.merge(&o.latency);
        for (k, u) in &o.trackers {
            let m = s.trackers.entry(k).or_default();
            m.entries = m.entries.max(u.entries);
            m.bytes = m.bytes.max(u.bytes);
            m.shed = m.shed.max(u.shed);
            m.evicted = m.evicted.max(u.evicted);
        }
        s.rules = s.rules.max(o.rules);
    }

    pub fn decode_events(&self) -> u64 {
        self.events.iter().sum()
    }

    pub fn flows_created(&self) -> u64 {
        self.table.created.iter().sum()
    }

    pub fn alerts_total(&self) -> u64 {
        self.alerts.values().sum()
    }
}

/// Counters of the source (file reading or capture).
#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceCounters {
    pub files: u64,
    pub files_failed: u64,
    pub frames: u64,
    pub bytes_read: u64,
    pub caplen_over_snaplen: u64,
    pub pcapng_unknown_interface: u64,
    /// Frames dropped because a worker queue was full (live capture only).
    pub queue_drops: u64,
    /// Frames whose timestamp was older than packet time so far (taken as "now").
    pub time_backwards: u64,
    /// Forward jumps beyond `flow.max_time_jump` (held until confirmed).
    pub time_jumps: u64,
    /// Live capture: one entry per interface.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceCounters>,
}

/// Counters of one live capture interface.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InterfaceCounters {
    pub name: String,
    /// Frames read from the capture and their wire bytes.
    pub packets: u64,
    pub bytes: u64,
    /// libpcap's counters (summed over reopens): packets the kernel saw,
    /// dropped for want of buffer space, dropped by the interface.
    pub kernel_packets: u64,
    pub kernel_drops: u64,
    pub kernel_ifdrops: u64,
    /// Frames dropped because their worker's queue was full.
    pub queue_drops: u64,
    /// Capture failures (interface down or gone) and successful reopens.
    pub errors: u64,
    pub reopens: u64,
}

/// The process's memory as the kernel counts it (`/proc/self/status`), to
/// check the memory budget against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProcessMemory {
    /// Resident now.
    pub rss_bytes: u64,
    /// The most resident so far (VmHWM).
    pub peak_rss_bytes: u64,
    /// Input buffers held now (read ahead or shared with the workers), at
    /// most `CHUNK * POOL` per input being read: part of `rss_bytes` that
    /// follows how far the workers lag behind the reader, not the traffic.
    pub input_buffer_bytes: u64,
}

impl ProcessMemory {
    /// Reads it; zeros where `/proc` is not there.
    pub fn read() -> ProcessMemory {
        let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kb = |field: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        ProcessMemory {
            rss_bytes: kb("VmRSS:"),
            peak_rss_bytes: kb("VmHWM:"),
            input_buffer_bytes: crate::capture::file::input_buffer_bytes(),
        }
    }
}

/// Everything at one point of packet time.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub uptime_secs: u64,
    pub counters: Counters,
    pub source: SourceCounters,
    /// Memory when the snapshot was written (wall-clock dependent).
    pub process: ProcessMemory,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_and_keeps_maxima() {
        let mut a = Counters {
            pkts: 3,
            max_pkt_size: 1500,
            ..Counters::default()
        };
        a.events[2] = 1;
        a.alerts.insert("port_scan", 1);
        let mut b = Counters {
            pkts: 4,
            max_pkt_size: 60,
            ..Counters::default()
        };
        b.events[2] = 5;
        b.alerts.insert("port_scan", 2);
        b.table.created[1] = 7;
        a.merge(&b);
        assert_eq!(
            (a.pkts, a.max_pkt_size, a.events[2], a.flows_created()),
            (7, 1500, 6, 7)
        );
        assert_eq!(a.alerts["port_scan"], 3);
    }
}
