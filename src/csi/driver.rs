//! What the CSI services share: the driver's settings ([`CsiConfig`]), its [`Storage`], the
//! model's [`Controller`] once it is rebuilt, and the volumes with a call in flight.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use super::storage::Storage;
use crate::clock::{SharedClock, SystemClock};
use crate::model::Controller;

/// How a [`CsiDriver`] is set up.
///
/// ```
/// use csi_events::csi::CsiConfig;
/// let config = CsiConfig::new("rds.csi.srvlab.io").node_id("node-a");
/// assert_eq!(config.name, "rds.csi.srvlab.io");
/// ```
#[derive(Clone)]
pub struct CsiConfig {
    /// The driver name (GetPluginInfo), e.g. `rds.csi.srvlab.io`.
    pub name: String,
    /// The clock a publish's `took` is measured on (default: the system clock).
    pub clock: SharedClock,
    /// Simulation only: read a publish's `took` from the request's
    /// [`TOOK_METADATA`](super::TOOK_METADATA) entry (whole nanoseconds) when present, so a
    /// scenario's `took` reaches the model through the wire unchanged. Off by default.
    pub took_from_metadata: bool,
    /// Serve a minimal Node service answering NodeGetInfo with this id (csi-sanity learns the
    /// node id there). `None` (default): no Node service.
    pub node_id: Option<String>,
}

impl CsiConfig {
    /// Defaults for a driver named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            clock: Arc::new(SystemClock),
            took_from_metadata: false,
            node_id: None,
        }
    }

    /// Sets the clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets [`took_from_metadata`](Self::took_from_metadata).
    pub fn took_from_metadata(mut self, enabled: bool) -> Self {
        self.took_from_metadata = enabled;
        self
    }

    /// Sets [`node_id`](Self::node_id).
    pub fn node_id(mut self, node_id: impl Into<String>) -> Self {
        self.node_id = Some(node_id.into());
        self
    }
}

/// One CSI driver: build it, hand it the controller when the rebuild is done, and mount its
/// services on a tonic server.
///
/// ```
/// use csi_events::csi::{AnyVolume, CsiConfig, CsiDriver};
/// let driver = CsiDriver::new(CsiConfig::new("rds.csi.srvlab.io"), AnyVolume);
/// assert!(!driver.ready()); // no controller yet: Probe says not ready
/// ```
pub struct CsiDriver<S> {
    pub(crate) shared: Arc<Shared<S>>,
}

impl<S> Clone for CsiDriver<S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

pub(crate) struct Shared<S> {
    pub(crate) config: CsiConfig,
    pub(crate) storage: S,
    pub(crate) controller: OnceLock<Controller>,
    pub(crate) in_flight: Mutex<HashSet<String>>,
}

impl<S: Storage> CsiDriver<S> {
    /// A driver set up by `config` over `storage`.
    pub fn new(config: CsiConfig, storage: S) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                storage,
                controller: OnceLock::new(),
                in_flight: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// Hands over the rebuilt controller: from now on Probe is ready (once the storage is)
    /// and publish/unpublish reach the model. A second call is ignored (returns false).
    pub fn set_controller(&self, controller: Controller) -> bool {
        self.shared.controller.set(controller).is_ok()
    }

    /// The controller, once set.
    pub fn controller(&self) -> Option<&Controller> {
        self.shared.controller.get()
    }

    /// The storage.
    pub fn storage(&self) -> &S {
        &self.shared.storage
    }

    /// Probe's answer: the controller is rebuilt and the storage is ready.
    pub fn ready(&self) -> bool {
        self.shared.controller.get().is_some() && self.shared.storage.ready()
    }
}
