//! `memory`: the driver's own peak RSS through a storm of posts, beside kube-rs's `Recorder`
//! under the same storm, each in a process of its own talking over HTTP to a `fake-apiserver`
//! in another process.
//!
//! For every variant the parent starts a `fake-apiserver` process (the binary, `--listen
//! 127.0.0.1:0 --kubeconfig PATH`), then re-executes this binary with
//! `CSI_EVENTS_MEMORY_VARIANT` set and the kubeconfig the server wrote (its token included). That
//! child holds only what a driver holds: a tokio runtime, a kube-rs client, and either the
//! [`Controller`] with its [`EventPoster`] or the `Recorder`. It reports the kernel's high-water
//! mark of its resident set (`VmHWM` in `/proc/self/status`); the parent reads the server's
//! `VmHWM` from `/proc/PID/status` before stopping it. The two are reported apart: the server's
//! stored Events and watch history are not the driver's memory.
//!
//! Before each measured child, a seeding child (not measured) fills that variant's server:
//! namespace `vms`, the three nodes and one claim per volume (`vms/disk-<v>` for volume
//! `pvc-<v>`), so every post of the workload lands on a claim that exists, as in a cluster
//! where every volume is bound.
//!
//! Variants:
//! - `baseline`: the runtime and a client making one request (what every variant pays before
//!   its own work);
//! - `controller-<N>`: a [`Controller`] publishing N RWX volumes (each with its claim in the
//!   context: N VolumeAttached), starting a migration on `--migrating` of them, then a storm of
//!   `--posts` posts: those volumes migrate round the three nodes (unpublish the source →
//!   MigrationCompleted, publish a new target → MigrationStarted), N = 1 000, 10 000 and
//!   100 000 to show flatness. The poster's clock is virtual and moves through one hour over
//!   the storm (in steps of at most 10 s, each followed by a flush), so the spam filter's
//!   tokens come back as in an hour of real time;
//! - `controller-10000-no-storm`: the setup alone (the controller's own footprint);
//! - `kube-rs-recorder-<N>`: `Recorder::publish` of exactly the events `controller-<N>` posts
//!   (setup and storm, each with its exact message, on the same claims): what a driver built on
//!   the Recorder would send for the same volumes. Each claim's uid is read with a GET before
//!   its first event, as the driver's poster does.
//!
//! Figures: the driver's peak RSS beside the Recorder's (and their ratio), the API server's
//! peak apart, RSS above the baseline, the child's heap (bytes held after the setup, at the
//! end, and at most: a counting allocator), cost per volume (slope of the peak, and of the
//! heap held at the end, between the smallest and the largest controller variant), posts,
//! events dropped (and of those, `rate_limited`), posts still waiting for a token at the end, Events created, and
//! `meets_bounds`. On stderr every bound of issue 15 is printed as `ok` or `MISSED`: each
//! driver peak ≤ 64 MiB and ≤ the Recorder's peak under the same workload in the same run
//! (the no-storm variant beside the Recorder's 10 000), and both slopes ≤ 600 bytes per
//! volume. A missed bound makes the bench exit non-zero.
//!
//! `cargo bench --bench memory [-- --posts 100000 --migrating 1000 --json]`
//!
//! The `fake-apiserver` binary is `FAKE_APISERVER_BIN`, else the one beside this bench in the
//! target directory, else built with `cargo build [--release] -p fake-apiserver`.

#[path = "support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use csi_events::LifecycleEvent;
use csi_events::clock::{Clock, VirtualClock};
use csi_events::metrics::DropCause;
use csi_events::model::{AccessMode, Controller, ControllerConfig, Publish};
use csi_events::{EventPoster, PosterConfig};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, ObjectReference, PersistentVolumeClaim};
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;
use support::{Figure, arg, create_namespace, report};

/// The environment variable that makes this binary run one variant and report.
const VARIANT_ENV: &str = "CSI_EVENTS_MEMORY_VARIANT";
/// The kubeconfig of the variant's API server (written by the `fake-apiserver` process).
const KUBECONFIG_ENV: &str = "CSI_EVENTS_MEMORY_KUBECONFIG";
/// The three nodes the migrations go round.
const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
/// Posts between two flushes (the poster's queue holds 1000).
const FLUSH_EVERY: usize = 500;
/// Controller sizes.
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
/// Virtual time the storm covers.
const STORM_TIME: Duration = Duration::from_secs(3600);
/// The longest single move of the clock: well under the poster's request timeout (30 s), so a
/// request in flight while the clock moves never times out on virtual time.
const CLOCK_STEP: Duration = Duration::from_secs(10);
/// The driver's peak must stay at or under this (issue 15).
const PEAK_BOUND_KIB: u64 = 64 * 1024;
/// The controller's cost per volume must stay at or under this (issue 15).
const PER_VOLUME_BOUND: f64 = 600.0;

/// The system allocator, counting the bytes a child holds (asked for, not the allocator's own
/// rounding) and their high-water mark: the heap figures beside `VmHWM`, and how the heap
/// bytes per volume are measured.
struct Counting;

/// Bytes allocated and not freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The most `LIVE` has been.
static PEAK: AtomicUsize = AtomicUsize::new(0);

impl Counting {
    fn grew(by: usize) {
        let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }

    fn shrank(by: usize) {
        LIVE.fetch_sub(by, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed to `System` unchanged; the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        let at = unsafe { System.alloc(layout) };
        if !at.is_null() {
            Self::grew(layout.size());
        }
        at
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let at = unsafe { System.alloc_zeroed(layout) };
        if !at.is_null() {
            Self::grew(layout.size());
        }
        at
    }

    unsafe fn dealloc(&self, at: *mut u8, layout: Layout) {
        // SAFETY: `at` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(at, layout) };
        Self::shrank(layout.size());
    }

    unsafe fn realloc(&self, at: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `at` came from `System` with `layout`; the caller upholds the rest.
        let moved = unsafe { System.realloc(at, layout, new_size) };
        if !moved.is_null() {
            Self::shrank(layout.size());
            Self::grew(new_size);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The heap bytes the child holds now.
fn heap_live() -> u64 {
    LIVE.load(Ordering::Relaxed) as u64
}

/// What a child reports.
#[derive(Debug, Clone, Copy, Default)]
struct Measured {
    peak_kib: u64,
    posts: u64,
    dropped: u64,
    /// Of those, the ones dropped because more series waited for a token than the series
    /// cache holds (`rate_limited`).
    dropped_rate_limited: u64,
    /// Posts still waiting for a spam-filter token at the end.
    waiting: u64,
    /// Events the driver created (POSTs answered 2xx).
    created: u64,
    /// The API server's peak (read by the parent).
    server_peak_kib: u64,
    /// Heap bytes held once the setup is done and flushed (the volumes tracked, the poster idle).
    heap_setup: u64,
    /// Heap bytes held at the end (after the storm, flushed).
    heap_end: u64,
    /// The most heap bytes held at once.
    heap_peak: u64,
    /// Resident code and other file-backed pages at the end (`RssFile`): the code the variant
    /// ran, which the heap figures do not see.
    rss_file_kib: u64,
}

fn main() {
    if let Ok(variant) = std::env::var(VARIANT_ENV) {
        child(&variant);
        return;
    }
    parent();
}

/// `VmHWM` of `/proc/<who>/status`, in KiB (0 when unreadable).
fn peak_kib_of(who: &str) -> u64 {
    status_kib(who, "VmHWM")
}

/// A `kB` field of `/proc/<who>/status` (0 when unreadable).
fn status_kib(who: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{who}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn child(variant: &str) {
    let posts = arg("--posts", 100_000);
    let migrating = arg("--migrating", 1_000).max(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let measured = runtime.block_on(async {
        let client = connect().await;
        if variant == "baseline" {
            let nodes: Api<Node> = Api::all(client);
            nodes.list(&Default::default()).await.expect("list nodes");
            return Measured::default();
        }
        if let Some(claims) = size_of(variant, "seed-") {
            seed(&client, claims).await;
            return Measured::default();
        }
        if let Some(volumes) = size_of(variant, "kube-rs-recorder-") {
            return recorder(client, volumes, migrating.min(volumes), posts).await;
        }
        let (size, posts) = match variant.strip_suffix("-no-storm") {
            Some(size) => (size, 0),
            None => (variant, posts),
        };
        let volumes =
            size_of(size, "controller-").unwrap_or_else(|| panic!("unknown variant {variant}"));
        controller(client, volumes, migrating.min(volumes), posts).await
    });
    println!(
        "{}",
        json!({"peak_kib": peak_kib_of("self"), "posts": measured.posts,
               "dropped": measured.dropped,
               "dropped_rate_limited": measured.dropped_rate_limited, "waiting": measured.waiting,
               "created": measured.created, "heap_setup": measured.heap_setup,
               "heap_end": measured.heap_end,
               "heap_peak": PEAK.load(Ordering::Relaxed) as u64,
               "rss_anon_kib": status_kib("self", "RssAnon"),
               "rss_file_kib": status_kib("self", "RssFile")})
    );
}

/// `N` of a variant named `<prefix>N`.
fn size_of(variant: &str, prefix: &str) -> Option<usize> {
    variant.strip_prefix(prefix)?.parse().ok()
}

/// A kube-rs client from the kubeconfig the variant's `fake-apiserver` wrote (server URL and,
/// when it set one, its token).
async fn connect() -> kube::Client {
    let path = std::env::var(KUBECONFIG_ENV).expect("the parent sets the kubeconfig path");
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("cannot read the kubeconfig {path}: {e}"));
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("the kubeconfig {path} is not usable: {e}"));
    kube::Client::try_from(config).unwrap_or_else(|e| panic!("cannot build a client: {e}"))
}

/// Namespace `vms`, the three nodes and claims `disk-0..claims` (the seeding child, not
/// measured; a few creates in flight at once so 100 000 claims take seconds, not minutes).
async fn seed(client: &kube::Client, claims: usize) {
    create_namespace(client).await;
    let nodes: Api<Node> = Api::all(client.clone());
    for node in NODES {
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": node}})).expect("node"),
            )
            .await
            .expect("create node");
    }
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "vms");
    futures::stream::iter(0..claims)
        .map(|c| {
            let api = api.clone();
            async move {
                let claim = json!({
                    "metadata": {"name": format!("disk-{c}"), "namespace": "vms"},
                    "spec": {"accessModes": ["ReadWriteMany"],
                             "resources": {"requests": {"storage": "1Gi"}}}
                });
                api.create(
                    &PostParams::default(),
                    &serde_json::from_value(claim).expect("claim"),
                )
                .await
                .expect("create claim");
            }
        })
        .buffer_unordered(8)
        .for_each(|()| async {})
        .await;
}

/// Which nodes a migrating volume is on before its `round`-th migration: (source, target).
fn nodes_at(volume: usize, round: usize) -> (&'static str, &'static str) {
    let at = (volume + round) % NODES.len();
    (NODES[at], NODES[(at + 1) % NODES.len()])
}

fn publish(volume: usize, node: &str) -> Publish {
    Publish::new(format!("pvc-{volume}"), node, AccessMode::Rwx)
        .claim("vms", format!("disk-{volume}"))
}

/// The storm's events, in order: for round r and volume v, MigrationCompleted of the running
/// migration, then MigrationStarted of the next one.
fn storm_events(migrating: usize, posts: usize) -> impl Iterator<Item = (usize, LifecycleEvent)> {
    (0..posts / 2).flat_map(move |k| {
        let (volume, round) = (k % migrating, k / migrating);
        let (source, target) = nodes_at(volume, round);
        let (_, next) = nodes_at(volume, round + 1);
        let id = format!("pvc-{volume}");
        [
            (
                volume,
                LifecycleEvent::MigrationCompleted {
                    volume: id.as_str().into(),
                    source: source.into(),
                    target: target.into(),
                    took: Duration::ZERO,
                },
            ),
            (
                volume,
                LifecycleEvent::MigrationStarted {
                    volume: id.as_str().into(),
                    source: target.into(),
                    target: next.into(),
                    timeout: Duration::from_secs(300),
                },
            ),
        ]
    })
}

/// Flushes after every `FLUSH_EVERY` posts; during the storm it also moves the clock by the
/// storm's share of `STORM_TIME` (in steps of at most `CLOCK_STEP`, each followed by a flush).
struct Pacer {
    poster: EventPoster,
    clock: VirtualClock,
    since_flush: usize,
    /// Virtual time to move at each flush (zero outside the storm).
    step: Duration,
}

impl Pacer {
    async fn posted(&mut self, n: usize) {
        self.since_flush += n;
        if self.since_flush >= FLUSH_EVERY {
            self.since_flush = 0;
            self.poster.flush().await;
            self.tick().await;
        }
    }

    async fn tick(&mut self) {
        let mut left = self.step;
        while !left.is_zero() {
            let step = left.min(CLOCK_STEP);
            self.clock.advance(step).await;
            self.poster.flush().await;
            left -= step;
        }
    }
}

async fn controller(
    client: kube::Client,
    volumes: usize,
    migrating: usize,
    posts: usize,
) -> Measured {
    let clock = VirtualClock::new("2026-01-01T00:00:00Z".parse().expect("start"));
    let poster = EventPoster::new(
        client,
        PosterConfig::default()
            .instance("bench")
            .clock(Arc::new(clock.clone())),
    );
    let controller = Controller::new(
        poster.clone(),
        ControllerConfig::default().clock(Arc::new(clock.clone())),
    );
    for node in NODES {
        controller.node_added(&node.into());
    }
    let mut pacer = Pacer {
        poster: poster.clone(),
        clock: clock.clone(),
        since_flush: 0,
        step: Duration::ZERO,
    };
    // Setup: every volume on its first node, then the migrating ones start migrating.
    for v in 0..volumes {
        let (source, _) = nodes_at(v, 0);
        controller
            .publish(publish(v, source))
            .await
            .expect("attach");
        pacer.posted(1).await;
    }
    for v in 0..migrating.min(volumes) {
        let (_, target) = nodes_at(v, 0);
        controller
            .publish(publish(v, target))
            .await
            .expect("migrate");
        pacer.posted(1).await;
    }
    poster.flush().await;
    let heap_setup = heap_live();
    // The storm, over one hour of virtual time.
    let flushes = (posts / FLUSH_EVERY).max(1) as u32;
    pacer.step = STORM_TIME / flushes;
    pacer.since_flush = 0;
    let start = clock.now();
    let mut done = 0u64;
    for k in 0..posts / 2 {
        let (v, round) = (k % migrating, k / migrating);
        let (source, _) = nodes_at(v, round);
        let (_, next) = nodes_at(v, round + 1);
        controller
            .unpublish(&format!("pvc-{v}").into(), &source.into())
            .expect("source detaches");
        controller
            .publish(publish(v, next))
            .await
            .expect("next migration");
        done += 2;
        pacer.posted(2).await;
    }
    poster.flush().await;
    if posts > 0 {
        // Whatever is left of the hour.
        let elapsed = clock.now().duration_since(start).unsigned_abs();
        pacer.step = STORM_TIME.saturating_sub(elapsed);
        pacer.tick().await;
    }
    // Counted, not listed: a list of every volume's view would be the bench's memory.
    assert_eq!(
        controller.volume_count(),
        volumes,
        "every volume still held"
    );
    let metrics = poster.metrics();
    let dropped = [
        DropCause::QueueFull,
        DropCause::RateLimited,
        DropCause::RetriesExhausted,
        DropCause::Rejected,
        DropCause::Shutdown,
    ]
    .into_iter()
    .map(|c| metrics.dropped_total(c))
    .sum();
    let measured = Measured {
        posts: done,
        dropped,
        dropped_rate_limited: metrics.dropped_total(DropCause::RateLimited),
        waiting: poster.waiting() as u64,
        created: metrics.writes("create", "ok"),
        heap_setup,
        heap_end: heap_live(),
        ..Measured::default()
    };
    controller.stop();
    measured
}

async fn recorder(
    client: kube::Client,
    volumes: usize,
    migrating: usize,
    posts: usize,
) -> Measured {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "vms");
    let recorder = Recorder::new(client, Reporter::from("rds-csi-controller".to_string()));
    // A claim's reference, its uid read with a GET (as the driver's poster reads it).
    let reference = async |claim: usize| {
        let name = format!("disk-{claim}");
        let read = claims.get(&name).await.expect("the seeded claim");
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            namespace: Some("vms".into()),
            name: Some(name),
            uid: read.metadata.uid,
            ..ObjectReference::default()
        }
    };
    let publish = async |reference: &ObjectReference, event: LifecycleEvent| {
        let reason = event.reason();
        let type_ = match reason.event_type() {
            Some(csi_events::EventType::Warning) => EventType::Warning,
            _ => EventType::Normal,
        };
        let event = Event {
            type_,
            reason: reason.as_str().into(),
            note: Some(event.message()),
            action: reason.as_str().into(),
            secondary: None,
        };
        let _ = recorder.publish(&event, reference).await;
    };
    // The setup events the controller posts: every volume attached on its first node, then
    // the migrating ones start migrating. Only the migrating volumes' references are kept
    // (the storm posts on them); the others are read, used and dropped.
    let mut kept = Vec::with_capacity(migrating);
    for v in 0..volumes {
        let (source, _) = nodes_at(v, 0);
        let id = format!("pvc-{v}");
        let at = reference(v).await;
        publish(
            &at,
            LifecycleEvent::VolumeAttached {
                volume: id.as_str().into(),
                node: source.into(),
                took: Duration::ZERO,
            },
        )
        .await;
        if v < migrating {
            kept.push(at);
        }
    }
    for (v, at) in kept.iter().enumerate() {
        let (source, target) = nodes_at(v, 0);
        let id = format!("pvc-{v}");
        publish(
            at,
            LifecycleEvent::MigrationStarted {
                volume: id.as_str().into(),
                source: source.into(),
                target: target.into(),
                timeout: Duration::from_secs(300),
            },
        )
        .await;
    }
    let mut done = 0;
    for (claim, event) in storm_events(migrating, posts) {
        publish(&kept[claim], event).await;
        done += 1;
    }
    Measured {
        posts: done,
        heap_end: heap_live(),
        ..Measured::default()
    }
}

/// The `fake-apiserver` binary: `FAKE_APISERVER_BIN`, else the one beside this bench in the
/// target directory, else built now. Panics with the command to run when none works.
fn fake_apiserver_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FAKE_APISERVER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("this bench's path");
    // target/<profile>/deps/memory-HASH → target/<profile>/fake-apiserver
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the bench lives in target/<profile>/deps");
    let sibling = profile_dir.join(format!("fake-apiserver{}", std::env::consts::EXE_SUFFIX));
    if sibling.exists() {
        return sibling;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "-p", "fake-apiserver", "--bin", "fake-apiserver"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    let status = build.status();
    if sibling.exists() {
        return sibling;
    }
    panic!(
        "the fake-apiserver binary is missing at {} and `cargo build -p fake-apiserver` did not \
         make it ({status:?}); run `cargo build --release -p fake-apiserver` (or set \
         FAKE_APISERVER_BIN) and run the bench again",
        sibling.display()
    );
}

/// A `fake-apiserver` process for one variant (stopped on drop).
struct Server {
    child: Child,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl Server {
    fn start(binary: &Path, variant: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "csi-events-memory-{variant}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let kubeconfig = dir.join("kubeconfig");
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        match lines.next() {
            Some(Ok(line)) if line.starts_with("listening on ") => {}
            other => {
                let _ = child.kill();
                panic!("fake-apiserver did not say where it listens: {other:?}");
            }
        }
        // Keep its stdout drained so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            dir,
            kubeconfig,
        }
    }

    fn peak_kib(&self) -> u64 {
        peak_kib_of(&self.child.id().to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `variant` in a child of its own against a server of its own, seeded first (by another
/// child, not measured) with `claims` claims when `claims > 0`.
fn run_child(binary: &Path, variant: &str, claims: usize) -> Measured {
    let server = Server::start(binary, variant);
    if claims > 0 {
        child_output(&server, &format!("seed-{claims}"));
    }
    let output = child_output(&server, variant);
    let server_peak_kib = server.peak_kib();
    drop(server);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("variant {variant} printed no figures: {stdout}"));
    let value: serde_json::Value = serde_json::from_str(line).expect("the child's JSON line");
    let number = |key: &str| value[key].as_u64().unwrap_or(0);
    Measured {
        peak_kib: number("peak_kib"),
        posts: number("posts"),
        dropped: number("dropped"),
        dropped_rate_limited: number("dropped_rate_limited"),
        waiting: number("waiting"),
        created: number("created"),
        server_peak_kib,
        heap_setup: number("heap_setup"),
        heap_end: number("heap_end"),
        heap_peak: number("heap_peak"),
        rss_file_kib: number("rss_file_kib"),
    }
}

/// Runs this binary as `variant` against `server`; panics with its stderr when it fails.
fn child_output(server: &Server, variant: &str) -> std::process::Output {
    let exe = std::env::current_exe().expect("this bench's path");
    let output = Command::new(exe)
        .args(std::env::args().skip(1))
        .env(VARIANT_ENV, variant)
        .env(KUBECONFIG_ENV, &server.kubeconfig)
        .output()
        .expect("run the variant");
    assert!(
        output.status.success(),
        "variant {variant} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn mib_of_bytes(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn figure(variant: &str, metric: &'static str, value: f64, unit: &'static str) -> Figure {
    Figure {
        bench: "memory",
        variant: variant.to_owned(),
        metric,
        value,
        unit,
    }
}

/// Bounds checked in the output: each line says what was measured, the bound, and whether
/// it holds. Any miss makes the bench exit non-zero.
#[derive(Default)]
struct Bounds {
    lines: Vec<(bool, String)>,
}

impl Bounds {
    fn check(&mut self, holds: bool, line: String) -> bool {
        self.lines.push((holds, line));
        holds
    }

    fn missed(&self) -> usize {
        self.lines.iter().filter(|(holds, _)| !holds).count()
    }

    /// Prints every line (`ok` or `MISSED`) on stderr, so a `--json` stdout stays parseable.
    fn print(&self) {
        eprintln!("memory bounds (issue 15):");
        for (holds, line) in &self.lines {
            let mark = if *holds { "ok    " } else { "MISSED" };
            eprintln!("  {mark} {line}");
        }
    }
}

fn parent() {
    let binary = fake_apiserver_binary();
    let baseline = run_child(&binary, "baseline", 0);
    let mut figures = vec![
        figure("baseline", "peak_rss", mib(baseline.peak_kib), "MiB"),
        figure(
            "baseline",
            "apiserver_peak_rss",
            mib(baseline.server_peak_kib),
            "MiB",
        ),
        figure(
            "baseline",
            "heap_peak",
            mib_of_bytes(baseline.heap_peak),
            "MiB",
        ),
    ];
    let mut bounds = Bounds::default();
    // The driver's peak beside the Recorder's under the same workload, and the bounds.
    let mut driver =
        |variant: &str, m: &Measured, recorder: &Measured, figures: &mut Vec<Figure>| {
            let flat = bounds.check(
                m.peak_kib <= PEAK_BOUND_KIB,
                format!(
                    "{variant}: driver peak {:.1} MiB <= 64 MiB",
                    mib(m.peak_kib)
                ),
            );
            let below = bounds.check(
                m.peak_kib <= recorder.peak_kib,
                format!(
                    "{variant}: driver peak {:.1} MiB <= the Recorder's {:.1} MiB under the same \
                 workload (same run; driver heap at the end {:.1} MiB, Recorder's {:.1} MiB)",
                    mib(m.peak_kib),
                    mib(recorder.peak_kib),
                    mib_of_bytes(m.heap_end),
                    mib_of_bytes(recorder.heap_end)
                ),
            );
            figures.extend([
                figure(variant, "peak_rss", mib(m.peak_kib), "MiB"),
                figure(variant, "recorder_peak_rss", mib(recorder.peak_kib), "MiB"),
                figure(
                    variant,
                    "peak_vs_recorder",
                    m.peak_kib as f64 / recorder.peak_kib.max(1) as f64,
                    "ratio",
                ),
                figure(
                    variant,
                    "above_baseline",
                    mib(m.peak_kib.saturating_sub(baseline.peak_kib)),
                    "MiB",
                ),
                figure(variant, "heap_peak", mib_of_bytes(m.heap_peak), "MiB"),
                figure(
                    variant,
                    "heap_after_setup",
                    mib_of_bytes(m.heap_setup),
                    "MiB",
                ),
                figure(variant, "heap_at_end", mib_of_bytes(m.heap_end), "MiB"),
                figure(variant, "rss_file_at_end", mib(m.rss_file_kib), "MiB"),
                figure(variant, "apiserver_peak_rss", mib(m.server_peak_kib), "MiB"),
                figure(
                    variant,
                    "meets_bounds",
                    f64::from(u8::from(flat && below)),
                    "bool",
                ),
            ]);
        };
    let mut controllers = Vec::new();
    let mut recorders = Vec::new();
    for volumes in SIZES {
        let variant = format!("controller-{volumes}");
        let peer = format!("kube-rs-recorder-{volumes}");
        let m = run_child(&binary, &variant, volumes);
        let r = run_child(&binary, &peer, volumes);
        driver(&variant, &m, &r, &mut figures);
        let above = m.peak_kib.saturating_sub(baseline.peak_kib);
        figures.extend([
            figure(
                &variant,
                "above_baseline_per_volume",
                above as f64 * 1024.0 / volumes as f64,
                "bytes",
            ),
            figure(&variant, "posts", m.posts as f64, "posts"),
            figure(&variant, "dropped", m.dropped as f64, "events"),
            figure(
                &variant,
                "dropped_rate_limited",
                m.dropped_rate_limited as f64,
                "events",
            ),
            figure(&variant, "waiting_at_end", m.waiting as f64, "posts"),
            figure(&variant, "events_created", m.created as f64, "objects"),
        ]);
        figures.extend([
            figure(&peer, "peak_rss", mib(r.peak_kib), "MiB"),
            figure(
                &peer,
                "above_baseline",
                mib(r.peak_kib.saturating_sub(baseline.peak_kib)),
                "MiB",
            ),
            figure(&peer, "heap_peak", mib_of_bytes(r.heap_peak), "MiB"),
            figure(&peer, "rss_file_at_end", mib(r.rss_file_kib), "MiB"),
            figure(&peer, "apiserver_peak_rss", mib(r.server_peak_kib), "MiB"),
            figure(&peer, "posts", r.posts as f64, "posts"),
        ]);
        controllers.push((volumes, m));
        recorders.push((volumes, r));
    }
    // The controller holding its volumes without the storm: its own footprint, beside the
    // Recorder that posted those volumes' events and the storm's.
    let quiet = run_child(&binary, "controller-10000-no-storm", 10_000);
    if let Some((_, r)) = recorders.iter().find(|(volumes, _)| *volumes == 10_000) {
        driver("controller-10000-no-storm", &quiet, r, &mut figures);
    }
    if let (Some((small, s)), Some((large, l))) = (controllers.first(), controllers.last()) {
        let volumes = (large - small) as f64;
        // The peak's slope (what an operator pays per volume) and the heap's (what the
        // controller holds per volume: the poster's share is the same at every size).
        let slope = l.peak_kib.saturating_sub(s.peak_kib) as f64 * 1024.0 / volumes;
        let heap_slope = l.heap_end.saturating_sub(s.heap_end) as f64 / volumes;
        let variant = format!("controller-{small}..{large}");
        let rss_ok = bounds.check(
            slope <= PER_VOLUME_BOUND,
            format!("{variant}: peak RSS grows {slope:.0} bytes per volume <= 600"),
        );
        let heap_ok = bounds.check(
            heap_slope <= PER_VOLUME_BOUND,
            format!("{variant}: heap held grows {heap_slope:.0} bytes per volume <= 600"),
        );
        figures.extend([
            figure(&variant, "cost_per_volume", slope, "bytes"),
            figure(&variant, "heap_per_volume", heap_slope, "bytes"),
            figure(
                &variant,
                "meets_bounds",
                f64::from(u8::from(rss_ok && heap_ok)),
                "bool",
            ),
        ]);
    }
    let missed = bounds.missed();
    figures.push(figure("all", "bounds_missed", missed as f64, "bounds"));
    report(&figures);
    bounds.print();
    if missed > 0 {
        eprintln!("FAILED: {missed} memory bound(s) missed (lines marked MISSED above)");
        std::process::exit(1);
    }
}
