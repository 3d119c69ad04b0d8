//! The reads: GET of one object, LIST with selectors and paging (`limit`/`continue`,
//! `pkg/endpoints/handlers/get.go`).

use serde_json::{Map, Value, json};

use super::{Response, key_ref_of, respond};
use crate::api::filter::{Filter, meta, view};
use crate::api::status::ApiError;
use crate::api::{ApiServer, Request, Target, json_response, partial_metadata, table};

pub(super) fn get(
    server: &ApiServer,
    target: &Target,
    req: &Request,
) -> Result<Response, ApiError> {
    let name = target.name.as_deref().unwrap_or("");
    let state = server.store.lock();
    let obj = state
        .get_ref(key_ref_of(target, name))
        .ok_or_else(|| ApiError::not_found(target.def, name))?;
    Ok(respond(target.def, req, 200, obj, &server.clock))
}

pub(super) fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}/{name}\u{0}")});
    token
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) fn decode_continue(token: &str) -> Option<(String, String)> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let value: Value = serde_json::from_slice(&bytes?).ok()?;
    let start = value.get("start")?.as_str()?.strip_suffix('\u{0}')?;
    let (ns, name) = start.split_once('/')?;
    Some((ns.to_string(), name.to_string()))
}

pub(super) fn list(
    server: &ApiServer,
    target: &Target,
    req: &Request,
) -> Result<Response, ApiError> {
    let def = target.def;
    let filter = Filter::new(target, req)?;
    let limit = req
        .query
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .filter(|l| *l > 0);
    let start = match req.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(decode_continue(token).ok_or_else(|| {
            ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        })?),
        None => None,
    };
    let state = server.store.lock();
    let mut items = Vec::new();
    let mut next = None;
    let mut remaining = 0i64;
    // etcd orders keys `<namespace>/<name>` by bytes: sort by that string, not the tuple
    // (`a-b/x` comes before `a/x`).
    // Candidates: from the store's index when an exact term on an indexed field allows it,
    // else the range of this resource (and namespace) in key order.
    let indexed = state.index_labels(def.storage).iter().find_map(|label| {
        filter
            .exact(label)
            .and_then(|value| state.indexed(label, value))
    });
    let mut keyed: Vec<(String, &Value)> = match indexed {
        Some(keys) => keys
            .iter()
            .filter_map(|key| state.get(key).map(|obj| (key, obj.value())))
            .map(|((_, ns, name), obj)| (format!("{ns}/{name}"), obj))
            .collect(),
        None => {
            let ns = filter.namespace().unwrap_or("").to_string();
            state
                .objects_of(def.storage, (!ns.is_empty()).then_some(ns.as_str()))
                .map(|((_, ns, name), obj)| (format!("{ns}/{name}"), obj.value()))
                .collect()
        }
    };
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let start_key = start.as_ref().map(|(ns, name)| format!("{ns}/{name}"));
    for (key, obj) in keyed {
        if start_key
            .as_ref()
            .is_some_and(|s| key.as_str() <= s.as_str())
        {
            continue;
        }
        if !filter.matches(def, obj) {
            continue;
        }
        if limit.is_some_and(|l| items.len() as i64 >= l) {
            if next.is_none()
                && let Some(last) = items.last()
            {
                next = Some(encode_continue(
                    state.rv(),
                    meta(last, "namespace"),
                    meta(last, "name"),
                ));
            }
            remaining += 1;
            continue;
        }
        items.push(view(def, obj));
    }
    let rv = state.rv();
    drop(state);
    let now = server.clock.now();
    let shown: Vec<Value> = items;
    if req.wants_table() {
        return Ok(json_response(
            200,
            &table::table(
                table::Include::from_query(req.query.get("includeObject")),
                def,
                &shown,
                Some((rv, next.as_deref())),
                now,
            ),
        ));
    }
    let (list_kind, list_api_version) = if req.wants_metadata() {
        (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else {
        (def.list_kind(), def.api_version())
    };
    let items: Vec<Value> = shown
        .into_iter()
        .map(|o| {
            if req.wants_metadata() {
                partial_metadata(&o)
            } else {
                o
            }
        })
        .map(|mut o| {
            if req.wants_metadata() {
                return o;
            }
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            o
        })
        .collect();
    let mut list_meta = Map::new();
    list_meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if let Some(token) = next {
        list_meta.insert("continue".into(), json!(token));
        if !filter.has_selectors() {
            list_meta.insert("remainingItemCount".into(), json!(remaining));
        }
    }
    Ok(json_response(
        200,
        &json!({"kind": list_kind, "apiVersion": list_api_version, "metadata": list_meta, "items": items}),
    ))
}
