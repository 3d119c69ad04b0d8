//! Expectations: a call's result against its `expectError`, the events written against an
//! `expectEvents` list, a metric against an `expectMetric`.

use super::plan::{EventExpectation, PlannedStep};
use super::transcript::{Outcome, WrittenEvent};
use crate::model::RpcError;

/// The outcome of a CSI call; a failure is added when the result is not what the step expects.
pub(crate) fn check_call(
    failures: &mut Vec<String>,
    step: &PlannedStep,
    result: Result<(), RpcError>,
    expect_error: Option<&str>,
) -> Outcome {
    match (result, expect_error) {
        (Ok(()), None) => Outcome::ok(),
        (Ok(()), Some(code)) => {
            failures.push(format!(
                "line {}: {}: succeeded, but the step expects {code}",
                step.line, step.text
            ));
            Outcome::ok()
        }
        (Err(error), expected) => {
            let code = error.code.as_str().to_owned();
            match expected {
                Some(expected) if expected == code => {}
                Some(expected) => failures.push(format!(
                    "line {}: {}: failed with {code} ({}), but the step expects {expected}",
                    step.line, step.text, error.message
                )),
                None => failures.push(format!(
                    "line {}: {}: failed with {code}: {} (add `expectError: {code}` if that is intended)",
                    step.line, step.text, error.message
                )),
            }
            Outcome::Error {
                code,
                message: error.message,
            }
        }
    }
}

/// `part` occurs in `message` once durations are set aside (black-box leniency).
fn contains_shape(message: &str, part: &str) -> bool {
    super::conformance::shape_of(message).contains(&super::conformance::shape_of(part))
}

/// Why `written` does not match `expected` (None: it matches). `real_time`: the driver runs
/// in another process on real time, so a message's durations are compared as the snapshot
/// comparison compares them (docs/csi.md: VolumeAttached's not at all, others within 1 s).
pub(crate) fn events_mismatch(
    expected: &[EventExpectation],
    written: &[WrittenEvent],
    real_time: bool,
) -> Option<String> {
    let same = |want: &str, got: &str| {
        want == got || (real_time && super::conformance::conforms(want, got).is_ok())
    };
    let show = |events: &[WrittenEvent]| {
        if events.is_empty() {
            return "  (none)".to_owned();
        }
        events
            .iter()
            .map(|e| {
                format!(
                    "  - {} {} on {}: {} (count {})",
                    e.event_type,
                    e.reason,
                    e.claim(),
                    e.message,
                    e.count
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    if expected.len() != written.len() {
        return Some(format!(
            "expectEvents: expected {} event(s) since the previous expectEvents, {} were written:\n{}",
            expected.len(),
            written.len(),
            show(written)
        ));
    }
    for (index, (want, got)) in expected.iter().zip(written).enumerate() {
        let mut wrong = Vec::new();
        if want
            .event_type
            .as_ref()
            .is_some_and(|t| t != &got.event_type)
        {
            wrong.push("type");
        }
        if want.reason.as_ref().is_some_and(|r| r != &got.reason) {
            wrong.push("reason");
        }
        if want
            .message
            .as_ref()
            .is_some_and(|m| !same(m, &got.message))
        {
            wrong.push("message");
        }
        if want.message_contains.as_ref().is_some_and(|m| {
            !(got.message.contains(m.as_str()) || (real_time && contains_shape(&got.message, m)))
        }) {
            wrong.push("message");
        }
        if want.claim.as_ref().is_some_and(|c| c != &got.claim()) {
            wrong.push("claim");
        }
        if want.count.is_some_and(|n| n != got.count) {
            wrong.push("count");
        }
        if !wrong.is_empty() {
            return Some(format!(
                "expectEvents: event {} (line {}) differs in {}: expected {want}, written: {} {} on {} (count {}): {}",
                index + 1,
                want.line,
                wrong.join(", "),
                got.event_type,
                got.reason,
                got.claim(),
                got.count,
                got.message
            ));
        }
    }
    None
}
