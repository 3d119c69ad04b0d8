//! The field manager against its reference implementation and the real notation.

use serde_json::{Value, json};

use super::apply::*;
use super::fields::*;
use super::fields_v1::*;
use super::reference;
use super::update::*;

#[test]
fn fields_v1_of_a_claim_matches_the_real_notation() {
    let claim = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "c", "labels": {"app": "a"}, "finalizers": ["x"]},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Pending"}
    });
    let update = field_set(&claim, true, Operation::Update);
    assert_eq!(
        to_fields_v1(&update),
        json!({
            "f:metadata": {"f:finalizers": {".": {}, "v:\"x\"": {}}, "f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:accessModes": {}, "f:resources": {"f:requests": {".": {}, "f:storage": {}}}}
        })
    );
    let mut back = FieldSet::new();
    from_fields_v1(&to_fields_v1(&update), &mut Vec::new(), &mut back);
    assert_eq!(back, update);
    let applied = field_set(&claim, true, Operation::Apply);
    assert_eq!(
        to_fields_v1(&applied),
        json!({
            "f:metadata": {"f:finalizers": {"v:\"x\"": {}}, "f:labels": {"f:app": {}}},
            "f:spec": {"f:accessModes": {}, "f:resources": {"f:requests": {"f:storage": {}}}}
        })
    );
}

#[test]
fn keyed_list_items_use_k_notation() {
    let pod = json!({"spec": {"containers": [{"name": "c", "image": "i"}]}});
    let fv = to_fields_v1(&field_set(&pod, true, Operation::Apply));
    assert_eq!(
        fv,
        json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}})
    );
}

#[test]
fn update_managers_come_from_the_query_or_the_user_agent() {
    assert_eq!(
        update_manager(Some("editor"), "kubectl/v1.32.4 (linux/amd64)"),
        "editor"
    );
    assert_eq!(
        update_manager(None, "kubectl/v1.32.4 (linux/amd64)"),
        "kubectl"
    );
    assert_eq!(update_manager(Some(""), "kube-rs/5.0"), "kube-rs");
}

#[test]
fn conflict_paths_read_like_the_real_server() {
    let path: Path = vec![
        "f:spec".into(),
        "f:containers".into(),
        "k:{\"name\":\"c\"}".into(),
        "f:image".into(),
    ];
    assert_eq!(path_text(&path), ".spec.containers[name=\"c\"].image");
}

/// A writer for the comparisons.
fn writer<'a>(manager: &'a str, subresource: &'a str, has_status: bool) -> Writer<'a> {
    Writer {
        manager,
        api_version: "v1".into(),
        subresource,
        now: "2024-01-01T00:00:00Z",
        has_status,
    }
}

/// The writers tried on every object: plain, status subresource, a kind without status.
const WRITERS: [(&str, &str, bool); 4] = [
    ("kubectl", "", true),
    ("kube-rs", "", false),
    ("controller", "status", true),
    ("kubectl", "status", true),
];

/// Checks the field sets and `fieldsV1` of `obj` against the reference.
fn same_field_sets(obj: &Value) {
    for has_status in [false, true] {
        for op in [Operation::Apply, Operation::Update] {
            let set = field_set(obj, has_status, op);
            assert_eq!(set, reference::field_set(obj, has_status, op), "{obj}");
            assert_eq!(to_fields_v1(&set), reference::to_fields_v1(&set), "{obj}");
            if let Some(map) = obj.as_object() {
                assert_eq!(
                    Value::Object(fields_v1_of(map, has_status, op)),
                    reference::to_fields_v1(&set),
                    "{obj}"
                );
            }
        }
    }
}

/// Runs a create of `first` and then writes of each of `rest` (updates, applies with
/// and without force) through both implementations, comparing every result.
fn same_histories(first: &Value, rest: &[Value]) {
    same_field_sets(first);
    for (n, (m, sub, hs)) in WRITERS.iter().enumerate() {
        let w = writer(m, sub, *hs);
        let mut ours = first.clone();
        let mut theirs = first.clone();
        record_update(None, &mut ours, &w);
        reference::record_update(None, &mut theirs, &w);
        assert_eq!(ours, theirs, "create of {first}");
        for (i, next) in rest.iter().enumerate() {
            same_field_sets(next);
            // Every step another writer; the new object carries the stored managedFields
            // (as a client sending the object back does) unless it has its own.
            let (m, sub, hs) = WRITERS[(n + i + 1) % WRITERS.len()];
            let w = writer(m, sub, hs);
            let mut new = next.clone();
            if new.pointer("/metadata/managedFields").is_none()
                && let (Some(meta), Some(mf)) = (
                    new.get_mut("metadata").and_then(Value::as_object_mut),
                    ours.pointer("/metadata/managedFields"),
                )
            {
                meta.insert("managedFields".into(), mf.clone());
            }
            let mut new_ours = new.clone();
            let mut new_theirs = new.clone();
            record_update(Some(&ours), &mut new_ours, &w);
            reference::record_update(Some(&theirs), &mut new_theirs, &w);
            assert_eq!(new_ours, new_theirs, "update of {ours} to {new}");
            for force in [false, true] {
                let a = apply(&ours, next, force, &w);
                let b = reference::apply(&theirs, next, force, &w);
                assert_eq!(a, b, "apply of {next} over {ours}");
            }
            ours = new_ours;
            theirs = new_theirs;
        }
    }
}

/// Objects of the served kinds, and updates of them.
fn corpus() -> Vec<Vec<Value>> {
    let claim = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "c", "namespace": "ns", "uid": "u1", "resourceVersion": "5",
            "creationTimestamp": "2024-01-01T00:00:00Z", "generation": 1,
            "labels": {"app": "a", "tier": "db"},
            "annotations": {"volume.kubernetes.io/selected-node": "n1"},
            "finalizers": ["kubernetes.io/pvc-protection"],
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "o1",
                                 "controller": true}]
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                 "volumeMode": "Filesystem",
                 "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Pending"}
    });
    let mut claim2 = claim.clone();
    claim2["metadata"]["labels"] = json!({"app": "b", "new": "x"});
    claim2["metadata"]["finalizers"] = json!(["kubernetes.io/pvc-protection", "other/f"]);
    claim2["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
    claim2["status"] = json!({"phase": "Bound", "capacity": {"storage": "2Gi"}});
    let mut claim3 = claim2.clone();
    claim3["metadata"]
        .as_object_mut()
        .map(|m| m.remove("labels"));
    claim3["metadata"]["annotations"] = json!({});
    claim3["metadata"]["finalizers"] = json!([]);
    claim3["spec"]["volumeName"] = json!("pv1");
    claim3["spec"]["storageClassName"] = Value::Null;
    let pv = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "pv1", "labels": {}},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "csi": {"driver": "d", "volumeHandle": "h", "volumeAttributes": {"a": "1"}},
                 "claimRef": {"name": "c", "namespace": "ns"},
                 "persistentVolumeReclaimPolicy": "Delete"},
        "status": {"phase": "Available"}
    });
    let mut pv2 = pv.clone();
    pv2["spec"]["claimRef"] = json!({"name": "c", "namespace": "ns", "uid": "u1"});
    pv2["spec"]["csi"]["volumeAttributes"] = json!({"a": "2", "b": null});
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
        "spec": {"taints": [{"key": "k1", "effect": "NoSchedule"},
                            {"key": "k2", "value": "v", "effect": "NoExecute"}]},
        "status": {"allocatable": {"cpu": "4"}, "capacity": {"cpu": "4"},
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}
    });
    let mut node2 = node.clone();
    node2["spec"]["taints"] = json!([{"key": "k1", "effect": "NoExecute"}]);
    node2["spec"]["unschedulable"] = json!(true);
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "generateName": "p-"},
        "spec": {"containers": [
            {"name": "c", "image": "i", "ports": [{"containerPort": 80, "protocol": "TCP"}],
             "resources": {"limits": {"cpu": "1"}, "requests": {}},
             "env": [{"name": "A", "value": "1"}],
             "volumeMounts": [{"mountPath": "/data", "name": "v"}]},
            {"name": "d", "image": "j"}],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}],
            "nodeSelector": {"disk": "ssd"}},
        "status": {"phase": "Running"}
    });
    let mut pod2 = pod.clone();
    pod2["spec"]["containers"][0]["image"] = json!("i2");
    pod2["spec"]["containers"][1] = json!({"name": "e", "image": "k"});
    pod2["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080}]);
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e.1", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns", "uid": "u"},
        "reason": "Started", "message": "started", "type": "Normal", "count": 1,
        "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z",
        "source": {"component": "kubelet"}, "reportingComponent": "",
        "eventTime": null
    });
    let mut event2 = event.clone();
    event2["count"] = json!(2);
    event2["lastTimestamp"] = json!("2024-01-01T00:01:00Z");
    let attachment = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
        "metadata": {"name": "va", "finalizers": ["external-attacher/d"]},
        "spec": {"attacher": "d", "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}},
        "status": {"attached": true, "attachmentMetadata": {"dev": "/dev/x"}}
    });
    let mut attachment2 = attachment.clone();
    attachment2["status"] = json!({"attached": false, "detachError": {"message": "m"}});
    let class = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "d", "parameters": {"type": "ssd", "fs": "ext4"},
        "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": true, "mountOptions": []
    });
    let mut class2 = class.clone();
    class2["parameters"] = json!({"type": "hdd"});
    class2["metadata"]["managedFields"] = json!([{}]);
    let odd = json!({
        "metadata": {"name": "x", "ownerReferences": [{"uid": "a"}, {"uid": "a", "x": 1}, {"name": "no uid"}]},
        "spec": {"containers": [{"name": "c"}, {"name": "c", "image": "i"}, {"name": null}],
                 "finalizers": ["a", "a", 1, {"o": 1}], "empty": {}, "list": [],
                 "ports": [{"containerPort": 1.5}, {"containerPort": -0.0}, {"containerPort": 0.0}]}
    });
    let mut odd2 = odd.clone();
    odd2["spec"]["containers"] = json!([{"name": "c", "image": "j"}, {"name": "c"}]);
    odd2["spec"]["ports"] = json!([{"containerPort": 0.0, "x": 1}]);
    vec![
        vec![claim, claim2, claim3],
        vec![pv, pv2],
        vec![node, node2],
        vec![pod, pod2],
        vec![event, event2],
        vec![attachment, attachment2],
        vec![class, class2],
        vec![odd, odd2],
        vec![
            json!({"metadata": {}}),
            json!({"metadata": {"labels": {"a": "b"}}}),
        ],
        vec![
            json!({"metadata": {"name": "only"}, "status": {"x": 1}}),
            json!({"metadata": 3}),
        ],
        vec![
            json!(null),
            json!([1]),
            json!({"metadata": {"finalizers": {"x": 1}}}),
        ],
    ]
}

#[test]
fn rewritten_functions_match_the_reference_on_the_served_kinds() {
    for history in corpus() {
        same_histories(&history[0], &history[1..]);
    }
}

mod random {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    /// Field names: the ones with a meaning here, and some without.
    fn key() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "name",
            "key",
            "uid",
            "type",
            "containerPort",
            "labels",
            "annotations",
            "finalizers",
            "containers",
            "ports",
            "taints",
            "ownerReferences",
            "conditions",
            "requests",
            "spec",
            "status",
            "metadata",
            "image",
            "value",
            "x",
            "y",
        ])
        .prop_map(String::from)
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-1i64..3).prop_map(Value::from),
            prop::sample::select(vec![0.0, -0.0, 1.5]).prop_map(|f| json!(f)),
            prop::sample::select(vec!["a", "b", "c\"q"]).prop_map(Value::from),
        ]
    }

    fn object(inner: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
        prop::collection::btree_map(key(), inner, 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>()))
    }

    /// JSON-ish values, with lists of keyed items in them.
    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                object(inner.clone()),
                prop::collection::vec(
                    (
                        prop::sample::select(vec!["name", "key", "uid", "type", "containerPort"]),
                        leaf(),
                        object(inner),
                    ),
                    0..4,
                )
                .prop_map(|items| {
                    Value::Array(
                        items
                            .into_iter()
                            .map(|(k, v, mut o)| {
                                if let Some(m) = o.as_object_mut() {
                                    m.insert(k.into(), v);
                                }
                                o
                            })
                            .collect(),
                    )
                }),
            ]
        })
    }

    /// An object: a metadata with tracked and untracked keys, and other fields.
    fn root() -> impl Strategy<Value = Value> {
        let meta_key = prop::sample::select(vec![
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "labels",
            "annotations",
            "finalizers",
            "ownerReferences",
            "x",
        ]);
        (
            prop::collection::btree_map(meta_key.prop_map(String::from), value(), 0..5),
            prop::collection::btree_map(key(), value(), 0..5),
        )
            .prop_map(|(meta, mut rest)| {
                rest.insert("metadata".into(), Value::Object(meta.into_iter().collect()));
                Value::Object(rest.into_iter().collect())
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn random_objects_match_the_reference(
            first in root(),
            patch in root(),
            other in root(),
        ) {
            let mut merged = first.clone();
            crate::api::patch::strategic_merge(&mut merged, &patch);
            super::same_histories(&first, &[merged, other]);
        }

        #[test]
        fn random_values_match_the_reference(v in value()) {
            super::same_field_sets(&v);
        }
    }
}

/// The side-by-side walk says of every path what `update_tracks` says of it, over objects
/// and trees with `f:`, `k:` and `v:` elements (plain and not), metadata and its untracked
/// fields, lists, string maps, nulls, and an object that is not one.
#[test]
fn the_side_by_side_walk_tracks_each_path_as_update_tracks_does() {
    let objects = [
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x", "y"],
                         "ownerReferences": [{"uid": "u"}], "uid": "u", "annotations": {}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "empty": {}, "null": null,
                     "list": [1, 2], "nodeSelector": {"k": "v"}},
            "status": {"phase": "Running"}
        }),
        json!({"metadata": "text", "spec": []}),
        json!({"metadata": {}}),
        json!({}),
        json!([1]),
        json!("text"),
    ];
    let tree = json!({
        ".": {},
        "f:apiVersion": {},
        "f:metadata": {
            ".": {},
            "f:name": {}, "f:uid": {}, "f:missing": {},
            "f:labels": {".": {}, "f:a": {}, "f:b": {}},
            "f:annotations": {},
            "f:finalizers": {".": {}, "v:\"x\"": {}, "v:\"z\"": {}, "v:\"a\\\"b\"": {},
                             "v:\"x\"2": {"f:deeper": {}}, "v:1": {}},
            "f:ownerReferences": {".": {}, "k:{\"uid\":\"u\"}": {".": {}, "f:uid": {}}},
        },
        "f:spec": {
            "f:containers": {"k:{\"name\":\"c\"}": {"f:image": {}}},
            "f:empty": {}, "f:null": {}, "f:list": {}, "f:nodeSelector": {".": {}, "f:k": {}},
            "f:absent": {"f:deeper": {}},
            "v:\"top\"": {}, "i:0": {},
        },
        "v:\"root\"": {},
        "k:{}": {"f:x": {}},
        "f:status": {"f:phase": {}},
        "plain": {},
        "f:spec2": "not an object",
    });
    for obj in &objects {
        let mut seen = 0;
        each_update_tracked(&tree, obj, &mut |path, tracked| {
            assert_eq!(tracked, update_tracks(obj, path), "{path:?} in {obj}");
            seen += 1;
        });
        assert!(seen > 30, "{seen} paths walked");
    }
}
