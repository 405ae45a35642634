"""A `testinfra:` check: a plain testinfra module run by pytest with the testinfra plugin.

It runs in a pytest process of its own (the module may define fixtures and
parametrize freely, and `migrate verify` may itself run under pytest), with
`--hosts` set to the check's host, an empty pytest config so the project's
own settings do not leak in, and a JUnit report read back for the message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from migrate.verify.kinds import Outcome, first_line


def run_module(project_dir: Path, module: str, host: str, timeout: float) -> Outcome:
    path = Path(module) if Path(module).is_absolute() else project_dir / module
    if not path.is_file():
        return Outcome(False, f"expected the testinfra module {module}, found no such file")
    with tempfile.TemporaryDirectory(prefix="migrate-verify-") as scratch:
        report = Path(scratch) / "junit.xml"
        config = Path(scratch) / "pytest.ini"
        config.write_text("[pytest]\n", encoding="utf-8")
        command = [
            sys.executable, "-m", "pytest", str(path.resolve()),
            "-c", str(config), "--rootdir", str(project_dir.resolve()),
            "-p", "testinfra", "-p", "no:cacheprovider",
            f"--hosts={host}", f"--junit-xml={report}", "-q", "--no-header", "-rN",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
        # a session of its own: at the deadline pytest dies with all it started
        process = subprocess.Popen(
            command, cwd=project_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            from migrate.verify.hosts import kill_group

            kill_group(process)
            return Outcome(False, f"timed out after {timeout:g} s: {module} was killed", True)
        if not report.is_file():
            why = first_line(stderr) or first_line(stdout)
            return Outcome(
                False, f"pytest could not run {module} (exit {process.returncode}): {why}"
            )
        return _read(module, report)


def _read(module: str, report: Path) -> Outcome:
    root = ET.parse(report).getroot()
    cases = list(root.iter("testcase"))
    failed = []
    for case in cases:
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            text = (problem.get("message") or problem.text or "").strip()
            why = first_line(text.splitlines()[0] if text else "", 120)
            failed.append(f"{case.get('name')}: {why}")
    if not cases:
        return Outcome(False, f"expected tests in {module}, found none")
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return Outcome(
            False, f"{len(failed)} of {len(cases)} tests failed in {module}: {failed[0]}{more}"
        )
    return Outcome(True, f"{len(cases)} test(s) passed in {module}")
