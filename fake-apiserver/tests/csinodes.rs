//! `storage.k8s.io/v1` CSINodes (cluster scoped): discovery, CRUD, list/watch and strategic
//! merge of `spec.drivers` through kube-rs over HTTP; the `kubectl get csinodes` table, `-o
//! yaml`, `explain` and `apply` with the real kubectl.

mod common;

use common::*;
use fake_apiserver::FakeCluster;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::storage::v1::CSINode;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent};
use kube::discovery::Discovery;
use serde_json::json;

fn csinode(name: &str, drivers: &[(&str, &str)]) -> CSINode {
    let drivers: Vec<_> = drivers
        .iter()
        .map(|(driver, node_id)| {
            json!({"name": driver, "nodeID": node_id, "topologyKeys": ["topology.example.com/zone"],
                   "allocatable": {"count": 16}})
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"drivers": drivers},
    }))
    .expect("csinode")
}

/// The next watch event that is not a bookmark.
async fn next_change(
    watch: &mut (impl futures::Stream<Item = Result<WatchEvent<CSINode>, kube::Error>> + Unpin),
) -> Option<WatchEvent<CSINode>> {
    loop {
        match watch.try_next().await.expect("watch stream") {
            Some(WatchEvent::Bookmark(_)) => continue,
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_discovers_creates_lists_watches_patches_and_deletes_csinodes() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    let client = http_client_no_retry(&server, None);

    let discovery = Discovery::new(client.clone())
        .filter(&["storage.k8s.io"])
        .run()
        .await
        .expect("discovery");
    let (resource, caps) = discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .find(|(resource, _)| resource.plural == "csinodes")
        .expect("csinodes in discovery");
    assert_eq!(
        (resource.kind.as_str(), resource.api_version.as_str()),
        ("CSINode", "storage.k8s.io/v1")
    );
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
    assert!(caps.supports_operation(kube::discovery::verbs::WATCH));

    let api: Api<CSINode> = Api::all(client.clone());
    let mut watch = api
        .watch(&kube::api::WatchParams::default(), "0")
        .await
        .expect("watch")
        .boxed();
    let created = api
        .create(
            &PostParams::default(),
            &csinode("node-a", &[("disk.example.com", "i-0a")]),
        )
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.resource_version.is_some());
    assert_eq!(created.spec.drivers[0].node_id, "i-0a");
    assert_eq!(
        created.spec.drivers[0]
            .allocatable
            .as_ref()
            .and_then(|a| a.count),
        Some(16)
    );
    match next_change(&mut watch).await {
        Some(WatchEvent::Added(node)) => {
            assert_eq!(node.metadata.name.as_deref(), Some("node-a"))
        }
        other => panic!("expected ADDED, got {other:?}"),
    }
    let conflict = api
        .create(&PostParams::default(), &csinode("node-a", &[]))
        .await;
    match conflict {
        Err(kube::Error::Api(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (409, "AlreadyExists")
            );
            assert_eq!(
                status.message,
                "csinodes.storage.k8s.io \"node-a\" already exists"
            );
        }
        other => panic!("expected 409, got {other:?}"),
    }
    api.create(
        &PostParams::default(),
        &csinode("node-b", &[("disk.example.com", "i-0b")]),
    )
    .await
    .expect("create b");

    // Strategic merge: `spec.drivers` merges by name (the second driver is added).
    let patched = api
        .patch(
            "node-a",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"drivers": [{"name": "net.example.com", "nodeID": "a"}]}}),
            ),
        )
        .await
        .expect("strategic patch");
    let names: Vec<_> = patched
        .spec
        .drivers
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, ["disk.example.com", "net.example.com"]);
    match next_change(&mut watch).await {
        Some(WatchEvent::Added(node)) => {
            assert_eq!(node.metadata.name.as_deref(), Some("node-b"))
        }
        other => panic!("expected ADDED node-b, got {other:?}"),
    }
    match next_change(&mut watch).await {
        Some(WatchEvent::Modified(node)) => assert_eq!(node.spec.drivers.len(), 2),
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    let mut replaced = api.get("node-b").await.expect("get");
    replaced.spec.drivers.clear();
    let replaced = api
        .replace("node-b", &PostParams::default(), &replaced)
        .await
        .expect("update");
    assert!(replaced.spec.drivers.is_empty());

    let listed = api.list(&ListParams::default()).await.expect("list");
    let names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    assert_eq!(names, ["node-a", "node-b"]);
    let selected = api
        .list(&ListParams::default().fields("metadata.name=node-b"))
        .await
        .expect("list by name");
    assert_eq!(selected.items.len(), 1);

    api.delete("node-a", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(api.get_opt("node-a").await.expect("get").is_none());
    match api.get("node-a").await {
        Err(kube::Error::Api(status)) => assert_eq!(
            status.message,
            "csinodes.storage.k8s.io \"node-a\" not found"
        ),
        other => panic!("expected 404, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_carry_the_csinode_schema() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    let client = http_client_no_retry(&server, None);
    let request = http::Request::get("/openapi/v3/apis/storage.k8s.io/v1")
        .body(Vec::new())
        .expect("request");
    let (status, _, body) = raw(&client, request).await.expect("openapi v3");
    assert_eq!(status, 200);
    let document: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    let csinode = schemas
        .iter()
        .find(|(name, _)| name.ends_with("storage.v1.CSINode"))
        .map(|(_, schema)| schema)
        .expect("a CSINode schema");
    assert_eq!(
        csinode["x-kubernetes-group-version-kind"][0]["kind"],
        json!("CSINode"),
        "{csinode}"
    );
    let paths = document["paths"].as_object().expect("paths");
    assert!(
        paths.contains_key("/apis/storage.k8s.io/v1/csinodes/{name}"),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    server.shutdown().await;
}

const SEED: &str = r#"apiVersion: storage.k8s.io/v1
kind: CSINode
metadata:
  name: node-a
spec:
  drivers:
  - name: disk.example.com
    nodeID: i-0a
    topologyKeys: [topology.example.com/zone]
  - name: net.example.com
    nodeID: a
---
apiVersion: storage.k8s.io/v1
kind: CSINode
metadata:
  name: node-b
spec:
  drivers: []
"#;

#[test]
fn kubectl_gets_explains_and_applies_csinodes() {
    require_kubectl();
    let dir = TempDir::new("csinodes");
    let seed = dir.join("seed.yaml");
    std::fs::write(&seed, SEED).expect("write seed");
    let seed = seed.to_string_lossy().into_owned();
    let fake = FakeProcess::without_auth(&["--load", &seed]);

    let text = fake.kubectl_ok(&["get", "csinodes"]);
    let lines: Vec<Vec<String>> = text.lines().map(cells).collect();
    assert_eq!(lines[0], ["NAME", "DRIVERS", "AGE"], "{text}");
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[1][..2], ["node-a", "2"], "{text}");
    assert_eq!(lines[2][..2], ["node-b", "0"], "{text}");

    let yaml = fake.kubectl_ok(&["get", "csinode", "node-a", "-o", "yaml"]);
    assert!(yaml.contains("kind: CSINode"), "{yaml}");
    assert!(yaml.contains("nodeID: i-0a"), "{yaml}");

    let explained = fake.kubectl_ok(&["explain", "csinode.spec.drivers"]);
    assert!(explained.contains("nodeID"), "{explained}");

    let applied = dir.join("apply.yaml");
    std::fs::write(
        &applied,
        "apiVersion: storage.k8s.io/v1\nkind: CSINode\nmetadata:\n  name: node-c\nspec:\n  drivers:\n  - name: disk.example.com\n    nodeID: i-0c\n",
    )
    .expect("write");
    let out = fake.kubectl_ok(&["apply", "-f", &applied.to_string_lossy()]);
    assert_eq!(out.trim(), "csinode.storage.k8s.io/node-c created", "{out}");
    let names = fake.kubectl_ok(&["get", "csinodes", "-o", "name"]);
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        [
            "csinode.storage.k8s.io/node-a",
            "csinode.storage.k8s.io/node-b",
            "csinode.storage.k8s.io/node-c"
        ]
    );
    let out = fake.kubectl_ok(&["delete", "csinode", "node-b"]);
    assert_eq!(
        out.trim(),
        "csinode.storage.k8s.io \"node-b\" deleted",
        "{out}"
    );
}
