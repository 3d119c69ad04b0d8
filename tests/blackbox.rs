//! Black-box mode end to end (docs/csi.md §5): `csi-events serve` is a separate
//! process speaking CSI gRPC on a unix socket and HTTP to the API server; `csi-events run`
//! plays kube-controller-manager and the external-attacher against it and holds each
//! transcript to the reviewed snapshot (real-time durations within 1 s).
//!
//! - `--driver-cmd`: every fault-free library scenario whose `advance` steps add up to at most
//!   35 s, none shorter than 1 s (an instant real time cannot resolve), and that black-box mode
//!   can play, plus one where a 30 s migration timeout fires
//!   across a restart and one with an API fault set over HTTP, each against a fresh
//!   fake-apiserver and a fresh driver process;
//! - `--csi-endpoint`: a driver already running against the fake-apiserver binary; the real
//!   kubectl's `describe pvc` then shows the events, and SIGTERM stops the driver cleanly.
//!
//! `--report` writes the visual report in black-box mode too (a driver command).
//!
//! kubectl must be on the PATH (the second test): it fails loudly without it.

#[path = "support/report_page.rs"]
mod report_page;
use report_page::embedded;

#[path = "support/fake_binary.rs"]
mod fake_binary;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use csi_events::scenario::blackbox::Launch;
use csi_events::scenario::load::{discover, load_text};
use csi_events::scenario::plan::Action;
use csi_events::scenario::runner::check_target;
use csi_events::scenario::{BlackBoxTarget, Target};
use fake_binary::{CSI_EVENTS, FakeServer, require_kubectl, root, text};

/// The driver command the runner starts per scenario.
fn serve_command() -> String {
    format!("{CSI_EVENTS} serve --csi-endpoint {{endpoint}} --kubeconfig {{kubeconfig}}")
}

/// Every library file black-box mode can play that has no fault, at most 35 s of `advance` and
/// no sub-second `advance`.
fn fault_free_subset() -> Vec<PathBuf> {
    let target = Target::BlackBox(BlackBoxTarget {
        launch: Launch::Command(serve_command()),
        kubeconfig: None,
        driver_name: "rds.csi.srvlab.io".to_owned(),
        keep: false,
    });
    let files = discover(&[root().join("scenarios")]).expect("list the scenarios");
    let mut chosen = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let scenario = load_text(&file.display().to_string(), &text).expect("valid scenario");
        let faults = scenario
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::Fault(_) | Action::ClearFaults));
        let advance: Duration = scenario
            .steps
            .iter()
            .map(|s| match s.action {
                Action::Advance(d) => d,
                _ => Duration::ZERO,
            })
            .sum();
        // A sub-second `advance` (`advance: 1ns` past a timeout) tests an instant that real
        // time cannot resolve within the comparison's 1 s: not conformance material.
        let boundary = scenario
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::Advance(d) if d < Duration::from_secs(1)));
        if !faults
            && !boundary
            && advance <= Duration::from_secs(35)
            && check_target(&scenario, &target).is_ok()
        {
            chosen.push(file);
        }
    }
    chosen
}

#[test]
fn the_library_subset_passes_against_a_driver_process_with_the_reviewed_snapshots() {
    let mut files = fault_free_subset();
    assert!(
        files.len() >= 5,
        "the fault-free black-box subset shrank to {files:?}"
    );
    // A 30 s timeout that fires across a restart, and an API fault set over HTTP.
    for extra in [
        "scenarios/smoke-restart-mid-migration.yaml",
        "scenarios/fault-500-on-create-retried-mid-advance.yaml",
    ] {
        files.push(root().join(extra));
    }
    let started = Instant::now();
    let run = Command::new(CSI_EVENTS)
        .args(["run", "--jobs", "4", "--driver-cmd", &serve_command()])
        .args(&files)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run csi-events");
    let stdout = text(&run.stdout);
    eprintln!(
        "black-box subset: {} files in {:.1} s of wall time",
        files.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&run.stderr)
    );
    let summary = format!("{n} scenarios: {n} passed, 0 failed", n = files.len());
    assert!(stdout.contains(&summary), "{stdout}");
}

#[test]
fn steps_a_separate_process_cannot_play_are_refused_up_front() {
    let run = Command::new(CSI_EVENTS)
        .args(["run", "--driver-cmd", &serve_command()])
        .arg("scenarios/node-deleted-unobserved.yaml")
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run csi-events");
    assert_eq!(run.status.code(), Some(2));
    let stderr = text(&run.stderr);
    assert!(stderr.contains("cannot run in black-box mode"), "{stderr}");
    assert!(stderr.contains("observed: false"), "{stderr}");
    assert!(stderr.contains("nothing was run"), "{stderr}");
}

#[test]
fn a_running_driver_is_driven_over_its_socket_and_kubectl_shows_the_events() {
    require_kubectl();
    let server = FakeServer::start("blackbox");
    let socket = server.dir.join("csi.sock");
    let endpoint = format!("unix://{}", socket.display());
    let mut driver = Command::new(CSI_EVENTS)
        .args(["serve", "--csi-endpoint", &endpoint, "--kubeconfig"])
        .arg(&server.kubeconfig)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start csi-events serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the driver never opened {endpoint}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = Command::new(CSI_EVENTS)
        .args(["run", "--csi-endpoint", &endpoint, "--keep", "--kubeconfig"])
        .arg(&server.kubeconfig)
        .arg("scenarios/publish-unknown-node-not-found.yaml")
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run csi-events");
    assert_eq!(
        run.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    let describe = server.kubectl(&["describe", "pvc", "disk-0", "-n", "vms"]);
    assert!(describe.status.success(), "{}", text(&describe.stderr));
    let out = text(&describe.stdout);
    assert!(
        out.lines().any(|l| l.contains("VolumeAttached")
            && l.contains("[pvc-6f1c]: Attached to node node-c (duration: ")),
        "no VolumeAttached row in:\n{out}"
    );
    // A driver reached by its socket cannot be restarted by the runner: refused up front.
    let refused = Command::new(CSI_EVENTS)
        .args(["run", "--csi-endpoint", &endpoint, "--kubeconfig"])
        .arg(&server.kubeconfig)
        .arg("scenarios/restart-repeated-event-not-lost.yaml")
        .current_dir(root())
        .output()
        .expect("run csi-events");
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("use --driver-cmd"));

    // SIGTERM: the driver flushes, removes its socket and exits 0.
    let killed = Command::new("kill")
        .args(["-TERM", &driver.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = driver.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the driver did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    assert!(!socket.exists(), "the socket file was not removed");
}

#[test]
fn the_report_is_written_in_black_box_mode_and_holds_the_json_output() {
    let report = std::env::temp_dir().join(format!(
        "csi-events-blackbox-report-{}.html",
        std::process::id()
    ));
    // A migration that starts (the library's file, without the metric black-box mode cannot read).
    let scenario = std::env::temp_dir().join(format!(
        "csi-events-blackbox-report-{}.yaml",
        std::process::id()
    ));
    std::fs::write(
        &scenario,
        "name: blackbox-report\ncluster:\n  nodes: [node-a, node-b]\n  claims: [vms/disk-0]\n  volumes:\n    - {id: pvc-6f1c, claim: vms/disk-0, accessMode: RWX}\nsteps:\n  - attach: {volume: pvc-6f1c, node: node-a}\n  - attach: {volume: pvc-6f1c, node: node-b}\n  - expectEvents:\n      - {reason: VolumeAttached}\n      - {reason: MigrationStarted}\n",
    )
    .unwrap();
    let snapshots = std::env::temp_dir().join(format!(
        "csi-events-blackbox-report-snapshots-{}",
        std::process::id()
    ));
    // Black-box mode holds a driver to reviewed snapshots: the embedded run's, accepted.
    let accept = Command::new(CSI_EVENTS)
        .args(["run", "--accept", "--snapshots"])
        .arg(&snapshots)
        .arg(&scenario)
        .current_dir(root())
        .output()
        .expect("run csi-events");
    assert_eq!(accept.status.code(), Some(0), "{}", text(&accept.stdout));
    let run = Command::new(CSI_EVENTS)
        .args(["run", "--driver-cmd", &serve_command(), "--format", "json"])
        .arg("--report")
        .arg(&report)
        .arg("--snapshots")
        .arg(&snapshots)
        .arg(&scenario)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run csi-events");
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    let page = std::fs::read_to_string(&report).expect("the report");
    let _ = std::fs::remove_file(&report);
    let _ = std::fs::remove_file(&scenario);
    let _ = std::fs::remove_dir_all(&snapshots);
    let data: serde_json::Value = serde_json::from_str(embedded(&page)).unwrap();
    let printed: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(data, printed);
    let timeline = &printed["scenarios"][0]["timeline"];
    // Both attachments, kept as VolumeAttachments the driver process acknowledged.
    assert_eq!(
        timeline["attachments"].as_array().unwrap().len(),
        2,
        "{timeline}"
    );
    let migration = &timeline["migrations"][0];
    assert_eq!(
        (
            &migration["source"],
            &migration["target"],
            &migration["ended"]
        ),
        (&"node-a".into(), &"node-b".into(), &"running".into())
    );
}
