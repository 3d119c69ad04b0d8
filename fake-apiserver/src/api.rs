//! The API server proper: one HTTP request in, one response out. (Skeleton: filled in by issue 3.)

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::clock::SharedClock;

/// The body of every response: whole (most verbs) or streamed (watch).
pub type ResponseBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// The in-memory API server. Cheap to clone; clones share the store.
#[derive(Clone)]
pub struct ApiServer {
    clock: SharedClock,
}

impl ApiServer {
    /// An empty cluster whose objects are stamped by `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self { clock }
    }

    /// The clock stamping objects.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Serves one request.
    pub async fn handle(&self, request: http::Request<Bytes>) -> http::Response<ResponseBody> {
        let _ = request;
        let mut response = http::Response::new(Full::new(Bytes::from_static(b"{}")).boxed());
        *response.status_mut() = http::StatusCode::NOT_FOUND;
        response
    }
}
