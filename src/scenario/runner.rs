//! Plays a checked scenario and records its transcript.
//!
//! Embedded (the default): a fresh [`FakeCluster`] on a [`VirtualClock`] at
//! 2026-01-01T00:00:00Z, its own current-thread tokio runtime, an [`EventPoster`](crate::EventPoster) and a
//! [`Controller`](crate::Controller) on that clock. The runner seeds the cluster, plays each step, then runs all
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
//! External (`--kubeconfig`): the same steps against another API server, in names of the run's
//! own ([`super::isolate`]); objects are created for the scenario (and deleted afterwards,
//! namespaces included, unless `keep`), the virtual clock starts at the
//! wall-clock time, `fault` steps are refused up front, and events are read back by listing
//! (several writes of one Event during one step show as one entry with the last count).

use std::path::PathBuf;
use std::time::Duration;

use super::attacher::Attacher;
use super::blackbox::{self, BlackBox, Launch};
use super::driver::{Driver, InProcess};
use super::feed::EventFeed;
use super::isolate::Isolation;
use super::plan::Scenario;
use super::steps::Run;
use super::transcript::Transcript;
use super::wire::ThroughCsi;
use super::world::World;
use crate::clock::VirtualClock;
use fake_apiserver::FakeCluster;

pub use super::driver::{DRIVER_NAME, INSTANCE};
pub use super::many::run_many;
pub use super::outcome::RunResult;
pub use super::run_error::RunError;

/// Where the virtual clock starts in embedded mode.
pub const EPOCH: &str = "2026-01-01T00:00:00Z";

/// Where a scenario runs.
#[derive(Debug, Clone, Default)]
pub enum Target {
    /// A fresh in-process fake cluster per scenario.
    #[default]
    Embedded,
    /// As [`Target::Embedded`], but every attach and detach reaches the model through the CSI
    /// Controller service over a real gRPC channel on a unix socket (docs/csi.md): the
    /// transcripts must be the same.
    EmbeddedWire,
    /// Black-box: a CSI driver in another process, driven over its unix socket as
    /// kube-controller-manager and the external-attacher drive it (docs/csi.md §5,
    /// black-box mode). Time is real.
    BlackBox(BlackBoxTarget),
    /// The API server of a kubeconfig file.
    External {
        /// The kubeconfig file.
        kubeconfig: PathBuf,
        /// Keep the objects the scenario created.
        keep: bool,
    },
}

/// Where a black-box driver is and which API server it uses.
#[derive(Debug, Clone)]
pub struct BlackBoxTarget {
    /// A running driver's socket (with `kubeconfig`), or a command started per scenario
    /// against a fresh fake-apiserver the runner serves over HTTP.
    pub launch: Launch,
    /// The API server the running driver uses (required with [`Launch::Endpoint`]).
    pub kubeconfig: Option<PathBuf>,
    /// The driver's name (VolumeAttachment `spec.attacher`, CSINode driver).
    pub driver_name: String,
    /// With `kubeconfig`: keep the objects a scenario created.
    pub keep: bool,
}

/// Refuses up front what cannot run on `target`.
pub fn check_target(scenario: &Scenario, target: &Target) -> Result<(), RunError> {
    if let Target::BlackBox(blackbox) = target {
        for step in &scenario.steps {
            if let Some(why) = blackbox::refusal_of(&step.action, &blackbox.launch) {
                return Err(RunError::Refused {
                    file: scenario.file.clone(),
                    line: step.line,
                    step: step.text.clone(),
                    why: why.to_owned(),
                });
            }
        }
        if matches!(blackbox.launch, Launch::Endpoint(_)) && blackbox.kubeconfig.is_none() {
            return Err(RunError::Setup(
                "--csi-endpoint needs --kubeconfig: the API server the driver uses".to_owned(),
            ));
        }
        return Ok(());
    }
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
    // Embedded, nothing does I/O and every wait is on the virtual clock (its sleeps are
    // channels, never tokio timers): a runtime without drivers, whose every yield is then a
    // queue operation, not a poll of the operating system or of a timer wheel (the runner
    // yields a few hundred times per step while it waits for quiescence).
    let mut builder = tokio::runtime::Builder::new_current_thread();
    if !matches!(target, Target::Embedded) {
        builder.enable_all();
    }
    let runtime = builder
        .build()
        .map_err(|e| RunError::Setup(format!("cannot start a tokio runtime: {e}")))?;
    let mut result = runtime.block_on(async {
        match target {
            Target::Embedded => run_embedded(scenario, false).await,
            Target::EmbeddedWire => run_embedded(scenario, true).await,
            Target::BlackBox(blackbox) => run_blackbox(scenario, blackbox).await,
            Target::External { kubeconfig, keep } => {
                run_external(scenario, kubeconfig, *keep).await
            }
        }
    })?;
    result.wall = started.elapsed();
    Ok(result)
}

async fn run_embedded(scenario: &Scenario, wire: bool) -> Result<RunResult, RunError> {
    let epoch: jiff::Timestamp = EPOCH
        .parse()
        .map_err(|e| RunError::Setup(format!("bad epoch: {e}")))?;
    let (cluster, clock) = FakeCluster::virtual_at(epoch);
    let admin = super::world::Admin::embedded(cluster.server().clone());
    let events = EventFeed::watch(&cluster, clock.clone(), epoch).await?;
    let driver_client = cluster.client();
    let world = World {
        admin,
        cluster: Some(cluster),
        clock,
        start: epoch,
        created_namespaces: Default::default(),
        driver_name: DRIVER_NAME.to_owned(),
    };
    world.seed(scenario).await?;
    let driver = InProcess::start(driver_client, world.clock.clone(), scenario.seed, true);
    if wire {
        let driver = ThroughCsi::start(driver)
            .await
            .map_err(|e| RunError::Setup(format!("cannot serve the CSI services: {e}")))?;
        play(&world, scenario, driver, events).await
    } else {
        play(&world, scenario, driver, events).await
    }
}

/// A fresh directory for one black-box run's socket and kubeconfig.
fn run_dir() -> Result<PathBuf, RunError> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("csi-events-blackbox-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| RunError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// A random bearer token for the fake the runner serves.
fn random_token() -> Result<String, RunError> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| RunError::Setup(format!("cannot read /dev/urandom for a token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn run_blackbox(scenario: &Scenario, target: &BlackBoxTarget) -> Result<RunResult, RunError> {
    let dir = run_dir()?;
    // With a driver command, the runner serves a fresh fake-apiserver over HTTP for it.
    let mut server = None;
    let kubeconfig = match (&target.launch, &target.kubeconfig) {
        (Launch::Endpoint(_), Some(kubeconfig)) | (Launch::Command(_), Some(kubeconfig)) => {
            kubeconfig.clone()
        }
        (Launch::Command(_), None) => {
            let cluster = FakeCluster::seeded(
                std::sync::Arc::new(fake_apiserver::SystemClock),
                scenario.seed,
            );
            let token = random_token()?;
            let options = fake_apiserver::transport::HttpOptions {
                listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                token: Some(token.clone()),
                ..Default::default()
            };
            let http = cluster
                .serve_http(options)
                .await
                .map_err(|e| RunError::Setup(format!("cannot serve the fake API server: {e}")))?;
            let path = dir.join("kubeconfig");
            fake_apiserver::transport::write_kubeconfig(&path, &http.url(), Some(&token))
                .map_err(|e| RunError::Setup(format!("cannot write {}: {e}", path.display())))?;
            server = Some((cluster, http));
            path
        }
        (Launch::Endpoint(_), None) => {
            return Err(RunError::Setup(
                "--csi-endpoint needs --kubeconfig".to_owned(),
            ));
        }
    };
    let client = external_client(&kubeconfig).await?;
    let start = jiff::Timestamp::now();
    let clock = VirtualClock::new(start);
    // The runner's own fake: its watch stamps each Event as it lands (the clock follows real
    // time through an advance). A driver's own API server: listed after each step.
    let events = match &server {
        Some((cluster, _)) => EventFeed::watch(cluster, clock.clone(), start).await?,
        None => {
            EventFeed::listing(client.clone(), scenario.namespaces(), clock.clone(), start).await?
        }
    };
    let world = World {
        admin: super::world::Admin::client(client.clone()),
        cluster: None,
        clock,
        start,
        created_namespaces: Default::default(),
        driver_name: target.driver_name.clone(),
    };
    let result = match world.seed(scenario).await {
        Ok(()) => {
            let driver = BlackBox::start(
                client,
                scenario.namespaces(),
                target.driver_name.clone(),
                target.launch.clone(),
                kubeconfig.clone(),
                &dir,
                start,
            )
            .await
            .map_err(|e| RunError::Setup(format!("the driver did not come up: {}", e.message)));
            match driver {
                Ok(driver) => play(&world, scenario, driver, events).await,
                Err(error) => Err(error),
            }
        }
        Err(error) => Err(error),
    };
    if server.is_none() && !target.keep {
        world.clean(scenario).await;
    }
    if let Some((_cluster, http)) = server {
        http.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_external(
    scenario: &Scenario,
    kubeconfig: &PathBuf,
    keep: bool,
) -> Result<RunResult, RunError> {
    // Names of this run's own, so parallel runs never collide (docs/scenarios.md §5).
    let isolation = Isolation::random()?;
    let renamed = isolation.scenario(scenario)?;
    let client = external_client(kubeconfig).await?;
    let start = jiff::Timestamp::now();
    let clock = VirtualClock::new(start);
    let events = EventFeed::listing(client.clone(), renamed.namespaces(), clock.clone(), start)
        .await?
        .restoring(isolation.clone());
    let world = World {
        admin: super::world::Admin::client(client.clone()),
        cluster: None,
        clock,
        start,
        created_namespaces: Default::default(),
        driver_name: isolation.driver_name(DRIVER_NAME),
    };
    let result = match world.seed(&renamed).await {
        Ok(()) => {
            let driver = InProcess::start(client, world.clock.clone(), scenario.seed, false)
                .with_driver_name(&world.driver_name);
            play(&world, &renamed, driver, events).await
        }
        Err(error) => Err(error),
    };
    if !keep {
        world.clean(&renamed).await;
    }
    result.map(|mut result| {
        if keep {
            result.kept = Some(isolation.suffix().to_owned());
        }
        result.restored(&isolation)
    })
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
    let timeline = super::timeline::Recorder::new(scenario).restoring(events.isolation().cloned());
    let mut run = Run {
        scenario,
        driver,
        attacher: Attacher::new(&world.driver_name),
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
        timeline,
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
    let timeline = run.timeline.finish(&run.steps);
    Ok(RunResult {
        name: scenario.name.clone(),
        file: scenario.file.clone(),
        timeline,
        transcript: Transcript {
            steps: run.steps,
            metrics,
        },
        failures: run.failures,
        wall: Duration::ZERO,
        kept: None,
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
