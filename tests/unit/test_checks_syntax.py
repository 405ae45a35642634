"""The behaviour check kinds (`event_flow`, `cache_hit`) in a roadmap: parsing, bad input
naming file, line and key, and the roadmap variables that say where the system answers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate import checks as c
from migrate.errors import RoadmapError, UserError
from migrate.project import open_context
from migrate.roadmap import Roadmap, default_roadmap_path, load_roadmap
from migrate.verify import junit
from migrate.verify.model import CheckResult, PhaseResult, TaskResult, VerifyReport
from tests.conftest import write

ROADMAP = """
phases:
  - id: 1
    name: One
    tasks:
      - id: flow
        title: Flow
        action: manual
        checks:
          - event_flow:
              orchestrator: "{{ target.orchestrator_url }}"
              event: task.created
              payload: {goal: "ship it"}
              expect: [plan.ready, notification.sent]
          - cache_hit: {url: "http://127.0.0.1:1", plugin: summarizer}
"""


def load(tmp_path: Path, text: str) -> Roadmap:
    return load_roadmap(write(tmp_path / "roadmap.yaml", text))


def error(tmp_path: Path, text: str) -> RoadmapError:
    with pytest.raises(RoadmapError) as caught:
        load(tmp_path, text)
    return caught.value


def assert_names(exc: RoadmapError, line: int, key: str, *words: str) -> None:
    text = str(exc)
    assert exc.line == line, text
    assert exc.key == key, text
    assert f"roadmap.yaml:{line}: {key}:" in text, text
    for word in words:
        assert word in text, text


def test_event_flow_and_cache_hit_load_with_their_defaults(tmp_path: Path) -> None:
    flow, cache = load(tmp_path, ROADMAP).phase(1).tasks[0].checks
    assert flow.kind == "event_flow" and isinstance(flow.params, c.EventFlowCheck)
    assert flow.params.expect == ["plan.ready", "notification.sent"]
    assert flow.params.payload == {"goal": "ship it"}
    assert flow.params.within == 30.0
    assert flow.label == "event_flow task.created -> plan.ready, notification.sent"
    assert cache.kind == "cache_hit" and isinstance(cache.params, c.CacheHitCheck)
    assert cache.params.payload == {} and cache.params.timeout == 5.0
    assert cache.label == "cache_hit summarizer"
    assert "event_flow" in c.IN_PROCESS and "cache_hit" in c.IN_PROCESS


def test_an_unknown_event_flow_key_names_file_line_and_key(tmp_path: Path) -> None:
    text = ROADMAP.replace(
        "              expect:", "              timeout: 5\n              expect:"
    )
    assert_names(
        error(tmp_path, text), 13, "phases[0].tasks[0].checks[0].event_flow.timeout",
        "unknown key", "allowed here: orchestrator, event, payload, expect, within",
    )  # fmt: skip
    # a misspelt key: both problems, each with its line
    text = str(error(tmp_path, ROADMAP.replace("expect: [plan.ready", "expects: [plan.ready")))
    assert "roadmap.yaml:9: phases[0].tasks[0].checks[0].event_flow.expect: required key" in text
    assert "roadmap.yaml:13: phases[0].tasks[0].checks[0].event_flow.expects: unknown key" in text


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "words"),
    [
        ("expect: [plan.ready, notification.sent]", "expect: []", 13,
         "phases[0].tasks[0].checks[0].event_flow.expect", ("at least 1 item",)),
        ("              expect:", "              within: 0\n              expect:", 13,
         "phases[0].tasks[0].checks[0].event_flow.within", ("greater than 0",)),
        ("              expect:", "              within: soon\n              expect:", 13,
         "phases[0].tasks[0].checks[0].event_flow.within", ("soon",)),
        ('"{{ target.orchestrator_url }}"', "orchestrator.local:8080", 10,
         "phases[0].tasks[0].checks[0].event_flow.orchestrator", ("http://",)),
        ('payload: {goal: "ship it"}', "payload: [1]", 12,
         "phases[0].tasks[0].checks[0].event_flow.payload", ("expected a mapping", "got a list")),
        ("event: task.created", 'event: ""', 11,
         "phases[0].tasks[0].checks[0].event_flow.event", ("at least 1 character",)),
        ("plugin: summarizer}", "plugin: summarizer, ttl: 3}", 14,
         "phases[0].tasks[0].checks[1].cache_hit.ttl", ("unknown key", "url, plugin, payload")),
        ("{url: \"http://127.0.0.1:1\", plugin: summarizer}", "{url: \"http://127.0.0.1:1\"}", 14,
         "phases[0].tasks[0].checks[1].cache_hit.plugin", ("required key is missing",)),
        ("{url: \"http://127.0.0.1:1\",", "{url: \"127.0.0.1:1\",", 14,
         "phases[0].tasks[0].checks[1].cache_hit.url", ("http://",)),
    ],
)  # fmt: skip
def test_bad_behaviour_checks_name_file_line_and_key(
    tmp_path: Path, old: str, new: str, line: int, key: str, words: tuple[str, ...]
) -> None:
    assert old in ROADMAP
    assert_names(error(tmp_path, ROADMAP.replace(old, new)), line, key, *words)


def test_behaviour_checks_refuse_a_host(tmp_path: Path) -> None:
    text = ROADMAP.replace(
        "          - cache_hit:", "          - host: ssh://deploy@bastion\n            cache_hit:"
    )
    assert_names(
        error(tmp_path, text), 14, "phases[0].tasks[0].checks[1]",
        "cache_hit runs from the machine running verify", "remove `host`",
    )  # fmt: skip
    # local:// (the default) is fine
    load(tmp_path, text.replace("ssh://deploy@bastion", "local://"))


def test_the_kind_lists_name_the_new_kinds(tmp_path: Path) -> None:
    exc = error(tmp_path, ROADMAP.replace("- cache_hit:", "- cache_hits:"))
    assert "unknown check kind 'cache_hits'" in str(exc)
    assert "event_flow, cache_hit" in str(exc)


def test_a_url_with_a_variable_is_checked_once_expanded(tmp_path: Path) -> None:
    check = c.Check.model_validate({"http": {"url": "{{ target.orchestrator_url }}/readyz"}})
    assert check.kind == "http"
    with pytest.raises(ValueError, match="http://"):
        c.Check.model_validate({"http": {"url": "orchestrator/readyz"}})


# -- the roadmap variables --------------------------------------------------------------


def set_target(project: Path, **keys: Any) -> None:
    path = project / "migrate.yaml"
    config = yaml.safe_load(path.read_text())
    config["target"].update(keys)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def write_dev_state(project: Path, orchestrator: str, services: dict[str, str]) -> None:
    from migrate.dev import state

    state.save(
        project,
        {
            "version": 1,
            "project": "project",
            "network": "host",
            "orchestrator": orchestrator,
            "containers": [
                {"name": "project-orchestrator", "role": "orchestrator", "plugin": None,
                 "url": orchestrator, "ready": True},
                *({"name": f"project-{n}-worker", "role": "worker", "plugin": n,
                   "url": "http://127.0.0.1:9/", "ready": True} for n in services),
                *({"name": f"project-{n}", "role": "service", "plugin": n, "url": u,
                   "ready": True} for n, u in services.items()),
            ],
        },
    )  # fmt: skip


def expand(project: Path, text: str) -> Any:
    return open_context(project).expand(text)


def test_orchestrator_url_in_cluster_then_dev_then_config(project: Path) -> None:
    url = "{{ target.orchestrator_url }}"
    assert expand(project, url) == "http://project-orchestrator.project.svc"
    write_dev_state(project, "http://127.0.0.1:18080/", {})
    assert expand(project, url + "/readyz") == "http://127.0.0.1:18080/readyz"
    set_target(project, orchestrator_url="https://orchestrator.example.com/")
    assert expand(project, url) == "https://orchestrator.example.com"


def test_a_bad_orchestrator_url_in_migrate_yaml_is_an_error(project: Path) -> None:
    set_target(project, orchestrator_url="orchestrator:8080")
    with pytest.raises(UserError) as caught:
        open_context(project)
    assert "target.orchestrator_url" in str(caught.value)


def test_plugin_url_in_cluster_then_dev(project: Path) -> None:
    assert expand(project, "{{ target.plugin_url.summarizer }}") == (
        "http://summarizer.project.svc"
    )
    assert expand(project, '{{ target.plugin_url["Report-Writer"] }}') == (
        "http://report-writer.project.svc"
    )
    write_dev_state(project, "http://127.0.0.1:18080", {"summarizer": "http://127.0.0.1:18081/"})
    assert expand(project, "{{ target.plugin_url.summarizer }}") == "http://127.0.0.1:18081"
    # a plugin without a service in the dev environment: the in-cluster name
    assert expand(project, "{{ target.plugin_url.planner }}") == "http://planner.project.svc"


def test_an_unknown_plugin_url_says_which_plugins_there_are(project: Path) -> None:
    with pytest.raises(UserError) as caught:
        expand(project, "{{ target.plugin_url.summariser }}")
    assert "no plugin 'summariser'" in caught.value.message
    assert "summarizer" in (caught.value.hint or "")


def test_the_in_cluster_urls_use_the_rendered_service_ports(project: Path) -> None:
    """`http://NAME.NAMESPACE.svc` (port 80) is right only while the Services listen on 80."""
    from migrate.manifests.render import render_project

    ctx = open_context(project)
    services = {
        m.name: m.obj for p in render_project(ctx) for m in p.manifests if m.kind == "Service"
    }
    for name in ("project-orchestrator", "summarizer"):
        ports = [port["port"] for port in services[name]["spec"]["ports"]]
        assert ports == [80], (name, ports)


def test_the_default_roadmap_checks_phases_3_and_4_by_behaviour(project: Path) -> None:
    roadmap = load_roadmap(default_roadmap_path())
    kinds = {t.id: [ch.kind for ch in t.checks] for _, t in roadmap.tasks()}
    assert kinds["agent-orchestrator"] == ["http", "http"]
    assert kinds["async-execution"] == ["event_flow"]
    assert kinds["event-driven-communication"] == ["event_flow"]
    assert kinds["caching"] == ["cache_hit"]
    assert "k8s_resource" in kinds["auto-scaling"]
    flow = roadmap.task("event-driven-communication")[1].checks[0].params
    assert isinstance(flow, c.EventFlowCheck)
    assert flow.event == "task.created" and flow.expect[-1] == "notification.sent"

    # every value expands in the example project, to URLs of the running dev environment
    write_dev_state(project, "http://127.0.0.1:18080", {"summarizer": "http://127.0.0.1:18081"})
    ctx = open_context(project)
    for _, task in ctx.roadmap.tasks():
        for check in task.checks:
            expanded = c.Check.model_validate(ctx.expand(check.model_dump(exclude_none=True)))
            params = expanded.params
            if isinstance(params, c.EventFlowCheck):
                assert params.orchestrator == "http://127.0.0.1:18080"
            if isinstance(params, c.CacheHitCheck):
                assert params.url == "http://127.0.0.1:18081" and params.plugin == "summarizer"
            if isinstance(params, c.HttpCheck) and task.id == "agent-orchestrator":
                assert params.url.startswith("http://127.0.0.1:18080/")


# -- errors are not failures ------------------------------------------------------------


def test_an_error_is_a_junit_error_and_in_the_json() -> None:
    checks = [
        CheckResult("ok", "http", "local://", True, "answered 200"),
        CheckResult("wrong", "event_flow", "local://", False, "run r1 failed: boom"),
        CheckResult("down", "event_flow", "local://", False, "did not answer", error=True),
    ]
    report = VerifyReport([PhaseResult(3, "Three", [TaskResult("t", "T", checks, False)])])
    assert [ch["error"] for ch in report.to_dict()["phases"][0]["tasks"][0]["checks"]] == [
        False, False, True,
    ]  # fmt: skip
    assert json.loads(json.dumps(report.to_dict()))["passed"] is False
    assert [ch.name for ch in report.errors] == ["down"]
    root = ET.fromstring(junit.to_xml(report).split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("failures"), suite.get("errors")) == ("1", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["wrong"].find("failure") is not None and cases["wrong"].find("error") is None
    down = cases["down"].find("error")
    assert down is not None and down.get("message") == "did not answer"
    assert cases["ok"].find("failure") is None and cases["ok"].find("error") is None


def test_every_kind_has_a_runner_and_a_row_in_the_docs() -> None:
    from migrate.verify import behaviour, kinds, proof

    repo = Path(__file__).resolve().parents[2]
    runners = set(kinds.RUNNERS) | set(behaviour.RUNNERS) | set(proof.RUNNERS) | {"testinfra"}
    assert runners == set(c.CHECK_KINDS)
    roadmap_doc = (repo / "docs" / "roadmap.md").read_text()
    verify_doc = (repo / "docs" / "verify.md").read_text()
    for kind in c.CHECK_KINDS:
        assert f"\n| `{kind}` |" in roadmap_doc, kind
        assert f"\n| `{kind}` |" in verify_doc, kind
