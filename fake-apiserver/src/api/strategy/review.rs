//! SelfSubjectAccessReviews (`pkg/registry/authorization/selfsubjectaccessreview`): create
//! only, never stored, and always allowed (the fake authorizes everything, as a cluster-admin
//! would be), so `kubectl auth can-i` answers `yes`.

use serde_json::{Value, json};

use super::{Scope, Strategy};
use crate::api::pointer::Pointer;
use crate::api::status::{ApiError, FieldError};

/// The SelfSubjectAccessReview strategy.
#[derive(Debug)]
pub struct Review;

impl Strategy for Review {
    fn verbs(&self) -> &'static [&'static str] {
        &["create"]
    }

    fn stored(&self) -> bool {
        false
    }

    /// `ValidateSelfSubjectAccessReview`: one of the two attribute sets (no ObjectMeta rules:
    /// a review has no name).
    fn validate_create(&self, obj: &Value, scope: Scope<'_>) -> Result<(), ApiError> {
        if obj.ptr("/spec/resourceAttributes").is_none()
            && obj.ptr("/spec/nonResourceAttributes").is_none()
        {
            return Err(ApiError::invalid(
                scope.kind,
                scope.group,
                "",
                &[FieldError::invalid_json(
                    "spec.resourceAttributes",
                    &Value::Null,
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )],
            ));
        }
        Ok(())
    }

    /// The answer: allowed.
    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(map) = obj.as_object_mut() {
            map.insert(
                "status".into(),
                json!({"allowed": true, "reason": "the fake API server allows every request"}),
            );
            map.entry("metadata").or_insert_with(|| json!({}));
        }
    }
}
