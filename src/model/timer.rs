//! Migration timers: one task per running migration, sleeping on the shared clock until the
//! first instant strictly after `start + timeout`, then failing the migration once.
//!
//! The sleep is taken from the clock when the timer is armed (inside the decision that started
//! the migration), so a [`VirtualClock`](crate::clock::VirtualClock) knows the deadline before
//! anyone advances it. The task holds only a `Weak` reference to the controller: dropping the
//! last [`Controller`](super::Controller) clone ends the state and cancels every timer; a
//! deadline already passed (a migration rebuilt after a long outage) fires as soon as the task
//! first runs.

use std::sync::Weak;
use std::time::Duration;

use jiff::Timestamp;
use tokio::task::JoinHandle;

use super::Inner;
use super::state::Arm;
use crate::clock::SharedClock;

/// Spawns the timer task of `arm` on `runtime`.
pub(crate) fn spawn(
    runtime: &tokio::runtime::Handle,
    clock: &SharedClock,
    controller: Weak<Inner>,
    arm: Arm,
) -> JoinHandle<()> {
    let wait = until(clock.now(), arm.deadline);
    let sleep = clock.sleep(wait);
    runtime.spawn(async move {
        sleep.await;
        if let Some(controller) = controller.upgrade() {
            controller.fire(&arm.volume, arm.migration);
        }
    })
}

/// How long from `now` until `deadline`, zero if it has passed.
fn until(now: Timestamp, deadline: Timestamp) -> Duration {
    Duration::try_from(deadline.duration_since(now)).unwrap_or(Duration::ZERO)
}
