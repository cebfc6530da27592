//! Detector cost per event, on generated packet sequences.
//!
//! Two layers:
//! - `detect/*`: the detector structs alone (`Detectors`, as the workers
//!   share them), one call per event: a scan probe and its refusal, a SYN
//!   to a flooded victim, a SYN from a server port (and, the common case, a
//!   client's SYN that is not one), a connection a role may not open.
//! - `engine/*`: the same situations as Ethernet frames through
//!   `pipeline::Engine` (decode, flow table, detectors, EVE records), so the
//!   cost of an event is what a worker pays for it.
//!
//! Fixtures are built outside the timed loop, each iteration starts from
//! fresh detector state (setup, not timed), and every iteration checks the
//! alerts it expects, so a benchmark whose situation stopped raising its
//! alert fails instead of timing nothing.

use std::hint::black_box;

use backflow::capture::{Frame, LinkType};
use backflow::config::Config;
use backflow::decode::{Addr, PROTO_TCP};
use backflow::detect::scan::{Outcome, Technique};
use backflow::detect::{Alert, Detectors, Kind};
use backflow::pipeline::Engine;
use backflow::time::Timestamp;
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use etherparse::PacketBuilder;

/// Packet time of the fixtures: 2023-11-14, microseconds.
const T0: u64 = 1_700_000_000_000_000;

/// A policy with published servers (10.1.0.0/24: tcp/443), database hosts
/// that may not connect out (10.2.0.0/24) and workstations that may use the
/// web (10.3.0.0/16). No signature rules: the shipped ones alert on probes
/// to SSH and Telnet, and their cost is measured in `benches/rules.rs`.
const POLICY: &str = r#"
[rules]
files = []

[[hosts]]
addr = "10.1.0.0/24"
role = "web"
services = ["tcp/443"]

[[hosts]]
addr = "10.2.0.0/24"
role = "db"

[[hosts]]
addr = "10.3.0.0/16"
role = "workstation"

[roles.db]
egress = []

[roles.workstation]
egress = ["web", "dns"]
"#;

fn config() -> Config {
    Config::parse(POLICY, "bench.toml").expect("bench policy")
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> Addr {
    Addr::from([a, b, c, d])
}

/// The four bytes of an IPv4 address.
fn octets(a: Addr) -> [u8; 4] {
    let b = a.0;
    [b[12], b[13], b[14], b[15]]
}

fn count(alerts: &[Alert], kind: Kind) -> usize {
    alerts.iter().filter(|a| a.kind() == Some(kind)).count()
}

/// Alert kinds in order, for failure messages.
fn kinds(alerts: &[Alert]) -> Vec<&'static str> {
    alerts.iter().map(|a| a.name()).collect()
}

/// One scan probe: scanner, target, port, time.
type Probe = (Addr, Addr, u16, Timestamp);

/// 50 external scanners, each probing 200 ports of its own home host, every
/// probe refused: one `port_scan` per scanner.
fn scan_probes() -> Vec<Probe> {
    let mut v = Vec::new();
    for port in 0..200u16 {
        for s in 0..50u8 {
            let t = Timestamp(T0 + v.len() as u64 * 100);
            v.push((ip(203, 0, 113, s + 1), ip(10, 0, 0, s + 1), 1 + port, t));
        }
    }
    v
}

/// Spoofed SYNs, 5000 to each of 20 victims, interleaved: one `syn_flood`
/// per victim.
fn flood_syns() -> Vec<Probe> {
    let mut v = Vec::new();
    for i in 0..100_000u32 {
        let src = ip(
            1 + (i % 200) as u8,
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
        );
        let t = Timestamp(T0 + u64::from(i) * 10);
        v.push((src, ip(10, 0, 1, 1 + (i % 20) as u8), 80, t));
    }
    v
}

/// SYNs leaving a port: (source, sport, destination, dport, time).
type Syn = (Addr, u16, Addr, u16, Timestamp);

/// 100 published servers each sending 100 SYNs from tcp/443: one
/// `reversed_role` per server.
fn server_port_syns() -> Vec<Syn> {
    let mut v = Vec::new();
    for d in 0..100u16 {
        for s in 0..100u8 {
            let t = Timestamp(T0 + v.len() as u64 * 100);
            let dst = ip(198, 51, 100, 1 + (d % 200) as u8);
            v.push((ip(10, 1, 0, s + 1), 443, dst, 40_000 + d, t));
        }
    }
    v
}

/// Ordinary client SYNs from ephemeral ports to web servers: no alert.
fn client_syns() -> Vec<Syn> {
    (0..10_000u32)
        .map(|i| {
            let t = Timestamp(T0 + u64::from(i) * 100);
            let src = ip(10, 3, (i >> 8) as u8, i as u8);
            let dst = ip(203, 0, 113, 1 + (i % 250) as u8);
            (src, 30_000 + (i % 30_000) as u16, dst, 443, t)
        })
        .collect()
}

/// Connections opened: (client, server, port, time).
type Open = (Addr, Addr, u16, Timestamp);

/// 100 database hosts opening 10 connections to each of 10 web servers:
/// one `egress_violation` per (host, server), 1000 in all.
fn db_opens() -> Vec<Open> {
    let mut v = Vec::new();
    for _ in 0..10 {
        for srv in 0..10u8 {
            for h in 0..100u8 {
                let t = Timestamp(T0 + v.len() as u64 * 100);
                v.push((ip(10, 2, 0, h + 1), ip(198, 51, 100, srv + 1), 443, t));
            }
        }
    }
    v
}

/// The same from workstations, which may use the web: no alert.
fn workstation_opens() -> Vec<Open> {
    db_opens()
        .into_iter()
        .map(|(c, s, p, t)| (ip(10, 3, 0, octets(c)[3]), s, p, t))
        .collect()
}

/// Times `feed` over a fixture of `events` events, each iteration from
/// fresh detectors, and checks that it raised exactly `want` alerts, all of
/// `kind`.
fn bench_detectors(
    g: &mut BenchmarkGroup<'_, WallTime>,
    cfg: &Config,
    name: &str,
    events: usize,
    kind: Kind,
    want: usize,
    feed: impl Fn(&Detectors, &mut Vec<Alert>),
) {
    g.throughput(Throughput::Elements(events as u64));
    g.bench_function(name, |b| {
        b.iter_batched(
            || Detectors::new(cfg),
            |d| {
                let mut out = Vec::new();
                feed(&d, &mut out);
                assert_eq!(count(&out, kind), want, "{:?}", kinds(&out));
                assert_eq!(out.len(), want);
                d
            },
            BatchSize::LargeInput,
        )
    });
}

fn detectors(c: &mut Criterion) {
    let cfg = config();
    let mut g = c.benchmark_group("detect");

    let probes = scan_probes();
    bench_detectors(
        &mut g,
        &cfg,
        "scan_probe_refused",
        probes.len(),
        Kind::PortScan,
        50,
        |d, out| {
            for &(src, dst, port, t) in &probes {
                d.scan
                    .on_probe(&d.policy, src, dst, PROTO_TCP, port, Technique::Syn, t, out);
                d.scan.on_outcome(
                    &d.policy,
                    src,
                    dst,
                    PROTO_TCP,
                    port,
                    Outcome::Rejected,
                    false,
                    t,
                    out,
                );
            }
        },
    );

    let syns = flood_syns();
    bench_detectors(
        &mut g,
        &cfg,
        "syn_flood_syn",
        syns.len(),
        Kind::SynFlood,
        20,
        |d, out| {
            let mut flooded = 0usize;
            for &(src, dst, port, t) in &syns {
                flooded += usize::from(d.flood.on_syn(src, dst, port, t, out));
            }
            // Once reported, the rest of each victim's SYNs are flooded.
            assert!(flooded > syns.len() * 9 / 10, "{flooded}");
        },
    );

    for (name, fixture, want) in [
        ("reversed_role_server_syn", server_port_syns(), 100),
        ("reversed_role_client_syn", client_syns(), 0),
    ] {
        bench_detectors(
            &mut g,
            &cfg,
            name,
            fixture.len(),
            Kind::ReversedRole,
            want,
            |d, out| {
                for &(src, sport, dst, dport, t) in &fixture {
                    // As the worker asks: is the source scanning?
                    let scanning = d.scan.is_probing(&src, 5);
                    d.role
                        .on_syn(&d.policy, src, sport, dst, dport, scanning, t, out);
                }
            },
        );
    }

    for (name, fixture, want) in [
        ("egress_open_denied", db_opens(), 1000),
        ("egress_open_allowed", workstation_opens(), 0),
    ] {
        bench_detectors(
            &mut g,
            &cfg,
            name,
            fixture.len(),
            Kind::EgressViolation,
            want,
            |d, out| {
                for &(client, server, port, t) in &fixture {
                    d.egress
                        .on_open(&d.policy, client, server, PROTO_TCP, port, t, out);
                }
            },
        );
    }
    g.finish();
}

/// Ethernet frames with their packet times.
struct Capture {
    frames: Vec<(Timestamp, Vec<u8>)>,
    /// Events the capture is made of (probes, SYNs, connections).
    events: u64,
}

const SYN: u8 = 1;
const SYN_ACK: u8 = 2;
const ACK: u8 = 3;
const RST_ACK: u8 = 4;

impl Capture {
    fn new() -> Capture {
        Capture {
            frames: Vec::new(),
            events: 0,
        }
    }

    fn tcp(&mut self, src: Addr, sport: u16, dst: Addr, dport: u16, what: u8) {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
            octets(src),
            octets(dst),
            64,
        );
        // A raw scanner's window for probes, an OS stack's otherwise.
        let b = match what {
            SYN => b.tcp(sport, dport, 1000, 1024).syn(),
            SYN_ACK => b.tcp(sport, dport, 5000, 64_240).syn().ack(1001),
            ACK => b.tcp(sport, dport, 1001, 64_240).ack(5001),
            _ => b.tcp(sport, dport, 0, 0).rst().ack(1001),
        };
        let mut f = Vec::with_capacity(64);
        b.write(&mut f, &[]).expect("frame");
        let t = Timestamp(T0 + self.frames.len() as u64 * 50);
        self.frames.push((t, f));
    }

    /// Runs the frames through a fresh engine; returns the alerts by kind.
    fn run(&self, cfg: &Config) -> (backflow::stats::Counters, u64) {
        let mut e = Engine::new(cfg);
        for (ts, data) in &self.frames {
            e.process(&Frame {
                ts: *ts,
                linktype: LinkType::Ethernet,
                data,
                orig_len: data.len() as u32,
                iface: 0,
            });
        }
        let (counters, records) = e.finish();
        (counters, black_box(records.len() as u64))
    }
}

/// An external scanner SYN-scans 2000 ports of each of 5 home hosts; every
/// port refuses (RST): one `port_scan` per host.
fn engine_scan() -> Capture {
    let mut c = Capture::new();
    for port in 1..=2000u16 {
        for h in 1..=5u8 {
            let (s, d) = (ip(203, 0, 113, 66), ip(10, 0, 0, h));
            c.tcp(s, 40_000, d, port, SYN);
            c.tcp(d, port, s, 40_000, RST_ACK);
            c.events += 1;
        }
    }
    c
}

/// 20000 spoofed SYNs to one web server: one `syn_flood`.
fn engine_flood() -> Capture {
    let mut c = Capture::new();
    for i in 0..20_000u32 {
        let src = ip(1 + (i % 200) as u8, (i >> 8) as u8, i as u8, 7);
        c.tcp(src, 1024 + (i % 60_000) as u16, ip(10, 0, 1, 1), 80, SYN);
        c.events += 1;
    }
    c
}

/// A published server (10.1.0.5) opening 5000 connections from tcp/443,
/// each answered: one `reversed_role`.
fn engine_reversed() -> Capture {
    let mut c = Capture::new();
    let srv = ip(10, 1, 0, 5);
    for i in 0..5000u32 {
        let dst = ip(198, 51, 100, 1 + (i % 200) as u8);
        let dport = 20_000 + (i / 200) as u16;
        c.tcp(srv, 443, dst, dport, SYN);
        c.tcp(dst, dport, srv, 443, SYN_ACK);
        c.events += 1;
    }
    c
}

/// 100 database hosts completing 10 handshakes each with external web
/// servers: one `egress_violation` per (host, server).
fn engine_egress() -> Capture {
    let mut c = Capture::new();
    for srv in 1..=10u8 {
        for h in 1..=100u8 {
            let (cl, sv) = (ip(10, 2, 0, h), ip(198, 51, 100, srv));
            let sport = 30_000 + u16::from(srv);
            c.tcp(cl, sport, sv, 443, SYN);
            c.tcp(sv, 443, cl, sport, SYN_ACK);
            c.tcp(cl, sport, sv, 443, ACK);
            c.events += 1;
        }
    }
    c
}

fn engine(c: &mut Criterion) {
    let cfg = config();
    let mut g = c.benchmark_group("engine");
    g.sample_size(20);
    let cases = [
        ("scan_probe_refused", engine_scan(), "port_scan", 5),
        ("syn_flood_syn", engine_flood(), "syn_flood", 1),
        ("reversed_role_syn", engine_reversed(), "reversed_role", 1),
        (
            "egress_open_denied",
            engine_egress(),
            "egress_violation",
            1000,
        ),
    ];
    for (name, cap, kind, want) in &cases {
        g.throughput(Throughput::Elements(cap.events));
        g.bench_function(*name, |b| {
            b.iter(|| {
                let (counters, _) = cap.run(&cfg);
                assert_eq!(counters.pkts, cap.frames.len() as u64);
                assert_eq!(
                    counters.alerts.get(kind).copied().unwrap_or(0),
                    *want,
                    "{:?}",
                    counters.alerts
                );
                // Nothing else fires on these sequences.
                assert_eq!(counters.alerts.values().sum::<u64>(), *want);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, detectors, engine);
criterion_main!(benches);
