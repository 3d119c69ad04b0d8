//! Transports: the in-process `kube::Client` (no sockets) and, later, the HTTP server.

use bytes::Bytes;
use http_body_util::BodyExt;

use crate::api::ApiServer;

/// Boxed error of the in-process service (what `kube::Client` expects).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A `kube::Client` whose every request is served by `server` in this process.
///
/// ```
/// # async fn demo() {
/// use fake_apiserver::{ApiServer, SystemClock};
/// use std::sync::Arc;
/// let client = fake_apiserver::transport::in_process_client(ApiServer::new(Arc::new(SystemClock)));
/// let _ = client.apiserver_version().await;
/// # }
/// ```
pub fn in_process_client(server: ApiServer) -> kube::Client {
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let server = server.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body: Bytes = body.collect().await?.to_bytes();
            Ok::<_, BoxError>(server.handle(http::Request::from_parts(parts, body)).await)
        }
    });
    kube::Client::new(service, "default")
}
