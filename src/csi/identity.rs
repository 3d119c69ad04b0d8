//! The CSI Identity service: GetPluginInfo, GetPluginCapabilities (CONTROLLER_SERVICE), Probe
//! (ready once the controller is rebuilt), docs/csi.md §1.

use tonic::{Request, Response, Status};

use super::driver::CsiDriver;
use super::proto::identity::identity_server::Identity;
use super::proto::identity::identity_server::IdentityServer;
use super::proto::plugin_capability::{self, service};
use super::proto::{
    BoolValue, GetPluginCapabilitiesRequest, GetPluginCapabilitiesResponse, GetPluginInfoRequest,
    GetPluginInfoResponse, PluginCapability, ProbeRequest, ProbeResponse,
};
use super::storage::Storage;

/// The Identity service of a [`CsiDriver`] (mount it with
/// [`CsiDriver::identity_server`]).
pub struct IdentityService<S> {
    driver: CsiDriver<S>,
}

impl<S: Storage> IdentityService<S> {
    pub(crate) fn new(driver: CsiDriver<S>) -> Self {
        Self { driver }
    }
}

impl<S: Storage> CsiDriver<S> {
    /// The Identity service.
    pub fn identity_server(&self) -> IdentityServer<IdentityService<S>> {
        IdentityServer::new(IdentityService::new(self.clone()))
    }
}

#[tonic::async_trait]
impl<S: Storage> Identity for IdentityService<S> {
    async fn get_plugin_info(
        &self,
        _request: Request<GetPluginInfoRequest>,
    ) -> Result<Response<GetPluginInfoResponse>, Status> {
        Ok(Response::new(GetPluginInfoResponse {
            name: self.driver.shared.config.name.clone(),
            vendor_version: env!("CARGO_PKG_VERSION").to_owned(),
            manifest: Default::default(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _request: Request<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        let controller = PluginCapability {
            r#type: Some(plugin_capability::Type::Service(
                plugin_capability::Service {
                    r#type: service::Type::ControllerService as i32,
                },
            )),
        };
        Ok(Response::new(GetPluginCapabilitiesResponse {
            capabilities: vec![controller],
        }))
    }

    async fn probe(
        &self,
        _request: Request<ProbeRequest>,
    ) -> Result<Response<ProbeResponse>, Status> {
        Ok(Response::new(ProbeResponse {
            ready: Some(BoolValue {
                value: self.driver.ready(),
            }),
        }))
    }
}
