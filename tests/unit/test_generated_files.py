"""Issue 12, items 1 and 9: every generated pipeline and dev file works as written.

The CI workflow, the GitLab pipeline and the dev container install exactly the migrate
that generated them (the distribution `migrate-k8s-roadmap`, pinned; the PyPI name
`migrate` is an unrelated tool), or what `ci.install` says, never an unpinned name.
dev/compose.yaml describes the containers of `migrate dev up`, and its one secret
lives in dev/.env (mode 0600), never in a plan or the journal.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from migrate import DISTRIBUTION, install_hint, installed_version
from migrate.cli.app import app
from migrate.config import load_config
from migrate.dev import compose, plan
from migrate.install import parse
from migrate.project import open_context
from tests.conftest import REPO

PINNED = f"{DISTRIBUTION}[k8s]=={installed_version()}"


def apply(project: Path, *tasks: str) -> None:
    only = [arg for task in tasks for arg in ("--only", task)]
    args = ["-C", str(project), "apply", "--phase", "1", *only, "--yes", "--force"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


def set_config(project: Path, extra: str) -> None:
    path = project / "migrate.yaml"
    path.write_text(path.read_text() + extra)


def pip_installs(text: str) -> list[list[str]]:
    """The argument lists of every `pip install` in a shell line."""
    return [
        line.split("pip install", 1)[1].split()
        for line in text.splitlines()
        if "pip install" in line
    ]


# -- the distribution ------------------------------------------------------------------


def test_the_distribution_is_installed_under_its_own_name() -> None:
    from importlib.metadata import PackageNotFoundError, version

    assert DISTRIBUTION == "migrate-k8s-roadmap"
    assert installed_version() == version(DISTRIBUTION) != "0+unknown"
    with pytest.raises(PackageNotFoundError):  # the unrelated PyPI tool is not what we are
        version("migrate")
    assert install_hint("k8s") == f"pip install '{PINNED}'"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(rf'^name = "{DISTRIBUTION}"$', pyproject, re.MULTILINE)


def test_migrate_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"migrate {installed_version()}"


# -- the pipelines and the dev container -------------------------------------------------


def test_pipelines_and_devcontainer_install_the_pinned_migrate(project: Path) -> None:
    apply(project, "ci-cd-pipelines", "dev-environments")

    workflow = yaml.safe_load((project / ".github/workflows/migrate.yml").read_text())
    steps = workflow["jobs"]["migrate"]["steps"]
    runs = [step["run"] for step in steps if "run" in step]
    assert runs[0] == f"pip install '{PINNED}'"
    assert "migrate ci" in runs[1]
    assert [step.get("uses", "").split("@")[0] for step in steps if "uses" in step] == [
        "actions/checkout",
        "actions/setup-python",
        "actions/upload-artifact",
    ]

    gitlab = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    assert gitlab["stages"] == ["migrate"]
    script = gitlab["migrate"]["script"]
    assert script[0] == f"pip install '{PINNED}'"
    assert script[1].startswith("migrate ci ")

    devcontainer = json.loads((project / ".devcontainer/devcontainer.json").read_text())
    assert devcontainer["postCreateCommand"] == ["pip", "install", PINNED]
    assert devcontainer["name"] == "project"

    for args in [*pip_installs(runs[0]), *pip_installs(script[0])]:
        assert args == [f"'{PINNED}'"]


def test_ci_install_names_where_to_install_from(project: Path) -> None:
    index = "https://pypi.example.com/simple"
    set_config(project, f"ci:\n  install: --index-url {index} '{DISTRIBUTION}[k8s]==0.1.0'\n")
    apply(project, "ci-cd-pipelines", "dev-environments")
    expected = f"pip install --index-url {index} '{DISTRIBUTION}[k8s]==0.1.0'"
    workflow = yaml.safe_load((project / ".github/workflows/migrate.yml").read_text())
    assert next(s["run"] for s in workflow["jobs"]["migrate"]["steps"] if "run" in s) == expected
    gitlab = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    assert gitlab["migrate"]["script"][0] == expected
    devcontainer = json.loads((project / ".devcontainer/devcontainer.json").read_text())
    assert devcontainer["postCreateCommand"] == [
        "pip",
        "install",
        "--index-url",
        index,
        f"{DISTRIBUTION}[k8s]==0.1.0",
    ]


@pytest.mark.parametrize(
    "value",
    [
        f"{DISTRIBUTION}[k8s]==0.1.0",
        f"{DISTRIBUTION}===0.1.0",
        "https://files.example.com/migrate_k8s_roadmap-0.1.0-py3-none-any.whl",
        f"{DISTRIBUTION} @ https://files.example.com/migrate_k8s_roadmap-0.1.0-py3-none-any.whl",
        f"-i https://pypi.example.com/simple {DISTRIBUTION}==0.1.0",
        f"--index-url=https://pypi.example.com/simple {DISTRIBUTION}==0.1.0",
        "-r requirements-migrate.txt",
    ],
)
def test_ci_install_accepts_pinned_requirements(value: str) -> None:
    assert parse(value)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("migrate", "not pinned"),
        (DISTRIBUTION, "not pinned"),
        (f"{DISTRIBUTION}[k8s]", "not pinned"),
        (f"{DISTRIBUTION}>=0.1", "not pinned"),
        (f"--index-url https://pypi.example.com/simple {DISTRIBUTION}", "not pinned"),
        ("--index-url https://pypi.example.com/simple", "names nothing"),
        (f"-U {DISTRIBUTION}==0.1.0", "not allowed"),
        ("--index-url", "needs a value"),
        ("'unterminated", "cannot split"),
    ],
)
def test_ci_install_refuses_what_is_not_pinned(project: Path, value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse(value)
    set_config(project, f"ci:\n  install: {json.dumps(value)}\n")
    result = CliRunner().invoke(app, ["-C", str(project), "plan", "--phase", "1"])
    assert result.exit_code == 1
    assert "ci.install" in result.output and says in result.output


_SCANNED = ["templates", "src", "docs", "scripts", ".ci", "examples", "README.md", "pyproject.toml"]
_INSTALL = re.compile(r"pip3?[\"',\s]+install\b(?P<rest>.*)")
_TOKEN = re.compile(r"[A-Za-z0-9_.-]+(?:\[[^\]]*\])?(?:===?[^\s'\"`,)\]]+)?")
_OURS = re.compile(r"^(?P<name>migrate|migrate[-_]k8s[-_]roadmap)(\[[^\]]*\])?(?P<pin>===?\S+)?$")


def _install_findings(path: Path, pinned_only: bool, root: Path = REPO) -> list[str]:
    findings = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        for match in _INSTALL.finditer(line):
            command = re.split(r"[`;|&#]", match["rest"])[0]  # prose after `pip install`
            for token in _TOKEN.findall(command):
                found = _OURS.match(token)
                if found is None:
                    continue
                where = f"{path.relative_to(root)}:{number}: {line.strip()}"
                if found["name"] == "migrate":
                    findings.append(f"{where} (`migrate` on PyPI is another tool)")
                elif pinned_only and not found["pin"]:
                    findings.append(f"{where} (not pinned)")
    return findings


def test_no_file_installs_the_wrong_or_an_unpinned_migrate() -> None:
    """The class, not one example: any `pip install` of the PyPI name `migrate` anywhere,
    and any unpinned install of the distribution in what generates files (src/, templates/)."""
    findings = []
    for entry in _SCANNED:
        root = REPO / entry
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            if "__pycache__" in path.parts or path.suffix in (".pyc", ".whl", ".gz"):
                continue
            generating = entry in ("templates", "src")
            findings += _install_findings(path, pinned_only=generating)
    assert findings == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.j2"
    bad.write_text(
        "run: pip install migrate\n"
        "  - pip install 'migrate[k8s]'\n"
        '"postCreateCommand": ["pip", "install", "migrate-k8s-roadmap"]\n'
        "python -m pip install migrate-k8s-roadmap[k8s] --quiet\n"
        "pip install 'migrate-k8s-roadmap[k8s]==0.1.0'\n"
    )
    found = _install_findings(bad, pinned_only=True, root=tmp_path)
    assert [f.split(":")[1] for f in found] == ["1", "2", "3", "4"]


# -- dev/compose.yaml and dev/.env -----------------------------------------------------


def test_compose_describes_the_containers_of_dev_up(project: Path) -> None:
    apply(project, "dev-environments")
    document = yaml.safe_load((project / "dev/compose.yaml").read_text())
    assert set(document) == {"services"}  # no `name:`: Compose v1 refuses it

    ctx = open_context(project)
    model = compose.build(ctx)
    ports = iter(range(compose.FIRST_PORT, compose.FIRST_PORT + 100))
    inputs = plan.Inputs(
        project=ctx.config.project,
        network="host",
        plugins=list(ctx.inventory.plugins),
        images=plan.Images(
            plugins={s.plugin: s.image for s in model.services if s.role == "service" and s.plugin},
            orchestrator=next(s.image for s in model.services if s.role == "orchestrator"),
            redis=ctx.config.dev.redis_image,
            postgres=ctx.config.dev.postgres_image,
        ),
        schema=ctx.config.target.db_schema,
        postgres_password=plan.Secret("PASSWORD"),
    )
    dev = plan.build(inputs, lambda _name: next(ports))

    services: dict[str, Any] = document["services"]
    assert list(services) == dev.names()
    roles = {c.name: c.role for c in dev.containers}
    assert sorted(set(roles.values())) == ["orchestrator", "postgres", "redis", "service", "worker"]
    reference = "${MIGRATE_DEV_POSTGRES_PASSWORD:?"
    for spec in dev.containers:
        service = services[spec.name]
        assert service["network_mode"] == "host"
        assert service["pull_policy"] == "never"
        assert service["restart"] == "on-failure"
        assert service["image"] == spec.image
        assert service["labels"]["io.migrate.role"] == spec.role
        assert "io.migrate.dev" not in service["labels"]  # `dev down` leaves them alone
        environment = {
            key: value.split(reference)[0] + "PASSWORD" + value.split("}", 1)[1]
            if reference in value
            else value.replace("$$", "$")
            for key, value in service.get("environment", {}).items()
        }
        assert environment == spec.environment()
        if spec.role in plan.RUNTIME_ROLES:
            assert service["depends_on"] == [c.name for c in dev.infra]
            assert re.fullmatch(r".+:[0-9a-f]{12}", service["image"])  # the content-hash tag
    text = (project / "dev/compose.yaml").read_text()
    assert "PASSWORD" not in text.replace("MIGRATE_DEV_POSTGRES_PASSWORD", "").replace(
        "POSTGRES_PASSWORD", ""
    )


def test_compose_on_a_bridge_network_publishes_on_loopback(project: Path) -> None:
    set_config(project, "dev:\n  network: bridge\n")
    apply(project, "dev-environments")
    services = yaml.safe_load((project / "dev/compose.yaml").read_text())["services"]
    for name, service in services.items():
        assert "network_mode" not in service
        [published] = service["ports"]
        assert published.startswith("127.0.0.1:")
        if service["labels"]["io.migrate.role"] in plan.RUNTIME_ROLES:
            assert published.endswith(":8080")
            assert service["environment"]["HOST"] == "0.0.0.0"
            assert service["environment"][
                "REDIS_URL" if "REDIS_URL" in service["environment"] else "MIGRATE_PLUGIN"
            ]
            assert "127.0.0.1" not in service["environment"].get("REDIS_URL", ""), name


def test_the_password_is_generated_once_private_and_never_journaled(project: Path) -> None:
    result = CliRunner().invoke(app, ["-C", str(project), "plan", "--phase", "1", "-o", "json"])
    changes = [
        c
        for phase in json.loads(result.stdout)["phases"]
        for t in phase["tasks"]
        for c in t["changes"]
    ]
    assert {"op": "create", "resource": "file:dev/.env"}.items() <= next(
        c for c in changes if c["resource"] == "file:dev/.env"
    ).items()

    apply(project, "dev-environments")
    env = project / "dev/.env"
    assert env.stat().st_mode & 0o777 == 0o600
    [line] = env.read_text().splitlines()
    name, password = line.split("=", 1)
    assert name == "MIGRATE_DEV_POSTGRES_PASSWORD" and len(password) >= 32

    apply(project, "dev-environments")  # kept as it is
    assert env.read_text() == f"{line}\n"

    journal = b"".join(p.read_bytes() for p in (project / ".migrate").rglob("*") if p.is_file())
    assert password.encode() not in journal
    with sqlite3.connect(project / ".migrate/state.db") as db:
        dump = "\n".join(db.iterdump())
    assert password not in dump

    env.write_text("OTHER=1")  # a name missing: appended, the rest kept
    env.chmod(0o644)
    apply(project, "dev-environments")
    lines = env.read_text().splitlines()
    assert lines[0] == "OTHER=1" and lines[1].startswith("MIGRATE_DEV_POSTGRES_PASSWORD=")
    assert env.stat().st_mode & 0o777 == 0o600


def test_rollback_removes_the_generated_env_file(project: Path) -> None:
    apply(project, "dev-environments")
    assert (project / "dev/.env").is_file()
    result = CliRunner().invoke(app, ["-C", str(project), "rollback", "--phase", "1", "--yes"])
    assert result.exit_code == 0, result.output
    assert not (project / "dev/.env").exists()
    assert not (project / "dev").exists()


def test_config_loads_ci_install(project: Path) -> None:
    set_config(project, f"ci:\n  install: '{DISTRIBUTION}==0.1.0'\n")
    assert load_config(project).ci.install == f"{DISTRIBUTION}==0.1.0"
