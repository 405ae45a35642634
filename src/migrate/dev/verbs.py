"""`migrate dev up | down | status` as typed functions over a project directory."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from migrate.dev import plan, probe, state
from migrate.errors import MigrateError, UserError
from migrate.reporting import NullReporter, Reporter
from migrate.secrets import Secret, mask_text

if TYPE_CHECKING:
    from docker import APIClient

    from migrate.dev.engine import Observed
    from migrate.engine.context import Context
    from migrate.inventory import Plugin

DEFAULT_TIMEOUT = 180.0  # seconds for every container to become ready
POLL = 0.25  # seconds between two rounds of readiness probes
MAX_RESTARTS = 3  # restarts while waiting that make a container "crashing"
DEAD_LETTER_LIMIT = 10_000  # dead letters read per type by `status`


class ImageMissingError(UserError):
    """An image `dev up` needs is not in the engine, and --pull was not given."""


# --- up -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """One container after `dev up`."""

    name: str
    role: str
    plugin: str | None
    url: str
    ready: bool
    image: str
    action: str  # created | replaced | kept

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "plugin": self.plugin,
            "url": self.url,
            "ready": self.ready,
            "image": self.image,
            "action": self.action,
        }


@dataclass(frozen=True)
class UpResult:
    project: str
    network: str
    orchestrator: str
    containers: list[Started]
    removed: list[str] = field(default_factory=list)  # containers no longer planned
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "project": self.project,
            "network": self.network,
            "orchestrator": self.orchestrator,
            "containers": [c.to_dict() for c in self.containers],
            "removed": self.removed,
        }

    def state(self) -> dict[str, Any]:
        """The `.migrate/dev.json` document: no secrets, no image ids."""
        return {
            "version": state.VERSION,
            "project": self.project,
            "network": self.network,
            "orchestrator": self.orchestrator,
            "containers": [
                {k: c.to_dict()[k] for k in ("name", "role", "plugin", "url", "ready")}
                for c in self.containers
            ],
        }


def up(
    project_dir: Path,
    *,
    network: str | None = None,
    bus_url: str | None = None,
    database_url: str | None = None,
    plugins: Sequence[str] | None = None,
    pull: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    reporter: Reporter | None = None,
) -> UpResult:
    """Start (or bring up to date) the dev environment and wait until every container
    is ready. Idempotent: matching running containers are kept."""
    from migrate.dev import engine
    from migrate.project import open_context
    from migrate.state.lock import ProjectLock

    ctx = open_context(project_dir, reporter)
    reporter = ctx.reporter
    config = ctx.config
    mode = _network(network or config.dev.network)
    selected = _select(ctx, plugins)
    bus = plan.bus_url(bus_url, mode) if bus_url else None
    database = plan.external_database(database_url, mode) if database_url else None
    if database is not None and database.mount is not None:
        identity = _socket_identity(database.mount.source)
        database = replace(database, mount=replace(database.mount, identity=identity))

    client = engine.connect()
    infra = {
        "redis": config.dev.redis_image if bus is None else None,
        "postgres": config.dev.postgres_image if database is None else None,
    }
    _require_infra_images(client, infra, pull=pull, reporter=reporter)
    plugin_images, orchestrator_image = _runtime_images(project_dir, selected, reporter)

    with ProjectLock(ctx.state_dir, "dev up"):
        observed = {o.name: o for o in engine.observe(client, config.project)}
        postgres = observed.get(plan.container_name(config.project, "postgres"))
        password = (postgres.env.get("POSTGRES_PASSWORD") if postgres else None) or _password()
        inputs = plan.Inputs(
            project=config.project,
            network=mode,
            plugins=selected,
            images=plan.Images(
                plugins=plugin_images,
                orchestrator=orchestrator_image,
                redis=infra["redis"] or "",
                postgres=infra["postgres"] or "",
            ),
            schema=config.target.db_schema,
            bus_url=bus,
            database=database,
            postgres_password=Secret(password),
            cache_ttl_s={name: s.cache_ttl_s for name, s in config.plugins.items()},
        )
        the_plan = plan.build(inputs, _Ports(observed))
        for line in the_plan.skipped:
            reporter.info(line)
        return _apply(ctx, client, the_plan, observed, timeout=timeout)


def _apply(
    ctx: Context,
    client: APIClient,
    the_plan: plan.DevPlan,
    observed: dict[str, Observed],
    *,
    timeout: float,
) -> UpResult:
    from migrate.dev import engine

    reporter, project = ctx.reporter, the_plan.project
    planned = set(the_plan.names())
    extras = [o for o in observed.values() if o.name not in planned]
    removed = engine.remove_all(client, extras)
    for name in removed:
        reporter.info(f"removed {name}: not part of this environment any more")
    if the_plan.network_name:
        engine.ensure_network(client, the_plan.network_name, project)

    actions: dict[str, str] = {}
    ready: dict[str, bool] = {}
    deadline = time.monotonic() + timeout
    try:
        for wave in (the_plan.infra, the_plan.runtime):  # the bus and database first
            for spec in wave:
                action, why = _converge(client, spec, the_plan, observed.get(spec.name))
                actions[spec.name] = action
                if action != "kept":
                    reporter.info(f"{action} {spec.name}" + (f": {why}" if why else ""))
            ready.update(_wait(client, wave, deadline, reporter))
    finally:
        result = UpResult(
            project,
            the_plan.network,
            the_plan.orchestrator.url,
            [
                Started(
                    c.name,
                    c.role,
                    c.plugin,
                    c.url,
                    ready.get(c.name, False),
                    c.image,
                    actions.get(c.name, "not started"),
                )
                for c in the_plan.containers
                if c.name in actions
            ],
            removed,
        )
        if actions:  # what is running now, even when a container failed
            state.save(ctx.project_dir, result.state())
    return result


def _converge(
    client: APIClient, spec: plan.ContainerSpec, the_plan: plan.DevPlan, old: Observed | None
) -> tuple[str, str]:
    """Create the container, keep it when it matches, or replace it: (action, why)."""
    from migrate.dev import engine

    current = engine.image_id(client, spec.image)
    if current is None:  # removed since the check: say which
        raise ImageMissingError(
            f"the image {spec.image} of {spec.name} is not in the Docker engine",
            hint="run `migrate dev up` again: it builds missing images",
        )
    digest = spec.digest(current, the_plan.network)
    if old is None:
        why = ""
    elif old.image_id != current:
        why = f"its image is now {spec.image}"
    elif old.spec != digest:
        why = "its settings changed (environment, command, ports or mounts)"
    elif not old.alive:
        why = f"it was {old.status}"
    else:
        return "kept", ""
    if old is not None:
        engine.remove(client, old.id)
    engine.create(client, spec, project=the_plan.project, digest=digest, network=the_plan.network)
    return ("replaced" if old is not None else "created"), why


def _wait(
    client: APIClient,
    specs: Sequence[plan.ContainerSpec],
    deadline: float,
    reporter: Reporter,
) -> dict[str, bool]:
    """Poll until every container is ready; a container that exits, keeps crashing or is
    not ready by the deadline is an error naming it, with the tail of its log."""
    from migrate.dev import engine

    if not specs:
        return {}
    pending = {s.name: s for s in specs}
    baseline: dict[str, int] = {}
    reasons: dict[str, str] = {}
    ready: dict[str, bool] = {s.name: False for s in specs}
    key = f"dev:ready:{specs[0].role}"
    reporter.start(key, f"waiting for {len(specs)} container(s) to be ready", len(specs))
    try:
        while pending:
            for name, spec in list(pending.items()):
                info = engine.inspect(client, name)
                if info is None:
                    raise engine.ContainerError(
                        f"{name} ({_what(spec)}) disappeared while starting",
                        hint="something removed it: run `migrate dev up` again",
                    )
                status = str(info["State"]["Status"])
                restarts = int(info.get("RestartCount") or 0)
                first = baseline.setdefault(name, restarts)
                if status in ("exited", "dead") or restarts - first >= MAX_RESTARTS:
                    code = info["State"].get("ExitCode")
                    how = "exited" if status in ("exited", "dead") else "keeps crashing"
                    _fail(client, spec, f"{how} (exit code {code})")
                if status == "running":
                    ok, reasons[name] = probe.probe(spec.probe, spec.url, spec.port)
                    if ok:
                        ready[name] = True
                        del pending[name]
                        reporter.advance(key)
                else:
                    reasons[name] = f"the container is {status}"
            if not pending:
                break
            if time.monotonic() > deadline:
                name, spec = next(iter(pending.items()))
                others = len(pending) - 1
                tail = f" ({others} other container(s) not ready either)" if others else ""
                _fail(client, spec, f"is not ready in time: {reasons.get(name, '?')}{tail}")
            time.sleep(POLL)  # a poll interval, bounded by the deadline above
    finally:
        reporter.done(key)
    return ready


def _fail(client: APIClient, spec: plan.ContainerSpec, what: str) -> None:
    from migrate.dev import engine

    log = engine.logs_tail(client, spec.name)
    if engine.port_taken(log):
        raise engine.PortInUseError(
            f"{spec.name}: port {spec.port} on {plan.LOOPBACK} is in use; its log:\n{log}",
            hint=engine.port_hint(spec.port),
        )
    raise engine.ContainerError(
        f"{spec.name} ({_what(spec)}) {what}; the last lines of its log:\n{log or '(empty)'}",
        hint=f"`docker logs {spec.name}` shows the whole log; fix the cause and run "
        "`migrate dev up` again (`migrate dev down` removes everything)",
    )


def _what(spec: plan.ContainerSpec) -> str:
    return f"{spec.role} of {spec.plugin}" if spec.plugin else spec.role


class _Ports:
    """Host ports: the one a live container already has (so it can be kept), else a
    free port on 127.0.0.1, never the same twice in one plan."""

    def __init__(self, observed: dict[str, Observed]) -> None:
        self._observed = observed
        self._taken: set[int] = set()

    def __call__(self, name: str) -> int:
        old = self._observed.get(name)
        if old is not None and old.alive and old.port and old.port not in self._taken:
            self._taken.add(old.port)
            return old.port
        for _ in range(100):
            port = free_port()
            if port not in self._taken and port not in self._live_ports():
                self._taken.add(port)
                return port
        raise UserError("no free port on 127.0.0.1", hint="free some ports and try again")

    def _live_ports(self) -> set[int]:
        return {o.port for o in self._observed.values() if o.alive and o.port}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe_socket:
        probe_socket.bind((plan.LOOPBACK, 0))
        return int(probe_socket.getsockname()[1])


def _password() -> str:
    import secrets

    return secrets.token_urlsafe(24)


def _network(value: str) -> plan.Network:
    if value not in ("host", "bridge"):
        raise UserError(f"network mode {value!r}: use host or bridge", key="dev.network")
    return cast(plan.Network, value)


def _select(ctx: Context, names: Sequence[str] | None) -> list[Plugin]:
    inventory = ctx.inventory
    if not names:
        return list(inventory.plugins)
    return [inventory.plugin(name) for name in dict.fromkeys(names)]  # unknown: InventoryError


def _socket_identity(path: str) -> str:
    """`device:inode` of the PostgreSQL socket at `path`; an error when there is none."""
    import stat

    try:
        info = Path(path).stat()
    except OSError:
        info = None
    if info is None or not stat.S_ISSOCK(info.st_mode):
        raise UserError(
            f"--database-url names a socket directory, but there is no PostgreSQL socket {path}",
            hint="start the server, or check the host= and port of --database-url",
        )
    return f"{info.st_dev}:{info.st_ino}"


def _require_infra_images(
    client: APIClient, images: dict[str, str | None], *, pull: bool, reporter: Reporter
) -> None:
    """Redis and PostgreSQL images: present, or pulled with --pull; never pulled otherwise."""
    from migrate.dev import engine

    flags = {
        "redis": ("--bus-url", "dev.redis_image"),
        "postgres": ("--database-url", "dev.postgres_image"),
    }
    for role, reference in images.items():
        if reference is None or engine.image_id(client, reference) is not None:
            continue
        flag, key = flags[role]
        if not pull:
            raise ImageMissingError(
                f"the {role} image {reference} is not in the Docker engine, and `migrate dev "
                "up` pulls nothing unless told to",
                file="migrate.yaml",
                key=key,
                hint=f"pass {flag} URL to use a {role} that already runs, or --pull to pull "
                f"{reference}, or set {key} to an image the engine has",
            )
        engine.pull(client, reference, reporter)


def _runtime_images(
    project_dir: Path, plugins: Sequence[Plugin], reporter: Reporter
) -> tuple[dict[str, str], str]:
    """Build what is missing (the images verbs skip what the engine has): the plugin
    images and the orchestrator image, by reference."""
    from migrate.images import verbs as images
    from migrate.images.context import ORCHESTRATOR

    # the names, never None: no name and orchestrator=True would select the orchestrator alone
    names = [p.name for p in plugins]
    result = images.build(project_dir, names, orchestrator=True, reporter=reporter)
    error = result.error()
    if error is not None:
        raise error
    by_plugin = {o.plugin: o.image for o in result.images if o.plugin is not None}
    orchestrator = next((o.image for o in result.images if o.role == ORCHESTRATOR), None)
    if orchestrator is None:  # the images verbs always build it when asked: a bug
        raise MigrateError("`migrate images build` gave no orchestrator image")
    return by_plugin, orchestrator


# --- status ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerStatus:
    name: str
    role: str
    plugin: str | None
    url: str
    state: str
    restarts: int
    ready: bool
    reason: str  # what the readiness probe saw

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "plugin": self.plugin,
            "url": self.url,
            "state": self.state,
            "restarts": self.restarts,
            "ready": self.ready,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class WorkerLag:
    plugin: str
    group: str
    types: list[str]
    lag: int | None  # None: the bus did not answer

    def to_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "group": self.group, "types": self.types, "lag": self.lag}


@dataclass(frozen=True)
class DeadLetters:
    type: str
    count: int
    last_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "count": self.count, "last_reason": self.last_reason}


@dataclass(frozen=True)
class StatusResult:
    project: str
    containers: list[ContainerStatus]
    workers: list[WorkerLag]
    dead_letters: list[DeadLetters]
    bus: str | None = None  # the bus URL asked, password masked
    bus_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "project": self.project,
            "containers": [c.to_dict() for c in self.containers],
            "workers": [w.to_dict() for w in self.workers],
            "dead_letters": [d.to_dict() for d in self.dead_letters],
            "bus": self.bus,
            "bus_error": self.bus_error,
        }


def status(project_dir: Path, *, reporter: Reporter | None = None) -> StatusResult:
    """The dev containers (state, restarts, readiness), each worker's consumer lag and
    the dead letters per event type. The bus URL comes from the running containers."""
    from migrate.config import load_config
    from migrate.dev import engine
    from migrate.project import check_dir

    reporter = reporter or NullReporter()
    config = load_config(check_dir(project_dir))
    client = engine.connect()
    observed = engine.observe(client, config.project)
    containers = []
    for o in observed:
        if o.status == "running":
            kind = {"redis": "redis", "postgres": "postgres"}.get(o.role, "http")
            ready, reason = probe.probe(kind, o.url, o.port or 0) if o.port else (False, "?")
        else:
            ready, reason = False, f"the container is {o.status}"
        containers.append(
            ContainerStatus(o.name, o.role, o.plugin, o.url, o.status, o.restarts, ready, reason)
        )
    workers = [o for o in observed if o.role == "worker"]
    lags = [
        WorkerLag(
            o.plugin or "",
            o.env.get("MIGRATE_GROUP") or f"{o.plugin}-worker",
            _split(o.env.get("MIGRATE_CONSUMES", "")),
            None,
        )
        for o in workers
    ]
    url = _bus_url(observed)
    if url is None:
        return StatusResult(config.project, containers, lags, [])
    types = sorted({t for w in lags for t in w.types})
    try:
        lags, letters = _ask_bus(url, lags, types)
    except OSError as exc:  # the bus's BusUnavailable (a ConnectionError): say so, go on
        reason = mask_text(f"{type(exc).__name__}: {exc}")
        reporter.warn(f"the bus at {mask_text(url)} did not answer: {reason}")
        return StatusResult(config.project, containers, lags, [], mask_text(url), reason)
    return StatusResult(config.project, containers, lags, letters, mask_text(url))


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _bus_url(observed: Sequence[Observed]) -> str | None:
    """The dev Redis as reached from here, else the REDIS_URL the containers were given."""
    for o in observed:
        if o.role == "redis" and o.alive and o.url:
            return o.url
    for role in ("orchestrator", "worker"):
        for o in observed:
            if o.role == role and o.env.get("REDIS_URL"):
                return o.env["REDIS_URL"]
    return None


def _ask_bus(
    url: str, lags: list[WorkerLag], types: list[str]
) -> tuple[list[WorkerLag], list[DeadLetters]]:
    from migrate.runtime.bus.redis import RedisBus

    bus = RedisBus(url)
    try:
        asked = [WorkerLag(w.plugin, w.group, w.types, bus.lag(w.types, w.group)) for w in lags]
        letters = []
        for kind in types:
            dead = bus.dead_letters(kind, limit=DEAD_LETTER_LIMIT)
            letters.append(DeadLetters(kind, len(dead), dead[-1].reason if dead else None))
    finally:
        bus.close()
    return asked, letters


# --- down -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DownResult:
    removed: list[str]
    networks: list[str]
    state_file_removed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "removed": self.removed,
            "networks": self.networks,
            "state_file_removed": self.state_file_removed,
        }


def down(project_dir: Path, *, reporter: Reporter | None = None) -> DownResult:
    """Remove every container of the project's dev environment (found by label, so also
    what a crashed `up` left), its network and `.migrate/dev.json`. Idempotent."""
    from migrate.config import STATE_DIR, load_config
    from migrate.dev import engine
    from migrate.project import check_dir
    from migrate.state.lock import ProjectLock

    reporter = reporter or NullReporter()
    config = load_config(check_dir(project_dir))
    client = engine.connect()
    with ProjectLock(project_dir / STATE_DIR, "dev down"):
        observed = engine.observe(client, config.project)
        key = "dev:down"
        reporter.start(key, f"removing {len(observed)} container(s)", 2)
        try:
            # the runtime first (workers drain into the bus), then the bus and database
            removed = engine.remove_all(
                client, [o for o in observed if o.role not in plan.INFRA_ROLES]
            )
            reporter.advance(key)
            removed += engine.remove_all(
                client, [o for o in observed if o.role in plan.INFRA_ROLES]
            )
            reporter.advance(key)
        finally:
            reporter.done(key)
        networks = engine.remove_networks(client, config.project)
        removed_state = state.remove(project_dir)
    return DownResult(sorted(removed), networks, removed_state)
