//! The runner's external-attacher role: after every step exactly one VolumeAttachment
//! (attacher = the driver's name, `status.attached: true`) per node the model holds a volume
//! attached to, created for new attachments and deleted for detached or cleared ones, so a
//! restart has something to rebuild from.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::storage::v1::{
    VolumeAttachment, VolumeAttachmentSource, VolumeAttachmentSpec,
};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use super::driver::Driver;
use super::runner::DRIVER_NAME;
use crate::ids::{NodeName, VolumeId};

/// The VolumeAttachments the runner keeps.
#[derive(Debug, Default)]
pub(crate) struct Attacher {
    /// (volume, node) → VolumeAttachment name.
    attachments: BTreeMap<(VolumeId, NodeName), String>,
}

impl Attacher {
    /// Makes the VolumeAttachments match what `driver` holds attached.
    pub(crate) async fn follow<D: Driver>(&mut self, admin: &kube::Client, driver: &mut D) {
        let Some(attached) = driver.attached().await else {
            return;
        };
        self.apply(admin, attached).await;
    }

    async fn apply(&mut self, admin: &kube::Client, attached: BTreeSet<(VolumeId, NodeName)>) {
        let api: Api<VolumeAttachment> = Api::all(admin.clone());
        let gone: Vec<(VolumeId, NodeName)> = self
            .attachments
            .keys()
            .filter(|key| !attached.contains(*key))
            .cloned()
            .collect();
        for key in gone {
            if let Some(name) = self.attachments.remove(&key) {
                let _ = api.delete(&name, &DeleteParams::default()).await;
            }
        }
        for (volume, node) in attached {
            if self
                .attachments
                .contains_key(&(volume.clone(), node.clone()))
            {
                continue;
            }
            let name = attachment_name(&volume, &node);
            let attachment = VolumeAttachment {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..ObjectMeta::default()
                },
                spec: VolumeAttachmentSpec {
                    attacher: DRIVER_NAME.to_owned(),
                    node_name: node.to_string(),
                    source: VolumeAttachmentSource {
                        persistent_volume_name: Some(volume.to_string()),
                        ..VolumeAttachmentSource::default()
                    },
                },
                status: None,
            };
            let _ = api.delete(&name, &DeleteParams::default()).await;
            if api
                .create(&PostParams::default(), &attachment)
                .await
                .is_ok()
            {
                let status = json!({"status": {"attached": true}});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            }
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
