//! The Go peers (`peers/`, a Go module of the project): built once per process with the `go`
//! command into `target/go-peers/`, from the versions pinned in `peers/go.mod` and `peers/go.sum`
//! (`-mod=readonly`: nothing is resolved anew). A test or bench that needs them fails loudly when
//! `go` is missing; it never skips.
//!
//! Binaries: `event-peer` (client-go's `tools/record` and `tools/events` posting a bench
//! workload), `standin-driver` (a minimal CSI controller), `csi-attacher` (the
//! external-attacher) and `csi-sanity` (csi-test).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The packages `go build` makes, relative to `peers/` or as module paths.
const PACKAGES: &[&str] = &[
    "./cmd/event-peer",
    "./cmd/standin-driver",
    "github.com/kubernetes-csi/external-attacher/v4/cmd/csi-attacher",
    "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity",
];

/// Where the Go peers are.
pub struct GoPeers {
    dir: PathBuf,
}

impl GoPeers {
    /// The path of one binary (`event-peer`, `standin-driver`, `csi-attacher`, `csi-sanity`).
    pub fn binary(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Panics with what to install when `go` is missing.
pub fn require_go() {
    match Command::new("go").arg("version").output() {
        Ok(output) if output.status.success() => {}
        other => panic!(
            "\n\n*** This test runs real Go peers (client-go, the external-attacher, csi-sanity) and needs the `go` command (1.26 or newer) on the PATH ({other:?}).\n*** Install Go 1.26 and make sure the Go module proxy is reachable (the first build downloads the modules pinned in peers/go.sum).\n"
        ),
    }
}

/// Builds the Go peers (once per process) and returns where they are. `GO_PEERS_DIR` names a
/// folder of already built binaries instead.
pub fn go_peers() -> &'static GoPeers {
    static PEERS: OnceLock<GoPeers> = OnceLock::new();
    PEERS.get_or_init(|| {
        if let Some(dir) = std::env::var_os("GO_PEERS_DIR") {
            return GoPeers { dir: dir.into() };
        }
        require_go();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"));
        let dir = target.join("go-peers");
        build(&root().join("peers"), &dir);
        GoPeers { dir }
    })
}

/// `GOCACHE`, else the build cache under GOPATH that `.ci/run` uses (so a fresh clone's
/// first test run is not a cold build).
fn go_cache() -> Option<PathBuf> {
    if let Some(cache) = std::env::var_os("GOCACHE") {
        return Some(cache.into());
    }
    let output = Command::new("go").args(["env", "GOPATH"]).output().ok()?;
    let gopath = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let first = gopath.split(':').next().filter(|p| !p.is_empty())?;
    Some(Path::new(first).join("cache").join("go-build"))
}

fn build(module: &Path, out: &Path) {
    std::fs::create_dir_all(out).expect("create target/go-peers");
    let mut command = Command::new("go");
    if let Some(cache) = go_cache() {
        command.env("GOCACHE", cache);
    }
    let output = command
        .arg("build")
        .arg("-o")
        .arg(format!("{}/", out.display()))
        .args(PACKAGES)
        .current_dir(module)
        .env("GOFLAGS", "-mod=readonly -buildvcs=false")
        .output()
        .expect("run go build");
    if !output.status.success() {
        panic!(
            "\n\n*** `go build` of the Go peers in {} failed ({}):\n{}\n*** The modules come from the Go module proxy at the versions in peers/go.sum; run `cd peers && go build ./...` to see the error.\n",
            module.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
