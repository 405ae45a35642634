"""The Docker engine calls of `migrate dev`, through the Docker SDK's low-level client.

The only module of `migrate.dev` that imports `docker`, and only inside its
functions. Containers are found by label (`io.migrate.project=<project>`,
`io.migrate.dev=1`), never by name alone, so `down` also finds what a crashed
`up` left. Nothing here pulls an image unless `pull()` is called.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrate.dev import plan
from migrate.errors import UserError
from migrate.images.engine import connect
from migrate.images.errors import SERVICES_HINT
from migrate.reporting import Reporter
from migrate.secrets import mask_text

if TYPE_CHECKING:
    from docker import APIClient

__all__ = ["SERVICES_HINT", "connect"]

LOG_TAIL = 30  # lines of a container's log shown when it fails
STOP_TIMEOUT = 10  # seconds a container has to drain after SIGTERM before SIGKILL


class PortInUseError(UserError):
    """A port `dev up` chose is taken by another process."""


class ContainerError(UserError):
    """A container could not be created or started, exited, or never became ready."""


@dataclass(frozen=True)
class Observed:
    """A container of the project's dev environment, as the engine reports it."""

    id: str
    name: str
    role: str
    plugin: str | None
    status: str  # created | running | restarting | paused | exited | dead
    restarts: int
    exit_code: int
    image_id: str
    url: str
    port: int | None
    spec: str  # the digest of the spec it was created from
    env: dict[str, str] = field(repr=False)  # may hold secrets: never print it

    @property
    def alive(self) -> bool:
        return self.status in ("running", "restarting")


def _filters(project: str) -> dict[str, Any]:
    return {"label": [f"{plan.LABEL_PROJECT}={project}", f"{plan.LABEL_DEV}=1"]}


def observe(client: APIClient, project: str) -> list[Observed]:
    """The project's dev containers, any state, sorted by name."""
    found = []
    for summary in client.containers(all=True, filters=_filters(project)):
        info = inspect(client, summary["Id"])
        if info is not None:
            found.append(_observed(info))
    return sorted(found, key=lambda o: o.name)


def inspect(client: APIClient, container: str) -> dict[str, Any] | None:
    from docker.errors import NotFound

    try:
        info: dict[str, Any] = client.inspect_container(container)
    except NotFound:
        return None
    return info


def _observed(info: dict[str, Any]) -> Observed:
    config = info.get("Config") or {}
    labels = config.get("Labels") or {}
    state = info.get("State") or {}
    env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
    port = labels.get(plan.LABEL_PORT, "")
    return Observed(
        id=info["Id"],
        name=str(info.get("Name", "")).lstrip("/"),
        role=labels.get(plan.LABEL_ROLE, ""),
        plugin=labels.get(plan.LABEL_PLUGIN) or None,
        status=str(state.get("Status", "")),
        restarts=int(info.get("RestartCount") or 0),
        exit_code=int(state.get("ExitCode") or 0),
        image_id=str(info.get("Image", "")),
        url=labels.get(plan.LABEL_URL, ""),
        port=int(port) if port.isdigit() else None,
        spec=labels.get(plan.LABEL_SPEC, ""),
        env=env,
    )


def image_id(client: APIClient, reference: str) -> str | None:
    """The id of the engine's image `reference`, or None when the engine has none."""
    from docker.errors import ImageNotFound, NotFound

    try:
        info: dict[str, Any] = client.inspect_image(reference)  # type: ignore[no-untyped-call]
    except (ImageNotFound, NotFound):
        return None
    return str(info["Id"])


def pull(client: APIClient, reference: str, reporter: Reporter) -> None:
    """Pull `reference` (only with `dev up --pull`)."""
    from docker.errors import APIError
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(reference)
    key = f"dev:pull:{reference}"
    reporter.start(key, f"pulling {reference}")
    try:
        for event in client.pull(repository, tag=tag or "latest", stream=True, decode=True):
            if "error" in event:
                raise APIError(str(event["error"]))
    except APIError as exc:
        raise UserError(
            f"pulling {reference} failed: {_reason(exc)}",
            hint="check the image name (dev.redis_image / dev.postgres_image in migrate.yaml) "
            "and that the engine can reach its registry, or load the image yourself",
        ) from None
    finally:
        reporter.done(key)


def ensure_network(client: APIClient, name: str, project: str) -> None:
    """The user-defined bridge network the containers share (bridge mode)."""
    if any(n.get("Name") == name for n in client.networks(names=[name])):
        return
    client.create_network(
        name,
        driver="bridge",
        labels={plan.LABEL_PROJECT: project, plan.LABEL_DEV: "1"},
        check_duplicate=True,
    )


def remove_networks(client: APIClient, project: str) -> list[str]:
    from docker.errors import APIError, NotFound

    removed = []
    for network in client.networks(filters=_filters(project)):
        try:
            client.remove_network(network["Id"])
        except NotFound:
            continue
        except APIError as exc:
            raise UserError(
                f"cannot remove the network {network.get('Name')}: {_reason(exc)}",
                hint="a container outside migrate still uses it: `docker network inspect` it",
            ) from None
        removed.append(str(network.get("Name", "")))
    return removed


def create(
    client: APIClient,
    spec: plan.ContainerSpec,
    *,
    project: str,
    digest: str,
    network: plan.Network,
) -> str:
    """Create and start the container of `spec`; its id."""
    from docker.errors import APIError
    from docker.types import Mount

    bridge = network == "bridge"
    network_name = plan.network_name(project)
    host_config = client.create_host_config(
        network_mode=network_name if bridge else "host",
        port_bindings={spec.container_port: (plan.LOOPBACK, spec.port)} if bridge else None,
        restart_policy=plan.RESTART_POLICY,
        mounts=[Mount(target=m.target, source=m.source, type="bind") for m in spec.mounts],
    )
    networking = (
        client.create_networking_config(  # the stubs say one EndpointConfig: it is a dict of them
            {network_name: client.create_endpoint_config(aliases=[spec.name])}  # type: ignore[arg-type]
        )
        if bridge
        else None
    )
    try:
        created = client.create_container(
            spec.image,
            command=list(spec.command) if spec.command is not None else None,
            name=spec.name,
            environment=spec.environment(),
            labels=spec.labels(project, digest),
            host_config=host_config,
            ports=[spec.container_port] if bridge else None,
            networking_config=networking,
            use_config_proxy=False,  # only the variables the plan sets
        )
    except APIError as exc:
        if exc.status_code == 409:
            raise ContainerError(
                f"a container named {spec.name} already exists and was not started by "
                "`migrate dev up`",
                hint=f"remove or rename it (`docker rm -f {spec.name}`), then run "
                "`migrate dev up` again",
            ) from None
        raise ContainerError(
            f"cannot create {spec.name}: {_reason(exc)}",
            hint="check the engine (`docker info`) and the image",
        ) from None
    container_id = str(created["Id"])
    try:
        client.start(container_id)
    except APIError as exc:
        reason = _reason(exc)
        if port_taken(reason):
            raise PortInUseError(
                f"{spec.name}: port {spec.port} on {plan.LOOPBACK} is in use",
                hint=port_hint(spec.port),
            ) from None
        raise ContainerError(
            f"cannot start {spec.name}: {reason}",
            hint="`migrate dev down` removes what was started; then run `migrate dev up` again",
        ) from None
    return container_id


def port_hint(port: int) -> str:
    return (
        f"stop what listens there (`ss -ltnp 'sport = :{port}'` shows it), or run "
        "`migrate dev down` and `migrate dev up` again: new containers get new free ports"
    )


def port_taken(text: str) -> bool:
    """Whether an engine error or a container's log says its port is taken."""
    text = text.lower()
    return "address already in use" in text or "port is already allocated" in text


def remove(client: APIClient, container: str, *, timeout: int = STOP_TIMEOUT) -> bool:
    """Stop (SIGTERM: workers drain) and remove a container and its anonymous volumes.
    False: it was already gone."""
    from docker.errors import APIError, NotFound

    try:
        client.stop(container, timeout=timeout)
    except NotFound:
        return False
    except APIError:
        pass  # not running, or being removed: removal below decides
    try:
        client.remove_container(container, v=True, force=True)
    except NotFound:
        return False
    except APIError as exc:
        if exc.status_code == 409:  # removal already in progress
            return True
        raise ContainerError(
            f"cannot remove {container}: {_reason(exc)}",
            hint=f"remove it by hand: `docker rm -f {container}`",
        ) from None
    return True


def remove_all(client: APIClient, containers: Iterable[Observed]) -> list[str]:
    """Remove containers concurrently (each may take seconds to drain); their names."""
    from concurrent.futures import ThreadPoolExecutor

    targets = list(containers)
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        gone = list(pool.map(lambda o: remove(client, o.id), targets))
    return [o.name for o, was_there in zip(targets, gone, strict=True) if was_there]


def logs_tail(client: APIClient, container: str, lines: int = LOG_TAIL) -> str:
    """The last lines of a container's log, passwords masked."""
    from docker.errors import APIError

    try:
        data = client.logs(container, stdout=True, stderr=True, tail=lines)
    except APIError as exc:
        return f"(no log: {_reason(exc)})"
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)
    return mask_text(text.rstrip())


def _reason(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip().splitlines()
    return mask_text(text[0][:300]) if text else type(exc).__name__
