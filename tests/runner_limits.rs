//! The runner at any virtual time and size (scenarios.md §4): no panic, no lost or repeated
//! event when the event watch ends or falls behind, and each event stamped with the virtual
//! time its write landed at (§3).

use csi_events::scenario::load::load_text;
use csi_events::scenario::runner::{Target, run};
use csi_events::scenario::transcript::WrittenEvent;

fn play(text: &str) -> Vec<(String, WrittenEvent)> {
    let scenario = load_text("generated.yaml", text).expect("the generated scenario loads");
    let result = run(&scenario, &Target::Embedded).expect("the scenario runs");
    assert!(result.failures.is_empty(), "{:#?}", result.failures);
    result
        .transcript
        .steps
        .into_iter()
        .flat_map(|s| {
            let step = s.step.clone();
            s.events.into_iter().map(move |e| (step.clone(), e))
        })
        .collect()
}

/// 100 years in steps of a day (the event watch asks for a year at most, so it ends and is
/// resumed a hundred times): a migration every ten years, each event seen once, at its time.
#[test]
fn a_hundred_years_in_steps_of_a_day_loses_and_repeats_no_event() {
    let mut steps = String::new();
    let mut expected = Vec::new();
    for day in 0..36_500u32 {
        if day % 3650 == 0 {
            let (from, to) = if (day / 3650) % 2 == 0 {
                ("node-a", "node-b")
            } else {
                ("node-b", "node-a")
            };
            if day == 0 {
                steps.push_str("  - attach: {volume: pvc-1, node: node-a}\n");
                expected.push("VolumeAttached");
            }
            steps.push_str(&format!("  - attach: {{volume: pvc-1, node: {to}}}\n"));
            steps.push_str(&format!("  - detach: {{volume: pvc-1, node: {from}}}\n"));
            expected.push("MigrationStarted");
            expected.push("MigrationCompleted");
        }
        steps.push_str("  - advance: 24h\n");
    }
    let text = format!(
        "name: hundred-years\ncluster:\n  nodes: [node-a, node-b]\n  claims: [vms/d]\n  volumes: [{{id: pvc-1, claim: vms/d, accessMode: RWX}}]\nsteps:\n{steps}"
    );
    let events = play(&text);
    let reasons: Vec<&str> = events.iter().map(|(_, e)| e.reason.as_str()).collect();
    assert_eq!(reasons, expected);
    // The last migration started 90 years in (day 32850).
    let (_, last) = events.last().unwrap();
    assert_eq!(last.at, "788400h0m0s");
}

/// A request delayed 1000 h: the poster gives up waiting and retries; the run goes on past
/// the delayed answer and the event is written once.
#[test]
fn a_fault_with_1000_hours_latency_lands_when_the_clock_passes_it() {
    let text = "name: slow\ncluster:\n  nodes: [node-a]\n  claims: [vms/d]\n  volumes: [{id: pvc-1, claim: vms/d}]\nsteps:\n  - fault: {verb: get, resource: persistentvolumes, latency: 1000h, times: 1}\n  - attach: {volume: pvc-1, node: node-a}\n  - advance: 999h\n  - advance: 2h\n  - expectEvents: [{reason: VolumeAttached}]\n";
    let events = play(text);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "advance 999h0m0s");
}

/// 50 000 nodes: more changes than the server's watch history holds go by before the first
/// event; the feed re-lists or resumes and every event is there once.
#[test]
fn a_cluster_of_50_000_nodes_runs() {
    let nodes: Vec<String> = (0..50_000).map(|i| format!("n{i}")).collect();
    let text = format!(
        "name: big\ncluster:\n  nodes: [{}]\n  claims: [vms/d]\n  volumes: [{{id: pvc-1, claim: vms/d, accessMode: RWX}}]\nsteps:\n  - attach: {{volume: pvc-1, node: n0}}\n  - attach: {{volume: pvc-1, node: n49999}}\n  - advance: 6m\n  - expectEvents: [{{reason: VolumeAttached}}, {{reason: MigrationStarted}}, {{reason: MigrationFailed}}]\n",
        nodes.join(", ")
    );
    let events = play(&text);
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].1.at, "5m0.000000001s");
}

/// The time a write landed, not the time its step began.
#[test]
fn a_timeout_during_an_advance_is_stamped_when_it_fired() {
    let text = "name: at\ncluster:\n  nodes: [node-a, node-b]\n  claims: [vms/d]\n  volumes: [{id: pvc-1, claim: vms/d, accessMode: RWX, migrationTimeoutSeconds: \"120\"}]\nsteps:\n  - attach: {volume: pvc-1, node: node-a}\n  - attach: {volume: pvc-1, node: node-b}\n  - advance: 3m\n  - expectEvents: [{reason: VolumeAttached}, {reason: MigrationStarted}, {reason: MigrationFailed}]\n";
    let events = play(text);
    assert_eq!(events[2].0, "advance 3m0s");
    assert_eq!(events[2].1.at, "2m0.000000001s");
}
