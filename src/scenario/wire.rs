//! The model reached over the CSI wire in process: every attach and detach is a
//! ControllerPublishVolume / ControllerUnpublishVolume sent by a tonic client over a real unix
//! socket to the crate's CSI services, which hold the same model [`InProcess`] runs
//! (docs/csi.md §7). The transcripts must equal the embedded ones byte for byte:
//! the step's `took` travels as request metadata (the simulation's only hook), everything else
//! is what the external-attacher would send.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tonic::transport::{Channel, Server};

use super::driver::DRIVER_NAME;
use super::driver::{Driver, InProcess, PublishRequest, Restarted};
use super::readings::{NotWritten, Readings};
use crate::csi::proto::controller::controller_client::ControllerClient;
use crate::csi::proto::volume_capability::access_mode::Mode;
use crate::csi::proto::{
    ControllerPublishVolumeRequest, ControllerUnpublishVolumeRequest, VolumeCapability,
};
use crate::csi::{CsiConfig, CsiDriver, PersistentVolumes, TOOK_METADATA, connect_unix};
use crate::ids::{NodeName, VolumeId};
use crate::model::{AccessMode, Code, RpcError};

static SOCKETS: AtomicUsize = AtomicUsize::new(0);

/// The CSI services of one controller process, served on a socket of their own.
struct Served {
    client: ControllerClient<Channel>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    dir: PathBuf,
}

impl Served {
    async fn start(inner: &InProcess) -> Result<Self, RpcError> {
        let unavailable = |why: String| RpcError::new(Code::Unavailable, why);
        let n = SOCKETS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("csi-events-wire-{}-{n}", std::process::id()));
        let path = dir.join("csi.sock");
        let storage = PersistentVolumes::new(inner.client().clone());
        storage.synced().await;
        let config = CsiConfig::new(DRIVER_NAME)
            .clock(inner.shared_clock().clone())
            .took_from_metadata(true);
        let driver = CsiDriver::new(config, storage);
        driver.set_controller(inner.controller().clone());
        let router = Server::builder()
            .add_service(driver.identity_server())
            .add_service(driver.controller_server());
        let listener = crate::csi::bind(&path)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = router
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::UnixListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        let channel = connect_unix(&path)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        Ok(Self {
            client: ControllerClient::new(channel),
            stop: Some(stop),
            task,
            dir,
        })
    }

    async fn shut(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// [`InProcess`] behind the CSI services: the same model, reached over gRPC.
pub struct ThroughCsi {
    inner: InProcess,
    served: Option<Served>,
}

impl ThroughCsi {
    /// Serves `inner`'s controller on a fresh socket.
    pub async fn start(inner: InProcess) -> Result<Self, RpcError> {
        let served = Served::start(&inner).await?;
        Ok(Self {
            inner,
            served: Some(served),
        })
    }

    fn client(&self) -> Result<ControllerClient<Channel>, RpcError> {
        self.served
            .as_ref()
            .map(|s| s.client.clone())
            .ok_or_else(|| RpcError::new(Code::Unavailable, "the CSI service is not running"))
    }
}

impl PublishRequest {
    /// The ControllerPublishVolumeRequest the external-attacher sends for this publish: a
    /// block capability with the access mode (RWX: MULTI_NODE_MULTI_WRITER, RWO:
    /// SINGLE_NODE_WRITER), not read-only, the volume context as it is.
    pub(crate) fn to_csi(&self) -> ControllerPublishVolumeRequest {
        let mode = match self.mode {
            AccessMode::Rwx => Mode::MultiNodeMultiWriter,
            AccessMode::Rwo => Mode::SingleNodeWriter,
        };
        ControllerPublishVolumeRequest {
            volume_id: self.volume.to_string(),
            node_id: self.node.to_string(),
            volume_capability: Some(VolumeCapability::block(mode)),
            readonly: false,
            secrets: HashMap::new(),
            volume_context: self
                .context
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// The gRPC status as the model's refusal (same code name and message; a code the model never
/// returns is `Internal`, with the gRPC code named in the message).
pub(crate) fn refusal(status: tonic::Status) -> RpcError {
    match crate::csi::model_code(status.code()) {
        Some(code) => RpcError::new(code, status.message()),
        None => RpcError::new(
            Code::Internal,
            format!("{:?}: {}", status.code(), status.message()),
        ),
    }
}

impl Driver for ThroughCsi {
    async fn publish(&mut self, request: PublishRequest) -> Result<(), RpcError> {
        let message = request.to_csi();
        let mut call = tonic::Request::new(message);
        let nanos = u64::try_from(request.took.as_nanos()).unwrap_or(u64::MAX);
        call.metadata_mut()
            .insert(TOOK_METADATA, tonic::metadata::MetadataValue::from(nanos));
        let mut client = self.client()?;
        let call = client.controller_publish_volume(call);
        super::driver::on_the_clock(self.inner.clock(), self.inner.controller(), call)
            .await
            .map(|_| ())
            .map_err(refusal)
    }

    async fn unpublish(&mut self, volume: &VolumeId, node: &NodeName) -> Result<(), RpcError> {
        let message = ControllerUnpublishVolumeRequest {
            volume_id: volume.to_string(),
            node_id: node.to_string(),
            secrets: HashMap::new(),
        };
        self.client()?
            .controller_unpublish_volume(message)
            .await
            .map(|_| ())
            .map_err(refusal)
    }

    async fn node_added(&mut self, node: &NodeName) {
        self.inner.node_added(node).await;
    }

    async fn node_deleted(&mut self, node: &NodeName) {
        self.inner.node_deleted(node).await;
    }

    async fn restart(&mut self, down: Duration) -> Restarted {
        if let Some(served) = self.served.take() {
            served.shut().await;
        }
        let mut restarted = self.inner.restart(down).await;
        if restarted.result.is_ok() {
            match Served::start(&self.inner).await {
                Ok(served) => self.served = Some(served),
                Err(error) => restarted.result = Err(error),
            }
        }
        restarted
    }

    async fn quiesce(&mut self) {
        self.inner.quiesce().await;
    }

    async fn stop(&mut self) {
        if let Some(served) = self.served.take() {
            served.shut().await;
        }
        self.inner.stop().await;
    }

    async fn attached(&mut self) -> Option<BTreeSet<(VolumeId, NodeName)>> {
        self.inner.attached().await
    }

    async fn attached_to(&mut self, volume: &VolumeId) -> Option<Vec<NodeName>> {
        self.inner.attached_to(volume).await
    }

    async fn metrics(&mut self) -> Readings {
        self.inner.metrics().await
    }

    async fn not_written(&mut self) -> std::sync::Arc<NotWritten> {
        self.inner.not_written().await
    }
}
