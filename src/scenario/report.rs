//! A suite's results as people and machines read them: human text (a line per scenario, a
//! summary, and for a failing scenario its timeline and the diff against its snapshot), the
//! JSON contract of `docs/scenarios.md` §5, and JUnit XML (one testcase per scenario, named by
//! file, or one per step with [`JunitGranularity::Step`]).

use serde::Serialize;

use super::runner::RunResult;
use super::timeline::Timeline;
use super::transcript::{Outcome, StepRecord};

/// One scenario's verdict.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Its name (when it loaded and ran).
    pub name: String,
    /// Its file.
    pub file: String,
    /// The run, if it ran.
    pub run: Option<RunResult>,
    /// Everything that failed: expectations, step errors, snapshot difference, run errors.
    pub failures: Vec<String>,
    /// The snapshot diff (old → new), if the transcript differs from its snapshot.
    pub snapshot_diff: Option<(String, String)>,
    /// Wall time the run took, in seconds (JUnit `time`).
    pub seconds: f64,
    /// Remarks that are not failures (a new snapshot waiting for review).
    pub notes: Vec<String>,
}

impl Verdict {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// `--format json`: exactly `docs/scenarios.md` §5.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    /// Every scenario.
    pub scenarios: Vec<JsonScenario<'a>>,
    /// How many passed.
    pub passed: usize,
    /// How many failed.
    pub failed: usize,
}

/// One scenario in the JSON report.
#[derive(Debug, Serialize)]
pub struct JsonScenario<'a> {
    /// Name.
    pub name: &'a str,
    /// File.
    pub file: &'a str,
    /// Passed.
    pub passed: bool,
    /// Failures.
    pub failures: &'a [String],
    /// Steps.
    pub steps: &'a [StepRecord],
    /// With `--kubeconfig --keep`: the suffix of the kept objects' names.
    #[serde(rename = "keptSuffix", skip_serializing_if = "Option::is_none")]
    pub kept_suffix: Option<&'a str>,
    /// The run in time (additive, for the visual report; absent when it did not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<&'a Timeline>,
    /// The transcript against its snapshot, as diff lines (` ` kept, `-` snapshot, `+` this
    /// run, `@@` a new hunk); absent when they are the same.
    #[serde(rename = "snapshotDiff", skip_serializing_if = "Option::is_none")]
    pub snapshot_diff: Option<Vec<String>>,
}

/// The JSON report text (one line of JSON, then a newline).
pub fn json(verdicts: &[Verdict]) -> String {
    let report = JsonReport {
        scenarios: verdicts
            .iter()
            .map(|v| JsonScenario {
                name: &v.name,
                file: &v.file,
                passed: v.passed(),
                failures: &v.failures,
                steps: v
                    .run
                    .as_ref()
                    .map(|r| r.transcript.steps.as_slice())
                    .unwrap_or(&[]),
                kept_suffix: v.run.as_ref().and_then(|r| r.kept.as_deref()),
                timeline: v.run.as_ref().map(|r| &r.timeline),
                snapshot_diff: v
                    .snapshot_diff
                    .as_ref()
                    .map(|(old, new)| diff_lines(old, new)),
            })
            .collect(),
        passed: verdicts.iter().filter(|v| v.passed()).count(),
        failed: verdicts.iter().filter(|v| !v.passed()).count(),
    };
    // Plain data: serializing cannot fail.
    let mut text = serde_json::to_string(&report).unwrap_or_default();
    text.push('\n');
    text
}

/// The snapshot diff as lines without the indent the terminal text has.
fn diff_lines(old: &str, new: &str) -> Vec<String> {
    super::snapshot::diff(old, new, false)
        .lines()
        .map(|line| line.strip_prefix("  ").unwrap_or(line).to_owned())
        .collect()
}

/// Human text; `color` adds ANSI colours.
pub fn human(verdicts: &[Verdict], color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\u{1b}[{code}m{text}\u{1b}[0m")
        } else {
            text.to_owned()
        }
    };
    let mut out = String::new();
    for v in verdicts {
        let mark = if v.passed() {
            paint("32", "PASS")
        } else {
            paint("31;1", "FAIL")
        };
        let detail = match &v.run {
            Some(run) => {
                let events: usize = run.transcript.steps.iter().map(|s| s.events.len()).sum();
                let last = run
                    .transcript
                    .steps
                    .last()
                    .map(|s| s.at.as_str())
                    .unwrap_or("0s");
                format!(
                    "{} steps, {events} events, last step at {last} virtual",
                    run.transcript.steps.len()
                )
            }
            None => "not run".to_owned(),
        };
        out.push_str(&format!("{mark} {} ({}) {detail}\n", v.name, v.file));
        for note in &v.notes {
            out.push_str(&format!("     {note}\n"));
        }
    }
    for v in verdicts.iter().filter(|v| !v.passed()) {
        out.push('\n');
        out.push_str(&paint("1", &format!("{} ({})", v.name, v.file)));
        out.push('\n');
        for failure in &v.failures {
            out.push_str(&format!("  {} {failure}\n", paint("31", "✗")));
        }
        if let Some(run) = &v.run {
            out.push_str("  timeline:\n");
            for step in &run.transcript.steps {
                out.push_str(&timeline_line(step));
            }
        }
        if let Some((old, new)) = &v.snapshot_diff {
            out.push_str("  transcript vs snapshot (- snapshot, + this run):\n");
            out.push_str(&super::snapshot::diff(old, new, color));
        }
    }
    let passed = verdicts.iter().filter(|v| v.passed()).count();
    let failed = verdicts.len() - passed;
    let summary = format!(
        "\n{} scenarios: {passed} passed, {failed} failed\n",
        verdicts.len()
    );
    out.push_str(&if failed == 0 {
        paint("32", &summary)
    } else {
        paint("31", &summary)
    });
    out
}

fn timeline_line(step: &StepRecord) -> String {
    let outcome = match &step.outcome {
        Outcome::Ok(_) => "ok".to_owned(),
        Outcome::Error { code, message } => format!("{code}: {message}"),
        Outcome::Failed { failed } => format!("failed: {failed}"),
    };
    let mut out = format!("    {:>9}  {}  → {outcome}\n", step.at, step.step);
    for e in &step.events {
        out.push_str(&format!(
            "    {:>9}    {} {} on {}/{} (count {}): {}\n",
            "", e.event_type, e.reason, e.namespace, e.name, e.count, e.message
        ));
    }
    for s in &step.skipped {
        out.push_str(&format!(
            "    {:>9}    not written: {} ({})\n",
            "", s.reason, s.cause
        ));
    }
    out
}

/// How many testcases JUnit XML has per scenario.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum JunitGranularity {
    /// One testcase per scenario, named by its file (the default).
    #[default]
    Scenario,
    /// One testsuite per scenario (named by its file) with one testcase per step, plus a
    /// `transcript` testcase for what no step owns (the snapshot difference, a run error).
    Step,
}

/// JUnit XML: one testsuite, one testcase per scenario named by its file.
pub fn junit(verdicts: &[Verdict]) -> String {
    junit_with(verdicts, JunitGranularity::Scenario)
}

/// JUnit XML at `granularity`.
///
/// ```
/// use csi_events::scenario::report::{junit_with, JunitGranularity};
/// let xml = junit_with(&[], JunitGranularity::Step);
/// assert!(xml.contains("tests=\"0\""));
/// ```
pub fn junit_with(verdicts: &[Verdict], granularity: JunitGranularity) -> String {
    match granularity {
        JunitGranularity::Scenario => junit_scenarios(verdicts),
        JunitGranularity::Step => junit_steps(verdicts),
    }
}

fn junit_scenarios(verdicts: &[Verdict]) -> String {
    let failed = verdicts.iter().filter(|v| !v.passed()).count();
    let total: f64 = verdicts.iter().map(|v| v.seconds).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"csi-events\" tests=\"{}\" failures=\"{failed}\" time=\"{total:.3}\">\n",
        verdicts.len()
    ));
    out.push_str(&format!(
        "  <testsuite name=\"scenarios\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" time=\"{total:.3}\">\n",
        verdicts.len()
    ));
    for v in verdicts {
        out.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"scenarios\" time=\"{:.3}\"",
            xml(&v.file),
            v.seconds
        ));
        if v.passed() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        let first = v.failures.first().map(String::as_str).unwrap_or("failed");
        let mut body = v.failures.join("\n");
        if let Some(run) = &v.run {
            body.push_str("\n\ntimeline:\n");
            for step in &run.transcript.steps {
                body.push_str(&timeline_line(step));
            }
        }
        if let Some((old, new)) = &v.snapshot_diff {
            body.push_str("\ntranscript vs snapshot:\n");
            body.push_str(&super::snapshot::diff(old, new, false));
        }
        out.push_str(&format!(
            "      <failure message=\"{}\">{}</failure>\n",
            xml(first),
            xml(&body)
        ));
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// One step's testcase: its failures are those recorded at the step (a refusal the step
/// expects is not one).
struct StepCase {
    name: String,
    failures: Vec<String>,
    detail: String,
}

fn step_cases(v: &Verdict) -> Vec<StepCase> {
    let mut cases = Vec::new();
    let mut owned: Vec<&str> = Vec::new();
    if let Some(run) = &v.run {
        for (i, step) in run.transcript.steps.iter().enumerate() {
            let line = run.timeline.steps.get(i).map(|s| s.line).unwrap_or(0);
            let failures: Vec<String> = run
                .timeline
                .problems
                .iter()
                .filter(|p| p.step == i && !p.expected)
                .map(|p| p.text.clone())
                .collect();
            cases.push(StepCase {
                name: format!(
                    "step {:02} (line {line}) at {}: {}",
                    i + 1,
                    step.at,
                    step.step
                ),
                failures,
                detail: timeline_line(step),
            });
        }
        owned.extend(run.failures.iter().map(String::as_str));
    }
    // What no step owns: the snapshot difference, a missing snapshot, a run that did not start.
    let mut rest: Vec<String> = Vec::new();
    for failure in &v.failures {
        match owned.iter().position(|o| *o == failure) {
            Some(i) => {
                owned.remove(i);
            }
            None => rest.push(failure.clone()),
        }
    }
    if !rest.is_empty() || v.run.is_none() {
        let mut detail = String::new();
        if let Some((old, new)) = &v.snapshot_diff {
            detail.push_str("transcript vs snapshot:\n");
            detail.push_str(&super::snapshot::diff(old, new, false));
        }
        cases.push(StepCase {
            name: "transcript".to_owned(),
            failures: rest,
            detail,
        });
    }
    cases
}

fn junit_steps(verdicts: &[Verdict]) -> String {
    let all: Vec<(&Verdict, Vec<StepCase>)> = verdicts.iter().map(|v| (v, step_cases(v))).collect();
    let tests: usize = all.iter().map(|(_, c)| c.len()).sum();
    let failed: usize = all
        .iter()
        .map(|(_, c)| c.iter().filter(|c| !c.failures.is_empty()).count())
        .sum();
    let total: f64 = verdicts.iter().map(|v| v.seconds).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"csi-events\" tests=\"{tests}\" failures=\"{failed}\" time=\"{total:.3}\">\n"
    ));
    for (v, cases) in &all {
        let suite_failed = cases.iter().filter(|c| !c.failures.is_empty()).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{suite_failed}\" errors=\"0\" time=\"{:.3}\">\n",
            xml(&v.file),
            cases.len(),
            v.seconds
        ));
        for case in cases {
            out.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\"",
                xml(&case.name),
                xml(&v.file)
            ));
            if case.failures.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            let first = case
                .failures
                .first()
                .map(String::as_str)
                .unwrap_or("failed");
            let mut body = case.failures.join("\n");
            if !case.detail.is_empty() {
                body.push_str("\n\n");
                body.push_str(&case.detail);
            }
            out.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                xml(first),
                xml(&body)
            ));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}
