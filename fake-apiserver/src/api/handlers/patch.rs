//! PATCH: JSON, merge, strategic merge and server-side apply, each ending in the update step
//! (`pkg/endpoints/handlers/patch.go`).

use serde_json::{Value, json};

use super::create::create_prepared;
use super::decode::{
    Prepared, prepare_body, put_back_managed_fields, take_unchanged_managed_fields,
};
use super::update::{apply_update, check_name_and_namespace};
use super::{Response, key_of, now_seconds, respond, update_manager, writer};
use crate::api::filter::view;
use crate::api::status::{ApiError, FieldError};
use crate::api::{ApiServer, Request, Target, add_warnings};

pub(super) fn patch(
    server: &ApiServer,
    target: &Target,
    req: &Request,
) -> Result<Response, ApiError> {
    let def = target.def;
    let kind = match &*req.content_type() {
        "application/json-patch+json" => crate::api::patch::PatchType::Json,
        "application/merge-patch+json" => crate::api::patch::PatchType::Merge,
        "application/strategic-merge-patch+json" => crate::api::patch::PatchType::Strategic,
        "application/apply-patch+yaml" => crate::api::patch::PatchType::Apply,
        _ => return Err(ApiError::unsupported_patch_type()),
    };
    let patch_doc: Value = match kind {
        crate::api::patch::PatchType::Apply => {
            if req.query.get("fieldManager").is_none_or(str::is_empty) {
                return Err(ApiError::invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    &[FieldError::required(
                        "fieldManager",
                        "is required for apply patch",
                    )],
                ));
            }
            let text = std::str::from_utf8(&req.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            serde_saphyr::from_str(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        }
        _ => serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    let name = target.name.clone().unwrap_or_default();
    let is_apply = kind == crate::api::patch::PatchType::Apply;
    let manager = if is_apply {
        req.query.get("fieldManager").unwrap_or("").to_string()
    } else {
        update_manager(req)
    };
    let now = now_seconds(server);
    let w = writer(target, &manager, &now);
    let force = req.query.flag("force");
    // ValidatePatchOptions: `force` only goes with an apply.
    if !is_apply && req.query.get("force").is_some() {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            &[FieldError::forbidden(
                "force",
                "may not be specified for non-apply patch",
            )],
        ));
    }
    let (stored, code, warnings) = {
        let mut state = server.store.lock();
        let key = key_of(target, &name);
        let existing = state.get(&key).cloned();
        let Some(existing) = existing else {
            if is_apply && target.subresource.is_none() {
                drop(state);
                if !patch_doc.is_object() {
                    return Err(ApiError::bad_request(
                        "error decoding patch: json: cannot unmarshal into Go value of type map[string]interface {}",
                    ));
                }
                let owned = crate::api::managed::apply(&json!({}), &patch_doc, force, &w)?;
                return apply_create(server, target, req, owned);
            }
            return Err(ApiError::not_found(def, &name));
        };
        let current = view(def, &existing);
        let patched = if is_apply {
            if !patch_doc.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: json: cannot unmarshal into Go value of type map[string]interface {}",
                ));
            }
            crate::api::managed::apply(&current, &patch_doc, force, &w)?
        } else {
            crate::api::patch::apply(kind, def, &current, &patch_doc)?
        };
        // The patched object's text goes into the error of a strict decoding only: written
        // out under `fieldValidation=Strict` alone, not on every patch.
        let patched_text = if req.query.get("fieldValidation") == Some("Strict") {
            patched.to_string()
        } else {
            String::new()
        };
        // managedFields the patch left as stored were decoded when stored: they skip the
        // decoding round trip (the largest part of most objects) and are put back after it.
        let mut patched = patched;
        let kept = take_unchanged_managed_fields(&mut patched, &existing);
        let Prepared { mut obj, warnings } =
            prepare_body(def, patched, req).map_err(|e| strict_patch_error(e, &patched_text))?;
        put_back_managed_fields(&mut obj, kept);
        check_name_and_namespace(target, &mut obj)?;
        let update_writer = (!is_apply).then_some(&w);
        let (stored, code) =
            apply_update(server, &mut state, target, obj, existing, update_writer)?;
        (stored, code, warnings)
    };
    let mut response = respond(def, req, code, &stored, &server.clock);
    add_warnings(&mut response, &warnings);
    Ok(response)
}

/// Under `fieldValidation=Strict` a patched object with unknown fields is a 422 on "patch"
/// (`NewInvalid(GroupKind{}, "", ...)`), not the 400 of a create.
pub(super) fn strict_patch_error(error: ApiError, patched: &str) -> ApiError {
    let message = error
        .body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("");
    if error.code == 400 && message.starts_with("strict decoding error") {
        return ApiError::invalid(
            "",
            "",
            "",
            &[FieldError::invalid("patch", patched, message)],
        );
    }
    error
}

pub(super) fn apply_create(
    server: &ApiServer,
    target: &Target,
    req: &Request,
    doc: Value,
) -> Result<Response, ApiError> {
    let def = target.def;
    let mut prepared = prepare_body(def, doc, req)?;
    check_name_and_namespace(target, &mut prepared.obj)?;
    create_prepared(server, target, req, prepared, false)
}
