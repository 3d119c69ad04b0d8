//! Routing the Controller RPCs this crate does not serve to the driver's own Controller
//! service: behaviour added by wrapping, as tower does (docs/csi.md §1).

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use tonic::body::Body;
use tonic::server::NamedService;
use tower::Service;

/// The three Controller RPCs the model serves.
const SERVED: [&str; 3] = [
    "/csi.v1.Controller/ControllerPublishVolume",
    "/csi.v1.Controller/ControllerUnpublishVolume",
    "/csi.v1.Controller/ControllerGetCapabilities",
];

/// One Controller service out of two: the model's for the RPCs it serves, `theirs` (the
/// driver's own generated Controller server, e.g. for CreateVolume) for every other one.
///
/// ```no_run
/// # fn demo<T>(driver: csi_events::csi::CsiDriver<csi_events::csi::AnyVolume>, theirs: T)
/// # where T: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = std::convert::Infallible> + Clone + Send + Sync + 'static, T::Future: Send {
/// use csi_events::csi::Delegate;
/// let controller = Delegate::new(driver.controller_server(), theirs);
/// let router = tonic::transport::Server::builder().add_service(controller);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Delegate<Ours, Theirs> {
    ours: Ours,
    theirs: Theirs,
}

impl<Ours, Theirs> Delegate<Ours, Theirs> {
    /// Routes the served RPCs to `ours`, the rest to `theirs`.
    pub fn new(ours: Ours, theirs: Theirs) -> Self {
        Self { ours, theirs }
    }
}

impl<Ours, Theirs> NamedService for Delegate<Ours, Theirs> {
    const NAME: &'static str = "csi.v1.Controller";
}

impl<Ours, Theirs> Service<http::Request<Body>> for Delegate<Ours, Theirs>
where
    Ours: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    Ours::Future: Send + 'static,
    Theirs: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    Theirs::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each call readies the service it goes to (below), on a clone.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        use tower::ServiceExt;
        if SERVED.contains(&request.uri().path()) {
            self.ours.clone().oneshot(request).boxed()
        } else {
            self.theirs.clone().oneshot(request).boxed()
        }
    }
}
