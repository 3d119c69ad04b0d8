//! The reasons this driver reports, each with the event type it is posted as.
//!
//! One table: a reason's type is a property of the reason, so a Warning reason cannot be posted
//! as Normal, and the orphan reasons (no claim exists) cannot be posted as Kubernetes events.
//!
//! ```
//! use csi_events::{EventType, Reason};
//! assert_eq!(Reason::MigrationFailed.event_type(), Some(EventType::Warning));
//! assert_eq!(Reason::MigrationStarted.as_str(), "MigrationStarted");
//! assert_eq!(Reason::OrphanDetected.event_type(), None);
//! ```

use std::fmt;

/// The `type` of a Kubernetes Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something an operator should look at.
    Warning,
}

impl EventType {
    /// The wire text: `Normal` or `Warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! reasons {
    ($($(#[$doc:meta])* $reason:ident => $kind:expr,)*) => {
        /// Every reason the driver reports (`docs/events.md` §1).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $($(#[$doc])* $reason,)*
        }

        impl Reason {
            /// All reasons, in table order.
            pub const ALL: &'static [Reason] = &[$(Reason::$reason,)*];

            /// The wire text of the reason, e.g. `MigrationStarted`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$reason => stringify!($reason),)*
                }
            }

            /// The event type the reason is posted as; `None` for log-only reasons.
            pub fn event_type(self) -> Option<EventType> {
                match self {
                    $(Reason::$reason => $kind,)*
                }
            }
        }
    };
}

reasons! {
    /// A node could not stage or mount the volume.
    MountFailure => Some(EventType::Warning),
    /// A node gave up recovering the volume's connection.
    RecoveryFailed => Some(EventType::Warning),
    /// A node found the volume's device changed under a mount.
    StaleMountDetected => Some(EventType::Normal),
    /// A node lost its connection to the storage target.
    ConnectionFailure => Some(EventType::Warning),
    /// A node's connection to the storage target came back.
    ConnectionRecovery => Some(EventType::Normal),
    /// A publish was refused: the volume is attached elsewhere.
    AttachmentConflict => Some(EventType::Warning),
    /// The volume was attached to a node.
    VolumeAttached => Some(EventType::Normal),
    /// The volume was detached from a node.
    VolumeDetached => Some(EventType::Normal),
    /// An attachment to a deleted node was removed.
    StaleAttachmentCleared => Some(EventType::Normal),
    /// A KubeVirt live migration attached the volume to a second node.
    MigrationStarted => Some(EventType::Normal),
    /// A live migration finished: the target holds the volume.
    MigrationCompleted => Some(EventType::Normal),
    /// A live migration failed (timeout, target detached first, node deleted).
    MigrationFailed => Some(EventType::Warning),
    /// A node holds a storage connection no volume owns (log only).
    OrphanDetected => None,
    /// An orphaned storage connection was removed (log only).
    OrphanCleaned => None,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_match_the_table() {
        use EventType::*;
        let expected = [
            ("MountFailure", Some(Warning)),
            ("RecoveryFailed", Some(Warning)),
            ("StaleMountDetected", Some(Normal)),
            ("ConnectionFailure", Some(Warning)),
            ("ConnectionRecovery", Some(Normal)),
            ("AttachmentConflict", Some(Warning)),
            ("VolumeAttached", Some(Normal)),
            ("VolumeDetached", Some(Normal)),
            ("StaleAttachmentCleared", Some(Normal)),
            ("MigrationStarted", Some(Normal)),
            ("MigrationCompleted", Some(Normal)),
            ("MigrationFailed", Some(Warning)),
            ("OrphanDetected", None),
            ("OrphanCleaned", None),
        ];
        let actual: Vec<_> = Reason::ALL
            .iter()
            .map(|r| (r.as_str(), r.event_type()))
            .collect();
        assert_eq!(actual, expected);
    }
}
