//! The output thread: the single writer of every sink.
//!
//! Workers send finished batches of EVE lines; this thread hands each line
//! to every sink whose filter accepts its event type, merges the workers'
//! and the source's stats parts per tick into one `stats` record (and a line
//! of `stats.json`), reopens files on SIGHUP, and flushes everything when
//! the input is quiet and at the end.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::{OutMsg, OutputTarget, RunError, StatsPart};
use crate::config::{Config, OutputKind, OutputSpec};
use crate::output::eve::{self, EveBatch, EveContext};
use crate::output::net::{Conn, Queued, RedisConn, SyslogConn, UnixConn};
use crate::output::sink::{Filter, LineSink, Policy, Rotation, SinkReport};
use crate::stats::{Snapshot, StageLatency};
use crate::time::{Micros, Timestamp};

/// The run's sinks.
pub(crate) struct Outputs {
    lines: Vec<LineSink>,
    queued: Vec<Queued>,
    /// `stats.json`: every counter, in backflow's own layout.
    stats_file: Option<LineSink>,
}

pub(crate) fn open_outputs(target: &OutputTarget, cfg: &Config) -> Result<Outputs, RunError> {
    let open_err = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| RunError::Output { path, source }
    };
    let dir = match target {
        OutputTarget::Dir(dir) => {
            std::fs::create_dir_all(dir).map_err(open_err(dir))?;
            Some(dir.clone())
        }
        OutputTarget::Stdout => None,
    };
    let mut specs = cfg.outputs.clone();
    if specs.is_empty() {
        specs.push(OutputSpec {
            kind: OutputKind::File {
                path: cfg.eve_filename.clone(),
                rotation: Rotation::default(),
            },
            types: vec![],
            policy: Policy::Drop,
            buffer: 0,
            flush_timeout: Duration::from_secs(5),
        });
    }
    let mut out = Outputs {
        lines: Vec::new(),
        queued: Vec::new(),
        stats_file: None,
    };
    for spec in specs {
        let filter = Filter(spec.types.clone());
        let queued = |name: String, conn: Box<dyn Conn>| {
            Queued::start(
                name,
                filter.clone(),
                spec.policy,
                spec.buffer,
                spec.flush_timeout,
                conn,
            )
        };
        match spec.kind {
            // `-o -`: EVE goes to standard output instead of files.
            OutputKind::File { .. } | OutputKind::Stdout if dir.is_none() => {
                out.lines.push(LineSink::stdout(filter))
            }
            OutputKind::Stdout => out.lines.push(LineSink::stdout(filter)),
            OutputKind::File { path, rotation } => {
                let path = dir
                    .as_ref()
                    .map_or_else(|| PathBuf::from(&path), |d| d.join(&path));
                out.lines.push(
                    LineSink::file(&path, filter, spec.policy, rotation)
                        .map_err(open_err(&path))?,
                );
            }
            OutputKind::UnixDgram(p) => out.queued.push(queued(
                format!("unix_dgram:{p}"),
                Box::new(UnixConn::new(p, false)),
            )),
            OutputKind::UnixStream(p) => out.queued.push(queued(
                format!("unix_stream:{p}"),
                Box::new(UnixConn::new(p, true)),
            )),
            OutputKind::Syslog(s) => out.queued.push(queued(
                format!("syslog:{}", s.transport),
                Box::new(SyslogConn::new(s)),
            )),
            OutputKind::Redis {
                url,
                mode,
                key,
                batch,
            } => {
                let name = format!("redis:{url}{key}");
                out.queued.push(queued(
                    name,
                    Box::new(RedisConn::new(url, mode, key, batch)),
                ));
            }
        }
    }
    if let Some(dir) = &dir
        && !cfg.stats_file.is_empty()
    {
        let path = dir.join(&cfg.stats_file);
        out.stats_file = Some(
            LineSink::file(&path, Filter::default(), Policy::Drop, Rotation::default())
                .map_err(open_err(&path))?,
        );
    }
    Ok(out)
}

/// Merges stats parts per tick and writes records.
#[derive(Default)]
struct Pending {
    parts: usize,
    snap: Snapshot,
    uptime: Micros,
    latest: Option<Timestamp>,
}

pub(crate) struct OutputThread {
    outputs: Outputs,
    ctx: Arc<EveContext>,
    parts_expected: usize,
    pending: std::collections::BTreeMap<Option<Timestamp>, Pending>,
    last: Snapshot,
    /// Set by SIGHUP: reopen the files.
    reopen: Arc<AtomicBool>,
    /// How long worker batches waited for this thread.
    latency: StageLatency,
    /// Every stage's latency so far (workers send theirs per interval).
    latency_total: crate::stats::Latency,
    /// Written batches go back to the workers for reuse.
    recycle: Option<Sender<EveBatch>>,
    pub(crate) memory_cap: u64,
}

/// Batches larger than this are freed rather than reused.
const RECYCLE_MAX_BYTES: usize = 4 << 20;

impl OutputThread {
    /// `parts_expected`: stats parts that make one tick (workers + source).
    pub(crate) fn new(
        outputs: Outputs,
        ctx: Arc<EveContext>,
        parts_expected: usize,
        reopen: Arc<AtomicBool>,
        recycle: Option<Sender<EveBatch>>,
    ) -> Self {
        OutputThread {
            outputs,
            ctx,
            parts_expected,
            pending: Default::default(),
            last: Snapshot::default(),
            reopen,
            latency: StageLatency::default(),
            latency_total: Default::default(),
            recycle,
            memory_cap: 0,
        }
    }
}

impl OutputThread {
    fn write_batch(&mut self, mut b: EveBatch) {
        if let Some(ready) = b.ready {
            let waited = std::time::Instant::now().saturating_duration_since(ready);
            self.latency
                .record_n(u64::try_from(waited.as_micros()).unwrap_or(u64::MAX), 1);
        }
        for sink in &mut self.outputs.lines {
            for (t, line) in b.iter() {
                if sink.filter.accepts(t) {
                    sink.write(line);
                }
            }
        }
        if !self.outputs.queued.is_empty() {
            let b = Arc::new(b);
            for q in &self.outputs.queued {
                q.enqueue(&b);
            }
            return;
        }
        if let Some(r) = &self.recycle
            && b.buf.capacity() <= RECYCLE_MAX_BYTES
        {
            b.clear();
            // Full: the workers have spares enough; this one is freed.
            let _ = r.try_send(b);
        }
    }

    fn sink_reports(&self) -> Vec<SinkReport> {
        let mut v: Vec<SinkReport> = self
            .outputs
            .lines
            .iter()
            .map(|s| s.counters.report(&s.name))
            .collect();
        v.extend(self.outputs.queued.iter().map(Queued::report));
        v
    }

    fn stats_part(&mut self, tick: Option<Timestamp>, part: StatsPart) {
        let entry = self.pending.entry(tick).or_default();
        entry.parts += 1;
        match part {
            StatsPart::Worker(c) => entry.snap.counters.merge(&c),
            StatsPart::Source(s, uptime, latest) => {
                entry.snap.source = s;
                entry.uptime = uptime;
                entry.latest = latest;
            }
        }
        if entry.parts < self.parts_expected {
            return;
        }
        let Some(Pending {
            mut snap,
            uptime,
            latest,
            ..
        }) = self.pending.remove(&tick)
        else {
            return;
        };
        let ts = tick.or(latest).unwrap_or_default();
        snap.uptime_secs = uptime.as_secs();
        self.latency_total.merge(&snap.counters.latency);
        self.latency_total.output = self.latency.clone();
        snap.counters.latency = self.latency_total.clone();
        snap.process = crate::stats::ProcessMemory::read();
        let stats = eve::suricata_stats(&snap);
        let mut batch = EveBatch::default();
        eve::write_stats(&mut batch, &self.ctx, ts, &stats);
        self.write_batch(batch);
        let outputs = self.sink_reports();
        if let Some(sf) = &mut self.outputs.stats_file {
            let trackers = &snap.counters.trackers;
            let full = serde_json::json!({
                "timestamp": ts,
                "event_type": "stats",
                "stats": stats,
                "backflow": { "counters": &snap.counters, "source": &snap.source,
                    "decode_events": snap.counters.decode_events(), "outputs": outputs,
                    "trackers": trackers, "rules": snap.counters.rules,
                    "memory_cap": self.memory_cap,
                    "process": snap.process },
            });
            if let Ok(mut line) = serde_json::to_vec(&full) {
                line.push(b'\n');
                sf.write(&line);
            }
        }
        self.last = snap;
    }

    fn check_reopen(&mut self) {
        if self.reopen.swap(false, Ordering::Relaxed) {
            tracing::info!("SIGHUP: reopening output files");
            for s in self
                .outputs
                .lines
                .iter_mut()
                .chain(self.outputs.stats_file.iter_mut())
            {
                s.reopen();
            }
        }
    }

    pub(crate) fn run(mut self, rx: Receiver<OutMsg>) -> (Snapshot, Vec<SinkReport>) {
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(OutMsg::Events(b)) => self.write_batch(b),
                Ok(OutMsg::Stats(tick, part)) => self.stats_part(tick, *part),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    // Quiet input (a slow pipe, live capture): put what is
                    // buffered on disk.
                    for s in self
                        .outputs
                        .lines
                        .iter_mut()
                        .chain(self.outputs.stats_file.iter_mut())
                    {
                        s.flush();
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
            self.check_reopen();
        }
        let mut sinks = Vec::new();
        for s in self
            .outputs
            .lines
            .iter_mut()
            .chain(self.outputs.stats_file.iter_mut())
        {
            s.give_up = true;
            s.flush();
            sinks.push(s.counters.report(&s.name));
        }
        for q in &mut self.outputs.queued {
            sinks.push(q.finish());
        }
        (self.last, sinks)
    }
}
