//! What a client cannot exhaust or bypass, over real HTTP: the request log's bounds and its
//! never-wrapping total, the binary's token (random unless given, `--no-auth` to turn it off)
//! and its 0600 kubeconfig that replaces a symlink, header/body/idle timeouts (on a virtual
//! clock of the test's own), a watch whose client left, and the integer query options a real
//! server refuses.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use fake_apiserver::transport::{HttpOptions, HttpServer};
use fake_apiserver::{FakeCluster, VirtualClock};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn request(method: &str, path: &str, body: Vec<u8>) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_log_keeps_a_prefix_of_each_body_and_counts_every_request() {
    let cluster = FakeCluster::default();
    cluster.request_log().set_capacity(3);
    let server = serve(&cluster, None).await;
    let client = http_client_no_retry(&server, None);
    let big = 3 * 1024 * 1024 - 10;
    for _ in 0..5 {
        let mut body = b"{\"x\": \"".to_vec();
        body.resize(big - 2, b'a');
        body.extend_from_slice(b"\"}");
        let (status, _, _) = raw(
            &client,
            request("POST", "/api/v1/namespaces/default/events", body),
        )
        .await
        .expect("answered");
        assert!(status.is_client_error(), "{status}");
    }
    let log = cluster.request_log();
    assert_eq!(log.total(), 5);
    let records = cluster.requests();
    assert_eq!(records.len(), 3);
    for record in &records {
        assert_eq!(record.body.len(), fake_apiserver::control::MAX_LOGGED_BODY);
        assert_eq!(record.body_len, big);
        assert!(record.body_truncated());
        assert!(record.body.starts_with(b"{\"x\": \"aaa"));
    }
    assert!(log.bytes() < 4 * (fake_apiserver::control::MAX_LOGGED_BODY + 1024));
    // Clearing forgets the records, not the count.
    cluster.clear_requests();
    assert_eq!((log.total(), log.bytes()), (5, 0));

    // The byte budget bounds the records whatever the capacity: long URIs push old ones out.
    log.set_capacity(1_000_000);
    log.set_max_bytes(256 * 1024);
    let long = "a".repeat(30_000);
    for i in 0..40 {
        let (status, _, _) = raw(
            &client,
            request(
                "GET",
                &format!("/api/v1/nodes/n{i}?labelSelector={long}"),
                Vec::new(),
            ),
        )
        .await
        .expect("answered");
        assert_eq!(status, 404);
    }
    assert!(log.bytes() <= 256 * 1024, "{}", log.bytes());
    let kept = cluster.requests();
    assert!(kept.len() < 10, "{}", kept.len());
    assert_eq!(
        kept.last().map(|r| r.path.as_str()),
        Some("/api/v1/nodes/n39")
    );
    assert_eq!(log.total(), 45);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_query_options_are_refused_with_the_real_text() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    let client = http_client_no_retry(&server, None);
    let cases = [
        (
            "GET",
            "/api/v1/namespaces/default/events?limit=ten",
            "strconv.ParseInt: parsing \"ten\": invalid syntax",
        ),
        (
            "GET",
            "/api/v1/events?watch=1&timeoutSeconds=1.5",
            "strconv.ParseInt: parsing \"1.5\": invalid syntax",
        ),
        (
            "GET",
            "/apis/storage.k8s.io/v1/csinodes?limit=99999999999999999999",
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range",
        ),
        (
            "DELETE",
            "/api/v1/namespaces/default/pods/p?gracePeriodSeconds=soon",
            "strconv.ParseInt: parsing \"soon\": invalid syntax",
        ),
        (
            "DELETE",
            "/api/v1/namespaces/default/pods?limit=",
            "strconv.ParseInt: parsing \"\": invalid syntax",
        ),
    ];
    for (method, path, message) in cases {
        let (status, _, body) = raw(&client, request(method, path, Vec::new()))
            .await
            .expect("answered");
        assert_eq!(status, 400, "{method} {path}");
        let value: serde_json::Value = serde_json::from_slice(&body).expect("a Status");
        assert_eq!(
            (value["reason"].clone(), value["message"].clone()),
            (json!("BadRequest"), json!(message)),
            "{method} {path}"
        );
    }
    // What the real server takes: signs, negative limits (no limit), other options' texts.
    for path in [
        "/api/v1/namespaces/default/events?limit=-1",
        "/api/v1/namespaces/default/events?limit=%2B5&timeout=32s",
        "/api/v1/namespaces/default/events/e?limit=ten",
    ] {
        let (status, _, _) = raw(&client, request("GET", path, Vec::new()))
            .await
            .expect("answered");
        assert_ne!(status, 400, "{path}");
    }
    // The route comes first: an unknown resource is 404 whatever its query.
    let (status, _, _) = raw(
        &client,
        request("GET", "/api/v1/widgets?limit=ten", Vec::new()),
    )
    .await
    .expect("answered");
    assert_eq!(status, 404);
    server.shutdown().await;
}

/// A server whose connection timeouts run on `clock` (the cluster itself on real time).
async fn serve_timed(cluster: &FakeCluster, clock: &VirtualClock) -> HttpServer {
    cluster
        .serve_http(HttpOptions {
            timeout_clock: Some(Arc::new(clock.clone())),
            ..HttpOptions::default()
        })
        .await
        .expect("serve")
}

fn virtual_clock() -> VirtualClock {
    VirtualClock::new("2026-01-01T00:00:00Z".parse().expect("time"))
}

/// Reads until the peer closes (or the deadline, which fails the test).
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .expect("the server closed the connection")
        .ok();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_do_not_arrive_in_time_close_the_connection() {
    let cluster = FakeCluster::default();
    let clock = virtual_clock();
    let server = serve_timed(&cluster, &clock).await;
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    stream
        .write_all(b"GET /api/v1/nodes HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half the headers");
    eventually("the header timer", || clock.sleepers() == 1).await;
    clock.advance(Duration::from_secs(31)).await;
    // Not yet: the connection still takes the rest.
    let mut probe = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(50), stream.read(&mut probe))
            .await
            .is_err(),
        "closed before the header timeout"
    );
    clock.advance(Duration::from_secs(2)).await;
    let answer = read_until_closed(&mut stream).await;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // The request never reached the API: nothing logged.
    assert!(cluster.requests().is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let cluster = FakeCluster::default();
    let clock = virtual_clock();
    let start = clock_now(&clock);
    let server = serve_timed(&cluster, &clock).await;
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    stream
        .write_all(b"POST /api/v1/namespaces/default/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"kind\":")
        .await
        .expect("head and some body");
    // The body timer (60 s) replaces the header timer (32 s) once the head is in.
    let body_deadline = start + jiff::SignedDuration::from_secs(60);
    eventually("the body timer", || {
        clock.next_deadline() == Some(body_deadline)
    })
    .await;
    clock.advance(Duration::from_secs(61)).await;
    let answer = read_until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body = &answer[text.find("\r\n\r\n").map_or(0, |i| i + 4)..];
    assert!(is_status(body, 408), "{text}");
    assert!(
        text.contains("the request body did not arrive within 60s"),
        "{text}"
    );
    assert_eq!(
        cluster.requests().last().and_then(|r| r.status),
        Some(http::StatusCode::REQUEST_TIMEOUT)
    );
    server.shutdown().await;
}

fn clock_now(clock: &VirtualClock) -> jiff::Timestamp {
    use fake_apiserver::Clock;
    clock.now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_close() {
    let cluster = FakeCluster::default();
    let clock = virtual_clock();
    let server = serve_timed(&cluster, &clock).await;
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    stream
        .write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    // Read the whole answer (its head says how long the body is), keeping the connection.
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(DEADLINE, stream.read(&mut buffer))
            .await
            .expect("answer")
            .expect("read");
        assert!(n > 0, "closed before answering");
        answer.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .and_then(|l| l.trim().parse().ok())
                .expect("content-length");
            if answer.len() >= head_end + 4 + length {
                break;
            }
        }
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    eventually("the idle timer", || clock.sleepers() == 1).await;
    clock.advance(Duration::from_secs(33)).await;
    let rest = read_until_closed(&mut stream).await;
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_whose_client_left_ends_without_waiting_for_a_change() {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    let before = cluster.server().open_watches();
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    stream
        .write_all(b"GET /api/v1/namespaces/default/events?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("watch request");
    let mut head = [0u8; 12];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut head))
        .await
        .expect("watch answered")
        .expect("read");
    assert_eq!(&head, b"HTTP/1.1 200");
    eventually("the watch to open", || {
        cluster.server().open_watches() == before + 1
    })
    .await;
    drop(stream);
    eventually("the watch to notice its client left", || {
        cluster.server().open_watches() == before
    })
    .await;
    server.shutdown().await;
}

/// Starts the binary with `args`; returns it and its first stdout line.
fn start_binary(args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-apiserver"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).ok();
    (child, line)
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_binary_requires_a_random_one_kept_in_a_private_kubeconfig() {
    let first = FakeProcess::start(&[]);
    let second = FakeProcess::start(&[]);
    let token = first.token.clone().expect("a token in the kubeconfig");
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    assert_ne!(Some(token.clone()), second.token);
    assert_eq!(mode(&first.kubeconfig), 0o600);
    // The kubeconfig lets kube-rs in; no token, or another server's, gets 401.
    let client = first.kube_client().await;
    client.apiserver_version().await.expect("in with the token");
    let url: http::Uri = first.url.parse().expect("url");
    for other in [None, second.token.as_deref()] {
        let mut config = kube::Config::new(url.clone());
        config.auth_info.token = other.map(|t| t.to_string().into());
        let client = kube::Client::try_from(config).expect("client");
        match client.apiserver_version().await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 401),
            other => panic!("expected 401, got {other:?}"),
        }
    }
    // `--no-auth` lets everyone in, and writes no token.
    let open = FakeProcess::without_auth(&[]);
    assert_eq!(open.token, None);
    let mut config = kube::Config::new(open.url.parse().expect("url"));
    config.auth_info.token = None;
    kube::Client::try_from(config)
        .expect("client")
        .apiserver_version()
        .await
        .expect("in without a token");
}

#[cfg(unix)]
#[test]
fn the_kubeconfig_and_token_file_replace_a_symlink_instead_of_following_it() {
    let dir = TempDir::new("symlink");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").expect("write");
    let kubeconfig = dir.join("kubeconfig");
    let token_file = dir.join("token");
    std::os::unix::fs::symlink(&victim, &kubeconfig).expect("symlink");
    std::os::unix::fs::symlink(&victim, &token_file).expect("symlink");
    let (mut child, line) = start_binary(&[
        "--kubeconfig",
        &kubeconfig.to_string_lossy(),
        "--token-file",
        &token_file.to_string_lossy(),
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.starts_with("listening on http://"), "{line:?}");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read"),
        "precious\n"
    );
    for path in [&kubeconfig, &token_file] {
        let meta = std::fs::symlink_metadata(path).expect("metadata");
        assert!(meta.file_type().is_file(), "{path:?} is still a link");
        assert_eq!(mode(path), 0o600, "{path:?}");
    }
    let token = std::fs::read_to_string(&token_file).expect("token");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&kubeconfig).expect("kubeconfig"))
            .expect("json");
    assert_eq!(
        written["users"][0]["user"]["token"].as_str(),
        Some(token.trim())
    );
    // No leftover temporary files beside them.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    assert_eq!(names, ["kubeconfig", "token", "victim"]);
}

#[test]
fn a_random_token_written_nowhere_is_refused_with_what_to_do() {
    let (mut child, line) = start_binary(&[]);
    let status = child.wait().expect("exit");
    assert!(!status.success());
    assert!(line.is_empty(), "{line:?}");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        pipe.read_to_string(&mut stderr).ok();
    }
    for hint in ["--kubeconfig", "--token-file", "--token T", "--no-auth"] {
        assert!(stderr.contains(hint), "{stderr}");
    }
}
