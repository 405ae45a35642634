"""Build contexts (DESIGN 3.7): what goes in, what never does, and a stable content hash."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path, PurePosixPath

import pytest

from migrate.images import context as contexts
from migrate.images.builder import plan_targets
from migrate.images.context import ContextFile, assemble, digest, is_excluded
from migrate.images.errors import PluginImageError
from migrate.project import open_context
from tests.conftest import write


def _contexts(project: Path) -> dict[str, contexts.BuildContext]:
    ctx = open_context(project)
    return {p.name: assemble(ctx, p) for p in ctx.inventory.plugins}


def test_hash_is_stable_across_runs(project: Path) -> None:
    first = {name: c.digest for name, c in _contexts(project).items()}
    second = {name: c.digest for name, c in _contexts(project).items()}
    assert first == second
    assert len(set(first.values())) == len(first)  # one context per plugin
    for built in _contexts(project).values():
        assert len(built.short_hash) == 12 and built.digest.startswith(built.short_hash)


def test_hash_does_not_depend_on_file_order_or_times(tmp_path: Path, example_app: Path) -> None:
    from migrate import api

    # a second copy of the app, its files written in reverse order, at other times
    other = tmp_path / "other-app"
    for source in sorted(example_app.rglob("*"), reverse=True):
        target = other / source.relative_to(example_app)
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    one, two = tmp_path / "one", tmp_path / "two"
    api.init(one, example_app, name="same")
    api.init(two, other, name="same")
    assert {n: c.digest for n, c in _contexts(one).items()} == {
        n: c.digest for n, c in _contexts(two).items()
    }
    files = list(_contexts(one)["planner"].files)
    assert digest(files) == digest(reversed(files))


def test_hash_changes_when_a_file_changes(project: Path, example_app: Path) -> None:
    before = {n: c.digest for n, c in _contexts(project).items()}
    planner = example_app / "plugins" / "planner" / "planner.py"
    planner.write_text(planner.read_text() + "\n# touched\n")
    after = {n: c.digest for n, c in _contexts(project).items()}
    assert after["planner"] != before["planner"]
    assert {n: d for n, d in after.items() if n != "planner"} == {
        n: d for n, d in before.items() if n != "planner"
    }
    (example_app / "plugins" / "planner" / "extra.py").write_text("X = 1\n")
    assert _contexts(project)["planner"].digest not in (before["planner"], after["planner"])


def test_secrets_and_junk_never_enter_a_context(project: Path, example_app: Path) -> None:
    before = _contexts(project)["notifier"]
    plugin = example_app / "plugins" / "notifier"
    planted = [
        ".env",
        ".env.production",
        "prod.env",
        "server.pem",
        "deploy.key",
        "id_rsa",
        ".git/config",
        "__pycache__/plugin.cpython-311.pyc",
        "sub/.env",
        "sub/__pycache__/x.pyc",
        ".venv/bin/python",
    ]
    for name in planted:
        write(plugin / name, "SECRET=hunter2\n")
    after = _contexts(project)["notifier"]
    assert after.digest == before.digest  # planting secrets changes nothing
    for path in after.paths:
        assert not any(path == f"plugin/{name}" for name in planted), path
    with tarfile.open(fileobj=io.BytesIO(after.tar())) as tar:
        names = tar.getnames()
        for member in tar.getmembers():
            if member.isfile():
                data = tar.extractfile(member)
                assert data is not None and b"hunter2" not in data.read(), member.name
    assert "plugin/plugin.py" in names and "Dockerfile" in names


def test_a_project_dockerignore_adds_patterns(project: Path, example_app: Path) -> None:
    write(example_app / "plugins" / "planner" / "notes" / "draft.md", "draft\n")
    assert "plugin/notes/draft.md" in _contexts(project)["planner"].paths
    packaged = (Path(__file__).resolve().parents[2] / "templates/docker/.dockerignore").read_text()
    write(project / "templates" / "docker" / ".dockerignore", packaged + "notes\n")
    assert "plugin/notes/draft.md" not in _contexts(project)["planner"].paths


def test_is_excluded_matches_components_and_paths() -> None:
    assert is_excluded(PurePosixPath("a/b/.env"), [])
    assert is_excluded(PurePosixPath("certs/tls.pem"), [])
    assert is_excluded(PurePosixPath("docs/x.md"), ["docs/*.md"])
    assert not is_excluded(PurePosixPath("docs/x.md"), ["*.txt"])
    assert not is_excluded(PurePosixPath("environment.py"), [])


def test_context_layout_and_dockerfile(project: Path) -> None:
    built = _contexts(project)["summarizer"]
    assert {"Dockerfile", ".dockerignore", "requirements.txt"} <= set(built.paths)
    assert "runtime/migrate_runtime/host.py" in built.paths
    assert "runtime/migrate_runtime/__main__.py" in built.paths
    assert "runtime/migrate_runtime/bus/base.py" in built.paths  # subpackages too
    assert not any(p.endswith(".txt") for p in built.paths if p.startswith("runtime/"))
    assert "plugin/summarizer.py" in built.paths
    # the runtime's pins, then plugin.yaml + requirements.txt, each once: one resolution
    runtime = tuple(contexts.runtime_requirements())
    assert built.requirements == (*runtime, "python-slugify>=8")
    assert "prometheus-client" in " ".join(runtime) and "redis" in " ".join(runtime)
    assert built.role == "service"
    dockerfile = built.dockerfile
    assert dockerfile.startswith("#") and "\nFROM python:3.11-slim\n" in dockerfile
    assert "USER 10001:10001" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "curl" not in dockerfile
    assert "--no-index --find-links" in dockerfile
    assert 'io.migrate.plugin="summarizer"' in dockerfile
    assert 'MIGRATE_PLUGIN_VERSION="3.0.1"' in dockerfile  # plugin.yaml's version
    planner = _contexts(project)["planner"]
    assert planner.requirements == runtime  # no requirements of its own: the runtime's
    assert "--no-index --find-links" in planner.dockerfile


def test_tar_is_reproducible_and_carries_the_wheels(project: Path, tmp_path: Path) -> None:
    built = _contexts(project)["summarizer"]
    assert built.tar() == built.tar()
    wheel = tmp_path / "python_slugify-8.0.4-py2.py3-none-any.whl"
    wheel.write_bytes(b"not really a wheel")
    with tarfile.open(fileobj=io.BytesIO(built.tar([wheel]))) as tar:
        member = tar.getmember(f"wheels/{wheel.name}")
        assert member.mtime == 0 and member.uid == 0 and member.mode == 0o644
        assert tar.getmember("plugin").isdir()


def test_missing_entrypoint_module_is_a_clear_error(project: Path, example_app: Path) -> None:
    write(example_app / "plugins" / "broken" / "plugin.yaml", "entrypoint: nowhere:handle\n")
    write(example_app / "plugins" / "broken" / "other.py", "def handle(p): return p\n")
    ctx = open_context(project)
    with pytest.raises(
        PluginImageError,
        match=r"plugin broken: entrypoint nowhere:handle: no "
        r"module 'nowhere'",
    ) as caught:
        assemble(ctx, ctx.inventory.plugin("broken"))
    assert caught.value.hint and "plugin.yaml" in caught.value.hint
    [target] = [t for t in plan_targets(ctx, ctx.inventory.plugins) if t.plugin.name == "broken"]
    assert target.error is not None and target.context is None


def test_missing_entrypoint_function_is_a_clear_error(project: Path, example_app: Path) -> None:
    write(example_app / "plugins" / "nofunc" / "plugin.py", "def other(p):\n    return p\n")
    ctx = open_context(project)
    with pytest.raises(PluginImageError, match="defines no 'handle'"):
        assemble(ctx, ctx.inventory.plugin("nofunc"))


def test_executable_bit_is_part_of_the_hash() -> None:
    plain = [ContextFile("plugin/run.sh", b"echo\n")]
    executable = [ContextFile("plugin/run.sh", b"echo\n", executable=True)]
    assert digest(plain) != digest(executable)


def test_context_does_not_touch_the_plugin_directory(project: Path, example_app: Path) -> None:
    before = sorted(p.relative_to(example_app) for p in example_app.rglob("*"))
    _contexts(project)
    assert sorted(p.relative_to(example_app) for p in example_app.rglob("*")) == before
