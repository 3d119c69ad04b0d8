//! The per-kind strategies (`api::strategy`) over HTTP: every write path — create, PUT, each
//! patch type, server-side apply and the `/status` subresource — runs the same validation,
//! so what create refuses an update refuses with the same text.

mod common;

use common::*;
use fake_apiserver::FakeCluster;
use serde_json::{Value, json};

const PODS: &str = "/api/v1/namespaces/default/pods";
const CLAIMS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";

/// Sends `body` with `content_type`; returns the code and the decoded answer.
async fn send(
    client: &kube::Client,
    method: &str,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .body(body)
        .expect("valid request");
    let (status, _, body) = raw(client, request).await.expect("an answer");
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status.as_u16(), value)
}

async fn json_send(
    client: &kube::Client,
    method: &str,
    uri: &str,
    ct: &str,
    body: &Value,
) -> (u16, Value) {
    send(
        client,
        method,
        uri,
        ct,
        serde_json::to_vec(body).expect("json"),
    )
    .await
}

fn pod(image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": image}]}})
}

async fn cluster() -> (
    FakeCluster,
    fake_apiserver::transport::HttpServer,
    kube::Client,
) {
    let (cluster, _clock) = FakeCluster::virtual_at("2026-01-01T00:00:00Z".parse().expect("time"));
    let server = serve(&cluster, None).await;
    let client = http_client_no_retry(&server, None);
    (cluster, server, client)
}

#[tokio::test]
async fn what_pod_create_refuses_every_update_path_refuses_with_the_same_text() {
    let (_cluster, _server, client) = cluster().await;
    let refused = "Pod \"p\" is invalid: spec.containers[0].image: Required value";

    let (code, body) = json_send(&client, "POST", PODS, "application/json", &pod("")).await;
    assert_eq!(
        (code, body["message"].as_str()),
        (422, Some(refused)),
        "create: {body}"
    );
    let (code, body) = json_send(&client, "POST", PODS, "application/json", &pod("busybox")).await;
    assert_eq!(code, 201, "{body}");

    let uri = format!("{PODS}/p");
    let mut put = body.clone();
    put["spec"]["containers"][0]["image"] = json!("");
    let merge = json!({"spec": {"containers": [{"name": "c", "image": ""}]}});
    let json_patch = json!([{"op": "replace", "path": "/spec/containers/0/image", "value": ""}]);
    let apply = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: \"\"\n";
    let attempts: Vec<(&str, &str, String, Vec<u8>)> = vec![
        (
            "PUT",
            "application/json",
            uri.clone(),
            serde_json::to_vec(&put).expect("json"),
        ),
        (
            "PATCH",
            "application/merge-patch+json",
            uri.clone(),
            serde_json::to_vec(&merge).expect("json"),
        ),
        (
            "PATCH",
            "application/strategic-merge-patch+json",
            uri.clone(),
            serde_json::to_vec(&merge).expect("json"),
        ),
        (
            "PATCH",
            "application/json-patch+json",
            uri.clone(),
            serde_json::to_vec(&json_patch).expect("json"),
        ),
        (
            "PATCH",
            "application/apply-patch+yaml",
            format!("{uri}?fieldManager=tester&force=true"),
            apply.as_bytes().to_vec(),
        ),
    ];
    for (method, content_type, uri, body) in attempts {
        let (code, answer) = send(&client, method, &uri, content_type, body).await;
        assert_eq!(
            (code, answer["message"].as_str()),
            (422, Some(refused)),
            "{method} {content_type}: {answer}"
        );
        assert_eq!(answer["reason"], "Invalid");
        assert_eq!(
            answer["details"]["causes"][0]["field"],
            "spec.containers[0].image"
        );
    }

    // A `/status` write keeps the stored spec: an invalid spec cannot be smuggled through it.
    let status_patch = json!({"spec": {"containers": [{"name": "c", "image": ""}]}, "status": {"phase": "Running"}});
    let (code, answer) = json_send(
        &client,
        "PATCH",
        &format!("{uri}/status"),
        "application/merge-patch+json",
        &status_patch,
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["spec"]["containers"][0]["image"], "busybox");
    assert_eq!(answer["status"]["phase"], "Running");
}

#[tokio::test]
async fn what_claim_create_refuses_an_update_refuses_with_the_same_cause() {
    let (_cluster, _server, client) = cluster().await;
    let claim = |modes: Value| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
               "spec": {"accessModes": modes, "resources": {"requests": {"storage": "1Gi"}}}})
    };
    let unsupported = "Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"";
    let (code, body) = json_send(
        &client,
        "POST",
        CLAIMS,
        "application/json",
        &claim(json!(["ReadWriteSometimes"])),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["details"]["causes"][0]["message"], unsupported);

    let (code, body) = json_send(
        &client,
        "POST",
        CLAIMS,
        "application/json",
        &claim(json!(["ReadWriteOnce"])),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let patch = json!({"spec": {"accessModes": ["ReadWriteSometimes"]}});
    let (code, body) = json_send(
        &client,
        "PATCH",
        &format!("{CLAIMS}/c"),
        "application/merge-patch+json",
        &patch,
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let causes: Vec<&str> = body["details"]["causes"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["message"].as_str()).collect())
        .unwrap_or_default();
    assert!(causes.contains(&unsupported), "{body}");
}
