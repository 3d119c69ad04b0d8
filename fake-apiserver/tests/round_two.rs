//! The differences from a real kube-apiserver that issue 8 lists, each checked in process:
//! protobuf bodies, delete answers, spec validation, StorageClasses, protection finalizers, the
//! small differences, reproducible ids, the bounded request log and the watch timeout.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use k8s_pb::api::core::v1 as pb;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pbmeta;
use serde_json::{Value, json};

use fake_apiserver::api::protobuf;
use fake_apiserver::{ApiServer, VirtualClock};

const START: &str = "2026-01-01T00:00:00Z";

fn setup() -> (ApiServer, VirtualClock) {
    let clock = VirtualClock::new(START.parse().expect("valid timestamp"));
    (ApiServer::new(Arc::new(clock.clone())), clock)
}

async fn send(
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

async fn json_req(server: &ApiServer, method: &str, uri: &str, body: Value) -> (u16, Value) {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).expect("json")
    };
    send(server, method, uri, "application/json", bytes).await
}

fn meta(name: &str) -> Option<pbmeta::ObjectMeta> {
    Some(pbmeta::ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    })
}

// ---------------------------------------------------------------- 1. protobuf bodies

#[tokio::test]
async fn kubectl_protobuf_bodies_create_namespaces_pods_and_claims() {
    let (server, _clock) = setup();
    // `kubectl create namespace apps` (1.32+).
    let ns = pb::Namespace {
        metadata: meta("apps"),
        ..Default::default()
    };
    let (code, body) = send(
        &server,
        "POST",
        "/api/v1/namespaces?fieldManager=kubectl-create&fieldValidation=Strict",
        "application/vnd.kubernetes.protobuf",
        protobuf::encode("v1", "Namespace", &ns),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["kind"], "Namespace");
    assert_eq!(body["metadata"]["name"], "apps");
    assert_eq!(body["status"]["phase"], "Active");

    // `kubectl run web --image=nginx`.
    let pod = pb::Pod {
        metadata: Some(pbmeta::ObjectMeta {
            name: Some("web".into()),
            labels: [("run".to_string(), "web".to_string())].into(),
            ..Default::default()
        }),
        spec: Some(pb::PodSpec {
            containers: vec![pb::Container {
                name: Some("web".into()),
                image: Some("nginx".into()),
                resources: Some(Default::default()),
                ..Default::default()
            }],
            restart_policy: Some("Always".into()),
            dns_policy: Some("ClusterFirst".into()),
            ..Default::default()
        }),
        status: Some(Default::default()),
    };
    let (code, body) = send(
        &server,
        "POST",
        "/api/v1/namespaces/apps/pods?fieldManager=kubectl-run",
        "application/vnd.kubernetes.protobuf",
        protobuf::encode("v1", "Pod", &pod),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["containers"][0]["image"], "nginx");
    assert_eq!(body["metadata"]["labels"]["run"], "web");

    // A claim with a quantity.
    let claim = pb::PersistentVolumeClaim {
        metadata: meta("data"),
        spec: Some(pb::PersistentVolumeClaimSpec {
            access_modes: vec!["ReadWriteOnce".into()],
            resources: Some(pb::VolumeResourceRequirements {
                requests: [(
                    "storage".to_string(),
                    k8s_pb::apimachinery::pkg::api::resource::Quantity {
                        string: Some("2Gi".into()),
                    },
                )]
                .into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };
    let (code, body) = send(
        &server,
        "POST",
        "/api/v1/namespaces/apps/persistentvolumeclaims",
        "application/vnd.kubernetes.protobuf",
        protobuf::encode("v1", "PersistentVolumeClaim", &claim),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["resources"]["requests"]["storage"], "2Gi");

    // An events.k8s.io/v1 event in protobuf lands in the one event store.
    let event = k8s_pb::api::events::v1::Event {
        metadata: meta("data.1"),
        event_time: Some(pbmeta::MicroTime {
            seconds: Some(1_767_225_600),
            nanos: Some(123_456_000),
        }),
        reporting_controller: Some("kube.rs/pvc".into()),
        reporting_instance: Some("i".into()),
        action: Some("Provision".into()),
        reason: Some("Provisioning".into()),
        r#type: Some("Normal".into()),
        regarding: Some(pb::ObjectReference {
            kind: Some("PersistentVolumeClaim".into()),
            name: Some("data".into()),
            namespace: Some("apps".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let (code, body) = send(
        &server,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/apps/events",
        "application/vnd.kubernetes.protobuf",
        protobuf::encode("events.k8s.io/v1", "Event", &event),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["eventTime"], "2026-01-01T00:00:00.123456Z");
    let core = server
        .object("", "v1", "events", Some("apps"), "data.1")
        .expect("stored");
    assert_eq!(core["involvedObject"]["name"], "data");
    assert_eq!(core["reportingComponent"], "kube.rs/pvc");
}

#[tokio::test]
async fn bad_protobuf_is_400_and_unknown_types_get_the_truthful_415() {
    let (server, _clock) = setup();
    let (code, body) = send(
        &server,
        "POST",
        "/api/v1/namespaces",
        "application/vnd.kubernetes.protobuf",
        &b"{\"metadata\":{}}"[..],
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["reason"], "BadRequest");
    let mut garbage = protobuf::MAGIC.to_vec();
    garbage.extend([0xff, 0xff, 0xff]);
    let (code, _) = send(
        &server,
        "POST",
        "/api/v1/namespaces",
        "application/vnd.kubernetes.protobuf",
        garbage,
    )
    .await;
    assert_eq!(code, 400);
    // A kind mismatch between the envelope and the URL is the real 400.
    let (code, body) = send(
        &server,
        "POST",
        "/api/v1/namespaces",
        "application/vnd.kubernetes.protobuf",
        protobuf::encode("v1", "Pod", &pb::Pod::default()),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = send(&server, "POST", "/api/v1/namespaces", "text/csv", &b"x"[..]).await;
    assert_eq!(code, 415);
    assert_eq!(
        body["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
    );
}

// ---------------------------------------------------------------- 2. deletes, validation, classes, finalizers

fn claim(name: &str, class: Option<&str>) -> Value {
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

fn volume(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "csi": {"driver": "csi.example.com", "volumeHandle": "h-1"}},
    })
}

fn causes(body: &Value) -> Vec<String> {
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

#[tokio::test]
async fn claim_volume_and_attachment_deletes_answer_the_object() {
    let (server, _clock) = setup();
    let pvcs = "/api/v1/namespaces/default/persistentvolumeclaims";
    assert_eq!(
        json_req(&server, "POST", pvcs, claim("data", None)).await.0,
        201
    );
    let (code, body) = json_req(&server, "DELETE", &format!("{pvcs}/data"), Value::Null).await;
    assert_eq!(code, 200);
    assert_eq!(body["kind"], "PersistentVolumeClaim", "{body}");
    assert_eq!(
        body["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
    // Nothing uses it: it is gone at once, and the name can be used again.
    assert!(
        server
            .object("", "v1", "persistentvolumeclaims", Some("default"), "data")
            .is_none()
    );
    assert_eq!(
        json_req(&server, "POST", pvcs, claim("data", None)).await.0,
        201
    );

    assert_eq!(
        json_req(&server, "POST", "/api/v1/persistentvolumes", volume("pv1"))
            .await
            .0,
        201
    );
    let (code, body) = json_req(
        &server,
        "DELETE",
        "/api/v1/persistentvolumes/pv1",
        Value::Null,
    )
    .await;
    assert_eq!(
        (code, body["kind"].as_str()),
        (200, Some("PersistentVolume")),
        "{body}"
    );

    let va = json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment", "metadata": {"name": "va1"},
        "spec": {"attacher": "csi.example.com", "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}}});
    let vas = "/apis/storage.k8s.io/v1/volumeattachments";
    assert_eq!(json_req(&server, "POST", vas, va).await.0, 201);
    let (code, body) = json_req(&server, "DELETE", &format!("{vas}/va1"), Value::Null).await;
    assert_eq!(
        (code, body["kind"].as_str()),
        (200, Some("VolumeAttachment")),
        "{body}"
    );
}

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

async fn bind(server: &ApiServer, ns: &str, claim_name: &str, pv: &str) {
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

#[tokio::test]
async fn protection_finalizers_hold_used_claims_and_bound_volumes() {
    let (server, _clock) = setup();
    let pvcs = "/api/v1/namespaces/default/persistentvolumeclaims";
    assert_eq!(
        json_req(&server, "POST", pvcs, claim("data", None)).await.0,
        201
    );
    let (code, pv) = json_req(&server, "POST", "/api/v1/persistentvolumes", volume("pv1")).await;
    assert_eq!(code, 201);
    assert_eq!(
        pv["metadata"]["finalizers"],
        json!(["kubernetes.io/pv-protection"])
    );
    bind(&server, "default", "data", "pv1").await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}});
    assert_eq!(
        json_req(&server, "POST", "/api/v1/namespaces/default/pods", pod)
            .await
            .0,
        201
    );

    // The bound volume stays Terminating.
    let (code, _) = json_req(
        &server,
        "DELETE",
        "/api/v1/persistentvolumes/pv1",
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let pv = server
        .object("", "v1", "persistentvolumes", None, "pv1")
        .expect("terminating");
    assert!(pv["metadata"]["deletionTimestamp"].is_string());
    // New finalizers are refused on an object being deleted.
    let (code, body) = send(
        &server,
        "PATCH",
        "/api/v1/persistentvolumes/pv1",
        "application/merge-patch+json",
        serde_json::to_vec(
            &json!({"metadata": {"finalizers": ["kubernetes.io/pv-protection", "example.com/x"]}}),
        )
        .expect("json"),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "PersistentVolume \"pv1\" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/x\"}"
    );

    // The claim a Pod uses stays Terminating until the Pod goes.
    let (code, _) = json_req(&server, "DELETE", &format!("{pvcs}/data"), Value::Null).await;
    assert_eq!(code, 200);
    assert!(
        server
            .object("", "v1", "persistentvolumeclaims", Some("default"), "data")
            .is_some()
    );
    let (code, _) = json_req(
        &server,
        "DELETE",
        "/api/v1/namespaces/default/pods/app",
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    // Pod gone → claim gone → volume Released → volume gone.
    assert!(
        server
            .object("", "v1", "persistentvolumeclaims", Some("default"), "data")
            .is_none()
    );
    assert!(
        server
            .object("", "v1", "persistentvolumes", None, "pv1")
            .is_none()
    );
    assert_eq!(
        json_req(&server, "POST", pvcs, claim("data", None)).await.0,
        201
    );
}

// ---------------------------------------------------------------- 3. the small differences

async fn body_lines(response: http::Response<fake_apiserver::ResponseBody>) -> Vec<Value> {
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

fn get(uri: &str) -> http::Request<Bytes> {
    http::Request::get(uri).body(Bytes::new()).expect("request")
}

#[tokio::test]
async fn a_watcher_behind_compaction_gets_410_not_a_gap() {
    let (server, _clock) = setup();
    let rv = server.resource_version();
    let response = server
        .handle(get(&format!(
            "/api/v1/namespaces/default/persistentvolumeclaims?watch=1&resourceVersion={rv}&timeoutSeconds=5"
        )))
        .await;
    let pvcs = "/api/v1/namespaces/default/persistentvolumeclaims";
    assert_eq!(
        json_req(&server, "POST", pvcs, claim("a", None)).await.0,
        201
    );
    assert_eq!(
        json_req(&server, "POST", pvcs, claim("b", None)).await.0,
        201
    );
    // The history the watcher has not read yet goes away (compaction, or the 20 000 trim).
    server.compact();
    let lines = body_lines(response).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["type"], "ERROR");
    assert_eq!(lines[0]["object"]["code"], 410);
    assert_eq!(lines[0]["object"]["reason"], "Expired");
}

#[tokio::test]
async fn query_booleans_follow_the_server_rule() {
    let (server, clock) = setup();
    // `?watch` (no value) and `watch=yes` are watches on a real server.
    for query in ["watch", "watch=yes", "watch=True"] {
        let response = server
            .handle(get(&format!("/api/v1/namespaces?{query}&timeoutSeconds=1")))
            .await;
        let collect = tokio::spawn(body_lines(response));
        clock.advance(std::time::Duration::from_secs(2)).await;
        let lines = collect.await.expect("joined");
        assert_eq!(lines.len(), 4, "{query}: {lines:?}");
        assert!(lines.iter().all(|l| l["type"] == "ADDED"), "{query}");
    }
    // `watch=false` / `0` are lists.
    for query in ["watch=false", "watch=FALSE", "watch=0"] {
        let lines = body_lines(
            server
                .handle(get(&format!("/api/v1/namespaces?{query}")))
                .await,
        )
        .await;
        assert_eq!(lines[0]["kind"], "NamespaceList", "{query}");
    }
    // sendInitialEvents=True is true: initial events and the end bookmark.
    let response = server
        .handle(get("/api/v1/namespaces?watch=1&sendInitialEvents=True&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=1&timeoutSeconds=1"))
        .await;
    let collect = tokio::spawn(body_lines(response));
    clock.advance(std::time::Duration::from_secs(2)).await;
    let lines = collect.await.expect("joined");
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(lines[4]["type"], "BOOKMARK");
    assert_eq!(
        lines[4]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

#[tokio::test]
async fn watch_options_get_the_real_422() {
    let (server, _clock) = setup();
    let (code, body) = json_req(
        &server,
        "GET",
        "/api/v1/namespaces?watch=1&sendInitialEvents=true",
        Value::Null,
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
    );
    let (code, body) = json_req(
        &server,
        "GET",
        "/api/v1/namespaces?watch=1&resourceVersionMatch=Exact",
        Value::Null,
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided, resourceVersionMatch: Unsupported value: \"Exact\": supported values: \"NotOlderThan\"]"
    );
}

#[tokio::test]
async fn removing_the_last_label_leaves_no_empty_map() {
    let (server, _clock) = setup();
    let pvcs = "/api/v1/namespaces/default/persistentvolumeclaims";
    let mut c = claim("data", None);
    c["metadata"]["labels"] = json!({"app": "db"});
    c["metadata"]["annotations"] = json!({});
    let (code, body) = json_req(&server, "POST", pvcs, c).await;
    assert_eq!(code, 201);
    assert!(body["metadata"].get("annotations").is_none(), "{body}");
    let (code, body) = send(
        &server,
        "PATCH",
        &format!("{pvcs}/data"),
        "application/merge-patch+json",
        serde_json::to_vec(&json!({"metadata": {"labels": {"app": null}}})).expect("json"),
    )
    .await;
    assert_eq!(code, 200);
    assert!(body["metadata"].get("labels").is_none(), "{body}");
}

#[tokio::test]
async fn unknown_resources_in_a_served_version_answer_a_status() {
    let (server, _clock) = setup();
    for path in [
        "/api/v1/widgets",
        "/apis/storage.k8s.io/v1/csidrivers/x",
        "/api/v1/namespaces/default/widgets",
    ] {
        let (code, body) = json_req(&server, "GET", path, Value::Null).await;
        assert_eq!(code, 404, "{path}");
        assert_eq!(body["kind"], "Status", "{path}: {body}");
        assert_eq!(body["reason"], "NotFound");
        assert_eq!(
            body["message"],
            "the server could not find the requested resource"
        );
    }
    // Outside any served group version: the mux's plain text.
    let (code, body) = json_req(&server, "GET", "/apis/apps/v1/deployments", Value::Null).await;
    assert_eq!((code, body), (404, json!("404 page not found\n")));
}

#[tokio::test]
async fn the_watch_timeout_runs_on_the_server_clock() {
    let (server, clock) = setup();
    let response = server
        .handle(get(
            "/api/v1/nodes?watch=1&resourceVersion=1&timeoutSeconds=30",
        ))
        .await;
    let collect = tokio::spawn(body_lines(response));
    fake_apiserver::clock::settle().await;
    assert!(!collect.is_finished());
    clock.advance(std::time::Duration::from_secs(29)).await;
    assert!(!collect.is_finished(), "closed before timeoutSeconds");
    clock.advance(std::time::Duration::from_secs(1)).await;
    let lines = collect
        .await
        .expect("the watch ended at 30 s of server time");
    assert!(lines.is_empty());
}

// ---------------------------------------------------------------- 4. reproducible ids, bounded log

#[tokio::test]
async fn a_seed_gives_the_same_uids_and_generated_names_every_run() {
    async fn run(seed: u64) -> Vec<String> {
        let clock = VirtualClock::new(START.parse().expect("valid timestamp"));
        let server = ApiServer::seeded(Arc::new(clock), seed);
        let mut out = Vec::new();
        for _ in 0..3 {
            let mut c = claim("", None);
            c["metadata"] = json!({"generateName": "data-"});
            let (code, body) = json_req(
                &server,
                "POST",
                "/api/v1/namespaces/default/persistentvolumeclaims",
                c,
            )
            .await;
            assert_eq!(code, 201);
            out.push(format!(
                "{} {}",
                body["metadata"]["name"], body["metadata"]["uid"]
            ));
        }
        out
    }
    let first = run(42).await;
    assert_eq!(first, run(42).await);
    assert_ne!(first, run(43).await);
    let names: std::collections::BTreeSet<&String> = first.iter().collect();
    assert_eq!(names.len(), 3, "distinct ids: {first:?}");
}

#[tokio::test]
async fn the_request_log_is_a_bounded_ring() {
    let cluster = fake_apiserver::FakeCluster::default();
    assert_eq!(
        cluster.request_log().capacity(),
        fake_apiserver::control::DEFAULT_LOG_CAPACITY
    );
    cluster.request_log().set_capacity(3);
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(cluster.client());
    for i in 0..5 {
        let _ = nodes.get_opt(&format!("n{i}")).await.expect("get_opt");
    }
    let records = cluster.requests();
    let paths: Vec<&str> = records.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/api/v1/nodes/n2", "/api/v1/nodes/n3", "/api/v1/nodes/n4"]
    );
    assert_eq!(records[0].seq, 2);
    assert_eq!(cluster.request_log().evicted(), 2);
}

// ---------------------------------------------------------------- 6. structure

#[tokio::test]
async fn routing_faults_and_the_log_read_one_request_info() {
    use fake_apiserver::control::{Fault, Verb};
    use fake_apiserver::request_info::RequestInfo;
    let (server, _clock) = setup();
    // The API server routes by the info in the extensions, not by re-reading the path.
    let mut request = get("/api/v1/namespaces/default/persistentvolumeclaims/anything");
    request.extensions_mut().insert(RequestInfo::parse(
        &http::Method::GET,
        "/api/v1/namespaces",
        None,
    ));
    let lines = body_lines(server.handle(request).await).await;
    assert_eq!(lines[0]["kind"], "NamespaceList");

    // Through the control layer: the fault rule, the log and the router agree on a
    // percent-encoded name.
    let cluster = fake_apiserver::FakeCluster::default();
    cluster.faults().add(
        Fault::new(Verb::Get, "persistentvolumeclaims")
            .name("a b")
            .status(503),
    );
    let client = cluster.client();
    let request = http::Request::get("/api/v1/namespaces/default/persistentvolumeclaims/a%20b")
        .body(Vec::new())
        .expect("request");
    let err = client
        .request::<Value>(request)
        .await
        .expect_err("the fault answers");
    assert!(matches!(err, kube::Error::Api(s) if s.code == 503));
    let record = &cluster.requests()[0];
    assert_eq!(record.info.name.as_deref(), Some("a b"));
    assert_eq!(
        record.info.query,
        fake_apiserver::request_info::Query::default()
    );
}

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

#[tokio::test]
async fn event_lists_by_involved_object_follow_updates_and_deletes() {
    let (server, _clock) = setup();
    let events = "/api/v1/namespaces/default/events";
    let event = |name: &str, claim: &str, uid: &str| {
        json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name}, "involvedObject": {"kind": "PersistentVolumeClaim", "name": claim,
        "namespace": "default", "uid": uid}, "reason": "R", "message": "m", "type": "Normal"})
    };
    for i in 0..50 {
        let claim = format!("c{}", i % 5);
        let (code, _) = json_req(
            &server,
            "POST",
            events,
            event(&format!("e{i:02}"), &claim, &format!("u{}", i % 5)),
        )
        .await;
        assert_eq!(code, 201);
    }
    let names = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let (_, body) = json_req(
        &server,
        "GET",
        &format!("{events}?fieldSelector=involvedObject.uid%3Du1"),
        Value::Null,
    )
    .await;
    assert_eq!(
        names(&body),
        [
            "e01", "e06", "e11", "e16", "e21", "e26", "e31", "e36", "e41", "e46"
        ]
    );
    // Moved to another object (core/v1 allows it): found under the new uid only.
    let (code, _) = send(
        &server,
        "PATCH",
        &format!("{events}/e01"),
        "application/merge-patch+json",
        serde_json::to_vec(&json!({"involvedObject": {"uid": "u9", "name": "c9"}})).expect("json"),
    )
    .await;
    assert_eq!(code, 200);
    let (_, body) = json_req(
        &server,
        "GET",
        &format!("{events}?fieldSelector=involvedObject.uid%3Du1,involvedObject.name%3Dc1"),
        Value::Null,
    )
    .await;
    assert_eq!(names(&body).len(), 9);
    let (_, body) = json_req(
        &server,
        "GET",
        "/api/v1/events?fieldSelector=involvedObject.name%3Dc9",
        Value::Null,
    )
    .await;
    assert_eq!(names(&body), ["e01"]);
    // Through events.k8s.io (regarding.uid) and after a delete.
    assert_eq!(
        json_req(&server, "DELETE", &format!("{events}/e06"), Value::Null)
            .await
            .0,
        200
    );
    let (_, body) = json_req(
        &server,
        "GET",
        "/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.uid%3Du1",
        Value::Null,
    )
    .await;
    assert_eq!(names(&body).len(), 8);
    // A negated term is not an index lookup: everything but u1.
    let (_, body) = json_req(
        &server,
        "GET",
        &format!("{events}?fieldSelector=involvedObject.uid!%3Du1"),
        Value::Null,
    )
    .await;
    assert_eq!(names(&body).len(), 41);
}
