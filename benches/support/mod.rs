//! Shared bench support: a fake cluster seeded with claims, the three peers, and output
//! (a table for people, `--json` for one JSON object per line).

#![allow(dead_code)]

use std::sync::Arc;

use fake_apiserver::FakeCluster;
use fake_apiserver::clock::{SharedClock, SystemClock};
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, PersistentVolumeClaim};
use kube::api::{Api, PostParams};
use serde_json::json;

/// A fake cluster (real time) with namespace `vms` and claims `disk-0..n`.
pub async fn cluster_with_claims(n: usize) -> (FakeCluster, Vec<ObjectReference>) {
    cluster_with_claims_on(Arc::new(SystemClock), n).await
}

/// A fake cluster on `clock` with namespace `vms` and claims `disk-0..n`.
pub async fn cluster_with_claims_on(
    clock: SharedClock,
    n: usize,
) -> (FakeCluster, Vec<ObjectReference>) {
    let cluster = FakeCluster::new(clock);
    let client = cluster.client();
    create_namespace(&client).await;
    let references = create_claims(&client, n).await;
    cluster.clear_requests();
    (cluster, references)
}

/// Creates namespace `vms`.
pub async fn create_namespace(client: &kube::Client) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "vms"}})).expect("namespace"),
        )
        .await
        .expect("create namespace");
}

/// Creates claims `vms/disk-0..n` and returns their references (uid included).
pub async fn create_claims(client: &kube::Client, n: usize) -> Vec<ObjectReference> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "vms");
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
    references
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
        "{:<10} {:<28} {:<28} {:>16} unit",
        "bench", "variant", "metric", "value"
    );
    for f in figures {
        println!(
            "{:<10} {:<28} {:<28} {:>16.3} {}",
            f.bench, f.variant, f.metric, f.value, f.unit
        );
    }
}

/// A small seeded generator (SplitMix64) for schedules that replay the same in every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The value of `--name TEXT` on the command line, or `default`.
pub fn arg_text(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
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
