//! Serving CSI on a unix socket and connecting to one (docs/csi.md §4): `unix://` endpoint
//! text, a stale socket file replaced, a live one refused, the file removed at shutdown.

use std::future::Future;
use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::server::Router;
use tonic::transport::{Channel, Endpoint};

/// Why a socket could not be served or reached.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The endpoint text is not `unix:///PATH` (or an absolute path).
    #[error(
        "`{0}` is not a unix socket endpoint: write unix:///path/to/csi.sock (an absolute path)"
    )]
    Endpoint(String),
    /// Another process serves this socket.
    #[error(
        "{0} is in use: another process is serving it (stop it, or choose another --csi-endpoint)"
    )]
    InUse(PathBuf),
    /// The socket could not be bound, removed or reached.
    #[error("{path}: {source}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("the CSI server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// The socket path of `unix:///PATH`, `unix:/PATH` or `/PATH`.
///
/// ```
/// use csi_events::csi::endpoint_path;
/// assert_eq!(endpoint_path("unix:///run/csi/csi.sock").unwrap().to_str(), Some("/run/csi/csi.sock"));
/// assert!(endpoint_path("tcp://127.0.0.1:10000").is_err());
/// ```
pub fn endpoint_path(endpoint: &str) -> Result<PathBuf, SocketError> {
    let path = endpoint
        .strip_prefix("unix://")
        .or_else(|| endpoint.strip_prefix("unix:"))
        .unwrap_or(endpoint);
    if path.starts_with('/') {
        Ok(PathBuf::from(path))
    } else {
        Err(SocketError::Endpoint(endpoint.to_owned()))
    }
}

/// Serves `router` on the unix socket `path` until `shutdown` resolves, then removes the
/// socket file. A stale socket file (nobody answers on it) is replaced; a live one is an error.
pub async fn serve_unix(
    router: Router,
    path: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SocketError> {
    let listener = bind(path).await?;
    let result = router
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await;
    let _ = std::fs::remove_file(path);
    result.map_err(SocketError::Serve)
}

/// Binds `path`, replacing a stale socket file (a live one is [`SocketError::InUse`]).
pub async fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let io = |source| SocketError::Io {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(SocketError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    UnixListener::bind(path).map_err(io)
}

/// A gRPC channel to the unix socket `path` (as the external-attacher connects to a driver).
pub async fn connect_unix(path: &Path) -> Result<Channel, SocketError> {
    let target = path.to_owned();
    // The URI is required by tonic but unused: the connector below dials the socket.
    let endpoint = Endpoint::from_static("http://csi.invalid")
        .connect_timeout(std::time::Duration::from_secs(10));
    endpoint
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let target = target.clone();
            async move { UnixStream::connect(target).await.map(TokioIo::new) }
        }))
        .await
        .map_err(SocketError::Serve)
}
