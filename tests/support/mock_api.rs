//! The poster's request-level tests: `tower_test::mock::pair` in front of the project's one
//! stateful fake, the in-process fake API server.
//!
//! The mock keeps no objects of its own: its handle passes each request on to a
//! [`FakeCluster`] (which stores, validates and answers it as a real server would), or
//! answers, holds or drops it as the test scripts — a status (with `Retry-After`), a dropped
//! connection, a write passed on and then its answer lost, or a request held unanswered. It
//! records every request it saw with its body, whatever became of it.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fake_apiserver::FakeCluster;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{self, SendResponse};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub content_type: Option<String>,
    pub body: Option<Value>,
}

/// What to do with a matching request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer with this status (a Status body), optionally with `Retry-After` seconds.
    Status(u16, Option<u64>),
    /// Fail the transport: the client sees a connection error.
    Drop,
    /// Apply the request to the store, then fail the transport (the answer is lost).
    ApplyThenDrop,
    /// Keep the request unanswered until `release_held`.
    Hold,
}

struct Fault {
    method: Method,
    path_contains: String,
    action: Action,
    remaining: usize,
}

/// What the test scripted and what the handle saw; no objects.
#[derive(Default)]
struct Script {
    log: Vec<Recorded>,
    faults: Vec<Fault>,
    held: VecDeque<(Request<Bytes>, SendResponse<Response<Body>>)>,
    hold_everything: bool,
}

/// The mock's handle in front of a fake cluster; clones share both.
#[derive(Clone, Default)]
pub struct MockApi {
    cluster: FakeCluster,
    script: Arc<Mutex<Script>>,
}

impl MockApi {
    /// A `kube::Client` wired to a new mock, and the mock. The serving task runs on the
    /// current runtime.
    pub fn start() -> (kube::Client, MockApi) {
        let api = MockApi::default();
        (api.client(), api)
    }

    /// The cluster the requests are passed on to.
    pub fn cluster(&self) -> &FakeCluster {
        &self.cluster
    }

    /// Another client on this same server (a second poster, a restarted one).
    pub fn client(&self) -> kube::Client {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let server = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                server.serve(Request::from_parts(parts, bytes), send);
            }
        });
        kube::Client::new(service, "default")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().expect("mock script lock")
    }

    /// Stores `object` in the cluster as a fixture (its namespace created first).
    fn seed(&self, object: Value) {
        if let Some(namespace) = object["metadata"]["namespace"].as_str() {
            let _ = self.cluster.server().seed(json!({
                "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}
            }));
        }
        self.cluster.server().seed(object).expect("a valid fixture");
    }

    /// Adds a claim `ns/name` with `uid`.
    pub fn add_claim(&self, namespace: &str, name: &str, uid: &str) {
        let object = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": "7"},
            "spec": {"accessModes": ["ReadWriteMany"], "volumeMode": "Block"}
        });
        self.seed(object);
    }

    /// Adds a PV named `volume`, bound to `claim` (`Some((ns, name, uid))`) or unbound.
    pub fn add_volume(&self, volume: &str, claim: Option<(&str, &str, &str)>) {
        let mut object = json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": volume, "uid": format!("uid-{volume}"), "resourceVersion": "3"},
            "spec": {"capacity": {"storage": "1Gi"}, "csi": {"driver": "rds.csi.srvlab.io", "volumeHandle": volume}}
        });
        if let Some((namespace, name, uid)) = claim {
            object["spec"]["claimRef"] = json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": namespace, "name": name, "uid": uid
            });
        }
        self.seed(object);
    }

    /// Scripts `action` for the next `times` requests with `method` whose path contains `path_contains`.
    pub fn fault(&self, method: Method, path_contains: &str, action: Action, times: usize) {
        self.lock().faults.push(Fault {
            method,
            path_contains: path_contains.to_owned(),
            action,
            remaining: times,
        });
    }

    /// Removes every scripted fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Holds every request from now on, unanswered.
    pub fn hold_everything(&self) {
        self.lock().hold_everything = true;
    }

    /// Passes the held requests on to the cluster.
    pub fn release_held(&self) {
        let held: Vec<_> = {
            let mut script = self.lock();
            script.hold_everything = false;
            script.held.drain(..).collect()
        };
        for (request, send) in held {
            let cluster = self.cluster.clone();
            tokio::spawn(async move { send.send_response(pass_on(&cluster, request).await) });
        }
    }

    /// How many requests are held.
    pub fn held(&self) -> usize {
        self.lock().held.len()
    }

    /// Deletes an object in the cluster (e.g. an event that expired), past the script and
    /// the log; whether it was there.
    pub async fn remove(&self, path: &str) -> bool {
        let request = Request::delete(path)
            .body(Bytes::new())
            .expect("a valid request");
        self.cluster
            .server()
            .handle(request)
            .await
            .status()
            .is_success()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().log.clone()
    }

    /// Requests with `method` whose path contains `fragment`.
    pub fn requests_to(&self, method: Method, fragment: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(fragment))
            .collect()
    }

    /// The stored events of `namespace`, in name order.
    pub fn events(&self, namespace: &str) -> Vec<Value> {
        self.cluster
            .server()
            .objects("", "v1", "events")
            .into_iter()
            .filter(|event| event["metadata"]["namespace"] == namespace)
            .collect()
    }

    fn serve(&self, request: Request<Bytes>, send: SendResponse<Response<Body>>) {
        let path = request.uri().path().to_owned();
        let recorded = Recorded {
            method: request.method().clone(),
            path: path.clone(),
            content_type: request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: serde_json::from_slice(request.body()).ok(),
        };
        let action = {
            let mut script = self.lock();
            script.log.push(recorded);
            if script.hold_everything {
                Some(Action::Hold)
            } else {
                let method = request.method().clone();
                script
                    .faults
                    .iter_mut()
                    .find(|f| {
                        f.remaining > 0 && f.method == method && path.contains(&f.path_contains)
                    })
                    .map(|f| {
                        f.remaining -= 1;
                        f.action.clone()
                    })
            }
        };
        let cluster = self.cluster.clone();
        match action {
            None => {
                tokio::spawn(async move { send.send_response(pass_on(&cluster, request).await) });
            }
            Some(Action::Status(code, retry_after)) => {
                let mut response = status(code, "InternalError", "injected fault");
                if let Some(secs) = retry_after {
                    response.headers_mut().insert(
                        http::header::RETRY_AFTER,
                        secs.to_string().parse().expect("header"),
                    );
                }
                send.send_response(response);
            }
            Some(Action::Drop) => send.send_error("connection reset by peer (injected)"),
            Some(Action::ApplyThenDrop) => {
                tokio::spawn(async move {
                    let _ = pass_on(&cluster, request).await;
                    send.send_error("connection reset after the write (injected)");
                });
            }
            Some(Action::Hold) => self.lock().held.push_back((request, send)),
        }
    }
}

/// The cluster's answer to `request`, as a client body.
async fn pass_on(cluster: &FakeCluster, request: Request<Bytes>) -> Response<Body> {
    let (parts, body) = cluster.server().handle(request).await.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Response::from_parts(parts, Body::from(bytes.to_vec()))
}

/// A Status error answer as the real server writes it.
pub fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    });
    let mut response = Response::new(Body::from(serde_json::to_vec(&body).expect("json")));
    *response.status_mut() = StatusCode::from_u16(code).expect("valid status code");
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().expect("header"),
    );
    response
}
