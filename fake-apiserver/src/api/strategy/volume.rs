//! PersistentVolumes (`pkg/registry/core/persistentvolume/strategy.go`): status reset to
//! Pending, `volumeMode` and reclaim policy defaulted, `ValidatePersistentVolume(Update)`, the
//! protection finalizer.

use serde_json::{Value, json};

use super::Strategy;
use super::fields::*;
use crate::api::controllers::PV_PROTECTION;
use crate::api::pointer::Pointer;
use crate::api::status::FieldError;

/// The PersistentVolume strategy.
#[derive(Debug)]
pub struct Volume;

impl Strategy for Volume {
    fn prepare_for_create(&self, obj: &mut Value) {
        super::reset_status(obj, json!({"phase": "Pending"}));
        if obj.get("spec").is_some() {
            super::default_str(obj, &["spec", "volumeMode"], "Filesystem");
            super::default_str(obj, &["spec", "persistentVolumeReclaimPolicy"], "Retain");
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        validate_volume(obj, &mut errs);
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
        errs
    }

    fn admit_create(&self, obj: &mut Value) {
        crate::api::controllers::add_finalizer(obj, PV_PROTECTION);
    }
}

fn validate_volume(obj: &Value, errs: &mut Vec<FieldError>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_without_capacity_or_source_has_the_real_errors() {
        let errs = Volume.validate(&json!({"spec": {"accessModes": ["ReadWriteOnce"]}}));
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
