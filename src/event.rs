//! Lifecycle events as typed values, and the byte-exact message each one prints (`docs/events.md` §1).
//!
//! A [`LifecycleEvent`] holds the facts (volume, nodes, durations, errors); its [`reason`]
//! fixes the event type and its [`message`] is the exact text operators read.
//!
//! ```
//! use csi_events::{LifecycleEvent, MigrationFailure, Reason};
//! use std::time::Duration;
//!
//! let failed = LifecycleEvent::MigrationFailed {
//!     volume: "pvc-1".into(),
//!     source: "node-a".into(),
//!     target: "node-b".into(),
//!     why: MigrationFailure::Timeout,
//!     elapsed: Duration::from_secs(360),
//! };
//! assert_eq!(failed.reason(), Reason::MigrationFailed);
//! assert_eq!(
//!     failed.message(),
//!     "[pvc-1]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: timeout, elapsed: 6m0s"
//! );
//! ```
//!
//! [`reason`]: LifecycleEvent::reason
//! [`message`]: LifecycleEvent::message

use std::fmt;
use std::time::Duration;

use crate::duration::{GoDuration, Precision};
use crate::ids::{NodeName, VolumeId};
use crate::reason::Reason;

/// Why a live migration failed: the `reason:` part of a MigrationFailed message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MigrationFailure {
    /// The migration ran longer than its timeout (`timeout`).
    Timeout,
    /// The target was unpublished while the source still held the volume.
    TargetDetachedBeforeSource,
    /// One of the two nodes was deleted (`node {node} deleted`).
    NodeDeleted(NodeName),
}

impl fmt::Display for MigrationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrationFailure::Timeout => f.write_str("timeout"),
            MigrationFailure::TargetDetachedBeforeSource => {
                f.write_str("target detached before source")
            }
            MigrationFailure::NodeDeleted(node) => write!(f, "node {node} deleted"),
        }
    }
}

/// One thing that happened to a volume, with everything its message needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LifecycleEvent {
    /// `[{vol}] on [{node}]: {message}`
    MountFailure {
        /// The volume.
        volume: VolumeId,
        /// The node that failed.
        node: NodeName,
        /// What failed, e.g. `stage volume failed: ...`.
        message: String,
    },
    /// `[{vol}] on [{node}]: Recovery failed after {n} attempts: {error}`
    RecoveryFailed {
        /// The volume.
        volume: VolumeId,
        /// The node.
        node: NodeName,
        /// How many attempts were made.
        attempts: u32,
        /// The last error's text.
        error: String,
    },
    /// `[{vol}] on [{node}]: Stale mount detected - old device: {old}, new device: {new}`
    StaleMountDetected {
        /// The volume.
        volume: VolumeId,
        /// The node.
        node: NodeName,
        /// The device the mount pointed at.
        old_device: String,
        /// The device the volume has now.
        new_device: String,
    },
    /// `[{vol}] on [{node}]: Connection to {address} failed: {error}`
    ConnectionFailure {
        /// The volume.
        volume: VolumeId,
        /// The node.
        node: NodeName,
        /// The storage target, `addr:port`.
        address: String,
        /// The error's text.
        error: String,
    },
    /// `[{vol}] on [{node}]: Connection to {address} recovered after {n} attempts`
    ConnectionRecovery {
        /// The volume.
        volume: VolumeId,
        /// The node.
        node: NodeName,
        /// The storage target.
        address: String,
        /// How many attempts it took.
        attempts: u32,
    },
    /// `[{vol}]: Attachment to node {requested} rejected - volume already attached to node {holder}. Delete the pod on {holder} to release the volume.`
    AttachmentConflict {
        /// The volume.
        volume: VolumeId,
        /// The node that asked.
        requested: NodeName,
        /// The node that holds the volume.
        holder: NodeName,
    },
    /// `[{vol}]: Attached to node {node} (duration: {d})`, d rounded to the millisecond.
    VolumeAttached {
        /// The volume.
        volume: VolumeId,
        /// The node.
        node: NodeName,
        /// How long the attach took.
        took: Duration,
    },
    /// `[{vol}]: Detached from node {node}`
    VolumeDetached {
        /// The volume.
        volume: VolumeId,
        /// The node.
        node: NodeName,
    },
    /// `[{vol}]: Cleared stale attachment from deleted node {node}`
    StaleAttachmentCleared {
        /// The volume.
        volume: VolumeId,
        /// The deleted node.
        node: NodeName,
    },
    /// `[{vol}]: KubeVirt live migration started - source: {src}, target: {tgt}, timeout: {d}`
    MigrationStarted {
        /// The volume.
        volume: VolumeId,
        /// The node the VM leaves.
        source: NodeName,
        /// The node the VM moves to.
        target: NodeName,
        /// The migration's timeout (rounded to the second).
        timeout: Duration,
    },
    /// `[{vol}]: KubeVirt live migration completed - source: {src} -> target: {tgt} (duration: {d})`
    MigrationCompleted {
        /// The volume.
        volume: VolumeId,
        /// The node the VM left.
        source: NodeName,
        /// The node that holds the volume now.
        target: NodeName,
        /// How long the migration took (rounded to the second).
        took: Duration,
    },
    /// `[{vol}]: KubeVirt live migration failed - source: {src}, attempted target: {tgt}, reason: {why}, elapsed: {d}`
    MigrationFailed {
        /// The volume.
        volume: VolumeId,
        /// The node the VM was leaving.
        source: NodeName,
        /// The node it was moving to.
        target: NodeName,
        /// Why it failed.
        why: MigrationFailure,
        /// Time since the migration started (rounded to the second).
        elapsed: Duration,
    },
    /// Log only: `OrphanDetected: node={node} nqn={nqn}`.
    OrphanDetected {
        /// The node holding the connection.
        node: NodeName,
        /// The NVMe qualified name of the orphaned connection.
        nqn: String,
    },
    /// Log only: `OrphanCleaned: node={node} nqn={nqn}`.
    OrphanCleaned {
        /// The node.
        node: NodeName,
        /// The NVMe qualified name.
        nqn: String,
    },
}

impl LifecycleEvent {
    /// The reason, which fixes the event type.
    pub fn reason(&self) -> Reason {
        match self {
            LifecycleEvent::MountFailure { .. } => Reason::MountFailure,
            LifecycleEvent::RecoveryFailed { .. } => Reason::RecoveryFailed,
            LifecycleEvent::StaleMountDetected { .. } => Reason::StaleMountDetected,
            LifecycleEvent::ConnectionFailure { .. } => Reason::ConnectionFailure,
            LifecycleEvent::ConnectionRecovery { .. } => Reason::ConnectionRecovery,
            LifecycleEvent::AttachmentConflict { .. } => Reason::AttachmentConflict,
            LifecycleEvent::VolumeAttached { .. } => Reason::VolumeAttached,
            LifecycleEvent::VolumeDetached { .. } => Reason::VolumeDetached,
            LifecycleEvent::StaleAttachmentCleared { .. } => Reason::StaleAttachmentCleared,
            LifecycleEvent::MigrationStarted { .. } => Reason::MigrationStarted,
            LifecycleEvent::MigrationCompleted { .. } => Reason::MigrationCompleted,
            LifecycleEvent::MigrationFailed { .. } => Reason::MigrationFailed,
            LifecycleEvent::OrphanDetected { .. } => Reason::OrphanDetected,
            LifecycleEvent::OrphanCleaned { .. } => Reason::OrphanCleaned,
        }
    }

    /// The volume the event is about; `None` for the orphan reasons, which have no claim.
    pub fn volume(&self) -> Option<&VolumeId> {
        match self {
            LifecycleEvent::MountFailure { volume, .. }
            | LifecycleEvent::RecoveryFailed { volume, .. }
            | LifecycleEvent::StaleMountDetected { volume, .. }
            | LifecycleEvent::ConnectionFailure { volume, .. }
            | LifecycleEvent::ConnectionRecovery { volume, .. }
            | LifecycleEvent::AttachmentConflict { volume, .. }
            | LifecycleEvent::VolumeAttached { volume, .. }
            | LifecycleEvent::VolumeDetached { volume, .. }
            | LifecycleEvent::StaleAttachmentCleared { volume, .. }
            | LifecycleEvent::MigrationStarted { volume, .. }
            | LifecycleEvent::MigrationCompleted { volume, .. }
            | LifecycleEvent::MigrationFailed { volume, .. } => Some(volume),
            LifecycleEvent::OrphanDetected { .. } | LifecycleEvent::OrphanCleaned { .. } => None,
        }
    }

    /// The exact message text (for the orphan reasons: the exact log line).
    pub fn message(&self) -> String {
        let s = |d: &Duration| GoDuration::rounded(*d, Precision::Second);
        match self {
            LifecycleEvent::MountFailure {
                volume,
                node,
                message,
            } => format!("[{volume}] on [{node}]: {message}"),
            LifecycleEvent::RecoveryFailed {
                volume,
                node,
                attempts,
                error,
            } => format!(
                "[{volume}] on [{node}]: Recovery failed after {attempts} attempts: {error}"
            ),
            LifecycleEvent::StaleMountDetected {
                volume,
                node,
                old_device,
                new_device,
            } => format!(
                "[{volume}] on [{node}]: Stale mount detected - old device: {old_device}, new device: {new_device}"
            ),
            LifecycleEvent::ConnectionFailure {
                volume,
                node,
                address,
                error,
            } => format!("[{volume}] on [{node}]: Connection to {address} failed: {error}"),
            LifecycleEvent::ConnectionRecovery {
                volume,
                node,
                address,
                attempts,
            } => format!(
                "[{volume}] on [{node}]: Connection to {address} recovered after {attempts} attempts"
            ),
            LifecycleEvent::AttachmentConflict {
                volume,
                requested,
                holder,
            } => format!(
                "[{volume}]: Attachment to node {requested} rejected - volume already attached to node {holder}. Delete the pod on {holder} to release the volume."
            ),
            LifecycleEvent::VolumeAttached { volume, node, took } => format!(
                "[{volume}]: Attached to node {node} (duration: {})",
                GoDuration::rounded(*took, Precision::Millisecond)
            ),
            LifecycleEvent::VolumeDetached { volume, node } => {
                format!("[{volume}]: Detached from node {node}")
            }
            LifecycleEvent::StaleAttachmentCleared { volume, node } => {
                format!("[{volume}]: Cleared stale attachment from deleted node {node}")
            }
            LifecycleEvent::MigrationStarted {
                volume,
                source,
                target,
                timeout,
            } => format!(
                "[{volume}]: KubeVirt live migration started - source: {source}, target: {target}, timeout: {}",
                s(timeout)
            ),
            LifecycleEvent::MigrationCompleted {
                volume,
                source,
                target,
                took,
            } => format!(
                "[{volume}]: KubeVirt live migration completed - source: {source} -> target: {target} (duration: {})",
                s(took)
            ),
            LifecycleEvent::MigrationFailed {
                volume,
                source,
                target,
                why,
                elapsed,
            } => format!(
                "[{volume}]: KubeVirt live migration failed - source: {source}, attempted target: {target}, reason: {why}, elapsed: {}",
                s(elapsed)
            ),
            LifecycleEvent::OrphanDetected { node, nqn } => {
                format!("OrphanDetected: node={node} nqn={nqn}")
            }
            LifecycleEvent::OrphanCleaned { node, nqn } => {
                format!("OrphanCleaned: node={node} nqn={nqn}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v() -> VolumeId {
        "pvc-7".into()
    }
    fn n(name: &str) -> NodeName {
        name.into()
    }

    /// Every message of `docs/events.md` §1, byte for byte.
    #[test]
    fn every_message_is_byte_exact() {
        let cases = vec![
            (
                LifecycleEvent::MountFailure {
                    volume: v(),
                    node: n("a"),
                    message: "stage volume failed: boom".into(),
                },
                "[pvc-7] on [a]: stage volume failed: boom",
            ),
            (
                LifecycleEvent::RecoveryFailed {
                    volume: v(),
                    node: n("a"),
                    attempts: 5,
                    error: "io error".into(),
                },
                "[pvc-7] on [a]: Recovery failed after 5 attempts: io error",
            ),
            (
                LifecycleEvent::StaleMountDetected {
                    volume: v(),
                    node: n("a"),
                    old_device: "/dev/nvme0n1".into(),
                    new_device: "/dev/nvme1n1".into(),
                },
                "[pvc-7] on [a]: Stale mount detected - old device: /dev/nvme0n1, new device: /dev/nvme1n1",
            ),
            (
                LifecycleEvent::ConnectionFailure {
                    volume: v(),
                    node: n("a"),
                    address: "10.0.0.1:4420".into(),
                    error: "refused".into(),
                },
                "[pvc-7] on [a]: Connection to 10.0.0.1:4420 failed: refused",
            ),
            (
                LifecycleEvent::ConnectionRecovery {
                    volume: v(),
                    node: n("a"),
                    address: "10.0.0.1:4420".into(),
                    attempts: 3,
                },
                "[pvc-7] on [a]: Connection to 10.0.0.1:4420 recovered after 3 attempts",
            ),
            (
                LifecycleEvent::AttachmentConflict {
                    volume: v(),
                    requested: n("b"),
                    holder: n("a"),
                },
                "[pvc-7]: Attachment to node b rejected - volume already attached to node a. Delete the pod on a to release the volume.",
            ),
            (
                LifecycleEvent::VolumeAttached {
                    volume: v(),
                    node: n("a"),
                    took: Duration::from_micros(1_204_400),
                },
                "[pvc-7]: Attached to node a (duration: 1.204s)",
            ),
            (
                LifecycleEvent::VolumeDetached {
                    volume: v(),
                    node: n("a"),
                },
                "[pvc-7]: Detached from node a",
            ),
            (
                LifecycleEvent::StaleAttachmentCleared {
                    volume: v(),
                    node: n("gone"),
                },
                "[pvc-7]: Cleared stale attachment from deleted node gone",
            ),
            (
                LifecycleEvent::MigrationStarted {
                    volume: v(),
                    source: n("a"),
                    target: n("b"),
                    timeout: Duration::from_secs(300),
                },
                "[pvc-7]: KubeVirt live migration started - source: a, target: b, timeout: 5m0s",
            ),
            (
                LifecycleEvent::MigrationCompleted {
                    volume: v(),
                    source: n("a"),
                    target: n("b"),
                    took: Duration::from_millis(135_456),
                },
                "[pvc-7]: KubeVirt live migration completed - source: a -> target: b (duration: 2m15s)",
            ),
            (
                LifecycleEvent::MigrationFailed {
                    volume: v(),
                    source: n("a"),
                    target: n("b"),
                    why: MigrationFailure::TargetDetachedBeforeSource,
                    elapsed: Duration::from_secs(42),
                },
                "[pvc-7]: KubeVirt live migration failed - source: a, attempted target: b, reason: target detached before source, elapsed: 42s",
            ),
            (
                LifecycleEvent::MigrationFailed {
                    volume: v(),
                    source: n("a"),
                    target: n("b"),
                    why: MigrationFailure::NodeDeleted(n("b")),
                    elapsed: Duration::from_secs(61),
                },
                "[pvc-7]: KubeVirt live migration failed - source: a, attempted target: b, reason: node b deleted, elapsed: 1m1s",
            ),
            (
                LifecycleEvent::OrphanDetected {
                    node: n("a"),
                    nqn: "nqn.2000-02.com.mikrotik:pvc-7".into(),
                },
                "OrphanDetected: node=a nqn=nqn.2000-02.com.mikrotik:pvc-7",
            ),
            (
                LifecycleEvent::OrphanCleaned {
                    node: n("a"),
                    nqn: "nqn.x".into(),
                },
                "OrphanCleaned: node=a nqn=nqn.x",
            ),
        ];
        let mut reasons_seen = std::collections::BTreeSet::new();
        for (event, want) in cases {
            assert_eq!(event.message(), want, "{:?}", event.reason());
            reasons_seen.insert(event.reason());
        }
        assert_eq!(
            reasons_seen.len(),
            Reason::ALL.len(),
            "every reason has a case"
        );
    }

    #[test]
    fn orphans_have_no_volume() {
        let orphan = LifecycleEvent::OrphanCleaned {
            node: n("a"),
            nqn: "q".into(),
        };
        assert_eq!(orphan.volume(), None);
        assert_eq!(orphan.reason().event_type(), None);
    }
}
