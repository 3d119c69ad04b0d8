//! Shared bench support: a fake cluster seeded with claims, the three peers, and output
//! (a table for people, `--json` for one JSON object per line).

#![allow(dead_code)]

use std::sync::Arc;

use fake_apiserver::FakeCluster;
use fake_apiserver::clock::SystemClock;
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, PersistentVolumeClaim};
use kube::api::{Api, PostParams};
use serde_json::json;

/// A fake cluster (real time) with namespace `vms` and claims `disk-0..n`.
pub async fn cluster_with_claims(n: usize) -> (FakeCluster, Vec<ObjectReference>) {
    let cluster = FakeCluster::new(Arc::new(SystemClock));
    let client = cluster.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "vms"}})).expect("namespace"),
        )
        .await
        .expect("create namespace");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, "vms");
    let mut references = Vec::with_capacity(n);
    for c in 0..n {
        let claim = json!({
            "metadata": {"name": format!("disk-{c}"), "namespace": "vms"},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}
        });
        let created = claims
            .create(
                &PostParams::default(),
                &serde_json::from_value(claim).expect("claim"),
            )
            .await
            .expect("create claim");
        references.push(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            namespace: Some("vms".into()),
            name: created.metadata.name.clone(),
            uid: created.metadata.uid.clone(),
            ..ObjectReference::default()
        });
    }
    cluster.clear_requests();
    (cluster, references)
}

/// One figure.
pub struct Figure {
    pub bench: &'static str,
    pub variant: String,
    pub metric: &'static str,
    pub value: f64,
    pub unit: &'static str,
}

/// Prints figures as a table, or as JSON lines with `--json`.
pub fn report(figures: &[Figure]) {
    if std::env::args().any(|a| a == "--json") {
        for f in figures {
            println!(
                "{}",
                json!({"bench": f.bench, "variant": f.variant, "metric": f.metric, "value": f.value, "unit": f.unit})
            );
        }
        return;
    }
    println!(
        "{:<10} {:<22} {:<28} {:>16} unit",
        "bench", "variant", "metric", "value"
    );
    for f in figures {
        println!(
            "{:<10} {:<22} {:<28} {:>16.3} {}",
            f.bench, f.variant, f.metric, f.value, f.unit
        );
    }
}

/// The value of `--name N` on the command line, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
