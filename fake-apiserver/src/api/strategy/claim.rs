//! PersistentVolumeClaims (`pkg/registry/core/persistentvolumeclaim/strategy.go`): status
//! reset to Pending, `volumeMode` defaulted, the create and update rules of
//! `ValidatePersistentVolumeClaim(Update)`, the protection finalizer, and the
//! `PersistentVolumeClaimResize` admission plugin.

use serde_json::{Value, json};

use super::Strategy;
use super::fields::*;
use crate::api::controllers::PVC_PROTECTION;
use crate::api::pointer::Pointer;
use crate::api::status::ApiError;
use crate::api::status::FieldError;
use crate::api::store::State;

/// The PersistentVolumeClaim strategy.
#[derive(Debug)]
pub struct Claim;

impl Strategy for Claim {
    fn prepare_for_create(&self, obj: &mut Value) {
        super::reset_status(obj, json!({"phase": "Pending"}));
        if obj.get("spec").is_some() {
            super::default_str(obj, &["spec", "volumeMode"], "Filesystem");
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        access_modes(&mut errs, obj, "at least 1 access mode is required");
        class_name(&mut errs, obj);
        match obj.ptr("/spec/resources/requests/storage") {
            None => errs.push(FieldError::required("spec.resources[storage]", "")),
            Some(q) => positive_quantity(&mut errs, "spec.resources[storage]", q),
        }
        volume_mode(&mut errs, obj);
        errs
    }

    fn validate_update_rules(
        &self,
        new: &Value,
        old: &Value,
        status_only: bool,
    ) -> Vec<FieldError> {
        if status_only {
            return Vec::new();
        }
        // `ValidatePersistentVolumeClaimUpdate` starts with the create rules of the new claim.
        let mut errs = self.validate(new);
        claim_update(new, old, &mut errs);
        errs
    }

    fn admit_create(&self, obj: &mut Value) {
        crate::api::controllers::add_finalizer(obj, PVC_PROTECTION);
    }

    /// The `PersistentVolumeClaimResize` admission plugin: a claim may grow only when bound
    /// and its StorageClass allows expansion.
    fn admit_update(
        &self,
        state: &State,
        new: &Value,
        old: &Value,
        status_only: bool,
    ) -> Result<(), ApiError> {
        if status_only || !claim_grows(new, old) {
            return Ok(());
        }
        let name = super::meta_name(old);
        let forbidden = |why: &str| {
            ApiError::status(
                403,
                "Forbidden",
                format!("persistentvolumeclaims \"{name}\" is forbidden: {why}"),
                Some(json!({"name": name, "kind": "persistentvolumeclaims"})),
            )
        };
        if old.ptr("/status/phase").and_then(Value::as_str) != Some("Bound") {
            return Err(forbidden(
                "Only bound persistent volume claims can be expanded",
            ));
        }
        let class = match old.ptr("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        {
            Some(Value::String(c)) => c.clone(),
            _ => old
                .ptr("/spec/storageClassName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        };
        let allowed = !class.is_empty()
            && state
                .get(&("storageclasses", String::new(), class))
                .and_then(|sc| sc.get("allowVolumeExpansion"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
        if !allowed {
            return Err(forbidden(
                "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize",
            ));
        }
        Ok(())
    }
}

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
fn claim_grows(new: &Value, old: &Value) -> bool {
    let size = |o: &Value| {
        s(o, "/spec/resources/requests/storage")
            .and_then(quantity)
            .unwrap_or(0.0)
    };
    size(new) > size(old)
}
