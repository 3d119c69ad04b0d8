//! A controller-only CSI driver: the model, the poster, the node watcher and the rebuild at
//! start, served on a unix socket (docs/csi.md §4). This is what a Rust driver's wiring
//! looks like; the `csi-events serve` command is a thin shell around [`serve`].

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::Server;

use super::driver::{CsiConfig, CsiDriver};
use super::socket::{SocketError, bind};
use super::storage::PersistentVolumes;
use crate::model::{Controller, ControllerConfig, watch_nodes};
use crate::{EventPoster, PosterConfig};

/// What [`serve`] runs.
///
/// ```
/// use csi_events::csi::ServeConfig;
/// let config = ServeConfig::new("/run/csi/csi.sock").driver_name("example.csi.io");
/// assert_eq!(config.driver_name, "example.csi.io");
/// ```
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The unix socket to serve on.
    pub socket: PathBuf,
    /// The kubeconfig of the API server (`None`: in-cluster or `$KUBECONFIG`, as kube infers).
    pub kubeconfig: Option<PathBuf>,
    /// The driver name: GetPluginInfo and the VolumeAttachments' `spec.attacher`.
    pub driver_name: String,
    /// Serve a minimal Node service answering NodeGetInfo with this id.
    pub node_id: Option<String>,
    /// How long the poster may take to write what it holds at shutdown.
    pub grace: Duration,
}

impl ServeConfig {
    /// Defaults (`rds.csi.srvlab.io`, a 5 s grace) on `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            kubeconfig: None,
            driver_name: "rds.csi.srvlab.io".to_owned(),
            node_id: None,
            grace: Duration::from_secs(5),
        }
    }

    /// Sets the kubeconfig.
    pub fn kubeconfig(mut self, path: impl Into<PathBuf>) -> Self {
        self.kubeconfig = Some(path.into());
        self
    }

    /// Sets the driver name.
    pub fn driver_name(mut self, name: impl Into<String>) -> Self {
        self.driver_name = name.into();
        self
    }

    /// Sets the Node service's node id.
    pub fn node_id(mut self, node_id: impl Into<String>) -> Self {
        self.node_id = Some(node_id.into());
        self
    }
}

/// Why the driver stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {why}")]
    Kubeconfig {
        /// The file (or `inferred`).
        path: String,
        /// What was wrong.
        why: String,
    },
    /// The socket could not be served.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The state could not be rebuilt from the cluster.
    #[error("cannot rebuild the controller's state from the cluster: {0}")]
    Rebuild(String),
}

/// A kube client for `kubeconfig` (or the inferred configuration).
pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client, ServeError> {
    let shown = kubeconfig.map_or("inferred".to_owned(), |p| p.display().to_string());
    let bad = |why: String| ServeError::Kubeconfig {
        path: shown.clone(),
        why,
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| bad(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .map_err(|e| bad(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| bad(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| bad(e.to_string()))
}

/// Runs the driver until `shutdown` resolves: binds the socket first (Probe answers "not
/// ready" meanwhile), rebuilds the model from the VolumeAttachments, starts the node watcher,
/// then answers ready. At shutdown it stops accepting calls, stops the model's timers, lets
/// the poster write what it holds (bounded by `grace`) and removes the socket.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let client = client(config.kubeconfig.as_deref()).await?;
    let listener = bind(&config.socket).await?;
    let mut csi = CsiConfig::new(config.driver_name.clone());
    csi.node_id = config.node_id.clone();
    let driver = CsiDriver::new(csi, PersistentVolumes::new(client.clone()));
    let router = Server::builder()
        .add_service(driver.identity_server())
        .add_service(driver.controller_server())
        .add_optional_service(driver.node_server());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(router.serve_with_incoming_shutdown(
        tokio_stream::wrappers::UnixListenerStream::new(listener),
        async {
            let _ = stopped.await;
        },
    ));

    let poster = EventPoster::new(client.clone(), PosterConfig::default());
    let controller_config = ControllerConfig::default().driver_name(config.driver_name.clone());
    let started = async {
        let controller = Controller::rebuild(client.clone(), poster.clone(), controller_config)
            .await
            .map_err(|e| ServeError::Rebuild(e.to_string()))?;
        let watcher = tokio::spawn(watch_nodes(client.clone(), controller.clone()));
        driver.storage().synced().await;
        driver.set_controller(controller.clone());
        tracing::info!(socket = %config.socket.display(), driver = %config.driver_name, "CSI driver ready");
        Ok::<_, ServeError>((controller, watcher))
    };
    futures::pin_mut!(shutdown);
    let outcome = tokio::select! {
        started = started => match started {
            Ok(running) => {
                shutdown.await;
                Ok(Some(running))
            }
            Err(error) => Err(error),
        },
        () = &mut shutdown => Ok(None),
    };
    let _ = stop.send(());
    let served = server.await;
    if let Ok(Some((controller, watcher))) = &outcome {
        controller.stop();
        watcher.abort();
    }
    let report = poster.shutdown(config.grace).await;
    if !report.is_clean() {
        tracing::warn!(
            ?report,
            "the poster could not write everything before the grace ran out"
        );
    }
    let _ = std::fs::remove_file(&config.socket);
    outcome?;
    match served {
        Ok(result) => result.map_err(|e| ServeError::Socket(SocketError::Serve(e))),
        Err(join) => Err(ServeError::Socket(SocketError::Io {
            path: config.socket.clone(),
            source: std::io::Error::other(join.to_string()),
        })),
    }
}
