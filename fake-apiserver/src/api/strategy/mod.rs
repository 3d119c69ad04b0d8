//! One strategy per kind, as kube-apiserver's `pkg/registry/*/strategy.go`: what a create, an
//! update and a delete of that kind must do beyond the generic steps the handlers run —
//! defaulting and preparing (`PrepareForCreate`, `SetDefaults_*`), validation on create and
//! update with the real field paths and texts (`pkg/apis/core/validation`,
//! `pkg/apis/storage/validation`), create-on-update, admission, and the kind's selectable
//! fields.
//!
//! Every row of the resource table holds its strategy (`ResourceDef::strategy`); the
//! handlers call it, they never branch on the kind. One file per kind:
//! - `claim`: PersistentVolumeClaims (and the `PersistentVolumeClaimResize` admission);
//! - `volume`: PersistentVolumes;
//! - `attachment`: VolumeAttachments;
//! - `class`: StorageClasses;
//! - `node`: Nodes (and their heartbeat Lease);
//! - `namespace`: Namespaces (DNS-label names, deletion through the namespace controller);
//! - `event`: Events, core/v1 and events.k8s.io/v1;
//! - `pod`: Pods;
//! - `lease`: Leases;
//! - `review`: SelfSubjectAccessReviews (answered, never stored);
//! - `csinode`: CSINodes, a file of its own here when that kind is served (its row in
//!   `resources` then names `&csinode::CsiNode`).
//!
//! Checks more than one kind shares (access modes, quantities, CSI driver names) live in
//! [`fields`].

pub mod attachment;
pub mod claim;
pub mod class;
pub mod csinode;
pub mod event;
pub mod fields;
pub mod lease;
pub mod namespace;
pub mod node;
pub mod pod;
pub mod review;
pub mod volume;

use serde_json::Value;

use super::pointer::Pointer;
use super::status::{ApiError, FieldError};
use super::store::State;
use super::validation;

pub use fields::{not_supported, quantity};

/// The rule ObjectMeta validation applies to `metadata.name` (`prefix`: to `generateName`).
pub type NameRule = fn(&str, bool) -> Vec<String>;

/// The verbs of a stored kind.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// What a strategy is told about the resource it serves: the row's names, not the row.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The kind (`PersistentVolumeClaim`).
    pub kind: &'a str,
    /// The API group (`""` for core).
    pub group: &'a str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

/// What differs per kind on the request path. Every method has the generic behaviour as its
/// default, so a kind states only what it changes.
pub trait Strategy: Sync + std::fmt::Debug {
    /// The verbs served (discovery lists them; others get 405).
    fn verbs(&self) -> &'static [&'static str] {
        ALL_VERBS
    }

    /// Whether objects of this kind are stored. A kind that is not (a review) answers its
    /// create with the prepared object and serves no other verb.
    fn stored(&self) -> bool {
        true
    }

    /// `PrepareForCreate`: what a client may not set on create (status reset, a first phase).
    fn prepare_for_create(&self, _obj: &mut Value) {}

    /// `SetDefaults_*`: the defaults the real server fills on create.
    fn default_fields(&self, _obj: &mut Value) {}

    /// The name rule of ObjectMeta validation: a DNS-1123 subdomain unless the kind says.
    fn name_rule(&self) -> NameRule {
        validation::subdomain_rule
    }

    /// The kind's own rules for an object, as create checks them (after ObjectMeta).
    fn validate(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    /// `Validate`: ObjectMeta, then the kind's rules; a 422 naming the kind when any fails.
    fn validate_create(&self, obj: &Value, scope: Scope<'_>) -> Result<(), ApiError> {
        let mut errs = validation::object_meta(obj, scope.namespaced, self.name_rule());
        errs.extend(self.validate(obj));
        invalid_if_any(scope, meta_name(obj), &errs)
    }

    /// The kind's own rules for an update (after the ObjectMeta update checks);
    /// `status_only` for writes to `/status`.
    fn validate_update_rules(
        &self,
        _new: &Value,
        _old: &Value,
        _status_only: bool,
    ) -> Vec<FieldError> {
        Vec::new()
    }

    /// `ValidateUpdate`: `errs` (what the handler found already), the ObjectMeta update
    /// checks, the kind's update rules and ObjectMeta; a 422 naming the kind when any fails.
    fn validate_update(
        &self,
        new: &Value,
        old: &Value,
        status_only: bool,
        scope: Scope<'_>,
        mut errs: Vec<FieldError>,
    ) -> Result<(), ApiError> {
        errs.extend(validation::object_meta_update(new, old));
        errs.extend(self.validate_update_rules(new, old, status_only));
        errs.extend(validation::no_new_finalizers(new, old));
        errs.extend(validation::object_meta(
            new,
            scope.namespaced,
            self.name_rule(),
        ));
        invalid_if_any(scope, meta_name(new), &errs)
    }

    /// `AllowCreateOnUpdate`: whether a PUT to a name that does not exist creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }

    /// Mutating admission on create (the protection finalizers).
    fn admit_create(&self, _obj: &mut Value) {}

    /// Validating admission on update, with the cluster's state to consult.
    fn admit_update(
        &self,
        _state: &State,
        _new: &Value,
        _old: &Value,
        _status_only: bool,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// What the cluster does right after an object of this kind is stored (a Node's kubelet
    /// creates its Lease).
    fn after_create(&self, _state: &mut State, _stored: &Value, _now: &jiff::Timestamp) {}

    /// What a fixture of this kind gets when seeded as given (no admission, no status reset).
    fn seed_defaults(&self, _obj: &mut Value) {}

    /// Whether seeding an object that already exists keeps the existing one (namespaces the
    /// cluster starts with) rather than failing.
    fn seed_keeps_existing(&self) -> bool {
        false
    }

    /// Whether `name` may be deleted at all.
    fn validate_delete(&self, _name: &str) -> Result<(), ApiError> {
        Ok(())
    }

    /// Whether a DELETE only marks the object and leaves its removal to the kind's
    /// controller (namespaces).
    fn deleted_by_controller(&self) -> bool {
        false
    }

    /// What a DELETE changes on the object it marks for its controller, besides
    /// `deletionTimestamp` (a namespace turns Terminating).
    fn mark_for_deletion(&self, _obj: &mut Value) {}

    /// The value of a field selector label on a stored object (`GetAttrs`).
    fn field_value(&self, obj: &Value, label: &str) -> String {
        generic_field_value(obj, label)
    }

    /// The 410 text of a watch from a compacted revision (the watch cache's wording).
    fn watch_too_old(&self, requested: u64, oldest: u64) -> String {
        format!("too old resource version: {requested} ({oldest})")
    }
}

/// `metadata.name`, or `""`.
pub(crate) fn meta_name(obj: &Value) -> &str {
    obj.ptr("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A 422 Invalid for `scope` when `errs` is not empty.
pub(crate) fn invalid_if_any(
    scope: Scope<'_>,
    name: &str,
    errs: &[FieldError],
) -> Result<(), ApiError> {
    if errs.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(scope.kind, scope.group, name, errs))
}

/// The value of a field selector label on any object: metadata, booleans as `true`/`false`,
/// strings as they are.
pub fn generic_field_value(obj: &Value, label: &str) -> String {
    match label {
        "metadata.name" => meta_name(obj).to_string(),
        "metadata.namespace" => obj
            .ptr("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        "spec.unschedulable" | "spec.hostNetwork" => {
            let ptr = format!("/{}", label.replace('.', "/"));
            obj.ptr(&ptr)
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string()
        }
        other => {
            let ptr = format!("/{}", other.replace('.', "/"));
            obj.ptr(&ptr)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        }
    }
}

/// Sets `obj[path...]` to `value`, creating the objects on the way.
pub(crate) fn set_path(obj: &mut Value, path: &[&str], value: Value) {
    let mut cur = obj;
    for (i, key) in path.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        if i + 1 == path.len() {
            map.insert((*key).to_string(), value);
            return;
        }
        cur = map
            .entry((*key).to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

/// Sets a string at `path` when it is missing or empty.
pub(crate) fn default_str(obj: &mut Value, path: &[&str], value: &str) {
    let mut cur = &*obj;
    let mut present = true;
    for key in path {
        match cur.get(*key) {
            Some(v) => cur = v,
            None => {
                present = false;
                break;
            }
        }
    }
    if !present || cur.as_str().is_none_or(str::is_empty) {
        set_path(obj, path, Value::String(value.to_string()));
    }
}

/// Replaces `status` with `status`.
pub(crate) fn reset_status(obj: &mut Value, status: Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("status".into(), status);
    }
}
