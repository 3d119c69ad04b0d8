//! The implementation before the rewrite for speed, kept verbatim where the rewrite
//! changed it (the rest is shared with the live module): the new functions must give the
//! same results.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

// The functions the rewrite left as they were are used from the live module.
use super::apply::{Conflict, conflict_error, path_text, prune_empty_parent};
use super::entries::Entry;
use super::fields::{FieldSet, Operation, Path, is_string_map, list_key, remove_at, value_at};
use super::fields_v1::from_fields_v1;
use super::update::{Writer, upsert};
use crate::api::status::ApiError;

/// Fields the field manager never tracks (`stripFields` in apiserver's fieldmanager).
pub fn stripped(obj: &Value, has_status: bool) -> Value {
    let mut o = obj.clone();
    if let Some(map) = o.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
        if has_status {
            map.remove("status");
        }
        if let Some(m) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in [
                "name",
                "namespace",
                "creationTimestamp",
                "selfLink",
                "uid",
                "generation",
                "managedFields",
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generateName",
            ] {
                m.remove(key);
            }
            if m.is_empty() {
                map.remove("metadata");
            }
        }
    }
    o
}

/// The `k:` element of a keyed list item.
pub fn key_element(key: &str, item: &Value) -> Option<String> {
    let v = item.get(key)?;
    let mut m = Map::new();
    m.insert(key.to_string(), v.clone());
    Some(format!("k:{}", Value::Object(m)))
}

pub fn collect(value: &Value, field: Option<&str>, path: &mut Path, out: &mut FieldSet) {
    match value {
        Value::Object(map) => {
            let map_type = field.is_some_and(is_string_map);
            if (map.is_empty() || map_type) && !path.is_empty() {
                out.insert(path.clone());
            }
            for (k, v) in map {
                if v.is_null() {
                    continue;
                }
                path.push(format!("f:{k}"));
                collect(v, Some(k), path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            let name = field.unwrap_or("");
            if let Some(key) = list_key(name).filter(|k| items.iter().all(|i| i.get(*k).is_some()))
            {
                out.insert(path.clone());
                for item in items {
                    if let Some(el) = key_element(key, item) {
                        path.push(el);
                        out.insert(path.clone());
                        collect(item, None, path, out);
                        path.pop();
                    }
                }
            } else if name == "finalizers" {
                out.insert(path.clone());
                for item in items {
                    path.push(format!("v:{item}"));
                    out.insert(path.clone());
                    path.pop();
                }
            } else {
                out.insert(path.clone());
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The field set of an object (or an applied configuration), without the untracked fields.
pub fn field_set(obj: &Value, has_status: bool, operation: Operation) -> FieldSet {
    let mut out = FieldSet::new();
    collect(&stripped(obj, has_status), None, &mut Vec::new(), &mut out);
    let parents: BTreeSet<Path> = out
        .iter()
        .flat_map(|p| (1..p.len()).map(|n| p[..n].to_vec()))
        .collect();
    out.retain(|p| {
        !parents.contains(p)
            || p.last()
                .is_some_and(|l| l.starts_with("k:") || l.starts_with("v:"))
            || operation == Operation::Update && (is_member_map(p) || is_metadata_list(p))
    });
    out
}

/// `metadata.finalizers` and `metadata.ownerReferences`, members themselves in an Update.
pub fn is_metadata_list(p: &Path) -> bool {
    p.len() == 2 && p[0] == "f:metadata" && (p[1] == "f:finalizers" || p[1] == "f:ownerReferences")
}

pub fn is_member_map(p: &Path) -> bool {
    p.last()
        .and_then(|l| l.strip_prefix("f:"))
        .is_some_and(is_string_map)
}

/// `fieldsV1` of a field set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    fn insert(map: &mut Map<String, Value>, path: &[String], member_and_parent: bool) {
        match path.split_first() {
            None => {
                if member_and_parent {
                    map.insert(".".into(), json!({}));
                }
            }
            Some((el, rest)) => {
                let next = map.entry(el.clone()).or_insert_with(|| json!({}));
                if let Some(m) = next.as_object_mut() {
                    insert(m, rest, member_and_parent);
                }
            }
        }
    }
    let mut root = Map::new();
    for path in set {
        let is_parent = set
            .iter()
            .any(|other| other.len() > path.len() && other.starts_with(path));
        insert(&mut root, path, is_parent);
    }
    Value::Object(root)
}

/// The entries kept on an object.
pub fn entries(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
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

/// Writes `entries` into the object's metadata (drops the key when empty).
pub fn set_entries(obj: &mut Value, entries: &[Entry]) {
    let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
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
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|l| l.len() == 1 && l[0].as_object().is_some_and(Map::is_empty))
}

/// Ownership after a non-apply write (create, PUT, JSON/merge/strategic patch): the writer owns
/// every field it added or changed; the others lose those fields; removed fields leave every set.
pub fn record_update(old: Option<&Value>, new: &mut Value, w: &Writer<'_>) {
    if reset_requested(new) {
        set_entries(new, &[]);
        return;
    }
    let mut list = old.map(entries).unwrap_or_default();
    // The main resource of a kind with a status does not write it (the status writers' entries
    // stay), but the sets compared include it so those entries are kept.
    let ignores_status = w.has_status && w.subresource.is_empty();
    let new_set = field_set(new, false, Operation::Update);
    let old_set = old
        .map(|o| field_set(o, false, Operation::Update))
        .unwrap_or_default();
    let changed: FieldSet = new_set
        .iter()
        .filter(|p| !(ignores_status && p.first().is_some_and(|f| f == "f:status")))
        .filter(|p| {
            !old_set.contains(*p)
                || old.and_then(|o| value_at(o, p)) != value_at(new, p)
                    && !is_member_map(p)
                    && !p.last().is_some_and(|l| l.starts_with("k:"))
        })
        .cloned()
        .collect();
    for e in &mut list {
        e.fields
            .retain(|p| new_set.contains(p) && !changed.contains(p));
    }
    let mine = list
        .iter()
        .find(|e| {
            e.manager == w.manager && e.operation == "Update" && e.subresource == w.subresource
        })
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let fields: FieldSet = mine.union(&changed).cloned().collect();
    if !changed.is_empty() {
        upsert(&mut list, w, "Update", fields);
    } else {
        list.retain(|e| !e.fields.is_empty());
    }
    set_entries(new, &list);
}

/// Server-side apply of `applied` over `live` (both in the request's API shape): checks
/// conflicts (unless `force`), merges, removes the fields this manager applied before and no
/// longer applies (when nobody else owns them), and records ownership in the result.
pub fn apply(
    live: &Value,
    applied: &Value,
    force: bool,
    w: &Writer<'_>,
) -> Result<Value, ApiError> {
    let has_status = w.has_status && w.subresource.is_empty();
    let mut list = entries(live);
    let applied_set = field_set(applied, has_status, Operation::Apply);
    let mut conflicts = Vec::new();
    let mut lost: Vec<(usize, Path)> = Vec::new();
    for (n, e) in list.iter().enumerate() {
        if e.manager == w.manager && e.subresource == w.subresource {
            continue;
        }
        for p in e.fields.intersection(&applied_set) {
            let leaf = !is_member_map(p) && !p.last().is_some_and(|l| l.starts_with("k:"));
            if leaf && value_at(live, p) != value_at(applied, p) {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    operation: e.operation.clone(),
                    api_version: e.api_version.clone(),
                    field: path_text(p),
                });
                lost.push((n, p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&conflicts));
    }
    for (n, p) in lost {
        list[n].fields.remove(&p);
    }
    let mut merged = live.clone();
    crate::api::patch::strategic_merge(&mut merged, applied);
    let previous = list
        .iter()
        .find(|e| {
            e.manager == w.manager && e.operation == "Apply" && e.subresource == w.subresource
        })
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others: FieldSet = list
        .iter()
        .filter(|e| {
            !(e.manager == w.manager && e.operation == "Apply" && e.subresource == w.subresource)
        })
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let mut removed: Vec<&Path> = previous
        .iter()
        .filter(|p| !applied_set.contains(*p) && !others.contains(*p))
        // A path is kept while another manager owns something beneath it.
        .filter(|p| !others.iter().any(|o| o.len() > p.len() && o.starts_with(p)))
        .collect();
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in removed {
        remove_at(&mut merged, p);
        prune_empty_parent(&mut merged, p);
    }
    upsert(&mut list, w, "Apply", applied_set);
    set_entries(&mut merged, &list);
    Ok(merged)
}
