//! The API server through kube-rs in process (`in_process_client`) and through raw requests:
//! every verb, the error Statuses, events in both API groups, watch, paging, patches,
//! Tables, discovery, OpenAPI, seeding and robustness.

use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{
    Event, Namespace, Node, NodeCondition, NodeStatus, ObjectReference, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::api::storage::v1::VolumeAttachment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{
    Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::runtime::watcher;
use serde_json::{Value, json};

use fake_apiserver::ApiServer;

mod common;

use common::in_process::{START, api_status as api_error, with_client as setup};

fn pvc(name: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("valid pvc")
}

async fn raw(
    server: &ApiServer,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, http::HeaderMap, String) {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(Bytes::from(body.to_string()))
        .expect("valid request");
    let response = server.handle(request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("infallible")
        .to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn core_event(name: &str, ns: &str, pvc_name: &str, uid: &str) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: Some("PersistentVolumeClaim".into()),
            name: Some(pvc_name.into()),
            namespace: Some(ns.into()),
            uid: Some(uid.into()),
            ..Default::default()
        },
        reason: Some("Provisioning".into()),
        message: Some("legacy style message".into()),
        type_: Some("Normal".into()),
        count: Some(1),
        ..Default::default()
    }
}

fn v1_event(name: &str, ns: &str, pvc_name: &str) -> EventV1 {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "eventTime": "2026-01-01T00:00:00.123456Z",
        "action": "Provision",
        "reason": "ExternalProvisioning",
        "note": "waiting for a volume",
        "type": "Normal",
        "reportingController": "kube.rs/pvc",
        "reportingInstance": "pvc-ctrl-0",
        "regarding": {"kind": "PersistentVolumeClaim", "name": pvc_name, "namespace": ns, "uid": "u-1"},
    }))
    .expect("valid events.k8s.io event")
}

#[tokio::test]
async fn discovery_serves_short_names_verbs_and_groups() {
    let (_server, client, _clock) = setup();
    let core = client.list_core_api_resources("v1").await.expect("api/v1");
    let pvc = core
        .resources
        .iter()
        .find(|r| r.name == "persistentvolumeclaims")
        .expect("pvc listed");
    assert_eq!(pvc.short_names.as_deref(), Some(&["pvc".to_string()][..]));
    assert!(pvc.verbs.contains(&"watch".to_string()));
    assert!(pvc.namespaced);
    for (name, short) in [
        ("persistentvolumes", "pv"),
        ("nodes", "no"),
        ("namespaces", "ns"),
        ("events", "ev"),
        ("pods", "po"),
    ] {
        let r = core
            .resources
            .iter()
            .find(|r| r.name == name)
            .expect("listed");
        assert!(
            r.short_names
                .as_ref()
                .is_some_and(|s| s.contains(&short.to_string())),
            "{name}"
        );
    }
    let groups = client.list_api_groups().await.expect("apis");
    let names: Vec<&str> = groups.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "events.k8s.io",
            "storage.k8s.io",
            "coordination.k8s.io",
            "authorization.k8s.io"
        ]
    );
    let storage = client
        .list_api_group_resources("storage.k8s.io/v1")
        .await
        .expect("storage");
    assert!(
        storage
            .resources
            .iter()
            .any(|r| r.name == "volumeattachments" && !r.namespaced)
    );
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.major, "1");
}

#[tokio::test]
async fn initial_namespaces_exist() {
    let (_server, client, _clock) = setup();
    let namespaces: Api<Namespace> = Api::all(client);
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
}

#[tokio::test]
async fn pvc_lifecycle_and_error_statuses() {
    let (_server, client, _clock) = setup();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let created = pvcs
        .create(&PostParams::default(), &pvc("data"))
        .await
        .expect("create");
    let meta = &created.metadata;
    assert!(meta.uid.as_ref().is_some_and(|u| u.len() == 36));
    assert!(meta.resource_version.is_some());
    assert_eq!(
        meta.creation_timestamp.as_ref().map(|t| t.0.to_string()),
        Some(START.to_string())
    );
    assert_eq!(
        created.status.and_then(|s| s.phase).as_deref(),
        Some("Pending")
    );

    let dup = api_error(
        pvcs.create(&PostParams::default(), &pvc("data"))
            .await
            .expect_err("duplicate"),
    );
    assert_eq!(dup.code, 409);
    assert_eq!(dup.reason, "AlreadyExists");
    assert_eq!(
        dup.message,
        "persistentvolumeclaims \"data\" already exists"
    );

    assert!(pvcs.get_opt("missing").await.expect("get_opt").is_none());
    let missing = api_error(pvcs.get("missing").await.expect_err("missing"));
    assert_eq!(missing.code, 404);
    assert_eq!(
        missing.message,
        "persistentvolumeclaims \"missing\" not found"
    );
    assert_eq!(
        missing.details.as_ref().map(|d| d.kind.as_str()),
        Some("persistentvolumeclaims")
    );

    // Update with the current resourceVersion works, a stale one conflicts.
    let mut fresh = pvcs.get("data").await.expect("get");
    let stale = fresh.clone();
    fresh
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("tier".into(), "gold".into());
    let updated = pvcs
        .replace("data", &PostParams::default(), &fresh)
        .await
        .expect("replace");
    assert_ne!(
        updated.metadata.resource_version,
        stale.metadata.resource_version
    );
    let conflict = api_error(
        pvcs.replace("data", &PostParams::default(), &stale)
            .await
            .expect_err("stale"),
    );
    assert_eq!(conflict.code, 409);
    assert_eq!(conflict.reason, "Conflict");
    assert_eq!(
        conflict.message,
        "Operation cannot be fulfilled on persistentvolumeclaims \"data\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // Spec validation of the real PVC strategy.
    let mut bad = pvc("bad");
    bad.spec = Some(Default::default());
    let invalid = api_error(
        pvcs.create(&PostParams::default(), &bad)
            .await
            .expect_err("invalid"),
    );
    assert_eq!(invalid.code, 422);
    assert!(
        invalid.message.starts_with(
            "PersistentVolumeClaim \"bad\" is invalid: [spec.accessModes: Required value"
        ),
        "{}",
        invalid.message
    );

    let deleted = pvcs
        .delete("data", &DeleteParams::default())
        .await
        .expect("delete");
    // As the real server (ReturnDeletedObject): the claim itself, marked for deletion with
    // the protection finalizer the controller then removed (no Pod uses it).
    let last = deleted.left().expect("the deleted claim, not a Status");
    assert_eq!(last.metadata.name.as_deref(), Some("data"));
    assert!(last.metadata.deletion_timestamp.is_some());
    assert_eq!(
        last.metadata.finalizers,
        Some(vec!["kubernetes.io/pvc-protection".to_string()])
    );
    assert!(pvcs.get_opt("data").await.expect("get_opt").is_none());
    let again = api_error(
        pvcs.delete("data", &DeleteParams::default())
            .await
            .expect_err("gone"),
    );
    assert_eq!(again.code, 404);
}

#[tokio::test]
async fn create_checks_namespace_and_generates_names() {
    let (_server, client, _clock) = setup();
    let nowhere: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "nowhere");
    let err = api_error(
        nowhere
            .create(&PostParams::default(), &pvc("x"))
            .await
            .expect_err("no namespace"),
    );
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "namespaces \"nowhere\" not found");

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let mut other_ns = pvc("x");
    other_ns.metadata.namespace = Some("kube-system".into());
    let err = api_error(
        pvcs.create(&PostParams::default(), &other_ns)
            .await
            .expect_err("mismatch"),
    );
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "the namespace of the provided object does not match the namespace sent on the request"
    );

    let mut generated = pvc("");
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("data-".into());
    let created = pvcs
        .create(&PostParams::default(), &generated)
        .await
        .expect("generateName");
    let name = created.metadata.name.expect("named");
    assert!(name.starts_with("data-") && name.len() == 10, "{name}");

    let mut unnamed = pvc("");
    unnamed.metadata.name = None;
    let err = api_error(
        pvcs.create(&PostParams::default(), &unnamed)
            .await
            .expect_err("no name"),
    );
    assert_eq!(err.code, 422);
    assert!(err.message.contains("name or generateName is required"));

    let mut with_rv = pvc("rv");
    with_rv.metadata.resource_version = Some("5".into());
    let err = api_error(
        pvcs.create(&PostParams::default(), &with_rv)
            .await
            .expect_err("rv on create"),
    );
    assert_eq!(err.code, 500);
    assert_eq!(
        err.message,
        "resourceVersion should not be set on objects to be created"
    );
}

#[tokio::test]
async fn events_are_one_store_seen_through_both_groups() {
    let (_server, client, _clock) = setup();
    let core: Api<Event> = Api::namespaced(client.clone(), "default");
    let v1: Api<EventV1> = Api::namespaced(client.clone(), "default");

    core.create(
        &PostParams::default(),
        &core_event("legacy.1", "default", "data", "u-1"),
    )
    .await
    .expect("core create");
    v1.create(
        &PostParams::default(),
        &v1_event("new.1", "default", "data"),
    )
    .await
    .expect("v1 create");
    v1.create(
        &PostParams::default(),
        &v1_event("other.1", "default", "other"),
    )
    .await
    .expect("v1 create");

    // The core event through events.k8s.io/v1.
    let seen = v1.get("legacy.1").await.expect("v1 view of a core event");
    assert_eq!(seen.note.as_deref(), Some("legacy style message"));
    assert_eq!(
        seen.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("data")
    );
    assert_eq!(seen.deprecated_count, Some(1));

    // The v1 event through core/v1.
    let seen = core.get("new.1").await.expect("core view of a v1 event");
    assert_eq!(seen.message.as_deref(), Some("waiting for a volume"));
    assert_eq!(seen.reporting_component.as_deref(), Some("kube.rs/pvc"));
    assert_eq!(
        seen.event_time.map(|t| t.0.to_string()),
        Some("2026-01-01T00:00:00.123456Z".to_string())
    );

    // Field selectors, any order, == and !=, in both groups.
    let names = |list: Vec<Event>| -> Vec<String> {
        list.into_iter().filter_map(|e| e.metadata.name).collect()
    };
    let selected = core
        .list(&ListParams::default().fields(
            "involvedObject.uid=u-1,involvedObject.name==data,involvedObject.kind=PersistentVolumeClaim,involvedObject.namespace=default",
        ))
        .await
        .expect("core field selector");
    assert_eq!(names(selected.items), ["legacy.1", "new.1"]);
    let selected = core
        .list(&ListParams::default().fields("involvedObject.name!=data"))
        .await
        .expect("!=");
    assert_eq!(names(selected.items), ["other.1"]);
    let selected = core
        .list(&ListParams::default().fields("source=kube.rs/pvc,reportingComponent=kube.rs/pvc"))
        .await
        .expect("source falls back to reportingController");
    assert_eq!(names(selected.items), ["new.1", "other.1"]);

    let selected = v1
        .list(&ListParams::default().fields("regarding.name=data,reportingController=kube.rs/pvc"))
        .await
        .expect("v1 field selector");
    let v1_names: Vec<String> = selected
        .items
        .into_iter()
        .filter_map(|e| e.metadata.name)
        .collect();
    assert_eq!(v1_names, ["new.1"]);

    let refused = api_error(
        v1.list(&ListParams::default().fields("involvedObject.name=data"))
            .await
            .expect_err("involvedObject on v1"),
    );
    assert_eq!(refused.code, 400);
    assert_eq!(
        refused.message,
        "field label not supported: involvedObject.name"
    );
    let refused = api_error(
        core.list(&ListParams::default().fields("regarding.name=data"))
            .await
            .expect_err("regarding on core"),
    );
    assert_eq!(refused.message, "field label not supported: regarding.name");

    // All namespaces, the path kubectl describe pv uses.
    let all: Api<Event> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default())
            .await
            .expect("all")
            .items
            .len(),
        3
    );

    // Other kinds accept only metadata fields.
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client, "default");
    let err = api_error(
        pvcs.list(&ListParams::default().fields("spec.volumeName=x"))
            .await
            .expect_err("pvc field"),
    );
    assert_eq!(
        err.message,
        "\"spec.volumeName\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
}

#[tokio::test]
async fn event_validation_gives_the_real_422s() {
    let (_server, client, _clock) = setup();
    let v1: Api<EventV1> = Api::namespaced(client.clone(), "default");
    let mut bad = v1_event("x", "default", "data");
    bad.action = None;
    bad.type_ = Some("Info".into());
    let err = api_error(
        v1.create(&PostParams::default(), &bad)
            .await
            .expect_err("invalid"),
    );
    assert_eq!(err.code, 422);
    assert_eq!(err.reason, "Invalid");
    assert_eq!(
        err.message,
        "Event \"x\" is invalid: [action: Required value, type: Invalid value: \"\": has invalid value: Info]"
    );
    let details = err.details.expect("details");
    assert_eq!(details.kind, "Event");
    assert_eq!(details.group, "");
    assert_eq!(details.causes.len(), 2);
    assert_eq!(details.causes[0].reason, "FieldValueRequired");
    assert_eq!(details.causes[0].field, "action");

    // Note over 1024 bytes (UTF-8 bytes, not characters).
    let mut long = v1_event("long", "default", "data");
    long.note = Some("é".repeat(513));
    let err = api_error(
        v1.create(&PostParams::default(), &long)
            .await
            .expect_err("too long"),
    );
    assert_eq!(
        err.message,
        "Event \"long\" is invalid: message: Invalid value: \"\": can have at most 1024 characters"
    );

    // Uppercase name: fine on core/v1, refused on events.k8s.io/v1.
    let err = api_error(
        v1.create(
            &PostParams::default(),
            &v1_event("Upper", "default", "data"),
        )
        .await
        .expect_err("name"),
    );
    assert!(
        err.message
            .starts_with("Event \"Upper\" is invalid: metadata.name: Invalid value: \"Upper\": a lowercase RFC 1123 subdomain"),
        "{}",
        err.message
    );
    let core: Api<Event> = Api::namespaced(client.clone(), "default");
    core.create(
        &PostParams::default(),
        &core_event("Upper", "default", "data", "u"),
    )
    .await
    .expect("core accepts any safe name");

    // Legacy rule: event namespace must match involvedObject.namespace.
    let err = api_error(
        core.create(
            &PostParams::default(),
            &core_event("mismatch", "default", "data", "u")
                .tap(|e| e.involved_object.namespace = Some("other".into())),
        )
        .await
        .expect_err("mismatch"),
    );
    assert_eq!(
        err.message,
        "Event \"mismatch\" is invalid: involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"
    );

    // reportingComponent naming on core/v1 with eventTime set.
    let mut modern = core_event("modern", "default", "data", "u");
    modern.event_time = Some(MicroTime("2026-01-01T00:00:00Z".parse().expect("ts")));
    modern.action = Some("A".into());
    modern.reporting_instance = Some("i".into());
    let err = api_error(
        core.create(&PostParams::default(), &modern)
            .await
            .expect_err("no controller"),
    );
    assert!(
        err.message
            .starts_with("Event \"modern\" is invalid: [reportingComponent: Required value, reportingComponent: Invalid value: \"\": name part must be non-empty"),
        "{}",
        err.message
    );
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl<T> Tap for T {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

#[tokio::test]
async fn v1_event_updates_may_change_only_series() {
    let (_server, client, _clock) = setup();
    let v1: Api<EventV1> = Api::namespaced(client.clone(), "default");
    v1.create(&PostParams::default(), &v1_event("e.1", "default", "data"))
        .await
        .expect("create");
    let patched = v1
        .patch(
            "e.1",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"}}),
            ),
        )
        .await
        .expect("series patch");
    assert_eq!(patched.series.map(|s| s.count), Some(2));
    let err = api_error(
        v1.patch(
            "e.1",
            &PatchParams::default(),
            &Patch::Merge(json!({"note": "changed"})),
        )
        .await
        .expect_err("immutable"),
    );
    assert_eq!(
        err.message,
        "Event \"e.1\" is invalid: message: Invalid value: \"changed\": field is immutable"
    );
    // core/v1 may change anything (client-go's recorder patches count and message).
    let core: Api<Event> = Api::namespaced(client.clone(), "default");
    let patched = core
        .patch(
            "e.1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"message": "changed", "count": 3})),
        )
        .await
        .expect("core patch");
    assert_eq!(patched.message.as_deref(), Some("changed"));
    // A patch of a missing event is 404; PUT of a missing event creates it.
    let err = api_error(
        v1.patch(
            "nope",
            &PatchParams::default(),
            &Patch::Merge(json!({"series": {"count": 2}})),
        )
        .await
        .expect_err("missing"),
    );
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "events.events.k8s.io \"nope\" not found");
    let created = core
        .replace(
            "put.1",
            &PostParams::default(),
            &core_event("put.1", "default", "data", "u"),
        )
        .await
        .expect("PUT creates events");
    assert!(created.metadata.uid.is_some());
}

#[tokio::test]
async fn kube_runtime_recorder_publishes_and_folds_into_series() {
    use kube::runtime::events::{Event as RecEvent, EventType, Recorder, Reporter};
    let (server, client, _clock) = setup();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "kube.rs/pvc".into(),
            instance: None,
        },
    );
    let reference = ObjectReference {
        kind: Some("PersistentVolumeClaim".into()),
        api_version: Some("v1".into()),
        name: Some("data".into()),
        namespace: Some("default".into()),
        uid: Some("u-1".into()),
        ..Default::default()
    };
    let event = RecEvent {
        type_: EventType::Normal,
        reason: "Provisioning".into(),
        note: Some("provisioning".into()),
        action: "Provision".into(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await.expect("first");
    recorder.publish(&event, &reference).await.expect("second");
    let stored = server.objects("", "v1", "events");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["series"]["count"], 2);
    assert_eq!(stored[0]["reportingComponent"], "kube.rs/pvc");
}

#[tokio::test]
async fn concurrent_writers_lose_no_update() {
    let (_server, client, _clock) = setup();
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &Node {
                metadata: ObjectMeta {
                    name: Some("n1".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let nodes = nodes.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..25 {
                loop {
                    let mut node = nodes.get("n1").await.expect("get");
                    let annotations = node
                        .metadata
                        .annotations
                        .get_or_insert_with(Default::default);
                    let n: u64 = annotations
                        .get("count")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    annotations.insert("count".into(), (n + 1).to_string());
                    tokio::task::yield_now().await;
                    match nodes.replace("n1", &PostParams::default(), &node).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(s)) if s.code == 409 => conflicts += 1,
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.expect("task");
    }
    let node = nodes.get("n1").await.expect("get");
    assert_eq!(
        node.metadata
            .annotations
            .and_then(|a| a.get("count").cloned())
            .as_deref(),
        Some("100")
    );
    assert!(conflicts > 0, "the writers never raced");
}

#[tokio::test]
async fn watcher_sees_creates_updates_and_deletes() {
    let (_server, client, _clock) = setup();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    pvcs.create(&PostParams::default(), &pvc("before"))
        .await
        .expect("create");
    let mut stream = watcher(pvcs.clone(), watcher::Config::default()).boxed();
    let mut init = Vec::new();
    loop {
        match stream.try_next().await.expect("watch").expect("event") {
            watcher::Event::Init => {}
            watcher::Event::InitApply(p) => init.push(p.metadata.name.unwrap_or_default()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(init, ["before"]);

    pvcs.create(&PostParams::default(), &pvc("after"))
        .await
        .expect("create");
    pvcs.patch(
        "before",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .expect("patch");
    pvcs.delete("after", &DeleteParams::default())
        .await
        .expect("delete");

    let mut seen = Vec::new();
    // A claim delete is MODIFIED (deletionTimestamp, finalizer) and then DELETED once the
    // pvc-protection controller lets it go, as on a real cluster.
    while seen.len() < 4 {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .expect("no timeout")
            .expect("ok")
            .expect("event");
        match next {
            watcher::Event::Apply(p) => seen.push(format!(
                "apply {} {}",
                p.metadata.name.unwrap_or_default(),
                p.metadata.labels.map(|l| l.len()).unwrap_or(0)
            )),
            watcher::Event::Delete(p) => {
                seen.push(format!("delete {}", p.metadata.name.unwrap_or_default()))
            }
            _ => {}
        }
    }
    assert_eq!(
        seen,
        [
            "apply after 0",
            "apply before 1",
            "apply after 0",
            "delete after"
        ]
    );
}

#[tokio::test]
async fn raw_watch_replays_bookmarks_and_expires() {
    let (server, client, _clock) = setup();
    let nodes: Api<Node> = Api::all(client.clone());
    let node = |name: &str| Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let first = nodes
        .create(&PostParams::default(), &node("a"))
        .await
        .expect("a");
    nodes
        .create(&PostParams::default(), &node("b"))
        .await
        .expect("b");
    let rv = first.metadata.resource_version.expect("rv");

    // From a resourceVersion: only what came after it, then a bookmark.
    let mut stream = nodes
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch")
        .boxed();
    match stream.try_next().await.expect("ok").expect("event") {
        WatchEvent::Added(n) => assert_eq!(n.metadata.name.as_deref(), Some("b")),
        other => panic!("unexpected {other:?}"),
    }

    // From "0": synthetic ADDED for every object, then a bookmark with kind and apiVersion.
    let mut from_zero = nodes
        .watch(&WatchParams::default().timeout(5), "0")
        .await
        .expect("watch")
        .boxed();
    let mut added = 0;
    loop {
        match from_zero.try_next().await.expect("ok").expect("event") {
            WatchEvent::Added(_) => added += 1,
            WatchEvent::Bookmark(b) => {
                assert_eq!(b.types.kind, "Node");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(added, 2);

    // A selector: an object that stops matching is DELETED for this watch.
    let mut selected = nodes
        .watch(
            &WatchParams::default().labels("pool=x").timeout(5),
            &server.resource_version().to_string(),
        )
        .await
        .expect("watch")
        .boxed();
    nodes
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"pool": "x"}}})),
        )
        .await
        .expect("label");
    nodes
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"pool": null}}})),
        )
        .await
        .expect("unlabel");
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match selected.try_next().await.expect("ok").expect("event") {
            WatchEvent::Added(_) => kinds.push("ADDED"),
            WatchEvent::Deleted(_) => kinds.push("DELETED"),
            WatchEvent::Modified(_) => kinds.push("MODIFIED"),
            _ => {}
        }
    }
    assert_eq!(kinds, ["ADDED", "DELETED"]);

    // A compacted resourceVersion: ERROR 410 Expired.
    server.compact();
    let mut expired = nodes
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch")
        .boxed();
    match expired.try_next().await.expect("ok").expect("event") {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(expired.try_next().await.expect("ok").is_none());
}

#[tokio::test]
async fn lists_page_in_name_order() {
    let (_server, client, _clock) = setup();
    let nodes: Api<Node> = Api::all(client.clone());
    for name in ["n5", "n1", "n4", "n2", "n7", "n3", "n6"] {
        let mut labels = std::collections::BTreeMap::new();
        labels.insert(
            "odd".to_string(),
            (name[1..].parse::<u32>().expect("digit") % 2 == 1).to_string(),
        );
        nodes
            .create(
                &PostParams::default(),
                &Node {
                    metadata: ObjectMeta {
                        name: Some(name.into()),
                        labels: Some(labels),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .await
            .expect("create");
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = ListParams::default().limit(3);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let page = nodes.list(&params).await.expect("page");
        pages += 1;
        assert!(page.metadata.resource_version.is_some());
        names.extend(page.items.into_iter().filter_map(|n| n.metadata.name));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["n1", "n2", "n3", "n4", "n5", "n6", "n7"]);
    let odd = nodes
        .list(&ListParams::default().labels("odd=true"))
        .await
        .expect("labels");
    assert_eq!(odd.items.len(), 4);
    let even = nodes
        .list(&ListParams::default().labels("odd notin (true)"))
        .await
        .expect("notin");
    assert_eq!(even.items.len(), 3);
    let bad = api_error(
        nodes
            .list(&ListParams::default().labels("odd in ("))
            .await
            .expect_err("bad selector"),
    );
    assert_eq!(bad.code, 400);
}

#[tokio::test]
async fn patches_status_subresource_and_finalizers() {
    let (_server, client, _clock) = setup();
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &Node {
                metadata: ObjectMeta {
                    name: Some("n1".into()),
                    ..Default::default()
                },
                status: Some(NodeStatus {
                    conditions: Some(vec![NodeCondition {
                        type_: "Ready".into(),
                        status: "False".into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    // Strategic merge on conditions merges by type.
    let patched = nodes
        .patch_status(
            "n1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "DiskPressure", "status": "False"},
            ]}})),
        )
        .await
        .expect("status patch");
    let conditions = patched
        .status
        .and_then(|s| s.conditions)
        .expect("conditions");
    assert_eq!(conditions.len(), 2);
    assert_eq!(conditions[0].status, "True");
    // The main resource ignores status changes.
    let unchanged = nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": []}, "spec": {"unschedulable": true}})),
        )
        .await
        .expect("main patch");
    assert_eq!(
        unchanged.status.and_then(|s| s.conditions).map(|c| c.len()),
        Some(2)
    );
    assert_eq!(unchanged.spec.and_then(|s| s.unschedulable), Some(true));
    // JSON patch.
    let json_patched = nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([
                    {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/hold"]}
                ]))
                .expect("patch"),
            ),
        )
        .await
        .expect("json patch");
    assert_eq!(
        json_patched.metadata.finalizers,
        Some(vec!["example.com/hold".to_string()])
    );
    // Delete with a finalizer only marks; removing the finalizer completes it.
    let marked = nodes
        .delete("n1", &DeleteParams::default())
        .await
        .expect("delete");
    let marked = marked.left().expect("the object while finalizers remain");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(nodes.get_opt("n1").await.expect("get").is_some());
    nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("drop finalizer");
    assert!(nodes.get_opt("n1").await.expect("get").is_none());
}

#[tokio::test]
async fn pods_return_the_deleted_object_and_volume_attachments_work() {
    let (_server, client, _clock) = setup();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
        )
        .expect("pod"),
    )
    .await
    .expect("create");
    let deleted = pods
        .delete("p", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(deleted.is_left());

    let vas: Api<VolumeAttachment> = Api::all(client);
    let va: VolumeAttachment = serde_json::from_value(json!({
        "metadata": {"name": "csi-123"},
        "spec": {"attacher": "csi.example.com", "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}},
        "status": {"attached": true},
    }))
    .expect("va");
    let created = vas
        .create(&PostParams::default(), &va)
        .await
        .expect("create");
    assert!(created.status.is_none(), "create resets status");
    let attached = vas
        .patch_status(
            "csi-123",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"attached": true}})),
        )
        .await
        .expect("status");
    assert_eq!(attached.status.map(|s| s.attached), Some(true));
    let err = api_error(vas.get("nope").await.expect_err("missing"));
    assert_eq!(
        err.message,
        "volumeattachments.storage.k8s.io \"nope\" not found"
    );
    assert_eq!(
        err.details.map(|d| d.group),
        Some("storage.k8s.io".to_string())
    );
}

#[tokio::test]
async fn raw_errors_match_the_real_server() {
    let (server, _client, _clock) = setup();
    let path = "/api/v1/namespaces/default/persistentvolumeclaims";
    let (code, headers, body) = raw(
        &server,
        "POST",
        path,
        &[("content-type", "application/json")],
        "{not json",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(json_of(&body)["reason"], "BadRequest");
    assert_eq!(headers["content-type"], "application/json");

    let (code, _, body) = raw(
        &server,
        "POST",
        path,
        &[("content-type", "text/plain")],
        "{}",
    )
    .await;
    assert_eq!(code, 415, "{body}");
    assert_eq!(json_of(&body)["reason"], "UnsupportedMediaType");

    let (code, _, body) = raw(
        &server,
        "PATCH",
        &format!("{path}/x"),
        &[("content-type", "application/json")],
        "{}",
    )
    .await;
    assert_eq!(code, 415);
    assert_eq!(
        json_of(&body)["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json"
    );

    // An unknown resource in a served group version is a NotFound Status; an unserved
    // group version is the mux's plain text.
    let (code, _, body) = raw(&server, "GET", "/api/v1/widgets", &[], "").await;
    assert_eq!(code, 404);
    assert_eq!(json_of(&body)["reason"], "NotFound");
    let (code, headers, body) = raw(&server, "GET", "/apis/apps/v1/deployments", &[], "").await;
    assert_eq!(code, 404);
    assert_eq!(body, "404 page not found\n");
    assert!(
        headers["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );

    // fieldValidation=Strict refuses unknown fields; the default warns.
    let body_with_unknown = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "s"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "foo": 1},
    })
    .to_string();
    let (code, _, body) = raw(
        &server,
        "POST",
        &format!("{path}?fieldManager=kubectl-create&fieldValidation=Strict"),
        &[("content-type", "application/json")],
        &body_with_unknown,
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        json_of(&body)["message"],
        "strict decoding error: unknown field \"spec.foo\""
    );
    let (code, headers, body) = raw(
        &server,
        "POST",
        path,
        &[("content-type", "application/json")],
        &body_with_unknown,
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert!(json_of(&body)["spec"].get("foo").is_none());
    assert_eq!(
        headers["warning"],
        "299 - \"unknown field \\\"spec.foo\\\"\""
    );

    // Wrong kind in the body.
    let (code, _, _) = raw(
        &server,
        "POST",
        path,
        &[("content-type", "application/json")],
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}"#,
    )
    .await;
    assert_eq!(code, 400);

    // Methods a resource does not serve.
    let (code, _, body) = raw(&server, "POST", "/api/v1/events", &[], "{}").await;
    assert_eq!(code, 405);
    assert_eq!(json_of(&body)["reason"], "MethodNotAllowed");
}

#[tokio::test]
async fn tables_for_kubectl_get() {
    let (server, client, clock) = setup();
    let core: Api<Event> = Api::namespaced(client.clone(), "default");
    let mut ev = core_event("legacy.1", "default", "data", "u");
    ev.first_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        START.parse().expect("ts"),
    ));
    ev.last_timestamp = ev.first_timestamp.clone();
    ev.count = Some(3);
    ev.source = Some(k8s_openapi::api::core::v1::EventSource {
        component: Some("persistentvolume-controller".into()),
        host: None,
    });
    core.create(&PostParams::default(), &ev)
        .await
        .expect("create");
    clock.jump(Duration::from_secs(301));
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let (code, _, body) = raw(
        &server,
        "GET",
        "/api/v1/namespaces/default/events?limit=500",
        &[("accept", accept)],
        "",
    )
    .await;
    assert_eq!(code, 200);
    let table = json_of(&body);
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "Last Seen",
            "Type",
            "Reason",
            "Object",
            "Subobject",
            "Source",
            "Message",
            "First Seen",
            "Count",
            "Name"
        ]
    );
    let cells = &table["rows"][0]["cells"];
    assert_eq!(
        cells,
        &json!([
            "5m1s",
            "Normal",
            "Provisioning",
            "persistentvolumeclaim/data",
            "",
            "persistentvolume-controller",
            "legacy style message",
            "5m1s",
            3,
            "legacy.1"
        ])
    );
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client, "default");
    pvcs.create(&PostParams::default(), &pvc("data"))
        .await
        .expect("pvc");
    let (_, _, body) = raw(
        &server,
        "GET",
        "/api/v1/namespaces/default/persistentvolumeclaims",
        &[("accept", accept)],
        "",
    )
    .await;
    let table = json_of(&body);
    assert_eq!(table["columnDefinitions"][0]["name"], "Name");
    assert_eq!(table["rows"][0]["cells"][1], "Pending");
    assert_eq!(table["rows"][0]["cells"][7], "0s");
}

#[tokio::test]
async fn openapi_v3_lets_kubectl_validate() {
    let (server, _client, _clock) = setup();
    let (code, _, body) = raw(&server, "GET", "/openapi/v3", &[], "").await;
    assert_eq!(code, 200);
    let index = json_of(&body);
    let url = index["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .expect("url")
        .to_string();
    assert!(index["paths"]["apis/events.k8s.io/v1"].is_object());
    let (code, _, body) = raw(&server, "GET", &url, &[], "").await;
    assert_eq!(code, 200);
    let doc = json_of(&body);
    let op = &doc["paths"]["/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}"]["patch"];
    assert_eq!(
        op["x-kubernetes-group-version-kind"],
        json!({"group": "", "version": "v1", "kind": "PersistentVolumeClaim"})
    );
    assert!(
        op["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
}

#[tokio::test]
async fn load_yaml_seeds_objects_and_reports_bad_documents() {
    let (server, client, _clock) = setup();
    let yaml = r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: ns1
  uid: 11111111-2222-3333-4444-555555555555
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
  volumeName: pv-1
status:
  phase: Bound
---
apiVersion: v1
kind: Namespace
metadata:
  name: ns1
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata:
    name: n1
- apiVersion: events.k8s.io/v1
  kind: Event
  metadata:
    name: e.1
    namespace: ns1
  eventTime: "2026-01-01T00:00:00.000000Z"
  reason: Bound
  note: bound
  regarding:
    kind: PersistentVolumeClaim
    name: data
    namespace: ns1
"#;
    assert_eq!(server.load_yaml(yaml).expect("load"), 4);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "ns1");
    let data = pvcs.get("data").await.expect("seeded pvc");
    assert_eq!(
        data.metadata.uid.as_deref(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert_eq!(data.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
    let core: Api<Event> = Api::namespaced(client, "ns1");
    assert_eq!(
        core.get("e.1").await.expect("event").message.as_deref(),
        Some("bound")
    );
    assert!(server.object("", "v1", "nodes", None, "n1").is_some());

    let err = server
        .load_yaml("apiVersion: v1\nkind: Node\nmetadata:\n  name: ok\n---\napiVersion: v1\nkind: Gadget\nmetadata:\n  name: x\n")
        .expect_err("unknown kind");
    assert!(err.to_string().starts_with("document 2: "), "{err}");
    let err = server
        .load_yaml("apiVersion: v1\nkind: Node\nmetadata: [unclosed\n")
        .expect_err("bad yaml");
    assert!(
        matches!(
            err,
            fake_apiserver::api::LoadError::Yaml { document: 1, .. }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn hostile_input_never_panics_or_500s() {
    let (server, _client, _clock) = setup();
    let paths = [
        "/",
        "/api",
        "/api/v1/namespaces/default/events?fieldSelector=a%3D%5Cx",
        "/api/v1/namespaces/default/events?fieldSelector=%3D%3D%3D",
        "/api/v1/namespaces/default/events?labelSelector=!!&limit=-1&continue=zz",
        "/api/v1/namespaces/default/events?continue=7b7d",
        "/api/v1/namespaces/%ZZ/pods/%",
        "/apis/events.k8s.io/v1/namespaces/default/events/x/status",
        "/apis/nope/v9/things",
        "/api/v1/watch/namespaces/default/events?resourceVersion=abc",
        "/openapi/v3/apis/nope/v1",
        "/api/v1/nodes/n1/status",
    ];
    let bodies = [
        "",
        "null",
        "[]",
        "{\"metadata\": 5}",
        "{\"metadata\": {\"name\": 5}}",
        "{\"metadata\": {\"name\": \"..\"}}",
        "{\"apiVersion\": 1}",
        "\u{0}\u{1}",
        "[{\"op\": \"remove\", \"path\": \"/nope\"}]",
    ];
    let types = [
        "application/json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
        "application/yaml",
    ];
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        for path in paths {
            for body in bodies {
                for ct in types {
                    let (code, _, text) =
                        raw(&server, method, path, &[("content-type", ct)], body).await;
                    assert!(
                        code < 500 || text.contains("resourceVersion should not be set"),
                        "{method} {path} {ct} {body:?} -> {code} {text}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn metadata_api_lists_gets_and_watches_partial_objects() {
    let (_server, client, _clock) = setup();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    pvcs.create(&PostParams::default(), &pvc("data"))
        .await
        .expect("create");
    let meta = pvcs.get_metadata("data").await.expect("get_metadata");
    assert_eq!(meta.metadata.name.as_deref(), Some("data"));
    assert_eq!(
        meta.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    let list = pvcs
        .list_metadata(&ListParams::default())
        .await
        .expect("list_metadata");
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.types.kind, "PartialObjectMetadataList");

    let mut stream = watcher(
        Api::<kube::core::PartialObjectMeta<PersistentVolumeClaim>>::namespaced(
            client.clone(),
            "default",
        ),
        watcher::Config::default(),
    )
    .boxed();
    let mut seen = Vec::new();
    loop {
        match stream.try_next().await.expect("watch").expect("event") {
            watcher::Event::InitApply(p) => seen.push(p.metadata.name.unwrap_or_default()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen, ["data"]);
}

#[tokio::test]
async fn python_style_watch_true_and_patch_errors() {
    let (server, client, _clock) = setup();
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &Node {
                metadata: ObjectMeta {
                    name: Some("n1".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("create");

    // The Python client sends `watch=True`.
    let response = server
        .handle(
            http::Request::get("/api/v1/nodes?watch=True&timeoutSeconds=1")
                .body(Bytes::new())
                .expect("request"),
        )
        .await;
    let mut body = response.into_body();
    let frame = body
        .frame()
        .await
        .expect("a frame")
        .expect("infallible")
        .into_data()
        .expect("data");
    let line = json_of(std::str::from_utf8(&frame).expect("utf8").trim_end());
    assert_eq!(line["type"], "ADDED");
    assert_eq!(line["object"]["kind"], "Node");
    assert!(frame.ends_with(b"\n"));

    // A JSON patch operation that fails is a 422 with the real generic message.
    let err = api_error(
        nodes
            .patch(
                "n1",
                &PatchParams::default(),
                &Patch::Json::<()>(
                    serde_json::from_value(json!([{"op": "remove", "path": "/spec/nope"}]))
                        .expect("patch"),
                ),
            )
            .await
            .expect_err("bad op"),
    );
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        "the server rejected our request due to an error in our request"
    );

    // Strict field validation on a patch is a 422 on "patch".
    let err = api_error(
        nodes
            .patch(
                "n1",
                &PatchParams {
                    field_validation: Some(kube::api::ValidationDirective::Strict),
                    ..Default::default()
                },
                &Patch::Merge(json!({"spec": {"bogus": 1}})),
            )
            .await
            .expect_err("strict"),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .ends_with("strict decoding error: unknown field \"spec.bogus\""),
        "{}",
        err.message
    );

    // The uid cannot change.
    let mut node = nodes.get("n1").await.expect("get");
    node.metadata.uid = Some("another".into());
    let err = api_error(
        nodes
            .replace("n1", &PostParams::default(), &node)
            .await
            .expect_err("uid"),
    );
    assert_eq!(
        err.message,
        "Node \"n1\" is invalid: metadata.uid: Invalid value: \"another\": field is immutable"
    );
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_and_the_end_bookmark() {
    let (_server, client, _clock) = setup();
    let nodes: Api<Node> = Api::all(client.clone());
    for name in ["a", "b"] {
        nodes
            .create(
                &PostParams::default(),
                &Node {
                    metadata: ObjectMeta {
                        name: Some(name.into()),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            )
            .await
            .expect("create");
    }
    let mut stream = watcher(nodes.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut names = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .expect("no timeout")
            .expect("ok")
            .expect("event");
        match next {
            watcher::Event::InitApply(n) => names.push(n.metadata.name.unwrap_or_default()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(names, ["a", "b"]);

    // sendInitialEvents needs resourceVersionMatch=NotOlderThan, and the reverse.
    let server = _server;
    for query in [
        "watch=true&sendInitialEvents=true",
        "watch=true&resourceVersionMatch=NotOlderThan",
    ] {
        let (code, _, body) = raw(&server, "GET", &format!("/api/v1/nodes?{query}"), &[], "").await;
        assert_eq!(code, 422, "{query}: {body}");
        assert_eq!(json_of(&body)["reason"], "Invalid");
    }
}

#[tokio::test]
async fn namespaces_delete_with_their_contents_except_the_immortal_ones() {
    let (server, client, _clock) = setup();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let err = api_error(
        namespaces
            .delete("default", &DeleteParams::default())
            .await
            .expect_err("immortal"),
    );
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "namespaces \"default\" is forbidden: this namespace may not be deleted"
    );
    let created = namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some("ns1".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("create");
    assert_eq!(
        created.status.and_then(|s| s.phase).as_deref(),
        Some("Active")
    );
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "ns1");
    pvcs.create(&PostParams::default(), &pvc("data"))
        .await
        .expect("pvc");
    let mut watch = pvcs
        .watch(
            &WatchParams::default().timeout(5),
            &server.resource_version().to_string(),
        )
        .await
        .expect("watch")
        .boxed();
    let deleted = namespaces
        .delete("ns1", &DeleteParams::default())
        .await
        .expect("delete")
        .left()
        .expect("the namespace comes back");
    assert_eq!(
        deleted.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    // Terminating: still readable, its contents too; new content is refused.
    assert!(namespaces.get("ns1").await.is_ok());
    assert!(pvcs.get("data").await.is_ok());
    let refused = api_error(
        pvcs.create(&PostParams::default(), &pvc("late"))
            .await
            .expect_err("terminating"),
    );
    assert_eq!(refused.code, 403);
    assert_eq!(
        refused.message,
        "persistentvolumeclaims \"late\" is forbidden: unable to create new content in namespace ns1 because it is being terminated"
    );
    // The namespace controller's work happens as the clock passes.
    _clock
        .advance(fake_apiserver::api::NAMESPACE_CLEANUP_DELAY)
        .await;
    match watch.try_next().await.expect("ok").expect("event") {
        WatchEvent::Deleted(p) => assert_eq!(p.metadata.name.as_deref(), Some("data")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        server
            .objects("", "v1", "persistentvolumeclaims")
            .is_empty()
    );
    assert!(namespaces.get_opt("ns1").await.expect("get").is_none());
}

#[tokio::test]
async fn large_bodies_tables_with_objects_and_selector_bookmarks() {
    let (server, client, _clock) = setup();
    let big = "x".repeat(3 * 1024 * 1024 + 1);
    let (code, _, body) = raw(
        &server,
        "POST",
        "/api/v1/namespaces/default/events",
        &[("content-type", "application/json")],
        &big,
    )
    .await;
    assert_eq!(code, 413);
    assert_eq!(json_of(&body)["reason"], "RequestEntityTooLarge");

    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &Node {
                metadata: ObjectMeta {
                    name: Some("n1".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("create");
    let (_, _, body) = raw(
        &server,
        "GET",
        "/api/v1/nodes?includeObject=Object",
        &[("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")],
        "",
    )
    .await;
    let table = json_of(&body);
    assert_eq!(table["rows"][0]["object"]["kind"], "Node");
    assert_eq!(table["rows"][0]["cells"][1], "Unknown");

    // A watch whose selector filters a change out gets a bookmark instead.
    let mut watch = nodes
        .watch(
            &WatchParams::default().labels("pool=x").timeout(5),
            &server.resource_version().to_string(),
        )
        .await
        .expect("watch")
        .boxed();
    nodes
        .patch(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"pool": "y"}}})),
        )
        .await
        .expect("patch");
    match watch.try_next().await.expect("ok").expect("event") {
        WatchEvent::Bookmark(b) => {
            assert_eq!(
                b.metadata.resource_version,
                server.resource_version().to_string()
            )
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn typed_helpers_and_delete_collection() {
    let (server, client, _clock) = setup();
    let core: Api<Event> = Api::namespaced(client.clone(), "default");
    for (name, app) in [("a.1", Some("x")), ("b.1", Some("x")), ("c.1", None)] {
        let mut ev = core_event(name, "default", "data", "u");
        if let Some(app) = app {
            ev.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        }
        core.create(&PostParams::default(), &ev)
            .await
            .expect("create");
    }
    let deleted = core
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app=x"),
        )
        .await
        .expect("deletecollection")
        .left()
        .expect("a list");
    assert_eq!(deleted.items.len(), 2);
    let left: Vec<Event> = server.list_typed();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].metadata.name.as_deref(), Some("c.1"));
    let v1: Option<EventV1> = server.get_typed(Some("default"), "c.1");
    assert_eq!(
        v1.and_then(|e| e.note).as_deref(),
        Some("legacy style message")
    );
    assert!(server.get_typed::<Node>(None, "nope").is_none());
}

#[tokio::test]
async fn server_side_apply_creates_then_merges() {
    let (server, client, _clock) = setup();
    let nodes: Api<Node> = Api::all(client.clone());
    let params = PatchParams::apply("test-manager");
    let applied = nodes
        .patch(
            "n1",
            &params,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "n1", "labels": {"a": "1"}},
            })),
        )
        .await
        .expect("apply creates");
    assert!(applied.metadata.uid.is_some());
    let applied = nodes
        .patch(
            "n1",
            &params,
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "n1", "labels": {"b": "2"}},
            })),
        )
        .await
        .expect("apply merges");
    let labels = applied.metadata.labels.expect("labels");
    assert_eq!(labels.get("b").map(String::as_str), Some("2"));
    // Without a field manager the real server refuses an apply patch.
    let (code, _, body) = raw(
        &server,
        "PATCH",
        "/api/v1/nodes/n1",
        &[("content-type", "application/apply-patch+yaml")],
        "metadata:\n  labels:\n    c: '3'\n",
    )
    .await;
    assert_eq!(code, 422, "{body}");
    // Seeding a namespace the cluster already has is not an error.
    assert_eq!(
        server
            .load_yaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n")
            .expect("load"),
        1
    );
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let (server, client, _clock) = setup();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let before = server.resource_version();
    let dry = pvcs
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &pvc("data"),
        )
        .await
        .expect("dry-run create");
    assert!(dry.metadata.uid.is_some());
    assert!(dry.metadata.resource_version.is_none());
    assert!(pvcs.get_opt("data").await.expect("get").is_none());
    assert_eq!(server.resource_version(), before);

    let real = pvcs
        .create(&PostParams::default(), &pvc("data"))
        .await
        .expect("create");
    let gone = pvcs
        .delete(
            "data",
            &DeleteParams {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .expect("dry-run delete");
    assert!(gone.is_left(), "a claim delete answers the claim");
    let still = pvcs.get("data").await.expect("still there");
    assert_eq!(
        still.metadata.resource_version,
        real.metadata.resource_version
    );
    let patched = pvcs
        .patch(
            "data",
            &PatchParams {
                dry_run: true,
                ..Default::default()
            },
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("dry-run patch");
    assert_eq!(patched.metadata.labels.map(|l| l.len()), Some(1));
    assert_eq!(
        patched.metadata.resource_version,
        real.metadata.resource_version
    );
    assert!(
        pvcs.get("data")
            .await
            .expect("get")
            .metadata
            .labels
            .is_none()
    );
}

#[tokio::test]
async fn pvc_and_volume_attachment_specs_are_immutable() {
    let (_server, client, _clock) = setup();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    pvcs.create(&PostParams::default(), &pvc("data"))
        .await
        .expect("create");
    // The PV controller may set volumeName once.
    pvcs.patch(
        "data",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"volumeName": "pv-1"}})),
    )
    .await
    .expect("bind");
    let err = api_error(
        pvcs.patch(
            "data",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"volumeName": "pv-2"}})),
        )
        .await
        .expect_err("rebind"),
    );
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        "PersistentVolumeClaim \"data\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
    );

    let vas: Api<VolumeAttachment> = Api::all(client);
    let va: VolumeAttachment = serde_json::from_value(json!({
        "metadata": {"name": "csi-1"},
        "spec": {"attacher": "csi.example.com", "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}},
    }))
    .expect("va");
    vas.create(&PostParams::default(), &va)
        .await
        .expect("create");
    let err = api_error(
        vas.patch(
            "csi-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"nodeName": "n2"}})),
        )
        .await
        .expect_err("immutable"),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.ends_with(": field is immutable"),
        "{}",
        err.message
    );
    // Metadata changes are fine.
    vas.patch(
        "csi-1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["external-attacher/csi-example-com"]}})),
    )
    .await
    .expect("finalizer");
}

#[tokio::test]
async fn all_namespace_lists_follow_etcd_key_order() {
    let (server, client, _clock) = setup();
    server
        .load_yaml(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a-b\n",
        )
        .expect("namespaces");
    for ns in ["a", "a-b"] {
        let core: Api<Event> = Api::namespaced(client.clone(), ns);
        core.create(&PostParams::default(), &core_event("x", ns, "data", "u"))
            .await
            .expect("create");
    }
    let all: Api<Event> = Api::all(client);
    let order: Vec<String> = all
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|e| e.metadata.namespace)
        .collect();
    // `/registry/events/a-b/x` sorts before `/registry/events/a/x` ('-' < '/').
    assert_eq!(order, ["a-b", "a"]);
    let first = all
        .list(&ListParams::default().limit(1))
        .await
        .expect("page 1");
    let token = first.metadata.continue_.expect("more");
    let second = all
        .list(&ListParams::default().limit(1).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(second.items[0].metadata.namespace.as_deref(), Some("a"));
    assert!(second.metadata.continue_.is_none());
}

#[tokio::test]
async fn strict_validation_names_list_items_and_v1_event_fields() {
    let (server, _client, _clock) = setup();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "bogus": true}]},
    });
    let (code, _, body) = raw(
        &server,
        "POST",
        "/api/v1/namespaces/default/pods?fieldValidation=Strict",
        &[("content-type", "application/json")],
        &pod.to_string(),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        json_of(&body)["message"],
        "strict decoding error: unknown field \"spec.containers[0].bogus\""
    );
    // On events.k8s.io/v1 the core names are unknown fields, and regarding.* keeps its name.
    let event = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "action": "A", "reason": "R", "type": "Normal",
        "reportingController": "a/b", "reportingInstance": "i",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default", "color": "red"},
        "message": "core name",
    });
    let (code, _, body) = raw(
        &server,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events?fieldValidation=Strict",
        &[("content-type", "application/json")],
        &event.to_string(),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        json_of(&body)["message"],
        "strict decoding error: unknown field \"message\", unknown field \"regarding.color\""
    );
}

#[tokio::test]
async fn watcher_relists_after_410_gone() {
    let (server, client, _clock) = setup();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    pvcs.create(&PostParams::default(), &pvc("data"))
        .await
        .expect("create");
    let mut stream = watcher(pvcs.clone(), watcher::Config::default().timeout(1)).boxed();
    let mut inits = 0;
    let mut expired = 0;
    let mut applied = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("relisted in time")
            .expect("event");
        let next = match next {
            Ok(event) => event,
            // The watcher reports the 410 once, then lists again.
            Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                expired += 1;
                continue;
            }
            Err(other) => panic!("unexpected {other:?}"),
        };
        match next {
            watcher::Event::Init => inits += 1,
            watcher::Event::InitApply(p) => applied.push(p.metadata.name.unwrap_or_default()),
            watcher::Event::InitDone if inits == 1 => {
                // Move the revision on without this watcher seeing it, then forget history:
                // its next watch (after the 1 s timeout) starts from a compacted revision.
                let nodes: Api<Node> = Api::all(client.clone());
                nodes
                    .create(
                        &PostParams::default(),
                        &Node {
                            metadata: ObjectMeta {
                                name: Some("n1".into()),
                                ..Default::default()
                            },
                            ..Default::default()
                        },
                    )
                    .await
                    .expect("node");
                server.compact();
            }
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(expired, 1);
    assert_eq!(applied, ["data", "data"], "listed twice");
}

#[tokio::test]
async fn table_watch_streams_tables_and_table_bookmarks() {
    let (server, _client, clock) = setup();
    let response = server
        .handle(
            http::Request::get(
                "/api/v1/namespaces?watch=1&resourceVersion=0&allowWatchBookmarks=true&timeoutSeconds=1",
            )
            .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
            .body(Bytes::new())
            .expect("request"),
        )
        .await;
    assert_eq!(response.status(), 200);
    // timeoutSeconds runs on the server's (virtual) clock.
    let collect = tokio::spawn(async move {
        response
            .into_body()
            .collect()
            .await
            .expect("infallible")
            .to_bytes()
    });
    clock.advance(Duration::from_secs(1)).await;
    let body = collect.await.expect("joined");
    let lines: Vec<Value> = std::str::from_utf8(&body)
        .expect("utf8")
        .lines()
        .map(json_of)
        .collect();
    assert_eq!(lines.len(), 5, "four namespaces and a bookmark");
    assert!(lines[..4].iter().all(|l| l["type"] == "ADDED"
        && l["object"]["kind"] == "Table"
        && l["object"]["rows"][0]["cells"][1] == "Active"));
    assert_eq!(lines[4]["type"], "BOOKMARK");
    assert_eq!(lines[4]["object"]["kind"], "Table");
    assert_eq!(
        lines[4]["object"]["metadata"]["resourceVersion"],
        server.resource_version().to_string()
    );
}
