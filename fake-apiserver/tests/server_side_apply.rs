//! Server-side apply and field ownership through kube-rs in process: `metadata.managedFields`
//! (one entry per manager and operation, `fieldsV1` notation, server-clock times), fields an
//! applier drops are removed, field-manager conflicts answer 409 with the real Status, `force`
//! takes ownership, non-apply writes record `operation: Update`, and `[{}]` resets the record.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use fake_apiserver::transport::in_process_client;
use fake_apiserver::{ApiServer, VirtualClock};

mod common;

use common::in_process::{START, api_status as status_of, with_client};

fn setup() -> (Api<PersistentVolumeClaim>, kube::Client, VirtualClock) {
    let (_server, client, clock) = with_client();
    (Api::namespaced(client.clone(), "default"), client, clock)
}

fn claim(labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "labels": labels},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
}

async fn apply<K>(api: &Api<K>, manager: &str, force: bool, doc: Value) -> Result<K, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut params = PatchParams::apply(manager);
    if force {
        params = params.force();
    }
    api.patch("data", &params, &Patch::Apply(doc)).await
}

/// The `managedFields` of an object as JSON.
fn managed<K: serde::Serialize>(obj: &K) -> Value {
    let v = serde_json::to_value(obj).expect("serializable");
    v.pointer("/metadata/managedFields")
        .cloned()
        .unwrap_or(Value::Null)
}

fn entry<'a>(fields: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    fields
        .as_array()?
        .iter()
        .find(|e| e["manager"] == json!(manager) && e["operation"] == json!(operation))
}

#[tokio::test]
async fn apply_records_one_apply_entry_in_fields_v1_notation() {
    let (api, _, _) = setup();
    let created = apply(&api, "mgr", false, claim(json!({"app": "a"})))
        .await
        .expect("apply creates");
    assert_eq!(
        managed(&created),
        json!([{
            "manager": "mgr",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": START,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:accessModes": {},
                    "f:resources": {"f:requests": {"f:storage": {}}}
                }
            }
        }])
    );
    // Re-applying the same configuration changes nothing (same resourceVersion, same time).
    let again = apply(&api, "mgr", false, claim(json!({"app": "a"})))
        .await
        .expect("re-apply");
    assert_eq!(
        again.metadata.resource_version,
        created.metadata.resource_version
    );
}

#[tokio::test]
async fn fields_dropped_from_an_apply_are_removed_unless_someone_else_owns_them() {
    let (api, _, _) = setup();
    apply(
        &api,
        "mgr",
        false,
        claim(json!({"a": "1", "b": "2", "c": "3"})),
    )
    .await
    .expect("first apply");
    // Another applier shares `c` with the same value: no conflict, shared ownership.
    apply(
        &api,
        "other",
        false,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "data", "labels": {"c": "3"}}}),
    )
    .await
    .expect("shared apply");
    let after = apply(&api, "mgr", false, claim(json!({"a": "1"})))
        .await
        .expect("second apply");
    let labels = after.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("a").map(String::as_str), Some("1"));
    assert!(
        !labels.contains_key("b"),
        "b was owned by mgr only: {labels:?}"
    );
    assert_eq!(
        labels.get("c").map(String::as_str),
        Some("3"),
        "c is still owned by other"
    );
    let fields = managed(&after);
    assert_eq!(
        entry(&fields, "mgr", "Apply").expect("mgr entry")["fieldsV1"]["f:metadata"],
        json!({"f:labels": {"f:a": {}}})
    );
    assert_eq!(
        entry(&fields, "other", "Apply").expect("other entry")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:c": {}}}})
    );
}

#[tokio::test]
async fn a_conflicting_apply_is_a_409_with_field_manager_causes_and_force_takes_over() {
    let (api, _, clock) = setup();
    apply(&api, "mgr", false, claim(json!({"app": "a"})))
        .await
        .expect("first apply");
    let status = status_of(
        apply(&api, "intruder", false, claim(json!({"app": "b"})))
            .await
            .expect_err("conflict"),
    );
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"mgr\": .metadata.labels.app"
    );
    let causes = status.details.expect("details").causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].field, ".metadata.labels.app");
    assert_eq!(
        causes[0].message,
        "conflict with \"mgr\": .metadata.labels.app"
    );
    assert_eq!(
        api.get("data")
            .await
            .expect("get")
            .metadata
            .labels
            .unwrap_or_default()["app"],
        "a",
        "a rejected apply changes nothing"
    );

    clock.advance(Duration::from_secs(60)).await;
    let forced = apply(&api, "intruder", true, claim(json!({"app": "b"})))
        .await
        .expect("forced apply");
    assert_eq!(
        forced.metadata.labels.clone().unwrap_or_default()["app"],
        "b"
    );
    let fields = managed(&forced);
    let intruder = entry(&fields, "intruder", "Apply").expect("intruder entry");
    assert_eq!(intruder["time"], json!("2026-01-01T00:01:00Z"));
    assert_eq!(
        intruder["fieldsV1"]["f:metadata"],
        json!({"f:labels": {"f:app": {}}})
    );
    let mgr = entry(&fields, "mgr", "Apply").expect("mgr keeps the spec it shares");
    assert_eq!(
        mgr["fieldsV1"].get("f:metadata"),
        None,
        "mgr lost its only label"
    );
    assert!(
        mgr["fieldsV1"].get("f:spec").is_some(),
        "mgr keeps the spec"
    );
}

#[tokio::test]
async fn non_apply_writes_record_update_entries_and_conflict_with_an_apply() {
    let (api, _, clock) = setup();
    let pvc: PersistentVolumeClaim =
        serde_json::from_value(claim(json!({"app": "a"}))).expect("valid claim");
    let created = api
        .create(
            &PostParams {
                field_manager: Some("creator".into()),
                ..PostParams::default()
            },
            &pvc,
        )
        .await
        .expect("create");
    assert_eq!(
        managed(&created),
        json!([{
            "manager": "creator", "operation": "Update", "apiVersion": "v1", "time": START,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                // The creator owns the defaulted volumeMode too (the field manager sees the
                // decoded object).
                "f:spec": {"f:accessModes": {}, "f:resources": {"f:requests": {".": {}, "f:storage": {}}},
                           "f:volumeMode": {}}
            }
        }])
    );
    clock.advance(Duration::from_secs(5)).await;
    let patched = api
        .patch(
            "data",
            &PatchParams {
                field_manager: Some("editor".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"metadata": {"labels": {"app": "edited", "tier": "db"}}})),
        )
        .await
        .expect("merge patch");
    let fields = managed(&patched);
    assert_eq!(
        entry(&fields, "editor", "Update").expect("editor entry"),
        &json!({"manager": "editor", "operation": "Update", "apiVersion": "v1",
                "time": "2026-01-01T00:00:05Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}, "f:tier": {}}}}})
    );
    assert_eq!(
        entry(&fields, "creator", "Update").expect("creator entry")["fieldsV1"]["f:metadata"],
        json!({"f:labels": {}}),
        "the creator lost app to the editor"
    );
    // An apply that sets a value an Update manager owns names its apiVersion.
    let status = status_of(
        apply(&api, "mgr", false, claim(json!({"tier": "web"})))
            .await
            .expect_err("conflict with an Update manager"),
    );
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"editor\" using v1: .metadata.labels.tier"
    );
}

#[tokio::test]
async fn managed_fields_reset_with_a_single_empty_entry() {
    let (api, _, _) = setup();
    apply(&api, "mgr", false, claim(json!({"app": "a"})))
        .await
        .expect("apply");
    let reset = api
        .patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"managedFields": [{}]}})),
        )
        .await
        .expect("reset");
    assert_eq!(managed(&reset), Value::Null);
    // `[]` does not reset (the real server keeps the record).
    apply(&api, "mgr", false, claim(json!({"app": "a"})))
        .await
        .expect("apply again");
    let kept = api
        .patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"managedFields": []}})),
        )
        .await
        .expect("empty list");
    assert!(entry(&managed(&kept), "mgr", "Apply").is_some());
}

#[tokio::test]
async fn keyed_lists_use_k_notation_and_conflicts_name_the_item() {
    let (_, client, _) = setup();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = |image: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "data"},
               "spec": {"containers": [{"name": "app", "image": image}]}})
    };
    let created = apply(&pods, "mgr", false, pod("busybox:1"))
        .await
        .expect("apply pod");
    assert_eq!(
        managed(&created)[0]["fieldsV1"],
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {
            ".": {}, "f:image": {}, "f:name": {}}}}})
    );
    let status = status_of(
        apply(&pods, "other", false, pod("busybox:2"))
            .await
            .expect_err("conflict"),
    );
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"mgr\": .spec.containers[name=\"app\"].image"
    );

    let attachments: Api<VolumeAttachment> = Api::all(client);
    let va = apply(
        &attachments,
        "csi-attacher",
        false,
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
               "metadata": {"name": "data"},
               "spec": {"attacher": "csi.example.com", "nodeName": "n1",
                        "source": {"persistentVolumeName": "pv1"}}}),
    )
    .await
    .expect("apply attachment");
    assert_eq!(
        managed(&va),
        json!([{"manager": "csi-attacher", "operation": "Apply",
                "apiVersion": "storage.k8s.io/v1", "time": START, "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:attacher": {}, "f:nodeName": {},
                                        "f:source": {"f:persistentVolumeName": {}}}}}])
    );
}

#[tokio::test]
async fn status_writers_keep_their_entry_when_the_main_resource_is_updated() {
    let (api, _, _) = setup();
    apply(&api, "mgr", false, claim(json!({"app": "a"})))
        .await
        .expect("apply");
    let params = |manager: &str| PatchParams {
        field_manager: Some(manager.into()),
        ..PatchParams::default()
    };
    api.patch_status(
        "data",
        &params("pv-controller"),
        &Patch::Merge(json!({"status": {"phase": "Lost"}})),
    )
    .await
    .expect("status patch");
    let updated = api
        .patch(
            "data",
            &params("editor"),
            &Patch::Merge(
                json!({"metadata": {"labels": {"tier": "db"}}, "status": {"phase": "Bound"}}),
            ),
        )
        .await
        .expect("main resource patch");
    let fields = managed(&updated);
    let status_writer = entry(&fields, "pv-controller", "Update").expect("status entry kept");
    assert_eq!(status_writer["subresource"], json!("status"));
    assert_eq!(status_writer["fieldsV1"]["f:status"]["f:phase"], json!({}));
    assert_eq!(
        entry(&fields, "editor", "Update").expect("editor entry")["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:tier": {}}}}),
        "the main resource ignores status, so the editor owns only its label"
    );
}

#[tokio::test]
async fn force_on_a_non_apply_patch_is_refused_like_patch_options_validation() {
    use http_body_util::BodyExt;
    let clock = VirtualClock::new(START.parse().expect("valid timestamp"));
    let server = ApiServer::new(Arc::new(clock));
    let pvcs: Api<PersistentVolumeClaim> =
        Api::namespaced(in_process_client(server.clone()), "default");
    apply(&pvcs, "mgr", false, claim(json!({"app": "a"})))
        .await
        .expect("apply");
    let request = http::Request::builder()
        .method("PATCH")
        .uri("/api/v1/namespaces/default/persistentvolumeclaims/data?force=true")
        .header("content-type", "application/merge-patch+json")
        .body(bytes::Bytes::from_static(
            b"{\"metadata\":{\"labels\":{\"x\":\"y\"}}}",
        ))
        .expect("valid request");
    let response = server.handle(request).await;
    assert_eq!(response.status(), 422);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let status: Value = serde_json::from_slice(&body).expect("a Status");
    assert_eq!(
        status["message"],
        json!(
            "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
        )
    );
}
