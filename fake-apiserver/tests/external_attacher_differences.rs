//! Differences from a real kube-apiserver that the real external-attacher (run against the
//! fake in the workspace's `tests/external_attacher.rs`) revealed, each pinned here in process.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::json;

use fake_apiserver::{ApiServer, VirtualClock};

async fn raw(
    server: &ApiServer,
    method: &str,
    uri: &str,
    content_type: &str,
    body: &str,
) -> (u16, http::HeaderMap, String) {
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(Bytes::from(body.to_string()))
        .expect("valid request");
    let response = server.handle(request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("infallible")
        .to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn server() -> ApiServer {
    let clock = VirtualClock::new("2026-01-01T00:00:00Z".parse().expect("valid timestamp"));
    ApiServer::new(Arc::new(clock))
}

/// The attacher removes its PV finalizer with a JSON patch (`test` + `remove` by index); when
/// that empties `metadata.finalizers`, a real server answers without a warning (the list is a
/// known field; Go's `omitempty` only leaves it out of the answer). The fake warned
/// `unknown field "metadata.finalizers"`, as for every empty metadata map or list.
#[tokio::test]
async fn emptying_metadata_lists_and_maps_is_no_unknown_field() {
    let server = server();
    let pv = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "pv-a", "finalizers": ["external-attacher/rds-csi-srvlab-io"], "labels": {}, "annotations": {}},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "csi": {"driver": "d", "volumeHandle": "h"}}
    });
    let (code, headers, body) = raw(
        &server,
        "POST",
        "/api/v1/persistentvolumes",
        "application/json",
        &pv.to_string(),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert!(
        headers.get("warning").is_none(),
        "empty labels/annotations are known fields: {:?}",
        headers.get("warning")
    );

    // Both finalizers (ours and pv-protection) removed by index, as the attacher does one by one.
    for _ in 0..2 {
        let (code, headers, body) = raw(
            &server,
            "PATCH",
            "/api/v1/persistentvolumes/pv-a",
            "application/json-patch+json",
            r#"[{"op":"remove","path":"/metadata/finalizers/0"}]"#,
        )
        .await;
        assert_eq!(code, 200, "{body}");
        assert!(
            headers.get("warning").is_none(),
            "no unknown-field warning: {:?}",
            headers.get("warning")
        );
    }
    // An unknown field next to an empty known one is still reported.
    let (code, headers, _) = raw(
        &server,
        "PATCH",
        "/api/v1/persistentvolumes/pv-a",
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":[],"bogus":[]}}"#,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        headers.get("warning").and_then(|v| v.to_str().ok()),
        Some("299 - \"unknown field \\\"metadata.bogus\\\"\"")
    );
}
