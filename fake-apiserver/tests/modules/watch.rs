//! In process, the watch stream (`api::watch`): 410 behind compaction, the watch options' 422, the timeout on the server clock.

use serde_json::Value;

use crate::common::in_process::*;

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
