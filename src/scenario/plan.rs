//! A checked scenario: every name valid, every reference known, every duration parsed. This is
//! what the runner plays; [`super::load`] is the only way to get one from a file.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::duration::GoDuration;
use crate::ids::{ClaimName, NodeName, VolumeId};

use crate::model::AccessMode;

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name (names the snapshot).
    pub name: String,
    /// What it proves.
    pub description: Option<String>,
    /// Seeds jitter and generated uids.
    pub seed: u64,
    /// The file it came from, as given on the command line (e.g. `scenarios/x.yaml`).
    pub file: String,
    /// Nodes at the start.
    pub nodes: Vec<NodeName>,
    /// Claims at the start.
    pub claims: Vec<ClaimName>,
    /// Volumes (PVs) at the start.
    pub volumes: Vec<Volume>,
    /// The steps.
    pub steps: Vec<PlannedStep>,
}

impl Scenario {
    /// The volume with this id.
    pub fn volume(&self, id: &VolumeId) -> Option<&Volume> {
        self.volumes.iter().find(|v| &v.id == id)
    }

    /// Whether any step needs the embedded fake server (fault injection).
    pub fn needs_embedded_server(&self) -> Option<&PlannedStep> {
        self.steps
            .iter()
            .find(|step| matches!(step.action, Action::Fault(_) | Action::ClearFaults))
    }

    /// Every namespace the scenario's claims live in, sorted.
    pub fn namespaces(&self) -> Vec<String> {
        let mut namespaces: Vec<String> = self
            .claims
            .iter()
            .chain(self.volumes.iter().filter_map(|v| v.claim.as_ref()))
            .chain(self.steps.iter().filter_map(|s| match &s.action {
                Action::CreateClaim(c) | Action::DeleteClaim(c) => Some(c),
                _ => None,
            }))
            .map(|c| c.namespace().to_owned())
            .collect();
        namespaces.sort();
        namespaces.dedup();
        namespaces
    }
}

/// One PersistentVolume / CSI volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Volume id = PV name.
    pub id: VolumeId,
    /// The PV's claimRef.
    pub claim: Option<ClaimName>,
    /// Access mode.
    pub mode: AccessMode,
    /// The volume context's `migrationTimeoutSeconds`.
    pub migration_timeout_seconds: Option<String>,
    /// Whether publish's volume context carries the claim keys.
    pub claim_in_context: bool,
}

impl Volume {
    /// The CSI volume context a publish carries (and the PV's `volumeAttributes`).
    pub fn context(&self, with_claim: bool) -> BTreeMap<String, String> {
        let mut context = BTreeMap::new();
        if let Some(timeout) = &self.migration_timeout_seconds {
            context.insert("migrationTimeoutSeconds".to_owned(), timeout.clone());
        }
        if with_claim && let Some(claim) = &self.claim {
            context.insert(
                "csi.storage.k8s.io/pvc/namespace".to_owned(),
                claim.namespace().to_owned(),
            );
            context.insert(
                "csi.storage.k8s.io/pvc/name".to_owned(),
                claim.name().to_owned(),
            );
        }
        context
    }
}

/// A step, where it was written and how the transcript names it.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// Its line in the file.
    pub line: u32,
    /// The step as the transcript shows it (`detach pvc-1 from node-a`).
    pub text: String,
    /// What to do.
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// ControllerPublishVolume.
    Attach {
        /// Volume.
        volume: VolumeId,
        /// Node.
        node: NodeName,
        /// How long it took.
        took: Duration,
        /// The code it must fail with.
        expect_error: Option<String>,
    },
    /// ControllerUnpublishVolume.
    Detach {
        /// Volume.
        volume: VolumeId,
        /// Node.
        node: NodeName,
        /// The code it must fail with.
        expect_error: Option<String>,
    },
    /// Move the clock.
    Advance(Duration),
    /// A node appears.
    AddNode(NodeName),
    /// A node is deleted.
    DeleteNode {
        /// Node.
        node: NodeName,
        /// Whether the watcher sees it.
        observed: bool,
    },
    /// A claim appears.
    CreateClaim(ClaimName),
    /// A claim is deleted.
    DeleteClaim(ClaimName),
    /// Restart the controller, after it was down for `down` (the clock moves meanwhile).
    RestartController {
        /// How long the controller is down.
        down: Duration,
    },
    /// Add a fault rule.
    Fault(FaultRule),
    /// Remove every fault rule.
    ClearFaults,
    /// Check the events written since the last check.
    ExpectEvents(Vec<EventExpectation>),
    /// Check a metric.
    ExpectMetric {
        /// Name (with or without the `rds_csi_` prefix).
        name: String,
        /// Labels selecting the series.
        labels: BTreeMap<String, String>,
        /// Expected value.
        value: f64,
    },
}

/// A checked fault rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// Verb.
    pub verb: fake_apiserver::control::Verb,
    /// Resource plural.
    pub resource: String,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// HTTP status.
    pub status: Option<u16>,
    /// Status reason.
    pub reason: Option<String>,
    /// Retry-After seconds.
    pub retry_after: Option<u32>,
    /// Delay.
    pub latency: Option<Duration>,
    /// Serve then lose the answer.
    pub lose_response: bool,
    /// How many requests.
    pub times: Option<u32>,
}

impl FaultRule {
    /// The fake server's rule.
    pub fn to_fault(&self) -> fake_apiserver::control::Fault {
        use fake_apiserver::control::Fault;
        let mut fault = Fault::new(self.verb, self.resource.clone());
        if let Some(namespace) = &self.namespace {
            fault = fault.namespace(namespace.clone());
        }
        if let Some(name) = &self.name {
            fault = fault.name(name.clone());
        }
        if let Some(times) = self.times {
            fault = fault.times(times);
        }
        if let Some(latency) = self.latency {
            return fault.latency(latency);
        }
        if self.lose_response {
            return fault.lose_response();
        }
        fault = fault.status(self.status.unwrap_or(500));
        if let Some(reason) = &self.reason {
            fault = fault.reason(reason.clone());
        }
        if let Some(secs) = self.retry_after {
            fault = fault.retry_after(secs);
        }
        fault
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(namespace) = &self.namespace {
            write!(f, " in {namespace}")?;
        }
        if let Some(name) = &self.name {
            write!(f, " named {name}")?;
        }
        if let Some(latency) = self.latency {
            write!(f, " delayed {}", GoDuration::from_std(latency))?;
        } else if self.lose_response {
            write!(f, " served, answer lost")?;
        } else {
            write!(f, " answer {}", self.status.unwrap_or(500))?;
            if let Some(reason) = &self.reason {
                write!(f, " {reason}")?;
            }
            if let Some(secs) = self.retry_after {
                write!(f, " Retry-After {secs}")?;
            }
        }
        match self.times {
            Some(1) => write!(f, " once"),
            Some(n) => write!(f, " {n} times"),
            None => write!(f, " until cleared"),
        }
    }
}

/// One expected event (checked matcher).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventExpectation {
    /// Line of the matcher.
    pub line: u32,
    /// Type.
    pub event_type: Option<String>,
    /// Reason.
    pub reason: Option<String>,
    /// Exact message.
    pub message: Option<String>,
    /// Message substring.
    pub message_contains: Option<String>,
    /// Claim `ns/name`.
    pub claim: Option<String>,
    /// Count after the write.
    pub count: Option<i32>,
}

impl fmt::Display for EventExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = &self.event_type {
            parts.push(format!("type {t}"));
        }
        if let Some(r) = &self.reason {
            parts.push(format!("reason {r}"));
        }
        if let Some(m) = &self.message {
            parts.push(format!("message {m:?}"));
        }
        if let Some(m) = &self.message_contains {
            parts.push(format!("message containing {m:?}"));
        }
        if let Some(c) = &self.claim {
            parts.push(format!("claim {c}"));
        }
        if let Some(n) = self.count {
            parts.push(format!("count {n}"));
        }
        if parts.is_empty() {
            f.write_str("any event")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Parses a Go duration (`90s`, `2m15s`, `1.5h`, `153ms`, `10us`, `1h`); `0` alone is zero.
///
/// ```
/// use csi_events::scenario::plan::parse_duration;
/// use std::time::Duration;
/// assert_eq!(parse_duration("2m15s"), Ok(Duration::from_secs(135)));
/// assert_eq!(parse_duration("153ms"), Ok(Duration::from_millis(153)));
/// assert!(parse_duration("5 minutes").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const HELP: &str =
        "write a Go duration: numbers with units h, m, s, ms, us, ns, e.g. 90s, 2m15s, 153ms, 1h";
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(format!("empty duration: {HELP}"));
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if number.is_empty() || number.starts_with('.') && number.len() == 1 {
            return Err(format!("`{text}` is not a duration: {HELP}"));
        }
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("`{text}` has a number without a unit: {HELP}")),
            other => return Err(format!("`{other}` in `{text}` is not a unit: {HELP}")),
        };
        let (whole, fraction) = match number.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (number, ""),
        };
        if fraction.contains('.') {
            return Err(format!("`{text}` is not a duration: {HELP}"));
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| format!("`{text}` is too long a duration"))?
        };
        let mut nanos = whole
            .checked_mul(nanos_per)
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
        let mut scale = nanos_per;
        for digit in fraction.chars().filter_map(|c| c.to_digit(10)) {
            scale /= 10;
            nanos += u128::from(digit) * scale;
        }
        total = total
            .checked_add(nanos)
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
    }
    // Go's duration (and so every message and the clock's arithmetic) holds at most
    // i64::MAX nanoseconds: past that is an error, never a silently saturated value.
    let nanos = u64::try_from(total)
        .ok()
        .filter(|n| i64::try_from(*n).is_ok())
        .ok_or_else(|| {
            format!("`{text}` is too long a duration: the longest is 2562047h47m16.854775807s")
        })?;
    Ok(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        let ok: &[(&str, u64)] = &[
            ("90s", 90_000_000_000),
            ("2m15s", 135_000_000_000),
            ("153ms", 153_000_000),
            ("1h", 3_600_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("10us", 10_000),
            ("10µs", 10_000),
            ("7ns", 7),
            ("1h2m3s4ms", 3_723_004_000_000),
            ("0", 0),
            ("0s", 0),
        ];
        for (text, nanos) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_nanos(*nanos)),
                "{text}"
            );
        }
        assert_eq!(
            parse_duration("2562047h47m16.854775807s"),
            Ok(Duration::from_nanos(i64::MAX as u64))
        );
        for bad in [
            "",
            "5",
            "5 m",
            "5min",
            "s",
            "-5s",
            "1..2s",
            "5m 3s",
            "2562047h47m16.854775808s",
            "3000000h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} should be refused");
        }
    }
}
