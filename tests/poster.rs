//! The event poster against a tower-test mocked API server: every assertion reads back the
//! requests the poster sent (method, path, body) and the objects the server holds.

mod support;

use std::time::Duration;

use csi_events::metrics::{DropCause, SkipCause};
use csi_events::{ClaimName, MigrationFailure, NodeName, Reason, VolumeId};
use http::Method;
use serde_json::{Value, json};
use support::mock_api::Action;
use support::{Harness, START, harness};

const NS: &str = "vms";
const CLAIM: &str = "disk-a";
const UID: &str = "6f1c0a4e-claim-uid";
const VOL: &str = "pvc-6f1c0a4e";

fn claim() -> ClaimName {
    ClaimName::new(NS, CLAIM)
}
fn vol() -> VolumeId {
    VOL.into()
}
fn node(name: &str) -> NodeName {
    name.into()
}

fn with_claim(h: &Harness) {
    h.mock.add_claim(NS, CLAIM, UID);
}

/// The bodies of every event create, in order.
fn creates(h: &Harness) -> Vec<Value> {
    h.mock
        .requests_to(Method::POST, "/events")
        .into_iter()
        .map(|r| r.body.expect("create has a JSON body"))
        .collect()
}

fn patches(h: &Harness) -> Vec<Value> {
    h.mock
        .requests_to(Method::PATCH, "/events/")
        .into_iter()
        .map(|r| r.body.expect("patch has a JSON body"))
        .collect()
}

/// Asserts the parts of a written event that every test cares about; the involvedObject is
/// the claim as the cluster holds it (its resourceVersion included).
fn assert_event(h: &Harness, event: &Value, kind: &str, reason: &str, message: &str) {
    assert_eq!(event["type"], kind, "type of {event}");
    assert_eq!(event["reason"], reason, "reason of {event}");
    assert_eq!(event["message"], message, "message of {event}");
    let stored = h
        .mock
        .cluster()
        .server()
        .object("", "v1", "persistentvolumeclaims", Some(NS), CLAIM)
        .expect("the claim is in the cluster");
    assert_eq!(
        event["involvedObject"],
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": NS, "name": CLAIM, "uid": UID, "resourceVersion": stored["metadata"]["resourceVersion"]}),
        "involvedObject of {event}"
    );
    assert_eq!(event["metadata"]["namespace"], NS);
    assert!(
        event["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with(&format!("{CLAIM}."))),
        "name of {event}"
    );
    assert_eq!(event["source"]["component"], "rds-csi-controller");
    assert_eq!(event["reportingComponent"], "rds-csi-controller");
    assert_eq!(event["reportingInstance"], "test-host");
    assert!(
        event.get("eventTime").is_none(),
        "eventTime unset in {event}"
    );
}

#[tokio::test]
async fn post_migration_started_writes_the_event_on_the_claim() {
    let h = harness(|c| c);
    with_claim(&h);
    h.poster.post_migration_started(
        Some(&claim()),
        &vol(),
        &node("node-a"),
        &node("node-b"),
        Duration::from_secs(300),
    );
    h.poster.flush().await;

    let sent = creates(&h);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        h.mock.requests_to(Method::POST, "")[0].path,
        "/api/v1/namespaces/vms/events"
    );
    assert_event(
        &h,
        &sent[0],
        "Normal",
        "MigrationStarted",
        "[pvc-6f1c0a4e]: KubeVirt live migration started - source: node-a, target: node-b, timeout: 5m0s",
    );
    assert_eq!(sent[0]["count"], 1);
    assert_eq!(sent[0]["firstTimestamp"], START);
    assert_eq!(sent[0]["lastTimestamp"], START);
    let stored = h.mock.events(NS);
    assert_eq!(stored.len(), 1, "exactly one Event object");
    assert_eq!(stored[0]["involvedObject"]["uid"], UID);
    assert_eq!(h.poster.metrics().posted(Reason::MigrationStarted), 1);
    assert!(h.logs.text().contains("event written"));
}

#[tokio::test]
async fn post_migration_started_pvc_not_found_skips_without_error() {
    let h = harness(|c| c);
    // No claim in the cluster.
    h.poster.post_migration_started(
        Some(&claim()),
        &vol(),
        &node("node-a"),
        &node("node-b"),
        Duration::from_secs(300),
    );
    h.poster.flush().await;

    assert!(creates(&h).is_empty(), "no event written");
    assert_eq!(
        h.mock
            .requests_to(Method::GET, "/persistentvolumeclaims/disk-a")
            .len(),
        1
    );
    assert_eq!(
        h.poster
            .metrics()
            .skipped(Reason::MigrationStarted, SkipCause::PvcNotFound),
        1
    );
    let logs = h.logs.text();
    assert!(
        logs.contains("WARN") && logs.contains("pvc_not_found") && logs.contains("vms/disk-a"),
        "a warning naming the claim and the cause: {logs}"
    );
    assert_eq!(h.poster.queued(), 0);
}

#[tokio::test]
async fn post_migration_completed_rounds_the_duration_to_the_second() {
    let h = harness(|c| c);
    with_claim(&h);
    h.poster.post_migration_completed(
        Some(&claim()),
        &vol(),
        &node("node-a"),
        &node("node-b"),
        Duration::from_millis(135_456),
    );
    h.poster.flush().await;
    let sent = creates(&h);
    assert_eq!(sent.len(), 1);
    assert_event(
        &h,
        &sent[0],
        "Normal",
        "MigrationCompleted",
        "[pvc-6f1c0a4e]: KubeVirt live migration completed - source: node-a -> target: node-b (duration: 2m15s)",
    );
}

#[tokio::test]
async fn post_migration_failed_is_a_warning_with_reason_and_elapsed() {
    let h = harness(|c| c);
    with_claim(&h);
    h.poster.post_migration_failed(
        Some(&claim()),
        &vol(),
        &node("node-a"),
        &node("node-b"),
        MigrationFailure::Timeout,
        Duration::from_secs(360),
    );
    h.poster.flush().await;
    let sent = creates(&h);
    assert_eq!(sent.len(), 1);
    assert_event(
        &h,
        &sent[0],
        "Warning",
        "MigrationFailed",
        "[pvc-6f1c0a4e]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: timeout, elapsed: 6m0s",
    );
}

#[tokio::test]
async fn claim_is_found_through_the_volume_claim_ref() {
    let h = harness(|c| c);
    with_claim(&h);
    h.mock.add_volume(VOL, Some((NS, CLAIM, UID)));
    h.poster
        .post_volume_attached(None, &vol(), &node("node-a"), Duration::from_millis(153));
    h.poster.flush().await;
    let paths: Vec<_> = h
        .mock
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        vec![
            (
                Method::GET,
                "/api/v1/persistentvolumes/pvc-6f1c0a4e".to_owned()
            ),
            (
                Method::GET,
                "/api/v1/namespaces/vms/persistentvolumeclaims/disk-a".to_owned()
            ),
            (Method::POST, "/api/v1/namespaces/vms/events".to_owned()),
        ]
    );
    assert_event(
        &h,
        &creates(&h)[0],
        "Normal",
        "VolumeAttached",
        "[pvc-6f1c0a4e]: Attached to node node-a (duration: 153ms)",
    );
}

async fn skipped_through_volume(h: &Harness, cause: SkipCause) {
    h.poster.post_volume_detached(None, &vol(), &node("node-a"));
    h.poster.flush().await;
    assert!(creates(h).is_empty(), "no event for {cause:?}");
    assert_eq!(h.poster.metrics().skipped(Reason::VolumeDetached, cause), 1);
    assert!(
        h.logs.text().contains(cause.as_str()),
        "warning names {cause:?}"
    );
}

#[tokio::test]
async fn volume_without_pv_is_skipped() {
    let h = harness(|c| c);
    with_claim(&h);
    skipped_through_volume(&h, SkipCause::PvNotFound).await;
}

#[tokio::test]
async fn volume_without_claim_ref_is_skipped() {
    let h = harness(|c| c);
    with_claim(&h);
    h.mock.add_volume(VOL, None);
    skipped_through_volume(&h, SkipCause::NoClaimRef).await;
}

#[tokio::test]
async fn recreated_claim_uid_mismatch_is_skipped() {
    let h = harness(|c| c);
    with_claim(&h);
    h.mock
        .add_volume(VOL, Some((NS, CLAIM, "the-old-claims-uid")));
    skipped_through_volume(&h, SkipCause::PvcUidMismatch).await;
}

#[tokio::test]
async fn bound_claim_that_is_gone_is_skipped() {
    let h = harness(|c| c);
    h.mock.add_volume(VOL, Some((NS, CLAIM, UID)));
    skipped_through_volume(&h, SkipCause::PvcNotFound).await;
}

#[tokio::test]
async fn identical_posts_fold_into_one_event_with_their_count() {
    let h = harness(|c| c);
    with_claim(&h);
    let n = 6;
    for _ in 0..n {
        h.poster
            .post_volume_detached(Some(&claim()), &vol(), &node("node-a"));
        h.poster.flush().await;
        h.clock.advance(Duration::from_secs(10)).await;
    }
    let sent = creates(&h);
    assert_eq!(sent.len(), 1, "one create");
    let patched = patches(&h);
    assert_eq!(patched.len(), n - 1, "then one PATCH per repeat");
    assert_eq!(patched.last().expect("patches")["count"], n);
    let stored = h.mock.events(NS);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["count"], n);
    assert_eq!(stored[0]["firstTimestamp"], START);
    assert_eq!(stored[0]["lastTimestamp"], "2026-01-01T00:00:50Z");
    assert_eq!(
        h.mock.requests_to(Method::PATCH, "")[0]
            .content_type
            .as_deref(),
        Some("application/merge-patch+json")
    );
}

#[tokio::test]
async fn repeats_during_a_write_in_flight_are_coalesced() {
    let h = harness(|c| c);
    with_claim(&h);
    h.mock.fault(Method::POST, "/events", Action::Hold, 1);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("node-a"));
    support::settle().await;
    assert_eq!(h.mock.held(), 1, "the create is in flight");
    for _ in 0..10 {
        h.poster
            .post_volume_detached(Some(&claim()), &vol(), &node("node-a"));
    }
    support::settle().await;
    h.mock.release_held();
    h.poster.flush().await;
    assert_eq!(creates(&h).len(), 1);
    let patched = patches(&h);
    assert_eq!(patched.len(), 1, "ten repeats, one PATCH");
    assert_eq!(patched[0]["count"], 11);
    assert_eq!(h.mock.events(NS)[0]["count"], 11);
}

#[tokio::test]
async fn distinct_messages_are_never_folded_and_names_are_unique_at_one_instant() {
    let h = harness(|c| c);
    with_claim(&h);
    h.poster.post_migration_started(
        Some(&claim()),
        &vol(),
        &node("a"),
        &node("b"),
        Duration::from_secs(300),
    );
    h.poster.post_migration_started(
        Some(&claim()),
        &vol(),
        &node("a"),
        &node("c"),
        Duration::from_secs(300),
    );
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    let sent = creates(&h);
    assert_eq!(sent.len(), 3);
    let names: std::collections::BTreeSet<_> = sent
        .iter()
        .map(|e| e["metadata"]["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "unique names at one virtual instant: {names:?}"
    );
    let messages: Vec<_> = h
        .mock
        .events(NS)
        .iter()
        .map(|e| e["message"].clone())
        .collect();
    assert!(messages.contains(&json!(
        "[pvc-6f1c0a4e]: KubeVirt live migration started - source: a, target: c, timeout: 5m0s"
    )));
    assert!(messages.contains(&json!(
        "[pvc-6f1c0a4e]: KubeVirt live migration started - source: a, target: b, timeout: 5m0s"
    )));
}

/// The instant `secs` seconds after [`START`], as the API server writes it.
fn at(secs: u64) -> String {
    let start: jiff::Timestamp = START.parse().expect("start");
    (start + jiff::SignedDuration::from_secs(secs as i64)).to_string()
}

#[tokio::test]
async fn spam_filter_writes_a_burst_of_25_then_waiting_posts_whole_at_the_next_token() {
    let h = harness(|c| c);
    with_claim(&h);
    for i in 0..25 {
        h.poster.post_mount_failure(
            Some(&claim()),
            &vol(),
            &node("a"),
            &format!("attempt {i} failed"),
        );
    }
    h.poster.flush().await;
    assert_eq!(creates(&h).len(), 25, "the burst: 25 writes");

    // Over the burst: ten repeats of a written message and one new message wait.
    h.clock.advance(Duration::from_secs(10)).await;
    for _ in 0..10 {
        h.poster
            .post_mount_failure(Some(&claim()), &vol(), &node("a"), "attempt 0 failed");
    }
    h.clock.advance(Duration::from_secs(10)).await;
    h.poster
        .post_mount_failure(Some(&claim()), &vol(), &node("a"), "a new failure");
    h.poster.flush().await; // returns: waiting for a token is like waiting out a backoff
    assert_eq!(creates(&h).len(), 25);
    assert!(patches(&h).is_empty());
    assert_eq!(
        h.poster.waiting(),
        11,
        "the waiting posts are held, not dropped"
    );
    assert_eq!(h.poster.queued(), 0, "as counts: they hold no queue slot");
    let metrics = h.poster.metrics();
    assert_eq!(metrics.deferred(Reason::MountFailure), 11);
    assert_eq!(metrics.dropped_total(DropCause::RateLimited), 0);

    // The worker sleeps on the clock until the token is due (one timer, no polling).
    assert_eq!(h.clock.sleepers(), 1);
    assert_eq!(
        h.clock.next_deadline().map(|t| t.to_string()),
        Some(at(300))
    );
    // The token is due 300 s after the burst: not a moment earlier.
    h.clock.advance(Duration::from_secs(279)).await;
    h.poster.flush().await;
    assert!(patches(&h).is_empty() && creates(&h).len() == 25);
    h.clock.advance(Duration::from_secs(1)).await;
    h.poster.flush().await;
    let patched = patches(&h);
    assert_eq!(patched.len(), 1, "one PATCH carries the ten repeats");
    assert_eq!(patched[0]["count"], 11, "count exact");
    assert_eq!(patched[0]["lastTimestamp"], at(10), "the posts' own time");
    assert_eq!(
        creates(&h).len(),
        25,
        "the new message waits for the next token"
    );

    h.clock.advance(Duration::from_secs(300)).await;
    h.poster.flush().await;
    let sent = creates(&h);
    assert_eq!(sent.len(), 26);
    assert_eq!(sent[25]["message"], "[pvc-6f1c0a4e] on [a]: a new failure");
    assert_eq!(
        sent[25]["firstTimestamp"],
        at(20),
        "written at 600 s, posted at 20 s"
    );
    assert_eq!(h.poster.queued() + h.poster.waiting(), 0);
    let stored: i64 = h
        .mock
        .events(NS)
        .iter()
        .map(|e| e["count"].as_i64().expect("count"))
        .sum();
    assert_eq!(stored, 36, "every post is in a count");
    let mut registry = prometheus_client::registry::Registry::with_prefix("rds_csi");
    metrics.register(&mut registry);
    let text = csi_events::metrics::encode_text(&registry);
    assert!(
        text.contains(r#"rds_csi_events_deferred_total{reason="MountFailure"} 11"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_warning_after_a_storm_of_normal_events_takes_the_very_next_token() {
    let h = harness(|c| c);
    with_claim(&h);
    for i in 0..30 {
        h.poster
            .post_volume_detached(Some(&claim()), &vol(), &node(&format!("n{i}")));
        h.clock.advance(Duration::from_secs(1)).await;
    }
    h.poster.post_migration_failed(
        Some(&claim()),
        &vol(),
        &node("a"),
        &node("b"),
        MigrationFailure::Timeout,
        Duration::from_secs(300),
    );
    h.poster.flush().await;
    assert_eq!(creates(&h).len(), 25);
    assert_eq!(h.poster.metrics().deferred(Reason::VolumeDetached), 5);
    assert_eq!(h.poster.metrics().deferred(Reason::MigrationFailed), 1);

    // The first token after the burst goes to the Warning, ahead of five older Normals.
    h.clock.advance(Duration::from_secs(300)).await;
    h.poster.flush().await;
    let sent = creates(&h);
    assert_eq!(sent.len(), 26);
    assert_eq!(sent[25]["reason"], "MigrationFailed");
    assert_eq!(sent[25]["type"], "Warning");
    assert_eq!(sent[25]["firstTimestamp"], at(30));
    // Then the Normals, first posted first written.
    for i in 25..30 {
        h.clock.advance(Duration::from_secs(300)).await;
        h.poster.flush().await;
        let sent = creates(&h);
        assert_eq!(
            sent.last().expect("a create")["message"],
            format!("[pvc-6f1c0a4e]: Detached from node n{i}")
        );
    }
    assert_eq!(creates(&h).len(), 31);
    assert_eq!(h.poster.queued() + h.poster.waiting(), 0);
    assert_eq!(h.poster.metrics().dropped_total(DropCause::RateLimited), 0);
}

#[tokio::test]
async fn a_waiting_series_evicted_from_the_series_cache_is_counted_rate_limited() {
    let h = harness(|mut c| {
        c.cache_size = std::num::NonZeroUsize::new(2).expect("non-zero");
        c.spam_filter(1, Duration::from_secs(300))
    });
    with_claim(&h);
    for name in ["a", "b", "c", "d"] {
        h.poster
            .post_volume_detached(Some(&claim()), &vol(), &node(name));
        h.poster.flush().await;
    }
    assert_eq!(creates(&h).len(), 1, "a took the one token; b, c, d wait");
    assert_eq!(
        h.poster
            .metrics()
            .dropped(Reason::VolumeDetached, DropCause::RateLimited),
        1,
        "two series fit: b, the least recently posted to, was evicted"
    );
    assert!(
        h.logs.text().contains("rate_limited"),
        "a warning says so: {}",
        h.logs.text()
    );
    assert_eq!(h.poster.waiting(), 2);
    h.clock.advance(Duration::from_secs(600)).await;
    h.poster.flush().await;
    let messages: Vec<_> = creates(&h)
        .iter()
        .map(|e| e["message"].as_str().expect("message").to_owned())
        .collect();
    assert_eq!(
        messages,
        [
            "[pvc-6f1c0a4e]: Detached from node a",
            "[pvc-6f1c0a4e]: Detached from node c",
            "[pvc-6f1c0a4e]: Detached from node d"
        ]
    );
    assert_eq!(h.poster.queued() + h.poster.waiting(), 0);
}

#[tokio::test]
async fn a_claim_over_its_write_budget_never_fills_the_queue_of_the_others() {
    let h = harness(|c| c.queue_size(10).spam_filter(1, Duration::from_secs(300)));
    with_claim(&h);
    h.mock.add_claim(NS, "disk-b", "uid-b");
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    for _ in 0..50 {
        h.poster
            .post_volume_detached(Some(&claim()), &vol(), &node("a"));
        h.poster.flush().await;
    }
    assert_eq!(h.poster.waiting(), 50, "fifty repeats wait as one count");
    assert_eq!(h.poster.queued(), 0);
    h.poster
        .post_volume_detached(Some(&ClaimName::new(NS, "disk-b")), &vol(), &node("a"));
    h.poster.flush().await;
    assert_eq!(h.poster.metrics().dropped_total(DropCause::QueueFull), 0);
    assert_eq!(
        creates(&h).len(),
        2,
        "the other claim's event is written at once"
    );
    h.clock.advance(Duration::from_secs(300)).await;
    h.poster.flush().await;
    assert_eq!(patches(&h).len(), 1);
    assert_eq!(patches(&h)[0]["count"], 51);
    assert_eq!(h.poster.queued() + h.poster.waiting(), 0);
}

#[tokio::test]
async fn shutdown_reports_posts_still_waiting_for_a_token() {
    let h = harness(|c| c.spam_filter(1, Duration::from_secs(300)));
    with_claim(&h);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    for _ in 0..3 {
        h.poster
            .post_volume_detached(Some(&claim()), &vol(), &node("b"));
    }
    h.poster.flush().await;
    assert_eq!(h.poster.waiting(), 3);
    let poster = h.poster.clone();
    let shutdown = tokio::spawn(async move { poster.shutdown(Duration::from_secs(5)).await });
    support::settle().await;
    h.clock.advance(Duration::from_secs(5)).await;
    let report = shutdown.await.expect("shutdown");
    assert_eq!(report.abandoned.len(), 1);
    assert_eq!(report.abandoned[0].count, 3);
    assert_eq!(
        report.abandoned[0].message,
        "[pvc-6f1c0a4e]: Detached from node b"
    );
    assert_eq!(
        h.poster
            .metrics()
            .dropped(Reason::VolumeDetached, DropCause::Shutdown),
        3
    );
    assert_eq!(h.poster.queued() + h.poster.waiting(), 0);
}

#[tokio::test]
async fn retries_of_one_write_take_no_token() {
    let h = harness(|c| c.spam_filter(1, Duration::from_secs(300)));
    with_claim(&h);
    h.mock
        .fault(Method::POST, "/events", Action::Status(503, None), 3);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    for _ in 0..4 {
        h.poster.flush().await;
        h.clock.advance(Duration::from_secs(5)).await;
    }
    h.poster.flush().await;
    assert_eq!(
        creates(&h).len(),
        4,
        "three failures and the success, one token"
    );
    assert_eq!(h.mock.events(NS).len(), 1);
    assert_eq!(h.poster.metrics().deferred(Reason::VolumeDetached), 0);
}

#[tokio::test]
async fn server_errors_are_retried_on_the_clock_and_delivered_once() {
    let h = harness(|c| c);
    with_claim(&h);
    h.mock
        .fault(Method::POST, "/events", Action::Status(503, None), 3);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    assert_eq!(
        creates(&h).len(),
        1,
        "first try failed, the retry waits on the clock"
    );
    assert!(h.mock.events(NS).is_empty());
    // Nothing happens while time stands still.
    support::settle().await;
    assert_eq!(creates(&h).len(), 1);
    h.clock.advance(Duration::from_secs(10)).await;
    h.poster.flush().await;
    assert_eq!(creates(&h).len(), 4, "three failures, then success");
    assert_eq!(h.mock.events(NS).len(), 1);
    assert_eq!(h.mock.events(NS)[0]["count"], 1);
    assert_eq!(h.poster.queued(), 0);
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let h = harness(|c| c);
    with_claim(&h);
    h.mock
        .fault(Method::POST, "/events", Action::Status(429, Some(20)), 1);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    h.clock.advance(Duration::from_secs(19)).await;
    h.poster.flush().await;
    assert_eq!(creates(&h).len(), 1, "not retried before Retry-After");
    h.clock.advance(Duration::from_secs(1)).await;
    h.poster.flush().await;
    assert_eq!(creates(&h).len(), 2);
    assert_eq!(h.mock.events(NS).len(), 1);
}

#[tokio::test]
async fn transport_errors_are_retried() {
    let h = harness(|c| c);
    with_claim(&h);
    h.mock
        .fault(Method::GET, "/persistentvolumeclaims/", Action::Drop, 1);
    h.mock.fault(Method::POST, "/events", Action::Drop, 1);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    h.clock.advance(Duration::from_secs(5)).await;
    h.poster.flush().await;
    h.clock.advance(Duration::from_secs(5)).await;
    h.poster.flush().await;
    assert_eq!(
        h.mock
            .requests_to(Method::GET, "/persistentvolumeclaims/")
            .len(),
        2
    );
    assert_eq!(creates(&h).len(), 2);
    assert_eq!(h.mock.events(NS).len(), 1);
}

#[tokio::test]
async fn lost_create_answered_409_counts_as_delivered_without_duplicate() {
    let h = harness(|c| c);
    with_claim(&h);
    h.mock
        .fault(Method::POST, "/events", Action::ApplyThenDrop, 1);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    h.clock.advance(Duration::from_secs(5)).await;
    h.poster.flush().await;
    let sent = creates(&h);
    assert_eq!(sent.len(), 2, "the create was retried");
    assert_eq!(
        sent[0]["metadata"]["name"], sent[1]["metadata"]["name"],
        "with the same name"
    );
    let name = sent[0]["metadata"]["name"].as_str().expect("name");
    assert_eq!(
        h.mock
            .requests_to(Method::GET, &format!("/events/{name}"))
            .len(),
        1,
        "the 409 was checked by reading the stored event"
    );
    assert_eq!(h.mock.events(NS).len(), 1, "no duplicate");
    assert_eq!(
        h.poster
            .metrics()
            .dropped_total(DropCause::RetriesExhausted),
        0
    );
    // The series goes on: the next repeat is a PATCH to count 2.
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    assert_eq!(patches(&h).len(), 1);
    assert_eq!(h.mock.events(NS)[0]["count"], 2);
}

#[tokio::test]
async fn patch_of_an_expired_event_creates_it_anew_with_the_right_count() {
    let h = harness(|c| c);
    with_claim(&h);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    let first = creates(&h)[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    assert!(
        h.mock
            .remove(&format!("/api/v1/namespaces/{NS}/events/{first}"))
            .await
    );
    h.clock.advance(Duration::from_secs(3600)).await;
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    assert_eq!(patches(&h).len(), 1, "the PATCH was tried");
    let sent = creates(&h);
    assert_eq!(sent.len(), 2, "then the event was created anew");
    assert_ne!(sent[1]["metadata"]["name"], json!(first));
    let stored = h.mock.events(NS);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["count"], 2);
}

#[tokio::test]
async fn forbidden_and_invalid_are_rejected_not_retried() {
    for code in [403u16, 422, 400] {
        let h = harness(|c| c);
        with_claim(&h);
        h.mock
            .fault(Method::POST, "/events", Action::Status(code, None), 1);
        h.poster
            .post_volume_detached(Some(&claim()), &vol(), &node("a"));
        h.poster.flush().await;
        h.clock.advance(Duration::from_secs(600)).await;
        h.poster.flush().await;
        assert_eq!(creates(&h).len(), 1, "{code} is not retried");
        assert_eq!(
            h.poster
                .metrics()
                .dropped(Reason::VolumeDetached, DropCause::Rejected),
            1,
            "{code} counted as rejected"
        );
        assert!(h.logs.text().contains("ERROR"), "{code} logged as an error");
        assert!(
            h.logs.text().contains("injected fault"),
            "with the server's message"
        );
    }
}

#[tokio::test]
async fn retries_give_up_after_twelve_attempts() {
    let h = harness(|c| c);
    with_claim(&h);
    h.mock.fault(
        Method::POST,
        "/events",
        Action::Status(500, None),
        usize::MAX,
    );
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    for _ in 0..20 {
        h.poster.flush().await;
        h.clock.advance(Duration::from_secs(30)).await;
    }
    h.poster.flush().await;
    assert_eq!(creates(&h).len(), 12);
    assert_eq!(
        h.poster
            .metrics()
            .dropped(Reason::VolumeDetached, DropCause::RetriesExhausted),
        1
    );
    assert_eq!(h.poster.queued(), 0);
}

#[tokio::test]
async fn the_caller_never_blocks_and_overflow_is_counted_exactly() {
    let h = harness(|c| c);
    with_claim(&h);
    h.mock.hold_everything();
    for i in 0..10_000u32 {
        h.poster.post_connection_failure(
            Some(&claim()),
            &vol(),
            &node("a"),
            "10.0.0.1:4420",
            &format!("error {i}"),
        );
    }
    assert_eq!(h.poster.queued(), 1000);
    assert_eq!(
        h.poster
            .metrics()
            .dropped(Reason::ConnectionFailure, DropCause::QueueFull),
        9000
    );
    assert_eq!(h.poster.metrics().posted(Reason::ConnectionFailure), 10_000);
    let warnings = h
        .logs
        .text()
        .matches("dropped before it was queued")
        .count();
    assert_eq!(
        warnings, 1,
        "the overflow warning is rate limited on the clock"
    );
    h.clock.advance(support::WARN_INTERVAL).await;
    h.poster
        .post_connection_failure(Some(&claim()), &vol(), &node("a"), "10.0.0.1:4420", "later");
    let logs = h.logs.text();
    assert_eq!(logs.matches("dropped before it was queued").count(), 2);
    assert!(logs.contains("dropped_since_last_warning=8999"), "{logs}");
    support::settle().await;
    assert_eq!(h.mock.held(), 1, "one shared claim lookup waits unanswered");
    assert!(creates(&h).is_empty());
}

#[tokio::test]
async fn shutdown_reports_what_it_could_not_write() {
    let h = harness(|c| c);
    with_claim(&h);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    h.mock.hold_everything();
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("b"));
    let poster = h.poster.clone();
    let shutdown = tokio::spawn(async move { poster.shutdown(Duration::from_secs(5)).await });
    support::settle().await;
    h.clock.advance(Duration::from_secs(5)).await;
    let report = shutdown.await.expect("shutdown task");
    assert_eq!(report.abandoned.len(), 1);
    assert_eq!(
        report.abandoned[0].message,
        "[pvc-6f1c0a4e]: Detached from node b"
    );
    assert_eq!(
        h.poster
            .metrics()
            .dropped(Reason::VolumeDetached, DropCause::Shutdown),
        1
    );
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("c"));
    assert_eq!(
        h.poster
            .metrics()
            .dropped(Reason::VolumeDetached, DropCause::Shutdown),
        2,
        "posts after shutdown are dropped and counted"
    );
}

#[tokio::test]
async fn shutdown_drains_before_the_deadline() {
    let h = harness(|c| c);
    with_claim(&h);
    for node_name in ["a", "b", "c"] {
        h.poster
            .post_volume_detached(Some(&claim()), &vol(), &node(node_name));
    }
    let report = h.poster.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(h.mock.events(NS).len(), 3);
}

#[tokio::test]
async fn orphan_reasons_log_and_count_without_any_request() {
    let h = harness(|c| c);
    h.poster
        .post_orphan_detected(&node("node-a"), "nqn.2000-02.com.mikrotik:pvc-1");
    h.poster
        .post_orphan_cleaned(&node("node-a"), "nqn.2000-02.com.mikrotik:pvc-1");
    h.poster.flush().await;
    assert!(h.mock.requests().is_empty());
    assert_eq!(h.poster.metrics().posted(Reason::OrphanDetected), 1);
    assert_eq!(h.poster.metrics().posted(Reason::OrphanCleaned), 1);
    let logs = h.logs.text();
    assert!(
        logs.contains("INFO")
            && logs.contains("OrphanDetected: node=node-a nqn=nqn.2000-02.com.mikrotik:pvc-1")
    );
    assert!(logs.contains("OrphanCleaned: node=node-a nqn=nqn.2000-02.com.mikrotik:pvc-1"));
}

#[tokio::test]
async fn metrics_are_exposed_with_the_prefix_and_no_names_as_labels() {
    let h = harness(|c| c);
    with_claim(&h);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("node-a"));
    h.poster.flush().await;
    let mut registry = prometheus_client::registry::Registry::with_prefix("rds_csi");
    h.poster.metrics().register(&mut registry);
    let text = csi_events::metrics::encode_text(&registry);
    assert!(
        text.contains(r#"rds_csi_events_posted_total{reason="VolumeDetached"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"rds_csi_event_writes_total{verb="create",result="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"rds_csi_event_writes_total{verb="get",result="ok"} 1"#),
        "{text}"
    );
    for name in [NS, CLAIM, VOL, "node-a"] {
        assert!(!text.contains(name), "{name} must not be a label value");
    }
}

#[tokio::test]
async fn lost_create_with_a_smaller_count_is_patched_to_the_full_count() {
    // Found by tests/exactly_once.rs: a create is written but its answer lost, more repeats
    // arrive, the retry's 409 finds our event with the smaller count: patch to the total, not more.
    let h = harness(|c| c);
    with_claim(&h);
    h.mock.fault(Method::POST, "/events", Action::Drop, 1);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    h.mock
        .fault(Method::POST, "/events", Action::ApplyThenDrop, 1);
    h.clock.advance(Duration::from_secs(1)).await;
    h.poster.flush().await;
    assert_eq!(
        h.mock.events(NS)[0]["count"],
        1,
        "the lost create landed with count 1"
    );
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    h.clock.advance(Duration::from_secs(5)).await;
    h.poster.flush().await;
    let stored = h.mock.events(NS);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["count"], 2, "two posts, count 2");
    assert_eq!(patches(&h).last().expect("a patch")["count"], 2);
}

#[tokio::test]
async fn folding_memory_is_lru_bounded() {
    // With room for two series, a third evicts the least recently used one: its next repeat
    // starts a new Event instead of patching the old one (memory stays bounded; nothing lost).
    let h = harness(|mut c| {
        c.cache_size = std::num::NonZeroUsize::new(2).expect("non-zero");
        c
    });
    with_claim(&h);
    for name in ["a", "b", "c", "b", "c", "a"] {
        h.poster
            .post_volume_detached(Some(&claim()), &vol(), &node(name));
        h.poster.flush().await;
    }
    let detached_from_a = h
        .mock
        .events(NS)
        .into_iter()
        .filter(|e| e["message"] == "[pvc-6f1c0a4e]: Detached from node a")
        .count();
    assert_eq!(
        detached_from_a, 2,
        "a's series was evicted, so its repeat was created anew"
    );
    assert_eq!(patches(&h).len(), 2, "b and c were still cached: patched");
    assert_eq!(creates(&h).len(), 4);
}

// ---- Defects of round one (issue 9, item 6): each test failed on the round-one poster. ----

#[tokio::test]
async fn a_patch_landing_after_its_retry_does_not_turn_the_count_back() {
    let h = harness(|c| c);
    with_claim(&h);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    // The PATCH for the second post reaches a slow server and stays unanswered.
    h.mock.fault(Method::PATCH, "/events/", Action::Hold, 1);
    h.clock.advance(Duration::from_secs(10)).await;
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    support::settle().await;
    assert_eq!(h.mock.held(), 1);
    // It times out at 40 s; a third post comes; the retry writes count 3.
    h.clock.advance(Duration::from_secs(30)).await;
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.clock.advance(Duration::from_secs(1)).await;
    h.poster.flush().await;
    assert_eq!(h.mock.events(NS)[0]["count"], 3);
    // Then the slow server applies the old PATCH (count 2, lastTimestamp 10 s).
    h.mock.release_held();
    support::settle().await;
    let stored = h.mock.events(NS);
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0]["count"], 3,
        "the late PATCH must not lower the count"
    );
    assert_eq!(stored[0]["lastTimestamp"], at(40), "nor move time back");
    assert!(
        patches(&h)
            .iter()
            .all(|p| p["metadata"]["resourceVersion"].is_string()),
        "every PATCH is conditional on the version last seen"
    );
}

#[tokio::test]
async fn a_conflicting_patch_re_reads_and_counts_on_from_the_server() {
    // The PATCH lands but its answer is lost; its retry (same version) meets 409, reads the
    // event back and finds its own count there: no double count, no lower count.
    let h = harness(|c| c);
    with_claim(&h);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    h.mock
        .fault(Method::PATCH, "/events/", Action::ApplyThenDrop, 1);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    assert_eq!(h.mock.events(NS)[0]["count"], 2, "the lost PATCH landed");
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.clock.advance(Duration::from_secs(5)).await;
    h.poster.flush().await;
    assert_eq!(h.mock.events(NS)[0]["count"], 3, "three posts, count 3");
    let name = creates(&h)[0]["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    assert_eq!(
        h.mock
            .requests_to(Method::GET, &format!("/events/{name}"))
            .len(),
        1,
        "the 409 was resolved by reading the event back"
    );
    assert_eq!(h.poster.queued(), 0);
}

#[tokio::test]
async fn two_instances_posting_one_event_at_one_instant_write_two_events() {
    let h = harness(|c| c);
    with_claim(&h);
    let other = csi_events::EventPoster::new(
        h.mock.client(),
        csi_events::PosterConfig::default()
            .instance("other-host")
            .clock(std::sync::Arc::new(h.clock.clone())),
    );
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    other.post_volume_detached(Some(&claim()), &vol(), &node("a"));
    other.flush().await;
    let stored = h.mock.events(NS);
    assert_eq!(stored.len(), 2, "one Event per instance: {stored:#?}");
    let instances: std::collections::BTreeSet<_> = stored
        .iter()
        .map(|e| {
            e["reportingInstance"]
                .as_str()
                .expect("instance")
                .to_owned()
        })
        .collect();
    assert_eq!(
        instances,
        ["other-host".to_owned(), "test-host".to_owned()].into()
    );
    assert!(stored.iter().all(|e| e["count"] == 1));
}

#[tokio::test]
async fn a_restarted_poster_never_adopts_or_lowers_its_predecessors_event() {
    let h = harness(|c| c);
    with_claim(&h);
    for _ in 0..3 {
        h.poster
            .post_volume_detached(Some(&claim()), &vol(), &node("a"));
        h.poster.flush().await;
    }
    assert_eq!(h.mock.events(NS)[0]["count"], 3);
    assert!(h.poster.shutdown(Duration::from_secs(5)).await.is_clean());
    // The same instance comes back at the same instant and posts the same event twice.
    let successor = csi_events::EventPoster::new(
        h.mock.client(),
        csi_events::PosterConfig::default()
            .instance("test-host")
            .clock(std::sync::Arc::new(h.clock.clone())),
    );
    for _ in 0..2 {
        successor.post_volume_detached(Some(&claim()), &vol(), &node("a"));
        successor.flush().await;
    }
    let counts: Vec<i64> = h
        .mock
        .events(NS)
        .iter()
        .map(|e| e["count"].as_i64().expect("count"))
        .collect();
    assert!(
        counts.contains(&3),
        "the predecessor's Event keeps its count 3: {counts:?}"
    );
    assert_eq!(counts.iter().sum::<i64>(), 5, "five posts, five counted");
}

#[tokio::test]
async fn concurrent_shutdowns_both_report_the_abandoned_event() {
    let h = harness(|c| c);
    with_claim(&h);
    h.mock.hold_everything();
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    let (one, two) = (h.poster.clone(), h.poster.clone());
    let first = tokio::spawn(async move { one.shutdown(Duration::from_secs(5)).await });
    let second = tokio::spawn(async move { two.shutdown(Duration::from_secs(5)).await });
    support::settle().await;
    h.clock.advance(Duration::from_secs(5)).await;
    let first = first.await.expect("first shutdown");
    let second = second.await.expect("second shutdown");
    assert_eq!(first.abandoned.len(), 1, "{first:?}");
    assert_eq!(first, second);
    // A later call gets the same report.
    assert_eq!(h.poster.shutdown(Duration::from_secs(5)).await, first);
    assert_eq!(
        h.poster.metrics().dropped_total(DropCause::Shutdown),
        1,
        "counted once"
    );
}

#[tokio::test]
async fn a_rejected_post_leaves_no_time_in_the_series_cache() {
    let h = harness(|c| c);
    with_claim(&h);
    h.mock
        .fault(Method::POST, "/events", Action::Status(403, None), 1);
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    assert_eq!(
        h.poster
            .metrics()
            .dropped(Reason::VolumeDetached, DropCause::Rejected),
        1
    );
    h.clock.advance(Duration::from_secs(60)).await;
    h.poster
        .post_volume_detached(Some(&claim()), &vol(), &node("a"));
    h.poster.flush().await;
    let stored = h.mock.events(NS);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["count"], 1);
    assert_eq!(
        stored[0]["firstTimestamp"],
        at(60),
        "the Event starts with the post that was written"
    );
    let sent = creates(&h);
    assert_ne!(
        sent[0]["metadata"]["name"], sent[1]["metadata"]["name"],
        "and carries a name of its own time"
    );
}

/// A clock that, once armed, stops the first thread that reads it until released: it holds a
/// post between its "not shut down" check and its send, so the test can let the worker exit
/// exactly then.
struct TrapClock {
    inner: csi_events::clock::VirtualClock,
    trap: std::sync::Mutex<Option<(std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>)>>,
}

impl csi_events::clock::Clock for TrapClock {
    fn now(&self) -> jiff::Timestamp {
        let armed = self.trap.lock().expect("trap lock").take();
        if let Some((trapped, go)) = armed {
            trapped.send(()).expect("the test waits");
            go.recv().expect("the test releases the post");
        }
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> csi_events::clock::Sleep {
        self.inner.sleep(duration)
    }
}

/// Something to run once, from whichever thread gets to it first.
type Once = std::sync::Arc<std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>>;

/// A log writer that, on the line with `marker`, runs `hook` once (on the logging thread).
#[derive(Clone)]
struct HookWriter {
    marker: &'static str,
    hook: Once,
}

impl std::io::Write for HookWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if String::from_utf8_lossy(buf).contains(self.marker) {
            let hook = self.hook.lock().expect("hook lock").take();
            if let Some(hook) = hook {
                hook();
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_post_racing_the_workers_exit_is_counted_and_returns_its_slot() {
    use std::sync::mpsc::channel;
    use std::sync::{Arc, Mutex};

    let (go_tx, go_rx) = channel::<()>();
    let (trapped_tx, trapped_rx) = channel::<()>();
    let (sent_tx, sent_rx) = channel::<()>();
    // When the worker logs that it gives up at its deadline, the trapped post is let go and
    // the worker waits until that post's send is over: the post meets the exiting worker.
    let hook: Box<dyn FnOnce() + Send> = Box::new(move || {
        go_tx.send(()).expect("the post waits");
        sent_rx.recv().expect("the post finishes");
    });
    let writer = HookWriter {
        marker: "shutdown deadline passed",
        hook: Arc::new(Mutex::new(Some(hook))),
    };
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let virtual_clock = csi_events::clock::VirtualClock::new(START.parse().expect("start"));
    let clock = Arc::new(TrapClock {
        inner: virtual_clock.clone(),
        trap: Mutex::new(None),
    });
    let (client, mock) = support::mock_api::MockApi::start();
    mock.add_claim(NS, CLAIM, UID);
    let poster = csi_events::EventPoster::new(
        client,
        csi_events::PosterConfig::default()
            .instance("test-host")
            .clock(clock.clone()),
    );
    mock.hold_everything();
    poster.post_volume_detached(Some(&claim()), &vol(), &node("a"));
    support::settle().await;

    // A second post passes the shutdown check, then stops just before its send.
    *clock.trap.lock().expect("trap lock") = Some((trapped_tx, go_rx));
    let racing = poster.clone();
    let thread = std::thread::spawn(move || {
        racing.post_volume_detached(Some(&claim()), &vol(), &node("b"));
        sent_tx.send(()).expect("the worker waits");
    });
    trapped_rx.recv().expect("the post is trapped");
    assert_eq!(poster.queued(), 2);

    let stopping = poster.clone();
    let shutdown = tokio::spawn(async move { stopping.shutdown(Duration::from_secs(5)).await });
    support::settle().await;
    virtual_clock.advance(Duration::from_secs(5)).await;
    let report = shutdown.await.expect("shutdown");
    thread.join().expect("post thread");

    assert_eq!(poster.queued(), 0, "both queue slots are returned");
    assert_eq!(
        poster
            .metrics()
            .dropped(Reason::VolumeDetached, DropCause::Shutdown),
        2,
        "both posts are counted"
    );
    assert!(!report.abandoned.is_empty());
}

// ---- Claim sources (issue 9, item 3): both pass the same tests, on the fake cluster. ----

mod claim_sources {
    use std::sync::Arc;
    use std::time::Duration;

    use csi_events::metrics::SkipCause;
    use csi_events::{ClaimName, ClaimSource, EventPoster, PosterConfig, Reason};
    use fake_apiserver::FakeCluster;
    use k8s_openapi::api::core::v1::{Event, Namespace, PersistentVolume, PersistentVolumeClaim};
    use kube::api::{Api, DeleteParams, ListParams, PostParams};
    use serde_json::json;

    const SOURCES: [ClaimSource; 2] = [ClaimSource::Get, ClaimSource::Reflector];

    struct Rig {
        cluster: FakeCluster,
        clock: csi_events::clock::VirtualClock,
        poster: EventPoster,
    }

    async fn rig(source: ClaimSource) -> Rig {
        let (cluster, clock) = FakeCluster::virtual_at(super::START.parse().expect("start"));
        let namespaces: Api<Namespace> = Api::all(cluster.client());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "vms"}})).expect("ns"),
            )
            .await
            .expect("namespace");
        create_claim(&cluster, "disk-a").await;
        let poster = EventPoster::new(
            cluster.client(),
            PosterConfig::default()
                .instance("test-host")
                .clock(Arc::new(clock.clone()))
                .claim_source(source),
        );
        poster.claims_ready().await;
        cluster.clear_requests();
        Rig {
            cluster,
            clock,
            poster,
        }
    }

    async fn create_claim(cluster: &FakeCluster, name: &str) -> String {
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client(), "vms");
        let claim = json!({
            "metadata": {"name": name, "namespace": "vms"},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}
        });
        claims
            .create(
                &PostParams::default(),
                &serde_json::from_value(claim).expect("claim"),
            )
            .await
            .expect("create claim")
            .metadata
            .uid
            .expect("uid")
    }

    async fn delete_claim(cluster: &FakeCluster, name: &str) {
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client(), "vms");
        claims
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete claim");
    }

    async fn create_volume(cluster: &FakeCluster, volume: &str, claim: &str, uid: &str) {
        let volumes: Api<PersistentVolume> = Api::all(cluster.client());
        let pv = json!({
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                "csi": {"driver": "rds.csi.srvlab.io", "volumeHandle": volume},
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                             "namespace": "vms", "name": claim, "uid": uid}
            }
        });
        volumes
            .create(
                &PostParams::default(),
                &serde_json::from_value(pv).expect("pv"),
            )
            .await
            .expect("create volume");
    }

    impl Rig {
        fn detach(&self, claim: Option<&str>, node: &str) {
            let claim = claim.map(|name| ClaimName::new("vms", name));
            self.poster
                .post_volume_detached(claim.as_ref(), &"pvc-1".into(), &node.into());
        }

        async fn settle(&self) {
            // Watch events travel through tasks of their own: let them run, then flush.
            csi_events::clock::settle().await;
            self.poster.flush().await;
        }

        async fn events(&self) -> Vec<Event> {
            let api: Api<Event> = Api::namespaced(self.cluster.client(), "vms");
            api.list(&ListParams::default()).await.expect("list").items
        }

        fn claim_gets(&self) -> usize {
            self.cluster
                .requests()
                .iter()
                .filter(|r| {
                    r.method == http::Method::GET && r.path.contains("/persistentvolumeclaims/")
                })
                .count()
        }
    }

    #[tokio::test]
    async fn both_sources_write_on_the_live_claim_uid() {
        for source in SOURCES {
            let rig = rig(source).await;
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(rig.cluster.client(), "vms");
            let uid = claims.get("disk-a").await.expect("claim").metadata.uid;
            rig.detach(Some("disk-a"), "a");
            rig.settle().await;
            let events = rig.events().await;
            assert_eq!(events.len(), 1, "{source:?}");
            assert_eq!(events[0].involved_object.uid, uid, "{source:?}");
        }
    }

    #[tokio::test]
    async fn both_sources_skip_a_missing_claim() {
        for source in SOURCES {
            let rig = rig(source).await;
            rig.detach(Some("no-such-claim"), "a");
            rig.settle().await;
            assert!(rig.events().await.is_empty(), "{source:?}");
            assert_eq!(
                rig.poster
                    .metrics()
                    .skipped(Reason::VolumeDetached, SkipCause::PvcNotFound),
                1,
                "{source:?}"
            );
        }
    }

    #[tokio::test]
    async fn both_sources_follow_the_volume_and_skip_a_re_created_claim() {
        for source in SOURCES {
            let rig = rig(source).await;
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(rig.cluster.client(), "vms");
            let uid = claims
                .get("disk-a")
                .await
                .expect("claim")
                .metadata
                .uid
                .expect("uid");
            create_volume(&rig.cluster, "pvc-1", "disk-a", &uid).await;
            rig.detach(None, "a");
            rig.settle().await;
            assert_eq!(
                rig.events().await.len(),
                1,
                "{source:?}: found through the PV"
            );

            delete_claim(&rig.cluster, "disk-a").await;
            create_claim(&rig.cluster, "disk-a").await;
            rig.settle().await;
            rig.detach(None, "b");
            rig.settle().await;
            assert_eq!(rig.events().await.len(), 1, "{source:?}");
            assert_eq!(
                rig.poster
                    .metrics()
                    .skipped(Reason::VolumeDetached, SkipCause::PvcUidMismatch),
                1,
                "{source:?}: the re-created claim is not the bound one"
            );
        }
    }

    #[tokio::test]
    async fn both_sources_see_a_re_created_claim_by_name() {
        for source in SOURCES {
            let rig = rig(source).await;
            rig.detach(Some("disk-a"), "a");
            rig.settle().await;
            delete_claim(&rig.cluster, "disk-a").await;
            let new_uid = create_claim(&rig.cluster, "disk-a").await;
            rig.settle().await;
            rig.detach(Some("disk-a"), "a");
            rig.settle().await;
            let events = rig.events().await;
            assert_eq!(events.len(), 2, "{source:?}: a new claim, a new Event");
            assert!(
                events
                    .iter()
                    .any(|e| e.involved_object.uid.as_deref() == Some(new_uid.as_str())),
                "{source:?}: the new claim's uid"
            );
        }
    }

    #[tokio::test]
    async fn the_reflector_looks_claims_up_without_a_request_and_get_once_per_burst() {
        for (source, gets) in [(ClaimSource::Get, 3), (ClaimSource::Reflector, 0)] {
            let rig = rig(source).await;
            for burst in 0..3 {
                rig.detach(Some("disk-a"), "a");
                rig.detach(Some("disk-a"), "b");
                rig.settle().await;
                rig.clock
                    .advance(Duration::from_secs(60 * (burst + 1)))
                    .await;
            }
            assert_eq!(rig.claim_gets(), gets, "{source:?}");
            let counts: i32 = rig.events().await.iter().filter_map(|e| e.count).sum();
            assert_eq!(counts, 6, "{source:?}");
        }
    }

    #[tokio::test]
    async fn the_reflector_without_list_rights_falls_back_to_the_get() {
        let (cluster, clock) = FakeCluster::virtual_at(super::START.parse().expect("start"));
        let namespaces: Api<Namespace> = Api::all(cluster.client());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "vms"}})).expect("ns"),
            )
            .await
            .expect("namespace");
        create_claim(&cluster, "disk-a").await;
        cluster.faults().add(
            fake_apiserver::control::Fault::new(
                fake_apiserver::control::Verb::List,
                "persistentvolumeclaims",
            )
            .status(403),
        );
        let poster = EventPoster::new(
            cluster.client(),
            PosterConfig::default()
                .instance("test-host")
                .clock(Arc::new(clock.clone()))
                .claim_source(ClaimSource::Reflector),
        );
        poster.post_volume_detached(
            Some(&ClaimName::new("vms", "disk-a")),
            &"pvc-1".into(),
            &"a".into(),
        );
        csi_events::clock::settle().await;
        poster.flush().await;
        let api: Api<Event> = Api::namespaced(cluster.client(), "vms");
        let events = api.list(&ListParams::default()).await.expect("list").items;
        assert_eq!(events.len(), 1, "written after a GET of the claim");
    }

    #[tokio::test]
    async fn a_claim_created_after_the_reflector_listed_is_found_at_once() {
        let rig = rig(ClaimSource::Reflector).await;
        create_claim(&rig.cluster, "disk-new").await;
        // Posted before the watch event can have arrived: the GET fallback finds it.
        rig.detach(Some("disk-new"), "a");
        rig.settle().await;
        assert_eq!(rig.events().await.len(), 1);
        assert_eq!(
            rig.poster
                .metrics()
                .skipped(Reason::VolumeDetached, SkipCause::PvcNotFound),
            0
        );
    }
}
