"""The declarative check syntax of a task's `checks` list (DESIGN 3.6).

Each check is a mapping with exactly one key naming its kind, plus optional
`name` and `host` (a testinfra host spec). Running them is `migrate verify`'s
job; this module only defines and validates the syntax.

Most kinds test that something exists; `event_flow` and `cache_hit` test that
the migrated system behaves: a run reaches the expected events, a repeated
call is served from the cache. Those two run from the machine running verify.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

HOST_BACKENDS = (
    "local",
    "docker",
    "podman",
    "ssh",
    "paramiko",
    "kubectl",
    "openshift",
    "winrm",
    "ansible",
    "salt",
    "lxc",
    "chroot",
)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileCheck(_Params):
    path: str
    exists: bool = True
    contains: str | None = None
    directory: bool | None = None


class CommandCheck(_Params):
    run: str
    rc: int = 0
    stdout_contains: str | None = None
    stderr_contains: str | None = None


class SocketCheck(_Params):
    address: str
    listening: bool = True

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not value.startswith(("tcp://", "udp://", "unix://")):
            raise ValueError("an address starts with tcp://, udp:// or unix://")
        return value


class ServiceCheck(_Params):
    name: str
    running: bool = True
    enabled: bool | None = None


class ProcessCheck(_Params):
    comm: str
    user: str | None = None


class PackageCheck(_Params):
    name: str
    installed: bool = True
    version: str | None = None


def _http_url(value: str) -> str:
    # `{{ target.orchestrator_url }}/readyz`: checked once expanded, when verify runs it
    if "{{" not in value and not value.startswith(("http://", "https://")):
        raise ValueError("a url starts with http:// or https://")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class HttpCheck(_Params):
    url: HttpUrl
    status: int = 200
    contains: str | None = None
    timeout: Annotated[float, Field(gt=0)] = 5.0


class EventFlowCheck(_Params):
    """POST an event to the orchestrator's /runs; pass when the run shows every `expect`ed
    event type within `within` seconds."""

    orchestrator: HttpUrl
    event: Annotated[str, Field(min_length=1)]
    payload: dict[str, Any] = {}
    expect: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    within: Annotated[float, Field(gt=0, le=3600)] = 30.0


class CacheHitCheck(_Params):
    """POST the same payload twice to a plugin service's /invoke; pass when its
    `migrate_cache_hits_total{plugin=...}` grew by at least 1."""

    url: HttpUrl
    plugin: Annotated[str, Field(min_length=1)]
    payload: dict[str, Any] = {}
    timeout: Annotated[float, Field(gt=0, le=600)] = 5.0


def _plugins(value: Any) -> Any:
    if value == "all" or (
        isinstance(value, list) and value and all(isinstance(v, str) and v for v in value)
    ):
        return value
    raise ValueError("plugins is `all` or a list of plugin names")


PluginSelection = Annotated[str | list[str], AfterValidator(_plugins)]


class EquivalenceCheck(_Params):
    """`migrate compare`: every selected plugin's image gives the legacy answers to the
    replay corpus (`sample` inputs per plugin, spread over it)."""

    plugins: PluginSelection = "all"
    sample: Annotated[int | None, Field(ge=1)] = 200


class PerformanceCheck(_Params):
    """`migrate bench`: every selected plugin's container is within the latency budgets
    (these, else `performance:` in migrate.yaml) and answers without errors."""

    plugins: PluginSelection = "all"
    p95_ms: Annotated[float | None, Field(gt=0)] = None
    max_p95_ratio: Annotated[float | None, Field(gt=0)] = None
    concurrency: Annotated[int, Field(ge=1, le=1024)] = 4
    duration: Annotated[float, Field(gt=0, le=600)] = 5.0


class DockerContainerCheck(_Params):
    name: str
    running: bool = True


class PostgresTableCheck(_Params):
    table: str
    min_rows: Annotated[int, Field(ge=0)] = 0


class K8sResourceCheck(_Params):
    kind: str
    name: str
    namespace: str | None = None


CHECK_KINDS: dict[str, type[_Params] | type[str]] = {
    "file": FileCheck,
    "command": CommandCheck,
    "socket": SocketCheck,
    "service": ServiceCheck,
    "process": ProcessCheck,
    "package": PackageCheck,
    "http": HttpCheck,
    "docker_container": DockerContainerCheck,
    "postgres_table": PostgresTableCheck,
    "k8s_resource": K8sResourceCheck,
    "testinfra": str,
    "event_flow": EventFlowCheck,
    "cache_hit": CacheHitCheck,
    "equivalence": EquivalenceCheck,
    "performance": PerformanceCheck,
}
# Kinds that run from the machine running verify, whatever `host` says.
IN_PROCESS = frozenset(("postgres_table", "event_flow", "cache_hit", "equivalence", "performance"))
PROOF = frozenset(("equivalence", "performance"))  # migrate compare / bench, as checks
_NO_HOST = (
    "event_flow",
    "cache_hit",
    "equivalence",
    "performance",
)  # `host` would only mislead: refused


class Check(BaseModel):
    """One check: exactly one kind key, plus optional `name` and `host`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    host: str = "local://"
    file: FileCheck | None = None
    command: CommandCheck | None = None
    socket: SocketCheck | None = None
    service: ServiceCheck | None = None
    process: ProcessCheck | None = None
    package: PackageCheck | None = None
    http: HttpCheck | None = None
    docker_container: DockerContainerCheck | None = None
    postgres_table: PostgresTableCheck | None = None
    k8s_resource: K8sResourceCheck | None = None
    testinfra: str | None = None
    event_flow: EventFlowCheck | None = None
    cache_hit: CacheHitCheck | None = None
    equivalence: EquivalenceCheck | None = None
    performance: PerformanceCheck | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(
                "a check is a mapping with one kind key, e.g. {file: {path: /etc/app.conf}}"
            )
        unknown = [key for key in data if key not in CHECK_KINDS and key not in ("name", "host")]
        if unknown:
            raise ValueError(f"unknown check kind {unknown[0]!r}; kinds: {', '.join(CHECK_KINDS)}")
        kinds = [key for key in data if key in CHECK_KINDS]
        if len(kinds) != 1:
            found = f"found {', '.join(kinds)}" if kinds else "found none"
            raise ValueError(
                f"a check needs exactly one kind key ({found}); kinds: {', '.join(CHECK_KINDS)}"
            )
        kind = kinds[0]
        if kind in _NO_HOST and data.get("host", "local://") != "local://":
            raise ValueError(
                f"{kind} runs from the machine running verify, not on a host: remove `host` "
                "(put the address to reach in the check's URL)"
            )
        return data

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        scheme, sep, _ = value.partition("://")
        if not sep or scheme not in HOST_BACKENDS:
            raise ValueError(
                f"{value!r} is not a testinfra host spec: write BACKEND://[target] with BACKEND "
                f"one of {', '.join(HOST_BACKENDS)}"
            )
        return value

    @property
    def kind(self) -> str:
        for key in CHECK_KINDS:
            if getattr(self, key) is not None:
                return key
        raise AssertionError("validated checks have a kind")

    @property
    def params(self) -> _Params | str:
        value: _Params | str = getattr(self, self.kind)
        return value

    @property
    def label(self) -> str:
        """The name shown in reports: `name`, or a short description of the check."""
        if self.name:
            return self.name
        params = self.params
        if isinstance(params, str):
            return f"testinfra {params}"
        if isinstance(params, EventFlowCheck):
            return f"event_flow {params.event} -> {', '.join(params.expect)}"
        if isinstance(params, CacheHitCheck):
            return f"cache_hit {params.plugin}"
        if isinstance(params, EquivalenceCheck | PerformanceCheck):
            chosen = (
                params.plugins if isinstance(params.plugins, str) else ", ".join(params.plugins)
            )
            return (
                f"{self.kind} of {chosen} plugins" if chosen == "all" else f"{self.kind} {chosen}"
            )
        first = next(iter(params.model_dump().values()))
        return f"{self.kind} {first}"
