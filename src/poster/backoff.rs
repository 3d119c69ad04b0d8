//! Retry timing: exponential backoff with seeded jitter (`docs/events.md` §5).
//!
//! The n-th retry waits `initial * 2^(n-1)`, capped, then jittered into `[d/2, d]` by a
//! seedable generator, so a simulation replays the same schedule; never less than the
//! server's `Retry-After`.

use std::time::Duration;

/// How failed requests are retried.
///
/// ```
/// use csi_events::RetryPolicy;
/// let policy = RetryPolicy::default();
/// assert_eq!(policy.max_attempts, 12);
/// assert_eq!(policy.initial.as_millis(), 500);
/// assert_eq!(policy.max_delay.as_secs(), 30);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first delay (before jitter).
    pub initial: Duration,
    /// The longest delay (before jitter).
    pub max_delay: Duration,
    /// Attempts in all, the first one included; then the event is dropped.
    pub max_attempts: u32,
    /// Seed of the jitter generator.
    pub seed: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_attempts: 12,
            seed: 0x5eed_c51e_7e47_5000,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `failed + 1`, after `failed` failures (`failed >= 1`).
    pub(crate) fn delay(
        &self,
        failed: u32,
        retry_after: Option<Duration>,
        rng: &mut SplitMix64,
    ) -> Duration {
        let exponent = failed.saturating_sub(1).min(31);
        let base = self
            .initial
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let half = base / 2;
        let jitter = half.mul_f64(rng.next_unit());
        let delay = half + jitter;
        delay.max(retry_after.unwrap_or_default())
    }
}

/// How an attempt failed, as far as trying again goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Again {
    /// Try again at once (the same job, with what the server holds now).
    Now,
    /// Try again after the backoff delay, and not before the server's `Retry-After`.
    Later(Option<Duration>),
    /// Trying again would not help (400, 403, 422, …).
    Never,
}

/// What comes after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Attempt again at once.
    Now,
    /// Attempt again after this delay.
    After(Duration),
    /// Give up: the attempts are used up (`retries_exhausted`).
    Exhausted,
    /// Give up: the failure is final (`rejected`).
    Rejected,
}

/// One job's retries (a claim lookup, or the write of a series): failure → the next delay or
/// giving up, as tower's `retry::Policy` decides for a request. The worker holds one per job
/// and asks it after every failed attempt; the decision lives here only.
///
/// ```text
/// let mut retries = Retries::default();
/// match retries.failed(&policy, Again::Later(None), &mut rng) {
///     Next::After(delay) => { /* arm a timer */ }
///     Next::Now => { /* queue the job again */ }
///     Next::Exhausted | Next::Rejected => { /* drop, counted */ }
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Retries {
    failures: u32,
}

impl Retries {
    /// Counts a failed attempt and says what comes next: a final failure gives up at once,
    /// the `max_attempts`-th failure gives up, otherwise again now or after the `n`-th delay.
    pub(crate) fn failed(
        &mut self,
        policy: &RetryPolicy,
        again: Again,
        rng: &mut SplitMix64,
    ) -> Next {
        self.failures = self.failures.saturating_add(1);
        if again == Again::Never {
            return Next::Rejected;
        }
        if self.failures >= policy.max_attempts {
            return Next::Exhausted;
        }
        match again {
            Again::Later(retry_after) => Next::After(policy.delay(self.failures, retry_after, rng)),
            Again::Now | Again::Never => Next::Now,
        }
    }

    /// The job succeeded (or was given up): the next failure is the first again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A small, seedable, deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_capped_jittered_and_respect_retry_after() {
        let policy = RetryPolicy::default();
        let mut rng = SplitMix64::new(7);
        for failed in 1..=11 {
            let base =
                Duration::from_millis(500 * (1 << (failed - 1))).min(Duration::from_secs(30));
            let d = policy.delay(failed, None, &mut rng);
            assert!(
                d >= base / 2 && d <= base,
                "attempt {failed}: {d:?} vs {base:?}"
            );
        }
        let d = policy.delay(1, Some(Duration::from_secs(7)), &mut rng);
        assert!(d >= Duration::from_secs(7));
    }

    #[test]
    fn retries_back_off_then_give_up_at_max_attempts() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let mut rng = SplitMix64::new(7);
        let mut retries = Retries::default();
        assert!(matches!(
            retries.failed(&policy, Again::Later(None), &mut rng),
            Next::After(d) if d >= policy.initial / 2 && d <= policy.initial
        ));
        assert_eq!(retries.failed(&policy, Again::Now, &mut rng), Next::Now);
        assert_eq!(
            retries.failed(&policy, Again::Later(None), &mut rng),
            Next::Exhausted
        );
        retries.reset();
        assert_eq!(retries.failed(&policy, Again::Now, &mut rng), Next::Now);
        assert_eq!(
            Retries::default().failed(&policy, Again::Never, &mut rng),
            Next::Rejected
        );
    }

    #[test]
    fn same_seed_same_schedule() {
        let policy = RetryPolicy::default();
        let schedule = |seed| {
            let mut rng = SplitMix64::new(seed);
            (1..6)
                .map(|n| policy.delay(n, None, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(schedule(1), schedule(1));
        assert_ne!(schedule(1), schedule(2));
    }
}
