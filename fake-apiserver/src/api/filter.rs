//! What a read shows: the view of a stored object through a resource row (core/v1 or
//! events.k8s.io/v1 events, `kind`/`apiVersion` of the row) and the namespace, label and field
//! selector [`Filter`] of a list or watch. Both the verbs and the watch stream use them.

use serde_json::{Value, json};

use super::events::{self, EventApi};
use super::resources::{FieldLabels, ResourceDef, View};
use super::selectors::{self, LabelSelector};
use super::status::ApiError;
use super::{Request, Target};

/// `metadata.<key>` as a string, or "" when absent.
pub(super) fn meta<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// How a stored object is shown through `def`.
pub fn view(def: &ResourceDef, stored: &Value) -> Value {
    match def.view {
        View::EventsV1 => events::v1_view(stored),
        View::CoreEvent => events::core_view(stored),
        View::Plain => {
            let mut obj = stored.clone();
            if let Some(map) = obj.as_object_mut() {
                map.insert("apiVersion".into(), json!(def.api_version()));
                map.insert("kind".into(), json!(def.kind));
            }
            obj
        }
    }
}

/// Whether [`view`] of `stored` is `stored` itself, so it can be serialised without a copy:
/// a plain (non-event) row whose stored object already carries the row's `apiVersion` and
/// `kind` (the usual case: objects are stored in their canonical form).
pub fn view_is_stored(def: &ResourceDef, stored: &Value) -> bool {
    if def.view != View::Plain {
        return false;
    }
    let api_version = stored.get("apiVersion").and_then(Value::as_str);
    let kind = stored.get("kind").and_then(Value::as_str);
    let matches_version = match api_version {
        Some(v) if def.group.is_empty() => v == def.version,
        Some(v) => v
            .split_once('/')
            .is_some_and(|(group, version)| group == def.group && version == def.version),
        None => false,
    };
    stored.is_object() && matches_version && kind == Some(def.kind)
}

/// Label and field selectors and the namespace of a list or watch.
pub(crate) struct Filter {
    namespace: Option<String>,
    labels: LabelSelector,
    fields: Vec<(String, String, bool)>,
}

impl Filter {
    /// Parses `labelSelector` and `fieldSelector`; unknown field labels give 400.
    pub fn new(target: &Target, req: &Request) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(req.query.get("labelSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let terms = selectors::parse_field_selector(req.query.get("fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        let mut fields = Vec::new();
        for t in terms {
            fields.push((map_field_label(target.def, &t.label)?, t.value, t.negated));
        }
        if target.watch_path
            && let Some(name) = &target.name
        {
            fields.push(("metadata.name".into(), name.clone(), false));
        }
        Ok(Self {
            namespace: target.namespace.clone(),
            labels,
            fields,
        })
    }

    /// The value an exact (`=`/`==`) term on the stored field `label` requires, if any.
    pub fn exact(&self, label: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(l, _, negated)| l == label && !negated)
            .map(|(_, v, _)| v.as_str())
    }

    /// The namespace the filter is restricted to, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Whether the filter has label or field terms.
    pub fn has_selectors(&self) -> bool {
        !self.labels.0.is_empty() || !self.fields.is_empty()
    }

    /// Whether a stored object passes.
    pub fn matches(&self, def: &ResourceDef, obj: &Value) -> bool {
        if let Some(ns) = &self.namespace
            && meta(obj, "namespace") != ns
        {
            return false;
        }
        self.labels.matches(&selectors::labels_of(obj))
            && self
                .fields
                .iter()
                .all(|(label, value, negated)| (field_value(def, obj, label) == *value) != *negated)
    }
}

fn map_field_label(def: &ResourceDef, label: &str) -> Result<String, ApiError> {
    let unsupported = || ApiError::bad_request(format!("field label not supported: {label}"));
    if matches!(label, "metadata.name" | "metadata.namespace") {
        return Ok(label.to_string());
    }
    let ok = match def.field_labels {
        FieldLabels::MetaOnly => {
            return Err(ApiError::bad_request(format!(
                "\"{label}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
            )));
        }
        FieldLabels::CoreEvent => {
            return events::map_label(label, EventApi::Core)
                .map(str::to_string)
                .ok_or_else(unsupported);
        }
        FieldLabels::EventsV1 => {
            return events::map_label(label, EventApi::V1)
                .map(str::to_string)
                .ok_or_else(unsupported);
        }
        FieldLabels::Node => label == "spec.unschedulable",
        FieldLabels::Namespace => label == "status.phase",
        FieldLabels::Pod => matches!(
            label,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
    };
    if ok {
        Ok(label.to_string())
    } else {
        Err(unsupported())
    }
}

fn field_value(def: &ResourceDef, obj: &Value, label: &str) -> String {
    def.strategy.field_value(obj, label)
}
