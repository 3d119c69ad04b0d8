//! The API server proper: one HTTP request in, one response out.
//!
//! This module owns routing and the public [`ApiServer`] interface; its submodules own the parts:
//! - `resources`: the table of served resources (adding a kind is a row);
//! - `store`: objects, the resourceVersion counter and the watch history;
//! - `handlers`: the request stages (dispatch and dry run, reads, decoding, create, update,
//!   patch, delete), one file each;
//! - `watch`: the newline-delimited JSON watch stream;
//! - `events`: core/v1 ⇄ events.k8s.io/v1 conversion, event validation and field labels;
//! - `selectors`: label and field selector parsing and matching;
//! - `validation`: name and ObjectMeta checks with the real message texts;
//! - `patch`: JSON patch, merge patch and strategic merge patch;
//! - `table`: meta.k8s.io `Table` output for `kubectl get`;
//! - `discovery`: `/version`, `/api`, `/apis`, group versions and the `/openapi` paths;
//! - `openapi`: OpenAPI v2/v3 documents with schemas derived from k8s-openapi;
//! - `protobuf`: protobuf request bodies (the `k8s\0` envelope, k8s-pb messages);
//! - `strategy`: each kind's spec validation, update rules and defaults;
//! - `controllers`: protection finalizers, PV release, node Leases (run inside writes);
//! - `filter`: the view of a stored object through a row, and list/watch selectors;
//! - `status`: `Status` error objects, built from a [`GroupResource`];
//! - `response`: JSON and text answers, `Warning` headers;
//! - `schema`: the JSON schema of a k8s-openapi type (a leaf the table reads);
//! - `shape`: the check that a body is already what decoding through its type gives.
//!
//! # Where the fake still differs from kube-apiserver
//!
//! The list is kept in the crate's README (section "Where it still differs from a real
//! kube-apiserver"): field ownership (`managedFields`) from a built-in schema, a subset of spec
//! validation and defaulting, synchronous controllers, lists of the latest state, JSON-only answers, OpenAPI
//! schemas as k8s-openapi's `schemars` feature derives them, seeded ids, events kept forever.

mod controllers;
mod discovery;
/// The Kubernetes version the fake answers `/version` with.
pub use discovery::GIT_VERSION;
mod events;
mod filter;
mod handlers;
mod managed;
mod openapi;
mod patch;
mod pointer;
pub mod protobuf;
mod resources;
mod response;
pub mod schema;
mod selectors;
mod shape;
mod status;
mod store;
pub mod strategy;
mod table;
mod validation;
mod watch;

use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use serde_json::{Value, json};

use crate::clock::SharedClock;
pub use crate::request_info::query_bool;
use crate::request_info::{Query, RequestInfo, path_segments};

pub use controllers::NAMESPACE_CLEANUP_DELAY;
pub use resources::{FieldLabels, RESOURCES, ResourceDef, TableKind, View};
pub use status::{ApiError, FieldError, GroupResource};

use store::Store;

pub use response::ResponseBody;
pub(crate) use response::{add_warnings, json_bytes_response, json_response};

/// The in-memory API server. Cheap to clone; clones share the store.
///
/// ```
/// # async fn demo() {
/// use fake_apiserver::{ApiServer, SystemClock};
/// use std::sync::Arc;
/// let server = ApiServer::new(Arc::new(SystemClock));
/// server.load_yaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns1\n").unwrap();
/// let request = http::Request::get("/api/v1/namespaces/ns1").body(bytes::Bytes::new()).unwrap();
/// assert_eq!(server.handle(request).await.status(), 200);
/// # }
/// ```
#[derive(Clone)]
pub struct ApiServer {
    clock: SharedClock,
    store: Arc<Store>,
}

/// Why [`ApiServer::load_yaml`] (or [`ApiServer::seed`]) refused its input.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LoadError {
    /// A document is not valid YAML.
    #[error("document {document}: invalid YAML: {message}")]
    Yaml {
        /// 1-based document number.
        document: usize,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A document is YAML but not an object this server stores.
    #[error("document {document}: {message}")]
    Object {
        /// 1-based document number.
        document: usize,
        /// What is wrong.
        message: String,
    },
}

/// The largest request body the real server reads (3 MiB); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The namespaces a real cluster starts with.
pub const INITIAL_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl ApiServer {
    /// A fresh cluster whose objects are stamped by `clock`, with the namespaces a real
    /// cluster starts with ([`INITIAL_NAMESPACES`]).
    pub fn new(clock: SharedClock) -> Self {
        Self::seeded(clock, 0)
    }

    /// A fresh cluster as [`new`](Self::new) whose uids and `generateName` suffixes derive
    /// from `seed`: the same seed and the same requests give the same ids on every run, so a
    /// simulation can be replayed. [`new`](Self::new) uses seed 0.
    ///
    /// ```
    /// use fake_apiserver::{ApiServer, SystemClock};
    /// use std::sync::Arc;
    /// let uid = |seed| {
    ///     let server = ApiServer::seeded(Arc::new(SystemClock), seed);
    ///     server.objects("", "v1", "namespaces")[0]["metadata"]["uid"].clone()
    /// };
    /// assert_eq!(uid(7), uid(7));
    /// assert_ne!(uid(7), uid(8));
    /// ```
    pub fn seeded(clock: SharedClock, seed: u64) -> Self {
        let server = Self {
            clock,
            store: Arc::new(Store::seeded(seed)),
        };
        for ns in INITIAL_NAMESPACES {
            // Seeding a fixed, valid namespace into an empty store cannot fail.
            let _ = server
                .seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}));
        }
        server
    }

    /// The clock stamping objects.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Serves one request. Never panics: an internal panic becomes a 500 InternalError Status.
    pub async fn handle(&self, request: http::Request<Bytes>) -> http::Response<ResponseBody> {
        // Routed without awaiting (only a dry run waits, on its own boxed future): this
        // future holds little more than the request.
        let routed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.route(request)));
        let answered = match routed {
            Ok(handlers::Dispatched::Done(result)) => Ok(result),
            Ok(handlers::Dispatched::DryRun(dry_run)) => {
                std::panic::AssertUnwindSafe(dry_run).catch_unwind().await
            }
            Err(panic) => Err(panic),
        };
        match answered {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => error_response(&error),
            Err(_) => error_response(&ApiError::internal("the fake API server panicked")),
        }
    }

    /// How many watch streams are open (each holds one subscription to the store's changes).
    pub fn open_watches(&self) -> usize {
        self.store.subscribers()
    }

    /// The latest resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.store.lock().rv()
    }

    /// Drops the watch history: a watch from any earlier resourceVersion gets `410 Gone`.
    pub fn compact(&self) {
        self.store.lock().compact();
    }

    /// Every object of a resource (`group` is `""` for core), as that API version shows it,
    /// in list order (namespace, name).
    ///
    /// ```
    /// # use fake_apiserver::{ApiServer, SystemClock};
    /// # let server = ApiServer::new(std::sync::Arc::new(SystemClock));
    /// let namespaces = server.objects("", "v1", "namespaces");
    /// assert_eq!(namespaces.len(), 4);
    /// ```
    pub fn objects(&self, group: &str, version: &str, plural: &str) -> Vec<Value> {
        let Some(def) = resources::lookup(group, version, plural) else {
            return Vec::new();
        };
        let state = self.store.lock();
        state
            .objects_of(def.storage, None)
            .map(|(_, obj)| filter::view(def, obj))
            .collect()
    }

    /// One object (`namespace` is `None` for cluster-scoped resources), as that API shows it.
    pub fn object(
        &self,
        group: &str,
        version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let def = resources::lookup(group, version, plural)?;
        let key = (
            def.storage,
            namespace.unwrap_or("").to_string(),
            name.to_string(),
        );
        let state = self.store.lock();
        state.get(&key).map(|obj| filter::view(def, obj))
    }

    /// Every object of the k8s-openapi type `K`, decoded, in list order.
    ///
    /// ```
    /// # use fake_apiserver::{ApiServer, SystemClock};
    /// # let server = ApiServer::new(std::sync::Arc::new(SystemClock));
    /// use k8s_openapi::api::core::v1::Namespace;
    /// let namespaces: Vec<Namespace> = server.list_typed();
    /// assert_eq!(namespaces[0].metadata.name.as_deref(), Some("default"));
    /// ```
    pub fn list_typed<K>(&self) -> Vec<K>
    where
        K: k8s_openapi::Resource + serde::de::DeserializeOwned,
    {
        self.objects(K::GROUP, K::VERSION, K::URL_PATH_SEGMENT)
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect()
    }

    /// One object of the k8s-openapi type `K` (`namespace` is `None` for cluster-scoped kinds).
    pub fn get_typed<K>(&self, namespace: Option<&str>, name: &str) -> Option<K>
    where
        K: k8s_openapi::Resource + serde::de::DeserializeOwned,
    {
        self.object(K::GROUP, K::VERSION, K::URL_PATH_SEGMENT, namespace, name)
            .and_then(|v| serde_json::from_value(v).ok())
    }

    /// Stores one object as given (a fixture): no admission, no status reset. Its
    /// `apiVersion` and `kind` pick the resource; uid and creationTimestamp are kept when set.
    /// Returns the stored object.
    pub fn seed(&self, object: Value) -> Result<Value, LoadError> {
        let stored = handlers::seed(self, object).map_err(|message| LoadError::Object {
            document: 1,
            message,
        })?;
        Ok(stored)
    }

    /// Loads multi-document YAML of Kubernetes objects (`kind: List` documents are unpacked);
    /// Namespaces load first. Returns how many objects were stored.
    ///
    /// ```
    /// # use fake_apiserver::{ApiServer, SystemClock};
    /// # let server = ApiServer::new(std::sync::Arc::new(SystemClock));
    /// let n = server.load_yaml("apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: n2\n").unwrap();
    /// assert_eq!(n, 2);
    /// ```
    pub fn load_yaml(&self, text: &str) -> Result<usize, LoadError> {
        let mut docs: Vec<(usize, Value)> = Vec::new();
        for (index, doc) in split_yaml_documents(text).into_iter().enumerate() {
            let document = index + 1;
            let value: Option<Value> =
                serde_saphyr::from_str(&doc).map_err(|e| LoadError::Yaml {
                    document,
                    message: e.to_string(),
                })?;
            let Some(value) = value else { continue };
            if value.is_null() {
                continue;
            }
            if !value.is_object() {
                return Err(LoadError::Object {
                    document,
                    message:
                        "not a Kubernetes object (expected a mapping with apiVersion and kind)"
                            .into(),
                });
            }
            let is_list = value
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"))
                && value.get("items").is_some_and(Value::is_array);
            if is_list {
                if let Some(items) = value.get("items").and_then(Value::as_array) {
                    docs.extend(items.iter().map(|i| (document, i.clone())));
                }
            } else {
                docs.push((document, value));
            }
        }
        docs.sort_by_key(|(_, v)| v.get("kind").and_then(Value::as_str) != Some("Namespace"));
        let mut count = 0;
        for (document, value) in docs {
            handlers::seed(self, value)
                .map_err(|message| LoadError::Object { document, message })?;
            count += 1;
        }
        Ok(count)
    }

    fn route(&self, request: http::Request<Bytes>) -> handlers::Dispatched<'_> {
        match self.resolve(request) {
            Ok(Resolved::Resource(target, req)) => handlers::dispatch(self, target, req),
            Ok(Resolved::Answered(response)) => handlers::Dispatched::Done(Ok(response)),
            Err(error) => handlers::Dispatched::Done(Err(error)),
        }
    }

    /// The target and request of a resource request, or the answer of any other request
    /// (discovery, a path no route serves, a refused option).
    fn resolve(&self, request: http::Request<Bytes>) -> Result<Resolved, ApiError> {
        let (mut parts, body) = request.into_parts();
        if body.len() > MAX_BODY_BYTES {
            return Err(ApiError::status(
                413,
                "RequestEntityTooLarge",
                format!("Request entity too large: limit is {MAX_BODY_BYTES}"),
                None,
            ));
        }
        // The request's info, parsed once (by the control layer when it ran).
        let mut info = parts.extensions.remove::<RequestInfo>().unwrap_or_else(|| {
            RequestInfo::parse(&parts.method, parts.uri.path(), parts.uri.query())
        });
        let req = Request {
            method: parts.method,
            headers: parts.headers,
            // Moved: the request reads its query from here on.
            query: std::mem::take(&mut info.query),
            body,
        };
        if info.resource.is_none() {
            let decoded = path_segments(parts.uri.path());
            let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
            if let Some(response) = discovery::serve(&segs, &req)? {
                return Ok(Resolved::Answered(response));
            }
        }
        let Some(target) = Target::from_info(&mut info) else {
            // Inside a served group version the API handler answers (a NotFound Status);
            // elsewhere the mux's plain-text 404.
            let served = info.resource.is_some()
                && resources::group_versions()
                    .contains(&(info.group.as_str(), info.version.as_str()));
            if served {
                return Err(ApiError::status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                    Some(json!({})),
                ));
            }
            return Err(ApiError::page_not_found());
        };
        // Integer options the server's parameter conversion refuses (`?limit=ten`).
        if let Some(message) = req.query.integer_error(info.verb, !req.body.is_empty()) {
            return Err(ApiError::bad_request(message));
        }
        Ok(Resolved::Resource(target, req))
    }
}

/// What [`ApiServer::resolve`] finds a request to be.
enum Resolved {
    /// A resource request, for its verb's handler.
    Resource(Target, Request),
    /// Answered already (discovery).
    Answered(http::Response<ResponseBody>),
}

/// A parsed request (what the verbs see).
pub(crate) struct Request {
    pub method: http::Method,
    pub headers: http::HeaderMap,
    pub query: Query,
    pub body: Bytes,
}

impl Request {
    /// The text of header `name` (`""` when absent or not text). A `HeaderName` constant
    /// is looked up as it is; a `&str` is parsed into a name first.
    fn header(&self, name: impl http::header::AsHeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The Content-Type without parameters.
    pub fn content_type(&self) -> std::borrow::Cow<'_, str> {
        let text = self
            .header(http::header::CONTENT_TYPE)
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        // Copied only to lower its case (clients send it in lower case).
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(text.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(text)
        }
    }

    /// Whether the client asked for a meta.k8s.io Table (`kubectl get`).
    pub fn wants_table(&self) -> bool {
        let accept = self.header(http::header::ACCEPT);
        accept
            .split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
    }

    /// Whether the client asked for `PartialObjectMetadata` (kube-rs `Api::get_metadata`,
    /// `list_metadata`, `metadata_watcher`).
    pub fn wants_metadata(&self) -> bool {
        let accept = self.header(http::header::ACCEPT);
        accept.split(',').next().is_some_and(|first| {
            first.contains("as=PartialObjectMetadata") && first.contains("g=meta.k8s.io")
        })
    }
}

/// The `PartialObjectMetadata` form of an object.
pub(crate) fn partial_metadata(shown: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": shown.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A resource URL, resolved against the table.
pub(crate) struct Target {
    pub def: &'static ResourceDef,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub watch_path: bool,
}

impl Target {
    /// Resolves a request's info against the resource table; `None` when no route serves it.
    /// The namespace and name are moved out of `info` when it resolves (not copied).
    fn from_info(info: &mut RequestInfo) -> Option<Target> {
        let resource = info.resource.as_deref()?;
        if info.extra_segments {
            return None;
        }
        let def = resources::lookup(&info.group, &info.version, resource)?;
        let has_name = info.path_name.is_some();
        let subresource = match info.subresource.as_deref() {
            None => None,
            Some("status") if def.has_status && has_name => Some("status".to_string()),
            Some(_) => return None,
        };
        let has_namespace = def.plural != "namespaces" && info.namespace.is_some();
        if has_namespace && !def.namespaced {
            return None;
        }
        if !has_namespace && def.namespaced && has_name {
            return None;
        }
        let namespace = if has_namespace {
            info.namespace.take()
        } else {
            None
        };
        let name = info.path_name.take();
        Some(Target {
            def,
            namespace,
            name,
            subresource,
            watch_path: info.watch_path,
        })
    }
}

/// Splits a YAML stream into documents on `---` lines (a line `...` ends a document).
fn split_yaml_documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            docs.push(
                trimmed
                    .strip_prefix("---")
                    .unwrap_or("")
                    .trim_start()
                    .to_string(),
            );
            if let Some(last) = docs.last_mut()
                && !last.is_empty()
            {
                last.push('\n');
            }
            continue;
        }
        if trimmed == "..." {
            continue;
        }
        if let Some(last) = docs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    // A stream starting with `---` has an empty first document: keep numbering by what the
    // author sees (the first real document is document 1).
    if docs.len() > 1 && docs[0].trim().is_empty() && text.trim_start().starts_with("---") {
        docs.remove(0);
    }
    docs
}

/// The response for an error: a Status (or the plain-text 404 of an unknown path).
pub(crate) fn error_response(error: &ApiError) -> http::Response<ResponseBody> {
    error.response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_skips_empty_pairs_and_decodes() {
        let q = Query::parse("&watch=true&fieldSelector=involvedObject.name%3Ddata%2Cb%3D&x");
        assert!(q.flag("watch"));
        assert_eq!(q.get("fieldSelector"), Some("involvedObject.name=data,b="));
        assert_eq!(q.get("x"), Some(""));
    }

    #[test]
    fn yaml_documents_split_and_number() {
        let docs = split_yaml_documents("---\na: 1\n---\nb: 2\n...\n");
        assert_eq!(docs.len(), 2);
        assert!(docs[1].contains("b: 2"));
    }

    fn target(path: &str) -> Option<Target> {
        Target::from_info(&mut RequestInfo::parse(&http::Method::GET, path, None))
    }

    #[test]
    fn resource_paths_resolve() {
        let t = target("/api/v1/namespaces/ns1/persistentvolumeclaims/x").expect("pvc");
        assert_eq!(t.def.plural, "persistentvolumeclaims");
        assert_eq!(t.name.as_deref(), Some("x"));
        assert!(target("/api/v1/namespaces/ns1/nodes").is_none());
        let ns = target("/api/v1/namespaces/ns1").expect("namespace");
        assert_eq!(ns.def.plural, "namespaces");
        assert_eq!(ns.name.as_deref(), Some("ns1"));
        assert!(ns.namespace.is_none());
        assert!(target("/api/v1/events/x").is_none());
        assert!(target("/apis/events.k8s.io/v1/events").is_some());
        assert!(target("/api/v1/namespaces/ns1/finalize").is_none());
        assert!(target("/api/v1/namespaces/a/pods/b/status/d").is_none());
        let status = target("/api/v1/namespaces/ns1/status").expect("namespace status");
        assert_eq!(status.subresource.as_deref(), Some("status"));
    }
}
