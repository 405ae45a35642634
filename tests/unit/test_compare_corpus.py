"""The replay corpus of `migrate compare`/`bench`: config keys, filters, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from migrate.cli.app import app
from migrate.compare import corpus
from migrate.config import load_config
from migrate.errors import UserError
from migrate.inventory import scan


def _replay(project: Path, **replay: object) -> None:
    config = project / "migrate.yaml"
    data = yaml.safe_load(config.read_text())
    data["replay"] = replay
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def _load(project: Path, inputs: Path | None = None) -> corpus.Corpus:
    config = load_config(project)
    inventory = scan((project / config.source.path).resolve())
    return corpus.load(project, config.replay, inventory, inputs)


def test_init_proposes_the_agent_runs_dataset(project: Path) -> None:
    replay = yaml.safe_load((project / "migrate.yaml").read_text())["replay"]
    assert replay == {
        "dataset": "agent_runs",
        "plugin_key": "plugin",
        "input_key": "input",
        "output_key": "output",
        "where": {"status": ["succeeded"]},
    }


def test_the_example_corpus_keeps_successful_runs(project: Path) -> None:
    loaded = _load(project)
    assert sorted(loaded.cases) == [
        "Report-Writer", "code_reviewer", "notifier", "planner", "summarizer", "web_researcher"
    ]  # fmt: skip
    assert len(loaded) == 2397 and loaded.skipped == 603
    first = loaded.cases["code_reviewer"][0]
    assert first.origin == "agent_runs/runs-2026-01.jsonl:2"
    assert first.recorded == {"issue_count": 2, "approved": False}


def test_unknown_dataset_names_the_key(project: Path) -> None:
    _replay(project, dataset="no_such_runs")
    with pytest.raises(UserError) as caught:
        _load(project)
    assert caught.value.key == "replay.dataset"
    assert "no_such_runs" in caught.value.message and "agent_runs" in (caught.value.hint or "")


def test_a_filter_that_keeps_nothing_is_an_empty_corpus(project: Path) -> None:
    _replay(project, dataset="agent_runs", where={"status": ["no-such-status"]})
    with pytest.raises(UserError) as caught:
        _load(project)
    assert caught.value.key == "replay"
    assert "holds no invocation" in caught.value.message
    assert "3000 record(s) left out by replay.where" in caught.value.message


def test_unknown_plugin_in_a_record_names_the_key(project: Path, example_app: Path) -> None:
    runs = example_app / "data" / "agent_runs" / "runs-2026-01.jsonl"
    runs.write_text(json.dumps({"plugin": "ghost", "input": {}, "status": "succeeded"}) + "\n")
    with pytest.raises(UserError) as caught:
        _load(project)
    assert caught.value.key == "replay.plugin_key"
    assert "ghost" in caught.value.message and "runs-2026-01.jsonl:1" in caught.value.message


def test_an_input_that_is_no_object_names_the_key(project: Path) -> None:
    _replay(project, dataset="agent_runs", input_key="tags")
    with pytest.raises(UserError) as caught:
        _load(project)
    assert caught.value.key == "replay.input_key"
    assert "not a JSON object" in caught.value.message


def test_a_malformed_dataset_is_an_empty_corpus_with_warnings(
    project: Path, example_app: Path
) -> None:
    runs = example_app / "data" / "agent_runs"
    for path in runs.iterdir():
        path.write_text("{not json\n[1, 2]\n")
    with pytest.raises(UserError) as caught:
        _load(project)
    assert caught.value.key == "replay" and "6 unreadable" in caught.value.message


def test_inputs_file_errors_name_the_line(project: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text('{"plugin": "planner", "input": {"goal": "a"}}\n{oops\n')
    with pytest.raises(UserError) as caught:
        _load(project, inputs)
    assert caught.value.line == 2 and "not JSON" in caught.value.message
    inputs.write_text('{"plugin": "ghost", "input": {}}\n')
    with pytest.raises(UserError, match="no plugin 'ghost'"):
        _load(project, inputs)
    inputs.write_text("\n")
    with pytest.raises(UserError, match="holds no invocation"):
        _load(project, inputs)
    inputs.write_text('{"plugin": "planner", "input": {"goal": "a. b"}}\n')
    assert len(_load(project, inputs)) == 1


def test_no_replay_section_and_no_inputs(project: Path) -> None:
    config = project / "migrate.yaml"
    data = yaml.safe_load(config.read_text())
    del data["replay"]
    config.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["-C", str(project), "compare"])
    assert result.exit_code == 1
    assert "replay" in result.output and "--inputs" in result.output


def test_unknown_plugin_option(project: Path) -> None:
    result = CliRunner().invoke(
        app, ["-C", str(project), "compare", "--plugin", "ghost", "--output", "json"]
    )
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert "--plugin ghost" in document["error"] and "planner" in document["hint"]


def test_replay_config_is_validated(project: Path) -> None:
    _replay(project, dataset="agent_runs", wher={"status": ["ok"]})
    result = CliRunner().invoke(app, ["-C", str(project), "compare"])
    assert result.exit_code == 1 and "replay" in result.output and "wher" in result.output


def test_init_proposes_past_datasets_it_cannot_read(example_app: Path, tmp_path: Path) -> None:
    """A dataset nested deeper than Python recurses, or of non-objects, is no proposal,
    and never stops `init` (data load reports such records as rejects)."""
    deep = example_app / "data" / "aaa_deep" / "deep.json"
    deep.parent.mkdir(parents=True)
    deep.write_text("[" * 100_000 + "]" * 100_000)
    scalars = example_app / "data" / "aab_scalars" / "values.json"
    scalars.parent.mkdir(parents=True)
    scalars.write_text("[1, 2, 3]")
    result = CliRunner().invoke(
        app, ["-C", str(tmp_path / "p"), "init", "--source", str(example_app)]
    )
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "p")
    assert config.replay is not None and config.replay.dataset == "agent_runs"
