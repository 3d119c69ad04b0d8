//! In process, patches (`api::patch`): removing the last label leaves no empty map.

use serde_json::json;

use crate::common::in_process::*;

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
