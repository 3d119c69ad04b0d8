//! StorageClasses (`pkg/registry/storage/storageclass/strategy.go`): reclaim policy and
//! binding mode defaulted, `ValidateStorageClass(Update)`.

use serde_json::Value;

use super::Strategy;
use super::fields::*;
use crate::api::status::FieldError;
use crate::api::validation;

/// The StorageClass strategy.
#[derive(Debug)]
pub struct Class;

impl Strategy for Class {
    fn default_fields(&self, obj: &mut Value) {
        let Some(map) = obj.as_object_mut() else {
            return;
        };
        map.entry("reclaimPolicy")
            .or_insert_with(|| "Delete".into());
        map.entry("volumeBindingMode")
            .or_insert_with(|| "Immediate".into());
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
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
            Some(mode) if !["Immediate", "WaitForFirstConsumer"].contains(&mode) => {
                errs.push(not_supported(
                    "volumeBindingMode",
                    mode,
                    &["Immediate", "WaitForFirstConsumer"],
                ))
            }
            Some(_) => {}
        }
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
        let mut errs = self.validate(new);
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
        errs
    }
}
