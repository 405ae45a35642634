from __future__ import annotations

from pathlib import Path

import pytest

from migrate.errors import InventoryError
from migrate.inventory import scan
from tests.conftest import EXAMPLE_APP, write


def test_example_application() -> None:
    inventory = scan(EXAMPLE_APP)
    plugins = {p.name: p for p in inventory.plugins}
    assert set(plugins) == {
        "Report-Writer",
        "code_reviewer",
        "notifier",
        "planner",
        "summarizer",
        "web_researcher",
    }
    assert plugins["notifier"].entrypoint == "plugin:handle"  # the default
    assert plugins["summarizer"].manifest.requirements == ["python-slugify>=8"]
    assert all(p.module_file is not None for p in inventory.plugins)
    datasets = {d.name: d for d in inventory.datasets}
    assert set(datasets) == {
        "agent_runs",
        "conversations",
        "events",
        "metrics/daily",
        "metrics/hourly",
        "settings",
        "users",
    }
    assert datasets["users"].formats == ["csv"]
    assert datasets["settings"].formats == ["yaml"]
    assert datasets["events"].formats == ["jsonl"]  # .ndjson
    assert datasets["metrics/daily"].files[0].relative == "metrics/daily/daily-2025.csv"
    formats = {f for d in inventory.datasets for f in d.formats}
    assert formats == {"jsonl", "json", "csv", "yaml"}


def test_missing_source_directory(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="does not exist") as caught:
        scan(tmp_path / "nope")
    assert "--source" in str(caught.value)


def test_not_an_application(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="neither plugins/ nor data/"):
        scan(tmp_path)


def test_bad_plugin_yaml_names_file_line_key(tmp_path: Path) -> None:
    write(tmp_path / "plugins" / "p" / "plugin.yaml", "name: p\nentrypoint: not valid\n")
    with pytest.raises(InventoryError) as caught:
        scan(tmp_path)
    assert caught.value.line == 2 and caught.value.key == "entrypoint"
    assert "plugin.yaml:2: entrypoint" in str(caught.value)


def test_plugins_whose_image_names_collide(tmp_path: Path) -> None:
    write(tmp_path / "plugins" / "a" / "plugin.yaml", "name: Code_Reviewer\n")
    write(tmp_path / "plugins" / "b" / "plugin.yaml", "name: code-reviewer\n")
    with pytest.raises(InventoryError, match="same image name 'code-reviewer'"):
        scan(tmp_path)


def test_datasets_whose_tables_collide(tmp_path: Path) -> None:
    write(tmp_path / "data" / "Users" / "a.jsonl", "{}\n")
    write(tmp_path / "data" / "users" / "b.jsonl", "{}\n")
    with pytest.raises(InventoryError, match="same table 'users'"):
        scan(tmp_path)


def test_loose_data_files_are_not_ignored(tmp_path: Path) -> None:
    write(tmp_path / "data" / "stray.csv", "a\n1\n")
    with pytest.raises(InventoryError, match="directly in"):
        scan(tmp_path)


def test_directory_without_data_files_is_no_dataset(tmp_path: Path) -> None:
    write(tmp_path / "data" / "a" / "README.md", "notes")
    write(tmp_path / "data" / "a" / "b" / "x.YML", "k: v\n")
    write(tmp_path / "plugins" / "bare" / "plugin.py", "def handle(p):\n    return p\n")
    inventory = scan(tmp_path)
    assert [d.name for d in inventory.datasets] == ["a/b"]
    assert [p.name for p in inventory.plugins] == ["bare"]
