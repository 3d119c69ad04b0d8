//! The reference model: lifecycle.md written as plainly as possible, as a proptest
//! `ReferenceStateMachine`. It owns the world the test plays in (nodes, claims, volumes, the
//! virtual clock, fault rules), generates the steps, and predicts every result, every event
//! (with its claim and its durations) and every metric the real `Controller` must produce.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use csi_events::metrics::SkipCause;
use csi_events::model::{AccessMode, Code};
use csi_events::{LifecycleEvent, MigrationFailure};
use proptest::prelude::*;
use proptest_state_machine::ReferenceStateMachine;

/// Every node name the steps may use (all exist at the start).
pub const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
/// The namespace of every claim.
pub const NAMESPACE: &str = "vms";
/// One nanosecond: a timer fires at the first instant strictly after `start + timeout`.
pub const NANO: Duration = Duration::from_nanos(1);
/// How long a `Heal` step lets pass after clearing the faults (every retry backoff the poster
/// can be waiting out after at most [`MAX_FAULT_RULES`] × 3 failures is shorter).
pub const HEAL_TIME: Duration = Duration::from_secs(60);
/// Fault rules alive at once (each fails at most 3 requests, so no event exhausts its 12 tries).
pub const MAX_FAULT_RULES: u32 = 2;

/// One volume of the cluster (fixed for the whole case, like a PV and its StorageClass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// The CSI volume id (= PV name).
    pub id: String,
    /// The access mode every publish asks for.
    pub mode: AccessMode,
    /// The claim (`vms/disk-N`) named by the PV's claimRef and, when `claim_in_context`, by
    /// the publish's volume context.
    pub claim: String,
    /// Whether the PV has a claimRef.
    pub claim_ref: bool,
    /// Whether the publish's volume context carries the `csi.storage.k8s.io/pvc/*` keys.
    pub claim_in_context: bool,
    /// The `migrationTimeoutSeconds` value of the volume context, if any.
    pub timeout_text: Option<String>,
}

impl VolumeSpec {
    /// The CSI volume context a publish of this volume carries.
    pub fn context(&self) -> BTreeMap<String, String> {
        let mut context = BTreeMap::new();
        if self.claim_in_context {
            let (ns, name) = self
                .claim
                .split_once('/')
                .unwrap_or((NAMESPACE, &self.claim));
            context.insert("csi.storage.k8s.io/pvc/namespace".into(), ns.into());
            context.insert("csi.storage.k8s.io/pvc/name".into(), name.into());
        }
        if let Some(text) = &self.timeout_text {
            context.insert("migrationTimeoutSeconds".into(), text.clone());
        }
        context
    }

    /// The migration timeout of lifecycle.md "Time", computed independently of the model.
    pub fn timeout(&self) -> Duration {
        let secs = match self.timeout_text.as_deref() {
            None | Some("") => 300,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if n <= 0 => 300,
                Ok(n) => n.clamp(30, 3600) as u64,
                Err(_) => 300,
            },
        };
        Duration::from_secs(secs)
    }
}

/// The cluster at the start of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub volumes: Vec<VolumeSpec>,
    /// Claims that exist at the start.
    pub claims: BTreeSet<String>,
}

/// An API fault rule (the fake server's `faults()`), always limited to a few requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultSpec {
    /// `get`, `list`, `create`, `patch`.
    pub verb: &'static str,
    /// `events`, `persistentvolumeclaims`, `persistentvolumes`, `volumeattachments`, `nodes`.
    pub resource: &'static str,
    /// 500, 503 or 429.
    pub status: u16,
    /// Seconds, with 429.
    pub retry_after: Option<u32>,
    /// How many matching requests fail.
    pub times: u32,
}

/// One step of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// ControllerPublishVolume with the volume's mode and context.
    Publish {
        volume: String,
        node: String,
        took: Duration,
    },
    /// ControllerUnpublishVolume.
    Unpublish { volume: String, node: String },
    /// Move the virtual clock.
    Advance(Duration),
    /// A node appears (in the API and through the watcher).
    AddNode(String),
    /// A node is deleted from the API; `observed` = the watcher sees it (`node_deleted`).
    DeleteNode { node: String, observed: bool },
    /// The claim is deleted.
    DeleteClaim(String),
    /// The claim is created (again: a new uid).
    CreateClaim(String),
    /// The controller restarts: `Controller::rebuild` from the VolumeAttachments.
    Restart,
    /// A fault rule on the API server.
    Fault(FaultSpec),
    /// Clear every fault rule, then let [`HEAL_TIME`] pass.
    Heal,
}

/// Where a posted event ends up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Written on `claim` as it was after `generation` re-creations (0 = the claim bound at
    /// the start).
    Written { claim: String, generation: u32 },
    /// Skipped (events.md §4), counted under this cause.
    Skipped(SkipCause),
}

/// An event the controller must post, and where it must land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub event: LifecycleEvent,
    pub delivery: Delivery,
    /// Offset of the post from the start (the step's time, or the timer's deadline).
    pub at: Duration,
}

/// A running or failed migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub source: String,
    pub target: String,
    /// Offset from the start.
    pub start: Duration,
    pub timeout: Duration,
    pub failed: bool,
}

impl Migration {
    /// The instant its timer fires: the first one strictly after `start + timeout`.
    pub fn deadline(&self) -> Duration {
        self.start + self.timeout + NANO
    }
}

/// An attached node and when it was attached (offset from the start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub node: String,
    pub at: Duration,
}

/// The controller's state for one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub mode: AccessMode,
    /// Primary (during a migration: source) first.
    pub nodes: Vec<Attached>,
    pub migration: Option<Migration>,
    /// The controller remembers the claim keys of a publish's context (lost at restart).
    pub remembers_claim: bool,
}

impl Volume {
    pub fn has(&self, node: &str) -> bool {
        self.nodes.iter().any(|a| a.node == node)
    }
}

/// A claim as the API server holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Claim {
    pub exists: bool,
    /// How many times it was created after the start (its uid changes each time).
    pub generation: u32,
}

/// Counters of lifecycle.md "Metrics", since the controller (re)started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub success: u64,
    pub timeout: u64,
    pub aborted: u64,
    pub node_deleted: u64,
    pub conflicts: u64,
    pub stale_cleared: u64,
}

/// The whole reference world.
#[derive(Debug, Clone)]
pub struct World {
    pub spec: ClusterSpec,
    /// Offset of the virtual clock from the start.
    pub now: Duration,
    /// Nodes in the API server.
    pub api_nodes: BTreeSet<String>,
    /// Nodes the controller knows (initial list, watcher, rebuild's list).
    pub known_nodes: BTreeSet<String>,
    pub claims: BTreeMap<String, Claim>,
    /// Tracked volumes by id.
    pub volumes: BTreeMap<String, Volume>,
    /// Fault rules alive.
    pub faults: u32,
    /// Every event posted so far, in order.
    pub posted: Vec<Expected>,
    /// The result of the last publish/unpublish.
    pub last: Option<Result<(), (Code, String)>>,
    pub counters: Counters,
    /// Fault rules on `get nodes` (status, requests left), in the order the API server applies
    /// them: the RWO conflict path's holder lookup meets them.
    pub node_get_faults: Vec<(u16, u32)>,
}

impl World {
    /// The world at the start of a case on `spec`: every node up, no volume attached.
    pub fn for_spec(spec: ClusterSpec) -> Self {
        let claims = spec
            .volumes
            .iter()
            .map(|v| {
                let exists = spec.claims.contains(&v.claim);
                (
                    v.claim.clone(),
                    Claim {
                        exists,
                        generation: 0,
                    },
                )
            })
            .collect();
        let nodes: BTreeSet<String> = NODES.iter().map(|n| n.to_string()).collect();
        Self {
            spec,
            now: Duration::ZERO,
            api_nodes: nodes.clone(),
            known_nodes: nodes,
            claims,
            volumes: BTreeMap::new(),
            faults: 0,
            posted: Vec::new(),
            last: None,
            counters: Counters::default(),
            node_get_faults: Vec::new(),
        }
    }

    pub fn volume_spec(&self, id: &str) -> Option<&VolumeSpec> {
        self.spec.volumes.iter().find(|v| v.id == id)
    }

    /// Running (not failed) migrations.
    pub fn running_migrations(&self) -> usize {
        self.volumes
            .values()
            .filter(|v| v.migration.as_ref().is_some_and(|m| !m.failed))
            .count()
    }

    /// Where an event on volume `id` lands: through the claim named by the context keys when
    /// `by_name`, otherwise through the PV's claimRef (uid compared).
    fn delivery(&self, id: &str, by_name: bool) -> Delivery {
        let Some(spec) = self.volume_spec(id) else {
            return Delivery::Skipped(SkipCause::PvNotFound);
        };
        let claim = self.claims.get(&spec.claim).copied().unwrap_or_default();
        if by_name {
            return if claim.exists {
                Delivery::Written {
                    claim: spec.claim.clone(),
                    generation: claim.generation,
                }
            } else {
                Delivery::Skipped(SkipCause::PvcNotFound)
            };
        }
        if !spec.claim_ref {
            Delivery::Skipped(SkipCause::NoClaimRef)
        } else if !claim.exists {
            Delivery::Skipped(SkipCause::PvcNotFound)
        } else if claim.generation != 0 {
            Delivery::Skipped(SkipCause::PvcUidMismatch)
        } else {
            Delivery::Written {
                claim: spec.claim.clone(),
                generation: 0,
            }
        }
    }

    fn post(&mut self, id: &str, by_name: bool, event: LifecycleEvent) {
        let delivery = self.delivery(id, by_name);
        self.posted.push(Expected {
            event,
            delivery,
            at: self.now,
        });
    }

    /// Whether the controller remembers claim keys for `id` (its events then go by name).
    fn remembered(&self, id: &str) -> bool {
        self.volumes.get(id).is_some_and(|v| v.remembers_claim)
    }

    fn publish(&mut self, id: &str, node: &str, took: Duration) -> Result<(), (Code, String)> {
        let Some(spec) = self.volume_spec(id).cloned() else {
            return Err((Code::NotFound, format!("volume {id} not found")));
        };
        if !self.known_nodes.contains(node) {
            return Err((Code::NotFound, format!("node {node} not found")));
        }
        let by_name = spec.claim_in_context;
        let now = self.now;
        let volume_id = || csi_events::VolumeId::from(id);
        let node_name = |n: &str| csi_events::NodeName::from(n);
        let Some(volume) = self.volumes.get_mut(id) else {
            self.volumes.insert(
                id.to_owned(),
                Volume {
                    mode: spec.mode,
                    nodes: vec![Attached {
                        node: node.to_owned(),
                        at: now,
                    }],
                    migration: None,
                    remembers_claim: by_name,
                },
            );
            self.post(
                id,
                by_name,
                LifecycleEvent::VolumeAttached {
                    volume: volume_id(),
                    node: node_name(node),
                    took,
                },
            );
            return Ok(());
        };
        // A publish that succeeds remembers its claim keys; a refused one does not.
        if volume.has(node) {
            volume.remembers_claim |= by_name;
            return Ok(());
        }
        match (volume.mode, volume.nodes.len()) {
            (AccessMode::Rwo, _) => {
                let holder = volume.nodes[0].node.clone();
                // A holder the controller believes in is read from the API server (one GET):
                // a fault fails the publish closed; a holder the server no longer has is
                // forgotten and cleared (lifecycle.md, the stale-holder row).
                if self.known_nodes.contains(&holder) {
                    if let Some((status, left)) = self.node_get_faults.first_mut() {
                        let status = *status;
                        *left -= 1;
                        if *left == 0 {
                            self.node_get_faults.remove(0);
                        }
                        return Err((
                            Code::Unavailable,
                            format!(
                                "could not check whether node {holder}, which holds volume {id}, still exists: the API server answered {status} {}; retry",
                                status_reason(status)
                            ),
                        ));
                    }
                    if !self.api_nodes.contains(&holder) {
                        self.known_nodes.remove(&holder);
                    }
                }
                let Some(volume) = self.volumes.get_mut(id) else {
                    return Ok(());
                };
                if self.known_nodes.contains(&holder) {
                    self.counters.conflicts += 1;
                    self.post(
                        id,
                        by_name,
                        LifecycleEvent::AttachmentConflict {
                            volume: volume_id(),
                            requested: node_name(node),
                            holder: node_name(&holder),
                        },
                    );
                    return Err((
                        Code::FailedPrecondition,
                        format!(
                            "Volume {id} already attached to node {holder}. For multi-node access, use RWX with block volumes."
                        ),
                    ));
                }
                volume.nodes = vec![Attached {
                    node: node.to_owned(),
                    at: now,
                }];
                volume.remembers_claim |= by_name;
                self.counters.stale_cleared += 1;
                self.post(
                    id,
                    by_name,
                    LifecycleEvent::StaleAttachmentCleared {
                        volume: volume_id(),
                        node: node_name(&holder),
                    },
                );
                self.post(
                    id,
                    by_name,
                    LifecycleEvent::VolumeAttached {
                        volume: volume_id(),
                        node: node_name(node),
                        took,
                    },
                );
                Ok(())
            }
            (AccessMode::Rwx, 1) => {
                let source = volume.nodes[0].node.clone();
                let timeout = spec.timeout();
                volume.nodes.push(Attached {
                    node: node.to_owned(),
                    at: now,
                });
                volume.migration = Some(Migration {
                    source: source.clone(),
                    target: node.to_owned(),
                    start: now,
                    timeout,
                    failed: false,
                });
                volume.remembers_claim |= by_name;
                self.post(
                    id,
                    by_name,
                    LifecycleEvent::MigrationStarted {
                        volume: volume_id(),
                        source: node_name(&source),
                        target: node_name(node),
                        timeout,
                    },
                );
                Ok(())
            }
            (AccessMode::Rwx, _) => {
                let names: Vec<&str> = volume.nodes.iter().map(|a| a.node.as_str()).collect();
                Err((
                    Code::FailedPrecondition,
                    format!(
                        "Volume {id} already attached to 2 nodes (migration limit). Wait for migration to complete. Attached nodes: [{}]",
                        names.join(" ")
                    ),
                ))
            }
        }
    }

    fn unpublish(&mut self, id: &str, node: &str) -> Result<(), (Code, String)> {
        let by_name = self.remembered(id);
        let now = self.now;
        let Some(volume) = self.volumes.get_mut(id) else {
            return Ok(());
        };
        if !volume.has(node) {
            return Ok(());
        }
        let volume_id = csi_events::VolumeId::from(id);
        if volume.nodes.len() == 1 {
            self.volumes.remove(id);
            self.post(
                id,
                by_name,
                LifecycleEvent::VolumeDetached {
                    volume: volume_id,
                    node: node.into(),
                },
            );
            return Ok(());
        }
        volume.nodes.retain(|a| a.node != node);
        let Some(migration) = volume.migration.take() else {
            return Ok(());
        };
        if migration.failed {
            return Ok(());
        }
        let elapsed = now - migration.start;
        if node == migration.source {
            self.counters.success += 1;
            self.post(
                id,
                by_name,
                LifecycleEvent::MigrationCompleted {
                    volume: volume_id,
                    source: migration.source.as_str().into(),
                    target: migration.target.as_str().into(),
                    took: elapsed,
                },
            );
        } else {
            self.counters.aborted += 1;
            self.post(
                id,
                by_name,
                LifecycleEvent::MigrationFailed {
                    volume: volume_id,
                    source: migration.source.as_str().into(),
                    target: migration.target.as_str().into(),
                    why: MigrationFailure::TargetDetachedBeforeSource,
                    elapsed,
                },
            );
        }
        Ok(())
    }

    /// Fails every running migration whose deadline is at or before `now`, in deadline order
    /// (then volume order), each at its own deadline, or at `now` when `late` (a rebuilt
    /// timer whose deadline passed while the controller was down).
    fn fire_timers(&mut self, until: Duration, late: bool) {
        loop {
            let due = self
                .volumes
                .iter()
                .filter_map(|(id, v)| {
                    let m = v.migration.as_ref()?;
                    (!m.failed && m.deadline() <= until).then(|| (m.deadline(), id.clone()))
                })
                .min();
            let Some((deadline, id)) = due else { break };
            if !late {
                self.now = deadline;
            }
            let by_name = self.remembered(&id);
            let now = self.now;
            let Some(migration) = self.volumes.get_mut(&id).and_then(|v| v.migration.as_mut())
            else {
                break;
            };
            migration.failed = true;
            let event = LifecycleEvent::MigrationFailed {
                volume: id.as_str().into(),
                source: migration.source.as_str().into(),
                target: migration.target.as_str().into(),
                why: MigrationFailure::Timeout,
                elapsed: now - migration.start,
            };
            self.counters.timeout += 1;
            self.post(&id, by_name, event);
        }
    }

    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        self.fire_timers(until, false);
        self.now = until;
    }

    fn delete_node(&mut self, node: &str, observed: bool) {
        self.api_nodes.remove(node);
        if !observed {
            return;
        }
        self.known_nodes.remove(node);
        let ids: Vec<String> = self
            .volumes
            .iter()
            .filter(|(_, v)| v.has(node))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            let by_name = self.remembered(&id);
            let now = self.now;
            let Some(volume) = self.volumes.get_mut(&id) else {
                continue;
            };
            let volume_id = csi_events::VolumeId::from(id.as_str());
            if volume.nodes.len() == 1 {
                self.volumes.remove(&id);
            } else {
                volume.nodes.retain(|a| a.node != node);
                if let Some(migration) = volume.migration.take()
                    && !migration.failed
                {
                    self.counters.node_deleted += 1;
                    let event = LifecycleEvent::MigrationFailed {
                        volume: volume_id.clone(),
                        source: migration.source.as_str().into(),
                        target: migration.target.as_str().into(),
                        why: MigrationFailure::NodeDeleted(node.into()),
                        elapsed: now - migration.start,
                    };
                    self.post(&id, by_name, event);
                }
            }
            self.counters.stale_cleared += 1;
            self.post(
                &id,
                by_name,
                LifecycleEvent::StaleAttachmentCleared {
                    volume: volume_id,
                    node: node.into(),
                },
            );
        }
    }

    /// lifecycle.md "Restart": state from the VolumeAttachments and the migration records
    /// (every migration has one: no fault touches the PV patches), fresh metrics, no events
    /// by itself. Every migration comes back exactly — source, target, start to the
    /// nanosecond, timeout, failed or not — so a failure already reported is not reported
    /// again, and a running one whose timeout passed fails at once.
    fn restart(&mut self) {
        for volume in self.volumes.values_mut() {
            volume.remembers_claim = false;
        }
        self.known_nodes = self.api_nodes.clone();
        self.counters = Counters::default();
        self.fire_timers(self.now, true);
    }

    /// Whether the two attachments of a volume were stamped in the same second (then which
    /// is older is not defined by the VolumeAttachments: only the record tells).
    pub fn ambiguous_attachment_order(&self) -> bool {
        self.volumes.values().any(|v| {
            v.nodes.len() == 2 && whole_seconds(v.nodes[0].at) == whole_seconds(v.nodes[1].at)
        })
    }

    /// Whether a migration has failed (its MigrationFailed must not come again).
    pub fn has_failed_migration(&self) -> bool {
        self.volumes
            .values()
            .any(|v| v.migration.as_ref().is_some_and(|m| m.failed))
    }

    /// The step the harness must apply to finish a case cleanly (faults healed).
    pub fn settled(&self) -> bool {
        self.faults == 0
    }
}

/// The reason text of an HTTP status the fault rules answer with.
fn status_reason(status: u16) -> &'static str {
    match status {
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        _ => "",
    }
}

/// `at` truncated to whole seconds (metadata.creationTimestamp's precision).
pub fn whole_seconds(at: Duration) -> Duration {
    Duration::from_secs(at.as_secs())
}

/// Claim names of the cluster.
pub fn claim_of(index: usize) -> String {
    format!("{NAMESPACE}/disk-{index}")
}

fn volume_spec(index: usize) -> impl Strategy<Value = VolumeSpec> {
    let timeouts = prop::sample::select(vec![
        None,
        Some(""),
        Some("10"),
        Some("30"),
        Some("45"),
        Some("300"),
        Some("3600"),
        Some("7200"),
        Some("abc"),
        Some("0"),
        Some("-5"),
    ]);
    (
        prop_oneof![1 => Just(AccessMode::Rwo), 2 => Just(AccessMode::Rwx)],
        prop::bool::weighted(0.9),
        any::<bool>(),
        timeouts,
    )
        .prop_map(
            move |(mode, claim_ref, claim_in_context, timeout)| VolumeSpec {
                id: format!("pvc-{index}"),
                mode,
                claim: claim_of(index),
                claim_ref,
                claim_in_context,
                timeout_text: timeout.map(str::to_owned),
            },
        )
}

fn cluster_spec() -> impl Strategy<Value = ClusterSpec> {
    (1usize..=3)
        .prop_flat_map(|n| {
            let volumes: Vec<_> = (0..n).map(volume_spec).collect();
            (volumes, prop::collection::vec(prop::bool::weighted(0.9), n))
        })
        .prop_map(|(volumes, present)| {
            let claims = volumes
                .iter()
                .zip(present)
                .filter(|(_, p)| *p)
                .map(|(v, _)| v.claim.clone())
                .collect();
            ClusterSpec { volumes, claims }
        })
}

fn fault_spec() -> impl Strategy<Value = FaultSpec> {
    let targets = prop::sample::select(vec![
        ("create", "events"),
        ("patch", "events"),
        ("get", "persistentvolumeclaims"),
        ("get", "persistentvolumes"),
        ("list", "volumeattachments"),
        ("list", "nodes"),
        ("list", "persistentvolumes"),
        ("get", "nodes"),
    ]);
    let status = prop_oneof![
        Just((500u16, None)),
        Just((503u16, None)),
        (1u32..=3).prop_map(|s| (429u16, Some(s))),
    ];
    (targets, status, 1u32..=3).prop_map(|((verb, resource), (status, retry_after), times)| {
        FaultSpec {
            verb,
            resource,
            status,
            retry_after,
            times,
        }
    })
}

/// The reference state machine.
pub struct Lifecycle;

impl ReferenceStateMachine for Lifecycle {
    type State = World;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<World> {
        cluster_spec().prop_map(World::for_spec).boxed()
    }

    fn transitions(world: &World) -> BoxedStrategy<Step> {
        let ids: Vec<String> = world.spec.volumes.iter().map(|v| v.id.clone()).collect();
        let nodes: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
        let took = prop::sample::select(vec![
            Duration::ZERO,
            Duration::from_millis(153),
            Duration::from_micros(1_204_400),
        ]);
        let publish = (
            prop::sample::select(ids.clone()),
            prop::sample::select(nodes.clone()),
            took,
        )
            .prop_map(|(volume, node, took)| Step::Publish { volume, node, took });
        // Unpublish mostly a node that holds the volume, sometimes any node.
        let attached: Vec<(String, String)> = world
            .volumes
            .iter()
            .flat_map(|(id, v)| v.nodes.iter().map(move |a| (id.clone(), a.node.clone())))
            .collect();
        let any_unpublish = (
            prop::sample::select(ids.clone()),
            prop::sample::select(nodes.clone()),
        )
            .prop_map(|(volume, node)| Step::Unpublish { volume, node });
        let unpublish = if attached.is_empty() {
            any_unpublish.boxed()
        } else {
            prop_oneof![
                3 => prop::sample::select(attached)
                    .prop_map(|(volume, node)| Step::Unpublish { volume, node }),
                1 => any_unpublish,
            ]
            .boxed()
        };
        // Advances: plain ones, and exactly at / one nanosecond past the next timeout.
        let mut advances: Vec<BoxedStrategy<Step>> = vec![
            prop::sample::select(vec![1u64, 10, 29, 30, 60, 299, 300, 301, 3600])
                .prop_map(|s| Step::Advance(Duration::from_secs(s)))
                .boxed(),
            (1u64..=400)
                .prop_map(|s| Step::Advance(Duration::from_secs(s)))
                .boxed(),
            (1u64..=2000)
                .prop_map(|ms| Step::Advance(Duration::from_millis(ms)))
                .boxed(),
        ];
        let next_deadline = world
            .volumes
            .values()
            .filter_map(|v| v.migration.as_ref().filter(|m| !m.failed))
            .map(Migration::deadline)
            .min();
        if let Some(deadline) = next_deadline
            && deadline > world.now + NANO
        {
            let at_timeout = deadline - NANO - world.now;
            advances.push(Just(Step::Advance(at_timeout)).boxed());
            advances.push(Just(Step::Advance(at_timeout + NANO)).boxed());
        }
        let advance = prop::strategy::Union::new(advances);
        let present: Vec<String> = world.api_nodes.iter().cloned().collect();
        let absent: Vec<String> = nodes
            .iter()
            .filter(|n| !world.api_nodes.contains(*n))
            .cloned()
            .collect();
        let claims: Vec<String> = world.claims.keys().cloned().collect();

        let mut steps: Vec<(u32, BoxedStrategy<Step>)> = vec![
            (30, publish.boxed()),
            (15, unpublish),
            (14, advance.boxed()),
            (3, Just(Step::Restart).boxed()),
        ];
        if !present.is_empty() {
            steps.push((
                5,
                (prop::sample::select(present), prop::bool::weighted(0.6))
                    .prop_map(|(node, observed)| Step::DeleteNode { node, observed })
                    .boxed(),
            ));
        }
        if !absent.is_empty() {
            steps.push((
                3,
                prop::sample::select(absent).prop_map(Step::AddNode).boxed(),
            ));
        }
        if !claims.is_empty() {
            steps.push((
                3,
                prop::sample::select(claims.clone())
                    .prop_map(Step::DeleteClaim)
                    .boxed(),
            ));
            steps.push((
                3,
                prop::sample::select(claims)
                    .prop_map(Step::CreateClaim)
                    .boxed(),
            ));
        }
        steps.push((3, fault_spec().prop_map(Step::Fault).boxed()));
        if world.faults > 0 {
            steps.push((3, Just(Step::Heal).boxed()));
        }
        prop::strategy::Union::new_weighted(steps).boxed()
    }

    fn preconditions(world: &World, step: &Step) -> bool {
        match step {
            Step::Publish { volume, node, .. } | Step::Unpublish { volume, node } => {
                world.volume_spec(volume).is_some() && NODES.contains(&node.as_str())
            }
            Step::Advance(_) => true,
            Step::AddNode(node) => !world.api_nodes.contains(node),
            Step::DeleteNode { node, .. } => world.api_nodes.contains(node),
            // A claim changes only while no write can be waiting on a retry: which claim a
            // delayed lookup then finds would depend on the retry timing, not on the model.
            Step::DeleteClaim(claim) => {
                world.faults == 0 && world.claims.get(claim).is_some_and(|c| c.exists)
            }
            Step::CreateClaim(claim) => {
                world.faults == 0 && world.claims.get(claim).is_some_and(|c| !c.exists)
            }
            Step::Restart => true,
            Step::Fault(_) => world.faults < MAX_FAULT_RULES,
            Step::Heal => world.faults > 0,
        }
    }

    fn apply(mut world: World, step: &Step) -> World {
        world.last = None;
        match step {
            Step::Publish { volume, node, took } => {
                world.last = Some(world.publish(volume, node, *took));
            }
            Step::Unpublish { volume, node } => {
                world.last = Some(world.unpublish(volume, node));
            }
            Step::Advance(by) => world.advance(*by),
            Step::AddNode(node) => {
                world.api_nodes.insert(node.clone());
                world.known_nodes.insert(node.clone());
            }
            Step::DeleteNode { node, observed } => world.delete_node(node, *observed),
            Step::DeleteClaim(claim) => {
                if let Some(c) = world.claims.get_mut(claim) {
                    c.exists = false;
                }
            }
            Step::CreateClaim(claim) => {
                if let Some(c) = world.claims.get_mut(claim) {
                    c.exists = true;
                    c.generation += 1;
                }
            }
            Step::Restart => world.restart(),
            Step::Fault(fault) => {
                world.faults += 1;
                if (fault.verb, fault.resource) == ("get", "nodes") {
                    world.node_get_faults.push((fault.status, fault.times));
                }
            }
            Step::Heal => {
                world.faults = 0;
                world.node_get_faults.clear();
                world.advance(HEAL_TIME);
            }
        }
        world
    }
}
