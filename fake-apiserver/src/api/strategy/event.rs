//! Events (`pkg/registry/core/event/strategy.go`), one store seen through two groups: the
//! rules of `ValidateEventCreate`/`ValidateEventUpdate` for the group a write came through
//! (in `events`), create on update (`AllowCreateOnUpdate`), the event field labels, and no
//! watch cache (a compacted watch gets etcd's wording).

use serde_json::Value;

use super::{Scope, Strategy};
use crate::api::events::{self, EventApi};
use crate::api::status::{ApiError, FieldError};
use crate::api::validation;

/// The Event strategy of one API group.
#[derive(Debug)]
pub struct Event {
    api: EventApi,
}

/// Events written through core/v1 (the legacy rules only).
pub static CORE: Event = Event {
    api: EventApi::Core,
};

/// Events written through events.k8s.io/v1 (the stricter rules).
pub static V1: Event = Event { api: EventApi::V1 };

impl Strategy for Event {
    fn name_rule(&self) -> super::NameRule {
        validation::path_segment_rule
    }

    /// The event rules first; ObjectMeta (any path-segment name) only when they pass. The
    /// Status names the kind `Event` without a group, whichever group was written to.
    fn validate_create(&self, obj: &Value, _scope: Scope<'_>) -> Result<(), ApiError> {
        let scope = Scope {
            kind: "Event",
            group: "",
            namespaced: true,
        };
        // The name is read for an error only.
        let name = |errs: &[FieldError]| {
            if errs.is_empty() {
                ""
            } else {
                super::meta_name(obj)
            }
        };
        let errs = events::validate_create(obj, self.api);
        super::invalid_if_any(scope, name(&errs), &errs)?;
        let errs = validation::object_meta(obj, true, self.name_rule());
        super::invalid_if_any(scope, name(&errs), &errs)
    }

    fn validate_update(
        &self,
        new: &Value,
        old: &Value,
        _status_only: bool,
        _scope: Scope<'_>,
        mut errs: Vec<FieldError>,
    ) -> Result<(), ApiError> {
        let scope = Scope {
            kind: "Event",
            group: "",
            namespaced: true,
        };
        errs.extend(events::validate_update(new, old, self.api));
        super::invalid_if_any(scope, super::meta_name(new), &errs)
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    fn field_value(&self, obj: &Value, label: &str) -> String {
        events::field_value(obj, label)
    }

    fn watch_too_old(&self, _requested: u64, _oldest: u64) -> String {
        "The resourceVersion for the provided watch is too old.".to_string()
    }
}
