"""Loading the roadmap, and every kind of bad input naming file, line and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrate.errors import RoadmapError
from migrate.roadmap import ACTION_KINDS, Roadmap, default_roadmap_path, load_roadmap
from tests.conftest import write

VALID = """
phases:
  - id: 1
    name: One
    duration: 1 week
    tasks:
      - id: first
        title: First
        action: manual
        checks:
          - file: {path: /etc/hostname}
      - id: second
        title: Second
        action: files
        needs: [first]
        with:
          files:
            - template: ci/gitlab-ci.yml.j2
              path: .gitlab-ci.yml
  - id: 2
    name: Two
    tasks:
      - id: third
        title: Third
        action: manual
        needs: [second]
"""


def load(tmp_path: Path, text: str) -> Roadmap:
    return load_roadmap(write(tmp_path / "roadmap.yaml", text))


def error(tmp_path: Path, text: str) -> RoadmapError:
    with pytest.raises(RoadmapError) as caught:
        load(tmp_path, text)
    return caught.value


def test_valid_roadmap_loads(tmp_path: Path) -> None:
    roadmap = load(tmp_path, VALID)
    assert [p.id for p in roadmap.phases] == [1, 2]
    assert [t.id for _, t in roadmap.tasks()] == ["first", "second", "third"]
    assert roadmap.task("second")[1].needs == ["first"]
    assert roadmap.phase(1).tasks[0].checks[0].kind == "file"


def test_default_roadmap_is_the_blueprint() -> None:
    roadmap = load_roadmap(default_roadmap_path())
    assert [p.name for p in roadmap.phases] == [
        "Infrastructure Preparation",
        "Core Services Migration",
        "Agent System Modernization",
        "Advanced Features",
    ]
    assert [p.duration for p in roadmap.phases] == [
        "2-3 weeks",
        "4-6 weeks",
        "6-8 weeks",
        "4-6 weeks",
    ]
    assert [len(p.tasks) for p in roadmap.phases] == [4, 4, 4, 4]
    actions = {task.id: task.action for _, task in roadmap.tasks()}
    assert actions == {
        "cluster-setup": "infra",
        "ci-cd-pipelines": "files",
        "monitoring-stack": "manifests",
        "dev-environments": "files",
        "containerize-services": "images",
        "database-migration": "data",
        "service-mesh": "manifests",
        "load-balancing": "manifests",
        "agent-orchestrator": "manifests",
        "async-execution": "manifests",
        "event-driven-communication": "manifests",
        "auto-scaling": "manifests",
        "caching": "manifests",
        "machine-learning": "manual",
        "analytics": "manifests",
        "security": "manifests",
    }
    assert all(task.checks for _, task in roadmap.tasks())
    assert all(p.description for p in roadmap.phases)
    # the blueprint's risk list: a backup before the data migration
    backup = roadmap.task("database-migration")[1].with_["backup"]
    assert backup["before_load"] is True and backup["method"] == "pg_dump"
    assert set(actions.values()) <= set(ACTION_KINDS)


def assert_names(exc: RoadmapError, line: int, key: str, *words: str) -> None:
    text = str(exc)
    assert exc.file is not None and exc.file.endswith("roadmap.yaml"), text
    assert exc.line == line, text
    assert exc.key == key, text
    assert f"roadmap.yaml:{line}: {key}:" in text, text
    for word in words:
        assert word in text, text


def test_malformed_yaml(tmp_path: Path) -> None:
    exc = error(tmp_path, "phases:\n  - id: 1\n    name: [unclosed\n")
    assert exc.file and exc.file.endswith("roadmap.yaml")
    assert exc.line in (3, 4)
    assert "malformed YAML" in str(exc)


def test_tab_indentation_is_malformed(tmp_path: Path) -> None:
    exc = error(tmp_path, "phases:\n\t- id: 1\n")
    assert exc.line == 2 and "tab characters are not allowed in YAML indentation" in str(exc)


def test_unknown_key_on_a_task(tmp_path: Path) -> None:
    text = VALID.replace(
        "        action: manual\n        checks:",
        "        action: manual\n        colour: red\n        checks:",
        1,
    )
    exc = error(tmp_path, text)
    assert_names(exc, 9, "phases[0].tasks[0].colour", "unknown key", "allowed here:", "needs")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    exc = error(tmp_path, "phase:\n  - id: 1\n")
    assert exc.line == 1
    assert "phase" in str(exc) and "unknown key" in str(exc)


def test_wrong_type(tmp_path: Path) -> None:
    exc = error(tmp_path, VALID.replace("  - id: 2\n", "  - id: two\n"))
    assert_names(exc, 19, "phases[1].id", "valid integer", "'two'")


def test_needs_must_be_a_list(tmp_path: Path) -> None:
    exc = error(tmp_path, VALID.replace("needs: [first]", "needs: {first: 1}"))
    assert_names(exc, 14, "phases[0].tasks[1].needs", "list")


def test_duplicate_task_id(tmp_path: Path) -> None:
    exc = error(tmp_path, VALID.replace("      - id: third", "      - id: first"))
    assert_names(exc, 22, "phases[1].tasks[0].id", "duplicate task id 'first'", "line 6")


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    exc = error(tmp_path, VALID.replace("    name: Two\n", "    name: Two\n    name: Three\n"))
    assert_names(exc, 21, "phases[1].name", "duplicate key 'name'", "line 20")


def test_unknown_action(tmp_path: Path) -> None:
    exc = error(tmp_path, VALID.replace("action: files", "action: helm"))
    assert_names(exc, 13, "phases[0].tasks[1].action", "'helm'", "manifests")


def test_cycle_in_needs(tmp_path: Path) -> None:
    text = VALID.replace(
        "        action: manual\n        checks:",
        "        action: manual\n        needs: [second]\n        checks:",
        1,
    )
    exc = error(tmp_path, text)
    assert "cycle" in str(exc)
    assert "first -> second -> first" in str(exc)
    assert exc.key == "phases[0].tasks[0].needs" and exc.line == 9


def test_needs_unknown_task(tmp_path: Path) -> None:
    exc = error(tmp_path, VALID.replace("needs: [second]", "needs: [nope]"))
    assert_names(exc, 25, "phases[1].tasks[0].needs[0]", "unknown task 'nope'", "known tasks:")


def test_needs_a_later_phase(tmp_path: Path) -> None:
    exc = error(tmp_path, VALID.replace("needs: [first]", "needs: [third]"))
    assert_names(exc, 14, "phases[0].tasks[1].needs[0]", "later phase 2")


def test_phase_ids_in_order(tmp_path: Path) -> None:
    exc = error(tmp_path, VALID.replace("  - id: 2\n", "  - id: 3\n"))
    assert_names(exc, 19, "phases[1].id", "must be 2")


def test_bad_task_id(tmp_path: Path) -> None:
    exc = error(tmp_path, VALID.replace("id: third", "id: Third_Task"))
    assert_names(exc, 22, "phases[1].tasks[0].id", "not a task id")


def test_check_with_two_kinds(tmp_path: Path) -> None:
    text = VALID.replace(
        "          - file: {path: /etc/hostname}",
        "          - file: {path: /etc/hostname}\n            process: {comm: init}",
    )
    exc = error(tmp_path, text)
    assert_names(exc, 10, "phases[0].tasks[0].checks[0]", "exactly one kind key", "file, process")


def test_check_unknown_kind(tmp_path: Path) -> None:
    exc = error(
        tmp_path, VALID.replace("- file: {path: /etc/hostname}", "- fiel: {path: /etc/hostname}")
    )
    assert_names(exc, 10, "phases[0].tasks[0].checks[0]", "unknown check kind 'fiel'")


def test_check_parameter_unknown(tmp_path: Path) -> None:
    exc = error(tmp_path, VALID.replace("{path: /etc/hostname}", "{path: /etc/hostname, size: 3}"))
    assert_names(exc, 10, "phases[0].tasks[0].checks[0].file.size", "unknown key", "contains")


def test_check_host_spec(tmp_path: Path) -> None:
    text = VALID.replace(
        "          - file: {path: /etc/hostname}",
        "          - file: {path: /etc/hostname}\n            host: ftp://x",
    )
    exc = error(tmp_path, text)
    assert_names(exc, 11, "phases[0].tasks[0].checks[0].host", "not a testinfra host spec")


def test_several_problems_are_all_listed(tmp_path: Path) -> None:
    text = VALID.replace("  - id: 2\n", "  - id: two\n").replace("title: First", "title: [x]")
    exc = error(tmp_path, text)
    assert "and 1 more problem(s)" in str(exc)
    assert ":19: phases[1].id" in str(exc)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    exc = error(tmp_path, "")
    assert "empty" in str(exc)
    with pytest.raises(RoadmapError, match="roadmap not found"):
        load_roadmap(tmp_path / "nope.yaml")


def test_unknown_phase_and_task(tmp_path: Path) -> None:
    roadmap = load(tmp_path, VALID)
    with pytest.raises(RoadmapError, match="there is no phase 7") as caught:
        roadmap.phase(7)
    assert caught.value.hint == "the roadmap has phases 1, 2"
    with pytest.raises(RoadmapError, match="no task 'x'"):
        roadmap.task("x")
