//! The per-kind strategies (`api::strategy`): spec validation with the real paths and texts,
//! StorageClasses deciding claim expansion (in process); and, over HTTP, every write path —
//! create, PUT, each patch type, server-side apply and the `/status` subresource — runs the
//! same validation, so what create refuses an update refuses with the same text.

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::common::in_process::*;
use crate::common::{http_client_no_retry, raw, serve};
use fake_apiserver::FakeCluster;

#[tokio::test]
async fn spec_validation_has_the_real_paths_and_texts() {
    let (server, _clock) = setup();
    let mut bad = claim("bad", None);
    bad["spec"]["accessModes"] = json!(["ReadWriteSometimes"]);
    bad["spec"]["resources"]["requests"]["storage"] = json!("-1Gi");
    bad["spec"]["volumeMode"] = json!("Weird");
    let (code, body) = json_req(
        &server,
        "POST",
        "/api/v1/namespaces/default/persistentvolumeclaims",
        bad,
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        causes(&body),
        [
            "FieldValueNotSupported|spec.accessModes|Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
            "FieldValueInvalid|spec.resources[storage]|Invalid value: \"-1Gi\": must be greater than zero",
            "FieldValueNotSupported|spec.volumeMode|Unsupported value: \"Weird\": supported values: \"Block\", \"Filesystem\"",
        ]
    );

    let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "empty"},
        "spec": {"accessModes": ["ReadWriteOnce"]}});
    let (code, body) = json_req(&server, "POST", "/api/v1/persistentvolumes", pv).await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "PersistentVolume \"empty\" is invalid: [spec.capacity: Required value, spec.capacity: Unsupported value: core.ResourceList(nil): supported values: \"storage\", spec: Required value: must specify a volume type]"
    );

    let va = json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment", "metadata": {"name": "va"},
        "spec": {"attacher": "", "nodeName": "", "source": {"persistentVolumeName": "pv1"}}});
    let (code, body) = json_req(
        &server,
        "POST",
        "/apis/storage.k8s.io/v1/volumeattachments",
        va,
    )
    .await;
    assert_eq!(code, 422);
    let message = body["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("VolumeAttachment.storage.k8s.io \"va\" is invalid: [spec.attacher: Required value, spec.nodeName: Invalid value: \"\": a lowercase RFC 1123 subdomain"),
        "{message}"
    );
    assert_eq!(body["details"]["group"], "storage.k8s.io");

    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}});
    let (code, body) = json_req(&server, "POST", "/api/v1/namespaces/default/pods", pod).await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "Pod \"p\" is invalid: spec.containers: Required value"
    );

    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "spec": {"taints": [{"key": "k", "effect": "Bogus"}]}});
    let (code, body) = json_req(&server, "POST", "/api/v1/nodes", node).await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "Node \"n1\" is invalid: spec.taints[0].effect: Unsupported value: \"Bogus\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
    );

    let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
        "provisioner": "", "reclaimPolicy": "Recycle", "volumeBindingMode": "Later"});
    let (code, body) = json_req(
        &server,
        "POST",
        "/apis/storage.k8s.io/v1/storageclasses",
        sc,
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "StorageClass.storage.k8s.io \"fast\" is invalid: [provisioner: Required value, reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\", volumeBindingMode: Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\"]"
    );
}

#[tokio::test]
async fn storage_classes_are_served_and_decide_claim_expansion() {
    let (server, _clock) = setup();
    let classes = "/apis/storage.k8s.io/v1/storageclasses";
    let sc = |name: &str, expand: bool| {
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": name}, "provisioner": "csi.example.com", "allowVolumeExpansion": expand,
        "parameters": {"migrationTimeoutSeconds": "30"}})
    };
    let (code, body) = json_req(&server, "POST", classes, sc("fast", true)).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["reclaimPolicy"], "Delete");
    assert_eq!(body["volumeBindingMode"], "Immediate");
    assert_eq!(
        json_req(&server, "POST", classes, sc("fixed", false))
            .await
            .0,
        201
    );
    let (code, body) = send(
        &server,
        "PATCH",
        &format!("{classes}/fast"),
        "application/merge-patch+json",
        serde_json::to_vec(&json!({"parameters": {"migrationTimeoutSeconds": "60"}}))
            .expect("json"),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "StorageClass.storage.k8s.io \"fast\" is invalid: parameters: Forbidden: updates to parameters are forbidden."
    );

    let pvcs = "/api/v1/namespaces/default/persistentvolumeclaims";
    for (name, class) in [("grow", "fast"), ("stuck", "fixed")] {
        assert_eq!(
            json_req(&server, "POST", pvcs, claim(name, Some(class)))
                .await
                .0,
            201
        );
        assert_eq!(
            json_req(
                &server,
                "POST",
                "/api/v1/persistentvolumes",
                volume(&format!("pv-{name}"))
            )
            .await
            .0,
            201
        );
        bind(&server, "default", name, &format!("pv-{name}")).await;
    }
    let grow = |size: &str| {
        serde_json::to_vec(&json!({"spec": {"resources": {"requests": {"storage": size}}}}))
            .expect("json")
    };
    let (code, body) = send(
        &server,
        "PATCH",
        &format!("{pvcs}/grow"),
        "application/merge-patch+json",
        grow("2Gi"),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["spec"]["resources"]["requests"]["storage"], "2Gi");
    let (code, body) = send(
        &server,
        "PATCH",
        &format!("{pvcs}/stuck"),
        "application/merge-patch+json",
        grow("2Gi"),
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "persistentvolumeclaims \"stuck\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
    );
    // Below status.capacity is refused (RecoverVolumeExpansionFailure).
    let (code, body) = send(
        &server,
        "PATCH",
        &format!("{pvcs}/grow"),
        "application/merge-patch+json",
        grow("512Mi"),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "PersistentVolumeClaim \"grow\" is invalid: spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
    );
    // `kubectl get sc` columns.
    let request = http::Request::get(classes)
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Bytes::new())
        .expect("request");
    let bytes = server
        .handle(request)
        .await
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let table: Value = serde_json::from_slice(&bytes).expect("json");
    let cells = table["rows"][0]["cells"].as_array().expect("cells");
    assert_eq!(
        cells[..5],
        json!(["fast", "csi.example.com", "Delete", "Immediate", "true"])
            .as_array()
            .expect("list")[..]
    );
}

// ---- over HTTP: every write path validates ----

const PODS: &str = "/api/v1/namespaces/default/pods";
const CLAIMS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";

/// Sends `body` with `content_type`; returns the code and the decoded answer.
async fn http_send(
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

async fn http_json(
    client: &kube::Client,
    method: &str,
    uri: &str,
    ct: &str,
    body: &Value,
) -> (u16, Value) {
    http_send(
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

async fn http_cluster() -> (
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
    let (_cluster, _server, client) = http_cluster().await;
    let refused = "Pod \"p\" is invalid: spec.containers[0].image: Required value";

    let (code, body) = http_json(&client, "POST", PODS, "application/json", &pod("")).await;
    assert_eq!(
        (code, body["message"].as_str()),
        (422, Some(refused)),
        "create: {body}"
    );
    let (code, body) = http_json(&client, "POST", PODS, "application/json", &pod("busybox")).await;
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
        let (code, answer) = http_send(&client, method, &uri, content_type, body).await;
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
    let (code, answer) = http_json(
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
    let (_cluster, _server, client) = http_cluster().await;
    let claim = |modes: Value| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
               "spec": {"accessModes": modes, "resources": {"requests": {"storage": "1Gi"}}}})
    };
    let unsupported = "Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"";
    let (code, body) = http_json(
        &client,
        "POST",
        CLAIMS,
        "application/json",
        &claim(json!(["ReadWriteSometimes"])),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["details"]["causes"][0]["message"], unsupported);

    let (code, body) = http_json(
        &client,
        "POST",
        CLAIMS,
        "application/json",
        &claim(json!(["ReadWriteOnce"])),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let patch = json!({"spec": {"accessModes": ["ReadWriteSometimes"]}});
    let (code, body) = http_json(
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
