"""The project config, `migrate.yaml` (DESIGN 3.2)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from migrate.errors import ConfigError
from migrate.secrets import Secret

CONFIG_FILE = "migrate.yaml"
STATE_DIR = ".migrate"
# The base image of plugin images: `--base-image`, then this variable, then target.base_image
ENV_BASE_IMAGE = "MIGRATE_BASE_IMAGE"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SQL_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Source(_Model):
    """The legacy application to migrate."""

    path: Annotated[
        str, Field(description="Directory of the legacy application, relative to the project.")
    ]


class Monitoring(_Model):
    """Observability of the rendered workloads (phase 1 installs the stack)."""

    operator: Annotated[
        bool,
        Field(
            description="Render a ServiceMonitor per workload (needs the Prometheus operator, "
            "which phase 1 installs with kube-prometheus-stack)."
        ),
    ] = True
    namespace: Annotated[
        str, Field(description="Namespace of the monitoring stack (Helm releases).")
    ] = "monitoring"
    otlp_endpoint: Annotated[
        str,
        Field(
            description="OpenTelemetry endpoint (OTLP over HTTP) the workloads send traces to; "
            "the default is the Jaeger collector that phase 1 renders."
        ),
    ] = "http://jaeger-collector.monitoring.svc:4318"


class Jwt(_Model):
    """Who may call a plugin's `POST /invoke` through the ingress: bearers of a JWT from
    this issuer (Istio RequestAuthentication + AuthorizationPolicy, docs/manifests.md)."""

    issuer: Annotated[str, Field(description="The tokens' `iss`, e.g. https://auth.example.com/.")]
    jwks_uri: Annotated[
        str, Field(description="Where the issuer publishes its signing keys (JWKS).")
    ]
    audiences: Annotated[
        list[str], Field(description="Accepted `aud` values; empty: any audience.")
    ] = []


class Ingress(_Model):
    """The entry point that routes `/plugins/<name>` to each plugin (nginx or Gateway API)."""

    controller: Annotated[
        Literal["nginx", "gateway"],
        Field(
            description="nginx: an Ingress for ingress-nginx (installed by the roadmap); "
            "gateway: a Gateway API Gateway + HTTPRoute for a controller already in the "
            "cluster (class_name names its GatewayClass, e.g. istio)."
        ),
    ] = "nginx"
    host: Annotated[
        str | None,
        Field(
            description="Public host name of the plugins (and of their TLS certificate). "
            "Unset: any host over plain HTTP, with a warning at render time.",
            pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        ),
    ] = None
    class_name: Annotated[
        str, Field(description="IngressClass (nginx) or GatewayClass (gateway).")
    ] = "nginx"
    tls_secret: Annotated[
        str | None,
        Field(
            description="Secret (kubernetes.io/tls) holding the host's certificate; with "
            "cluster_issuer, where cert-manager writes it (default <project>-tls)."
        ),
    ] = None
    cluster_issuer: Annotated[
        str | None,
        Field(description="cert-manager ClusterIssuer that issues the host's certificate."),
    ] = None
    jwt: Annotated[
        Jwt | None,
        Field(
            description="The JWT issuer whose tokens open POST /invoke; unset: /invoke is "
            "closed to callers from outside the mesh (with the istio component)."
        ),
    ] = None


class Target(_Model):
    """Where the application goes."""

    namespace: Annotated[str, Field(description="Kubernetes namespace of the application.")]
    registry: Annotated[
        str | None,
        Field(description="Image registry, e.g. registry.example.com/team. Optional."),
    ] = None
    base_image: Annotated[
        str,
        Field(
            description="Base image for plugin images. Overridden by `--base-image` and "
            "MIGRATE_BASE_IMAGE."
        ),
    ] = "python:3.11-slim"
    database_url: Annotated[
        Secret | None,
        Field(
            description="PostgreSQL URL. Overridden by --database-url and MIGRATE_DATABASE_URL; "
            "when none is set an embedded PostgreSQL under .migrate/postgres is used."
        ),
    ] = None
    db_schema: Annotated[
        str, Field(alias="schema", description="PostgreSQL schema that receives the datasets.")
    ] = "legacy"
    kube_context: Annotated[
        str | None, Field(description="kubectl context of the target cluster. Optional.")
    ] = None
    kubernetes_version: Annotated[
        str,
        Field(
            description="Kubernetes version the manifests must be valid for (major.minor); "
            "they are also checked against the newest version the schema library knows.",
            pattern=r"^\d+\.\d+$",
        ),
    ] = "1.30"
    monitoring: Annotated[
        Monitoring, Field(description="Observability settings of the rendered workloads.")
    ] = Monitoring()
    ingress: Annotated[Ingress, Field(description="The entry point in front of the plugins.")] = (
        Ingress()
    )
    orchestrator_url: Annotated[
        str | None,
        Field(
            description="Base URL of the orchestrator as the machine running `migrate verify` "
            "reaches it (e.g. an Ingress or a `kubectl port-forward`), for the roadmap's "
            "`{{ target.orchestrator_url }}`. Unset: the running `migrate dev up` "
            "environment's, else the in-cluster Service http://<project>-orchestrator."
            "<namespace>.svc.",
            pattern=r"^https?://\S+$",
        ),
    ] = None

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError(
                f"{value!r} is not a valid Kubernetes namespace: use lower-case letters, digits "
                "and '-', at most 63 characters, starting and ending with a letter or digit"
            )
        return value

    @field_validator("db_schema")
    @classmethod
    def _schema(cls, value: str) -> str:
        if not _SQL_IDENT.match(value):
            raise ValueError(
                f"{value!r} is not a plain PostgreSQL schema name: use lower-case letters, "
                "digits and '_', starting with a letter or '_', at most 63 characters"
            )
        return value


class Pulumi(_Model):
    """Pulumi Automation API settings."""

    backend_url: Annotated[
        str | None,
        Field(description="Pulumi state backend; default a file backend under .migrate/pulumi."),
    ] = None
    stack_prefix: Annotated[
        str | None, Field(description="Prefix of stack names; default the project name.")
    ] = None
    secrets_provider: Annotated[
        str | None,
        Field(
            description="Pulumi secrets provider (e.g. awskms://alias/KEY); default a "
            "passphrase. A shared backend needs this or PULUMI_CONFIG_PASSPHRASE."
        ),
    ] = None
    keep_data: Annotated[
        bool,
        Field(
            description="Rollback and destroy keep Namespaces, PVCs and stateful custom "
            "resources (retained, not deleted); false deletes them."
        ),
    ] = True


class PluginSettings(_Model):
    """How the runtime treats one plugin (`plugins: {NAME: {...}}`)."""

    cache_ttl_s: Annotated[
        int,
        Field(
            ge=0,
            description="Cache the plugin's results in Redis for this many seconds, keyed by "
            "the plugin's version and the canonical payload (phase 4). 0: no cache. Only for "
            "plugins whose result depends on nothing but the payload.",
        ),
    ] = 0


class Dev(_Model):
    """`migrate dev up`: the migrated system on the local Docker engine."""

    redis_image: Annotated[
        str,
        Field(
            description="Image of the Redis started when no --bus-url is given (never pulled "
            "by tests; an engine that cannot pull it says so)."
        ),
    ] = "redis:7-alpine"
    postgres_image: Annotated[
        str,
        Field(description="Image of the PostgreSQL started when no --database-url is given."),
    ] = "postgres:16-alpine"
    network: Annotated[
        str,
        Field(
            description="Docker network mode: host (ports on 127.0.0.1) or bridge.",
            pattern=r"^(host|bridge)$",
        ),
    ] = "host"


class Ci(_Model):
    """The generated pipelines and dev files (`ci-cd-pipelines`, `dev-environments`)."""

    install: Annotated[
        str | None,
        Field(
            description="What they `pip install` to get migrate: pip arguments, e.g. "
            "'--index-url https://pypi.example.com/simple migrate-k8s-roadmap[k8s]==0.1.0' or "
            "a wheel's URL. Every requirement must be pinned (NAME==VERSION, NAME @ URL, or a "
            "wheel/sdist URL or path). Unset: migrate-k8s-roadmap[k8s]==<the running version>."
        ),
    ] = None

    @field_validator("install")
    @classmethod
    def _pinned(cls, value: str | None) -> str | None:
        if value is not None:
            from migrate.install import parse

            parse(value)  # a ValueError says what is not pinned
        return value


class Replay(_Model):
    """`migrate compare` / `bench`: the recorded invocations replayed against the images."""

    dataset: Annotated[
        str,
        Field(
            min_length=1,
            description="The dataset of recorded invocations (a directory under data/, e.g. "
            "agent_runs), read as `data load` reads it.",
        ),
    ]
    plugin_key: Annotated[
        str, Field(min_length=1, description="Key of a record that names the plugin (a.b: nested).")
    ] = "plugin"
    input_key: Annotated[
        str, Field(min_length=1, description="Key of a record that holds the input (an object).")
    ] = "input"
    output_key: Annotated[
        str | None,
        Field(description="Key of the recorded output, if any: compared with the legacy answers."),
    ] = None
    where: Annotated[
        dict[str, list[str | int | float | bool | None]],
        Field(
            description="Keep only records whose key has one of these values, e.g. "
            "{status: [ok, succeeded]}."
        ),
    ] = {}
    ignore: Annotated[
        list[str],
        Field(
            description="JSON paths never compared, e.g. $.generated_at or $.items[*].id "
            "(besides the noise compare finds itself)."
        ),
    ] = []


class Performance(_Model):
    """`migrate bench` budgets: a plugin over one makes bench (and `performance`) fail."""

    p95_ms: Annotated[
        float | None, Field(gt=0, description="Largest p95 latency of the container, in ms.")
    ] = None
    max_p95_ratio: Annotated[
        float | None,
        Field(gt=0, description="Largest p95 of the container over the legacy code's p95."),
    ] = None


class Config(_Model):
    """`migrate.yaml`: one per project directory."""

    project: Annotated[str, Field(description="Project name; prefixes images and stacks.")]
    source: Source
    roadmap: Annotated[str, Field(description="Path of the roadmap, relative to the project.")] = (
        "phases/roadmap.yaml"
    )
    target: Target
    pulumi: Pulumi = Pulumi()
    plugins: Annotated[
        dict[str, PluginSettings],
        Field(description="Runtime settings per plugin, by plugin name (e.g. cache_ttl_s)."),
    ] = {}
    dev: Annotated[Dev, Field(description="Settings of `migrate dev up`.")] = Dev()
    ci: Annotated[
        Ci, Field(description="How the generated pipelines and dev files install migrate.")
    ] = Ci()
    replay: Annotated[
        Replay | None,
        Field(description="The replay corpus of `migrate compare` and `migrate bench`."),
    ] = None
    performance: Annotated[
        Performance, Field(description="Latency budgets of `migrate bench`.")
    ] = Performance()

    @field_validator("project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not _DNS_LABEL.match(value):
            raise ValueError(
                f"{value!r} is not a valid project name: use lower-case letters, digits and '-' "
                "(it names images, stacks and Kubernetes objects)"
            )
        return value


def load_config(project_dir: Path) -> Config:
    from migrate import yamlfile

    path = project_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"no {CONFIG_FILE} in {project_dir}",
            hint="run `migrate init --source PATH/TO/APP` here, or pass -C DIR to name the project",
        )
    located = yamlfile.load(path, error=ConfigError, what=CONFIG_FILE)
    config: Config = yamlfile.validate(Config, located, error=ConfigError)
    base_image = os.environ.get(ENV_BASE_IMAGE, "").strip()
    if base_image:  # `--base-image` (the CLI sets the variable), then the variable, then the file
        target = config.target.model_copy(update={"base_image": base_image})
        config = config.model_copy(update={"target": target})
    return config
