"""A Mermaid picture of the target architecture, drawn from the rendered objects.

Nodes are the objects a reader thinks in (Ingress, Services, Deployments,
StatefulSets, Kafka, Elasticsearch, Kibana, Helm releases), grouped by
phase; edges are the references the objects actually make (Ingress
backends, Service selectors, HPA and ScaledObject targets, secretKeyRefs,
Kafka and Redis addresses in the environment). Nothing is drawn that is not
rendered.
"""

from __future__ import annotations

import re
from typing import Any

from migrate.manifests.model import Manifest, PhaseManifests

SHOWN = {
    "Ingress",
    "Service",
    "Deployment",
    "StatefulSet",
    "Kafka",
    "Elasticsearch",
    "Kibana",
    "HorizontalPodAutoscaler",
    "ScaledObject",
}


def _id(kind: str, namespace: str | None, name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{kind}_{namespace or ''}_{name}")


def _node(manifest: Manifest) -> str:
    shape = {"Ingress": ("[/", "/]"), "Service": ("([", "])"), "Kafka": ("[(", ")]")}
    left, right = shape.get(manifest.kind, ("[", "]"))
    label = f"{manifest.kind}<br/>{manifest.name}"
    return f'{_id(manifest.kind, manifest.namespace, manifest.name)}{left}"{label}"{right}'


def _pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = (
        obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    )
    return labels


def _env(obj: dict[str, Any]) -> list[dict[str, Any]]:
    containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    return [env for container in containers for env in container.get("env", [])]


def mermaid(phases: list[PhaseManifests]) -> str:
    manifests = [m for p in phases for m in p.manifests]
    shown = [m for m in manifests if m.kind in SHOWN]
    ids = {(m.kind, m.namespace, m.name) for m in shown}
    lines = [
        "flowchart LR",
        '  users(("users")) --> ingress_controller["nginx ingress controller"]',
    ]
    database = False
    for phase in phases:
        members = [m for m in phase.manifests if m.kind in SHOWN]
        if not members and not phase.releases:
            continue
        lines.append(f'  subgraph phase{phase.phase}["phase {phase.phase}"]')
        lines.extend(f"    {_node(m)}" for m in members)
        lines.extend(
            f'    helm_{re.sub(r"[^A-Za-z0-9_]", "_", r.name)}{{{{"helm: {r.name}<br/>'
            f'{r.chart} {r.version}"}}}}'
            for r in phase.releases
        )
        lines.append("  end")
    edges: set[str] = set()
    for m in shown:
        me = _id(m.kind, m.namespace, m.name)
        spec = m.obj.get("spec", {})
        if m.kind == "Ingress":
            edges.add(f"  ingress_controller --> {me}")
            for rule in spec.get("rules", []):
                for path in rule.get("http", {}).get("paths", []):
                    service = path["backend"]["service"]["name"]
                    if ("Service", m.namespace, service) in ids:
                        edges.add(
                            f"  {me} -->|{path['path'].split('(')[0]}| "
                            f"{_id('Service', m.namespace, service)}"
                        )
        if m.kind == "Service":
            selector = spec.get("selector", {})
            for other in shown:
                if other.kind in ("Deployment", "StatefulSet") and other.namespace == m.namespace:
                    labels = _pod_labels(other.obj)
                    if selector and all(labels.get(k) == v for k, v in selector.items()):
                        edges.add(f"  {me} --> {_id(other.kind, other.namespace, other.name)}")
        if m.kind in ("HorizontalPodAutoscaler", "ScaledObject"):
            target = spec.get("scaleTargetRef", {}).get("name")
            label = "scales on lag" if m.kind == "ScaledObject" else "scales"
            edges.add(f"  {me} -.->|{label}| {_id('Deployment', m.namespace, target)}")
        if m.kind in ("Deployment", "StatefulSet"):
            for env in _env(m.obj):
                if "secretKeyRef" in env.get("valueFrom", {}) and env["name"] == "DATABASE_URL":
                    database = True
                    edges.add(f"  {me} --> database")
                value = str(env.get("value", ""))
                for other in shown:
                    if other.kind in ("Kafka", "Service") and other is not m:
                        prefix = (
                            f"{other.name}-kafka-bootstrap" if other.kind == "Kafka" else other.name
                        )
                        if value.startswith((prefix + ".", f"redis://{prefix}.")):
                            edges.add(f"  {me} --> {_id(other.kind, other.namespace, other.name)}")
        if m.kind == "Kibana":
            ref = spec.get("elasticsearchRef", {}).get("name")
            edges.add(f"  {me} --> {_id('Elasticsearch', m.namespace, ref)}")
    if database:
        lines.append('  database[("PostgreSQL<br/>(secretKeyRef)")]')
    lines.extend(sorted(edges))
    return "\n".join(lines) + "\n"
