//! Events: the conversion between the stored core/v1 form and the events.k8s.io/v1 view
//! (`docs/fidelity.md` §2.1, §2.2), the event validation rules (§1.2, §1.3) and the event field
//! selector labels (§2.3).

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::pointer::{Pointer, text};
use serde_json::{Map, Value, json};

use super::status::FieldError;
use super::validation;

/// (core/v1 name, events.k8s.io/v1 name) of every renamed field.
pub(crate) const RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// Converts an events.k8s.io/v1 body to the stored core/v1 form.
///
/// Returns the converted object and the core-only field names found in the body (they are
/// unknown fields of the events.k8s.io/v1 type and are dropped).
pub fn v1_to_core(mut body: Value) -> (Value, Vec<String>) {
    let mut unknown = Vec::new();
    let Some(map) = body.as_object_mut() else {
        return (body, unknown);
    };
    let mut out = Map::new();
    for (key, value) in std::mem::take(map) {
        if RENAMES.iter().any(|(core, _)| *core == key) {
            unknown.push(key);
            continue;
        }
        let new_key = RENAMES
            .iter()
            .find(|(_, v1)| *v1 == key)
            .map(|(core, _)| (*core).to_string())
            .unwrap_or(key);
        out.insert(new_key, value);
    }
    out.insert("apiVersion".into(), json!("v1"));
    out.insert("kind".into(), json!("Event"));
    (Value::Object(out), unknown)
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        _ => false,
    }
}

/// The core/v1 JSON shape of a stored event, as the real server writes it.
pub fn core_view(stored: &Value) -> Value {
    match core_view_ref(stored) {
        Some(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(key, value)| (key.to_string(), value.into_owned()))
                .collect(),
        ),
        None => stored.clone(),
    }
}

/// [`core_view`] without copying the stored event: its top-level fields in key order (the
/// order a JSON object is written in), borrowing every value that is not filled in or
/// replaced. Serialising it writes the same bytes as serialising [`core_view`]; `None` when
/// `stored` is not an object.
pub fn core_view_ref(stored: &Value) -> Option<BTreeMap<&str, Cow<'_, Value>>> {
    let map = stored.as_object()?;
    let mut out: BTreeMap<&str, Cow<'_, Value>> = map
        .iter()
        .map(|(key, value)| (key.as_str(), Cow::Borrowed(value)))
        .collect();
    out.insert("apiVersion", Cow::Owned(json!("v1")));
    out.insert("kind", Cow::Owned(json!("Event")));
    out.entry("involvedObject")
        .or_insert_with(|| Cow::Owned(json!({})));
    if out.get("source").is_none_or(|v| v.is_null()) {
        out.insert("source", Cow::Owned(json!({})));
    }
    for key in ["firstTimestamp", "lastTimestamp", "eventTime"] {
        out.entry(key).or_insert(Cow::Owned(Value::Null));
    }
    for key in ["reportingComponent", "reportingInstance"] {
        if out.get(key).is_none_or(|v| v.is_null()) {
            out.insert(key, Cow::Owned(json!("")));
        }
    }
    for key in ["reason", "message", "type", "action", "count"] {
        if out.get(key).is_some_and(|v| is_empty_value(v)) {
            out.remove(key);
        }
    }
    Some(out)
}

/// How [`core_view`] shows one top-level field of a stored event.
#[derive(Debug, Clone, Copy)]
enum CoreRule {
    /// Always this string.
    Fixed(&'static str),
    /// Left out when empty ([`is_empty_value`]).
    DropEmpty,
    /// `null` when absent.
    NullIfAbsent,
    /// `{}` when absent.
    ObjectIfAbsent,
    /// `{}` when absent or null.
    ObjectIfUnset,
    /// `""` when absent or null.
    StringIfUnset,
}

/// The fields [`core_view`] fills in, replaces or leaves out, sorted by name (the order a
/// JSON object is written in).
const CORE_RULES: [(&str, CoreRule); 14] = [
    ("action", CoreRule::DropEmpty),
    ("apiVersion", CoreRule::Fixed("v1")),
    ("count", CoreRule::DropEmpty),
    ("eventTime", CoreRule::NullIfAbsent),
    ("firstTimestamp", CoreRule::NullIfAbsent),
    ("involvedObject", CoreRule::ObjectIfAbsent),
    ("kind", CoreRule::Fixed("Event")),
    ("lastTimestamp", CoreRule::NullIfAbsent),
    ("message", CoreRule::DropEmpty),
    ("reason", CoreRule::DropEmpty),
    ("reportingComponent", CoreRule::StringIfUnset),
    ("reportingInstance", CoreRule::StringIfUnset),
    ("source", CoreRule::ObjectIfUnset),
    ("type", CoreRule::DropEmpty),
];

/// One value as [`CoreView`] writes it.
enum Shown<'a> {
    Stored(&'a Value),
    Text(&'static str),
    EmptyObject,
    Null,
}

impl serde::Serialize for Shown<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Shown::Stored(value) => value.serialize(serializer),
            Shown::Text(text) => serializer.serialize_str(text),
            Shown::EmptyObject => serde::Serializer::serialize_map(serializer, Some(0))
                .and_then(serde::ser::SerializeMap::end),
            Shown::Null => serializer.serialize_unit(),
        }
    }
}

impl CoreRule {
    fn show(self, value: Option<&Value>) -> Option<Shown<'_>> {
        let unset = value.is_none_or(Value::is_null);
        match (self, value) {
            (CoreRule::Fixed(text), _) => Some(Shown::Text(text)),
            (CoreRule::DropEmpty, Some(v)) if is_empty_value(v) => None,
            (CoreRule::NullIfAbsent, None) => Some(Shown::Null),
            (CoreRule::ObjectIfAbsent, None) => Some(Shown::EmptyObject),
            (CoreRule::ObjectIfUnset, _) if unset => Some(Shown::EmptyObject),
            (CoreRule::StringIfUnset, _) if unset => Some(Shown::Text("")),
            (_, v) => v.map(Shown::Stored),
        }
    }
}

/// [`core_view`] written straight from the stored event, without building the view: the
/// stored fields and [`CORE_RULES`] walked together in key order. Serialising it writes the
/// same bytes as serialising [`core_view`] (this module's tests compare them).
pub struct CoreView<'a>(pub &'a Map<String, Value>);

impl CoreView<'_> {
    /// The JSON text (what serialising it writes).
    pub fn json(&self) -> Vec<u8> {
        use super::response::{write_json, write_json_str};
        let mut out = Vec::with_capacity(1024);
        out.push(b'{');
        let mut first = true;
        self.for_each(|key, shown| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_json_str(&mut out, key);
            out.push(b':');
            match shown {
                Shown::Stored(Value::Object(meta)) if key == "metadata" => {
                    write_metadata(&mut out, meta);
                }
                Shown::Stored(value) => write_json(&mut out, value),
                Shown::Text(text) => write_json_str(&mut out, text),
                Shown::EmptyObject => out.extend_from_slice(b"{}"),
                Shown::Null => out.extend_from_slice(b"null"),
            }
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
        out.push(b'}');
        out
    }

    /// Calls `f` with each field of the view, in key order.
    fn for_each<'s, E>(
        &'s self,
        mut f: impl FnMut(&'s str, Shown<'s>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut stored = self.0.iter().peekable();
        let mut rules = CORE_RULES.iter().peekable();
        loop {
            let next_stored = stored.peek().map(|(k, _)| k.as_str());
            let next_rule = rules.peek().map(|(k, _)| *k);
            let (key, shown) = match (next_stored, next_rule) {
                (None, None) => break,
                (Some(s), Some(r)) if s == r => {
                    let (key, value) = stored.next().map(|(k, v)| (k.as_str(), v)).unzip();
                    let rule = rules.next().map(|(_, rule)| *rule);
                    (key, rule.and_then(|rule| rule.show(value)))
                }
                (Some(s), r) if r.is_none_or(|r| s < r) => {
                    let (key, value) = stored.next().map(|(k, v)| (k.as_str(), v)).unzip();
                    (key, value.map(Shown::Stored))
                }
                _ => {
                    let rule = rules.next();
                    (
                        rule.map(|(k, _)| *k),
                        rule.and_then(|(_, rule)| rule.show(None)),
                    )
                }
            };
            if let (Some(key), Some(shown)) = (key, shown) {
                f(key, shown)?;
            }
        }
        Ok(())
    }
}

/// Appends an event's metadata as JSON text (what `write_json` writes), its `managedFields`
/// through [`write_managed_fields`].
fn write_metadata(out: &mut Vec<u8>, meta: &Map<String, Value>) {
    use super::response::{write_json, write_json_str};
    out.push(b'{');
    for (i, (key, value)) in meta.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, key);
        out.push(b':');
        if key == "managedFields" {
            write_managed_fields(out, value);
        } else {
            write_json(out, value);
        }
    }
    out.push(b'}');
}

/// Appends a `managedFields` list as JSON text (what `write_json` writes). The last list
/// written and its text are kept: the events one writer creates within a second carry equal
/// lists (same manager, operation, fields and time), whose text is then copied, not written
/// again. Comparing two lists costs less than writing one.
fn write_managed_fields(out: &mut Vec<u8>, value: &Value) {
    use super::response::write_json;
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<(Value, Vec<u8>)> = const { RefCell::new((Value::Null, Vec::new())) };
    }
    let copied = LAST.with(|last| {
        let Ok(last) = last.try_borrow() else {
            return false;
        };
        let (list, text) = &*last;
        if text.is_empty() || list != value {
            return false;
        }
        out.extend_from_slice(text);
        true
    });
    if copied {
        #[cfg(debug_assertions)]
        {
            let mut written = Vec::new();
            write_json(&mut written, value);
            debug_assert!(
                out.ends_with(&written),
                "the kept managedFields text differs"
            );
        }
        return;
    }
    let start = out.len();
    write_json(out, value);
    LAST.with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            let (list, text) = &mut *last;
            list.clone_from(value);
            text.clear();
            text.extend_from_slice(&out[start..]);
        }
    });
}

impl serde::Serialize for CoreView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        self.for_each(|key, shown| map.serialize_entry(key, &shown))?;
        map.end()
    }
}

/// The events.k8s.io/v1 JSON shape of a stored event.
pub fn v1_view(stored: &Value) -> Value {
    let Some(map) = stored.as_object() else {
        return stored.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let new_key = RENAMES
            .iter()
            .find(|(core, _)| *core == key)
            .map(|(_, v1)| (*v1).to_string())
            .unwrap_or_else(|| key.clone());
        out.insert(new_key, value.clone());
    }
    out.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    out.insert("kind".into(), json!("Event"));
    out.entry("eventTime").or_insert(Value::Null);
    out.entry("regarding").or_insert_with(|| json!({}));
    for key in ["deprecatedFirstTimestamp", "deprecatedLastTimestamp"] {
        out.entry(key).or_insert(Value::Null);
    }
    if out.get("deprecatedSource").is_none_or(Value::is_null) {
        out.insert("deprecatedSource".into(), json!({}));
    }
    for key in [
        "reason",
        "note",
        "type",
        "action",
        "deprecatedCount",
        "reportingController",
        "reportingInstance",
    ] {
        if out.get(key).is_some_and(is_empty_value) {
            out.remove(key);
        }
    }
    Value::Object(out)
}

fn s<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.ptr(pointer).and_then(Value::as_str).unwrap_or("")
}

fn is_set(obj: &Value, pointer: &str) -> bool {
    obj.ptr(pointer).is_some_and(|v| !is_empty_value(v))
}

/// Which API a request went to, for the rules that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventApi {
    /// core/v1.
    Core,
    /// events.k8s.io/v1.
    V1,
}

/// `legacyValidateEvent`.
fn legacy<'a>(event: &'a Value, api: EventApi) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rc_field = match api {
        EventApi::Core => "reportingComponent",
        EventApi::V1 => "reportingController",
    };
    // The top-level fields read, in one walk of the event.
    let [event_time, involved, metadata] =
        super::pointer::fields_sorted(Some(event), ["eventTime", "involvedObject", "metadata"]);
    let namespace_of = |v: Option<&'a Value>| text(v.and_then(|v| v.get("namespace")));
    let ns = namespace_of(metadata).unwrap_or("");
    let io_ns = namespace_of(involved).unwrap_or("");
    debug_assert_eq!(ns, s(event, "/metadata/namespace"));
    debug_assert_eq!(io_ns, s(event, "/involvedObject/namespace"));
    if event_time.is_none_or(is_empty_value) {
        let ok = if io_ns.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            ns == io_ns
        };
        if !ok {
            errs.push(FieldError::invalid(
                "involvedObject.namespace",
                io_ns,
                "does not match event.namespace",
            ));
        }
    } else {
        if io_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(FieldError::invalid(
                "involvedObject.namespace",
                io_ns,
                "does not match event.namespace",
            ));
        }
        let rc = s(event, "/reportingComponent");
        if rc.is_empty() {
            errs.push(FieldError::required(rc_field, ""));
        }
        for m in validation::qualified_name(rc) {
            errs.push(FieldError::invalid(rc_field, rc, &m));
        }
        let limited = |errs: &mut Vec<FieldError>, key: &str, required: bool, limit: usize| {
            let v = s(event, &format!("/{key}"));
            if required && v.is_empty() {
                errs.push(FieldError::required(key, ""));
            }
            if v.len() > limit {
                errs.push(FieldError::invalid(
                    key,
                    "",
                    &format!("can have at most {limit} characters"),
                ));
            }
        };
        limited(&mut errs, "reportingInstance", true, 128);
        limited(&mut errs, "action", true, 128);
        limited(&mut errs, "reason", true, 128);
        limited(&mut errs, "message", false, 1024);
    }
    for m in validation::dns1123_subdomain(ns) {
        errs.push(FieldError::invalid("namespace", ns, &m));
    }
    errs
}

fn series_errors(event: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(series) = event.get("series").filter(|v| !v.is_null()) {
        let count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
        if count < 2 {
            errs.push(FieldError::invalid(
                "series.count",
                "",
                "should be at least 2",
            ));
        }
        if series.get("lastObservedTime").is_none_or(Value::is_null) {
            errs.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
    errs
}

/// `ValidateEventCreate` for a stored-form event created through `api`.
pub fn validate_create(event: &Value, api: EventApi) -> Vec<FieldError> {
    let mut errs = legacy(event, api);
    if api == EventApi::Core {
        return errs;
    }
    errs.extend(validation::object_meta(
        event,
        true,
        validation::subdomain_rule,
    ));
    errs.extend(series_errors(event));
    if !is_set(event, "/eventTime") {
        errs.push(FieldError::required("eventTime", ""));
    }
    let ty = s(event, "/type");
    if ty != "Normal" && ty != "Warning" {
        errs.push(FieldError::invalid(
            "type",
            "",
            &format!("has invalid value: {ty}"),
        ));
    }
    for key in ["firstTimestamp", "lastTimestamp", "count"] {
        if is_set(event, &format!("/{key}")) {
            errs.push(FieldError::invalid(key, "", "needs to be unset"));
        }
    }
    if !s(event, "/source/component").is_empty() || !s(event, "/source/host").is_empty() {
        errs.push(FieldError::invalid("source", "", "needs to be unset"));
    }
    errs
}

fn normalized(v: Option<&Value>) -> Value {
    match v {
        None => Value::Null,
        Some(v) if is_empty_value(v) => Value::Null,
        Some(Value::Object(m)) if m.is_empty() => Value::Null,
        Some(v) => v.clone(),
    }
}

/// Truncates a MicroTime string to whole microseconds for comparison.
fn micro(v: Option<&Value>) -> Value {
    match v.and_then(Value::as_str) {
        Some(text) => match text.parse::<jiff::Timestamp>() {
            Ok(ts) => json!(ts.as_microsecond()),
            Err(_) => json!(text),
        },
        None => Value::Null,
    }
}

/// `ValidateEventUpdate` for stored-form events updated through `api`.
pub fn validate_update(new: &Value, old: &Value, api: EventApi) -> Vec<FieldError> {
    let mut errs = legacy(new, api);
    if api == EventApi::Core {
        return errs;
    }
    errs.extend(validation::object_meta_update(new, old));
    if normalized(new.get("series")) != normalized(old.get("series")) {
        errs.extend(series_errors(new));
    }
    let immutable = |errs: &mut Vec<FieldError>, key: &str| {
        let n = normalized(new.get(key));
        if n != normalized(old.get(key)) {
            errs.push(FieldError::invalid_json(key, &n, "field is immutable"));
        }
    };
    for key in [
        "involvedObject",
        "reason",
        "message",
        "source",
        "firstTimestamp",
        "lastTimestamp",
        "count",
        "reason",
        "type",
    ] {
        immutable(&mut errs, key);
    }
    if micro(new.get("eventTime")) != micro(old.get("eventTime")) {
        errs.push(FieldError::invalid_json(
            "eventTime",
            &normalized(new.get("eventTime")),
            "field is immutable",
        ));
    }
    for key in [
        "action",
        "related",
        "reportingComponent",
        "reportingInstance",
    ] {
        let n = normalized(new.get(key));
        if n != normalized(old.get(key)) {
            let field = if key == "reportingComponent" {
                "reportingController"
            } else {
                key
            };
            errs.push(FieldError::invalid_json(field, &n, "field is immutable"));
        }
    }
    errs
}

/// Maps a field selector label of an events request to the stored field label, or `None` when
/// the label is not supported on that API.
pub fn map_label(label: &str, api: EventApi) -> Option<&'static str> {
    const COMMON: &[&str] = &[
        "metadata.name",
        "metadata.namespace",
        "reason",
        "source",
        "type",
    ];
    const IO: &[&str] = &[
        "kind",
        "namespace",
        "name",
        "uid",
        "apiVersion",
        "resourceVersion",
        "fieldPath",
    ];
    if let Some(c) = COMMON.iter().find(|c| **c == label) {
        return Some(c);
    }
    match api {
        EventApi::Core => {
            if label == "reportingComponent" {
                return Some("reportingComponent");
            }
            let rest = label.strip_prefix("involvedObject.")?;
            IO.iter().find(|f| **f == rest).map(|f| io_label(f))
        }
        EventApi::V1 => {
            if label == "reportingController" {
                return Some("reportingComponent");
            }
            let rest = label.strip_prefix("regarding.")?;
            IO.iter().find(|f| **f == rest).map(|f| io_label(f))
        }
    }
}

fn io_label(field: &str) -> &'static str {
    match field {
        "kind" => "involvedObject.kind",
        "namespace" => "involvedObject.namespace",
        "name" => "involvedObject.name",
        "uid" => "involvedObject.uid",
        "apiVersion" => "involvedObject.apiVersion",
        "resourceVersion" => "involvedObject.resourceVersion",
        _ => "involvedObject.fieldPath",
    }
}

/// The value of a stored-field label on a stored event (`ToSelectableFields`).
pub fn field_value(event: &Value, label: &str) -> String {
    match label {
        "metadata.name" => s(event, "/metadata/name").to_string(),
        "metadata.namespace" => s(event, "/metadata/namespace").to_string(),
        "reason" => s(event, "/reason").to_string(),
        "type" => s(event, "/type").to_string(),
        "reportingComponent" => s(event, "/reportingComponent").to_string(),
        "source" => {
            let c = s(event, "/source/component");
            if c.is_empty() {
                s(event, "/reportingComponent").to_string()
            } else {
                c.to_string()
            }
        }
        other => match other.strip_prefix("involvedObject.") {
            Some(f) => s(event, &format!("/involvedObject/{f}")).to_string(),
            None => String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_core_view_writes_the_same_bytes_as_the_copied_one() {
        let stored = [
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "a", "namespace": "n"},
                "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "", "message": "m",
                "type": "Normal", "count": 0, "source": null, "reportingComponent": null}),
            json!({"metadata": {"name": "b"}, "action": "", "eventTime": "2024-01-01T00:00:00.000000Z",
                "reportingInstance": "i", "firstTimestamp": "2024-01-01T00:00:00Z", "zz": 1}),
            json!({}),
            json!({"aaa": 1, "involvedObject": null, "source": {"component": "c"}, "reportingInstance": null,
                "action": "a", "count": 2, "type": "", "message": null, "zzz": [1], "kind": "X", "apiVersion": "v9"}),
            json!({"eventTime": null, "firstTimestamp": null, "lastTimestamp": "2024-01-01T00:00:00Z",
                "reason": "R", "reportingComponent": "rc", "count": 0, "metadata": {"name": "x"}}),
        ];
        for event in &stored {
            let borrowed =
                serde_json::to_vec(&core_view_ref(event).expect("an object")).expect("serialises");
            let copied = serde_json::to_vec(&core_view(event)).expect("serialises");
            assert_eq!(
                String::from_utf8_lossy(&borrowed),
                String::from_utf8_lossy(&copied)
            );
            let streamed = serde_json::to_vec(&CoreView(event.as_object().expect("an object")))
                .expect("serialises");
            assert_eq!(
                String::from_utf8_lossy(&streamed),
                String::from_utf8_lossy(&copied)
            );
            let written = CoreView(event.as_object().expect("an object")).json();
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&copied)
            );
        }
        let shown = core_view(&stored[0]);
        assert_eq!(shown["source"], json!({}));
        assert_eq!(shown["reportingComponent"], json!(""));
        assert!(shown.get("reason").is_none() && shown.get("count").is_none());
        assert_eq!(shown["kind"], json!("Event"));
        assert!(core_view_ref(&json!("not an object")).is_none());
    }

    #[test]
    fn v1_round_trip_renames_fields() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "a"},
            "regarding": {"name": "p"}, "note": "hi", "reportingController": "c", "deprecatedCount": 3});
        let (core, unknown) = v1_to_core(v1);
        assert!(unknown.is_empty());
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hi");
        assert_eq!(core["reportingComponent"], "c");
        assert_eq!(core["count"], 3);
        let back = v1_view(&core);
        assert_eq!(back["note"], "hi");
        assert_eq!(back["eventTime"], Value::Null);
        assert_eq!(back["deprecatedSource"], json!({}));
        let shown = core_view(&core);
        assert_eq!(shown["source"], json!({}));
        assert_eq!(shown["reportingInstance"], "");
    }

    #[test]
    fn v1_create_message_matches_the_doc_example() {
        let ev = json!({"metadata": {"name": "x", "namespace": "default"},
            "involvedObject": {"namespace": "default"}, "eventTime": "2024-05-01T10:00:00.000000Z",
            "reportingComponent": "c", "reportingInstance": "i", "reason": "R", "type": "Info"});
        let errs = validate_create(&ev, EventApi::V1);
        let e = super::super::status::ApiError::invalid("Event", "", "x", &errs);
        assert_eq!(
            e.body["message"],
            "Event \"x\" is invalid: [action: Required value, type: Invalid value: \"\": has invalid value: Info]"
        );
    }
}
