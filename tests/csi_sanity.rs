//! csi-sanity (kubernetes-csi/csi-test v5.6.0, built from `peers/`) against `csi-events serve`
//! on a unix socket, the serve command against the `fake-apiserver` binary over HTTP. The
//! Identity tests, the Controller tests that apply to a controller-only driver with
//! PUBLISH_UNPUBLISH_VOLUME, and NodeGetInfo / NodeGetCapabilities (`--node-id`) run; the skipped ones are [`SKIPPED`] (each with its reason, also in
//! the README). csi-sanity's own capability checks skip the rest (snapshots, expansion, …) and
//! the test asserts how many ran and passed.
//!
//! Needs `go`: `cargo test --test csi_sanity`. It fails loudly without `go`.

#[path = "support/go_peers.rs"]
mod go_peers;

#[path = "support/fake_binary.rs"]
mod fake_binary;
use fake_binary::{fake_apiserver_binary, root};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CSI_EVENTS: &str = env!("CARGO_BIN_EXE_csi-events");

/// The csi-sanity specs skipped on purpose, as ginkgo regular expressions, and why.
const SKIPPED: &[(&str, &str)] = &[
    (
        "NodePublishVolume|NodeUnpublishVolume",
        "serve is a controller-only driver: its minimal Node service answers NodeGetInfo and NodeGetCapabilities (both specs run), nothing it could publish on a node",
    ),
    (
        "Node Service should",
        "the node volume lifecycle (`should work`, `should be idempotent`) creates its volume with CreateVolume and stages and publishes it on the node",
    ),
    (
        "ValidateVolumeCapabilities",
        "not served (UNIMPLEMENTED, as every Controller RPC other than publish/unpublish, csi.md)",
    ),
    (
        "should fail when the node does not exist",
        "it creates its volume with CreateVolume, which a publish-only driver does not serve (no CREATE_DELETE_VOLUME)",
    ),
    (
        "volume lifecycle",
        "both specs create and delete their volume with CreateVolume/DeleteVolume (no CREATE_DELETE_VOLUME)",
    ),
];

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn csi_sanity_passes_the_identity_and_controller_specs_of_a_publish_only_driver() {
    let sanity = go_peers::go_peers().binary("csi-sanity");
    let dir = root()
        .join("target")
        .join("csi-sanity")
        .join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test dir");
    let kubeconfig = dir.join("kubeconfig");

    let mut apiserver = Command::new(fake_apiserver_binary())
        .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start fake-apiserver");
    let stdout = apiserver.stdout.take().expect("piped stdout");
    let apiserver = Killed(apiserver);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(Ok(line))) if line.starts_with("listening on ") => {}
        other => panic!("fake-apiserver did not say where it listens: {other:?}"),
    }

    let socket = std::env::temp_dir().join(format!("ce-sanity-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let endpoint = format!("unix://{}", socket.display());
    let serve_log = dir.join("serve.log");
    let mut driver = Killed(
        Command::new(CSI_EVENTS)
            .args(["serve", "--csi-endpoint", &endpoint, "--kubeconfig"])
            .arg(&kubeconfig)
            .args(["--node-id", "sanity-node"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&serve_log).expect("serve log"))
            .spawn()
            .expect("start csi-events serve"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        if let Ok(Some(status)) = driver.0.try_wait() {
            panic!(
                "csi-events serve exited ({status}): {}",
                std::fs::read_to_string(&serve_log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "csi-events serve made no socket in 30 s: {}",
            std::fs::read_to_string(&serve_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let skip = SKIPPED
        .iter()
        .map(|(pattern, _)| *pattern)
        .collect::<Vec<_>>()
        .join("|");
    let junit = dir.join("junit.xml");
    let output = Command::new(&sanity)
        .arg(format!("--csi.endpoint={endpoint}"))
        .arg("--csi.testvolumeaccesstype=block")
        .arg(format!(
            "--csi.stagingdir={}",
            dir.join("staging").display()
        ))
        .arg(format!("--csi.mountdir={}", dir.join("mount").display()))
        .arg(format!("--ginkgo.skip={skip}"))
        .arg(format!("--ginkgo.junit-report={}", junit.display()))
        .arg("--ginkgo.no-color")
        .output()
        .expect("run csi-sanity");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let serve_text = std::fs::read_to_string(&serve_log).unwrap_or_default();
    assert!(
        output.status.success(),
        "csi-sanity failed ({}):\n{text}\n{}\n--- csi-events serve log:\n{serve_text}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // Ginkgo's summary: "Ran N of M Specs" and "SUCCESS! -- N Passed | 0 Failed | 0 Pending | K Skipped".
    let ran = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Ran "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no `Ran N of M Specs` line in:\n{text}"));
    // Identity: 3 specs; Controller: capabilities, publish (no volume id, no node id, no
    // capability, the volume does not exist), unpublish (no volume id); Node: capabilities
    // and NodeGetInfo. 11 on csi-test v5.6.0.
    assert!(
        ran >= 11,
        "only {ran} specs ran; expected the Identity, publish and node-info specs:\n{text}"
    );
    assert!(text.contains(" 0 Failed"), "{text}");
    drop(driver);
    drop(apiserver);
}
