//! The whole read path (reader, workers, output) on generated captures.

use backflow::config::Config;
use backflow::pipeline::{OutputTarget, ReadOptions, run_read};
use backflow::traffic::{GenOptions, Kind, generate};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn capture(dir: &std::path::Path, kind: Kind, n: u64) -> std::path::PathBuf {
    let p = dir.join(format!("{kind:?}.pcap"));
    let f = std::fs::File::create(&p).expect("create");
    generate(
        std::io::BufWriter::new(f),
        &GenOptions {
            kind,
            packets: n,
            concurrent: 2000,
            seed: 1,
        },
    )
    .expect("generate");
    p
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 100_000;
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    for kind in [Kind::Mixed, Kind::SynFlood, Kind::Scan] {
        let file = capture(dir.path(), kind, n);
        for workers in [1, 2] {
            let out = dir.path().join(format!("out-{kind:?}-{workers}"));
            g.bench_function(format!("{kind:?}/workers={workers}"), |b| {
                b.iter(|| {
                    let _ = std::fs::remove_dir_all(&out);
                    let report = run_read(ReadOptions {
                        inputs: vec![file.clone()],
                        config: Config::default(),
                        output: OutputTarget::Dir(out.clone()),
                        workers,
                        progress: false,
                        signals: backflow::pipeline::Signals::none(),
                    })
                    .expect("run");
                    assert_eq!(report.snapshot.counters.pkts, n);
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
