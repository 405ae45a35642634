"""The JUnit XML report of a verify run: one testcase per check, classname = phase.task."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from migrate.verify.model import VerifyReport


def to_xml(report: VerifyReport) -> str:
    """A check that could not be run (`error`) is a JUnit `error`, any other miss a `failure`."""
    checks = report.checks
    errors = len(report.errors)
    failures = len(report.failed) - errors
    suites = ET.Element(
        "testsuites", tests=str(len(checks)), failures=str(failures), errors=str(errors)
    )
    suite = ET.SubElement(
        suites, "testsuite", name="migrate verify", tests=str(len(checks)),
        failures=str(failures), errors=str(errors), skipped="0",
    )  # fmt: skip
    for phase in report.phases:
        for task in phase.tasks:
            for check in task.checks:
                case = ET.SubElement(
                    suite, "testcase", classname=f"{phase.id}.{task.id}", name=check.name
                )
                ET.SubElement(case, "system-out").text = f"{check.kind} on {check.host}: " + (
                    check.message
                )
                if not check.passed:
                    tag = "error" if check.error else "failure"
                    failure = ET.SubElement(case, tag, message=check.message)
                    failure.text = check.message
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def write(report: VerifyReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_xml(report), encoding="utf-8")
    return path
