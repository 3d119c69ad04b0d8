//! The spam filter's token bucket: one per claim uid (and this poster's component), `docs/events.md` §5.
//!
//! A bucket holds at most `burst` tokens and gains one every `refill`; each *write* (a create
//! or a patch) about the claim takes one. Unlike client-go's filter nothing is dropped here:
//! the worker keeps the posts waiting and asks [`TokenBucket::until_next`] when to wake. Time
//! comes from the shared clock (virtual time refills it too) and is kept in whole nanoseconds,
//! so a token is due at an exact instant.

use std::time::Duration;

use jiff::Timestamp;

/// One claim's bucket. Its credit is counted in nanoseconds of refill: one token is
/// `refill` worth of credit, a full bucket `burst × refill`.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    credit: u128,
    updated: Timestamp,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn full(burst: u32, refill: Duration, now: Timestamp) -> Self {
        Self {
            credit: u128::from(burst) * refill.as_nanos(),
            updated: now,
        }
    }

    fn refill(&mut self, burst: u32, refill: Duration, now: Timestamp) {
        let capacity = u128::from(burst) * refill.as_nanos();
        if now > self.updated {
            let elapsed = u128::try_from(now.duration_since(self.updated).as_nanos()).unwrap_or(0);
            self.credit = self.credit.saturating_add(elapsed).min(capacity);
            self.updated = now;
        }
    }

    /// Takes a token if there is one (after refilling for the time passed).
    pub(crate) fn take(&mut self, burst: u32, refill: Duration, now: Timestamp) -> bool {
        if burst == 0 {
            return false;
        }
        if refill.is_zero() {
            return true;
        }
        self.refill(burst, refill, now);
        let token = refill.as_nanos();
        if self.credit >= token {
            self.credit -= token;
            true
        } else {
            false
        }
    }

    /// How long until the next token (zero when one is there now).
    pub(crate) fn until_next(&mut self, burst: u32, refill: Duration, now: Timestamp) -> Duration {
        if refill.is_zero() {
            return Duration::ZERO;
        }
        if burst == 0 {
            // A bucket that never holds a token: there is no next token; wait one refill and
            // look again (the configuration is odd, not fatal).
            return refill;
        }
        self.refill(burst, refill, now);
        let missing = refill.as_nanos().saturating_sub(self.credit);
        Duration::from_nanos(u64::try_from(missing).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_per_refill_at_an_exact_instant() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("timestamp");
        let refill = Duration::from_secs(300);
        let mut bucket = TokenBucket::full(25, refill, start);
        let taken = (0..30).filter(|_| bucket.take(25, refill, start)).count();
        assert_eq!(taken, 25);
        assert_eq!(bucket.until_next(25, refill, start), refill);
        let later = start + jiff::SignedDuration::from_secs(299);
        assert!(!bucket.take(25, refill, later));
        assert_eq!(bucket.until_next(25, refill, later), Duration::from_secs(1));
        let later = start + jiff::SignedDuration::from_secs(300);
        assert_eq!(bucket.until_next(25, refill, later), Duration::ZERO);
        assert!(bucket.take(25, refill, later));
        assert!(!bucket.take(25, refill, later));
    }

    #[test]
    fn refills_no_further_than_the_burst() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("timestamp");
        let refill = Duration::from_secs(1);
        let mut bucket = TokenBucket::full(3, refill, start);
        let later = start + jiff::SignedDuration::from_secs(3600);
        let taken = (0..10).filter(|_| bucket.take(3, refill, later)).count();
        assert_eq!(taken, 3);
    }
}
