"""The Docker engine, through the Docker SDK's low-level API client.

The only module that imports `docker`, and only inside its functions, so
`migrate --help` and `migrate plan` without an images task never load it.

Listing images (`list_images`: which tags exist) also works without it: a local engine
(a Unix socket, or plain `tcp://`) answers one bare HTTP request, so a no-op
`images build` never pays the SDK's import (requests, urllib3: about a quarter second).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

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

    try:
        client = docker.APIClient(
            version="auto", timeout=CONNECT_TIMEOUT, **docker.utils.kwargs_from_env()
        )
    except DockerException as exc:
        raise _unavailable(_reason(exc)) from None
    client.timeout = TIMEOUT  # asking the version answered: now allow long builds
    return client


def _unavailable(reason: str) -> DockerUnavailableError:
    where = os.environ.get("DOCKER_HOST") or "the default socket (unix:///var/run/docker.sock)"
    return DockerUnavailableError(
        f"no Docker engine answers at {where}: {reason}",
        hint="start the engine, or point DOCKER_HOST at one, e.g. "
        f"`export DOCKER_HOST=unix:///run/docker.sock`; {SERVICES_HINT}",
    )


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


def project_images(client: APIClient | None, project: str) -> list[dict[str, Any]]:
    """The engine's images labelled as built by migrate for `project` (`list_images`)."""
    return list_images({"label": [f"io.migrate.project={project}"]}, client)


def present(references: Iterable[str], client: APIClient | None = None) -> set[str]:
    """Which of `references` the engine has, asked in one call (`list_images` filtered by
    reference; several references match any of them) instead of one inspect each.

    A reference in the answer exists. One not in it may still exist under another
    spelling (`docker.io/library/x:1` for `x:1`): `exists` decides before building it.
    """
    wanted = set(references)
    if not wanted:
        return set()
    found = list_images({"reference": sorted(wanted)}, client)
    return wanted & {tag for image in found for tag in image.get("RepoTags") or ()}


def list_images(
    filters: dict[str, list[str]], client: APIClient | None = None
) -> list[dict[str, Any]]:
    """`GET /images/json` with `filters`. Without `client`, a local engine is asked over a
    bare HTTP connection (no SDK import); any other engine (TLS, ssh) through a new client.
    Raises `DockerUnavailableError` when no engine answers."""
    if client is None:
        answer = _local_get(f"/images/json?filters={quote(json.dumps(filters))}")
        if isinstance(answer, list):
            return answer
        client = connect()
    found: list[dict[str, Any]] = client.images(filters=filters)
    return found


def _local_address() -> tuple[int, str | tuple[str, int]] | None:
    """The socket family and address of DOCKER_HOST when it is a Unix socket or plain TCP;
    None when the SDK must speak to it (TLS, ssh, anything else)."""
    if os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH"):
        return None
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if host.startswith("unix://"):
        return socket.AF_UNIX, host.removeprefix("unix://")
    if host.startswith(("tcp://", "http://")):
        name, _, port = host.partition("://")[2].rstrip("/").rpartition(":")
        if name and port.isdigit() and "/" not in name:
            return socket.AF_INET6 if name.startswith("[") else socket.AF_INET, (
                name.strip("[]"),
                int(port),
            )
    return None


def _local_get(path: str) -> Any:
    """The JSON answer of `GET path` from a local engine (HTTP/1.0: one plain body), or
    None when this engine or its answer needs the SDK (not local, not 200, chunked)."""
    answer = _local_request(path)
    if answer is None or answer[0] != 200:
        return None
    try:
        return json.loads(answer[1])
    except ValueError:
        return None


def local_exists(reference: str) -> bool | None:
    """Whether a local engine has `reference` (`GET /images/<ref>/json`: 200 or 404),
    asked without the SDK; None when the SDK must ask (`exists`). Raises
    `DockerUnavailableError` when the local engine does not answer."""
    answer = _local_request(f"/images/{quote(reference, safe='/:@')}/json")
    if answer is None or answer[0] not in (200, 404):
        return None
    return answer[0] == 200


def which_exist(references: Iterable[str]) -> dict[str, bool]:
    """Per reference, whether the engine has it: one inspect each (what `exists` asks),
    without the SDK when the engine is local. (An inspect answers in about a millisecond;
    listing images, `present`, costs the engine time with every image it holds.) Raises
    `DockerUnavailableError` when no engine answers."""
    found: dict[str, bool] = {}
    client: APIClient | None = None
    for reference in sorted(set(references)):
        known = local_exists(reference)
        if known is None:
            client = client or connect()
            known = exists(client, reference)
        found[reference] = known
    return found


def _local_request(path: str) -> tuple[int, bytes] | None:
    """(status, body) of `GET path` from a local engine (HTTP/1.0: one plain body), or
    None when this engine or its answer needs the SDK (not local, chunked, garbled)."""
    address = _local_address()
    if address is None:
        return None
    family, where = address
    request = f"GET {path} HTTP/1.0\r\nHost: docker\r\nAccept: application/json\r\n\r\n"
    try:
        with socket.socket(family, socket.SOCK_STREAM) as connection:
            connection.settimeout(CONNECT_TIMEOUT)
            connection.connect(where)
            connection.sendall(request.encode())
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        raise _unavailable(f"{type(exc).__name__}: {exc}") from None
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    if len(status) < 2 or not status[1].isdigit():
        return None
    if "chunked" in headers.get("transfer-encoding", ""):
        return None
    return int(status[1]), body
