//! The record writer: puts each volume's [migration record](super::record) on its
//! PersistentVolume without ever making a decision wait.
//!
//! A decision hands over the volume's new record (or `None`: remove it) with
//! [`Recorder::record`], which takes a short lock and never waits on I/O. The latest record
//! of a volume replaces any older one not written yet (latest state wins), so what is held is
//! bounded by the number of volumes. One task writes them, one volume at a time, as JSON
//! merge patches of the annotation; a 5xx, a 429, a timeout or a transport error is retried
//! with exponential backoff on the shared clock ([`RETRY_FIRST`] … [`RETRY_MAX`],
//! [`ATTEMPTS`] tries); any other refusal (404: no PV, 403: no RBAC `patch` on
//! persistentvolumes) is given up at once with a warning. A record that is never written is a
//! lost write: the next rebuild falls back to creation-time order and says so.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::record::{MIGRATION_ANNOTATION, MigrationRecord};
use super::state::add;
use crate::clock::SharedClock;
use crate::ids::VolumeId;

/// The first retry waits this long; each next one twice as long.
pub const RETRY_FIRST: Duration = Duration::from_millis(500);
/// The longest wait between two tries.
pub const RETRY_MAX: Duration = Duration::from_secs(30);
/// Tries per record before it is given up.
pub const ATTEMPTS: u32 = 12;
/// How long one write may take before it counts as failed (and is retried).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// One volume's record waiting to be written.
#[derive(Debug, Clone)]
struct Pending {
    record: Option<MigrationRecord>,
    /// Tries so far.
    attempts: u32,
    /// Not before this instant (a retry's backoff), or at once.
    retry_at: Option<Timestamp>,
}

#[derive(Debug, Default)]
struct Queue {
    pending: BTreeMap<VolumeId, Pending>,
    /// A write is being made.
    busy: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Told whenever the writer has nothing due (for [`Recorder::flush`]).
    idle: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue is plain data, consistent between statements: keep using it after a panic.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The non-blocking record writer of one controller.
pub(crate) struct Recorder {
    shared: Arc<Shared>,
    wake: mpsc::Sender<()>,
    task: JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    /// Spawns the writer task on `runtime`, writing through `client`.
    pub fn spawn(
        runtime: &tokio::runtime::Handle,
        client: kube::Client,
        clock: SharedClock,
    ) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            idle: Notify::new(),
        });
        // One wake-up is enough: the writer takes everything pending each time it wakes.
        let (wake, woken) = mpsc::channel(1);
        let writer = Writer {
            shared: shared.clone(),
            client,
            clock,
        };
        let task = runtime.spawn(writer.run(woken));
        Self { shared, wake, task }
    }

    /// Hands over the record `volume` must carry from now on (`None`: none). Never waits.
    pub fn record(&self, volume: VolumeId, record: Option<MigrationRecord>) {
        self.shared.lock().pending.insert(
            volume,
            Pending {
                record,
                attempts: 0,
                retry_at: None,
            },
        );
        // Full: a wake-up is already pending, which will see this record too.
        let _ = self.wake.try_send(());
    }

    /// Stops writing: what is not written yet is lost (as when the process ends).
    pub fn stop(&self) {
        self.task.abort();
        self.shared.lock().pending.clear();
        self.shared.idle.notify_waiters();
    }

    /// Waits until every record handed over so far is written or given up, or waits on a
    /// retry's backoff (which only the clock moving ends).
    pub async fn flush(&self) {
        loop {
            let idle = self.shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            {
                let queue = self.shared.lock();
                let due = queue.pending.values().any(|p| p.retry_at.is_none());
                if (!queue.busy && !due) || self.task.is_finished() {
                    return;
                }
            }
            idle.await;
        }
    }
}

/// The writer task's side.
struct Writer {
    shared: Arc<Shared>,
    client: kube::Client,
    clock: SharedClock,
}

/// Why a write failed.
enum Failure {
    /// Worth another try.
    Transient(String),
    /// Trying again cannot help.
    Refused(String),
}

impl Writer {
    async fn run(self, mut woken: mpsc::Receiver<()>) {
        loop {
            let now = self.clock.now();
            let (due, next) = {
                let mut queue = self.shared.lock();
                let due: Vec<VolumeId> = queue
                    .pending
                    .iter()
                    .filter(|(_, p)| p.retry_at.is_none_or(|at| at <= now))
                    .map(|(volume, _)| volume.clone())
                    .collect();
                let due: Vec<(VolumeId, Pending)> = due
                    .into_iter()
                    .filter_map(|volume| queue.pending.remove(&volume).map(|p| (volume, p)))
                    .collect();
                queue.busy = !due.is_empty();
                let next = queue.pending.values().filter_map(|p| p.retry_at).min();
                (due, next)
            };
            if due.is_empty() {
                self.shared.idle.notify_waiters();
                let wait = next.map(|at| {
                    self.clock
                        .sleep(Duration::try_from(at.duration_since(now)).unwrap_or_default())
                });
                tokio::select! {
                    woke = woken.recv() => if woke.is_none() {
                        // Every sender is gone: the controller is.
                        return;
                    },
                    () = async {
                        match wait {
                            Some(wait) => wait.await,
                            None => std::future::pending().await,
                        }
                    } => {}
                }
                continue;
            }
            for (volume, pending) in due {
                self.write(volume, pending).await;
            }
            self.shared.lock().busy = false;
        }
    }

    async fn write(&self, volume: VolumeId, pending: Pending) {
        let value = pending.record.as_ref().map(MigrationRecord::to_json);
        let patch = serde_json::json!({"metadata": {"annotations": {MIGRATION_ANNOTATION: value}}});
        let (params, patch) = (PatchParams::default(), Patch::Merge(&patch));
        // The PATCH `Api::<PersistentVolume>::patch` sends, its answer read as text and not
        // decoded: the writer never reads the PV it gets back (decoding a whole PV per record
        // was most of the client's cost of a write).
        let request = async {
            let request = kube::core::Request::new("/api/v1/persistentvolumes")
                .patch(volume.as_str(), &params, &patch)
                .map_err(kube::Error::BuildRequest)?;
            self.client.request_text(request).await
        };
        let timeout = self.clock.sleep(WRITE_TIMEOUT);
        let result = tokio::select! {
            result = request => match result {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(status)) => {
                    let text = format!("{} {}: {}", status.code, status.reason, status.message);
                    if status.code >= 500 || status.code == 429 {
                        Err(Failure::Transient(text))
                    } else {
                        Err(Failure::Refused(text))
                    }
                }
                Err(other) => Err(Failure::Transient(other.to_string())),
            },
            () = timeout => Err(Failure::Transient(format!(
                "no answer within {} s",
                WRITE_TIMEOUT.as_secs()
            ))),
        };
        let attempts = pending.attempts + 1;
        match result {
            Ok(()) => {}
            Err(Failure::Transient(why)) if attempts < ATTEMPTS => {
                let retry_at = add(self.clock.now(), backoff(attempts));
                tracing::debug!(volume = %volume, attempts, "writing the migration record failed, retrying: {why}");
                let mut queue = self.shared.lock();
                // A newer record handed over meanwhile wins over this one.
                queue.pending.entry(volume).or_insert(Pending {
                    record: pending.record,
                    attempts,
                    retry_at: Some(retry_at),
                });
            }
            Err(Failure::Transient(why) | Failure::Refused(why)) => {
                tracing::warn!(
                    volume = %volume,
                    attempts,
                    "could not write the migration record of volume {volume} (annotation {MIGRATION_ANNOTATION} \
                     on its PersistentVolume): {why}; a restart will rebuild this volume's migration from \
                     VolumeAttachment creation times; the controller needs RBAC `patch` on persistentvolumes"
                );
            }
        }
    }
}

/// The wait before try `attempts + 1`: [`RETRY_FIRST`] doubled per failed try, at most
/// [`RETRY_MAX`].
fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    RETRY_FIRST.saturating_mul(1 << doublings).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let waits: Vec<u64> = (1..=9).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(backoff(u32::MAX), RETRY_MAX);
    }
}
