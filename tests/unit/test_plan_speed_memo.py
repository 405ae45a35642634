"""What `plan` keeps between runs (issue 14) saves time and never changes an answer: the
render memo (migrate.manifests.render_memo), the whole-set checks' report
(migrate.manifests.lint.check) and the images' presence asked without the Docker SDK
(migrate.images.engine.which_exist).

Every test compares with a plan made with no cache at all (MIGRATE_NO_CACHE=1).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from migrate import api
from migrate.images import engine
from migrate.images.errors import DockerUnavailableError
from migrate.manifests import lint
from migrate.manifests import render as render_module
from migrate.manifests import render_memo as memo_module
from migrate.manifests import validate as validation
from migrate.manifests.model import Manifest, PhaseManifests, TaskManifests
from migrate.project import open_context
from migrate.resources import resource_path
from migrate.state import cache as cache_module
from tests.unit.engine_standin import engine_socket, knows
from tests.unit.plan_speed import cache_dir_fixture, outcome, uncached  # noqa: F401  (autouse)


def _memo_files(cache_dir: Path) -> list[Path]:
    found = []
    for path in cache_dir.glob("value-*.json"):
        document = json.loads(path.read_text())
        if str(document.get("identity", "")).startswith("render-memo|"):
            found.append(path)
    return found


def _refuse_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendered again although nothing changed")

    monkeypatch.setattr(render_module.Renderer, "render_task", refuse)


def test_a_second_plan_renders_nothing_and_says_the_same(
    project: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = uncached(project, monkeypatch)
    assert outcome(project) == expected
    assert len(_memo_files(cache_dir)) == 1
    assert not (project / ".migrate").exists()  # plan changes nothing in the project
    with monkeypatch.context() as patch:
        _refuse_rendering(patch)
        assert outcome(project) == expected


def _same_size_same_mtime_edit(path: Path) -> None:
    """Change the file's last byte (its final newline becomes a comment sign: the module
    still parses), keeping its size and its modification time."""
    before = path.stat()
    data = path.read_bytes()
    assert data.endswith(b"\n")
    path.write_bytes(data[:-1] + b"#")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_a_plugin_changed_without_a_new_size_or_mtime_is_rendered_again(
    project: Path, example_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = outcome(project)
    plugin = next(p for p in sorted((example_app / "plugins").iterdir()) if p.is_dir())
    source = next(p for p in sorted(plugin.glob("*.py")) if b"def " in p.read_bytes())
    _same_size_same_mtime_edit(source)
    expected = uncached(project, monkeypatch)
    assert expected != first  # the image tag, in the images and in the rendered objects
    assert outcome(project) == expected
    assert outcome(project) == expected


@pytest.mark.parametrize(
    "change",
    ["migrate.yaml", "a template of the project", "the tracks of the state", "environment"],
)
def test_what_a_render_reads_is_in_the_key(
    project: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    outcome(project)
    if change == "migrate.yaml":
        config = project / "migrate.yaml"
        config.write_text(config.read_text().replace("namespace: ", "namespace: x", 1))
    elif change == "a template of the project":
        template = project / "templates" / "k8s" / "limit-range.yaml.j2"
        template.parent.mkdir(parents=True)
        text = (resource_path("templates") / "k8s" / "limit-range.yaml.j2").read_text()
        template.write_text(text.replace('max: {cpu: "4"', 'max: {cpu: "3"', 1))
    elif change == "the tracks of the state":
        tracks = project / ".migrate" / "manifests" / "tracks.json"
        tracks.parent.mkdir(parents=True)
        tracks.write_text("{}")
    else:
        monkeypatch.setenv("MIGRATE_BASE_IMAGE", "example.org/python:3.11")
    assert outcome(project) == uncached(project, monkeypatch)


def _garble(path: Path) -> None:
    path.write_bytes(os.urandom(512))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _rewrite(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the memo's document and give it a valid checksum again (a wrong entry that
    reads as whole): only the memo's own checks can refuse it."""
    document = json.loads(path.read_text())
    document.pop("sha256")
    change(document)
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    document["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    path.write_text(json.dumps(document))


def _other_identity(document: dict[str, Any]) -> None:
    document["value"]["identity"] = "render|another-project-state"
    for entry in document["value"]["entries"].values():
        entry["manifests"] = []


def _wrong_shapes(document: dict[str, Any]) -> None:
    shapes: list[Any] = [None, [], "x", {"format": 1}, {"format": 1, "manifests": [1]}]
    entries = document["value"]["entries"]
    for index, key in enumerate(sorted(entries)):
        entries[key] = shapes[index % len(shapes)]


def _other_format(document: dict[str, Any]) -> None:
    for entry in document["value"]["entries"].values():
        entry["format"] = 99
        entry["manifests"] = []


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "missing": lambda path: path.unlink(),
    "garbage": _garble,
    "truncated": _truncate,
    "kept for another state": lambda path: _rewrite(path, _other_identity),
    "entries of the wrong shape": lambda path: _rewrite(path, _wrong_shapes),
    "entries of another format": lambda path: _rewrite(path, _other_format),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupt_or_stale_memo_does_not_change_the_plan(
    project: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, corruption: str
) -> None:
    expected = uncached(project, monkeypatch)
    outcome(project)
    [path] = _memo_files(cache_dir)
    CORRUPTIONS[corruption](path)
    assert outcome(project) == expected
    assert outcome(project) == expected  # and whole again afterwards


def test_a_cache_that_cannot_be_written_does_not_change_the_plan(
    project: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = uncached(project, monkeypatch)
    cache_dir.write_text("a file where the cache directory goes")
    assert outcome(project) == expected
    assert outcome(project) == expected


def test_a_directory_symlink_in_the_application_turns_the_memo_off(
    project: Path, example_app: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (example_app / "linked").symlink_to(example_app / "plugins", target_is_directory=True)
    assert memo_module.render_memo(open_context(project)).identity is None
    assert outcome(project) == uncached(project, monkeypatch)
    assert _memo_files(cache_dir) == []


def test_an_entry_json_cannot_say_exactly_is_not_kept() -> None:
    odd = Manifest(
        phase=1, task="t", component="c", template="k8s/x.j2", obj={"kind": "X", 1: "int key"}
    )
    rendered = TaskManifests(phase=1, task="t", components=("c",), manifests=(odd,), releases=())
    assert memo_module._to_entry(rendered, {}) is None


# --- the whole-set checks' report -------------------------------------------------------


def _report(phases: list[PhaseManifests], skip: tuple[str, ...] = ()) -> str:
    return json.dumps(lint.check(phases, skip).to_dict(), sort_keys=True)


def test_the_checks_report_is_kept_and_a_corrupt_one_is_not_used(
    example_render: list[PhaseManifests], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setenv("MIGRATE_NO_CACHE", "1")
        expected = _report(example_render)
    assert _report(example_render) == expected
    with monkeypatch.context() as patch:  # answered from the cache: no rule runs
        patch.setattr(lint, "_check", lambda *args: pytest.fail("the rules ran again"))
        assert _report(example_render) == expected
    path = cache_dir / cache_module.FILENAME
    document = json.loads(path.read_text())
    keys = [k for k in document["entries"] if k.startswith("lint|")]
    assert len(keys) == 1
    for value in ({"findings": [{"rule": 1}]}, [], {"findings": [], "rules": [None]}):
        document["entries"][keys[0]] = value
        document.pop("sha256", None)
        body = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        document["sha256"] = hashlib.sha256(body.encode()).hexdigest()
        path.write_text(json.dumps(document))
        assert _report(example_render) == expected


def test_another_set_another_skip_or_another_rule_is_checked_again(
    example_render: list[PhaseManifests], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _report(example_render)
    rule = next(iter(lint.RULES))
    assert _report(example_render, (rule,)) != first
    changed = [
        PhaseManifests(
            phase=p.phase,
            tasks=tuple(
                TaskManifests(
                    phase=t.phase,
                    task=t.task,
                    components=t.components,
                    manifests=t.manifests[1:],
                    releases=t.releases,
                )
                for t in p.tasks
            ),
        )
        for p in example_render
    ]
    with monkeypatch.context() as patch:
        patch.setenv("MIGRATE_NO_CACHE", "1")
        expected = _report(changed)
    assert _report(changed) == expected

    def always(model: lint.SetModel) -> Iterator[lint.Finding]:
        yield lint.Finding("test-always", "warning", "X y", "phase-1/x.yaml", "m", "f")

    monkeypatch.setitem(lint.RULES, "test-always", lint.RuleInfo("test-always", "", always))
    assert "test-always" in _report(example_render)


# --- images: which tags the engine has, without the SDK ---------------------------------


def test_which_exist_asks_one_inspect_each_without_the_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with engine_socket(monkeypatch) as where:  # a stand-in engine (engine_standin.py)
        stand_in = where.serve(knows({"p/planner:aaa", "registry:5000/p/x:1"}))
        monkeypatch.setattr(engine, "connect", lambda: pytest.fail("the SDK was asked"))
        found = engine.which_exist(["p/planner:aaa", "p/planner:bbb", "registry:5000/p/x:1"])
    assert found == {"p/planner:aaa": True, "p/planner:bbb": False, "registry:5000/p/x:1": True}
    assert sorted(stand_in.targets()) == [
        "/images/p/planner:aaa/json",
        "/images/p/planner:bbb/json",
        "/images/registry:5000/p/x:1/json",
    ]


def test_no_engine_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'nothing.sock'}")
    with pytest.raises(DockerUnavailableError):
        engine.which_exist(["p/planner:aaa"])


def test_a_plan_without_an_engine_says_there_is_none_to_ask(project: Path) -> None:
    plan = api.plan(project)
    images = [c for c in plan.changes if c.action == "images"]
    assert images and all(c.summary.endswith("(no Docker engine to ask)") for c in images)


# --- validation: the object's JSON and YAML read once for every version ------------------


def test_the_key_made_from_the_canonical_text_is_the_same() -> None:
    obj = {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "x"}}
    text = validation._canonical(obj)
    assert text is not None
    assert validation._key("identity", obj, text) == validation._key("identity", obj)
    assert validation._canonical({1: "x"}) is None


@pytest.mark.parametrize("plain", [True, False])
def test_an_object_is_read_back_once_for_all_versions(
    monkeypatch: pytest.MonkeyPatch, plain: bool
) -> None:
    obj: dict[Any, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x", "namespace": "acme"},
        "spec": {"ports": [{"port": 80}]},
    }
    if not plain:  # JSON cannot say it: its YAML text is read back
        obj["metadata"]["labels"] = {1: "one"}
    service = Manifest(phase=1, task="t", component="c", template="k8s/x.j2", obj=obj)
    seen: list[int] = []
    yaml_reads: list[str] = []
    real_errors, real_read_back = validation._core_errors, validation._read_back

    def errors(manifest: Manifest, version: str, read_back: Any = None) -> list[str]:
        seen.append(id(read_back()))
        return list(real_errors(manifest, version, read_back))

    def read_back(manifest: Manifest) -> Any:
        yaml_reads.append(manifest.name)
        return real_read_back(manifest)

    monkeypatch.setattr(validation, "_core_errors", errors)
    monkeypatch.setattr(validation, "_read_back", read_back)
    try:
        report = validation.validate([service], "1.30", cache=cache_module.ResultCache(None))
        assert report.versions
    except validation.ValidationFailed:
        assert not plain  # an int label key is a schema error
    assert len(seen) == 2 and seen[0] == seen[1]  # one read, for both versions
    assert yaml_reads == ([] if plain else ["x"])


def test_a_value_written_reads_back(tmp_path: Path) -> None:
    value = {"a": [1, 2.5, "é", None, True], "b": {"c": "d"}}
    cache_module.save_value(tmp_path, "identity", value)
    assert cache_module.load_value(tmp_path, "identity") == value


def _shape(value: Any) -> Any:
    """The value with every mapping's keys in their order: equal only when the order is."""
    if isinstance(value, dict):
        return [[k, _shape(v)] for k, v in value.items()]
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return [type(value).__name__, value]


def test_the_canonical_json_reads_back_as_the_yaml_text_does(
    example_render: list[PhaseManifests],
) -> None:
    """validate() reads a JSON-typed object back from its canonical JSON instead of its
    YAML text: the same values, types and key order (schema errors name the first)."""
    manifests = [m for p in example_render for m in p.manifests]
    assert len(manifests) > 50
    for manifest in manifests:
        text = validation._canonical(manifest.obj)
        assert text is not None
        assert _shape(json.loads(text)) == _shape(validation._read_back(manifest))
    tricky = Manifest(
        phase=1,
        task="t",
        component="c",
        template="k8s/x.j2",
        obj={
            "b": ["yes", "on", "2024-01-01", "1e3", "0x10", "~", "", " x ", "a: b", "#", "é\u2028"],
            "a": {"z": 1.5, "y": 10**20, "x": True, "w": None, "v": -0.0, "u": "\n\t'\"\\"},
            "long": "word " * 60,
        },
    )
    text = validation._canonical(tricky.obj)
    assert text is not None
    assert _shape(json.loads(text)) == _shape(validation._read_back(tricky))
