"""Every declarative check kind against this machine through real testinfra."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from migrate import api
from migrate.cli.app import app
from tests.conftest import write
from tests.integration.verify.conftest import TIMEOUT, free_port, set_roadmap


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def checks_of(report: Any) -> dict[str, Any]:
    return {c.name: c for c in report.checks}


def test_file_command_package_service(project: Path) -> None:
    write(project / "app.conf", "listen 8080\n")
    set_roadmap(
        project,
        {
            "id": "local",
            "checks": [
                {"name": "conf", "file": {"path": "app.conf", "contains": "listen"}},
                {"name": "conf-wrong", "file": {"path": "app.conf", "contains": "nope"}},
                {"name": "missing", "file": {"path": "missing.txt"}},
                {"name": "absent ok", "file": {"path": "missing.txt", "exists": False}},
                {"name": "dir", "file": {"path": "phases", "directory": True}},
                {"name": "cwd", "command": {"run": "ls", "stdout_contains": "app.conf"}},
                {"name": "rc", "command": {"run": "echo oops >&2; exit 3"}},
                {"name": "expanded", "command": {"run": "echo {{ project }}",
                                                 "stdout_contains": "project"}},
                {"name": "bash", "package": {"name": "bash"}},
                {"name": "no-such-package", "package": {"name": "migrate-no-such-pkg"}},
                {"name": "bash version", "package": {"name": "bash", "version": "0.0"}},
                {"name": "stopped", "service": {"name": "migrate-no-such-service",
                                                "running": False}},
                {"name": "running", "service": {"name": "migrate-no-such-service"}},
            ],
        },
    )  # fmt: skip
    result = checks_of(api.verify(project, timeout=TIMEOUT))
    passing = {"conf", "absent ok", "dir", "cwd", "expanded", "bash", "stopped"}
    assert {n for n, c in result.items() if c.passed} == passing
    assert result["conf-wrong"].message == "expected app.conf to contain 'nope', found it without"
    assert result["missing"].message == "expected missing.txt to exist, found nothing there"
    assert result["rc"].message == "expected exit code 0, found 3: oops"
    assert result["no-such-package"].message.startswith("expected package migrate-no-such-pkg")
    assert "expected bash version 0.0, found 5" in result["bash version"].message
    assert "found it not running" in result["running"].message


def test_socket_http_process(project: Path, http_server: tuple[int, Any]) -> None:
    port, server = http_server
    comm = Path(f"/proc/{server.pid}/comm").read_text().strip()
    closed = free_port()
    set_roadmap(
        project,
        {
            "id": "served",
            "checks": [
                {"name": "listening", "socket": {"address": f"tcp://127.0.0.1:{port}"}},
                {"name": "closed", "socket": {"address": f"tcp://127.0.0.1:{closed}"}},
                {"name": "closed ok", "socket": {"address": f"tcp://127.0.0.1:{closed}",
                                                 "listening": False}},
                {"name": "get", "http": {"url": f"http://127.0.0.1:{port}/hello.txt",
                                         "contains": "hello"}},
                {"name": "404", "http": {"url": f"http://127.0.0.1:{port}/nothing"}},
                {"name": "refused", "http": {"url": f"http://127.0.0.1:{closed}/", "timeout": 5}},
                {"name": "server process", "process": {"comm": comm}},
                {"name": "no process", "process": {"comm": "migrate-nothing"}},
            ],
        },
    )  # fmt: skip
    result = checks_of(api.verify(project, timeout=TIMEOUT))
    assert {n for n, c in result.items() if c.passed} == {
        "listening", "closed ok", "get", "server process"
    }  # fmt: skip
    assert result["closed"].message.endswith("found nothing listening")
    assert result["404"].message.endswith("found 404")
    assert "found no answer" in result["refused"].message
    assert result["no process"].message == "expected a process named migrate-nothing, found none"


def test_k8s_resource_without_a_cluster_fails_clearly(project: Path) -> None:
    set_roadmap(
        project,
        {"id": "k8s", "checks": [{"name": "ns", "k8s_resource": {"kind": "Namespace",
                                                                  "name": "acme"}}]},
    )  # fmt: skip
    (check,) = api.verify(project, timeout=TIMEOUT).checks
    assert not check.passed
    assert check.message.startswith("expected Namespace acme, found no ")
    assert "kubectl" in check.message or "cluster" in check.message


def test_a_host_that_does_not_answer_fails_with_a_message(project: Path) -> None:
    set_roadmap(
        project,
        {
            "id": "remote",
            "checks": [
                {"name": "ssh", "host": "ssh://nobody@127.0.0.1:1", "file": {"path": "/etc"}},
                {"name": "ssh 2", "host": "ssh://nobody@127.0.0.1:1", "command": {"run": "true"}},
                {"name": "container", "host": "docker://migrate-no-such-container",
                 "file": {"path": "/etc"}},
            ],
        },
    )  # fmt: skip
    report = api.verify(project, timeout=TIMEOUT)
    assert not report.passed and len(report.failed) == 3
    for check in report.checks:
        assert check.message, check
    ssh = checks_of(report)["ssh"]
    assert ssh.message.startswith("ssh://nobody@127.0.0.1:1 did not answer")
    # checks that could not be run are errors (JUnit `error`, JSON "error": true)
    assert [c.error for c in report.checks] == [True, True, True]


def test_testinfra_modules(project: Path) -> None:
    write(
        project / "phases" / "checks" / "test_machine.py",
        """
        def test_passwd(host):
            assert host.file("/etc/passwd").exists

        def test_bash(host):
            assert host.package("bash").is_installed
        """,
    )
    write(
        project / "phases" / "checks" / "test_broken.py",
        """
        def test_ok(host):
            assert host.run("true").rc == 0

        def test_missing(host):
            assert host.file("/migrate/nothing").exists, "no /migrate/nothing"
        """,
    )
    set_roadmap(
        project,
        {"id": "good", "checks": [{"testinfra": "phases/checks/test_machine.py"}]},
        {"id": "bad", "checks": [{"testinfra": "phases/checks/test_broken.py"}]},
        {"id": "gone", "checks": [{"testinfra": "phases/checks/test_gone.py"}]},
    )
    report = api.verify(project, timeout=TIMEOUT)
    tasks = {t.id: t for t in report.phases[0].tasks}
    assert tasks["good"].done and tasks["good"].checks[0].message.startswith("2 test(s) passed")
    bad = tasks["bad"].checks[0]
    assert not bad.passed
    assert bad.message.startswith("1 of 2 tests failed in phases/checks/test_broken.py: ")
    assert "test_missing" in bad.message and "no /migrate/nothing" in bad.message
    assert "found no such file" in tasks["gone"].checks[0].message


def test_cli_json_junit_and_status(project: Path) -> None:
    write(project / "ok.txt", "ok\n")
    set_roadmap(
        project,
        {"id": "ok-task", "checks": [{"name": "ok", "file": {"path": "ok.txt"}}]},
        {"id": "bad-task", "checks": [{"name": "bad", "file": {"path": "bad.txt"}},
                                      {"name": "ok too", "command": {"run": "true"}}]},
        {"id": "later", "phase": 2, "checks": [{"name": "later", "command": {"run": "true"}}]},
    )  # fmt: skip
    result = run("-C", str(project), "verify", "--phase", "1", "--junit-xml", "out/j.xml",
                 "-o", "json")  # fmt: skip
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    assert document["version"] == 1 and document["passed"] is False
    (phase,) = document["phases"]
    assert phase["id"] == 1
    assert [(t["id"], t["done"]) for t in phase["tasks"]] == [
        ("ok-task", True),
        ("bad-task", False),
    ]
    assert phase["tasks"][1]["checks"][0] == {
        "name": "bad", "kind": "file", "host": "local://", "passed": False, "error": False,
        "message": "expected bad.txt to exist, found nothing there",
    }  # fmt: skip

    suite = ET.parse(project / "out" / "j.xml").getroot()
    cases = list(suite.iter("testcase"))
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("1.ok-task", "ok"), ("1.bad-task", "bad"), ("1.bad-task", "ok too")
    ]  # fmt: skip
    failures = [c.find("failure") for c in cases]
    assert failures[0] is None and failures[2] is None
    assert failures[1] is not None and "bad.txt" in (failures[1].get("message") or "")

    status = json.loads(run("-C", str(project), "status", "-o", "json").stdout)
    tasks = {t["id"]: t for p in status["phases"] for t in p["tasks"]}
    assert tasks["ok-task"]["done"] is True and tasks["ok-task"]["last_verified"]
    assert tasks["bad-task"]["done"] is False and tasks["bad-task"]["last_verified"]
    assert tasks["later"]["last_verified"] is None

    result = run("-C", str(project), "verify", "--phase", "2")
    assert result.exit_code == 0, result.output
    assert "All 1 checks passed" in result.stdout


def test_gate_refuses_until_verified_and_force_overrides(project: Path) -> None:
    set_roadmap(
        project,
        {"id": "first", "checks": [{"file": {"path": "flag.txt"}}]},
        {"id": "second", "phase": 2, "checks": [{"command": {"run": "true"}}]},
    )
    result = run("-C", str(project), "apply", "--phase", "2", "--yes")
    assert result.exit_code == 1
    assert (
        "phase 1 is not done: 0 of 1 tasks verified; run `migrate verify --phase 1`, "
        "or pass --force" in " ".join(result.stderr.split())
    )
    result = run("-C", str(project), "apply", "--phase", "2", "--yes", "--force")
    assert result.exit_code == 0, result.output
    assert "Checks of phase 2" in result.stdout  # apply runs the phase's checks after
    write(project / "flag.txt", "set\n")
    assert run("-C", str(project), "verify", "--phase", "1").exit_code == 0
    applied = api.apply(project, 2)
    assert applied.checks is not None and applied.checks.passed


def test_apply_reports_the_checks(project: Path) -> None:
    subprocess.run(["true"], check=True)
    result = api.apply(project, 1, only=["ci-cd-pipelines"])
    assert result.checks is not None
    (phase,) = result.checks.phases
    (task,) = phase.tasks
    assert task.id == "ci-cd-pipelines" and task.done
