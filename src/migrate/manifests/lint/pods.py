"""A pod of the rendered set as the security, mesh and network rules see it: its owner,
namespace, labels, spec and ports, and whether Istio injects a sidecar into it.

Our own workloads give their pod template as rendered (`own_pods`). The pods the
operators make are modelled in `strimzi` and `eck`, the Helm releases' in `charts`;
`operated.all_pods` gathers them. Not a rule module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.manifests.lint import SetModel

if TYPE_CHECKING:
    from migrate.manifests.model import HelmRelease, Manifest


@dataclass
class Pod:
    """A pod (or the set of identical pods of one owner), with the object it comes from."""

    owner: str  # how a message names it: `Deployment ns/name`, `Kafka ns/x (broker pods)`
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)  # the pod spec; {} when not modelled
    file: str = ""
    operator: str = ""  # "" (ours), "strimzi", "eck", "helm"
    source: str = ""  # the upstream code the model follows
    manifest: Manifest | None = None
    release: HelmRelease | None = None
    ports: dict[str, int] = field(default_factory=dict)  # port name -> number, extra to spec

    def port_numbers(self) -> dict[str, int]:
        found = dict(self.ports)
        for container in self.spec.get("containers") or []:
            for port in container.get("ports") or []:
                if port.get("name"):
                    found[str(port["name"])] = int(port["containerPort"])
        return found

    def env(self) -> dict[str, Any]:
        """name -> value (or the `valueFrom` mapping) over the pod's containers."""
        found: dict[str, Any] = {}
        for container in self.spec.get("containers") or []:
            for var in container.get("env") or []:
                found[str(var.get("name"))] = var.get("value", var.get("valueFrom"))
        return found


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels, matchExpressions) against labels; {} selects all."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != str(value):
            return False
    for expression in selector.get("matchExpressions") or []:
        key, op = expression.get("key"), expression.get("operator")
        values = [str(v) for v in expression.get("values") or []]
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def dig(tree: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def namespace_labels(model: SetModel, namespace: str) -> dict[str, str]:
    """The rendered Namespace's labels plus the one Kubernetes sets on every namespace."""
    return model.namespace_labels(namespace) | {"kubernetes.io/metadata.name": namespace}


def injected(
    model: SetModel, namespace: str, labels: dict[str, str], annotations: dict[str, str]
) -> bool:
    """Whether Istio's webhook injects a sidecar (Istio docs, sidecar-injection: the
    pod's `sidecar.istio.io/inject` wins, then the namespace's `istio-injection` or
    `istio.io/rev`)."""
    pod = labels.get("sidecar.istio.io/inject", annotations.get("sidecar.istio.io/inject"))
    ns = model.namespace_labels(namespace)
    if str(pod).lower() == "false" or ns.get("istio-injection") == "disabled":
        return False
    if str(pod).lower() == "true":
        return True
    return ns.get("istio-injection") == "enabled" or "istio.io/rev" in ns


def is_injected(model: SetModel, pod: Pod) -> bool:
    return injected(model, pod.namespace, pod.labels, pod.annotations)


# -- our own workloads ------------------------------------------------------------------


def own_pods(model: SetModel) -> list[Pod]:
    return [
        Pod(
            owner=w.manifest.ref,
            namespace=w.manifest.namespace or "default",
            labels=w.labels,
            annotations=w.annotations,
            spec=w.pod,
            file=model.where(w.manifest),
            manifest=w.manifest,
        )
        for w in model.workloads
    ]


#: the cluster's DNS, which every pod calls
KUBE_DNS = Pod(
    owner="kube-dns (CoreDNS)",
    namespace="kube-system",
    labels={"k8s-app": "kube-dns"},
    operator="cluster",
    ports={"dns": 53, "dns-tcp": 53},
)
