//! The storage-specific part of a driver: does a volume exist, and what publish context does a
//! node get (docs/csi.md §1).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use crate::ids::{NodeName, VolumeId};
use crate::model::{Code, RpcError};

/// What a driver knows about its storage. Both methods have defaults: every volume exists,
/// and the publish context is empty.
///
/// ```
/// use std::collections::HashMap;
/// use csi_events::csi::Storage;
/// use csi_events::{NodeName, RpcError, VolumeId};
///
/// struct Rds;
/// impl Storage for Rds {
///     async fn publish_context(&self, volume: &VolumeId, _node: &NodeName) -> Result<HashMap<String, String>, RpcError> {
///         Ok(HashMap::from([("nvme-nqn".to_owned(), format!("nqn.2026-01.io.srvlab:{volume}"))]))
///     }
/// }
/// ```
pub trait Storage: Send + Sync + 'static {
    /// Whether the volume exists (false answers NOT_FOUND `volume {id} not found`).
    fn volume_exists(
        &self,
        volume: &VolumeId,
    ) -> impl Future<Output = Result<bool, RpcError>> + Send {
        let _ = volume;
        async { Ok(true) }
    }

    /// The publish context handed to the node for `volume` (default: empty).
    fn publish_context(
        &self,
        volume: &VolumeId,
        node: &NodeName,
    ) -> impl Future<Output = Result<HashMap<String, String>, RpcError>> + Send {
        let _ = (volume, node);
        async { Ok(HashMap::new()) }
    }

    /// Whether the storage is ready to answer (Probe says ready only then; default: always).
    fn ready(&self) -> bool {
        true
    }
}

/// Every volume exists; empty publish context.
///
/// ```
/// # tokio_test_block_on(async {
/// use csi_events::csi::{AnyVolume, Storage};
/// assert!(AnyVolume.volume_exists(&"pvc-1".into()).await.unwrap());
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyVolume;

impl Storage for AnyVolume {}

/// The default storage: a volume exists when a PersistentVolume named after it (or whose
/// `spec.csi.volumeHandle` is it) exists. PVs are read from a reflector, so a publish costs no
/// API request; a volume the reflector has not seen yet is looked up with one GET (a PV
/// created a moment ago), and an API error there answers UNAVAILABLE.
#[derive(Clone)]
pub struct PersistentVolumes {
    api: Api<PersistentVolume>,
    store: Store<PersistentVolume>,
    synced: tokio::sync::watch::Receiver<bool>,
    _tasks: Arc<AbortOnDrop>,
}

/// Ends the reflector's tasks when the last clone of [`PersistentVolumes`] goes.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl PersistentVolumes {
    /// Starts the reflector on the current tokio runtime, where it runs until the runtime
    /// ends. It needs `list` and `watch` on persistentvolumes, and `get` for the fallback.
    pub fn new(client: kube::Client) -> Self {
        let api: Api<PersistentVolume> = Api::all(client);
        let (store, writer) = reflector::store();
        let stream = reflector::reflector(
            writer,
            watcher::watcher(api.clone(), watcher::Config::default()),
        )
        .default_backoff()
        .touched_objects();
        let watch = tokio::spawn(async move {
            use futures::StreamExt;
            futures::pin_mut!(stream);
            while let Some(item) = stream.next().await {
                if let Err(error) = item {
                    tracing::warn!(%error, "persistentvolume reflector: watch error (it retries)");
                }
            }
        });
        // kube's `wait_until_ready` wakes only the last of several concurrent waiters, so one
        // task waits for it and everyone else watches this flag.
        let (flag, synced) = tokio::sync::watch::channel(false);
        let reader = store.clone();
        let ready = tokio::spawn(async move {
            if reader.wait_until_ready().await.is_ok() {
                let _ = flag.send(true);
            }
        });
        Self {
            api,
            store,
            synced,
            _tasks: Arc::new(AbortOnDrop(vec![watch, ready])),
        }
    }

    /// Waits until the reflector has its first full list.
    pub async fn synced(&self) {
        let mut synced = self.synced.clone();
        let _ = synced.wait_for(|ready| *ready).await;
    }
}

impl Storage for PersistentVolumes {
    async fn volume_exists(&self, volume: &VolumeId) -> Result<bool, RpcError> {
        let named = self.store.get(&ObjectRef::new(volume.as_str())).is_some();
        if named
            || self
                .store
                .find(|pv| {
                    pv.spec
                        .as_ref()
                        .and_then(|spec| spec.csi.as_ref())
                        .is_some_and(|csi| csi.volume_handle == volume.as_str())
                })
                .is_some()
        {
            return Ok(true);
        }
        match self.api.get_opt(volume.as_str()).await {
            Ok(found) => Ok(found.is_some()),
            Err(error) => Err(RpcError::new(
                Code::Unavailable,
                format!("cannot read PersistentVolume {volume}: {error}"),
            )),
        }
    }

    fn ready(&self) -> bool {
        *self.synced.borrow()
    }
}
