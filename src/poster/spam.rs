//! The spam filter: a token bucket per claim uid (events.md §5, client-go's defaults).
//!
//! Each event about a claim takes a token; a bucket holds at most `burst` tokens and gains one
//! every `refill`. Time comes from the shared clock, so virtual time refills it too.

use std::time::Duration;

use jiff::Timestamp;

/// One claim's bucket.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    updated: Timestamp,
    /// Whether the last take failed: the warning is logged once per limited stretch.
    pub(crate) limited: bool,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn full(burst: u32, now: Timestamp) -> Self {
        Self {
            tokens: f64::from(burst),
            updated: now,
            limited: false,
        }
    }

    /// Takes a token if there is one, after refilling for the time passed since the last take.
    pub(crate) fn take(&mut self, burst: u32, refill: Duration, now: Timestamp) -> bool {
        let elapsed = now.duration_since(self.updated).as_secs_f64().max(0.0);
        let per_token = refill.as_secs_f64();
        if per_token > 0.0 {
            self.tokens = (self.tokens + elapsed / per_token).min(f64::from(burst));
        } else {
            self.tokens = f64::from(burst);
        }
        self.updated = self.updated.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.limited = false;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_per_refill() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("timestamp");
        let refill = Duration::from_secs(300);
        let mut bucket = TokenBucket::full(25, start);
        let taken = (0..30).filter(|_| bucket.take(25, refill, start)).count();
        assert_eq!(taken, 25);
        let later = start + jiff::SignedDuration::from_secs(299);
        assert!(!bucket.take(25, refill, later));
        let later = start + jiff::SignedDuration::from_secs(300);
        assert!(bucket.take(25, refill, later));
        assert!(!bucket.take(25, refill, later));
    }
}
