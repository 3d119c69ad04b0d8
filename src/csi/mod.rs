//! The CSI wire path (feature `csi`): the model served as CSI Identity and Controller gRPC
//! services, as the external-attacher calls them (docs/csi.md).
//!
//! A call reads straight through: [`ControllerService`] validates the request (docs/csi.md
//! §Publish, the error table), refuses a second call on a volume while one is in flight,
//! asks the driver's [`Storage`] whether the volume exists, turns the request into the model's
//! [`Publish`](crate::model::Publish) and answers with the model's decision and the storage's
//! publish context. Every other Controller RPC goes to the driver's own service through
//! [`Delegate`], or answers UNIMPLEMENTED.
//!
//! Modules:
//! - [`proto`]: the CSI v1 messages (prost derive, no `protoc`) and generated services;
//! - `storage`: the one trait a driver implements ([`Storage`]) and the default
//!   ([`PersistentVolumes`]);
//! - `driver`: the state the services share ([`CsiDriver`]: the controller once rebuilt,
//!   calls in flight);
//! - `identity`, `controller`, `node`: the services, each with the [`CsiDriver`] method that
//!   mounts it (`identity_server`, …);
//! - `delegate`: routing the Controller RPCs this crate does not serve;
//! - `socket`: serving on and connecting to a unix socket;
//! - `serve`: a whole controller-only driver on a socket ([`serve`], the `csi-events serve`
//!   command).
//!
//! ```no_run
//! use csi_events::csi::{CsiConfig, CsiDriver, PersistentVolumes};
//! # async fn demo(client: kube::Client, controller: csi_events::Controller) -> Result<(), Box<dyn std::error::Error>> {
//! let driver = CsiDriver::new(CsiConfig::new("rds.csi.srvlab.io"), PersistentVolumes::new(client));
//! driver.set_controller(controller); // Probe answers ready from now on
//! let router = tonic::transport::Server::builder()
//!     .add_service(driver.identity_server())
//!     .add_service(driver.controller_server());
//! csi_events::csi::serve_unix(router, "/run/csi/csi.sock".as_ref(), std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod controller;
mod delegate;
mod driver;
mod identity;
mod node;
pub mod proto;
mod serve;
mod socket;
mod storage;

pub use controller::{ControllerService, TOOK_METADATA};
pub use delegate::Delegate;
pub use driver::{CsiConfig, CsiDriver};
pub use identity::IdentityService;
pub use node::NodeService;
pub use serve::{ServeConfig, ServeError, client, serve};
pub use socket::{SocketError, bind, connect_unix, endpoint_path, serve_unix};

/// The model's code for a gRPC status code, when the model has one (a black-box driver may
/// answer codes the model never returns).
///
/// ```
/// use csi_events::csi::model_code;
/// use csi_events::model::Code;
/// assert_eq!(model_code(tonic::Code::FailedPrecondition), Some(Code::FailedPrecondition));
/// assert_eq!(model_code(tonic::Code::ResourceExhausted), None);
/// ```
pub fn model_code(code: tonic::Code) -> Option<crate::model::Code> {
    use crate::model::Code;
    Code::ALL
        .into_iter()
        .find(|ours| tonic::Code::from(*ours) == code)
}
pub use storage::{AnyVolume, PersistentVolumes, Storage};
