//! Finding the claim an event belongs to (events.md §4).
//!
//! Given the claim, read it for its uid; given only the volume, read PV `{vol}`, follow its
//! `spec.claimRef`, then read the claim and check its uid against the reference (a re-created
//! claim is not the one the volume was bound to).

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::GetParams;
use kube::core::Request;

use super::api::{ApiCaller, Failure};
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

/// Finds the claim of `subject`.
pub(crate) async fn find_claim(api: &ApiCaller, subject: &Subject) -> Lookup {
    match subject {
        Subject::Claim(claim) => match read_claim(api, claim).await {
            Ok(Some(live)) => Lookup::Found(live),
            Ok(None) => Lookup::Skipped {
                cause: SkipCause::PvcNotFound,
                claim: claim.to_string(),
            },
            Err(failure) => Lookup::Failed(failure),
        },
        Subject::Volume(volume) => find_through_volume(api, volume).await,
    }
}

async fn find_through_volume(api: &ApiCaller, volume: &VolumeId) -> Lookup {
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
    let pv: PersistentVolume = match api
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
    match read_claim(api, &claim).await {
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

/// Reads a claim: `Ok(None)` when it does not exist.
async fn read_claim(api: &ApiCaller, claim: &ClaimName) -> Result<Option<LiveClaim>, Failure> {
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
    let pvc: PersistentVolumeClaim =
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
