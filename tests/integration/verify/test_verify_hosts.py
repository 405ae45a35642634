"""Checks on several hosts at once (`local://` and `docker://` of a real container), and
a docker host that is stopped or removed: its checks are errors that say why, never passes."""

from __future__ import annotations

import contextlib
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from migrate import api
from migrate.cli.app import app
from tests.conftest import write
from tests.integration.images.conftest import BASE_IMAGE, TEST_LABEL, docker_client
from tests.integration.verify.conftest import TIMEOUT, set_roadmap

__all__ = ["docker_client"]


@pytest.fixture
def box(docker_client: Any) -> Iterator[Any]:
    """A running container of the base image with no network, removed afterwards."""
    name = f"migrate-verify-hosts-{secrets.token_hex(4)}"
    container = docker_client.containers.run(
        BASE_IMAGE,
        ["sleep", "infinity"],
        name=name,
        detach=True,
        network_mode="none",
        labels={TEST_LABEL: name},
    )
    try:
        yield container
    finally:
        import docker

        with contextlib.suppress(docker.errors.NotFound):  # a test may have removed it
            container.remove(force=True)


def _roadmap(project: Path, name: str) -> None:
    docker = f"docker://{name}"
    write(project / "app.conf", "listen 8080\n")
    set_roadmap(
        project,
        {
            "id": "here",
            "checks": [
                {"name": "conf", "file": {"path": "app.conf", "contains": "listen"}},
                {"name": "same", "command": {"run": "true"}},
                {"name": "rc", "command": {"run": "exit 3"}},
                {"name": "same", "command": {"run": "true"}, "host": docker},
            ],
        },
        {
            "id": "there",
            "checks": [
                {"name": "os", "file": {"path": "/etc/debian_version"}, "host": docker},
                {"name": "no lock", "command": {"run": "test -e /var/run/app.lock", "rc": 1},
                 "host": docker},
                {"name": "absent", "file": {"path": "/nope"}, "host": docker},
            ],
        },
    )  # fmt: skip


def test_two_hosts_in_parallel_through_the_cli(project: Path, box: Any) -> None:
    _roadmap(project, box.name)
    result = CliRunner().invoke(
        app,
        ["-C", str(project), "verify", "--junit-xml", "out/j.xml", "--timeout", str(TIMEOUT)],
    )
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output
    junit = ET.parse(project / "out" / "j.xml").getroot()
    cases = {
        (c.get("classname"), c.get("name")): (
            "error" if c.find("error") is not None
            else "failure" if c.find("failure") is not None
            else "pass"
        )
        for c in junit.iter("testcase")
    }  # fmt: skip
    docker = f"docker://{box.name}"
    # the same check on two hosts: two testcases, told apart by the host in their names
    assert cases == {
        ("1.here", "conf"): "pass", ("1.here", "same (local://)"): "pass",
        ("1.here", "rc"): "failure", ("1.here", f"same ({docker})"): "pass",
        ("1.there", "os"): "pass", ("1.there", "no lock"): "pass",
        ("1.there", "absent"): "failure",
    }  # fmt: skip
    assert junit.find("testsuite").get("tests") == "7"  # type: ignore[union-attr]


@pytest.mark.parametrize("how", ["stopped", "removed"])
def test_a_docker_host_that_is_not_there_gives_errors(project: Path, box: Any, how: str) -> None:
    name = box.name
    _roadmap(project, name)
    if how == "stopped":
        box.stop(timeout=0)
        expected = f"docker://{name} is not running"
    else:
        box.remove(force=True)
        expected = f"docker://{name}: no such container"
    report = api.verify(project, timeout=TIMEOUT)
    there = [c for c in report.checks if c.host == f"docker://{name}"]
    assert len(there) == 4
    for check in there:
        assert (check.passed, check.error, check.message) == (False, True, expected)
    here = {c.name: c.passed for c in report.checks if c.host == "local://"}
    assert here == {"conf": True, "same": True, "rc": False}
