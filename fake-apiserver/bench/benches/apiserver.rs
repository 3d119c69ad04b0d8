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
//! Each figure is printed beside the peer's with the ratio (ours / peer, higher is better),
//! the median of `BENCH_ROUNDS` (3) rounds in which the sides take turns. A last part runs
//! the kube-rs client alone, answered with the fixed bytes of this fake's own GET and create
//! answers: no server can beat that through kube-rs, so it bounds the GET and CREATE ratios.
//! `--only PART` runs one part for a profiler (see `main`).
//! `--json` prints one `{"bench","variant","metric","value","unit"}` object per line
//! (`docs/targets.md`).

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

const N: usize = 10_000;
const LISTS: usize = 200;
const WATCHERS: usize = 100;
/// Rounds per side (`BENCH_ROUNDS` overrides).
const ROUNDS: usize = 3;

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

impl Rates {
    /// The median of each figure over `runs` (not empty).
    fn median(runs: &[Rates]) -> Rates {
        let pick = |f: fn(&Rates) -> f64| {
            let mut values: Vec<f64> = runs.iter().map(f).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        Rates {
            get: pick(|r| r.get),
            create: pick(|r| r.create),
            update: pick(|r| r.update),
            list_name: pick(|r| r.list_name),
            list_uid: pick(|r| r.list_uid),
            list_items: runs.iter().map(|r| r.list_items).min().unwrap_or(0),
        }
    }
}

fn per_second(count: usize, started: Instant) -> f64 {
    count as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

/// Which phases of the workload run (all of them, or one for a profiler), and how many
/// requests a GET or CREATE phase makes.
#[derive(Debug, Clone, Copy)]
struct Phases {
    only: Option<Phase>,
    n: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Get,
    Create,
    Update,
}

impl Phases {
    const ALL: Phases = Phases { only: None, n: N };

    fn runs(self, phase: Phase) -> bool {
        self.only.is_none_or(|only| only == phase)
    }

    /// The LIST phases run only with everything else.
    fn lists(self) -> bool {
        self.only.is_none()
    }
}

/// The same workload written once for both client stacks (they differ only in crate paths).
/// Skipped phases report 0.
macro_rules! workload {
    ($kube:ident, $k8s:ident, $client:expr, $create_namespace:expr, $phases:expr) => {{
        let phases: Phases = $phases;
        let n = phases.n;
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

        let mut get = 0.0;
        if phases.runs(Phase::Get) {
            let started = Instant::now();
            for _ in 0..n {
                claims.get("data").await.expect("get");
            }
            get = per_second(n, started);
        }

        let events: Api<Event> = Api::namespaced(client.clone(), "bench");
        let creates = if phases.runs(Phase::Create) { n } else { 0 };
        let started = Instant::now();
        for i in 0..creates {
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
        let create = if creates > 0 { per_second(creates, started) } else { 0.0 };

        let mut current = claims.get("data").await.expect("get");
        let updates = if phases.runs(Phase::Update) { n / 5 } else { 0 };
        let started = Instant::now();
        for i in 0..updates {
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
        let update = if updates > 0 { per_second(updates, started) } else { 0.0 };

        let lists = if phases.lists() { LISTS } else { 0 };
        let mut list_items = 0;
        let started = Instant::now();
        for i in 0..lists {
            let params =
                ListParams::default().fields(&format!("involvedObject.name=disk-{}", i % 100));
            list_items += events.list(&params).await.expect("list").items.len();
        }
        let list_name = per_second(lists, started);
        let started = Instant::now();
        for i in 0..lists {
            let params =
                ListParams::default().fields(&format!("involvedObject.uid=uid-{}", i % 100));
            list_items += events.list(&params).await.expect("list").items.len();
        }
        let list_uid = per_second(lists, started);
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

async fn ours(phases: Phases) -> Rates {
    let cluster = fake_apiserver::FakeCluster::new(Arc::new(fake_apiserver::SystemClock));
    cluster.request_log().set_capacity(1024);
    workload!(kube, k8s_openapi, cluster.client(), true, phases)
}

/// A kube-rs client whose every request is answered `status` with the same JSON `body`.
fn fixed_client(status: u16, body: String) -> kube::Client {
    let body = bytes::Bytes::from(body);
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let body = body.clone();
        async move {
            use http_body_util::BodyExt;
            // Read the request as a server would.
            let _ = request.into_body().collect().await?;
            http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(body))
                .map_err(kube::Error::HttpError)
        }
    });
    kube::Client::new(service, "default")
}

/// The kube-rs client alone: the GET and CREATE workloads answered with the fixed bytes of
/// this fake's own answers (captured first), no server work at all. No server can be faster
/// than this through kube-rs with the same answers: it is the ceiling of the ratios.
async fn client_alone(phases: Phases) -> (f64, f64) {
    let n = phases.n;
    use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim};
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
    let get_answer = client
        .request_text(
            http::Request::get("/api/v1/namespaces/default/persistentvolumeclaims/data")
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("get");
    let event = |i: usize| -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": format!("data.{i:05}"), "namespace": "default"},
            "involvedObject": {"kind": "PersistentVolumeClaim", "namespace": "default",
                               "name": format!("disk-{}", i % 100), "uid": format!("uid-{}", i % 100)},
            "reason": "Attached", "message": "volume attached", "type": "Normal",
            "source": {"component": "bench"},
        }))
        .expect("event")
    };
    let create_answer = client
        .request_text(
            http::Request::post("/api/v1/namespaces/default/events")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&event(0)).expect("json"))
                .expect("request"),
        )
        .await
        .expect("create");

    let claims: kube::Api<PersistentVolumeClaim> =
        kube::Api::namespaced(fixed_client(200, get_answer), "default");
    let gets = if phases.runs(Phase::Get) { n } else { 0 };
    let started = Instant::now();
    for _ in 0..gets {
        claims.get("data").await.expect("get");
    }
    let get = per_second(gets, started);
    let events: kube::Api<Event> =
        kube::Api::namespaced(fixed_client(201, create_answer), "default");
    let creates = if phases.runs(Phase::Create) { n } else { 0 };
    let started = Instant::now();
    for i in 0..creates {
        events
            .create(&Default::default(), &event(i))
            .await
            .expect("create");
    }
    (get, per_second(creates, started))
}

async fn peer(phases: Phases) -> Rates {
    let client = kube_fake_client::ClientBuilder::new()
        .build()
        .await
        .expect("kube-fake-client");
    // kube-fake-client serves no Namespace objects (and needs none).
    workload!(kube4, k8s_openapi_028, client, false, phases)
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
    // `get`, `create`, `update` (this fake), the same with `peer-` (the peer), or `floor`,
    // `floor-get`, `floor-create` (the kube-rs client alone, both or one workload).
    // `PROFILE_N` sets the number of GETs or creates (updates: a fifth of it).
    if let Some(part) = std::env::args().skip_while(|a| a != "--only").nth(1) {
        let n = std::env::var("PROFILE_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(N);
        let (side, phase) = match part.split_once('-') {
            Some(split) => split,
            None if part == "floor" => ("floor", ""),
            None => ("ours", part.as_str()),
        };
        let only = match phase {
            "get" => Some(Phase::Get),
            "create" => Some(Phase::Create),
            "update" => Some(Phase::Update),
            _ => None,
        };
        let phases = Phases { only, n };
        match (side, only) {
            ("ours", Some(_)) => println!("{part}: {:?}", runtime.block_on(ours(phases))),
            ("peer", Some(_)) => println!("{part}: {:?}", runtime.block_on(peer(phases))),
            // The kube-rs client alone answers GET and CREATE only.
            ("floor", None | Some(Phase::Get | Phase::Create))
                if phase.is_empty() || only.is_some() =>
            {
                let (get, create) = runtime.block_on(client_alone(phases));
                println!("kube-rs client alone: GET {get:.0} op/s, CREATE {create:.0} op/s");
            }
            _ => eprintln!(
                "--only {part}: expected get, create, update, peer-get, peer-create, peer-update, floor, floor-get or floor-create"
            ),
        }
        return;
    }
    // The sides take turns, ROUNDS times each (fresh stores every round), and each figure is
    // the median of its rounds: on a shared 2-core machine a burst of other work then lands
    // on one round of one side, not on one side's only run.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ROUNDS)
        .max(1);
    let (mut ours_runs, mut peer_runs, mut alone_runs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours_runs.push(runtime.block_on(ours(Phases::ALL)));
        peer_runs.push(runtime.block_on(peer(Phases::ALL)));
        alone_runs.push(runtime.block_on(client_alone(Phases::ALL)));
    }
    let (ours, peer) = (Rates::median(&ours_runs), Rates::median(&peer_runs));
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let alone_get = median(alone_runs.iter().map(|r| r.0).collect());
    let alone_create = median(alone_runs.iter().map(|r| r.1).collect());
    let fan_out = runtime.block_on(fan_out());
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
        for (metric, alone, p) in [
            ("get", alone_get, peer.get),
            ("create", alone_create, peer.create),
        ] {
            println!(
                "{}",
                json!({"bench": "apiserver", "variant": "kube-rs-client-alone", "metric": metric, "value": alone, "unit": "ops/s"})
            );
            println!(
                "{}",
                json!({"bench": "apiserver", "variant": "ceiling-ratio", "metric": metric, "value": alone / p, "unit": "x"})
            );
        }
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
        "kube-rs client alone, answered with this fake's fixed bytes (no server work: the most any server reaches):"
    );
    for (label, alone, o, p) in [
        ("GET one claim", alone_get, ours.get, peer.get),
        ("CREATE event", alone_create, ours.create, peer.create),
    ] {
        println!(
            "  {label:<44} {alone:>12.0} op/s   ceiling {:.2}x the peer; this fake reaches {:.0}% of it",
            alone / p,
            100.0 * o / alone
        );
    }
    println!(
        "items returned by the LISTs: fake-apiserver {}, kube-fake-client {} (each should be {})",
        ours.list_items,
        peer.list_items,
        2 * LISTS * (N / 100)
    );
}
