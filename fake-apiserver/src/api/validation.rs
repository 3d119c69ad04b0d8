//! Name and metadata validation shared by every kind (apimachinery's `validation` helpers with
//! their real message texts), and the generic ObjectMeta checks of `rest.BeforeCreate`.

use super::pointer::Pointer;
use serde_json::Value;

use super::status::FieldError;

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";

/// apimachinery's `RegexError`.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push_str(&format!("'{e}', "));
    }
    out.push_str(&format!("regex used for validation is '{fmt}')"));
    out
}

fn is_dns_label_chars(label: &str) -> bool {
    let bytes = label.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(&f), Some(&l)) => {
            alnum(f) && alnum(l) && bytes.iter().all(|&b| alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// `IsDNS1123Subdomain`: the error texts, empty when valid.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if value.is_empty() || !value.split('.').all(is_dns_label_chars) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `IsDNS1123Label`: the error texts, empty when valid.
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !is_dns_label_chars(value) {
        errs.push(regex_error(
            DNS1123_LABEL_MSG,
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

fn is_qualified_name_part(name: &str) -> bool {
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&f), Some(&l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        }
        _ => false,
    }
}

/// `IsQualifiedName`: the error texts, empty when valid.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `path.ValidatePathSegmentName`: the error texts, empty when valid.
pub fn path_segment_name(name: &str, prefix: bool) -> Vec<String> {
    let mut errs = Vec::new();
    if !prefix {
        if name == "." {
            errs.push("may not be '.'".to_string());
        }
        if name == ".." {
            errs.push("may not be '..'".to_string());
        }
    }
    if name.contains('/') {
        errs.push("may not contain '/'".to_string());
    }
    if name.contains('%') {
        errs.push("may not contain '%'".to_string());
    }
    errs
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `ValidateObjectMeta` with the given name rule: name/generateName, namespace, labels.
pub fn object_meta(
    obj: &Value,
    namespaced: bool,
    name_rule: fn(&str, bool) -> Vec<String>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    // The metadata looked up once, its fields read in one walk of it.
    let [generate_name, labels, name, namespace] = super::pointer::fields_sorted(
        obj.get("metadata"),
        ["generateName", "labels", "name", "namespace"],
    );
    let text = |v| super::pointer::text(v).unwrap_or("");
    let (name, generate_name, namespace) = (text(name), text(generate_name), text(namespace));
    if !generate_name.is_empty() {
        for m in name_rule(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                generate_name,
                &m,
            ));
        }
    }
    if name.is_empty() {
        if generate_name.is_empty() {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for m in name_rule(name, false) {
            errs.push(FieldError::invalid("metadata.name", name, &m));
        }
    }
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for m in dns1123_label(namespace) {
                errs.push(FieldError::invalid("metadata.namespace", namespace, &m));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError {
            reason: "FieldValueForbidden",
            field: "metadata.namespace".into(),
            message: "Forbidden: not allowed on this type".into(),
        });
    }
    if let Some(labels) = labels.and_then(Value::as_object) {
        for (k, v) in labels {
            for m in qualified_name(k) {
                errs.push(FieldError::invalid("metadata.labels", k, &m));
            }
            if let Some(v) = v.as_str()
                && !v.is_empty()
                && (v.len() > 63 || !is_qualified_name_part(v))
            {
                errs.push(FieldError::invalid(
                        "metadata.labels".to_string(),
                        v,
                        &format!(
                            "a valid label must be an empty string or {}",
                            regex_error(
                                "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                                "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
                                &["MyValue", "my_value", "12345"]
                            )
                        ),
                    ));
            }
        }
    }
    errs
}

/// `ValidateObjectMetaUpdate`: name and namespace may not change.
pub fn object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for key in ["name", "namespace"] {
        let n = meta_str(new, key);
        let o = meta_str(old, key);
        if n != o {
            errs.push(FieldError::invalid(
                format!("metadata.{key}"),
                n,
                "field is immutable",
            ));
        }
    }
    errs
}

/// `ValidateObjectMetaUpdate`: no new finalizers on an object being deleted.
pub fn no_new_finalizers(new: &Value, old: &Value) -> Vec<FieldError> {
    if meta_str(old, "deletionTimestamp").is_empty() {
        return Vec::new();
    }
    let list = |o: &Value| -> Vec<String> {
        o.ptr("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let old_list = list(old);
    let mut added: Vec<String> = list(new)
        .into_iter()
        .filter(|f| !old_list.contains(f))
        .collect();
    added.sort();
    added.dedup();
    if added.is_empty() {
        return Vec::new();
    }
    let shown: Vec<String> = added.iter().map(|f| format!("{f:?}")).collect();
    vec![FieldError::forbidden(
        "metadata.finalizers",
        &format!(
            "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
            shown.join(", ")
        ),
    )]
}

/// Name rule: any path-segment-safe name (most kinds).
pub fn path_segment_rule(name: &str, prefix: bool) -> Vec<String> {
    path_segment_name(name, prefix)
}

/// Name rule: DNS-1123 subdomain (events.k8s.io/v1, and the real rule for most kinds).
pub fn subdomain_rule(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        // A generateName prefix may end in '-': validate it with a character appended.
        return dns1123_subdomain(&format!("{name}a"));
    }
    dns1123_subdomain(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_name_errors_match_the_real_texts() {
        assert!(qualified_name("kube.rs/pvc").is_empty());
        let errs = qualified_name("");
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0], "name part must be non-empty");
        assert!(errs[1].starts_with("name part must consist of alphanumeric characters"));
        assert!(errs[1].contains("(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used"));
    }

    #[test]
    fn subdomains() {
        assert!(dns1123_subdomain("a.b-c").is_empty());
        assert!(!dns1123_subdomain("A").is_empty());
        assert!(!dns1123_subdomain("a..b").is_empty());
        assert!(!dns1123_subdomain("-a").is_empty());
        assert_eq!(dns1123_subdomain(&"a".repeat(254)).len(), 1);
    }
}
