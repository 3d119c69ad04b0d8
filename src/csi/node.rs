//! A minimal CSI Node service: NodeGetInfo (the configured node id) and NodeGetCapabilities
//! (none). It exists so tools that learn the node id from the Node service (csi-sanity) can
//! test a controller-only driver; it stages and publishes nothing (docs/csi.md §1).

use tonic::{Request, Response, Status};

use super::driver::CsiDriver;
use super::proto::node::node_server::Node;
use super::proto::node::node_server::NodeServer;
use super::proto::{
    NodeGetCapabilitiesRequest, NodeGetCapabilitiesResponse, NodeGetInfoRequest,
    NodeGetInfoResponse,
};
use super::storage::Storage;

/// The Node service of a [`CsiDriver`] with a node id (mount it with
/// [`CsiDriver::node_server`]).
pub struct NodeService<S> {
    driver: CsiDriver<S>,
}

impl<S: Storage> NodeService<S> {
    pub(crate) fn new(driver: CsiDriver<S>) -> Self {
        Self { driver }
    }
}

impl<S: Storage> CsiDriver<S> {
    /// The minimal Node service, when [`CsiConfig::node_id`](super::CsiConfig::node_id) was set.
    pub fn node_server(&self) -> Option<NodeServer<NodeService<S>>> {
        self.shared
            .config
            .node_id
            .as_ref()
            .map(|_| NodeServer::new(NodeService::new(self.clone())))
    }
}

#[tonic::async_trait]
impl<S: Storage> Node for NodeService<S> {
    async fn node_get_info(
        &self,
        _request: Request<NodeGetInfoRequest>,
    ) -> Result<Response<NodeGetInfoResponse>, Status> {
        Ok(Response::new(NodeGetInfoResponse {
            node_id: self
                .driver
                .shared
                .config
                .node_id
                .clone()
                .unwrap_or_default(),
            max_volumes_per_node: 0,
        }))
    }

    async fn node_get_capabilities(
        &self,
        _request: Request<NodeGetCapabilitiesRequest>,
    ) -> Result<Response<NodeGetCapabilitiesResponse>, Status> {
        Ok(Response::new(NodeGetCapabilitiesResponse {
            capabilities: Vec::new(),
        }))
    }
}
