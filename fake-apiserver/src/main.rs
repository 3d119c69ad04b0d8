//! The `fake-apiserver` binary: the fake cluster over HTTP, for kubectl, the Python client and
//! kube-rs in another process.
//!
//! ```text
//! fake-apiserver --listen 127.0.0.1:0 [--kubeconfig PATH] [--token-file PATH] [--load FILE...]
//!                [--token T | --no-auth] [--allow-non-loopback]
//! ```
//!
//! Every request needs `Authorization: Bearer <token>`: the token given with `--token`, or else
//! a random one written into the kubeconfig (and `--token-file`), both mode 0600. `--no-auth`
//! lets every request in (kubectl sends no token over plain HTTP, so it needs this).
//!
//! The first line on stdout is `listening on http://ADDR` (flushed at once, so a parent process
//! can read the port); then it serves until killed (SIGINT or SIGTERM).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fake_apiserver::FakeCluster;
use fake_apiserver::transport::{HttpOptions, write_kubeconfig, write_private_file};

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
    /// Without it a random token is required (and written into the kubeconfig).
    #[arg(long, value_name = "T", conflicts_with = "no_auth")]
    token: Option<String>,

    /// Let every request in without a token (kubectl never sends one over plain HTTP).
    #[arg(long)]
    no_auth: bool,

    /// Write the bearer token (a line, mode 0600) to PATH.
    #[arg(long, value_name = "PATH", conflicts_with = "no_auth")]
    token_file: Option<PathBuf>,

    /// Allow listening on an address that is not loopback (the server has no real security).
    #[arg(long)]
    allow_non_loopback: bool,

    /// Seed of the uids and generated names (the same seed and requests give the same ids).
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,

    /// How many requests the request log keeps (the oldest are dropped first; at most
    /// 1 000 000).
    #[arg(long, value_name = "N", default_value_t = fake_apiserver::control::DEFAULT_LOG_CAPACITY as u32,
          value_parser = clap::value_parser!(u32).range(1..=fake_apiserver::control::MAX_LOG_CAPACITY as i64))]
    request_log: u32,
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
    let token = match (&args.token, args.no_auth) {
        (Some(token), _) => Some(token.clone()),
        (None, true) => None,
        (None, false) => {
            if args.kubeconfig.is_none() && args.token_file.is_none() {
                return Err("a random bearer token would be required but written nowhere: pass --kubeconfig PATH or --token-file PATH to get it, --token T to choose it, or --no-auth to let every request in".to_string());
            }
            Some(random_token().map_err(|error| format!("cannot make a random token: {error}"))?)
        }
    };
    let cluster = FakeCluster::seeded(std::sync::Arc::new(fake_apiserver::SystemClock), args.seed);
    cluster
        .request_log()
        .set_capacity(args.request_log as usize);
    for file in &args.load {
        let text = std::fs::read_to_string(file)
            .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
        cluster
            .load_yaml(&text)
            .map_err(|error| format!("cannot load {}: {error}", file.display()))?;
    }
    let options = HttpOptions {
        listen: args.listen,
        token: token.clone(),
        allow_non_loopback: args.allow_non_loopback,
        ..HttpOptions::default()
    };
    let server = cluster
        .serve_http(options)
        .await
        .map_err(|error| error.to_string())?;
    if let Some(path) = &args.kubeconfig {
        write_kubeconfig(path, &server.url(), token.as_deref())
            .map_err(|error| error.to_string())?;
    }
    if let (Some(path), Some(token)) = (&args.token_file, &token) {
        write_private_file(path, format!("{token}\n").as_bytes())
            .map_err(|error| format!("cannot write the token file {}: {error}", path.display()))?;
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

/// 32 random bytes from the system's generator, as 64 hex digits.
fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
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
