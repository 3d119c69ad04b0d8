//! client-go's recorders as bench peers: the `event-peer` Go program (`peers/cmd/event-peer`)
//! posting a workload through `tools/record` or `tools/events` against a fake cluster served
//! over HTTP, and csi-events over HTTP against the same kind of server, so the rows compare
//! like with like.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;

use fake_apiserver::FakeCluster;
use fake_apiserver::transport::{HttpOptions, HttpServer, write_kubeconfig};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::go_peers::go_peers;

/// What `event-peer` prints at the end (its `Result`).
#[derive(Debug, Deserialize)]
pub struct PeerResult {
    pub posts: usize,
    pub sink_calls: u64,
    pub sink_errors: u64,
    pub wall_ms: f64,
    pub post_median_us: f64,
    pub post_p99_us: f64,
    /// The request log's total when the peer said `ready` (its setup not counted).
    #[serde(skip)]
    pub base: u64,
}

/// Serves `cluster` over HTTP on loopback and writes a kubeconfig for it; returns the server
/// and the kubeconfig path (under `target/`).
pub async fn serve(cluster: &FakeCluster, tag: &str) -> (HttpServer, PathBuf) {
    let server = cluster
        .serve_http(HttpOptions::default())
        .await
        .expect("serve the fake cluster over HTTP");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-go-peers");
    std::fs::create_dir_all(&dir).expect("create target/bench-go-peers");
    let kubeconfig = dir.join(format!("{tag}-{}.kubeconfig", std::process::id()));
    write_kubeconfig(&kubeconfig, &server.url(), None).expect("write the kubeconfig");
    (server, kubeconfig)
}

/// A kube-rs client of `server` over HTTP (kube's own `Config` client, retry layer included).
pub fn http_client(server: &HttpServer) -> kube::Client {
    kube::Client::try_from(server.kube_config(None)).expect("kube client over HTTP")
}

/// Runs `event-peer --recorder RECORDER ARGS…` against `cluster` (served over HTTP): the setup
/// (reading the claims) is not counted: the request log's total is read when the peer says
/// `ready` (`PeerResult::base`) and `on_ready` runs (to install faults, say), then it posts. Returns its result;
/// the requests it made are in the log afterwards.
pub async fn run_event_peer(
    cluster: &FakeCluster,
    recorder: &str,
    args: &[String],
    on_ready: impl FnOnce(),
) -> (PeerResult, HttpServer) {
    let (server, kubeconfig) = serve(cluster, recorder).await;
    let mut child = tokio::process::Command::new(go_peers().binary("event-peer"))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--recorder")
        .arg(recorder)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start event-peer");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    match lines.next_line().await {
        Ok(Some(line)) if line == "ready" => {}
        other => panic!("event-peer ({recorder}) did not get ready: {other:?}"),
    }
    let base = cluster.request_log().total();
    on_ready();
    stdin
        .write_all(b"go\n")
        .await
        .expect("tell event-peer to go");
    let line = match lines.next_line().await {
        Ok(Some(line)) => line,
        other => panic!("event-peer ({recorder}) printed no result: {other:?}"),
    };
    let status = child.wait().await.expect("wait for event-peer");
    assert!(status.success(), "event-peer ({recorder}) failed: {status}");
    let mut result: PeerResult = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("event-peer's result {line:?} is not its JSON: {e}"));
    result.base = base;
    (result, server)
}
