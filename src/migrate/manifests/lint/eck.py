"""The pods the ECK operator makes from an `Elasticsearch` (one set per nodeSet) and a
`Kibana`, merged with their podTemplate as the pinned operator merges them. Not a rule
module: `operated.all_pods` gathers them.
"""

from __future__ import annotations

from typing import Any

from migrate.manifests.lint import SetModel
from migrate.manifests.lint.pods import Pod, dig

ECK_KIBANA_SRC = (
    "cloud-on-k8s v3.2.0 pkg/controller/kibana/pod.go (WithContainersSecurityContext before "
    "WithInitContainers), kibana/initcontainer/prepare_fs.go (NewInitContainer); v2.14.0 "
    "kibana/init_configuration.go (elastic-internal-init-config)"
)
ECK_ES_SRC = (
    "cloud-on-k8s pkg/controller/elasticsearch/securitycontext/securitycontext.go, "
    "nodespec/podspec.go (WithContainersSecurityContext)"
)


def _version(text: str) -> tuple[int, ...]:
    digits = []
    for part in str(text).split(".")[:3]:
        number = "".join(ch for ch in part if ch.isdigit())
        digits.append(int(number) if number else 0)
    return tuple(digits)


def _merge_containers(
    user: list[dict[str, Any]], built: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """ECK's merge by name: the user's container is the base, ECK's fills what it lacks
    (the securityContext is not inherited: pod_template.go WithInitContainers)."""
    by_name = {c.get("name"): c for c in user}
    merged = [by_name.pop(c["name"], c) for c in built]
    return merged + list(by_name.values())


def eck_pods(model: SetModel) -> list[Pod]:
    release = model.release("eck-operator")
    operator = _version(release.version) if release else (2, 14, 0)
    pods = []
    for es in model.of_kind("Elasticsearch"):
        ns, version = es.namespace or "default", _version(dig(es.obj, "spec", "version") or "8")
        default: dict[str, Any] = {"privileged": False, "allowPrivilegeEscalation": False}
        if version >= (8, 0, 0):
            default["capabilities"] = {"drop": ["ALL"]}
        if version >= (8, 8, 0):
            default["runAsNonRoot"] = True
        for node_set in dig(es.obj, "spec", "nodeSets") or []:
            template = node_set.get("podTemplate") or {}
            user = template.get("spec") or {}
            spec = dict(user)
            spec["containers"] = _merge_containers(
                user.get("containers") or [], [{"name": "elasticsearch"}]
            )
            spec["initContainers"] = _merge_containers(
                user.get("initContainers") or [],
                [
                    {"name": "elastic-internal-init-filesystem"},
                    {"name": "elastic-internal-suspend"},
                ],
            )
            for key in ("containers", "initContainers"):
                spec[key] = [{"securityContext": dict(default)} | c for c in spec[key]]
            if not spec.get("securityContext") and version >= (8, 0, 0):
                spec["securityContext"] = {"fsGroup": 1000}
            meta = template.get("metadata") or {}
            pods.append(
                Pod(
                    owner=f"Elasticsearch {ns}/{es.name} (nodeSet {node_set.get('name')})",
                    namespace=ns,
                    labels=dict(meta.get("labels") or {})
                    | {
                        "common.k8s.elastic.co/type": "elasticsearch",
                        "elasticsearch.k8s.elastic.co/cluster-name": es.name,
                        "elasticsearch.k8s.elastic.co/statefulset-name": (
                            f"{es.name}-es-{node_set.get('name')}"
                        ),
                    },
                    annotations=dict(meta.get("annotations") or {}),
                    spec=spec,
                    file=model.where(es),
                    operator="eck",
                    source=ECK_ES_SRC,
                    manifest=es,
                    ports={"https": 9200, "transport": 9300},
                )
            )
    for kb in model.of_kind("Kibana"):
        ns = kb.namespace or "default"
        template = dig(kb.obj, "spec", "podTemplate") or {}
        user = template.get("spec") or {}
        spec = dict(user)
        declared = {
            str(c.get("name"))
            for key in ("containers", "initContainers")
            for c in user.get(key) or []
        }
        spec["containers"] = _merge_containers(user.get("containers") or [], [{"name": "kibana"}])
        if operator >= (3, 0, 0):
            # ECK 3 renamed it (pkg/controller/kibana/volume/volume.go InitContainerName) and
            # adds it after the default securityContext is set (pkg/controller/kibana/pod.go:
            # WithContainersSecurityContext, then WithInitContainers): it gets none, unless
            # the podTemplate declares an init container of that name
            init: dict[str, Any] = {"name": "elastic-internal-init"}
        else:
            init = {
                "name": "elastic-internal-init-config",
                "securityContext": {"privileged": False},
            }
        spec["initContainers"] = _merge_containers(user.get("initContainers") or [], [init])
        if operator >= (2, 16, 0):  # ECK 2.16 hardened Kibana: pkg/controller/kibana/pod.go
            hardened = {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "privileged": False,
                "runAsUser": 1000,
            }
            for key in ("containers", "initContainers"):
                spec[key] = [
                    c
                    if c.get("securityContext")
                    or (
                        operator >= (3, 0, 0)
                        and c["name"] == init["name"]
                        and c["name"] not in declared
                    )
                    else c | {"securityContext": hardened}
                    for c in spec[key]
                ]
            spec.setdefault(
                "securityContext", {"fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
            )
        meta = template.get("metadata") or {}
        pods.append(
            Pod(
                owner=f"Kibana {ns}/{kb.name}",
                namespace=ns,
                labels=dict(meta.get("labels") or {})
                | {"common.k8s.elastic.co/type": "kibana", "kibana.k8s.elastic.co/name": kb.name},
                annotations=dict(meta.get("annotations") or {}),
                spec=spec,
                file=model.where(kb),
                operator="eck",
                source=ECK_KIBANA_SRC,
                manifest=kb,
                ports={"https": 5601},
            )
        )
    return pods
