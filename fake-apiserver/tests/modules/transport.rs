//! In process, the transport (`transport`): authentication is a tower layer answering the real 401.

use bytes::Bytes;
use http_body_util::BodyExt;

use crate::common::in_process::*;

#[tokio::test]
async fn authentication_is_a_tower_layer_with_the_real_401() {
    use fake_apiserver::transport::TokenAuthLayer;
    use tower::{Layer, ServiceExt};
    let cluster = fake_apiserver::FakeCluster::default();
    let inner = tower::service_fn(|_request: http::Request<Bytes>| async {
        Ok::<_, fake_apiserver::transport::BoxError>(http::Response::new(
            http_body_util::Full::new(Bytes::from_static(b"{}")).boxed(),
        ))
    });
    let service = TokenAuthLayer::new(Some("t".into()), cluster.control().clone()).layer(inner);
    let refused = service
        .clone()
        .oneshot(get("/api/v1/nodes"))
        .await
        .expect("answered");
    assert_eq!(refused.status(), 401);
    let lines = body_lines(refused).await;
    assert_eq!(lines[0]["reason"], "Unauthorized");
    assert_eq!(
        cluster.requests()[0].status,
        Some(http::StatusCode::UNAUTHORIZED)
    );
    let mut request = get("/api/v1/nodes");
    request
        .headers_mut()
        .insert("authorization", http::HeaderValue::from_static("Bearer t"));
    let admitted = service.oneshot(request).await.expect("answered");
    assert_eq!(admitted.status(), 200);
}

// ---------------------------------------------------------------- 7. the event index
