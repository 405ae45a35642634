"""Image references (DESIGN 3.7): valid Docker references for any plugin name."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from migrate.images.builder import reference

# distribution/reference's grammar (the one the engine enforces)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
REFERENCE = re.compile(rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*:[\w][\w.-]{{0,127}}$")


def _ctx(project: str, registry: str | None) -> Any:
    target = SimpleNamespace(registry=registry)
    return SimpleNamespace(config=SimpleNamespace(project=project, target=target))


PREFIXES = st.sampled_from([("agents-app", None), ("p", "127.0.0.1:5000/team"), ("x", "ghcr.io")])
HASHES = st.text(alphabet="0123456789abcdef", min_size=12, max_size=12)


@given(st.text(min_size=1, max_size=200), PREFIXES, HASHES)
def test_references_are_valid_for_any_plugin_name(
    plugin: str, prefix: tuple[str, str | None], short_hash: str
) -> None:
    ref = reference(_ctx(*prefix), plugin, short_hash)
    assert REFERENCE.match(ref), ref
    name, _, tag = ref.rpartition(":")
    assert tag == short_hash and len(name) <= 255
    assert ref == reference(_ctx(*prefix), plugin, short_hash)  # deterministic


def test_examples() -> None:
    ctx = _ctx("agents-app", None)
    assert (
        reference(ctx, "Report-Writer", "0123456789ab") == "agents-app/report-writer:0123456789ab"
    )
    assert (
        reference(ctx, "code_reviewer", "0123456789ab") == "agents-app/code-reviewer:0123456789ab"
    )
    registry = _ctx("agents-app", "127.0.0.1:5000/team/")
    assert (
        reference(registry, "planner", "abcdefabcdef") == "127.0.0.1:5000/team/planner:abcdefabcdef"
    )
