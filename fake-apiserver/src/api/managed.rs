//! Field ownership: `metadata.managedFields` as the real server's field manager keeps it
//! (structured-merge-diff), for the kinds served.
//!
//! A field set is a set of paths; each path element is written as in `fieldsV1`:
//! `f:<field>`, `k:{"<key>":<value>}` for an item of a list with a merge key, `v:<json>` for an
//! item of a set list (`finalizers`). A path is a member when it is a leaf (scalar, atomic list,
//! empty object), a string map (`labels`, `requests`, …) or a list item; structs with fields
//! are not members, so they appear in `fieldsV1` only as parents (no `"."`).
//!
//! Writers: an apply (`operation: Apply`) owns exactly the fields of its configuration; every
//! other write (`operation: Update`) takes the fields it changed from everybody else.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::status::ApiError;

/// One path element in `fieldsV1` notation (`f:name`, `k:{...}`, `v:...`).
pub type Path = Vec<String>;

/// A set of field paths.
pub type FieldSet = BTreeSet<Path>;

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

/// String-valued maps of the served kinds (granular maps: each key owned on its own, and the
/// map itself a member).
fn is_string_map(field: &str) -> bool {
    matches!(
        field,
        "labels"
            | "annotations"
            | "capacity"
            | "requests"
            | "limits"
            | "allocatable"
            | "allocatedResources"
            | "nodeSelector"
            | "parameters"
            | "volumeAttributes"
            | "attachmentMetadata"
    )
}

/// The merge key of a list of maps (`patchMergeKey` in k8s.io/api).
fn list_key(field: &str) -> Option<&'static str> {
    super::patch::merge_key(field)
}

/// Fields the field manager never tracks (`stripFields` in apiserver's fieldmanager).
fn stripped(obj: &Value, has_status: bool) -> Value {
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
fn key_element(key: &str, item: &Value) -> Option<String> {
    let v = item.get(key)?;
    let mut m = Map::new();
    m.insert(key.to_string(), v.clone());
    Some(format!("k:{}", Value::Object(m)))
}

fn collect(value: &Value, field: Option<&str>, path: &mut Path, out: &mut FieldSet) {
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

/// How a field set is built: an applied configuration (structured-merge-diff's `ToFieldSet`:
/// leaves and list items only) or the fields a non-apply write added or changed (its
/// comparison also lists string maps and `metadata.finalizers`/`ownerReferences` themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `operation: Apply`.
    Apply,
    /// `operation: Update`.
    Update,
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
fn is_metadata_list(p: &Path) -> bool {
    p.len() == 2 && p[0] == "f:metadata" && (p[1] == "f:finalizers" || p[1] == "f:ownerReferences")
}

fn is_member_map(p: &Path) -> bool {
    p.last()
        .and_then(|l| l.strip_prefix("f:"))
        .is_some_and(is_string_map)
}

/// The value at `path`, if present.
pub fn value_at<'a>(obj: &'a Value, path: &Path) -> Option<&'a Value> {
    let mut cur = obj;
    for el in path {
        cur = step(cur, el)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, el: &str) -> Option<&'a Value> {
    if let Some(f) = el.strip_prefix("f:") {
        return cur.as_object()?.get(f);
    }
    let list = cur.as_array()?;
    if let Some(k) = el.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(k).ok()?;
        return list
            .iter()
            .find(|i| key.iter().all(|(kk, kv)| i.get(kk) == Some(kv)));
    }
    let v: Value = serde_json::from_str(el.strip_prefix("v:")?).ok()?;
    list.iter().find(|i| **i == v)
}

/// Removes the field at `path` (a map key or a list item) when present.
pub fn remove_at(obj: &mut Value, path: &Path) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for el in parent {
        let next = if let Some(f) = el.strip_prefix("f:") {
            cur.as_object_mut().and_then(|m| m.get_mut(f))
        } else {
            let found = step(cur, el).cloned();
            cur.as_array_mut()
                .and_then(|l| l.iter_mut().find(|i| Some(&**i) == found.as_ref()))
        };
        let Some(n) = next else {
            return;
        };
        cur = n;
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(found) = step(cur, last).cloned()
        && let Some(list) = cur.as_array_mut()
    {
        list.retain(|i| *i != found);
    }
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

fn from_fields_v1(v: &Value, path: &mut Path, out: &mut FieldSet) {
    let Some(map) = v.as_object() else {
        return;
    };
    if map.is_empty() && !path.is_empty() {
        out.insert(path.clone());
    }
    for (k, child) in map {
        if k == "." {
            out.insert(path.clone());
            continue;
        }
        path.push(k.clone());
        from_fields_v1(child, path, out);
        path.pop();
    }
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

/// The manager name of a non-apply write: `?fieldManager=` or, as the real server does, the
/// User-Agent up to its first `/`.
pub fn update_manager(query_manager: Option<&str>, user_agent: &str) -> String {
    match query_manager.filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => {
            let prefix = user_agent.split('/').next().unwrap_or("");
            prefix.chars().take(128).collect()
        }
    }
}

/// What a write does to ownership.
pub struct Writer<'a> {
    /// The manager name.
    pub manager: &'a str,
    /// `apiVersion` of the request.
    pub api_version: String,
    /// The subresource written, if any.
    pub subresource: &'a str,
    /// The server clock, RFC 3339 seconds.
    pub now: &'a str,
    /// Whether the kind has a status the main resource ignores.
    pub has_status: bool,
}

fn upsert(list: &mut Vec<Entry>, w: &Writer<'_>, operation: &str, fields: FieldSet) {
    match list.iter_mut().find(|e| {
        e.manager == w.manager && e.operation == operation && e.subresource == w.subresource
    }) {
        Some(e) => {
            if e.fields != fields || e.api_version != w.api_version {
                e.fields = fields;
                e.api_version = w.api_version.clone();
                e.time = w.now.to_string();
            }
        }
        None => list.push(Entry {
            manager: w.manager.to_string(),
            operation: operation.to_string(),
            api_version: w.api_version.clone(),
            time: w.now.to_string(),
            subresource: w.subresource.to_string(),
            fields,
        }),
    }
    list.retain(|e| !e.fields.is_empty());
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

/// One conflict of an apply: another manager owns `path` with a different value.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// Its operation and apiVersion (`Apply`, or `Update` with the version).
    pub operation: String,
    /// The apiVersion of its entry.
    pub api_version: String,
    /// The field, as the real message writes it (`.spec.x`, `.metadata.labels.app`).
    pub field: String,
}

/// The real server's spelling of a path in a conflict (`.spec.containers[name="c"].image`).
pub fn path_text(path: &Path) -> String {
    let mut s = String::new();
    for el in path {
        if let Some(f) = el.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = el.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = el.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// The 409 of an apply with conflicts (`NewApplyConflict`).
pub fn conflict_error(conflicts: &[Conflict]) -> ApiError {
    let line = |c: &Conflict| {
        if c.operation == "Apply" {
            format!("conflict with \"{}\": {}", c.manager, c.field)
        } else {
            format!(
                "conflict with \"{}\" using {}: {}",
                c.manager, c.api_version, c.field
            )
        }
    };
    let message = if conflicts.len() == 1 {
        format!("Apply failed with 1 conflict: {}", line(&conflicts[0]))
    } else {
        let lines: Vec<String> = conflicts.iter().map(|c| format!("- {}", line(c))).collect();
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({"reason": "FieldManagerConflict", "message": line(c), "field": c.field}))
        .collect();
    ApiError::status(409, "Conflict", message, Some(json!({"causes": causes})))
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
    super::patch::strategic_merge(&mut merged, applied);
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

/// After removing the last key of `labels`/`annotations`, drop the empty map (as the real
/// server's serializer leaves it out).
fn prune_empty_parent(obj: &mut Value, path: &Path) {
    if path.len() < 2 {
        return;
    }
    let parent = path[..path.len() - 1].to_vec();
    if is_member_map(&parent)
        && value_at(obj, &parent).is_some_and(|v| v.as_object().is_some_and(Map::is_empty))
    {
        remove_at(obj, &parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_of_a_claim_matches_the_real_notation() {
        let claim = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "c", "labels": {"app": "a"}, "finalizers": ["x"]},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Pending"}
        });
        let update = field_set(&claim, true, Operation::Update);
        assert_eq!(
            to_fields_v1(&update),
            json!({
                "f:metadata": {"f:finalizers": {".": {}, "v:\"x\"": {}}, "f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:accessModes": {}, "f:resources": {"f:requests": {".": {}, "f:storage": {}}}}
            })
        );
        let mut back = FieldSet::new();
        from_fields_v1(&to_fields_v1(&update), &mut Vec::new(), &mut back);
        assert_eq!(back, update);
        let applied = field_set(&claim, true, Operation::Apply);
        assert_eq!(
            to_fields_v1(&applied),
            json!({
                "f:metadata": {"f:finalizers": {"v:\"x\"": {}}, "f:labels": {"f:app": {}}},
                "f:spec": {"f:accessModes": {}, "f:resources": {"f:requests": {"f:storage": {}}}}
            })
        );
    }

    #[test]
    fn keyed_list_items_use_k_notation() {
        let pod = json!({"spec": {"containers": [{"name": "c", "image": "i"}]}});
        let fv = to_fields_v1(&field_set(&pod, true, Operation::Apply));
        assert_eq!(
            fv,
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}})
        );
    }

    #[test]
    fn update_managers_come_from_the_query_or_the_user_agent() {
        assert_eq!(
            update_manager(Some("editor"), "kubectl/v1.32.4 (linux/amd64)"),
            "editor"
        );
        assert_eq!(
            update_manager(None, "kubectl/v1.32.4 (linux/amd64)"),
            "kubectl"
        );
        assert_eq!(update_manager(Some(""), "kube-rs/5.0"), "kube-rs");
    }

    #[test]
    fn conflict_paths_read_like_the_real_server() {
        let path: Path = vec![
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"c\"}".into(),
            "f:image".into(),
        ];
        assert_eq!(path_text(&path), ".spec.containers[name=\"c\"].image");
    }
}
