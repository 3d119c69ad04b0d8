//! The `fake-apiserver` binary: the fake cluster over HTTP, for kubectl, the Python client and
//! kube-rs in another process.
//!
//! ```text
//! fake-apiserver --listen 127.0.0.1:0 [--kubeconfig PATH] [--load FILE...] [--token T] [--allow-non-loopback]
//! ```
//!
//! The first line on stdout is `listening on http://ADDR` (flushed at once, so a parent process
//! can read the port); then it serves until killed (SIGINT or SIGTERM).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fake_apiserver::FakeCluster;
use fake_apiserver::transport::{HttpOptions, write_kubeconfig};

/// An in-memory Kubernetes API server for tests (kubectl, client libraries) over HTTP.
#[derive(Debug, Parser)]
#[command(name = "fake-apiserver", version, about)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on the first stdout line).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,

    /// Write a kubeconfig (cluster, user, current-context) for this server to PATH.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,

    /// Load the objects of these multi-document YAML files before serving.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    load: Vec<PathBuf>,

    /// Require `Authorization: Bearer T` on every request (401 Unauthorized otherwise).
    #[arg(long, value_name = "T")]
    token: Option<String>,

    /// Allow listening on an address that is not loopback (the server has no real security).
    #[arg(long)]
    allow_non_loopback: bool,

    /// Seed of the uids and generated names (the same seed and requests give the same ids).
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,

    /// How many requests the request log keeps (the oldest are dropped first).
    #[arg(long, value_name = "N", default_value_t = fake_apiserver::control::DEFAULT_LOG_CAPACITY)]
    request_log: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("fake-apiserver: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fake-apiserver: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let cluster = FakeCluster::seeded(std::sync::Arc::new(fake_apiserver::SystemClock), args.seed);
    cluster.request_log().set_capacity(args.request_log);
    for file in &args.load {
        let text = std::fs::read_to_string(file)
            .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
        cluster
            .load_yaml(&text)
            .map_err(|error| format!("cannot load {}: {error}", file.display()))?;
    }
    let options = HttpOptions {
        listen: args.listen,
        token: args.token.clone(),
        allow_non_loopback: args.allow_non_loopback,
        ..HttpOptions::default()
    };
    let server = cluster
        .serve_http(options)
        .await
        .map_err(|error| error.to_string())?;
    if let Some(path) = &args.kubeconfig {
        write_kubeconfig(path, &server.url(), args.token.as_deref())
            .map_err(|error| error.to_string())?;
    }
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", server.url())
            .and_then(|()| stdout.flush())
            .map_err(|error| format!("cannot write to stdout: {error}"))?;
    }
    wait_for_signal().await;
    server.shutdown().await;
    Ok(())
}

/// Waits for SIGINT or (on Unix) SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
