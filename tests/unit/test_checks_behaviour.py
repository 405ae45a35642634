"""`event_flow` and `cache_hit` against small fake servers in this process (the real
runtime: tests/integration/verify/test_behaviour_checks.py), and the Prometheus parser."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from migrate import api
from migrate import checks as c
from migrate.verify import behaviour
from migrate.verify.behaviour import cache_hit, event_flow, metric_sum, samples
from migrate.verify.kinds import Outcome, Target

# what a fake answers: (status, JSON body or text, extra headers)
Reply = tuple[int, Any, dict[str, str]]


@dataclass
class Fake:
    """An HTTP server whose answers a test scripts: `routes[(METHOD, PATH)]` -> reply."""

    routes: dict[tuple[str, str], Callable[[Any], Reply]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def fake() -> Iterator[Callable[[], Fake]]:
    servers: list[ThreadingHTTPServer] = []

    def start() -> Fake:
        state = Fake()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                state.requests.append((method, self.path, body))
                route = state.routes.get((method, self.path))
                status, payload, headers = route(body) if route else (404, {"error": "no"}, {})
                data = payload if isinstance(payload, str) else json.dumps(payload)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data.encode())))
                self.end_headers()
                self.wfile.write(data.encode())

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        state.url = f"http://127.0.0.1:{server.server_address[1]}"
        return state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


TARGET = Target("local://", None, Path("."), None, 30.0)  # type: ignore[arg-type]


def flow(url: str, expect: list[str], within: float = 10.0) -> Outcome:
    params = c.EventFlowCheck(
        orchestrator=url, event="task.created", payload={"goal": "g"}, expect=expect, within=within
    )
    return event_flow(TARGET, params)


def run_states(*states: dict[str, Any]) -> Callable[[Any], Reply]:
    """GET /runs/r1 answers these states one after another, then the last one again."""
    remaining = list(states)

    def answer(_: Any) -> Reply:
        state = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return 200, {"run": "r1", "error": None, **state}, {}

    return answer


def events(*types: str) -> list[dict[str, Any]]:
    return [{"event_id": f"e{i}", "type": t, "run_id": "r1"} for i, t in enumerate(types)]


STARTED: Callable[[Any], Reply] = lambda _: (202, {"run": "r1", "url": "/runs/r1"}, {})  # noqa: E731


def test_event_flow_passes_once_every_expected_type_was_seen(fake: Callable[[], Fake]) -> None:
    orchestrator = fake()
    orchestrator.routes[("POST", "/runs")] = STARTED
    orchestrator.routes[("GET", "/runs/r1")] = run_states(
        {"status": "running", "events": events("task.created")},
        {"status": "running", "events": events("task.created", "plan.ready")},
        {"status": "running", "events": events("task.created", "plan.ready", "notification.sent")},
    )
    outcome = flow(orchestrator.url + "/", ["plan.ready", "notification.sent"])
    assert outcome == Outcome(
        True, "run r1: task.created reached plan.ready, notification.sent (3 events)"
    )
    posted = orchestrator.requests[0]
    assert posted == ("POST", "/runs", {"event": "task.created", "payload": {"goal": "g"}})
    assert [r[1] for r in orchestrator.requests[1:]] == ["/runs/r1"] * 3


def test_a_failed_run_fails_with_its_error(fake: Callable[[], Fake]) -> None:
    orchestrator = fake()
    orchestrator.routes[("POST", "/runs")] = STARTED
    orchestrator.routes[("GET", "/runs/r1")] = run_states(
        {"status": "failed", "events": events("task.created", "plan.ready"),
         "error": "summarizer: ValueError: no text"},
    )  # fmt: skip
    outcome = flow(orchestrator.url, ["plan.ready", "notification.sent"])
    assert outcome == Outcome(
        False,
        "run r1 failed: summarizer: ValueError: no text; seen: task.created, plan.ready; "
        "missing: notification.sent",
    )


def test_a_run_that_ends_without_the_types_fails_at_once(fake: Callable[[], Fake]) -> None:
    orchestrator = fake()
    orchestrator.routes[("POST", "/runs")] = STARTED
    orchestrator.routes[("GET", "/runs/r1")] = run_states(
        {"status": "done", "events": events("task.created", "plan.ready")}
    )
    outcome = flow(orchestrator.url, ["notification.sent"], within=3600)
    assert outcome == Outcome(
        False,
        "run r1 ended without notification.sent; seen: task.created, plan.ready; "
        "missing: notification.sent",
    )


def test_types_that_never_come_fail_after_within(fake: Callable[[], Fake]) -> None:
    orchestrator = fake()
    orchestrator.routes[("POST", "/runs")] = STARTED
    orchestrator.routes[("GET", "/runs/r1")] = run_states(
        {"status": "running", "events": events("task.created", "plan.ready")}
    )
    outcome = flow(orchestrator.url, ["plan.ready", "report.ready", "summary.ready"], within=0.3)
    assert outcome == Outcome(
        False,
        "run r1: expected report.ready, summary.ready within 0.3 s, found none; "
        "seen: task.created, plan.ready; missing: report.ready, summary.ready",
    )
    assert len(orchestrator.requests) >= 2  # it looked more than once


def test_a_refused_event_is_a_failure_with_the_orchestrators_reason(
    fake: Callable[[], Fake],
) -> None:
    orchestrator = fake()
    orchestrator.routes[("POST", "/runs")] = lambda _: (
        400, {"error": "unknown event type 'task.created'"}, {}
    )  # fmt: skip
    outcome = flow(orchestrator.url, ["plan.ready"])
    assert outcome == Outcome(
        False,
        f"expected POST {orchestrator.url}/runs to start a run of task.created, found 400: "
        "unknown event type 'task.created'",
    )


def test_an_orchestrator_that_answers_5xx_or_nothing_is_an_error(fake: Callable[[], Fake]) -> None:
    orchestrator = fake()
    orchestrator.routes[("POST", "/runs")] = lambda _: (503, {"error": "database down"}, {})
    outcome = flow(orchestrator.url, ["plan.ready"])
    assert outcome == Outcome(
        False, f"the orchestrator at {orchestrator.url} answered 503: database down", error=True
    )
    url = closed_url()
    outcome = flow(url, ["plan.ready"])
    assert outcome.error and not outcome.passed
    assert outcome.message.startswith(f"the orchestrator at {url} did not answer: ")
    assert "refused" in outcome.message.lower()

    # and when it stops answering between two looks at the run
    orchestrator.routes[("POST", "/runs")] = STARTED
    orchestrator.routes[("GET", "/runs/r1")] = lambda _: (500, "Internal Server Error", {})
    outcome = flow(orchestrator.url, ["plan.ready"])
    assert outcome.error and "answered 500: Internal Server Error" in outcome.message


def test_redirects_are_not_followed(fake: Callable[[], Fake]) -> None:
    elsewhere = fake()
    elsewhere.routes[("POST", "/runs")] = STARTED
    orchestrator = fake()
    orchestrator.routes[("POST", "/runs")] = lambda _: (
        307, {}, {"Location": f"{elsewhere.url}/runs"}
    )  # fmt: skip
    outcome = flow(orchestrator.url, ["plan.ready"])
    assert not outcome.passed and not outcome.error
    assert "found 307" in outcome.message
    assert elsewhere.requests == []


def test_proxies_from_the_environment_are_ignored(
    fake: Callable[[], Fake], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, closed_url())
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    orchestrator = fake()
    orchestrator.routes[("POST", "/runs")] = STARTED
    orchestrator.routes[("GET", "/runs/r1")] = run_states(
        {"status": "done", "events": events("task.created", "plan.ready")}
    )
    assert flow(orchestrator.url, ["plan.ready"]).passed


# -- cache_hit ---------------------------------------------------------------------------


def exposition(hits: float | None, misses: float) -> str:
    lines = [
        "# HELP migrate_cache_hits_total Results served from the cache.",
        "# TYPE migrate_cache_hits_total counter",
    ]
    if hits is not None:
        lines.append(f'migrate_cache_hits_total{{plugin="summarizer"}} {hits}')
    lines.append('migrate_cache_hits_total{plugin="planner"} 7.0')
    lines.append(f'migrate_cache_misses_total{{plugin="summarizer"}} {misses}')
    return "\n".join(lines) + "\n"


def cache_service(fake: Callable[[], Fake], *, caches: bool) -> Fake:
    service = fake()
    seen: list[Any] = []

    def invoke(body: Any) -> Reply:
        seen.append(body)
        return 200, {"event": "summary.ready", "summary": "s"}, {}

    def metrics(_: Any) -> Reply:
        hits = max(len(seen) - 1, 0) if caches else 0
        misses = min(len(seen), 1) if caches else len(seen)
        return 200, exposition(float(hits) if hits or seen else None, float(misses)), {}

    service.routes[("POST", "/invoke")] = invoke
    service.routes[("GET", "/metrics")] = metrics
    return service


def hit(url: str) -> Outcome:
    params = c.CacheHitCheck(url=url, plugin="summarizer", payload={"text": "t"}, timeout=5)
    return cache_hit(TARGET, params)


def test_cache_hit_passes_when_the_hits_grew(fake: Callable[[], Fake]) -> None:
    service = cache_service(fake, caches=True)
    outcome = hit(service.url)
    assert outcome == Outcome(
        True, 'migrate_cache_hits_total{plugin="summarizer"} grew from 0 to 1 after two invokes'
    )
    assert [(m, p) for m, p, _ in service.requests] == [
        ("GET", "/metrics"), ("POST", "/invoke"), ("POST", "/invoke"), ("GET", "/metrics")
    ]  # fmt: skip
    assert service.requests[1][2] == service.requests[2][2] == {"text": "t"}


def test_cache_hit_fails_with_the_numbers_when_nothing_was_cached(
    fake: Callable[[], Fake],
) -> None:
    outcome = hit(cache_service(fake, caches=False).url)
    assert outcome == Outcome(
        False,
        'expected migrate_cache_hits_total{plugin="summarizer"} to grow by at least 1 after two '
        "identical invokes, found 0 -> 0 (misses 0 -> 2)",
    )


def test_cache_hit_errors_and_failures(fake: Callable[[], Fake]) -> None:
    url = closed_url()
    outcome = hit(url)
    assert outcome.error and outcome.message.startswith(f"the service at {url} did not answer")
    service = cache_service(fake, caches=True)
    service.routes[("POST", "/invoke")] = lambda _: (500, {"error": "plugin raised"}, {})
    assert hit(service.url) == Outcome(
        False, f"the service at {service.url} answered 500: plugin raised", error=True
    )
    service.routes[("POST", "/invoke")] = lambda _: (413, {"error": "too large"}, {})
    outcome = hit(service.url)
    assert not outcome.error and outcome.message.endswith(
        "/invoke to answer 200, found 413: too large"
    )
    del service.routes[("GET", "/metrics")]
    outcome = hit(service.url)
    assert not outcome.error and outcome.message.endswith("/metrics to answer 200, found 404")


# -- through `migrate verify` -----------------------------------------------------------


def test_verify_reports_errors_apart_from_failures(project: Path, fake: Callable[[], Fake]) -> None:
    orchestrator = fake()
    orchestrator.routes[("POST", "/runs")] = STARTED
    orchestrator.routes[("GET", "/runs/r1")] = run_states(
        {"status": "done", "events": events("task.created", "plan.ready")}
    )
    checks = [
        {"name": "reached", "event_flow": {"orchestrator": orchestrator.url,
                                           "event": "task.created", "expect": ["plan.ready"]}},
        {"name": "not reached", "event_flow": {"orchestrator": orchestrator.url,
                                               "event": "task.created",
                                               "expect": ["notification.sent"]}},
        {"name": "down", "event_flow": {"orchestrator": closed_url(), "event": "task.created",
                                        "expect": ["plan.ready"]}},
    ]  # fmt: skip
    document = {"phases": [{"id": 1, "name": "One", "tasks": [
        {"id": "flow", "title": "Flow", "action": "manual", "checks": checks}]}]}  # fmt: skip
    (project / "phases" / "roadmap.yaml").write_text(yaml.safe_dump(document))
    report = api.verify(project, junit_xml=project / "j.xml")
    result = {ch["name"]: ch for ch in report.to_dict()["phases"][0]["tasks"][0]["checks"]}
    assert {n: (ch["passed"], ch["error"]) for n, ch in result.items()} == {
        "reached": (True, False), "not reached": (False, False), "down": (False, True)
    }  # fmt: skip
    assert result["reached"]["kind"] == "event_flow" and result["reached"]["host"] == "local://"
    junit = (project / "j.xml").read_text()
    assert 'failures="1"' in junit and 'errors="1"' in junit


def test_the_runner_waits_as_long_as_the_flow_says() -> None:
    from migrate.verify.runner import _budget, _Job

    check = c.Check.model_validate(
        {"event_flow": {"orchestrator": "http://x", "event": "a", "expect": ["b"], "within": 90}}
    )
    job = _Job(0, "t", check, check.label, check.kind, check.host)
    assert _budget(job, 60) == 90 + 2 * behaviour.REQUEST_TIMEOUT
    assert _budget(job, 600) == 600
    http = c.Check.model_validate({"http": {"url": "http://x"}})
    assert _budget(_Job(0, "t", http, http.label, http.kind, http.host), 60) == 60


# -- the Prometheus text format ----------------------------------------------------------


def test_samples_of_a_prometheus_exposition() -> None:
    text = "\n".join([
        "# HELP migrate_cache_hits_total Results served from the cache.",
        "# TYPE migrate_cache_hits_total counter",
        'migrate_cache_hits_total{plugin="summarizer"} 3.0',
        'migrate_cache_hits_total{plugin="Report-Writer",zone="a\\"b\\\\c\\nd",} 2',
        "migrate_up 1 1700000000000",
        'migrate_invocation_seconds_bucket{plugin="p",le="+Inf"} 4.0',
        "",
        "not a sample line {",
        'migrate_nan{plugin="p"} NaN',
    ])  # fmt: skip
    found = list(samples(text))
    assert found[:4] == [
        ("migrate_cache_hits_total", {"plugin": "summarizer"}, 3.0),
        ("migrate_cache_hits_total", {"plugin": "Report-Writer", "zone": 'a"b\\c\nd'}, 2.0),
        ("migrate_up", {}, 1.0),
        ("migrate_invocation_seconds_bucket", {"plugin": "p", "le": "+Inf"}, 4.0),
    ]
    assert len(found) == 5  # the malformed line is skipped
    assert metric_sum(text, "migrate_cache_hits_total", {"plugin": "summarizer"}) == 3.0
    assert metric_sum(text, "migrate_cache_hits_total") == 5.0
    assert metric_sum(text, "migrate_cache_hits_total", {"plugin": "nobody"}) == 0.0
    assert metric_sum(text, "migrate_cache_misses_total") == 0.0


def test_the_parser_reads_what_the_runtime_exposes() -> None:
    from migrate.runtime import metrics

    metrics.cache_hit("parser-test")
    metrics.cache_hit("parser-test")
    metrics.cache_miss("parser-test")
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    text = body.decode()
    assert metric_sum(text, "migrate_cache_hits_total", {"plugin": "parser-test"}) == 2.0
    assert metric_sum(text, "migrate_cache_misses_total", {"plugin": "parser-test"}) == 1.0
