"""What a no-op `images build` asks the engine (issue 14), against a stand-in engine on a
Unix socket (tests/unit/engine_standin.py): one `GET /images/json` for every tag, answered
without the Docker SDK; and the progress display that a no-op never draws."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from migrate.cli.output import ConsoleReporter
from migrate.images import engine
from migrate.images.errors import DockerUnavailableError
from tests.unit.engine_standin import EngineSocket, canned, engine_socket, use_engine

DEADLINE = 10.0  # seconds: a bound on waiting, never a measurement


@pytest.fixture
def engine_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineSocket]:
    with engine_socket(monkeypatch) as where:
        yield where


def no_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    def connect() -> None:
        raise AssertionError("the Docker SDK was used")

    monkeypatch.setattr(engine, "connect", connect)


def test_one_question_for_every_tag(
    engine_at: EngineSocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = [
        {"RepoTags": ["p/planner:aaa", "p/planner:latest"]},
        {"RepoTags": ["docker.io/p/notifier:bbb"]},  # another spelling: not counted
        {"RepoTags": None},
    ]
    stand_in = engine_at.serve(canned("200 OK", json.dumps(listing).encode()))
    no_sdk(monkeypatch)
    wanted = ["p/planner:aaa", "p/notifier:bbb", "p/summarizer:ccc"]
    assert engine.present(wanted) == {"p/planner:aaa"}
    assert stand_in.filters() == [{"reference": sorted(wanted)}]
    assert stand_in.requests[0].startswith("GET /images/json?filters=")
    assert engine.present([]) == set() and len(stand_in.requests) == 1  # nothing to ask


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        ("500 Internal Server Error", b'{"message": "boom"}', ""),
        ("200 OK", b"5\r\n[]\r\n0\r\n\r\n", "Transfer-Encoding: chunked\r\n"),
        ("200 OK", b"not json", ""),
    ],
)
def test_an_answer_it_cannot_read_goes_to_the_sdk(
    engine_at: EngineSocket, monkeypatch: pytest.MonkeyPatch, status: str, body: bytes, headers: str
) -> None:
    engine_at.serve(canned(status, body, headers))
    asked: list[dict[str, list[str]]] = []

    class Client:
        def images(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
            asked.append(filters)
            return [{"RepoTags": ["p/planner:aaa"]}]

    monkeypatch.setattr(engine, "connect", Client)
    assert engine.present(["p/planner:aaa"]) == {"p/planner:aaa"}
    assert asked == [{"reference": ["p/planner:aaa"]}]


def test_no_engine_is_the_usual_error(
    engine_at: EngineSocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_sdk(monkeypatch)
    with pytest.raises(DockerUnavailableError) as raised:
        engine.present(["p/planner:aaa"])
    assert f"no Docker engine answers at unix://{engine_at.path}" in raised.value.message
    assert "DOCKER_HOST" in (raised.value.hint or "")


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("unix:///run/docker.sock", True),
        ("tcp://127.0.0.1:2375", True),
        ("ssh://user@host", False),
        ("npipe:////./pipe/docker_engine", False),
    ],
)
def test_which_engines_are_asked_without_the_sdk(
    monkeypatch: pytest.MonkeyPatch, host: str, local: bool
) -> None:
    use_engine(monkeypatch, host)
    assert (engine._local_address() is not None) is local
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")  # TLS: always the SDK
    assert engine._local_address() is None


def test_quick_work_draws_no_progress_display() -> None:
    with ConsoleReporter() as reporter:
        reporter.start("images", "7 image(s)", 7)
        reporter.advance("images", 7)
        reporter.done("images")
        assert reporter._progress is None


def test_longer_work_draws_the_bars_as_they_stand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ConsoleReporter, "SHOW_AFTER", 0.01)
    with ConsoleReporter() as reporter:
        reporter.start("a", "first", 10)
        reporter.advance("a", 4)
        deadline = time.monotonic() + DEADLINE
        while reporter._progress is None:  # the timer's thread draws it
            assert time.monotonic() < deadline, "the progress display never appeared"
            time.sleep(0.01)  # poll interval, bounded by the deadline
        reporter.start("b", "second", 2)
        reporter.advance("b", 1)
        tasks = {t.description: t.completed for t in reporter._progress.tasks}
        assert tasks == {"first": 4, "second": 1}
        reporter.done("a")
        reporter.done("b")
    assert reporter._progress is None
