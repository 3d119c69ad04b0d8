//! A suite run, as `csi-events run` does it: find the files, load and check **all** of them
//! (any problem: nothing runs), pick by `--filter`, refuse what the target cannot run, run in
//! parallel, hold each transcript to its snapshot (leaving a pending `.snap.new` on a
//! difference, or accepting it), and give one verdict per scenario.

use std::path::PathBuf;

use super::diagnostics::FileProblems;
use super::load;
use super::plan::Scenario;
use super::report::Verdict;
use super::runner::{self, RunError, Target};
use super::snapshot::{self, Comparison};

/// What to run and how (the command line as a value).
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// Files or directories.
    pub paths: Vec<PathBuf>,
    /// Only scenarios whose name or path contains this.
    pub filter: Option<String>,
    /// Scenarios run at once.
    pub jobs: usize,
    /// Embedded or a kubeconfig.
    pub target: Target,
    /// Snapshot folder.
    pub snapshots: PathBuf,
    /// Write differing or missing snapshots instead of failing on them.
    pub accept: bool,
    /// CI (`CI=true`): a missing snapshot fails its scenario, as under `cargo test`.
    pub ci: bool,
}

/// Whether the environment says CI (`CI=true` or `CI=1`).
pub fn ci_from_env() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

impl Default for SuiteConfig {
    fn default() -> Self {
        Self {
            paths: vec![PathBuf::from("scenarios")],
            filter: None,
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            target: Target::Embedded,
            snapshots: PathBuf::from(snapshot::DEFAULT_DIR),
            accept: false,
            ci: ci_from_env(),
        }
    }
}

/// Why a suite did not run.
#[derive(Debug)]
pub enum SuiteError {
    /// The paths could not be read.
    Paths(String),
    /// Files with problems (nothing ran).
    Invalid(Vec<FileProblems>),
    /// Scenarios the target cannot run (nothing ran).
    Refused(Vec<RunError>),
}

/// Finds and checks every file under `paths`.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Scenario>, SuiteError> {
    let files = load::discover(paths).map_err(SuiteError::Paths)?;
    if files.is_empty() {
        return Err(SuiteError::Paths(format!(
            "no scenario files (*.yaml) under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    load::load_all(&files).map_err(SuiteError::Invalid)
}

/// Runs the suite; one verdict per selected scenario, in file order.
pub fn run(config: &SuiteConfig) -> Result<Vec<Verdict>, SuiteError> {
    let scenarios: Vec<Scenario> = load(&config.paths)?
        .into_iter()
        .filter(|s| match &config.filter {
            Some(text) => s.name.contains(text.as_str()) || s.file.contains(text.as_str()),
            None => true,
        })
        .collect();
    if let Some(text) = &config.filter
        && scenarios.is_empty()
    {
        return Err(SuiteError::Paths(format!(
            "--filter `{text}` matches no scenario (it is looked for in each scenario's name and file path); `csi-events check` lists what loads"
        )));
    }
    if matches!(config.target, Target::Embedded)
        && config.snapshots.exists()
        && !config.snapshots.is_dir()
    {
        return Err(SuiteError::Paths(format!(
            "--snapshots {} is not a directory: give the folder the .snap files live in (default `{}`)",
            config.snapshots.display(),
            snapshot::DEFAULT_DIR
        )));
    }
    let refused: Vec<RunError> = scenarios
        .iter()
        .filter_map(|s| runner::check_target(s, &config.target).err())
        .collect();
    if !refused.is_empty() {
        return Err(SuiteError::Refused(refused));
    }
    let results = runner::run_many(&scenarios, &config.target, config.jobs);
    let embedded = matches!(config.target, Target::Embedded | Target::EmbeddedWire);
    let blackbox = matches!(config.target, Target::BlackBox(_));
    Ok(scenarios
        .iter()
        .zip(results)
        .map(|(scenario, result)| {
            let mut verdict = Verdict {
                name: scenario.name.clone(),
                file: scenario.file.clone(),
                run: None,
                failures: Vec::new(),
                snapshot_diff: None,
                seconds: 0.0,
                notes: Vec::new(),
            };
            match result {
                Err(error) => verdict.failures.push(error.to_string()),
                Ok(run) => {
                    verdict.seconds = run.wall.as_secs_f64();
                    if let Some(suffix) = &run.kept {
                        let examples: Vec<String> = [
                            scenario.namespaces().first().map(|n| format!("namespace {n}{suffix}")),
                            scenario.nodes.first().map(|n| format!("node {n}{suffix}")),
                            scenario.volumes.first().map(|v| format!("PV {}{suffix}", v.id)),
                        ]
                        .into_iter()
                        .flatten()
                        .collect();
                        verdict.notes.push(format!(
                            "kept: its namespaces, nodes and PVs are named with the suffix {suffix} ({})",
                            examples.join(", ")
                        ));
                    }
                    verdict.failures.extend(run.failures.iter().cloned());
                    if embedded {
                        hold_to_snapshot(config, &run.transcript.to_yaml(), &mut verdict);
                    } else if blackbox {
                        hold_to_reviewed(config, &run.transcript.to_yaml(), &mut verdict);
                    }
                    verdict.run = Some(run);
                }
            }
            verdict
        })
        .collect())
}

/// Black-box: the transcript must conform to the reviewed snapshot (docs/csi.md: real-time
/// durations within 1 s); nothing is written or accepted.
fn hold_to_reviewed(config: &SuiteConfig, yaml: &str, verdict: &mut Verdict) {
    let path = snapshot::path(&config.snapshots, &verdict.name);
    let reviewed = std::fs::read_to_string(&path)
        .ok()
        .and_then(|text| snapshot::contents(&text.replace("\r\n", "\n")).map(str::to_owned));
    match reviewed {
        None => verdict.failures.push(format!(
            "no reviewed snapshot {}: black-box mode holds a driver to reviewed snapshots only (review the embedded run's first)",
            path.display()
        )),
        Some(reviewed) => {
            if let Err(why) = super::conformance::conforms(&reviewed, yaml) {
                verdict.failures.push(format!(
                    "the driver's transcript does not conform to {}: {why}",
                    path.display()
                ));
                verdict.snapshot_diff = Some((reviewed, yaml.trim_end().to_owned()));
            }
        }
    }
}

fn hold_to_snapshot(config: &SuiteConfig, yaml: &str, verdict: &mut Verdict) {
    let dir = &config.snapshots;
    let name = &verdict.name;
    match snapshot::compare(dir, name, yaml) {
        Comparison::Matches => snapshot::clear_pending(dir, name),
        _ if config.accept => {
            if let Err(e) = snapshot::accept(dir, name, yaml) {
                verdict
                    .failures
                    .push(format!("cannot write the snapshot of {name}: {e}"));
            }
        }
        Comparison::Missing if config.ci => {
            let pending = snapshot::write_pending(dir, name, yaml)
                .map(|p| format!(" (the transcript is in {})", p.display()))
                .unwrap_or_default();
            verdict.failures.push(format!(
                "no snapshot {} and CI=true: a missing snapshot fails under CI{pending}; accept it locally with `csi-events run --accept` and commit it",
                snapshot::path(dir, name).display()
            ));
        }
        Comparison::Missing => {
            // No snapshot: the scenario passes on its expectations; the transcript waits
            // for review as a pending snapshot.
            if let Ok(pending) = snapshot::write_pending(dir, name, yaml) {
                verdict.notes.push(format!(
                    "no snapshot yet: review {} with `cargo insta review` (or accept with `csi-events run --accept`)",
                    pending.display()
                ));
            }
        }
        Comparison::Differs(old) => {
            let pending = snapshot::write_pending(dir, name, yaml)
                .map(|p| format!(" (pending: {}; accept with `cargo insta review` or `csi-events run --accept`)", p.display()))
                .unwrap_or_default();
            verdict.failures.push(format!(
                "the transcript differs from {}{pending}",
                snapshot::path(dir, name).display()
            ));
            verdict.snapshot_diff = Some((old, yaml.trim_end().to_owned()));
        }
    }
}
