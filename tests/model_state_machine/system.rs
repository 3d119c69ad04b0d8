//! The system under test: the real `Controller` with the real `EventPoster`, writing through a
//! real kube-rs client into the in-process fake cluster, on a virtual clock, in a tokio runtime
//! of its own per case. After every step it holds the controller to the reference model and
//! to the five invariants of lifecycle.md, reading the events back from the API server.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use csi_events::clock::VirtualClock;
use csi_events::metrics::{DropCause, SkipCause};
use csi_events::model::{
    AccessMode, Controller, ControllerConfig, MigrationMetrics, MigrationResult, MigrationView,
    Publish, VolumeView,
};
use csi_events::{EventPoster, PosterConfig, Reason, RetryPolicy};
use fake_apiserver::FakeCluster;
use fake_apiserver::control::{Fault, Verb};
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use serde_json::json;

use super::reference::{Delivery, HEAL_TIME, Lifecycle, NAMESPACE, Step, World};

/// The virtual clock's start (scenarios.md §2).
pub const EPOCH: &str = "2026-01-01T00:00:00Z";
/// The driver name (VolumeAttachment spec.attacher).
pub const DRIVER: &str = "rds.csi.srvlab.io";
/// The poster's retry jitter seed (also the shrunk scenario's `seed`).
pub const SEED: u64 = 7;
/// The uid a PV's claimRef carries when its claim does not exist at the start.
const UNBORN_UID: &str = "00000000-0000-0000-0000-000000000000";

/// One case's world: runtime, cluster, clock, poster and controller.
pub struct System {
    rt: Rc<tokio::runtime::Runtime>,
    cluster: FakeCluster,
    clock: VirtualClock,
    /// Unfaulted, unlogged client for the harness's own reads and writes.
    admin: kube::Client,
    poster: EventPoster,
    controller: Controller,
    metrics: MigrationMetrics,
    /// uid of each claim per generation.
    uids: BTreeMap<(String, u32), String>,
    /// The VolumeAttachments the harness keeps (volume, node).
    attachments: BTreeSet<(String, String)>,
    /// The last listing of the events, by the poster's successful writes at the time (the
    /// events in the API server change only when one succeeds).
    listed: RefCell<Option<((u64, u64), Written)>>,
}

/// Events as the API server holds them: (claim, uid, type, reason, message) → count.
type Written = BTreeMap<(String, String, String, String, String), i64>;

fn epoch() -> jiff::Timestamp {
    // A constant RFC 3339 text.
    EPOCH.parse().expect("epoch")
}

fn object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a valid object")
}

impl System {
    fn new(world: &World) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (cluster, clock) = FakeCluster::virtual_at(epoch());
        let (admin, poster, controller, metrics, uids) = rt.block_on(async {
            let admin = fake_apiserver::transport::in_process_client(cluster.server().clone());
            let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
            namespaces
                .create(
                    &PostParams::default(),
                    &object(json!({"metadata": {"name": NAMESPACE}})),
                )
                .await
                .expect("namespace");
            let nodes: Api<Node> = Api::all(admin.clone());
            for node in &world.api_nodes {
                nodes
                    .create(&PostParams::default(), &object(json!({"metadata": {"name": node}})))
                    .await
                    .expect("node");
            }
            let mut uids = BTreeMap::new();
            for claim in &world.spec.claims {
                let uid = create_claim(&admin, claim).await;
                uids.insert((claim.clone(), 0), uid);
            }
            let pvs: Api<PersistentVolume> = Api::all(admin.clone());
            for volume in &world.spec.volumes {
                let (ns, name) = volume.claim.split_once('/').expect("ns/name");
                let mode = match volume.mode {
                    AccessMode::Rwo => "ReadWriteOnce",
                    AccessMode::Rwx => "ReadWriteMany",
                };
                let mut attributes = serde_json::Map::new();
                if let Some(text) = &volume.timeout_text {
                    attributes.insert("migrationTimeoutSeconds".into(), json!(text));
                }
                let mut spec = json!({
                    "capacity": {"storage": "1Gi"},
                    "accessModes": [mode],
                    "csi": {"driver": DRIVER, "volumeHandle": volume.id, "volumeAttributes": attributes},
                });
                if volume.claim_ref {
                    let uid = uids
                        .get(&(volume.claim.clone(), 0))
                        .cloned()
                        .unwrap_or_else(|| UNBORN_UID.to_owned());
                    spec["claimRef"] = json!({
                        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "namespace": ns, "name": name, "uid": uid,
                    });
                }
                pvs.create(
                    &PostParams::default(),
                    &object(json!({"metadata": {"name": volume.id}, "spec": spec})),
                )
                .await
                .expect("persistent volume");
            }
            let poster = EventPoster::new(
                cluster.client(),
                PosterConfig::default()
                    .instance("proptest")
                    .clock(Arc::new(clock.clone()))
                    // The spam filter is the poster's own concern (tested there); opened here
                    // so every write happens within its step.
                    .spam_filter(u32::MAX, Duration::from_secs(300))
                    .retry(RetryPolicy {
                        seed: SEED,
                        ..RetryPolicy::default()
                    }),
            );
            let metrics = MigrationMetrics::default();
            let controller = Controller::new(
                poster.clone(),
                ControllerConfig::default()
                    .clock(Arc::new(clock.clone()))
                    .driver_name(DRIVER)
                    .metrics(metrics.clone())
                    .client(cluster.client()),
            );
            for node in &world.known_nodes {
                controller.node_added(&node.as_str().into());
            }
            (admin, poster, controller, metrics, uids)
        });
        Self {
            rt: Rc::new(rt),
            cluster,
            clock,
            admin,
            poster,
            controller,
            metrics,
            uids,
            attachments: BTreeSet::new(),
            listed: RefCell::new(None),
        }
    }

    /// Every event post of the poster so far (written, skipped or dropped).
    fn posted_total(&self) -> u64 {
        Reason::ALL
            .iter()
            .map(|r| self.poster.metrics().posted(*r))
            .sum()
    }

    /// Calls `call` again after it succeeded: invariant 4 (nothing changes, nothing posted).
    async fn assert_idempotent<F: std::future::Future<Output = Result<(), String>>>(
        &self,
        what: &str,
        call: impl Fn() -> F,
    ) {
        let volumes = self.controller.volumes();
        let posted = self.posted_total();
        assert_eq!(
            call().await,
            Ok(()),
            "invariant 4: repeating {what} must succeed"
        );
        assert_eq!(
            self.controller.volumes(),
            volumes,
            "invariant 4: repeating {what} changed the state"
        );
        assert_eq!(
            self.posted_total(),
            posted,
            "invariant 4: repeating {what} posted an event"
        );
    }

    async fn rebuild(&mut self) {
        self.controller.stop();
        self.metrics = MigrationMetrics::default();
        let config = ControllerConfig::default()
            .clock(Arc::new(self.clock.clone()))
            .driver_name(DRIVER)
            .metrics(self.metrics.clone());
        // Fault rules fail a few requests each: a driver restarts until the rebuild succeeds.
        let mut errors = Vec::new();
        for _ in 0..20 {
            match Controller::rebuild(self.cluster.client(), self.poster.clone(), config.clone())
                .await
            {
                Ok(controller) => {
                    self.controller = controller;
                    return;
                }
                Err(error) => errors.push(error.to_string()),
            }
        }
        panic!("rebuild failed 20 times: {errors:?}");
    }

    /// Keeps one VolumeAttachment (attached) per node the reference has attached, as the
    /// external-attacher does; deletes the ones of nodes no longer attached.
    async fn keep_attachments(&mut self, world: &World) {
        let want: BTreeSet<(String, String)> = world
            .volumes
            .iter()
            .flat_map(|(id, v)| v.nodes.iter().map(move |a| (id.clone(), a.node.clone())))
            .collect();
        let api: Api<VolumeAttachment> = Api::all(self.admin.clone());
        for (volume, node) in self.attachments.difference(&want) {
            api.delete(&attachment_name(volume, node), &DeleteParams::default())
                .await
                .expect("delete VolumeAttachment");
        }
        for (volume, node) in want.difference(&self.attachments) {
            let va = json!({
                "apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
                "metadata": {"name": attachment_name(volume, node)},
                "spec": {"attacher": DRIVER, "nodeName": node, "source": {"persistentVolumeName": volume}},
                "status": {"attached": true},
            });
            let created = api
                .create(&PostParams::default(), &object(va.clone()))
                .await
                .expect("create VolumeAttachment");
            if !created.status.is_some_and(|s| s.attached) {
                api.replace_status(
                    &attachment_name(volume, node),
                    &PostParams::default(),
                    &object::<VolumeAttachment>(va),
                )
                .await
                .expect("VolumeAttachment status");
            }
        }
        self.attachments = want;
    }

    /// Events as the API server holds them, listed again only after a successful write.
    fn written(&self) -> Written {
        let m = self.poster.metrics();
        let writes = (m.writes("create", "ok"), m.writes("patch", "ok"));
        if let Some((at, listed)) = self.listed.borrow().as_ref()
            && *at == writes
        {
            return listed.clone();
        }
        let listed = self.rt.block_on(self.list_events());
        *self.listed.borrow_mut() = Some((writes, listed.clone()));
        listed
    }

    async fn list_events(&self) -> Written {
        let api: Api<Event> = Api::namespaced(self.admin.clone(), NAMESPACE);
        let mut written = BTreeMap::new();
        for e in api
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
        {
            let o = &e.involved_object;
            let key = (
                format!(
                    "{}/{}",
                    o.namespace.clone().unwrap_or_default(),
                    o.name.clone().unwrap_or_default()
                ),
                o.uid.clone().unwrap_or_default(),
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default(),
            );
            *written.entry(key).or_insert(0) += i64::from(e.count.unwrap_or(1));
        }
        written
    }
}

async fn create_claim(admin: &kube::Client, claim: &str) -> String {
    let (ns, name) = claim.split_once('/').expect("ns/name");
    let api: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), ns);
    let created = api
        .create(
            &PostParams::default(),
            &object(json!({
                "metadata": {"name": name, "namespace": ns},
                "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}
            })),
        )
        .await
        .expect("create claim");
    created.metadata.uid.expect("a uid")
}

fn attachment_name(volume: &str, node: &str) -> String {
    format!("csi-{volume}-{node}")
}

/// The reference's volumes as the controller reports them.
fn expected_views(world: &World) -> Vec<VolumeView> {
    let at = |offset: Duration| {
        epoch()
            .checked_add(jiff::SignedDuration::try_from(offset).expect("small offset"))
            .expect("in range")
    };
    world
        .volumes
        .iter()
        .map(|(id, v)| VolumeView {
            volume: id.as_str().into(),
            mode: v.mode,
            nodes: v.nodes.iter().map(|a| a.node.as_str().into()).collect(),
            migration: v.migration.as_ref().map(|m| MigrationView {
                source: m.source.as_str().into(),
                target: m.target.as_str().into(),
                started: at(m.start),
                timeout: m.timeout,
                failed: m.failed,
            }),
        })
        .collect()
}

/// The state-machine test binding the reference to the real controller.
pub struct LifecycleTest;

impl StateMachineTest for LifecycleTest {
    type SystemUnderTest = System;
    type Reference = Lifecycle;

    fn init_test(world: &World) -> System {
        System::new(world)
    }

    fn apply(mut sut: System, world: &World, step: Step) -> System {
        let rt = Rc::clone(&sut.rt);
        rt.block_on(async {
            match &step {
                Step::Publish { volume, node, took } => {
                    let spec = world.volume_spec(volume).expect("a volume of the case");
                    let request = Publish {
                        volume: volume.as_str().into(),
                        node: node.as_str().into(),
                        mode: spec.mode,
                        context: spec.context(),
                        took: *took,
                    };
                    let result = sut.controller.publish(request.clone()).await;
                    let got = result.clone().map_err(|e| (e.code, e.message.clone()));
                    assert_eq!(
                        Some(&got),
                        world.last.as_ref(),
                        "publish result of {step:?}"
                    );
                    if result.is_ok() {
                        sut.assert_idempotent("publish", || async {
                            sut.controller
                                .publish(request.clone())
                                .await
                                .map_err(|e| e.to_string())
                        })
                        .await;
                    }
                }
                Step::Unpublish { volume, node } => {
                    let (v, n) = (volume.as_str().into(), node.as_str().into());
                    let result = sut.controller.unpublish(&v, &n);
                    let got = result.clone().map_err(|e| (e.code, e.message.clone()));
                    assert_eq!(
                        Some(&got),
                        world.last.as_ref(),
                        "unpublish result of {step:?}"
                    );
                    if result.is_ok() {
                        sut.assert_idempotent("unpublish", || async {
                            sut.controller.unpublish(&v, &n).map_err(|e| e.to_string())
                        })
                        .await;
                    }
                }
                Step::Advance(by) => sut.clock.advance(*by).await,
                Step::AddNode(node) => {
                    let nodes: Api<Node> = Api::all(sut.admin.clone());
                    nodes
                        .create(
                            &PostParams::default(),
                            &object(json!({"metadata": {"name": node}})),
                        )
                        .await
                        .expect("node");
                    sut.controller.node_added(&node.as_str().into());
                }
                Step::DeleteNode { node, observed } => {
                    let nodes: Api<Node> = Api::all(sut.admin.clone());
                    nodes
                        .delete(node, &DeleteParams::default())
                        .await
                        .expect("delete node");
                    if *observed {
                        sut.controller.node_deleted(&node.as_str().into());
                    }
                }
                Step::DeleteClaim(claim) => {
                    let (ns, name) = claim.split_once('/').expect("ns/name");
                    let api: Api<PersistentVolumeClaim> = Api::namespaced(sut.admin.clone(), ns);
                    api.delete(name, &DeleteParams::default())
                        .await
                        .expect("delete claim");
                }
                Step::CreateClaim(claim) => {
                    let uid = create_claim(&sut.admin, claim).await;
                    let generation = world.claims.get(claim).map(|c| c.generation).unwrap_or(0);
                    sut.uids.insert((claim.clone(), generation), uid);
                }
                Step::Restart => sut.rebuild().await,
                Step::Fault(fault) => {
                    let verb: Verb = fault.verb.parse().expect("a verb");
                    let mut rule = Fault::new(verb, fault.resource)
                        .status(fault.status)
                        .times(fault.times);
                    if let Some(secs) = fault.retry_after {
                        rule = rule.retry_after(secs);
                    }
                    sut.cluster.faults().add(rule);
                }
                Step::Heal => {
                    sut.cluster.faults().clear();
                    sut.clock.advance(HEAL_TIME).await;
                }
            }
            csi_events::clock::settle().await;
            sut.poster.flush().await;
            sut.controller.flush_records().await;
            sut.keep_attachments(world).await;
        });
        sut
    }

    fn check_invariants(sut: &System, world: &World) {
        let volumes = sut.controller.volumes();
        // Invariant 1: at most two nodes, an RWO volume never two.
        for v in &volumes {
            assert!(
                v.nodes.len() <= 2,
                "invariant 1: {v:?} has more than two nodes"
            );
            if v.mode == AccessMode::Rwo {
                assert!(v.nodes.len() <= 1, "invariant 1: RWO {v:?} has two nodes");
            }
        }
        assert_eq!(
            volumes,
            expected_views(world),
            "volumes differ from the reference"
        );

        // Invariant 3: the gauge equals the running migrations.
        let running = volumes
            .iter()
            .filter(|v| v.migration.as_ref().is_some_and(|m| !m.failed))
            .count() as i64;
        assert_eq!(
            sut.metrics.active_migrations(),
            running,
            "invariant 3: active_migrations"
        );
        assert_eq!(
            running,
            world.running_migrations() as i64,
            "running migrations"
        );

        // Invariant 2 (counted), across any number of restarts: every MigrationStarted has
        // exactly one terminal event, or its migration is still running.
        let m = sut.poster.metrics();
        let begun = m.posted(Reason::MigrationStarted);
        let ended = m.posted(Reason::MigrationCompleted) + m.posted(Reason::MigrationFailed);
        assert_eq!(
            begun,
            ended + running as u64,
            "invariant 2: migrations begun vs ended + running"
        );

        // Metrics of lifecycle.md against the reference.
        let c = world.counters;
        let got = (
            sut.metrics.migrations(MigrationResult::Success),
            sut.metrics.migrations(MigrationResult::Timeout),
            sut.metrics.migrations(MigrationResult::Aborted),
            sut.metrics.migrations(MigrationResult::NodeDeleted),
            sut.metrics.conflicts(),
            sut.metrics.stale_cleared(),
        );
        assert_eq!(
            got,
            (
                c.success,
                c.timeout,
                c.aborted,
                c.node_deleted,
                c.conflicts,
                c.stale_cleared
            ),
            "metrics (success, timeout, aborted, node_deleted, conflicts, stale_cleared)"
        );

        // Every post counted, by reason.
        let mut posted: BTreeMap<Reason, u64> = BTreeMap::new();
        for e in &world.posted {
            *posted.entry(e.event.reason()).or_default() += 1;
        }
        for reason in Reason::ALL {
            assert_eq!(
                m.posted(*reason),
                posted.get(reason).copied().unwrap_or(0),
                "events posted with reason {reason}"
            );
        }

        // Invariant 5: each event on the right claim (uid), with the clock's durations; read
        // back from the API server, skipped ones through the poster's metrics.
        let mut expected: BTreeMap<(String, String, String, String, String), i64> = BTreeMap::new();
        let mut skipped: std::collections::HashMap<(Reason, SkipCause), u64> =
            std::collections::HashMap::new();
        for e in &world.posted {
            let reason = e.event.reason();
            match &e.delivery {
                Delivery::Written { claim, generation } => {
                    let uid = sut
                        .uids
                        .get(&(claim.clone(), *generation))
                        .cloned()
                        .expect("a uid for every generation written to");
                    let event_type = reason.event_type().map(|t| t.as_str()).unwrap_or("");
                    *expected
                        .entry((
                            claim.clone(),
                            uid,
                            event_type.to_owned(),
                            reason.as_str().to_owned(),
                            e.event.message(),
                        ))
                        .or_default() += 1;
                }
                Delivery::Skipped(cause) => *skipped.entry((reason, *cause)).or_default() += 1,
            }
        }
        let written = sut.written();
        let causes = [
            SkipCause::PvNotFound,
            SkipCause::NoClaimRef,
            SkipCause::PvcNotFound,
            SkipCause::PvcUidMismatch,
        ];
        for cause in [
            DropCause::QueueFull,
            DropCause::RateLimited,
            DropCause::RetriesExhausted,
            DropCause::Rejected,
            DropCause::Shutdown,
        ] {
            assert_eq!(m.dropped_total(cause), 0, "events dropped ({cause:?})");
        }
        if world.settled() {
            assert_eq!(
                sut.poster.queued(),
                0,
                "events still queued with no fault left"
            );
            assert_eq!(
                written, expected,
                "events in the API server (claim, uid, type, reason, message) -> count"
            );
            for reason in Reason::ALL {
                for cause in causes {
                    assert_eq!(
                        m.skipped(*reason, cause),
                        skipped.get(&(*reason, cause)).copied().unwrap_or(0),
                        "events skipped: {reason} {cause:?}"
                    );
                }
            }
        } else {
            // Faults: some writes may still wait on a retry; none may be wrong or extra.
            for (key, count) in &written {
                assert!(
                    expected.get(key).is_some_and(|want| count <= want),
                    "event {key:?} x{count} written, expected {:?}",
                    expected.get(key)
                );
            }
            for reason in Reason::ALL {
                for cause in causes {
                    let want = skipped.get(&(*reason, cause)).copied().unwrap_or(0);
                    assert!(
                        m.skipped(*reason, cause) <= want,
                        "events skipped: {reason} {cause:?} beyond {want}"
                    );
                }
            }
        }
    }

    fn teardown(sut: System, world: World) {
        // A case that ends with faults set: heal them, and hold everything once more.
        let (sut, world) = if world.settled() {
            (sut, world)
        } else {
            let world = Lifecycle::apply(world, &Step::Heal);
            let sut = Self::apply(sut, &world, Step::Heal);
            Self::check_invariants(&sut, &world);
            (sut, world)
        };
        let _ = world;
        sut.controller.stop();
    }
}
