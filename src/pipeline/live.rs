//! The source of `backflow live`: one capture thread per interface, the
//! same workers, detectors and outputs as `read`.
//!
//! A capture thread never waits for a worker: when a worker's queue is
//! full the batch is dropped and counted (`queue_drops`), next to the
//! kernel's own drop counters, so a slow stage shows up as a number
//! instead of as a stalled capture ring. Time is the capture's: frame
//! timestamps, and for the stats interval and for expiring the flows of a
//! quiet network, a ticker on this thread that tells the workers the wall
//! time (which is what capture timestamps are).
//!
//! An interface that goes down or disappears is logged, counted and
//! reopened with backoff (100 ms doubling to 5 s) while the others keep
//! running. SIGINT/SIGTERM stop the captures; what is queued is processed,
//! every active flow is logged (`reason: shutdown`) and the outputs are
//! flushed before the run returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::dispatch::{Backpressure, Dispatcher};
use super::output;
use super::{OutMsg, OutputTarget, RunReport, Signals, StatsPart, WorkerMsg};
use crate::capture::file::FrameBytes;
use crate::capture::live::{LiveCapture, LiveError, LiveOptions, Next};
use crate::config::Config;
use crate::decode::FlowHasher;
use crate::stats::{InterfaceCounters, SourceCounters};
use crate::time::{Micros, Timestamp};

/// What to run.
pub struct LiveRunOptions {
    pub interfaces: Vec<String>,
    pub capture: LiveOptions,
    pub config: Config,
    pub output: OutputTarget,
    pub workers: usize,
    pub signals: Signals,
    /// Drop root to this user once captures and outputs are open.
    pub user: Option<String>,
}

/// Why a live run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveRunError {
    #[error(transparent)]
    Capture(#[from] LiveError),
    #[error(transparent)]
    Run(#[from] super::RunError),
    #[error("cannot drop privileges to user `{user}`: {msg}")]
    User { user: String, msg: String },
    #[error("{0} interfaces: at most 255 can be captured by one process")]
    TooManyInterfaces(usize),
}

/// Counters a capture thread shares with the ticker.
#[derive(Default)]
struct Shared {
    packets: AtomicU64,
    bytes: AtomicU64,
    kernel_packets: AtomicU64,
    kernel_drops: AtomicU64,
    kernel_ifdrops: AtomicU64,
    queue_drops: AtomicU64,
    errors: AtomicU64,
    reopens: AtomicU64,
}

impl Shared {
    fn report(&self, name: &str) -> InterfaceCounters {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        InterfaceCounters {
            name: name.to_string(),
            packets: g(&self.packets),
            bytes: g(&self.bytes),
            kernel_packets: g(&self.kernel_packets),
            kernel_drops: g(&self.kernel_drops),
            kernel_ifdrops: g(&self.kernel_ifdrops),
            queue_drops: g(&self.queue_drops),
            errors: g(&self.errors),
            reopens: g(&self.reopens),
        }
    }

    fn kernel(&self, cap: &mut LiveCapture) {
        let k = cap.stats();
        self.kernel_packets.store(k.packets, Ordering::Relaxed);
        self.kernel_drops.store(k.drops, Ordering::Relaxed);
        self.kernel_ifdrops.store(k.ifdrops, Ordering::Relaxed);
    }
}

/// Longest wait for frames before checking for a stop request.
const POLL_WAIT: Duration = Duration::from_millis(100);
/// A partial batch waits at most this long for more frames.
const MAX_BATCH_DELAY: Duration = Duration::from_millis(50);
/// How far the workers' idea of "now" trails the wall clock in live mode.
const TIME_LAG: Micros = Micros(1_000_000);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Sleeps `d` in short steps; false when a stop was requested meanwhile.
fn sleep_unless_stopped(d: Duration, stop: &std::sync::atomic::AtomicBool) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
    }
    !stop.load(Ordering::Relaxed)
}

fn capture_loop(
    mut cap: LiveCapture,
    mut dispatch: Dispatcher,
    shared: Arc<Shared>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut last_flush = Instant::now();
    let mut last_stats = Instant::now();
    let mut pending = 0usize;
    while !stop.load(Ordering::Relaxed) {
        match cap.read() {
            Next::Frame(frame) => {
                shared.packets.fetch_add(1, Ordering::Relaxed);
                shared
                    .bytes
                    .fetch_add(u64::from(frame.orig_len), Ordering::Relaxed);
                dispatch.push(&frame, FrameBytes::Transient, frame.ts, 0);
                pending += 1;
            }
            Next::Idle => {
                // Nothing more right now: hand on what has arrived, then wait.
                if pending > 0 {
                    dispatch.flush();
                    pending = 0;
                    last_flush = Instant::now();
                }
                cap.wait(POLL_WAIT);
            }
            Next::Failed(e) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(iface = %cap.iface, error = %e, "capture failed; reopening with backoff");
                dispatch.flush();
                pending = 0;
                let mut backoff = BACKOFF_MIN;
                loop {
                    if !sleep_unless_stopped(backoff, &stop) {
                        break;
                    }
                    match cap.reopen() {
                        Ok(()) => {
                            shared.reopens.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(iface = %cap.iface, "capture reopened");
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(iface = %cap.iface, error = %e, "reopen failed");
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                        }
                    }
                }
                continue;
            }
        }
        if pending > 0 && last_flush.elapsed() >= MAX_BATCH_DELAY {
            dispatch.flush();
            pending = 0;
            last_flush = Instant::now();
        }
        if last_stats.elapsed() >= Duration::from_secs(1) {
            shared.kernel(&mut cap);
            shared
                .queue_drops
                .store(dispatch.queue_drops, Ordering::Relaxed);
            last_stats = Instant::now();
        }
    }
    dispatch.flush();
    shared.kernel(&mut cap);
    shared
        .queue_drops
        .store(dispatch.queue_drops, Ordering::Relaxed);
    tracing::debug!(iface = %cap.iface, "capture stopped");
}

/// Switches to `user` (and its primary group), clearing supplementary
/// groups. Called once the capture handles and output files are open.
fn drop_privileges(user: &str) -> Result<(), LiveRunError> {
    use nix::unistd::{User, setgid, setgroups, setuid};
    let fail = |msg: String| LiveRunError::User {
        user: user.to_string(),
        msg,
    };
    let u = User::from_name(user)
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("no such user".into()))?;
    setgroups(&[]).map_err(|e| fail(format!("setgroups: {e}")))?;
    setgid(u.gid).map_err(|e| fail(format!("setgid: {e}")))?;
    setuid(u.uid).map_err(|e| fail(format!("setuid: {e}")))?;
    tracing::info!(user, uid = u.uid.as_raw(), "dropped privileges");
    Ok(())
}

/// Captures until SIGINT/SIGTERM; returns when everything is written.
pub fn run_live(opts: LiveRunOptions) -> Result<RunReport, LiveRunError> {
    let started = Instant::now();
    let cfg = &opts.config;
    let n = opts.workers.max(1);
    if opts.interfaces.len() > usize::from(u8::MAX) {
        return Err(LiveRunError::TooManyInterfaces(opts.interfaces.len()));
    }
    // Everything that needs privileges first: the captures, the outputs.
    let mut caps = Vec::new();
    for (i, iface) in opts.interfaces.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        caps.push(LiveCapture::open(iface, index, &opts.capture)?);
    }
    let outputs = output::open_outputs(&opts.output, cfg)?;
    if let Some(user) = &opts.user {
        drop_privileges(user)?;
    }
    let ctx = super::eve_context(cfg, opts.interfaces.clone());
    let stages = super::Stages::start(cfg, n, outputs, ctx, &opts.signals, true)?;

    let mut captures = Vec::new();
    let mut shared = Vec::new();
    for cap in caps {
        let s = Arc::new(Shared::default());
        shared.push((cap.iface.clone(), s.clone()));
        let dispatch = Dispatcher::new(
            stages.txs.clone(),
            FlowHasher::new(cfg.hash_seed),
            Backpressure::Drop,
        );
        let stop = opts.signals.stop.clone();
        let name = format!("capture-{}", cap.iface);
        captures.push(
            thread::Builder::new()
                .name(name)
                .spawn(move || capture_loop(cap, dispatch, s, stop))
                .map_err(super::thread_error("capture thread"))?,
        );
    }
    tracing::info!(interfaces = ?opts.interfaces, workers = n, "capturing");

    // The ticker: stats records every interval, and the time for workers
    // whose flows see no packets.
    let source = |shared: &[(String, Arc<Shared>)]| {
        let interfaces: Vec<InterfaceCounters> =
            shared.iter().map(|(name, s)| s.report(name)).collect();
        SourceCounters {
            frames: interfaces.iter().map(|i| i.packets).sum(),
            bytes_read: interfaces.iter().map(|i| i.bytes).sum(),
            queue_drops: interfaces.iter().map(|i| i.queue_drops).sum(),
            interfaces,
            ..SourceCounters::default()
        }
    };
    let mut control = Dispatcher::new(
        stages.txs.clone(),
        FlowHasher::new(cfg.hash_seed),
        Backpressure::Wait,
    );
    // The ticker's time trails the wall clock by TIME_LAG: frames reach the
    // workers up to a capture block timeout plus a batch delay after they
    // were stamped, and a worker never lets its time step back.
    let lagged = || Timestamp(Timestamp::wall_now().0.saturating_sub(TIME_LAG.0));
    let first = lagged();
    let interval = cfg.stats_interval.0.max(1_000_000);
    let mut next_tick = first.saturating_add(Micros(interval));
    let mut next_advance = first.saturating_add(Micros::from_secs(1));
    while !opts.signals.stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(50));
        let now = lagged();
        if now >= next_tick {
            let part = StatsPart::Source(source(&shared), next_tick.since(first), Some(next_tick));
            let _ = stages
                .out_tx
                .send(OutMsg::Stats(Some(next_tick), Box::new(part)));
            let tick = next_tick;
            control.broadcast(|| WorkerMsg::Tick(tick));
            while next_tick <= now {
                next_tick = next_tick.saturating_add(Micros(interval));
            }
        }
        if now >= next_advance {
            control.broadcast(|| WorkerMsg::Advance(now));
            next_advance = now.saturating_add(Micros::from_secs(1));
        }
    }
    tracing::info!("stopping: draining queues and logging active flows");
    for c in captures {
        let _ = c.join();
    }
    let now = lagged();
    control.broadcast(|| WorkerMsg::Advance(now));
    let part = StatsPart::Source(source(&shared), now.since(first), Some(now));
    let _ = stages.out_tx.send(OutMsg::Stats(None, Box::new(part)));
    drop(control);
    let (snapshot, sinks) = stages.finish();
    Ok(RunReport {
        snapshot,
        wall: started.elapsed(),
        input_errors: Vec::new(),
        sinks,
        workers: n,
        interrupted: false,
        memory_cap: cfg.memory.total,
    })
}

/// Interface names given twice are captured once.
pub fn dedup_interfaces(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in v {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// For `--buffer-size`: the capture buffer as libpcap takes it.
pub fn buffer_bytes(size: u64) -> i32 {
    i32::try_from(size).unwrap_or(i32::MAX)
}
