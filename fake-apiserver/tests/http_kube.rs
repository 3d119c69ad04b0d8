//! kube-rs over HTTP against the fake: the same verbs behave as in process; faults, latency,
//! dropped connections, the request log and bearer tokens as kube sees them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use fake_apiserver::control::{Fault, Outcome, Verb};
use fake_apiserver::{FakeCluster, VirtualClock};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event, Namespace, Node, ObjectReference, PersistentVolumeClaim};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;

fn namespace(name: &str) -> Namespace {
    serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace")
}

fn pvc(name: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "demo"}},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "fast"
        }
    }))
    .expect("pvc")
}

fn event(name: &str, claim: &PersistentVolumeClaim) -> Event {
    Event {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: Some("PersistentVolumeClaim".into()),
            name: claim.metadata.name.clone(),
            namespace: claim.metadata.namespace.clone(),
            uid: claim.metadata.uid.clone(),
            api_version: Some("v1".into()),
            ..Default::default()
        },
        reason: Some("Provisioning".into()),
        message: Some("provisioning the volume".into()),
        type_: Some("Normal".into()),
        ..Default::default()
    }
}

/// Runs create/get/list/patch/watch/delete and returns what a user would observe, with
/// server-chosen values (uids, resourceVersions, times) left out.
async fn scenario(client: kube::Client) -> Vec<String> {
    let mut seen = Vec::new();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(&PostParams::default(), &namespace("t1"))
        .await
        .expect("create namespace");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "t1");
    let created = claims
        .create(&PostParams::default(), &pvc("data"))
        .await
        .expect("create pvc");
    seen.push(format!(
        "created {:?} ns={:?} uid-set={} rv-set={}",
        created.metadata.name,
        created.metadata.namespace,
        created.metadata.uid.is_some(),
        created.metadata.resource_version.is_some()
    ));
    let duplicate = claims.create(&PostParams::default(), &pvc("data")).await;
    match duplicate {
        Err(kube::Error::Api(status)) => seen.push(format!(
            "duplicate {} {} {}",
            status.code, status.reason, status.message
        )),
        other => seen.push(format!("duplicate unexpected {other:?}")),
    }
    let got = claims.get("data").await.expect("get pvc");
    seen.push(format!(
        "got {:?} {:?}",
        got.metadata.name, got.metadata.labels
    ));
    seen.push(format!(
        "missing {:?}",
        claims.get_opt("nope").await.map(|o| o.is_some())
    ));
    let list = claims.list(&ListParams::default()).await.expect("list");
    seen.push(format!(
        "list {:?} rv-set={}",
        list.items
            .iter()
            .map(|c| c.metadata.name.clone())
            .collect::<Vec<_>>(),
        list.metadata.resource_version.is_some()
    ));
    let patched = claims
        .patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "gold"}}})),
        )
        .await
        .expect("patch");
    seen.push(format!("patched {:?}", patched.metadata.labels));

    // Watch events from the list's resourceVersion; create one; it must arrive as ADDED.
    let events: Api<Event> = Api::namespaced(client.clone(), "t1");
    let from = events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .metadata
        .resource_version
        .expect("list resourceVersion");
    let stream = events
        .watch(&WatchParams::default().timeout(30), &from)
        .await
        .expect("watch");
    let mut stream = stream.boxed();
    events
        .create(&PostParams::default(), &event("data.1", &got))
        .await
        .expect("create event");
    let first = tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.try_next().await {
                // Bookmarks may come at any time; they are not changes.
                Ok(Some(WatchEvent::Bookmark(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("watch event within the deadline")
    .expect("watch stream ok");
    match first {
        Some(WatchEvent::Added(event)) => seen.push(format!(
            "watched ADDED {:?} for {:?} uid-match={}",
            event.metadata.name,
            event.involved_object.name,
            event.involved_object.uid == got.metadata.uid
        )),
        other => seen.push(format!("watched unexpected {other:?}")),
    }
    claims
        .delete("data", &DeleteParams::default())
        .await
        .expect("delete");
    seen.push(format!(
        "after delete {:?}",
        claims.get_opt("data").await.map(|o| o.is_some())
    ));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbs_over_http_behave_as_in_process() {
    let in_process = scenario(FakeCluster::default().client()).await;
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    let over_http = scenario(http_client(&server, None)).await;
    assert_eq!(in_process, over_http);
    assert!(
        over_http[1].starts_with("duplicate 409 AlreadyExists"),
        "{over_http:#?}"
    );
    assert!(over_http[3].contains("Ok(false)"), "{over_http:#?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_status_reaches_kube_with_the_real_reason() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    let client = http_client(&server, None);
    let nodes: Api<Node> = Api::all(client.clone());
    cluster
        .faults()
        .add(Fault::new(Verb::Get, "nodes").name("n1").status(404));
    // get_opt decides "absent" by reason: it must say NotFound.
    assert!(nodes.get_opt("n1").await.expect("get_opt").is_none());
    cluster.faults().add(
        Fault::new(Verb::Create, "events")
            .namespace("ns")
            .status(403)
            .times(1),
    );
    let events: Api<Event> = Api::namespaced(client, "ns");
    let err = events
        .create(&PostParams::default(), &Event::default())
        .await
        .expect_err("forbidden");
    match err {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
            assert!(
                status.message.starts_with("events is forbidden: User "),
                "{}",
                status.message
            );
        }
        other => panic!("expected an API error, got {other:?}"),
    }
    // Used up: one request only.
    assert!(
        cluster
            .faults()
            .list()
            .iter()
            .all(|rule| rule.fault.resource.as_deref() != Some("events"))
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_header_and_status_reach_kube() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    cluster.faults().add(
        Fault::new(Verb::List, "events")
            .status(429)
            .retry_after(7)
            .times(2),
    );
    let client = http_client_no_retry(&server, None);
    let request = http::Request::get("/api/v1/namespaces/ns/events?limit=500")
        .body(Vec::new())
        .expect("request");
    let (status, headers, body) = raw(&client, request).await.expect("send");
    assert_eq!(status, 429);
    assert_eq!(headers[http::header::RETRY_AFTER], "7");
    assert!(is_status(&body, 429), "{}", String::from_utf8_lossy(&body));
    let events: Api<Event> = Api::namespaced(client, "ns");
    match events.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.reason, "TooManyRequests");
            assert_eq!(status.details.map(|d| d.retry_after_seconds), Some(7));
        }
        other => panic!("expected 429, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_kube_client_retries_after_the_retry_after_delay() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    cluster.faults().add(
        Fault::new(Verb::Get, "nodes")
            .status(503)
            .retry_after(1)
            .times(1),
    );
    cluster
        .faults()
        .add(Fault::new(Verb::Get, "nodes").status(404).times(1));
    let nodes: Api<Node> = Api::all(http_client(&server, None));
    // 503 is retried (after Retry-After), then the 404 answers.
    assert!(nodes.get_opt("n1").await.expect("get_opt").is_none());
    let statuses: Vec<_> = cluster.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![
            Some(http::StatusCode::SERVICE_UNAVAILABLE),
            Some(http::StatusCode::NOT_FOUND)
        ]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_slept_on_the_virtual_clock() {
    let clock = VirtualClock::new("2026-01-01T00:00:00Z".parse().expect("time"));
    let cluster = FakeCluster::new(Arc::new(clock.clone()));
    let server = serve(&cluster, None).await;
    for client in [http_client_no_retry(&server, None), cluster.client()] {
        cluster.faults().add(
            Fault::new(Verb::List, "nodes")
                .latency(Duration::from_secs(3600))
                .times(1),
        );
        cluster
            .faults()
            .add(Fault::new(Verb::List, "nodes").status(504).times(1));
        cluster.clear_requests();
        let nodes: Api<Node> = Api::all(client);
        let task = tokio::spawn(async move { nodes.list(&ListParams::default()).await });
        // The request sleeps on the virtual clock: it cannot finish before time moves.
        eventually("the request to sleep", || clock.sleepers() == 1).await;
        assert!(!task.is_finished());
        clock.advance(Duration::from_secs(3600)).await;
        let result = tokio::time::timeout(DEADLINE, task)
            .await
            .expect("finishes once the virtual hour passed")
            .expect("task");
        match result {
            Err(kube::Error::Api(status)) => assert_eq!(status.reason, "Timeout"),
            other => panic!("expected the 504 after the delay, got {other:?}"),
        }
        let log = cluster.requests();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].latency, Duration::from_secs(3600));
        assert_eq!(log[0].status, Some(http::StatusCode::GATEWAY_TIMEOUT));
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_is_a_transport_error() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    for (how, client) in [
        ("http", http_client(&server, None)),
        ("in process", cluster.client()),
    ] {
        cluster
            .faults()
            .add(Fault::new(Verb::Get, "nodes").drop_connection().times(1));
        let nodes: Api<Node> = Api::all(client);
        match nodes.get("n1").await {
            Err(kube::Error::Api(status)) => {
                panic!("{how}: expected a transport error, got {status:?}")
            }
            Err(_) => {}
            Ok(node) => panic!("{how}: expected a transport error, got {node:?}"),
        }
        let last = cluster.requests().pop().expect("logged");
        assert_eq!(last.outcome, Outcome::Dropped, "{how}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_log_keeps_order_verbs_and_statuses() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    let client = http_client(&server, None);
    cluster.faults().add(Fault::any().status(418));
    let nodes: Api<Node> = Api::all(client.clone());
    let events: Api<Event> = Api::namespaced(client, "ns");
    let _ = nodes.get("a").await;
    let _ = events.list(&ListParams::default().labels("x=y")).await;
    let _ = events
        .create(&PostParams::default(), &Event::default())
        .await;
    let _ = events
        .patch("e", &PatchParams::default(), &Patch::Merge(json!({})))
        .await;
    let _ = events.delete("e", &DeleteParams::default()).await;
    let log = cluster.requests();
    let summary: Vec<_> = log
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.path.clone(),
                r.info().verb,
                r.status.map(|s| s.as_u16()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "GET".into(),
                "/api/v1/nodes/a".into(),
                Some(Verb::Get),
                Some(418)
            ),
            (
                "GET".into(),
                "/api/v1/namespaces/ns/events".into(),
                Some(Verb::List),
                Some(418)
            ),
            (
                "POST".into(),
                "/api/v1/namespaces/ns/events".into(),
                Some(Verb::Create),
                Some(418)
            ),
            (
                "PATCH".into(),
                "/api/v1/namespaces/ns/events/e".into(),
                Some(Verb::Patch),
                Some(418)
            ),
            (
                "DELETE".into(),
                "/api/v1/namespaces/ns/events/e".into(),
                Some(Verb::Delete),
                Some(418)
            ),
        ]
    );
    assert!(
        log[1]
            .query_pairs()
            .contains(&("labelSelector".into(), "x=y".into()))
    );
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    // Bodies and content types are kept for assertions on what clients sent.
    assert_eq!(log[2].content_type.as_deref(), Some("application/json"));
    assert_eq!(
        log[2].json().map(|body| body["kind"].clone()),
        Some(json!("Event"))
    );
    assert_eq!(
        log[3].content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(log[3].json(), Some(json!({})));
    cluster.clear_requests();
    assert!(cluster.requests().is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_required_when_configured() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, Some("s3cret")).await;
    for token in [None, Some("wrong")] {
        match http_client_no_retry(&server, token)
            .apiserver_version()
            .await
        {
            Err(kube::Error::Api(status)) => {
                assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized"));
            }
            other => panic!("token {token:?}: expected 401, got {other:?}"),
        }
    }
    assert_eq!(
        cluster.requests().last().and_then(|r| r.status),
        Some(http::StatusCode::UNAUTHORIZED)
    );
    let client = http_client(&server, Some("s3cret"));
    let version = client
        .apiserver_version()
        .await
        .expect("version with the token");
    assert!(!version.git_version.is_empty());
    let namespaces: Api<Namespace> = Api::all(client);
    namespaces
        .list(&ListParams::default())
        .await
        .expect("list with the token");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_listen_is_refused_unless_allowed() {
    let cluster = FakeCluster::default();
    let refused = cluster
        .serve_http(fake_apiserver::transport::HttpOptions {
            listen: "0.0.0.0:0".parse().expect("addr"),
            ..Default::default()
        })
        .await;
    match refused {
        Err(error) => assert!(
            error.to_string().contains("--allow-non-loopback"),
            "{error}"
        ),
        Ok(server) => panic!("listened on {}", server.addr()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_stream_survives_faults_on_other_requests() {
    // A latency rule on creates must not stall a running watch.
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    let client = http_client(&server, None);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(&PostParams::default(), &namespace("w"))
        .await
        .expect("namespace");
    let events: Api<Event> = Api::namespaced(client.clone(), "w");
    let stream = events
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .expect("watch");
    let mut stream = stream.boxed();
    let claim = PersistentVolumeClaim {
        metadata: kube::api::ObjectMeta {
            name: Some("c".into()),
            namespace: Some("w".into()),
            uid: Some("u".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    // A fault on creates (and a dropped request) does not disturb the open watch.
    cluster
        .faults()
        .add(Fault::new(Verb::Create, "events").status(500).times(1));
    cluster.faults().add(
        Fault::new(Verb::Create, "events")
            .drop_connection()
            .times(1),
    );
    for expected in ["500", "dropped"] {
        let failed = events
            .create(&PostParams::default(), &event("c.1", &claim))
            .await;
        assert!(failed.is_err(), "{expected}: {failed:?}");
    }
    events
        .create(&PostParams::default(), &event("c.1", &claim))
        .await
        .expect("create event");
    let added = tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.next().await {
                // Bookmarks may come at any time; they are not changes.
                Some(Ok(WatchEvent::Bookmark(_))) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("event within the deadline");
    match added {
        Some(Ok(WatchEvent::Added(event))) => {
            assert_eq!(event.metadata.name.as_deref(), Some("c.1"))
        }
        other => panic!("expected ADDED c.1, got {other:?}"),
    }
    server.shutdown().await;
}
