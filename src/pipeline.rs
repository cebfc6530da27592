//! The threads: one source, N workers, one output writer.
//!
//! The source reads frames, hashes each 5-tuple symmetrically (both
//! directions land on the same worker) and sends batches over a bounded
//! channel per worker; offline, a full channel makes the reader wait, so no
//! frame is lost. Each worker owns its flows (no locks on the hot path),
//! decodes, tracks flows and writes its own EVE records. The output thread
//! writes the records to the sinks and merges the workers' stats snapshots,
//! which are cut at the same points of packet time in every worker: the
//! source sends a tick down every queue at each stats interval.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::capture::LinkType;
use crate::capture::file::{FrameBytes, Input, read_frames};
use crate::config::Config;
use crate::config::{OutputKind, OutputSpec};
use crate::decode::{self, Addr, FlowHasher, Fragment, Transport, tcp_flags};
use crate::detect::{self, Alert, Detectors, bits, scan};
use crate::flow::{self, EndReason, Flow, FlowKey, FlowTable, Initiator, TO_SERVER};
use crate::output::eve::{self, EveBatch, EveContext, PacketRef};
use crate::output::net::{Conn, Queued, RedisConn, SyslogConn, UnixConn};
use crate::output::sink::{Filter, LineSink, Policy, Rotation, SinkReport};
use crate::stats::{Counters, Snapshot, SourceCounters};
use crate::time::{Micros, Timestamp};
use std::sync::atomic::{AtomicBool, Ordering};

/// Frames per batch sent to a worker.
const BATCH_FRAMES: usize = 256;
/// Batches queued per worker.
const QUEUE_BATCHES: usize = 32;
/// How often (in packet time) the source tells every worker the time.
const ADVANCE_EVERY: Micros = Micros(1_000_000);

/// Bytes a batch's frames point into.
enum BatchData {
    Mapped(Arc<memmap2::Mmap>),
    Owned(Vec<u8>),
}

impl BatchData {
    fn bytes(&self) -> &[u8] {
        match self {
            BatchData::Mapped(m) => m,
            BatchData::Owned(v) => v,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct FrameRef {
    offset: usize,
    len: u32,
    orig_len: u32,
    ts: Timestamp,
    linktype: LinkType,
    pcap_cnt: u64,
}

struct Batch {
    data: BatchData,
    frames: Vec<FrameRef>,
}

enum WorkerMsg {
    Frames(Batch),
    /// A stats interval boundary in packet time.
    Tick(Timestamp),
    /// The source's packet time, so workers without traffic still expire flows.
    Advance(Timestamp),
    /// A new input whose time does not continue the previous one: end every
    /// flow of the previous capture and restart the clock here.
    Rebase(Timestamp),
}

enum OutMsg {
    Events(EveBatch),
    /// A stats part for the tick (`None`: the final one).
    Stats(Option<Timestamp>, Box<StatsPart>),
}

// Always sent boxed (in `OutMsg::Stats`), so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum StatsPart {
    Worker(Counters),
    /// Source counters, first and latest packet time.
    Source(SourceCounters, Option<Timestamp>, Option<Timestamp>),
}

/// Packet time, as a worker or the source sees it: never goes backwards,
/// and a jump forward beyond `max_jump` is held until four packets in a row
/// confirm it (a single bad timestamp must not expire every flow).
#[derive(Clone, Debug)]
pub struct Clock {
    now: Option<Timestamp>,
    max_jump: Micros,
    pending: u32,
    pub backwards: u64,
    pub jumps: u64,
}

impl Clock {
    pub const CONFIRM: u32 = 4;

    pub fn new(max_jump: Micros) -> Self {
        Clock {
            now: None,
            max_jump,
            pending: 0,
            backwards: 0,
            jumps: 0,
        }
    }

    pub fn now(&self) -> Option<Timestamp> {
        self.now
    }

    /// Observes a packet timestamp; returns the time to use for it.
    pub fn observe(&mut self, ts: Timestamp) -> Timestamp {
        let Some(now) = self.now else {
            self.now = Some(ts);
            return ts;
        };
        if ts < now {
            self.backwards += 1;
            self.pending = 0;
            return now;
        }
        if ts.since(now) > self.max_jump {
            if self.pending == 0 {
                self.jumps += 1;
            }
            self.pending += 1;
            if self.pending >= Self::CONFIRM {
                self.pending = 0;
                self.now = Some(ts);
                return ts;
            }
            return now;
        }
        self.pending = 0;
        self.now = Some(ts);
        ts
    }

    /// Restarts at `ts`, wherever the clock was.
    pub fn rebase(&mut self, ts: Timestamp) {
        self.now = Some(ts);
        self.pending = 0;
    }

    /// Whether `ts` does not continue this clock's time (earlier, or later
    /// by more than the jump limit).
    pub fn is_discontinuous(&self, ts: Timestamp) -> bool {
        self.now
            .is_some_and(|n| ts < n || ts.since(n) > self.max_jump)
    }

    /// Advances to `ts` (a tick from the source) if it is later.
    pub fn advance(&mut self, ts: Timestamp) {
        if self.now.is_none_or(|n| ts > n) {
            self.now = Some(ts);
        }
    }
}

/// Per-event-name rate limit of anomaly records.
struct RateLimit {
    limit: u32,
    window: Micros,
    slots: Vec<(Timestamp, u32)>,
}

impl RateLimit {
    fn new(limit: u32, window: Micros, n: usize) -> Self {
        RateLimit {
            limit,
            window,
            slots: vec![(Timestamp(0), 0); n],
        }
    }
    fn allow(&mut self, i: usize, now: Timestamp) -> bool {
        let Some((start, count)) = self.slots.get_mut(i) else {
            return false;
        };
        if now.since(*start) >= self.window || now < *start {
            *start = now;
            *count = 0;
        }
        *count += 1;
        *count <= self.limit
    }
}

/// Ports likely to be a server's (Zeek's likely_server_ports): 1-1023 and
/// common service ports.
pub fn is_likely_server_port(p: u16) -> bool {
    (1..1024).contains(&p)
        || matches!(
            p,
            1080 | 1433
                | 1521
                | 1723
                | 1883
                | 2049
                | 2181
                | 3128
                | 3306
                | 3389
                | 5060
                | 5061
                | 5432
                | 5672
                | 5900
                | 5985
                | 5986
                | 6379
                | 6443
                | 8000
                | 8008
                | 8080
                | 8443
                | 8888
                | 9000
                | 9092
                | 9200
                | 9300
                | 11211
                | 27017
        )
}

/// (proto, src, sport, dst, dport) of a packet.
type Tuple = Option<(u8, Addr, u16, Addr, u16)>;

struct Worker {
    id: usize,
    table: FlowTable,
    counters: Counters,
    /// Latest packet time seen (already made monotonic by the source).
    clock: Option<Timestamp>,
    hasher: FlowHasher,
    ctx: Arc<EveContext>,
    out: EveBatch,
    out_tx: Sender<OutMsg>,
    anomaly_enabled: bool,
    limiter: RateLimit,
    detect: Arc<Detectors>,
    /// Alerts raised by the packet being processed.
    alerts: Vec<Alert>,
    next_sweep: Timestamp,
}

/// Rate-limit slot of a TCP flag anomaly.
fn flag_slot(name: &str) -> usize {
    decode::DecodeEvent::COUNT
        + detect::flags::NAMES
            .iter()
            .position(|n| *n == name)
            .unwrap_or(0)
}

impl Worker {
    fn run(mut self, rx: Receiver<WorkerMsg>) {
        for msg in rx {
            match msg {
                WorkerMsg::Frames(batch) => {
                    let data = batch.data.bytes();
                    for f in &batch.frames {
                        let bytes = data.get(f.offset..f.offset + f.len as usize).unwrap_or(&[]);
                        self.packet(f, bytes);
                    }
                    if let Some(now) = self.clock {
                        self.expire(now);
                    }
                    self.send_events();
                }
                WorkerMsg::Advance(ts) => {
                    self.advance(ts);
                    self.expire(ts);
                    self.send_events();
                }
                WorkerMsg::Tick(ts) => {
                    self.advance(ts);
                    self.expire(ts);
                    self.send_events();
                    let snap = self.snapshot();
                    let _ = self
                        .out_tx
                        .send(OutMsg::Stats(Some(ts), Box::new(StatsPart::Worker(snap))));
                }
                WorkerMsg::Rebase(ts) => {
                    let Worker {
                        table,
                        out,
                        ctx,
                        counters,
                        detect,
                        ..
                    } = &mut self;
                    table.drain(EndReason::Shutdown, &mut |f: &Flow, r| {
                        end_flow(out, ctx, counters, detect, f, r)
                    });
                    self.clock = Some(ts);
                    self.send_events();
                }
            }
        }
        let Worker {
            table,
            out,
            ctx,
            counters,
            detect,
            ..
        } = &mut self;
        table.drain(EndReason::Shutdown, &mut |f: &Flow, r| {
            end_flow(out, ctx, counters, detect, f, r)
        });
        self.send_events();
        let snap = self.snapshot();
        let _ = self
            .out_tx
            .send(OutMsg::Stats(None, Box::new(StatsPart::Worker(snap))));
        tracing::debug!(worker = self.id, "worker done");
    }

    fn advance(&mut self, ts: Timestamp) {
        if self.clock.is_none_or(|c| ts > c) {
            self.clock = Some(ts);
        }
    }

    fn snapshot(&mut self) -> Counters {
        let mut c = self.counters.clone();
        c.table = self.table.counters.clone();
        c.active_flows = self.table.len() as u64;
        c
    }

    fn send_events(&mut self) {
        if !self.out.is_empty() {
            let batch = std::mem::take(&mut self.out);
            let _ = self.out_tx.send(OutMsg::Events(batch));
        }
    }

    fn expire(&mut self, now: Timestamp) {
        let Worker {
            table,
            out,
            ctx,
            counters,
            detect,
            ..
        } = self;
        table.expire(now, &mut |f: &Flow, r| {
            end_flow(out, ctx, counters, detect, f, r)
        });
        if now >= self.next_sweep {
            self.detect.sweep(now);
            self.next_sweep = now.saturating_add(Micros::from_secs(1));
        }
    }

    fn packet(&mut self, f: &FrameRef, data: &[u8]) {
        // Frame times arrive monotonic from the source.
        let now = f.ts;
        self.advance(now);
        let c = &mut self.counters;
        c.pkts += 1;
        c.bytes += u64::from(f.orig_len);
        c.max_pkt_size = c.max_pkt_size.max(u64::from(f.orig_len));
        match f.linktype {
            LinkType::Ethernet => c.ethernet += 1,
            LinkType::Sll => c.sll += 1,
            LinkType::Sll2 => c.sll2 += 1,
            LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => c.raw += 1,
            LinkType::Null | LinkType::Loop => c.null += 1,
            LinkType::Other(_) => c.unknown_linktype += 1,
        }
        let snap = f.orig_len as usize > data.len();
        if snap {
            c.snap_truncated += 1;
        }
        let d = decode::decode(f.linktype, data, snap);
        if d.vlan_count >= 1 {
            c.vlan += 1;
        }
        if d.vlan_count >= 2 {
            c.vlan_qinq += 1;
        }

        let vlan = d
            .vlan
            .get(..usize::from(d.vlan_count.min(2)))
            .unwrap_or(&[]);

        let Some(ip) = d.ip else {
            c.non_ip += 1;
            if let Some(e) = d.event {
                self.decode_event(e, f, now, None, None, vlan);
            }
            return;
        };
        if ip.v6 {
            c.ipv6 += 1;
        } else {
            c.ipv4 += 1;
        }
        match ip.fragment {
            Fragment::First => c.frag_first += 1,
            Fragment::Later => c.frag_later += 1,
            Fragment::None => {}
        }
        let (sport, dport) = match d.transport {
            Transport::Tcp(t) => {
                c.tcp += 1;
                match t.flags & (tcp_flags::SYN | tcp_flags::ACK) {
                    tcp_flags::SYN => c.tcp_syn += 1,
                    x if x == tcp_flags::SYN | tcp_flags::ACK => c.tcp_synack += 1,
                    _ => {}
                }
                if t.flags & tcp_flags::RST != 0 {
                    c.tcp_rst += 1;
                }
                (t.sport, t.dport)
            }
            Transport::Udp { sport, dport, .. } => {
                c.udp += 1;
                (sport, dport)
            }
            Transport::Icmp { type_, code, .. } => {
                if ip.v6 {
                    c.icmpv6 += 1;
                } else {
                    c.icmpv4 += 1;
                }
                let (_, request) = flow::icmp_request_type(ip.v6, type_);
                (u16::from(request), u16::from(code))
            }
            Transport::Sctp { sport, dport } => {
                c.other_ip += 1;
                (sport, dport)
            }
            Transport::Other => {
                c.other_ip += 1;
                (0, 0)
            }
            Transport::None => (0, 0),
        };
        // Later fragments carry no ports and cannot be placed in a flow;
        // frames whose transport header did not decode neither.
        let trackable = ip.fragment != Fragment::Later && !matches!(d.transport, Transport::None);
        let tuple = Some((ip.proto, ip.src, sport, ip.dst, dport));

        // Packet-level detection, independent of flow tracking (a flood that
        // fills the flow table is still seen).
        if let Transport::Tcp(t) = d.transport
            && self.detect.cfg.tcp_flags.enabled
            && let Some(name) = detect::flags::check(t.flags, &ip.src, t.sport, &ip.dst, t.dport)
        {
            *self.counters.flag_anomalies.entry(name).or_default() += 1;
            self.flag_anomaly(name, f, now, tuple, vlan);
        }
        let policy = &self.detect.policy;
        match d.transport {
            Transport::Tcp(t) if t.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN => {
                let det = &self.detect;
                let flooded = det
                    .flood
                    .on_syn(ip.src, ip.dst, t.dport, now, &mut self.alerts);
                if flooded && trackable {
                    let (key, _) = FlowKey::new(ip.src, sport, ip.dst, dport, ip.proto, d.vlan);
                    if self.table.lookup(&key).is_none() {
                        self.counters.flood_syns_untracked += 1;
                        self.write_alerts(None, f, now, tuple, vlan);
                        return;
                    }
                }
                let scanning = det.scan.is_probing(&ip.src, 5);
                det.role.on_syn(
                    policy,
                    ip.src,
                    t.sport,
                    ip.dst,
                    t.dport,
                    scanning,
                    now,
                    &mut self.alerts,
                );
                det.proxy
                    .on_outbound(policy, ip.src, ip.dst, t.dport, now, &mut self.alerts);
            }
            Transport::Icmp { type_, payload, .. }
                if (ip.v6 && type_ == 1) || (!ip.v6 && type_ == 3) =>
            {
                // An unreachable quoting a probe: the probe was rejected.
                if let Some((qsrc, qdst, qproto, _, qdport)) = decode::quoted_tuple(payload, ip.v6)
                {
                    self.detect.scan.on_outcome(
                        qsrc,
                        qdst,
                        qproto,
                        qdport,
                        scan::Outcome::Rejected,
                        false,
                    );
                }
            }
            _ => {}
        }

        if !trackable {
            if let Some(e) = d.event {
                self.decode_event(e, f, now, tuple, None, vlan);
            }
            let view = detect::rules::PacketView::new(&ip, &d.transport);
            self.detect
                .rules
                .match_packet(&view, None, now, &mut self.alerts);
            self.write_alerts(None, f, now, tuple, vlan);
            return;
        }

        let (key, src_is_lo) = FlowKey::new(ip.src, sport, ip.dst, dport, ip.proto, d.vlan);
        let idx = self.lookup(&key, &d.transport, src_is_lo, now);
        let (idx, created) = match idx {
            Some(i) => (i, false),
            None => {
                let flow = self.new_flow(key, src_is_lo, &d.transport, ip.v6, now);
                let Worker {
                    table,
                    out,
                    ctx,
                    counters,
                    detect,
                    ..
                } = self;
                if ip.proto == decode::PROTO_ICMPV6 {
                    counters.icmpv6_flows += 1;
                }
                (
                    table.insert(flow, now, &mut |fl: &Flow, r| {
                        end_flow(out, ctx, counters, detect, fl, r)
                    }),
                    true,
                )
            }
        };
        let Some(flow) = self.table.get_mut(idx) else {
            return;
        };
        let dir = flow.direction(src_is_lo);
        let from_client = dir == TO_SERVER;
        if let Some(p) = flow.pkts.get_mut(dir) {
            *p += 1;
        }
        if let Some(b) = flow.bytes.get_mut(dir) {
            *b += u64::from(f.orig_len);
        }
        if now > flow.last {
            flow.last = now;
        }
        let det = &self.detect;
        let policy = &det.policy;
        let ((client, _), (server, server_port)) = (flow.client(), flow.server());
        // A probe is the first packet of a new flow, sent by its client.
        let probe = match d.transport {
            Transport::Tcp(t) if created && from_client => scan::Technique::of_tcp_flags(t.flags),
            Transport::Udp { .. } if created && from_client => Some(scan::Technique::Udp),
            _ => None,
        };
        if let Some(tech) = probe {
            flow.detect_bits |= bits::PROBE;
            det.scan.on_probe(
                policy,
                client,
                server,
                ip.proto,
                server_port,
                tech,
                now,
                &mut self.alerts,
            );
        }
        let unresolved_probe = flow.detect_bits & (bits::PROBE | bits::RESOLVED) == bits::PROBE;
        match d.transport {
            Transport::Tcp(t) => {
                if let Some(fl) = flow.tcp_flags.get_mut(dir) {
                    *fl |= t.flags;
                }
                let len = u32::try_from(t.payload.len()).unwrap_or(u32::MAX);
                let outcome = flow
                    .tcp
                    .segment(from_client, t.flags, t.seq, t.ack, len, t.window);
                if !from_client {
                    let synack = t.flags & (tcp_flags::SYN | tcp_flags::ACK)
                        == tcp_flags::SYN | tcp_flags::ACK;
                    if synack {
                        det.role.on_synack(server, server_port, now);
                    }
                    if unresolved_probe && (synack || t.flags & tcp_flags::RST != 0) {
                        flow.detect_bits |= bits::RESOLVED;
                        let o = if synack {
                            scan::Outcome::Answered
                        } else {
                            scan::Outcome::Rejected
                        };
                        det.scan
                            .on_outcome(client, server, ip.proto, server_port, o, false);
                    }
                }
                if outcome.handshake_completed {
                    self.counters.tcp_handshakes += 1;
                    det.flood.on_completed(server, server_port);
                    let bytes = (flow.bytes[TO_SERVER], flow.bytes[flow::TO_CLIENT]);
                    det.role.on_handshake(
                        policy,
                        client,
                        server,
                        server_port,
                        bytes,
                        flow.start,
                        now,
                        &mut self.alerts,
                    );
                    det.egress.on_open(
                        policy,
                        client,
                        server,
                        ip.proto,
                        server_port,
                        now,
                        &mut self.alerts,
                    );
                    if server_port == 25 {
                        det.egress
                            .on_smtp(policy, client, server, now, &mut self.alerts);
                    }
                    if flow.detect_bits & bits::PROBE != 0 {
                        det.scan.on_outcome(
                            client,
                            server,
                            ip.proto,
                            server_port,
                            scan::Outcome::Answered,
                            true,
                        );
                    }
                }
                if from_client
                    && !t.payload.is_empty()
                    && flow.detect_bits & bits::PAYLOAD_SEEN == 0
                {
                    flow.detect_bits |= bits::PAYLOAD_SEEN;
                    det.proxy.on_request(
                        policy,
                        client,
                        server,
                        server_port,
                        t.payload,
                        now,
                        &mut self.alerts,
                    );
                }
            }
            Transport::Udp { .. } => {
                if created && from_client {
                    det.egress.on_open(
                        policy,
                        client,
                        server,
                        ip.proto,
                        server_port,
                        now,
                        &mut self.alerts,
                    );
                }
                if !from_client && unresolved_probe {
                    flow.detect_bits |= bits::RESOLVED;
                    det.scan.on_outcome(
                        client,
                        server,
                        ip.proto,
                        server_port,
                        scan::Outcome::Answered,
                        false,
                    );
                }
            }
            Transport::Icmp { type_, code, .. } => {
                if let Some(slot @ None) = flow.icmp.get_mut(dir) {
                    *slot = Some((type_, code));
                }
            }
            _ => {}
        }
        // Signature rules on every packet; reputation once, on a new flow.
        let view = detect::rules::PacketView::new(&ip, &d.transport).with_flow(flow, dir);
        det.rules
            .match_packet(&view, Some(&mut flow.flowbits), now, &mut self.alerts);
        if created {
            det.reputation.on_new_flow(policy, flow, &mut self.alerts);
        }
        let flow_id = flow.flow_id;
        self.write_alerts(Some(idx), f, now, tuple, vlan);
        self.table.touch(idx);
        if let Some(e) = d.event {
            self.decode_event(e, f, now, tuple, Some(flow_id), vlan);
        }
    }

    /// Writes the alerts the current packet raised, on its flow when it has one.
    fn write_alerts(
        &mut self,
        idx: Option<u32>,
        f: &FrameRef,
        now: Timestamp,
        tuple: Tuple,
        vlan: &[u16],
    ) {
        let endpoints = tuple.map(|t| (t.1, t.3));
        self.detect.finish_alerts(&mut self.alerts, endpoints, now);
        if self.alerts.is_empty() {
            return;
        }
        let alerts = std::mem::take(&mut self.alerts);
        for a in &alerts {
            *self.counters.alerts.entry(a.name()).or_default() += 1;
            let flow = idx
                .filter(|_| a.on_flow)
                .and_then(|i| self.table.get_mut(i));
            match flow {
                Some(fl) => {
                    fl.alerted = true;
                    let pkt = PacketRef {
                        ts: now,
                        pcap_cnt: f.pcap_cnt,
                        in_iface: None,
                        tuple,
                        flow_id: Some(fl.flow_id),
                        vlan,
                    };
                    eve::write_alert(&mut self.out, &self.ctx, &pkt, Some(fl), &a.to_eve());
                }
                None => {
                    // Not about this packet's flow: name the alert's own endpoints.
                    let t = match (a.source.ip, a.target.ip) {
                        (Some(s), Some(d)) => Some((
                            decode::PROTO_TCP,
                            s,
                            a.source.port.unwrap_or(0),
                            d,
                            a.target.port.unwrap_or(0),
                        )),
                        _ => tuple,
                    };
                    let pkt = PacketRef {
                        ts: now,
                        pcap_cnt: f.pcap_cnt,
                        in_iface: None,
                        tuple: t,
                        flow_id: None,
                        vlan,
                    };
                    eve::write_alert(&mut self.out, &self.ctx, &pkt, None, &a.to_eve());
                }
            }
        }
        self.alerts = alerts;
        self.alerts.clear();
    }

    fn flag_anomaly(
        &mut self,
        name: &'static str,
        f: &FrameRef,
        now: Timestamp,
        tuple: Tuple,
        vlan: &[u16],
    ) {
        if !self.anomaly_enabled {
            return;
        }
        if !self.limiter.allow(flag_slot(name), now) {
            self.counters.anomalies_suppressed += 1;
            return;
        }
        self.counters.anomalies_logged += 1;
        let pkt = PacketRef {
            ts: now,
            pcap_cnt: f.pcap_cnt,
            in_iface: None,
            tuple,
            flow_id: None,
            vlan,
        };
        eve::write_anomaly(&mut self.out, &self.ctx, &pkt, "decode", name);
    }

    /// Finds the live flow for `key`, ending it first if it timed out or a
    /// new SYN reuses its 5-tuple.
    fn lookup(
        &mut self,
        key: &FlowKey,
        t: &Transport<'_>,
        src_is_lo: bool,
        ts: Timestamp,
    ) -> Option<u32> {
        let idx = self.table.lookup(key)?;
        let reason = if self.table.is_expired(idx, ts) {
            Some(EndReason::Timeout)
        } else {
            match (t, self.table.get(idx)) {
                (Transport::Tcp(seg), Some(flow))
                    if seg.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN =>
                {
                    let from_client = flow.direction(src_is_lo) == TO_SERVER;
                    let client = flow.tcp.ep[0];
                    let retry_of_unanswered = from_client
                        && client.zeek == flow::tcp::ZeekState::SynSent
                        && flow.pkts[flow::TO_CLIENT] == 0
                        && seg.seq != client.isn;
                    (flow.tcp.is_closed() || retry_of_unanswered).then_some(EndReason::TcpReuse)
                }
                _ => None,
            }
        };
        match reason {
            Some(r) => {
                let Worker {
                    table,
                    out,
                    ctx,
                    counters,
                    detect,
                    ..
                } = self;
                table.remove(idx, r, &mut |f: &Flow, r| {
                    end_flow(out, ctx, counters, detect, f, r)
                });
                None
            }
            None => Some(idx),
        }
    }

    fn new_flow(
        &mut self,
        key: FlowKey,
        src_is_lo: bool,
        t: &Transport<'_>,
        v6: bool,
        now: Timestamp,
    ) -> Flow {
        let src_port = if src_is_lo { key.lo_port } else { key.hi_port };
        let dst_port = if src_is_lo { key.hi_port } else { key.lo_port };
        let (src_is_client, initiator) = match t {
            Transport::Tcp(seg) => match seg.flags & (tcp_flags::SYN | tcp_flags::ACK) {
                tcp_flags::SYN => (true, Initiator::Syn),
                x if x == tcp_flags::SYN | tcp_flags::ACK => (false, Initiator::SynAck),
                _ => {
                    self.counters.tcp_midstream += 1;
                    (
                        !flow::source_looks_like_server(src_port, dst_port, is_likely_server_port),
                        Initiator::PortGuess,
                    )
                }
            },
            Transport::Udp { .. } => {
                if flow::source_looks_like_server(src_port, dst_port, is_likely_server_port) {
                    (false, Initiator::PortGuess)
                } else {
                    (true, Initiator::FirstPacket)
                }
            }
            Transport::Icmp { type_, .. } => (
                !flow::icmp_request_type(v6, *type_).0,
                Initiator::FirstPacket,
            ),
            _ => (true, Initiator::FirstPacket),
        };
        let client_is_lo = if src_is_client { src_is_lo } else { !src_is_lo };
        let flow_id = self.hasher.hash(&(key, now)) & ((1 << 51) - 1);
        let mut flow = Flow::new(key, flow_id, now, client_is_lo, initiator);
        if !src_is_client && key.proto == decode::PROTO_TCP {
            flow.tcp.history.push_raw(b'^');
        }
        flow
    }

    fn decode_event(
        &mut self,
        e: decode::DecodeEvent,
        f: &FrameRef,
        now: Timestamp,
        tuple: Option<(u8, decode::Addr, u16, decode::Addr, u16)>,
        flow_id: Option<u64>,
        vlan: &[u16],
    ) {
        self.counters.invalid += 1;
        if let Some(n) = self.counters.events.get_mut(e.index()) {
            *n += 1;
        }
        if !self.anomaly_enabled {
            return;
        }
        if !self.limiter.allow(e.index(), now) {
            self.counters.anomalies_suppressed += 1;
            return;
        }
        self.counters.anomalies_logged += 1;
        let pkt = PacketRef {
            ts: now,
            pcap_cnt: f.pcap_cnt,
            in_iface: None,
            tuple,
            flow_id,
            vlan,
        };
        eve::write_decode_anomaly(&mut self.out, &self.ctx, &pkt, e);
    }
}

fn end_flow(
    out: &mut EveBatch,
    ctx: &EveContext,
    counters: &mut Counters,
    detect: &Detectors,
    f: &Flow,
    r: EndReason,
) {
    if let Some(n) = counters.ended_state.get_mut(f.state() as usize) {
        *n += 1;
    }
    let mut alerts = Vec::new();
    if f.key.proto == decode::PROTO_TCP && f.tcp.handshake_seen {
        let ((client, _), (server, port)) = (f.client(), f.server());
        detect
            .brute
            .on_session_end(client, server, port, f.start, f.last, &mut alerts);
    }
    let (client, server) = (f.client().0, f.server().0);
    detect.finish_alerts(&mut alerts, Some((client, server)), f.last);
    if alerts.is_empty() {
        eve::write_flow(out, ctx, f, r);
        return;
    }
    let mut f = f.clone();
    f.alerted = true;
    for a in &alerts {
        *counters.alerts.entry(a.name()).or_default() += 1;
        let pkt = PacketRef {
            ts: f.last,
            pcap_cnt: 0,
            in_iface: None,
            tuple: None,
            flow_id: Some(f.flow_id),
            vlan: &[],
        };
        eve::write_alert(out, ctx, &pkt, Some(&f), &a.to_eve());
    }
    eve::write_flow(out, ctx, &f, r);
}

/// Where the EVE output goes.
#[derive(Clone, Debug)]
pub enum OutputTarget {
    /// A directory: `eve.json` (and `stats.json`) inside it.
    Dir(PathBuf),
    Stdout,
}

/// What to run.
pub struct ReadOptions {
    pub inputs: Vec<PathBuf>,
    pub config: Config,
    pub output: OutputTarget,
    pub workers: usize,
    pub progress: bool,
    pub signals: Signals,
}

/// How a run went.
#[derive(Debug, Default)]
pub struct RunReport {
    pub snapshot: Snapshot,
    pub wall: Duration,
    /// One line per input that failed (file and offset).
    pub input_errors: Vec<String>,
    pub sinks: Vec<SinkReport>,
    pub workers: usize,
    /// Stopped early by SIGINT/SIGTERM.
    pub interrupted: bool,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot open output {path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The run's sinks.
struct Outputs {
    lines: Vec<LineSink>,
    queued: Vec<Queued>,
    /// `stats.json`: every counter, in backflow's own layout.
    stats_file: Option<LineSink>,
}

fn open_outputs(target: &OutputTarget, cfg: &Config) -> Result<Outputs, RunError> {
    let open_err = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| RunError::Output { path, source }
    };
    let dir = match target {
        OutputTarget::Dir(dir) => {
            std::fs::create_dir_all(dir).map_err(open_err(dir))?;
            Some(dir.clone())
        }
        OutputTarget::Stdout => None,
    };
    let mut specs = cfg.outputs.clone();
    if specs.is_empty() {
        specs.push(OutputSpec {
            kind: OutputKind::File {
                path: cfg.eve_filename.clone(),
                rotation: Rotation::default(),
            },
            types: vec![],
            policy: Policy::Drop,
            buffer: 0,
            flush_timeout: Duration::from_secs(5),
        });
    }
    let mut out = Outputs {
        lines: Vec::new(),
        queued: Vec::new(),
        stats_file: None,
    };
    for spec in specs {
        let filter = Filter(spec.types.clone());
        let queued = |name: String, conn: Box<dyn Conn>| {
            Queued::start(
                name,
                filter.clone(),
                spec.policy,
                spec.buffer,
                spec.flush_timeout,
                conn,
            )
        };
        match spec.kind {
            // `-o -`: EVE goes to standard output instead of files.
            OutputKind::File { .. } | OutputKind::Stdout if dir.is_none() => {
                out.lines.push(LineSink::stdout(filter))
            }
            OutputKind::Stdout => out.lines.push(LineSink::stdout(filter)),
            OutputKind::File { path, rotation } => {
                let path = dir
                    .as_ref()
                    .map_or_else(|| PathBuf::from(&path), |d| d.join(&path));
                out.lines.push(
                    LineSink::file(&path, filter, spec.policy, rotation)
                        .map_err(open_err(&path))?,
                );
            }
            OutputKind::UnixDgram(p) => out.queued.push(queued(
                format!("unix_dgram:{p}"),
                Box::new(UnixConn::new(p, false)),
            )),
            OutputKind::UnixStream(p) => out.queued.push(queued(
                format!("unix_stream:{p}"),
                Box::new(UnixConn::new(p, true)),
            )),
            OutputKind::Syslog(s) => out.queued.push(queued(
                format!("syslog:{:?}", s.transport),
                Box::new(SyslogConn::new(s)),
            )),
            OutputKind::Redis {
                url,
                mode,
                key,
                batch,
            } => {
                let name = format!("redis:{url}{key}");
                out.queued.push(queued(
                    name,
                    Box::new(RedisConn::new(url, mode, key, batch)),
                ));
            }
        }
    }
    if let Some(dir) = &dir
        && !cfg.stats_file.is_empty()
    {
        let path = dir.join(&cfg.stats_file);
        out.stats_file = Some(
            LineSink::file(&path, Filter::default(), Policy::Drop, Rotation::default())
                .map_err(open_err(&path))?,
        );
    }
    Ok(out)
}

/// Merges stats parts per tick and writes records.
#[derive(Default)]
struct Pending {
    parts: usize,
    snap: Snapshot,
    first: Option<Timestamp>,
    latest: Option<Timestamp>,
}

struct OutputThread {
    outputs: Outputs,
    ctx: Arc<EveContext>,
    parts_expected: usize,
    pending: std::collections::BTreeMap<Option<Timestamp>, Pending>,
    last: Snapshot,
    /// Set by SIGHUP: reopen the files.
    reopen: Arc<AtomicBool>,
}

impl OutputThread {
    fn write_batch(&mut self, b: EveBatch) {
        for sink in &mut self.outputs.lines {
            for (t, line) in b.iter() {
                if sink.filter.accepts(t) {
                    sink.write(line);
                }
            }
        }
        if !self.outputs.queued.is_empty() {
            let b = Arc::new(b);
            for q in &self.outputs.queued {
                q.enqueue(&b);
            }
        }
    }

    fn sink_reports(&self) -> Vec<SinkReport> {
        let mut v: Vec<SinkReport> = self
            .outputs
            .lines
            .iter()
            .map(|s| s.counters.report(&s.name))
            .collect();
        v.extend(self.outputs.queued.iter().map(Queued::report));
        v
    }

    fn stats_part(&mut self, tick: Option<Timestamp>, part: StatsPart) {
        let entry = self.pending.entry(tick).or_default();
        entry.parts += 1;
        match part {
            StatsPart::Worker(c) => entry.snap.counters.merge(&c),
            StatsPart::Source(s, first, latest) => {
                entry.snap.source = s;
                entry.first = first;
                entry.latest = latest;
            }
        }
        if entry.parts < self.parts_expected {
            return;
        }
        let Some(Pending {
            mut snap,
            first,
            latest,
            ..
        }) = self.pending.remove(&tick)
        else {
            return;
        };
        let ts = tick.or(latest).unwrap_or_default();
        snap.uptime_secs = first.map_or(0, |f| ts.since(f).as_secs());
        let stats = eve::suricata_stats(&snap);
        let mut batch = EveBatch::default();
        eve::write_stats(&mut batch, &self.ctx, ts, &stats);
        self.write_batch(batch);
        let outputs = self.sink_reports();
        if let Some(sf) = &mut self.outputs.stats_file {
            let full = serde_json::json!({
                "timestamp": ts,
                "event_type": "stats",
                "stats": stats,
                "backflow": { "counters": &snap.counters, "source": &snap.source,
                    "decode_events": snap.counters.decode_events(), "outputs": outputs },
            });
            if let Ok(mut line) = serde_json::to_vec(&full) {
                line.push(b'\n');
                sf.write(&line);
            }
        }
        self.last = snap;
    }

    fn check_reopen(&mut self) {
        if self.reopen.swap(false, Ordering::Relaxed) {
            tracing::info!("SIGHUP: reopening output files");
            for s in self
                .outputs
                .lines
                .iter_mut()
                .chain(self.outputs.stats_file.iter_mut())
            {
                s.reopen();
            }
        }
    }

    fn run(mut self, rx: Receiver<OutMsg>) -> (Snapshot, Vec<SinkReport>) {
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(OutMsg::Events(b)) => self.write_batch(b),
                Ok(OutMsg::Stats(tick, part)) => self.stats_part(tick, *part),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    // Quiet input (a slow pipe, live capture): put what is
                    // buffered on disk.
                    for s in self
                        .outputs
                        .lines
                        .iter_mut()
                        .chain(self.outputs.stats_file.iter_mut())
                    {
                        s.flush();
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
            self.check_reopen();
        }
        let mut sinks = Vec::new();
        for s in self
            .outputs
            .lines
            .iter_mut()
            .chain(self.outputs.stats_file.iter_mut())
        {
            s.give_up = true;
            s.flush();
            sinks.push(s.counters.report(&s.name));
        }
        for q in &mut self.outputs.queued {
            sinks.push(q.finish());
        }
        (self.last, sinks)
    }
}

/// Flags set by signals: stop reading (SIGINT/SIGTERM; a second one exits
/// at once), reopen output files and re-read reputation feeds (SIGHUP).
pub struct Signals {
    pub stop: Arc<AtomicBool>,
    pub reopen: Arc<AtomicBool>,
    pub reload: Arc<AtomicBool>,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let stop = Arc::new(AtomicBool::new(false));
        let reopen = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM] {
            signal_hook::flag::register_conditional_shutdown(sig, 130, stop.clone())?;
            signal_hook::flag::register(sig, stop.clone())?;
        }
        signal_hook::flag::register(SIGHUP, reopen.clone())?;
        let reload = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(SIGHUP, reload.clone())?;
        Ok(Signals {
            stop,
            reopen,
            reload,
        })
    }

    /// Flags no signal will set (library use, tests).
    pub fn none() -> Signals {
        Signals {
            stop: Arc::new(AtomicBool::new(false)),
            reopen: Arc::new(AtomicBool::new(false)),
            reload: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Per-worker batch under construction.
struct Builder {
    frames: Vec<FrameRef>,
    owned: Vec<u8>,
}

/// Reads every input and processes it; returns when everything is written.
pub fn run_read(opts: ReadOptions) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let cfg = &opts.config;
    let n = opts.workers.max(1);
    let outputs = open_outputs(&opts.output, cfg)?;
    let ctx = Arc::new(EveContext {
        host: cfg.sensor_name.clone(),
        cid_seed: cfg.community_id_seed,
        pkt_src: "wire/pcap",
    });
    let (out_tx, out_rx) = bounded::<OutMsg>(n * QUEUE_BATCHES);
    let out_thread = OutputThread {
        outputs,
        ctx: ctx.clone(),
        parts_expected: n + 1,
        pending: Default::default(),
        last: Snapshot::default(),
        reopen: opts.signals.reopen.clone(),
    };
    let out_handle = thread::Builder::new()
        .name("output".into())
        .spawn(move || out_thread.run(out_rx))
        .map_err(|source| RunError::Output {
            path: "output thread".into(),
            source,
        })?;

    let detectors = Arc::new(Detectors::new(cfg));
    // Reputation feeds: loaded now, then kept fresh until the run ends.
    let _feeds = detect::reputation::manager::Manager::start(
        &cfg.reputation,
        detectors.reputation.clone(),
        opts.signals.reload.clone(),
    );
    let mut table_cfg = cfg.flow.clone();
    table_cfg.max_flows = (cfg.flow.max_flows / n).max(1);
    let mut txs = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for id in 0..n {
        let (tx, rx) = bounded::<WorkerMsg>(QUEUE_BATCHES);
        let w = Worker {
            id,
            table: FlowTable::new(table_cfg.clone(), cfg.hash_seed ^ id as u64),
            counters: Counters::default(),
            clock: None,
            hasher: FlowHasher::new(cfg.hash_seed),
            ctx: ctx.clone(),
            out: EveBatch::default(),
            out_tx: out_tx.clone(),
            anomaly_enabled: cfg.anomaly_enabled,
            limiter: RateLimit::new(
                cfg.anomaly_rate_limit,
                cfg.anomaly_rate_window,
                decode::DecodeEvent::COUNT + detect::flags::NAMES.len(),
            ),
            detect: detectors.clone(),
            alerts: Vec::new(),
            next_sweep: Timestamp(0),
        };
        let h = thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || w.run(rx))
            .map_err(|source| RunError::Output {
                path: "worker thread".into(),
                source,
            })?;
        txs.push(tx);
        handles.push(h);
    }

    let hasher = FlowHasher::new(cfg.hash_seed);
    let mut source = SourceCounters::default();
    let mut clock = Clock::new(cfg.max_time_jump);
    let mut first_ts: Option<Timestamp> = None;
    let mut next_tick: Option<Timestamp> = None;
    let mut next_advance: Option<Timestamp> = None;
    let mut pcap_cnt: u64 = 0;
    let mut input_errors = Vec::new();
    let total_size: u64 = opts
        .inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = (opts.progress && std::io::stderr().is_terminal() && total_size > 0).then(|| {
        let b = indicatif::ProgressBar::new(total_size);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut done_bytes = 0u64;

    for path in &opts.inputs {
        if opts.signals.stop.load(Ordering::Relaxed) {
            break;
        }
        source.files += 1;
        let input = match Input::open(path) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!("{e}");
                input_errors.push(e.to_string());
                source.files_failed += 1;
                continue;
            }
        };
        let mapped = match &input {
            Input::Mapped { map, .. } => Some(map.clone()),
            Input::Stream { .. } => None,
        };
        let mut builders: Vec<Builder> = (0..n)
            .map(|_| Builder {
                frames: Vec::with_capacity(BATCH_FRAMES),
                owned: Vec::new(),
            })
            .collect();
        let mut unknown_linktypes: Vec<u32> = Vec::new();
        let mut file_start = true;
        let send =
            |b: &mut Builder, tx: &Sender<WorkerMsg>, mapped: &Option<Arc<memmap2::Mmap>>| {
                if b.frames.is_empty() {
                    return;
                }
                let data = match mapped {
                    Some(m) => BatchData::Mapped(m.clone()),
                    None => BatchData::Owned(std::mem::take(&mut b.owned)),
                };
                let frames = std::mem::replace(&mut b.frames, Vec::with_capacity(BATCH_FRAMES));
                let _ = tx.send(WorkerMsg::Frames(Batch { data, frames }));
            };
        let (summary, err) = read_frames(
            input,
            |frame, bytes| {
                pcap_cnt += 1;
                if let LinkType::Other(lt) = frame.linktype
                    && !unknown_linktypes.contains(&lt)
                {
                    unknown_linktypes.push(lt);
                    tracing::warn!(
                        "{}: link type {lt} is not supported; its frames are counted and skipped",
                        path.display()
                    );
                }
                if std::mem::take(&mut file_start) && clock.is_discontinuous(frame.ts) {
                    // Another capture: its time does not continue this one's.
                    for (b, tx) in builders.iter_mut().zip(&txs) {
                        send(b, tx, &mapped);
                    }
                    for tx in &txs {
                        let _ = tx.send(WorkerMsg::Rebase(frame.ts));
                    }
                    clock.rebase(frame.ts);
                    next_tick = Some(frame.ts.saturating_add(cfg.stats_interval));
                    next_advance = None;
                }
                let ts = clock.observe(frame.ts);
                if first_ts.is_none() {
                    first_ts = Some(ts);
                    next_tick = Some(ts.saturating_add(cfg.stats_interval));
                }
                if let Some(tick) = next_tick.filter(|t| ts >= *t) {
                    for (b, tx) in builders.iter_mut().zip(&txs) {
                        send(b, tx, &mapped);
                    }
                    source.time_backwards = clock.backwards;
                    source.time_jumps = clock.jumps;
                    let _ = out_tx.send(OutMsg::Stats(
                        Some(tick),
                        Box::new(StatsPart::Source(source.clone(), first_ts, Some(tick))),
                    ));
                    for tx in &txs {
                        let _ = tx.send(WorkerMsg::Tick(tick));
                    }
                    // The next boundary after this packet, on the interval grid.
                    let step = cfg.stats_interval.0.max(1);
                    let behind = ts.0.saturating_sub(tick.0) / step + 1;
                    next_tick = Some(Timestamp(
                        tick.0.saturating_add(behind.saturating_mul(step)),
                    ));
                }
                if n > 1 && next_advance.is_none_or(|t| ts >= t) {
                    if next_advance.is_some() {
                        for tx in &txs {
                            let _ = tx.send(WorkerMsg::Advance(ts));
                        }
                    }
                    next_advance = Some(ts.saturating_add(ADVANCE_EVERY));
                }
                let w = if n == 1 {
                    0
                } else {
                    (decode::flow_hash(&hasher, frame.linktype, frame.data) % n as u64) as usize
                };
                let Some(b) = builders.get_mut(w) else { return };
                let offset = match bytes {
                    FrameBytes::Mapped { offset, .. } => offset,
                    FrameBytes::Transient => {
                        let o = b.owned.len();
                        b.owned.extend_from_slice(frame.data);
                        o
                    }
                };
                b.frames.push(FrameRef {
                    offset,
                    len: u32::try_from(frame.data.len()).unwrap_or(u32::MAX),
                    orig_len: frame.orig_len,
                    ts,
                    linktype: frame.linktype,
                    pcap_cnt,
                });
                if b.frames.len() >= BATCH_FRAMES
                    && let Some(tx) = txs.get(w)
                {
                    send(b, tx, &mapped);
                }
            },
            |pos| {
                if let Some(bar) = &bar {
                    bar.set_position(done_bytes + pos);
                }
            },
            &opts.signals.stop,
        );
        for (b, tx) in builders.iter_mut().zip(&txs) {
            send(b, tx, &mapped);
        }
        done_bytes += summary.bytes_read;
        source.frames += summary.frames;
        source.bytes_read += summary.bytes_read;
        source.caplen_over_snaplen += summary.counters.caplen_over_snaplen;
        source.pcapng_unknown_interface += summary.counters.unknown_interface;
        if let Some(e) = err {
            tracing::warn!("{e}");
            input_errors.push(e.to_string());
            source.files_failed += 1;
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    // Every worker ends at the same packet time.
    if let Some(now) = clock.now() {
        for tx in &txs {
            let _ = tx.send(WorkerMsg::Advance(now));
        }
    }
    source.time_backwards = clock.backwards;
    source.time_jumps = clock.jumps;
    let _ = out_tx.send(OutMsg::Stats(
        None,
        Box::new(StatsPart::Source(source, first_ts, clock.now())),
    ));
    drop(txs);
    for h in handles {
        let _ = h.join();
    }
    drop(out_tx);
    let (snapshot, sinks) = out_handle.join().unwrap_or_default();
    Ok(RunReport {
        snapshot,
        wall: started.elapsed(),
        input_errors,
        sinks,
        workers: n,
        interrupted: opts.signals.stop.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_holds_outliers_and_confirms_real_jumps() {
        let mut c = Clock::new(Micros::from_secs(3600));
        assert_eq!(c.observe(Timestamp(1_000_000)), Timestamp(1_000_000));
        // One packet from the year 2100, then normal time again.
        assert_eq!(
            c.observe(Timestamp(4_102_444_800_000_000)),
            Timestamp(1_000_000)
        );
        assert_eq!(c.observe(Timestamp(2_000_000)), Timestamp(2_000_000));
        assert_eq!(c.jumps, 1);
        // Backwards.
        assert_eq!(c.observe(Timestamp(1_500_000)), Timestamp(2_000_000));
        assert_eq!(c.backwards, 1);
        // A real gap of a day: held for three packets, then taken.
        let day = 86_400_000_000;
        for i in 0..Clock::CONFIRM - 1 {
            assert_eq!(
                c.observe(Timestamp(day + u64::from(i))),
                Timestamp(2_000_000)
            );
        }
        assert_eq!(c.observe(Timestamp(day + 10)), Timestamp(day + 10));
        assert_eq!(c.jumps, 2);
    }

    #[test]
    fn rate_limit_per_window() {
        let mut r = RateLimit::new(2, Micros::from_secs(60), 3);
        assert!(r.allow(0, Timestamp(0)));
        assert!(r.allow(0, Timestamp(1)));
        assert!(!r.allow(0, Timestamp(2)));
        assert!(r.allow(1, Timestamp(2)));
        assert!(r.allow(0, Timestamp(60_000_001)));
    }
}
