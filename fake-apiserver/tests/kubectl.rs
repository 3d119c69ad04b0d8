//! The real kubectl against the `fake-apiserver` binary: create -f (default validation),
//! describe (Events table, `(xN over …)`), get (real columns), get --watch, delete, tokens.
//!
//! kubectl must be on the PATH: these tests fail loudly without it, they never skip.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Instant;

use common::*;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, PostParams};

const CLAIM_MANIFEST: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: ns1
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: ns1
spec:
  accessModes:
  - ReadWriteOnce
  resources:
    requests:
      storage: 1Gi
  storageClassName: fast
"#;

const SEED: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: seeded
---
apiVersion: v1
kind: Node
metadata:
  name: node-a
  labels:
    node-role.kubernetes.io/control-plane: ""
spec: {}
status:
  conditions:
  - type: Ready
    status: "True"
    reason: KubeletReady
    message: kubelet is posting ready status
    lastHeartbeatTime: "2026-01-01T00:00:00Z"
    lastTransitionTime: "2026-01-01T00:00:00Z"
  nodeInfo:
    architecture: amd64
    bootID: b
    containerRuntimeVersion: containerd://1.7.0
    kernelVersion: 6.1.0
    kubeProxyVersion: v1.32.4
    kubeletVersion: v1.32.4
    machineID: m
    operatingSystem: linux
    osImage: Debian GNU/Linux 12
    systemUUID: s
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: pv-bound
spec:
  capacity:
    storage: 5Gi
  accessModes:
  - ReadWriteOnce
  persistentVolumeReclaimPolicy: Delete
  storageClassName: fast
  claimRef:
    apiVersion: v1
    kind: PersistentVolumeClaim
    namespace: seeded
    name: bound
  csi:
    driver: csi.example.com
    volumeHandle: vol-1
status:
  phase: Bound
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: bound
  namespace: seeded
spec:
  accessModes:
  - ReadWriteOnce
  resources:
    requests:
      storage: 5Gi
  storageClassName: fast
  volumeName: pv-bound
status:
  phase: Bound
  accessModes:
  - ReadWriteOnce
  capacity:
    storage: 5Gi
"#;

/// Parses a kubectl table (header line first) by the header's column offsets, so empty
/// cells stay in their column.
fn table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines().filter(|line| !line.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns = column_starts(header);
    lines.map(|line| row(line, &columns)).collect()
}

/// `(start, name)` of each header column: names are separated by 2+ spaces.
fn column_starts(header: &str) -> Vec<(usize, String)> {
    let mut columns = Vec::new();
    let bytes = header.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !(bytes[i] == b' ' && bytes.get(i + 1).is_none_or(|b| *b == b' '))
        {
            i += 1;
        }
        columns.push((start, header[start..i].trim().to_string()));
    }
    columns
}

fn row(line: &str, columns: &[(usize, String)]) -> BTreeMap<String, String> {
    let mut cells = BTreeMap::new();
    for (index, (start, name)) in columns.iter().enumerate() {
        let end = columns.get(index + 1).map_or(line.len(), |(next, _)| *next);
        let cell = line.get(*start..end.min(line.len())).unwrap_or("").trim();
        cells.insert(name.clone(), cell.to_string());
    }
    cells
}

fn headers(text: &str) -> Vec<String> {
    text.lines()
        .next()
        .map(|header| {
            column_starts(header)
                .into_iter()
                .map(|(_, name)| name)
                .collect()
        })
        .unwrap_or_default()
}

/// The rows of the Events table of `kubectl describe` output.
fn describe_events(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines().skip_while(|line| !line.starts_with("Events:"));
    let Some(first) = lines.next() else {
        panic!("no Events section in:\n{text}");
    };
    assert_ne!(
        first.trim(),
        "Events:  <none>",
        "describe shows no events:\n{text}"
    );
    let Some(header) = lines.next() else {
        panic!("no Events header in:\n{text}");
    };
    let columns = column_starts(header);
    let names: Vec<_> = columns.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(
        names,
        ["Type", "Reason", "Age", "From", "Message"],
        "{text}"
    );
    lines
        .skip(1) // the ---- line
        .take_while(|line| !line.trim().is_empty())
        .map(|line| row(line, &columns))
        .collect()
}

fn ago(seconds: i64) -> Time {
    Time(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(seconds))
}

fn core_event(
    name: &str,
    claim: &PersistentVolumeClaim,
    uid: Option<String>,
    (type_, reason, component, message): (&str, &str, &str, &str),
    (first, last, count): (i64, i64, i32),
) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: claim.metadata.namespace.clone(),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            name: claim.metadata.name.clone(),
            namespace: claim.metadata.namespace.clone(),
            uid,
            ..ObjectReference::default()
        },
        type_: Some(type_.into()),
        reason: Some(reason.into()),
        message: Some(message.into()),
        source: Some(EventSource {
            component: Some(component.into()),
            host: None,
        }),
        first_timestamp: Some(ago(first)),
        last_timestamp: Some(ago(last)),
        count: Some(count),
        ..Event::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_describe_get_events_and_delete_a_claim() {
    require_kubectl();
    let fake = FakeProcess::without_auth(&[]);
    let manifest = fake.dir.join("claim.yaml");
    std::fs::write(&manifest, CLAIM_MANIFEST).expect("write manifest");
    let manifest = manifest.to_string_lossy().into_owned();

    // Default client-side validation: kubectl reads /openapi/v3 first.
    let created = fake.kubectl_ok(&["create", "-f", &manifest]);
    assert!(created.contains("namespace/ns1 created"), "{created}");
    assert!(
        created.contains("persistentvolumeclaim/data created"),
        "{created}"
    );

    let client = fake.kube_client().await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "ns1");
    let claim = claims.get("data").await.expect("the claim kubectl created");
    let uid = claim.metadata.uid.clone().expect("uid");
    let events: Api<Event> = Api::namespaced(client, "ns1");
    for event in [
        core_event(
            "data.1",
            &claim,
            Some(uid.clone()),
            (
                "Normal",
                "Provisioning",
                "my-csi-controller",
                "provisioning volume for claim ns1/data",
            ),
            (30, 30, 1),
        ),
        core_event(
            "data.2",
            &claim,
            Some(uid.clone()),
            (
                "Warning",
                "ProvisioningFailed",
                "persistentvolume-controller",
                "legacy style message",
            ),
            (301, 61, 3),
        ),
        core_event(
            "data.3",
            &claim,
            Some("an-older-claim-uid".into()),
            (
                "Normal",
                "StaleClaim",
                "my-csi-controller",
                "for a claim that was deleted",
            ),
            (10, 10, 1),
        ),
    ] {
        events
            .create(&PostParams::default(), &event)
            .await
            .expect("create event");
    }

    // kube-rs's Recorder: events.k8s.io/v1 POST, then a merge PATCH adding a series.
    let recorder = kube::runtime::events::Recorder::new(
        fake.kube_client().await,
        kube::runtime::events::Reporter {
            controller: "csi.example.com".into(),
            instance: Some("csi-node-0".into()),
        },
    );
    let reference = kube::Resource::object_ref(&claim, &());
    for _ in 0..2 {
        recorder
            .publish(
                &kube::runtime::events::Event {
                    type_: kube::runtime::events::EventType::Normal,
                    reason: "Attached".into(),
                    note: Some("volume attached to node-a".into()),
                    action: "Attach".into(),
                    secondary: None,
                },
                &reference,
            )
            .await
            .expect("Recorder publishes");
    }

    let described = fake.kubectl_ok(&["describe", "pvc", "data", "-n", "ns1"]);
    assert!(
        described.contains("Name:") && described.contains("data"),
        "{described}"
    );
    let rows = describe_events(&described);
    let by_reason: BTreeMap<_, _> = rows
        .iter()
        .map(|row| (row["Reason"].clone(), row.clone()))
        .collect();
    assert_eq!(
        by_reason.len(),
        3,
        "only the events of this claim's uid:\n{described}"
    );
    let attached = &by_reason["Attached"];
    assert_eq!(attached["Type"], "Normal", "{described}");
    assert_eq!(attached["From"], "csi.example.com", "{described}");
    assert_eq!(
        attached["Message"], "volume attached to node-a",
        "{described}"
    );
    assert!(attached["Age"].contains("(x2 over "), "{described}");
    let provisioning = &by_reason["Provisioning"];
    assert_eq!(provisioning["Type"], "Normal", "{described}");
    assert_eq!(provisioning["From"], "my-csi-controller", "{described}");
    assert_eq!(
        provisioning["Message"], "provisioning volume for claim ns1/data",
        "{described}"
    );
    let failed = &by_reason["ProvisioningFailed"];
    assert_eq!(failed["Type"], "Warning", "{described}");
    assert_eq!(failed["From"], "persistentvolume-controller", "{described}");
    assert_eq!(failed["Message"], "legacy style message", "{described}");
    assert!(failed["Age"].contains("(x3 over "), "{described}");
    // Sorted by lastTimestamp: the Recorder's event (none) first, then oldest last-seen first.
    let order: Vec<_> = rows.iter().map(|row| row["Reason"].as_str()).collect();
    assert_eq!(
        order,
        ["Attached", "ProvisioningFailed", "Provisioning"],
        "{described}"
    );

    let listed = fake.kubectl_ok(&["get", "events", "-n", "ns1"]);
    assert_eq!(
        headers(&listed),
        ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{listed}"
    );
    let rows = table(&listed);
    let failed = rows
        .iter()
        .find(|row| row["REASON"] == "ProvisioningFailed")
        .unwrap_or_else(|| panic!("no ProvisioningFailed row:\n{listed}"));
    assert_eq!(failed["TYPE"], "Warning", "{listed}");
    assert_eq!(failed["OBJECT"], "persistentvolumeclaim/data", "{listed}");
    assert_eq!(failed["MESSAGE"], "legacy style message", "{listed}");
    assert_eq!(rows.len(), 4, "{listed}");

    // `delete -f` of the namespace and the claim: the namespace turns Terminating, the claim
    // is still there to delete, and kubectl waits until both are gone (as on a real cluster).
    let deleted = fake.kubectl_ok(&["delete", "-f", &manifest]);
    assert!(deleted.contains("namespace \"ns1\" deleted"), "{deleted}");
    assert!(
        deleted.contains("persistentvolumeclaim \"data\" deleted"),
        "{deleted}"
    );
    let namespace_gone = fake.kubectl(&["get", "namespace", "ns1"]);
    assert!(
        String::from_utf8_lossy(&namespace_gone.stderr)
            .contains("Error from server (NotFound): namespaces \"ns1\" not found"),
        "{namespace_gone:?}"
    );
    // The server answers `persistentvolumeclaims "data" not found`; kubectl 1.32 then finds
    // the namespace missing too and says so, as against a real cluster.
    let gone = fake.kubectl(&["get", "pvc", "data", "-n", "ns1"]);
    assert!(!gone.status.success());
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert!(
        stderr.contains("Error from server (NotFound): namespaces \"ns1\" not found"),
        "{stderr}"
    );
    let client = fake.kube_client().await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, "ns1");
    assert!(claims.get_opt("data").await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_prints_real_columns_for_claims_volumes_and_nodes() {
    require_kubectl();
    let dir = TempDir::new("seed");
    let seed = dir.join("seed.yaml");
    std::fs::write(&seed, SEED).expect("write seed");
    let seed = seed.to_string_lossy().into_owned();
    let fake = FakeProcess::without_auth(&["--load", &seed]);

    let claims = fake.kubectl_ok(&["get", "pvc", "-n", "seeded"]);
    let head = headers(&claims);
    for column in [
        "NAME",
        "STATUS",
        "VOLUME",
        "CAPACITY",
        "ACCESS MODES",
        "STORAGECLASS",
        "AGE",
    ] {
        assert!(
            head.iter().any(|h| h == column),
            "no {column} column:\n{claims}"
        );
    }
    let rows = table(&claims);
    assert_eq!(rows.len(), 1, "{claims}");
    let bound = &rows[0];
    assert_eq!(
        (
            bound["NAME"].as_str(),
            bound["STATUS"].as_str(),
            bound["VOLUME"].as_str(),
            bound["CAPACITY"].as_str(),
            bound["ACCESS MODES"].as_str(),
            bound["STORAGECLASS"].as_str()
        ),
        ("bound", "Bound", "pv-bound", "5Gi", "RWO", "fast"),
        "{claims}"
    );

    let volumes = fake.kubectl_ok(&["get", "pv"]);
    let head = headers(&volumes);
    for column in [
        "NAME",
        "CAPACITY",
        "ACCESS MODES",
        "RECLAIM POLICY",
        "STATUS",
        "CLAIM",
        "STORAGECLASS",
        "AGE",
    ] {
        assert!(
            head.iter().any(|h| h == column),
            "no {column} column:\n{volumes}"
        );
    }
    let rows = table(&volumes);
    assert_eq!(rows.len(), 1, "{volumes}");
    let pv = &rows[0];
    assert_eq!(
        (
            pv["NAME"].as_str(),
            pv["CAPACITY"].as_str(),
            pv["ACCESS MODES"].as_str(),
            pv["RECLAIM POLICY"].as_str(),
            pv["STATUS"].as_str(),
            pv["CLAIM"].as_str(),
            pv["STORAGECLASS"].as_str()
        ),
        (
            "pv-bound",
            "5Gi",
            "RWO",
            "Delete",
            "Bound",
            "seeded/bound",
            "fast"
        ),
        "{volumes}"
    );

    let nodes = fake.kubectl_ok(&["get", "nodes"]);
    assert_eq!(
        headers(&nodes),
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        "{nodes}"
    );
    let rows = table(&nodes);
    assert_eq!(rows.len(), 1, "{nodes}");
    assert_eq!(
        (
            rows[0]["NAME"].as_str(),
            rows[0]["STATUS"].as_str(),
            rows[0]["ROLES"].as_str(),
            rows[0]["VERSION"].as_str()
        ),
        ("node-a", "Ready", "control-plane", "v1.32.4"),
        "{nodes}"
    );

    // Short names come from discovery.
    let short = fake.kubectl_ok(&["get", "no", "-o", "name"]);
    assert_eq!(short.trim(), "node/node-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_events_watch_prints_events_created_after_it_started() {
    require_kubectl();
    let fake = FakeProcess::without_auth(&[]);
    let client = fake.kube_client().await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "w"}}))
                .expect("namespace"),
        )
        .await
        .expect("create namespace");
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            namespace: Some("w".into()),
            ..ObjectMeta::default()
        },
        ..PersistentVolumeClaim::default()
    };
    let events: Api<Event> = Api::namespaced(client, "w");
    let before = core_event(
        "data.before",
        &claim,
        Some("u1".into()),
        ("Normal", "BeforeWatch", "test", "created before the watch"),
        (5, 5, 1),
    );
    events
        .create(&PostParams::default(), &before)
        .await
        .expect("create first event");

    let mut child = fake
        .kubectl_command(&["get", "events", "-n", "w", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubectl --watch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let wait_for = |needle: &str, seen: &mut Vec<String>| {
        let started = Instant::now();
        while !seen.iter().any(|line| line.contains(needle)) {
            let left = DEADLINE.saturating_sub(started.elapsed());
            match rx.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => return false,
            }
        }
        true
    };
    // The first event shows up: the list is done and the watch is open (or opening; it
    // starts from the list's resourceVersion, so nothing in between is missed).
    let listed = wait_for("BeforeWatch", &mut seen);
    let mut after = before.clone();
    after.metadata.name = Some("data.after".into());
    after.reason = Some("AfterWatch".into());
    after.message = Some("created while kubectl watched".into());
    let created = if listed {
        events
            .create(&PostParams::default(), &after)
            .await
            .map(|_| ())
    } else {
        Ok(())
    };
    let streamed = listed && wait_for("AfterWatch", &mut seen);
    let _ = child.kill();
    let output = child.wait_with_output().expect("kubectl output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        listed,
        "kubectl --watch never printed the existing event:\n{seen:#?}\nstderr:\n{stderr}"
    );
    created.expect("create the second event");
    assert!(
        streamed,
        "kubectl --watch did not print the new event:\n{seen:#?}\nstderr:\n{stderr}"
    );
    let line = seen
        .iter()
        .find(|line| line.contains("AfterWatch"))
        .expect("seen");
    assert!(line.contains("Normal"), "{line}");
    assert!(line.contains("persistentvolumeclaim/data"), "{line}");
    assert!(line.contains("created while kubectl watched"), "{line}");
}

/// With `--token`, kube-rs built from the written kubeconfig gets in; kubectl cannot, because
/// client-go never sends a bearer token over plain HTTP (kubernetes/kubectl#744), so the fake
/// answers it 401 exactly as a real server would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_server_admits_the_kubeconfig_token() {
    require_kubectl();
    let fake = FakeProcess::start(&["--token", "t0ken"]);
    let client = fake.kube_client().await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    namespaces
        .list(&Default::default())
        .await
        .expect("kube-rs with the kubeconfig's token is let in");
    let denied = fake.kubectl(&["get", "namespaces"]);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("You must be logged in to the server"),
        "{stderr}"
    );
}

#[test]
fn binary_refuses_a_non_loopback_address_with_a_clear_error() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["--listen", "0.0.0.0:0", "--no-auth"])
        .output()
        .expect("run the binary");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("non-loopback") && stderr.contains("--allow-non-loopback"),
        "{stderr}"
    );
}

#[test]
fn binary_reports_a_missing_load_file() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-auth",
            "--load",
            "/nonexistent/seed.yaml",
        ])
        .output()
        .expect("run the binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read /nonexistent/seed.yaml"),
        "{stderr}"
    );
}

/// `kubectl apply --server-side`: the manager `kubectl` owns the applied fields, another
/// manager changing one is refused with the real conflict text, `--force-conflicts` takes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply_reports_field_manager_conflicts() {
    require_kubectl();
    let fake = FakeProcess::without_auth(&[]);
    let manifest = |app: &str| {
        format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: default\n  labels:\n    app: {app}\nspec:\n  accessModes:\n  - ReadWriteOnce\n  resources:\n    requests:\n      storage: 1Gi\n"
        )
    };
    let first = fake.dir.join("first.yaml");
    std::fs::write(&first, manifest("a")).expect("write manifest");
    let second = fake.dir.join("second.yaml");
    std::fs::write(&second, manifest("b")).expect("write manifest");
    let first = first.to_string_lossy().into_owned();
    let second = second.to_string_lossy().into_owned();

    let out = fake.kubectl_ok(&["apply", "--server-side", "-f", &first]);
    assert!(
        out.contains("persistentvolumeclaim/data serverside-applied"),
        "{out}"
    );

    let refused = fake.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        &second,
    ]);
    assert!(!refused.status.success(), "a conflicting apply must fail");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(
            "Apply failed with 1 conflict: conflict with \"kubectl\": .metadata.labels.app"
        ),
        "{stderr}"
    );

    fake.kubectl_ok(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &second,
    ]);
    let yaml = fake.kubectl_ok(&[
        "get",
        "pvc",
        "data",
        "-n",
        "default",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(yaml.contains("app: b"), "{yaml}");
    assert!(yaml.contains("manager: other"), "{yaml}");
    assert!(yaml.contains("manager: kubectl"), "{yaml}");
    assert!(yaml.contains("operation: Apply"), "{yaml}");
}
