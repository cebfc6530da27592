//! A worker: the per-packet path for the flows it owns.
//!
//! Every frame routed here is decoded, placed in its flow (created, updated,
//! ended on reuse or timeout), and shown to the detectors at the points they
//! care about (a probe, its answer, a completed handshake, the first client
//! payload, the end of a session). Records go into a batch that is handed to
//! the output thread after each input batch. A worker never blocks on
//! another worker: its flows are its own, and state that spans flows lives
//! in the detectors' bounded shared maps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::{FrameRef, OutMsg, StatsPart, WorkerMsg};
use crate::capture::LinkType;
use crate::config::Config;
use crate::decode::{self, Addr, Decoded, Fragment, Ip, Transport, tcp_flags};
use crate::detect::{self, Alert, Detectors, bits, scan};
use crate::flow::{self, EndReason, Flow, FlowKey, FlowTable, Initiator, TO_SERVER};
use crate::output::eve::{self, EveBatch, EveContext, PacketRef};
use crate::stats::Counters;
use crate::time::{Micros, Timestamp};

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Where a worker's records and stats go.
pub(crate) enum Emit {
    /// The output thread, which hands written batches back for reuse (a
    /// batch keeps its buffer's capacity: no reallocation as it fills).
    Channel {
        tx: Sender<OutMsg>,
        recycled: Receiver<EveBatch>,
    },
    /// Kept for the caller (synchronous use: [`super::Engine`]).
    Collect(Vec<OutMsg>),
}

/// How many frames ahead of the one being processed the worker prefetches
/// their headers: past the frames a read-ahead of the flow table decodes
/// (`HINT_GROUP` to `2 * HINT_GROUP` ahead), so those decodes find them in
/// cache too.
const PREFETCH_AHEAD: usize = 3 * HINT_GROUP;

/// From how many tracked flows on the worker reads its flow table ahead of
/// the packets (`Worker::hint_flows`): about where the slots outgrow a
/// core's L2 cache. Below, the table is in cache and reading ahead would
/// only add work (a SYN flood's packets are handled in ~75 ns).
const HINT_MIN_FLOWS: usize = 8192;

/// How many frames a read-ahead covers, and how far ahead of the packet
/// being processed it starts.
const HINT_GROUP: usize = 8;

/// A worker hands its records on once they reach this size, so a burst of
/// records (thousands of flows ending at once) never builds one huge batch.
const MAX_BATCH_BYTES: usize = 1 << 20;

impl Emit {
    fn fresh_batch(&self) -> EveBatch {
        match self {
            Emit::Channel { recycled, .. } => recycled.try_recv().unwrap_or_default(),
            Emit::Collect(_) => EveBatch::default(),
        }
    }

    fn send(&mut self, m: OutMsg) {
        match self {
            Emit::Channel { tx, .. } => {
                // The output thread outlives the workers; a send can only
                // fail if it panicked, and then nothing can be written.
                let _ = tx.send(m);
            }
            Emit::Collect(v) => v.push(m),
        }
    }
}

/// Hands the records in `out` on (if any), leaving a fresh batch.
fn send_batch(out: &mut EveBatch, emit: &mut Emit) {
    if !out.is_empty() {
        let fresh = emit.fresh_batch();
        let mut batch = std::mem::replace(out, fresh);
        batch.ready = Some(Instant::now());
        emit.send(OutMsg::Events(batch));
    }
}

/// Hands the records in `out` on once they reach [`MAX_BATCH_BYTES`].
fn send_if_full(out: &mut EveBatch, emit: &mut Emit) {
    if out.buf.len() >= MAX_BATCH_BYTES {
        send_batch(out, emit);
    }
}

/// Per-event-name rate limit of anomaly records.
pub(crate) struct RateLimit {
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

pub(crate) struct Worker {
    id: usize,
    table: FlowTable,
    counters: Counters,
    /// Latest packet time seen (already made monotonic by the source).
    clock: Option<Timestamp>,
    ctx: Arc<EveContext>,
    out: EveBatch,
    pub(crate) emit: Emit,
    /// Record how long after capture each packet is processed (live).
    pub(crate) measure_capture: bool,
    /// Where the workers of a pipeline meet before ending every flow.
    pub(crate) rendezvous: Option<Arc<Rendezvous>>,
    anomaly_enabled: bool,
    limiter: RateLimit,
    detect: Arc<Detectors>,
    /// Alerts raised by the packet being processed.
    alerts: Vec<Alert>,
    next_sweep: Timestamp,
}

/// A barrier of the pipeline's workers that a worker can leave: one that
/// is done (or panicked) counts as arrived at every later meeting.
pub(crate) struct Rendezvous {
    workers: usize,
    state: std::sync::Mutex<Meetings>,
    met: std::sync::Condvar,
}

#[derive(Default)]
struct Meetings {
    /// Workers at the current meeting.
    arrived: usize,
    /// Meetings held so far.
    held: u64,
    /// Workers that left for good.
    gone: usize,
}

impl Rendezvous {
    pub(crate) fn new(workers: usize) -> Self {
        Rendezvous {
            workers,
            state: Default::default(),
            met: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Meetings> {
        // Nothing panics while holding the lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns once every worker not gone has called `wait` for this
    /// meeting.
    pub(crate) fn wait(&self) {
        let mut m = self.lock();
        m.arrived += 1;
        let meeting = m.held;
        self.release_if_all(&mut m);
        while m.held == meeting {
            m = self.met.wait(m).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn leave(&self) {
        let mut m = self.lock();
        m.gone += 1;
        self.release_if_all(&mut m);
    }

    fn release_if_all(&self, m: &mut Meetings) {
        if m.arrived + m.gone >= self.workers {
            m.arrived = 0;
            m.held += 1;
            self.met.notify_all();
        }
    }
}

/// Leaves a [`Rendezvous`] when dropped.
struct Leave(Arc<Rendezvous>);

impl Drop for Leave {
    fn drop(&mut self) {
        self.0.leave();
    }
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
    pub(crate) fn new(
        id: usize,
        cfg: &Config,
        workers: usize,
        ctx: Arc<EveContext>,
        detect: Arc<Detectors>,
        emit: Emit,
    ) -> Self {
        let mut table_cfg = cfg.flow.clone();
        table_cfg.max_flows = (cfg.flow.max_flows / workers.max(1)).max(1);
        Worker {
            id,
            table: FlowTable::new(table_cfg, cfg.hash_seed ^ id as u64),
            counters: Counters::default(),
            clock: None,
            ctx,
            out: EveBatch::default(),
            emit,
            measure_capture: false,
            rendezvous: None,
            anomaly_enabled: cfg.anomaly_enabled,
            limiter: RateLimit::new(
                cfg.anomaly_rate_limit,
                cfg.anomaly_rate_window,
                decode::DecodeEvent::COUNT + detect::flags::NAMES.len(),
            ),
            detect,
            alerts: Vec::new(),
            next_sweep: Timestamp(0),
        }
    }

    pub(crate) fn run(mut self, rx: Receiver<WorkerMsg>) {
        // Leaves the rendezvous when the worker is done, or should it
        // panic, so that the others never wait for it.
        let _leave = self.rendezvous.clone().map(Leave);
        for msg in rx {
            self.handle(msg);
        }
        self.finish();
    }

    /// Waits until every other worker of the pipeline is here too. Ending
    /// a flow judges it again against what the detectors learned from the
    /// packets before it, on any worker (the detectors' shared state spans
    /// host pairs): before every flow is ended, at the end of the input or
    /// of one capture, each worker waits for the others to have processed
    /// every packet before that point.
    fn meet(&self) {
        if let Some(r) = &self.rendezvous {
            r.wait();
        }
    }

    /// Handles one message from the source.
    pub(crate) fn handle(&mut self, msg: WorkerMsg) {
        {
            match msg {
                WorkerMsg::Frames(batch) => {
                    let started = Instant::now();
                    let lat = &mut self.counters.latency;
                    lat.queue
                        .record(micros(started.saturating_duration_since(batch.sealed)));
                    if self.measure_capture {
                        // Live: packet timestamps are the capture's wall clock.
                        let wall = crate::time::Timestamp::wall_now();
                        for f in &batch.frames {
                            lat.capture.record(wall.since(f.ts).0);
                        }
                    }
                    let data = batch.data.bytes();
                    let frame = |f: &FrameRef| data.get(f.offset..f.offset + f.len as usize);
                    // Every frame is decoded first, in one pass: the frames
                    // were written by another core, and their headers load
                    // while earlier ones decode (prefetched ahead, misses
                    // served together rather than one per packet).
                    let frames = &batch.frames;
                    let mut decoded: Vec<Prepared<'_>> = frames
                        .iter()
                        .enumerate()
                        .map(|(i, f)| {
                            if let Some(next) = frames.get(i + PREFETCH_AHEAD).and_then(frame) {
                                crate::cache::prefetch_headers(next);
                            }
                            Prepared {
                                d: decode_frame(f, frame(f).unwrap_or(&[])),
                                hash: None,
                            }
                        })
                        .collect();
                    // A table larger than the core's cache is read ahead:
                    // see `hint_flows`.
                    let hint = self.table.len() >= HINT_MIN_FLOWS;
                    for (i, f) in frames.iter().enumerate() {
                        if hint && i % HINT_GROUP == 0 {
                            let ahead = decoded.iter_mut().skip(i + HINT_GROUP).take(HINT_GROUP);
                            self.hint_flows(ahead);
                        }
                        if let Some(d) = decoded.get(i) {
                            self.packet(f, d);
                        }
                        send_if_full(&mut self.out, &mut self.emit);
                    }
                    if let Some(now) = self.clock {
                        self.expire(now);
                    }
                    self.send_events();
                    self.counters
                        .latency
                        .worker
                        .record(micros(started.elapsed()));
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
                    self.emit
                        .send(OutMsg::Stats(Some(ts), Box::new(StatsPart::Worker(snap))));
                }
                WorkerMsg::Rebase(ts) => {
                    self.meet();
                    self.end_all(EndReason::Shutdown);
                    // And none starts on the next capture (whose time may be
                    // earlier) while another still judges this one's flows.
                    self.meet();
                    self.clock = Some(ts);
                    self.send_events();
                }
            }
        }
    }

    /// Ends every flow (end of input) and sends the final stats part.
    pub(crate) fn finish(&mut self) {
        self.meet();
        self.end_all(EndReason::Shutdown);
        self.send_events();
        let snap = self.snapshot();
        self.emit
            .send(OutMsg::Stats(None, Box::new(StatsPart::Worker(snap))));
        tracing::debug!(worker = self.id, "worker done");
    }

    fn end_all(&mut self, reason: EndReason) {
        self.on_table(|table, on_end| table.drain(reason, on_end));
    }

    /// Runs `g` on the flow table with the callback that writes the record
    /// (and the detectors' end-of-flow alerts) of each flow it ends, handing
    /// the records on whenever they fill a batch (ending every flow at the
    /// end of the input writes one record per tracked flow).
    fn on_table<R>(
        &mut self,
        g: impl FnOnce(&mut FlowTable, &mut dyn FnMut(&Flow, EndReason)) -> R,
    ) -> R {
        let Worker {
            table,
            out,
            ctx,
            counters,
            detect,
            emit,
            ..
        } = self;
        g(table, &mut |f: &Flow, r| {
            end_flow(out, ctx, counters, detect, f, r);
            send_if_full(out, emit);
        })
    }

    fn advance(&mut self, ts: Timestamp) {
        if self.clock.is_none_or(|c| ts > c) {
            self.clock = Some(ts);
        }
    }

    fn snapshot(&mut self) -> Counters {
        // Latencies go out as the interval's (the output thread adds them
        // up): histograms are not copied at every tick.
        let latency = std::mem::take(&mut self.counters.latency);
        let mut c = self.counters.clone();
        c.latency = latency;
        c.table = self.table.counters.clone();
        c.trackers = self.detect.usage().into_iter().collect();
        c.rules = self.detect.rule_stats();
        c.active_flows = self.table.len() as u64;
        c
    }

    /// One frame outside a batch (synchronous use), then due expiries.
    pub(crate) fn process_frame(&mut self, f: &FrameRef, data: &[u8]) {
        let p = Prepared {
            d: decode_frame(f, data),
            hash: None,
        };
        self.packet(f, &p);
        if let Some(now) = self.clock {
            self.expire(now);
        }
    }

    /// Hands the records written so far on.
    pub(crate) fn flush_events(&mut self) {
        self.send_events();
    }

    fn send_events(&mut self) {
        send_batch(&mut self.out, &mut self.emit);
    }

    fn expire(&mut self, now: Timestamp) {
        self.on_table(|table, on_end| table.expire(now, on_end));
        if now >= self.next_sweep {
            self.detect.sweep(now);
            self.next_sweep = now.saturating_add(Micros::from_secs(1));
        }
    }

    /// Starts loading the flow table's entries for `frames`, a group of
    /// decoded frames whose turn comes in a few packets: hashes their flow
    /// keys (kept for their turn), then probes the flow index for all of
    /// them in a row, independent reads whose cache misses the CPU serves
    /// together and which the slots' prefetches follow. Changes nothing
    /// else: the packets in between may still add or end flows, and each
    /// packet looks its flow up again when its turn comes (then from the
    /// cache).
    fn hint_flows<'a, 'b: 'a>(&self, frames: impl Iterator<Item = &'a mut Prepared<'b>>) {
        let mut hashes = [0u64; HINT_GROUP];
        let mut n = 0;
        for (p, hash) in frames.zip(hashes.iter_mut()) {
            if let Some((key, _)) = flow_key(&p.d) {
                *hash = self.table.hash(&key);
                p.hash = Some(*hash);
                n += 1;
            }
        }
        for &hash in hashes.iter().take(n) {
            self.table.prefetch(hash);
        }
    }

    fn packet(&mut self, f: &FrameRef, p: &Prepared<'_>) {
        let d = &p.d;
        // A file source makes frame times monotonic; several live
        // interfaces each are, but not together: never step back.
        let now = self.clock.map_or(f.ts, |c| c.max(f.ts));
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
        if f.orig_len > f.len {
            c.snap_truncated += 1;
        }
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
        match d.transport {
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
            }
            Transport::Udp { .. } => c.udp += 1,
            Transport::Icmp { .. } if ip.v6 => c.icmpv6 += 1,
            Transport::Icmp { .. } => c.icmpv4 += 1,
            Transport::Sctp { .. } | Transport::Other => c.other_ip += 1,
            Transport::None => {}
        }
        let (sport, dport) = key_ports(&ip, &d.transport);
        let tuple = Some((ip.proto, ip.src, sport, ip.dst, dport));
        // The key of the packet's flow, whether the source is its `lo` end,
        // and its hash (the read-ahead's, when it hashed it); None for a
        // packet that belongs to no flow.
        let keyed = is_trackable(&ip, &d.transport).then(|| {
            let (key, src_is_lo) = FlowKey::new(ip.src, sport, ip.dst, dport, ip.proto, d.vlan);
            (
                key,
                src_is_lo,
                p.hash.unwrap_or_else(|| self.table.hash(&key)),
            )
        });

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
        let (mut called_back, mut relayed) = (false, false);
        match d.transport {
            Transport::Tcp(t) if t.flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN => {
                let det = &self.detect;
                let flooded = det
                    .flood
                    .on_syn(ip.src, ip.dst, t.dport, now, &mut self.alerts);
                if flooded
                    && let Some((key, _, hash)) = &keyed
                    && self.table.lookup_hashed(key, *hash).is_none()
                {
                    self.counters.flood_syns_untracked += 1;
                    self.write_alerts(None, f, now, tuple, vlan);
                    return;
                }
                let scanning = det.scan.is_probing(&ip.src, 5);
                called_back = det.role.on_syn(
                    policy,
                    ip.src,
                    t.sport,
                    ip.dst,
                    t.dport,
                    scanning,
                    now,
                    &mut self.alerts,
                );
                relayed =
                    det.proxy
                        .on_outbound(policy, ip.src, ip.dst, t.dport, now, &mut self.alerts);
            }
            // A protocol unreachable (ICMPv6: unrecognized next header)
            // refuses a protocol probe, from the target (the sender) to the
            // scanner.
            Transport::Icmp {
                type_,
                code,
                payload,
                ..
            } if (ip.v6 && type_ == 4 && code == 1) || (!ip.v6 && type_ == 3 && code == 2) => {
                if let Some(qproto) = decode::quoted_protocol(payload, ip.v6) {
                    self.detect.scan.on_protocol(
                        policy,
                        ip.dst,
                        ip.src,
                        qproto,
                        Some(scan::Outcome::Rejected),
                        now,
                        &mut self.alerts,
                    );
                }
            }
            Transport::Icmp { type_, payload, .. }
                if (ip.v6 && type_ == 1) || (!ip.v6 && type_ == 3) =>
            {
                // An unreachable quoting a probe: the probe was rejected.
                // A quoted ICMP header starts with its type and code: an
                // echo request is a probe of its host's echo.
                if let Some((qsrc, qdst, qproto, qsport, qdport)) =
                    decode::quoted_tuple(payload, ip.v6)
                {
                    let qdport = match scan::echo_type(qproto) {
                        Some(echo) if qsport >> 8 == echo => echo,
                        Some(_) => 0,
                        None => qdport,
                    };
                    self.detect.scan.on_outcome(
                        policy,
                        qsrc,
                        qdst,
                        qproto,
                        qdport,
                        scan::Outcome::Rejected,
                        false,
                        now,
                        &mut self.alerts,
                    );
                }
            }
            _ => {}
        }

        let Some((key, src_is_lo, hash)) = keyed else {
            if let Some(e) = d.event {
                self.decode_event(e, f, now, tuple, None, vlan);
            }
            // No flow: no direction, so the first either way.
            if self.detect.rules.may_match(ip.proto, &d.transport, true) {
                let view = detect::rules::PacketView::new(&ip, &d.transport);
                self.detect
                    .rules
                    .match_packet(&view, None, now, &mut self.alerts);
            }
            self.write_alerts(None, f, now, tuple, vlan);
            return;
        };
        let idx = self.lookup(&key, hash, &d.transport, src_is_lo, now);
        let (idx, created) = match idx {
            Some(i) => (i, false),
            None => {
                let mut flow = self.new_flow(key, src_is_lo, &d.transport, ip.v6, now);
                flow.iface = f.iface;
                if ip.proto == decode::PROTO_ICMPV6 {
                    self.counters.icmpv6_flows += 1;
                }
                let i = self.on_table(|table, on_end| table.insert_hashed(flow, hash, now, on_end));
                (i, true)
            }
        };
        let Some(flow) = self.table.get_mut(idx) else {
            return;
        };
        if called_back {
            flow.detect_bits |= bits::CALLBACK;
        }
        if relayed {
            flow.detect_bits |= bits::RELAYED;
        }
        let dir = flow.direction(src_is_lo);
        let from_client = dir == TO_SERVER;
        if let Some(p) = flow.pkts.get_mut(dir) {
            *p += 1;
        }
        if let Some(b) = flow.bytes.get_mut(dir) {
            *b += u64::from(f.orig_len);
        }
        let before = flow.last;
        if now > flow.last {
            flow.last = now;
        }
        let det = &self.detect;
        let policy = &det.policy;
        let ((client, _), (server, server_port)) = (flow.client(), flow.server());
        // The flow's probe (to `port`) was answered or refused: counted once.
        let resolve = |detect_bits: &mut u8, port, outcome, alerts: &mut Vec<Alert>| {
            *detect_bits |= bits::RESOLVED;
            det.scan.on_outcome(
                policy, client, server, ip.proto, port, outcome, false, now, alerts,
            );
        };
        // A probe is the first packet of a new flow, sent by its client.
        let probe = match d.transport {
            Transport::Tcp(t) if created && from_client => {
                scan::Technique::of_tcp(t.flags, t.window)
            }
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
        let ported = matches!(d.transport, Transport::Tcp(_) | Transport::Udp { .. });
        let echo = echo_port(&ip, &d.transport);
        if created && from_client && !ported {
            flow.detect_bits |= bits::PROBE;
            det.scan.on_protocol(
                policy,
                client,
                server,
                ip.proto,
                None,
                now,
                &mut self.alerts,
            );
            if let Some(port) = echo {
                det.scan.on_probe(
                    policy,
                    client,
                    server,
                    ip.proto,
                    port,
                    scan::Technique::Echo,
                    now,
                    &mut self.alerts,
                );
            }
        }
        let unresolved_probe = flow.detect_bits & (bits::PROBE | bits::RESOLVED) == bits::PROBE;
        if unresolved_probe && !from_client && !ported {
            flow.detect_bits |= bits::RESOLVED;
            det.scan.on_protocol(
                policy,
                client,
                server,
                ip.proto,
                Some(scan::Outcome::Answered),
                now,
                &mut self.alerts,
            );
            if let Some(port) = echo {
                resolve(
                    &mut flow.detect_bits,
                    port,
                    scan::Outcome::Answered,
                    &mut self.alerts,
                );
            }
        }
        match d.transport {
            Transport::Tcp(t) => {
                if let Some(fl) = flow.tcp_flags.get_mut(dir) {
                    *fl |= t.flags;
                }
                let outcome = flow
                    .tcp
                    .segment(from_client, t.flags, t.seq, t.ack, t.len, t.window);
                if server_port == detect::related::FTP_CONTROL && t.len > 0 {
                    // The data ports it negotiates.
                    det.ftp
                        .on_control(client, server, from_client, t.payload, t.len, now);
                }
                if !from_client {
                    let synack = t.flags & (tcp_flags::SYN | tcp_flags::ACK)
                        == tcp_flags::SYN | tcp_flags::ACK;
                    if synack {
                        det.role.on_synack(server, server_port, client, now);
                    }
                    if unresolved_probe && (synack || t.flags & tcp_flags::RST != 0) {
                        let o = if synack {
                            scan::Outcome::Answered
                        } else {
                            scan::Outcome::Rejected
                        };
                        resolve(&mut flow.detect_bits, server_port, o, &mut self.alerts);
                    }
                }
                // After its SYN, the client acknowledges a SYN-ACK the
                // capture does not hold (it has one direction of the
                // traffic: an asymmetric route, a one-way tap): the probe
                // was answered, the handshake completed. (An ACK scan's
                // probe is the flow's first packet.)
                let completed_unseen = from_client
                    && unresolved_probe
                    && !created
                    && flow.initiator() == Initiator::Syn
                    && flow.pkts[flow::TO_CLIENT] == 0
                    && t.flags & (tcp_flags::SYN | tcp_flags::RST | tcp_flags::ACK)
                        == tcp_flags::ACK;
                if completed_unseen {
                    resolve(
                        &mut flow.detect_bits,
                        server_port,
                        scan::Outcome::Answered,
                        &mut self.alerts,
                    );
                }
                if outcome.handshake_completed {
                    self.counters.tcp_handshakes += 1;
                    if flow.detect_bits & bits::PROBE != 0 {
                        det.scan.on_outcome(
                            policy,
                            client,
                            server,
                            ip.proto,
                            server_port,
                            scan::Outcome::Answered,
                            true,
                            now,
                            &mut self.alerts,
                        );
                    }
                }
                if (outcome.handshake_completed || completed_unseen)
                    && flow.detect_bits & bits::COMPLETED == 0
                {
                    // Once a connection: its client's ACK may be captured
                    // before the SYN-ACK.
                    flow.detect_bits |= bits::COMPLETED;
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
                // A UDP flow is open once it is more than one datagram: a
                // reply, or a second datagram from the client (a single
                // refused or unanswered datagram, like a traceroute probe,
                // opened nothing).
                let second = if from_client {
                    flow.pkts[TO_SERVER] == 2
                } else {
                    flow.pkts[flow::TO_CLIENT] == 1
                };
                if second && flow.detect_bits & bits::OPENED == 0 {
                    flow.detect_bits |= bits::OPENED;
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
                    resolve(
                        &mut flow.detect_bits,
                        server_port,
                        scan::Outcome::Answered,
                        &mut self.alerts,
                    );
                }
                if !from_client && server_port == detect::role::RPCBIND {
                    det.role.on_rpcbind_answer(client, server, now);
                }
            }
            Transport::Icmp { type_, code, .. } => {
                flow.note_icmp(dir, (type_, code));
            }
            _ => {}
        }
        // Signature rules on every packet (that a rule could be for);
        // reputation once, on a new flow.
        if det
            .rules
            .may_match(ip.proto, &d.transport, flow.first_in_direction(dir))
        {
            let view = detect::rules::PacketView::new(&ip, &d.transport).with_flow(flow, dir);
            det.rules
                .match_packet(&view, Some(&mut flow.flowbits), now, &mut self.alerts);
        }
        if created {
            det.reputation.on_new_flow(policy, flow, &mut self.alerts);
        }
        // Only a decode event needs the flow id here (alerts compute theirs).
        let flow_id = d.event.map(|_| self.ctx.flow_id(flow));
        self.write_alerts(Some(idx), f, now, tuple, vlan);
        self.table.touch(idx, before);
        if let Some(e) = d.event {
            self.decode_event(e, f, now, tuple, flow_id, vlan);
        }
    }

    /// Writes the alerts the current packet raised, on its flow when it has
    /// one. Inlined: called for every packet, most of which raise none, and
    /// then the call's arguments cost more than the check.
    #[inline(always)]
    fn write_alerts(
        &mut self,
        idx: Option<u32>,
        f: &FrameRef,
        now: Timestamp,
        tuple: Tuple,
        vlan: &[u16],
    ) {
        // Most packets raise none: then there is nothing to filter.
        if self.alerts.is_empty() {
            return;
        }
        let endpoints = tuple.map(|t| (t.1, t.3));
        self.detect.finish_alerts(&mut self.alerts, endpoints, now);
        if self.alerts.is_empty() {
            return;
        }
        let mut alerts = std::mem::take(&mut self.alerts);
        for a in &mut alerts {
            // A tracker at its memory cap refused keys: say so on the alert,
            // whose counts may be short.
            if let detect::Origin::Detector(kind) = a.origin {
                let shed = self.detect.shed_for(kind);
                if shed > 0 {
                    a.evidence.insert("tracker_shed".into(), shed.into());
                }
            }
        }
        for a in &alerts {
            *self.counters.alerts.entry(a.name()).or_default() += 1;
            let flow = idx
                .filter(|_| a.on_flow)
                .and_then(|i| self.table.get_mut(i));
            let (t, flow) = match flow {
                Some(fl) => {
                    fl.set_alerted();
                    (tuple, Some(&*fl))
                }
                // Not about this packet's flow: name the alert's own endpoints.
                None => match (a.source.ip, a.target.ip) {
                    (Some(s), Some(d)) => (
                        Some((
                            decode::PROTO_TCP,
                            s,
                            a.source.port.unwrap_or(0),
                            d,
                            a.target.port.unwrap_or(0),
                        )),
                        None,
                    ),
                    _ => (tuple, None),
                },
            };
            let flow_id = flow.map(|fl| self.ctx.flow_id(fl));
            let pkt = packet_ref(&self.ctx, f, now, t, flow_id, vlan);
            if let Some(json) = alert_json(a) {
                eve::write_alert(&mut self.out, &self.ctx, &pkt, flow, &json);
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
        if !self.anomaly_allowed(flag_slot(name), now) {
            return;
        }
        let pkt = packet_ref(&self.ctx, f, now, tuple, None, vlan);
        eve::write_anomaly(&mut self.out, &self.ctx, &pkt, "decode", name);
    }

    /// Finds the live flow for `key`, ending it first if it timed out or a
    /// new SYN reuses its 5-tuple.
    fn lookup(
        &mut self,
        key: &FlowKey,
        hash: u64,
        t: &Transport<'_>,
        src_is_lo: bool,
        ts: Timestamp,
    ) -> Option<u32> {
        let idx = self.table.lookup_hashed(key, hash)?;
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
                self.on_table(|table, on_end| table.remove(idx, r, on_end));
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
                if flow::udp_source_looks_like_server(src_port, dst_port, is_likely_server_port) {
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
        let mut flow = Flow::new(key, now, client_is_lo, initiator);
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
        if !self.anomaly_allowed(e.index(), now) {
            return;
        }
        let pkt = packet_ref(&self.ctx, f, now, tuple, flow_id, vlan);
        eve::write_decode_anomaly(&mut self.out, &self.ctx, &pkt, e);
    }

    /// Whether an anomaly record of rate-limit slot `slot` may be written
    /// now (anomalies on, under the rate limit); counts the outcome.
    fn anomaly_allowed(&mut self, slot: usize, now: Timestamp) -> bool {
        if !self.anomaly_enabled {
            return false;
        }
        if !self.limiter.allow(slot, now) {
            self.counters.anomalies_suppressed += 1;
            return false;
        }
        self.counters.anomalies_logged += 1;
        true
    }
}

/// The ports of a packet as its flow key holds them: for ICMP, the type of
/// the request (an answer's request type) and the code.
fn key_ports(ip: &Ip, t: &Transport<'_>) -> (u16, u16) {
    match *t {
        Transport::Tcp(t) => (t.sport, t.dport),
        Transport::Udp { sport, dport, .. } | Transport::Sctp { sport, dport } => (sport, dport),
        Transport::Icmp { type_, code, .. } => {
            let (_, request) = flow::icmp_request_type(ip.v6, type_);
            (u16::from(request), u16::from(code))
        }
        Transport::Other | Transport::None => (0, 0),
    }
}

/// The echo "port" of an ICMP echo request or reply (see
/// [`scan::echo_type`]): a ping is a probe of its host's echo.
fn echo_port(ip: &Ip, t: &Transport<'_>) -> Option<u16> {
    let (request, reply) = if ip.v6 { (128, 129) } else { (8, 0) };
    match *t {
        Transport::Icmp { type_, .. } if type_ == request || type_ == reply => {
            scan::echo_type(ip.proto)
        }
        _ => None,
    }
}

/// Later fragments carry no ports and cannot be placed in a flow; frames
/// whose transport header did not decode neither.
fn is_trackable(ip: &Ip, t: &Transport<'_>) -> bool {
    ip.fragment != Fragment::Later && !matches!(t, Transport::None)
}

/// An alert's EVE `alert` object. Serializing it cannot fail (string keys,
/// finite numbers); should it, the alert is counted but not written, and
/// the reason logged.
fn alert_json(a: &Alert) -> Option<Box<serde_json::value::RawValue>> {
    serde_json::value::to_raw_value(&a.eve())
        .inspect_err(|e| tracing::error!("{} alert not written: {e}", a.name()))
        .ok()
}

/// A frame decoded ahead of its turn, with its flow key's hash once a
/// read-ahead has computed it.
pub(crate) struct Prepared<'a> {
    d: Decoded<'a>,
    hash: Option<u64>,
}

/// Decodes a frame's bytes; fewer of them than its wire length is a snap
/// length, not a malformation.
fn decode_frame<'a>(f: &FrameRef, data: &'a [u8]) -> Decoded<'a> {
    decode::decode(f.linktype, data, f.orig_len as usize > data.len())
}

/// The key of the flow a decoded frame belongs to, and whether its source
/// is the key's `lo` end; `None` for a frame that belongs to no flow.
fn flow_key(d: &Decoded<'_>) -> Option<(FlowKey, bool)> {
    let ip = d.ip.as_ref()?;
    if !is_trackable(ip, &d.transport) {
        return None;
    }
    let (sport, dport) = key_ports(ip, &d.transport);
    Some(FlowKey::new(ip.src, sport, ip.dst, dport, ip.proto, d.vlan))
}

/// The EVE view of the frame being processed.
fn packet_ref<'a>(
    ctx: &'a EveContext,
    f: &FrameRef,
    now: Timestamp,
    tuple: Option<(u8, decode::Addr, u16, decode::Addr, u16)>,
    flow_id: Option<u64>,
    vlan: &'a [u16],
) -> PacketRef<'a> {
    PacketRef {
        ts: now,
        pcap_cnt: f.pcap_cnt,
        in_iface: ctx.iface(f.iface),
        tuple,
        flow_id,
        vlan,
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
    let ((client, _), (server, port)) = (f.client(), f.server());
    if f.key.proto == decode::PROTO_TCP {
        if f.tcp.handshake_seen {
            detect
                .brute
                .on_session_end(client, server, port, f.start, f.last, &mut alerts);
        }
        // A connection back not counted at its SYN is judged again now, by
        // packet times: the session in may have been processed after it
        // (seen on another interface of a live capture).
        if f.initiator() == Initiator::Syn && f.detect_bits & bits::CALLBACK == 0 {
            detect.role.on_connection_out(
                &detect.policy,
                client,
                server,
                port,
                f.start,
                f.last,
                &mut alerts,
            );
        }
        // So is a proxy's relayed connection: the request it follows is
        // another pair's flow, maybe processed after its SYN.
        if f.initiator() == Initiator::Syn && f.detect_bits & bits::RELAYED == 0 {
            detect
                .proxy
                .on_outbound(&detect.policy, client, server, port, f.start, &mut alerts);
        }
    }
    detect.finish_alerts(&mut alerts, Some((client, server)), f.last);
    if alerts.is_empty() {
        eve::write_flow(out, ctx, f, r);
        return;
    }
    let mut f = f.clone();
    f.set_alerted();
    for a in &alerts {
        *counters.alerts.entry(a.name()).or_default() += 1;
        let pkt = PacketRef {
            ts: f.last,
            pcap_cnt: 0,
            in_iface: ctx.iface(f.iface),
            tuple: None,
            flow_id: Some(ctx.flow_id(&f)),
            vlan: &[],
        };
        if let Some(json) = alert_json(a) {
            eve::write_alert(out, ctx, &pkt, Some(&f), &json);
        }
    }
    eve::write_flow(out, ctx, &f, r);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_per_window() {
        let mut r = RateLimit::new(2, Micros::from_secs(60), 3);
        assert!(r.allow(0, Timestamp(0)));
        assert!(r.allow(0, Timestamp(1)));
        assert!(!r.allow(0, Timestamp(2)));
        assert!(r.allow(1, Timestamp(2)));
        assert!(r.allow(0, Timestamp(60_000_001)));
    }

    /// Every worker still running is at a meeting before any leaves it; a
    /// worker that is done (or panicked) holds no one up, then or later.
    #[test]
    fn a_rendezvous_waits_for_every_worker_not_gone() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let r = Arc::new(Rendezvous::new(4));
        let arrived = Arc::new(AtomicUsize::new(0));
        let gone = Leave(r.clone());
        let threads: Vec<_> = (0..3)
            .map(|i| {
                let (r, arrived) = (r.clone(), arrived.clone());
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    for meeting in 1..=3 {
                        // Later arrivals: the others must wait for them.
                        std::thread::sleep(std::time::Duration::from_millis(i * 20));
                        arrived.fetch_add(1, Ordering::SeqCst);
                        r.wait();
                        seen.push(arrived.load(Ordering::SeqCst) >= meeting * 3);
                        // Everyone has read the count before it moves on.
                        r.wait();
                    }
                    seen
                })
            })
            .collect();
        // The fourth worker leaves once the others wait at the first meeting.
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(gone);
        for t in threads {
            assert_eq!(t.join().ok(), Some(vec![true; 3]));
        }
    }
}
