//! Plays a checked scenario and records its transcript.
//!
//! Embedded (the default): a fresh [`FakeCluster`] on a [`VirtualClock`] at
//! 2026-01-01T00:00:00Z, its own current-thread tokio runtime, an [`EventPoster`] and a
//! [`Controller`] on that clock. The runner seeds the cluster, plays each step, then runs all
//! due work to quiescence (woken tasks, the poster's writes) before recording what the step
//! wrote: the events are read back from the fake server's own watch history (every create
//! and patch that the server stored, in write order, with the count it stored), the skips and
//! drops from the poster's counters. Time moves only in `advance`.
//!
//! It plays the external-attacher too: after every step it keeps exactly one
//! VolumeAttachment (attacher = driver name, `status.attached: true`) per node the model has
//! a volume attached to, creating new ones and deleting detached or cleared ones, so
//! `restartController` has something to rebuild from.
//!
//! External (`--kubeconfig`): the same steps against another API server; objects are created
//! for the scenario (and deleted afterwards unless `keep`), the virtual clock starts at the
//! wall-clock time, `fault` steps are refused up front, and events are read back by listing
//! (several writes of one Event during one step show as one entry with the last count).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, Event, Namespace, Node, ObjectReference, PersistentVolume,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec,
    VolumeResourceRequirements,
};
use k8s_openapi::api::storage::v1::{
    VolumeAttachment, VolumeAttachmentSource, VolumeAttachmentSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use prometheus_client::registry::Registry;
use serde_json::json;

use super::plan::{AccessModeSpec, Action, EventExpectation, PlannedStep, Scenario, Volume};
use super::transcript::{Outcome, Skipped, StepRecord, Transcript, WrittenEvent};
use crate::clock::{Clock, SharedClock, VirtualClock, settle};
use crate::duration::GoDuration;
use crate::ids::{ClaimName, NodeName, VolumeId};
use crate::metrics::{DropCause, EventMetrics, SkipCause};
use crate::model::{AccessMode, Controller, ControllerConfig, MigrationMetrics, Publish, RpcError};
use crate::{EventPoster, PosterConfig, Reason, RetryPolicy};
use fake_apiserver::FakeCluster;

/// The CSI driver's name: the VolumeAttachments' attacher.
pub const DRIVER_NAME: &str = "rds.csi.srvlab.io";

/// `reportingInstance` of the events a scenario writes (fixed, so transcripts do not depend on
/// the host).
pub const INSTANCE: &str = "csi-events-scenario";

/// Where the virtual clock starts in embedded mode.
pub const EPOCH: &str = "2026-01-01T00:00:00Z";

/// Yields granted to the poster to finish what it can before the runner decides it waits on
/// the clock (a latency fault): everything runs in process on one thread, so this count is
/// deterministic.
const QUIESCENCE_YIELDS: usize = 20_000;

/// Where a scenario runs.
#[derive(Debug, Clone, Default)]
pub enum Target {
    /// A fresh in-process fake cluster per scenario.
    #[default]
    Embedded,
    /// The API server of a kubeconfig file.
    External {
        /// The kubeconfig file.
        kubeconfig: PathBuf,
        /// Keep the objects the scenario created.
        keep: bool,
    },
}

/// What one run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The scenario's name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// The transcript.
    pub transcript: Transcript,
    /// Failed expectations and unexpected step failures (empty: the expectations held).
    pub failures: Vec<String>,
    /// Wall time the run took (runtime, cluster and all steps).
    pub wall: Duration,
}

/// Why a scenario could not be run at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The scenario needs the embedded server (a `fault` step) but runs against a kubeconfig.
    #[error(
        "{file}:{line}: `{step}` needs the embedded fake API server: fault steps cannot run against --kubeconfig (run without --kubeconfig, or leave this scenario out with --filter)"
    )]
    NeedsEmbedded {
        /// File.
        file: String,
        /// Line of the step.
        line: u32,
        /// The step.
        step: String,
    },
    /// The runtime or the cluster could not be set up.
    #[error("{0}")]
    Setup(String),
}

/// Refuses up front what cannot run on `target`.
pub fn check_target(scenario: &Scenario, target: &Target) -> Result<(), RunError> {
    if let Target::External { .. } = target
        && let Some(step) = scenario.needs_embedded_server()
    {
        return Err(RunError::NeedsEmbedded {
            file: scenario.file.clone(),
            line: step.line,
            step: step.text.clone(),
        });
    }
    Ok(())
}

/// Runs one scenario on its own current-thread runtime.
///
/// ```
/// use csi_events::scenario::{load::load_text, runner::{run, Target}};
/// let scenario = load_text("x.yaml", "name: x\ncluster: {nodes: [node-a]}\nsteps:\n  - addNode: node-b\n").unwrap();
/// let result = run(&scenario, &Target::Embedded).unwrap();
/// assert!(result.failures.is_empty());
/// assert_eq!(result.transcript.steps[0].step, "add node node-b");
/// ```
pub fn run(scenario: &Scenario, target: &Target) -> Result<RunResult, RunError> {
    check_target(scenario, target)?;
    let started = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Setup(format!("cannot start a tokio runtime: {e}")))?;
    let mut result = runtime.block_on(async {
        match target {
            Target::Embedded => run_embedded(scenario).await,
            Target::External { kubeconfig, keep } => {
                run_external(scenario, kubeconfig, *keep).await
            }
        }
    })?;
    result.wall = started.elapsed();
    Ok(result)
}

async fn run_embedded(scenario: &Scenario) -> Result<RunResult, RunError> {
    let epoch: jiff::Timestamp = EPOCH
        .parse()
        .map_err(|e| RunError::Setup(format!("bad epoch: {e}")))?;
    let (cluster, clock) = FakeCluster::virtual_at(epoch);
    let admin = fake_apiserver::transport::in_process_client(cluster.server().clone());
    let events = EventFeed::watch(&cluster).await?;
    let world = World {
        admin,
        driver: cluster.client(),
        cluster: Some(cluster),
        clock: clock.clone(),
        shared_clock: Arc::new(clock),
        start: epoch,
        events,
        embedded: true,
    };
    world.play(scenario).await
}

async fn run_external(
    scenario: &Scenario,
    kubeconfig: &PathBuf,
    keep: bool,
) -> Result<RunResult, RunError> {
    let client = external_client(kubeconfig).await?;
    let start = jiff::Timestamp::now();
    let clock = VirtualClock::new(start);
    let events = EventFeed::listing(client.clone(), scenario.namespaces()).await?;
    let world = World {
        admin: client.clone(),
        driver: client,
        cluster: None,
        clock: clock.clone(),
        shared_clock: Arc::new(clock),
        start,
        events,
        embedded: false,
    };
    world.play_and_clean(scenario, keep).await
}

async fn external_client(kubeconfig: &PathBuf) -> Result<kube::Client, RunError> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .map_err(|e| RunError::Setup(format!("cannot read {}: {e}", kubeconfig.display())))?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .map_err(|e| RunError::Setup(format!("bad kubeconfig {}: {e}", kubeconfig.display())))?;
    kube::Client::try_from(config).map_err(|e| {
        RunError::Setup(format!(
            "cannot build a client for {}: {e}",
            kubeconfig.display()
        ))
    })
}

/// The controller process: poster, model and their metrics. A restart replaces all of it.
struct Process {
    poster: EventPoster,
    controller: Controller,
    events: EventMetrics,
    migrations: MigrationMetrics,
}

impl Process {
    fn config(
        clock: &SharedClock,
        seed: u64,
    ) -> (
        PosterConfig,
        ControllerConfig,
        EventMetrics,
        MigrationMetrics,
    ) {
        let events = EventMetrics::default();
        let migrations = MigrationMetrics::default();
        let retry = RetryPolicy {
            seed: RetryPolicy::default().seed ^ seed,
            ..RetryPolicy::default()
        };
        let poster = PosterConfig::default()
            .instance(INSTANCE)
            .clock(clock.clone())
            .metrics(events.clone())
            .retry(retry);
        let controller = ControllerConfig::default()
            .clock(clock.clone())
            .driver_name(DRIVER_NAME)
            .metrics(migrations.clone());
        (poster, controller, events, migrations)
    }

    fn start(client: kube::Client, clock: &SharedClock, seed: u64) -> Self {
        let (poster_config, controller_config, events, migrations) = Self::config(clock, seed);
        let poster = EventPoster::new(client.clone(), poster_config);
        let controller = Controller::new(poster.clone(), controller_config.client(client));
        Self {
            poster,
            controller,
            events,
            migrations,
        }
    }

    async fn rebuild(client: kube::Client, clock: &SharedClock, seed: u64) -> Result<Self, String> {
        let (poster_config, controller_config, events, migrations) = Self::config(clock, seed);
        let poster = EventPoster::new(client.clone(), poster_config);
        let controller = Controller::rebuild(client, poster.clone(), controller_config)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            poster,
            controller,
            events,
            migrations,
        })
    }

    /// The metrics as Prometheus exposes them (prefix `rds_csi`).
    fn series(&self) -> BTreeMap<String, f64> {
        let mut registry = Registry::with_prefix("rds_csi");
        self.events.register(&mut registry);
        self.migrations.register(&mut registry);
        parse_series(&crate::metrics::encode_text(&registry))
    }

    /// Every skip and drop counter as ((reason, cause), count): the known causes in a fixed
    /// order (reasons in `Reason::ALL` order, skip causes, then drop causes), then any cause
    /// the poster counts that this list does not know yet, in series order.
    fn not_written(&self) -> Vec<((String, String), u64)> {
        let mut counts = Vec::new();
        for reason in Reason::ALL {
            for cause in SKIP_CAUSES {
                let key = (reason.as_str().to_owned(), cause.as_str().to_owned());
                counts.push((key, self.events.skipped(*reason, cause)));
            }
            for cause in DROP_CAUSES {
                let key = (reason.as_str().to_owned(), cause.as_str().to_owned());
                counts.push((key, self.events.dropped(*reason, cause)));
            }
        }
        let known: BTreeSet<(String, String)> = counts.iter().map(|(k, _)| k.clone()).collect();
        for (series, value) in self.series() {
            let (name, labels) = split_series(&series);
            if name != "rds_csi_events_skipped_total" && name != "rds_csi_events_dropped_total" {
                continue;
            }
            let (Some(reason), Some(cause)) = (labels.get("reason"), labels.get("cause")) else {
                continue;
            };
            let key = (reason.clone(), cause.clone());
            if !known.contains(&key) {
                counts.push((key, value.max(0.0) as u64));
            }
        }
        counts
    }
}

const SKIP_CAUSES: [SkipCause; 4] = [
    SkipCause::PvNotFound,
    SkipCause::NoClaimRef,
    SkipCause::PvcNotFound,
    SkipCause::PvcUidMismatch,
];
const DROP_CAUSES: [DropCause; 5] = [
    DropCause::QueueFull,
    DropCause::RateLimited,
    DropCause::RetriesExhausted,
    DropCause::Rejected,
    DropCause::Shutdown,
];

/// The skip/drop entries between two [`Process::not_written`] readings.
fn not_written_delta(
    before: &[((String, String), u64)],
    after: &[((String, String), u64)],
) -> Vec<Skipped> {
    let was: BTreeMap<&(String, String), u64> = before.iter().map(|(k, v)| (k, *v)).collect();
    let mut out = Vec::new();
    for (key, now) in after {
        let was = was.get(key).copied().unwrap_or(0);
        for _ in was..*now {
            out.push(Skipped {
                reason: key.0.clone(),
                cause: key.1.clone(),
            });
        }
    }
    out
}

/// Parses Prometheus text into `series → value`, leaving out comments and histogram buckets.
fn parse_series(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let name = series.split('{').next().unwrap_or(series);
            (!name.ends_with("_bucket") && !name.ends_with("_created"))
                .then(|| (series.to_owned(), value))
        })
        .collect()
}

/// A metric value as a number: integral values without a fraction.
fn number(value: f64) -> serde_json::Number {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        serde_json::Number::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).unwrap_or_else(|| serde_json::Number::from(0))
    }
}

/// Splits `name{a="b",c="d"}` into its name and labels.
fn split_series(series: &str) -> (&str, BTreeMap<String, String>) {
    let Some((name, rest)) = series.split_once('{') else {
        return (series, BTreeMap::new());
    };
    let body = rest.trim_end_matches('}');
    let mut labels = BTreeMap::new();
    for pair in body.split("\",") {
        if let Some((key, value)) = pair.split_once("=\"") {
            labels.insert(key.to_owned(), value.trim_end_matches('"').to_owned());
        }
    }
    (name, labels)
}

/// The sum of the series of metric `name` (with or without the `rds_csi_` prefix and the
/// `_total` suffix) whose labels include `labels`.
fn metric_value(
    series: &BTreeMap<String, f64>,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> f64 {
    let wanted: Vec<String> = {
        let base = name.strip_prefix("rds_csi_").unwrap_or(name);
        vec![format!("rds_csi_{base}"), format!("rds_csi_{base}_total")]
    };
    series
        .iter()
        .filter(|(s, _)| {
            let (n, l) = split_series(s);
            wanted.iter().any(|w| w == n) && labels.iter().all(|(k, v)| l.get(k) == Some(v))
        })
        .map(|(_, v)| *v)
        .fold(0.0, |sum, v| sum + v)
}

/// Where written events are read from.
enum EventFeed {
    /// The fake server's watch stream over every namespace (every stored write, in order).
    Watch(
        http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>,
        Vec<u8>,
    ),
    /// Listing (external mode): new Events and count changes since the last listing.
    Listing {
        client: kube::Client,
        namespaces: Vec<String>,
        seen: BTreeMap<(String, String), i32>,
    },
}

impl EventFeed {
    async fn watch(cluster: &FakeCluster) -> Result<Self, RunError> {
        let rv = cluster.server().resource_version();
        let uri = format!("/api/v1/events?watch=true&resourceVersion={rv}&timeoutSeconds=86400");
        let request = http::Request::get(uri)
            .body(Bytes::new())
            .map_err(|e| RunError::Setup(format!("cannot build the event watch: {e}")))?;
        let response = cluster.server().handle(request).await;
        if !response.status().is_success() {
            return Err(RunError::Setup(format!(
                "the fake API server refused the event watch: {}",
                response.status()
            )));
        }
        Ok(EventFeed::Watch(response.into_body(), Vec::new()))
    }

    async fn listing(client: kube::Client, namespaces: Vec<String>) -> Result<Self, RunError> {
        let mut feed = EventFeed::Listing {
            client,
            namespaces,
            seen: BTreeMap::new(),
        };
        // What is already there (an earlier run with --keep) is not this run's.
        let _ = feed.drain().await;
        Ok(feed)
    }

    /// The writes since the last call, in order.
    async fn drain(&mut self) -> Vec<WrittenEvent> {
        match self {
            EventFeed::Watch(body, buffer) => {
                loop {
                    let frame = {
                        let next = body.frame();
                        futures::pin_mut!(next);
                        match futures::poll!(next) {
                            std::task::Poll::Ready(Some(Ok(frame))) => frame,
                            _ => break,
                        }
                    };
                    if let Ok(data) = frame.into_data() {
                        buffer.extend_from_slice(&data);
                    }
                }
                let mut written = Vec::new();
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&line) else {
                        continue;
                    };
                    let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or("");
                    if kind != "ADDED" && kind != "MODIFIED" {
                        continue;
                    }
                    if let Some(event) = value
                        .get("object")
                        .cloned()
                        .and_then(|o| serde_json::from_value::<Event>(o).ok())
                    {
                        written.push(written_event(&event));
                    }
                }
                written
            }
            EventFeed::Listing {
                client,
                namespaces,
                seen,
            } => {
                let mut written = Vec::new();
                for namespace in namespaces.iter() {
                    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
                    let Ok(list) = api.list(&ListParams::default()).await else {
                        continue;
                    };
                    let mut items = list.items;
                    items.sort_by_key(|e| {
                        (
                            e.last_timestamp.as_ref().map(|t| t.0),
                            e.metadata.name.clone(),
                        )
                    });
                    for event in items {
                        let key = (
                            namespace.clone(),
                            event.metadata.name.clone().unwrap_or_default(),
                        );
                        let count = event.count.unwrap_or(1);
                        if seen.get(&key) != Some(&count) {
                            seen.insert(key, count);
                            written.push(written_event(&event));
                        }
                    }
                }
                written
            }
        }
    }
}

fn written_event(event: &Event) -> WrittenEvent {
    WrittenEvent {
        event_type: event.type_.clone().unwrap_or_default(),
        reason: event.reason.clone().unwrap_or_default(),
        namespace: event.involved_object.namespace.clone().unwrap_or_default(),
        name: event.involved_object.name.clone().unwrap_or_default(),
        message: event.message.clone().unwrap_or_default(),
        count: event.count.unwrap_or(1),
    }
}

/// Everything a run plays against.
struct World {
    /// Writes the runner makes itself (seeding, claims, nodes, attachments): no faults.
    admin: kube::Client,
    /// The driver's client (faults apply).
    driver: kube::Client,
    cluster: Option<FakeCluster>,
    clock: VirtualClock,
    shared_clock: SharedClock,
    start: jiff::Timestamp,
    events: EventFeed,
    embedded: bool,
}

/// The runner's own state during a run.
struct Run<'a> {
    scenario: &'a Scenario,
    process: Process,
    /// (volume, node) → VolumeAttachment name, as the external-attacher keeps them.
    attachments: BTreeMap<(VolumeId, NodeName), String>,
    /// Events written since the last expectEvents.
    unchecked: Vec<WrittenEvent>,
    failures: Vec<String>,
    steps: Vec<StepRecord>,
    stopped: bool,
}

impl World {
    async fn play_and_clean(
        mut self,
        scenario: &Scenario,
        keep: bool,
    ) -> Result<RunResult, RunError> {
        let result = self.play_inner(scenario).await;
        if !keep {
            self.clean(scenario).await;
        }
        result
    }

    async fn play(mut self, scenario: &Scenario) -> Result<RunResult, RunError> {
        self.play_inner(scenario).await
    }

    async fn play_inner(&mut self, scenario: &Scenario) -> Result<RunResult, RunError> {
        self.seed(scenario).await?;
        let process = Process::start(self.driver.clone(), &self.shared_clock, scenario.seed);
        for node in &scenario.nodes {
            process.controller.node_added(node);
        }
        let mut run = Run {
            scenario,
            process,
            attachments: BTreeMap::new(),
            unchecked: Vec::new(),
            failures: Vec::new(),
            steps: Vec::new(),
            stopped: false,
        };
        // Anything the start itself wrote (nothing, normally) belongs to no step.
        let _ = self.events.drain().await;
        for step in &scenario.steps {
            if run.stopped {
                break;
            }
            let record = self.step(&mut run, step).await;
            run.steps.push(record);
        }
        run.process.controller.stop();
        let metrics = run
            .process
            .series()
            .into_iter()
            .filter(|(_, v)| *v != 0.0)
            .map(|(series, value)| (series.replace('"', ""), number(value)))
            .collect();
        Ok(RunResult {
            name: scenario.name.clone(),
            file: scenario.file.clone(),
            transcript: Transcript {
                steps: run.steps,
                metrics,
            },
            failures: run.failures,
            wall: Duration::ZERO,
        })
    }

    async fn step(&mut self, run: &mut Run<'_>, step: &PlannedStep) -> StepRecord {
        let at = GoDuration::from_std(self.clock.now().duration_since(self.start).unsigned_abs())
            .to_string();
        let before = run.process.not_written();
        let mut skipped = Vec::new();
        let outcome = match &step.action {
            Action::Attach {
                volume,
                node,
                took,
                expect_error,
            } => {
                let result = self.attach(run, volume, node, *took).await;
                check_call(run, step, result, expect_error.as_deref())
            }
            Action::Detach {
                volume,
                node,
                expect_error,
            } => {
                let result = run.process.controller.unpublish(volume, node);
                check_call(run, step, result, expect_error.as_deref())
            }
            Action::Advance(duration) => {
                self.clock.advance(*duration).await;
                Outcome::ok()
            }
            Action::AddNode(node) => {
                let outcome = self.create_node(node).await;
                if outcome.is_ok() {
                    run.process.controller.node_added(node);
                }
                self.admin_outcome(run, step, outcome)
            }
            Action::DeleteNode { node, observed } => {
                let api: Api<Node> = Api::all(self.admin.clone());
                // Already gone (an earlier unobserved deletion) is fine: now it is seen.
                let result = match api.delete(node.as_str(), &DeleteParams::default()).await {
                    Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
                    other => other.map(|_| ()),
                };
                if result.is_ok() && *observed {
                    run.process.controller.node_deleted(node);
                }
                self.admin_outcome(run, step, result)
            }
            Action::CreateClaim(claim) => {
                let result = self.create_claim(run.scenario, claim).await.map(|_| ());
                self.admin_outcome(run, step, result)
            }
            Action::DeleteClaim(claim) => {
                let api: Api<PersistentVolumeClaim> =
                    Api::namespaced(self.admin.clone(), claim.namespace());
                let result = api
                    .delete(claim.name(), &DeleteParams::default())
                    .await
                    .map(|_| ());
                self.admin_outcome(run, step, result)
            }
            Action::RestartController { down } => {
                run.process.controller.stop();
                let report = run.process.poster.shutdown(Duration::ZERO).await;
                drop(report);
                skipped.extend(not_written_delta(&before, &run.process.not_written()));
                if !down.is_zero() {
                    // Down: the clock moves with no controller and no poster running.
                    self.clock.advance(*down).await;
                }
                match Process::rebuild(self.driver.clone(), &self.shared_clock, run.scenario.seed)
                    .await
                {
                    Ok(process) => {
                        run.process = process;
                        Outcome::ok()
                    }
                    Err(why) => {
                        run.failures.push(format!(
                            "line {}: restart controller: the rebuild failed: {why}; the remaining steps were not run",
                            step.line
                        ));
                        run.stopped = true;
                        Outcome::Error {
                            code: "Unavailable".to_owned(),
                            message: format!("rebuild failed: {why}"),
                        }
                    }
                }
            }
            Action::Fault(rule) => {
                if let Some(cluster) = &self.cluster {
                    cluster.faults().add(rule.to_fault());
                }
                Outcome::ok()
            }
            Action::ClearFaults => {
                if let Some(cluster) = &self.cluster {
                    cluster.faults().clear();
                }
                Outcome::ok()
            }
            Action::ExpectEvents(expected) => {
                let written = std::mem::take(&mut run.unchecked);
                if let Some(why) = events_mismatch(expected, &written) {
                    run.failures.push(format!("line {}: {why}", step.line));
                }
                Outcome::ok()
            }
            Action::ExpectMetric {
                name,
                labels,
                value,
            } => {
                let actual = metric_value(&run.process.series(), name, labels);
                if (actual - value).abs() > 1e-9 {
                    run.failures.push(format!(
                        "line {}: {}: the value is {actual}",
                        step.line, step.text
                    ));
                }
                Outcome::ok()
            }
        };
        self.quiesce(&run.process).await;
        self.keep_attachments(run).await;
        let events = self.events.drain().await;
        run.unchecked.extend(events.iter().cloned());
        let after = run.process.not_written();
        if !matches!(step.action, Action::RestartController { .. }) {
            skipped.extend(not_written_delta(&before, &after));
        }
        StepRecord {
            at,
            step: step.text.clone(),
            outcome,
            events,
            skipped,
        }
    }

    async fn attach(
        &self,
        run: &Run<'_>,
        volume: &VolumeId,
        node: &NodeName,
        took: Duration,
    ) -> Result<(), RpcError> {
        let spec = run.scenario.volume(volume);
        let (mode, context) = match spec {
            Some(v) => (mode_of(v.mode), v.context(v.claim_in_context)),
            None => (AccessMode::Rwo, BTreeMap::new()),
        };
        run.process
            .controller
            .publish(Publish {
                volume: volume.clone(),
                node: node.clone(),
                mode,
                context,
                took,
            })
            .await
    }

    fn admin_outcome(
        &self,
        run: &mut Run<'_>,
        step: &PlannedStep,
        result: Result<(), kube::Error>,
    ) -> Outcome {
        match result {
            Ok(()) => Outcome::ok(),
            Err(error) => {
                let message = match &error {
                    kube::Error::Api(status) => {
                        format!("{} {}: {}", status.code, status.reason, status.message)
                    }
                    other => other.to_string(),
                };
                run.failures.push(format!(
                    "line {}: {}: the API server refused it: {message}",
                    step.line, step.text
                ));
                Outcome::Error {
                    code: "Internal".to_owned(),
                    message,
                }
            }
        }
    }

    /// Runs everything due now to quiescence: woken tasks, then the poster's queue (up to the
    /// point where it waits on the clock).
    async fn quiesce(&self, process: &Process) {
        settle().await;
        if self.embedded {
            let flush = process.poster.flush();
            futures::pin_mut!(flush);
            for _ in 0..QUIESCENCE_YIELDS {
                if futures::poll!(flush.as_mut()).is_ready() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            settle().await;
        } else {
            let _ = tokio::time::timeout(Duration::from_secs(30), process.poster.flush()).await;
            // The migration records too, so a restart step reads what the model wrote.
            let _ =
                tokio::time::timeout(Duration::from_secs(30), process.controller.flush_records())
                    .await;
        }
    }

    /// Makes the VolumeAttachments match the model: one per attached node.
    async fn keep_attachments(&self, run: &mut Run<'_>) {
        let attached: BTreeSet<(VolumeId, NodeName)> = run
            .process
            .controller
            .volumes()
            .into_iter()
            .flat_map(|view| {
                let volume = view.volume.clone();
                view.nodes
                    .into_iter()
                    .map(move |node| (volume.clone(), node))
            })
            .collect();
        let api: Api<VolumeAttachment> = Api::all(self.admin.clone());
        let gone: Vec<(VolumeId, NodeName)> = run
            .attachments
            .keys()
            .filter(|key| !attached.contains(*key))
            .cloned()
            .collect();
        for key in gone {
            if let Some(name) = run.attachments.remove(&key) {
                let _ = api.delete(&name, &DeleteParams::default()).await;
            }
        }
        for (volume, node) in attached {
            if run
                .attachments
                .contains_key(&(volume.clone(), node.clone()))
            {
                continue;
            }
            let name = attachment_name(&volume, &node);
            let attachment = VolumeAttachment {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..ObjectMeta::default()
                },
                spec: VolumeAttachmentSpec {
                    attacher: DRIVER_NAME.to_owned(),
                    node_name: node.to_string(),
                    source: VolumeAttachmentSource {
                        persistent_volume_name: Some(volume.to_string()),
                        ..VolumeAttachmentSource::default()
                    },
                },
                status: None,
            };
            let _ = api.delete(&name, &DeleteParams::default()).await;
            if api
                .create(&PostParams::default(), &attachment)
                .await
                .is_ok()
            {
                let status = json!({"status": {"attached": true}});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            }
            run.attachments.insert((volume, node), name);
        }
    }

    async fn seed(&mut self, scenario: &Scenario) -> Result<(), RunError> {
        let setup = |what: String| move |e: kube::Error| RunError::Setup(format!("{what}: {e}"));
        let namespaces: Api<Namespace> = Api::all(self.admin.clone());
        for namespace in scenario.namespaces() {
            let object = Namespace {
                metadata: ObjectMeta {
                    name: Some(namespace.clone()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            match namespaces.create(&PostParams::default(), &object).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(e) => return Err(setup(format!("cannot create namespace {namespace}"))(e)),
            }
        }
        for node in &scenario.nodes {
            self.create_node(node)
                .await
                .map_err(setup(format!("cannot create node {node}")))?;
        }
        let mut uids = BTreeMap::new();
        for claim in &scenario.claims {
            let uid = self
                .create_claim(scenario, claim)
                .await
                .map_err(setup(format!("cannot create claim {claim}")))?;
            uids.insert(claim.clone(), uid);
        }
        let api: Api<PersistentVolume> = Api::all(self.admin.clone());
        for volume in &scenario.volumes {
            let claim_ref = volume.claim.as_ref().map(|claim| ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("PersistentVolumeClaim".to_owned()),
                namespace: Some(claim.namespace().to_owned()),
                name: Some(claim.name().to_owned()),
                uid: Some(
                    uids.get(claim)
                        .cloned()
                        .unwrap_or_else(|| seeded_uid(scenario.seed, &claim.to_string())),
                ),
                ..ObjectReference::default()
            });
            let pv = PersistentVolume {
                metadata: ObjectMeta {
                    name: Some(volume.id.to_string()),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeSpec {
                    access_modes: Some(vec![access_mode_name(volume.mode).to_owned()]),
                    capacity: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity("1Gi".to_owned()),
                    )])),
                    claim_ref,
                    csi: Some(CSIPersistentVolumeSource {
                        driver: DRIVER_NAME.to_owned(),
                        volume_handle: volume.id.to_string(),
                        volume_attributes: Some(volume.context(volume.claim_in_context)),
                        ..CSIPersistentVolumeSource::default()
                    }),
                    persistent_volume_reclaim_policy: Some("Delete".to_owned()),
                    ..PersistentVolumeSpec::default()
                }),
                status: None,
            };
            replace(&api, volume.id.as_str(), &pv)
                .await
                .map_err(setup(format!("cannot create volume {}", volume.id)))?;
        }
        Ok(())
    }

    async fn create_node(&self, node: &NodeName) -> Result<(), kube::Error> {
        let api: Api<Node> = Api::all(self.admin.clone());
        let object = Node {
            metadata: ObjectMeta {
                name: Some(node.to_string()),
                ..ObjectMeta::default()
            },
            ..Node::default()
        };
        replace(&api, node.as_str(), &object).await.map(|_| ())
    }

    /// Creates the claim (a fresh uid); returns its uid.
    async fn create_claim(
        &self,
        scenario: &Scenario,
        claim: &ClaimName,
    ) -> Result<String, kube::Error> {
        let volume: Option<&Volume> = scenario
            .volumes
            .iter()
            .find(|v| v.claim.as_ref() == Some(claim));
        let mode = volume.map(|v| v.mode).unwrap_or(AccessModeSpec::Rwo);
        let api: Api<PersistentVolumeClaim> =
            Api::namespaced(self.admin.clone(), claim.namespace());
        let object = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(claim.name().to_owned()),
                namespace: Some(claim.namespace().to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec![access_mode_name(mode).to_owned()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity("1Gi".to_owned()),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                volume_name: volume.map(|v| v.id.to_string()),
                ..PersistentVolumeClaimSpec::default()
            }),
            status: None,
        };
        let created = replace(&api, claim.name(), &object).await?;
        Ok(created.metadata.uid.unwrap_or_default())
    }

    /// External mode: deletes what the scenario created.
    async fn clean(&self, scenario: &Scenario) {
        let attachments: Api<VolumeAttachment> = Api::all(self.admin.clone());
        if let Ok(list) = attachments.list(&ListParams::default()).await {
            for va in list.items {
                let ours = va.spec.attacher == DRIVER_NAME
                    && va
                        .spec
                        .source
                        .persistent_volume_name
                        .as_ref()
                        .is_some_and(|pv| scenario.volume(&VolumeId::new(pv.clone())).is_some());
                if ours && let Some(name) = va.metadata.name {
                    let _ = attachments.delete(&name, &DeleteParams::default()).await;
                }
            }
        }
        let pvs: Api<PersistentVolume> = Api::all(self.admin.clone());
        for volume in &scenario.volumes {
            let _ = pvs
                .delete(volume.id.as_str(), &DeleteParams::default())
                .await;
        }
        let nodes: Api<Node> = Api::all(self.admin.clone());
        let mut all_nodes: BTreeSet<String> =
            scenario.nodes.iter().map(|n| n.to_string()).collect();
        for step in &scenario.steps {
            if let Action::AddNode(node) = &step.action {
                all_nodes.insert(node.to_string());
            }
        }
        for node in all_nodes {
            let _ = nodes.delete(&node, &DeleteParams::default()).await;
        }
        for namespace in scenario.namespaces() {
            let claims: Api<PersistentVolumeClaim> =
                Api::namespaced(self.admin.clone(), &namespace);
            let events: Api<Event> = Api::namespaced(self.admin.clone(), &namespace);
            let _ = claims
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await;
            let _ = events
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await;
        }
    }
}

/// Creates `object`; one already there (an earlier run with `--keep`) is deleted first.
async fn replace<K>(api: &Api<K>, name: &str, object: &K) -> Result<K, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let _ = api.delete(name, &DeleteParams::default()).await;
            api.create(&PostParams::default(), object).await
        }
        other => other,
    }
}

fn check_call(
    run: &mut Run<'_>,
    step: &PlannedStep,
    result: Result<(), RpcError>,
    expect_error: Option<&str>,
) -> Outcome {
    match (result, expect_error) {
        (Ok(()), None) => Outcome::ok(),
        (Ok(()), Some(code)) => {
            run.failures.push(format!(
                "line {}: {}: succeeded, but the step expects {code}",
                step.line, step.text
            ));
            Outcome::ok()
        }
        (Err(error), expected) => {
            let code = error.code.as_str().to_owned();
            match expected {
                Some(expected) if expected == code => {}
                Some(expected) => run.failures.push(format!(
                    "line {}: {}: failed with {code} ({}), but the step expects {expected}",
                    step.line, step.text, error.message
                )),
                None => run.failures.push(format!(
                    "line {}: {}: failed with {code}: {} (add `expectError: {code}` if that is intended)",
                    step.line, step.text, error.message
                )),
            }
            Outcome::Error {
                code,
                message: error.message,
            }
        }
    }
}

/// Why `written` does not match `expected` (None: it matches).
fn events_mismatch(expected: &[EventExpectation], written: &[WrittenEvent]) -> Option<String> {
    let show = |events: &[WrittenEvent]| {
        if events.is_empty() {
            return "  (none)".to_owned();
        }
        events
            .iter()
            .map(|e| {
                format!(
                    "  - {} {} on {}: {} (count {})",
                    e.event_type,
                    e.reason,
                    e.claim(),
                    e.message,
                    e.count
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    if expected.len() != written.len() {
        return Some(format!(
            "expectEvents: expected {} event(s) since the previous expectEvents, {} were written:\n{}",
            expected.len(),
            written.len(),
            show(written)
        ));
    }
    for (index, (want, got)) in expected.iter().zip(written).enumerate() {
        let mut wrong = Vec::new();
        if want
            .event_type
            .as_ref()
            .is_some_and(|t| t != &got.event_type)
        {
            wrong.push("type");
        }
        if want.reason.as_ref().is_some_and(|r| r != &got.reason) {
            wrong.push("reason");
        }
        if want.message.as_ref().is_some_and(|m| m != &got.message) {
            wrong.push("message");
        }
        if want
            .message_contains
            .as_ref()
            .is_some_and(|m| !got.message.contains(m.as_str()))
        {
            wrong.push("message");
        }
        if want.claim.as_ref().is_some_and(|c| c != &got.claim()) {
            wrong.push("claim");
        }
        if want.count.is_some_and(|n| n != got.count) {
            wrong.push("count");
        }
        if !wrong.is_empty() {
            return Some(format!(
                "expectEvents: event {} (line {}) differs in {}: expected {want}, written: {} {} on {} (count {}): {}",
                index + 1,
                want.line,
                wrong.join(", "),
                got.event_type,
                got.reason,
                got.claim(),
                got.count,
                got.message
            ));
        }
    }
    None
}

fn mode_of(mode: AccessModeSpec) -> AccessMode {
    match mode {
        AccessModeSpec::Rwo => AccessMode::Rwo,
        AccessModeSpec::Rwx => AccessMode::Rwx,
    }
}

fn access_mode_name(mode: AccessModeSpec) -> &'static str {
    match mode {
        AccessModeSpec::Rwo => "ReadWriteOnce",
        AccessModeSpec::Rwx => "ReadWriteMany",
    }
}

/// A VolumeAttachment's name as the external-attacher derives it: `csi-` and a hash of
/// volume, attacher and node (here a stable 64-bit FNV-1a, not SHA-256: only uniqueness and
/// stability matter).
fn attachment_name(volume: &VolumeId, node: &NodeName) -> String {
    let text = format!("{volume}{DRIVER_NAME}{node}");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("csi-{hash:016x}")
}

/// A uid derived from the seed (for a claimRef whose claim never existed).
fn seeded_uid(seed: u64, what: &str) -> String {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    for byte in what.bytes() {
        state = (state ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let (a, b) = (next(), next());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        (a & 0x0fff) as u16,
        ((b >> 48) as u16 & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// Runs `scenarios` on `jobs` threads (each scenario on its own runtime); results in input
/// order, whatever order they finished in.
pub fn run_many(
    scenarios: &[Scenario],
    target: &Target,
    jobs: usize,
) -> Vec<Result<RunResult, RunError>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RunResult, RunError>>>> =
        Mutex::new(scenarios.iter().map(|_| None).collect());
    let jobs = jobs.clamp(1, scenarios.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(scenario) = scenarios.get(index) else {
                        break;
                    };
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run(scenario, target)
                    }))
                    .unwrap_or_else(|panic| {
                        let why = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_default();
                        Err(RunError::Setup(format!("the run panicked: {why}")))
                    });
                    results
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(RunError::Setup("the scenario did not run".to_owned()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_becomes_series() {
        let text = "# HELP x y\nrds_csi_events_posted_total{reason=\"VolumeAttached\"} 2\nrds_csi_migration_duration_seconds_bucket{le=\"15.0\"} 1\nrds_csi_migration_duration_seconds_sum 12.5\n# EOF\n";
        let series = parse_series(text);
        assert_eq!(series.len(), 2);
        let labels = BTreeMap::from([("reason".to_owned(), "VolumeAttached".to_owned())]);
        assert_eq!(metric_value(&series, "events_posted", &labels), 2.0);
        assert_eq!(
            metric_value(&series, "rds_csi_events_posted_total", &BTreeMap::new()),
            2.0
        );
        assert_eq!(
            metric_value(&series, "migration_duration_seconds_sum", &BTreeMap::new()),
            12.5
        );
        let other = BTreeMap::from([("reason".to_owned(), "VolumeDetached".to_owned())]);
        assert_eq!(metric_value(&series, "events_posted", &other), 0.0);
    }

    #[test]
    fn attachment_names_and_uids_are_stable() {
        let a = attachment_name(&"pvc-1".into(), &"node-a".into());
        assert_eq!(a, attachment_name(&"pvc-1".into(), &"node-a".into()));
        assert_ne!(a, attachment_name(&"pvc-1".into(), &"node-b".into()));
        assert_eq!(seeded_uid(7, "vms/d"), seeded_uid(7, "vms/d"));
        assert_ne!(seeded_uid(7, "vms/d"), seeded_uid(8, "vms/d"));
        assert_eq!(seeded_uid(7, "vms/d").len(), 36);
    }
}
