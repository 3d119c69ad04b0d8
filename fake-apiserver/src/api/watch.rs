//! Watch: a streamed response of newline-delimited JSON watch events (`docs/fidelity.md` §5.3):
//! synthetic ADDED events for a watch from "now", replay from a resourceVersion, `410 Expired`
//! as an ERROR event for a compacted one, selector enter/leave as ADDED/DELETED, bookmarks,
//! `sendInitialEvents`, and `timeoutSeconds` (on the server's clock). A watcher that falls
//! behind the kept history gets the ERROR 410 too, never a silent gap.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};

use super::filter::{Filter, view};
use super::resources::ResourceDef;
use super::status::{ApiError, FieldError};
use super::store::{ChangeType, set_rv};
use super::{ApiServer, Request, ResponseBody, Target, partial_metadata, table};

type Response = http::Response<ResponseBody>;

/// Default watch length when the client sends no `timeoutSeconds` (the real server picks
/// 30 to 60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct WatchState {
    server: ApiServer,
    def: &'static ResourceDef,
    filter: Filter,
    cursor: u64,
    rx: tokio::sync::watch::Receiver<u64>,
    pending: VecDeque<Bytes>,
    bookmarks: bool,
    as_table: bool,
    as_metadata: bool,
    include: table::Include,
    /// Fires at `timeoutSeconds` on the server's clock (a task sleeping on the clock; the
    /// stream must be `Sync`, which a clock `Sleep` is not).
    deadline: tokio::sync::oneshot::Receiver<()>,
    /// Aborts that task (dropping its sleep) when the watch ends.
    _timer: AbortOnDrop,
    done: bool,
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One watch event line: `{"object":…,"type":…}` and a newline, the bytes
/// `serde_json::to_vec(&json!({"type": kind, "object": object}))` gives (keys in sorted
/// order), written straight from `object` instead of from a copy of it.
fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes = Vec::with_capacity(1024);
    bytes.extend_from_slice(b"{\"object\":");
    let written = serde_json::to_writer(&mut bytes, object)
        .and_then(|()| {
            bytes.extend_from_slice(b",\"type\":");
            serde_json::to_writer(&mut bytes, kind)
        })
        .is_ok();
    if !written {
        // As before: a line that cannot be encoded is empty.
        bytes.clear();
    } else {
        bytes.push(b'}');
    }
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// [`line`] from an object's JSON text already written (the same bytes).
fn line_of_json(kind: &str, object: &[u8]) -> Bytes {
    let mut bytes = Vec::with_capacity(object.len() + 32);
    bytes.extend_from_slice(b"{\"object\":");
    bytes.extend_from_slice(object);
    bytes.extend_from_slice(b",\"type\":");
    super::response::write_json_str(&mut bytes, kind);
    bytes.extend_from_slice(b"}\n");
    Bytes::from(bytes)
}

impl WatchState {
    /// The watch line of `kind` for `stored`. Where the client asked for the full object and
    /// its view is the stored object itself (the object's JSON text, written once per stored
    /// version) or the core/v1 event view (written straight from the stored event), the line
    /// is written from that text instead of from a copy of the object in a new tree: the same
    /// bytes as [`line`] of [`Self::shown`], which debug builds check.
    fn line_for(&self, kind: &str, stored: &super::store::Stored) -> Bytes {
        if self.as_metadata || self.as_table {
            return line(kind, &self.shown(stored));
        }
        let direct = if super::filter::view_is_stored(self.def, stored) {
            Some(line_of_json(kind, &stored.json()))
        } else if self.def.view == super::resources::View::CoreEvent
            && let Some(fields) = stored.as_object()
        {
            Some(line_of_json(kind, &super::events::CoreView(fields).json()))
        } else {
            None
        };
        match direct {
            Some(bytes) => {
                debug_assert_eq!(
                    bytes,
                    line(kind, &self.shown(stored)),
                    "a watch line written from the object's text differs from its view's"
                );
                bytes
            }
            None => line(kind, &self.shown(stored)),
        }
    }

    fn shown(&self, stored: &Value) -> Value {
        let shown = view(self.def, stored);
        if self.as_metadata {
            return partial_metadata(&shown);
        }
        if self.as_table {
            return table::table(
                self.include,
                self.def,
                std::slice::from_ref(&shown),
                None,
                self.server.clock.now(),
            );
        }
        shown
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut object = json!({
            "kind": self.def.kind,
            "apiVersion": self.def.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
        });
        if initial_end {
            object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        // A bookmark takes the shape the client asked objects in.
        if self.as_metadata {
            object["kind"] = json!("PartialObjectMetadata");
            object["apiVersion"] = json!("meta.k8s.io/v1");
        } else if self.as_table {
            object = json!({
                "kind": "Table",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": object["metadata"].clone(),
                "columnDefinitions": [],
                "rows": [],
            });
        }
        line("BOOKMARK", &object)
    }

    /// Queues the changes after the cursor.
    fn collect(&mut self) {
        self.rx.borrow_and_update();
        let state = self.server.store.lock();
        if state.rv() <= self.cursor {
            return;
        }
        if self.cursor < state.compacted() {
            // The changes after the cursor were trimmed or compacted away: as etcd's watcher,
            // end with 410 rather than skip them.
            let message = self
                .def
                .strategy
                .watch_too_old(self.cursor, state.compacted() + 1);
            drop(state);
            self.pending
                .push_back(line("ERROR", &ApiError::expired(message).body));
            self.done = true;
            return;
        }
        let mut lines = Vec::new();
        let mut skipped = false;
        // The history is in revision order: start at the first change after the cursor.
        let start = state.history().partition_point(|c| c.rv <= self.cursor);
        for change in state
            .history()
            .range(start..)
            .filter(|c| c.storage == self.def.storage)
        {
            let now_matches = self.filter.matches(self.def, &change.object);
            let was_matching = change
                .old
                .as_ref()
                .is_some_and(|o| self.filter.matches(self.def, o));
            let event = match change.kind {
                ChangeType::Added if now_matches => Some(("ADDED", change.object.clone())),
                ChangeType::Modified if now_matches && was_matching => {
                    Some(("MODIFIED", change.object.clone()))
                }
                ChangeType::Modified if now_matches => Some(("ADDED", change.object.clone())),
                ChangeType::Modified if was_matching => {
                    let mut old = change
                        .old
                        .as_deref()
                        .map(|o| Value::clone(o))
                        .unwrap_or_default();
                    set_rv(&mut old, change.rv);
                    Some((
                        "DELETED",
                        std::sync::Arc::new(super::store::Stored::new(old)),
                    ))
                }
                ChangeType::Deleted if was_matching => Some(("DELETED", change.object.clone())),
                _ => None,
            };
            match event {
                Some((kind, obj)) => lines.push(self.line_for(kind, &obj)),
                None => skipped = true,
            }
        }
        let latest = state.rv();
        drop(state);
        // Changes of this resource the selector filtered out: tell the client how far it is.
        if lines.is_empty() && skipped && self.bookmarks {
            lines.push(self.bookmark(latest, false));
        }
        self.pending.extend(lines);
        self.cursor = latest;
    }
}

/// `validateWatchOptions` (apimachinery internalversion validation), WatchList enabled as in
/// 1.33.
fn watch_option_errors(
    send_initial: Option<bool>,
    rv_match: Option<&str>,
    cont: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if send_initial.is_some() && rv_match != Some("NotOlderThan") {
        errs.push(FieldError::forbidden(
            "resourceVersionMatch",
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if let Some(m) = rv_match {
        if send_initial.is_none() {
            errs.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if m != "NotOlderThan" {
            errs.push(super::strategy::not_supported(
                "resourceVersionMatch",
                m,
                &["NotOlderThan"],
            ));
        }
        if cont {
            errs.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
    }
    errs
}

/// Starts a watch.
pub(crate) fn serve(
    server: &ApiServer,
    target: &Target,
    req: &Request,
) -> Result<Response, ApiError> {
    let def = target.def;
    let filter = Filter::new(target, req)?;
    let send_initial = req.query.get("sendInitialEvents").map(super::query_bool);
    let rv_match = req
        .query
        .get("resourceVersionMatch")
        .filter(|v| !v.is_empty());
    let errs = watch_option_errors(
        send_initial,
        rv_match,
        req.query.get("continue").is_some_and(|c| !c.is_empty()),
    );
    if !errs.is_empty() {
        return Err(ApiError::invalid("ListOptions", "meta.k8s.io", "", &errs));
    }
    let requested = match req.query.get("resourceVersion").filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: \"{text}\": must be a decimal integer"
            ))
        })?),
    };
    let timeout = req
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let bookmarks = req.query.flag("allowWatchBookmarks");
    let rx = server.store.subscribe();
    let (fire, deadline) = tokio::sync::oneshot::channel();
    let sleep = server.clock.sleep(timeout);
    let timer = AbortOnDrop(
        tokio::spawn(async move {
            sleep.await;
            let _ = fire.send(());
        })
        .abort_handle(),
    );
    let mut st = WatchState {
        server: server.clone(),
        def,
        filter,
        cursor: 0,
        rx,
        pending: VecDeque::new(),
        bookmarks,
        as_table: req.wants_table(),
        as_metadata: req.wants_metadata(),
        include: table::Include::from_query(req.query.get("includeObject")),
        deadline,
        _timer: timer,
        done: false,
    };
    {
        let state = server.store.lock();
        let initial = send_initial == Some(true) || matches!(requested, None | Some(0));
        match requested {
            Some(n) if n != 0 && n < state.compacted() && send_initial != Some(true) => {
                let message = def.strategy.watch_too_old(n, state.compacted() + 1);
                st.pending
                    .push_back(line("ERROR", &ApiError::expired(message).body));
                st.done = true;
            }
            _ => {
                if initial {
                    let objs: Vec<std::sync::Arc<super::store::Stored>> = state
                        .objects_of(def.storage, None)
                        .filter(|(_, o)| st.filter.matches(def, o))
                        .map(|(_, o)| o.clone())
                        .collect();
                    st.cursor = state.rv();
                    drop(state);
                    for o in objs {
                        let added = st.line_for("ADDED", &o);
                        st.pending.push_back(added);
                    }
                    if send_initial == Some(true) || bookmarks {
                        let rv = st.cursor;
                        st.pending
                            .push_back(st.bookmark(rv, send_initial == Some(true)));
                    }
                } else {
                    st.cursor = requested.unwrap_or(0);
                }
            }
        }
    }
    let stream = futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(bytes) = st.pending.pop_front() {
                return Some((Ok::<_, Infallible>(Frame::data(bytes)), st));
            }
            if st.done {
                return None;
            }
            st.collect();
            if !st.pending.is_empty() {
                continue;
            }
            tokio::select! {
                changed = st.rx.changed() => {
                    if changed.is_err() {
                        st.done = true;
                    }
                }
                _ = &mut st.deadline => st.done = true,
            }
        }
    });
    let mut response = http::Response::new(StreamBody::new(stream).boxed());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_the_bytes_of_its_json_object() {
        let object = json!({"metadata": {"name": "e\"1", "resourceVersion": "7"}, "count": 2, "a": [1, {"z": null}]});
        for kind in ["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"] {
            let mut expected =
                serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap();
            expected.push(b'\n');
            assert_eq!(line(kind, &object), Bytes::from(expected), "{kind}");
        }
    }

    #[test]
    fn a_line_from_the_objects_text_is_the_same_bytes() {
        let object = json!({"metadata": {"name": "e\"1", "resourceVersion": "7"}, "count": 2, "a": [1, {"z": null}]});
        let text = serde_json::to_vec(&object).unwrap();
        for kind in ["ADDED", "MODIFIED", "DELETED"] {
            assert_eq!(line_of_json(kind, &text), line(kind, &object), "{kind}");
        }
    }
}
