from __future__ import annotations

from pathlib import Path

import pytest

from migrate.config import load_config
from migrate.errors import ConfigError
from migrate.secrets import Secret, mask_text
from tests.conftest import write

GOOD = """
project: acme
source:
  path: ../app
target:
  namespace: acme
  database_url: postgresql://migrator:s3cret@db.example:5432/acme
"""


def test_defaults(tmp_path: Path) -> None:
    write(tmp_path / "migrate.yaml", GOOD)
    config = load_config(tmp_path)
    assert config.roadmap == "phases/roadmap.yaml"
    assert config.target.base_image == "python:3.11-slim"
    assert config.target.db_schema == "legacy"
    assert config.target.registry is None
    assert isinstance(config.target.database_url, Secret)
    assert config.target.database_url.reveal().endswith("@db.example:5432/acme")


def test_database_password_is_masked_everywhere(tmp_path: Path) -> None:
    write(tmp_path / "migrate.yaml", GOOD)
    config = load_config(tmp_path)
    assert "s3cret" not in str(config)
    assert "s3cret" not in repr(config)
    assert "s3cret" not in config.model_dump_json()
    assert "s3cret" not in str(config.model_dump())
    assert str(config.target.database_url) == "postgresql://migrator:***@db.example:5432/acme"


def test_missing_config_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "no migrate.yaml" in str(caught.value)
    assert "migrate init" in str(caught.value)


def test_unknown_key(tmp_path: Path) -> None:
    write(tmp_path / "migrate.yaml", GOOD + "  colour: blue\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    exc = caught.value
    assert exc.line == 7 and exc.key == "target.colour"
    assert "migrate.yaml:7: target.colour: unknown key" in str(exc)
    assert "namespace" in str(exc)  # the allowed keys are listed


def test_bad_namespace_and_missing_key(tmp_path: Path) -> None:
    write(tmp_path / "migrate.yaml", GOOD.replace("namespace: acme", "namespace: Acme_Corp"))
    with pytest.raises(ConfigError, match=r"migrate.yaml:5: target.namespace: 'Acme_Corp'"):
        load_config(tmp_path)
    write(tmp_path / "migrate.yaml", GOOD.replace("project: acme\n", ""))
    with pytest.raises(ConfigError, match=r"project: required key is missing"):
        load_config(tmp_path)


def test_bad_url_type_never_echoes_a_secret(tmp_path: Path) -> None:
    write(tmp_path / "migrate.yaml", GOOD + "  schema: 'drop table'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "target.schema" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_mask_text() -> None:
    assert mask_text("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert mask_text("host=h password=pw user=u") == "host=h password=*** user=u"
    assert mask_text("postgresql://u@h/db") == "postgresql://u@h/db"
    assert str(Secret("plain-token")) == "***"
