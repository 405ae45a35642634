"""What the rendered objects contain, decided once, in Python.

The templates under templates/k8s lay objects out; the decisions behind
them are made here, from the roadmap's options, migrate.yaml and the
inventory: which Deployment each autoscaler scales, a worker's replica
bounds and KEDA triggers, whether the queue's Redis exists, every
container's environment, and the names, hosts and paths a plugin answers
at. The Renderer hands these values to every template (`Facts.variables`),
so a project's own templates/k8s see the same decisions and only choose
the layout. The older variables (`plugins[*].worker`, `names`, `options`)
stay available to templates written against them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from migrate.manifests.components import Options
from migrate.manifests.naming import plugin_label
from migrate.manifests.sizing import IDLE_TRACK_REPLICAS, queue_rendered

#: the key of the database Secret that holds the URL
DATABASE_SECRET_KEY = "url"
#: what the runtime listens on in every container (migrate.runtime.settings PORT)
RUNTIME_PORT = "8080"
#: pods of a Deployment without an autoscaler (the idle blue-green track: sizing.py)
ORCHESTRATOR_REPLICAS = 2
WORKER_REPLICAS = 1
#: the logical database of the queue's and the cache's Redis
REDIS_DATABASE = "0"
#: redis-server arguments: the queue keeps every key, the cache evicts the oldest
QUEUE_ARGS = (
    "--save", "", "--appendonly", "yes", "--maxmemory", "400mb",
    "--maxmemory-policy", "noeviction",
)  # fmt: skip
CACHE_ARGS = (
    "--save", "", "--appendonly", "no", "--maxmemory", "400mb",
    "--maxmemory-policy", "allkeys-lru",
)  # fmt: skip

EnvVar = dict[str, Any]


@dataclass(frozen=True)
class Names:
    """The names objects refer to each other by (one place, so they agree)."""

    project: str
    namespace: str

    @property
    def database_secret(self) -> str:
        return f"{self.project}-database"

    @property
    def orchestrator(self) -> str:
        return f"{self.project}-orchestrator"

    @property
    def kafka(self) -> str:
        return f"{self.project}-events"

    @property
    def cache(self) -> str:
        return f"{self.project}-cache"

    @property
    def queue(self) -> str:
        return f"{self.project}-queue"

    @property
    def analytics(self) -> str:
        return f"{self.project}-analytics"

    @property
    def ingress(self) -> str:
        return f"{self.project}-plugins"

    @property
    def tls_secret(self) -> str:
        """Where cert-manager writes the host's certificate unless target.ingress names one."""
        return f"{self.project}-tls"

    @property
    def kafka_bootstrap(self) -> str:
        """The plain listener of the Strimzi cluster's bootstrap Service."""
        return f"{self.kafka}-kafka-bootstrap.{self.namespace}.svc:9092"

    def redis_address(self, name: str) -> str:
        return f"{name}.{self.namespace}.svc:6379"

    def redis_url(self, name: str) -> str:
        return f"redis://{self.redis_address(name)}/{REDIS_DATABASE}"

    def service_host(self, name: str) -> str:
        """A Service's fully qualified name inside the cluster."""
        return f"{name}.{self.namespace}.svc.cluster.local"

    def to_dict(self) -> dict[str, str]:
        return {
            "project": self.project,
            "namespace": self.namespace,
            "database_secret": self.database_secret,
            "database_secret_key": DATABASE_SECRET_KEY,
            "orchestrator": self.orchestrator,
            "kafka": self.kafka,
            "kafka_bootstrap": self.kafka_bootstrap,
            "cache": self.cache,
            "cache_address": self.redis_address(self.cache),
            "cache_url": self.redis_url(self.cache),
            "queue": self.queue,
            "queue_address": self.redis_address(self.queue),
            "queue_url": self.redis_url(self.queue),
            "analytics": self.analytics,
            "ingress": self.ingress,
            "tls_secret": self.tls_secret,
        }


@dataclass(frozen=True)
class Settings:
    """What of migrate.yaml's `target` the decisions read."""

    otlp_endpoint: str
    schema: str
    controller: str = "nginx"
    host: str | None = None
    class_name: str = "nginx"
    tls_secret: str | None = None
    cluster_issuer: str | None = None


@dataclass(frozen=True)
class PluginInput:
    """A plugin as the inventory and migrate.yaml describe it, with its tracks."""

    name: str
    image: str
    version: str
    description: str
    entrypoint: str
    consumes: tuple[str, ...]
    produces: tuple[str, ...]
    cache_ttl_s: int
    #: blue-green track name -> image, and the track the Service selects
    track_images: Mapping[str, str]
    active_track: str


@dataclass(frozen=True)
class Track:
    """One Deployment of a plugin: a blue-green track, or the one `rolling` Deployment."""

    name: str | None  # None: the rolling Deployment, which has no track
    deployment: str
    image: str
    #: spec.replicas; None leaves the count to the plugin's HPA
    replicas: int | None
    #: the labels that tell this Deployment's pods apart (its selector)
    pod_labels: dict[str, str]
    #: labels beside the common ones (app.kubernetes.io/*)
    extra_labels: dict[str, str]


@dataclass(frozen=True)
class Worker:
    """The worker Deployment of a plugin that consumes events, and its KEDA ScaledObject."""

    name: str  # Deployment, consumer group and ScaledObject
    plugin: str
    version: str
    image: str
    consumes: tuple[str, ...]
    produces: tuple[str, ...]
    #: spec.replicas; None when KEDA owns the count
    replicas: int | None
    #: KEDA's bounds: a Kafka group has at most one consumer per partition it reads
    min_replicas: int
    max_replicas: int
    #: a PodDisruptionBudget when KEDA keeps two or more replicas
    disruption_budget: bool
    env: list[EnvVar]
    triggers: list[dict[str, Any]]


@dataclass(frozen=True)
class Plugin:
    """What templates see of a plugin: the inventory's facts and the decisions about it."""

    name: str
    label: str
    image: str
    version: str
    description: str
    entrypoint: str
    consumes: list[str]
    produces: list[str]
    cache_ttl_s: int
    worker: str  # the worker Deployment's name (whether or not the plugin consumes)
    tracks: list[Track]  # the blue-green tracks
    active_track: str
    active_deployment: str
    deployments: list[Track]  # what is rendered: the tracks, or the rolling Deployment
    selector: dict[str, str]  # the Service's
    service_annotations: dict[str, str]
    serving_deployment: str  # what the Service sends to now (the HPA's target)
    env: list[EnvVar]  # the service role's
    host: str  # the Service in the cluster
    path_prefix: str  # /plugins/<label>, routed by the ingress or Gateway
    ingress_path: str  # the nginx regex: the prefix, then the path that is passed on
    route: str  # the HTTPRoute's name
    consumer: Worker | None


@dataclass(frozen=True)
class Orchestrator:
    name: str
    image: str
    replicas: int | None  # None: the HPA owns the count
    env: list[EnvVar]


@dataclass(frozen=True)
class Autoscaled:
    """A HorizontalPodAutoscaler (CPU) and the Deployment it scales."""

    name: str
    deployment: str
    component: str


@dataclass(frozen=True)
class Redis:
    """A Redis StatefulSet (k8s/_redis.yaml.j2): the cache, or the queue of the bus."""

    name: str  # the ClusterIP Service its clients use
    component: str  # the pods' app.kubernetes.io/component: cache or queue
    address: str
    url: str
    args: tuple[str, ...]  # redis-server's: the queue keeps every key, the cache evicts

    @property
    def headless(self) -> str:
        """The headless Service that governs the StatefulSet (stable pod DNS)."""
        return f"{self.name}-headless"


@dataclass(frozen=True)
class EntryPoint:
    """How requests from outside reach the plugins (target.ingress)."""

    controller: str
    class_name: str
    host: str | None
    tls: bool  # a host with a certificate (a named Secret or one cert-manager issues)
    tls_secret: str
    cluster_issuer: str | None  # set only with a host: what cert-manager's shim reads
    port: int  # the Gateway listener's


@dataclass(frozen=True)
class Facts:
    plugins: list[Plugin]
    workers: list[Worker]  # of the plugins that consume events
    orchestrator: Orchestrator
    autoscaled: list[Autoscaled]  # the HPAs (workers scale with KEDA instead)
    redis: dict[str, Redis]  # by component: the cache and the queue
    queue: Redis | None  # the bus's Redis: rendered with the orchestrator or the workers
    queue_with: str | None  # the component whose template renders it: workers or orchestrator
    entry: EntryPoint
    keda: bool  # KEDA scales the workers: its operator reads the bus
    keda_reads_queue: bool  # ... from the queue's Redis (queue: redis)

    def variables(self) -> dict[str, Any]:
        """The template variables these facts add."""
        return {
            "plugins": self.plugins,
            "workers": self.workers,
            "orchestrator": self.orchestrator,
            "autoscaled": self.autoscaled,
            "redis": self.redis,
            "queue": self.queue,
            "queue_with": self.queue_with,
            "entry": self.entry,
            "keda": self.keda,
            "keda_reads_queue": self.keda_reads_queue,
        }


# -- environment: only variables the runtime reads (migrate.runtime.settings) --------------


def _value(name: str, value: str) -> EnvVar:
    return {"name": name, "value": value}


def base_env(
    names: Names, settings: Settings, role: str, service: str, version: str = ""
) -> list[EnvVar]:
    """Every role: its role, where to listen, OpenTelemetry."""
    attributes = f"service.namespace={names.namespace},deployment.environment={names.project}"
    if version:
        attributes += f",service.version={version}"
    return [
        _value("MIGRATE_ROLE", role),
        _value("PORT", RUNTIME_PORT),
        _value("HOST", "0.0.0.0"),
        _value("OTEL_SERVICE_NAME", service),
        _value("OTEL_EXPORTER_OTLP_ENDPOINT", settings.otlp_endpoint),
        _value("OTEL_RESOURCE_ATTRIBUTES", attributes),
    ]


def database_env(names: Names, settings: Settings) -> list[EnvVar]:
    """The orchestrator's run store: the database as a secretKeyRef, never a literal."""
    secret = {"secretKeyRef": {"name": names.database_secret, "key": DATABASE_SECRET_KEY}}
    return [
        {"name": "DATABASE_URL", "valueFrom": secret},
        _value("DATABASE_SCHEMA", settings.schema),
    ]


def bus_env(names: Names, options: Options) -> list[EnvVar]:
    """The event bus (DESIGN 3.9): the queue's Redis streams, or Kafka with the queue's
    Redis as the store of idempotency keys (without it a redelivery after a crash would
    be handled twice)."""
    queue_url = _value("REDIS_URL", names.redis_url(names.queue))
    if options.queue == "redis":
        return [_value("MIGRATE_BUS", "redis"), queue_url]
    return [
        _value("MIGRATE_BUS", "kafka"),
        _value("KAFKA_BOOTSTRAP_SERVERS", names.kafka_bootstrap),
        queue_url,
    ]


def cache_env(names: Names, options: Options, cache_ttl_s: int) -> list[EnvVar]:
    """Phase 4: a plugin with `plugins: {NAME: {cache_ttl_s: N}}` caches in the rendered Redis."""
    if not (options.has("redis") and cache_ttl_s > 0):
        return []
    return [
        _value("MIGRATE_CACHE_TTL_S", str(cache_ttl_s)),
        _value("MIGRATE_CACHE_URL", names.redis_url(names.cache)),
    ]


# -- the decisions ---------------------------------------------------------------------


def _tracks(
    plugin: PluginInput, label: str, options: Options
) -> tuple[list[Track], list[Track], str]:
    """The blue-green tracks, the Deployments rendered, and the one the Service selects."""
    hpa = options.has("hpa")
    active_deployment = plugin_label(plugin.name, plugin.active_track)
    tracks = []
    for name, image in sorted(plugin.track_images.items()):
        active = name == plugin.active_track
        tracks.append(
            Track(
                name=name,
                deployment=plugin_label(plugin.name, name),
                image=image,
                replicas=(None if hpa else options.replicas) if active else IDLE_TRACK_REPLICAS,
                pod_labels={"app.kubernetes.io/name": label, "migrate/track": name},
                extra_labels={"migrate/track": name},
            )
        )
    if options.strategy == "blue-green":
        return tracks, tracks, active_deployment
    rolling = Track(
        name=None,
        deployment=label,
        image=plugin.image,
        replicas=None if hpa else options.replicas,
        pod_labels={"app.kubernetes.io/name": label},
        extra_labels={},
    )
    return tracks, [rolling], label


def _worker(
    plugin: PluginInput, names: Names, settings: Settings, options: Options
) -> Worker | None:
    if not plugin.consumes:
        return None
    name = plugin_label(plugin.name, "worker")
    most = options.worker_max_replicas(len(plugin.consumes))
    least = min(options.min_replicas, most)
    lag = str(options.target_lag)
    triggers: list[dict[str, Any]] = []
    for event in plugin.consumes:
        if options.queue == "redis":
            metadata = {
                "address": names.redis_address(names.queue),
                "databaseIndex": REDIS_DATABASE,
                "stream": f"events.{event}",
                "consumerGroup": name,
                "lagCount": lag,
            }
            triggers.append({"type": "redis-streams", "metadata": metadata})
        else:
            metadata = {
                "bootstrapServers": names.kafka_bootstrap,
                "consumerGroup": name,
                "topic": event,
                "lagThreshold": lag,
                "offsetResetPolicy": "earliest",
            }
            triggers.append({"type": "kafka", "metadata": metadata})
    env = [
        *base_env(names, settings, "worker", name, plugin.version),
        _value("MIGRATE_CONSUMES", ",".join(plugin.consumes)),
        _value("MIGRATE_PRODUCES", ",".join(plugin.produces)),
        _value("MIGRATE_GROUP", name),
        *bus_env(names, options),
        *cache_env(names, options, plugin.cache_ttl_s),
    ]
    return Worker(
        name=name,
        plugin=plugin.name,
        version=plugin.version,
        image=plugin.image,
        consumes=plugin.consumes,
        produces=plugin.produces,
        replicas=None if options.has("hpa") else WORKER_REPLICAS,
        min_replicas=least,
        max_replicas=most,
        disruption_budget=options.has("hpa") and least >= 2,
        env=env,
        triggers=triggers,
    )


def _plugin(plugin: PluginInput, names: Names, settings: Settings, options: Options) -> Plugin:
    label = plugin_label(plugin.name)
    tracks, deployments, serving = _tracks(plugin, label, options)
    blue_green = options.strategy == "blue-green"
    selector = {"app.kubernetes.io/name": label}
    annotations = {"migrate/plugin": plugin.name}
    if blue_green:
        selector["migrate/track"] = plugin.active_track
        annotations["migrate/active-track"] = plugin.active_track
    prefix = f"/plugins/{label}"
    return Plugin(
        name=plugin.name,
        label=label,
        image=plugin.image,
        version=plugin.version,
        description=plugin.description,
        entrypoint=plugin.entrypoint,
        consumes=list(plugin.consumes),
        produces=list(plugin.produces),
        cache_ttl_s=plugin.cache_ttl_s,
        worker=plugin_label(plugin.name, "worker"),
        tracks=tracks,
        active_track=plugin.active_track,
        active_deployment=plugin_label(plugin.name, plugin.active_track),
        deployments=deployments,
        selector=selector,
        service_annotations=annotations,
        serving_deployment=serving,
        env=[
            *base_env(names, settings, "service", label, plugin.version),
            *cache_env(names, options, plugin.cache_ttl_s),
        ],
        host=names.service_host(label),
        path_prefix=prefix,
        ingress_path=f"{prefix}(/|$)(.*)",
        route=f"{names.ingress}-{label}",
        consumer=_worker(plugin, names, settings, options),
    )


def _entry(names: Names, settings: Settings) -> EntryPoint:
    tls = bool(settings.host and (settings.tls_secret or settings.cluster_issuer))
    return EntryPoint(
        controller=settings.controller,
        class_name=settings.class_name,
        host=settings.host,
        tls=tls,
        tls_secret=settings.tls_secret or names.tls_secret,
        cluster_issuer=settings.cluster_issuer if settings.host else None,
        port=443 if tls else 80,
    )


def _redis(names: Names, name: str, component: str, args: tuple[str, ...]) -> Redis:
    return Redis(name, component, names.redis_address(name), names.redis_url(name), args)


def build(
    options: Options,
    names: Names,
    settings: Settings,
    plugins: Sequence[PluginInput],
    *,
    event_graph: str,
    orchestrator_image: str,
) -> Facts:
    """Decide, once, what the templates render."""
    prepared = [_plugin(p, names, settings, options) for p in plugins]
    workers = [p.consumer for p in prepared if p.consumer is not None]
    hpa = options.has("hpa")
    orchestrator = Orchestrator(
        name=names.orchestrator,
        image=orchestrator_image,
        replicas=None if hpa else ORCHESTRATOR_REPLICAS,
        env=[
            *base_env(names, settings, "orchestrator", names.orchestrator),
            *database_env(names, settings),
            _value("MIGRATE_EVENT_GRAPH", event_graph),
            *bus_env(names, options),
        ],
    )
    autoscaled = []
    if options.has("orchestrator"):
        autoscaled.append(Autoscaled(names.orchestrator, names.orchestrator, "orchestrator"))
    if options.has("workloads"):
        autoscaled.extend(Autoscaled(p.label, p.serving_deployment, "plugin") for p in prepared)
    redis = {
        "cache": _redis(names, names.cache, "cache", CACHE_ARGS),
        "queue": _redis(names, names.queue, "queue", QUEUE_ARGS),
    }
    # the bus's Redis comes with its first client: the workers' template renders it when a
    # plugin consumes events, else the orchestrator's (its /readyz needs the bus even when
    # nothing consumes an event: a data-only project)
    queue = redis["queue"] if queue_rendered(options, bool(workers)) else None
    with_workers = options.has("workers") and bool(workers)
    queue_with = None if queue is None else "workers" if with_workers else "orchestrator"
    keda = hpa and options.has("workers")
    return Facts(
        plugins=prepared,
        workers=workers,
        orchestrator=orchestrator,
        autoscaled=autoscaled,
        redis=redis,
        queue=queue,
        queue_with=queue_with,
        entry=_entry(names, settings),
        keda=keda,
        keda_reads_queue=keda and bool(workers) and queue is not None and options.queue == "redis",
    )
