//! The per-volume state and every decision of `docs/lifecycle.md`: publish, unpublish, a migration's
//! timer firing, a node's deletion. Pure and synchronous: a decision changes the state, counts
//! its metrics and says which events to post and which timers to arm or cancel; the
//! [`Controller`](super::Controller) applies those effects after it lets go of the lock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;

use super::metrics::{MigrationMetrics, MigrationResult};
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

/// One tracked volume: 48 bytes in the map beside its id, plus the claim's text (one
/// allocation) and, while it migrates, its [`Migration`] (one more). Node names are the
/// state's shared ones, never copies (`tests/model_memory.rs` holds the whole to its bound).
#[derive(Debug, Clone)]
pub(crate) struct Volume {
    pub mode: AccessMode,
    /// Primary (or source) first; at most two.
    pub nodes: Attached,
    /// Boxed: most volumes never migrate, and a volume that does not pays one pointer.
    pub migration: Option<Box<Migration>>,
    /// The claim named by a publish's volume context, remembered for the events that have no
    /// context (unpublish, timers, reconciles), as one text `namespace/name`: one allocation
    /// instead of a [`ClaimName`]'s two strings. `None`: the poster goes through the PV's
    /// claimRef.
    claim: Option<Box<str>>,
    /// Where the namespace ends in `claim` (beside `mode`, in what would be padding).
    claim_split: u32,
}

impl Volume {
    /// A volume remembering `claim`, if any.
    pub fn new(
        mode: AccessMode,
        nodes: Attached,
        migration: Option<Box<Migration>>,
        claim: Option<&ClaimName>,
    ) -> Self {
        let mut volume = Self {
            mode,
            nodes,
            migration,
            claim: None,
            claim_split: 0,
        };
        if let Some(claim) = claim {
            volume.remember(claim);
        }
        volume
    }

    /// The remembered claim, as the poster takes it.
    pub fn claim(&self) -> Option<ClaimName> {
        let (namespace, name) = self.claim_parts()?;
        Some(ClaimName::new(namespace, name))
    }

    /// Remembers `claim`; the claim already remembered (every publish of a volume names it)
    /// allocates nothing. A namespace over 4 GiB, which no API server holds, is not
    /// remembered (its events go through the PV's claimRef, as without the context keys).
    pub fn remember(&mut self, claim: &ClaimName) {
        if self.claim_parts() == Some((claim.namespace(), claim.name())) {
            return;
        }
        let Ok(split) = u32::try_from(claim.namespace().len()) else {
            return;
        };
        self.claim = Some(format!("{}/{}", claim.namespace(), claim.name()).into_boxed_str());
        self.claim_split = split;
    }

    fn claim_parts(&self) -> Option<(&str, &str)> {
        let text = self.claim.as_deref()?;
        // `claim_split` is the namespace's length in `text`, a char boundary followed by the
        // `/` by construction (`remember`).
        let at = self.claim_split as usize;
        Some((text.get(..at)?, text.get(at + 1..)?))
    }
}

/// The nodes a volume is attached to, primary (or migration source) first: at most two, held
/// in place (no allocation of their own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attached([Option<NodeName>; 2]);

impl Attached {
    /// Attached to `node` alone.
    pub fn one(node: NodeName) -> Self {
        Self([Some(node), None])
    }

    /// Attached to `first` (primary or source) and `second`.
    pub fn two(first: NodeName, second: NodeName) -> Self {
        Self([Some(first), Some(second)])
    }

    /// The nodes, primary first.
    pub fn iter(&self) -> impl Iterator<Item = &NodeName> {
        self.0.iter().flatten()
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// No node at all.
    pub fn is_empty(&self) -> bool {
        self.0[0].is_none()
    }

    /// The primary (or source).
    pub fn first(&self) -> Option<&NodeName> {
        self.0[0].as_ref()
    }

    /// Whether `node` is one of them.
    pub fn contains(&self, node: &NodeName) -> bool {
        self.iter().any(|n| n == node)
    }

    /// Adds `node` after the others; a volume holds at most two, so a third is not added.
    pub fn push(&mut self, node: NodeName) {
        if let Some(free) = self.0.iter_mut().find(|slot| slot.is_none()) {
            *free = Some(node);
        }
    }

    /// Removes `node`, keeping the other's place first.
    pub fn remove(&mut self, node: &NodeName) {
        let [first, second] = &mut self.0;
        if second.as_ref() == Some(node) {
            *second = None;
        }
        if first.as_ref() == Some(node) {
            *first = second.take();
        }
    }

    /// The nodes as a list, primary first.
    pub fn to_vec(&self) -> Vec<NodeName> {
        self.iter().cloned().collect()
    }
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
    /// The nodes known to exist: also the one copy of each name that volumes and migrations
    /// share ([`State::shared`]).
    pub nodes: BTreeSet<NodeName>,
    /// By volume id (the id's text exactly sized: no spare capacity per volume).
    pub volumes: BTreeMap<Box<str>, Volume>,
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

    /// `node` as the state's shared name when it knows the node (a clone of a reference
    /// count), else `node` itself.
    pub fn shared(&self, node: &NodeName) -> NodeName {
        self.nodes.get(node).unwrap_or(node).clone()
    }

    /// The volume `id`.
    pub fn volume(&self, id: &VolumeId) -> Option<&Volume> {
        self.volumes.get(id.as_str())
    }

    fn volume_mut(&mut self, id: &VolumeId) -> Option<&mut Volume> {
        self.volumes.get_mut(id.as_str())
    }

    /// Tracks `volume` as `id`.
    pub fn insert(&mut self, id: &VolumeId, volume: Volume) {
        self.volumes.insert(id.as_str().into(), volume);
    }

    /// The tracked volumes in volume-id order.
    pub fn views(&self) -> Vec<VolumeView> {
        self.volumes
            .iter()
            .map(|(id, v)| Self::view_of(id, v))
            .collect()
    }

    /// One tracked volume's view.
    pub fn view(&self, id: &VolumeId) -> Option<VolumeView> {
        self.volume(id).map(|v| Self::view_of(id.as_str(), v))
    }

    fn view_of(id: &str, v: &Volume) -> VolumeView {
        VolumeView {
            volume: VolumeId::from(id),
            mode: v.mode,
            nodes: v.nodes.to_vec(),
            migration: v.migration.as_ref().map(|m| MigrationView {
                source: m.source.clone(),
                target: m.target.clone(),
                started: m.started,
                timeout: m.timeout,
                failed: m.failed,
            }),
        }
    }

    /// The volume's running or failed migration (`None`: none).
    pub fn migration_of(&self, id: &VolumeId) -> Option<&Migration> {
        self.volume(id).and_then(|v| v.migration.as_deref())
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
        let node = &self.shared(node);
        let Some(volume) = self.volumes.get(id.as_str()) else {
            // Not attached: the node becomes primary, the mode is fixed now.
            self.insert(
                id,
                Volume::new(*mode, Attached::one(node.clone()), None, claim.as_ref()),
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
        match (volume.mode, volume.nodes.first(), volume.nodes.len()) {
            (AccessMode::Rwo, Some(holder), _) => {
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
                if let Some(v) = self.volume_mut(id) {
                    v.nodes = Attached::one(node.clone());
                    // The publish's claim, else the one remembered.
                    if let Some(claim) = &claim {
                        v.remember(claim);
                    }
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
            (AccessMode::Rwx, Some(source), 1) => {
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
                if let Some(v) = self.volume_mut(id) {
                    v.nodes.push(node.clone());
                    v.migration = Some(Box::new(migration));
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
            (_, _, count) => {
                let attached = volume
                    .nodes
                    .iter()
                    .map(NodeName::as_str)
                    .collect::<Vec<_>>()
                    .join(" ");
                Err(RpcError::new(
                    Code::FailedPrecondition,
                    format!(
                        "Volume {id} already attached to {count} nodes (migration limit). Wait for migration to complete. Attached nodes: [{attached}]"
                    ),
                ))
            }
        }
    }

    fn remember_claim(&mut self, id: &VolumeId, claim: Option<ClaimName>) {
        if let (Some(claim), Some(volume)) = (claim, self.volume_mut(id)) {
            volume.remember(&claim);
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
        let Some(volume) = self.volume_mut(id) else {
            return;
        };
        if !volume.nodes.contains(node) {
            return;
        }
        let claim = volume.claim();
        if volume.nodes.len() == 1 {
            // One node never has a migration; should one be there, it ends with the volume.
            if let Some(migration) = volume.migration.take() {
                effects.cancel.push(migration.id);
                effects.records.push(id.clone());
                if !migration.failed {
                    self.end_migration();
                }
            }
            self.volumes.remove(id.as_str());
            effects.post(
                &claim,
                LifecycleEvent::VolumeDetached {
                    volume: id.clone(),
                    node: node.clone(),
                },
            );
            return;
        }
        volume.nodes.remove(node);
        let Some(migration) = volume.migration.take() else {
            // Two nodes without a migration cannot be built; keep the other node as primary.
            return;
        };
        let migration = *migration;
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
        let Some(volume) = self.volume_mut(id) else {
            return;
        };
        let claim = volume.claim();
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
            .map(|(id, _)| VolumeId::from(&**id))
            .collect();
        for id in on_node {
            let Some(volume) = self.volume_mut(&id) else {
                continue;
            };
            let claim = volume.claim();
            let migration = volume.migration.take().map(|m| *m);
            volume.nodes.remove(node);
            if volume.nodes.is_empty() {
                self.volumes.remove(id.as_str());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_entry_stays_within_its_documented_size() {
        let sizes = [
            ("Volume", size_of::<Volume>(), 48),
            ("Attached", size_of::<Attached>(), 16),
            ("Migration", size_of::<Migration>(), 64),
            ("NodeName", size_of::<NodeName>(), 8),
        ];
        for (name, size, bound) in sizes {
            assert!(
                size <= bound,
                "{name} is {size} bytes, documented as {bound}"
            );
        }
    }

    #[test]
    fn a_volume_remembers_its_claim_in_one_text() {
        let mut volume = Volume::new(
            AccessMode::Rwx,
            Attached::one("node-a".into()),
            None,
            Some(&ClaimName::new("vms", "disk/odd")),
        );
        assert_eq!(volume.claim(), Some(ClaimName::new("vms", "disk/odd")));
        volume.remember(&ClaimName::new("a/b", "c"));
        assert_eq!(volume.claim(), Some(ClaimName::new("a/b", "c")));
        assert_eq!(
            Volume::new(AccessMode::Rwo, Attached::default(), None, None).claim(),
            None
        );
    }

    #[test]
    fn attached_nodes_keep_the_primary_first() {
        let mut nodes = Attached::one("a".into());
        nodes.push("b".into());
        nodes.push("c".into());
        assert_eq!(
            nodes.to_vec(),
            vec![NodeName::from("a"), NodeName::from("b")]
        );
        nodes.remove(&"a".into());
        assert_eq!(nodes.to_vec(), vec![NodeName::from("b")]);
        assert_eq!(nodes.first(), Some(&NodeName::from("b")));
        nodes.remove(&"b".into());
        assert!(nodes.is_empty());
        assert_eq!(nodes.len(), 0);
    }
}
