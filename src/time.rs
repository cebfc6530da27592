//! Packet time.
//!
//! The engine never reads the wall clock: every timeout, window and stats
//! interval is computed from the timestamps of the packets themselves, passed
//! in as arguments (smoltcp's `poll(timestamp)` style). A [`Timestamp`] is a
//! count of microseconds since the Unix epoch, the resolution Suricata's EVE
//! prints; nanosecond captures are truncated to it.

use std::fmt;

/// Microseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

/// A span of packet time in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Micros(pub u64);

impl Micros {
    pub const fn from_secs(s: u64) -> Self {
        Micros(s.saturating_mul(1_000_000))
    }
    pub fn from_duration(d: std::time::Duration) -> Self {
        Micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
    pub const fn as_secs(self) -> u64 {
        self.0 / 1_000_000
    }
    pub const fn saturating_add(self, o: Micros) -> Micros {
        Micros(self.0.saturating_add(o.0))
    }
}

impl Timestamp {
    /// The wall clock as a timestamp. Only for sources and measurements
    /// outside the engine (live capture ticks, latency): the engine itself
    /// runs on the times it is given.
    pub fn wall_now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    /// Builds a timestamp from seconds and a fraction given in `units_per_sec`.
    /// Saturates instead of overflowing: packet timestamps are untrusted.
    pub fn from_parts(secs: u64, frac: u64, units_per_sec: u64) -> Self {
        let micros = match units_per_sec {
            0 => 0,
            1_000_000 => frac,
            u if u > 1_000_000 => frac / (u / 1_000_000).max(1),
            u => frac.saturating_mul(1_000_000) / u,
        };
        Timestamp(
            secs.saturating_mul(1_000_000)
                .saturating_add(micros.min(999_999)),
        )
    }
    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000
    }
    pub const fn subsec_micros(self) -> u32 {
        (self.0 % 1_000_000) as u32
    }
    pub fn saturating_add(self, d: Micros) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }
    /// Time from `earlier` to `self`, zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Micros {
        Micros(self.0.saturating_sub(earlier.0))
    }
}

/// Formats as Suricata does: `2025-03-16T10:30:45.123456+0000` (always UTC).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = i64::try_from(self.secs()).unwrap_or(i64::MAX);
        match time::OffsetDateTime::from_unix_timestamp(secs) {
            Ok(t) => write!(
                f,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+0000",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                self.subsec_micros()
            ),
            // Beyond year 9999: clamp rather than fail the record.
            Err(_) => write!(f, "9999-12-31T23:59:59.{:06}+0000", self.subsec_micros()),
        }
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_suricata() {
        // 2025-03-16T10:30:45.123456Z
        let ts = Timestamp(1_742_121_045_123_456);
        assert_eq!(ts.to_string(), "2025-03-16T10:30:45.123456+0000");
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000+0000");
    }

    #[test]
    fn fractions_in_any_resolution() {
        assert_eq!(Timestamp::from_parts(1, 5, 1_000_000), Timestamp(1_000_005));
        assert_eq!(
            Timestamp::from_parts(1, 5_000, 1_000_000_000),
            Timestamp(1_000_005)
        );
        assert_eq!(Timestamp::from_parts(1, 1, 2), Timestamp(1_500_000));
        // A fraction larger than a second (bad file) is clamped, never overflows.
        assert_eq!(
            Timestamp::from_parts(u64::MAX, u64::MAX, 1),
            Timestamp(u64::MAX)
        );
    }
}
