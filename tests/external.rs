//! External mode end to end: the `fake-apiserver` binary over HTTP, `csi-events run
//! --kubeconfig … --keep`, then the real kubectl's `describe pvc` shows the VolumeAttached,
//! MigrationStarted and MigrationCompleted rows with their exact messages. `fault` steps are
//! refused up front against a kubeconfig, and the model's clock stays virtual (the offsets and
//! the reported durations are the scenario's, not the wall clock's).
//!
//! kubectl must be on the PATH and the fake-apiserver binary must be buildable: this test
//! fails loudly without them, it never skips.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CSI_EVENTS: &str = env!("CARGO_BIN_EXE_csi-events");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn require_kubectl() {
    match Command::new("kubectl")
        .args(["version", "--client"])
        .output()
    {
        Ok(output) if output.status.success() => {}
        other => panic!(
            "\n\n*** kubectl is needed on the PATH for the external-mode test ({other:?}).\n*** Install kubectl (v1.32.x) and put it on the PATH.\n"
        ),
    }
}

/// The `fake-apiserver` binary: `FAKE_APISERVER_BIN`, else the one cargo built beside
/// `csi-events` (a workspace build builds both), else built now with `cargo build -p
/// fake-apiserver`. Panics with the command to run when none works.
fn fake_apiserver_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FAKE_APISERVER_BIN") {
        return PathBuf::from(path);
    }
    let sibling = Path::new(CSI_EVENTS)
        .with_file_name(format!("fake-apiserver{}", std::env::consts::EXE_SUFFIX));
    if sibling.exists() {
        return sibling;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "-p", "fake-apiserver", "--bin", "fake-apiserver"])
        .current_dir(root());
    if CSI_EVENTS.contains("/release/") {
        build.arg("--release");
    }
    let status = build.status();
    if sibling.exists() {
        return sibling;
    }
    panic!(
        "\n\n*** The fake-apiserver binary is missing at {} and `cargo build -p fake-apiserver` did not make it ({status:?}).\n*** Run `cargo build -p fake-apiserver` (or set FAKE_APISERVER_BIN) and re-run this test.\n",
        sibling.display()
    );
}

/// The fake API server as a child process (killed on drop).
struct FakeServer {
    child: Child,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl FakeServer {
    fn start(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("csi-events-external-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let kubeconfig = dir.join("kubeconfig");
        let mut child = Command::new(fake_apiserver_binary())
            // kubectl sends no bearer token over plain HTTP: let every request in.
            .args(["--listen", "127.0.0.1:0", "--no-auth", "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the fake-apiserver binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(Ok(line))) if line.starts_with("listening on ") => {}
            other => {
                let _ = child.kill();
                panic!("fake-apiserver did not say where it listens: {other:?}");
            }
        }
        Self {
            child,
            dir,
            kubeconfig,
        }
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.join("kube-cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }

    fn csi_events(&self, args: &[&str]) -> Output {
        Command::new(CSI_EVENTS)
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--snapshots")
            .arg(self.dir.join("snapshots"))
            .current_dir(root())
            .env("NO_COLOR", "1")
            .output()
            .expect("run csi-events")
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn kubectl_describe_shows_the_scenarios_events_with_their_exact_messages() {
    require_kubectl();
    let server = FakeServer::start("describe");
    let run = server.csi_events(&[
        "run",
        "scenarios/smoke-rwx-migration-completes.yaml",
        "--keep",
        "--format",
        "json",
    ]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON report");
    // The clock is virtual: the detach happens 2m15s into the scenario, in milliseconds.
    let detach = &report["scenarios"][0]["steps"][3];
    assert_eq!(detach["at"], "2m15s");
    assert_eq!(detach["events"][0]["reason"], "MigrationCompleted");

    let describe = server.kubectl(&["describe", "pvc", "disk-0", "-n", "vms"]);
    assert!(describe.status.success(), "{}", text(&describe.stderr));
    let out = text(&describe.stdout);
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("Normal"))
        .collect();
    for (reason, message) in [
        (
            "VolumeAttached",
            "[pvc-6f1c]: Attached to node node-a (duration: 153ms)",
        ),
        (
            "MigrationStarted",
            "[pvc-6f1c]: KubeVirt live migration started - source: node-a, target: node-b, timeout: 5m0s",
        ),
        (
            "MigrationCompleted",
            "[pvc-6f1c]: KubeVirt live migration completed - source: node-a -> target: node-b (duration: 2m15s)",
        ),
    ] {
        assert!(
            rows.iter()
                .any(|row| row.contains(reason) && row.trim_end().ends_with(message)),
            "no {reason} row ending in {message:?} in:\n{out}"
        );
    }
    // --keep left the volume's objects for inspection.
    let pv = server.kubectl(&["get", "pv", "pvc-6f1c", "-o", "name"]);
    assert_eq!(
        text(&pv.stdout).trim(),
        "persistentvolume/pvc-6f1c",
        "{}",
        text(&pv.stderr)
    );

    // Without --keep a second run cleans up after itself.
    let again = server.csi_events(&["run", "scenarios/smoke-rwx-migration-completes.yaml"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
    let gone = server.kubectl(&["get", "pv", "pvc-6f1c", "-o", "name"]);
    assert!(
        !gone.status.success(),
        "the PV should be gone: {}",
        text(&gone.stdout)
    );
}

#[test]
fn fault_steps_are_refused_before_anything_runs() {
    require_kubectl();
    let server = FakeServer::start("faults");
    let run = server.csi_events(&["run", "scenarios/smoke-api-faults.yaml", "--keep"]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("needs the embedded fake API server"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was run"), "{stderr}");
    let claims = server.kubectl(&["get", "pvc", "-A", "-o", "name"]);
    assert_eq!(text(&claims.stdout).trim(), "", "nothing was created");
}
