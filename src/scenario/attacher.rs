//! The runner's external-attacher role: after every step exactly one VolumeAttachment
//! (attacher = the driver's name, `status.attached: true`) per node the model holds a volume
//! attached to, created for new attachments and deleted for detached or cleared ones, so a
//! restart has something to rebuild from.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::storage::v1::{
    VolumeAttachment, VolumeAttachmentSource, VolumeAttachmentSpec,
};
use kube::api::ObjectMeta;
use serde_json::json;

use super::driver::DRIVER_NAME;
use super::driver::Driver;
use super::world::Admin;
use crate::ids::{NodeName, VolumeId};

/// The VolumeAttachments the runner keeps.
#[derive(Debug)]
pub(crate) struct Attacher {
    /// The driver's name: every VolumeAttachment's `spec.attacher`.
    driver_name: String,
    /// (volume, node) → VolumeAttachment name.
    attachments: BTreeMap<(VolumeId, NodeName), String>,
    /// node → the volumes kept attached there.
    by_node: BTreeMap<NodeName, BTreeSet<VolumeId>>,
    /// The volumes whose attachments changed since [`Attacher::take_changed`].
    changed: BTreeSet<VolumeId>,
}

impl Attacher {
    /// An attacher for the driver `driver_name`, with no VolumeAttachments yet.
    pub(crate) fn new(driver_name: &str) -> Self {
        Attacher {
            driver_name: driver_name.to_owned(),
            attachments: BTreeMap::new(),
            by_node: BTreeMap::new(),
            changed: BTreeSet::new(),
        }
    }

    /// Makes every VolumeAttachment match what `driver` holds attached (after a restart).
    pub(crate) async fn follow<D: Driver>(&mut self, admin: &Admin, driver: &mut D) {
        let Some(attached) = driver.attached().await else {
            return;
        };
        let kept: Vec<(VolumeId, NodeName)> = self.attachments.keys().cloned().collect();
        self.apply(admin, kept, attached).await;
    }

    /// Makes the VolumeAttachments of `volumes` match what `driver` holds attached: the cost
    /// is that of the volumes a step touched, not of every volume.
    pub(crate) async fn follow_volumes<D: Driver>(
        &mut self,
        admin: &Admin,
        driver: &mut D,
        volumes: impl IntoIterator<Item = VolumeId>,
    ) {
        let mut kept = Vec::new();
        let mut attached = BTreeSet::new();
        for volume in volumes {
            let Some(nodes) = driver.attached_to(&volume).await else {
                return;
            };
            kept.extend(
                self.nodes_of(&volume)
                    .map(|node| (volume.clone(), node.clone())),
            );
            attached.extend(nodes.into_iter().map(|node| (volume.clone(), node)));
        }
        self.apply(admin, kept, attached).await;
    }

    /// The volumes whose attachments changed since the last call, each with the nodes it is
    /// kept attached to now.
    pub(crate) fn take_changed(&mut self) -> BTreeMap<VolumeId, BTreeSet<NodeName>> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(|volume| {
                let nodes = self.nodes_of(&volume).cloned().collect();
                (volume, nodes)
            })
            .collect()
    }

    /// The nodes `volume` is kept attached to.
    fn nodes_of<'a>(&'a self, volume: &'a VolumeId) -> impl Iterator<Item = &'a NodeName> + 'a {
        self.attachments
            .range((volume.clone(), NodeName::new(String::new()))..)
            .take_while(move |((v, _), _)| v == volume)
            .map(|((_, node), _)| node)
    }

    /// The volumes the runner keeps an attachment of on `node`.
    pub(crate) fn volumes_on(&self, node: &NodeName) -> Vec<VolumeId> {
        self.by_node
            .get(node)
            .map(|volumes| volumes.iter().cloned().collect())
            .unwrap_or_default()
    }

    async fn apply(
        &mut self,
        admin: &Admin,
        kept: Vec<(VolumeId, NodeName)>,
        attached: BTreeSet<(VolumeId, NodeName)>,
    ) {
        let gone: Vec<(VolumeId, NodeName)> = kept
            .into_iter()
            .filter(|key| !attached.contains(key))
            .collect();
        for key in gone {
            self.changed.insert(key.0.clone());
            if let Some(name) = self.attachments.remove(&key) {
                let _ = admin.delete::<VolumeAttachment>(None, &name).await;
            }
            if let Some(volumes) = self.by_node.get_mut(&key.1) {
                volumes.remove(&key.0);
            }
        }
        for (volume, node) in attached {
            if self
                .attachments
                .contains_key(&(volume.clone(), node.clone()))
            {
                continue;
            }
            self.changed.insert(volume.clone());
            let name = attachment_name(&volume, &node);
            let attachment = VolumeAttachment {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..ObjectMeta::default()
                },
                spec: VolumeAttachmentSpec {
                    attacher: self.driver_name.clone(),
                    node_name: node.to_string(),
                    source: VolumeAttachmentSource {
                        persistent_volume_name: Some(volume.to_string()),
                        ..VolumeAttachmentSource::default()
                    },
                },
                status: None,
            };
            // One left by an earlier run (against a kubeconfig with --keep) is replaced.
            if admin.replace(None, &name, &attachment).await.is_ok() {
                let status = json!({"status": {"attached": true}});
                let _ = admin.patch_status::<VolumeAttachment>(&name, &status).await;
            }
            self.by_node
                .entry(node.clone())
                .or_default()
                .insert(volume.clone());
            self.attachments.insert((volume, node), name);
        }
    }
}

/// A VolumeAttachment's name as the external-attacher derives it: `csi-` and a hash of
/// volume, attacher and node (here a stable 64-bit FNV-1a, not SHA-256: only uniqueness and
/// stability matter).
pub(crate) fn attachment_name(volume: &VolumeId, node: &NodeName) -> String {
    let text = format!("{volume}{DRIVER_NAME}{node}");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("csi-{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_are_stable() {
        let a = attachment_name(&"pvc-1".into(), &"node-a".into());
        assert_eq!(a, attachment_name(&"pvc-1".into(), &"node-a".into()));
        assert_ne!(a, attachment_name(&"pvc-1".into(), &"node-b".into()));
    }
}
