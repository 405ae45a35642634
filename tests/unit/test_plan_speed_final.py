"""A warm plan (issue 14) keys the whole-set checks' report by the render memo when the
whole set came from it, and prints its table without Rich when Rich would write the
text as it reads; neither ever changes what a plan says or prints."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.markup import escape as rich_escape

from migrate import api
from migrate.cli.output import PIPE_WIDTH, _plain_text, escape
from migrate.manifests import lint
from migrate.project import open_context
from migrate.state.cache import ResultCache, default_dir
from tests.unit.plan_speed import cache_dir_fixture  # noqa: F401  (autouse)


def _fresh(phases: list[lint.PhaseManifests]) -> dict[str, object]:
    return lint._check(list(phases), []).to_dict()


# --- the lint report under the memo's identity --------------------------------------------


def test_a_set_served_whole_by_the_memo_is_keyed_by_it_and_checked_the_same(
    project: Path,
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MIGRATE_NO_CACHE", "1")
        cold = lint.rendered_set(open_context(project))  # rendered now, no memo
    assert cold.memo_identity is None
    api.plan(project)  # keeps every render in the memo
    warm = lint.rendered_set(open_context(project))
    assert warm.memo_identity is not None
    assert [p.manifests for p in warm] == [p.manifests for p in cold]
    key = lint._memo_key(list(warm), [], warm.memo_identity)
    assert key is not None and key.startswith("lint|memo|")
    report = lint.check(warm)
    assert report.to_dict() == _fresh(cold)
    assert ResultCache(default_dir()).get(key) == report.to_dict()  # kept under that key
    again = lint.check(lint.rendered_set(open_context(project)))
    assert again.to_dict() == report.to_dict()


def test_a_cached_report_under_the_memo_key_answers_and_a_change_voids_it(
    project: Path,
) -> None:
    api.plan(project)
    warm = lint.rendered_set(open_context(project))
    key = lint._memo_key(list(warm), [], warm.memo_identity)
    assert key is not None
    cache = ResultCache(default_dir())
    planted = {"errors": 0, "warnings": 0, "rules": ["planted"], "skipped": [], "findings": []}
    cache.put(key, planted)
    cache.save()
    assert lint.check(warm).rules == ["planted"]  # the key is what answers
    # any change to what renders gives another memo identity, so another key
    (project / "notes.txt").write_text("a file of the project\n")
    api.plan(project)  # renders again, keeps the renders under the new identity
    after = lint.rendered_set(open_context(project))
    assert after.memo_identity not in (None, warm.memo_identity)
    assert lint.check(after).to_dict() == _fresh(after)


def test_a_render_not_served_by_the_memo_keys_the_set_by_content(project: Path) -> None:
    api.plan(project)
    ctx = open_context(project)
    lint.rendered_set(ctx)  # served
    done = ctx.__dict__["_manifests_rendered"]
    first = next(iter(done))
    done[first] = dataclasses.replace(done[first])  # equal, but not the memo's object
    again = lint.rendered_set(ctx)
    assert again.memo_identity is None
    key = lint._memo_key(list(again), [], again.memo_identity)
    assert key is not None and not key.startswith("lint|memo|")


def test_each_save_of_the_memo_gives_a_new_token(project: Path) -> None:
    from migrate.manifests.render_memo import render_memo

    api.plan(project)
    ctx = open_context(project)
    served = lint.rendered_set(ctx)
    memo = render_memo(ctx)
    tasks = [t for p in served for t in p.tasks]
    assert served.memo_identity is not None
    assert memo.set_identity(tasks) == served.memo_identity
    memo.keep("a-value", "x")
    assert memo.set_identity(tasks) is None  # not saved yet
    memo.save()
    after = memo.set_identity(tasks)
    assert after not in (None, served.memo_identity)
    assert lint.rendered_set(open_context(project)).memo_identity == after


def test_a_plan_kept_by_the_memo_in_its_first_run_names_the_set_then(project: Path) -> None:
    """A plan that renders every task keeps them in the memo: its set is named by the
    memo already, so the next plan's report is the one it kept."""
    api.plan(project)  # renders every task, keeps them, checks the set
    ctx = open_context(project)
    warm = lint.rendered_set(ctx)
    assert warm.memo_identity is not None
    key = lint._memo_key(list(warm), [], warm.memo_identity)
    assert ResultCache(default_dir()).get(key) == _fresh(warm)


def test_a_plan_says_the_same_with_and_without_the_cache(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def outcome() -> str:
        return json.dumps(api.plan(project).to_dict(), sort_keys=True, default=str)

    with monkeypatch.context() as patch:
        patch.setenv("MIGRATE_NO_CACHE", "1")
        expected = outcome()
    assert outcome() == expected  # cold
    assert outcome() == expected  # warm: the set from the memo, the report by its key
    assert api.plan(project, 2).to_dict() == _no_cache_plan(project, 2, monkeypatch)


def _no_cache_plan(project: Path, phase: int, monkeypatch: pytest.MonkeyPatch) -> object:
    with monkeypatch.context() as patch:
        patch.setenv("MIGRATE_NO_CACHE", "1")
        return api.plan(project, phase).to_dict()


# --- printing without Rich ----------------------------------------------------------------

_TEXTS = [
    "plain",
    "",
    "\n[bold]Phase 1: x[/] [dim](2 weeks)[/] [green]done[/]",
    "k8s:phase-2/workloads: 20 objects",
    "a :smile: b",
    "a :SMILE: b",
    ":thumbs_up-emoji: x",
    ":not_an_emoji_name: x",
    "x:y:z: :a:smile:",
    "[dim]x:[/]smile: tail",
    "ports [5432] and [a-b] and [/x]",
    "back\\slash \\ and \\[",
    "ends with a backslash \\",
    "ends with two \\\\",
    "tab\there",
    "café",
    "carriage\rreturn",
    "[#ff0000]red[/]",
    "[link=https://example.com]x[/link]",
    "[@click]x[/]",
    "[/]",
    "[bold]unclosed",
    "[bold]a[/] [red]b[/red]",
    "x" * (PIPE_WIDTH + 5),
]


@pytest.mark.parametrize("raw", _TEXTS)
def test_escape_is_riches(raw: str) -> None:
    assert escape(raw) == rich_escape(raw)


def _rich(markup: str) -> str:
    buffer = io.StringIO()
    Console(file=buffer, highlight=False, width=PIPE_WIDTH).print(markup)
    return buffer.getvalue()


@pytest.mark.parametrize("raw", _TEXTS)
def test_plain_text_is_what_rich_writes_or_none(raw: str) -> None:
    for markup in (raw, escape(raw), f"  [yellow]{escape(raw)}[/]: [dim]{escape(raw)}[/]"):
        text = _plain_text(markup)
        if text is not None:
            assert text + "\n" == _rich(markup), markup


def test_plain_text_leaves_to_rich_what_it_would_change() -> None:
    assert _plain_text("a :smile: b") is None  # an emoji
    assert _plain_text("tab\there") is None
    assert _plain_text("café") is None
    assert _plain_text("x" * PIPE_WIDTH) is None  # Rich would wrap it
    assert _plain_text("[/]") is None  # Rich refuses it
    assert _plain_text("[bold]a[/] [red]b[/red]") is None
    assert _plain_text("[bold]Plan:[/] \\[x] k8s:phase-1/a: b") == "Plan: [x] k8s:phase-1/a: b"


#: runs `migrate plan` twice in one process (the second is warm) and says which modules
#: the process imported, after the plans' output
_SCRIPT = """
import json, sys
from migrate.cli.app import app
for _ in range(2):
    try:
        app(sys.argv[1:], prog_name="migrate")
    except SystemExit as exc:
        if exc.code not in (0, 1, None):
            raise
print("MODULES " + json.dumps(sorted(sys.modules)))
"""


def _run_plan(project: Path, *args: str, **env: str) -> tuple[str, list[str]]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYDANTIC", "FORCE_COLOR", "TTY_", "JUPYTER_", "COLUMNS"))
    }
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, "-C", str(project), "plan", *args],
        env={**environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    output, _, modules = done.stdout.rpartition("MODULES ")
    return output, json.loads(modules)


@pytest.mark.parametrize("args", [(), ("--phase", "2")])
def test_a_plan_into_a_pipe_prints_what_rich_prints_without_loading_it(
    project: Path, args: tuple[str, ...]
) -> None:
    _run_plan(project, *args)  # a process like the next ones fills the cache
    plain, modules = _run_plan(project, *args)
    # FORCE_COLOR empty: Rich still writes no colours, but print_markup leaves it to Rich
    with_rich, rich_modules = _run_plan(project, *args, FORCE_COLOR="")
    assert "rich.console" in rich_modules
    assert plain == with_rich
    assert "Whole-set checks:" in plain and "Plan:" in plain
    rich = [m for m in modules if m == "rich" or m.startswith("rich.")]
    assert set(rich) <= {"rich", "rich._emoji_codes"}  # the emoji table at most
    assert "rich.console" not in modules and "rich.markup" not in modules
    # the rules' modules are not loaded when the report is kept
    assert not any(m.startswith("migrate.manifests.lint.") for m in modules)


# --- the schema checks' answer kept with a kept render --------------------------------------


def test_what_the_schema_checks_said_of_a_kept_render_is_what_they_say(project: Path) -> None:
    from migrate.actions.manifests import _schema_check
    from migrate.manifests.render_memo import render_memo
    from migrate.manifests.validate import validate

    api.plan(project)
    ctx = open_context(project)
    memo = render_memo(ctx)
    version = ctx.config.target.kubernetes_version
    served = [t for p in lint.rendered_set(ctx) for t in p.tasks]
    assert served and all(memo.kept(t) for t in served)
    for rendered in served:
        kept = memo.value_for(rendered, "schema-check|" + version)
        assert isinstance(kept, dict), rendered.task
        report = validate(rendered.manifests, version, required=False)
        assert kept == {
            "skipped": report.skipped,
            "not_checked": [m.ref for m in report.not_checked],
        }
        assert _schema_check(ctx, rendered) == (kept["skipped"], kept["not_checked"])
    # a render that is not the memo's own is checked, never answered from the memo
    other = dataclasses.replace(served[0])
    assert not memo.kept(other)
    assert memo.value_for(other, "schema-check|" + version) is None
    # a task whose entry changes loses what was kept about it
    changed = dataclasses.replace(served[0], components=(*served[0].components, "extra"))
    memo.put(changed, {})
    assert memo.kept(changed)
    assert memo.value_for(changed, "schema-check|" + version) is None
