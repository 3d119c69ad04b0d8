//! The poster's requests to the API server, and how each answer is classified (`docs/events.md` §5).
//!
//! Every request goes through [`ApiCaller::call`], which bounds it with a timeout on the shared
//! clock, reads `Retry-After` (header or `details.retryAfterSeconds`), and sorts the answer into
//! ok, not found, conflict, retryable or rejected. The claim lookup and the event writer build on it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use kube::core::Status;

use crate::clock::SharedClock;
use crate::metrics::EventMetrics;

/// How a request that did not succeed failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// 404.
    NotFound,
    /// 409 (AlreadyExists or Conflict).
    Conflict,
    /// 5xx, 429, 408, a timeout or a transport error: try again later, not before `after`.
    Retryable {
        after: Option<Duration>,
        detail: String,
    },
    /// 400, 401, 403, 422 and the rest: trying again would not help.
    Rejected { code: u16, detail: String },
}

impl Failure {
    fn label(&self) -> &'static str {
        match self {
            Failure::NotFound => "not_found",
            Failure::Conflict => "conflict",
            Failure::Retryable { .. } => "retryable",
            Failure::Rejected { .. } => "rejected",
        }
    }
}

/// Sends requests with a timeout on the shared clock and counts them.
#[derive(Clone)]
pub(crate) struct ApiCaller {
    pub(crate) client: kube::Client,
    pub(crate) clock: SharedClock,
    pub(crate) timeout: Duration,
    pub(crate) metrics: EventMetrics,
}

impl ApiCaller {
    /// Sends `request`; `verb` labels the metric and the debug log.
    pub(crate) async fn call(
        &self,
        verb: &'static str,
        request: http::Request<Vec<u8>>,
    ) -> Result<Bytes, Failure> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        // `biased`: the answer wins over the timeout when both are ready, and a simulation's
        // output does not depend on tokio's random branch choice.
        let result = tokio::select! {
            biased;
            result = self.send(request) => result,
            () = self.clock.sleep(self.timeout) => Err(Failure::Retryable {
                after: None,
                detail: format!("no answer within {:?}", self.timeout),
            }),
        };
        let label = match &result {
            Ok(_) => "ok",
            Err(failure) => failure.label(),
        };
        self.metrics.count_write(verb, label);
        tracing::debug!(%method, %uri, result = label, "API request");
        result
    }

    async fn send(&self, request: http::Request<Vec<u8>>) -> Result<Bytes, Failure> {
        let response = self
            .client
            .send(request.map(kube::client::Body::from))
            .await
            .map_err(|error| Failure::Retryable {
                after: None,
                detail: format!("transport error: {error}"),
            })?;
        let status = response.status();
        let retry_after_header = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| Failure::Retryable {
                after: None,
                detail: format!("reading the answer failed: {error}"),
            })?
            .to_bytes();
        if status.is_success() {
            return Ok(body);
        }
        let parsed: Option<Status> = serde_json::from_slice(&body).ok();
        let message = parsed
            .as_ref()
            .map(|s| s.message.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        let retry_after = retry_after_header.or_else(|| {
            parsed
                .as_ref()
                .and_then(|s| s.details.as_ref())
                .map(|d| d.retry_after_seconds)
                .filter(|secs| *secs > 0)
                .map(|secs| Duration::from_secs(u64::from(secs)))
        });
        let detail = format!("{} {}", status.as_u16(), message);
        Err(match status.as_u16() {
            404 => Failure::NotFound,
            409 => Failure::Conflict,
            408 | 429 | 500..=599 => Failure::Retryable {
                after: retry_after,
                detail,
            },
            code => Failure::Rejected { code, detail },
        })
    }
}

/// The part of an answer's object the poster reads: `metadata.uid` and
/// `metadata.resourceVersion`. Decoding into it skips every other field unread (no typed
/// `ObjectMeta`, no managedFields built and dropped).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct MetaOnly {
    #[serde(default)]
    pub(crate) metadata: Meta,
}

/// See [`MetaOnly`].
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Meta {
    #[serde(default)]
    pub(crate) uid: Option<String>,
    #[serde(default)]
    pub(crate) resource_version: Option<String>,
}

/// The part of a PersistentVolume the claim lookup reads: `spec.claimRef`
/// (`docs/events.md` §4), every other field skipped unread.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct VolumeClaimRef {
    #[serde(default)]
    pub(crate) spec: Option<VolumeSpec>,
}

/// See [`VolumeClaimRef`].
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VolumeSpec {
    #[serde(default)]
    pub(crate) claim_ref: Option<ClaimRef>,
}

/// See [`VolumeClaimRef`]: the reference's namespace, name and uid.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ClaimRef {
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) uid: Option<String>,
}
