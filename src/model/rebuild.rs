//! Restart (`docs/lifecycle.md` §Restart): the state rebuilt from the cluster.
//!
//! The source of truth is the `VolumeAttachment` objects whose `spec.attacher` is the driver's
//! name and whose `status.attached` is true, grouped by `spec.source.persistentVolumeName` and
//! ordered by creation time (then name, for equal times), and the PVs' migration records
//! ([`MIGRATION_ANNOTATION`]):
//! - one attachment → its node is the primary; the access mode is RWX if the PV's
//!   `spec.accessModes` holds `ReadWriteMany`, otherwise RWO (an attachment records no mode);
//! - two, and a record naming both nodes → RWX with the record's migration, exactly: source,
//!   target, start (to the nanosecond), timeout, and whether it already failed (then it is not
//!   reported again and arms no timer);
//! - two without a usable record (none, unreadable, or naming other nodes: written by an older
//!   version, or a lost write) → RWX with a running migration: source = the older attachment's
//!   node, target = the newer's, start = the newer's creation time, timeout re-read from the
//!   PV's `spec.csi.volumeAttributes` (`migrationTimeoutSeconds`). A log line says so, and a
//!   warning says when the order is a guess (equal creation times, ordered by name). The
//!   rebuilt migration's record is written then, so later restarts agree with this one;
//! - more than two → the two oldest are kept, with a warning.
//!
//! A record left on one of this driver's volumes (`spec.csi.driver` = the driver's name) that
//! has no migration any more is removed; other drivers' PVs are never written. A rebuild posts
//! nothing. Timers are re-armed for the rebuilt running migrations; one whose deadline passed
//! while the controller was down fires as soon as its task first runs. Claims are not
//! remembered across a restart: events go through the PV's claimRef.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, PersistentVolume};
use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::{Api, ListParams};

use super::record::{MIGRATION_ANNOTATION, MigrationRecord};
use super::state::{Arm, Attached, Effects, Migration, State, Volume};
use super::timeout::migration_timeout;
use super::{AccessMode, Controller, ControllerConfig};
use crate::ids::{NodeName, VolumeId};
use crate::poster::EventPoster;

/// Why the state could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Listing a kind failed (the controller needs `list` on nodes, volumeattachments and
    /// persistentvolumes).
    #[error(
        "rebuilding the attachment state: listing {kind} failed: {source}; the controller needs RBAC `list` on {kind} and a reachable API server"
    )]
    List {
        /// The plural of the kind, e.g. `volumeattachments`.
        kind: &'static str,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// One VolumeAttachment of this driver, attached.
#[derive(Debug, Clone)]
struct Attachment {
    created: Timestamp,
    name: String,
    node: NodeName,
}

impl Controller {
    /// Restart: lists Nodes, VolumeAttachments (attacher = driver name, `status.attached`) and
    /// PVs (with their migration records) through `client`, rebuilds the state (`docs/lifecycle.md`
    /// "Restart"), re-arms migration timers (a timeout already passed fires at the first
    /// moment the timer runs), and sets the active-migrations gauge to the rebuilt running
    /// migrations. Posts nothing itself. The controller keeps `client` as its
    /// [`ControllerConfig::client`] unless the config names one.
    pub async fn rebuild(
        client: kube::Client,
        poster: EventPoster,
        mut config: ControllerConfig,
    ) -> Result<Self, RebuildError> {
        if config.client.is_none() {
            config.client = Some(client.clone());
        }
        let list = ListParams::default();
        let nodes = Api::<Node>::all(client.clone())
            .list(&list)
            .await
            .map_err(|source| RebuildError::List {
                kind: "nodes",
                source,
            })?;
        let attachments = Api::<VolumeAttachment>::all(client.clone())
            .list(&list)
            .await
            .map_err(|source| RebuildError::List {
                kind: "volumeattachments",
                source,
            })?;
        let volumes = Api::<PersistentVolume>::all(client)
            .list(&list)
            .await
            .map_err(|source| RebuildError::List {
                kind: "persistentvolumes",
                source,
            })?;

        let mut state = State::default();
        state.nodes = nodes
            .items
            .into_iter()
            .filter_map(|node| node.metadata.name.map(NodeName::from))
            .collect();
        let pvs: BTreeMap<String, PersistentVolume> = volumes
            .items
            .into_iter()
            .filter_map(|pv| pv.metadata.name.clone().map(|name| (name, pv)))
            .collect();
        let grouped = group(attachments.items, &config.driver_name);
        let now = config.clock.now();
        let mut effects = Effects::default();
        let mut from_records = 0usize;
        for (volume, attached) in grouped {
            let pv = pvs.get(volume.as_str());
            if pv.is_none() {
                tracing::warn!(
                    volume = %volume,
                    "rebuild: PersistentVolume {volume} of an attached VolumeAttachment not found; \
                     assuming RWO and the default migration timeout"
                );
            }
            let rebuilt = match attached.as_slice() {
                [only] => Volume::new(
                    pv_mode(pv),
                    Attached::one(state.shared(&only.node)),
                    None,
                    None,
                ),
                [older, newer, ..] => {
                    let record = match pv_record(pv) {
                        Some(Ok(record)) if record.names(&older.node, &newer.node) => Ok(record),
                        Some(Ok(record)) => Err(format!(
                            "its migration record names nodes {} and {}, not the attached {} and {}",
                            record.source, record.target, older.node, newer.node
                        )),
                        Some(Err(why)) => Err(format!("its migration record is unusable: {why}")),
                        None => Err("it has no migration record".to_owned()),
                    };
                    let migration = match record {
                        Ok(record) => {
                            from_records += 1;
                            tracing::info!(
                                volume = %volume,
                                "rebuild: volume {volume}: migration {} -> {} (started {}, {}) from its record",
                                record.source,
                                record.target,
                                record.started,
                                if record.failed { "already failed" } else { "running" }
                            );
                            Migration {
                                id: state.adopt_migration(record.failed),
                                source: state.shared(&record.source),
                                target: state.shared(&record.target),
                                started: record.started,
                                timeout: record.timeout,
                                failed: record.failed,
                            }
                        }
                        Err(why) => {
                            fallback_order(&volume, older, newer, &why);
                            let (timeout, warning) = migration_timeout(&pv_attributes(pv));
                            if let Some(warning) = warning {
                                tracing::warn!(volume = %volume, "rebuild: {warning}");
                            }
                            // Written now, so the next restart agrees with this one.
                            effects.records.push(volume.clone());
                            Migration {
                                id: state.begin_migration(),
                                source: state.shared(&older.node),
                                target: state.shared(&newer.node),
                                started: newer.created,
                                timeout,
                                failed: false,
                            }
                        }
                    };
                    if !migration.failed {
                        effects.arm.push(Arm {
                            volume: volume.clone(),
                            migration: migration.id,
                            deadline: migration.deadline(),
                        });
                    }
                    Volume::new(
                        AccessMode::Rwx,
                        Attached::two(migration.source.clone(), migration.target.clone()),
                        Some(Box::new(migration)),
                        None,
                    )
                }
                [] => continue,
            };
            state.insert(&volume, rebuilt);
        }
        // A record left where there is no migration any more (its removal was lost) goes; only
        // on this driver's own PVs (another driver's volumes are not ours to touch).
        for (name, pv) in pvs
            .iter()
            .filter(|(_, pv)| pv_driver(pv) == Some(&config.driver_name))
        {
            let volume = VolumeId::from(name.as_str());
            let has_migration = state.volume(&volume).is_some_and(|v| v.migration.is_some());
            if pv_record(Some(pv)).is_some() && !has_migration {
                tracing::info!(volume = %volume, "rebuild: volume {volume} has no migration; removing its leftover migration record");
                effects.records.push(volume);
            }
        }
        let migrations = state
            .volumes
            .values()
            .filter(|v| v.migration.is_some())
            .count();
        tracing::info!(
            volumes = state.volumes.len(),
            migrations,
            from_records,
            nodes = state.nodes.len(),
            at = %now,
            "rebuilt the attachment state from VolumeAttachments and migration records"
        );
        let controller = Controller::with_state(poster, config, state);
        controller.inner.arm(effects);
        Ok(controller)
    }
}

/// This driver's attached VolumeAttachments by PV name, oldest first, one per node, at most two
/// per volume (more are dropped with a warning).
fn group(items: Vec<VolumeAttachment>, driver_name: &str) -> BTreeMap<VolumeId, Vec<Attachment>> {
    let mut grouped: BTreeMap<VolumeId, Vec<Attachment>> = BTreeMap::new();
    for va in items {
        let attached = va.status.as_ref().is_some_and(|s| s.attached);
        if va.spec.attacher != driver_name || !attached {
            continue;
        }
        let Some(pv) = va.spec.source.persistent_volume_name.clone() else {
            continue;
        };
        grouped
            .entry(VolumeId::from(pv))
            .or_default()
            .push(Attachment {
                created: va
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .unwrap_or(Timestamp::MIN),
                name: va.metadata.name.clone().unwrap_or_default(),
                node: NodeName::from(va.spec.node_name.clone()),
            });
    }
    for (volume, attached) in grouped.iter_mut() {
        attached.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
        let mut seen = BTreeSet::new();
        attached.retain(|a| seen.insert(a.node.clone()));
        if attached.len() > 2 {
            let dropped: Vec<String> = attached[2..]
                .iter()
                .map(|a| format!("{} (node {})", a.name, a.node))
                .collect();
            tracing::warn!(
                volume = %volume,
                "rebuild: volume {volume} has {} attached VolumeAttachments; keeping the two oldest \
                 ({} on {}, {} on {}) and ignoring {}",
                attached.len(),
                attached[0].name,
                attached[0].node,
                attached[1].name,
                attached[1].node,
                dropped.join(", ")
            );
            attached.truncate(2);
        }
    }
    grouped
}

/// Logs that `volume`'s migration is rebuilt from creation times, and why; warns when the
/// order is a guess.
fn fallback_order(volume: &VolumeId, older: &Attachment, newer: &Attachment, why: &str) {
    tracing::info!(
        volume = %volume,
        "rebuild: volume {volume}: {why}; migration {} -> {} rebuilt from VolumeAttachment creation \
         times (source = the older attachment {}, start = the newer attachment {}'s creation, {})",
        older.node,
        newer.node,
        older.name,
        newer.name,
        newer.created
    );
    if older.created == newer.created {
        tracing::warn!(
            volume = %volume,
            "rebuild: volume {volume}: VolumeAttachments {} (node {}) and {} (node {}) were created \
             in the same second ({}); taking {} as the source by name order: this order is a guess",
            older.name,
            older.node,
            newer.name,
            newer.node,
            older.created,
            older.node
        );
    }
}

/// The PV's migration record: `None` without the annotation, an error when it is unusable.
fn pv_record(pv: Option<&PersistentVolume>) -> Option<Result<MigrationRecord, String>> {
    pv.and_then(|pv| pv.metadata.annotations.as_ref())
        .and_then(|annotations| annotations.get(MIGRATION_ANNOTATION))
        .map(|text| MigrationRecord::parse(text))
}

/// RWX if the PV allows ReadWriteMany, otherwise RWO.
fn pv_mode(pv: Option<&PersistentVolume>) -> AccessMode {
    let rwx = pv
        .and_then(|pv| pv.spec.as_ref())
        .and_then(|spec| spec.access_modes.as_ref())
        .is_some_and(|modes| modes.iter().any(|m| m == "ReadWriteMany"));
    if rwx {
        AccessMode::Rwx
    } else {
        AccessMode::Rwo
    }
}

/// The PV's CSI volume attributes (the volume context the attacher passes).
fn pv_attributes(pv: Option<&PersistentVolume>) -> BTreeMap<String, String> {
    pv.and_then(|pv| pv.spec.as_ref())
        .and_then(|spec| spec.csi.as_ref())
        .and_then(|csi| csi.volume_attributes.clone())
        .unwrap_or_default()
}

/// The CSI driver a PV belongs to (`spec.csi.driver`).
fn pv_driver(pv: &PersistentVolume) -> Option<&String> {
    pv.spec.as_ref()?.csi.as_ref().map(|csi| &csi.driver)
}
