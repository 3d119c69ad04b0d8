//! meta.k8s.io/v1 `Table` output (what `kubectl get` asks for with `as=Table`): the column
//! definitions and cell rules of kube-apiserver's printers (`pkg/printers/internalversion`)
//! for events, PVCs, PVs, nodes, pods, namespaces and volume attachments; Name/Age otherwise.

use super::pointer::Pointer;
use serde_json::{Value, json};

use super::events;
use super::resources::{ResourceDef, TableKind, View};

/// apimachinery's `duration.HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn since(value: Option<&Value>, now: jiff::Timestamp) -> String {
    match value
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    {
        Some(t) => human_duration(now.duration_since(t).as_secs()),
        None => "<unknown>".into(),
    }
}

fn s<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.ptr(pointer).and_then(Value::as_str).unwrap_or("")
}

fn col(name: &str, ty: &str, priority: i32, description: &str) -> Value {
    let mut c = json!({"name": name, "type": ty, "format": "", "description": description, "priority": priority});
    if name == "Name" {
        c["format"] = json!("name");
    }
    c
}

fn columns(kind: TableKind) -> Vec<Value> {
    let name = col(
        "Name",
        "string",
        0,
        "Name must be unique within a namespace.",
    );
    let age = col(
        "Age",
        "string",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
    match kind {
        TableKind::Event => vec![
            col(
                "Last Seen",
                "string",
                0,
                "The time at which the most recent occurrence of this event was recorded.",
            ),
            col(
                "Type",
                "string",
                0,
                "Type of this event (Normal, Warning), new types could be added in the future.",
            ),
            col(
                "Reason",
                "string",
                0,
                "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
            ),
            col(
                "Object",
                "string",
                0,
                "The object that this event is about.",
            ),
            col(
                "Subobject",
                "string",
                1,
                "The subobject this event is about.",
            ),
            col("Source", "string", 1, "The component reporting this event."),
            col(
                "Message",
                "string",
                0,
                "A human-readable description of the status of this operation.",
            ),
            col(
                "First Seen",
                "string",
                1,
                "The time at which the event was first recorded.",
            ),
            col(
                "Count",
                "string",
                1,
                "The number of times this event has occurred.",
            ),
            {
                let mut c = col(
                    "Name",
                    "string",
                    1,
                    "Name must be unique within a namespace.",
                );
                c["format"] = json!("name");
                c
            },
        ],
        TableKind::Pvc => vec![
            name,
            col(
                "Status",
                "string",
                0,
                "Phase represents the current phase of PersistentVolumeClaim.",
            ),
            col(
                "Volume",
                "string",
                0,
                "The binding reference to the PersistentVolume backing this claim.",
            ),
            col(
                "Capacity",
                "string",
                0,
                "The actual resources of the underlying volume.",
            ),
            col(
                "Access Modes",
                "string",
                0,
                "The actual access modes the volume backing the PVC has.",
            ),
            col("StorageClass", "string", 0, "StorageClass of the pvc"),
            col(
                "VolumeAttributesClass",
                "string",
                0,
                "VolumeAttributesClass of the pvc",
            ),
            age,
            col(
                "VolumeMode",
                "string",
                1,
                "volumeMode defines what type of volume is required by the claim.",
            ),
        ],
        TableKind::Pv => vec![
            name,
            col(
                "Capacity",
                "string",
                0,
                "capacity is the description of the persistent volume's resources and capacity.",
            ),
            col(
                "Access Modes",
                "string",
                0,
                "accessModes contains all ways the volume can be mounted.",
            ),
            col(
                "Reclaim Policy",
                "string",
                0,
                "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
            ),
            col(
                "Status",
                "string",
                0,
                "phase indicates if a volume is available, bound to a claim, or released by a claim.",
            ),
            col(
                "Claim",
                "string",
                0,
                "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
            ),
            col("StorageClass", "string", 0, "StorageClass of the pv"),
            col(
                "VolumeAttributesClass",
                "string",
                0,
                "VolumeAttributesClass of the pv",
            ),
            col(
                "Reason",
                "string",
                0,
                "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
            ),
            age,
            col(
                "VolumeMode",
                "string",
                1,
                "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
            ),
        ],
        TableKind::Node => vec![
            name,
            col("Status", "string", 0, "The status of the node"),
            col("Roles", "string", 0, "The roles of the node"),
            age,
            col(
                "Version",
                "string",
                0,
                "Kubelet Version reported by the node.",
            ),
            col(
                "Internal-IP",
                "string",
                1,
                "List of addresses reachable to the node. Queried from cloud provider, if available.",
            ),
            col(
                "External-IP",
                "string",
                1,
                "List of addresses reachable to the node. Queried from cloud provider, if available.",
            ),
            col(
                "OS-Image",
                "string",
                1,
                "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
            ),
            col(
                "Kernel-Version",
                "string",
                1,
                "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
            ),
            col(
                "Container-Runtime",
                "string",
                1,
                "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
            ),
        ],
        TableKind::Pod => vec![
            name,
            col(
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age,
            col(
                "IP",
                "string",
                1,
                "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            ),
            col(
                "Node",
                "string",
                1,
                "Name of the Node this pod is running on.",
            ),
            col(
                "Nominated Node",
                "string",
                1,
                "nominatedNodeName is set only when this pod preempts other pods on the node.",
            ),
            col(
                "Readiness Gates",
                "string",
                1,
                "If specified, all readiness gates will be evaluated for pod readiness.",
            ),
        ],
        TableKind::Namespace => vec![
            name,
            col("Status", "string", 0, "The status of the namespace"),
            age,
        ],
        TableKind::VolumeAttachment => vec![
            name,
            {
                let mut c = col(
                    "Attacher",
                    "string",
                    0,
                    "Attacher indicates the name of the volume driver that MUST handle this request.",
                );
                c["format"] = json!("name");
                c
            },
            col(
                "PV",
                "string",
                0,
                "Name of the persistent volume to attach.",
            ),
            col(
                "Node",
                "string",
                0,
                "The node that the volume should be attached to.",
            ),
            col(
                "Attached",
                "boolean",
                0,
                "Indicates the volume is successfully attached.",
            ),
            age,
        ],
        TableKind::StorageClass => vec![
            name,
            col(
                "Provisioner",
                "string",
                0,
                "provisioner indicates the type of the provisioner.",
            ),
            col(
                "ReclaimPolicy",
                "string",
                0,
                "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.",
            ),
            col(
                "VolumeBindingMode",
                "string",
                0,
                "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.",
            ),
            col(
                "AllowVolumeExpansion",
                "string",
                0,
                "allowVolumeExpansion shows whether the storage class allow volume expand.",
            ),
            age,
        ],
        TableKind::CsiNode => vec![
            name,
            col(
                "Drivers",
                "integer",
                0,
                "Drivers indicates the number of CSI drivers registered on the node",
            ),
            age,
        ],
        TableKind::Generic => vec![name, age],
    }
}

fn access_modes(modes: Option<&Value>) -> String {
    let list: Vec<&str> = modes
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (mode, short) in [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ] {
        if list.contains(&mode) {
            out.push(short);
        }
    }
    out.join(",")
}

/// `GetPersistentVolume(Claim)Class`: the beta annotation first, then spec.storageClassName.
fn storage_class(obj: &Value) -> String {
    match obj.ptr("/metadata/annotations/volume.beta.kubernetes.io~1storage-class") {
        Some(Value::String(class)) => class.clone(),
        _ => s(obj, "/spec/storageClassName").to_string(),
    }
}

fn or(value: &str, fallback: &str) -> String {
    if value.is_empty() {
        fallback.to_string()
    } else {
        value.to_string()
    }
}

fn cells(kind: TableKind, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let name = s(obj, "/metadata/name");
    let age = since(obj.ptr("/metadata/creationTimestamp"), now);
    let deleting = !s(obj, "/metadata/deletionTimestamp").is_empty();
    match kind {
        TableKind::Event => {
            let first = if obj.ptr("/firstTimestamp").and_then(Value::as_str).is_some() {
                since(obj.ptr("/firstTimestamp"), now)
            } else {
                since(obj.ptr("/eventTime"), now)
            };
            let mut last = if obj.ptr("/lastTimestamp").and_then(Value::as_str).is_some() {
                since(obj.ptr("/lastTimestamp"), now)
            } else {
                first.clone()
            };
            let mut count = obj.get("count").and_then(Value::as_i64).unwrap_or(0);
            if let Some(series) = obj.get("series").filter(|v| v.is_object()) {
                last = since(series.get("lastObservedTime"), now);
                count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
            } else if count == 0 {
                count = 1;
            }
            let io_kind = s(obj, "/involvedObject/kind").to_lowercase();
            let io_name = s(obj, "/involvedObject/name");
            let target = if io_name.is_empty() {
                io_kind
            } else {
                format!("{io_kind}/{io_name}")
            };
            let component = or(s(obj, "/source/component"), s(obj, "/reportingComponent"));
            let instance = or(s(obj, "/source/host"), s(obj, "/reportingInstance"));
            let source = if instance.is_empty() {
                component
            } else {
                format!("{component}, {instance}")
            };
            vec![
                json!(last),
                json!(s(obj, "/type")),
                json!(s(obj, "/reason")),
                json!(target),
                json!(s(obj, "/involvedObject/fieldPath")),
                json!(source),
                json!(s(obj, "/message").trim()),
                json!(first),
                json!(count),
                json!(name),
            ]
        }
        TableKind::Pvc => {
            let phase = if deleting {
                "Terminating".to_string()
            } else {
                s(obj, "/status/phase").to_string()
            };
            let volume = s(obj, "/spec/volumeName");
            let (capacity, modes) = if volume.is_empty() {
                (String::new(), String::new())
            } else {
                (
                    s(obj, "/status/capacity/storage").to_string(),
                    access_modes(obj.ptr("/status/accessModes")),
                )
            };
            let class = storage_class(obj);
            vec![
                json!(name),
                json!(phase),
                json!(volume),
                json!(capacity),
                json!(modes),
                json!(class),
                json!(or(s(obj, "/spec/volumeAttributesClassName"), "<unset>")),
                json!(age),
                json!(or(s(obj, "/spec/volumeMode"), "<unset>")),
            ]
        }
        TableKind::Pv => {
            let claim = match obj.ptr("/spec/claimRef") {
                Some(c) if c.is_object() => format!("{}/{}", s(c, "/namespace"), s(c, "/name")),
                _ => String::new(),
            };
            let phase = if deleting {
                "Terminating".to_string()
            } else {
                s(obj, "/status/phase").to_string()
            };
            let class = storage_class(obj);
            vec![
                json!(name),
                json!(s(obj, "/spec/capacity/storage")),
                json!(access_modes(obj.ptr("/spec/accessModes"))),
                json!(s(obj, "/spec/persistentVolumeReclaimPolicy")),
                json!(phase),
                json!(claim),
                json!(class),
                json!(or(s(obj, "/spec/volumeAttributesClassName"), "<unset>")),
                json!(s(obj, "/status/reason")),
                json!(age),
                json!(or(s(obj, "/spec/volumeMode"), "<unset>")),
            ]
        }
        TableKind::Node => {
            let mut status = Vec::new();
            if let Some(ready) = obj
                .ptr("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| s(c, "/type") == "Ready"))
            {
                status.push(if s(ready, "/status") == "True" {
                    "Ready"
                } else {
                    "NotReady"
                });
            }
            if status.is_empty() {
                status.push("Unknown");
            }
            if obj.ptr("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                status.push("SchedulingDisabled");
            }
            let mut roles: Vec<String> = obj
                .ptr("/metadata/labels")
                .and_then(Value::as_object)
                .map(|labels| {
                    labels
                        .iter()
                        .filter_map(|(k, v)| {
                            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                                (!role.is_empty()).then(|| role.to_string())
                            } else if k == "kubernetes.io/role" {
                                v.as_str().filter(|r| !r.is_empty()).map(str::to_string)
                            } else {
                                None
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            roles.sort();
            roles.dedup();
            let address = |ty: &str| {
                obj.ptr("/status/addresses")
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().find(|a| s(a, "/type") == ty))
                    .map(|a| s(a, "/address").to_string())
                    .unwrap_or_else(|| "<none>".into())
            };
            vec![
                json!(name),
                json!(status.join(",")),
                json!(if roles.is_empty() {
                    "<none>".to_string()
                } else {
                    roles.join(",")
                }),
                json!(age),
                json!(s(obj, "/status/nodeInfo/kubeletVersion")),
                json!(address("InternalIP")),
                json!(address("ExternalIP")),
                json!(or(s(obj, "/status/nodeInfo/osImage"), "<unknown>")),
                json!(or(s(obj, "/status/nodeInfo/kernelVersion"), "<unknown>")),
                json!(or(
                    s(obj, "/status/nodeInfo/containerRuntimeVersion"),
                    "<unknown>"
                )),
            ]
        }
        TableKind::Pod => {
            let total = obj
                .ptr("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let statuses = obj
                .ptr("/status/containerStatuses")
                .and_then(Value::as_array);
            let ready = statuses.map_or(0, |c| {
                c.iter()
                    .filter(|c| c.get("ready") == Some(&json!(true)))
                    .count()
            });
            let restarts: i64 = statuses.map_or(0, |c| {
                c.iter()
                    .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                    .sum()
            });
            let mut status = or(s(obj, "/status/reason"), s(obj, "/status/phase"));
            if deleting {
                status = "Terminating".into();
            }
            vec![
                json!(name),
                json!(format!("{ready}/{total}")),
                json!(status),
                json!(restarts.to_string()),
                json!(age),
                json!(or(s(obj, "/status/podIP"), "<none>")),
                json!(or(s(obj, "/spec/nodeName"), "<none>")),
                json!(or(s(obj, "/status/nominatedNodeName"), "<none>")),
                json!("<none>"),
            ]
        }
        TableKind::Namespace => vec![json!(name), json!(s(obj, "/status/phase")), json!(age)],
        TableKind::VolumeAttachment => vec![
            json!(name),
            json!(s(obj, "/spec/attacher")),
            json!(s(obj, "/spec/source/persistentVolumeName")),
            json!(s(obj, "/spec/nodeName")),
            json!(
                obj.ptr("/status/attached")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            ),
            json!(age),
        ],
        TableKind::StorageClass => {
            let default = [
                "storageclass.kubernetes.io/is-default-class",
                "storageclass.beta.kubernetes.io/is-default-class",
            ]
            .iter()
            .any(|a| {
                obj.ptr(&format!("/metadata/annotations/{}", a.replace('/', "~1")))
                    == Some(&json!("true"))
            });
            let shown = if default {
                format!("{name} (default)")
            } else {
                name.to_string()
            };
            vec![
                json!(shown),
                json!(s(obj, "/provisioner")),
                json!(or(s(obj, "/reclaimPolicy"), "Delete")),
                json!(or(s(obj, "/volumeBindingMode"), "Immediate")),
                json!(
                    obj.get("allowVolumeExpansion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string()
                ),
                json!(age),
            ]
        }
        TableKind::CsiNode => vec![
            json!(name),
            json!(
                obj.ptr("/spec/drivers")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            ),
            json!(age),
        ],
        TableKind::Generic => vec![json!(name), json!(age)],
    }
}

/// What a Table row's `object` holds (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// Nothing.
    None,
    /// PartialObjectMetadata (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl Include {
    /// From the `includeObject` query parameter.
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

/// A Table of `objects` (as the request's API shows them). `list` carries the list
/// resourceVersion and continue token; `None` for a single object.
pub fn table(
    include: Include,
    def: &ResourceDef,
    objects: &[Value],
    list: Option<(u64, Option<&str>)>,
    now: jiff::Timestamp,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|shown| {
            let core = if def.view == View::EventsV1 {
                events::v1_to_core(shown.clone()).0
            } else {
                shown.clone()
            };
            json!({
                "cells": cells(def.table, &core, now),
                "object": match include {
                    Include::None => Value::Null,
                    Include::Object => shown.clone(),
                    Include::Metadata => json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": shown.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    }),
                },
            })
        })
        .collect();
    let mut metadata = json!({});
    match list {
        Some((rv, cont)) => {
            metadata["resourceVersion"] = json!(rv.to_string());
            if let Some(c) = cont {
                metadata["continue"] = json!(c);
            }
        }
        None => {
            if let Some(rv) = objects
                .first()
                .and_then(|o| o.ptr("/metadata/resourceVersion"))
            {
                metadata["resourceVersion"] = rv.clone();
            }
        }
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns(def.table),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_apimachinery() {
        assert_eq!(human_duration(61), "61s");
        assert_eq!(human_duration(301), "5m1s");
        assert_eq!(human_duration(200), "3m20s");
        assert_eq!(human_duration(120), "2m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(50 * 3600), "2d2h");
    }
}
