//! The model's test rig: the in-process fake cluster on a virtual clock, seeded with nodes,
//! claims and PVs; a poster and a controller on the same clock; events read back from the API
//! server through kube-rs.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use csi_events::clock::{Clock, VirtualClock};
use csi_events::model::{Controller, ControllerConfig, MigrationMetrics};
use csi_events::{EventPoster, PosterConfig};
use fake_apiserver::FakeCluster;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};

/// Where the virtual clock starts.
pub const START: &str = "2026-01-01T00:00:00Z";
/// The driver name the VolumeAttachments carry.
pub const DRIVER: &str = "rds.csi.srvlab.io";

/// Namespace `vms`; nodes `node-a`, `node-b`, `node-c`; claims `disk-1` … `disk-3` (uids
/// `uid-disk-N`) bound to PVs `pvc-1` … `pvc-3` (claimRef with that uid, ReadWriteMany) and
/// a claim `other` no PV points at.
pub const SEED: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: vms}
---
apiVersion: v1
kind: Node
metadata: {name: node-a}
---
apiVersion: v1
kind: Node
metadata: {name: node-b}
---
apiVersion: v1
kind: Node
metadata: {name: node-c}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: other, namespace: vms, uid: uid-other}
spec: {accessModes: [ReadWriteMany], resources: {requests: {storage: 1Gi}}}
"#;

/// A claim `disk-{n}` and its PV `pvc-{n}` with `access` mode and volume attributes.
pub fn volume_yaml(n: u32, access: &str, attributes: &str) -> String {
    format!(
        r#"
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: disk-{n}, namespace: vms, uid: uid-disk-{n}}}
spec: {{accessModes: [{access}], resources: {{requests: {{storage: 1Gi}}}}, volumeName: pvc-{n}}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: pvc-{n}}}
spec:
  accessModes: [{access}]
  capacity: {{storage: 1Gi}}
  claimRef: {{apiVersion: v1, kind: PersistentVolumeClaim, namespace: vms, name: disk-{n}, uid: uid-disk-{n}}}
  csi: {{driver: {DRIVER}, volumeHandle: pvc-{n}, volumeAttributes: {{{attributes}}}}}
"#
    )
}

/// A VolumeAttachment of `pv` on `node`, created at `created`, attached or not.
pub fn attachment_yaml(
    name: &str,
    attacher: &str,
    pv: &str,
    node: &str,
    created: &str,
    attached: bool,
) -> String {
    format!(
        r#"
---
apiVersion: storage.k8s.io/v1
kind: VolumeAttachment
metadata: {{name: {name}, creationTimestamp: "{created}"}}
spec: {{attacher: {attacher}, nodeName: {node}, source: {{persistentVolumeName: {pv}}}}}
status: {{attached: {attached}}}
"#
    )
}

/// One Event as read back from the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The Event object's name.
    pub name: String,
    pub kind: String,
    pub reason: String,
    pub message: String,
    /// The involved claim's name.
    pub claim: String,
    /// The involved claim's uid.
    pub uid: String,
    pub count: i32,
}

impl Seen {
    /// `(type, reason, message, claim)`.
    pub fn key(&self) -> (&str, &str, &str, &str) {
        (&self.kind, &self.reason, &self.message, &self.claim)
    }
}

#[path = "../support/logs.rs"]
mod logs;
pub use logs::Logs;

pub struct Rig {
    pub cluster: FakeCluster,
    pub clock: VirtualClock,
    pub poster: EventPoster,
    pub controller: Controller,
    pub metrics: MigrationMetrics,
    pub logs: Logs,
    seen: Mutex<BTreeSet<String>>,
    _subscriber: tracing::subscriber::DefaultGuard,
}

fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

/// The cluster seeded with [`SEED`] and `extra` YAML, and a fresh controller that knows the
/// three nodes.
pub async fn rig(extra: &str) -> Rig {
    let r = cluster_rig(extra);
    let controller = Controller::new(r.poster.clone(), r.config());
    for node in ["node-a", "node-b", "node-c"] {
        controller.node_added(&node.into());
    }
    r.with_controller(controller)
}

/// Like [`rig`], but the controller is rebuilt from the cluster (a restart) once the clock
/// has moved by `after`.
pub async fn restarted_rig(extra: &str, after: Duration) -> Rig {
    let r = cluster_rig(extra);
    r.clock.advance(after).await;
    let controller = Controller::rebuild(r.cluster.client(), r.poster.clone(), r.config())
        .await
        .expect("rebuild");
    r.with_controller(controller)
}

/// The parts of a rig before its controller exists.
pub struct ClusterRig {
    pub cluster: FakeCluster,
    pub clock: VirtualClock,
    pub poster: EventPoster,
    pub metrics: MigrationMetrics,
    logs: Logs,
    guard: tracing::subscriber::DefaultGuard,
}

impl ClusterRig {
    /// The controller's config: the rig's clock and metrics, and the cluster's client (so
    /// migration records are written and RWO holders looked up).
    pub fn config(&self) -> ControllerConfig {
        ControllerConfig::default()
            .clock(Arc::new(self.clock.clone()))
            .metrics(self.metrics.clone())
            .client(self.cluster.client())
    }

    pub fn with_controller(self, controller: Controller) -> Rig {
        Rig {
            cluster: self.cluster,
            clock: self.clock,
            poster: self.poster,
            controller,
            metrics: self.metrics,
            logs: self.logs,
            seen: Mutex::new(BTreeSet::new()),
            _subscriber: self.guard,
        }
    }
}

pub fn cluster_rig(extra: &str) -> ClusterRig {
    let (logs, guard) = capture_logs();
    let (cluster, clock) = FakeCluster::virtual_at(START.parse().expect("start"));
    cluster
        .load_yaml(&format!("{SEED}{extra}"))
        .expect("seed the cluster");
    let mut config = PosterConfig::default()
        .instance("model-test")
        .clock(Arc::new(clock.clone()));
    // One write at a time: the API server stores events in the order they were posted.
    config.max_in_flight = 1;
    let poster = EventPoster::new(cluster.client(), config);
    ClusterRig {
        cluster,
        clock,
        poster,
        metrics: MigrationMetrics::default(),
        logs,
        guard,
    }
}

impl Rig {
    /// Every Event in `vms`, in the order they were written.
    pub async fn events(&self) -> Vec<Seen> {
        self.poster.flush().await;
        let api: Api<Event> = Api::namespaced(self.cluster.client(), "vms");
        let mut events = api
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items;
        events.sort_by_key(|e| {
            let name = e.metadata.name.clone().unwrap_or_default();
            let nanos = name
                .rsplit('.')
                .next()
                .and_then(|hex| u128::from_str_radix(hex, 16).ok())
                .unwrap_or(0);
            (nanos, name)
        });
        events
            .into_iter()
            .map(|e| Seen {
                name: e.metadata.name.unwrap_or_default(),
                kind: e.type_.unwrap_or_default(),
                reason: e.reason.unwrap_or_default(),
                message: e.message.unwrap_or_default(),
                claim: e.involved_object.name.unwrap_or_default(),
                uid: e.involved_object.uid.unwrap_or_default(),
                count: e.count.unwrap_or_default(),
            })
            .collect()
    }

    /// The events written since the last call (flushes first).
    pub async fn new_events(&self) -> Vec<Seen> {
        let all = self.events().await;
        let mut seen = self.seen.lock().expect("seen lock");
        all.into_iter()
            .filter(|e| seen.insert(e.name.clone()))
            .collect()
    }

    /// Asserts the events written since the last check: `(type, reason, message, claim)`.
    pub async fn expect_events(&self, want: &[(&str, &str, &str, &str)]) {
        let got = self.new_events().await;
        let got: Vec<_> = got.iter().map(Seen::key).collect();
        assert_eq!(got, want, "events written");
    }

    /// Moves the clock (timers fire) and delivers what is due.
    pub async fn advance(&self, by: Duration) {
        self.clock.advance(by).await;
        self.poster.flush().await;
    }

    /// A restart: the controller stops (its timers and record writer with it) and a new one
    /// is rebuilt from the cluster, with fresh metrics.
    pub async fn restart(&mut self) {
        self.controller.flush_records().await;
        self.controller.stop();
        self.metrics = MigrationMetrics::default();
        let config = ControllerConfig::default()
            .clock(Arc::new(self.clock.clone()))
            .metrics(self.metrics.clone());
        self.controller = Controller::rebuild(self.cluster.client(), self.poster.clone(), config)
            .await
            .expect("rebuild");
        settle().await;
    }

    /// Creates an attached VolumeAttachment `name` of `pv` on `node`, stamped by the API
    /// server now (whole seconds), as the external-attacher does.
    pub async fn attachment(&self, name: &str, pv: &str, node: &str) {
        use k8s_openapi::api::storage::v1::VolumeAttachment;
        use kube::api::PostParams;
        let va: VolumeAttachment = serde_json::from_value(serde_json::json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
            "metadata": {"name": name},
            "spec": {"attacher": DRIVER, "nodeName": node, "source": {"persistentVolumeName": pv}},
            "status": {"attached": true},
        }))
        .expect("a VolumeAttachment");
        let api: Api<VolumeAttachment> = Api::all(self.cluster.client());
        let created = api
            .create(&PostParams::default(), &va)
            .await
            .expect("create VolumeAttachment");
        if !created.status.is_some_and(|s| s.attached) {
            api.replace_status(name, &PostParams::default(), &va)
                .await
                .expect("VolumeAttachment status");
        }
    }

    /// Deletes the VolumeAttachment `name`.
    pub async fn detach_attachment(&self, name: &str) {
        use k8s_openapi::api::storage::v1::VolumeAttachment;
        let api: Api<VolumeAttachment> = Api::all(self.cluster.client());
        api.delete(name, &Default::default())
            .await
            .expect("delete VolumeAttachment");
    }

    /// The migration record annotation of PV `pv`, once the writer is done.
    pub async fn record(&self, pv: &str) -> Option<serde_json::Value> {
        use k8s_openapi::api::core::v1::PersistentVolume;
        self.controller.flush_records().await;
        let api: Api<PersistentVolume> = Api::all(self.cluster.client());
        let pv = api.get(pv).await.expect("get PV");
        pv.metadata
            .annotations
            .unwrap_or_default()
            .get(csi_events::model::MIGRATION_ANNOTATION)
            .map(|text| serde_json::from_str(text).expect("the record is JSON"))
    }

    /// Sets (or with `None` removes) PV `pv`'s migration record annotation by hand.
    pub async fn set_record(&self, pv: &str, text: Option<&str>) {
        use k8s_openapi::api::core::v1::PersistentVolume;
        use kube::api::{Patch, PatchParams};
        let api: Api<PersistentVolume> = Api::all(self.cluster.client());
        let patch = serde_json::json!({"metadata": {"annotations": {
            csi_events::model::MIGRATION_ANNOTATION: text
        }}});
        api.patch(pv, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch PV");
    }

    /// The clock's now.
    pub fn clock_now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        let start: jiff::Timestamp = START.parse().expect("start");
        Duration::try_from(self.clock.now().duration_since(start)).expect("forward")
    }
}

/// Lets spawned tasks run until they wait on something.
pub async fn settle() {
    csi_events::clock::settle().await;
}
