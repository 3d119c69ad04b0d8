//! A non-apply write (`operation: Update`): its manager, and the fields it takes from
//! everybody else.

use serde_json::Value;

use serde_json::Map;

use super::entries::{Entry, entries, entry_value, managed_fields, reset_requested, set_entries};
use super::fields::{
    Elem, FieldSet, Operation, Path, STRIPPED_METADATA, Tracked, cmp_path, each_update_tracked,
    is_member_map_elems, path_of, tracked, tracked_where, update_tracks, value_at,
};
use super::fields_v1::{fields_v1_of, update_signature};

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

pub(crate) fn upsert(list: &mut Vec<Entry>, w: &Writer<'_>, operation: &str, fields: FieldSet) {
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
        let list = new
            .as_object()
            .and_then(|o| created_managed_fields(o, ignores_status, w));
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            match list {
                Some(list) => m.insert("managedFields".into(), list),
                None => m.remove("managedFields"),
            };
        }
        return;
    };
    // The entries kept as they are (a copy), or rewritten (the list; in debug builds also
    // when kept, to check the copy against it).
    let (kept, list) = {
        // Only the parts of the object the write changed can hold a changed path: both sets
        // are built of those parts alone (`tracked_where`; equal subtrees give equal paths
        // with equal values). Within them the values recorded are what `value_at` finds
        // unless a part is exotic, so the comparison needs the parts' flags alone.
        let differs = |k: &str, mk: Option<&str>| match mk {
            None => old.get(k) != new.get(k),
            Some(mk) => old.get(k).and_then(|m| m.get(mk)) != new.get(k).and_then(|m| m.get(mk)),
        };
        // The parts that differ, found once for both sets: a new part is a top-level field or
        // (of an object `metadata`) a tracked metadata field; an old part left out of the new
        // object differs too.
        let parts = match (old.as_object(), new.as_object()) {
            (Some(old_map), Some(new_map)) => differing_parts(old_map, new_map),
            _ => looked_up_parts(old, new),
        };
        let in_parts = |k: &str, mk: Option<&str>| {
            let found = parts.contains(&(k, mk));
            debug_assert_eq!(found, differs(k, mk), "part {k} {mk:?}");
            found
        };
        let (new_part, old_part) = if old.is_object() {
            (
                tracked_where(new, false, Operation::Update, &in_parts),
                tracked_where(old, false, Operation::Update, &in_parts),
            )
        } else {
            (
                tracked(new, false, Operation::Update),
                tracked(old, false, Operation::Update),
            )
        };
        let changed = changed_paths(
            &new_part,
            &old_part,
            new_part.exotic || old_part.exotic,
            ignores_status,
            old,
            new,
        );
        // The new object's whole set, built only when a path needs it.
        let whole_new = std::cell::OnceCell::new();
        let new_set = || whole_new.get_or_init(|| tracked(new, false, Operation::Update));
        #[cfg(debug_assertions)]
        {
            let whole_old = tracked(old, false, Operation::Update);
            let slow = changed_paths(
                new_set(),
                &whole_old,
                new_set().exotic || whole_old.exotic,
                ignores_status,
                old,
                new,
            );
            assert_eq!(
                changed, slow,
                "changed paths differ from the whole sets' ones"
            );
        }
        let in_new = |p: &Path| {
            new_set()
                .items
                .binary_search_by(|(q, _)| cmp_path(q, p))
                .is_ok()
        };
        // Read off the object where it can be (`each_update_tracked`), the set otherwise.
        let in_set = |p: &[&str]| {
            new_set()
                .items
                .binary_search_by(|(q, _)| cmp_path(q, p))
                .is_ok()
        };
        match kept_entries(old, &changed, new, &in_set, w) {
            Some(kept) => {
                #[cfg(debug_assertions)]
                let rewritten = updated_entries(entries(old), &changed, in_new, w);
                (Some(kept), {
                    #[cfg(debug_assertions)]
                    {
                        rewritten
                    }
                    #[cfg(not(debug_assertions))]
                    {
                        Vec::new()
                    }
                })
            }
            None => (None, updated_entries(entries(old), &changed, in_new, w)),
        }
    };
    match kept {
        Some(kept) => {
            #[cfg(debug_assertions)]
            let expected = {
                let mut slow = new.clone();
                set_entries(&mut slow, &list);
                slow
            };
            let stored = managed_fields(old);
            if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                // The body usually sends the entries back as they are: then they stay.
                if m.get("managedFields") != stored
                    && let Some(stored) = stored
                {
                    m.insert("managedFields".into(), stored.clone());
                }
                let entry = kept
                    .restamp
                    .and_then(|index| m.get_mut("managedFields")?.get_mut(index)?.as_object_mut());
                if let Some(entry) = entry {
                    // The writer's entry is written again: its time and apiVersion are the
                    // write's (the strings rewritten in place).
                    for (key, text) in [("time", w.now), ("apiVersion", w.api_version.as_str())] {
                        match entry.get_mut(key) {
                            Some(Value::String(old)) => {
                                if old != text {
                                    old.clear();
                                    old.push_str(text);
                                }
                            }
                            _ => {
                                entry.insert(key.into(), Value::String(text.to_string()));
                            }
                        }
                    }
                }
            }
            #[cfg(debug_assertions)]
            assert_eq!(*new, expected, "kept entries differ from rewritten ones");
        }
        None => set_entries(new, &list),
    }
}

/// The parts of an object (a top-level field, or a tracked field of an object `metadata`),
/// the untracked metadata fields left out.
fn parts_of(obj: &Value) -> impl Iterator<Item = (&str, Option<&str>)> {
    obj.as_object().into_iter().flatten().flat_map(|(k, v)| {
        let meta = v.as_object().filter(|_| k == "metadata");
        let whole = meta.is_none().then_some((k.as_str(), None));
        let fields = meta
            .into_iter()
            .flat_map(|m| m.keys())
            .filter_map(move |mk| {
                (!STRIPPED_METADATA.contains(&mk.as_str()))
                    .then_some((k.as_str(), Some(mk.as_str())))
            });
        whole.into_iter().chain(fields)
    })
}

/// The tracked fields of a metadata object, as parts ([`parts_of`]).
fn metadata_parts<'a>(
    k: &'a str,
    meta: &'a Map<String, Value>,
) -> impl Iterator<Item = (&'a str, Option<&'a str>)> {
    meta.keys()
        .filter(|mk| !STRIPPED_METADATA.contains(&mk.as_str()))
        .map(move |mk| (k, Some(mk.as_str())))
}

/// The parts ([`parts_of`]) of two values that differ, each looked up in both: what
/// [`differing_parts`] finds walking two objects side by side, for any values.
fn looked_up_parts<'a>(old: &'a Value, new: &'a Value) -> Vec<(&'a str, Option<&'a str>)> {
    let differs = |k: &str, mk: Option<&str>| match mk {
        None => old.get(k) != new.get(k),
        Some(mk) => old.get(k).and_then(|m| m.get(mk)) != new.get(k).and_then(|m| m.get(mk)),
    };
    let mut parts: Vec<(&str, Option<&str>)> =
        parts_of(new).filter(|(k, mk)| differs(k, *mk)).collect();
    // An old part the new object has not got differs (it was compared otherwise).
    let new_has = |(k, mk): (&str, Option<&str>)| {
        let value = new.get(k);
        match mk {
            None => value.is_some_and(|v| !(k == "metadata" && v.is_object())),
            Some(mk) => value
                .and_then(Value::as_object)
                .is_some_and(|m| k == "metadata" && m.contains_key(mk)),
        }
    };
    parts.extend(parts_of(old).filter(|&part| !new_has(part)));
    parts
}

/// The parts ([`parts_of`]) of two objects that differ: the new object's whose value is not
/// the old one's, and the old object's the new one has not got. Both maps are walked once,
/// side by side in their key order, without a lookup.
fn differing_parts<'a>(
    old: &'a Map<String, Value>,
    new: &'a Map<String, Value>,
) -> Vec<(&'a str, Option<&'a str>)> {
    let mut parts = Vec::new();
    let metadata_object = |k: &str, v: &'a Value| v.as_object().filter(|_| k == "metadata");
    for (k, o, n) in side_by_side(old, new) {
        let old_meta = o.and_then(|o| metadata_object(k, o));
        match n {
            Some(n) => match metadata_object(k, n) {
                Some(new_meta) => {
                    if o.is_some() && old_meta.is_none() {
                        // A metadata that was no object: an old part the new one has not.
                        parts.push((k, None));
                    }
                    let Some(old_meta) = old_meta else {
                        // Every field new.
                        parts.extend(metadata_parts(k, new_meta));
                        continue;
                    };
                    for (mk, om, nm) in side_by_side(old_meta, new_meta) {
                        if STRIPPED_METADATA.contains(&mk) {
                            continue;
                        }
                        match nm {
                            Some(nm) if om == Some(nm) => {}
                            _ => parts.push((k, Some(mk))),
                        }
                    }
                }
                None => {
                    if o != Some(n) {
                        parts.push((k, None));
                    }
                    // An old metadata object's fields: old parts the new one has not.
                    if let Some(old_meta) = old_meta {
                        parts.extend(metadata_parts(k, old_meta));
                    }
                }
            },
            None => match old_meta {
                Some(old_meta) => parts.extend(metadata_parts(k, old_meta)),
                None => parts.push((k, None)),
            },
        }
    }
    parts
}

/// The keys of two maps in order, each with its value in either (a merge of the sorted
/// keys; a key is in one map at least).
fn side_by_side<'a>(
    old: &'a Map<String, Value>,
    new: &'a Map<String, Value>,
) -> impl Iterator<Item = (&'a str, Option<&'a Value>, Option<&'a Value>)> {
    use std::cmp::Ordering;
    let mut olds = old.iter().peekable();
    let mut news = new.iter().peekable();
    std::iter::from_fn(move || {
        let order = match (olds.peek(), news.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((a, _)), Some((b, _))) => a.as_str().cmp(b.as_str()),
        };
        match order {
            Ordering::Less => olds.next().map(|(k, v)| (k.as_str(), Some(v), None)),
            Ordering::Greater => news.next().map(|(k, v)| (k.as_str(), None, Some(v))),
            Ordering::Equal => {
                let (k, o) = olds.next()?;
                let (_, n) = news.next()?;
                Some((k.as_str(), Some(o), Some(n)))
            }
        }
    })
}

/// The `managedFields` of a created object (`None`: none): nobody owns anything yet and
/// everything is new, so the writer's entry is the object's Update field set (without the
/// status it ignores).
fn created_managed_fields(
    obj: &Map<String, Value>,
    ignores_status: bool,
    w: &Writer<'_>,
) -> Option<Value> {
    let written = || {
        let fields = fields_v1_of(obj, ignores_status, Operation::Update);
        (!fields.is_empty()).then(|| {
            Value::Array(vec![entry_value(
                w.manager,
                "Update",
                &w.api_version,
                w.now,
                w.subresource,
                Value::Object(fields),
            )])
        })
    };
    /// The last list written for an object of a signature ([`update_signature`]) and writer:
    /// creates of one kind of object by one client, within one second, have the same list
    /// (copied, not written again).
    #[derive(Default)]
    struct Last {
        key: Vec<u8>,
        list: Option<Value>,
        scratch: Vec<u8>,
    }
    thread_local! {
        static LAST: std::cell::RefCell<Last> = std::cell::RefCell::default();
    }
    LAST.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return written();
        };
        let Last { key, list, scratch } = &mut *last;
        scratch.clear();
        if !update_signature(obj, ignores_status, scratch) {
            return written();
        }
        for part in [w.manager, &w.api_version, w.now, w.subresource] {
            scratch.extend_from_slice(&(part.len() as u64).to_le_bytes());
            scratch.extend_from_slice(part.as_bytes());
        }
        if scratch == key {
            let copy = list.clone();
            #[cfg(debug_assertions)]
            assert_eq!(
                copy,
                written(),
                "the copied managedFields differ from written ones"
            );
            return copy;
        }
        let fresh = written();
        std::mem::swap(key, scratch);
        list.clone_from(&fresh);
        fresh
    })
}

/// The paths of `new_set` added or changed from `old_set`, in set order (a merge of the two
/// sorted lists).
fn changed_paths<'a>(
    new_set: &Tracked<'a>,
    old_set: &Tracked<'a>,
    exotic: bool,
    ignores_status: bool,
    old: &Value,
    new: &Value,
) -> Vec<Path> {
    let mut changed: Vec<Path> = Vec::new();
    let mut olds = old_set.items.iter().peekable();
    for (p, new_value) in &new_set.items {
        if ignores_status && matches!(p.first(), Some(Elem::F("status"))) {
            continue;
        }
        while olds.next_if(|(q, _)| q < p).is_some() {}
        let differs = match olds.peek().filter(|(q, _)| q == p) {
            None => true,
            Some((_, old_value)) => {
                !is_member_map_elems(p)
                    && !matches!(p.last(), Some(Elem::K(_)))
                    && if exotic {
                        let text = path_of(p);
                        value_at(old, &text) != value_at(new, &text)
                    } else {
                        old_value != new_value
                    }
            }
        };
        if differs {
            changed.push(path_of(p));
        }
    }
    changed
}

/// The entries after a non-apply write that added or changed `changed`: each loses the paths
/// gone from the new object (`in_new` false) and the changed ones, which the writer takes.
fn updated_entries(
    mut list: Vec<Entry>,
    changed: &[Path],
    in_new: impl Fn(&Path) -> bool,
    w: &Writer<'_>,
) -> Vec<Entry> {
    {
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
            fields.extend(changed.iter().cloned());
            upsert(&mut list, w, "Update", fields);
        }
    }
    list
}

/// Whether [`updated_entries`] and [`set_entries`] would write the old object's
/// `managedFields` again as they are but for the writer's `time` and `apiVersion`: every entry as `set_entries` writes one ([`written_as_set_entries`]), none losing a
/// path, and every changed path already the writer's. `None` otherwise (they are rewritten).
///
/// Whether a path is in the new object is read off `new` where it can be
/// ([`each_update_tracked`]), else asked of `in_set` (the new object's set).
fn kept_entries(
    old: &Value,
    changed: &[Path],
    new: &Value,
    in_set: &dyn Fn(&[&str]) -> bool,
    w: &Writer<'_>,
) -> Option<Kept> {
    let list = managed_fields(old)?.as_array()?;
    if list.is_empty() {
        return None;
    }
    let is_changed = |p: &[&str]| {
        changed
            .binary_search_by(|q| q.iter().map(String::as_str).cmp(p.iter().copied()))
            .is_ok()
    };
    let mut writer = None;
    for (index, entry) in list.iter().enumerate() {
        let entry = entry.as_object()?;
        if !written_as_set_entries(entry) {
            return None;
        }
        let text = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or("");
        let fields = entry.get("fieldsV1")?;
        let is_writer = writer.is_none()
            && text("manager") == w.manager
            && text("operation") == "Update"
            && text("subresource") == w.subresource;
        if is_writer {
            writer = Some(index);
        }
        // The writer keeps its changed paths (it takes them back); nobody loses another.
        let mut keeps = true;
        each_update_tracked(fields, new, &mut |p, tracked| {
            if !keeps {
                return;
            }
            debug_assert_eq!(tracked, update_tracks(new, p), "walked {p:?}");
            let in_new = match tracked {
                Some(found) => {
                    debug_assert_eq!(found, in_set(p), "update_tracks of {p:?}");
                    found
                }
                None => in_set(p),
            };
            keeps = in_new && (is_writer || !is_changed(p));
        });
        #[cfg(debug_assertions)]
        {
            // The walk lists the paths `each_path` lists.
            let (mut walked, mut listed) = (Vec::<String>::new(), Vec::<String>::new());
            each_update_tracked(fields, new, &mut |p, _| walked.push(p.join("\u{0}")));
            each_path(fields, &mut Vec::new(), &mut |p| {
                listed.push(p.join("\u{0}"))
            });
            assert_eq!(walked, listed, "the walk's paths");
        }
        if !keeps {
            return None;
        }
        if is_writer && !changed.iter().all(|p| is_member(fields, p)) {
            return None;
        }
    }
    if changed.is_empty() {
        return Some(Kept { restamp: None });
    }
    Some(Kept {
        restamp: Some(writer?),
    })
}

/// The old entries kept ([`kept_entries`]).
struct Kept {
    /// The writer's entry, written again with the write's time and apiVersion.
    restamp: Option<usize>,
}

/// Calls `f` with every path of a `fieldsV1` tree (as `from_fields_v1` reads them): the
/// oracle of the debug check in [`kept_entries`] and of the tests.
#[cfg(any(debug_assertions, test))]
fn each_path<'a>(node: &'a Value, path: &mut Vec<&'a str>, f: &mut dyn FnMut(&[&str])) {
    let Some(map) = node.as_object() else {
        return;
    };
    if map.is_empty() && !path.is_empty() {
        f(path);
    }
    for (key, child) in map {
        if key == "." {
            f(path);
            continue;
        }
        path.push(key);
        each_path(child, path, f);
        path.pop();
    }
}

/// Whether `path` is a member of a `fieldsV1` tree written as `to_fields_v1` writes one.
fn is_member(tree: &Value, path: &Path) -> bool {
    let mut node = tree;
    for el in path {
        match node.get(el.as_str()) {
            Some(child) => node = child,
            None => return false,
        }
    }
    node.as_object()
        .is_some_and(|m| m.is_empty() || m.contains_key("."))
}

/// Whether a `managedFields` entry is exactly what [`set_entries`] writes for what
/// [`entries`] reads from it: the six keys (and a non-empty `subresource`), strings,
/// `FieldsV1`, and a `fieldsV1` tree in `to_fields_v1`'s form.
fn written_as_set_entries(entry: &Map<String, Value>) -> bool {
    let string = |k: &str| entry.get(k).is_some_and(Value::is_string);
    let subresource = match entry.get("subresource") {
        None => 0,
        Some(Value::String(s)) if !s.is_empty() => 1,
        Some(_) => return false,
    };
    entry.len() == 6 + subresource
        && ["manager", "operation", "apiVersion", "time"]
            .into_iter()
            .all(string)
        && entry.get("fieldsType").and_then(Value::as_str) == Some("FieldsV1")
        && entry
            .get("fieldsV1")
            .and_then(Value::as_object)
            .is_some_and(|root| {
                !root.is_empty() && !root.contains_key(".") && root.values().all(written_node)
            })
}

/// A `fieldsV1` node below the root in `to_fields_v1`'s form: `{}` (a member), or children
/// (each such a node) with `"."` as `{}` when the node is a member too.
fn written_node(node: &Value) -> bool {
    let Some(map) = node.as_object() else {
        return false;
    };
    if map.is_empty() {
        return true;
    }
    match map.get(".") {
        Some(dot) if !dot.as_object().is_some_and(Map::is_empty) || map.len() == 1 => false,
        _ => map
            .iter()
            .filter(|(k, _)| k.as_str() != ".")
            .all(|(_, child)| written_node(child)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn writer(now: &str) -> Writer<'_> {
        Writer {
            manager: "m",
            api_version: "v1".into(),
            subresource: "",
            now,
            has_status: true,
        }
    }

    /// The side-by-side walk finds the parts comparing each part looked up finds.
    #[test]
    fn differing_parts_are_the_parts_that_compare_unequal() {
        let objects = [
            json!({}),
            json!({"spec": {"x": 1}}),
            json!({"spec": {"x": 2}, "status": {}}),
            json!({"metadata": {"name": "a", "labels": {"l": "1"}}, "spec": {"x": 1}}),
            json!({"metadata": {"name": "b", "labels": {"l": "2"}, "annotations": {}}}),
            json!({"metadata": {"finalizers": ["f"], "uid": "u"}, "apiVersion": "v1"}),
            json!({"metadata": "text", "spec": {"x": 1}}),
            json!({"metadata": null}),
            json!({"kind": "K", "metadata": {"labels": {"l": "1"}}, "zeta": [1]}),
        ];
        for old in &objects {
            for new in &objects {
                let mut expected = looked_up_parts(old, new);
                expected.sort();
                let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
                    unreachable!("objects")
                };
                let mut found = differing_parts(o, n);
                found.sort();
                assert_eq!(found, expected, "{old} -> {new}");
            }
        }
    }

    /// The copy [`kept_entries`] makes is taken for a write changing what its writer owns
    /// (debug builds check it against the rewritten entries inside `record_update`).
    #[test]
    fn a_write_changing_its_own_fields_keeps_the_entries_and_restamps_the_writer() {
        let mut created =
            json!({"metadata": {"name": "c", "labels": {"a": "1"}}, "spec": {"x": "1"}});
        record_update(None, &mut created, &writer("2024-01-01T00:00:00Z"));
        let mut updated = created.clone();
        updated["metadata"]["labels"]["a"] = json!("2");
        let changed: Vec<Path> = vec![vec!["f:metadata".into(), "f:labels".into(), "f:a".into()]];
        let later = writer("2024-01-02T00:00:00Z");
        let kept =
            kept_entries(&created, &changed, &updated, &|_: &[&str]| true, &later).expect("kept");
        assert_eq!(kept.restamp, Some(0));
        record_update(Some(&created), &mut updated, &later);
        let entry = &updated["metadata"]["managedFields"][0];
        assert_eq!(entry["time"], "2024-01-02T00:00:00Z");
        assert_eq!(
            entry["fieldsV1"],
            created["metadata"]["managedFields"][0]["fieldsV1"]
        );
        // Sent without its entries, the write gets the stored ones back.
        let mut bare = created.clone();
        bare["metadata"]["labels"]["a"] = json!("3");
        if let Some(m) = bare["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
        record_update(Some(&created), &mut bare, &later);
        assert_eq!(
            bare["metadata"]["managedFields"],
            updated["metadata"]["managedFields"]
        );
        // Another manager's write takes the field: rewritten.
        let other = Writer {
            manager: "n",
            ..writer("2024-01-03T00:00:00Z")
        };
        assert!(kept_entries(&created, &changed, &updated, &|_: &[&str]| true, &other).is_none());
        // An entry not in the written form: rewritten.
        let mut odd = created.clone();
        odd["metadata"]["managedFields"][0]["fieldsV1"] = json!({"f:spec": {".": {}}});
        assert!(kept_entries(&odd, &[], &updated, &|_: &[&str]| true, &later).is_none());
    }
}
