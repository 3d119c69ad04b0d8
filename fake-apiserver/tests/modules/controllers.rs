//! In process, the controllers (`api::controllers`): protection finalizers hold used claims and bound volumes.

use serde_json::{Value, json};

use crate::common::in_process::*;

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
