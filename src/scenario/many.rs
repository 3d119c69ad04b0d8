//! Running many scenarios on a few threads.

use super::plan::Scenario;
use super::runner::{RunError, RunResult, Target, run};

/// Runs `scenarios` on `jobs` threads (each scenario on its own runtime); results in input
/// order, whatever order they finished in. A run that panics is reported as not run, with
/// the panic's message.
///
/// ```
/// use csi_events::scenario::{load::load_text, runner::{run_many, Target}};
/// let a = load_text("a.yaml", "name: a\ncluster: {nodes: [node-a]}\nsteps:\n  - addNode: node-b\n").unwrap();
/// let results = run_many(&[a.clone(), a], &Target::Embedded, 2);
/// assert!(results.iter().all(|r| r.as_ref().is_ok_and(|r| r.failures.is_empty())));
/// ```
pub fn run_many(
    scenarios: &[Scenario],
    target: &Target,
    jobs: usize,
) -> Vec<Result<RunResult, RunError>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RunResult, RunError>>>> =
        Mutex::new(scenarios.iter().map(|_| None).collect());
    let jobs = jobs.clamp(1, scenarios.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(scenario) = scenarios.get(index) else {
                        break;
                    };
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run(scenario, target)
                    }))
                    .unwrap_or_else(|panic| {
                        let why = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                            .unwrap_or_default();
                        Err(RunError::Setup(format!("the run panicked: {why}")))
                    });
                    results
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(RunError::Setup("the scenario did not run".to_owned()))))
        .collect()
}
