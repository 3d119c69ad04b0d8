//! Fault injection and the request log, wrapped around the API server.
//!
//! This module owns everything a test (or the scenario runner) uses to *steer* the fake cluster
//! rather than talk to it:
//!
//! - [`RequestInfo`]: the verb, resource, namespace and name of a request, derived exactly as
//!   the real kube-apiserver's `RequestInfoFactory` does (GET with `?watch` → watch, GET on a
//!   collection → list, DELETE on a collection → deletecollection, `metadata.name` field selector
//!   → name, `/watch/` prefix → watch);
//! - [`Fault`] rules kept in [`Faults`]: answer with a Status (real reason and message text,
//!   optional `Retry-After`), add latency slept on the server's [`Clock`](crate::clock::Clock),
//!   or drop the connection, for N requests or until cleared;
//! - [`RequestLog`]: every request in arrival order with its response status and latency on the
//!   server's clock;
//! - [`ControlLayer`] / [`ControlService`]: a tower layer applying both around any service of
//!   `http::Request<Bytes>` (normally [`ApiService`], the [`ApiServer`] as a tower service).
//!
//! ```
//! # async fn demo() {
//! use fake_apiserver::control::{Fault, Verb};
//! use fake_apiserver::FakeCluster;
//! use std::time::Duration;
//!
//! let cluster = FakeCluster::default();
//! // The next two event creations in "ns" get a 429 asking to retry after 3 s.
//! cluster.faults().add(Fault::new(Verb::Create, "events").namespace("ns").status(429).retry_after(3).times(2));
//! // Every list of pods is 2 s slower (on the server's clock).
//! cluster.faults().add(Fault::new(Verb::List, "pods").latency(Duration::from_secs(2)));
//! // ... use cluster.client() ...
//! for request in cluster.requests() {
//!     println!("{} {} -> {:?}", request.method, request.path, request.status);
//! }
//! # }
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

use crate::api::{ApiError, ApiServer, GroupResource, ResponseBody};
use crate::clock::SharedClock;

pub mod endpoint;
use crate::request_info::query_pairs;
pub use crate::request_info::{RequestInfo, UnknownVerb, Verb};

/// Boxed error, what tower services in this crate (and `kube::Client`) use.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a thread panicked while holding it (a failing test); the
    // data (rule lists, log records) is still consistent, so keep serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/// What a matching [`Fault`] does to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this status instead of serving the request.
    Respond(FaultResponse),
    /// Sleep this long on the server's clock, then serve the request (later rules still apply).
    Latency(Duration),
    /// Drop the connection without a response: in process the service returns an error
    /// ([`ConnectionDropped`]), over HTTP the connection is closed.
    DropConnection,
    /// Serve the request (the write happens), then drop the connection instead of answering:
    /// the client's answer is lost, as when a connection breaks after the server committed.
    LoseResponse,
}

/// The answer of a [`FaultAction::Respond`] rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultResponse {
    /// HTTP status code (and Status `code`).
    pub code: u16,
    /// Status `reason`; `None` picks the real server's reason for the code.
    pub reason: Option<String>,
    /// Status `message`; `None` writes the real server's message for the reason.
    pub message: Option<String>,
    /// `Retry-After` header (and `details.retryAfterSeconds`), in seconds.
    pub retry_after: Option<u32>,
    /// Answer in plain text rather than a Status, as the real max-in-flight/APF filter does
    /// for its 429 (`Too many requests, please try again later.`).
    pub plain_text: bool,
}

/// A fault-injection rule: which requests it matches, what it does, how many times.
///
/// Build one with [`Fault::new`] (or [`Fault::any`]) and the chained setters; the last action
/// setter called wins. Without an action setter the rule answers 500 InternalError.
///
/// ```
/// use fake_apiserver::control::{Fault, FaultAction, Verb};
/// let fault = Fault::new(Verb::Patch, "events").namespace("ns").name("e1").status(409).times(1);
/// assert!(matches!(fault.action, FaultAction::Respond(ref r) if r.code == 409));
/// assert_eq!(fault.times, Some(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Verb to match; `None` matches every verb (and non-resource requests when `resource` is
    /// also `None`).
    pub verb: Option<Verb>,
    /// Resource plural to match (`events`); `"plural/sub"` matches that subresource only;
    /// `None` matches every resource.
    pub resource: Option<String>,
    /// API group to match; `None` matches every group (so `events` matches core/v1 and
    /// events.k8s.io/v1 alike).
    pub group: Option<String>,
    /// Namespace to match; `None` matches any (and cluster-scoped requests).
    pub namespace: Option<String>,
    /// Object name to match; `None` matches any (and collections).
    pub name: Option<String>,
    /// What to do.
    pub action: FaultAction,
    /// How many requests it applies to; `None` means until removed.
    pub times: Option<u32>,
}

impl Fault {
    /// A rule for `verb` on `resource` (plural, e.g. `"events"`), answering 500 until told
    /// otherwise.
    pub fn new(verb: Verb, resource: impl Into<String>) -> Self {
        Self {
            verb: Some(verb),
            resource: Some(resource.into()),
            ..Self::any()
        }
    }

    /// A rule matching every request (narrow it with the setters).
    pub fn any() -> Self {
        Self {
            verb: None,
            resource: None,
            group: None,
            namespace: None,
            name: None,
            action: FaultAction::Respond(FaultResponse {
                code: 500,
                reason: None,
                message: None,
                retry_after: None,
                plain_text: false,
            }),
            times: None,
        }
    }

    /// Matches only this verb.
    pub fn verb(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }

    /// Matches only this resource (plural; `"plural/sub"` for a subresource).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Matches only this API group (`""` for core).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Matches only requests in this namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Matches only requests for this object name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Applies to the next `n` matching requests only.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    /// Answers with this HTTP status, as a Status with the real server's reason and message.
    pub fn status(mut self, code: u16) -> Self {
        let mut response = self.response();
        response.code = code;
        self.action = FaultAction::Respond(response);
        self
    }

    /// Overrides the Status `reason` (e.g. `"AlreadyExists"` for a 409).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        let mut response = self.response();
        response.reason = Some(reason.into());
        self.action = FaultAction::Respond(response);
        self
    }

    /// Overrides the Status `message`.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        let mut response = self.response();
        response.message = Some(message.into());
        self.action = FaultAction::Respond(response);
        self
    }

    /// Sends `Retry-After: secs` (and `details.retryAfterSeconds`).
    pub fn retry_after(mut self, secs: u32) -> Self {
        let mut response = self.response();
        response.retry_after = Some(secs);
        self.action = FaultAction::Respond(response);
        self
    }

    /// Answers in plain text instead of a Status (the real overload 429).
    pub fn plain_text(mut self) -> Self {
        let mut response = self.response();
        response.plain_text = true;
        self.action = FaultAction::Respond(response);
        self
    }

    /// Delays the request by `latency` on the server's clock, then serves it.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.action = FaultAction::Latency(latency);
        self
    }

    /// Drops the connection instead of answering.
    pub fn drop_connection(mut self) -> Self {
        self.action = FaultAction::DropConnection;
        self
    }

    /// Serves the request, then drops the connection: the write happens, its answer is lost.
    ///
    /// ```
    /// use fake_apiserver::control::{Fault, FaultAction, Verb};
    /// let fault = Fault::new(Verb::Create, "events").lose_response().times(1);
    /// assert_eq!(fault.action, FaultAction::LoseResponse);
    /// ```
    pub fn lose_response(mut self) -> Self {
        self.action = FaultAction::LoseResponse;
        self
    }

    fn response(&self) -> FaultResponse {
        match &self.action {
            FaultAction::Respond(response) => response.clone(),
            _ => FaultResponse {
                code: 500,
                reason: None,
                message: None,
                retry_after: None,
                plain_text: false,
            },
        }
    }

    /// Whether this rule matches the request.
    pub fn matches(&self, info: &RequestInfo) -> bool {
        if self.verb.is_some() && self.verb != info.verb {
            return false;
        }
        if let Some(resource) = &self.resource {
            let (plural, sub) = match resource.split_once('/') {
                Some((plural, sub)) => (plural, Some(sub)),
                None => (resource.as_str(), None),
            };
            if info.resource.as_deref() != Some(plural) {
                return false;
            }
            if sub.is_some() && info.subresource.as_deref() != sub {
                return false;
            }
        }
        if let Some(group) = &self.group
            && (info.resource.is_none() || &info.group != group)
        {
            return false;
        }
        if self.namespace.is_some() && self.namespace != info.namespace {
            return false;
        }
        if self.name.is_some() && self.name != info.name {
            return false;
        }
        true
    }
}

/// Identifies a rule in [`Faults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FaultId(pub u64);

/// A rule as [`Faults::list`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultState {
    /// Its id.
    pub id: FaultId,
    /// The rule; `times` counts down as it applies.
    pub fault: Fault,
    /// How many requests it has applied to.
    pub hits: u64,
}

/// The fault rules of a cluster. Cheap to clone; clones share the rules.
///
/// Rules are tried in the order they were added. Every matching latency rule applies (their
/// delays add up); the first matching respond or drop rule ends the request. A rule whose
/// `times` reaches 0 is removed.
///
/// ```
/// use fake_apiserver::control::{Fault, Faults, Verb};
/// let faults = Faults::default();
/// let id = faults.add(Fault::new(Verb::Get, "nodes").status(503));
/// assert_eq!(faults.list().len(), 1);
/// assert!(faults.remove(id));
/// faults.clear();
/// ```
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultsInner>>,
}

#[derive(Default)]
struct FaultsInner {
    next_id: u64,
    rules: Vec<FaultState>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.list()).finish()
    }
}

impl Faults {
    /// Adds a rule; returns its id.
    pub fn add(&self, fault: Fault) -> FaultId {
        let mut inner = lock(&self.inner);
        let id = FaultId(inner.next_id);
        inner.next_id += 1;
        if fault.times != Some(0) {
            inner.rules.push(FaultState { id, fault, hits: 0 });
        }
        id
    }

    /// The active rules, in the order they are tried.
    pub fn list(&self) -> Vec<FaultState> {
        lock(&self.inner).rules.clone()
    }

    /// Removes one rule; `false` if it was not there (already used up or removed).
    pub fn remove(&self, id: FaultId) -> bool {
        let mut inner = lock(&self.inner);
        let before = inner.rules.len();
        inner.rules.retain(|rule| rule.id != id);
        inner.rules.len() != before
    }

    /// Removes every rule; returns how many there were.
    pub fn clear(&self) -> usize {
        let mut inner = lock(&self.inner);
        let cleared = inner.rules.len();
        inner.rules.clear();
        cleared
    }

    /// Applies the rules to a request: the summed latency and the ending action, if any.
    fn apply(&self, info: &RequestInfo) -> (Duration, Option<(FaultId, FaultAction)>) {
        let mut inner = lock(&self.inner);
        let mut latency = Duration::ZERO;
        let mut ending = None;
        for rule in inner.rules.iter_mut() {
            if !rule.fault.matches(info) {
                continue;
            }
            let ends = !matches!(rule.fault.action, FaultAction::Latency(_));
            if ends && ending.is_some() {
                continue;
            }
            rule.hits += 1;
            if let Some(times) = rule.fault.times.as_mut() {
                *times = times.saturating_sub(1);
            }
            match &rule.fault.action {
                FaultAction::Latency(delay) => latency = latency.saturating_add(*delay),
                action => ending = Some((rule.id, action.clone())),
            }
        }
        inner.rules.retain(|rule| rule.fault.times != Some(0));
        (latency, ending)
    }
}

// ---------------------------------------------------------------------------------------------
// Request log
// ---------------------------------------------------------------------------------------------

/// How a logged request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still being served (or its latency is still being slept).
    InFlight,
    /// Answered with this status (for a watch: the status of the stream's head).
    Responded(http::StatusCode),
    /// The connection was dropped by a fault rule.
    Dropped,
}

/// One request as the [`RequestLog`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// Position in arrival order since the cluster started (not reset by clearing).
    pub seq: u64,
    /// HTTP method.
    pub method: http::Method,
    /// Path, as sent (still percent-encoded).
    pub path: String,
    /// Raw query string, without `?`.
    pub query: Option<String>,
    /// The response status; `None` while in flight or when dropped.
    pub status: Option<http::StatusCode>,
    /// How it ended.
    pub outcome: Outcome,
    /// Time from arrival to the response head, on the server's clock.
    pub latency: Duration,
    /// The fault rule that answered or dropped it, if any.
    pub fault: Option<FaultId>,
    /// The request's `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The first [`MAX_LOGGED_BODY`] bytes of the request body (empty for requests refused
    /// by the HTTP layer); [`body_len`](Self::body_len) is the whole length.
    pub body: Bytes,
    /// The length of the whole request body, of which [`body`](Self::body) is the prefix.
    pub body_len: usize,
}

impl RequestRecord {
    /// Verb, resource, namespace and name: the [`RequestInfo`] the server parsed on arrival.
    /// It is derived from the method, path and query kept here, as parsing is a function of
    /// those alone (the log then holds no second copy of it per request).
    ///
    /// ```
    /// use fake_apiserver::control::Verb;
    /// let cluster = fake_apiserver::FakeCluster::new(std::sync::Arc::new(fake_apiserver::SystemClock));
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(cluster.client(), "default");
    /// let _ = pods.get_opt("web").await;
    /// let info = cluster.requests().last().map(|record| record.info());
    /// assert_eq!(info.map(|i| (i.verb, i.name)), Some((Some(Verb::Get), Some("web".into()))));
    /// # });
    /// ```
    pub fn info(&self) -> RequestInfo {
        RequestInfo::parse(&self.method, &self.path, self.query.as_deref())
    }

    /// `path?query` as sent.
    pub fn uri(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{}", self.path, query),
            None => self.path.clone(),
        }
    }

    /// The query parameters, decoded (a leading `&` and empty pairs are skipped).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        query_pairs(self.query.as_deref().unwrap_or(""))
    }

    /// Whether [`body`](Self::body) holds only a prefix of the request body.
    pub fn body_truncated(&self) -> bool {
        self.body.len() < self.body_len
    }

    /// The body parsed as JSON, if it is JSON (and was kept whole).
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The requests the cluster saw, in arrival order: a bounded ring keeping the latest
/// [`capacity`](Self::capacity) records (default [`DEFAULT_LOG_CAPACITY`]), so a long
/// simulation or a bench does not grow without bound. Cheap to clone; clones share the log.
///
/// ```
/// use fake_apiserver::control::RequestLog;
/// let log = RequestLog::with_capacity(2);
/// assert!(log.records().is_empty());
/// assert_eq!(log.capacity(), 2);
/// log.clear();
/// ```
#[derive(Clone)]
pub struct RequestLog {
    inner: Arc<Mutex<LogRing>>,
    next_seq: Arc<AtomicU64>,
}

/// How many records a [`RequestLog`] keeps unless told otherwise.
pub const DEFAULT_LOG_CAPACITY: usize = 10_000;

/// The most records a [`RequestLog`] can be set to keep.
pub const MAX_LOG_CAPACITY: usize = 1_000_000;

/// How much of each request body a record keeps (the rest is counted in
/// [`RequestRecord::body_len`], not kept).
pub const MAX_LOGGED_BODY: usize = 4 * 1024;

/// The most bytes (bodies, paths and queries) the records of a [`RequestLog`] hold together;
/// past it the oldest records go, whatever the capacity.
pub const MAX_LOG_BYTES: usize = 64 * 1024 * 1024;

/// A record's fixed cost in the byte budget (the struct, its parsed info), besides its texts.
const RECORD_OVERHEAD: usize = 256;

#[derive(Debug)]
struct LogRing {
    records: std::collections::VecDeque<RequestRecord>,
    capacity: usize,
    evicted: u64,
    bytes: usize,
    max_bytes: usize,
}

/// What a record costs the byte budget: its kept body and its URI (twice: as sent and parsed).
fn weight(record: &RequestRecord) -> usize {
    RECORD_OVERHEAD
        + record.body.len()
        + 2 * (record.path.len() + record.query.as_ref().map_or(0, String::len))
}

impl LogRing {
    fn len(&self) -> usize {
        self.records.len()
    }

    fn trim(&mut self) {
        while self.records.len() > self.capacity || self.bytes > self.max_bytes {
            let Some(record) = self.records.pop_front() else {
                self.bytes = 0;
                break;
            };
            self.bytes = self.bytes.saturating_sub(weight(&record));
            self.evicted += 1;
        }
    }
}

impl Default for RequestLog {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_LOG_CAPACITY)
    }
}

impl fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.records()).finish()
    }
}

impl RequestLog {
    /// An empty log keeping the latest `capacity` records (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(LogRing {
                records: std::collections::VecDeque::new(),
                capacity: capacity.clamp(1, MAX_LOG_CAPACITY),
                evicted: 0,
                bytes: 0,
                max_bytes: MAX_LOG_BYTES,
            })),
            next_seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many records the log keeps.
    pub fn capacity(&self) -> usize {
        lock(&self.inner).capacity
    }

    /// Changes how many records the log keeps (at least one, at most [`MAX_LOG_CAPACITY`]);
    /// the oldest go first.
    pub fn set_capacity(&self, capacity: usize) {
        let mut ring = lock(&self.inner);
        ring.capacity = capacity.clamp(1, MAX_LOG_CAPACITY);
        ring.trim();
    }

    /// How many requests arrived since the log was made, evicted and cleared ones included
    /// (a `u64`: at a billion requests a second it would take centuries to wrap). Counts of
    /// requests read this, not `records().len()`, which the ring bounds.
    ///
    /// ```
    /// let cluster = fake_apiserver::FakeCluster::default();
    /// assert_eq!(cluster.request_log().total(), 0);
    /// ```
    pub fn total(&self) -> u64 {
        self.next_seq.load(Ordering::SeqCst)
    }

    /// The bytes the kept records hold (bodies, paths, queries), at most
    /// [`max_bytes`](Self::max_bytes).
    pub fn bytes(&self) -> usize {
        lock(&self.inner).bytes
    }

    /// The most bytes the kept records may hold together (default [`MAX_LOG_BYTES`]).
    pub fn max_bytes(&self) -> usize {
        lock(&self.inner).max_bytes
    }

    /// Changes [`max_bytes`](Self::max_bytes) (at most [`MAX_LOG_BYTES`]); the oldest records
    /// go until the rest fit.
    pub fn set_max_bytes(&self, bytes: usize) {
        let mut ring = lock(&self.inner);
        ring.max_bytes = bytes.min(MAX_LOG_BYTES);
        ring.trim();
    }

    /// How many records were pushed out of the ring so far.
    pub fn evicted(&self) -> u64 {
        lock(&self.inner).evicted
    }

    /// A copy of the records, oldest first.
    pub fn records(&self) -> Vec<RequestRecord> {
        lock(&self.inner).records.iter().cloned().collect()
    }

    /// Forgets every record so far ([`total`](Self::total) keeps counting).
    pub fn clear(&self) {
        let mut ring = lock(&self.inner);
        ring.records.clear();
        ring.bytes = 0;
    }

    /// Records the arrival of a request; returns its sequence number.
    pub(crate) fn arrive(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> u64 {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let path = uri.path().to_string();
        let query = uri.query().map(str::to_string);
        let body_len = body.len();
        let body = if body_len > MAX_LOGGED_BODY {
            // A copy of the prefix: a slice would keep the whole body's buffer alive.
            Bytes::copy_from_slice(&body[..MAX_LOGGED_BODY])
        } else {
            body
        };
        let mut ring = lock(&self.inner);
        let record = RequestRecord {
            seq,
            method: method.clone(),
            path,
            query,
            status: None,
            outcome: Outcome::InFlight,
            latency: Duration::ZERO,
            fault: None,
            content_type,
            body,
            body_len,
        };
        ring.bytes = ring.bytes.saturating_add(weight(&record));
        ring.records.push_back(record);
        ring.trim();
        seq
    }

    /// Records how request `seq` ended.
    pub(crate) fn finish(
        &self,
        seq: u64,
        outcome: Outcome,
        latency: Duration,
        fault: Option<FaultId>,
    ) {
        let mut ring = lock(&self.inner);
        if let Some(record) = ring
            .records
            .iter_mut()
            .rev()
            .find(|record| record.seq == seq)
        {
            record.outcome = outcome;
            record.status = match outcome {
                Outcome::Responded(status) => Some(status),
                _ => None,
            };
            record.latency = latency;
            record.fault = fault;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Status responses
// ---------------------------------------------------------------------------------------------

/// The real server's `reason` for an HTTP status code (`""` when it has none).
///
/// ```
/// assert_eq!(fake_apiserver::control::reason_for(404), "NotFound");
/// assert_eq!(fake_apiserver::control::reason_for(504), "Timeout");
/// ```
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}

/// Builds the Status a fault rule answers with, worded as the real server words it: through
/// the same constructors as the API's own errors ([`ApiError`]), so an injected `NotFound`,
/// `AlreadyExists`, `Conflict` or `InternalError` reads exactly like a real one.
fn fault_status(response: &FaultResponse, info: &RequestInfo) -> Status {
    let reason = response
        .reason
        .clone()
        .unwrap_or_else(|| reason_for(response.code).to_string());
    let gr = GroupResource {
        group: &info.group,
        resource: info.resource.as_deref().unwrap_or(""),
    };
    let name = info.name.as_deref().unwrap_or("");
    let object = if name.is_empty() {
        gr.to_string()
    } else {
        format!("{gr} \"{name}\"")
    };
    let injected = "injected fault";
    let named = !name.is_empty();
    let mut error = match reason.as_str() {
        "NotFound" if named => ApiError::not_found(gr, name),
        "AlreadyExists" if named => ApiError::already_exists(gr, name),
        "Conflict" if named => ApiError::conflict(gr, name),
        "InternalError" => ApiError::internal(injected),
        _ => {
            let message = match reason.as_str() {
                "NotFound" => "the server could not find the requested resource".to_string(),
                "AlreadyExists" => format!("{object} already exists"),
                "Conflict" => format!(
                    "Operation cannot be fulfilled on {object}: the object has been modified; please apply your changes to the latest version and try again"
                ),
                "Forbidden" => {
                    let verb = info.verb.map(Verb::as_str).unwrap_or("get");
                    let scope = match &info.namespace {
                        Some(namespace) => format!("in the namespace \"{namespace}\""),
                        None => "at the cluster scope".to_string(),
                    };
                    format!(
                        "{object} is forbidden: User \"system:anonymous\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                        gr.resource, gr.group
                    )
                }
                "Unauthorized" => "Unauthorized".to_string(),
                "Invalid" => format!("{object} is invalid: {injected}"),
                "Expired" | "Gone" => {
                    "The resourceVersion for the provided watch is too old.".to_string()
                }
                "TooManyRequests" => "Too many requests, please try again later.".to_string(),
                "ServiceUnavailable" => {
                    "the server is currently unable to handle the request".to_string()
                }
                "Timeout" => {
                    "Timeout: request did not complete within the allotted timeout".to_string()
                }
                "BadRequest" => format!("the server rejected our request: {injected}"),
                _ => injected.to_string(),
            };
            let with_object = matches!(reason.as_str(), "Forbidden" | "Invalid") && named;
            let details = with_object.then(|| {
                let mut d = serde_json::Map::new();
                d.insert("name".into(), name.into());
                if !gr.group.is_empty() {
                    d.insert("group".into(), gr.group.into());
                }
                d.insert("kind".into(), gr.resource.into());
                serde_json::Value::Object(d)
            });
            let details = match details {
                None if reason == "Timeout" => Some(serde_json::json!({})),
                other => other,
            };
            ApiError::status(response.code, &reason, message, details)
        }
    };
    error.set_code(response.code);
    error.set_reason(&reason);
    if let Some(message) = &response.message {
        error.set_message(message);
    }
    if let Some(secs) = response.retry_after {
        error.set_retry_after(u64::from(secs));
    }
    serde_json::from_value(error.body).unwrap_or_else(|_| Status {
        code: Some(i32::from(response.code)),
        reason: Some(reason),
        status: Some("Failure".to_string()),
        ..Status::default()
    })
}

/// A JSON `Status` response with the HTTP status equal to its code.
///
/// ```
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
/// let status = Status { code: Some(401), reason: Some("Unauthorized".into()), ..Default::default() };
/// let response = fake_apiserver::control::status_response(&status);
/// assert_eq!(response.status(), 401);
/// ```
pub fn status_response(status: &Status) -> http::Response<ResponseBody> {
    crate::api::ApiError::from_status(status).response()
}

fn fault_response(response: &FaultResponse, info: &RequestInfo) -> http::Response<ResponseBody> {
    let status = fault_status(response, info);
    if !response.plain_text {
        return status_response(&status);
    }
    let text = status.message.unwrap_or_default();
    let code = http::StatusCode::from_u16(response.code)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut http_response = http::Response::new(Full::new(Bytes::from(text)).boxed());
    *http_response.status_mut() = code;
    http_response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(secs) = response.retry_after {
        http_response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
    }
    http_response
}

// ---------------------------------------------------------------------------------------------
// Tower plumbing
// ---------------------------------------------------------------------------------------------

/// A fault rule dropped the connection: the in-process transport error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connection dropped by an injected fault")]
pub struct ConnectionDropped;

/// The [`ApiServer`] as a tower service (never fails).
///
/// ```
/// # async fn demo() {
/// use fake_apiserver::control::ApiService;
/// use fake_apiserver::{ApiServer, SystemClock};
/// use tower::ServiceExt;
/// let service = ApiService::new(ApiServer::new(std::sync::Arc::new(SystemClock)));
/// let response = service.oneshot(http::Request::get("/version").body(bytes::Bytes::new()).unwrap()).await;
/// # let _ = response;
/// # }
/// ```
#[derive(Clone)]
pub struct ApiService {
    server: ApiServer,
}

impl ApiService {
    /// Wraps `server`.
    pub fn new(server: ApiServer) -> Self {
        Self { server }
    }
}

impl tower::Service<http::Request<Bytes>> for ApiService {
    type Response = http::Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Bytes>) -> Self::Future {
        let server = self.server.clone();
        Box::pin(async move { Ok(server.handle(request).await) })
    }
}

/// The shared state of the control layer: fault rules, request log, clock.
///
/// ```
/// use fake_apiserver::control::Control;
/// use fake_apiserver::SystemClock;
/// let control = Control::new(std::sync::Arc::new(SystemClock));
/// assert!(control.faults().list().is_empty());
/// ```
#[derive(Clone)]
pub struct Control {
    faults: Faults,
    log: RequestLog,
    clock: SharedClock,
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("faults", &self.faults)
            .field("requests", &lock(&self.log.inner).len())
            .finish()
    }
}

impl Control {
    /// No rules, an empty log; latency is slept and measured on `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            faults: Faults::default(),
            log: RequestLog::default(),
            clock,
        }
    }

    /// The fault rules.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The request log.
    pub fn log(&self) -> &RequestLog {
        &self.log
    }

    /// The clock latency is slept and measured on.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Logs a request answered before it reached the control layer (the HTTP transport's 401
    /// and 413), so the log still holds every request.
    pub(crate) fn log_rejected(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        status: u16,
    ) {
        if endpoint::is_control_path(uri.path()) {
            // The control path is not part of the Kubernetes requests the log shows.
            return;
        }
        let seq = self.log.arrive(method, uri, headers, Bytes::new());
        let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
        self.log
            .finish(seq, Outcome::Responded(status), Duration::ZERO, None);
    }
}

/// A tower layer adding fault injection and the request log around a service.
///
/// ```
/// use fake_apiserver::control::{ApiService, Control, ControlLayer};
/// use fake_apiserver::{ApiServer, SystemClock};
/// use std::sync::Arc;
/// use tower::Layer;
/// let clock = Arc::new(SystemClock);
/// let control = Control::new(clock.clone());
/// let service = ControlLayer::new(control).layer(ApiService::new(ApiServer::new(clock)));
/// # let _ = service;
/// ```
#[derive(Clone, Debug)]
pub struct ControlLayer {
    control: Control,
}

impl ControlLayer {
    /// A layer applying `control`'s rules and logging into its log.
    pub fn new(control: Control) -> Self {
        Self { control }
    }
}

impl<S> tower::Layer<S> for ControlLayer {
    type Service = ControlService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ControlService {
            inner,
            control: self.control.clone(),
        }
    }
}

/// The service [`ControlLayer`] builds. Errors are [`BoxError`]s; a dropped connection is a
/// [`ConnectionDropped`] inside one.
#[derive(Clone, Debug)]
pub struct ControlService<S> {
    inner: S,
    control: Control,
}

impl<S> tower::Service<http::Request<Bytes>> for ControlService<S>
where
    S: tower::Service<http::Request<Bytes>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResponseBody>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<Bytes>) -> Self::Future {
        // Parse the request once; the log, the fault rules and the API server's routing all
        // read this value (the request carries it to the API server once the faults let it
        // through).
        let info = RequestInfo::of(&request);
        // Take the service that was driven to readiness; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let control = self.control.clone();
        Box::pin(async move {
            let started = control.clock.now();
            let elapsed = |control: &Control| {
                let span = control.clock.now().duration_since(started);
                Duration::try_from(span).unwrap_or(Duration::ZERO)
            };
            let seq = control.log.arrive(
                request.method(),
                request.uri(),
                request.headers(),
                request.body().clone(),
            );
            let (latency, ending) = control.faults.apply(&info);
            if !latency.is_zero() {
                control.clock.sleep(latency).await;
            }
            match ending {
                Some((id, FaultAction::DropConnection)) => {
                    control
                        .log
                        .finish(seq, Outcome::Dropped, elapsed(&control), Some(id));
                    Err(Box::new(ConnectionDropped) as BoxError)
                }
                Some((id, FaultAction::Respond(response))) => {
                    let response = fault_response(&response, &info);
                    control.log.finish(
                        seq,
                        Outcome::Responded(response.status()),
                        elapsed(&control),
                        Some(id),
                    );
                    Ok(response)
                }
                Some((id, FaultAction::LoseResponse)) => {
                    // The server does the work; the client never hears of it.
                    request.extensions_mut().insert(info);
                    let _ = inner.call(request).await.map_err(Into::into)?;
                    control
                        .log
                        .finish(seq, Outcome::Dropped, elapsed(&control), Some(id));
                    Err(Box::new(ConnectionDropped) as BoxError)
                }
                Some((_, FaultAction::Latency(_))) | None => {
                    request.extensions_mut().insert(info);
                    match inner.call(request).await {
                        Ok(response) => {
                            control.log.finish(
                                seq,
                                Outcome::Responded(response.status()),
                                elapsed(&control),
                                None,
                            );
                            Ok(response)
                        }
                        Err(error) => {
                            control
                                .log
                                .finish(seq, Outcome::Dropped, elapsed(&control), None);
                            Err(error.into())
                        }
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_info::percent_decode;
    use http::Method;

    fn parse(method: Method, uri: &str) -> RequestInfo {
        let (path, query) = match uri.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (uri, None),
        };
        RequestInfo::parse(&method, path, query)
    }

    #[test]
    fn verbs_are_derived_like_the_real_server() {
        let cases = [
            (Method::GET, "/api/v1/namespaces/ns/pods/p", Some(Verb::Get)),
            (
                Method::GET,
                "/api/v1/namespaces/ns/pods?limit=500",
                Some(Verb::List),
            ),
            (
                Method::GET,
                "/api/v1/events?&watch=true&timeoutSeconds=290",
                Some(Verb::Watch),
            ),
            (Method::GET, "/api/v1/events?watch=0", Some(Verb::List)),
            (
                Method::GET,
                "/api/v1/watch/namespaces/ns/events",
                Some(Verb::Watch),
            ),
            (
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/ns/events",
                Some(Verb::Create),
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/ns/events/e",
                Some(Verb::Update),
            ),
            (
                Method::PATCH,
                "/api/v1/namespaces/ns/events/e",
                Some(Verb::Patch),
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/ns/events/e",
                Some(Verb::Delete),
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/ns/events",
                Some(Verb::DeleteCollection),
            ),
            (Method::GET, "/version", None),
            (Method::GET, "/apis/storage.k8s.io/v1", None),
            (Method::OPTIONS, "/api/v1/nodes", None),
        ];
        for (method, uri, verb) in cases {
            assert_eq!(parse(method.clone(), uri).verb, verb, "{method} {uri}");
        }
    }

    #[test]
    fn namespaces_names_and_field_selector_names() {
        let info = parse(Method::GET, "/api/v1/namespaces/kube-system");
        assert_eq!(info.resource.as_deref(), Some("namespaces"));
        assert_eq!(info.name.as_deref(), Some("kube-system"));
        assert_eq!(info.verb, Some(Verb::Get));
        let info = parse(Method::GET, "/api/v1/namespaces");
        assert_eq!((info.verb, info.name), (Some(Verb::List), None));
        let info = parse(
            Method::GET,
            "/api/v1/namespaces/ns/persistentvolumeclaims?fieldSelector=metadata.name%3Ddata&watch=1",
        );
        assert_eq!(info.verb, Some(Verb::Watch));
        assert_eq!(info.name.as_deref(), Some("data"));
        let info = parse(Method::GET, "/api/v1/namespaces/ns/pods/p/status");
        assert_eq!(info.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn rules_count_down_and_latency_adds_up() {
        let faults = Faults::default();
        faults.add(Fault::new(Verb::Get, "nodes").latency(Duration::from_secs(1)));
        faults.add(Fault::any().latency(Duration::from_secs(2)).times(1));
        faults.add(Fault::new(Verb::Get, "nodes").status(503).times(1));
        let info = parse(Method::GET, "/api/v1/nodes/n1");
        let (latency, ending) = faults.apply(&info);
        assert_eq!(latency, Duration::from_secs(3));
        assert!(matches!(ending, Some((_, FaultAction::Respond(ref r))) if r.code == 503));
        let (latency, ending) = faults.apply(&info);
        assert_eq!((latency, ending), (Duration::from_secs(1), None));
        assert_eq!(faults.list().len(), 1);
    }

    #[test]
    fn fault_statuses_read_like_the_real_server() {
        let info = parse(
            Method::GET,
            "/apis/events.k8s.io/v1/namespaces/ns/events/e1",
        );
        let fault = Fault::new(Verb::Get, "events").status(404);
        let FaultAction::Respond(response) = &fault.action else {
            panic!("respond rule")
        };
        let status = fault_status(response, &info);
        assert_eq!(status.reason.as_deref(), Some("NotFound"));
        assert_eq!(
            status.message.as_deref(),
            Some("events.events.k8s.io \"e1\" not found")
        );
        let details = status.details.expect("details");
        assert_eq!(details.group.as_deref(), Some("events.k8s.io"));
        assert_eq!(details.kind.as_deref(), Some("events"));
        let fault = Fault::new(Verb::Get, "events").status(429).retry_after(7);
        let FaultAction::Respond(response) = &fault.action else {
            panic!("respond rule")
        };
        let http = fault_response(response, &info);
        assert_eq!(http.status(), 429);
        assert_eq!(http.headers()[http::header::RETRY_AFTER], "7");
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%3Db%2C%"), "a=b,%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
