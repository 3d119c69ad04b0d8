//! Robustness over HTTP: malformed, random and oversized requests get answers (Status objects
//! where the real server sends them), never a panic, a hang or a dropped connection; concurrent
//! writers on one object get 409 Conflicts and lose no update.

mod common;

use common::*;
use fake_apiserver::FakeCluster;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A tiny deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Asserts an error answer is a Status with the HTTP code (or the real server's plain-text
/// 404 for unknown paths).
fn assert_status_answer(what: &str, status: http::StatusCode, body: &[u8]) {
    assert!(
        status.as_u16() < 500 || status == 504 || status == 503,
        "{what}: server error {status}: {}",
        String::from_utf8_lossy(body)
    );
    if status.is_client_error() || status.is_server_error() {
        let plain_404 = status == 404 && body.starts_with(b"404 page not found");
        assert!(
            plain_404 || is_status(body, status.as_u16()),
            "{what}: {status} without a Status body: {}",
            String::from_utf8_lossy(body)
        );
    }
}

async fn setup() -> (
    FakeCluster,
    fake_apiserver::transport::HttpServer,
    kube::Client,
) {
    let cluster = FakeCluster::default();
    let server = serve(&cluster, None).await;
    let client = http_client_no_retry(&server, None);
    (cluster, server, client)
}

fn request(
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> http::Request<Vec<u8>> {
    let mut builder = http::Request::builder().method(method).uri(uri);
    if let Some(content_type) = content_type {
        builder = builder.header(http::header::CONTENT_TYPE, content_type);
    }
    builder.body(body).expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_status_answers() {
    let (_cluster, server, client) = setup().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "r"}})).expect("ns");
    let _ = namespaces.create(&PostParams::default(), &ns).await;
    let events = "/api/v1/namespaces/r/events";
    let cases: Vec<(&str, http::Request<Vec<u8>>, u16)> = vec![
        (
            "bad JSON",
            request(
                "POST",
                events,
                Some("application/json"),
                b"{\"metadata\":".to_vec(),
            ),
            400,
        ),
        (
            "JSON array",
            request("POST", events, Some("application/json"), b"[1,2]".to_vec()),
            400,
        ),
        (
            "wrong content type",
            request("POST", events, Some("text/csv"), b"a,b".to_vec()),
            415,
        ),
        (
            "wrong patch type",
            request(
                "PATCH",
                &format!("{events}/e"),
                Some("application/xml"),
                b"<x/>".to_vec(),
            ),
            415,
        ),
        (
            "bad field selector",
            request(
                "GET",
                &format!("{events}?fieldSelector=involvedObject.name%3D%3D%3Dx%5C"),
                None,
                Vec::new(),
            ),
            400,
        ),
        (
            "unknown field label",
            request(
                "GET",
                &format!("{events}?fieldSelector=spec.nope%3Dx"),
                None,
                Vec::new(),
            ),
            400,
        ),
        (
            "bad label selector",
            request(
                "GET",
                &format!("{events}?labelSelector=a%20in%20(b"),
                None,
                Vec::new(),
            ),
            400,
        ),
        (
            "huge body",
            request(
                "POST",
                events,
                Some("application/json"),
                vec![b' '; 3 * 1024 * 1024 + 1],
            ),
            413,
        ),
    ];
    for (what, request, expected) in cases {
        let (status, _headers, body) = raw(&client, request)
            .await
            .unwrap_or_else(|error| panic!("{what}: no answer: {error}"));
        assert_eq!(
            status.as_u16(),
            expected,
            "{what}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_status_answer(what, status, &body);
    }
    for path in [
        "/nope",
        "/api/v9/things",
        "/apis/unknown.group/v1/widgets",
        "/api/v1/namespaces/r/widgets",
    ] {
        let (status, _headers, body) = raw(&client, request("GET", path, None, Vec::new()))
            .await
            .unwrap_or_else(|error| panic!("{path}: no answer: {error}"));
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
        assert_status_answer(path, status, &body);
    }
    // Still serving.
    namespaces.get("r").await.expect("server still serves");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_whatever_their_framing() {
    let (_cluster, server, _client) = setup().await;
    // Declared too large (not read at all), and chunked (no length: read up to the limit).
    for chunked in [false, true] {
        let mut stream = tokio::net::TcpStream::connect(server.addr())
            .await
            .expect("connect");
        let body = vec![b'x'; 4 * 1024 * 1024];
        let head = if chunked {
            "POST /api/v1/namespaces/default/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
        } else {
            format!(
                "POST /api/v1/namespaces/default/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
        };
        stream.write_all(head.as_bytes()).await.expect("head");
        let (mut reader, mut writer) = stream.into_split();
        let send = tokio::spawn(async move {
            if chunked {
                for piece in body.chunks(64 * 1024) {
                    let frame =
                        [format!("{:x}\r\n", piece.len()).as_bytes(), piece, b"\r\n"].concat();
                    if writer.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                let _ = writer.write_all(b"0\r\n\r\n").await;
            } else {
                let _ = writer.write_all(&body).await;
            }
        });
        let mut answer = Vec::new();
        tokio::time::timeout(DEADLINE, reader.read_to_end(&mut answer))
            .await
            .expect("answer within the deadline")
            .expect("read");
        let _ = send.await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 413"),
            "chunked={chunked}: {text}"
        );
        let body_start = text.find("\r\n\r\n").map_or(0, |i| i + 4);
        assert!(
            is_status(&answer[body_start..], 413),
            "chunked={chunked}: {text}"
        );
        assert!(
            text.contains("Request entity too large: limit is 3145728"),
            "{text}"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_are_answered() {
    let (cluster, server, http) = setup().await;
    // Over HTTP and in process (where a panic in the server would fail the test directly).
    for (seed, client) in [
        (0x5eed_1234_abcd_0001, http.clone()),
        (0x5eed_1234_abcd_0002, http),
        (0x5eed_1234_abcd_0003, cluster.client()),
    ] {
        random_requests(Rng(seed), client).await;
    }
    server.shutdown().await;
}

async fn random_requests(mut rng: Rng, client: kube::Client) {
    let seed = rng.0;
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    let prefixes = [
        "/api/v1",
        "/apis/events.k8s.io/v1",
        "/apis/storage.k8s.io/v1",
        "/api",
        "/apis",
        "",
        "/version",
        "/openapi/v3",
    ];
    let middles = [
        "",
        "/namespaces/default",
        "/namespaces/r%20x",
        "/namespaces/..",
        "/watch",
    ];
    let resources = [
        "",
        "/events",
        "/pods",
        "/nodes",
        "/persistentvolumeclaims",
        "/persistentvolumes",
        "/volumeattachments",
        "/namespaces",
        "/zz",
    ];
    let names = ["", "/a", "/a.b", "/%2F", "/x/status", "/a/b/c/d", "/\u{e9}"];
    let queries = [
        "",
        "?watch=1&timeoutSeconds=1",
        "?limit=-1",
        "?limit=abc",
        "?continue=garbage",
        "?resourceVersion=abc",
        "?fieldSelector=%3D%3D",
        "?labelSelector=!!",
        "?&&&",
        "?fieldValidation=Bogus",
        "?dryRun=All",
        "?resourceVersion=1&watch=true&timeoutSeconds=1",
    ];
    let content_types = [
        "application/json",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/yaml",
        "text/plain",
        "",
    ];
    let bodies = [
        "",
        "{}",
        "null",
        "[]",
        "{\"metadata\":{\"name\":\"a\"}}",
        "{\"kind\":\"Event\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\"}}",
        "[{\"op\":\"replace\",\"path\":\"/x\",\"value\":1}]",
        "{\"metadata\":{\"name\":7}}",
        "\u{0}\u{1}\u{2}",
        "{\"a\":",
    ];
    for i in 0..300 {
        let method = rng.pick(&methods);
        let uri = format!(
            "{}{}{}{}{}",
            rng.pick(&prefixes),
            rng.pick(&middles),
            rng.pick(&resources),
            rng.pick(&names),
            rng.pick(&queries)
        );
        let content_type = rng.pick(&content_types);
        let mut body = rng.pick(&bodies).as_bytes().to_vec();
        if rng.below(10) == 0 {
            let len = rng.below(200);
            body = rng.bytes(len);
        }
        let what = format!(
            "seed {seed:x} #{i} {method} {uri} [{content_type}] {}",
            String::from_utf8_lossy(&body)
        );
        let Ok(request) = http::Request::builder()
            .method(method)
            .uri(uri.as_str())
            .header(http::header::CONTENT_TYPE, content_type)
            .body(body)
        else {
            continue; // not even a valid URI for the client
        };
        let answer = tokio::time::timeout(DEADLINE, raw(&client, request))
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer within the deadline"));
        let (status, _headers, body) =
            answer.unwrap_or_else(|error| panic!("{what}: transport error {error}"));
        if method == "HEAD" {
            // A HEAD answer has no body by definition; only the status can be checked.
            assert!(status.as_u16() < 500, "{what}: {status}");
            continue;
        }
        assert_status_answer(&what, status, &body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_over_raw_tcp_never_hang_or_kill_the_server() {
    let (_cluster, server, client) = setup().await;
    let mut rng = Rng(0x0bad_f00d_dead_beef);
    for round in 0..40 {
        let mut stream = tokio::net::TcpStream::connect(server.addr())
            .await
            .expect("connect");
        let len = rng.below(4096) + 1;
        let mut junk = rng.bytes(len);
        if round % 4 == 0 {
            // Starts like HTTP, then garbage.
            junk = [b"GET /api/v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n".as_slice(), &junk].concat();
        }
        if round % 4 == 1 {
            junk = [b"POST /api/v1/namespaces/default/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".as_slice(), &junk].concat();
        }
        let _ = stream.write_all(&junk).await;
        let _ = stream.shutdown().await;
        let mut answer = Vec::new();
        // Either an answer (400 from the HTTP parser) or a close; never a hang.
        tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("round {round}: the server neither answered nor closed"))
            .ok();
        if !answer.is_empty() {
            assert!(
                answer.starts_with(b"HTTP/1."),
                "round {round}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    // Still serving properly.
    let (status, _, body) = raw(
        &client,
        request("GET", "/api/v1/nodes/none", None, Vec::new()),
    )
    .await
    .expect("server still answers");
    assert_eq!(status, http::StatusCode::NOT_FOUND);
    let value: serde_json::Value = serde_json::from_slice(&body).expect("a JSON Status");
    assert_eq!(value["reason"], "NotFound");
    assert_eq!(value["message"], "nodes \"none\" not found");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_get_conflicts_and_lose_no_update() {
    let (_cluster, server, client) = setup().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "hot", "annotations": {"counter": "0"}}
    }))
    .expect("node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");

    // Deterministic conflict: two writers read the same version, both write.
    let stale = nodes.get("hot").await.expect("get");
    let mut first = stale.clone();
    first.metadata.labels = Some([("w".to_string(), "1".to_string())].into());
    nodes
        .replace("hot", &PostParams::default(), &first)
        .await
        .expect("first write");
    let mut second = stale.clone();
    second.metadata.labels = Some([("w".to_string(), "2".to_string())].into());
    match nodes.replace("hot", &PostParams::default(), &second).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
            assert_eq!(
                status.message,
                "Operation cannot be fulfilled on nodes \"hot\": the object has been modified; please apply your changes to the latest version and try again"
            );
        }
        other => panic!("stale write: expected 409 Conflict, got {other:?}"),
    }

    // Many writers, each incrementing the counter with read-modify-write and retry on 409.
    const WRITERS: usize = 4;
    const INCREMENTS: usize = 15;
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let nodes = Api::<Node>::all(http_client_no_retry(&server, None));
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0usize;
            for _ in 0..INCREMENTS {
                loop {
                    let mut node = nodes.get("hot").await.expect("get");
                    let annotations = node
                        .metadata
                        .annotations
                        .get_or_insert_with(Default::default);
                    let value: usize = annotations
                        .get("counter")
                        .and_then(|v| v.parse().ok())
                        .expect("counter");
                    annotations.insert("counter".into(), (value + 1).to_string());
                    match nodes.replace("hot", &PostParams::default(), &node).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(status)) if status.code == 409 => conflicts += 1,
                        Err(error) => panic!("unexpected error {error}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += tokio::time::timeout(DEADLINE * 4, task)
            .await
            .expect("writers finish")
            .expect("writer");
    }
    let node = nodes.get("hot").await.expect("get");
    let counter = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("counter"))
        .cloned();
    assert_eq!(
        counter,
        Some((WRITERS * INCREMENTS).to_string()),
        "{conflicts} conflicts"
    );
    server.shutdown().await;
}
