//! Decoding cost per frame: a generated mix of TCP sessions and DNS.

use backflow::capture::Frame;
use backflow::capture::file::{FrameBytes, Input, read_frames};
use backflow::decode::{FlowHasher, decode, flow_hash};
use backflow::traffic::{GenOptions, Kind, generate};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn frames(kind: Kind, n: u64) -> Vec<(backflow::capture::LinkType, Vec<u8>)> {
    let mut buf = Vec::new();
    generate(
        &mut buf,
        &GenOptions {
            kind,
            packets: n,
            concurrent: 1000,
            seed: 1,
        },
    )
    .expect("generate");
    let mut out = Vec::new();
    let input = Input::from_reader(
        std::path::Path::new("gen"),
        Box::new(std::io::Cursor::new(buf)),
    );
    let (_, err) = read_frames(
        input,
        &mut |f: &Frame<'_>, _: FrameBytes<'_>| out.push((f.linktype, f.data.to_vec())),
        &Default::default(),
    );
    assert!(err.is_none());
    out
}

fn bench(c: &mut Criterion) {
    let mixed = frames(Kind::Mixed, 20_000);
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
    g.bench_function("flow_hash", |b| {
        b.iter(|| {
            let mut nonzero = 0;
            for (lt, f) in &mixed {
                nonzero += usize::from(flow_hash(&h, *lt, f) != 0);
            }
            assert_eq!(nonzero, mixed.len());
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
