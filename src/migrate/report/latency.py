"""Latency charts of the report: the last `migrate bench`, legacy against migrated.

`migrate bench` (and the `performance` check) records its result in
`.migrate/bench.json`; the HTML report draws one inline SVG per plugin from it
(percentile on x, latency on a log scale on y, one line per side), and the
Markdown report a table. No script, no font or file from the network: the page
stays standalone. Every text from the application (plugin names) is escaped.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

FILE = "bench.json"
WIDTH, HEIGHT = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 60, 130, 30, 40
COLOURS = {"legacy": "#1f77b4", "migrated": "#d62728"}


def record(state_dir: Path, document: dict[str, Any], curves: dict[str, Any]) -> Path:
    """Keep the last bench result with its percentile curves (`curves`: plugin ->
    {"legacy": [ms...], "migrated": [ms...]}) for the report."""
    state_dir.mkdir(parents=True, exist_ok=True)
    plugins = []
    for entry in document.get("plugins", []):
        plugin = dict(entry)
        plugin["curves"] = curves.get(entry["plugin"], {})
        plugins.append(plugin)
    path = state_dir / FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**document, "plugins": plugins}, indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


def load(state_dir: Path) -> dict[str, Any] | None:
    """The last bench result, or None (none yet, or a file that does not parse)."""
    try:
        document = json.loads((state_dir / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _y(ms: float, low: float, high: float) -> float:
    span = math.log10(high) - math.log10(low)
    fraction = (math.log10(max(ms, low)) - math.log10(low)) / span if span else 0.0
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - fraction)


def _x(index: int, count: int) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * (index / max(count - 1, 1))


def svg(plugin: str, curves: dict[str, list[float]]) -> str:
    """One chart: each side's latency (ms, log scale) at percentiles 1..100."""
    values = [v for side in curves.values() for v in side if v > 0]
    if not values:
        return ""
    low = 10 ** math.floor(math.log10(min(values)))
    high = 10 ** math.ceil(math.log10(max(values)))
    if high <= low:
        high = low * 10
    title = html.escape(f"{plugin}: latency by percentile (ms, log scale)")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}">',
        f"<title>{title}</title>",
        f'<text x="{LEFT}" y="18" font-size="13" font-family="sans-serif">{title}</text>',
    ]
    decade = low
    while decade <= high * 1.0001:
        y = _y(decade, low, high)
        label = f"{decade:g}"
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'font-family="sans-serif">{label}</text>'
        )
        decade *= 10
    for p in (1, 50, 95, 100):
        x = _x(p - 1, 100)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" font-size="10" text-anchor="middle" '
            f'font-family="sans-serif">p{p}</text>'
        )
    for row, (side, curve) in enumerate(sorted(curves.items())):
        if not curve:
            continue
        colour = COLOURS.get(side, "#555")
        points = " ".join(
            f"{_x(i, len(curve)):.1f},{_y(v, low, high):.1f}" for i, v in enumerate(curve)
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'
            f'<text x="{WIDTH - RIGHT + 10}" y="{TOP + 16 * row + 10}" font-size="11" '
            f'fill="{colour}" font-family="sans-serif">{html.escape(side)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def charts(state_dir: Path) -> str:
    """The HTML of the report's performance section, or "" when bench never ran."""
    document = load(state_dir)
    if not document or not document.get("plugins"):
        return ""
    out = ["<h2>Performance: legacy against migrated (last <code>migrate bench</code>)</h2>"]
    for entry in document["plugins"]:
        name = str(entry.get("plugin", "?"))
        curves = {
            side: [float(v) for v in entry.get("curves", {}).get(side, []) if _number(v)]
            for side in ("legacy", "migrated")
        }
        picture = svg(name, curves)
        if picture:
            out.append(f"<figure>{picture}<figcaption>{_caption(entry)}</figcaption></figure>")
    return "\n".join(out) if len(out) > 1 else ""


def markdown(state_dir: Path) -> str:
    """The Markdown report's performance table, or "" when bench never ran."""
    document = load(state_dir)
    if not document or not document.get("plugins"):
        return ""
    rows = [
        "## Performance (last `migrate bench`)",
        "",
        "| Plugin | legacy p50 / p95 ms | migrated p50 / p95 ms | migrated req/s | p95 ratio |",
        "| --- | --- | --- | --- | --- |",
    ]
    for entry in document["plugins"]:
        legacy, migrated = entry.get("legacy", {}), entry.get("migrated", {})
        rows.append(
            f"| {_md(str(entry.get('plugin', '?')))} | {legacy.get('p50_ms')} / "
            f"{legacy.get('p95_ms')} | {migrated.get('p50_ms')} / {migrated.get('p95_ms')} | "
            f"{migrated.get('rps')} | {entry.get('p95_ratio')} |"
        )
    return "\n".join(rows) + "\n"


def _caption(entry: dict[str, Any]) -> str:
    legacy, migrated = entry.get("legacy", {}), entry.get("migrated", {})
    return html.escape(
        f"{entry.get('plugin')}: p95 {legacy.get('p95_ms')} ms in-process, "
        f"{migrated.get('p95_ms')} ms in its container ({migrated.get('rps')} requests/s)"
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _md(text: str) -> str:
    """A table cell that shows `text` as text: no markup, no HTML, no cell break."""
    escaped = html.escape(text.replace("\n", " "))
    for char in "\\`*_[]|<>#!":
        escaped = escaped.replace(char, "\\" + char)
    return escaped
