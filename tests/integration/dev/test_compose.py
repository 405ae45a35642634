"""Issue 12, item 9: the generated dev/compose.yaml is clean for Compose itself.

`docker-compose config` (Compose v1, 1.29.2 as Debian 12 ships it; scripts/test-services
installs it) reads the file as `up` would: interpolation, the schema, every reference.
It needs no Docker engine. The plugin text of a hostile plugin.yaml must not change it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from migrate.cli.app import app
from tests.conftest import require_service

pytestmark = pytest.mark.integration


def docker_compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        require_service("docker-compose", "the docker-compose binary is not on PATH")
    assert binary is not None
    return binary


def generate(project: Path) -> Path:
    args = ["-C", str(project), "apply", "--phase", "1", "--only", "dev-environments"]
    result = CliRunner().invoke(app, [*args, "--yes", "--force"])
    assert result.exit_code == 0, result.output
    return project / "dev" / "compose.yaml"


def config(binary: str, compose_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "-p", "migrate-test-dev", "-f", str(compose_file), "config"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=compose_file.parent.parent,  # as a user runs it: from the project
        check=False,
    )


def test_docker_compose_config_is_clean(project: Path) -> None:
    binary = docker_compose()
    compose_file = generate(project)
    result = config(binary, compose_file)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    resolved = yaml.safe_load(result.stdout)
    written = yaml.safe_load(compose_file.read_text())
    assert set(resolved["services"]) == set(written["services"])
    password = (project / "dev" / ".env").read_text().strip().split("=", 1)[1]
    orchestrator = resolved["services"]["project-dev-orchestrator"]
    assert f"postgres:{password}@127.0.0.1:" in orchestrator["environment"]["DATABASE_URL"]
    postgres = resolved["services"]["project-dev-postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD"] == password


def test_docker_compose_config_without_the_env_file_says_what_to_do(project: Path) -> None:
    binary = docker_compose()
    compose_file = generate(project)
    (project / "dev" / ".env").unlink()
    result = config(binary, compose_file)
    assert result.returncode != 0
    assert "migrate apply --only dev-environments" in result.stderr


def test_docker_compose_config_is_clean_on_a_bridge_network(project: Path) -> None:
    binary = docker_compose()
    path = project / "migrate.yaml"
    path.write_text(path.read_text() + "dev:\n  network: bridge\n")
    result = config(binary, generate(project))
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert all(s["ports"][0].startswith("127.0.0.1:") for s in services.values())


def test_docker_compose_config_keeps_hostile_plugin_text_literal(project: Path) -> None:
    binary = docker_compose()
    name = "x\n  evil:\n    privileged: true\n  # $HOME ${PATH}"
    plugin = project.parent / "agents-app" / "plugins" / "evil"
    plugin.mkdir()
    (plugin / "plugin.yaml").write_text(
        yaml.safe_dump(
            {
                "name": name,
                "entrypoint": "plugin:handle",
                "events": {"consumes": ["a.$HOME"], "produces": ["b"]},
            }
        )
    )
    (plugin / "plugin.py").write_text("def handle(p):\n    return p\n")
    result = config(binary, generate(project))
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    [worker] = [
        s
        for s in services.values()
        if s["labels"]["io.migrate.role"] == "worker"
        and s["environment"]["MIGRATE_PLUGIN"] != "planner"
        and "a." in s["environment"]["MIGRATE_CONSUMES"]
    ]
    # `docker-compose config` prints values with `$` escaped again: what runs is `$`
    assert worker["environment"]["MIGRATE_CONSUMES"] == "a.$$HOME"
    assert worker["environment"]["MIGRATE_PLUGIN"] == name.replace("$", "$$")
    assert "privileged" not in {k for s in services.values() for k in s}
