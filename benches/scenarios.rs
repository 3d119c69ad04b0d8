//! `scenarios`: the whole scenario library (`scenarios/`) on the embedded fake cluster, as
//! `csi-events run` plays it: wall time (all CPUs and one thread), the virtual time the
//! scenarios cover (every `advance`), and their ratio — the speed-up over a tool that must
//! wait in real time (chainsaw, KUTTL). The peer is real time itself: a real-time runner takes
//! at least the virtual time covered.
//!
//! `cargo bench --bench scenarios [-- --runs 5 --dir scenarios --json]`
//!
//! The generated large rows (1 000 and 10 000 volumes, each migrating once; 50 000 nodes)
//! follow the library rows; `--only large` runs them alone, `--only library` leaves them
//! out, and `--volumes N` runs one generated row of N volumes alone (for a profiler).

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use csi_events::scenario::plan::Action;
use csi_events::scenario::runner::{Target, run_many};
use csi_events::scenario::suite;
use support::{Figure, arg, arg_text, report};

fn median(mut walls: Vec<Duration>) -> Duration {
    walls.sort();
    walls[walls.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only = arg_text("--only", "all");
    if let Some(volumes) = args
        .iter()
        .position(|a| a == "--volumes")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse::<usize>().ok())
    {
        let mut figures = Vec::new();
        large_rows(&mut figures, &[(volumes, 0)]);
        report(&figures);
        return;
    }
    if only == "large" {
        let mut figures = Vec::new();
        large_rows(&mut figures, LARGE_ROWS);
        report(&figures);
        return;
    }
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
    if only != "library" {
        large_rows(&mut figures, LARGE_ROWS);
    }
    report(&figures);
}

/// `volumes` RWX volumes on two nodes (plus `extra_nodes`), each attached, migrated once and
/// completed (VolumeAttached, MigrationStarted, MigrationCompleted per volume), generated as
/// text and loaded as any scenario file is.
fn generated(volumes: usize, extra_nodes: usize) -> String {
    let mut text = String::from("name: generated\ncluster:\n  nodes: [node-a, node-b");
    for i in 0..extra_nodes {
        text.push_str(&format!(", n{i}"));
    }
    text.push_str("]\n  claims: [");
    let claims: Vec<String> = (0..volumes).map(|i| format!("vms/d{i}")).collect();
    text.push_str(&claims.join(", "));
    text.push_str("]\n  volumes:\n");
    for i in 0..volumes {
        text.push_str(&format!(
            "    - {{id: pvc-{i}, claim: vms/d{i}, accessMode: RWX}}\n"
        ));
    }
    text.push_str("steps:\n");
    for i in 0..volumes {
        text.push_str(&format!("  - attach: {{volume: pvc-{i}, node: node-a}}\n"));
        text.push_str(&format!("  - attach: {{volume: pvc-{i}, node: node-b}}\n"));
        text.push_str("  - advance: 1s\n");
        text.push_str(&format!("  - detach: {{volume: pvc-{i}, node: node-a}}\n"));
    }
    text
}

/// The generated large rows: (volumes, extra nodes).
const LARGE_ROWS: &[(usize, usize)] = &[(1_000, 0), (10_000, 0), (10, 50_000)];

/// The generated large scenarios (linear cost): wall time and time per volume (or per
/// node), one run each (they are long), on one thread.
fn large_rows(figures: &mut Vec<Figure>, rows: &[(usize, usize)]) {
    use csi_events::scenario::load::load_text;
    use csi_events::scenario::runner::run;
    let mut per_volume = Vec::new();
    for &(volumes, nodes) in rows {
        let text = generated(volumes, nodes);
        let (variant, units, unit) = if nodes > 0 {
            (format!("{nodes} nodes"), nodes, "node")
        } else {
            (format!("{volumes} volumes"), volumes, "volume")
        };
        let scenario = match load_text("generated.yaml", &text) {
            Ok(scenario) => scenario,
            Err(problems) => {
                eprintln!("the generated scenario does not load: {problems:?}");
                std::process::exit(2);
            }
        };
        let started = Instant::now();
        let result = run(&scenario, &Target::Embedded);
        let wall = started.elapsed();
        assert!(
            result.as_ref().is_ok_and(|r| r.failures.is_empty()),
            "the generated scenario {variant} must pass"
        );
        let each = wall.as_secs_f64() * 1e6 / units as f64;
        if unit == "volume" {
            per_volume.push(each);
        }
        figures.push(Figure {
            bench: "scenarios",
            variant: variant.clone(),
            metric: "wall",
            value: wall.as_secs_f64() * 1000.0,
            unit: "ms",
        });
        figures.push(Figure {
            bench: "scenarios",
            variant,
            metric: if unit == "volume" {
                "per_volume"
            } else {
                "per_node"
            },
            value: each,
            unit: "us",
        });
    }
    if let [small, large] = per_volume[..] {
        figures.push(Figure {
            bench: "scenarios",
            variant: "10000 vs 1000 volumes".into(),
            metric: "per_volume_ratio",
            value: large / small,
            unit: "x (goal <= 1.5)",
        });
    }
}
