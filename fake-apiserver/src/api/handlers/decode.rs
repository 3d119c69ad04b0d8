//! Body decoding and field validation: a create/update body by its Content-Type, decoded
//! through the k8s-openapi type, with `fieldValidation` (Ignore, Warn, Strict) applied to the
//! fields that did not survive decoding.

use serde_json::{Value, json};

use crate::api::Request;
use crate::api::events;
use crate::api::resources::{Decoded, ResourceDef, View};
use crate::api::status::ApiError;

/// Decodes a create/update body by its Content-Type.
pub(super) fn decode_body(def: &ResourceDef, req: &Request) -> Result<Value, ApiError> {
    let value: Value = match req.content_type().as_str() {
        crate::api::protobuf::MEDIA_TYPE => {
            let envelope = crate::api::protobuf::envelope(&req.body).map_err(|e| {
                ApiError::bad_request(format!(
                    "couldn't get version/kind; protobuf decode error: {e}"
                ))
            })?;
            let mut value = (def.protobuf)(&envelope.raw).map_err(|e| {
                ApiError::bad_request(format!(
                    "{} in version \"{}\" cannot be handled as a {}: {e}",
                    def.kind, def.version, def.kind
                ))
            })?;
            if let Some(map) = value.as_object_mut() {
                map.insert("apiVersion".into(), json!(envelope.api_version));
                map.insert("kind".into(), json!(envelope.kind));
            }
            value
        }
        "" | "application/json" => serde_json::from_slice(&req.body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        "application/yaml" => {
            let text = std::str::from_utf8(&req.body).map_err(|e| {
                ApiError::bad_request(format!("couldn't get version/kind; yaml parse error: {e}"))
            })?;
            serde_saphyr::from_str(text).map_err(|e| {
                ApiError::bad_request(format!("couldn't get version/kind; yaml parse error: {e}"))
            })?
        }
        _ => return Err(ApiError::unsupported_body_type()),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: json: cannot unmarshal into Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }",
        ));
    }
    Ok(value)
}

/// A write body turned into the stored form, with unknown-field warnings.
pub(super) struct Prepared {
    pub obj: Value,
    pub warnings: Vec<String>,
}

/// Takes `metadata.managedFields` out of a write body when it is exactly the stored
/// object's (decoded and normalised when it was stored), so it skips the decoding round trip
/// of [`prepare_body`] (often the largest part of an object); [`put_back_managed_fields`]
/// returns it afterwards. `None`, and `body` untouched, otherwise.
pub(super) fn take_unchanged_managed_fields(body: &mut Value, stored: &Value) -> Option<Value> {
    let stored = stored.get("metadata")?.get("managedFields")?;
    let meta = body.get_mut("metadata")?.as_object_mut()?;
    if meta.get("managedFields")? != stored {
        return None;
    }
    meta.remove("managedFields")
}

/// Puts back what [`take_unchanged_managed_fields`] took out.
pub(super) fn put_back_managed_fields(obj: &mut Value, kept: Option<Value>) {
    if let Some(managed) = kept
        && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("managedFields".into(), managed);
    }
}

/// Checks kind/apiVersion, converts an events.k8s.io body, decodes it through the k8s-openapi
/// type and applies `fieldValidation`.
pub(super) fn prepare_body(
    def: &ResourceDef,
    body: Value,
    req: &Request,
) -> Result<Prepared, ApiError> {
    let api_version = def.api_version();
    if let Some(v) = body
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        && v != api_version
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({api_version})"
        )));
    }
    if let Some(k) = body
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        && k != def.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            def.kind
        )));
    }
    let mut body = body;
    if let Some(map) = body.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    let (core_body, mut unknown) = match def.view {
        View::EventsV1 => events::v1_to_core(body),
        View::Plain | View::CoreEvent => (body, Vec::new()),
    };
    let Decoded {
        obj,
        unknown: mut diff,
    } = (def.normalize)(core_body).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            def.kind, def.version, def.kind
        ))
    })?;
    if def.view == View::EventsV1 {
        diff = diff
            .into_iter()
            .map(|p| {
                for (core, v1) in crate::api::events::RENAMES {
                    if p == *core || p.starts_with(&format!("{core}.")) {
                        return format!("{v1}{}", &p[core.len()..]);
                    }
                }
                p
            })
            .collect();
    }
    unknown.extend(diff);
    let mut warnings = Vec::new();
    match req.query.get("fieldValidation").unwrap_or("Warn") {
        "Strict" if !unknown.is_empty() => {
            let list: Vec<String> = unknown
                .iter()
                .map(|u| format!("unknown field \"{u}\""))
                .collect();
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                list.join(", ")
            )));
        }
        "Strict" | "Ignore" => {}
        "Warn" | "" => {
            warnings = unknown
                .iter()
                .map(|u| format!("unknown field \"{u}\""))
                .collect()
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got \"{other}\""
            )));
        }
    }
    Ok(Prepared { obj, warnings })
}

/// The body's `metadata.namespace` against the request's, as create and update both check
/// it: a namespaced kind takes the URL's when the body has none and refuses a different one;
/// a cluster-scoped kind has none.
pub(super) fn reconcile_namespace(
    meta: &mut serde_json::Map<String, Value>,
    namespaced: bool,
    url_ns: &str,
) -> Result<(), ApiError> {
    if !namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    match meta.get("namespace").and_then(Value::as_str).unwrap_or("") {
        "" => {
            meta.insert("namespace".into(), json!(url_ns));
            Ok(())
        }
        body_ns if body_ns == url_ns => Ok(()),
        _ => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}
