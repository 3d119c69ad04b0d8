//! The resource table: one row per served group/version/resource. Adding a kind is a row here
//! (plus, if it has special behaviour, a variant of [`FieldLabels`] or [`TableKind`]).

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::storage::v1 as storage;
use k8s_pb::api as pb;
use serde::Serialize;

use super::protobuf;
use super::schema;
use super::shape::Shape;
use super::status::GroupResource;
use super::strategy::{self, Scope, Strategy};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// How a stored object is shown through this row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// As stored.
    Plain,
    /// core/v1 view of a stored Event (the empty fields the real server writes out).
    CoreEvent,
    /// events.k8s.io/v1 view of a core/v1 stored Event (`docs/fidelity.md` §2.1).
    EventsV1,
}

/// Which field selector labels a row accepts (`docs/fidelity.md` §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldLabels {
    /// Only `metadata.name` and `metadata.namespace`.
    MetaOnly,
    /// Nodes: plus `spec.unschedulable`.
    Node,
    /// Pods: plus `spec.nodeName`, `status.phase`, ...
    Pod,
    /// Namespaces: plus `status.phase`.
    Namespace,
    /// core/v1 events.
    CoreEvent,
    /// events.k8s.io/v1 events.
    EventsV1,
}

/// Which `kubectl get` columns a row prints (meta.k8s.io Table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Name and Age.
    Generic,
    /// Events (core and events.k8s.io).
    Event,
    /// PersistentVolumeClaims.
    Pvc,
    /// PersistentVolumes.
    Pv,
    /// Nodes.
    Node,
    /// Pods.
    Pod,
    /// Namespaces.
    Namespace,
    /// VolumeAttachments.
    VolumeAttachment,
    /// StorageClasses.
    StorageClass,
    /// CSINodes.
    CsiNode,
}

/// One served resource.
#[derive(Debug)]
pub struct ResourceDef {
    /// API group, `""` for core.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name (URL segment).
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Short names for discovery.
    pub short_names: &'static [&'static str],
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Store key: rows with the same key share objects (core/v1 and events.k8s.io/v1 events).
    pub storage: &'static str,
    /// How stored objects are shown.
    pub view: View,
    /// Field selector labels accepted.
    pub field_labels: FieldLabels,
    /// Table columns.
    pub table: TableKind,
    /// Has a `/status` subresource (main-resource writes keep the old status).
    pub has_status: bool,
    /// A DELETE answers with the object rather than a success Status.
    pub returns_deleted: bool,
    /// Categories for discovery.
    pub categories: &'static [&'static str],
    /// Decodes a body (in the stored, core form) through the k8s-openapi type and re-encodes it:
    /// type errors surface, unknown fields drop (returned beside the object as dotted paths,
    /// see `unknown_fields`), timestamps take the real formats.
    pub normalize: fn(Value) -> Result<Decoded, String>,
    /// Decodes the object's protobuf message (inside the `k8s\0` envelope) into the JSON
    /// form of this row's version.
    pub protobuf: fn(&[u8]) -> Result<Value, String>,
    /// The kind's strategy (`strategy`): defaulting, preparing, validation on create and
    /// update, create on update, admission.
    pub strategy: &'static dyn Strategy,
    /// The JSON schema of this row's k8s-openapi type (for the OpenAPI documents).
    pub schema: fn() -> Value,
}

impl ResourceDef {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether `v` is [`api_version`](Self::api_version) (compared without writing it).
    pub fn api_version_is(&self, v: &str) -> bool {
        if self.group.is_empty() {
            return v == self.version;
        }
        v.len() == self.group.len() + 1 + self.version.len()
            && v.starts_with(self.group)
            && v.as_bytes()[self.group.len()] == b'/'
            && v.ends_with(self.version)
    }

    /// The verbs this row serves (discovery lists them; others get 405).
    pub fn verbs(&self) -> &'static [&'static str] {
        self.strategy.verbs()
    }

    /// The names a strategy is told about (kind, group, scope).
    pub fn scope(&self) -> Scope<'static> {
        Scope {
            kind: self.kind,
            group: self.group,
            namespaced: self.namespaced,
        }
    }

    /// The group and resource its messages name (`events.events.k8s.io`).
    pub fn group_resource(&self) -> GroupResource<'static> {
        GroupResource {
            group: self.group,
            resource: self.plural,
        }
    }

    /// The list kind, e.g. `EventList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

impl<'a> From<&'a ResourceDef> for GroupResource<'a> {
    fn from(def: &'a ResourceDef) -> Self {
        GroupResource {
            group: def.group,
            resource: def.plural,
        }
    }
}

/// A body decoded through its k8s-openapi type ([`ResourceDef::normalize`]).
#[derive(Debug, PartialEq)]
pub struct Decoded {
    /// The object as the type encodes it.
    pub obj: Value,
    /// The fields of the body that did not survive decoding, as dotted paths.
    pub unknown: Vec<String>,
}

/// [`ResourceDef::normalize`] through `T`: a body its [`Shape`] accepts is already what the
/// round trip would give (it is kept, with no unknown fields); any other takes the round trip.
fn roundtrip<T>(mut body: Value) -> Result<Decoded, String>
where
    T: DeserializeOwned + Serialize + schemars::JsonSchema + k8s_openapi::Resource + 'static,
{
    #[cfg(debug_assertions)]
    let original = body.clone();
    if Shape::of::<T>().settle(&mut body) {
        omit_empty_metadata(&mut body);
        let decoded = Decoded {
            obj: body,
            unknown: Vec::new(),
        };
        #[cfg(debug_assertions)]
        assert_eq!(
            Ok(&decoded),
            typed_roundtrip::<T>(original).as_ref(),
            "the shape check and the round trip disagree"
        );
        return Ok(decoded);
    }
    typed_roundtrip::<T>(body)
}

/// Decodes `body` through `T` and encodes it again; the unknown fields are what did not
/// survive.
fn typed_roundtrip<T: DeserializeOwned + Serialize>(body: Value) -> Result<Decoded, String> {
    // Decoded from the borrowed value: the body is still needed (unknown fields).
    let typed = T::deserialize(&body).map_err(|e| e.to_string())?;
    let mut obj = serde_json::to_value(typed).map_err(|e| e.to_string())?;
    omit_empty_metadata(&mut obj);
    let mut unknown = Vec::new();
    unknown_fields(&body, &obj, &mut unknown);
    Ok(Decoded { obj, unknown })
}

/// One step of a field path: a map key or a list index.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The fields of `input` that did not survive decoding into `output`, as dotted paths
/// (`spec.foo`, `spec.containers[0].bar`). The path is written only for a field reported.
pub(crate) fn unknown_fields(input: &Value, output: &Value, out: &mut Vec<String>) {
    fn written(path: &[Step<'_>]) -> String {
        let mut text = String::new();
        for step in path {
            match step {
                Step::Key(k) if text.is_empty() => text.push_str(k),
                Step::Key(k) => {
                    text.push('.');
                    text.push_str(k);
                }
                Step::Index(n) => text.push_str(&format!("[{n}]")),
            }
        }
        text
    }
    fn walk<'a>(input: &'a Value, output: &Value, path: &mut Vec<Step<'a>>, out: &mut Vec<String>) {
        match (input, output) {
            (Value::Object(i), Value::Object(o)) => {
                for (k, v) in i {
                    let omitted_meta = matches!(path.as_slice(), [Step::Key("metadata")])
                        && omitted_empty_metadata(k, v);
                    if v.is_null() || omitted_meta {
                        continue;
                    }
                    path.push(Step::Key(k));
                    match o.get(k) {
                        None => out.push(written(path)),
                        Some(ov) => walk(v, ov, path, out),
                    }
                    path.pop();
                }
            }
            (Value::Array(i), Value::Array(o)) => {
                for (n, (iv, ov)) in i.iter().zip(o.iter()).enumerate() {
                    path.push(Step::Index(n));
                    walk(iv, ov, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    walk(input, output, &mut Vec::new(), out);
}

/// Go's `omitempty` on ObjectMeta's maps and lists: an empty `labels`, `annotations`,
/// `finalizers`, `ownerReferences` or `managedFields` is left out, not written as `{}`/`[]`.
fn omit_empty_metadata(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        // Looked for first: a metadata with nothing to leave out (most) is not rebuilt.
        && meta.iter().any(|(key, value)| omitted_empty_metadata(key, value))
    {
        meta.retain(|key, value| !omitted_empty_metadata(key, value));
    }
}

/// Whether `omit_empty_metadata` leaves the ObjectMeta field `key` out: a known field, empty,
/// so its absence from the decoded object is no unknown field.
pub(crate) fn omitted_empty_metadata(key: &str, value: &Value) -> bool {
    matches!(
        key,
        "labels" | "annotations" | "finalizers" | "ownerReferences" | "managedFields"
    ) && match value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

/// Every served resource.
pub static RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        short_names: &["ns"],
        namespaced: false,
        storage: "namespaces",
        view: View::Plain,
        field_labels: FieldLabels::Namespace,
        table: TableKind::Namespace,
        has_status: true,
        returns_deleted: true,
        categories: &[],
        normalize: roundtrip::<core::Namespace>,
        protobuf: protobuf::to_json::<pb::core::v1::Namespace, core::Namespace>,
        strategy: &strategy::namespace::Namespace,
        schema: schema::schema_of::<core::Namespace>,
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        short_names: &["no"],
        namespaced: false,
        storage: "nodes",
        view: View::Plain,
        field_labels: FieldLabels::Node,
        table: TableKind::Node,
        has_status: true,
        returns_deleted: false,
        categories: &[],
        normalize: roundtrip::<core::Node>,
        protobuf: protobuf::to_json::<pb::core::v1::Node, core::Node>,
        strategy: &strategy::node::Node,
        schema: schema::schema_of::<core::Node>,
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "persistentvolumes",
        singular: "persistentvolume",
        kind: "PersistentVolume",
        short_names: &["pv"],
        namespaced: false,
        storage: "persistentvolumes",
        view: View::Plain,
        field_labels: FieldLabels::MetaOnly,
        table: TableKind::Pv,
        has_status: true,
        returns_deleted: true,
        categories: &[],
        normalize: roundtrip::<core::PersistentVolume>,
        protobuf: protobuf::to_json::<pb::core::v1::PersistentVolume, core::PersistentVolume>,
        strategy: &strategy::volume::Volume,
        schema: schema::schema_of::<core::PersistentVolume>,
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "persistentvolumeclaims",
        singular: "persistentvolumeclaim",
        kind: "PersistentVolumeClaim",
        short_names: &["pvc"],
        namespaced: true,
        storage: "persistentvolumeclaims",
        view: View::Plain,
        field_labels: FieldLabels::MetaOnly,
        table: TableKind::Pvc,
        has_status: true,
        returns_deleted: true,
        categories: &[],
        normalize: roundtrip::<core::PersistentVolumeClaim>,
        protobuf: protobuf::to_json::<
            pb::core::v1::PersistentVolumeClaim,
            core::PersistentVolumeClaim,
        >,
        strategy: &strategy::claim::Claim,
        schema: schema::schema_of::<core::PersistentVolumeClaim>,
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        short_names: &["po"],
        namespaced: true,
        storage: "pods",
        view: View::Plain,
        field_labels: FieldLabels::Pod,
        table: TableKind::Pod,
        has_status: true,
        returns_deleted: true,
        categories: &["all"],
        normalize: roundtrip::<core::Pod>,
        protobuf: protobuf::to_json::<pb::core::v1::Pod, core::Pod>,
        strategy: &strategy::pod::Pod,
        schema: schema::schema_of::<core::Pod>,
    },
    ResourceDef {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        short_names: &["ev"],
        namespaced: true,
        storage: "events",
        view: View::CoreEvent,
        field_labels: FieldLabels::CoreEvent,
        table: TableKind::Event,
        has_status: false,
        returns_deleted: false,
        categories: &[],
        normalize: roundtrip::<core::Event>,
        protobuf: protobuf::to_json::<pb::core::v1::Event, core::Event>,
        strategy: &strategy::event::CORE,
        schema: schema::schema_of::<core::Event>,
    },
    ResourceDef {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        short_names: &["ev"],
        namespaced: true,
        storage: "events",
        view: View::EventsV1,
        field_labels: FieldLabels::EventsV1,
        table: TableKind::Event,
        has_status: false,
        returns_deleted: false,
        categories: &[],
        // Bodies arrive here already converted to the core/v1 form.
        normalize: roundtrip::<core::Event>,
        protobuf: protobuf::to_json::<pb::events::v1::Event, k8s_openapi::api::events::v1::Event>,
        strategy: &strategy::event::V1,
        schema: schema::schema_of::<k8s_openapi::api::events::v1::Event>,
    },
    ResourceDef {
        group: "storage.k8s.io",
        version: "v1",
        plural: "volumeattachments",
        singular: "volumeattachment",
        kind: "VolumeAttachment",
        short_names: &[],
        namespaced: false,
        storage: "volumeattachments",
        view: View::Plain,
        field_labels: FieldLabels::MetaOnly,
        table: TableKind::VolumeAttachment,
        has_status: true,
        returns_deleted: true,
        categories: &[],
        normalize: roundtrip::<storage::VolumeAttachment>,
        protobuf: protobuf::to_json::<pb::storage::v1::VolumeAttachment, storage::VolumeAttachment>,
        strategy: &strategy::attachment::Attachment,
        schema: schema::schema_of::<storage::VolumeAttachment>,
    },
    ResourceDef {
        group: "storage.k8s.io",
        version: "v1",
        plural: "storageclasses",
        singular: "storageclass",
        kind: "StorageClass",
        short_names: &["sc"],
        namespaced: false,
        storage: "storageclasses",
        view: View::Plain,
        field_labels: FieldLabels::MetaOnly,
        table: TableKind::StorageClass,
        has_status: false,
        returns_deleted: false,
        categories: &[],
        normalize: roundtrip::<storage::StorageClass>,
        protobuf: protobuf::to_json::<pb::storage::v1::StorageClass, storage::StorageClass>,
        strategy: &strategy::class::Class,
        schema: schema::schema_of::<storage::StorageClass>,
    },
    ResourceDef {
        group: "storage.k8s.io",
        version: "v1",
        plural: "csinodes",
        singular: "csinode",
        kind: "CSINode",
        short_names: &[],
        namespaced: false,
        storage: "csinodes",
        view: View::Plain,
        field_labels: FieldLabels::MetaOnly,
        table: TableKind::CsiNode,
        has_status: false,
        returns_deleted: false,
        categories: &[],
        normalize: roundtrip::<storage::CSINode>,
        protobuf: protobuf::to_json::<pb::storage::v1::CSINode, storage::CSINode>,
        strategy: &strategy::csinode::CsiNode,
        schema: schema::schema_of::<storage::CSINode>,
    },
    ResourceDef {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        short_names: &[],
        namespaced: true,
        storage: "leases",
        view: View::Plain,
        field_labels: FieldLabels::MetaOnly,
        table: TableKind::Generic,
        has_status: false,
        returns_deleted: false,
        categories: &[],
        normalize: roundtrip::<k8s_openapi::api::coordination::v1::Lease>,
        protobuf: protobuf::to_json::<
            pb::coordination::v1::Lease,
            k8s_openapi::api::coordination::v1::Lease,
        >,
        strategy: &strategy::lease::Lease,
        schema: schema::schema_of::<k8s_openapi::api::coordination::v1::Lease>,
    },
    ResourceDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        singular: "selfsubjectaccessreview",
        kind: "SelfSubjectAccessReview",
        short_names: &[],
        namespaced: false,
        storage: "selfsubjectaccessreviews",
        view: View::Plain,
        field_labels: FieldLabels::MetaOnly,
        table: TableKind::Generic,
        has_status: false,
        returns_deleted: false,
        categories: &[],
        normalize: roundtrip::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>,
        protobuf: protobuf::to_json::<
            pb::authorization::v1::SelfSubjectAccessReview,
            k8s_openapi::api::authorization::v1::SelfSubjectAccessReview,
        >,
        strategy: &strategy::review::Review,
        schema: schema::schema_of::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>,
    },
];

/// The row serving `group/version/plural`.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|d| d.group == group && d.version == version && d.plural == plural)
}

/// The row for an object's `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|d| d.api_version() == api_version && d.kind == kind)
}

/// The row that stores objects under `storage` in their stored (canonical) form.
pub fn storage_row(storage: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|d| d.storage == storage && d.view != View::EventsV1)
}

/// The served group versions: `("", "v1")`, `("events.k8s.io", "v1")`, ...
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for d in RESOURCES {
        if !out.contains(&(d.group, d.version)) {
            out.push((d.group, d.version));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_written_as_dotted_paths_with_list_indices() {
        let input = json!({"a": 1, "x": {"y": 2, "z": null, "w": 3}, "l": [{"k": 1, "extra": 2}, {"k": 2}], "gone": {"deep": 1}});
        let output = json!({"a": 1, "x": {"y": 2}, "l": [{"k": 1}, {"k": 2}]});
        let mut out = Vec::new();
        unknown_fields(&input, &output, &mut out);
        assert_eq!(out, ["gone", "l[0].extra", "x.w"]);
    }

    /// Bodies the shape check accepts and bodies it leaves to the round trip: either way the
    /// result is the round trip's.
    #[test]
    fn the_shape_check_gives_what_the_round_trip_gives() {
        let claim = |spec: Value| json!({"metadata": {"name": "c", "namespace": "n", "labels": {"a": "b"}}, "spec": spec});
        let cases: Vec<(Value, bool)> = vec![
            (
                claim(
                    json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}),
                ),
                true,
            ),
            (
                claim(
                    json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": 5}}}),
                ),
                false,
            ),
            (
                claim(json!({"accessModes": ["ReadWriteOnce"], "volumeName": null})),
                true,
            ),
            (
                claim(json!({"accessModes": ["ReadWriteOnce"], "bogus": 1})),
                false,
            ),
            (claim(json!({"accessModes": [null]})), false),
            (
                json!({"metadata": {"name": "c", "creationTimestamp": "2024-01-01T00:00:00Z", "generation": 2}}),
                true,
            ),
            (
                json!({"metadata": {"name": "c", "creationTimestamp": "2024-01-01T00:00:00.5Z"}}),
                false,
            ),
            (
                json!({"metadata": {"name": "c", "creationTimestamp": "2024-01-01T01:00:00+01:00"}}),
                false,
            ),
            (
                json!({"metadata": {"name": "c", "creationTimestamp": null, "labels": {}}}),
                true,
            ),
            (json!({"metadata": {"name": "c", "generation": 1.5}}), false),
            (
                json!({"metadata": {"name": "c", "labels": {"a": null}}}),
                false,
            ),
            (
                json!({"metadata": {"name": "c", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}, "time": "2024-01-01T00:00:00Z"}]}}),
                true,
            ),
            (json!({"status": {"phase": "Bound"}}), false),
            (
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {}}),
                true,
            ),
            (json!({"apiVersion": "v2", "metadata": {}}), false),
        ];
        for (body, accepted) in cases {
            let mut settled = body.clone();
            assert_eq!(
                Shape::of::<core::PersistentVolumeClaim>().settle(&mut settled),
                accepted,
                "{body}"
            );
            assert_eq!(
                roundtrip::<core::PersistentVolumeClaim>(body.clone()),
                typed_roundtrip::<core::PersistentVolumeClaim>(body.clone()),
                "{body}"
            );
        }
        let event = json!({"metadata": {"name": "e", "namespace": "n"}, "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "R", "message": "m", "type": "Normal", "count": 3, "source": {"component": "c"},
            "eventTime": "2024-01-01T00:00:00.123456Z"});
        let mut settled = event.clone();
        assert!(Shape::of::<core::Event>().settle(&mut settled));
        assert_eq!(settled["apiVersion"], "v1");
        assert_eq!(
            roundtrip::<core::Event>(event.clone()),
            typed_roundtrip::<core::Event>(event)
        );
        // A required field missing (the round trip fills it in).
        let mut no_object = json!({"metadata": {"name": "e"}});
        assert!(!Shape::of::<core::Event>().settle(&mut no_object));
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i",
            "ports": [{"containerPort": 80}], "resources": {"limits": {"cpu": "1"}}}], "restartPolicy": "Always"}});
        let mut settled = pod.clone();
        assert!(Shape::of::<core::Pod>().settle(&mut settled));
        assert_eq!(
            roundtrip::<core::Pod>(pod.clone()),
            typed_roundtrip::<core::Pod>(pod)
        );
    }
}
