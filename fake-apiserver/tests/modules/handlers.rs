//! In process, the request handlers (`api::handlers`): what a delete answers, and routing inside a served group version.

use serde_json::{Value, json};

use crate::common::in_process::*;

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
