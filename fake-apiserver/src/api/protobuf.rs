//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`): the `k8s\0` envelope, a
//! `runtime.Unknown` message around the object's protobuf, decoded with the kube-rs project's
//! `k8s-pb` bindings and turned into the JSON form the rest of the server stores.
//!
//! kubectl's built-in generators (`create namespace`, `run`, `auth can-i`, …) send these
//! bodies from 1.32 on (`docs/fidelity.md` §3.7). Answers stay JSON: those clients accept it.
//!
//! The conversion is generic, not written per kind: the decoded `k8s-pb` message is walked
//! through its `Debug` form (prost derives it for every message: type name, field names,
//! `Some`/`None`, lists, maps) next to the JSON schema of the matching k8s-openapi type
//! (k8s-openapi's own `schemars` feature), which gives each field its JSON name. The wire
//! types Kubernetes encodes specially (`Quantity`, `Time`, `MicroTime`, `IntOrString`,
//! `RawExtension`, `Duration`, bytes) get their JSON forms.

use std::fmt::Debug;

use prost::Message;
use serde_json::{Map, Value, json};

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8] = b"k8s\0";

/// The protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// A protobuf body: its envelope's apiVersion and kind, and the object's raw message.
#[derive(Debug)]
pub struct Envelope {
    /// `typeMeta.apiVersion` of the envelope.
    pub api_version: String,
    /// `typeMeta.kind` of the envelope.
    pub kind: String,
    /// The object's own protobuf message.
    pub raw: Vec<u8>,
}

/// Unwraps the `k8s\0` + `runtime.Unknown` envelope. The error text is the real decoder's.
pub fn envelope(body: &[u8]) -> Result<Envelope, String> {
    let Some(rest) = body.strip_prefix(MAGIC) else {
        return Err("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]".into());
    };
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(rest)
        .map_err(|e| format!("unable to decode the protobuf envelope: {e}"))?;
    if let Some(encoding) = unknown
        .content_encoding
        .as_deref()
        .filter(|e| !e.is_empty())
    {
        return Err(format!("unsupported content encoding {encoding:?}"));
    }
    let type_meta = unknown.type_meta.unwrap_or_default();
    Ok(Envelope {
        api_version: type_meta.api_version.unwrap_or_default(),
        kind: type_meta.kind.unwrap_or_default(),
        raw: unknown.raw.unwrap_or_default(),
    })
}

/// Wraps an object's protobuf in the envelope (what clients send; used by tests and benches).
pub fn encode<P: Message>(api_version: &str, kind: &str, object: &P) -> Vec<u8> {
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

/// Decodes `raw` as the `k8s-pb` message `P` and converts it to the JSON shape of the
/// k8s-openapi type `K` (without apiVersion/kind).
pub fn to_json<P, K>(raw: &[u8]) -> Result<Value, String>
where
    P: Message + Default + Debug,
    K: schemars::JsonSchema,
{
    let message = P::decode(raw).map_err(|e| format!("unable to decode the object: {e}"))?;
    let text = format!("{message:?}");
    let tree = Parser::new(&text)
        .value()
        .ok_or_else(|| "unable to read the decoded object".to_string())?;
    let schema = serde_json::to_value(schemars::schema_for!(K)).unwrap_or(Value::Null);
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    Ok(convert(&tree, &schema, &defs).unwrap_or_else(|| json!({})))
}

/// A value of prost's `Debug` output.
#[derive(Debug, Clone, PartialEq)]
enum Dbg {
    None,
    Bool(bool),
    Number(String),
    Str(String),
    List(Vec<Dbg>),
    Map(Vec<(String, Dbg)>),
    Struct(String, Vec<(String, Dbg)>),
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            pos: 0,
        }
    }

    fn skip_ws(&mut self) {
        while self.text.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.text[self.pos..].starts_with(token.as_bytes()) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> Option<String> {
        self.skip_ws();
        let start = self.pos;
        while self
            .text
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'#')
        {
            self.pos += 1;
        }
        (self.pos > start).then(|| {
            let word = String::from_utf8_lossy(&self.text[start..self.pos]).into_owned();
            word.strip_prefix("r#").map(str::to_string).unwrap_or(word)
        })
    }

    fn string(&mut self) -> Option<String> {
        // Rust's Debug escapes: \" \\ \n \r \t \0 \' \u{…}.
        let mut out = Vec::new();
        loop {
            let b = *self.text.get(self.pos)?;
            self.pos += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.text.get(self.pos)?;
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'0' => out.push(0),
                        b'u' => {
                            let close = self.text[self.pos..].iter().position(|c| *c == b'}')?;
                            let hex =
                                std::str::from_utf8(&self.text[self.pos + 1..self.pos + close])
                                    .ok()?;
                            let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                            out.extend(c.to_string().as_bytes());
                            self.pos += close + 1;
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }

    fn value(&mut self) -> Option<Dbg> {
        self.skip_ws();
        let b = *self.text.get(self.pos)?;
        match b {
            b'"' => {
                self.pos += 1;
                self.string().map(Dbg::Str)
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.eat("]") {
                    return Some(Dbg::List(items));
                }
                loop {
                    items.push(self.value()?);
                    if self.eat("]") {
                        return Some(Dbg::List(items));
                    }
                    if !self.eat(",") {
                        return None;
                    }
                }
            }
            b'{' => {
                self.pos += 1;
                let mut entries = Vec::new();
                if self.eat("}") {
                    return Some(Dbg::Map(entries));
                }
                loop {
                    let key = match self.value()? {
                        Dbg::Str(s) | Dbg::Number(s) => s,
                        _ => return None,
                    };
                    if !self.eat(":") {
                        return None;
                    }
                    entries.push((key, self.value()?));
                    if self.eat("}") {
                        return Some(Dbg::Map(entries));
                    }
                    if !self.eat(",") {
                        return None;
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while self
                    .text
                    .get(self.pos)
                    .is_some_and(|c| c.is_ascii_digit() || b"-+.eE".contains(c))
                {
                    self.pos += 1;
                }
                Some(Dbg::Number(
                    String::from_utf8_lossy(&self.text[start..self.pos]).into_owned(),
                ))
            }
            _ => {
                let word = self.ident()?;
                match word.as_str() {
                    "None" => Some(Dbg::None),
                    "true" => Some(Dbg::Bool(true)),
                    "false" => Some(Dbg::Bool(false)),
                    "Some" => {
                        if !self.eat("(") {
                            return None;
                        }
                        let inner = self.value()?;
                        self.eat(")").then_some(inner)
                    }
                    _ => {
                        let mut fields = Vec::new();
                        if !self.eat("{") {
                            return Some(Dbg::Struct(word, fields));
                        }
                        if self.eat("}") {
                            return Some(Dbg::Struct(word, fields));
                        }
                        loop {
                            let name = self.ident()?;
                            if !self.eat(":") {
                                return None;
                            }
                            fields.push((name, self.value()?));
                            if self.eat("}") {
                                return Some(Dbg::Struct(word, fields));
                            }
                            if !self.eat(",") {
                                return None;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Follows `$ref`s into `$defs`.
fn resolve<'a>(schema: &'a Value, defs: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..16 {
        match current
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
        {
            Some(name) => match defs.get(name) {
                Some(next) => current = next,
                None => return current,
            },
            None => return current,
        }
    }
    current
}

fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn field<'a>(fields: &'a [(String, Dbg)], name: &str) -> Option<&'a Dbg> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn number(value: Option<&Dbg>) -> Option<i64> {
    match value? {
        Dbg::Number(n) => n.parse().ok(),
        _ => None,
    }
}

fn timestamp(fields: &[(String, Dbg)], micro: bool) -> Value {
    // Go writes a zero `metav1.Time`/`MicroTime` as an empty message (its Marshal returns no
    // bytes for `IsZero()`), and reads an empty message back as the zero time: unset, not
    // 1970-01-01 (client-go's events.k8s.io/v1 recorder sends such deprecated timestamps).
    let absent = |name| !matches!(field(fields, name), Some(Dbg::Number(_)));
    if absent("seconds") && absent("nanos") {
        return Value::Null;
    }
    let seconds = number(field(fields, "seconds")).unwrap_or(0);
    let nanos = number(field(fields, "nanos")).unwrap_or(0);
    match jiff::Timestamp::new(seconds, nanos as i32) {
        Ok(t) if micro => json!(t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()),
        Ok(t) => json!(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
        Err(_) => Value::Null,
    }
}

/// Go's `time.Duration.String()` for the whole-second durations Kubernetes uses.
fn go_duration(nanos: i64) -> String {
    let total = nanos / 1_000_000_000;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Converts one value; `None` means "absent" (an unset optional, an empty list or map).
fn convert(value: &Dbg, schema: &Value, defs: &Value) -> Option<Value> {
    let schema = resolve(schema, defs);
    match value {
        Dbg::None => None,
        Dbg::Bool(b) => Some(json!(b)),
        Dbg::Str(s) => Some(json!(s)),
        Dbg::Number(n) => {
            if let Ok(i) = n.parse::<i64>() {
                Some(json!(i))
            } else {
                n.parse::<f64>().ok().map(|f| json!(f))
            }
        }
        Dbg::List(items) if items.is_empty() => None,
        Dbg::List(items) => {
            if schema.get("format").and_then(Value::as_str) == Some("byte") {
                let bytes: Vec<u8> = items
                    .iter()
                    .filter_map(|i| number(Some(i)).map(|n| n as u8))
                    .collect();
                return Some(json!(base64(&bytes)));
            }
            let item_schema = schema.get("items").unwrap_or(&Value::Null);
            Some(Value::Array(
                items
                    .iter()
                    .map(|i| convert(i, item_schema, defs).unwrap_or(Value::Null))
                    .collect(),
            ))
        }
        Dbg::Map(entries) if entries.is_empty() => None,
        Dbg::Map(entries) => {
            let value_schema = schema.get("additionalProperties").unwrap_or(&Value::Null);
            let map: Map<String, Value> = entries
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        convert(v, value_schema, defs).unwrap_or(Value::Null),
                    )
                })
                .collect();
            Some(Value::Object(map))
        }
        Dbg::Struct(name, fields) => match name.as_str() {
            "Quantity" => match field(fields, "string") {
                Some(Dbg::Str(s)) => Some(json!(s)),
                _ => Some(json!("0")),
            },
            "Time" => Some(timestamp(fields, false)),
            "MicroTime" => Some(timestamp(fields, true)),
            "Duration" => Some(json!(go_duration(
                number(field(fields, "duration")).unwrap_or(0)
            ))),
            "IntOrString" => match number(field(fields, "type")).unwrap_or(0) {
                1 => match field(fields, "str_val") {
                    Some(Dbg::Str(s)) => Some(json!(s)),
                    _ => Some(json!("")),
                },
                _ => Some(json!(number(field(fields, "int_val")).unwrap_or(0))),
            },
            "RawExtension" => match field(fields, "raw") {
                Some(Dbg::List(bytes)) => {
                    let bytes: Vec<u8> = bytes
                        .iter()
                        .filter_map(|i| number(Some(i)).map(|n| n as u8))
                        .collect();
                    serde_json::from_slice(&bytes).ok()
                }
                _ => None,
            },
            _ => {
                let properties = schema.get("properties").and_then(Value::as_object);
                let mut out = Map::new();
                for (name, v) in fields {
                    let (json_name, sub) = match properties.and_then(|p| {
                        let key = squash(name);
                        p.iter().find(|(k, _)| squash(k) == key)
                    }) {
                        Some((k, s)) => (k.clone(), s),
                        None => (camel(name), &Value::Null),
                    };
                    if let Some(converted) = convert(v, sub, defs) {
                        out.insert(json_name, converted);
                    }
                }
                Some(Value::Object(out))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::api::core::v1 as pb;
    use k8s_pb::apimachinery::pkg::api::resource::Quantity;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as pbmeta;

    #[test]
    fn a_claim_converts_with_json_names_quantities_and_times() {
        let claim = pb::PersistentVolumeClaim {
            metadata: Some(pbmeta::ObjectMeta {
                name: Some("data \"x\"\n".into()),
                labels: [("app".to_string(), "db".to_string())].into(),
                creation_timestamp: Some(pbmeta::Time {
                    seconds: Some(1_767_225_600),
                    nanos: Some(0),
                }),
                ..Default::default()
            }),
            spec: Some(pb::PersistentVolumeClaimSpec {
                access_modes: vec!["ReadWriteOnce".into()],
                resources: Some(pb::VolumeResourceRequirements {
                    requests: [(
                        "storage".to_string(),
                        Quantity {
                            string: Some("1Gi".into()),
                        },
                    )]
                    .into(),
                    ..Default::default()
                }),
                storage_class_name: Some("fast".into()),
                ..Default::default()
            }),
            status: None,
        };
        let value = to_json::<
            pb::PersistentVolumeClaim,
            k8s_openapi::api::core::v1::PersistentVolumeClaim,
        >(&claim.encode_to_vec())
        .expect("decodes");
        assert_eq!(
            value,
            json!({
                "metadata": {"name": "data \"x\"\n", "labels": {"app": "db"}, "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "fast"},
            })
        );
    }

    #[test]
    fn an_empty_time_message_is_the_zero_time_and_unset() {
        use k8s_pb::api::events::v1 as pbevents;
        let event = pbevents::Event {
            metadata: Some(pbmeta::ObjectMeta {
                name: Some("e".into()),
                creation_timestamp: Some(pbmeta::Time {
                    seconds: Some(0),
                    nanos: Some(0),
                }),
                ..Default::default()
            }),
            event_time: Some(pbmeta::MicroTime {
                seconds: Some(1_767_225_600),
                nanos: Some(5_000),
            }),
            // What client-go's tools/events sends for the zero deprecated timestamps.
            deprecated_first_timestamp: Some(pbmeta::Time::default()),
            deprecated_last_timestamp: Some(pbmeta::Time::default()),
            ..Default::default()
        };
        let value =
            to_json::<pbevents::Event, k8s_openapi::api::events::v1::Event>(&event.encode_to_vec())
                .expect("decodes");
        for key in ["deprecatedFirstTimestamp", "deprecatedLastTimestamp"] {
            assert!(value.get(key).is_none_or(Value::is_null), "{key}: {value}");
        }
        assert_eq!(value["eventTime"], "2026-01-01T00:00:00.000005Z");
        // A time at the epoch itself carries its seconds and stays a time.
        assert_eq!(
            value["metadata"]["creationTimestamp"],
            "1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn acronym_fields_take_their_json_names() {
        let pod = pb::Pod {
            spec: Some(pb::PodSpec {
                host_ipc: Some(true),
                containers: vec![pb::Container {
                    name: Some("c".into()),
                    ports: vec![pb::ContainerPort {
                        container_port: Some(80),
                        host_ip: Some("1.2.3.4".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let value = to_json::<pb::Pod, k8s_openapi::api::core::v1::Pod>(&pod.encode_to_vec())
            .expect("decodes");
        assert_eq!(value["spec"]["hostIPC"], json!(true));
        assert_eq!(
            value["spec"]["containers"][0]["ports"][0],
            json!({"containerPort": 80, "hostIP": "1.2.3.4"})
        );
    }

    #[test]
    fn envelope_round_trips_and_rejects_other_bytes() {
        let ns = pb::Namespace::default();
        let body = encode("v1", "Namespace", &ns);
        let env = envelope(&body).expect("envelope");
        assert_eq!(
            (env.api_version.as_str(), env.kind.as_str()),
            ("v1", "Namespace")
        );
        assert!(envelope(b"{}").unwrap_err().contains("expected prefix"));
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
    }
}
