"""Blue-green tracks and autoscaled replica counts: how a new version rolls out.

- `blue-green-one-track`: a Service sends to one track only (pods labelled
  `migrate/track`), the one its `migrate/active-track` annotation names: a selector
  that matches both tracks splits traffic between the old and the new version;
- `autoscaler-owns-replicas`: a workload an HPA or ScaledObject scales does not set
  `spec.replicas`, or every apply resets the count the autoscaler chose.
"""

from __future__ import annotations

from collections.abc import Iterator

from migrate.manifests.lint import Finding, SetModel, rule
from migrate.manifests.lint import error_at as _finding
from migrate.manifests.model import Manifest

TRACK = "migrate/track"
ACTIVE = "migrate/active-track"
K8S_HPA_MIGRATE = (
    "https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/"
    "#migrating-deployments-and-statefulsets-to-horizontal-autoscaling"
)
BLUE_GREEN = "docs/manifests.md (blue-green: the Service selects the active track)"


@rule("blue-green-one-track", "a Service sends to one blue-green track, the active one")
def blue_green_one_track(model: SetModel) -> Iterator[Finding]:
    for service in model.of_kind("Service"):
        selector = (service.obj.get("spec") or {}).get("selector")
        if not selector:
            continue
        annotations = service.obj.get("metadata", {}).get("annotations") or {}
        active = annotations.get(ACTIVE)
        selected = model.pods(service.namespace, selector)
        tracks = sorted({w.labels[TRACK] for w in selected if TRACK in w.labels})
        if len(tracks) > 1:
            yield _finding(
                "blue-green-one-track",
                service,
                f"its selector matches the pods of tracks {', '.join(tracks)} "
                f"({', '.join(w.manifest.ref for w in selected)}): requests go to both versions",
                f"add {TRACK}: <the active track> to the Service's selector",
                BLUE_GREEN,
            )
        elif active is not None and tracks and tracks != [str(active)]:
            yield _finding(
                "blue-green-one-track",
                service,
                f"it is annotated {ACTIVE}: {active} but selects the {tracks[0]} track",
                f"select {TRACK}: {active}, or annotate the track it selects",
                BLUE_GREEN,
            )


@rule("autoscaler-owns-replicas", "a workload an autoscaler scales does not set spec.replicas")
def autoscaler_owns_replicas(model: SetModel) -> Iterator[Finding]:
    from dataclasses import replace

    scaled: dict[tuple[str | None, str, str], Manifest] = {}
    for m in model.of_kind("HorizontalPodAutoscaler", "ScaledObject"):
        target = (m.obj.get("spec") or {}).get("scaleTargetRef") or {}
        scaled[(m.namespace, str(target.get("kind", "Deployment")), str(target.get("name")))] = m
    for w in model.workloads:
        m = w.manifest
        scaler = scaled.get((m.namespace, m.kind, m.name))
        replicas = (m.obj.get("spec") or {}).get("replicas")
        if scaler is None or replicas is None:
            continue
        finding = _finding(
            "autoscaler-owns-replicas",
            m,
            f"sets spec.replicas: {replicas} while {scaler.ref} scales it: every apply resets "
            "the replicas the autoscaler chose",
            "leave spec.replicas out of a workload an autoscaler scales",
            K8S_HPA_MIGRATE,
        )
        yield replace(finding, severity="warning")
