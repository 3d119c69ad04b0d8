//! Finding the claim an event belongs to (`docs/events.md` §4), from one of two [`ClaimSource`]s.
//!
//! Given the claim, read it for its uid; given only the volume, read PV `{vol}`, follow its
//! `spec.claimRef`, then read the claim and check its uid against the reference (a re-created
//! claim is not the one the volume was bound to).
//!
//! Where the claim's uid comes from:
//! - [`ClaimSource::Get`] (the default): one GET of the claim per burst of posts on it. RBAC:
//!   `get` on `persistentvolumeclaims`.
//! - [`ClaimSource::Reflector`]: a `kube::runtime` reflector keeps the metadata of every claim
//!   (a `PartialObjectMetadata` list and watch, cluster-wide), so a lookup costs no request
//!   and a re-created claim is seen as soon as its watch event arrives. A claim not (yet) in
//!   the store is read with a GET, so a claim created a moment ago is never skipped. RBAC:
//!   `list` and `watch` on `persistentvolumeclaims` (cluster-wide), and `get` for that fallback.
//!
//! Either way, a post that names only its volume also needs `get` on `persistentvolumes`, and
//! writing needs `create`, `patch` and `get` on core `events` (`get` reads an event back after
//! a 409). A ClusterRole for the reflector source:
//!
//! ```yaml
//! rules:
//!   - apiGroups: [""]
//!     resources: ["persistentvolumeclaims"]
//!     verbs: ["get", "list", "watch"]   # the GET source needs only "get"
//!   - apiGroups: [""]
//!     resources: ["persistentvolumes"]
//!     verbs: ["get"]
//!   - apiGroups: [""]
//!     resources: ["events"]
//!     verbs: ["create", "patch", "get"]
//! ```

use futures::StreamExt;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, GetParams};
use kube::core::{PartialObjectMeta, Request};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::task::JoinHandle;

use super::api::{ApiCaller, Failure, MetaOnly, VolumeClaimRef};
use crate::ids::{ClaimName, VolumeId};
use crate::metrics::SkipCause;

/// What names the claim of an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Subject {
    /// The caller named the claim.
    Claim(ClaimName),
    /// Only the volume is known: find the claim through the PV's claimRef.
    Volume(VolumeId),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Claim(claim) => write!(f, "claim {claim}"),
            Subject::Volume(volume) => write!(f, "volume {volume}"),
        }
    }
}

/// The live claim, as the event's `involvedObject` needs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct LiveClaim {
    pub(crate) name: ClaimName,
    pub(crate) uid: String,
    pub(crate) resource_version: Option<String>,
}

/// The result of a lookup.
#[derive(Debug)]
pub(crate) enum Lookup {
    Found(LiveClaim),
    Skipped { cause: SkipCause, claim: String },
    Failed(Failure),
}

/// Where the poster learns a claim's uid (see the module documentation for the RBAC of each).
///
/// ```
/// use csi_events::{PosterConfig, poster::ClaimSource};
/// let config = PosterConfig::default().claim_source(ClaimSource::Reflector);
/// assert_eq!(config.claim_source, ClaimSource::Reflector);
/// assert_eq!(PosterConfig::default().claim_source, ClaimSource::Get);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClaimSource {
    /// GET the claim once per burst of posts on it (needs only `get` on claims).
    #[default]
    Get,
    /// Keep every claim's metadata in a reflector (list + watch); fall back to a GET for a
    /// claim not in it yet.
    Reflector,
}

/// The running form of a [`ClaimSource`]: nothing, or the reflector's store and its task.
pub(crate) enum ClaimIndex {
    Get,
    Reflector {
        store: Store<PartialObjectMeta<PersistentVolumeClaim>>,
        task: JoinHandle<()>,
    },
}

impl ClaimIndex {
    /// Starts the source on the current runtime (the reflector's watch task, if any).
    pub(crate) fn start(source: ClaimSource, client: &kube::Client) -> Self {
        match source {
            ClaimSource::Get => ClaimIndex::Get,
            ClaimSource::Reflector => {
                let api: Api<PartialObjectMeta<PersistentVolumeClaim>> = Api::all(client.clone());
                let (store, writer) = reflector::store();
                let stream = reflector::reflector(
                    writer,
                    watcher(api, watcher::Config::default()).default_backoff(),
                );
                let task = tokio::spawn(async move {
                    // One warning per failing stretch (e.g. RBAC without list/watch on claims),
                    // debug lines for the retries; lookups fall back to a GET meanwhile.
                    let mut failing = false;
                    futures::pin_mut!(stream);
                    while let Some(event) = stream.next().await {
                        match event {
                            Err(error) if !failing => {
                                failing = true;
                                tracing::warn!(%error, "claim watch failed; claims are read with a GET until it recovers");
                            }
                            Err(error) => {
                                tracing::debug!(%error, "claim watch failed again");
                            }
                            Ok(_) => failing = false,
                        }
                    }
                });
                ClaimIndex::Reflector { store, task }
            }
        }
    }

    /// Waits until the reflector has listed the claims (at once for the GET source, or when
    /// the reflector has stopped). Never returns while the list is refused (RBAC).
    pub(crate) async fn ready(&self) {
        if let ClaimIndex::Reflector { store, .. } = self {
            let _ = store.wait_until_ready().await;
        }
    }

    /// Stops the reflector's watch (the poster has shut down).
    pub(crate) fn stop(&self) {
        if let ClaimIndex::Reflector { task, .. } = self {
            task.abort();
        }
    }

    /// The claim as the reflector holds it (`None`: not there, or no reflector).
    fn cached(&self, claim: &ClaimName) -> Option<LiveClaim> {
        let ClaimIndex::Reflector { store, .. } = self else {
            return None;
        };
        let key = ObjectRef::new(claim.name()).within(claim.namespace());
        let meta = store.get(&key)?;
        Some(LiveClaim {
            name: claim.clone(),
            uid: meta.metadata.uid.clone().unwrap_or_default(),
            resource_version: meta.metadata.resource_version.clone(),
        })
    }
}

impl Drop for ClaimIndex {
    fn drop(&mut self) {
        if let ClaimIndex::Reflector { task, .. } = self {
            task.abort();
        }
    }
}

/// Finds the claim of `subject`.
pub(crate) async fn find_claim(api: &ApiCaller, index: &ClaimIndex, subject: &Subject) -> Lookup {
    match subject {
        Subject::Claim(claim) => match read_claim(api, index, claim).await {
            Ok(Some(live)) => Lookup::Found(live),
            Ok(None) => Lookup::Skipped {
                cause: SkipCause::PvcNotFound,
                claim: claim.to_string(),
            },
            Err(failure) => Lookup::Failed(failure),
        },
        Subject::Volume(volume) => find_through_volume(api, index, volume).await,
    }
}

async fn find_through_volume(api: &ApiCaller, index: &ClaimIndex, volume: &VolumeId) -> Lookup {
    let request = match Request::new("/api/v1/persistentvolumes")
        .get(volume.as_str(), &GetParams::default())
    {
        Ok(request) => request,
        Err(error) => {
            return Lookup::Failed(Failure::Rejected {
                code: 0,
                detail: format!("cannot build the request for PV {volume}: {error}"),
            });
        }
    };
    let pv: VolumeClaimRef = match api
        .call("get", request)
        .await
        .map(|body| serde_json::from_slice(&body))
    {
        Ok(Ok(pv)) => pv,
        Ok(Err(error)) => return Lookup::Failed(unreadable("PersistentVolume", error)),
        Err(Failure::NotFound) => {
            return Lookup::Skipped {
                cause: SkipCause::PvNotFound,
                claim: format!("(PV {volume})"),
            };
        }
        Err(failure) => return Lookup::Failed(failure),
    };
    let reference = pv.spec.and_then(|spec| spec.claim_ref);
    let Some((namespace, name, bound_uid)) = reference.and_then(|r| match (r.namespace, r.name) {
        (Some(ns), Some(name)) if !ns.is_empty() && !name.is_empty() => Some((ns, name, r.uid)),
        _ => None,
    }) else {
        return Lookup::Skipped {
            cause: SkipCause::NoClaimRef,
            claim: format!("(PV {volume})"),
        };
    };
    let claim = ClaimName::new(namespace, name);
    match read_claim(api, index, &claim).await {
        Ok(Some(live)) => match bound_uid {
            Some(uid) if !uid.is_empty() && uid != live.uid => Lookup::Skipped {
                cause: SkipCause::PvcUidMismatch,
                claim: claim.to_string(),
            },
            _ => Lookup::Found(live),
        },
        Ok(None) => Lookup::Skipped {
            cause: SkipCause::PvcNotFound,
            claim: claim.to_string(),
        },
        Err(failure) => Lookup::Failed(failure),
    }
}

/// Reads a claim (from the reflector if it holds it, else with a GET): `Ok(None)` when it does
/// not exist.
async fn read_claim(
    api: &ApiCaller,
    index: &ClaimIndex,
    claim: &ClaimName,
) -> Result<Option<LiveClaim>, Failure> {
    if let Some(live) = index.cached(claim) {
        return Ok(Some(live));
    }
    let path = format!(
        "/api/v1/namespaces/{}/persistentvolumeclaims",
        claim.namespace()
    );
    let request = Request::new(path)
        .get(claim.name(), &GetParams::default())
        .map_err(|error| Failure::Rejected {
            code: 0,
            detail: format!("cannot build the request for claim {claim}: {error}"),
        })?;
    let body = match api.call("get", request).await {
        Ok(body) => body,
        Err(Failure::NotFound) => return Ok(None),
        Err(failure) => return Err(failure),
    };
    // Only the uid and resourceVersion are decoded (`MetaOnly`).
    let pvc: MetaOnly =
        serde_json::from_slice(&body).map_err(|e| unreadable("PersistentVolumeClaim", e))?;
    let uid = pvc.metadata.uid.unwrap_or_default();
    Ok(Some(LiveClaim {
        name: claim.clone(),
        uid,
        resource_version: pvc.metadata.resource_version,
    }))
}

fn unreadable(kind: &str, error: serde_json::Error) -> Failure {
    Failure::Retryable {
        after: None,
        detail: format!("the API server answered with an unreadable {kind}: {error}"),
    }
}
