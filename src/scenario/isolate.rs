//! Against a shared API server (`--kubeconfig`), each run gets names of its own, so scenarios
//! running in parallel (and other runs against the same cluster) never touch each other's
//! objects (docs/scenarios.md §5, `--kubeconfig`).
//!
//! A run draws a random suffix (`-r` and six base-36 characters) and plays a renamed copy of
//! the scenario: every namespace, node and volume (PV) name gets the suffix; claim names stay
//! (they are already unique within their namespace). What the run records — the events read
//! back, the step outcomes, the failures — has the suffix taken out again, so the transcript
//! and the expectations read the scenario's own names. The suffix cannot occur in a name by
//! accident: no scenario name holds it, and it is random per run. The run is also a CSI
//! driver of its own name ([`Isolation::driver_name`]), so a restart rebuilds from this run's
//! VolumeAttachments only.
//!
//! ```
//! use csi_events::scenario::isolate::Isolation;
//! let isolation = Isolation::with_suffix("-rabc123");
//! assert_eq!(isolation.name("node-a"), "node-a-rabc123");
//! assert_eq!(isolation.restore("Attached to node node-a-rabc123"), "Attached to node node-a");
//! ```

use super::plan::{Action, Scenario};
use super::run_error::RunError;
use super::transcript::{Outcome, Transcript, WrittenEvent};
use crate::ids::{ClaimName, NodeName, VolumeId};

/// The longest a namespace name may be (a DNS label).
const NAMESPACE_MAX: usize = 63;

/// One run's names: the scenario's names with a suffix of the run's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    suffix: String,
}

impl Isolation {
    /// A fresh random suffix.
    pub fn random() -> Result<Self, RunError> {
        use std::io::Read;
        let mut bytes = [0u8; 6];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .map_err(|e| RunError::Setup(format!("cannot read /dev/urandom for a suffix: {e}")))?;
        const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let tail: String = bytes
            .iter()
            .map(|b| char::from(DIGITS[usize::from(*b) % DIGITS.len()]))
            .collect();
        Ok(Self::with_suffix(&format!("-r{tail}")))
    }

    /// A given suffix (tests).
    pub fn with_suffix(suffix: &str) -> Self {
        Isolation {
            suffix: suffix.to_owned(),
        }
    }

    /// The suffix, e.g. `-r4k2x9q`.
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// `name` as this run calls it.
    pub fn name(&self, name: &str) -> String {
        format!("{name}{}", self.suffix)
    }

    /// `text` with this run's names back to the scenario's.
    pub fn restore(&self, text: &str) -> String {
        text.replace(&self.suffix, "")
    }

    /// The run's own CSI driver name (`r4k2x9q.` before `driver`): a restart rebuilds from
    /// this run's VolumeAttachments only, as a driver alone in its cluster would.
    pub fn driver_name(&self, driver: &str) -> String {
        format!("{}.{driver}", self.suffix.trim_start_matches('-'))
    }

    fn node(&self, node: &NodeName) -> NodeName {
        NodeName::new(self.name(node.as_str()))
    }

    fn volume(&self, volume: &VolumeId) -> VolumeId {
        VolumeId::new(self.name(volume.as_str()))
    }

    fn claim(&self, claim: &ClaimName) -> ClaimName {
        ClaimName::new(self.name(claim.namespace()), claim.name())
    }

    /// The renamed copy of `scenario` this run plays. Expectations keep the scenario's names:
    /// they are held to what [`Isolation::restore`] gives back. A namespace that the suffix
    /// would make too long is refused, with the file and the name.
    pub fn scenario(&self, scenario: &Scenario) -> Result<Scenario, RunError> {
        if let Some(long) = scenario
            .namespaces()
            .into_iter()
            .find(|ns| ns.len() + self.suffix.len() > NAMESPACE_MAX)
        {
            return Err(RunError::Setup(format!(
                "{}: namespace `{long}` is too long to run against --kubeconfig: each run adds a {}-character suffix of its own and a namespace may have at most {NAMESPACE_MAX} characters (shorten it to {} or fewer)",
                scenario.file,
                self.suffix.len(),
                NAMESPACE_MAX - self.suffix.len()
            )));
        }
        let mut renamed = scenario.clone();
        renamed.nodes = scenario.nodes.iter().map(|n| self.node(n)).collect();
        renamed.claims = scenario.claims.iter().map(|c| self.claim(c)).collect();
        for volume in &mut renamed.volumes {
            volume.id = self.volume(&volume.id);
            volume.claim = volume.claim.as_ref().map(|c| self.claim(c));
        }
        for step in &mut renamed.steps {
            step.action = match &step.action {
                Action::Attach {
                    volume,
                    node,
                    took,
                    expect_error,
                } => Action::Attach {
                    volume: self.volume(volume),
                    node: self.node(node),
                    took: *took,
                    expect_error: expect_error.clone(),
                },
                Action::Detach {
                    volume,
                    node,
                    expect_error,
                } => Action::Detach {
                    volume: self.volume(volume),
                    node: self.node(node),
                    expect_error: expect_error.clone(),
                },
                Action::AddNode(node) => Action::AddNode(self.node(node)),
                Action::DeleteNode { node, observed } => Action::DeleteNode {
                    node: self.node(node),
                    observed: *observed,
                },
                Action::CreateClaim(claim) => Action::CreateClaim(self.claim(claim)),
                Action::DeleteClaim(claim) => Action::DeleteClaim(self.claim(claim)),
                other @ (Action::Advance(_)
                | Action::RestartController { .. }
                | Action::Fault(_)
                | Action::ClearFaults
                | Action::ExpectEvents(_)
                | Action::ExpectMetric { .. }) => other.clone(),
            };
        }
        Ok(renamed)
    }

    /// An event read back, in the scenario's names.
    pub(crate) fn restore_event(&self, event: WrittenEvent) -> WrittenEvent {
        WrittenEvent {
            namespace: self.restore(&event.namespace),
            name: self.restore(&event.name),
            message: self.restore(&event.message),
            ..event
        }
    }

    pub(crate) fn restore_transcript(&self, mut transcript: Transcript) -> Transcript {
        for step in &mut transcript.steps {
            step.outcome = match &step.outcome {
                Outcome::Error { code, message } => Outcome::Error {
                    code: code.clone(),
                    message: self.restore(message),
                },
                Outcome::Failed { failed } => Outcome::Failed {
                    failed: self.restore(failed),
                },
                ok @ Outcome::Ok(_) => ok.clone(),
            };
            step.events = step
                .events
                .drain(..)
                .map(|e| self.restore_event(e))
                .collect();
        }
        transcript
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load::load_text;

    const FILE: &str = "name: x\ncluster:\n  nodes: [node-a]\n  volumes:\n    - {id: pvc-1, claim: vms/disk-0, accessMode: RWX}\nsteps:\n  - attach: {volume: pvc-1, node: node-a}\n  - addNode: node-b\n  - attach: {volume: pvc-1, node: node-b}\n  - deleteClaim: vms/disk-0\n  - expectEvents:\n      - {reason: MigrationStarted, claim: vms/disk-0}\n";

    #[test]
    fn every_cluster_name_is_renamed_and_expectations_are_not() {
        let scenario = load_text("x.yaml", FILE).expect("valid");
        let isolation = Isolation::with_suffix("-rtest01");
        let renamed = isolation.scenario(&scenario).expect("renamed");
        assert_eq!(renamed.nodes, vec![NodeName::new("node-a-rtest01")]);
        assert_eq!(renamed.volumes[0].id, VolumeId::new("pvc-1-rtest01"));
        assert_eq!(renamed.namespaces(), vec!["vms-rtest01".to_owned()]);
        assert!(matches!(
            &renamed.steps[2].action,
            Action::Attach { volume, node, .. }
                if volume.as_str() == "pvc-1-rtest01" && node.as_str() == "node-b-rtest01"
        ));
        assert!(matches!(
            &renamed.steps[3].action,
            Action::DeleteClaim(claim) if claim.namespace() == "vms-rtest01" && claim.name() == "disk-0"
        ));
        // The step texts and the expectations keep the scenario's names.
        assert_eq!(renamed.steps[2].text, scenario.steps[2].text);
        assert!(matches!(
            &renamed.steps[4].action,
            Action::ExpectEvents(e) if e[0].claim.as_deref() == Some("vms/disk-0")
        ));
    }

    #[test]
    fn random_suffixes_differ_and_restore_takes_them_out() {
        let a = Isolation::random().expect("urandom");
        let b = Isolation::random().expect("urandom");
        assert_ne!(a, b);
        assert_eq!(a.suffix().len(), 8);
        let event = WrittenEvent {
            at: "0s".into(),
            event_type: "Normal".into(),
            reason: "VolumeAttached".into(),
            namespace: a.name("vms"),
            name: "disk-0".into(),
            message: format!(
                "[{}]: Attached to node {}",
                a.name("pvc-1"),
                a.name("node-a")
            ),
            count: 1,
        };
        let restored = a.restore_event(event);
        assert_eq!(restored.namespace, "vms");
        assert_eq!(restored.message, "[pvc-1]: Attached to node node-a");
    }

    #[test]
    fn a_namespace_too_long_for_the_suffix_is_refused_with_the_limit() {
        let long = "n".repeat(60);
        let text = FILE.replace("vms/", &format!("{long}/"));
        let scenario = load_text("x.yaml", &text).expect("valid");
        let error = Isolation::with_suffix("-rtest01")
            .scenario(&scenario)
            .expect_err("too long");
        assert!(
            error.to_string().contains("at most 63 characters"),
            "{error}"
        );
    }
}
