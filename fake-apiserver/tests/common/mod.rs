//! Helpers shared by the fake-apiserver integration tests: HTTP servers in process, the
//! binary as a child process, kubectl, temporary directories, deadlines.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_apiserver::FakeCluster;
use fake_apiserver::transport::{HttpOptions, HttpServer};
use http_body_util::BodyExt;

/// Generous deadline for process start-up and for things that should happen "soon".
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A fresh, empty temporary directory (removed on drop).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "fake-apiserver-test-{tag}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `cluster` over HTTP on a free loopback port.
pub async fn serve(cluster: &FakeCluster, token: Option<&str>) -> HttpServer {
    cluster
        .serve_http(HttpOptions {
            token: token.map(str::to_string),
            ..HttpOptions::default()
        })
        .await
        .expect("start HTTP server")
}

/// A kube client over HTTP to `server`, as a user would build it (retries on).
pub fn http_client(server: &HttpServer, token: Option<&str>) -> kube::Client {
    kube::Client::try_from(server.kube_config(token)).expect("client from config")
}

/// A kube client over HTTP without the retry layer (to see 429/503/504 as they are).
pub fn http_client_no_retry(server: &HttpServer, token: Option<&str>) -> kube::Client {
    let mut config = server.kube_config(token);
    config.default_retry = false;
    kube::Client::try_from(config).expect("client from config")
}

/// Sends a raw request through `client`; returns status, headers and body.
pub async fn raw(
    client: &kube::Client,
    request: http::Request<Vec<u8>>,
) -> Result<(http::StatusCode, http::HeaderMap, Bytes), kube::Error> {
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, kube::client::Body::from(body));
    let response = client.send(request).await?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    Ok((parts.status, parts.headers, body))
}

/// Whether `body` is a JSON `Status` with the given code.
pub fn is_status(body: &[u8], code: u16) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    value["kind"] == "Status" && value["apiVersion"] == "v1" && value["code"] == code
}

/// Panics loudly when kubectl is missing: these tests must not silently skip.
pub fn require_kubectl() {
    match Command::new("kubectl")
        .args(["version", "--client"])
        .output()
    {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "\n\n*** kubectl is on the PATH but `kubectl version --client` failed: {}\n*** The fake-apiserver tests need a working kubectl (v1.32.x).\n",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!(
            "\n\n*** kubectl is NOT on the PATH ({error}).\n*** The fake-apiserver kubectl tests run the real kubectl against the fake; install kubectl (v1.32.x) and put it on the PATH.\n"
        ),
    }
}

/// Every kubectl to test against: `kubectl` and each `kubectl.1.27` … `kubectl.1.33` found in
/// the folder that really holds `kubectl` (the PATH entry is often a symlink, e.g.
/// `/usr/bin/kubectl` → `…/google-cloud-sdk/bin/kubectl`, with the versions beside its target).
/// Fails loudly without kubectl, and when a version of the matrix is missing.
pub fn kubectl_versions() -> Vec<String> {
    require_kubectl();
    let mut out = vec!["kubectl".to_string()];
    let path = std::env::var_os("PATH").unwrap_or_default();
    let Some(on_path) = std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|k| k.is_file())
    else {
        panic!("\n\n*** kubectl is not a file on any PATH entry\n");
    };
    let mut dirs: Vec<PathBuf> = on_path.parent().map(PathBuf::from).into_iter().collect();
    if let Some(real) = std::fs::canonicalize(&on_path)
        .ok()
        .and_then(|real| real.parent().map(PathBuf::from))
        && !dirs.contains(&real)
    {
        dirs.push(real);
    }
    let mut missing = Vec::new();
    for minor in 27..=33 {
        let name = format!("kubectl.1.{minor}");
        match dirs.iter().map(|d| d.join(&name)).find(|k| k.is_file()) {
            Some(found) => out.push(found.to_string_lossy().into_owned()),
            None => missing.push(name),
        }
    }
    assert!(
        missing.is_empty(),
        "\n\n*** The kubectl matrix needs every kubectl from 1.27 to 1.33 beside kubectl; missing {missing:?} in {dirs:?}.\n*** These machines ship them with kubectl (google-cloud-sdk's bin folder).\n"
    );
    out
}

/// The `fake-apiserver` binary running as a child, with its kubeconfig and a kubectl cache dir.
pub struct FakeProcess {
    child: Child,
    pub url: String,
    pub dir: TempDir,
    pub kubeconfig: PathBuf,
    pub token: Option<String>,
}

impl FakeProcess {
    /// Starts the binary with `--no-auth` (what kubectl needs: it sends no bearer token over
    /// plain HTTP) and `extra`.
    pub fn without_auth(extra: &[&str]) -> Self {
        Self::start(&[&["--no-auth"], extra].concat())
    }

    /// Starts the binary on 127.0.0.1:0, waits for `listening on http://ADDR`. Without
    /// `--token` or `--no-auth` in `extra` the binary makes a random token; [`token`](Self::token)
    /// is read back from the kubeconfig it wrote.
    pub fn start(extra: &[&str]) -> Self {
        let dir = TempDir::new("bin");
        let kubeconfig = dir.join("kubeconfig");
        let mut child = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
            .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the fake-apiserver binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let first = match rx.recv_timeout(DEADLINE) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                panic!("fake-apiserver did not print its address: {other:?}");
            }
        };
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        let written: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&kubeconfig).expect("the binary wrote its kubeconfig"),
        )
        .expect("the kubeconfig is JSON");
        let token = written["users"][0]["user"]["token"]
            .as_str()
            .map(str::to_string);
        Self {
            child,
            url,
            dir,
            kubeconfig,
            token,
        }
    }

    /// A kubectl command with this server's kubeconfig and a private discovery cache.
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        self.kubectl_command_with("kubectl", args)
    }

    /// As [`kubectl_command`](Self::kubectl_command) with another kubectl binary (the
    /// version matrix), and a discovery cache of its own.
    pub fn kubectl_command_with(&self, binary: &str, args: &[&str]) -> Command {
        let mut command = Command::new(binary);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(
                self.dir
                    .join(&format!("kube-cache-{}", binary.replace('/', "_"))),
            )
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null());
        command
    }

    /// Runs kubectl to completion (with a deadline); returns its output.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with("kubectl", args)
    }

    /// Runs the kubectl `binary` to completion (with a deadline); returns its output.
    pub fn kubectl_with(&self, binary: &str, args: &[&str]) -> Output {
        let mut child = self
            .kubectl_command_with(binary, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let out = std::thread::spawn(move || read_all(stdout));
        let err = std::thread::spawn(move || read_all(stderr));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for kubectl") {
                break status;
            }
            if started.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("kubectl {args:?} did not finish within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        }
    }

    /// Runs kubectl and panics (with its output) unless it succeeds; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let output = self.kubectl(args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
            output.status
        );
        stdout
    }

    /// A kube client built from the kubeconfig the binary wrote.
    pub async fn kube_client(&self) -> kube::Client {
        let kubeconfig =
            kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("config from kubeconfig");
        kube::Client::try_from(config).expect("client")
    }
}

impl Drop for FakeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_all(mut reader: impl std::io::Read) -> Vec<u8> {
    let mut buffer = Vec::new();
    let _ = reader.read_to_end(&mut buffer);
    buffer
}

/// Splits a kubectl table line into cells (columns are separated by 2+ spaces or tabs).
pub fn cells(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut current = String::new();
    let mut spaces = 0;
    for ch in line.trim().chars() {
        if ch == ' ' {
            spaces += 1;
            continue;
        }
        if ch == '\t' {
            spaces += 2;
            continue;
        }
        if spaces >= 2 && !current.is_empty() {
            cells.push(std::mem::take(&mut current));
        } else if spaces == 1 {
            current.push(' ');
        }
        spaces = 0;
        current.push(ch);
    }
    if !current.is_empty() {
        cells.push(current);
    }
    cells
}

/// Polls `condition` (yielding to the runtime, then sleeping briefly) until it holds or the
/// deadline passes. Correctness never depends on the timing; the deadline only bounds a hang.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
