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
use std::ops::Bound;

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

/// Keys of `metadata` the field manager never tracks (`stripFields` in apiserver's
/// fieldmanager).
const STRIPPED_METADATA: [&str; 11] = [
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
];

/// Whether a top-level key is untracked: `apiVersion`, `kind`, and `status` when the writer
/// ignores it.
fn stripped_root_key(key: &str, has_status: bool) -> bool {
    key == "apiVersion" || key == "kind" || has_status && key == "status"
}

/// The `f:` element of a field.
fn field_element(field: &str) -> String {
    let mut s = String::with_capacity(field.len() + 2);
    s.push_str("f:");
    s.push_str(field);
    s
}

/// The `k:` element of a keyed list item whose key field `key` holds `value`:
/// `k:{"<key>":<value>}`, as serde_json writes the one-entry object.
fn key_element(key: &str, value: &Value) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(key.len() + 24);
    // Merge keys are plain identifiers (`name`, `containerPort`, …): nothing to escape.
    s.push_str("k:{\"");
    s.push_str(key);
    s.push_str("\":");
    // Writing into a String cannot fail.
    let _ = write!(s, "{value}}}");
    s
}

/// The `v:` element of a set list item.
fn set_element(item: &Value) -> String {
    use std::fmt::Write;
    let mut s = String::from("v:");
    // Writing into a String cannot fail.
    let _ = write!(s, "{item}");
    s
}

/// The keyed-list key of a list field whose items all carry it.
fn keyed_list(field: Option<&str>, items: &[Value]) -> Option<&'static str> {
    list_key(field.unwrap_or("")).filter(|k| items.iter().all(|i| i.get(*k).is_some()))
}

/// Whether a path, when it is also a parent, stays a member (written with `"."`): list items
/// always, and in an Update string maps and `metadata.finalizers`/`ownerReferences`.
fn keeps_parent(p: &[String], operation: Operation) -> bool {
    p.last()
        .is_some_and(|l| l.starts_with("k:") || l.starts_with("v:"))
        || operation == Operation::Update && (is_member_map(p) || is_metadata_list(p))
}

/// A list element whose `v:`/`k:` spelling is not one-to-one with its value (a float, which
/// compares equal across spellings like `0.0`/`-0.0`, or a structured value): comparisons of such
/// paths go through [`value_at`] as the element spellings are looked up there.
fn plain(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Null | Value::Bool(_) | Value::String(_)) => true,
        Some(Value::Number(n)) => !n.is_f64(),
        _ => false,
    }
}

/// The tracked paths of an object with the value at each, sorted.
struct Tracked<'a> {
    /// Each path once (the first value seen), in set order.
    items: Vec<(Path, &'a Value)>,
    /// Some list element repeats or is not [`plain`]: the values recorded may differ from what
    /// [`value_at`] finds, so comparisons must use it.
    exotic: bool,
}

/// Collects the paths under `value` (the path `path`, reached through the field `field`), as
/// structured-merge-diff's field set lists them, before parents are dropped.
fn walk<'a>(value: &'a Value, field: Option<&str>, path: &mut Path, out: &mut Tracked<'a>) {
    match value {
        Value::Object(map) => {
            if (map.is_empty() || field.is_some_and(is_string_map)) && !path.is_empty() {
                out.items.push((path.clone(), value));
            }
            walk_fields(map.iter(), path, out);
        }
        Value::Array(items) => {
            out.items.push((path.clone(), value));
            if let Some(key) = keyed_list(field, items) {
                for item in items {
                    let k = item.get(key);
                    out.exotic |= !plain(k);
                    let Some(k) = k else { continue };
                    path.push(key_element(key, k));
                    out.items.push((path.clone(), item));
                    if let Some(fields) = item.as_object() {
                        walk_fields(fields.iter(), path, out);
                    }
                    path.pop();
                }
            } else if field == Some("finalizers") {
                for item in items {
                    out.exotic |= !plain(Some(item));
                    path.push(set_element(item));
                    out.items.push((path.clone(), item));
                    path.pop();
                }
            }
        }
        _ => out.items.push((path.clone(), value)),
    }
}

/// [`walk`] over the (non-null) fields of an object.
fn walk_fields<'a>(
    fields: impl Iterator<Item = (&'a String, &'a Value)>,
    path: &mut Path,
    out: &mut Tracked<'a>,
) {
    for (k, v) in fields {
        if v.is_null() {
            continue;
        }
        path.push(field_element(k));
        walk(v, Some(k), path, out);
        path.pop();
    }
}

/// The tracked paths of an object (or an applied configuration) and their values: the members
/// of its field set, sorted, without the untracked fields.
fn tracked(obj: &Value, has_status: bool, operation: Operation) -> Tracked<'_> {
    let mut out = Tracked {
        items: Vec::new(),
        exotic: false,
    };
    let mut path = Vec::new();
    match obj.as_object() {
        Some(root) => {
            for (k, v) in root {
                if v.is_null() || stripped_root_key(k, has_status) {
                    continue;
                }
                match v.as_object().filter(|_| k == "metadata") {
                    // The metadata struct itself is never a member (an empty one is dropped).
                    Some(meta) => {
                        path.push(field_element(k));
                        walk_fields(
                            meta.iter()
                                .filter(|(mk, _)| !STRIPPED_METADATA.contains(&mk.as_str())),
                            &mut path,
                            &mut out,
                        );
                        path.pop();
                    }
                    None => {
                        path.push(field_element(k));
                        walk(v, Some(k), &mut path, &mut out);
                        path.pop();
                    }
                }
            }
        }
        None => walk(obj, None, &mut path, &mut out),
    }
    out.items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut repeated = false;
    out.items.dedup_by(|a, b| {
        let same = a.0 == b.0;
        repeated |= same;
        same
    });
    out.exotic |= repeated;
    // A path is a parent iff the next one in set order extends it (anything between a path and
    // one of its extensions extends it too).
    let mut kept = Vec::with_capacity(out.items.len());
    let mut items = out.items.into_iter().peekable();
    while let Some((p, v)) = items.next() {
        let parent = items
            .peek()
            .is_some_and(|(q, _)| q.len() > p.len() && q.starts_with(&p));
        if !parent || keeps_parent(&p, operation) {
            kept.push((p, v));
        }
    }
    out.items = kept;
    out
}

/// The field set of an object (or an applied configuration), without the untracked fields.
pub fn field_set(obj: &Value, has_status: bool, operation: Operation) -> FieldSet {
    tracked(obj, has_status, operation)
        .items
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

/// `metadata.finalizers` and `metadata.ownerReferences`, members themselves in an Update.
fn is_metadata_list(p: &[String]) -> bool {
    p.len() == 2 && p[0] == "f:metadata" && (p[1] == "f:finalizers" || p[1] == "f:ownerReferences")
}

fn is_member_map(p: &[String]) -> bool {
    p.last()
        .and_then(|l| l.strip_prefix("f:"))
        .is_some_and(is_string_map)
}

/// An empty `fieldsV1` node (`{}`).
fn empty_node() -> Value {
    Value::Object(Map::new())
}

/// `fieldsV1` straight from an object: what `to_fields_v1(&field_set(obj, has_status, op))`
/// gives, without building the paths (a create's changed set is the whole object).
fn fields_v1_of(obj: &Map<String, Value>, has_status: bool, op: Operation) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in obj {
        if v.is_null() || stripped_root_key(k, has_status) {
            continue;
        }
        let node = match v.as_object().filter(|_| k == "metadata") {
            // The metadata struct itself is never a member (an empty one is dropped).
            Some(meta) => {
                let mut children = Map::new();
                for (mk, mv) in meta {
                    if mv.is_null() || STRIPPED_METADATA.contains(&mk.as_str()) {
                        continue;
                    }
                    let keeps = op == Operation::Update
                        && (is_string_map(mk) || mk == "finalizers" || mk == "ownerReferences");
                    if let Some(n) = v1_node(mv, Some(mk), keeps, op) {
                        children.insert(field_element(mk), n);
                    }
                }
                (!children.is_empty()).then_some(Value::Object(children))
            }
            None => v1_node(v, Some(k), op == Operation::Update && is_string_map(k), op),
        };
        if let Some(n) = node {
            out.insert(field_element(k), n);
        }
    }
    out
}

/// The `fieldsV1` children (`f:` elements) of the (non-null) fields of an object.
fn v1_fields(map: &Map<String, Value>, op: Operation) -> Map<String, Value> {
    let mut children = Map::new();
    for (k, v) in map {
        if v.is_null() {
            continue;
        }
        let keeps = op == Operation::Update && is_string_map(k);
        if let Some(n) = v1_node(v, Some(k), keeps, op) {
            children.insert(field_element(k), n);
        }
    }
    children
}

/// The `fieldsV1` node of `value`, reached through `field` (`None` when nothing at or beneath it
/// is a member). `keeps`: the path stays a member when it is also a parent ([`keeps_parent`]).
fn v1_node(value: &Value, field: Option<&str>, keeps: bool, op: Operation) -> Option<Value> {
    let (member, mut children) = match value {
        Value::Object(map) => (
            map.is_empty() || field.is_some_and(is_string_map),
            v1_fields(map, op),
        ),
        Value::Array(items) => {
            let mut children = Map::new();
            if let Some(key) = keyed_list(field, items) {
                for item in items {
                    let Some(k) = item.get(key) else {
                        continue;
                    };
                    // A list item is a member; written with "." when it has fields.
                    let mut node = item
                        .as_object()
                        .map(|f| v1_fields(f, op))
                        .unwrap_or_default();
                    if !node.is_empty() {
                        node.insert(".".into(), empty_node());
                    }
                    match children.entry(key_element(key, k)) {
                        serde_json::map::Entry::Vacant(e) => {
                            e.insert(Value::Object(node));
                        }
                        // Two items with one key: the union of their fields.
                        serde_json::map::Entry::Occupied(mut e) => {
                            merge_nodes(e.get_mut(), Value::Object(node))
                        }
                    }
                }
            } else if field == Some("finalizers") {
                for item in items {
                    children.insert(set_element(item), empty_node());
                }
            }
            (true, children)
        }
        _ => (true, Map::new()),
    };
    if children.is_empty() {
        return member.then_some(Value::Object(children));
    }
    if member && keeps {
        children.insert(".".into(), empty_node());
    }
    Some(Value::Object(children))
}

/// Adds the `fieldsV1` node `from` into `into` (the union of the two sets).
fn merge_nodes(into: &mut Value, from: Value) {
    let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) else {
        return;
    };
    for (k, v) in from {
        match into.entry(k) {
            serde_json::map::Entry::Vacant(e) => {
                e.insert(v);
            }
            serde_json::map::Entry::Occupied(mut e) => merge_nodes(e.get_mut(), v),
        }
    }
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
    let paths: Vec<&[String]> = set.iter().map(Vec::as_slice).collect();
    Value::Object(v1_group(&paths, 0))
}

/// The `fieldsV1` node of `paths`: distinct paths in set order sharing their first `depth`
/// elements. The node itself, when a member, comes first; it is written with `"."` when it is
/// also a parent, i.e. when other paths follow.
fn v1_group(paths: &[&[String]], depth: usize) -> Map<String, Value> {
    let mut map = Map::new();
    let mut rest = paths;
    if let Some((first, tail)) = rest.split_first()
        && first.len() == depth
    {
        if !tail.is_empty() {
            map.insert(".".into(), empty_node());
        }
        rest = tail;
    }
    // Every path left is longer than `depth`; group them by their element at `depth`.
    while let Some(first) = rest.first() {
        let el = &first[depth];
        let end = rest
            .iter()
            .position(|p| p[depth] != *el)
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(end);
        map.insert(el.clone(), Value::Object(v1_group(group, depth + 1)));
        rest = tail;
    }
    map
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

/// `metadata.managedFields` (what `pointer("/metadata/managedFields")` finds, without parsing
/// the pointer).
fn managed_fields(obj: &Value) -> Option<&Value> {
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
fn entry_value(
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
    // Only `metadata.managedFields` is written: without a metadata object nothing changes.
    if !new.get("metadata").is_some_and(Value::is_object) {
        return;
    }
    if reset_requested(new) {
        set_entries(new, &[]);
        return;
    }
    // The main resource of a kind with a status does not write it (the status writers' entries
    // stay), but the sets compared include it so those entries are kept.
    let ignores_status = w.has_status && w.subresource.is_empty();
    let Some(old) = old else {
        // A create: nobody owns anything yet and everything is new, so the writer's entry is the
        // object's Update field set (without the status it ignores), written straight away.
        let fields = new
            .as_object()
            .map(|o| fields_v1_of(o, ignores_status, Operation::Update))
            .unwrap_or_default();
        let entry = (!fields.is_empty()).then(|| {
            let fields = Value::Object(fields);
            entry_value(
                w.manager,
                "Update",
                &w.api_version,
                w.now,
                w.subresource,
                fields,
            )
        });
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            match entry {
                Some(e) => m.insert("managedFields".into(), Value::Array(vec![e])),
                None => m.remove("managedFields"),
            };
        }
        return;
    };
    let mut list = entries(old);
    {
        let new_set = tracked(new, false, Operation::Update);
        let old_set = tracked(old, false, Operation::Update);
        let exotic = new_set.exotic || old_set.exotic;
        // The paths added or changed, in set order (a merge of the two sorted lists).
        let mut changed: Vec<Path> = Vec::new();
        let mut olds = old_set.items.iter().peekable();
        for (p, new_value) in &new_set.items {
            if ignores_status && p.first().is_some_and(|f| f == "f:status") {
                continue;
            }
            while olds.next_if(|(q, _)| q < p).is_some() {}
            let differs = match olds.peek().filter(|(q, _)| q == p) {
                None => true,
                Some((_, old_value)) => {
                    !is_member_map(p)
                        && !p.last().is_some_and(|l| l.starts_with("k:"))
                        && if exotic {
                            value_at(old, p) != value_at(new, p)
                        } else {
                            old_value != new_value
                        }
                }
            };
            if differs {
                changed.push(p.clone());
            }
        }
        let in_new = |p: &Path| new_set.items.binary_search_by(|(q, _)| q.cmp(p)).is_ok();
        for e in &mut list {
            e.fields
                .retain(|p| in_new(p) && changed.binary_search(p).is_err());
        }
        if changed.is_empty() {
            list.retain(|e| !e.fields.is_empty());
        } else {
            let mut fields = list
                .iter()
                .find(|e| {
                    e.manager == w.manager
                        && e.operation == "Update"
                        && e.subresource == w.subresource
                })
                .map(|e| e.fields.clone())
                .unwrap_or_default();
            fields.extend(changed);
            upsert(&mut list, w, "Update", fields);
        }
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
        // (Not owned itself, it is a parent iff the next owned path in set order extends it.)
        .filter(|p| {
            !others
                .range::<Path, _>((Bound::Excluded(*p), Bound::Unbounded))
                .next()
                .is_some_and(|o| o.len() > p.len() && o.starts_with(p))
        })
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

    /// The implementation before the rewrite for speed, kept verbatim where the rewrite
    /// changed it (the rest is shared with the live module): the new functions must give the
    /// same results.
    mod reference {
        use std::collections::BTreeSet;

        use serde_json::{Map, Value, json};

        // The functions the rewrite left as they were are used from the live module.
        use super::super::{
            Conflict, Entry, FieldSet, Operation, Path, Writer, conflict_error, is_string_map,
            list_key, path_text, prune_empty_parent, upsert,
        };
        use super::super::{from_fields_v1, remove_at, value_at};
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
                    if let Some(key) =
                        list_key(name).filter(|k| items.iter().all(|i| i.get(*k).is_some()))
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
            p.len() == 2
                && p[0] == "f:metadata"
                && (p[1] == "f:finalizers" || p[1] == "f:ownerReferences")
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
                    e.manager == w.manager
                        && e.operation == "Update"
                        && e.subresource == w.subresource
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
                    e.manager == w.manager
                        && e.operation == "Apply"
                        && e.subresource == w.subresource
                })
                .map(|e| e.fields.clone())
                .unwrap_or_default();
            let others: FieldSet = list
                .iter()
                .filter(|e| {
                    !(e.manager == w.manager
                        && e.operation == "Apply"
                        && e.subresource == w.subresource)
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
    }

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

    /// A writer for the comparisons.
    fn writer<'a>(manager: &'a str, subresource: &'a str, has_status: bool) -> Writer<'a> {
        Writer {
            manager,
            api_version: "v1".into(),
            subresource,
            now: "2024-01-01T00:00:00Z",
            has_status,
        }
    }

    /// The writers tried on every object: plain, status subresource, a kind without status.
    const WRITERS: [(&str, &str, bool); 4] = [
        ("kubectl", "", true),
        ("kube-rs", "", false),
        ("controller", "status", true),
        ("kubectl", "status", true),
    ];

    /// Checks the field sets and `fieldsV1` of `obj` against the reference.
    fn same_field_sets(obj: &Value) {
        for has_status in [false, true] {
            for op in [Operation::Apply, Operation::Update] {
                let set = field_set(obj, has_status, op);
                assert_eq!(set, reference::field_set(obj, has_status, op), "{obj}");
                assert_eq!(to_fields_v1(&set), reference::to_fields_v1(&set), "{obj}");
                if let Some(map) = obj.as_object() {
                    assert_eq!(
                        Value::Object(fields_v1_of(map, has_status, op)),
                        reference::to_fields_v1(&set),
                        "{obj}"
                    );
                }
            }
        }
    }

    /// Runs a create of `first` and then writes of each of `rest` (updates, applies with
    /// and without force) through both implementations, comparing every result.
    fn same_histories(first: &Value, rest: &[Value]) {
        same_field_sets(first);
        for (n, (m, sub, hs)) in WRITERS.iter().enumerate() {
            let w = writer(m, sub, *hs);
            let mut ours = first.clone();
            let mut theirs = first.clone();
            record_update(None, &mut ours, &w);
            reference::record_update(None, &mut theirs, &w);
            assert_eq!(ours, theirs, "create of {first}");
            for (i, next) in rest.iter().enumerate() {
                same_field_sets(next);
                // Every step another writer; the new object carries the stored managedFields
                // (as a client sending the object back does) unless it has its own.
                let (m, sub, hs) = WRITERS[(n + i + 1) % WRITERS.len()];
                let w = writer(m, sub, hs);
                let mut new = next.clone();
                if new.pointer("/metadata/managedFields").is_none()
                    && let (Some(meta), Some(mf)) = (
                        new.get_mut("metadata").and_then(Value::as_object_mut),
                        ours.pointer("/metadata/managedFields"),
                    )
                {
                    meta.insert("managedFields".into(), mf.clone());
                }
                let mut new_ours = new.clone();
                let mut new_theirs = new.clone();
                record_update(Some(&ours), &mut new_ours, &w);
                reference::record_update(Some(&theirs), &mut new_theirs, &w);
                assert_eq!(new_ours, new_theirs, "update of {ours} to {new}");
                for force in [false, true] {
                    let a = apply(&ours, next, force, &w);
                    let b = reference::apply(&theirs, next, force, &w);
                    assert_eq!(a, b, "apply of {next} over {ours}");
                }
                ours = new_ours;
                theirs = new_theirs;
            }
        }
    }

    /// Objects of the served kinds, and updates of them.
    fn corpus() -> Vec<Vec<Value>> {
        let claim = json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": "c", "namespace": "ns", "uid": "u1", "resourceVersion": "5",
                "creationTimestamp": "2024-01-01T00:00:00Z", "generation": 1,
                "labels": {"app": "a", "tier": "db"},
                "annotations": {"volume.kubernetes.io/selected-node": "n1"},
                "finalizers": ["kubernetes.io/pvc-protection"],
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "o1",
                                     "controller": true}]
            },
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                     "volumeMode": "Filesystem",
                     "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Pending"}
        });
        let mut claim2 = claim.clone();
        claim2["metadata"]["labels"] = json!({"app": "b", "new": "x"});
        claim2["metadata"]["finalizers"] = json!(["kubernetes.io/pvc-protection", "other/f"]);
        claim2["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        claim2["status"] = json!({"phase": "Bound", "capacity": {"storage": "2Gi"}});
        let mut claim3 = claim2.clone();
        claim3["metadata"]
            .as_object_mut()
            .map(|m| m.remove("labels"));
        claim3["metadata"]["annotations"] = json!({});
        claim3["metadata"]["finalizers"] = json!([]);
        claim3["spec"]["volumeName"] = json!("pv1");
        claim3["spec"]["storageClassName"] = Value::Null;
        let pv = json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv1", "labels": {}},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "csi": {"driver": "d", "volumeHandle": "h", "volumeAttributes": {"a": "1"}},
                     "claimRef": {"name": "c", "namespace": "ns"},
                     "persistentVolumeReclaimPolicy": "Delete"},
            "status": {"phase": "Available"}
        });
        let mut pv2 = pv.clone();
        pv2["spec"]["claimRef"] = json!({"name": "c", "namespace": "ns", "uid": "u1"});
        pv2["spec"]["csi"]["volumeAttributes"] = json!({"a": "2", "b": null});
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
            "spec": {"taints": [{"key": "k1", "effect": "NoSchedule"},
                                {"key": "k2", "value": "v", "effect": "NoExecute"}]},
            "status": {"allocatable": {"cpu": "4"}, "capacity": {"cpu": "4"},
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}
        });
        let mut node2 = node.clone();
        node2["spec"]["taints"] = json!([{"key": "k1", "effect": "NoExecute"}]);
        node2["spec"]["unschedulable"] = json!(true);
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "generateName": "p-"},
            "spec": {"containers": [
                {"name": "c", "image": "i", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "resources": {"limits": {"cpu": "1"}, "requests": {}},
                 "env": [{"name": "A", "value": "1"}],
                 "volumeMounts": [{"mountPath": "/data", "name": "v"}]},
                {"name": "d", "image": "j"}],
                "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}],
                "nodeSelector": {"disk": "ssd"}},
            "status": {"phase": "Running"}
        });
        let mut pod2 = pod.clone();
        pod2["spec"]["containers"][0]["image"] = json!("i2");
        pod2["spec"]["containers"][1] = json!({"name": "e", "image": "k"});
        pod2["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080}]);
        let event = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e.1", "namespace": "ns"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns", "uid": "u"},
            "reason": "Started", "message": "started", "type": "Normal", "count": 1,
            "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z",
            "source": {"component": "kubelet"}, "reportingComponent": "",
            "eventTime": null
        });
        let mut event2 = event.clone();
        event2["count"] = json!(2);
        event2["lastTimestamp"] = json!("2024-01-01T00:01:00Z");
        let attachment = json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
            "metadata": {"name": "va", "finalizers": ["external-attacher/d"]},
            "spec": {"attacher": "d", "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}},
            "status": {"attached": true, "attachmentMetadata": {"dev": "/dev/x"}}
        });
        let mut attachment2 = attachment.clone();
        attachment2["status"] = json!({"attached": false, "detachError": {"message": "m"}});
        let class = json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "d", "parameters": {"type": "ssd", "fs": "ext4"},
            "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
            "allowVolumeExpansion": true, "mountOptions": []
        });
        let mut class2 = class.clone();
        class2["parameters"] = json!({"type": "hdd"});
        class2["metadata"]["managedFields"] = json!([{}]);
        let odd = json!({
            "metadata": {"name": "x", "ownerReferences": [{"uid": "a"}, {"uid": "a", "x": 1}, {"name": "no uid"}]},
            "spec": {"containers": [{"name": "c"}, {"name": "c", "image": "i"}, {"name": null}],
                     "finalizers": ["a", "a", 1, {"o": 1}], "empty": {}, "list": [],
                     "ports": [{"containerPort": 1.5}, {"containerPort": -0.0}, {"containerPort": 0.0}]}
        });
        let mut odd2 = odd.clone();
        odd2["spec"]["containers"] = json!([{"name": "c", "image": "j"}, {"name": "c"}]);
        odd2["spec"]["ports"] = json!([{"containerPort": 0.0, "x": 1}]);
        vec![
            vec![claim, claim2, claim3],
            vec![pv, pv2],
            vec![node, node2],
            vec![pod, pod2],
            vec![event, event2],
            vec![attachment, attachment2],
            vec![class, class2],
            vec![odd, odd2],
            vec![
                json!({"metadata": {}}),
                json!({"metadata": {"labels": {"a": "b"}}}),
            ],
            vec![
                json!({"metadata": {"name": "only"}, "status": {"x": 1}}),
                json!({"metadata": 3}),
            ],
            vec![
                json!(null),
                json!([1]),
                json!({"metadata": {"finalizers": {"x": 1}}}),
            ],
        ]
    }

    #[test]
    fn rewritten_functions_match_the_reference_on_the_served_kinds() {
        for history in corpus() {
            same_histories(&history[0], &history[1..]);
        }
    }

    mod random {
        use proptest::prelude::*;
        use serde_json::{Map, Value, json};

        /// Field names: the ones with a meaning here, and some without.
        fn key() -> impl Strategy<Value = String> {
            prop::sample::select(vec![
                "name",
                "key",
                "uid",
                "type",
                "containerPort",
                "labels",
                "annotations",
                "finalizers",
                "containers",
                "ports",
                "taints",
                "ownerReferences",
                "conditions",
                "requests",
                "spec",
                "status",
                "metadata",
                "image",
                "value",
                "x",
                "y",
            ])
            .prop_map(String::from)
        }

        fn leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                (-1i64..3).prop_map(Value::from),
                prop::sample::select(vec![0.0, -0.0, 1.5]).prop_map(|f| json!(f)),
                prop::sample::select(vec!["a", "b", "c\"q"]).prop_map(Value::from),
            ]
        }

        fn object(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()))
        }

        /// JSON-ish values, with lists of keyed items in them.
        fn value() -> impl Strategy<Value = Value> {
            leaf().prop_recursive(4, 48, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    object(inner.clone()),
                    prop::collection::vec(
                        (
                            prop::sample::select(vec![
                                "name",
                                "key",
                                "uid",
                                "type",
                                "containerPort"
                            ]),
                            leaf(),
                            object(inner),
                        ),
                        0..4,
                    )
                    .prop_map(|items| {
                        Value::Array(
                            items
                                .into_iter()
                                .map(|(k, v, mut o)| {
                                    if let Some(m) = o.as_object_mut() {
                                        m.insert(k.into(), v);
                                    }
                                    o
                                })
                                .collect(),
                        )
                    }),
                ]
            })
        }

        /// An object: a metadata with tracked and untracked keys, and other fields.
        fn root() -> impl Strategy<Value = Value> {
            let meta_key = prop::sample::select(vec![
                "name",
                "namespace",
                "uid",
                "resourceVersion",
                "generation",
                "labels",
                "annotations",
                "finalizers",
                "ownerReferences",
                "x",
            ]);
            (
                prop::collection::btree_map(meta_key.prop_map(String::from), value(), 0..5),
                prop::collection::btree_map(key(), value(), 0..5),
            )
                .prop_map(|(meta, mut rest)| {
                    rest.insert("metadata".into(), Value::Object(meta.into_iter().collect()));
                    Value::Object(rest.into_iter().collect())
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            #[test]
            fn random_objects_match_the_reference(
                first in root(),
                patch in root(),
                other in root(),
            ) {
                let mut merged = first.clone();
                crate::api::patch::strategic_merge(&mut merged, &patch);
                super::same_histories(&first, &[merged, other]);
            }

            #[test]
            fn random_values_match_the_reference(v in value()) {
                super::same_field_sets(&v);
            }
        }
    }
}
