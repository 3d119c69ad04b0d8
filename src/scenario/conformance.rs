//! Holding a black-box transcript to a reviewed snapshot (docs/csi.md §5, comparing with the
//! snapshot). A driver in another process measures real time, so: the `(duration: …)` of
//! VolumeAttached is not compared; every other duration (inside messages, and the `at`
//! offsets) is compared to within one second; the skips (`skipped:`) and the metrics block,
//! which a separate process does not report, are left out; everything else must be equal.
//!
//! ```
//! use csi_events::scenario::conformance::conforms;
//! let reviewed = "steps:\n- at: 0s\n  step: advance 30s\n- at: 30s\n  message: \"elapsed: 30s\"\nmetrics:\n  x: 1";
//! let measured = "steps:\n- at: 0s\n  step: advance 30s\n- at: 30.4s\n  message: \"elapsed: 30.2s\"";
//! assert_eq!(conforms(reviewed, measured), Ok(()));
//! assert!(conforms(reviewed, "steps:\n- at: 0s\n  step: advance 30s\n- at: 32s\n  message: \"elapsed: 30s\"").is_err());
//! ```

/// How far a measured duration may be from the reviewed one.
const TOLERANCE_SECONDS: f64 = 1.0;

/// `Ok` when `measured` conforms to `reviewed` (both transcript YAML); otherwise the first
/// difference, with its line.
pub fn conforms(reviewed: &str, measured: &str) -> Result<(), String> {
    let reviewed = comparable(reviewed);
    let measured = comparable(measured);
    for (n, (want, got)) in reviewed.iter().zip(measured.iter()).enumerate() {
        let (want_shape, want_durations) = shape(want);
        let (got_shape, got_durations) = shape(got);
        let close = want_durations.len() == got_durations.len()
            && want_durations
                .iter()
                .zip(&got_durations)
                .all(|(a, b)| (a - b).abs() <= TOLERANCE_SECONDS);
        if want_shape != got_shape || !close {
            return Err(format!(
                "line {} of the compared transcript differs:\n  reviewed: {}\n  measured: {}",
                n + 1,
                want.trim(),
                got.trim()
            ));
        }
    }
    if reviewed.len() != measured.len() {
        let (which, line) = if reviewed.len() > measured.len() {
            ("missing", &reviewed[measured.len()])
        } else {
            ("unexpected", &measured[reviewed.len()])
        };
        return Err(format!(
            "the measured transcript has {} compared lines, the reviewed one {}: first {which} line: {}",
            measured.len(),
            reviewed.len(),
            line.trim()
        ));
    }
    Ok(())
}

/// The lines that are compared: no metrics block, no `skipped:` lists, VolumeAttached's
/// duration cut.
fn comparable(transcript: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut skipping: Option<usize> = None;
    for line in transcript.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(depth) = skipping {
            // A list item at the same depth as its key still belongs to it (`- reason: …`).
            let inside = indent > depth
                || (indent == depth && line.trim_start().starts_with("- ") && depth > 0);
            if inside && !line.trim().is_empty() {
                continue;
            }
            skipping = None;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("skipped:") || (indent == 0 && trimmed.starts_with("metrics:")) {
            skipping = Some(indent);
            continue;
        }
        let line = match (line.find("]: Attached to node "), line.find(" (duration: ")) {
            (Some(_), Some(at)) => match line[at..].find(')') {
                Some(end) => format!("{}{}", &line[..at], &line[at + end + 1..]),
                None => line.to_owned(),
            },
            _ => line.to_owned(),
        };
        lines.push(line);
    }
    lines
}

/// `text` with VolumeAttached's duration cut and every other Go duration replaced by `<d>`.
pub(crate) fn shape_of(text: &str) -> String {
    comparable(text)
        .iter()
        .map(|line| shape(line).0)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The line with every Go duration replaced by `<d>`, and the durations in seconds.
fn shape(line: &str) -> (String, Vec<f64>) {
    let bytes = line.as_bytes();
    let mut shape = String::with_capacity(line.len());
    let mut durations = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = bytes[i].is_ascii_digit()
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.'));
        if starts && let Some((seconds, len)) = duration_at(&line[i..]) {
            shape.push_str("<d>");
            durations.push(seconds);
            i += len;
            continue;
        }
        // Copy one whole character.
        let width = line[i..].chars().next().map_or(1, char::len_utf8);
        shape.push_str(&line[i..i + width]);
        i += width;
    }
    (shape, durations)
}

/// A Go duration at the start of `text` (`1h2m3.5s`, `14ms`, `0s`): its seconds and length.
fn duration_at(text: &str) -> Option<(f64, usize)> {
    const UNITS: [(&str, f64); 7] = [
        ("ns", 1e-9),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("h", 3600.0),
        ("m", 60.0),
        ("s", 1.0),
    ];
    let mut seconds = 0.0;
    let mut at = 0;
    let mut parts = 0;
    loop {
        let rest = &text[at..];
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            break;
        }
        let Ok(number) = rest[..digits].parse::<f64>() else {
            break;
        };
        let after = &rest[digits..];
        let Some((unit, scale)) = UNITS.iter().find(|(unit, _)| after.starts_with(unit)) else {
            break;
        };
        let end = at + digits + unit.len();
        // A unit glued to more letters (`5min`, `6f1c`) is not a duration.
        if text[end..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() && !c.is_ascii_digit())
            && !UNITS.iter().any(|(u, _)| text[end..].starts_with(u))
        {
            break;
        }
        seconds += number * scale;
        at = end;
        parts += 1;
    }
    (parts > 0).then_some((seconds, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_found_in_text_and_ids_are_not() {
        let (shape_of, found) = shape(
            "message: \"[pvc-6f1c]: migration failed - elapsed: 1m30.5s, timeout: 5m0s\" at: 14ms count: 1",
        );
        assert_eq!(
            shape_of,
            "message: \"[pvc-6f1c]: migration failed - elapsed: <d>, timeout: <d>\" at: <d> count: 1"
        );
        assert_eq!(found, vec![90.5, 300.0, 0.014]);
    }

    #[test]
    fn volume_attached_duration_skips_and_metrics_are_not_compared() {
        let reviewed = "steps:\n- at: 0s\n  step: attach\n  skipped:\n  - reason: VolumeAttached\n    cause: pv_not_found\n  events:\n  - message: \"[pvc-1]: Attached to node node-a (duration: 14ms)\"\n    count: 1\nmetrics:\n  \"a\": 1\n";
        let measured = "steps:\n- at: 0s\n  step: attach\n  events:\n  - message: \"[pvc-1]: Attached to node node-a (duration: 3.2s)\"\n    count: 1\n";
        assert_eq!(conforms(reviewed, measured), Ok(()));
        let wrong_count = measured.replace("count: 1", "count: 2");
        assert!(conforms(reviewed, &wrong_count).is_err());
        let missing = "steps:\n- at: 0s\n  step: attach\n";
        let error = conforms(reviewed, missing).expect_err("a missing event");
        assert!(error.contains("first missing line"), "{error}");
    }
}
