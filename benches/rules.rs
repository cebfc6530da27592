//! Signature rules and reputation: loading all of ET Open, the per-packet
//! cost of decoding and matching with 0, 1000 and all loadable ET Open
//! rules, the whole read path with them, and reputation lookups in a table
//! of two million entries. ET Open comes from `../shared/rules/et-open`; without
//! it, only the reputation benchmark runs.

mod common;

use std::path::{Path, PathBuf};

use backflow::config::{Config, RulesConfig};
use backflow::decode::{Transport, decode};
use backflow::detect::reputation::{Entry, FeedInfo, Table};
use backflow::detect::rules::addr::Vars;
use backflow::detect::rules::parser::split_rules;
use backflow::detect::rules::{FlowBits, FlowFacts, PacketView, RuleSet, Sources};
use backflow::pipeline::{OutputTarget, ReadOptions, Signals, run_read};
use backflow::time::Timestamp;
use backflow::traffic::{Kind, Rng};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn et_open() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/rules/et-open");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("rules benchmarks: skipped: ../shared/rules/et-open is not present");
        None
    }
}

/// (name, text) of every ET Open rule file.
fn et_sources(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("et-open")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("rules");
            (p.display().to_string(), text)
        })
        .collect()
}

fn build(files: &[(String, String)]) -> RuleSet {
    let home = Config::default().policy.home_nets;
    RuleSet::build(
        &Sources {
            rule_files: files.to_vec(),
            ..Sources::default()
        },
        &Vars::new(&home, &Default::default()),
        100_000,
    )
}

/// The texts of the rules of `files` that load, in order.
fn loadable(files: &[(String, String)]) -> Vec<String> {
    let set = build(files);
    let rejected: std::collections::HashSet<(String, usize)> = set
        .report()
        .errors
        .iter()
        .map(|e| (e.file.clone(), e.line))
        .collect();
    let mut out = Vec::new();
    for (name, text) in files {
        for r in split_rules(text) {
            if !rejected.contains(&(name.clone(), r.line())) {
                out.push(r.text);
            }
        }
    }
    out
}

fn bench_et(c: &mut Criterion) {
    let Some(dir) = et_open() else {
        return;
    };
    let files = et_sources(&dir);
    let expected = build(&files).report().loaded;

    let mut g = c.benchmark_group("rules");
    g.sample_size(10);
    g.bench_function("load_et_open", |b| {
        b.iter(|| {
            let set = build(&files);
            assert_eq!(set.report().loaded, expected);
        })
    });

    let all = loadable(&files);
    assert_eq!(all.len(), expected);
    let sets: Vec<(&str, Vec<(String, String)>)> = vec![
        ("0", vec![]),
        (
            "1k",
            vec![("1k.rules".into(), all[..1000.min(all.len())].join("\n"))],
        ),
        ("all", vec![("all.rules".into(), all.join("\n"))]),
    ];

    // Decoding and matching alone, packet by packet, with the flow facts a
    // worker would pass (first packet of a direction on SYNs and UDP).
    let (pcap, fr) = common::generated(Kind::Mixed, 20_000);
    g.throughput(Throughput::Elements(fr.len() as u64));
    for (name, src) in &sets {
        let set = build(src);
        g.bench_function(format!("decode_and_match/{name}"), |b| {
            let mut bits = FlowBits::default();
            let mut out = Vec::new();
            b.iter(|| {
                let mut ip = 0usize;
                out.clear();
                for (lt, f) in &fr {
                    let d = decode(*lt, f, false);
                    let Some(h) = d.ip else { continue };
                    ip += 1;
                    let first = match d.transport {
                        Transport::Tcp(t) => t.flags & 0x02 != 0,
                        _ => true,
                    };
                    let mut v = PacketView::new(&h, &d.transport);
                    v.flow = Some(FlowFacts {
                        to_server: true,
                        established: !first,
                        first_in_direction: first,
                    });
                    set.match_packet(&v, Some(&mut bits), Timestamp(0), &mut out);
                    out.clear();
                }
                assert_eq!(ip, fr.len());
            })
        });
    }

    // The whole read path, one worker, on a larger capture (the time
    // includes loading the rules once per run: see load_et_open).
    drop(pcap);
    let (pcap, big) = common::generated(Kind::Mixed, 100_000);
    let n = big.len() as u64;
    drop(big);
    g.throughput(Throughput::Elements(n));
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("mixed.pcap");
    std::fs::write(&file, &pcap).expect("pcap");
    for (name, src) in &sets {
        let mut rules = RulesConfig {
            files: vec![],
            default_files: false,
            ..RulesConfig::default()
        };
        if let Some((_, text)) = src.first() {
            let p = tmp.path().join(format!("{name}.rules"));
            std::fs::write(&p, text).expect("rules");
            rules.files = vec![p.display().to_string()];
        }
        let config = Config {
            rules,
            ..Config::default()
        };
        let out = tmp.path().join(format!("out-{name}"));
        g.bench_function(format!("read_path/{name}"), |b| {
            b.iter(|| {
                let _ = std::fs::remove_dir_all(&out);
                let report = run_read(ReadOptions {
                    inputs: vec![file.clone()],
                    config: config.clone(),
                    output: OutputTarget::Dir(out.clone()),
                    workers: 1,
                    progress: false,
                    signals: Signals::none(),
                })
                .expect("run");
                assert_eq!(report.snapshot.counters.pkts, n);
            })
        });
    }
    g.finish();
}

fn bench_reputation(c: &mut Criterion) {
    // Two million random IPv4 addresses and 100k IPv6 /48s.
    let mut rng = Rng::new(3);
    let mut listings = Vec::new();
    let v4_base: u128 = 0xffff << 32;
    for _ in 0..2_000_000 {
        let a = v4_base + u128::from(rng.next_u64() as u32);
        listings.push((
            a,
            128,
            Entry {
                feed: 0,
                category: "x".into(),
                score: 100,
            },
        ));
    }
    for _ in 0..100_000 {
        let a = (0x2001_0db8u128 << 96) | (u128::from(rng.next_u64() as u16) << 80);
        listings.push((
            a,
            48,
            Entry {
                feed: 0,
                category: "x".into(),
                score: 100,
            },
        ));
    }
    let table = Table::build(
        vec![FeedInfo {
            name: "bench".into(),
            severity: 2,
        }],
        listings.clone(),
    );
    assert_eq!(table.len(), listings.len());
    // Queries: half listed, half random.
    let queries: Vec<backflow::decode::Addr> = (0..10_000)
        .map(|i| {
            let x = if i % 2 == 0 {
                listings[(rng.next_u64() % 2_000_000) as usize].0
            } else {
                v4_base + u128::from(rng.next_u64() as u32)
            };
            backflow::decode::Addr(x.to_be_bytes())
        })
        .collect();
    let mut g = c.benchmark_group("reputation");
    g.throughput(Throughput::Elements(queries.len() as u64));
    g.bench_function("lookup_2.1M_entries", |b| {
        b.iter(|| {
            let hits: usize = queries.iter().map(|q| table.lookup(q).count()).sum();
            assert!(hits >= queries.len() / 2);
        })
    });
    g.sample_size(10);
    g.bench_function("build_2.1M_entries", |b| {
        b.iter(|| {
            let t = Table::build(
                vec![FeedInfo {
                    name: "bench".into(),
                    severity: 2,
                }],
                listings.clone(),
            );
            assert_eq!(t.len(), listings.len());
        })
    });
    g.finish();
}

criterion_group!(benches, bench_et, bench_reputation);
criterion_main!(benches);
