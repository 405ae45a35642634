"""The containers of `migrate dev up`, as data, computed with no engine.

One plan per `up`: a Redis (unless `--bus-url`) and a PostgreSQL (unless
`--database-url`), the orchestrator, and per plugin a worker (when the plugin
consumes events) and a service. Each container is a frozen `ContainerSpec`:
its name, labels, image, environment and ports. The environment of a runtime
container holds only variables the runtime reads for that role
(`migrate.runtime.settings.VARIABLES`).

Host networking (the default): every container listens on 127.0.0.1 on a port
of its own (`PORT`). Bridge: a user-defined network `<project>-dev` where the
containers reach each other by name, each port published on 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from migrate.errors import UserError
from migrate.names import image_repository_name
from migrate.secrets import Secret, mask_text

if TYPE_CHECKING:
    from migrate.inventory import Plugin

Network = Literal["host", "bridge"]
Role = Literal["redis", "postgres", "orchestrator", "worker", "service"]
Probe = Literal["http", "redis", "postgres"]

INFRA_ROLES: tuple[Role, ...] = ("redis", "postgres")
RUNTIME_ROLES: tuple[Role, ...] = ("orchestrator", "worker", "service")

LABEL_PROJECT = "io.migrate.project"
LABEL_DEV = "io.migrate.dev"
LABEL_ROLE = "io.migrate.role"
LABEL_PLUGIN = "io.migrate.plugin"
LABEL_URL = "io.migrate.url"
LABEL_PORT = "io.migrate.port"
LABEL_SPEC = "io.migrate.dev-spec"

LOOPBACK = "127.0.0.1"
RUNTIME_PORT = 8080  # inside the container, with bridge networking
REDIS_PORT = 6379
POSTGRES_PORT = 5432
POSTGRES_USER = "postgres"
POSTGRES_DB = "postgres"
SOCKET_DIR = "/run/migrate-dev/postgresql"  # where a host PostgreSQL socket is mounted
RESTART_POLICY: dict[str, str | int] = {"Name": "on-failure", "MaximumRetryCount": 0}  # 0: no limit
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"}


@dataclass(frozen=True)
class Mount:
    """A bind mount: a host path (a PostgreSQL socket) into the container."""

    source: str
    target: str
    # which file it is (device:inode): a server that restarts makes a new socket file,
    # which the container's mount does not see, so the container must be replaced
    identity: str = ""


@dataclass(frozen=True)
class ContainerSpec:
    """One container as `dev up` wants it."""

    name: str
    role: Role
    plugin: str | None
    image: str
    env: tuple[tuple[str, str | Secret], ...]
    port: int  # on 127.0.0.1 of this machine
    container_port: int  # inside the container (the same with host networking)
    url: str  # how to reach it from this machine; never holds a secret
    probe: Probe
    command: tuple[str, ...] | None = None
    mounts: tuple[Mount, ...] = ()

    def environment(self) -> dict[str, str]:
        """The environment with secrets revealed: only for the engine."""
        return {k: v.reveal() if isinstance(v, Secret) else v for k, v in self.env}

    def masked_environment(self) -> dict[str, str]:
        return {k: v.masked() if isinstance(v, Secret) else v for k, v in self.env}

    def labels(self, project: str, digest: str) -> dict[str, str]:
        return {
            LABEL_PROJECT: project,
            LABEL_DEV: "1",
            LABEL_ROLE: self.role,
            LABEL_PLUGIN: self.plugin or "",  # overrides the label of a plugin image
            LABEL_URL: self.url,
            LABEL_PORT: str(self.port),
            LABEL_SPEC: digest,
        }

    def digest(self, image_id: str, network: Network) -> str:
        """What decides whether a running container still matches: the image it runs
        (by id), environment, command, ports, mounts and network."""
        document = {
            "image": image_id,
            "env": sorted(self.environment().items()),
            "command": list(self.command or ()),
            "ports": [self.port, self.container_port],
            "mounts": [[m.source, m.target, m.identity] for m in self.mounts],
            "network": network,
            "restart": RESTART_POLICY,
        }
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class DevPlan:
    project: str
    network: Network
    containers: tuple[ContainerSpec, ...]
    skipped: tuple[str, ...] = ()  # why a plugin has no worker, one line each

    @property
    def network_name(self) -> str | None:
        """The user-defined bridge network, or None with host networking."""
        return network_name(self.project) if self.network == "bridge" else None

    @property
    def infra(self) -> list[ContainerSpec]:
        return [c for c in self.containers if c.role in INFRA_ROLES]

    @property
    def runtime(self) -> list[ContainerSpec]:
        return [c for c in self.containers if c.role in RUNTIME_ROLES]

    @property
    def orchestrator(self) -> ContainerSpec:
        return next(c for c in self.containers if c.role == "orchestrator")

    def names(self) -> list[str]:
        return [c.name for c in self.containers]


@dataclass(frozen=True)
class Images:
    """The image references to run: one per plugin, the orchestrator's, Redis and PostgreSQL."""

    plugins: Mapping[str, str]
    orchestrator: str
    redis: str
    postgres: str


@dataclass(frozen=True)
class ExternalDatabase:
    """`--database-url` as the orchestrator container sees it."""

    url: Secret  # the value of DATABASE_URL inside the container
    mount: Mount | None = None  # the server's socket, when the URL names a socket directory


@dataclass(frozen=True)
class Inputs:
    """Everything the plan depends on, observed or decided before planning."""

    project: str
    network: Network
    plugins: Sequence[Plugin]
    images: Images
    schema: str
    bus_url: Secret | None = None  # --bus-url; None: a Redis container
    database: ExternalDatabase | None = None  # --database-url; None: a PostgreSQL container
    postgres_password: Secret = field(default_factory=lambda: Secret(""))
    cache_ttl_s: Mapping[str, int] = field(default_factory=dict)


def network_name(project: str) -> str:
    return f"{project}-dev"


def container_name(project: str, role: Role, plugin: str | None = None) -> str:
    """`<project>-dev-<role>` and `<project>-dev-<role>-<plugin slug>`."""
    base = f"{project}-dev-{role}"
    return f"{base}-{image_repository_name(plugin)}" if plugin else base


def build(inputs: Inputs, ports: Callable[[str], int]) -> DevPlan:
    """The plan. `ports(name)` gives the host port of each container (a free one, or the
    one a running container already has, so that an unchanged container stays)."""
    project, network = inputs.project, inputs.network
    _check_slugs(project, inputs.plugins)
    containers: list[ContainerSpec] = []

    if inputs.bus_url is None:
        redis = _redis(inputs, ports)
        containers.append(redis)
        bus_url = Secret(
            f"redis://{container_name(project, 'redis')}:{REDIS_PORT}/0"
            if network == "bridge"
            else redis.url
        )
    else:
        bus_url = inputs.bus_url
    if inputs.database is None:
        postgres = _postgres(inputs, ports)
        containers.append(postgres)
        host, port = (
            (container_name(project, "postgres"), POSTGRES_PORT)
            if network == "bridge"
            else (LOOPBACK, postgres.port)
        )
        password = inputs.postgres_password.reveal()
        database = ExternalDatabase(
            Secret(f"postgresql://{POSTGRES_USER}:{password}@{host}:{port}/{POSTGRES_DB}")
        )
    else:
        database = inputs.database

    from migrate.inventory import event_graph

    graph = json.dumps(event_graph(inputs.plugins), sort_keys=True, separators=(",", ":"))
    bus_env: list[tuple[str, str | Secret]] = [("MIGRATE_BUS", "redis"), ("REDIS_URL", bus_url)]
    name = container_name(project, "orchestrator")
    containers.append(
        _runtime(
            inputs,
            ports,
            name=name,
            role="orchestrator",
            plugin=None,
            image=inputs.images.orchestrator,
            env=[
                *bus_env,
                ("MIGRATE_CONSUMER", name),
                ("DATABASE_URL", database.url),
                ("DATABASE_SCHEMA", inputs.schema),
                ("MIGRATE_EVENT_GRAPH", graph),
            ],
            mounts=(database.mount,) if database.mount else (),
        )
    )

    skipped = []
    for plugin in sorted(inputs.plugins, key=lambda p: p.name):
        image = inputs.images.plugins[plugin.name]
        ttl = inputs.cache_ttl_s.get(plugin.name, 0)
        cache: list[tuple[str, str | Secret]] = (
            [("MIGRATE_CACHE_TTL_S", str(ttl)), ("MIGRATE_CACHE_URL", bus_url)] if ttl > 0 else []
        )
        events = plugin.manifest.events
        if events.consumes:
            name = container_name(project, "worker", plugin.name)
            containers.append(
                _runtime(
                    inputs,
                    ports,
                    name=name,
                    role="worker",
                    plugin=plugin.name,
                    image=image,
                    env=[
                        ("MIGRATE_PLUGIN", plugin.name),
                        *bus_env,
                        ("MIGRATE_CONSUMES", ",".join(events.consumes)),
                        ("MIGRATE_PRODUCES", ",".join(events.produces)),
                        ("MIGRATE_GROUP", f"{plugin.name}-worker"),
                        ("MIGRATE_CONSUMER", name),
                        *cache,
                    ],
                )
            )
        else:
            skipped.append(f"{plugin.name}: no worker, its plugin.yaml consumes no events")
        containers.append(
            _runtime(
                inputs,
                ports,
                name=container_name(project, "service", plugin.name),
                role="service",
                plugin=plugin.name,
                image=image,
                env=[("MIGRATE_PLUGIN", plugin.name), *cache],
            )
        )
    return DevPlan(project, network, tuple(containers), tuple(skipped))


def _runtime(
    inputs: Inputs,
    ports: Callable[[str], int],
    *,
    name: str,
    role: Role,
    plugin: str | None,
    image: str,
    env: Iterable[tuple[str, str | Secret]],
    mounts: tuple[Mount, ...] = (),
) -> ContainerSpec:
    port = ports(name)
    if inputs.network == "host":
        listen: list[tuple[str, str | Secret]] = [("HOST", LOOPBACK), ("PORT", str(port))]
        inside = port
    else:
        listen = [("HOST", "0.0.0.0"), ("PORT", str(RUNTIME_PORT))]
        inside = RUNTIME_PORT
    return ContainerSpec(
        name=name,
        role=role,
        plugin=plugin,
        image=image,
        env=(("MIGRATE_ROLE", role), *listen, *env),
        port=port,
        container_port=inside,
        url=f"http://{LOOPBACK}:{port}",
        probe="http",
        mounts=mounts,
    )


def _redis(inputs: Inputs, ports: Callable[[str], int]) -> ContainerSpec:
    name = container_name(inputs.project, "redis")
    port = ports(name)
    if inputs.network == "host":
        command = ("redis-server", "--bind", LOOPBACK, "--port", str(port))
        inside = port
    else:  # reached from the other containers: not loopback, so protected mode is off
        command = ("redis-server", "--port", str(REDIS_PORT), "--protected-mode", "no")
        inside = REDIS_PORT
    return ContainerSpec(
        name=name,
        role="redis",
        plugin=None,
        image=inputs.images.redis,
        env=(),
        port=port,
        container_port=inside,
        url=f"redis://{LOOPBACK}:{port}/0",
        probe="redis",
        command=(*command, "--save", "", "--appendonly", "no"),
    )


def _postgres(inputs: Inputs, ports: Callable[[str], int]) -> ContainerSpec:
    name = container_name(inputs.project, "postgres")
    port = ports(name)
    inside = port if inputs.network == "host" else POSTGRES_PORT
    listen = LOOPBACK if inputs.network == "host" else "*"
    return ContainerSpec(
        name=name,
        role="postgres",
        plugin=None,
        image=inputs.images.postgres,
        env=(
            ("POSTGRES_USER", POSTGRES_USER),
            ("POSTGRES_PASSWORD", inputs.postgres_password),
            ("POSTGRES_DB", POSTGRES_DB),
            ("PGPORT", str(inside)),
        ),
        port=port,
        container_port=inside,
        url=f"postgresql://{POSTGRES_USER}@{LOOPBACK}:{port}/{POSTGRES_DB}",
        probe="postgres",
        command=("postgres", "-c", f"listen_addresses={listen}", "-c", f"port={inside}"),
    )


def _check_slugs(project: str, plugins: Sequence[Plugin]) -> None:
    seen: dict[str, str] = {}
    for plugin in plugins:
        slug = image_repository_name(plugin.name)
        if slug in seen:
            raise UserError(
                f"plugins {seen[slug]!r} and {plugin.name!r} would both run as "
                f"{container_name(project, 'service', plugin.name)}",
                hint="rename one of them (plugin.yaml `name`), or start one with --plugin",
            )
        seen[slug] = plugin.name


# --- the URLs given on the command line ----------------------------------------------


def bus_url(url: str, network: Network) -> Secret:
    """`--bus-url`: a Redis URL the containers can reach."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise UserError(
            f"--bus-url {mask_text(url)}: `migrate dev` runs the bus on Redis Streams and needs a "
            "redis:// or rediss:// URL",
            hint="e.g. --bus-url redis://127.0.0.1:6379/0, or leave it out to start a Redis "
            "container from dev.redis_image",
        )
    if network == "bridge" and (parts.hostname or "") in _LOOPBACK_HOSTS:
        raise UserError(
            f"--bus-url {mask_text(url)} names this machine's loopback, which containers on a "
            "bridge network cannot reach",
            hint="use --network host, or an address the containers can reach",
        )
    return Secret(url)


def external_database(url: str, network: Network) -> ExternalDatabase:
    """`--database-url` (a URL or a libpq key=value string) for the orchestrator container.

    A socket directory as host (the embedded server's `?host=/path`) cannot be reached
    from a container: the server's socket file is mounted into it, and the URL points
    there. Pure: whether the socket exists is checked by the caller.
    """
    from psycopg import conninfo

    try:
        params = conninfo.conninfo_to_dict(url)
    except Exception:  # psycopg's ProgrammingError: the message may quote the URL
        raise UserError(
            f"--database-url {mask_text(url)} is not a PostgreSQL URL",
            hint="e.g. postgresql://USER:PASSWORD@127.0.0.1:5432/DB",
        ) from None
    host = str(params.get("host") or "")
    if not host:
        raise UserError(
            f"--database-url {mask_text(url)} names no host",
            hint="give the server's address (…@127.0.0.1:5432/DB) or its socket directory "
            "(?host=/path/to/socket/dir)",
        )
    if host.startswith("/"):
        port = str(params.get("port") or POSTGRES_PORT)
        socket = f".s.PGSQL.{port}"
        rewritten = conninfo.make_conninfo(url, host=SOCKET_DIR)
        mount = Mount(source=f"{host.rstrip('/')}/{socket}", target=f"{SOCKET_DIR}/{socket}")
        return ExternalDatabase(Secret(rewritten), mount)
    if network == "bridge" and host in _LOOPBACK_HOSTS:
        raise UserError(
            f"--database-url {mask_text(url)} names this machine's loopback, which containers on "
            "a bridge network cannot reach",
            hint="use --network host, or an address the containers can reach",
        )
    return ExternalDatabase(Secret(url))
