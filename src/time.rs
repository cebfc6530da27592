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
        // In 128 bits, exact for any resolution (pcapng allows 2^-n units,
        // which are not whole multiples of a microsecond).
        let micros = match units_per_sec {
            0 => 0,
            1_000_000 => frac,
            u => u64::try_from(u128::from(frac) * 1_000_000 / u128::from(u)).unwrap_or(u64::MAX),
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

/// Length of a formatted timestamp: `2025-03-16T10:30:45.123456+0000`.
pub const TIMESTAMP_LEN: usize = 31;

/// Writes `n` as exactly `width` decimal digits (the low ones).
fn digits(out: &mut [u8], mut n: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

thread_local! {
    /// The last day formatted and its `YYYY-MM-DD` text, None beyond year
    /// 9999: a record's timestamps (packet, flow start and end) mostly
    /// fall on one day, seldom in one second.
    static LAST_DAY: std::cell::Cell<(u64, Option<[u8; 10]>)> =
        const { std::cell::Cell::new((u64::MAX, None)) };
}

const SECS_PER_DAY: u64 = 86_400;

impl Timestamp {
    /// Formats as Suricata does: `2025-03-16T10:30:45.123456+0000` (always
    /// UTC; beyond year 9999 the date is clamped rather than the record
    /// failed). The calendar arithmetic is the `time` crate's; the digits are
    /// written directly, because records are formatted by the hundred
    /// thousand and `fmt` costs more than the rest of a record.
    pub fn format(self) -> [u8; TIMESTAMP_LEN] {
        let secs = self.secs();
        let day = secs / SECS_PER_DAY;
        let (cached, date) = LAST_DAY.with(|c| c.get());
        let date = if cached == day {
            date
        } else {
            let date = time::OffsetDateTime::from_unix_timestamp(
                i64::try_from(day * SECS_PER_DAY).unwrap_or(i64::MAX),
            )
            .ok()
            .filter(|t| (0..=9999).contains(&t.year()))
            .map(|t| {
                let mut p = *b"0000-00-00";
                digits(&mut p[0..4], t.year().unsigned_abs());
                digits(&mut p[5..7], u32::from(u8::from(t.month())));
                digits(&mut p[8..10], u32::from(t.day()));
                p
            });
            LAST_DAY.with(|c| c.set((day, date)));
            date
        };
        let mut prefix = *b"9999-12-31T23:59:59";
        if let Some(date) = date {
            let in_day = (secs % SECS_PER_DAY) as u32;
            prefix[..10].copy_from_slice(&date);
            digits(&mut prefix[11..13], in_day / 3600);
            digits(&mut prefix[14..16], in_day / 60 % 60);
            digits(&mut prefix[17..19], in_day % 60);
        }
        let mut out = *b"0000-00-00T00:00:00.000000+0000";
        out[..19].copy_from_slice(&prefix);
        digits(&mut out[20..26], self.subsec_micros());
        out
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.format();
        f.write_str(std::str::from_utf8(&b).unwrap_or("1970-01-01T00:00:00.000000+0000"))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.format();
        s.serialize_str(std::str::from_utf8(&b).unwrap_or("1970-01-01T00:00:00.000000+0000"))
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
        // The same day again (cached), then another one.
        assert_eq!(
            Timestamp(1_742_121_045_000_007).to_string(),
            "2025-03-16T10:30:45.000007+0000"
        );
        assert_eq!(
            Timestamp(951_782_400_999_999).to_string(),
            "2000-02-29T00:00:00.999999+0000"
        );
        // Beyond year 9999: clamped.
        assert_eq!(
            Timestamp(u64::MAX).to_string(),
            format!("9999-12-31T23:59:59.{:06}+0000", u64::MAX % 1_000_000)
        );
    }

    /// The fast formatter agrees with the `time` crate's own formatting
    /// over a spread of instants (leap years, month and year ends).
    #[test]
    fn formatting_agrees_with_the_time_crate() {
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+0000"
        );
        let mut t: u64 = 0;
        let end = 253_402_300_799_000_000;
        while t < end {
            // A new day, then (mostly) the same day from the cache.
            for t in [t, t + 12_345_678_901].into_iter().filter(|&t| t < end) {
                let ours = Timestamp(t).to_string();
                let theirs = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t) * 1000)
                    .unwrap()
                    .format(&fmt)
                    .unwrap();
                assert_eq!(ours, theirs, "{t}");
            }
            t += 86_399_999_937;
        }
    }

    #[test]
    fn fractions_in_any_resolution() {
        assert_eq!(Timestamp::from_parts(1, 5, 1_000_000), Timestamp(1_000_005));
        assert_eq!(
            Timestamp::from_parts(1, 5_000, 1_000_000_000),
            Timestamp(1_000_005)
        );
        assert_eq!(Timestamp::from_parts(1, 1, 2), Timestamp(1_500_000));
        // Binary resolutions (pcapng if_tsresol 0x80 | n): 2^20 units is not
        // a whole number of microseconds per unit.
        assert_eq!(
            Timestamp::from_parts(0, 1 << 19, 1 << 20),
            Timestamp(500_000)
        );
        assert_eq!(
            Timestamp::from_parts(0, (1 << 20) - 1, 1 << 20),
            Timestamp(999_999)
        );
        assert_eq!(
            Timestamp::from_parts(0, 3 << 61, 1 << 63),
            Timestamp(750_000)
        );
        // A fraction larger than a second (bad file) is clamped, never overflows.
        assert_eq!(
            Timestamp::from_parts(u64::MAX, u64::MAX, 1),
            Timestamp(u64::MAX)
        );
    }
}
