"""A drawing of the imports shows no circle (issue 15, item 8), read with grimp.

What counts: an import executed when its module is imported, i.e. one in the
module's body (also under a top-level `if`/`try`/`with`, and in class bodies), not
one inside a function (a lazy import runs when the function does), and not one
under `if TYPE_CHECKING:` (never executed). For the roadmap model every import
counts, lazy ones too: it reaches nothing of `actions/` or `engine/`. The layering
itself is `lint-imports` ([tool.importlinter] in pyproject.toml).
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")  # installed with import-linter (the dev extra)


def _graph(type_checking: bool) -> object:
    return grimp.build_graph(
        "migrate", exclude_type_checking_imports=not type_checking, cache_dir=None
    )


def _eager_lines(tree: ast.Module) -> set[int]:
    """Lines of the imports that run when the module is imported."""
    lines: set[int] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                lines.add(node.lineno)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue  # lazy: runs when called
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        visit([c for c in children if isinstance(c, ast.stmt)])
                        for handler in children:
                            if isinstance(handler, ast.ExceptHandler):
                                visit(handler.body)

    visit(tree.body)
    return lines


def _source(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    return Path(spec.origin)


def eager_edges() -> dict[str, set[str]]:
    graph = _graph(type_checking=False)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:  # type: ignore[attr-defined]
        eager = _eager_lines(ast.parse(_source(module).read_text(encoding="utf-8")))
        for imported in graph.find_modules_directly_imported_by(module):  # type: ignore[attr-defined]
            details = graph.get_import_details(importer=module, imported=imported)  # type: ignore[attr-defined]
            if any(d["line_number"] in eager for d in details):
                edges.setdefault(module, set()).add(imported)
    return edges


def cycles(edges: dict[str, set[str]]) -> Iterator[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def connect(node: str) -> Iterator[list[str]]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                yield from connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                yield sorted(component)

    for node in sorted(edges):
        if node not in index:
            yield from connect(node)


def test_no_module_of_migrate_imports_itself_back_at_import_time() -> None:
    edges = eager_edges()
    assert edges["migrate.project"] >= {"migrate.engine.context", "migrate.config"}  # it reads
    assert list(cycles(edges)) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert list(cycles(edges)) == [["a", "b", "c"]]


def test_the_eager_lines_leave_out_functions_and_type_checking() -> None:
    tree = ast.parse(
        "import a\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import b\n"
        "try:\n    import c\nexcept ImportError:\n    import d\n"
        "def f():\n    import e\n"
        "class K:\n    import g\n"
    )
    assert _eager_lines(tree) == {1, 2, 6, 8, 12}


@pytest.mark.parametrize("type_checking", [False, True])
def test_the_roadmap_model_reaches_nothing_of_actions_or_engine(type_checking: bool) -> None:
    """Counting every import, in functions too (and under TYPE_CHECKING when asked):
    the chain roadmap -> actions.registry -> actions.base -> engine.context -> roadmap
    is gone for good."""
    graph = _graph(type_checking)
    reached = graph.find_upstream_modules("migrate.roadmap")  # type: ignore[attr-defined]
    assert "migrate.checks" in reached  # the check models: it does import things
    assert sorted(m for m in reached if m.startswith(("migrate.actions", "migrate.engine"))) == []
    for module in ("migrate.actions.registry", "migrate.actions.base", "migrate.engine.context"):
        chain = graph.find_shortest_chain(importer=module, imported="migrate.roadmap")  # type: ignore[attr-defined]
        back = graph.find_shortest_chain(importer="migrate.roadmap", imported=module)  # type: ignore[attr-defined]
        assert chain is None or back is None, (chain, back)
