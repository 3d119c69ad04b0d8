//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch (merge
//! keys and directives of the built-in kinds this server serves) and an approximation of
//! server-side apply (field ownership is `managed.rs`).

use serde_json::{Map, Value};

use super::resources::ResourceDef;
use super::status::ApiError;

/// The patch types the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml`: ownership and removal in `managed::apply`, which merges
    /// the applied configuration with [`strategic_merge`].
    Apply,
}

/// Applies `patch` to `current` (the object as the request's API shows it).
pub fn apply(
    kind: PatchType,
    _def: &ResourceDef,
    current: &Value,
    patch: &Value,
) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            // The real server wraps a failed operation with NewGenericServerResponse(422).
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::status(
                    422,
                    "Invalid",
                    "the server rejected our request due to an error in our request",
                    Some(serde_json::json!({
                        "causes": [{"reason": "UnexpectedServerResponse", "message": e.to_string()}]
                    })),
                )
            })?;
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: json: cannot unmarshal into Go value of type map[string]interface {}",
                ));
            }
            json_patch::merge(&mut doc, patch);
        }
        PatchType::Strategic | PatchType::Apply => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "error decoding patch: json: cannot unmarshal into Go value of type map[string]interface {}",
                ));
            }
            strategic_merge(&mut doc, patch);
        }
    }
    if !doc.is_object() {
        return Err(ApiError::bad_request(
            "the patched object is not a JSON object",
        ));
    }
    Ok(doc)
}

/// The merge key of a list field in the kinds served (`patchMergeKey` in k8s.io/api).
pub(crate) fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "conditions" | "addresses" => "type",
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "drivers" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "ownerReferences" => "uid",
        "taints" => "key",
        "hostAliases" => "ip",
        _ => return None,
    })
}

/// Lists of scalars merged as sets (`patchStrategy: merge` without a key).
fn is_primitive_merge_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// A strategic merge patch: a merge patch where list fields with a merge key merge item by
/// item, `$patch: replace|delete` and `$deleteFromPrimitiveList/<field>` directives apply, and
/// `$setElementOrder/<field>` and `$retainKeys` are accepted (order directives are ignored).
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(patch_map) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    match patch_map.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch_map.clone();
            replaced.remove("$patch");
            *target = Value::Object(replaced);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(map) = target.as_object_mut() else {
        return;
    };
    if let Some(keys) = patch_map.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        map.retain(|k, _| keep.contains(&k.as_str()) || patch_map.contains_key(k));
    }
    for (key, value) in patch_map {
        if key == "$patch" || key == "$retainKeys" || key.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(remove)) = (
                map.get_mut(field).and_then(Value::as_array_mut),
                value.as_array(),
            ) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if value.is_null() {
            map.remove(key);
            continue;
        }
        match value {
            Value::Object(_) => {
                let entry = map.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(entry, value);
                if entry.is_null() {
                    map.remove(key);
                }
            }
            Value::Array(items) => {
                if let (Some(mk), Some(existing)) = (
                    merge_key(key),
                    map.get_mut(key).and_then(Value::as_array_mut),
                ) {
                    merge_keyed_list(existing, items, mk);
                } else if is_primitive_merge_list(key) {
                    let existing = map
                        .entry(key.clone())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Some(list) = existing.as_array_mut() {
                        for item in items {
                            if !list.contains(item) {
                                list.push(item.clone());
                            }
                        }
                    } else {
                        *existing = value.clone();
                    }
                } else {
                    let cleaned: Vec<Value> = items
                        .iter()
                        .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"))
                        .cloned()
                        .collect();
                    map.insert(key.clone(), Value::Array(cleaned));
                }
            }
            _ => {
                map.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_keyed_list(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let Some(k) = item.get(key) else {
            existing.push(item.clone());
            continue;
        };
        let pos = existing.iter().position(|e| e.get(key) == Some(k));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(p), true) => {
                existing.remove(p);
            }
            (None, true) => {}
            (Some(p), false) => strategic_merge(&mut existing[p], item),
            (None, false) => {
                let mut fresh = Value::Object(Map::new());
                strategic_merge(&mut fresh, item);
                existing.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_conditions_by_type() {
        let mut doc = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "A", "status": "True"}]},
            "metadata": {"finalizers": ["a"]}});
        strategic_merge(
            &mut doc,
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "A", "$patch": "delete"}]},
            "metadata": {"finalizers": ["b"]}}),
        );
        assert_eq!(
            doc["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}])
        );
        assert_eq!(doc["metadata"]["finalizers"], json!(["a", "b"]));
        strategic_merge(
            &mut doc,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(doc["metadata"]["finalizers"], json!(["b"]));
    }
}
