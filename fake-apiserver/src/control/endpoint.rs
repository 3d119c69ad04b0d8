//! The control path over HTTP: `/fake-apiserver/v1/…`, how a process outside this one (the
//! scenario runner, a driver's test) steers a running `fake-apiserver` binary.
//!
//! | request | answer |
//! |---|---|
//! | `GET /fake-apiserver/v1/info` | `200 {"fakeApiserver": true, "version": "…", "kubernetesVersion": "v1.33.0", "faults": N}` |
//! | `POST /fake-apiserver/v1/faults` with a [`FaultBody`] | `201 {"id": N}`; a bad body `400` Status saying what is wrong |
//! | `DELETE /fake-apiserver/v1/faults` | `200 {"cleared": N}`: every rule removed |
//!
//! A client tells a fake from a real cluster by `GET …/info`: a real server answers 404 (or
//! 403), this one 200 with `"fakeApiserver": true`.
//!
//! These requests pass the HTTP layer's bearer-token check like every other one (a wrong token
//! gets 401), but nothing else applies to them: no fault rule matches them, the request log
//! does not record them, and discovery does not list them (kubectl sees the same cluster with
//! or without this path). [`ControlEndpointLayer`] is the tower layer answering them in front
//! of the control layer.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use tower::ServiceExt;

use super::{BoxError, BoxFuture, Control, Fault, Verb};
use crate::api::ResponseBody;

/// The path prefix of every control request.
pub const CONTROL_PREFIX: &str = "/fake-apiserver/";

/// The version of the control path served here (`/fake-apiserver/v1/`).
pub const CONTROL_V1: &str = "/fake-apiserver/v1/";

/// Whether `path` is on the control path (and so never logged nor faulted).
///
/// ```
/// use fake_apiserver::control::endpoint::is_control_path;
/// assert!(is_control_path("/fake-apiserver/v1/faults"));
/// assert!(!is_control_path("/api/v1/nodes"));
/// ```
pub fn is_control_path(path: &str) -> bool {
    path.starts_with(CONTROL_PREFIX) || path == "/fake-apiserver"
}

/// The body of `POST /fake-apiserver/v1/faults`: the scenario `fault` step's shape.
///
/// Exactly one action: an error answer (`status`, `reason`, `retryAfter`; `status` defaults to
/// 500), a delay (`latency`, a Go duration such as `"10s"` or `"1m30s"`, slept on the server's
/// clock), or `loseResponse` (serve, then drop the connection).
///
/// ```
/// use fake_apiserver::control::endpoint::FaultBody;
/// let body: FaultBody = serde_json::from_str(r#"{"verb":"create","resource":"events","status":429,"retryAfter":2,"times":3}"#).unwrap();
/// let fault = body.into_fault().unwrap();
/// assert_eq!(fault.times, Some(3));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultBody {
    /// get, list, watch, create, update, patch, delete or deletecollection.
    pub verb: String,
    /// Resource plural (`events`), or `plural/subresource`.
    pub resource: String,
    /// Only requests in this namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Only requests for this object name.
    #[serde(default)]
    pub name: Option<String>,
    /// Answer with this HTTP status (400–599; default 500 unless `latency` or `loseResponse`).
    #[serde(default)]
    pub status: Option<u16>,
    /// The Status `reason` (default: the real server's reason for the code).
    #[serde(default)]
    pub reason: Option<String>,
    /// `Retry-After` seconds sent with the answer.
    #[serde(default)]
    pub retry_after: Option<u32>,
    /// Delay matching requests this long (a Go duration), then serve them.
    #[serde(default)]
    pub latency: Option<String>,
    /// Serve the request (the write happens), then lose the answer.
    #[serde(default)]
    pub lose_response: bool,
    /// How many requests it applies to (default: until cleared).
    #[serde(default)]
    pub times: Option<u32>,
}

impl FaultBody {
    /// The rule this body asks for, or what is wrong with it (every problem, one per line
    /// part, separated by `; `).
    pub fn into_fault(self) -> Result<Fault, String> {
        let mut problems = Vec::new();
        let verb = match self.verb.parse::<Verb>() {
            Ok(verb) => Some(verb),
            Err(error) => {
                problems.push(format!("verb: {error}"));
                None
            }
        };
        if self.resource.is_empty()
            || !self
                .resource
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '/' || c == '.')
        {
            problems.push(format!(
                "resource: {:?} is not a resource plural (write it as the URL does: events, persistentvolumeclaims, volumeattachments, pods/status)",
                self.resource
            ));
        }
        if let Some(status) = self.status
            && !(400..=599).contains(&status)
        {
            problems.push(format!(
                "status: {status} is not an error status (a fault answers 400-599, e.g. 500, 503, 429, 409)"
            ));
        }
        let latency = match self.latency.as_deref().map(parse_go_duration) {
            None => None,
            Some(Ok(latency)) => Some(latency),
            Some(Err(error)) => {
                problems.push(format!("latency: {error}"));
                None
            }
        };
        let answers = self.status.is_some() || self.reason.is_some() || self.retry_after.is_some();
        let actions = usize::from(answers)
            + usize::from(self.latency.is_some())
            + usize::from(self.lose_response);
        if actions > 1 {
            problems.push(
                "a fault either answers with an error (status, reason, retryAfter), delays (latency) or loses the answer (loseResponse), not several: post one rule for each"
                    .to_string(),
            );
        }
        if self.times == Some(0) {
            problems.push(
                "times: 0 would never apply (leave `times` out for a rule that holds until cleared)"
                    .to_string(),
            );
        }
        let verb = match verb {
            Some(verb) if problems.is_empty() => verb,
            _ => return Err(problems.join("; ")),
        };
        let mut fault = Fault::new(verb, self.resource);
        if let Some(namespace) = self.namespace {
            fault = fault.namespace(namespace);
        }
        if let Some(name) = self.name {
            fault = fault.name(name);
        }
        if let Some(times) = self.times {
            fault = fault.times(times);
        }
        if let Some(latency) = latency {
            return Ok(fault.latency(latency));
        }
        if self.lose_response {
            return Ok(fault.lose_response());
        }
        fault = fault.status(self.status.unwrap_or(500));
        if let Some(reason) = self.reason {
            fault = fault.reason(reason);
        }
        if let Some(secs) = self.retry_after {
            fault = fault.retry_after(secs);
        }
        Ok(fault)
    }
}

/// Parses a Go duration (`90s`, `1m30s`, `1.5h`, `153ms`, `10us`); `0` alone is zero.
///
/// ```
/// use fake_apiserver::control::endpoint::parse_go_duration;
/// use std::time::Duration;
/// assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_go_duration("10").is_err());
/// ```
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    const HELP: &str =
        "write a Go duration: numbers with units h, m, s, ms, us, ns, e.g. 10s, 1m30s, 150ms";
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(format!("empty duration ({HELP})"));
    }
    let too_long = || format!("{text:?} is too long a duration");
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        rest = after;
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(format!("{text:?} is not a duration ({HELP})"));
        }
        let per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("{text:?} has a number without a unit ({HELP})")),
            other => return Err(format!("{other:?} in {text:?} is not a unit ({HELP})")),
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_long())?
        };
        let mut nanos = whole.checked_mul(per).ok_or_else(too_long)?;
        let mut scale = per;
        for digit in fraction.chars().filter_map(|c| c.to_digit(10)) {
            scale /= 10;
            nanos += u128::from(digit) * scale;
        }
        total = total.checked_add(nanos).ok_or_else(too_long)?;
    }
    let nanos = u64::try_from(total).map_err(|_| too_long())?;
    Ok(Duration::from_nanos(nanos))
}

/// A tower layer answering the control path ([`CONTROL_V1`]) from `control`'s fault rules and
/// passing every other request on.
///
/// ```
/// use fake_apiserver::control::endpoint::ControlEndpointLayer;
/// use tower::Layer;
/// let cluster = fake_apiserver::FakeCluster::default();
/// let service = ControlEndpointLayer::new(cluster.control().clone()).layer(cluster.service());
/// # let _ = service;
/// ```
#[derive(Clone, Debug)]
pub struct ControlEndpointLayer {
    control: Control,
}

impl ControlEndpointLayer {
    /// Answers the control path with `control`'s rules.
    pub fn new(control: Control) -> Self {
        Self { control }
    }
}

impl<S> tower::Layer<S> for ControlEndpointLayer {
    type Service = ControlEndpoint<S>;

    fn layer(&self, inner: S) -> ControlEndpoint<S> {
        ControlEndpoint {
            control: self.control.clone(),
            inner,
        }
    }
}

/// The service of [`ControlEndpointLayer`].
#[derive(Clone, Debug)]
pub struct ControlEndpoint<S> {
    control: Control,
    inner: S,
}

impl<S> tower::Service<http::Request<Bytes>> for ControlEndpoint<S>
where
    S: tower::Service<
            http::Request<Bytes>,
            Response = http::Response<ResponseBody>,
            Error = BoxError,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResponseBody>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // The inner service is driven to readiness in `call` (only when the request is its).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Bytes>) -> Self::Future {
        if is_control_path(request.uri().path()) {
            let response = answer(&self.control, &request);
            return Box::pin(async move { Ok(response) });
        }
        let inner = self.inner.clone();
        Box::pin(inner.oneshot(request))
    }
}

/// Answers one control request.
fn answer(control: &Control, request: &http::Request<Bytes>) -> http::Response<ResponseBody> {
    let path = request.uri().path();
    let method = request.method();
    let rest = path
        .strip_prefix(CONTROL_V1)
        .map(|rest| rest.trim_end_matches('/'));
    match (rest, method) {
        (Some("info"), &http::Method::GET) => json(
            200,
            &serde_json::json!({
                "fakeApiserver": true,
                "version": env!("CARGO_PKG_VERSION"),
                "kubernetesVersion": crate::api::GIT_VERSION,
                "faults": control.faults().list().len(),
            }),
        ),
        (Some("faults"), &http::Method::POST) => {
            let body: FaultBody = match serde_json::from_slice(request.body()) {
                Ok(body) => body,
                Err(error) => {
                    return bad_request(format!(
                        "the fault rule is not valid JSON of the fault shape ({{verb, resource, namespace?, name?, status?, reason?, retryAfter?, latency?, loseResponse?, times?}}): {error}"
                    ));
                }
            };
            match body.into_fault() {
                Ok(fault) => {
                    let id = control.faults().add(fault);
                    json(201, &serde_json::json!({"id": id.0}))
                }
                Err(problems) => bad_request(format!("the fault rule is not valid: {problems}")),
            }
        }
        (Some("faults"), &http::Method::DELETE) => {
            let cleared = control.faults().clear();
            json(200, &serde_json::json!({"cleared": cleared}))
        }
        (Some("info" | "faults"), _) => crate::api::ApiError::status(
            405,
            "MethodNotAllowed",
            format!(
                "{method} is not allowed on {path} (info: GET; faults: POST to add a rule, DELETE to clear them)"
            ),
            None,
        )
        .response(),
        _ => crate::api::ApiError::status(
            404,
            "NotFound",
            format!(
                "the control path serves {CONTROL_V1}info and {CONTROL_V1}faults, not {path}"
            ),
            None,
        )
        .response(),
    }
}

fn bad_request(message: String) -> http::Response<ResponseBody> {
    crate::api::ApiError::status(400, "BadRequest", message, None).response()
}

fn json(code: u16, body: &serde_json::Value) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::FaultAction;

    fn body(json: &str) -> Result<Fault, String> {
        serde_json::from_str::<FaultBody>(json)
            .map_err(|e| e.to_string())?
            .into_fault()
    }

    #[test]
    fn bodies_become_the_rules_the_scenario_step_makes() {
        let fault = body(r#"{"verb":"patch","resource":"events","namespace":"ns","name":"e1","status":409,"reason":"Conflict","times":1}"#).unwrap();
        assert_eq!(
            fault,
            Fault::new(Verb::Patch, "events")
                .namespace("ns")
                .name("e1")
                .times(1)
                .status(409)
                .reason("Conflict")
        );
        let fault = body(r#"{"verb":"list","resource":"pods","latency":"1m30s"}"#).unwrap();
        assert_eq!(fault.action, FaultAction::Latency(Duration::from_secs(90)));
        let fault = body(r#"{"verb":"create","resource":"events","loseResponse":true}"#).unwrap();
        assert_eq!(fault.action, FaultAction::LoseResponse);
        let fault = body(r#"{"verb":"get","resource":"nodes"}"#).unwrap();
        assert!(matches!(fault.action, FaultAction::Respond(ref r) if r.code == 500));
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let error =
            body(r#"{"verb":"gett","resource":"Events","status":200,"times":0}"#).unwrap_err();
        assert!(error.contains("unknown verb \"gett\""), "{error}");
        assert!(error.contains("resource: \"Events\""), "{error}");
        assert!(error.contains("status: 200 is not an error"), "{error}");
        assert!(error.contains("times: 0"), "{error}");
        let error =
            body(r#"{"verb":"get","resource":"nodes","status":503,"latency":"1s"}"#).unwrap_err();
        assert!(error.contains("not several"), "{error}");
        let error = body(r#"{"verb":"get","resource":"nodes","latency":"10"}"#).unwrap_err();
        assert!(error.contains("without a unit"), "{error}");
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("150ms"), Ok(Duration::from_millis(150)));
        assert_eq!(parse_go_duration("1h2m3s"), Ok(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "1x", "1..5s", ".s", "99999999999999999999h"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }
}
