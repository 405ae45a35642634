"""`--help` stays fast: it imports none of the heavy libraries (issue 14).

Typer 0.29 coerces parameters through Pydantic TypeAdapters; the global options
are processed before any subcommand, even for `migrate plan --help`, so without
care every `--help` imported Pydantic (tripling its time). The check is on what is
imported, not on time: tests never assert on time (benchmarks/startup.py does
the ratio).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pydantic", "yaml", "jinja2", "psycopg", "docker", "pulumi", "testinfra", "rich.table")

HELP = [
    ["--help"],
    ["plan", "--help"],
    ["apply", "--help"],
    ["data", "--help"],
    ["data", "load", "--help"],
    ["images", "build", "--help"],
    ["infra", "up", "--help"],
    ["dev", "up", "--help"],
]


def imported_by(argv: list[str]) -> set[str]:
    script = (
        "import sys\n"
        "from migrate.cli.app import main\n"
        f"sys.argv = ['migrate', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert "Usage:" in done.stdout
    return set(done.stderr.split())


@pytest.mark.parametrize("argv", HELP, ids=" ".join)
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    modules = imported_by(argv)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY)
    assert heavy == [], f"`migrate {' '.join(argv)}` imported {heavy[:5]}"


def test_global_options_are_still_coerced(tmp_path: object) -> None:
    """The Pydantic-free coercion of -C and --database-url gives the same values."""
    from pathlib import Path

    from typer.testing import CliRunner

    from migrate.cli.app import app

    result = CliRunner().invoke(app, ["-C", str(tmp_path), "status"])
    assert result.exit_code == 1
    assert "no migrate.yaml in" in result.output and str(Path(str(tmp_path))) in result.output
