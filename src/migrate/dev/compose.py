"""`dev/compose.yaml`: the containers of `migrate dev up`, as a Compose file.

The services come from the same plan as `dev up` (`plan.build`): a Redis and a
PostgreSQL from `dev.redis_image`/`dev.postgres_image`, the orchestrator, and per
plugin a worker (when it consumes events) and a service, each with the environment
`dev up` gives it, and the images by their content-hash tags (`migrate images build`
makes them; `pull_policy: never`). The network is `dev.network`: host networking
(every container on 127.0.0.1, on fixed ports from `FIRST_PORT` in plan order) or the
default network of the Compose project (services reach each other by name, ports
published on 127.0.0.1 only).

No secret is written here: the PostgreSQL password is `${PASSWORD_VARIABLE}`, which
Compose reads from the environment or from the `.env` next to the file (the
`dev-environments` task writes it, mode 0600, never overwritten). Every other `$` is
doubled, so a plugin's text is never interpolated. No top-level `name:` (Compose v1
refuses it): the project name is given with `-p`, or COMPOSE_PROJECT_NAME.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from migrate.dev import plan
from migrate.errors import UserError
from migrate.secrets import Secret

if TYPE_CHECKING:
    from migrate.engine.context import Context

FIRST_PORT = 18000  # host ports: redis, postgres, orchestrator, then worker/service per plugin
PASSWORD_VARIABLE = "MIGRATE_DEV_POSTGRES_PASSWORD"
ENV_FILE = ".env"
_MISSING = "is not set: run migrate apply --only dev-environments, which writes it to dev/.env"
LABEL_COMPOSE = "io.migrate.compose"


@dataclass(frozen=True)
class Service:
    """One service of the Compose file; every value as Compose reads it (`$` escaped)."""

    name: str
    role: str
    plugin: str | None
    image: str
    environment: dict[str, str]
    command: list[str] | None
    ports: list[str]  # "127.0.0.1:HOST:CONTAINER", bridge networking only
    depends_on: list[str]
    labels: dict[str, str]
    url: str  # how this machine reaches it


@dataclass(frozen=True)
class Compose:
    project: str  # the Compose project name to use with -p
    network: plan.Network
    services: tuple[Service, ...]
    skipped: tuple[str, ...]
    password_variable: str = PASSWORD_VARIABLE

    def document(self) -> dict[str, Any]:
        """The file as data (what the template writes)."""
        services: dict[str, Any] = {}
        for s in self.services:
            body: dict[str, Any] = {"image": s.image, "pull_policy": "never"}
            if self.network == "host":
                body["network_mode"] = "host"
            else:
                body["ports"] = s.ports
            if s.command is not None:
                body["command"] = s.command
            if s.environment:
                body["environment"] = s.environment
            if s.depends_on:
                body["depends_on"] = s.depends_on
            body["restart"] = "on-failure"
            body["labels"] = s.labels
            services[s.name] = body
        return {"services": services}


def escape(value: str) -> str:
    """A literal value for Compose: `$` would start an interpolation."""
    return value.replace("$", "$$")


def build(ctx: Context) -> Compose:
    """The Compose model of the project's dev environment. Pure: reads the project
    (build contexts are hashed, nothing is built), asks no engine."""
    from migrate.images.targets import orchestrator_target, plan_targets

    config = ctx.config
    plugins = list(ctx.inventory.plugins)
    targets = plan_targets(ctx, plugins)
    orchestrator = orchestrator_target(ctx)
    for target in [*targets, orchestrator]:
        if target.error is not None:
            raise UserError(
                f"dev/compose.yaml names every image by its content hash, and one cannot be "
                f"made: {target.error}",
                hint="fix the plugin (see `migrate images build`), then apply again",
            )
    images = {target.plugin.name: target.image for target in targets if target.plugin}
    marker = f"@@{secrets.token_hex(16)}@@"  # stands for the password until it is escaped
    inputs = plan.Inputs(
        project=config.project,
        network=plan_network(config.dev.network),
        plugins=plugins,
        images=plan.Images(
            plugins=images,
            orchestrator=orchestrator.image,
            redis=config.dev.redis_image,
            postgres=config.dev.postgres_image,
        ),
        schema=config.target.db_schema,
        postgres_password=Secret(marker),
        cache_ttl_s={name: s.cache_ttl_s for name, s in config.plugins.items()},
    )
    ports = itertools.count(FIRST_PORT)
    the_plan = plan.build(inputs, lambda _name: next(ports))
    reference = f"${{{PASSWORD_VARIABLE}:?{_MISSING}}}"
    infra = [c.name for c in the_plan.infra]
    services = []
    for spec in the_plan.containers:
        environment = {
            key: escape(value).replace(marker, reference)
            for key, value in spec.environment().items()
        }
        services.append(
            Service(
                name=spec.name,
                role=spec.role,
                plugin=spec.plugin,
                image=escape(spec.image),
                environment=environment,
                command=[escape(part) for part in spec.command] if spec.command else None,
                ports=[f"{plan.LOOPBACK}:{spec.port}:{spec.container_port}"],
                depends_on=infra if spec.role in plan.RUNTIME_ROLES else [],
                labels={
                    plan.LABEL_PROJECT: escape(config.project),
                    LABEL_COMPOSE: "1",
                    plan.LABEL_ROLE: spec.role,
                    plan.LABEL_PLUGIN: escape(spec.plugin or ""),
                    plan.LABEL_URL: spec.url,
                },
                url=spec.url,
            )
        )
    return Compose(
        project=plan.network_name(config.project),
        network=the_plan.network,
        services=tuple(services),
        skipped=the_plan.skipped,
    )


def plan_network(value: str) -> plan.Network:
    return "bridge" if value == "bridge" else "host"


class LazyCompose:
    """What templates see as `compose`: built on first use only, so rendering the CI
    files does not hash every plugin's build context."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._model: Compose | None = None

    def _get(self) -> Compose:
        if self._model is None:
            self._model = build(self._ctx)
        return self._model

    @property
    def project(self) -> str:
        return self._get().project

    @property
    def network(self) -> str:
        return self._get().network

    @property
    def services(self) -> tuple[Service, ...]:
        return self._get().services

    @property
    def skipped(self) -> tuple[str, ...]:
        return self._get().skipped

    @property
    def password_variable(self) -> str:
        return PASSWORD_VARIABLE

    @property
    def env_file(self) -> str:
        return ENV_FILE

    def document(self) -> dict[str, Any]:
        return self._get().document()
