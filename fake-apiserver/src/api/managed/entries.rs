//! `metadata.managedFields` entries: read from an object, written back in the real server's
//! order, and the request to reset them.

use serde_json::{Map, Value};

use super::fields::FieldSet;
use super::fields_v1::{from_fields_v1, to_fields_v1};

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `manager`.
    pub manager: String,
    /// `operation`: `Apply` or `Update`.
    pub operation: String,
    /// `apiVersion` of the request.
    pub api_version: String,
    /// `time` (server clock, seconds).
    pub time: String,
    /// `subresource`, when written through one.
    pub subresource: String,
    /// The fields owned.
    pub fields: FieldSet,
}

/// `metadata.managedFields` (what `pointer("/metadata/managedFields")` finds, without parsing
/// the pointer).
pub(crate) fn managed_fields(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("managedFields")
}

/// The entries kept on an object.
pub fn entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = managed_fields(obj).and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let mut fields = FieldSet::new();
            from_fields_v1(e.get("fieldsV1")?, &mut Vec::new(), &mut fields);
            Some(Entry {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                time: s("time"),
                subresource: s("subresource"),
                fields,
            })
        })
        .collect()
}

/// One `managedFields` item.
pub(crate) fn entry_value(
    manager: &str,
    operation: &str,
    api_version: &str,
    time: &str,
    subresource: &str,
    fields_v1: Value,
) -> Value {
    // The keys in the order `json!` would insert them (moving `fields_v1` in, where `json!`
    // would copy it through the serializer).
    let text = |s: &str| Value::String(s.to_string());
    let mut v = Map::new();
    v.insert("manager".into(), text(manager));
    v.insert("operation".into(), text(operation));
    v.insert("apiVersion".into(), text(api_version));
    v.insert("time".into(), text(time));
    v.insert("fieldsType".into(), text("FieldsV1"));
    v.insert("fieldsV1".into(), fields_v1);
    if !subresource.is_empty() {
        v.insert("subresource".into(), text(subresource));
    }
    Value::Object(v)
}

/// Writes `entries` into the object's metadata (drops the key when empty).
pub fn set_entries(obj: &mut Value, entries: &[Entry]) {
    let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            entry_value(
                &e.manager,
                &e.operation,
                &e.api_version,
                &e.time,
                &e.subresource,
                to_fields_v1(&e.fields),
            )
        })
        .collect();
    if list.is_empty() {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), Value::Array(list));
    }
}

/// `[{}]`: the client asks for the ownership record to be dropped.
pub fn reset_requested(obj: &Value) -> bool {
    managed_fields(obj)
        .and_then(Value::as_array)
        .is_some_and(|l| l.len() == 1 && l[0].as_object().is_some_and(Map::is_empty))
}
