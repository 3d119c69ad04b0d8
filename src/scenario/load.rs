//! Loading scenario files: read, parse strictly, check every name, reference and duration,
//! and report every problem at its line with a hint. Nothing runs until every file loads.
//!
//! ```
//! use csi_events::scenario::load::load_text;
//! let problems = load_text("x.yaml", "name: x\nsteps:\n  - atach: {volume: v, node: n}\n").unwrap_err();
//! assert!(problems.problems[0].help.as_deref().unwrap().contains("did you mean `attach`"));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diagnostics::{FileProblems, Problem};
use super::format::{
    AttachStep, DeleteNodeStep, DetachStep, DurationText, EventMatcher, FaultStep, Located,
    Position, STEP_NAMES, ScenarioFile, Step,
};
use super::plan::{
    Action, EventExpectation, FaultRule, PlannedStep, Scenario, Volume, parse_duration,
};
use crate::duration::GoDuration;
use crate::ids::{ClaimName, NodeName, VolumeId};
use crate::model::AccessMode;

/// The gRPC codes `expectError` accepts.
pub const ERROR_CODES: &[&str] = &[
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "FailedPrecondition",
    "Aborted",
    "Internal",
    "Unavailable",
];

/// The scenario files under `paths` (files as given, directories: their `*.yaml` / `*.yml`
/// files, sorted, not recursing into hidden directories).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            collect_dir(path, &mut found)
                .map_err(|e| format!("cannot read directory {}: {e}", path.display()))?;
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(format!(
                "{}: no such file or directory (give scenario files or directories holding them)",
                path.display()
            ));
        }
    }
    Ok(files)
}

fn collect_dir(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            collect_dir(&path, found)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            found.push(path);
        }
    }
    Ok(())
}

/// Loads every file; either all scenarios or the problems of every bad file (and duplicate
/// names across files).
pub fn load_all(files: &[PathBuf]) -> Result<Vec<Scenario>, Vec<FileProblems>> {
    let mut scenarios = Vec::new();
    let mut failed = Vec::new();
    for file in files {
        let display = file.display().to_string();
        match std::fs::read_to_string(file) {
            Ok(text) => match load_text(&display, &text) {
                Ok(scenario) => scenarios.push((scenario, text)),
                Err(problems) => failed.push(problems),
            },
            Err(e) => failed.push(FileProblems {
                path: display.clone(),
                source: String::new(),
                problems: vec![Problem::new(
                    Position::default(),
                    format!("cannot read {display}: {e}"),
                )],
            }),
        }
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (scenario, text) in &scenarios {
        if let Some(first) = seen.get(&scenario.name) {
            failed.push(FileProblems {
                path: scenario.file.clone(),
                source: text.clone(),
                problems: vec![
                    Problem::new(
                        name_position(text),
                        format!(
                            "the scenario name `{}` is already used by {first}",
                            scenario.name
                        ),
                    )
                    .label("duplicate name")
                    .help("names are unique in a suite: each names its snapshot"),
                ],
            });
        } else {
            seen.insert(scenario.name.clone(), scenario.file.clone());
        }
    }
    if failed.is_empty() {
        Ok(scenarios.into_iter().map(|(s, _)| s).collect())
    } else {
        Err(failed)
    }
}

fn name_position(text: &str) -> Position {
    text.lines()
        .position(|l| l.starts_with("name:"))
        .map(|i| Position {
            line: i as u32 + 1,
            column: 7,
        })
        .unwrap_or_default()
}

/// Parses and checks one file's text; `path` names it in diagnostics and in the scenario.
pub fn load_text(path: &str, text: &str) -> Result<Scenario, FileProblems> {
    // Generated scenarios (10 000 volumes, 50 000 nodes) are far past the parser's default
    // node budget; the limits stay, raised to what a scenario of that size needs.
    let options = serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_nodes: 20_000_000,
            max_events: 50_000_000,
        },
    };
    // Every structural problem, not only the first: after a parse error the construct it is
    // in (a list item, or a key with its block) is blanked out — lines kept, so positions
    // stay — and the rest is parsed again. Each line is blanked at most once, so this ends.
    let mut problems = Vec::new();
    let mut working = text.to_owned();
    let mut damaged = false;
    let file = loop {
        match serde_saphyr::from_str_with_options::<ScenarioFile>(&working, options.clone()) {
            Ok(file) => break Some(file),
            Err(error) => {
                let problem = parse_problem(&error, &working);
                let at = problem.at;
                // A problem before the last one is what the blanking caused (an emptied
                // list): not reported, and the checks that need the whole file are skipped.
                let consequential = problems.last().is_some_and(|last: &Problem| {
                    at <= last.at || problem.message.contains("end of input")
                });
                if consequential {
                    damaged = true;
                } else {
                    problems.push(problem);
                }
                if problems.len() >= MAX_PARSE_PROBLEMS || !blank_construct(&mut working, at) {
                    break None;
                }
            }
        }
    };
    if let Some(file) = file.filter(|_| !damaged) {
        let mut checker = Checker::default();
        let scenario = checker.check(path, file);
        if problems.is_empty() && checker.problems.is_empty() {
            return Ok(scenario);
        }
        problems.extend(checker.problems);
    }
    problems.sort_by_key(|p| p.at);
    Err(FileProblems {
        path: path.to_owned(),
        source: text.to_owned(),
        problems,
    })
}

/// How many parse problems one file reports before the rest is left unread.
const MAX_PARSE_PROBLEMS: usize = 50;

/// Blanks the construct a parse error at `at` stands in: the list item on that line (`- …`
/// and the lines indented under it), or the key on that line and its block. Lines become
/// empty rather than removed, so every later position is unchanged. False when there is
/// nothing left to blank (the same error would come back).
fn blank_construct(text: &mut String, at: Position) -> bool {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let Some(index) = (at.line as usize).checked_sub(1) else {
        return false;
    };
    let Some(line) = lines.get(index) else {
        return false;
    };
    if line.trim().is_empty() {
        return false;
    }
    let indent = line.len() - line.trim_start().len();
    let mut end = index + 1;
    while let Some(next) = lines.get(end) {
        let trimmed = next.trim_start();
        let deeper = next.len() - trimmed.len() > indent;
        if !(trimmed.is_empty() || trimmed.starts_with('#') || deeper) {
            break;
        }
        end += 1;
    }
    for line in &mut lines[index..end] {
        line.clear();
    }
    let mut blanked = lines.join("\n");
    blanked.push('\n');
    *text = blanked;
    true
}

fn position_of(location: serde_saphyr::Location) -> Position {
    Position {
        line: u32::try_from(location.line()).unwrap_or(u32::MAX),
        column: u32::try_from(location.column()).unwrap_or(u32::MAX),
    }
}

/// A parse error as a problem with a hint.
fn parse_problem(error: &serde_saphyr::Error, text: &str) -> Problem {
    use serde_saphyr::Error as E;
    let error = error.without_snippet();
    let at = error.location().map(position_of).unwrap_or_default();
    match error {
        E::SerdeUnknownVariant {
            variant, expected, ..
        } if expected.as_slice() == STEP_NAMES => {
            Problem::new(at, format!("unknown step `{variant}`"))
                .label("not a step")
                .help(format!(
                    "{}the steps are: {}",
                    did_you_mean(variant, expected.iter().copied()),
                    STEP_NAMES.join(", ")
                ))
        }
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => Problem::new(at, format!("unknown value `{variant}`"))
            .label("not allowed here")
            .help(format!(
                "{}expected one of: {}",
                did_you_mean(variant, expected.iter().copied()),
                expected.join(", ")
            )),
        E::SerdeUnknownField {
            field, expected, ..
        } => Problem::new(at, format!("unknown key `{field}`"))
            .label("not a key here")
            .help(format!(
                "{}the keys here are: {}",
                did_you_mean(field, expected.iter().copied()),
                expected.join(", ")
            )),
        E::SerdeMissingField { field, .. } => Problem::new(at, format!("missing key `{field}`"))
            .label(format!("`{field}` is required here")),
        other => {
            let message = strip_location(&other.to_string());
            let line = text
                .lines()
                .nth(at.line.saturating_sub(1) as usize)
                .unwrap_or("");
            if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
                let key = rest.split(',').next().unwrap_or(rest);
                return Problem::new(at, format!("duplicate key `{key}`"))
                    .label("given twice")
                    .help("a key appears once per mapping; remove one of them");
            }
            if message_mentions_untagged(&message) && line.contains("deleteNode") {
                return Problem::new(at, "deleteNode takes a node name or {name, observed}")
                    .label("neither")
                    .help(
                        "write `deleteNode: node-a` or `deleteNode: {name: node-a, observed: false}`",
                    );
            }
            value_problem(at, &message, line)
        }
    }
}

/// A value of the wrong kind, said as what the key takes, with an example — never as the
/// parser's type names (`u16`, `string scalar`, `untagged enum`).
fn value_problem(at: Position, message: &str, line: &str) -> Problem {
    let key = key_before(line, at.column);
    if let Some((takes, example)) = key.and_then(value_of_key) {
        let key = key.unwrap_or_default();
        return Problem::new(at, format!("`{key}` takes {takes}"))
            .label("here")
            .help(format!("for example `{example}`"));
    }
    let kind = if message_mentions_untagged(message) {
        "a text or a number, e.g. `\"300\"` or `300`"
    } else if message.contains("sequence") {
        "a list, e.g. `[a, b]` or one `- item` per line"
    } else if message.contains("mapping") || message.contains("struct") {
        "a mapping, e.g. `{key: value}` or one `key: value` per line"
    } else if message.contains("floating point") || message.contains("f64") {
        "a number, e.g. `1` or `0.5`"
    } else if [
        "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "integer",
    ]
    .iter()
    .any(|t| message.contains(t))
    {
        "a whole number, e.g. `3`"
    } else if message.contains("bool") {
        "`true` or `false`"
    } else if message.contains("string") || message.contains("scalar") {
        "a text value, e.g. `node-a`"
    } else {
        return Problem::new(at, message.to_owned());
    };
    Problem::new(at, format!("expected {kind}")).label("not that")
}

/// The key whose value starts at `column` (1-based) of `line`: the last `key:` before it.
fn key_before(line: &str, column: u32) -> Option<&str> {
    let end = line
        .char_indices()
        .nth((column as usize).saturating_sub(1))
        .map(|(i, _)| i)
        .unwrap_or(line.len());
    let before = line[..end].trim_end().strip_suffix(':')?;
    let start = before
        .rfind(|c: char| c.is_whitespace() || c == '{' || c == ',' || c == '-')
        .map(|i| i + 1)
        .unwrap_or(0);
    let key = &before[start..];
    (!key.is_empty()).then_some(key)
}

/// What a key of the file format takes, and an example.
fn value_of_key(key: &str) -> Option<(&'static str, &'static str)> {
    const DURATION: &str = "a duration such as `30s`, `2m15s` or `153ms`";
    Some(match key {
        "seed" => ("a whole number from 0 up", "seed: 7"),
        "nodes" => ("a list of node names", "nodes: [node-a, node-b]"),
        "claims" => ("a list of claims (namespace/name)", "claims: [vms/disk-0]"),
        "volumes" => (
            "a list of volumes",
            "volumes: [{id: pvc-1, claim: vms/disk-0, accessMode: RWX}]",
        ),
        "cluster" => (
            "a mapping of nodes, claims and volumes",
            "cluster: {nodes: [node-a]}",
        ),
        "steps" => (
            "a list of steps",
            "steps: [{attach: {volume: pvc-1, node: node-a}}]",
        ),
        "attach" => ("a mapping", "attach: {volume: pvc-1, node: node-a}"),
        "detach" => ("a mapping", "detach: {volume: pvc-1, node: node-a}"),
        "took" => (DURATION, "took: 150ms"),
        "advance" => (DURATION, "advance: 2m15s"),
        "down" => (DURATION, "restartController: {down: 30s}"),
        "latency" => (DURATION, "latency: 2s"),
        "restartController" => (
            "an empty mapping or one with `down`",
            "restartController: {down: 30s}",
        ),
        "status" => ("an HTTP status code from 100 to 599", "status: 503"),
        "times" => ("a whole number of requests", "times: 2"),
        "count" => ("a whole number", "count: 2"),
        "retryAfter" => ("whole seconds or a duration", "retryAfter: 20s"),
        "value" => ("a number", "value: 1"),
        "labels" => (
            "a mapping of label names to values",
            "labels: {result: success}",
        ),
        "expectEvents" => (
            "a list of event matchers",
            "expectEvents: [{type: Normal, reason: VolumeAttached}]",
        ),
        "expectMetric" => (
            "a mapping of name, labels and value",
            "expectMetric: {name: migration_active_migrations, value: 1}",
        ),
        "fault" => (
            "a mapping of verb, resource and what to answer",
            "fault: {verb: create, resource: events, status: 503, times: 1}",
        ),
        "observed" | "loseResponse" | "claimInContext" => ("`true` or `false`", "observed: false"),
        "name" | "description" | "id" | "claim" | "node" | "volume" | "verb" | "resource"
        | "namespace" | "reason" | "message" | "messageContains" | "type" | "expectError"
        | "addNode" | "createClaim" | "deleteClaim" => ("a text value", "node: node-a"),
        "migrationTimeoutSeconds" => (
            "seconds as text or a number",
            "migrationTimeoutSeconds: \"300\"",
        ),
        _ => return None,
    })
}

fn message_mentions_untagged(message: &str) -> bool {
    message.contains("did not match any variant")
}

/// Cuts a trailing ` at line X column Y` from a parser message (the diagnostic shows it).
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// `did you mean `x`? ` when a candidate is close to `word` (edit distance), else empty.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(&word.to_lowercase(), &candidate.to_lowercase());
        let limit = (candidate.len().max(word.len()) / 3).max(1) + 1;
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    match best {
        Some((_, candidate)) => format!("did you mean `{candidate}`? "),
        None => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()]
}

/// Whether `name` is a DNS-1123 subdomain (what node, PV and PVC names must be).
pub fn dns1123_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("must be 1 to 253 characters".into());
    }
    for label in name.split('.') {
        dns1123_label_chars(label)?;
    }
    Ok(())
}

/// Whether `name` is a DNS-1123 label (what a namespace must be).
pub fn dns1123_label(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err("must be 1 to 63 characters".into());
    }
    dns1123_label_chars(name)
}

fn dns1123_label_chars(label: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if label.is_empty()
        || !label.chars().all(ok_char)
        || !alnum(label.chars().next())
        || !alnum(label.chars().last())
    {
        return Err("must consist of lower case letters, digits and '-' (or '.' between parts), and start and end with a letter or digit".into());
    }
    Ok(())
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
    nodes: BTreeMap<String, Position>,
    claims: BTreeMap<String, Position>,
    volumes: BTreeMap<String, Position>,
}

impl Checker {
    fn problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    fn check(&mut self, path: &str, file: ScenarioFile) -> Scenario {
        if let Err(why) = dns1123_subdomain(&file.name.value) {
            self.problem(
                Problem::new(
                    file.name.at,
                    format!("bad scenario name `{}`: {why}", file.name.value),
                )
                .label("not a DNS-1123 name")
                .help("scenario names name their snapshot file; e.g. rwx-migration-completes"),
            );
        }
        let nodes: Vec<NodeName> = file
            .cluster
            .nodes
            .iter()
            .map(|n| self.declare_node(n))
            .collect();
        // Nodes added by steps are known too (declared at their first occurrence).
        for step in &file.steps {
            if let Step::AddNode(node) = &step.value
                && !self.nodes.contains_key(&node.value)
            {
                self.declare_node(node);
            }
        }
        let claims: Vec<ClaimName> = file
            .cluster
            .claims
            .iter()
            .filter_map(|c| self.declare_claim(c, "claim"))
            .collect();
        let mut volumes = Vec::new();
        for spec in &file.cluster.volumes {
            if let Some(at) = self.volumes.get(&spec.id.value) {
                let line = at.line;
                self.problem(
                    Problem::new(
                        spec.id.at,
                        format!("volume `{}` is declared twice", spec.id.value),
                    )
                    .label("second declaration")
                    .help(format!("its first declaration is on line {line}")),
                );
                continue;
            }
            if let Err(why) = dns1123_subdomain(&spec.id.value) {
                self.problem(
                    Problem::new(
                        spec.id.at,
                        format!("bad volume id `{}`: {why}", spec.id.value),
                    )
                    .label("not a PersistentVolume name")
                    .help("a volume id is its PV's name, e.g. pvc-6f1c"),
                );
            }
            self.volumes.insert(spec.id.value.clone(), spec.id.at);
            // A claim named only by a volume is a claim that does not exist (PVC missing).
            let claim = spec.claim.as_ref().and_then(|c| self.parse_claim(c));
            // Any text is a valid volume context value: the model reads it (empty, not a
            // number, out of range: the default or a clamp, with a warning; `docs/lifecycle.md` §Time).
            volumes.push(Volume {
                id: VolumeId::new(spec.id.value.clone()),
                claim,
                mode: spec
                    .access_mode
                    .as_ref()
                    .map(|m| m.value)
                    .unwrap_or(AccessMode::Rwo),
                migration_timeout_seconds: spec
                    .migration_timeout_seconds
                    .as_ref()
                    .map(|t| t.value.0.clone()),
                claim_in_context: spec.claim_in_context,
            });
        }
        // Claims created by steps are known too.
        for step in &file.steps {
            if let Step::CreateClaim(claim) = &step.value
                && !self.claims.contains_key(&claim.value)
            {
                self.declare_claim(claim, "claim");
            }
        }
        for spec in &file.cluster.volumes {
            if let Some(claim) = &spec.claim
                && !self.claims.contains_key(&claim.value)
            {
                self.claims.insert(claim.value.clone(), claim.at);
            }
        }
        let steps = file
            .steps
            .iter()
            .filter_map(|step| self.check_step(step))
            .collect();
        Scenario {
            name: file.name.value,
            description: file.description,
            seed: file.seed.unwrap_or(0),
            file: path.to_owned(),
            nodes,
            claims,
            volumes,
            steps,
        }
    }

    fn declare_node(&mut self, node: &Located<String>) -> NodeName {
        if let Err(why) = dns1123_subdomain(&node.value) {
            self.problem(
                Problem::new(node.at, format!("bad node name `{}`: {why}", node.value))
                    .label("not a DNS-1123 name")
                    .help("node names look like node-a or worker-1.example"),
            );
        } else if let Some(first) = self.nodes.get(&node.value) {
            let line = first.line;
            self.problem(
                Problem::new(node.at, format!("node `{}` is declared twice", node.value))
                    .label("second declaration")
                    .help(format!("its first declaration is on line {line}")),
            );
        }
        self.nodes.entry(node.value.clone()).or_insert(node.at);
        NodeName::new(node.value.clone())
    }

    fn parse_claim(&mut self, claim: &Located<String>) -> Option<ClaimName> {
        let parsed: ClaimName = match claim.value.parse() {
            Ok(parsed) => parsed,
            Err(e) => {
                self.problem(Problem::new(claim.at, e.to_string()).label("not namespace/name"));
                return None;
            }
        };
        let mut ok = true;
        if let Err(why) = dns1123_label(parsed.namespace()) {
            ok = false;
            self.problem(
                Problem::new(
                    claim.at,
                    format!(
                        "bad namespace `{}` in claim `{}`: {why}",
                        parsed.namespace(),
                        claim.value
                    ),
                )
                .label("not a DNS-1123 label"),
            );
        }
        if let Err(why) = dns1123_subdomain(parsed.name()) {
            ok = false;
            self.problem(
                Problem::new(
                    claim.at,
                    format!(
                        "bad claim name `{}` in `{}`: {why}",
                        parsed.name(),
                        claim.value
                    ),
                )
                .label("not a DNS-1123 name"),
            );
        }
        ok.then_some(parsed)
    }

    fn declare_claim(&mut self, claim: &Located<String>, _what: &str) -> Option<ClaimName> {
        let parsed = self.parse_claim(claim)?;
        if let Some(first) = self.claims.get(&claim.value) {
            let line = first.line;
            self.problem(
                Problem::new(
                    claim.at,
                    format!("claim `{}` is declared twice", claim.value),
                )
                .label("second declaration")
                .help(format!("its first declaration is on line {line}")),
            );
            return None;
        }
        self.claims.insert(claim.value.clone(), claim.at);
        Some(parsed)
    }

    fn known_node(&mut self, node: &Located<String>) -> NodeName {
        if !self.nodes.contains_key(&node.value) {
            let names: Vec<String> = self.nodes.keys().cloned().collect();
            self.problem(
                Problem::new(node.at, format!("unknown node `{}`", node.value))
                    .label("not declared")
                    .help(format!(
                        "{}declare it in cluster.nodes or with an addNode step; known nodes: {}",
                        did_you_mean(&node.value, names.iter().map(String::as_str)),
                        list_or_none(&names)
                    )),
            );
        }
        NodeName::new(node.value.clone())
    }

    fn known_volume(&mut self, volume: &Located<String>) -> VolumeId {
        if !self.volumes.contains_key(&volume.value) {
            let names: Vec<String> = self.volumes.keys().cloned().collect();
            self.problem(
                Problem::new(volume.at, format!("unknown volume `{}`", volume.value))
                    .label("not declared")
                    .help(format!(
                        "{}declare it in cluster.volumes; known volumes: {}",
                        did_you_mean(&volume.value, names.iter().map(String::as_str)),
                        list_or_none(&names)
                    )),
            );
        }
        VolumeId::new(volume.value.clone())
    }

    fn known_claim(&mut self, claim: &Located<String>) -> Option<ClaimName> {
        let parsed = self.parse_claim(claim)?;
        if !self.claims.contains_key(&claim.value) {
            let names: Vec<String> = self.claims.keys().cloned().collect();
            self.problem(
                Problem::new(claim.at, format!("unknown claim `{}`", claim.value))
                    .label("not declared")
                    .help(format!(
                        "{}declare it in cluster.claims, as a volume's claim or with createClaim; known claims: {}",
                        did_you_mean(&claim.value, names.iter().map(String::as_str)),
                        list_or_none(&names)
                    )),
            );
            return None;
        }
        Some(parsed)
    }

    fn duration(&mut self, text: &Located<DurationText>) -> Duration {
        match parse_duration(&text.value.0) {
            Ok(d) => d,
            Err(why) => {
                self.problem(
                    Problem::new(text.at, format!("bad duration: {why}")).label("not a duration"),
                );
                Duration::ZERO
            }
        }
    }

    /// An `expectMetric` must name a series the runner reads (or it would read 0 and pass):
    /// the name with or without the `rds_csi_` prefix and a counter's `_total`, label names
    /// and values among those of that metric.
    fn known_metric(&mut self, name: &Located<String>, labels: &BTreeMap<String, String>) {
        let readings = super::readings::Readings::of(
            &crate::metrics::EventMetrics::default(),
            &crate::model::MigrationMetrics::default(),
        );
        let prefix = format!("{}_", super::readings::PREFIX);
        let short = |full: &str| -> String {
            let base = full.strip_prefix(&prefix).unwrap_or(full);
            base.strip_suffix("_total").unwrap_or(base).to_owned()
        };
        let base = name.value.strip_prefix(&prefix).unwrap_or(&name.value);
        let series: Vec<&super::readings::Series> = readings
            .series()
            .iter()
            .filter(|s| short(&s.name) == base || s.name.strip_prefix(&prefix) == Some(base))
            .collect();
        if series.is_empty() {
            let names: BTreeSet<String> =
                readings.series().iter().map(|s| short(&s.name)).collect();
            self.problem(
                Problem::new(name.at, format!("unknown metric `{}`", name.value))
                    .label("the runner reads no such metric")
                    .help(format!(
                        "{}the metrics are: {}",
                        did_you_mean(base, names.iter().map(String::as_str)),
                        names.iter().cloned().collect::<Vec<_>>().join(", ")
                    )),
            );
            return;
        }
        for (key, value) in labels {
            let values: BTreeSet<&str> = series
                .iter()
                .flat_map(|s| s.labels.iter())
                .filter(|(k, _)| *k == key.as_str())
                .map(|(_, v)| v.as_str())
                .collect();
            if values.is_empty() {
                let keys: BTreeSet<&str> = series
                    .iter()
                    .flat_map(|s| s.labels.iter().map(|(k, _)| *k))
                    .collect();
                self.problem(
                    Problem::new(name.at, format!("`{}` has no label `{key}`", name.value))
                        .label("unknown label")
                        .help(if keys.is_empty() {
                            "this metric has no labels: leave `labels` out".to_owned()
                        } else {
                            format!(
                                "{}its labels are: {}",
                                did_you_mean(key, keys.iter().copied()),
                                keys.iter().copied().collect::<Vec<_>>().join(", ")
                            )
                        }),
                );
            } else if !values.contains(value.as_str()) {
                self.problem(
                    Problem::new(
                        name.at,
                        format!("`{}` has no series with {key}=`{value}`", name.value),
                    )
                    .label("unknown label value")
                    .help(format!(
                        "{}{key} is one of: {}",
                        did_you_mean(value, values.iter().copied()),
                        values.iter().copied().collect::<Vec<_>>().join(", ")
                    )),
                );
            }
        }
    }

    /// `retryAfter`: whole seconds (`20`, as the HTTP header) or a Go duration (`20s`).
    fn retry_after(&mut self, text: &Located<super::format::Text>) -> Option<u32> {
        const HELP: &str = "write whole seconds (`20`) or a Go duration of whole seconds (`20s`, `1m30s`); the Retry-After header carries whole seconds";
        let raw = text.value.0.as_str();
        let seconds = if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
            raw.parse::<u32>().ok()
        } else {
            match parse_duration(raw) {
                Ok(d) if d.subsec_nanos() == 0 => u32::try_from(d.as_secs()).ok(),
                Ok(_) => {
                    self.problem(
                        Problem::new(text.at, format!("retryAfter `{raw}` is not whole seconds"))
                            .label("a fraction of a second")
                            .help(HELP),
                    );
                    return None;
                }
                Err(why) => {
                    self.problem(
                        Problem::new(text.at, format!("bad retryAfter: {why}"))
                            .label("not seconds or a duration")
                            .help(HELP),
                    );
                    return None;
                }
            }
        };
        if seconds.is_none() {
            self.problem(
                Problem::new(text.at, format!("retryAfter `{raw}` is too long"))
                    .label("past 4294967295 seconds")
                    .help(HELP),
            );
        }
        seconds
    }

    fn code(&mut self, code: &Option<Located<String>>) -> Option<String> {
        let code = code.as_ref()?;
        if !ERROR_CODES.contains(&code.value.as_str()) {
            self.problem(
                Problem::new(code.at, format!("unknown gRPC code `{}`", code.value))
                    .label("not a code")
                    .help(format!(
                        "{}expectError takes one of: {}",
                        did_you_mean(&code.value, ERROR_CODES.iter().copied()),
                        ERROR_CODES.join(", ")
                    )),
            );
        }
        Some(code.value.clone())
    }

    fn check_step(&mut self, step: &Located<Step>) -> Option<PlannedStep> {
        let line = step.at.line;
        let (text, action) = match &step.value {
            Step::Attach(AttachStep {
                volume,
                node,
                took,
                expect_error,
            }) => {
                let volume = self.known_volume(volume);
                let node = self.known_node(node);
                let took = took.as_ref().map(|t| self.duration(t)).unwrap_or_default();
                let expect_error = self.code(expect_error);
                let mut text = format!("attach {volume} to {node}");
                if !took.is_zero() {
                    text.push_str(&format!(" (took {})", GoDuration::from_std(took)));
                }
                if let Some(code) = &expect_error {
                    text.push_str(&format!(", expecting {code}"));
                }
                (
                    text,
                    Action::Attach {
                        volume,
                        node,
                        took,
                        expect_error,
                    },
                )
            }
            Step::Detach(DetachStep {
                volume,
                node,
                expect_error,
            }) => {
                let volume = self.known_volume(volume);
                let node = self.known_node(node);
                let expect_error = self.code(expect_error);
                let mut text = format!("detach {volume} from {node}");
                if let Some(code) = &expect_error {
                    text.push_str(&format!(", expecting {code}"));
                }
                (
                    text,
                    Action::Detach {
                        volume,
                        node,
                        expect_error,
                    },
                )
            }
            Step::Advance(d) => {
                let d = self.duration(d);
                (
                    format!("advance {}", GoDuration::from_std(d)),
                    Action::Advance(d),
                )
            }
            Step::AddNode(node) => {
                let node = NodeName::new(node.value.clone());
                (format!("add node {node}"), Action::AddNode(node))
            }
            Step::DeleteNode(spec) => {
                let (node, observed) = match spec {
                    DeleteNodeStep::Name(node) => (node, true),
                    DeleteNodeStep::Detailed(d) => (&d.name, d.observed),
                };
                // Either form is read through a buffer that keeps no positions: the node is
                // shown at its step.
                let mut node = node.clone();
                if node.at == Position::default() {
                    node.at = step.at;
                }
                let node = self.known_node(&node);
                let text = if observed {
                    format!("delete node {node}")
                } else {
                    format!("delete node {node} (unobserved)")
                };
                (text, Action::DeleteNode { node, observed })
            }
            Step::CreateClaim(claim) => {
                let claim = self.known_claim(claim)?;
                (format!("create claim {claim}"), Action::CreateClaim(claim))
            }
            Step::DeleteClaim(claim) => {
                let claim = self.known_claim(claim)?;
                (format!("delete claim {claim}"), Action::DeleteClaim(claim))
            }
            Step::RestartController(restart) => {
                let down = restart
                    .down
                    .as_ref()
                    .map_or(Duration::ZERO, |d| self.duration(d));
                let text = if down.is_zero() {
                    "restart controller".to_owned()
                } else {
                    format!(
                        "restart controller, down for {}",
                        GoDuration::from_std(down)
                    )
                };
                (text, Action::RestartController { down })
            }
            Step::Fault(fault) => {
                let rule = self.fault(fault)?;
                (format!("fault: {rule}"), Action::Fault(rule))
            }
            Step::ClearFaults(_) => ("clear faults".to_owned(), Action::ClearFaults),
            Step::ExpectEvents(matchers) => {
                let expectations: Vec<EventExpectation> =
                    matchers.iter().map(|m| self.matcher(m)).collect();
                let text = match expectations.len() {
                    0 => "expect no events".to_owned(),
                    1 => "expect 1 event".to_owned(),
                    n => format!("expect {n} events"),
                };
                (text, Action::ExpectEvents(expectations))
            }
            Step::ExpectMetric(metric) => {
                if metric.name.value.trim().is_empty() {
                    self.problem(Problem::new(metric.name.at, "empty metric name"));
                } else {
                    self.known_metric(&metric.name, &metric.labels);
                }
                let labels = metric
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect::<Vec<_>>();
                let series = if labels.is_empty() {
                    metric.name.value.clone()
                } else {
                    format!("{}{{{}}}", metric.name.value, labels.join(","))
                };
                (
                    format!("expect metric {series} = {}", metric.value),
                    Action::ExpectMetric {
                        name: metric.name.value.clone(),
                        labels: metric.labels.clone(),
                        value: metric.value,
                    },
                )
            }
        };
        Some(PlannedStep { line, text, action })
    }

    fn matcher(&mut self, matcher: &Located<EventMatcher>) -> EventExpectation {
        let m = &matcher.value;
        if m.message.is_some() && m.message_contains.is_some() {
            self.problem(
                Problem::new(
                    matcher.at,
                    "give either `message` or `messageContains`, not both",
                )
                .label("both given"),
            );
        }
        if let Some(t) = &m.event_type
            && t != "Normal"
            && t != "Warning"
        {
            self.problem(
                Problem::new(matcher.at, format!("unknown event type `{t}`")).help(format!(
                    "{}the types are Normal and Warning",
                    did_you_mean(t, ["Normal", "Warning"])
                )),
            );
        }
        if let Some(reason) = &m.reason {
            let names: Vec<&str> = crate::Reason::ALL.iter().map(|r| r.as_str()).collect();
            if !names.contains(&reason.as_str()) {
                self.problem(
                    Problem::new(matcher.at, format!("unknown reason `{reason}`"))
                        .label("not a reason")
                        .help(format!(
                            "{}the reasons are: {}",
                            did_you_mean(reason, names.iter().copied()),
                            names.join(", ")
                        )),
                );
            }
        }
        if let Some(claim) = &m.claim
            && !self.claims.contains_key(claim)
        {
            let names: Vec<String> = self.claims.keys().cloned().collect();
            self.problem(
                Problem::new(matcher.at, format!("unknown claim `{claim}`")).help(format!(
                    "{}known claims: {}",
                    did_you_mean(claim, names.iter().map(String::as_str)),
                    list_or_none(&names)
                )),
            );
        }
        EventExpectation {
            line: matcher.at.line,
            event_type: m.event_type.clone(),
            reason: m.reason.clone(),
            message: m.message.clone(),
            message_contains: m.message_contains.clone(),
            claim: m.claim.clone(),
            count: m.count,
        }
    }

    fn fault(&mut self, fault: &FaultStep) -> Option<FaultRule> {
        const VERBS: &[&str] = &[
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
        ];
        let verb = match fault.verb.value.parse::<fake_apiserver::control::Verb>() {
            Ok(verb) => Some(verb),
            Err(_) => {
                self.problem(
                    Problem::new(
                        fault.verb.at,
                        format!("unknown verb `{}`", fault.verb.value),
                    )
                    .label("not a verb")
                    .help(format!(
                        "{}the verbs are: {}",
                        did_you_mean(&fault.verb.value, VERBS.iter().copied()),
                        VERBS.join(", ")
                    )),
                );
                None
            }
        };
        let resource = fault.resource.value.clone();
        if resource.is_empty()
            || !resource
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '/' || c == '.')
        {
            self.problem(
                Problem::new(fault.resource.at, format!("bad resource `{resource}`"))
                    .label("not a resource plural")
                    .help("name the resource by its plural: events, persistentvolumeclaims, persistentvolumes, volumeattachments, nodes"),
            );
        } else {
            let base = resource.split('/').next().unwrap_or(&resource);
            let served: Vec<&str> = fake_apiserver::api::RESOURCES
                .iter()
                .map(|r| r.plural)
                .collect();
            if !served.contains(&base) {
                self.problem(
                    Problem::new(fault.resource.at, format!("unknown resource `{resource}`"))
                        .label("the fake API server serves no such resource")
                        .help(format!(
                            "{}the resources are: {}",
                            did_you_mean(base, served.iter().copied()),
                            served.join(", ")
                        )),
                );
            }
        }
        if let Some(status) = &fault.status
            && !(400..=599).contains(&status.value)
        {
            self.problem(
                Problem::new(
                    status.at,
                    format!("status {} is not an error", status.value),
                )
                .help(
                    "a fault answers with a 4xx or 5xx status, e.g. 500, 503, 429, 403, 409, 404",
                ),
            );
        }
        let latency = fault.latency.as_ref().map(|l| self.duration(l));
        let retry_after = fault.retry_after.as_ref().and_then(|r| self.retry_after(r));
        let actions = usize::from(
            fault.status.is_some() || fault.reason.is_some() || fault.retry_after.is_some(),
        ) + usize::from(latency.is_some())
            + usize::from(fault.lose_response);
        if actions > 1 {
            self.problem(
                Problem::new(fault.verb.at, "a fault either answers with an error (status, reason, retryAfter), delays (latency) or loses the answer (loseResponse)")
                    .label("more than one action")
                    .help("split it into two fault steps"),
            );
        }
        if let Some(namespace) = &fault.namespace
            && let Err(why) = dns1123_label(&namespace.value)
        {
            self.problem(Problem::new(
                namespace.at,
                format!("bad namespace `{}`: {why}", namespace.value),
            ));
        }
        if fault.times == Some(0) {
            self.problem(
                Problem::new(fault.verb.at, "times: 0 would never apply")
                    .help("leave `times` out for a fault that holds until clearFaults"),
            );
        }
        Some(FaultRule {
            verb: verb?,
            resource,
            namespace: fault.namespace.as_ref().map(|n| n.value.clone()),
            name: fault.name.as_ref().map(|n| n.value.clone()),
            status: fault.status.as_ref().map(|s| s.value),
            reason: fault.reason.clone(),
            retry_after,
            latency,
            lose_response: fault.lose_response,
            times: fault.times,
        })
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_structural_problem_of_a_file_is_reported_at_once() {
        // An unknown step, an unknown key, a list where a duration belongs and an undeclared
        // volume: four diagnostics, in file order, each at its own line.
        let text = "name: four\ncluster:\n  nodes: [node-a, node-b]\n  volumes:\n    - {id: pvc-1, claim: vms/disk-0, accessMode: RWX}\nsteps:\n  - attach: {volume: pvc-1, node: node-a}\n  - atach: {volume: pvc-1, node: node-b}\n  - attach: {volume: pvc-1, node: node-b, tooks: 1s}\n  - advance: [1, 2]\n  - detach: {volume: pvc-9, node: node-a}\n";
        let found = problems(text);
        let summary: Vec<(u32, &str)> = found
            .iter()
            .map(|p| (p.at.line, p.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (8, "unknown step `atach`"),
                (9, "unknown key `tooks`"),
                (
                    10,
                    "`advance` takes a duration such as `30s`, `2m15s` or `153ms`"
                ),
                (11, "unknown volume `pvc-9`"),
            ]
        );
    }

    #[test]
    fn no_diagnostic_names_a_rust_type_and_each_gives_an_example() {
        let text = "name: types\nseed: -3\ncluster:\n  nodes: node-a\n  volumes:\n    - {id: pvc-1, claim: vms/disk-0, accessMode: RWX, migrationTimeoutSeconds: [1]}\nsteps:\n  - attach: {volume: pvc-1, node: node-a, took: {a: 1}}\n  - fault: {verb: create, resource: events, status: abc}\n  - fault: {verb: create, resource: events, times: -1}\n  - expectEvents: {reason: X}\n  - expectMetric: {name: migration_active_migrations, value: x}\n  - restartController: 3\n  - expectEvents: [{count: many}]\n";
        let found = problems(text);
        assert!(found.len() >= 9, "{found:#?}");
        for problem in &found {
            let all = format!(
                "{} {} {}",
                problem.message,
                problem.label.as_deref().unwrap_or(""),
                problem.help.as_deref().unwrap_or("")
            );
            for rust in [
                "u8", "u16", "u32", "u64", "i32", "i64", "f64", "Option<", "untagged", "enum ",
                "struct ", "scalar", "String", "Vec<",
            ] {
                assert!(!all.contains(rust), "{all:?} names {rust:?}");
            }
            assert!(
                all.contains("e.g.") || all.contains("for example"),
                "no example in {all:?}"
            );
        }
    }

    #[test]
    fn a_delete_node_of_an_unknown_node_points_at_its_step() {
        let found = problems(
            "name: dn\ncluster: {nodes: [node-a]}\nsteps:\n  - deleteNode: node-x\n  - deleteNode: {name: node-y, observed: false}\n",
        );
        let lines: Vec<u32> = found.iter().map(|p| p.at.line).collect();
        assert_eq!(lines, vec![4, 5], "{found:#?}");
    }

    fn problems(text: &str) -> Vec<Problem> {
        load_text("t.yaml", text).expect_err("should fail").problems
    }

    #[test]
    fn a_good_file_loads() {
        let text = "name: ok\ncluster:\n  nodes: [node-a, node-b]\n  claims: [vms/disk-0]\n  volumes:\n    - {id: pvc-1, claim: vms/disk-0, accessMode: RWX, migrationTimeoutSeconds: 300}\nsteps:\n  - attach: {volume: pvc-1, node: node-a, took: 153ms}\n  - advance: 2m15s\n  - deleteNode: {name: node-b, observed: false}\n  - deleteNode: node-a\n  - expectEvents: [{reason: VolumeAttached}]\n";
        let scenario = load_text("t.yaml", text).unwrap();
        assert_eq!(scenario.steps.len(), 5);
        assert_eq!(
            scenario.steps[0].text,
            "attach pvc-1 to node-a (took 153ms)"
        );
        assert_eq!(scenario.steps[0].line, 8);
        assert_eq!(scenario.steps[1].text, "advance 2m15s");
        assert_eq!(
            scenario.volumes[0].migration_timeout_seconds.as_deref(),
            Some("300")
        );
        assert_eq!(scenario.volumes[0].mode, AccessMode::Rwx);
    }

    #[test]
    fn unknown_step_points_at_it_and_suggests() {
        let p = problems("name: x\nsteps:\n  - atach: {volume: v, node: n}\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].at.line, 3);
        assert_eq!(p[0].message, "unknown step `atach`");
        let help = p[0].help.as_deref().unwrap();
        assert!(help.contains("did you mean `attach`?"), "{help}");
        assert!(help.contains("expectMetric"), "{help}");
    }

    #[test]
    fn unknown_key_suggests() {
        let p = problems(
            "name: x\ncluster: {nodes: [n]}\nsteps:\n  - addNode: m\n  - detach: {volme: v, node: n}\n",
        );
        assert_eq!(p[0].message, "unknown key `volme`");
        assert_eq!(p[0].at.line, 5);
        assert!(
            p[0].help
                .as_deref()
                .unwrap()
                .contains("did you mean `volume`?")
        );
    }

    #[test]
    fn every_reference_and_name_problem_is_reported() {
        let text = "name: Bad_Name\ncluster:\n  nodes: [node-a, Node_B]\n  volumes: [{id: pvc-1, claim: vms/d}]\nsteps:\n  - attach: {volume: pvc-2, node: node-b, took: 5 minutes}\n  - deleteClaim: vms/e\n  - detach: {volume: pvc-1, node: node-a, expectError: Notfound}\n";
        let p = problems(text);
        let messages: Vec<&str> = p.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(p.len(), 7, "{messages:#?}");
        assert!(messages[0].starts_with("bad scenario name `Bad_Name`"));
        assert!(messages[1].starts_with("bad node name `Node_B`"));
        assert_eq!(p[1].at.line, 3);
        assert_eq!(messages[2], "unknown volume `pvc-2`");
        assert!(
            p[2].help
                .as_deref()
                .unwrap()
                .contains("did you mean `pvc-1`?")
        );
        assert_eq!(messages[3], "unknown node `node-b`");
        assert!(messages[4].starts_with("bad duration"));
        assert_eq!(messages[5], "unknown claim `vms/e`");
        assert!(
            p[5].help
                .as_deref()
                .unwrap()
                .contains("did you mean `vms/d`?")
        );
        assert_eq!(messages[6], "unknown gRPC code `Notfound`");
        assert!(
            p[6].help
                .as_deref()
                .unwrap()
                .contains("did you mean `NotFound`?")
        );
    }

    #[test]
    fn bad_yaml_and_missing_keys_are_problems_not_panics() {
        for text in [
            "",
            "name: [",
            "steps: []\n",
            "name: x\nsteps: 5\n",
            "name: x\nsteps:\n  - deleteNode: {nam: a}\n",
            "\u{0}",
        ] {
            let p = load_text("t.yaml", text);
            assert!(p.is_err(), "{text:?} should not load");
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_a_go_duration() {
        let fault = |value: &str| {
            format!(
                "name: ok\ncluster: {{nodes: [node-a]}}\nsteps:\n  - fault: {{verb: create, resource: events, status: 429, retryAfter: {value}}}\n"
            )
        };
        for (value, seconds) in [("20", 20), ("20s", 20), ("1m30s", 90), ("\"7\"", 7)] {
            let scenario = load_text("x.yaml", &fault(value)).unwrap();
            let Action::Fault(rule) = &scenario.steps[0].action else {
                panic!("a fault step");
            };
            assert_eq!(rule.retry_after, Some(seconds), "{value}");
        }
        for bad in ["1.5s", "20 seconds", "99999999999"] {
            let p = problems(&fault(bad));
            assert_eq!(p.len(), 1, "{bad}: {p:#?}");
            assert!(
                p[0].message.contains("retryAfter"),
                "{bad}: {}",
                p[0].message
            );
            assert_eq!(p[0].at.line, 4);
        }
    }

    #[test]
    fn took_past_the_duration_range_is_an_error() {
        let text = "name: ok\ncluster: {nodes: [node-a]}\nsteps:\n  - attach: {volume: pvc-1, node: node-a, took: 3000000h}\n";
        let p = problems(text);
        assert!(
            p.iter().any(|p| p.message.contains("too long a duration")),
            "{p:#?}"
        );
    }

    #[test]
    fn an_expect_metric_on_an_unknown_name_or_label_is_refused() {
        let metric = |m: &str| {
            format!("name: ok\ncluster: {{nodes: [node-a]}}\nsteps:\n  - expectMetric: {m}\n")
        };
        for good in [
            "{name: events_posted, labels: {reason: VolumeAttached}, value: 0}",
            "{name: rds_csi_events_posted_total, value: 0}",
            "{name: migration_duration_seconds_sum, value: 0}",
            "{name: attachment_conflicts, value: 0}",
        ] {
            assert!(load_text("x.yaml", &metric(good)).is_ok(), "{good}");
        }
        let p = problems(&metric("{name: events_postd, value: 0}"));
        assert_eq!(p[0].message, "unknown metric `events_postd`");
        assert!(
            p[0].help
                .as_deref()
                .unwrap()
                .contains("did you mean `events_posted`?")
        );
        let p = problems(&metric(
            "{name: events_posted, labels: {raeson: X}, value: 0}",
        ));
        assert!(
            p[0].message.contains("no label `raeson`"),
            "{}",
            p[0].message
        );
        let p = problems(&metric(
            "{name: events_posted, labels: {reason: VolumeAtached}, value: 0}",
        ));
        assert!(
            p[0].help
                .as_deref()
                .unwrap()
                .contains("did you mean `VolumeAttached`?")
        );
    }

    #[test]
    fn a_fault_on_an_unknown_resource_is_refused() {
        let text = "name: ok\ncluster: {nodes: [node-a]}\nsteps:\n  - fault: {verb: create, resource: event}\n  - fault: {verb: patch, resource: volumeattachments/status}\n";
        let p = problems(text);
        assert_eq!(p.len(), 1, "{p:#?}");
        assert_eq!(p[0].message, "unknown resource `event`");
        assert!(
            p[0].help
                .as_deref()
                .unwrap()
                .contains("did you mean `events`?")
        );
    }
}
