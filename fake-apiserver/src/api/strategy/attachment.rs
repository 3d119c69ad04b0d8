//! VolumeAttachments (`pkg/registry/storage/volumeattachment/strategy.go`): no status on
//! create, `ValidateVolumeAttachment(V1)`, an immutable spec.

use serde_json::Value;

use super::Strategy;
use super::fields::*;
use crate::api::pointer::Pointer;
use crate::api::status::FieldError;
use crate::api::validation;

/// The VolumeAttachment strategy.
#[derive(Debug)]
pub struct Attachment;

impl Strategy for Attachment {
    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            map.remove("status");
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
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
        // `ValidateVolumeAttachmentUpdate` starts with the create rules of the new object.
        let mut errs = self.validate(new);
        let new_spec = new.get("spec").cloned().unwrap_or(Value::Null);
        if new_spec != old.get("spec").cloned().unwrap_or(Value::Null) {
            errs.push(FieldError::invalid_json(
                "spec",
                &new_spec,
                "field is immutable",
            ));
        }
        errs
    }
}
