//! Schema lookup: the JSON schema of a k8s-openapi type, as schemars derives it (k8s-openapi's
//! own `schemars` feature). A leaf: the resource table names a schema per row, and the OpenAPI
//! documents (`openapi`) read them from the table.

use serde_json::Value;

/// The JSON schema of the k8s-openapi type `K`, as schemars writes it (`$defs`, `$ref`).
///
/// ```
/// let schema = fake_apiserver::api::schema::schema_of::<k8s_openapi::api::core::v1::Node>();
/// assert!(schema["properties"]["spec"].is_object());
/// ```
pub fn schema_of<K: schemars::JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(K)).unwrap_or(Value::Null)
}
