//! A stateful API server behind `tower_test::mock::pair`, for request-level assertions.
//!
//! It answers the requests the poster makes (GET of claims, volumes and events; POST and
//! PATCH of events) from an in-memory map, records every request with its body, and lets a
//! test script faults: a status (with `Retry-After`), a dropped connection, a write applied
//! and then answered with an error or dropped (a lost response), or a request held unanswered.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
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

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    log: Vec<Recorded>,
    faults: Vec<Fault>,
    held: VecDeque<(Request<Bytes>, SendResponse<Response<Body>>)>,
    hold_everything: bool,
    next_rv: u64,
}

/// The mock server; clones share state.
#[derive(Clone, Default)]
pub struct MockApi {
    state: Arc<Mutex<State>>,
}

impl MockApi {
    /// A `kube::Client` wired to a new mock, and the mock. The serving task runs on the
    /// current runtime.
    pub fn start() -> (kube::Client, MockApi) {
        let api = MockApi::default();
        (api.client(), api)
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

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("mock state lock")
    }

    /// Adds a claim `ns/name` with `uid`.
    pub fn add_claim(&self, namespace: &str, name: &str, uid: &str) {
        let object = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": "7"},
            "spec": {"accessModes": ["ReadWriteMany"], "volumeMode": "Block"}
        });
        self.lock().objects.insert(
            format!("/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}"),
            object,
        );
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
        self.lock()
            .objects
            .insert(format!("/api/v1/persistentvolumes/{volume}"), object);
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

    /// Answers the held requests normally.
    pub fn release_held(&self) {
        let held: Vec<_> = {
            let mut state = self.lock();
            state.hold_everything = false;
            state.held.drain(..).collect()
        };
        for (request, send) in held {
            let response = self.apply(&request);
            send.send_response(response);
        }
    }

    /// How many requests are held.
    pub fn held(&self) -> usize {
        self.lock().held.len()
    }

    /// Removes an object (e.g. an event that expired).
    pub fn remove(&self, path: &str) -> bool {
        self.lock().objects.remove(path).is_some()
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
        let prefix = format!("/api/v1/namespaces/{namespace}/events/");
        self.lock()
            .objects
            .iter()
            .filter(|(path, _)| path.starts_with(&prefix))
            .map(|(_, object)| object.clone())
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
            let mut state = self.lock();
            state.log.push(recorded);
            if state.hold_everything {
                Some(Action::Hold)
            } else {
                let method = request.method().clone();
                state
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
        match action {
            None => send.send_response(self.apply(&request)),
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
                let _ = self.apply(&request);
                send.send_error("connection reset after the write (injected)");
            }
            Some(Action::Hold) => self.lock().held.push_back((request, send)),
        }
    }

    /// The stateful answer to a request.
    fn apply(&self, request: &Request<Bytes>) -> Response<Body> {
        let path = request.uri().path().to_owned();
        let mut state = self.lock();
        match *request.method() {
            Method::GET => match state.objects.get(&path) {
                Some(object) => ok(StatusCode::OK, object),
                None => not_found(&path),
            },
            Method::POST => {
                let Ok(mut object) = serde_json::from_slice::<Value>(request.body()) else {
                    return status(400, "BadRequest", "malformed JSON");
                };
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let key = format!("{path}/{name}");
                if state.objects.contains_key(&key) {
                    return status(
                        409,
                        "AlreadyExists",
                        &format!("events \"{name}\" already exists"),
                    );
                }
                state.next_rv += 1;
                object["metadata"]["uid"] = json!(format!("event-uid-{}", state.next_rv));
                object["metadata"]["resourceVersion"] = json!(state.next_rv.to_string());
                object["kind"] = json!("Event");
                object["apiVersion"] = json!("v1");
                state.objects.insert(key, object.clone());
                ok(StatusCode::CREATED, &object)
            }
            Method::PATCH => {
                let Ok(patch) = serde_json::from_slice::<Value>(request.body()) else {
                    return status(400, "BadRequest", "malformed JSON");
                };
                state.next_rv += 1;
                let rv = state.next_rv;
                match state.objects.get_mut(&path) {
                    // As the real server: a resourceVersion in the patch is a precondition.
                    Some(object)
                        if patch["metadata"]["resourceVersion"]
                            .as_str()
                            .is_some_and(|sent| {
                                Some(sent) != object["metadata"]["resourceVersion"].as_str()
                            }) =>
                    {
                        status(
                            409,
                            "Conflict",
                            "Operation cannot be fulfilled on events: the object has been modified; please apply your changes to the latest version and try again",
                        )
                    }
                    Some(object) => {
                        json_patch::merge(object, &patch);
                        object["metadata"]["resourceVersion"] = json!(rv.to_string());
                        ok(StatusCode::OK, object)
                    }
                    None => not_found(&path),
                }
            }
            _ => status(405, "MethodNotAllowed", "method not allowed"),
        }
    }
}

fn ok(code: StatusCode, object: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(serde_json::to_vec(object).expect("json")));
    *response.status_mut() = code;
    response
}

fn not_found(path: &str) -> Response<Body> {
    let mut parts = path.rsplit('/');
    let name = parts.next().unwrap_or_default();
    let resource = parts.next().unwrap_or_default();
    status(404, "NotFound", &format!("{resource} \"{name}\" not found"))
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
