//! `memory`: peak RSS of the controller holding many volumes through a storm of posts, beside
//! kube-rs's `Recorder` under the same storm, both against the in-process fake cluster.
//!
//! Each variant runs in a child process of its own (this binary re-executed with
//! `CSI_EVENTS_MEMORY_VARIANT` set), and reports the kernel's high-water mark of its resident
//! set (`VmHWM` in `/proc/self/status`), so one variant's heap cannot hide in another's.
//!
//! Variants:
//! - `baseline`: the runtime and the fake cluster seeded with the claims (what every variant
//!   pays before its own work);
//! - `controller-<N>`: a [`Controller`] publishing N RWX volumes (claim keys in the context;
//!   the first `--migrating` of them have a live claim, the others' events are skipped), starting
//!   a migration on `--migrating` of them, then a storm of `--posts` posts: those volumes
//!   migrate round the three nodes (unpublish the source → MigrationCompleted, publish a new
//!   target → MigrationStarted), N = 1 000, 10 000 and 100 000 to show flatness;
//! - `controller-10000-no-storm`: the setup alone (the controller's own footprint);
//! - `kube-rs-recorder`: `Recorder::publish` of the same events (setup and storm, each with its
//!   exact message) on the same claims.
//!
//! Figures: peak RSS, RSS above the baseline, cost per volume (slope between the smallest and
//! the largest controller variant), posts, events dropped, and the Event objects the fake API
//! server holds at the end.
//!
//! The API server lives in the measured process, so its store counts too: every variant
//! compacts the server's watch history (20 000 changes kept otherwise) at each flush, and the
//! `events_stored` figure says how much of the peak is Event objects on the server side. The
//! storm is the same in every controller variant, so the cost per volume is the controller's
//! own.
//!
//! `cargo bench --bench memory [-- --posts 100000 --migrating 1000 --json]`

#[path = "support/mod.rs"]
mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use csi_events::LifecycleEvent;
use csi_events::clock::VirtualClock;
use csi_events::metrics::DropCause;
use csi_events::model::{AccessMode, Controller, ControllerConfig, Publish};
use csi_events::{EventPoster, PosterConfig};
use fake_apiserver::ApiServer;
use k8s_openapi::api::core::v1::{Node, ObjectReference};
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;
use support::{Figure, arg, create_claims, create_namespace, report};

/// The environment variable that makes this binary run one variant and report.
const VARIANT_ENV: &str = "CSI_EVENTS_MEMORY_VARIANT";
/// The three nodes the migrations go round.
const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
/// Posts between two flushes (the poster's queue holds 1000).
const FLUSH_EVERY: usize = 500;
/// Controller sizes.
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// What a child reports.
#[derive(Debug, Clone, Copy, Default)]
struct Measured {
    peak_kib: u64,
    posts: u64,
    dropped: u64,
    /// Event objects the fake API server holds at the end.
    events_stored: u64,
}

fn main() {
    if let Ok(variant) = std::env::var(VARIANT_ENV) {
        child(&variant);
        return;
    }
    parent();
}

/// `VmHWM` of this process, in KiB.
fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn child(variant: &str) {
    let posts = arg("--posts", 100_000);
    let migrating = arg("--migrating", 1_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let measured = runtime.block_on(async {
        match variant {
            "baseline" => {
                let _world = seeded(migrating).await;
                Measured::default()
            }
            "kube-rs-recorder" => recorder(migrating, posts).await,
            other => {
                let (size, posts) = match other.strip_suffix("-no-storm") {
                    Some(size) => (size, 0),
                    None => (other, posts),
                };
                let volumes = size
                    .strip_prefix("controller-")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("unknown variant {other}"));
                controller(volumes, migrating, posts).await
            }
        }
    });
    println!(
        "{}",
        json!({"peak_kib": peak_kib(), "posts": measured.posts, "dropped": measured.dropped,
               "events_stored": measured.events_stored})
    );
}

/// The fake cluster (virtual clock, no request log) with namespace `vms`, the three nodes and
/// claims `disk-0..claims`; returns the clock, the server, a client and the claims' references.
async fn seeded(claims: usize) -> (VirtualClock, ApiServer, kube::Client, Vec<ObjectReference>) {
    let clock = VirtualClock::new("2026-01-01T00:00:00Z".parse().expect("start"));
    let server = ApiServer::new(Arc::new(clock.clone()));
    let client = fake_apiserver::transport::in_process_client(server.clone());
    create_namespace(&client).await;
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
    let references = create_claims(&client, claims).await;
    server.compact();
    (clock, server, client, references)
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

async fn controller(volumes: usize, migrating: usize, posts: usize) -> Measured {
    let (clock, server, client, _) = seeded(migrating).await;
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
    let mut since_flush = 0;
    // Setup: every volume on its first node, then the migrating ones start migrating.
    for v in 0..volumes {
        let (source, _) = nodes_at(v, 0);
        controller
            .publish(publish(v, source))
            .await
            .expect("attach");
        since_flush += 1;
        if since_flush >= FLUSH_EVERY {
            since_flush = 0;
            poster.flush().await;
            server.compact();
        }
    }
    for v in 0..migrating.min(volumes) {
        let (_, target) = nodes_at(v, 0);
        controller
            .publish(publish(v, target))
            .await
            .expect("migrate");
        since_flush += 1;
        if since_flush >= FLUSH_EVERY {
            since_flush = 0;
            poster.flush().await;
            server.compact();
        }
    }
    // The storm.
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
        since_flush += 2;
        if since_flush >= FLUSH_EVERY {
            since_flush = 0;
            poster.flush().await;
            server.compact();
        }
    }
    poster.flush().await;
    let events_stored = server.objects("", "v1", "events").len() as u64;
    assert_eq!(
        controller.volumes().len(),
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
    controller.stop();
    Measured {
        peak_kib: 0,
        posts: done,
        dropped,
        events_stored,
    }
}

async fn recorder(migrating: usize, posts: usize) -> Measured {
    let (_clock, server, client, references) = seeded(migrating).await;
    let recorder = Recorder::new(client, Reporter::from("rds-csi-controller".to_string()));
    let publish = async |claim: usize, event: LifecycleEvent| {
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
        let _ = recorder.publish(&event, &references[claim]).await;
    };
    // The setup events the controller wrote (those of the claims that exist).
    for v in 0..migrating {
        let (source, target) = nodes_at(v, 0);
        let id = format!("pvc-{v}");
        publish(
            v,
            LifecycleEvent::VolumeAttached {
                volume: id.as_str().into(),
                node: source.into(),
                took: Duration::ZERO,
            },
        )
        .await;
        publish(
            v,
            LifecycleEvent::MigrationStarted {
                volume: id.as_str().into(),
                source: source.into(),
                target: target.into(),
                timeout: Duration::from_secs(300),
            },
        )
        .await;
        if v % (FLUSH_EVERY / 2) == 0 {
            server.compact();
        }
    }
    let mut done = 0;
    for (claim, event) in storm_events(migrating, posts) {
        publish(claim, event).await;
        done += 1;
        if done % FLUSH_EVERY as u64 == 0 {
            server.compact();
        }
    }
    Measured {
        peak_kib: 0,
        posts: done,
        dropped: 0,
        events_stored: server.objects("", "v1", "events").len() as u64,
    }
}

fn run_child(variant: &str) -> Measured {
    let exe = std::env::current_exe().expect("this bench's path");
    let output = Command::new(exe)
        .args(std::env::args().skip(1))
        .env(VARIANT_ENV, variant)
        .output()
        .expect("run the variant");
    assert!(
        output.status.success(),
        "variant {variant} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
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
        events_stored: number("events_stored"),
    }
}

fn parent() {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let baseline = run_child("baseline");
    let mut figures = vec![Figure {
        bench: "memory",
        variant: "baseline".into(),
        metric: "peak_rss",
        value: mib(baseline.peak_kib),
        unit: "MiB",
    }];
    let mut controllers = Vec::new();
    for volumes in SIZES {
        let variant = format!("controller-{volumes}");
        let m = run_child(&variant);
        controllers.push((volumes, m));
        let above = m.peak_kib.saturating_sub(baseline.peak_kib);
        figures.extend([
            Figure {
                bench: "memory",
                variant: variant.clone(),
                metric: "peak_rss",
                value: mib(m.peak_kib),
                unit: "MiB",
            },
            Figure {
                bench: "memory",
                variant: variant.clone(),
                metric: "above_baseline",
                value: mib(above),
                unit: "MiB",
            },
            Figure {
                bench: "memory",
                variant: variant.clone(),
                metric: "above_baseline_per_volume",
                value: above as f64 * 1024.0 / volumes as f64,
                unit: "bytes",
            },
            Figure {
                bench: "memory",
                variant: variant.clone(),
                metric: "posts",
                value: m.posts as f64,
                unit: "posts",
            },
            Figure {
                bench: "memory",
                variant: variant.clone(),
                metric: "dropped",
                value: m.dropped as f64,
                unit: "events",
            },
            Figure {
                bench: "memory",
                variant,
                metric: "events_stored",
                value: m.events_stored as f64,
                unit: "objects",
            },
        ]);
    }
    if let (Some((small, s)), Some((large, l))) = (controllers.first(), controllers.last()) {
        figures.push(Figure {
            bench: "memory",
            variant: format!("controller-{small}..{large}"),
            metric: "cost_per_volume",
            value: l.peak_kib.saturating_sub(s.peak_kib) as f64 * 1024.0 / (large - small) as f64,
            unit: "bytes",
        });
    }
    // The controller holding its volumes without the storm: its own footprint.
    let quiet = run_child("controller-10000-no-storm");
    figures.extend([
        Figure {
            bench: "memory",
            variant: "controller-10000-no-storm".into(),
            metric: "peak_rss",
            value: mib(quiet.peak_kib),
            unit: "MiB",
        },
        Figure {
            bench: "memory",
            variant: "controller-10000-no-storm".into(),
            metric: "above_baseline",
            value: mib(quiet.peak_kib.saturating_sub(baseline.peak_kib)),
            unit: "MiB",
        },
    ]);
    let recorder = run_child("kube-rs-recorder");
    figures.extend([
        Figure {
            bench: "memory",
            variant: "kube-rs-recorder".into(),
            metric: "peak_rss",
            value: mib(recorder.peak_kib),
            unit: "MiB",
        },
        Figure {
            bench: "memory",
            variant: "kube-rs-recorder".into(),
            metric: "above_baseline",
            value: mib(recorder.peak_kib.saturating_sub(baseline.peak_kib)),
            unit: "MiB",
        },
        Figure {
            bench: "memory",
            variant: "kube-rs-recorder".into(),
            metric: "posts",
            value: recorder.posts as f64,
            unit: "posts",
        },
        Figure {
            bench: "memory",
            variant: "kube-rs-recorder".into(),
            metric: "events_stored",
            value: recorder.events_stored as f64,
            unit: "objects",
        },
    ]);
    if let Some((_, ten_k)) = controllers.iter().find(|(n, _)| *n == 10_000) {
        figures.push(Figure {
            bench: "memory",
            variant: "controller-10000".into(),
            metric: "peak_vs_recorder",
            value: ten_k.peak_kib as f64 / recorder.peak_kib.max(1) as f64,
            unit: "ratio",
        });
    }
    report(&figures);
}
