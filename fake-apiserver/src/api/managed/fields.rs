//! Field sets: the paths an object's fields make (structured-merge-diff's `ToFieldSet`), what
//! is a member (leaves, string maps, list items), and reading or removing the value at a path.

use std::collections::BTreeSet;
use std::rc::Rc;

use serde_json::{Map, Value};

/// One path element in `fieldsV1` notation (`f:name`, `k:{...}`, `v:...`).
pub type Path = Vec<String>;

/// A set of field paths.
pub type FieldSet = BTreeSet<Path>;

/// String-valued maps of the served kinds (granular maps: each key owned on its own, and the
/// map itself a member).
pub(crate) fn is_string_map(field: &str) -> bool {
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
pub(crate) fn list_key(field: &str) -> Option<&'static str> {
    crate::api::patch::merge_key(field)
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
pub(crate) const STRIPPED_METADATA: [&str; 11] = [
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
pub(crate) fn stripped_root_key(key: &str, has_status: bool) -> bool {
    key == "apiVersion" || key == "kind" || has_status && key == "status"
}

/// The keyed-list key of a list field whose items all carry it.
pub(crate) fn keyed_list(field: Option<&str>, items: &[Value]) -> Option<&'static str> {
    list_key(field.unwrap_or("")).filter(|k| items.iter().all(|i| i.get(*k).is_some()))
}

/// A list element whose `v:`/`k:` spelling is not one-to-one with its value (a float, which
/// compares equal across spellings like `0.0`/`-0.0`, or a structured value): comparisons of such
/// paths go through [`value_at`] as the element spellings are looked up there.
pub(crate) fn plain(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Null | Value::Bool(_) | Value::String(_)) => true,
        Some(Value::Number(n)) => !n.is_f64(),
        _ => false,
    }
}

/// One element of a path as [`tracked`] builds it, ordered as its `fieldsV1` text orders
/// (`f:` before `k:` before `v:`, then by the rest): a field borrows its name from the object,
/// so walking an object allocates no text for its fields.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Elem<'a> {
    /// `f:<name>`.
    F(&'a str),
    /// `k:{...}`, the whole text.
    K(Rc<str>),
    /// `v:...`, the whole text.
    V(Rc<str>),
}

impl Elem<'_> {
    /// The `fieldsV1` text.
    pub(crate) fn text(&self) -> String {
        match self {
            Elem::F(name) => field_element(name),
            Elem::K(text) | Elem::V(text) => text.to_string(),
        }
    }

    /// This element against a `fieldsV1` text, as their texts compare.
    fn cmp_text(&self, text: &str) -> std::cmp::Ordering {
        match self {
            // `"f:" + name` against `text`, without building the former: the prefix first,
            // then the rest as slices.
            Elem::F(name) => {
                let order = match text.as_bytes().get(..2) {
                    Some(b"f:") => name.as_bytes().cmp(&text.as_bytes()[2..]),
                    _ => b"f:"[..].cmp(&text.as_bytes()[..text.len().min(2)]),
                };
                debug_assert_eq!(
                    order,
                    b"f:"
                        .iter()
                        .chain(name.as_bytes())
                        .cmp(text.as_bytes().iter())
                );
                order
            }
            Elem::K(own) | Elem::V(own) => own.as_ref().cmp(text),
        }
    }
}

/// The `f:` element of a field.
pub(crate) fn field_element(field: &str) -> String {
    let mut s = String::with_capacity(field.len() + 2);
    s.push_str("f:");
    s.push_str(field);
    s
}

/// The `k:` element of a keyed list item whose key field `key` holds `value`:
/// `k:{"<key>":<value>}`, as serde_json writes the one-entry object.
pub(crate) fn key_element(key: &str, value: &Value) -> String {
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
pub(crate) fn set_element(item: &Value) -> String {
    use std::fmt::Write;
    let mut s = String::from("v:");
    // Writing into a String cannot fail.
    let _ = write!(s, "{item}");
    s
}

/// A path of [`Elem`]s.
pub(crate) type ElemPath<'a> = Vec<Elem<'a>>;

/// The [`Path`] of an [`ElemPath`].
pub(crate) fn path_of(path: &[Elem<'_>]) -> Path {
    path.iter().map(Elem::text).collect()
}

/// An [`ElemPath`] against a [`Path`], as the two paths' texts compare.
pub(crate) fn cmp_path<S: AsRef<str>>(a: &[Elem<'_>], b: &[S]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let order = x.cmp_text(y.as_ref());
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// [`is_member_map`] of an [`ElemPath`].
pub(crate) fn is_member_map_elems(p: &[Elem<'_>]) -> bool {
    matches!(p.last(), Some(Elem::F(f)) if is_string_map(f))
}

/// The tracked paths of an object with the value at each, sorted.
pub(crate) struct Tracked<'a> {
    /// Each path once (the first value seen), in set order.
    pub(crate) items: Vec<(ElemPath<'a>, &'a Value)>,
    /// Some list element repeats or is not [`plain`]: the values recorded may differ from what
    /// [`value_at`] finds, so comparisons must use it.
    pub(crate) exotic: bool,
}

/// Collects the paths under `value` (the path `path`, reached through the field `field`), as
/// structured-merge-diff's field set lists them, before parents are dropped.
pub(crate) fn walk<'a>(
    value: &'a Value,
    field: Option<&str>,
    path: &mut ElemPath<'a>,
    out: &mut Tracked<'a>,
) {
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
                    path.push(Elem::K(Rc::from(key_element(key, k))));
                    out.items.push((path.clone(), item));
                    if let Some(fields) = item.as_object() {
                        walk_fields(fields.iter(), path, out);
                    }
                    path.pop();
                }
            } else if field == Some("finalizers") {
                for item in items {
                    out.exotic |= !plain(Some(item));
                    path.push(Elem::V(Rc::from(set_element(item))));
                    out.items.push((path.clone(), item));
                    path.pop();
                }
            }
        }
        _ => out.items.push((path.clone(), value)),
    }
}

/// [`walk`] over the (non-null) fields of an object.
pub(crate) fn walk_fields<'a>(
    fields: impl Iterator<Item = (&'a String, &'a Value)>,
    path: &mut ElemPath<'a>,
    out: &mut Tracked<'a>,
) {
    for (k, v) in fields {
        if v.is_null() {
            continue;
        }
        path.push(Elem::F(k));
        walk(v, Some(k), path, out);
        path.pop();
    }
}

/// The tracked paths of an object (or an applied configuration) and their values: the members
/// of its field set, sorted, without the untracked fields.
pub(crate) fn tracked(obj: &Value, has_status: bool, operation: Operation) -> Tracked<'_> {
    tracked_where(obj, has_status, operation, &|_, _| true)
}

/// [`tracked`] of the parts of an object `keep` accepts: `keep(key, None)` for a top-level
/// field, `keep("metadata", Some(key))` for a field of an object `metadata` (asked only of the
/// tracked ones). Parts are whole subtrees, so each keeps exactly the paths (and values) it has
/// in [`tracked`]. An `obj` that is not an object is taken whole.
pub(crate) fn tracked_where<'a>(
    obj: &'a Value,
    has_status: bool,
    operation: Operation,
    keep: &dyn Fn(&str, Option<&str>) -> bool,
) -> Tracked<'a> {
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
                        path.push(Elem::F(k));
                        walk_fields(
                            meta.iter().filter(|(mk, _)| {
                                !STRIPPED_METADATA.contains(&mk.as_str()) && keep(k, Some(mk))
                            }),
                            &mut path,
                            &mut out,
                        );
                        path.pop();
                    }
                    None if !keep(k, None) => {}
                    None => {
                        path.push(Elem::F(k));
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
    // Compacted in place: the path at `read` is compared with the next one, not yet moved.
    let items = &mut out.items;
    let mut write = 0;
    for read in 0..items.len() {
        let p = &items[read].0;
        let parent = items
            .get(read + 1)
            .is_some_and(|(q, _)| q.len() > p.len() && q.starts_with(p));
        if !parent || keeps_parent(p, operation) {
            items.swap(write, read);
            write += 1;
        }
    }
    items.truncate(write);
    out
}

/// Whether `path` (in `fieldsV1` text) is a member of `tracked(obj, false, Operation::Update)`,
/// read off the object without building the set; `None` for a path with a `k:` element, a
/// `v:` element other than a last one naming a plain string ([`plain_string_element`]), or an
/// `obj` that is not an object, which this does not decide.
pub(crate) fn update_tracks(obj: &Value, path: &[&str]) -> Option<bool> {
    let root = obj.as_object()?;
    // A set list item last: decided here when it is a string written without escapes.
    let (path, item) = match path.split_last() {
        Some((last, init)) if last.starts_with("v:") => (init, Some(plain_string_element(last)?)),
        _ => (path, None),
    };
    // Every other element a field (checked before walking, so the answer is `None` however
    // far the walk would get).
    if !path.iter().all(|el| el.starts_with("f:")) {
        return None;
    }
    let mut names = path.iter().map(|el| &el[2..]);
    let Some(first) = names.next() else {
        // The empty path is never one.
        return Some(false);
    };
    if stripped_root_key(first, false) {
        return Some(false);
    }
    let Some(mut value) = root.get(first).filter(|v| !v.is_null()) else {
        return Some(false);
    };
    let mut field = first;
    if first == "metadata" && value.is_object() {
        // The metadata struct is never a member, nor are its untracked fields.
        let Some(key) = names.next() else {
            return Some(false);
        };
        if STRIPPED_METADATA.contains(&key) {
            return Some(false);
        }
        let Some(child) = value.get(key).filter(|v| !v.is_null()) else {
            return Some(false);
        };
        value = child;
        field = key;
    }
    for name in names {
        // A field is reached through an object alone (list items are `k:`/`v:` elements).
        let Some(child) = value
            .as_object()
            .and_then(|m| m.get(name))
            .filter(|v| !v.is_null())
        else {
            return Some(false);
        };
        value = child;
        field = name;
    }
    if let Some(item) = item {
        // The items of a set list (`finalizers`, as `walk` lists them), each a member.
        return Some(match value {
            Value::Array(items)
                if field == "finalizers" && keyed_list(Some(field), items).is_none() =>
            {
                items.iter().any(|i| i.as_str() == Some(item))
            }
            _ => false,
        });
    }
    Some(tracked_at(value, field, path))
}

/// Whether the value found at `path` (of field `field`, all `f:` elements) is a member of
/// the Update set ([`update_tracks`]'s last step).
fn tracked_at(value: &Value, field: &str, path: &[&str]) -> bool {
    match value {
        // A struct is only a parent; an empty object or a string map is a member (kept as a
        // parent too in an Update).
        Value::Object(map) => map.is_empty() || is_string_map(field),
        Value::Array(items) => {
            // A list with items listed below it is a parent: kept only when `keeps_parent`.
            let parent = !items.is_empty()
                && (keyed_list(Some(field), items).is_some() || field == "finalizers");
            let kept = is_string_map(field)
                || matches!(path, ["f:metadata", "f:finalizers" | "f:ownerReferences"]);
            !parent || kept
        }
        _ => true,
    }
}

/// Whether a set list item `item` is in the list found at a path ([`update_tracks`] of a
/// path whose last element is a `v:` one).
fn tracked_item(value: &Value, field: &str, item: &str) -> bool {
    match value {
        Value::Array(items)
            if field == "finalizers" && keyed_list(Some(field), items).is_none() =>
        {
            items.iter().any(|i| i.as_str() == Some(item))
        }
        _ => false,
    }
}

/// Where the walk of [`each_update_tracked`] stands on the object, for a path of `f:`
/// elements ([`update_tracks`]'s walk, one element at a time).
#[derive(Clone, Copy)]
enum Walk<'v> {
    /// The empty path.
    Root,
    /// A path that is no member, nor is any extension of it.
    Out,
    /// The value at the path, its field, and whether it is the `metadata` object (which
    /// needs a field after it).
    At(&'v Value, &'v str, bool),
    /// A path [`update_tracks`] does not decide (a `k:` element, or a `v:` one not last).
    Undecided,
}

impl<'v> Walk<'v> {
    /// One element further.
    fn step(self, root: &'v Map<String, Value>, element: &str) -> Walk<'v> {
        let Some(name) = element.strip_prefix("f:") else {
            return Walk::Undecided;
        };
        match self {
            Walk::Undecided => Walk::Undecided,
            Walk::Out => Walk::Out,
            Walk::Root => match root.get_key_value(name) {
                _ if stripped_root_key(name, false) => Walk::Out,
                Some((key, value)) if !value.is_null() => {
                    Walk::At(value, key, key == "metadata" && value.is_object())
                }
                _ => Walk::Out,
            },
            Walk::At(_, _, true) if STRIPPED_METADATA.contains(&name) => Walk::Out,
            Walk::At(value, _, _) => match value.as_object().and_then(|m| m.get_key_value(name)) {
                Some((key, v)) if !v.is_null() => Walk::At(v, key, false),
                _ => Walk::Out,
            },
        }
    }

    /// [`update_tracks`] of the path walked to here (`path`, its elements).
    fn tracks(self, path: &[&str]) -> Option<bool> {
        match self {
            Walk::Undecided => None,
            Walk::Root | Walk::Out | Walk::At(_, _, true) => Some(false),
            Walk::At(value, field, false) => Some(tracked_at(value, field, path)),
        }
    }

    /// [`update_tracks`] of the path walked to here extended by the `v:` element `element`.
    fn tracks_item(self, element: &str) -> Option<bool> {
        let item = plain_string_element(element)?;
        match self {
            Walk::Undecided => None,
            Walk::Root | Walk::Out | Walk::At(_, _, true) => Some(false),
            Walk::At(value, field, false) => Some(tracked_item(value, field, item)),
        }
    }
}

/// Calls `f` with every path of a `fieldsV1` tree, in the order and number of times
/// `update::each_path` lists them, with what [`update_tracks`] says of it in `obj`: the tree
/// and the object are walked side by side, so each element costs one lookup, not one per
/// path and element.
pub(crate) fn each_update_tracked<'a>(
    tree: &'a Value,
    obj: &Value,
    f: &mut dyn FnMut(&[&'a str], Option<bool>),
) {
    let Some(root) = obj.as_object() else {
        // Nothing decided.
        let mut path = Vec::new();
        each_tracked(tree, None, Walk::Undecided, &mut path, f);
        return;
    };
    let mut path = Vec::new();
    each_tracked(tree, Some(root), Walk::Root, &mut path, f);
}

fn each_tracked<'a, 'v>(
    node: &'a Value,
    root: Option<&'v Map<String, Value>>,
    walk: Walk<'v>,
    path: &mut Vec<&'a str>,
    f: &mut dyn FnMut(&[&'a str], Option<bool>),
) {
    let Some(map) = node.as_object() else {
        return;
    };
    let here = |path: &[&str]| match path.split_last() {
        // A `v:` element last: the walk stands at its list.
        Some((last, _)) if last.starts_with("v:") => walk_before_item(walk, last),
        _ => walk.tracks(path),
    };
    if map.is_empty() && !path.is_empty() {
        f(path, here(path));
    }
    for (key, child) in map {
        if key == "." {
            f(path, here(path));
            continue;
        }
        // A `v:` element: the walk stays at the list (decided when the path ends there);
        // any element after it leaves the path undecided.
        let next = match (root, path.last()) {
            (_, Some(last)) if last.starts_with("v:") => Walk::Undecided,
            (_, _) if key.starts_with("v:") => walk,
            (Some(root), _) => walk.step(root, key),
            (None, _) => Walk::Undecided,
        };
        path.push(key);
        each_tracked(child, root, next, path, f);
        path.pop();
    }
}

/// What [`update_tracks`] says of a path ending in the `v:` element `last`, the walk standing
/// at the list before it.
fn walk_before_item(walk: Walk<'_>, last: &str) -> Option<bool> {
    walk.tracks_item(last)
}

/// The string a `v:` element names when it is one written with no escape (printable ASCII
/// but a quote or a backslash): `set_element` writes exactly that string so, and no other
/// value.
fn plain_string_element(element: &str) -> Option<&str> {
    let text = element.strip_prefix("v:\"")?.strip_suffix('"')?;
    text.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        .then_some(text)
}

/// The field set of an object (or an applied configuration), without the untracked fields.
pub fn field_set(obj: &Value, has_status: bool, operation: Operation) -> FieldSet {
    tracked(obj, has_status, operation)
        .items
        .into_iter()
        .map(|(p, _)| path_of(&p))
        .collect()
}

/// Whether a path, when it is also a parent, stays a member (written with `"."`): list items
/// always, and in an Update string maps and `metadata.finalizers`/`ownerReferences` (members
/// themselves in an Update).
pub(crate) fn keeps_parent(p: &[Elem<'_>], operation: Operation) -> bool {
    matches!(p.last(), Some(Elem::K(_) | Elem::V(_)))
        || operation == Operation::Update
            && (is_member_map_elems(p)
                || matches!(
                    p,
                    [
                        Elem::F("metadata"),
                        Elem::F("finalizers" | "ownerReferences")
                    ]
                ))
}

pub(crate) fn is_member_map(p: &[String]) -> bool {
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

pub(crate) fn step<'a>(cur: &'a Value, el: &str) -> Option<&'a Value> {
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
