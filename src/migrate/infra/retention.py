"""What a rollback or destroy keeps, as data: nothing that holds data is deleted by default.

Deleting a Namespace deletes every PVC in it; ECK deletes an Elasticsearch
cluster's PVCs with the resource unless told otherwise; a chart that ships
CRDs as templates takes every custom resource of those kinds with it on
uninstall. So, unless `pulumi.keep_data` is false in migrate.yaml:

- Namespaces, PVCs and stateful custom resources get `retain_on_delete`:
  Pulumi forgets them, Kubernetes keeps them;
- the releases of charts with CRDs in their templates are retained too;
- Elasticsearch gets `volumeClaimDeletePolicy: DeleteOnScaledownOnly`, a
  StatefulSet with volume claims `persistentVolumeClaimRetentionPolicy` Retain
  (Kubernetes' default, made explicit).

`plan` and `rollback` show `split` (kept / deleted) before asking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migrate.infra.graph import object_node

#: kinds retained on delete: they hold data, or delete what holds it
RETAINED_KINDS = frozenset(
    {"Namespace", "PersistentVolumeClaim", "Elasticsearch", "Kafka", "KafkaNodePool", "KafkaTopic"}
)
#: charts whose templates (not crds/) ship CRDs: uninstalling deletes the custom resources
CRD_TEMPLATE_CHARTS = frozenset({"eck-operator", "base", "keda"})

ECK_KEEP_POLICY = "DeleteOnScaledownOnly"


def retained_object(obj: dict[str, Any], keep_data: bool = True) -> bool:
    return keep_data and obj["kind"] in RETAINED_KINDS


def retained_release(release: dict[str, Any], keep_data: bool = True) -> bool:
    return keep_data and release["chart"] in CRD_TEMPLATE_CHARTS


def with_data_kept(obj: dict[str, Any], keep_data: bool = True) -> dict[str, Any]:
    """The object as provisioned: with the fields that keep its volumes (a copy; pure)."""
    if not keep_data:
        return obj
    spec = obj.get("spec") or {}
    if obj["kind"] == "Elasticsearch" and "volumeClaimDeletePolicy" not in spec:
        return {**obj, "spec": {**spec, "volumeClaimDeletePolicy": ECK_KEEP_POLICY}}
    if (
        obj["kind"] == "StatefulSet"
        and spec.get("volumeClaimTemplates")
        and "persistentVolumeClaimRetentionPolicy" not in spec
    ):
        policy = {"whenDeleted": "Retain", "whenScaled": "Retain"}
        return {**obj, "spec": {**spec, "persistentVolumeClaimRetentionPolicy": policy}}
    return obj


def _label(node: str) -> str:
    return node.split(":", 1)[1]


@dataclass(frozen=True)
class Split:
    """What removing a set of resources keeps and deletes, in words."""

    kept: tuple[str, ...]
    deleted: tuple[str, ...]

    def lines(self) -> list[str]:
        lines = []
        if self.kept:
            lines.append("kept (retained, not deleted): " + "; ".join(self.kept))
        if self.deleted:
            lines.append("deleted: " + ", ".join(self.deleted))
        return lines

    def to_dict(self) -> dict[str, list[str]]:
        return {"kept": list(self.kept), "deleted": list(self.deleted)}


def split(
    objects: list[dict[str, Any]], releases: list[dict[str, Any]], keep_data: bool = True
) -> Split:
    """Removing these objects and releases from a stack: what stays, what goes. Pure."""
    kept: list[str] = []
    deleted: list[str] = []
    for obj in objects:
        label = _label(object_node(obj))
        if obj["kind"] == "Namespace" and keep_data:
            kept.append(f"{label} (and every PVC in it)")
        elif obj["kind"] == "Elasticsearch" and keep_data:
            kept.append(f"{label} (its PVCs: volumeClaimDeletePolicy {ECK_KEEP_POLICY})")
        elif retained_object(obj, keep_data):
            kept.append(label)
        else:
            deleted.append(label)
            if obj["kind"] == "StatefulSet" and (obj.get("spec") or {}).get("volumeClaimTemplates"):
                kept.append(f"the PVCs of {label} (retention policy Retain)")
    for release in releases:
        label = f"Helm release {release['name']}"
        if retained_release(release, keep_data):
            kept.append(f"{label} (its chart ships CRDs as templates)")
        else:
            deleted.append(label)
    return Split(kept=tuple(kept), deleted=tuple(deleted))
