//! In process, protobuf request bodies (`api::protobuf`): kubectl's `k8s\0` envelopes decode, bad ones get 400 and unknown types the truthful 415.

use k8s_pb::api::core::v1 as pb;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pbmeta;

use fake_apiserver::api::protobuf;

use crate::common::in_process::*;

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
