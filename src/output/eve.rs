//! EVE JSON records with Suricata's field names and types.
//!
//! One typed struct serves every event type; sections that do not apply are
//! skipped. Records are serialized straight into a reusable buffer, one line
//! each. Every record validates against Suricata 8's EVE schema, which is
//! closed (no unknown keys), so what backflow adds goes where the schema is
//! open: Zeek-style `conn_state`, `history` and how the client was found in
//! `metadata.flowvars`, detector evidence in `alert.metadata`.

use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::community_id::community_id;
use super::json::Obj;
use crate::decode::{
    Addr, DecodeEvent, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP,
};
use crate::flow::{EndReason, Flow, FlowKey, TO_CLIENT, TO_SERVER};
use crate::stats::Snapshot;
use crate::time::Timestamp;

/// EVE event types backflow writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    Alert,
    Flow,
    Anomaly,
    Stats,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Alert => "alert",
            EventType::Flow => "flow",
            EventType::Anomaly => "anomaly",
            EventType::Stats => "stats",
        }
    }
    pub fn parse(s: &str) -> Option<EventType> {
        Some(match s {
            "alert" => EventType::Alert,
            "flow" => EventType::Flow,
            "anomaly" => EventType::Anomaly,
            "stats" => EventType::Stats,
            _ => return None,
        })
    }
}

/// A run of EVE lines with their types, built by a worker and written by the
/// output thread.
#[derive(Debug, Default)]
pub struct EveBatch {
    pub buf: Vec<u8>,
    /// Event type and end offset (exclusive, after the newline) of each line.
    pub lines: Vec<(EventType, usize)>,
    /// When the batch was handed to the output thread (latency).
    pub ready: Option<std::time::Instant>,
}

impl EveBatch {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
    pub fn len(&self) -> usize {
        self.lines.len()
    }
    /// Empties the batch, keeping its buffers' capacity.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.lines.clear();
        self.ready = None;
    }
    /// Moves the lines of `other` to the end of this batch.
    pub fn append(&mut self, other: EveBatch) {
        let base = self.buf.len();
        self.buf.extend_from_slice(&other.buf);
        self.lines
            .extend(other.lines.into_iter().map(|(t, end)| (t, base + end)));
    }
    /// Iterates over (type, line including its newline).
    pub fn iter(&self) -> impl Iterator<Item = (EventType, &[u8])> {
        let mut start = 0;
        self.lines.iter().map(move |&(t, end)| {
            let line = self.buf.get(start..end).unwrap_or(&[]);
            start = end;
            (t, line)
        })
    }
    fn push(&mut self, t: EventType, rec: &Record<'_>) {
        #[cfg(test)]
        let start = self.buf.len();
        rec.write_json(&mut self.buf);
        // Every record written in the unit tests is checked against serde.
        #[cfg(test)]
        assert_eq!(
            String::from_utf8_lossy(&self.buf[start..]),
            serde_json::to_string(rec).unwrap_or_default(),
            "the JSON writer and the Serialize derive disagree"
        );
        self.buf.push(b'\n');
        self.lines.push((t, self.buf.len()));
    }
}

/// Settings that every record carries.
#[derive(Clone)]
pub struct EveContext {
    /// Sensor name, written as `host`.
    pub host: Option<String>,
    /// Community ID seed.
    pub cid_seed: u16,
    /// `pkt_src` of packet-triggered records.
    pub pkt_src: &'static str,
    /// Capture interface names by index (live capture), written as
    /// `in_iface`; empty when reading files.
    pub ifaces: Vec<String>,
    /// Hashes flows into their `flow_id` (seeded by `hash_seed`).
    pub flow_ids: crate::decode::FlowHasher,
}

impl EveContext {
    /// The `flow_id` of a flow.
    pub fn flow_id(&self, f: &Flow) -> u64 {
        f.flow_id(&self.flow_ids)
    }

    /// The `in_iface` of a frame or flow captured on interface `i`.
    pub fn iface(&self, i: u8) -> Option<&str> {
        self.ifaces.get(usize::from(i)).map(String::as_str)
    }
}

/// Suricata's protocol names; others as their number.
pub fn proto_name(proto: u8) -> Cow<'static, str> {
    match proto {
        PROTO_TCP => "TCP".into(),
        PROTO_UDP => "UDP".into(),
        PROTO_ICMP => "ICMP".into(),
        PROTO_ICMPV6 => "IPv6-ICMP".into(),
        PROTO_SCTP => "SCTP".into(),
        p => p.to_string().into(),
    }
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, PROTO_TCP | PROTO_UDP | PROTO_SCTP)
}

fn is_icmp(proto: u8) -> bool {
    matches!(proto, PROTO_ICMP | PROTO_ICMPV6)
}

fn skip_false(b: &bool) -> bool {
    !*b
}

/// Hex TCP flags as Suricata prints them (`"1b"`).
pub struct TcpFlagsHex(pub u8);

impl Serialize for TcpFlagsHex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:02x}", self.0))
    }
}

#[derive(Serialize)]
struct TcpSection {
    tcp_flags: TcpFlagsHex,
    tcp_flags_ts: TcpFlagsHex,
    tcp_flags_tc: TcpFlagsHex,
    #[serde(skip_serializing_if = "skip_false")]
    syn: bool,
    #[serde(skip_serializing_if = "skip_false")]
    fin: bool,
    #[serde(skip_serializing_if = "skip_false")]
    rst: bool,
    #[serde(skip_serializing_if = "skip_false")]
    psh: bool,
    #[serde(skip_serializing_if = "skip_false")]
    ack: bool,
    #[serde(skip_serializing_if = "skip_false")]
    urg: bool,
    #[serde(skip_serializing_if = "skip_false")]
    ecn: bool,
    #[serde(skip_serializing_if = "skip_false")]
    cwr: bool,
    state: &'static str,
}

impl TcpSection {
    fn write_json(&self, mut o: Obj<'_>) {
        let mut hex = |k: &str, v: u8| {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            let pair = [DIGITS[usize::from(v >> 4)], DIGITS[usize::from(v & 0xf)]];
            o.plain(k, std::str::from_utf8(&pair).unwrap_or("00"));
        };
        hex("tcp_flags", self.tcp_flags.0);
        hex("tcp_flags_ts", self.tcp_flags_ts.0);
        hex("tcp_flags_tc", self.tcp_flags_tc.0);
        for (k, v) in [
            ("syn", self.syn),
            ("fin", self.fin),
            ("rst", self.rst),
            ("psh", self.psh),
            ("ack", self.ack),
            ("urg", self.urg),
            ("ecn", self.ecn),
            ("cwr", self.cwr),
        ] {
            if v {
                o.bool(k, true);
            }
        }
        o.plain("state", self.state);
        o.end();
    }

    fn new(ts: u8, tc: u8, state: &'static str) -> Self {
        let all = ts | tc;
        TcpSection {
            tcp_flags: TcpFlagsHex(all),
            tcp_flags_ts: TcpFlagsHex(ts),
            tcp_flags_tc: TcpFlagsHex(tc),
            fin: all & 0x01 != 0,
            syn: all & 0x02 != 0,
            rst: all & 0x04 != 0,
            psh: all & 0x08 != 0,
            ack: all & 0x10 != 0,
            urg: all & 0x20 != 0,
            ecn: all & 0x40 != 0,
            cwr: all & 0x80 != 0,
            state,
        }
    }
}

#[derive(Serialize)]
struct FlowSection {
    pkts_toserver: u64,
    pkts_toclient: u64,
    bytes_toserver: u64,
    bytes_toclient: u64,
    start: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    age: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerted: Option<bool>,
    #[serde(skip_serializing_if = "skip_false")]
    emergency: bool,
}

impl FlowSection {
    fn write_json(&self, mut o: Obj<'_>) {
        o.u64("pkts_toserver", self.pkts_toserver);
        o.u64("pkts_toclient", self.pkts_toclient);
        o.u64("bytes_toserver", self.bytes_toserver);
        o.u64("bytes_toclient", self.bytes_toclient);
        o.ts("start", self.start);
        if let Some(v) = self.end {
            o.ts("end", v);
        }
        if let Some(v) = self.age {
            o.u64("age", v);
        }
        if let Some(v) = self.state {
            o.plain("state", v);
        }
        if let Some(v) = self.reason {
            o.plain("reason", v);
        }
        if let Some(v) = self.alerted {
            o.bool("alerted", v);
        }
        if self.emergency {
            o.bool("emergency", true);
        }
        o.end();
    }

    /// The counters and start of a flow (what an alert's `flow` block holds).
    fn summary(f: &Flow) -> Self {
        FlowSection {
            pkts_toserver: f.pkts[TO_SERVER],
            pkts_toclient: f.pkts[TO_CLIENT],
            bytes_toserver: f.bytes[TO_SERVER],
            bytes_toclient: f.bytes[TO_CLIENT],
            start: f.start,
            end: None,
            age: None,
            state: None,
            reason: None,
            alerted: None,
            emergency: false,
        }
    }
}

/// `metadata.flowvars`: a list of one-key objects, as Suricata writes flow variables.
struct FlowVars<'a>(&'a [(&'static str, &'a str)]);

impl Serialize for FlowVars<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        struct One<'b>(&'static str, &'b str);
        impl Serialize for One<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(self.0, self.1)?;
                m.end()
            }
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (k, v) in self.0 {
            seq.serialize_element(&One(k, v))?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct MetadataSection<'a> {
    flowvars: FlowVars<'a>,
}

#[derive(Serialize)]
struct AnomalySection {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'static str,
}

/// One EVE line.
#[derive(Serialize)]
struct Record<'a> {
    timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    in_iface: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pcap_cnt: Option<u64>,
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<&'a [u16]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_ip: Option<Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_ip: Option<Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proto: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_icmp_code: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    community_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pkt_src: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anomaly: Option<AnomalySection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<&'a serde_json::value::RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<FlowSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<TcpSection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<MetadataSection<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<&'a serde_json::Value>,
}

impl<'a> Record<'a> {
    /// Writes the record as one JSON object: the same bytes as its
    /// `Serialize` derive (the tests check it), without serde's generic
    /// string handling.
    fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Obj::begin(out);
        o.ts("timestamp", self.timestamp);
        if let Some(v) = self.flow_id {
            o.u64("flow_id", v);
        }
        if let Some(v) = self.in_iface {
            o.string("in_iface", v);
        }
        if let Some(v) = self.pcap_cnt {
            o.u64("pcap_cnt", v);
        }
        o.plain("event_type", self.event_type);
        if let Some(v) = self.vlan {
            o.u16s("vlan", v);
        }
        if let Some(v) = &self.src_ip {
            o.addr("src_ip", v);
        }
        if let Some(v) = self.src_port {
            o.u64("src_port", u64::from(v));
        }
        if let Some(v) = &self.dest_ip {
            o.addr("dest_ip", v);
        }
        if let Some(v) = self.dest_port {
            o.u64("dest_port", u64::from(v));
        }
        if let Some(v) = &self.proto {
            o.plain("proto", v);
        }
        for (k, v) in [
            ("icmp_type", self.icmp_type),
            ("icmp_code", self.icmp_code),
            ("response_icmp_type", self.response_icmp_type),
            ("response_icmp_code", self.response_icmp_code),
        ] {
            if let Some(v) = v {
                o.u64(k, u64::from(v));
            }
        }
        if let Some(v) = &self.community_id {
            o.plain("community_id", v);
        }
        if let Some(v) = self.pkt_src {
            o.plain("pkt_src", v);
        }
        if let Some(v) = self.host {
            o.string("host", v);
        }
        if let Some(a) = &self.anomaly {
            let mut s = o.obj("anomaly");
            s.plain("type", a.kind);
            s.plain("event", a.event);
            s.end();
        }
        if let Some(v) = self.alert {
            o.value("alert", v);
        }
        if let Some(f) = &self.flow {
            f.write_json(o.obj("flow"));
        }
        if let Some(t) = &self.tcp {
            t.write_json(o.obj("tcp"));
        }
        if let Some(m) = &self.metadata {
            let mut s = o.obj("metadata");
            s.list("flowvars", m.flowvars.0, |out, (k, v)| {
                let mut one = Obj::begin(out);
                one.plain(k, v);
                one.end();
            });
            s.end();
        }
        if let Some(v) = self.stats {
            o.value("stats", v);
        }
        o.end();
    }

    fn new(ts: Timestamp, event_type: EventType, ctx: &'a EveContext) -> Self {
        Record {
            timestamp: ts,
            flow_id: None,
            in_iface: None,
            pcap_cnt: None,
            event_type: event_type.as_str(),
            vlan: None,
            src_ip: None,
            src_port: None,
            dest_ip: None,
            dest_port: None,
            proto: None,
            icmp_type: None,
            icmp_code: None,
            response_icmp_type: None,
            response_icmp_code: None,
            community_id: None,
            pkt_src: None,
            host: ctx.host.as_deref(),
            anomaly: None,
            alert: None,
            flow: None,
            tcp: None,
            metadata: None,
            stats: None,
        }
    }

    /// Fills the 5-tuple, ICMP fields and Community ID of a flow, client first.
    fn with_flow(mut self, flow: &Flow, ctx: &EveContext, vlan: &'a [u16]) -> Self {
        let ((src, sport), (dst, dport)) = (flow.client(), flow.server());
        self.flow_id = Some(ctx.flow_id(flow));
        self.fill_tuple(flow.key.proto, src, sport, dst, dport, ctx);
        if is_icmp(flow.key.proto) {
            // The client's own type/code when it sent one; else the request
            // type that names the flow.
            let (t, c) = flow
                .icmp(TO_SERVER)
                .unwrap_or((flow.key.lo_port as u8, flow.key.hi_port as u8));
            self.icmp_type = Some(t);
            self.icmp_code = Some(c);
            if let Some((rt, rc)) = flow.icmp(TO_CLIENT) {
                self.response_icmp_type = Some(rt);
                self.response_icmp_code = Some(rc);
            }
            self.community_id = Some(community_id(
                ctx.cid_seed,
                flow.key.proto,
                src,
                u16::from(t),
                dst,
                u16::from(c),
            ));
        }
        if flow.key.vlan[0] != 0 || flow.key.vlan[1] != 0 {
            self.vlan = Some(vlan);
        }
        self
    }

    fn fill_tuple(
        &mut self,
        proto: u8,
        src: Addr,
        sport: u16,
        dst: Addr,
        dport: u16,
        ctx: &EveContext,
    ) {
        self.src_ip = Some(src);
        self.dest_ip = Some(dst);
        self.proto = Some(proto_name(proto));
        if has_ports(proto) {
            self.src_port = Some(sport);
            self.dest_port = Some(dport);
        }
        if !is_icmp(proto) {
            self.community_id = Some(community_id(ctx.cid_seed, proto, src, sport, dst, dport));
        }
    }
}

/// The VLAN ids of a key as EVE lists them (outer first, only those present).
pub fn vlan_ids(key: &FlowKey) -> &[u16] {
    let n = match key.vlan {
        [0, 0] => 0,
        [_, 0] => 1,
        _ => 2,
    };
    key.vlan.get(..n).unwrap_or(&[])
}

/// Writes the `flow` record of a flow that ended.
pub fn write_flow(out: &mut EveBatch, ctx: &EveContext, flow: &Flow, reason: EndReason) {
    let state = flow.state();
    let mut rec =
        Record::new(flow.start, EventType::Flow, ctx).with_flow(flow, ctx, vlan_ids(&flow.key));
    rec.in_iface = ctx.iface(flow.iface);
    rec.flow = Some(FlowSection {
        end: Some(flow.last),
        // Suricata's: the whole seconds of the end less those of the start
        // (0.9 s to 1.1 s is 1).
        age: Some(flow.last.secs().saturating_sub(flow.start.secs())),
        state: Some(state.as_str()),
        reason: Some(reason.as_str()),
        alerted: Some(flow.alerted()),
        emergency: flow.emergency(),
        ..FlowSection::summary(flow)
    });
    let history;
    let vars: &[(&'static str, &str)] = match flow.key.proto {
        PROTO_TCP => {
            rec.tcp = Some(TcpSection::new(
                flow.tcp_flags[TO_SERVER],
                flow.tcp_flags[TO_CLIENT],
                flow.tcp.suricata_state(),
            ));
            history = flow.tcp.history;
            &[
                ("conn_state", flow.conn_state()),
                ("history", history.as_str()),
                ("initiator", flow.initiator().as_str()),
            ]
        }
        _ => &[
            ("conn_state", flow.conn_state()),
            ("initiator", flow.initiator().as_str()),
        ],
    };
    rec.metadata = Some(MetadataSection {
        flowvars: FlowVars(vars),
    });
    out.push(EventType::Flow, &rec);
}

/// Where an anomaly happened.
#[derive(Clone, Copy, Debug)]
pub struct PacketRef<'a> {
    pub ts: Timestamp,
    pub pcap_cnt: u64,
    pub in_iface: Option<&'a str>,
    /// (proto, src, sport, dst, dport) when the IP layer decoded.
    pub tuple: Option<(u8, Addr, u16, Addr, u16)>,
    pub flow_id: Option<u64>,
    pub vlan: &'a [u16],
}

/// Writes an `anomaly` record for a decode event.
pub fn write_decode_anomaly(
    out: &mut EveBatch,
    ctx: &EveContext,
    pkt: &PacketRef<'_>,
    event: DecodeEvent,
) {
    write_anomaly(out, ctx, pkt, "decode", event.name());
}

/// Writes an `anomaly` record (`kind` is Suricata's anomaly type: decode, stream).
pub fn write_anomaly(
    out: &mut EveBatch,
    ctx: &EveContext,
    pkt: &PacketRef<'_>,
    kind: &'static str,
    event: &'static str,
) {
    let mut rec = Record::new(pkt.ts, EventType::Anomaly, ctx);
    rec.pcap_cnt = (pkt.pcap_cnt > 0).then_some(pkt.pcap_cnt);
    rec.in_iface = pkt.in_iface;
    rec.flow_id = pkt.flow_id;
    rec.pkt_src = Some(ctx.pkt_src);
    if let Some((proto, src, sport, dst, dport)) = pkt.tuple {
        rec.fill_tuple(proto, src, sport, dst, dport, ctx);
        if is_icmp(proto) {
            rec.icmp_type = Some(sport as u8);
            rec.icmp_code = Some(dport as u8);
            rec.community_id = Some(community_id(ctx.cid_seed, proto, src, sport, dst, dport));
        }
    }
    if !pkt.vlan.is_empty() {
        rec.vlan = Some(pkt.vlan);
    }
    rec.anomaly = Some(AnomalySection { kind, event });
    out.push(EventType::Anomaly, &rec);
}

/// Writes an `alert` record: `alert` is the alert section (serialized by
/// the detection stage), `flow` the flow it belongs to.
pub fn write_alert(
    out: &mut EveBatch,
    ctx: &EveContext,
    pkt: &PacketRef<'_>,
    flow: Option<&Flow>,
    alert: &serde_json::value::RawValue,
) {
    let mut rec = Record::new(pkt.ts, EventType::Alert, ctx);
    if let Some(f) = flow {
        rec = rec.with_flow(f, ctx, vlan_ids(&f.key));
        rec.flow = Some(FlowSection::summary(f));
    } else if let Some((proto, src, sport, dst, dport)) = pkt.tuple {
        rec.fill_tuple(proto, src, sport, dst, dport, ctx);
    }
    rec.pcap_cnt = (pkt.pcap_cnt > 0).then_some(pkt.pcap_cnt);
    rec.in_iface = pkt.in_iface;
    rec.pkt_src = Some(ctx.pkt_src);
    rec.alert = Some(alert);
    out.push(EventType::Alert, &rec);
}

/// Suricata's `stats` object for a snapshot (only keys its schema knows).
pub fn suricata_stats(s: &Snapshot) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let c = &s.counters;
    let mut events: Map<String, Value> = Map::new();
    for e in DecodeEvent::ALL {
        let n = c.events.get(e.index()).copied().unwrap_or(0);
        if n > 0 {
            let layer = events
                .entry(e.layer())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = layer {
                m.insert(e.event().to_string(), json!(n));
            }
        }
    }
    let t = &c.table;
    let mut stats = json!({
        "uptime": s.uptime_secs,
        "decoder": {
            "pkts": c.pkts,
            "bytes": c.bytes,
            "invalid": c.invalid,
            "ipv4": c.ipv4,
            "ipv6": c.ipv6,
            "ethernet": c.ethernet,
            "raw": c.raw,
            "null": c.null,
            "sll": c.sll,
            "sll2": c.sll2,
            "tcp": c.tcp,
            "udp": c.udp,
            "icmpv4": c.icmpv4,
            "icmpv6": c.icmpv6,
            "vlan": c.vlan,
            "vlan_qinq": c.vlan_qinq,
            "avg_pkt_size": c.bytes.checked_div(c.pkts).unwrap_or(0),
            "max_pkt_size": c.max_pkt_size,
            "event": events,
        },
        "flow": {
            "total": c.flows_created(),
            "active": c.active_flows,
            "tcp": t.created[0],
            "udp": t.created[1],
            "icmpv4": t.created[2].saturating_sub(c.icmpv6_flows),
            "icmpv6": c.icmpv6_flows,
            "tcp_reuse": t.ended_tcp_reuse,
            "emerg_mode_entered": t.emergency_entered,
            "emerg_mode_over": t.emergency_over,
            "mgr": { "flows_timeout": t.ended_timeout, "flows_evicted": t.ended_forced },
            "end": { "state": {
                "new": c.ended_state[0],
                "established": c.ended_state[1],
                "closed": c.ended_state[2],
            }},
        },
        "tcp": {
            "sessions": c.tcp_handshakes,
            "syn": c.tcp_syn,
            "synack": c.tcp_synack,
            "rst": c.tcp_rst,
            "midstream_pickups": c.tcp_midstream,
        },
        "detect": { "alert": c.alerts_total() },
    });
    if !s.source.interfaces.is_empty() {
        let sum = |f: fn(&crate::stats::InterfaceCounters) -> u64| -> u64 {
            s.source.interfaces.iter().map(f).sum()
        };
        stats["capture"] = json!({
            "kernel_packets": sum(|i| i.kernel_packets),
            "kernel_drops": sum(|i| i.kernel_drops),
            "kernel_ifdrops": sum(|i| i.kernel_ifdrops),
            "errors": sum(|i| i.errors),
        });
    }
    stats
}

/// Writes a `stats` record.
pub fn write_stats(out: &mut EveBatch, ctx: &EveContext, ts: Timestamp, stats: &serde_json::Value) {
    let mut rec = Record::new(ts, EventType::Stats, ctx);
    rec.stats = Some(stats);
    out.push(EventType::Stats, &rec);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::flow::{Flow, Initiator};

    fn addr(s: &str) -> Addr {
        Addr::from(s.parse::<std::net::IpAddr>().unwrap())
    }

    fn flows() -> Vec<Flow> {
        let mut v = Vec::new();
        let pairs = [
            (PROTO_TCP, "192.0.2.1", 40000, "198.51.100.2", 80),
            (PROTO_UDP, "10.0.0.1", 5353, "10.0.0.2", 53),
            (PROTO_ICMP, "203.0.113.9", 8, "192.0.2.1", 0),
            (PROTO_ICMPV6, "2001:db8::1", 128, "2001:db8::2", 0),
            (PROTO_SCTP, "2001:db8::1", 1000, "2001:db8::2", 2000),
            (47, "192.0.2.1", 0, "192.0.2.2", 0),
        ];
        for (i, (proto, a, ap, b, bp)) in pairs.into_iter().enumerate() {
            let vlan = if i % 2 == 0 { [0, 0] } else { [100, 200] };
            let (key, lo) = FlowKey::new(addr(a), ap, addr(b), bp, proto, vlan);
            let mut f = Flow::new(key, Timestamp(1_700_000_000_123_456), lo, Initiator::Syn);
            f.last = Timestamp(1_700_000_061_000_001);
            f.pkts = [3, u64::MAX];
            f.bytes = [180, 12_345_678_901];
            if proto == PROTO_TCP {
                f.tcp.segment(true, 0x02, 1, 0, 0, 1024);
                f.tcp.segment(false, 0x12, 9, 2, 0, 1024);
                f.tcp.segment(true, 0x10, 2, 10, 0, 1024);
                f.tcp.segment(true, 0x18, 2, 10, 5, 1024);
                f.tcp.segment(false, 0xff, 10, 7, 0, 0);
                f.tcp_flags = [0x1b, 0xff];
            }
            if matches!(proto, PROTO_ICMP | PROTO_ICMPV6) {
                f.note_icmp(TO_SERVER, (ap as u8, 0));
                f.note_icmp(TO_CLIENT, (ap as u8 + 1, 3));
            }
            f.set_emergency(i == 1);
            if i == 2 {
                f.set_alerted();
            }
            f.iface = (i % 3) as u8;
            v.push(f);
        }
        v
    }

    /// Every kind of record, through the JSON writer (which `push` checks
    /// against the `Serialize` derive in tests), parses back as the EVE
    /// fields it should have.
    #[test]
    fn the_writer_and_serde_agree_on_every_record_kind() {
        for host in [None, Some("sensor \"a\" é\n".to_string())] {
            let ctx = EveContext {
                host,
                cid_seed: 7,
                pkt_src: "wire/pcap",
                ifaces: vec!["eth0".into(), "we\"ird\\if".into()],
                flow_ids: crate::decode::FlowHasher::new(3),
            };
            let mut out = EveBatch::default();
            for (i, f) in flows().iter().enumerate() {
                for r in [
                    EndReason::Timeout,
                    EndReason::Forced,
                    EndReason::Shutdown,
                    EndReason::TcpReuse,
                ] {
                    write_flow(&mut out, &ctx, f, r);
                }
                let pkt = PacketRef {
                    ts: Timestamp(1_700_000_001_000_000),
                    pcap_cnt: i as u64,
                    in_iface: ctx.iface(f.iface),
                    tuple: Some((
                        f.key.proto,
                        f.key.lo,
                        f.key.lo_port,
                        f.key.hi,
                        f.key.hi_port,
                    )),
                    flow_id: Some(ctx.flow_id(f)),
                    vlan: vlan_ids(&f.key),
                };
                let alert = serde_json::json!({"action": "allowed", "signature": "x \"y\"", "metadata": {"n": [1, 2]}});
                let alert = serde_json::value::to_raw_value(&alert).unwrap();
                write_alert(&mut out, &ctx, &pkt, Some(f), &alert);
                write_alert(&mut out, &ctx, &pkt, None, &alert);
                write_decode_anomaly(
                    &mut out,
                    &ctx,
                    &pkt,
                    DecodeEvent::ALL[i % DecodeEvent::ALL.len()],
                );
                write_anomaly(
                    &mut out,
                    &ctx,
                    &PacketRef { tuple: None, ..pkt },
                    "decode",
                    "decoder.tcp.flags_null",
                );
            }
            write_stats(
                &mut out,
                &ctx,
                Timestamp(5),
                &suricata_stats(&Snapshot::default()),
            );
            assert!(out.len() > 40);
            for (t, line) in out.iter() {
                let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                assert_eq!(v["event_type"], t.as_str());
                assert!(v["timestamp"].as_str().unwrap().ends_with("+0000"));
            }
        }
    }
}
