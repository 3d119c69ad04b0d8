//! Black-box mode: the runner plays kube-controller-manager and the external-attacher against
//! a CSI driver in another process, over its unix socket (docs/csi.md §5).
//!
//! An attach creates the VolumeAttachment kube-controller-manager would (`csi-` + hex sha256
//! of volume handle, driver and node), adds the attacher's finalizer and node-id annotation,
//! calls ControllerPublishVolume with what the attacher builds from the PV and the CSINode,
//! and writes the answer into the status. A detach deletes the VolumeAttachment, calls
//! ControllerUnpublishVolume and, on OK, clears the status and removes the finalizer. Time is
//! real: `advance` waits. A restart stops the driver process (SIGTERM) and starts it again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::storage::v1::{
    CSINode, CSINodeDriver, CSINodeSpec, VolumeAttachment, VolumeAttachmentSource,
    VolumeAttachmentSpec,
};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use sha2::{Digest, Sha256};
use tonic::transport::Channel;

use super::driver::{Driver, PublishRequest, Restarted};
use super::readings::Readings;
use super::wire::refusal;
use crate::clock::{Clock, VirtualClock};
use crate::csi::connect_unix;
use crate::csi::proto::controller::controller_client::ControllerClient;
use crate::csi::proto::identity::identity_client::IdentityClient;
use crate::csi::proto::{ControllerUnpublishVolumeRequest, ProbeRequest};
use crate::ids::{NodeName, VolumeId};
use crate::model::{Code, RpcError};

/// How long a driver may take to answer Probe ready, and to exit after SIGTERM.
const START_LIMIT: Duration = Duration::from_secs(30);
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// Quiet time that ends a step's wait for Event writes, and the longest wait.
const QUIET: Duration = Duration::from_millis(200);
const QUIET_LIMIT: Duration = Duration::from_secs(10);
/// How finely an `advance` moves the runner's clock along with real time.
const ADVANCE_SLICE: Duration = Duration::from_millis(50);

/// The VolumeAttachment name kube-controller-manager gives an attachment.
///
/// ```
/// use csi_events::scenario::blackbox::attachment_name;
/// let name = attachment_name("pvc-1", "rds.csi.srvlab.io", "node-a");
/// assert!(name.starts_with("csi-") && name.len() == 4 + 64);
/// ```
pub fn attachment_name(volume_handle: &str, driver: &str, node: &str) -> String {
    let digest = Sha256::digest(format!("{volume_handle}{driver}{node}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("csi-{hex}")
}

/// The external-attacher's finalizer for `driver`: every character outside `[A-Za-z0-9-]`
/// becomes `-`.
///
/// ```
/// use csi_events::scenario::blackbox::attacher_finalizer;
/// assert_eq!(attacher_finalizer("rds.csi.srvlab.io"), "external-attacher/rds-csi-srvlab-io");
/// ```
pub fn attacher_finalizer(driver: &str) -> String {
    let sanitised: String = driver
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("external-attacher/{sanitised}")
}

/// Where the driver is.
#[derive(Debug, Clone)]
pub enum Launch {
    /// A driver already running on this socket.
    Endpoint(PathBuf),
    /// A command started per scenario: `{endpoint}` and `{kubeconfig}` are filled in.
    Command(String),
}

/// A driver process (or socket) the runner drives as Kubernetes would.
pub struct BlackBox {
    admin: kube::Client,
    namespaces: Vec<String>,
    driver_name: String,
    launch: Launch,
    kubeconfig: PathBuf,
    socket: PathBuf,
    child: Option<Child>,
    client: Option<ControllerClient<Channel>>,
    /// The VolumeAttachments this runner made and has not detached, by node.
    made: BTreeMap<NodeName, BTreeSet<VolumeId>>,
    /// Real time and the runner's clock at the start: `advance` waits until real time has
    /// caught up with the clock, so the driver's timers and the steps stay in step however
    /// long the calls and waits in between took.
    real_start: tokio::time::Instant,
    virtual_start: jiff::Timestamp,
}

fn unavailable(why: impl Into<String>) -> RpcError {
    RpcError::new(Code::Unavailable, why)
}

impl BlackBox {
    /// Connects to (or starts) the driver and waits until Probe says ready. `dir` holds the
    /// socket of a started driver.
    pub async fn start(
        admin: kube::Client,
        namespaces: Vec<String>,
        driver_name: String,
        launch: Launch,
        kubeconfig: PathBuf,
        dir: &Path,
        virtual_start: jiff::Timestamp,
    ) -> Result<Self, RpcError> {
        let socket = match &launch {
            Launch::Endpoint(path) => path.clone(),
            Launch::Command(_) => dir.join("csi.sock"),
        };
        let mut driver = Self {
            admin,
            namespaces,
            driver_name,
            launch,
            kubeconfig,
            socket,
            child: None,
            client: None,
            made: BTreeMap::new(),
            real_start: tokio::time::Instant::now(),
            virtual_start,
        };
        driver.up().await?;
        Ok(driver)
    }

    /// Starts the command (if any) and waits for Probe ready.
    async fn up(&mut self) -> Result<(), RpcError> {
        if let Launch::Command(template) = &self.launch {
            let command = template
                .replace("{endpoint}", &format!("unix://{}", self.socket.display()))
                .replace("{kubeconfig}", &self.kubeconfig.display().to_string());
            let child = Command::new("sh")
                .arg("-c")
                .arg(format!("exec {command}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| unavailable(format!("cannot start the driver `{command}`: {e}")))?;
            self.child = Some(child);
        }
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(unavailable(format!(
                    "the driver exited before it was ready ({status})"
                )));
            }
            if self.socket.exists()
                && let Ok(channel) = connect_unix(&self.socket).await
            {
                let ready = IdentityClient::new(channel.clone())
                    .probe(ProbeRequest {})
                    .await
                    .ok()
                    .and_then(|r| r.into_inner().ready)
                    .is_some_and(|r| r.value);
                if ready {
                    self.client = Some(ControllerClient::new(channel));
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(unavailable(format!(
                    "the driver on {} was not ready within {}s",
                    self.socket.display(),
                    START_LIMIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then wait for the exit (bounded; killed after that).
    async fn down(&mut self) {
        self.client = None;
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = tokio::time::Instant::now() + STOP_LIMIT;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(
            "the driver did not exit within {}s of SIGTERM: killed",
            STOP_LIMIT.as_secs()
        );
        let _ = child.kill();
        let _ = child.wait();
    }

    fn client(&self) -> Result<ControllerClient<Channel>, RpcError> {
        self.client
            .clone()
            .ok_or_else(|| unavailable("the driver is not running"))
    }

    fn attachments(&self) -> Api<VolumeAttachment> {
        Api::all(self.admin.clone())
    }

    /// What the Events look like now: (namespace, name, count).
    async fn events_now(&self) -> BTreeSet<(String, String, i32)> {
        let mut seen = BTreeSet::new();
        for namespace in &self.namespaces {
            let api: Api<Event> = Api::namespaced(self.admin.clone(), namespace);
            if let Ok(list) = api.list(&ListParams::default()).await {
                for event in list.items {
                    seen.insert((
                        namespace.clone(),
                        event.metadata.name.unwrap_or_default(),
                        event.count.unwrap_or(1),
                    ));
                }
            }
        }
        seen
    }
}

impl Drop for BlackBox {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Driver for BlackBox {
    async fn publish(&mut self, request: PublishRequest) -> Result<(), RpcError> {
        let api = self.attachments();
        let name = attachment_name(
            request.volume.as_str(),
            &self.driver_name,
            request.node.as_str(),
        );
        let attachment = VolumeAttachment {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            spec: VolumeAttachmentSpec {
                attacher: self.driver_name.clone(),
                node_name: request.node.to_string(),
                source: VolumeAttachmentSource {
                    persistent_volume_name: Some(request.volume.to_string()),
                    ..VolumeAttachmentSource::default()
                },
            },
            status: None,
        };
        match api.create(&PostParams::default(), &attachment).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => {
                return Err(unavailable(format!(
                    "cannot create VolumeAttachment {name}: {error}"
                )));
            }
        }
        let marks = json!({"metadata": {
            "finalizers": [attacher_finalizer(&self.driver_name)],
            "annotations": {"csi.alpha.kubernetes.io/node-id": request.node.as_str()},
        }});
        let _ = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&marks))
            .await;
        let message = request.to_csi();
        let answer = self.client()?.controller_publish_volume(message).await;
        if answer.is_ok() {
            self.made
                .entry(request.node.clone())
                .or_default()
                .insert(request.volume.clone());
        }
        let status = match &answer {
            Ok(response) => json!({"status": {
                "attached": true,
                "attachmentMetadata": response.get_ref().publish_context,
                "attachError": null,
            }}),
            Err(status) => json!({"status": {
                "attached": false,
                "attachError": {"message": status.message(), "time": jiff::Timestamp::now().to_string()},
            }}),
        };
        let _ = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await;
        answer.map(|_| ()).map_err(refusal)
    }

    async fn unpublish(&mut self, volume: &VolumeId, node: &NodeName) -> Result<(), RpcError> {
        let api = self.attachments();
        let name = attachment_name(volume.as_str(), &self.driver_name, node.as_str());
        let _ = api.delete(&name, &DeleteParams::default()).await;
        let message = ControllerUnpublishVolumeRequest {
            volume_id: volume.to_string(),
            node_id: node.to_string(),
            secrets: HashMap::new(),
        };
        let answer = self.client()?.controller_unpublish_volume(message).await;
        match &answer {
            Ok(_) => {
                if let Some(volumes) = self.made.get_mut(node) {
                    volumes.remove(volume);
                }
                let status = json!({"status": {"attached": false, "attachmentMetadata": null, "attachError": null, "detachError": null}});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
                let finalizers = json!({"metadata": {"finalizers": null}});
                let _ = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&finalizers))
                    .await;
            }
            Err(status) => {
                let status = json!({"status": {"detachError": {"message": status.message(), "time": jiff::Timestamp::now().to_string()}}});
                let _ = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await;
            }
        }
        answer.map(|_| ()).map_err(refusal)
    }

    async fn node_added(&mut self, node: &NodeName) {
        let api: Api<CSINode> = Api::all(self.admin.clone());
        let object = CSINode {
            metadata: ObjectMeta {
                name: Some(node.to_string()),
                ..ObjectMeta::default()
            },
            spec: CSINodeSpec {
                drivers: vec![CSINodeDriver {
                    name: self.driver_name.clone(),
                    node_id: node.to_string(),
                    ..CSINodeDriver::default()
                }],
            },
            ..CSINode::default()
        };
        let _ = api.create(&PostParams::default(), &object).await;
    }

    async fn node_deleted(&mut self, node: &NodeName) {
        let api: Api<CSINode> = Api::all(self.admin.clone());
        let _ = api.delete(node.as_str(), &DeleteParams::default()).await;
        // kube-controller-manager detaches what was attached to a deleted node. First let the
        // driver's node watcher see the deletion (its events settle), so the detach finds
        // the attachment already cleared, as it does in a cluster.
        self.quiesce().await;
        let volumes: Vec<VolumeId> = self
            .made
            .remove(node)
            .map(|volumes| volumes.into_iter().collect())
            .unwrap_or_default();
        for volume in volumes {
            let _ = self.unpublish(&volume, node).await;
        }
    }

    async fn restart(&mut self, down: Duration) -> Restarted {
        self.down().await;
        if !down.is_zero() {
            tokio::time::sleep(down).await;
        }
        Restarted {
            stopped: Readings::default(),
            result: self.up().await,
        }
    }

    fn real_time(&self) -> bool {
        true
    }

    async fn advance(&mut self, clock: &VirtualClock, by: Duration) {
        // In slices, so the clock follows real time and an Event landing mid-advance is
        // stamped when it landed.
        let mut left = by;
        while !left.is_zero() {
            let slice = left.min(ADVANCE_SLICE);
            let offset = clock
                .now()
                .duration_since(self.virtual_start)
                .unsigned_abs()
                .saturating_add(slice);
            tokio::time::sleep_until(self.real_start + offset).await;
            clock.advance(slice).await;
            left -= slice;
        }
    }

    async fn quiesce(&mut self) {
        let deadline = tokio::time::Instant::now() + QUIET_LIMIT;
        let mut last = self.events_now().await;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(QUIET).await;
            let now = self.events_now().await;
            if now == last {
                return;
            }
            last = now;
        }
    }

    async fn stop(&mut self) {
        self.down().await;
    }

    async fn attached(&mut self) -> Option<BTreeSet<(VolumeId, NodeName)>> {
        None
    }

    async fn attached_to(&mut self, _volume: &VolumeId) -> Option<Vec<NodeName>> {
        None
    }

    async fn metrics(&mut self) -> Readings {
        Readings::default()
    }

    fn kept_attachments(&self) -> Option<BTreeSet<(VolumeId, NodeName)>> {
        Some(
            self.made
                .iter()
                .flat_map(|(node, volumes)| volumes.iter().map(|v| (v.clone(), node.clone())))
                .collect(),
        )
    }
}

/// Which steps black-box mode cannot play, and why (refused before anything runs).
pub fn refusal_of(action: &super::plan::Action, launch: &Launch) -> Option<&'static str> {
    use super::plan::Action;
    match action {
        Action::DeleteNode {
            observed: false, ..
        } => Some(
            "`observed: false` cannot be played against a driver in another process: it cannot be made to miss a watch event",
        ),
        Action::ExpectMetric { .. } => Some(
            "the runner cannot read the metrics of a driver in another process (no --driver-metrics endpoint)",
        ),
        Action::RestartController { .. } if matches!(launch, Launch::Endpoint(_)) => Some(
            "a driver reached by --csi-endpoint cannot be restarted by the runner: use --driver-cmd",
        ),
        _ => None,
    }
}
