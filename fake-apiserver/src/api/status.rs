//! `Status` error objects: the real reason strings, codes, details and message texts
//! (`docs/fidelity.md` §4), and the one error type every request path returns.

use serde_json::{Map, Value, json};

use super::response::{self, ResponseBody};

/// One field error, as apimachinery's `field.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueTooLong`, ...
    pub reason: &'static str,
    /// The field path, e.g. `metadata.name`.
    pub field: String,
    /// The error body, e.g. `Required value` or `Invalid value: "x": detail`.
    pub message: String,
}

impl FieldError {
    /// `field.Required(path, detail)`.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let mut message = "Required value".to_string();
        if !detail.is_empty() {
            message.push_str(": ");
            message.push_str(detail);
        }
        Self {
            reason: "FieldValueRequired",
            field: field.into(),
            message,
        }
    }

    /// `field.Forbidden(path, detail)`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {detail}"),
        }
    }

    /// `field.Invalid(path, value, detail)` with a string value.
    pub fn invalid(field: impl Into<String>, value: &str, detail: &str) -> Self {
        Self::invalid_json(field, &Value::String(value.to_string()), detail)
    }

    /// `field.Invalid(path, value, detail)` with any value (non-strings are written as JSON).
    pub fn invalid_json(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        let shown = match value {
            // Go's %q: serde_json string escaping is close enough for the printable ASCII we see.
            Value::String(s) => Value::String(s.clone()).to_string(),
            Value::Null => "null".to_string(),
            other => other.to_string(),
        };
        let mut message = format!("Invalid value: {shown}");
        if !detail.is_empty() {
            message.push_str(": ");
            message.push_str(detail);
        }
        Self {
            reason: "FieldValueInvalid",
            field: field.into(),
            message,
        }
    }

    fn text(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// An error response: a `Status` body (or plain text), its HTTP code and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status code (equal to the body's `code`).
    pub code: u16,
    /// The body: a `Status` object, or plain text when `plain` is set.
    pub body: Value,
    /// Plain-text body (the real server's `404 page not found`).
    pub plain: Option<&'static str>,
    /// `Retry-After` seconds, sent as a header too.
    pub retry_after: Option<u64>,
    /// `Warning` headers to send.
    pub warnings: Vec<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.plain {
            Some(text) => write!(f, "{} {}", self.code, text),
            None => write!(
                f,
                "{} {}",
                self.code,
                self.body
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            ),
        }
    }
}

impl std::error::Error for ApiError {}

/// A group and resource, as the real server's messages name them: `events`,
/// `events.events.k8s.io` (`schema.GroupResource`). What every Status constructor takes, so
/// the API and the fault layer word their answers alike.
///
/// ```
/// use fake_apiserver::api::GroupResource;
/// let gr = GroupResource { group: "events.k8s.io", resource: "events" };
/// assert_eq!(gr.to_string(), "events.events.k8s.io");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupResource<'a> {
    /// The API group (`""` for core).
    pub group: &'a str,
    /// The plural resource name.
    pub resource: &'a str,
}

impl std::fmt::Display for GroupResource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

fn details(name: &str, gr: GroupResource<'_>) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !gr.group.is_empty() {
        d.insert("group".into(), json!(gr.group));
    }
    d.insert("kind".into(), json!(gr.resource));
    Value::Object(d)
}

impl ApiError {
    /// The HTTP response for this error (the one place a failure `Status` is written out):
    /// JSON Status (or the plain text of an unknown path), `Retry-After`, warnings.
    pub fn response(&self) -> http::Response<ResponseBody> {
        let mut answer = match self.plain {
            Some(text) => {
                response::text_response(self.code, bytes::Bytes::from_static(text.as_bytes()))
            }
            None => response::json_response(self.code, &self.body),
        };
        if let Some(secs) = self.retry_after
            && let Ok(v) = http::HeaderValue::from_str(&secs.to_string())
        {
            answer.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        response::add_warnings(&mut answer, &self.warnings);
        answer
    }

    /// The error for a typed `Status` (as fault rules and the transport build them).
    pub fn from_status(status: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Status) -> Self {
        let code = status
            .code
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (100..600).contains(c))
            .unwrap_or(500);
        let details = status
            .details
            .as_ref()
            .and_then(|d| serde_json::to_value(d).ok());
        let mut error = Self::status(
            code,
            status.reason.as_deref().unwrap_or(""),
            status.message.clone().unwrap_or_default(),
            details,
        );
        error.retry_after = status
            .details
            .as_ref()
            .and_then(|d| d.retry_after_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .filter(|s| *s > 0);
        error
    }

    /// A failure `Status` with the given parts.
    pub fn status(
        code: u16,
        reason: &str,
        message: impl Into<String>,
        details: Option<Value>,
    ) -> Self {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message.into(),
            "reason": reason,
            "code": code,
        });
        if let (Some(d), Some(obj)) = (details, body.as_object_mut()) {
            obj.insert("details".into(), d);
        }
        if reason.is_empty()
            && let Some(obj) = body.as_object_mut()
        {
            obj.remove("reason");
        }
        Self {
            code,
            body,
            plain: None,
            retry_after: None,
            warnings: Vec::new(),
        }
    }

    /// Answers with HTTP `code` (and the body's `code`), whatever the constructor chose.
    pub fn set_code(&mut self, code: u16) {
        self.code = code;
        if let Some(body) = self.body.as_object_mut() {
            body.insert("code".into(), json!(code));
        }
    }

    /// Sets the body's `reason` (removed when empty, as the real server leaves it out).
    pub fn set_reason(&mut self, reason: &str) {
        if let Some(body) = self.body.as_object_mut() {
            if reason.is_empty() {
                body.remove("reason");
            } else {
                body.insert("reason".into(), json!(reason));
            }
        }
    }

    /// Replaces the body's `message`.
    pub fn set_message(&mut self, message: &str) {
        if let Some(body) = self.body.as_object_mut() {
            body.insert("message".into(), json!(message));
        }
    }

    /// Asks the client to retry after `seconds`: `details.retryAfterSeconds` and the
    /// `Retry-After` header.
    pub fn set_retry_after(&mut self, seconds: u64) {
        self.retry_after = Some(seconds);
        if let Some(body) = self.body.as_object_mut() {
            let details = body.entry("details").or_insert_with(|| json!({}));
            if let Some(d) = details.as_object_mut() {
                d.insert(
                    "retryAfterSeconds".into(),
                    json!(i32::try_from(seconds).unwrap_or(i32::MAX)),
                );
            }
        }
    }

    /// 404 NotFound: `persistentvolumeclaims "foo" not found`.
    pub fn not_found<'a>(gr: impl Into<GroupResource<'a>>, name: &str) -> Self {
        let gr = gr.into();
        Self::status(
            404,
            "NotFound",
            format!("{} \"{}\" not found", gr, name),
            Some(details(name, gr)),
        )
    }

    /// 404 for a namespace that does not exist (NamespaceLifecycle admission).
    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::status(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
            Some(json!({"name": namespace, "kind": "namespaces"})),
        )
    }

    /// 409 AlreadyExists.
    pub fn already_exists<'a>(gr: impl Into<GroupResource<'a>>, name: &str) -> Self {
        let gr = gr.into();
        Self::status(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", gr, name),
            Some(details(name, gr)),
        )
    }

    /// 409 Conflict on a stale resourceVersion.
    pub fn conflict<'a>(gr: impl Into<GroupResource<'a>>, name: &str) -> Self {
        let gr = gr.into();
        Self::status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                gr, name
            ),
            Some(details(name, gr)),
        )
    }

    /// 409 Conflict with a custom reason text (precondition failures).
    pub fn conflict_with<'a>(gr: impl Into<GroupResource<'a>>, name: &str, why: &str) -> Self {
        let gr = gr.into();
        Self::status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                gr, name, why
            ),
            Some(details(name, gr)),
        )
    }

    /// 400 BadRequest with the error text and no details.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::status(400, "BadRequest", message, None)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        Self::status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(json!({})),
        )
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(accept: &str) -> Self {
        Self::status(
            406,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf (asked for {accept})"
            ),
            None,
        )
    }

    /// 415 for a patch with an unknown Content-Type.
    pub fn unsupported_patch_type() -> Self {
        Self::status(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
            None,
        )
    }

    /// 415 for a create/update body with an unknown Content-Type (the types listed are the
    /// ones the create and update handlers really decode).
    pub fn unsupported_body_type() -> Self {
        Self::status(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
            None,
        )
    }

    /// 422 Invalid with causes; `kind` and `group` go into details as the real server does.
    pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Self {
        let mut texts: Vec<String> = Vec::new();
        for e in errors {
            let t = e.text();
            if !texts.contains(&t) {
                texts.push(t);
            }
        }
        let agg = if texts.len() == 1 {
            texts.remove(0)
        } else {
            format!("[{}]", texts.join(", "))
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.reason, "message": e.message, "field": e.field}))
            .collect();
        let mut d = Map::new();
        d.insert("name".into(), json!(name));
        if !group.is_empty() {
            d.insert("group".into(), json!(group));
        }
        d.insert("kind".into(), json!(kind));
        d.insert("causes".into(), Value::Array(causes));
        Self::status(
            422,
            "Invalid",
            // `schema.GroupKind.String()`: `VolumeAttachment.storage.k8s.io`, `Pod`.
            if group.is_empty() {
                format!("{kind} \"{name}\" is invalid: {agg}")
            } else {
                format!("{kind}.{group} \"{name}\" is invalid: {agg}")
            },
            Some(Value::Object(d)),
        )
    }

    /// 500 InternalError.
    pub fn internal(err: &str) -> Self {
        Self::status(
            500,
            "InternalError",
            format!("Internal error occurred: {err}"),
            Some(json!({"causes": [{"message": err}]})),
        )
    }

    /// 410 Expired.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::status(410, "Expired", message, None)
    }

    /// The real server's answer to an unknown path: plain text `404 page not found`.
    pub fn page_not_found() -> Self {
        Self {
            code: 404,
            body: Value::Null,
            plain: Some("404 page not found\n"),
            retry_after: None,
            warnings: Vec::new(),
        }
    }
}

/// A success `Status` (what most deletes return).
pub fn success_status<'a>(gr: impl Into<GroupResource<'a>>, name: &str, uid: &str) -> Value {
    let mut d = details(name, gr.into());
    if let Some(obj) = d.as_object_mut() {
        obj.insert("uid".into(), json!(uid));
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": d,
    })
}
