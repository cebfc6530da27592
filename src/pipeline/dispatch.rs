//! Routing frames to the worker that owns their flow.
//!
//! A frame's worker is the symmetric, seeded hash of its address pair
//! ([`decode::pair_hash`]) scaled to the number of workers: both directions
//! of a flow, and every flow between the same two hosts, land on the same
//! worker (Suricata's `ippair` scheduler), so the connections of one pair
//! are processed in packet order whatever the number of workers. Frames travel in batches over one bounded
//! channel per worker. What happens when a worker's queue is full is the
//! source's choice: a file reader waits (nothing is lost), a live capture
//! drops the batch and counts it rather than stall the capture ring.

use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};

use super::{Batch, BatchData, FrameRef, WorkerMsg};
use crate::capture::Frame;
use crate::capture::file::{Chunk, FrameBytes};
use crate::decode::{self, FlowHasher};
use crate::time::Timestamp;

/// Frames per batch sent to a worker.
pub(crate) const BATCH_FRAMES: usize = 256;

/// What to do when a worker's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backpressure {
    /// Wait for room (offline: nothing may be lost).
    Wait,
    /// Drop the batch and count its frames (live: never stall the capture).
    #[cfg_attr(not(feature = "live"), allow(dead_code))]
    Drop,
}

#[derive(Default)]
struct Builder {
    frames: Vec<FrameRef>,
    /// Copies of frames that do not live in a mapped file.
    owned: Vec<u8>,
}

pub(crate) struct Dispatcher {
    txs: Vec<Sender<WorkerMsg>>,
    builders: Vec<Builder>,
    hasher: FlowHasher,
    backpressure: Backpressure,
    /// The input chunk the current batches point into, if any.
    chunk: Option<Arc<Chunk>>,
    /// Frames dropped at a full queue.
    pub(crate) queue_drops: u64,
}

impl Dispatcher {
    pub(crate) fn new(
        txs: Vec<Sender<WorkerMsg>>,
        hasher: FlowHasher,
        backpressure: Backpressure,
    ) -> Self {
        let builders = txs.iter().map(|_| Builder::default()).collect();
        Dispatcher {
            txs,
            builders,
            hasher,
            backpressure,
            chunk: None,
            queue_drops: 0,
        }
    }

    pub(crate) fn workers(&self) -> usize {
        self.txs.len()
    }

    /// Queues one frame for its flow's worker.
    pub(crate) fn push(
        &mut self,
        frame: &Frame<'_>,
        bytes: FrameBytes<'_>,
        ts: Timestamp,
        pcap_cnt: u64,
    ) {
        if let FrameBytes::Shared { chunk, .. } = &bytes
            && !self.chunk.as_ref().is_some_and(|c| Arc::ptr_eq(c, chunk))
        {
            // Batches point into one chunk: the ones of the last go first.
            self.flush();
            self.chunk = Some(Arc::clone(chunk));
        }
        let n = self.txs.len();
        let w = if n <= 1 {
            0
        } else {
            // The hash scaled to 0..n (its high bits: a multiply rather
            // than a division for every frame).
            let hash = decode::pair_hash(&self.hasher, frame.linktype, frame.data);
            ((u128::from(hash) * n as u128) >> 64) as usize
        };
        let Some(b) = self.builders.get_mut(w) else {
            return;
        };
        let offset = match bytes {
            FrameBytes::Shared { offset, .. } => offset,
            FrameBytes::Transient => {
                let o = b.owned.len();
                b.owned.extend_from_slice(frame.data);
                o
            }
        };
        b.frames.push(FrameRef {
            offset,
            len: u32::try_from(frame.data.len()).unwrap_or(u32::MAX),
            orig_len: frame.orig_len,
            ts,
            linktype: frame.linktype,
            pcap_cnt,
            iface: u8::try_from(frame.iface).unwrap_or(u8::MAX),
        });
        if b.frames.len() >= BATCH_FRAMES {
            self.send(w);
        }
    }

    fn send(&mut self, w: usize) {
        let (Some(b), Some(tx)) = (self.builders.get_mut(w), self.txs.get(w)) else {
            return;
        };
        if b.frames.is_empty() {
            return;
        }
        let data = match &self.chunk {
            Some(c) if b.owned.is_empty() => BatchData::Shared(Arc::clone(c)),
            _ => BatchData::Owned(std::mem::take(&mut b.owned)),
        };
        let frames = std::mem::replace(&mut b.frames, Vec::with_capacity(BATCH_FRAMES));
        let count = frames.len() as u64;
        let msg = WorkerMsg::Frames(Batch {
            data,
            frames,
            sealed: std::time::Instant::now(),
        });
        match self.backpressure {
            Backpressure::Wait => {
                // Fails only when the worker is gone (it panicked): nothing
                // more can be processed for its flows either way.
                let _ = tx.send(msg);
            }
            Backpressure::Drop => match tx.try_send(msg) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => self.queue_drops += count,
                Err(TrySendError::Disconnected(_)) => {}
            },
        }
    }

    /// Sends every partial batch.
    pub(crate) fn flush(&mut self) {
        for w in 0..self.txs.len() {
            self.send(w);
        }
    }

    /// Sends every partial batch and lets go of the current input chunk.
    pub(crate) fn release(&mut self) {
        self.flush();
        self.chunk = None;
    }

    /// Sends the batches so far, then a control message to every worker
    /// (always waiting for room: control messages are never dropped).
    pub(crate) fn broadcast(&mut self, msg: impl Fn() -> WorkerMsg) {
        self.flush();
        for tx in &self.txs {
            let _ = tx.send(msg());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::capture::LinkType;
    use etherparse::PacketBuilder;

    fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, 1, 1000)
            .write(&mut out, b"x")
            .unwrap();
        out
    }

    /// Which worker each frame went to, in order.
    fn route(frames: &[Vec<u8>], workers: usize) -> Vec<usize> {
        let (txs, rxs): (Vec<_>, Vec<_>) =
            (0..workers).map(|_| crossbeam_channel::unbounded()).unzip();
        let mut d = Dispatcher::new(txs, FlowHasher::new(5), Backpressure::Wait);
        let mut pcap_cnt = 0;
        for f in frames {
            pcap_cnt += 1;
            let frame = Frame {
                ts: Timestamp(pcap_cnt),
                linktype: LinkType::Ethernet,
                data: f,
                orig_len: f.len() as u32,
                iface: 0,
            };
            d.push(&frame, FrameBytes::Transient, frame.ts, pcap_cnt);
        }
        d.flush();
        let mut to = vec![usize::MAX; frames.len()];
        for (w, rx) in rxs.iter().enumerate() {
            for msg in rx.try_iter() {
                if let WorkerMsg::Frames(b) = msg {
                    for f in b.frames {
                        to[f.pcap_cnt as usize - 1] = w;
                    }
                }
            }
        }
        to
    }

    /// Every connection between two hosts, both ways, goes to one worker
    /// (an FTP session's control and data, a session and the connection
    /// back); different pairs spread over the workers.
    #[test]
    fn the_connections_of_a_host_pair_go_to_one_worker() {
        let (a, b) = ([192, 0, 2, 10], [198, 51, 100, 20]);
        let mut frames = Vec::new();
        for port in 0..64u16 {
            frames.push(tcp(a, b, 40_000 + port, 21 + port * 100));
            frames.push(tcp(b, a, 21 + port * 100, 40_000 + port));
            frames.push(tcp(b, a, 20, 50_000 + port));
        }
        let to = route(&frames, 4);
        assert!(to.iter().all(|&w| w == to[0] && w < 4), "{to:?}");

        let pairs: Vec<_> = (0..64u8)
            .map(|i| tcp([192, 0, 2, i], b, 40_000, 80))
            .collect();
        let to = route(&pairs, 4);
        let mut used = to.clone();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used, vec![0, 1, 2, 3], "64 pairs over 4 workers: {to:?}");
    }
}
