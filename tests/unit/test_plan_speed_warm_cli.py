"""The commands' options are coerced without Typer's Pydantic adapters (issue 14): a
plan, and the help of every command, never import `typer._adapters`; every option of
every command gives what Typer's own coercion gives, value for value and error for
error (migrate.cli.app._plain_params)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import typer
from typer._click.exceptions import BadParameter
from typer._coercion import build_runtime_param
from typer.main import get_command
from typer.testing import CliRunner

from migrate.cli.app import COMMANDS, _plain_param, app

#: runs each argv through the CLI in one process, then says which modules it imported
_SCRIPT = """
import json, sys
from migrate.cli.app import app
for argv in json.loads(sys.argv[1]):
    try:
        app(argv, prog_name="migrate")
    except SystemExit as exc:
        if exc.code not in (0, 1, None) and not (exc.code == 2 and "--detailed-exitcode" in argv):
            raise SystemExit(f"{argv}: exit {exc.code}")
print(json.dumps(sorted(sys.modules)))
"""


def _every_command() -> list[list[str]]:
    root = get_command(app)
    found: list[list[str]] = []
    for name in COMMANDS:
        command = root.commands[name]  # type: ignore[attr-defined]
        found.append([name])
        found.extend([name, sub] for sub in getattr(command, "commands", {}))
    return found


def _imported(argvs: list[list[str]], cwd: Path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYDANTIC")}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, json.dumps(argvs)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return modules


def test_the_help_of_every_command_imports_no_typer_adapter(tmp_path: Path) -> None:
    argvs = [["--help"]] + [[*command, "--help"] for command in _every_command()]
    assert len(argvs) > len(COMMANDS)  # the groups' commands too
    modules = _imported(argvs, tmp_path)
    assert "typer._coercion" in modules  # options were coerced
    assert "typer._adapters" not in modules


def test_a_plan_with_options_imports_no_typer_adapter(shared_project: Path, tmp_path: Path) -> None:
    argvs = [
        ["-C", str(shared_project), "plan"],
        ["-C", str(shared_project), "plan", "--phase", "1", "-o", "json"],
        ["-C", str(shared_project), "plan", "--minimum-failure-severity", "None"],
        ["-C", str(shared_project), "plan", "--skip-check", "quota-fits", "--detailed-exitcode"],
    ]
    modules = _imported(argvs, tmp_path)
    assert "migrate.engine.plan" in modules  # it planned
    assert "typer._adapters" not in modules
    # the data task is planned from file sizes and hashes: no loader, no database driver
    assert "migrate.data.selection" in modules
    assert "migrate.data.loader" not in modules and "psycopg" not in modules


#: values a command line, an environment variable or a default may give an option
_SAMPLES: list[Any] = [
    *["", "x", "0", "1", "2", "05", "-1", "+1", " 2", "2 ", "1.5", "1.", ".5", "1e3", "1_0"],
    *["0.1", "0.05", "1024", "1025", "3600", "3600.0", "3600.5", "99999999999999999999"],
    *["table", "JSON", "Json", "warning", "WARNING", "none", "host", "bridge", "html"],
    *["markdown", "Markdown", ".", "-", "/", "/nonexistent/file", "a\x1bb", "é"],
    *[None, True, False, 0, 1, 5, 0.5, 2.0, Path("."), Path("/nonexistent")],
    *[("a",), ("a", "b"), ["1", "2"], ("x", "0"), (), b"bytes"],
]


def _parameters() -> list[tuple[str, Any]]:
    root = get_command(app)
    found: list[tuple[str, Any]] = [(f"migrate {p.name}", p) for p in root.params]

    def walk(path: str, command: Any) -> None:
        found.extend((f"{path} {p.name}", p) for p in command.params)
        for name, sub in getattr(command, "commands", {}).items():
            walk(f"{path} {name}", sub)

    for name in COMMANDS:
        walk(name, root.commands[name])  # type: ignore[attr-defined]
    return found


def _outcome(coerce: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        result = coerce(value, param=param, ctx=ctx)
    except BadParameter as exc:
        return "error", exc.format_message()
    except (ValueError, TypeError) as exc:
        return "exception", f"{type(exc).__name__}: {exc}"
    if isinstance(result, list | tuple):
        return "value", (type(result), [(type(item), item) for item in result])
    return "value", (type(result), result)


def test_every_option_coerces_and_fails_as_typer_does() -> None:
    parameters = _parameters()
    annotations = {repr(p.type_descriptor.annotation) for _, p in parameters}
    # the kinds of options the commands have: each is compared below
    assert {"<class 'str'>", "<class 'int'>", "<class 'float'>", "list[str]"} <= annotations
    assert any(isinstance(p.type_descriptor.annotation, type(Enum)) for _, p in parameters)
    ctx = typer.Context(get_command(app))
    compared = 0
    for where, param in parameters:
        descriptor = param.type_descriptor
        plain = _plain_param(descriptor)
        typers = build_runtime_param(descriptor)
        enum = descriptor.annotation
        samples = [*_SAMPLES, *(list(enum) if isinstance(enum, type(Enum)) else [])]
        if param.default is not None:
            samples.append(param.default)
        for value in samples:
            expected = _outcome(typers.coerce, value, param, ctx)
            assert _outcome(plain.coerce, value, param, ctx) == expected, (where, value)
            compared += 1
    assert compared > 1000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["plan", "--phase", "x"],
            "Invalid value for '--phase': Input should be a valid integer, unable to parse "
            "string as an integer",
        ),
        (["plan", "--phase", "0"], "Invalid value for '--phase': Input should be greater than"),
        (
            ["plan", "--output", "xml"],
            "Invalid value for '--output' / '-o': Value error, 'xml' is not one of 'table', "
            "'json'.",
        ),
        (["bench", "--concurrency", "1025"], "Invalid value for '--concurrency'"),
        (["report", "--format", "pdf"], "Invalid value for '--format'"),
    ],
)
def test_a_bad_option_fails_with_typers_message_and_exit_code_2(
    argv: list[str], message: str
) -> None:
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
