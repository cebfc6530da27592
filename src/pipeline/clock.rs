//! Packet time as the pipeline sees it.
//!
//! Captures are not clean: a timestamp may go backwards (reordered capture
//! buffers, merged files) or jump years ahead (a bad clock on the capturing
//! host). The [`Clock`] never goes backwards and holds a large forward jump
//! until several packets in a row confirm it, so a single bad timestamp can
//! neither stall nor mass-expire the flow table. Both anomalies are counted.

use crate::time::{Micros, Timestamp};

/// Packet time, as a worker or the source sees it: never goes backwards,
/// and a jump forward beyond `max_jump` is held until four packets in a row
/// confirm it (a single bad timestamp must not expire every flow).
#[derive(Clone, Debug)]
pub struct Clock {
    now: Option<Timestamp>,
    max_jump: Micros,
    pending: u32,
    pub backwards: u64,
    pub jumps: u64,
}

impl Clock {
    pub const CONFIRM: u32 = 4;

    pub fn new(max_jump: Micros) -> Self {
        Clock {
            now: None,
            max_jump,
            pending: 0,
            backwards: 0,
            jumps: 0,
        }
    }

    pub fn now(&self) -> Option<Timestamp> {
        self.now
    }

    /// Observes a packet timestamp; returns the time to use for it.
    pub fn observe(&mut self, ts: Timestamp) -> Timestamp {
        let Some(now) = self.now else {
            self.now = Some(ts);
            return ts;
        };
        if ts < now {
            self.backwards += 1;
            self.pending = 0;
            return now;
        }
        if ts.since(now) > self.max_jump {
            if self.pending == 0 {
                self.jumps += 1;
            }
            self.pending += 1;
            if self.pending >= Self::CONFIRM {
                self.pending = 0;
                self.now = Some(ts);
                return ts;
            }
            return now;
        }
        self.pending = 0;
        self.now = Some(ts);
        ts
    }

    /// Restarts at `ts`, wherever the clock was.
    pub fn rebase(&mut self, ts: Timestamp) {
        self.now = Some(ts);
        self.pending = 0;
    }

    /// Whether `ts` does not continue this clock's time (earlier, or later
    /// by more than the jump limit).
    pub fn is_discontinuous(&self, ts: Timestamp) -> bool {
        self.now
            .is_some_and(|n| ts < n || ts.since(n) > self.max_jump)
    }

    /// Advances to `ts` (a tick from the source) if it is later.
    pub fn advance(&mut self, ts: Timestamp) {
        if self.now.is_none_or(|n| ts > n) {
            self.now = Some(ts);
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_holds_outliers_and_confirms_real_jumps() {
        let mut c = Clock::new(Micros::from_secs(3600));
        assert_eq!(c.observe(Timestamp(1_000_000)), Timestamp(1_000_000));
        // One packet from the year 2100, then normal time again.
        assert_eq!(
            c.observe(Timestamp(4_102_444_800_000_000)),
            Timestamp(1_000_000)
        );
        assert_eq!(c.observe(Timestamp(2_000_000)), Timestamp(2_000_000));
        assert_eq!(c.jumps, 1);
        // Backwards.
        assert_eq!(c.observe(Timestamp(1_500_000)), Timestamp(2_000_000));
        assert_eq!(c.backwards, 1);
        // A real gap of a day: held for three packets, then taken.
        let day = 86_400_000_000;
        for i in 0..Clock::CONFIRM - 1 {
            assert_eq!(
                c.observe(Timestamp(day + u64::from(i))),
                Timestamp(2_000_000)
            );
        }
        assert_eq!(c.observe(Timestamp(day + 10)), Timestamp(day + 10));
        assert_eq!(c.jumps, 2);
    }
}
