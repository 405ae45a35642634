"""The Docker engine, through the Docker SDK's low-level API client.

The only module that imports `docker`, and only inside its functions, so
`migrate --help` and `migrate plan` without an images task never load it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from migrate.images.errors import (
    SERVICES_HINT,
    BaseImageMissingError,
    DockerUnavailableError,
    ImageError,
)

if TYPE_CHECKING:
    from docker import APIClient

TIMEOUT = 600  # seconds without a byte from the engine before a call fails
CONNECT_TIMEOUT = 10  # seconds for the first call: an unreachable engine fails fast
LOG_TAIL = 40  # lines of the build log shown when a build fails
_STEP = re.compile(r"^Step (\d+)/(\d+) :")


def connect() -> APIClient:
    """A client for the engine at DOCKER_HOST (default: the local socket), checked to answer."""
    import docker
    from docker.errors import DockerException

    where = os.environ.get("DOCKER_HOST") or "the default socket (unix:///var/run/docker.sock)"
    try:
        client = docker.APIClient(
            version="auto", timeout=CONNECT_TIMEOUT, **docker.utils.kwargs_from_env()
        )
    except DockerException as exc:
        raise DockerUnavailableError(
            f"no Docker engine answers at {where}: {_reason(exc)}",
            hint="start the engine, or point DOCKER_HOST at one, e.g. "
            f"`export DOCKER_HOST=unix:///run/docker.sock`; {SERVICES_HINT}",
        ) from None
    client.timeout = TIMEOUT  # asking the version answered: now allow long builds
    return client


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def exists(client: APIClient, reference: str) -> bool:
    from docker.errors import ImageNotFound, NotFound

    try:
        client.inspect_image(reference)  # type: ignore[no-untyped-call]
    except (ImageNotFound, NotFound):
        return False
    return True


def inspect(client: APIClient, reference: str) -> dict[str, Any]:
    result: dict[str, Any] = client.inspect_image(reference)  # type: ignore[no-untyped-call]
    return result


def ensure_base_image(client: APIClient, reference: str) -> None:
    """The base image is in the engine, or pulled now; else a clear error."""
    from docker.errors import APIError
    from docker.utils import parse_repository_tag

    if exists(client, reference):
        return
    repository, tag = parse_repository_tag(reference)
    try:
        for event in client.pull(repository, tag=tag or "latest", stream=True, decode=True):
            if "error" in event:
                raise APIError(str(event["error"]))
    except APIError as exc:
        raise BaseImageMissingError(
            f"the base image {reference} is not in the Docker engine and could not be pulled: "
            f"{_reason(exc)}",
            hint="load or build it into the engine (docker pull / docker load / docker import), "
            "or name an image the engine has (`docker images`) with --base-image, "
            "MIGRATE_BASE_IMAGE or target.base_image in migrate.yaml; "
            f"{SERVICES_HINT} with the base image migrate-test/python:3.11-bookworm",
        ) from None


# PEP 508's marker environment, computed by the base image's own Python (as packaging does)
_ENVIRONMENT_SCRIPT = """
import json, os, platform, sys
def full(info):
    text = f"{info.major}.{info.minor}.{info.micro}"
    return text if info.releaselevel == "final" else text + info.releaselevel[0] + str(info.serial)
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": full(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
"""


def python_environment(client: APIClient, image: str) -> dict[str, str]:
    """The environment markers (PEP 508) of `image`'s `python3`, from a container with no
    network that is removed after. Requirements are resolved for it, not for the Python
    that runs migrate: `redis` needs `async-timeout` on 3.11.2 (Debian bookworm), not on
    3.11.7. Raises `BaseImageMissingError` when the image has no working python3."""
    import json

    from docker.errors import APIError

    container = None
    try:
        container = client.create_container(
            image,
            command=["python3", "-c", _ENVIRONMENT_SCRIPT],
            host_config=client.create_host_config(network_mode="none"),
            network_disabled=True,
            labels={"io.migrate.probe": "python-environment"},
        )
        client.start(container)
        status = client.wait(container, timeout=TIMEOUT)
        output = client.logs(container, stdout=True, stderr=True).decode(errors="replace")
        if status.get("StatusCode") != 0:
            raise APIError(f"python3 exited with {status.get('StatusCode')}: {output[-300:]}")
        environment: dict[str, str] = json.loads(output.strip().splitlines()[-1])
        return environment
    except (APIError, ValueError, IndexError) as exc:
        raise BaseImageMissingError(
            f"cannot run python3 in the base image {image}: {_reason(exc)}",
            hint="the images run `python3 -m migrate_runtime`: set target.base_image in "
            "migrate.yaml to an image with Python 3.11 and pip",
        ) from None
    finally:
        if container is not None:
            with contextlib.suppress(APIError):
                client.remove_container(container, force=True)


def build(
    client: APIClient,
    subject: str,
    context: bytes,
    reference: str,
    labels: dict[str, str],
    on_step: Callable[[int, int], None],
) -> list[str]:
    """Build `context` (a tar stream) and tag it `reference`. Returns the build log.

    RUN steps get no network: requirements come from the context's wheelhouse.
    `on_step(n, total)` follows the engine's `Step n/total` lines. A failure raises
    `ImageError` naming `subject` (`plugin X`, `the orchestrator image`).
    """
    from docker.errors import APIError

    lines: list[str] = []
    failure = None
    try:
        stream: Iterator[dict[str, Any]] = client.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            tag=reference,
            labels=labels,
            rm=True,
            forcerm=True,
            pull=False,
            network_mode="none",
            decode=True,
        )
        for event in stream:
            text = event.get("stream")
            if text:
                lines.extend(text.rstrip("\n").splitlines())
                step = _STEP.match(text)
                if step:
                    on_step(int(step[1]), int(step[2]))
            if "error" in event:
                failure = str(event.get("error", "")).strip()
                lines.append(failure)
    except APIError as exc:
        failure = _reason(exc)
        lines.append(failure)
    if failure is not None:
        raise ImageError(
            subject,
            f"the image build failed: {failure}",
            hint="the build log is above; fix the plugin or templates/docker/Dockerfile.j2 "
            "(templates/docker/Dockerfile.orchestrator.j2 for the orchestrator)",
            log="\n".join(lines[-LOG_TAIL:]),
        )
    return lines


def push(client: APIClient, subject: str, reference: str) -> None:
    from docker.errors import APIError
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(reference)
    try:
        for event in client.push(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise APIError(str(event["error"]))
    except APIError as exc:
        raise ImageError(
            subject,
            f"pushing {reference} failed: {_reason(exc)}",
            hint="check that target.registry in migrate.yaml is reachable and that you are "
            "logged in to it (docker login)",
        ) from None


def remove(client: APIClient, reference: str) -> bool:
    """Remove one tag (the image too when it was its last tag). False: it was not there."""
    from docker.errors import APIError, ImageNotFound, NotFound

    try:
        client.remove_image(reference)
    except (ImageNotFound, NotFound):
        return False
    except APIError as exc:
        raise ImageError(
            reference,
            f"cannot remove it: {_reason(exc)}",
            hint="remove the containers that use it first (docker ps -a)",
        ) from None
    return True


def project_images(client: APIClient, project: str) -> list[dict[str, Any]]:
    """The engine's images labelled as built by migrate for `project`."""
    found: list[dict[str, Any]] = client.images(
        filters={"label": [f"io.migrate.project={project}"]}
    )
    return found
