//! Nodes (`pkg/registry/core/node/strategy.go`): the taint rules of `ValidateNode(Update)`,
//! and the heartbeat Lease the node's kubelet creates.

use serde_json::Value;

use super::Strategy;
use super::fields::*;
use crate::api::status::FieldError;
use crate::api::store::State;
use crate::api::validation;

/// The Node strategy.
#[derive(Debug)]
pub struct Node;

impl Strategy for Node {
    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
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
                "" => errs.push(FieldError::required(format!("spec.taints[{i}].effect"), "")),
                "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
                other => errs.push(not_supported(
                    format!("spec.taints[{i}].effect"),
                    other,
                    &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                )),
            }
        }
        errs
    }

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

    fn after_create(&self, state: &mut State, stored: &Value, now: &jiff::Timestamp) {
        crate::api::controllers::node_lease(state, stored, now);
    }
}
