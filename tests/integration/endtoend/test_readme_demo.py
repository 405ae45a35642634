"""The README's flow, for real, on the example application (issue 7's end-to-end test):
init, plan, apply phase 1's file tasks, verify, apply phase 2's data and images tasks,
status, report, rollback of phase 2 — checking the database, the images and the report
at each step. Pulumi and a cluster are not here: their tasks are left out with --only,
as the README says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.data.conftest import query


def migrate(project: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "migrate", "-C", str(project), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == expect, (args, result.returncode, result.stderr[-2000:])
    return result


def ticked(report: str, title: str) -> bool:
    for line in report.splitlines():
        if title in line and line.lstrip().startswith("- ["):
            return line.lstrip().startswith("- [x]")
    raise AssertionError(f"{title!r} is not in the report")


def test_the_readme_flow(image_project: Path, db_env: str, docker_client: Any) -> None:
    project = image_project
    plan = json.loads(migrate(project, "plan", "--output", "json").stdout)
    assert plan["summary"]["create"] > 0 and [p["id"] for p in plan["phases"]] == [1, 2, 3, 4]

    migrate(
        project,
        "apply",
        "--phase",
        "1",
        "--only",
        "ci-cd-pipelines",
        "--only",
        "dev-environments",
        "--yes",
    )
    assert "migrate ci" in (project / ".github" / "workflows" / "migrate.yml").read_text()
    assert (project / "dev" / "compose.yaml").is_file()

    # no cluster here: cluster-setup and monitoring-stack fail their checks
    verify = json.loads(migrate(project, "verify", "--phase", "1", "-o", "json", expect=1).stdout)
    done = {t["id"]: t["done"] for p in verify["phases"] for t in p["tasks"]}
    assert done == {
        "cluster-setup": False,
        "ci-cd-pipelines": True,
        "monitoring-stack": False,
        "dev-environments": True,
    }
    migrate(project, "apply", "--phase", "2", expect=1)  # the gate: phase 1 is not done

    migrate(
        project,
        "apply",
        "--phase",
        "2",
        "--force",
        "--only",
        "database-migration",
        "--only",
        "containerize-services",
        "--yes",
    )
    assert query(db_env, "SELECT count(*) FROM legacy.agent_runs") == [(3000,)]
    images = json.loads(migrate(project, "images", "list", "-o", "json").stdout)["images"]
    # one image per plugin, and the orchestrator's
    assert sorted(i["role"] for i in images) == ["orchestrator"] + ["service"] * 6
    assert all(i["current"] for i in images)
    for image in images:
        docker_client.images.get(image["image"])

    status = json.loads(migrate(project, "status", "-o", "json").stdout)
    tasks = {t["id"]: t for p in status["phases"] for t in p["tasks"]}
    assert tasks["database-migration"]["last_applied"] and tasks["database-migration"]["done"]
    assert tasks["containerize-services"]["done"] and not tasks["cluster-setup"]["done"]

    migrate(project, "report", "--out", "report.md")
    report = (project / "report.md").read_text()
    assert ticked(report, "Configure CI/CD pipelines")
    assert ticked(report, "Implement database migration")
    assert ticked(report, "Containerize existing services")
    assert not ticked(report, "Set up Kubernetes cluster")
    assert not ticked(report, "Set up service mesh")  # neither applied nor verified

    migrate(project, "rollback", "--phase", "2", "--yes")
    assert query(db_env, "SELECT count(*) FROM pg_namespace WHERE nspname = 'legacy'") == [(0,)]
    assert json.loads(migrate(project, "images", "list", "-o", "json").stdout)["images"] == []
    migrate(project, "report", "--out", "report.md")
    report = (project / "report.md").read_text()
    assert not ticked(report, "Implement database migration")
    assert ticked(report, "Configure CI/CD pipelines")  # phase 1 is untouched
