//! A KubeVirt live migration's events, posted against an in-process fake cluster.
//!
//! Run: `cargo run --example migration_events`
//!
//! It creates a claim and its bound volume, then plays a volume's life on a virtual clock:
//! attach to node-a, a migration to node-b that completes after 2m15.456s, a repeated detach
//! (folded into one Event with count 3), a migration that times out on a claim found only
//! through its volume, and an event for a claim that does not exist (skipped and counted).
//! Then it prints every Event object the fake API server holds, and the metrics.

use std::sync::Arc;
use std::time::Duration;

use csi_events::clock::VirtualClock;
use csi_events::{ClaimName, EventPoster, MigrationFailure, NodeName, PosterConfig, VolumeId};
use fake_apiserver::FakeCluster;
use k8s_openapi::api::core::v1::{Event, Namespace, PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, ListParams, PostParams};
use prometheus_client::registry::Registry;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The poster's warnings (the skipped event) on stderr; RUST_LOG=debug shows every request.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let clock = VirtualClock::new("2026-01-01T00:00:00Z".parse()?);
    let cluster = FakeCluster::new(Arc::new(clock.clone()));
    let client = cluster.client();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "vms"}}))?,
        )
        .await?;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "vms");
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    for (claim, volume) in [("disk-a", "pvc-0a"), ("disk-b", "pvc-0b")] {
        let created = claims
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({
                    "metadata": {"name": claim, "namespace": "vms"},
                    "spec": {"accessModes": ["ReadWriteMany"], "volumeMode": "Block",
                             "resources": {"requests": {"storage": "10Gi"}}, "volumeName": volume}
                }))?,
            )
            .await?;
        volumes
            .create(&PostParams::default(), &serde_json::from_value(serde_json::json!({
                "metadata": {"name": volume},
                "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany"], "volumeMode": "Block",
                         "csi": {"driver": "rds.csi.srvlab.io", "volumeHandle": volume},
                         "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "vms",
                                      "name": claim, "uid": created.metadata.uid}}
            }))?)
            .await?;
    }

    let mut registry = Registry::with_prefix("rds_csi");
    let config = PosterConfig::default()
        .instance("example-host")
        .clock(Arc::new(clock.clone()));
    config.metrics.register(&mut registry);
    let poster = EventPoster::new(client.clone(), config);

    let disk_a = ClaimName::new("vms", "disk-a");
    let (vol_a, vol_b) = (VolumeId::from("pvc-0a"), VolumeId::from("pvc-0b"));
    let (node_a, node_b) = (NodeName::from("node-a"), NodeName::from("node-b"));

    poster.post_volume_attached(Some(&disk_a), &vol_a, &node_a, Duration::from_millis(153));
    poster.post_migration_started(
        Some(&disk_a),
        &vol_a,
        &node_a,
        &node_b,
        Duration::from_secs(300),
    );
    clock.advance(Duration::from_millis(135_456)).await;
    poster.post_migration_completed(
        Some(&disk_a),
        &vol_a,
        &node_a,
        &node_b,
        Duration::from_millis(135_456),
    );
    for _ in 0..3 {
        poster.post_volume_detached(Some(&disk_a), &vol_a, &node_a);
        poster.flush().await;
        clock.advance(Duration::from_secs(20)).await;
    }
    // The claim of pvc-0b is found through the volume's claimRef.
    poster.post_migration_started(None, &vol_b, &node_a, &node_b, Duration::from_secs(300));
    clock.advance(Duration::from_secs(360)).await;
    poster.post_migration_failed(
        None,
        &vol_b,
        &node_a,
        &node_b,
        MigrationFailure::Timeout,
        Duration::from_secs(360),
    );
    // No such claim: skipped, counted, logged; never an error to the caller.
    poster.post_volume_detached(Some(&ClaimName::new("vms", "gone")), &vol_b, &node_a);
    poster.flush().await;

    let events: Api<Event> = Api::namespaced(client, "vms");
    let mut listed = events.list(&ListParams::default()).await?.items;
    listed.sort_by_key(|e| e.first_timestamp.clone().map(|t| t.0));
    println!("Events in namespace vms ({}):", listed.len());
    for event in &listed {
        println!(
            "- {} {:<18} x{} on {}/{} (uid {}), from {}: {}",
            event.type_.as_deref().unwrap_or("?"),
            event.reason.as_deref().unwrap_or("?"),
            event.count.unwrap_or(0),
            event.involved_object.kind.as_deref().unwrap_or("?"),
            event.involved_object.name.as_deref().unwrap_or("?"),
            event.involved_object.uid.as_deref().unwrap_or("?"),
            event
                .source
                .as_ref()
                .and_then(|s| s.component.as_deref())
                .unwrap_or("?"),
            event.message.as_deref().unwrap_or(""),
        );
    }
    println!("\nMetrics:");
    for line in csi_events::metrics::encode_text(&registry).lines() {
        if !line.starts_with('#') {
            println!("  {line}");
        }
    }
    let report = poster.shutdown(Duration::from_secs(5)).await;
    println!("\nShutdown: {} events abandoned", report.abandoned.len());
    Ok(())
}
