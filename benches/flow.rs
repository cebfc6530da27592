//! Flow table cost: inserts, lookups and expiry, and the TCP tracker.

use backflow::decode::{Addr, PROTO_TCP};
use backflow::flow::tcp::TcpTracker;
use backflow::flow::{EndReason, Flow, FlowKey, FlowTable, Initiator, TableConfig};
use backflow::time::Timestamp;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn keys(n: u32) -> Vec<(FlowKey, bool)> {
    (0..n)
        .map(|i| {
            let src = Addr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            FlowKey::new(
                src,
                1024 + (i % 60_000) as u16,
                Addr::from([198, 51, 100, 10]),
                80,
                PROTO_TCP,
                [0; 2],
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let ks = keys(100_000);
    let mut g = c.benchmark_group("flow");
    g.throughput(Throughput::Elements(ks.len() as u64));
    g.bench_function("insert_then_lookup", |b| {
        b.iter_batched(
            || FlowTable::new(TableConfig::default(), 1),
            |mut t| {
                let mut ended = 0u64;
                let mut on_end = |_: &Flow, _: EndReason| ended += 1;
                for (i, (k, lo)) in ks.iter().enumerate() {
                    let ts = Timestamp(i as u64);
                    t.insert(Flow::new(*k, ts, *lo, Initiator::Syn), ts, &mut on_end);
                }
                let found = ks.iter().filter(|(k, _)| t.lookup(k).is_some()).count();
                assert_eq!(found, ks.len());
                t.drain(EndReason::Shutdown, &mut on_end);
                assert_eq!(ended, ks.len() as u64);
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("capped_eviction", |b| {
        let cfg = TableConfig {
            max_flows: 10_000,
            ..TableConfig::default()
        };
        b.iter_batched(
            || FlowTable::new(cfg.clone(), 1),
            |mut t| {
                let mut ended = 0u64;
                let mut on_end = |_: &Flow, _: EndReason| ended += 1;
                for (i, (k, lo)) in ks.iter().enumerate() {
                    let ts = Timestamp(i as u64);
                    t.insert(Flow::new(*k, ts, *lo, Initiator::Syn), ts, &mut on_end);
                }
                assert_eq!(t.len(), 10_000);
                assert_eq!(ended, ks.len() as u64 - 10_000);
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
    c.bench_function("tcp_tracker_connection", |b| {
        b.iter(|| {
            let mut t = TcpTracker::default();
            t.segment(true, 0x02, 100, 0, 0, 1000);
            t.segment(false, 0x12, 900, 101, 0, 1000);
            t.segment(true, 0x10, 101, 901, 0, 1000);
            for i in 0..20u32 {
                t.segment(false, 0x18, 901 + i * 1448, 101, 1448, 1000);
            }
            t.segment(true, 0x11, 101, 901 + 20 * 1448, 0, 1000);
            t.segment(false, 0x11, 901 + 20 * 1448, 102, 0, 1000);
            assert_eq!(t.conn_state(), "SF");
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
