//! What a run looked like in time, for the visual report (`docs/scenarios.md` §5, the
//! `timeline` field): the nodes and when they came and went, each attachment span, each
//! migration window with its deadline and how it ended, each fault rule while it was in
//! force, each restart, and each refused call or failed expectation at its step.
//!
//! Everything here is recorded while the run plays (the runner's own steps, the
//! VolumeAttachments kept, the fault rules the fake server still holds) or read from the
//! events the run wrote: a migration is a volume attached to two nodes at once, and its
//! timeout and outcome are what its MigrationStarted and MigrationCompleted/Failed report, so
//! the picture and the transcript can never disagree. Times are Go duration text of the
//! offset from the start, as a step's and an event's `at`.
//!
//! ```
//! use csi_events::scenario::{load::load_text, runner::{run, Target}};
//! let text = "name: x\ncluster:\n  nodes: [node-a]\n  volumes: [{id: pvc-1}]\nsteps:\n  - attach: {volume: pvc-1, node: node-a}\n  - advance: 10s\n  - detach: {volume: pvc-1, node: node-a}\n";
//! let result = run(&load_text("x.yaml", text).unwrap(), &Target::Embedded).unwrap();
//! let span = &result.timeline.attachments[0];
//! assert_eq!((span.from.as_str(), span.to.as_deref()), ("0s", Some("10s")));
//! assert_eq!(result.timeline.end, "10s");
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::Serialize;

use super::isolate::Isolation;
use super::plan::{Action, PlannedStep, Scenario, parse_duration};
use super::transcript::{Outcome, StepRecord, WrittenEvent};
use crate::duration::GoDuration;
use crate::ids::{NodeName, VolumeId};
use fake_apiserver::control::FaultId;

/// A run in time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timeline {
    /// The offset when the last step ended (the run's virtual length).
    pub end: String,
    /// Every node, in declaration order (start nodes, then those added).
    pub nodes: Vec<NodeLane>,
    /// Every claim the scenario names (`namespace/name`), in order of first mention.
    pub claims: Vec<String>,
    /// Every volume: its id, claim and access mode.
    pub volumes: Vec<VolumeInfo>,
    /// Per step (parallel to `steps`): its line in the file and when it ended.
    pub steps: Vec<StepSpan>,
    /// Each VolumeAttachment the runner kept, from its creation to its removal.
    pub attachments: Vec<AttachmentSpan>,
    /// Each migration an event reported started.
    pub migrations: Vec<MigrationWindow>,
    /// Each fault rule while it was in force.
    pub faults: Vec<FaultSpan>,
    /// Each controller restart.
    pub restarts: Vec<RestartMark>,
    /// Refused calls and failed expectations, at their step.
    pub problems: Vec<StepProblem>,
}

/// A node's lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeLane {
    /// Its name.
    pub name: String,
    /// When it appeared (`0s` for a start node).
    pub added: String,
    /// When it was deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<String>,
    /// Whether the node watcher saw the deletion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<bool>,
}

/// A volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeInfo {
    /// The volume id.
    pub id: String,
    /// Its claim (`namespace/name`), if its PV has a claimRef.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// `RWO` or `RWX`.
    pub mode: String,
}

/// Where a step is written and when it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepSpan {
    /// Its line in the file.
    pub line: u32,
    /// The offset when it ended (its `at` plus any time it moved the clock).
    pub end: String,
}

/// A volume attached to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentSpan {
    /// The volume.
    pub volume: String,
    /// The node.
    pub node: String,
    /// When it was attached.
    pub from: String,
    /// When it was detached (none: still attached at the end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// A live migration: a volume attached to two nodes at once, with what its events report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationWindow {
    /// The volume.
    pub volume: String,
    /// Its claim (`namespace/name`, from its events; absent when none was written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// The source node (attached first).
    pub source: String,
    /// The target node (attached second).
    pub target: String,
    /// When the target's attachment made it two nodes.
    pub start: String,
    /// The timeout MigrationStarted reports (absent when that event was not written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// `start + timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// When it ended: the detach or node deletion that left one node, or for a timeout its
    /// deadline (none: still running at the end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// `completed`, `failed: <why>` (MigrationFailed's reason: `timeout`, `target detached`,
    /// `node deleted`, ...), `<what> (no event written)` when its end event was not written
    /// (`source detached`, `target detached`, `node deleted`), or `running`.
    pub ended: String,
    /// When MigrationStarted was written (it can lag the start: retries, deferral).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_written: Option<String>,
    /// When MigrationCompleted or MigrationFailed was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_written: Option<String>,
}

/// Two nodes attached at once, as the recorder saw it.
#[derive(Debug, Clone)]
struct Pair {
    volume: VolumeId,
    source: NodeName,
    target: NodeName,
    start: Duration,
    end: Option<(Duration, &'static str)>,
}

/// A fault rule in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSpan {
    /// What it answers (`create events answer 500 ×2`).
    pub rule: String,
    /// The index of the step that added it.
    pub step: usize,
    /// When it was added.
    pub from: String,
    /// When it ended (none: in force at the end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `cleared`, `used up` (its `times` ran out; known in embedded mode), or `in force`.
    pub ended: String,
    /// For a rule used up: the start of the step during which it ran out (it was in force
    /// then, and gone at `to`, the step's end; which request used it up is not recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ran_out: Option<String>,
}

/// A controller restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestartMark {
    /// When it went down.
    pub at: String,
    /// How long it was down.
    pub down: String,
    /// When it was back.
    pub up: String,
}

/// A refused call or a failed expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepProblem {
    /// The step's index in `steps`.
    pub step: usize,
    /// The step's `at`.
    pub at: String,
    /// `refused` (the call failed with a gRPC code) or `failed` (something did not hold).
    pub kind: String,
    /// The gRPC code of a refused call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The message or what differed.
    pub text: String,
    /// A refusal the step expects (`expectError`): shown, not a failure.
    pub expected: bool,
}

/// Records a [`Timeline`] while the runner plays the steps.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    nodes: Vec<NodeLane>,
    claims: Vec<String>,
    volumes: Vec<VolumeInfo>,
    steps: Vec<StepSpan>,
    attached: BTreeMap<(VolumeId, NodeName), Duration>,
    attachments: Vec<(Duration, AttachmentSpan)>,
    pairs: Vec<Pair>,
    /// Volume → the index in `pairs` of its open pair (a volume has at most one).
    open_pairs: HashMap<VolumeId, usize>,
    faults: Vec<(Option<FaultId>, FaultSpan)>,
    restarts: Vec<RestartMark>,
    problems: Vec<StepProblem>,
    end: Duration,
    /// A run with names of its own: the timeline is given in the scenario's names.
    restore: Option<Isolation>,
}

/// What one step did, as the recorder needs it.
pub(crate) struct StepFacts<'a> {
    /// The step's index.
    pub(crate) index: usize,
    /// The step.
    pub(crate) step: &'a PlannedStep,
    /// When it began and ended.
    pub(crate) at: Duration,
    /// When it ended.
    pub(crate) end: Duration,
    /// Its outcome.
    pub(crate) outcome: &'a Outcome,
    /// The failures it added.
    pub(crate) failures: &'a [String],
    /// The attachments kept after it.
    pub(crate) attached: AttachedAfter,
    /// The fault rule it added, when the fake server is in process.
    pub(crate) fault_added: Option<FaultId>,
    /// The rules still in force after it, when the fake server is in process.
    pub(crate) faults_in_force: Option<BTreeSet<FaultId>>,
}

/// The attachments kept after a step.
pub(crate) enum AttachedAfter {
    /// Every (volume, node) kept.
    All(BTreeSet<(VolumeId, NodeName)>),
    /// The volumes whose attachments the step may have changed, each with the nodes kept
    /// after it (every other volume kept what it had): the cost is that of the volumes a
    /// step touched, not of every volume.
    Changed(BTreeMap<VolumeId, BTreeSet<NodeName>>),
}

fn text(d: Duration) -> String {
    GoDuration::from_std(d).to_string()
}

impl Recorder {
    /// A recorder for `scenario`: its start nodes, claims and volumes.
    pub(crate) fn new(scenario: &Scenario) -> Self {
        let mut recorder = Recorder {
            nodes: scenario
                .nodes
                .iter()
                .map(|n| NodeLane {
                    name: n.to_string(),
                    added: "0s".to_owned(),
                    deleted: None,
                    observed: None,
                })
                .collect(),
            volumes: scenario
                .volumes
                .iter()
                .map(|v| VolumeInfo {
                    id: v.id.to_string(),
                    claim: v.claim.as_ref().map(|c| c.to_string()),
                    mode: v.mode.as_str().to_owned(),
                })
                .collect(),
            ..Recorder::default()
        };
        let mentioned = scenario
            .claims
            .iter()
            .chain(scenario.volumes.iter().filter_map(|v| v.claim.as_ref()))
            .chain(scenario.steps.iter().filter_map(|s| match &s.action {
                Action::CreateClaim(c) | Action::DeleteClaim(c) => Some(c),
                _ => None,
            }));
        for claim in mentioned {
            let claim = claim.to_string();
            if !recorder.claims.contains(&claim) {
                recorder.claims.push(claim);
            }
        }
        recorder
    }

    /// Gives the timeline in the scenario's own names when the run had names of its own.
    pub(crate) fn restoring(mut self, isolation: Option<Isolation>) -> Self {
        self.restore = isolation;
        self
    }

    /// Records one step.
    pub(crate) fn step(&mut self, facts: StepFacts<'_>) {
        let StepFacts {
            index,
            step,
            at,
            end,
            outcome,
            failures,
            attached,
            fault_added,
            faults_in_force,
        } = facts;
        self.end = end;
        self.steps.push(StepSpan {
            line: step.line,
            end: text(end),
        });
        let ok = outcome.is_ok();
        match &step.action {
            Action::AddNode(node) if ok => {
                let name = node.to_string();
                if !self
                    .nodes
                    .iter()
                    .any(|n| n.name == name && n.deleted.is_none())
                {
                    self.nodes.push(NodeLane {
                        name,
                        added: text(at),
                        deleted: None,
                        observed: None,
                    });
                }
            }
            Action::DeleteNode { node, observed } if ok => {
                let name = node.to_string();
                if let Some(lane) = self
                    .nodes
                    .iter_mut()
                    .rev()
                    .find(|n| n.name == name && n.deleted.is_none())
                {
                    lane.deleted = Some(text(at));
                    lane.observed = Some(*observed);
                }
            }
            Action::RestartController { down } => self.restarts.push(RestartMark {
                at: text(at),
                down: text(*down),
                up: text(end),
            }),
            Action::Fault(rule) if ok => self.faults.push((
                fault_added,
                FaultSpan {
                    rule: rule.to_string(),
                    step: index,
                    from: text(at),
                    to: None,
                    ended: "in force".to_owned(),
                    ran_out: None,
                },
            )),
            Action::ClearFaults if ok => {
                for (_, span) in self.faults.iter_mut().filter(|(_, s)| s.to.is_none()) {
                    span.to = Some(text(at));
                    span.ended = "cleared".to_owned();
                }
            }
            _ => {}
        }
        if let Some(in_force) = faults_in_force {
            for (id, span) in self.faults.iter_mut() {
                if let Some(id) = id
                    && span.to.is_none()
                    && !in_force.contains(id)
                {
                    span.to = Some(text(end));
                    span.ended = "used up".to_owned();
                    span.ran_out = Some(text(at.max(nanos(&span.from))));
                }
            }
        }
        // An attach or detach changes attachments when it is played; anything else (a
        // restart's rebuild) when it ends.
        let when = match &step.action {
            Action::Attach { .. } | Action::Detach { .. } | Action::DeleteNode { .. } => at,
            _ => end,
        };
        let changed = match attached {
            AttachedAfter::Changed(changed) => changed,
            AttachedAfter::All(all) => {
                // Every volume kept before (none left: an empty set) or after.
                let mut changed: BTreeMap<VolumeId, BTreeSet<NodeName>> = self
                    .attached
                    .keys()
                    .map(|(volume, _)| (volume.clone(), BTreeSet::new()))
                    .collect();
                for (volume, node) in all {
                    changed.entry(volume).or_default().insert(node);
                }
                changed
            }
        };
        for (volume, nodes) in changed {
            self.follow_volume(volume, nodes, when, &step.action);
        }
        match outcome {
            Outcome::Error { code, message } => self.problems.push(StepProblem {
                step: index,
                at: text(at),
                kind: "refused".to_owned(),
                code: Some(code.clone()),
                text: if failures.is_empty() {
                    message.clone()
                } else {
                    failures.join("\n")
                },
                expected: failures.is_empty(),
            }),
            _ => {
                for failure in failures {
                    self.problems.push(StepProblem {
                        step: index,
                        at: text(at),
                        kind: "failed".to_owned(),
                        code: None,
                        text: failure.clone(),
                        expected: false,
                    });
                }
            }
        }
    }

    /// One volume's attachments after a step (`nodes`, sorted): its open migration pair
    /// ends when its source or target is gone, a new pair starts when it is on two nodes
    /// with none open (the source one it was on before, the target one it was not), and its
    /// attachment spans end and begin at `when`.
    fn follow_volume(
        &mut self,
        volume: VolumeId,
        nodes: BTreeSet<NodeName>,
        when: Duration,
        action: &Action,
    ) {
        let was: Vec<NodeName> = self
            .attached
            .range((volume.clone(), NodeName::new(String::new()))..)
            .take_while(|((v, _), _)| *v == volume)
            .map(|((_, node), _)| node.clone())
            .collect();
        if let Some(&open) = self.open_pairs.get(&volume)
            && let Some(pair) = self.pairs.get_mut(open)
        {
            let source = nodes.contains(&pair.source);
            let target = nodes.contains(&pair.target);
            if !(source && target) {
                let why = match action {
                    Action::DeleteNode { .. } => "node deleted",
                    _ if !source => "source detached",
                    _ => "target detached",
                };
                pair.end = Some((when, why));
                self.open_pairs.remove(&volume);
            }
        }
        if nodes.len() >= 2 && !self.open_pairs.contains_key(&volume) {
            let source = nodes.iter().find(|n| was.contains(n)).or(nodes.first());
            let target = nodes
                .iter()
                .find(|n| Some(*n) != source && !was.contains(n))
                .or(nodes.iter().find(|n| Some(*n) != source));
            if let (Some(source), Some(target)) = (source, target) {
                self.open_pairs.insert(volume.clone(), self.pairs.len());
                self.pairs.push(Pair {
                    volume: volume.clone(),
                    source: source.clone(),
                    target: target.clone(),
                    start: when,
                    end: None,
                });
            }
        }
        for node in was {
            if nodes.contains(&node) {
                continue;
            }
            let key = (volume.clone(), node);
            if let Some(from) = self.attached.remove(&key) {
                self.attachments.push((
                    from,
                    AttachmentSpan {
                        volume: key.0.to_string(),
                        node: key.1.to_string(),
                        from: text(from),
                        to: Some(text(when)),
                    },
                ));
            }
        }
        for node in nodes {
            self.attached.entry((volume.clone(), node)).or_insert(when);
        }
    }

    /// The timeline, with the migrations' events of `steps` matched to the pairs.
    pub(crate) fn finish(mut self, steps: &[StepRecord]) -> Timeline {
        for ((volume, node), from) in std::mem::take(&mut self.attached) {
            self.attachments.push((
                from,
                AttachmentSpan {
                    volume: volume.to_string(),
                    node: node.to_string(),
                    from: text(from),
                    to: None,
                },
            ));
        }
        // By start, then volume and node: a stable order whatever the map order was.
        self.attachments.sort_by(|(a, x), (b, y)| {
            (a, &x.volume, &x.node, &x.to).cmp(&(b, &y.volume, &y.node, &y.to))
        });
        let mut attachments: Vec<AttachmentSpan> =
            self.attachments.into_iter().map(|(_, s)| s).collect();
        if let Some(isolation) = &self.restore {
            let r = |text: &mut String| *text = isolation.restore(text);
            for node in &mut self.nodes {
                r(&mut node.name);
            }
            for claim in &mut self.claims {
                r(claim);
            }
            for volume in &mut self.volumes {
                r(&mut volume.id);
                if let Some(claim) = &mut volume.claim {
                    r(claim);
                }
            }
            for span in &mut attachments {
                r(&mut span.volume);
                r(&mut span.node);
            }
            for pair in &mut self.pairs {
                pair.volume = VolumeId::new(isolation.restore(pair.volume.as_str()));
                pair.source = NodeName::new(isolation.restore(pair.source.as_str()));
                pair.target = NodeName::new(isolation.restore(pair.target.as_str()));
            }
            for (_, fault) in &mut self.faults {
                r(&mut fault.rule);
            }
            for problem in &mut self.problems {
                r(&mut problem.text);
            }
        }
        let events: Vec<&WrittenEvent> = steps.iter().flat_map(|s| s.events.iter()).collect();
        let migrations = migrations(&self.pairs, &events);
        Timeline {
            end: text(self.end),
            nodes: self.nodes,
            claims: self.claims,
            volumes: self.volumes,
            steps: self.steps,
            attachments,
            migrations,
            faults: self.faults.into_iter().map(|(_, s)| s).collect(),
            restarts: self.restarts,
            problems: self.problems,
        }
    }
}

fn nanos(go: &str) -> Duration {
    parse_duration(go).unwrap_or_default()
}

/// `[vol]: rest` → (vol, rest).
fn volume_of(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix('[')?;
    let (volume, rest) = rest.split_once("]: ")?;
    Some((volume, rest))
}

/// The text after `key` up to the next `, ` (or the end).
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.find(key)? + key.len();
    let rest = &text[at..];
    Some(rest.split(", ").next().unwrap_or(rest))
}

/// A migration event of a volume: (reason, source, target, timeout or why, its write).
struct MigrationEvent<'a> {
    started: bool,
    volume: &'a str,
    source: &'a str,
    target: &'a str,
    detail: Option<&'a str>,
    claim: String,
    at: Duration,
    text: &'a str,
    used: bool,
}

fn migration_event(event: &WrittenEvent) -> Option<MigrationEvent<'_>> {
    let (volume, rest) = volume_of(&event.message)?;
    let (started, source, target, detail) = match event.reason.as_str() {
        "MigrationStarted" => (
            true,
            field(rest, "source: ")?,
            field(rest, "target: ")?,
            field(rest, "timeout: "),
        ),
        "MigrationCompleted" => {
            let pair = field(rest, "source: ")?;
            let (source, target) = pair.split_once(" -> target: ")?;
            let target = target.split(" (").next().unwrap_or(target);
            (false, source, target, None)
        }
        "MigrationFailed" => (
            false,
            field(rest, "source: ")?,
            field(rest, "attempted target: ")?,
            field(rest, "reason: "),
        ),
        _ => return None,
    };
    Some(MigrationEvent {
        started,
        volume,
        source,
        target,
        detail,
        claim: event.claim(),
        at: nanos(&event.at),
        text: &event.reason,
        used: false,
    })
}

/// Each pair (two nodes attached at once) with the MigrationStarted and the end event that
/// name its volume, source and target, taken in order (their texts are the contract of
/// `docs/events.md`): a deferred or retried event still finds its migration.
fn migrations(pairs: &[Pair], events: &[&WrittenEvent]) -> Vec<MigrationWindow> {
    let mut parsed: Vec<MigrationEvent<'_>> =
        events.iter().filter_map(|e| migration_event(e)).collect();
    // (started, volume, source, target) → the indexes in `parsed` of its events, in order:
    // a pair looks at the events of its own volume and nodes only.
    let mut by_key: HashMap<(bool, &str, &str, &str), Vec<usize>> = HashMap::new();
    for (i, e) in parsed.iter().enumerate() {
        by_key
            .entry((e.started, e.volume, e.source, e.target))
            .or_default()
            .push(i);
    }
    let mut out = Vec::new();
    for pair in pairs {
        let (volume, source, target) = (
            pair.volume.to_string(),
            pair.source.to_string(),
            pair.target.to_string(),
        );
        let mut take = |started: bool| {
            let candidates =
                by_key.get(&(started, volume.as_str(), source.as_str(), target.as_str()))?;
            let found = candidates
                .iter()
                .copied()
                .find(|&i| parsed.get(i).is_some_and(|e| !e.used && e.at >= pair.start))?;
            let e = parsed.get_mut(found)?;
            e.used = true;
            Some((e.detail, e.claim.clone(), e.at, e.text))
        };
        let started = take(true);
        let finished = take(false);
        let timeout = started
            .as_ref()
            .and_then(|(detail, ..)| *detail)
            .map(str::to_owned);
        let deadline = timeout.as_deref().map(|t| pair.start + nanos(t));
        let (end, ended) = match (&finished, pair.end) {
            (Some((why, _, at, reason)), closed) => {
                let ended = if *reason == "MigrationCompleted" {
                    "completed".to_owned()
                } else {
                    format!("failed: {}", why.unwrap_or("unknown"))
                };
                let end = match (*why, deadline, closed) {
                    (Some("timeout"), Some(deadline), _) => deadline,
                    (_, _, Some((when, _))) => when,
                    _ => *at,
                };
                (Some(end), ended)
            }
            (None, Some((when, why))) => (Some(when), format!("{why} (no event written)")),
            (None, None) => (None, "running".to_owned()),
        };
        out.push(MigrationWindow {
            volume,
            claim: started
                .as_ref()
                .or(finished.as_ref())
                .map(|(_, claim, ..)| claim.clone()),
            source,
            target,
            start: text(pair.start),
            timeout,
            deadline: deadline.map(text),
            end: end.map(text),
            ended,
            started_written: started.map(|(_, _, at, _)| text(at)),
            ended_written: finished.map(|(_, _, at, _)| text(at)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: &str, reason: &str, message: &str) -> WrittenEvent {
        WrittenEvent {
            at: at.into(),
            event_type: "Normal".into(),
            reason: reason.into(),
            namespace: "vms".into(),
            name: "disk-0".into(),
            message: message.into(),
            count: 1,
        }
    }

    fn pair(start: &str, end: Option<(&str, &'static str)>) -> Pair {
        Pair {
            volume: "pvc-1".into(),
            source: "node-a".into(),
            target: "node-b".into(),
            start: nanos(start),
            end: end.map(|(at, why)| (nanos(at), why)),
        }
    }

    const STARTED: &str =
        "[pvc-1]: KubeVirt live migration started - source: node-a, target: node-b, timeout: 5m0s";

    #[test]
    fn a_timeout_ends_at_the_deadline_whenever_its_warning_is_written() {
        let started = event("10s", "MigrationStarted", STARTED);
        let failed = event(
            "5m12s",
            "MigrationFailed",
            "[pvc-1]: KubeVirt live migration failed - source: node-a, attempted target: node-b, reason: timeout, elapsed: 5m0s",
        );
        let windows = migrations(&[pair("10s", None)], &[&started, &failed]);
        assert_eq!(windows.len(), 1);
        let m = &windows[0];
        assert_eq!((m.source.as_str(), m.target.as_str()), ("node-a", "node-b"));
        assert_eq!(m.start, "10s");
        assert_eq!(m.deadline.as_deref(), Some("5m10s"));
        assert_eq!(m.end.as_deref(), Some("5m10s"));
        assert_eq!(m.ended, "failed: timeout");
        assert_eq!(m.ended_written.as_deref(), Some("5m12s"));
        assert_eq!(m.claim.as_deref(), Some("vms/disk-0"));
    }

    #[test]
    fn a_deferred_event_still_finds_its_migration_which_ends_at_the_detach() {
        // Both written 10 minutes after the migration (a spam filter deferred them).
        let started = event("10m", "MigrationStarted", STARTED);
        let completed = event(
            "10m",
            "MigrationCompleted",
            "[pvc-1]: KubeVirt live migration completed - source: node-a -> target: node-b (duration: 0s)",
        );
        let windows = migrations(
            &[pair("0s", Some(("0s", "source detached")))],
            &[&started, &completed],
        );
        let m = &windows[0];
        assert_eq!((m.start.as_str(), m.end.as_deref()), ("0s", Some("0s")));
        assert_eq!(m.ended, "completed");
        assert_eq!(m.started_written.as_deref(), Some("10m0s"));
    }

    #[test]
    fn a_migration_without_events_ends_with_its_attachment_or_runs_on() {
        let running = migrations(&[pair("10s", None)], &[]);
        assert_eq!(
            (running[0].ended.as_str(), running[0].end.as_deref()),
            ("running", None)
        );
        assert_eq!(running[0].deadline, None);
        let detached = migrations(&[pair("10s", Some(("20s", "target detached")))], &[]);
        assert_eq!(detached[0].ended, "target detached (no event written)");
        assert_eq!(detached[0].end.as_deref(), Some("20s"));
    }

    #[test]
    fn events_of_other_volumes_or_nodes_and_unparsable_ones_are_not_matched() {
        let other = event(
            "0s",
            "MigrationStarted",
            "[pvc-2]: KubeVirt live migration started - source: node-a, target: node-b, timeout: 5m0s",
        );
        let reversed = event(
            "0s",
            "MigrationStarted",
            "[pvc-1]: KubeVirt live migration started - source: node-b, target: node-a, timeout: 5m0s",
        );
        let odd = event("1s", "MigrationStarted", "no volume here");
        let windows = migrations(&[pair("0s", None)], &[&other, &reversed, &odd]);
        assert_eq!(windows[0].timeout, None);
        assert_eq!(windows[0].started_written, None);
    }

    fn played(text: &str) -> Timeline {
        use crate::scenario::load::load_text;
        use crate::scenario::runner::{Target, run};
        run(&load_text("x.yaml", text).unwrap(), &Target::Embedded)
            .unwrap()
            .timeline
    }

    #[test]
    fn a_fault_used_up_during_an_advance_ran_out_within_that_step() {
        let timeline = played(
            "name: x\ncluster:\n  nodes: [node-a]\n  claims: [vms/disk-0]\n  volumes: [{id: pvc-1, claim: vms/disk-0}]\nsteps:\n  - fault: {verb: create, resource: events, status: 500, times: 2}\n  - attach: {volume: pvc-1, node: node-a}\n  - advance: 2s\n  - fault: {verb: create, resource: events, status: 503}\n  - advance: 1s\n  - clearFaults: {}\n  - advance: 1s\n",
        );
        let [used, cleared] = timeline.faults.as_slice() else {
            panic!("{:?}", timeline.faults)
        };
        assert_eq!(used.rule, "create events answer 500 2 times");
        assert_eq!((used.from.as_str(), used.to.as_deref()), ("0s", Some("2s")));
        assert_eq!(
            (used.ended.as_str(), used.ran_out.as_deref()),
            ("used up", Some("0s"))
        );
        assert_eq!(
            (cleared.from.as_str(), cleared.to.as_deref()),
            ("2s", Some("3s"))
        );
        assert_eq!(
            (cleared.ended.as_str(), cleared.ran_out.as_deref()),
            ("cleared", None)
        );
    }

    #[test]
    fn nodes_restarts_and_problems_are_recorded_at_their_steps() {
        let timeline = played(
            "name: x\ncluster:\n  nodes: [node-a]\n  volumes: [{id: pvc-1}]\nsteps:\n  - addNode: node-b\n  - advance: 5s\n  - deleteNode: node-a\n  - restartController: {down: 10s}\n  - attach: {volume: pvc-1, node: node-a, expectError: NotFound}\n  - expectMetric: {name: rds_csi_migration_active_migrations, value: 3}\n",
        );
        let nodes: Vec<(&str, &str, Option<&str>)> = timeline
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.added.as_str(), n.deleted.as_deref()))
            .collect();
        assert_eq!(
            nodes,
            [("node-a", "0s", Some("5s")), ("node-b", "0s", None)]
        );
        assert_eq!(
            timeline.restarts,
            [RestartMark {
                at: "5s".into(),
                down: "10s".into(),
                up: "15s".into()
            }]
        );
        assert_eq!(timeline.end, "15s");
        let kinds: Vec<(usize, &str, bool)> = timeline
            .problems
            .iter()
            .map(|p| (p.step, p.kind.as_str(), p.expected))
            .collect();
        assert_eq!(kinds, [(4, "refused", true), (5, "failed", false)]);
        assert_eq!(timeline.problems[0].code.as_deref(), Some("NotFound"));
        assert_eq!(timeline.steps.len(), 6);
    }
}
