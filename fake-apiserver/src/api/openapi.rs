//! OpenAPI documents with real schemas for the served kinds, derived from the k8s-openapi
//! types (k8s-openapi's own `schemars` feature), never written by hand:
//! - `/openapi/v3` and its group-version documents (JSON): `components.schemas` plus, for each
//!   kind, the PATCH operation kubectl's field-validation check looks for (`docs/fidelity.md` §3.6);
//!   `kubectl explain` reads these;
//! - `/openapi/v2` (JSON, or the gnostic protobuf `Document` kubectl 1.27/1.28 and every
//!   `apply -f` of a `kind: List` ask for), `definitions` with `x-kubernetes-group-version-kind`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use prost::encoding::{WireType, encode_key, encode_varint};
use serde_json::{Map, Value, json};

use super::resources::{RESOURCES, ResourceDef};

/// The Content-Type of the protobuf OpenAPI v2 answer. Clients ask with the older
/// `…spec.v2@v1.0+protobuf` form, which Go's `mime.ParseMediaType` cannot read back, so the
/// server answers with the `.v1.0` spelling (as kube-openapi does).
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// Rewrites `#/$defs/X` references to `prefix + X` and makes the schema OpenAPI-shaped
/// (a single `type`, no `$schema`).
fn rewrite(value: &mut Value, prefix: &str) {
    match value {
        Value::Object(map) => {
            map.remove("$schema");
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix("#/$defs/")
            {
                *r = format!("{prefix}{name}");
            }
            if let Some(Value::Array(types)) = map.get("type") {
                let first = types.iter().find(|t| *t != "null").cloned();
                match first {
                    Some(t) => map.insert("type".into(), t),
                    None => map.remove("type"),
                };
            }
            for v in map.values_mut() {
                rewrite(v, prefix);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, prefix)),
        _ => {}
    }
}

fn gvk(def: &ResourceDef) -> Value {
    json!([{"group": def.group, "version": def.version, "kind": def.kind}])
}

/// Every definition (name → schema, references as `prefix + name`), with
/// `x-kubernetes-group-version-kind` on the served kinds.
fn definitions(prefix: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for def in RESOURCES {
        let mut schema = (def.schema)();
        let Some(title) = schema
            .get("title")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            continue;
        };
        let defs = schema
            .as_object_mut()
            .and_then(|m| m.remove("$defs"))
            .unwrap_or(Value::Null);
        if let Value::Object(defs) = defs {
            for (name, mut s) in defs {
                rewrite(&mut s, prefix);
                out.entry(name).or_insert(s);
            }
        }
        rewrite(&mut schema, prefix);
        let entry = out.entry(title).or_insert(schema);
        let list = entry.as_object_mut().map(|m| {
            m.entry("x-kubernetes-group-version-kind")
                .or_insert(json!([]))
        });
        if let Some(Value::Array(list)) = list {
            let mine = gvk(def);
            if let Some(item) = mine.get(0)
                && !list.contains(item)
            {
                list.push(item.clone());
            }
        }
    }
    out
}

fn v3_definitions() -> &'static BTreeMap<String, Value> {
    static CACHE: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    CACHE.get_or_init(|| definitions("#/components/schemas/"))
}

/// The OpenAPI v3 document of one group version: per-kind operations and every schema.
pub fn v3_document(group: &str, version: &str, git_version: &str) -> Value {
    let mut paths = Map::new();
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    for def in RESOURCES
        .iter()
        .filter(|d| d.group == group && d.version == version)
    {
        let title = (def.schema)()
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let body = json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{title}")}}}});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{title}")}}}}});
        let item_path = if def.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", def.plural)
        } else {
            format!("{prefix}/{}/{{name}}", def.plural)
        };
        let param = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let gvk = json!({"group": def.group, "version": def.version, "kind": def.kind});
        let tag = format!(
            "{}{}",
            if group.is_empty() { "core" } else { group },
            version
        );
        let op = |verb: &str, params: Vec<Value>, with_body: bool| {
            let mut o = json!({
                "tags": [tag],
                "operationId": format!("{verb}{}", def.kind),
                "parameters": params,
                "responses": ok,
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk,
            });
            if with_body {
                o["requestBody"] = body.clone();
            }
            o
        };
        let mut item = Map::new();
        if def.verbs().contains(&"get") {
            item.insert("get".into(), op("get", vec![], false));
            item.insert(
                "put".into(),
                op(
                    "put",
                    vec![
                        param("dryRun"),
                        param("fieldManager"),
                        param("fieldValidation"),
                    ],
                    true,
                ),
            );
            item.insert(
                "patch".into(),
                op(
                    "patch",
                    vec![
                        param("dryRun"),
                        param("fieldManager"),
                        param("fieldValidation"),
                        param("force"),
                    ],
                    true,
                ),
            );
            item.insert("delete".into(), op("delete", vec![param("dryRun")], false));
            paths.insert(item_path, Value::Object(item));
        }
        let list_path = if def.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", def.plural)
        } else {
            format!("{prefix}/{}", def.plural)
        };
        let mut list = Map::new();
        if def.verbs().contains(&"list") {
            list.insert(
                "get".into(),
                op(
                    "list",
                    vec![
                        param("fieldSelector"),
                        param("labelSelector"),
                        param("limit"),
                        param("continue"),
                        param("watch"),
                    ],
                    false,
                ),
            );
        }
        list.insert(
            "post".into(),
            op(
                "post",
                vec![
                    param("dryRun"),
                    param("fieldManager"),
                    param("fieldValidation"),
                ],
                true,
            ),
        );
        paths.insert(list_path, Value::Object(list));
    }
    let schemas: Map<String, Value> = v3_definitions()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": git_version},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// The OpenAPI v2 (swagger) document: every served kind's definitions.
pub fn v2_document(git_version: &str) -> Value {
    static CACHE: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    let defs = CACHE.get_or_init(|| definitions("#/definitions/"));
    let definitions: Map<String, Value> =
        defs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": git_version},
        "paths": {},
        "definitions": definitions,
    })
}

/// The v2 document as the gnostic `openapi.v2.Document` protobuf message.
pub fn v2_protobuf(git_version: &str) -> Vec<u8> {
    static CACHE: OnceLock<Vec<u8>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            let doc = v2_document(git_version);
            let mut out = Vec::new();
            put_str(&mut out, 1, "2.0");
            let mut info = Vec::new();
            put_str(&mut info, 1, "Kubernetes");
            put_str(&mut info, 2, git_version);
            put_msg(&mut out, 2, &info);
            put_msg(&mut out, 8, &[]);
            let mut defs = Vec::new();
            if let Some(map) = doc.get("definitions").and_then(Value::as_object) {
                for (name, schema) in map {
                    put_msg(&mut defs, 1, &named_schema(name, schema));
                }
            }
            put_msg(&mut out, 9, &defs);
            out
        })
        .clone()
}

fn put_str(buf: &mut Vec<u8>, tag: u32, value: &str) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(value.len() as u64, buf);
    buf.extend_from_slice(value.as_bytes());
}

fn put_msg(buf: &mut Vec<u8>, tag: u32, message: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(message.len() as u64, buf);
    buf.extend_from_slice(message);
}

fn put_bool(buf: &mut Vec<u8>, tag: u32, value: bool) {
    encode_key(tag, WireType::Varint, buf);
    encode_varint(u64::from(value), buf);
}

fn named_schema(name: &str, schema: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, 1, name);
    put_msg(&mut out, 2, &schema_message(schema));
    out
}

/// A JSON schema as gnostic's `Schema` message (the fields kube-openapi reads).
fn schema_message(schema: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(map) = schema.as_object() else {
        return out;
    };
    for (tag, key) in [(1, "$ref"), (2, "format"), (3, "title"), (4, "description")] {
        if let Some(v) = map.get(key).and_then(Value::as_str) {
            put_str(&mut out, tag, v);
        }
    }
    if let Some(required) = map.get("required").and_then(Value::as_array) {
        for r in required.iter().filter_map(Value::as_str) {
            put_str(&mut out, 19, r);
        }
    }
    match map.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Vec::new();
            put_bool(&mut item, 2, *b);
            put_msg(&mut out, 21, &item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Vec::new();
            put_msg(&mut item, 1, &schema_message(s));
            put_msg(&mut out, 21, &item);
        }
        _ => {}
    }
    if let Some(t) = map.get("type").and_then(Value::as_str) {
        let mut item = Vec::new();
        put_str(&mut item, 1, t);
        put_msg(&mut out, 22, &item);
    }
    if let Some(items) = map.get("items").filter(|i| i.is_object()) {
        let mut item = Vec::new();
        put_msg(&mut item, 1, &schema_message(items));
        put_msg(&mut out, 23, &item);
    }
    if let Some(all) = map.get("allOf").and_then(Value::as_array) {
        for s in all {
            put_msg(&mut out, 24, &schema_message(s));
        }
    }
    if let Some(props) = map.get("properties").and_then(Value::as_object) {
        let mut item = Vec::new();
        for (name, s) in props {
            put_msg(&mut item, 1, &named_schema(name, s));
        }
        put_msg(&mut out, 25, &item);
    }
    for (key, value) in map.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut any = Vec::new();
        put_str(&mut any, 2, &value.to_string());
        let mut named = Vec::new();
        put_str(&mut named, 1, key);
        put_msg(&mut named, 2, &any);
        put_msg(&mut out, 31, &named);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_schemas_resolve_and_carry_the_group_version_kind() {
        let doc = v3_document("", "v1", "v1.33.0");
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let pvc = &schemas["io.k8s.api.core.v1.PersistentVolumeClaim"];
        assert_eq!(
            pvc["x-kubernetes-group-version-kind"],
            json!([{"group": "", "version": "v1", "kind": "PersistentVolumeClaim"}])
        );
        // Every reference resolves inside the document.
        let text = doc.to_string();
        for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &r[..r.find('"').expect("closing quote")];
            assert!(schemas.contains_key(name), "unresolved {name}");
        }
        assert!(!text.contains("$defs"));
    }
}
