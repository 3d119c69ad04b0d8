//! The request handlers, one file per stage of a resource request, as kube-apiserver's
//! `pkg/endpoints/handlers` splits them:
//! - `dispatch`: routing to the verb, and dry run;
//! - `get`: get, list and paging;
//! - `decode`: body decoding and field validation;
//! - `create`, `update`, `patch`, `delete`: the writes.
//!
//! What differs per kind is asked of the row's strategy (`strategy`), never decided here.

mod create;
mod decode;
mod delete;
mod dispatch;
mod get;
mod patch;
mod update;

pub(crate) use create::seed;
pub(crate) use dispatch::{Dispatched, dispatch};

use serde_json::{Map, Value, json};

use crate::api::events;
use crate::api::filter::view;
use crate::api::resources::{ResourceDef, View};
use crate::api::store::{Key, KeyRef, Stored};
use crate::api::{
    ApiServer, Request, ResponseBody, Target, json_response, partial_metadata, table,
};
use crate::clock::SharedClock;

type Response = http::Response<ResponseBody>;

pub(super) fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    // Looked up first: `entry` would copy the key even when it is there.
    if !map.contains_key("metadata") {
        map.insert("metadata".into(), json!({}));
    }
    map.get_mut("metadata")?.as_object_mut()
}

pub(super) fn now_seconds(server: &ApiServer) -> String {
    let now = server.clock.now();
    let second = now.as_second();
    // The text of the last second written, kept: most writes fall in the same second.
    thread_local! {
        static LAST: std::cell::RefCell<Option<(i64, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    let cached = LAST.with(|last| {
        last.try_borrow().ok().and_then(|last| {
            last.as_ref()
                .filter(|(s, _)| *s == second)
                .map(|(_, t)| t.clone())
        })
    });
    if let Some(text) = cached {
        return text;
    }
    match jiff::Timestamp::from_second(second) {
        Ok(t) => {
            let text = t.to_string();
            LAST.with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    *last = Some((second, text.clone()));
                }
            });
            text
        }
        Err(_) => now.to_string(),
    }
}

/// The ownership writer of a request (`managed`).
pub(super) fn writer<'a>(
    target: &'a Target,
    manager: &'a str,
    now: &'a str,
) -> crate::api::managed::Writer<'a> {
    crate::api::managed::Writer {
        manager,
        api_version: target.def.api_version(),
        subresource: target.subresource.as_deref().unwrap_or(""),
        now,
        has_status: target.def.has_status,
    }
}

/// The manager of a non-apply write: `?fieldManager=` or the User-Agent prefix.
pub(super) fn update_manager(req: &Request) -> String {
    crate::api::managed::update_manager(
        req.query.get("fieldManager"),
        req.header(http::header::USER_AGENT),
    )
}

pub(super) fn key_of(target: &Target, name: &str) -> Key {
    (
        target.def.storage,
        target.namespace.clone().unwrap_or_default(),
        name.to_string(),
    )
}

/// [`key_of`] borrowed: the key of `name` in the target's resource and namespace, for a
/// lookup that builds no key.
pub(super) fn key_ref_of<'a>(target: &'a Target, name: &'a str) -> KeyRef<'a> {
    (
        target.def.storage,
        target.namespace.as_deref().unwrap_or(""),
        name,
    )
}

pub(super) fn respond(
    def: &ResourceDef,
    req: &Request,
    code: u16,
    stored: &Stored,
    clock: &SharedClock,
) -> Response {
    let wants_metadata = req.wants_metadata();
    let wants_table = req.wants_table();
    if !wants_metadata && !wants_table && crate::api::filter::view_is_stored(def, stored) {
        // The view would be an identical copy: the stored object's JSON text (serialised once
        // per stored version, whatever the number of reads).
        return crate::api::json_bytes_response(code, stored.json());
    }
    if !wants_metadata
        && !wants_table
        && def.view == View::CoreEvent
        && let Some(fields) = stored.as_object()
    {
        // The core/v1 event view, written without copying the stored event.
        let json = events::CoreView(fields).json();
        return crate::api::json_bytes_response(code, bytes::Bytes::from(json));
    }
    let shown = view(def, stored);
    if wants_metadata {
        return json_response(code, &partial_metadata(&shown));
    }
    if wants_table {
        return json_response(
            code,
            &table::table(
                table::Include::from_query(req.query.get("includeObject")),
                def,
                std::slice::from_ref(&shown),
                None,
                // Read only here: a table's ages are the only part that needs the time.
                clock.now(),
            ),
        );
    }
    json_response(code, &shown)
}
