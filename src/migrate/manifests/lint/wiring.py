"""Our containers are told what they need, and what they are told exists in the set.

`runtime-env-read` (runtime.py) says every variable set is one the runtime reads. The
rules here read the same containers (runtime.ours) the other way round:
- `runtime-env-required`: what each role cannot run without is set (a worker's bus and
  the event types it consumes; the orchestrator's bus, database and event graph; the
  bus's address; the cache's Redis when a cache TTL is set);
- `runtime-env-valid`: every literal value the runtime parses when it starts is one it
  accepts (the orchestrator's `MIGRATE_EVENT_GRAPH`, read by the runtime's own
  `Graph.parse`; `PORT` and the numbers a role reads; a service's `MIGRATE_BUS`; the
  bus's `REDIS_URL`), since a refused one makes the container exit at start;
- `runtime-address-rendered`: every address in the environment (`REDIS_URL`,
  `MIGRATE_CACHE_URL`, `KAFKA_BOOTSTRAP_SERVERS`, `OTEL_EXPORTER_OTLP_ENDPOINT`) that
  points into the cluster reaches pods of the set on that port;
- `runtime-port-served`: every port that probes, Services and the scrape annotation
  send to is the one the runtime listens on (`PORT`, default 8080);
- `scaler-reads-worker-lag`: a worker's ScaledObject reads the lag of the topics or
  streams the worker consumes, for the consumer group it consumes with;
- `bus-topic-exists`: every Kafka topic a worker reads or writes (its events, their
  dead letters, the settled notices) has a KafkaTopic, since the cluster does not
  create topics on use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from migrate.manifests.lint import Finding, SetModel, rule, selects
from migrate.manifests.lint import error_at as _finding
from migrate.manifests.lint.operated import resolve_host
from migrate.manifests.lint.runtime import Ours, ours

SETTINGS_DOC = "migrate.runtime.settings.VARIABLES; docs/runtime.md"
BUS_DOC = "DESIGN.md 3.9 (bus: one topic per event type, <type>.dlq, migrate.settled)"
KEDA_KAFKA = "https://keda.sh/docs/2.17/scalers/apache-kafka/"
KEDA_REDIS = "https://keda.sh/docs/2.17/scalers/redis-streams/"
K8S_SERVICE = "https://kubernetes.io/docs/concepts/services-networking/service/"
STRIMZI_TOPICS = (
    "https://strimzi.io/docs/operators/latest/deploying#using-the-topic-operator-str "
    "(auto.create.topics.enable: false; topics are KafkaTopic resources)"
)
#: environment variables that hold an address, and the port their scheme implies
ADDRESSES = (
    "REDIS_URL",
    "MIGRATE_CACHE_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}
BUSES = ("redis", "kafka")


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """name -> its value (a string), or the `valueFrom` mapping (set, value unknown)."""
    found: dict[str, Any] = {}
    for var in container.get("env") or []:
        if "valueFrom" in var:
            found[str(var.get("name"))] = dict(var["valueFrom"] or {})
        elif var.get("value") not in (None, ""):
            found[str(var.get("name"))] = str(var["value"])
    return found


def _default(name: str) -> str:
    from migrate.runtime.settings import VARIABLES

    return next(v.default for v in VARIABLES if v.name == name)


def role_of(env: dict[str, Any]) -> str:
    role = env.get("MIGRATE_ROLE")
    return role if isinstance(role, str) else _default("MIGRATE_ROLE")


def _list(env: dict[str, Any], name: str) -> list[str]:
    value = env.get(name)
    return [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else []


def group_of(env: dict[str, Any]) -> str | None:
    """The worker's consumer group as the runtime computes it (settings.get)."""
    group = env.get("MIGRATE_GROUP")
    if isinstance(group, str):
        return group
    plugin = env.get("MIGRATE_PLUGIN")
    return f"{plugin}-worker" if isinstance(plugin, str) else None


# -- runtime-env-required ---------------------------------------------------------------


def _missing(env: dict[str, Any], role: str) -> list[tuple[str, str]]:
    """(variable, why) for each thing the role cannot run without."""
    need: list[tuple[str, str]] = []
    bus = env.get("MIGRATE_BUS")
    if role in ("worker", "orchestrator") and bus not in BUSES:
        why = f"is {bus!r}, " if isinstance(bus, str) else "is not set: "
        need.append(("MIGRATE_BUS", f"{why}a {role} needs the bus (redis or kafka)"))
    if role == "worker" and not _list(env, "MIGRATE_CONSUMES"):
        need.append(("MIGRATE_CONSUMES", "is empty: the worker consumes nothing"))
    if role == "orchestrator" and "DATABASE_URL" not in env:
        need.append(("DATABASE_URL", "is not set: the orchestrator keeps its runs there"))
    if bus == "redis" and "REDIS_URL" not in env:
        need.append(("REDIS_URL", "is not set: MIGRATE_BUS=redis reads the streams there"))
    if bus == "kafka":
        if "KAFKA_BOOTSTRAP_SERVERS" not in env:
            need.append(("KAFKA_BOOTSTRAP_SERVERS", "is not set: MIGRATE_BUS=kafka needs it"))
        if "REDIS_URL" not in env:
            need.append(("REDIS_URL", "is not set: the Kafka bus keeps idempotency keys there"))
    ttl = env.get("MIGRATE_CACHE_TTL_S")
    cached = isinstance(ttl, str) and ttl.strip() not in ("", "0")
    if cached and "MIGRATE_CACHE_URL" not in env and "REDIS_URL" not in env:
        need.append(("MIGRATE_CACHE_URL", "is not set (nor REDIS_URL): the cache has no Redis"))
    return need


def _consumes_nothing(graph: Any) -> bool:
    """Whether MIGRATE_EVENT_GRAPH is unset, or names no plugin that consumes an event
    (`{}`: an application with data and no plugin), as the runtime reads it. A graph the
    runtime refuses is `runtime-env-valid`'s finding; one from a Secret is not known."""
    from migrate.runtime.orchestrator import Graph, GraphError

    if graph is None:
        graph = _default("MIGRATE_EVENT_GRAPH")
    if not isinstance(graph, str):
        return False
    try:
        return not Graph.parse(graph).accepted
    except GraphError:
        return False


@rule("runtime-env-required", "our containers are given what their runtime role cannot run without")
def runtime_env_required(model: SetModel) -> Iterator[Finding]:
    tracing = model.release("jaeger") is not None
    for item in ours(model):
        env, m = env_of(item.container), item.workload.manifest
        role, name = role_of(env), item.container.get("name")
        for variable, why in _missing(env, role):
            yield _finding(
                "runtime-env-required",
                m,
                f"container {name} (role {role}): {variable} {why}",
                f"set {variable} in the container's env (docs/runtime.md lists what it means)",
                SETTINGS_DOC,
            )
        if role == "orchestrator" and _consumes_nothing(env.get("MIGRATE_EVENT_GRAPH")):
            # it runs and is ready, and refuses every run: a project with no plugin yet
            finding = _finding(
                "runtime-env-required",
                m,
                f"container {name}: MIGRATE_EVENT_GRAPH is empty: the orchestrator knows no "
                "plugin that consumes an event, so it refuses every run (POST /runs: 422)",
                "set MIGRATE_EVENT_GRAPH (the renderer does, from the plugins' events)",
                SETTINGS_DOC,
            )
            yield replace(finding, severity="warning")
        if tracing and "OTEL_EXPORTER_OTLP_ENDPOINT" not in env:
            finding = _finding(
                "runtime-env-required",
                m,
                f"container {name}: OTEL_EXPORTER_OTLP_ENDPOINT is not set, so its spans go "
                "nowhere although the set installs a Jaeger collector",
                "set OTEL_EXPORTER_OTLP_ENDPOINT to the collector's OTLP/HTTP address",
                SETTINGS_DOC,
            )
            yield replace(finding, severity="warning")


# -- runtime-env-valid ------------------------------------------------------------------

#: the numbers each role parses when it starts, with the parser the runtime applies
#: (settings.get_int is int(), settings.get_float is float()): host._address (PORT),
#: Worker.__init__, Orchestrator.__init__, concerns._cache (via concerns.wrap)
NUMBERS: tuple[tuple[str, tuple[str, ...], Callable[[str], float]], ...] = (
    ("PORT", ("service", "worker", "orchestrator"), int),
    ("MIGRATE_CLAIM_IDLE_MS", ("worker", "orchestrator"), int),
    ("MIGRATE_MAX_ATTEMPTS", ("worker",), int),
    ("MIGRATE_RETRY_BASE_S", ("worker",), float),
    ("MIGRATE_CACHE_TTL_S", ("service", "worker"), int),
)
MAX_PORT = 65535  # socket.bind raises OverflowError beyond it (host.serve does not catch it)


def _refused(env: dict[str, Any], role: str) -> Iterator[tuple[str, str, str]]:
    """(variable, what the runtime says, the fix) for each literal value the runtime
    refuses when this role starts. A value from a Secret or ConfigMap is not known here."""
    from migrate.runtime.bus.base import BusUnavailable
    from migrate.runtime.bus.redis import RedisBus
    from migrate.runtime.orchestrator import Graph, GraphError

    graph = env.get("MIGRATE_EVENT_GRAPH")
    if role == "orchestrator" and isinstance(graph, str):
        try:
            Graph.parse(graph)
        except GraphError as exc:
            yield (
                "MIGRATE_EVENT_GRAPH",
                str(exc),
                'set it to a JSON object {"<plugin>": {"consumes": [<event type>, ...], '
                '"produces": [...]}}, as the shipped templates/k8s/orchestrator.yaml.j2 does '
                "(orchestrator.env, from the plugins' events)",
            )
    for variable, roles, parse in NUMBERS:
        value = env.get(variable)
        if role not in roles or not isinstance(value, str):
            continue
        try:
            number = parse(value)
        except ValueError as exc:
            kind = "an integer" if parse is int else "a number"
            yield variable, f"{parse.__name__}() refuses it: {exc}", f"set it to {kind}"
            continue
        if variable == "PORT" and not 0 <= number <= MAX_PORT:
            yield variable, "bind() refuses it: port must be 0-65535", "set it to 1-65535"
    bus = env.get("MIGRATE_BUS")
    if role == "service" and isinstance(bus, str) and bus not in BUSES:
        # worker and orchestrator: runtime-env-required says it (they need a bus)
        yield (
            "MIGRATE_BUS",
            f"MIGRATE_BUS={bus!r}: set it to redis or kafka (bus.connect)",
            "set it to redis or kafka, or leave it out (a service needs no bus)",
        )
    url = env.get("REDIS_URL")
    if bus in BUSES and isinstance(url, str):
        try:
            RedisBus(url)  # what bus.connect builds (the Kafka bus too, for its keys)
        except BusUnavailable as exc:
            yield "REDIS_URL", str(exc), "set it to redis://HOST:PORT/DB (or rediss://, unix://)"


@rule("runtime-env-valid", "the values our containers are given are ones the runtime accepts")
def runtime_env_valid(model: SetModel) -> Iterator[Finding]:
    for item in ours(model):
        env, m = env_of(item.container), item.workload.manifest
        role, name = role_of(env), item.container.get("name")
        for variable, says, fix in _refused(env, role):
            # a worker connects its bus in its loop: it starts, and never consumes
            when = (
                "at every connect, so it never consumes"
                if role == "worker" and variable == "REDIS_URL"
                else "and exits at start"
            )
            yield _finding(
                "runtime-env-valid",
                m,
                f"container {name} (role {role}): the runtime refuses {variable} {when}: {says}",
                fix,
                SETTINGS_DOC,
            )


# -- runtime-address-rendered -----------------------------------------------------------


def addresses(name: str, value: str) -> list[tuple[str, int]]:
    """(host, port) of an address variable's value; [] when it holds none."""
    if name == "KAFKA_BOOTSTRAP_SERVERS":
        found = []
        for server in (s.strip() for s in value.split(",") if s.strip()):
            host, colon, port = server.rpartition(":")
            if not colon:
                found.append((server, 9092))
            elif port.isdigit():
                found.append((host, int(port)))
        return found
    if "://" not in value:
        return []
    url = urlsplit(value)
    try:
        number = url.port
    except ValueError:
        return []
    if not url.hostname:
        return []
    return [(url.hostname, number or DEFAULT_PORTS.get(url.scheme, 80))]


def in_cluster(host: str) -> bool:
    """Whether `host` is a cluster DNS name (`svc`, `svc.ns`, `svc.ns.svc[.cluster.local]`):
    an IP address or another domain is outside the set and not judged."""
    parts = host.split(".")
    if all(p.isdigit() for p in parts):
        return False
    return len(parts) == 1 or (len(parts) >= 3 and parts[2] == "svc")


def _reaches(model: SetModel, host: str, port: int, namespace: str) -> str:
    """Why `host:port` reaches no pod of the set, or "" when it does (or is not judged)."""
    parts = host.split(".")
    name, ns = parts[0], parts[1] if len(parts) > 1 else namespace
    found = resolve_host(model, host, port, namespace)
    service = model.find("Service", ns, name)
    if service is not None:
        if found:
            return ""
        ports = [p.get("port") for p in (service.obj.get("spec") or {}).get("ports") or []]
        if port not in ports:
            return f"Service {ns}/{name} has no port {port} (it has {ports})"
        return f"Service {ns}/{name} port {port} reaches no container port of a rendered pod"
    if not found:
        if any(r.namespace == ns and name.startswith(r.name) for r in model.releases):
            return ""  # a Service of a chart the set does not model: not judged
        return f"no rendered Service {ns}/{name}, and no operator or chart makes one by that name"
    served = [
        (pod, number)
        for pod, number in found
        if not pod.port_numbers() or number in pod.port_numbers().values()
    ]
    if served:
        return ""
    pod = found[0][0]
    return f"{pod.owner} serves {sorted(set(pod.port_numbers().values()))}, not {port}"


@rule("runtime-address-rendered", "every address our containers are given reaches pods of the set")
def runtime_address_rendered(model: SetModel) -> Iterator[Finding]:
    # an unrendered bus is an error with or without workers: the orchestrator's /readyz
    # needs it (the renderer renders the queue's Redis with the orchestrator)
    for item in ours(model):
        m = item.workload.manifest
        namespace = m.namespace or "default"
        for variable, value in env_of(item.container).items():
            if variable not in ADDRESSES or not isinstance(value, str):
                continue
            for host, port in addresses(variable, value):
                if not in_cluster(host):
                    continue
                why = _reaches(model, host, port, namespace)
                if why:
                    yield _finding(
                        "runtime-address-rendered",
                        m,
                        f"container {item.container.get('name')}: {variable}={value}: {why}",
                        "point it at a Service the set renders (`<name>.<namespace>.svc:<port>`), "
                        "or render what it names",
                        K8S_SERVICE,
                    )


# -- runtime-port-served ----------------------------------------------------------------


def _port_number(container: dict[str, Any], port: Any) -> int | None:
    """A container's port, by name or number; None when the name is not one of its."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for item in container.get("ports") or []:
        if item.get("name") == port:
            return int(item["containerPort"])
    return None


def _sent_to(model: SetModel, item: Ours) -> Iterator[tuple[str, Any]]:
    """(what sends, the port it names) for each thing that sends to this container."""
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = item.container.get(kind) or {}
        for handler in ("httpGet", "tcpSocket", "grpc"):
            if handler in probe and "port" in probe[handler]:
                yield f"its {kind}", probe[handler]["port"]
    annotation = item.workload.annotations.get("prometheus.io/port")
    if annotation is not None:
        yield "the pod annotation prometheus.io/port", annotation
    m = item.workload.manifest
    for service in model.of_kind("Service"):
        selector = (service.obj.get("spec") or {}).get("selector")
        if service.namespace != m.namespace or not selector:
            continue
        if not selects(selector, item.workload.labels):
            continue
        for port in (service.obj.get("spec") or {}).get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            yield f"{service.ref} port {port.get('port')}", target


@rule(
    "runtime-port-served",
    "probes, Services and scrapes of our pods use the port the runtime listens on",
)
def runtime_port_served(model: SetModel) -> Iterator[Finding]:
    for item in ours(model):
        env = env_of(item.container)
        port = env.get("PORT", _default("PORT"))
        if not isinstance(port, str) or not port.isdigit() or port == "0":
            continue  # from a Secret or picked at start: not known here
        listens = int(port)
        others = {
            int(p["containerPort"])
            for key in ("containers", "initContainers")
            for c in item.workload.pod.get(key) or []
            if c is not item.container
            for p in c.get("ports") or []
            if "containerPort" in p
        }
        for sender, named in _sent_to(model, item):
            number = _port_number(item.container, named)
            if number is None or number == listens or number in others:
                continue  # a name of another container is the probe-port rule's finding
            yield _finding(
                "runtime-port-served",
                item.workload.manifest,
                f"container {item.container.get('name')}: {sender} sends to port {named} "
                f"({number}), but the runtime listens on PORT={listens}",
                f"send to {listens} (the container port named http), or set PORT to {number}",
                "DESIGN.md 3.7 and 3.9 (the runtime serves on $PORT, default 8080)",
            )


# -- scaler-reads-worker-lag ------------------------------------------------------------


def _workers(model: SetModel) -> dict[tuple[str | None, str, str], tuple[Ours, dict[str, Any]]]:
    found = {}
    for item in ours(model):
        env = env_of(item.container)
        if role_of(env) == "worker":
            m = item.workload.manifest
            found[(m.namespace, m.kind, m.name)] = (item, env)
    return found


def _trigger_errors(trigger: dict[str, Any], env: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(what is wrong, source) for one trigger against the worker's environment."""
    kind, meta = trigger.get("type"), trigger.get("metadata") or {}
    consumes, group, bus = _list(env, "MIGRATE_CONSUMES"), group_of(env), env.get("MIGRATE_BUS")
    if kind == "kafka":
        source, topic = KEDA_KAFKA, meta.get("topic")
        if bus != "kafka":
            yield f"a kafka trigger on a worker whose MIGRATE_BUS is {bus!r}", source
        if topic is not None and topic not in consumes:
            yield f"topic {topic} is not one the worker consumes ({', '.join(consumes)})", source
        servers = env.get("KAFKA_BOOTSTRAP_SERVERS")
        given = meta.get("bootstrapServers")
        if isinstance(servers, str) and given is not None and given != servers:
            yield f"bootstrapServers {given} is not the worker's {servers}", source
    elif kind == "redis-streams":
        source, stream = KEDA_REDIS, meta.get("stream")
        if bus != "redis":
            yield f"a redis-streams trigger on a worker whose MIGRATE_BUS is {bus!r}", source
        if stream is not None and stream not in [f"events.{t}" for t in consumes]:
            streams = ", ".join(f"events.{t}" for t in consumes)
            yield f"stream {stream} is not one the worker reads ({streams})", source
        url = env.get("REDIS_URL")
        address = meta.get("address")
        if isinstance(url, str) and address is not None:
            wanted = addresses("REDIS_URL", url)
            if wanted and str(address) != f"{wanted[0][0]}:{wanted[0][1]}":
                yield f"address {address} is not the worker's Redis ({url})", source
    else:
        return
    if group is not None and meta.get("consumerGroup") not in (None, group):
        yield (
            f"consumerGroup {meta.get('consumerGroup')} is not the worker's group {group}",
            KEDA_KAFKA if kind == "kafka" else KEDA_REDIS,
        )


@rule(
    "scaler-reads-worker-lag", "a worker's ScaledObject reads the lag of what the worker consumes"
)
def scaler_reads_worker_lag(model: SetModel) -> Iterator[Finding]:
    workers = _workers(model)
    for m in model.of_kind("ScaledObject"):
        spec = m.obj.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        key = (m.namespace, str(target.get("kind", "Deployment")), str(target.get("name")))
        if key not in workers:
            continue
        _, env = workers[key]
        triggers = [
            t for t in spec.get("triggers") or [] if t.get("type") in ("kafka", "redis-streams")
        ]
        for i, trigger in enumerate(triggers):
            for wrong, source in _trigger_errors(trigger, env):
                yield _finding(
                    "scaler-reads-worker-lag",
                    m,
                    f"trigger {i}: {wrong}: KEDA reads a lag the worker never works off, so "
                    "it scales on the wrong signal (or never wakes from zero)",
                    "make each trigger read a topic or stream the worker consumes, with its "
                    "MIGRATE_GROUP and its bus address",
                    source,
                )
        read = {
            str((t.get("metadata") or {}).get("topic") or (t.get("metadata") or {}).get("stream"))
            for t in triggers
        }
        prefix = "events." if any(t.get("type") == "redis-streams" for t in triggers) else ""
        unread = [t for t in _list(env, "MIGRATE_CONSUMES") if f"{prefix}{t}" not in read]
        if triggers and unread:
            finding = _finding(
                "scaler-reads-worker-lag",
                m,
                f"no trigger reads the lag of {', '.join(unread)}, which the worker consumes: "
                "a backlog there does not scale it",
                "add one trigger per consumed event type",
                KEDA_KAFKA if not prefix else KEDA_REDIS,
            )
            yield replace(finding, severity="warning")


# -- bus-topic-exists -------------------------------------------------------------------


def _topics(model: SetModel) -> set[str] | None:
    """The topics the set creates, or None when the cluster may create them on use."""
    closed = any(
        str(
            ((k.obj.get("spec") or {}).get("kafka") or {})
            .get("config", {})
            .get("auto.create.topics.enable", "true")
        ).lower()
        == "false"
        for k in model.of_kind("Kafka")
    )
    topics = model.of_kind("KafkaTopic")
    if not closed and not topics:
        return None
    return {str((t.obj.get("spec") or {}).get("topicName") or t.name) for t in topics}


@rule("bus-topic-exists", "every Kafka topic a worker reads or writes has a KafkaTopic")
def bus_topic_exists(model: SetModel) -> Iterator[Finding]:
    from migrate.runtime.bus.base import SETTLED

    created = _topics(model)
    if created is None:
        return
    for item in ours(model):
        env = env_of(item.container)
        if env.get("MIGRATE_BUS") != "kafka" or role_of(env) != "worker":
            continue
        consumes = _list(env, "MIGRATE_CONSUMES")
        needed = consumes + _list(env, "MIGRATE_PRODUCES") + [f"{t}.dlq" for t in consumes]
        missing = sorted({t for t in [*needed, SETTLED] if t not in created})
        if missing:
            yield _finding(
                "bus-topic-exists",
                item.workload.manifest,
                f"container {item.container.get('name')}: topic(s) {', '.join(missing)} have "
                "no KafkaTopic, and the cluster does not create topics on use: the worker's "
                "reads or writes fail",
                "render a KafkaTopic for every event type, its .dlq and migrate.settled",
                f"{BUS_DOC}; {STRIMZI_TOPICS}",
            )
