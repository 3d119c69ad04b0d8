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

#[path = "support/report_page.rs"]
mod report_page;
use report_page::embedded;

#[path = "support/fake_binary.rs"]
mod fake_binary;
use fake_binary::{FakeServer, require_kubectl, root, text};

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
    // The run's objects carry a suffix of its own (parallel runs never collide); --keep says
    // which.
    let suffix = report["scenarios"][0]["keptSuffix"]
        .as_str()
        .expect("--keep reports the kept objects' suffix")
        .to_owned();
    assert!(suffix.starts_with("-r") && suffix.len() == 8, "{suffix}");
    let namespace = format!("vms{suffix}");
    let pv_name = format!("pvc-6f1c{suffix}");
    // The clock is virtual: the detach happens 2m15s into the scenario, in milliseconds.
    let detach = &report["scenarios"][0]["steps"][3];
    assert_eq!(detach["at"], "2m15s");
    assert_eq!(detach["events"][0]["reason"], "MigrationCompleted");

    let describe = server.kubectl(&["describe", "pvc", "disk-0", "-n", &namespace]);
    assert!(describe.status.success(), "{}", text(&describe.stderr));
    let out = text(&describe.stdout);
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("Normal"))
        .collect();
    for (reason, message) in [
        (
            "VolumeAttached",
            format!("[pvc-6f1c{suffix}]: Attached to node node-a{suffix} (duration: 153ms)"),
        ),
        (
            "MigrationStarted",
            format!(
                "[pvc-6f1c{suffix}]: KubeVirt live migration started - source: node-a{suffix}, target: node-b{suffix}, timeout: 5m0s"
            ),
        ),
        (
            "MigrationCompleted",
            format!(
                "[pvc-6f1c{suffix}]: KubeVirt live migration completed - source: node-a{suffix} -> target: node-b{suffix} (duration: 2m15s)"
            ),
        ),
    ] {
        assert!(
            rows.iter()
                .any(|row| row.contains(reason) && row.trim_end().ends_with(&message)),
            "no {reason} row ending in {message:?} in:\n{out}"
        );
    }
    // --keep left the volume's objects for inspection.
    let pv = server.kubectl(&["get", "pv", &pv_name, "-o", "name"]);
    assert_eq!(
        text(&pv.stdout).trim(),
        format!("persistentvolume/{pv_name}"),
        "{}",
        text(&pv.stderr)
    );

    // Without --keep a second run (names of its own) cleans up after itself: the only PV
    // left is the first run's, kept.
    let again = server.csi_events(&["run", "scenarios/smoke-rwx-migration-completes.yaml"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
    let pvs = server.kubectl(&["get", "pv", "-o", "name"]);
    assert_eq!(
        text(&pvs.stdout).trim(),
        format!("persistentvolume/{pv_name}"),
        "{}",
        text(&pvs.stderr)
    );
}

/// Every library scenario that needs no fault injection passes against the fake-apiserver
/// over HTTP, with `--jobs` at its default, and leaves nothing behind: each run has
/// namespaces and object names of its own (so parallel scenarios never collide, and a
/// restart rebuilds from its own VolumeAttachments), and deletes what it created, its
/// namespaces included.
#[test]
fn the_fault_free_library_passes_in_parallel_and_cleans_up() {
    require_kubectl();
    let server = FakeServer::start("library");
    let mut files: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(root().join("scenarios")).expect("scenarios/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let relative = format!(
                "scenarios/{}",
                path.file_name().expect("a file name").to_string_lossy()
            );
            let text = std::fs::read_to_string(&path).expect("read");
            let scenario = csi_events::scenario::load::load_text(&relative, &text)
                .unwrap_or_else(|e| panic!("{relative}: {e:?}"));
            if scenario.needs_embedded_server().is_none() {
                files.push(relative);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 60, "only {} fault-free files", files.len());
    // The whole library, as a QA engineer runs it: what needs the embedded fake (fault
    // steps) is left out and listed, the rest runs.
    let run = server.csi_events(&["run", "--skip-unrunnable", "--format", "json"]);
    let stderr = text(&run.stderr);
    let skipped = stderr
        .lines()
        .filter(|l| l.starts_with("skipped: "))
        .count();
    assert!(
        skipped > 0,
        "the fault scenarios are listed as skipped:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("{skipped} scenario(s) skipped")),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON report ({e}):\n{}\nstderr:\n{}",
            text(&run.stdout),
            text(&run.stderr)
        )
    });
    let failed: Vec<String> = report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .filter(|s| s["passed"] != true)
        .map(|s| format!("{}: {}", s["file"], s["failures"]))
        .collect();
    assert!(
        failed.is_empty(),
        "failed against the fake over HTTP:\n{}",
        failed.join("\n")
    );
    assert_eq!(report["passed"], files.len());
    assert_eq!(
        report["scenarios"].as_array().map(Vec::len),
        Some(files.len()),
        "exactly the fault-free files ran"
    );
    assert_eq!(run.status.code(), Some(0));

    // Nothing is left: no node, PV, claim, VolumeAttachment or Event, and every namespace a
    // run created is gone or going (Terminating: the namespace controller empties and removes
    // it, as a real one does).
    for kind in ["nodes", "pv", "pvc", "volumeattachments", "events"] {
        let left = server.kubectl(&["get", kind, "-A", "-o", "name"]);
        assert!(left.status.success(), "{}", text(&left.stderr));
        assert_eq!(text(&left.stdout).trim(), "", "{kind} left behind");
    }
    let namespaces = server.kubectl(&[
        "get",
        "namespaces",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.status.phase}{\"\\n\"}{end}",
    ]);
    let builtin = ["default", "kube-system", "kube-public", "kube-node-lease"];
    for line in text(&namespaces.stdout).lines() {
        let (name, phase) = line.split_once(' ').unwrap_or((line, ""));
        assert!(
            builtin.contains(&name) || phase == "Terminating",
            "namespace {name} ({phase}) left behind"
        );
    }
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
    // In the scenario's own names, not the run's suffixed ones.
    assert_eq!(migration["source"], "node-a");
    let timeline = &printed["scenarios"][0]["timeline"];
    assert_eq!(timeline["nodes"][0]["name"], "node-a");
    assert_eq!(timeline["attachments"][0]["volume"], "pvc-6f1c");
}
