//! POST: stamping, defaulting, validation, admission and storage of a new object
//! (`pkg/endpoints/handlers/create.go`), plus fixture seeding and the access review.

use std::sync::Arc;

use serde_json::{Value, json};

use super::decode::{Prepared, decode_body, prepare_body};
use super::{Response, meta_mut, now_seconds, respond, update_manager, writer};
use crate::api::events;
use crate::api::filter::meta;
use crate::api::pointer::{fields_sorted, get_sorted, text};
use crate::api::resources::{self, ResourceDef, View};
use crate::api::status::ApiError;
use crate::api::store::{Key, State, Stored};
use crate::api::{ApiServer, Request, Target, add_warnings, json_response};

/// The strategy's validation of a new object (ObjectMeta and the kind's rules).
pub(super) fn validate_new(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    def.strategy.validate_create(obj, def.scope())
}

/// Wipes what a client may not set, fills namespace, name, uid and creationTimestamp.
pub(super) fn stamp_new(
    now: &str,
    state: &mut State,
    def: &ResourceDef,
    obj: &mut Value,
    url_ns: Option<&str>,
) -> Result<(), ApiError> {
    let uid = state.new_uid();
    let suffix_id = state.suffix_id();
    let Some(m) = meta_mut(obj) else {
        return Err(ApiError::bad_request("object has no metadata"));
    };
    // Found in one walk of the metadata (sorted keys); only those there are removed.
    const WIPED: [&str; 5] = [
        "creationTimestamp",
        "deletionGracePeriodSeconds",
        "deletionTimestamp",
        "selfLink",
        "uid",
    ];
    let present = get_sorted(m, WIPED).map(|found| found.is_some());
    for (key, present) in WIPED.into_iter().zip(present) {
        if present {
            m.remove(key);
        }
    }
    super::decode::reconcile_namespace(m, def.namespaced, url_ns.unwrap_or(""))?;
    m.insert("creationTimestamp".into(), Value::String(now.to_string()));
    m.insert("uid".into(), Value::String(uid));
    let name = m.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() {
        let generate = m.get("generateName").and_then(Value::as_str).unwrap_or("");
        if !generate.is_empty() {
            let name = format!("{generate}{}", state.name_suffix(suffix_id));
            m.insert("name".into(), Value::String(name));
        }
    }
    Ok(())
}

/// The storage step of a create: namespace exists, no resourceVersion, name free.
pub(super) fn store_new(
    state: &mut State,
    def: &'static ResourceDef,
    mut obj: Value,
) -> Result<Arc<Stored>, ApiError> {
    let canonical = resources::storage_row(def.storage).unwrap_or(def);
    // The fields read, each map walked once.
    let (mut ns, name, has_rv, has_meta, api_version_ok, kind_ok) = {
        let [api_version, kind, m] = fields_sorted(Some(&obj), ["apiVersion", "kind", "metadata"]);
        let [name, namespace, rv] = fields_sorted(m, ["name", "namespace", "resourceVersion"]);
        (
            text(namespace).unwrap_or("").to_string(),
            text(name).unwrap_or("").to_string(),
            text(rv).is_some_and(|rv| !rv.is_empty()),
            m.is_some(),
            // Written below unless already the canonical ones (as a decoded body has them).
            text(api_version).is_some_and(|v| canonical.api_version_is(v)),
            text(kind) == Some(canonical.kind),
        )
    };
    let namespace = if def.namespaced {
        // The namespace's key holds `ns` for the lookup and hands it back (no copy).
        let key: Key = ("namespaces", String::new(), ns);
        let found = state.get(&key);
        ns = key.2;
        match found {
            Some(namespace) => Some(namespace),
            None => return Err(ApiError::namespace_not_found(&ns)),
        }
    } else {
        None
    };
    if namespace.is_some_and(|namespace| !meta(namespace, "deletionTimestamp").is_empty()) {
        return Err(ApiError::status(
            403,
            "Forbidden",
            format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                def.plural
            ),
            Some(json!({"name": name, "kind": def.plural})),
        ));
    }
    if has_rv {
        return Err(ApiError::status(
            500,
            "",
            "resourceVersion should not be set on objects to be created",
            None,
        ));
    }
    let key: Key = (def.storage, ns, name);
    if let Some(map) = obj.as_object_mut() {
        // What `meta_mut` does. An empty `resourceVersion` (a set one is refused above)
        // stays: the store writes the new revision over it, in its slot.
        if !has_meta {
            map.insert("metadata".into(), Value::Object(serde_json::Map::new()));
        }
        if !api_version_ok {
            map.insert("apiVersion".into(), Value::String(canonical.api_version()));
        }
        if !kind_ok {
            map.insert("kind".into(), Value::String(canonical.kind.into()));
        }
    }
    state
        .put_new(key, obj)
        .map_err(|obj| ApiError::already_exists(def, meta(&obj, "name")))
}

/// The create of a kind that is not stored (a review): decoded, validated and prepared by
/// its strategy, answered 201, and forgotten.
pub(super) fn create_unstored(target: &Target, req: &Request) -> Result<Response, ApiError> {
    let def = target.def;
    let body = decode_body(def, req)?;
    let Prepared { mut obj, warnings } = prepare_body(def, body, req)?;
    validate_new(def, &obj)?;
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(def.api_version()));
        map.insert("kind".into(), json!(def.kind));
    }
    def.strategy.prepare_for_create(&mut obj);
    let mut response = json_response(201, &obj);
    add_warnings(&mut response, &warnings);
    Ok(response)
}

pub(super) fn create(
    server: &ApiServer,
    target: &Target,
    req: &Request,
) -> Result<Response, ApiError> {
    let def = target.def;
    let body = decode_body(def, req)?;
    let prepared = prepare_body(def, body, req)?;
    create_prepared(server, target, req, prepared, true)
}

/// Stamps, validates and stores a prepared new object; answers 201 with its warnings.
pub(super) fn create_prepared(
    server: &ApiServer,
    target: &Target,
    req: &Request,
    Prepared { mut obj, warnings }: Prepared,
    record_update: bool,
) -> Result<Response, ApiError> {
    let def = target.def;
    let manager = update_manager(req);
    let now = now_seconds(server);
    let stored = {
        let mut state = server.store.lock();
        stamp_new(&now, &mut state, def, &mut obj, target.namespace.as_deref())?;
        def.strategy.prepare_for_create(&mut obj);
        def.strategy.default_fields(&mut obj);
        // The field manager sees the decoded (defaulted) object, before mutating admission.
        if record_update {
            crate::api::managed::record_update(None, &mut obj, &writer(target, &manager, &now));
        }
        validate_new(def, &obj)?;
        def.strategy.admit_create(&mut obj);
        let stored = store_new(&mut state, def, obj)?;
        def.strategy
            .after_create(&mut state, &stored, &server.clock.now());
        crate::api::controllers::settle(&mut state);
        stored
    };
    let mut response = respond(def, req, 201, &stored, &server.clock);
    add_warnings(&mut response, &warnings);
    Ok(response)
}

/// Stores a fixture object as given (see [`ApiServer::seed`]).
pub(crate) fn seed(server: &ApiServer, object: Value) -> Result<Value, String> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let def = resources::by_kind(api_version, kind).ok_or_else(|| {
        format!("no served resource has apiVersion {api_version:?} and kind {kind:?}")
    })?;
    let mut body = object.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    let body = match def.view {
        View::EventsV1 => events::v1_to_core(body).0,
        View::Plain | View::CoreEvent => body,
    };
    let mut obj = (def.normalize)(body)
        .map_err(|e| {
            format!("{kind} in version {api_version:?} cannot be handled as a {kind}: {e}")
        })?
        .obj;
    let mut state = server.store.lock();
    let uid = state.new_uid();
    let now = now_seconds(server);
    let Some(m) = meta_mut(&mut obj) else {
        return Err("object has no metadata".into());
    };
    let name = m
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        return Err(format!("{kind} has no metadata.name"));
    }
    // A fixture naming a namespace the cluster already has (say `default`) is fine as it is.
    if def.strategy.seed_keeps_existing() && !def.namespaced {
        let key: Key = (def.storage, String::new(), name.clone());
        if let Some(existing) = state.get(&key) {
            return Ok(Value::clone(existing));
        }
    }
    if def.namespaced {
        if m.get("namespace")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            m.insert("namespace".into(), json!("default"));
        }
    } else {
        m.remove("namespace");
    }
    m.entry("uid").or_insert(json!(uid));
    m.entry("creationTimestamp").or_insert(json!(now));
    m.remove("resourceVersion");
    def.strategy.seed_defaults(&mut obj);
    let stored = store_new(&mut state, def, obj).map_err(|e| e.to_string())?;
    def.strategy
        .after_create(&mut state, &stored, &server.clock.now());
    Ok(Value::clone(&stored))
}
