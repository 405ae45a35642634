"""The JUnit XML report of a verify run: one testcase per check, classname = phase.task.

It follows the Ant `JUnit.xsd` as well as Jenkins' xunit schema (both are vendored in
tests/integration/verify/xsd and checked there): each testcase has its `time`, the
testsuite its `timestamp`, `hostname` and `time`, the `testsuites` root no attributes
(Ant's schema allows none; the counts are on the testsuite). The same check name twice
in one task (the same check on two hosts) gets the host in its name, so each testcase
is told apart.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from migrate.verify.model import VerifyReport


def to_xml(report: VerifyReport) -> str:
    """A check that could not be run (`error`) is a JUnit `error`, any other miss a `failure`."""
    checks = report.checks
    errors = len(report.errors)
    failures = len(report.failed) - errors
    started = (report.started or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    suites = ET.Element("testsuites")  # Ant's schema allows it no attributes: the suite has them
    suite = ET.SubElement(
        suites, "testsuite", name="migrate verify", package="migrate", id="0",
        tests=str(len(checks)), failures=str(failures), errors=str(errors), skipped="0",
        timestamp=started.isoformat(timespec="seconds"),
        hostname=socket.gethostname() or "localhost", time=_seconds(report.seconds),
    )  # fmt: skip
    ET.SubElement(suite, "properties")
    seen = Counter(
        (phase.id, task.id, check.name)
        for phase in report.phases for task in phase.tasks for check in task.checks
    )  # fmt: skip
    lines: list[str] = []
    for phase in report.phases:
        for task in phase.tasks:
            for check in task.checks:
                name = check.name
                if seen[(phase.id, task.id, check.name)] > 1:
                    name = f"{check.name} ({check.host})"
                case = ET.SubElement(
                    suite, "testcase", classname=f"{phase.id}.{task.id}", name=name,
                    time=_seconds(check.seconds),
                )  # fmt: skip
                if not check.passed:
                    tag = "error" if check.error else "failure"
                    failure = ET.SubElement(
                        case, tag, message=check.message, type=f"{check.kind}.{tag}"
                    )
                    failure.text = check.message
                lines.append(
                    f"{phase.id}.{task.id} {name}: {check.kind} on {check.host}: {check.message}"
                )
    # per check what ran where, in the suite's output (Ant's schema has none per testcase)
    ET.SubElement(suite, "system-out").text = "\n".join(lines)
    ET.SubElement(suite, "system-err")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def write(report: VerifyReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_xml(report), encoding="utf-8")
    return path


def error_xml(error: str, testcase: str = "load the project") -> str:
    """A JUnit report of a run that stopped before any check (an invalid roadmap): one
    testcase in `error`, so a pipeline's JUnit upload finds the reason."""
    now = datetime.now(UTC).replace(tzinfo=None)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites, "testsuite", name="migrate verify", package="migrate", id="0", tests="1",
        failures="0", errors="1", skipped="0", timestamp=now.isoformat(timespec="seconds"),
        hostname=socket.gethostname() or "localhost", time="0.000",
    )  # fmt: skip
    ET.SubElement(suite, "properties")
    case = ET.SubElement(suite, "testcase", classname="migrate", name=testcase, time="0.000")
    first = error.splitlines()[0] if error else "error"
    ET.SubElement(case, "error", message=first, type="migrate.error").text = error
    ET.SubElement(suite, "system-out")
    ET.SubElement(suite, "system-err")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, "unicode") + "\n"
