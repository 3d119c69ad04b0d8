//! `csi-events`: serves the model as a CSI driver (`serve`), and runs scenario files against the embedded fake cluster on a virtual clock (or
//! a kubeconfig's API server), holds each transcript to its snapshot, and reports.
//!
//! The binary is thin: clap turns the command line into a [`SuiteConfig`], the library runs
//! it, this file prints the result. Exit codes: 0 all passed (or all files valid), 1 a
//! scenario failed, 2 bad input (invalid files, refused scenarios, bad paths): nothing ran.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use csi_events::scenario::suite::{self, SuiteConfig, SuiteError};
use csi_events::scenario::{Target, schema};
use csi_events::scenario::{html, report};

/// Scenario runner for csi-events: attach, migrate, advance the clock, break the API server,
/// and hold every event to a reviewed snapshot.
#[derive(Debug, Parser)]
#[command(name = "csi-events", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load and check every file, then run them and compare with the snapshots.
    Run {
        /// Scenario files or directories (default: scenarios/).
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Only scenarios whose name or path contains TEXT.
        #[arg(long, value_name = "TEXT")]
        filter: Option<String>,
        /// Scenarios run at once (default: the number of CPUs).
        #[arg(long, short = 'j', value_name = "N")]
        jobs: Option<usize>,
        /// Run against this kubeconfig's API server instead of the embedded fake cluster.
        #[arg(long, value_name = "PATH")]
        kubeconfig: Option<PathBuf>,
        /// Black-box: drive the CSI driver serving this socket (unix:///PATH; with
        /// --kubeconfig, the API server that driver uses).
        #[arg(long, value_name = "unix:///PATH", conflicts_with = "driver_cmd")]
        csi_endpoint: Option<String>,
        /// Black-box: start this driver command per scenario against a fresh fake API server;
        /// `{endpoint}` and `{kubeconfig}` are filled in.
        #[arg(long, value_name = "CMD")]
        driver_cmd: Option<String>,
        /// Black-box: the driver's name (VolumeAttachment spec.attacher).
        #[arg(long, value_name = "NAME", default_value = "rds.csi.srvlab.io")]
        driver_name: String,
        /// Run every attach and detach through the model's CSI service over gRPC (embedded).
        #[arg(long, conflicts_with_all = ["kubeconfig", "csi_endpoint", "driver_cmd"])]
        through_csi: bool,
        /// With --kubeconfig: keep the objects a scenario created.
        #[arg(long, requires = "kubeconfig")]
        keep: bool,
        /// Leave out (listed on stderr) the scenarios the target cannot run — fault steps
        /// against --kubeconfig, steps black-box mode cannot play — instead of refusing the
        /// whole run.
        #[arg(long)]
        skip_unrunnable: bool,
        /// Accept every transcript as its snapshot (writes snapshots/<name>.snap).
        #[arg(long)]
        accept: bool,
        /// The snapshot folder.
        #[arg(long, value_name = "DIR", default_value = "snapshots")]
        snapshots: PathBuf,
        /// Also write the visual report: one self-contained HTML file (docs/scenarios.md §5).
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
        /// With --format junit: a testcase per scenario, or per step.
        #[arg(long, value_enum, default_value_t = Granularity::Scenario)]
        junit_granularity: Granularity,
    },
    /// Only load and check the files: the same diagnostics, exit 0 when all are valid.
    Check {
        /// Scenario files or directories (default: scenarios/).
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of scenario files.
    Schema,
    /// Serve the model as a controller-only CSI driver on a unix socket (the poster, the node
    /// watcher and the rebuild at start); SIGTERM or SIGINT stops it cleanly.
    Serve {
        /// The socket: unix:///PATH.
        #[arg(long, value_name = "unix:///PATH")]
        csi_endpoint: String,
        /// The API server's kubeconfig (default: in-cluster or $KUBECONFIG).
        #[arg(long, value_name = "PATH")]
        kubeconfig: Option<PathBuf>,
        /// The driver name (GetPluginInfo, VolumeAttachment spec.attacher).
        #[arg(long, value_name = "NAME", default_value = "rds.csi.srvlab.io")]
        driver_name: String,
        /// Also serve a minimal Node service answering NodeGetInfo with this node id.
        #[arg(long, value_name = "NODE")]
        node_id: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Granularity {
    Scenario,
    Step,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
    Junit,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = use_color();
    match cli.command {
        Command::Serve {
            csi_endpoint,
            kubeconfig,
            driver_name,
            node_id,
        } => serve(csi_endpoint, kubeconfig, driver_name, node_id),
        Command::Schema => {
            print(&schema::schema_json());
            ExitCode::SUCCESS
        }
        Command::Check { paths } => match suite::load(&default_paths(paths)) {
            Ok(scenarios) => {
                print(&format!("{} scenario files are valid\n", scenarios.len()));
                ExitCode::SUCCESS
            }
            Err(error) => bad_input(&error, color),
        },
        Command::Run {
            paths,
            format,
            filter,
            jobs,
            kubeconfig,
            csi_endpoint,
            driver_cmd,
            driver_name,
            through_csi,
            keep,
            skip_unrunnable,
            accept,
            snapshots,
            report: report_path,
            junit_granularity,
        } => {
            use csi_events::scenario::BlackBoxTarget;
            use csi_events::scenario::blackbox::Launch;
            let launch = match (csi_endpoint, driver_cmd) {
                (Some(endpoint), _) => match csi_events::csi::endpoint_path(&endpoint) {
                    Ok(path) => Some(Launch::Endpoint(path)),
                    Err(error) => {
                        let _ = writeln!(std::io::stderr(), "error: --csi-endpoint: {error}");
                        return ExitCode::from(2);
                    }
                },
                (None, Some(command)) => Some(Launch::Command(command)),
                (None, None) => None,
            };
            let defaults = SuiteConfig::default();
            let config = SuiteConfig {
                paths: default_paths(paths),
                filter,
                jobs: jobs.unwrap_or(defaults.jobs).max(1),
                target: match (launch, kubeconfig) {
                    (Some(launch), kubeconfig) => Target::BlackBox(BlackBoxTarget {
                        launch,
                        kubeconfig,
                        driver_name,
                        keep,
                    }),
                    (None, Some(kubeconfig)) => Target::External { kubeconfig, keep },
                    (None, None) if through_csi => Target::EmbeddedWire,
                    (None, None) => Target::Embedded,
                },
                snapshots,
                accept,
                ci: defaults.ci,
            };
            let mut config = config;
            if skip_unrunnable {
                match suite::runnable(&config) {
                    Ok((runnable, skipped)) => {
                        for why in &skipped {
                            let _ = writeln!(std::io::stderr(), "skipped: {why}");
                        }
                        if runnable.is_empty() {
                            let _ = writeln!(
                                std::io::stderr(),
                                "error: the target can run none of the {} selected scenarios",
                                skipped.len()
                            );
                            return ExitCode::from(2);
                        }
                        if !skipped.is_empty() {
                            let _ = writeln!(
                                std::io::stderr(),
                                "{} scenario(s) skipped: the target cannot run them",
                                skipped.len()
                            );
                        }
                        config.paths = runnable;
                    }
                    Err(error) => return bad_input(&error, color),
                }
            }
            match suite::run(&config) {
                Ok(verdicts) => {
                    let text = match format {
                        Format::Human => report::human(&verdicts, color),
                        Format::Json => report::json(&verdicts),
                        Format::Junit => report::junit_with(
                            &verdicts,
                            match junit_granularity {
                                Granularity::Scenario => report::JunitGranularity::Scenario,
                                Granularity::Step => report::JunitGranularity::Step,
                            },
                        ),
                    };
                    print(&text);
                    if let Some(path) = report_path
                        && let Err(error) = std::fs::write(&path, html::html(&verdicts))
                    {
                        let _ = writeln!(
                            std::io::stderr(),
                            "error: cannot write the report to {}: {error} (check that its folder exists and is writable)",
                            path.display()
                        );
                        return ExitCode::from(2);
                    }
                    if verdicts.iter().all(|v| v.passed()) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(error) => bad_input(&error, color),
            }
        }
    }
}

fn serve(
    endpoint: String,
    kubeconfig: Option<PathBuf>,
    driver_name: String,
    node_id: Option<String>,
) -> ExitCode {
    use csi_events::csi::{ServeConfig, endpoint_path};
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let socket = match endpoint_path(&endpoint) {
        Ok(socket) => socket,
        Err(error) => {
            eprintln!("error: --csi-endpoint: {error}");
            return ExitCode::from(2);
        }
    };
    let mut config = ServeConfig::new(socket).driver_name(driver_name);
    config.kubeconfig = kubeconfig;
    config.node_id = node_id;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = async {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            tracing::info!("stopping: no new calls, flushing the poster");
        };
        csi_events::csi::serve(config, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn default_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        paths
    }
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (https://no-color.org).
fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn bad_input(error: &SuiteError, color: bool) -> ExitCode {
    let color = color && std::io::stderr().is_terminal();
    let mut stderr = std::io::stderr().lock();
    match error {
        SuiteError::Paths(why) => {
            let _ = writeln!(stderr, "error: {why}");
        }
        SuiteError::Invalid(files) => {
            let count: usize = files.iter().map(|f| f.problems.len()).sum();
            for file in files {
                let _ = write!(stderr, "{}", file.render(color));
            }
            let _ = writeln!(
                stderr,
                "{count} problem(s) in {} file(s); nothing was run",
                files.len()
            );
        }
        SuiteError::Refused(errors) => {
            for error in errors {
                let _ = writeln!(stderr, "error: {error}");
            }
            let _ = writeln!(stderr, "nothing was run");
        }
    }
    ExitCode::from(2)
}
