//! The threads: one source, N workers, one output writer.
//!
//! The source reads frames, hashes each one's address pair symmetrically
//! (both directions of a flow, and all flows between two hosts, land on the
//! same worker) and sends batches over a bounded
//! channel per worker ([`dispatch`]); offline, a full channel makes the
//! reader wait, so no frame is lost. Each [`worker`] owns its flows (no
//! locks on the hot path), decodes, tracks flows and writes its own EVE
//! records. The [`output`] thread writes the records to the sinks and merges
//! the workers' stats snapshots, which are cut at the same points of packet
//! time in every worker: the source sends a tick down every queue at each
//! stats interval.
//!
//! [`Engine`] runs the same per-packet path synchronously, on the caller's
//! thread, for tests, benchmarks and fuzzing.

mod clock;
mod dispatch;
#[cfg(feature = "live")]
pub mod live;
mod output;
mod read;
mod worker;

pub use clock::Clock;
pub use worker::is_likely_server_port;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;

use crate::capture::{Frame, LinkType};
use crate::config::Config;
use crate::decode::FlowHasher;
use crate::detect::Detectors;
use crate::output::eve::{EveBatch, EveContext};
use crate::output::sink::SinkReport;
use crate::stats::{Counters, Snapshot, SourceCounters};
use crate::time::{Micros, Timestamp};
use dispatch::{Backpressure, Dispatcher};
use output::OutputThread;
use worker::{Emit, Worker};

/// Batches queued per worker.
const QUEUE_BATCHES: usize = 32;
/// Record batches (at most about 1 MiB each) waiting for the output thread,
/// per worker: what a burst of records can hold in memory.
const OUT_BATCHES: usize = 4;

/// Bytes a batch's frames point into.
enum BatchData {
    /// A chunk of the input, shared with other batches.
    Shared(Arc<crate::capture::file::Chunk>),
    /// Copies of the frames (live capture).
    Owned(Vec<u8>),
}

impl BatchData {
    fn bytes(&self) -> &[u8] {
        match self {
            BatchData::Shared(c) => c.bytes(),
            BatchData::Owned(v) => v,
        }
    }
}

/// A frame inside a batch: where its bytes are, and what the source knows.
#[derive(Clone, Copy, Debug)]
struct FrameRef {
    offset: usize,
    len: u32,
    orig_len: u32,
    ts: Timestamp,
    linktype: LinkType,
    pcap_cnt: u64,
    /// Interface index (live capture; at most 255 interfaces).
    iface: u8,
}

struct Batch {
    data: BatchData,
    frames: Vec<FrameRef>,
    /// When the source sent it (queue latency).
    sealed: Instant,
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
    /// Source counters, uptime (packet time read so far) and latest
    /// packet time.
    Source(SourceCounters, Micros, Option<Timestamp>),
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
    pub memory_cap: u64,
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

fn thread_error(what: &str) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Output {
        path: what.into(),
        source,
    }
}

/// The output thread and the workers of a run, whatever the source.
struct Stages {
    /// One queue per worker.
    txs: Vec<crossbeam_channel::Sender<WorkerMsg>>,
    workers: Vec<thread::JoinHandle<()>>,
    out_tx: crossbeam_channel::Sender<OutMsg>,
    output: thread::JoinHandle<(Snapshot, Vec<SinkReport>)>,
    /// The reputation feed manager, kept until the run ends.
    _feeds: Option<crate::detect::reputation::manager::ManagerHandle>,
}

impl Stages {
    /// Starts the output thread over `outputs` and `n` workers.
    fn start(
        cfg: &Config,
        n: usize,
        outputs: output::Outputs,
        ctx: Arc<EveContext>,
        signals: &Signals,
        live: bool,
    ) -> Result<Stages, RunError> {
        let (out_tx, out_rx) = bounded::<OutMsg>(n * OUT_BATCHES + 4);
        // Spare record batches: a couple per worker.
        let (recycle_tx, recycle_rx) = bounded::<EveBatch>(n * 2);
        let detectors = Arc::new(Detectors::new(cfg));
        // Reputation feeds: loaded now, then kept fresh until the run ends.
        let feeds = crate::detect::reputation::manager::Manager::start(
            &cfg.reputation,
            detectors.reputation.clone(),
            signals.reload.clone(),
        );
        let mut out_thread = OutputThread::new(
            outputs,
            ctx.clone(),
            n + 1,
            signals.reopen.clone(),
            Some(recycle_tx),
        );
        out_thread.memory_cap = cfg.memory.total;
        let output = thread::Builder::new()
            .name("output".into())
            .spawn(move || out_thread.run(out_rx))
            .map_err(thread_error("output thread"))?;
        let mut txs = Vec::with_capacity(n);
        let mut workers = Vec::with_capacity(n);
        let rendezvous = Arc::new(worker::Rendezvous::new(n));
        for id in 0..n {
            let (tx, rx) = bounded::<WorkerMsg>(QUEUE_BATCHES);
            let emit = Emit::Channel {
                tx: out_tx.clone(),
                recycled: recycle_rx.clone(),
            };
            let mut w = Worker::new(id, cfg, n, ctx.clone(), detectors.clone(), emit);
            w.measure_capture = live;
            w.rendezvous = (n > 1).then(|| rendezvous.clone());
            workers.push(
                thread::Builder::new()
                    .name(format!("worker-{id}"))
                    .spawn(move || w.run(rx))
                    .map_err(thread_error("worker thread"))?,
            );
            txs.push(tx);
        }
        Ok(Stages {
            txs,
            workers,
            out_tx,
            output,
            _feeds: feeds,
        })
    }

    /// Waits for the workers (their queues must be closed: every sender
    /// dropped), then for the output thread.
    fn finish(self) -> (Snapshot, Vec<SinkReport>) {
        drop(self.txs);
        for h in self.workers {
            let _ = h.join();
        }
        drop(self.out_tx);
        self.output.join().unwrap_or_default()
    }
}

fn eve_context(cfg: &Config, ifaces: Vec<String>) -> Arc<EveContext> {
    Arc::new(EveContext {
        host: cfg.sensor_name.clone(),
        cid_seed: cfg.community_id_seed,
        pkt_src: "wire/pcap",
        ifaces,
        flow_ids: FlowHasher::new(cfg.hash_seed),
    })
}

/// Reads every input and processes it; returns when everything is written.
pub fn run_read(opts: ReadOptions) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let cfg = &opts.config;
    let n = opts.workers.max(1);
    let outputs = output::open_outputs(&opts.output, cfg)?;
    let ctx = eve_context(cfg, Vec::new());
    let stages = Stages::start(cfg, n, outputs, ctx, &opts.signals, false)?;
    let mut dispatch = Dispatcher::new(
        stages.txs.clone(),
        FlowHasher::new(cfg.hash_seed),
        Backpressure::Wait,
    );
    let outcome = read::read_inputs(
        &opts.inputs,
        cfg,
        opts.progress,
        &opts.signals.stop,
        &mut dispatch,
        &stages.out_tx,
    );
    drop(dispatch);
    let (snapshot, sinks) = stages.finish();
    Ok(RunReport {
        snapshot,
        wall: started.elapsed(),
        input_errors: outcome.input_errors,
        sinks,
        workers: n,
        interrupted: opts.signals.stop.load(Ordering::Relaxed),
        memory_cap: cfg.memory.total,
    })
}

/// The per-packet path of one worker, run synchronously on the caller's
/// thread: decode, flows, detectors, EVE records. No threads, no channels,
/// no files; for tests, benchmarks and fuzzing.
pub struct Engine {
    worker: Worker,
    pcap_cnt: u64,
}

impl Engine {
    pub fn new(cfg: &Config) -> Self {
        let ctx = eve_context(cfg, Vec::new());
        Engine {
            worker: Worker::new(
                0,
                cfg,
                1,
                ctx,
                Arc::new(Detectors::new(cfg)),
                Emit::Collect(Vec::new()),
            ),
            pcap_cnt: 0,
        }
    }

    /// Processes one frame. Times must not go backwards (the caller makes
    /// them monotonic, as the file reader's [`Clock`] does).
    pub fn process(&mut self, frame: &Frame<'_>) {
        self.pcap_cnt += 1;
        let f = FrameRef {
            offset: 0,
            len: u32::try_from(frame.data.len()).unwrap_or(u32::MAX),
            orig_len: frame.orig_len,
            ts: frame.ts,
            linktype: frame.linktype,
            pcap_cnt: self.pcap_cnt,
            iface: u8::try_from(frame.iface).unwrap_or(u8::MAX),
        };
        self.worker.process_frame(&f, frame.data);
    }

    /// Takes the EVE lines written so far.
    pub fn take_events(&mut self) -> EveBatch {
        self.worker.flush_events();
        let mut all = EveBatch::default();
        if let Emit::Collect(msgs) = &mut self.worker.emit {
            for m in msgs.drain(..) {
                if let OutMsg::Events(b) = m {
                    all.append(b);
                }
            }
        }
        all
    }

    /// Ends every flow (as at end of input) and returns the counters and
    /// the remaining EVE lines.
    pub fn finish(mut self) -> (Counters, EveBatch) {
        self.worker.finish();
        let mut counters = Counters::default();
        let mut all = EveBatch::default();
        if let Emit::Collect(msgs) = &mut self.worker.emit {
            for m in msgs.drain(..) {
                match m {
                    OutMsg::Events(b) => all.append(b),
                    OutMsg::Stats(_, part) => {
                        if let StatsPart::Worker(c) = *part {
                            counters = c;
                        }
                    }
                }
            }
        }
        (counters, all)
    }
}
