//! The runner's view of the Events the driver wrote.
//!
//! Embedded: the fake server's watch over every namespace (every create and patch the server
//! stored, in write order, with the count it stored), read by a task as the writes land, so
//! each is stamped with the virtual time it landed at. A watch that ends (its
//! `timeoutSeconds`, a server-side close) is resumed from the last revision seen; a 410 Gone
//! (history compacted) re-lists and reports each Event's latest state not reported yet, so
//! nothing is lost or repeated. External: listing, keeping the count
//! last seen of each Event (several writes of one Event during one step show as one entry
//! with the last count).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};

use super::isolate::Isolation;
use super::run_error::RunError;
use super::transcript::WrittenEvent;
use crate::clock::{Clock, VirtualClock, settle};
use crate::duration::GoDuration;
use fake_apiserver::{ApiServer, FakeCluster};

/// Where written events are read from.
pub(crate) enum EventFeed {
    /// The fake server's watch over every namespace, read by a task as the writes land.
    Watch {
        /// Writes as the task saw them land, stamped.
        received: tokio::sync::mpsc::UnboundedReceiver<WrittenEvent>,
        /// The task (aborted with the feed).
        task: tokio::task::JoinHandle<()>,
    },
    /// Listing (external mode): new Events and count changes since the last listing.
    Listing {
        client: kube::Client,
        namespaces: Vec<String>,
        seen: BTreeMap<(String, String), i32>,
        clock: VirtualClock,
        start: jiff::Timestamp,
        /// This run's own names taken out of what is read back (`--kubeconfig`).
        restore: Option<Isolation>,
    },
}

impl Drop for EventFeed {
    fn drop(&mut self) {
        if let EventFeed::Watch { task, .. } = self {
            task.abort();
        }
    }
}

/// How many times a listing of one namespace's Events is tried per step.
const LIST_ATTEMPTS: usize = 3;

/// How long one watch asks to last (on the server's clock); it is resumed when it ends.
const WATCH_SECONDS: u64 = 365 * 24 * 3600;

/// The embedded cluster's Event watch, resumed where it ended, re-listed after a 410.
struct Watcher {
    server: ApiServer,
    clock: VirtualClock,
    start: jiff::Timestamp,
    /// The resourceVersion to resume from.
    resume: u64,
    /// (namespace, name) → the resourceVersion last reported, so a re-list repeats nothing.
    seen: HashMap<(String, String), u64>,
    out: tokio::sync::mpsc::UnboundedSender<WrittenEvent>,
}

impl Watcher {
    async fn run(mut self) {
        loop {
            if self.out.is_closed() {
                return;
            }
            let gone = self.watch_once().await;
            if gone {
                self.relist().await;
            }
            // A watch that ended: resume from the last revision seen (a little later, so a
            // server that ends every watch at once cannot starve the run).
            tokio::task::yield_now().await;
        }
    }

    /// One watch from `resume` until it ends; true when the server answered 410 Gone.
    async fn watch_once(&mut self) -> bool {
        let uri = format!(
            "/api/v1/events?watch=true&allowWatchBookmarks=true&resourceVersion={}&timeoutSeconds={WATCH_SECONDS}",
            self.resume
        );
        let Ok(request) = http::Request::get(uri).body(Bytes::new()) else {
            return false;
        };
        let response = self.server.handle(request).await;
        if response.status() == http::StatusCode::GONE {
            return true;
        }
        if !response.status().is_success() {
            return false;
        }
        let mut body = response.into_body();
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buffer.extend_from_slice(&data);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                // Decoded once, straight into the fields read (no intermediate tree).
                let Ok(line) = serde_json::from_slice::<WatchLine>(&line) else {
                    continue;
                };
                match line.kind {
                    LineKind::Added | LineKind::Modified => self.report(line.object),
                    LineKind::Bookmark | LineKind::Deleted => {
                        if let Some(rv) = line.object.rv() {
                            self.resume = self.resume.max(rv);
                        }
                    }
                    LineKind::Error => return line.object.code == Some(410),
                }
            }
        }
        false
    }

    /// Reports every Event whose latest state was not reported yet (history was compacted:
    /// the writes in between are seen as their latest state).
    async fn relist(&mut self) {
        let Ok(request) = http::Request::get("/api/v1/events").body(Bytes::new()) else {
            return;
        };
        let response = self.server.handle(request).await;
        let body = match response.into_body().collect().await {
            Ok(body) => body,
            Err(never) => match never {},
        };
        let Ok(list) = serde_json::from_slice::<serde_json::Value>(&body.to_bytes()) else {
            return;
        };
        let mut events: Vec<(u64, FeedEvent)> = list
            .get("items")
            .and_then(|items| items.as_array())
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let rv = object_rv(item)?;
                // Read as the full Event would be: one that is not an Event is left out.
                serde_json::from_value::<Event>(item.clone()).ok()?;
                Some((rv, serde_json::from_value::<FeedEvent>(item.clone()).ok()?))
            })
            .collect();
        events.sort_by_key(|(rv, _)| *rv);
        for (_, event) in events {
            self.report(event);
        }
        if let Some(rv) = list
            .get("metadata")
            .and_then(|m| m.get("resourceVersion"))
            .and_then(|rv| rv.as_str())
            .and_then(|rv| rv.parse().ok())
        {
            self.resume = self.resume.max(rv);
        }
    }

    fn report(&mut self, mut event: FeedEvent) {
        let rv: u64 = event.rv().unwrap_or(0);
        self.resume = self.resume.max(rv);
        let key = (
            event.metadata.namespace.take().unwrap_or_default(),
            event.metadata.name.take().unwrap_or_default(),
        );
        if self.seen.get(&key).is_some_and(|seen| *seen >= rv) {
            return;
        }
        self.seen.insert(key, rv);
        let at = offset(&self.clock, self.start);
        let _ = self.out.send(event.written(at));
    }
}

/// One line of the watch stream, decoded in one pass into the fields the feed reads (the
/// server writes `object` before `type`, so the object takes one shape for every type).
#[derive(serde::Deserialize)]
struct WatchLine {
    #[serde(rename = "type")]
    kind: LineKind,
    object: FeedEvent,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum LineKind {
    Added,
    Modified,
    Deleted,
    Bookmark,
    Error,
}

/// What the feed reads of a watch line's object: an Event's fields, a Status's code, the
/// resourceVersion of anything (every other field is skipped unread).
#[derive(serde::Deserialize, Default)]
struct FeedEvent {
    #[serde(default)]
    metadata: FeedMeta,
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    count: Option<i32>,
    #[serde(default, rename = "involvedObject")]
    involved_object: FeedReference,
    /// A Status's code (an ERROR line).
    #[serde(default)]
    code: Option<u64>,
}

#[derive(serde::Deserialize, Default)]
struct FeedMeta {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "resourceVersion")]
    resource_version: Option<String>,
}

#[derive(serde::Deserialize, Default)]
struct FeedReference {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl FeedEvent {
    fn rv(&self) -> Option<u64> {
        self.metadata.resource_version.as_deref()?.parse().ok()
    }

    fn written(self, at: String) -> WrittenEvent {
        WrittenEvent {
            at,
            event_type: self.type_.unwrap_or_default(),
            reason: self.reason.unwrap_or_default(),
            namespace: self.involved_object.namespace.unwrap_or_default(),
            name: self.involved_object.name.unwrap_or_default(),
            message: self.message.unwrap_or_default(),
            count: self.count.unwrap_or(1),
        }
    }
}

fn object_rv(object: &serde_json::Value) -> Option<u64> {
    object
        .get("metadata")?
        .get("resourceVersion")?
        .as_str()?
        .parse()
        .ok()
}

/// The clock's offset from `start` as Go prints a duration.
pub(crate) fn offset(clock: &VirtualClock, start: jiff::Timestamp) -> String {
    GoDuration::from_std(clock.now().duration_since(start).unsigned_abs()).to_string()
}

impl EventFeed {
    /// Watches every Event written on `cluster` from now on; each is stamped with the
    /// clock's offset from `start` when its write lands.
    pub(crate) async fn watch(
        cluster: &FakeCluster,
        clock: VirtualClock,
        start: jiff::Timestamp,
    ) -> Result<Self, RunError> {
        let (out, received) = tokio::sync::mpsc::unbounded_channel();
        let watcher = Watcher {
            server: cluster.server().clone(),
            clock,
            start,
            resume: cluster.server().resource_version(),
            seen: HashMap::new(),
            out,
        };
        let task = tokio::spawn(watcher.run());
        Ok(EventFeed::Watch { received, task })
    }

    /// Lists the Events of `namespaces`; what is there already is not this run's.
    pub(crate) async fn listing(
        client: kube::Client,
        namespaces: Vec<String>,
        clock: VirtualClock,
        start: jiff::Timestamp,
    ) -> Result<Self, RunError> {
        let mut feed = EventFeed::Listing {
            client,
            namespaces,
            seen: BTreeMap::new(),
            clock,
            start,
            restore: None,
        };
        // What is already there (an earlier run with --keep) is not this run's.
        let _ = feed.drain().await;
        Ok(feed)
    }

    /// Reads events back in the scenario's own names (a listing feed of a run with names of
    /// its own, [`Isolation`]).
    pub(crate) fn restoring(mut self, isolation: Isolation) -> Self {
        if let EventFeed::Listing { restore, .. } = &mut self {
            *restore = Some(isolation);
        }
        self
    }

    /// The names this feed restores events to, if the run has names of its own.
    pub(crate) fn isolation(&self) -> Option<&Isolation> {
        match self {
            EventFeed::Listing { restore, .. } => restore.as_ref(),
            _ => None,
        }
    }

    /// The writes since the last call, in order.
    pub(crate) async fn drain(&mut self) -> Vec<WrittenEvent> {
        match self {
            EventFeed::Watch { received, .. } => {
                // Let the watch task read what has landed.
                settle().await;
                let mut written = Vec::new();
                while let Ok(event) = received.try_recv() {
                    written.push(event);
                }
                written
            }
            EventFeed::Listing {
                client,
                namespaces,
                seen,
                clock,
                start,
                restore,
            } => {
                let at = offset(clock, *start);
                let mut written = Vec::new();
                for namespace in namespaces.iter() {
                    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
                    // A listing that fails (a connection the server closed while idle) is
                    // tried again, so this step's events are not put off to a later one.
                    let mut listed = None;
                    for _ in 0..LIST_ATTEMPTS {
                        match api.list(&ListParams::default()).await {
                            Ok(list) => {
                                listed = Some(list);
                                break;
                            }
                            Err(error) => tracing::warn!(
                                namespace = %namespace,
                                "listing the events of {namespace} failed: {error}; trying again"
                            ),
                        }
                    }
                    let Some(list) = listed else {
                        continue;
                    };
                    let mut items = list.items;
                    items.sort_by_key(|e| {
                        (
                            e.last_timestamp.as_ref().map(|t| t.0),
                            e.metadata.name.clone(),
                        )
                    });
                    for event in items {
                        let key = (
                            namespace.clone(),
                            event.metadata.name.clone().unwrap_or_default(),
                        );
                        let count = event.count.unwrap_or(1);
                        if seen.get(&key) != Some(&count) {
                            seen.insert(key, count);
                            let event = written_event(&event, at.clone());
                            written.push(match restore {
                                Some(isolation) => isolation.restore_event(event),
                                None => event,
                            });
                        }
                    }
                }
                written
            }
        }
    }
}

fn written_event(event: &Event, at: String) -> WrittenEvent {
    WrittenEvent {
        at,
        event_type: event.type_.clone().unwrap_or_default(),
        reason: event.reason.clone().unwrap_or_default(),
        namespace: event.involved_object.namespace.clone().unwrap_or_default(),
        name: event.involved_object.name.clone().unwrap_or_default(),
        message: event.message.clone().unwrap_or_default(),
        count: event.count.unwrap_or(1),
    }
}
