//! External mode end to end: the `fake-apiserver` binary over HTTP, `csi-events run
//! --kubeconfig … --keep`, then the real kubectl's `describe pvc` shows the VolumeAttached,
//! MigrationStarted and MigrationCompleted rows with their exact messages. `fault` steps are
//! refused up front against a kubeconfig, and the model's clock stays virtual (the offsets and
//! the reported durations are the scenario's, not the wall clock's).
//!
//! `--report` writes the visual report in this mode too.
//!
//! kubectl must be on the PATH and the fake-apiserver binary must be buildable: this test
//! fails loudly without them, it never skips.

#[path = "support/fake_binary.rs"]
mod fake_binary;
use fake_binary::{FakeServer, require_kubectl, text};

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

/// The text of a report's `run` element.
fn embedded(page: &str) -> &str {
    let open = "<script type=\"application/json\" id=\"run\">";
    let start = page.find(open).expect("the run element") + open.len();
    let end = start + page[start..].find("</script>").expect("its end");
    &page[start..end]
}

#[test]
fn the_report_is_written_against_a_kubeconfig_and_holds_the_json_output() {
    let server = FakeServer::start("report");
    let report = std::env::temp_dir().join(format!(
        "csi-events-external-report-{}.html",
        std::process::id()
    ));
    let run = server.csi_events(&[
        "run",
        "scenarios/smoke-rwx-migration-completes.yaml",
        "--format",
        "json",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let page = std::fs::read_to_string(&report).expect("the report");
    let _ = std::fs::remove_file(&report);
    let data: serde_json::Value = serde_json::from_str(embedded(&page)).unwrap();
    let printed: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(data, printed);
    let migration = &printed["scenarios"][0]["timeline"]["migrations"][0];
    assert_eq!(migration["ended"], "completed");
    assert_eq!(migration["end"], "2m15s");
}
