//! The seam between a scenario's steps and the CSI driver they exercise.
//!
//! Everything a step does that reaches the driver goes through [`Driver`]: publish (the whole
//! request the external-attacher makes), unpublish, nodes added and deleted (as the node
//! watcher reports them), a restart after some time down, letting all due work finish, stop,
//! the attachments the model holds (for the runner's external-attacher role) and the metrics.
//! The step code never names an implementation, so another way of reaching a driver (a CSI
//! gRPC service, a driver in another process) joins as another implementation.
//!
//! [`InProcess`] is the model and the poster in this process on the virtual clock.
//!
//! ```
//! use csi_events::scenario::driver::{Driver, InProcess, PublishRequest};
//! use csi_events::model::AccessMode;
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! # runtime.block_on(async {
//! let (cluster, clock) = fake_apiserver::FakeCluster::virtual_at("2026-01-01T00:00:00Z".parse().unwrap());
//! let mut driver = InProcess::start(cluster.client(), clock, 7, true);
//! driver.node_added(&"node-a".into()).await;
//! let request = PublishRequest::new("pvc-1", "node-a", AccessMode::Rwo);
//! driver.publish(request).await.unwrap();
//! driver.quiesce().await;
//! let attached = driver.attached_to(&"pvc-1".into()).await;
//! assert_eq!(attached, Some(vec!["node-a".into()]));
//! # });
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::readings::{NotWritten, Readings};
use super::seeded::Seeded;
use crate::clock::{Clock, SharedClock, VirtualClock, settle};
use crate::ids::{NodeName, VolumeId};
use crate::metrics::EventMetrics;
use crate::model::{
    AccessMode, Code, Controller, ControllerConfig, MigrationMetrics, Publish, RpcError,
};
use crate::{EventPoster, PosterConfig};

/// The CSI driver's name: the VolumeAttachments' attacher.
pub const DRIVER_NAME: &str = "rds.csi.srvlab.io";

/// `reportingInstance` of the events a scenario writes (fixed, so transcripts do not depend on
/// the host).
pub const INSTANCE: &str = "csi-events-scenario";

/// Yields granted to the poster to finish what it can before the runner decides it waits on
/// the clock (a latency fault): everything runs in process on one thread, so this count is
/// deterministic.
const QUIESCENCE_YIELDS: usize = 20_000;

/// One ControllerPublishVolume as the external-attacher sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The volume id.
    pub volume: VolumeId,
    /// The node.
    pub node: NodeName,
    /// The volume capability's access mode.
    pub mode: AccessMode,
    /// The volume context (the PV's `volumeAttributes`, plus the claim keys when the
    /// StorageClass asks for them).
    pub context: BTreeMap<String, String>,
    /// How long the attach took (the model reports it in VolumeAttached).
    pub took: Duration,
}

impl PublishRequest {
    /// A request with an empty context that took no time.
    pub fn new(volume: impl Into<VolumeId>, node: impl Into<NodeName>, mode: AccessMode) -> Self {
        Self {
            volume: volume.into(),
            node: node.into(),
            mode,
            context: BTreeMap::new(),
            took: Duration::ZERO,
        }
    }
}

/// What a restart reports.
#[derive(Debug, Clone)]
pub struct Restarted {
    /// The metrics of the process that stopped, read after it stopped (its last events given
    /// up at shutdown included).
    pub stopped: Readings,
    /// Whether the new process came up (an error: the rebuild failed; the old process's state
    /// stays where it was).
    pub result: Result<(), RpcError>,
}

/// A CSI driver a scenario plays against. Every method may do I/O.
pub trait Driver {
    /// ControllerPublishVolume.
    fn publish(&mut self, request: PublishRequest) -> impl Future<Output = Result<(), RpcError>>;

    /// ControllerUnpublishVolume.
    fn unpublish(
        &mut self,
        volume: &VolumeId,
        node: &NodeName,
    ) -> impl Future<Output = Result<(), RpcError>>;

    /// The node watcher saw `node` appear.
    fn node_added(&mut self, node: &NodeName) -> impl Future<Output = ()>;

    /// The node watcher saw `node` deleted.
    fn node_deleted(&mut self, node: &NodeName) -> impl Future<Output = ()>;

    /// Stops the driver, lets the clock run `down` with nothing running, and starts it again
    /// (it rebuilds its state from the cluster).
    fn restart(&mut self, down: Duration) -> impl Future<Output = Restarted>;

    /// Whether the driver runs on real time in another process (its durations are then
    /// compared within 1 s, VolumeAttached's not at all).
    fn real_time(&self) -> bool {
        false
    }

    /// Moves the runner's clock by `by` (an `advance` step): the virtual clock jumps; a driver
    /// in another process runs on real time, so the runner waits first.
    fn advance(&mut self, clock: &VirtualClock, by: Duration) -> impl Future<Output = ()> {
        let _ = &self;
        clock.advance(by)
    }

    /// Lets every piece of work that is due now finish (event lookups, writes, retries whose
    /// backoff has passed), up to where it waits on the clock.
    fn quiesce(&mut self) -> impl Future<Output = ()>;

    /// Stops the driver at the end of a run: nothing more is posted.
    fn stop(&mut self) -> impl Future<Output = ()>;

    /// Every (volume, node) the model holds attached; None when the driver does not show its
    /// state (then the runner keeps VolumeAttachments from the calls it made).
    fn attached(&mut self) -> impl Future<Output = Option<BTreeSet<(VolumeId, NodeName)>>>;

    /// The nodes the model holds `volume` attached to (primary or migration source first);
    /// None when the driver does not show its state.
    fn attached_to(&mut self, volume: &VolumeId) -> impl Future<Output = Option<Vec<NodeName>>>;

    /// The driver's metrics now.
    fn metrics(&mut self) -> impl Future<Output = Readings>;

    /// The (volume, node) pairs whose VolumeAttachments the driver's caller keeps itself
    /// (black-box mode plays kube-controller-manager); None when the runner's own
    /// external-attacher keeps them. The timeline's attachment spans come from these.
    fn kept_attachments(&self) -> Option<BTreeSet<(VolumeId, NodeName)>> {
        None
    }

    /// The driver's skip and drop counters now (what [`Readings::not_written`] reads): the
    /// runner reads them before and after every step, so a driver may answer from a cache
    /// while none of them moved.
    fn not_written(&mut self) -> impl Future<Output = Arc<NotWritten>> {
        async { Arc::new(self.metrics().await.not_written()) }
    }
}

/// The controller process: poster, model and their metrics. A restart replaces all of it.
struct Process {
    poster: EventPoster,
    controller: Controller,
    events: EventMetrics,
    migrations: MigrationMetrics,
}

/// How [`InProcess::quiesce`] waits for the poster.
#[derive(Debug, Clone, Copy)]
enum Flush {
    /// Everything runs on this thread: a fixed number of yields (deterministic).
    Yields,
    /// Writes go to another server: wait (up to 30 s of wall time).
    Wall,
}

/// The model and the poster in this process, on the runner's virtual clock.
pub struct InProcess {
    client: kube::Client,
    clock: VirtualClock,
    shared_clock: SharedClock,
    seed: Seeded,
    flush: Flush,
    /// The driver's name (VolumeAttachments' attacher); a restart rebuilds from its own.
    driver_name: String,
    process: Process,
    /// The last skip and drop counters read, with the process's total of them then
    /// ([`EventMetrics::not_written_total`]); cleared when a restart replaces the process.
    not_written: Option<(u64, Arc<NotWritten>)>,
}

impl InProcess {
    /// Starts a poster writing through `client` and an empty controller. `embedded`: the API
    /// server runs in this process on the same thread (the quiescence is then deterministic).
    ///
    /// Must be called inside a tokio runtime.
    pub fn start(client: kube::Client, clock: VirtualClock, seed: u64, embedded: bool) -> Self {
        let shared_clock: SharedClock = Arc::new(clock.clone());
        let seed = Seeded::new(seed);
        let process = Self::fresh(&client, &shared_clock, seed, DRIVER_NAME);
        Self {
            client,
            clock,
            shared_clock,
            seed,
            flush: if embedded { Flush::Yields } else { Flush::Wall },
            driver_name: DRIVER_NAME.to_owned(),
            process,
            not_written: None,
        }
    }

    /// The same, for a driver of another name (a run against a shared API server is a driver
    /// of its own, so a restart rebuilds from this run's VolumeAttachments only).
    pub fn with_driver_name(mut self, name: &str) -> Self {
        self.driver_name = name.to_owned();
        self.process = Self::fresh(&self.client, &self.shared_clock, self.seed, name);
        self.not_written = None;
        self
    }

    fn fresh(
        client: &kube::Client,
        clock: &SharedClock,
        seed: Seeded,
        driver_name: &str,
    ) -> Process {
        let (poster_config, controller_config, events, migrations) =
            Self::config(clock, seed, driver_name);
        let poster = EventPoster::new(client.clone(), poster_config);
        let controller = Controller::new(poster.clone(), controller_config.client(client.clone()));
        Process {
            poster,
            controller,
            events,
            migrations,
        }
    }

    fn config(
        clock: &SharedClock,
        seed: Seeded,
        driver_name: &str,
    ) -> (
        PosterConfig,
        ControllerConfig,
        EventMetrics,
        MigrationMetrics,
    ) {
        let events = EventMetrics::default();
        let migrations = MigrationMetrics::default();
        let poster = PosterConfig::default()
            .instance(INSTANCE)
            .clock(clock.clone())
            .metrics(events.clone())
            .retry(seed.retry_policy());
        let controller = ControllerConfig::default()
            .clock(clock.clone())
            .driver_name(driver_name)
            .metrics(migrations.clone());
        (poster, controller, events, migrations)
    }

    async fn rebuild(&self) -> Result<Process, String> {
        let (poster_config, controller_config, events, migrations) =
            Self::config(&self.shared_clock, self.seed, &self.driver_name);
        let poster = EventPoster::new(self.client.clone(), poster_config);
        let controller =
            Controller::rebuild(self.client.clone(), poster.clone(), controller_config)
                .await
                .map_err(|e| e.to_string())?;
        Ok(Process {
            poster,
            controller,
            events,
            migrations,
        })
    }

    /// The driver's API client (faults apply to it).
    pub(crate) fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The runner's clock as the driver shares it.
    pub(crate) fn shared_clock(&self) -> &SharedClock {
        &self.shared_clock
    }

    /// The runner's virtual clock.
    pub(crate) fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// The model of the running process (replaced by a restart).
    pub(crate) fn controller(&self) -> &Controller {
        &self.process.controller
    }

    fn readings(&self) -> Readings {
        Readings::of(&self.process.events, &self.process.migrations)
    }
}

/// The most deadlines one `advance` against another API server stops at (then it jumps).
const MAX_STOPS: usize = 100_000;

/// A span of nanoseconds as a duration (none when negative).
fn nanos(span: i128) -> Duration {
    Duration::from_nanos(u64::try_from(span.max(0)).unwrap_or(u64::MAX))
}

/// Awaits `call` (a publish) on the runner's virtual clock: whenever it is still waiting once
/// everything else has run, and the model is waiting on the API server for an RWO holder's
/// Node, the clock moves to its next deadline, as real time would — so the lookup's timeout
/// fires (`Unavailable`) however long a latency fault holds the answer (docs/scenarios.md §2).
/// The call's wait then shows as virtual time passing in the transcript.
pub(crate) async fn on_the_clock<F: Future>(
    clock: &VirtualClock,
    controller: &Controller,
    call: F,
) -> F::Output {
    futures::pin_mut!(call);
    loop {
        tokio::select! {
            biased;
            out = &mut call => return out,
            () = settle() => {}
        }
        if controller.lookups_in_flight() > 0
            && let Some(deadline) = clock.next_deadline()
        {
            clock
                .advance(nanos(
                    deadline.as_nanosecond() - clock.now().as_nanosecond(),
                ))
                .await;
        }
    }
}

impl Driver for InProcess {
    async fn publish(&mut self, request: PublishRequest) -> Result<(), RpcError> {
        let call = self.process.controller.publish(Publish {
            volume: request.volume,
            node: request.node,
            mode: request.mode,
            context: request.context,
            took: request.took,
        });
        match self.flush {
            Flush::Yields => on_the_clock(&self.clock, &self.process.controller, call).await,
            // Against another API server the answer comes in real time.
            Flush::Wall => call.await,
        }
    }

    async fn unpublish(&mut self, volume: &VolumeId, node: &NodeName) -> Result<(), RpcError> {
        self.process.controller.unpublish(volume, node)
    }

    async fn node_added(&mut self, node: &NodeName) {
        self.process.controller.node_added(node);
    }

    async fn node_deleted(&mut self, node: &NodeName) {
        self.process.controller.node_deleted(node);
    }

    async fn restart(&mut self, down: Duration) -> Restarted {
        self.process.controller.stop();
        let report = self.process.poster.shutdown(Duration::ZERO).await;
        drop(report);
        let stopped = self.readings();
        if !down.is_zero() {
            // Down: the clock moves with no controller and no poster running.
            self.clock.advance(down).await;
        }
        let result = match self.rebuild().await {
            Ok(process) => {
                self.process = process;
                self.not_written = None;
                Ok(())
            }
            Err(why) => Err(RpcError::new(
                Code::Unavailable,
                format!("rebuild failed: {why}"),
            )),
        };
        Restarted { stopped, result }
    }

    async fn advance(&mut self, clock: &VirtualClock, by: Duration) {
        if matches!(self.flush, Flush::Yields) {
            return clock.advance(by).await;
        }
        // Against another API server a woken timer's writes travel in real time: the clock
        // stops at each deadline until what is in flight has landed, so no request timeout or
        // backoff on the virtual clock runs out while an answer is on its way.
        let target =
            clock.now().as_nanosecond() + i128::try_from(by.as_nanos()).unwrap_or(i128::MAX);
        for _ in 0..MAX_STOPS {
            self.quiesce().await;
            let now = clock.now().as_nanosecond();
            let next = clock
                .next_deadline()
                .map(|at| at.as_nanosecond())
                .filter(|at| *at <= target);
            let stop = next.unwrap_or(target);
            clock.advance(nanos(stop - now)).await;
            if next.is_none() {
                return;
            }
        }
        let now = clock.now().as_nanosecond();
        clock.advance(nanos(target - now)).await;
    }

    async fn quiesce(&mut self) {
        settle().await;
        match self.flush {
            Flush::Yields => {
                let flush = self.process.poster.flush();
                futures::pin_mut!(flush);
                for _ in 0..QUIESCENCE_YIELDS {
                    if futures::poll!(flush.as_mut()).is_ready() {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                settle().await;
            }
            Flush::Wall => {
                let _ = tokio::time::timeout(Duration::from_secs(30), self.process.poster.flush())
                    .await;
                // The migration records too, so a restart step reads what the model wrote.
                let _ = tokio::time::timeout(
                    Duration::from_secs(30),
                    self.process.controller.flush_records(),
                )
                .await;
            }
        }
    }

    async fn stop(&mut self) {
        self.process.controller.stop();
    }

    async fn attached(&mut self) -> Option<BTreeSet<(VolumeId, NodeName)>> {
        Some(
            self.process
                .controller
                .volumes()
                .into_iter()
                .flat_map(|view| {
                    let volume = view.volume.clone();
                    view.nodes
                        .into_iter()
                        .map(move |node| (volume.clone(), node))
                })
                .collect(),
        )
    }

    async fn attached_to(&mut self, volume: &VolumeId) -> Option<Vec<NodeName>> {
        Some(self.process.controller.attached_nodes(volume))
    }

    async fn metrics(&mut self) -> Readings {
        self.readings()
    }

    async fn not_written(&mut self) -> Arc<NotWritten> {
        let total = self.process.events.not_written_total();
        match &self.not_written {
            Some((seen, counts)) if *seen == total => Arc::clone(counts),
            _ => {
                let counts = Arc::new(self.readings().not_written());
                self.not_written = Some((total, Arc::clone(&counts)));
                counts
            }
        }
    }
}
