//! Time, shared: the one clock abstraction of the project.
//!
//! The fake cluster stamps objects and delays faulted requests with it; the event poster
//! stamps events and waits out retry backoffs with it; the attachment model runs its migration
//! timers on it; the scenario runner moves it. Production code uses [`SystemClock`]; tests and
//! simulations use [`VirtualClock`], whose time moves only when [`VirtualClock::advance`] says so.
//!
//! ```
//! use csi_clock::{Clock, VirtualClock};
//! use std::time::Duration;
//!
//! let clock = VirtualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
//! let before = clock.now();
//! clock.jump(Duration::from_secs(90));
//! assert_eq!(clock.now().duration_since(before).as_secs(), 90);
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::oneshot;

/// A boxed future returned by [`Clock::sleep`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of time that can also wait.
///
/// Object safe, so it is shared as [`SharedClock`] (`Arc<dyn Clock>`).
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// A future that completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// The clock as it is passed around.
pub type SharedClock = Arc<dyn Clock>;

/// Real time: [`Timestamp::now`] and [`tokio::time::sleep`].
///
/// ```
/// use csi_clock::{Clock, SystemClock};
/// assert!(SystemClock.now().as_second() > 1_700_000_000);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Virtual time: it stands still until told to move.
///
/// Cloning gives another handle on the same time. Sleepers wake in deadline order as
/// [`advance`](VirtualClock::advance) passes their deadlines.
#[derive(Clone)]
pub struct VirtualClock {
    inner: Arc<Mutex<VirtualState>>,
}

struct VirtualState {
    now: Timestamp,
    next_id: u64,
    sleepers: BTreeMap<(Timestamp, u64), oneshot::Sender<()>>,
}

impl std::fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("VirtualClock")
            .field("now", &state.now)
            .field("sleepers", &state.sleepers.len())
            .finish()
    }
}

impl VirtualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            inner: Arc::new(Mutex::new(VirtualState {
                now: start,
                next_id: 0,
                sleepers: BTreeMap::new(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, VirtualState> {
        // A poisoned lock only means another thread panicked while holding it; the state
        // (a timestamp and a map of senders) is still consistent, so keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many sleepers are waiting.
    pub fn sleepers(&self) -> usize {
        self.state().sleepers.len()
    }

    /// The earliest deadline any sleeper waits for.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.state().sleepers.keys().next().map(|(at, _)| *at)
    }

    /// Moves time forward by `duration` at once and wakes every sleeper whose deadline passed.
    ///
    /// Woken tasks run only when the caller yields; use [`advance`](Self::advance) to let each
    /// due timer's task run before the next one fires.
    pub fn jump(&self, duration: Duration) {
        let target = add(self.now(), duration);
        let woken = {
            let mut state = self.state();
            state.now = state.now.max(target);
            take_due(&mut state, target)
        };
        for sender in woken {
            let _ = sender.send(());
        }
    }

    /// Moves time forward by `duration`, firing due timers in deadline order.
    ///
    /// At each deadline the clock stands at exactly that instant while the woken tasks run
    /// (the caller yields to the runtime a few times), so a timer that arms another timer
    /// inside the window sees it fire too.
    pub async fn advance(&self, duration: Duration) {
        let target = add(self.now(), duration);
        loop {
            let due = {
                let mut state = self.state();
                match state.sleepers.keys().next().map(|(at, _)| *at) {
                    Some(at) if at <= target => {
                        state.now = state.now.max(at);
                        take_due(&mut state, at)
                    }
                    _ => {
                        state.now = state.now.max(target);
                        Vec::new()
                    }
                }
            };
            if due.is_empty() {
                break;
            }
            for sender in due {
                let _ = sender.send(());
            }
            settle().await;
        }
        settle().await;
    }
}

/// Yields to the runtime enough times for woken tasks (and the tasks they wake) to run.
pub async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

fn add(at: Timestamp, duration: Duration) -> Timestamp {
    let span = jiff::SignedDuration::try_from(duration).unwrap_or(jiff::SignedDuration::MAX);
    at.saturating_add(span).unwrap_or(Timestamp::MAX)
}

fn take_due(state: &mut VirtualState, until: Timestamp) -> Vec<oneshot::Sender<()>> {
    let later = state
        .sleepers
        .split_off(&(until, u64::MAX))
        .into_iter()
        .collect::<BTreeMap<_, _>>();
    let due = std::mem::replace(&mut state.sleepers, later);
    due.into_values().collect()
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        self.state().now
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let (tx, rx) = oneshot::channel();
        let key = {
            let mut state = self.state();
            if duration.is_zero() {
                return Box::pin(async {});
            }
            let deadline = add(state.now, duration);
            let id = state.next_id;
            state.next_id += 1;
            state.sleepers.insert((deadline, id), tx);
            (deadline, id)
        };
        // A sleep given up before its deadline (a timeout that lost its race) takes its entry
        // with it, so waiting timers do not pile up while time stands still.
        let guard = Unregister {
            clock: Arc::downgrade(&self.inner),
            key,
        };
        Box::pin(async move {
            let _guard = guard;
            // The sender is dropped only when the clock itself is dropped; then time never
            // comes, so wait forever rather than wake early.
            if rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// Removes a sleeper's entry when its sleep is dropped.
struct Unregister {
    clock: std::sync::Weak<Mutex<VirtualState>>,
    key: (Timestamp, u64),
}

impl Drop for Unregister {
    fn drop(&mut self) {
        if let Some(inner) = self.clock.upgrade() {
            let mut state = inner
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state.sleepers.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().expect("valid timestamp")
    }

    #[tokio::test]
    async fn sleepers_wake_in_deadline_order_at_their_instant() {
        let clock = VirtualClock::new(start());
        let seen = Arc::new(Mutex::new(Vec::new()));
        for secs in [30u64, 10, 20] {
            let clock2 = clock.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                clock2.sleep(Duration::from_secs(secs)).await;
                let at = clock2.now().duration_since(start()).as_secs();
                seen.lock().expect("not poisoned").push((secs, at));
            });
        }
        settle().await;
        assert_eq!(clock.sleepers(), 3);
        clock.advance(Duration::from_secs(25)).await;
        assert_eq!(
            *seen.lock().expect("not poisoned"),
            vec![(10, 10), (20, 20)]
        );
        assert_eq!(clock.now().duration_since(start()).as_secs(), 25);
        clock.advance(Duration::from_secs(5)).await;
        assert_eq!(seen.lock().expect("not poisoned").len(), 3);
    }

    #[test]
    fn a_dropped_sleep_leaves_no_timer_behind() {
        let clock = VirtualClock::new(start());
        let sleep = clock.sleep(Duration::from_secs(30));
        assert_eq!(clock.sleepers(), 1);
        drop(sleep);
        assert_eq!(clock.sleepers(), 0);
    }

    #[tokio::test]
    async fn sleep_does_not_complete_before_time_moves() {
        let clock = VirtualClock::new(start());
        let mut sleep = clock.sleep(Duration::from_millis(1));
        assert!(futures::poll!(&mut sleep).is_pending());
        clock.jump(Duration::from_millis(1));
        assert!(futures::poll!(&mut sleep).is_ready());
    }
}
