//! Writing core/v1 Events (`docs/events.md` §3): the object, its name, create, patch and read-back.
//!
//! Two guards keep a write from undoing another (issue 9):
//! - every PATCH carries the `resourceVersion` the poster last saw as a precondition, so a
//!   PATCH that lands late (after its own retry) is refused with 409 instead of putting an
//!   older `count`/`lastTimestamp` back; the worker then re-reads the event and counts on
//!   from what the server holds;
//! - every Event carries its writer's tag (annotation [`WRITER_ANNOTATION`], one random value
//!   per poster) and its name carries the low 16 bits of it, so names are unique across
//!   posters writing at one instant, and a create answered 409 adopts the stored event only
//!   when it is truly this poster's (a lost answer), never another instance's or a
//!   predecessor's.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{GetParams, Patch, PatchParams, PostParams};
use kube::core::Request;

use super::api::{ApiCaller, Failure};
use super::claims::LiveClaim;
use crate::reason::EventType;

/// The annotation naming the poster that wrote an Event (its tag, 16 hex digits).
pub const WRITER_ANNOTATION: &str = "csi-events/writer";

/// Who writes: one per poster, shared by every write.
#[derive(Debug)]
pub(crate) struct Writer {
    /// `source.component` and `reportingComponent`.
    pub(crate) component: String,
    /// `reportingInstance`.
    pub(crate) instance: String,
    /// This poster's tag as 16 hex digits (the writer annotation's value).
    pub(crate) tag: String,
}

impl Writer {
    pub(crate) fn new(component: String, instance: String, tag: u64) -> Self {
        Self {
            component,
            instance,
            tag: format!("{tag:016x}"),
        }
    }
}

/// What the server holds of one series' Event, as this poster last saw it: kept in the
/// series while it writes, and in the folding cache while it has nothing to write.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    /// The Event's name, once one was chosen.
    pub(crate) name: Option<String>,
    /// Whether the server has it.
    pub(crate) created: bool,
    /// Its `resourceVersion` as last seen (the PATCH precondition).
    pub(crate) resource_version: Option<String>,
    /// `count` as the server holds it.
    pub(crate) count: i32,
    pub(crate) first: Timestamp,
    pub(crate) last: Timestamp,
}

impl Stored {
    /// Nothing written yet; the first post is at `at`.
    pub(crate) fn unwritten(at: Timestamp) -> Self {
        Self {
            name: None,
            created: false,
            resource_version: None,
            count: 0,
            first: at,
            last: at,
        }
    }

    /// The Event is not (or no longer) ours on the server: the next write creates it under a
    /// new name.
    pub(crate) fn forget(&mut self) {
        self.name = None;
        self.created = false;
        self.resource_version = None;
    }
}

/// Everything one write of an Event object sends. Lives for the write only; the claim, the
/// message and the writer are shared with the series, not copied.
#[derive(Debug, Clone)]
pub(crate) struct EventRecord {
    pub(crate) name: String,
    pub(crate) writer: Arc<Writer>,
    /// The `resourceVersion` a PATCH requires the stored event to have.
    pub(crate) resource_version: Option<String>,
    pub(crate) claim: Arc<LiveClaim>,
    pub(crate) event_type: EventType,
    pub(crate) reason: &'static str,
    pub(crate) message: Arc<str>,
    pub(crate) count: i32,
    pub(crate) first: Timestamp,
    pub(crate) last: Timestamp,
}

/// How one write attempt ended.
pub(crate) enum WriteOutcome {
    /// Created or patched to the record's count; the new `resourceVersion`.
    Written {
        resource_version: Option<String>,
    },
    /// The server holds our event with `count` (a create answered 409 found it ours, or a
    /// patch answered 409 read it back).
    Stored {
        count: i32,
        resource_version: Option<String>,
    },
    /// A create hit 409 and the name belongs to another event.
    NameTaken,
    /// A patch (or the read after its 409) hit 404: the event expired.
    Expired,
    Failed(Failure),
}

/// One write attempt of a series: create (409: read back, ours or not) or patch on condition
/// of the last seen `resourceVersion` (409: read back; 404: expired).
pub(crate) async fn write(api: &ApiCaller, record: &EventRecord, create: bool) -> WriteOutcome {
    if !create {
        return match record.patch_count(api).await {
            Ok(resource_version) => WriteOutcome::Written { resource_version },
            Err(Failure::NotFound) => WriteOutcome::Expired,
            // The event changed since we last saw it (typically: an earlier attempt of ours
            // landed after all): read what it holds now.
            Err(Failure::Conflict) => match record.read_stored(api).await {
                Ok(Some(stored)) => WriteOutcome::Stored {
                    count: stored.count.unwrap_or(1),
                    resource_version: stored.metadata.resource_version,
                },
                Ok(None) => WriteOutcome::Expired,
                Err(failure) => WriteOutcome::Failed(failure),
            },
            Err(failure) => WriteOutcome::Failed(failure),
        };
    }
    match record.create(api).await {
        Ok(resource_version) => WriteOutcome::Written { resource_version },
        Err(Failure::Conflict) => match record.read_stored(api).await {
            Ok(Some(stored)) if record.is_same_as(&stored) => WriteOutcome::Stored {
                count: stored.count.unwrap_or(1),
                resource_version: stored.metadata.resource_version,
            },
            Ok(Some(_)) => WriteOutcome::NameTaken,
            // Gone between the 409 and the read: try the create again.
            Ok(None) => WriteOutcome::Failed(Failure::Retryable {
                after: None,
                detail: "409 on create, then the event was gone".to_owned(),
            }),
            Err(failure) => WriteOutcome::Failed(failure),
        },
        Err(failure) => WriteOutcome::Failed(failure),
    }
}

impl EventRecord {
    /// The Event object as written.
    pub(crate) fn to_event(&self) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.claim.name.namespace().to_owned()),
                annotations: Some(BTreeMap::from([(
                    WRITER_ANNOTATION.to_owned(),
                    self.writer.tag.clone(),
                )])),
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
            message: Some(self.message.to_string()),
            source: Some(EventSource {
                component: Some(self.writer.component.clone()),
                host: None,
            }),
            reporting_component: Some(self.writer.component.clone()),
            reporting_instance: Some(self.writer.instance.clone()),
            first_timestamp: Some(Time(self.first)),
            last_timestamp: Some(Time(self.last)),
            count: Some(self.count),
            event_time: None,
            ..Event::default()
        }
    }

    /// Whether `stored` is this event, written by this very poster (same writer tag, claim uid,
    /// type, reason, message, component and instance): a create answered 409 after a lost
    /// response wrote it already. Anything else under this name is someone else's.
    pub(crate) fn is_same_as(&self, stored: &Event) -> bool {
        stored
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(WRITER_ANNOTATION))
            == Some(&self.writer.tag)
            && stored.reporting_instance.as_deref() == Some(self.writer.instance.as_str())
            && stored.involved_object.uid.as_deref() == Some(self.claim.uid.as_str())
            && stored.type_.as_deref() == Some(self.event_type.as_str())
            && stored.reason.as_deref() == Some(self.reason)
            && stored.message.as_deref() == Some(&*self.message)
            && stored.source.as_ref().and_then(|s| s.component.as_deref())
                == Some(self.writer.component.as_str())
    }

    fn events_path(&self) -> String {
        format!("/api/v1/namespaces/{}/events", self.claim.name.namespace())
    }

    /// POST the event; returns the stored `resourceVersion`.
    pub(crate) async fn create(&self, api: &ApiCaller) -> Result<Option<String>, Failure> {
        let body = serde_json::to_vec(&self.to_event()).map_err(|e| Failure::Rejected {
            code: 0,
            detail: format!("cannot encode the event: {e}"),
        })?;
        let request = Request::new(self.events_path())
            .create(&PostParams::default(), body)
            .map_err(build_error)?;
        api.call("create", request)
            .await
            .map(|body| resource_version_of(&body))
    }

    /// PATCH `count` and `lastTimestamp` (a merge patch with absolute values) on condition that
    /// the stored event still has the `resourceVersion` last seen: a PATCH that lands after a
    /// newer one is refused (409) instead of turning the count back. Returns the new version.
    pub(crate) async fn patch_count(&self, api: &ApiCaller) -> Result<Option<String>, Failure> {
        let mut patch = serde_json::json!({
            "count": self.count,
            "lastTimestamp": Time(self.last),
        });
        if let Some(version) = &self.resource_version {
            patch["metadata"] = serde_json::json!({ "resourceVersion": version });
        }
        let request = Request::new(self.events_path())
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(patch))
            .map_err(build_error)?;
        api.call("patch", request)
            .await
            .map(|body| resource_version_of(&body))
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

/// The `metadata.resourceVersion` of an answer's object, if it has one.
///
/// Only that field is decoded: every other one (managedFields above all) is skipped unread,
/// so reading a write's answer costs a scan of its bytes, not a typed `ObjectMeta`.
fn resource_version_of(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<super::api::MetaOnly>(body)
        .ok()
        .and_then(|answer| answer.metadata.resource_version)
}

fn build_error(error: kube::core::request::Error) -> Failure {
    Failure::Rejected {
        code: 0,
        detail: format!("cannot build the request: {error}"),
    }
}

/// Names events `{claim}.{hex nanos}` like client-go, unique even when the clock stands still,
/// and unique across posters: the low 16 bits of the nanoseconds are this poster's tag (the
/// name's time is off by less than 66 µs), and further names at one instant step by 2^16.
#[derive(Debug)]
pub(crate) struct EventNamer {
    last_nanos: i128,
    tag: i128,
}

impl EventNamer {
    /// A namer for the poster whose tag is `tag`.
    pub(crate) fn new(tag: u64) -> Self {
        Self {
            last_nanos: i128::MIN,
            tag: i128::from(tag & 0xffff),
        }
    }

    /// The name for an event on `claim` at `at`; `random` supplies the fallback when the
    /// name would not be a valid DNS subdomain (over 253 characters).
    pub(crate) fn name(&mut self, claim: &str, at: Timestamp, random: u64) -> String {
        let mut nanos = (at.as_nanosecond() & !0xffff) | self.tag;
        if nanos <= self.last_nanos {
            nanos = self.last_nanos + 0x1_0000;
        }
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
        let mut namer = EventNamer::new(0xbeef);
        let a = namer.name("data", at, 1);
        let b = namer.name("data", at, 2);
        assert_ne!(a, b);
        assert_eq!(a, format!("data.{:x}", at.as_nanosecond() | 0xbeef));
        assert_eq!(
            b,
            format!("data.{:x}", (at.as_nanosecond() | 0xbeef) + 0x1_0000)
        );
        let other = EventNamer::new(0xf00d).name("data", at, 1);
        assert_ne!(a, other, "another poster at the same instant: another name");
        let long = "x".repeat(250);
        let fallback = namer.name(&long, at, 3);
        assert!(fallback.len() <= 253 && !fallback.starts_with('x'));
    }
}
