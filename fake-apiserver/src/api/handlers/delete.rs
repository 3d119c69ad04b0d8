//! DELETE and DELETE on a collection: preconditions, finalizers, the namespace lifecycle
//! (`pkg/endpoints/handlers/delete.go`).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Response, key_of, meta_mut, now_seconds};
use crate::api::filter::{Filter, meta, view};
use crate::api::pointer::Pointer;
use crate::api::resources::ResourceDef;
use crate::api::status::{self, ApiError};
use crate::api::store::{ChangeType, Key, State};
use crate::api::{ApiServer, Request, Target, json_response};

/// Deletes one object in `state`; returns the status code and body object.
pub(super) fn delete_one(
    server: &ApiServer,
    state: &mut State,
    def: &'static ResourceDef,
    key: Key,
    options: &Value,
) -> Result<(Value, bool), ApiError> {
    let name = key.2.clone();
    let existing = state
        .get(&key)
        .map(|o| Value::clone(o))
        .ok_or_else(|| ApiError::not_found(def, &name))?;
    if let Some(uid) = options.ptr("/preconditions/uid").and_then(Value::as_str) {
        let actual = meta(&existing, "uid");
        if uid != actual {
            return Err(ApiError::conflict_with(
                def,
                &name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = options
        .ptr("/preconditions/resourceVersion")
        .and_then(Value::as_str)
    {
        let actual = meta(&existing, "resourceVersion");
        if rv != actual {
            return Err(ApiError::conflict_with(
                def,
                &name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    let has_finalizers = existing
        .ptr("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    def.strategy.validate_delete(&name)?;
    if def.strategy.deleted_by_controller() {
        if !meta(&existing, "deletionTimestamp").is_empty() {
            return Ok((existing, true));
        }
        // As the real server: the object is marked (a namespace turns Terminating), and its
        // controller deletes it (a namespace: what it holds first) a little later.
        let mut marked = existing;
        if let Some(m) = meta_mut(&mut marked) {
            m.insert("deletionTimestamp".into(), json!(now_seconds(server)));
        }
        def.strategy.mark_for_deletion(&mut marked);
        let stored =
            Arc::unwrap_or_clone(state.put(key, marked, ChangeType::Modified)).into_value();
        crate::api::controllers::finalize_namespace_later(
            server.clock.clone(),
            Arc::clone(&server.store),
            name.clone(),
        );
        return Ok((stored, true));
    }
    if has_finalizers {
        if meta(&existing, "deletionTimestamp").is_empty() {
            let mut marked = existing;
            if let Some(m) = meta_mut(&mut marked) {
                m.insert("deletionTimestamp".into(), json!(now_seconds(server)));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            let stored = state.put(key, marked, ChangeType::Modified);
            return Ok((Arc::unwrap_or_clone(stored).into_value(), true));
        }
        return Ok((existing, true));
    }
    let last = state.remove(&key).unwrap_or(existing);
    Ok((last, def.returns_deleted))
}

pub(super) fn delete_options(req: &Request) -> Result<Value, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub(super) fn delete(
    server: &ApiServer,
    target: &Target,
    req: &Request,
) -> Result<Response, ApiError> {
    let def = target.def;
    let options = delete_options(req)?;
    let name = target.name.clone().unwrap_or_default();
    let (obj, as_object) = {
        let mut state = server.store.lock();
        let deleted = delete_one(server, &mut state, def, key_of(target, &name), &options)?;
        crate::api::controllers::settle(&mut state);
        deleted
    };
    if as_object {
        return Ok(json_response(200, &view(def, &obj)));
    }
    Ok(json_response(
        200,
        &status::success_status(def, &name, meta(&obj, "uid")),
    ))
}

pub(super) fn delete_collection(
    server: &ApiServer,
    target: &Target,
    req: &Request,
) -> Result<Response, ApiError> {
    let def = target.def;
    let options = delete_options(req)?;
    let filter = Filter::new(target, req)?;
    let mut deleted = Vec::new();
    let rv = {
        let mut state = server.store.lock();
        let keys: Vec<Key> = state
            .objects_of(def.storage, None)
            .filter(|(_, o)| filter.matches(def, o))
            .map(|((storage, ns, name), _)| (storage, ns.to_owned(), name.to_owned()))
            .collect();
        for key in keys {
            let (obj, _) = delete_one(server, &mut state, def, key, &options)?;
            let mut shown = view(def, &obj);
            if let Some(m) = shown.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            deleted.push(shown);
        }
        crate::api::controllers::settle(&mut state);
        state.rv()
    };
    Ok(json_response(
        200,
        &json!({"kind": def.list_kind(), "apiVersion": def.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": deleted}),
    ))
}
