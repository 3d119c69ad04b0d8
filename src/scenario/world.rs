//! The cluster a scenario plays in: the objects it seeds (namespaces, nodes, claims, PVs), the
//! ones its steps create and delete, and, against another API server, the clean-up.
//!
//! Every write here goes through the admin client (no faults apply to it).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, Event, Namespace, Node, ObjectReference, PersistentVolume,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec,
    VolumeResourceRequirements,
};
use k8s_openapi::api::storage::v1::VolumeAttachment;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::Request;

use super::plan::{Action, Scenario, Volume};
use super::run_error::RunError;
use super::seeded::Seeded;
use crate::clock::VirtualClock;
use crate::ids::{ClaimName, NodeName, VolumeId};
use crate::model::AccessMode;
use fake_apiserver::{ApiServer, FakeCluster};

/// The runner's own requests (seeding, claims, nodes, VolumeAttachments, fault rules): on the
/// embedded cluster straight to its server's handler (the very requests a client would send,
/// with no client, buffer task or typed decoding of the answer in between), else through the
/// admin client.
#[derive(Clone)]
pub(crate) struct Admin {
    /// The admin client (typed reads and the clean-up against another API server).
    pub(crate) client: kube::Client,
    /// The embedded server, when there is one.
    server: Option<ApiServer>,
}

impl Admin {
    /// Requests through `client`.
    pub(crate) fn client(client: kube::Client) -> Self {
        Self {
            client,
            server: None,
        }
    }

    /// Requests straight to the embedded `server`.
    pub(crate) fn embedded(server: ApiServer) -> Self {
        Self {
            client: fake_apiserver::transport::in_process_client(server.clone()),
            server: Some(server),
        }
    }

    /// Sends `request`; the answer's body, or the error a client reports (a 4xx or 5xx as
    /// [`kube::Error::Api`] with the answer's Status).
    pub(crate) async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<bytes::Bytes, kube::Error> {
        use http_body_util::BodyExt;
        let Some(server) = &self.server else {
            return self
                .client
                .request_text(request)
                .await
                .map(bytes::Bytes::from);
        };
        let response = server.handle(request.map(bytes::Bytes::from)).await;
        let status = response.status();
        let body = match response.into_body().collect().await {
            Ok(body) => body.to_bytes(),
            Err(never) => match never {},
        };
        if status.is_client_error() || status.is_server_error() {
            // As a client reads an error answer: its Status, or the text as one.
            let text = String::from_utf8_lossy(&body);
            let status = serde_json::from_str::<kube::core::Status>(&text).unwrap_or_else(|_| {
                kube::core::Status::failure(text.trim(), "Failed to parse error data")
                    .with_code(status.as_u16())
            });
            return Err(kube::Error::Api(status.boxed()));
        }
        Ok(body)
    }

    /// Creates `object` of resource `K` (in `namespace`, when namespaced).
    pub(crate) async fn create<K>(
        &self,
        namespace: Option<&str>,
        object: &K,
    ) -> Result<bytes::Bytes, kube::Error>
    where
        K: kube::Resource<DynamicType = ()> + serde::Serialize,
    {
        let body = serde_json::to_vec(object).map_err(kube::Error::SerdeError)?;
        let request = Request::new(K::url_path(&(), namespace))
            .create(&PostParams::default(), body)
            .map_err(kube::Error::BuildRequest)?;
        self.send(request).await
    }

    /// Deletes the `K` named `name`.
    pub(crate) async fn delete<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bytes::Bytes, kube::Error>
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let request = Request::new(K::url_path(&(), namespace))
            .delete(name, &DeleteParams::default())
            .map_err(kube::Error::BuildRequest)?;
        self.send(request).await
    }

    /// Merge-patches the status of the `K` named `name`.
    pub(crate) async fn patch_status<K>(
        &self,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<bytes::Bytes, kube::Error>
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let request = Request::new(K::url_path(&(), None))
            .patch_subresource(
                "status",
                name,
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .map_err(kube::Error::BuildRequest)?;
        self.send(request).await
    }

    /// Creates `object`; one already there (an earlier run with `--keep`) is deleted first.
    pub(crate) async fn replace<K>(
        &self,
        namespace: Option<&str>,
        name: &str,
        object: &K,
    ) -> Result<bytes::Bytes, kube::Error>
    where
        K: kube::Resource<DynamicType = ()> + serde::Serialize,
    {
        match self.create(namespace, object).await {
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let _ = self.delete::<K>(namespace, name).await;
                self.create(namespace, object).await
            }
            other => other,
        }
    }
}

/// Everything a run plays against.
pub(crate) struct World {
    /// Writes the runner makes itself (seeding, claims, nodes, attachments): no faults.
    pub(crate) admin: Admin,
    /// The embedded cluster (None against a kubeconfig).
    pub(crate) cluster: Option<FakeCluster>,
    /// The virtual clock.
    pub(crate) clock: VirtualClock,
    /// Where the clock started.
    pub(crate) start: jiff::Timestamp,
    /// The namespaces [`World::seed`] created (not there before): [`World::clean`] deletes
    /// them.
    pub(crate) created_namespaces: std::sync::Mutex<Vec<String>>,
    /// The CSI driver's name: the PVs' `spec.csi.driver` and the VolumeAttachments' attacher.
    pub(crate) driver_name: String,
}

impl World {
    /// Adds `rule` (or, with `None`, clears every rule) through the fake-apiserver's control
    /// path over HTTP.
    pub(crate) async fn fault_over_http(
        &self,
        rule: Option<&super::plan::FaultRule>,
    ) -> Result<(), kube::Error> {
        let request = match rule {
            Some(rule) => {
                let mut body = serde_json::json!({
                    "verb": rule.verb.as_str(),
                    "resource": rule.resource,
                    "loseResponse": rule.lose_response,
                });
                let fields = [
                    (
                        "namespace",
                        rule.namespace.clone().map(serde_json::Value::from),
                    ),
                    ("name", rule.name.clone().map(serde_json::Value::from)),
                    ("status", rule.status.map(serde_json::Value::from)),
                    ("reason", rule.reason.clone().map(serde_json::Value::from)),
                    ("retryAfter", rule.retry_after.map(serde_json::Value::from)),
                    (
                        "latency",
                        rule.latency.map(|d| {
                            serde_json::Value::from(
                                crate::duration::GoDuration::from_std(d).to_string(),
                            )
                        }),
                    ),
                    ("times", rule.times.map(serde_json::Value::from)),
                ];
                for (key, value) in fields {
                    if let Some(value) = value {
                        body[key] = value;
                    }
                }
                http::Request::post("/fake-apiserver/v1/faults")
                    .header("content-type", "application/json")
                    .body(body.to_string().into_bytes())
            }
            None => http::Request::delete("/fake-apiserver/v1/faults").body(Vec::new()),
        }
        .map_err(kube::Error::HttpError)?;
        self.admin.send(request).await.map(|_| ())
    }

    /// Creates the namespaces, nodes, claims and PVs of `scenario.cluster`.
    pub(crate) async fn seed(&self, scenario: &Scenario) -> Result<(), RunError> {
        let setup = |what: String| move |e: kube::Error| RunError::Setup(format!("{what}: {e}"));
        for namespace in scenario.namespaces() {
            let object = Namespace {
                metadata: ObjectMeta {
                    name: Some(namespace.clone()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            match self.admin.create(None, &object).await {
                Ok(_) => self
                    .created_namespaces
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(namespace.clone()),
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(e) => return Err(setup(format!("cannot create namespace {namespace}"))(e)),
            }
        }
        for node in &scenario.nodes {
            self.create_node(node)
                .await
                .map_err(setup(format!("cannot create node {node}")))?;
        }
        let by_claim: BTreeMap<&ClaimName, &Volume> = scenario
            .volumes
            .iter()
            .rev()
            .filter_map(|v| Some((v.claim.as_ref()?, v)))
            .collect();
        let mut uids = BTreeMap::new();
        for claim in &scenario.claims {
            let uid = self
                .create_claim(by_claim.get(claim).copied(), claim)
                .await
                .map_err(setup(format!("cannot create claim {claim}")))?;
            uids.insert(claim.clone(), uid);
        }
        let seeded = Seeded::new(scenario.seed);
        for volume in &scenario.volumes {
            let claim_ref = volume.claim.as_ref().map(|claim| ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("PersistentVolumeClaim".to_owned()),
                namespace: Some(claim.namespace().to_owned()),
                name: Some(claim.name().to_owned()),
                uid: Some(
                    uids.get(claim)
                        .cloned()
                        .unwrap_or_else(|| seeded.uid(&claim.to_string())),
                ),
                ..ObjectReference::default()
            });
            let pv = PersistentVolume {
                metadata: ObjectMeta {
                    name: Some(volume.id.to_string()),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeSpec {
                    access_modes: Some(vec![access_mode_name(volume.mode).to_owned()]),
                    capacity: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity("1Gi".to_owned()),
                    )])),
                    claim_ref,
                    csi: Some(CSIPersistentVolumeSource {
                        driver: self.driver_name.clone(),
                        volume_handle: volume.id.to_string(),
                        volume_attributes: Some(volume.context(volume.claim_in_context)),
                        ..CSIPersistentVolumeSource::default()
                    }),
                    persistent_volume_reclaim_policy: Some("Delete".to_owned()),
                    // Raw block, as KubeVirt's migratable volumes are: the external-attacher
                    // then asks for a block capability.
                    volume_mode: Some("Block".to_owned()),
                    ..PersistentVolumeSpec::default()
                }),
                status: None,
            };
            self.admin
                .replace(None, volume.id.as_str(), &pv)
                .await
                .map_err(setup(format!("cannot create volume {}", volume.id)))?;
        }
        Ok(())
    }

    /// Creates a Node object.
    pub(crate) async fn create_node(&self, node: &NodeName) -> Result<(), kube::Error> {
        let object = Node {
            metadata: ObjectMeta {
                name: Some(node.to_string()),
                ..ObjectMeta::default()
            },
            ..Node::default()
        };
        self.admin
            .replace(None, node.as_str(), &object)
            .await
            .map(|_| ())
    }

    /// Deletes a Node object; one already gone (an earlier unobserved deletion) is fine.
    pub(crate) async fn delete_node(&self, node: &NodeName) -> Result<(), kube::Error> {
        match self.admin.delete::<Node>(None, node.as_str()).await {
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Creates the claim (a fresh uid) bound to `volume` (the first volume naming it);
    /// returns its uid.
    pub(crate) async fn create_claim(
        &self,
        volume: Option<&Volume>,
        claim: &ClaimName,
    ) -> Result<String, kube::Error> {
        let mode = volume.map(|v| v.mode).unwrap_or(AccessMode::Rwo);
        let object = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(claim.name().to_owned()),
                namespace: Some(claim.namespace().to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec![access_mode_name(mode).to_owned()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity("1Gi".to_owned()),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                volume_name: volume.map(|v| v.id.to_string()),
                ..PersistentVolumeClaimSpec::default()
            }),
            status: None,
        };
        let created = self
            .admin
            .replace(Some(claim.namespace()), claim.name(), &object)
            .await?;
        // Only the uid is read from the answer.
        #[derive(serde::Deserialize)]
        struct Created {
            #[serde(default)]
            metadata: CreatedMeta,
        }
        #[derive(serde::Deserialize, Default)]
        struct CreatedMeta {
            #[serde(default)]
            uid: Option<String>,
        }
        let created: Created = serde_json::from_slice(&created).map_err(kube::Error::SerdeError)?;
        Ok(created.metadata.uid.unwrap_or_default())
    }

    /// Deletes a claim.
    pub(crate) async fn delete_claim(&self, claim: &ClaimName) -> Result<(), kube::Error> {
        self.admin
            .delete::<PersistentVolumeClaim>(Some(claim.namespace()), claim.name())
            .await
            .map(|_| ())
    }

    /// Against another API server: deletes what the scenario created, the namespaces it
    /// created included (one that was there before is left, emptied of the scenario's claims
    /// and events).
    pub(crate) async fn clean(&self, scenario: &Scenario) {
        let attachments: Api<VolumeAttachment> = Api::all(self.admin.client.clone());
        if let Ok(list) = attachments.list(&ListParams::default()).await {
            for va in list.items {
                let ours = va.spec.attacher == self.driver_name
                    && va
                        .spec
                        .source
                        .persistent_volume_name
                        .as_ref()
                        .is_some_and(|pv| scenario.volume(&VolumeId::new(pv.clone())).is_some());
                if ours && let Some(name) = va.metadata.name {
                    let _ = attachments.delete(&name, &DeleteParams::default()).await;
                }
            }
        }
        let pvs: Api<PersistentVolume> = Api::all(self.admin.client.clone());
        for volume in &scenario.volumes {
            let _ = pvs
                .delete(volume.id.as_str(), &DeleteParams::default())
                .await;
        }
        let nodes: Api<Node> = Api::all(self.admin.client.clone());
        let mut all_nodes: BTreeSet<String> =
            scenario.nodes.iter().map(|n| n.to_string()).collect();
        for step in &scenario.steps {
            if let Action::AddNode(node) = &step.action {
                all_nodes.insert(node.to_string());
            }
        }
        for node in all_nodes {
            let _ = nodes.delete(&node, &DeleteParams::default()).await;
        }
        for namespace in scenario.namespaces() {
            let claims: Api<PersistentVolumeClaim> =
                Api::namespaced(self.admin.client.clone(), &namespace);
            let events: Api<Event> = Api::namespaced(self.admin.client.clone(), &namespace);
            let _ = claims
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await;
            let _ = events
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await;
        }
        let created = std::mem::take(
            &mut *self
                .created_namespaces
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let namespaces: Api<Namespace> = Api::all(self.admin.client.clone());
        for namespace in created {
            let _ = namespaces
                .delete(&namespace, &DeleteParams::default())
                .await;
        }
    }
}

/// The Kubernetes name of an access mode.
pub(crate) fn access_mode_name(mode: AccessMode) -> &'static str {
    match mode {
        AccessMode::Rwo => "ReadWriteOnce",
        AccessMode::Rwx => "ReadWriteMany",
    }
}
