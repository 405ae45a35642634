"""Report writer plugin: render results as a Markdown report."""

from __future__ import annotations

from typing import Any


def render(title: str, sections: dict[str, list[str]]) -> str:
    """Render a title and ``{heading: [bullet, ...]}`` as Markdown."""
    lines = [f"# {title}", ""]
    for heading, bullets in sections.items():
        lines.append(f"## {heading}")
        lines.extend(f"- {item}" for item in bullets or ["(none)"])
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def handle(payload: dict[str, Any]) -> dict[str, Any]:
    """Build a report from ``steps``, ``review`` and ``findings`` keys."""
    title = str(payload.get("title", "Agent report"))
    steps = [
        str(s.get("action", s)) if isinstance(s, dict) else str(s) for s in payload.get("steps", [])
    ]
    review = payload.get("review", {}) or {}
    review_lines = [f"{rule}: {n}" for rule, n in sorted(review.get("counts", {}).items())]
    findings = [str(f) for f in payload.get("findings", [])]
    markdown = render(title, {"Plan": steps, "Review": review_lines, "Findings": findings})
    return {
        "event": "report.ready",
        "title": title,
        "markdown": markdown,
        "word_count": len(markdown.split()),
    }
