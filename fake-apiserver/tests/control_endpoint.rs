//! The control path over real HTTP (`/fake-apiserver/v1/info`, `…/faults`): authenticated like
//! every request, never faulted, never logged, unknown to discovery; and the binary serving it.

mod common;

use std::time::Duration;

use common::*;
use fake_apiserver::FakeCluster;
use fake_apiserver::control::FaultAction;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use serde_json::{Value, json};

const TOKEN: &str = "c0ntrol";

fn get(path: &str) -> http::Request<Vec<u8>> {
    http::Request::get(path).body(Vec::new()).expect("request")
}

fn post(path: &str, body: &str) -> http::Request<Vec<u8>> {
    http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.as_bytes().to_vec())
        .expect("request")
}

fn delete(path: &str) -> http::Request<Vec<u8>> {
    http::Request::delete(path)
        .body(Vec::new())
        .expect("request")
}

async fn send(client: &kube::Client, request: http::Request<Vec<u8>>) -> (u16, Value) {
    let (status, _, body) = raw(client, request).await.expect("transport");
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body)));
    (status.as_u16(), value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_tells_a_fake_from_a_real_cluster_and_needs_the_token() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, Some(TOKEN)).await;
    let client = http_client_no_retry(&server, Some(TOKEN));
    let (status, info) = send(&client, get("/fake-apiserver/v1/info")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["fakeApiserver"], json!(true));
    assert_eq!(info["version"], json!(env!("CARGO_PKG_VERSION")));
    assert_eq!(info["kubernetesVersion"], json!("v1.33.0"));
    for token in [None, Some("wrong")] {
        let other = http_client_no_retry(&server, token);
        let (status, body) = send(&other, get("/fake-apiserver/v1/info")).await;
        assert_eq!(status, 401, "token {token:?}: {body}");
        assert_eq!(body["reason"], "Unauthorized");
        let (status, _) = send(&other, post("/fake-apiserver/v1/faults", "{}")).await;
        assert_eq!(status, 401);
        assert!(cluster.faults().list().is_empty());
    }
    // Nothing of the control path (refused or served) is in the request log.
    assert!(
        cluster.requests().is_empty(),
        "{:?}",
        cluster
            .requests()
            .iter()
            .map(|r| r.uri())
            .collect::<Vec<_>>()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_faults_apply_to_kubernetes_requests_and_delete_clears_them() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, Some(TOKEN)).await;
    let client = http_client_no_retry(&server, Some(TOKEN));
    let (status, body) = send(
        &client,
        post(
            "/fake-apiserver/v1/faults",
            r#"{"verb":"get","resource":"nodes","name":"n1","status":503,"retryAfter":4,"times":1}"#,
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let first = body["id"].as_u64().expect("numeric id");
    let (status, body) = send(
        &client,
        post(
            "/fake-apiserver/v1/faults",
            r#"{"verb":"list","resource":"pods","namespace":"ns","latency":"1m30s"}"#,
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["id"].as_u64().expect("numeric id") > first);
    let rules = cluster.faults().list();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].id.0, first);
    assert_eq!(
        rules[1].fault.action,
        FaultAction::Latency(Duration::from_secs(90))
    );
    // The control requests themselves are not faulted even by a rule matching everything.
    cluster.faults().add(
        fake_apiserver::control::Fault::any()
            .resource("none")
            .status(500),
    );
    let (status, info) = send(&client, get("/fake-apiserver/v1/info")).await;
    assert_eq!((status, info["faults"].clone()), (200, json!(3)));

    let nodes: Api<Node> = Api::all(client.clone());
    match nodes.get("n1").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (503, "ServiceUnavailable")
            );
        }
        other => panic!("expected the posted 503, got {other:?}"),
    }
    // Used up (times: 1): the next get is served (404, no such node).
    match nodes.get("n1").await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404),
        other => panic!("expected 404 NotFound, got {other:?}"),
    }
    let (status, body) = send(&client, delete("/fake-apiserver/v1/faults")).await;
    assert_eq!((status, body), (200, json!({"cleared": 2})));
    assert!(cluster.faults().list().is_empty());
    // The log holds the two node GETs only.
    let log: Vec<String> = cluster.requests().iter().map(|r| r.uri()).collect();
    assert_eq!(log, ["/api/v1/nodes/n1", "/api/v1/nodes/n1"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_fault_bodies_get_400_with_what_is_wrong() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, Some(TOKEN)).await;
    let client = http_client_no_retry(&server, Some(TOKEN));
    let cases = [
        ("not json", "not valid JSON of the fault shape"),
        (
            r#"{"verb":"get","resource":"nodes","colour":"red"}"#,
            "unknown field `colour`",
        ),
        (r#"{"resource":"nodes"}"#, "missing field `verb`"),
        (
            r#"{"verb":"fetch","resource":"nodes"}"#,
            "verb: unknown verb \"fetch\"",
        ),
        (
            r#"{"verb":"get","resource":"nodes","status":302}"#,
            "status: 302 is not an error status",
        ),
        (
            r#"{"verb":"get","resource":"nodes","latency":"5 minutes"}"#,
            "latency: \" minutes\" in \"5 minutes\" is not a unit",
        ),
        (
            r#"{"verb":"get","resource":"nodes","latency":"1s","loseResponse":true}"#,
            "not several",
        ),
        (
            r#"{"verb":"get","resource":"nodes","times":0}"#,
            "times: 0 would never apply",
        ),
        (
            r#"{"verb":"get","resource":"nodes","times":-1}"#,
            "invalid value: integer `-1`",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = send(&client, post("/fake-apiserver/v1/faults", body)).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["kind"], "Status");
        assert_eq!(answer["reason"], "BadRequest");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{body}: {message}");
    }
    assert!(cluster.faults().list().is_empty());
    let (status, answer) = send(&client, get("/fake-apiserver/v1/faults/7")).await;
    assert_eq!((status, answer["reason"].clone()), (404, json!("NotFound")));
    let (status, answer) = send(&client, post("/fake-apiserver/v1/info", "{}")).await;
    assert_eq!(
        (status, answer["reason"].clone()),
        (405, json!("MethodNotAllowed"))
    );
    assert!(cluster.requests().is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_does_not_show_the_control_path() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    let client = http_client_no_retry(&server, None);
    for path in [
        "/",
        "/api",
        "/api/v1",
        "/apis",
        "/openapi/v2",
        "/openapi/v3",
    ] {
        let (status, _, body) = raw(&client, get(path)).await.expect("transport");
        assert_eq!(status, 200, "{path}");
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("fake-apiserver"),
            "{path} names the control path"
        );
    }
    server.shutdown().await;
}

#[test]
fn the_binary_serves_the_control_path_with_its_token() {
    let process = FakeProcess::start(&["--token", TOKEN]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = process.kube_client().await;
        let (status, info) = send(&client, get("/fake-apiserver/v1/info")).await;
        assert_eq!((status, info["fakeApiserver"].clone()), (200, json!(true)));
        let (status, body) = send(
            &client,
            post(
                "/fake-apiserver/v1/faults",
                r#"{"verb":"list","resource":"nodes","status":429,"times":1}"#,
            ),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let nodes: Api<Node> = Api::all(client.clone());
        let mut config = kube::Config::new(process.url.parse().expect("url"));
        config.auth_info.token = Some(TOKEN.to_string().into());
        config.default_retry = false;
        let no_retry = kube::Client::try_from(config).expect("client");
        let nodes_no_retry: Api<Node> = Api::all(no_retry);
        match nodes_no_retry.list(&Default::default()).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 429),
            other => panic!("expected the posted 429, got {other:?}"),
        }
        nodes.list(&Default::default()).await.expect("served again");
        let (status, body) = send(&client, delete("/fake-apiserver/v1/faults")).await;
        assert_eq!((status, body), (200, json!({"cleared": 0})));
    });
}
