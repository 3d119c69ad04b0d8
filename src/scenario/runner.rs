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

use std::path::PathBuf;
use std::time::Duration;

use super::attacher::Attacher;
use super::driver::{Driver, InProcess};
use super::feed::EventFeed;
use super::plan::Scenario;
use super::steps::Run;
use super::transcript::Transcript;
use super::world::World;
use crate::clock::VirtualClock;
use fake_apiserver::FakeCluster;

pub use super::many::run_many;

/// The CSI driver's name: the VolumeAttachments' attacher.
pub const DRIVER_NAME: &str = "rds.csi.srvlab.io";

/// `reportingInstance` of the events a scenario writes (fixed, so transcripts do not depend on
/// the host).
pub const INSTANCE: &str = "csi-events-scenario";

/// Where the virtual clock starts in embedded mode.
pub const EPOCH: &str = "2026-01-01T00:00:00Z";

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
    let events = EventFeed::watch(&cluster, clock.clone(), epoch).await?;
    let driver_client = cluster.client();
    let world = World {
        admin,
        cluster: Some(cluster),
        clock,
        start: epoch,
    };
    world.seed(scenario).await?;
    let driver = InProcess::start(driver_client, world.clock.clone(), scenario.seed, true);
    play(&world, scenario, driver, events).await
}

async fn run_external(
    scenario: &Scenario,
    kubeconfig: &PathBuf,
    keep: bool,
) -> Result<RunResult, RunError> {
    let client = external_client(kubeconfig).await?;
    let start = jiff::Timestamp::now();
    let clock = VirtualClock::new(start);
    let events =
        EventFeed::listing(client.clone(), scenario.namespaces(), clock.clone(), start).await?;
    let world = World {
        admin: client.clone(),
        cluster: None,
        clock,
        start,
    };
    let result = match world.seed(scenario).await {
        Ok(()) => {
            let driver = InProcess::start(client, world.clock.clone(), scenario.seed, false);
            play(&world, scenario, driver, events).await
        }
        Err(error) => Err(error),
    };
    if !keep {
        world.clean(scenario).await;
    }
    result
}

/// Plays every step against `driver` in the seeded `world`.
async fn play<D: Driver>(
    world: &World,
    scenario: &Scenario,
    mut driver: D,
    mut events: EventFeed,
) -> Result<RunResult, RunError> {
    for node in &scenario.nodes {
        driver.node_added(node).await;
    }
    // Anything the start itself wrote (nothing, normally) belongs to no step.
    let _ = events.drain().await;
    let mut run = Run {
        scenario,
        driver,
        attacher: Attacher::default(),
        events,
        unchecked: Vec::new(),
        failures: Vec::new(),
        steps: Vec::new(),
        stopped: false,
        volume_index: scenario
            .volumes
            .iter()
            .enumerate()
            .rev()
            .map(|(i, v)| (v.id.clone(), i))
            .collect(),
    };
    for step in &scenario.steps {
        if run.stopped {
            break;
        }
        let record = run.step(world, step).await;
        run.steps.push(record);
    }
    run.driver.stop().await;
    let metrics = run.driver.metrics().await.non_zero();
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
