//! Namespaces (`pkg/registry/core/namespace`): DNS-label names, the `kubernetes` finalizer and
//! the name label set on create, no collection delete, the three namespaces that may not be
//! deleted, and deletion through the namespace controller (Terminating first).

use serde_json::{Value, json};

use super::{NameRule, Strategy};
use crate::api::pointer::Pointer;
use crate::api::status::ApiError;
use crate::api::validation;

/// The Namespace strategy.
#[derive(Debug)]
pub struct Namespace;

impl Strategy for Namespace {
    fn verbs(&self) -> &'static [&'static str] {
        &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ]
    }

    fn name_rule(&self) -> NameRule {
        |name, prefix| {
            if prefix {
                validation::dns1123_label(&format!("{name}a"))
            } else {
                validation::dns1123_label(name)
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        super::reset_status(obj, json!({"phase": "Active"}));
        if obj.ptr("/spec/finalizers").is_none() {
            super::set_path(obj, &["spec", "finalizers"], json!(["kubernetes"]));
        }
        // The real server labels every namespace with its name.
        let name = super::meta_name(obj).to_string();
        if !name.is_empty() {
            super::set_path(
                obj,
                &["metadata", "labels", "kubernetes.io/metadata.name"],
                json!(name),
            );
        }
    }

    fn seed_defaults(&self, obj: &mut Value) {
        let name = super::meta_name(obj).to_string();
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.entry("kubernetes.io/metadata.name")
                    .or_insert(json!(name));
            }
        }
        if obj.get("status").is_none()
            && let Some(map) = obj.as_object_mut()
        {
            map.insert("status".into(), json!({"phase": "Active"}));
        }
        if obj.ptr("/spec/finalizers").is_none()
            && let Some(map) = obj.as_object_mut()
        {
            map.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
        }
    }

    fn seed_keeps_existing(&self) -> bool {
        true
    }

    fn validate_delete(&self, name: &str) -> Result<(), ApiError> {
        if matches!(name, "default" | "kube-system" | "kube-public") {
            return Err(ApiError::status(
                403,
                "Forbidden",
                format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
                Some(json!({"name": name, "kind": "namespaces"})),
            ));
        }
        Ok(())
    }

    /// The namespace controller deletes what the namespace holds, then the namespace.
    fn deleted_by_controller(&self) -> bool {
        true
    }

    /// The namespace turns Terminating: new content is refused.
    fn mark_for_deletion(&self, obj: &mut Value) {
        super::reset_status(obj, json!({"phase": "Terminating"}));
    }
}
