//! The per-kind spec rules of the real registry strategies (`pkg/apis/core/validation`,
//! `pkg/apis/storage/validation`), with their field paths and message texts: what a create or
//! an update of a PVC, PV, VolumeAttachment, StorageClass, Node or Pod must satisfy, plus the
//! admission step that guards PVC expansion (`PersistentVolumeClaimResize`).
//!
//! Every row of the resource table names its [`Kind`]; the verbs ask it, not the plural.

use super::pointer::Pointer;
use serde_json::Value;

use super::status::FieldError;
use super::validation;

/// Which strategy a resource row follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No spec rules beyond ObjectMeta (leases).
    Plain,
    /// Namespaces: DNS-label names, finalized by the namespace controller, never collected.
    Namespace,
    /// Events (their own rules, in `events`).
    Event,
    /// PersistentVolumeClaims.
    Claim,
    /// PersistentVolumes.
    Volume,
    /// VolumeAttachments.
    Attachment,
    /// StorageClasses.
    Class,
    /// Nodes.
    Node,
    /// Pods.
    Pod,
    /// SelfSubjectAccessReviews: create-only, never stored, always allowed.
    Review,
}

/// `field.NotSupported(path, value, supported)`.
pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> FieldError {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    FieldError {
        reason: "FieldValueNotSupported",
        field: field.into(),
        message: format!(
            "Unsupported value: {value:?}: supported values: {}",
            list.join(", ")
        ),
    }
}

fn s<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.ptr(pointer).and_then(Value::as_str)
}

fn arr<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.ptr(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A Kubernetes quantity as a number (bytes for storage), or `None` when it does not parse.
///
/// ```
/// use fake_apiserver::api::strategy::quantity;
/// assert_eq!(quantity("1Gi"), Some(1073741824.0));
/// assert_eq!(quantity("-1Gi"), Some(-1073741824.0));
/// assert_eq!(quantity("500m"), Some(0.5));
/// assert_eq!(quantity("1.5e3"), Some(1500.0));
/// assert_eq!(quantity("Gi"), None);
/// ```
pub fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() || number == "+" || number == "-" {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse().ok()?),
        _ => return None,
    };
    Some(value * factor)
}

fn positive_quantity(errs: &mut Vec<FieldError>, field: &str, value: &Value) {
    let text = value.as_str().unwrap_or("");
    match quantity(text) {
        Some(q) if q > 0.0 => {}
        Some(_) => errs.push(FieldError::invalid(field, text, "must be greater than zero")),
        None => errs.push(FieldError::invalid(
            field,
            text,
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        )),
    }
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];

fn access_modes(errs: &mut Vec<FieldError>, obj: &Value, required: &str) {
    let modes = arr(obj, "/spec/accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required("spec.accessModes", required));
    }
    let mut once_pod = false;
    for mode in modes {
        let mode = mode.as_str().unwrap_or("");
        once_pod |= mode == "ReadWriteOncePod";
        if !ACCESS_MODES.contains(&mode) {
            errs.push(not_supported("spec.accessModes", mode, ACCESS_MODES));
        }
    }
    if once_pod && modes.len() > 1 {
        errs.push(FieldError::forbidden(
            "spec.accessModes",
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn volume_mode(errs: &mut Vec<FieldError>, obj: &Value) {
    if let Some(mode) = s(obj, "/spec/volumeMode")
        && !VOLUME_MODES.contains(&mode)
    {
        errs.push(not_supported("spec.volumeMode", mode, VOLUME_MODES));
    }
}

fn class_name(errs: &mut Vec<FieldError>, obj: &Value) {
    if let Some(class) = s(obj, "/spec/storageClassName").filter(|c| !c.is_empty()) {
        for m in validation::dns1123_subdomain(class) {
            errs.push(FieldError::invalid("spec.storageClassName", class, &m));
        }
    }
}

/// `ValidateCSIDriverName`.
fn csi_driver_name(errs: &mut Vec<FieldError>, field: &str, name: &str) {
    if name.is_empty() {
        errs.push(FieldError::required(field, ""));
    }
    if name.len() > 63 {
        errs.push(FieldError {
            reason: "FieldValueTooLong",
            field: field.into(),
            message: "Too long: may not be more than 63 bytes".into(),
        });
    }
    for m in validation::dns1123_subdomain(&name.to_lowercase()) {
        errs.push(FieldError::invalid(field, name, &m));
    }
}

impl Kind {
    /// The strategy's Validate on create (after ObjectMeta).
    pub fn validate(self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        match self {
            Kind::Plain | Kind::Namespace | Kind::Event | Kind::Review => {}
            Kind::Claim => {
                access_modes(&mut errs, obj, "at least 1 access mode is required");
                class_name(&mut errs, obj);
                match obj.ptr("/spec/resources/requests/storage") {
                    None => errs.push(FieldError::required("spec.resources[storage]", "")),
                    Some(q) => positive_quantity(&mut errs, "spec.resources[storage]", q),
                }
                volume_mode(&mut errs, obj);
            }
            Kind::Volume => self.validate_volume(obj, &mut errs),
            Kind::Attachment => {
                let attacher = s(obj, "/spec/attacher").unwrap_or("");
                if attacher.is_empty() {
                    errs.push(FieldError::required("spec.attacher", ""));
                }
                let pv = obj.ptr("/spec/source/persistentVolumeName");
                let inline = obj.ptr("/spec/source/inlineVolumeSpec");
                match (pv, inline) {
                    (None, None) => errs.push(FieldError::required(
                        "spec.source",
                        "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
                    )),
                    (Some(_), Some(_)) => errs.push(FieldError::forbidden(
                        "spec.source",
                        "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
                    )),
                    (Some(name), None) if name.as_str().is_none_or(str::is_empty) => {
                        errs.push(FieldError::required(
                            "spec.source.persistentVolumeName",
                            "must specify non empty persistentVolumeName",
                        ))
                    }
                    _ => {}
                }
                let node = s(obj, "/spec/nodeName").unwrap_or("");
                for m in validation::dns1123_subdomain(node) {
                    errs.push(FieldError::invalid("spec.nodeName", node, &m));
                }
                // ValidateVolumeAttachmentV1.
                csi_driver_name(&mut errs, "spec.attacher", attacher);
                if let Some(name) = pv.and_then(Value::as_str).filter(|n| !n.is_empty()) {
                    for m in validation::dns1123_subdomain(name) {
                        errs.push(FieldError::invalid(
                            "spec.source.persistentVolumeName",
                            name,
                            &m,
                        ));
                    }
                }
            }
            Kind::Class => {
                let provisioner = s(obj, "/provisioner").unwrap_or("");
                if provisioner.is_empty() {
                    errs.push(FieldError::required("provisioner", ""));
                } else {
                    let lower = provisioner.to_lowercase();
                    for m in validation::qualified_name(&lower) {
                        errs.push(FieldError::invalid("provisioner", &lower, &m));
                    }
                }
                if let Some(policy) = s(obj, "/reclaimPolicy").filter(|p| !p.is_empty())
                    && !["Delete", "Retain"].contains(&policy)
                {
                    errs.push(not_supported(
                        "reclaimPolicy",
                        policy,
                        &["Delete", "Retain"],
                    ));
                }
                match s(obj, "/volumeBindingMode") {
                    None => errs.push(FieldError::required("volumeBindingMode", "")),
                    Some(mode) if !["Immediate", "WaitForFirstConsumer"].contains(&mode) => errs
                        .push(not_supported(
                            "volumeBindingMode",
                            mode,
                            &["Immediate", "WaitForFirstConsumer"],
                        )),
                    Some(_) => {}
                }
            }
            Kind::Node => {
                for (i, taint) in arr(obj, "/spec/taints").iter().enumerate() {
                    let key = s(taint, "/key").unwrap_or("");
                    for m in validation::qualified_name(key) {
                        errs.push(FieldError::invalid(
                            format!("spec.taints[{i}].key"),
                            key,
                            &m,
                        ));
                    }
                    match s(taint, "/effect").unwrap_or("") {
                        "" => {
                            errs.push(FieldError::required(format!("spec.taints[{i}].effect"), ""))
                        }
                        "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
                        other => errs.push(not_supported(
                            format!("spec.taints[{i}].effect"),
                            other,
                            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                        )),
                    }
                }
            }
            Kind::Pod => {
                let containers = arr(obj, "/spec/containers");
                if containers.is_empty() {
                    errs.push(FieldError::required("spec.containers", ""));
                }
                for (i, c) in containers.iter().enumerate() {
                    let name = s(c, "/name").unwrap_or("");
                    if name.is_empty() {
                        errs.push(FieldError::required(
                            format!("spec.containers[{i}].name"),
                            "",
                        ));
                    } else {
                        for m in validation::dns1123_label(name) {
                            errs.push(FieldError::invalid(
                                format!("spec.containers[{i}].name"),
                                name,
                                &m,
                            ));
                        }
                    }
                    if s(c, "/image").is_none_or(str::is_empty) {
                        errs.push(FieldError::required(
                            format!("spec.containers[{i}].image"),
                            "",
                        ));
                    }
                }
                if let Some(policy) = s(obj, "/spec/restartPolicy")
                    && !["Always", "OnFailure", "Never"].contains(&policy)
                {
                    errs.push(not_supported(
                        "spec.restartPolicy",
                        policy,
                        &["Always", "OnFailure", "Never"],
                    ));
                }
            }
        }
        errs
    }

    fn validate_volume(self, obj: &Value, errs: &mut Vec<FieldError>) {
        access_modes(errs, obj, "must specify at least 1 access mode");
        let capacity = obj.ptr("/spec/capacity").and_then(Value::as_object);
        let empty = capacity.is_none_or(|c| c.is_empty());
        if empty {
            errs.push(FieldError::required("spec.capacity", ""));
        }
        if capacity.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
            let shown = match capacity {
                Some(c) if !c.is_empty() => {
                    let keys: Vec<String> = c.keys().map(|k| format!("{k:?}")).collect();
                    format!("core.ResourceList{{{}}}", keys.join(", "))
                }
                _ => "core.ResourceList(nil)".to_string(),
            };
            errs.push(FieldError {
                reason: "FieldValueNotSupported",
                field: "spec.capacity".into(),
                message: format!("Unsupported value: {shown}: supported values: \"storage\""),
            });
        }
        if let Some(c) = capacity {
            for (key, q) in c {
                positive_quantity(errs, &format!("spec.capacity[{key}]"), q);
            }
        }
        if let Some(policy) = s(obj, "/spec/persistentVolumeReclaimPolicy")
            && !["Delete", "Recycle", "Retain"].contains(&policy)
        {
            errs.push(not_supported(
                "spec.persistentVolumeReclaimPolicy",
                policy,
                &["Delete", "Recycle", "Retain"],
            ));
        }
        class_name(errs, obj);
        volume_mode(errs, obj);
        let sources: Vec<&String> = obj
            .get("spec")
            .and_then(Value::as_object)
            .map(|spec| {
                spec.keys()
                    .filter(|k| VOLUME_SOURCES.contains(&k.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        match sources.as_slice() {
            [] => errs.push(FieldError::required("spec", "must specify a volume type")),
            [_] => {}
            [_, rest @ ..] => {
                for extra in rest {
                    errs.push(FieldError::forbidden(
                        format!("spec.{extra}"),
                        "may not specify more than 1 volume type",
                    ));
                }
            }
        }
        if obj.ptr("/spec/csi").is_some() {
            csi_driver_name(
                errs,
                "spec.csi.driver",
                s(obj, "/spec/csi/driver").unwrap_or(""),
            );
            if s(obj, "/spec/csi/volumeHandle").is_none_or(str::is_empty) {
                errs.push(FieldError::required("spec.csi.volumeHandle", ""));
            }
        }
    }

    /// The strategy's ValidateUpdate (after ObjectMeta); `status_only` for `/status` writes.
    pub fn validate_update(self, new: &Value, old: &Value, status_only: bool) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if status_only {
            return errs;
        }
        match self {
            Kind::Claim => claim_update(new, old, &mut errs),
            Kind::Volume => {
                errs.extend(self.validate(new));
                let source = |o: &Value| -> Value {
                    let mut m = serde_json::Map::new();
                    if let Some(spec) = o.get("spec").and_then(Value::as_object) {
                        for (k, v) in spec {
                            if VOLUME_SOURCES.contains(&k.as_str()) {
                                m.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    Value::Object(m)
                };
                if source(new) != source(old) {
                    errs.push(FieldError::forbidden(
                        "spec.persistentvolumesource",
                        "spec.persistentvolumesource is immutable after creation",
                    ));
                }
                if new.ptr("/spec/volumeMode") != old.ptr("/spec/volumeMode") {
                    errs.push(FieldError::invalid_json(
                        "spec.volumeMode",
                        new.ptr("/spec/volumeMode").unwrap_or(&Value::Null),
                        "field is immutable",
                    ));
                }
            }
            Kind::Attachment => {
                let new_spec = new.get("spec").cloned().unwrap_or(Value::Null);
                if new_spec != old.get("spec").cloned().unwrap_or(Value::Null) {
                    errs.push(FieldError::invalid_json(
                        "spec",
                        &new_spec,
                        "field is immutable",
                    ));
                }
            }
            Kind::Class => {
                errs.extend(self.validate(new));
                if new.get("parameters") != old.get("parameters") {
                    errs.push(FieldError::forbidden(
                        "parameters",
                        "updates to parameters are forbidden.",
                    ));
                }
                if new.get("provisioner") != old.get("provisioner") {
                    errs.push(FieldError::forbidden(
                        "provisioner",
                        "updates to provisioner are forbidden.",
                    ));
                }
                if new.get("reclaimPolicy") != old.get("reclaimPolicy") {
                    errs.push(FieldError::forbidden(
                        "reclaimPolicy",
                        "updates to reclaimPolicy are forbidden.",
                    ));
                }
                if new.get("volumeBindingMode") != old.get("volumeBindingMode") {
                    errs.push(FieldError::invalid_json(
                        "volumeBindingMode",
                        new.get("volumeBindingMode").unwrap_or(&Value::Null),
                        "field is immutable",
                    ));
                }
            }
            Kind::Node => errs.extend(self.validate(new)),
            Kind::Pod | Kind::Plain | Kind::Namespace | Kind::Event | Kind::Review => {}
        }
        errs
    }

    /// Events: one store seen through two groups, their own validation, create on update
    /// (`AllowCreateOnUpdate`), no watch cache.
    pub fn is_event(self) -> bool {
        self == Kind::Event
    }

    /// Namespaces.
    pub fn is_namespace(self) -> bool {
        self == Kind::Namespace
    }

    /// The name rule of ObjectMeta validation: DNS-1123 label for namespaces, subdomain
    /// otherwise.
    pub fn name_rule(self) -> fn(&str, bool) -> Vec<String> {
        if self == Kind::Namespace {
            |name, prefix| {
                if prefix {
                    validation::dns1123_label(&format!("{name}a"))
                } else {
                    validation::dns1123_label(name)
                }
            }
        } else {
            validation::subdomain_rule
        }
    }

    /// The 410 text of a watch from a compacted revision: events skip the watch cache and
    /// get etcd's wording, other kinds the cache's.
    pub fn too_old(self, requested: u64, oldest: u64) -> String {
        if self == Kind::Event {
            "The resourceVersion for the provided watch is too old.".to_string()
        } else {
            format!("too old resource version: {requested} ({oldest})")
        }
    }

    /// Defaults the real server applies on create (SetDefaults_*).
    pub fn default_fields(self, obj: &mut Value) {
        let Some(map) = obj.as_object_mut() else {
            return;
        };
        match self {
            Kind::Class => {
                map.entry("reclaimPolicy")
                    .or_insert_with(|| "Delete".into());
                map.entry("volumeBindingMode")
                    .or_insert_with(|| "Immediate".into());
            }
            Kind::Pod => {
                if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.entry("restartPolicy")
                        .or_insert_with(|| "Always".into());
                    spec.entry("dnsPolicy")
                        .or_insert_with(|| "ClusterFirst".into());
                    spec.entry("schedulerName")
                        .or_insert_with(|| "default-scheduler".into());
                    spec.entry("terminationGracePeriodSeconds")
                        .or_insert_with(|| 30.into());
                }
            }
            _ => {}
        }
    }
}

/// Keys of `PersistentVolumeSpec` that are volume sources.
const VOLUME_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "glusterfs",
    "hostPath",
    "iscsi",
    "local",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

/// `ValidatePersistentVolumeClaimUpdate` (RecoverVolumeExpansionFailure on, as in 1.33).
fn claim_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let mut new_spec = new.get("spec").cloned().unwrap_or(Value::Null);
    let mut old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    if s(old, "/spec/volumeName").is_none_or(str::is_empty)
        && let (Some(o), Some(v)) = (old_spec.as_object_mut(), new_spec.get("volumeName"))
    {
        o.insert("volumeName".into(), v.clone());
    }
    for spec in [&mut new_spec, &mut old_spec] {
        if let Some(m) = spec.as_object_mut() {
            m.remove("volumeAttributesClassName");
        }
    }
    let bound = s(new, "/status/phase") == Some("Bound");
    if bound {
        for spec in [&mut new_spec, &mut old_spec] {
            if let Some(r) = spec
                .pointer_mut("/resources/requests")
                .and_then(Value::as_object_mut)
            {
                r.remove("storage");
            }
        }
    }
    if new_spec != old_spec {
        errs.push(FieldError::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    let size = |o: &Value, p: &str| s(o, p).and_then(quantity).unwrap_or(0.0);
    let new_size = size(new, "/spec/resources/requests/storage");
    let old_size = size(old, "/spec/resources/requests/storage");
    let status_size = size(old, "/status/capacity/storage");
    if new_size < old_size && new_size <= status_size {
        errs.push(FieldError::forbidden(
            "spec.resources.requests.storage",
            "field can not be less than status.capacity",
        ));
    }
}

/// Whether a claim update grows the storage request (the resize admission plugin's concern).
pub fn claim_grows(new: &Value, old: &Value) -> bool {
    let size = |o: &Value| {
        s(o, "/spec/resources/requests/storage")
            .and_then(quantity)
            .unwrap_or(0.0)
    };
    size(new) > size(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unsupported_values_list_what_is_supported() {
        let e = not_supported("spec.accessModes", "ReadWriteSometimes", ACCESS_MODES);
        assert_eq!(
            e.message,
            "Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\""
        );
    }

    #[test]
    fn a_volume_without_capacity_or_source_has_the_real_errors() {
        let errs = Kind::Volume.validate(&json!({"spec": {"accessModes": ["ReadWriteOnce"]}}));
        let texts: Vec<String> = errs
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        assert_eq!(
            texts,
            [
                "spec.capacity: Required value",
                "spec.capacity: Unsupported value: core.ResourceList(nil): supported values: \"storage\"",
                "spec: Required value: must specify a volume type",
            ]
        );
    }
}
