//! The real external-attacher (kubernetes-csi/external-attacher v4.13.0, built from `peers/`)
//! driving `csi-events serve` on a unix socket, both against the `fake-apiserver` binary over
//! HTTP. The test plays kube-controller-manager: it writes the Nodes, CSINodes, PVs, PVCs and
//! VolumeAttachments (named as kube-controller-manager names them) and deletes the
//! VolumeAttachments to detach; the attacher does the rest (finalizers, the node-id annotation,
//! the CSI calls, the status subresource), and the driver posts its Events on the claims.
//!
//! Each test has its own world (one fake-apiserver, one driver, one attacher). Needs `go` (the
//! attacher is built from the module proxy's pinned sources on first use):
//! `cargo test --test external_attacher`. It fails loudly without `go`.

#[path = "support/go_peers.rs"]
mod go_peers;

#[path = "support/fake_binary.rs"]
mod fake_binary;
use fake_binary::{fake_apiserver_binary, root};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, PersistentVolume};
use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::{Api, DeleteParams, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

const CSI_EVENTS: &str = env!("CARGO_BIN_EXE_csi-events");
const DRIVER: &str = "rds.csi.srvlab.io";
/// The attacher's finalizer on VolumeAttachments and PVs (`external-attacher/` + the driver
/// name with every character outside `[A-Za-z0-9-]` as `-`).
const FINALIZER: &str = "external-attacher/rds-csi-srvlab-io";
const NODE_ID_ANNOTATION: &str = "csi.alpha.kubernetes.io/node-id";
/// How long any one expected change may take before the test fails (the attacher retries
/// failures after 1 s, 2 s, …; a healthy step takes well under a second).
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// A child process killed (and reaped) on drop, its stderr in a log file.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, command: &mut Command, dir: &Path) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("create a log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self { name, child, log }
    }

    /// Waits (bounded) for a first stdout line starting with `prefix`.
    fn wait_for_line(&mut self, prefix: &str) -> String {
        let stdout = self.child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        match rx.recv_timeout(STEP_LIMIT) {
            Ok(Some(Ok(line))) if line.starts_with(prefix) => line,
            other => panic!(
                "{} did not print {prefix:?} ({other:?}); its log:\n{}",
                self.name,
                self.log_text()
            ),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One world: fake-apiserver, `csi-events serve`, csi-attacher, and a kube client.
struct World {
    dir: PathBuf,
    client: kube::Client,
    // Dropped in this order: the attacher, the driver, the API server.
    attacher: Process,
    driver: Process,
    _apiserver: Process,
}

impl World {
    async fn start(tag: &str) -> Self {
        let peers = go_peers::go_peers();
        let dir = root()
            .join("target")
            .join("external-attacher")
            .join(format!("{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("test dir");
        let kubeconfig = dir.join("kubeconfig");

        let mut apiserver = Process::spawn(
            "fake-apiserver",
            // `--no-auth`: client-go's kubeconfig loader reads a user's credentials only for a
            // TLS server, so against a plain-HTTP server with a token the attacher is refused
            // (401), as kubectl is.
            Command::new(fake_apiserver_binary())
                .args(["--listen", "127.0.0.1:0", "--no-auth", "--kubeconfig"])
                .arg(&kubeconfig),
            &dir,
        );
        apiserver.wait_for_line("listening on ");
        let config = Kubeconfig::read_from(&kubeconfig).expect("read the fake's kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
            .await
            .expect("kube config from the fake's kubeconfig");
        let client = kube::Client::try_from(config).expect("kube client");

        // The socket path must stay short (unix sockets: 108 bytes).
        let socket = std::env::temp_dir().join(format!("ce-{tag}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let endpoint = format!("unix://{}", socket.display());
        let mut driver = Process::spawn(
            "csi-events-serve",
            Command::new(CSI_EVENTS)
                .args(["serve", "--csi-endpoint", &endpoint, "--kubeconfig"])
                .arg(&kubeconfig)
                .args(["--driver-name", DRIVER])
                .env("RUST_LOG", "info"),
            &dir,
        );
        let deadline = Instant::now() + STEP_LIMIT;
        while !socket.exists() {
            assert!(
                driver.is_running(),
                "csi-events serve exited: {}",
                driver.log_text()
            );
            assert!(
                Instant::now() < deadline,
                "csi-events serve made no socket at {} within {STEP_LIMIT:?}; its log:\n{}",
                socket.display(),
                driver.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }

        let attacher = Process::spawn(
            "csi-attacher",
            Command::new(peers.binary("csi-attacher"))
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .arg(format!("--csi-address={}", socket.display()))
                .args([
                    "--leader-election=false",
                    "--timeout=10s",
                    "--retry-interval-start=500ms",
                    "--retry-interval-max=5s",
                    "--worker-threads=4",
                    "--v=5",
                ]),
            &dir,
        );
        let world = Self {
            dir,
            client,
            attacher,
            driver,
            _apiserver: apiserver,
        };
        world.seed().await;
        world
    }

    /// Namespace, Nodes and CSINodes (what kubelet's registration writes).
    async fn seed(&self) {
        self.create(
            "v1",
            "namespaces",
            None,
            json!({"metadata": {"name": "vms"}}),
        )
        .await;
        for node in ["node-a", "node-b"] {
            self.create("v1", "nodes", None, json!({"metadata": {"name": node}}))
                .await;
            self.create(
                "storage.k8s.io/v1",
                "csinodes",
                None,
                json!({
                    "metadata": {"name": node},
                    "spec": {"drivers": [{"name": DRIVER, "nodeID": node, "topologyKeys": null}]}
                }),
            )
            .await;
        }
    }

    /// POSTs `body` (apiVersion and kind filled in) to the collection; panics on failure.
    async fn create(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        mut body: serde_json::Value,
    ) {
        let kind = match plural {
            "namespaces" => "Namespace",
            "nodes" => "Node",
            "csinodes" => "CSINode",
            "persistentvolumes" => "PersistentVolume",
            "persistentvolumeclaims" => "PersistentVolumeClaim",
            "volumeattachments" => "VolumeAttachment",
            other => panic!("no kind for {other}"),
        };
        body["apiVersion"] = json!(api_version);
        body["kind"] = json!(kind);
        let prefix = if api_version == "v1" {
            "/api/v1".to_string()
        } else {
            format!("/apis/{api_version}")
        };
        let path = match namespace {
            Some(ns) => format!("{prefix}/namespaces/{ns}/{plural}"),
            None => format!("{prefix}/{plural}"),
        };
        let request = http::Request::post(&path)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).expect("JSON"))
            .expect("request");
        let answer: Result<serde_json::Value, _> = self.client.request(request).await;
        if let Err(e) = answer {
            panic!("creating {path} {body}: {e}");
        }
    }

    /// A volume as kube-controller-manager's PV controller and the provisioner leave it: a
    /// CSI PV (block) bound to claim `vms/CLAIM`, the claim bound to it.
    async fn volume(&self, id: &str, claim: &str, rwx: bool, timeout: Option<&str>) {
        let mode = if rwx {
            "ReadWriteMany"
        } else {
            "ReadWriteOnce"
        };
        let mut attributes = json!({
            "csi.storage.k8s.io/pvc/name": claim,
            "csi.storage.k8s.io/pvc/namespace": "vms",
        });
        if let Some(t) = timeout {
            attributes["migrationTimeoutSeconds"] = json!(t);
        }
        self.create(
            "v1",
            "persistentvolumeclaims",
            Some("vms"),
            json!({
                "metadata": {"name": claim, "namespace": "vms"},
                "spec": {
                    "accessModes": [mode],
                    "volumeMode": "Block",
                    "volumeName": id,
                    "resources": {"requests": {"storage": "1Gi"}}
                }
            }),
        )
        .await;
        self.create(
            "v1",
            "persistentvolumes",
            None,
            json!({
                "metadata": {"name": id},
                "spec": {
                    "accessModes": [mode],
                    "volumeMode": "Block",
                    "capacity": {"storage": "1Gi"},
                    "persistentVolumeReclaimPolicy": "Delete",
                    "claimRef": {"namespace": "vms", "name": claim, "kind": "PersistentVolumeClaim", "apiVersion": "v1"},
                    "csi": {"driver": DRIVER, "volumeHandle": id, "volumeAttributes": attributes}
                }
            }),
        )
        .await;
    }

    /// Creates the VolumeAttachment kube-controller-manager would for `volume` on `node`;
    /// returns its name.
    async fn attach(&self, volume: &str, node: &str) -> String {
        let name = attachment_name(volume, node);
        self.create(
            "storage.k8s.io/v1",
            "volumeattachments",
            None,
            json!({
                "metadata": {"name": name},
                "spec": {"attacher": DRIVER, "nodeName": node, "source": {"persistentVolumeName": volume}}
            }),
        )
        .await;
        name
    }

    /// Deletes a VolumeAttachment (the attacher detaches, then removes its finalizer).
    async fn detach(&self, volume: &str, node: &str) {
        let api: Api<VolumeAttachment> = Api::all(self.client.clone());
        api.delete(&attachment_name(volume, node), &DeleteParams::default())
            .await
            .expect("delete the VolumeAttachment");
    }

    async fn attachment(&self, name: &str) -> Option<VolumeAttachment> {
        let api: Api<VolumeAttachment> = Api::all(self.client.clone());
        api.get_opt(name).await.expect("get VolumeAttachment")
    }

    async fn pv(&self, name: &str) -> PersistentVolume {
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        api.get(name).await.expect("get PV")
    }

    /// The Events on claim `vms/CLAIM`, oldest first: (reason, message).
    async fn events(&self, claim: &str) -> Vec<(String, String)> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), "vms");
        let mut listed = api
            .list(&ListParams::default().fields(&format!("involvedObject.name={claim}")))
            .await
            .expect("list events")
            .items;
        listed.sort_by_key(|e| {
            (
                e.event_time.as_ref().map(|t| t.0.to_string()),
                e.first_timestamp.as_ref().map(|t| t.0.to_string()),
                e.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string()),
            )
        });
        listed
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
            .collect()
    }

    /// Polls `check` until it returns `Some`, failing after [`STEP_LIMIT`] with the logs.
    async fn until<T, F, Fut>(&mut self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + STEP_LIMIT;
        loop {
            if let Some(value) = check().await {
                return value;
            }
            if Instant::now() > deadline || !self.attacher.is_running() || !self.driver.is_running()
            {
                self.fail(what);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn fail(&self, what: &str) -> ! {
        let tail = |text: String| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(60)..].join("\n")
        };
        panic!(
            "\n*** {what} did not happen within {STEP_LIMIT:?}.\n--- csi-attacher log (tail):\n{}\n--- csi-events serve log (tail):\n{}\n--- files in {}\n",
            tail(self.attacher.log_text()),
            tail(self.driver.log_text()),
            self.dir.display()
        );
    }
}

/// `csi-` + hex sha256 of volumeHandle + driver + node name (kube-controller-manager's name).
fn attachment_name(volume: &str, node: &str) -> String {
    let mut sha = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run sha256sum (coreutils)");
    sha.stdin
        .take()
        .expect("stdin")
        .write_all(format!("{volume}{DRIVER}{node}").as_bytes())
        .expect("write to sha256sum");
    let out = sha.wait_with_output().expect("sha256sum");
    let hex = String::from_utf8_lossy(&out.stdout);
    format!("csi-{}", hex.split_whitespace().next().expect("a digest"))
}

fn attached(va: &VolumeAttachment) -> bool {
    va.status.as_ref().is_some_and(|s| s.attached)
}

fn finalizers(meta: &kube::api::ObjectMeta) -> Vec<String> {
    meta.finalizers.clone().unwrap_or_default()
}

/// Waits until the attachment is attached and returns it.
async fn wait_attached(world: &mut World, volume: &str, node: &str) -> VolumeAttachment {
    let name = attachment_name(volume, node);
    let what = format!("{volume} attached to {node} (status.attached of {name})");
    let client = world.client.clone();
    world
        .until(&what, || {
            let api: Api<VolumeAttachment> = Api::all(client.clone());
            let name = name.clone();
            async move { api.get_opt(&name).await.ok().flatten().filter(attached) }
        })
        .await
}

/// Waits until the attachment is gone (detached, finalizer removed).
async fn wait_gone(world: &mut World, volume: &str, node: &str) {
    let name = attachment_name(volume, node);
    let what = format!("{volume} detached from {node} ({name} gone)");
    let client = world.client.clone();
    world
        .until(&what, || {
            let api: Api<VolumeAttachment> = Api::all(client.clone());
            let name = name.clone();
            async move {
                match api.get_opt(&name).await {
                    Ok(None) => Some(()),
                    _ => None,
                }
            }
        })
        .await
}

/// Waits until the claim carries an Event with `reason` whose message contains `part`.
async fn wait_event(world: &mut World, claim: &str, reason: &str, part: &str) -> String {
    let what = format!("an Event {reason} containing {part:?} on vms/{claim}");
    let client = world.client.clone();
    let (claim, reason, part) = (claim.to_string(), reason.to_string(), part.to_string());
    world
        .until(&what, || {
            let api: Api<Event> = Api::namespaced(client.clone(), "vms");
            let (claim, reason, part) = (claim.clone(), reason.clone(), part.clone());
            async move {
                let listed = api
                    .list(&ListParams::default().fields(&format!("involvedObject.name={claim}")))
                    .await
                    .ok()?;
                listed.items.into_iter().find_map(|e| {
                    let message = e.message.unwrap_or_default();
                    (e.reason.as_deref() == Some(reason.as_str()) && message.contains(&part))
                        .then_some(message)
                })
            }
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rwo_attach_and_detach_through_the_real_attacher() {
    let mut world = World::start("rwo").await;
    world.volume("pvc-rwo", "disk-rwo", false, None).await;
    let name = world.attach("pvc-rwo", "node-a").await;

    let va = wait_attached(&mut world, "pvc-rwo", "node-a").await;
    assert!(
        finalizers(&va.metadata).contains(&FINALIZER.to_string()),
        "the attacher's finalizer on {name}: {:?}",
        va.metadata.finalizers
    );
    assert_eq!(
        va.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(NODE_ID_ANNOTATION))
            .map(String::as_str),
        Some("node-a"),
        "the node-id annotation"
    );
    let status = va.status.as_ref().expect("status");
    assert!(status.attach_error.is_none(), "{status:?}");
    let pv = world.pv("pvc-rwo").await;
    assert!(
        finalizers(&pv.metadata).contains(&FINALIZER.to_string()),
        "the attacher's finalizer on the PV: {:?}",
        pv.metadata.finalizers
    );
    let message = wait_event(&mut world, "disk-rwo", "VolumeAttached", "node-a").await;
    assert!(
        message.starts_with("[pvc-rwo]: Attached to node node-a (duration: "),
        "{message}"
    );

    world.detach("pvc-rwo", "node-a").await;
    wait_gone(&mut world, "pvc-rwo", "node-a").await;
    let message = wait_event(&mut world, "disk-rwo", "VolumeDetached", "node-a").await;
    assert_eq!(message, "[pvc-rwo]: Detached from node node-a");
    // The attacher keeps its PV finalizer while the PV lives; once the PV is being deleted and
    // no VolumeAttachment refers to it, the attacher removes it (and the PV goes).
    assert!(
        finalizers(&world.pv("pvc-rwo").await.metadata).contains(&FINALIZER.to_string()),
        "the PV finalizer stays until the PV is deleted"
    );
    let pvs: Api<PersistentVolume> = Api::all(world.client.clone());
    pvs.delete("pvc-rwo", &DeleteParams::default())
        .await
        .expect("delete the PV");
    let client = world.client.clone();
    world
        .until(
            "the attacher's PV finalizer removed from the deleted PV",
            || {
                let api: Api<PersistentVolume> = Api::all(client.clone());
                async move {
                    match api.get_opt("pvc-rwo").await.ok()? {
                        None => Some(()),
                        Some(pv) => (!finalizers(&pv.metadata).contains(&FINALIZER.to_string()))
                            .then_some(()),
                    }
                }
            },
        )
        .await;
    assert!(world.attachment(&name).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rwx_live_migration_through_the_real_attacher() {
    let mut world = World::start("rwx").await;
    world.volume("pvc-rwx", "disk-rwx", true, Some("300")).await;
    world.attach("pvc-rwx", "node-a").await;
    wait_attached(&mut world, "pvc-rwx", "node-a").await;
    world.attach("pvc-rwx", "node-b").await;
    wait_attached(&mut world, "pvc-rwx", "node-b").await;
    let started = wait_event(&mut world, "disk-rwx", "MigrationStarted", "node-b").await;
    assert_eq!(
        started,
        "[pvc-rwx]: KubeVirt live migration started - source: node-a, target: node-b, timeout: 5m0s"
    );

    world.detach("pvc-rwx", "node-a").await;
    wait_gone(&mut world, "pvc-rwx", "node-a").await;
    let completed = wait_event(&mut world, "disk-rwx", "MigrationCompleted", "node-b").await;
    assert!(
        completed.starts_with(
            "[pvc-rwx]: KubeVirt live migration completed - source: node-a -> target: node-b (duration: "
        ),
        "{completed}"
    );
    // In order on the claim: attached, started, completed.
    let reasons: Vec<String> = world
        .events("disk-rwx")
        .await
        .into_iter()
        .map(|(reason, _)| reason)
        .collect();
    assert_eq!(
        reasons,
        ["VolumeAttached", "MigrationStarted", "MigrationCompleted"],
        "the claim's events"
    );
    // The target stays attached.
    let target = world
        .attachment(&attachment_name("pvc-rwx", "node-b"))
        .await
        .expect("the target's VolumeAttachment");
    assert!(attached(&target));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rwo_conflict_is_the_attach_error_of_the_second_node() {
    let mut world = World::start("conflict").await;
    world.volume("pvc-c", "disk-c", false, None).await;
    world.attach("pvc-c", "node-a").await;
    wait_attached(&mut world, "pvc-c", "node-a").await;
    let name = world.attach("pvc-c", "node-b").await;

    let client = world.client.clone();
    let error = world
        .until(
            "status.attachError on the second node's VolumeAttachment",
            || {
                let api: Api<VolumeAttachment> = Api::all(client.clone());
                let name = name.clone();
                async move {
                    let va = api.get_opt(&name).await.ok().flatten()?;
                    va.status?.attach_error?.message
                }
            },
        )
        .await;
    assert!(
        error.contains("FailedPrecondition")
            && error.contains(
                "Volume pvc-c already attached to node node-a. For multi-node access, use RWX with block volumes."
            ),
        "the driver's FAILED_PRECONDITION message in attachError: {error}"
    );
    let va = world.attachment(&name).await.expect("second attachment");
    assert!(!attached(&va), "the second node is not attached: {va:?}");
    let conflict = wait_event(&mut world, "disk-c", "AttachmentConflict", "node-b").await;
    assert_eq!(
        conflict,
        "[pvc-c]: Attachment to node node-b rejected - volume already attached to node node-a. Delete the pod on node-a to release the volume."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_times_out_while_the_attacher_waits() {
    let mut world = World::start("timeout").await;
    // 30 s is the shortest timeout the model accepts.
    world.volume("pvc-t", "disk-t", true, Some("30")).await;
    world.attach("pvc-t", "node-a").await;
    wait_attached(&mut world, "pvc-t", "node-a").await;
    world.attach("pvc-t", "node-b").await;
    wait_attached(&mut world, "pvc-t", "node-b").await;
    wait_event(&mut world, "disk-t", "MigrationStarted", "timeout: 30s").await;
    let started = Instant::now();
    // The timer fires 30 s after the start; STEP_LIMIT (30 s) more is the margin.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let failed = wait_event(&mut world, "disk-t", "MigrationFailed", "reason: timeout").await;
    assert!(
        started.elapsed() >= Duration::from_secs(25),
        "not before the timeout"
    );
    assert_eq!(
        failed,
        "[pvc-t]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: timeout, elapsed: 30s"
    );
    // Both nodes stay attached after a timeout.
    for node in ["node-a", "node-b"] {
        let va = world
            .attachment(&attachment_name("pvc-t", node))
            .await
            .expect("attachment");
        assert!(attached(&va), "{node} stays attached");
    }
}
