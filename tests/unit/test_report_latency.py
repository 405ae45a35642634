"""The report's latency charts from the last `migrate bench` (src/migrate/report/latency.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from typer.testing import CliRunner

from migrate.cli.app import app
from migrate.report import latency

HOSTILE = "x</title><script>alert(1)</script>|*`"


def bench_document(name: str) -> dict[str, object]:
    side = {"rps": 10.0, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "errors": 0}
    return {"version": 1, "ok": True, "plugins": [
        {"plugin": name, "legacy": side, "migrated": side, "p95_ratio": 1.0},
    ]}  # fmt: skip


def test_no_bench_no_section(tmp_path: Path) -> None:
    assert latency.charts(tmp_path) == "" and latency.markdown(tmp_path) == ""
    (tmp_path / latency.FILE).write_text("{not json")
    assert latency.charts(tmp_path) == ""  # a broken file is no chart, never a crash


def test_a_chart_per_plugin_is_valid_svg_with_both_sides(tmp_path: Path) -> None:
    curves = {
        "legacy": [0.004 + i / 10_000 for i in range(100)],
        "migrated": [1 + i / 50 for i in range(100)],
    }
    latency.record(tmp_path, bench_document("planner"), {"planner": curves})
    html = latency.charts(tmp_path)
    svg = html[html.index("<svg") : html.index("</svg>") + 6]
    root = ET.fromstring(svg)  # well-formed XML
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2
    assert all(len(line.attrib["points"].split()) == 100 for line in lines)
    # log scale from 0.001 to 10 ms: a decade line for each
    labels = [t.text for t in root.findall("{http://www.w3.org/2000/svg}text")]
    assert {"0.001", "0.01", "0.1", "1", "10"} <= set(labels)


def test_plugin_names_are_escaped_in_both_reports(tmp_path: Path) -> None:
    curves = {"legacy": [0.01] * 100, "migrated": [2.0] * 100}
    latency.record(tmp_path, bench_document(HOSTILE), {HOSTILE: curves})
    html = latency.charts(tmp_path)
    assert "<script" not in html and "&lt;script&gt;" in html
    ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])
    table = latency.markdown(tmp_path)
    row = next(line for line in table.splitlines() if "alert" in line)
    assert row.count(" | ") == 4  # the name's | does not open a cell
    assert "<script" not in table


def test_the_report_carries_the_charts(project: Path) -> None:
    curves = {"legacy": [0.01] * 100, "migrated": [2.0] * 100}
    latency.record(project / ".migrate", bench_document("planner"), {"planner": curves})
    out = project / "r.html"
    result = CliRunner().invoke(
        app, ["-C", str(project), "report", "--format", "html", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "<svg" in out.read_text() and "<script" not in out.read_text()
    md = project / "r.md"
    CliRunner().invoke(app, ["-C", str(project), "report", "--out", str(md)])
    assert "## Performance (last `migrate bench`)" in md.read_text()
    assert json.loads((project / ".migrate" / latency.FILE).read_text())["version"] == 1
