//! Checks more than one kind shares, with the real texts: quantities, access and volume
//! modes, StorageClass and CSI driver names, the volume source keys.

use serde_json::Value;

use crate::api::pointer::Pointer;
use crate::api::status::FieldError;
use crate::api::validation;

/// `field.NotSupported(path, value, supported)`.
pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> FieldError {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    FieldError {
        reason: "FieldValueNotSupported",
        field: field.into(),
        message: format!(
            "Unsupported value: {value:?}: supported values: {}",
            list.join(", ")
        ),
    }
}

pub(crate) fn s<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.ptr(pointer).and_then(Value::as_str)
}

pub(crate) fn arr<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.ptr(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A Kubernetes quantity as a number (bytes for storage), or `None` when it does not parse.
///
/// ```
/// use fake_apiserver::api::strategy::quantity;
/// assert_eq!(quantity("1Gi"), Some(1073741824.0));
/// assert_eq!(quantity("-1Gi"), Some(-1073741824.0));
/// assert_eq!(quantity("500m"), Some(0.5));
/// assert_eq!(quantity("1.5e3"), Some(1500.0));
/// assert_eq!(quantity("Gi"), None);
/// ```
pub fn quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() || number == "+" || number == "-" {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse().ok()?),
        _ => return None,
    };
    Some(value * factor)
}

pub(crate) fn positive_quantity(errs: &mut Vec<FieldError>, field: &str, value: &Value) {
    let text = value.as_str().unwrap_or("");
    match quantity(text) {
        Some(q) if q > 0.0 => {}
        Some(_) => errs.push(FieldError::invalid(field, text, "must be greater than zero")),
        None => errs.push(FieldError::invalid(
            field,
            text,
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        )),
    }
}

pub(crate) const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
pub(crate) const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];

pub(crate) fn access_modes(errs: &mut Vec<FieldError>, obj: &Value, required: &str) {
    let modes = arr(obj, "/spec/accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required("spec.accessModes", required));
    }
    let mut once_pod = false;
    for mode in modes {
        let mode = mode.as_str().unwrap_or("");
        once_pod |= mode == "ReadWriteOncePod";
        if !ACCESS_MODES.contains(&mode) {
            errs.push(not_supported("spec.accessModes", mode, ACCESS_MODES));
        }
    }
    if once_pod && modes.len() > 1 {
        errs.push(FieldError::forbidden(
            "spec.accessModes",
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

pub(crate) fn volume_mode(errs: &mut Vec<FieldError>, obj: &Value) {
    if let Some(mode) = s(obj, "/spec/volumeMode")
        && !VOLUME_MODES.contains(&mode)
    {
        errs.push(not_supported("spec.volumeMode", mode, VOLUME_MODES));
    }
}

pub(crate) fn class_name(errs: &mut Vec<FieldError>, obj: &Value) {
    if let Some(class) = s(obj, "/spec/storageClassName").filter(|c| !c.is_empty()) {
        for m in validation::dns1123_subdomain(class) {
            errs.push(FieldError::invalid("spec.storageClassName", class, &m));
        }
    }
}

/// `ValidateCSIDriverName`.
pub(crate) fn csi_driver_name(errs: &mut Vec<FieldError>, field: &str, name: &str) {
    if name.is_empty() {
        errs.push(FieldError::required(field, ""));
    }
    if name.len() > 63 {
        errs.push(FieldError {
            reason: "FieldValueTooLong",
            field: field.into(),
            message: "Too long: may not be more than 63 bytes".into(),
        });
    }
    for m in validation::dns1123_subdomain(&name.to_lowercase()) {
        errs.push(FieldError::invalid(field, name, &m));
    }
}

/// Keys of `PersistentVolumeSpec` that are volume sources.
pub(crate) const VOLUME_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "glusterfs",
    "hostPath",
    "iscsi",
    "local",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_values_list_what_is_supported() {
        let e = not_supported("spec.accessModes", "ReadWriteSometimes", ACCESS_MODES);
        assert_eq!(
            e.message,
            "Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\""
        );
    }
}
