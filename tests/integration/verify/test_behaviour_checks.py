"""`event_flow` and `cache_hit` against the real runtime: `python -m migrate.runtime`
processes on 127.0.0.1 (the orchestrator, a worker per plugin of the example app, plugin
services), the real redis-server and the embedded PostgreSQL.

The checks reach them the way a user's do: through `{{ target.orchestrator_url }}` and
`{{ target.plugin_url.NAME }}`, resolved from the `.migrate/dev.json` that `migrate dev up`
writes (here written for the local processes).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from migrate import api
from migrate.cli.app import app
from migrate.dev import state
from tests.conftest import EXAMPLE_APP
from tests.integration.data.conftest import database_url, pg_server  # noqa: F401  (fixtures)
from tests.integration.runtime.conftest import redis_server, redis_url  # noqa: F401
from tests.integration.runtime.harness import LocalSystem, Process
from tests.integration.verify.conftest import TIMEOUT, free_port, set_roadmap

pytestmark = pytest.mark.integration

CHAIN = ["plan.ready", "review.done", "research.done", "report.ready", "summary.ready",
         "notification.sent"]  # fmt: skip
GOAL = {"goal": "Review the code; then research the topic; then write the report"}


@pytest.fixture
def system(redis_url: str, database_url: str, tmp_path: Path) -> Iterator[LocalSystem]:  # noqa: F811
    """The example app's orchestrator and six workers, a caching summarizer service and a
    planner service without a cache. Failing plugins are retried briefly."""
    local = LocalSystem(
        EXAMPLE_APP, redis_url, database_url, tmp_path / "logs",
        env={"MIGRATE_MAX_ATTEMPTS": "2", "MIGRATE_RETRY_BASE_S": "0.05"},
    )  # fmt: skip
    local.add_all()
    plugins = {plugin.name: plugin for plugin in local.inventory.plugins}
    local.add_plugin(plugins["summarizer"], "service").env["MIGRATE_CACHE_TTL_S"] = "300"
    local.add_plugin(plugins["planner"], "service")
    with local:
        local.start()
        yield local


def service(system: LocalSystem, plugin: str) -> Process:
    return next(p for p in system.processes if p.role == "service" and p.plugin == plugin)


def point_project_at(project: Path, system: LocalSystem) -> None:
    """What `migrate dev up` leaves for the other commands: where everything answers."""
    state.save(
        project,
        {
            "version": 1,
            "project": "project",
            "network": "host",
            "orchestrator": system.orchestrator.url,
            "containers": [
                {"name": p.name, "role": p.role, "plugin": p.plugin, "url": p.url, "ready": True}
                for p in system.processes
            ],
        },
    )


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_phase_3_is_done_when_a_task_created_run_reaches_notification_sent(
    project: Path, system: LocalSystem
) -> None:
    """The default roadmap's own checks of phases 3 and 4, as `migrate init` copied them."""
    point_project_at(project, system)
    result = run("-C", str(project), "verify", "--phase", "3", "--output", "json",
                 "--junit-xml", "j.xml", "--timeout", str(TIMEOUT))  # fmt: skip
    assert result.exit_code == 1, result.output  # auto-scaling needs a cluster
    document = json.loads(result.stdout)
    tasks = {t["id"]: t for t in document["phases"][0]["tasks"]}
    for task in ("agent-orchestrator", "async-execution", "event-driven-communication"):
        assert tasks[task]["done"], tasks[task]
    assert not tasks["auto-scaling"]["done"]  # ScaledObjects and an HPA: no cluster here
    (flow,) = tasks["event-driven-communication"]["checks"]
    assert flow["kind"] == "event_flow" and flow["passed"] and not flow["error"]
    assert flow["name"] == "a task.created run reaches notification.sent"
    assert "task.created reached " + ", ".join(CHAIN) in flow["message"]
    ready, metrics = tasks["agent-orchestrator"]["checks"]
    assert ready["message"] == f"{system.orchestrator.url}/readyz answered 200"
    assert metrics["passed"], metrics
    cases = {c.get("name"): c for c in ET.parse(project / "j.xml").getroot().iter("testcase")}
    assert cases[flow["name"]].get("classname") == "3.event-driven-communication"
    assert cases[flow["name"]].find("failure") is None

    (caching,) = [t for p in api.verify(project, 4, timeout=TIMEOUT).phases for t in p.tasks
                  if t.id == "caching"]  # fmt: skip
    (hit,) = caching.checks
    assert caching.done and hit.kind == "cache_hit", hit
    assert hit.message.startswith('migrate_cache_hits_total{plugin="summarizer"} grew from ')

    # a type the run never produces: the run ends without it, and the check says so at once
    set_roadmap(
        project,
        {
            "id": "graph",
            "checks": [
                {
                    "name": "not in the graph",
                    "event_flow": {
                        "orchestrator": "{{ target.orchestrator_url }}",
                        "event": "task.created",
                        "payload": GOAL,
                        "expect": ["notification.sent", "invoice.paid"],
                        "within": 600,
                    },
                }
            ],
        },
    )
    (check,) = api.verify(project, timeout=TIMEOUT).checks
    assert not check.passed and not check.error
    assert (
        check.message.startswith("run ") and " ended without invoice.paid; seen: " in check.message
    )
    assert check.message.endswith("; missing: invoice.paid"), check.message
    assert all(kind in check.message for kind in CHAIN), check.message


def test_wrong_behaviour_fails_and_says_what_was_seen(project: Path, system: LocalSystem) -> None:
    point_project_at(project, system)
    system.get("notifier-worker-1").stop()  # nothing will ever send a notification
    flow = {"orchestrator": "{{ target.orchestrator_url }}", "event": "task.created",
            "payload": GOAL}  # fmt: skip
    set_roadmap(
        project,
        {
            "id": "flows",
            "checks": [
                {"name": "never notified", "event_flow": {**flow, "within": 5,
                                                          "expect": ["notification.sent"]}},
                {"name": "planner raises", "event_flow": {
                    **flow, "payload": {"goal": "a", "max_steps": "many"},
                    "expect": ["plan.ready"], "within": 30}},
                {"name": "unknown event", "event_flow": {**flow, "event": "invoice.paid",
                                                         "expect": ["plan.ready"]}},
                {"name": "no cache", "cache_hit": {"url": "{{ target.plugin_url.planner }}",
                                                   "plugin": "planner", "payload": GOAL}},
            ],
        },
    )  # fmt: skip
    report = api.verify(project, timeout=TIMEOUT)
    checks = {c.name: c for c in report.checks}
    assert not any(c.passed or c.error for c in checks.values()), checks

    never = checks["never notified"].message
    assert never.startswith("run ") and never.endswith("missing: notification.sent"), never
    assert ": expected notification.sent within 5 s, found none; seen: task.created" in never

    raised = checks["planner raises"].message
    assert raised.startswith("run ") and " failed: " in raised, raised
    assert "ValueError" in raised or "invalid literal" in raised, raised
    assert raised.endswith("seen: task.created; missing: plan.ready")

    unknown = checks["unknown event"].message
    assert unknown.startswith(f"expected POST {system.orchestrator.url}/runs to start a run")
    assert " found 4" in unknown and "invoice.paid" in unknown

    assert checks["no cache"].message == (
        'expected migrate_cache_hits_total{plugin="planner"} to grow by at least 1 after two '
        "identical invokes, found 0 -> 0 (misses 0 -> 0); no cache miss was counted either: "
        "is caching on for planner (cache_ttl_s)?"
    )


def test_nothing_listening_is_an_error_not_a_failure(project: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    set_roadmap(
        project,
        {
            "id": "down",
            "checks": [
                {"name": "flow", "event_flow": {"orchestrator": "{{ target.orchestrator_url }}",
                                                "event": "task.created", "expect": ["plan.ready"]}},
                {"name": "cache", "cache_hit": {"url": closed, "plugin": "summarizer"}},
            ],
        },
    )  # fmt: skip
    state.save(project, {"version": 1, "orchestrator": closed, "containers": []})
    result = run("-C", str(project), "verify", "-o", "json", "--junit-xml", "j.xml")
    assert result.exit_code == 1, result.output
    (task,) = json.loads(result.stdout)["phases"][0]["tasks"]
    assert not task["done"]
    flow, cache = task["checks"]
    assert (flow["passed"], flow["error"]) == (False, True)
    assert flow["message"].startswith(f"the orchestrator at {closed} did not answer: ")
    assert (cache["passed"], cache["error"]) == (False, True)
    assert cache["message"].startswith(f"the service at {closed} did not answer: ")
    suite = ET.parse(project / "j.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("errors"), suite.get("failures")) == ("2", "0")
    assert all(case.find("error") is not None for case in suite.iter("testcase"))
