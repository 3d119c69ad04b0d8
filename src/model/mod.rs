//! The attachment and migration model (`docs/lifecycle.md`): what `ControllerPublishVolume` and
//! `ControllerUnpublishVolume` decide for a volume, and which event each decision posts.
//!
//! It is the Go driver's controller side without its defects: migration timeouts fire by
//! themselves on a timer (one task per running migration), an aborted migration is reported as
//! a failure (`target detached before source`), every event names its claim (the volume
//! context's PVC keys, or the PV's claimRef through the poster), a restart
//! ([`Controller::rebuild`]) keeps each migration's source, target, start and timeout, and the
//! active-migrations gauge is the number of running migrations, never negative.
//!
//! Modules, one concept each:
//! - `state`: per-volume state and every decision (publish, unpublish, timer, deleted node);
//! - [`timeout`]: `migrationTimeoutSeconds` with its default and clamps;
//! - `timer`: one task per running migration on the shared clock;
//! - `rebuild`: [`Controller::rebuild`], the state from VolumeAttachments and PVs after a restart;
//! - `record`: the migration record kept on the PV ([`MIGRATION_ANNOTATION`]);
//! - `recorder`: the task writing the records, never waited on;
//! - `watcher`: [`watch_nodes`], the production node watcher calling [`Controller::node_deleted`];
//! - `metrics`: [`MigrationMetrics`], the lifecycle metrics;
//! - `rpc`: [`Code`] and [`RpcError`] (a `tonic::Status` behind the `tonic` feature).
//!
//! Decisions are synchronous: a `std::sync::Mutex` guards the state, no lock is held across an
//! await, and events are handed to the [`EventPoster`] after the decision (the poster never
//! blocks). [`Controller::publish`] is an `async fn` for one row only: an RWO volume asked for by
//! another node while its holder seems to exist reads the holder's Node from the API server
//! (`docs/lifecycle.md`, the stale-holder row); every other publish is ready on its first poll.
//!
//! With a [client](ControllerConfig::client) (always after [`Controller::rebuild`]) the
//! controller also keeps each migration's record — source, target, start to the nanosecond,
//! timeout, failed or not — as the [`MIGRATION_ANNOTATION`] of the volume's PersistentVolume,
//! written by a task of its own (latest state wins, retried with backoff on the clock), never
//! waited on by a call. A rebuild prefers it to the VolumeAttachments' creation times, so a
//! restart neither repeats a reported failure nor swaps source and target.
//!
//! # In a driver
//!
//! The driver's dependency line (the default feature `simulation` brings the fake cluster and
//! the scenario runner, which a driver does not need):
//!
//! ```toml
//! csi-events = { version = "0.1", default-features = false }
//! # a tonic-based driver returns the model's refusals as tonic::Status:
//! csi-events = { version = "0.1", default-features = false, features = ["tonic"] }
//! ```
//!
//! Publish and unpublish:
//!
//! ```
//! use csi_events::model::{AccessMode, Code, Controller, ControllerConfig, Publish};
//! use csi_events::{EventPoster, PosterConfig};
//! # use fake_apiserver::FakeCluster;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), csi_events::model::RpcError> {
//! # let cluster = FakeCluster::default();
//! # cluster
//! #     .load_yaml("{apiVersion: v1, kind: Node, metadata: {name: node-a}}\n---\n{apiVersion: v1, kind: Node, metadata: {name: node-b}}")
//! #     .expect("nodes");
//! # let client = cluster.client();
//! // `client` is the driver's kube::Client.
//! let poster = EventPoster::new(client.clone(), PosterConfig::default());
//! let controller = Controller::new(poster, ControllerConfig::default().client(client));
//! // In production: `Controller::rebuild(client, poster, config).await?` and
//! // `tokio::spawn(watch_nodes(client, controller.clone()))`.
//! controller.node_added(&"node-a".into());
//! controller.node_added(&"node-b".into());
//!
//! let publish = Publish::new("pvc-1", "node-a", AccessMode::Rwo);
//! controller.publish(publish.clone()).await?; // VolumeAttached
//! controller.publish(publish).await?; // idempotent: nothing posted
//! let refused = controller
//!     .publish(Publish::new("pvc-1", "node-b", AccessMode::Rwo))
//!     .await
//!     .unwrap_err(); // AttachmentConflict (node-a exists: the conflict path read it)
//! assert_eq!(refused.code, Code::FailedPrecondition);
//! assert_eq!(
//!     refused.message,
//!     "Volume pvc-1 already attached to node node-a. For multi-node access, use RWX with block volumes."
//! );
//! controller.unpublish(&"pvc-1".into(), &"node-a".into())?; // VolumeDetached
//! assert!(controller.volumes().is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! # Which claim an event names
//!
//! A publish's own events name the claim of its volume context keys
//! (`csi.storage.k8s.io/pvc/namespace` and `/name`): the event goes on the live claim of that
//! name. Without the keys the claim is `None` and the poster reads the PV's `spec.claimRef`
//! (uid compared). A *successful* publish that carries the keys makes that claim the volume's
//! remembered claim (a refused publish changes nothing); unpublish, timers and node
//! reconciles, which have no context, name the remembered claim, or `None` when there is
//! none. The memory goes with the volume when it is untracked, and a restart does not
//! restore it (after [`Controller::rebuild`] every event goes through the claimRef).
//!
//! # The active-migrations gauge
//!
//! `migration_active_migrations` is set, after every decision, to the number of running
//! (not failed) migrations the controller holds, counted as they start and end: it cannot go
//! negative and is right after a restart (a rebuild sets it from the rebuilt migrations). Use
//! one [`MigrationMetrics`] per live controller.
//!
//! # The access mode after a restart
//!
//! A VolumeAttachment does not record the access mode the volume was published with. After a
//! restart a volume with two attachments is RWX (only RWX volumes can have two); a volume with
//! one is RWX if its PV's `spec.accessModes` holds `ReadWriteMany`, otherwise RWO.

mod metrics;
mod rebuild;
mod record;
mod recorder;
mod rpc;
mod state;
pub mod timeout;
mod timer;
mod watcher;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use tokio::task::JoinHandle;

pub use self::metrics::{DURATION_BUCKETS, MigrationMetrics, MigrationResult};
pub use self::rebuild::RebuildError;
pub use self::record::MIGRATION_ANNOTATION;
pub use self::rpc::{Code, RpcError, UnknownCode};
pub use self::timeout::migration_timeout;
pub use self::watcher::{WatchError, watch_nodes};

use self::record::MigrationRecord;
use self::recorder::Recorder;
use self::state::{Decided, Effects, HolderCheck, MigrationId, State};
use crate::clock::{SharedClock, SystemClock};
use crate::ids::{NodeName, VolumeId};
use crate::poster::EventPoster;

/// The access mode of a volume, fixed at its first attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccessMode {
    /// Single node (ReadWriteOnce): a second node is a conflict.
    Rwo,
    /// Multi node (ReadWriteMany, block volumes): a second node starts a live migration.
    Rwx,
}

impl AccessMode {
    /// `"RWO"` or `"RWX"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::Rwo => "RWO",
            AccessMode::Rwx => "RWX",
        }
    }
}

impl fmt::Display for AccessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not `RWO` or `RWX`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an access mode: write RWO or RWX")]
pub struct UnknownAccessMode(String);

impl FromStr for AccessMode {
    type Err = UnknownAccessMode;

    /// ```
    /// use csi_events::model::AccessMode;
    /// assert_eq!("RWX".parse::<AccessMode>(), Ok(AccessMode::Rwx));
    /// assert!("rwx".parse::<AccessMode>().is_err());
    /// ```
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "RWO" => Ok(AccessMode::Rwo),
            "RWX" => Ok(AccessMode::Rwx),
            _ => Err(UnknownAccessMode(text.to_owned())),
        }
    }
}

/// One ControllerPublishVolume call.
#[derive(Debug, Clone)]
pub struct Publish {
    /// The volume (the PV's name).
    pub volume: VolumeId,
    /// The node asking for it.
    pub node: NodeName,
    /// The access mode asked for (used only at the volume's first attach).
    pub mode: AccessMode,
    /// The CSI volume context (may hold `csi.storage.k8s.io/pvc/namespace` + `/name` and
    /// `migrationTimeoutSeconds`).
    pub context: BTreeMap<String, String>,
    /// How long the publish took (reported in VolumeAttached; does not move the clock).
    pub took: Duration,
}

impl Publish {
    /// A publish of `volume` to `node` with an empty context that took no time.
    ///
    /// ```
    /// use csi_events::model::{AccessMode, Publish};
    /// use std::time::Duration;
    /// let publish = Publish::new("pvc-1", "node-a", AccessMode::Rwx)
    ///     .claim("vms", "disk")
    ///     .context_entry("migrationTimeoutSeconds", "600")
    ///     .took(Duration::from_millis(153));
    /// assert_eq!(publish.context.len(), 3);
    /// ```
    pub fn new(volume: impl Into<VolumeId>, node: impl Into<NodeName>, mode: AccessMode) -> Self {
        Self {
            volume: volume.into(),
            node: node.into(),
            mode,
            context: BTreeMap::new(),
            took: Duration::ZERO,
        }
    }

    /// Adds one volume context entry.
    pub fn context_entry(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.context.insert(key.into(), value.into());
        self
    }

    /// Adds the `csi.storage.k8s.io/pvc/namespace` and `/name` keys naming the claim.
    pub fn claim(self, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        self.context_entry("csi.storage.k8s.io/pvc/namespace", namespace)
            .context_entry("csi.storage.k8s.io/pvc/name", name)
    }

    /// Sets how long the publish took.
    pub fn took(mut self, took: Duration) -> Self {
        self.took = took;
        self
    }
}

/// How the controller is set up.
///
/// ```
/// use csi_events::model::ControllerConfig;
/// let config = ControllerConfig::default().driver_name("example.csi.io");
/// assert_eq!(config.driver_name, "example.csi.io");
/// ```
#[derive(Clone)]
pub struct ControllerConfig {
    /// The CSI driver name = VolumeAttachment `spec.attacher` (default `rds.csi.srvlab.io`).
    pub driver_name: String,
    /// The shared clock (default [`SystemClock`]). Timers sleep on it.
    pub clock: SharedClock,
    /// Lifecycle metrics (register them in your registry).
    pub metrics: MigrationMetrics,
    /// The driver's client (default none; [`Controller::rebuild`] uses its own when none is
    /// set). With it the controller keeps each migration's record on the volume's PV (the
    /// [`MIGRATION_ANNOTATION`], written without blocking any call) and, on the RWO conflict
    /// path only, reads the holder's Node from the API server. Without it, it does neither:
    /// it trusts the nodes it was told about, and a restart falls back to creation-time order.
    pub client: Option<kube::Client>,
    /// How long the RWO conflict path waits for the holder's Node before it answers
    /// `Unavailable` (default 10 s).
    pub lookup_timeout: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            driver_name: "rds.csi.srvlab.io".to_owned(),
            clock: Arc::new(SystemClock),
            metrics: MigrationMetrics::default(),
            client: None,
            lookup_timeout: Duration::from_secs(10),
        }
    }
}

impl ControllerConfig {
    /// Sets the clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the driver name.
    pub fn driver_name(mut self, name: impl Into<String>) -> Self {
        self.driver_name = name.into();
        self
    }

    /// Sets the metrics handle.
    pub fn metrics(mut self, metrics: MigrationMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Sets the client: migration records are kept on the PVs and an RWO holder is looked up
    /// on the conflict path (see [`ControllerConfig::client`]).
    pub fn client(mut self, client: kube::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Sets how long the RWO conflict path waits for the holder's Node.
    pub fn lookup_timeout(mut self, timeout: Duration) -> Self {
        self.lookup_timeout = timeout;
        self
    }
}

/// A tracked volume as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeView {
    /// The volume.
    pub volume: VolumeId,
    /// Its access mode, fixed at the first attach.
    pub mode: AccessMode,
    /// The attached nodes, primary (or migration source) first.
    pub nodes: Vec<NodeName>,
    /// The migration, running or failed.
    pub migration: Option<MigrationView>,
}

/// A migration as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationView {
    /// The node the VM leaves.
    pub source: NodeName,
    /// The node the VM moves to.
    pub target: NodeName,
    /// When it started.
    pub started: jiff::Timestamp,
    /// Its timeout.
    pub timeout: Duration,
    /// Whether it timed out (both nodes stay attached until unpublished).
    pub failed: bool,
}

/// Holder lookups one publish makes at most (the holder can change while it is read).
const HOLDER_CHECKS: usize = 3;

/// The attachment/migration model. Cheap to clone (an `Arc` inside). Create it inside a tokio
/// runtime: migration timers are tasks.
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

/// What the clones share. Timer tasks hold a `Weak` to it.
pub(crate) struct Inner {
    poster: EventPoster,
    config: ControllerConfig,
    runtime: tokio::runtime::Handle,
    /// Writes the migration records (with a client only).
    recorder: Option<Recorder>,
    locked: Mutex<Locked>,
    /// Holder lookups waiting on the API server (the RWO conflict path).
    lookups: std::sync::atomic::AtomicUsize,
}

struct Locked {
    state: State,
    timers: BTreeMap<MigrationId, JoinHandle<()>>,
    stopped: bool,
}

impl fmt::Debug for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let locked = self.inner.lock();
        f.debug_struct("Controller")
            .field("driver_name", &self.inner.config.driver_name)
            .field("nodes", &locked.state.nodes.len())
            .field("volumes", &locked.state.volumes.len())
            .field("running_migrations", &locked.state.running())
            .field("timers", &locked.timers.len())
            .field("stopped", &locked.stopped)
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let locked = self
            .locked
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (_, timer) in std::mem::take(&mut locked.timers) {
            timer.abort();
        }
    }
}

impl Controller {
    /// Empty state; knows no nodes yet.
    ///
    /// Must be called inside a tokio runtime (the timers run on it): it panics otherwise, as
    /// `tokio::spawn` does.
    pub fn new(poster: EventPoster, config: ControllerConfig) -> Self {
        Self::with_state(poster, config, State::default())
    }

    fn with_state(poster: EventPoster, config: ControllerConfig, state: State) -> Self {
        let runtime = tokio::runtime::Handle::current();
        let recorder = config
            .client
            .clone()
            .map(|client| Recorder::spawn(&runtime, client, config.clock.clone()));
        let inner = Arc::new(Inner {
            poster,
            config,
            runtime,
            recorder,
            locked: Mutex::new(Locked {
                state,
                timers: BTreeMap::new(),
                stopped: false,
            }),
            lookups: std::sync::atomic::AtomicUsize::new(0),
        });
        inner
            .config
            .metrics
            .set_active(inner.lock().state.running());
        Self { inner }
    }

    /// ControllerPublishVolume; events go through the poster.
    ///
    /// Decided at once, under the lock and without I/O — the returned future is ready on its
    /// first poll — on every row but one: an RWO volume asked for by another node while its
    /// holder is a node the controller believes exists. Only there, and only with a
    /// [client](ControllerConfig::client), the holder's Node is read from the API server: gone
    /// → the stale holder is cleared and the node attached in this same call
    /// (StaleAttachmentCleared, then VolumeAttached); still there → AttachmentConflict; the
    /// read fails or takes longer than [`lookup_timeout`](ControllerConfig::lookup_timeout) →
    /// `Unavailable`, nothing changed and nothing posted (the caller retries). So an operator
    /// is never told to delete a pod on a node the cluster no longer has.
    ///
    /// Besides the rows of `docs/lifecycle.md`, an empty volume id or node name is refused with
    /// `InvalidArgument` (`volume ID is required`, `node ID is required`), as CSI asks.
    ///
    /// Migrating from the synchronous `publish` of version 0.1: add `.await`
    /// (`controller.publish(request).await`); a ControllerPublishVolume handler is async
    /// already.
    pub async fn publish(&self, request: Publish) -> Result<(), RpcError> {
        let can_check = self.inner.config.client.is_some();
        let mut checked: Option<HolderCheck> = None;
        // The state may change while the holder is read; a few rounds settle it.
        for _ in 0..HOLDER_CHECKS {
            let decided = self.inner.decide(|state, now, metrics, effects| {
                state.publish(&request, can_check, checked.as_ref(), now, metrics, effects)
            })?;
            match decided {
                Decided::Done => return Ok(()),
                Decided::CheckHolder(holder) => {
                    let exists = self.inner.holder_exists(&request.volume, &holder).await?;
                    checked = Some(HolderCheck { holder, exists });
                }
            }
        }
        Err(RpcError::new(
            Code::Unavailable,
            format!(
                "volume {} changed holder {HOLDER_CHECKS} times while its holder node was being checked; retry",
                request.volume
            ),
        ))
    }

    /// Waits until every migration record handed to the writer so far is written or given
    /// up, or waits on a retry's backoff. Nothing waits on it otherwise; a driver may call it
    /// at shutdown. Without a [client](ControllerConfig::client) it returns at once.
    pub async fn flush_records(&self) {
        if let Some(recorder) = &self.inner.recorder {
            recorder.flush().await;
        }
    }

    /// ControllerUnpublishVolume. Synchronous; events go through the poster. An unknown
    /// volume or node is already detached (ok, nothing posted); an empty volume id is refused
    /// with `InvalidArgument` (`volume ID is required`). An empty node name detaches nothing
    /// (`docs/lifecycle.md` has no "all nodes" row).
    pub fn unpublish(&self, volume: &VolumeId, node: &NodeName) -> Result<(), RpcError> {
        if volume.as_str().is_empty() {
            return Err(RpcError::new(
                Code::InvalidArgument,
                "volume ID is required",
            ));
        }
        self.inner.decide(|state, now, metrics, effects| {
            state.unpublish(volume, node, now, metrics, effects);
            Ok(())
        })
    }

    /// The node exists in the cluster (node watcher Added / initial list).
    pub fn node_added(&self, node: &NodeName) {
        self.inner.lock().state.nodes.insert(node.clone());
    }

    /// The node was deleted: the reconcile entry point (`docs/lifecycle.md` §Deleted nodes). Every
    /// volume attached to it is reconciled at once, in volume-id order; a second call finds
    /// nothing left to do.
    pub fn node_deleted(&self, node: &NodeName) {
        let _ = self.inner.decide(|state, now, metrics, effects| {
            state.node_deleted(node, now, metrics, effects);
            Ok(())
        });
    }

    /// The nodes the controller knows to exist, in name order.
    pub fn nodes(&self) -> Vec<NodeName> {
        self.inner.lock().state.nodes.iter().cloned().collect()
    }

    /// How many publishes are waiting on the API server for an RWO holder's Node right now
    /// (the only wait a publish has). A runner on a virtual clock moves time while this is
    /// not zero, so the lookup's timeout can fire.
    ///
    /// ```
    /// # use csi_events::model::{Controller, ControllerConfig};
    /// # use csi_events::{EventPoster, PosterConfig};
    /// # use fake_apiserver::FakeCluster;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = FakeCluster::default().client();
    /// let poster = EventPoster::new(client.clone(), PosterConfig::default());
    /// let controller = Controller::new(poster, ControllerConfig::default().client(client));
    /// assert_eq!(controller.lookups_in_flight(), 0);
    /// # }
    /// ```
    pub fn lookups_in_flight(&self) -> usize {
        self.inner.lookups.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The tracked volumes, in volume-id order (for tests, invariants and the runner).
    pub fn volumes(&self) -> Vec<VolumeView> {
        self.inner.lock().state.views()
    }

    /// How many volumes the model tracks (without building their views).
    ///
    /// ```
    /// # use csi_events::model::{Controller, ControllerConfig};
    /// # use csi_events::{EventPoster, PosterConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let client = fake_apiserver::FakeCluster::default().client();
    /// let controller = Controller::new(EventPoster::new(client, PosterConfig::default()), ControllerConfig::default());
    /// assert_eq!(controller.volume_count(), 0);
    /// # }
    /// ```
    pub fn volume_count(&self) -> usize {
        self.inner.lock().state.volumes.len()
    }

    /// One tracked volume, or `None` when the model does not track it (never attached, or
    /// detached from every node).
    pub fn volume(&self, volume: &VolumeId) -> Option<VolumeView> {
        self.inner.lock().state.view(volume)
    }

    /// The nodes `volume` is attached to, primary (or migration source) first; empty for a
    /// volume the model does not track. O(log volumes), for callers that follow one volume.
    pub fn attached_nodes(&self, volume: &VolumeId) -> Vec<NodeName> {
        self.inner
            .lock()
            .state
            .volume(volume)
            .map(|v| v.nodes.to_vec())
            .unwrap_or_default()
    }

    /// The lifecycle metrics.
    pub fn metrics(&self) -> &MigrationMetrics {
        &self.inner.config.metrics
    }

    /// How many migration timers are armed (running migrations waiting for their deadline).
    pub fn timers(&self) -> usize {
        self.inner.lock().timers.len()
    }

    /// Cancels every timer and the record writer; after this the controller posts and writes
    /// nothing more and arms no timer (decisions still answer, so a draining driver stays
    /// consistent; records not written yet are lost, as when the process ends). Dropping the
    /// last clone does the same.
    pub fn stop(&self) {
        let timers = {
            let mut locked = self.inner.lock();
            locked.stopped = true;
            std::mem::take(&mut locked.timers)
        };
        if let Some(recorder) = &self.inner.recorder {
            recorder.stop();
        }
        for (_, timer) in timers {
            timer.abort();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Locked> {
        // A poisoned lock means a decision panicked half way; the state is plain data and every
        // decision leaves it consistent before it can panic, so keep serving.
        self.locked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one decision under the lock, then applies its effects: timers are armed and
    /// cancelled and changed migration records handed to the writer under the lock (so a
    /// timer never outlives its migration and records are handed over in decision order), the
    /// gauge is set to the running migrations, and events are posted after the lock is
    /// released.
    fn decide<T>(
        self: &Arc<Self>,
        decision: impl FnOnce(
            &mut State,
            jiff::Timestamp,
            &MigrationMetrics,
            &mut Effects,
        ) -> Result<T, RpcError>,
    ) -> Result<T, RpcError> {
        let mut effects = Effects::default();
        let (result, stopped) = {
            let mut locked = self.lock();
            let now = self.config.clock.now();
            let result = decision(&mut locked.state, now, &self.config.metrics, &mut effects);
            self.apply_timers(&mut locked, &mut effects);
            self.hand_records(&locked, &mut effects);
            self.config.metrics.set_active(locked.state.running());
            (result, locked.stopped)
        };
        if !stopped {
            for post in effects.posts {
                self.poster.post(post.claim.as_ref(), post.event);
            }
        }
        result
    }

    fn apply_timers(self: &Arc<Self>, locked: &mut Locked, effects: &mut Effects) {
        for id in effects.cancel.drain(..) {
            if let Some(timer) = locked.timers.remove(&id) {
                timer.abort();
            }
        }
        if locked.stopped {
            effects.arm.clear();
            return;
        }
        for arm in effects.arm.drain(..) {
            let id = arm.migration;
            let handle = timer::spawn(&self.runtime, &self.config.clock, Arc::downgrade(self), arm);
            locked.timers.insert(id, handle);
        }
    }

    /// Hands the changed migration records of `effects` to the writer.
    fn hand_records(&self, locked: &Locked, effects: &mut Effects) {
        let records = std::mem::take(&mut effects.records);
        let Some(recorder) = &self.recorder else {
            return;
        };
        if locked.stopped {
            return;
        }
        let mut seen = std::collections::BTreeSet::new();
        for volume in records {
            if seen.insert(volume.clone()) {
                // The record the volume's migration must have on the cluster (`None`: none).
                let record = locked.state.migration_of(&volume).map(MigrationRecord::of);
                recorder.record(volume, record);
            }
        }
    }

    /// Whether the API server still has `holder` (the RWO conflict path), read once.
    async fn holder_exists(&self, volume: &VolumeId, holder: &NodeName) -> Result<bool, RpcError> {
        let Some(client) = &self.config.client else {
            return Ok(true);
        };
        let api: Api<Node> = Api::all(client.clone());
        let _busy = InFlight::enter(&self.lookups);
        let read = api.get_opt(holder.as_str());
        let timeout = self.config.clock.sleep(self.config.lookup_timeout);
        let failed = |why: String| {
            RpcError::new(
                Code::Unavailable,
                format!(
                    "could not check whether node {holder}, which holds volume {volume}, still exists: {why}; retry"
                ),
            )
        };
        tokio::select! {
            read = read => match read {
                Ok(found) => Ok(found.is_some()),
                Err(kube::Error::Api(status)) => Err(failed(format!(
                    "the API server answered {} {}",
                    status.code, status.reason
                ))),
                Err(other) => Err(failed(other.to_string())),
            },
            () = timeout => Err(failed(format!(
                "no answer within {}",
                crate::duration::GoDuration::from_std(self.config.lookup_timeout)
            ))),
        }
    }

    /// Arms the timers and hands the records of `effects` (a rebuild's migrations).
    fn arm(self: &Arc<Self>, mut effects: Effects) {
        let mut locked = self.lock();
        self.apply_timers(&mut locked, &mut effects);
        self.hand_records(&locked, &mut effects);
    }

    /// A migration's timer fired.
    pub(crate) fn fire(self: &Arc<Self>, volume: &VolumeId, migration: MigrationId) {
        let mut effects = Effects::default();
        let stopped = {
            let mut locked = self.lock();
            // The task is ending by itself: forget its handle without aborting it.
            locked.timers.remove(&migration);
            let now = self.config.clock.now();
            locked
                .state
                .time_out(volume, migration, now, &self.config.metrics, &mut effects);
            self.hand_records(&locked, &mut effects);
            self.config.metrics.set_active(locked.state.running());
            locked.stopped
        };
        if !stopped {
            for post in effects.posts {
                self.poster.post(post.claim.as_ref(), post.event);
            }
        }
    }
}

/// Counts a holder lookup as in flight while it lives.
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        InFlight(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
