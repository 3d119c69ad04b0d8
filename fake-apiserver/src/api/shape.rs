//! The shape of a k8s-openapi type, compiled once from its JSON schema (`schema`): which
//! bodies decoding through the type and encoding again (the round trip of `resources`) would
//! give back unchanged. A write body is checked against it in one walk, without allocating;
//! only a body that fails the check (an unknown field, a type the decoder would convert, a
//! timestamp not in its written form, a missing required field) takes the round trip.
//!
//! The check is conservative: any schema construct it does not know the decoder's behaviour
//! for (`format: byte`, `type: number`, an object without properties, ...) fails it, so the
//! round trip decides. Debug builds run the round trip as well and assert both agree.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value};

/// One node of a compiled schema.
#[derive(Debug)]
enum Node {
    /// A struct: its fields, sorted by name, and how many are required.
    Struct(Vec<Field>, usize),
    /// A map with string keys (`labels`, `requests`).
    Map(usize),
    /// A list.
    List(usize),
    /// A string.
    Str,
    /// A boolean.
    Bool,
    /// An `int32`.
    Int32,
    /// An `int64`.
    Int64,
    /// `metav1.Time`: written as `%Y-%m-%dT%H:%M:%SZ`.
    Time,
    /// `metav1.MicroTime`: written as `%Y-%m-%dT%H:%M:%S%.6fZ`.
    MicroTime,
    /// A Quantity or IntOrString: a string is kept as it is (a number may change type).
    StringOnly,
    /// Any JSON, kept as it is (`FieldsV1`).
    Any,
    /// Something the check does not model: the round trip decides.
    Opaque,
}

#[derive(Debug)]
struct Field {
    name: String,
    node: usize,
    required: bool,
}

/// A compiled schema (see the module docs).
#[derive(Debug)]
pub struct Shape {
    nodes: Vec<Node>,
    root: usize,
    api_version: &'static str,
    kind: &'static str,
}

impl Shape {
    /// The shape of the k8s-openapi resource type `T` (compiled on first use, then shared).
    pub fn of<T>() -> &'static Shape
    where
        T: schemars::JsonSchema + k8s_openapi::Resource + 'static,
    {
        // A handful of types (one per served kind): a list scanned is cheaper than a
        // hashed map.
        static SHAPES: Mutex<Vec<(TypeId, &'static Shape)>> = Mutex::new(Vec::new());
        // A poisoned lock only means another thread panicked while compiling: the list is
        // still consistent (entries are pushed whole).
        let mut shapes = SHAPES.lock().unwrap_or_else(|p| p.into_inner());
        let id = TypeId::of::<T>();
        if let Some(&(_, shape)) = shapes.iter().find(|(t, _)| *t == id) {
            return shape;
        }
        let schema = super::schema::schema_of::<T>();
        let shape: &'static Shape = Box::leak(Box::new(compile(&schema, T::API_VERSION, T::KIND)));
        shapes.push((id, shape));
        shape
    }

    /// Whether the round trip through the type would give `body` back, once the nulls of
    /// optional fields (which it drops) are gone — they are taken out here — and with the
    /// type's `apiVersion` and `kind`, which are set here too. `false` leaves `body` as the
    /// round trip would read it (only optional nulls taken out).
    pub fn settle(&self, body: &mut Value) -> bool {
        let Some(map) = body.as_object_mut() else {
            return false;
        };
        for (key, want) in [("apiVersion", self.api_version), ("kind", self.kind)] {
            match map.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s == want => {}
                Some(_) => return false,
            }
        }
        let Node::Struct(fields, required) = &self.nodes[self.root] else {
            return false;
        };
        if !self.fields(fields, *required, map) {
            return false;
        }
        // Written unless already there (checked above: absent, null or the same string).
        for (key, want) in [("apiVersion", self.api_version), ("kind", self.kind)] {
            if !map.get(key).is_some_and(Value::is_string) {
                map.insert(key.into(), Value::String(want.into()));
            }
        }
        true
    }

    fn check(&self, node: usize, value: &mut Value) -> bool {
        match (&self.nodes[node], value) {
            (Node::Struct(fields, required), Value::Object(map)) => {
                self.fields(fields, *required, map)
            }
            (Node::Map(item), Value::Object(map)) => map
                .values_mut()
                .all(|v| !v.is_null() && self.check(*item, v)),
            (Node::List(item), Value::Array(items)) => items
                .iter_mut()
                .all(|v| !v.is_null() && self.check(*item, v)),
            (Node::Str | Node::StringOnly, Value::String(_)) | (Node::Bool, Value::Bool(_)) => true,
            (Node::Int32, Value::Number(n)) => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            (Node::Int64, Value::Number(n)) => n.as_i64().is_some(),
            (Node::Time, Value::String(s)) => written_as(s, "%Y-%m-%dT%H:%M:%SZ"),
            (Node::MicroTime, Value::String(s)) => written_as(s, "%Y-%m-%dT%H:%M:%S%.6fZ"),
            (Node::Any, _) => true,
            _ => false,
        }
    }

    /// The fields of a struct: every key known, every required field there, each value of
    /// its field's shape; nulls of optional (or unknown) fields are dropped.
    fn fields(&self, fields: &[Field], required: usize, map: &mut Map<String, Value>) -> bool {
        let mut nulls = false;
        let mut seen_required = 0;
        // Both sorted by name: one pass over the two.
        let mut rest = fields;
        for (key, value) in map.iter_mut() {
            while rest.first().is_some_and(|f| before(&f.name, key)) {
                rest = &rest[1..];
            }
            let field = rest.first().filter(|f| f.name == *key);
            if value.is_null() {
                if field.is_some_and(|f| f.required) {
                    return false;
                }
                nulls = true;
                continue;
            }
            let Some(field) = field else {
                return false;
            };
            seen_required += usize::from(field.required);
            if !self.check(field.node, value) {
                return false;
            }
        }
        if nulls {
            map.retain(|_, v| !v.is_null());
        }
        seen_required == required
    }
}

/// Whether the field name `a` sorts before `b` (as `a < b`), deciding by the first bytes
/// when they differ (most do) without comparing the whole names.
fn before(a: &str, b: &str) -> bool {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x < y,
        _ => a < b,
    }
}

/// Whether the timestamp `text` parses and is written back as itself with `format`.
fn written_as(text: &str, format: &str) -> bool {
    thread_local! {
        // The last text found written so, and its format: an object written again carries
        // the same timestamps (its creationTimestamp), which then skip parsing and writing.
        static LAST: std::cell::RefCell<(String, String)> = const {
            std::cell::RefCell::new((String::new(), String::new()))
        };
    }
    let known = LAST.with_borrow(|(t, f)| t == text && f == format && !t.is_empty());
    if known {
        debug_assert!(parsed_and_written_as(text, format));
        return true;
    }
    let written = parsed_and_written_as(text, format);
    if written {
        LAST.with_borrow_mut(|(t, f)| {
            t.clear();
            t.push_str(text);
            f.clear();
            f.push_str(format);
        });
    }
    written
}

/// [`written_as`], worked out.
fn parsed_and_written_as(text: &str, format: &str) -> bool {
    text.parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| jiff::fmt::strtime::format(format, t).ok())
        .is_some_and(|written| written == text)
}

struct Compiler<'a> {
    defs: Option<&'a Map<String, Value>>,
    nodes: Vec<Node>,
    named: HashMap<String, usize>,
}

fn compile(schema: &Value, api_version: &'static str, kind: &'static str) -> Shape {
    let mut compiler = Compiler {
        defs: schema.get("$defs").and_then(Value::as_object),
        nodes: Vec::new(),
        named: HashMap::new(),
    };
    let root = compiler.node(schema);
    Shape {
        nodes: compiler.nodes,
        root,
        api_version,
        kind,
    }
}

impl Compiler<'_> {
    fn push(&mut self, node: Node) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn node(&mut self, schema: &Value) -> usize {
        if let Some(reference) = schema.get("$ref") {
            return match reference.as_str().and_then(|r| r.strip_prefix("#/$defs/")) {
                Some(name) => self.named(name),
                None => self.push(Node::Opaque),
            };
        }
        let node = self.inline(schema);
        self.push(node)
    }

    /// A type of `$defs`, by its schema name (the k8s-openapi wrappers whose decoding is
    /// not what their schema says are recognised by name).
    fn named(&mut self, name: &str) -> usize {
        if let Some(&index) = self.named.get(name) {
            return index;
        }
        // Placed first so a recursive type refers to itself.
        let index = self.push(Node::Opaque);
        self.named.insert(name.to_string(), index);
        let node = match name {
            "io.k8s.apimachinery.pkg.apis.meta.v1.Time" => Node::Time,
            "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime" => Node::MicroTime,
            "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1" => Node::Any,
            "io.k8s.apimachinery.pkg.api.resource.Quantity"
            | "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => Node::StringOnly,
            _ => match self.defs.and_then(|defs| defs.get(name)) {
                Some(def) => self.inline(def),
                None => Node::Opaque,
            },
        };
        self.nodes[index] = node;
        index
    }

    fn inline(&mut self, schema: &Value) -> Node {
        if schema.get("$ref").is_some() || schema.get("x-kubernetes-int-or-string").is_some() {
            return Node::Opaque;
        }
        let format = schema.get("format").and_then(Value::as_str);
        match (schema.get("type").and_then(Value::as_str), format) {
            (Some("string"), None) => Node::Str,
            (Some("boolean"), None) => Node::Bool,
            (Some("integer"), Some("int32")) => Node::Int32,
            (Some("integer"), Some("int64")) => Node::Int64,
            (Some("array"), None) => match schema.get("items").filter(|i| i.is_object()) {
                Some(items) => Node::List(self.node(items)),
                None => Node::Opaque,
            },
            (Some("object"), None) => {
                let properties = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties").filter(|a| a.is_object());
                match (properties, additional) {
                    (Some(properties), None) => {
                        let required: Vec<&str> = schema
                            .get("required")
                            .and_then(Value::as_array)
                            .map(|r| r.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        // `properties` is a sorted map: the fields come out sorted by name.
                        let fields: Vec<Field> = properties
                            .iter()
                            .map(|(name, property)| Field {
                                name: name.clone(),
                                node: self.node(property),
                                required: required.contains(&name.as_str()),
                            })
                            .collect();
                        let count = fields.iter().filter(|f| f.required).count();
                        if count != required.len() {
                            // A required field the schema does not describe.
                            return Node::Opaque;
                        }
                        Node::Struct(fields, count)
                    }
                    (None, Some(item)) => Node::Map(self.node(item)),
                    _ => Node::Opaque,
                }
            }
            _ => Node::Opaque,
        }
    }
}
