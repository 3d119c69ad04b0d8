//! The `csi-events` command as QA and CI use it (`docs/scenarios.md` §5): exit codes, diagnostics
//! before anything runs, the JSON and JUnit contracts (a testcase per scenario or per step),
//! the visual report (`--report`: the JSON embedded, deterministic, the library's under 2 MiB),
//! snapshots (pending `.snap.new`, `--accept`), `--filter`, colour rules, and byte-identical
//! output whatever `--jobs`.

#[path = "support/report_page.rs"]
mod report_page;
use report_page::embedded;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_csi-events");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch folder removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("csi-events-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn csi_events(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .env_remove("CI")
        .output()
        .expect("run csi-events")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_invalid_file_gets_diagnostics_at_its_lines_and_nothing_runs() {
    let snapshots = Scratch::new("invalid");
    let out = csi_events(&[
        "run",
        "tests/fixtures/invalid",
        "--snapshots",
        snapshots.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "nothing runs: {}", text(&out.stdout));
    assert_eq!(
        std::fs::read_dir(snapshots.path()).unwrap().count(),
        0,
        "not even the valid file ran"
    );
    let stderr = text(&out.stderr);
    // Every problem of every file, at file:line:column, with the line and a hint.
    for expected in [
        "tests/fixtures/invalid/unknown-step.yaml:7:5: error: unknown step `atach`",
        "  - atach: {volume: pvc-1, node: node-a}",
        "did you mean `attach`?",
        "the steps are: attach, detach, advance, addNode, deleteNode, createClaim, deleteClaim, restartController, fault, clearFaults, expectEvents, expectMetric",
        "tests/fixtures/invalid/bad-references.yaml:4:19: error: bad node name `Node_B`",
        "tests/fixtures/invalid/bad-references.yaml:8:35: error: unknown node `node-x`",
        "tests/fixtures/invalid/bad-references.yaml:9:14: error: bad duration",
        "tests/fixtures/invalid/bad-references.yaml:10:22: error: unknown volume `pvc-2`",
        "did you mean `pvc-1`?",
        "unknown gRPC code `Notfound`",
        "did you mean `NotFound`?",
        "nothing was run",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(!stderr.contains('\u{1b}'), "no colour off a terminal");
}

#[test]
fn check_validates_only() {
    let good = csi_events(&["check"]);
    assert_eq!(good.status.code(), Some(0), "{}", text(&good.stderr));
    assert!(text(&good.stdout).contains("scenario files are valid"));
    let bad = csi_events(&["check", "tests/fixtures/invalid/unknown-step.yaml"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("unknown step `atach`"));
    let missing = csi_events(&["check", "no/such/dir"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no/such/dir: no such file or directory"));
}

#[test]
fn schema_prints_the_committed_schema() {
    let out = csi_events(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read_to_string(root().join("scenarios/scenario.schema.json")).unwrap();
    assert_eq!(text(&out.stdout), committed);
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
}

#[test]
fn json_output_is_the_section_5_contract() {
    let snapshots = Scratch::new("json");
    let out = csi_events(&[
        "run",
        "scenarios/smoke-rwx-migration-completes.yaml",
        "tests/fixtures/failing",
        "--format",
        "json",
        "--snapshots",
        snapshots.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&report), ["failed", "passed", "scenarios"]);
    assert_eq!(report["passed"], 1);
    assert_eq!(report["failed"], 1);
    let good = &report["scenarios"][0];
    // `timeline` is additive (the visual report's data, docs/scenarios.md §5).
    assert_eq!(
        keys(good),
        ["failures", "file", "name", "passed", "steps", "timeline"]
    );
    assert_eq!(good["name"], "smoke-rwx-migration-completes");
    assert_eq!(good["file"], "scenarios/smoke-rwx-migration-completes.yaml");
    assert_eq!(good["passed"], true);
    assert_eq!(good["failures"], Value::Array(vec![]));
    let detach = &good["steps"][3];
    assert_eq!(detach["at"], "2m15s");
    assert_eq!(detach["step"], "detach pvc-6f1c from node-a");
    assert_eq!(detach["outcome"], "ok");
    assert_eq!(
        detach["events"][0],
        serde_json::json!({"at": "2m15s", "type": "Normal", "reason": "MigrationCompleted", "namespace": "vms", "name": "disk-0",
            "message": "[pvc-6f1c]: KubeVirt live migration completed - source: node-a -> target: node-b (duration: 2m15s)", "count": 1})
    );
    let bad = &report["scenarios"][1];
    assert_eq!(bad["passed"], false);
    assert_eq!(bad["file"], "tests/fixtures/failing/wrong-expectation.yaml");
    let failure = bad["failures"][0].as_str().unwrap();
    assert!(failure.starts_with("line 10: expectEvents:"), "{failure}");
}

#[test]
fn an_error_outcome_is_code_and_message_in_json() {
    let snapshots = Scratch::new("outcome");
    let out = csi_events(&[
        "run",
        "scenarios/smoke-nodes-and-claims.yaml",
        "--format",
        "json",
        "--snapshots",
        snapshots.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["scenarios"][0]["steps"][1]["outcome"],
        serde_json::json!({"code": "FailedPrecondition", "message": "Volume pvc-2b7c already attached to node node-a. For multi-node access, use RWX with block volumes."})
    );
    assert_eq!(
        report["scenarios"][0]["steps"][7]["skipped"],
        serde_json::json!([{"reason": "VolumeAttached", "cause": "pvc_uid_mismatch"}])
    );
}

#[test]
fn junit_has_one_testcase_per_scenario_named_by_file() {
    let snapshots = Scratch::new("junit");
    let out = csi_events(&[
        "run",
        "scenarios/smoke-pvc-missing.yaml",
        "tests/fixtures/failing",
        "--format",
        "junit",
        "--snapshots",
        snapshots.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let xml = text(&out.stdout);
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    assert!(
        xml.contains("<testcase name=\"scenarios/smoke-pvc-missing.yaml\" classname=\"scenarios\"")
    );
    assert!(xml.contains("<testcase name=\"tests/fixtures/failing/wrong-expectation.yaml\""));
    assert_eq!(xml.matches("<failure ").count(), 1);
    assert!(xml.contains("tests=\"2\" failures=\"1\""));
}

#[test]
fn a_failing_scenario_shows_its_timeline_and_a_changed_transcript_its_diff() {
    let work = Scratch::new("diff");
    let snapshots = work.path().join("snapshots");
    let snapshots = snapshots.to_str().unwrap();
    let file = "scenarios/smoke-rwx-migration-completes.yaml";
    // First run: no snapshot yet, so the scenario passes and leaves a pending one.
    let first = csi_events(&["run", file, "--snapshots", snapshots]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stdout));
    let pending = Path::new(snapshots).join("smoke-rwx-migration-completes.snap.new");
    assert!(pending.exists());
    // Accept it, then doctor the snapshot: the run now differs and says how.
    let accepted = csi_events(&["run", file, "--snapshots", snapshots, "--accept"]);
    assert_eq!(accepted.status.code(), Some(0));
    assert!(!pending.exists(), "accepting removes the pending snapshot");
    let snap = Path::new(snapshots).join("smoke-rwx-migration-completes.snap");
    let original = std::fs::read_to_string(&snap).unwrap();
    assert_eq!(
        original,
        std::fs::read_to_string(root().join("snapshots/smoke-rwx-migration-completes.snap"))
            .unwrap(),
        "the command writes the snapshot exactly as insta does"
    );
    std::fs::write(
        &snap,
        original.replace("(duration: 2m15s)", "(duration: 2m16s)"),
    )
    .unwrap();
    let differs = csi_events(&["run", file, "--snapshots", snapshots]);
    assert_eq!(differs.status.code(), Some(1));
    let out = text(&differs.stdout);
    assert!(out.contains("FAIL smoke-rwx-migration-completes"), "{out}");
    assert!(out.contains("the transcript differs from"), "{out}");
    assert!(out.contains("-    message: \"[pvc-6f1c]: KubeVirt live migration completed - source: node-a -> target: node-b (duration: 2m16s)\""), "{out}");
    assert!(out.contains("+    message: \"[pvc-6f1c]: KubeVirt live migration completed - source: node-a -> target: node-b (duration: 2m15s)\""), "{out}");
    assert!(out.contains("timeline:"), "{out}");
    assert!(
        out.contains("2m15s  detach pvc-6f1c from node-a  → ok"),
        "{out}"
    );
    assert!(!out.contains('\u{1b}'), "no colour off a terminal");
    assert!(
        pending.exists(),
        "a differing transcript waits as .snap.new"
    );
    // A failing expectation names its line and shows the timeline.
    let failing = csi_events(&["run", "tests/fixtures/failing", "--snapshots", snapshots]);
    assert_eq!(failing.status.code(), Some(1));
    let out = text(&failing.stdout);
    assert!(
        out.contains("line 10: expectEvents: event 1 (line 11) differs in reason"),
        "{out}"
    );
    assert!(
        out.contains("Normal VolumeAttached on vms/disk-0 (count 1)"),
        "{out}"
    );
}

#[test]
fn filter_picks_by_name_or_path() {
    let snapshots = Scratch::new("filter");
    let out = csi_events(&[
        "run",
        "--filter",
        "pvc-missing",
        "--snapshots",
        snapshots.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("PASS smoke-pvc-missing"), "{stdout}");
    assert!(
        stdout.contains("1 scenarios: 1 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn fault_steps_are_refused_up_front_against_a_kubeconfig() {
    let out = csi_events(&[
        "run",
        "tests/fixtures/faults.yaml",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("tests/fixtures/faults.yaml:7: `fault: create events answer 500 until cleared` needs the embedded fake API server"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was run"));
    let keep_alone = csi_events(&["run", "--keep"]);
    assert_eq!(
        keep_alone.status.code(),
        Some(2),
        "--keep needs --kubeconfig"
    );
}

/// The whole library, twice, with different parallelism: byte-identical JSON.
#[test]
fn output_is_byte_identical_whatever_the_jobs() {
    let a = Scratch::new("jobs-a");
    let b = Scratch::new("jobs-b");
    let one = csi_events(&[
        "run",
        "--format",
        "json",
        "--jobs",
        "1",
        "--snapshots",
        a.path().to_str().unwrap(),
    ]);
    let many = csi_events(&[
        "run",
        "--format",
        "json",
        "--jobs",
        "4",
        "--snapshots",
        b.path().to_str().unwrap(),
    ]);
    assert!(!one.stdout.is_empty());
    assert_eq!(text(&one.stdout), text(&many.stdout));
    // And the transcripts (the snapshot texts) too.
    let mut names: Vec<_> = std::fs::read_dir(a.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert!(!names.is_empty());
    for name in names {
        assert_eq!(
            std::fs::read(a.path().join(&name)).unwrap(),
            std::fs::read(b.path().join(&name)).unwrap(),
            "{name:?}"
        );
    }
}

#[test]
fn a_filter_matching_nothing_is_exit_2() {
    let out = csi_events(&["run", "--filter", "no-such-scenario-anywhere"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--filter `no-such-scenario-anywhere` matches no scenario"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_snapshots_path_that_is_not_a_directory_is_exit_2() {
    let out = csi_events(&[
        "run",
        "scenarios/smoke-rwx-migration-completes.yaml",
        "--snapshots",
        "README.md",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--snapshots README.md is not a directory"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_missing_snapshot_fails_under_ci() {
    let snapshots = Scratch::new("ci-missing");
    let out = Command::new(BIN)
        .args([
            "run",
            "scenarios/smoke-rwx-migration-completes.yaml",
            "--snapshots",
            snapshots.path().to_str().unwrap(),
        ])
        .current_dir(root())
        .env("CI", "true")
        .output()
        .expect("run csi-events");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("a missing snapshot fails under CI"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn junit_step_granularity_has_a_testcase_per_step_and_the_failure_at_its_step() {
    let snapshots = Scratch::new("junit-step");
    let out = csi_events(&[
        "run",
        "scenarios/smoke-pvc-missing.yaml",
        "tests/fixtures/failing",
        "--format",
        "junit",
        "--junit-granularity",
        "step",
        "--snapshots",
        snapshots.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let xml = text(&out.stdout);
    // 5 steps + 2 steps, a testsuite per scenario named by its file.
    assert_eq!(xml.matches("<testcase ").count(), 7, "{xml}");
    assert!(xml.contains("<testsuites name=\"csi-events\" tests=\"7\" failures=\"1\""));
    assert!(xml.contains(
        "<testsuite name=\"tests/fixtures/failing/wrong-expectation.yaml\" tests=\"2\" failures=\"1\""
    ));
    assert!(xml.contains(
        "<testcase name=\"step 01 (line 12) at 0s: attach pvc-gone to node-a\" classname=\"scenarios/smoke-pvc-missing.yaml\"/>"
    ));
    let failing = xml
        .find("<testcase name=\"step 02 (line 10) at 0s: expect 1 event\" classname=\"tests/fixtures/failing/wrong-expectation.yaml\">")
        .expect("the failing step's testcase");
    assert!(xml[failing..].starts_with_failure());
    assert_eq!(xml.matches("<failure ").count(), 1);
    // The default is today's: a testcase per scenario.
    let scenario = csi_events(&[
        "run",
        "scenarios/smoke-pvc-missing.yaml",
        "--format",
        "junit",
        "--junit-granularity",
        "scenario",
        "--snapshots",
        snapshots.path().to_str().unwrap(),
    ]);
    assert_eq!(text(&scenario.stdout).matches("<testcase ").count(), 1);
}

trait StartsWithFailure {
    fn starts_with_failure(&self) -> bool;
}

impl StartsWithFailure for str {
    /// The testcase at the start of `self` holds a `<failure>`.
    fn starts_with_failure(&self) -> bool {
        let end = self.find("</testcase>").unwrap_or(self.len());
        self[..end].contains("<failure message=\"line 10: expectEvents:")
    }
}

#[test]
fn junit_step_granularity_puts_a_snapshot_difference_in_a_transcript_testcase() {
    let work = Scratch::new("junit-transcript");
    let snapshots = work.path().join("snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    std::fs::write(
        snapshots.join("smoke-pvc-missing.snap"),
        "---\nsource: tests/scenarios.rs\n---\nsteps: []\n",
    )
    .unwrap();
    let out = csi_events(&[
        "run",
        "scenarios/smoke-pvc-missing.yaml",
        "--format",
        "junit",
        "--junit-granularity",
        "step",
        "--snapshots",
        snapshots.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let xml = text(&out.stdout);
    assert_eq!(xml.matches("<testcase ").count(), 6, "{xml}");
    let transcript = xml
        .find("<testcase name=\"transcript\" classname=\"scenarios/smoke-pvc-missing.yaml\">")
        .expect("a transcript testcase");
    assert!(
        xml[transcript..].contains("transcript vs snapshot:"),
        "{xml}"
    );
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
}

#[test]
fn the_report_embeds_what_format_json_prints_and_the_same_run_gives_the_same_bytes() {
    let work = Scratch::new("report");
    let snapshots = work.path().join("snapshots");
    let one = work.path().join("one.html");
    let two = work.path().join("two.html");
    let run = |report: &Path, jobs: &str| {
        csi_events(&[
            "run",
            "scenarios/smoke-rwx-migration-completes.yaml",
            "scenarios/smoke-restart-mid-migration.yaml",
            "tests/fixtures/failing",
            "--format",
            "json",
            "--jobs",
            jobs,
            "--snapshots",
            snapshots.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ])
    };
    let first = run(&one, "1");
    let second = run(&two, "3");
    assert_eq!(second.stdout, first.stdout, "--format json is the same too");
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    let page = std::fs::read_to_string(&one).expect("the report");
    assert_eq!(page.as_bytes(), std::fs::read(&two).unwrap().as_slice());
    assert_eq!(page.matches("id=\"run\"").count(), 1);
    let data: Value = serde_json::from_str(embedded(&page)).unwrap();
    let printed: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(data, printed);
    assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none';"));
    // The timeline of the migration that completes.
    let timeline = &printed["scenarios"][0]["timeline"];
    assert_eq!(
        timeline["migrations"][0],
        serde_json::json!({"volume": "pvc-6f1c", "claim": "vms/disk-0", "source": "node-a", "target": "node-b",
            "start": "0s", "timeout": "5m0s", "deadline": "5m0s", "end": "2m15s", "ended": "completed",
            "startedWritten": "0s", "endedWritten": "2m15s"})
    );
    assert_eq!(timeline["nodes"].as_array().unwrap().len(), 3);
    // The restart: down, then back.
    let restarts = &printed["scenarios"][1]["timeline"]["restarts"];
    assert_eq!(restarts.as_array().unwrap().len(), 1, "{restarts}");
}

#[test]
fn a_report_that_cannot_be_written_is_exit_2_with_where() {
    let snapshots = Scratch::new("report-bad");
    let out = csi_events(&[
        "run",
        "scenarios/smoke-pvc-missing.yaml",
        "--snapshots",
        snapshots.path().to_str().unwrap(),
        "--report",
        "/nonexistent-folder/report.html",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot write the report to /nonexistent-folder/report.html"),
        "{stderr}"
    );
}

/// The whole library's report opens offline (no request: docs/scenarios.md §5) and stays
/// under 2 MiB.
#[test]
fn the_library_report_is_under_2_mib() {
    let work = Scratch::new("report-library");
    let report = work.path().join("library.html");
    let out = csi_events(&[
        "run",
        "--snapshots",
        work.path().join("snapshots").to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let size = std::fs::metadata(&report).unwrap().len();
    eprintln!("the library's report: {size} bytes");
    assert!(size < 2 * 1024 * 1024, "{size} bytes");
    let page = std::fs::read_to_string(&report).unwrap();
    let data: Value = serde_json::from_str(embedded(&page)).unwrap();
    assert!(data["scenarios"].as_array().unwrap().len() >= 80);
}
