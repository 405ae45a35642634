"""A real Docker engine, base image and registry (scripts/test-services starts them).

Every project gets a name of its own, so its image repositories are its own;
teardown removes the containers and images a test made (by label), never the
base image. Containers run with host networking bound to 127.0.0.1, or with
no network at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate import api
from tests.conftest import EXAMPLE_APP, require_service
from tests.integration.data.conftest import database_url, pg_server  # noqa: F401  (fixtures)
from tests.integration.runtime.conftest import redis_server, redis_url  # noqa: F401  (fixtures)

BASE_IMAGE = os.environ.get("MIGRATE_TEST_BASE_IMAGE", "migrate-test/python:3.11-bookworm")
REGISTRY = os.environ.get("MIGRATE_TEST_REGISTRY", "127.0.0.1:5000")
TEST_LABEL = "io.migrate.test"
DEADLINE = 60.0  # seconds: a bound on waiting for a container, never a measurement
SERVICES = 'run `eval "$(bash scripts/test-services)"` first'


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    import docker

    from migrate.images.errors import DockerUnavailableError

    try:
        from migrate.images import engine

        engine.connect().close()
    except DockerUnavailableError as exc:
        require_service("Docker", f"{exc.message}; {SERVICES}")
    client = docker.from_env(timeout=600)
    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        require_service("Docker", f"the base image {BASE_IMAGE} is not in the engine; {SERVICES}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def registry() -> str:
    try:
        with urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=5) as response:
            assert response.status == 200
    except (OSError, urllib.error.URLError) as exc:
        require_service("the image registry", f"nothing answers at {REGISTRY}: {exc}; {SERVICES}")
    return REGISTRY


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One wheelhouse for the session: requirements are resolved once, not per test (nor
    per conftest that imports this fixture: they all get the same directory)."""
    path = tmp_path_factory.getbasetemp() / "wheelhouse"
    path.mkdir(exist_ok=True)
    return path


def set_target(project: Path, **values: str) -> None:
    config = project / "migrate.yaml"
    data = yaml.safe_load(config.read_text())
    data["target"].update(values)
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def set_source(project: Path, app: Path) -> None:
    """Point a copied project at its copied legacy app."""
    config = project / "migrate.yaml"
    data = yaml.safe_load(config.read_text())
    data["source"]["path"] = str(app)
    config.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def image_project(
    tmp_path: Path, example_app: Path, docker_client: Any, wheelhouse: Path
) -> Iterator[Path]:
    """A project on the example app whose images use the test base image; cleaned up after."""
    name = f"it-{secrets.token_hex(4)}"
    directory = tmp_path / "project"
    api.init(directory, example_app, name=name)
    set_target(directory, base_image=BASE_IMAGE)
    (directory / ".migrate").mkdir(exist_ok=True)
    (directory / ".migrate" / "wheelhouse").symlink_to(wheelhouse)
    try:
        yield directory
    finally:
        cleanup(docker_client, name)


@dataclasses.dataclass(frozen=True)
class BuiltExample:
    """The example app's images, built once per session by `migrate images build`.

    root: agents-app/ (the legacy app) and project/ (the project, named `name`, with
    `.migrate/` holding what the build recorded); document: that build's JSON output.
    """

    root: Path
    name: str
    document: dict[str, Any]


# Like `_EMBEDDED` in data/conftest.py: each conftest that imports `built_example`
# registers a session fixture of its own, and they all share this one build.
_BUILT: dict[str, Any] = {}


@pytest.fixture(scope="session")
def built_example(
    tmp_path_factory: pytest.TempPathFactory, docker_client: Any, wheelhouse: Path
) -> Iterator[BuiltExample]:
    """The example app's images (six plugins and the orchestrator), built once for the
    session, for tests whose subject is not the build: take a copy with `built_project`.
    Its images are removed (by label) at the end of the session."""
    if "built" not in _BUILT:
        from typer.testing import CliRunner

        from migrate.cli.app import app

        root = tmp_path_factory.mktemp("built-example")
        name = f"it-{secrets.token_hex(4)}"
        shutil.copytree(EXAMPLE_APP, root / "agents-app")
        api.init(root / "project", root / "agents-app", name=name)
        set_target(root / "project", base_image=BASE_IMAGE)
        (root / "project" / ".migrate").mkdir(exist_ok=True)
        (root / "project" / ".migrate" / "wheelhouse").symlink_to(wheelhouse)
        _BUILT.update(built=None, holders=0)
        try:
            result = CliRunner().invoke(
                app, ["-C", str(root / "project"), "images", "build", "--output", "json"]
            )
            assert result.exit_code == 0, result.output
            _BUILT["built"] = BuiltExample(root, name, json.loads(result.stdout))
        except BaseException:
            _BUILT.clear()
            cleanup(docker_client, name)
            raise
    _BUILT["holders"] += 1
    built: BuiltExample = _BUILT["built"]
    try:
        yield built
    finally:
        _BUILT["holders"] -= 1
        if _BUILT["holders"] == 0:
            _BUILT.clear()
            cleanup(docker_client, built.name)


@pytest.fixture
def built_project(
    tmp_path: Path, built_example: BuiltExample, docker_client: Any
) -> Iterator[Path]:
    """A private copy of `built_example`'s project and app (under tmp_path/"built"), with
    the same name, so its images are already in the engine and a build of the unchanged
    code builds nothing. After the test, the containers of the project are removed, and
    any image it built that the shared build did not make."""
    root = tmp_path / "built"
    shutil.copytree(built_example.root, root, symlinks=True)
    set_source(root / "project", root / "agents-app")
    try:
        yield root / "project"
    finally:
        remove_all_but_shared(docker_client, built_example)


def remove_all_but_shared(client: Any, built: BuiltExample) -> None:
    import docker

    shared = {image["image"] for image in built.document["images"]}
    for label in (f"{TEST_LABEL}={built.name}", f"io.migrate.project={built.name}"):
        for container in client.containers.list(all=True, filters={"label": label}):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
    for network in client.networks.list(filters={"label": f"io.migrate.project={built.name}"}):
        with contextlib.suppress(docker.errors.APIError):
            network.remove()
    for image in client.images.list(filters={"label": f"io.migrate.project={built.name}"}):
        for tag in image.tags:
            if tag not in shared:
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(tag, force=True)


def cleanup(client: Any, project: str) -> None:
    import docker

    for container in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={project}"}):
        container.remove(force=True)
    label = {"label": f"io.migrate.project={project}"}
    for image in client.images.list(filters=label):
        for tag in image.tags:
            with contextlib.suppress(docker.errors.NotFound):
                client.images.remove(tag, force=True)
    # what a failed build leaves: untagged images of its last good step (children first)
    for _ in range(10):
        left = client.images.list(all=True, filters=label)
        if not left:
            break
        for image in left:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)


def project_name(project: Path) -> str:
    name: str = yaml.safe_load((project / "migrate.yaml").read_text())["project"]
    return name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def run_plugin(client: Any, image: str, project: str) -> tuple[Any, int]:
    """Start the image on 127.0.0.1:<free port> with host networking; wait for /healthz."""
    return run_image(client, image, project)


def run_image(
    client: Any,
    image: str,
    project: str,
    environment: dict[str, str] | None = None,
    volumes: dict[str, dict[str, str]] | None = None,
) -> tuple[Any, int]:
    """Start the image with host networking on 127.0.0.1:<free port>, with `environment`
    added; wait until /healthz answers 200. Labelled so the fixture removes it."""
    port = free_port()
    container = client.containers.run(
        image,
        detach=True,
        network_mode="host",
        environment={**(environment or {}), "HOST": "127.0.0.1", "PORT": str(port)},
        volumes=volumes or {},
        labels={TEST_LABEL: project},
    )
    wait_for(container, f"http://127.0.0.1:{port}/healthz")
    return container, port


def wait_for(container: Any, url: str) -> Any:
    """Poll `url` until it answers 200 (returns its JSON); fail with the container's log
    when it exits or the deadline passes."""
    deadline = time.monotonic() + DEADLINE
    last: object = None
    while True:
        try:
            status, document = http("GET", url)
            if status == 200:
                return document
            last = status
        except urllib.error.HTTPError as exc:
            last = f"{exc.code} {exc.read()[:300]!r}"
        except (OSError, urllib.error.URLError) as exc:
            last = exc
        container.reload()
        if container.status == "exited" or time.monotonic() > deadline:
            logs = container.logs().decode(errors="replace")[-4000:]
            raise AssertionError(
                f"{container.image.tags} did not answer {url} with 200 ({container.status}, "
                f"last: {last}):\n{logs}"
            )
        time.sleep(0.1)  # poll interval, bounded by the deadline above


@contextlib.contextmanager
def tcp_to_unix(socket_path: str) -> Iterator[int]:
    """Relay 127.0.0.1:<free port> to a Unix socket, while the block runs: the embedded
    PostgreSQL listens on a socket in its data directory, which a container's non-root
    user cannot enter; with host networking it reaches this relay instead."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    connections: list[socket.socket] = []

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed: the block ended
                return
            upstream = socket.socket(socket.AF_UNIX)
            try:
                upstream.connect(socket_path)
            except OSError:
                client.close()
                upstream.close()
                continue
            connections.extend((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(source, sink), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
        for connection in connections:
            connection.close()


@contextlib.contextmanager
def database_over_tcp(url: str) -> Iterator[str]:
    """`url` as a libpq conninfo a container with host networking can use: unchanged when
    it names a TCP host, else through `tcp_to_unix` to its socket."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    parts = conninfo_to_dict(url)
    host = str(parts.get("host") or "")
    if not host.startswith("/"):
        yield url
        return
    path = f"{host}/.s.PGSQL.{parts.get('port') or 5432}"
    with tcp_to_unix(path) as port:
        yield make_conninfo(url, host="127.0.0.1", port=str(port))


@pytest.fixture
def container_database_url(database_url: str) -> Iterator[str]:  # noqa: F811
    """A fresh database (the `database_url` fixture) that containers with host networking
    reach on 127.0.0.1."""
    with database_over_tcp(database_url) as url:
        yield url
