"""verify on the three backends at once, for real: `local://`, `docker://` (a running
container of the test base image, no network) and `ssh://` (Debian's openssh-server on
127.0.0.1, a key made here, no password).

- every check kind that makes sense on each host, passing and failing: exact results,
  and a JUnit file valid against Jenkins' xunit schema and Ant's JUnit.xsd (xsd/);
- the container stopped, removed, or no engine at all: each of its checks is an error
  that names why, none passes, the other hosts are unaffected;
- a paused sshd (SIGSTOP) does not fail the container's checks, nor hold its facts;
- `--timeout 2` on `sleep` on each host: "timed out after 2 s", the later checks of the
  host still run, and no `sleep` is left behind anywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from migrate import api
from migrate.cli.app import app
from tests.conftest import require_service, write
from tests.integration.images.conftest import BASE_IMAGE, TEST_LABEL, docker_client
from tests.integration.verify.conftest import TIMEOUT, free_port, http_server, set_roadmap

__all__ = ["docker_client", "http_server"]

pytestmark = pytest.mark.integration

XSD = Path(__file__).parent / "xsd"
SSHD = "/usr/sbin/sshd"
PASS, FAIL, ERROR = (True, False), (False, False), (False, True)  # (passed, error)


@dataclass
class Sshd:
    pid: int
    port: int
    directory: Path

    def spec(self, alias: str = "verify-ssh") -> str:
        """Any alias reaches this sshd (`Host *`); a new alias is a new testinfra host."""
        return f"ssh://{alias}?ssh_config={self.directory / 'ssh_config'}"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """Debian's sshd on 127.0.0.1:<free port>, its own host key and config, keys only
    (a key made here for root), for the whole session."""
    if not (os.access(SSHD, os.X_OK) and shutil.which("ssh") and shutil.which("ssh-keygen")):
        require_service("sshd", "install openssh-server (scripts/test-services does)")
    directory = tmp_path_factory.mktemp("sshd")
    for key in ("host_key", "id"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(directory / key)], check=True)  # fmt: skip
    shutil.copy(directory / "id.pub", directory / "authorized_keys")
    port = free_port()
    (directory / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {directory / 'host_key'}\n"
        f"PidFile {directory / 'sshd.pid'}\nAuthorizedKeysFile {directory / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nMaxStartups 100\n"
    )
    (directory / "ssh_config").write_text(
        f"Host *\n  HostName 127.0.0.1\n  Port {port}\n  User root\n"
        f"  IdentityFile {directory / 'id'}\n  IdentitiesOnly yes\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # its privilege separation dir
    log = (directory / "sshd.log").open("wb")
    server = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(directory / "sshd_config")], stdout=log, stderr=log
    )
    try:
        _wait_ssh(directory, server)
        yield Sshd(server.pid, port, directory)
    finally:
        server.send_signal(signal.SIGCONT)  # a test may have left it paused
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _wait_ssh(directory: Path, server: subprocess.Popen[bytes]) -> None:
    """Log in until it works (bounded by sshd's exit or 300 attempts)."""
    for _ in range(300):
        if server.poll() is not None:
            require_service("sshd", (directory / "sshd.log").read_text())
        done = subprocess.run(
            ["ssh", "-F", str(directory / "ssh_config"), "-o", "BatchMode=yes", "x", "true"],
            capture_output=True, timeout=30, check=False,
        )  # fmt: skip
        if done.returncode == 0:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=0.1)
    raise AssertionError(f"cannot log in to the test sshd: {done.stderr!r}")


@pytest.fixture
def box(docker_client: Any) -> Iterator[Any]:
    """A running container of the base image with no network, removed afterwards."""
    import docker

    name = f"migrate-verify-backends-{secrets.token_hex(4)}"
    container = docker_client.containers.run(
        BASE_IMAGE, ["sleep", "infinity"], name=name, detach=True, network_mode="none",
        labels={TEST_LABEL: name},
    )  # fmt: skip
    try:
        yield container
    finally:
        with contextlib.suppress(docker.errors.NotFound):  # a test may have removed it
            container.remove(force=True)


def _roadmap(project: Path, container: str, ssh: str, sshd: Sshd, web: int) -> dict[Any, Any]:
    """The roadmap of the three hosts; returns {(task, name): (passed, error)} expected."""
    docker = f"docker://{container}"
    url = f"http://127.0.0.1:{web}"
    write(project / "app.conf", "listen 8080\n")
    here = [
        ("conf", {"file": {"path": "app.conf", "contains": "listen"}}, PASS),
        ("conf elsewhere", {"file": {"path": "/nonexistent/app.conf"}}, FAIL),
        ("rc", {"command": {"run": "exit 3"}}, FAIL),
        ("sshd listens", {"socket": {"address": f"tcp://127.0.0.1:{sshd.port}"}}, PASS),
        ("closed", {"socket": {"address": f"tcp://127.0.0.1:{free_port()}"}}, FAIL),
        ("sshd runs", {"process": {"comm": "sshd"}}, PASS),
        ("no such process", {"process": {"comm": "migrate-nope"}}, FAIL),
        ("openssh", {"package": {"name": "openssh-server"}}, PASS),
        ("no such package", {"package": {"name": "migrate-nope"}}, FAIL),
        ("web", {"http": {"url": f"{url}/hello.txt", "contains": "hello"}}, PASS),
        ("web 404", {"http": {"url": f"{url}/missing.txt"}}, FAIL),
        ("container", {"docker_container": {"name": container}}, PASS),
        ("no container", {"docker_container": {"name": "migrate-no-such-box"}}, FAIL),
    ]
    there = [
        ("os", {"file": {"path": "/etc/debian_version"}}, PASS),
        ("absent", {"file": {"path": "/nope"}}, FAIL),
        ("no lock", {"command": {"run": "test -e /var/run/app.lock", "rc": 1}}, PASS),
        ("rc", {"command": {"run": "exit 4"}}, FAIL),
        ("python3", {"package": {"name": "python3"}}, PASS),
        ("no nginx", {"package": {"name": "nginx"}}, FAIL),
        ("no ps", {"process": {"comm": "sleep"}}, ERROR),  # the image has no `ps`
        ("no network", {"http": {"url": "http://127.0.0.1:1/", "timeout": 5}}, FAIL),
    ]
    remote = [
        ("hostname", {"file": {"path": "/etc/hostname"}}, PASS),
        ("absent", {"file": {"path": "/nope"}}, FAIL),
        ("root", {"command": {"run": "id -u", "stdout_contains": "0"}}, PASS),
        ("stderr", {"command": {"run": "echo oops >&2; exit 2"}}, FAIL),
        ("sshd", {"process": {"comm": "sshd"}}, PASS),
        ("port", {"socket": {"address": f"tcp://127.0.0.1:{sshd.port}"}}, PASS),
        ("openssh", {"package": {"name": "openssh-server"}}, PASS),
        ("no nginx", {"package": {"name": "nginx"}}, FAIL),
    ]
    everywhere = [("echo", {"command": {"run": "echo ok", "stdout_contains": "ok"}}, PASS)]
    tasks = {"here": (here, "local://"), "there": (there, docker), "remote": (remote, ssh)}
    set_roadmap(
        project,
        *[{"id": task, "checks": [{"name": n, **c, "host": host} for n, c, _ in checks]}
          for task, (checks, host) in tasks.items()],
        {"id": "everywhere", "phase": 2,
         "checks": [{"name": "echo", **everywhere[0][1], "host": h}
                    for h in ("local://", docker, ssh)]},
    )  # fmt: skip
    expected = {(t, n, h): e for t, (checks, h) in tasks.items() for n, _, e in checks}
    expected |= {("everywhere", "echo", h): PASS for h in ("local://", docker, ssh)}
    return expected


def _verify_json(project: Path, *args: str) -> tuple[int, dict[Any, Any], dict[str, Any]]:
    result = CliRunner().invoke(
        app, ["-C", str(project), "verify", "-o", "json", "--junit-xml", "out/junit.xml",
              "--timeout", str(TIMEOUT), *args],
    )  # fmt: skip
    assert "internal error" not in result.output, result.output
    document = json.loads(result.stdout)
    checks = {
        (task["id"], check["name"], check["host"]): check
        for phase in document["phases"] for task in phase["tasks"] for check in task["checks"]
    }  # fmt: skip
    return result.exit_code, checks, document


def _validate(junit: Path) -> Any:
    from lxml import etree

    document = etree.parse(str(junit))
    for name in ("junit-10.xsd", "JUnit.xsd"):
        schema = etree.XMLSchema(etree.parse(str(XSD / name)))
        assert schema.validate(document), (name, str(schema.error_log))
    return document.getroot()


def test_three_hosts_in_parallel_exact_results_and_valid_junit(
    project: Path, box: Any, sshd: Sshd, http_server: tuple[int, Any]
) -> None:
    ssh = sshd.spec()
    expected = _roadmap(project, box.name, ssh, sshd, http_server[0])
    code, checks, document = _verify_json(project)
    assert code == 1 and not document["passed"]
    found = {key: (c["passed"], c["error"]) for key, c in checks.items()}
    assert found == expected
    docker = f"docker://{box.name}"
    # messages that say what was found
    assert checks[("here", "rc", "local://")]["message"] == "expected exit code 0, found 3"
    assert checks[("remote", "stderr", ssh)]["message"] == "expected exit code 0, found 2: oops"
    assert checks[("there", "no nginx", docker)]["message"] == (
        "expected package nginx to be installed, found it not installed"
    )
    no_ps = checks[("there", "no ps", docker)]["message"]
    assert no_ps.startswith(f"process check cannot run on {docker}: a command it needs is ")
    assert "(exit 127)" in no_ps and "CommandResult" not in no_ps

    root = _validate(project / "out" / "junit.xml")
    (suite,) = root.iter("testsuite")
    assert suite.get("timestamp") and suite.get("hostname") and suite.get("time")
    cases = list(suite.iter("testcase"))
    assert len(cases) == len(expected) and all(c.get("time") for c in cases)
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert len(names) == len(cases)  # every testcase told apart
    assert {n for c, n in names if c == "2.everywhere"} == {
        f"echo ({host})" for host in ("local://", docker, ssh)
    }
    outcome = {"error": 0, "failure": 0}
    for case in cases:
        for tag in outcome:
            outcome[tag] += case.find(tag) is not None
    assert outcome == {"error": 1, "failure": sum(e == FAIL for e in expected.values())}
    # the wall time against the checks' own times per host (shown with -s; not asserted)
    per_host: dict[str, float] = {}
    for case, (_, _, host) in zip(cases, checks, strict=True):
        per_host[host] = per_host.get(host, 0.0) + float(case.get("time") or 0)
    print(
        f"\nverify wall time {float(suite.get('time') or 0):.2f} s for {len(cases)} checks; "
        + ", ".join(f"{h.split('?')[0]} {s:.2f} s" for h, s in per_host.items())
        + f"; sum {sum(per_host.values()):.2f} s"
    )


def _stop_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")


@pytest.mark.parametrize("how", ["stopped", "removed", "no engine"])
def test_a_container_that_is_not_there_makes_errors_only_on_its_host(
    project: Path, box: Any, sshd: Sshd, http_server: tuple[int, Any], how: str,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:  # fmt: skip
    ssh = sshd.spec()
    expected = _roadmap(project, box.name, ssh, sshd, http_server[0])
    docker = f"docker://{box.name}"
    if how == "stopped":
        box.stop(timeout=0)
        reason = f"{docker} is not running"
    elif how == "removed":
        box.remove(force=True)
        reason = f"{docker}: no such container"
    else:
        _stop_engine(monkeypatch, tmp_path)
        reason = f"{docker}: no Docker engine answers: "
    # the local docker_container check sees it gone too (a failure: local:// answers)
    expected[("here", "container", "local://")] = FAIL
    code, checks, _ = _verify_json(project)
    assert code == 1
    on_docker = {k: c for k, c in checks.items() if k[2] == docker}
    assert len(on_docker) == 9
    for check in on_docker.values():
        assert (check["passed"], check["error"]) == ERROR, check
        assert check["message"].startswith(reason), check
    others = {k: (c["passed"], c["error"]) for k, c in checks.items() if k[2] != docker}
    assert others == {k: e for k, e in expected.items() if k[2] != docker}
    root = _validate(project / "out" / "junit.xml")
    errors = [c for c in root.iter("testcase") if c.find("error") is not None]
    assert len(errors) == 9 and all(docker in (c.get("name") or "") or
                                    c.get("classname") == "1.there" for c in errors)  # fmt: skip


@contextlib.contextmanager
def paused(sshd: Sshd) -> Iterator[None]:
    """sshd stops accepting: a new connection waits for ever (until SIGCONT)."""
    os.kill(sshd.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(sshd.pid, signal.SIGCONT)


def test_a_paused_ssh_host_does_not_fail_the_containers_checks(
    project: Path, box: Any, sshd: Sshd, http_server: tuple[int, Any]
) -> None:
    ssh = sshd.spec(f"paused-{secrets.token_hex(3)}")
    expected = _roadmap(project, box.name, ssh, sshd, http_server[0])
    with paused(sshd):
        # every host counts as not answering after 5 s: only the paused one may
        report = api.verify(project, timeout=5)
    found = {(t.id, c.name, c.host): c for p in report.phases for t in p.tasks for c in t.checks}
    for key, check in found.items():
        if key[2] == ssh:
            assert (check.passed, check.error) == ERROR, check
            assert check.message == f"{ssh} did not answer within 5 s", check
        else:
            assert (check.passed, check.error) == expected[key], check


def test_a_host_computing_its_facts_does_not_hold_another_hosts(box: Any, sshd: Sshd) -> None:
    """testinfra caches a host's facts in a `functools.cached_property`, whose lock is the
    class's on Python 3.11: a host that hangs while its facts are computed must not make
    another host's checks wait for it (hosts.unshare_locks)."""
    from migrate.verify import hosts

    hosts.preload([])
    ssh = hosts.get_host(sshd.spec(f"facts-{secrets.token_hex(3)}"))
    docker = hosts.get_host(f"docker://{box.name}")
    outcome: list[str] = []

    def facts_of_the_paused_host() -> None:
        # ends by the deadline, or earlier by ssh's own ConnectTimeout (an exception)
        with hosts.deadline(TIMEOUT), contextlib.suppress(Exception):
            outcome.append(ssh.system_info.type)
        outcome.append("ended")

    with paused(sshd):
        hung = threading.Thread(target=facts_of_the_paused_host, daemon=True)
        hung.start()
        # the paused host's thread is inside its facts (its ssh client is waiting)
        _wait_for_ssh_client(hung)
        with hosts.deadline(TIMEOUT):
            assert docker.system_info.distribution == "debian"
            assert docker.exists("sh")
        assert hung.is_alive() and outcome == []  # the container did not wait for it
    hung.join(TIMEOUT + 10)
    assert not hung.is_alive()


def _wait_for_ssh_client(thread: threading.Thread) -> None:
    """Until an ssh client of this process runs (bounded by 1000 polls)."""
    for _ in range(1000):
        if _children_named("ssh"):
            return
        thread.join(0.02)
    raise AssertionError("the ssh client never started")


def _children_named(comm: str) -> list[int]:
    """Processes named `comm` whose parent is this process or a shell it started."""
    mine = {os.getpid()} | {
        pid for pid in _pids() if _stat(pid).get("ppid") == os.getpid()
    }  # fmt: skip
    return [pid for pid in _pids() if _stat(pid).get("comm") == comm
            and _stat(pid).get("ppid") in mine]  # fmt: skip


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _stat(pid: int) -> dict[str, Any]:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return {}
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return {"comm": comm, "state": fields[0], "ppid": int(fields[1])}


def _processes_running(command: str) -> list[int]:
    """PIDs on this machine (the ssh host too: it is 127.0.0.1) whose command line is
    exactly `command`; zombies do not count."""
    found = []
    for pid in _pids():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = b" ".join(a for a in argv if a).decode(errors="replace")
        if line == command and _stat(pid).get("state") not in (None, "Z"):
            found.append(pid)
    return found


def test_timeout_kills_the_command_on_every_host_and_the_host_goes_on(
    project: Path, box: Any, sshd: Sshd
) -> None:
    ssh, docker = sshd.spec(), f"docker://{box.name}"
    naps = {"local://": "sleep 601", ssh: "sleep 602", docker: "sleep 603"}
    set_roadmap(
        project,
        *[{"id": f"slow-{i}", "checks": [
            {"name": "nap", "command": {"run": nap}, "host": host},
            {"name": "after", "command": {"run": "echo still here",
                                          "stdout_contains": "still"}, "host": host},
        ]} for i, (host, nap) in enumerate(naps.items())],
    )  # fmt: skip
    result = CliRunner().invoke(app, ["-C", str(project), "verify", "-o", "json",
                                      "--junit-xml", "j.xml", "--timeout", "2"])  # fmt: skip
    # returned: nothing of the checks is left running, on any host
    for nap in naps.values():
        assert _processes_running(nap) == [], nap
    top = box.top(ps_args="-eo pid,args")
    assert not [p for p in top["Processes"] if "sleep 603" in " ".join(p)], top
    assert _children_named("ssh") == [] and _children_named("docker") == []

    assert result.exit_code == 1, result.output
    tasks = json.loads(result.stdout)["phases"][0]["tasks"]
    for task, (host, nap) in zip(tasks, naps.items(), strict=True):
        first, after = task["checks"]
        assert (first["host"], first["passed"], first["error"]) == (host, False, True)
        assert first["message"] == f"timed out after 2 s (`{nap}`, killed)"
        # the host answered: its next check runs, it is not "not tried"
        assert (after["passed"], after["message"]) == (True, "`echo still here` exited 0")
    root = _validate(project / "j.xml")
    assert sum(c.find("error") is not None for c in root.iter("testcase")) == 3


def test_a_testinfra_module_that_hangs_is_killed_with_what_it_started(project: Path) -> None:
    write(
        project / "checks" / "test_hang.py",
        """
        def test_hang(host):
            host.run("sleep 604")
        """,
    )
    set_roadmap(project, {"id": "module", "checks": [{"testinfra": "checks/test_hang.py"}]})
    (check,) = api.verify(project, timeout=2).checks
    assert _processes_running("sleep 604") == []
    assert (check.passed, check.error) == ERROR
    assert check.message == "timed out after 2 s: checks/test_hang.py was killed"
