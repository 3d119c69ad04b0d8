"""The Python `kubernetes` client against the fake-apiserver binary, unchanged.

Usage: python3 client_check.py KUBECONFIG
Prints one `ok: ...` line per check and `ALL OK` at the end; any failure raises.
"""
import datetime
import json
import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
events_v1 = client.EventsV1Api()
NS = "py"

core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
print("ok: create namespace")

pvc = core.create_namespaced_persistent_volume_claim(NS, {
    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
    "metadata": {"name": "data"},
    "spec": {"accessModes": ["ReadWriteMany"], "volumeMode": "Block",
             "resources": {"requests": {"storage": "1Gi"}}},
})
uid = pvc.metadata.uid
assert uid, "the claim has a uid"
assert core.read_namespaced_persistent_volume_claim("data", NS).metadata.uid == uid
print("ok: create and read a claim")

try:
    core.read_namespaced_persistent_volume_claim("missing", NS)
    raise AssertionError("reading a missing claim must fail")
except ApiException as error:
    assert error.status == 404, error.status
    body = json.loads(error.body)
    assert body["kind"] == "Status" and body["reason"] == "NotFound", body
    assert body["message"] == 'persistentvolumeclaims "missing" not found', body["message"]
print("ok: 404 NotFound Status")

now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
message = "[pvc-1]: KubeVirt live migration started - source: node-a, target: node-b, timeout: 5m0s"
core.create_namespaced_event(NS, client.CoreV1Event(
    metadata=client.V1ObjectMeta(name="data.1"),
    involved_object=client.V1ObjectReference(
        api_version="v1", kind="PersistentVolumeClaim", namespace=NS, name="data", uid=uid),
    reason="MigrationStarted", message=message, type="Normal", count=1,
    first_timestamp=now, last_timestamp=now,
    source=client.V1EventSource(component="rds-csi-controller"),
))
listed = core.list_namespaced_event(NS, field_selector=f"involvedObject.uid={uid}").items
assert len(listed) == 1 and listed[0].reason == "MigrationStarted" and listed[0].message == message, listed
assert core.list_namespaced_event(NS, field_selector="involvedObject.uid=other").items == []
print("ok: create an event, list it by involvedObject.uid")

# Through events.k8s.io/v1 a legacy event has `eventTime: null`, which the real server sends
# too and which client 37's models refuse: read the raw JSON, and check the models refuse it.
raw = events_v1.list_namespaced_event(
    NS, field_selector=f"regarding.uid={uid}", _preload_content=False)
seen = json.loads(raw.data)["items"]
assert len(seen) == 1 and seen[0]["note"] == message and seen[0]["regarding"]["uid"] == uid, seen
assert seen[0]["deprecatedCount"] == 1 and seen[0]["eventTime"] is None, seen[0]
try:
    events_v1.list_namespaced_event(NS)
    raise AssertionError("client 37 refuses eventTime: null, as against a real server")
except ValueError as error:
    assert "eventTime" in str(error), error
print("ok: the same event through events.k8s.io/v1 (regarding.uid, note, eventTime null)")

patched = core.patch_namespaced_event(
    "data.1", NS, {"count": 3}, _content_type="application/merge-patch+json")
assert patched.count == 3, patched.count
print("ok: merge patch of count")

# With no content type, this client sends a dict body as a strategic merge patch.
patched = core.patch_namespaced_event("data.1", NS, {"count": 4})
assert patched.count == 4, patched.count
patched = core.patch_namespaced_event(
    "data.1", NS, [{"op": "replace", "path": "/count", "value": 5}])
assert patched.count == 5, patched.count
print("ok: default patch content types (strategic merge for a dict, JSON patch for a list)")

rv = core.list_namespaced_event(NS).metadata.resource_version
core.create_namespaced_event(NS, client.CoreV1Event(
    metadata=client.V1ObjectMeta(name="data.2"),
    involved_object=client.V1ObjectReference(
        api_version="v1", kind="PersistentVolumeClaim", namespace=NS, name="data", uid=uid),
    reason="MigrationCompleted", message="done", type="Normal", count=1,
    first_timestamp=now, last_timestamp=now,
    source=client.V1EventSource(component="rds-csi-controller"),
))
stream = watch.Watch().stream(core.list_namespaced_event, NS, resource_version=rv, timeout_seconds=30)
first = next(stream)
assert first["type"] == "ADDED" and first["object"].metadata.name == "data.2", first
print("ok: watch from a resourceVersion sees the new event")

core.delete_namespaced_event("data.2", NS)
assert [e.metadata.name for e in core.list_namespaced_event(NS).items] == ["data.1"]
print("ok: delete")

# The real server answers a claim or volume delete with the object (ReturnDeletedObject): the
# client deserializes it as V1PersistentVolumeClaim / V1PersistentVolume.
deleted = core.delete_namespaced_persistent_volume_claim("data", NS)
assert isinstance(deleted, client.V1PersistentVolumeClaim), type(deleted)
assert deleted.metadata.name == "data" and deleted.metadata.deletion_timestamp is not None
assert deleted.metadata.finalizers == ["kubernetes.io/pvc-protection"], deleted.metadata.finalizers
try:
    core.read_namespaced_persistent_volume_claim("data", NS)
    raise AssertionError("an unused claim goes at once")
except ApiException as error:
    assert error.status == 404, error.status
core.create_persistent_volume({
    "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "py-pv"},
    "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
             "csi": {"driver": "csi.example.com", "volumeHandle": "h"}},
})
deleted = core.delete_persistent_volume("py-pv")
assert isinstance(deleted, client.V1PersistentVolume), type(deleted)
assert deleted.metadata.name == "py-pv"
print("ok: claim and volume deletes answer the object")
print("ALL OK")
