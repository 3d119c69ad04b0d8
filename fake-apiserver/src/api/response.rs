//! Writing answers: JSON bodies with their code, and `Warning` headers. A leaf every part of
//! the API server (the handlers, the Status errors, discovery, the fault layer) writes through.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

/// The body of every response: whole (most verbs) or streamed (watch).
pub type ResponseBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A JSON response.
pub(crate) fn json_response(code: u16, body: &Value) -> http::Response<ResponseBody> {
    json_response_of(code, body)
}

/// A JSON response whose body is already serialised.
pub(crate) fn json_bytes_response(code: u16, body: Bytes) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(Full::new(body).boxed());
    *response.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// [`json_response`] of anything that serialises as JSON (such as a borrowed view).
pub(crate) fn json_response_of<T: serde::Serialize + ?Sized>(
    code: u16,
    body: &T,
) -> http::Response<ResponseBody> {
    json_bytes_response(
        code,
        Bytes::from(serde_json::to_vec(body).unwrap_or_default()),
    )
}

/// A plain-text response (the real server's `404 page not found`, the overload filter's text).
pub(crate) fn text_response(code: u16, text: Bytes) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(Full::new(text).boxed());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    *response.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response
}

/// Adds `Warning: 299 - "..."` headers.
pub(crate) fn add_warnings(response: &mut http::Response<ResponseBody>, warnings: &[String]) {
    for w in warnings {
        let text = format!("299 - {}", Value::String(w.clone()));
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            response.headers_mut().append(http::header::WARNING, v);
        }
    }
}
