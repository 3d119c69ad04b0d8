//! PUT, and the update step PATCH shares: preconditions, carried-over fields, validation,
//! admission, no-op detection (`pkg/endpoints/handlers/update.go`).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::create::{stamp_new, store_new, validate_new};
use super::decode::{
    Prepared, decode_body_skipping, prepare_body, put_back_managed_fields,
    take_unchanged_managed_fields,
};
use super::{Response, key_of, meta_mut, now_seconds, respond, update_manager, writer};
use crate::api::filter::meta;
use crate::api::pointer::Pointer;
use crate::api::resources;
use crate::api::status::{ApiError, FieldError};
use crate::api::store::{ChangeType, State, Stored};
use crate::api::{ApiServer, Request, Target, add_warnings};

/// Whether two objects are equal apart from `metadata.resourceVersion` (as comparing their
/// [`strip_rv`] copies, without the copies).
pub(super) fn same_but_rv(a: &Value, b: &Value) -> bool {
    fn meta_of<'a>(
        m: &'a Map<String, Value>,
        empty: &'a Map<String, Value>,
    ) -> Option<&'a Map<String, Value>> {
        match m.get("metadata") {
            None => Some(empty),
            Some(v) => v.as_object(),
        }
    }
    let empty = Map::new();
    let (Some(a_map), Some(b_map)) = (a.as_object(), b.as_object()) else {
        return strip_rv(a) == strip_rv(b);
    };
    let (Some(a_meta), Some(b_meta)) = (meta_of(a_map, &empty), meta_of(b_map, &empty)) else {
        return strip_rv(a) == strip_rv(b);
    };
    let not = |skip: &'static str| move |(k, _): &(&String, &Value)| k.as_str() != skip;
    // The metadata first: a write changes it most often (and it is cheaper than a spec).
    a_meta
        .iter()
        .filter(not("resourceVersion"))
        .eq(b_meta.iter().filter(not("resourceVersion")))
        && a_map
            .iter()
            .filter(not("metadata"))
            .eq(b_map.iter().filter(not("metadata")))
}

pub(super) fn strip_rv(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = meta_mut(&mut o) {
        m.remove("resourceVersion");
    }
    o
}

/// A string field of a metadata object (`""` when absent or not a string, as [`meta`]).
fn meta_str<'a>(metadata: &'a Value, key: &str) -> &'a str {
    metadata.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The metadata fields a write cannot set: an update keeps the stored ones.
const FIXED_METADATA: [&str; 5] = [
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Whether the new metadata has the old one's [`FIXED_METADATA`] already (each there with the
/// same value, or absent from both): both maps walked once side by side, without a lookup.
fn same_fixed_fields(old: Option<&Map<String, Value>>, new: &Map<String, Value>) -> bool {
    let fixed = |(k, _): &(&String, &Value)| FIXED_METADATA.contains(&k.as_str());
    let empty = Map::new();
    old.unwrap_or(&empty)
        .iter()
        .filter(fixed)
        .eq(new.iter().filter(fixed))
}

/// The update step shared by PUT and PATCH: preconditions, carried-over fields, validation,
/// no-op detection, finalizer completion. Returns the stored result and the status code.
pub(super) fn apply_update(
    server: &ApiServer,
    state: &mut State,
    target: &Target,
    mut new: Value,
    existing: Arc<Stored>,
    update_writer: Option<&crate::api::managed::Writer<'_>>,
) -> Result<(Arc<Stored>, u16), ApiError> {
    let def = target.def;
    let name = target.name.clone().unwrap_or_default();
    let (sent_rv, new_uid) = match new.get("metadata") {
        Some(m) => (meta_str(m, "resourceVersion"), meta_str(m, "uid")),
        None => ("", ""),
    };
    let (stored_rv, stored_uid) = match existing.get("metadata") {
        Some(m) => (meta_str(m, "resourceVersion"), meta_str(m, "uid")),
        None => ("", ""),
    };
    if !sent_rv.is_empty() && sent_rv != stored_rv {
        return Err(ApiError::conflict(def, &name));
    }
    // validateCommonFields: the uid may be left out but not changed.
    let mut common = Vec::new();
    if !new_uid.is_empty() && new_uid != stored_uid {
        common.push(FieldError::invalid(
            "metadata.uid",
            new_uid,
            "field is immutable",
        ));
    }
    if target.subresource.is_some() {
        let status = new.get("status").cloned();
        let managed = new.ptr("/metadata/managedFields").cloned();
        new = Value::clone(&existing);
        if let Some(map) = new.as_object_mut() {
            match status {
                Some(s) => map.insert("status".into(), s),
                None => map.remove("status"),
            };
        }
        if let Some(m) = meta_mut(&mut new) {
            match managed {
                Some(v) => m.insert("managedFields".into(), v),
                None => m.remove("managedFields"),
            };
        }
    } else if def.has_status {
        // The stored status, unless the body's is the same already (no copy then).
        if let Some(map) = new.as_object_mut() {
            match existing.get("status") {
                Some(s) => {
                    if map.get("status") != Some(s) {
                        map.insert("status".into(), s.clone());
                    }
                }
                None => {
                    map.remove("status");
                }
            }
        }
    }
    // The stored values of the fields a write cannot set (each copied only when the body's
    // differs: the map is sorted, so the result is the same).
    let old_meta = existing.get("metadata").and_then(Value::as_object);
    if let Some(m) = meta_mut(&mut new)
        && !same_fixed_fields(old_meta, m)
    {
        for key in FIXED_METADATA {
            match old_meta.and_then(|o| o.get(key)) {
                Some(v) => {
                    if m.get(key) != Some(v) {
                        m.insert(key.into(), v.clone());
                    }
                }
                None => {
                    m.remove(key);
                }
            }
        }
    }
    if let Some(m) = meta_mut(&mut new) {
        m.remove("selfLink");
    }
    let canonical = resources::storage_row(def.storage).unwrap_or(def);
    if let Some(map) = new.as_object_mut() {
        let api_version = canonical.api_version();
        if map.get("apiVersion").and_then(Value::as_str) != Some(api_version.as_str()) {
            map.insert("apiVersion".into(), Value::String(api_version));
        }
        if map.get("kind").and_then(Value::as_str) != Some(canonical.kind) {
            map.insert("kind".into(), Value::String(canonical.kind.into()));
        }
    }
    let status_only = target.subresource.is_some();
    def.strategy
        .validate_update(&new, &existing, status_only, def.scope(), common)?;
    def.strategy
        .admit_update(state, &new, &existing, status_only)?;
    if let Some(w) = update_writer {
        crate::api::managed::record_update(Some(&existing), &mut new, w);
    }
    let key = key_of(target, &name);
    if same_but_rv(&new, &existing) {
        return Ok((existing, 200));
    }
    let finalizers_done = new
        .ptr("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if finalizers_done && !meta(&new, "deletionTimestamp").is_empty() {
        let last = state.remove_as(&key, new).unwrap_or_default();
        crate::api::controllers::settle(state);
        return Ok((Arc::new(Stored::new(last)), 200));
    }
    let _ = server;
    let stored = state.put(key, new, ChangeType::Modified);
    crate::api::controllers::settle(state);
    Ok((stored, 200))
}

pub(super) fn check_name_and_namespace(target: &Target, obj: &mut Value) -> Result<(), ApiError> {
    let url_name = target.name.as_deref().unwrap_or_default();
    let name = meta(obj, "name");
    if name != url_name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({url_name})"
        )));
    }
    let Some(m) = meta_mut(obj) else {
        return Ok(());
    };
    super::decode::reconcile_namespace(
        m,
        target.def.namespaced,
        target.namespace.as_deref().unwrap_or(""),
    )
}

pub(super) fn update(
    server: &ApiServer,
    target: &Target,
    req: &Request,
) -> Result<Response, ApiError> {
    let def = target.def;
    let name = target.name.clone().unwrap_or_default();
    // managedFields sent back as stored skip the decoding round trip: their text is
    // recognised while reading the body (`decode_body_skipping`), or their value after it
    // (`take_unchanged_managed_fields`). The stored object is looked at again under the lock.
    let key = key_of(target, &name);
    let current = server.store.lock().get(&key).cloned();
    let (mut body, left_out) = decode_body_skipping(
        def,
        req,
        current.as_deref().and_then(Stored::managed_fields_json),
    )?;
    let kept = match &current {
        Some(_) if left_out => None,
        Some(stored) => take_unchanged_managed_fields(&mut body, stored),
        None => None,
    };
    let Prepared { mut obj, warnings } = prepare_body(def, body, req)?;
    put_back_managed_fields(&mut obj, kept);
    check_name_and_namespace(target, &mut obj)?;
    let manager = update_manager(req);
    let now = now_seconds(server);
    let w = writer(target, &manager, &now);
    let (stored, code) = {
        let mut state = server.store.lock();
        let existing = state.get(&key).cloned();
        if left_out {
            // The entries left out are the ones read before the lock. Still stored, they are
            // what the write keeps when the body has none (`record_update`): nothing to put
            // back. Changed since, the body's (those) go back in.
            let still = matches!((&existing, &current), (Some(e), Some(c)) if Arc::ptr_eq(e, c));
            if !still {
                let sent = current
                    .as_deref()
                    .and_then(|c| c.ptr("/metadata/managedFields"));
                put_back_managed_fields(&mut obj, sent.cloned());
            }
        }
        match existing {
            Some(existing) => apply_update(server, &mut state, target, obj, existing, Some(&w))?,
            None if def.strategy.allow_create_on_update() && target.subresource.is_none() => {
                stamp_new(&now, &mut state, def, &mut obj, target.namespace.as_deref())?;
                validate_new(def, &obj)?;
                if let Some(m) = meta_mut(&mut obj) {
                    m.remove("resourceVersion");
                }
                crate::api::managed::record_update(None, &mut obj, &w);
                (store_new(&mut state, def, obj)?, 201)
            }
            None => return Err(ApiError::not_found(def, &name)),
        }
    };
    let mut response = respond(def, req, code, &stored, &server.clock);
    add_warnings(&mut response, &warnings);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::{same_but_rv, strip_rv};
    use serde_json::json;

    #[test]
    fn fixed_fields_compare_as_looked_up_one_by_one() {
        let metas = [
            json!({}),
            json!({"uid": "u", "name": "a"}),
            json!({"uid": "u", "name": "b", "labels": {"x": "1"}}),
            json!({"uid": "v"}),
            json!({"uid": "u", "generation": 1}),
            json!({"creationTimestamp": "t", "uid": "u", "generation": 1, "zz": 0}),
            json!({"deletionTimestamp": "t", "deletionGracePeriodSeconds": 0}),
        ];
        for old in &metas {
            for new in &metas {
                let (o, n) = (old.as_object(), new.as_object().expect("an object"));
                let one_by_one = super::FIXED_METADATA
                    .iter()
                    .all(|k| o.and_then(|o| o.get(*k)) == n.get(*k));
                assert_eq!(super::same_fixed_fields(o, n), one_by_one, "{old} {new}");
                assert_eq!(
                    super::same_fixed_fields(None, n),
                    n.keys()
                        .all(|k| !super::FIXED_METADATA.contains(&k.as_str()))
                );
            }
        }
    }

    #[test]
    fn same_but_rv_agrees_with_comparing_stripped_copies() {
        let objects = [
            json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "a", "resourceVersion": "2"}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "a"}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 2}}),
            json!({"metadata": {"name": "b", "resourceVersion": "1"}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "a", "labels": {}}, "spec": {"x": 1}}),
            json!({"metadata": {"resourceVersion": "3"}}),
            json!({"metadata": {}}),
            json!({}),
            json!({"spec": {"x": 1}}),
            json!({"metadata": null}),
            json!({"metadata": null, "spec": {"x": 1}}),
            json!({"metadata": {"name": "a", "resourceVersion": "1"}}),
            json!([1, 2]),
            json!("text"),
        ];
        for a in &objects {
            for b in &objects {
                assert_eq!(same_but_rv(a, b), strip_rv(a) == strip_rv(b), "{a} vs {b}");
            }
        }
    }
}
