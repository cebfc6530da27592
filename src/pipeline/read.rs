//! The source of `backflow read`: capture files (or standard input) read in
//! order as one stream of packet time.
//!
//! The reader owns the packet clock: it makes frame times monotonic (see
//! [`Clock`]), cuts stats intervals (a tick down every worker queue, and the
//! source's own counters to the output thread), tells idle workers the time
//! so their flows still expire, and starts a new clock when a file's time
//! does not continue the previous file's (another capture).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Sender;

use super::clock::Clock;
use super::dispatch::Dispatcher;
use super::{OutMsg, StatsPart, WorkerMsg};
use crate::capture::file::{FrameBytes, FrameSink, Input, read_frames};
use crate::capture::{Frame, LinkType};
use crate::config::Config;
use crate::stats::SourceCounters;
use crate::time::{Micros, Timestamp};

/// How often (in packet time) the source tells every worker the time.
const ADVANCE_EVERY: Micros = Micros(1_000_000);

/// What reading the inputs produced.
pub(crate) struct ReadOutcome {
    /// One line per input that failed (file and offset).
    pub input_errors: Vec<String>,
}

struct FileReader<'a> {
    dispatch: &'a mut Dispatcher,
    out_tx: &'a Sender<OutMsg>,
    stats_interval: Micros,
    clock: Clock,
    /// Packet time read in the captures before the current one (see
    /// `Rebase`), and where the current one's time started (none before
    /// the first frame): the uptime.
    uptime_before: Micros,
    segment_start: Option<Timestamp>,
    next_tick: Option<Timestamp>,
    next_advance: Option<Timestamp>,
    pcap_cnt: u64,
    source: SourceCounters,
    // Per file:
    path: PathBuf,
    file_start: bool,
    unknown_linktypes: Vec<u32>,
    // Progress display.
    bar: Option<indicatif::ProgressBar>,
    done_bytes: u64,
}

impl FileReader<'_> {
    fn send_source_part(&mut self, tick: Option<Timestamp>, latest: Option<Timestamp>) {
        self.source.time_backwards = self.clock.backwards;
        self.source.time_jumps = self.clock.jumps;
        let uptime = match (self.segment_start, latest) {
            (Some(start), Some(latest)) => self.uptime_before.saturating_add(latest.since(start)),
            _ => self.uptime_before,
        };
        let part = StatsPart::Source(self.source.clone(), uptime, latest);
        let _ = self.out_tx.send(OutMsg::Stats(tick, Box::new(part)));
    }
}

impl FrameSink for FileReader<'_> {
    fn frame(&mut self, frame: &Frame<'_>, bytes: FrameBytes<'_>) {
        self.pcap_cnt += 1;
        if let LinkType::Other(lt) = frame.linktype
            && !self.unknown_linktypes.contains(&lt)
        {
            self.unknown_linktypes.push(lt);
            tracing::warn!(
                "{}: link type {lt} is not supported; its frames are counted and skipped",
                self.path.display()
            );
        }
        if std::mem::take(&mut self.file_start) && self.clock.is_discontinuous(frame.ts) {
            // Another capture: its time does not continue this one's. The
            // uptime counts the time of each.
            if let (Some(start), Some(now)) = (self.segment_start, self.clock.now()) {
                self.uptime_before = self.uptime_before.saturating_add(now.since(start));
            }
            self.segment_start = Some(frame.ts);
            self.dispatch.broadcast(|| WorkerMsg::Rebase(frame.ts));
            self.clock.rebase(frame.ts);
            self.next_tick = Some(frame.ts.saturating_add(self.stats_interval));
            self.next_advance = None;
        }
        let ts = self.clock.observe(frame.ts);
        if self.segment_start.is_none() {
            self.segment_start = Some(ts);
            self.next_tick = Some(ts.saturating_add(self.stats_interval));
        }
        if let Some(tick) = self.next_tick.filter(|t| ts >= *t) {
            self.dispatch.flush();
            self.send_source_part(Some(tick), Some(tick));
            self.dispatch.broadcast(|| WorkerMsg::Tick(tick));
            // The next boundary after this packet, on the interval grid.
            let step = self.stats_interval.0.max(1);
            let behind = ts.0.saturating_sub(tick.0) / step + 1;
            self.next_tick = Some(Timestamp(
                tick.0.saturating_add(behind.saturating_mul(step)),
            ));
        }
        if self.dispatch.workers() > 1 && self.next_advance.is_none_or(|t| ts >= t) {
            if self.next_advance.is_some() {
                self.dispatch.broadcast(|| WorkerMsg::Advance(ts));
            }
            self.next_advance = Some(ts.saturating_add(ADVANCE_EVERY));
        }
        self.dispatch.push(frame, bytes, ts, self.pcap_cnt);
    }

    fn progress(&mut self, pos: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.done_bytes + pos);
        }
    }

    fn idle(&mut self) {
        // The input is slower than we are (a pipe): let the workers see
        // what has arrived instead of waiting for full batches.
        self.dispatch.flush();
    }
}

fn progress_bar(inputs: &[PathBuf]) -> Option<indicatif::ProgressBar> {
    let total: u64 = inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    if total == 0 || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new(total);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(b)
}

/// Reads every input in order into the workers, until the end or `stop`.
pub(crate) fn read_inputs(
    inputs: &[PathBuf],
    cfg: &Config,
    progress: bool,
    stop: &AtomicBool,
    dispatch: &mut Dispatcher,
    out_tx: &Sender<OutMsg>,
) -> ReadOutcome {
    let mut r = FileReader {
        dispatch,
        out_tx,
        stats_interval: cfg.stats_interval,
        clock: Clock::new(cfg.max_time_jump),
        uptime_before: Micros(0),
        segment_start: None,
        next_tick: None,
        next_advance: None,
        pcap_cnt: 0,
        source: SourceCounters::default(),
        path: PathBuf::new(),
        file_start: true,
        unknown_linktypes: Vec::new(),
        bar: if progress { progress_bar(inputs) } else { None },
        done_bytes: 0,
    };
    let mut input_errors = Vec::new();
    for path in inputs {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        r.source.files += 1;
        let input = match Input::open(path) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!("{e}");
                input_errors.push(e.to_string());
                r.source.files_failed += 1;
                continue;
            }
        };
        r.path = Path::new(path).to_owned();
        r.file_start = true;
        r.unknown_linktypes.clear();
        let (summary, err) = read_frames(input, &mut r, stop);
        r.dispatch.release();
        r.done_bytes += summary.bytes_read;
        r.source.frames += summary.frames;
        r.source.bytes_read += summary.bytes_read;
        r.source.caplen_over_snaplen += summary.counters.caplen_over_snaplen;
        r.source.pcapng_unknown_interface += summary.counters.unknown_interface;
        let fc = &summary.counters;
        if fc.caplen_over_snaplen > 0 {
            tracing::warn!(
                "{}: {} records longer than the snap length in the file header; read as captured",
                path.display(),
                fc.caplen_over_snaplen
            );
        }
        if fc.unknown_interface > 0 {
            tracing::warn!(
                "{}: {} packet blocks name an interface their section does not describe; skipped",
                path.display(),
                fc.unknown_interface
            );
        }
        if let Some(e) = err {
            tracing::warn!("{e}");
            input_errors.push(e.to_string());
            r.source.files_failed += 1;
        }
    }
    if let Some(bar) = &r.bar {
        bar.finish_and_clear();
    }
    // Every worker ends at the same packet time.
    if let Some(now) = r.clock.now() {
        r.dispatch.broadcast(|| WorkerMsg::Advance(now));
    }
    r.dispatch.flush();
    let now = r.clock.now();
    r.send_source_part(None, now);
    ReadOutcome { input_errors }
}
