"""One declarative check kind -> testinfra calls -> (passed, one-line message).

Every message says what was found, and on failure what was expected, so a
failing check never reads as a bare assertion. Relative paths and commands on
`local://` are taken relative to the project directory, as a roadmap is.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migrate import checks as c

if TYPE_CHECKING:
    from migrate.config import Config


@dataclass(frozen=True)
class Outcome:
    passed: bool
    message: str
    error: bool = False  # the check could not be run: nothing (or a 5xx) answered
    # the host itself did not answer by the deadline: its later checks are not tried
    silent: bool = False


@dataclass(frozen=True)
class Target:
    """Where a check runs: the testinfra host and what the project says about it."""

    spec: str
    host: Any  # testinfra.host.Host
    project_dir: Path
    config: Config
    timeout: float

    @property
    def local(self) -> bool:
        from migrate.verify.hosts import is_local

        return is_local(self.spec)

    def run(self, command: str) -> Any:
        """Run a shell command on the host. On local:// it runs in the project directory,
        with this migrate's own bin directory first on PATH, so a check that calls
        `migrate ...` runs the same installation (a virtualenv need not be active)."""
        if self.local:
            bin_dir = shlex.quote(str(Path(sys.executable).parent))
            project = shlex.quote(str(self.project_dir.resolve()))
            command = f'cd {project} && PATH={bin_dir}:"$PATH" && {command}'
        return self.host.run(command)


def first_line(text: str, limit: int = 160) -> str:
    """The last meaningful line of a tool's output, shortened: the one that says why."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _file(t: Target, p: c.FileCheck) -> Outcome:
    path = p.path
    if t.local and not Path(path).is_absolute():
        path = str(t.project_dir.resolve() / path)
    f = t.host.file(path)
    exists = f.exists
    if not p.exists:
        if exists:
            return Outcome(False, f"expected {p.path} to be absent, found it")
        return Outcome(True, f"{p.path} is absent")
    if not exists:
        return Outcome(False, f"expected {p.path} to exist, found nothing there")
    if p.directory is not None and f.is_directory != p.directory:
        want, found = ("a directory", "a file") if p.directory else ("a file", "a directory")
        return Outcome(False, f"expected {p.path} to be {want}, found {found}")
    if p.contains is not None:
        if f.is_directory:
            return Outcome(False, f"expected {p.path} to contain {p.contains!r}, found a directory")
        if not f.contains(p.contains):
            return Outcome(False, f"expected {p.path} to contain {p.contains!r}, found it without")
        return Outcome(True, f"{p.path} contains {p.contains!r}")
    return Outcome(True, f"{p.path} exists")


def _command(t: Target, p: c.CommandCheck) -> Outcome:
    result = t.run(p.run)
    if result.rc != p.rc:
        why = first_line(result.stderr) or first_line(result.stdout)
        return Outcome(
            False, f"expected exit code {p.rc}, found {result.rc}" + (f": {why}" if why else "")
        )
    if p.stdout_contains is not None and p.stdout_contains not in result.stdout:
        return Outcome(
            False,
            f"expected stdout to contain {p.stdout_contains!r}, found "
            f"{first_line(result.stdout, 80)!r}",
        )
    if p.stderr_contains is not None and p.stderr_contains not in result.stderr:
        return Outcome(
            False,
            f"expected stderr to contain {p.stderr_contains!r}, found "
            f"{first_line(result.stderr, 80)!r}",
        )
    return Outcome(True, f"`{p.run}` exited {result.rc}")


def _socket(t: Target, p: c.SocketCheck) -> Outcome:
    listening = bool(t.host.socket(p.address).is_listening)
    if listening == p.listening:
        return Outcome(True, f"{p.address} is {'' if listening else 'not '}listening")
    if p.listening:
        return Outcome(False, f"expected {p.address} to be listening, found nothing listening")
    return Outcome(False, f"expected {p.address} not to be listening, found it listening")


def _service(t: Target, p: c.ServiceCheck) -> Outcome:
    service = t.host.service(p.name)
    running = bool(service.is_running)
    if running != p.running:
        return Outcome(
            False,
            f"expected service {p.name} to be {'running' if p.running else 'stopped'}, "
            f"found it {'running' if running else 'not running'}",
        )
    if p.enabled is not None:
        enabled = bool(service.is_enabled)
        if enabled != p.enabled:
            return Outcome(
                False,
                f"expected service {p.name} to be {'enabled' if p.enabled else 'disabled'}, "
                f"found it {'enabled' if enabled else 'disabled'}",
            )
    return Outcome(True, f"service {p.name} is {'running' if running else 'not running'}")


def _process(t: Target, p: c.ProcessCheck) -> Outcome:
    filters = {"comm": p.comm} | ({"user": p.user} if p.user else {})
    found = t.host.process.filter(**filters)
    who = f" of user {p.user}" if p.user else ""
    if not found:
        return Outcome(False, f"expected a process named {p.comm}{who}, found none")
    return Outcome(True, f"{len(found)} process(es) named {p.comm}{who}")


def _package(t: Target, p: c.PackageCheck) -> Outcome:
    package = t.host.package(p.name)
    installed = bool(package.is_installed)
    if installed != p.installed:
        return Outcome(
            False,
            f"expected package {p.name} to be {'installed' if p.installed else 'absent'}, "
            f"found it {'installed' if installed else 'not installed'}",
        )
    if not installed:
        return Outcome(True, f"package {p.name} is not installed")
    version = str(package.version)
    if p.version is not None and not version.startswith(p.version):
        return Outcome(False, f"expected {p.name} version {p.version}, found {version}")
    return Outcome(True, f"package {p.name} {version} is installed")


# Run on the check's host with its python3: prints {"status", "body"} or {"error"}.
_HTTP_PROBE = """
import json, sys, urllib.error, urllib.request
url, timeout = sys.argv[1], float(sys.argv[2])
try:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        out = {"status": r.status, "body": r.read(65536).decode("utf-8", "replace")}
except urllib.error.HTTPError as e:
    out = {"status": e.code, "body": e.read(65536).decode("utf-8", "replace")}
except Exception as e:
    out = {"error": str(getattr(e, "reason", e))}
print(json.dumps(out))
"""


def http_probe(url: str, timeout: float) -> dict[str, Any]:
    """The same request as `_HTTP_PROBE`, from this process (for local://)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(65536).decode("utf-8", "replace")
            return {"status": response.status, "body": body}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": exc.read(65536).decode("utf-8", "replace")}
    except Exception as exc:
        return {"error": str(getattr(exc, "reason", exc))}


def _http(t: Target, p: c.HttpCheck) -> Outcome:
    if t.local:
        answer = http_probe(p.url, p.timeout)
    else:
        result = t.host.run(
            f"python3 -c {shlex.quote(_HTTP_PROBE)} {shlex.quote(p.url)} {p.timeout}"
        )
        try:
            answer = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            why = first_line(result.stderr) or f"exit code {result.rc}"
            return Outcome(False, f"cannot request {p.url} on {t.spec} (needs python3): {why}")
    if "error" in answer:
        return Outcome(
            False, f"expected HTTP {p.status} from {p.url}, found no answer: {answer['error']}"
        )
    if answer["status"] != p.status:
        return Outcome(False, f"expected HTTP {p.status} from {p.url}, found {answer['status']}")
    if p.contains is not None and p.contains not in answer["body"]:
        return Outcome(
            False, f"expected the body of {p.url} to contain {p.contains!r}, found it without"
        )
    return Outcome(True, f"{p.url} answered {answer['status']}")


def _docker_container(t: Target, p: c.DockerContainerCheck) -> Outcome:
    if not t.host.exists("docker"):
        return Outcome(False, f"expected container {p.name}, found no docker CLI on {t.spec}")
    result = t.host.run(f"docker inspect --type container {shlex.quote(p.name)}")
    if result.rc != 0:
        why = first_line(result.stderr)
        if "no such" in why.lower():
            return Outcome(False, f"expected container {p.name}, found no such container")
        return Outcome(False, f"expected container {p.name}, found no Docker engine: {why}")
    state = json.loads(result.stdout)[0]["State"]
    running = bool(state.get("Running"))
    if running != p.running:
        return Outcome(
            False,
            f"expected container {p.name} to be {'running' if p.running else 'stopped'}, "
            f"found it {state.get('Status', 'unknown')}",
        )
    return Outcome(True, f"container {p.name} is {state.get('Status', 'unknown')}")


def _postgres_table(t: Target, p: c.PostgresTableCheck) -> Outcome:
    """Counts rows (up to `min_rows`) with the project's database settings, whatever `host`."""
    import os

    import psycopg
    from psycopg import sql

    from migrate.data import database

    config = t.config
    embedded = not os.environ.get(database.ENV_URL) and config.target.database_url is None
    if embedded and not (t.project_dir / database.EMBEDDED_DIR).exists():
        return Outcome(
            False,
            f"expected table {p.table}, found no database: none is configured and the "
            "embedded server was never created",
        )
    schema, _, table = p.table.rpartition(".")
    name = sql.Identifier(schema, table) if schema else sql.Identifier(table)
    limit = max(p.min_rows, 1)
    query = sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} LIMIT {}) AS rows").format(
        name, sql.Literal(limit)
    )
    db = database.resolve(t.project_dir, config)
    with db.connect(autocommit=True) as conn:
        try:
            rows = int(conn.execute(query).fetchone()[0])  # type: ignore[index]
        except psycopg.errors.UndefinedTable:
            return Outcome(False, f"expected table {p.table}, found no such table")
    if rows < p.min_rows:
        return Outcome(False, f"expected at least {p.min_rows} rows in {p.table}, found {rows}")
    more = "+" if rows == limit else ""
    return Outcome(True, f"{p.table} has {rows}{more} rows")


def _k8s_resource(t: Target, p: c.K8sResourceCheck) -> Outcome:
    what = f"{p.kind} {p.name}" + (f" in namespace {p.namespace}" if p.namespace else "")
    if not t.host.exists("kubectl"):
        return Outcome(False, f"expected {what}, found no kubectl on {t.spec}")
    command = f"kubectl get {shlex.quote(p.kind)} {shlex.quote(p.name)} -o name"
    command += f" --request-timeout={max(int(t.timeout), 1)}s"
    if p.namespace:
        command += f" -n {shlex.quote(p.namespace)}"
    if t.local and t.config.target.kube_context:
        command += f" --context {shlex.quote(t.config.target.kube_context)}"
    result = t.host.run(command)
    if result.rc == 0:
        return Outcome(True, f"{result.stdout.strip()} exists")
    why = first_line(result.stderr)
    if "NotFound" in why or "not found" in why:
        return Outcome(False, f"expected {what}, found none")
    if "the server doesn't have a resource type" in why:
        return Outcome(False, f"expected {what}, found no resource type {p.kind} in the cluster")
    return Outcome(False, f"expected {what}, found no cluster answering: {why}")


RUNNERS: dict[str, Callable[[Target, Any], Outcome]] = {
    "file": _file,
    "command": _command,
    "socket": _socket,
    "service": _service,
    "process": _process,
    "package": _package,
    "http": _http,
    "docker_container": _docker_container,
    "postgres_table": _postgres_table,
    "k8s_resource": _k8s_resource,
}
