//! `storm`: many claims × repeated lifecycle events (identical repeats and distinct messages
//! mixed), each peer against its own in-process fake cluster of the same shape.
//!
//! Peers: csi-events (defaults, and with the spam filter opened to show folding alone),
//! kube-rs's `Recorder`, and a naive poster (GET the claim, create an Event, inline).
//! Figures: API requests, distinct messages visible, sum of counts, wall time; and ratios
//! against the Recorder measured in the same run.
//!
//! `cargo bench --bench storm [-- --claims 1000 --repeats 100 --json]`

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use csi_events::{ClaimName, EventPoster, PosterConfig};
use fake_apiserver::FakeCluster;
use k8s_openapi::api::core::v1::{Event as CoreEvent, ObjectReference, PersistentVolumeClaim};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use support::{Figure, arg, cluster_with_claims, report};

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

async fn measure(cluster: &FakeCluster, started: Instant) -> Outcome {
    let wall = started.elapsed();
    let requests = cluster.requests().len();
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

async fn csi_events(claims: usize, repeats: usize, open_filter: bool) -> Outcome {
    let (cluster, _) = cluster_with_claims(claims).await;
    let mut config = PosterConfig::default().instance("bench");
    if open_filter {
        config = config.spam_filter(u32::MAX, Duration::from_secs(300));
    }
    config.queue_size = claims * repeats;
    let poster = EventPoster::new(cluster.client(), config);
    let started = Instant::now();
    for i in 0..repeats {
        for c in 0..claims {
            let (reason, _, message) = post_of(c, i);
            let claim = ClaimName::new("vms", format!("disk-{c}"));
            let volume = format!("pvc-{c}").into();
            match reason {
                "MigrationStarted" => {
                    let target = if i % 4 == 0 { "node-b" } else { "node-c" };
                    poster.post_migration_started(
                        Some(&claim),
                        &volume,
                        &"node-a".into(),
                        &target.into(),
                        Duration::from_secs(300),
                    );
                }
                "VolumeDetached" => {
                    poster.post_volume_detached(Some(&claim), &volume, &"node-a".into())
                }
                _ => poster.post_volume_attached(
                    Some(&claim),
                    &volume,
                    &"node-a".into(),
                    Duration::from_millis(153),
                ),
            }
            debug_assert!(!message.is_empty());
        }
    }
    poster.flush().await;
    measure(&cluster, started).await
}

async fn recorder(claims: usize, repeats: usize) -> Outcome {
    let (cluster, references) = cluster_with_claims(claims).await;
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
    measure(&cluster, started).await
}

async fn naive(claims: usize, repeats: usize) -> Outcome {
    let (cluster, _) = cluster_with_claims(claims).await;
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
    measure(&cluster, started).await
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let claims = arg("--claims", 200);
    let repeats = arg("--repeats", 100);
    let expected_distinct = claims * 4;
    let runs = [
        ("csi-events", csi_events(claims, repeats, false).await),
        (
            "csi-events-no-spam-filter",
            csi_events(claims, repeats, true).await,
        ),
        ("kube-rs-recorder", recorder(claims, repeats).await),
        ("naive-inline", naive(claims, repeats).await),
    ];
    let recorder_run = &runs[2].1;
    let mut figures = Vec::new();
    for (variant, outcome) in &runs {
        let v = || variant.to_string();
        figures.push(Figure {
            bench: "storm",
            variant: v(),
            metric: "posts",
            value: (claims * repeats) as f64,
            unit: "events",
        });
        figures.push(Figure {
            bench: "storm",
            variant: v(),
            metric: "api_requests",
            value: outcome.requests as f64,
            unit: "requests",
        });
        figures.push(Figure {
            bench: "storm",
            variant: v(),
            metric: "distinct_messages_visible",
            value: 100.0 * outcome.visible as f64 / expected_distinct as f64,
            unit: "%",
        });
        figures.push(Figure {
            bench: "storm",
            variant: v(),
            metric: "sum_of_counts",
            value: outcome.count_sum as f64,
            unit: "events",
        });
        figures.push(Figure {
            bench: "storm",
            variant: v(),
            metric: "wall",
            value: outcome.wall.as_secs_f64() * 1000.0,
            unit: "ms",
        });
        figures.push(Figure {
            bench: "storm",
            variant: v(),
            metric: "requests_vs_recorder",
            value: recorder_run.requests as f64 / outcome.requests.max(1) as f64,
            unit: "x fewer",
        });
        figures.push(Figure {
            bench: "storm",
            variant: v(),
            metric: "wall_vs_recorder",
            value: outcome.wall.as_secs_f64() / recorder_run.wall.as_secs_f64(),
            unit: "ratio",
        });
    }
    report(&figures);
}
