//! The in-process rig: an `ApiServer` on a virtual clock, raw requests in and (code, JSON)
//! out, and the fixtures several test modules share.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use fake_apiserver::{ApiServer, VirtualClock};

pub const START: &str = "2026-01-01T00:00:00Z";

pub fn setup() -> (ApiServer, VirtualClock) {
    let clock = VirtualClock::new(START.parse().expect("valid timestamp"));
    (ApiServer::new(Arc::new(clock.clone())), clock)
}

pub async fn send(
    server: &ApiServer,
    method: &str,
    uri: &str,
    content_type: &str,
    body: impl Into<Bytes>,
) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", content_type)
        .header(
            "accept",
            "application/vnd.kubernetes.protobuf,application/json",
        )
        .body(body.into())
        .expect("valid request");
    let response = server.handle(request).await;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("infallible")
        .to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

pub async fn json_req(server: &ApiServer, method: &str, uri: &str, body: Value) -> (u16, Value) {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).expect("json")
    };
    send(server, method, uri, "application/json", bytes).await
}

pub fn claim(name: &str, class: Option<&str>) -> Value {
    let mut c = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    });
    if let Some(class) = class {
        c["spec"]["storageClassName"] = json!(class);
    }
    c
}

pub fn volume(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "csi": {"driver": "csi.example.com", "volumeHandle": "h-1"}},
    })
}

pub fn causes(body: &Value) -> Vec<String> {
    body["details"]["causes"]
        .as_array()
        .map(|c| {
            c.iter()
                .map(|c| {
                    format!(
                        "{}|{}|{}",
                        c["reason"].as_str().unwrap_or(""),
                        c["field"].as_str().unwrap_or(""),
                        c["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub async fn bind(server: &ApiServer, ns: &str, claim_name: &str, pv: &str) {
    let uid = server
        .object("", "v1", "persistentvolumeclaims", Some(ns), claim_name)
        .expect("claim")["metadata"]["uid"]
        .clone();
    let path = format!("/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim_name}");
    let (code, _) = send(
        server,
        "PATCH",
        &format!("{path}/status"),
        "application/merge-patch+json",
        serde_json::to_vec(&json!({"status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}}))
            .expect("json"),
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = send(
        server,
        "PATCH",
        &path,
        "application/merge-patch+json",
        serde_json::to_vec(&json!({"spec": {"volumeName": pv}})).expect("json"),
    )
    .await;
    assert_eq!(code, 200);
    let pv_path = format!("/api/v1/persistentvolumes/{pv}");
    let (code, _) = send(
        server,
        "PATCH",
        &pv_path,
        "application/merge-patch+json",
        serde_json::to_vec(
            &json!({"spec": {"claimRef": {"namespace": ns, "name": claim_name, "uid": uid}}}),
        )
        .expect("json"),
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = send(
        server,
        "PATCH",
        &format!("{pv_path}/status"),
        "application/merge-patch+json",
        serde_json::to_vec(&json!({"status": {"phase": "Bound"}})).expect("json"),
    )
    .await;
    assert_eq!(code, 200);
}

pub async fn body_lines(response: http::Response<fake_apiserver::ResponseBody>) -> Vec<Value> {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("infallible")
        .to_bytes();
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("a JSON line"))
        .collect()
}

pub fn get(uri: &str) -> http::Request<Bytes> {
    http::Request::get(uri).body(Bytes::new()).expect("request")
}

/// An `ApiServer` on a virtual clock and a kube-rs client talking to it in process.
pub fn with_client() -> (ApiServer, kube::Client, VirtualClock) {
    let (server, clock) = setup();
    let client = fake_apiserver::transport::in_process_client(server.clone());
    (server, client, clock)
}

/// The Status of a kube-rs API error (panics on any other error: the test expected a Status).
pub fn api_status(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}
