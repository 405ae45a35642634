"""`migrate --help` imports no command module; `migrate X --help` only X's (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from migrate.cli.app import COMMANDS

SCRIPT = """
import json, sys
from typer.testing import CliRunner
from migrate.cli.app import app
result = CliRunner().invoke(app, sys.argv[1:])
loaded = sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("migrate.cli."))
print(json.dumps({"code": result.exit_code, "output": result.output, "loaded": loaded}))
"""


def run(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, check=True
    )
    document: dict[str, object] = json.loads(done.stdout)
    return document


def command_modules(loaded: object) -> set[str]:
    assert isinstance(loaded, list)
    return {m for m in loaded if m in {module for module, _, _ in COMMANDS.values()}}


def test_the_command_list_imports_no_command() -> None:
    result = run("--help")
    assert result["code"] == 0
    assert command_modules(result["loaded"]) == set()
    output = str(result["output"])
    for name, (_, _, short_help) in COMMANDS.items():
        assert f"  {name}" in output and short_help in output


@pytest.mark.parametrize(
    ("args", "module"),
    [(["plan", "--help"], "plan"), (["rollback", "--help"], "apply"), (["images"], "images")],
)
def test_a_command_imports_its_own_module_only(args: list[str], module: str) -> None:
    result = run(*args)
    assert result["code"] in (0, 2)  # a group without its command shows its help
    assert command_modules(result["loaded"]) == {module}
    assert "Usage: " in str(result["output"])


def test_a_typo_still_suggests_the_command() -> None:
    result = run("plna")
    assert result["code"] == 2 and "Did you mean 'plan'?" in str(result["output"])
