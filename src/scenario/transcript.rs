//! What a run recorded: per step its virtual time offset, the step as written, the outcome,
//! the events written during it (in write order, with the Event's count after the write), the
//! events skipped or dropped; at the end the non-zero metrics. The YAML form is the snapshot;
//! the JSON form is the `--format json` contract (scenarios.md §5).
//!
//! ```
//! use csi_events::scenario::transcript::{Outcome, StepRecord, Transcript};
//! let transcript = Transcript {
//!     steps: vec![StepRecord { at: "0s".into(), step: "add node node-c".into(), outcome: Outcome::ok(), events: vec![], skipped: vec![] }],
//!     metrics: Default::default(),
//! };
//! assert_eq!(transcript.to_yaml(), "steps:\n- at: 0s\n  step: add node node-c\n  outcome: ok\n");
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

/// The transcript of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transcript {
    /// Every step, in order.
    pub steps: Vec<StepRecord>,
    /// The non-zero metric series at the end (`name{label=value,...}` → value), sorted;
    /// histogram buckets left out (their `_sum` and `_count` stay).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, serde_json::Number>,
}

impl Transcript {
    /// The snapshot text (YAML).
    pub fn to_yaml(&self) -> String {
        // One line per message, however long, so a snapshot diff shows whole messages.
        let mut options = serde_saphyr::SerializerOptions::default();
        options.prefer_block_scalars = false;
        // Plain data (strings, numbers, lists, maps): serializing cannot fail.
        serde_saphyr::to_string_with_options(self, options).unwrap_or_default()
    }
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    /// Virtual time since the start when the step began, as Go prints a duration.
    pub at: String,
    /// The step as written (`detach pvc-6f1c from node-a`).
    pub step: String,
    /// `ok` or the error.
    pub outcome: Outcome,
    /// Events written during the step, in write order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<WrittenEvent>,
    /// Events skipped (claim not found) or dropped (rate limited, retries exhausted, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
}

/// A step's outcome: `"ok"` or `{code, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    /// `"ok"`.
    Ok(OkText),
    /// The error.
    Error {
        /// gRPC code name.
        code: String,
        /// The message.
        message: String,
    },
}

impl Outcome {
    /// Success.
    pub fn ok() -> Self {
        Outcome::Ok(OkText::Ok)
    }

    /// Whether the step succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }
}

/// The text `ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OkText {
    /// `ok`.
    #[serde(rename = "ok")]
    Ok,
}

/// One write of an Event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WrittenEvent {
    /// Virtual time since the start when the write landed on the API server.
    pub at: String,
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The reason.
    pub reason: String,
    /// The claim's namespace.
    pub namespace: String,
    /// The claim's name.
    pub name: String,
    /// The message.
    pub message: String,
    /// The Event's count after this write.
    pub count: i32,
}

impl WrittenEvent {
    /// `namespace/name` of the claim.
    pub fn claim(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// An event not written, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Its reason.
    pub reason: String,
    /// The cause (`pvc_not_found`, `rate_limited`, ...).
    pub cause: String,
}
