//! The fake cluster handle: one [`ApiServer`] with its control layer (fault rules, request
//! log) and clock, and the ways in (in-process `kube::Client`, HTTP).

use std::fmt;

use crate::api::{ApiServer, LoadError};
use crate::clock::{SharedClock, SystemClock, VirtualClock};
use crate::control::{
    ApiService, Control, ControlLayer, ControlService, Faults, RequestLog, RequestRecord,
};
use crate::transport::{self, HttpOptions, HttpServer, TransportError};

/// A fake cluster: the API server, its fault rules, its request log and its clock.
///
/// Cheap to clone; clones share everything.
///
/// ```
/// # async fn demo() {
/// use fake_apiserver::control::{Fault, Verb};
/// use fake_apiserver::{FakeCluster, VirtualClock};
/// use k8s_openapi::api::core::v1::Node;
/// use std::sync::Arc;
///
/// let clock = VirtualClock::new("2026-01-01T00:00:00Z".parse().unwrap());
/// let cluster = FakeCluster::new(Arc::new(clock.clone()));
/// cluster.faults().add(Fault::new(Verb::Get, "nodes").status(503).times(1));
/// let nodes: kube::Api<Node> = kube::Api::all(cluster.client());
/// assert!(nodes.get("n1").await.is_err());
/// assert_eq!(cluster.requests()[0].status, Some(http::StatusCode::SERVICE_UNAVAILABLE));
/// # }
/// ```
#[derive(Clone)]
pub struct FakeCluster {
    server: ApiServer,
    control: Control,
}

impl fmt::Debug for FakeCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeCluster")
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}

impl Default for FakeCluster {
    /// An empty cluster on real time ([`SystemClock`]).
    fn default() -> Self {
        Self::new(std::sync::Arc::new(SystemClock))
    }
}

impl FakeCluster {
    /// An empty cluster whose objects are stamped, and faulted requests delayed, by `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self::from_server(ApiServer::new(clock))
    }

    /// An empty cluster as [`new`](Self::new) whose uids and generated names derive from
    /// `seed` (see [`ApiServer::seeded`]).
    pub fn seeded(clock: SharedClock, seed: u64) -> Self {
        Self::from_server(ApiServer::seeded(clock, seed))
    }

    /// An empty cluster on a [`VirtualClock`] standing at `start`, and that clock (move it
    /// with [`VirtualClock::advance`]).
    ///
    /// ```
    /// let (cluster, clock) = fake_apiserver::FakeCluster::virtual_at("2026-01-01T00:00:00Z".parse().unwrap());
    /// use fake_apiserver::Clock;
    /// assert_eq!(cluster.clock().now(), clock.now());
    /// ```
    pub fn virtual_at(start: jiff::Timestamp) -> (Self, VirtualClock) {
        let clock = VirtualClock::new(start);
        (Self::new(std::sync::Arc::new(clock.clone())), clock)
    }

    /// A cluster around an existing server (its clock is used for latency too).
    pub fn from_server(server: ApiServer) -> Self {
        let control = Control::new(server.clock().clone());
        Self { server, control }
    }

    /// The API server itself (no fault injection, no log).
    pub fn server(&self) -> &ApiServer {
        &self.server
    }

    /// The control layer's shared state.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The server as a tower service with fault injection and request log applied.
    pub fn service(&self) -> ControlService<ApiService> {
        tower::Layer::layer(
            &ControlLayer::new(self.control.clone()),
            ApiService::new(self.server.clone()),
        )
    }

    /// A `kube::Client` served in this process (no sockets, no retry layer; default
    /// namespace `default`). A dropped-connection fault surfaces as
    /// `kube::Error::Service` wrapping [`ConnectionDropped`](crate::control::ConnectionDropped).
    pub fn client(&self) -> kube::Client {
        transport::service_client(self.service())
    }

    /// The fault rules.
    pub fn faults(&self) -> &Faults {
        self.control.faults()
    }

    /// The request log.
    pub fn request_log(&self) -> &RequestLog {
        self.control.log()
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.control.log().records()
    }

    /// Forgets the requests logged so far.
    pub fn clear_requests(&self) {
        self.control.log().clear()
    }

    /// Loads the objects of a multi-document YAML text into the store, for seeding; returns
    /// how many objects were loaded (see [`ApiServer::load_yaml`]).
    ///
    /// ```
    /// let cluster = fake_apiserver::FakeCluster::default();
    /// let loaded = cluster.load_yaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns1\n").unwrap();
    /// assert_eq!(loaded, 1);
    /// ```
    pub fn load_yaml(&self, yaml: &str) -> Result<usize, LoadError> {
        self.server.load_yaml(yaml)
    }

    /// The server's clock.
    pub fn clock(&self) -> &SharedClock {
        self.server.clock()
    }

    /// Serves this cluster over HTTP (see [`transport::serve_http`]): bearer-token and
    /// body-limit layers, then the control layer and the API server.
    pub async fn serve_http(&self, options: HttpOptions) -> Result<HttpServer, TransportError> {
        transport::serve_http(self, options).await
    }
}

impl transport::Servable for FakeCluster {
    fn control(&self) -> &Control {
        &self.control
    }

    fn service(&self) -> ControlService<ApiService> {
        FakeCluster::service(self)
    }
}
