//! `cargo bench -p fake-apiserver-bench --bench apiserver [-- --json]`
//!
//! The fake cluster in process (kube 5 client, `FakeCluster::client`) beside its peer,
//! kube-fake-client 0.3 (controller-runtime's fake client for Rust, on kube 4.2 and
//! k8s-openapi 0.28), in the same run on the same workload:
//! - GET of one claim, N times;
//! - CREATE of N events (spread over 100 involved objects);
//! - UPDATE (PUT) of one claim, N/5 times, each from the last answer;
//! - LIST by `involvedObject.name` and by `involvedObject.uid` over the N events;
//! - watch fan-out: 100 watchers, 100 creates (ours only: the peer has no watch).
//!
//! Each figure is printed beside the peer's with the ratio (ours / peer, higher is better);
//! `--json` prints one `{"bench","variant","metric","value","unit"}` object per line
//! (shared/spec/targets.md).

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

const N: usize = 10_000;
const LISTS: usize = 200;
const WATCHERS: usize = 100;

/// Operations per second of one workload, for one side.
#[derive(Debug, Clone, Copy)]
struct Rates {
    get: f64,
    create: f64,
    update: f64,
    list_name: f64,
    list_uid: f64,
    list_items: usize,
}

fn per_second(count: usize, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

/// The same workload written once for both client stacks (they differ only in crate paths).
macro_rules! workload {
    ($kube:ident, $k8s:ident, $client:expr, $create_namespace:expr) => {{
        use $k8s::api::core::v1::{Event, Namespace, PersistentVolumeClaim};
        use $kube::api::{Api, ListParams, PostParams};
        let client = $client;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": "bench"}})).expect("namespace");
        if $create_namespace {
            namespaces.create(&PostParams::default(), &ns).await.expect("namespace");
        }
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "bench");
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({
            "metadata": {"name": "data", "namespace": "bench"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }))
        .expect("claim");
        claims.create(&PostParams::default(), &claim).await.expect("claim");

        let started = Instant::now();
        for _ in 0..N {
            claims.get("data").await.expect("get");
        }
        let get = per_second(N, started);

        let events: Api<Event> = Api::namespaced(client.clone(), "bench");
        let started = Instant::now();
        for i in 0..N {
            let event: Event = serde_json::from_value(json!({
                "metadata": {"name": format!("data.{i:05}"), "namespace": "bench"},
                "involvedObject": {"kind": "PersistentVolumeClaim", "namespace": "bench",
                                   "name": format!("disk-{}", i % 100), "uid": format!("uid-{}", i % 100)},
                "reason": "Attached", "message": "volume attached", "type": "Normal",
                "source": {"component": "bench"},
            }))
            .expect("event");
            events.create(&PostParams::default(), &event).await.expect("create");
        }
        let create = per_second(N, started);

        let mut current = claims.get("data").await.expect("get");
        let started = Instant::now();
        for i in 0..N / 5 {
            current
                .metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert("round".into(), i.to_string());
            current = claims
                .replace("data", &PostParams::default(), &current)
                .await
                .expect("update");
        }
        let update = per_second(N / 5, started);

        let mut list_items = 0;
        let started = Instant::now();
        for i in 0..LISTS {
            let params =
                ListParams::default().fields(&format!("involvedObject.name=disk-{}", i % 100));
            list_items += events.list(&params).await.expect("list").items.len();
        }
        let list_name = per_second(LISTS, started);
        let started = Instant::now();
        for i in 0..LISTS {
            let params =
                ListParams::default().fields(&format!("involvedObject.uid=uid-{}", i % 100));
            list_items += events.list(&params).await.expect("list").items.len();
        }
        let list_uid = per_second(LISTS, started);
        Rates {
            get,
            create,
            update,
            list_name,
            list_uid,
            list_items,
        }
    }};
}

async fn ours() -> Rates {
    let cluster = fake_apiserver::FakeCluster::new(Arc::new(fake_apiserver::SystemClock));
    cluster.request_log().set_capacity(1024);
    workload!(kube, k8s_openapi, cluster.client(), true)
}

/// The kube-rs client alone: every GET answered with the same fixed bytes.
async fn floor() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let cluster = fake_apiserver::FakeCluster::new(Arc::new(fake_apiserver::SystemClock));
    let client = cluster.client();
    let claims: kube::Api<PersistentVolumeClaim> = kube::Api::namespaced(client.clone(), "default");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("claim");
    claims
        .create(&Default::default(), &claim)
        .await
        .expect("create");
    let request = http::Request::get("/api/v1/namespaces/default/persistentvolumeclaims/data")
        .body(Vec::new())
        .expect("req");
    let text = client.request_text(request).await.expect("text");
    println!("answer ({} bytes): {text}", text.len());
    for (label, body) in [
        ("with managedFields", text.clone()),
        ("without managedFields", {
            let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
            v["metadata"]
                .as_object_mut()
                .expect("meta")
                .remove("managedFields");
            v.to_string()
        }),
    ] {
        let body = bytes::Bytes::from(body);
        let service = tower::service_fn(move |_r: http::Request<kube::client::Body>| {
            let body = body.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder()
                        .status(200)
                        .header("content-type", "application/json")
                        .body(http_body_util::Full::new(body))
                        .expect("resp"),
                )
            }
        });
        let fixed = kube::Client::new(service, "default");
        let claims: kube::Api<PersistentVolumeClaim> = kube::Api::namespaced(fixed, "default");
        let started = Instant::now();
        for _ in 0..N {
            claims.get("data").await.expect("get");
        }
        println!("floor GET {label}: {:.0} op/s", per_second(N, started));
    }
    use k8s_openapi::api::core::v1::Event;
    let created = r#"{"apiVersion":"v1","kind":"Event","involvedObject":{"kind":"PersistentVolumeClaim","name":"disk-0","namespace":"bench","uid":"uid-0"},"message":"volume attached","metadata":{"creationTimestamp":"2026-11-26T00:22:31Z","managedFields":[{"apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:involvedObject":{"f:kind":{},"f:name":{},"f:namespace":{},"f:uid":{}},"f:message":{},"f:reason":{},"f:source":{"f:component":{}},"f:type":{}},"manager":"","operation":"Update","time":"2026-11-26T00:22:31Z"}],"name":"data.00000","namespace":"bench","resourceVersion":"6","uid":"c584133a-c916-4b3c-a74f-87fe272ee347"},"reason":"Attached","reportingComponent":"","reportingInstance":"","source":{"component":"bench"},"type":"Normal"}"#;
    let body = bytes::Bytes::from(created);
    let service = tower::service_fn(move |r: http::Request<kube::client::Body>| {
        let body = body.clone();
        async move {
            use http_body_util::BodyExt;
            let _ = r.into_body().collect().await;
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(201)
                    .header("content-type", "application/json")
                    .body(http_body_util::Full::new(body))
                    .expect("resp"),
            )
        }
    });
    let fixed = kube::Client::new(service, "default");
    let events: kube::Api<Event> = kube::Api::namespaced(fixed, "bench");
    let started = Instant::now();
    for i in 0..N {
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": format!("data.{i:05}"), "namespace": "bench"},
            "involvedObject": {"kind": "PersistentVolumeClaim", "namespace": "bench",
                               "name": format!("disk-{}", i % 100), "uid": format!("uid-{}", i % 100)},
            "reason": "Attached", "message": "volume attached", "type": "Normal",
            "source": {"component": "bench"},
        }))
        .expect("event");
        events
            .create(&Default::default(), &event)
            .await
            .expect("create");
    }
    println!("floor CREATE: {:.0} op/s", per_second(N, started));
}

async fn profile_get() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let cluster = fake_apiserver::FakeCluster::new(Arc::new(fake_apiserver::SystemClock));
    cluster.request_log().set_capacity(1024);
    let claims: kube::Api<PersistentVolumeClaim> =
        kube::Api::namespaced(cluster.client(), "default");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("claim");
    claims
        .create(&Default::default(), &claim)
        .await
        .expect("create");
    let n: usize = std::env::var("PROFILE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(N);
    let started = Instant::now();
    for _ in 0..n {
        claims.get("data").await.expect("get");
    }
    println!("get: {:.0} op/s", per_second(n, started));
}

async fn profile_get_peer() {
    use k8s_openapi_028::api::core::v1::PersistentVolumeClaim;
    let client = kube_fake_client::ClientBuilder::new()
        .build()
        .await
        .expect("peer");
    let claims: kube4::Api<PersistentVolumeClaim> = kube4::Api::namespaced(client, "default");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("claim");
    claims
        .create(&Default::default(), &claim)
        .await
        .expect("create");
    let n: usize = std::env::var("PROFILE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(N);
    let started = Instant::now();
    for _ in 0..n {
        claims.get("data").await.expect("get");
    }
    println!("peer get: {:.0} op/s", per_second(n, started));
}

async fn profile_update() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let cluster = fake_apiserver::FakeCluster::new(Arc::new(fake_apiserver::SystemClock));
    cluster.request_log().set_capacity(1024);
    let claims: kube::Api<PersistentVolumeClaim> =
        kube::Api::namespaced(cluster.client(), "default");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "data", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("claim");
    let mut current = claims
        .create(&Default::default(), &claim)
        .await
        .expect("create");
    let n: usize = std::env::var("PROFILE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(N);
    let started = Instant::now();
    for i in 0..n {
        current
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("round".into(), i.to_string());
        current = claims
            .replace("data", &Default::default(), &current)
            .await
            .expect("update");
    }
    println!("update: {:.0} op/s", per_second(n, started));
}

async fn profile_create() {
    use k8s_openapi::api::core::v1::{Event, Namespace};
    use kube::api::{Api, PostParams};
    let cluster = fake_apiserver::FakeCluster::new(Arc::new(fake_apiserver::SystemClock));
    cluster.request_log().set_capacity(1024);
    let client = cluster.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "bench"}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    let events: Api<Event> = Api::namespaced(client.clone(), "bench");
    let started = Instant::now();
    let n: usize = std::env::var("PROFILE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(N);
    for i in 0..n {
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": format!("data.{i:05}"), "namespace": "bench"},
            "involvedObject": {"kind": "PersistentVolumeClaim", "namespace": "bench",
                               "name": format!("disk-{}", i % 100), "uid": format!("uid-{}", i % 100)},
            "reason": "Attached", "message": "volume attached", "type": "Normal",
            "source": {"component": "bench"},
        }))
        .expect("event");
        let created = events
            .create(&PostParams::default(), &event)
            .await
            .expect("create");
        if i == 0 {
            println!("{}", serde_json::to_string(&created).expect("json"));
        }
    }
    println!("create: {:.0} op/s", per_second(n, started));
}

async fn profile_create_peer() {
    use k8s_openapi_028::api::core::v1::Event;
    use kube4::api::{Api, PostParams};
    let client = kube_fake_client::ClientBuilder::new()
        .build()
        .await
        .expect("peer");
    let events: Api<Event> = Api::namespaced(client.clone(), "bench");
    let started = Instant::now();
    let n: usize = std::env::var("PROFILE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(N);
    for i in 0..n {
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": format!("data.{i:05}"), "namespace": "bench"},
            "involvedObject": {"kind": "PersistentVolumeClaim", "namespace": "bench",
                               "name": format!("disk-{}", i % 100), "uid": format!("uid-{}", i % 100)},
            "reason": "Attached", "message": "volume attached", "type": "Normal",
            "source": {"component": "bench"},
        }))
        .expect("event");
        let created = events
            .create(&PostParams::default(), &event)
            .await
            .expect("create");
        if i == 0 {
            println!("{}", serde_json::to_string(&created).expect("json"));
        }
    }
    println!("peer create: {:.0} op/s", per_second(n, started));
}

async fn peer() -> Rates {
    let client = kube_fake_client::ClientBuilder::new()
        .build()
        .await
        .expect("kube-fake-client");
    // kube-fake-client serves no Namespace objects (and needs none).
    workload!(kube4, k8s_openapi_028, client, false)
}

/// 100 watchers on the events of one namespace, then 100 creates: watch events delivered
/// per second (until every watcher has all of them).
async fn fan_out() -> f64 {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Event;
    use kube::api::{Api, PostParams, WatchEvent, WatchParams};
    let cluster = fake_apiserver::FakeCluster::new(Arc::new(fake_apiserver::SystemClock));
    cluster.request_log().set_capacity(1024);
    let client = cluster.client();
    let events: Api<Event> = Api::namespaced(client, "default");
    let rv = cluster.server().resource_version().to_string();
    let mut streams = Vec::new();
    for _ in 0..WATCHERS {
        streams.push(
            events
                .watch(&WatchParams::default(), &rv)
                .await
                .expect("watch")
                .boxed(),
        );
    }
    let started = Instant::now();
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut seen = 0;
                while seen < WATCHERS {
                    match stream.next().await {
                        Some(Ok(WatchEvent::Added(_))) => seen += 1,
                        Some(_) => {}
                        None => break,
                    }
                }
                seen
            })
        })
        .collect();
    for i in 0..WATCHERS {
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": format!("w.{i}")},
            "involvedObject": {"kind": "Node", "name": "n1"},
            "reason": "R", "message": "m",
        }))
        .expect("event");
        events
            .create(&PostParams::default(), &event)
            .await
            .expect("create");
    }
    let mut delivered = 0;
    for reader in readers {
        delivered += reader.await.expect("reader");
    }
    per_second(delivered, started)
}

fn main() {
    let json_out = std::env::args().any(|a| a == "--json");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // `--only PART` runs one part alone, for a profiler (`valgrind --tool=callgrind`, `perf`):
    // `get`, `create`, `update` (this fake), `peer-get`, `peer-create` (the peer), `floor` (the kube-rs
    // client answered with fixed bytes). `PROFILE_N` sets the number of requests.
    if let Some(part) = std::env::args().skip_while(|a| a != "--only").nth(1) {
        runtime.block_on(async {
            match part.as_str() {
                "get" => profile_get().await,
                "create" => profile_create().await,
                "peer-get" => profile_get_peer().await,
                "update" => profile_update().await,
                "peer-create" => profile_create_peer().await,
                "floor" => floor().await,
                other => eprintln!(
                    "--only {other}: expected get, create, update, peer-get, peer-create or floor"
                ),
            }
        });
        return;
    }
    let (ours, peer, fan_out) =
        runtime.block_on(async { (ours().await, peer().await, fan_out().await) });
    let rows = [
        ("get", "GET one claim", ours.get, peer.get),
        ("create", "CREATE event", ours.create, peer.create),
        ("update", "UPDATE (PUT) claim", ours.update, peer.update),
        (
            "list_by_involved_name",
            "LIST involvedObject.name over 10 000 events",
            ours.list_name,
            peer.list_name,
        ),
        (
            "list_by_involved_uid",
            "LIST involvedObject.uid over 10 000 events",
            ours.list_uid,
            peer.list_uid,
        ),
    ];
    if json_out {
        for (metric, _, o, p) in rows {
            for (variant, value) in [("fake-apiserver", o), ("kube-fake-client-0.3", p)] {
                println!(
                    "{}",
                    json!({"bench": "apiserver", "variant": variant, "metric": metric, "value": value, "unit": "ops/s"})
                );
            }
            println!(
                "{}",
                json!({"bench": "apiserver", "variant": "ratio", "metric": metric, "value": o / p, "unit": "x"})
            );
        }
        println!(
            "{}",
            json!({"bench": "apiserver", "variant": "fake-apiserver", "metric": "watch_fan_out_100", "value": fan_out, "unit": "events/s"})
        );
        println!(
            "{}",
            json!({"bench": "apiserver", "variant": "fake-apiserver", "metric": "list_items_checked", "value": ours.list_items, "unit": "items"})
        );
        println!(
            "{}",
            json!({"bench": "apiserver", "variant": "kube-fake-client-0.3", "metric": "list_items_checked", "value": peer.list_items, "unit": "items"})
        );
        return;
    }
    println!(
        "{:<46} {:>16} {:>22} {:>8}",
        "workload (in process)", "fake-apiserver", "kube-fake-client 0.3", "ratio"
    );
    for (_, label, o, p) in rows {
        println!("{label:<46} {o:>12.0} op/s {p:>18.0} op/s {:>7.2}x", o / p);
    }
    println!(
        "{:<46} {fan_out:>10.0} ev/s {:>23} {:>8}",
        "watch fan-out (100 watchers x 100 creates)", "(no watch)", "-"
    );
    println!(
        "items returned by the LISTs: fake-apiserver {}, kube-fake-client {} (each should be {})",
        ours.list_items,
        peer.list_items,
        2 * LISTS * (N / 100)
    );
}
