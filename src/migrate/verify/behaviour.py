"""The check kinds that test behaviour, not existence: `event_flow` and `cache_hit`.

Both run from the machine running verify (like an `http` check on local://),
with the standard library only: no proxies (a check of 127.0.0.1 must not go
through $HTTP_PROXY), and no redirects followed (a check never ends up talking
to another address than the one it names).

A service that does not answer, or answers 5xx, makes its check an error (it
could not be run); a service that answers and shows the wrong behaviour makes
it a failure that says what was expected and what was found.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from migrate import checks as c
from migrate.verify.kinds import Outcome, Target, first_line

REQUEST_TIMEOUT = 10.0  # seconds one request to the orchestrator may take
MAX_BODY = 1024 * 1024  # bytes read from an answer
_FIRST_POLL, _MAX_POLL = 0.05, 0.5  # seconds between two looks at a run (doubling)


def budget(params: Any) -> float:
    """The longest an `event_flow` or `cache_hit` check can take (the runner's deadline)."""
    if isinstance(params, c.EventFlowCheck):
        return params.within + 2 * REQUEST_TIMEOUT
    if isinstance(params, c.CacheHitCheck):
        return 4 * params.timeout
    return 0.0


# -- HTTP without proxies or redirects ------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx becomes an HTTPError: shown, never followed


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: nothing answered
    body: str = ""
    why: str = ""  # why nothing answered

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def detail(self) -> str:
        """What the body says went wrong: its JSON `error`, or its last line."""
        document = self.json()
        if isinstance(document, dict) and document.get("error"):
            return first_line(str(document["error"]))
        return first_line(self.body, 120)


def request(method: str, url: str, body: Any = None, *, timeout: float) -> Answer:
    """One request; any transport problem is an Answer with no status, never an exception."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(req, timeout=max(timeout, 0.1)) as response:
            text = response.read(MAX_BODY).decode("utf-8", "replace")
            return Answer(response.status, text)
    except urllib.error.HTTPError as exc:
        with exc:
            text = exc.read(MAX_BODY).decode("utf-8", "replace")
        return Answer(exc.code, text)
    except urllib.error.URLError as exc:
        return Answer(None, why=str(getattr(exc, "reason", exc)))
    except (OSError, http.client.HTTPException, ValueError) as exc:  # timeouts, resets, bad URL
        return Answer(None, why=str(exc) or type(exc).__name__)


def _not_run(what: str, answer: Answer) -> Outcome | None:
    """The error when `answer` is no answer or a 5xx, else None."""
    if answer.status is None:
        return Outcome(False, f"{what} did not answer: {answer.why}", error=True)
    if answer.status >= 500:
        detail = f": {answer.detail}" if answer.detail else ""
        return Outcome(False, f"{what} answered {answer.status}{detail}", error=True)
    return None


# -- event_flow ------------------------------------------------------------------------


def event_flow(t: Target, p: c.EventFlowCheck) -> Outcome:
    """POST the event to /runs, then look at the run until every expected type is among its
    events (pass), the run fails or ends without them, or `within` seconds have passed."""
    base = p.orchestrator.rstrip("/")
    deadline = time.monotonic() + p.within
    started = request(
        "POST", f"{base}/runs", {"event": p.event, "payload": p.payload}, timeout=REQUEST_TIMEOUT
    )
    what = f"the orchestrator at {base}"
    if (problem := _not_run(what, started)) is not None:
        return problem
    document = started.json()
    run = document.get("run") if isinstance(document, dict) else None
    if started.status not in (200, 201, 202) or not isinstance(run, str | int):
        found = f"{started.status}" + (f": {started.detail}" if started.detail else "")
        return Outcome(
            False, f"expected POST {base}/runs to start a run of {p.event}, found {found}"
        )
    run_url = f"{base}/runs/{urllib.parse.quote(str(run), safe='')}"
    pause = _FIRST_POLL
    while True:
        remaining = deadline - time.monotonic()
        answer = request("GET", run_url, timeout=min(REQUEST_TIMEOUT, max(remaining, 1.0)))
        if (problem := _not_run(what, answer)) is not None:
            return problem
        state = answer.json()
        if answer.status != 200 or not isinstance(state, dict):
            found = f"{answer.status}" + (f": {answer.detail}" if answer.detail else "")
            return Outcome(False, f"expected GET {run_url} to show run {run}, found {found}")
        seen = _types(state.get("events"))
        missing = [kind for kind in p.expect if kind not in seen]
        if not missing:
            return Outcome(
                True, f"run {run}: {p.event} reached {', '.join(p.expect)} ({_count(state)})"
            )
        status = state.get("status")
        if status == "failed":
            error = first_line(str(state.get("error") or "no error given"))
            return Outcome(False, f"run {run} failed: {error}; {_seen(seen, missing)}")
        if status == "done":
            return Outcome(
                False, f"run {run} ended without {', '.join(missing)}; {_seen(seen, missing)}"
            )
        if time.monotonic() >= deadline:
            return Outcome(
                False,
                f"run {run}: expected {', '.join(missing)} within {p.within:g} s, "
                f"found none; {_seen(seen, missing)}",
            )
        time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
        pause = min(pause * 2, _MAX_POLL)


def _types(events: Any) -> list[str]:
    """The event types of a run, each once, in the order they first appear."""
    seen: list[str] = []
    for event in events if isinstance(events, list) else []:
        kind = event.get("type") if isinstance(event, dict) else None
        if isinstance(kind, str) and kind not in seen:
            seen.append(kind)
    return seen


def _count(state: dict[str, Any]) -> str:
    events = state.get("events")
    n = len(events) if isinstance(events, list) else 0
    return f"{n} event{'s' if n != 1 else ''}"


def _seen(seen: list[str], missing: list[str]) -> str:
    return f"seen: {', '.join(seen) or 'none'}; missing: {', '.join(missing)}"


# -- cache_hit -------------------------------------------------------------------------


def cache_hit(t: Target, p: c.CacheHitCheck) -> Outcome:
    """Read /metrics, POST /invoke twice with the same payload, read /metrics again: pass
    when `migrate_cache_hits_total{plugin=...}` grew by at least 1."""
    base = p.url.rstrip("/")
    what = f"the service at {base}"
    before = _cache_counts(base, p, what)
    if isinstance(before, Outcome):
        return before
    for _ in range(2):
        answer = request("POST", f"{base}/invoke", p.payload, timeout=p.timeout)
        if (problem := _not_run(what, answer)) is not None:
            return problem
        if not 200 <= (answer.status or 0) <= 299:
            found = f"{answer.status}" + (f": {answer.detail}" if answer.detail else "")
            return Outcome(False, f"expected POST {base}/invoke to answer 200, found {found}")
    after = _cache_counts(base, p, what)
    if isinstance(after, Outcome):
        return after
    (hits0, misses0), (hits1, misses1) = before, after
    series = f'migrate_cache_hits_total{{plugin="{p.plugin}"}}'
    if hits1 - hits0 >= 1:
        return Outcome(True, f"{series} grew from {hits0:g} to {hits1:g} after two invokes")
    hint = ""
    if misses1 == misses0:
        hint = f"; no cache miss was counted either: is caching on for {p.plugin} (cache_ttl_s)?"
    return Outcome(
        False,
        f"expected {series} to grow by at least 1 after two identical invokes, found "
        f"{hits0:g} -> {hits1:g} (misses {misses0:g} -> {misses1:g}){hint}",
    )


def _cache_counts(base: str, p: c.CacheHitCheck, what: str) -> tuple[float, float] | Outcome:
    answer = request("GET", f"{base}/metrics", timeout=p.timeout)
    if (problem := _not_run(what, answer)) is not None:
        return problem
    if answer.status != 200:
        return Outcome(False, f"expected GET {base}/metrics to answer 200, found {answer.status}")
    labels = {"plugin": p.plugin}
    return (
        metric_sum(answer.body, "migrate_cache_hits_total", labels),
        metric_sum(answer.body, "migrate_cache_misses_total", labels),
    )


RUNNERS: dict[str, Callable[[Target, Any], Outcome]] = {
    "event_flow": event_flow,
    "cache_hit": cache_hit,
}


# -- the Prometheus text format --------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of each sample line of a Prometheus text exposition (0.0.4);
    comments, blank and malformed lines are skipped."""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, raw_labels, raw_value = match.groups()
        labels = {
            key: re.sub(r"\\[\\\"n]", lambda m: _ESCAPES[m.group(0)], value)
            for key, value in _LABEL.findall(raw_labels or "")
        }
        try:
            value = float(raw_value)
        except ValueError:
            continue
        yield name, labels, value


def metric_sum(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """The sum of the samples of `name` whose labels include `labels`; 0 when there are none
    (a labelled counter appears only once it was first incremented)."""
    want = (labels or {}).items()
    return sum(
        value
        for sample, have, value in samples(text)
        if sample == name and all(have.get(k) == v for k, v in want)
    )
