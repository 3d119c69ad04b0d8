//! The kubectl matrix: every kubectl on the machine (`kubectl` and any `kubectl.1.27` …
//! `kubectl.1.33` beside it) against the `fake-apiserver` binary, through the commands QA
//! uses: `create namespace` and `run` (protobuf bodies from 1.32 on), `apply -f` and
//! re-apply (client-side, validated against the OpenAPI documents), the `kind: List` back-up
//! from `get -o yaml` restored with `apply -f` (validated against `/openapi/v2`), `explain`,
//! `events`, `auth can-i` and `describe node` (its Lease).
//!
//! kubectl must be on the PATH: these tests fail loudly without it, they never skip.

mod common;

use common::*;

const SEED: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: seeded
---
apiVersion: v1
kind: Event
metadata:
  name: data.1
  namespace: seeded
involvedObject:
  kind: PersistentVolumeClaim
  name: data
  namespace: seeded
reason: ProvisioningSucceeded
message: volume provisioned
type: Normal
source:
  component: csi-provisioner
firstTimestamp: "2026-01-01T00:00:00Z"
lastTimestamp: "2026-01-01T00:00:00Z"
count: 1
"#;

const MANIFEST: &str = r#"apiVersion: v1
kind: Node
metadata:
  name: node-a
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: apps
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
"#;

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn ok(fake: &FakeProcess, kubectl: &str, args: &[&str]) -> String {
    let output = fake.kubectl_with(kubectl, args);
    let shown = text(&output);
    assert!(
        output.status.success(),
        "{kubectl} {} failed:\n{shown}",
        args.join(" ")
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn every_kubectl_on_the_machine_works_against_the_fake() {
    let versions = kubectl_versions();
    eprintln!("kubectl matrix: {versions:?}");
    for kubectl in &versions {
        let seed = TempDir::new("matrix-seed");
        let seed_file = seed.join("seed.yaml");
        std::fs::write(&seed_file, SEED).expect("write seed");
        let fake = FakeProcess::without_auth(&["--load", &seed_file.to_string_lossy()]);
        let k = kubectl.as_str();

        assert!(ok(&fake, k, &["create", "namespace", "apps"]).contains("namespace/apps created"));
        assert!(
            ok(&fake, k, &["-n", "apps", "run", "web", "--image=nginx"])
                .contains("pod/web created")
        );
        assert!(
            ok(&fake, k, &["-n", "apps", "get", "pod", "web", "-o", "name"]).contains("pod/web")
        );

        let manifest = fake.dir.join("manifest.yaml");
        std::fs::write(&manifest, MANIFEST).expect("write manifest");
        let manifest = manifest.to_string_lossy().into_owned();
        let first = ok(&fake, k, &["apply", "-f", &manifest]);
        assert!(first.contains("node/node-a created"), "{k}: {first}");
        assert!(
            first.contains("persistentvolumeclaim/data created"),
            "{k}: {first}"
        );
        let again = ok(&fake, k, &["apply", "-f", &manifest]);
        assert!(
            again.contains("persistentvolumeclaim/data unchanged"),
            "{k}: {again}"
        );

        // Back-up and restore: `get -o yaml` writes a `kind: List`.
        let backup = ok(&fake, k, &["-n", "apps", "get", "pvc", "-o", "yaml"]);
        assert!(backup.contains("kind: List"), "{k}: {backup}");
        let backup_file = fake.dir.join("backup.yaml");
        std::fs::write(&backup_file, &backup).expect("write backup");
        ok(&fake, k, &["-n", "apps", "delete", "pvc", "data"]);
        let restored = ok(&fake, k, &["apply", "-f", &backup_file.to_string_lossy()]);
        assert!(
            restored.contains("persistentvolumeclaim/data created"),
            "{k}: {restored}"
        );

        let explained = ok(&fake, k, &["explain", "pvc.spec.accessModes"]);
        assert!(explained.contains("accessModes"), "{k}: {explained}");
        assert!(
            explained.contains("desired access modes"),
            "{k}: {explained}"
        );

        let events = ok(&fake, k, &["-n", "seeded", "events"]);
        assert!(events.contains("ProvisioningSucceeded"), "{k}: {events}");
        assert!(events.contains("volume provisioned"), "{k}: {events}");

        assert_eq!(
            ok(&fake, k, &["auth", "can-i", "create", "pods"]).trim(),
            "yes"
        );

        let node = ok(&fake, k, &["describe", "node", "node-a"]);
        assert!(node.contains("HolderIdentity:  node-a"), "{k}: {node}");
        assert!(!node.to_lowercase().contains("error"), "{k}: {node}");
    }
}
