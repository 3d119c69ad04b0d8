//! A failing (shrunk) step sequence written as a scenario file (`docs/scenarios.md` §1), so a property
//! failure becomes a QA regression in one move: `mv` it into `scenarios/` and `cargo run -- run`.
//!
//! The file carries the cluster of the case, every step, the results the reference model
//! expects (`expectError`) and the events it expects (`expectEvents`, as long as no fault rule
//! has been set: after one, which write lands in which step depends on retry timing, and the
//! snapshot records it instead).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use csi_events::duration::GoDuration;
use csi_events::model::AccessMode;
use proptest_state_machine::ReferenceStateMachine;

use super::reference::{Delivery, HEAL_TIME, Lifecycle, NODES, Step, World};

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// Go duration text (`5m0s`, `153ms`, `5m0.000000001s`), which `advance:` and `took:` take.
fn go(d: Duration) -> String {
    GoDuration::from_std(d).to_string()
}

/// A short stable hash (FNV-1a) naming the scenario after its content.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The scenario name of a sequence: `shrunk-<hash>` (DNS-1123, unique per sequence).
pub fn scenario_name(initial: &World, steps: &[Step]) -> String {
    let hash = fnv(&format!("{:?}{:?}", initial.spec, steps));
    format!("shrunk-{:08x}", hash as u32)
}

/// The scenario text of `steps` played from `initial`; `failure` (one line) goes into the
/// description; `seed` seeds the runner (the poster's retry jitter).
pub fn scenario_yaml(
    name: &str,
    seed: u64,
    initial: &World,
    steps: &[Step],
    failure: &str,
) -> String {
    let mut out = String::new();
    let failure = failure.lines().next().unwrap_or("").trim();
    let description = format!(
        "Shrunk proptest failure of the model state-machine test (tests/model_state_machine.rs), \
         {} steps. Expectations are the reference model's. Failure: {failure}",
        steps.len()
    );
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# yaml-language-server: $schema=scenario.schema.json");
    let _ = writeln!(out, "name: {name}");
    let _ = writeln!(out, "description: {}", quoted(&description));
    let _ = writeln!(out, "seed: {seed}");
    let _ = writeln!(out, "cluster:");
    let _ = writeln!(out, "  nodes: [{}]", NODES.join(", "));
    // Only the volumes the steps use (and their claims): a shrunk file reads short.
    let used: Vec<_> = initial
        .spec
        .volumes
        .iter()
        .filter(|v| {
            steps.iter().any(|step| match step {
                Step::Publish { volume, .. } | Step::Unpublish { volume, .. } => *volume == v.id,
                _ => false,
            })
        })
        .collect();
    let claims: Vec<&str> = initial
        .spec
        .claims
        .iter()
        .filter(|c| {
            used.iter().any(|v| v.claim == **c)
                || steps.iter().any(
                    |step| matches!(step, Step::DeleteClaim(x) | Step::CreateClaim(x) if x == *c),
                )
        })
        .map(String::as_str)
        .collect();
    let _ = writeln!(out, "  claims: [{}]", claims.join(", "));
    if used.is_empty() {
        let _ = writeln!(out, "  volumes: []");
    } else {
        let _ = writeln!(out, "  volumes:");
    }
    for volume in used {
        let _ = writeln!(out, "    - id: {}", volume.id);
        if volume.claim_ref {
            let _ = writeln!(out, "      claim: {}", volume.claim);
        }
        let mode = match volume.mode {
            AccessMode::Rwo => "RWO",
            AccessMode::Rwx => "RWX",
        };
        let _ = writeln!(out, "      accessMode: {mode}");
        if let Some(text) = &volume.timeout_text {
            let _ = writeln!(out, "      migrationTimeoutSeconds: {}", quoted(text));
        }
        let _ = writeln!(out, "      claimInContext: {}", volume.claim_in_context);
    }
    if steps.is_empty() {
        let _ = writeln!(out, "steps: []");
    } else {
        let _ = writeln!(out, "steps:");
    }
    let mut world = initial.clone();
    let mut unchecked = Vec::new();
    let mut faulted = false;
    for step in steps {
        let before = world.posted.len();
        world = Lifecycle::apply(world, step);
        let expect_error = match &world.last {
            Some(Err((code, _))) => format!(", expectError: {}", code.as_str()),
            _ => String::new(),
        };
        match step {
            Step::Publish { volume, node, took } => {
                let took = if took.is_zero() {
                    String::new()
                } else {
                    format!(", took: {}", go(*took))
                };
                let _ = writeln!(
                    out,
                    "  - attach: {{volume: {volume}, node: {node}{took}{expect_error}}}"
                );
            }
            Step::Unpublish { volume, node } => {
                let _ = writeln!(
                    out,
                    "  - detach: {{volume: {volume}, node: {node}{expect_error}}}"
                );
            }
            Step::Advance(by) => {
                let _ = writeln!(out, "  - advance: {}", go(*by));
            }
            Step::AddNode(node) => {
                let _ = writeln!(out, "  - addNode: {node}");
            }
            Step::DeleteNode { node, observed } => {
                if *observed {
                    let _ = writeln!(out, "  - deleteNode: {node}");
                } else {
                    let _ = writeln!(out, "  - deleteNode: {{name: {node}, observed: false}}");
                }
            }
            Step::DeleteClaim(claim) => {
                let _ = writeln!(out, "  - deleteClaim: {claim}");
            }
            Step::CreateClaim(claim) => {
                let _ = writeln!(out, "  - createClaim: {claim}");
            }
            Step::Restart => {
                let _ = writeln!(out, "  - restartController: {{}}");
            }
            Step::Fault(fault) => {
                faulted = true;
                let retry_after = fault
                    .retry_after
                    .map(|s| format!(", retryAfter: {s}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  - fault: {{verb: {}, resource: {}, status: {}{retry_after}, times: {}}}",
                    fault.verb, fault.resource, fault.status, fault.times
                );
            }
            Step::Heal => {
                let _ = writeln!(out, "  - clearFaults: {{}}");
                let _ = writeln!(out, "  - advance: {}", go(HEAL_TIME));
            }
        }
        if faulted {
            continue;
        }
        unchecked.extend(
            world.posted[before..]
                .iter()
                .filter_map(|e| match &e.delivery {
                    Delivery::Written { claim, .. } => Some((e.event.clone(), claim.clone())),
                    Delivery::Skipped(_) => None,
                }),
        );
        if !unchecked.is_empty() {
            let _ = writeln!(out, "  - expectEvents:");
            for (event, claim) in unchecked.drain(..) {
                let reason = event.reason();
                let event_type = reason.event_type().map(|t| t.as_str()).unwrap_or("Normal");
                let _ = writeln!(
                    out,
                    "      - {{type: {event_type}, reason: {}, message: {}, claim: {claim}}}",
                    reason.as_str(),
                    quoted(&event.message())
                );
            }
        }
    }
    out
}

/// Writes the scenario of a failing sequence into `dir` (`target/shrunk-scenarios/` in the
/// test), prints its path and the hint, and returns the path.
pub fn write_shrunk(
    dir: &Path,
    seed: u64,
    initial: &World,
    steps: &[Step],
    failure: &str,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = scenario_name(initial, steps);
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, scenario_yaml(&name, seed, initial, steps, failure))?;
    eprintln!(
        "shrunk failing sequence written as a scenario: {}",
        path.display()
    );
    eprintln!(
        "hint: `mv {} scenarios/` and run `cargo run -- run` to make it a regression",
        path.display()
    );
    Ok(path)
}
