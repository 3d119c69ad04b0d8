//! csi-events: the Kubernetes Events a CSI driver posts about its volumes' attachment and
//! KubeVirt live-migration lifecycle, exact to the byte and delivered without ever blocking the
//! driver.
//!
//! The data path reads straight through: a driver step calls a `post_*` method on an
//! [`EventPoster`]; the [`LifecycleEvent`] fixes the [`Reason`] (and so the event type) and the
//! exact message; the worker finds the claim, folds repeats, applies the spam filter, writes a
//! core/v1 Event and counts what happened in [`metrics::EventMetrics`].
//!
//! Modules:
//! - [`clock`]: the shared clock (real or virtual time);
//! - [`ids`]: volume, node and claim names as types;
//! - [`reason`]: reasons and their event types;
//! - [`duration`]: Go duration text;
//! - [`event`]: lifecycle events and their messages;
//! - [`poster`]: the non-blocking poster and its worker;
//! - [`metrics`]: Prometheus counters;
//! - [`model`]: the attachment/migration model (publish, unpublish, timers, deleted nodes,
//!   restart) that decides which events to post;
//! - `csi` (feature `csi`): the model served as CSI Identity and Controller gRPC services;
//! - `scenario` (feature `simulation`): scenario files, the runner and its snapshots.

#[cfg(feature = "csi")]
pub mod csi;
pub mod duration;
pub mod event;
pub mod ids;
pub mod metrics;
pub mod model;
pub mod poster;
pub mod reason;
#[cfg(feature = "simulation")]
pub mod scenario;

/// The project's one clock abstraction (the `csi-clock` crate), shared with the fake cluster
/// and the simulation.
pub use csi_clock as clock;

pub use event::{LifecycleEvent, MigrationFailure};
pub use ids::{ClaimName, ClaimNameError, NodeName, VolumeId};
pub use model::{
    AccessMode, Code, Controller, ControllerConfig, MigrationMetrics, MigrationResult, Publish,
    RpcError, VolumeView,
};
pub use poster::{Abandoned, ClaimSource, EventPoster, PosterConfig, RetryPolicy, ShutdownReport};
pub use reason::{EventType, Reason};

/// The README's example is compiled as a doctest, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
