//! `storm`: many claims × repeated lifecycle events (identical repeats and distinct messages
//! mixed), each peer against its own in-process fake cluster of the same shape.
//!
//! Two variants:
//! - `burst`: every post at once. Peers: csi-events (defaults, the reflector claim source, and
//!   the spam filter opened to show folding alone), kube-rs's `Recorder`, and a naive poster
//!   (GET the claim, create an Event, inline). Figures: API requests, distinct messages
//!   visible, sum of counts, wall time; ratios against the Recorder measured in the same run.
//! - `spread`: the same kind of posts spread over an hour of virtual time, in bursts of 1–4
//!   posts per claim at seeded random instants. Figures: API requests beside the physical
//!   minimum (one create per distinct Event plus one patch per burst that changes a count),
//!   for csi-events with each claim source and for kube-rs's `Recorder`.
//!
//! The `http/` rows of `burst` run over HTTP (the fake served on loopback): csi-events with
//! kube's own client, and client-go's `tools/record` and `tools/events` in the Go `event-peer`
//! (`peers/`; needs `go`, built on first use): the same posts, the same server.
//!
//! `cargo bench --bench storm [-- --variant burst|spread|all --claims 200 --repeats 100
//! --bursts 6 --seed 7 --json]`

#[path = "support/mod.rs"]
mod support;

#[path = "support/client_go.rs"]
mod client_go;
#[path = "../tests/support/go_peers.rs"]
mod go_peers;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use std::sync::Arc;

use csi_events::clock::{Clock, VirtualClock};
use csi_events::{ClaimName, ClaimSource, EventPoster, PosterConfig};
use fake_apiserver::FakeCluster;
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference, PersistentVolumeClaim};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use support::{Figure, Rng, arg, arg_text, cluster_with_claims, cluster_with_claims_on, report};

/// The i-th post on a claim: (reason, type, message).
fn post_of(claim: usize, i: usize) -> (&'static str, &'static str, String) {
    let vol = format!("pvc-{claim}");
    match i % 4 {
        0 => (
            "MigrationStarted",
            "Normal",
            format!(
                "[{vol}]: KubeVirt live migration started - source: node-a, target: node-b, timeout: 5m0s"
            ),
        ),
        1 => (
            "MigrationStarted",
            "Normal",
            format!(
                "[{vol}]: KubeVirt live migration started - source: node-a, target: node-c, timeout: 5m0s"
            ),
        ),
        2 => (
            "VolumeDetached",
            "Normal",
            format!("[{vol}]: Detached from node node-a"),
        ),
        _ => (
            "VolumeAttached",
            "Normal",
            format!("[{vol}]: Attached to node node-a (duration: 153ms)"),
        ),
    }
}

struct Outcome {
    requests: usize,
    visible: usize,
    count_sum: i64,
    wall: Duration,
}

async fn measure(cluster: &FakeCluster, started: Instant, base: u64) -> Outcome {
    let wall = started.elapsed();
    let since = cluster.request_log().total().saturating_sub(base);
    let requests = usize::try_from(since).unwrap_or(usize::MAX);
    let events: Api<CoreEvent> = Api::namespaced(cluster.client(), "vms");
    let listed = events
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    let visible: BTreeSet<_> = listed
        .iter()
        .map(|e| (e.involved_object.name.clone(), e.message.clone()))
        .collect();
    let count_sum = listed.iter().map(|e| i64::from(e.count.unwrap_or(1))).sum();
    Outcome {
        requests,
        visible: visible.len(),
        count_sum,
        wall,
    }
}

/// Posts the `i`-th post of claim `c` (see [`post_of`]) through the poster's typed API.
fn post_csi(poster: &EventPoster, c: usize, i: usize) {
    let claim = ClaimName::new("vms", format!("disk-{c}"));
    let volume = format!("pvc-{c}").into();
    match i % 4 {
        0 | 1 => {
            let target = if i % 4 == 1 { "node-c" } else { "node-b" };
            poster.post_migration_started(
                Some(&claim),
                &volume,
                &"node-a".into(),
                &target.into(),
                Duration::from_secs(300),
            );
        }
        2 => poster.post_volume_detached(Some(&claim), &volume, &"node-a".into()),
        _ => poster.post_volume_attached(
            Some(&claim),
            &volume,
            &"node-a".into(),
            Duration::from_millis(153),
        ),
    }
}

async fn csi_events(
    claims: usize,
    repeats: usize,
    open_filter: bool,
    source: ClaimSource,
) -> Outcome {
    let (cluster, _) = cluster_with_claims(claims).await;
    csi_events_with(
        &cluster,
        cluster.client(),
        repeats,
        claims,
        open_filter,
        source,
    )
    .await
}

/// csi-events over HTTP (kube's `Config` client against the fake served on loopback), the
/// transport the client-go rows use.
async fn csi_events_http(claims: usize, repeats: usize) -> Outcome {
    let (cluster, _) = cluster_with_claims(claims).await;
    let (server, _) = client_go::serve(&cluster, "csi-events").await;
    let client = client_go::http_client(&server);
    let outcome = csi_events_with(&cluster, client, repeats, claims, false, ClaimSource::Get).await;
    server.shutdown().await;
    outcome
}

/// client-go's `tools/record` (`recorder = "record"`) or `tools/events` (`"events"`) in the Go
/// `event-peer`, over HTTP: the same posts as [`post_of`].
async fn client_go_storm(claims: usize, repeats: usize, recorder: &str) -> Outcome {
    let (cluster, _) = cluster_with_claims(claims).await;
    let args = [
        "--workload".to_string(),
        "storm".into(),
        "--claims".into(),
        claims.to_string(),
        "--repeats".into(),
        repeats.to_string(),
    ];
    let (result, server) = client_go::run_event_peer(&cluster, recorder, &args, || {}).await;
    let mut outcome = measure(&cluster, Instant::now(), result.base).await;
    outcome.wall = Duration::from_secs_f64(result.wall_ms / 1000.0);
    server.shutdown().await;
    outcome
}

async fn csi_events_with(
    cluster: &FakeCluster,
    client: kube::Client,
    repeats: usize,
    claims: usize,
    open_filter: bool,
    source: ClaimSource,
) -> Outcome {
    // Requests since the set-up: the log's never-wrapping total, not its bounded ring.
    let base = cluster.request_log().total();
    let mut config = PosterConfig::default()
        .instance("bench")
        .claim_source(source);
    if open_filter {
        config = config.spam_filter(u32::MAX, Duration::from_secs(300));
    }
    config.queue_size = claims * repeats;
    let poster = EventPoster::new(client, config);
    let started = Instant::now();
    for i in 0..repeats {
        for c in 0..claims {
            post_csi(&poster, c, i);
        }
    }
    poster.flush().await;
    measure(cluster, started, base).await
}

async fn recorder(claims: usize, repeats: usize) -> Outcome {
    let (cluster, references) = cluster_with_claims(claims).await;
    // Requests since the set-up: the log's never-wrapping total, not its bounded ring.
    let base = cluster.request_log().total();
    let recorder = Recorder::new(
        cluster.client(),
        Reporter::from("rds-csi-controller".to_string()),
    );
    let started = Instant::now();
    for i in 0..repeats {
        for (c, reference) in references.iter().enumerate() {
            let (reason, _, message) = post_of(c, i);
            let event = Event {
                type_: EventType::Normal,
                reason: reason.into(),
                note: Some(message),
                action: reason.into(),
                secondary: None,
            };
            let _ = recorder.publish(&event, reference).await;
        }
    }
    measure(&cluster, started, base).await
}

async fn naive(claims: usize, repeats: usize) -> Outcome {
    let (cluster, _) = cluster_with_claims(claims).await;
    // Requests since the set-up: the log's never-wrapping total, not its bounded ring.
    let base = cluster.request_log().total();
    let client = cluster.client();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "vms");
    let events: Api<CoreEvent> = Api::namespaced(client, "vms");
    let started = Instant::now();
    let mut serial = 0u64;
    for i in 0..repeats {
        for c in 0..claims {
            let (reason, type_, message) = post_of(c, i);
            let Ok(pvc) = pvcs.get(&format!("disk-{c}")).await else {
                continue;
            };
            serial += 1;
            let event = CoreEvent {
                metadata: kube::api::ObjectMeta {
                    name: Some(format!("disk-{c}.{serial:x}")),
                    namespace: Some("vms".into()),
                    ..Default::default()
                },
                involved_object: ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("PersistentVolumeClaim".into()),
                    namespace: Some("vms".into()),
                    name: pvc.metadata.name.clone(),
                    uid: pvc.metadata.uid.clone(),
                    ..Default::default()
                },
                reason: Some(reason.into()),
                type_: Some(type_.into()),
                message: Some(message),
                count: Some(1),
                source: Some(k8s_openapi::api::core::v1::EventSource {
                    component: Some("naive".into()),
                    host: None,
                }),
                ..Default::default()
            };
            let _ = events.create(&PostParams::default(), &event).await;
        }
    }
    measure(&cluster, started, base).await
}

/// One burst of the spread variant: at `at` seconds, claim `claim` posts `posts` (indices
/// into [`post_of`]).
struct Burst {
    at: u64,
    claim: usize,
    posts: Vec<usize>,
}

/// The spread schedule: `bursts` bursts per claim at seeded random instants within an hour,
/// each of 1–4 posts; sorted by time.
fn spread_schedule(claims: usize, bursts: usize, seed: u64) -> Vec<Burst> {
    let mut rng = Rng::new(seed);
    let mut schedule = Vec::new();
    for claim in 0..claims {
        for _ in 0..bursts {
            let at = rng.below(3600);
            let n = 1 + rng.below(4) as usize;
            let posts = (0..n).map(|_| rng.below(4) as usize).collect();
            schedule.push(Burst { at, claim, posts });
        }
    }
    schedule.sort_by_key(|b| (b.at, b.claim));
    schedule
}

/// The physical minimum of requests: one create per distinct Event, one patch per burst that
/// changes the count of an Event created before.
fn minimum_requests(schedule: &[Burst]) -> usize {
    // Each distinct message of a burst is one write: a create the first time, a patch after.
    schedule
        .iter()
        .map(|burst| {
            burst
                .posts
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        })
        .sum()
}

async fn csi_events_spread(claims: usize, schedule: &[Burst], source: ClaimSource) -> Outcome {
    let clock = VirtualClock::new("2026-01-01T00:00:00Z".parse().expect("start"));
    let (cluster, _) = cluster_with_claims_on(Arc::new(clock.clone()), claims).await;
    // Requests since the set-up: the log's never-wrapping total, not its bounded ring.
    let base = cluster.request_log().total();
    let config = PosterConfig::default()
        .instance("bench")
        .clock(Arc::new(clock.clone()))
        .claim_source(source);
    let poster = EventPoster::new(cluster.client(), config);
    let start = clock.now();
    let started = Instant::now();
    for burst in schedule {
        let now = clock.now().duration_since(start).as_secs() as u64;
        if burst.at > now {
            clock.advance(Duration::from_secs(burst.at - now)).await;
        }
        for &i in &burst.posts {
            post_csi(&poster, burst.claim, i);
        }
        poster.flush().await;
    }
    // Anything waiting on the clock (none expected: the spread stays within the filter).
    for _ in 0..100 {
        if poster.queued() + poster.waiting() == 0 {
            break;
        }
        clock.advance(Duration::from_secs(60)).await;
        poster.flush().await;
    }
    assert_eq!(poster.queued() + poster.waiting(), 0, "every post finished");
    measure(&cluster, started, base).await
}

async fn recorder_spread(claims: usize, schedule: &[Burst]) -> Outcome {
    let (cluster, references) = cluster_with_claims(claims).await;
    // Requests since the set-up: the log's never-wrapping total, not its bounded ring.
    let base = cluster.request_log().total();
    let recorder = Recorder::new(
        cluster.client(),
        Reporter::from("rds-csi-controller".to_string()),
    );
    let started = Instant::now();
    for burst in schedule {
        for &i in &burst.posts {
            let (reason, _, message) = post_of(burst.claim, i);
            let event = Event {
                type_: EventType::Normal,
                reason: reason.into(),
                note: Some(message),
                action: reason.into(),
                secondary: None,
            };
            let _ = recorder.publish(&event, &references[burst.claim]).await;
        }
    }
    measure(&cluster, started, base).await
}

/// A fault of the `faults` variant.
#[derive(Clone, Copy, PartialEq)]
enum FaultKind {
    /// Every event write answers 500 for the first `3 × events` writes (no `Retry-After`).
    ServerErrors,
    /// The first 10 event writes answer 429 with `Retry-After: 1`.
    TooManyRequests,
    /// Every request takes 10 s (server clock, virtual, run at 1000×).
    Latency,
    /// Every request's connection is dropped for 5 minutes (virtual, run at 1000×), then
    /// the server is back.
    Outage,
}

impl FaultKind {
    fn name(self) -> &'static str {
        match self {
            Self::ServerErrors => "5xx",
            Self::TooManyRequests => "429_retry_after",
            Self::Latency => "latency_10s",
            Self::Outage => "outage_5m",
        }
    }

    /// Whether the server runs on a virtual clock moved at [`SPEEDUP`]× by a ticker.
    fn scaled(self) -> bool {
        matches!(self, Self::Latency | Self::Outage)
    }

    fn install(self, cluster: &FakeCluster, events: usize) {
        use fake_apiserver::control::{Fault, Verb};
        match self {
            Self::ServerErrors => {
                for verb in [Verb::Create, Verb::Patch] {
                    cluster.faults().add(
                        Fault::new(verb, "events")
                            .status(500)
                            .times(3 * events as u32),
                    );
                }
            }
            Self::TooManyRequests => {
                cluster.faults().add(
                    Fault::new(Verb::Create, "events")
                        .status(429)
                        .retry_after(1)
                        .times(10),
                );
            }
            Self::Latency => {
                cluster
                    .faults()
                    .add(Fault::any().latency(Duration::from_secs(10)));
            }
            Self::Outage => {
                cluster.faults().add(Fault::any().drop_connection());
            }
        }
    }
}

/// Virtual seconds per real millisecond in the scaled fault rows: the server's clock, the
/// csi-events poster's clock and client-go `tools/record`'s retry sleep (`--sleep 10ms` for
/// its 10 s) all run 1000× faster than the wall, so a 5-minute outage takes 300 ms.
const SPEEDUP: u32 = 1000;

/// Stops its ticker when dropped.
struct Ticker(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Moves `clock` 1 s per real millisecond until the returned [`Ticker`] is dropped; ends the
/// outage (clears the faults) once 5 virtual minutes have passed, if `outage`.
fn ticker(clock: VirtualClock, cluster: FakeCluster, outage: bool) -> Ticker {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    tokio::spawn(async move {
        let start = clock.now();
        let mut cleared = !outage;
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            clock.advance(Duration::from_secs(1)).await;
            if !cleared && clock.now().duration_since(start).as_secs() >= 300 {
                cluster.faults().clear();
                cleared = true;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    Ticker(stop)
}

/// One peer under one fault: how many of `events` distinct posts are visible at the end.
async fn under_fault(peer: &str, fault: FaultKind, events: usize) -> Option<usize> {
    let clock = VirtualClock::new("2026-01-01T00:00:00Z".parse().expect("start"));
    let (cluster, _) = if fault.scaled() {
        cluster_with_claims_on(Arc::new(clock.clone()), events).await
    } else {
        cluster_with_claims(events).await
    };
    let stop = fault
        .scaled()
        .then(|| ticker(clock.clone(), cluster.clone(), fault == FaultKind::Outage));
    match peer {
        "http/csi-events" => {
            let (server, _) = client_go::serve(&cluster, "faults").await;
            let mut config = PosterConfig::default().instance("bench");
            if fault.scaled() {
                config = config.clock(Arc::new(clock.clone()));
            }
            let poster = EventPoster::new(client_go::http_client(&server), config);
            fault.install(&cluster, events);
            for c in 0..events {
                post_csi(&poster, c, 0);
            }
            // Until nothing is queued or waiting (retries exhausted count as done), at most
            // one virtual hour (or real minute).
            let started = Instant::now();
            while poster.queued() + poster.waiting() > 0
                && started.elapsed() < Duration::from_secs(60)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            drop(stop);
            cluster.faults().clear();
            server.shutdown().await;
        }
        "http/client-go-events" if fault == FaultKind::Outage => {
            // tools/events' retry sleep (10 s ±25 %, 12 tries) cannot be set from outside the
            // package, so it cannot run at 1000×: not measured (its whole budget, ≤ 137.5 s,
            // ends inside a 5-minute outage, so a post made at the outage's start is lost).
            drop(stop);
            return None;
        }
        _ => {
            let recorder = peer.trim_start_matches("http/client-go-");
            let mut args = vec![
                "--workload".to_string(),
                "storm".into(),
                "--claims".into(),
                events.to_string(),
                "--repeats".into(),
                "1".into(),
            ];
            if fault.scaled() {
                args.extend(["--sleep".into(), format!("{}us", 10_000_000 / SPEEDUP)]);
            }
            let (_, server) = client_go::run_event_peer(&cluster, recorder, &args, || {
                fault.install(&cluster, events)
            })
            .await;
            drop(stop);
            cluster.faults().clear();
            server.shutdown().await;
        }
    }
    let listed: Vec<CoreEvent> = Api::namespaced(cluster.client(), "vms")
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    let visible: BTreeSet<_> = listed
        .iter()
        .map(|e| (e.involved_object.name.clone(), e.message.clone()))
        .collect();
    Some(visible.len())
}

async fn faults(figures: &mut Vec<Figure>) {
    let events = arg("--fault-events", 100);
    for fault in [
        FaultKind::ServerErrors,
        FaultKind::TooManyRequests,
        FaultKind::Latency,
        FaultKind::Outage,
    ] {
        for peer in [
            "http/csi-events",
            "http/client-go-record",
            "http/client-go-events",
        ] {
            let Some(visible) = under_fault(peer, fault, events).await else {
                continue;
            };
            figures.push(Figure {
                bench: "storm",
                variant: format!("faults/{}/{peer}", fault.name()),
                metric: "lost",
                value: (events - visible.min(events)) as f64,
                unit: "events",
            });
        }
    }
}

fn figure(variant: &str, metric: &'static str, value: f64, unit: &'static str) -> Figure {
    Figure {
        bench: "storm",
        variant: variant.to_owned(),
        metric,
        value,
        unit,
    }
}

async fn spread(figures: &mut Vec<Figure>) {
    let claims = arg("--claims", 200);
    let bursts = arg("--bursts", 6);
    let seed = arg("--seed", 7) as u64;
    let schedule = spread_schedule(claims, bursts, seed);
    let posts: usize = schedule.iter().map(|b| b.posts.len()).sum();
    let minimum = minimum_requests(&schedule);
    let distinct = {
        let mut set = std::collections::BTreeSet::new();
        for b in &schedule {
            for &i in &b.posts {
                set.insert((b.claim, i));
            }
        }
        set.len()
    };
    let runs = [
        (
            "spread/csi-events-get",
            csi_events_spread(claims, &schedule, ClaimSource::Get).await,
        ),
        (
            "spread/csi-events-reflector",
            csi_events_spread(claims, &schedule, ClaimSource::Reflector).await,
        ),
        (
            "spread/kube-rs-recorder",
            recorder_spread(claims, &schedule).await,
        ),
    ];
    for (variant, outcome) in &runs {
        figures.push(figure(variant, "posts", posts as f64, "events"));
        figures.push(figure(
            variant,
            "physical_minimum",
            minimum as f64,
            "requests",
        ));
        figures.push(figure(
            variant,
            "api_requests",
            outcome.requests as f64,
            "requests",
        ));
        figures.push(figure(
            variant,
            "requests_vs_minimum",
            outcome.requests as f64 / minimum.max(1) as f64,
            "x",
        ));
        figures.push(figure(
            variant,
            "distinct_messages_visible",
            100.0 * outcome.visible as f64 / distinct.max(1) as f64,
            "%",
        ));
        figures.push(figure(
            variant,
            "sum_of_counts",
            outcome.count_sum as f64,
            "events",
        ));
        figures.push(figure(
            variant,
            "wall",
            outcome.wall.as_secs_f64() * 1000.0,
            "ms",
        ));
    }
}

async fn burst(figures: &mut Vec<Figure>) {
    let claims = arg("--claims", 200);
    let repeats = arg("--repeats", 100);
    let expected_distinct = claims * 4;
    let runs = [
        (
            "csi-events",
            csi_events(claims, repeats, false, ClaimSource::Get).await,
        ),
        (
            "csi-events-reflector",
            csi_events(claims, repeats, false, ClaimSource::Reflector).await,
        ),
        (
            "csi-events-no-spam-filter",
            csi_events(claims, repeats, true, ClaimSource::Get).await,
        ),
        ("kube-rs-recorder", recorder(claims, repeats).await),
        ("naive-inline", naive(claims, repeats).await),
        // Over HTTP: csi-events beside client-go's two recorders (the Go event-peer).
        ("http/csi-events", csi_events_http(claims, repeats).await),
        (
            "http/client-go-record",
            client_go_storm(claims, repeats, "record").await,
        ),
        (
            "http/client-go-events",
            client_go_storm(claims, repeats, "events").await,
        ),
    ];
    let recorder_run = &runs[3].1;
    let client_go_record = &runs[6].1;
    for (variant, outcome) in &runs {
        if variant.starts_with("http/") {
            figures.push(figure(
                variant,
                "requests_vs_client_go_record",
                client_go_record.requests as f64 / outcome.requests.max(1) as f64,
                "x fewer",
            ));
        }
        figures.push(figure(
            variant,
            "posts",
            (claims * repeats) as f64,
            "events",
        ));
        figures.push(figure(
            variant,
            "api_requests",
            outcome.requests as f64,
            "requests",
        ));
        figures.push(figure(
            variant,
            "distinct_messages_visible",
            100.0 * outcome.visible as f64 / expected_distinct as f64,
            "%",
        ));
        figures.push(figure(
            variant,
            "sum_of_counts",
            outcome.count_sum as f64,
            "events",
        ));
        figures.push(figure(
            variant,
            "wall",
            outcome.wall.as_secs_f64() * 1000.0,
            "ms",
        ));
        figures.push(figure(
            variant,
            "requests_vs_recorder",
            recorder_run.requests as f64 / outcome.requests.max(1) as f64,
            "x fewer",
        ));
        figures.push(figure(
            variant,
            "wall_vs_recorder",
            outcome.wall.as_secs_f64() / recorder_run.wall.as_secs_f64(),
            "ratio",
        ));
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let variant = arg_text("--variant", "all");
    let mut figures = Vec::new();
    if variant == "all" || variant == "burst" {
        burst(&mut figures).await;
    }
    if variant == "all" || variant == "spread" {
        spread(&mut figures).await;
    }
    if variant == "all" || variant == "faults" {
        faults(&mut figures).await;
    }
    if figures.is_empty() {
        eprintln!("--variant must be burst, spread, faults or all (got {variant:?})");
        std::process::exit(2);
    }
    report(&figures);
}
