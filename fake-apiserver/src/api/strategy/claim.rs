//! PersistentVolumeClaims (`pkg/registry/core/persistentvolumeclaim/strategy.go`): status
//! reset to Pending, `volumeMode` defaulted, the create and update rules of
//! `ValidatePersistentVolumeClaim(Update)`, the protection finalizer, and the
//! `PersistentVolumeClaimResize` admission plugin.

use serde_json::{Map, Value, json};

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
    let bound = s(new, "/status/phase") == Some("Bound");
    if !same_spec(new, old, bound) {
        errs.push(FieldError::forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    let size = |o: &Value, p: &str| s(o, p).and_then(quantity).unwrap_or(0.0);
    const REQUEST: &str = "/spec/resources/requests/storage";
    // The same text is the same size (the request is read only when it changed), and the
    // status only for a shrinking request.
    let (new_request, old_request) = (s(new, REQUEST), s(old, REQUEST));
    if new_request != old_request
        && let (new_size, old_size) = (size(new, REQUEST), size(old, REQUEST))
        && new_size < old_size
        && new_size <= size(old, "/status/capacity/storage")
    {
        errs.push(FieldError::forbidden(
            "spec.resources.requests.storage",
            "field can not be less than status.capacity",
        ));
    }
}

/// Whether the specs are the same as the update rules compare them ([`same_spec_copied`]),
/// without copying them when both are objects.
fn same_spec(new: &Value, old: &Value, bound: bool) -> bool {
    let (Some(n), Some(o)) = (
        new.get("spec").and_then(Value::as_object),
        old.get("spec").and_then(Value::as_object),
    ) else {
        return same_spec_copied(new, old, bound);
    };
    let take_new_volume = s(old, "/spec/volumeName").is_none_or(str::is_empty);
    let same = |key: &str| {
        let new_value = n.get(key);
        let old_value = o.get(key);
        match key {
            "volumeAttributesClassName" => true,
            "volumeName" if take_new_volume && new_value.is_some() => true,
            "resources" if bound => same_without_storage(new_value, old_value),
            _ => new_value == old_value,
        }
    };
    n.keys().all(|k| same(k)) && o.keys().filter(|k| !n.contains_key(*k)).all(|k| same(k))
}

/// Two claim `resources` alike but for `requests.storage` (a bound claim may change it).
fn same_without_storage(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a.and_then(Value::as_object), b.and_then(Value::as_object)) {
        (Some(a), Some(b)) => {
            fn requests(m: &Map<String, Value>) -> Option<&Map<String, Value>> {
                m.get("requests").and_then(Value::as_object)
            }
            let requests_alike = match (requests(a), requests(b)) {
                (Some(x), Some(y)) => {
                    let not_storage = |(k, _): &(&String, &Value)| k.as_str() != "storage";
                    x.iter()
                        .filter(not_storage)
                        .eq(y.iter().filter(not_storage))
                }
                (None, None) => a.get("requests") == b.get("requests"),
                _ => false,
            };
            let not_requests = |(k, _): &(&String, &Value)| k.as_str() != "requests";
            requests_alike
                && a.iter()
                    .filter(not_requests)
                    .eq(b.iter().filter(not_requests))
        }
        (None, None) => a == b,
        _ => false,
    }
}

/// The specs compared as `ValidatePersistentVolumeClaimUpdate` does: the old one takes the
/// new `volumeName` when it had none, `volumeAttributesClassName` is left out of both, and
/// of a bound claim so is `resources.requests.storage`.
fn same_spec_copied(new: &Value, old: &Value, bound: bool) -> bool {
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
    new_spec == old_spec
}

/// Whether a claim update grows the storage request (the resize admission plugin's concern).
fn claim_grows(new: &Value, old: &Value) -> bool {
    let request = |o| s(o, "/spec/resources/requests/storage");
    let (new_request, old_request) = (request(new), request(old));
    // The same text is the same size: read only when it changed.
    let size = |r: Option<&str>| r.and_then(quantity).unwrap_or(0.0);
    new_request != old_request && size(new_request) > size(old_request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_compare_alike_with_and_without_copies() {
        let specs = [
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}),
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}),
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi", "x": "1"}}}),
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {}}}),
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": 5}}),
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"limits": {"storage": "1Gi"}, "requests": {"storage": "1Gi"}}}),
            json!({"accessModes": ["ReadWriteOnce"], "resources": {}}),
            json!({"accessModes": ["ReadWriteOnce"], "resources": 3}),
            json!({"accessModes": ["ReadWriteOnce"]}),
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv"}),
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": ""}),
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "other"}),
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeAttributesClassName": "v"}),
            json!({"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}),
            json!(null),
            json!("text"),
        ];
        for a in &specs {
            for b in &specs {
                for bound in [false, true] {
                    let new = json!({"spec": a});
                    let old = json!({"spec": b});
                    assert_eq!(
                        same_spec(&new, &old, bound),
                        same_spec_copied(&new, &old, bound),
                        "{a} / {b} (bound: {bound})"
                    );
                }
            }
        }
        let no_spec = json!({});
        assert_eq!(
            same_spec(&no_spec, &json!({"spec": specs[0]}), false),
            same_spec_copied(&no_spec, &json!({"spec": specs[0]}), false)
        );
    }
}
