//! The `fieldsV1` notation of a field set: `f:<field>`, `k:{"<key>":<value>}` for an item of
//! a list with a merge key, `v:<json>` for an item of a set list, `"."` for a member that is
//! also a parent; written from an object or a set, and read back.

use serde_json::{Map, Value};

use super::fields::{
    FieldSet, Operation, Path, STRIPPED_METADATA, field_element, is_string_map, key_element,
    keyed_list, set_element, stripped_root_key,
};

/// An empty `fieldsV1` node (`{}`).
pub(crate) fn empty_node() -> Value {
    Value::Object(Map::new())
}

/// `fieldsV1` straight from an object: what `to_fields_v1(&field_set(obj, has_status, op))`
/// gives, without building the paths (a create's changed set is the whole object).
pub(crate) fn fields_v1_of(
    obj: &Map<String, Value>,
    has_status: bool,
    op: Operation,
) -> Map<String, Value> {
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

/// Appends to `out` what [`fields_v1_of`] reads of `obj` (for an Update), when that is all
/// it depends on: the names of the fields it writes, nested as they are, for an object made
/// of scalars and of structs of them (no list, no string map, no empty struct). `false` for
/// any other object (`out` then holds nothing meaningful): two objects with the same
/// signature have the same `fieldsV1`, so it can key a cache of it.
pub(crate) fn update_signature(
    obj: &Map<String, Value>,
    has_status: bool,
    out: &mut Vec<u8>,
) -> bool {
    /// One field name, with its length (names may hold any byte).
    fn name(out: &mut Vec<u8>, key: &str) {
        out.extend_from_slice(&(key.len() as u64).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
    }
    /// The end of a struct's fields (no name is that long).
    const END: [u8; 8] = u64::MAX.to_le_bytes();
    /// The fields of a struct below the root (as `v1_fields` writes them); how many.
    fn fields(map: &Map<String, Value>, out: &mut Vec<u8>) -> Option<usize> {
        let mut written = 0;
        for (k, v) in map {
            if v.is_null() {
                continue;
            }
            if !field(k, v, out)? {
                continue;
            }
            written += 1;
        }
        Some(written)
    }
    /// One non-null field: written (`true`), or `None` when the object is not of the kind
    /// the signature describes.
    fn field(k: &str, v: &Value, out: &mut Vec<u8>) -> Option<bool> {
        if is_string_map(k) {
            return None;
        }
        match v {
            Value::Array(_) => None,
            Value::Object(map) => {
                name(out, k);
                out.push(1);
                // A struct with no field written is left out by `v1_node`: not described.
                (fields(map, out)? > 0).then_some(())?;
                out.extend_from_slice(&END);
                Some(true)
            }
            _ => {
                name(out, k);
                out.push(0);
                Some(true)
            }
        }
    }
    out.push(u8::from(has_status));
    for (k, v) in obj {
        if v.is_null() || stripped_root_key(k, has_status) {
            continue;
        }
        if k == "metadata" {
            // Written as `fields_v1_of` writes it: the untracked fields left out, and left
            // out itself when nothing else is there.
            let Value::Object(meta) = v else {
                return false;
            };
            name(out, k);
            out.push(2);
            for (mk, mv) in meta {
                if mv.is_null() || STRIPPED_METADATA.contains(&mk.as_str()) {
                    continue;
                }
                if field(mk, mv, out).is_none() {
                    return false;
                }
            }
            out.extend_from_slice(&END);
            continue;
        }
        if field(k, v, out).is_none() {
            return false;
        }
    }
    true
}

/// The `fieldsV1` children (`f:` elements) of the (non-null) fields of an object.
pub(crate) fn v1_fields(map: &Map<String, Value>, op: Operation) -> Map<String, Value> {
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
pub(crate) fn v1_node(
    value: &Value,
    field: Option<&str>,
    keeps: bool,
    op: Operation,
) -> Option<Value> {
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
pub(crate) fn merge_nodes(into: &mut Value, from: Value) {
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

/// `fieldsV1` of a field set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let paths: Vec<&[String]> = set.iter().map(Vec::as_slice).collect();
    Value::Object(v1_group(&paths, 0))
}

/// The `fieldsV1` node of `paths`: distinct paths in set order sharing their first `depth`
/// elements. The node itself, when a member, comes first; it is written with `"."` when it is
/// also a parent, i.e. when other paths follow.
pub(crate) fn v1_group(paths: &[&[String]], depth: usize) -> Map<String, Value> {
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

pub(crate) fn from_fields_v1(v: &Value, path: &mut Path, out: &mut FieldSet) {
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
