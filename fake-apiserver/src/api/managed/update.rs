//! A non-apply write (`operation: Update`): its manager, and the fields it takes from
//! everybody else.

use serde_json::Value;

use super::entries::{Entry, entries, entry_value, reset_requested, set_entries};
use super::fields::{
    Elem, FieldSet, Operation, Path, cmp_path, is_member_map_elems, path_of, tracked, value_at,
};
use super::fields_v1::fields_v1_of;

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
        let in_new = |p: &Path| {
            new_set
                .items
                .binary_search_by(|(q, _)| cmp_path(q, p))
                .is_ok()
        };
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
