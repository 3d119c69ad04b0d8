//! Pods (`pkg/registry/core/pod/strategy.go`): status reset to Pending, the spec defaults,
//! the container and restart policy rules of `ValidatePodCreate`, which `ValidatePodUpdate`
//! runs again on the new pod.

use serde_json::{Value, json};

use super::Strategy;
use super::fields::*;
use crate::api::status::FieldError;
use crate::api::validation;

/// The Pod strategy.
#[derive(Debug)]
pub struct Pod;

impl Strategy for Pod {
    fn prepare_for_create(&self, obj: &mut Value) {
        super::reset_status(obj, json!({"phase": "Pending", "qosClass": "BestEffort"}));
    }

    fn default_fields(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        spec.entry("restartPolicy")
            .or_insert_with(|| "Always".into());
        spec.entry("dnsPolicy")
            .or_insert_with(|| "ClusterFirst".into());
        spec.entry("schedulerName")
            .or_insert_with(|| "default-scheduler".into());
        spec.entry("terminationGracePeriodSeconds")
            .or_insert_with(|| 30.into());
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
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
        errs
    }

    /// `ValidatePodUpdate` validates the new pod's spec as create does (a `/status` write
    /// keeps the old spec, so it has nothing to add).
    fn validate_update_rules(
        &self,
        new: &Value,
        _old: &Value,
        status_only: bool,
    ) -> Vec<FieldError> {
        if status_only {
            return Vec::new();
        }
        self.validate(new)
    }
}
