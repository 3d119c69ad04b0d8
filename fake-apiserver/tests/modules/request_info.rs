//! In process, the request parsed once (`request_info`): query booleans, and routing, faults and the log reading one value.

use serde_json::Value;

use crate::common::in_process::*;

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
    assert_eq!(record.info().name.as_deref(), Some("a b"));
    assert_eq!(
        record.info().query,
        fake_apiserver::request_info::Query::default()
    );
}
