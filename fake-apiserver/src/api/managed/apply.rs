//! Server-side apply (`operation: Apply`): the configuration's fields, conflicts with other
//! managers (409 with the real text) or, forced, taking them over; fields the applier gave up
//! are removed when nobody else owns them.

use std::ops::Bound;

use serde_json::{Map, Value, json};

use super::entries::{entries, set_entries};
use super::fields::{FieldSet, Operation, Path, field_set, is_member_map, remove_at, value_at};
use super::update::{Writer, upsert};
use crate::api::status::ApiError;

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
pub(crate) fn prune_empty_parent(obj: &mut Value, path: &Path) {
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
