//! The reliability matrix (`docs/targets.md`) against the fake cluster, in process, on virtual time:
//! 1000 events (100 claims × 10 distinct messages) under each fault; what the API server holds
//! at the end is read back through kube-rs and checked for exactly-once delivery.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use csi_events::clock::VirtualClock;
use csi_events::metrics::DropCause;
use csi_events::{ClaimName, EventPoster, PosterConfig, Reason};
use fake_apiserver::FakeCluster;
use fake_apiserver::control::{Fault, Verb};
use k8s_openapi::api::core::v1::{Event, Namespace, PersistentVolumeClaim};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

const CLAIMS: usize = 100;
const MESSAGES: usize = 10;
const EVENTS: usize = CLAIMS * MESSAGES;

struct Rig {
    cluster: FakeCluster,
    clock: VirtualClock,
    poster: EventPoster,
}

async fn rig() -> Rig {
    let clock = VirtualClock::new("2026-01-01T00:00:00Z".parse().expect("start"));
    let cluster = FakeCluster::new(Arc::new(clock.clone()));
    let client = cluster.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "vms"}})).expect("namespace"),
        )
        .await
        .expect("create namespace");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "vms");
    for c in 0..CLAIMS {
        let claim = json!({
            "metadata": {"name": format!("disk-{c}"), "namespace": "vms"},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}
        });
        claims
            .create(
                &PostParams::default(),
                &serde_json::from_value(claim).expect("claim"),
            )
            .await
            .expect("create claim");
    }
    let poster = EventPoster::new(
        client,
        PosterConfig::default()
            .instance("reliability")
            .clock(Arc::new(clock.clone())),
    );
    Rig {
        cluster,
        clock,
        poster,
    }
}

impl Rig {
    /// Posts the 1000 events (one VolumeDetached per claim and node).
    fn post_all(&self) {
        for c in 0..CLAIMS {
            let claim = ClaimName::new("vms", format!("disk-{c}"));
            for m in 0..MESSAGES {
                self.poster.post_volume_detached(
                    Some(&claim),
                    &format!("pvc-{c}").into(),
                    &format!("node-{m}").into(),
                );
            }
        }
    }

    /// Lets time pass in `step`s until nothing is held (or `limit` passes).
    async fn drive(&self, step: Duration, limit: Duration) {
        let mut waited = Duration::ZERO;
        loop {
            self.poster.flush().await;
            if self.poster.queued() + self.poster.waiting() == 0 || waited >= limit {
                return;
            }
            self.clock.advance(step).await;
            waited += step;
        }
    }

    async fn events(&self) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.cluster.client(), "vms");
        api.list(&ListParams::default())
            .await
            .expect("list events")
            .items
    }

    /// Asserts that every stored event is distinct (claim uid, message) with `count`.
    async fn assert_exactly_once(&self, expected: usize, count: i32) {
        let events = self.events().await;
        let distinct: BTreeSet<_> = events
            .iter()
            .map(|e| (e.involved_object.uid.clone(), e.message.clone()))
            .collect();
        assert_eq!(events.len(), expected, "Event objects");
        assert_eq!(distinct.len(), expected, "no duplicates");
        assert!(
            events.iter().all(|e| e.count == Some(count)),
            "every count is {count}"
        );
        assert!(events.iter().all(|e| {
            e.involved_object
                .uid
                .as_deref()
                .is_some_and(|uid| !uid.is_empty())
        }));
    }

    fn dropped(&self, cause: DropCause) -> u64 {
        self.poster.metrics().dropped(Reason::VolumeDetached, cause)
    }
}

#[tokio::test]
async fn server_errors_for_the_first_tries_deliver_all_exactly_once() {
    let rig = rig().await;
    rig.cluster
        .faults()
        .add(Fault::new(Verb::Create, "events").status(503).times(40));
    rig.cluster
        .faults()
        .add(Fault::new(Verb::Create, "events").status(500).times(40));
    rig.post_all();
    rig.drive(Duration::from_secs(5), Duration::from_secs(600))
        .await;
    rig.assert_exactly_once(EVENTS, 1).await;
    assert_eq!(rig.dropped(DropCause::RetriesExhausted), 0);
}

#[tokio::test]
async fn lost_create_responses_then_409_deliver_exactly_once() {
    let rig = rig().await;
    // The first 1000 creates are written, but their answers are lost.
    rig.cluster.faults().add(
        Fault::new(Verb::Create, "events")
            .lose_response()
            .times(EVENTS as u32),
    );
    rig.post_all();
    rig.drive(Duration::from_secs(5), Duration::from_secs(600))
        .await;
    rig.assert_exactly_once(EVENTS, 1).await;
    let conflicts = rig
        .cluster
        .requests()
        .iter()
        .filter(|r| r.status == Some(http::StatusCode::CONFLICT))
        .count();
    assert_eq!(conflicts, EVENTS, "each retried create met its own event");
    assert_eq!(rig.dropped(DropCause::RetriesExhausted), 0);
}

#[tokio::test]
async fn too_many_requests_are_retried_never_before_retry_after() {
    let rig = rig().await;
    rig.cluster.faults().add(
        Fault::new(Verb::Create, "events")
            .status(429)
            .retry_after(20)
            .times(100),
    );
    rig.post_all();
    rig.poster.flush().await;
    rig.clock.advance(Duration::from_secs(19)).await;
    rig.poster.flush().await;
    let early = rig.events().await.len();
    assert!(
        early <= EVENTS - 100,
        "none of the 100 refused was retried within 19 s: {early}"
    );
    rig.drive(Duration::from_secs(5), Duration::from_secs(600))
        .await;
    rig.assert_exactly_once(EVENTS, 1).await;
}

#[tokio::test]
async fn ten_seconds_of_latency_per_request_delivers_all_and_never_blocks_the_caller() {
    let rig = rig().await;
    let latency = rig
        .cluster
        .faults()
        .add(Fault::any().latency(Duration::from_secs(10)));
    rig.post_all(); // returns with every request of the worker still pending
    assert_eq!(rig.poster.queued(), EVENTS);
    // `flush` would wait for requests that only the clock can finish: move the clock instead.
    for _ in 0..2_000 {
        if rig.poster.queued() == 0 {
            break;
        }
        rig.clock.advance(Duration::from_secs(10)).await;
    }
    assert_eq!(
        rig.poster.queued(),
        0,
        "everything delivered as time passed"
    );
    rig.cluster.faults().remove(latency);
    rig.assert_exactly_once(EVENTS, 1).await;
}

#[tokio::test]
async fn expired_events_are_created_anew_with_the_right_count() {
    let rig = rig().await;
    rig.post_all();
    rig.drive(Duration::from_secs(1), Duration::from_secs(60))
        .await;
    rig.assert_exactly_once(EVENTS, 1).await;
    let api: Api<Event> = Api::namespaced(rig.cluster.client(), "vms");
    for event in rig.events().await {
        let name = event.metadata.name.expect("name");
        api.delete(&name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    // A new token for each claim's spam bucket, then every event again.
    rig.clock.advance(Duration::from_secs(3600)).await;
    rig.post_all();
    rig.drive(Duration::from_secs(1), Duration::from_secs(60))
        .await;
    rig.assert_exactly_once(EVENTS, 2).await;
}

#[tokio::test]
async fn forbidden_writes_are_counted_rejected_and_nothing_is_written() {
    let rig = rig().await;
    rig.cluster
        .faults()
        .add(Fault::new(Verb::Create, "events").status(403));
    rig.post_all();
    rig.drive(Duration::from_secs(5), Duration::from_secs(600))
        .await;
    assert!(rig.events().await.is_empty());
    assert_eq!(rig.dropped(DropCause::Rejected), EVENTS as u64);
    assert_eq!(rig.poster.queued(), 0);
}

#[tokio::test]
async fn api_server_down_for_five_minutes_delivers_or_counts_every_event() {
    let rig = rig().await;
    let outage = rig.cluster.faults().add(Fault::any().drop_connection());
    rig.post_all();
    // Five minutes pass with the server unreachable.
    rig.drive(Duration::from_secs(10), Duration::from_secs(300))
        .await;
    rig.cluster.faults().remove(outage);
    rig.drive(Duration::from_secs(10), Duration::from_secs(600))
        .await;
    let delivered = rig.events().await.len();
    let exhausted = rig.dropped(DropCause::RetriesExhausted) as usize;
    assert_eq!(
        delivered + exhausted,
        EVENTS,
        "every event delivered or counted"
    );
    rig.assert_exactly_once(delivered, 1).await;
    assert_eq!(rig.poster.queued(), 0);
}

#[tokio::test]
async fn queue_overflow_drops_exactly_the_excess_and_delivers_the_rest() {
    let rig = rig().await;
    for _ in 0..10 {
        rig.post_all();
    }
    assert_eq!(rig.poster.queued(), 1000);
    assert_eq!(rig.dropped(DropCause::QueueFull), 9000);
    rig.drive(Duration::from_secs(1), Duration::from_secs(60))
        .await;
    // The queue held the first 1000 posts: one per claim and node.
    rig.assert_exactly_once(EVENTS, 1).await;
}

#[tokio::test]
async fn a_storm_of_1000_posts_on_one_claim_is_counted_whole_within_the_write_budget() {
    // One post a second for 1000 s on one claim, ten distinct messages, the default spam
    // filter (burst 25, one token per 300 s): every post ends up in a `count`, and the writes
    // for the claim stay within 25 + one per 300 s.
    let rig = rig().await;
    rig.cluster.clear_requests();
    let start = csi_events::clock::Clock::now(&rig.clock);
    let claim = ClaimName::new("vms", "disk-0");
    for i in 0..EVENTS {
        rig.poster.post_volume_detached(
            Some(&claim),
            &"pvc-0".into(),
            &format!("node-{}", i % MESSAGES).into(),
        );
        rig.clock.advance(Duration::from_secs(1)).await;
    }
    rig.drive(Duration::from_secs(10), Duration::from_secs(4 * 3600))
        .await;
    assert_eq!(
        rig.poster.queued() + rig.poster.waiting(),
        0,
        "every post finished"
    );
    let elapsed = csi_events::clock::Clock::now(&rig.clock)
        .duration_since(start)
        .as_secs();

    let events = rig.events().await;
    assert_eq!(events.len(), MESSAGES, "one Event per message");
    let counted: i32 = events.iter().filter_map(|e| e.count).sum();
    assert_eq!(counted as usize, EVENTS, "every post is in a count");
    for cause in [
        DropCause::QueueFull,
        DropCause::RateLimited,
        DropCause::RetriesExhausted,
        DropCause::Rejected,
    ] {
        assert_eq!(rig.dropped(cause), 0, "{cause:?}");
    }
    let writes = rig
        .cluster
        .requests()
        .iter()
        .filter(|r| {
            r.path.contains("/events")
                && (r.method == http::Method::POST || r.method == http::Method::PATCH)
        })
        .count() as u64;
    let elapsed = elapsed.max(0) as u64;
    let budget = 25 + elapsed.div_ceil(300);
    assert!(
        writes <= budget,
        "{writes} writes in {elapsed} s; the filter allows {budget}"
    );
    assert!(
        rig.poster.metrics().deferred(Reason::VolumeDetached) > 0,
        "posts did wait for tokens"
    );
}
