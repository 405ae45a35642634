"""The cache of `plan` (migrate.state.cache): it saves time and never changes an answer.

Validation answers are kept by the sha256 of the object and of the schema's identity;
a missing, stale or corrupt cache, or one that cannot be written, means the objects are
checked again, with the same result as without any cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from migrate import api
from migrate.manifests import validate as validation
from migrate.manifests.model import Manifest, dump
from migrate.manifests.render import render_project
from migrate.manifests.validate import ValidationFailed, is_core, validate
from migrate.project import open_context
from migrate.state import cache as cache_module
from migrate.state.cache import FILENAME, ResultCache, default_dir, jinja_bytecode_cache

NEWEST = ".".join(kubernetes_validate.latest_version().split(".")[:2])


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv("MIGRATE_CACHE_DIR", str(directory))
    monkeypatch.delenv("MIGRATE_NO_CACHE", raising=False)
    return directory


def _manifest(obj: dict[str, Any]) -> Manifest:
    return Manifest(phase=2, task="t", component="c", template="k8s/x.j2", obj=obj)


GOOD_SERVICE = _manifest(
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "planner", "namespace": "acme"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "planner"}},
    }
)
BAD_SERVICE = _manifest(
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "writer", "namespace": "acme"},
        "spec": {"ports": [{"port": "eighty"}], "sessionAfinity": "None"},
    }
)
GOOD_SCALER = _manifest(
    {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "planner", "namespace": "acme"},
        "spec": {
            "scaleTargetRef": {"name": "planner"},
            "triggers": [{"type": "cpu", "metadata": {"value": "50"}}],
        },
    }
)
BAD_SCALER = _manifest(
    {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "writer", "namespace": "acme"},
        "spec": {"scaleTargetRef": {"name": "writer"}, "triggers": [], "maxReplicas": 3},
    }
)
MIXED = [GOOD_SERVICE, BAD_SERVICE, GOOD_SCALER, BAD_SCALER]


def _outcome(manifests: list[Manifest], cache: ResultCache) -> str:
    """What validation says: the rendered error, or the report."""
    try:
        report = validate(manifests, "1.30", cache=cache)
    except ValidationFailed as exc:
        return exc.render()
    return json.dumps(report.to_dict(), sort_keys=True)


def _uncached(manifests: list[Manifest]) -> str:
    return _outcome(manifests, ResultCache(None))


def test_answers_are_kept_and_then_used_instead_of_validating(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _uncached(MIXED)
    assert "sessionAfinity" in expected or "eighty" in expected
    assert "maxReplicas" in expected and "ScaledObject acme/writer" in expected

    assert _outcome(MIXED, ResultCache(cache_dir)) == expected
    stored = json.loads((cache_dir / FILENAME).read_text())
    assert len(stored["entries"]) == 6  # 2 core objects x 2 versions + 2 custom resources

    def refuse(*args: object) -> list[str]:
        raise AssertionError("validated again although the answer is cached")

    monkeypatch.setattr(validation, "_core_errors", refuse)
    monkeypatch.setattr(validation, "_crd_errors", refuse)
    assert _outcome(MIXED, ResultCache(cache_dir)) == expected


def test_a_changed_object_is_validated_again(cache_dir: Path) -> None:
    assert _outcome([GOOD_SERVICE], ResultCache(cache_dir)).startswith("{")
    broken = _manifest({**GOOD_SERVICE.obj, "spec": {"ports": [{"port": "eighty"}]}})
    assert "eighty" in _outcome([broken], ResultCache(cache_dir))


def _fill(cache_dir: Path) -> Path:
    _outcome(MIXED, ResultCache(cache_dir))
    path = cache_dir / FILENAME
    assert path.is_file()
    return path


def _rewrite(path: Path, change: Callable[[dict[str, Any]], None], *, checksum: bool) -> None:
    document = json.loads(path.read_text())
    document.pop("sha256")
    change(document)
    if checksum:
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        document["sha256"] = hashlib.sha256(text.encode()).hexdigest()
    path.write_text(json.dumps(document))


def _every_answer_says_ok(document: dict[str, Any]) -> None:
    document["entries"] = {key: [] for key in document["entries"]}


def _wrong_shapes(document: dict[str, Any]) -> None:
    shapes: list[Any] = ["ok", None, [1, 2], {"errors": []}, 0, [None]]
    keys = list(document["entries"])
    document["entries"] = {key: shapes[i % len(shapes)] for i, key in enumerate(keys)}


def _replace_with_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


CORRUPTIONS: dict[str, Callable[[Path], None]] = {
    "missing": lambda path: path.unlink(),
    "empty": lambda path: path.write_bytes(b""),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "garbage": lambda path: path.write_bytes(os.urandom(2048)),
    "not UTF-8": lambda path: path.write_bytes(b'{"format": 1, "entries": {"\xff": []}}'),
    "a JSON list": lambda path: path.write_text("[1, 2, 3]"),
    "another format": lambda path: _rewrite(path, lambda d: d.update(format=99), checksum=True),
    "answers changed by hand": lambda path: _rewrite(path, _every_answer_says_ok, checksum=False),
    "answers of the wrong shape": lambda path: _rewrite(path, _wrong_shapes, checksum=True),
    "entries not a mapping": lambda path: _rewrite(
        path, lambda d: d.update(entries=["x"]), checksum=True
    ),
    "a directory in its place": lambda path: _replace_with_directory(path),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupt_cache_does_not_change_the_result(cache_dir: Path, corruption: str) -> None:
    expected = _uncached(MIXED)
    CORRUPTIONS[corruption](_fill(cache_dir))
    assert _outcome(MIXED, ResultCache(cache_dir)) == expected
    # and it is whole again afterwards (unless a directory stands where the file goes)
    if corruption != "a directory in its place":
        assert _outcome(MIXED, ResultCache(cache_dir)) == expected
        assert len(json.loads((cache_dir / FILENAME).read_text())["entries"]) == 6


def test_stale_answers_of_another_schema_are_not_used(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answers kept for another Kubernetes version, library or CRD file (another
    identity) are never taken for this one's, even when they say "ok"."""
    expected = _uncached(MIXED)
    with monkeypatch.context() as patch:
        patch.setattr(validation, "_core_identity", lambda version: f"core|old-library|{version}")
        patch.setattr(validation, "_crd_identity", lambda *args: "crd|old-file-sha256")
        patch.setattr(validation, "_core_errors", lambda *args: [])
        patch.setattr(validation, "_crd_errors", lambda *args: [])
        assert _outcome(MIXED, ResultCache(cache_dir)).startswith("{")  # all "ok"
    assert len(json.loads((cache_dir / FILENAME).read_text())["entries"]) == 6
    assert _outcome(MIXED, ResultCache(cache_dir)) == expected


def test_the_identity_names_the_schema_versions_and_the_crd_file() -> None:
    core = validation._core_identity("1.30")
    assert "kubernetes=1.30" in core
    assert f"kubernetes-validate={kubernetes_validate.__version__}" in core
    vendored = validation.VENDORED_CRDS[("keda.sh", "ScaledObject")]
    data = files("migrate.manifests").joinpath(vendored.file).read_bytes()
    crd = validation._crd_identity("keda.sh", "ScaledObject", "v1alpha1")
    assert hashlib.sha256(data).hexdigest() in crd and "v1alpha1" in crd


def test_a_cache_that_cannot_be_written_does_not_change_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    unwritable = blocker / "cache"  # mkdir fails, as in a read-only directory (even as root)
    monkeypatch.setenv("MIGRATE_CACHE_DIR", str(unwritable))
    validation._crd_validator.cache_clear()  # so that it tries to keep the CRD's schema
    expected = _uncached(MIXED)
    assert _outcome(MIXED, ResultCache(unwritable)) == expected
    assert _outcome(MIXED, ResultCache(default_dir())) == expected
    assert not unwritable.exists()


def test_an_object_json_cannot_say_exactly_is_validated_every_time(cache_dir: Path) -> None:
    odd = _manifest({**GOOD_SERVICE.obj, "metadata": {"name": "x", "labels": {1: "a"}}})
    assert validation._key("identity", odd.obj) is None
    _outcome([odd], ResultCache(cache_dir))
    path = cache_dir / FILENAME
    assert not path.exists() or json.loads(path.read_text())["entries"] == {}


def test_no_cache_when_turned_off(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATE_NO_CACHE", "1")
    assert default_dir() is None and jinja_bytecode_cache("templates") is None
    _outcome(MIXED, ResultCache(default_dir()))
    assert not cache_dir.exists()


def test_the_default_place_is_the_user_cache_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIGRATE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_dir() == tmp_path / "xdg" / "migrate"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_dir() == tmp_path / "home" / ".cache" / "migrate"


def test_the_oldest_entries_go_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "MAX_ENTRIES", 3)
    results = ResultCache(tmp_path)
    for n in range(5):
        results.put(f"k{n}", [str(n)])
    results.save()
    again = ResultCache(tmp_path)
    assert [again.get(f"k{n}") for n in range(5)] == [None, None, ["2"], ["3"], ["4"]]


def test_a_cached_crd_schema_is_the_one_read_from_the_yaml(cache_dir: Path) -> None:
    group, kind, version = "keda.sh", "ScaledObject", "v1alpha1"
    validation._crd_validator.cache_clear()
    expected = _uncached([GOOD_SCALER, BAD_SCALER])
    identity = validation._crd_identity(group, kind, version)
    assert cache_module.load_value(cache_dir, identity) == validation._crd_schema(
        group, kind, version
    )
    for value_file in cache_dir.glob("value-*.json"):
        value_file.write_bytes(value_file.read_bytes()[:100])  # truncated
    validation._crd_validator.cache_clear()
    assert _outcome([GOOD_SCALER, BAD_SCALER], ResultCache(None)) == expected
    validation._crd_validator.cache_clear()


def test_the_schema_versions_are_the_librarys() -> None:
    """Read from the directory (a cache hit imports no library): the same versions, and the
    same newest, as kubernetes-validate's own all_versions() (which lists each twice)."""
    from packaging.version import Version

    versions = kubernetes_validate.utils.all_versions()
    assert validation._schema_versions() == tuple(sorted(set(versions), key=Version))
    assert validation._schema_versions()[-1] == kubernetes_validate.latest_version()


def _library_errors(manifest: Manifest, version: str) -> list[str]:
    """kubernetes-validate's own answer, as validate() words it."""
    data = yaml.safe_load(dump(manifest.obj))
    try:
        kubernetes_validate.validate(data, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
        return [f"{where}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [str(exc.message)]
    return []


def test_the_core_validator_answers_as_kubernetes_validate(project: Path) -> None:
    """migrate builds each kind's validator once (the library rereads 1.8 MB of
    definitions for every object): the answers are the library's, good and bad."""
    rendered = [m for p in render_project(open_context(project)) for m in p.manifests]
    core = [m for m in rendered if is_core(m)]
    assert len(core) > 50
    broken = [
        BAD_SERVICE,
        _manifest({"apiVersion": "apps/v1", "kind": "Deploymnet", "metadata": {"name": "x"}}),
        _manifest({**core[0].obj, "unknownTopLevel": 1}),
        _manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 5}}),
    ]
    for version in ("1.30", NEWEST):
        for manifest in [*core, *broken]:
            assert validation._core_errors(manifest, version) == _library_errors(
                manifest, version
            ), manifest.ref
        assert all(validation._core_errors(m, version) for m in broken)


def _plan(project: Path) -> dict[str, Any]:
    return api.plan(project).to_dict()


def test_plan_is_the_same_without_cache_cold_warm_and_corrupt(
    project: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setenv("MIGRATE_NO_CACHE", "1")
        expected = _plan(project)
    assert not cache_dir.exists()
    assert _plan(project) == expected  # cold: fills the cache
    assert (cache_dir / FILENAME).is_file() and list(cache_dir.glob("jinja-templates/*"))
    assert _plan(project) == expected  # warm
    for path in cache_dir.rglob("*"):
        if path.is_file():
            path.write_bytes(os.urandom(64))
    assert _plan(project) == expected  # everything garbled
    assert not (project / ".migrate").exists()  # plan leaves no trace in the project


def test_plan_with_a_cache_that_cannot_be_written(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setenv("MIGRATE_NO_CACHE", "1")
        expected = _plan(project)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MIGRATE_CACHE_DIR", str(blocker / "cache"))
    validation._crd_validator.cache_clear()
    assert _plan(project) == expected
