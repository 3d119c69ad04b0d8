//! The per-volume state and every decision of `docs/lifecycle.md`: publish, unpublish, a migration's
//! timer firing, a node's deletion. Pure and synchronous: a decision changes the state, counts
//! its metrics and says which events to post and which timers to arm or cancel; the
//! [`Controller`](super::Controller) applies those effects after it lets go of the lock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;

use super::metrics::{MigrationMetrics, MigrationResult};
use super::record::MigrationRecord;
use super::rpc::{Code, RpcError};
use super::timeout::migration_timeout;
use super::{AccessMode, MigrationView, Publish, VolumeView};
use crate::event::{LifecycleEvent, MigrationFailure};
use crate::ids::{ClaimName, NodeName, VolumeId};

/// Which migration a timer belongs to (unique for the controller's life).
pub(crate) type MigrationId = u64;

/// A running or failed migration.
#[derive(Debug, Clone)]
pub(crate) struct Migration {
    pub id: MigrationId,
    pub source: NodeName,
    pub target: NodeName,
    pub started: Timestamp,
    pub timeout: Duration,
    pub failed: bool,
}

impl Migration {
    /// The first instant strictly after `started + timeout`, when the timer fires.
    pub fn deadline(&self) -> Timestamp {
        add(add(self.started, self.timeout), Duration::from_nanos(1))
    }
}

/// One tracked volume.
#[derive(Debug, Clone)]
pub(crate) struct Volume {
    pub mode: AccessMode,
    /// Primary (or source) first; at most two.
    pub nodes: Vec<NodeName>,
    pub migration: Option<Migration>,
    /// The claim named by a publish's volume context, remembered for the events that have no
    /// context (unpublish, timers, reconciles). `None`: the poster goes through the PV's claimRef.
    pub claim: Option<ClaimName>,
}

/// An event to post once the lock is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Post {
    pub claim: Option<ClaimName>,
    pub event: LifecycleEvent,
}

/// A timer to arm: fire for `migration` of `volume` at `deadline`.
#[derive(Debug, Clone)]
pub(crate) struct Arm {
    pub volume: VolumeId,
    pub migration: MigrationId,
    pub deadline: Timestamp,
}

/// What a decision asks the controller to do besides changing the state.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub posts: Vec<Post>,
    pub arm: Vec<Arm>,
    pub cancel: Vec<MigrationId>,
    /// Volumes whose migration changed (started, failed, ended): their records are written.
    pub records: Vec<VolumeId>,
}

/// What the API server said about an RWO volume's holder node, read on the conflict path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HolderCheck {
    pub holder: NodeName,
    pub exists: bool,
}

/// How a publish decision ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decided {
    /// The answer is known.
    Done,
    /// An RWO volume is held by `0`, a node the controller believes exists: the answer
    /// depends on whether the API server still has it (`docs/lifecycle.md`, the stale-holder row).
    CheckHolder(NodeName),
}

impl Effects {
    fn post(&mut self, claim: &Option<ClaimName>, event: LifecycleEvent) {
        self.posts.push(Post {
            claim: claim.clone(),
            event,
        });
    }
}

/// The whole model state.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub nodes: BTreeSet<NodeName>,
    pub volumes: BTreeMap<VolumeId, Volume>,
    next_migration: MigrationId,
    /// Running (not failed) migrations, kept as they start and end so the gauge costs nothing
    /// per decision.
    running: usize,
}

impl State {
    /// Running (not failed) migrations: what the active gauge shows.
    pub fn running(&self) -> usize {
        // Checked in the unit tests only: counting every volume on each decision would make
        // a debug build's run time grow with the square of the volumes.
        #[cfg(test)]
        assert_eq!(
            self.running,
            self.volumes
                .values()
                .filter(|v| v.migration.as_ref().is_some_and(|m| !m.failed))
                .count(),
            "the running count matches the state"
        );
        self.running
    }

    /// A new migration begins: its id, and one more running.
    pub fn begin_migration(&mut self) -> MigrationId {
        self.running += 1;
        self.next_migration += 1;
        self.next_migration
    }

    /// A migration rebuilt after a restart: its id, and one more running unless it failed.
    pub fn adopt_migration(&mut self, failed: bool) -> MigrationId {
        if !failed {
            self.running += 1;
        }
        self.next_migration += 1;
        self.next_migration
    }

    /// A running migration ended (completed, failed or aborted).
    fn end_migration(&mut self) {
        self.running = self.running.saturating_sub(1);
    }

    /// The tracked volumes in volume-id order.
    pub fn views(&self) -> Vec<VolumeView> {
        self.volumes.keys().filter_map(|id| self.view(id)).collect()
    }

    /// One tracked volume's view.
    pub fn view(&self, id: &VolumeId) -> Option<VolumeView> {
        let v = self.volumes.get(id)?;
        Some(VolumeView {
            volume: id.clone(),
            mode: v.mode,
            nodes: v.nodes.clone(),
            migration: v.migration.as_ref().map(|m| MigrationView {
                source: m.source.clone(),
                target: m.target.clone(),
                started: m.started,
                timeout: m.timeout,
                failed: m.failed,
            }),
        })
    }

    /// The record the volume's migration must have on the cluster (`None`: no migration).
    pub fn record_of(&self, id: &VolumeId) -> Option<MigrationRecord> {
        self.volumes
            .get(id)
            .and_then(|v| v.migration.as_ref())
            .map(MigrationRecord::of)
    }

    /// ControllerPublishVolume (`docs/lifecycle.md` §Publish).
    ///
    /// On the RWO conflict path the holder is looked up only when `can_check` (the controller
    /// has a client): without `checked` naming this holder the decision changes nothing and
    /// answers [`Decided::CheckHolder`]; with it, a holder the API server no longer has is
    /// cleared (and forgotten as a node), one it has is a conflict.
    pub fn publish(
        &mut self,
        request: &Publish,
        can_check: bool,
        checked: Option<&HolderCheck>,
        now: Timestamp,
        metrics: &MigrationMetrics,
        effects: &mut Effects,
    ) -> Result<Decided, RpcError> {
        let Publish {
            volume: id,
            node,
            mode,
            context,
            took,
        } = request;
        if id.as_str().is_empty() {
            return Err(RpcError::new(
                Code::InvalidArgument,
                "volume ID is required",
            ));
        }
        if node.as_str().is_empty() {
            return Err(RpcError::new(Code::InvalidArgument, "node ID is required"));
        }
        if !self.nodes.contains(node) {
            return Err(RpcError::new(
                Code::NotFound,
                format!("node {node} not found"),
            ));
        }
        let claim = ClaimName::from_volume_context(context);
        let Some(volume) = self.volumes.get(id) else {
            // Not attached: the node becomes primary, the mode is fixed now.
            self.volumes.insert(
                id.clone(),
                Volume {
                    mode: *mode,
                    nodes: vec![node.clone()],
                    migration: None,
                    claim: claim.clone(),
                },
            );
            effects.post(
                &claim,
                LifecycleEvent::VolumeAttached {
                    volume: id.clone(),
                    node: node.clone(),
                    took: *took,
                },
            );
            return Ok(Decided::Done);
        };
        if volume.nodes.contains(node) {
            self.remember_claim(id, claim);
            return Ok(Decided::Done);
        }
        match (volume.mode, volume.nodes.as_slice()) {
            (AccessMode::Rwo, [holder, ..]) => {
                let holder = holder.clone();
                let mut exists = self.nodes.contains(&holder);
                if exists && can_check {
                    match checked {
                        Some(check) if check.holder == holder => exists = check.exists,
                        _ => return Ok(Decided::CheckHolder(holder)),
                    }
                    if !exists {
                        // The watcher missed its deletion: the node is gone for the model too.
                        self.nodes.remove(&holder);
                    }
                }
                if exists {
                    metrics.count_conflict();
                    effects.post(
                        &claim,
                        LifecycleEvent::AttachmentConflict {
                            volume: id.clone(),
                            requested: node.clone(),
                            holder: holder.clone(),
                        },
                    );
                    return Err(RpcError::new(
                        Code::FailedPrecondition,
                        format!(
                            "Volume {id} already attached to node {holder}. For multi-node access, use RWX with block volumes."
                        ),
                    ));
                }
                // The holder was deleted: clear it, the node becomes primary.
                metrics.count_stale_cleared();
                let remembered = volume.claim.clone();
                let volume_claim = claim.clone().or(remembered);
                if let Some(v) = self.volumes.get_mut(id) {
                    v.nodes = vec![node.clone()];
                    v.claim = volume_claim;
                    // An RWO volume has no migration; should one be there, it ends here.
                    if let Some(migration) = v.migration.take() {
                        effects.cancel.push(migration.id);
                        effects.records.push(id.clone());
                        if !migration.failed {
                            self.end_migration();
                        }
                    }
                }
                effects.post(
                    &claim,
                    LifecycleEvent::StaleAttachmentCleared {
                        volume: id.clone(),
                        node: holder,
                    },
                );
                effects.post(
                    &claim,
                    LifecycleEvent::VolumeAttached {
                        volume: id.clone(),
                        node: node.clone(),
                        took: *took,
                    },
                );
                Ok(Decided::Done)
            }
            (AccessMode::Rwx, [source]) => {
                let source = source.clone();
                let (timeout, warning) = migration_timeout(context);
                if let Some(warning) = warning {
                    tracing::warn!(volume = %id, "{warning}");
                }
                let migration = Migration {
                    id: self.begin_migration(),
                    source: source.clone(),
                    target: node.clone(),
                    started: now,
                    timeout,
                    failed: false,
                };
                effects.arm.push(Arm {
                    volume: id.clone(),
                    migration: migration.id,
                    deadline: migration.deadline(),
                });
                if let Some(v) = self.volumes.get_mut(id) {
                    v.nodes.push(node.clone());
                    v.migration = Some(migration);
                }
                effects.records.push(id.clone());
                self.remember_claim(id, claim.clone());
                effects.post(
                    &claim,
                    LifecycleEvent::MigrationStarted {
                        volume: id.clone(),
                        source,
                        target: node.clone(),
                        timeout,
                    },
                );
                Ok(Decided::Done)
            }
            (_, nodes) => {
                let attached = nodes
                    .iter()
                    .map(NodeName::as_str)
                    .collect::<Vec<_>>()
                    .join(" ");
                Err(RpcError::new(
                    Code::FailedPrecondition,
                    format!(
                        "Volume {id} already attached to {} nodes (migration limit). Wait for migration to complete. Attached nodes: [{attached}]",
                        nodes.len()
                    ),
                ))
            }
        }
    }

    fn remember_claim(&mut self, id: &VolumeId, claim: Option<ClaimName>) {
        if let (Some(claim), Some(volume)) = (claim, self.volumes.get_mut(id)) {
            volume.claim = Some(claim);
        }
    }

    /// ControllerUnpublishVolume (`docs/lifecycle.md` §Unpublish).
    pub fn unpublish(
        &mut self,
        id: &VolumeId,
        node: &NodeName,
        now: Timestamp,
        metrics: &MigrationMetrics,
        effects: &mut Effects,
    ) {
        let Some(volume) = self.volumes.get_mut(id) else {
            return;
        };
        if !volume.nodes.contains(node) {
            return;
        }
        let claim = volume.claim.clone();
        if volume.nodes.len() == 1 {
            // One node never has a migration; should one be there, it ends with the volume.
            if let Some(migration) = volume.migration.take() {
                effects.cancel.push(migration.id);
                effects.records.push(id.clone());
                if !migration.failed {
                    self.end_migration();
                }
            }
            self.volumes.remove(id);
            effects.post(
                &claim,
                LifecycleEvent::VolumeDetached {
                    volume: id.clone(),
                    node: node.clone(),
                },
            );
            return;
        }
        volume.nodes.retain(|n| n != node);
        let Some(migration) = volume.migration.take() else {
            // Two nodes without a migration cannot be built; keep the other node as primary.
            return;
        };
        effects.cancel.push(migration.id);
        effects.records.push(id.clone());
        if migration.failed {
            // The failure was already reported.
            return;
        }
        self.end_migration();
        let elapsed = since(migration.started, now);
        if *node == migration.source {
            metrics.migration_ended(MigrationResult::Success, elapsed);
            effects.post(
                &claim,
                LifecycleEvent::MigrationCompleted {
                    volume: id.clone(),
                    source: migration.source,
                    target: migration.target,
                    took: elapsed,
                },
            );
        } else {
            metrics.migration_ended(MigrationResult::Aborted, elapsed);
            effects.post(
                &claim,
                LifecycleEvent::MigrationFailed {
                    volume: id.clone(),
                    source: migration.source,
                    target: migration.target,
                    why: MigrationFailure::TargetDetachedBeforeSource,
                    elapsed,
                },
            );
        }
    }

    /// The timer of `migration` on `id` fired at `now` (`docs/lifecycle.md` §Time).
    pub fn time_out(
        &mut self,
        id: &VolumeId,
        migration_id: MigrationId,
        now: Timestamp,
        metrics: &MigrationMetrics,
        effects: &mut Effects,
    ) {
        let Some(volume) = self.volumes.get_mut(id) else {
            return;
        };
        let claim = volume.claim.clone();
        let Some(migration) = volume.migration.as_mut() else {
            return;
        };
        if migration.id != migration_id || migration.failed {
            return;
        }
        migration.failed = true;
        effects.records.push(id.clone());
        let elapsed = since(migration.started, now);
        metrics.migration_ended(MigrationResult::Timeout, elapsed);
        effects.post(
            &claim,
            LifecycleEvent::MigrationFailed {
                volume: id.clone(),
                source: migration.source.clone(),
                target: migration.target.clone(),
                why: MigrationFailure::Timeout,
                elapsed,
            },
        );
        self.end_migration();
    }

    /// The node was deleted: reconcile every volume on it, in volume-id order
    /// (`docs/lifecycle.md` §Deleted nodes).
    pub fn node_deleted(
        &mut self,
        node: &NodeName,
        now: Timestamp,
        metrics: &MigrationMetrics,
        effects: &mut Effects,
    ) {
        self.nodes.remove(node);
        let on_node: Vec<VolumeId> = self
            .volumes
            .iter()
            .filter(|(_, v)| v.nodes.contains(node))
            .map(|(id, _)| id.clone())
            .collect();
        for id in on_node {
            let Some(volume) = self.volumes.get_mut(&id) else {
                continue;
            };
            let claim = volume.claim.clone();
            let migration = volume.migration.take();
            volume.nodes.retain(|n| n != node);
            if volume.nodes.is_empty() {
                self.volumes.remove(&id);
            }
            if let Some(migration) = migration {
                effects.cancel.push(migration.id);
                effects.records.push(id.clone());
                if !migration.failed {
                    self.end_migration();
                    let elapsed = since(migration.started, now);
                    metrics.migration_ended(MigrationResult::NodeDeleted, elapsed);
                    effects.post(
                        &claim,
                        LifecycleEvent::MigrationFailed {
                            volume: id.clone(),
                            source: migration.source,
                            target: migration.target,
                            why: MigrationFailure::NodeDeleted(node.clone()),
                            elapsed,
                        },
                    );
                }
            }
            metrics.count_stale_cleared();
            effects.post(
                &claim,
                LifecycleEvent::StaleAttachmentCleared {
                    volume: id.clone(),
                    node: node.clone(),
                },
            );
        }
    }
}

/// `at + duration`, saturating.
pub(crate) fn add(at: Timestamp, duration: Duration) -> Timestamp {
    let span = jiff::SignedDuration::try_from(duration).unwrap_or(jiff::SignedDuration::MAX);
    at.saturating_add(span).unwrap_or(Timestamp::MAX)
}

/// The time from `start` to `now`, zero if `now` is earlier.
pub(crate) fn since(start: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(start)).unwrap_or(Duration::ZERO)
}
