"""The Architecture Blueprint of a project as data, then rendered by templates/report/.

Boxes are ticked from the journal's *verified* status (a task whose checks
all passed at the last `migrate verify`), never from "applied": the report
claims only what a check has shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from migrate.report.summary import md

if TYPE_CHECKING:
    from migrate.engine.context import Context
    from migrate.roadmap import Roadmap

Format = Literal["markdown", "html"]
BAR_WIDTH = 20


@dataclass(frozen=True)
class Risk:
    """A risk of the blueprint, the mitigation the roadmap puts against it, and the
    tasks whose verified status says whether that mitigation is in place."""

    risk: str
    mitigation: str
    tasks: tuple[str, ...]
    evidence: str


RISKS = (
    Risk(
        "Data loss during database migration",
        "Backups before data migration",
        ("database-migration",),
        "the data task takes a pg_dump of existing tables before it loads",
    ),
    Risk(
        "Service downtime",
        "Blue-green deployment with rollback",
        ("load-balancing",),
        "a blue and a green track per plugin; `migrate rollback` undoes a phase",
    ),
    Risk(
        "Performance degradation",
        "Performance testing",
        ("load-balancing", "auto-scaling"),
        "`migrate bench` replays recorded calls against each container within the "
        "`performance:` budgets; auto-scaling on load and consumer lag is verified",
    ),
    Risk(
        "Integration failures",
        "Integration checks",
        (),
        "every task's checks, run by `migrate verify` and `migrate ci`; `migrate compare` "
        "replays the legacy app's own calls against the containers",
    ),
)

STACK = (
    ("Containers", "Docker images, one per plugin"),
    ("Orchestration", "Kubernetes"),
    ("Infrastructure as code", "Pulumi"),
    ("Database", "PostgreSQL"),
    ("Service mesh", "Istio"),
    ("Ingress and load balancing", "NGINX Ingress, blue-green tracks"),
    ("Events", "Kafka"),
    ("Caching", "Redis"),
    ("Analytics", "Elasticsearch and Kibana"),
    ("Monitoring", "Prometheus, Grafana, Jaeger"),
    ("CI/CD", "GitHub Actions or GitLab CI running `migrate ci`"),
    ("Verification", "testinfra"),
)


def progress_bar(done: int, total: int) -> str:
    filled = round(BAR_WIDTH * done / total) if total else BAR_WIDTH
    percent = round(100 * done / total) if total else 100
    return f"`{'█' * filled}{'░' * (BAR_WIDTH - filled)}` {done}/{total} ({percent}%)"


def _risk_status(risk: Risk, done: dict[str, bool], roadmap: Roadmap) -> str:
    if not risk.tasks:
        with_checks = [t for _, t in roadmap.tasks() if t.checks]
        verified = sum(done.get(t.id, False) for t in with_checks)
        return f"{verified} of {len(with_checks)} checked tasks verified"
    known = {t.id for _, t in roadmap.tasks()}
    missing = [t for t in risk.tasks if t not in known]
    if missing:
        return f"not planned: the roadmap has no task {', '.join(missing)}"
    if all(done.get(t, False) for t in risk.tasks):
        return "in place (verified)"
    return f"planned: {', '.join(risk.tasks)} not verified yet"


def _mermaid(value: str) -> str:
    """`value` inside a mermaid label `["..."]`: quotes, angle brackets and backticks as
    mermaid's entity codes, so a title can neither end the label nor the code fence."""
    text = " ".join(value.split())
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"),
                       ("`", "#96;"), ("&", "#amp;")):  # fmt: skip
        text = text.replace(char, code)
    return text


def _html_as_text(value: str | None) -> str | None:
    import html

    return html.escape(value, quote=False) if value else value


def build(ctx: Context) -> dict[str, Any]:
    """What the templates show; the only time is the journal's last verify, so the same
    state renders the same."""
    states = ctx.journal.task_states() if ctx.journal else {}
    done = {task: state.done for task, state in states.items()}
    phases: list[dict[str, Any]] = []
    for phase in ctx.roadmap.phases:
        # every value from the roadmap is escaped here, once: the templates quote them as is
        tasks = [
            {
                "id": t.id,
                "title": md(t.title),
                "label": _mermaid(t.title),
                "action": t.action,
                "done": done.get(t.id, False),
            }
            for t in phase.tasks
        ]
        count = sum(1 for t in tasks if t["done"])
        phases.append(
            {
                "id": phase.id,
                "name": md(phase.name),
                "label": _mermaid(phase.name),
                "duration": md(phase.duration) if phase.duration else phase.duration,
                # Markdown of the roadmap's author stays Markdown; HTML in it is shown as text
                "description": _html_as_text(phase.description),
                "tasks": tasks,
                "done": count == len(tasks),
                "done_count": count,
                "bar": progress_bar(count, len(tasks)),
            }
        )
    total = len(ctx.roadmap.tasks())
    verified = sum(1 for _, t in ctx.roadmap.tasks() if done.get(t.id, False))
    # when `verify` last ran (the journal's newest verified_at): how fresh the ticks are
    stamps = [s.verified_at for s in states.values() if s.verified_at]
    risks = [
        {
            "risk": r.risk,
            "mitigation": r.mitigation,
            "evidence": r.evidence,
            "status": _risk_status(r, done, ctx.roadmap),
        }
        for r in RISKS
    ]
    return {
        "phases": phases,
        "total": total,
        "verified": verified,
        "overall_bar": progress_bar(verified, total),
        "last_verified": _when(max(stamps)) if stamps else None,
        "risks": risks,
        "stack": STACK,
        "schema": ctx.config.target.db_schema,
    }


def _when(stamp: str) -> str:
    """The journal's ISO time as `2026-11-30 08:22 UTC`."""
    import datetime as dt

    try:
        moment = dt.datetime.fromisoformat(stamp).astimezone(dt.UTC)
    except ValueError:
        return md(stamp)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def render(ctx: Context, fmt: Format = "markdown") -> str:
    from migrate.report import latency

    markdown = ctx.render("report/blueprint.md.j2", report=build(ctx))
    if fmt == "markdown":
        performance = latency.markdown(ctx.state_dir)
        return markdown + ("\n" + performance if performance else "")
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    # the latency charts of the last `migrate bench`: inline SVG, escaped where it quotes
    body = _checkboxes(body)
    body = _MERMAID_BLOCK.sub(lambda _: _roadmap_svg(ctx), body, count=1)
    return ctx.render("report/blueprint.html.j2", body=body + latency.charts(ctx.state_dir))


_MERMAID_BLOCK = re.compile(r'<pre><code class="language-mermaid">.*?</code></pre>\n?', re.S)


def _roadmap_svg(ctx: Context) -> str:
    """The Markdown report's Mermaid diagram as a picture: inline SVG, no script."""
    from migrate.report.flow import Box, Column, svg

    states = ctx.journal.task_states() if ctx.journal else {}
    columns = [
        Column(
            title=f"Phase {phase.id}: {phase.name}",
            boxes=tuple(
                Box(t.title, done=bool(states.get(t.id) and states[t.id].done)) for t in phase.tasks
            ),
        )
        for phase in ctx.roadmap.phases
    ]
    picture = svg(columns, title="The roadmap: phases and their tasks, verified ones ticked")
    return f'<figure class="diagram">{picture}</figure>\n'


def _checkboxes(body: str) -> str:
    """The task list's `[x]` and `[ ]` as real (read-only) checkboxes."""
    body = body.replace("<li>[x] ", '<li><input type="checkbox" checked disabled> ')
    return body.replace("<li>[ ] ", '<li><input type="checkbox" disabled> ')


def write(text: str, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
