//! The CSI Controller service: ControllerGetCapabilities, ControllerPublishVolume and
//! ControllerUnpublishVolume over the model (docs/csi.md §2, §3).
//!
//! A publish reads straight through: [`check_publish`] (the error table, in its order) →
//! the in-flight guard (ABORTED) → [`Storage::volume_exists`] (NOT_FOUND) → the access mode
//! the volume already has on this node (ALREADY_EXISTS) → the model's decision → the
//! storage's publish context.

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::driver::{CsiDriver, Shared};
use super::proto::controller::controller_server::Controller as ControllerRpc;
use super::proto::controller::controller_server::ControllerServer;
use super::proto::controller_service_capability::{self, rpc};
use super::proto::volume_capability::AccessType;
use super::proto::volume_capability::access_mode::Mode;
use super::proto::{
    ControllerGetCapabilitiesRequest, ControllerGetCapabilitiesResponse,
    ControllerPublishVolumeRequest, ControllerPublishVolumeResponse, ControllerServiceCapability,
    ControllerUnpublishVolumeRequest, ControllerUnpublishVolumeResponse,
};
use super::storage::Storage;
use crate::ids::{NodeName, VolumeId};
use crate::model::{AccessMode, Controller, Publish, RpcError};

/// The request metadata key a simulation sets to tell the model how long a publish took
/// (whole nanoseconds); read only with [`CsiConfig::took_from_metadata`](super::CsiConfig).
pub const TOOK_METADATA: &str = "csi-events-took-nanos";

/// The Controller service of a [`CsiDriver`] (mount it with
/// [`CsiDriver::controller_server`]).
pub struct ControllerService<S> {
    driver: CsiDriver<S>,
}

impl<S: Storage> ControllerService<S> {
    pub(crate) fn new(driver: CsiDriver<S>) -> Self {
        Self { driver }
    }

    fn controller(&self) -> Result<&Controller, Status> {
        self.driver.controller().ok_or_else(|| {
            Status::unavailable(
                "the controller is starting: its state is being rebuilt from the cluster; retry shortly",
            )
        })
    }
}

impl<S: Storage> CsiDriver<S> {
    /// The Controller service (the three RPCs it serves; wrap it in
    /// [`Delegate`](super::Delegate) to route the others to your own implementation).
    pub fn controller_server(&self) -> ControllerServer<ControllerService<S>> {
        ControllerServer::new(ControllerService::new(self.clone()))
    }
}

/// The CSI spec's name of an access mode.
fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Unknown => "UNKNOWN",
        Mode::SingleNodeWriter => "SINGLE_NODE_WRITER",
        Mode::SingleNodeReaderOnly => "SINGLE_NODE_READER_ONLY",
        Mode::MultiNodeReaderOnly => "MULTI_NODE_READER_ONLY",
        Mode::MultiNodeSingleWriter => "MULTI_NODE_SINGLE_WRITER",
        Mode::MultiNodeMultiWriter => "MULTI_NODE_MULTI_WRITER",
        Mode::SingleNodeSingleWriter => "SINGLE_NODE_SINGLE_WRITER",
        Mode::SingleNodeMultiWriter => "SINGLE_NODE_MULTI_WRITER",
    }
}

/// A checked ControllerPublishVolume request.
struct Checked {
    volume: VolumeId,
    node: NodeName,
    mode: AccessMode,
}

/// The request-only rows of the error table, in order (docs/csi.md §2).
fn check_publish(request: &ControllerPublishVolumeRequest) -> Result<Checked, Status> {
    if request.volume_id.is_empty() {
        return Err(Status::invalid_argument("volume_id is required"));
    }
    if request.node_id.is_empty() {
        return Err(Status::invalid_argument("node_id is required"));
    }
    let Some(capability) = request
        .volume_capability
        .as_ref()
        .filter(|c| c.access_type.is_some())
    else {
        return Err(Status::invalid_argument("volume_capability is required"));
    };
    let raw = capability.access_mode.map(|m| m.mode).unwrap_or(0);
    let mode = match Mode::try_from(raw) {
        Ok(Mode::SingleNodeWriter | Mode::SingleNodeSingleWriter | Mode::SingleNodeMultiWriter) => {
            AccessMode::Rwo
        }
        Ok(Mode::MultiNodeMultiWriter) => AccessMode::Rwx,
        Ok(other) => {
            return Err(Status::invalid_argument(format!(
                "access mode {} is not supported",
                mode_name(other)
            )));
        }
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "access mode {raw} is not supported"
            )));
        }
    };
    if mode == AccessMode::Rwx && matches!(capability.access_type, Some(AccessType::Mount(_))) {
        return Err(Status::invalid_argument(
            "MULTI_NODE_MULTI_WRITER needs block access: a filesystem cannot be written from two nodes",
        ));
    }
    if request.readonly {
        return Err(Status::invalid_argument(
            "readonly publish is not supported",
        ));
    }
    Ok(Checked {
        volume: VolumeId::new(request.volume_id.clone()),
        node: NodeName::from(request.node_id.clone()),
        mode,
    })
}

/// Holds a volume for one call; a second call on it meanwhile answers ABORTED. Released on
/// drop, whatever way the call ends.
struct InFlight<'a, S> {
    shared: &'a Shared<S>,
    volume: String,
}

impl<'a, S> InFlight<'a, S> {
    fn take(shared: &'a Shared<S>, volume: &str) -> Result<Self, Status> {
        let mut busy = shared
            .in_flight
            .lock()
            // The set is plain data and stays consistent whatever panicked while holding it.
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !busy.insert(volume.to_owned()) {
            return Err(Status::aborted(format!(
                "an operation for volume {volume} is already in progress"
            )));
        }
        Ok(Self {
            shared,
            volume: volume.to_owned(),
        })
    }
}

impl<S> Drop for InFlight<'_, S> {
    fn drop(&mut self) {
        self.shared
            .in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&self.volume);
    }
}

fn status(error: RpcError) -> Status {
    error.into()
}

/// The RPC's own duration on the clock, or the simulation's `took` metadata when enabled.
fn took<S>(
    shared: &Shared<S>,
    metadata: &tonic::metadata::MetadataMap,
    started: jiff::Timestamp,
) -> Duration {
    if shared.config.took_from_metadata
        && let Some(text) = metadata.get(TOOK_METADATA).and_then(|v| v.to_str().ok())
        && let Ok(nanos) = text.parse::<u64>()
    {
        return Duration::from_nanos(nanos);
    }
    shared
        .config
        .clock
        .now()
        .duration_since(started)
        .unsigned_abs()
}

#[tonic::async_trait]
impl<S: Storage> ControllerRpc for ControllerService<S> {
    async fn controller_publish_volume(
        &self,
        request: Request<ControllerPublishVolumeRequest>,
    ) -> Result<Response<ControllerPublishVolumeResponse>, Status> {
        let shared = &*self.driver.shared;
        let started = shared.config.clock.now();
        let (metadata, _, request) = request.into_parts();
        let checked = check_publish(&request)?;
        let _held = InFlight::take(shared, &request.volume_id)?;
        let controller = self.controller()?;
        if !shared
            .storage
            .volume_exists(&checked.volume)
            .await
            .map_err(status)?
        {
            return Err(Status::not_found(format!(
                "volume {} not found",
                checked.volume
            )));
        }
        if let Some(view) = controller.volume(&checked.volume)
            && view.nodes.contains(&checked.node)
            && view.mode != checked.mode
        {
            return Err(Status::already_exists(format!(
                "volume {} is published to node {} as {}; this request asks for {}",
                checked.volume, checked.node, view.mode, checked.mode
            )));
        }
        let context: BTreeMap<String, String> = request.volume_context.into_iter().collect();
        controller
            .publish(Publish {
                volume: checked.volume.clone(),
                node: checked.node.clone(),
                mode: checked.mode,
                context,
                took: took(shared, &metadata, started),
            })
            .await
            .map_err(status)?;
        let publish_context = shared
            .storage
            .publish_context(&checked.volume, &checked.node)
            .await
            .map_err(status)?;
        Ok(Response::new(ControllerPublishVolumeResponse {
            publish_context,
        }))
    }

    async fn controller_unpublish_volume(
        &self,
        request: Request<ControllerUnpublishVolumeRequest>,
    ) -> Result<Response<ControllerUnpublishVolumeResponse>, Status> {
        let shared = &*self.driver.shared;
        let request = request.into_inner();
        if request.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is required"));
        }
        let _held = InFlight::take(shared, &request.volume_id)?;
        let controller = self.controller()?;
        let volume = VolumeId::new(request.volume_id.clone());
        let nodes: Vec<NodeName> = if request.node_id.is_empty() {
            // From every node, target first: each exactly as its own call would be.
            controller
                .volume(&volume)
                .map(|view| view.nodes.into_iter().rev().collect())
                .unwrap_or_default()
        } else {
            vec![NodeName::from(request.node_id.clone())]
        };
        for node in nodes {
            controller.unpublish(&volume, &node).map_err(status)?;
        }
        Ok(Response::new(ControllerUnpublishVolumeResponse {}))
    }

    async fn controller_get_capabilities(
        &self,
        _request: Request<ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<ControllerGetCapabilitiesResponse>, Status> {
        let publish = ControllerServiceCapability {
            r#type: Some(controller_service_capability::Type::Rpc(
                controller_service_capability::Rpc {
                    r#type: rpc::Type::PublishUnpublishVolume as i32,
                },
            )),
        };
        Ok(Response::new(ControllerGetCapabilitiesResponse {
            capabilities: vec![publish],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csi::proto::VolumeCapability;

    fn request(mode: Mode) -> ControllerPublishVolumeRequest {
        ControllerPublishVolumeRequest {
            volume_id: "pvc-1".to_owned(),
            node_id: "node-a".to_owned(),
            volume_capability: Some(VolumeCapability::block(mode)),
            ..Default::default()
        }
    }

    #[test]
    fn access_modes_map_to_the_model() {
        let rwo = [
            Mode::SingleNodeWriter,
            Mode::SingleNodeSingleWriter,
            Mode::SingleNodeMultiWriter,
        ];
        for mode in rwo {
            assert_eq!(
                check_publish(&request(mode)).ok().map(|c| c.mode),
                Some(AccessMode::Rwo)
            );
        }
        let rwx = check_publish(&request(Mode::MultiNodeMultiWriter)).ok();
        assert_eq!(rwx.map(|c| c.mode), Some(AccessMode::Rwx));
        let refused = check_publish(&request(Mode::MultiNodeReaderOnly)).err();
        assert_eq!(
            refused.map(|s| s.message().to_owned()).as_deref(),
            Some("access mode MULTI_NODE_READER_ONLY is not supported")
        );
    }
}
