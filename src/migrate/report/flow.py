"""The roadmap as a picture for the HTML report: inline SVG, laid out here.

One column per phase, left to right in phase order, with an arrow from each phase to
the next; a box per task, green and ticked when its checks passed. No script and no
web font, so it renders offline, in a mail client or a CI artifact viewer. Every text
comes from the roadmap and is escaped.
"""

from __future__ import annotations

import html
import itertools
import textwrap
from dataclasses import dataclass

COLUMN = 220  # width of a phase column
GAP = 48  # between columns: room for the arrow
PAD = 10
LINE = 15  # text line height
WRAP = 30  # characters a line
DONE_FILL, DONE_STROKE = "#d4f7d4", "#2e7d32"
TODO_FILL, TODO_STROKE = "#ffffff", "#9e9e9e"


@dataclass(frozen=True)
class Box:
    label: str
    done: bool = False


@dataclass(frozen=True)
class Column:
    title: str
    boxes: tuple[Box, ...]


def _lines(text: str) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), WRAP) or [""]


def _text(x: float, y: float, lines: list[str], *, bold: bool = False) -> str:
    weight = ' font-weight="bold"' if bold else ""
    spans = "".join(
        f'<tspan x="{x:g}" y="{y + i * LINE:g}">{html.escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return f'<text font-size="12"{weight}>{spans}</text>'


def svg(columns: list[Column], title: str = "Roadmap") -> str:
    """The columns side by side, each a header and its boxes, arrows between headers."""
    parts: list[str] = []
    height = 0.0
    headers: list[tuple[float, float, float]] = []  # (left x, middle y, right x)
    for index, column in enumerate(columns):
        x = PAD + index * (COLUMN + GAP)
        y = float(PAD)
        head = _lines(column.title)
        head_h = len(head) * LINE + 2 * PAD
        parts.append(
            f'<rect x="{x}" y="{y:g}" width="{COLUMN}" height="{head_h:g}" rx="6" '
            'fill="#e3ecfa" stroke="#3f51b5"/>'
        )
        parts.append(_text(x + PAD, y + PAD + 11, head, bold=True))
        headers.append((x, y + head_h / 2, x + COLUMN))
        y += head_h + PAD
        for box in column.boxes:
            lines = _lines(("✔ " if box.done else "") + box.label)
            box_h = len(lines) * LINE + PAD
            fill, stroke = (DONE_FILL, DONE_STROKE) if box.done else (TODO_FILL, TODO_STROKE)
            parts.append(
                f'<rect x="{x + PAD}" y="{y:g}" width="{COLUMN - 2 * PAD}" height="{box_h:g}" '
                f'rx="4" fill="{fill}" stroke="{stroke}"/>'
            )
            parts.append(_text(x + 2 * PAD, y + PAD / 2 + 11, lines))
            y += box_h + PAD / 2
        height = max(height, y + PAD)
    for (_, y1, right), (left, y2, _) in itertools.pairwise(headers):
        parts.append(
            f'<path d="M{right + 2} {y1:g} L{left - 4} {y2:g}" stroke="#3f51b5" '
            'stroke-width="1.5" fill="none" marker-end="url(#arrow)"/>'
        )
    width = PAD * 2 + len(columns) * COLUMN + max(0, len(columns) - 1) * GAP
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="roadmap-diagram" role="img" '
        f'width="{width}" height="{height:g}" viewBox="0 0 {width} {height:g}" '
        'font-family="sans-serif">'
        f"<title>{html.escape(title)}</title>"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0 0 L10 5 L0 10 z" fill="#3f51b5"/></marker>'
        "</defs>" + "".join(parts) + "</svg>"
    )
