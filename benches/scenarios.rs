//! `scenarios`: the whole scenario library (`scenarios/`) on the embedded fake cluster, as
//! `csi-events run` plays it: wall time (all CPUs and one thread), the virtual time the
//! scenarios cover (every `advance`), and their ratio — the speed-up over a tool that must
//! wait in real time (chainsaw, KUTTL). The peer is real time itself: a real-time runner takes
//! at least the virtual time covered.
//!
//! `cargo bench --bench scenarios [-- --runs 5 --dir scenarios --json]`

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use csi_events::scenario::plan::Action;
use csi_events::scenario::runner::{Target, run_many};
use csi_events::scenario::suite;
use support::{Figure, arg, report};

fn median(mut walls: Vec<Duration>) -> Duration {
    walls.sort();
    walls[walls.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios"));
    let scenarios = match suite::load(&[dir]) {
        Ok(scenarios) => scenarios,
        Err(error) => {
            eprintln!("the scenario library does not load: {error:?}");
            std::process::exit(2);
        }
    };
    let runs = arg("--runs", 5).max(1);
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let virtual_time: Duration = scenarios
        .iter()
        .flat_map(|s| s.steps.iter())
        .filter_map(|step| match step.action {
            Action::Advance(d) => Some(d),
            _ => None,
        })
        .sum();
    let steps: usize = scenarios.iter().map(|s| s.steps.len()).sum();
    let mut events = 0;
    let mut measure = |jobs: usize| {
        let walls: Vec<Duration> = (0..runs)
            .map(|_| {
                let started = Instant::now();
                let results = run_many(&scenarios, &Target::Embedded, jobs);
                let wall = started.elapsed();
                events = results
                    .iter()
                    .flatten()
                    .flat_map(|r| r.transcript.steps.iter())
                    .map(|s| s.events.len())
                    .sum::<usize>();
                let failed = results.iter().filter(|r| r.is_err()).count();
                assert_eq!(
                    failed, 0,
                    "every scenario must run (a failed expectation still counts as run)"
                );
                wall
            })
            .collect();
        median(walls)
    };
    let parallel = measure(cpus);
    let serial = measure(1);
    let variant = |jobs: usize| format!("library jobs={jobs}");
    let mut figures = vec![
        Figure {
            bench: "scenarios",
            variant: "library".into(),
            metric: "scenarios",
            value: scenarios.len() as f64,
            unit: "files",
        },
        Figure {
            bench: "scenarios",
            variant: "library".into(),
            metric: "steps",
            value: steps as f64,
            unit: "steps",
        },
        Figure {
            bench: "scenarios",
            variant: "library".into(),
            metric: "events_written",
            value: events as f64,
            unit: "events",
        },
        Figure {
            bench: "scenarios",
            variant: "library".into(),
            metric: "virtual_time",
            value: virtual_time.as_secs_f64(),
            unit: "s",
        },
    ];
    for (jobs, wall) in [(cpus, parallel), (1, serial)] {
        figures.push(Figure {
            bench: "scenarios",
            variant: variant(jobs),
            metric: "wall",
            value: wall.as_secs_f64() * 1000.0,
            unit: "ms",
        });
        figures.push(Figure {
            bench: "scenarios",
            variant: variant(jobs),
            metric: "virtual_vs_wall",
            value: virtual_time.as_secs_f64() / wall.as_secs_f64().max(1e-9),
            unit: "x real time",
        });
    }
    report(&figures);
}
