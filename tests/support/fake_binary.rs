//! The `fake-apiserver` binary as a child process, kubectl and the `csi-events` command, for
//! the end-to-end tests that cross process boundaries (external and black-box mode).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const CSI_EVENTS: &str = env!("CARGO_BIN_EXE_csi-events");

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn require_kubectl() {
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
pub fn fake_apiserver_binary() -> PathBuf {
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
pub struct FakeServer {
    pub child: Child,
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
}

impl FakeServer {
    pub fn start(tag: &str) -> Self {
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

    pub fn kubectl(&self, args: &[&str]) -> Output {
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

    pub fn csi_events(&self, args: &[&str]) -> Output {
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

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
