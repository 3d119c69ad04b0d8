//! In process, the store (`api::store`): seeded ids replay, the event index follows updates and deletes.

use std::sync::Arc;

use serde_json::{Value, json};

use fake_apiserver::{ApiServer, VirtualClock};

use crate::common::in_process::*;

#[tokio::test]
async fn a_seed_gives_the_same_uids_and_generated_names_every_run() {
    async fn run(seed: u64) -> Vec<String> {
        let clock = VirtualClock::new(START.parse().expect("valid timestamp"));
        let server = ApiServer::seeded(Arc::new(clock), seed);
        let mut out = Vec::new();
        for _ in 0..3 {
            let mut c = claim("", None);
            c["metadata"] = json!({"generateName": "data-"});
            let (code, body) = json_req(
                &server,
                "POST",
                "/api/v1/namespaces/default/persistentvolumeclaims",
                c,
            )
            .await;
            assert_eq!(code, 201);
            out.push(format!(
                "{} {}",
                body["metadata"]["name"], body["metadata"]["uid"]
            ));
        }
        out
    }
    let first = run(42).await;
    assert_eq!(first, run(42).await);
    assert_ne!(first, run(43).await);
    let names: std::collections::BTreeSet<&String> = first.iter().collect();
    assert_eq!(names.len(), 3, "distinct ids: {first:?}");
}

#[tokio::test]
async fn event_lists_by_involved_object_follow_updates_and_deletes() {
    let (server, _clock) = setup();
    let events = "/api/v1/namespaces/default/events";
    let event = |name: &str, claim: &str, uid: &str| {
        json!({"apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name}, "involvedObject": {"kind": "PersistentVolumeClaim", "name": claim,
        "namespace": "default", "uid": uid}, "reason": "R", "message": "m", "type": "Normal"})
    };
    for i in 0..50 {
        let claim = format!("c{}", i % 5);
        let (code, _) = json_req(
            &server,
            "POST",
            events,
            event(&format!("e{i:02}"), &claim, &format!("u{}", i % 5)),
        )
        .await;
        assert_eq!(code, 201);
    }
    let names = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let (_, body) = json_req(
        &server,
        "GET",
        &format!("{events}?fieldSelector=involvedObject.uid%3Du1"),
        Value::Null,
    )
    .await;
    assert_eq!(
        names(&body),
        [
            "e01", "e06", "e11", "e16", "e21", "e26", "e31", "e36", "e41", "e46"
        ]
    );
    // Moved to another object (core/v1 allows it): found under the new uid only.
    let (code, _) = send(
        &server,
        "PATCH",
        &format!("{events}/e01"),
        "application/merge-patch+json",
        serde_json::to_vec(&json!({"involvedObject": {"uid": "u9", "name": "c9"}})).expect("json"),
    )
    .await;
    assert_eq!(code, 200);
    let (_, body) = json_req(
        &server,
        "GET",
        &format!("{events}?fieldSelector=involvedObject.uid%3Du1,involvedObject.name%3Dc1"),
        Value::Null,
    )
    .await;
    assert_eq!(names(&body).len(), 9);
    let (_, body) = json_req(
        &server,
        "GET",
        "/api/v1/events?fieldSelector=involvedObject.name%3Dc9",
        Value::Null,
    )
    .await;
    assert_eq!(names(&body), ["e01"]);
    // Through events.k8s.io (regarding.uid) and after a delete.
    assert_eq!(
        json_req(&server, "DELETE", &format!("{events}/e06"), Value::Null)
            .await
            .0,
        200
    );
    let (_, body) = json_req(
        &server,
        "GET",
        "/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=regarding.uid%3Du1",
        Value::Null,
    )
    .await;
    assert_eq!(names(&body).len(), 8);
    // A negated term is not an index lookup: everything but u1.
    let (_, body) = json_req(
        &server,
        "GET",
        &format!("{events}?fieldSelector=involvedObject.uid!%3Du1"),
        Value::Null,
    )
    .await;
    assert_eq!(names(&body).len(), 41);
}
