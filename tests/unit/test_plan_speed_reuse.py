"""What one `plan` process does once instead of several times (issue 14), and never with a
stale answer: a build context assembled once per context (migrate.images.context), a
roadmap value's `{{ a.b }}` filled in without Jinja (migrate.engine.context), the verbs'
result types imported when asked for (migrate.api)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrate.engine import context as context_module
from migrate.images import context as contexts
from migrate.project import open_context
from tests.conftest import write
from tests.unit.runtime_copy import runtime_copy_fixture  # noqa: F401  (fixtures)


def _fresh(project: Path, plugin: str) -> contexts.BuildContext:
    ctx = open_context(project)
    return contexts.assemble(ctx, ctx.inventory.plugin(plugin))


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    real = contexts._assemble

    def counted(ctx: Any, plugin: Any) -> contexts.BuildContext:
        made.append(plugin.name)
        return real(ctx, plugin)

    monkeypatch.setattr(contexts, "_assemble", counted)
    return made


# --- one assembly per context ---------------------------------------------------------


def test_a_context_is_assembled_once_per_plugin(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _counting(monkeypatch)
    ctx = open_context(project)
    planner = ctx.inventory.plugin("planner")
    first = contexts.assemble(ctx, planner)
    assert contexts.assemble(ctx, planner) is first
    assert made == ["planner"]
    assert contexts.assemble_orchestrator(ctx) is contexts.assemble_orchestrator(ctx)
    assert open_context(project) is not ctx  # another context assembles again
    _fresh(project, "planner")
    assert made == ["planner", "planner"]


@pytest.mark.parametrize("change", ["edit", "add", "remove", "mode"])
def test_a_changed_plugin_file_is_assembled_again(
    project: Path, example_app: Path, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = open_context(project)
    planner = ctx.inventory.plugin("planner")
    before = contexts.assemble(ctx, planner)
    source = example_app / "plugins" / "planner" / "planner.py"
    if change == "edit":  # same size, same mtime: the ctime still tells
        stat = source.stat()
        code = "def handle(payload):\n    return payload\n"
        source.write_text(code + "#" * (stat.st_size - len(code) - 1) + "\n")
        assert source.stat().st_size == stat.st_size
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    elif change == "add":
        write(example_app / "plugins" / "planner" / "extra" / "more.py", "X = 1\n")
    elif change == "remove":
        write(example_app / "plugins" / "planner" / "gone.py", "X = 1\n")
        before = contexts.assemble(ctx, planner)
        (example_app / "plugins" / "planner" / "gone.py").unlink()
    else:
        source.chmod(0o755)
    after = contexts.assemble(ctx, planner)
    assert after.digest != before.digest
    assert after == contexts._assemble(ctx, planner) == _fresh(project, "planner")


def test_a_runtime_change_is_assembled_again(project: Path, runtime_copy: Path) -> None:
    ctx = open_context(project)
    planner = ctx.inventory.plugin("planner")
    before = (contexts.assemble(ctx, planner), contexts.assemble_orchestrator(ctx))
    write(runtime_copy / "bus" / "extra.py", "X = 1\n")
    after = (contexts.assemble(ctx, planner), contexts.assemble_orchestrator(ctx))
    assert all(a.digest != b.digest for a, b in zip(after, before, strict=True))
    assert "runtime/migrate_runtime/bus/extra.py" in after[1].paths


def test_an_edited_project_template_is_used(project: Path) -> None:
    override = write(project / "templates" / "docker" / ".dockerignore", "*.md\n# mine\n")
    ctx = open_context(project)
    planner = ctx.inventory.plugin("planner")
    mine = contexts.assemble(ctx, planner)
    assert "# mine" in next(f.data.decode() for f in mine.files if f.path == ".dockerignore")
    override.write_text("*.md\n# mine, edited\n")
    edited = contexts.assemble(ctx, planner)
    assert edited.digest != mine.digest
    assert edited == contexts._assemble(ctx, planner) == _fresh(project, "planner")
    # a template added where none was: the context assembles again (what its templates
    # then find is theirs to say: the same as assembling with nothing kept)
    write(project / "templates" / "docker" / "Dockerfile.j2", "FROM scratch\n")
    assert contexts.assemble(ctx, planner) == contexts._assemble(ctx, planner)


def test_a_plugin_with_a_symbolic_link_is_never_kept(
    project: Path, example_app: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_dir = example_app / "plugins" / "planner"
    (plugin_dir / "link.txt").symlink_to(plugin_dir / "planner.py")
    made = _counting(monkeypatch)
    ctx = open_context(project)
    planner = ctx.inventory.plugin("planner")
    first = contexts.assemble(ctx, planner)
    assert contexts.assemble(ctx, planner) == first
    assert made == ["planner", "planner"]  # assembled each time: the link's target is not seen


def test_an_equal_plugin_gets_a_context_naming_it(project: Path) -> None:
    from dataclasses import replace

    ctx = open_context(project)
    planner = ctx.inventory.plugin("planner")
    contexts.assemble(ctx, planner)
    twin = replace(planner)
    assert contexts.assemble(ctx, twin).plugin is twin


def test_a_failure_is_not_kept(project: Path, example_app: Path) -> None:
    from migrate.images.errors import PluginImageError

    ctx = open_context(project)
    planner = ctx.inventory.plugin("planner")
    source = example_app / "plugins" / "planner" / "planner.py"
    text = source.read_text()
    source.write_text("def other(payload): return payload\n")
    with pytest.raises(PluginImageError):
        contexts.assemble(ctx, planner)
    source.write_text(text)
    assert contexts.assemble(ctx, planner) == _fresh(project, "planner")


# --- `{{ a.b }}` without Jinja --------------------------------------------------------


def _by_jinja(ctx: context_module.Context, value: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr(context_module, "_substituted", lambda value, variables: None)
        try:
            return ctx.expand(value)
        except Exception as exc:
            return f"error: {type(exc).__name__}: {exc}"


def _by_us(ctx: context_module.Context, value: Any) -> Any:
    try:
        return ctx.expand(value)
    except Exception as exc:
        return f"error: {type(exc).__name__}: {exc}"


VALUES = [
    "{{ target.namespace }}",
    "{{target.namespace}}",
    "{{  project }}-plugins",
    "kubectl get x -n {{ target.namespace }} -l a=b",
    "{{ target.schema }}._migrate_files",
    "{{ target.registry }}",  # None renders as nothing
    "{{ target.orchestrator_url }}/readyz",
    "{{ target.plugin_url.summarizer }}",  # a Mapping, not a dict: Jinja decides
    "{{ target.nothing }}",  # undefined: Jinja's error
    "{{ nothing }}",
    "{{ true }}",
    "{{ none }}",
    "{{ project | upper }}",
    "{{ project ~ 'x' }}",
    "{{- project }}",
    "{{ project -}} x",
    "{{{ project }}",
    "{{ project }}}",
    "{% if true %}x{% endif %} {{ project }}",
    "{# note #}{{ project }}",
    "line\n{{ project }}\n",
    "a\r\n{{ project }}",
    "{{ project }}{{ target.namespace }}",
    "{{ project }} }} {",
    "{{ source.path }}",
    "{{ target.kubernetes_version }}",
    "{{ target.namespace",
    "{{ 'text' }}",
    "{{ project.upper }}",
    "{{ project . upper }}",
    "{{ project\n}}",
    "{{ é }}",
]


@pytest.mark.parametrize("value", VALUES)
def test_a_value_expands_as_jinja_expands_it(
    project: Path, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = open_context(project)
    assert _by_us(ctx, value) == _by_jinja(ctx, value, monkeypatch)


def test_nested_values_expand_as_jinja_expands_them(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = open_context(project)
    value = {"a": ["{{ project }}", {"b": "{{ target.namespace }}-x"}, 3, None], "c": "plain"}
    assert _by_us(ctx, value) == _by_jinja(ctx, value, monkeypatch)


_PIECES = st.sampled_from(
    [
        "{{ project }}",
        "{{target.namespace}}",
        "{{ target.registry }}",
        "{{ nope }}",
        "{{",
        "}}",
        "{%",
        "{#",
        "#}",
        "{",
        "}",
        "-",
        " ",
        "\n",
        "\r",
        "x",
        ".",
        "project",
        "target.namespace",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=8).map("".join))
def test_any_value_expands_as_jinja_expands_it(value: str) -> None:
    ctx = _HYPOTHESIS_CTX
    real = context_module._substituted
    try:
        setattr(context_module, "_substituted", lambda value, variables: None)  # noqa: B010
        try:
            expected: Any = ctx.expand(value)
        except Exception as exc:
            expected = f"error: {type(exc).__name__}"
    finally:
        setattr(context_module, "_substituted", real)  # noqa: B010
    try:
        found: Any = ctx.expand(value)
    except Exception as exc:
        found = f"error: {type(exc).__name__}"
    assert found == expected


_HYPOTHESIS_CTX: Any = None


@pytest.fixture(autouse=True)
def _hypothesis_ctx(shared_project: Path) -> None:
    global _HYPOTHESIS_CTX
    if _HYPOTHESIS_CTX is None:
        _HYPOTHESIS_CTX = open_context(shared_project)


# --- imports --------------------------------------------------------------------------


def test_the_api_names_its_result_types_without_importing_them_first() -> None:
    code = (
        "import sys, migrate.api as api\n"
        "lazy = ['migrate.engine.run', 'migrate.engine.status', 'migrate.verify.verbs', "
        "'migrate.scaffold']\n"
        "assert not [m for m in lazy if m in sys.modules], [m for m in lazy if m in sys.modules]\n"
        "from migrate.engine.run import ApplyResult, Confirm\n"
        "from migrate.engine.status import PhaseStatus, Status, TaskStatus\n"
        "from migrate.scaffold import InitResult\n"
        "from migrate.verify.verbs import CiResult\n"
        "assert (api.ApplyResult, api.Confirm, api.PhaseStatus, api.Status, api.TaskStatus, "
        "api.InitResult, api.CiResult) == (ApplyResult, Confirm, PhaseStatus, Status, "
        "TaskStatus, InitResult, CiResult)\n"
        "try:\n    api.Nothing\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit(1)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
