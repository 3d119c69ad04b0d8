//! Writing core/v1 Events (events.md §3): the object, its name, create, patch and read-back.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{GetParams, Patch, PatchParams, PostParams};
use kube::core::Request;

use super::api::{ApiCaller, Failure};
use super::claims::LiveClaim;
use crate::reason::EventType;

/// Everything one Event object holds.
#[derive(Debug, Clone)]
pub(crate) struct EventRecord {
    pub(crate) name: String,
    pub(crate) claim: LiveClaim,
    pub(crate) event_type: EventType,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) component: String,
    pub(crate) instance: String,
    pub(crate) count: i32,
    pub(crate) first: Timestamp,
    pub(crate) last: Timestamp,
}

impl EventRecord {
    /// The Event object as written.
    pub(crate) fn to_event(&self) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.claim.name.namespace().to_owned()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("PersistentVolumeClaim".to_owned()),
                namespace: Some(self.claim.name.namespace().to_owned()),
                name: Some(self.claim.name.name().to_owned()),
                uid: Some(self.claim.uid.clone()),
                resource_version: self.claim.resource_version.clone(),
                field_path: None,
            },
            type_: Some(self.event_type.as_str().to_owned()),
            reason: Some(self.reason.to_owned()),
            message: Some(self.message.clone()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.instance.clone()),
            first_timestamp: Some(Time(self.first)),
            last_timestamp: Some(Time(self.last)),
            count: Some(self.count),
            event_time: None,
            ..Event::default()
        }
    }

    /// Whether `stored` is this event (same claim uid, type, reason, message, component):
    /// a create answered 409 after a lost response wrote it already.
    pub(crate) fn is_same_as(&self, stored: &Event) -> bool {
        stored.involved_object.uid.as_deref() == Some(self.claim.uid.as_str())
            && stored.type_.as_deref() == Some(self.event_type.as_str())
            && stored.reason.as_deref() == Some(self.reason)
            && stored.message.as_deref() == Some(self.message.as_str())
            && stored.source.as_ref().and_then(|s| s.component.as_deref())
                == Some(self.component.as_str())
    }

    fn events_path(&self) -> String {
        format!("/api/v1/namespaces/{}/events", self.claim.name.namespace())
    }

    /// POST the event.
    pub(crate) async fn create(&self, api: &ApiCaller) -> Result<(), Failure> {
        let body = serde_json::to_vec(&self.to_event()).map_err(|e| Failure::Rejected {
            code: 0,
            detail: format!("cannot encode the event: {e}"),
        })?;
        let request = Request::new(self.events_path())
            .create(&PostParams::default(), body)
            .map_err(build_error)?;
        api.call("create", request).await.map(|_| ())
    }

    /// PATCH `count` and `lastTimestamp` (a merge patch with absolute values, so a retry after
    /// a lost answer writes the same thing again).
    pub(crate) async fn patch_count(&self, api: &ApiCaller) -> Result<(), Failure> {
        let patch = serde_json::json!({
            "count": self.count,
            "lastTimestamp": Time(self.last),
        });
        let request = Request::new(self.events_path())
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(patch))
            .map_err(build_error)?;
        api.call("patch", request).await.map(|_| ())
    }

    /// GET the stored event of this name; `Ok(None)` when there is none.
    pub(crate) async fn read_stored(&self, api: &ApiCaller) -> Result<Option<Event>, Failure> {
        let request = Request::new(self.events_path())
            .get(&self.name, &GetParams::default())
            .map_err(build_error)?;
        match api.call("get", request).await {
            Ok(body) => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| Failure::Retryable {
                    after: None,
                    detail: format!("the API server answered with an unreadable Event: {e}"),
                }),
            Err(Failure::NotFound) => Ok(None),
            Err(failure) => Err(failure),
        }
    }
}

fn build_error(error: kube::core::request::Error) -> Failure {
    Failure::Rejected {
        code: 0,
        detail: format!("cannot build the request: {error}"),
    }
}

/// Names events `{claim}.{hex nanos}` like client-go, unique even when the clock stands still.
#[derive(Debug, Default)]
pub(crate) struct EventNamer {
    last_nanos: i128,
}

impl EventNamer {
    /// The name for an event on `claim` at `at`; `random` supplies the fallback when the
    /// name would not be a valid DNS subdomain (over 253 characters).
    pub(crate) fn name(&mut self, claim: &str, at: Timestamp, random: u64) -> String {
        let nanos = at.as_nanosecond().max(self.last_nanos + 1);
        self.last_nanos = nanos;
        let name = format!("{claim}.{nanos:x}");
        if name.len() <= 253 {
            name
        } else {
            format!("{:016x}{:016x}", random, nanos as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_at_one_instant_and_fall_back_when_too_long() {
        let at: Timestamp = "2026-01-01T00:00:00Z".parse().expect("timestamp");
        let mut namer = EventNamer::default();
        let a = namer.name("data", at, 1);
        let b = namer.name("data", at, 2);
        assert_ne!(a, b);
        assert_eq!(a, format!("data.{:x}", at.as_nanosecond()));
        let long = "x".repeat(250);
        let fallback = namer.name(&long, at, 3);
        assert!(fallback.len() <= 253 && !fallback.starts_with('x'));
    }
}
