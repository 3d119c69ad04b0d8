//! The controllers whose work a client sees right after its own write, run in the same step
//! (under the store lock) so simulations stay deterministic:
//! - the `StorageObjectInUseProtection` admission plugin adds `kubernetes.io/pvc-protection`
//!   to new claims and `kubernetes.io/pv-protection` to new volumes;
//! - the pvc-protection controller removes its finalizer from a claim being deleted once no
//!   running Pod mounts it;
//! - the PV controller turns a Bound volume whose claim is gone `Released`;
//! - the kubelet of every Node holds its heartbeat Lease in `kube-node-lease` (so
//!   `kubectl describe node` shows it);
//! - the pv-protection controller removes its finalizer from a volume being deleted once it
//!   is not Bound;
//! - the namespace controller empties a Terminating namespace, then removes it (a little
//!   later, on the server's clock: [`NAMESPACE_CLEANUP_DELAY`]).

use super::pointer::Pointer;
use serde_json::{Value, json};

use std::sync::Arc;

use crate::clock::SharedClock;

use super::store::{ChangeType, Key, State, Store};

/// The claim protection finalizer.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// The volume protection finalizer.
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

/// Adds `finalizer` to the object unless it is there (the `StorageObjectInUseProtection`
/// admission, which the claim and volume strategies run on create).
pub fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let list = meta.entry("finalizers").or_insert_with(|| json!([]));
    if let Some(list) = list.as_array_mut()
        && !list.iter().any(|f| f == finalizer)
    {
        list.push(json!(finalizer));
    }
}

fn s<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.ptr(pointer).and_then(Value::as_str).unwrap_or("")
}

fn deleting(obj: &Value) -> bool {
    !s(obj, "/metadata/deletionTimestamp").is_empty()
}

fn has_finalizer(obj: &Value, finalizer: &str) -> bool {
    obj.ptr("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|f| f == finalizer))
}

fn claim_in_use(state: &State, namespace: &str, claim: &str) -> bool {
    state.objects_of("pods", Some(namespace)).any(|(_, pod)| {
        !matches!(s(pod, "/status/phase"), "Succeeded" | "Failed")
            && pod
                .ptr("/spec/volumes")
                .and_then(Value::as_array)
                .is_some_and(|v| {
                    v.iter()
                        .any(|vol| s(vol, "/persistentVolumeClaim/claimName") == claim)
                })
    })
}

/// Removes `finalizer`; the object goes when it was the last one.
fn release(state: &mut State, key: Key, finalizer: &str) {
    let Some(mut obj) = state.get(&key).map(|o| Value::clone(o)) else {
        return;
    };
    if let Some(list) = obj
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    {
        list.retain(|f| f != finalizer);
    }
    let done = obj
        .ptr("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        && done
    {
        meta.remove("finalizers");
    }
    if done {
        state.remove_as(&key, obj);
    } else {
        state.put(key, obj, ChangeType::Modified);
    }
}

/// The objects of `storage` being deleted (a `deletionTimestamp`), in key order: read from
/// the store's set of them, not a scan.
fn terminating<'a>(
    state: &'a State,
    storage: &'static str,
) -> impl Iterator<Item = (Key, &'a Value)> + 'a {
    state
        .terminating(storage)
        .into_iter()
        .filter_map(move |k| state.get(&k).map(|v| (k, v.value())))
}

/// Runs the controllers until nothing changes. Each pass reads only the claims and volumes
/// being deleted and the volumes of removed claims (the store's indexes), so its cost does
/// not grow with the number of objects stored.
pub fn settle(state: &mut State) {
    loop {
        let mut changed = false;
        for (ns, name, uid) in state.take_removed_claims() {
            let bound: Vec<Key> = state
                .volumes_claiming(&ns, &name)
                .into_iter()
                .filter_map(|k| state.get(&k).map(|pv| (k, pv)))
                .filter(|(_, pv)| {
                    s(pv, "/status/phase") == "Bound"
                        && s(pv, "/spec/claimRef/namespace") == ns
                        && s(pv, "/spec/claimRef/name") == name
                        && (s(pv, "/spec/claimRef/uid").is_empty()
                            || s(pv, "/spec/claimRef/uid") == uid)
                })
                .map(|(k, _)| k)
                .collect();
            for key in bound {
                if let Some(mut pv) = state.get(&key).map(|o| Value::clone(o)) {
                    pv["status"]["phase"] = json!("Released");
                    state.put(key, pv, ChangeType::Modified);
                    changed = true;
                }
            }
        }
        let claims: Vec<Key> = terminating(state, "persistentvolumeclaims")
            .filter(|(_, o)| deleting(o) && has_finalizer(o, PVC_PROTECTION))
            .map(|(k, _)| k)
            .filter(|k| !claim_in_use(state, &k.1, &k.2))
            .collect();
        for key in claims {
            release(state, key, PVC_PROTECTION);
            changed = true;
        }
        let volumes: Vec<Key> = terminating(state, "persistentvolumes")
            .filter(|(_, o)| {
                deleting(o) && has_finalizer(o, PV_PROTECTION) && s(o, "/status/phase") != "Bound"
            })
            .map(|(k, _)| k)
            .collect();
        for key in volumes {
            release(state, key, PV_PROTECTION);
            changed = true;
        }
        if !changed {
            return;
        }
    }
}

/// The node's heartbeat Lease (`kube-node-lease/<node>`), as its kubelet keeps it; created
/// with the Node when missing.
pub fn node_lease(state: &mut State, node: &Value, now: &jiff::Timestamp) {
    let name = s(node, "/metadata/name").to_string();
    let key: Key = ("leases", "kube-node-lease".to_string(), name.clone());
    if name.is_empty()
        || state.contains(&key)
        || !state.contains(&("namespaces", String::new(), "kube-node-lease".to_string()))
    {
        return;
    }
    let uid = state.new_uid();
    let renew = now.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string();
    let created = jiff::Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_default();
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": "kube-node-lease",
            "uid": uid,
            "creationTimestamp": created,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name,
                                 "uid": s(node, "/metadata/uid")}],
        },
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": renew},
    });
    state.put(key, lease, ChangeType::Added);
}

/// How long after its deletion a namespace and its contents are gone (the namespace
/// controller's work), on the server's clock.
pub const NAMESPACE_CLEANUP_DELAY: std::time::Duration = std::time::Duration::from_secs(5);

/// The namespace controller: [`NAMESPACE_CLEANUP_DELAY`] after a namespace turned
/// Terminating (on `clock`), deletes everything in it, then the namespace itself.
pub fn finalize_namespace_later(clock: SharedClock, store: Arc<Store>, namespace: String) {
    tokio::spawn(async move {
        clock.sleep(NAMESPACE_CLEANUP_DELAY).await;
        finalize_namespace(&store, &namespace);
    });
}

/// The namespace controller's step: deletes everything in `namespace`, then the namespace.
fn finalize_namespace(store: &Store, namespace: &str) {
    {
        let mut state = store.lock();
        let inside: Vec<Key> = state
            .objects()
            .map(|(k, _)| k)
            .filter(|k| k.0 != "namespaces" && k.1 == namespace)
            .map(|(storage, ns, name)| (storage, ns.to_owned(), name.to_owned()))
            .collect();
        for key in inside {
            state.remove(&key);
        }
        state.remove(&("namespaces", String::new(), namespace.to_owned()));
        settle(&mut state);
    }
}
