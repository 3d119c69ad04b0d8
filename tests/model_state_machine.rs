//! The model against a reference model of lifecycle.md, over random step sequences
//! (proptest-state-machine): publish and unpublish (RWO/RWX, claim in the context or not,
//! timeouts with their clamps), clock advances (also exactly at a timeout and one nanosecond
//! past it), node deletion (observed by the watcher or not; an RWO holder deleted unobserved is
//! read from the API server and cleared), claims deleted and re-created, controller restarts
//! (also after a reported timeout, and between two attachments stamped in the same second:
//! the migration records keep every restart exact) and API faults. After every step the five invariants of lifecycle.md
//! hold and the results, metrics and events (read back from the fake API server) equal the
//! reference's.
//!
//! A failure shrinks to a few steps and is written as a scenario file
//! (`target/shrunk-scenarios/<name>.yaml`) that `mv` into `scenarios/` turns into a regression.
//!
//! `PROPTEST_CASES=N` changes the number of cases (default [`CASES`]).

#[path = "model_state_machine/reference.rs"]
mod reference;
#[path = "model_state_machine/scenario.rs"]
mod scenario;
#[path = "model_state_machine/system.rs"]
mod system;

use std::path::PathBuf;
use std::time::Duration;

use proptest::test_runner::{Config, FileFailurePersistence, TestError, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

use reference::{FaultSpec, Lifecycle, Step};
use system::{LifecycleTest, SEED};

/// Cases per `cargo test` run (the CI budget: see the README of the test in the report).
const CASES: u32 = 2000;
/// Steps per case: `1..MAX_STEPS`.
const MAX_STEPS: usize = 30;

/// Where shrunk failures are written.
fn shrunk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("shrunk-scenarios"))
        .unwrap_or_else(|| PathBuf::from("target/shrunk-scenarios"))
}

#[test]
fn lifecycle_invariants_hold_over_random_sequences() {
    let defaults = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        defaults.cases
    } else {
        CASES
    };
    let config = Config {
        cases,
        max_shrink_iters: 2048,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        source_file: Some(file!()),
        ..defaults
    };
    let mut runner = TestRunner::new(config.clone());
    let strategy = Lifecycle::sequential_strategy(1..MAX_STEPS);
    let result = runner.run(&strategy, |(initial, steps, seen)| {
        LifecycleTest::test_sequential(config.clone(), initial, steps, seen);
        Ok(())
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, (initial, steps, _))) => {
            let written =
                scenario::write_shrunk(&shrunk_dir(), SEED, &initial, &steps, reason.message());
            let at = match written {
                Ok(path) => path.display().to_string(),
                Err(error) => format!("(could not write the scenario: {error})"),
            };
            panic!(
                "the model broke the reference after {} steps: {}\nsteps: {steps:#?}\ninitial: {:#?}\nscenario: {at}",
                steps.len(),
                reason.message(),
                initial.spec
            );
        }
        Err(TestError::Abort(reason)) => panic!("proptest aborted: {reason}"),
    }
}

/// A known sequence through the writer: the file is a scenario of scenarios.md §1 (parsed back
/// as YAML), with the reference's results and events as expectations.
#[test]
fn shrunk_sequence_is_written_as_a_scenario() {
    use csi_events::model::AccessMode;
    use reference::{ClusterSpec, VolumeSpec};

    let spec = ClusterSpec {
        volumes: vec![
            VolumeSpec {
                id: "pvc-0".into(),
                mode: AccessMode::Rwx,
                claim: "vms/disk-0".into(),
                claim_ref: true,
                claim_in_context: true,
                timeout_text: Some("10".into()),
            },
            VolumeSpec {
                id: "pvc-1".into(),
                mode: AccessMode::Rwo,
                claim: "vms/disk-1".into(),
                claim_ref: false,
                claim_in_context: false,
                timeout_text: None,
            },
        ],
        claims: ["vms/disk-0".to_string()].into(),
    };
    let initial = reference::World::for_spec(spec);
    let steps = vec![
        Step::Publish {
            volume: "pvc-0".into(),
            node: "node-a".into(),
            took: Duration::from_millis(153),
        },
        Step::Publish {
            volume: "pvc-0".into(),
            node: "node-b".into(),
            took: Duration::ZERO,
        },
        Step::Advance(Duration::from_secs(30)),
        Step::Advance(Duration::from_nanos(1)),
        Step::Publish {
            volume: "pvc-1".into(),
            node: "node-a".into(),
            took: Duration::ZERO,
        },
        Step::Publish {
            volume: "pvc-1".into(),
            node: "node-b".into(),
            took: Duration::ZERO,
        },
        Step::DeleteNode {
            node: "node-c".into(),
            observed: false,
        },
        Step::Restart,
        Step::Fault(FaultSpec {
            verb: "create",
            resource: "events",
            status: 429,
            retry_after: Some(2),
            times: 1,
        }),
        Step::Unpublish {
            volume: "pvc-0".into(),
            node: "node-a".into(),
        },
        Step::Heal,
    ];
    let dir = tempdir();
    let path = scenario::write_shrunk(&dir, SEED, &initial, &steps, "volumes differ\nsecond line")
        .expect("written");
    let name = path.file_stem().and_then(|s| s.to_str()).expect("a name");
    assert!(name.starts_with("shrunk-"), "{name}");
    let text = std::fs::read_to_string(&path).expect("read back");
    assert!(
        text.starts_with("# yaml-language-server: $schema=scenario.schema.json\n"),
        "{text}"
    );
    let expected = format!(
        r#"name: {name}
description: "Shrunk proptest failure of the model state-machine test (tests/model_state_machine.rs), 11 steps. Expectations are the reference model's. Failure: volumes differ"
seed: 7
cluster:
  nodes: [node-a, node-b, node-c]
  claims: [vms/disk-0]
  volumes:
    - id: pvc-0
      claim: vms/disk-0
      accessMode: RWX
      migrationTimeoutSeconds: "10"
      claimInContext: true
    - id: pvc-1
      accessMode: RWO
      claimInContext: false
steps:
  - attach: {{volume: pvc-0, node: node-a, took: 153ms}}
  - expectEvents:
      - {{type: Normal, reason: VolumeAttached, message: "[pvc-0]: Attached to node node-a (duration: 153ms)", claim: vms/disk-0}}
  - attach: {{volume: pvc-0, node: node-b}}
  - expectEvents:
      - {{type: Normal, reason: MigrationStarted, message: "[pvc-0]: KubeVirt live migration started - source: node-a, target: node-b, timeout: 30s", claim: vms/disk-0}}
  - advance: 30s
  - advance: 1ns
  - expectEvents:
      - {{type: Warning, reason: MigrationFailed, message: "[pvc-0]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: timeout, elapsed: 30s", claim: vms/disk-0}}
  - attach: {{volume: pvc-1, node: node-a}}
  - attach: {{volume: pvc-1, node: node-b, expectError: FailedPrecondition}}
  - deleteNode: {{name: node-c, observed: false}}
  - restartController: {{}}
  - fault: {{verb: create, resource: events, status: 429, retryAfter: 2, times: 1}}
  - detach: {{volume: pvc-0, node: node-a}}
  - clearFaults: {{}}
  - advance: 1m0s
"#
    );
    assert_eq!(
        text.trim_start_matches("# yaml-language-server: $schema=scenario.schema.json\n"),
        expected
    );

    // Valid YAML with the shape of scenarios.md §1.
    // The restart posts nothing: the timeout was reported before it (invariant 2 across
    // restarts, from the migration record).
    let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
    assert_eq!(doc["name"], name);
    assert_eq!(doc["seed"], 7);
    assert_eq!(
        doc["cluster"]["volumes"][0]["migrationTimeoutSeconds"],
        "10"
    );
    assert_eq!(doc["cluster"]["volumes"][1]["accessMode"], "RWO");
    assert!(doc["cluster"]["volumes"][1].get("claim").is_none());
    let steps = doc["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 15);
    for step in steps {
        let keys: Vec<_> = step.as_object().expect("a map").keys().collect();
        assert_eq!(keys.len(), 1, "one key per step: {step}");
        assert!(
            csi_events::scenario::format::STEP_NAMES.contains(&keys[0].as_str()),
            "unknown step {step}"
        );
    }
    assert_eq!(steps[0]["attach"]["took"], "153ms");
    assert_eq!(steps[8]["attach"]["expectError"], "FailedPrecondition");
    assert_eq!(steps[9]["deleteNode"]["observed"], false);
    assert_eq!(steps[11]["fault"]["retryAfter"], 2);
    // The event with µs-free, exact durations (invariant 5 in the file too).
    assert_eq!(
        steps[6]["expectEvents"][0]["message"],
        "[pvc-0]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: timeout, elapsed: 30s"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh directory under the target's tmp dir.
fn tempdir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("shrunk-writer-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The transitions the strategy generates are all accepted by the preconditions, and a case
/// covers every kind of step in a few hundred draws (the generator is not lopsided).
#[test]
fn generator_covers_every_step() {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    let mut nanosecond_advances = 0;
    let (mut restarts_after_timeouts, mut restarts_in_the_same_second) = (0, 0);
    let mut holders_gone_unobserved = 0;
    for _ in 0..200 {
        let tree = Lifecycle::sequential_strategy(20..21)
            .new_tree(&mut runner)
            .expect("a case");
        let (initial, steps, _) = tree.current();
        let mut world = initial;
        for step in &steps {
            assert!(Lifecycle::preconditions(&world, step), "{step:?}");
            seen.insert(
                format!("{step:?}")
                    .split([' ', '('])
                    .next()
                    .map(str::to_owned),
            );
            if let Step::Advance(by) = step
                && by.subsec_nanos() % 1_000_000 != 0
            {
                nanosecond_advances += 1;
            }
            if *step == Step::Restart {
                restarts_after_timeouts += usize::from(world.has_failed_migration());
                restarts_in_the_same_second += usize::from(world.ambiguous_attachment_order());
            }
            if let Step::Publish { volume, node, .. } = step
                && let Some(v) = world.volumes.get(volume)
                && v.mode == csi_events::model::AccessMode::Rwo
                && !v.has(node)
                && world.known_nodes.contains(&v.nodes[0].node)
                && !world.api_nodes.contains(&v.nodes[0].node)
            {
                holders_gone_unobserved += 1;
            }
            world = Lifecycle::apply(world, step);
        }
    }
    assert_eq!(seen.len(), 10, "every kind of step is generated: {seen:?}");
    assert!(
        nanosecond_advances > 0,
        "advances to exactly a timeout and one nanosecond past it are generated"
    );
    assert!(
        restarts_after_timeouts > 0,
        "restarts after a reported timeout are generated"
    );
    assert!(
        restarts_in_the_same_second > 0,
        "restarts between two attachments stamped in the same second are generated"
    );
    assert!(
        holders_gone_unobserved > 0,
        "RWO publishes against a holder deleted unobserved are generated"
    );
}
