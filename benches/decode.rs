//! Decoding cost per frame: a generated mix of TCP sessions and DNS.

mod common;

use backflow::decode::{FlowHasher, decode, pair_hash};
use backflow::traffic::Kind;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let (_, mixed) = common::generated(Kind::Mixed, 20_000);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(mixed.len() as u64));
    g.bench_function("mixed", |b| {
        b.iter(|| {
            let mut tcp = 0;
            for (lt, f) in &mixed {
                let d = decode(*lt, f, false);
                tcp += usize::from(matches!(d.transport, backflow::decode::Transport::Tcp(_)));
            }
            assert!(tcp > mixed.len() / 2, "most frames are TCP");
        })
    });
    let h = FlowHasher::new(7);
    g.bench_function("pair_hash", |b| {
        b.iter(|| {
            let mut nonzero = 0;
            for (lt, f) in &mixed {
                nonzero += usize::from(pair_hash(&h, *lt, f) != 0);
            }
            assert_eq!(nonzero, mixed.len());
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
