//! Plays one step: the step's action (through the [`Driver`] seam or on the cluster), then
//! all due work to quiescence, the runner's VolumeAttachments, and the record of what the
//! step wrote, skipped and dropped.

use std::collections::BTreeMap;

use super::attacher::Attacher;
use super::driver::{Driver, PublishRequest};
use super::expect::{check_call, events_mismatch};
use super::feed::{EventFeed, offset};
use super::plan::{Action, PlannedStep, Scenario};
use super::readings::NotWritten;
use super::timeline::{AttachedAfter, Recorder, StepFacts};
use super::transcript::{Outcome, Skipped, StepRecord, WrittenEvent};
use super::world::World;
use crate::ids::{NodeName, VolumeId};
use crate::model::AccessMode;

/// The runner's own state during a run.
pub(crate) struct Run<'a, D> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) driver: D,
    pub(crate) attacher: Attacher,
    pub(crate) events: EventFeed,
    /// Events written since the last expectEvents.
    pub(crate) unchecked: Vec<WrittenEvent>,
    pub(crate) failures: Vec<String>,
    pub(crate) steps: Vec<StepRecord>,
    pub(crate) stopped: bool,
    /// Volume id → its index in `scenario.volumes` (a publish looks its volume up by id).
    pub(crate) volume_index: BTreeMap<VolumeId, usize>,
    /// The run in time, for the visual report.
    pub(crate) timeline: Recorder,
}

impl<D: Driver> Run<'_, D> {
    /// Plays `step` and returns its record.
    pub(crate) async fn step(&mut self, world: &World, step: &PlannedStep) -> StepRecord {
        let at = offset(&world.clock, world.start);
        let began = since_start(world);
        let failures_before = self.failures.len();
        let mut fault_added = None;
        let before = self.driver.not_written().await;
        let mut skipped = Vec::new();
        let outcome = match &step.action {
            Action::Attach {
                volume,
                node,
                took,
                expect_error,
            } => {
                let request = self.publish_request(volume, node, *took);
                let result = self.driver.publish(request).await;
                check_call(&mut self.failures, step, result, expect_error.as_deref())
            }
            Action::Detach {
                volume,
                node,
                expect_error,
            } => {
                let result = self.driver.unpublish(volume, node).await;
                check_call(&mut self.failures, step, result, expect_error.as_deref())
            }
            Action::Advance(duration) => {
                self.driver.advance(&world.clock, *duration).await;
                Outcome::ok()
            }
            Action::AddNode(node) => {
                let outcome = world.create_node(node).await;
                if outcome.is_ok() {
                    self.driver.node_added(node).await;
                }
                self.admin_outcome(step, outcome)
            }
            Action::DeleteNode { node, observed } => {
                let result = world.delete_node(node).await;
                if result.is_ok() && *observed {
                    self.driver.node_deleted(node).await;
                }
                self.admin_outcome(step, result)
            }
            Action::CreateClaim(claim) => {
                let volume = self
                    .scenario
                    .volumes
                    .iter()
                    .find(|v| v.claim.as_ref() == Some(claim));
                let result = world.create_claim(volume, claim).await.map(|_| ());
                self.admin_outcome(step, result)
            }
            Action::DeleteClaim(claim) => {
                let result = world.delete_claim(claim).await;
                self.admin_outcome(step, result)
            }
            Action::RestartController { down } => {
                let restarted = self.driver.restart(*down).await;
                skipped.extend(not_written_delta(&before, &restarted.stopped.not_written()));
                match restarted.result {
                    Ok(()) => Outcome::ok(),
                    Err(error) => {
                        self.failures.push(format!(
                            "line {}: restart controller: the {}; the remaining steps were not run",
                            step.line, error.message
                        ));
                        self.stopped = true;
                        Outcome::Error {
                            code: error.code.as_str().to_owned(),
                            message: error.message,
                        }
                    }
                }
            }
            Action::Fault(rule) => {
                if let Some(cluster) = &world.cluster {
                    fault_added = Some(cluster.faults().add(rule.to_fault()));
                    Outcome::ok()
                } else {
                    let result = world.fault_over_http(Some(rule)).await;
                    self.admin_outcome(step, result)
                }
            }
            Action::ClearFaults => {
                if let Some(cluster) = &world.cluster {
                    cluster.faults().clear();
                    Outcome::ok()
                } else {
                    let result = world.fault_over_http(None).await;
                    self.admin_outcome(step, result)
                }
            }
            Action::ExpectEvents(expected) => {
                let written = std::mem::take(&mut self.unchecked);
                match events_mismatch(expected, &written, self.driver.real_time()) {
                    Some(why) => {
                        self.failures.push(format!("line {}: {why}", step.line));
                        Outcome::Failed { failed: why }
                    }
                    None => Outcome::ok(),
                }
            }
            Action::ExpectMetric {
                name,
                labels,
                value,
            } => {
                let actual = self
                    .driver
                    .metrics()
                    .await
                    .value(name, labels)
                    .unwrap_or(0.0);
                if (actual - value).abs() > 1e-9 {
                    let why = format!("{}: the value is {actual}", step.text);
                    self.failures.push(format!("line {}: {why}", step.line));
                    Outcome::Failed { failed: why }
                } else {
                    Outcome::ok()
                }
            }
        };
        self.driver.quiesce().await;
        self.follow_attachments(world, step).await;
        let events = self.events.drain().await;
        self.unchecked.extend(events.iter().cloned());
        let after = self.driver.not_written().await;
        if !matches!(step.action, Action::RestartController { .. }) {
            skipped.extend(not_written_delta(&before, &after));
        }
        let changed = self.attacher.take_changed();
        self.timeline.step(StepFacts {
            index: self.steps.len(),
            step,
            at: began,
            end: since_start(world),
            outcome: &outcome,
            failures: self.failures.get(failures_before..).unwrap_or(&[]),
            attached: match self.driver.kept_attachments() {
                Some(all) => AttachedAfter::All(all),
                None => AttachedAfter::Changed(changed),
            },
            fault_added,
            faults_in_force: world
                .cluster
                .as_ref()
                .map(|c| c.faults().list().into_iter().map(|f| f.id).collect()),
        });
        StepRecord {
            at,
            step: step.text.clone(),
            outcome,
            events,
            skipped,
        }
    }

    /// Keeps the VolumeAttachments of what the step may have changed: the volume of an attach
    /// or detach, the volumes on an observed deleted node, everything after a restart.
    /// Nothing else changes attachments (a timeout keeps both nodes attached).
    async fn follow_attachments(&mut self, world: &World, step: &PlannedStep) {
        let volumes = match &step.action {
            Action::Attach { volume, .. } | Action::Detach { volume, .. } => vec![volume.clone()],
            Action::DeleteNode {
                node,
                observed: true,
            } => self.attacher.volumes_on(node),
            Action::RestartController { .. } => {
                self.attacher.follow(&world.admin, &mut self.driver).await;
                return;
            }
            _ => return,
        };
        self.attacher
            .follow_volumes(&world.admin, &mut self.driver, volumes)
            .await;
    }

    /// The publish the external-attacher would send: the volume's access mode and context.
    fn publish_request(
        &self,
        volume: &VolumeId,
        node: &NodeName,
        took: std::time::Duration,
    ) -> PublishRequest {
        let spec = self
            .volume_index
            .get(volume)
            .and_then(|i| self.scenario.volumes.get(*i));
        let (mode, context) = match spec {
            Some(v) => (v.mode, v.context(v.claim_in_context)),
            None => (AccessMode::Rwo, BTreeMap::new()),
        };
        PublishRequest {
            volume: volume.clone(),
            node: node.clone(),
            mode,
            context,
            took,
        }
    }

    fn admin_outcome(&mut self, step: &PlannedStep, result: Result<(), kube::Error>) -> Outcome {
        match result {
            Ok(()) => Outcome::ok(),
            Err(error) => {
                let message = match &error {
                    kube::Error::Api(status) => {
                        format!("{} {}: {}", status.code, status.reason, status.message)
                    }
                    other => other.to_string(),
                };
                self.failures.push(format!(
                    "line {}: {}: the API server refused it: {message}",
                    step.line, step.text
                ));
                Outcome::Error {
                    code: "Internal".to_owned(),
                    message,
                }
            }
        }
    }
}

/// The clock's offset from the start.
fn since_start(world: &World) -> std::time::Duration {
    use crate::clock::Clock;
    world.clock.now().duration_since(world.start).unsigned_abs()
}

/// The skip/drop entries between two readings.
fn not_written_delta(before: &NotWritten, after: &NotWritten) -> Vec<Skipped> {
    if std::ptr::eq(before, after) {
        // The same reading (the driver's cache: no counter moved).
        return Vec::new();
    }
    let was: BTreeMap<&(String, String), u64> = before.iter().map(|(k, v)| (k, *v)).collect();
    let mut out = Vec::new();
    for (key, now) in after {
        let was = was.get(key).copied().unwrap_or(0);
        for _ in was..*now {
            out.push(Skipped {
                reason: key.0.clone(),
                cause: key.1.clone(),
            });
        }
    }
    out
}
