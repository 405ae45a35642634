"""The building blocks a roadmap task can ask for, and their parameters.

A `manifests` task names `components` (istio, workloads, kafka, ...); an
`infra` task names `resources` (namespace, rbac, ...). Each component is a
set of Jinja2 templates under templates/k8s and, for operators and the
monitoring stack, Helm releases with pinned chart versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from migrate.roadmap import Roadmap, Task

Component = Literal[
    "prometheus",
    "grafana",
    "jaeger",
    "logging",
    "istio",
    "ingress-nginx",
    "workloads",
    "orchestrator",
    "workers",
    "kafka",
    "hpa",
    "redis",
    "elasticsearch",
    "kibana",
    "network-policies",
]
Resource = Literal["namespace", "resource-quota", "limit-range", "rbac"]

#: component -> templates under templates/k8s, rendered in this order
TEMPLATES: dict[str, tuple[str, ...]] = {
    "namespace": ("k8s/namespace.yaml.j2",),
    "resource-quota": ("k8s/resource-quota.yaml.j2",),
    "limit-range": ("k8s/limit-range.yaml.j2",),
    "rbac": ("k8s/rbac.yaml.j2",),
    "prometheus": (),
    "grafana": (),
    "jaeger": (),
    "logging": ("k8s/logging.yaml.j2",),
    "istio": ("k8s/istio.yaml.j2",),
    "ingress-nginx": ("k8s/ingress.yaml.j2",),
    "workloads": ("k8s/plugins.yaml.j2",),
    "orchestrator": ("k8s/orchestrator.yaml.j2",),
    "workers": ("k8s/workers.yaml.j2",),
    "kafka": ("k8s/kafka.yaml.j2",),
    "hpa": ("k8s/hpa.yaml.j2", "k8s/keda.yaml.j2"),
    "redis": ("k8s/redis.yaml.j2",),
    "elasticsearch": ("k8s/analytics.yaml.j2",),
    "kibana": ("k8s/analytics.yaml.j2",),
    "network-policies": ("k8s/network-policies.yaml.j2",),
}


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManifestsParams(_Params):
    """`with:` of a `manifests` task (docs/manifests.md)."""

    components: Annotated[list[Component], Field(min_length=1, description="What to render.")]
    mtls: Annotated[
        Literal["strict", "permissive"], Field(description="Istio PeerAuthentication mode.")
    ] = "strict"
    strategy: Annotated[
        Literal["blue-green", "rolling"],
        Field(description="blue-green: two tracks per plugin, the Service selects one."),
    ] = "blue-green"
    replicas: Annotated[int, Field(ge=1, le=100, description="Pods per plugin track.")] = 2
    queue: Annotated[
        Literal["kafka", "redis"], Field(description="What the workers consume from.")
    ] = "kafka"
    topics: Annotated[
        Literal["from-plugin-events"] | list[str],
        Field(
            description="Kafka event types: every plugin.yaml `events` entry, or a list (each "
            "also gets its `<type>.dlq` topic; `migrate.settled` is always there)."
        ),
    ] = "from-plugin-events"
    partitions: Annotated[
        int,
        Field(
            ge=1,
            le=1000,
            description="Partitions per Kafka topic: at most this many consumers of a "
            "group read one topic at a time.",
        ),
    ] = 3
    min_replicas: Annotated[
        int, Field(ge=1, description="Lower bound of every autoscaler (HPA and ScaledObject).")
    ] = 2
    max_replicas: Annotated[
        int,
        Field(
            ge=1,
            description="Upper bound of every autoscaler; a Kafka worker's is also capped at "
            "the partitions it reads.",
        ),
    ] = 10
    target_cpu_percent: Annotated[int, Field(ge=1, le=100, description="HPA CPU target.")] = 70
    target_lag: Annotated[
        int,
        Field(
            ge=1,
            description="Workers (KEDA): events waiting per replica before another is added "
            "(redis-streams lagCount, kafka lagThreshold).",
        ),
    ] = 10
    default_deny: Annotated[
        bool, Field(description="NetworkPolicies: deny everything not explicitly allowed.")
    ] = True
    image: Annotated[
        str | None,
        Field(
            description="Orchestrator image; default the one `migrate images build` builds, "
            "<registry or project>/<project>-orchestrator:<hash>"
        ),
    ] = None

    @model_validator(mode="after")
    def _knobs_of_rendered_components(self) -> ManifestsParams:
        """A knob is read from the task that renders its component (`roadmap_options`):
        set on another task it would be ignored without a word, so it is refused."""
        rendered = set(self.components)
        for knob in sorted(self.model_fields_set):
            owners = KNOB_OWNERS.get(knob)
            if owners and not rendered & set(owners):
                names = " or ".join(f"`{c}`" for c in owners)
                raise ValueError(
                    f"`{knob}` applies to {names}, which this task does not render "
                    f"(its components: {', '.join(self.components)}): move `{knob}` to the "
                    "task that renders it, or remove it"
                )
        return self


#: which components each knob of `ManifestsParams` belongs to (`roadmap_options`)
KNOB_OWNERS: dict[str, tuple[str, ...]] = {
    "mtls": ("istio",),
    "strategy": ("workloads",),
    "replicas": ("workloads",),
    "queue": ("workers", "orchestrator"),
    "topics": ("kafka",),
    "partitions": ("kafka",),
    "min_replicas": ("hpa",),
    "max_replicas": ("hpa",),
    "target_cpu_percent": ("hpa",),
    "target_lag": ("hpa",),
    "default_deny": ("network-policies",),
    "image": ("orchestrator",),
}


class InfraParams(_Params):
    """`with:` of an `infra` task: the cluster ground the other phases stand on."""

    resources: Annotated[list[Resource], Field(min_length=1, description="What to provision.")]
    namespace: Annotated[
        str | None,
        Field(description="The application namespace; must equal target.namespace when set."),
    ] = None


@dataclass(frozen=True)
class Options:
    """The roadmap-wide picture templates need: which components exist anywhere
    (the namespace gets Istio's injection label when the mesh comes later) and
    the knobs of the task that owns each component."""

    components: frozenset[str]
    mtls: str = "strict"
    strategy: str = "blue-green"
    replicas: int = 2
    queue: str = "kafka"
    topics: tuple[str, ...] | None = None  # None: from plugin events
    partitions: int = 3
    min_replicas: int = 2
    max_replicas: int = 10
    target_cpu_percent: int = 70
    target_lag: int = 10
    default_deny: bool = True
    orchestrator_image: str | None = None

    def has(self, component: str) -> bool:
        return component in self.components

    def worker_max_replicas(self, consumes: int) -> int:
        """A worker's ceiling under KEDA (its ScaledObject's maxReplicaCount): a Kafka
        consumer group reads each partition with one consumer, so a worker that reads
        `consumes` topics has work for at most `partitions * consumes` replicas."""
        if self.queue == "kafka":
            return min(self.max_replicas, self.partitions * consumes)
        return self.max_replicas


def task_components(params: ManifestsParams | InfraParams) -> tuple[str, ...]:
    """The components a `manifests` or `infra` task renders, from its validated `with:`."""
    if isinstance(params, InfraParams):
        return tuple(params.resources)
    return tuple(params.components)


def roadmap_options(roadmap: Roadmap, params_of: Callable[[Task], Any]) -> Options:
    """The options of the whole roadmap. `params_of` gives a task's `with:`, expanded and
    validated once where the project is assembled (`actions.registry.task_params`)."""
    components: set[str] = set()
    knobs: dict[str, object] = {}
    told: dict[str, str] = {}  # task id -> `queue:` of a task that renders only the orchestrator
    for _, task in roadmap.tasks():
        if task.action == "infra":
            components.update(task_components(params_of(task)))
        elif task.action == "manifests":
            params: ManifestsParams = params_of(task)
            components.update(params.components)
            owned = set(params.components)
            if "istio" in owned:
                knobs["mtls"] = params.mtls
            if "workloads" in owned:
                knobs["strategy"], knobs["replicas"] = params.strategy, params.replicas
            if "workers" in owned:
                knobs["queue"] = params.queue
            elif "orchestrator" in owned and "queue" in params.model_fields_set:
                told[task.id] = params.queue  # the orchestrator's bus, when no workers say
            if "kafka" in owned:
                knobs["partitions"] = params.partitions
                if params.topics != "from-plugin-events":
                    knobs["topics"] = tuple(params.topics)
            if "hpa" in owned:
                knobs["min_replicas"] = params.min_replicas
                knobs["max_replicas"] = max(params.max_replicas, params.min_replicas)
                knobs["target_cpu_percent"] = params.target_cpu_percent
                knobs["target_lag"] = params.target_lag
            if "network-policies" in owned:
                knobs["default_deny"] = params.default_deny
            if "orchestrator" in owned and params.image:
                knobs["orchestrator_image"] = params.image
    for task_id, queue in told.items():
        if knobs.setdefault("queue", queue) != queue:
            from migrate.errors import UserError

            raise UserError(
                f"task {task_id} gives the orchestrator `queue: {queue}`, but the roadmap's "
                f"bus is `{knobs['queue']}` (the task that renders `workers`, or another "
                "orchestrator task, says so): the orchestrator and the workers share one bus",
                hint="set `queue` once: on the task that renders `workers`, if there is one",
            )
    return Options(components=frozenset(components), **knobs)  # type: ignore[arg-type]
