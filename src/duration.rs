//! Go's `time.Duration` text, byte for byte: `Round` (halves away from zero) then `String`.
//!
//! Event messages carry durations the way the Go driver printed them (`5m0s`, `153ms`,
//! `1h30m0s`); scripts and alerts grep for that text, so it is reproduced exactly here.
//!
//! ```
//! use csi_events::duration::{GoDuration, Precision};
//! use std::time::Duration;
//!
//! let text = GoDuration::rounded(Duration::from_millis(135_456), Precision::Second).to_string();
//! assert_eq!(text, "2m15s");
//! ```

use std::fmt;
use std::time::Duration;

const NANOS_PER_MICRO: u64 = 1_000;
const NANOS_PER_MILLI: u64 = 1_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// The unit a duration is rounded to before it is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `d.Round(time.Millisecond)`: attach durations.
    Millisecond,
    /// `d.Round(time.Second)`: migration timeouts, durations and elapsed times.
    Second,
}

impl Precision {
    fn nanos(self) -> i64 {
        match self {
            Precision::Millisecond => NANOS_PER_MILLI as i64,
            Precision::Second => NANOS_PER_SECOND as i64,
        }
    }
}

/// A Go `time.Duration`: signed nanoseconds in an `i64`, printed as Go prints it.
///
/// ```
/// use csi_events::duration::GoDuration;
/// assert_eq!(GoDuration::from_nanos(5_400_000_000_000).to_string(), "1h30m0s");
/// assert_eq!(GoDuration::from_nanos(-1_500_000).to_string(), "-1.5ms");
/// assert_eq!(GoDuration::from_nanos(0).to_string(), "0s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(i64);

impl GoDuration {
    /// A duration of `nanos` nanoseconds.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// Converts a `std` duration, saturating at Go's maximum (about 292 years).
    pub fn from_std(duration: Duration) -> Self {
        Self(i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX))
    }

    /// `duration` rounded as the message table says, ready to print.
    pub fn rounded(duration: Duration, precision: Precision) -> Self {
        Self::from_std(duration).round(precision)
    }

    /// The nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Go's `Duration.Round(m)`: to the nearest multiple, halves away from zero, saturating.
    ///
    /// ```
    /// use csi_events::duration::{GoDuration, Precision};
    /// assert_eq!(GoDuration::from_nanos(2_500_000_000).round(Precision::Second).as_nanos(), 3_000_000_000);
    /// assert_eq!(GoDuration::from_nanos(-2_500_000_000).round(Precision::Second).as_nanos(), -3_000_000_000);
    /// ```
    pub fn round(self, precision: Precision) -> Self {
        let d = self.0;
        let m = precision.nanos();
        let less_than_half = |x: i64| (x as u64).wrapping_add(x as u64) < m as u64;
        let mut r = d % m;
        if d < 0 {
            r = -r;
            if less_than_half(r) {
                return Self(d + r);
            }
            match d.checked_sub(m - r) {
                Some(down) => Self(down),
                None => Self(i64::MIN),
            }
        } else {
            if less_than_half(r) {
                return Self(d - r);
            }
            match d.checked_add(m - r) {
                Some(up) => Self(up),
                None => Self(i64::MAX),
            }
        }
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&go_string(self.0))
    }
}

/// Go's `Duration.String()`.
fn go_string(d: i64) -> String {
    let negative = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    if u < NANOS_PER_SECOND {
        if u == 0 {
            return "0s".to_owned();
        }
        let (precision, unit) = if u < NANOS_PER_MICRO {
            (0, "ns")
        } else if u < NANOS_PER_MILLI {
            (3, "µs")
        } else {
            (6, "ms")
        };
        let (fraction, whole) = fraction(u, precision);
        out.push_str(&whole.to_string());
        out.push_str(&fraction);
        out.push_str(unit);
    } else {
        let (fraction, whole) = fraction(u, 9);
        u = whole;
        let seconds = u % 60;
        u /= 60;
        let mut text = format!("{seconds}{fraction}s");
        if u > 0 {
            let minutes = u % 60;
            u /= 60;
            text = format!("{minutes}m{text}");
            if u > 0 {
                text = format!("{u}h{text}");
            }
        }
        out.push_str(&text);
    }
    if negative {
        out.insert(0, '-');
    }
    out
}

/// Go's `fmtFrac`: the `precision` lowest decimal digits of `v` as `.ddd` with trailing zeros
/// cut (empty when they are all zero), and `v` without them.
fn fraction(mut v: u64, precision: u32) -> (String, u64) {
    let mut digits = Vec::new();
    let mut printing = false;
    for _ in 0..precision {
        let digit = v % 10;
        printing = printing || digit != 0;
        if printing {
            digits.push(char::from(b'0' + digit as u8));
        }
        v /= 10;
    }
    if digits.is_empty() {
        return (String::new(), v);
    }
    digits.push('.');
    (digits.into_iter().rev().collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Every test vector of `docs/events.md` §2, in order.
    #[test]
    fn events_md_section_2_vectors() {
        let cases: &[(Duration, Option<Precision>, &str)] = &[
            (secs(300.0), Some(Precision::Second), "5m0s"),
            (
                Duration::from_millis(135_456),
                Some(Precision::Second),
                "2m15s",
            ),
            (secs(360.0), Some(Precision::Second), "6m0s"),
            (secs(3600.0), Some(Precision::Second), "1h0m0s"),
            (secs(5400.0), Some(Precision::Second), "1h30m0s"),
            (secs(90.0), Some(Precision::Second), "1m30s"),
            (Duration::from_millis(2_500), Some(Precision::Second), "3s"),
            (Duration::from_millis(400), Some(Precision::Second), "0s"),
            (
                Duration::from_millis(153),
                Some(Precision::Millisecond),
                "153ms",
            ),
            (
                Duration::from_micros(1_204_400),
                Some(Precision::Millisecond),
                "1.204s",
            ),
            (
                Duration::from_micros(1_500),
                Some(Precision::Millisecond),
                "2ms",
            ),
            (
                Duration::from_micros(499),
                Some(Precision::Millisecond),
                "0s",
            ),
            (
                Duration::from_micros(61_000_500),
                Some(Precision::Millisecond),
                "1m1.001s",
            ),
            (Duration::ZERO, None, "0s"),
        ];
        for (input, precision, want) in cases {
            let d = GoDuration::from_std(*input);
            let d = match precision {
                Some(p) => d.round(*p),
                None => d,
            };
            assert_eq!(d.to_string(), *want, "{input:?} rounded to {precision:?}");
        }
    }

    #[test]
    fn unrounded_forms_match_go() {
        let cases: &[(i64, &str)] = &[
            (1, "1ns"),
            (999, "999ns"),
            (1_000, "1µs"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (500_000, "500µs"),
            (1_000_000_000, "1s"),
            (60_500_000_000, "1m0.5s"),
            (1_234_000_000, "1.234s"),
            (3_600_000_000_001, "1h0m0.000000001s"),
            (-5_000_000_000, "-5s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(
                GoDuration::from_nanos(*nanos).to_string(),
                *want,
                "{nanos}ns"
            );
        }
    }

    #[test]
    fn round_halves_away_from_zero_and_saturates() {
        let s = Precision::Second;
        assert_eq!(
            GoDuration::from_nanos(1_500_000_000).round(s).as_nanos(),
            2_000_000_000
        );
        assert_eq!(
            GoDuration::from_nanos(1_499_999_999).round(s).as_nanos(),
            1_000_000_000
        );
        assert_eq!(
            GoDuration::from_nanos(-1_500_000_000).round(s).as_nanos(),
            -2_000_000_000
        );
        assert_eq!(
            GoDuration::from_nanos(-1_400_000_000).round(s).as_nanos(),
            -1_000_000_000
        );
        assert_eq!(
            GoDuration::from_nanos(i64::MAX).round(s).as_nanos(),
            i64::MAX
        );
        assert_eq!(
            GoDuration::from_nanos(i64::MIN).round(s).as_nanos(),
            i64::MIN
        );
        assert_eq!(GoDuration::from_std(Duration::MAX).as_nanos(), i64::MAX);
    }
}
