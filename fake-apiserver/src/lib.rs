//! An in-memory Kubernetes API server for tests and simulations.
//!
//! kube-rs uses it in process (a `tower::Service`, no sockets), kubectl and the Python client
//! use it over HTTP (the `fake-apiserver` binary). It is stateful and faithful on every path it
//! serves: see `docs/fake-apiserver.md` for the contract.
//!
//! Module map:
//! - [`clock`]: the project's one clock abstraction (real or virtual time);
//! - [`api`]: the API server proper, request in, response out (routing, verbs, validation);
//! - [`request_info`]: a request parsed once (verb, group/version/resource, namespace, name,
//!   query), carried in its extensions for routing, faults and the log alike;
//! - [`control`]: fault injection and the request log, wrapped around the API server;
//! - [`transport`]: the in-process `kube::Client` and the HTTP server;
//! - [`cluster`]: [`FakeCluster`], the handle tests hold (server + control + clock).

pub mod api;
pub mod cluster;
pub mod control;
pub mod request_info;
pub mod transport;

/// The project's one clock abstraction (the `csi-clock` crate), re-exported.
pub use csi_clock as clock;

pub use api::{ApiServer, ResponseBody};
pub use clock::{Clock, SharedClock, SystemClock, VirtualClock};
pub use cluster::FakeCluster;
