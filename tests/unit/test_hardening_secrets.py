"""Issue 13, item 4: passwords never reach stderr or .migrate/debug.log, whatever fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrate import api
from migrate.secrets import Secret, mask_text

PASSWORD = "hunter two@42"  # a space makes psycopg refuse the URL; an @ inside, too
URL = "postgresql://app:hunter two@42@127.0.0.1:1/appdb"


def migrate(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "MIGRATE_DATABASE_URL"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "migrate", "-C", str(project), *args],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=120,
    )


def leaked(text: str) -> list[str]:
    return [piece for piece in ("hunter", "two@42", PASSWORD) if piece in text]


@pytest.mark.parametrize("where", ["flag", "environment"])
def test_a_password_with_a_space_never_leaks(tmp_path: Path, example_app: Path, where: str) -> None:
    project = tmp_path / "project"
    api.init(project, example_app)
    if where == "flag":
        result = migrate(project, "--database-url", URL, "data", "load")
    else:
        result = migrate(project, "data", "load", env={"MIGRATE_DATABASE_URL": URL})
    assert result.returncode == 1
    assert not leaked(result.stderr + result.stdout), result.stderr
    log = project / ".migrate" / "debug.log"
    if log.exists():
        assert not leaked(log.read_text()), log.read_text()
    warned = "MIGRATE_DATABASE_URL" in result.stderr and "`ps`" in result.stderr
    assert warned is (where == "flag"), result.stderr


def test_a_url_password_with_spaces_and_at_signs_is_masked() -> None:
    assert PASSWORD not in mask_text(f"cannot connect to {URL}: refused")
    assert "app:***@" in mask_text(f"cannot connect to {URL}: refused")


def test_a_known_secret_is_masked_even_out_of_its_url() -> None:
    Secret("postgresql://u:correct horse@db/x")
    text = mask_text('unexpected spaces found in "correct horse", use %20')
    assert "correct horse" not in text and "***" in text


def test_fluent_bit_verifies_elasticsearch_with_the_eck_ca() -> None:
    from migrate.manifests.helm import releases_for

    variables = {"target": {"monitoring": {"namespace": "monitoring"}, "namespace": "app"}}
    (fluent_bit,) = [r for r in releases_for("logging", {}, variables) if r.name == "fluent-bit"]
    outputs = fluent_bit.values["config"]["outputs"]
    settings = dict(line.split(None, 1) for line in outputs.splitlines()[1:])
    assert settings["tls"] == "On" and settings["tls.verify"] == "On"
    (volume,) = fluent_bit.values["extraVolumes"]
    assert volume["secret"]["secretName"] == "logs-es-http-certs-public"  # made by ECK
    (mount,) = fluent_bit.values["extraVolumeMounts"]
    assert mount["name"] == volume["name"]
    assert settings["tls.ca_file"] == f"{mount['mountPath']}/ca.crt"
    assert settings["tls.vhost"] == "logs-es-http.monitoring.svc"
