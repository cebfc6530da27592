//! The per-packet path: a sequence of frames through decoding, the flow
//! table and the detectors (`pipeline::Engine`, one worker, in order, packet
//! time made monotonic by the reader's `Clock` as `backflow read` does).
//!
//! Input: a config byte (bit 0: small caps and low thresholds, so tables
//! fill and detectors fire within a few frames; else the defaults), then
//! frames (see `backflow_fuzz::frames`). Besides not panicking, every frame
//! is counted and every flow created ends in exactly one flow record.
#![no_main]

use std::sync::OnceLock;

use backflow::config::Config;
use backflow::output::eve::{EveBatch, EventType};
use backflow::pipeline::{Clock, Engine};
use libfuzzer_sys::fuzz_target;

/// The lab network's policy with caps and thresholds a few frames reach.
const SMALL: &str = r#"
[flow]
max_flows = 8
recovery_percent = 50
max_time_jump = "1h"
[detect]
max_tracked = 8
[detect.port_scan]
min_ports = 3
min_hosts = 3
[detect.syn_flood]
min_syns = 4
[detect.brute_force]
min_sessions = 2
[anomaly]
rate_limit = 2
"#;

fn configs() -> &'static [Config; 2] {
    static C: OnceLock<[Config; 2]> = OnceLock::new();
    C.get_or_init(|| {
        let policy = include_str!("../../pcaps/lab/policy.toml");
        let small = Config::parse(&format!("{policy}\n{SMALL}"), "small").expect("small config");
        [Config::default(), small]
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&sel, rest)) = input.split_first() else {
        return;
    };
    let cfg = &configs()[usize::from(sel & 1)];
    let frames = backflow_fuzz::frames(rest);
    // The reader makes packet time monotonic before the workers see it.
    let mut clock = Clock::new(cfg.max_time_jump);
    let mut engine = Engine::new(cfg);
    let mut flow_records = 0u64;
    let mut count = |b: &EveBatch| {
        flow_records += b.iter().filter(|(t, _)| *t == EventType::Flow).count() as u64;
    };
    for f in &frames {
        let mut frame = f.frame();
        frame.ts = clock.observe(frame.ts);
        engine.process(&frame);
        count(&engine.take_events());
    }
    let (counters, rest) = engine.finish();
    count(&rest);
    assert_eq!(counters.pkts, frames.len() as u64);
    assert_eq!(counters.flows_created(), flow_records);
    assert_eq!(counters.active_flows, 0);
});
