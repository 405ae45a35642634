"""Golden files: the rendered manifests of the example application.

Regenerate after an intended change with:

    MIGRATE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_manifests_golden.py

Image tags (12 hex digits of the build context) are written as `<tag>`, so a
change of the plugin runtime does not churn every golden file; the tag rule
has its own tests.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from migrate import api

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "agents-app"
TAG = re.compile(r"(image: \S+/[a-z0-9-]+):[0-9a-f]{12}\b")
UPDATE_HINT = "MIGRATE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_manifests_golden.py"


def _normalise(text: str) -> str:
    return TAG.sub(r"\1:<tag>", text)


def _files(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): _normalise(path.read_text(encoding="utf-8"))
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_rendered_manifests_match_the_golden_files(shared_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "rendered"
    # the golden files pin what is rendered; the whole-set checks have tests of their own
    # (and the example project has no registry, which `image-pullable` reports)
    api.render(shared_project, out=out, diagram=True, minimum_failure_severity="none")
    rendered = _files(out)
    if os.environ.get("MIGRATE_UPDATE_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for name, text in rendered.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_text(text, encoding="utf-8")
    golden = _files(GOLDEN)
    missing = sorted(golden.keys() - rendered.keys())
    extra = sorted(rendered.keys() - golden.keys())
    assert not missing and not extra, f"files differ ({missing=}, {extra=}); {UPDATE_HINT}"
    changed = [name for name in rendered if rendered[name] != golden[name]]
    assert not changed, f"changed: {changed}; if intended, regenerate: {UPDATE_HINT}"
